//! `infer-ranges`: recomputes every node's exact value interval, in topological order, from the declared
//! input types and constants (the interval rules of `ir::dfg::op_interval`): each adder then carries
//! exactly the bits its result can take. Nodes are created with their intervals, so after a pass that
//! only rebuilds through `Dfg::add` this is a fixpoint; it exists for passes that edit ops in place and
//! as the place where tighter analyses (bit-level known zeros, issue 4) will go.

use super::const_fold::too_wide;
use super::{DfgPass, PassContext};
use crate::diag::Result;
use crate::ir::dfg::{op_interval, Dfg};

pub struct InferRanges;

impl DfgPass for InferRanges {
    fn name(&self) -> &'static str {
        "infer-ranges"
    }
    fn doc(&self) -> &'static str {
        "compute the exact value interval (and so the minimal width) of every node"
    }
    fn run(&self, g: &mut Dfg, _cx: &PassContext) -> Result<()> {
        for v in g.topo() {
            let n = g.node(v);
            let iv = op_interval(&n.op, |o| g.node(o).iv, &g.inputs, &g.tables)
                .map_err(|e| too_wide(g, n.layer, e))?;
            g.node_mut(v).iv = iv;
        }
        Ok(())
    }
}
