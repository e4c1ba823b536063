//! The type-string grammar of model.json: `fixed<W,I[,Q[,O]]>`, `ufixed<...>` and the `ap_` spellings.
//! Parses only; the meaning of the modes lives in `crate::fixed`.

use crate::fixed::{FixedType, Overflow, Quantizer, Rounding, MAX_USER_WIDTH};

/// Parse a type string into a quantiser (modes default to TRN and WRAP, as in `ap_fixed`).
pub fn parse_type(s: &str) -> Result<Quantizer, String> {
    let t = s.trim();
    let (signed, rest) = if let Some(r) = t
        .strip_prefix("ap_ufixed<")
        .or_else(|| t.strip_prefix("ufixed<"))
    {
        (false, r)
    } else if let Some(r) = t
        .strip_prefix("ap_fixed<")
        .or_else(|| t.strip_prefix("fixed<"))
    {
        (true, r)
    } else {
        return Err("expected fixed<...> or ufixed<...>".into());
    };
    let body = rest.strip_suffix('>').ok_or("missing the closing '>'")?;
    let parts: Vec<&str> = body.split(',').map(str::trim).collect();
    if parts.len() < 2 || parts.len() > 4 {
        return Err(format!(
            "expected 2 to 4 parameters <W,I[,Q[,O]]>, found {}",
            parts.len()
        ));
    }
    let width: u32 = parts[0]
        .parse()
        .map_err(|_| format!("the width {:?} is not a positive integer", parts[0]))?;
    if width == 0 || width > MAX_USER_WIDTH {
        return Err(format!(
            "the width must be between 1 and {MAX_USER_WIDTH}, found {width}"
        ));
    }
    let int_bits: i32 = parts[1]
        .parse()
        .map_err(|_| format!("the integer bits {:?} are not an integer", parts[1]))?;
    if int_bits.unsigned_abs() > 512 {
        return Err(format!(
            "integer bits {int_bits} are out of the supported range -512..=512"
        ));
    }
    let rounding = match parts.get(2) {
        None => Rounding::Trn,
        Some(r) => Rounding::parse(r).ok_or_else(|| format!("unknown rounding mode {r:?}"))?,
    };
    let overflow = match parts.get(3) {
        None => Overflow::Wrap,
        Some(o) => Overflow::parse(o).ok_or_else(|| format!("unknown overflow mode {o:?}"))?,
    };
    Ok(Quantizer::new(
        FixedType::ap(signed, width, int_bits),
        rounding,
        overflow,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_vocabulary() {
        let q = parse_type("ap_fixed<7,1,AP_RND_CONV,AP_SAT>").unwrap();
        assert_eq!(q.ty, FixedType::ap(true, 7, 1));
        assert_eq!((q.rounding, q.overflow), (Rounding::RndConv, Overflow::Sat));
        let u = parse_type("ufixed<6,0>").unwrap();
        assert_eq!((u.ty.signed, u.ty.width, u.ty.frac), (false, 6, 6));
        assert_eq!((u.rounding, u.overflow), (Rounding::Trn, Overflow::Wrap));
        assert_eq!(parse_type("fixed<4,-2>").unwrap().ty.frac, 6);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "int<3>",
            "fixed<0,1>",
            "fixed<65,1>",
            "fixed<8>",
            "fixed<8,2,RND_UP>",
            "fixed<8,2,RND,CLAMP>",
            "fixed<8,2",
        ] {
            assert!(parse_type(bad).is_err(), "{bad}");
        }
    }
}
