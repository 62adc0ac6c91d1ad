//! PostgreSQL `numeric` in its binary wire form, to and from decimal text,
//! at any precision (Spin's `decimal` is a base-10 string).
//!
//! Spin 4.0.2 goes through `rust_decimal`, which holds at most 28 digits and
//! no NaN or infinities; [`fits_spin`] tells whether Spin could carry a value.

use bytes::{BufMut, BytesMut};
use postgres_types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use std::error::Error;

type BoxError = Box<dyn Error + Sync + Send>;

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const POSITIVE_INFINITY: u16 = 0xD000;
const NEGATIVE_INFINITY: u16 = 0xF000;

/// A `numeric` value as decimal text: `-12.340`, `NaN`, `Infinity`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Numeric(pub String);

impl Numeric {
    /// Checks that `text` is a plain decimal (sign, digits, optional point
    /// and fraction) or `NaN` / `Infinity` / `-Infinity`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if matches!(text, "NaN" | "Infinity" | "-Infinity") {
            return Ok(Numeric(text.to_owned()));
        }
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits_only(int) || !digits_only(frac) {
            return Err(format!("invalid decimal {text}"));
        }
        Ok(Numeric(text.to_owned()))
    }
}

/// Whether Spin 4.0.2 (via `rust_decimal`: 28 significant digits, scale at
/// most 28, no special values) could carry this decimal.
pub fn fits_spin(text: &str) -> bool {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return false;
    }
    let unsigned = text.trim_start_matches(['-', '+']);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let significant = format!("{int}{frac}").trim_start_matches('0').len();
    significant <= 28 && frac.len() <= 28
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(raw).map(Numeric)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        encode(&self.0, out)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

fn read_u16(raw: &[u8], at: usize) -> Result<u16, BoxError> {
    raw.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "truncated numeric".into())
}

fn decode(raw: &[u8]) -> Result<String, BoxError> {
    let ndigits = read_u16(raw, 0)? as usize;
    let weight = read_u16(raw, 2)? as i16 as i32;
    let sign = read_u16(raw, 4)?;
    let dscale = read_u16(raw, 6)? as usize;
    match sign {
        NAN => return Ok("NaN".into()),
        POSITIVE_INFINITY => return Ok("Infinity".into()),
        NEGATIVE_INFINITY => return Ok("-Infinity".into()),
        POSITIVE | NEGATIVE => {}
        other => return Err(format!("invalid numeric sign {other:#x}").into()),
    }
    let digits = (0..ndigits)
        .map(|i| read_u16(raw, 8 + 2 * i))
        .collect::<Result<Vec<_>, _>>()?;
    let group = |index: i32| -> u16 {
        usize::try_from(index)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };

    let mut text = String::new();
    if sign == NEGATIVE {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&group(0).to_string());
        for index in 1..=weight {
            text.push_str(&format!("{:04}", group(index)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut index = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", group(index)));
            index += 1;
        }
        fraction.truncate(dscale);
        text.push('.');
        text.push_str(&fraction);
    }
    if text == "-0" || (text.starts_with("-0.") && text[3..].bytes().all(|b| b == b'0')) {
        text.remove(0);
    }
    Ok(text)
}

fn encode(text: &str, out: &mut BytesMut) -> Result<(), BoxError> {
    let special = match text {
        "NaN" => Some(NAN),
        "Infinity" => Some(POSITIVE_INFINITY),
        "-Infinity" => Some(NEGATIVE_INFINITY),
        _ => None,
    };
    if let Some(sign) = special {
        out.put_u16(0);
        out.put_i16(0);
        out.put_u16(sign);
        out.put_u16(0);
        return Ok(());
    }
    let Numeric(text) = Numeric::parse(text)?;
    let negative = text.starts_with('-');
    let unsigned = text.trim_start_matches(['-', '+']);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let dscale = u16::try_from(frac.len()).map_err(|_| "decimal scale too large")?;

    // Base-10000 groups: the integer part left-padded, the fraction right-padded.
    let int = int.trim_start_matches('0');
    let int_padded = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac_padded = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let group_of = |chunk: &[u8]| chunk.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let mut groups: Vec<u16> = int_padded.as_bytes().chunks(4).map(group_of).collect();
    let int_groups = groups.len() as i32;
    groups.extend(frac_padded.as_bytes().chunks(4).map(group_of));

    let mut weight = int_groups - 1;
    let leading_zeros = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading_zeros);
    weight -= leading_zeros as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let ndigits = u16::try_from(groups.len()).map_err(|_| "decimal has too many digits")?;
    let weight = i16::try_from(weight).map_err(|_| "decimal out of range")?;
    out.put_u16(ndigits);
    out.put_i16(weight);
    out.put_u16(if negative && !groups.is_empty() {
        NEGATIVE
    } else {
        POSITIVE
    });
    out.put_u16(dscale);
    for group in groups {
        out.put_u16(group);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        let mut buf = BytesMut::new();
        encode(text, &mut buf).unwrap();
        decode(&buf).unwrap()
    }

    #[test]
    fn values_round_trip_with_their_scale() {
        for text in [
            "0",
            "1",
            "-1",
            "12.340",
            "0.0001",
            "0.00012",
            "10000",
            "99999999",
            "123456789012345678901234567890",
            "-123456789012345678.901234567890",
            "0.000000000000000000000000000001",
            "NaN",
            "Infinity",
            "-Infinity",
        ] {
            assert_eq!(round_trip(text), text, "{text}");
        }
    }

    #[test]
    fn leading_zeros_and_plus_signs_are_normalised() {
        assert_eq!(round_trip("007.5"), "7.5");
        assert_eq!(round_trip("+3"), "3");
        assert_eq!(round_trip("-0.00"), "0.00");
    }

    #[test]
    fn decodes_what_postgres_sends() {
        // SELECT '-1234.5678'::numeric: 2 digits, weight 0, negative, dscale 4.
        let raw = [0, 2, 0, 0, 0x40, 0, 0, 4, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(decode(&raw).unwrap(), "-1234.5678");
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in ["", ".", "1e5", "1.2.3", "abc", "--1"] {
            assert!(Numeric::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spin_limits_are_known() {
        assert!(fits_spin("1234567890123456789012345678"));
        assert!(!fits_spin("123456789012345678901234567890"));
        assert!(!fits_spin("NaN"));
        assert!(fits_spin("-0.5"));
    }
}
