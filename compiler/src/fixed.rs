//! Exact fixed-point arithmetic: the one place where rounding and overflow are defined.
//!
//! Every bit the compiler produces goes through this module: the golden model calls [`Quantizer::apply`]
//! and the Verilog emitter prints the very same [`RoundPlan`] and [`OverflowPlan`] that `apply` executes,
//! so the software model and the hardware cannot disagree about what `RND_CONV` or `SAT_SYM` means.
//! Nothing outside this module may implement a rounding or an overflow rule.
//!
//! Why our own type: widths come from a model file at run time, and the modes are the `ap_fixed` ones.
//! The `fixed` crate has compile-time widths and truncation only; rust-hdl's `Bits<N>` is compile-time too.
//! A value is an `i128` mantissa with a binary point position (`frac`), which holds every user type
//! (at most 64 bits) and every accumulator the range analysis admits (at most [`MAX_WIDTH`] bits); a
//! big-integer type would make the golden model several times slower for no model we can build.
//!
//! Semantics follow Xilinx `ap_fixed` (`ap_fixed_base.h`, `quantization_adjust` / `overflow_adjust`):
//! rounding first (from the first dropped bit, the OR of the others, the sign and the kept LSB), then
//! overflow; `SAT_SYM` turns only an *underflow* into `-max` (an in-range minimum stays), `SAT_ZERO` turns
//! any overflow into 0.

use std::fmt;

/// Widest intermediate value the compiler handles exactly (bits, sign included). `i128` minus headroom
/// for one alignment shift inside an addition.
pub const MAX_WIDTH: u32 = 120;

/// Widest user-declared type (`fixed<W,I>` with `W <= 64`).
pub const MAX_USER_WIDTH: u32 = 64;

/// How dropped fractional bits are handled (the `ap_fixed` `ap_q_mode`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rounding {
    /// Towards minus infinity (floor); the default.
    Trn,
    /// Towards zero.
    TrnZero,
    /// Nearest, ties towards plus infinity.
    Rnd,
    /// Nearest, ties towards zero.
    RndZero,
    /// Nearest, ties away from zero.
    RndInf,
    /// Nearest, ties towards minus infinity.
    RndMinInf,
    /// Nearest, ties to even (convergent).
    RndConv,
}

/// What happens to a value outside the target range (the `ap_fixed` `ap_o_mode`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Overflow {
    /// Keep the low `W` bits (two's complement wrap-around); the default.
    Wrap,
    /// Clamp to the minimum or the maximum.
    Sat,
    /// Any out-of-range value becomes zero.
    SatZero,
    /// Clamp to `max` or `-max` (signed types only differ from `Sat`).
    SatSym,
}

impl Rounding {
    pub const ALL: [Rounding; 7] = [
        Rounding::Trn,
        Rounding::TrnZero,
        Rounding::Rnd,
        Rounding::RndZero,
        Rounding::RndInf,
        Rounding::RndMinInf,
        Rounding::RndConv,
    ];
    /// The `ap_fixed` spelling without the `AP_` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::Trn => "TRN",
            Rounding::TrnZero => "TRN_ZERO",
            Rounding::Rnd => "RND",
            Rounding::RndZero => "RND_ZERO",
            Rounding::RndInf => "RND_INF",
            Rounding::RndMinInf => "RND_MIN_INF",
            Rounding::RndConv => "RND_CONV",
        }
    }
    pub fn parse(s: &str) -> Option<Rounding> {
        let s = s.strip_prefix("AP_").unwrap_or(s);
        Rounding::ALL.into_iter().find(|r| r.name() == s)
    }
}

