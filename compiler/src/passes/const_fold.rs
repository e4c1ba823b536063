//! `const-fold`: evaluates operations on constants and removes operations that provably do nothing:
//! a ReLU of a value that is never negative, a quantiser that neither rounds nor overflows on its input
//! range, a zero term in an addition, a positive unshifted scale. Scales are absorbed into the terms that
//! use them (a negation folded into a subtraction costs no adder).
//!
//! [`add_simplified`] is the one rewriting constructor; the lowering builds through it too, so a pruned
//! neuron's constant flows through the next layer's bias without ever becoming hardware. Every rule keeps
//! the exact value (the pass test compares golden models before and after).

use super::{DfgPass, PassContext};
use crate::diag::{Diagnostic, Result};
use crate::fixed::MAX_WIDTH;
use crate::golden::eval_op;
use crate::ir::dfg::{op_interval, Dfg, LayerTag, Op, Term, TooWide, ValueId};

pub struct ConstFold;

impl DfgPass for ConstFold {
    fn name(&self) -> &'static str {
        "const-fold"
    }
    fn doc(&self) -> &'static str {
        "fold constants and remove operations that cannot change their input"
    }
    fn run(&self, g: &mut Dfg, _cx: &PassContext) -> Result<()> {
        let mut out = g.empty_like();
        let mut map: Vec<ValueId> = Vec::with_capacity(g.graph.node_count());
        for v in g.ids() {
            let n = g.node(v);
            let op = n.op.map_operands(|s| map[s.index()]);
            let id = add_simplified(&mut out, op, n.layer)?;
            map.push(id);
        }
        *g = out;
        Ok(())
    }
}

/// The user-facing error for a value wider than the exact arithmetic supports.
pub fn too_wide(dfg: &Dfg, layer: LayerTag, e: TooWide) -> Diagnostic {
    let info = dfg.layers.get(layer.0 as usize);
    let name = info.map(|l| l.name.as_str()).unwrap_or("?");
    let d = Diagnostic::error(format!(
        "layer {name:?} needs intermediate values of {} bits or more; at most {MAX_WIDTH} bits are supported",
        e.bits
    ))
    .help("narrow the input or weight types, or quantise between layers");
    match info {
        Some(l) => d.at(l.path.clone()),
        None => d,
    }
}

fn is_const(g: &Dfg, v: ValueId) -> bool {
    matches!(g.node(v).op, Op::Const { .. })
}

fn const_zero(g: &Dfg, v: ValueId) -> bool {
    matches!(g.node(v).op, Op::Const { value: 0, .. })
}

/// A term with a scale underneath it absorbed: `±(±x·2^s)·2^t = ±x·2^(s+t)`.
fn absorb(g: &Dfg, t: Term) -> Term {
    match g.node(t.src).op {
        Op::Scale { a } => Term {
            src: a.src,
            shift: a.shift + t.shift,
            neg: a.neg != t.neg,
        },
        _ => t,
    }
}

