//! state: the runtime's record of each container under `--root`.
//!
//! Layout: `<root>/<id>/state.json` (this struct) and `<root>/<id>/exec.fifo`
//! (present from create until start). The directory is created with mkdir(2),
//! which is what makes a duplicate id fail atomically. The status is never
//! trusted from disk: it is derived from the init process (pid *and* its start
//! time, so a recycled pid is not mistaken for the container), the exec fifo
//! and the freezer.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container id {0:?} is not valid: use letters, digits, '_', '+', '-', '.'")]
    BadId(String),
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("root {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when the container was created.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: berth_cgroups::CgroupPaths,
    /// The whole config.json as given, for hooks at start/delete and for exec defaults.
    pub config: serde_json::Value,
    /// Namespace paths of the init, kept so exec and delete don't need /proc
    /// lookups of a process that may be gone.
    #[serde(default)]
    pub use_systemd: bool,
}

/// The OCI state JSON (runtime-spec runtime.md "State").
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: &'static str,
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

pub const OCI_VERSION: &str = "1.2.0";

pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_string()))
    }
}

/// The runtime's state root (`--root`).
pub struct Root {
    pub path: PathBuf,
}

impl Root {
    /// Open (creating with 0700 if needed) the root directory and check it is writable.
    pub fn open(path: &Path) -> Result<Root, StateError> {
        let err = |source| StateError::Root {
            path: path.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(err)?;
        nix::unistd::access(path, nix::unistd::AccessFlags::W_OK)
            .map_err(|e| err(std::io::Error::from_raw_os_error(e as i32)))?;
        Ok(Root {
            path: path.to_path_buf(),
        })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Reserve a container directory; fails if the id is taken.
    pub fn reserve(&self, id: &str) -> Result<PathBuf, StateError> {
        validate_id(id)?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(id.to_string()))
            }
            Err(source) => Err(StateError::Io {
                op: "mkdir",
                path: dir,
                source,
            }),
        }
    }

    pub fn load(&self, id: &str) -> Result<State, StateError> {
        validate_id(id)?;
        let path = self.dir(id).join("state.json");
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()))
            }
            Err(source) => {
                return Err(StateError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&text).map_err(|source| StateError::Parse { path, source })
    }

    /// Write state.json atomically (temp file + rename), so a crash never leaves half a record.
    pub fn save(&self, st: &State) -> Result<(), StateError> {
        let dir = self.dir(&st.id);
        let tmp = dir.join("state.json.tmp");
        let path = dir.join("state.json");
        let body = serde_json::to_vec(st).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| StateError::Io {
            op: "write",
            path: path.clone(),
            source,
        })
    }

    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                op: "remove",
                path: dir,
                source,
            }),
        }
    }

    /// Every container id under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let mut ids = Vec::new();
        let rd = fs::read_dir(&self.path).map_err(|source| StateError::Root {
            path: self.path.clone(),
            source,
        })?;
        for e in rd.flatten() {
            if e.path().join("state.json").exists() {
                ids.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

impl State {
    pub fn fifo_path(&self, root: &Root) -> PathBuf {
        root.dir(&self.id).join(FIFO_NAME)
    }

    /// Is the init process the one we created (same pid, same start time)?
    pub fn init_alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((state, start)) => start == self.pid_start && state != 'Z' && state != 'X',
            None => false,
        }
    }

    pub fn status(&self, root: &Root) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if berth_cgroups::Manager::from_paths(&self.cgroup).is_frozen() {
            return Status::Paused;
        }
        if self.fifo_path(root).exists() {
            return Status::Created;
        }
        Status::Running
    }

    pub fn oci<'a>(&'a self, status: Status) -> OciState<'a> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status: status.as_str(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }
}

pub const FIFO_NAME: &str = "exec.fifo";

/// (state char, start time in clock ticks) from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    // comm (field 2) may contain spaces and ')' — fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stat_parsing_survives_odd_comm() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
    }

    #[test]
    fn duplicate_reserve_fails() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = Root::open(d.path()).expect("open");
        root.reserve("x").expect("first");
        assert!(matches!(root.reserve("x"), Err(StateError::Exists(_))));
    }
}
