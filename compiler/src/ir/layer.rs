//! The layer IR: the model as the user wrote it (a petgraph DAG of tensor operations with exact
//! constants), after validation. Layer-level passes (BatchNorm folding, pruning) run here; the
//! `lower-cmvm` pass turns it into the scalar [`crate::ir::dfg::Dfg`].
//!
//! Activations are tensors: every layer has a shape, and its elements (numbered row-major, last index
//! fastest) each have their own exact type, so per-weight and per-activation quantisation (HGQ) need no
//! special case. [`layer_shape`] is the one shape rule per op: the front end uses it to build layers and
//! the verifier to check them. This file holds data, shapes and index maps only: no evaluation, no
//! lowering.

use crate::fixed::Quantizer;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::Direction;

/// A typed id for a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerId(pub NodeIndex<u32>);

/// An exact constant `m · 2^-frac`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Const {
    pub m: i128,
    pub frac: i32,
}

impl Const {
    pub const ZERO: Const = Const { m: 0, frac: 0 };
    pub fn is_zero(&self) -> bool {
        self.m == 0
    }
    /// Exact product.
    pub fn mul(&self, o: &Const) -> Const {
        Const {
            m: self.m * o.m,
            frac: self.frac + o.frac,
        }
    }
    /// Exact product, or `None` if it would not fit the exact arithmetic.
    pub fn checked_mul(&self, o: &Const) -> Option<Const> {
        let m = self.m.checked_mul(o.m)?;
        let c = Const {
            m,
            frac: self.frac + o.frac,
        };
        (m.unsigned_abs() < 1u128 << crate::fixed::MAX_WIDTH).then_some(c)
    }
    /// Exact sum, or `None` if it would not fit the exact arithmetic.
    pub fn checked_add(&self, o: &Const) -> Option<Const> {
        let frac = self.frac.max(o.frac);
        let a = crate::fixed::Interval::point(self.m, self.frac).checked_at_frac(frac)?;
        let b = crate::fixed::Interval::point(o.m, o.frac).checked_at_frac(frac)?;
        let m = a.lo.checked_add(b.lo)?;
        (m.unsigned_abs() < 1u128 << crate::fixed::MAX_WIDTH).then_some(Const { m, frac })
    }
    /// Exact sum.
    pub fn add(&self, o: &Const) -> Const {
        let frac = self.frac.max(o.frac);
        Const {
            m: crate::fixed::align(self.m, self.frac, frac)
                + crate::fixed::align(o.m, o.frac, frac),
            frac,
        }
    }
    /// The same value with trailing zero bits removed from the mantissa (canonical form).
    pub fn normalized(&self) -> Const {
        if self.m == 0 {
            return Const::ZERO;
        }
        let tz = self.m.trailing_zeros() as i32;
        Const {
            m: self.m >> tz,
            frac: self.frac - tz,
        }
    }
    pub fn to_f64(&self) -> f64 {
        crate::fixed::to_f64(self.m, self.frac)
    }
}

/// One weight of a Dense layer: input `i` feeds output `j` with factor `w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weight {
    pub i: u32,
    pub j: u32,
    pub w: Const,
}

/// What a `Reduce` computes over its axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    Sum,
    Max,
    /// The sum times `2^-shift` (the axis length is `2^shift`, so the mean is exact).
    Mean {
        shift: u32,
    },
}

/// A lookup table on one element: the element is quantised to `domain` (its rounding and overflow
/// modes apply), and the result is `entries[m - domain.min_mant()]` for the quantised mantissa `m`.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupTable {
    pub domain: Quantizer,
    /// One exact value per domain mantissa, in ascending order of the input (`2^W` entries).
    pub entries: Vec<Const>,
}

impl LookupTable {
    /// The table's value for an input value `m · 2^-frac` (quantise to the domain, then look up).
    pub fn lookup(&self, m: i128, frac: i32) -> Const {
        let q = self.domain.apply(m, frac);
        self.entries[(q - self.domain.ty.min_mant()) as usize]
    }
}

