//! The OpenAPI document matches the code: every route a component serves is
//! in the spec (with its method), every spec path is routed by spin.toml,
//! and the spec is served.

use crate::helpers::spawn_app;
use regex::Regex;
use serde_json::Value;
use spindrive_testkit::workspace_root;
use std::collections::BTreeSet;

fn spec() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("api/openapi.json")).unwrap();
    serde_json::from_str(&text).expect("api/openapi.json is JSON")
}

/// (method, path) for every route table entry in every component, with
/// `:name` written as OpenAPI's `{name}`.
fn component_routes() -> BTreeSet<(String, String)> {
    let entry = Regex::new(r#"\(\s*Method::([A-Z]+),\s*"([^"]+)""#).unwrap();
    let param = Regex::new(r":([a-z_]+)").unwrap();
    let mut routes = BTreeSet::new();
    for component in std::fs::read_dir(workspace_root().join("components")).unwrap() {
        let source = component.unwrap().path().join("src/lib.rs");
        let text = std::fs::read_to_string(&source).unwrap();
        for capture in entry.captures_iter(&text) {
            let path = param.replace_all(&capture[2], "{$1}").into_owned();
            routes.insert((capture[1].to_lowercase(), path));
        }
    }
    routes
}

fn spec_routes(spec: &Value) -> BTreeSet<(String, String)> {
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "put", "post", "patch", "delete", "head"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect()
}

#[test]
fn every_component_route_is_in_the_spec_and_only_those() {
    let code = component_routes();
    assert!(code.len() >= 10, "found the route tables: {code:?}");
    let spec = spec_routes(&spec());
    let missing: Vec<_> = code.difference(&spec).collect();
    assert!(
        missing.is_empty(),
        "routes served but not in api/openapi.json: {missing:?}"
    );
    let stale: Vec<_> = spec.difference(&code).collect();
    assert!(
        stale.is_empty(),
        "routes in api/openapi.json that no component serves: {stale:?}"
    );
}

#[test]
fn every_spec_path_is_routed_by_spin_toml() {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(workspace_root().join("spin.toml")).unwrap()).unwrap();
    let routes: Vec<String> = manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["route"].as_str().map(str::to_owned))
        .collect();
    // A spin.toml segment `:x` stands for any one segment, as a spec
    // segment `{x}` does.
    let segment_matches = |route: &str, spec: &str| route.starts_with(':') || route == spec;
    for (_, path) in spec_routes(&spec()) {
        let spec_segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let routed = routes.iter().any(|route| {
            let (pattern, wildcard) = match route.strip_suffix("/...") {
                Some(prefix) => (prefix, true),
                None => (route.as_str(), false),
            };
            let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
            let length_ok = if wildcard {
                spec_segments.len() >= pattern.len()
            } else {
                spec_segments.len() == pattern.len()
            };
            length_ok
                && pattern
                    .iter()
                    .zip(&spec_segments)
                    .all(|(r, s)| segment_matches(r, s))
        });
        assert!(routed, "{path} is in the spec but no spin.toml route reaches it");
    }
}

#[test]
fn the_spec_is_openapi_3_1_with_error_schemas() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(spec["components"]["schemas"]["Error"].is_object());
    for (method, path) in spec_routes(&spec) {
        let operation = &spec["paths"][&path][&method];
        assert!(
            operation["operationId"].is_string(),
            "{method} {path} has an operationId"
        );
        assert!(
            operation["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn the_spec_is_served() {
    let app = spawn_app();
    let (status, served) = app
        .call(reqwest::Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(served, spec());
}

/// Every operation that needs a bearer token answers 401 to a request
/// without one, however malformed the rest (path, query, body): nothing is
/// validated, and nothing learnt, before authentication. The others do not.
#[tokio::test]
async fn operations_behind_a_token_are_401_without_one_before_any_validation() {
    let app = spawn_app();
    let spec = spec();
    let client = reqwest::Client::new();
    let parameter = Regex::new(r"\{[a-z_]+\}").unwrap();
    for (method, path) in spec_routes(&spec) {
        let secured = spec["paths"][&path][&method]["security"].is_array();
        let garbled = parameter.replace_all(&path, "not%20an%20id");
        let url = app.host.url(&format!("{garbled}?limit=-1&cursor=&scope=nope"));
        // Malformed, and well formed but opening no session.
        for token in ["not-a-token", &"A".repeat(43)] {
            let response = client
                .request(method.to_uppercase().parse().unwrap(), url.clone())
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body("{\"half\":")
                .send()
                .await
                .unwrap();
            let status = response.status();
            if secured {
                assert_eq!(status, 401, "{method} {path} with {token}");
            } else {
                assert_ne!(status, 401, "{method} {path} is public");
            }
        }
    }
}

/// Where the document spells out a rule the code also holds, they are the
/// same: the kinds of notification, and the webhook URL grammar the API
/// checks with these very patterns.
#[test]
fn the_spec_states_the_rules_the_code_holds() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    let kinds: Vec<&str> =
        schemas["NotificationPreferencesChange"]["properties"]["kinds"]["propertyNames"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kind| kind.as_str().unwrap())
            .collect();
    let known: Vec<&str> = spindrive_domain::notification::KINDS
        .iter()
        .map(|(kind, _)| *kind)
        .collect();
    assert_eq!(kinds, known);
    let url = &schemas["WebhookRegistration"]["properties"]["url"];
    assert_eq!(url["pattern"], spindrive_domain::webhook::PUBLIC_URL_PATTERN);
    assert_eq!(
        url["not"]["pattern"],
        spindrive_domain::webhook::LOOPBACK_NAME_PATTERN
    );
}
