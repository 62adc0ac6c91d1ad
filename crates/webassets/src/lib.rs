//! The rules for serving the web UI's built files (`web/dist`, mounted
//! into the `web` component): which file a request path names (never one
//! outside the assets), when a path is a client-side route that gets
//! `index.html`, the content type, how long a browser may cache it, which
//! pre-compressed variant the client accepts, and the validators.

use sha2::{Digest, Sha256};

/// The page every client-side route gets.
pub const INDEX: &str = "index.html";

/// The asset file a request path names, relative to the assets' root;
/// `None` for a path that could name something else (`..`, hidden files,
/// backslashes, NUL, invalid percent-encoding) or names a pre-compressed
/// variant itself (served only as its asset's encoding).
pub fn asset_path(request_path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(request_path)
        .decode_utf8()
        .ok()?;
    let mut segments = Vec::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains(['\\', '\0']) {
            return None;
        }
        segments.push(segment);
    }
    let path = if segments.is_empty() {
        INDEX.to_owned()
    } else {
        segments.join("/")
    };
    let variant = [Encoding::Brotli, Encoding::Gzip]
        .iter()
        .any(|e| path.ends_with(e.suffix()));
    (!variant).then_some(path)
}

/// Whether a missing `path` is a route of the UI itself (`/files/abc`,
/// `/shared`), answered with `index.html`, rather than a missing file
/// (`/assets/gone.js`: 404). Routes have no extension in their last part.
pub fn is_client_route(path: &str) -> bool {
    !path.starts_with("assets/") && !path.rsplit('/').next().unwrap_or_default().contains('.')
}

/// The `Content-Type` of an asset, text in UTF-8.
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    if mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript" | "application/json" | "image/svg+xml"
        )
    {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_owned()
    }
}

/// The `Cache-Control` of an asset: the bundler names files under
/// `assets/` by a hash of their content (`index-BzKq3tRw.js`), so those
/// never change and are cached for a year; anything else (`index.html`)
/// is revalidated on every use, so a deployment shows at once.
pub fn cache_control(path: &str) -> &'static str {
    if path.starts_with("assets/") && has_content_hash(path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// `name-<hash>.ext`, the hash the bundler's 8 URL-safe base64
/// characters (which may themselves hold `-` or `_`).
fn has_content_hash(path: &str) -> bool {
    const HASH: usize = 8;
    let file = path.rsplit('/').next().unwrap_or_default();
    let stem = file.split('.').next().unwrap_or_default().as_bytes();
    stem.len() > HASH + 1
        && stem[stem.len() - HASH - 1] == b'-'
        && stem[stem.len() - HASH..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// A pre-compressed variant of an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// The variant's file name suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
        }
    }
}

/// The variants an `Accept-Encoding` header accepts, best first (brotli
/// is smaller). A coding with `q=0` is refused; `*` accepts both.
pub fn accepted_encodings(accept_encoding: Option<&str>) -> Vec<Encoding> {
    let mut brotli = None;
    let mut gzip = None;
    let mut any = None;
    let accept_encoding = accept_encoding.unwrap_or_default().to_ascii_lowercase();
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let quality = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        let accepted = quality > 0.0;
        match coding {
            "br" => brotli = Some(accepted),
            "gzip" | "x-gzip" => gzip = Some(accepted),
            "*" => any = Some(accepted),
            _ => {}
        }
    }
    let mut accepted = Vec::new();
    if brotli.or(any) == Some(true) {
        accepted.push(Encoding::Brotli);
    }
    if gzip.or(any) == Some(true) {
        accepted.push(Encoding::Gzip);
    }
    accepted
}

/// A strong `ETag` for a representation's bytes.
pub fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` holds `etag` (or `*`): the client's copy is
/// current and the answer is 304. Compared weakly, as RFC 9110 says.
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(header) = if_none_match else { return false };
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_files_inside_the_assets_only() {
        assert_eq!(asset_path("/").as_deref(), Some("index.html"));
        assert_eq!(asset_path("").as_deref(), Some("index.html"));
        assert_eq!(
            asset_path("/assets/index-BzKq3tRw.js").as_deref(),
            Some("assets/index-BzKq3tRw.js")
        );
        assert_eq!(asset_path("//assets///a.css").as_deref(), Some("assets/a.css"));
        assert_eq!(asset_path("/files/n%C3%A4me").as_deref(), Some("files/näme"));
        for refused in [
            "/../etc/passwd",
            "/assets/../../x",
            "/%2e%2e/secret",
            "/.env",
            "/assets/.hidden",
            "/a%5Cb",
            "/a%00b",
            "/%ff",
            "/assets/index-BzKq3tRw.js.br",
            "/index.html.gz",
        ] {
            assert_eq!(asset_path(refused), None, "{refused}");
        }
    }

    #[test]
    fn client_routes_are_paths_without_an_extension() {
        assert!(is_client_route("files"));
        assert!(is_client_route("files/0b7c-uuid"));
        assert!(is_client_route("admin/users"));
        assert!(!is_client_route("favicon.ico"));
        assert!(!is_client_route("assets/index-BzKq3tRw.js"));
        assert!(!is_client_route("assets/fonts"));
    }

    #[test]
    fn content_types_and_caching() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/a-12345678.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("icon.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(content_type("logo.png"), "image/png");
        assert_eq!(content_type("manifest.webmanifest"), "application/manifest+json");
        assert_eq!(content_type("data.bin"), "application/octet-stream");
        assert_eq!(
            cache_control("assets/index-BzKq3tRw.js"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            cache_control("assets/index-Bz_q3-Rw.css"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_control("index.html"), "no-cache");
        assert_eq!(cache_control("assets/logo.png"), "no-cache");
        assert_eq!(cache_control("favicon-12345678.ico"), "no-cache");
        assert_eq!(cache_control("assets/-12345678.js"), "no-cache");
    }

    #[test]
    fn accept_encoding_is_negotiated() {
        use Encoding::*;
        assert_eq!(
            accepted_encodings(Some("gzip, deflate, br, zstd")),
            vec![Brotli, Gzip]
        );
        assert_eq!(accepted_encodings(Some("gzip")), vec![Gzip]);
        assert_eq!(accepted_encodings(Some("br;q=0, gzip;q=0.5")), vec![Gzip]);
        assert_eq!(accepted_encodings(Some("*")), vec![Brotli, Gzip]);
        assert_eq!(accepted_encodings(Some("*, br;q=0")), vec![Gzip]);
        assert_eq!(accepted_encodings(Some("BR;Q=0, GZIP")), vec![Gzip]);
        assert_eq!(accepted_encodings(Some("identity")), vec![]);
        assert_eq!(accepted_encodings(None), vec![]);
    }

    #[test]
    fn validators_match_the_bytes() {
        let tag = etag(b"hello");
        assert_eq!(tag.len(), 26);
        assert_ne!(tag, etag(b"hello!"));
        assert!(not_modified(Some(&tag), &tag));
        assert!(not_modified(Some(&format!("\"x\", W/{tag}")), &tag));
        assert!(not_modified(Some("*"), &tag));
        assert!(!not_modified(Some("\"other\""), &tag));
        assert!(!not_modified(None, &tag));
    }
}
