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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn unused_inputs_keep_their_port_and_lose_their_logic() {
        let g = parse(
            r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[3],"type":"fixed<8,3>"},
          {"name":"d","op":"Dense","inputs":["x"],"weight":{"shape":[3,1],"type":"fixed<5,1>","data":[3,0,5]}},
          {"name":"side","op":"ReLU","inputs":["x"]},
          {"name":"y","op":"Output","inputs":["d"]}]}"#,
        );
        let mut d = crate::passes::lower_cmvm::lower(&g, &cx()).unwrap();
        assert_eq!(d.count("relu"), 3, "the unused ReLU layer was lowered");
        DeadCode.run(&mut d, &cx()).unwrap();
        crate::passes::verify_dfg(&d, &cx()).unwrap();
        assert_eq!(d.count("relu"), 0);
        assert_eq!(d.count("input"), 3, "all three ports stay");
        assert_dfg_matches(&g, &d, 300);
    }
}
