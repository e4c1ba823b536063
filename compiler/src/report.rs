//! The compile report: per layer the operation count, bit widths, pipeline stages and a resource
//! estimate; in total latency (cycles, ns), II and LUT/FF/CARRY/DSP against the part's totals. Printed as
//! a short table and written as `report.json`. The estimate is a first-order model (a LUT per adder bit
//! where both operands vary, a LUT6_2 per ternary-adder bit, one CARRY8 per 8 carry bits, one FF per
//! register bit); its error against Yosys is measured by `bench/estimate.sh` and stated in the README.
//! This module reads the IR; it must not change it.

use crate::fixed::{Overflow, RoundBit};
use crate::ir::dfg::{Dfg, Op};
use crate::target::Part;
use serde_json::{json, Value};
use std::fmt::Write;

/// Figures for one layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerFigures {
    pub name: String,
    pub kind: String,
    /// Adders and subtractors (including rounding adders and negations).
    pub adders: usize,
    /// Other logic ops (ReLU, saturation).
    pub logic: usize,
    /// Narrowest and widest value (bits), over the layer's computed values.
    pub min_width: u32,
    pub max_width: u32,
    /// First and last stage the layer's logic occupies.
    pub first_stage: u32,
    pub last_stage: u32,
    pub lut: u64,
    pub ff: u64,
    pub carry: u64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub model: String,
    pub top: String,
    pub part: &'static Part,
    pub clock_ns: f64,
    pub latency: u32,
    pub ii: u32,
    pub layers: Vec<LayerFigures>,
    pub lut: u64,
    pub ff: u64,
    pub carry: u64,
    pub dsp: u64,
    pub in_width: u32,
    pub out_width: u32,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// Estimate (lut, ff, carry, adders, logic) of one node.
pub fn node_cost(g: &Dfg, v: crate::ir::dfg::ValueId) -> (u64, u64, u64, usize, usize) {
    let n = g.node(v);
    let w = n.iv.fixed_type().width as u64;
    let adder = |w: u64| (w, 0u64, w.div_ceil(8));
    match &n.op {
        Op::Input { .. } | Op::Const { .. } | Op::Output { .. } => (0, 0, 0, 0, 0),
        // LUTs where both operands vary (`Dfg::adder_luts`); a carry chain over the carry bits.
        Op::Add { .. } | Op::Add3 { .. } => (
            g.adder_luts(v) as u64,
            0,
            (g.carry_bits(v) as u64).div_ceil(8),
            1,
            0,
        ),
        Op::Scale { a } => {
            if a.neg {
                let (l, f, c) = adder(g.carry_bits(v) as u64);
                (l, f, c, 1, 0)
            } else {
                (0, 0, 0, 0, 0)
            }
        }
        Op::Relu { .. } => (w.div_ceil(2), 0, 0, 0, 1),
        Op::Quant { a, q } => {
            let src = g.node(*a).iv;
            let mut cost = (0, 0, 0, 0, 0);
            if q.needs_round_adder(src) {
                // `src + (cond ? k1 : k0)`: a LUT only at bits where k0 and k1 differ (elsewhere the
                // addend is a constant, see `Dfg::adder_luts`), and one for the condition.
                let sw = src.fixed_type().width as u64 + 1;
                let plan = q.round_plan(src.frac);
                let mask = if sw >= 128 {
                    u128::MAX
                } else {
                    (1u128 << sw) - 1
                };
                let (k0, k1) = (plan.constant, plan.constant + plan.addend);
                let differ = match plan.bit {
                    RoundBit::None => 0,
                    _ => (((k0 ^ k1) as u128) & mask).count_ones() as u64 + 1,
                };
                cost.0 += differ;
                cost.2 += sw.div_ceil(8);
                cost.3 += 1;
            }
            if q.can_overflow(src) && q.overflow != Overflow::Wrap {
                cost.0 += w + 1;
                cost.4 += 1;
            }
            cost
        }
        Op::Table { t, .. } => (table_luts(g, v, g.table(*t)), 0, 0, 0, 1),
        // Compare on the carry chain, then one mux LUT per result bit.
        Op::Max { .. } => (2 * w, 0, w.div_ceil(8), 0, 1),
        Op::Mul { a, b } => {
            let wa = g.node(*a).iv.fixed_type().width as u64;
            let wb = g.node(*b).iv.fixed_type().width as u64;
            // A LUT array multiplier: about one LUT per partial-product bit pair, half folded into
            // the carry chains' LUTs.
            (
                wa * wb / 2 + w,
                0,
                (wa.min(wb) * (wa + wb)).div_ceil(8),
                0,
                1,
            )
        }
        Op::Reg { .. } => (0, w, 0, 0, 0),
    }
}

/// LUTs of a lookup node's own ROM columns: one LUT6 per column that is neither constant nor an
/// address bit nor paired into a LUT6_2 by `pack-luts` (those are counted once per pair, see
/// [`build`]), times `2^(bits-6)` (with MUXF7/F8) beyond 6 address bits. Synthesis may merge columns
/// that depend on fewer address bits further; this is the upper figure.
fn table_luts(g: &Dfg, v: crate::ir::dfg::ValueId, r: &crate::ir::dfg::Rom) -> u64 {
    let w = g.node(v).iv.fixed_type().width;
    let packed: std::collections::HashSet<u32> = g
        .packed
        .iter()
        .flat_map(|p| p.users.iter())
        .filter(|u| u.0 == v)
        .map(|u| u.1)
        .collect();
    let own = (0..w)
        .filter(|b| !packed.contains(b))
        .filter(|&b| !crate::passes::pack_luts::trivial(&crate::passes::pack_luts::column(g, v, b)))
        .count() as u64;
    own << r.bits.saturating_sub(6)
}

