//! `simulate` without Verilator on PATH must fail with a message pointing at
//! `make deps`, not panic. A separate test binary because it changes PATH for the
//! whole process.

use fastml_sim::{simulate, Design, Options, SimError};

#[test]
fn missing_verilator_says_how_to_install_it() {
    let work = tempfile::tempdir().unwrap();
    let empty_bin = tempfile::tempdir().unwrap();
    std::env::set_var("PATH", empty_bin.path());
    let d = Design {
        top: "add3_40".into(),
        sources: vec![
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/add3_40.v")
        ],
        in_width: 120,
        out_width: 42,
        latency: 2,
    };
    let err = simulate(&d, &[0; 4], &Options::new(work.path())).unwrap_err();
    assert!(matches!(err, SimError::VerilatorMissing { .. }), "{err}");
    assert!(err.to_string().contains("make deps"), "{err}");
}
