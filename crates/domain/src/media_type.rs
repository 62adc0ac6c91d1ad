//! The media type of stored content. An upload's `Content-Type` is parsed
//! once (RFC 9110 §8.3.1, by the `mime` crate) and kept in one canonical
//! form; a download is served with it only if it is on an allow-list of
//! types a browser never runs, else as opaque bytes.

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
    let parsed: mime::Mime = value.parse().map_err(|_| invalid("must be one media type"))?;
    if parsed.type_() == mime::STAR || parsed.subtype() == mime::STAR {
        return Err(invalid("must be one media type, not a range"));
    }
    let mut canonical = parsed.essence_str().to_ascii_lowercase();
    if let Some(charset) = parsed.get_param(mime::CHARSET) {
        let charset = charset.as_str().to_ascii_lowercase();
        if !charset
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+".contains(&b))
        {
            return Err(invalid("has a charset that is not a name"));
        }
        canonical.push_str("; charset=");
        canonical.push_str(&charset);
    }
    Ok(canonical)
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
            "text/pl ain",
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
