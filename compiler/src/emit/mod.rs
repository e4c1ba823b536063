//! The Verilog emitter: reads a scheduled, registered, named dataflow graph and builds the top module
//! (as an [`ast::Module`]); it never changes the IR. Every value is a plain bit vector of its exact
//! minimal width; signedness is the compiler's knowledge (from the interval), not Verilog's, so no
//! `$signed` subtleties arise: operands are explicitly sign- or zero-extended, aligned and cut to the
//! result width, and the arithmetic is exact modulo 2^W, which is exact because the interval fits W.
//!
//! Rounding and overflow are printed from `crate::fixed`'s [`RoundPlan`] and the quantiser's constants,
//! the same objects the golden model executes. Port conventions are in `docs/ARCHITECTURE.md`.

pub mod ast;

use crate::fixed::{FixedType, Interval, Overflow, RoundBit};
use crate::ir::dfg::{Dfg, Op, Term, ValueId};
use ast::{Expr, Item, Module, Port};
use std::collections::HashMap;

/// The hand-written valid pipeline (from `rtl-lib/`), written beside the top module.
pub const VALID_PIPE_NAME: &str = "fastml_valid_pipe";
pub const VALID_PIPE_SOURCE: &str = include_str!("../../../rtl-lib/fastml_valid_pipe.v");
/// The ternary adder (LUT6_2 + CARRY8 primitives of UltraScale+), written when the design uses one.
pub const ADD3_NAME: &str = "fastml_add3";
pub const ADD3_SOURCE: &str = include_str!("../../../rtl-lib/fastml_add3.v");
/// Two ROM columns in one LUT6_2 (`pack-luts`), written when the design pairs any.
pub const LUT2_NAME: &str = "fastml_lut2";
pub const LUT2_SOURCE: &str = include_str!("../../../rtl-lib/fastml_lut2.v");
/// Its fast simulation model (same module name and parameter, plain INIT indexing).
pub const LUT2_MODEL_FILE: &str = "sim/fastml_lut2_model.v";
/// Behavioural models of the two primitives for simulators without the vendor library (Verilator);
/// written under `sim/` so a synthesis flow that reads `rtl/*.v` never picks them up.
/// `sim/fastml_add3_model.v` is a fast model of the whole ternary adder (same module name, same
/// parameters), used by co-simulation unless the primitive netlist is asked for.
pub const SIM_MODELS: [(&str, &str); 3] = [
    (
        "sim/LUT6_2.v",
        include_str!("../../../rtl-lib/sim/LUT6_2.v"),
    ),
    (
        "sim/CARRY8.v",
        include_str!("../../../rtl-lib/sim/CARRY8.v"),
    ),
    (
        ADD3_MODEL_FILE,
        include_str!("../../../rtl-lib/sim/fastml_add3_model.v"),
    ),
];
pub const ADD3_MODEL_FILE: &str = "sim/fastml_add3_model.v";

/// The files a simulator reads for `files` (as emitted): the synthesis files, plus either the
/// primitive models (`netlist`: the exact netlist synthesis sees) or, instead of `fastml_add3.v`, its
/// fast model.
pub fn simulation_files(files: &[VerilogFile], netlist: bool) -> Vec<&VerilogFile> {
    files
        .iter()
        .filter(|f| {
            let model = f.file_name == ADD3_MODEL_FILE || f.file_name == LUT2_MODEL_FILE;
            let primitive = f.file_name.starts_with("sim/") && !model;
            let modelled =
                f.file_name == format!("{ADD3_NAME}.v") || f.file_name == format!("{LUT2_NAME}.v");
            if netlist {
                !model
            } else {
                !primitive && !modelled
            }
        })
        .collect()
}

