//! Constant matrix-vector products as shared adder graphs: the optimiser behind `lower-cmvm`.
//!
//! Input: for each output of a layer, its CSD terms `±x·2^s` (and a constant). Two-term patterns
//! `x_a + (±x_b << Δ)` that occur in several outputs (or twice in one) are computed once: a greedy
//! common-subexpression elimination in the manner of da4ml (arXiv 2507.04535) and Hcub-style MCM
//! algorithms, picking at each step the most frequent pattern (ties: the shallowest result, then the
//! smallest key, so the result is deterministic). Occurrence counts are kept incrementally (a count map
//! plus a max-heap with lazy deletion: stale entries are skipped when popped), so a step costs
//! O(terms of the touched outputs · log), not a rescan. With `keep_depth`, a per-output Kraft budget
//! refuses any replacement that would make an output deeper than the layer's unshared balanced trees.
//!
//! The search runs on local ids and yields a [`Recipe`], independent of the graph; `instantiate`
//! builds it: the shared sums, then what remains of each output, summed shallowest-first (a Huffman
//! tree on adder depth) with binary adders and, where the layer's critical depth leaves room (or the
//! slack allows), ternary adders (`Op::Add3`, one LUT per bit for three operands on UltraScale+).
//!
//! Values never change: every new node is an exact `Add` or `Add3`, and the lowering tests compare
//! golden models. This module must not decide widths or stages (intervals come from `Dfg::add`, stages
//! from `schedule`).

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
    /// Never make a layer deeper (in adders) than unshared balanced trees would: the search refuses any
    /// replacement that would (a Kraft budget per output). Off trades stages for LUTs.
    pub keep_depth: bool,
    /// Sum what is left of each output with ternary adders (`Op::Add3`, one LUT per bit for three
    /// operands) where that keeps the output within `ternary_slack` adder levels of the layer's
    /// critical depth; off: binary adders only (portable RTL, no primitives).
    pub ternary: bool,
    /// Adder levels a ternary adder may add to a layer beyond its critical depth (a ternary adder
    /// counts as two levels: its carry-save bit passes a second LUT). 0: never deeper; larger: more
    /// ternary adders, fewer LUTs, longer paths. `None`: `crate::compile` chooses per layer (with
    /// sharing on): slack 1 everywhere if that needs no more stages than binary adders, else, layer by
    /// layer, slack 1, 0 or binary adders, whichever first keeps the stage count; without sharing, 0.
    pub ternary_slack: Option<u32>,
}

impl Default for CseOptions {
    fn default() -> Self {
        CseOptions {
            enabled: true,
            max_depth: 4,
            keep_depth: true,
            ternary: true,
            ternary_slack: None,
        }
    }
}

