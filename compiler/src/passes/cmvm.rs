//! Constant matrix-vector products as shared adder graphs: the optimiser behind `lower-cmvm`.
//!
//! Input: for each output of a layer, its CSD terms `±x·2^s` (and a constant). Two-term patterns
//! `x_a + (±x_b << Δ)` that occur in several outputs (or twice in one) are computed once: a greedy
//! common-subexpression elimination in the manner of da4ml (arXiv 2507.04535) and Hcub-style MCM
//! algorithms, picking at each step the most frequent pattern (ties: the shallowest result, then the
//! smallest key, so the result is deterministic). Occurrence counts are kept incrementally (a count map
//! plus a max-heap with lazy deletion: stale entries are skipped when popped), so a step costs
//! O(terms of the touched outputs · log), not a rescan.
//! What remains of each output is summed shallowest-first (a Huffman tree on adder depth), which keeps
//! the critical path as short as the terms allow.
//!
//! Values never change: every new node is an exact `Add`, and the lowering tests compare golden models.
//! This module must not decide widths or stages (intervals come from `Dfg::add`, stages from `schedule`).

use super::const_fold::add_simplified;
use crate::diag::Result;
use crate::ir::dfg::{Dfg, LayerTag, Op, Term, ValueId};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BinaryHeap;

/// A two-term pattern `src_a + (±src_b << delta)`, canonical: `(a, 0) <= (b, delta)` in (src, shift)
/// order, so the same sum is found whichever term comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    a: u32,
    b: u32,
    delta: i32,
    neg: bool,
}

/// The pattern two terms form (if they can share: not a constant, not the same term), and the term
/// that replaces them: `(key, shift, neg)` with `p + q = ±(v << shift)`.
fn pattern(p: &Term, q: &Term) -> Option<(Key, i32, bool)> {
    let (p, q) = if (p.src, p.shift) <= (q.src, q.shift) {
        (p, q)
    } else {
        (q, p)
    };
    if p.src == q.src && p.shift == q.shift {
        return None;
    }
    Some((
        Key {
            a: p.src.index() as u32,
            b: q.src.index() as u32,
            delta: q.shift - p.shift,
            neg: p.neg != q.neg,
        },
        p.shift,
        p.neg,
    ))
}

/// Settings of the optimiser.
#[derive(Clone, Copy, Debug)]
pub struct CseOptions {
    /// Share patterns at all (off: plain adder trees, the first lowering).
    pub enabled: bool,
    /// A shared sub-sum may be at most this many adders deep.
    pub max_depth: u32,
    /// Never make a layer deeper (in adders) than unshared balanced trees would: if sharing does, retry
    /// with a smaller `max_depth`, down to no sharing. The latency/area knob: off trades stages for LUTs.
    pub keep_depth: bool,
}

impl Default for CseOptions {
    fn default() -> Self {
        CseOptions {
            enabled: true,
            max_depth: 4,
            keep_depth: true,
        }
    }
}

struct State {
    /// The terms of each output still to be summed.
    outputs: Vec<Vec<Term>>,
    /// Occurrences of each pattern (pairs of terms in one output).
    count: HashMap<Key, u32>,
    /// `(count, depth, key)` pushed whenever a pattern's count rises to >= 2; an entry is stale (and
    /// skipped) when the pattern's current count differs.
    ranked: BinaryHeap<(u32, std::cmp::Reverse<u32>, std::cmp::Reverse<Key>)>,
    /// Adder depth of each value by node index (values from before this layer: 0).
    depth: Vec<u32>,
    /// How many input terms each value sums, by node index (values from before this layer: 1).
    leaves: Vec<u32>,
    /// Only share sub-sums that are as shallow as balanced trees (with `keep_depth`).
    balanced: bool,
    /// The outputs whose terms use a value (may list outputs that no longer do: a superset is safe).
    used_in: HashMap<ValueId, Vec<usize>>,
}

fn vid(i: u32) -> ValueId {
    ValueId(petgraph::graph::NodeIndex::new(i as usize))
}

