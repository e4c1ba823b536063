//! fastml-compile: quantised neural networks (model.json) → pipelined, bit-exact Verilog.
//!
//! The pipeline, one stage per module:
//! `frontend` (model.json → layer IR) → `passes` on the layer IR (fold BatchNorm, prune) →
//! `passes::lower_cmvm` (→ dataflow IR) → `passes` on the dataflow IR (fold, dead code, ranges,
//! `schedule`, registers, names) → `emit` (Verilog) → `report`; `golden` evaluates either IR exactly and
//! `cosim` proves the Verilog equal to it under Verilator. [`compile`] runs the whole thing.

pub mod cli;
pub mod cosim;
pub mod diag;
pub mod emit;
pub mod fixed;
pub mod frontend;
pub mod golden;
pub mod ir;
pub mod passes;
pub mod report;
pub mod schedule;
pub mod target;
pub mod testgen;
pub mod vectors;

#[cfg(test)]
pub(crate) mod testutil;

use diag::Result;
use ir::dfg::Dfg;
use ir::layer::LayerGraph;
use passes::PassContext;

/// Compiler options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Target part (`xcvu9p`, ...).
    pub target: String,
    /// Clock period in ns.
    pub clock_ns: f64,
    /// Run the IR verifier after every pass (default: in debug builds).
    pub verify: bool,
    /// Adder sharing in constant matrix-vector products.
    pub cse: passes::cmvm::CseOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target: "xcvu9p".into(),
            clock_ns: 5.0,
            verify: cfg!(debug_assertions),
            cse: Default::default(),
        }
    }
}

/// Everything a compilation produces.
#[derive(Clone, Debug)]
pub struct Design {
    /// The model after the layer passes (what `predict` evaluates).
    pub layers: LayerGraph,
    /// The final dataflow graph (scheduled, registered, named).
    pub dfg: Dfg,
    pub verilog: Vec<emit::VerilogFile>,
    pub report: report::Report,
}

/// The pass context for options.
pub fn context(opts: &Options) -> Result<PassContext> {
    Ok(PassContext {
        part: target::find_part(&opts.target)?,
        clock_ns: opts.clock_ns,
        verify: opts.verify,
        cse: opts.cse,
    })
}

/// Layer passes and lowering: the model as a dataflow graph before scheduling (used by tests and by
/// `predict`'s width check).
pub fn lower(model: &LayerGraph, cx: &PassContext) -> Result<(LayerGraph, Dfg)> {
    let mut layers = model.clone();
    passes::run_layer_passes(&mut layers, &passes::layer_pipeline(), cx)?;
    let dfg = passes::run_lowering(
        passes::lowering().as_ref(),
        &layers,
        cx,
        &mut passes::cmvm::RecipeCache::default(),
    )?;
    Ok((layers, dfg))
}

/// Compile a validated model.
///
/// With the ternary slack left to the compiler (`CseOptions::ternary_slack: None`), the model is
/// lowered and scheduled several times (the sharing is searched once and reused): binary adders only,
/// and ternary adders with slack 1 in every layer. If the second has no more stages than the first it
/// is taken; otherwise, starting from binary adders, each layer (largest first) gets ternary adders with
/// slack 1, else 0, else keeps binary adders, whichever first keeps the stage count. Only latency is
/// compared (ternary adders save LUTs wherever they are placed): never more stages than binary adders.
pub fn compile(model: &LayerGraph, opts: &Options) -> Result<Design> {
    use passes::cmvm::FinalSums;
    let cx = context(opts)?;
    let mut layers = model.clone();
    passes::run_layer_passes(&mut layers, &passes::layer_pipeline(), &cx)?;
    let mut cache = passes::cmvm::RecipeCache::default();
    let mut build = |sums: &[(u32, FinalSums)], default: FinalSums| -> Result<Dfg> {
        let mut c = cx.clone();
        (c.cse.ternary, c.cse.ternary_slack) = match default {
            FinalSums::Binary => (false, None),
            FinalSums::Ternary(s) => (true, Some(s)),
        };
        cache.sums = sums.iter().copied().collect();
        let mut dfg = passes::run_lowering(passes::lowering().as_ref(), &layers, &c, &mut cache)?;
        passes::run_dfg_passes(&mut dfg, &passes::dfg_schedule_pipeline(), &c)?;
        Ok(dfg)
    };
    let dfg = match cx.cse.ternary_slack {
        None if cx.cse.ternary && cx.cse.enabled => {
            // Binary adders are the baseline (their errors are the user's); a ternary candidate that
            // cannot be scheduled (a clock too short for one ternary adder) just loses.
            let tight = build(&[], FinalSums::Binary)?;
            let relaxed = build(&[], FinalSums::Ternary(1)).ok();
            if let Some(relaxed) = relaxed.filter(|r| r.latency <= tight.latency) {
                relaxed
            } else {
                // Layers by adder count, largest first (ties: layer order).
                let mut adders = vec![0usize; tight.layers.len()];
                for v in tight.ids() {
                    let n = tight.node(v);
                    if matches!(n.op, ir::dfg::Op::Add { .. } | ir::dfg::Op::Add3 { .. }) {
                        adders[n.layer.0 as usize] += 1;
                    }
                }
                // Every layer that sums (Dense, LookupDense, Add, Reduce) is a candidate.
                let mut dense: Vec<(usize, u32)> = (0..tight.layers.len() as u32)
                    .filter(|&t| adders[t as usize] > 0)
                    .map(|t| (adders[t as usize], t))
                    .collect();
                dense.sort_by_key(|&(n, t)| (std::cmp::Reverse(n), t));
                let mut best = tight;
                let mut chosen: Vec<(u32, FinalSums)> = Vec::new();
                for (_, t) in dense {
                    for slack in [1, 0] {
                        chosen.push((t, FinalSums::Ternary(slack)));
                        match build(&chosen, FinalSums::Binary) {
                            Ok(trial) if trial.latency <= best.latency => {
                                best = trial;
                                break;
                            }
                            _ => {
                                chosen.pop();
                            }
                        }
                    }
                }
                best
            }
        }
        slack => build(
            &[],
            if cx.cse.ternary {
                FinalSums::Ternary(slack.unwrap_or(0))
            } else {
                FinalSums::Binary
            },
        )?,
    };
    let mut dfg = dfg;
    passes::run_dfg_passes(&mut dfg, &passes::dfg_finish_pipeline(), &cx)?;
    let header = vec![
        format!(
            "Generated by fastml-compile {} from model {:?}.",
            env!("CARGO_PKG_VERSION"),
            model.name.escape_debug().to_string()
        ),
        format!(
            "Target {}, clock {} ns, II 1, latency {} cycles.",
            cx.part.name,
            opts.clock_ns,
            dfg.latency.unwrap_or(0)
        ),
        "Ports: clk (rising edge); rst (synchronous, active high, clears the valid pipeline);"
            .into(),
        "in_valid/in_data: one vector per clock, element 0 in the low bits; out_valid/out_data:"
            .into(),
        "the result, `latency` clocks later. Element types are listed in report.json.".into(),
    ];
    let header: Vec<String> = header
        .into_iter()
        .map(|h| h.replace(|c: char| c.is_control() || !c.is_ascii(), "?"))
        .collect();
    let verilog = emit::emit(&dfg, &header);
    let report = report::build(&dfg, cx.part, opts.clock_ns);
    Ok(Design {
        layers,
        dfg,
        verilog,
        report,
    })
}