/// The INIT of the ternary adder's LUT6_2 for the given negations: inputs I0..I2 are the three
/// operand bits (inverted where negated), I3 the carry-save bit from the position below, I4 = 0 and
/// I5 = 1, so O6 (upper half) is the carry chain's propagate `a ^ b ^ c ^ y` and O5 (lower half) the
/// majority `maj(a, b, c)`, the next position's carry-save bit. See `rtl-lib/fastml_add3.v`.
pub fn add3_init(neg: [bool; 3]) -> u64 {
    let mut init = 0u64;
    for k in 0..32u64 {
        let x = (k & 1) ^ neg[0] as u64;
        let y = ((k >> 1) & 1) ^ neg[1] as u64;
        let z = ((k >> 2) & 1) ^ neg[2] as u64;
        let cy = (k >> 3) & 1;
        init |= ((x & y) | (x & z) | (y & z)) << k;
        init |= (x ^ y ^ z ^ cy) << (32 + k);
    }
    init
}

/// One emitted file.
#[derive(Clone, Debug, PartialEq)]
pub struct VerilogFile {
    /// Relative to the `rtl/` folder; simulation-only models live in its `sim/` subfolder.
    pub file_name: String,
    pub text: String,
}

impl VerilogFile {
    /// Write the file under `rtl`, creating its folder (for `sim/`).
    pub fn write_under(&self, rtl: &std::path::Path) -> std::io::Result<()> {
        let path = rtl.join(&self.file_name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &self.text)
    }
}

/// Widths of the packed ports and where each element sits.
#[derive(Clone, Debug, PartialEq)]
pub struct PortLayout {
    pub in_width: u32,
    pub out_width: u32,
    /// (offset, type) of each input element.
    pub inputs: Vec<(u32, FixedType)>,
    /// (offset, type) of each output element.
    pub outputs: Vec<(u32, FixedType)>,
}

/// The packed layout of `in_data` and `out_data`: element 0 in the low bits, each element at its own
/// type's width (inputs: the declared type; outputs: the exact type of the value).
pub fn port_layout(g: &Dfg) -> PortLayout {
    let mut off = 0;
    let inputs = g
        .inputs
        .iter()
        .map(|t| {
            let o = off;
            off += t.width;
            (o, *t)
        })
        .collect();
    let in_width = off;
    off = 0;
    let outputs = g
        .outputs()
        .into_iter()
        .map(|v| {
            let t = g.node(v).iv.fixed_type();
            let o = off;
            off += t.width;
            (o, t)
        })
        .collect();
    PortLayout {
        in_width: in_width.max(1),
        out_width: off.max(1),
        inputs,
        outputs,
    }
}

/// A view of a signal's bits: value = `signal[width-1:offset]` read as signed or unsigned; a negative
/// offset means the value is shifted left by `-offset` (zeros below).
#[derive(Clone, Debug)]
struct View {
    name: String,
    width: u32,
    signed: bool,
    offset: i32,
}

struct Emitter<'a> {
    g: &'a Dfg,
    items: Vec<Item>,
    decls: Vec<(bool, String, u32)>,
    /// Bits read of each declared signal (to place lint waivers exactly where bits are dropped).
    used: HashMap<String, Vec<bool>>,
    regs: Vec<(String, Expr)>,
    /// ROM columns already declared (`rom{t}_b{k}`), shared by every lookup of the same ROM.
    params: std::collections::HashSet<String>,
    /// `pack-luts`' pairing: (table node, bit) -> (LUT6_2, whether it is the O6 output).
    packed_of: HashMap<(ValueId, u32), (usize, bool)>,
    /// Packed LUTs already instantiated.
    luts_done: std::collections::HashSet<usize>,
    /// Address wires by (operand, binary point, width) of their slice.
    addrs: HashMap<(ValueId, i32, u32), String>,
}

fn width_of(iv: &Interval) -> u32 {
    iv.fixed_type().width
}

impl<'a> Emitter<'a> {
    fn name(&self, v: ValueId) -> String {
        self.g
            .node(v)
            .name
            .clone()
            .expect("legalize-names ran before emission")
    }

    fn mark(&mut self, name: &str, lo: u32, hi: u32) {
        if let Some(bits) = self.used.get_mut(name) {
            for b in lo..=hi.min(bits.len() as u32 - 1) {
                bits[b as usize] = true;
            }
        }
    }

