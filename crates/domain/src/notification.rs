//! What users are told about: the kinds of notification, and the
//! preferences that mute some of them (the default, `file_downloaded`
//! muted, is the database's: `muted_kinds()` in schema 7).

use crate::ValidationError;
use serde_json::{Map, Value};

/// Every kind, with what it tells.
pub const KINDS: &[(&str, &str)] = &[
    ("share_granted", "a file was shared with you"),
    ("share_changed", "your level on a shared file changed"),
    ("share_revoked", "your access to a file was revoked"),
    (
        "file_replaced",
        "someone else replaced the content of a file you own or share",
    ),
    ("file_deleted", "someone else deleted a file you own or share"),
    (
        "file_downloaded",
        "someone else downloaded your file (off unless you turn it on)",
    ),
    ("transformation_complete", "your transformation is ready"),
    ("transformation_failed", "your transformation failed"),
];

/// Checks a change of the form `{"kind": true|false, ...}` (true: tell
/// me): known kinds, boolean values.
pub fn check_choices(change: &Map<String, Value>) -> Result<(), ValidationError> {
    for (kind, wanted) in change {
        if !KINDS.iter().any(|(known, _)| known == kind) {
            return Err(ValidationError::new(
                "kinds",
                format!("{kind} is not a kind of notification"),
            ));
        }
        if !wanted.is_boolean() {
            return Err(ValidationError::new(
                "kinds",
                format!("{kind} must be true or false"),
            ));
        }
    }
    Ok(())
}

/// Every kind as `{"kind": enabled}`, given the muted ones.
pub fn kinds_json(muted: &[String]) -> Value {
    KINDS
        .iter()
        .map(|(kind, _)| ((*kind).to_owned(), Value::Bool(!muted.iter().any(|m| m == kind))))
        .collect::<Map<_, _>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn choices_name_known_kinds_with_booleans() {
        assert!(
            check_choices(
                json!({"file_downloaded": true, "share_revoked": false})
                    .as_object()
                    .unwrap()
            )
            .is_ok()
        );
        assert!(check_choices(json!({"spam": true}).as_object().unwrap()).is_err());
        assert!(check_choices(json!({"share_granted": 1}).as_object().unwrap()).is_err());
        let muted = vec!["share_revoked".to_owned()];
        assert_eq!(kinds_json(&muted)["share_revoked"], false);
        assert_eq!(kinds_json(&muted)["file_downloaded"], true);
    }
}
