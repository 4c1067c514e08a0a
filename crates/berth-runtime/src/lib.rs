//! berth-runtime: an OCI runtime with runc's command line.
//!
//! Single-threaded and synchronous by design: it forks, joins namespaces and
//! execs, which is only sound without other threads (see berth-sys::fork).
//! Module map: `plan` (config.json → validated plan, pure), `state` (records
//! under --root), `spawn` (parent side), `init` (child side), `rootfs`
//! (mounts, devices, pivot_root), `security` (user, caps, seccomp), `hooks`,
//! `sync` (parent ↔ child protocol), `container` (start/kill/delete/...),
//! `spec` (default config and features), `logging` (runc-style log lines).
#![forbid(unsafe_code)]

pub mod cgroup;
pub mod container;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod plan;
pub mod rootfs;
pub mod security;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod sync;
