//! Spin manifest v2 (`spin.toml`): parsed strictly, as Spin does.
//!
//! Unknown keys are refused at parse time with the TOML position; keys Spin
//! knows but this host does not implement (key-value stores, SQLite, AI
//! models, component dependencies, remote sources, the Wagi executor) are
//! refused at load with a message naming the key and the component, so no
//! route, component or capability is ever silently ignored.

use crate::template::Template;
use anyhow::{Context, Result, bail, ensure};
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A validated application manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The directory holding `spin.toml`; relative paths start here.
    pub dir: PathBuf,
    pub name: String,
    pub version: Option<String>,
    pub variables: IndexMap<String, Variable>,
    pub http_triggers: Vec<HttpTrigger>,
    pub redis_triggers: Vec<RedisTrigger>,
    /// `[application.trigger.redis] address`.
    pub redis_address: Option<Template>,
    pub components: IndexMap<String, Component>,
}

/// An application variable.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    /// Whether the value must be kept out of logs.
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Clone, Debug)]
pub struct HttpTrigger {
    /// The route, or `None` for a private endpoint.
    pub route: Option<String>,
    pub handler: HttpHandler,
}

#[derive(Clone, Debug)]
pub enum HttpHandler {
    Component(String),
    Static(StaticResponse),
}

/// `static_response = { status_code, headers, body }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticResponse {
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// One `[[trigger.redis]]` entry.
#[derive(Clone, Debug)]
pub struct RedisTrigger {
    pub component: String,
    /// `{{ variable }}` is allowed, as in Spin.
    pub channel: Template,
    pub address: Option<Template>,
}

/// A `[component.<id>]` table, validated.
#[derive(Clone, Debug)]
pub struct Component {
    pub id: String,
    pub description: Option<String>,
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    pub variables: IndexMap<String, Template>,
    pub environment: IndexMap<String, String>,
    pub files: Vec<FileMount>,
    pub exclude_files: Vec<String>,
    pub allowed_outbound_hosts: Vec<Template>,
}

/// A `files` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    /// A glob or path, mounted at its app-relative path.
    Pattern(String),
    /// A file or directory mapped to a guest path.
    Placement { source: String, destination: String },
}

