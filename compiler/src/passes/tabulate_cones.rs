//! `tabulate-cones`: replaces logic that depends on one narrow value by a ROM of that value. When every
//! node of a cone reads (besides constants) only a value `s` with few possible values (at most
//! 2^[`MAX_BITS`]), the cone's results are functions of `s`, so each result it hands to the rest of the
//! design (its frontier) can be one lookup addressed by `s`'s bits. A DeepSets element network is the
//! textbook case: one quantised feature per particle feeds a Dense, a ReLU, a quantiser, a second
//! Dense and more, about a hundred adders per particle, all a function of 8 bits.
//!
//! The pass compares the resource estimate of the cone (`report::node_cost`) with that of the ROMs
//! (one LUT6 per non-constant column up to 6 address bits, doubling per bit beyond) and rewrites only
//! when the ROMs are cheaper, so shift-and-add products that cost nothing stay as they are. The ROM
//! entries are the cone evaluated by the golden rule of each op (`golden::eval_op`) for every value of
//! `s`, so the rewrite is exact by construction; the pass test compares golden models before and after.
//! Sources are tried in id order; a cone, once tabulated, is gone, so the first (widest) cone wins.

use super::const_fold::add_simplified;
use super::{DfgPass, PassContext};
use crate::diag::Result;
use crate::golden::eval_op;
use crate::ir::dfg::{Dfg, Op, Rom, ValueId};
use std::collections::HashMap;

pub struct TabulateCones;

/// Widest source a cone may be tabulated over (address bits).
pub const MAX_BITS: u32 = 8;

/// LUTs of one ROM column on `bits` address bits.
fn column_luts(bits: u32) -> u64 {
    1u64 << bits.saturating_sub(6)
}

/// A cone found for a source: its nodes (in id order), its frontier and the frontier's ROMs.
struct Cone {
    src: ValueId,
    nodes: Vec<ValueId>,
    frontier: Vec<(ValueId, Rom)>,
}

fn find_cone(g: &Dfg, s: ValueId, taken: &[bool]) -> Option<Cone> {
    let si = g.node(s).iv;
    let bits = si.fixed_type().width;
    if bits > MAX_BITS || taken[s.index()] {
        return None;
    }
    let count = g.graph.node_count();
    let mut inside = vec![false; count];
    let mut nodes = Vec::new();
    // Walk forward from the source through users, in id order (a topological order), so a node is
    // judged after all of its operands.
    let mut next: std::collections::BTreeSet<ValueId> = g.users(s).into_iter().collect();
    while let Some(v) = next.pop_first() {
        let n = g.node(v);
        if taken[v.index()] || !n.op.computes() {
            continue;
        }
        let only_cone =
            n.op.operands()
                .iter()
                .all(|o| *o == s || inside[o.index()] || matches!(g.node(*o).op, Op::Const { .. }));
        if only_cone {
            inside[v.index()] = true;
            nodes.push(v);
            next.extend(g.users(v));
        }
    }
    if nodes.is_empty() {
        return None;
    }
    let frontier: Vec<ValueId> = nodes
        .iter()
        .copied()
        .filter(|&v| g.users(v).iter().any(|u| !inside[u.index()]))
        .collect();
    // Cost of the cone as it is, and of its frontier as ROMs.
    let cone_luts: u64 = nodes
        .iter()
        .map(|&v| crate::report::node_cost(g, v).0)
        .sum();
    // Every frontier value costs at least one column unless constant: skip hopeless cones before
    // evaluating anything.
    if cone_luts <= frontier.len() as u64 * column_luts(bits) {
        return None;
    }
    // Evaluate the cone for every value of the source.
    let values: Vec<i128> = (si.lo..=si.hi).collect();
    let mut results: HashMap<ValueId, Vec<i128>> = frontier
        .iter()
        .map(|&f| (f, Vec::with_capacity(values.len())))
        .collect();
    let mut val = vec![0i128; count];
    for &m in &values {
        val[s.index()] = m;
        for &v in &nodes {
            let n = g.node(v);
            let x = eval_op(g, &n.op, n.iv.frac, |o| match g.node(o).op {
                Op::Const { value, frac } => crate::fixed::align(value, frac, g.node(o).iv.frac),
                _ => val[o.index()],
            });
            val[v.index()] = x;
        }
        for (f, r) in results.iter_mut() {
            r.push(val[f.index()]);
        }
    }
    let mask = (1i128 << bits) - 1;
    let mut rom_luts = 0u64;
    let mut roms = Vec::with_capacity(frontier.len());
    for &f in &frontier {
        let r = &results[&f];
        let mut entries = vec![r[0]; 1usize << bits];
        for (k, &m) in values.iter().enumerate() {
            entries[(m & mask) as usize] = r[k];
        }
        let rom = super::lower_cmvm::normalized_rom(Rom {
            addr_frac: si.frac,
            bits,
            entries,
            frac: g.node(f).iv.frac,
        });
        let w = {
            let lo = rom.entries.iter().copied().min().unwrap_or(0);
            let hi = rom.entries.iter().copied().max().unwrap_or(0);
            crate::fixed::Interval {
                lo,
                hi,
                frac: rom.frac,
            }
            .fixed_type()
            .width
        };
        let cols = (0..w)
            .filter(|&b| {
                let first = (rom.entries[0] >> b) & 1;
                rom.entries.iter().any(|&e| (e >> b) & 1 != first)
            })
            .count() as u64;
        rom_luts += cols * column_luts(bits);
        roms.push((f, rom));
    }
    (rom_luts < cone_luts).then_some(Cone {
        src: s,
        nodes,
        frontier: roms,
    })
}

