//! Whether an IP address is publicly routable: the one rule both the
//! webhook registration (a literal address in a URL) and the host's
//! `block_networks = ["private"]` (every address a name resolves to)
//! apply, so that the two never disagree.
//!
//! `ip_network`'s `is_global` judges an address by its own range. IPv6
//! also has forms that carry an IPv4 address and reach it through a
//! translator (IPv4-mapped and -compatible, SIIT, NAT64, 6to4); those are
//! judged as the IPv4 address they carry, and Teredo and local-use NAT64,
//! whose embedded address cannot be trusted, are never public.

use ip_network::IpNetwork;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is globally routable.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded(v6) {
            Embedded::V4(v4) => is_public_v4(v4),
            Embedded::Untrusted => false,
            Embedded::None => IpNetwork::from(IpAddr::V6(v6)).is_global(),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    IpNetwork::from(IpAddr::V4(ip)).is_global()
}

enum Embedded {
    V4(Ipv4Addr),
    /// A tunnel or translator form whose real destination is not knowable.
    Untrusted,
    None,
}

fn embedded(ip: Ipv6Addr) -> Embedded {
    let s = ip.segments();
    let last_32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::a.b.c.d (compatible, also :: and ::1) and ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0 | 0xffff, _, _] => Embedded::V4(last_32),
        // ::ffff:0:a.b.c.d (SIIT, RFC 6052 §2.1's "IPv4-translated")
        [0, 0, 0, 0, 0xffff, 0, _, _] => Embedded::V4(last_32),
        // 64:ff9b::a.b.c.d (well-known NAT64 prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Embedded::V4(last_32),
        // 64:ff9b:1::/48 (local-use NAT64) and 2001::/32 (Teredo)
        [0x64, 0xff9b, 1, ..] | [0x2001, 0, ..] => Embedded::Untrusted,
        // 2002:aabb:ccdd::/48 (6to4)
        [0x2002, high, low, ..] => Embedded::V4(Ipv4Addr::new(
            (high >> 8) as u8,
            high as u8,
            (low >> 8) as u8,
            low as u8,
        )),
        _ => Embedded::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn private_and_special_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "2a00:1450::1"] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_are_judged_by_the_ipv4_address_they_carry() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::7f00:1",
            "::a9fe:a9fe",
            "::ffff:0:169.254.169.254",
            "64:ff9b::169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "64:ff9b:1::8.8.8.8",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!public(ip), "{ip}");
        }
        for ip in ["::ffff:1.1.1.1", "64:ff9b::8.8.8.8", "2002:808:808::1"] {
            assert!(public(ip), "{ip}");
        }
    }
}
