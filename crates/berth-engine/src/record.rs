//! record: the container record (`container.json`) and finding records by id,
//! id prefix or name.
//!
//! A record is written atomically and only while its per-container lock is
//! held; the monitor never writes it (it writes `exit.json`, which `cleanup`
//! folds in), so there is exactly one writer at a time.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::root::{write_atomic, Lock, Root};
use crate::EngineError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Removing,
    Dead,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/pid/stat): tells a live container
    /// from a recycled pid after a crash or reboot.
    pub pid_start: u64,
    /// The monitor (which later execs `berth container cleanup`, same pid):
    /// while it lives, it — not a reader — finishes the record.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// `berth stop`/`kill` was used: restart policies other than `always`
    /// after an engine restart do not bring it back.
    pub stopped_by_user: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct MountRecord {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PortRecord {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct EndpointRecord {
    pub network: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NetworkSettings {
    pub netns: String,
    pub ports: Vec<PortRecord>,
    pub endpoints: Vec<EndpointRecord>,
}

/// Everything `berth run`/`create` was asked for, resolved against the image.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Config {
    pub image: String,
    pub image_id: String,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub domainname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<i64>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct RestartPolicy {
    /// "no", "on-failure", "always", "unless-stopped".
    pub name: String,
    pub maximum_retry_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Resources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub oom_kill_disable: bool,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// (device path, rate) pairs.
    pub device_read_bps: Vec<(String, u64)>,
    pub device_write_bps: Vec<(String, u64)>,
    pub device_read_iops: Vec<(String, u64)>,
    pub device_write_iops: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct DeviceRecord {
    pub path_on_host: String,
    pub path_in_container: String,
    pub permissions: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PortRequest {
    pub host_ip: String,
    /// "8080" or "8080-8081" or "" (ephemeral).
    pub host_port: String,
    pub container_port: String,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct HostConfig {
    pub runtime: String,
    pub auto_remove: bool,
    pub restart_policy: RestartPolicy,
    pub log_max_size: Option<u64>,
    pub log_max_file: u32,
    pub mounts: Vec<MountRecord>,
    pub tmpfs: Vec<(String, String)>,
    pub read_only: bool,
    pub network_mode: String,
    pub networks: Vec<String>,
    pub network_aliases: Vec<String>,
    pub ip: Option<String>,
    pub ports: Vec<PortRequest>,
    pub publish_all: bool,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub add_hosts: Vec<String>,
    pub resources: Resources,
    pub ulimits: Vec<Ulimit>,
    pub init: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub shm_size: Option<u64>,
    pub ipc_mode: String,
    pub pid_mode: String,
    pub uts_mode: String,
    pub devices: Vec<DeviceRecord>,
    pub group_add: Vec<String>,
    /// `--userns`: "" or "host" (none), "auto[:size=N]" or "private" (`--uidmap`).
    #[serde(default)]
    pub userns_mode: String,
    /// The user namespace's maps (empty: none); `auto`'s block is filled in at
    /// create and kept until rm, so restarts see the same ids.
    #[serde(default)]
    pub uid_maps: Vec<crate::security::userns::IdMap>,
    #[serde(default)]
    pub gid_maps: Vec<crate::security::userns::IdMap>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub created: String,
    pub config: Config,
    pub host_config: HostConfig,
    pub state: State,
    pub network: NetworkSettings,
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// The records on disk.
pub struct Records<'a> {
    pub root: &'a Root,
}

impl<'a> Records<'a> {
    pub fn new(root: &'a Root) -> Records<'a> {
        Records { root }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.root.container_dir(id).join("container.json")
    }

    pub fn load(&self, id: &str) -> Result<Container, EngineError> {
        let path = self.path(id);
        let data =
            fs::read(&path).map_err(|e| EngineError::io(format!("read {}", path.display()), e))?;
        serde_json::from_slice(&data)
            .map_err(|e| EngineError::Invalid(format!("corrupt record {}: {e}", path.display())))
    }

    /// Always atomic (temp file + rename: a reader or a crash sees the old or the
    /// new record); fsync'd only when a power loss would lose something that
    /// matters (see [`needs_sync`]): on this host one fsync'd write costs 3–16 ms,
    /// more than a whole `run --rm` may.
    pub fn save(&self, c: &Container) -> Result<(), EngineError> {
        let path = self.path(&c.id);
        let data = serde_json::to_vec_pretty(c).expect("records serialize");
        let res = if needs_sync(c) {
            write_atomic(&path, &data)
        } else {
            replace_unsynced(&path, &data)
        };
        res.map_err(|e| EngineError::io(format!("write {}", path.display()), e))
    }

    /// The per-container lock: every read-modify-write of a record holds it.
    pub fn lock(&self, id: &str) -> Result<Lock, EngineError> {
        let path = self.root.container_dir(id).join("lock");
        Lock::exclusive(&path).map_err(|e| EngineError::io(format!("lock {}", path.display()), e))
    }

    /// Every complete record (a directory without container.json is debris from a
    /// create that died before its first write; `prune_debris` removes it).
    pub fn list(&self) -> Result<Vec<Container>, EngineError> {
        let mut out = Vec::new();
        let dir = self.root.containers();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(EngineError::io(format!("read {}", dir.display()), e)),
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') {
                continue;
            }
            if let Ok(c) = self.load(&id) {
                out.push(c);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Docker's lookup order: exact id, exact name, then unique id prefix.
    pub fn find(&self, key: &str) -> Result<Container, EngineError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        // A full id (what the engine itself passes around) names its directory:
        // no need to read every record. (A name cannot be 64 hex digits long
        // and also be another container's id without this lookup agreeing.)
        if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(c) = self.load(key) {
                return Ok(c);
            }
        }
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.id == key || c.name == key) {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = all
            .iter()
            .filter(|c| !key.is_empty() && c.id.starts_with(key))
            .collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(EngineError::NoSuchContainer(key.to_string())),
            _ => Err(EngineError::Invalid(format!(
                "multiple containers match prefix {key:?}"
            ))),
        }
    }
}

/// Whether a record must survive a power loss. Not needed for `--rm` containers
/// (gone moments later; losing one is what `--rm` asked for), for `removing`
/// (about to vanish), or for `running` without a restart policy: a power loss
/// kills the process too, and after the reboot `refresh` finds it dead whatever
/// the record says. Everything else (create, exit codes, restart policies) is.
pub fn needs_sync(c: &Container) -> bool {
    let no_restart = matches!(c.host_config.restart_policy.name.as_str(), "" | "no");
    !(c.host_config.auto_remove
        || c.state.status == Status::Removing
        || (c.state.status == Status::Running && no_restart))
}

/// Replace `path` atomically (temp file beside it, rename) without fsync: for
/// files nobody needs after a power loss (records per [`needs_sync`], the
/// bundle's config.json under the run root).
pub fn replace_unsynced(path: &std::path::Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_records_a_power_loss_would_matter_for_are_synced() {
        let mut c = Container::default();
        assert!(needs_sync(&c), "a fresh (created) record");
        c.state.status = Status::Running;
        assert!(!needs_sync(&c), "running, no restart policy");
        c.host_config.restart_policy.name = "always".into();
        assert!(needs_sync(&c), "running with a policy boot must honour");
        c.state.status = Status::Exited;
        c.host_config.restart_policy.name = "no".into();
        assert!(needs_sync(&c), "an exit code");
        c.state.status = Status::Removing;
        assert!(!needs_sync(&c));
        c.state.status = Status::Created;
        c.host_config.auto_remove = true;
        assert!(!needs_sync(&c), "--rm");
    }

    #[test]
    fn replace_unsynced_replaces_atomically() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("container.json");
        replace_unsynced(&p, b"one").expect("write");
        replace_unsynced(&p, b"two").expect("replace");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "no temp file left"
        );
    }
}
