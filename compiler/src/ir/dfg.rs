//! The dataflow IR: a petgraph graph of scalar fixed-point operations, the level at which the compiler
//! decides bits, adders, pipeline stages and names.
//!
//! Every node carries the exact [`Interval`] of the mantissas it can produce (and so its binary point
//! and its minimal width). Operands live inside the [`Op`] (so they are ordered and typed), and every
//! operand is mirrored by a graph edge `operand -> user`; [`Dfg::add`] is the only way to create a node,
//! so the two can never disagree (the verifier checks it anyway).
//!
//! This file defines the data and the interval rules; it must not know about Verilog, schedules' delay
//! numbers or model.json.

use crate::fixed::{Interval, Quantizer};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::fmt;

/// A typed id for a value (= the node that produces it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub NodeIndex<u32>);

impl ValueId {
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0.index())
    }
}

/// Which layer of the model a node implements (index into [`Dfg::layers`]); for reports and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerTag(pub u32);

/// A typed id for a ROM in [`Dfg::tables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId(pub u32);

/// A read-only memory: the contents of a [`Op::Table`] lookup. The address is a bit slice of the
/// operand's real value `x`: `addr = floor(x · 2^addr_frac) mod 2^bits` (the two's-complement bits of `x`
/// from weight `2^-addr_frac` upwards, `bits` of them); the result is `entries[addr] · 2^-frac`. Any
/// unary function of a narrow value is such a table (activations, a quantiser folded into a lookup,
/// HGQ2's learned tables). Entries at addresses the operand can never produce are filled by whoever
/// builds the ROM with a reachable entry, so the entries' range is the exact range of the result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rom {
    pub addr_frac: i32,
    pub bits: u32,
    pub entries: Vec<i128>,
    pub frac: i32,
}

impl Rom {
    /// The address the real value `m · 2^-mfrac` reads (floor, then keep `bits` low bits).
    pub fn address(&self, m: i128, mfrac: i32) -> usize {
        let d = self.addr_frac - mfrac;
        let a = if d >= 0 { m << d } else { m >> (-d) };
        (a & ((1i128 << self.bits) - 1)) as usize
    }
}

/// Two ROM columns in one LUT6_2 (set by `pack-luts`): two functions of the same address of at most 5
/// bits, `o6` and `o5` (one entry per address value, 32 each; a narrower address leaves the upper
/// entries unused). Every listed `(table node, output bit, is_o6)` reads its bit from this LUT.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedLut {
    pub o6: Vec<bool>,
    pub o5: Vec<bool>,
    pub users: Vec<(ValueId, u32, bool)>,
}

/// One operand of an addition: `±(src · 2^shift)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Term {
    pub src: ValueId,
    pub shift: i32,
    pub neg: bool,
}

/// The scalar operations (`Eq`/`Hash` so equal operations can be merged: see the `cse` pass). Adding a kind means adding its interval rule here ([`op_interval`]), its
/// golden rules (`golden::eval_op` and `golden::Program`), its delay and cost (`schedule::op_delay`,
/// `report`), its emitter rule (`emit::Emitter::node`) and a co-simulation test, together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Element `port` of the design input (`in_data`), of the input's declared type.
    Input { port: u32 },
    /// The constant `value · 2^-frac`.
    Const { value: i128, frac: i32 },
    /// `a + b` where each side is a shifted, possibly negated operand (one adder or subtractor).
    Add { a: Term, b: Term },
    /// `a + b + c`, three shifted, possibly negated operands (at most two negated), in one ternary
    /// adder: one LUT6_2 per bit on the UltraScale+ carry chain instead of two binary adders. The
    /// emitter instantiates `fastml_add3` (rtl-lib); see `docs/ARCHITECTURE.md`.
    Add3 { a: Term, b: Term, c: Term },
    /// `±(a · 2^shift)`: free rewiring when positive, a negation otherwise.
    Scale { a: Term },
    /// `max(a, 0)`.
    Relu { a: ValueId },
    /// Round and overflow `a` to a quantiser's type.
    Quant { a: ValueId, q: Quantizer },
    /// A ROM lookup addressed by a bit slice of `a` ([`Rom`]).
    Table { a: ValueId, t: TableId },
    /// `max(a, b)` (a comparator and a multiplexer): max pooling, the stable softmax's maximum.
    Max { a: ValueId, b: ValueId },
    /// `a · b`, exact: a product of two variables (attention's QKᵀ and softmax·V).
    Mul { a: ValueId, b: ValueId },
    /// A pipeline register (only after `insert-registers`): the value of `a` one clock earlier.
    Reg { a: ValueId },
    /// Element `port` of the design output (`out_data`).
    Output { a: ValueId, port: u32 },
}

