//! berth-net's persistent records: networks, their leases, and container endpoints.
//!
//! Everything lives in one `state.json` under the state directory, guarded by an
//! exclusive `flock` on `state.lock` held for the whole read-modify-act-write of an
//! operation; that serialises concurrent `berth` invocations (there is no daemon)
//! and is what makes leases and host-port checks race-free. Writes go to a temp
//! file that is fsynced and renamed over `state.json`, so a crash leaves either the
//! old or the new state, never a torn one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::ipam::Ipv4Net;
use crate::ports::PortMapping;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkRecord>,
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerRecord>,
    /// `net.ipv4.ip_forward` before berth first set it, restored by teardown.
    #[serde(default)]
    pub ip_forward_before: Option<String>,
    /// Fingerprint (boot id + ruleset) of the last applied firewall state, so an
    /// operation that does not change the rules skips running nft.
    #[serde(default)]
    pub firewall_applied: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    pub id: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// address → container id
    #[serde(default)]
    pub leases: BTreeMap<Ipv4Addr, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub hostname: String,
    /// The namespace file berth created (Bridge/None modes), removed on detach.
    pub netns: Option<PathBuf>,
    pub etc_dir: Option<PathBuf>,
    #[serde(default)]
    pub endpoints: Vec<EndpointRecord>,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    #[serde(default)]
    pub add_hosts: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub network: String,
    pub interface: String,
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The state file, locked for the lifetime of this value.
pub struct LockedState {
    _lock: Flock<File>,
    path: PathBuf,
    pub state: State,
}

impl LockedState {
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let lockfile = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("state.lock"))?;
        let lock =
            Flock::lock(lockfile, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        let path = dir.join("state.json");
        let state = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        Ok(LockedState {
            _lock: lock,
            path,
            state,
        })
    }

    pub fn save(&self) -> io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(&self.state).map_err(io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)
    }
}
