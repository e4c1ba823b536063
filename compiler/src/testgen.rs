//! Random model.json generator for property tests and differential co-simulation: small feed-forward
//! models with random shapes, per-tensor and per-element types, zero (pruned) weights, BatchNorm, ReLU,
//! quantisers with every rounding and overflow mode, and several outputs. Deterministic for a seed.
//! It produces text (so the front end is exercised too); it must never produce an invalid model.

use crate::fixed::{Overflow, Rounding};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

fn ty(rng: &mut ChaCha8Rng, max_w: u32) -> (bool, u32, i32) {
    let signed = rng.gen_bool(0.7);
    let w = rng.gen_range(1..=max_w);
    let i = rng.gen_range(-3..=(w as i32 + 3));
    (signed, w, i)
}

fn ty_str(t: (bool, u32, i32)) -> String {
    format!("{}fixed<{},{}>", if t.0 { "" } else { "u" }, t.1, t.2)
}

fn mant(rng: &mut ChaCha8Rng, t: (bool, u32, i32), zero_p: f64) -> i64 {
    if rng.gen_bool(zero_p) {
        return 0;
    }
    let (lo, hi) = if t.0 {
        (-(1i64 << (t.1 - 1)), (1i64 << (t.1 - 1)) - 1)
    } else {
        (0, (1i64 << t.1) - 1)
    };
    rng.gen_range(lo..=hi)
}

fn tensor(rng: &mut ChaCha8Rng, shape: &[usize], max_w: u32, zero_p: f64) -> Value {
    let n: usize = shape.iter().product();
    if rng.gen_bool(0.3) {
        let types: Vec<(bool, u32, i32)> = (0..n).map(|_| ty(rng, max_w)).collect();
        let data: Vec<i64> = types.iter().map(|t| mant(rng, *t, zero_p)).collect();
        json!({"shape": shape, "types": types.iter().map(|t| ty_str(*t)).collect::<Vec<_>>(), "data": data})
    } else {
        let t = ty(rng, max_w);
        let data: Vec<i64> = (0..n).map(|_| mant(rng, t, zero_p)).collect();
        json!({"shape": shape, "type": ty_str(t), "data": data})
    }
}

fn quantizer(rng: &mut ChaCha8Rng) -> String {
    let t = ty(rng, 12);
    let r = Rounding::ALL[rng.gen_range(0..Rounding::ALL.len())];
    let o = Overflow::ALL[rng.gen_range(0..Overflow::ALL.len())];
    format!(
        "{}fixed<{},{},{},{}>",
        if t.0 { "" } else { "u" },
        t.1,
        t.2,
        r.name(),
        o.name()
    )
}

