//! berth-net's persistent records: networks, their leases, and container endpoints.
//!
//! Everything lives in `state.json` (see below for the split), guarded by an
//! exclusive `flock` on `state.lock` held for the whole read-modify-act-write of an
//! operation; that serialises concurrent `berth` invocations (there is no daemon)
//! and is what makes leases and host-port checks race-free. Writes go to a temp
//! file that is renamed over `state.json`, so a crash of berth leaves either the
//! old or the new state, never a torn one. `Net` uses split storage
//! ([`LockedState::open_split`]): networks durably in the state dir, the full
//! state (containers, leases) on the runtime dir, so a container's attach or
//! detach writes only to tmpfs. [`LockedState::save`] fsyncs what goes to disk;
//! [`LockedState::save_unsynced`] does not (single-file mode only).

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
    /// Endpoints of detached containers whose veths the kernel deletes
    /// asynchronously with their namespace; their addresses are not handed out
    /// again while the veth still exists (see `Net::detach`).
    #[serde(default)]
    pub releasing: Vec<ReleasingEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasingEndpoint {
    pub endpoint: EndpointRecord,
    /// When the namespace was unpinned (ms since the Unix epoch).
    pub since_ms: u64,
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

/// The state file(s), locked for the lifetime of this value.
pub struct LockedState {
    _lock: Flock<File>,
    path: PathBuf,
    /// With [`LockedState::open_split`]: the full state on a runtime (tmpfs)
    /// directory; `path` then holds only the persistent part.
    runtime: Option<PathBuf>,
    /// The bytes `path` holds now (split mode), so unchanged networks are not
    /// rewritten.
    on_disk: std::cell::RefCell<Vec<u8>>,
    pub state: State,
}

impl LockedState {
    /// One file, `dir/state.json`, holding everything.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_inner(dir, None)
    }

    /// Split storage: `state_dir/state.json` keeps what must survive a reboot
    /// (networks, ip_forward, firewall fingerprint), written durably and only
    /// when it changes; `run_dir/state.json` keeps the full state including
    /// containers, leases and releasing endpoints, which describe kernel objects
    /// a reboot destroys anyway, and is rewritten on every save. On a tmpfs
    /// `run_dir` (/run) a container attach/detach never waits for a disk: on
    /// this host's busy ext4 each state write cost 0.4-4 ms. After a reboot
    /// the runtime file is gone and the persistent one is loaded: no containers,
    /// no leases, as on the host. A state file from before the split (with
    /// containers in it) is loaded as is and split on the first save.
    pub fn open_split(state_dir: &Path, run_dir: &Path) -> io::Result<Self> {
        Self::open_inner(state_dir, Some(run_dir))
    }

    fn open_inner(dir: &Path, run_dir: Option<&Path>) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let lockfile = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("state.lock"))?;
        let lock =
            Flock::lock(lockfile, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        let path = dir.join("state.json");
        let on_disk = read_optional(&path)?;
        let runtime = run_dir.map(|d| d.join("state.json"));
        let current = match &runtime {
            Some(r) => read_optional(r)?,
            None => Vec::new(),
        };
        let bytes = if current.is_empty() {
            &on_disk
        } else {
            &current
        };
        let state = if bytes.is_empty() {
            State::default()
        } else {
            serde_json::from_slice(bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        };
        Ok(LockedState {
            _lock: lock,
            path,
            runtime,
            on_disk: std::cell::RefCell::new(on_disk),
            state,
        })
    }

    /// Replaces the state atomically and durably (in split mode the runtime
    /// file is never fsynced: it does not outlive a power loss anyway).
    pub fn save(&self) -> io::Result<()> {
        self.write(true)
    }

    /// Replaces the state atomically, without waiting for the disk.
    pub fn save_unsynced(&self) -> io::Result<()> {
        self.write(false)
    }

    fn write(&self, sync: bool) -> io::Result<()> {
        let full = serde_json::to_vec_pretty(&self.state).map_err(io::Error::other)?;
        let Some(runtime) = &self.runtime else {
            return replace(&self.path, &full, sync);
        };
        if let Some(dir) = runtime.parent() {
            fs::create_dir_all(dir)?;
        }
        replace(runtime, &full, false)?;
        let mut persistent = self.state.clone();
        persistent.containers.clear();
        persistent.releasing.clear();
        for n in persistent.networks.values_mut() {
            n.leases.clear();
        }
        let bytes = serde_json::to_vec_pretty(&persistent).map_err(io::Error::other)?;
        if *self.on_disk.borrow() != bytes {
            replace(&self.path, &bytes, true)?;
            *self.on_disk.borrow_mut() = bytes;
        }
        Ok(())
    }
}

