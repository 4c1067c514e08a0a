//! network: the engine's side of berth-net — which mode a container asked for
//! (`bridge`, a user network, `host`, `none`, `container:<id>`), the netns and
//! /etc files that come back, and detach on stop. Kept in one place so the
//! rest of the engine never sees berth-net's types.

use std::path::PathBuf;

use crate::lifecycle::Engine;
use crate::record::{Container, EndpointRecord, NetworkSettings, PortRecord, Status};
use crate::EngineError;

/// What the spec needs from the network.
pub struct Attached {
    /// The netns to join (None: the host's).
    pub netns: Option<String>,
    /// (destination, source) bind mounts for /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(String, String)>,
    pub settings: NetworkSettings,
}

fn net_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Network(e.to_string())
}

pub fn attach(engine: &Engine, c: &Container) -> Result<Attached, EngineError> {
    let hc = &c.host_config;
    let etc_dir: PathBuf = engine.root.container_dir(&c.id).join("etc");
    if let Some(other) = hc.network_mode.strip_prefix("container:") {
        let o = engine.records().find(other)?;
        if o.state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "cannot join network of a non running container: {}",
                o.name
            )));
        }
        let odir = engine.root.container_dir(&o.id).join("etc");
        return Ok(Attached {
            netns: Some(format!("/proc/{}/ns/net", o.state.pid)),
            etc_files: etc_files(&odir),
            settings: NetworkSettings {
                netns: format!("/proc/{}/ns/net", o.state.pid),
                ..Default::default()
            },
        });
    }
    match hc.network_mode.as_str() {
        "host" => {
            // the host's own files, copied so the container cannot edit the host's
            write_etc(
                &etc_dir,
                &host_file("/etc/hostname"),
                &host_file("/etc/hosts"),
                &host_resolv_conf(hc),
            )?;
            Ok(Attached {
                netns: None,
                etc_files: etc_files(&etc_dir),
                settings: NetworkSettings::default(),
            })
        }
        "none" => {
            // a new, empty netns made by the runtime (lo only); nothing for berth-net to do
            let hosts = format!("{LOCALHOST}{}", extra_hosts(hc)?);
            write_etc(
                &etc_dir,
                &format!("{}\n", c.config.hostname),
                &hosts,
                &host_resolv_conf(hc),
            )?;
            Ok(Attached {
                netns: Some(String::new()),
                etc_files: etc_files(&etc_dir),
                settings: NetworkSettings::default(),
            })
        }
        _ => bridge_attach(engine, c, &etc_dir),
    }
}

pub fn open(engine: &Engine) -> Result<berth_net::Net, EngineError> {
    berth_net::Net::open_with(engine.root.net_state(), engine.root.net_run(), options())
        .map_err(net_err)
}

/// Host-wide names (default bridge, nft table) can be overridden so several
/// engines — or test suites — share a host without touching each other's.
pub fn options() -> berth_net::NetOptions {
    let mut o = berth_net::NetOptions::default();
    if let Ok(t) = std::env::var("BERTH_NFT_TABLE") {
        o.table = t;
    }
    if let Ok(b) = std::env::var("BERTH_BRIDGE") {
        o.default_bridge = b;
    }
    if let Ok(s) = std::env::var("BERTH_SUBNET_POOL") {
        let pool: Vec<berth_net::Ipv4Net> =
            s.split(',').filter_map(|n| n.trim().parse().ok()).collect();
        if !pool.is_empty() {
            o.subnet_pool = pool;
        }
    }
    o
}

