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
use crate::ir::layer::{
    concat_map, reduce_groups, transpose_map, Const, LayerGraph, LayerOp, LookupTable, ReduceKind,
};

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

/// The `lower-cmvm` pass object (see [`super::LoweringPass`]).
pub struct LowerCmvm;

impl super::LoweringPass for LowerCmvm {
    fn name(&self) -> &'static str {
        "lower-cmvm"
    }
    fn doc(&self) -> &'static str {
        "lower the layer IR to scalar operations: CSD shift-add graphs, lookups, sums, wiring"
    }
    fn run(
        &self,
        g: &LayerGraph,
        cx: &PassContext,
        cache: &mut super::cmvm::RecipeCache,
    ) -> Result<Dfg> {
        lower_with(g, cx, cache)
    }
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
            kind: layer.op.layer_kind(),
            path: layer.path.clone(),
        });
        let xs: Vec<&Vec<ValueId>> = layer
            .inputs
            .iter()
            .map(|i| vals[i.0.index()].as_ref().expect("topological order"))
            .collect();
        let shapes: Vec<&[u32]> = layer
            .inputs
            .iter()
            .map(|i| g.layer(*i).shape.as_slice())
            .collect();
        let x: Vec<ValueId> = xs.first().map(|v| v.to_vec()).unwrap_or_default();
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
                n_in,
            } => {
                // One constant matrix-vector product per leading index, all with the same weights: the
                // sharing search runs once (the recipe cache sees the same local terms every row).
                let mut ys = Vec::with_capacity(layer.len() as usize);
                for row in x.chunks(*n_in as usize) {
                    let mut terms: Vec<Vec<Term>> = vec![Vec::new(); *n_out as usize];
                    let mut consts: Vec<Const> = bias.clone();
                    for w in weights {
                        add_product(
                            &dfg,
                            row[w.i as usize],
                            &w.w,
                            &mut terms[w.j as usize],
                            &mut consts[w.j as usize],
                        );
                    }
                    let consts = const_nodes(&mut dfg, consts, tag)?;
                    ys.extend(super::cmvm::build(
                        &mut dfg, terms, consts, tag, cx.cse, cache,
                    )?);
                }
                ys
            }
            LayerOp::LookupDense {
                tables,
                bias,
                n_out,
                n_in,
            } => {
                let mut ys = Vec::with_capacity(layer.len() as usize);
                for row in x.chunks(*n_in as usize) {
                    let mut terms: Vec<Vec<Term>> = vec![Vec::new(); *n_out as usize];
                    let mut consts: Vec<Const> = bias.clone();
                    for t in tables {
                        // Each ROM holds its entries minus their minimum and the minimum goes to the
                        // bias: the adder trees then sum unsigned values (no sign extension, so no
                        // LUTs above a narrow operand's top bit) and a ROM column that is all equal
                        // after the shift costs nothing.
                        let (v, offset) =
                            lookup_offset(&mut dfg, row[t.i as usize], &t.table, tag)?;
                        let j = t.j as usize;
                        consts[j] = consts[j].add(&offset).normalized();
                        push_value(&dfg, v, &mut terms[j], &mut consts[j]);
                    }
                    let consts = const_nodes(&mut dfg, consts, tag)?;
                    ys.extend(super::cmvm::build(
                        &mut dfg, terms, consts, tag, cx.cse, cache,
                    )?);
                }
                ys
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
            LayerOp::Table { table } => x
                .iter()
                .map(|&a| lookup(&mut dfg, a, table, tag))
                .collect::<Result<Vec<_>>>()?,
            LayerOp::Add => {
                let groups: Vec<Vec<ValueId>> = (0..x.len())
                    .map(|k| xs.iter().map(|v| v[k]).collect())
                    .collect();
                sums(&mut dfg, &groups, 0, tag, cx, cache)?
            }
            LayerOp::Mul => xs[0]
                .iter()
                .zip(xs[1].iter())
                .map(|(&a, &b)| add_simplified(&mut dfg, Op::Mul { a, b }, tag))
                .collect::<Result<Vec<_>>>()?,
            LayerOp::Reduce { axis, kind } => {
                let groups: Vec<Vec<ValueId>> = reduce_groups(shapes[0], *axis)
                    .into_iter()
                    .map(|grp| grp.into_iter().map(|k| x[k]).collect())
                    .collect();
                match kind {
                    ReduceKind::Sum => sums(&mut dfg, &groups, 0, tag, cx, cache)?,
                    ReduceKind::Mean { shift } => {
                        sums(&mut dfg, &groups, -(*shift as i32), tag, cx, cache)?
                    }
                    ReduceKind::Max => groups
                        .iter()
                        .map(|grp| max_tree(&mut dfg, grp, tag))
                        .collect::<Result<Vec<_>>>()?,
                }
            }
            LayerOp::Reshape => x,
            LayerOp::Transpose { perm } => transpose_map(shapes[0], perm)
                .into_iter()
                .map(|k| x[k])
                .collect(),
            LayerOp::Concat { axis } => concat_map(&shapes, *axis)
                .into_iter()
                .map(|(n, k)| xs[n][k])
                .collect(),
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

/// The non-zero constants as Const nodes (one per output; `None` for zero).
fn const_nodes(dfg: &mut Dfg, consts: Vec<Const>, tag: LayerTag) -> Result<Vec<Option<ValueId>>> {
    consts
        .into_iter()
        .map(|c| {
            let c = c.normalized();
            if c.is_zero() {
                Ok(None)
            } else {
                add_simplified(
                    dfg,
                    Op::Const {
                        value: c.m,
                        frac: c.frac,
                    },
                    tag,
                )
                .map(Some)
            }
        })
        .collect()
}

/// Append `v` as a term of a sum (or fold it into `acc` when it is a constant).
fn push_value(dfg: &Dfg, v: ValueId, terms: &mut Vec<Term>, acc: &mut Const) {
    if let Op::Const { value, frac } = dfg.node(v).op {
        *acc = acc.add(&Const { m: value, frac }).normalized();
        return;
    }
    terms.push(Term {
        src: v,
        shift: 0,
        neg: false,
    });
}

/// Sums of groups of values, each times `2^shift` (a mean's exact division), through the adder-graph
/// builder (Huffman trees with ternary adders; groups are independent, so nothing is shared).
fn sums(
    dfg: &mut Dfg,
    groups: &[Vec<ValueId>],
    shift: i32,
    tag: LayerTag,
    cx: &PassContext,
    cache: &mut super::cmvm::RecipeCache,
) -> Result<Vec<ValueId>> {
    let mut terms = Vec::with_capacity(groups.len());
    let mut consts = Vec::with_capacity(groups.len());
    for grp in groups {
        let mut t = Vec::new();
        let mut c = Const::ZERO;
        for &v in grp {
            if let Op::Const { value, frac } = dfg.node(v).op {
                c = c
                    .add(&Const {
                        m: value,
                        frac: frac + -shift,
                    })
                    .normalized();
            } else {
                t.push(Term {
                    src: v,
                    shift,
                    neg: false,
                });
            }
        }
        terms.push(t);
        consts.push(c);
    }
    let consts = const_nodes(dfg, consts, tag)?;
    let mut opts = cx.cse;
    // Independent sums have nothing to share: skip the search.
    opts.enabled = false;
    super::cmvm::build(dfg, terms, consts, tag, opts, cache)
}

/// The maximum of a group through a balanced tree of comparators.
fn max_tree(dfg: &mut Dfg, grp: &[ValueId], tag: LayerTag) -> Result<ValueId> {
    let mut level = grp.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [a, b] => next.push(add_simplified(dfg, Op::Max { a: *a, b: *b }, tag)?),
                [a] => next.push(*a),
                _ => unreachable!("chunks(2) yields one or two"),
            }
        }
        level = next;
    }
    Ok(level[0])
}