mod raw {
    //! The manifest as written; `deny_unknown_fields` everywhere.
    use super::{FileMount, Variable};
    use indexmap::IndexMap;
    use serde::Deserialize;
    use serde::de::IgnoredAny;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Manifest {
        pub spin_manifest_version: i64,
        pub application: Application,
        #[serde(default)]
        pub variables: IndexMap<String, Variable>,
        pub trigger: IndexMap<String, Vec<toml::Table>>,
        #[serde(default)]
        pub component: IndexMap<String, Component>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Application {
        pub name: String,
        #[serde(default)]
        pub version: Option<String>,
        #[serde(default, rename = "description")]
        pub _description: Option<IgnoredAny>,
        #[serde(default, rename = "authors")]
        pub _authors: Option<IgnoredAny>,
        #[serde(default, rename = "targets")]
        pub _targets: Option<IgnoredAny>,
        #[serde(default)]
        pub trigger: AppTriggers,
        #[serde(default, rename = "tool")]
        pub _tool: Option<IgnoredAny>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct AppTriggers {
        #[serde(default)]
        pub http: Option<AppHttp>,
        #[serde(default)]
        pub redis: Option<AppRedis>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AppHttp {
        #[serde(default)]
        pub base: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AppRedis {
        #[serde(default)]
        pub address: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct HttpTrigger {
        pub route: Route,
        #[serde(default)]
        pub component: Option<toml::Value>,
        #[serde(default)]
        pub static_response: Option<super::StaticResponse>,
        #[serde(default)]
        pub executor: Option<Executor>,
        #[serde(default, rename = "id")]
        pub _id: Option<IgnoredAny>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Route {
        Path(String),
        Private(PrivateRoute),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PrivateRoute {
        pub private: bool,
    }

    /// Other keys belong to the executor type (Wagi's `argv`, ...).
    #[derive(Deserialize)]
    pub struct Executor {
        #[serde(rename = "type")]
        pub kind: String,
        #[serde(flatten)]
        pub _rest: toml::Table,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RedisTrigger {
        pub component: toml::Value,
        pub channel: String,
        #[serde(default)]
        pub address: Option<String>,
        #[serde(default, rename = "id")]
        pub _id: Option<IgnoredAny>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Component {
        pub source: Source,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub variables: IndexMap<String, String>,
        #[serde(default)]
        pub environment: IndexMap<String, String>,
        #[serde(default)]
        pub files: Vec<FileMount>,
        #[serde(default)]
        pub exclude_files: Vec<String>,
        #[serde(default)]
        pub allowed_outbound_hosts: Vec<String>,
        #[serde(default)]
        pub allowed_http_hosts: Vec<String>,
        #[serde(default)]
        pub key_value_stores: Vec<String>,
        #[serde(default)]
        pub sqlite_databases: Vec<String>,
        #[serde(default)]
        pub ai_models: Vec<String>,
        #[serde(default, rename = "targets")]
        pub _targets: Option<IgnoredAny>,
        #[serde(default, rename = "build")]
        pub _build: Option<Build>,
        #[serde(default, rename = "tool")]
        pub _tool: Option<IgnoredAny>,
        #[serde(default)]
        pub dependencies: Option<toml::Table>,
        #[serde(default)]
        pub dependencies_inherit_configuration: Option<bool>,
        #[serde(default)]
        pub profile: Option<toml::Table>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Source {
        Path(String),
        Remote {
            url: String,
            #[serde(rename = "digest")]
            _digest: String,
        },
        Registry {
            #[serde(default, rename = "registry")]
            _registry: Option<String>,
            package: String,
            #[serde(rename = "version")]
            _version: String,
        },
    }

    /// `[component.<id>.build]`: checked for shape, used by `spin build`
    /// (and the Makefile), not by the runtime.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Build {
        #[serde(rename = "command")]
        pub _command: Command,
        #[serde(default, rename = "workdir")]
        pub _workdir: Option<String>,
        #[serde(default, rename = "watch")]
        pub _watch: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Command {
        One(#[expect(dead_code, reason = "shape check only")] String),
        Many(#[expect(dead_code, reason = "shape check only")] Vec<String>),
    }
}

impl Manifest {
    /// Reads and validates `spin.toml` at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let dir = path
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", path.display()))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Self::parse(&text, &dir)
    }

    /// Parses manifest text; relative paths are resolved against `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Self> {
        let raw: raw::Manifest = toml::from_str(text).map_err(|err| {
            let component = err.span().and_then(|span| enclosing_component(text, span.start));
            let error = anyhow::Error::msg(err.to_string());
            match component {
                Some(id) => error.context(format!("invalid manifest (in [component.{id}])")),
                None => error.context("invalid manifest"),
            }
        })?;
        ensure!(
            raw.spin_manifest_version == 2,
            "spin_manifest_version {} is not supported; this host reads version 2",
            raw.spin_manifest_version
        );

        for (name, variable) in &raw.variables {
            validate_variable_name(name)?;
            ensure!(
                variable.required != variable.default.is_some(),
                "variable {name:?} must be `required` OR have a `default`"
            );
        }

        let app = &raw.application;
        ensure!(!app.name.is_empty(), "[application] name is empty");
        if let Some(base) = app.trigger.http.as_ref().and_then(|h| h.base.as_deref()) {
            ensure!(
                base == "/",
                "[application.trigger.http] base = {base:?} is not supported (the `base` setting was removed in Spin 2; only \"/\" is accepted)"
            );
            tracing::warn!("[application.trigger.http] base is deprecated and has no effect");
        }
        let redis_address = app
            .trigger
            .redis
            .as_ref()
            .and_then(|r| r.address.as_deref())
            .map(Template::parse)
            .transpose()
            .context("[application.trigger.redis] address")?;

        let components = raw
            .component
            .iter()
            .map(|(id, component)| {
                let validated = validate_component(id, component, dir, &raw.variables)
                    .with_context(|| format!("invalid component {id:?}"))?;
                Ok((id.clone(), validated))
            })
            .collect::<Result<IndexMap<_, _>>>()?;

        let mut http_triggers = Vec::new();
        let mut redis_triggers = Vec::new();
        for (kind, entries) in raw.trigger {
            for (index, entry) in entries.into_iter().enumerate() {
                let place = format!("[[trigger.{kind}]] #{}", index + 1);
                match kind.as_str() {
                    "http" => http_triggers.push(http_trigger(entry, &components).context(place)?),
                    "redis" => redis_triggers.push(redis_trigger(entry, &components).context(place)?),
                    other => bail!(
                        "trigger type {other:?} is not supported by this host (it runs `http` and `redis` triggers)"
                    ),
                }
            }
        }

        Ok(Manifest {
            dir: dir.to_path_buf(),
            name: raw.application.name,
            version: raw.application.version,
            variables: raw.variables,
            http_triggers,
            redis_triggers,
            redis_address,
            components,
        })
    }
}

/// The `[component.<id>]` table that contains byte offset `at`, if any.
fn enclosing_component(text: &str, at: usize) -> Option<String> {
    text[..at.min(text.len())]
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
        .and_then(|header| {
            let inner = header.trim_start_matches('[').trim_end_matches(']');
            let id = inner.strip_prefix("component.")?;
            Some(id.split('.').next()?.trim_matches('"').to_owned())
        })
}

fn http_trigger(entry: toml::Table, components: &IndexMap<String, Component>) -> Result<HttpTrigger> {
    let raw: raw::HttpTrigger = entry.try_into()?;
    if let Some(executor) = &raw.executor {
        ensure!(
            executor.kind == "http",
            "executor type {:?} is not supported by this host (only \"http\")",
            executor.kind
        );
    }
    let route = match raw.route {
        raw::Route::Path(path) => Some(path),
        raw::Route::Private(private) => {
            ensure!(
                private.private,
                "route must be a string pattern or '{{ private = true }}', not '{{ private = false }}'"
            );
            None
        }
    };
    let handler = match (raw.component, raw.static_response) {
        (Some(component), None) => HttpHandler::Component(component_reference(component, components)?),
        (None, Some(response)) => HttpHandler::Static(response),
        (None, None) => bail!("a trigger needs `component` or `static_response`"),
        (Some(_), Some(_)) => bail!("a trigger takes `component` or `static_response`, not both"),
    };
    Ok(HttpTrigger { route, handler })
}

fn redis_trigger(entry: toml::Table, components: &IndexMap<String, Component>) -> Result<RedisTrigger> {
    let raw: raw::RedisTrigger = entry.try_into()?;
    Ok(RedisTrigger {
        component: component_reference(raw.component, components)?,
        channel: Template::parse(&raw.channel).context("channel")?,
        address: raw.address.as_deref().map(Template::parse).transpose()?,
    })
}

fn component_reference(value: toml::Value, components: &IndexMap<String, Component>) -> Result<String> {
    let toml::Value::String(id) = value else {
        bail!("inline component tables are not supported by this host; declare [component.<id>] and name it");
    };
    ensure!(
        components.contains_key(&id),
        "trigger names component {id:?}, which is not declared"
    );
    Ok(id)
}

fn validate_component(
    id: &str,
    raw: &raw::Component,
    dir: &Path,
    app_variables: &IndexMap<String, Variable>,
) -> Result<Component> {
    validate_component_id(id)?;
    let unsupported = [
        ("key_value_stores", !raw.key_value_stores.is_empty()),
        ("sqlite_databases", !raw.sqlite_databases.is_empty()),
        ("ai_models", !raw.ai_models.is_empty()),
        (
            "dependencies",
            raw.dependencies.as_ref().is_some_and(|d| !d.is_empty()),
        ),
        (
            "dependencies_inherit_configuration",
            raw.dependencies_inherit_configuration == Some(true),
        ),
        ("profile", raw.profile.is_some()),
    ];
    if let Some((key, _)) = unsupported.iter().find(|(_, used)| *used) {
        bail!(
            "`{key}` is not supported by this host: it provides HTTP, Redis triggers, variables, Postgres and outbound HTTP"
        );
    }
    ensure!(
        raw.allowed_http_hosts.is_empty(),
        "`allowed_http_hosts` is deprecated and not supported; use `allowed_outbound_hosts`"
    );
    let source = match &raw.source {
        raw::Source::Path(path) => dir.join(path),
        raw::Source::Remote { url, .. } => {
            bail!("`source` URL {url:?} is not supported by this host; use a local path")
        }
        raw::Source::Registry { package, .. } => {
            bail!("`source` registry package {package:?} is not supported by this host; use a local path")
        }
    };

    let mut variables = IndexMap::new();
    for (key, value) in &raw.variables {
        validate_variable_name(key).with_context(|| format!("component variable {key:?}"))?;
        let template = Template::parse(value).with_context(|| format!("component variable {key:?}"))?;
        for name in template.variables() {
            ensure!(
                app_variables.contains_key(name),
                "component variable {key:?} refers to {name:?}, which is not an application variable"
            );
        }
        variables.insert(key.clone(), template);
    }

    let allowed_outbound_hosts = raw
        .allowed_outbound_hosts
        .iter()
        .map(|entry| {
            Template::parse(entry).with_context(|| format!("allowed_outbound_hosts entry {entry:?}"))
        })
        .collect::<Result<_>>()?;

    Ok(Component {
        id: id.to_owned(),
        description: raw.description.clone(),
        source,
        variables,
        environment: raw.environment.clone(),
        files: raw.files.clone(),
        exclude_files: raw.exclude_files.clone(),
        allowed_outbound_hosts,
    })
}

/// Component ids are kebab-case; each word starts with a letter and is all
/// lowercase or all uppercase alphanumerics.
fn validate_component_id(id: &str) -> Result<()> {
    let valid_word = |word: &str| {
        word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && word.chars().all(|c| c.is_ascii_alphanumeric())
            && (word.chars().all(|c| !c.is_ascii_uppercase())
                || word.chars().all(|c| !c.is_ascii_lowercase()))
    };
    ensure!(
        !id.is_empty() && id.split('-').all(valid_word),
        "component id {id:?} is not kebab-case (words of letters and digits, each starting with a letter, joined by '-')"
    );
    Ok(())
}

/// Variable names are lower_snake_case; each word is `[a-z][a-z0-9]*`.
pub fn validate_variable_name(name: &str) -> Result<()> {
    let valid_word = |word: &str| {
        word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    ensure!(
        !name.is_empty() && name.split('_').all(valid_word),
        "variable name {name:?} is not lower_snake_case (words of a-z and 0-9, each starting with a letter)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
db_host = { default = "127.0.0.1" }
api_key = { required = true, secret = true }
[[trigger.http]]
route = "/hello/..."
component = "hello"
[[trigger.http]]
route = { private = true }
component = "hidden"
[[trigger.http]]
route = "/static"
static_response = { status_code = 201, body = "hi" }
[component.hello]
source = "hello.wasm"
allowed_outbound_hosts = ["postgres://{{ db_host }}:5432"]
variables = { url = "http://{{ db_host }}/x" }
environment = { MODE = "test" }
files = ["assets/*", { source = "data", destination = "/data" }]
[component.hello.build]
command = "cargo build --release"
[component.hidden]
source = "hidden.wasm"
"#;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, Path::new("/app"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn a_full_manifest_parses() {
        let m = parse(MINIMAL).unwrap();
        assert_eq!(m.name, "app");
        assert_eq!(m.http_triggers.len(), 3);
        assert!(m.http_triggers[1].route.is_none());
        let hello = &m.components["hello"];
        assert_eq!(hello.source, Path::new("/app/hello.wasm"));
        assert_eq!(hello.environment["MODE"], "test");
        assert_eq!(hello.files.len(), 2);
        assert!(m.variables["api_key"].secret);
    }

    #[test]
    fn unknown_component_key_is_refused_with_position_and_component() {
        let text = MINIMAL.replace("[component.hidden]\n", "[component.hidden]\ncolour = \"red\"\n");
        let err = error(&text);
        assert!(err.contains("unknown field `colour`"), "{err}");
        assert!(err.contains("[component.hidden]"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn unknown_top_level_key_is_refused() {
        let err = error(&format!("{MINIMAL}\nextra = 1\n"));
        assert!(err.contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn unknown_trigger_key_is_refused() {
        let text = MINIMAL.replace("route = \"/static\"", "route = \"/static\"\nweight = 3");
        let err = error(&text);
        assert!(err.contains("unknown field `weight`"), "{err}");
        assert!(err.contains("[[trigger.http]] #3"), "{err}");
    }

    #[test]
    fn unsupported_capability_is_refused_naming_key_and_component() {
        let text = MINIMAL.replace(
            "[component.hidden]\n",
            "[component.hidden]\nkey_value_stores = [\"default\"]\n",
        );
        let err = error(&text);
        assert!(err.contains("key_value_stores"), "{err}");
        assert!(err.contains("\"hidden\""), "{err}");
    }

    #[test]
    fn unsupported_trigger_type_is_refused() {
        let err = error(&format!("{MINIMAL}\n[[trigger.mqtt]]\ncomponent = \"hello\"\n"));
        assert!(err.contains("trigger type \"mqtt\""), "{err}");
    }

    #[test]
    fn trigger_naming_an_undeclared_component_is_refused() {
        let err = error(&MINIMAL.replace("component = \"hidden\"", "component = \"ghost\""));
        assert!(err.contains("\"ghost\""), "{err}");
    }

    #[test]
    fn variable_needs_exactly_one_of_required_or_default() {
        let err = error(&MINIMAL.replace("api_key = { required = true, secret = true }", "api_key = {}"));
        assert!(err.contains("must be `required` OR have a `default`"), "{err}");
        let err = error(&MINIMAL.replace(
            "required = true, secret",
            "required = true, default = \"x\", secret",
        ));
        assert!(err.contains("must be `required` OR have a `default`"), "{err}");
    }

    #[test]
    fn variable_names_are_lower_snake_case() {
        for bad in ["Api", "key_2", "_x", "x__y", "2x"] {
            assert!(validate_variable_name(bad).is_err(), "{bad}");
        }
        for good in ["x", "db_host", "a1_b2"] {
            assert!(validate_variable_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn component_ids_are_kebab_case() {
        for bad in ["Hello", "hello_world", "-x", "x--y", "1x", "heLLO"] {
            assert!(validate_component_id(bad).is_err(), "{bad}");
        }
        for good in ["hello", "file-picker", "ABC-def", "v2-api"] {
            assert!(validate_component_id(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn component_templates_must_name_application_variables() {
        let err = error(&MINIMAL.replace("{{ db_host }}/x", "{{ nope }}/x"));
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn private_false_is_refused() {
        let err = error(&MINIMAL.replace("private = true", "private = false"));
        assert!(err.contains("private = false"), "{err}");
    }

    #[test]
    fn non_root_base_is_refused() {
        let err = error(&MINIMAL.replace(
            "name = \"app\"",
            "name = \"app\"\n[application.trigger.http]\nbase = \"/x\"",
        ));
        assert!(err.contains("base"), "{err}");
    }

    #[test]
    fn remote_sources_are_refused() {
        let err = error(&MINIMAL.replace(
            "source = \"hidden.wasm\"",
            "source = { url = \"https://x/y.wasm\", digest = \"sha256:00\" }",
        ));
        assert!(err.contains("not supported by this host"), "{err}");
    }

    #[test]
    fn manifest_version_must_be_2() {
        let err = error(&MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1"));
        assert!(err.contains("version 2"), "{err}");
    }

    #[test]
    fn wagi_executor_is_refused() {
        let err = error(&MINIMAL.replace(
            "component = \"hello\"",
            "component = \"hello\"\nexecutor = { type = \"wagi\" }",
        ));
        assert!(err.contains("wagi"), "{err}");
    }
}
