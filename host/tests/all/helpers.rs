//! Writing fixture apps and starting the host on them.

use spindrive_testkit::{HostBuilder, component_wasm};
use std::path::PathBuf;

/// A temporary application directory with a `spin.toml`.
pub struct TestApp {
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// Writes `manifest`, replacing `{probe}`, `{legacy}`, `{kv_user}`,
    /// `{pg_probe}`, `{redis_probe}` and `{redis_subscriber}` with the
    /// fixture components' paths.
    pub fn new(manifest: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = manifest
            .replace("{probe}", &component_wasm("probe").display().to_string())
            .replace("{legacy}", &component_wasm("legacy-p2").display().to_string())
            .replace("{kv_user}", &component_wasm("kv-user").display().to_string())
            .replace("{pg_probe}", &component_wasm("pg-probe").display().to_string())
            .replace(
                "{redis_probe}",
                &component_wasm("redis-probe").display().to_string(),
            )
            .replace(
                "{redis_subscriber}",
                &component_wasm("redis-subscriber").display().to_string(),
            );
        std::fs::write(dir.path().join("spin.toml"), text).expect("write spin.toml");
        TestApp { dir }
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("spin.toml")
    }

    pub fn host(&self) -> HostBuilder {
        HostBuilder::new(env!("CARGO_BIN_EXE_spindrive-host"), self.manifest()).workdir(self.dir.path())
    }
}

/// One probe component on `/probe/...`, plus `extra` manifest text.
pub fn probe_app(extra_component_keys: &str, extra: &str) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "probe-app"
version = "1.2.3"
{extra}
[[trigger.http]]
route = "/probe/..."
component = "probe"
[component.probe]
source = "{{probe}}"
{extra_component_keys}
"#
    ))
}

/// Sends a request and reads its JSON body.
pub trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::RequestBuilder {
    async fn json_body(self) -> serde_json::Value {
        self.send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("a JSON body")
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// GETs `path` and reads the body as text.
pub async fn get_text(host: &spindrive_testkit::Host, path: &str) -> String {
    client()
        .get(host.url(path))
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("a text body")
}
