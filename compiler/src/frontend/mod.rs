//! The front end: model.json v1 text → a validated [`LayerGraph`], or one clear [`Diagnostic`].
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
use crate::ir::layer::{Const, Layer, LayerGraph, LayerId, LayerOp, Weight};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// The `format` field's required value.
pub const FORMAT: &str = "fastml-model";
/// The model.json version this compiler reads.
pub const VERSION: u64 = 1;
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
        let version = self.field(top, "$", "version")?;
        if version.as_u64() != Some(VERSION) {
            return Err(self
                .err("version", format!("unsupported version {version}; this compiler reads version {VERSION}"))
                .help("export the model again with a matching fastml-export, or upgrade fastml-compile"));
        }
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
            let want = match n.op.as_str() {
                "Input" => 0,
                "Dense" | "BatchNorm" | "ReLU" | "Quantize" | "Output" => 1,
                other => {
                    return Err(self
                        .err(&format!("{p}.op"), format!("unknown node kind {other:?}"))
                        .help("known kinds: Input, Dense, BatchNorm, ReLU, Quantize, Output"))
                }
            };
            if n.inputs.len() != want {
                return Err(self.err(
                    &format!("{p}.inputs"),
                    format!(
                        "a {} node takes {want} input(s), found {}",
                        n.op,
                        n.inputs.len()
                    ),
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
                .help("version 1 models have a single input vector"));
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
            let in_len = ins.first().map(|l| g.layer(*l).len);
            let (op, len) = self.node(n, in_len)?;
            let id = g.add(Layer {
                name: n.name.clone(),
                op,
                inputs: ins,
                len,
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

    fn node(&self, n: &RawNode, in_len: Option<u32>) -> Result<(LayerOp, u32)> {
        let p = format!("nodes[{}]", n.index);
        let obj = n.obj;
        let common = ["name", "op", "inputs"];
        fn allow(extra: &[&'static str]) -> Vec<&'static str> {
            ["name", "op", "inputs"]
                .iter()
                .chain(extra)
                .copied()
                .collect()
        }
        match n.op.as_str() {
            "Input" => {
                self.only_fields(obj, &p, &allow(&["shape", "type", "types"]))?;
                let shape = self.shape(self.field(obj, &p, "shape")?, &format!("{p}.shape"))?;
                if shape.len() != 1 {
                    return Err(self
                        .err(
                            &format!("{p}.shape"),
                            format!(
                                "expected a vector shape [n], found {} dimensions",
                                shape.len()
                            ),
                        )
                        .help("version 1 models take one flat input vector"));
                }
                let len = shape[0];
                let q = self.quantizers(obj, &p, len)?;
                Ok((LayerOp::Input { q }, len))
            }
            "Dense" => {
                self.only_fields(obj, &p, &allow(&["weight", "bias"]))?;
                let n_in = in_len.unwrap_or(0);
                let wp = format!("{p}.weight");
                let (wshape, w) = self.tensor(self.field(obj, &p, "weight")?, &wp)?;
                if wshape.len() != 2 || wshape[0] != n_in {
                    return Err(self
                        .err(&format!("{wp}.shape"), format!("expected shape [{n_in}, n_out] (the input has {n_in} elements), found {wshape:?}"))
                        .help("Dense weights use Keras's kernel layout: [inputs, outputs]"));
                }
                let n_out = wshape[1];
                let bias = match obj.get("bias") {
                    None => vec![Const::ZERO; n_out as usize],
                    Some(b) => {
                        let bp = format!("{p}.bias");
                        let (bshape, b) = self.tensor(b, &bp)?;
                        if bshape != [n_out] {
                            return Err(self.err(
                                &format!("{bp}.shape"),
                                format!("expected shape [{n_out}], found {bshape:?}"),
                            ));
                        }
                        b
                    }
                };
                let weights = w
                    .into_iter()
                    .enumerate()
                    .map(|(k, w)| Weight {
                        i: (k / n_out as usize) as u32,
                        j: (k % n_out as usize) as u32,
                        w,
                    })
                    .collect();
                Ok((
                    LayerOp::Dense {
                        n_in,
                        n_out,
                        weights,
                        bias,
                    },
                    n_out,
                ))
            }
            "BatchNorm" => {
                self.only_fields(obj, &p, &allow(&["scale", "shift"]))?;
                let len = in_len.unwrap_or(0);
                let get = |key: &str| -> Result<Vec<Const>> {
                    let kp = format!("{p}.{key}");
                    let (s, t) = self.tensor(self.field(obj, &p, key)?, &kp)?;
                    if s != [len] {
                        return Err(self.err(
                            &format!("{kp}.shape"),
                            format!("expected shape [{len}] (the input's length), found {s:?}"),
                        ));
                    }
                    Ok(t)
                };
                let scale = get("scale")?;
                let shift = get("shift")?;
                Ok((LayerOp::BatchNorm { scale, shift }, len))
            }
            "ReLU" => {
                self.only_fields(obj, &p, &common)?;
                Ok((LayerOp::Relu, in_len.unwrap_or(0)))
            }
            "Quantize" => {
                self.only_fields(obj, &p, &allow(&["type", "types"]))?;
                let len = in_len.unwrap_or(0);
                let q = self.quantizers(obj, &p, len)?;
                Ok((LayerOp::Quantize { q }, len))
            }
            "Output" => {
                self.only_fields(obj, &p, &common)?;
                Ok((LayerOp::Output, in_len.unwrap_or(0)))
            }
            other => Err(self.err(&format!("{p}.op"), format!("unknown node kind {other:?}"))),
        }
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
