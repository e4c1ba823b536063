//! `cse`: common-subexpression elimination. Two nodes that apply the same op to the same operands
//! compute the same value, so the later one is replaced by the earlier (value numbering in id order,
//! which is a topological order, so one sweep finds every chain of equal nodes). Lookup layers quantise
//! one input once per table (HGQ2 gives each (input, output) pair its own quantiser), and equal
//! quantisers of one value then become one rounding adder shared by all the tables that read it.
//!
//! Ports and registers are never merged (each is a distinct place in the design). The pass changes no
//! value: its test compares golden models before and after.

use super::{DfgPass, PassContext};
use crate::diag::Result;
use crate::ir::dfg::{Dfg, Op, ValueId};
use std::collections::HashMap;

pub struct Cse;

impl DfgPass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }
    fn doc(&self) -> &'static str {
        "merge nodes that apply the same op to the same operands"
    }
    fn run(&self, g: &mut Dfg, _cx: &PassContext) -> Result<()> {
        let mut out = g.empty_like();
        let mut map: Vec<ValueId> = Vec::with_capacity(g.graph.node_count());
        let mut seen: HashMap<Op, ValueId> = HashMap::new();
        for v in g.ids() {
            let n = g.node(v);
            let op = n.op.map_operands(|s| map[s.index()]);
            let mergeable = op.computes() || matches!(op, Op::Const { .. });
            if mergeable {
                if let Some(&id) = seen.get(&op) {
                    map.push(id);
                    continue;
                }
            }
            let id = out.add(op.clone(), n.layer).map_err(|e| {
                crate::diag::Diagnostic::bug("cse", format!("re-adding {v}: {e:?}"))
            })?;
            out.node_mut(id).stage = n.stage;
            out.node_mut(id).name = n.name.clone();
            if mergeable {
                seen.insert(op, id);
            }
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
    fn equal_quantisations_of_one_value_become_one() {
        // Two tables read the same input through the same RND domain: one rounding node remains.
        let g = parse(
            r#"{"format":"fastml-model","version":2,"nodes":[
          {"name":"x","op":"Input","shape":[1],"type":"fixed<8,3>"},
          {"name":"t","op":"LookupDense","inputs":["x"],"n_out":2,"tables":[
            {"in":0,"out":0,"domain":"fixed<3,2,RND,WRAP>","table":{"shape":[8],"type":"fixed<4,2>","data":[0,1,2,3,-4,-3,-2,-1]}},
            {"in":0,"out":1,"domain":"fixed<3,2,RND,WRAP>","table":{"shape":[8],"type":"fixed<4,2>","data":[3,1,2,0,-4,-3,5,-1]}}]},
          {"name":"y","op":"Output","inputs":["t"]}]}"#,
        );
        let mut d = crate::passes::lower_cmvm::lower(&g, &cx()).unwrap();
        assert_eq!(d.count("quant"), 2);
        Cse.run(&mut d, &cx()).unwrap();
        crate::passes::verify_dfg(&d, &cx()).unwrap();
        assert_eq!(d.count("quant"), 1);
        assert_eq!(d.count("table"), 2);
        assert_dfg_matches(&g, &d, 500);
    }
}