    fn view(&self, v: ValueId) -> View {
        let n = self.g.node(v);
        View {
            name: self.name(v),
            width: width_of(&n.iv),
            signed: n.iv.lo < 0,
            offset: 0,
        }
    }

    /// `(value(view) << lshift) mod 2^w` as an exactly `w`-bit expression.
    fn fit(&mut self, src: &View, w: u32, lshift: i32) -> Expr {
        // Effective offset into the signal after the extra shift.
        let off = src.offset - lshift;
        let mut parts: Vec<Expr> = Vec::new();
        let zeros_below = if off < 0 { (-off) as u32 } else { 0 };
        if zeros_below >= w {
            return Expr::Const { width: w, bits: 0 };
        }
        let need = w - zeros_below; // bits taken from the signal, starting at bit max(off, 0)
        let start = off.max(0) as u32;
        let avail = src.width.saturating_sub(start); // real bits from `start` up
        let take = need.min(avail);
        let ext = need - take;
        if ext > 0 {
            let fill = if src.signed {
                self.mark(&src.name, src.width - 1, src.width - 1);
                Expr::Bit(src.name.clone(), src.width - 1)
            } else {
                Expr::Const { width: 1, bits: 0 }
            };
            parts.push(if ext == 1 {
                fill
            } else {
                Expr::Repeat(ext, fill.boxed())
            });
        }
        if take > 0 {
            self.mark(&src.name, start, start + take - 1);
            parts.push(if start == 0 && take == src.width {
                Expr::Ref(src.name.clone())
            } else if take == 1 {
                Expr::Bit(src.name.clone(), start)
            } else {
                Expr::Slice(src.name.clone(), start + take - 1, start)
            });
        }
        if zeros_below > 0 {
            parts.push(Expr::Const {
                width: zeros_below,
                bits: 0,
            });
        }
        if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Expr::Concat(parts)
        }
    }

    fn konst(w: u32, value: i128) -> Expr {
        Expr::Const {
            width: w,
            bits: value as u128,
        }
    }

    /// A term `±src·2^shift` aligned to binary point `frac`, as a `w`-bit expression (positive part
    /// only; the caller applies the sign).
    fn term(&mut self, t: &Term, w: u32, frac: i32) -> Expr {
        let src = self.view(t.src);
        let src_frac = self.g.node(t.src).iv.frac - t.shift;
        self.fit(&src, w, frac - src_frac)
    }

    fn declare(&mut self, name: &str, w: u32, reg: bool) {
        self.decls.push((reg, name.to_string(), w));
        self.used.insert(name.to_string(), vec![false; w as usize]);
    }

    fn assign(&mut self, lhs: &str, rhs: Expr) {
        self.items.push(Item::Assign {
            lhs: lhs.to_string(),
            rhs,
        });
    }

    fn node(&mut self, v: ValueId) {
        let n = self.g.node(v).clone();
        let name = self.name(v);
        let w = width_of(&n.iv);
        let frac = n.iv.frac;
        match &n.op {
            Op::Input { port } => {
                let (off, t) = port_layout_input(self.g, *port);
                self.declare(&name, w, false);
                debug_assert_eq!(t.width, w);
                // The element's bits are in_data[off + w - 1 : off]; nothing above them is read.
                let total = self.used["in_data"].len() as u32;
                let e = self.fit(
                    &View {
                        name: "in_data".into(),
                        width: total,
                        signed: false,
                        offset: off as i32,
                    },
                    w,
                    0,
                );
                self.assign(&name, e);
            }
            Op::Const { value, frac: f } => {
                self.declare(&name, w, false);
                let m = crate::fixed::align(*value, *f, frac);
                self.assign(&name, Self::konst(w, m));
            }
            Op::Add { a, b } => {
                self.declare(&name, w, false);
                let ea = self.term(a, w, frac);
                let eb = self.term(b, w, frac);
                let e = match (a.neg, b.neg) {
                    (false, false) => Expr::Add(ea.boxed(), eb.boxed()),
                    (false, true) => Expr::Sub(ea.boxed(), eb.boxed()),
                    (true, false) => Expr::Sub(eb.boxed(), ea.boxed()),
                    (true, true) => Expr::Sub(
                        Expr::Sub(Self::konst(w, 0).boxed(), ea.boxed()).boxed(),
                        eb.boxed(),
                    ),
                };
                self.assign(&name, e);
            }
            Op::Add3 { a, b, c } => self.add3(&name, w, frac, [*a, *b, *c]),
            Op::Scale { a } => {
                self.declare(&name, w, false);
                let ea = self.term(a, w, frac);
                let e = if a.neg {
                    Expr::Sub(Self::konst(w, 0).boxed(), ea.boxed())
                } else {
                    ea
                };
                self.assign(&name, e);
            }
            Op::Relu { a } => {
                self.declare(&name, w, false);
                let src = self.view(*a);
                let pos = self.fit(&src, w, 0);
                let e = if src.signed {
                    self.mark(&src.name, src.width - 1, src.width - 1);
                    Expr::Mux(
                        Expr::Bit(src.name.clone(), src.width - 1).boxed(),
                        Self::konst(w, 0).boxed(),
                        pos.boxed(),
                    )
                } else {
                    pos
                };
                self.assign(&name, e);
            }
            Op::Quant { a, q } => self.quant(v, &name, w, *a, q),
            Op::Table { a, t } => self.table(v, &name, w, *a, *t),
            Op::Max { a, b } => {
                // The sign of `a - b` (both aligned and sign-extended one bit beyond their union)
                // selects the larger; the selected value is the maximum, so it fits `w` bits.
                self.declare(&name, w, false);
                let (ia, ib) = (self.g.node(*a).iv, self.g.node(*b).iv);
                let f = ia.frac.max(ib.frac);
                let wd = width_of(&Interval {
                    lo: crate::fixed::align(ia.lo, ia.frac, f)
                        .min(crate::fixed::align(ib.lo, ib.frac, f)),
                    hi: crate::fixed::align(ia.hi, ia.frac, f)
                        .max(crate::fixed::align(ib.hi, ib.frac, f)),
                    frac: f,
                }) + 1;
                let ta = Term {
                    src: *a,
                    shift: 0,
                    neg: false,
                };
                let tb = Term {
                    src: *b,
                    shift: 0,
                    neg: false,
                };
                let diff = format!("{name}_d");
                self.declare(&diff, wd, false);
                self.mark(&diff, wd - 1, wd - 1);
                let da = self.term(&ta, wd, f);
                let db = self.term(&tb, wd, f);
                self.assign(&diff, Expr::Sub(da.boxed(), db.boxed()));
                let ea = self.term(&ta, w, frac);
                let eb = self.term(&tb, w, frac);
                self.assign(
                    &name,
                    Expr::Mux(Expr::Bit(diff, wd - 1).boxed(), eb.boxed(), ea.boxed()),
                );
            }
            Op::Mul { a, b } => {
                // Both operands sign-extended to the result's width: the low `w` bits of the product
                // of two's-complement values are the same as those of the unsigned product.
                self.declare(&name, w, false);
                let fa = self.g.node(*a).iv.frac;
                let fb = self.g.node(*b).iv.frac;
                let ea = self.term(
                    &Term {
                        src: *a,
                        shift: 0,
                        neg: false,
                    },
                    w,
                    fa,
                );
                let eb = self.term(
                    &Term {
                        src: *b,
                        shift: 0,
                        neg: false,
                    },
                    w,
                    fb,
                );
                self.assign(&name, Expr::Mul(ea.boxed(), eb.boxed()));
            }
            Op::Reg { a } => {
                self.declare(&name, w, true);
                let src = self.view(*a);
                let e = self.fit(&src, w, 0);
                self.regs.push((name, e));
            }
            Op::Output { a, .. } => {
                self.declare(&name, w, false);
                let src = self.view(*a);
                let e = self.fit(&src, w, 0);
                self.assign(&name, e);
            }
        }
    }

    /// A ternary adder: low bits that only one (non-negated) operand reaches are wires; the rest is a
    /// `fastml_add3` instance over the aligned, sign-extended operands, the negations folded into the
    /// LUT function and the two's-complement `+1`s into the carry-in (`CI`) and the first carry-save
    /// bit (`Y0`), so at most two operands may be negated (the verifier checks it).
    fn add3(&mut self, name: &str, w: u32, frac: i32, t: [Term; 3]) {
        self.declare(name, w, false);
        let zeros = t.map(|t| (frac - (self.g.node(t.src).iv.frac - t.shift)).max(0) as u32);
        let neg = t.map(|t| t.neg);
        let lo = crate::ir::dfg::add3_wires(&zeros, neg).min(w - 1);
        let lowest = (0..3).min_by_key(|&i| (zeros[i], i)).unwrap_or(0);
        let nneg = neg.iter().filter(|&&n| n).count();
        debug_assert!(nneg <= 2, "verified: at most two negated operands");
        // Bits [w-1:lo] of each aligned operand: the operand aligned to a binary point `lo` coarser.
        let ops: Vec<Expr> = t
            .iter()
            .map(|x| self.term(x, w - lo, frac - lo as i32))
            .collect();
        let sum = if lo == 0 {
            name.to_string()
        } else {
            let hi = format!("{name}_hi");
            self.declare(&hi, w - lo, false);
            self.mark(&hi, 0, w - lo - 1);
            let low = self.term(&t[lowest], lo, frac);
            self.assign(name, Expr::Concat(vec![Expr::Ref(hi.clone()), low]));
            hi
        };
        let mut ops = ops.into_iter();
        let mut port = |p: &str| (p.to_string(), ops.next().expect("three operands"));
        let ports = vec![
            port("a"),
            port("b"),
            port("c"),
            ("s".into(), Expr::Ref(sum)),
        ];
        self.items.push(Item::Instance {
            module: ADD3_NAME.into(),
            name: format!("{name}_add3"),
            params: vec![
                ("W".into(), (w - lo).to_string()),
                ("INIT".into(), format!("64'h{:016x}", add3_init(neg))),
                ("Y0".into(), format!("1'b{}", (nneg == 2) as u8)),
                ("CI".into(), format!("1'b{}", (nneg >= 1) as u8)),
            ],
            ports,
        });
    }

    /// A ROM: the address is the operand's bits from weight `2^-addr_frac` up (`bits` of them, wrapping
    /// like the IR's rule), and each non-constant output bit is one column of the ROM, a localparam
    /// indexed by the address. Synthesis maps a column on up to 6 address bits to exactly one LUT6 (its
    /// INIT is the column) and wider ones to LUT6s with MUXF7/F8; no memory inference is involved, so
    /// the result does not depend on a tool's ROM heuristics.
    fn table(&mut self, v: ValueId, name: &str, w: u32, a: ValueId, t: crate::ir::dfg::TableId) {
        self.declare(name, w, false);
        let rom = self.g.table(t).clone();
        let frac = self.g.node(a).iv.frac;
        // One address wire per distinct slice: every lookup on the same bits of the same value reads
        // it (and a LUT6_2 pair, instantiated by its first reader, serves them all).
        let key = (a, rom.addr_frac, rom.bits);
        let addr = match self.addrs.get(&key) {
            Some(n) => n.clone(),
            None => {
                let src = self.view(a);
                let addr_e = self.fit(&src, rom.bits, rom.addr_frac - frac);
                let addr = format!("{name}_a");
                self.declare(&addr, rom.bits, false);
                self.mark(&addr, 0, rom.bits - 1);
                self.assign(&addr, addr_e);
                self.addrs.insert(key, addr.clone());
                addr
            }
        };
        // Output bits, most significant first; the entries are at the node's binary point.
        let mut parts = Vec::with_capacity(w as usize);
        for b in (0..w).rev() {
            let col = crate::passes::pack_luts::column(self.g, v, b);
            if col.iter().all(|&x| x == col[0]) {
                parts.push(Expr::Const {
                    width: 1,
                    bits: col[0] as u128,
                });
                continue;
            }
            // A column equal to an address bit is that bit (no LUT).
            if let Some(k) = (0..rom.bits).find(|&k| {
                col.iter()
                    .enumerate()
                    .all(|(a, &c)| c == ((a >> k) & 1 == 1))
            }) {
                parts.push(Expr::Bit(addr.clone(), k));
                continue;
            }
            if let Some(&(lut, o6)) = self.packed_of.get(&(v, b)) {
                let (n6, n5) = (format!("plut{lut}_o6"), format!("plut{lut}_o5"));
                if self.luts_done.insert(lut) {
                    let p = &self.g.packed[lut];
                    let init =
                        p.o5.iter()
                            .chain(&p.o6)
                            .enumerate()
                            .fold(0u64, |acc, (k, &bit)| acc | ((bit as u64) << k));
                    self.declare(&n6, 1, false);
                    self.declare(&n5, 1, false);
                    self.mark(&n6, 0, 0);
                    self.mark(&n5, 0, 0);
                    let a5 = self.fit(
                        &View {
                            name: addr.clone(),
                            width: rom.bits,
                            signed: false,
                            offset: 0,
                        },
                        crate::passes::pack_luts::MAX_BITS,
                        0,
                    );
                    self.items.push(Item::Instance {
                        module: LUT2_NAME.into(),
                        name: format!("plut{lut}"),
                        params: vec![("INIT".into(), format!("64'h{init:016x}"))],
                        ports: vec![
                            ("a".into(), a5),
                            ("o6".into(), Expr::Ref(n6.clone())),
                            ("o5".into(), Expr::Ref(n5.clone())),
                        ],
                    });
                }
                parts.push(Expr::Ref(if o6 { n6 } else { n5 }));
                continue;
            }
            let pname = format!("rom{}_b{b}", t.0);
            if self.params.insert(pname.clone()) {
                self.items.push(Item::Localparam {
                    name: pname.clone(),
                    bits: col,
                });
            }
            parts.push(Expr::Index(pname, Expr::Ref(addr.clone()).boxed()));
        }
        let e = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Expr::Concat(parts)
        };
        self.assign(name, e);
    }

    fn quant(&mut self, v: ValueId, name: &str, w: u32, a: ValueId, q: &crate::fixed::Quantizer) {
        let src_iv = self.g.node(a).iv;
        let src = self.view(a);
        let plan = q.round_plan(src_iv.frac);
        // Step 1: rounding, as a view of the rounded value.
        let rounded: View = if src_iv.frac < q.ty.frac {
            View {
                offset: -(q.ty.frac - src_iv.frac),
                ..src
            }
        } else if q.needs_round_adder(src_iv) {
            let sum_iv = Interval {
                lo: src_iv.lo + plan.constant,
                hi: src_iv.hi + plan.constant + plan.addend,
                frac: src_iv.frac,
            };
            let sw = width_of(&sum_iv);
            let sum_name = format!("{name}_rnd");
            self.declare(&sum_name, sw, false);
            let k0 = Self::konst(sw, plan.constant);
            let k1 = Self::konst(sw, plan.constant + plan.addend);
            let cond = match plan.bit {
                RoundBit::None => None,
                RoundBit::KeptLsb => Some(self.fit(
                    &View {
                        offset: plan.drop as i32,
                        ..src.clone()
                    },
                    1,
                    0,
                )),
                RoundBit::Negative => src.signed.then(|| {
                    self.mark(&src.name, src.width - 1, src.width - 1);
                    Expr::Bit(src.name.clone(), src.width - 1)
                }),
                RoundBit::NonNegative => Some(if src.signed {
                    self.mark(&src.name, src.width - 1, src.width - 1);
                    Expr::Not(Expr::Bit(src.name.clone(), src.width - 1).boxed())
                } else {
                    Expr::Const { width: 1, bits: 1 }
                }),
            };
            let addend = match cond {
                None => k0,
                Some(c) => Expr::Mux(c.boxed(), k1.boxed(), k0.boxed()),
            };
            let x = self.fit(&src, sw, 0);
            self.assign(&sum_name, Expr::Add(x.boxed(), addend.boxed()));
            View {
                name: sum_name,
                width: sw,
                signed: sum_iv.lo < 0,
                offset: plan.drop as i32,
            }
        } else {
            View {
                offset: plan.drop as i32,
                ..src
            }
        };
        self.declare(name, w, false);
        // Step 2: overflow.
        if !q.can_overflow(src_iv) || q.overflow == Overflow::Wrap {
            // In range (the low bits are the value) or wrap-around (the low W bits are the result).
            let e = self.fit(&rounded, w, 0);
            self.assign(name, e);
            return;
        }
        // Materialise the rounded value, then compare its high bits with the target range.
        let r_iv = q.rounded_range(src_iv);
        let rw = width_of(&r_iv);
        let r_name = format!("{name}_r");
        self.declare(&r_name, rw, false);
        let e = self.fit(&rounded, rw, 0);
        self.assign(&r_name, e);
        let r_signed = r_iv.lo < 0;
        let t = q.ty;
        let plan_o = q.overflow_plan();
        // Bits above the target's magnitude: [top : base].
        // (Only read when a value can be above or below the range, so there are bits above `base`.)
        let top = if r_signed {
            rw.saturating_sub(2)
        } else {
            rw - 1
        };
        let base = if t.signed { t.width - 1 } else { t.width };
        let neg = if r_signed {
            self.mark(&r_name, rw - 1, rw - 1);
            Some(Expr::Bit(r_name.clone(), rw - 1))
        } else {
            None
        };
        let high_bits = |me: &mut Self| -> Expr {
            me.mark(&r_name, base, top);
            if top == base {
                Expr::Bit(r_name.clone(), base)
            } else {
                Expr::Slice(r_name.clone(), top, base)
            }
        };
        let too_high = (r_iv.hi > t.max_mant()).then(|| {
            let any = Expr::OrReduce(high_bits(self).boxed());
            match &neg {
                Some(s) => Expr::And(Expr::Not(s.clone().boxed()).boxed(), any.boxed()),
                None => any,
            }
        });
        let too_low = (r_iv.lo < t.min_mant()).then(|| {
            let s = neg.clone().expect("below the minimum means negative");
            if t.signed {
                let all = Expr::AndReduce(high_bits(self).boxed());
                Expr::And(s.boxed(), Expr::Not(all.boxed()).boxed())
            } else {
                s
            }
        });
        let inside = self.fit(
            &View {
                name: r_name.clone(),
                width: rw,
                signed: r_signed,
                offset: 0,
            },
            w,
            0,
        );
        let mut e = inside;
        if let Some(c) = too_low {
            e = Expr::Mux(c.boxed(), Self::konst(w, plan_o.on_low).boxed(), e.boxed());
        }
        if let Some(c) = too_high {
            e = Expr::Mux(c.boxed(), Self::konst(w, plan_o.on_high).boxed(), e.boxed());
        }
        let _ = v;
        self.assign(name, e);
    }
}

