//! The emitted Verilog: lint-clean under Verilator `-Wall` and Yosys `check -assert` for every shipped
//! model and for random ones; byte-identical across runs; hostile names legalised; nothing written
//! outside the output folder; a snapshot of a small design's Verilog and report.

use fastml_tests::{lint, repo, run, shipped_models};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fastml-compile-e2e");

fn compile_to(model: &Path, out: &Path, extra: &[&str]) -> fastml_tests::Run {
    let mut args = vec![
        model.to_str().expect("utf-8"),
        "-o",
        out.to_str().expect("utf-8"),
        "-q",
    ];
    args.extend_from_slice(extra);
    let r = run(BIN, &args, &repo());
    assert_eq!(r.code, 0, "{}: {}", model.display(), r.stderr);
    r
}

#[test]
fn shipped_models_are_lint_clean() {
    for m in shipped_models() {
        for clock in ["5", "1"] {
            let out = tempfile::tempdir().expect("temp");
            compile_to(&m, out.path(), &["--clock-ns", clock]);
            if let Err(e) = lint(&out.path().join("rtl")) {
                panic!("{} at {clock} ns:\n{e}", m.display());
            }
        }
    }
}

/// Compile the random models of `seeds` from `gen` and lint each; returns how many compiled (a model
/// whose values exceed the exact arithmetic is a clean user error and is skipped).
fn lint_random(gen: fn(u64) -> String, seeds: std::ops::Range<u64>) -> usize {
    let dir = tempfile::tempdir().expect("temp");
    let mut linted = 0;
    for seed in seeds {
        let model = dir.path().join(format!("random_{seed}.json"));
        std::fs::write(&model, gen(seed)).expect("write");
        let out = dir.path().join(format!("out_{seed}"));
        let r = run(
            BIN,
            &[
                model.to_str().expect("utf-8"),
                "-o",
                out.to_str().expect("utf-8"),
                "-q",
            ],
            dir.path(),
        );
        if r.code == 2 && r.stderr.contains("bits are supported") {
            continue;
        }
        assert_eq!(r.code, 0, "seed {seed}: {}", r.stderr);
        if let Err(e) = lint(&out.join("rtl")) {
            panic!("random model {seed}:\n{e}");
        }
        linted += 1;
    }
    linted
}

#[test]
fn random_models_are_lint_clean() {
    lint_random(fastml_compile::testgen::random_model, 0..12);
}

#[test]
fn random_v2_models_are_lint_clean() {
    // Tensor models: shared Dense, ROMs (localparam columns indexed by an address, LUT6_2 pairs),
    // comparators, products, residual Adds and pooling.
    let linted = lint_random(fastml_compile::testgen::random_model_v2, 0..10);
    assert!(linted >= 8, "only {linted} of 10 random v2 models compiled");
}

