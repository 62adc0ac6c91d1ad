//! Webhooks as the Standard Webhooks specification defines them: the
//! endpoint a user registers (checked against server-side request
//! forgery), its signing secret (`whsec_` + base64 of 24 to 64 random
//! bytes), the signature of each delivery, and when a failed one is tried
//! again.

use crate::ValidationError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use spindrive_netaddr::is_public;
use std::net::IpAddr;
use std::time::Duration;

/// The longest endpoint URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;

/// The endpoint URLs a registration may name, as api/openapi.json says
/// (its `url` pattern, exactly): `http(s)://`, a dotted name of LDH labels
/// whose last starts with a letter (so never an address literal or a
/// single label), an optional port, then a path and query of URI
/// characters; no credentials, no fragment, nothing to escape.
pub const PUBLIC_URL_PATTERN: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://",
    r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
    r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"([/?]([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$",
);

/// Names under `localhost.` mean this machine whatever DNS says: refused
/// too (api/openapi.json's `not` pattern of `url`).
pub const LOOPBACK_NAME_PATTERN: &str =
    r"^[A-Za-z]+://[^/?:]*[.][Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]([:/?]|$)";

fn is_public_url(url: &str) -> bool {
    static PUBLIC: std::sync::LazyLock<regex_lite::Regex> =
        std::sync::LazyLock::new(|| regex_lite::Regex::new(PUBLIC_URL_PATTERN).expect("a valid pattern"));
    static LOOPBACK: std::sync::LazyLock<regex_lite::Regex> =
        std::sync::LazyLock::new(|| regex_lite::Regex::new(LOOPBACK_NAME_PATTERN).expect("a valid pattern"));
    PUBLIC.is_match(url) && !LOOPBACK.is_match(url)
}

/// A URL a user registers: the documented grammar (unless the server
/// allows private addresses, for local development, where literals are
/// taken too), then what [`parse_url`] checks. Endpoints registered before
/// the grammar keep being delivered to while [`parse_url`] allows them.
pub fn parse_registration_url(url: &str, allow_private: bool) -> Result<url::Url, ValidationError> {
    if !allow_private && url.len() <= MAX_URL_LENGTH && !is_public_url(url) {
        return Err(ValidationError::new(
            "url",
            "must be http(s)://, a public host name (no address, no single label, not localhost), \
             an optional port and a path of URI characters",
        ));
    }
    parse_url(url, allow_private)
}

/// Where deliveries go: an absolute `http`/`https` URL without
/// credentials, whose host is not a private, loopback, link-local or
/// otherwise non-public address unless the server allows those (local
/// development). A name is resolved, and its addresses checked, by the
/// runtime when it connects (Spin's `block_networks`); here only what the
/// URL itself says is checked.
pub fn parse_url(url: &str, allow_private: bool) -> Result<url::Url, ValidationError> {
    let invalid = |message: &str| ValidationError::new("url", message);
    if url.len() > MAX_URL_LENGTH {
        return Err(invalid("must be at most 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid(&format!("is not a URL: {e}")))?;
    // Stored and delivered to as the url crate writes it back (`/` added
    // to an empty path, some characters escaped): that must fit too.
    if parsed.as_str().len() > MAX_URL_LENGTH {
        return Err(invalid("must be at most 2048 characters once normalized"));
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("must be an http:// or https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "must not carry credentials; the signature authenticates deliveries",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("must not have a #fragment"));
    }
    let public = match parsed.host() {
        None => return Err(invalid("must name a host")),
        Some(url::Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name != "localhost" && !name.ends_with(".localhost") && name.contains('.')
        }
    };
    // What the url crate accepts, http's Uri (which the request is built
    // from) must accept too, or every send would fail.
    if parsed.as_str().parse::<http::Uri>().is_err() {
        return Err(invalid("cannot be requested"));
    }
    if !public && !allow_private {
        return Err(invalid(
            "must be a public address: private, loopback, link-local and single-label hosts are refused",
        ));
    }
    Ok(parsed)
}

/// A signing secret: the key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// The key never appears in logs.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

const SECRET_PREFIX: &str = "whsec_";

impl Secret {
    /// 32 fresh random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).expect("the system's random source failed");
        Secret(key)
    }

    /// `whsec_` followed by the base64 of 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let invalid = || {
            ValidationError::new(
                "secret",
                "must be whsec_ followed by the base64 of 24 to 64 random bytes (or left out: one is generated)",
            )
        };
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or_else(invalid)?;
        let key = BASE64.decode(encoded).map_err(|_| invalid())?;
        Self::from_bytes(key).ok_or_else(invalid)
    }

    /// The key as stored; `None` outside 24 to 64 bytes.
    pub fn from_bytes(key: Vec<u8>) -> Option<Self> {
        (24..=64).contains(&key.len()).then_some(Secret(key))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form users copy into their receiver (`whsec_…`).
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    /// The `webhook-signature` header of a delivery: `v1,` and the base64
    /// HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The waits before each retry of a failed delivery; once they are used
/// up, the delivery fails for good.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// Comma-separated durations, e.g. `5s,5m,30m,2h,5h,10h`.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(|step| humantime::parse_duration(step.trim()).map_err(|e| format!("{step:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(RetrySchedule)
    }

    /// Sends in all: the first, and one per retry.
    pub fn max_attempts(&self) -> i32 {
        i32::try_from(self.0.len()).unwrap_or(i32::MAX - 1) + 1
    }

    /// How long to wait after failed attempt `attempt` (1-based), with
    /// ±20 % jitter so receivers that came back are not hit all at once;
    /// `None` when no retry is left.
    pub fn wait_after(&self, attempt: i32) -> Option<Duration> {
        let base = *self.0.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
        let mut random = [0u8; 2];
        getrandom::fill(&mut random).expect("the system's random source failed");
        let factor = 0.8 + 0.4 * f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
        Some(base.mul_f64(factor))
    }
}

/// What a receiver's answer means for the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: delivered.
    Accepted,
    /// 410 Gone: the receiver asks to stop; the endpoint is disabled.
    Gone,
    /// Anything else: try again later.
    Retry,
}

