//! The fuzz targets' bodies: each takes arbitrary bytes, feeds them to one
//! of the parsers spindrive wrote by hand, and panics when a property the
//! rest of the code relies on does not hold (or when the parser panics on
//! its own). `fuzz/` runs them under libFuzzer (`make fuzz`); the corpus
//! it keeps in `fuzz/corpus/<target>/` is replayed by `make test`.

use spindrive_domain::download::{self, ByteRange};
use spindrive_domain::{fields, paging, transform, webhook};
use spindrive_host::{manifest, template};

/// A target: arbitrary bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and fuzz binary have.
pub const TARGETS: &[(&str, Target)] = &[
    ("range_headers", range_headers),
    ("conditional_headers", conditional_headers),
    ("cursors", cursors),
    ("templates", templates),
    ("manifests", manifests),
    ("json_bodies", json_bodies),
    ("webhook_urls", webhook_urls),
];

/// Input as text: header values and the like arrive as strings.
fn text(data: &[u8]) -> &str {
    std::str::from_utf8(data).unwrap_or_default()
}

/// The first 8 bytes as a size (a file's length), the rest as text.
fn size_and_text(data: &[u8]) -> (u64, &str) {
    let (head, rest) = data.split_at(data.len().min(8));
    let mut size = [0u8; 8];
    size[..head.len()].copy_from_slice(head);
    // Sizes around zero and the chunk size matter most: keep them likely.
    (u64::from_le_bytes(size) % (1 << 40), text(rest))
}

/// `Range`: a partial answer always lies within the file.
pub fn range_headers(data: &[u8]) {
    let (size, header) = size_and_text(data);
    match download::byte_range(Some(header), size) {
        ByteRange::Full => {}
        ByteRange::Partial { start, end } => {
            assert!(
                start <= end && end < size,
                "bytes {start}-{end} of {size} from {header:?}"
            );
        }
        ByteRange::Unsatisfiable => {}
    }
}

/// `If-None-Match`, `If-Match`, `If-Range`, `If-Modified-Since`: never
/// panic, and a header naming exactly the current ETag always matches.
pub fn conditional_headers(data: &[u8]) {
    let header = text(data);
    let etag = download::etag("0123456789abcdef");
    download::none_match_hits(header, &etag);
    download::if_match_holds(header, &etag);
    download::if_range_holds(header, &etag);
    let now = chrono::DateTime::from_timestamp(1_764_460_800, 0)
        .expect("a valid time")
        .naive_utc();
    download::not_modified_since(header, now);
    assert!(download::none_match_hits(&etag, &etag));
    assert!(download::if_match_holds(&etag, &etag));
    // A date the server wrote is understood as that date.
    assert!(download::not_modified_since(&download::http_date(now), now));
}

/// Cursors: what decodes encodes back to a cursor that decodes the same.
pub fn cursors(data: &[u8]) {
    if let Ok(position) = paging::decode_cursor::<serde_json::Value>(text(data)) {
        let again: serde_json::Value =
            paging::decode_cursor(&paging::encode_cursor(&position)).expect("an encoded cursor decodes");
        assert_eq!(again, position);
    }
    let _ = paging::limit(Some(text(data)));
}

/// `{{ name }}` templates: the variables found are trimmed, non-empty and
/// free of braces, and a template rendered with its own references put
/// back parses to the same template.
pub fn templates(data: &[u8]) {
    let Ok(parsed) = template::Template::parse(text(data)) else {
        return;
    };
    for name in parsed.variables() {
        assert!(!name.is_empty() && name.trim() == name, "variable {name:?}");
    }
    let rendered = parsed
        .render(|name| Ok::<_, ()>(format!("{{{{ {name} }}}}")))
        .expect("the lookup cannot fail");
    if parsed
        .variables()
        .all(|name| !name.contains("{{") && !name.contains("}}"))
    {
        assert_eq!(
            template::Template::parse(&rendered).ok(),
            Some(parsed),
            "{rendered:?}"
        );
    }
}

/// spin.toml: any text is a manifest or an error, never a panic.
pub fn manifests(data: &[u8]) {
    let _ = manifest::Manifest::parse(text(data), std::path::Path::new("/nonexistent"));
}

/// JSON bodies: transformation requests and whole numbers. A number taken
/// as whole is one, and in range.
pub fn json_bodies(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for kind in ["thumbnail", "resize", "convert", "pdf_text", "ocr"] {
        let _ = transform::Transformation::parse(kind, &body);
    }
    if let Ok(fields::Whole(n)) = serde_json::from_value::<fields::Whole<u32>>(body.clone()) {
        let number = body.as_f64().expect("a whole number is a number");
        assert_eq!(number, f64::from(n), "{body}");
    }
}

/// Webhook URLs: what registration accepts, delivery accepts too, and it
/// is an http(s) URL with a host.
pub fn webhook_urls(data: &[u8]) {
    let url = text(data);
    for allow_private in [false, true] {
        if let Ok(parsed) = webhook::parse_registration_url(url, allow_private) {
            assert!(
                matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
                "{url:?}"
            );
            assert!(
                webhook::parse_url(url, allow_private).is_ok(),
                "{url:?} registers but is not delivered to"
            );
        }
    }
}
