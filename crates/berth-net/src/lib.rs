//! berth-net: bridges, veth pairs, IPAM, nftables NAT and published ports, names.
//!
//! berth is daemonless: every `berth` invocation opens [`Net`], acts, and exits.
//! State is in `<state_dir>/state.json` (networks: survives reboots) and
//! `<run_dir>/state.json` (everything, including containers and leases: gone
//! with a reboot, like the kernel objects it describes), under an exclusive
//! flock (see [`state`]); pinned network namespaces are files under
//! `<run_dir>/netns/`.
//! Each operation plans first (names, subnets, leases, host ports: all validated
//! against the locked state and the kernel), records its intent, then acts; on a
//! failure it undoes what it did in reverse and reports the cause together with
//! any cleanup failure.
//!
//! ```ignore
//! let net = Net::open(state_dir /* /var/lib/berth/net */, run_dir /* /run/berth/net */)?;
//! net.create_network(&NetworkSpec { name, subnet, gateway, internal, labels, bridge: None })?;
//! net.list()?; net.inspect(name)?; net.remove_network(name)?; net.prune()?;
//! // engine, before `runtime create`:
//! let att: Attachment = net.attach(&AttachRequest {
//!     container_id, container_name, hostname,
//!     mode: NetworkMode::Bridge(vec![EndpointRequest{ network: "bridge", ip: None, aliases }]) | Host | None | Container(netns_path),
//!     ports: Vec<PortMapping{ host_ip, host_port, container_port, protocol }>,
//!     publish_all_exposed: Vec<(u16, Protocol)>,   // -P: ports to map to ephemeral host ports
//!     dns, dns_search, add_hosts,
//!     etc_dir,   // engine-owned dir; net writes hosts, hostname, resolv.conf here
//! })?;
//! att.netns_path      // Some(path to a bind-mounted netns file) for Bridge/None/Container; None for Host
//! att.endpoints       // [{network, interface "eth0", ip, prefix, gateway, mac}]
//! att.ports           // resolved mappings (ephemeral ports filled in)
//! net.connect(id, "net2", &aliases, None)?; net.disconnect(id, "net2")?;
//! net.ports(id)?;                            // `berth port`
//! net.detach(container_id)?;                 // idempotent: veth, nft rules, lease, netns file
//! net.reconcile(&live_container_ids)?;       // crash recovery: drop anything not in the set
//! net.teardown_all()?;                       // uninstall: bridges, nft table, netns files
//! ```
//!
//! Names: on user-defined networks (every network but the default `bridge`), each
//! member's hosts file lists every other member by container name, aliases and
//! short id, and is rewritten in place whenever membership changes.
//!
//! Same-network container traffic goes veth to veth through an nft netdev
//! `fwd` per host-side veth, past the bridge and bridge netfilter (see
//! [`firewall`]); host veths are named after the bridge and the address. The
//! host's own TCP connections to published ports are redirected at connect()
//! by a cgroup BPF program (`socklb`) instead of being DNATed.
//!
//! Seams: [`driver::LinkDriver`] (Linux bridge here; rootless later) and
//! [`firewall::Firewall`] (nftables here; iptables later).
//!
//! Cost (bench/net_bench.py, `net_timing`; see bench/README.md for a run): an
//! attach on an existing network costs ~1.8 ms of CPU and a detach ~0.5-1 ms;
//! no process is exec'd per container. Published ports are one nf_tables
//! netlink batch ([`firewall`], `nfnetlink`); detach unpins the namespace and
//! leaves deleting the veth pair to the kernel's netns cleanup worker (see
//! `Net::detach`); container records go to the runtime dir only ([`state`]).
//! What remains is kernel work: creating the veth pair (RTNL) and the
//! namespace, about 1 ms each, and the files (state, hosts, hostname,
//! resolv.conf), cheap on tmpfs but 2+ ms on a busy ext4. Wall times on a
//! loaded 2-core host are several times the CPU times. [`timing`] records the
//! phases of attach/detach when enabled.

pub mod driver;
pub mod etc;
pub mod firewall;
pub mod ipam;
mod netlink;
mod netns;
mod nfnetlink;
pub mod ports;
mod socklb;
pub mod state;
pub mod timing;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use driver::{BridgeDriver, LinkDriver};
pub use firewall::{Firewall, FirewallError, Nftables, Ruleset};
pub use ipam::{IpamError, Ipv4Net};
pub use ports::{PortMapping, PortSpecError, Protocol};

use state::{
    ContainerRecord, EndpointRecord, LockedState, NetworkRecord, ReleasingEndpoint, State,
};

/// The predefined network every container joins by default.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Prefix of host-side veth names (orphan detection relies on it).
pub const VETH_PREFIX: &str = "vb";

/// Errors of every berth-net operation.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("open network state in {dir}")]
    State {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "invalid name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]* (bridge devices: at most 15 bytes)"
    )]
    InvalidName(String),
    #[error("network {0} already exists")]
    NetworkExists(String),
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("network {name} has active endpoints: {containers:?}")]
    NetworkInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("bridge device {bridge} is already used by network {network}")]
    BridgeTaken { bridge: String, network: String },
    #[error("subnet {subnet} overlaps {other}")]
    SubnetOverlap { subnet: Ipv4Net, other: String },
    #[error("no free private subnet left for network {0}")]
    NoFreeSubnet(String),
    #[error("gateway {gateway} is not a usable address of subnet {subnet}")]
    BadGateway { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    PortSpec(#[from] PortSpecError),
    #[error("host port {mapping} is not available: {source}")]
    PortInUse {
        mapping: String,
        #[source]
        source: io::Error,
    },
    #[error("host port {mapping} is already published by container {container}")]
    PortPublished { mapping: String, container: String },
    #[error("container {0} is already attached")]
    AlreadyAttached(String),
    #[error("container {0} has no network attachment")]
    NotAttached(String),
    #[error(
        "container {container} has no namespace of its own to connect (host or container mode)"
    )]
    NoOwnNamespace { container: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("{op}")]
    Netlink {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {path}")]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {path}")]
    EtcFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write sysctl {path}")]
    Sysctl {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("{cause} (and cleanup failed: {cleanup})")]
    Rollback {
        cause: Box<NetError>,
        cleanup: String,
    },
}

/// `berth network create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Bridge device name; default `br-<first 12 hex of the network id>`.
    pub bridge: Option<String>,
}

/// A network as shown by `ls`/`inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub containers: Vec<NetworkMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkMember {
    pub container_id: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    pub network: String,
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// One endpoint per entry, eth0, eth1, ... in order; eth0 carries the default route.
    Bridge(Vec<EndpointRequest>),
    Host,
    /// A namespace with only `lo`.
    None,
    /// Join another container's namespace file; berth-net creates nothing.
    Container(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    pub hostname: String,
    pub mode: NetworkMode,
    pub ports: Vec<PortMapping>,
    pub publish_all_exposed: Vec<(u16, Protocol)>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    /// `--add-host name:ip` as (name, ip).
    pub add_hosts: Vec<(String, String)>,
    /// Engine-owned directory for hosts, hostname, resolv.conf (created if missing).
    pub etc_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub interface: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub netns_path: Option<PathBuf>,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<PortMapping>,
}