impl Overflow {
    pub const ALL: [Overflow; 4] = [
        Overflow::Wrap,
        Overflow::Sat,
        Overflow::SatZero,
        Overflow::SatSym,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Overflow::Wrap => "WRAP",
            Overflow::Sat => "SAT",
            Overflow::SatZero => "SAT_ZERO",
            Overflow::SatSym => "SAT_SYM",
        }
    }
    pub fn parse(s: &str) -> Option<Overflow> {
        let s = s.strip_prefix("AP_").unwrap_or(s);
        Overflow::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// A binary fixed-point format: `width` bits, of which `frac` are fractional (`frac` may be negative or
/// exceed `width`). The value of mantissa `m` is `m * 2^-frac`. `ap_fixed<W,I>` is `width = W`,
/// `frac = W - I`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FixedType {
    pub signed: bool,
    pub width: u32,
    pub frac: i32,
}

impl FixedType {
    /// `ap_fixed<W,I>` / `ap_ufixed<W,I>`.
    pub fn ap(signed: bool, width: u32, int_bits: i32) -> FixedType {
        FixedType {
            signed,
            width,
            frac: width as i32 - int_bits,
        }
    }
    /// Integer bits in the `ap_fixed` sense (the sign bit counts).
    pub fn int_bits(&self) -> i32 {
        self.width as i32 - self.frac
    }
    /// Smallest mantissa.
    pub fn min_mant(&self) -> i128 {
        if self.signed {
            -(1i128 << (self.width - 1))
        } else {
            0
        }
    }
    /// Largest mantissa.
    pub fn max_mant(&self) -> i128 {
        if self.signed {
            (1i128 << (self.width - 1)) - 1
        } else {
            (1i128 << self.width) - 1
        }
    }
    /// Does mantissa `m` fit this type?
    pub fn contains(&self, m: i128) -> bool {
        m >= self.min_mant() && m <= self.max_mant()
    }
    /// Does every value of `iv` (at any binary point) fit this type exactly, with no rounding?
    pub fn contains_interval(&self, iv: Interval) -> bool {
        if iv.frac > self.frac {
            return false;
        }
        if self.frac - iv.frac > 100 {
            // Shifting that far overflows any non-zero value out of a 64-bit type anyway.
            return iv.lo == 0 && iv.hi == 0;
        }
        let s = iv.at_frac(self.frac);
        self.contains(s.lo) && self.contains(s.hi)
    }
    /// The interval of all mantissas of this type.
    pub fn interval(&self) -> Interval {
        Interval {
            lo: self.min_mant(),
            hi: self.max_mant(),
            frac: self.frac,
        }
    }
    /// Reinterpret the low `width` bits of `m` as a mantissa of this type (two's-complement wrap).
    pub fn wrap(&self, m: i128) -> i128 {
        let w = self.width;
        let mask: i128 = if w >= 127 { -1 } else { (1i128 << w) - 1 };
        let low = m & mask;
        if self.signed && w < 127 && (low >> (w - 1)) & 1 == 1 {
            low - (1i128 << w)
        } else {
            low
        }
    }
}

impl fmt::Display for FixedType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.signed { "fixed" } else { "ufixed" };
        write!(f, "{kind}<{},{}>", self.width, self.int_bits())
    }
}

/// A closed interval of mantissas at binary point `frac`: the exact set of values a wire can carry is a
/// subset of `[lo, hi] * 2^-frac`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    pub lo: i128,
    pub hi: i128,
    pub frac: i32,
}

/// Bits needed for an unsigned magnitude `v >= 0`.
fn ubits(v: i128) -> u32 {
    128 - v.leading_zeros()
}

