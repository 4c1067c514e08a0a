//! Link drivers: how a network and an endpoint are realised on the host.
//!
//! [`BridgeDriver`] is the rootful driver: one Linux bridge per network holding the
//! gateway address, and per endpoint a veth pair whose host end is enslaved to the
//! bridge and whose peer is created directly inside the container's namespace
//! (one RTM_NEWLINK; no rename/move round trips). A rootless backend (pasta,
//! slirp4netns) would implement [`LinkDriver`] without bridges.

use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;

use crate::netlink::Netlink;
use crate::state::{EndpointRecord, NetworkRecord};
use crate::{netns, NetError};

/// Realises networks and endpoints. All methods are idempotent where noted, so
/// rollback and crash recovery may call them on half-built or missing objects.
pub trait LinkDriver: Send + Sync {
    /// Makes the network's host side exist (idempotent).
    fn ensure_network(&self, net: &NetworkRecord) -> Result<(), NetError>;
    /// Removes the network's host side (idempotent).
    fn remove_network(&self, net: &NetworkRecord) -> Result<(), NetError>;
    /// Creates `ep` inside the namespace pinned at `netns_path`, (re)creating the
    /// network's host side first if it is missing (after a reboot); adds the
    /// default route via the network's gateway when `default_route`.
    fn add_endpoint(
        &self,
        netns_path: &Path,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        default_route: bool,
    ) -> Result<(), NetError>;
    /// Removes `ep` (idempotent).
    fn remove_endpoint(&self, ep: &EndpointRecord) -> Result<(), NetError>;
    /// Whether `ep`'s host side still exists (drivers that remove endpoints
    /// synchronously can keep the default).
    fn endpoint_exists(&self, _ep: &EndpointRecord) -> bool {
        false
    }
    /// IPv4 route destinations on the host, for subnet collision checks.
    fn host_routes(&self) -> Result<Vec<(Ipv4Addr, u8)>, NetError>;
    /// Host-side links this driver created that no record mentions any more:
    /// `known` are the live host link names, `bridges` the networks' devices.
    fn remove_orphans(&self, known: &[String], bridges: &[String])
        -> Result<Vec<String>, NetError>;
}

/// The rootful Linux bridge + veth driver. Keeps one host rtnetlink socket for
/// the lifetime of the handle (an operation makes several requests).
#[derive(Default)]
pub struct BridgeDriver {
    host: Mutex<Option<Netlink>>,
}

impl BridgeDriver {
    /// Runs `f` with the cached host socket, opening it on first use.
    fn with_host<T>(
        &self,
        f: impl FnOnce(&mut Netlink) -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        let mut guard = self.host.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(Netlink::open().map_err(nl("open netlink socket"))?);
        }
        match guard.as_mut() {
            Some(h) => f(h),
            None => Err(nl("open netlink socket")(io::Error::from(
                io::ErrorKind::NotConnected,
            ))),
        }
    }
}

fn nl(op: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let op = op.into();
    move |source| NetError::Netlink { op, source }
}

pub(crate) fn write_sysctl(path: &str, value: &str) -> Result<(), NetError> {
    fs::write(path, value).map_err(|source| NetError::Sysctl {
        path: path.to_string(),
        source,
    })
}

impl LinkDriver for BridgeDriver {
    fn ensure_network(&self, net: &NetworkRecord) -> Result<(), NetError> {
        self.with_host(|h| ensure_bridge(h, net))
    }

    fn remove_network(&self, net: &NetworkRecord) -> Result<(), NetError> {
        self.with_host(|h| {
            h.del_link(&net.bridge)
                .map_err(nl(format!("delete bridge {}", net.bridge)))
        })?;
        Ok(())
    }

