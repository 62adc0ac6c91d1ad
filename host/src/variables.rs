//! Application variables and `spin:variables/variables@3.0.0`.
//!
//! A value is looked up on every `get`, first provider wins, as in Spin:
//! `--variable` flags, then `SPIN_VARIABLE_<NAME>` in the environment, then
//! `./.env`, then the manifest default. Every required variable must
//! resolve at startup. Secret values never reach a log line.

use crate::bindings::spin::variables::variables::{self, Error};
use crate::manifest::{Variable, validate_variable_name};
use crate::template::Template;
use anyhow::{Context, Result, bail};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{Accessor, HasData};

/// Resolves application variables from the configured providers.
#[derive(Debug, Default)]
pub struct Resolver {
    declared: IndexMap<String, Variable>,
    flags: HashMap<String, String>,
    dotenv: HashMap<String, String>,
}

impl Resolver {
    /// `flags` are the `--variable` arguments; `dotenv` the `.env` file to
    /// read if it exists.
    pub fn new(declared: IndexMap<String, Variable>, flags: &[String], dotenv: &Path) -> Result<Self> {
        let mut resolver = Resolver {
            declared,
            flags: HashMap::new(),
            dotenv: HashMap::new(),
        };
        for flag in flags {
            resolver.add_flag(flag)?;
        }
        if dotenv.exists() {
            for item in dotenvy::from_path_iter(dotenv)
                .with_context(|| format!("cannot read {}", dotenv.display()))?
            {
                let (key, value) = item.with_context(|| format!("invalid line in {}", dotenv.display()))?;
                resolver.dotenv.insert(key, value);
            }
        }
        Ok(resolver)
    }

    /// `name=value`, `name=@file` (the file's content) or `@file.json` /
    /// `@file.toml` (a table of names and values).
    fn add_flag(&mut self, flag: &str) -> Result<()> {
        if let Some(path) = flag.strip_prefix('@') {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--variable {flag}: cannot read {path}"))?;
            let table: HashMap<String, String> = if path.ends_with(".json") {
                serde_json::from_str(&text).with_context(|| format!("--variable {flag}: invalid JSON"))?
            } else if path.ends_with(".toml") {
                toml::from_str(&text).with_context(|| format!("--variable {flag}: invalid TOML"))?
            } else {
                bail!("--variable {flag}: a variables file must end in .json or .toml");
            };
            self.flags.extend(table);
            return Ok(());
        }
        let Some((name, value)) = flag.split_once('=') else {
            bail!("--variable {flag:?} must be NAME=VALUE, NAME=@FILE or @FILE");
        };
        let value = match value.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("--variable {name}: cannot read {path}"))?,
            None => value.to_owned(),
        };
        self.flags.insert(name.to_owned(), value);
        Ok(())
    }

    /// The value of application variable `name`, or `None` if no provider
    /// has one.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.flags.get(name) {
            return Some(value.clone());
        }
        let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
        if let Ok(value) = std::env::var(&env_name) {
            return Some(value);
        }
        if let Some(value) = self.dotenv.get(&env_name) {
            return Some(value.clone());
        }
        self.declared.get(name)?.default.clone()
    }

    /// Fails unless every required variable has a value.
    pub fn check_required(&self) -> Result<()> {
        let missing: Vec<String> = self
            .declared
            .iter()
            .filter(|(name, variable)| variable.required && self.get(name).is_none())
            .map(|(name, _)| format!("Key({name:?})"))
            .collect();
        if !missing.is_empty() {
            bail!(
                "provider error: no provider resolved required variable(s): [{}]",
                missing.join(", ")
            );
        }
        Ok(())
    }

    /// Whether `name` is declared `secret = true`.
    pub fn is_secret(&self, name: &str) -> bool {
        self.declared.get(name).is_some_and(|v| v.secret)
    }

    /// Expands a template of application variables.
    pub fn render(&self, template: &Template) -> Result<String> {
        template.render(|name| {
            self.get(name)
                .with_context(|| format!("no provider resolved variable {name:?}"))
        })
    }
}

