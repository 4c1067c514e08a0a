//! [`Manager`]: one container's cgroup across every hierarchy, and [`CgroupPaths`], its
//! serialisable description kept in the runtime's state.json.
//!
//! Owns: the lifecycle `new` (pure) → `create` → `apply` → `set` → (`freeze`/`thaw`,
//! `stats`, `pids`) → `destroy`, and routing each resource to the hierarchy that owns its
//! controller:
//!
//! | layout | limits go to                       | cgroup2 directory               |
//! |--------|------------------------------------|---------------------------------|
//! | v2     | the unified directory              | required                        |
//! | v1     | each v1 controller's directory     | none                            |
//! | hybrid | v1 controllers; controllers only cgroup2 has (hugetlb here) and `unified` go to cgroup2 | created and joined when possible (runc does the same) |
//!
//! Invariants:
//! - every directory is strictly below its mount point ([`crate::detect`] guarantees it
//!   for new paths; [`Manager::destroy`] re-checks for paths read back from state.json,
//!   so a corrupted state file cannot make it kill a whole hierarchy);
//! - `create` leaves nothing behind on failure and refuses a pre-existing cgroup that
//!   already holds processes;
//! - `set` validates everything before the first write and rolls back on failure;
//! - `destroy` is idempotent: gone is success; it never signals the calling process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxRdma, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::cgroupfs::{self, current_device_line, DeviceProgramLoader, Plan};
use crate::convert::{v1_limit, v2_limit};
use crate::detect::{check_id, clean_cgroups_path, Hierarchy, Layout};
use crate::error::CgroupError;
use crate::stats::{self, Stats};
use crate::{v1, v2};

/// A container's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Dir {
    /// Controllers of that hierarchy (`["cpu", "cpuacct"]` when co-mounted).
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    pub path: PathBuf,
}

/// A container's directory in the cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedDir {
    pub mountpoint: PathBuf,
    pub path: PathBuf,
    /// Controllers available at the cgroup2 root when the manager was made.
    pub controllers: Vec<String>,
}

/// Where one container's cgroup lives, per hierarchy; serialisable for state.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPaths {
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub v1: Vec<V1Dir>,
    #[serde(default)]
    pub unified: Option<UnifiedDir>,
}

impl CgroupPaths {
    /// The container's directory for a v1 controller (`"memory"`, `"name=systemd"`).
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    /// The container's cgroup2 directory (pure v2 and hybrid).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.path.as_path())
    }

    /// Every directory with its mount point: v1 hierarchies, then cgroup2.
    fn all(&self) -> Vec<(&Path, &Path)> {
        let mut v: Vec<(&Path, &Path)> = self
            .v1
            .iter()
            .map(|d| (d.path.as_path(), d.mountpoint.as_path()))
            .collect();
        if let Some(u) = &self.unified {
            v.push((&u.path, &u.mountpoint));
        }
        v
    }
}

/// One container's cgroup.
#[derive(Debug, Clone)]
pub struct Manager {
    paths: CgroupPaths,
    device_loader: Option<DeviceProgramLoader>,
}

/// Default parent for containers without a `cgroupsPath`.
pub const DEFAULT_PARENT: &str = "berth";

