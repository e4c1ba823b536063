//! `lower-cmvm`: lowers the layer IR to the dataflow IR. Each Dense (and any BatchNorm left unfolded) is
//! a constant matrix-vector product; every weight becomes its canonical signed digits (CSD: the fewest
//! non-zero digits ±2^k, no two adjacent), every digit a shifted, possibly negated term of its input,
//! and each output the sum of its terms and its bias through a balanced adder tree.
//!
//! Dense layers go through the adder-graph optimiser ([`super::cmvm`]), which shares common two-term
//! sub-sums between outputs; a BatchNorm left unfolded uses a plain balanced tree ([`sum_terms`]).
//! Constant inputs (pruned neurons) are folded into the bias here, so they never become adders. The lowering keeps exact values: its test compares
//! the dataflow golden model with the layer golden model.

use super::const_fold::{add_simplified, too_wide};
use super::PassContext;
use crate::diag::Result;
use crate::ir::dfg::{Dfg, LayerInfo, LayerTag, Op, Term, ValueId};
use crate::ir::layer::{Const, LayerGraph, LayerOp};

/// Canonical signed digits of `m`: `(position, negative)` pairs with `m = Σ ±2^position`.
pub fn csd(m: i128) -> Vec<(u32, bool)> {
    let mut digits = Vec::new();
    let mut m = m;
    let mut k = 0u32;
    while m != 0 {
        if m & 1 == 1 {
            // m mod 4 == 1 -> digit +1; m mod 4 == 3 -> digit -1 (then m + 1 carries).
            let neg = m & 3 == 3;
            digits.push((k, neg));
            m = if neg { m + 1 } else { m - 1 };
        }
        m >>= 1;
        k += 1;
    }
    digits
}

/// Lower the (already layer-optimised) model to a dataflow graph.
pub fn lower(g: &LayerGraph, cx: &PassContext) -> Result<Dfg> {
    lower_with(g, cx, &mut super::cmvm::RecipeCache::default())
}

