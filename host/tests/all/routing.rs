//! Spin's routing rules and request headers, against a table of cases.

use crate::helpers::{JsonBody, TestApp, client};
use serde_json::Value;

const ROUTES: &str = r#"
spin_manifest_version = 2
[application]
name = "routing"
[[trigger.http]]
route = "/"
component = "root"
[[trigger.http]]
route = "/exact"
component = "exact"
[[trigger.http]]
route = "/wild/..."
component = "wild"
[[trigger.http]]
route = "/wild/inner/..."
component = "inner"
[[trigger.http]]
route = "/users/:user_id"
component = "param"
[[trigger.http]]
route = "/api/files/:id/..."
component = "files"
[[trigger.http]]
route = "/api/files/:id/content"
component = "content"
[[trigger.http]]
route = "/eq/:x"
component = "eq-first"
[[trigger.http]]
route = "/eq/:y"
component = "eq-second"
[[trigger.http]]
route = "/dup"
component = "dup-first"
[[trigger.http]]
route = "/dup"
component = "dup-last"
[[trigger.http]]
route = { private = true }
component = "hidden"
[[trigger.http]]
route = "/static"
static_response = { status_code = 418, headers = { x-kind = "static" }, body = "teapot" }
"#;

fn manifest() -> String {
    let mut text = ROUTES.to_owned();
    for id in [
        "root",
        "exact",
        "wild",
        "inner",
        "param",
        "files",
        "content",
        "eq-first",
        "eq-second",
        "dup-first",
        "dup-last",
        "hidden",
    ] {
        text.push_str(&format!(
            "[component.{id}]\nsource = \"{{probe}}\"\nenvironment = {{ COMPONENT = \"{id}\" }}\n"
        ));
    }
    text
}

struct Case {
    path: &'static str,
    component: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        path: "/",
        component: Some("root"),
        headers: &[
            ("spin-matched-route", ""),
            ("spin-raw-component-route", "/"),
            ("spin-component-route", "/"),
            ("spin-path-info", ""),
            ("spin-base-path", "/"),
        ],
    },
    Case {
        path: "/exact",
        component: Some("exact"),
        headers: &[("spin-matched-route", "/exact"), ("spin-path-info", "")],
    },
    Case {
        path: "/exact/",
        component: Some("exact"),
        headers: &[("spin-path-info", "")],
    },
    Case {
        path: "/exact/more",
        component: None,
        headers: &[],
    },
    Case {
        path: "/wild",
        component: Some("wild"),
        headers: &[
            ("spin-path-info", ""),
            ("spin-matched-route", "/wild/..."),
            ("spin-component-route", "/wild"),
            ("spin-raw-component-route", "/wild/..."),
        ],
    },
    Case {
        path: "/wild/",
        component: Some("wild"),
        headers: &[("spin-path-info", "/")],
    },
    Case {
        path: "/wild/a/b/",
        component: Some("wild"),
        headers: &[("spin-path-info", "/a/b/")],
    },
    Case {
        path: "/wild/inner/x",
        component: Some("inner"),
        headers: &[("spin-path-info", "/x"), ("spin-component-route", "/wild/inner")],
    },
    Case {
        path: "/users/ada_99",
        component: Some("param"),
        headers: &[
            ("spin-path-match-user-id", "ada_99"),
            ("spin-matched-route", "/users/:user_id"),
        ],
    },
    Case {
        path: "/users/a%20b",
        component: Some("param"),
        headers: &[("spin-path-match-user-id", "a%20b")],
    },
    Case {
        path: "/users",
        component: None,
        headers: &[],
    },
    Case {
        path: "/api/files/abc/content",
        component: Some("content"),
        headers: &[("spin-path-match-id", "abc"), ("spin-path-info", "")],
    },
    Case {
        path: "/api/files/abc/permissions/7",
        component: Some("files"),
        headers: &[
            ("spin-path-match-id", "abc"),
            ("spin-path-info", "/permissions/7"),
            ("spin-component-route", "/api/files/:id"),
        ],
    },
    Case {
        path: "/eq/v",
        component: Some("eq-first"),
        headers: &[("spin-path-match-x", "v")],
    },
    Case {
        path: "/dup",
        component: Some("dup-last"),
        headers: &[],
    },
    Case {
        path: "/Exact",
        component: None,
        headers: &[],
    },
];