impl Interval {
    pub fn point(m: i128, frac: i32) -> Interval {
        Interval { lo: m, hi: m, frac }
    }
    /// The narrowest format holding every value of the interval at its `frac` (a zero-width interval
    /// `[0, 0]` still gets one bit so every wire exists).
    pub fn fixed_type(&self) -> FixedType {
        let signed = self.lo < 0;
        let width = if signed {
            // A negative number -x needs bits(x-1)+1; a positive one bits(x)+1.
            ubits(-(self.lo + 1)).max(ubits(self.hi.max(0))) + 1
        } else {
            ubits(self.hi).max(1)
        };
        FixedType {
            signed,
            width,
            frac: self.frac,
        }
    }
    /// The same interval expressed at a finer binary point (`frac >= self.frac`).
    pub fn at_frac(&self, frac: i32) -> Interval {
        debug_assert!(frac >= self.frac);
        let s = (frac - self.frac) as u32;
        Interval {
            lo: self.lo << s,
            hi: self.hi << s,
            frac,
        }
    }
    pub fn contains(&self, m: i128) -> bool {
        self.lo <= m && m <= self.hi
    }
    /// [`Interval::at_frac`], or `None` when the result would leave the exact arithmetic
    /// ([`MAX_WIDTH`] bits).
    pub fn checked_at_frac(&self, frac: i32) -> Option<Interval> {
        if frac < self.frac {
            return None;
        }
        let s = (frac - self.frac) as u32;
        if self.fixed_type().width + s > MAX_WIDTH {
            return None;
        }
        Some(self.at_frac(frac))
    }
}

/// Align a mantissa from binary point `from` to a finer binary point `to` (`to >= from`).
#[inline]
pub fn align(m: i128, from: i32, to: i32) -> i128 {
    debug_assert!(to >= from);
    m << ((to - from) as u32)
}

/// Which single bit a rounding adds on top of its constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundBit {
    /// Nothing.
    None,
    /// The lowest kept bit (bit `drop` of the source): ties to even.
    KeptLsb,
    /// 1 when the source is negative.
    Negative,
    /// 1 when the source is not negative.
    NonNegative,
}

/// Rounding as hardware does it: `(m + constant + (cond ? addend : 0)) >> drop` with an arithmetic shift.
/// [`Quantizer::apply`] runs exactly this plan; the emitter prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundPlan {
    /// Fractional bits dropped (0: no rounding work at all).
    pub drop: u32,
    /// Added unconditionally before the shift.
    pub constant: i128,
    /// The condition under which `addend` is also added.
    pub bit: RoundBit,
    /// Added when `bit` holds.
    pub addend: i128,
}

impl RoundPlan {
    /// The plan for dropping `drop` low bits of a value whose sign is known only at run time.
    pub fn new(mode: Rounding, drop: u32) -> RoundPlan {
        if drop == 0 {
            return RoundPlan {
                drop,
                constant: 0,
                bit: RoundBit::None,
                addend: 0,
            };
        }
        let half = 1i128 << (drop - 1);
        let (constant, bit, addend) = match mode {
            Rounding::Trn => (0, RoundBit::None, 0),
            // Negative with any dropped bit set rounds up by one step: add all ones below the point.
            Rounding::TrnZero => (0, RoundBit::Negative, (1i128 << drop) - 1),
            Rounding::Rnd => (half, RoundBit::None, 0),
            Rounding::RndMinInf => (half - 1, RoundBit::None, 0),
            // Ties: up for negatives (towards zero), down for positives.
            Rounding::RndZero => (half - 1, RoundBit::Negative, 1),
            Rounding::RndInf => (half - 1, RoundBit::NonNegative, 1),
            Rounding::RndConv => (half - 1, RoundBit::KeptLsb, 1),
        };
        RoundPlan {
            drop,
            constant,
            bit,
            addend,
        }
    }

    /// Execute the plan on a mantissa.
    #[inline]
    pub fn apply(&self, m: i128) -> i128 {
        if self.drop == 0 {
            return m;
        }
        let cond = match self.bit {
            RoundBit::None => false,
            RoundBit::KeptLsb => (m >> self.drop) & 1 == 1,
            RoundBit::Negative => m < 0,
            RoundBit::NonNegative => m >= 0,
        };
        let add = self.constant + if cond { self.addend } else { 0 };
        (m + add) >> self.drop
    }

    /// The exact range of `apply` over an input interval (rounding is monotonic).
    pub fn range(&self, src: Interval) -> (i128, i128) {
        (self.apply(src.lo), self.apply(src.hi))
    }
}