/// [`lower`], reusing the sharing decided for each layer in an earlier lowering of the same model (the
/// compiler lowers twice when it tries two ternary slacks).
pub fn lower_with(
    g: &LayerGraph,
    cx: &PassContext,
    cache: &mut super::cmvm::RecipeCache,
) -> Result<Dfg> {
    let mut dfg = Dfg {
        model_name: g.name.clone(),
        ..Dfg::default()
    };
    let mut vals: Vec<Option<Vec<ValueId>>> =
        vec![None; g.graph.capacity().0.max(g.graph.node_count())];
    let mut in_port = 0u32;
    let mut out_port = 0u32;
    for &id in &g.order {
        let layer = g.layer(id);
        let tag = LayerTag(dfg.layers.len() as u32);
        dfg.layers.push(LayerInfo {
            name: layer.name.clone(),
            kind: layer.op.kind().to_string(),
            path: layer.path.clone(),
        });
        let x: Vec<ValueId> = layer
            .inputs
            .first()
            .map(|i| vals[i.0.index()].clone().expect("topological order"))
            .unwrap_or_default();
        let y: Vec<ValueId> = match &layer.op {
            LayerOp::Input { q } => {
                let mut ys = Vec::with_capacity(q.len());
                for q in q {
                    dfg.inputs.push(q.ty);
                    let v = dfg
                        .add(Op::Input { port: in_port }, tag)
                        .map_err(|e| too_wide(&dfg, tag, e))?;
                    in_port += 1;
                    ys.push(v);
                }
                ys
            }
            LayerOp::Dense {
                weights,
                bias,
                n_out,
                ..
            } => {
                let mut terms: Vec<Vec<Term>> = vec![Vec::new(); *n_out as usize];
                let mut consts: Vec<Const> = bias.clone();
                for w in weights {
                    add_product(
                        &dfg,
                        x[w.i as usize],
                        &w.w,
                        &mut terms[w.j as usize],
                        &mut consts[w.j as usize],
                    );
                }
                let consts = consts
                    .into_iter()
                    .map(|c| {
                        let c = c.normalized();
                        if c.is_zero() {
                            Ok(None)
                        } else {
                            add_simplified(
                                &mut dfg,
                                Op::Const {
                                    value: c.m,
                                    frac: c.frac,
                                },
                                tag,
                            )
                            .map(Some)
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                super::cmvm::build(&mut dfg, terms, consts, tag, cx.cse, cache)?
            }
            LayerOp::BatchNorm { scale, shift } => {
                let mut ys = Vec::with_capacity(x.len());
                for (k, &xv) in x.iter().enumerate() {
                    let mut t = Vec::new();
                    let mut c = shift[k];
                    add_product(&dfg, xv, &scale[k], &mut t, &mut c);
                    ys.push(sum_terms(&mut dfg, t, c, tag)?);
                }
                ys
            }
            LayerOp::Relu => x
                .iter()
                .map(|&a| add_simplified(&mut dfg, Op::Relu { a }, tag))
                .collect::<Result<Vec<_>>>()?,
            LayerOp::Quantize { q } => x
                .iter()
                .zip(q)
                .map(|(&a, q)| quantize(&mut dfg, a, q, tag))
                .collect::<Result<Vec<_>>>()?,
            LayerOp::Output => {
                let mut ys = Vec::with_capacity(x.len());
                for &a in &x {
                    let v = dfg
                        .add(Op::Output { a, port: out_port }, tag)
                        .map_err(|e| too_wide(&dfg, tag, e))?;
                    out_port += 1;
                    ys.push(v);
                }
                ys
            }
        };
        vals[id.0.index()] = Some(y);
    }
    Ok(dfg)
}

/// A quantiser that both rounds with an adder and saturates becomes two nodes (an exact rounding into a
/// type wide enough to never wrap, then the overflow step), so the scheduler may put a register between
/// the carry chain and the saturation logic. Values are unchanged: the first step cannot overflow.
fn quantize(
    dfg: &mut Dfg,
    a: ValueId,
    q: &crate::fixed::Quantizer,
    tag: LayerTag,
) -> Result<ValueId> {
    let src = dfg.node(a).iv;
    let saturating = q.overflow != crate::fixed::Overflow::Wrap && q.can_overflow(src);
    if !(saturating && q.needs_round_adder(src)) {
        return add_simplified(dfg, Op::Quant { a, q: *q }, tag);
    }
    let wide = q.rounded_range(src).fixed_type();
    let round = crate::fixed::Quantizer::new(wide, q.rounding, crate::fixed::Overflow::Wrap);
    let r = add_simplified(dfg, Op::Quant { a, q: round }, tag)?;
    add_simplified(dfg, Op::Quant { a: r, q: *q }, tag)
}

/// Append the terms of `x · w` (or fold it into `acc` when `x` is a constant).
fn add_product(dfg: &Dfg, x: ValueId, w: &Const, terms: &mut Vec<Term>, acc: &mut Const) {
    if w.is_zero() {
        return;
    }
    if let Op::Const { value, frac } = dfg.node(x).op {
        *acc = acc.add(&Const { m: value, frac }.mul(w)).normalized();
        return;
    }
    for (pos, neg) in csd(w.m) {
        terms.push(Term {
            src: x,
            shift: pos as i32 - w.frac,
            neg,
        });
    }
}

/// Sum terms and a constant with a balanced adder tree (depth ⌈log2 n⌉).
fn sum_terms(dfg: &mut Dfg, terms: Vec<Term>, c: Const, tag: LayerTag) -> Result<ValueId> {
    let mut level: Vec<Term> = terms;
    let c = c.normalized();
    if !c.is_zero() || level.is_empty() {
        let k = add_simplified(
            dfg,
            Op::Const {
                value: c.m,
                frac: c.frac,
            },
            tag,
        )?;
        level.push(Term {
            src: k,
            shift: 0,
            neg: false,
        });
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [a, b] => {
                    // Put a positive term first so a single negation becomes a subtraction.
                    let (a, b) = if a.neg && !b.neg { (*b, *a) } else { (*a, *b) };
                    let s = add_simplified(dfg, Op::Add { a, b }, tag)?;
                    next.push(Term {
                        src: s,
                        shift: 0,
                        neg: false,
                    });
                }
                [a] => next.push(*a),
                _ => unreachable!("chunks(2) yields one or two"),
            }
        }
        level = next;
    }
    let t = level[0];
    add_simplified(dfg, Op::Scale { a: t }, tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn csd_is_exact_and_canonical(m in -(1i128 << 70)..(1i128 << 70)) {
            let d = csd(m);
            let sum: i128 = d.iter().map(|&(k, neg)| if neg { -(1i128 << k) } else { 1i128 << k }).sum();
            prop_assert_eq!(sum, m);
            for w in d.windows(2) {
                prop_assert!(w[1].0 >= w[0].0 + 2, "adjacent non-zero digits in {:?}", d);
            }
        }
    }
}

#[cfg(test)]
mod lowering_tests {
    use super::*;
    use crate::testutil::*;

    const MODEL: &str = r#"{"format":"fastml-model","version":1,"nodes":[
      {"name":"x","op":"Input","shape":[3],"type":"fixed<8,3>"},
      {"name":"d","op":"Dense","inputs":["x"],"weight":{"shape":[3,2],"types":["fixed<5,1>","fixed<6,3>","fixed<4,4>","fixed<5,1>","fixed<6,-2>","fixed<5,1>"],"data":[7,-3,5,0,-31,15]},
       "bias":{"shape":[2],"type":"fixed<6,2>","data":[5,-9]}},
      {"name":"r","op":"ReLU","inputs":["d"]},
      {"name":"q","op":"Quantize","inputs":["r"],"type":"ufixed<4,2,RND_CONV,SAT>"},
      {"name":"y","op":"Output","inputs":["q"]}]}"#;

    #[test]
    fn lowering_is_exact_and_costs_one_adder_per_extra_digit() {
        let g = parse(MODEL);
        let d = lower(&g, &cx()).unwrap();
        crate::ir::verify::verify_dfg(&d, &cx()).unwrap();
        assert_dfg_matches(&g, &d, 2000);
        // Column 0: 7 = 8-1 (2 digits), 5 = 4+1 (2), -31 = -32+1 (2), bias: 7 terms -> 6 adders.
        // Column 1: -3 = -4+1 (2), 0, 15 = 16-1 (2), bias: 5 terms -> 4 adders.
        // (A ternary adder counts as the two binary adders it replaces.)
        assert_eq!(d.count("add") + 2 * d.count("add3"), 10);
    }

    #[test]
    fn a_rounding_saturating_quantiser_becomes_two_steps() {
        let g = parse(MODEL);
        let d = lower(&g, &cx()).unwrap();
        // ReLU'd values up to ~30 saturate at 3.75 after RND_CONV rounding: round, then clamp.
        assert_eq!(d.count("quant"), 4);
    }
}