/// A file's bytes, empty when it does not exist.
fn read_optional(path: &Path) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to a temp file and renames it over `path`.
fn replace(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn container(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: name.into(),
            hostname: name.into(),
            netns: None,
            etc_dir: None,
            endpoints: vec![],
            ports: vec![],
            add_hosts: vec![],
        }
    }

    fn network(name: &str) -> NetworkRecord {
        NetworkRecord {
            name: name.into(),
            id: "0".repeat(64),
            bridge: format!("b-{name}"),
            subnet: "10.201.0.0/24".parse().expect("subnet"),
            gateway: Ipv4Addr::new(10, 201, 0, 1),
            internal: false,
            labels: BTreeMap::new(),
            leases: BTreeMap::new(),
        }
    }

    #[test]
    fn split_storage_keeps_containers_off_the_disk_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (disk, run) = (tmp.path().join("state"), tmp.path().join("run"));
        {
            let mut st = LockedState::open_split(&disk, &run).expect("open");
            let mut n = network("app");
            n.leases.insert(Ipv4Addr::new(10, 201, 0, 2), "ctr1".into());
            st.state.networks.insert("app".into(), n);
            st.state
                .containers
                .insert("ctr1".into(), container("ctr1", "web"));
            st.save_unsynced().expect("save");
        }
        let on_disk = fs::read_to_string(disk.join("state.json")).expect("disk");
        assert!(
            on_disk.contains("\"app\"") && !on_disk.contains("ctr1"),
            "{on_disk}"
        );
        let inode = fs::metadata(disk.join("state.json")).expect("stat").ino();
        {
            // a container-only change leaves the disk file alone
            let mut st = LockedState::open_split(&disk, &run).expect("reopen");
            assert!(st.state.containers.contains_key("ctr1"));
            assert_eq!(st.state.networks["app"].leases.len(), 1);
            st.state.containers.clear();
            st.save_unsynced().expect("save");
        }
        assert_eq!(
            fs::metadata(disk.join("state.json")).expect("stat").ino(),
            inode
        );
        // a reboot empties the runtime dir: networks stay, containers go
        {
            let mut st = LockedState::open_split(&disk, &run).expect("reopen");
            st.state
                .containers
                .insert("ctr2".into(), container("ctr2", ""));
            st.save().expect("save");
        }
        fs::remove_dir_all(&run).expect("reboot");
        let st = LockedState::open_split(&disk, &run).expect("after reboot");
        assert!(st.state.networks.contains_key("app"));
        assert!(st.state.containers.is_empty());
        assert!(st.state.networks["app"].leases.is_empty());
    }

    #[test]
    fn single_file_state_from_before_the_split_is_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let disk = tmp.path().join("state");
        {
            let mut st = LockedState::open(&disk).expect("open");
            st.state.networks.insert("app".into(), network("app"));
            st.state
                .containers
                .insert("old".into(), container("old", ""));
            st.save().expect("save");
        }
        let st = LockedState::open_split(&disk, &tmp.path().join("run")).expect("split");
        assert!(st.state.containers.contains_key("old"));
    }
}
