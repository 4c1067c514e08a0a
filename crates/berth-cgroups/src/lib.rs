//! berth-cgroups: cgroup v1, v2 and hybrid hosts.
//!
//! INTERFACE CONTRACT (used by berth-runtime; keep these signatures):
//!
//! ```ignore
//! let hier = Hierarchy::detect()?;                         // reads /proc/self/mountinfo
//! let cg = Manager::new(&hier, spec_cgroups_path, id)?;    // no effects
//! cg.create()?;                                            // mkdir in every controller
//! cg.apply(pid)?;                                          // pid into cgroup.procs everywhere
//! cg.set(&linux_resources)?;                               // write limits
//! cg.pids()?; cg.freeze()?; cg.thaw()?; cg.stats()?;
//! cg.destroy()?;                                           // kill leftovers, rmdir everywhere
//! let saved: CgroupPaths = cg.paths();                     // serde, kept in state.json
//! let cg = Manager::from_paths(&saved);                    // for later commands
//! ```
//!
//! (The helper implementing issue 3 replaces this skeleton; the public names above stay.)

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroups: {0} is not implemented yet")]
    NotImplemented(&'static str),
}

/// Which cgroup layout the host has, and where each controller is mounted.
#[derive(Debug, Clone)]
pub struct Hierarchy {}

impl Hierarchy {
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        Ok(Hierarchy {})
    }
}

/// Where one container's cgroup lives, per controller; serialisable for state.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    pub paths: Vec<(String, PathBuf)>,
}

pub struct Manager {
    paths: CgroupPaths,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {}

impl Manager {
    pub fn new(_hier: &Hierarchy, _cgroups_path: Option<&str>, _id: &str) -> Result<Manager, CgroupError> {
        Ok(Manager { paths: CgroupPaths::default() })
    }
    pub fn from_paths(paths: &CgroupPaths) -> Manager {
        Manager { paths: paths.clone() }
    }
    pub fn paths(&self) -> CgroupPaths {
        self.paths.clone()
    }
    pub fn create(&self) -> Result<(), CgroupError> {
        Ok(())
    }
    pub fn apply(&self, _pid: i32) -> Result<(), CgroupError> {
        Ok(())
    }
    pub fn set(&self, _r: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        Ok(())
    }
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Err(CgroupError::NotImplemented("pids"))
    }
    pub fn freeze(&self) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("freeze"))
    }
    pub fn thaw(&self) -> Result<(), CgroupError> {
        Err(CgroupError::NotImplemented("thaw"))
    }
    pub fn is_frozen(&self) -> bool {
        false
    }
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        Err(CgroupError::NotImplemented("stats"))
    }
    pub fn destroy(&self) -> Result<(), CgroupError> {
        Ok(())
    }
}
