//! IPv4 subnets and address allocation (pure logic, no effects).
//!
//! Owns [`Ipv4Net`] (an address with a prefix length, always stored with the host
//! bits cleared) and the lease rules: a container address lies inside the subnet and
//! is never the network address, the broadcast address or the gateway. Leases
//! themselves live in the network's record in `state.json`; callers hold the state
//! lock while they allocate, which is what makes concurrent `berth run`s safe.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Invalid subnet or address input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: expected a.b.c.d/prefix with prefix 8..=30")]
    InvalidSubnet(String),
    #[error("address {ip} is not in subnet {subnet}")]
    NotInSubnet { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {ip} is reserved in subnet {subnet} (network, broadcast or gateway)")]
    Reserved { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {ip} is already in use on network {network} (by container {holder})")]
    Taken {
        ip: Ipv4Addr,
        network: String,
        holder: String,
    },
    #[error("no free address left in subnet {subnet} of network {network}")]
    Exhausted { subnet: Ipv4Net, network: String },
}

/// An IPv4 subnet, `a.b.c.d/prefix`, host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// A subnet from an address and prefix; host bits are cleared.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        // /31 and /32 leave no room for a gateway plus a container.
        if !(8..=30).contains(&prefix) {
            return Err(IpamError::InvalidSubnet(format!("{addr}/{prefix}")));
        }
        Ok(Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// True when the two ranges share at least one address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.addr) & mask(p) == u32::from(other.addr) & mask(p)
    }

    /// True when `self` shares an address with the route `dst/prefix` (prefix may be
    /// anything 0..=32; a default route, prefix 0, is ignored by callers).
    pub fn overlaps_route(&self, dst: Ipv4Addr, prefix: u8) -> bool {
        let p = self.prefix.min(prefix);
        u32::from(self.addr) & mask(p) == u32::from(dst) & mask(p)
    }

    /// The conventional gateway: the first host address.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpamError::InvalidSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Ipv4Net::new(addr, prefix)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks that `ip` may be leased on a network with `subnet`, `gateway` and the
/// current `leases` (address → container id).
pub fn validate_static(
    network: &str,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    leases: &BTreeMap<Ipv4Addr, String>,
    ip: Ipv4Addr,
) -> Result<(), IpamError> {
    if !subnet.contains(ip) {
        return Err(IpamError::NotInSubnet { ip, subnet });
    }
    if ip == subnet.network() || ip == subnet.broadcast() || ip == gateway {
        return Err(IpamError::Reserved { ip, subnet });
    }
    if let Some(holder) = leases.get(&ip) {
        return Err(IpamError::Taken {
            ip,
            network: network.to_string(),
            holder: holder.clone(),
        });
    }
    Ok(())
}

/// The lowest free address of the subnet (MACs are derived from addresses, so a
/// reused address never leaves stale ARP entries pointing at a wrong MAC).
pub fn allocate(
    network: &str,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    leases: &BTreeMap<Ipv4Addr, String>,
) -> Result<Ipv4Addr, IpamError> {
    let first = u32::from(subnet.network()) + 1;
    let last = u32::from(subnet.broadcast());
    (first..last)
        .map(Ipv4Addr::from)
        .find(|ip| *ip != gateway && !leases.contains_key(ip))
        .ok_or(IpamError::Exhausted {
            subnet,
            network: network.to_string(),
        })
}

/// The MAC docker derives from an address: 02:42 followed by the four address bytes
/// (locally administered, unicast).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("valid subnet")
    }

    #[test]
    fn parse_clears_host_bits_and_rejects_garbage() {
        assert_eq!(net("10.1.2.3/16").to_string(), "10.1.0.0/16");
        for bad in [
            "10.1.2.3",
            "10.1.2.3/33",
            "10.1.2.3/31",
            "x/24",
            "10.1.2/24",
            "10.0.0.0/4",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn overlap_rules() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.200.1.0/24")));
        assert!(net("10.200.1.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.200.1.0/24").overlaps(&net("10.200.2.0/24")));
        assert!(net("10.200.1.0/24").overlaps_route(Ipv4Addr::new(10, 200, 1, 7), 32));
        assert!(!net("10.200.1.0/24").overlaps_route(Ipv4Addr::new(10, 200, 2, 7), 32));
    }

    #[test]
    fn allocation_skips_gateway_and_leases() {
        let s = net("10.200.1.0/29");
        let gw = s.first_host();
        let mut leases = BTreeMap::new();
        assert_eq!(
            allocate("n", s, gw, &leases),
            Ok(Ipv4Addr::new(10, 200, 1, 2))
        );
        leases.insert(Ipv4Addr::new(10, 200, 1, 2), "a".to_string());
        assert_eq!(
            allocate("n", s, gw, &leases),
            Ok(Ipv4Addr::new(10, 200, 1, 3))
        );
        for i in 3..=6 {
            leases.insert(Ipv4Addr::new(10, 200, 1, i), format!("c{i}"));
        }
        assert!(matches!(
            allocate("n", s, gw, &leases),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn static_addresses_are_validated() {
        let s = net("10.200.1.0/24");
        let gw = s.first_host();
        let mut leases = BTreeMap::new();
        leases.insert(Ipv4Addr::new(10, 200, 1, 5), "a".to_string());
        let v = |ip| validate_static("n", s, gw, &leases, ip);
        assert!(v(Ipv4Addr::new(10, 200, 1, 9)).is_ok());
        assert!(matches!(
            v(Ipv4Addr::new(10, 200, 2, 9)),
            Err(IpamError::NotInSubnet { .. })
        ));
        assert!(matches!(v(gw), Err(IpamError::Reserved { .. })));
        assert!(matches!(
            v(Ipv4Addr::new(10, 200, 1, 255)),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            v(Ipv4Addr::new(10, 200, 1, 5)),
            Err(IpamError::Taken { .. })
        ));
    }

    #[test]
    fn mac_is_derived_from_address() {
        assert_eq!(
            format_mac(&mac_for(Ipv4Addr::new(10, 200, 1, 2))),
            "02:42:0a:c8:01:02"
        );
    }
}