fn port_layout_input(g: &Dfg, port: u32) -> (u32, FixedType) {
    let off: u32 = g.inputs[..port as usize].iter().map(|t| t.width).sum();
    (off, g.inputs[port as usize])
}

/// Emit the design: the top module and the valid-pipeline primitive. Deterministic: the text depends
/// only on the graph.
pub fn emit(g: &Dfg, header: &[String]) -> Vec<VerilogFile> {
    let top = g.top.clone().expect("legalize-names ran before emission");
    let latency = g.latency.expect("schedule ran before emission");
    let layout = port_layout(g);
    let mut em = Emitter {
        g,
        items: Vec::new(),
        decls: Vec::new(),
        used: HashMap::new(),
        regs: Vec::new(),
        params: Default::default(),
        packed_of: g
            .packed
            .iter()
            .enumerate()
            .flat_map(|(k, p)| p.users.iter().map(move |&(v, b, o6)| ((v, b), (k, o6))))
            .collect(),
        luts_done: Default::default(),
        addrs: HashMap::new(),
    };
    em.used
        .insert("in_data".into(), vec![false; layout.in_width as usize]);
    for v in g.topo() {
        em.node(v);
    }
    // Output packing: element 0 in the low bits.
    let outs: Vec<Expr> = g
        .outputs()
        .into_iter()
        .rev()
        .map(|v| Expr::Ref(em.name(v)))
        .collect();
    for v in g.outputs() {
        let n = em.name(v);
        let w = width_of(&g.node(v).iv);
        em.mark(&n, 0, w - 1);
    }
    let out_expr = if outs.len() == 1 {
        outs.into_iter().next().expect("one output")
    } else {
        Expr::Concat(outs)
    };

    let in_unused = em.used["in_data"].iter().any(|b| !b);
    let mut items = vec![Item::Comment(
        "Values: every wire holds one exact fixed-point value (see the report).".into(),
    )];
    for (reg, name, width) in &em.decls {
        let waive = em.used.get(name).is_some_and(|b| b.iter().any(|x| !x));
        items.push(Item::Decl {
            reg: *reg,
            name: name.clone(),
            width: *width,
            waive_unused: waive,
        });
    }
    items.push(Item::Blank);
    items.append(&mut em.items);
    if !em.regs.is_empty() {
        items.push(Item::Blank);
        items.push(Item::Comment(
            "Pipeline registers (data: no reset; only the valid bit is reset).".into(),
        ));
        items.push(Item::AlwaysFf {
            clock: "clk".into(),
            body: std::mem::take(&mut em.regs),
        });
    }
    items.push(Item::Blank);
    items.push(Item::Assign {
        lhs: "out_data".into(),
        rhs: out_expr,
    });
    items.push(Item::Instance {
        module: VALID_PIPE_NAME.into(),
        name: "valid_pipe".into(),
        params: vec![("LATENCY".into(), latency.to_string())],
        ports: vec![
            ("clk".into(), Expr::Ref("clk".into())),
            ("rst".into(), Expr::Ref("rst".into())),
            ("in_valid".into(), Expr::Ref("in_valid".into())),
            ("out_valid".into(), Expr::Ref("out_valid".into())),
        ],
    });
    let port = |output: bool, name: &str, width: u32, waive: bool| Port {
        output,
        name: name.into(),
        width,
        waive_unused: waive,
    };
    let module = Module {
        name: top.clone(),
        header: header.to_vec(),
        ports: vec![
            port(false, "clk", 1, false),
            port(false, "rst", 1, false),
            port(false, "in_valid", 1, false),
            port(false, "in_data", layout.in_width, in_unused),
            port(true, "out_valid", 1, false),
            port(true, "out_data", layout.out_width, false),
        ],
        items,
    };
    let mut files = vec![
        VerilogFile {
            file_name: format!("{top}.v"),
            text: module.print(),
        },
        VerilogFile {
            file_name: format!("{VALID_PIPE_NAME}.v"),
            text: VALID_PIPE_SOURCE.to_string(),
        },
    ];
    let add3 = g.ids().any(|v| matches!(g.node(v).op, Op::Add3 { .. }));
    let lut2 = !g.packed.is_empty();
    if add3 {
        files.push(VerilogFile {
            file_name: format!("{ADD3_NAME}.v"),
            text: ADD3_SOURCE.to_string(),
        });
    }
    if lut2 {
        files.push(VerilogFile {
            file_name: format!("{LUT2_NAME}.v"),
            text: LUT2_SOURCE.to_string(),
        });
    }
    if add3 || lut2 {
        for (file, text) in SIM_MODELS {
            let needed = match file {
                ADD3_MODEL_FILE => add3,
                "sim/CARRY8.v" => add3,
                _ => true,
            };
            if needed {
                files.push(VerilogFile {
                    file_name: file.to_string(),
                    text: text.to_string(),
                });
            }
        }
    }
    if lut2 {
        files.push(VerilogFile {
            file_name: LUT2_MODEL_FILE.to_string(),
            text: include_str!("../../../rtl-lib/sim/fastml_lut2_model.v").to_string(),
        });
    }
    files
}
