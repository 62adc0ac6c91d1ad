//! The HTTP rules of downloads: byte ranges, validators (ETag,
//! Last-Modified) and `Content-Disposition` with UTF-8 names.
//!
//! Choices: one byte range is served as 206; a request for several ranges
//! gets the whole file (200), which RFC 9110 allows; a malformed or
//! non-`bytes` Range header is ignored (200), as the RFC requires.

use chrono::NaiveDateTime;

/// What to send for a request's `Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole representation (200).
    Full,
    /// Bytes `start..=end` (206).
    Partial { start: u64, end: u64 },
    /// No byte of the requested range exists (416).
    Unsatisfiable,
}

/// Interprets a `Range` header for a representation of `size` bytes.
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return ByteRange::Full;
    };
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first.is_empty(), last.is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            None => ByteRange::Full,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            },
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            None => ByteRange::Full,
            Some(start) if start >= size => ByteRange::Unsatisfiable,
            Some(start) => ByteRange::Partial { start, end: size - 1 },
        },
        // `a-b`.
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= size {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Partial {
                        start,
                        end: end.min(size - 1),
                    }
                }
            }
            _ => ByteRange::Full,
        },
        (true, true) => ByteRange::Full,
    }
}

/// The strong ETag of content with this SHA-256 (hex).
pub fn etag(sha256_hex: &str) -> String {
    format!("\"{sha256_hex}\"")
}

/// `If-None-Match`: true when it names `etag` (weakly) or is `*`.
pub fn none_match_hits(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate == etag || candidate.strip_prefix("W/") == Some(etag))
}

/// `If-Range`: the range applies only if the client's strong ETag is still
/// the content's. A date is never trusted (RFC 9110 allows it only when
/// strong, and a one-second date cannot tell apart two replacements within
/// that second): the whole file is sent instead.
pub fn if_range_holds(header: &str, etag: &str) -> bool {
    header.trim() == etag
}

/// `If-Match`: true when it is `*` or names `etag` by strong comparison
/// (a weak tag never matches).
pub fn if_match_holds(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate == etag)
}

/// `If-Modified-Since`: true when the content has not changed since the
/// date (compared to the second, as HTTP dates are). An invalid date is
/// ignored, and the caller ignores this header when `If-None-Match` is
/// present (RFC 9110, 13.1.3).
pub fn not_modified_since(header: &str, last_modified: NaiveDateTime) -> bool {
    NaiveDateTime::parse_from_str(header.trim(), HTTP_DATE)
        .is_ok_and(|since| last_modified.and_utc().timestamp() <= since.and_utc().timestamp())
}

const HTTP_DATE: &str = "%a, %d %b %Y %H:%M:%S GMT";

/// An HTTP date (IMF-fixdate), e.g. `Wed, 25 Nov 2026 21:10:00 GMT`.
pub fn http_date(at: NaiveDateTime) -> String {
    at.format(HTTP_DATE).to_string()
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name
/// (RFC 6266 / RFC 8187).
pub fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn partial(start: u64, end: u64) -> ByteRange {
        ByteRange::Partial { start, end }
    }

    #[test]
    fn single_ranges_in_every_form() {
        assert_eq!(byte_range(Some("bytes=0-0"), 10), partial(0, 0));
        assert_eq!(byte_range(Some("bytes=2-5"), 10), partial(2, 5));
        assert_eq!(byte_range(Some("bytes=9-9"), 10), partial(9, 9));
        assert_eq!(byte_range(Some("bytes=5-"), 10), partial(5, 9));
        assert_eq!(byte_range(Some("bytes=-3"), 10), partial(7, 9));
        assert_eq!(byte_range(Some("bytes=-30"), 10), partial(0, 9));
        assert_eq!(
            byte_range(Some("bytes=5-1000"), 10),
            partial(5, 9),
            "end clamps to the last byte"
        );
        assert_eq!(
            byte_range(Some(" bytes= 1 - 2 "), 10),
            ByteRange::Full,
            "spaces inside are malformed"
        );
    }

    #[test]
    fn ranges_beyond_the_end_are_unsatisfiable() {
        assert_eq!(byte_range(Some("bytes=10-"), 10), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=10-20"), 10), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=0-0"), 0), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-5"), 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn malformed_and_multiple_ranges_get_the_whole_file() {
        for header in [
            "bytes=5-2",
            "bytes=a-b",
            "bytes=-",
            "items=0-1",
            "bytes=1",
            "bytes=0-1,3-4",
            "bytes=--1",
            "",
        ] {
            assert_eq!(byte_range(Some(header), 10), ByteRange::Full, "{header}");
        }
        assert_eq!(byte_range(None, 10), ByteRange::Full);
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tag = etag("ab12");
        assert_eq!(tag, "\"ab12\"");
        assert!(none_match_hits("\"ab12\"", &tag));
        assert!(none_match_hits("W/\"ab12\"", &tag));
        assert!(none_match_hits("\"x\", \"ab12\"", &tag));
        assert!(none_match_hits("*", &tag));
        assert!(!none_match_hits("\"ab13\"", &tag));
    }

    fn at(h: u32, m: u32, sec: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(h, m, sec)
            .unwrap()
    }

    #[test]
    fn if_range_needs_a_strong_etag_and_never_trusts_a_date() {
        let tag = etag("ab12");
        assert!(if_range_holds("\"ab12\"", &tag));
        assert!(!if_range_holds("W/\"ab12\"", &tag));
        assert!(!if_range_holds("\"other\"", &tag));
        assert!(!if_range_holds(&http_date(at(21, 10, 0)), &tag));
    }

    #[test]
    fn if_match_compares_strongly() {
        let tag = etag("ab12");
        assert!(if_match_holds("\"ab12\"", &tag));
        assert!(if_match_holds("\"x\", \"ab12\"", &tag));
        assert!(if_match_holds("*", &tag));
        assert!(!if_match_holds("W/\"ab12\"", &tag));
        assert!(!if_match_holds("\"ab13\"", &tag));
    }

    #[test]
    fn if_modified_since_compares_to_the_second() {
        let modified = at(21, 10, 0) + chrono::Duration::milliseconds(700);
        assert!(not_modified_since("Wed, 25 Nov 2026 21:10:00 GMT", modified));
        assert!(not_modified_since("Wed, 25 Nov 2026 22:00:00 GMT", modified));
        assert!(!not_modified_since("Wed, 25 Nov 2026 21:09:59 GMT", modified));
        assert!(!not_modified_since("yesterday", modified));
    }

    #[test]
    fn dispositions_carry_utf8_names_with_an_ascii_fallback() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("naïve \"café\".txt"),
            "attachment; filename=\"na_ve _caf__.txt\"; filename*=UTF-8''na%C3%AFve%20%22caf%C3%A9%22.txt"
        );
    }
}