/// Overflow handling for a target type: what an out-of-range (already rounded) mantissa becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverflowPlan {
    pub mode: Overflow,
    pub target: FixedType,
    /// Replacement for a too-large value (unused for `Wrap`).
    pub on_high: i128,
    /// Replacement for a too-small value (unused for `Wrap`).
    pub on_low: i128,
}

impl OverflowPlan {
    pub fn new(mode: Overflow, target: FixedType) -> OverflowPlan {
        let (min, max) = (target.min_mant(), target.max_mant());
        let (on_high, on_low) = match mode {
            Overflow::Wrap => (0, 0),
            Overflow::Sat => (max, min),
            Overflow::SatZero => (0, 0),
            Overflow::SatSym => (max, if target.signed { -max } else { min }),
        };
        OverflowPlan {
            mode,
            target,
            on_high,
            on_low,
        }
    }

    #[inline]
    pub fn apply(&self, m: i128) -> i128 {
        if self.mode == Overflow::Wrap {
            return self.target.wrap(m);
        }
        if m > self.target.max_mant() {
            self.on_high
        } else if m < self.target.min_mant() {
            self.on_low
        } else {
            m
        }
    }
}

/// A quantiser: a target type with its rounding and overflow modes (`ap_fixed<W,I,Q,O>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quantizer {
    pub ty: FixedType,
    pub rounding: Rounding,
    pub overflow: Overflow,
}

impl Quantizer {
    pub fn new(ty: FixedType, rounding: Rounding, overflow: Overflow) -> Quantizer {
        Quantizer {
            ty,
            rounding,
            overflow,
        }
    }

    /// The rounding step for a source at binary point `src_frac`, or `None` when the target is at
    /// least as fine (the source is then shifted left, exactly).
    pub fn round_plan(&self, src_frac: i32) -> RoundPlan {
        let drop = (src_frac - self.ty.frac).max(0) as u32;
        RoundPlan::new(self.rounding, drop)
    }

    pub fn overflow_plan(&self) -> OverflowPlan {
        OverflowPlan::new(self.overflow, self.ty)
    }

    /// The rounded (not yet overflowed) interval for a source interval.
    pub fn rounded_range(&self, src: Interval) -> Interval {
        if src.frac >= self.ty.frac {
            let (lo, hi) = self.round_plan(src.frac).range(src);
            Interval {
                lo,
                hi,
                frac: self.ty.frac,
            }
        } else {
            src.at_frac(self.ty.frac)
        }
    }

    /// Does quantising values of `src` need a rounding adder (anything but dropping bits)?
    pub fn needs_round_adder(&self, src: Interval) -> bool {
        let p = self.round_plan(src.frac);
        p.drop > 0 && (p.constant != 0 || p.bit != RoundBit::None)
    }

    /// Can a value of `src` leave the target range after rounding (so overflow logic matters)?
    pub fn can_overflow(&self, src: Interval) -> bool {
        let r = self.rounded_range(src);
        !(self.ty.contains(r.lo) && self.ty.contains(r.hi))
    }

    /// Quantise mantissa `m` at binary point `src_frac`; the result is a mantissa of `self.ty`.
    #[inline]
    pub fn apply(&self, m: i128, src_frac: i32) -> i128 {
        let rounded = if src_frac >= self.ty.frac {
            self.round_plan(src_frac).apply(m)
        } else {
            align(m, src_frac, self.ty.frac)
        };
        self.overflow_plan().apply(rounded)
    }

