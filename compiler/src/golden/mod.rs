//! The golden model: bit-accurate evaluation of both IRs, plus a float evaluation for comparison.
//!
//! * [`eval_layers`] evaluates the layer IR straight from model.json's definitions (the specification);
//! * [`Program`] evaluates the dataflow IR (what the hardware computes), compiled once into a flat
//!   instruction list so a million vectors take seconds; batches run in parallel with rayon;
//! * [`eval_float`] evaluates the layer IR in `f64` with every quantiser skipped (what the network would
//!   compute without quantisation), for comparison only.
//!
//! All rounding and overflow goes through `crate::fixed`. The two exact evaluators share no code beyond
//! it, so each checks the other (the lowering tests compare them). Nothing here changes an IR.

use crate::fixed::{align, Quantizer};
use crate::ir::dfg::{Dfg, Op};
use crate::ir::layer::{Const, LayerGraph, LayerOp};
use rayon::prelude::*;

/// Evaluate the layer IR on one input vector of mantissas (each at its input type's binary point).
/// Returns the outputs, in `out_data` order, as exact constants.
pub fn eval_layers(g: &LayerGraph, input: &[i128]) -> Vec<Const> {
    let mut vals: Vec<Option<Vec<Const>>> =
        vec![None; g.graph.capacity().0.max(g.graph.node_count())];
    let mut outs = Vec::new();
    for &id in &g.order {
        let layer = g.layer(id);
        let x = layer
            .inputs
            .first()
            .map(|i| vals[i.0.index()].as_ref().expect("topological order"));
        let y: Vec<Const> = match &layer.op {
            LayerOp::Input { q } => input
                .iter()
                .zip(q)
                .map(|(&m, q)| Const { m, frac: q.ty.frac })
                .collect(),
            LayerOp::Dense { weights, bias, .. } => {
                let x = x.expect("Dense has an input");
                let mut acc = bias.clone();
                for w in weights {
                    let p = x[w.i as usize].mul(&w.w);
                    acc[w.j as usize] = acc[w.j as usize].add(&p);
                }
                acc
            }
            LayerOp::BatchNorm { scale, shift } => x
                .expect("BatchNorm has an input")
                .iter()
                .zip(scale.iter().zip(shift))
                .map(|(v, (s, t))| v.mul(s).add(t))
                .collect(),
            LayerOp::Relu => x
                .expect("ReLU has an input")
                .iter()
                .map(|v| {
                    if v.m < 0 {
                        Const { m: 0, frac: v.frac }
                    } else {
                        *v
                    }
                })
                .collect(),
            LayerOp::Quantize { q } => x
                .expect("Quantize has an input")
                .iter()
                .zip(q)
                .map(|(v, q)| Const {
                    m: q.apply(v.m, v.frac),
                    frac: q.ty.frac,
                })
                .collect(),
            LayerOp::Output => {
                let v = x.expect("Output has an input").clone();
                outs.extend(v.iter().copied());
                v
            }
        };
        vals[id.0.index()] = Some(y);
    }
    outs
}

/// Evaluate the layer IR in `f64` with all quantisers skipped (inputs are taken as given).
pub fn eval_float(g: &LayerGraph, input: &[f64]) -> Vec<f64> {
    let mut vals: Vec<Option<Vec<f64>>> =
        vec![None; g.graph.capacity().0.max(g.graph.node_count())];
    let mut outs = Vec::new();
    for &id in &g.order {
        let layer = g.layer(id);
        let x = layer
            .inputs
            .first()
            .map(|i| vals[i.0.index()].as_ref().expect("topological order"));
        let y: Vec<f64> = match &layer.op {
            LayerOp::Input { .. } => input.to_vec(),
            LayerOp::Dense { weights, bias, .. } => {
                let x = x.expect("Dense has an input");
                let mut acc: Vec<f64> = bias.iter().map(Const::to_f64).collect();
                for w in weights {
                    acc[w.j as usize] += x[w.i as usize] * w.w.to_f64();
                }
                acc
            }
            LayerOp::BatchNorm { scale, shift } => x
                .expect("BatchNorm has an input")
                .iter()
                .zip(scale.iter().zip(shift))
                .map(|(v, (s, t))| v * s.to_f64() + t.to_f64())
                .collect(),
            LayerOp::Relu => x
                .expect("ReLU has an input")
                .iter()
                .map(|v| v.max(0.0))
                .collect(),
            LayerOp::Quantize { .. } => x.expect("Quantize has an input").clone(),
            LayerOp::Output => {
                let v = x.expect("Output has an input").clone();
                outs.extend(v.iter().copied());
                v
            }
        };
        vals[id.0.index()] = Some(y);
    }
    outs
}

