//! Rules for JSON body fields that serde's defaults do not give, so that a
//! body means what api/openapi.json says it means.

use serde::{Deserialize, Deserializer, Serialize};

/// For an optional field: absent is `None` (with `#[serde(default)]`), a
/// value is `Some`, and `null` is whatever `T` makes of it: refused for a
/// plain type, so that `null` never passes for "unchanged".
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(input: D) -> Result<Option<T>, D::Error> {
    T::deserialize(input).map(Some)
}

/// A whole number as JSON Schema's `integer` has it: `2` or `2.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Whole<T>(pub T);

impl<'de, T: TryFrom<i64> + TryFrom<u64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let number = serde_json::Number::deserialize(input)?;
        let out_of_range = || D::Error::custom(format!("{number} is out of range"));
        if let Some(value) = number.as_u64() {
            return T::try_from(value).map(Whole).map_err(|_| out_of_range());
        }
        if let Some(value) = number.as_i64() {
            return T::try_from(value).map(Whole).map_err(|_| out_of_range());
        }
        match number.as_f64() {
            // Beyond ±2^63 a float is no longer exact: refused as out of range.
            Some(value) if value.fract() == 0.0 && value.abs() < 9.2e18 => {
                T::try_from(value as i64).map(Whole).map_err(|_| out_of_range())
            }
            _ => Err(D::Error::custom(format!("{number} is not a whole number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Change {
        #[serde(default, deserialize_with = "present")]
        on: Option<bool>,
        #[serde(default, deserialize_with = "present")]
        size: Option<Whole<u32>>,
    }

    fn parse(json: &str) -> Result<Change, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn null_is_not_absent() {
        assert!(parse("{}").unwrap().on.is_none());
        assert_eq!(parse(r#"{"on": true}"#).unwrap().on, Some(true));
        assert!(parse(r#"{"on": null}"#).is_err());
        assert!(parse(r#"{"size": null}"#).is_err());
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        assert_eq!(parse(r#"{"size": 188}"#).unwrap().size, Some(Whole(188)));
        assert_eq!(parse(r#"{"size": 188.0}"#).unwrap().size, Some(Whole(188)));
        for bad in ["188.5", "-1", "4294967296", "1e300", "\"1\""] {
            assert!(parse(&format!(r#"{{"size": {bad}}}"#)).is_err(), "{bad}");
        }
    }
}
