//! `retime`: moves nodes to later stages where that stores fewer bits in pipeline registers, keeping the
//! latency and the clock period. ASAP scheduling computes everything as early as possible, so a cut
//! between two stages often falls where many wide partial sums are alive; moving the last adders of a
//! tree one stage later registers their (fewer, narrower) operands instead.
//!
//! Register cost of a value = its width × (the last stage that reads it − its own stage). A move of `v`
//! from stage `s` to `s + 1` is taken when it strictly lowers the total and stage `s + 1` still meets the
//! clock with `v` in it. Nodes are visited in reverse topological order (users before operands) so a whole
//! chain can slide in one sweep; sweeps repeat until nothing moves (bounded). Inputs stay in stage 0 and
//! outputs at the latency. Values never change (only stages), so the golden model is untouched; the
//! schedule verifier checks the result.

use super::{op_delay, verify};
use crate::diag::{Diagnostic, Result};
use crate::ir::dfg::{Dfg, Op, ValueId};
use crate::passes::{DfgPass, PassContext};

pub struct Retime;

/// Ops that compute something can move to a later stage; ports, constants and registers stay.
fn movable(op: &Op) -> bool {
    op.computes()
}

impl DfgPass for Retime {
    fn name(&self) -> &'static str {
        "retime"
    }
    fn doc(&self) -> &'static str {
        "move nodes to later stages where that stores fewer register bits (same latency and clock)"
    }
    fn run(&self, g: &mut Dfg, cx: &PassContext) -> Result<()> {
        let dm = &cx.part.delay;
        let budget = cx.clock_ns - dm.ff;
        let n = g.graph.node_count();
        let ids: Vec<ValueId> = g.topo();
        let is_const: Vec<bool> = ids
            .iter()
            .map(|v| matches!(g.node(*v).op, Op::Const { .. }))
            .collect();
        let users: Vec<Vec<ValueId>> = ids
            .iter()
            .map(|v| {
                g.users(*v)
                    .into_iter()
                    .filter(|u| !is_const[u.index()])
                    .collect()
            })
            .collect();
        let operands: Vec<Vec<ValueId>> = ids
            .iter()
            .map(|v| {
                g.node(*v)
                    .op
                    .operands()
                    .into_iter()
                    .filter(|o| !is_const[o.index()])
                    .collect()
            })
            .collect();
        let width: Vec<i64> = ids
            .iter()
            .map(|v| g.node(*v).iv.fixed_type().width as i64)
            .collect();
        let delay: Vec<f64> = ids.iter().map(|v| op_delay(g, *v, dm)).collect();
        let mut stage: Vec<u32> = ids.iter().map(|v| g.node(*v).stage.unwrap_or(0)).collect();
        let last_use = |stage: &[u32], v: usize| users[v].iter().map(|u| stage[u.index()]).max();

        // Nodes of each stage, in topological (id) order.
        let max_stage = stage.iter().copied().max().unwrap_or(0) as usize;
        let mut members: Vec<std::collections::BTreeSet<usize>> =
            vec![Default::default(); max_stage + 2];
        for (v, &s) in stage.iter().enumerate() {
            members[s as usize].insert(v);
        }
        // Does stage `s` meet the clock? (Arrival times of its nodes, in topological order.)
        // `arrive` is scratch space indexed by node; only the stage's own members are read.
        let mut arrive = vec![0f64; n];
        let mut fits =
            |stage: &[u32], s: u32, members: &std::collections::BTreeSet<usize>| -> bool {
                for &m in members {
                    let t0 = operands[m]
                        .iter()
                        .filter(|o| stage[o.index()] == s)
                        .map(|o| arrive[o.index()])
                        .fold(0.0, f64::max);
                    let t = t0 + delay[m];
                    if t > budget + 1e-9 {
                        return false;
                    }
                    arrive[m] = t;
                }
                true
            };

        for _sweep in 0..8 {
            let mut moved = false;
            for v in (0..n).rev() {
                if !movable(&g.node(ids[v]).op) {
                    continue;
                }
                let s = stage[v];
                // Every reader must already be later than `s`.
                let Some(lu) = last_use(&stage, v) else {
                    continue;
                };
                if lu <= s || users[v].iter().any(|u| stage[u.index()] <= s) {
                    continue;
                }
                // Gain: v's own chain gets one register shorter; each operand whose last reader was v
                // at stage s needs one more.
                let mut delta = -width[v];
                for o in &operands[v] {
                    let oi = o.index();
                    let others = users[oi]
                        .iter()
                        .filter(|u| u.index() != v)
                        .map(|u| stage[u.index()])
                        .max()
                        .unwrap_or(stage[oi]);
                    if others <= s {
                        delta += width[oi];
                    }
                }
                if delta >= 0 {
                    continue;
                }
                stage[v] = s + 1;
                members[s as usize].remove(&v);
                members[s as usize + 1].insert(v);
                if fits(&stage, s + 1, &members[s as usize + 1]) {
                    moved = true;
                } else {
                    stage[v] = s;
                    members[s as usize + 1].remove(&v);
                    members[s as usize].insert(v);
                }
            }
            if !moved {
                break;
            }
        }
        for v in &ids {
            if movable(&g.node(*v).op) {
                g.node_mut(*v).stage = Some(stage[v.index()]);
            }
        }
        verify(g, &cx.part.delay, false).map_err(|e| Diagnostic::bug(self.name(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    /// Register bits a schedule needs: width × (last reading stage − own stage), constants free.
    fn register_bits(g: &Dfg) -> i64 {
        g.ids()
            .filter(|v| !matches!(g.node(*v).op, Op::Const { .. }))
            .map(|v| {
                let s = g.node(v).stage.unwrap_or(0) as i64;
                let last = g
                    .users(v)
                    .iter()
                    .map(|u| g.node(*u).stage.unwrap_or(0) as i64)
                    .max()
                    .unwrap_or(s);
                g.node(v).iv.fixed_type().width as i64 * (last - s)
            })
            .sum()
    }

    #[test]
    fn retiming_never_adds_register_bits_and_keeps_values_and_latency() {
        for seed in 0..20 {
            let text = crate::testgen::random_model(seed);
            let g = parse(&text);
            let mut c = cx();
            c.clock_ns = 1.0;
            let Ok(mut d) = crate::passes::lower_cmvm::lower(&g, &c) else {
                continue;
            };
            crate::schedule::Schedule.run(&mut d, &c).unwrap();
            let (before, latency) = (register_bits(&d), d.latency);
            Retime.run(&mut d, &c).unwrap();
            assert!(register_bits(&d) <= before, "seed {seed}");
            assert_eq!(d.latency, latency);
            crate::passes::insert_registers::InsertRegisters
                .run(&mut d, &c)
                .unwrap();
            crate::passes::verify_dfg(&d, &c).unwrap();
            assert_dfg_matches(&g, &d, 200);
        }
    }
}
