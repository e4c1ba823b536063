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
use crate::ir::layer::{
    concat_map, reduce_groups, transpose_map, Const, LayerGraph, LayerOp, ReduceKind,
};
use rayon::prelude::*;

/// Evaluate the layer IR on one input vector of mantissas (each at its input type's binary point).
/// Returns the outputs, in `out_data` order, as exact constants.
pub fn eval_layers(g: &LayerGraph, input: &[i128]) -> Vec<Const> {
    let mut vals: Vec<Option<Vec<Const>>> =
        vec![None; g.graph.capacity().0.max(g.graph.node_count())];
    let mut outs = Vec::new();
    let relu = |v: &Const| {
        if v.m < 0 {
            Const { m: 0, frac: v.frac }
        } else {
            *v
        }
    };
    let max = |a: &Const, b: &Const| {
        if a.add(&Const {
            m: -b.m,
            frac: b.frac,
        })
        .m >= 0
        {
            *a
        } else {
            *b
        }
    };
    for &id in &g.order {
        let layer = g.layer(id);
        let xs: Vec<&Vec<Const>> = layer
            .inputs
            .iter()
            .map(|i| vals[i.0.index()].as_ref().expect("topological order"))
            .collect();
        let shapes: Vec<&[u32]> = layer
            .inputs
            .iter()
            .map(|i| g.layer(*i).shape.as_slice())
            .collect();
        let x = xs.first().copied();
        let y: Vec<Const> = match &layer.op {
            LayerOp::Input { q } => input
                .iter()
                .zip(q)
                .map(|(&m, q)| Const { m, frac: q.ty.frac })
                .collect(),
            LayerOp::Dense {
                weights,
                bias,
                n_in,
                n_out,
            } => {
                let x = x.expect("Dense has an input");
                let mut y = Vec::with_capacity(layer.len() as usize);
                for row in x.chunks(*n_in as usize) {
                    let mut acc = bias.clone();
                    for w in weights {
                        let p = row[w.i as usize].mul(&w.w);
                        acc[w.j as usize] = acc[w.j as usize].add(&p);
                    }
                    debug_assert_eq!(acc.len(), *n_out as usize);
                    y.extend(acc);
                }
                y
            }
            LayerOp::LookupDense {
                tables, bias, n_in, ..
            } => {
                let x = x.expect("LookupDense has an input");
                let mut y = Vec::with_capacity(layer.len() as usize);
                for row in x.chunks(*n_in as usize) {
                    let mut acc = bias.clone();
                    for t in tables {
                        let v = &row[t.i as usize];
                        acc[t.j as usize] = acc[t.j as usize].add(&t.table.lookup(v.m, v.frac));
                    }
                    y.extend(acc);
                }
                y
            }
            LayerOp::BatchNorm { scale, shift } => x
                .expect("BatchNorm has an input")
                .iter()
                .zip(scale.iter().zip(shift))
                .map(|(v, (s, t))| v.mul(s).add(t))
                .collect(),
            LayerOp::Relu => x.expect("ReLU has an input").iter().map(relu).collect(),
            LayerOp::Quantize { q } => x
                .expect("Quantize has an input")
                .iter()
                .zip(q)
                .map(|(v, q)| Const {
                    m: q.apply(v.m, v.frac),
                    frac: q.ty.frac,
                })
                .collect(),
            LayerOp::Table { table } => x
                .expect("Table has an input")
                .iter()
                .map(|v| table.lookup(v.m, v.frac))
                .collect(),
            LayerOp::Add => {
                let mut acc = xs[0].clone();
                for other in &xs[1..] {
                    for (a, b) in acc.iter_mut().zip(other.iter()) {
                        *a = a.add(b);
                    }
                }
                acc
            }
            LayerOp::Mul => xs[0]
                .iter()
                .zip(xs[1].iter())
                .map(|(a, b)| a.mul(b))
                .collect(),
            LayerOp::Reduce { axis, kind } => {
                let x = x.expect("Reduce has an input");
                reduce_groups(shapes[0], *axis)
                    .iter()
                    .map(|grp| {
                        let mut it = grp.iter().map(|&k| x[k]);
                        let first = it.next().expect("axes have at least one element");
                        match kind {
                            ReduceKind::Max => it.fold(first, |a, b| max(&a, &b)),
                            ReduceKind::Sum => it.fold(first, |a, b| a.add(&b)),
                            ReduceKind::Mean { shift } => {
                                let s = it.fold(first, |a, b| a.add(&b));
                                Const {
                                    m: s.m,
                                    frac: s.frac + *shift as i32,
                                }
                            }
                        }
                    })
                    .collect()
            }
            LayerOp::Reshape => x.expect("Reshape has an input").clone(),
            LayerOp::Transpose { perm } => {
                let x = x.expect("Transpose has an input");
                transpose_map(shapes[0], perm)
                    .iter()
                    .map(|&k| x[k])
                    .collect()
            }
            LayerOp::Concat { axis } => concat_map(&shapes, *axis)
                .iter()
                .map(|&(n, k)| xs[n][k])
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

/// Evaluate the layer IR in `f64` with all quantisers skipped (inputs are taken as given). Tables are
/// functions of a quantised value by definition, so they still quantise their own input.
pub fn eval_float(g: &LayerGraph, input: &[f64]) -> Vec<f64> {
    let mut vals: Vec<Option<Vec<f64>>> =
        vec![None; g.graph.capacity().0.max(g.graph.node_count())];
    let mut outs = Vec::new();
    let lookup = |t: &crate::ir::layer::LookupTable, v: f64| {
        let f = t.domain.ty.frac;
        let m = (v * 2f64.powi(f)).floor() as i128;
        t.lookup(m, f).to_f64()
    };
    for &id in &g.order {
        let layer = g.layer(id);
        let xs: Vec<&Vec<f64>> = layer
            .inputs
            .iter()
            .map(|i| vals[i.0.index()].as_ref().expect("topological order"))
            .collect();
        let shapes: Vec<&[u32]> = layer
            .inputs
            .iter()
            .map(|i| g.layer(*i).shape.as_slice())
            .collect();
        let x = xs.first().copied();
        let y: Vec<f64> = match &layer.op {
            LayerOp::Input { .. } => input.to_vec(),
            LayerOp::Dense {
                weights,
                bias,
                n_in,
                ..
            } => {
                let mut y = Vec::new();
                for row in x.expect("Dense has an input").chunks(*n_in as usize) {
                    let mut acc: Vec<f64> = bias.iter().map(Const::to_f64).collect();
                    for w in weights {
                        acc[w.j as usize] += row[w.i as usize] * w.w.to_f64();
                    }
                    y.extend(acc);
                }
                y
            }
            LayerOp::LookupDense {
                tables, bias, n_in, ..
            } => {
                let mut y = Vec::new();
                for row in x.expect("LookupDense has an input").chunks(*n_in as usize) {
                    let mut acc: Vec<f64> = bias.iter().map(Const::to_f64).collect();
                    for t in tables {
                        acc[t.j as usize] += lookup(&t.table, row[t.i as usize]);
                    }
                    y.extend(acc);
                }
                y
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
            LayerOp::Table { table } => x
                .expect("Table has an input")
                .iter()
                .map(|&v| lookup(table, v))
                .collect(),
            LayerOp::Quantize { .. } | LayerOp::Reshape => x.expect("one input").clone(),
            LayerOp::Add => {
                let mut acc = xs[0].clone();
                for other in &xs[1..] {
                    for (a, b) in acc.iter_mut().zip(other.iter()) {
                        *a += b;
                    }
                }
                acc
            }
            LayerOp::Mul => xs[0].iter().zip(xs[1].iter()).map(|(a, b)| a * b).collect(),
            LayerOp::Reduce { axis, kind } => {
                let x = x.expect("Reduce has an input");
                reduce_groups(shapes[0], *axis)
                    .iter()
                    .map(|grp| {
                        let it = grp.iter().map(|&k| x[k]);
                        match kind {
                            ReduceKind::Max => it.fold(f64::NEG_INFINITY, f64::max),
                            ReduceKind::Sum => it.sum(),
                            ReduceKind::Mean { .. } => it.sum::<f64>() / grp.len() as f64,
                        }
                    })
                    .collect()
            }
            LayerOp::Transpose { perm } => {
                let x = x.expect("Transpose has an input");
                transpose_map(shapes[0], perm)
                    .iter()
                    .map(|&k| x[k])
                    .collect()
            }
            LayerOp::Concat { axis } => concat_map(&shapes, *axis)
                .iter()
                .map(|&(n, k)| xs[n][k])
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
    /// A ROM lookup: `addr = (a << up >> down) & mask`, result `roms[rom][addr]`.
    Table {
        dst: u32,
        a: u32,
        up: u32,
        down: u32,
        mask: i64,
        rom: u32,
    },
    Max {
        dst: u32,
        a: Operand,
        b: Operand,
    },
    Mul {
        dst: u32,
        a: u32,
        b: u32,
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
    roms: Vec<Vec<i128>>,
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
    fn shr(self, k: u32) -> Self;
    fn and(self, m: i64) -> Self;
    fn mul(self, o: Self) -> Self;
    fn max(self, o: Self) -> Self;
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
                Ord::max(self, 0)
            }
            #[inline(always)]
            fn shr(self, k: u32) -> Self {
                self >> k
            }
            #[inline(always)]
            fn and(self, m: i64) -> Self {
                self & (m as $t)
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                Ord::max(self, o)
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
                Op::Table { a, t } => {
                    let r = dfg.table(*t);
                    let d = r.addr_frac - frac(*a);
                    Instr::Table {
                        dst,
                        a: slot[a.index()],
                        up: d.max(0) as u32,
                        down: (-d).max(0) as u32,
                        mask: (1i64 << r.bits) - 1,
                        rom: t.0,
                    }
                }
                Op::Max { a, b } => {
                    let t = |v: crate::ir::dfg::ValueId| crate::ir::dfg::Term {
                        src: v,
                        shift: 0,
                        neg: false,
                    };
                    Instr::Max {
                        dst,
                        a: operand(&slot, &t(*a), rf),
                        b: operand(&slot, &t(*b), rf),
                    }
                }
                Op::Mul { a, b } => Instr::Mul {
                    dst,
                    a: slot[a.index()],
                    b: slot[b.index()],
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
            roms: dfg.tables.iter().map(|r| r.entries.clone()).collect(),
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
                Instr::Table {
                    dst,
                    a,
                    up,
                    down,
                    mask,
                    rom,
                } => {
                    let addr = s[a as usize].shl(up).shr(down).and(mask).to_i128();
                    (dst, W::from_i128(self.roms[rom as usize][addr as usize]))
                }
                Instr::Max { dst, a, b } => (dst, get(a).max(get(b))),
                Instr::Mul { dst, a, b } => (dst, s[a as usize].mul(s[b as usize])),
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
        Op::Relu { a } => Ord::max(value(*a), 0),
        Op::Table { a, t } => {
            let r = dfg.table(*t);
            align(
                r.entries[r.address(value(*a), dfg.node(*a).iv.frac)],
                r.frac,
                frac,
            )
        }
        Op::Max { a, b } => {
            let x = align(value(*a), dfg.node(*a).iv.frac, frac);
            let y = align(value(*b), dfg.node(*b).iv.frac, frac);
            Ord::max(x, y)
        }
        Op::Mul { a, b } => align(
            value(*a) * value(*b),
            dfg.node(*a).iv.frac + dfg.node(*b).iv.frac,
            frac,
        ),
        Op::Quant { a, q } => q.apply(value(*a), dfg.node(*a).iv.frac),
        Op::Reg { a } | Op::Output { a, .. } => value(*a),
    }
}
