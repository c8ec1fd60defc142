//! The SSRF guard: which addresses a delivery may connect to.
//!
//! Refused by default: loopback, private (RFC 1918, CGNAT), link-local (cloud metadata
//! `169.254.169.254` included), unique-local, multicast, unspecified, broadcast, documentation and
//! other reserved ranges, and IPv4-mapped/compatible IPv6 forms of all of these. The operator can
//! allow-list networks (`SAAS_WEBHOOK_ALLOWED_NETWORKS`). The check runs on the addresses a name
//! resolves to at connect time (see `client`), so a name re-pointed after the URL was saved
//! (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network in CIDR notation, e.g. `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0..={max}"))?,
        };
        Ok(Self {
            addr: canonical(addr),
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible IPv6 addresses as the IPv4 they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let seg = v6.segments();
                // ::a.b.c.d (deprecated IPv4-compatible), but not :: and ::1.
                if seg[..6].iter().all(|s| *s == 0) && u128::from(v6) > 1 {
                    IpAddr::V4(Ipv4Addr::from(u128::from(v6) as u32))
                } else {
                    ip
                }
            }
        },
        v4 => v4,
    }
}

/// Why an address is refused: its class.
pub fn forbidden_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("cloud metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unspecified()
        || ip.is_broadcast()
        || o[0] == 0
        || o[0] >= 240
        || ip.is_documentation()
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
    {
        Some("reserved")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("cloud metadata")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("unique-local")
    } else if (first & 0xffc0) == 0xfe80 || (first & 0xffc0) == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unspecified()
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064
        || first == 0x0100
    {
        Some("reserved")
    } else {
        None
    }
}

/// The destinations policy: forbidden classes minus the operator's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Networks allowed even though their class is forbidden.
    pub allowed: Vec<Cidr>,
}

impl AddressPolicy {
    /// `Err(class)` when a delivery may not connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        match forbidden_class(ip) {
            Some(class) if !self.allowed.iter().any(|n| n.contains(ip)) => Err(class),
            _ => Ok(()),
        }
    }

    /// Parses a comma-separated list of CIDRs (empty: nothing allowed).
    pub fn parse_allowed(list: &str) -> Result<Vec<Cidr>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::from_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        forbidden_class(s.parse().unwrap())
    }

    #[test]
    fn every_forbidden_class_is_refused() {
        assert_eq!(class("127.0.0.1"), Some("loopback"));
        assert_eq!(class("::1"), Some("loopback"));
        assert_eq!(class("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(class("10.1.2.3"), Some("private"));
        assert_eq!(class("172.16.0.1"), Some("private"));
        assert_eq!(class("192.168.1.1"), Some("private"));
        assert_eq!(class("100.64.0.1"), Some("private"));
        assert_eq!(class("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(class("::ffff:169.254.169.254"), Some("cloud metadata"));
        assert_eq!(class("169.254.1.1"), Some("link-local"));
        assert_eq!(class("fe80::1"), Some("link-local"));
        assert_eq!(class("fd00::1"), Some("unique-local"));
        assert_eq!(class("fc00::1"), Some("unique-local"));
        assert_eq!(class("224.0.0.1"), Some("multicast"));
        assert_eq!(class("ff02::1"), Some("multicast"));
        assert_eq!(class("0.0.0.0"), Some("reserved"));
        assert_eq!(class("255.255.255.255"), Some("reserved"));
        assert_eq!(class("::"), Some("reserved"));
        assert_eq!(class("8.8.8.8"), None);
        assert_eq!(class("2606:4700::1111"), None);
        assert_eq!(class("::8.8.8.8"), None);
    }

    #[test]
    fn the_allow_list_opens_exactly_its_networks() {
        let policy = AddressPolicy {
            allowed: AddressPolicy::parse_allowed("127.0.0.1/32, 10.0.0.0/8").unwrap(),
        };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert_eq!(policy.check("127.0.0.2".parse().unwrap()), Err("loopback"));
        assert!(policy.check("10.200.0.1".parse().unwrap()).is_ok());
        assert_eq!(policy.check("192.168.0.1".parse().unwrap()), Err("private"));
        assert!(AddressPolicy::parse_allowed("10.0.0.0/33").is_err());
        assert!(AddressPolicy::parse_allowed("nonsense").is_err());
        assert_eq!(AddressPolicy::parse_allowed(" ").unwrap(), vec![]);
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.168.0.1".parse().unwrap()));
    }
}