/// An adder operand: `±slot << k`, the shift non-negative (alignment to the result's binary point).
#[derive(Clone, Copy, Debug)]
struct Operand {
    slot: u32,
    k: u32,
    neg: bool,
}

/// One instruction of a compiled dataflow program; operands and results are slots.
#[derive(Clone, Debug)]
enum Instr {
    Input {
        dst: u32,
        port: u32,
    },
    Const {
        dst: u32,
        value: i128,
    },
    /// `a + b` of two operands.
    Add {
        dst: u32,
        a: Operand,
        b: Operand,
    },
    /// `a + b + c` (a ternary adder).
    Add3 {
        dst: u32,
        a: Operand,
        b: Operand,
        c: Operand,
    },
    Scale {
        dst: u32,
        a: u32,
        k: u32,
        neg: bool,
    },
    Relu {
        dst: u32,
        a: u32,
    },
    /// Quantisers live in a side table so instructions stay small (cache-friendly).
    Quant {
        dst: u32,
        a: u32,
        src_frac: i32,
        q: u32,
    },
}

/// A dataflow graph compiled for fast exact evaluation: registers, outputs and free rewirings share
/// their source's slot (they compute nothing), and a design whose values all fit 62 bits runs on `i64`.
#[derive(Clone, Debug)]
pub struct Program {
    code: Vec<Instr>,
    quantizers: Vec<Quantizer>,
    slots: usize,
    outputs: Vec<u32>,
    /// Binary point of every output, in port order.
    pub output_fracs: Vec<i32>,
    pub n_inputs: usize,
    narrow: bool,
}

/// Arithmetic the evaluator runs on (`i64` when every value fits, `i128` otherwise).
trait Word: Copy + Default + Send + Sync {
    fn from_i128(v: i128) -> Self;
    fn to_i128(self) -> i128;
    fn shl(self, k: u32) -> Self;
    fn neg(self) -> Self;
    fn add(self, o: Self) -> Self;
    fn relu(self) -> Self;
}

macro_rules! word {
    ($t:ty) => {
        impl Word for $t {
            #[inline(always)]
            fn from_i128(v: i128) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline(always)]
            fn shl(self, k: u32) -> Self {
                self << k
            }
            #[inline(always)]
            fn neg(self) -> Self {
                -self
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn relu(self) -> Self {
                self.max(0)
            }
        }
    };
}
word!(i64);
word!(i128);

impl Program {
    /// Compile a dataflow graph (any stage of the pipeline).
    pub fn new(dfg: &Dfg) -> Program {
        let frac = |v: crate::ir::dfg::ValueId| dfg.node(v).iv.frac;
        // `rf`: the result's binary point, to which the operand is aligned.
        let operand = |slot: &[u32], t: &crate::ir::dfg::Term, rf: i32| Operand {
            slot: slot[t.src.index()],
            k: (rf - (dfg.node(t.src).iv.frac - t.shift)) as u32,
            neg: t.neg,
        };
        let mut slot = vec![0u32; dfg.graph.node_count()];
        let mut code = Vec::new();
        let mut quantizers = Vec::new();
        let mut slots = 0u32;
        let mut narrow = true;
        for v in dfg.ids() {
            let n = dfg.node(v);
            let rf = n.iv.frac;
            narrow &= n.iv.fixed_type().width <= 62;
            let dst = slots;
            let ins = match &n.op {
                Op::Input { port } => Instr::Input { dst, port: *port },
                Op::Const { value, frac: f } => Instr::Const {
                    dst,
                    value: align(*value, *f, rf),
                },
                Op::Add { a, b } => Instr::Add {
                    dst,
                    a: operand(&slot, a, rf),
                    b: operand(&slot, b, rf),
                },
                Op::Add3 { a, b, c } => Instr::Add3 {
                    dst,
                    a: operand(&slot, a, rf),
                    b: operand(&slot, b, rf),
                    c: operand(&slot, c, rf),
                },
                Op::Scale { a } => {
                    let k = (rf - (frac(a.src) - a.shift)) as u32;
                    if !a.neg && k == 0 {
                        slot[v.index()] = slot[a.src.index()];
                        continue;
                    }
                    Instr::Scale {
                        dst,
                        a: slot[a.src.index()],
                        k,
                        neg: a.neg,
                    }
                }
                Op::Relu { a } => Instr::Relu {
                    dst,
                    a: slot[a.index()],
                },
                Op::Quant { a, q } => {
                    quantizers.push(*q);
                    Instr::Quant {
                        dst,
                        a: slot[a.index()],
                        src_frac: frac(*a),
                        q: quantizers.len() as u32 - 1,
                    }
                }
                Op::Reg { a } | Op::Output { a, .. } => {
                    slot[v.index()] = slot[a.index()];
                    continue;
                }
            };
            slot[v.index()] = dst;
            slots += 1;
            code.push(ins);
        }
        let outs = dfg.outputs();
        Program {
            code,
            quantizers,
            slots: slots as usize,
            output_fracs: outs.iter().map(|o| dfg.node(*o).iv.frac).collect(),
            outputs: outs.iter().map(|o| slot[o.index()]).collect(),
            n_inputs: dfg.inputs.len(),
            narrow,
        }
    }