    fn add_endpoint(
        &self,
        netns_path: &Path,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        default_route: bool,
    ) -> Result<(), NetError> {
        let ns = File::open(netns_path).map_err(|source| NetError::Netns {
            path: netns_path.to_path_buf(),
            source,
        })?;
        let mac = crate::ipam::mac_for(ep.ip);
        crate::timing::mark("open netns file");
        self.with_host(|h| {
            let lookup = format!("look up bridge {}", net.bridge);
            // if_nametoindex is an RCU lookup; RTM_GETLINK took 0.5-0.7 ms here,
            // queued behind RTNL holders such as namespace cleanup.
            let master = match nix::net::if_::if_nametoindex(net.bridge.as_str()) {
                Ok(i) => i,
                Err(_) => {
                    crate::timing::mark("look up bridge");
                    ensure_bridge(h, net)?;
                    h.link_index(&net.bridge)
                        .map_err(nl(lookup.clone()))?
                        .ok_or_else(|| NetError::Netlink {
                            op: lookup,
                            source: io::Error::from_raw_os_error(libc::ENODEV),
                        })?
                }
            };
            crate::timing::mark("look up bridge");
            let op = format!("create veth {} <-> {}", ep.host_veth, ep.interface);
            match h.add_veth(&ep.host_veth, master, &ep.interface, ns.as_raw_fd(), mac) {
                // Host veth names derive from (container, network), and the caller
                // holds no record of this one: a crash leftover. Replace it.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    h.del_link(&ep.host_veth)
                        .map_err(nl(format!("delete stale veth {}", ep.host_veth)))?;
                    h.add_veth(&ep.host_veth, master, &ep.interface, ns.as_raw_fd(), mac)
                        .map_err(nl(op))
                }
                r => r.map_err(nl(op)),
            }
        })?;
        crate::timing::mark("veth create");
        // Hairpin: a container reaching its own published port through a host
        // address gets the DNATed packet back out of the port it came in on.
        write_sysctl(
            &format!("/sys/class/net/{}/brport/hairpin_mode", ep.host_veth),
            "1",
        )?;
        crate::timing::mark("hairpin sysctl");
        let mut c = netns::socket_in(netns_path).map_err(|source| NetError::Netns {
            path: netns_path.to_path_buf(),
            source,
        })?;
        crate::timing::mark("socket in netns");
        let index = c
            .link_index(&ep.interface)
            .map_err(nl(format!("look up {} in container", ep.interface)))?
            .ok_or_else(|| NetError::Netlink {
                op: format!("look up {} in container", ep.interface),
                source: io::Error::from_raw_os_error(libc::ENODEV),
            })?;
        crate::timing::mark("look up eth in netns");
        c.add_address(index, ep.ip, net.subnet.prefix())
            .map_err(nl(format!(
                "add {}/{} to {}",
                ep.ip,
                net.subnet.prefix(),
                ep.interface
            )))?;
        crate::timing::mark("address");
        c.set_up(index)
            .map_err(nl(format!("set {} up", ep.interface)))?;
        crate::timing::mark("eth up");
        if default_route {
            c.add_default_route(net.gateway)
                .map_err(nl(format!("add default route via {}", net.gateway)))?;
        }
        crate::timing::mark("default route");
        Ok(())
    }

    fn remove_endpoint(&self, ep: &EndpointRecord) -> Result<(), NetError> {
        // Deleting the host end deletes the pair, synchronously (a namespace that is
        // merely unpinned is torn down asynchronously by the kernel).
        self.with_host(|h| {
            h.del_link(&ep.host_veth)
                .map_err(nl(format!("delete veth {}", ep.host_veth)))
        })?;
        Ok(())
    }

    fn endpoint_exists(&self, ep: &EndpointRecord) -> bool {
        nix::net::if_::if_nametoindex(ep.host_veth.as_str()).is_ok()
    }

    fn host_routes(&self) -> Result<Vec<(Ipv4Addr, u8)>, NetError> {
        self.with_host(|h| h.route_destinations().map_err(nl("dump routes")))
    }

    fn remove_orphans(
        &self,
        known: &[String],
        bridges: &[String],
    ) -> Result<Vec<String>, NetError> {
        self.with_host(|h| {
            let links = h.links().map_err(nl("dump links"))?;
            let bridge_idx: Vec<u32> = links
                .iter()
                .filter(|(_, n, _)| bridges.contains(n))
                .map(|(i, _, _)| *i)
                .collect();
            let mut removed = Vec::new();
            for (_, name, master) in &links {
                let ours = master.is_some_and(|m| bridge_idx.contains(&m))
                    && name.starts_with(crate::VETH_PREFIX);
                if ours && !known.contains(name) {
                    h.del_link(name)
                        .map_err(nl(format!("delete orphan veth {name}")))?;
                    removed.push(name.clone());
                }
            }
            Ok(removed)
        })
    }
}

/// Creates the bridge with its gateway address if it does not exist (idempotent).
fn ensure_bridge(h: &mut Netlink, net: &NetworkRecord) -> Result<(), NetError> {
    let b = &net.bridge;
    if h.link_index(b)
        .map_err(nl(format!("look up bridge {b}")))?
        .is_some()
    {
        return Ok(());
    }
    let index = match h.add_bridge(b) {
        Ok(i) => i,
        // Lost a race with a concurrent creator outside our lock (e.g. udev); use it.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => h
            .link_index(b)
            .map_err(nl(format!("look up bridge {b}")))?
            .ok_or_else(|| NetError::Netlink {
                op: format!("create bridge {b}"),
                source: e,
            })?,
        Err(e) => return Err(nl(format!("create bridge {b}"))(e)),
    };
    h.add_address(index, net.gateway, net.subnet.prefix())
        .map_err(nl(format!(
            "add {}/{} to {b}",
            net.gateway,
            net.subnet.prefix()
        )))?;
    // Lets DNAT from 127.0.0.1 route out through the bridge (see firewall docs).
    write_sysctl(&format!("/proc/sys/net/ipv4/conf/{b}/route_localnet"), "1")?;
    h.set_up(index).map_err(nl(format!("set {b} up")))
}

/// Brings `lo` up inside a freshly created namespace.
pub(crate) fn set_loopback_up(c: &mut Netlink) -> Result<(), NetError> {
    let lo = c
        .link_index("lo")
        .map_err(nl("look up lo"))?
        .ok_or_else(|| NetError::Netlink {
            op: "look up lo".into(),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
    c.set_up(lo).map_err(nl("set lo up"))
}
