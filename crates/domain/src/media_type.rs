//! The media type of stored content. An upload's `Content-Type` is parsed
//! once, as RFC 9110 §8.3.1 writes one, and kept in one canonical form; a
//! download is served with it only if it is on an allow-list of types a
//! browser never runs, else as opaque bytes. (By hand: the `mime` crate
//! takes `text/` and refuses the optional whitespace before `;`.)

use crate::ValidationError;

/// What an upload without a usable `Content-Type` is stored as.
pub const OPAQUE: &str = "application/octet-stream";

/// The longest `Content-Type` an upload may send.
const MAX_LENGTH: usize = 255;

/// Types served as stored: text that is only text, images, audio, video
/// and documents that browsers show in a viewer of their own, archives.
/// Anything else (HTML, SVG, XML, scripts, unknown types) is served as
/// [`OPAQUE`]: a type not on this list may be one a browser runs.
const SERVED_AS_STORED: &[&str] = &[
    "text/plain",
    "text/csv",
    "text/markdown",
    "text/tab-separated-values",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/bmp",
    "image/tiff",
    "image/heic",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "audio/flac",
    "audio/aac",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "application/pdf",
    "application/json",
    "application/zip",
    "application/gzip",
    "application/x-tar",
    "application/x-7z-compressed",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    OPAQUE,
];

/// The type to store for an upload's `Content-Type` header: `type/subtype`
/// in lower case, with its `charset` if it names one (other parameters
/// mean nothing for stored bytes); [`OPAQUE`] when the header is absent or
/// blank. A list of types, or anything that is not one media type, is
/// refused.
pub fn stored(header: Option<&str>) -> Result<String, ValidationError> {
    let Some(value) = header.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(OPAQUE.to_owned());
    };
    let invalid =
        |why: &str| ValidationError::new("content_type", format!("{why}, e.g. text/plain; charset=utf-8"));
    if value.len() > MAX_LENGTH {
        return Err(invalid("must be one media type of at most 255 characters"));
    }
    let (type_, subtype, charset) = parse(value).ok_or_else(|| invalid("must be one media type"))?;
    if type_ == "*" || subtype == "*" {
        return Err(invalid("must be one media type, not a range"));
    }
    let mut canonical = format!("{type_}/{subtype}").to_ascii_lowercase();
    if let Some(charset) = charset {
        // A charset's name, written bare: alphanumerics and `-_.+`.
        if charset.is_empty()
            || !charset
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
        {
            return Err(invalid("has a charset that is not a name"));
        }
        canonical.push_str("; charset=");
        canonical.push_str(&charset.to_ascii_lowercase());
    }
    Ok(canonical)
}

/// `type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] )`:
/// the type, the subtype and the first `charset` value.
fn parse(value: &str) -> Option<(&str, &str, Option<String>)> {
    let mut cursor = Cursor { text: value, at: 0 };
    let type_ = cursor.token()?;
    cursor.eat(b'/').then_some(())?;
    let subtype = cursor.token()?;
    let mut charset = None;
    loop {
        cursor.skip_whitespace();
        if cursor.done() {
            return Some((type_, subtype, charset));
        }
        cursor.eat(b';').then_some(())?;
        cursor.skip_whitespace();
        if cursor.done() || cursor.peek() == Some(b';') {
            continue;
        }
        let name = cursor.token()?;
        cursor.eat(b'=').then_some(())?;
        let value = match cursor.peek() {
            Some(b'"') => cursor.quoted()?,
            _ => cursor.token()?.to_owned(),
        };
        if charset.is_none() && name.eq_ignore_ascii_case("charset") {
            charset = Some(value);
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at == self.text.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        self.at += usize::from(matched);
        matched
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// One or more `tchar`s (RFC 9110 §5.6.2).
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            self.at += 1;
        }
        (self.at > start).then(|| &self.text[start..self.at])
    }

    /// A quoted string (RFC 9110 §5.6.4), unescaped; ASCII only.
    fn quoted(&mut self) -> Option<String> {
        self.eat(b'"').then_some(())?;
        let mut value = String::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(value);
                }
                b'\\' => {
                    self.at += 1;
                    let escaped = self.peek().filter(|b| *b == b'\t' || (b' '..=b'~').contains(b))?;
                    value.push(char::from(escaped));
                }
                b if b == b'\t' || (b' '..=b'~').contains(&b) => value.push(char::from(b)),
                _ => return None,
            }
            self.at += 1;
        }
    }
}

/// The type to serve stored content as: itself if its essence is on the
/// allow-list, else [`OPAQUE`]. Content stored before types were parsed
/// may be anything, so it is parsed again here.
pub fn served(stored_type: &str) -> String {
    match stored(Some(stored_type)) {
        Ok(canonical) if SERVED_AS_STORED.contains(&essence(&canonical)) => canonical,
        _ => OPAQUE.to_owned(),
    }
}

fn essence(canonical: &str) -> &str {
    canonical.split(';').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_store_one_canonical_type() {
        for (header, kept) in [
            (None, OPAQUE),
            (Some("  "), OPAQUE),
            (Some("image/PNG"), "image/png"),
            (Some("Text/Plain ; Charset=UTF-8"), "text/plain; charset=utf-8"),
            (
                Some("text/plain; format=flowed; charset=\"utf-8\""),
                "text/plain; charset=utf-8",
            ),
            (Some("application/vnd.api+json"), "application/vnd.api+json"),
            (
                Some("text/plain;; charset=\"UTF\\-8\" ;"),
                "text/plain; charset=utf-8",
            ),
        ] {
            assert_eq!(stored(header).as_deref(), Ok(kept), "{header:?}");
        }
    }

    #[test]
    fn anything_but_one_media_type_is_refused() {
        let long = format!("text/{}", "x".repeat(300));
        for header in [
            "text/plain, text/html",
            "text/plain,text/html",
            "text",
            "text/",
            "/plain",
            "*/*",
            "text/*",
            "text/plain; charset=\"a b\"",
            "text/plain; charset=\"u:f-8\"",
            "text/plain; charset=\"\"",
            "text/pl ain",
            "text/plain charset=utf-8",
            "text/plain; charset",
            "text/plain; charset=\"utf-8",
            "text/plain; charset=utf-8\"",
            "text/plain; \u{e9}=1",
            "text/plain\u{7f}",
            long.as_str(),
        ] {
            let refused = stored(Some(header)).expect_err(header);
            assert_eq!(refused.field, "content_type");
        }
    }

    #[test]
    fn only_inert_types_are_served_as_stored() {
        for active in [
            "text/html",
            "Text/HTML; charset=utf-8",
            "image/svg+xml",
            "application/xml",
            "text/javascript",
            "application/rss+xml",
            "application/x-unknown",
            "text/plain, text/html",
            "",
        ] {
            assert_eq!(served(active), OPAQUE, "{active}");
        }
        for inert in [
            "text/plain; charset=utf-8",
            "image/png",
            "application/pdf",
            "application/json",
        ] {
            assert_eq!(served(inert), inert);
        }
        assert_eq!(served("Image/PNG"), "image/png");
    }
}
