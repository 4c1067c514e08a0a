//! Firewall backends: NAT out, DNAT for published ports, isolation between networks.
//!
//! The desired firewall state is a pure function of the berth state ([`Ruleset`]),
//! and every change re-installs berth's whole table in ONE atomic `nft -f -`
//! transaction (create-if-missing, delete, define) whenever the set of networks
//! changes (network create/remove, first use after boot: rare, off the hot path).
//! Published ports are elements of maps looked up by fixed rules, so a
//! container's attach/detach is one small transaction adding/expiring exactly its
//! elements, sent directly over NETLINK_NETFILTER (`nfnetlink`, no exec; the
//! `nft` binary is never run per container). Elements are expired (1 ms) rather
//! than deleted: see `nfnetlink` for why that keeps detach off an RCU grace
//! period; the maps therefore have `flags timeout` and elements a long timeout. Nothing outside berth's table is
//! touched, so deleting the table restores the host. Rules carry a `net:<name>`
//! comment and port elements a `ctr:<id>` comment.
//!
//! Packet paths (all IPv4):
//! * out: `postrouting` masquerades the subnet leaving through any other interface
//!   (not for `internal` networks, which `forward` also cuts off both ways).
//! * in: `prerouting` and `output` jump to `published` for locally addressed
//!   packets (`fib daddr type local`), so DNAT works from outside, from the host
//!   itself (127.0.0.1 and its own addresses) and from containers (hairpin).
//! * the host's own TCP connections to 127.0.0.0/8, a gateway or a published
//!   address are not DNATed at all: `socklb` rewrites them at `connect()`.
//! * localhost: a DNATed packet from 127.0.0.0/8 needs `route_localnet=1` on the
//!   bridge (set by the link driver) and is masqueraded to the bridge address.
//! * hairpin: a DNATed packet that leaves through the bridge it came from is
//!   masqueraded, so the reply returns through the host and gets un-NATed.
//! * isolation: traffic from one berth bridge to another is dropped unless it was
//!   DNATed (published ports stay reachable from other networks, as in docker).
//! * container to container on one network: the shortcut below.
//!
//! The same-network shortcut (table `netdev <table>`): each container's host-side
//! veth has an ingress chain (named after the veth) with one rule,
//! `fwd to ether daddr map @l2_<bridge>`, and each network a map from its
//! containers' MACs to their host-side veths. A unicast frame from one container
//! to another on the same network goes straight from veth to veth: the same
//! delivery the bridge would make, without the bridge and, above all, without
//! bridge netfilter. With br_netfilter in the kernel (built in on this host, and
//! loaded wherever docker runs) and `bridge-nf-call-iptables=1` — the default,
//! per network namespace, and a host-wide setting berth does not own — every
//! bridged IPv4 frame otherwise goes through the host's IPv4 hooks (conntrack,
//! every iptables/nft chain) as if routed: 15-20% of container-to-container TCP
//! throughput here. Everything else (broadcast, ARP, frames to the gateway or
//! to any MAC not in the map) goes through the bridge as before; each network's
//! map holds only its own containers, so isolation between networks is
//! unchanged. The shortcut is best effort: where the kernel lacks netdev `fwd`,
//! the bridge does the work. Chains are named after the veth, whose name derives
//! from the bridge and the address; since kernel 6.16 a netdev chain outlives
//! its device and hooks the next device of that name, so a chain is created
//! once per address and reused (older kernels delete it with the device).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Ipv4Net;
use crate::nfnetlink;
use crate::ports::{PortMapping, Protocol};
use crate::socklb;

/// One network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallNetwork {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub internal: bool,
}

/// One published port resolved to its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPort {
    pub container_id: String,
    pub mapping: PortMapping,
    pub container_ip: Ipv4Addr,
    /// The gateway of the container's network: published ports are reachable
    /// on it from the host as on every local address.
    pub gateway: Option<Ipv4Addr>,
}

/// A container's host-side veth on a bridge, for the same-network shortcut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallEndpoint {
    pub container_id: String,
    pub bridge: String,
    pub host_veth: String,
    pub mac: [u8; 6],
}

/// The complete desired state of berth's firewall.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub networks: Vec<FirewallNetwork>,
    pub ports: Vec<FirewallPort>,
    pub endpoints: Vec<FirewallEndpoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("run nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft rejected the ruleset for table {table}: {stderr}")]
    Rejected { table: String, stderr: String },
    #[error("nf_tables netlink: {op} in table {table}")]
    Netlink {
        table: String,
        op: String,
        #[source]
        source: std::io::Error,
    },
}

