//! `allowed_outbound_hosts`: Spin's allow-list of outbound destinations,
//! shared by outbound HTTP, Postgres and Redis.
//!
//! An entry is `scheme://host[:port]`. The scheme is `*` or one word; the
//! host is `*`, `*.domain` (any depth of subdomain, not the domain itself), a
//! literal (compared without DNS: `localhost` is not `127.0.0.1`), an IP or
//! CIDR block, or `self`; the port is a number, `*` or `a..b` (end excluded),
//! and defaults to the scheme's well-known port.

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use std::net::IpAddr;
use std::ops::Range;
use url::Host;

/// The outbound destinations one component may reach.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// Includes the leading dot: `.example.com`.
    AnySubdomain(String),
    ToSelf,
    Network(IpNet),
    Literal(Host),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    Range(Range<u16>),
}

/// An outbound destination being checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port.or_else(|| well_known_port(&self.scheme)) {
            Some(port) => write!(f, "{}://{}:{port}", self.scheme, self.host),
            None => write!(f, "{}://{}", self.scheme, self.host),
        }
    }
}

impl Destination {
    pub fn new(scheme: &str, host: &str, port: Option<u16>) -> Self {
        Destination {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        }
    }

    /// The destination of an outbound URL.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
        let host = parsed
            .host_str()
            .with_context(|| format!("{url:?} has no host"))?;
        Ok(Destination::new(parsed.scheme(), host, parsed.port()))
    }
}

/// The well-known port of a scheme, used when an entry or a URL gives none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHosts {
    /// Parses the (already template-expanded) entries of one component.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        if entries.iter().any(|e| e.as_ref() == "insecure:allow-all") {
            bail!(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic"
            );
        }
        let entries = entries
            .iter()
            .map(|entry| AllowedHost::parse(entry.as_ref()))
            .collect::<Result<_>>()?;
        Ok(AllowedHosts { entries })
    }

    /// Whether `destination` is allowed.
    pub fn allows(&self, destination: &Destination) -> bool {
        self.entries.iter().any(|entry| entry.allows(destination))
    }
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self> {
        let trimmed = entry.trim();
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            bail!(
                "{entry:?} does not contain a scheme (e.g., 'http://' or '*://'); hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each"
            );
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_host_port(rest);
        if port.contains('/') || (port.is_empty() && host.contains('/') && host.parse::<IpNet>().is_err()) {
            bail!("{entry:?} has a path but is not allowed to");
        }
        let scheme = parse_scheme(scheme).with_context(|| format!("invalid scheme in {entry:?}"))?;
        let port =
            parse_port(port, scheme.as_deref()).with_context(|| format!("invalid port in {entry:?}"))?;
        let host = parse_host(host).with_context(|| format!("invalid host in {entry:?}"))?;
        Ok(AllowedHost { scheme, host, port })
    }

    fn allows(&self, destination: &Destination) -> bool {
        let scheme_ok = self
            .scheme
            .as_ref()
            .is_none_or(|scheme| *scheme == destination.scheme);
        scheme_ok && self.host.allows(&destination.host) && self.port_allows(destination)
    }

    fn port_allows(&self, destination: &Destination) -> bool {
        let Some(port) = destination.port.or_else(|| well_known_port(&destination.scheme)) else {
            return matches!(self.port, PortPattern::Any);
        };
        match &self.port {
            PortPattern::Any => true,
            PortPattern::Port(allowed) => *allowed == port,
            PortPattern::Range(range) => range.contains(&port),
        }
    }
}

/// Splits `host[:port]`, keeping bracketed IPv6 literals whole.
fn split_host_port(authority: &str) -> (&str, &str) {
    if authority.starts_with('[')
        && let Some(end) = authority.find(']')
    {
        let port = authority[end + 1..].strip_prefix(':').unwrap_or("");
        return (&authority[..=end], port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port),
        _ => (authority, ""),
    }
}

fn parse_scheme(scheme: &str) -> Result<Option<String>> {
    if scheme == "*" {
        return Ok(None);
    }
    if scheme.starts_with('{') {
        bail!("scheme lists are not supported");
    }
    if scheme.is_empty() || !scheme.chars().all(char::is_alphabetic) {
        bail!("only alphabetic characters are allowed in a scheme");
    }
    Ok(Some(scheme.to_owned()))
}

fn parse_port(port: &str, scheme: Option<&str>) -> Result<PortPattern> {
    if port.is_empty() {
        let default = scheme
            .and_then(well_known_port)
            .with_context(|| format!("no port was given and the scheme {scheme:?} has no well-known port"))?;
        return Ok(PortPattern::Port(default));
    }
    if port == "*" {
        return Ok(PortPattern::Any);
    }
    if port.starts_with('{') {
        bail!("port lists are not supported");
    }
    if let Some((start, end)) = port.split_once("..") {
        let start = start
            .parse()
            .with_context(|| format!("port range {port:?} contains a non-number"))?;
        let end = end
            .parse()
            .with_context(|| format!("port range {port:?} contains a non-number"))?;
        return Ok(PortPattern::Range(start..end));
    }
    Ok(PortPattern::Port(
        port.parse()
            .with_context(|| format!("port {port:?} is not a number"))?,
    ))
}