    /// The exact set of results over a source interval. Rounding is monotonic; saturation keeps order;
    /// a wrap keeps it only when nothing overflows, otherwise any value of the type may come out.
    pub fn range(&self, src: Interval) -> Interval {
        let Interval { lo, hi, .. } = self.rounded_range(src);
        let full = self.ty.interval();
        if lo >= full.lo && hi <= full.hi {
            return Interval {
                lo,
                hi,
                frac: self.ty.frac,
            };
        }
        if self.overflow == Overflow::Wrap {
            return full;
        }
        // Saturating modes: the in-range part keeps its place, out-of-range values become their
        // replacements (which for SAT_SYM and SAT_ZERO need not be the range's ends).
        let plan = self.overflow_plan();
        let (mut rlo, mut rhi) = (lo.max(full.lo), hi.min(full.hi));
        if rlo > rhi {
            (rlo, rhi) = (i128::MAX, i128::MIN);
        }
        if hi > full.hi {
            rlo = rlo.min(plan.on_high);
            rhi = rhi.max(plan.on_high);
        }
        if lo < full.lo {
            rlo = rlo.min(plan.on_low);
            rhi = rhi.max(plan.on_low);
        }
        Interval {
            lo: rlo,
            hi: rhi,
            frac: self.ty.frac,
        }
    }

    /// Quantise a real number (the `predict` command's inputs): the exact binary value of the `f64` is
    /// rounded by this quantiser's own mode, so `0.1` goes through `RND_CONV` exactly as a fixed-point
    /// value with 1074 fractional bits would.
    pub fn quantize_f64(&self, x: f64) -> Result<i128, String> {
        if !x.is_finite() {
            return Err(format!("{x} is not a finite number"));
        }
        if x == 0.0 {
            return Ok(self.overflow_plan().apply(0));
        }
        // x = mant * 2^exp exactly, mant < 2^53.
        let bits = x.to_bits();
        let exp_bits = ((bits >> 52) & 0x7ff) as i32;
        let frac_bits = (bits & ((1u64 << 52) - 1)) as i128;
        let (mant, exp) = if exp_bits == 0 {
            (frac_bits, -1074)
        } else {
            (frac_bits | (1i128 << 52), exp_bits - 1075)
        };
        let mant = if x < 0.0 { -mant } else { mant };
        // value = mant * 2^exp = mant * 2^-src_frac with src_frac = -exp.
        let src_frac = -exp;
        let tf = self.ty.frac;
        let rounded = if src_frac >= tf {
            let drop = (src_frac - tf) as u32;
            if drop > 100 {
                // Everything is below the step: only the sign and "non-zero" matter.
                let tiny = if mant < 0 { -1i128 } else { 1i128 };
                RoundPlan::new(self.rounding, 2).apply(tiny)
            } else {
                RoundPlan::new(self.rounding, drop).apply(mant)
            }
        } else {
            let up = (tf - src_frac) as u32;
            // Saturate huge values before they leave i128; the overflow rule then sees "too big".
            if up + 54 >= 126 {
                if mant < 0 {
                    i128::MIN / 4
                } else {
                    i128::MAX / 4
                }
            } else {
                mant << up
            }
        };
        if self.overflow == Overflow::Wrap
            && !self.ty.contains(rounded)
            && rounded.abs() > (1i128 << 110)
        {
            return Err(format!("{x} is far outside {} and would wrap", self.ty));
        }
        Ok(self.overflow_plan().apply(rounded))
    }
}

impl fmt::Display for Quantizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.ty.signed { "fixed" } else { "ufixed" };
        write!(
            f,
            "{kind}<{},{},{},{}>",
            self.ty.width,
            self.ty.int_bits(),
            self.rounding.name(),
            self.overflow.name()
        )
    }
}

/// The value of a mantissa as an `f64` (for reports and float comparisons only, never for results).
pub fn to_f64(m: i128, frac: i32) -> f64 {
    (m as f64) * (2f64).powi(-frac)
}