/// A firewall backend (nftables here; iptables could implement it later).
pub trait Firewall: Send + Sync {
    /// Replaces berth's rules with `rules`, atomically.
    fn apply(&self, rules: &Ruleset) -> Result<(), FirewallError>;
    /// Adds and removes published ports in one transaction, on top of an
    /// applied ruleset.
    fn publish(&self, add: &[FirewallPort], remove: &[FirewallPort]) -> Result<(), FirewallError>;
    /// Adds and removes same-network shortcuts (see the module docs) on top of
    /// an applied ruleset. Only an optimisation: callers may ignore errors.
    fn shortcut(
        &self,
        _add: &[FirewallEndpoint],
        _remove: &[FirewallEndpoint],
    ) -> Result<(), FirewallError> {
        Ok(())
    }
    /// Removes everything berth installed.
    fn teardown(&self) -> Result<(), FirewallError>;
}

/// nftables in table `ip <table>`: whole-table installs through `nft -f -`,
/// published-port changes as nf_tables netlink batches.
#[derive(Debug, Clone)]
pub struct Nftables {
    pub table: String,
}

impl Nftables {
    /// The full transaction installing `rules` (pure; unit-tested).
    pub fn render(&self, rules: &Ruleset) -> String {
        let t = &self.table;
        let mut s = String::new();
        // Create-then-delete makes the delete valid whether or not the table exists.
        let _ = writeln!(s, "table ip {t} {{}}\ndelete table ip {t}\ntable ip {t} {{");
        let bridges: Vec<String> = rules
            .networks
            .iter()
            .map(|n| format!("\"{}\"", n.bridge))
            .collect();
        s.push_str("  set bridges {\n    type ifname\n");
        if !bridges.is_empty() {
            let _ = writeln!(s, "    elements = {{ {} }}", bridges.join(", "));
        }
        s.push_str("  }\n");
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump published\n  }\n");
        s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump published\n  }\n");
        // Published ports are elements of four maps (protocol x any/one host address)
        // consulted by fixed rules, so attaching or detaching a container only adds
        // or deletes elements: no rule or chain changes, which nft commits slowly.
        for proto in ["tcp", "udp"] {
            for (scope, key) in [("any", "inet_service"), ("ip", "ipv4_addr . inet_service")] {
                let _ = writeln!(
                    s,
                    "  map {proto}_{scope} {{\n    type {key} : ipv4_addr . inet_service\n    flags timeout"
                );
                let elems: Vec<String> = rules
                    .ports
                    .iter()
                    .filter(|p| {
                        p.mapping.protocol.to_string() == proto
                            && (p.mapping.host_ip.is_none() == (scope == "any"))
                    })
                    .map(element)
                    .collect();
                if !elems.is_empty() {
                    let _ = writeln!(s, "    elements = {{ {} }}", elems.join(", "));
                }
                s.push_str("  }\n");
            }
        }
        s.push_str("  chain published {\n");
        for proto in ["tcp", "udp"] {
            let _ = writeln!(s, "    dnat ip to ip daddr . {proto} dport map @{proto}_ip");
            let _ = writeln!(s, "    dnat ip to {proto} dport map @{proto}_any");
        }
        s.push_str("  }\n");
        s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for n in &rules.networks {
            let (b, sub, name) = (&n.bridge, n.subnet, &n.name);
            let _ = writeln!(
                s,
                "    oifname \"{b}\" ip saddr 127.0.0.0/8 masquerade comment \"net:{name}\""
            );
            let _ = writeln!(s, "    oifname \"{b}\" ip saddr {sub} ct status dnat masquerade comment \"net:{name}\"");
            if !n.internal {
                let _ = writeln!(
                    s,
                    "    ip saddr {sub} oifname != \"{b}\" masquerade comment \"net:{name}\""
                );
            }
        }
        s.push_str("  }\n");
        s.push_str(
            "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
        );
        for n in rules.networks.iter().filter(|n| n.internal) {
            let (b, name) = (&n.bridge, &n.name);
            let _ = writeln!(
                s,
                "    iifname \"{b}\" oifname != \"{b}\" drop comment \"net:{name}\""
            );
            let _ = writeln!(
                s,
                "    oifname \"{b}\" iifname != \"{b}\" drop comment \"net:{name}\""
            );
        }
        s.push_str("    ct status dnat accept\n");
        for n in &rules.networks {
            let (b, name) = (&n.bridge, &n.name);
            let _ = writeln!(s, "    iifname \"{b}\" oifname != \"{b}\" oifname @bridges drop comment \"net:{name}\"");
        }
        s.push_str("  }\n}\n");
        s
    }

    /// The transaction (re)installing table `netdev <table>` with the
    /// same-network shortcuts of the endpoints whose veth exists (`ifindex`
    /// names them; a missing device would fail the whole transaction on
    /// kernels before 6.16). Pure; unit-tested.
    pub fn render_shortcuts(&self, rules: &Ruleset, exists: impl Fn(&str) -> bool) -> String {
        let t = &self.table;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "table netdev {t} {{}}\ndelete table netdev {t}\ntable netdev {t} {{"
        );
        let live: Vec<&FirewallEndpoint> = rules
            .endpoints
            .iter()
            .filter(|e| exists(&e.host_veth))
            .collect();
        for n in &rules.networks {
            let _ = writeln!(
                s,
                "  map {} {{\n    type ether_addr : iface_index\n    flags timeout",
                shortcut_map(&n.bridge)
            );
            let elems: Vec<String> = live
                .iter()
                .filter(|e| e.bridge == n.bridge)
                .map(|e| {
                    format!(
                        "{} timeout {ELEMENT_TIMEOUT_DAYS}d comment \"ctr:{}\" : \"{}\"",
                        crate::ipam::format_mac(&e.mac),
                        e.container_id,
                        e.host_veth
                    )
                })
                .collect();
            if !elems.is_empty() {
                let _ = writeln!(s, "    elements = {{ {} }}", elems.join(", "));
            }
            s.push_str("  }\n");
        }
        for e in live
            .iter()
            .filter(|e| rules.networks.iter().any(|n| n.bridge == e.bridge))
        {
            let v = &e.host_veth;
            let _ = writeln!(
                s,
                "  chain {v} {{\n    type filter hook ingress device \"{v}\" priority {SHORTCUT_PRIORITY}; policy accept;\n    fwd to ether daddr map @{}\n  }}",
                shortcut_map(&e.bridge)
            );
        }
        s.push_str("}\n");
        s
    }

    /// The netlink batch of a shortcut delta; `conn` answers which chains
    /// exist already (since 6.16 a chain outlives its device and is reused).
    fn shortcut_batch(
        &self,
        conn: &mut nfnetlink::Conn,
        add: &[FirewallEndpoint],
        remove: &[FirewallEndpoint],
        replace: bool,
    ) -> Result<nfnetlink::Batch, FirewallError> {
        let t = &self.table;
        let fam = nfnetlink::NFPROTO_NETDEV;
        let mut b = nfnetlink::Batch::new(1);
        for e in remove {
            // Expiring needs the element's exact value; without the device
            // there is none to give (see `shortcut` for what then happens).
            let Some(index) = ifindex(&e.host_veth) else {
                continue;
            };
            let mut el = shortcut_element(e, index);
            el.expire_ms = Some(EXPIRE_MS);
            b.set_element_in(fam, t, &el);
        }
        for e in add {
            let Some(index) = ifindex(&e.host_veth) else {
                continue;
            };
            let v = &e.host_veth;
            let exists = conn
                .chain_exists(fam, t, v)
                .map_err(|source| FirewallError::Netlink {
                    table: t.clone(),
                    op: format!("look up netdev chain {v}"),
                    source,
                })?;
            if !exists {
                b.netdev_ingress_chain(t, v, v, SHORTCUT_PRIORITY);
                b.fwd_by_mac_rule(t, v, &shortcut_map(&e.bridge));
            }
            let el = shortcut_element(e, index);
            if replace {
                b.destroy_element_in(fam, t, &el.set, &el.key);
            }
            b.set_element_in(fam, t, &el);
        }
        Ok(b)
    }

    /// The `nft` equivalent of the netlink batch [`Firewall::publish`] sends for
    /// `add` and `remove` (pure; unit-tested; useful for debugging by hand).
    pub fn render_delta(&self, add: &[FirewallPort], remove: &[FirewallPort]) -> String {
        let t = &self.table;
        let mut s = String::new();
        for p in remove {
            let _ = writeln!(
                s,
                "add element ip {t} {} {{ {} }}",
                map_name(&p.mapping),
                element(p).replacen(" comment", &format!(" expires {EXPIRE_MS}ms comment"), 1)
            );
        }
        for p in add {
            let _ = writeln!(
                s,
                "add element ip {t} {} {{ {} }}",
                map_name(&p.mapping),
                element(p)
            );
        }
        s
    }

    /// The netlink batch adding `add` and expiring `remove`.
    fn delta_batch(&self, add: &[FirewallPort], remove: &[FirewallPort]) -> nfnetlink::Batch {
        // The sequence only has to be unique on this (fresh) socket.
        let mut b = nfnetlink::Batch::new(1);
        for p in remove {
            let mut e = netlink_element(p);
            e.expire_ms = Some(EXPIRE_MS);
            b.set_element(&self.table, &e);
        }
        for p in add {
            b.set_element(&self.table, &netlink_element(p));
        }
        b
    }

    fn run(&self, script: &str) -> Result<(), FirewallError> {
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(FirewallError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(FirewallError::Spawn)?;
        }
        let out = child.wait_with_output().map_err(FirewallError::Spawn)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(FirewallError::Rejected {
                table: self.table.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// Priority of the shortcut chains on a veth's ingress hook.
const SHORTCUT_PRIORITY: i32 = 0;

/// The map of a network's MACs: named after its bridge, hex-encoded (bridge
/// names may hold characters nft identifiers cannot; hex keeps them unique).
fn shortcut_map(bridge: &str) -> String {
    let hex: String = bridge.bytes().map(|b| format!("{b:02x}")).collect();
    format!("l2_{hex}")
}

fn shortcut_element(e: &FirewallEndpoint, ifindex: u32) -> nfnetlink::Element {
    nfnetlink::Element {
        set: shortcut_map(&e.bridge),
        key: e.mac.to_vec(),
        // iface_index is host-endian, as `meta iif` loads it and `fwd` reads it.
        data: Some(ifindex.to_ne_bytes().to_vec()),
        comment: Some(format!("ctr:{}", e.container_id)),
        timeout_ms: Some(ELEMENT_TIMEOUT_DAYS * 86_400_000),
        expire_ms: None,
    }
}

fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

fn map_name(m: &PortMapping) -> String {
    format!(
        "{}_{}",
        m.protocol,
        if m.host_ip.is_some() { "ip" } else { "any" }
    )
}

fn key(m: &PortMapping) -> String {
    match m.host_ip {
        Some(ip) => format!("{ip} . {}", m.host_port),
        None => m.host_port.to_string(),
    }
}

/// Lifetime of a published-port element: "forever" (the maps need a timeout on
/// every element so that detach can expire it; see `nfnetlink`).
const ELEMENT_TIMEOUT_DAYS: u64 = 3650;
/// Expiration set on detach: the element stops matching (and disappears from
/// `nft list`) after this long, rounded up to the next clock tick.
const EXPIRE_MS: u64 = 1;

/// The map element of a published port in register layout (see `nfnetlink`).
fn netlink_element(p: &FirewallPort) -> nfnetlink::Element {
    let m = &p.mapping;
    nfnetlink::Element {
        set: map_name(m),
        key: match m.host_ip {
            Some(ip) => nfnetlink::addr_port(ip, m.host_port),
            None => nfnetlink::port_key(m.host_port),
        },
        data: Some(nfnetlink::addr_port(p.container_ip, m.container_port)),
        comment: Some(format!("ctr:{}", p.container_id)),
        timeout_ms: Some(ELEMENT_TIMEOUT_DAYS * 86_400_000),
        expire_ms: None,
    }
}

fn element(p: &FirewallPort) -> String {
    format!(
        "{} timeout {ELEMENT_TIMEOUT_DAYS}d comment \"ctr:{}\" : {} . {}",
        key(&p.mapping),
        p.container_id,
        p.container_ip,
        p.mapping.container_port
    )
}

/// The TCP ports the host's own connections reach without NAT (`socklb`).
fn redirects(ports: &[FirewallPort]) -> Vec<socklb::Redirect> {
    ports
        .iter()
        .filter(|p| p.mapping.protocol == Protocol::Tcp)
        .filter_map(|p| {
            Some(socklb::Redirect {
                host_ip: p.mapping.host_ip.filter(|ip| !ip.is_unspecified()),
                host_port: p.mapping.host_port,
                to_ip: p.container_ip,
                to_port: p.mapping.container_port,
                via: p.gateway?,
            })
        })
        .collect()
}

/// `BERTH_NET_SOCKLB=0` turns the connect-time redirect off (everything is then
/// DNATed, as on kernels without cgroup BPF); for comparisons and debugging.
fn socklb_enabled() -> bool {
    std::env::var_os("BERTH_NET_SOCKLB").is_none_or(|v| v != "0")
}

impl Nftables {
    fn socklb(&self) -> socklb::SockLb {
        socklb::SockLb::new(&self.table)
    }

    /// Whether the connect-time redirect of this table's instance is in place.
    pub fn redirect_attached(&self) -> bool {
        self.socklb().attached()
    }
}

impl Firewall for Nftables {
    /// One transaction for both tables; if the kernel refuses the shortcut
    /// table (no netdev family or `fwd`), the ip table alone. Then the
    /// connect-time redirect's map is made to match the published ports (best
    /// effort: the DNAT rules serve every connection it does not).
    fn apply(&self, rules: &Ruleset) -> Result<(), FirewallError> {
        let ip = self.render(rules);
        let both = format!(
            "{ip}{}",
            self.render_shortcuts(rules, |v| ifindex(v).is_some())
        );
        if self.run(&both).is_err() {
            self.run(&ip)?;
            // No stale shortcuts either (they may point at old devices).
            let t = &self.table;
            let _ = self.run(&format!("table netdev {t} {{}}\ndelete table netdev {t}\n"));
        }
        let lb = self.socklb();
        let gateways: Vec<Ipv4Addr> = rules.networks.iter().map(|n| n.gateway).collect();
        if !socklb_enabled() || lb.sync(&redirects(&rules.ports), &gateways).is_err() {
            // Off, or a half-filled map: no redirect must outlive that.
            let _ = lb.remove();
        }
        Ok(())
    }

    /// An element left behind for a device that is gone (a veth deleted
    /// behind berth's back) would make the add of the same MAC clash
    /// (EEXIST: same key, another value); the add is then retried replacing it.
    fn shortcut(
        &self,
        add: &[FirewallEndpoint],
        remove: &[FirewallEndpoint],
    ) -> Result<(), FirewallError> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let netlink = |(op, source)| FirewallError::Netlink {
            table: self.table.clone(),
            op,
            source,
        };
        let mut conn = nfnetlink::Conn::open().map_err(netlink)?;
        let batch = self.shortcut_batch(&mut conn, add, remove, false)?;
        match conn.commit(batch) {
            Err((_, e)) if e.raw_os_error() == Some(libc::EEXIST) && !add.is_empty() => {
                let mut conn = nfnetlink::Conn::open().map_err(netlink)?;
                let batch = self.shortcut_batch(&mut conn, add, remove, true)?;
                conn.commit(batch).map_err(netlink)
            }
            r => r.map_err(netlink),
        }
    }

    fn publish(&self, add: &[FirewallPort], remove: &[FirewallPort]) -> Result<(), FirewallError> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        nfnetlink::commit(self.delta_batch(add, remove)).map_err(|(op, source)| {
            FirewallError::Netlink {
                table: self.table.clone(),
                op,
                source,
            }
        })?;
        if socklb_enabled() {
            let lb = self.socklb();
            let mut gateways: Vec<Ipv4Addr> = add.iter().filter_map(|p| p.gateway).collect();
            gateways.dedup();
            if lb
                .change(&redirects(add), &redirects(remove), &gateways)
                .is_err()
            {
                // Never leave a redirect to a container that is gone.
                let _ = lb.remove();
            }
        }
        Ok(())
    }

    fn teardown(&self) -> Result<(), FirewallError> {
        let t = &self.table;
        let redirect = self.socklb().remove();
        let ip = format!("table ip {t} {{}}\ndelete table ip {t}\n");
        self.run(&format!(
            "{ip}table netdev {t} {{}}\ndelete table netdev {t}\n"
        ))
        .or_else(|_| self.run(&ip))?;
        redirect.map_err(|source| FirewallError::Netlink {
            table: t.clone(),
            op: "detach the connect4 program".into(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ruleset {
        Ruleset {
            networks: vec![
                FirewallNetwork {
                    name: "bridge".into(),
                    bridge: "berth0".into(),
                    subnet: "10.88.0.0/16".parse().expect("subnet"),
                    gateway: Ipv4Addr::new(10, 88, 0, 1),
                    internal: false,
                },
                FirewallNetwork {
                    name: "priv".into(),
                    bridge: "br-1".into(),
                    subnet: "10.89.0.0/24".parse().expect("subnet"),
                    gateway: Ipv4Addr::new(10, 89, 0, 1),
                    internal: true,
                },
            ],
            ports: vec![FirewallPort {
                container_id: "abc".into(),
                mapping: PortMapping::parse("127.0.0.1:8080:80").expect("spec")[0],
                container_ip: Ipv4Addr::new(10, 88, 0, 2),
                gateway: Some(Ipv4Addr::new(10, 88, 0, 1)),
            }],
            endpoints: vec![
                FirewallEndpoint {
                    container_id: "abc".into(),
                    bridge: "berth0".into(),
                    host_veth: "vb12340a580002".into(),
                    mac: [2, 0x42, 10, 88, 0, 2],
                },
                FirewallEndpoint {
                    container_id: "gone".into(),
                    bridge: "berth0".into(),
                    host_veth: "vb12340a580003".into(),
                    mac: [2, 0x42, 10, 88, 0, 3],
                },
            ],
        }
    }

    #[test]
    fn shortcuts_are_one_replace_transaction_per_network_map() {
        let s =
            Nftables { table: "t".into() }.render_shortcuts(&sample(), |v| v != "vb12340a580003");
        assert!(
            s.starts_with("table netdev t {}\ndelete table netdev t\ntable netdev t {"),
            "{s}"
        );
        // one map per network, named by its bridge in hex ("berth0", "br-1")
        assert!(s.contains("  map l2_626572746830 {\n    type ether_addr : iface_index\n    flags timeout\n    elements = { 02:42:0a:58:00:02 timeout 3650d comment \"ctr:abc\" : \"vb12340a580002\" }\n  }"), "{s}");
        assert!(
            s.contains(
                "  map l2_62722d31 {\n    type ether_addr : iface_index\n    flags timeout\n  }"
            ),
            "{s}"
        );
        assert!(s.contains("  chain vb12340a580002 {\n    type filter hook ingress device \"vb12340a580002\" priority 0; policy accept;\n    fwd to ether daddr map @l2_626572746830\n  }"), "{s}");
        // an endpoint whose veth is gone gets neither chain nor element
        assert!(!s.contains("vb12340a580003"), "{s}");
    }

    #[test]
    fn render_is_one_replace_transaction() {
        let s = Nftables {
            table: "berth".into(),
        }
        .render(&sample());
        assert!(s.starts_with("table ip berth {}\ndelete table ip berth\ntable ip berth {"));
        assert!(s.contains("elements = { \"berth0\", \"br-1\" }"));
        assert!(s.contains("map tcp_ip {\n    type ipv4_addr . inet_service : ipv4_addr . inet_service\n    flags timeout\n    elements = { 127.0.0.1 . 8080 timeout 3650d comment \"ctr:abc\" : 10.88.0.2 . 80 }"), "{s}");
        assert!(s.contains("dnat ip to tcp dport map @tcp_any"));
        assert!(s.contains("ip saddr 10.88.0.0/16 oifname != \"berth0\" masquerade"));
        // internal networks never masquerade out and are cut off in forward
        assert!(!s.contains("ip saddr 10.89.0.0/24 oifname != \"br-1\" masquerade"));
        assert!(s.contains("iifname \"br-1\" oifname != \"br-1\" drop"));
    }

    #[test]
    fn empty_ruleset_has_empty_set() {
        let s = Nftables { table: "t".into() }.render(&Ruleset::default());
        assert!(!Nftables { table: "t".into() }
            .render_shortcuts(&Ruleset::default(), |_| true)
            .contains("map"));
        assert!(!s.contains("elements"));
        assert!(
            s.contains("map udp_any {\n    type inet_service : ipv4_addr . inet_service\n    flags timeout\n  }"),
            "{s}"
        );
    }

    #[test]
    fn delta_touches_only_elements() {
        let nft = Nftables { table: "t".into() };
        let p = sample().ports;
        let any = FirewallPort {
            mapping: PortMapping::parse("53:53/udp").expect("spec")[0],
            ..p[0].clone()
        };
        assert_eq!(
            nft.render_delta(std::slice::from_ref(&any), &p),
            "add element ip t tcp_ip { 127.0.0.1 . 8080 timeout 3650d expires 1ms comment \"ctr:abc\" : 10.88.0.2 . 80 }\nadd element ip t udp_any { 53 timeout 3650d comment \"ctr:abc\" : 10.88.0.2 . 53 }\n"
        );
        assert_eq!(nft.render_delta(&[], &[]), "");
    }
}
