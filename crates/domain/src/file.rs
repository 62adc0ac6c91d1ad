//! Files: their names, and who may do what with them.
//!
//! Levels are ordered read < write < delete; a grant at one level allows
//! everything below it. The owner holds every right and, with admins, is
//! the only one who may share. Whatever a caller may not see is reported as
//! "not found", never "forbidden", so no file's existence leaks.

use crate::ValidationError;
use crate::account::Role;

/// A file id: a UUID in canonical lowercase form. Anything else names no
/// file (and is reported as not found, like a file one may not see).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileId(String);

impl FileId {
    pub fn parse(input: &str) -> Option<Self> {
        canonical_uuid(input).map(FileId)
    }
}

/// `input` as a UUID in canonical lowercase form, if it is one.
pub fn canonical_uuid(input: &str) -> Option<String> {
    let id = input.to_ascii_lowercase();
    let shape_ok = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    shape_ok.then_some(id)
}

impl AsRef<str> for FileId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A file name: any UTF-8 without control characters or `/`, 1–255
/// characters (as the `varchar(255)` column counts), not `.` or `..`.
/// It is only ever shown, never used to build a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let invalid = |message: &str| Err(ValidationError::new("file_name", message));
        if input.is_empty() || input.chars().count() > 255 {
            return invalid("must be 1 to 255 characters");
        }
        if input.chars().any(char::is_control) {
            return invalid("must not contain control characters");
        }
        if input.contains('/') {
            return invalid("must not contain '/'");
        }
        if input == "." || input == ".." {
            return invalid("must not be '.' or '..'");
        }
        Ok(FileName(input.to_owned()))
    }
}

impl AsRef<str> for FileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A level of access to a file; each includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Read,
    Write,
    Delete,
}

impl Level {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        match input {
            "read" => Ok(Level::Read),
            "write" => Ok(Level::Write),
            "delete" => Ok(Level::Delete),
            _ => Err(ValidationError::new(
                "permission",
                "must be read, write or delete",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Delete => "delete",
        }
    }
}

/// What a caller holds on one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: the file is invisible to them.
    None,
    /// A grant from the owner.
    Granted(Level),
    /// Their own file.
    Owner,
    /// An administrator's view of someone else's file.
    Admin,
}

impl Access {
    /// Combines the caller's role, whether they own the file, and their grant.
    pub fn of(role: Role, is_owner: bool, grant: Option<Level>) -> Self {
        match (is_owner, grant, role) {
            (true, _, _) => Access::Owner,
            (false, _, Role::Admin) => Access::Admin,
            (false, Some(level), _) => Access::Granted(level),
            (false, None, _) => Access::None,
        }
    }

    /// Whether the caller can see the file at all.
    pub fn is_visible(self) -> bool {
        self != Access::None
    }

    /// Whether the caller may act at `level`.
    pub fn allows(self, level: Level) -> bool {
        match self {
            Access::None => false,
            Access::Granted(held) => held >= level,
            Access::Owner | Access::Admin => true,
        }
    }

    /// Whether the caller may grant, change or revoke others' access: the
    /// owner and administrators only. A `delete` grantee may not re-share:
    /// `delete` is a right over the content, not over its audience, and
    /// the owner must always know (and decide) who can see their file.
    pub fn may_share(self) -> bool {
        matches!(self, Access::Owner | Access::Admin)
    }

    /// The level to show as `my_permission`.
    pub fn level(self) -> Option<Level> {
        match self {
            Access::None => None,
            Access::Granted(level) => Some(level),
            Access::Owner | Access::Admin => Some(Level::Delete),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_allow_any_utf8_but_controls_and_slashes() {
        for good in [
            "a",
            "report (final).pdf",
            "ünïcödé 🦀.txt",
            "..x",
            &"é".repeat(255),
        ] {
            assert!(FileName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "a\u{0}b",
            "tab\there",
            "line\n",
            ".",
            "..",
            &"x".repeat(256),
            &"é".repeat(256),
            "a\u{85}b",
        ] {
            assert_eq!(FileName::parse(bad).unwrap_err().field, "file_name", "{bad:?}");
        }
    }

    #[test]
    fn file_ids_are_canonical_uuids() {
        let id = FileId::parse("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        assert_eq!(id.as_ref(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        for bad in [
            "",
            "42",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "../etc/passwd",
        ] {
            assert!(FileId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn levels_are_ordered() {
        assert!(Level::Read < Level::Write && Level::Write < Level::Delete);
        assert_eq!(Level::parse("write").unwrap(), Level::Write);
        assert!(Level::parse("admin").is_err());
    }

    #[test]
    fn a_grant_allows_its_level_and_below() {
        let write = Access::of(Role::Viewer, false, Some(Level::Write));
        assert!(write.allows(Level::Read) && write.allows(Level::Write));
        assert!(!write.allows(Level::Delete));
        assert!(!write.may_share());
        let delete = Access::of(Role::Viewer, false, Some(Level::Delete));
        assert!(
            delete.allows(Level::Delete) && !delete.may_share(),
            "no re-sharing"
        );
    }

    #[test]
    fn owners_and_admins_may_do_everything() {
        for access in [
            Access::of(Role::Viewer, true, None),
            Access::of(Role::Admin, false, None),
        ] {
            assert!(access.allows(Level::Delete) && access.may_share() && access.is_visible());
        }
        assert_eq!(Access::of(Role::Admin, true, None), Access::Owner);
    }

    #[test]
    fn strangers_see_nothing() {
        let none = Access::of(Role::Viewer, false, None);
        assert!(!none.is_visible() && !none.allows(Level::Read) && none.level().is_none());
    }
}