/// `⌈log2 n⌉`: the depth of a balanced adder tree over `n` terms.
fn ceil_log2(n: u32) -> u32 {
    32 - (n.max(1) - 1).leading_zeros()
}

impl State {
    fn depth_of(&self, v: ValueId) -> u32 {
        self.depth.get(v.index()).copied().unwrap_or(0)
    }
    fn set(&mut self, v: ValueId, depth: u32, leaves: u32) {
        if self.depth.len() <= v.index() {
            self.depth.resize(v.index() + 1, 0);
            self.leaves.resize(v.index() + 1, 1);
        }
        self.depth[v.index()] = depth;
        self.leaves[v.index()] = leaves;
    }
    fn key_depth(&self, k: &Key) -> u32 {
        self.depth_of(vid(k.a)).max(self.depth_of(vid(k.b))) + 1
    }
    fn leaves_of(&self, v: ValueId) -> u32 {
        self.leaves.get(v.index()).copied().unwrap_or(1)
    }
    /// A pattern may be shared only if its sum is as shallow as a balanced tree over the same input
    /// terms (so sharing never lengthens the critical path) and within the depth bound.
    fn admissible(&self, k: &Key, max_depth: u32) -> bool {
        let d = self.key_depth(k);
        d <= max_depth
            && (!self.balanced
                || d <= ceil_log2(self.leaves_of(vid(k.a)) + self.leaves_of(vid(k.b))))
    }
    fn bump(&mut self, k: Key, by: i64, max_depth: u32) {
        let c = self.count.entry(k).or_insert(0);
        let new = (*c as i64 + by) as u32;
        *c = new;
        if new == 0 {
            self.count.remove(&k);
        } else if by > 0 && new >= 2 && self.admissible(&k, max_depth) {
            self.ranked.push((
                new,
                std::cmp::Reverse(self.key_depth(&k)),
                std::cmp::Reverse(k),
            ));
        }
    }
    /// The best pattern with a current count >= 2, discarding stale heap entries.
    fn best(&mut self) -> Option<Key> {
        while let Some((c, _, std::cmp::Reverse(k))) = self.ranked.pop() {
            if self.count.get(&k).copied() == Some(c) {
                return Some(k);
            }
        }
        None
    }
    fn add_pairs_of(&mut self, out: usize, t: usize, sign: i64, max_depth: u32) {
        let terms = &self.outputs[out];
        let keys: Vec<Key> = (0..terms.len())
            .filter(|&u| u != t)
            .filter_map(|u| pattern(&terms[t], &terms[u]).map(|p| p.0))
            .collect();
        for k in keys {
            self.bump(k, sign, max_depth);
        }
    }
}

/// Build each output's sum of `terms[j]` plus `consts[j]` (a value to add, e.g. the bias node, or
/// `None`) into `dfg`, sharing common sub-sums as `opts` allow. Returns one value per output.
pub fn build(
    dfg: &mut Dfg,
    terms: Vec<Vec<Term>>,
    consts: Vec<Option<ValueId>>,
    tag: LayerTag,
    opts: CseOptions,
) -> Result<Vec<ValueId>> {
    if !opts.enabled || !opts.keep_depth {
        return build_once(dfg, terms, consts, tag, opts).map(|r| r.0);
    }
    // The depth unshared balanced trees reach.
    let plain = terms
        .iter()
        .zip(&consts)
        .map(|(t, c)| ceil_log2(t.len() as u32 + c.is_some() as u32))
        .max()
        .unwrap_or(0);
    let mut max_depth = opts.max_depth;
    while max_depth > 0 {
        let mut trial = dfg.clone();
        let o = CseOptions { max_depth, ..opts };
        let (outs, depth) = build_once(&mut trial, terms.clone(), consts.clone(), tag, o)?;
        if depth <= plain {
            *dfg = trial;
            return Ok(outs);
        }
        max_depth -= 1;
    }
    let o = CseOptions {
        enabled: false,
        ..opts
    };
    build_once(dfg, terms, consts, tag, o).map(|r| r.0)
}