/// One learned table of a `LookupDense`: input element `i` feeds output `j` through `table`.
#[derive(Clone, Debug, PartialEq)]
pub struct LutWeight {
    pub i: u32,
    pub j: u32,
    pub table: LookupTable,
}

/// Tensor operations (model.json node kinds, versions 1 and 2).
#[derive(Clone, Debug, PartialEq)]
pub enum LayerOp {
    /// The design input, one quantiser per element (applied to real inputs by `predict`).
    Input { q: Vec<Quantizer> },
    /// `y[.., j] = Σ w·x[.., i] + bias[j]`, exact: contracts the last axis (the einsum `...i,ij->...j`),
    /// the same weights at every leading index. `weights` lists (i, j, w) in row-major order; after
    /// `prune-zero-weights` it holds no zero entries.
    Dense {
        n_in: u32,
        n_out: u32,
        weights: Vec<Weight>,
        bias: Vec<Const>,
    },
    /// `y[k] = x[k]·scale[k] + shift[k]`, exact; one constant pair per element of the whole tensor.
    BatchNorm {
        scale: Vec<Const>,
        shift: Vec<Const>,
    },
    /// `max(x, 0)`.
    Relu,
    /// Per-element rounding and overflow.
    Quantize { q: Vec<Quantizer> },
    /// A design output.
    Output,
    /// The elementwise sum of two or more inputs of one shape, exact.
    Add,
    /// The elementwise product of two inputs of one shape, exact (a variable × variable product, as
    /// attention needs).
    Mul,
    /// Sum, maximum or mean over one axis, exact; the axis is removed.
    Reduce { axis: u32, kind: ReduceKind },
    /// The same elements in the same order under another shape (wiring only).
    Reshape,
    /// Axes permuted as numpy's `transpose(perm)` (wiring only).
    Transpose { perm: Vec<u32> },
    /// Concatenation along an axis (wiring only).
    Concat { axis: u32 },
    /// The same lookup table on every element.
    Table { table: LookupTable },
    /// `y[.., j] = Σ_i T_ij(x[.., i]) + bias[j]` (HGQ2 `QDenseT`), shared over the leading axes like
    /// Dense.
    LookupDense {
        n_in: u32,
        n_out: u32,
        tables: Vec<LutWeight>,
        bias: Vec<Const>,
    },
}

/// The kind of a layer, without its data: what reports, names and the layer table print, and what
/// code compares instead of strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerKind {
    Input,
    Dense,
    BatchNorm,
    Relu,
    Quantize,
    Output,
    Add,
    Mul,
    Reduce,
    Reshape,
    Transpose,
    Concat,
    Table,
    LookupDense,
}

impl LayerKind {
    /// The model.json spelling.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Input => "Input",
            LayerKind::Dense => "Dense",
            LayerKind::BatchNorm => "BatchNorm",
            LayerKind::Relu => "ReLU",
            LayerKind::Quantize => "Quantize",
            LayerKind::Output => "Output",
            LayerKind::Add => "Add",
            LayerKind::Mul => "Mul",
            LayerKind::Reduce => "Reduce",
            LayerKind::Reshape => "Reshape",
            LayerKind::Transpose => "Transpose",
            LayerKind::Concat => "Concat",
            LayerKind::Table => "Table",
            LayerKind::LookupDense => "LookupDense",
        }
    }
}

