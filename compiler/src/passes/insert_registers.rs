//! `insert-registers`: makes the schedule explicit. Every value read in a later stage than the one that
//! computes it gets a chain of `Reg` nodes, one per stage boundary, shared by all its readers (so a value
//! read three stages later costs three registers, however many read it). Afterwards every non-register
//! node reads only values of its own stage, which the verifier checks, and the emitter prints registers
//! as they stand. Constants get no registers.

use super::const_fold::too_wide;
use super::{DfgPass, PassContext};
use crate::diag::{Diagnostic, Result};
use crate::ir::dfg::{Dfg, Node, Op, ValueId};
use std::collections::HashMap;

pub struct InsertRegisters;

impl DfgPass for InsertRegisters {
    fn name(&self) -> &'static str {
        "insert-registers"
    }
    fn doc(&self) -> &'static str {
        "insert shared pipeline-register chains where values cross stage boundaries"
    }
    fn run(&self, g: &mut Dfg, _cx: &PassContext) -> Result<()> {
        let mut out = g.empty_like();
        out.registered = true;
        let mut map: Vec<ValueId> = Vec::with_capacity(g.graph.node_count());
        // For each new value: its copies at later stages (index k = k stages later).
        let mut chains: HashMap<ValueId, Vec<ValueId>> = HashMap::new();
        for v in g.ids() {
            let n = g.node(v);
            let stage = n
                .stage
                .ok_or_else(|| Diagnostic::bug(self.name(), format!("{v} was not scheduled")))?;
            let mut err = None;
            let op = n.op.map_operands(|o| {
                let src = map[o.index()];
                let sn = out.node(src);
                if matches!(sn.op, Op::Const { .. }) {
                    return src;
                }
                let s0 = sn.stage.unwrap_or(0);
                if stage <= s0 {
                    return src;
                }
                let chain = chains.entry(src).or_insert_with(|| vec![src]);
                while chain.len() <= (stage - s0) as usize {
                    let prev = *chain.last().expect("chain starts with the value");
                    let layer = out.node(prev).layer;
                    match out.add(Op::Reg { a: prev }, layer) {
                        Ok(r) => {
                            out.node_mut(r).stage = Some(s0 + chain.len() as u32);
                            chain.push(r);
                        }
                        Err(e) => {
                            err = Some(too_wide(&out, layer, e));
                            break;
                        }
                    }
                }
                chain.get((stage - s0) as usize).copied().unwrap_or(src)
            });
            if let Some(e) = err {
                return Err(e);
            }
            let id = out
                .add(op, n.layer)
                .map_err(|e| too_wide(&out, n.layer, e))?;
            let Node { stage, name, .. } = n.clone();
            out.node_mut(id).stage = stage;
            out.node_mut(id).name = name;
            map.push(id);
        }
        *g = out;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn register_chains_are_shared_and_the_schedule_stays_valid() {
        let g = parse(
            r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[4],"type":"fixed<16,6>"},
          {"name":"d1","op":"Dense","inputs":["x"],"weight":{"shape":[4,4],"type":"fixed<8,1>","data":[101,-77,55,-33,91,-13,47,-123,17,29,-61,83,-97,71,-41,59]}},
          {"name":"d2","op":"Dense","inputs":["d1"],"weight":{"shape":[4,2],"type":"fixed<8,1>","data":[109,-87,43,-21,67,-113,31,79]}},
          {"name":"y","op":"Output","inputs":["d2"]},
          {"name":"tap","op":"Output","inputs":["x"]}]}"#,
        );
        let mut c = cx();
        c.clock_ns = 1.0;
        let mut d = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
        crate::schedule::Schedule.run(&mut d, &c).unwrap();
        let latency = d.latency.unwrap();
        assert!(latency >= 3, "1 ns needs several stages, got {latency}");
        InsertRegisters.run(&mut d, &c).unwrap();
        crate::passes::verify_dfg(&d, &c).unwrap();
        crate::schedule::verify(&d, &c.part.delay, true).unwrap();
        assert_dfg_matches(&g, &d, 300);
        // The tap outputs need each input delayed `latency` times: one chain per input, shared with
        // the adders that read the inputs at stage 0.
        let regs_of_inputs = d
            .ids()
            .filter(|v| match d.node(*v).op {
                Op::Reg { a } => {
                    matches!(d.node(a).op, Op::Input { .. } | Op::Reg { .. })
                        && d.node(*v).layer.0 == 0
                }
                _ => false,
            })
            .count();
        assert_eq!(regs_of_inputs, 4 * latency as usize);
    }
}
