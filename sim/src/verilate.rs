//! Building the Verilator model + harness, and the content-addressed build cache.
//!
//! A build lives in `cache_dir/<sha256>/`, where the hash covers everything that can
//! change the binary: the Verilog sources' bytes (in order), the top name, the port
//! widths, the declared latency, the harness text, `verilator --version` and the flag
//! list. An existing `cache_dir/<hash>/` is always a *complete* build, because builds
//! happen in a temporary sibling directory that is renamed into place only after
//! Verilator and g++ succeeded (rename is atomic on one filesystem); an interrupted
//! build therefore leaves only a `.tmp-*` directory that is never looked up. A failed
//! build is moved to `<hash>.failed/` so its log stays readable. Two processes
//! building the same hash at once both build; the second rename loses and its copy
//! is discarded. Nothing cleans up `.tmp-*` left by killed builds; they are safe to
//! delete when no build is running.
//!
//! Build steps: `verilator` (Verilog → C++), a check of the generated `Vtop.h` port
//! widths against the `Design`, then `make` (C++ → `obj/sim`). The g++ version is
//! not part of the hash: after a compiler upgrade, clear the cache.
//!
//! This file must not run the simulation and must not write outside `cache_dir`.
//! `include`d Verilog files are not hashed: designs are expected to be self-contained
//! source lists (which the compiler produces).

use crate::error::SimError;
use crate::harness::harness_source;
use crate::Design;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the executable inside `<build>/obj/`.
const BINARY: &str = "sim";
/// How many lines of a failing build log go into the error message.
const LOG_TAIL_LINES: usize = 40;

/// Verilator flags (besides paths, `--top-module`, `-o` and `--Mdir`), chosen for
/// designs made of thousands of small adders / registers, simulated for ~10^6 cycles:
///
/// * `-O3`: Verilator's own optimisations; cheap at Verilate time.
/// * `--x-assign fast`: X in the logic becomes whatever is fastest.
/// * `--x-initial unique` (+ `randReset(2)` in the harness): initial register values
///   are random, so a valid chain that is not reset is caught rather than masked by
///   zeros. Costs only at model construction.
/// * `--output-split 20000` / `--output-split-cfuncs 4000`: several medium-size .cpp
///   files instead of one huge one, so `make -j 2` compiles in parallel and g++ never
///   sees a gigantic function (its time grows super-linearly with function size).
/// * `-Wno-fatal -Wno-lint -Wno-style`: generated designs legitimately trip width /
///   unused warnings; thousands of them would only bury real errors in the log.
///
/// Verilation and the C++ build are two steps (not `--build`) so that the port
/// widths in the generated `Vtop.h` can be checked against the [`Design`] before
/// g++ runs: a mismatch then gives a clear error instead of a C++ type error or,
/// worse, silently truncated ports.
pub(crate) const VERILATOR_FLAGS: &[&str] = &[
    "--cc",
    "--exe",
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
    "-O3",
    // Verilator 5.006's DFG peephole optimiser aborts ("Internal Error ... V3DfgPeephole.cpp:761
    // OOPS") on the ternary adders' LUT6_2/CARRY8 netlists; the other optimisations stay on.
    "-fno-dfg-peephole",
    "--x-assign",
    "fast",
    "--x-initial",
    "unique",
    "--output-split",
    "20000",
    "--output-split-cfuncs",
    "4000",
    "--prefix",
    "Vtop",
];

/// Arguments to `make -C obj -f Vtop.mk`. g++ `-O1` everywhere: measured on a
/// synthetic 9,000-adder, 2-layer design, -O1 builds in 10.5 s vs 14.3 s (-O2) and
/// 16.0 s (-Os, Verilator's default) with the same simulation speed (±3 %); -O0
/// builds in 8.2 s but simulates 2x slower.
pub(crate) const MAKE_ARGS: &[&str] =
    &["-j", "2", "OPT_FAST=-O1", "OPT_SLOW=-O1", "OPT_GLOBAL=-O1"];

/// A ready-to-run harness binary.
pub(crate) struct Build {
    pub binary: PathBuf,
    pub cached: bool,
}

