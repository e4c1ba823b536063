//! The compiler computes what QKeras computed on real jets: the golden model of `qkeras_3layer` on the 8
//! real, scaled jets of the hls4ml tutorial's test set, followed by a float softmax, against QKeras's
//! own outputs (`y_qkeras.npy`, saved by hls4ml's test script from `model.predict`).
//!
//! QKeras fed the jets unquantised, so a variant of the model with an input type wide enough to hold
//! them (`fixed<32,6>`) must agree to 1e-5; with the shipped `fixed<16,6>` input (hls4ml's setting) the
//! predicted classes must agree. The `predict` command must print the same exact numbers.

use fastml_compile::fixed::to_decimal;
use fastml_compile::golden::eval_layers;
use fastml_compile::ir::layer::{LayerGraph, LayerOp};
use fastml_compile::{frontend, Options};
use fastml_tests::{repo, run};

const BIN: &str = env!("CARGO_BIN_EXE_fastml-compile-e2e");

fn jets() -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(repo().join("tests/data/reference/data_X_inputs.dat"))
        .expect("tests/data/reference/data_X_inputs.dat");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.parse().expect("number"))
                .collect()
        })
        .collect()
}

/// The first `rows` rows of QKeras's outputs (`tests/data/reference/y_qkeras_first8.txt`: the first 8
/// rows of `y_qkeras.npy`, each float32 printed exactly).
fn npy_rows(rows: usize) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(repo().join("tests/data/reference/y_qkeras_first8.txt"))
        .expect("tests/data/reference/y_qkeras_first8.txt");
    let out: Vec<Vec<f64>> = text
        .lines()
        .take(rows)
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.parse::<f64>().expect("number"))
                .collect()
        })
        .collect();
    assert_eq!(out.len(), rows);
    for r in &out {
        assert!(r.iter().all(|v| (*v as f32) as f64 == *v), "float32 values");
    }
    out
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |b, (i, x)| if *x > v[b] { i } else { b })
}

fn model_with_input(ty: &str) -> LayerGraph {
    let path = repo().join("models/qkeras_3layer/model.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("model")).expect("json");
    let input = v["nodes"]
        .as_array_mut()
        .expect("nodes")
        .iter_mut()
        .find(|n| n["op"] == "Input")
        .expect("an Input");
    input["type"] = serde_json::json!(ty);
    frontend::parse_model(&v.to_string(), "qkeras_3layer variant").expect("valid")
}

/// A real input vector quantised by the design's Input quantisers, exactly as `predict` does it.
fn quantize(design: &fastml_compile::Design, x: &[f64]) -> Vec<i128> {
    let LayerOp::Input { q } = &design
        .layers
        .layer(design.layers.input().expect("input"))
        .op
    else {
        unreachable!()
    };
    x.iter()
        .zip(q)
        .map(|(v, q)| q.quantize_f64(*v).expect("finite"))
        .collect()
}

/// Golden-model logits (exact, shown as f64) of real-valued inputs.
fn logits(model: &LayerGraph, xs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let design = fastml_compile::compile(model, &Options::default()).expect("compiles");
    let program = fastml_compile::golden::Program::new(&design.dfg);
    xs.iter()
        .map(|x| {
            let m = quantize(&design, x);
            // The hardware's golden model must agree with the specification here too.
            let hw = program.eval(&m);
            let spec = eval_layers(&design.layers, &m);
            for ((h, s), f) in hw.iter().zip(&spec).zip(&program.output_fracs) {
                assert_eq!(
                    fastml_compile::ir::layer::Const { m: *h, frac: *f }.normalized(),
                    s.normalized()
                );
            }
            spec.iter().map(|c| c.to_f64()).collect()
        })
        .collect()
}

#[test]
fn wide_input_variant_matches_qkeras_to_1e5() {
    let xs = jets();
    assert_eq!(xs.len(), 8);
    let want = npy_rows(8);
    let got = logits(&model_with_input("fixed<32,6>"), &xs);
    let mut worst: f64 = 0.0;
    for (z, y) in got.iter().zip(&want) {
        for (a, b) in softmax(z).iter().zip(y) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!("max |softmax(golden) - y_qkeras| = {worst:e}");
    assert!(worst < 1e-5, "max |softmax(golden) - y_qkeras| = {worst}");
}

#[test]
fn shipped_model_predicts_the_same_classes_as_qkeras() {
    let xs = jets();
    let want = npy_rows(8);
    let got = logits(&model_with_input("fixed<16,6>"), &xs);
    for (k, (z, y)) in got.iter().zip(&want).enumerate() {
        assert_eq!(argmax(z), argmax(y), "jet {k}: {z:?} vs {y:?}");
    }
}

#[test]
fn predict_command_prints_the_exact_golden_outputs() {
    let dir = tempfile::tempdir().expect("temp");
    let input = repo().join("tests/data/reference/data_X_inputs.dat");
    let model_path = repo().join("models/qkeras_3layer/model.json");
    let predict = |extra: &[&str]| {
        let mut args = vec![
            "predict",
            model_path.to_str().expect("utf-8"),
            "--input",
            input.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let r = run(BIN, &args, dir.path());
        assert_eq!(r.code, 0, "{}", r.stderr);
        r
    };
    let r = predict(&[]);
    let model = frontend::load_model(&model_path).expect("model");
    let design = fastml_compile::compile(&model, &Options::default()).expect("compiles");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 8);
    for (x, line) in jets().iter().zip(lines) {
        let want: Vec<String> = eval_layers(&design.layers, &quantize(&design, x))
            .iter()
            .map(|c| to_decimal(c.m, c.frac))
            .collect();
        assert_eq!(line, want.join(" "));
    }
    // --output writes the same text to a file, and --float gives the unquantised network's outputs.
    predict(&["--output", "y.txt"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("y.txt")).expect("y.txt"),
        r.stdout
    );
    assert_eq!(predict(&["--float"]).stdout.lines().count(), 8);
}
