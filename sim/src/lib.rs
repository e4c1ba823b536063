//! `fastml-sim`: Verilator co-simulation of designs produced by fastml-compile.
//!
//! The crate compiles a generated Verilog design together with a generated C++
//! harness into a native simulator (cached by content hash), streams input vectors
//! through it one per clock, and returns the outputs in input order together with
//! the measured latency. It is fast enough for ~10^6 vectors per call: vectors move
//! through binary files and the hot loop is plain C++.
//!
//! # Port convention of the simulated top module
//!
//! ```text
//! input  wire clk, input wire rst,            // rst: synchronous, active high
//! input  wire in_valid,  input  wire [IN_W-1:0]  in_data,
//! output wire out_valid, output wire [OUT_W-1:0] out_data
//! ```
//!
//! II=1, fixed latency L: a vector presented with `in_valid=1` at a rising edge
//! appears with `out_valid=1` L rising edges later. Only the valid chain needs a
//! reset. Ports are packed little-endian into 32-bit words: bit 0 of word 0 is bit 0
//! of the port; bits above the width in the top word are ignored on input and zero
//! on output.
//!
//! # Files
//!
//! * `lib.rs` — the public API and request validation; no I/O beyond calling the others.
//! * `error.rs` — [`SimError`].
//! * `harness.rs` — C++ harness text generation (pure).
//! * `verilate.rs` — Verilator invocation and the build cache.
//! * `run.rs` — running the harness and reading back its results.
//!
//! # Build and speed
//!
//! Verilator flags: `--cc --exe -Wno-fatal -Wno-lint -Wno-style -O3 --x-assign fast
//! --x-initial unique --output-split 20000 --output-split-cfuncs 4000 --prefix Vtop`,
//! then `make -j 2 OPT_FAST=-O1 OPT_SLOW=-O1 OPT_GLOBAL=-O1` (reasons in
//! `verilate.rs`). On the 2-core development machine: the small test designs build in
//! ~3.5 s (mostly compiling Verilator's runtime), a synthetic 9,000-adder 2-layer
//! design (256-bit in, 384-bit out, latency 8) in ~11 s and simulates 1,000,000
//! vectors in ~4.7 s. A cached build costs ~0.05 s (`verilator --version` + hashing).
//!
//! # Directories
//!
//! * `cache_dir/<sha256>/` — one finished build (harness.cpp, build.log, obj/sim);
//!   may be shared by concurrent processes.
//! * `cache_dir/<sha256>.failed/` — the last failed attempt, with its build.log.
//! * `work_dir/run-<pid>-<n>/` — one run's files; removed on success, kept on failure.
//!
//! # What the caller checks
//!
//! `simulate` fails on things that make the results meaningless (build errors, a
//! crashing harness, `out_valid` during reset, output count ≠ input count). It does
//! **not** fail when the measured latency differs from [`Design::latency`]: compare
//! [`Outcome::latency_min`]/[`Outcome::latency_max`] with it yourself. Nor does it
//! judge output values.

mod error;
mod harness;
mod run;
mod verilate;

pub use error::SimError;
pub use harness::{harness_source, IDLE_AFTER_RESET, RESET_CYCLES};

use std::path::PathBuf;
use std::time::Instant;

/// A design to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Design {
    /// Name of the top module (with the port convention above).
    pub top: String,
    /// Verilog source files, self-contained (`include`d files are not hashed into the
    /// cache key). Order is preserved.
    pub sources: Vec<PathBuf>,
    /// Width of `in_data` in bits (≥ 1).
    pub in_width: u32,
    /// Width of `out_data` in bits (≥ 1).
    pub out_width: u32,
    /// Declared pipeline latency in cycles. Only used to bound how long to drain; the
    /// measured latency is reported separately in [`Outcome`].
    pub latency: u32,
}

/// How to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Everything is written here (run files, and the cache unless `cache_dir` is
    /// set), nowhere else. Created if missing.
    pub work_dir: PathBuf,
    /// Where Verilator builds are cached, one directory per design hash; default
    /// `work_dir/cache`. Safe to share between processes and work dirs.
    pub cache_dir: Option<PathBuf>,
    /// Show an indicatif progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Insert one idle cycle (`in_valid=0`) after every `n` vectors; 0 = never.
    /// Exercises the valid pipeline (results must still come out in order).
    pub bubble_every: u32,
}

