//! List paging: `limit` (default 50, at most 1000) and an opaque cursor
//! naming the last item seen, so pages stay stable while rows are added.

use crate::ValidationError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 1000;

/// Parses `?limit=`.
pub fn limit(input: Option<&str>) -> Result<i64, ValidationError> {
    let Some(text) = input else {
        return Ok(DEFAULT_LIMIT);
    };
    match text.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ValidationError::new(
            "limit",
            format!("must be an integer from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Encodes the position after which the next page starts.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).expect("cursor positions serialize"))
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is invalid.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ValidationError> {
    let invalid = || ValidationError::new("cursor", "is not a cursor this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// How many rows a list query asks for: one more than the page holds, so
/// the page knows whether another follows.
pub fn rows_to_fetch(limit: i64) -> i64 {
    limit + 1
}

/// A page from the rows a list query returned (asked with
/// [`rows_to_fetch`]): at most `limit` of them, and the cursor after the
/// last when more follow.
pub fn page<T, P: Serialize>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> P,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let cursor = rows
        .last()
        .filter(|_| more)
        .map(|last| encode_cursor(&position(last)));
    (rows, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some("1000")).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert_eq!(limit(Some(bad)).unwrap_err().field, "limit", "{bad}");
        }
    }

    #[test]
    fn a_page_trims_the_extra_row_and_points_after_its_last() {
        let (rows, cursor) = page(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(rows, [1, 2]);
        assert_eq!(decode_cursor::<i32>(&cursor.unwrap()).unwrap(), 2);
        let (rows, cursor) = page(vec![1, 2], 2, |n| *n);
        assert_eq!((rows, cursor), (vec![1, 2], None));
        assert_eq!(page(Vec::<i32>::new(), 2, |n| *n), (vec![], None));
        assert_eq!(rows_to_fetch(50), 51);
    }

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let cursor = encode_cursor(&("2026-01-01T00:00:00Z", 42));
        let back: (String, i64) = decode_cursor(&cursor).unwrap();
        assert_eq!(back, ("2026-01-01T00:00:00Z".to_owned(), 42));
        assert!(decode_cursor::<(String, i64)>("not base64!").is_err());
        assert!(decode_cursor::<(String, i64)>(&URL_SAFE_NO_PAD.encode("[1]")).is_err());
    }
}
