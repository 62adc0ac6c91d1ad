//! The fuzz targets' bodies: each takes arbitrary bytes, feeds them to one
//! of the parsers spindrive wrote by hand, and panics when a property the
//! rest of the code relies on does not hold (or when the parser panics on
//! its own). `fuzz/` runs them under libFuzzer (`make fuzz`); the corpus
//! it keeps in `fuzz/corpus/<target>/` is replayed by `make test`.

use spindrive_domain::client::ClientKey;
use spindrive_domain::download::{self, ByteRange};
use spindrive_domain::{fields, media_type, paging, transform, webhook};
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
    ("content_types", content_types),
    ("client_addresses", client_addresses),
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
    (u64::from_le_bytes(size), text(rest))
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
/// panic, and agree with each other: what matches strongly matches weakly,
/// a header that lists the current ETag among others matches, and a
/// date the server wrote is read back as that date.
pub fn conditional_headers(data: &[u8]) {
    let header = text(data);
    let etag = download::etag("0123456789abcdef");
    if download::if_range_holds(header, &etag) {
        assert!(download::if_match_holds(header, &etag), "{header:?}");
    }
    if download::if_match_holds(header, &etag) {
        assert!(download::none_match_hits(header, &etag), "{header:?}");
    }
    let listed = format!("{header}, {etag}");
    assert!(download::if_match_holds(&listed, &etag) && download::none_match_hits(&listed, &etag));
    let now = chrono::DateTime::from_timestamp(1_764_460_800, 0)
        .expect("a valid time")
        .naive_utc();
    if download::not_modified_since(header, now) {
        // A date at or after `now`: it stays so for anything older.
        let earlier = now - chrono::Duration::days(1);
        assert!(download::not_modified_since(header, earlier), "{header:?}");
    }
    assert!(download::not_modified_since(&download::http_date(now), now));
}

/// Cursors: what decodes encodes back to a cursor that decodes the same
/// (for values without fractions, which JSON need not read back exactly).
pub fn cursors(data: &[u8]) {
    if let Ok(position) = paging::decode_cursor::<serde_json::Value>(text(data))
        && !has_fraction(&position)
    {
        let again: serde_json::Value =
            paging::decode_cursor(&paging::encode_cursor(&position)).expect("an encoded cursor decodes");
        assert_eq!(again, position);
    }
    let _ = paging::limit(Some(text(data)));
}

fn has_fraction(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_fraction),
        serde_json::Value::Object(fields) => fields.values().any(has_fraction),
        _ => false,
    }
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

/// JSON bodies: a transformation request that parses is described by its
/// kind and params, which parse back to the same transformation (what the
/// worker reads from the stored job).
pub fn json_bodies(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for kind in ["thumbnail", "resize", "convert", "pdf_text", "ocr"] {
        if let Ok(parsed) = transform::Transformation::parse(kind, &body) {
            let again = transform::Transformation::parse(parsed.kind(), &parsed.params());
            assert_eq!(again.ok(), Some(parsed), "{kind} {body}");
        }
    }
    let _ = serde_json::from_value::<fields::Whole<u32>>(body);
}

/// Webhook URLs: what registration accepts is stored as the url crate
/// writes it back, and deliveries read that: it must parse again, to the
/// same URL.
pub fn webhook_urls(data: &[u8]) {
    let url = text(data);
    for allow_private in [false, true] {
        if let Ok(parsed) = webhook::parse_registration_url(url, allow_private) {
            let stored = parsed.as_str();
            let delivered = webhook::parse_url(stored, allow_private);
            assert_eq!(
                delivered.ok().as_ref(),
                Some(&parsed),
                "{url:?} registers but {stored:?} is not delivered to"
            );
        }
    }
}

/// An upload's `Content-Type`: what is stored is canonical (storing it
/// again keeps it), fits its column, and is served as itself or as opaque
/// bytes, nothing else.
pub fn content_types(data: &[u8]) {
    let header = text(data);
    let Ok(stored) = media_type::stored(Some(header)) else {
        return;
    };
    assert!(stored.len() <= 255, "{header:?} stored as {stored:?}");
    assert_eq!(
        media_type::stored(Some(&stored)).as_deref(),
        Ok(stored.as_str()),
        "{header:?} stored as {stored:?}, which is not canonical"
    );
    let served = media_type::served(&stored);
    assert!(
        served == stored || served == media_type::OPAQUE,
        "{stored:?} served as {served:?}"
    );
}

/// Who a client is (`spin-client-addr`, `X-Forwarded-For`): the first
/// byte is the trusted hop count (0 to 3), the rest the header values,
/// peer values and forwarded ones apart by a NUL, each value on a line.
/// The key is short, and nothing the client wrote changes it: earlier
/// `spin-client-addr` values, `X-Forwarded-For` without trusted proxies,
/// or entries left of the trusted ones.
pub fn client_addresses(data: &[u8]) {
    let Some((&hops, rest)) = data.split_first() else {
        return;
    };
    let hops = usize::from(hops % 4);
    let (peers, forwarded) = text(rest).split_once('\0').unwrap_or((text(rest), ""));
    let peers: Vec<&str> = peers.lines().collect();
    let forwarded: Vec<&str> = forwarded.lines().collect();
    let key = ClientKey::from_request(&peers, &forwarded, hops);
    assert!(key.as_ref().len() <= 45, "{key:?}");
    let last_peer = &peers[peers.len().saturating_sub(1)..];
    assert_eq!(
        ClientKey::from_request(last_peer, &forwarded, hops),
        key,
        "an earlier spin-client-addr counted"
    );
    if hops == 0 {
        assert_eq!(
            ClientKey::from_request(&peers, &[], 0),
            key,
            "X-Forwarded-For counted untrusted"
        );
    }
    let entries = forwarded.iter().flat_map(|value| value.split(',')).count();
    if hops > 0 && entries >= hops {
        let mut prefixed = vec!["203.0.113.66"];
        prefixed.extend(&forwarded);
        assert_eq!(
            ClientKey::from_request(&peers, &prefixed, hops),
            key,
            "a client-written X-Forwarded-For entry counted"
        );
    }
}
