//! `absorb-into-table`: folds a unary operation that stands between a narrow value and a ROM into the
//! ROM. A lookup `T(u(s))`, where `u` is a quantiser, a ReLU, a scale or another lookup, is one function
//! of `s`; when `s` takes few values, the pass tabulates that function over `s` itself and addresses the
//! new ROM with only the bits of `s` the function depends on (a wrap-around quantiser ignores the bits
//! above its window, a rounding one the bits below its first dropped bit). The rounding adder, the
//! saturation logic or the first ROM of `u` then disappear (dead code removes them unless something
//! else reads them).
//!
//! It rewrites only where the new ROM is no larger than the old one or still fits its LUTs: a ROM
//! column costs one LUT6 up to 6 address bits and doubles with each bit beyond, two columns of at most 5
//! bits share one LUT6_2 (`pack-luts`), and a shared rounding adder serves every table that reads it; so
//! the limit is 5 bits while pairing is on and the folded operation has other readers, else 6. Values never change: the new ROM's entries are the
//! composed function evaluated through the golden rule of each op (`golden::eval_op`), and the pass test
//! compares golden models before and after.

use super::const_fold::add_simplified;
use super::{DfgPass, PassContext};
use crate::diag::Result;
use crate::golden::eval_op;
use crate::ir::dfg::{Dfg, Op, Rom, ValueId};
use std::collections::HashMap;

pub struct AbsorbIntoTable;

/// Largest operand range (number of mantissas) the pass tabulates.
const MAX_DOMAIN: i128 = 1 << 16;

impl DfgPass for AbsorbIntoTable {
    fn name(&self) -> &'static str {
        "absorb-into-table"
    }
    fn doc(&self) -> &'static str {
        "fold a quantiser, ReLU, scale or lookup between a narrow value and a ROM into the ROM"
    }
    fn run(&self, g: &mut Dfg, cx: &PassContext) -> Result<()> {
        // Rebuild in id order through the simplifying constructor, so every interval after a rewritten
        // lookup is recomputed (a folded ROM can be tighter than the old one) and a lookup that became
        // constant folds. A chain `T(q(relu(s)))` folds step by step at its table.
        let mut out = g.empty_like();
        let mut map: Vec<ValueId> = Vec::with_capacity(g.graph.node_count());
        // Windows of the unary nodes of `out`, computed once for all the tables that read one.
        let mut windows: HashMap<ValueId, Option<Window>> = HashMap::new();
        for v in g.ids() {
            let n = g.node(v);
            let mut op = n.op.map_operands(|s| map[s.index()]);
            // Whether the unary operand serves only this lookup (then folding it saves its hardware
            // outright, instead of sharing it).
            // Step k of the chain folds the k-th unary node below the table; it is private when it
            // and every node above it have a single reader in the original graph.
            let mut private = Vec::new();
            if let Op::Table { a, .. } = n.op {
                let mut u = a;
                let mut all = true;
                while let Some(next) = unary_operand(g, u) {
                    all &= g.users(u).len() == 1;
                    private.push(all);
                    u = next;
                }
            }
            let mut step = 0;
            while let Some((src, rom)) = absorbed(
                &out,
                &op,
                cx.cse.ternary,
                private.get(step).copied().unwrap_or(false),
                &mut windows,
            ) {
                let t = out.intern_table(rom);
                op = Op::Table { a: src, t };
                step += 1;
            }
            map.push(add_simplified(&mut out, op, n.layer)?);
        }
        compact_tables(&mut out);
        *g = out;
        Ok(())
    }
}

/// The operand of a unary node the pass can fold (`None` for any other node).
fn unary_operand(g: &Dfg, u: ValueId) -> Option<ValueId> {
    match &g.node(u).op {
        Op::Quant { a, .. } | Op::Relu { a } | Op::Table { a, .. } => Some(*a),
        Op::Scale { a } => Some(a.src),
        Op::Input { .. }
        | Op::Const { .. }
        | Op::Add { .. }
        | Op::Add3 { .. }
        | Op::Max { .. }
        | Op::Mul { .. }
        | Op::Reg { .. }
        | Op::Output { .. } => None,
    }
}

/// The bits of its operand `s` a unary node's result depends on: the result is a function of
/// `(s >> d) mod 2^n`, with one representative value of `s` for every address it can produce.
struct Window {
    s: ValueId,
    d: u32,
    n: u32,
    reps: Vec<Option<i128>>,
}

/// The window of unary node `u` (`None` if `u` is not unary or its operand takes too many values).
/// Linear scans only: the result is constant on each run of operand values that agree above bit `d`,
/// and periodic with period `2^(d+n)` (so on an interval it depends on nothing above).
fn window(g: &Dfg, u: ValueId) -> Option<Window> {
    let s = unary_operand(g, u)?;
    let un = g.node(u);
    let si = g.node(s).iv;
    let count = si.hi.checked_sub(si.lo)?.checked_add(1)?;
    if count > MAX_DOMAIN {
        return None;
    }
    let vals: Vec<i128> = (si.lo..=si.hi)
        .map(|m| eval_op(g, &un.op, un.iv.frac, |_| m))
        .collect();
    let (d, n, reps) = window_of(&vals, si.lo, si.fixed_type().width)?;
    Some(Window { s, d, n, reps })
}