impl Op {
    /// Operands in order.
    pub fn operands(&self) -> Vec<ValueId> {
        match self {
            Op::Input { .. } | Op::Const { .. } => vec![],
            Op::Add { a, b } => vec![a.src, b.src],
            Op::Add3 { a, b, c } => vec![a.src, b.src, c.src],
            Op::Scale { a } => vec![a.src],
            Op::Relu { a }
            | Op::Quant { a, .. }
            | Op::Table { a, .. }
            | Op::Reg { a }
            | Op::Output { a, .. } => vec![*a],
            Op::Max { a, b } | Op::Mul { a, b } => vec![*a, *b],
        }
    }

    /// Whether the op computes a value from its operands (every op but ports, constants and registers):
    /// what `cse` may merge, `retime` may move and `tabulate-cones` may fold into a ROM.
    pub fn computes(&self) -> bool {
        match self {
            Op::Add { .. }
            | Op::Add3 { .. }
            | Op::Scale { .. }
            | Op::Relu { .. }
            | Op::Quant { .. }
            | Op::Table { .. }
            | Op::Max { .. }
            | Op::Mul { .. } => true,
            Op::Input { .. } | Op::Const { .. } | Op::Reg { .. } | Op::Output { .. } => false,
        }
    }

    /// A short kind name for printing and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Const { .. } => "const",
            Op::Add { .. } => "add",
            Op::Add3 { .. } => "add3",
            Op::Scale { .. } => "scale",
            Op::Relu { .. } => "relu",
            Op::Quant { .. } => "quant",
            Op::Table { .. } => "table",
            Op::Max { .. } => "max",
            Op::Mul { .. } => "mul",
            Op::Reg { .. } => "reg",
            Op::Output { .. } => "output",
        }
    }

    /// Rewrite operands through `f` (used by passes that rebuild graphs).
    pub fn map_operands(&self, mut f: impl FnMut(ValueId) -> ValueId) -> Op {
        let mut t = |t: &Term| Term {
            src: f(t.src),
            ..*t
        };
        match self {
            Op::Input { port } => Op::Input { port: *port },
            Op::Const { value, frac } => Op::Const {
                value: *value,
                frac: *frac,
            },
            Op::Add { a, b } => {
                let a = t(a);
                let b = t(b);
                Op::Add { a, b }
            }
            Op::Add3 { a, b, c } => {
                let a = t(a);
                let b = t(b);
                let c = t(c);
                Op::Add3 { a, b, c }
            }
            Op::Scale { a } => Op::Scale { a: t(a) },
            Op::Relu { a } => Op::Relu { a: f(*a) },
            Op::Quant { a, q } => Op::Quant { a: f(*a), q: *q },
            Op::Table { a, t } => Op::Table { a: f(*a), t: *t },
            Op::Max { a, b } => {
                let a = f(*a);
                let b = f(*b);
                Op::Max { a, b }
            }
            Op::Mul { a, b } => {
                let a = f(*a);
                let b = f(*b);
                Op::Mul { a, b }
            }
            Op::Reg { a } => Op::Reg { a: f(*a) },
            Op::Output { a, port } => Op::Output {
                a: f(*a),
                port: *port,
            },
        }
    }
}

/// The interval of a term: `±src · 2^shift` at binary point `src.frac - shift`.
pub fn term_interval(t: &Term, src: Interval) -> Interval {
    let frac = src.frac - t.shift;
    if t.neg {
        Interval {
            lo: -src.hi,
            hi: -src.lo,
            frac,
        }
    } else {
        Interval {
            lo: src.lo,
            hi: src.hi,
            frac,
        }
    }
}