fn bridge_attach(
    engine: &Engine,
    c: &Container,
    etc_dir: &std::path::Path,
) -> Result<Attached, EngineError> {
    let hc = &c.host_config;
    let nets: Vec<String> = if hc.networks.is_empty() {
        vec!["bridge".into()]
    } else {
        hc.networks.clone()
    };
    let mut endpoints = Vec::new();
    for (i, n) in nets.iter().enumerate() {
        let ip = match (&hc.ip, i) {
            (Some(ip), 0) => Some(
                ip.parse()
                    .map_err(|_| EngineError::Invalid(format!("invalid --ip {ip:?}")))?,
            ),
            _ => None,
        };
        endpoints.push(berth_net::EndpointRequest {
            network: n.clone(),
            ip,
            aliases: hc.network_aliases.clone(),
        });
    }
    let mut ports = Vec::new();
    for p in &hc.ports {
        let mut spec = String::new();
        if !p.host_ip.is_empty() {
            spec.push_str(&p.host_ip);
            spec.push(':');
        }
        if !p.host_port.is_empty() || !p.host_ip.is_empty() {
            spec.push_str(&p.host_port);
            spec.push(':');
        }
        spec.push_str(&p.container_port);
        spec.push('/');
        spec.push_str(&p.protocol);
        ports.extend(berth_net::PortMapping::parse(&spec).map_err(net_err)?);
    }
    let mut expose = Vec::new();
    if hc.publish_all {
        for e in &c.config.exposed_ports {
            let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
            if let (Ok(n), Ok(p)) = (port.parse::<u16>(), proto.parse::<berth_net::Protocol>()) {
                expose.push((n, p));
            }
        }
    }
    let mut add_hosts = Vec::new();
    for h in &hc.add_hosts {
        let (name, ip) = split_add_host(h)?;
        add_hosts.push((name.to_string(), ip.to_string()));
    }
    let req = berth_net::AttachRequest {
        container_id: c.id.clone(),
        container_name: c.name.clone(),
        hostname: c.config.hostname.clone(),
        mode: berth_net::NetworkMode::Bridge(endpoints),
        ports,
        publish_all_exposed: expose,
        dns: hc.dns.clone(),
        dns_search: hc.dns_search.clone(),
        add_hosts,
        etc_dir: etc_dir.to_path_buf(),
    };
    let att = open(engine)?.attach(&req).map_err(net_err)?;
    let settings = NetworkSettings {
        netns: att
            .netns_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ports: att
            .ports
            .iter()
            .map(|p| PortRecord {
                host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol.to_string(),
            })
            .collect(),
        endpoints: att
            .endpoints
            .iter()
            .map(|e| EndpointRecord {
                network: e.network.clone(),
                ip: e.ip.to_string(),
                prefix: e.prefix,
                gateway: e.gateway.to_string(),
                mac: e.mac.clone(),
            })
            .collect(),
    };
    Ok(Attached {
        netns: att.netns_path.map(|p| p.to_string_lossy().into_owned()),
        etc_files: etc_files(etc_dir),
        settings,
    })
}

fn split_add_host(h: &str) -> Result<(&str, &str), EngineError> {
    let (name, ip) = h
        .split_once(':')
        .or_else(|| h.split_once('='))
        .ok_or_else(|| {
            EngineError::Invalid(format!("invalid --add-host {h:?}: expected name:ip"))
        })?;
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(EngineError::Invalid(format!(
            "invalid --add-host {h:?}: {ip:?} is not an IP address"
        )));
    }
    Ok((name, ip))
}

const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

fn host_file(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `--add-host name:ip` lines.
fn extra_hosts(hc: &crate::record::HostConfig) -> Result<String, EngineError> {
    let mut s = String::new();
    for h in &hc.add_hosts {
        let (name, ip) = split_add_host(h)?;
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    Ok(s)
}

/// The host's resolv.conf with loopback nameservers dropped (they mean nothing
/// inside a netns), or `--dns`/`--dns-search` when given.
fn host_resolv_conf(hc: &crate::record::HostConfig) -> String {
    let host = host_file("/etc/resolv.conf");
    let mut out = String::new();
    if hc.dns_search.is_empty() {
        for l in host
            .lines()
            .filter(|l| l.starts_with("search ") || l.starts_with("domain "))
        {
            out.push_str(l);
            out.push('\n');
        }
    } else {
        out.push_str(&format!("search {}\n", hc.dns_search.join(" ")));
    }
    if hc.dns.is_empty() {
        for l in host
            .lines()
            .filter(|l| l.starts_with("nameserver ") && !l.contains(" 127.") && !l.contains(" ::1"))
        {
            out.push_str(l);
            out.push('\n');
        }
    } else {
        for d in &hc.dns {
            out.push_str(&format!("nameserver {d}\n"));
        }
    }
    for l in host.lines().filter(|l| l.starts_with("options ")) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn write_etc(
    dir: &std::path::Path,
    hostname: &str,
    hosts: &str,
    resolv: &str,
) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
    for (name, content) in [
        ("hostname", hostname),
        ("hosts", hosts),
        ("resolv.conf", resolv),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, content)
            .map_err(|e| EngineError::io(format!("write {}", p.display()), e))?;
    }
    Ok(())
}

/// Idempotent: veth, rules, leases and the netns file of a bridge-mode container.
pub fn detach(engine: &Engine, c: &Container) -> Result<(), EngineError> {
    match c.host_config.network_mode.as_str() {
        "host" | "none" => Ok(()),
        m if m.starts_with("container:") => Ok(()),
        _ => open(engine)?.detach(&c.id).map_err(net_err),
    }
}

fn etc_files(dir: &std::path::Path) -> Vec<(String, String)> {
    ["hosts", "hostname", "resolv.conf"]
        .iter()
        .filter(|f| dir.join(f).exists())
        .map(|f| {
            (
                format!("/etc/{f}"),
                dir.join(f).to_string_lossy().into_owned(),
            )
        })
        .collect()
}
