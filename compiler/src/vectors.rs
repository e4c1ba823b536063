//! Test vectors for co-simulation and benchmarks: random mantissas on each input's grid, the corner
//! values of each input type (minimum, maximum, zero, ±one step, the values next to them), and vectors
//! read from a file of real numbers (quantised by the input's own quantiser). Deterministic for a seed.

use crate::diag::{Diagnostic, Result};
use crate::fixed::{FixedType, Quantizer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The corner values of a type.
pub fn corners(t: &FixedType) -> Vec<i128> {
    let (lo, hi) = (t.min_mant(), t.max_mant());
    let mut c = vec![lo, hi, 0, 1, lo + 1, hi - 1];
    if t.signed {
        c.push(-1);
    }
    c.retain(|v| t.contains(*v));
    c.sort();
    c.dedup();
    c
}

/// `n` vectors: first the corner vectors (every element at its k-th corner, and mixed patterns), then
/// uniformly random ones.
pub fn generate(types: &[FixedType], n: usize, seed: u64) -> Vec<Vec<i128>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cs: Vec<Vec<i128>> = types.iter().map(corners).collect();
    let max_c = cs.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for k in 0..max_c {
        out.push(cs.iter().map(|c| c[k % c.len()]).collect());
    }
    // Mixed corners: each element picks a random corner.
    for _ in 0..(4 * max_c) {
        out.push(cs.iter().map(|c| c[rng.gen_range(0..c.len())]).collect());
    }
    out.truncate(n);
    while out.len() < n {
        out.push(
            types
                .iter()
                .map(|t| rng.gen_range(t.min_mant()..=t.max_mant()))
                .collect(),
        );
    }
    out
}

/// Input vectors as read (the real numbers) and as quantised (mantissas at the input types).
pub type RealVectors = (Vec<Vec<f64>>, Vec<Vec<i128>>);

/// Read real-valued input vectors (one per line, whitespace separated; `#` starts a comment) and
/// quantise each element with its input quantiser.
pub fn read_real_vectors(text: &str, file: &str, q: &[Quantizer]) -> Result<RealVectors> {
    let mut reals = Vec::new();
    let mut mants = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut r = Vec::with_capacity(q.len());
        for (col, tok) in line.split_whitespace().enumerate() {
            let x: f64 = tok.parse().map_err(|_| {
                Diagnostic::error(format!("{tok:?} is not a number"))
                    .in_file(file)
                    .line_col(ln + 1, col + 1)
                    .help("one input vector per line, real numbers separated by spaces")
            })?;
            r.push(x);
        }
        if r.len() != q.len() {
            return Err(Diagnostic::error(format!(
                "expected {} numbers on the line, found {}",
                q.len(),
                r.len()
            ))
            .in_file(file)
            .line_col(ln + 1, 1)
            .help("the model's input has this many elements"));
        }
        let m = r
            .iter()
            .zip(q)
            .enumerate()
            .map(|(k, (x, q))| {
                q.quantize_f64(*x)
                    .map_err(|e| Diagnostic::error(e).in_file(file).line_col(ln + 1, k + 1))
            })
            .collect::<Result<Vec<_>>>()?;
        reals.push(r);
        mants.push(m);
    }
    Ok((reals, mants))
}