/// How many low bits of a ternary adder's result are plain wires, given each operand's count of zero
/// low bits in the result's frame and its negation: below the second-lowest operand only the lowest one
/// can be non-zero, and those bits are its own bits when it is not negated (a negated one needs the
/// carry of its two's complement). The emitter and the cost model share this rule.
pub fn add3_wires(zeros: &[u32; 3], neg: [bool; 3]) -> u32 {
    let mut order = [0usize, 1, 2];
    order.sort_by_key(|&i| (zeros[i], i));
    if neg[order[0]] {
        zeros[order[0]]
    } else {
        zeros[order[1]]
    }
}

/// Why an interval could not be computed: the value would not fit the exact arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub struct TooWide {
    pub bits: u32,
}

fn check(iv: Interval) -> Result<Interval, TooWide> {
    let w = iv.fixed_type().width;
    if w > crate::fixed::MAX_WIDTH || iv.frac.abs() > 1000 {
        Err(TooWide { bits: w })
    } else {
        Ok(iv)
    }
}

/// The exact interval of a sum of aligned operand intervals (at the finest binary point).
fn sum_interval(parts: &[Interval]) -> Result<Interval, TooWide> {
    let frac = parts.iter().map(|i| i.frac).max().unwrap_or(0);
    let widest = |i: &Interval| i.fixed_type().width + (frac - i.frac) as u32;
    let (mut lo, mut hi) = (0i128, 0i128);
    for i in parts {
        let a = i.checked_at_frac(frac).ok_or_else(|| TooWide {
            bits: parts.iter().map(widest).max().unwrap_or(0),
        })?;
        lo = lo.checked_add(a.lo).ok_or(TooWide { bits: 128 })?;
        hi = hi.checked_add(a.hi).ok_or(TooWide { bits: 128 })?;
    }
    check(Interval { lo, hi, frac })
}

/// The interval rule of every op: the exact set of mantissas it can produce given its operands'
/// intervals and the declared input types.
pub fn op_interval(
    op: &Op,
    operand: impl Fn(ValueId) -> Interval,
    inputs: &[crate::fixed::FixedType],
    tables: &[Rom],
) -> Result<Interval, TooWide> {
    match op {
        Op::Input { port } => Ok(inputs[*port as usize].interval()),
        Op::Const { value, frac } => Ok(Interval::point(*value, *frac)),
        Op::Add { a, b } => sum_interval(&[
            term_interval(a, operand(a.src)),
            term_interval(b, operand(b.src)),
        ]),
        Op::Add3 { a, b, c } => sum_interval(&[
            term_interval(a, operand(a.src)),
            term_interval(b, operand(b.src)),
            term_interval(c, operand(c.src)),
        ]),
        Op::Scale { a } => check(term_interval(a, operand(a.src))),
        Op::Relu { a } => {
            let i = operand(*a);
            Ok(Interval {
                lo: i.lo.max(0),
                hi: i.hi.max(0),
                frac: i.frac,
            })
        }
        Op::Quant { a, q } => {
            let src = operand(*a);
            // The rounding shift (either way) must stay inside the exact arithmetic.
            let ok = if src.frac < q.ty.frac {
                src.checked_at_frac(q.ty.frac).is_some()
            } else {
                ((src.frac - q.ty.frac) as u32) < crate::fixed::MAX_WIDTH
            };
            if !ok {
                return Err(TooWide {
                    bits: src.fixed_type().width + (src.frac - q.ty.frac).unsigned_abs(),
                });
            }
            check(q.range(src))
        }
        Op::Table { t, .. } => {
            let rom = &tables[t.0 as usize];
            let lo = rom.entries.iter().copied().min().unwrap_or(0);
            let hi = rom.entries.iter().copied().max().unwrap_or(0);
            check(Interval {
                lo,
                hi,
                frac: rom.frac,
            })
        }
        Op::Max { a, b } => {
            let (x, y) = (operand(*a), operand(*b));
            let frac = x.frac.max(y.frac);
            let too = || TooWide {
                bits: x.fixed_type().width.max(y.fixed_type().width)
                    + (x.frac - y.frac).unsigned_abs(),
            };
            let x = x.checked_at_frac(frac).ok_or_else(too)?;
            let y = y.checked_at_frac(frac).ok_or_else(too)?;
            check(Interval {
                lo: x.lo.max(y.lo),
                hi: x.hi.max(y.hi),
                frac,
            })
        }
        Op::Mul { a, b } => {
            let (x, y) = (operand(*a), operand(*b));
            let too = || TooWide {
                bits: x.fixed_type().width + y.fixed_type().width,
            };
            let corners = [
                x.lo.checked_mul(y.lo),
                x.lo.checked_mul(y.hi),
                x.hi.checked_mul(y.lo),
                x.hi.checked_mul(y.hi),
            ];
            let mut lo = i128::MAX;
            let mut hi = i128::MIN;
            for c in corners {
                let c = c.ok_or_else(too)?;
                lo = lo.min(c);
                hi = hi.max(c);
            }
            check(Interval {
                lo,
                hi,
                frac: x.frac + y.frac,
            })
        }
        Op::Reg { a } | Op::Output { a, .. } => Ok(operand(*a)),
    }
}

