//! Co-simulation driver: packs vectors into `in_data` words, runs the Verilog under Verilator (through
//! the `fastml-sim` crate, which owns harness generation, cached builds and streaming), unpacks
//! `out_data`, and compares every output bit with the golden model; it also checks that the measured
//! latency equals the scheduled one. It reads the design; it writes only under the work folder given.

use crate::diag::{Diagnostic, Result};
use crate::emit::port_layout;
use crate::fixed::FixedType;
use crate::golden::Program;
use crate::Design;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct CosimOptions {
    /// Where the harness and results go (inside the user's output folder).
    pub work_dir: PathBuf,
    /// Where Verilator builds are cached (default: `work_dir/cache`).
    pub cache_dir: Option<PathBuf>,
    pub progress: bool,
    /// Insert an idle cycle after every n vectors (0: never), to exercise the valid pipeline.
    pub bubble_every: u32,
    /// Simulate the ternary adders as their primitive netlist (LUT6_2 + CARRY8 models) instead of
    /// their fast model: slower to build and run, the exact netlist synthesis sees.
    pub netlist: bool,
}

/// One mismatching vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub index: usize,
    pub input: Vec<i128>,
    pub expected: Vec<i128>,
    pub got: Vec<i128>,
}

/// The outcome of a co-simulation.
#[derive(Clone, Debug)]
pub struct CosimResult {
    pub vectors: usize,
    pub mismatches: usize,
    /// The first few mismatching vectors.
    pub first: Vec<Mismatch>,
    pub scheduled_latency: u32,
    pub latency_min: u32,
    pub latency_max: u32,
    pub build_seconds: f64,
    pub sim_seconds: f64,
    pub golden_seconds: f64,
    pub cached: bool,
}

impl CosimResult {
    /// Bit-exact and on time.
    pub fn passed(&self) -> bool {
        self.mismatches == 0
            && self.latency_min == self.scheduled_latency
            && self.latency_max == self.scheduled_latency
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "vectors": self.vectors,
            "mismatches": self.mismatches,
            "first_mismatches": self.first.iter().map(|m| serde_json::json!({
                "index": m.index,
                "input": m.input.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                "expected": m.expected.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                "got": m.got.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "scheduled_latency": self.scheduled_latency,
            "measured_latency_min": self.latency_min,
            "measured_latency_max": self.latency_max,
            "build_seconds": self.build_seconds,
            "sim_seconds": self.sim_seconds,
            "golden_seconds": self.golden_seconds,
            "vectors_per_second": self.vectors as f64 / self.sim_seconds.max(1e-9),
            "cached_build": self.cached,
            "passed": self.passed(),
        })
    }
}

fn put_bits(words: &mut [u32], offset: u32, width: u32, value: i128) {
    for b in 0..width {
        if (value >> b) & 1 == 1 {
            let pos = offset + b;
            words[(pos / 32) as usize] |= 1 << (pos % 32);
        }
    }
}

fn get_bits(words: &[u32], offset: u32, t: &FixedType) -> i128 {
    let mut v: i128 = 0;
    for b in 0..t.width {
        let pos = offset + b;
        if (words[(pos / 32) as usize] >> (pos % 32)) & 1 == 1 {
            v |= 1 << b;
        }
    }
    t.wrap(v)
}

/// Simulate `inputs` (mantissas at the input types) through the design's Verilog in `rtl_dir`.
pub fn run(
    design: &Design,
    rtl_dir: &Path,
    inputs: &[Vec<i128>],
    opts: &CosimOptions,
) -> Result<CosimResult> {
    let layout = port_layout(&design.dfg);
    let in_words = fastml_sim::words(layout.in_width);
    let out_words = fastml_sim::words(layout.out_width);
    let mut packed = vec![0u32; inputs.len() * in_words];
    for (k, x) in inputs.iter().enumerate() {
        let w = &mut packed[k * in_words..(k + 1) * in_words];
        for ((off, t), v) in layout.inputs.iter().zip(x) {
            put_bits(w, *off, t.width, *v);
        }
    }
    let t0 = Instant::now();
    let program = Program::new(&design.dfg);
    let expected = program.eval_batch(inputs);
    let golden_seconds = t0.elapsed().as_secs_f64();

    let sim_design = fastml_sim::Design {
        top: design.dfg.top.clone().unwrap_or_default(),
        sources: crate::emit::simulation_files(&design.verilog, opts.netlist)
            .into_iter()
            .map(|f| rtl_dir.join(&f.file_name))
            .collect(),
        in_width: layout.in_width,
        out_width: layout.out_width,
        latency: design.dfg.latency.unwrap_or(0),
    };
    let sim_opts = fastml_sim::Options {
        work_dir: opts.work_dir.clone(),
        cache_dir: opts.cache_dir.clone(),
        progress: opts.progress,
        bubble_every: opts.bubble_every,
    };
    let out = fastml_sim::simulate(&sim_design, &packed, &sim_opts).map_err(|e| {
        Diagnostic::error(format!("co-simulation failed: {e}"))
            .help("`make deps` installs Verilator; see the build log named above")
    })?;
    let mut mismatches = 0;
    let mut first = Vec::new();
    for (k, want) in expected.iter().enumerate() {
        let w = &out.outputs[k * out_words..(k + 1) * out_words];
        let got: Vec<i128> = layout
            .outputs
            .iter()
            .map(|(off, t)| get_bits(w, *off, t))
            .collect();
        if &got != want {
            mismatches += 1;
            if first.len() < 10 {
                first.push(Mismatch {
                    index: k,
                    input: inputs[k].clone(),
                    expected: want.clone(),
                    got,
                });
            }
        }
    }
    Ok(CosimResult {
        vectors: inputs.len(),
        mismatches,
        first,
        scheduled_latency: sim_design.latency,
        latency_min: out.latency_min,
        latency_max: out.latency_max,
        build_seconds: out.build_seconds,
        sim_seconds: out.sim_seconds,
        golden_seconds,
        cached: out.cached,
    })
}
