//! HTTP routing with Spin's rules: a pure module, no I/O.
//!
//! Route patterns are normalised (leading `/` added, one trailing `/`
//! removed); `:name` matches one non-empty segment; a trailing `/...` (or
//! `/*`) matches the prefix itself and everything below it. Request paths are
//! matched raw (not percent-decoded), ignoring leading and trailing `/`.
//! When several routes match, segments are compared left to right and the
//! first difference decides: literal > `:param` > end of an exact route >
//! wildcard. Equivalent patterns keep manifest order (the first wins);
//! identical route strings are duplicates and the last one wins.

use std::cmp::Ordering;

/// Requests under this prefix are answered by the runtime, never a component.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// What a route sends its requests to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Wasm component, by id.
    Component(String),
    /// A `static_response` trigger, by its index among the HTTP triggers.
    StaticResponse(usize),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Component(id) => f.write_str(id),
            Target::StaticResponse(index) => write!(f, "static response #{index}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// One routable pattern from the manifest.
#[derive(Clone, Debug)]
pub struct Route {
    target: Target,
    /// The route as written in the manifest.
    raw: String,
    /// The normalised route (`/` → ``, `/a/` → `/a`), wildcard suffix kept.
    normalized: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// The rank of a pattern at one segment position; lower wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Literal,
    Param,
    End,
    Wildcard,
}

impl Route {
    fn parse(raw: &str, target: Target) -> Self {
        let absolute = if raw.starts_with('/') {
            raw.to_owned()
        } else {
            format!("/{raw}")
        };
        let normalized = absolute.strip_suffix('/').map(str::to_owned).unwrap_or(absolute);
        let (prefix, wildcard) = match normalized
            .strip_suffix("/...")
            .or_else(|| normalized.strip_suffix("/*"))
        {
            Some(prefix) => (prefix, true),
            None => (normalized.as_str(), false),
        };
        let segments = split_path(prefix)
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            })
            .collect();
        Route {
            target,
            raw: raw.to_owned(),
            segments,
            wildcard,
            normalized,
        }
    }

    fn rank_at(&self, index: usize) -> Rank {
        match self.segments.get(index) {
            Some(Segment::Literal(_)) => Rank::Literal,
            Some(Segment::Param(_)) => Rank::Param,
            None if self.wildcard => Rank::Wildcard,
            None => Rank::End,
        }
    }

    /// Compares two patterns by precedence: `Less` means `self` wins.
    fn precedence(&self, other: &Route) -> Ordering {
        let positions = self.segments.len().max(other.segments.len()) + 1;
        (0..positions)
            .map(|i| self.rank_at(i).cmp(&other.rank_at(i)))
            .find(|ordering| ordering.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// Matches `path` segments; on success returns the captured parameters
    /// and, for wildcard routes, the number of segments the prefix used.
    fn matches<'p>(&self, path: &[&'p str]) -> Option<Vec<(&str, &'p str)>> {
        let fits = if self.wildcard {
            path.len() >= self.segments.len()
        } else {
            path.len() == self.segments.len()
        };
        if !fits {
            return None;
        }
        let mut captures = Vec::new();
        for (pattern, actual) in self.segments.iter().zip(path) {
            match pattern {
                Segment::Literal(literal) if literal == actual => {}
                Segment::Param(name) if !actual.is_empty() => captures.push((name.as_str(), *actual)),
                _ => return None,
            }
        }
        Some(captures)
    }

    /// The route as written in the manifest.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Where requests matching this route go.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The path to print for this route (`/` for the root), without the
    /// wildcard suffix.
    pub fn display_path(&self) -> &str {
        let path = self.normalized_prefix();
        if path.is_empty() { "/" } else { path }
    }

    /// Whether the route ends in a wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    fn normalized_prefix(&self) -> &str {
        self.normalized
            .strip_suffix("/...")
            .or_else(|| self.normalized.strip_suffix("/*"))
            .unwrap_or(&self.normalized)
    }
}

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    let trimmed = path.trim_matches('/');
    trimmed.split('/').filter(move |_| !trimmed.is_empty())
}

/// A route in the manifest's HTTP triggers, before building the router.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    /// The route as written, or `None` for a private (unroutable) endpoint.
    pub route: Option<String>,
    pub target: Target,
}