/// A node: an op, its exact value interval, the layer it implements and, once scheduled, its stage.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub iv: Interval,
    pub layer: LayerTag,
    /// Pipeline stage (clock cycles after the input); `None` before scheduling.
    pub stage: Option<u32>,
    /// Legal, unique Verilog name; `None` before `legalize-names`.
    pub name: Option<String>,
}

/// Per-layer information kept beside the graph for reports and names.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// The model's own name for the layer (any string; never printed into Verilog unlegalised).
    pub name: String,
    /// The model.json op it came from.
    pub kind: crate::ir::layer::LayerKind,
    /// Its place in model.json (`nodes[k]`).
    pub path: String,
}

/// The dataflow graph of a whole design.
#[derive(Clone, Debug, Default)]
pub struct Dfg {
    pub graph: DiGraph<Node, u8, u32>,
    pub layers: Vec<LayerInfo>,
    /// Widths of the `in_data` elements, in port order (the declared input types).
    pub inputs: Vec<crate::fixed::FixedType>,
    /// Set by `schedule`: the number of register stages from `in_data` to `out_data` (the latency).
    pub latency: Option<u32>,
    /// Set by `schedule` with `latency`: the clock period (ns) the schedule was made for, so a schedule
    /// can be checked without the options that made it.
    pub clock_ns: Option<f64>,
    /// Set by `insert-registers`: every operand is now read in its user's own stage.
    pub registered: bool,
    /// Set by `legalize-names`: the Verilog module name.
    pub top: Option<String>,
    /// The model's own name (any string; legalised into `top`).
    pub model_name: String,
    /// The ROMs [`Op::Table`] nodes read, deduplicated by content ([`Dfg::intern_table`]).
    pub tables: Vec<Rom>,
    /// Set by `pack-luts` (the last pass): ROM columns paired into LUT6_2s. Any pass that renumbers
    /// nodes starts from an empty list ([`Dfg::empty_like`]).
    pub packed: Vec<PackedLut>,
}

impl Dfg {
    /// Add a node; its interval is computed from its operands by [`op_interval`], the only interval
    /// rule. Operands must already exist, so id order is a topological order.
    pub fn add(&mut self, op: Op, layer: LayerTag) -> Result<ValueId, TooWide> {
        let iv = op_interval(&op, |v| self.graph[v.0].iv, &self.inputs, &self.tables)?;
        let operands = op.operands();
        let id = ValueId(self.graph.add_node(Node {
            op,
            iv,
            layer,
            stage: None,
            name: None,
        }));
        for (port, src) in operands.into_iter().enumerate() {
            self.graph.add_edge(src.0, id.0, port as u8);
        }
        Ok(id)
    }

    /// The id of a ROM with these contents, adding it if no equal ROM exists yet (equal tables become one
    /// ROM, so they are emitted, costed and deduplicated by the synthesis tool once).
    pub fn intern_table(&mut self, rom: Rom) -> TableId {
        if let Some(k) = self.tables.iter().position(|r| *r == rom) {
            return TableId(k as u32);
        }
        self.tables.push(rom);
        TableId(self.tables.len() as u32 - 1)
    }