fn header<'a>(report: &'a Value, name: &str) -> Vec<&'a str> {
    report["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn routing_rules_and_headers_match_spin() {
    let app = TestApp::new(&manifest());
    let host = app.host().start().unwrap();
    let client = client();
    for case in CASES {
        let response = client.get(host.url(case.path)).send().await.unwrap();
        let Some(expected) = case.component else {
            assert_eq!(response.status(), 404, "{} should not match", case.path);
            assert_eq!(response.text().await.unwrap(), "", "404 has an empty body");
            continue;
        };
        assert_eq!(response.status(), 200, "{}", case.path);
        let report: Value = response.json().await.unwrap();
        assert_eq!(report["component"], expected, "{}", case.path);
        for (name, value) in case.headers {
            assert_eq!(header(&report, name), [*value], "{} header {name}", case.path);
        }
        let full_url = header(&report, "spin-full-url");
        assert_eq!(full_url, [host.url(case.path)], "{}", case.path);
        let client_addr = header(&report, "spin-client-addr");
        assert!(client_addr[0].starts_with("127.0.0.1:"), "{client_addr:?}");
    }
    assert!(
        host.stderr
            .text()
            .contains("dup-first: /dup (duplicate of dup-last)")
    );
}

#[tokio::test]
async fn query_strings_reach_the_full_url_and_client_spin_headers_are_kept() {
    let app = TestApp::new(&manifest());
    let host = app.host().start().unwrap();
    let report: Value = client()
        .get(host.url("/wild/q?x=1&y=%20"))
        .header("spin-path-info", "/from-client")
        .json_body()
        .await;
    assert_eq!(header(&report, "spin-full-url"), [host.url("/wild/q?x=1&y=%20")]);
    // Spin appends its headers after the client's; both values are seen.
    assert_eq!(header(&report, "spin-path-info"), ["/from-client", "/q"]);
    assert!(report["uri"].as_str().unwrap().ends_with("/wild/q?x=1&y=%20"));
}

#[tokio::test]
async fn static_responses_and_well_known_paths() {
    let app = TestApp::new(&manifest());
    let host = app.host().start().unwrap();
    let client = client();
    let response = client.get(host.url("/static")).send().await.unwrap();
    assert_eq!(response.status(), 418);
    assert_eq!(response.headers()["x-kind"], "static");
    assert_eq!(response.text().await.unwrap(), "teapot");

    let health = client
        .get(host.url("/.well-known/spin/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "OK");
    let info: Value = client.get(host.url("/.well-known/spin/info")).json_body().await;
    assert_eq!(info["name"], "routing");
    let unknown = client
        .get(host.url("/.well-known/spin/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn startup_lists_routes_in_priority_order_without_private_or_duplicates() {
    let app = TestApp::new(&manifest());
    let host = app.host().start().unwrap();
    let banner = host.stdout.text();
    let base = host.url("");
    let lines: Vec<&str> = banner.lines().collect();
    assert_eq!(lines[0], "");
    assert_eq!(lines[1], format!("Serving {base}"));
    assert_eq!(lines[2], "Available Routes:");
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| *l == needle)
            .unwrap_or_else(|| panic!("{needle:?} not in banner:\n{banner}"))
    };
    let exact = position(&format!("  exact: {base}/exact"));
    let wild = position(&format!("  wild: {base}/wild (wildcard)"));
    let inner = position(&format!("  inner: {base}/wild/inner (wildcard)"));
    position(&format!("  root: {base}"));
    assert!(inner < wild && exact < wild, "{banner}");
    assert!(!banner.contains("hidden"), "private routes are not listed");
    assert!(
        !banner.contains("dup-first"),
        "replaced duplicates are not listed"
    );
}
