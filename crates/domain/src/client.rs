//! Who is on the other end of a request, for throttling: an address the
//! runtime saw, never one the client wrote.
//!
//! Spin (and the local host) append their own `spin-client-addr` header
//! AFTER whatever headers the client sent, without stripping the client's,
//! so only the last value is the runtime's. Behind an ingress the peer is
//! the proxy; then the client is the entry the outermost trusted proxy put
//! into `X-Forwarded-For`, counted from the right (`trusted_hops` proxies
//! each append the address they saw). Entries left of those were written
//! by the client and are ignored.

use std::net::{IpAddr, SocketAddr};

/// A throttling key for a client: an IPv4 address, or the /64 network of
/// an IPv6 one (one subscriber usually holds a whole /64, so per-address
/// keys would give an attacker 2^64 fresh identities). At most 45 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKey(String);

impl ClientKey {
    /// The key for `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(v4.to_string()),
                None => {
                    let s = v6.segments();
                    ClientKey(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
                }
            },
        }
    }

    /// The key when no address can be trusted: every such request shares
    /// one bucket, so a broken address fails closed rather than open.
    pub fn unknown() -> Self {
        ClientKey("unknown".to_owned())
    }

    /// The client of a request: `peer_values` are every `spin-client-addr`
    /// value in header order, `forwarded_for` every `X-Forwarded-For` value
    /// in header order.
    pub fn from_request(peer_values: &[&str], forwarded_for: &[&str], trusted_hops: usize) -> Self {
        let peer = peer_values.last().and_then(|value| parse_address(value));
        if trusted_hops == 0 {
            return peer.map_or_else(Self::unknown, Self::of);
        }
        let hops: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        // Fewer entries than trusted proxies: the request did not come
        // through all of them, so nothing in the header can be trusted.
        let Some(index) = hops.len().checked_sub(trusted_hops) else {
            return peer.map_or_else(Self::unknown, Self::of);
        };
        parse_address(hops[index]).map_or_else(Self::unknown, Self::of)
    }
}

impl AsRef<str> for ClientKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port`; nothing else, and never
/// more than a socket address can be long.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if text.len() > 64 {
        return None;
    }
    text.parse::<SocketAddr>()
        .map(|addr| addr.ip())
        .or_else(|_| text.trim_start_matches('[').trim_end_matches(']').parse())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(peers: &[&str], forwarded: &[&str], hops: usize) -> String {
        ClientKey::from_request(peers, forwarded, hops).0
    }

    #[test]
    fn the_runtime_value_is_the_last_and_client_values_are_ignored() {
        assert_eq!(key(&["127.0.0.1:5000"], &[], 0), "127.0.0.1");
        assert_eq!(key(&["6.6.6.6:1", "127.0.0.1:5000"], &[], 0), "127.0.0.1");
        assert_eq!(
            key(&["x".repeat(100).as_str(), "10.0.0.2:80"], &[], 0),
            "10.0.0.2"
        );
        assert_eq!(key(&["127.0.0.1:5000"], &["9.9.9.9"], 0), "127.0.0.1");
    }

    #[test]
    fn an_unparsable_runtime_value_fails_closed_into_one_bucket() {
        assert_eq!(key(&[], &[], 0), "unknown");
        assert_eq!(key(&["not an address"], &[], 0), "unknown");
        assert_eq!(key(&[&"1".repeat(70)], &[], 0), "unknown");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_network() {
        assert_eq!(key(&["[2001:db8:1:2:3:4:5:6]:443"], &[], 0), "2001:db8:1:2::/64");
        assert_eq!(key(&["[2001:db8:1:2::ffff]:1"], &[], 0), "2001:db8:1:2::/64");
        assert_eq!(key(&["[::ffff:192.0.2.7]:1"], &[], 0), "192.0.2.7");
        assert!(key(&["[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"], &[], 0).len() <= 45);
    }

    #[test]
    fn trusted_hops_pick_the_entry_the_outermost_proxy_wrote() {
        // client-written, then what the ingress saw.
        let forwarded = ["1.1.1.1, 203.0.113.9"];
        assert_eq!(key(&["10.0.0.5:80"], &forwarded, 1), "203.0.113.9");
        assert_eq!(key(&["10.0.0.5:80"], &forwarded, 2), "1.1.1.1");
        // Split over several headers, the order still counts.
        assert_eq!(
            key(&["10.0.0.5:80"], &["1.1.1.1", "203.0.113.9, 10.0.0.4"], 2),
            "203.0.113.9"
        );
        // Fewer entries than trusted proxies: the peer.
        assert_eq!(key(&["10.0.0.5:80"], &[], 1), "10.0.0.5");
        // A trusted entry that is not an address: one shared bucket.
        assert_eq!(key(&["10.0.0.5:80"], &["garbage"], 1), "unknown");
    }
}