    pub fn table(&self, t: TableId) -> &Rom {
        &self.tables[t.0 as usize]
    }

    pub fn node(&self, v: ValueId) -> &Node {
        &self.graph[v.0]
    }

    pub fn node_mut(&mut self, v: ValueId) -> &mut Node {
        &mut self.graph[v.0]
    }

    pub fn ids(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.graph.node_indices().map(ValueId)
    }

    /// Users of a value, in a deterministic order (by id).
    pub fn users(&self, v: ValueId) -> Vec<ValueId> {
        let mut u: Vec<ValueId> = self
            .graph
            .edges_directed(v.0, Direction::Outgoing)
            .map(|e| ValueId(e.target()))
            .collect();
        u.sort();
        u.dedup();
        u
    }

    /// Nodes in a topological order. Nodes are created after their operands, so id order is one; the
    /// verifier checks that this stays true.
    pub fn topo(&self) -> Vec<ValueId> {
        self.ids().collect()
    }

    /// Output nodes in port order.
    pub fn outputs(&self) -> Vec<ValueId> {
        let mut outs: Vec<(u32, ValueId)> = self
            .ids()
            .filter_map(|v| match self.node(v).op {
                Op::Output { port, .. } => Some((port, v)),
                _ => None,
            })
            .collect();
        outs.sort();
        outs.into_iter().map(|(_, v)| v).collect()
    }

    /// Input nodes in port order.
    pub fn input_nodes(&self) -> Vec<ValueId> {
        let mut ins: Vec<(u32, ValueId)> = self
            .ids()
            .filter_map(|v| match self.node(v).op {
                Op::Input { port } => Some((port, v)),
                _ => None,
            })
            .collect();
        ins.sort();
        ins.into_iter().map(|(_, v)| v).collect()
    }

    /// A graph with this one's metadata (layers, input types, latency, names) and no nodes, for passes
    /// that rebuild.
    pub fn empty_like(&self) -> Dfg {
        Dfg {
            graph: DiGraph::default(),
            layers: self.layers.clone(),
            inputs: self.inputs.clone(),
            latency: self.latency,
            clock_ns: self.clock_ns,
            registered: self.registered,
            top: self.top.clone(),
            model_name: self.model_name.clone(),
            tables: self.tables.clone(),
            packed: Vec::new(),
        }
    }

    /// Rebuild the graph keeping only `keep` nodes (in id order), remapping operands. Used by passes
    /// that delete nodes; ids of the result are dense again.
    pub fn retain(&self, keep: &[bool]) -> Dfg {
        let mut out = self.empty_like();
        let mut map: Vec<Option<ValueId>> = vec![None; self.graph.node_count()];
        for v in self.ids() {
            if !keep[v.index()] {
                continue;
            }
            let n = self.node(v);
            let op =
                n.op.map_operands(|s| map[s.index()].expect("kept node uses a deleted node"));
            let operands = op.operands();
            let id = ValueId(out.graph.add_node(Node { op, ..n.clone() }));
            for (port, src) in operands.into_iter().enumerate() {
                out.graph.add_edge(src.0, id.0, port as u8);
            }
            map[v.index()] = Some(id);
        }
        out
    }

    /// The bits of an adder (`Add`, or a negating `Scale`) that need a LUT and a carry: below the lowest
    /// bit where both operands can be non-zero the sum is a plain wire (the aligned operand's low bits are
    /// zeros), so the carry chain starts there. Used by the delay model and the resource estimate.
    pub fn carry_bits(&self, v: ValueId) -> u32 {
        let n = self.node(v);
        let w = n.iv.fixed_type().width;
        let zeros = |t: &Term| (n.iv.frac - (self.node(t.src).iv.frac - t.shift)).max(0) as u32;
        match &n.op {
            Op::Add { a, b } => w.saturating_sub(zeros(a).max(zeros(b))).max(1),
            Op::Add3 { a, b, c } => w
                .saturating_sub(add3_wires(
                    &[zeros(a), zeros(b), zeros(c)],
                    [a.neg, b.neg, c.neg],
                ))
                .max(1),
            Op::Scale { a } if a.neg => w.saturating_sub(zeros(a)).max(1),
            // A comparator's carry chain spans the aligned operands.
            Op::Max { .. } => w,
            Op::Scale { .. }
            | Op::Input { .. }
            | Op::Const { .. }
            | Op::Relu { .. }
            | Op::Quant { .. }
            | Op::Table { .. }
            | Op::Mul { .. }
            | Op::Reg { .. }
            | Op::Output { .. } => 0,
        }
    }

