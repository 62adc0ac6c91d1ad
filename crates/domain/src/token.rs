//! Bearer session tokens: 256 random bits shown once to the client; only
//! their SHA-256 is stored, so a database leak reveals no usable token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A freshly issued token and the hash to store for it.
pub struct IssuedToken {
    pub token: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedToken(..)")
    }
}

/// Issues a new token from the system's secure random source.
pub fn issue() -> IssuedToken {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system random source is available");
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    IssuedToken { token, hash }
}

/// The stored form of a token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header value, if it is
/// well formed (43 URL-safe base64 characters).
pub fn from_authorization(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let well_formed = token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_256_bit_and_distinct() {
        let a = issue();
        let b = issue();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a.token).unwrap().len(), 32);
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, hash(&a.token));
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        let token = issue().token;
        assert_eq!(
            from_authorization(&format!("Bearer {token}")),
            Some(token.as_str())
        );
        assert_eq!(
            from_authorization(&format!("bearer  {token} ")),
            Some(token.as_str())
        );
        assert_eq!(from_authorization(&format!("Basic {token}")), None);
        assert_eq!(from_authorization("Bearer short"), None);
        assert_eq!(from_authorization(&format!("Bearer {}!", &token[..42])), None);
        assert_eq!(from_authorization(""), None);
    }

    #[test]
    fn debug_hides_the_token() {
        assert_eq!(format!("{:?}", issue()), "IssuedToken(..)");
    }
}