impl Options {
    /// Options with defaults: cache in `work_dir/cache`, no progress bar, no bubbles.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Options {
            work_dir: work_dir.into(),
            cache_dir: None,
            progress: false,
            bubble_every: 0,
        }
    }
}

/// Result of a successful simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `N * words(out_width)` words, flat, in input order.
    pub outputs: Vec<u32>,
    /// Smallest measured latency in cycles over all vectors (0 if N = 0).
    pub latency_min: u32,
    /// Largest measured latency in cycles over all vectors (0 if N = 0).
    pub latency_max: u32,
    /// Clock cycles simulated in total, including reset, bubbles and drain.
    pub cycles: u64,
    /// Wall time to hash and (unless cached) build, in seconds.
    pub build_seconds: f64,
    /// Wall time of the harness run, including file transfer, in seconds.
    pub sim_seconds: f64,
    /// Whether the build came from the cache.
    pub cached: bool,
}

/// Number of 32-bit words for a port of `bits` bits.
pub fn words(bits: u32) -> usize {
    (bits as usize).div_ceil(32)
}

/// Simulate `inputs` (`N * words(in_width)` words, flat) through `design`.
///
/// Builds (or reuses from the cache) the Verilator model, resets it, streams the N
/// vectors at II=1 (with bubbles if asked), drains, and returns the outputs in
/// input order. See [`SimError`] for the failure modes; none panic.
pub fn simulate(design: &Design, inputs: &[u32], opts: &Options) -> Result<Outcome, SimError> {
    validate(design, inputs)?;
    // Absolute paths from here on: Verilator, make and the harness run with their
    // own working directories, where a relative path would point elsewhere.
    let work_dir = std::path::absolute(&opts.work_dir).map_err(SimError::io(&opts.work_dir))?;
    let cache_dir = match &opts.cache_dir {
        Some(c) => std::path::absolute(c).map_err(SimError::io(c))?,
        None => work_dir.join("cache"),
    };
    std::fs::create_dir_all(&work_dir).map_err(SimError::io(&work_dir))?;
    let opts = &Options {
        work_dir,
        cache_dir: Some(cache_dir.clone()),
        ..opts.clone()
    };

    let t0 = Instant::now();
    let show = opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut spinner = None;
    let build = verilate::ensure_build(design, &cache_dir, || {
        if show {
            let s = indicatif::ProgressBar::new_spinner();
            s.set_message(format!("verilating and compiling `{}`", design.top));
            s.enable_steady_tick(std::time::Duration::from_millis(200));
            spinner = Some(s);
        }
    });
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let build = build?;
    let build_seconds = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let report = run::run_harness(&build.binary, design, inputs, opts)?;
    let sim_seconds = t1.elapsed().as_secs_f64();

    Ok(Outcome {
        outputs: report.outputs,
        latency_min: report.latency_min,
        latency_max: report.latency_max,
        cycles: report.cycles,
        build_seconds,
        sim_seconds,
        cached: build.cached,
    })
}

/// Reject requests the harness could not run meaningfully, before any build.
fn validate(design: &Design, inputs: &[u32]) -> Result<(), SimError> {
    if design.in_width == 0 || design.out_width == 0 {
        return Err(SimError::Invalid(format!(
            "port widths must be ≥ 1 (in_width {}, out_width {})",
            design.in_width, design.out_width
        )));
    }
    if design.sources.is_empty() {
        return Err(SimError::Invalid("design has no Verilog sources".into()));
    }
    let valid_ident = !design.top.is_empty()
        && design
            .top
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !design
            .top
            .starts_with(|c: char| c.is_ascii_digit() || c == '$');
    if !valid_ident {
        return Err(SimError::Invalid(format!(
            "top module name `{}` is not a plain Verilog identifier",
            design.top
        )));
    }
    let iw = words(design.in_width);
    if !inputs.len().is_multiple_of(iw) {
        return Err(SimError::Invalid(format!(
            "inputs has {} words, not a multiple of words(in_width = {}) = {iw}",
            inputs.len(),
            design.in_width
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_counts() {
        assert_eq!(words(1), 1);
        assert_eq!(words(32), 1);
        assert_eq!(words(33), 2);
        assert_eq!(words(64), 2);
        assert_eq!(words(65), 3);
        assert_eq!(words(120), 4);
    }
}