/// Host-specific choices; tests override all of them.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// nftables table (family `ip`).
    pub table: String,
    /// Device of the default `bridge` network.
    pub default_bridge: String,
    /// Candidates for automatically chosen subnets, tried in order.
    pub subnet_pool: Vec<Ipv4Net>,
}

impl Default for NetOptions {
    fn default() -> Self {
        // docker's 172.17-31/16 first (familiar), then podman-style 10.88+/16.
        let mut pool: Vec<Ipv4Net> = (17..=31)
            .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok())
            .collect();
        pool.extend((88..=99).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16).ok()));
        NetOptions {
            table: "berth".into(),
            default_bridge: "berth0".into(),
            subnet_pool: pool,
        }
    }
}

/// Handle on berth's networking state; cheap to open, holds no lock between calls.
pub struct Net {
    state_dir: PathBuf,
    run_dir: PathBuf,
    options: NetOptions,
    driver: Box<dyn LinkDriver>,
    firewall: Box<dyn Firewall>,
}

impl Net {
    pub fn open(
        state_dir: impl Into<PathBuf>,
        run_dir: impl Into<PathBuf>,
    ) -> Result<Net, NetError> {
        Net::open_with(state_dir, run_dir, NetOptions::default())
    }

    pub fn open_with(
        state_dir: impl Into<PathBuf>,
        run_dir: impl Into<PathBuf>,
        options: NetOptions,
    ) -> Result<Net, NetError> {
        let state_dir = state_dir.into();
        fs::create_dir_all(&state_dir).map_err(|source| NetError::State {
            dir: state_dir.clone(),
            source,
        })?;
        let firewall = Box::new(Nftables {
            table: options.table.clone(),
        });
        Ok(Net {
            state_dir,
            run_dir: run_dir.into(),
            options,
            driver: Box::new(BridgeDriver::default()),
            firewall,
        })
    }

    /// Replaces the link driver / firewall backend (rootless, iptables, fakes).
    pub fn with_backends(
        mut self,
        driver: Box<dyn LinkDriver>,
        firewall: Box<dyn Firewall>,
    ) -> Net {
        self.driver = driver;
        self.firewall = firewall;
        self
    }

    fn lock(&self) -> Result<LockedState, NetError> {
        LockedState::open_split(&self.state_dir, &self.run_dir).map_err(|source| NetError::State {
            dir: self.state_dir.clone(),
            source,
        })
    }

    fn save(&self, st: &LockedState) -> Result<(), NetError> {
        st.save().map_err(|source| NetError::State {
            dir: self.state_dir.clone(),
            source,
        })
    }

    /// Saves after a container change (no fsync in single-file mode; in the
    /// split mode `Net` uses, the disk file is only rewritten if networks changed).
    fn save_fast(&self, st: &LockedState) -> Result<(), NetError> {
        st.save_unsynced().map_err(|source| NetError::State {
            dir: self.state_dir.clone(),
            source,
        })
    }

    fn netns_dir(&self) -> PathBuf {
        self.run_dir.join("netns")
    }

    // ---------------------------------------------------------------- networks

    pub fn create_network(&self, spec: &NetworkSpec) -> Result<Network, NetError> {
        let mut st = self.lock()?;
        let rec = self.plan_network(&st.state, spec)?;
        st.state.networks.insert(rec.name.clone(), rec.clone());
        self.realise_network(&mut st, &rec)?;
        Ok(to_network(&st.state, &rec))
    }