    /// Evaluate one input vector (mantissas at the input types' binary points); returns the output
    /// mantissas (at `output_fracs`).
    pub fn eval(&self, input: &[i128]) -> Vec<i128> {
        if self.narrow {
            self.run::<i64>(input, &mut vec![0; self.slots])
        } else {
            self.run::<i128>(input, &mut vec![0; self.slots])
        }
    }

    fn run<W: Word>(&self, input: &[i128], s: &mut [W]) -> Vec<i128> {
        for ins in &self.code {
            let sgn = |neg: bool, v: W| if neg { v.neg() } else { v };
            let get = |o: Operand| sgn(o.neg, s[o.slot as usize].shl(o.k));
            let (dst, val) = match *ins {
                Instr::Input { dst, port } => (dst, W::from_i128(input[port as usize])),
                Instr::Const { dst, value } => (dst, W::from_i128(value)),
                Instr::Add { dst, a, b } => (dst, get(a).add(get(b))),
                Instr::Add3 { dst, a, b, c } => (dst, get(a).add(get(b)).add(get(c))),
                Instr::Scale { dst, a, k, neg } => (dst, sgn(neg, s[a as usize].shl(k))),
                Instr::Relu { dst, a } => (dst, s[a as usize].relu()),
                Instr::Quant {
                    dst,
                    a,
                    src_frac,
                    q,
                } => (
                    dst,
                    W::from_i128(
                        self.quantizers[q as usize].apply(s[a as usize].to_i128(), src_frac),
                    ),
                ),
            };
            s[dst as usize] = val;
        }
        self.outputs
            .iter()
            .map(|&o| s[o as usize].to_i128())
            .collect()
    }

    /// Evaluate many vectors in parallel (rayon), keeping their order.
    pub fn eval_batch(&self, inputs: &[Vec<i128>]) -> Vec<Vec<i128>> {
        inputs
            .par_chunks(256)
            .flat_map_iter(|chunk| {
                let mut s64 = vec![0i64; self.slots];
                let mut s128 = vec![0i128; self.slots];
                chunk
                    .iter()
                    .map(|x| {
                        if self.narrow {
                            self.run(x, &mut s64)
                        } else {
                            self.run(x, &mut s128)
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The value of one op given its operands' values (mantissas at their nodes' binary points); the
/// result is at the op's own binary point `frac`. This is the reference rule for a single node; constant
/// folding uses it, and [`Program`] (precompiled shifts) must agree with it.
pub fn eval_op(
    dfg: &Dfg,
    op: &Op,
    frac: i32,
    value: impl Fn(crate::ir::dfg::ValueId) -> i128,
) -> i128 {
    let term = |t: &crate::ir::dfg::Term| {
        let f = dfg.node(t.src).iv.frac - t.shift;
        let v = align(value(t.src), f, frac);
        if t.neg {
            -v
        } else {
            v
        }
    };
    match op {
        Op::Input { .. } => unreachable!("inputs have no constant value"),
        Op::Const { value, frac: f } => align(*value, *f, frac),
        Op::Add { a, b } => term(a) + term(b),
        Op::Add3 { a, b, c } => term(a) + term(b) + term(c),
        Op::Scale { a } => term(a),
        Op::Relu { a } => value(*a).max(0),
        Op::Quant { a, q } => q.apply(value(*a), dfg.node(*a).iv.frac),
        Op::Reg { a } | Op::Output { a, .. } => value(*a),
    }
}
