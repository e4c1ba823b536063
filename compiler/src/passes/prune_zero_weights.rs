//! `prune-zero-weights`: removes zero entries from every Dense weight list, so no later stage spends a
//! thought, a wire or an adder on them. Together with constant folding (a neuron whose weights are all
//! zero is the constant bias, and its ReLU/quantiser fold too) and dead-code elimination (an input whose
//! weights are all zero disappears), pruning shrinks the hardware, not just the numbers.

use super::{LayerPass, PassContext};
use crate::diag::Result;
use crate::ir::layer::{LayerGraph, LayerOp};

pub struct PruneZeroWeights;

impl LayerPass for PruneZeroWeights {
    fn name(&self) -> &'static str {
        "prune-zero-weights"
    }
    fn doc(&self) -> &'static str {
        "drop zero weights from Dense layers"
    }
    fn run(&self, g: &mut LayerGraph, _cx: &PassContext) -> Result<()> {
        for id in g.order.clone() {
            if let LayerOp::Dense { weights, .. } = &mut g.layer_mut(id).op {
                weights.retain(|w| !w.w.is_zero());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn pruning_keeps_outputs_and_drops_zeros() {
        let text = r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[3],"type":"fixed<8,3>"},
          {"name":"d","op":"Dense","inputs":["x"],"weight":{"shape":[3,3],"type":"fixed<5,1>","data":[1,0,0, 0,0,0, -3,0,9]},
           "bias":{"shape":[3],"type":"fixed<6,2>","data":[5,-9,0]}},
          {"name":"y","op":"Output","inputs":["d"]}]}"#;
        let before = parse(text);
        let mut after = before.clone();
        PruneZeroWeights.run(&mut after, &cx()).unwrap();
        let d = after.order[1];
        let LayerOp::Dense { weights, .. } = &after.layer(d).op else {
            panic!("not a dense")
        };
        assert_eq!(weights.len(), 3);
        assert_layers_equal(&before, &after, 300);
    }
}
