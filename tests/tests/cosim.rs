//! End-to-end co-simulation: the Verilog, run by Verilator, equals the golden model bit for bit and its
//! measured latency equals the scheduled one, for every shipped model, for random models at several
//! clock periods, and for the real jets; and a deliberately broken design is caught (so this test can
//! fail). Verilator builds are cached by design hash in `target/fastml-sim-cache`; the million-vector
//! runs live in `make bench`.

use fastml_compile::{cosim, frontend, Options};
use fastml_tests::{repo, run, shared, shipped_models, sim_cache};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_fastml-compile-e2e");

fn cosim_cli(model: &Path, vectors: &str, extra: &[&str]) -> serde_json::Value {
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
    let r = run(BIN, &args, &repo());
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

#[test]
fn handwritten_models_are_bit_exact() {
    for m in shipped_models() {
        if m.to_string_lossy().contains("handwritten") {
            for clock in ["5", "1"] {
                let res = cosim_cli(&m, "20000", &["--clock-ns", clock]);
                assert_eq!(res["vectors"], 20000);
            }
        }
    }
}

#[test]
fn random_models_are_bit_exact() {
    let dir = tempfile::tempdir().expect("temp");
    for seed in 100..106u64 {
        let model = dir.path().join(format!("random_{seed}.json"));
        std::fs::write(&model, fastml_compile::testgen::random_model(seed)).expect("write");
        let clock = if seed % 2 == 0 { "1" } else { "5" };
        cosim_cli(&model, "5000", &["--clock-ns", clock]);
    }
}

#[test]
fn jet_tagger_is_bit_exact_on_random_corner_and_real_vectors() {
    let m = repo().join("models/qkeras_3layer/model.json");
    let res = cosim_cli(&m, "30000", &[]);
    assert!(res["scheduled_latency"].as_u64().expect("latency") >= 2);
    let jets = shared().join("reference/test-hls4ml-backend/data_X_inputs.dat");
    let res = cosim_cli(&m, jets.to_str().expect("utf-8"), &[]);
    assert_eq!(res["vectors"], 8);
}

#[test]
fn a_broken_design_is_caught() {
    // Compile, then change one adder into a subtractor in the Verilog: co-simulation must notice.
    let model =
        frontend::load_model(&repo().join("models/handwritten/rounding.json")).expect("model");
    let design = fastml_compile::compile(&model, &Options::default()).expect("compiles");
    let dir = tempfile::tempdir().expect("temp");
    let rtl = dir.path().join("rtl");
    std::fs::create_dir_all(&rtl).expect("mkdir");
    for f in &design.verilog {
        let mut text = f.text.clone();
        if f.file_name != "fastml_valid_pipe.v" {
            let at = text
                .find(") + ")
                .or_else(|| text.find(" + "))
                .expect("an adder");
            text.replace_range(at..at + 4, &text[at..at + 4].replace('+', "-"));
        }
        std::fs::write(rtl.join(&f.file_name), text).expect("write");
    }
    let inputs = fastml_compile::vectors::generate(&design.dfg.inputs, 2000, 3);
    let res = cosim::run(
        &design,
        &rtl,
        &inputs,
        &cosim::CosimOptions {
            work_dir: dir.path().join("cosim"),
            cache_dir: Some(sim_cache()),
            progress: false,
            bubble_every: 5,
        },
    )
    .expect("simulates");
    assert!(res.mismatches > 0, "the mutation went unnoticed");
    assert!(!res.first.is_empty());
    assert!(!res.passed());
}
