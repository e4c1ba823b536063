//! The pass manager: typed passes with names and doc lines, explicit pipelines, and the verifier after
//! every pass (always in debug builds and tests, on request in release), naming the pass that broke an
//! invariant. Pass order lives here, nowhere else: [`layer_pipeline`], then [`lowering`], then
//! [`dfg_schedule_pipeline`] and [`dfg_finish_pipeline`] (together [`dfg_pipeline`]).

pub mod absorb_into_table;
pub mod cmvm;
pub mod const_fold;
pub mod cse;
pub mod dead_code;
pub mod fold_batchnorm;
pub mod fold_rounding;
pub mod infer_ranges;
pub mod insert_registers;
pub mod legalize_names;
pub mod lower_cmvm;
pub mod pack_luts;
pub mod prune_zero_weights;
pub mod tabulate_cones;

use crate::diag::{Diagnostic, Result};
use crate::ir::dfg::Dfg;
use crate::ir::layer::LayerGraph;
use crate::ir::verify;

/// Settings passes may read.
#[derive(Clone, Debug)]
pub struct PassContext {
    pub part: &'static crate::target::Part,
    pub clock_ns: f64,
    /// Run the IR verifier after every pass.
    pub verify: bool,
    /// How constant matrix-vector products share adders.
    pub cse: cmvm::CseOptions,
}

/// A pass over the layer IR.
pub trait LayerPass {
    /// Kebab-case name, used in pipelines, logs and bug reports.
    fn name(&self) -> &'static str;
    /// One line: what the pass does.
    fn doc(&self) -> &'static str;
    fn run(&self, g: &mut LayerGraph, cx: &PassContext) -> Result<()>;
}

/// A pass over the dataflow IR.
pub trait DfgPass {
    fn name(&self) -> &'static str;
    fn doc(&self) -> &'static str;
    fn run(&self, g: &mut Dfg, cx: &PassContext) -> Result<()>;
}

/// The pass between the two IRs: it reads the layer IR and builds the dataflow IR. The adder-graph
/// search's results are kept in `cache` across lowerings of the same model (the ternary search lowers
/// several times).
pub trait LoweringPass {
    fn name(&self) -> &'static str;
    fn doc(&self) -> &'static str;
    fn run(&self, g: &LayerGraph, cx: &PassContext, cache: &mut cmvm::RecipeCache) -> Result<Dfg>;
}

/// The lowering, in its place between [`layer_pipeline`] and [`dfg_schedule_pipeline`].
pub fn lowering() -> Box<dyn LoweringPass> {
    Box::new(lower_cmvm::LowerCmvm)
}

/// Run the lowering, verifying its result like any other pass.
pub fn run_lowering(
    p: &dyn LoweringPass,
    g: &LayerGraph,
    cx: &PassContext,
    cache: &mut cmvm::RecipeCache,
) -> Result<Dfg> {
    let d = p.run(g, cx, cache)?;
    if cx.verify {
        verify_dfg(&d, cx).map_err(|e| Diagnostic::bug(p.name(), e))?;
    }
    Ok(d)
}

/// Layer-level passes, in order.
pub fn layer_pipeline() -> Vec<Box<dyn LayerPass>> {
    vec![
        Box::new(fold_batchnorm::FoldBatchNorm),
        Box::new(fold_rounding::FoldRounding),
        Box::new(prune_zero_weights::PruneZeroWeights),
    ]
}

/// Dataflow passes after lowering, in order: simplify, then schedule, then prepare for emission
/// ([`dfg_schedule_pipeline`] followed by [`dfg_finish_pipeline`]).
pub fn dfg_pipeline() -> Vec<Box<dyn DfgPass>> {
    let mut p = dfg_schedule_pipeline();
    p.extend(dfg_finish_pipeline());
    p
}

/// Simplify and schedule: enough to know a design's latency (the compiler's search over ternary
/// adders compares candidates after these).
pub fn dfg_schedule_pipeline() -> Vec<Box<dyn DfgPass>> {
    vec![
        Box::new(const_fold::ConstFold),
        Box::new(cse::Cse),
        Box::new(tabulate_cones::TabulateCones),
        Box::new(absorb_into_table::AbsorbIntoTable),
        Box::new(dead_code::DeadCode),
        Box::new(infer_ranges::InferRanges),
        Box::new(crate::schedule::Schedule),
    ]
}

/// Prepare a scheduled design for emission; none of these changes the latency.
pub fn dfg_finish_pipeline() -> Vec<Box<dyn DfgPass>> {
    vec![
        Box::new(crate::schedule::retime::Retime),
        Box::new(insert_registers::InsertRegisters),
        Box::new(legalize_names::LegalizeNames),
        Box::new(pack_luts::PackLuts),
    ]
}

/// Every invariant of a dataflow graph: its structure ([`verify::verify_dfg`], which needs no options)
/// and, once scheduled, its schedule against the clock the scheduler recorded in the graph and the
/// part's delay model (`schedule::verify`). The pass manager combines the two, so the IR module
/// depends on neither the passes nor the scheduler.
pub fn verify_dfg(g: &Dfg, cx: &PassContext) -> std::result::Result<(), String> {
    verify::verify_dfg(g)?;
    if g.latency.is_some() {
        crate::schedule::verify(g, &cx.part.delay, g.registered)?;
    }
    Ok(())
}

/// Run layer passes, verifying after each.
pub fn run_layer_passes(
    g: &mut LayerGraph,
    passes: &[Box<dyn LayerPass>],
    cx: &PassContext,
) -> Result<()> {
    if cx.verify {
        verify::verify_layers(g).map_err(|e| Diagnostic::bug("front end", e))?;
    }
    for p in passes {
        p.run(g, cx)?;
        if cx.verify {
            verify::verify_layers(g).map_err(|e| Diagnostic::bug(p.name(), e))?;
        }
    }
    Ok(())
}

/// Run dataflow passes, verifying after each. With `FASTML_TIME_PASSES` set in the environment, each
/// pass's wall time goes to stderr (a developer aid, like rustc's `-Z time-passes`).
pub fn run_dfg_passes(g: &mut Dfg, passes: &[Box<dyn DfgPass>], cx: &PassContext) -> Result<()> {
    for p in passes {
        let t0 = std::time::Instant::now();
        p.run(g, cx)?;
        if std::env::var_os("FASTML_TIME_PASSES").is_some() {
            eprintln!(
                "pass {:<16} {:>8.2} ms",
                p.name(),
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
        if cx.verify {
            verify_dfg(g, cx).map_err(|e| Diagnostic::bug(p.name(), e))?;
        }
    }
    Ok(())
}
