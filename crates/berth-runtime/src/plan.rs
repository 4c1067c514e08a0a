//! plan: config.json → a validated, effect-free description of what to do.
//!
//! "Decide first, then act": every check that can be made without touching the
//! kernel happens here, so a bad bundle fails before any state directory,
//! cgroup, namespace or mount exists. The init process then walks the plan.
//!
//! References: OCI runtime spec config.md and config-linux.md; mount(8) for
//! the option names; runc libcontainer/specconv for the flag table.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{
    Hooks, LinuxCapabilities, LinuxDeviceType, LinuxNamespaceType, LinuxResources, LinuxSeccomp,
    PosixRlimitType, Process, Spec,
};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, PlanError> {
    Err(PlanError::Invalid(msg.into()))
}

/// Kernel namespace kinds, in the order they are joined by path.
///
/// The user namespace comes first so the namespaces joined or created after it
/// are owned by it; mount comes last so /proc/<pid>/ns paths keep resolving.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum NsKind {
    User,
    Pid,
    Ipc,
    Uts,
    Net,
    Cgroup,
    Time,
    Mnt,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Pid,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Net,
        NsKind::Cgroup,
        NsKind::Time,
        NsKind::Mnt,
    ];

    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NsKind::User => CloneFlags::CLONE_NEWUSER,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            NsKind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
            NsKind::Mnt => CloneFlags::CLONE_NEWNS,
        }
    }

    /// The name under /proc/<pid>/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Pid => "pid",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Net => "net",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
            NsKind::Mnt => "mnt",
        }
    }

    /// The name in config.json.
    pub fn spec_name(self) -> &'static str {
        match self {
            NsKind::Net => "network",
            NsKind::Mnt => "mount",
            other => other.proc_name(),
        }
    }

    fn from_spec(t: LinuxNamespaceType) -> NsKind {
        match t {
            LinuxNamespaceType::Mount => NsKind::Mnt,
            LinuxNamespaceType::Cgroup => NsKind::Cgroup,
            LinuxNamespaceType::Uts => NsKind::Uts,
            LinuxNamespaceType::Ipc => NsKind::Ipc,
            LinuxNamespaceType::User => NsKind::User,
            LinuxNamespaceType::Pid => NsKind::Pid,
            LinuxNamespaceType::Network => NsKind::Net,
            LinuxNamespaceType::Time => NsKind::Time,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NsPlan {
    pub kind: NsKind,
    /// None: create a new namespace; Some: join the one at this path.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// One mount, with its options already split into flags and fs data.
#[derive(Debug, Clone, PartialEq)]
pub struct MountPlan {
    pub destination: PathBuf,
    pub source: Option<PathBuf>,
    pub fstype: String,
    /// MS_* flags for the mount call (for binds: the flags of the remount).
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// fs-specific data (`size=64m,mode=755`).
    pub data: String,
    pub is_bind: bool,
    /// Recursive mount attributes (rro, rnosuid, ...) applied with mount_setattr.
    pub attr_set: u64,
    pub attr_clr: u64,
    /// tmpfs copy-up: copy the directory's previous content into the new tmpfs.
    pub tmpcopyup: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DevicePlan {
    pub path: PathBuf,
    /// 'c', 'b' or 'p'.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: nix::sys::resource::Resource,
    pub soft: u64,
    pub hard: u64,
}

/// The process to run: the container's init process or an `exec`'d one.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<Rlimit>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub capabilities: Option<LinuxCapabilities>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub rootfs: PathBuf,
    pub root_readonly: bool,
    pub namespaces: Vec<NsPlan>,
    pub uid_mappings: Vec<IdMap>,
    pub gid_mappings: Vec<IdMap>,
    pub mounts: Vec<MountPlan>,
    /// Create the default device nodes: /dev is a fresh tmpfs from the spec.
    pub populate_dev: bool,
    pub devices: Vec<DevicePlan>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    /// Propagation of "/" before the rootfs is prepared (default MS_SLAVE|MS_REC, as runc).
    pub root_propagation: MsFlags,
    /// rootfsPropagation applied to the new root after pivot_root, if given.
    pub rootfs_propagation: Option<MsFlags>,
    pub process: ProcessPlan,
    pub hooks: Hooks,
    pub time_offsets: Vec<(String, i64, u32)>,
    pub cgroups_path: Option<String>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<LinuxSeccomp>,
    pub personality: Option<u64>,
    pub mount_label: Option<String>,
}

impl Plan {
    pub fn has_new(&self, kind: NsKind) -> bool {
        self.namespaces
            .iter()
            .any(|n| n.kind == kind && n.path.is_none())
    }
    pub fn has(&self, kind: NsKind) -> bool {
        self.namespaces.iter().any(|n| n.kind == kind)
    }
}

/// Read and parse `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec, PlanError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| PlanError::Read {
        path: path.clone(),
        source,
    })?;
    parse_spec(&text).map_err(|msg| PlanError::Invalid(format!("{}: {msg}", path.display())))
}