/// The variables one component may read: its own keys, as templates.
#[derive(Debug)]
pub struct ComponentVariables {
    pub component_id: String,
    pub templates: IndexMap<String, Template>,
    pub resolver: Arc<Resolver>,
}

impl ComponentVariables {
    /// The guest-facing lookup, with Spin's error variants.
    pub fn get(&self, name: &str) -> Result<String, Error> {
        check_guest_name(name).map_err(Error::InvalidName)?;
        let template = self
            .templates
            .get(name)
            .ok_or_else(|| Error::Undefined(format!("no variable for {:?}.{name:?}", self.component_id)))?;
        self.resolver
            .render(template)
            .map_err(|err| Error::Provider(format!("{err:#}")))
    }
}

/// The name check Spin applies to a guest's `get`.
fn check_guest_name(name: &str) -> Result<(), String> {
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "{name:?}: invalid character {bad:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ));
    }
    validate_variable_name(name).map_err(|err| err.to_string())
}

/// `HasData` marker for the variables interface.
pub struct VariablesInterface;

impl HasData for VariablesInterface {
    type Data<'a> = &'a ComponentVariables;
}

impl variables::Host for &ComponentVariables {}

impl variables::HostWithStore for VariablesInterface {
    async fn get<T>(accessor: &Accessor<T, Self>, name: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(accessor.with(|mut view| view.get().get(&name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> IndexMap<String, Variable> {
        toml::from_str(
            r#"
            region = { default = "eu" }
            api_key = { required = true, secret = true }
            "#,
        )
        .unwrap()
    }

    fn component(resolver: Resolver) -> ComponentVariables {
        ComponentVariables {
            component_id: "comp".into(),
            templates: [(
                "url".to_owned(),
                Template::parse("https://{{ region }}.example").unwrap(),
            )]
            .into_iter()
            .collect(),
            resolver: Arc::new(resolver),
        }
    }

    #[test]
    fn missing_required_variable_is_named() {
        let resolver = Resolver::new(declared(), &[], Path::new("/nonexistent/.env")).unwrap();
        let err = resolver.check_required().unwrap_err().to_string();
        assert!(err.contains("Key(\"api_key\")"), "{err}");
    }

    #[test]
    fn flags_beat_defaults() {
        let resolver = Resolver::new(
            declared(),
            &["region=us".into(), "api_key=k".into()],
            Path::new("/none"),
        )
        .unwrap();
        assert_eq!(resolver.get("region").as_deref(), Some("us"));
        resolver.check_required().unwrap();
    }

    #[test]
    fn variable_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.json");
        std::fs::write(&file, r#"{"region": "ap", "api_key": "k"}"#).unwrap();
        let value_file = dir.path().join("key.txt");
        std::fs::write(&value_file, "from-file").unwrap();
        let flags = [
            format!("@{}", file.display()),
            format!("api_key=@{}", value_file.display()),
        ];
        let resolver = Resolver::new(declared(), &flags, Path::new("/none")).unwrap();
        assert_eq!(resolver.get("region").as_deref(), Some("ap"));
        assert_eq!(resolver.get("api_key").as_deref(), Some("from-file"));
    }

    #[test]
    fn dotenv_is_below_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(&dotenv, "SPIN_VARIABLE_REGION=dotenv\n").unwrap();
        let resolver = Resolver::new(declared(), &[], &dotenv).unwrap();
        assert_eq!(resolver.get("region").as_deref(), Some("dotenv"));
    }

    #[test]
    fn guest_reads_its_templates() {
        let resolver = Resolver::new(declared(), &["api_key=k".into()], Path::new("/none")).unwrap();
        let vars = component(resolver);
        assert_eq!(vars.get("url").unwrap(), "https://eu.example");
    }

    #[test]
    fn guest_errors_match_spin() {
        let vars = component(Resolver::new(declared(), &[], Path::new("/none")).unwrap());
        assert!(
            matches!(vars.get("Foo"), Err(Error::InvalidName(msg)) if msg.contains("invalid character 'F'"))
        );
        assert!(matches!(vars.get("a__b"), Err(Error::InvalidName(_))));
        assert!(
            matches!(vars.get("region"), Err(Error::Undefined(msg)) if msg == r#"no variable for "comp"."region""#)
        );
    }
}
