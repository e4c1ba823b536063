//! `fold-rounding`: a round-to-nearest (`RND`) quantiser that follows a Dense (directly or through a
//! ReLU) costs a rounding adder per element; adding half a target step to the Dense's bias instead turns
//! it into a plain truncation (`TRN`, free bit slicing), because the Dense already ends in an adder that
//! sums a constant.
//!
//! Why it is exact, with `h = 2^-(f+1)` (half a step of the target's `f` fractional bits):
//! `RND(v) = floor((v + h)·2^f)`, so `Quantize_RND(s) = Quantize_TRN(s + h)`; through a ReLU,
//! `floor(relu(s)·2^f + 1/2)` and `floor(relu(s + h)·2^f)` agree for `s >= 0` (identical) and for `s < 0`
//! (both 0, since `relu(s + h) < h` there). The overflow step is unchanged (it sees the same rounded
//! value). Only `RND` qualifies: the other modes' tie rules depend on the value's sign or last kept bit.
//! The Dense and the ReLU must have no other readers, since their values change by `h`.

use super::{LayerPass, PassContext};
use crate::diag::Result;
use crate::fixed::Rounding;
use crate::ir::layer::{Const, LayerGraph, LayerId, LayerOp};

pub struct FoldRounding;

impl FoldRounding {
    /// The Dense that feeds `q` (directly or through a ReLU), with the ReLU if any, when every link has
    /// a single reader.
    fn source(g: &LayerGraph, q: LayerId) -> Option<(LayerId, Option<LayerId>)> {
        let src = *g.layer(q).inputs.first()?;
        let (dense, relu) = match g.layer(src).op {
            LayerOp::Relu => (*g.layer(src).inputs.first()?, Some(src)),
            _ => (src, None),
        };
        if !matches!(g.layer(dense).op, LayerOp::Dense { .. }) || g.users(dense).len() != 1 {
            return None;
        }
        if let Some(r) = relu {
            if g.users(r).len() != 1 {
                return None;
            }
        }
        Some((dense, relu))
    }
}

impl LayerPass for FoldRounding {
    fn name(&self) -> &'static str {
        "fold-rounding"
    }
    fn doc(&self) -> &'static str {
        "turn RND quantisers after a Dense (and ReLU) into truncations by adding half a step to the bias"
    }
    fn run(&self, g: &mut LayerGraph, _cx: &PassContext) -> Result<()> {
        for q in g.order.clone() {
            let LayerOp::Quantize { q: quants } = &g.layer(q).op else {
                continue;
            };
            if !quants.iter().any(|x| x.rounding == Rounding::Rnd) {
                continue;
            }
            let Some((dense, _)) = Self::source(g, q) else {
                continue;
            };
            let quants = quants.clone();
            let LayerOp::Dense { bias, n_out, .. } = &g.layer(dense).op else {
                continue;
            };
            // A Dense shared over leading axes has one bias per output column: fold only if the
            // quantisers repeat with the same period.
            let n = *n_out as usize;
            if (0..quants.len()).any(|k| quants[k] != quants[k % n]) {
                continue;
            }
            // Every new bias must stay inside the exact arithmetic; otherwise leave the layer alone.
            let new_bias: Option<Vec<Const>> = bias
                .iter()
                .zip(&quants)
                .map(|(b, x)| {
                    if x.rounding == Rounding::Rnd {
                        b.checked_add(&Const {
                            m: 1,
                            frac: x.ty.frac + 1,
                        })
                        .map(|c| c.normalized())
                    } else {
                        Some(*b)
                    }
                })
                .collect();
            let Some(new_bias) = new_bias else { continue };
            if let LayerOp::Dense { bias, .. } = &mut g.layer_mut(dense).op {
                *bias = new_bias;
            }
            if let LayerOp::Quantize { q: quants } = &mut g.layer_mut(q).op {
                for x in quants.iter_mut() {
                    if x.rounding == Rounding::Rnd {
                        x.rounding = Rounding::Trn;
                    }
                }
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
    fn rnd_after_dense_and_relu_becomes_a_truncation_with_the_same_outputs() {
        let text = r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[3],"type":"fixed<8,3>"},
          {"name":"d","op":"Dense","inputs":["x"],"weight":{"shape":[3,3],"type":"fixed<6,1>","data":[7,-13,21,-5,30,-17,9,2,-31]},
           "bias":{"shape":[3],"type":"fixed<6,2>","data":[5,-9,0]}},
          {"name":"r","op":"ReLU","inputs":["d"]},
          {"name":"q","op":"Quantize","inputs":["r"],"types":["ufixed<6,3,RND,WRAP>","ufixed<4,2,RND,SAT>","ufixed<5,3,RND_CONV,SAT>"]},
          {"name":"d2","op":"Dense","inputs":["q"],"weight":{"shape":[3,1],"type":"fixed<6,1>","data":[7,-13,21]}},
          {"name":"q2","op":"Quantize","inputs":["d2"],"type":"fixed<6,2,RND,SAT>"},
          {"name":"y","op":"Output","inputs":["q2"]}]}"#;
        let before = parse(text);
        let mut after = before.clone();
        FoldRounding.run(&mut after, &cx()).unwrap();
        let modes: Vec<Vec<Rounding>> = after
            .order
            .iter()
            .filter_map(|l| match &after.layer(*l).op {
                LayerOp::Quantize { q } => Some(q.iter().map(|x| x.rounding).collect()),
                _ => None,
            })
            .collect();
        assert_eq!(
            modes,
            vec![
                vec![Rounding::Trn, Rounding::Trn, Rounding::RndConv],
                vec![Rounding::Trn]
            ]
        );
        assert_layers_equal(&before, &after, 3000);
        // Lowered as they are (not through the pipeline, which runs this pass too).
        let d0 = crate::passes::lower_cmvm::lower(&before, &cx()).unwrap();
        let d1 = crate::passes::lower_cmvm::lower(&after, &cx()).unwrap();
        let rounding_adders = |d: &crate::ir::dfg::Dfg| {
            d.ids()
                .filter(|v| match &d.node(*v).op {
                    crate::ir::dfg::Op::Quant { a, q } => q.needs_round_adder(d.node(*a).iv),
                    _ => false,
                })
                .count()
        };
        // Element 2 (RND_CONV) keeps its rounding adder; the 3 RND ones lose theirs.
        assert_eq!(rounding_adders(&d0), 4);
        assert_eq!(rounding_adders(&d1), 1);
    }

    #[test]
    fn a_shared_dense_is_left_alone() {
        let text = r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[1],"type":"fixed<8,3>"},
          {"name":"d","op":"Dense","inputs":["x"],"weight":{"shape":[1,1],"type":"fixed<6,1>","data":[7]}},
          {"name":"q","op":"Quantize","inputs":["d"],"type":"fixed<6,3,RND,WRAP>"},
          {"name":"y","op":"Output","inputs":["q"]},
          {"name":"z","op":"Output","inputs":["d"]}]}"#;
        let before = parse(text);
        let mut after = before.clone();
        FoldRounding.run(&mut after, &cx()).unwrap();
        assert_eq!(format!("{:?}", before.graph), format!("{:?}", after.graph));
    }
}