impl std::fmt::Display for LayerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl LayerOp {
    pub fn layer_kind(&self) -> LayerKind {
        match self {
            LayerOp::Input { .. } => LayerKind::Input,
            LayerOp::Dense { .. } => LayerKind::Dense,
            LayerOp::BatchNorm { .. } => LayerKind::BatchNorm,
            LayerOp::Relu => LayerKind::Relu,
            LayerOp::Quantize { .. } => LayerKind::Quantize,
            LayerOp::Output => LayerKind::Output,
            LayerOp::Add => LayerKind::Add,
            LayerOp::Mul => LayerKind::Mul,
            LayerOp::Reduce { .. } => LayerKind::Reduce,
            LayerOp::Reshape => LayerKind::Reshape,
            LayerOp::Transpose { .. } => LayerKind::Transpose,
            LayerOp::Concat { .. } => LayerKind::Concat,
            LayerOp::Table { .. } => LayerKind::Table,
            LayerOp::LookupDense { .. } => LayerKind::LookupDense,
        }
    }
    /// The model.json spelling of the op.
    pub fn kind(&self) -> &'static str {
        self.layer_kind().name()
    }
}

/// Number of elements of a shape.
pub fn numel(shape: &[u32]) -> usize {
    shape.iter().map(|&d| d as usize).product()
}

/// Row-major strides of a shape.
pub fn strides(shape: &[u32]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1] as usize;
    }
    s
}

/// The shape rule of every op: the output shape given the input shapes and, for ops whose output shape
/// is a field of the file (Input, Reshape), that declared shape. The front end builds layers with it and
/// the verifier re-checks every layer with it. The error says what is wrong, for a message.
pub fn layer_shape(
    op: &LayerOp,
    ins: &[&[u32]],
    declared: Option<&[u32]>,
) -> Result<Vec<u32>, String> {
    let one = |what: &str| -> Result<&[u32], String> {
        match ins {
            [x] => Ok(x),
            _ => Err(format!("{what} takes one input, found {}", ins.len())),
        }
    };
    let last = |x: &[u32]| x.last().copied().unwrap_or(0);
    match op {
        LayerOp::Input { q } => {
            let s = declared.ok_or("an Input declares its shape")?.to_vec();
            if !ins.is_empty() {
                return Err("an Input takes no inputs".into());
            }
            if q.len() != numel(&s) {
                return Err(format!("{} types for {} elements", q.len(), numel(&s)));
            }
            Ok(s)
        }
        LayerOp::Dense {
            n_in,
            n_out,
            weights,
            bias,
        } => {
            let x = one("Dense")?;
            if last(x) != *n_in {
                return Err(format!(
                    "the weight has {n_in} rows but the input's last axis has {} elements (shape {x:?})",
                    last(x)
                ));
            }
            if bias.len() != *n_out as usize
                || weights.iter().any(|w| w.i >= *n_in || w.j >= *n_out)
            {
                return Err("weights or bias out of range".into());
            }
            let mut s = x.to_vec();
            *s.last_mut().ok_or("a Dense input has rank 0")? = *n_out;
            Ok(s)
        }
        LayerOp::LookupDense {
            n_in,
            n_out,
            tables,
            bias,
        } => {
            let x = one("LookupDense")?;
            if last(x) != *n_in {
                return Err(format!(
                    "the tables read {n_in} inputs but the input's last axis has {} elements (shape {x:?})",
                    last(x)
                ));
            }
            if bias.len() != *n_out as usize || tables.iter().any(|t| t.i >= *n_in || t.j >= *n_out)
            {
                return Err("tables or bias out of range".into());
            }
            let mut s = x.to_vec();
            *s.last_mut().ok_or("a LookupDense input has rank 0")? = *n_out;
            Ok(s)
        }
        LayerOp::BatchNorm { scale, shift } => {
            let x = one("BatchNorm")?;
            if scale.len() != numel(x) || shift.len() != numel(x) {
                return Err(format!(
                    "{} constants for {} elements",
                    scale.len(),
                    numel(x)
                ));
            }
            Ok(x.to_vec())
        }
        LayerOp::Quantize { q } => {
            let x = one("Quantize")?;
            if q.len() != numel(x) {
                return Err(format!("{} types for {} elements", q.len(), numel(x)));
            }
            Ok(x.to_vec())
        }
        LayerOp::Relu | LayerOp::Output | LayerOp::Table { .. } => Ok(one(op.kind())?.to_vec()),
        LayerOp::Add => {
            if ins.len() < 2 {
                return Err(format!("Add takes two or more inputs, found {}", ins.len()));
            }
            if let Some(bad) = ins.iter().find(|s| **s != ins[0]) {
                return Err(format!(
                    "Add's inputs must have one shape: {:?} and {bad:?}",
                    ins[0]
                ));
            }
            Ok(ins[0].to_vec())
        }
        LayerOp::Mul => match ins {
            [a, b] if a == b => Ok(a.to_vec()),
            [a, b] => Err(format!("Mul's inputs must have one shape: {a:?} and {b:?}")),
            _ => Err(format!("Mul takes two inputs, found {}", ins.len())),
        },
        LayerOp::Reduce { axis, kind } => {
            let x = one("Reduce")?;
            let a = *axis as usize;
            if a >= x.len() {
                return Err(format!("axis {axis} is out of range for shape {x:?}"));
            }
            if let ReduceKind::Mean { shift } = kind {
                if 1u64 << shift != x[a] as u64 {
                    return Err(format!(
                        "a mean over {} elements is not a power-of-two shift",
                        x[a]
                    ));
                }
            }
            let mut s = x.to_vec();
            s.remove(a);
            if s.is_empty() {
                s.push(1);
            }
            Ok(s)
        }
        LayerOp::Reshape => {
            let x = one("Reshape")?;
            let s = declared.ok_or("a Reshape declares its shape")?.to_vec();
            if numel(&s) != numel(x) {
                return Err(format!(
                    "shape {s:?} has {} elements, the input {x:?} has {}",
                    numel(&s),
                    numel(x)
                ));
            }
            Ok(s)
        }
        LayerOp::Transpose { perm } => {
            let x = one("Transpose")?;
            let mut seen = vec![false; x.len()];
            if perm.len() != x.len() {
                return Err(format!("perm {perm:?} does not match the rank of {x:?}"));
            }
            for &p in perm {
                if p as usize >= x.len() || std::mem::replace(&mut seen[p as usize], true) {
                    return Err(format!(
                        "perm {perm:?} is not a permutation of the axes of {x:?}"
                    ));
                }
            }
            Ok(perm.iter().map(|&p| x[p as usize]).collect())
        }
        LayerOp::Concat { axis } => {
            let first = ins.first().ok_or("Concat takes one or more inputs")?;
            let a = *axis as usize;
            if a >= first.len() {
                return Err(format!("axis {axis} is out of range for shape {first:?}"));
            }
            let mut s = first.to_vec();
            for x in &ins[1..] {
                let same = x.len() == first.len()
                    && x.iter()
                        .zip(*first)
                        .enumerate()
                        .all(|(k, (p, q))| k == a || p == q);
                if !same {
                    return Err(format!("shapes {first:?} and {x:?} differ off axis {axis}"));
                }
                s[a] += x[a];
            }
            Ok(s)
        }
    }
}