/// A random model.json text.
pub fn random_model(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nodes = vec![];
    let mut n = rng.gen_range(1..=5usize);
    let input_t = ty(&mut rng, 14);
    nodes.push(json!({"name": "x", "op": "Input", "shape": [n], "type": ty_str(input_t)}));
    let mut prev = "x".to_string();
    let mut outputs = 0;
    let blocks = rng.gen_range(1..=3);
    for b in 0..blocks {
        let n_out = rng.gen_range(1..=5usize);
        let zero_p = if rng.gen_bool(0.3) { 0.6 } else { 0.1 };
        let mut dense = json!({"name": format!("dense{b}"), "op": "Dense", "inputs": [prev],
            "weight": tensor(&mut rng, &[n, n_out], 8, zero_p)});
        if rng.gen_bool(0.7) {
            dense["bias"] = tensor(&mut rng, &[n_out], 10, 0.2);
        }
        nodes.push(dense);
        prev = format!("dense{b}");
        n = n_out;
        if rng.gen_bool(0.3) {
            nodes.push(
                json!({"name": format!("bn{b}"), "op": "BatchNorm", "inputs": [prev],
                "scale": tensor(&mut rng, &[n], 6, 0.1), "shift": tensor(&mut rng, &[n], 8, 0.2)}),
            );
            prev = format!("bn{b}");
        }
        if rng.gen_bool(0.6) {
            nodes.push(json!({"name": format!("relu{b}"), "op": "ReLU", "inputs": [prev]}));
            prev = format!("relu{b}");
        }
        if rng.gen_bool(0.3) {
            // A tap: an extra output in the middle of the network.
            nodes.push(json!({"name": format!("tap{b}"), "op": "Output", "inputs": [prev]}));
            outputs += 1;
        }
        if rng.gen_bool(0.8) || b + 1 < blocks {
            let q = if rng.gen_bool(0.3) {
                json!({"name": format!("q{b}"), "op": "Quantize", "inputs": [prev],
                       "types": (0..n).map(|_| quantizer(&mut rng)).collect::<Vec<_>>()})
            } else {
                json!({"name": format!("q{b}"), "op": "Quantize", "inputs": [prev], "type": quantizer(&mut rng)})
            };
            nodes.push(q);
            prev = format!("q{b}");
        }
    }
    nodes.push(json!({"name": "y", "op": "Output", "inputs": [prev]}));
    let _ = outputs;
    let model = json!({"format": "fastml-model", "version": 1, "name": format!("random_{seed}"), "nodes": nodes});
    serde_json::to_string_pretty(&model).unwrap_or_default()
}

/// A random table: a domain quantiser of 1..=5 bits (every rounding and overflow mode) and one
/// random entry per domain value.
fn table(rng: &mut ChaCha8Rng) -> Value {
    let signed = rng.gen_bool(0.6);
    let w = rng.gen_range(1..=5u32);
    let i = rng.gen_range(-2..=(w as i32 + 2));
    let r = Rounding::ALL[rng.gen_range(0..Rounding::ALL.len())];
    let o = Overflow::ALL[rng.gen_range(0..Overflow::ALL.len())];
    let domain = format!(
        "{}fixed<{w},{i},{},{}>",
        if signed { "" } else { "u" },
        r.name(),
        o.name()
    );
    json!({"domain": domain, "table": tensor(rng, &[1usize << w], 7, 0.1)})
}

