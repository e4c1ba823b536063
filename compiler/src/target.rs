//! FPGA parts the compiler knows: family, resource totals (for the utilisation column of the report)
//! and the delay model of the family (used by the scheduler). Adding a part is adding a row here.
//!
//! Delay figures for UltraScale+ come from FloPoCo's `VirtexUltrascalePlus` target
//! (`flopoco/code/HWTargets/src/Targets/VirtexUltrascalePlus.{hpp,cpp}`, xcvu3p -2, numbers "cut from
//! Vivado timing reports"): LUT 0.035 ns, CARRY8 0.015 ns per 8 bits, flip-flop 0.150 ns. For routing
//! FloPoCo's 7-series targets use a typical local routing delay of 0.5 ns per LUT level
//! (`typicalLocalRoutingDelay_`); we take 0.3 ns for UltraScale+'s faster interconnect, an estimate
//! until calibration. They are a model, not a timing report: pipelining decisions need the
//! shape (carry chains are cheap per bit, routing dominates) more than the last picosecond. Issue 4
//! calibrates them against synthesis. Resource totals are the parts' product tables (AMD DS890).

/// A device family's delay model, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DelayModel {
    /// One LUT's logic delay.
    pub lut: f64,
    /// Routing in front of each LUT level.
    pub route: f64,
    /// Carry propagation through one CARRY8 (8 bits).
    pub carry8: f64,
    /// Clock-to-out plus setup of a flip-flop: the per-stage overhead.
    pub ff: f64,
}

impl DelayModel {
    /// An adder or subtractor of `width` bits: one LUT level feeding the carry chain.
    pub fn adder(&self, width: u32) -> f64 {
        self.route + self.lut + width.div_ceil(8) as f64 * self.carry8
    }
    /// A ternary adder of `width` bits: the carry-save bit of position i comes from the LUT of
    /// position i-1, so two LUT levels (each with its routing) feed the carry chain.
    pub fn adder3(&self, width: u32) -> f64 {
        2.0 * (self.route + self.lut) + width.div_ceil(8) as f64 * self.carry8
    }
    /// A ROM on `bits` address bits built from LUTs: one LUT6 level up to 6 bits, the MUXF7/MUXF8
    /// after it up to 8, then a further LUT level per 4 more bits (a 16:1 mux tree of LUT6 outputs).
    pub fn rom(&self, bits: u32) -> f64 {
        match bits {
            0..=6 => self.logic(1),
            7..=8 => self.logic(1) + 0.1 * (bits - 6) as f64,
            _ => self.logic(1 + (bits - 8).div_ceil(4)) + 0.2,
        }
    }
    /// A comparator of `width` bits on the carry chain and the multiplexer it drives.
    pub fn max(&self, width: u32) -> f64 {
        self.adder(width) + self.logic(1)
    }
    /// A LUT-built product of a `wa`-bit and a `wb`-bit variable: the partial products (one per bit of
    /// the narrower operand, each formed in the first adder's LUTs) summed by a balanced adder tree.
    pub fn mul(&self, wa: u32, wb: u32) -> f64 {
        let n = wa.min(wb).max(2);
        let levels = 32 - (n - 1).leading_zeros();
        levels as f64 * self.adder(wa + wb)
    }
    /// `levels` levels of plain LUT logic.
    pub fn logic(&self, levels: u32) -> f64 {
        levels as f64 * (self.route + self.lut)
    }
}

pub const ULTRASCALE_PLUS: DelayModel = DelayModel {
    lut: 0.035,
    route: 0.3,
    carry8: 0.015,
    ff: 0.150,
};

/// A part: name, family and resource totals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part {
    pub name: &'static str,
    pub family: &'static str,
    pub luts: u64,
    pub ffs: u64,
    pub dsps: u64,
    pub bram36: u64,
    pub delay: DelayModel,
}

/// The parts `--target` accepts (a full part number such as `xcvu9p-flga2577-2-e` selects its device).
pub const PARTS: &[Part] = &[
    Part {
        name: "xcvu9p",
        family: "Virtex UltraScale+",
        luts: 1_182_240,
        ffs: 2_364_480,
        dsps: 6_840,
        bram36: 2_160,
        delay: ULTRASCALE_PLUS,
    },
    Part {
        name: "xcvu13p",
        family: "Virtex UltraScale+",
        luts: 1_728_000,
        ffs: 3_456_000,
        dsps: 12_288,
        bram36: 2_688,
        delay: ULTRASCALE_PLUS,
    },
    Part {
        name: "xcu250",
        family: "Alveo U250 (Virtex UltraScale+ VU13P class)",
        luts: 1_728_000,
        ffs: 3_456_000,
        dsps: 12_288,
        bram36: 2_688,
        delay: ULTRASCALE_PLUS,
    },
];

/// Find a part by device name or full part number (case-insensitive).
pub fn find_part(name: &str) -> Result<&'static Part, crate::diag::Diagnostic> {
    let lower = name.to_ascii_lowercase();
    PARTS
        .iter()
        .find(|p| lower == p.name || lower.starts_with(&format!("{}-", p.name)))
        .ok_or_else(|| {
            let known: Vec<&str> = PARTS.iter().map(|p| p.name).collect();
            crate::diag::Diagnostic::error(format!("unknown target part {name:?}"))
                .help(format!("known parts: {}", known.join(", ")))
        })
}