/// For a `Transpose` of an input of shape `x` by `perm`: output element `k` is input element `map[k]`.
pub fn transpose_map(x: &[u32], perm: &[u32]) -> Vec<usize> {
    let out: Vec<u32> = perm.iter().map(|&p| x[p as usize]).collect();
    let xs = strides(x);
    let os = strides(&out);
    (0..numel(&out))
        .map(|k| {
            perm.iter()
                .enumerate()
                .map(|(d, &p)| (k / os[d]) % out[d] as usize * xs[p as usize])
                .sum()
        })
        .collect()
}

/// For a `Concat` along `axis`: output element `k` is element `.1` of input `.0`.
pub fn concat_map(ins: &[&[u32]], axis: u32) -> Vec<(usize, usize)> {
    let a = axis as usize;
    let outer: usize = ins[0][..a].iter().map(|&d| d as usize).product();
    let mut map = Vec::new();
    for o in 0..outer {
        for (n, x) in ins.iter().enumerate() {
            let block: usize = x[a..].iter().map(|&d| d as usize).product();
            map.extend((0..block).map(|k| (n, o * block + k)));
        }
    }
    map
}

/// For a `Reduce` over `axis` of shape `x`: the input elements of each output element, in axis order.
pub fn reduce_groups(x: &[u32], axis: u32) -> Vec<Vec<usize>> {
    let a = axis as usize;
    let inner: usize = x[a + 1..].iter().map(|&d| d as usize).product();
    let outer: usize = x[..a].iter().map(|&d| d as usize).product();
    let n = x[a] as usize;
    let mut groups = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            groups.push((0..n).map(|k| (o * n + k) * inner + i).collect());
        }
    }
    groups
}

