//! `fold-batchnorm`: merges a BatchNorm into the Dense that feeds it, exactly:
//! `w'[i][j] = w[i][j]·scale[j]`, `b'[j] = b[j]·scale[j] + shift[j]`. Constants are exact products, so the
//! folded model computes the same bits. A BatchNorm whose input is not a Dense used only by it stays
//! (the lowering then builds its own multiply-add); this pass never changes what the model computes.

use super::{LayerPass, PassContext};
use crate::diag::Result;
use crate::ir::layer::{LayerGraph, LayerOp};

pub struct FoldBatchNorm;

impl LayerPass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batchnorm"
    }
    fn doc(&self) -> &'static str {
        "merge each BatchNorm into the Dense that feeds it (exact constant products)"
    }
    fn run(&self, g: &mut LayerGraph, _cx: &PassContext) -> Result<()> {
        for bn in g.order.clone() {
            let LayerOp::BatchNorm { scale, shift } = g.layer(bn).op.clone() else {
                continue;
            };
            let src = g.layer(bn).inputs[0];
            if g.users(src).len() != 1 {
                continue;
            }
            let LayerOp::Dense {
                weights,
                bias,
                n_out,
                ..
            } = &g.layer(src).op
            else {
                continue;
            };
            // A Dense shared over leading axes has one bias per output column: the BatchNorm folds
            // only if its constants repeat with the same period.
            let n = *n_out as usize;
            if (0..scale.len()).any(|k| scale[k] != scale[k % n] || shift[k] != shift[k % n]) {
                continue;
            }
            // Fold only when every folded constant stays inside the exact arithmetic; otherwise the
            // BatchNorm stays and is lowered on its own (still exact).
            let new_w: Option<Vec<_>> = weights
                .iter()
                .map(|w| {
                    w.w.checked_mul(&scale[w.j as usize])
                        .map(|c| crate::ir::layer::Weight {
                            w: c.normalized(),
                            ..*w
                        })
                })
                .collect();
            let new_b: Option<Vec<_>> = bias
                .iter()
                .enumerate()
                .map(|(j, b)| {
                    b.checked_mul(&scale[j])
                        .and_then(|p| p.checked_add(&shift[j]))
                        .map(|c| c.normalized())
                })
                .collect();
            let (Some(new_w), Some(new_b)) = (new_w, new_b) else {
                continue;
            };
            if let LayerOp::Dense { weights, bias, .. } = &mut g.layer_mut(src).op {
                *weights = new_w;
                *bias = new_b;
            }
            g.replace_uses(bn, src);
            g.remove(bn);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn folding_keeps_every_output_bit() {
        let text = r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[3],"type":"fixed<8,3>"},
          {"name":"d","op":"Dense","inputs":["x"],"weight":{"shape":[3,2],"type":"fixed<5,1>","data":[1,-3,7,0,-16,15]},
           "bias":{"shape":[2],"type":"fixed<6,2>","data":[5,-9]}},
          {"name":"bn","op":"BatchNorm","inputs":["d"],"scale":{"shape":[2],"types":["fixed<7,2>","fixed<4,4>"],"data":[-37,5]},
           "shift":{"shape":[2],"type":"fixed<9,5>","data":[100,-3]}},
          {"name":"y","op":"Output","inputs":["bn"]}]}"#;
        let before = parse(text);
        let mut after = before.clone();
        FoldBatchNorm.run(&mut after, &cx()).unwrap();
        assert_eq!(after.graph.node_count(), 3, "the BatchNorm is gone");
        assert_layers_equal(&before, &after, 500);
    }

    #[test]
    fn batchnorm_after_shared_dense_stays() {
        let text = r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[1],"type":"fixed<8,3>"},
          {"name":"d","op":"Dense","inputs":["x"],"weight":{"shape":[1,1],"type":"fixed<5,1>","data":[3]}},
          {"name":"bn","op":"BatchNorm","inputs":["d"],"scale":{"shape":[1],"type":"fixed<7,2>","data":[-37]},
           "shift":{"shape":[1],"type":"fixed<9,5>","data":[100]}},
          {"name":"y","op":"Output","inputs":["bn"]},
          {"name":"z","op":"Output","inputs":["d"]}]}"#;
        let before = parse(text);
        let mut after = before.clone();
        FoldBatchNorm.run(&mut after, &cx()).unwrap();
        assert_eq!(after.graph.node_count(), 5);
        assert_layers_equal(&before, &after, 100);
    }
}