#[test]
fn lookup_design_snapshot() {
    // A ROM is a localparam per non-constant output bit indexed by the address slice; equal ROMs are
    // declared once.
    let out = tempfile::tempdir().expect("temp");
    let r = run(
        BIN,
        &[
            "models/handwritten_v2/tiny_set.json",
            "-o",
            out.path().to_str().expect("utf-8"),
            "-q",
        ],
        &repo(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = std::fs::read_to_string(out.path().join("rtl/tiny_set.v")).expect("read");
    assert!(v.contains("localparam"), "{v}");
    insta::assert_snapshot!("tiny_set_verilog", v);
}

#[test]
fn output_is_byte_identical_across_runs() {
    for m in shipped_models() {
        let (a, b) = (
            tempfile::tempdir().expect("temp"),
            tempfile::tempdir().expect("temp"),
        );
        compile_to(&m, a.path(), &[]);
        compile_to(&m, b.path(), &[]);
        let files = tree(&a.path().join("rtl"));
        assert_eq!(files, tree(&b.path().join("rtl")));
        for f in files {
            let x = std::fs::read(a.path().join("rtl").join(&f)).expect("read");
            let y = std::fs::read(b.path().join("rtl").join(&f)).expect("read");
            assert!(x == y, "{} {:?} differs between runs", m.display(), f);
        }
    }
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("inside").display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_names_stay_harmless_and_inside_the_output_folder() {
    let work = tempfile::tempdir().expect("temp");
    let names = [
        "a; endmodule",
        "../../x",
        "module",
        "fc1",
        "fc1!",
        "/etc/passwd",
        "in_data",
        "clk",
        "x\ny",
        "\\escaped ",
        "very_long_name_that_goes_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on",
    ];
    let mut nodes = vec![
        serde_json::json!({"name": names[0], "op": "Input", "shape": [2], "type": "fixed<8,3>"}),
    ];
    let mut prev = names[0].to_string();
    for n in &names[1..] {
        nodes.push(
            serde_json::json!({"name": n, "op": "Dense", "inputs": [prev],
            "weight": {"shape": [2, 2], "type": "fixed<4,1>", "data": [3, -5, 7, 1]}}),
        );
        prev = n.to_string();
    }
    nodes.push(serde_json::json!({"name": "../../../out", "op": "Output", "inputs": [prev]}));
    let model = serde_json::json!({"format": "fastml-model", "version": 1, "name": "../../evil; endmodule", "nodes": nodes});
    let path = work.path().join("model.json");
    std::fs::write(&path, model.to_string()).expect("write");
    let out = work.path().join("out");
    let r = run(
        BIN,
        &[
            path.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
            "-q",
        ],
        work.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    lint(&out.join("rtl")).expect("lint-clean despite hostile names");
    assert_eq!(
        tree(work.path())
            .into_iter()
            .filter(|f| !f.starts_with("out/"))
            .collect::<Vec<_>>(),
        vec!["model.json"]
    );
    assert_eq!(
        tree(&out),
        vec![
            "report.json",
            "rtl/evil_endmodule.v",
            "rtl/fastml_add3.v",
            "rtl/fastml_valid_pipe.v",
            "rtl/sim/CARRY8.v",
            "rtl/sim/LUT6_2.v",
            "rtl/sim/fastml_add3_model.v"
        ]
    );
    let v = std::fs::read_to_string(out.join("rtl/evil_endmodule.v")).expect("read");
    assert_eq!(
        v.lines().filter(|l| l.trim() == "endmodule").count(),
        1,
        "the module ends once"
    );
    assert!(v.contains("module evil_endmodule ("));
    assert!(
        v.contains("a_endmodule__in0"),
        "the hostile layer name is legalised into identifiers"
    );
    // The original name may appear in the header comment (control characters replaced), nowhere else.
    for l in v.lines().filter(|l| !l.starts_with("//")) {
        assert!(!l.contains("../"), "{l}");
    }
}

#[test]
fn small_design_snapshot() {
    let out = tempfile::tempdir().expect("temp");
    let r = run(
        BIN,
        &[
            "models/handwritten/batchnorm.json",
            "-o",
            out.path().to_str().expect("utf-8"),
        ],
        &repo(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let top = fastml_tests::top_of(&out.path().join("rtl"));
    let v = std::fs::read_to_string(out.path().join("rtl").join(format!("{top}.v"))).expect("read");
    insta::assert_snapshot!("batchnorm_verilog", v);
    // The table without the timing line (compile time varies).
    let table: String = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("compiled in"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("batchnorm_table", table);
}

#[test]
fn report_json_states_latency_ports_and_estimate() {
    let out = tempfile::tempdir().expect("temp");
    compile_to(
        &repo().join("models/qkeras_3layer/model.json"),
        out.path(),
        &["--clock-ns", "2.5"],
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("report.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["ii"], 1);
    assert_eq!(report["target"]["part"], "xcvu9p");
    let lat = report["latency_cycles"].as_u64().expect("latency");
    assert!(
        lat >= 3,
        "a 4-layer net at 2.5 ns needs several stages, got {lat}"
    );
    assert_eq!(report["latency_ns"].as_f64(), Some(lat as f64 * 2.5));
    assert_eq!(report["ports"]["in_width"], 256);
    assert_eq!(
        report["ports"]["inputs"].as_array().expect("inputs").len(),
        16
    );
    assert_eq!(
        report["ports"]["outputs"]
            .as_array()
            .expect("outputs")
            .len(),
        5
    );
    assert!(report["estimate"]["lut"].as_u64().expect("lut") > 1000);
    assert_eq!(report["estimate"]["dsp"], 0);
    // A faster clock never gives a shorter pipeline.
    let out5 = tempfile::tempdir().expect("temp");
    compile_to(
        &repo().join("models/qkeras_3layer/model.json"),
        out5.path(),
        &["--clock-ns", "5"],
    );
    let r5: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out5.path().join("report.json")).expect("report"),
    )
    .expect("json");
    assert!(r5["latency_cycles"].as_u64().expect("latency") <= lat);
}

#[test]
fn pruning_shrinks_the_hardware() {
    // The same network twice: dense weights, and with most weights zeroed. Zeros cost no adders, and a
    // neuron whose weights are all zero costs nothing at all.
    let mk = |keep: &dyn Fn(usize) -> bool| {
        let w: Vec<i64> = (0..64)
            .map(|k| if keep(k) { (k as i64 % 13) - 6 } else { 0 })
            .collect();
        let w2: Vec<i64> = (0..32)
            .map(|k| if keep(k) { (k as i64 % 7) - 3 } else { 0 })
            .collect();
        serde_json::json!({"format": "fastml-model", "version": 1, "nodes": [
            {"name": "x", "op": "Input", "shape": [8], "type": "fixed<10,4>"},
            {"name": "d1", "op": "Dense", "inputs": ["x"], "weight": {"shape": [8, 8], "type": "fixed<5,1>", "data": w},
             "bias": {"shape": [8], "type": "fixed<5,1>", "data": [1, 2, 3, 4, 5, 6, 7, 8]}},
            {"name": "r", "op": "ReLU", "inputs": ["d1"]},
            {"name": "q", "op": "Quantize", "inputs": ["r"], "type": "ufixed<6,2,RND,SAT>"},
            {"name": "d2", "op": "Dense", "inputs": ["q"], "weight": {"shape": [8, 4], "type": "fixed<4,1>", "data": w2}},
            {"name": "y", "op": "Output", "inputs": ["d2"]}]})
        .to_string()
    };
    let dir = tempfile::tempdir().expect("temp");
    let adders = |name: &str, text: String| -> u64 {
        let p = dir.path().join(format!("{name}.json"));
        std::fs::write(&p, text).expect("write");
        let out = dir.path().join(name);
        compile_to(&p, &out, &[]);
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("report.json")).expect("report"),
        )
        .expect("json");
        r["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["adders"].as_u64().expect("adders"))
            .sum()
    };
    let dense = adders("dense", mk(&|k| (k as i64 % 13) != 6));
    // Keep only weights of the first two neurons of d1 (columns 0, 1) and rows 0..2 of d2.
    let pruned = adders("pruned", mk(&|k| k % 8 < 2));
    assert!(dense > 40, "dense network has {dense} adders");
    assert!(pruned * 4 < dense, "pruned {pruned} vs dense {dense}");
}

#[test]
fn no_ternary_gives_portable_verilog_without_primitives() {
    let m = repo().join("models/qkeras_3layer/model.json");
    let (a, b) = (
        tempfile::tempdir().expect("temp"),
        tempfile::tempdir().expect("temp"),
    );
    compile_to(&m, a.path(), &["--no-ternary"]);
    compile_to(&m, b.path(), &[]);
    let files = tree(&a.path().join("rtl"));
    assert_eq!(files, vec!["fastml_valid_pipe.v", "qkeras_3layer.v"]);
    let v = std::fs::read_to_string(a.path().join("rtl/qkeras_3layer.v")).expect("read");
    assert!(!v.contains("fastml_add3") && !v.contains("LUT6_2"));
    lint(&a.path().join("rtl")).expect("lint-clean");
    // The default uses ternary adders, and they save LUTs in the estimate.
    let est = |d: &Path| -> u64 {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).expect("read"))
                .expect("json");
        r["estimate"]["lut"].as_u64().expect("lut")
    };
    assert!(tree(&b.path().join("rtl")).contains(&"fastml_add3.v".to_string()));
    assert!(
        est(b.path()) * 10 < est(a.path()) * 9,
        "{} vs {}",
        est(b.path()),
        est(a.path())
    );
}

#[test]
fn a_clock_too_short_for_ternary_adders_falls_back_to_binary_ones() {
    // At 0.8 ns a ternary adder (two LUT levels) does not fit a stage but a binary one does: the
    // default search keeps binary adders; a forced slack is a user error that names the way out.
    let m = repo().join("models/handwritten/rounding.json");
    let out = tempfile::tempdir().expect("temp");
    compile_to(&m, out.path(), &["--clock-ns", "0.8"]);
    let v = std::fs::read_to_string(out.path().join("rtl/rounding.v")).expect("read");
    assert!(!v.contains("fastml_add3"));
    let r = run(
        BIN,
        &[
            m.to_str().expect("utf-8"),
            "-o",
            out.path().to_str().expect("utf-8"),
            "-q",
            "--clock-ns",
            "0.8",
            "--ternary-slack",
            "0",
        ],
        &repo(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("add3") && r.stderr.contains("--no-ternary"),
        "{}",
        r.stderr
    );
}
