//! Conformance with the frameworks: for every reference set in `tests/data/refs/<name>/` (made once by
//! `make refs` in pinned QKeras / HGQ / HGQ2 / hls4ml environments; see `refs/README.md`), the golden
//! model of the exported `model.json` must equal the framework's stored outputs on all N = 100,000
//! inputs, bit for bit, and the Verilog must equal the golden model under Verilator on the same inputs.
//!
//! The inputs are not stored: they come from the generator in `refs/README.md` (SplitMix64, corner rows
//! first), re-implemented here and checked against the sha256 the reference scripts recorded. Each real
//! input value is handed to the model exactly as the framework got it: quantised by the model's Input
//! quantiser, exactly (no float rounding).

use fastml_compile::fixed::FixedType;
use fastml_compile::golden::Program;
use fastml_compile::ir::layer::LayerOp;
use fastml_compile::{cosim, frontend, Options};
use fastml_tests::{repo, sim_cache};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The reference inputs: `(N, n)` mantissas of a signed `fixed<W,I>` (refs/README.md, "Input vectors").
fn input_mantissas(n: usize, w: u32, count: usize, seed: u64) -> Vec<Vec<i64>> {
    let (lo, hi) = (-(1i64 << (w - 1)), (1i64 << (w - 1)) - 1);
    let corner = |k: usize, j: usize| -> i64 {
        match k {
            0 => lo,
            1 => hi,
            2 => 0,
            3 => 1,
            4 => -1,
            5 => {
                if j.is_multiple_of(2) {
                    lo
                } else {
                    hi
                }
            }
            6 => {
                if j.is_multiple_of(2) {
                    hi
                } else {
                    lo
                }
            }
            _ => hi >> 1,
        }
    };
    let span = (hi - lo + 1) as u64;
    let base = seed.wrapping_mul(GOLDEN);
    (0..count)
        .map(|k| {
            (0..n)
                .map(|j| {
                    if k < 8 {
                        corner(k, j)
                    } else {
                        let r = splitmix64(
                            base.wrapping_add((k as u64).wrapping_mul(n as u64))
                                .wrapping_add(j as u64),
                        );
                        lo + (r % span) as i64
                    }
                })
                .collect()
        })
        .collect()
}

/// A little-endian float64 or float32 `.npy` as rows of f64.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let bytes = std::fs::read(path).expect("outputs.npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (hl, off) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = String::from_utf8_lossy(&bytes[off..off + hl]).to_string();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape")
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let data = &bytes[off + hl..];
    let values = if header.contains("'<f8'") {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    } else if header.contains("'<f4'") {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
            .collect()
    } else {
        panic!("unsupported dtype in {header}")
    };
    (shape, values)
}

/// Is the exact value `m · 2^-frac` equal to the float `x`?
fn exact_eq(m: i128, frac: i32, x: f64) -> bool {
    if !x.is_finite() {
        return false;
    }
    if x == 0.0 {
        return m == 0;
    }
    if m == 0 {
        return false;
    }
    // Both as (odd mantissa, exponent).
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    let f = (bits & ((1 << 52) - 1)) as i128;
    let (mut xm, mut xe) = if e == 0 {
        (f, -1074)
    } else {
        (f | (1 << 52), e - 1075)
    };
    if x < 0.0 {
        xm = -xm;
    }
    let tz = xm.trailing_zeros() as i32;
    xm >>= tz;
    xe += tz;
    let tz = m.trailing_zeros() as i32;
    (m >> tz) == xm && (tz - frac) == xe
}

struct Reference {
    name: String,
    dir: PathBuf,
    meta: serde_json::Value,
}

