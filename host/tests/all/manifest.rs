//! What the host refuses at load: unknown manifest keys and imports it
//! does not provide, each named.

use crate::helpers::{TestApp, probe_app};

#[test]
fn an_unknown_manifest_key_is_refused_naming_key_and_component() {
    let app = probe_app("colour = \"blue\"", "");
    let output = app.host().expect_startup_failure().unwrap();
    assert!(output.contains("unknown field `colour`"), "{output}");
    assert!(output.contains("[component.probe]"), "{output}");
}

#[test]
fn an_unsupported_capability_is_refused_naming_it() {
    let app = probe_app("key_value_stores = [\"default\"]", "");
    let output = app.host().expect_startup_failure().unwrap();
    assert!(
        output.contains("`key_value_stores` is not supported by this host"),
        "{output}"
    );
    assert!(output.contains("\"probe\""), "{output}");
}

#[test]
fn a_component_importing_an_unprovided_interface_fails_at_load() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "kv"
[[trigger.http]]
route = "/..."
component = "kv"
[component.kv]
source = "{kv_user}"
"#,
    );
    let output = app.host().expect_startup_failure().unwrap();
    assert!(
        output.contains("component \"kv\" imports an interface this host does not provide"),
        "{output}"
    );
    assert!(output.contains("spin:key-value/key-value@3.0.0"), "{output}");
}

#[test]
fn a_missing_source_file_is_named() {
    let app = probe_app("", "");
    let text = std::fs::read_to_string(app.manifest()).unwrap();
    let text = text.replace("probe.wasm", "absent.wasm");
    std::fs::write(app.manifest(), text).unwrap();
    let output = app.host().expect_startup_failure().unwrap();
    assert!(output.contains("absent.wasm"), "{output}");
}
