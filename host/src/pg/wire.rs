//! Wire codecs for the Postgres types Spin maps that `postgres-types` has no
//! ready Rust type for: ranges, intervals, NULL of any type, and raw bytes
//! of types Spin does not map.

use super::numeric::Numeric;
use bytes::{BufMut, BytesMut};
use postgres_protocol::types as protocol;
use postgres_types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use std::error::Error;

type BoxError = Box<dyn Error + Sync + Send>;

/// Whether a range bound includes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundKind {
    Inclusive,
    Exclusive,
}

/// A range as Spin carries it: `None` is an unbounded side. An empty range
/// reads as `(None, None)`, as in Spin.
#[derive(Clone, Debug, PartialEq)]
pub struct Range<T> {
    pub lower: Option<(T, BoundKind)>,
    pub upper: Option<(T, BoundKind)>,
}

/// The element types ranges are made of.
pub trait RangeElement: for<'a> FromSql<'a> + ToSql + Sized {
    const RANGE_TYPE: Type;
    const ELEMENT_TYPE: Type;
}

impl RangeElement for i32 {
    const RANGE_TYPE: Type = Type::INT4_RANGE;
    const ELEMENT_TYPE: Type = Type::INT4;
}

impl RangeElement for i64 {
    const RANGE_TYPE: Type = Type::INT8_RANGE;
    const ELEMENT_TYPE: Type = Type::INT8;
}

impl RangeElement for Numeric {
    const RANGE_TYPE: Type = Type::NUM_RANGE;
    const ELEMENT_TYPE: Type = Type::NUMERIC;
}

impl<'a, T: RangeElement> FromSql<'a> for Range<T> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let bound =
            |bound: protocol::RangeBound<Option<&'a [u8]>>| -> Result<Option<(T, BoundKind)>, BoxError> {
                Ok(match bound {
                    protocol::RangeBound::Inclusive(Some(raw)) => {
                        Some((T::from_sql(&T::ELEMENT_TYPE, raw)?, BoundKind::Inclusive))
                    }
                    protocol::RangeBound::Exclusive(Some(raw)) => {
                        Some((T::from_sql(&T::ELEMENT_TYPE, raw)?, BoundKind::Exclusive))
                    }
                    _ => None,
                })
            };
        match protocol::range_from_sql(raw)? {
            protocol::Range::Empty => Ok(Range {
                lower: None,
                upper: None,
            }),
            protocol::Range::Nonempty(lower, upper) => Ok(Range {
                lower: bound(lower)?,
                upper: bound(upper)?,
            }),
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == T::RANGE_TYPE
    }
}

impl<T: RangeElement + std::fmt::Debug> ToSql for Range<T> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        protocol::range_to_sql(
            |buf| write_bound(&self.lower, buf),
            |buf| write_bound(&self.upper, buf),
            out,
        )?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == T::RANGE_TYPE
    }

    to_sql_checked!();
}

fn write_bound<T: RangeElement>(
    side: &Option<(T, BoundKind)>,
    buf: &mut BytesMut,
) -> Result<protocol::RangeBound<postgres_protocol::IsNull>, BoxError> {
    let Some((value, kind)) = side else {
        return Ok(protocol::RangeBound::Unbounded);
    };
    let is_null = match value.to_sql(&T::ELEMENT_TYPE, buf)? {
        IsNull::Yes => postgres_protocol::IsNull::Yes,
        IsNull::No => postgres_protocol::IsNull::No,
    };
    Ok(match kind {
        BoundKind::Inclusive => protocol::RangeBound::Inclusive(is_null),
        BoundKind::Exclusive => protocol::RangeBound::Exclusive(is_null),
    })
}

/// `interval`: microseconds, days and months, kept apart as Postgres does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub micros: i64,
    pub days: i32,
    pub months: i32,
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let raw: [u8; 16] = raw
            .try_into()
            .map_err(|_| "unexpected binary format for Postgres INTERVAL")?;
        let (micros, rest) = raw.split_at(8);
        let (days, months) = rest.split_at(4);
        Ok(Interval {
            micros: i64::from_be_bytes(micros.try_into()?),
            days: i32::from_be_bytes(days.try_into()?),
            months: i32::from_be_bytes(months.try_into()?),
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

impl ToSql for Interval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_i64(self.micros);
        out.put_i32(self.days);
        out.put_i32(self.months);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }

    to_sql_checked!();
}

/// A NULL parameter, acceptable for a column of any type.
#[derive(Debug)]
pub struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, BoxError> {
        Ok(IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The raw bytes of a value of a type Spin does not map.
pub struct Unsupported(pub Vec<u8>);

impl<'a> FromSql<'a> for Unsupported {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Unsupported(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: for<'a> FromSql<'a> + ToSql>(value: &T, ty: &Type) -> T {
        let mut buf = BytesMut::new();
        value.to_sql(ty, &mut buf).unwrap();
        T::from_sql(ty, &buf).unwrap()
    }

    #[test]
    fn ranges_round_trip_every_bound_kind() {
        let ranges = [
            Range {
                lower: Some((1, BoundKind::Inclusive)),
                upper: Some((5, BoundKind::Exclusive)),
            },
            Range {
                lower: Some((-7, BoundKind::Exclusive)),
                upper: Some((i32::MAX, BoundKind::Inclusive)),
            },
            Range {
                lower: None,
                upper: Some((3, BoundKind::Exclusive)),
            },
            Range {
                lower: Some((3, BoundKind::Inclusive)),
                upper: None,
            },
            Range {
                lower: None,
                upper: None,
            },
        ];
        for range in ranges {
            assert_eq!(round_trip(&range, &Type::INT4_RANGE), range);
        }
        let numeric = Range {
            lower: Some((Numeric("1.50".into()), BoundKind::Inclusive)),
            upper: Some((Numeric("2.25".into()), BoundKind::Exclusive)),
        };
        assert_eq!(round_trip(&numeric, &Type::NUM_RANGE), numeric);
    }

    #[test]
    fn an_empty_range_reads_as_unbounded_as_in_spin() {
        // Postgres sends 'empty'::int4range as the single flag byte 0x01.
        let range = Range::<i32>::from_sql(&Type::INT4_RANGE, &[0x01]).unwrap();
        assert_eq!(
            range,
            Range {
                lower: None,
                upper: None
            }
        );
    }

    #[test]
    fn intervals_keep_months_days_and_microseconds() {
        let interval = Interval {
            micros: -1,
            days: 40,
            months: 14,
        };
        assert_eq!(round_trip(&interval, &Type::INTERVAL), interval);
        assert!(Interval::from_sql(&Type::INTERVAL, &[0; 3]).is_err());
    }
}