/// A table lookup on `a`: the domain quantiser (as its own node, so equal quantisations of one value
/// are shared and `absorb-into-table` can fold it into the ROM), then a ROM addressed by the
/// quantised value's bits. Entries at addresses the quantised value never takes repeat a reachable
/// entry, so the ROM's range is the lookup's exact range.
fn lookup(dfg: &mut Dfg, a: ValueId, t: &LookupTable, tag: LayerTag) -> Result<ValueId> {
    lookup_with(dfg, a, t, Const::ZERO, tag)
}

/// [`lookup`] of the table minus its smallest entry; returns the lookup and that entry (the lookup's
/// value is the first plus the second).
fn lookup_offset(
    dfg: &mut Dfg,
    a: ValueId,
    t: &LookupTable,
    tag: LayerTag,
) -> Result<(ValueId, Const)> {
    let frac = t.entries.iter().map(|c| c.frac).max().unwrap_or(0);
    let min = t
        .entries
        .iter()
        .map(|c| crate::fixed::align(c.m, c.frac, frac))
        .min()
        .unwrap_or(0);
    let offset = Const { m: min, frac };
    Ok((lookup_with(dfg, a, t, offset, tag)?, offset.normalized()))
}

/// A lookup of `t` minus the constant `offset`.
fn lookup_with(
    dfg: &mut Dfg,
    a: ValueId,
    t: &LookupTable,
    offset: Const,
    tag: LayerTag,
) -> Result<ValueId> {
    let qv = quantize(dfg, a, &t.domain, tag)?;
    let ty = t.domain.ty;
    let iv = dfg.node(qv).iv;
    let frac = t.entries.iter().map(|c| c.frac).max().unwrap_or(0);
    let frac = frac.max(offset.frac);
    let value = |m: i128| -> i128 {
        let c = t.entries[(m - ty.min_mant()) as usize];
        crate::fixed::align(c.m, c.frac, frac) - crate::fixed::align(offset.m, offset.frac, frac)
    };
    let bits = ty.width;
    // The quantised value's range in domain mantissas (a superset when its grid is finer).
    let d = ty.frac - iv.frac;
    let (lo, hi) = if d >= 0 {
        (iv.lo << d, iv.hi << d)
    } else {
        (iv.lo >> -d, iv.hi >> -d)
    };
    let reach = |m: i128| lo <= m && m <= hi;
    let fill = value(lo.clamp(ty.min_mant(), ty.max_mant()));
    let mut entries = vec![fill; 1usize << bits];
    for m in ty.min_mant()..=ty.max_mant() {
        if reach(m) {
            entries[(m & ((1i128 << bits) - 1)) as usize] = value(m);
        }
    }
    let rom = normalized_rom(crate::ir::dfg::Rom {
        addr_frac: ty.frac,
        bits,
        entries,
        frac,
    });
    let tid = dfg.intern_table(rom);
    add_simplified(dfg, Op::Table { a: qv, t: tid }, tag)
}

/// The same ROM with common trailing zero bits of the entries moved into its binary point.
pub fn normalized_rom(mut r: crate::ir::dfg::Rom) -> crate::ir::dfg::Rom {
    let or = r.entries.iter().fold(0i128, |a, &e| a | e);
    if or == 0 {
        r.frac = 0;
        return r;
    }
    let tz = or.trailing_zeros();
    if tz > 0 {
        for e in r.entries.iter_mut() {
            *e >>= tz;
        }
        r.frac -= tz as i32;
    }
    r
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
        crate::passes::verify_dfg(&d, &cx()).unwrap();
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
