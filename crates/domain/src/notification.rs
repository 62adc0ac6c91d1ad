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

/// Applies a change of the form `{"kind": true|false, ...}` (true: tell me)
/// to the muted kinds; unknown kinds and non-booleans are refused.
pub fn change_muted(
    mut muted: Vec<String>,
    change: &Map<String, Value>,
) -> Result<Vec<String>, ValidationError> {
    for (kind, wanted) in change {
        if !KINDS.iter().any(|(known, _)| known == kind) {
            return Err(ValidationError::new(
                "kinds",
                format!("{kind} is not a kind of notification"),
            ));
        }
        let Some(wanted) = wanted.as_bool() else {
            return Err(ValidationError::new(
                "kinds",
                format!("{kind} must be true or false"),
            ));
        };
        muted.retain(|k| k != kind);
        if !wanted {
            muted.push(kind.clone());
        }
    }
    muted.sort();
    Ok(muted)
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
    fn preferences_change_only_known_kinds() {
        let muted = vec!["file_downloaded".to_owned()];
        let change = json!({"file_downloaded": true, "share_revoked": false});
        let muted = change_muted(muted, change.as_object().unwrap()).unwrap();
        assert_eq!(muted, ["share_revoked"]);
        assert_eq!(kinds_json(&muted)["share_revoked"], false);
        assert_eq!(kinds_json(&muted)["file_downloaded"], true);
        assert!(change_muted(vec![], json!({"spam": true}).as_object().unwrap()).is_err());
        assert!(change_muted(vec![], json!({"share_granted": 1}).as_object().unwrap()).is_err());
    }
}