    /// Validates a spec against the state and the host routes; no effects.
    fn plan_network(&self, st: &State, spec: &NetworkSpec) -> Result<NetworkRecord, NetError> {
        validate_name(&spec.name)?;
        if st.networks.contains_key(&spec.name) {
            return Err(NetError::NetworkExists(spec.name.clone()));
        }
        let id = random_id();
        let bridge = spec
            .bridge
            .clone()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ', '"']) {
            return Err(NetError::InvalidName(bridge));
        }
        if let Some(n) = st.networks.values().find(|n| n.bridge == bridge) {
            return Err(NetError::BridgeTaken {
                bridge,
                network: n.name.clone(),
            });
        }
        let routes = self.driver.host_routes()?;
        let subnet = match spec.subnet {
            Some(s) => {
                check_subnet_free(st, &routes, s)?;
                s
            }
            None => self
                .options
                .subnet_pool
                .iter()
                .copied()
                .find(|s| check_subnet_free(st, &routes, *s).is_ok())
                .ok_or_else(|| NetError::NoFreeSubnet(spec.name.clone()))?,
        };
        let gateway = spec.gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.contains(gateway) || gateway == subnet.network() || gateway == subnet.broadcast()
        {
            return Err(NetError::BadGateway { gateway, subnet });
        }
        Ok(NetworkRecord {
            name: spec.name.clone(),
            id,
            bridge,
            subnet,
            gateway,
            internal: spec.internal,
            labels: spec.labels.clone(),
            leases: BTreeMap::new(),
        })
    }

    /// Records, then creates the bridge and rules; undoes both on failure.
    fn realise_network(&self, st: &mut LockedState, rec: &NetworkRecord) -> Result<(), NetError> {
        self.save(st)?;
        let result = (|| {
            self.driver.ensure_network(rec)?;
            if !rec.internal {
                self.enable_forwarding(st)?;
            }
            self.sync_firewall(st, false)
        })();
        if let Err(cause) = result {
            let mut cleanup = Vec::new();
            if let Err(e) = self.driver.remove_network(rec) {
                cleanup.push(e.to_string());
            }
            st.state.networks.remove(&rec.name);
            if let Err(e) = self.save(st) {
                cleanup.push(e.to_string());
            }
            return Err(with_cleanup(cause, cleanup));
        }
        self.save(st)
    }

    fn enable_forwarding(&self, st: &mut LockedState) -> Result<(), NetError> {
        const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
        let now = fs::read_to_string(PATH).map_err(|source| NetError::Sysctl {
            path: PATH.into(),
            source,
        })?;
        if now.trim() != "1" {
            if st.state.ip_forward_before.is_none() {
                st.state.ip_forward_before = Some(now.trim().to_string());
            }
            driver::write_sysctl(PATH, "1")?;
        }
        Ok(())
    }

    /// Makes sure the default network exists in state and on the host.
    fn ensure_default(&self, st: &mut LockedState) -> Result<(), NetError> {
        if st.state.networks.contains_key(DEFAULT_NETWORK) {
            return Ok(());
        }
        let spec = NetworkSpec {
            name: DEFAULT_NETWORK.into(),
            bridge: Some(self.options.default_bridge.clone()),
            ..NetworkSpec::default()
        };
        let rec = self.plan_network(&st.state, &spec)?;
        st.state.networks.insert(rec.name.clone(), rec.clone());
        self.realise_network(st, &rec)
    }

    pub fn list(&self) -> Result<Vec<Network>, NetError> {
        let st = self.lock()?;
        Ok(st
            .state
            .networks
            .values()
            .map(|n| to_network(&st.state, n))
            .collect())
    }

    pub fn inspect(&self, name: &str) -> Result<Network, NetError> {
        let st = self.lock()?;
        let n = st
            .state
            .networks
            .get(name)
            .ok_or_else(|| NetError::NoSuchNetwork(name.into()))?;
        Ok(to_network(&st.state, n))
    }

    pub fn remove_network(&self, name: &str) -> Result<(), NetError> {
        if name == DEFAULT_NETWORK {
            return Err(NetError::Predefined(name.into()));
        }
        let mut st = self.lock()?;
        self.remove_network_locked(&mut st, name)
    }

    fn remove_network_locked(&self, st: &mut LockedState, name: &str) -> Result<(), NetError> {
        let rec = st
            .state
            .networks
            .get(name)
            .cloned()
            .ok_or_else(|| NetError::NoSuchNetwork(name.into()))?;
        let users = members(&st.state, name);
        if !users.is_empty() {
            return Err(NetError::NetworkInUse {
                name: name.into(),
                containers: users,
            });
        }
        // Device first: if that fails nothing has changed. Rules match interface
        // names, so they may outlive the device for the moment in between.
        self.driver.remove_network(&rec)?;
        let (gone, keep) = std::mem::take(&mut st.state.releasing)
            .into_iter()
            .partition(|r| r.endpoint.network == name);
        st.state.releasing = keep;
        for r in gone {
            // Unenslaved by the bridge's removal; delete it if something still
            // holds its namespace (best effort: reconcile catches the rest).
            let _ = self.driver.remove_endpoint(&r.endpoint);
        }
        st.state.networks.remove(name);
        self.sync_firewall(st, false)?;
        self.save(st)
    }

    /// Removes every user network without endpoints; returns their names.
    pub fn prune(&self) -> Result<Vec<String>, NetError> {
        let mut st = self.lock()?;
        let unused: Vec<String> = st
            .state
            .networks
            .keys()
            .filter(|n| n.as_str() != DEFAULT_NETWORK && members(&st.state, n).is_empty())
            .cloned()
            .collect();
        for n in &unused {
            self.remove_network_locked(&mut st, n)?;
        }
        Ok(unused)
    }

    // -------------------------------------------------------------- containers

    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment, NetError> {
        // The id names a file under run_dir: no separators, no dot-dot.
        validate_name(&req.container_id)?;
        timing::start();
        let mut st = self.lock()?;
        timing::mark("lock+load state");
        if st.state.containers.contains_key(&req.container_id) {
            return Err(NetError::AlreadyAttached(req.container_id.clone()));
        }
        let netns_path = self.netns_dir().join(&req.container_id);
        let eps = match &req.mode {
            NetworkMode::Container(path) => {
                return Ok(Attachment {
                    netns_path: Some(path.clone()),
                    endpoints: vec![],
                    ports: vec![],
                })
            }
            NetworkMode::Host => {
                self.write_host_mode_etc(req)?;
                return Ok(Attachment {
                    netns_path: None,
                    endpoints: vec![],
                    ports: vec![],
                });
            }
            NetworkMode::None => &[][..],
            NetworkMode::Bridge(eps) => &eps[..],
        };

        // Plan: host ports, networks, addresses. Nothing on the host changes yet
        // (except creating the default network, which is kept either way).
        let ports = if eps.is_empty() {
            Vec::new()
        } else {
            let wanted = req
                .ports
                .iter()
                .copied()
                .chain(
                    req.publish_all_exposed
                        .iter()
                        .map(|(p, proto)| PortMapping {
                            host_ip: None,
                            host_port: 0,
                            container_port: *p,
                            protocol: *proto,
                        }),
                );
            resolve_ports(&st.state, wanted)?
        };
        if eps.iter().any(|e| e.network == DEFAULT_NETWORK) {
            self.ensure_default(&mut st)?;
        }
        let wanted: Vec<(String, Ipv4Addr)> = eps
            .iter()
            .filter_map(|e| e.ip.map(|ip| (e.network.clone(), ip)))
            .collect();
        self.settle_releasing(&mut st.state, &wanted);
        let mut rec = ContainerRecord {
            id: req.container_id.clone(),
            name: req.container_name.clone(),
            hostname: req.hostname.clone(),
            netns: Some(netns_path.clone()),
            etc_dir: Some(req.etc_dir.clone()),
            endpoints: Vec::new(),
            ports,
            add_hosts: req.add_hosts.clone(),
        };
        for ep in eps {
            let ip = plan_lease(&mut st.state, &req.container_id, &ep.network, ep.ip)?;
            if rec.endpoints.iter().any(|e| e.network == ep.network) {
                return Err(NetError::AlreadyConnected {
                    container: req.container_id.clone(),
                    network: ep.network.clone(),
                });
            }
            let interface = format!("eth{}", rec.endpoints.len());
            let bridge = &network(&st.state, &ep.network)?.bridge;
            rec.endpoints.push(endpoint_record(
                &ep.network,
                bridge,
                interface,
                ip,
                &ep.aliases,
            ));
        }
        let id = req.container_id.clone();
        st.state.containers.insert(id.clone(), rec.clone());
        timing::mark("plan (ports, leases)");
        self.save_fast(&st)?;
        timing::mark("save state");

        // Act. Ordering: namespace before veths (the peer is created inside it);
        // firewall after the addresses exist; hosts files last (they name peers).
        let result = (|| -> Result<(), NetError> {
            prepare_netns_dir(&self.netns_dir())?;
            // The id has no record, so a file at its path is a crash leftover.
            netns::remove(&netns_path).map_err(|source| NetError::Netns {
                path: netns_path.clone(),
                source,
            })?;
            timing::mark("netns dir + stale check");
            let mut c = netns::create(&netns_path).map_err(|source| NetError::Netns {
                path: netns_path.clone(),
                source,
            })?;
            timing::mark("netns create + bind mount");
            driver::set_loopback_up(&mut c)?;
            timing::mark("lo up");
            netns::hand_off(&netns_path, c);
            let added = rec.endpoints.iter().enumerate().try_for_each(|(i, ep)| {
                let net = network(&st.state, &ep.network)?;
                self.driver.add_endpoint(&netns_path, net, ep, i == 0)
            });
            netns::drop_hand_off();
            added?;
            let ports = container_ports(&st.state.networks, &rec);
            self.update_firewall(&mut st, &ports, &[], false)?;
            timing::mark("firewall");
            self.shortcuts(&st.state, &id, &rec.endpoints, &[]);
            timing::mark("shortcuts");
            self.write_etc(&st.state, &id, req)?;
            self.update_peer_hosts(&st.state, &id, &rec.endpoints);
            timing::mark("etc files");
            Ok(())
        })();
        if let Err(cause) = result {
            let cleanup = self.undo_container(&mut st, &id, false);
            return Err(with_cleanup(cause, cleanup));
        }
        Ok(attachment(&st.state, &rec))
    }

    /// Everything berth-net knows about a container's attachment, if any.
    pub fn attachment(&self, container_id: &str) -> Result<Option<Attachment>, NetError> {
        let st = self.lock()?;
        Ok(st
            .state
            .containers
            .get(container_id)
            .map(|r| attachment(&st.state, r)))
    }

    /// `berth port`: the resolved published ports of a container.
    pub fn ports(&self, container_id: &str) -> Result<Vec<PortMapping>, NetError> {
        let st = self.lock()?;
        Ok(st
            .state
            .containers
            .get(container_id)
            .map(|r| r.ports.clone())
            .unwrap_or_default())
    }

    /// Removes veths, rules, leases and the namespace file; fine to call twice.
    /// Published-port elements stop matching at the next clock tick; the veths
    /// are deleted by the kernel with the namespace, shortly after this returns
    /// (see `undo_container` for what happens if something still holds it).
    pub fn detach(&self, container_id: &str) -> Result<(), NetError> {
        timing::start();
        let mut st = self.lock()?;
        timing::mark("lock+load state");
        let errors = self.undo_container(&mut st, container_id, false);
        // A namespace file without a record (crash between create and save) goes too.
        let stray = netns::remove(&self.netns_dir().join(container_id));
        timing::mark("stray netns check");
        match (errors.is_empty(), stray) {
            (true, Ok(())) => Ok(()),
            (_, Err(source)) => Err(NetError::Netns {
                path: self.netns_dir().join(container_id),
                source,
            }),
            (false, Ok(())) => Err(NetError::Rollback {
                cause: Box::new(NetError::NotAttached(container_id.into())),
                cleanup: errors.join("; "),
            }),
        }
    }

    /// Best-effort removal of everything of one container; returns failures.
    ///
    /// With `wait_links` false, the veths of a container whose namespace berth
    /// pinned are not deleted one by one: unpinning the namespace (its last
    /// reference once the container's processes are gone) makes the kernel's
    /// netns cleanup worker delete them, pairs included, asynchronously. Deleting
    /// a veth ourselves holds RTNL through several RCU grace periods (15-30 ms on
    /// this host); the worker does the same work off our critical path and
    /// batches it. Until the veth is gone its endpoint stays in
    /// `State::releasing` and its address is not handed out again; if something
    /// still holds the namespace (a process left in it, a `container:` peer) the
    /// next attach or connect after [`RELEASE_GRACE_MS`] deletes the veth itself,
    /// as do `reconcile` and `teardown_all`.
    fn undo_container(&self, st: &mut LockedState, id: &str, wait_links: bool) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(rec) = st.state.containers.remove(id) else {
            return errors;
        };
        let unpin = !wait_links && rec.netns.is_some();
        // While the veths exist (the shortcut elements are named by ifindex).
        self.shortcuts(&st.state, id, &[], &rec.endpoints);
        timing::mark("shortcuts");
        for ep in &rec.endpoints {
            if unpin {
                st.state.releasing.push(ReleasingEndpoint {
                    endpoint: ep.clone(),
                    since_ms: now_ms(),
                });
            } else if let Err(e) = self.driver.remove_endpoint(ep) {
                errors.push(e.to_string());
            }
            release_lease(&mut st.state, &ep.network, ep.ip, id);
        }
        timing::mark("remove veths");
        if let (false, Some(path)) = (unpin, &rec.netns) {
            if let Err(e) = netns::remove(path) {
                errors.push(format!("remove {}: {e}", path.display()));
            }
        }
        if let Err(e) = self.save_fast(st) {
            errors.push(e.to_string());
        }
        timing::mark("save state");
        let ports = container_ports(&st.state.networks, &rec);
        if let Err(e) = self.update_firewall(st, &[], &ports, false) {
            errors.push(e.to_string());
        }
        timing::mark("firewall");
        self.update_peer_hosts(&st.state, id, &rec.endpoints);
        timing::mark("peer hosts");
        // Unpin last: the teardown it starts runs in a kernel worker that would
        // compete with the steps above for the CPU. A crash before this line
        // leaves a pinned namespace file, which detach/reconcile remove.
        if let (true, Some(path)) = (unpin, &rec.netns) {
            if let Err(e) = netns::remove(path) {
                errors.push(format!("remove {}: {e}", path.display()));
                for ep in &rec.endpoints {
                    if let Err(e) = self.driver.remove_endpoint(ep) {
                        errors.push(e.to_string());
                    }
                }
            }
            timing::mark("netns unmount");
        }
        errors
    }

    /// Connects a running container (own namespace) to one more network.
    pub fn connect(
        &self,
        container_id: &str,
        network_name: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<Endpoint, NetError> {
        let mut st = self.lock()?;
        if network_name == DEFAULT_NETWORK {
            self.ensure_default(&mut st)?;
        }
        let rec = st
            .state
            .containers
            .get(container_id)
            .cloned()
            .ok_or_else(|| NetError::NotAttached(container_id.into()))?;
        let netns_path = rec.netns.clone().ok_or_else(|| NetError::NoOwnNamespace {
            container: container_id.into(),
        })?;
        network(&st.state, network_name)?;
        if rec.endpoints.iter().any(|e| e.network == network_name) {
            return Err(NetError::AlreadyConnected {
                container: container_id.into(),
                network: network_name.into(),
            });
        }
        let wanted: Vec<(String, Ipv4Addr)> = ip
            .map(|ip| (network_name.to_string(), ip))
            .into_iter()
            .collect();
        self.settle_releasing(&mut st.state, &wanted);
        let ip = plan_lease(&mut st.state, container_id, network_name, ip)?;
        let n = (0..)
            .find(|n| {
                !rec.endpoints
                    .iter()
                    .any(|e| e.interface == format!("eth{n}"))
            })
            .unwrap_or(0);
        let ep = endpoint_record(
            network_name,
            &network(&st.state, network_name)?.bridge,
            format!("eth{n}"),
            ip,
            aliases,
        );
        let first = rec.endpoints.is_empty();
        if let Some(r) = st.state.containers.get_mut(container_id) {
            r.endpoints.push(ep.clone());
        }
        self.save_fast(&st)?;
        let result = (|| -> Result<(), NetError> {
            let net = network(&st.state, network_name)?;
            self.driver.add_endpoint(&netns_path, net, &ep, first)?;
            if first {
                let now = st
                    .state
                    .containers
                    .get(container_id)
                    .map(|c| container_ports(&st.state.networks, c))
                    .unwrap_or_default();
                self.update_firewall(&mut st, &now, &[], false)?;
            }
            self.shortcuts(&st.state, container_id, std::slice::from_ref(&ep), &[]);
            self.rewrite_hosts(&st.state, container_id);
            self.update_peer_hosts(&st.state, container_id, std::slice::from_ref(&ep));
            Ok(())
        })();
        if let Err(cause) = result {
            let mut cleanup = Vec::new();
            if let Err(e) = self.driver.remove_endpoint(&ep) {
                cleanup.push(e.to_string());
            }
            release_lease(&mut st.state, network_name, ip, container_id);
            if let Some(r) = st.state.containers.get_mut(container_id) {
                r.endpoints.retain(|e| e.network != network_name);
            }
            if let Err(e) = self.save_fast(&st) {
                cleanup.push(e.to_string());
            }
            return Err(with_cleanup(cause, cleanup));
        }
        Ok(to_endpoint(&st.state, &ep))
    }

    pub fn disconnect(&self, container_id: &str, network_name: &str) -> Result<(), NetError> {
        let mut st = self.lock()?;
        network(&st.state, network_name)?;
        let rec = st
            .state
            .containers
            .get_mut(container_id)
            .ok_or_else(|| NetError::NotAttached(container_id.into()))?;
        let pos = rec
            .endpoints
            .iter()
            .position(|e| e.network == network_name)
            .ok_or_else(|| NetError::NotConnected {
                container: container_id.into(),
                network: network_name.into(),
            })?;
        let before = container_ports(&st.state.networks, rec);
        let ep = rec.endpoints.remove(pos);
        let after = container_ports(&st.state.networks, rec);
        self.shortcuts(&st.state, container_id, &[], std::slice::from_ref(&ep));
        self.driver.remove_endpoint(&ep)?;
        release_lease(&mut st.state, network_name, ep.ip, container_id);
        self.save_fast(&st)?;
        if before != after {
            self.update_firewall(&mut st, &after, &before, false)?;
        }
        self.rewrite_hosts(&st.state, container_id);
        self.update_peer_hosts(&st.state, container_id, std::slice::from_ref(&ep));
        Ok(())
    }

    /// Crash recovery: removes every container not in `live`, stray namespace
    /// files and veths, and re-installs the firewall table.
    pub fn reconcile<I, S>(&self, live: I) -> Result<(), NetError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let live: HashSet<String> = live.into_iter().map(|s| s.as_ref().to_string()).collect();
        let mut st = self.lock()?;
        let dead: Vec<String> = st
            .state
            .containers
            .keys()
            .filter(|id| !live.contains(*id))
            .cloned()
            .collect();
        let mut errors = Vec::new();
        for id in dead {
            errors.extend(self.undo_container(&mut st, &id, false));
        }
        let known_ns: HashSet<PathBuf> = st
            .state
            .containers
            .values()
            .filter_map(|c| c.netns.clone())
            .collect();
        for path in netns::list(&self.netns_dir()).map_err(|source| NetError::Netns {
            path: self.netns_dir(),
            source,
        })? {
            let id = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if !known_ns.contains(&path) && !live.contains(&id) {
                if let Err(e) = netns::remove(&path) {
                    errors.push(format!("remove {}: {e}", path.display()));
                }
            }
        }
        let veths: Vec<String> = st
            .state
            .containers
            .values()
            .flat_map(|c| c.endpoints.iter().map(|e| e.host_veth.clone()))
            .collect();
        let bridges: Vec<String> = st
            .state
            .networks
            .values()
            .map(|n| n.bridge.clone())
            .collect();
        // Lingering veths of detached containers are orphans too by now.
        if let Err(e) = self.driver.remove_orphans(&veths, &bridges) {
            errors.push(e.to_string());
        }
        st.state.releasing.clear();
        if let Err(e) = self.save(&st) {
            errors.push(e.to_string());
        }
        self.sync_firewall(&mut st, true)?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(NetError::Rollback {
                cause: Box::new(NetError::NotAttached("stale containers".into())),
                cleanup: errors.join("; "),
            })
        }
    }

    /// Uninstall: removes every endpoint, bridge, namespace file, the firewall
    /// table and the state, and restores `ip_forward`.
    pub fn teardown_all(&self) -> Result<(), NetError> {
        let mut st = self.lock()?;
        let mut errors = Vec::new();
        let ids: Vec<String> = st.state.containers.keys().cloned().collect();
        for id in ids {
            errors.extend(self.undo_container(&mut st, &id, true));
        }
        for r in std::mem::take(&mut st.state.releasing) {
            if let Err(e) = self.driver.remove_endpoint(&r.endpoint) {
                errors.push(e.to_string());
            }
        }
        for n in st.state.networks.values() {
            if let Err(e) = self.driver.remove_network(n) {
                errors.push(e.to_string());
            }
        }
        if let Err(e) = self.firewall.teardown() {
            errors.push(e.to_string());
        }
        if let Ok(paths) = netns::list(&self.netns_dir()) {
            for p in paths {
                if let Err(e) = netns::remove(&p) {
                    errors.push(format!("remove {}: {e}", p.display()));
                }
            }
        }
        if let Err(e) = netns::release_dir(&self.netns_dir()) {
            errors.push(format!("unmount {}: {e}", self.netns_dir().display()));
        }
        if let Some(v) = st.state.ip_forward_before.take() {
            if let Err(e) = driver::write_sysctl("/proc/sys/net/ipv4/ip_forward", &v) {
                errors.push(e.to_string());
            }
        }
        st.state = State::default();
        if let Err(e) = self.save(&st) {
            errors.push(e.to_string());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(NetError::Rollback {
                cause: Box::new(NetError::NotAttached("teardown".into())),
                cleanup: errors.join("; "),
            })
        }
    }

    // ---------------------------------------------------------------- helpers

    /// Forgets releasing endpoints whose veth is gone; deletes (synchronously)
    /// those that outlived [`RELEASE_GRACE_MS`] (something holds their
    /// namespace) or whose address is wanted again in `wanted`. Addresses of
    /// the remaining ones are not allocated (see `plan_lease`).
    fn settle_releasing(&self, st: &mut State, wanted: &[(String, Ipv4Addr)]) {
        if st.releasing.is_empty() {
            return;
        }
        let now = now_ms();
        st.releasing.retain(|r| {
            let ep = &r.endpoint;
            if !self.driver.endpoint_exists(ep) {
                return false;
            }
            let claimed = wanted
                .iter()
                .any(|(n, ip)| *n == ep.network && *ip == ep.ip);
            if claimed || now.saturating_sub(r.since_ms) > RELEASE_GRACE_MS {
                return self.driver.remove_endpoint(ep).is_err();
            }
            true
        });
    }

    /// Re-installs the whole firewall table when the networks changed since the
    /// last full install (or after a reboot, or when `force`).
    fn sync_firewall(&self, st: &mut LockedState, force: bool) -> Result<(), NetError> {
        self.update_firewall(st, &[], &[], force)
    }

    /// Brings the firewall in line with the state: a full install when the
    /// networks changed, else only the port delta `add`/`remove`. A failed delta
    /// (someone edited the table) falls back to a full install.
    fn update_firewall(
        &self,
        st: &mut LockedState,
        add: &[firewall::FirewallPort],
        remove: &[firewall::FirewallPort],
        force: bool,
    ) -> Result<(), NetError> {
        let rules = ruleset(&st.state);
        let fingerprint = format!(
            "{}:{:016x}",
            boot_id(),
            // The layout version makes an upgraded berth re-install its table once.
            fnv1a(format!("v3{:?}{}", rules.networks, self.options.table).as_bytes())
        );
        if force || st.state.firewall_applied.as_deref() != Some(fingerprint.as_str()) {
            self.firewall.apply(&rules)?;
            st.state.firewall_applied = Some(fingerprint);
            return self.save(st);
        }
        if self.firewall.publish(add, remove).is_err() {
            self.firewall.apply(&rules)?;
        }
        Ok(())
    }

    /// Adds and removes same-network shortcuts (see `firewall`) for endpoints
    /// of container `id`. Best effort: without one, frames take the bridge.
    fn shortcuts(&self, st: &State, id: &str, add: &[EndpointRecord], remove: &[EndpointRecord]) {
        let add = shortcut_endpoints(st, id, add);
        let remove = shortcut_endpoints(st, id, remove);
        // An error leaves the slower path through the bridge, which works.
        let _ = self.firewall.shortcut(&add, &remove);
    }

    fn write_etc(&self, st: &State, id: &str, req: &AttachRequest) -> Result<(), NetError> {
        let dir = &req.etc_dir;
        fs::create_dir_all(dir).map_err(|source| NetError::EtcFile {
            path: dir.clone(),
            source,
        })?;
        let write = |name: &str, content: &str| {
            let path = dir.join(name);
            etc::write_in_place(&path, content).map_err(|source| NetError::EtcFile { path, source })
        };
        write("hostname", &format!("{}\n", req.hostname))?;
        write("hosts", &hosts_for(st, id))?;
        write(
            "resolv.conf",
            &etc::render_resolv(
                &req.dns,
                &req.dns_search,
                &read_host_file("/etc/resolv.conf"),
            ),
        )
    }

    fn write_host_mode_etc(&self, req: &AttachRequest) -> Result<(), NetError> {
        let dir = &req.etc_dir;
        fs::create_dir_all(dir).map_err(|source| NetError::EtcFile {
            path: dir.clone(),
            source,
        })?;
        let write = |name: &str, content: &str| {
            let path = dir.join(name);
            etc::write_in_place(&path, content).map_err(|source| NetError::EtcFile { path, source })
        };
        let mut hosts = read_host_file("/etc/hosts");
        for (name, ip) in &req.add_hosts {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        write("hostname", &format!("{}\n", req.hostname))?;
        write("hosts", &hosts)?;
        write(
            "resolv.conf",
            &etc::render_resolv(
                &req.dns,
                &req.dns_search,
                &read_host_file("/etc/resolv.conf"),
            ),
        )
    }

    /// Rewrites one container's hosts file in place; a missing etc dir (container
    /// being removed) is not an error worth failing a peer's operation for.
    fn rewrite_hosts(&self, st: &State, id: &str) {
        if let Some(dir) = st.containers.get(id).and_then(|c| c.etc_dir.as_ref()) {
            if dir.is_dir() {
                let _ = etc::write_in_place(&dir.join("hosts"), &hosts_for(st, id));
            }
        }
    }

    /// Rewrites the hosts files of everyone sharing a user network with `eps`.
    fn update_peer_hosts(&self, st: &State, id: &str, eps: &[EndpointRecord]) {
        let nets: BTreeSet<&str> = eps
            .iter()
            .map(|e| e.network.as_str())
            .filter(|n| *n != DEFAULT_NETWORK)
            .collect();
        for peer in st.containers.values() {
            if peer.id != id
                && peer
                    .endpoints
                    .iter()
                    .any(|e| nets.contains(e.network.as_str()))
            {
                self.rewrite_hosts(st, &peer.id);
            }
        }
    }
}

