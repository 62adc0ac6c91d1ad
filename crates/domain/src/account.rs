//! Account fields, parsed once at the edge.

use crate::ValidationError;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::fmt;

/// A username: 3–32 characters of `a-z 0-9 _ . -`, stored lowercase (input
/// in any case is accepted and lowered, so `Ada` and `ada` are one name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = input.to_ascii_lowercase();
        let length = name.chars().count();
        if !(3..=32).contains(&length) {
            return Err(ValidationError::new("username", "must be 3 to 32 characters"));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
        {
            return Err(ValidationError::new(
                "username",
                format!("may contain only a-z, 0-9, '_', '.' and '-', not {bad:?}"),
            ));
        }
        Ok(Username(name))
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An email address: a dot-atom local part, one `@` and a dotted domain of
/// LDH labels, at most 254 characters (what api/openapi.json's pattern
/// says, exactly). Kept as written; compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let email = input;
        let invalid = |message: &str| Err(ValidationError::new("email", message));
        if email.len() > 254 {
            return invalid("must be at most 254 characters");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return invalid("must look like name@example.com");
        };
        let local_ok = !local.is_empty()
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return invalid("must look like name@example.com");
        }
        Ok(Email(email.to_owned()))
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A new password: 8–128 characters (Unicode scalar values).
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    pub fn parse(input: &str, field: &'static str) -> Result<Self, ValidationError> {
        let length = input.chars().count();
        if !(8..=128).contains(&length) {
            return Err(ValidationError::new(field, "must be 8 to 128 characters"));
        }
        Ok(Password(input.to_owned()))
    }

    /// The argon2id PHC string to store.
    pub fn hash(&self) -> String {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(self.0.as_bytes(), &salt)
            .expect("argon2id with fixed, valid parameters cannot fail")
            .to_string()
    }
}

/// OWASP's argon2id parameters: 19 MiB, 2 iterations, 1 lane.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, None)
        .expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A stored hash matching no password, with the same cost as real ones:
/// verifying against it makes "no such user" take as long as "wrong
/// password".
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3BpbmRyaXZlLWR1bW15$wVbmnE1aLrQMQtX6ftLc+T3u3XuCUYOt7ZzK0GpjjMM";

/// Checks `candidate` against a stored PHC string, or against a dummy
/// hash when there is no user, so both cases cost the same.
pub fn verify_password(candidate: &str, stored: Option<&str>) -> bool {
    let known = stored.is_some();
    let Ok(hash) = PasswordHash::new(stored.unwrap_or(DUMMY_HASH)) else {
        return false;
    };
    // Verification runs with the parameters recorded in the hash.
    let matches = Argon2::default()
        .verify_password(candidate.as_bytes(), &hash)
        .is_ok();
    matches && known
}

/// What a user may do beyond their own files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        match input {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            _ => Err(ValidationError::new("role", "must be admin or viewer")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_limited() {
        assert_eq!(Username::parse("Ada_Lovelace").unwrap().as_ref(), "ada_lovelace");
        assert_eq!(Username::parse("a.b-c").unwrap().as_ref(), "a.b-c");
        for bad in ["ab", &"x".repeat(33), "has space", " a.b-c ", "ünï", "a/b", ""] {
            let err = Username::parse(bad).unwrap_err();
            assert_eq!(err.field, "username", "{bad}");
        }
        assert!(Username::parse(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for good in ["a@b.co", "First.Last+tag@Example.COM", "x_y@sub.domain-1.org"] {
            assert_eq!(Email::parse(good).unwrap().as_ref(), good);
        }
        for bad in [
            "",
            "no-at",
            "@b.co",
            "a@",
            "a@b",
            "a@.b.co",
            "a b@c.de",
            "a..b@c.de",
            "a@-b.co",
            " a@b.co",
        ] {
            assert_eq!(Email::parse(bad).unwrap_err().field, "email", "{bad}");
        }
        assert!(Email::parse(&format!("{}@b.co", "a".repeat(249))).is_ok());
        assert!(Email::parse(&format!("{}@b.co", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords_are_8_to_128_characters() {
        assert!(Password::parse("1234567", "password").is_err());
        assert!(Password::parse("12345678", "password").is_ok());
        assert!(Password::parse(&"é".repeat(128), "password").is_ok());
        assert!(Password::parse(&"é".repeat(129), "password").is_err());
        assert_eq!(
            Password::parse("short", "new_password").unwrap_err().field,
            "new_password"
        );
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = Password::parse("correct horse", "password").unwrap().hash();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("correct horse", Some("not a hash")));
    }

    #[test]
    fn the_dummy_hash_is_well_formed_with_the_same_cost() {
        let hash = PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&hash).unwrap();
        assert_eq!(params.m_cost(), ARGON2_MEMORY_KIB);
        assert_eq!(params.t_cost(), ARGON2_ITERATIONS);
    }

    #[test]
    fn password_debug_hides_the_value() {
        let password = Password::parse("hunter2hunter2", "password").unwrap();
        assert_eq!(format!("{password:?}"), "Password(..)");
    }

    #[test]
    fn roles_parse_and_print() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert_eq!(Role::Viewer.as_str(), "viewer");
        assert!(Role::parse("root").is_err());
    }
}