/// Add `op` to `g`, simplified. Returns the value that computes it (possibly an existing one).
pub fn add_simplified(g: &mut Dfg, op: Op, layer: LayerTag) -> Result<ValueId> {
    let op = match op {
        Op::Add { a, b } => Op::Add {
            a: absorb(g, a),
            b: absorb(g, b),
        },
        Op::Add3 { a, b, c } => Op::Add3 {
            a: absorb(g, a),
            b: absorb(g, b),
            c: absorb(g, c),
        },
        Op::Scale { a } => Op::Scale { a: absorb(g, a) },
        other => other,
    };
    let operands = op.operands();
    let foldable = !operands.is_empty()
        && operands.iter().all(|v| is_const(g, *v))
        && !matches!(op, Op::Output { .. } | Op::Reg { .. });
    let iv = op_interval(&op, |v| g.node(v).iv, &g.inputs, &g.tables)
        .map_err(|e| too_wide(g, layer, e))?;
    if foldable {
        let value = eval_op(g, &op, iv.frac, |v| match g.node(v).op {
            Op::Const { value, frac } => crate::fixed::align(value, frac, g.node(v).iv.frac),
            _ => unreachable!("checked: all operands are constants"),
        });
        return g
            .add(
                Op::Const {
                    value,
                    frac: iv.frac,
                },
                layer,
            )
            .map_err(|e| too_wide(g, layer, e));
    }
    let simplified = match &op {
        Op::Relu { a } => {
            let i = g.node(*a).iv;
            if i.lo >= 0 {
                return Ok(*a);
            }
            if i.hi <= 0 {
                Some(Op::Const { value: 0, frac: 0 })
            } else {
                None
            }
        }
        Op::Quant { a, q } => {
            let src = g.node(*a).iv;
            let no_rounding = q.round_plan(src.frac).drop == 0;
            let fits = q.ty.contains_interval(src);
            if no_rounding && fits {
                return Ok(*a);
            }
            None
        }
        Op::Add { a, b } => {
            if const_zero(g, a.src) {
                Some(Op::Scale { a: *b })
            } else if const_zero(g, b.src) {
                Some(Op::Scale { a: *a })
            } else {
                None
            }
        }
        Op::Add3 { a, b, c } => {
            let terms = [*a, *b, *c];
            let consts: Vec<usize> = (0..3).filter(|&i| is_const(g, terms[i].src)).collect();
            if let Some(&z) = consts.iter().find(|&&i| const_zero(g, terms[i].src)) {
                // A zero operand: a binary adder of the other two.
                let rest: Vec<Term> = (0..3).filter(|&i| i != z).map(|i| terms[i]).collect();
                Some(Op::Add {
                    a: rest[0],
                    b: rest[1],
                })
            } else if consts.len() == 2 {
                // Two constants: one constant, then a binary adder.
                let k = add_simplified(
                    g,
                    Op::Add {
                        a: terms[consts[0]],
                        b: terms[consts[1]],
                    },
                    layer,
                )?;
                let x = (0..3).find(|i| !consts.contains(i)).unwrap_or(0);
                Some(Op::Add {
                    a: terms[x],
                    b: Term {
                        src: k,
                        shift: 0,
                        neg: false,
                    },
                })
            } else if a.neg && b.neg && c.neg {
                // Three negations: the negated sum of the three (the ternary adder adds at most +2).
                let flip = |t: &Term| Term { neg: false, ..*t };
                let s = add_simplified(
                    g,
                    Op::Add3 {
                        a: flip(a),
                        b: flip(b),
                        c: flip(c),
                    },
                    layer,
                )?;
                Some(Op::Scale {
                    a: Term {
                        src: s,
                        shift: 0,
                        neg: true,
                    },
                })
            } else {
                None
            }
        }
        Op::Scale { a } => {
            if !a.neg && a.shift == 0 {
                return Ok(a.src);
            }
            if const_zero(g, a.src) {
                Some(Op::Const { value: 0, frac: 0 })
            } else {
                None
            }
        }
        // A lookup whose reachable entries are all equal is that constant.
        Op::Table { .. } if iv.lo == iv.hi => Some(Op::Const {
            value: iv.lo,
            frac: iv.frac,
        }),
        Op::Table { .. } => None,
        Op::Max { a, b } => {
            let (x, y) = (g.node(*a).iv, g.node(*b).iv);
            let f = x.frac.max(y.frac);
            let (xl, xh) = (
                crate::fixed::align(x.lo, x.frac, f),
                crate::fixed::align(x.hi, x.frac, f),
            );
            let (yl, yh) = (
                crate::fixed::align(y.lo, y.frac, f),
                crate::fixed::align(y.hi, y.frac, f),
            );
            if xl >= yh && x.frac == f {
                return Ok(*a);
            }
            if yl >= xh && y.frac == f {
                return Ok(*b);
            }
            None
        }
        Op::Mul { a, b } => {
            if const_zero(g, *a) || const_zero(g, *b) {
                Some(Op::Const { value: 0, frac: 0 })
            } else {
                None
            }
        }
        Op::Input { .. } | Op::Const { .. } | Op::Reg { .. } | Op::Output { .. } => None,
    };
    match simplified {
        Some(op) => add_simplified(g, op, layer),
        None => g.add(op, layer).map_err(|e| too_wide(g, layer, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn a_pruned_neuron_folds_into_the_next_bias() {
        // Neuron 0 of d1 has only zero weights: its value is the bias 0.75, its ReLU and quantiser fold,
        // and d2 sees a constant, which joins d2's bias. No node of neuron 0 survives.
        let g = parse(
            r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[2],"type":"fixed<8,3>"},
          {"name":"d1","op":"Dense","inputs":["x"],"weight":{"shape":[2,2],"type":"fixed<5,1>","data":[0,3,0,-7]},
           "bias":{"shape":[2],"type":"fixed<4,1>","data":[6,1]}},
          {"name":"r","op":"ReLU","inputs":["d1"]},
          {"name":"q","op":"Quantize","inputs":["r"],"type":"ufixed<4,1,RND,SAT>"},
          {"name":"d2","op":"Dense","inputs":["q"],"weight":{"shape":[2,1],"type":"fixed<5,1>","data":[5,3]}},
          {"name":"y","op":"Output","inputs":["d2"]}]}"#,
        );
        let mut d = crate::passes::lower_cmvm::lower(&g, &cx()).unwrap();
        ConstFold.run(&mut d, &cx()).unwrap();
        crate::passes::dead_code::DeadCode
            .run(&mut d, &cx())
            .unwrap();
        crate::passes::verify_dfg(&d, &cx()).unwrap();
        assert_dfg_matches(&g, &d, 1000);
        assert_eq!(d.count("relu"), 1, "only neuron 1 keeps its ReLU:\n{d}");
        assert_eq!(
            d.count("const"),
            2,
            "d1's bias of neuron 1 and d2's folded bias:\n{d}"
        );
    }

    #[test]
    fn a_relu_of_a_non_negative_value_disappears() {
        let g = parse(
            r#"{"format":"fastml-model","version":1,"nodes":[
          {"name":"x","op":"Input","shape":[2],"type":"ufixed<8,3>"},
          {"name":"r","op":"ReLU","inputs":["x"]},
          {"name":"q","op":"Quantize","inputs":["r"],"type":"ufixed<10,3,RND,SAT>"},
          {"name":"y","op":"Output","inputs":["q"]}]}"#,
        );
        let d = crate::passes::lower_cmvm::lower(&g, &cx()).unwrap();
        // ReLU of an unsigned input and a quantiser that neither rounds nor overflows: plain wires.
        assert_eq!(d.count("relu") + d.count("quant"), 0, "{d}");
        assert_dfg_matches(&g, &d, 300);
    }
}
