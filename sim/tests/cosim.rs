//! End-to-end tests of `fastml-sim` against hand-written Verilog in `tests/data/`.
//!
//! They need Verilator and g++ (as the crate does). Work dirs are temporary; builds
//! of the shared designs go to one cache under Cargo's per-target test temp dir so
//! that re-running the suite does not rebuild them (the cache test uses a fresh
//! cache of its own, so the build path is always exercised). Each distinct design
//! appears in exactly one test that builds it, because concurrent tests building the
//! same design would just do the work twice.

use fastml_sim::{simulate, words, Design, Options, SimError, IDLE_AFTER_RESET, RESET_CYCLES};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn design(top: &str, file: &str, in_width: u32, out_width: u32, latency: u32) -> Design {
    Design {
        top: top.into(),
        sources: vec![data(file)],
        in_width,
        out_width,
        latency,
    }
}

/// Options with a fresh temporary work dir and the suite-wide build cache.
fn opts(work: &tempfile::TempDir) -> Options {
    let mut o = Options::new(work.path());
    o.cache_dir = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fastml-sim-cache"));
    o
}

/// Deterministic xorshift words; the upper, unused bits of each vector's top word
/// are left random on purpose: the harness must ignore them.
fn random_words(n: usize, seed: u64) -> Vec<u32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 16) as u32
        })
        .collect()
}

fn to_u128(w: &[u32]) -> u128 {
    w.iter()
        .rev()
        .fold(0u128, |acc, &x| (acc << 32) | x as u128)
}

fn from_u128(v: u128, n: usize) -> Vec<u32> {
    (0..n).map(|i| (v >> (32 * i)) as u32).collect()
}

fn mask(bits: u32) -> u128 {
    (1u128 << bits) - 1
}

/// Reference model of tests/data/add3_40.v.
fn add3_ref(inputs: &[u32]) -> Vec<u32> {
    inputs
        .chunks(words(120))
        .flat_map(|w| {
            let x = to_u128(w) & mask(120);
            let s = (x & mask(40)) + ((x >> 40) & mask(40)) + ((x >> 80) & mask(40));
            from_u128(s, words(42))
        })
        .collect()
}

/// Reference model of tests/data/wide7_70.v.
fn wide_ref(inputs: &[u32]) -> Vec<u32> {
    inputs
        .iter()
        .flat_map(|&w| {
            let x = (w & 0x7f) as u128;
            let v = (x << 63) | ((x * x) << 49) | ((x * 0x1_2345_6789_ABCD) & mask(49));
            from_u128(v, words(70))
        })
        .collect()
}

#[test]
fn add3_40_matches_reference_with_and_without_bubbles() {
    let work = tempfile::tempdir().unwrap();
    let d = design("add3_40", "add3_40.v", 120, 42, 2);
    let n = 4000;
    let inputs = random_words(n * words(120), 0xADD3);
    let want = add3_ref(&inputs);

    let out = simulate(&d, &inputs, &opts(&work)).unwrap();
    assert_eq!(out.outputs.len(), n * words(42));
    assert!(
        out.outputs == want,
        "outputs differ from the Rust reference"
    );
    assert_eq!((out.latency_min, out.latency_max), (2, 2));
    assert!(out.cycles >= (n as u64) + RESET_CYCLES + IDLE_AFTER_RESET + 2);

    // Same design with an idle cycle after every 5 vectors: same results, in order.
    let mut o = opts(&work);
    o.bubble_every = 5;
    let bub = simulate(&d, &inputs, &o).unwrap();
    assert!(
        bub.cached,
        "second call with only run-time options changed must reuse the build"
    );
    assert!(bub.outputs == want, "bubbles changed the outputs");
    assert_eq!((bub.latency_min, bub.latency_max), (2, 2));
    // n/5 extra idle cycles, except that the bubble after the last vector also
    // serves as one drain cycle.
    let extra = bub.cycles - out.cycles;
    assert!(
        extra == (n as u64) / 5 || extra == (n as u64) / 5 - 1,
        "extra cycles {extra}"
    );

    // Successful runs leave no run directories behind.
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
        .collect();
    assert!(leftovers.is_empty(), "run dirs left: {leftovers:?}");
}

#[test]
fn wide7_70_latency_1_and_empty_input() {
    let work = tempfile::tempdir().unwrap();
    let d = design("wide7_70", "wide7_70.v", 7, 70, 1);
    // Every 7-bit value, then random ones (with junk above bit 6).
    let mut inputs: Vec<u32> = (0..128).collect();
    inputs.extend(random_words(3000, 0x7070));
    let out = simulate(&d, &inputs, &opts(&work)).unwrap();
    assert!(
        out.outputs == wide_ref(&inputs),
        "outputs differ from the Rust reference"
    );
    assert_eq!((out.latency_min, out.latency_max), (1, 1));

    let empty = simulate(&d, &[], &opts(&work)).unwrap();
    assert!(empty.cached);
    assert!(empty.outputs.is_empty());
    assert_eq!((empty.latency_min, empty.latency_max), (0, 0));
}