/// A route that another route with the identical string replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRoute {
    pub route: String,
    pub replaced: Target,
    pub effective: Target,
}

/// The application's routing table.
#[derive(Clone, Debug, Default)]
pub struct Router {
    /// Routes in match-priority order (ties keep manifest order).
    routes: Vec<Route>,
}

/// The outcome of routing a path.
#[derive(Debug)]
pub struct RouteMatch<'r, 'p> {
    route: &'r Route,
    captures: Vec<(&'r str, &'p str)>,
    path_info: String,
}

impl Router {
    /// Builds the router; identical route strings are reported as duplicates
    /// (the last one in the manifest wins, as in Spin).
    pub fn build(specs: impl IntoIterator<Item = RouteSpec>) -> (Self, Vec<DuplicateRoute>) {
        let mut routes: Vec<Route> = Vec::new();
        let mut duplicates = Vec::new();
        for spec in specs {
            let Some(raw) = spec.route else { continue };
            let route = Route::parse(&raw, spec.target);
            if let Some(existing) = routes.iter_mut().find(|r| r.raw == raw) {
                duplicates.push(DuplicateRoute {
                    route: route.display_path().to_owned(),
                    replaced: existing.target.clone(),
                    effective: route.target.clone(),
                });
                *existing = route;
            } else {
                routes.push(route);
            }
        }
        // A stable sort keeps manifest order among equivalent patterns.
        routes.sort_by(Route::precedence);
        (Router { routes }, duplicates)
    }

    /// The routes in match-priority order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Whether any route lies under the reserved well-known prefix.
    pub fn contains_reserved_route(&self) -> bool {
        self.routes
            .iter()
            .any(|r| format!("{}/", r.normalized_prefix()).starts_with(WELL_KNOWN_PREFIX))
    }

    /// Finds the route for a raw request path.
    pub fn route<'r, 'p>(&'r self, path: &'p str) -> Option<RouteMatch<'r, 'p>> {
        let segments: Vec<&str> = split_path(path).collect();
        // Routes are sorted by precedence, so the first match is the best.
        self.routes.iter().find_map(|route| {
            let captures = route.matches(&segments)?;
            let path_info = if route.wildcard {
                wildcard_path_info(&segments[route.segments.len()..], path.ends_with('/'))
            } else {
                String::new()
            };
            Some(RouteMatch {
                route,
                captures,
                path_info,
            })
        })
    }
}

/// Spin's `spin-path-info` for a wildcard match: the rest of the path with a
/// leading `/`, keeping one trailing `/` if the request had one.
fn wildcard_path_info(rest: &[&str], trailing_slash: bool) -> String {
    match (rest.is_empty(), trailing_slash) {
        (true, false) => String::new(),
        (true, true) => "/".to_owned(),
        (false, false) => format!("/{}", rest.join("/")),
        (false, true) => format!("/{}/", rest.join("/")),
    }
}