/// The search's state. Its `ValueId`s are a [`Recipe`]'s local ids (the layer's inputs, then the shared
/// sums in order), not graph nodes: the search never touches the graph.
struct State {
    /// The terms of each output still to be summed.
    outputs: Vec<Vec<Term>>,
    /// Occurrences of each pattern (pairs of terms in one output).
    count: HashMap<Key, u32>,
    /// `(count, depth, key)` pushed whenever a pattern's count changes to a value >= 2 (and once per
    /// pattern after the initial count); an entry is stale (and skipped) when the count differs.
    ranked: BinaryHeap<(u32, std::cmp::Reverse<u32>, std::cmp::Reverse<Key>)>,
    /// Adder depth of each value by node index (values from before this layer: 0).
    depth: Vec<u32>,
    /// How many input terms each value sums, by node index (values from before this layer: 1).
    leaves: Vec<u32>,
    /// Only share sub-sums that are as shallow as balanced trees (with `keep_depth`).
    balanced: bool,
    /// The outputs whose terms use a value (may list outputs that no longer do: a superset is safe).
    used_in: HashMap<ValueId, Vec<usize>>,
    /// Patterns whose count changed since the last `best` (to be re-ranked there).
    dirty: rustc_hash::FxHashSet<Key>,
    /// The depth bound of this search (for ranking in `best`).
    max_depth: u32,
    /// Per output, `sum 2^depth` over its terms (and its constant), and the most it may reach:
    /// `2^plain` with `keep_depth` (the Kraft bound of a binary tree of depth `plain`).
    kraft: Vec<u128>,
    budget: Option<u128>,
    /// Patterns the budget refused somewhere: never ranked again.
    blocked: rustc_hash::FxHashSet<Key>,
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
        } else if new >= 2 {
            // Every change re-ranks the pattern at its new count (a pattern whose count drops must
            // stay findable at the lower count); once per step, in `best`, not once per change.
            self.dirty.insert(k);
        }
        self.max_depth = max_depth;
    }
    /// The best pattern with a current count >= 2, discarding stale heap entries.
    fn best(&mut self) -> Option<Key> {
        let mut dirty: Vec<Key> = self.dirty.drain().collect();
        dirty.sort_unstable();
        for k in dirty {
            let c = self.count.get(&k).copied().unwrap_or(0);
            if c >= 2 && !self.blocked.contains(&k) && self.admissible(&k, self.max_depth) {
                self.ranked.push((
                    c,
                    std::cmp::Reverse(self.key_depth(&k)),
                    std::cmp::Reverse(k),
                ));
            }
        }
        while let Some((c, _, std::cmp::Reverse(k))) = self.ranked.pop() {
            if self.count.get(&k).copied() == Some(c) && !self.blocked.contains(&k) {
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

/// The depth of the fastest binary adder tree over terms at `depths` (each adder one level).
fn kraft_depth(depths: impl Iterator<Item = u32> + Clone) -> u32 {
    let mut t = depths.clone().max().unwrap_or(0);
    while !kraft_fits(depths.clone(), t) {
        t += 1;
    }
    t
}

/// Whether binary adders can sum terms at `depths` into one value at depth <= `t`:
/// `sum 2^(d - t) <= 1`, in exact integer arithmetic.
fn kraft_fits(depths: impl Iterator<Item = u32>, t: u32) -> bool {
    if t >= 120 {
        return true;
    }
    let mut sum: u128 = 0;
    for d in depths {
        if d > t {
            return false;
        }
        sum += 1u128 << d;
        if sum > 1u128 << t {
            return false;
        }
    }
    true
}

/// What the sharing decided for one layer, on local ids (the layer's input values `0..n_in` in
/// ascending node order, then one id per shared sum), so it does not depend on the graph it is built
/// into: `lower-cmvm` can build the same layer several times (once per ternary slack it tries) and
/// search only once.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The layer's terms on local ids, and which outputs have a constant: the recipe's key.
    key: (Vec<Vec<Term>>, Vec<bool>),
    n_in: usize,
    /// Shared sums in order: `local a + (±local b << delta)`.
    shared: Vec<Key>,
    /// Adder depth of every local id.
    depth: Vec<u32>,
    /// What is left of each output, on local ids.
    outputs: Vec<Vec<Term>>,
}

/// How one layer's final sums are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalSums {
    /// Binary adders only.
    Binary,
    /// Ternary adders where they fit within this many levels beyond the layer's critical depth.
    Ternary(u32),
}

/// Recipes by layer, reused while the layer's terms are the same; and per-layer choices of the final
/// sums (by layer tag), which override `CseOptions::ternary`/`ternary_slack` (the compiler's search for
/// the cheapest design at the fewest stages sets them, see `crate::compile`).
#[derive(Default)]
pub struct RecipeCache {
    by_layer: HashMap<u32, (CseOptions, Recipe)>,
    pub sums: HashMap<u32, FinalSums>,
}

impl CseOptions {
    /// Whether `o` makes the same sharing decisions (the ternary settings only shape the final sums).
    fn same_sharing(&self, o: &Self) -> bool {
        (self.enabled, self.max_depth, self.keep_depth) == (o.enabled, o.max_depth, o.keep_depth)
    }
}

fn local(i: usize) -> ValueId {
    vid(i as u32)
}

/// Build each output's sum of `terms[j]` plus `consts[j]` (a value to add, e.g. the bias node, or
/// `None`) into `dfg`, sharing common sub-sums as `opts` allow. Returns one value per output.
pub fn build(
    dfg: &mut Dfg,
    terms: Vec<Vec<Term>>,
    consts: Vec<Option<ValueId>>,
    tag: LayerTag,
    opts: CseOptions,
    cache: &mut RecipeCache,
) -> Result<Vec<ValueId>> {
    // Local ids: the layer's inputs in ascending node order (so ties break as by node index).
    let mut inputs: Vec<ValueId> = terms.iter().flatten().map(|t| t.src).collect();
    inputs.sort();
    inputs.dedup();
    let index: HashMap<ValueId, usize> = inputs.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    let local_terms: Vec<Vec<Term>> = terms
        .iter()
        .map(|ts| {
            ts.iter()
                .map(|t| Term {
                    src: local(index[&t.src]),
                    ..*t
                })
                .collect()
        })
        .collect();
    let key = (local_terms, consts.iter().map(|c| c.is_some()).collect());
    let recipe = match cache.by_layer.get(&tag.0) {
        Some((o, r)) if o.same_sharing(&opts) && r.key == key => r.clone(),
        _ => {
            let r = search(key, inputs.len(), opts);
            cache.by_layer.insert(tag.0, (opts, r.clone()));
            r
        }
    };
    let sums = match cache.sums.get(&tag.0) {
        Some(s) => *s,
        None if opts.ternary => FinalSums::Ternary(opts.ternary_slack.unwrap_or(0)),
        None => FinalSums::Binary,
    };
    instantiate(dfg, &recipe, &inputs, consts, tag, sums)
}

/// The depth of unshared balanced trees: the layer's deepest output, `ceil(log2(terms + constant))`.
fn plain_depth(key: &(Vec<Vec<Term>>, Vec<bool>)) -> u32 {
    key.0
        .iter()
        .zip(&key.1)
        .map(|(t, &c)| ceil_log2(t.len() as u32 + c as u32))
        .max()
        .unwrap_or(0)
}

impl Recipe {
    /// The deepest output as the fastest binary tree over what the sharing left (so the depth guard
    /// judges the sharing alone, the same with and without ternary adders).
    fn deepest(&self) -> u32 {
        self.outputs
            .iter()
            .zip(&self.key.1)
            .map(|(ts, &c)| {
                let d = ts.iter().map(|t| self.depth[t.src.index()]);
                kraft_depth(d.chain(c.then_some(0)))
            })
            .max()
            .unwrap_or(0)
    }
}

/// The sharing for one layer: the greedy search on local ids. With `keep_depth`, the search itself
/// keeps every output within the layer's unshared depth (a Kraft budget per output, checked at each
/// replacement), so one search is enough (an earlier version re-ran it with smaller depth bounds).
fn search(key: (Vec<Vec<Term>>, Vec<bool>), n_in: usize, opts: CseOptions) -> Recipe {
    let mut st = State {
        outputs: key.0.clone(),
        count: HashMap::default(),
        ranked: BinaryHeap::new(),
        depth: vec![0; n_in],
        leaves: vec![1; n_in],
        balanced: opts.keep_depth,
        used_in: HashMap::default(),
        dirty: Default::default(),
        max_depth: opts.max_depth,
        kraft: key
            .0
            .iter()
            .zip(&key.1)
            .map(|(t, &c)| t.len() as u128 + c as u128)
            .collect(),
        budget: (opts.keep_depth && opts.enabled).then(|| 1u128 << plain_depth(&key)),
        blocked: Default::default(),
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
        // Count every pair first, then rank each pattern once (pushing on every increment would fill
        // the heap with millions of stale entries on wide layers).
        for o in 0..st.outputs.len() {
            let n = st.outputs[o].len();
            for t in 0..n {
                for u in (t + 1)..n {
                    if let Some((k, _, _)) = pattern(&st.outputs[o][t], &st.outputs[o][u]) {
                        *st.count.entry(k).or_insert(0) += 1;
                    }
                }
            }
        }
        let mut ranked: Vec<_> = st
            .count
            .iter()
            .filter(|(k, &c)| c >= 2 && st.admissible(k, opts.max_depth))
            .map(|(k, &c)| (c, std::cmp::Reverse(st.key_depth(k)), std::cmp::Reverse(*k)))
            .collect();
        ranked.sort_unstable();
        st.ranked = BinaryHeap::from(ranked);
    }
    let mut shared = Vec::new();
    while let Some(key) = st.best() {
        let a = vid(key.a);
        let b = vid(key.b);
        let v = local(n_in + shared.len());
        shared.push(key);
        let d = st.key_depth(&key);
        let l = st.leaves_of(a) + st.leaves_of(b);
        st.set(v, d, l);
        let mut replaced = 0;
        let mut skipped = false;
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
                // The depth budget: the output's terms must still fit a binary tree of the layer's
                // unshared depth (Kraft: sum 2^depth <= 2^plain), else this output keeps the two terms.
                if let Some(budget) = st.budget {
                    let (dt, du) = (
                        st.depth_of(st.outputs[o][t].src),
                        st.depth_of(st.outputs[o][u].src),
                    );
                    // Depths stay far below 120 with a budget (it bounds them by the plain depth).
                    let grown = 1u128 << (dt.max(du) + 1).min(120);
                    let kraft =
                        st.kraft[o] - (1u128 << dt.min(120)) - (1u128 << du.min(120)) + grown;
                    if kraft > budget {
                        skipped = true;
                        break;
                    }
                    st.kraft[o] = kraft;
                }
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
        if skipped {
            // Occurrences the budget refused stay as they are (and counted, exactly); the pattern is
            // never ranked again.
            st.blocked.insert(key);
            if replaced == 0 {
                shared.pop();
            }
        } else if let Some(c) = st.count.get(&key).copied() {
            // Whatever count is left for the key is stale (it was fully used); drop it.
            st.bump(key, -(c as i64), opts.max_depth);
        }
    }
    let mut depth = st.depth;
    depth.resize(n_in + shared.len(), 0);
    Recipe {
        key,
        n_in,
        shared,
        depth,
        outputs: st.outputs,
    }
}

/// Build a recipe into `dfg`: the shared sums, then each output's final sum (binary and ternary
/// adders, see below).
fn instantiate(
    dfg: &mut Dfg,
    r: &Recipe,
    inputs: &[ValueId],
    consts: Vec<Option<ValueId>>,
    tag: LayerTag,
    sums: FinalSums,
) -> Result<Vec<ValueId>> {
    debug_assert_eq!(inputs.len(), r.n_in);
    let mut ids: Vec<ValueId> = inputs.to_vec();
    for k in &r.shared {
        let v = add_simplified(
            dfg,
            Op::Add {
                a: Term {
                    src: ids[k.a as usize],
                    shift: 0,
                    neg: false,
                },
                b: Term {
                    src: ids[k.b as usize],
                    shift: k.delta,
                    neg: k.neg,
                },
            },
            tag,
        )?;
        ids.push(v);
    }
    // The layer's critical depth: its slowest output as the fastest binary tree. Every output may take
    // ternary adders up to it (plus the slack): a faster output has time to spare.
    let deepest = r.deepest();
    let lsb = |dfg: &Dfg, t: &Term| t.shift - dfg.node(t.src).iv.frac;
    let mut result = Vec::with_capacity(r.outputs.len());
    for (o, c) in consts.into_iter().enumerate() {
        let mut level: Vec<(u32, Term)> = r.outputs[o]
            .iter()
            .map(|t| {
                (
                    r.depth[t.src.index()],
                    Term {
                        src: ids[t.src.index()],
                        ..*t
                    },
                )
            })
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
        // A binary tree over terms at depths d_i can end at depth T iff sum 2^(d_i - T) <= 1
        // (Kraft); a ternary adder (two levels: its carry-save bit passes a second LUT) replaces
        // three terms while that still holds for `target`, so the output is never later than the
        // layer's critical depth plus the slack.
        let target = match sums {
            FinalSums::Binary => None,
            FinalSums::Ternary(slack) => Some(deepest.saturating_add(slack)),
        };
        // Shallowest first (a Huffman tree on depth), then the coarsest lowest bit first, so the
        // fine low bits join late and the early adders stay narrow; ties keep their position (stable
        // sort), so the result is deterministic.
        while level.len() > 1 {
            level.sort_by_key(|(d, t)| (*d, std::cmp::Reverse(lsb(dfg, t))));
            let ternary = level.len() >= 3
                && target.is_some_and(|target| {
                    let d3 = level[2].0 + 2;
                    let rest = level[3..].iter().map(|x| x.0);
                    kraft_fits(rest.chain(std::iter::once(d3)), target)
                });
            let k = if ternary { 3 } else { 2 };
            let take: Vec<(u32, Term)> = level.drain(..k).collect();
            let d = take.iter().map(|x| x.0).max().unwrap_or(0) + if ternary { 2 } else { 1 };
            let mut terms: Vec<Term> = take.iter().map(|x| x.1).collect();
            // All negated and not the last sum: add the positives and pass the sign on (free: the
            // next adder absorbs it), instead of negating twice.
            let flip = terms.iter().all(|t| t.neg) && !level.is_empty();
            if flip {
                for t in &mut terms {
                    t.neg = false;
                }
            }
            // A positive term first, so a single negation becomes a subtraction.
            terms.sort_by_key(|t| t.neg);
            let op = match terms[..] {
                [a, b] => Op::Add { a, b },
                [a, b, c] => Op::Add3 { a, b, c },
                _ => unreachable!("two or three terms"),
            };
            let s = add_simplified(dfg, op, tag)?;
            level.push((
                d,
                Term {
                    src: s,
                    shift: 0,
                    neg: flip,
                },
            ));
        }
        let (_, t) = level[0];
        result.push(add_simplified(dfg, Op::Scale { a: t }, tag)?);
    }
    Ok(result)
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

    /// The layer lowered without sharing and without ternary adders.
    fn plain_trees(g: &crate::ir::layer::LayerGraph) -> crate::ir::dfg::Dfg {
        let mut c = cx();
        c.cse = CseOptions {
            enabled: false,
            ternary: false,
            ..Default::default()
        };
        crate::passes::lower_cmvm::lower(g, &c).unwrap()
    }

    #[test]
    fn sharing_is_exact_and_saves_adders() {
        for seed in 0..8 {
            let g = parse(&model(seed));
            let mut c = cx();
            let plain = plain_trees(&g);
            let mut shared_total = 0;
            for depth in [1, 2, 3, 8] {
                c.cse = CseOptions {
                    enabled: true,
                    max_depth: depth,
                    keep_depth: depth != 8,
                    ternary: false,
                    ternary_slack: None,
                };
                let shared = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
                crate::passes::verify_dfg(&shared, &c).unwrap();
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
    fn ternary_adders_are_exact_and_replace_binary_pairs() {
        for seed in 0..8 {
            let g = parse(&model(seed));
            let mut c = cx();
            for enabled in [false, true] {
                c.cse = CseOptions {
                    enabled,
                    ternary: false,
                    ..Default::default()
                };
                let binary = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
                c.cse.ternary = true;
                let ternary = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
                crate::passes::verify_dfg(&ternary, &c).unwrap();
                assert_dfg_matches(&g, &ternary, 400);
                let adders = |d: &crate::ir::dfg::Dfg| d.count("add") + d.count("add3");
                assert!(ternary.count("add3") > 0, "seed {seed}: no ternary adder");
                // Each ternary adder takes the place of two binary ones (with sharing, the depth
                // guard may also share differently, so only fewer adders are promised there).
                if enabled {
                    assert!(adders(&ternary) < binary.count("add"), "seed {seed}");
                } else {
                    assert_eq!(
                        adders(&ternary) + ternary.count("add3"),
                        binary.count("add"),
                        "seed {seed}"
                    );
                }
            }
        }
    }

    /// Longest chain of adders (binary: 1, ternary: 2 levels) from an input to any output.
    fn adder_depth(d: &crate::ir::dfg::Dfg) -> u32 {
        let mut depth = vec![0u32; d.graph.node_count()];
        for v in d.topo() {
            let n = d.node(v);
            let below = n.op.operands().iter().map(|o| depth[o.index()]).max();
            let own = match n.op.kind() {
                "add" => 1,
                "add3" => 2,
                _ => 0,
            };
            depth[v.index()] = below.unwrap_or(0) + own;
        }
        depth.into_iter().max().unwrap_or(0)
    }

    #[test]
    fn the_depth_guard_keeps_shared_trees_as_shallow_as_plain_ones() {
        for seed in 0..8 {
            let g = parse(&model(seed));
            let mut c = cx();
            let plain = plain_trees(&g);
            for ternary in [false, true] {
                c.cse = CseOptions {
                    ternary,
                    ternary_slack: Some(0),
                    ..Default::default()
                };
                let shared = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
                assert!(
                    adder_depth(&shared) <= adder_depth(&plain),
                    "seed {seed} ternary {ternary}: {} > {}",
                    adder_depth(&shared),
                    adder_depth(&plain)
                );
                assert!(shared.count("add") + shared.count("add3") < plain.count("add"));
            }
            // Without the guard, sharing may go deeper (and usually saves more).
            c.cse = CseOptions {
                keep_depth: false,
                max_depth: 8,
                ternary: false,
                ..Default::default()
            };
            let deep = crate::passes::lower_cmvm::lower(&g, &c).unwrap();
            assert_dfg_matches(&g, &deep, 200);
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