#[test]
fn second_call_reuses_the_cached_build() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let d = design("wide7_70", "wide7_70.v", 7, 70, 1);
    let inputs = random_words(2000, 0xCAC4E);
    let mut o = Options::new(work.path());
    o.cache_dir = Some(cache.path().to_path_buf());

    let first = simulate(&d, &inputs, &o).unwrap();
    let second = simulate(&d, &inputs, &o).unwrap();
    assert!(!first.cached);
    assert!(second.cached);
    assert!(
        second.build_seconds < first.build_seconds / 4.0,
        "cached build took {}s vs {}s",
        second.build_seconds,
        first.build_seconds
    );
    assert_eq!(first.outputs, second.outputs);
    assert_eq!(first.outputs, wide_ref(&inputs));

    // Exactly one finished build, no temporary build dirs, nothing in the work dir
    // but run leftovers (none on success).
    let names: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "cache holds {names:?}");
    assert_eq!(
        names[0].len(),
        64,
        "cache entry should be a sha256 hex: {names:?}"
    );
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[test]
fn wrong_declared_latency_is_measured_not_fatal() {
    // add3_40 really has latency 2; declare 1. Pairing and draining must still work
    // and the caller sees the discrepancy in the measured latency.
    let work = tempfile::tempdir().unwrap();
    let d = design("add3_40", "add3_40.v", 120, 42, 1);
    let inputs = random_words(1000 * words(120), 0x1A7);
    let mut o = opts(&work);
    o.bubble_every = 3;
    let out = simulate(&d, &inputs, &o).unwrap();
    assert_eq!((out.latency_min, out.latency_max), (2, 2));
    assert_ne!(out.latency_max, d.latency);
    assert!(out.outputs == add3_ref(&inputs));
}

#[test]
fn valid_high_during_reset_is_reported() {
    let work = tempfile::tempdir().unwrap();
    let d = design("bad_reset", "broken.v", 8, 8, 1);
    let err = simulate(&d, &random_words(100, 5), &opts(&work)).unwrap_err();
    assert!(matches!(err, SimError::ResetViolation { .. }), "{err}");
    assert!(err.to_string().contains("reset"), "{err}");
}

#[test]
fn dropped_vectors_are_an_output_count_mismatch() {
    let work = tempfile::tempdir().unwrap();
    let d = design("drop_odd", "broken.v", 8, 8, 1);
    let inputs: Vec<u32> = (0..100).collect();
    match simulate(&d, &inputs, &opts(&work)) {
        Err(SimError::OutputCountMismatch {
            inputs, outputs, ..
        }) => {
            assert_eq!((inputs, outputs), (100, 50));
        }
        other => panic!("expected OutputCountMismatch, got {other:?}"),
    }
}

#[test]
fn build_failure_carries_the_log() {
    let work = tempfile::tempdir().unwrap();
    let d = design("syntax_error", "syntax_error.v", 8, 8, 1);
    let err = simulate(&d, &[1, 2, 3], &opts(&work)).unwrap_err();
    match &err {
        SimError::BuildFailed { log, tail, .. } => {
            assert!(log.is_file(), "log {} should be kept", log.display());
            assert!(
                tail.contains("syntax_error.v"),
                "tail lacks the error: {tail}"
            );
        }
        other => panic!("expected BuildFailed, got {other}"),
    }
    assert!(err.to_string().contains("build.log"));
}

#[test]
fn malformed_requests_are_rejected_before_building() {
    let work = tempfile::tempdir().unwrap();
    let d = design("add3_40", "add3_40.v", 120, 42, 2);
    let err = simulate(&d, &[0; 5], &opts(&work)).unwrap_err();
    assert!(matches!(err, SimError::Invalid(_)), "{err}");

    let missing = design("add3_40", "no_such_file.v", 120, 42, 2);
    let err = simulate(&missing, &[0; 4], &opts(&work)).unwrap_err();
    assert!(matches!(err, SimError::Invalid(_)), "{err}");

    let zero = design("add3_40", "add3_40.v", 0, 42, 2);
    assert!(matches!(
        simulate(&zero, &[], &opts(&work)),
        Err(SimError::Invalid(_))
    ));
}

#[test]
fn port_width_mismatch_is_reported_before_compiling() {
    let work = tempfile::tempdir().unwrap();
    // add3_40's out_data is 42 bits; a silently truncated 40-bit view must not pass.
    let d = design("add3_40", "add3_40.v", 120, 40, 2);
    let err = simulate(&d, &[0; 4], &opts(&work)).unwrap_err();
    match &err {
        SimError::BuildFailed { status, .. } => {
            assert!(
                status.contains("out_data") && status.contains("[41:0]"),
                "{status}"
            );
        }
        other => panic!("expected BuildFailed, got {other}"),
    }
}