/// Parse config.json, naming the field at fault (`linux.seccomp.architectures[0]:
/// unknown variant ...`) and leaving out serde's list of every valid variant.
pub fn parse_spec(text: &[u8]) -> Result<Spec, String> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let mut msg = e.into_inner().to_string();
        if let Some(i) = msg.find(", expected one of") {
            let tail = msg[i..]
                .find(" at line ")
                .map(|j| msg[i + j..].to_string())
                .unwrap_or_default();
            msg = format!("{}{tail}", &msg[..i]);
        }
        if field.is_empty() || field == "." {
            msg
        } else {
            format!("{field}: {msg}")
        }
    })
}

/// Validate `spec` and turn it into a [`Plan`]. `bundle` anchors a relative root.path.
pub fn from_spec(spec: &Spec, bundle: &Path) -> Result<Plan, PlanError> {
    let root = match spec.root() {
        Some(r) => r,
        None => return invalid("root is missing"),
    };
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return invalid(format!("root.path {} is not a directory", rootfs.display())),
        Err(e) => return invalid(format!("root.path {}: {e}", rootfs.display())),
    }
    let process = match spec.process() {
        Some(p) => process_plan(p)?,
        None => return invalid("process is missing"),
    };
    let linux = spec.linux().clone().unwrap_or_default();
    validate_lsm(&process)?;

    let mut namespaces = Vec::new();
    let mut seen = HashSet::new();
    for ns in linux.namespaces().clone().unwrap_or_default() {
        let kind = NsKind::from_spec(ns.typ());
        if !seen.insert(kind) {
            return invalid(format!("namespace {} listed twice", kind.spec_name()));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return invalid(format!(
                    "namespace {} path {} is not absolute",
                    kind.spec_name(),
                    p.display()
                ));
            }
        }
        namespaces.push(NsPlan {
            kind,
            path: ns.path().clone(),
        });
    }
    namespaces.sort_by_key(|n| n.kind);

    let map = |v: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .map(|m| IdMap {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            })
            .collect()
    };
    let uid_mappings = map(linux.uid_mappings());
    let gid_mappings = map(linux.gid_mappings());
    let new_user = namespaces
        .iter()
        .any(|n| n.kind == NsKind::User && n.path.is_none());
    if new_user && (uid_mappings.is_empty() || gid_mappings.is_empty()) {
        return invalid("a new user namespace needs uidMappings and gidMappings");
    }
    if !namespaces.iter().any(|n| n.kind == NsKind::User)
        && (!uid_mappings.is_empty() || !gid_mappings.is_empty())
    {
        return invalid("uidMappings/gidMappings given without a user namespace");
    }
    validate_id_map("uidMappings", &uid_mappings)?;
    validate_id_map("gidMappings", &gid_mappings)?;
    let has_new = |k: NsKind| namespaces.iter().any(|n| n.kind == k && n.path.is_none());
    let has = |k: NsKind| namespaces.iter().any(|n| n.kind == k);

    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(NsKind::Uts) {
        return invalid("unable to set hostname without a private UTS namespace");
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(NsKind::Uts) {
        return invalid("unable to set domainname without a private UTS namespace");
    }
    let time_offsets: Vec<(String, i64, u32)> = linux
        .time_offsets()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(clock, off)| (clock, off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)))
        .collect();
    if !time_offsets.is_empty() && !has_new(NsKind::Time) {
        return invalid("timeOffsets need a new time namespace");
    }
    for (clock, _, _) in &time_offsets {
        if clock != "monotonic" && clock != "boottime" {
            return invalid(format!("timeOffsets: unknown clock {clock:?}"));
        }
    }

    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctl.sort();
    for (key, _) in &sysctl {
        validate_sysctl(key, &has)?;
    }

    let mut mounts = Vec::new();
    for m in spec.mounts().clone().unwrap_or_default() {
        mounts.push(mount_plan(&m)?);
    }
    // runc: /dev gets the default nodes unless the config bind-mounts a /dev in.
    let populate_dev = !mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev") && m.is_bind);

    let mut devices = Vec::new();
    for d in linux.devices().clone().unwrap_or_default() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => 'p',
            LinuxDeviceType::A => {
                return invalid(format!(
                    "device {}: type 'a' is not a node type",
                    d.path().display()
                ))
            }
        };
        let path = clean_container_path(d.path()).ok_or_else(|| {
            PlanError::Invalid(format!(
                "device path {} is not absolute",
                d.path().display()
            ))
        })?;
        if !path.starts_with("/dev") {
            return invalid(format!("device {} is outside /dev", d.path().display()));
        }
        devices.push(DevicePlan {
            path,
            kind,
            major: d.major().max(0) as u64,
            minor: d.minor().max(0) as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }

    let paths = |v: &Option<Vec<String>>| -> Result<Vec<PathBuf>, PlanError> {
        v.clone()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                clean_container_path(Path::new(p))
                    .ok_or_else(|| PlanError::Invalid(format!("path {p} must be absolute")))
            })
            .collect()
    };
    let masked_paths = paths(linux.masked_paths())?;
    let readonly_paths = paths(linux.readonly_paths())?;

    let rootfs_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(p) => match propagation_flag(p) {
            Some(f) => Some(f),
            None => return invalid(format!("rootfsPropagation {p:?} is not a propagation type")),
        },
    };
    // runc: "/" becomes rslave unless rootfsPropagation says otherwise, so host
    // mounts made later still reach us but ours never leak back to the host.
    let root_propagation = match rootfs_propagation {
        Some(f) if f.contains(MsFlags::MS_SHARED) => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some(f) if f.contains(MsFlags::MS_PRIVATE) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };

    let personality = match linux.personality() {
        None => None,
        Some(p) => {
            use oci_spec::runtime::LinuxPersonalityDomain as D;
            Some(match p.domain() {
                D::PerLinux => 0x0000,
                D::PerLinux32 => 0x0008,
            })
        }
    };

    let resources = linux
        .resources()
        .clone()
        .map(|r| with_default_device_rules(r, &devices));
    Ok(Plan {
        rootfs,
        root_readonly: root.readonly().unwrap_or(false),
        namespaces,
        uid_mappings,
        gid_mappings,
        mounts,
        populate_dev,
        devices,
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
        sysctl,
        masked_paths,
        readonly_paths,
        root_propagation,
        rootfs_propagation,
        process,
        hooks: spec.hooks().clone().unwrap_or_default(),
        time_offsets,
        cgroups_path: linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        resources,
        seccomp: linux.seccomp().clone(),
        personality,
        mount_label: linux.mount_label().clone().filter(|l| !l.is_empty()),
    })
}

