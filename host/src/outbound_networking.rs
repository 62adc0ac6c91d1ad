//! Networks no outbound connection may reach, as Spin's runtime
//! configuration `[outbound_networking] block_networks` sets them: CIDR
//! blocks, and `"private"` for every address that is not globally
//! routable (RFC 1918, loopback, link-local and with it cloud metadata
//! services, shared CGNAT space, unique-local IPv6, documentation and
//! reserved ranges, and IPv6 forms that carry such an IPv4 address). A name is resolved first and its blocked addresses
//! dropped; the connection goes to an address that was checked, so a name
//! that resolves differently the next time gains nothing.

use anyhow::{Result, bail};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Debug, Default)]
pub struct BlockedNetworks {
    private: bool,
    networks: Vec<IpNet>,
}

/// Why no address of a destination may be connected to.
#[derive(Debug)]
pub enum Unreachable {
    /// The name does not resolve.
    NotFound(std::io::Error),
    /// Every address it resolves to is blocked.
    Blocked,
}

impl BlockedNetworks {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        let mut blocked = BlockedNetworks::default();
        for entry in entries {
            match entry.as_ref().trim() {
                "private" => blocked.private = true,
                cidr => match cidr.parse::<IpNet>() {
                    Ok(network) => blocked.networks.push(network),
                    Err(_) => bail!("{cidr:?} is neither \"private\" nor a CIDR block such as 10.0.0.0/8"),
                },
            }
        }
        Ok(blocked)
    }

    pub fn is_empty(&self) -> bool {
        !self.private && self.networks.is_empty()
    }

    /// Whether `ip` is in a blocked network; `"private"` sees through
    /// IPv6 forms that carry an IPv4 address (`spindrive-netaddr`).
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        (self.private && !spindrive_netaddr::is_public(ip))
            || self
                .networks
                .iter()
                .any(|network| network.contains(&ip) || mapped.is_some_and(|v4| network.contains(&v4)))
    }

    /// The addresses of `host` that may be connected to, in the resolver's
    /// order. Blocked ones are dropped and logged as Spin does.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Unreachable> {
        // A bracketed IPv6 literal, as URIs write them.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(Unreachable::NotFound)?
                .collect(),
        };
        self.allowed_of(host, resolved)
    }

    /// The addresses of `resolved` that are not blocked, or why none is.
    fn allowed_of(&self, host: &str, resolved: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Unreachable> {
        let allowed: Vec<SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|a| !self.is_blocked(a.ip()))
            .collect();
        if allowed.len() < resolved.len() {
            tracing::error!(
                error.type = "destination_ip_prohibited",
                host,
                blocked = resolved.len() - allowed.len(),
                "outbound connection to a blocked network refused"
            );
        }
        if allowed.is_empty() {
            return Err(if resolved.is_empty() {
                Unreachable::NotFound(std::io::Error::other("no addresses"))
            } else {
                Unreachable::Blocked
            });
        }
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private() -> BlockedNetworks {
        BlockedNetworks::parse(&["private"]).unwrap()
    }

    #[test]
    fn private_covers_every_non_global_address() {
        // The full list is spindrive-netaddr's; here, that it is applied.
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(private().is_blocked(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(!private().is_blocked(ip.parse().unwrap()), "{ip}");
        }
        assert!(!BlockedNetworks::default().is_blocked("127.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn names_resolve_to_their_allowed_addresses_only() {
        let blocked = private();
        assert!(matches!(
            blocked.resolve("localhost", 80).await,
            Err(Unreachable::Blocked)
        ));
        assert!(matches!(
            blocked.resolve("[::1]", 80).await,
            Err(Unreachable::Blocked)
        ));
        assert!(matches!(
            blocked.resolve("name.invalid", 80).await,
            Err(Unreachable::NotFound(_))
        ));
        let open = BlockedNetworks::default();
        let addresses = open.resolve("127.0.0.1", 8080).await.unwrap();
        assert_eq!(addresses, vec!["127.0.0.1:8080".parse().unwrap()]);
        let some = BlockedNetworks::parse(&["10.0.0.0/8", "::1/128"]).unwrap();
        let resolved: Vec<SocketAddr> = ["[::1]:80", "10.1.1.1:80", "127.0.0.1:80", "[::ffff:10.0.0.9]:80"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let allowed = some.allowed_of("name.test", resolved).unwrap();
        assert_eq!(
            allowed,
            vec!["127.0.0.1:80".parse().unwrap()],
            "blocked ones dropped, the rest kept"
        );
    }
}
