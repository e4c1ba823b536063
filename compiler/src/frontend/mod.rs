//! The front end: model.json (versions 1 and 2) text → a validated [`LayerGraph`], or one clear [`Diagnostic`].
//!
//! We parse to `serde_json::Value` (which reports line and column of malformed JSON) and then walk the
//! value by hand, carrying the JSON path, because every rule of `docs/model-json.md` must name the place
//! that broke it (`nodes[3].weight.data[17]`), which derive-based deserialisation cannot do for
//! semantic checks (a mantissa that does not fit its type, a shape that disagrees with its input).
//! This module validates and builds; it must not fold, prune or otherwise change what the model means.

mod types;

pub use types::parse_type;

use crate::diag::{Diagnostic, Result};
use crate::fixed::{Overflow, Quantizer, Rounding};
use crate::ir::layer::{
    layer_shape, numel, Const, Layer, LayerGraph, LayerId, LayerOp, LookupTable, LutWeight,
    ReduceKind, Weight,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// The `format` field's required value.
pub const FORMAT: &str = "fastml-model";
/// The newest model.json version this compiler reads (it reads every version from 1 up to this).
pub const VERSION: u64 = 2;
/// Longest input vector accepted (a guard against absurd files, far beyond any trigger model).
const MAX_LEN: u64 = 1 << 20;

/// Parse and validate a model.json text. `file` is only used in messages.
pub fn parse_model(text: &str, file: &str) -> Result<LayerGraph> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "the file ends in the middle of a JSON value",
            _ => "this is not valid JSON",
        };
        // serde_json's message ends with " at line L column C"; we print the position ourselves.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        Diagnostic::error(format!("{what}: {msg}"))
            .in_file(file)
            .line_col(e.line(), e.column().max(1))
            .help("model.json must be one JSON object; see docs/model-json.md")
    })?;
    Parser { file }.model(&value)
}

/// Read and parse a model.json file.
pub fn load_model(path: &std::path::Path) -> Result<LayerGraph> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(format!("cannot read the model: {e}"))
            .in_file(&file)
            .help("give the path of a model.json file")
    })?;
    parse_model(&text, &file)
}

struct Parser<'a> {
    file: &'a str,
}

/// The node kinds of each version, for messages.
const KINDS_V1: &[&str] = &["Input", "Dense", "BatchNorm", "ReLU", "Quantize", "Output"];
const KINDS_V2: &[&str] = &[
    "Input",
    "Dense",
    "BatchNorm",
    "ReLU",
    "Quantize",
    "Output",
    "Add",
    "Mul",
    "Reduce",
    "Reshape",
    "Transpose",
    "Concat",
    "Table",
    "LookupDense",
];

