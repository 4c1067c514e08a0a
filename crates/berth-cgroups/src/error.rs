//! The crate's one error enum, [`CgroupError`].
//!
//! Every variant names the operation that failed and carries the path (and the value,
//! for writes) so that a chain printed with `{:#}` reads like
//! `memory.limit: set memory.limit_in_bytes to 4096 in /sys/fs/cgroup/memory/berth/c1: Device or resource busy`.
//! Field names in messages are the OCI `linux.resources` names (`memory.limit`,
//! `cpu.quota`, `blockIO.weight`, ...), so a user can find the offending spec field.

use std::io;
use std::path::PathBuf;

/// Errors from detecting, creating, configuring, reading or removing cgroups.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// Reading /proc/self/mountinfo or /proc/self/cgroup failed.
    #[error("read {path}")]
    ReadProc {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// No cgroup or cgroup2 filesystem is mounted.
    #[error("no cgroup filesystem is mounted (looked in /proc/self/mountinfo)")]
    NoCgroupMounts,

    /// The container id cannot be used as a cgroup directory name.
    #[error("invalid container id {id:?} for a cgroup name: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// `linux.cgroupsPath` is malformed.
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidCgroupsPath { path: String, reason: &'static str },

    /// A resource value is out of range or inconsistent; nothing was written.
    #[error("{field}: invalid value {value}: {reason}")]
    InvalidValue {
        field: &'static str,
        value: String,
        reason: String,
    },

    /// A resource is not supported in this layout (e.g. `unified` on cgroup v1).
    #[error("{field}: {reason}")]
    Unsupported { field: &'static str, reason: String },

    /// A resource needs a controller that is not mounted (v1) or not enabled (v2).
    #[error("{field}: the {controller} controller is not available{}", where_.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    ControllerUnavailable {
        field: &'static str,
        controller: String,
        where_: Option<PathBuf>,
    },

    /// mkdir of a cgroup directory failed.
    #[error("create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The cgroup already exists and holds processes that are not ours.
    #[error("cgroup {path} already exists and holds {count} process(es) (first: {first}); refusing to share it")]
    InUse {
        path: PathBuf,
        count: usize,
        first: i32,
    },

    /// A cgroup file could not be read.
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A cgroup file held something we could not parse.
    #[error("parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },

    /// A cgroup file write failed.
    #[error("{field}: set {file} to {value} in {dir}")]
    Write {
        field: &'static str,
        file: String,
        value: String,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The kernel refused a memory limit because usage could not be reclaimed below it.
    #[error("{field}: set {file} to {value} in {dir}: current usage {} is above the new limit and could not be reclaimed", usage.map(|u| format!("{u} bytes")).unwrap_or_else(|| "(unknown)".into()))]
    MemoryBelowUsage {
        field: &'static str,
        file: String,
        value: String,
        dir: PathBuf,
        usage: Option<u64>,
        #[source]
        source: io::Error,
    },

    /// After writing, the kernel reports a different value (it clamped ours).
    #[error("{field}: wrote {wanted} to {file} in {dir} but the kernel kept {got:?}")]
    Clamped {
        field: &'static str,
        file: String,
        dir: PathBuf,
        wanted: String,
        got: String,
    },

    /// Writing a pid into cgroup.procs failed.
    #[error("add pid {pid} to {path}")]
    Join {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A set failed and the rollback of already-applied values failed too.
    #[error("{cause}; rolling back the values already written also failed: {}", failures.join("; "))]
    RollbackFailed {
        #[source]
        cause: Box<CgroupError>,
        failures: Vec<String>,
    },

    /// Attaching the v2 eBPF device program failed.
    #[error("devices: attach eBPF device program to {dir}")]
    DeviceProgram {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The freezer is not available in this layout.
    #[error("the freezer is not available (no freezer controller mounted and no cgroup v2)")]
    NoFreezer,

    /// The freezer did not reach the wanted state.
    #[error("{action} {path}: still {state:?} after {waited_ms} ms")]
    FreezeTimeout {
        action: &'static str,
        path: PathBuf,
        state: String,
        waited_ms: u64,
    },

    /// Sending SIGKILL to a process in the cgroup failed.
    #[error("kill pid {pid} in {path}")]
    Kill {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Processes remained in the cgroup after SIGKILL.
    #[error("cgroup {path} still holds {} process(es) after SIGKILL: {pids:?}", pids.len())]
    NotEmpty { path: PathBuf, pids: Vec<i32> },

    /// rmdir of a cgroup directory failed.
    #[error("remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Several directories failed to be removed; each is listed.
    #[error("destroy cgroup: {}", errors.iter().map(|e| error_chain(e)).collect::<Vec<_>>().join("; "))]
    Destroy { errors: Vec<CgroupError> },
}

/// `err: cause: cause` in one line, for aggregating several errors into one message.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}
