//! `pack-luts`: pairs ROM columns into dual-output LUTs. An UltraScale+ LUT6_2 computes two functions
//! of the same five inputs (O6 and O5, with I5 tied high), so two ROM columns on one address of at most
//! 5 bits cost one LUT instead of two. Synthesis tools count (and Yosys maps) a LUT5 column as a whole
//! LUT, and only place-and-route packs pairs on its own; the compiler knows which columns share an
//! address, so it pairs them itself and the emitter instantiates `fastml_lut2` (rtl-lib) for each pair.
//!
//! Columns are grouped by address (operand, binary point and width of the slice), in node order, so the
//! result is deterministic; equal columns of a group share one LUT output; a column that is constant
//! or equal to one address bit is left to the emitter (a constant or a wire, no LUT). The pass runs last
//! (after `legalize-names`), because every pass that renumbers nodes drops the pairing. With vendor
//! primitives disabled (`--no-ternary`) it does nothing and every column stays a portable ROM.

use super::{DfgPass, PassContext};
use crate::diag::Result;
use crate::ir::dfg::{Dfg, Op, PackedLut, ValueId};
use std::collections::BTreeMap;

pub struct PackLuts;

/// The distinct columns on one address, each with the (table node, bit) pairs that read it.
type Columns = Vec<(Vec<bool>, Vec<(ValueId, u32)>)>;

/// Widest address a LUT6_2 pair can share.
pub const MAX_BITS: u32 = 5;

/// A ROM column of a table node: its value at every address (`2^bits` entries).
pub fn column(g: &Dfg, v: ValueId, bit: u32) -> Vec<bool> {
    let Op::Table { t, .. } = g.node(v).op else {
        return Vec::new();
    };
    g.table(t)
        .entries
        .iter()
        .map(|&e| (e >> bit) & 1 == 1)
        .collect()
}

/// Whether a column needs no LUT: constant, or equal to one of the address bits.
pub fn trivial(col: &[bool]) -> bool {
    if col.iter().all(|&c| c == col[0]) {
        return true;
    }
    let bits = col.len().trailing_zeros();
    (0..bits).any(|b| {
        col.iter()
            .enumerate()
            .all(|(a, &c)| c == ((a >> b) & 1 == 1))
    })
}

impl DfgPass for PackLuts {
    fn name(&self) -> &'static str {
        "pack-luts"
    }
    fn doc(&self) -> &'static str {
        "pair ROM columns that share an address of at most 5 bits into dual-output LUT6_2s"
    }
    fn run(&self, g: &mut Dfg, cx: &PassContext) -> Result<()> {
        g.packed.clear();
        if !cx.cse.ternary {
            return Ok(());
        }
        // Address groups: (operand, addr_frac, bits) -> unique columns with their users.
        let mut groups: BTreeMap<(ValueId, i32, u32), Columns> = BTreeMap::new();
        for v in g.ids() {
            let Op::Table { a, t } = g.node(v).op else {
                continue;
            };
            let rom = g.table(t);
            if rom.bits > MAX_BITS {
                continue;
            }
            let key = (a, rom.addr_frac, rom.bits);
            let w = g.node(v).iv.fixed_type().width;
            for bit in 0..w {
                let col = column(g, v, bit);
                if trivial(&col) {
                    continue;
                }
                let cols = groups.entry(key).or_default();
                match cols.iter_mut().find(|(c, _)| *c == col) {
                    Some((_, users)) => users.push((v, bit)),
                    None => cols.push((col, vec![(v, bit)])),
                }
            }
        }
        for (_, cols) in groups {
            for pair in cols.chunks(2) {
                let [(c6, u6), (c5, u5)] = pair else {
                    // A lone column stays an ordinary ROM column.
                    continue;
                };
                let pad = |c: &Vec<bool>| {
                    let mut p = c.clone();
                    p.resize(32, false);
                    p
                };
                let mut users: Vec<(ValueId, u32, bool)> =
                    u6.iter().map(|&(v, b)| (v, b, true)).collect();
                users.extend(u5.iter().map(|&(v, b)| (v, b, false)));
                g.packed.push(PackedLut {
                    o6: pad(c6),
                    o5: pad(c5),
                    users,
                });
            }
        }
        Ok(())
    }
}