/// Build the report of a compiled graph.
pub fn build(g: &Dfg, part: &'static Part, clock_ns: f64) -> Report {
    let mut layers: Vec<LayerFigures> = g
        .layers
        .iter()
        .map(|l| LayerFigures {
            name: l.name.clone(),
            kind: l.kind.to_string(),
            min_width: u32::MAX,
            first_stage: u32::MAX,
            ..Default::default()
        })
        .collect();
    // A LUT6_2 pair counts once, in the layer of its first user.
    for p in &g.packed {
        if let Some(&(v, _, _)) = p.users.first() {
            layers[g.node(v).layer.0 as usize].lut += 1;
        }
    }
    for v in g.ids() {
        let n = g.node(v);
        let f = &mut layers[n.layer.0 as usize];
        let (lut, ff, carry, adders, logic) = node_cost(g, v);
        f.lut += lut;
        f.ff += ff;
        f.carry += carry;
        f.adders += adders;
        f.logic += logic;
        if !matches!(n.op, Op::Reg { .. } | Op::Const { .. }) {
            let w = n.iv.fixed_type().width;
            f.min_width = f.min_width.min(w);
            f.max_width = f.max_width.max(w);
            let s = n.stage.unwrap_or(0);
            f.first_stage = f.first_stage.min(s);
            f.last_stage = f.last_stage.max(s);
        }
    }
    // Layers that vanished entirely (folded BatchNorm, constant outputs) keep zeros.
    for f in &mut layers {
        if f.min_width == u32::MAX {
            f.min_width = 0;
            f.first_stage = 0;
        }
    }
    let latency = g.latency.unwrap_or(0);
    let layout = crate::emit::port_layout(g);
    let lut = layers.iter().map(|l| l.lut).sum();
    let ff = layers.iter().map(|l| l.ff).sum::<u64>() + latency as u64;
    let carry = layers.iter().map(|l| l.carry).sum();
    Report {
        model: g.model_name.clone(),
        top: g.top.clone().unwrap_or_default(),
        part,
        clock_ns,
        latency,
        ii: 1,
        layers,
        lut,
        ff,
        carry,
        dsp: 0,
        in_width: layout.in_width,
        out_width: layout.out_width,
        inputs: layout.inputs.iter().map(|(_, t)| t.to_string()).collect(),
        outputs: layout.outputs.iter().map(|(_, t)| t.to_string()).collect(),
    }
}

fn pct(x: u64, total: u64) -> String {
    format!("{:.2}%", 100.0 * x as f64 / total as f64)
}

impl Report {
    /// The human table for standard output.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} -> module {} on {} ({}), clock {} ns",
            self.model, self.top, self.part.name, self.part.family, self.clock_ns
        );
        let _ = writeln!(
            s,
            "{:<20} {:<9} {:>7} {:>6} {:>9} {:>7} {:>8} {:>8} {:>7}",
            "layer", "kind", "adders", "logic", "bits", "stages", "LUT", "FF", "CARRY"
        );
        for l in &self.layers {
            let mut name = l.name.chars().take(20).collect::<String>();
            name = name.replace(|c: char| c.is_control(), "?");
            let stages = if l.first_stage == l.last_stage {
                format!("{}", l.first_stage)
            } else {
                format!("{}-{}", l.first_stage, l.last_stage)
            };
            let _ = writeln!(
                s,
                "{:<20} {:<9} {:>7} {:>6} {:>9} {:>7} {:>8} {:>8} {:>7}",
                name,
                l.kind,
                l.adders,
                l.logic,
                format!("{}..{}", l.min_width, l.max_width),
                stages,
                l.lut,
                l.ff,
                l.carry
            );
        }
        let _ = writeln!(
            s,
            "latency {} cycles = {:.1} ns at II = {}; estimate LUT {} ({}), FF {} ({}), CARRY8 {}, DSP {} ({})",
            self.latency,
            self.latency as f64 * self.clock_ns,
            self.ii,
            self.lut,
            pct(self.lut, self.part.luts),
            self.ff,
            pct(self.ff, self.part.ffs),
            self.carry,
            self.dsp,
            pct(self.dsp, self.part.dsps)
        );
        let _ = writeln!(
            s,
            "ports: in_data {} bits ({} elements), out_data {} bits ({} elements)",
            self.in_width,
            self.inputs.len(),
            self.out_width,
            self.outputs.len()
        );
        s
    }

    /// The machine-readable report.
    pub fn json(&self) -> Value {
        json!({
            "model": self.model,
            "top": self.top,
            "target": {"part": self.part.name, "family": self.part.family,
                       "luts": self.part.luts, "ffs": self.part.ffs, "dsps": self.part.dsps},
            "clock_ns": self.clock_ns,
            "latency_cycles": self.latency,
            "latency_ns": self.latency as f64 * self.clock_ns,
            "ii": self.ii,
            "estimate": {"lut": self.lut, "ff": self.ff, "carry8": self.carry, "dsp": self.dsp},
            "ports": {"in_width": self.in_width, "out_width": self.out_width,
                      "inputs": self.inputs, "outputs": self.outputs},
            "layers": self.layers.iter().map(|l| json!({
                "name": l.name, "kind": l.kind, "adders": l.adders, "logic": l.logic,
                "min_width": l.min_width, "max_width": l.max_width,
                "first_stage": l.first_stage, "last_stage": l.last_stage,
                "lut": l.lut, "ff": l.ff, "carry8": l.carry,
            })).collect::<Vec<_>>(),
        })
    }
}
