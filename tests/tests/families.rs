//! The seed tutorial's model families, exported from the peers' Keras files by `fastml-export`
//! (`models/seed_lutnet`: the HGQ2 `QDenseT` lookup-table network; `models/deepsets`: DeepSets with a
//! Dense shared over 16 particles and mean pooling): `predict` reproduces Keras's own logits exactly on
//! the peers' 1000 inputs, and the Verilog equals the golden model on 100,000 random vectors and on
//! those inputs (co-simulation; Verilator builds are cached by design hash). The million-vector runs
//! are in `make bench` (`bench/families.sh`).

use fastml_tests::{cosim_cli, repo, run};

const BIN: &str = env!("CARGO_BIN_EXE_fastml-compile-e2e");

fn rows(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.parse::<f64>().expect("a number"))
                .collect()
        })
        .collect()
}

/// `predict` on the peers' inputs against Keras's logits: the exact decimals we print and the float64
/// each `%.17g` value denotes must be equal (our outputs are dyadic with few bits, so they parse to
/// exactly themselves).
fn predicts_keras_logits(model: &str) {
    let data = repo().join("tests/data/peers");
    let r = run(
        BIN,
        &[
            "predict",
            &format!("models/{model}/model.json"),
            "--input",
            data.join("x_test.txt").to_str().expect("utf-8"),
        ],
        &repo(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ours = rows(&r.stdout);
    let want = rows(
        &std::fs::read_to_string(data.join(format!("{model}.expected_logits.txt")))
            .expect("expected logits"),
    );
    assert_eq!(ours.len(), 1000);
    assert_eq!(want.len(), 1000);
    let bad: usize = ours
        .iter()
        .zip(&want)
        .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x != y).count())
        .sum();
    assert_eq!(bad, 0, "{model}: {bad} of 5000 logits differ from Keras");
}

#[test]
fn seed_lutnet_predicts_keras_logits_exactly() {
    predicts_keras_logits("seed_lutnet");
}

#[test]
fn deepsets_predicts_keras_logits_exactly() {
    predicts_keras_logits("deepsets");
}

fn cosim(model: &str, clock: &str, extra: &[&str]) {
    let m = repo().join(format!("models/{model}/model.json"));
    let mut args = vec!["--clock-ns", clock];
    args.extend_from_slice(extra);
    let res = cosim_cli(BIN, &m, "100000", &args);
    assert_eq!(res["vectors"], 100000);
    let real = repo().join("tests/data/peers/x_test.txt");
    let res = cosim_cli(BIN, &m, real.to_str().expect("utf-8"), &args);
    assert_eq!(res["vectors"], 1000);
}

#[test]
fn seed_lutnet_verilog_is_bit_exact_at_5_and_1_ns() {
    cosim("seed_lutnet", "5", &[]);
    cosim("seed_lutnet", "1", &[]);
}

#[test]
fn deepsets_verilog_is_bit_exact() {
    cosim("deepsets", "5", &[]);
}