/// One attempt: returns the outputs and the deepest output's adder depth.
fn build_once(
    dfg: &mut Dfg,
    terms: Vec<Vec<Term>>,
    consts: Vec<Option<ValueId>>,
    tag: LayerTag,
    opts: CseOptions,
) -> Result<(Vec<ValueId>, u32)> {
    let mut st = State {
        outputs: terms,
        count: HashMap::default(),
        ranked: BinaryHeap::new(),
        depth: Vec::new(),
        leaves: Vec::new(),
        balanced: opts.keep_depth,
        used_in: HashMap::default(),
    };
    for (o, terms) in st.outputs.iter().enumerate() {
        for t in terms {
            let list = st.used_in.entry(t.src).or_default();
            if list.last() != Some(&o) {
                list.push(o);
            }
        }
    }
    if opts.enabled {
        for o in 0..st.outputs.len() {
            let n = st.outputs[o].len();
            for t in 0..n {
                for u in (t + 1)..n {
                    if let Some((k, _, _)) = pattern(&st.outputs[o][t], &st.outputs[o][u]) {
                        st.bump(k, 1, opts.max_depth);
                    }
                }
            }
        }
    }
    while let Some(key) = st.best() {
        let a = ValueId(petgraph::graph::NodeIndex::new(key.a as usize));
        let b = ValueId(petgraph::graph::NodeIndex::new(key.b as usize));
        let v = add_simplified(
            dfg,
            Op::Add {
                a: Term {
                    src: a,
                    shift: 0,
                    neg: false,
                },
                b: Term {
                    src: b,
                    shift: key.delta,
                    neg: key.neg,
                },
            },
            tag,
        )?;
        let d = st.key_depth(&key);
        let l = st.leaves_of(a) + st.leaves_of(b);
        st.set(v, d, l);
        let mut replaced = 0;
        // Only outputs that use both sources can hold the pattern (ascending order, deterministic).
        let (ua, ub) = (
            st.used_in.get(&a).cloned().unwrap_or_default(),
            st.used_in.get(&b).cloned().unwrap_or_default(),
        );
        let candidates: Vec<usize> = ua
            .into_iter()
            .filter(|o| ub.binary_search(o).is_ok())
            .collect();
        for o in candidates {
            // Replace non-overlapping occurrences in this output, one at a time.
            loop {
                let terms = &st.outputs[o];
                // Only terms of the pattern's two sources can form it.
                let cand: Vec<usize> = (0..terms.len())
                    .filter(|&t| terms[t].src == a || terms[t].src == b)
                    .collect();
                let mut hit = None;
                'find: for (x, &t) in cand.iter().enumerate() {
                    for &u in &cand[x + 1..] {
                        if let Some((k, shift, neg)) = pattern(&terms[t], &terms[u]) {
                            if k == key {
                                hit = Some((t, u, shift, neg));
                                break 'find;
                            }
                        }
                    }
                }
                let Some((t, u, shift, neg)) = hit else { break };
                // Retract every pair the two old terms formed, then remove them (higher index first).
                st.add_pairs_of(o, u, -1, opts.max_depth);
                st.add_pairs_of(o, t, -1, opts.max_depth);
                // The pair (t, u) itself was retracted twice: add it back once.
                st.bump(key, 1, opts.max_depth);
                st.outputs[o].remove(u);
                st.outputs[o].remove(t);
                st.outputs[o].push(Term { src: v, shift, neg });
                let list = st.used_in.entry(v).or_default();
                if list.last() != Some(&o) {
                    list.push(o);
                }
                let last = st.outputs[o].len() - 1;
                st.add_pairs_of(o, last, 1, opts.max_depth);
                replaced += 1;
            }
        }
        debug_assert!(replaced >= 1, "a ranked pattern must occur");
        // Whatever count is left for the key is stale (it was fully used); drop it.
        if let Some(c) = st.count.get(&key).copied() {
            st.bump(key, -(c as i64), opts.max_depth);
        }
    }
    // Sum what is left of each output, shallowest first.
    let mut result = Vec::with_capacity(st.outputs.len());
    let mut deepest = 0;
    for (o, c) in consts.into_iter().enumerate() {
        let mut level: Vec<(u32, Term)> = st.outputs[o]
            .iter()
            .map(|t| (st.depth_of(t.src), *t))
            .collect();
        if let Some(c) = c {
            level.push((
                0,
                Term {
                    src: c,
                    shift: 0,
                    neg: false,
                },
            ));
        }
        if level.is_empty() {
            let z = add_simplified(dfg, Op::Const { value: 0, frac: 0 }, tag)?;
            result.push(z);
            continue;
        }
        // Deterministic order: by depth, then by position (stable sort).
        while level.len() > 1 {
            level.sort_by_key(|(d, _)| *d);
            let (da, a) = level.remove(0);
            let (db, b) = level.remove(0);
            // Put a positive term first so a single negation becomes a subtraction.
            let (a, b) = if a.neg && !b.neg { (b, a) } else { (a, b) };
            let s = add_simplified(dfg, Op::Add { a, b }, tag)?;
            let d = da.max(db) + 1;
            st.set(s, d, 0);
            level.push((
                d,
                Term {
                    src: s,
                    shift: 0,
                    neg: false,
                },
            ));
        }
        let (d, t) = level[0];
        deepest = deepest.max(d);
        result.push(add_simplified(dfg, Op::Scale { a: t }, tag)?);
    }
    Ok((result, deepest))
}