fn references() -> Vec<Reference> {
    let root = repo().join("tests/data/refs");
    let mut v: Vec<Reference> = std::fs::read_dir(&root)
        .expect("tests/data/refs")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").exists() && p.join("model.json").exists())
        .map(|dir| Reference {
            name: dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            meta: serde_json::from_str(
                &std::fs::read_to_string(dir.join("meta.json")).expect("meta"),
            )
            .expect("json"),
            dir,
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The model's inputs for a reference: generated mantissas on the reference grid, quantised exactly by
/// the model's Input quantiser.
fn model_inputs(
    r: &Reference,
    model: &fastml_compile::ir::layer::LayerGraph,
    count: usize,
) -> Vec<Vec<i128>> {
    let inp = &r.meta["inputs"];
    let (n, w, i) = (
        inp["n_features"].as_u64().expect("n") as usize,
        inp["W"].as_u64().expect("W") as u32,
        inp["I"].as_i64().expect("I") as i32,
    );
    let seed = inp["seed"].as_u64().expect("seed");
    let ms = input_mantissas(n, w, count, seed);
    if count == inp["N"].as_u64().expect("N") as usize {
        let mut h = Sha256::new();
        for row in &ms {
            for m in row {
                h.update(m.to_le_bytes());
            }
        }
        let got = format!("{:x}", h.finalize());
        assert_eq!(
            got,
            inp["mantissa_sha256"].as_str().expect("sha"),
            "{}: input generator differs",
            r.name
        );
    }
    let LayerOp::Input { q } = &model.layer(model.input().expect("input")).op else {
        unreachable!()
    };
    let frac = FixedType::ap(true, w, i).frac;
    ms.iter()
        .map(|row| {
            row.iter()
                .zip(q)
                .map(|(m, q)| q.apply(*m as i128, frac))
                .collect()
        })
        .collect()
}

#[test]
fn golden_model_equals_every_framework_output() {
    let refs = references();
    assert!(refs.len() >= 20, "reference sets missing: {}", refs.len());
    let mut table = vec![];
    for r in &refs {
        let model = frontend::load_model(&r.dir.join("model.json")).expect("model.json");
        let design = fastml_compile::compile(&model, &Options::default()).expect("compiles");
        let n_ref = r.meta["inputs"]["N"].as_u64().expect("N") as usize;
        let xs = model_inputs(r, &model, n_ref);
        let (shape, want) = read_npy(&r.dir.join("outputs.npy"));
        assert_eq!(shape[0], n_ref, "{}", r.name);
        let p = Program::new(&design.dfg);
        let got = p.eval_batch(&xs);
        let n_out = shape[1];
        assert_eq!(p.output_fracs.len(), n_out, "{}", r.name);
        let mut bad = 0usize;
        let mut first = None;
        for (k, row) in got.iter().enumerate() {
            for (j, (&m, &f)) in row.iter().zip(&p.output_fracs).enumerate() {
                if !exact_eq(m, f, want[k * n_out + j]) {
                    bad += 1;
                    first.get_or_insert((
                        k,
                        j,
                        fastml_compile::fixed::to_decimal(m, f),
                        want[k * n_out + j],
                    ));
                }
            }
        }
        table.push(format!(
            "{:<30} {:<22} {:>7} {:>9}",
            r.name,
            r.meta["framework"].as_str().unwrap_or("?"),
            n_ref,
            bad
        ));
        assert_eq!(
            bad,
            0,
            "{}: {bad} of {} values differ from the framework; first {first:?}",
            r.name,
            n_ref * n_out
        );
    }
    eprintln!(
        "{:<30} {:<22} {:>7} {:>9}\n{}",
        "reference",
        "framework",
        "vectors",
        "mismatch",
        table.join("\n")
    );
}

#[test]
fn verilog_equals_golden_model_on_the_reference_inputs() {
    // Every reference design under Verilator, on its reference inputs. The big homog16 design takes
    // minutes to build, so FASTML_CONFORMANCE_SKIP can name references to leave to `make bench`.
    let skip = std::env::var("FASTML_CONFORMANCE_SKIP").unwrap_or_default();
    let count: usize = std::env::var("FASTML_CONFORMANCE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for r in references() {
        if skip.split(',').any(|s| s == r.name) {
            continue;
        }
        let model = frontend::load_model(&r.dir.join("model.json")).expect("model.json");
        let design = fastml_compile::compile(&model, &Options::default()).expect("compiles");
        let dir = tempfile::tempdir().expect("temp");
        let rtl = dir.path().join("rtl");
        std::fs::create_dir_all(&rtl).expect("mkdir");
        for f in &design.verilog {
            f.write_under(&rtl).expect("write");
        }
        let xs = model_inputs(&r, &model, count);
        let res = cosim::run(
            &design,
            &rtl,
            &xs,
            &cosim::CosimOptions {
                work_dir: dir.path().join("cosim"),
                cache_dir: Some(sim_cache()),
                progress: false,
                bubble_every: 17,
                netlist: false,
            },
        )
        .expect("simulates");
        eprintln!(
            "{}: {} vectors, {} mismatches, latency {} (build {:.1} s, sim {:.1} s)",
            r.name,
            res.vectors,
            res.mismatches,
            res.latency_max,
            res.build_seconds,
            res.sim_seconds
        );
        assert!(
            res.passed(),
            "{}: {} mismatches, first {:?}",
            r.name,
            res.mismatches,
            res.first.first()
        );
    }
}
