//! Every hostile input gets one clear message naming the file, the JSON path (or line and column where
//! the JSON itself is broken) and what was expected, with exit code 2 and no panic. Messages are
//! snapshot-tested (insta); `INSTA_UPDATE=always cargo test` regenerates them after a deliberate change.

use fastml_tests::{repo, run};

const BIN: &str = env!("CARGO_BIN_EXE_fastml-compile-e2e");

fn bad_dir() -> std::path::PathBuf {
    repo().join("tests").join("data").join("bad")
}

fn check(file: &str) -> String {
    let out = tempfile::tempdir().expect("temp dir");
    let r = run(
        BIN,
        &[file, "-o", out.path().to_str().expect("utf-8 path")],
        &bad_dir(),
    );
    assert_eq!(
        r.code, 2,
        "{file}: exit code {} stderr:\n{}",
        r.code, r.stderr
    );
    assert!(r.stderr.starts_with("error: "), "{file}: {}", r.stderr);
    assert!(
        r.stderr.contains(file),
        "{file}: the message names the file: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{file}: {}", r.stderr);
    assert!(
        std::fs::read_dir(out.path())
            .expect("out dir")
            .next()
            .is_none(),
        "{file}: nothing is written for a bad model"
    );
    r.stderr
}

macro_rules! bad {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let msg = check(concat!(stringify!($name), ".json"));
            insta::assert_snapshot!(stringify!($name), msg);
        }
    )*};
}

bad!(
    mean_not_power_of_two,
    table_wrong_size,
    reshape_count,
    transpose_perm,
    add_shapes,
    lookup_duplicate_pair,
    v2_op_in_v1,
    tensor_in_v1,
    invalid_json,
    truncated,
    not_an_object,
    missing_format,
    unknown_version,
    missing_field,
    unknown_field,
    wrong_shape,
    wrong_data_length,
    unknown_kind,
    unknown_input,
    cycle,
    weight_overflow,
    float_mantissa,
    unknown_rounding,
    unknown_overflow,
    duplicate_name,
    no_output,
    two_inputs,
    width_too_large,
    types_length,
    output_as_input,
    accumulator_too_wide,
);

#[test]
fn every_bad_file_has_a_test() {
    let src = include_str!("errors.rs");
    for e in std::fs::read_dir(bad_dir()).expect("bad dir") {
        let name = e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .replace(".json", "");
        assert!(
            src.contains(&format!("    {name},")),
            "tests/data/bad/{name}.json has no test"
        );
    }
}

#[test]
fn missing_model_file() {
    let out = tempfile::tempdir().expect("temp dir");
    let r = run(
        BIN,
        &[
            "no_such_model.json",
            "-o",
            out.path().to_str().expect("utf-8"),
        ],
        &bad_dir(),
    );
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(
        "missing_model_file",
        r.stderr.replace(char::is_numeric, "#")
    );
}

#[test]
fn unknown_target_lists_the_known_parts() {
    let model = repo().join("models/handwritten/rounding.json");
    let out = tempfile::tempdir().expect("temp dir");
    let r = run(
        BIN,
        &[
            model.to_str().expect("utf-8"),
            "--target",
            "xc7a35t",
            "-o",
            out.path().to_str().expect("utf-8"),
        ],
        &repo(),
    );
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("unknown_target", r.stderr);
}

#[test]
fn impossible_clock() {
    let model = repo().join("models/handwritten/wide.json");
    let out = tempfile::tempdir().expect("temp dir");
    let r = run(
        BIN,
        &[
            model.to_str().expect("utf-8"),
            "--clock-ns",
            "0.1",
            "-o",
            out.path().to_str().expect("utf-8"),
        ],
        &repo(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    insta::assert_snapshot!("impossible_clock", r.stderr);
}

#[test]
fn predict_with_a_bad_vector_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("x.txt"), "0.5 0.25 1\n1.0 oops 2\n").expect("write");
    let model = repo().join("models/handwritten/rounding.json");
    let r = run(
        BIN,
        &[
            "predict",
            model.to_str().expect("utf-8"),
            "--input",
            "x.txt",
        ],
        dir.path(),
    );
    assert_eq!(r.code, 2);
    insta::assert_snapshot!("predict_bad_vectors", r.stderr);
}