/// Each mapping must be non-empty, must not overflow, and no two may overlap on
/// either side (the kernel rejects that with a bare EINVAL).
fn validate_id_map(field: &str, maps: &[IdMap]) -> Result<(), PlanError> {
    for (i, m) in maps.iter().enumerate() {
        if m.size == 0 {
            return invalid(format!("{field}[{i}]: size is 0"));
        }
        if m.container_id.checked_add(m.size - 1).is_none()
            || m.host_id.checked_add(m.size - 1).is_none()
        {
            return invalid(format!("{field}[{i}]: range overflows 32 bits"));
        }
        for (j, o) in maps.iter().enumerate().skip(i + 1) {
            let overlap =
                |a: u32, b: u32| a < b.saturating_add(o.size) && b < a.saturating_add(m.size);
            if overlap(m.container_id, o.container_id) {
                return invalid(format!(
                    "{field}[{i}] and {field}[{j}] overlap in container ids"
                ));
            }
            if overlap(m.host_id, o.host_id) {
                return invalid(format!("{field}[{i}] and {field}[{j}] overlap in host ids"));
            }
        }
    }
    Ok(())
}

/// The device cgroup rules a container always gets after the spec's own
/// (runc specconv.AllowedDevices): mknod of anything, the default device
/// nodes, ptys; then an allow rule for every `linux.devices` entry. Without
/// them the usual `deny all` in config.json would stop the init creating
/// /dev/null itself.
pub fn with_default_device_rules(mut r: LinuxResources, devices: &[DevicePlan]) -> LinuxResources {
    let mut rules = r.devices().clone().unwrap_or_default();
    let rule = |typ: &str,
                major: Option<i64>,
                minor: Option<i64>,
                access: &str|
     -> oci_spec::runtime::LinuxDeviceCgroup {
        serde_json::from_value(serde_json::json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": access}))
            .expect("static device rule is valid")
    };
    rules.extend([
        rule("c", None, None, "m"),         // mknod of any char device
        rule("b", None, None, "m"),         // mknod of any block device
        rule("c", Some(1), Some(3), "rwm"), // /dev/null
        rule("c", Some(1), Some(8), "rwm"), // /dev/random
        rule("c", Some(1), Some(7), "rwm"), // /dev/full
        rule("c", Some(5), Some(0), "rwm"), // /dev/tty
        rule("c", Some(1), Some(5), "rwm"), // /dev/zero
        rule("c", Some(1), Some(9), "rwm"), // /dev/urandom
        rule("c", Some(5), Some(1), "rwm"), // /dev/console
        rule("c", Some(136), None, "rwm"),  // /dev/pts/*
        rule("c", Some(5), Some(2), "rwm"), // /dev/ptmx
    ]);
    for d in devices {
        if d.kind != 'p' {
            rules.push(rule(
                &d.kind.to_string(),
                Some(d.major as i64),
                Some(d.minor as i64),
                "rwm",
            ));
        }
    }
    r.set_devices(Some(rules));
    r
}

/// An LSM label the host can't apply is an error now, before anything exists.
pub fn validate_lsm(p: &ProcessPlan) -> Result<(), PlanError> {
    if let Some(profile) = &p.apparmor_profile {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        if !enabled {
            return invalid(format!(
                "process.apparmorProfile {profile:?}: AppArmor is not enabled on this host"
            ));
        }
    }
    if let Some(label) = &p.selinux_label {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return invalid(format!(
                "process.selinuxLabel {label:?}: SELinux is not enabled on this host"
            ));
        }
    }
    Ok(())
}

