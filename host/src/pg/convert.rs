//! Spin's value mapping between `spin:postgres` values and Postgres types,
//! including what Spin refuses: a `timestamptz` read fails, a parameter
//! must have exactly the column's type, `json` reads as `unsupported`.

use super::numeric::{self, Numeric};
use super::wire::{BoundKind, Interval, Null, Range, RangeElement, Unsupported};
use crate::bindings::spin::postgres::postgres::{
    self as wit, Column, DbDataType, DbValue, ParameterValue, RangeBoundKind,
};
use anyhow::{Context, Result, anyhow};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use postgres_types::{FromSql, ToSql, Type};
use tokio_postgres::Row;

/// A parameter ready for tokio-postgres.
pub type SqlParameter = Box<dyn ToSql + Send + Sync>;

/// Converts the guest's parameters; an invalid value (a malformed UUID,
/// date, decimal or JSON) is an error message for the caller to wrap.
pub fn parameters(values: &[ParameterValue], compat: &mut Vec<String>) -> Result<Vec<SqlParameter>> {
    values.iter().map(|value| parameter(value, compat)).collect()
}

fn parameter(value: &ParameterValue, compat: &mut Vec<String>) -> Result<SqlParameter> {
    Ok(match value {
        ParameterValue::Boolean(v) => Box::new(*v),
        ParameterValue::Int8(v) => Box::new(*v),
        ParameterValue::Int16(v) => Box::new(*v),
        ParameterValue::Int32(v) => Box::new(*v),
        ParameterValue::Int64(v) => Box::new(*v),
        ParameterValue::Floating32(v) => Box::new(*v),
        ParameterValue::Floating64(v) => Box::new(*v),
        ParameterValue::Str(v) => Box::new(v.clone()),
        ParameterValue::Binary(v) => Box::new(v.clone()),
        ParameterValue::Date(v) => Box::new(date_to_pg(*v)?),
        ParameterValue::Time(v) => Box::new(time_to_pg(*v)?),
        ParameterValue::Datetime(v) => Box::new(datetime_to_pg(*v)?),
        ParameterValue::Timestamp(seconds) => Box::new(
            chrono::DateTime::<chrono::Utc>::from_timestamp(*seconds, 0)
                .ok_or_else(|| anyhow!("invalid epoch timestamp {seconds}"))?,
        ),
        ParameterValue::Uuid(v) => {
            Box::new(uuid::Uuid::parse_str(v).with_context(|| format!("invalid UUID {v}"))?)
        }
        ParameterValue::Jsonb(v) => Box::new(
            serde_json::from_slice::<serde_json::Value>(v)
                .with_context(|| format!("invalid JSON {}", String::from_utf8_lossy(v)))?,
        ),
        ParameterValue::Decimal(v) => Box::new(decimal(v, compat)?),
        ParameterValue::RangeInt32((lower, upper)) => Box::new(range_to_pg(*lower, *upper)),
        ParameterValue::RangeInt64((lower, upper)) => Box::new(range_to_pg(*lower, *upper)),
        ParameterValue::RangeDecimal((lower, upper)) => {
            let mut bound = |side: &Option<(String, RangeBoundKind)>| {
                side.as_ref()
                    .map(|(text, kind)| Ok::<_, anyhow::Error>((decimal(text, compat)?, bound_kind(*kind))))
                    .transpose()
            };
            Box::new(Range {
                lower: bound(lower)?,
                upper: bound(upper)?,
            })
        }
        ParameterValue::ArrayInt32(v) => Box::new(v.clone()),
        ParameterValue::ArrayInt64(v) => Box::new(v.clone()),
        ParameterValue::ArrayDecimal(v) => Box::new(
            v.iter()
                .map(|item| item.as_deref().map(|text| decimal(text, compat)).transpose())
                .collect::<Result<Vec<_>>>()?,
        ),
        ParameterValue::ArrayStr(v) => Box::new(v.clone()),
        ParameterValue::Interval(v) => Box::new(Interval {
            micros: v.micros,
            days: v.days,
            months: v.months,
        }),
        ParameterValue::DbNull => Box::new(Null),
    })
}