impl Answer {
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Answer::Accepted,
            410 => Answer::Gone,
            _ => Answer::Retry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_pass_and_private_ones_are_refused() {
        for ok in [
            "https://hooks.example.com/spindrive",
            "http://203.0.113.9.nip.io:8080/x?y=1&z=%20",
            "HTTPS://Hooks.Example.COM:65535",
        ] {
            assert!(parse_registration_url(ok, false).is_ok(), "{ok}");
        }
        // Registered endpoints are named: even a public address literal is
        // refused (the documented grammar cannot tell public ones from
        // private); one registered before the grammar is still delivered to.
        for public_literal in ["https://[2606:4700::1111]/", "https://1.1.1.1/"] {
            assert!(
                parse_registration_url(public_literal, false).is_err(),
                "{public_literal}"
            );
            assert!(parse_url(public_literal, false).is_ok(), "{public_literal}");
        }
        // Refused by the address rules themselves, at delivery as well.
        for refused in [
            "http://127.0.0.1:9000/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://intranet/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://[::7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
        ] {
            assert!(parse_url(refused, false).is_err(), "{refused}");
            assert!(parse_registration_url(refused, false).is_err(), "{refused}");
            assert!(
                parse_registration_url(refused, true).is_ok(),
                "{refused} (allowed)"
            );
        }
        for outside_the_grammar in [
            "https://hooks.example.com:65536/",
            "https://hooks.example.com/a b",
            "https://hooks.example.com/{x}",
            "https://-bad.example.com/",
            "https://hooks.example.com/%zz",
        ] {
            assert!(
                parse_registration_url(outside_the_grammar, false).is_err(),
                "{outside_the_grammar}"
            );
        }
        for invalid in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#x",
            "/relative",
            "",
        ] {
            assert!(parse_url(invalid, true).is_err(), "{invalid}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert!(parse_url(&long, false).is_err());
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let secret = Secret::generate();
        assert_eq!(secret.as_bytes().len(), 32);
        assert_eq!(Secret::parse(&secret.reveal()).unwrap(), secret);
        assert_ne!(Secret::generate(), secret);
        let short = format!("whsec_{}", BASE64.encode([1u8; 23]));
        assert!(Secret::parse(&short).is_err());
        assert!(Secret::parse(&BASE64.encode([1u8; 32])).is_err());
        assert!(Secret::parse("whsec_not base64!").is_err());
        assert!(!format!("{secret:?}").contains(&secret.reveal()[6..]));
    }

    #[test]
    fn signature_matches_the_specification_example() {
        // The example of the Standard Webhooks specification.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter_then_stop() {
        let schedule = RetrySchedule::parse("5s, 5m,30m").unwrap();
        assert_eq!(schedule.max_attempts(), 4);
        let first = schedule.wait_after(1).unwrap();
        assert!(
            first >= Duration::from_secs(4) && first <= Duration::from_secs(6),
            "{first:?}"
        );
        let third = schedule.wait_after(3).unwrap();
        assert!(third >= Duration::from_secs(1440) && third <= Duration::from_secs(2160));
        assert_eq!(schedule.wait_after(4), None);
        assert_eq!(schedule.wait_after(0), None);
        assert!(RetrySchedule::parse("5s,soon").is_err());
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(Answer::of(200), Answer::Accepted);
        assert_eq!(Answer::of(204), Answer::Accepted);
        assert_eq!(Answer::of(410), Answer::Gone);
        assert_eq!(Answer::of(500), Answer::Retry);
        assert_eq!(Answer::of(404), Answer::Retry);
        assert_eq!(Answer::of(301), Answer::Retry);
    }

    #[test]
    fn a_url_that_grows_past_the_limit_when_normalized_is_refused() {
        let host = format!("{}.example.com", "a".repeat(63));
        let labels = std::iter::repeat_n(host.as_str(), 40)
            .collect::<Vec<_>>()
            .join(".");
        let url = format!("https://{}", &labels[..MAX_URL_LENGTH - "https://".len()]);
        assert_eq!(url.len(), MAX_URL_LENGTH);
        // The url crate writes it back with a `/`: 2049 characters.
        assert!(parse_url(&url, true).is_err());
        let registered = parse_registration_url("https://hooks.example.com", false).unwrap();
        assert!(parse_url(registered.as_str(), false).is_ok());
    }
}