fn parse_host(host: &str) -> Result<HostPattern> {
    match host {
        "*" => return Ok(HostPattern::Any),
        "self" | "self.alt" => return Ok(HostPattern::ToSelf),
        _ => {}
    }
    if host.starts_with('{') {
        bail!("host lists are not supported");
    }
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(net) = unbracketed.parse::<IpNet>() {
        return Ok(HostPattern::Network(net.trunc()));
    }
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(HostPattern::Network(IpNet::from(ip)));
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            bail!("wildcards are allowed only as prefixes");
        }
        return Ok(HostPattern::AnySubdomain(format!(".{domain}")));
    }
    if host.contains('*') {
        bail!("wildcards are allowed only as subdomains");
    }
    Ok(HostPattern::Literal(Host::parse(host)?))
}

impl HostPattern {
    fn allows(&self, host: &str) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        match (self, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (HostPattern::Literal(literal), host) => *literal == host,
            (HostPattern::Network(net), Host::Ipv4(ip)) => net.contains(&IpAddr::V4(ip)),
            (HostPattern::Network(net), Host::Ipv6(ip)) => net.contains(&IpAddr::V6(ip)),
            _ => false,
        }
    }
}

/// Reports a denied destination the way Spin does: an error log line and a
/// hint saying which manifest entry would allow it.
pub fn report_denied(component_id: &str, destination: &Destination) {
    tracing::error!(
        component = component_id,
        "Outbound network destination not allowed: {destination}"
    );
    eprintln!(
        "Warning: A component tried to make an outbound network connection to disallowed destination '{destination}'.\n\
         To allow this request, add 'allowed_outbound_hosts = [\"{destination}\"]' to the manifest component section."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str) -> bool {
        AllowedHosts::parse(entries)
            .unwrap()
            .allows(&Destination::from_url(url).unwrap())
    }

    #[test]
    fn scheme_is_required() {
        let err = AllowedHosts::parse(&["example.com"]).unwrap_err();
        assert!(err.to_string().contains("does not contain a scheme"), "{err}");
    }

    #[test]
    fn insecure_allow_all_is_refused() {
        assert!(AllowedHosts::parse(&["insecure:allow-all"]).is_err());
    }

    #[test]
    fn everything_allowed_by_full_wildcard() {
        assert!(allows(&["*://*:*"], "https://anything.example:8443/x"));
        assert!(allows(&["*://*:*"], "postgres://10.1.2.3:6432"));
    }

    #[test]
    fn default_ports_apply_to_entries_and_urls() {
        assert!(allows(&["https://example.com"], "https://example.com/path"));
        assert!(!allows(&["https://example.com"], "https://example.com:8443/"));
        assert!(allows(&["postgres://db"], "postgres://db:5432"));
        assert!(allows(&["http://h:80"], "http://h/"));
    }

    #[test]
    fn schemes_without_well_known_ports_need_one() {
        assert!(AllowedHosts::parse(&["foo://h"]).is_err());
        assert!(AllowedHosts::parse(&["foo://h:1"]).is_ok());
    }

    #[test]
    fn scheme_must_match() {
        assert!(!allows(&["https://example.com:80"], "http://example.com/"));
        assert!(allows(&["*://example.com:80"], "http://example.com/"));
        assert!(AllowedHosts::parse(&["{http,https}://x"]).is_err());
        assert!(AllowedHosts::parse(&["ht1p://x:1"]).is_err());
    }

    #[test]
    fn subdomain_wildcard_matches_any_depth_but_not_the_domain() {
        assert!(allows(&["https://*.example.com"], "https://a.example.com/"));
        assert!(allows(&["https://*.example.com"], "https://a.b.example.com/"));
        assert!(!allows(&["https://*.example.com"], "https://example.com/"));
        assert!(!allows(&["https://*.example.com"], "https://badexample.com/"));
        assert!(AllowedHosts::parse(&["https://a.*.com"]).is_err());
    }

    #[test]
    fn literal_hosts_are_compared_without_dns() {
        assert!(!allows(&["http://localhost:8080"], "http://127.0.0.1:8080/"));
        assert!(allows(&["http://127.0.0.1:8080"], "http://127.0.0.1:8080/"));
    }

    #[test]
    fn cidr_blocks_contain_addresses() {
        assert!(allows(&["http://10.0.0.0/8:80"], "http://10.9.8.7/"));
        assert!(!allows(&["http://10.0.0.0/8:80"], "http://11.0.0.1/"));
        assert!(!allows(&["http://10.0.0.0/8:80"], "http://ten.example/"));
    }

    #[test]
    fn port_ranges_exclude_their_end() {
        assert!(allows(&["http://h:8000..8002"], "http://h:8001/"));
        assert!(!allows(&["http://h:8000..8002"], "http://h:8002/"));
        assert!(allows(&["http://h:*"], "http://h:1234/"));
    }

    #[test]
    fn paths_are_refused() {
        assert!(AllowedHosts::parse(&["http://h:80/path"]).is_err());
        assert!(AllowedHosts::parse(&["http://h/"]).is_ok());
    }

    #[test]
    fn self_does_not_match_named_hosts() {
        assert!(!allows(&["http://self"], "http://localhost/"));
    }

    #[test]
    fn ipv6_literals_are_supported() {
        assert!(allows(&["http://[::1]:8080"], "http://[::1]:8080/"));
    }

    #[test]
    fn empty_list_denies_everything() {
        assert!(!allows(&[], "http://127.0.0.1/"));
    }

    #[test]
    fn destinations_display_with_their_port() {
        assert_eq!(
            Destination::new("postgres", "127.0.0.1", None).to_string(),
            "postgres://127.0.0.1:5432"
        );
    }
}