/// A random model.json version 2 text: a rank-1 or rank-2 input, Dense layers shared over the leading
/// axis, elementwise tables, lookup-table layers (HGQ2 `QDenseT`), residual Adds, Transpose, Reshape,
/// Concat and Reduce (sum, max, power-of-two mean). Every block ends in a quantiser so widths stay
/// bounded. Deterministic for a seed; it never produces an invalid model.
pub fn random_model_v2(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nodes = vec![];
    // `shape` is [rows, n] (rows = 1 means a vector [n]).
    let rows = [1usize, 2, 4][rng.gen_range(0..3)];
    let mut n = rng.gen_range(1..=4usize);
    let shape_of = |rows: usize, n: usize| -> Vec<usize> {
        if rows == 1 {
            vec![n]
        } else {
            vec![rows, n]
        }
    };
    let input_t = ty(&mut rng, 10);
    nodes.push(
        json!({"name": "x", "op": "Input", "shape": shape_of(rows, n), "type": ty_str(input_t)}),
    );
    let mut prev = "x".to_string();
    let mut rows = rows;
    let blocks = rng.gen_range(1..=3);
    let mut k = 0usize;
    let mut fresh = |base: &str| {
        k += 1;
        format!("{base}{k}")
    };
    for _ in 0..blocks {
        let block_in = prev.clone();
        let n_in = n;
        match rng.gen_range(0..3) {
            0 => {
                let n_out = rng.gen_range(1..=4usize);
                let name = fresh("dense");
                let mut d = json!({"name": name, "op": "Dense", "inputs": [prev],
                    "weight": tensor(&mut rng, &[n, n_out], 7, 0.2)});
                if rng.gen_bool(0.6) {
                    d["bias"] = tensor(&mut rng, &[n_out], 8, 0.2);
                }
                nodes.push(d);
                prev = name;
                n = n_out;
            }
            1 => {
                let n_out = rng.gen_range(1..=4usize);
                let name = fresh("lut");
                let mut tables = vec![];
                for i in 0..n {
                    for j in 0..n_out {
                        if rng.gen_bool(0.8) {
                            let mut t = table(&mut rng);
                            t["in"] = json!(i);
                            t["out"] = json!(j);
                            tables.push(t);
                        }
                    }
                }
                let mut d = json!({"name": name, "op": "LookupDense", "inputs": [prev],
                    "n_out": n_out, "tables": tables});
                if rng.gen_bool(0.5) {
                    d["bias"] = tensor(&mut rng, &[n_out], 8, 0.2);
                }
                nodes.push(d);
                prev = name;
                n = n_out;
            }
            _ => {
                let name = fresh("table");
                let mut t = table(&mut rng);
                t["name"] = json!(name);
                t["op"] = json!("Table");
                t["inputs"] = json!([prev]);
                nodes.push(t);
                prev = name;
            }
        }
        if rng.gen_bool(0.4) {
            let name = fresh("relu");
            nodes.push(json!({"name": name, "op": "ReLU", "inputs": [prev]}));
            prev = name;
        }
        if n == n_in && rng.gen_bool(0.4) {
            let name = fresh("res");
            nodes.push(json!({"name": name, "op": "Add", "inputs": [prev, block_in]}));
            prev = name;
        } else if n == n_in && rng.gen_bool(0.3) {
            // A product of two variables (attention-style), quantised right after.
            let name = fresh("mul");
            nodes.push(json!({"name": name, "op": "Mul", "inputs": [prev, block_in]}));
            prev = name;
        }
        if rows > 1 && rng.gen_bool(0.3) {
            // Transpose there and back (pure wiring, twice).
            let t1 = fresh("tr");
            nodes.push(json!({"name": t1, "op": "Transpose", "inputs": [prev], "perm": [1, 0]}));
            let t2 = fresh("tr");
            nodes.push(json!({"name": t2, "op": "Transpose", "inputs": [t1], "perm": [1, 0]}));
            prev = t2;
        }
        if rng.gen_bool(0.25) {
            let name = fresh("cat");
            let axis = if rows > 1 { -1 } else { 0 };
            nodes.push(json!({"name": name, "op": "Concat", "inputs": [prev, prev], "axis": axis}));
            prev = name;
            n *= 2;
        }
        if rows > 1 && rng.gen_bool(0.35) {
            let name = fresh("pool");
            let kind = ["sum", "max", "mean"][rng.gen_range(0..3)];
            nodes.push(
                json!({"name": name, "op": "Reduce", "inputs": [prev], "axis": 0, "kind": kind}),
            );
            prev = name;
            rows = 1;
        } else if rows > 1 && rng.gen_bool(0.15) {
            let name = fresh("flat");
            nodes.push(json!({"name": name, "op": "Reshape", "inputs": [prev], "shape": [-1]}));
            prev = name;
            n *= rows;
            rows = 1;
        }
        let name = fresh("q");
        let count = rows * n;
        let q = if rng.gen_bool(0.3) {
            json!({"name": name, "op": "Quantize", "inputs": [prev],
                   "types": (0..count).map(|_| quantizer(&mut rng)).collect::<Vec<_>>()})
        } else {
            json!({"name": name, "op": "Quantize", "inputs": [prev], "type": quantizer(&mut rng)})
        };
        nodes.push(q);
        prev = name;
    }
    nodes.push(json!({"name": "y", "op": "Output", "inputs": [prev]}));
    let model = json!({"format": "fastml-model", "version": 2, "name": format!("random_v2_{seed}"), "nodes": nodes});
    serde_json::to_string_pretty(&model).unwrap_or_default()
}