impl DfgPass for TabulateCones {
    fn name(&self) -> &'static str {
        "tabulate-cones"
    }
    fn doc(&self) -> &'static str {
        "replace logic that depends on one narrow value by ROMs of that value, where cheaper"
    }
    fn run(&self, g: &mut Dfg, _cx: &PassContext) -> Result<()> {
        let count = g.graph.node_count();
        let mut taken = vec![false; count];
        let mut replace: HashMap<ValueId, (ValueId, Rom)> = HashMap::new();
        for s in g.ids().collect::<Vec<_>>() {
            if matches!(
                g.node(s).op,
                Op::Const { .. } | Op::Output { .. } | Op::Reg { .. }
            ) {
                continue;
            }
            if let Some(cone) = find_cone(g, s, &taken) {
                // Later sources leave the cone alone.
                for &v in &cone.nodes {
                    taken[v.index()] = true;
                }
                for (f, rom) in cone.frontier {
                    replace.insert(f, (cone.src, rom));
                }
            }
        }
        if replace.is_empty() {
            return Ok(());
        }
        let mut out = g.empty_like();
        let mut map: Vec<ValueId> = Vec::with_capacity(count);
        for v in g.ids() {
            let n = g.node(v);
            let id = match replace.remove(&v) {
                Some((src, rom)) => {
                    let t = out.intern_table(rom);
                    add_simplified(
                        &mut out,
                        Op::Table {
                            a: map[src.index()],
                            t,
                        },
                        n.layer,
                    )?
                }
                None => {
                    let op = n.op.map_operands(|o| map[o.index()]);
                    add_simplified(&mut out, op, n.layer)?
                }
            };
            map.push(id);
        }
        *g = out;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn an_element_network_on_one_narrow_feature_becomes_roms() {
        // Each of 4 particles: one 6-bit feature -> Dense 1->4 -> ReLU -> quantiser -> Dense 4->3 ->
        // ReLU -> quantiser, then a sum over the particles. Everything before the sum is a function of
        // one 6-bit value per particle.
        let g = parse(
            r#"{"format":"fastml-model","version":2,"nodes":[
          {"name":"x","op":"Input","shape":[4,1],"type":"fixed<6,3>"},
          {"name":"d1","op":"Dense","inputs":["x"],"weight":{"shape":[1,4],"type":"fixed<6,1>","data":[7,-13,21,-5]},
           "bias":{"shape":[4],"type":"fixed<6,2>","data":[5,-9,0,3]}},
          {"name":"r1","op":"ReLU","inputs":["d1"]},
          {"name":"q1","op":"Quantize","inputs":["r1"],"type":"ufixed<6,3,RND,SAT>"},
          {"name":"d2","op":"Dense","inputs":["q1"],"weight":{"shape":[4,3],"type":"fixed<6,1>","data":[7,-13,21,-5,30,-17,9,2,-31,11,19,-27]}},
          {"name":"r2","op":"ReLU","inputs":["d2"]},
          {"name":"q2","op":"Quantize","inputs":["r2"],"type":"ufixed<6,3,RND_CONV,SAT>"},
          {"name":"p","op":"Reduce","inputs":["q2"],"axis":0,"kind":"sum"},
          {"name":"y","op":"Output","inputs":["p"]}]}"#,
        );
        let mut d = crate::passes::lower_cmvm::lower(&g, &cx()).unwrap();
        let adders = d.count("add") + d.count("add3");
        TabulateCones.run(&mut d, &cx()).unwrap();
        crate::passes::dead_code::DeadCode
            .run(&mut d, &cx())
            .unwrap();
        crate::passes::verify_dfg(&d, &cx()).unwrap();
        // At most one ROM per particle and output (an output that is always 0 folds to a constant).
        let roms = d.count("table");
        assert!((4..=12).contains(&roms), "{roms} ROMs\n{d}");
        assert!(d.count("add") + d.count("add3") < adders / 2, "{d}");
        assert_eq!(d.count("quant") + d.count("relu"), 0, "{d}");
        assert_dfg_matches(&g, &d, 2000);
    }
}
