//! `schedule`: assigns every node a pipeline stage so that no stage's combinational delay exceeds the
//! clock period, as soon as possible (ASAP with chaining), at II = 1. Delays come from the part's
//! [`DelayModel`]; [`op_delay`] is the one place that says what each op costs in time.
//!
//! Conventions: `in_data` arrives at the start of stage 0 (drive it from a register); every output is
//! registered, so the latency is the stage of the outputs, at least 1. Constants belong to no stage
//! (they need no registers). The scheduler checks its own result with [`verify`]; an initiation interval
//! above 1 (resource sharing modulo II) will add a resource check there, in the manner of CIRCT's
//! `ModuloProblem`.

use crate::diag::{Diagnostic, Result};
use crate::ir::dfg::{Dfg, Op, ValueId};
use crate::passes::{DfgPass, PassContext};
use crate::target::DelayModel;

pub mod retime;

pub struct Schedule;

/// Combinational delay of a node in ns.
pub fn op_delay(g: &Dfg, v: ValueId, dm: &DelayModel) -> f64 {
    let n = g.node(v);
    match &n.op {
        Op::Input { .. } | Op::Const { .. } | Op::Reg { .. } | Op::Output { .. } => 0.0,
        Op::Add { .. } => dm.adder(g.carry_bits(v)),
        Op::Add3 { .. } => dm.adder3(g.carry_bits(v)),
        Op::Scale { a } => {
            if a.neg {
                dm.adder(g.carry_bits(v))
            } else {
                0.0
            }
        }
        Op::Relu { .. } => dm.logic(1),
        Op::Table { t, .. } => dm.rom(g.table(*t).bits),
        Op::Max { .. } => dm.max(n.iv.fixed_type().width),
        Op::Mul { a, b } => dm.mul(
            g.node(*a).iv.fixed_type().width,
            g.node(*b).iv.fixed_type().width,
        ),
        Op::Quant { a, q } => {
            let src = g.node(*a).iv;
            let mut d = 0.0;
            if q.needs_round_adder(src) {
                d += dm.adder(src.fixed_type().width + 1);
            }
            if q.can_overflow(src) && q.overflow != crate::fixed::Overflow::Wrap {
                // Range check (a wide AND/OR over the high bits) and the output multiplexer.
                d += dm.logic(2);
            }
            d
        }
    }
}

fn is_const(g: &Dfg, v: ValueId) -> bool {
    matches!(g.node(v).op, Op::Const { .. })
}

impl DfgPass for Schedule {
    fn name(&self) -> &'static str {
        "schedule"
    }
    fn doc(&self) -> &'static str {
        "assign pipeline stages (ASAP with chaining) so no stage exceeds the clock period"
    }
    fn run(&self, g: &mut Dfg, cx: &PassContext) -> Result<()> {
        let dm = &cx.part.delay;
        let budget = cx.clock_ns - dm.ff;
        if !(cx.clock_ns.is_finite() && budget > 0.0) {
            return Err(Diagnostic::error(format!(
                "clock period {} ns is shorter than a flip-flop's own delay ({} ns)",
                cx.clock_ns, dm.ff
            ))
            .help("pass --clock-ns with a period of at least 1 ns"));
        }
        let count = g.graph.node_count();
        let mut stage = vec![0u32; count];
        let mut arrive = vec![0f64; count];
        let mut latency = 1u32;
        for v in g.topo() {
            let n = g.node(v);
            if matches!(n.op, Op::Output { .. } | Op::Const { .. }) {
                continue;
            }
            let ops: Vec<ValueId> =
                n.op.operands()
                    .into_iter()
                    .filter(|o| !is_const(g, *o))
                    .collect();
            let mut s = ops.iter().map(|o| stage[o.index()]).max().unwrap_or(0);
            let t0 = ops
                .iter()
                .filter(|o| stage[o.index()] == s)
                .map(|o| arrive[o.index()])
                .fold(0.0, f64::max);
            let d = op_delay(g, v, dm);
            if d > budget {
                return Err(Diagnostic::error(format!(
                    "clock period {} ns is too short for one {}-bit {} ({:.3} ns + {:.3} ns flip-flop overhead)",
                    cx.clock_ns,
                    n.iv.fixed_type().width,
                    n.op.kind(),
                    d,
                    dm.ff
                ))
                .help(if matches!(n.op, Op::Add3 { .. }) {
                    "choose a longer --clock-ns, or --no-ternary (a binary adder is faster)"
                } else {
                    "choose a longer --clock-ns"
                }));
            }
            let t = if t0 + d > budget {
                s += 1;
                d
            } else {
                t0 + d
            };
            stage[v.index()] = s;
            arrive[v.index()] = t;
        }
        for v in g.outputs() {
            let Op::Output { a, .. } = g.node(v).op else {
                unreachable!("outputs() returns Output nodes")
            };
            if !is_const(g, a) {
                latency = latency.max(stage[a.index()] + 1);
            }
        }
        for v in g.topo() {
            let s = match g.node(v).op {
                Op::Output { .. } => latency,
                _ => stage[v.index()],
            };
            g.node_mut(v).stage = Some(s);
        }
        g.latency = Some(latency);
        g.clock_ns = Some(cx.clock_ns);
        // The scheduler checks its own result every time, not only when the IR verifier is on.
        verify(g, dm, false).map_err(|e| Diagnostic::bug(self.name(), e))
    }
}

/// Check a schedule: stages are set and ordered along every edge, registers advance exactly one stage,
/// and every stage's chained delay fits the clock period. After register insertion, every operand of a
/// non-register node is in the node's own stage.
pub fn verify(
    g: &Dfg,
    dm: &DelayModel,
    registers_inserted: bool,
) -> std::result::Result<(), String> {
    let clock_ns = g.clock_ns.ok_or("the schedule records no clock period")?;
    let budget = clock_ns - dm.ff;
    let mut arrive = vec![0f64; g.graph.node_count()];
    for v in g.topo() {
        let n = g.node(v);
        let Some(s) = n.stage else {
            return Err(format!("{v} has no stage"));
        };
        let mut t0: f64 = 0.0;
        for o in n.op.operands() {
            if is_const(g, o) {
                continue;
            }
            let so = g.node(o).stage.ok_or(format!("{o} has no stage"))?;
            match n.op {
                Op::Reg { .. } => {
                    if s != so + 1 {
                        return Err(format!("register {v} at stage {s} reads {o} at stage {so}"));
                    }
                }
                _ => {
                    if so > s {
                        return Err(format!("{v} at stage {s} uses {o} from a later stage {so}"));
                    }
                    if registers_inserted && so != s {
                        return Err(format!(
                            "{v} at stage {s} reads {o} at stage {so} without a register"
                        ));
                    }
                    if so == s {
                        t0 = t0.max(arrive[o.index()]);
                    }
                }
            }
        }
        let t = match n.op {
            Op::Reg { .. } => 0.0,
            _ => t0 + op_delay(g, v, dm),
        };
        if t > budget + 1e-9 {
            return Err(format!(
                "stage {s} needs {t:.3} ns at {v}, more than the {budget:.3} ns the clock allows"
            ));
        }
        arrive[v.index()] = t;
    }
    if let Some(l) = g.latency {
        for o in g.outputs() {
            if g.node(o).stage != Some(l) {
                return Err(format!("output {o} is not at the last stage {l}"));
            }
        }
    }
    Ok(())
}
