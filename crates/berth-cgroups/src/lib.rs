//! berth-cgroups: cgroup v1, v2 and hybrid hosts — create a container's cgroup, put
//! processes in it, apply `linux.resources`, freeze/thaw, read statistics, remove it.
//!
//! ```text
//! let hier = Hierarchy::detect()?;                         // reads /proc/self/mountinfo
//! let cg = Manager::new(&hier, spec_cgroups_path, id)?;    // no effects
//! cg.create()?;                                            // mkdir in every hierarchy
//! cg.apply(pid)?;                                          // pid into cgroup.procs everywhere
//! cg.set(&linux_resources)?;                               // validate, write, roll back on error
//! cg.pids()?; cg.freeze()?; cg.thaw()?; cg.stats()?;
//! cg.destroy()?;                                           // kill leftovers, rmdir everywhere
//! let saved: CgroupPaths = cg.paths();                     // serde, kept in state.json
//! let cg = Manager::from_paths(&saved);                    // for later commands
//! ```
//!
//! Modules: [`detect`] (layout, `cgroupsPath`), `manager` (lifecycle and routing),
//! `v1`/`v2` (resource → file writes, freezers), `convert` (v1↔v2 value formulas),
//! `devices` (v1 rules and the v2 eBPF program), `stats` (one model for both),
//! `cgroupfs` (all file I/O, plan execution with rollback).
//!
//! The cgroupfs root is whatever [`Hierarchy::from_mountinfo`] is given, so every
//! write can be tested against a fake cgroupfs in a temp dir without root.
//!
//! Not here: the bpf(2) syscall for v2 device programs (needs `unsafe`; see
//! [`DeviceProgramLoader`]), systemd D-Bus scopes ([`expand_systemd_path`] only computes
//! the path systemd would use).

pub mod convert;
pub mod detect;

mod cgroupfs;
mod devices;
mod error;
mod manager;
mod stats;
mod v1;
mod v2;

pub use cgroupfs::DeviceProgramLoader;
pub use detect::{expand_systemd_path, Hierarchy, Layout, UnifiedMount, V1Mount};
pub use devices::DeviceProgram;
pub use error::CgroupError;
pub use manager::{CgroupPaths, Manager, UnifiedDir, V1Dir, DEFAULT_PARENT};
pub use stats::{BlkioDeviceStats, CpuStats, MemoryStats, PidsStats, Stats};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