/// The window of a function given by its values `vals` on the operand values `lo, lo+1, ...`: the
/// largest `d` and then smallest `n` such that it depends only on `(s >> d) mod 2^n`, and one
/// representative operand value per address.
fn window_of(vals: &[i128], lo: i128, width: u32) -> Option<(u32, u32, Vec<Option<i128>>)> {
    let at = |k: usize| lo + k as i128;
    let d = (0..width)
        .rev()
        .find(|&d| (1..vals.len()).all(|k| at(k) >> d != at(k - 1) >> d || vals[k] == vals[k - 1]))
        .unwrap_or(0);
    // The fewest address bits above `d` on which no two operand values with different results meet
    // (checked directly: one slot per address).
    for n in 1..=(width + 1 - d).min(24) {
        let mask = (1i128 << n) - 1;
        let mut slot: Vec<Option<(i128, i128)>> = vec![None; 1usize << n];
        let ok = vals.iter().enumerate().all(|(k, &y)| {
            let m = at(k);
            match &mut slot[((m >> d) & mask) as usize] {
                Some((_, y0)) => *y0 == y,
                empty => {
                    *empty = Some((m, y));
                    true
                }
            }
        });
        if ok {
            return Some((d, n, slot.into_iter().map(|e| e.map(|(m, _)| m)).collect()));
        }
    }
    None
}

/// Operands with at most this many values are also tried with the composed function's own window
/// (a lookup may ignore bits its unary operand depends on, e.g. a ReLU's low bits under a rounding).
const MAX_COMPOSED: i128 = 1 << 12;

/// The operand and ROM that replace a table op's unary operand, if that is worth it.
fn absorbed(
    g: &Dfg,
    op: &Op,
    packing: bool,
    private: bool,
    windows: &mut HashMap<ValueId, Option<Window>>,
) -> Option<(ValueId, Rom)> {
    let Op::Table { a: u, t } = *op else {
        return None;
    };
    let old = g.table(t);
    // Worth it when the ROM does not grow, or still fits its LUTs: 5 address bits while LUT6_2 pairs
    // are in use (`pack-luts`: two columns per LUT), 6 otherwise or when the folded operation serves
    // only this ROM (its adder or logic then disappears).
    let fits = if packing && !private {
        crate::passes::pack_luts::MAX_BITS
    } else {
        6
    };
    let limit = old.bits.max(fits);
    let un = g.node(u);
    let f = |m: i128| -> i128 {
        let uv = eval_op(g, &un.op, un.iv.frac, |_| m);
        old.entries[old.address(uv, un.iv.frac)]
    };
    let rom = |s: ValueId, d: u32, n: u32, reps: &[Option<i128>]| -> Option<(ValueId, Rom)> {
        let fill = reps.iter().flatten().next().map(|&m| f(m))?;
        let entries: Vec<i128> = reps.iter().map(|r| r.map(f).unwrap_or(fill)).collect();
        Some((
            s,
            Rom {
                addr_frac: g.node(s).iv.frac - d as i32,
                bits: n,
                entries,
                frac: old.frac,
            },
        ))
    };
    // Fast path: the unary node's own window (computed once for every table reading it).
    if let Some(w) = windows.entry(u).or_insert_with(|| window(g, u)).as_ref() {
        if w.n <= limit {
            return rom(w.s, w.d, w.n, &w.reps);
        }
    }
    // Otherwise the composed function's window, on narrow operands.
    let s = unary_operand(g, u)?;
    let si = g.node(s).iv;
    if si.hi.checked_sub(si.lo)?.checked_add(1)? > MAX_COMPOSED {
        return None;
    }
    let vals: Vec<i128> = (si.lo..=si.hi).map(f).collect();
    let (d, n, reps) = window_of(&vals, si.lo, si.fixed_type().width)?;
    if n > limit {
        return None;
    }
    rom(s, d, n, &reps)
}

/// Remove ROMs no node reads and renumber the rest in first-use order (deterministic output).
fn compact_tables(g: &mut Dfg) {
    let mut remap: HashMap<u32, u32> = HashMap::new();
    let mut tables = Vec::new();
    for v in g.ids().collect::<Vec<_>>() {
        if let Op::Table { a, t } = g.node(v).op {
            let k = *remap.entry(t.0).or_insert_with(|| {
                tables.push(g.tables[t.0 as usize].clone());
                tables.len() as u32 - 1
            });
            g.node_mut(v).op = Op::Table {
                a,
                t: crate::ir::dfg::TableId(k),
            };
        }
    }
    g.tables = tables;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn relu_and_a_rounding_saturating_domain_fold_into_the_rom() {
        // x: fixed<8,3> (frac 5); ReLU, then RND/SAT to fixed<4,2> (frac 2): the lookup depends on x's
        // bits from 2^-3 (the rounding bit) up, 6 bits with the sign, so both the ReLU and the rounding
        // adder with its saturation fold into one 6-input ROM.
        let g = parse(
            r#"{"format":"fastml-model","version":2,"nodes":[
          {"name":"x","op":"Input","shape":[2],"type":"fixed<8,3>"},
          {"name":"r","op":"ReLU","inputs":["x"]},
          {"name":"t","op":"Table","inputs":["r"],"domain":"fixed<4,2,RND,SAT>",
           "table":{"shape":[16],"type":"fixed<6,3>","data":[0,1,2,3,4,5,6,7,-8,-7,-6,-5,-4,-3,-2,-1]}},
          {"name":"y","op":"Output","inputs":["t"]}]}"#,
        );
        let mut d = crate::passes::lower_cmvm::lower(&g, &cx()).unwrap();
        let before = d.count("quant") + d.count("relu");
        assert!(before > 0);
        AbsorbIntoTable.run(&mut d, &cx()).unwrap();
        crate::passes::dead_code::DeadCode
            .run(&mut d, &cx())
            .unwrap();
        crate::passes::verify_dfg(&d, &cx()).unwrap();
        assert_eq!(d.count("quant") + d.count("relu"), 0, "{d}");
        assert_dfg_matches(&g, &d, 2000);
    }
}
