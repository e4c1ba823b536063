//! `dead-code`: removes every node no output depends on (the neurons and inputs pruning disconnected,
//! the pieces constant folding bypassed). Input nodes stay: they are the design's ports, and an unused
//! input element is still part of `in_data`'s layout.

use super::{DfgPass, PassContext};
use crate::diag::Result;
use crate::ir::dfg::{Dfg, Op};

pub struct DeadCode;

impl DfgPass for DeadCode {
    fn name(&self) -> &'static str {
        "dead-code"
    }
    fn doc(&self) -> &'static str {
        "remove nodes that no output depends on"
    }
    fn run(&self, g: &mut Dfg, _cx: &PassContext) -> Result<()> {
        let mut live = vec![false; g.graph.node_count()];
        // Reverse id order is a reverse topological order: users come after their operands.
        for v in g.ids().collect::<Vec<_>>().into_iter().rev() {
            let n = g.node(v);
            if matches!(n.op, Op::Output { .. } | Op::Input { .. }) {
                live[v.index()] = true;
            }
            if live[v.index()] {
                for o in n.op.operands() {
                    live[o.index()] = true;
                }
            }
        }
        if live.iter().all(|l| *l) {
            return Ok(());
        }
        *g = g.retain(&live);
        Ok(())
    }
}