#[cfg(test)]
mod tests {
    use crate::passes::cmvm::CseOptions;
    use crate::testutil::*;
    use rand::{Rng, SeedableRng};

    /// A random 12x10 Dense with 7-bit weights (a fifth of them pruned) and a bias.
    fn model(seed: u64) -> String {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let w: Vec<i64> = (0..120)
            .map(|_| {
                if rng.gen_bool(0.2) {
                    0
                } else {
                    rng.gen_range(-64..64)
                }
            })
            .collect();
        let b: Vec<i64> = (0..10).map(|_| rng.gen_range(-64..64)).collect();
        serde_json::json!({"format": "fastml-model", "version": 1, "nodes": [
            {"name": "x", "op": "Input", "shape": [12], "type": "fixed<10,4>"},
            {"name": "d", "op": "Dense", "inputs": ["x"],
             "weight": {"shape": [12, 10], "type": "fixed<7,2>", "data": w},
             "bias": {"shape": [10], "type": "fixed<7,3>", "data": b}},
            {"name": "y", "op": "Output", "inputs": ["d"]}]})
        .to_string()
    }

    #[test]
    fn sharing_is_exact_and_saves_adders() {
        for seed in 0..8 {
            let g = parse(&model(seed));
            let mut c = cx();
            c.cse = CseOptions {
                enabled: false,
                ..Default::default()
            };
            let plain = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
            let mut shared_total = 0;
            for depth in [1, 2, 3, 8] {
                c.cse = CseOptions {
                    enabled: true,
                    max_depth: depth,
                    keep_depth: depth != 8,
                };
                let shared = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
                crate::ir::verify::verify_dfg(&shared, &c).unwrap();
                assert_dfg_matches(&g, &shared, 400);
                assert!(
                    shared.count("add") <= plain.count("add"),
                    "seed {seed} depth {depth}"
                );
                shared_total = shared.count("add");
            }
            assert!(
                shared_total * 10 < plain.count("add") * 9,
                "seed {seed}: sharing saved too little: {shared_total} vs {}",
                plain.count("add")
            );
        }
    }

    #[test]
    fn sharing_is_deterministic() {
        let g = parse(&model(3));
        let a = crate::passes::lower_cmvm::lower(&g, &cx())
            .unwrap()
            .to_string();
        let b = crate::passes::lower_cmvm::lower(&g, &cx())
            .unwrap()
            .to_string();
        assert_eq!(a, b);
    }
}