impl<'r> RouteMatch<'r, '_> {
    pub fn target(&self) -> &'r Target {
        &self.route.target
    }

    /// `spin-matched-route`: the normalised route (`` for `/`).
    pub fn matched_route(&self) -> &'r str {
        &self.route.normalized
    }

    /// `spin-raw-component-route`: the route as written.
    pub fn raw_route(&self) -> &'r str {
        &self.route.raw
    }

    /// `spin-component-route`: the route as written, without `/...`.
    pub fn component_route(&self) -> &'r str {
        self.route.raw.strip_suffix("/...").unwrap_or(&self.route.raw)
    }

    /// `spin-path-info`.
    pub fn path_info(&self) -> &str {
        &self.path_info
    }

    /// Named `:param` captures, raw (not percent-decoded).
    pub fn captures(&self) -> &[(&'r str, &str)] {
        &self.captures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let specs = routes.iter().map(|(id, route)| RouteSpec {
            route: Some(route.to_string()),
            target: Target::Component(id.to_string()),
        });
        Router::build(specs).0
    }

    fn target_of(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|m| m.target().to_string())
    }

    #[test]
    fn exact_routes_match_only_their_path() {
        let r = router(&[("foo", "/foo"), ("foobar", "/foo/bar")]);
        assert_eq!(target_of(&r, "/foo").as_deref(), Some("foo"));
        assert_eq!(target_of(&r, "/foo/bar").as_deref(), Some("foobar"));
        assert_eq!(target_of(&r, "/foo/baz"), None);
        assert_eq!(target_of(&r, "/Foo"), None, "matching is case-sensitive");
    }

    #[test]
    fn leading_and_trailing_slashes_on_requests_are_ignored() {
        let r = router(&[("a", "/a"), ("root", "/")]);
        assert_eq!(target_of(&r, "/a/").as_deref(), Some("a"));
        assert_eq!(target_of(&r, "/a//").as_deref(), Some("a"));
        assert_eq!(target_of(&r, "//").as_deref(), Some("root"));
        assert_eq!(target_of(&r, "/").as_deref(), Some("root"));
    }

    #[test]
    fn params_match_exactly_one_non_empty_segment() {
        let r = router(&[("file", "/files/:id")]);
        let m = r.route("/files/abc").unwrap();
        assert_eq!(m.captures(), &[("id", "abc")]);
        assert!(r.route("/files").is_none());
        assert!(r.route("/files/a/b").is_none());
        assert!(r.route("/files//").is_none());
    }

    #[test]
    fn params_are_not_percent_decoded() {
        let r = router(&[("file", "/files/:id")]);
        assert_eq!(r.route("/files/a%2Fb").unwrap().captures(), &[("id", "a%2Fb")]);
    }

    #[test]
    fn wildcard_matches_prefix_and_everything_below() {
        let r = router(&[("w", "/static/...")]);
        for path in ["/static", "/static/", "/static/a", "/static/a/b/c"] {
            assert_eq!(target_of(&r, path).as_deref(), Some("w"), "{path}");
        }
        assert_eq!(target_of(&r, "/staticx"), None);
    }

    #[test]
    fn star_suffix_is_a_wildcard_too() {
        let r = router(&[("w", "/s/*")]);
        assert_eq!(target_of(&r, "/s/x/y").as_deref(), Some("w"));
        assert_eq!(r.route("/s/x").unwrap().component_route(), "/s/*");
    }

    #[test]
    fn path_info_follows_spin_trailing_slash_rules() {
        let r = router(&[("w", "/foo/...")]);
        assert_eq!(r.route("/foo").unwrap().path_info(), "");
        assert_eq!(r.route("/foo/").unwrap().path_info(), "/");
        assert_eq!(r.route("/foo/bar").unwrap().path_info(), "/bar");
        assert_eq!(r.route("/foo/bar/").unwrap().path_info(), "/bar/");
        assert_eq!(r.route("/foo/a/b").unwrap().path_info(), "/a/b");
    }

    #[test]
    fn exact_routes_have_empty_path_info() {
        let r = router(&[("e", "/x/:y")]);
        assert_eq!(r.route("/x/1").unwrap().path_info(), "");
    }

    #[test]
    fn exact_beats_wildcard_with_same_prefix() {
        let r = router(&[("wild", "/a/..."), ("exact", "/a")]);
        assert_eq!(target_of(&r, "/a").as_deref(), Some("exact"));
        assert_eq!(target_of(&r, "/a/b").as_deref(), Some("wild"));
    }

    #[test]
    fn longer_literal_prefix_beats_shorter_wildcard() {
        let r = router(&[("one", "/one/..."), ("two", "/one/two/...")]);
        assert_eq!(target_of(&r, "/one/two/x").as_deref(), Some("two"));
        assert_eq!(target_of(&r, "/one/two").as_deref(), Some("two"));
        assert_eq!(target_of(&r, "/one/three").as_deref(), Some("one"));
    }

    #[test]
    fn first_difference_decides_literal_over_param() {
        let r = router(&[("p", "/:p/x"), ("q", "/a/:q")]);
        assert_eq!(target_of(&r, "/a/x").as_deref(), Some("q"));
        assert_eq!(target_of(&r, "/b/x").as_deref(), Some("p"));
    }

    #[test]
    fn param_beats_wildcard() {
        let r = router(&[("wild", "/f/..."), ("param", "/f/:id")]);
        assert_eq!(target_of(&r, "/f/1").as_deref(), Some("param"));
        assert_eq!(target_of(&r, "/f/1/content").as_deref(), Some("wild"));
    }

    #[test]
    fn spindrive_routes_resolve_as_designed() {
        let r = router(&[
            ("files", "/api/files/..."),
            ("downloads", "/api/files/:id/content"),
            ("permissions", "/api/files/:id/permissions/..."),
            ("catch", "/..."),
        ]);
        assert_eq!(target_of(&r, "/api/files").as_deref(), Some("files"));
        assert_eq!(target_of(&r, "/api/files/x").as_deref(), Some("files"));
        assert_eq!(
            target_of(&r, "/api/files/x/content").as_deref(),
            Some("downloads")
        );
        assert_eq!(
            target_of(&r, "/api/files/x/permissions").as_deref(),
            Some("permissions")
        );
        assert_eq!(
            target_of(&r, "/api/files/x/permissions/7").as_deref(),
            Some("permissions")
        );
        assert_eq!(target_of(&r, "/other").as_deref(), Some("catch"));
    }

    #[test]
    fn equivalent_patterns_keep_manifest_order() {
        let r = router(&[("x", "/:x"), ("y", "/:y")]);
        assert_eq!(target_of(&r, "/v").as_deref(), Some("x"));
        let r = router(&[("d1", "/d"), ("d2", "/d/")]);
        assert_eq!(target_of(&r, "/d").as_deref(), Some("d1"));
    }

    #[test]
    fn identical_route_strings_last_wins_and_are_reported() {
        let specs = [("d1", "/dup"), ("d2", "/dup")].map(|(id, route)| RouteSpec {
            route: Some(route.into()),
            target: Target::Component(id.into()),
        });
        let (r, duplicates) = Router::build(specs);
        assert_eq!(target_of(&r, "/dup").as_deref(), Some("d2"));
        assert_eq!(
            duplicates,
            vec![DuplicateRoute {
                route: "/dup".into(),
                replaced: Target::Component("d1".into()),
                effective: Target::Component("d2".into()),
            }]
        );
    }

    #[test]
    fn private_routes_are_not_routable() {
        let specs = [RouteSpec {
            route: None,
            target: Target::Component("hidden".into()),
        }];
        let (r, _) = Router::build(specs);
        assert!(r.routes().is_empty());
        assert!(r.route("/").is_none());
    }

    #[test]
    fn header_values_match_spin() {
        let r = router(&[("dl", "/api/files/:id/...")]);
        let m = r.route("/api/files/abc/content").unwrap();
        assert_eq!(m.matched_route(), "/api/files/:id/...");
        assert_eq!(m.raw_route(), "/api/files/:id/...");
        assert_eq!(m.component_route(), "/api/files/:id");
        assert_eq!(m.path_info(), "/content");
        assert_eq!(m.captures(), &[("id", "abc")]);
    }

    #[test]
    fn root_route_normalises_to_empty() {
        let r = router(&[("root", "/")]);
        let m = r.route("/").unwrap();
        assert_eq!(m.matched_route(), "");
        assert_eq!(m.raw_route(), "/");
        assert_eq!(r.routes()[0].display_path(), "/");
    }

    #[test]
    fn routes_without_leading_slash_are_absolutised() {
        let r = router(&[("a", "a/b")]);
        assert_eq!(target_of(&r, "/a/b").as_deref(), Some("a"));
        assert_eq!(r.route("/a/b").unwrap().matched_route(), "/a/b");
    }

    #[test]
    fn routes_are_listed_in_match_priority_order() {
        let r = router(&[
            ("catch", "/..."),
            ("wild", "/a/..."),
            ("exact", "/a"),
            ("b", "/b"),
        ]);
        let order: Vec<_> = r.routes().iter().map(|r| r.target().to_string()).collect();
        assert_eq!(order, ["exact", "b", "wild", "catch"]);
    }

    #[test]
    fn reserved_routes_are_detected() {
        assert!(router(&[("x", "/.well-known/spin/health")]).contains_reserved_route());
        assert!(!router(&[("x", "/.well-known/other")]).contains_reserved_route());
    }
}