    /// The LUTs of an adder as synthesis maps it: a binary adder (`Add`) needs a LUT (the carry
    /// chain's propagate XOR) only at bits of its carry chain where both operands can vary; where one
    /// side is constant (a constant operand, zeros below an operand's lowest bit, zero-extension above
    /// an unsigned operand) the select is the other bit itself, or its inverse (an INV, not a LUT). A
    /// ternary adder is one LUT6_2 per bit of its instance. Used by the resource estimate only.
    pub fn adder_luts(&self, v: ValueId) -> u32 {
        let n = self.node(v);
        let w = n.iv.fixed_type().width as i64;
        // The bits [lo, hi) of the result frame where a term can vary.
        let varying = |t: &Term| -> (i64, i64) {
            let s = self.node(t.src);
            if matches!(s.op, Op::Const { .. }) {
                return (0, 0);
            }
            let lo = (n.iv.frac - (s.iv.frac - t.shift)) as i64;
            let hi = if s.iv.lo < 0 || t.neg {
                w
            } else {
                lo + s.iv.fixed_type().width as i64
            };
            (lo.max(0), hi.min(w))
        };
        match &n.op {
            Op::Add { a, b } => {
                let (a0, a1) = varying(a);
                let (b0, b1) = varying(b);
                (a1.min(b1) - a0.max(b0)).max(0) as u32
            }
            Op::Add3 { .. } | Op::Scale { .. } => self.carry_bits(v),
            Op::Input { .. }
            | Op::Const { .. }
            | Op::Relu { .. }
            | Op::Quant { .. }
            | Op::Table { .. }
            | Op::Max { .. }
            | Op::Mul { .. }
            | Op::Reg { .. }
            | Op::Output { .. } => 0,
        }
    }

    /// Count of nodes per kind (for tests and reports).
    pub fn count(&self, kind: &str) -> usize {
        self.ids()
            .filter(|v| self.node(*v).op.kind() == kind)
            .count()
    }
}

/// A readable dump of the graph (one node per line), for debugging and snapshot tests.
impl fmt::Display for Dfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for v in self.ids() {
            let n = self.node(v);
            let t = n.iv.fixed_type();
            let term = |t: &Term| {
                format!(
                    "{}{}{}",
                    if t.neg { "-" } else { "" },
                    t.src,
                    if t.shift != 0 {
                        format!("<<{}", t.shift)
                    } else {
                        String::new()
                    }
                )
            };
            let body = match &n.op {
                Op::Input { port } => format!("input {port}"),
                Op::Const { value, .. } => format!("const {value}"),
                Op::Add { a, b } => format!("add {} {}", term(a), term(b)),
                Op::Add3 { a, b, c } => format!("add3 {} {} {}", term(a), term(b), term(c)),
                Op::Scale { a } => format!("scale {}", term(a)),
                Op::Relu { a } => format!("relu {a}"),
                Op::Quant { a, q } => format!("quant {a} {q}"),
                Op::Table { a, t } => {
                    let r = self.table(*t);
                    format!("table {a} rom{} [{} bits @2^-{}]", t.0, r.bits, r.addr_frac)
                }
                Op::Max { a, b } => format!("max {a} {b}"),
                Op::Mul { a, b } => format!("mul {a} {b}"),
                Op::Reg { a } => format!("reg {a}"),
                Op::Output { a, port } => format!("output {port} {a}"),
            };
            write!(f, "{v} = {body} : {t} [{}, {}]", n.iv.lo, n.iv.hi)?;
            if let Some(s) = n.stage {
                write!(f, " @{s}")?;
            }
            if let Some(name) = &n.name {
                write!(f, " \"{name}\"")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