/// The exact decimal expansion of `m * 2^-frac` (every binary fraction has a finite decimal one), so
/// `predict` can print results that lose nothing.
pub fn to_decimal(m: i128, frac: i32) -> String {
    if frac <= 0 {
        // Integer: m * 2^-frac. Beyond i128 does not happen for admitted widths.
        return (m << ((-frac) as u32)).to_string();
    }
    let neg = m < 0;
    let a = m.unsigned_abs();
    let f = frac as u32;
    let int_part = a >> f;
    let mut rem = a & ((1u128 << f) - 1);
    let mut digits = String::new();
    // Each step multiplies the fractional remainder by 10; it terminates after `frac` digits at most.
    // To avoid overflow for large frac, work with 5^k scaling: rem * 10 may exceed u128 only if
    // frac > 124, which admitted widths never produce.
    while rem != 0 {
        rem *= 10;
        digits.push(char::from(b'0' + (rem >> f) as u8));
        rem &= (1u128 << f) - 1;
    }
    let sign = if neg && (int_part != 0 || !digits.is_empty()) {
        "-"
    } else {
        ""
    };
    if digits.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{digits}")
    }
}

#[cfg(test)]
mod tests {
    //! Property tests against a textbook reference: floor division with an explicit remainder and the
    //! rounding rules written as comparisons of the remainder with one half. It shares no code with the
    //! bit-level plans above.
    use super::*;
    use proptest::prelude::*;

    fn reference_round(m: i128, drop: u32, mode: Rounding) -> i128 {
        if drop == 0 {
            return m;
        }
        let d = 1i128 << drop;
        let q = m.div_euclid(d); // floor
        let r = m.rem_euclid(d); // 0 <= r < d
        let twice = 2 * r;
        let exact = r == 0;
        let neg = m < 0;
        match mode {
            Rounding::Trn => q,
            Rounding::TrnZero => {
                if neg && !exact {
                    q + 1
                } else {
                    q
                }
            }
            _ => {
                if twice < d {
                    q
                } else if twice > d {
                    q + 1
                } else {
                    // exact tie between q and q+1
                    match mode {
                        Rounding::Rnd => q + 1,
                        Rounding::RndMinInf => q,
                        Rounding::RndZero => {
                            if neg {
                                q + 1
                            } else {
                                q
                            }
                        }
                        Rounding::RndInf => {
                            if neg {
                                q
                            } else {
                                q + 1
                            }
                        }
                        Rounding::RndConv => {
                            if q % 2 == 0 {
                                q
                            } else {
                                q + 1
                            }
                        }
                        Rounding::Trn | Rounding::TrnZero => unreachable!(),
                    }
                }
            }
        }
    }

    fn reference_overflow(m: i128, ty: FixedType, mode: Overflow) -> i128 {
        let (min, max) = (ty.min_mant(), ty.max_mant());
        if m >= min && m <= max {
            return m;
        }
        match mode {
            Overflow::Wrap => {
                let modulus = 1i128 << ty.width;
                let mut v = m.rem_euclid(modulus);
                if ty.signed && v > max {
                    v -= modulus;
                }
                v
            }
            Overflow::Sat => m.clamp(min, max),
            Overflow::SatZero => 0,
            Overflow::SatSym => {
                if m > max {
                    max
                } else if ty.signed {
                    -max
                } else {
                    min
                }
            }
        }
    }