/// runc's sysctl validation: a namespaced sysctl needs its namespace.
fn validate_sysctl(key: &str, has: &dyn Fn(NsKind) -> bool) -> Result<(), PlanError> {
    if key.is_empty() || key.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
        return invalid(format!("sysctl {key:?} is not a valid name"));
    }
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        if !has(NsKind::Ipc) {
            return invalid(format!(
                "sysctl {key:?} is not allowed in the host's ipc namespace"
            ));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if !has(NsKind::Net) {
            return invalid(format!(
                "sysctl {key:?} is not allowed in the host's network namespace"
            ));
        }
        return Ok(());
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        if !has(NsKind::Uts) {
            return invalid(format!(
                "sysctl {key:?} is not allowed in the host's uts namespace"
            ));
        }
        return Ok(());
    }
    invalid(format!(
        "sysctl {key:?} is not in any namespace berth can isolate"
    ))
}

/// Turn an OCI process into a [`ProcessPlan`] (used for init and for `exec --process`).
pub fn process_plan(p: &Process) -> Result<ProcessPlan, PlanError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return invalid("process.args must not be empty");
    }
    if !p.cwd().is_absolute() {
        return invalid(format!("process.cwd {} is not absolute", p.cwd().display()));
    }
    for e in p.env().clone().unwrap_or_default() {
        if !e.contains('=') || e.contains('\0') {
            return invalid(format!("process.env entry {e:?} is not KEY=value"));
        }
    }
    let mut rlimits = Vec::new();
    let mut seen = HashSet::new();
    for r in p.rlimits().clone().unwrap_or_default() {
        if !seen.insert(format!("{:?}", r.typ())) {
            return invalid(format!("rlimit {:?} given twice", r.typ()));
        }
        if r.soft() > r.hard() {
            return invalid(format!(
                "rlimit {:?}: soft {} above hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            ));
        }
        rlimits.push(Rlimit {
            resource: rlimit_resource(r.typ()),
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let console_size = p
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    Ok(ProcessPlan {
        args,
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().clone(),
        uid: p.user().uid(),
        gid: p.user().gid(),
        additional_gids: p.user().additional_gids().clone().unwrap_or_default(),
        umask: p.user().umask(),
        rlimits,
        terminal: p.terminal().unwrap_or(false),
        console_size,
        capabilities: p.capabilities().clone(),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        apparmor_profile: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
        selinux_label: p.selinux_label().clone().filter(|s| !s.is_empty()),
    })
}

fn rlimit_resource(t: PosixRlimitType) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource as R;
    match t {
        PosixRlimitType::RlimitCpu => R::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => R::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => R::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => R::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => R::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => R::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => R::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => R::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => R::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => R::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => R::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => R::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => R::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => R::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => R::RLIMIT_RTTIME,
    }
}

/// An absolute container path with `.`/`..` resolved lexically (never above `/`).
/// Returns None for relative paths.
pub fn clean_container_path(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Some(out)
}

pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

// mount_setattr(2) attribute bits (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

/// Split mount(8)-style options into flags, propagation and fs data.
pub fn mount_plan(m: &oci_spec::runtime::Mount) -> Result<MountPlan, PlanError> {
    let destination = match clean_container_path(m.destination()) {
        Some(d) => d,
        // runc 1.1 accepts a relative destination as relative to "/" (with a warning).
        None => clean_container_path(&Path::new("/").join(m.destination()))
            .ok_or_else(|| PlanError::Invalid("mount destination is empty".into()))?,
    };
    let mut fstype = m.typ().clone().unwrap_or_default();
    let options = m.options().clone().unwrap_or_default();
    let mut flags = MsFlags::empty();
    let mut propagation = Vec::new();
    let mut data = Vec::new();
    let mut is_bind = fstype == "bind";
    let (mut attr_set, mut attr_clr) = (0u64, 0u64);
    let mut tmpcopyup = false;
    for o in &options {
        let o = o.as_str();
        let (set, clear) = match o {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => {
                is_bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                is_bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "tmpcopyup" => {
                tmpcopyup = true;
                continue;
            }
            "idmap" | "ridmap" => {
                return invalid(format!(
                    "mount {}: option {o} is not supported",
                    destination.display()
                ))
            }
            other => {
                if let Some(p) = propagation_flag(other) {
                    propagation.push(p);
                    continue;
                }
                let rec = match other {
                    "rro" => Some((MOUNT_ATTR_RDONLY, true)),
                    "rrw" => Some((MOUNT_ATTR_RDONLY, false)),
                    "rnosuid" => Some((MOUNT_ATTR_NOSUID, true)),
                    "rsuid" => Some((MOUNT_ATTR_NOSUID, false)),
                    "rnodev" => Some((MOUNT_ATTR_NODEV, true)),
                    "rdev" => Some((MOUNT_ATTR_NODEV, false)),
                    "rnoexec" => Some((MOUNT_ATTR_NOEXEC, true)),
                    "rexec" => Some((MOUNT_ATTR_NOEXEC, false)),
                    "rnoatime" => Some((MOUNT_ATTR_NOATIME, true)),
                    "rnodiratime" => Some((MOUNT_ATTR_NODIRATIME, true)),
                    "rdiratime" => Some((MOUNT_ATTR_NODIRATIME, false)),
                    "rstrictatime" => Some((MOUNT_ATTR_STRICTATIME, true)),
                    _ => None,
                };
                if let Some((bit, on)) = rec {
                    if on {
                        attr_set |= bit;
                        attr_clr &= !bit;
                    } else {
                        attr_clr |= bit;
                        attr_set &= !bit;
                    }
                    continue;
                }
                data.push(other.to_string());
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    if is_bind {
        fstype = "bind".into();
        flags.insert(MsFlags::MS_BIND);
        if m.source().is_none() {
            return invalid(format!(
                "bind mount {} has no source",
                destination.display()
            ));
        }
    } else if fstype.is_empty() {
        return invalid(format!("mount {} has no type", destination.display()));
    }
    if tmpcopyup && fstype != "tmpfs" {
        return invalid(format!(
            "mount {}: tmpcopyup needs a tmpfs",
            destination.display()
        ));
    }
    Ok(MountPlan {
        destination,
        source: m.source().clone(),
        fstype,
        flags,
        propagation,
        data: data.join(","),
        is_bind,
        attr_set,
        attr_clr,
        tmpcopyup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(dest: &str, typ: &str, src: &str, opts: &[&str]) -> oci_spec::runtime::Mount {
        serde_json::from_value(serde_json::json!({
            "destination": dest, "type": typ, "source": src, "options": opts
        }))
        .expect("valid mount json")
    }

    #[test]
    fn tmpfs_options_split_into_flags_and_data() {
        let p = mount_plan(&mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ))
        .expect("plan");
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert!(!p.is_bind);
    }

    #[test]
    fn bind_ro_with_propagation() {
        let p = mount_plan(&mount(
            "/data",
            "none",
            "/srv",
            &["rbind", "ro", "nosuid", "rprivate"],
        ))
        .expect("plan");
        assert!(p.is_bind);
        assert_eq!(p.fstype, "bind");
        assert!(p.flags.contains(
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        ));
        assert_eq!(p.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let p = mount_plan(&mount(
            "/x",
            "tmpfs",
            "tmpfs",
            &["ro", "rw", "noexec", "exec"],
        ))
        .expect("plan");
        assert!(!p.flags.contains(MsFlags::MS_RDONLY));
        assert!(!p.flags.contains(MsFlags::MS_NOEXEC));
    }

    #[test]
    fn recursive_attrs() {
        let p =
            mount_plan(&mount("/x", "bind", "/srv", &["rbind", "rro", "rnosuid"])).expect("plan");
        assert_eq!(p.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
    }

    #[test]
    fn destination_cannot_climb_out() {
        let p = mount_plan(&mount("/../../etc", "tmpfs", "tmpfs", &[])).expect("plan");
        assert_eq!(p.destination, PathBuf::from("/etc"));
        let p = mount_plan(&mount("relative/dir", "tmpfs", "tmpfs", &[])).expect("plan");
        assert_eq!(p.destination, PathBuf::from("/relative/dir"));
    }

    #[test]
    fn bind_without_source_is_rejected() {
        let m: oci_spec::runtime::Mount = serde_json::from_value(
            serde_json::json!({"destination": "/x", "type": "bind", "options": ["bind"]}),
        )
        .expect("json");
        assert!(mount_plan(&m).is_err());
    }

    #[test]
    fn sysctl_needs_its_namespace() {
        let only_net = |k: NsKind| k == NsKind::Net;
        assert!(validate_sysctl("net.ipv4.ip_forward", &only_net).is_ok());
        assert!(validate_sysctl("kernel.shmmax", &only_net).is_err());
        assert!(validate_sysctl("vm.swappiness", &only_net).is_err());
        assert!(validate_sysctl("net/../../x", &only_net).is_err());
    }

    #[test]
    fn device_rules_follow_the_spec_rules() {
        let r: LinuxResources = serde_json::from_value(
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}),
        )
        .expect("json");
        let dev = DevicePlan {
            path: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        let r = with_default_device_rules(r, &[dev]);
        let rules = r.devices().clone().expect("rules");
        assert!(!rules[0].allow());
        assert!(rules[1..].iter().all(|x| x.allow()));
        assert_eq!(
            rules.last().map(|x| (x.major(), x.minor())),
            Some((Some(10), Some(229)))
        );
    }

    #[test]
    fn id_maps_must_not_overlap() {
        let m = |c, h, s| IdMap {
            container_id: c,
            host_id: h,
            size: s,
        };
        assert!(validate_id_map("uidMappings", &[m(0, 100000, 1000), m(1000, 200000, 10)]).is_ok());
        assert!(validate_id_map("uidMappings", &[m(0, 100000, 1000), m(999, 200000, 10)]).is_err());
        assert!(
            validate_id_map("uidMappings", &[m(0, 100000, 1000), m(2000, 100500, 10)]).is_err()
        );
        assert!(validate_id_map("uidMappings", &[m(0, 1, 0)]).is_err());
    }

    #[test]
    fn parse_errors_name_the_field_briefly() {
        let e = parse_spec(br#"{"ociVersion": "1.0.2", "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]}}}"#)
            .expect_err("bad arch");
        assert!(
            e.starts_with("linux.seccomp.architectures[0]: unknown variant `SCMP_ARCH_FOO`"),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
        let e = parse_spec(b"{\"ociVersion\": ").expect_err("truncated");
        assert!(e.contains("EOF"), "{e}");
        let e = parse_spec(br#"{"linux": {"resources": {"blockIO": {"weight": -1}}}}"#)
            .expect_err("negative weight");
        assert!(e.starts_with("linux.resources.blockIO.weight:"), "{e}");
    }

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_container_path(Path::new("/a/./b/../c")),
            Some(PathBuf::from("/a/c"))
        );
        assert_eq!(clean_container_path(Path::new("a")), None);
    }
}