impl Manager {
    /// Resolve where the container's cgroup goes. No effects.
    ///
    /// `cgroups_path` is `linux.cgroupsPath`: absolute = below each mount point, relative
    /// = below this process's own cgroup in each hierarchy (runc); `None` or empty =
    /// `/berth/<id>`.
    pub fn new(
        hier: &Hierarchy,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Manager, CgroupError> {
        check_id(id)?;
        let default = format!("/{DEFAULT_PARENT}/{id}");
        let raw = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(&default);
        let cp = clean_cgroups_path(raw)?;
        let v1 = hier
            .v1_mounts()
            .iter()
            .map(|m| V1Dir {
                controllers: m.controllers.clone(),
                mountpoint: m.mountpoint.clone(),
                path: cp.dir_in(&m.mountpoint, &m.own),
            })
            .collect();
        let unified = hier.unified().map(|u| UnifiedDir {
            mountpoint: u.mountpoint.clone(),
            path: cp.dir_in(&u.mountpoint, &u.own),
            controllers: u.controllers.clone(),
        });
        Ok(Manager {
            paths: CgroupPaths {
                layout: hier.layout(),
                v1,
                unified,
            },
            device_loader: None,
        })
    }

    /// Rebuild from what [`Manager::paths`] returned (state.json), for later commands.
    pub fn from_paths(paths: &CgroupPaths) -> Manager {
        Manager {
            paths: paths.clone(),
            device_loader: None,
        }
    }

    /// Set the function that attaches cgroup v2 device programs (needs bpf(2), so it
    /// comes from `berth-sys`). Without it, `set` with device rules fails on pure v2.
    pub fn with_device_program_loader(mut self, loader: DeviceProgramLoader) -> Manager {
        self.device_loader = Some(loader);
        self
    }

    pub fn paths(&self) -> CgroupPaths {
        self.paths.clone()
    }

    pub fn layout(&self) -> Layout {
        self.paths.layout
    }

    /// The cgroup2 directory a new child can be born in (`clone3(CLONE_INTO_CGROUP)`,
    /// see [`Manager::join_self`]): the container's cgroup on v2, and on hybrid the
    /// cgroup2 side when `create` could make it. `None` on pure v1.
    pub fn clone_target(&self) -> Option<&Path> {
        let u = self.paths.unified.as_ref()?;
        match self.paths.layout {
            Layout::V2 => Some(&u.path),
            Layout::Hybrid if u.path.is_dir() => Some(&u.path),
            _ => None,
        }
    }

    /// Move the calling process into the cgroup in every hierarchy, from inside.
    /// The caller must be single-threaded: on v1 this writes "0" into each `tasks`
    /// file, which moves the calling thread, and a migration of the caller's own
    /// single thread is the one the kernel does without write-locking its global
    /// threadgroup rwsem. [`Manager::apply`] (a pid into `cgroup.procs`) takes that
    /// lock once per hierarchy, and its first taking after a quiet moment waits for
    /// an RCU grace period: 8-24 ms per container start on this project's 250 Hz
    /// hybrid host, against ~0.5 ms this way. cgroup2 has no such path for a domain
    /// cgroup; a child that was born there (`in_unified`, [`Manager::clone_target`])
    /// skips it, otherwise "0" goes into its `cgroup.procs`.
    pub fn join_self(&self, in_unified: bool) -> Result<(), CgroupError> {
        let pid = nix::unistd::getpid().as_raw();
        let join = |dir: &Path, file: &str| {
            cgroupfs::write_raw(dir, file, "0").map_err(|source| CgroupError::Join {
                pid,
                path: dir.join(file),
                source,
            })
        };
        for d in &self.paths.v1 {
            join(&d.path, "tasks")?;
        }
        if !in_unified {
            if let Some(dir) = self.clone_target() {
                join(dir, "cgroup.procs")?;
            }
        }
        Ok(())
    }

    /// mkdir the cgroup in every hierarchy (parents included). On v1 new cpusets get
    /// their parent's CPUs and memory nodes; on v2 controllers are enabled down the path.
    /// Refuses a cgroup that already exists and holds processes. On error, removes what
    /// it created.
    pub fn create(&self) -> Result<(), CgroupError> {
        let mut created: Vec<Vec<PathBuf>> = Vec::new();
        let result = self.create_inner(&mut created);
        if let Err(cause) = result {
            let failures: Vec<String> = created
                .iter()
                .flat_map(|c| cgroupfs::remove_created(c))
                .collect();
            return Err(if failures.is_empty() {
                cause
            } else {
                CgroupError::RollbackFailed {
                    cause: Box::new(cause),
                    failures,
                }
            });
        }
        Ok(())
    }

    fn create_inner(&self, created: &mut Vec<Vec<PathBuf>>) -> Result<(), CgroupError> {
        for d in &self.paths.v1 {
            let new = cgroupfs::mkdir_all(&d.path)?;
            let existed = !new.contains(&d.path);
            created.push(new);
            if existed {
                check_unused(&d.path)?;
            }
            if d.controllers.iter().any(|c| c == "cpuset") {
                v1::fill_cpusets(&d.mountpoint, &d.path)?;
            }
        }
        if let Some(u) = &self.paths.unified {
            match cgroupfs::mkdir_all(&u.path) {
                Ok(new) => {
                    let existed = !new.contains(&u.path);
                    created.push(new);
                    if existed {
                        check_unused(&u.path)?;
                    }
                    if self.paths.layout == Layout::V2 {
                        v2::enable_controllers(&u.mountpoint, &u.path, &u.controllers);
                    }
                }
                // Hybrid: the cgroup2 side is optional (read-only mount, nested host...).
                Err(_) if self.paths.layout == Layout::Hybrid => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Move `pid` (its whole thread group) into the cgroup in every hierarchy.
    pub fn apply(&self, pid: i32) -> Result<(), CgroupError> {
        let join = |dir: &Path| {
            cgroupfs::write_raw(dir, "cgroup.procs", &pid.to_string()).map_err(|source| {
                CgroupError::Join {
                    pid,
                    path: dir.join("cgroup.procs"),
                    source,
                }
            })
        };
        for d in &self.paths.v1 {
            join(&d.path)?;
        }
        if let Some(u) = &self.paths.unified {
            // Hybrid: joined when create could make the directory.
            if self.paths.layout == Layout::V2 || u.path.is_dir() {
                join(&u.path)?;
            }
        }
        Ok(())
    }

    /// Apply `linux.resources`: validate all of it, then write; on failure restore the
    /// values already written. Device rules are applied only when `r.devices` is `Some`
    /// (an `update` should pass `None`, as runc's does).
    pub fn set(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let plan = self.plan(r)?;
        cgroupfs::execute(plan, self.device_loader)
    }

    pub(crate) fn plan(&self, r: &LinuxResources) -> Result<Plan, CgroupError> {
        let mut plan = Plan::default();
        let p = &self.paths;
        let unified_map = r.unified().as_ref().filter(|u| !u.is_empty());
        let hugepages = r.hugepage_limits().as_deref().filter(|h| !h.is_empty());
        let rdma = r.rdma().as_ref().filter(|m| !m.is_empty());
        match p.layout {
            Layout::V1 | Layout::Hybrid => {
                if let Some(d) = r.devices() {
                    v1::plan_devices(&mut plan, p, d)?;
                }
                if let Some(c) = r.cpu() {
                    v1::plan_cpu(&mut plan, p, c)?;
                }
                if let Some(m) = r.memory() {
                    v1::plan_memory(&mut plan, p, m)?;
                }
                if let Some(pids) = r.pids() {
                    if v1::pids_value(pids).is_some() {
                        v1::plan_pids(&mut plan, v1::need(p, "pids.limit", "pids")?, pids);
                    }
                }
                if let Some(b) = r.block_io() {
                    v1::plan_blkio(&mut plan, p, b)?;
                }
                if let Some(h) = hugepages {
                    if let Some(dir) = p.v1_dir("hugetlb") {
                        v1::plan_hugetlb(&mut plan, dir, h, "limit_in_bytes", v1_limit)?;
                    } else {
                        // Hybrid hosts may give hugetlb to cgroup2 only (this project's host does).
                        let d = self.hybrid_v2("hugepageLimits", "hugetlb")?;
                        d.need("hugepageLimits", "hugetlb")?;
                        v1::plan_hugetlb(&mut plan, d.dir, h, "max", v2_limit)?;
                    }
                }
                if let Some(n) = r.network() {
                    v1::plan_network(&mut plan, p, n)?;
                }
                if let Some(m) = rdma {
                    let dir = match p.v1_dir("rdma") {
                        Some(dir) => dir,
                        None => self.hybrid_v2("rdma", "rdma")?.dir,
                    };
                    plan_rdma(&mut plan, dir, m)?;
                }
                if let Some(u) = unified_map {
                    if p.layout == Layout::V1 {
                        return Err(CgroupError::Unsupported {
                            field: "unified",
                            reason: "unified (cgroup v2) resources were given but this host has no cgroup v2 hierarchy".into(),
                        });
                    }
                    let d = self.hybrid_v2("unified", "")?;
                    v2::plan_unified(&mut plan, &d, u)?;
                }
            }
            Layout::V2 => {
                let dir = p.unified_dir().ok_or(CgroupError::NoCgroupMounts)?;
                let d = v2::V2Dir::open(dir)?;
                if let Some(c) = r.cpu() {
                    v2::plan_cpu(&mut plan, &d, c)?;
                }
                if let Some(m) = r.memory() {
                    v2::plan_memory(&mut plan, &d, m)?;
                }
                if let Some(pids) = r.pids() {
                    if v1::pids_value(pids).is_some() {
                        v1::plan_pids(&mut plan, d.need("pids.limit", "pids")?, pids);
                    }
                }
                if let Some(b) = r.block_io() {
                    // leafWeight is ignored like runc and crun do (see the v2 module doc).
                    v2::plan_io(&mut plan, &d, b)?;
                }
                if let Some(h) = hugepages {
                    v1::plan_hugetlb(
                        &mut plan,
                        d.need("hugepageLimits", "hugetlb")?,
                        h,
                        "max",
                        v2_limit,
                    )?;
                }
                if let Some(n) = r.network() {
                    if n.class_id().is_some()
                        || n.priorities().as_ref().is_some_and(|p| !p.is_empty())
                    {
                        return Err(CgroupError::Unsupported {
                            field: "network",
                            reason: "net_cls/net_prio do not exist on cgroup v2 (use eBPF or nftables cgroup matching)".into(),
                        });
                    }
                }
                if let Some(m) = rdma {
                    plan_rdma(&mut plan, d.need("rdma", "rdma")?, m)?;
                }
                if let Some(rules) = r.devices() {
                    v2::plan_devices(&mut plan, dir, rules)?;
                }
                if let Some(u) = unified_map {
                    v2::plan_unified(&mut plan, &d, u)?;
                }
            }
        }
        Ok(plan)
    }

    /// On hybrid: the cgroup2 directory, with `controller` enabled down the path (if
    /// non-empty). Enabling is the one effect of planning; it is idempotent and only
    /// happens when a resource needs a controller only cgroup2 has.
    fn hybrid_v2(
        &self,
        field: &'static str,
        controller: &str,
    ) -> Result<v2::V2Dir<'_>, CgroupError> {
        let Some(u) = self.paths.unified.as_ref().filter(|u| u.path.is_dir()) else {
            return Err(CgroupError::ControllerUnavailable {
                field,
                controller: controller.to_owned(),
                where_: None,
            });
        };
        if !controller.is_empty() {
            if !u.controllers.iter().any(|c| c == controller) {
                return Err(CgroupError::ControllerUnavailable {
                    field,
                    controller: controller.to_owned(),
                    where_: Some(u.mountpoint.clone()),
                });
            }
            v2::enable_controllers(&u.mountpoint, &u.path, &[controller.to_owned()]);
        }
        v2::V2Dir::open(&u.path)
    }

    /// The pids in the cgroup, including its child cgroups, sorted. Empty when the cgroup
    /// no longer exists.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut pids = cgroupfs::procs_recursive(dir)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// The directory whose cgroup.procs lists the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        if self.paths.layout == Layout::V2 {
            return self.paths.unified_dir();
        }
        ["pids", "devices", "freezer", "memory", "cpu"]
            .iter()
            .find_map(|c| self.paths.v1_dir(c))
            .or_else(|| self.paths.v1.first().map(|d| d.path.as_path()))
    }

    /// The freezer: v1 `freezer` controller, else the cgroup2 core freezer.
    fn freezer(&self) -> Option<(bool, &Path)> {
        if let Some(d) = self.paths.v1_dir("freezer") {
            return Some((true, d));
        }
        self.paths
            .unified_dir()
            .filter(|d| self.paths.layout == Layout::V2 || d.is_dir())
            .map(|d| (false, d))
    }

    /// Freeze every process in the cgroup; returns once the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((true, d)) => v1::freeze(d),
            Some((false, d)) => v2::freeze(d),
            None => Err(CgroupError::NoFreezer),
        }
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((true, d)) => v1::thaw(d),
            Some((false, d)) => v2::thaw(d),
            None => Err(CgroupError::NoFreezer),
        }
    }

    /// Whether the cgroup is frozen (false when unknown or gone).
    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Some((true, d)) => cgroupfs::read(d, "freezer.state")
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false),
            Some((false, d)) => match v2::events_frozen(d) {
                Ok(Some(f)) => f,
                _ => cgroupfs::read(d, "cgroup.freeze")
                    .map(|s| s.trim() == "1")
                    .unwrap_or(false),
            },
            None => false,
        }
    }

    /// Usage and limits. Fails if the cgroup is gone (read OOM counters before `destroy`).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let primary = self.procs_dir().ok_or(CgroupError::NoCgroupMounts)?;
        if !primary.is_dir() {
            return Err(CgroupError::Read {
                path: primary.to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        match self.paths.layout {
            Layout::V2 => stats::read_v2(primary),
            Layout::V1 | Layout::Hybrid => {
                stats::read_v1(&|c| self.paths.v1_dir(c).map(Path::to_path_buf))
            }
        }
    }

    /// How many processes the OOM killer has killed in the cgroup: one file read
    /// (v1 `memory.oom_control`, v2 `memory.events`), where [`Manager::stats`] reads
    /// every controller. `None` without a memory controller or once the cgroup is gone.
    pub fn oom_kills(&self) -> Option<u64> {
        let (dir, file) = match self.paths.layout {
            Layout::V2 => (self.paths.unified_dir()?, "memory.events"),
            Layout::V1 | Layout::Hybrid => (self.paths.v1_dir("memory")?, "memory.oom_control"),
        };
        let text = cgroupfs::read_opt(dir, file).ok()??;
        cgroupfs::key(&cgroupfs::flat_keyed(&text), "oom_kill")
    }

    /// Kill whatever is left in the cgroup (SIGKILL), wait until it is empty and remove
    /// it from every hierarchy, child cgroups first. Already gone counts as success.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut errors = Vec::new();
        for (dir, mnt) in self.paths.all() {
            if !dir.starts_with(mnt) || dir == mnt {
                return Err(CgroupError::InvalidCgroupsPath {
                    path: dir.display().to_string(),
                    reason: "is not below its hierarchy's mount point; refusing to destroy it",
                });
            }
        }
        if let Err(e) = self.kill_all() {
            errors.push(e);
        }
        for (dir, _) in self.paths.all() {
            if let Err(e) = cgroupfs::remove_cgroup(dir) {
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(CgroupError::Destroy { errors }),
        }
    }

    /// Every pid in any of our directories (recursively), minus this process.
    fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let me = std::process::id() as i32;
        let mut pids = Vec::new();
        for (dir, _) in self.paths.all() {
            pids.extend(cgroupfs::procs_recursive(dir)?);
        }
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|p| *p != me);
        Ok(pids)
    }

    /// SIGKILL everything and wait until the cgroup is empty.
    ///
    /// Race-free where the kernel helps: v2 `cgroup.kill` (Linux 5.14) kills atomically;
    /// otherwise the cgroup is frozen first so nothing can fork or exit between reading
    /// the pids and signalling them (a frozen v1 task only dies once thawed), as runc's
    /// `signalAllProcesses` does. Stragglers (a process that moved in meanwhile) are
    /// killed again while waiting.
    fn kill_all(&self) -> Result<(), CgroupError> {
        if self.all_pids()?.is_empty() {
            return Ok(());
        }
        if let Some(u) = self
            .paths
            .unified_dir()
            .filter(|d| cgroupfs::exists(d, "cgroup.kill"))
        {
            let _ = cgroupfs::write_raw(u, "cgroup.kill", "1");
        }
        let frozen = self.freezer().is_some() && self.freeze().is_ok();
        let mut first_err = None;
        for pid in self.all_pids()? {
            if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
                if e != nix::errno::Errno::ESRCH && first_err.is_none() {
                    first_err = Some(CgroupError::Kill {
                        pid,
                        path: self.procs_dir().unwrap_or(Path::new("")).to_owned(),
                        source: e.into(),
                    });
                }
            }
        }
        if frozen {
            let _ = self.thaw();
        }
        let start = Instant::now();
        let mut delay = Duration::from_millis(1);
        loop {
            let left = self.all_pids()?;
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                if let Some(e) = first_err {
                    return Err(e);
                }
                return Err(CgroupError::NotEmpty {
                    path: self.procs_dir().unwrap_or(Path::new("")).to_owned(),
                    pids: left,
                });
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }
}