// -------------------------------------------------------------- pure planning

fn validate_name(name: &str) -> Result<(), NetError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidName(name.into()))
    }
}

fn check_subnet_free(st: &State, routes: &[(Ipv4Addr, u8)], s: Ipv4Net) -> Result<(), NetError> {
    if let Some(n) = st.networks.values().find(|n| n.subnet.overlaps(&s)) {
        return Err(NetError::SubnetOverlap {
            subnet: s,
            other: format!("network {} ({})", n.name, n.subnet),
        });
    }
    if let Some((d, p)) = routes.iter().find(|(d, p)| s.overlaps_route(*d, *p)) {
        return Err(NetError::SubnetOverlap {
            subnet: s,
            other: format!("host route {d}/{p}"),
        });
    }
    Ok(())
}

fn network<'a>(st: &'a State, name: &str) -> Result<&'a NetworkRecord, NetError> {
    st.networks
        .get(name)
        .ok_or_else(|| NetError::NoSuchNetwork(name.into()))
}

fn members(st: &State, network: &str) -> Vec<String> {
    st.containers
        .values()
        .filter(|c| c.endpoints.iter().any(|e| e.network == network))
        .map(|c| c.id.clone())
        .collect()
}

/// Reserves an address for `id` on `network` in the in-memory state.
/// Addresses of still-existing veths of detached containers are skipped.
fn plan_lease(
    st: &mut State,
    id: &str,
    network_name: &str,
    ip: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, NetError> {
    let lingering: Vec<Ipv4Addr> = st
        .releasing
        .iter()
        .filter(|r| r.endpoint.network == network_name)
        .map(|r| r.endpoint.ip)
        .collect();
    let net = st
        .networks
        .get_mut(network_name)
        .ok_or_else(|| NetError::NoSuchNetwork(network_name.into()))?;
    let ip = match ip {
        Some(ip) => {
            ipam::validate_static(&net.name, net.subnet, net.gateway, &net.leases, ip)?;
            ip
        }
        None if lingering.is_empty() => {
            ipam::allocate(&net.name, net.subnet, net.gateway, &net.leases)?
        }
        None => {
            let mut taken = net.leases.clone();
            taken.extend(lingering.into_iter().map(|ip| (ip, String::new())));
            ipam::allocate(&net.name, net.subnet, net.gateway, &taken)?
        }
    };
    net.leases.insert(ip, id.to_string());
    Ok(ip)
}

fn release_lease(st: &mut State, network: &str, ip: Ipv4Addr, id: &str) {
    if let Some(n) = st.networks.get_mut(network) {
        if n.leases.get(&ip).map(String::as_str) == Some(id) {
            n.leases.remove(&ip);
        }
    }
}

/// The record of a new endpoint. The host veth is named after the bridge (16
/// bits of its hash) and the address, so the name is free whenever the address
/// is: an address is not leased again while a previous holder's veth may still
/// exist (`State::releasing`), and the shortcut chain of that name (see
/// `firewall`) is reused by the next holder. Other berth instances on the host
/// use other bridges and subnets.
fn endpoint_record(
    network: &str,
    bridge: &str,
    interface: String,
    ip: Ipv4Addr,
    aliases: &[String],
) -> EndpointRecord {
    let h = fnv1a(bridge.as_bytes()) & 0xffff;
    EndpointRecord {
        network: network.into(),
        interface,
        host_veth: format!("{VETH_PREFIX}{h:04x}{:08x}", u32::from(ip)),
        ip,
        mac: ipam::format_mac(&ipam::mac_for(ip)),
        aliases: aliases.to_vec(),
    }
}

/// Checks every wanted mapping against published ports and the kernel, and
/// fills in ephemeral host ports. No effects beyond short-lived probe sockets.
fn resolve_ports(
    st: &State,
    wanted: impl Iterator<Item = PortMapping>,
) -> Result<Vec<PortMapping>, NetError> {
    let mut taken: Vec<(PortMapping, String)> = st
        .containers
        .values()
        .flat_map(|c| c.ports.iter().map(|p| (*p, c.id.clone())))
        .collect();
    let mut out = Vec::new();
    for mut m in wanted {
        if m.host_port == 0 {
            // Let the kernel pick a free port; retry if berth already publishes it.
            let mut tries = 0;
            loop {
                let port = ports::probe_bind(m.host_ip, 0, m.protocol).map_err(|source| {
                    NetError::PortInUse {
                        mapping: m.to_string(),
                        source,
                    }
                })?;
                let cand = PortMapping {
                    host_port: port,
                    ..m
                };
                if !taken.iter().any(|(t, _)| t.conflicts_with(&cand)) {
                    m = cand;
                    break;
                }
                tries += 1;
                if tries > 64 {
                    return Err(NetError::PortInUse {
                        mapping: m.to_string(),
                        source: io::Error::from(io::ErrorKind::AddrInUse),
                    });
                }
            }
        } else {
            if let Some((_, c)) = taken.iter().find(|(t, _)| t.conflicts_with(&m)) {
                return Err(NetError::PortPublished {
                    mapping: m.to_string(),
                    container: c.clone(),
                });
            }
            ports::probe_bind(m.host_ip, m.host_port, m.protocol).map_err(|source| {
                NetError::PortInUse {
                    mapping: m.to_string(),
                    source,
                }
            })?;
        }
        taken.push((m, String::new()));
        out.push(m);
    }
    Ok(out)
}

/// The firewall state implied by the records: published ports go to the
/// container's first endpoint.
fn ruleset(st: &State) -> Ruleset {
    let networks = st
        .networks
        .values()
        .map(|n| firewall::FirewallNetwork {
            name: n.name.clone(),
            bridge: n.bridge.clone(),
            subnet: n.subnet,
            gateway: n.gateway,
            internal: n.internal,
        })
        .collect();
    let ports = st
        .containers
        .values()
        .flat_map(|c| container_ports(&st.networks, c))
        .collect();
    let endpoints = st
        .containers
        .values()
        .flat_map(|c| shortcut_endpoints(st, &c.id, &c.endpoints))
        .collect();
    Ruleset {
        networks,
        ports,
        endpoints,
    }
}

/// The same-network shortcut view of a container's endpoints.
fn shortcut_endpoints(
    st: &State,
    id: &str,
    eps: &[EndpointRecord],
) -> Vec<firewall::FirewallEndpoint> {
    eps.iter()
        .filter_map(|e| {
            let net = st.networks.get(&e.network)?;
            Some(firewall::FirewallEndpoint {
                container_id: id.to_string(),
                bridge: net.bridge.clone(),
                host_veth: e.host_veth.clone(),
                mac: ipam::mac_for(e.ip),
            })
        })
        .collect()
}

/// A container's published ports, aimed at its first endpoint.
fn container_ports(
    networks: &BTreeMap<String, NetworkRecord>,
    c: &ContainerRecord,
) -> Vec<firewall::FirewallPort> {
    let Some(ep) = c.endpoints.first() else {
        return Vec::new();
    };
    let gateway = networks.get(&ep.network).map(|n| n.gateway);
    c.ports
        .iter()
        .map(|m| firewall::FirewallPort {
            container_id: c.id.clone(),
            mapping: *m,
            container_ip: ep.ip,
            gateway,
        })
        .collect()
}

/// The hosts file of container `id`: itself, then its peers on user networks.
fn hosts_for(st: &State, id: &str) -> String {
    let Some(me) = st.containers.get(id) else {
        return etc::render_hosts(None, &[], &[]);
    };
    let mut own_names = vec![me.hostname.clone()];
    if !me.name.is_empty() && me.name != me.hostname {
        own_names.push(me.name.clone());
    }
    let own = me.endpoints.first().map(|e| etc::HostEntry {
        ip: e.ip,
        names: own_names,
    });
    let mut peers = Vec::new();
    for ep in me.endpoints.iter().filter(|e| e.network != DEFAULT_NETWORK) {
        for other in st.containers.values().filter(|c| c.id != id) {
            for oe in other.endpoints.iter().filter(|e| e.network == ep.network) {
                let mut names = Vec::new();
                if !other.name.is_empty() {
                    names.push(other.name.clone());
                }
                names.extend(oe.aliases.iter().cloned());
                names.push(other.id.chars().take(12).collect());
                names.dedup();
                peers.push(etc::HostEntry { ip: oe.ip, names });
            }
        }
    }
    etc::render_hosts(own.as_ref(), &peers, &me.add_hosts)
}

fn to_endpoint(st: &State, e: &EndpointRecord) -> Endpoint {
    let (prefix, gateway) = st
        .networks
        .get(&e.network)
        .map_or((0, Ipv4Addr::UNSPECIFIED), |n| {
            (n.subnet.prefix(), n.gateway)
        });
    Endpoint {
        network: e.network.clone(),
        interface: e.interface.clone(),
        ip: e.ip,
        prefix,
        gateway,
        mac: e.mac.clone(),
    }
}

fn attachment(st: &State, rec: &ContainerRecord) -> Attachment {
    Attachment {
        netns_path: rec.netns.clone(),
        endpoints: rec.endpoints.iter().map(|e| to_endpoint(st, e)).collect(),
        ports: rec.ports.clone(),
    }
}

fn to_network(st: &State, n: &NetworkRecord) -> Network {
    let containers = st
        .containers
        .values()
        .flat_map(|c| {
            c.endpoints
                .iter()
                .filter(|e| e.network == n.name)
                .map(move |e| NetworkMember {
                    container_id: c.id.clone(),
                    name: c.name.clone(),
                    ip: e.ip,
                    mac: e.mac.clone(),
                    aliases: e.aliases.clone(),
                })
        })
        .collect();
    Network {
        name: n.name.clone(),
        id: n.id.clone(),
        bridge: n.bridge.clone(),
        subnet: n.subnet,
        gateway: n.gateway,
        internal: n.internal,
        labels: n.labels.clone(),
        containers,
    }
}

fn with_cleanup(cause: NetError, cleanup: Vec<String>) -> NetError {
    if cleanup.is_empty() {
        cause
    } else {
        NetError::Rollback {
            cause: Box::new(cause),
            cleanup: cleanup.join("; "),
        }
    }
}

fn prepare_netns_dir(dir: &Path) -> Result<(), NetError> {
    netns::prepare_dir(dir).map_err(|source| NetError::Netns {
        path: dir.to_path_buf(),
        source,
    })
}

fn read_host_file(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn boot_id() -> String {
    read_host_file("/proc/sys/kernel/random/boot_id")
        .trim()
        .to_string()
}

/// FNV-1a: a stable hash for derived names (std's hasher is not stable).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How long a detached container's veth may take to disappear with its
/// namespace before berth deletes it itself (normally well under 100 ms).
const RELEASE_GRACE_MS: u64 = 2000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn random_id() -> String {
    let mut buf = [0u8; 32];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // Uniqueness, not secrecy, is what matters for a network id.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&fnv1a(format!("{seed}{i}").as_bytes()).to_le_bytes());
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net_rec(name: &str, subnet: &str) -> NetworkRecord {
        let subnet: Ipv4Net = subnet.parse().expect("subnet");
        NetworkRecord {
            name: name.into(),
            id: "0".repeat(64),
            bridge: format!("b-{name}"),
            subnet,
            gateway: subnet.first_host(),
            internal: false,
            labels: BTreeMap::new(),
            leases: BTreeMap::new(),
        }
    }

    fn ctr(id: &str, name: &str, eps: &[(&str, Ipv4Addr, &[&str])]) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: name.into(),
            hostname: id[..4].into(),
            netns: None,
            etc_dir: None,
            endpoints: eps
                .iter()
                .enumerate()
                .map(|(i, (n, ip, al))| {
                    endpoint_record(
                        n,
                        &format!("b-{n}"),
                        format!("eth{i}"),
                        *ip,
                        &al.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    )
                })
                .collect(),
            ports: vec![],
            add_hosts: vec![],
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("my-net_1.x").is_ok());
        for bad in ["", "-x", "a b", "a/b", "ä"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subnet_checks_cover_networks_and_routes() {
        let mut st = State::default();
        st.networks
            .insert("a".into(), net_rec("a", "10.201.0.0/24"));
        let routes = [(Ipv4Addr::new(192, 0, 2, 0), 24)];
        assert!(check_subnet_free(&st, &routes, "10.202.0.0/24".parse().expect("s")).is_ok());
        let e = check_subnet_free(&st, &routes, "10.201.0.0/16".parse().expect("s"))
            .expect_err("overlap");
        assert!(e.to_string().contains("network a"), "{e}");
        let e =
            check_subnet_free(&st, &routes, "192.0.0.0/16".parse().expect("s")).expect_err("route");
        assert!(e.to_string().contains("host route 192.0.2.0/24"), "{e}");
    }

    #[test]
    fn hosts_list_peers_on_user_networks_only() {
        let mut st = State::default();
        st.networks
            .insert("u".into(), net_rec("u", "10.201.0.0/24"));
        st.networks.insert(
            DEFAULT_NETWORK.into(),
            net_rec(DEFAULT_NETWORK, "10.202.0.0/24"),
        );
        let a = ctr(
            "aaaaaaaaaaaaaaaa",
            "web",
            &[("u", Ipv4Addr::new(10, 201, 0, 2), &[])],
        );
        let b = ctr(
            "bbbbbbbbbbbbbbbb",
            "db",
            &[("u", Ipv4Addr::new(10, 201, 0, 3), &["database"])],
        );
        let c = ctr(
            "cccccccccccccccc",
            "other",
            &[(DEFAULT_NETWORK, Ipv4Addr::new(10, 202, 0, 2), &[])],
        );
        let d = ctr(
            "dddddddddddddddd",
            "other2",
            &[(DEFAULT_NETWORK, Ipv4Addr::new(10, 202, 0, 3), &[])],
        );
        for r in [a, b, c, d] {
            st.containers.insert(r.id.clone(), r);
        }
        let h = hosts_for(&st, "aaaaaaaaaaaaaaaa");
        assert!(h.contains("10.201.0.2\taaaa web\n"), "{h}");
        assert!(h.contains("10.201.0.3\tdb database bbbbbbbbbbbb\n"), "{h}");
        assert!(!h.contains("other"), "{h}");
        // default bridge: no peer names (docker's legacy behaviour)
        assert!(!hosts_for(&st, "cccccccccccccccc").contains("other2"));
    }

    #[test]
    fn ruleset_targets_first_endpoint() {
        let mut st = State::default();
        st.networks
            .insert("u".into(), net_rec("u", "10.201.0.0/24"));
        let mut a = ctr(
            "aaaaaaaaaaaaaaaa",
            "web",
            &[("u", Ipv4Addr::new(10, 201, 0, 2), &[])],
        );
        a.ports = PortMapping::parse("8080:80").expect("spec");
        st.containers.insert(a.id.clone(), a);
        let r = ruleset(&st);
        assert_eq!(r.ports.len(), 1);
        assert_eq!(r.ports[0].container_ip, Ipv4Addr::new(10, 201, 0, 2));
    }

    #[test]
    fn published_ports_conflict_before_anything_happens() {
        let mut st = State::default();
        let mut a = ctr("aaaaaaaaaaaaaaaa", "web", &[]);
        a.ports = PortMapping::parse("127.0.0.1:1:80").expect("spec");
        st.containers.insert(a.id.clone(), a);
        let e = resolve_ports(&st, PortMapping::parse("1:80").expect("spec").into_iter())
            .expect_err("conflict");
        assert!(matches!(e, NetError::PortPublished { .. }), "{e}");
        // ephemeral ports are filled in and distinct
        let v = resolve_ports(&st, PortMapping::parse("80-81").expect("spec").into_iter())
            .expect("ephemeral");
        assert!(v.iter().all(|m| m.host_port != 0));
        assert_ne!(v[0].host_port, v[1].host_port);
    }

    #[test]
    fn veth_names_fit_ifnamsiz_and_follow_bridge_and_address() {
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        let a = endpoint_record("n", "br-a", "eth0".into(), ip, &[]);
        let again = endpoint_record("n", "br-a", "eth1".into(), ip, &[]);
        let other_ip = endpoint_record("n", "br-a", "eth0".into(), Ipv4Addr::new(10, 0, 0, 3), &[]);
        let other_bridge = endpoint_record("m", "br-b", "eth0".into(), ip, &[]);
        assert_eq!(
            a.host_veth, again.host_veth,
            "the address's next holder reuses the name"
        );
        assert_ne!(a.host_veth, other_ip.host_veth);
        assert_ne!(a.host_veth, other_bridge.host_veth);
        assert!(a.host_veth.ends_with("0a000002"), "{}", a.host_veth);
        assert_eq!(a.host_veth.len(), 14);
        assert!(a.host_veth.starts_with(VETH_PREFIX));
        assert_eq!(a.mac, "02:42:0a:00:00:02");
    }
}
