//! `{{ name }}` templates, as used in component variables and
//! `allowed_outbound_hosts`: literal text with application-variable
//! references.

use anyhow::{Result, bail};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unterminated `{{{{` in template {text:?}");
            };
            let name = after[..end].trim();
            if name.is_empty() {
                bail!("empty `{{{{ }}}}` in template {text:?}");
            }
            parts.push(Part::Variable(name.to_owned()));
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            bail!("unmatched `}}}}` in template {text:?}");
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The variables the template refers to.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Whether the template is plain text.
    pub fn is_literal(&self) -> bool {
        self.variables().next().is_none()
    }

    /// Expands the template, looking each variable up with `lookup`.
    pub fn render<E>(&self, mut lookup: impl FnMut(&str) -> Result<String, E>) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(&lookup(name)?),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> String {
        Template::parse(text)
            .unwrap()
            .render(|name| Ok::<_, ()>(name.to_uppercase()))
            .unwrap()
    }

    #[test]
    fn literal_text_renders_unchanged() {
        assert_eq!(render("plain"), "plain");
        assert!(Template::parse("plain").unwrap().is_literal());
    }

    #[test]
    fn variables_are_substituted_with_or_without_spaces() {
        assert_eq!(
            render("postgres://{{ db_host }}:{{db_port}}"),
            "postgres://DB_HOST:DB_PORT"
        );
        let template = Template::parse("a{{ x }}b{{ y }}").unwrap();
        assert_eq!(template.variables().collect::<Vec<_>>(), ["x", "y"]);
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(Template::parse("{{ open").is_err());
        assert!(Template::parse("{{ }}").is_err());
        assert!(Template::parse("close }}").is_err());
    }
}
