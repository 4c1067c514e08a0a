//! Published ports: the `-p` syntax, conflict checks and ephemeral port choice.
//!
//! `-p [ip:][hostPort:]containerPort[/tcp|udp]`, where both ports may be equal-length
//! ranges (`8000-8001:80-81`); a missing or empty host port means "pick an ephemeral
//! one". A range expands into one [`PortMapping`] per port, so everything downstream
//! (nft rules, `berth port`) deals in single ports.
//!
//! A host port is free when no other berth container publishes it (state) AND the
//! kernel lets us `bind()` it right now; both are checked before anything is set up.
//! berth runs no proxy process, so nothing holds the port afterwards: a process that
//! binds it later only sees traffic the DNAT rule does not catch.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl std::str::FromStr for Protocol {
    type Err = PortSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(PortSpecError::Protocol {
                spec: s.to_string(),
            }),
        }
    }
}

/// One published port. `host_port == 0` in a request means "choose an ephemeral
/// port"; in an [`crate::Attachment`] it is always filled in. `host_ip == None`
/// means every host address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    /// `80/tcp -> 0.0.0.0:8080`, the `docker port` format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port, self.protocol, ip, self.host_port
        )
    }
}

/// An invalid `-p` specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortSpecError {
    #[error("invalid port spec {spec:?}: expected [ip:][hostPort:]containerPort[/tcp|udp]")]
    Syntax { spec: String },
    #[error("invalid protocol {spec:?}: expected tcp or udp")]
    Protocol { spec: String },
    #[error("invalid port {spec:?}: expected 1-65535 or a range like 8000-8001")]
    Port { spec: String },
    #[error("invalid host address {spec:?} in port spec: expected an IPv4 address")]
    HostIp { spec: String },
    #[error("port ranges differ in length in {spec:?}")]
    RangeLength { spec: String },
}

impl PortMapping {
    /// Parses one `-p` argument into one mapping per port of its range.
    pub fn parse(spec: &str) -> Result<Vec<PortMapping>, PortSpecError> {
        let syntax = || PortSpecError::Syntax {
            spec: spec.to_string(),
        };
        let (ports, protocol) = match spec.rsplit_once('/') {
            Some((p, proto)) => (p, proto.parse()?),
            None => (spec, Protocol::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => (None, "", *c),
            [h, c] => (None, *h, *c),
            [ip, h, c] => (Some(*ip), *h, *c),
            _ => return Err(syntax()),
        };
        let host_ip = match ip {
            None | Some("") => None,
            Some(s) => {
                let ip: Ipv4Addr = s.parse().map_err(|_| PortSpecError::HostIp {
                    spec: s.to_string(),
                })?;
                (!ip.is_unspecified()).then_some(ip)
            }
        };
        let (c_lo, c_hi) = parse_range(container)?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(parse_range(host)?)
        };
        if let Some((h_lo, h_hi)) = host_range {
            if h_hi - h_lo != c_hi - c_lo {
                return Err(PortSpecError::RangeLength {
                    spec: spec.to_string(),
                });
            }
        }
        Ok((0..=(c_hi - c_lo))
            .map(|i| PortMapping {
                host_ip,
                host_port: host_range.map_or(0, |(lo, _)| lo + i),
                container_port: c_lo + i,
                protocol,
            })
            .collect())
    }

    /// True when both mappings would claim the same host socket.
    pub fn conflicts_with(&self, other: &PortMapping) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && self.host_port != 0
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), PortSpecError> {
    let bad = || PortSpecError::Port {
        spec: s.to_string(),
    };
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    };
    match s.split_once('-') {
        None => port(s).map(|p| (p, p)),
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(bad());
            }
            Ok((lo, hi))
        }
    }
}

/// Tries to bind the host socket a mapping would claim; `Err` carries the OS error.
pub fn probe_bind(
    host_ip: Option<Ipv4Addr>,
    port: u16,
    protocol: Protocol,
) -> std::io::Result<u16> {
    let addr = SocketAddrV4::new(host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match protocol {
        Protocol::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Protocol::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let v = PortMapping::parse(spec).expect("valid spec");
        assert_eq!(v.len(), 1);
        v[0]
    }

    #[test]
    fn full_spec() {
        let m = one("127.0.0.1:8080:80/tcp");
        assert_eq!(m.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (m.host_port, m.container_port, m.protocol),
            (8080, 80, Protocol::Tcp)
        );
    }

    #[test]
    fn short_forms() {
        assert_eq!(one("8080:80").host_ip, None);
        assert_eq!(one("53:53/udp").protocol, Protocol::Udp);
        assert_eq!(one("80").host_port, 0);
        let m = one("127.0.0.1::80");
        assert_eq!((m.host_ip, m.host_port), (Some(Ipv4Addr::LOCALHOST), 0));
        assert_eq!(one("0.0.0.0:8080:80").host_ip, None);
        assert_eq!(one("8080:80/UDP").protocol, Protocol::Udp);
    }

    #[test]
    fn ranges_expand() {
        let v = PortMapping::parse("8000-8001:80-81").expect("valid range");
        assert_eq!(
            v.iter()
                .map(|m| (m.host_port, m.container_port))
                .collect::<Vec<_>>(),
            [(8000, 80), (8001, 81)]
        );
        let v = PortMapping::parse("80-82/udp").expect("valid range");
        assert_eq!(v.len(), 3);
        assert!(v
            .iter()
            .all(|m| m.host_port == 0 && m.protocol == Protocol::Udp));
    }

    #[test]
    fn invalid_specs() {
        for bad in [
            "",
            "abc",
            "8080:",
            "8080:80/sctp",
            "8080:80/",
            "1.2.3:8080:80",
            "a:b:c:d",
            "8080:0",
            "70000:80",
            "8000-8002:80-81",
            "81-80",
            "::1:80:80",
            "8080:80:80:80",
        ] {
            assert!(
                PortMapping::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(matches!(
            PortMapping::parse("8000-8002:80-81"),
            Err(PortSpecError::RangeLength { .. })
        ));
        assert!(matches!(
            PortMapping::parse("8080:80/sctp"),
            Err(PortSpecError::Protocol { .. })
        ));
    }

    #[test]
    fn conflicts() {
        let a = one("8080:80");
        assert!(a.conflicts_with(&one("127.0.0.1:8080:81")));
        assert!(!a.conflicts_with(&one("8080:80/udp")));
        assert!(!one("127.0.0.1:8080:80").conflicts_with(&one("127.0.0.2:8080:80")));
        assert!(!one("80").conflicts_with(&one("80")));
    }

    #[test]
    fn display_like_docker_port() {
        assert_eq!(one("8080:80").to_string(), "80/tcp -> 0.0.0.0:8080");
    }
}