/// A layer: its user-given name, op, inputs (in order) and output shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: String,
    pub op: LayerOp,
    pub inputs: Vec<LayerId>,
    /// The shape of the tensor the layer produces (outermost first).
    pub shape: Vec<u32>,
    /// Where the layer is in model.json (`nodes[k]`), for messages.
    pub path: String,
}

/// The validated model.
#[derive(Clone, Debug, Default)]
pub struct LayerGraph {
    /// The model's name (any string; legalised before use).
    pub name: String,
    pub graph: StableDiGraph<Layer, u8, u32>,
    /// Layers in a topological order that follows the file where the file allows it (deterministic).
    pub order: Vec<LayerId>,
}

impl Layer {
    /// Number of elements the layer produces.
    pub fn len(&self) -> u32 {
        numel(&self.shape) as u32
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LayerGraph {
    /// Add a layer after its inputs.
    pub fn add(&mut self, layer: Layer) -> LayerId {
        let inputs = layer.inputs.clone();
        let id = LayerId(self.graph.add_node(layer));
        for (port, src) in inputs.into_iter().enumerate() {
            self.graph.add_edge(src.0, id.0, port as u8);
        }
        self.order.push(id);
        id
    }
    pub fn layer(&self, id: LayerId) -> &Layer {
        &self.graph[id.0]
    }
    pub fn layer_mut(&mut self, id: LayerId) -> &mut Layer {
        &mut self.graph[id.0]
    }
    /// Users of a layer, sorted by their position in `order`.
    pub fn users(&self, id: LayerId) -> Vec<LayerId> {
        let mut u: Vec<LayerId> = self
            .graph
            .neighbors_directed(id.0, Direction::Outgoing)
            .map(LayerId)
            .collect();
        u.sort_by_key(|x| self.order.iter().position(|o| o == x));
        u.dedup();
        u
    }
    /// Remove a layer whose users have been rewired (`replace_uses`) first.
    pub fn remove(&mut self, id: LayerId) {
        self.graph.remove_node(id.0);
        self.order.retain(|o| *o != id);
    }
    /// Make every user of `old` use `new` instead.
    pub fn replace_uses(&mut self, old: LayerId, new: LayerId) {
        for u in self.users(old) {
            let layer = self.layer_mut(u);
            for inp in layer.inputs.iter_mut() {
                if *inp == old {
                    *inp = new;
                }
            }
            let ins = layer.inputs.clone();
            let edges: Vec<_> = self
                .graph
                .edges_connecting(old.0, u.0)
                .map(|e| petgraph::visit::EdgeRef::id(&e))
                .collect();
            for e in edges {
                self.graph.remove_edge(e);
            }
            for (port, src) in ins.into_iter().enumerate() {
                if src == new {
                    self.graph.add_edge(new.0, u.0, port as u8);
                }
            }
        }
    }
    /// The single Input layer.
    pub fn input(&self) -> Option<LayerId> {
        self.order
            .iter()
            .copied()
            .find(|l| matches!(self.layer(*l).op, LayerOp::Input { .. }))
    }
    /// Output layers in file order (= `out_data` order).
    pub fn outputs(&self) -> Vec<LayerId> {
        self.order
            .iter()
            .copied()
            .filter(|l| matches!(self.layer(*l).op, LayerOp::Output))
            .collect()
    }
}