    fn arb_rounding() -> impl Strategy<Value = Rounding> {
        prop::sample::select(Rounding::ALL.to_vec())
    }
    fn arb_overflow() -> impl Strategy<Value = Overflow> {
        prop::sample::select(Overflow::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn rounding_matches_reference(m in -(1i128 << 100)..(1i128 << 100), drop in 0u32..20, mode in arb_rounding()) {
            prop_assert_eq!(RoundPlan::new(mode, drop).apply(m), reference_round(m, drop, mode));
        }

        #[test]
        fn rounding_small_values_all_modes(m in -300i128..300, drop in 0u32..6, mode in arb_rounding()) {
            prop_assert_eq!(RoundPlan::new(mode, drop).apply(m), reference_round(m, drop, mode));
        }

        #[test]
        fn quantize_matches_reference(
            m in -(1i128 << 70)..(1i128 << 70),
            src_frac in -8i32..40,
            signed in any::<bool>(),
            width in 1u32..=64,
            int_bits in -10i32..70,
            r in arb_rounding(),
            o in arb_overflow(),
        ) {
            let ty = FixedType::ap(signed, width, int_bits);
            let q = Quantizer::new(ty, r, o);
            let rounded = if src_frac >= ty.frac {
                reference_round(m, (src_frac - ty.frac) as u32, r)
            } else if ty.frac - src_frac < 50 {
                m << (ty.frac - src_frac)
            } else {
                return Ok(());
            };
            let want = reference_overflow(rounded, ty, o);
            let got = q.apply(m, src_frac);
            prop_assert_eq!(got, want);
            prop_assert!(ty.contains(got));
        }

        #[test]
        fn range_is_sound(
            a in -5000i128..5000, b in -5000i128..5000,
            src_frac in -2i32..10,
            signed in any::<bool>(), width in 1u32..10, int_bits in -3i32..8,
            r in arb_rounding(), o in arb_overflow(),
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            let q = Quantizer::new(FixedType::ap(signed, width, int_bits), r, o);
            let iv = q.range(Interval { lo, hi, frac: src_frac });
            // Sample the interval densely at its ends and in the middle.
            for m in (lo..=hi).step_by(((hi - lo) / 200).max(1) as usize).chain([hi]) {
                let v = q.apply(m, src_frac);
                prop_assert!(iv.contains(v), "{} -> {} not in {:?}", m, v, iv);
            }
        }

        #[test]
        fn interval_type_is_minimal(lo in -100000i128..100000, len in 0i128..100000) {
            let hi = lo + len;
            let t = Interval { lo, hi, frac: 0 }.fixed_type();
            prop_assert!(t.contains(lo) && t.contains(hi));
            if t.width > 1 {
                let smaller = FixedType { width: t.width - 1, ..t };
                prop_assert!(!(smaller.contains(lo) && smaller.contains(hi)));
            }
        }

        #[test]
        fn quantize_f64_matches_exact(m in -(1i64 << 40)..(1i64 << 40), e in -30i32..10, r in arb_rounding()) {
            // x = m * 2^e is exact in f64; quantise it as a real and as a mantissa: same answer.
            let x = (m as f64) * 2f64.powi(e);
            let q = Quantizer::new(FixedType::ap(true, 24, 12), r, Overflow::Sat);
            prop_assert_eq!(q.quantize_f64(x).unwrap(), q.apply(m as i128, -e));
        }
    }

    #[test]
    fn ap_fixed_examples() {
        // ap_fixed<4,2,AP_RND_CONV>: 0.625 = 5/8 -> step 1/4: 2.5 steps, ties to even -> 2 -> 0.5
        let q = Quantizer::new(FixedType::ap(true, 4, 2), Rounding::RndConv, Overflow::Wrap);
        assert_eq!(q.apply(5, 3), 2);
        assert_eq!(q.apply(7, 3), 4); // 3.5 steps -> 4
                                      // SAT_SYM: underflow gives -max, an in-range minimum stays.
        let s = Quantizer::new(FixedType::ap(true, 4, 4), Rounding::Trn, Overflow::SatSym);
        assert_eq!(s.apply(-9, 0), -7);
        assert_eq!(s.apply(-8, 0), -8);
        assert_eq!(s.apply(100, 0), 7);
        let z = Quantizer::new(FixedType::ap(true, 4, 4), Rounding::Trn, Overflow::SatZero);
        assert_eq!(z.apply(100, 0), 0);
        // WRAP on an unsigned type.
        let w = Quantizer::new(FixedType::ap(false, 3, 3), Rounding::Trn, Overflow::Wrap);
        assert_eq!(w.apply(-1, 0), 7);
    }

    #[test]
    fn decimal_is_exact() {
        assert_eq!(to_decimal(5, 3), "0.625");
        assert_eq!(to_decimal(-5, 3), "-0.625");
        assert_eq!(to_decimal(-16, 3), "-2");
        assert_eq!(to_decimal(3, -2), "12");
        assert_eq!(to_decimal(0, 5), "0");
    }
}