/// `verilator --version`, which doubles as the "is it installed" check.
pub(crate) fn verilator_version() -> Result<String, SimError> {
    let out = Command::new("verilator")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SimError::VerilatorMissing {
            detail: format!("cannot run `verilator`: {e}"),
        })?;
    if !out.status.success() {
        return Err(SimError::VerilatorMissing {
            detail: format!(
                "`verilator --version` exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The cache key. Lengths are hashed before variable-size fields so that no two
/// different inputs can concatenate to the same byte stream.
pub(crate) fn build_hash(
    design: &Design,
    sources: &[Vec<u8>],
    harness: &str,
    version: &str,
) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"fastml-sim build v1");
    field(version.as_bytes());
    for f in VERILATOR_FLAGS.iter().chain(MAKE_ARGS) {
        field(f.as_bytes());
    }
    field(design.top.as_bytes());
    field(&design.in_width.to_le_bytes());
    field(&design.out_width.to_le_bytes());
    field(&design.latency.to_le_bytes());
    field(harness.as_bytes());
    field(&(sources.len() as u64).to_le_bytes());
    for s in sources {
        field(s);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Return the harness binary for `design`, building it unless `cache_dir/<hash>`
/// already holds it. `on_build` is called just before an actual (slow) build starts.
pub(crate) fn ensure_build(
    design: &Design,
    cache_dir: &Path,
    on_build: impl FnOnce(),
) -> Result<Build, SimError> {
    let version = verilator_version()?;

    // Absolute source paths: Verilator is run with the build dir as cwd.
    let mut paths = Vec::with_capacity(design.sources.len());
    let mut contents = Vec::with_capacity(design.sources.len());
    for src in &design.sources {
        let abs = fs::canonicalize(src)
            .map_err(|e| SimError::Invalid(format!("Verilog source {}: {e}", src.display())))?;
        contents.push(fs::read(&abs).map_err(SimError::io(&abs))?);
        paths.push(abs);
    }
    let harness = harness_source(design.in_width, design.out_width, design.latency);
    let hash = build_hash(design, &contents, &harness, &version);

    let final_dir = cache_dir.join(&hash);
    let binary = final_dir.join("obj").join(BINARY);
    if binary.is_file() {
        return Ok(Build {
            binary,
            cached: true,
        });
    }
    if final_dir.exists() {
        // Complete builds are renamed in whole, so this is damage from outside
        // (someone deleted files). Start over.
        fs::remove_dir_all(&final_dir).map_err(SimError::io(&final_dir))?;
    }
    on_build();

    fs::create_dir_all(cache_dir).map_err(SimError::io(cache_dir))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = cache_dir.join(format!(
        ".tmp-{}-{}-{nanos}",
        &hash[..16],
        std::process::id()
    ));
    let obj = tmp.join("obj");
    fs::create_dir_all(&obj).map_err(SimError::io(&obj))?;
    let harness_path = tmp.join("harness.cpp");
    fs::write(&harness_path, &harness).map_err(SimError::io(&harness_path))?;
    let log_path = tmp.join("build.log");
    let log = fs::File::create(&log_path).map_err(SimError::io(&log_path))?;

    // Everything below that fails moves the attempt to `<hash>.failed/` (replacing
    // an older one) so its log survives, and never into `<hash>/`.
    let fail = |status: String| -> SimError {
        let failed = cache_dir.join(format!("{hash}.failed"));
        let _ = fs::remove_dir_all(&failed);
        let dir = if fs::rename(&tmp, &failed).is_ok() {
            failed
        } else {
            tmp.clone()
        };
        let log = dir.join("build.log");
        SimError::BuildFailed {
            top: design.top.clone(),
            status,
            tail: log_tail(&log, LOG_TAIL_LINES),
            log,
        }
    };

    // Step 1: Verilog -> C++.
    let mut verilate = Command::new("verilator");
    verilate
        .args(VERILATOR_FLAGS)
        .arg("--top-module")
        .arg(&design.top)
        .arg("--Mdir")
        .arg(&obj)
        .arg("-o")
        .arg(BINARY)
        .args(&paths)
        .arg(&harness_path);
    let cleanup = |_: &SimError| {
        let _ = fs::remove_dir_all(&tmp);
    };
    match run_logged(verilate, &tmp, &log, &log_path).inspect_err(cleanup)? {
        Ok(()) => {}
        Err(status) => return Err(fail(format!("verilator {status}"))),
    }

    // Step 2: the ports Verilator saw must be the ones the harness was generated for.
    let header = obj.join("Vtop.h");
    let problems = match fs::read_to_string(&header) {
        Ok(text) => port_problems(&text, design),
        Err(e) => vec![format!("cannot read {}: {e}", header.display())],
    };
    if !problems.is_empty() {
        let detail = problems.join("; ");
        let _ = writeln!(&log, "fastml-sim: port check failed: {detail}");
        return Err(fail(format!("ports do not match the Design: {detail}")));
    }

    // Step 3: C++ -> executable.
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(&obj)
        .arg("-f")
        .arg("Vtop.mk")
        .args(MAKE_ARGS);
    match run_logged(make, &tmp, &log, &log_path).inspect_err(cleanup)? {
        Ok(()) if obj.join(BINARY).is_file() => {}
        Ok(()) => return Err(fail("make produced no executable".into())),
        Err(status) => return Err(fail(format!("C++ build {status}"))),
    }

    // Object files are only needed for incremental rebuilds, which never happen
    // (a change gives a new hash); drop them to keep the cache small.
    if let Ok(rd) = fs::read_dir(&obj) {
        for e in rd.flatten() {
            let p = e.path();
            if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("o" | "a" | "d")
            ) {
                let _ = fs::remove_file(p);
            }
        }
    }

    match fs::rename(&tmp, &final_dir) {
        Ok(()) => {}
        // Another process finished the same build first: use theirs.
        Err(_) if binary.is_file() => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            return Err(SimError::Io {
                path: final_dir,
                source: e,
            })
        }
    }
    Ok(Build {
        binary,
        cached: false,
    })
}

/// Run `cmd` in `cwd` with stdout+stderr appended to `log`. The outer `Result` is a
/// failure to start the program at all; the inner one its exit status.
fn run_logged(
    mut cmd: Command,
    cwd: &Path,
    log: &fs::File,
    log_path: &Path,
) -> Result<Result<(), String>, SimError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let _ = writeln!(&*log, "$ {cmd:?}");
    let out = log.try_clone().map_err(SimError::io(log_path))?;
    let err = log.try_clone().map_err(SimError::io(log_path))?;
    // TMPDIR too, so that g++'s temporary files also stay inside the build
    // directory (the crate promises to write nowhere else).
    let status = cmd
        .current_dir(cwd)
        .env("TMPDIR", cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| SimError::VerilatorMissing {
            detail: format!("cannot run `{program}`: {e}"),
        })?;
    Ok(if status.success() {
        Ok(())
    } else {
        Err(status.to_string())
    })
}

/// Compare the ports declared in Verilator's `Vtop.h` (lines such as
/// `VL_INW(&in_data,119,0,4);` or `VL_OUT8(&out_valid,0,0);`) with the port
/// convention and the widths in `design`. Returns one message per problem.
/// Extra ports are tolerated (extra inputs stay 0).
pub(crate) fn port_problems(header: &str, design: &Design) -> Vec<String> {
    let mut found: Vec<(String, bool, i64, i64)> = Vec::new(); // name, is_input, msb, lsb
    for line in header.lines() {
        let line = line.trim();
        let is_input = if line.starts_with("VL_IN") {
            true
        } else if line.starts_with("VL_OUT") {
            false
        } else {
            continue;
        };
        let Some(args) = line
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(args, _)| args)
        else {
            continue;
        };
        let parts: Vec<&str> = args.split(',').map(str::trim).collect();
        if parts.len() < 3 {
            continue;
        }
        let name = parts[0].trim_start_matches('&').to_string();
        let (Ok(msb), Ok(lsb)) = (parts[1].parse::<i64>(), parts[2].parse::<i64>()) else {
            continue;
        };
        found.push((name, is_input, msb, lsb));
    }

    let expect: [(&str, bool, u32); 6] = [
        ("clk", true, 1),
        ("rst", true, 1),
        ("in_valid", true, 1),
        ("in_data", true, design.in_width),
        ("out_valid", false, 1),
        ("out_data", false, design.out_width),
    ];
    let mut problems = Vec::new();
    for (name, input, width) in expect {
        let dir = if input { "input" } else { "output" };
        match found.iter().find(|f| f.0 == name) {
            None => problems.push(format!("top `{}` has no port `{name}`", design.top)),
            Some((_, is_input, msb, lsb)) => {
                if *is_input != input {
                    problems.push(format!("`{name}` must be an {dir}"));
                } else if *lsb != 0 || msb - lsb + 1 != width as i64 {
                    problems.push(format!(
                        "`{name}` is [{msb}:{lsb}], expected [{}:0] ({width} bits)",
                        width - 1
                    ));
                }
            }
        }
    }
    problems
}

/// Last `n` lines of a text file, for error messages; never fails.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}
