//! The layer IR: the model as the user wrote it (a petgraph DAG of tensor operations with exact
//! constants), after validation. Layer-level passes (BatchNorm folding, pruning) run here; the
//! `lower-cmvm` pass turns it into the scalar [`crate::ir::dfg::Dfg`].
//!
//! Activations are vectors; every element has its own exact type, so per-weight and per-activation
//! quantisation (HGQ) need no special case. This file holds data only: no evaluation, no lowering.

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

/// Tensor operations (model.json v1 node kinds).
#[derive(Clone, Debug, PartialEq)]
pub enum LayerOp {
    /// The design input, one quantiser per element (applied to real inputs by `predict`).
    Input { q: Vec<Quantizer> },
    /// `y[j] = Σ w·x[i] + bias[j]`, exact. `weights` lists (i, j, w) in row-major order; after
    /// `prune-zero-weights` it holds no zero entries.
    Dense {
        n_in: u32,
        n_out: u32,
        weights: Vec<Weight>,
        bias: Vec<Const>,
    },
    /// `y[j] = x[j]·scale[j] + shift[j]`, exact.
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
}

impl LayerOp {
    pub fn kind(&self) -> &'static str {
        match self {
            LayerOp::Input { .. } => "Input",
            LayerOp::Dense { .. } => "Dense",
            LayerOp::BatchNorm { .. } => "BatchNorm",
            LayerOp::Relu => "ReLU",
            LayerOp::Quantize { .. } => "Quantize",
            LayerOp::Output => "Output",
        }
    }
}

/// A layer: its user-given name, op, inputs (in order) and output vector length.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: String,
    pub op: LayerOp,
    pub inputs: Vec<LayerId>,
    /// Number of elements the layer produces.
    pub len: u32,
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
