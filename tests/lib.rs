//! Shared helpers of the end-to-end tests: where things are, running the command line, and the two
//! lint tools every emitted design must pass (Verilator `--lint-only -Wall`, Yosys `check -assert`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A Verilator build cache shared by all tests (builds are keyed by design hash, so sharing is safe
/// and saves minutes on repeated runs).
pub fn sim_cache() -> PathBuf {
    repo().join("target").join("fastml-sim-cache")
}

/// What a command printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run the command line `bin` with `args` in `cwd`.
pub fn run(bin: &str, args: &[&str], cwd: &Path) -> Run {
    let out = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the test binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The library modules the compiler writes beside the top module (from `rtl-lib/`).
pub const LIBRARY_FILES: [&str; 3] = ["fastml_valid_pipe.v", "fastml_add3.v", "fastml_lut2.v"];

/// The top module's name in an `rtl/` folder (the file that is not a library module).
pub fn top_of(rtl: &Path) -> String {
    let mut tops: Vec<String> = std::fs::read_dir(rtl)
        .expect("rtl folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".v") && !LIBRARY_FILES.contains(&n.as_str()))
        .map(|n| n.trim_end_matches(".v").to_string())
        .collect();
    tops.sort();
    assert_eq!(tops.len(), 1, "one top module in {rtl:?}: {tops:?}");
    tops.remove(0)
}

/// Verilator `--lint-only -Wall` and Yosys `read_verilog; hierarchy -check; proc; check -assert` on the
/// design in `rtl`; returns the tools' complaints, if any.
pub fn lint(rtl: &Path) -> Result<(), String> {
    let top = top_of(rtl);
    // The design's files (top and library modules). Verilator lints them with the primitives'
    // simulation models (rtl/sim/LUT6_2.v, CARRY8.v) and again with the ternary adder's fast model in
    // place of its netlist; Yosys checks the instances against its own Xilinx cell library.
    let mut files: Vec<PathBuf> = vec![rtl.join(format!("{top}.v"))];
    for f in LIBRARY_FILES {
        if rtl.join(f).exists() {
            files.push(rtl.join(f));
        }
    }
    let sim = rtl.join("sim");
    let mut runs = vec![files.clone()];
    if sim.exists() {
        // The netlist: the primitives' models beside the library modules.
        for p in ["LUT6_2.v", "CARRY8.v"] {
            if sim.join(p).exists() {
                runs[0].push(sim.join(p));
            }
        }
        // The fast models in place of the library modules that have one.
        let mut with_model: Vec<PathBuf> = Vec::new();
        for f in &files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let model = sim.join(name.replace(".v", "_model.v"));
            with_model.push(if model.exists() { model } else { f.clone() });
        }
        runs.push(with_model);
    }
    for run_files in &runs {
        let v = Command::new("verilator")
            .args(["--lint-only", "-Wall", "--top-module", &top])
            .args(run_files)
            .output()
            .map_err(|e| format!("verilator: {e} (run `make deps`)"))?;
        if !v.status.success() || !v.stderr.is_empty() {
            return Err(format!(
                "verilator -Wall:\n{}",
                String::from_utf8_lossy(&v.stderr)
            ));
        }
    }
    let script = format!(
        "read_verilog -lib +/xilinx/cells_sim.v; read_verilog {}; hierarchy -check -top {top}; \
         proc; check -assert",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let y = Command::new("yosys")
        .args(["-q", "-p", &script])
        .output()
        .map_err(|e| format!("yosys: {e} (run `make deps`)"))?;
    if !y.status.success() {
        return Err(format!(
            "yosys check:\n{}{}",
            String::from_utf8_lossy(&y.stdout),
            String::from_utf8_lossy(&y.stderr)
        ));
    }
    Ok(())
}

/// Every model.json shipped under `models/`.
pub fn shipped_models() -> Vec<PathBuf> {
    let mut out = vec![];
    for dir in [
        "models/handwritten",
        "models/handwritten_v2",
        "models/qkeras_3layer",
        "models/seed_lutnet",
        "models/deepsets",
    ] {
        let d = repo().join(dir);
        let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
            .expect("models folder")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

/// Compile `model` with the command line `bin` and co-simulate it (`vectors`: a count, or a file of real
/// vectors), with the shared build cache; asserts 0 mismatches and the scheduled latency, and returns
/// `cosim/results.json`.
pub fn cosim_cli(bin: &str, model: &Path, vectors: &str, extra: &[&str]) -> serde_json::Value {
    let out = tempfile::tempdir().expect("temp");
    let cache = sim_cache();
    let mut args = vec![
        model.to_str().expect("utf-8"),
        "-o",
        out.path().to_str().expect("utf-8"),
        "-q",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
    ];
    if vectors.parse::<usize>().is_ok() {
        args.extend_from_slice(&["--cosim", vectors]);
    } else {
        args.extend_from_slice(&["--cosim-input", vectors]);
    }
    args.extend_from_slice(extra);
    let r = run(bin, &args, &repo());
    assert_eq!(r.code, 0, "{}: {}{}", model.display(), r.stdout, r.stderr);
    let res: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("cosim/results.json")).expect("results.json"),
    )
    .expect("json");
    assert_eq!(res["mismatches"], 0, "{}: {res}", model.display());
    assert_eq!(
        res["measured_latency_min"], res["scheduled_latency"],
        "{res}"
    );
    assert_eq!(
        res["measured_latency_max"], res["scheduled_latency"],
        "{res}"
    );
    assert_eq!(res["passed"], true);
    res
}