fn decimal(text: &str, compat: &mut Vec<String>) -> Result<Numeric> {
    let value = Numeric::parse(text).map_err(anyhow::Error::msg)?;
    if !numeric::fits_spin(text) {
        compat.push(format!(
            "decimal {text} exceeds what Spin 4.0.2 can carry (28 digits, no NaN/Infinity)"
        ));
    }
    Ok(value)
}

fn bound_kind(kind: RangeBoundKind) -> BoundKind {
    match kind {
        RangeBoundKind::Inclusive => BoundKind::Inclusive,
        RangeBoundKind::Exclusive => BoundKind::Exclusive,
    }
}

fn wit_bound_kind(kind: BoundKind) -> RangeBoundKind {
    match kind {
        BoundKind::Inclusive => RangeBoundKind::Inclusive,
        BoundKind::Exclusive => RangeBoundKind::Exclusive,
    }
}

type WitBound<T> = Option<(T, RangeBoundKind)>;

fn range_to_pg<T: Copy>(lower: WitBound<T>, upper: WitBound<T>) -> Range<T> {
    Range {
        lower: lower.map(|(v, k)| (v, bound_kind(k))),
        upper: upper.map(|(v, k)| (v, bound_kind(k))),
    }
}

fn range_to_wit<T: RangeElement, U>(
    range: Range<T>,
    mut map: impl FnMut(T) -> U,
) -> (WitBound<U>, WitBound<U>) {
    let mut side = |bound: Option<(T, BoundKind)>| bound.map(|(v, k)| (map(v), wit_bound_kind(k)));
    (side(range.lower), side(range.upper))
}

fn date_to_pg((year, month, day): (i32, u8, u8)) -> Result<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month.into(), day.into())
        .ok_or_else(|| anyhow!("invalid date y={year}, m={month}, d={day}"))
}

fn time_to_pg((hour, minute, second, nanos): (u8, u8, u8, u32)) -> Result<NaiveTime> {
    NaiveTime::from_hms_nano_opt(hour.into(), minute.into(), second.into(), nanos)
        .ok_or_else(|| anyhow!("invalid time {hour}:{minute}:{second}:{nanos}"))
}

fn datetime_to_pg((y, mo, d, h, mi, s, ns): (i32, u8, u8, u8, u8, u8, u32)) -> Result<NaiveDateTime> {
    Ok(NaiveDateTime::new(
        date_to_pg((y, mo, d))?,
        time_to_pg((h, mi, s, ns))?,
    ))
}

/// The `db-data-type` Spin reports for a column type.
pub fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::BYTEA => DbDataType::Binary,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DbDataType::Str,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::UUID => DbDataType::Uuid,
        Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_RANGE => DbDataType::RangeInt32,
        Type::INT8_RANGE => DbDataType::RangeInt64,
        Type::NUM_RANGE => DbDataType::RangeDecimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        _ => DbDataType::Other(ty.name().to_owned()),
    }
}

/// Columns as Spin reports them: taken from a row.
pub fn columns(row: &Row) -> Vec<Column> {
    row.columns()
        .iter()
        .map(|column| Column {
            name: column.name().to_owned(),
            data_type: data_type(column.type_()),
        })
        .collect()
}

/// Converts one row; the error text is what the guest sees.
pub fn row(row: &Row, compat: &mut Vec<String>) -> Result<Vec<DbValue>> {
    (0..row.len()).map(|index| value(row, index, compat)).collect()
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize, wrap: impl FnOnce(T) -> DbValue) -> Result<DbValue> {
    Ok(row.try_get::<_, Option<T>>(index)?.map_or(DbValue::DbNull, wrap))
}