/// A node as read, before its inputs are resolved.
struct RawNode<'v> {
    index: usize,
    name: String,
    op: String,
    inputs: Vec<String>,
    obj: &'v Map<String, Value>,
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("an array of {} elements", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

impl<'a> Parser<'a> {
    fn err(&self, path: &str, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(msg).in_file(self.file).at(path)
    }

    fn object<'v>(&self, v: &'v Value, path: &str, what: &str) -> Result<&'v Map<String, Value>> {
        v.as_object().ok_or_else(|| {
            self.err(
                path,
                format!("expected {what} (a JSON object), found {}", describe(v)),
            )
        })
    }

    fn field<'v>(&self, obj: &'v Map<String, Value>, path: &str, key: &str) -> Result<&'v Value> {
        obj.get(key).ok_or_else(|| {
            self.err(path, format!("missing field `{key}`"))
                .help("see docs/model-json.md for the fields of each node")
        })
    }

    fn string<'v>(&self, v: &'v Value, path: &str) -> Result<&'v str> {
        v.as_str()
            .ok_or_else(|| self.err(path, format!("expected a string, found {}", describe(v))))
    }

    fn only_fields(&self, obj: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<()> {
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(self
                    .err(&format!("{path}.{k}"), format!("unknown field `{k}`"))
                    .help(format!("allowed here: {}", allowed.join(", "))));
            }
        }
        Ok(())
    }

    fn model(&self, v: &Value) -> Result<LayerGraph> {
        let top = self.object(v, "$", "the model")?;
        self.only_fields(
            top,
            "$",
            &["format", "version", "name", "description", "nodes"],
        )?;
        let format = self.string(self.field(top, "$", "format")?, "format")?;
        if format != FORMAT {
            return Err(self
                .err("format", format!("expected \"{FORMAT}\", found {format:?}"))
                .help("this does not look like a fastml-compile model.json"));
        }
        let version_v = self.field(top, "$", "version")?;
        let version = match version_v.as_u64() {
            Some(v) if (1..=VERSION).contains(&v) => v,
            _ => {
                return Err(self
                    .err("version", format!("unsupported version {version_v}; this compiler reads versions 1 to {VERSION}"))
                    .help("export the model again with a matching fastml-export, or upgrade fastml-compile"))
            }
        };
        let name = match top.get("name") {
            Some(n) => self.string(n, "name")?.to_string(),
            None => "model".to_string(),
        };
        let nodes_v = self.field(top, "$", "nodes")?;
        let nodes = nodes_v.as_array().ok_or_else(|| {
            self.err(
                "nodes",
                format!("expected an array of nodes, found {}", describe(nodes_v)),
            )
        })?;

        // Pass 1: names, ops, inputs.
        let mut raw = Vec::with_capacity(nodes.len());
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            let p = format!("nodes[{i}]");
            let obj = self.object(n, &p, "a node")?;
            let name = self.string(self.field(obj, &p, "name")?, &format!("{p}.name"))?;
            if name.is_empty() {
                return Err(self.err(&format!("{p}.name"), "a node name must not be empty"));
            }
            let op = self.string(self.field(obj, &p, "op")?, &format!("{p}.op"))?;
            let inputs = match obj.get("inputs") {
                None => vec![],
                Some(v) => {
                    let arr = v.as_array().ok_or_else(|| {
                        self.err(
                            &format!("{p}.inputs"),
                            format!("expected an array of node names, found {}", describe(v)),
                        )
                    })?;
                    arr.iter()
                        .enumerate()
                        .map(|(k, s)| {
                            self.string(s, &format!("{p}.inputs[{k}]"))
                                .map(str::to_string)
                        })
                        .collect::<Result<Vec<_>>>()?
                }
            };
            if let Some(prev) = by_name.insert(name.to_string(), i) {
                return Err(self
                    .err(
                        &format!("{p}.name"),
                        format!("duplicate node name {name:?} (also nodes[{prev}])"),
                    )
                    .help("node names must be unique"));
            }
            raw.push(RawNode {
                index: i,
                name: name.to_string(),
                op: op.to_string(),
                inputs,
                obj,
            });
        }

        // Pass 2: arity and references.
        for n in &raw {
            let p = format!("nodes[{}]", n.index);
            let kinds = if version == 1 { KINDS_V1 } else { KINDS_V2 };
            if !kinds.contains(&n.op.as_str()) {
                let mut d = self
                    .err(&format!("{p}.op"), format!("unknown node kind {:?}", n.op))
                    .help(format!("known kinds: {}", kinds.join(", ")));
                if version == 1 && KINDS_V2.contains(&n.op.as_str()) {
                    d = d.help(format!(
                        "{} is a model.json version 2 op: set \"version\": 2",
                        n.op
                    ));
                }
                return Err(d);
            }
            let (lo, hi) = match n.op.as_str() {
                "Input" => (0, 0),
                "Add" => (2, usize::MAX),
                "Mul" => (2, 2),
                "Concat" => (1, usize::MAX),
                _ => (1, 1),
            };
            if !(lo..=hi).contains(&n.inputs.len()) {
                let want = match (lo, hi) {
                    (a, b) if a == b => format!("{a} input(s)"),
                    (a, _) => format!("{a} or more inputs"),
                };
                return Err(self.err(
                    &format!("{p}.inputs"),
                    format!("a {} node takes {want}, found {}", n.op, n.inputs.len()),
                ));
            }
            for (k, inp) in n.inputs.iter().enumerate() {
                match by_name.get(inp) {
                    None => {
                        return Err(self
                            .err(
                                &format!("{p}.inputs[{k}]"),
                                format!("no node is named {inp:?}"),
                            )
                            .help("inputs name other nodes of this file"))
                    }
                    Some(&j) if raw[j].op == "Output" => {
                        return Err(self.err(
                            &format!("{p}.inputs[{k}]"),
                            format!("{inp:?} is an Output node and cannot feed another node"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        let inputs: Vec<&RawNode> = raw.iter().filter(|n| n.op == "Input").collect();
        if inputs.len() != 1 {
            return Err(self
                .err(
                    "nodes",
                    format!("expected exactly one Input node, found {}", inputs.len()),
                )
                .help("a model has a single Input (a tensor of any shape in version 2)"));
        }
        if !raw.iter().any(|n| n.op == "Output") {
            return Err(self
                .err("nodes", "the model has no Output node")
                .help("add {\"op\": \"Output\", ...}"));
        }

        // Pass 3: a topological order that follows the file where it can (Kahn with the smallest file
        // index first), so the result does not depend on hash order.
        let order = self.topo_order(&raw, &by_name)?;

        // Pass 4: build layers in that order, checking shapes and constants.
        let mut g = LayerGraph {
            name,
            ..Default::default()
        };
        let mut ids: Vec<Option<LayerId>> = vec![None; raw.len()];
        for &i in &order {
            let n = &raw[i];
            let ins: Vec<LayerId> = n
                .inputs
                .iter()
                .map(|s| ids[by_name[s]].expect("topological order puts inputs first"))
                .collect();
            let in_shapes: Vec<Vec<u32>> = ins.iter().map(|l| g.layer(*l).shape.clone()).collect();
            let (op, shape) = self.node(n, &in_shapes, version)?;
            let id = g.add(Layer {
                name: n.name.clone(),
                op,
                inputs: ins,
                shape,
                path: format!("nodes[{}]", n.index),
            });
            ids[i] = Some(id);
        }
        Ok(g)
    }

    fn topo_order(&self, raw: &[RawNode], by_name: &HashMap<String, usize>) -> Result<Vec<usize>> {
        let mut indeg = vec![0usize; raw.len()];
        let mut users: Vec<Vec<usize>> = vec![vec![]; raw.len()];
        for n in raw {
            for inp in &n.inputs {
                let j = by_name[inp];
                indeg[n.index] += 1;
                users[j].push(n.index);
            }
        }
        let mut heap: BinaryHeap<std::cmp::Reverse<usize>> = (0..raw.len())
            .filter(|&i| indeg[i] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut order = Vec::with_capacity(raw.len());
        while let Some(std::cmp::Reverse(i)) = heap.pop() {
            order.push(i);
            for &u in &users[i] {
                indeg[u] -= 1;
                if indeg[u] == 0 {
                    heap.push(std::cmp::Reverse(u));
                }
            }
        }
        if order.len() != raw.len() {
            // Walk back along inputs from a node on a cycle to name the cycle.
            let start = (0..raw.len()).find(|&i| indeg[i] > 0).unwrap_or(0);
            let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
            let mut path = vec![];
            let mut cur = start;
            while !seen.contains_key(&cur) {
                seen.insert(cur, path.len());
                path.push(cur);
                cur = raw[cur]
                    .inputs
                    .iter()
                    .map(|s| by_name[s])
                    .find(|&j| indeg[j] > 0)
                    .unwrap_or(cur);
            }
            let cyc: Vec<String> = path[seen[&cur]..]
                .iter()
                .rev()
                .map(|&i| raw[i].name.clone())
                .collect();
            return Err(self
                .err(
                    &format!("nodes[{}].inputs", raw[cur].index),
                    format!("the graph has a cycle: {} -> {}", cyc.join(" -> "), cyc[0]),
                )
                .help("model.json describes a feed-forward network: inputs must not loop back"));
        }
        Ok(order)
    }

    fn node(&self, n: &RawNode, ins: &[Vec<u32>], version: u64) -> Result<(LayerOp, Vec<u32>)> {
        let p = format!("nodes[{}]", n.index);
        let obj = n.obj;
        fn allow(extra: &[&'static str]) -> Vec<&'static str> {
            ["name", "op", "inputs"]
                .iter()
                .chain(extra)
                .copied()
                .collect()
        }
        let x: &[u32] = ins.first().map(|v| v.as_slice()).unwrap_or(&[]);
        let len = numel(x) as u32;
        let last = x.last().copied().unwrap_or(0);
        if version == 1 && x.len() > 1 {
            return Err(self
                .err(
                    &p,
                    format!(
                        "the input of {:?} has shape {x:?}; version 1 takes vectors",
                        n.name
                    ),
                )
                .help("set \"version\": 2 for tensors"));
        }
        let mut declared: Option<Vec<u32>> = None;
        let op = match n.op.as_str() {
            "Input" => {
                self.only_fields(obj, &p, &allow(&["shape", "type", "types"]))?;
                let shape = self.shape(self.field(obj, &p, "shape")?, &format!("{p}.shape"))?;
                if version == 1 && shape.len() != 1 {
                    return Err(self
                        .err(
                            &format!("{p}.shape"),
                            format!(
                                "expected a vector shape [n], found {} dimensions",
                                shape.len()
                            ),
                        )
                        .help("version 1 models take one flat input vector; set \"version\": 2 for tensors"));
                }
                self.check_numel(&shape, &format!("{p}.shape"))?;
                let q = self.quantizers(obj, &p, numel(&shape) as u32)?;
                declared = Some(shape);
                LayerOp::Input { q }
            }
            "Dense" => {
                self.only_fields(obj, &p, &allow(&["weight", "bias"]))?;
                let n_in = last;
                let wp = format!("{p}.weight");
                let (wshape, w) = self.tensor(self.field(obj, &p, "weight")?, &wp)?;
                if wshape.len() != 2 || wshape[0] != n_in {
                    return Err(self
                        .err(&format!("{wp}.shape"), format!("expected shape [{n_in}, n_out] (the input's last axis has {n_in} elements), found {wshape:?}"))
                        .help("Dense weights use Keras's kernel layout: [inputs, outputs]"));
                }
                let n_out = wshape[1];
                let bias = self.bias(obj, &p, n_out)?;
                let weights = w
                    .into_iter()
                    .enumerate()
                    .map(|(k, w)| Weight {
                        i: (k / n_out as usize) as u32,
                        j: (k % n_out as usize) as u32,
                        w,
                    })
                    .collect();
                LayerOp::Dense {
                    n_in,
                    n_out,
                    weights,
                    bias,
                }
            }
            "BatchNorm" => {
                self.only_fields(obj, &p, &allow(&["scale", "shift"]))?;
                let get = |key: &str| -> Result<Vec<Const>> {
                    let kp = format!("{p}.{key}");
                    let (s, t) = self.tensor(self.field(obj, &p, key)?, &kp)?;
                    if s.as_slice() == x {
                        Ok(t)
                    } else if s == [last] {
                        // Broadcast over the leading axes.
                        Ok((0..len as usize).map(|k| t[k % last as usize]).collect())
                    } else {
                        Err(self.err(
                            &format!("{kp}.shape"),
                            format!("expected shape [{last}] (the input's last axis) or {x:?} (the input's shape), found {s:?}"),
                        ))
                    }
                };
                let scale = get("scale")?;
                let shift = get("shift")?;
                LayerOp::BatchNorm { scale, shift }
            }
            "ReLU" => {
                self.only_fields(obj, &p, &allow(&[]))?;
                LayerOp::Relu
            }
            "Quantize" => {
                self.only_fields(obj, &p, &allow(&["type", "types"]))?;
                let q = self.quantizers(obj, &p, len)?;
                LayerOp::Quantize { q }
            }
            "Output" => {
                self.only_fields(obj, &p, &allow(&[]))?;
                LayerOp::Output
            }
            "Add" => {
                self.only_fields(obj, &p, &allow(&[]))?;
                LayerOp::Add
            }
            "Mul" => {
                self.only_fields(obj, &p, &allow(&[]))?;
                LayerOp::Mul
            }
            "Reduce" => {
                self.only_fields(obj, &p, &allow(&["axis", "kind"]))?;
                let axis = self.axis(obj, &p, x.len())?;
                let kp = format!("{p}.kind");
                let kind = match self.string(self.field(obj, &p, "kind")?, &kp)? {
                    "sum" => ReduceKind::Sum,
                    "max" => ReduceKind::Max,
                    "mean" => {
                        let d = x[axis as usize];
                        if !d.is_power_of_two() {
                            return Err(self
                                .err(&kp, format!("a mean over an axis of {d} elements is not exact in fixed point"))
                                .help("mean needs a power-of-two axis length (an exact shift); use \"sum\" and a constant scale otherwise"));
                        }
                        ReduceKind::Mean {
                            shift: d.trailing_zeros(),
                        }
                    }
                    other => {
                        return Err(self
                            .err(&kp, format!("unknown reduction {other:?}"))
                            .help("expected \"sum\", \"max\" or \"mean\""))
                    }
                };
                LayerOp::Reduce { axis, kind }
            }
            "Reshape" => {
                self.only_fields(obj, &p, &allow(&["shape"]))?;
                let sp = format!("{p}.shape");
                let sv = self.field(obj, &p, "shape")?;
                let shape = self.reshape_shape(sv, &sp, len)?;
                declared = Some(shape);
                LayerOp::Reshape
            }
            "Transpose" => {
                self.only_fields(obj, &p, &allow(&["perm"]))?;
                let pp = format!("{p}.perm");
                let pv = self.field(obj, &p, "perm")?;
                let perm = pv
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_u64().map(|k| k as u32)).collect::<Option<Vec<_>>>())
                    .unwrap_or(None)
                    .ok_or_else(|| self.err(&pp, format!("expected a permutation of the axes (an array of integers), found {}", describe(pv))))?;
                LayerOp::Transpose { perm }
            }
            "Concat" => {
                self.only_fields(obj, &p, &allow(&["axis"]))?;
                let axis = self.axis(obj, &p, x.len())?;
                LayerOp::Concat { axis }
            }
            "Table" => {
                self.only_fields(obj, &p, &allow(&["domain", "table"]))?;
                let table = self.lookup_table(obj, &p)?;
                LayerOp::Table { table }
            }
            "LookupDense" => {
                self.only_fields(obj, &p, &allow(&["n_out", "tables", "bias"]))?;
                let n_in = last;
                let op_ = format!("{p}.n_out");
                let nv = self.field(obj, &p, "n_out")?;
                let n_out = match nv.as_u64() {
                    Some(v) if (1..=MAX_LEN).contains(&v) => v as u32,
                    _ => {
                        return Err(self.err(
                            &op_,
                            format!(
                                "expected a positive number of outputs, found {}",
                                describe(nv)
                            ),
                        ))
                    }
                };
                let tp = format!("{p}.tables");
                let tv = self.field(obj, &p, "tables")?;
                let arr = tv.as_array().ok_or_else(|| {
                    self.err(
                        &tp,
                        format!("expected an array of tables, found {}", describe(tv)),
                    )
                })?;
                let mut seen = std::collections::HashSet::new();
                let mut tables = Vec::with_capacity(arr.len());
                for (k, t) in arr.iter().enumerate() {
                    let ep = format!("{tp}[{k}]");
                    let o = self.object(t, &ep, "a table")?;
                    self.only_fields(o, &ep, &["in", "out", "domain", "table"])?;
                    let index = |key: &str, bound: u32| -> Result<u32> {
                        let kp = format!("{ep}.{key}");
                        let v = self.field(o, &ep, key)?;
                        match v.as_u64() {
                            Some(i) if i < bound as u64 => Ok(i as u32),
                            _ => Err(self.err(
                                &kp,
                                format!("expected an index below {bound}, found {}", describe(v)),
                            )),
                        }
                    };
                    let i = index("in", n_in)?;
                    let j = index("out", n_out)?;
                    if !seen.insert((i, j)) {
                        return Err(self
                            .err(&ep, format!("a second table for input {i} and output {j}"))
                            .help("each (in, out) pair has at most one table"));
                    }
                    let table = self.lookup_table(o, &ep)?;
                    tables.push(LutWeight { i, j, table });
                }
                let bias = self.bias(obj, &p, n_out)?;
                LayerOp::LookupDense {
                    n_in,
                    n_out,
                    tables,
                    bias,
                }
            }
            other => {
                return Err(self.err(&format!("{p}.op"), format!("unknown node kind {other:?}")))
            }
        };
        let refs: Vec<&[u32]> = ins.iter().map(|v| v.as_slice()).collect();
        let shape = layer_shape(&op, &refs, declared.as_deref())
            .map_err(|m| self.err(&p, format!("{} node {:?}: {m}", n.op, n.name)))?;
        Ok((op, shape))
    }

    /// An optional `bias` tensor of shape `[n_out]` (zeros when absent).
    fn bias(&self, obj: &Map<String, Value>, p: &str, n_out: u32) -> Result<Vec<Const>> {
        match obj.get("bias") {
            None => Ok(vec![Const::ZERO; n_out as usize]),
            Some(b) => {
                let bp = format!("{p}.bias");
                let (bshape, b) = self.tensor(b, &bp)?;
                if bshape != [n_out] {
                    return Err(self.err(
                        &format!("{bp}.shape"),
                        format!("expected shape [{n_out}], found {bshape:?}"),
                    ));
                }
                Ok(b)
            }
        }
    }

    /// An `axis` field: an integer, negative counting from the end.
    fn axis(&self, obj: &Map<String, Value>, p: &str, rank: usize) -> Result<u32> {
        let ap = format!("{p}.axis");
        let v = self.field(obj, p, "axis")?;
        let a = v.as_i64().ok_or_else(|| {
            self.err(
                &ap,
                format!("expected an integer axis, found {}", describe(v)),
            )
        })?;
        let r = rank as i64;
        let k = if a < 0 { a + r } else { a };
        if !(0..r).contains(&k) {
            return Err(self.err(
                &ap,
                format!("axis {a} is out of range for an input of rank {rank}"),
            ));
        }
        Ok(k as u32)
    }

    /// A Reshape's target shape; one entry may be -1 (inferred from the element count).
    fn reshape_shape(&self, v: &Value, path: &str, len: u32) -> Result<Vec<u32>> {
        let arr = v.as_array().ok_or_else(|| {
            self.err(
                path,
                format!(
                    "expected a shape (an array of integers), found {}",
                    describe(v)
                ),
            )
        })?;
        let mut dims: Vec<Option<u32>> = Vec::with_capacity(arr.len());
        for (k, d) in arr.iter().enumerate() {
            match d.as_i64() {
                Some(-1) if !dims.contains(&None) => dims.push(None),
                Some(x) if (1..=MAX_LEN as i64).contains(&x) => dims.push(Some(x as u32)),
                _ => {
                    return Err(self.err(
                        &format!("{path}[{k}]"),
                        format!(
                            "expected a positive dimension (or one -1), found {}",
                            describe(d)
                        ),
                    ))
                }
            }
        }
        let known: u64 = dims.iter().flatten().map(|&d| d as u64).product();
        dims.iter()
            .map(|d| match d {
                Some(d) => Ok(*d),
                None if known > 0 && (len as u64).is_multiple_of(known) => {
                    Ok((len as u64 / known) as u32)
                }
                None => Err(self.err(
                    path,
                    format!("no dimension makes {len} elements from the others"),
                )),
            })
            .collect()
    }

    fn check_numel(&self, shape: &[u32], path: &str) -> Result<()> {
        let n: u64 = shape.iter().map(|&d| d as u64).product();
        if n > MAX_LEN {
            return Err(self.err(
                path,
                format!("a tensor of {n} elements is too large (at most {MAX_LEN})"),
            ));
        }
        Ok(())
    }

    /// `domain` + `table` of a Table node or a LookupDense entry.
    fn lookup_table(&self, o: &Map<String, Value>, p: &str) -> Result<LookupTable> {
        let dp = format!("{p}.domain");
        let domain = self.qtype(self.field(o, p, "domain")?, &dp)?;
        if domain.ty.width > 20 {
            return Err(self
                .err(
                    &dp,
                    format!(
                        "a table over {} has 2^{} entries",
                        domain.ty, domain.ty.width
                    ),
                )
                .help("table domains are at most 20 bits wide"));
        }
        let tp = format!("{p}.table");
        let (shape, entries) = self.tensor(self.field(o, p, "table")?, &tp)?;
        let n = 1u32 << domain.ty.width;
        if shape != [n] {
            return Err(self
                .err(
                    &format!("{tp}.shape"),
                    format!(
                        "expected shape [{n}] (one entry per value of {}), found {shape:?}",
                        domain.ty
                    ),
                )
                .help(
                    "entry k is the value for the domain's mantissa lo + k, in ascending order",
                ));
        }
        Ok(LookupTable { domain, entries })
    }

    fn shape(&self, v: &Value, path: &str) -> Result<Vec<u32>> {
        let arr = v.as_array().ok_or_else(|| {
            self.err(
                path,
                format!(
                    "expected a shape (an array of positive integers), found {}",
                    describe(v)
                ),
            )
        })?;
        arr.iter()
            .enumerate()
            .map(|(k, d)| match d.as_u64() {
                Some(x) if (1..=MAX_LEN).contains(&x) => Ok(x as u32),
                _ => Err(self.err(
                    &format!("{path}[{k}]"),
                    format!(
                        "expected a dimension between 1 and {MAX_LEN}, found {}",
                        describe(d)
                    ),
                )),
            })
            .collect()
    }

    /// `type` (one for all) or `types` (one per element) → quantisers.
    fn quantizers(&self, obj: &Map<String, Value>, p: &str, len: u32) -> Result<Vec<Quantizer>> {
        match (obj.get("type"), obj.get("types")) {
            (Some(_), Some(_)) => Err(self.err(
                &format!("{p}.types"),
                "give either `type` or `types`, not both",
            )),
            (None, None) => Err(self
                .err(p, "missing field `type`")
                .help("a type such as \"fixed<16,6>\" or \"ufixed<6,0,RND_CONV,SAT>\"")),
            (Some(t), None) => {
                let tp = format!("{p}.type");
                let q = self.qtype(t, &tp)?;
                Ok(vec![q; len as usize])
            }
            (None, Some(ts)) => {
                let tp = format!("{p}.types");
                let arr = ts.as_array().ok_or_else(|| {
                    self.err(
                        &tp,
                        format!("expected an array of types, found {}", describe(ts)),
                    )
                })?;
                if arr.len() != len as usize {
                    return Err(self.err(
                        &tp,
                        format!(
                            "expected {len} types (one per element), found {}",
                            arr.len()
                        ),
                    ));
                }
                arr.iter()
                    .enumerate()
                    .map(|(k, t)| self.qtype(t, &format!("{tp}[{k}]")))
                    .collect()
            }
        }
    }

    fn qtype(&self, v: &Value, path: &str) -> Result<Quantizer> {
        let s = self.string(v, path)?;
        parse_type(s).map_err(|m| {
            self.err(path, format!("bad type {s:?}: {m}")).help(
                "write fixed<W,I> or ufixed<W,I>, optionally with a rounding mode (TRN, TRN_ZERO, RND, RND_ZERO, RND_INF, RND_MIN_INF, RND_CONV) and an overflow mode (WRAP, SAT, SAT_ZERO, SAT_SYM)",
            )
        })
    }

    /// A tensor: shape, and mantissas that fit their types.
    fn tensor(&self, v: &Value, p: &str) -> Result<(Vec<u32>, Vec<Const>)> {
        let obj = self.object(v, p, "a tensor")?;
        self.only_fields(obj, p, &["shape", "type", "types", "data"])?;
        let shape = self.shape(self.field(obj, p, "shape")?, &format!("{p}.shape"))?;
        let count: u64 = shape.iter().map(|&d| d as u64).product();
        if count > MAX_LEN * 64 {
            return Err(self.err(
                &format!("{p}.shape"),
                format!("tensor of {count} elements is too large"),
            ));
        }
        let q = self.quantizers(obj, p, count as u32)?;
        let dp = format!("{p}.data");
        let data_v = self.field(obj, p, "data")?;
        let data = data_v.as_array().ok_or_else(|| {
            self.err(
                &dp,
                format!(
                    "expected an array of integer mantissas, found {}",
                    describe(data_v)
                ),
            )
        })?;
        if data.len() as u64 != count {
            return Err(self.err(
                &dp,
                format!(
                    "expected {count} mantissas (shape {shape:?}), found {}",
                    data.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(data.len());
        for (k, (d, q)) in data.iter().zip(&q).enumerate() {
            let m: i128 = if let Some(x) = d.as_i64() {
                x as i128
            } else if let Some(x) = d.as_u64() {
                x as i128
            } else {
                return Err(self
                    .err(
                        &format!("{dp}[{k}]"),
                        format!("expected an integer mantissa, found {}", describe(d)),
                    )
                    .help("tensors store integer mantissas: the value is data[k] * 2^-(W-I)"));
            };
            if !q.ty.contains(m) {
                return Err(self
                    .err(
                        &format!("{dp}[{k}]"),
                        format!(
                            "mantissa {m} does not fit {} (allowed {}..={})",
                            q.ty,
                            q.ty.min_mant(),
                            q.ty.max_mant()
                        ),
                    )
                    .help("store the mantissa of the quantised value, or declare a wider type"));
            }
            out.push(Const { m, frac: q.ty.frac });
        }
        Ok((shape, out))
    }
}

/// Defaults of a type string without explicit modes (as in `ap_fixed`).
pub const DEFAULT_ROUNDING: Rounding = Rounding::Trn;
pub const DEFAULT_OVERFLOW: Overflow = Overflow::Wrap;