/// A pre-existing cgroup must be empty: sharing one with foreign processes would put
/// them under the container's limits and let `destroy` kill them (runc refuses too).
fn check_unused(dir: &Path) -> Result<(), CgroupError> {
    let pids = cgroupfs::procs_recursive(dir)?;
    match pids.first() {
        None => Ok(()),
        Some(first) => Err(CgroupError::InUse {
            path: dir.to_owned(),
            count: pids.len(),
            first: *first,
        }),
    }
}

/// `rdma.max` (same format on v1 and v2): `<device> hca_handle=N hca_object=M`.
fn plan_rdma(
    plan: &mut Plan,
    dir: &Path,
    m: &std::collections::HashMap<String, LinuxRdma>,
) -> Result<(), CgroupError> {
    let mut devs: Vec<&String> = m.keys().collect();
    devs.sort();
    for dev in devs {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(CgroupError::InvalidValue {
                field: "rdma",
                value: format!("{dev:?}"),
                reason: "not an RDMA device name".into(),
            });
        }
        let l = &m[dev];
        let mut value = dev.clone();
        if let Some(h) = l.hca_handles() {
            value.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            value.push_str(&format!(" hca_object={o}"));
        }
        if value == *dev {
            continue;
        }
        let undo = current_device_line(
            dir,
            "rdma.max",
            dev,
            format!("{dev} hca_handle=max hca_object=max"),
        );
        plan.write_with_undo("rdma", dir, "rdma.max", value, undo);
    }
    Ok(())
}

impl std::fmt::Display for CgroupPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dirs: Vec<String> = self
            .all()
            .iter()
            .map(|(d, _)| d.display().to_string())
            .collect();
        write!(f, "{:?} [{}]", self.layout, dirs.join(", "))
    }
}