fn value(row: &Row, index: usize, compat: &mut Vec<String>) -> Result<DbValue> {
    let mut numeric = |value: Numeric| {
        if !numeric::fits_spin(&value.0) {
            compat.push(format!(
                "decimal {} exceeds what Spin 4.0.2 can carry (28 digits, no NaN/Infinity)",
                value.0
            ));
        }
        value.0
    };
    match *row.columns()[index].type_() {
        Type::BOOL => get(row, index, DbValue::Boolean),
        Type::BYTEA => get(row, index, DbValue::Binary),
        Type::FLOAT4 => get(row, index, DbValue::Floating32),
        Type::FLOAT8 => get(row, index, DbValue::Floating64),
        Type::INT2 => get(row, index, DbValue::Int16),
        Type::INT4 => get(row, index, DbValue::Int32),
        Type::INT8 => get(row, index, DbValue::Int64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, index, DbValue::Str),
        // A `timestamptz` fails here, as every such read does on Spin 4.0.2.
        Type::TIMESTAMP | Type::TIMESTAMPTZ => get(row, index, |v: NaiveDateTime| {
            DbValue::Datetime((
                v.year(),
                v.month() as u8,
                v.day() as u8,
                v.hour() as u8,
                v.minute() as u8,
                v.second() as u8,
                v.nanosecond(),
            ))
        }),
        Type::DATE => get(row, index, |v: NaiveDate| {
            DbValue::Date((v.year(), v.month() as u8, v.day() as u8))
        }),
        Type::TIME => get(row, index, |v: NaiveTime| {
            DbValue::Time((v.hour() as u8, v.minute() as u8, v.second() as u8, v.nanosecond()))
        }),
        Type::UUID => get(row, index, |v: uuid::Uuid| DbValue::Uuid(v.to_string())),
        Type::JSONB => get(row, index, |v: serde_json::Value| {
            DbValue::Jsonb(serde_json::to_vec(&v).unwrap_or_default())
        }),
        Type::NUMERIC => get(row, index, |v: Numeric| DbValue::Decimal(numeric(v))),
        Type::INT4_RANGE => get(row, index, |v: Range<i32>| {
            DbValue::RangeInt32(range_to_wit(v, |x| x))
        }),
        Type::INT8_RANGE => get(row, index, |v: Range<i64>| {
            DbValue::RangeInt64(range_to_wit(v, |x| x))
        }),
        Type::NUM_RANGE => get(row, index, |v: Range<Numeric>| {
            DbValue::RangeDecimal(range_to_wit(v, &mut numeric))
        }),
        Type::INT4_ARRAY => get(row, index, DbValue::ArrayInt32),
        Type::INT8_ARRAY => get(row, index, DbValue::ArrayInt64),
        Type::NUMERIC_ARRAY => get(row, index, |v: Vec<Option<Numeric>>| {
            DbValue::ArrayDecimal(v.into_iter().map(|d| d.map(&mut numeric)).collect())
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => get(row, index, DbValue::ArrayStr),
        Type::INTERVAL => get(row, index, |v: Interval| {
            DbValue::Interval(wit::Interval {
                micros: v.micros,
                days: v.days,
                months: v.months,
            })
        }),
        _ => get(row, index, |v: Unsupported| DbValue::Unsupported(v.0)),
    }
}

/// The size of a value in guest memory, for Spin's 128 MiB result limit.
pub fn memory_size(value: &DbValue) -> usize {
    let heap = match value {
        DbValue::Str(s) | DbValue::Uuid(s) | DbValue::Decimal(s) => s.len(),
        DbValue::Binary(b) | DbValue::Jsonb(b) | DbValue::Unsupported(b) => b.len(),
        DbValue::RangeDecimal((lower, upper)) => {
            lower.as_ref().map_or(0, |(s, _)| s.len()) + upper.as_ref().map_or(0, |(s, _)| s.len())
        }
        DbValue::ArrayInt32(v) => v.len() * size_of::<Option<i32>>(),
        DbValue::ArrayInt64(v) => v.len() * size_of::<Option<i64>>(),
        DbValue::ArrayDecimal(v) | DbValue::ArrayStr(v) => v
            .iter()
            .map(|s| size_of::<Option<String>>() + s.as_ref().map_or(0, String::len))
            .sum(),
        _ => 0,
    };
    size_of::<DbValue>() + heap
}
