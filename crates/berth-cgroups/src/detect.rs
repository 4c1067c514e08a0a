//! Host cgroup layout detection ([`Hierarchy`]) and `cgroupsPath` resolution.
//!
//! Owns: parsing `/proc/self/mountinfo` (proc(5)) and `/proc/self/cgroup` (cgroups(7)),
//! deciding the [`Layout`], and turning a spec's `linux.cgroupsPath` into one directory
//! per hierarchy.
//!
//! Layouts:
//! - **v2**: one `cgroup2` mount and no v1 controller mounts (named v1 hierarchies such as
//!   `name=systemd` are ignored, as runc does).
//! - **v1**: only `cgroup` (v1) mounts.
//! - **hybrid**: v1 controller mounts *and* a `cgroup2` mount (systemd's "hybrid" mode,
//!   `/sys/fs/cgroup/unified`). Limits go to the v1 controllers; the cgroup2 directory is
//!   joined too (as runc does) and is used for any controller that only the cgroup2
//!   hierarchy owns (on this project's host: `hugetlb`). Never refused (crun 1.8 refuses).
//!
//! Path semantics (runc's `libcontainer/cgroups/fs/paths.go` `subsysPath`):
//! - absolute `cgroupsPath` (`/a/b`): relative to each hierarchy's **mount point**;
//! - relative `cgroupsPath` (`a/b`): relative to **this process's own cgroup** in each
//!   hierarchy (from `/proc/self/cgroup`), so with the caller in `memory:/x/y` the memory
//!   directory is `<mnt>/x/y/a/b` while the cpu one may be `<mnt>/a/b`;
//! - no `cgroupsPath`: `/berth/<id>` (absolute).
//!
//! Invariant: a resolved directory is always strictly below its mount point and its path
//! has no `..`: `clean_cgroups_path` rejects `..` and the empty path, so `destroy`
//! can never be aimed at a hierarchy root or at the caller's own cgroup.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CgroupError;

/// The v1 controller names the kernel knows (cgroups(7)); other mount options are not
/// controllers. Named hierarchies (`name=systemd`) are recognised separately.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Which kind of cgroup host this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only cgroup v1 hierarchies. (Also the `Default`, for an empty [`crate::CgroupPaths`]
    /// whose manager then has nothing to act on.)
    #[default]
    V1,
    /// Only the unified cgroup v2 hierarchy.
    V2,
    /// v1 controllers plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`).
    Hybrid,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// Controllers bound to this hierarchy (`["cpu", "cpuacct"]`, `["name=systemd"]`).
    pub controllers: Vec<String>,
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub mountpoint: PathBuf,
    /// This process's own cgroup directory in it (for relative `cgroupsPath`).
    pub own: PathBuf,
}

/// The mounted cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedMount {
    pub mountpoint: PathBuf,
    /// This process's own cgroup directory in it.
    pub own: PathBuf,
    /// Controllers available at the mount root (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// Which cgroup layout the host has, and where each controller is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    layout: Layout,
    v1: Vec<V1Mount>,
    unified: Option<UnifiedMount>,
}

impl Hierarchy {
    /// Detect the layout from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        let read = |p: &str| {
            fs::read_to_string(p).map_err(|source| CgroupError::ReadProc {
                path: p.into(),
                source,
            })
        };
        Hierarchy::from_mountinfo(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?)
    }

    /// Build from the text of a mountinfo file and a `/proc/<pid>/cgroup` file. The mount
    /// points named in `mountinfo` are used as they are, so tests point them at a fake
    /// cgroupfs in a temp dir. `cgroup.controllers` of a cgroup2 mount is read from disk.
    pub fn from_mountinfo(mountinfo: &str, proc_cgroup: &str) -> Result<Hierarchy, CgroupError> {
        let own = parse_proc_cgroup(proc_cgroup);
        let mut v1: Vec<V1Mount> = Vec::new();
        let mut unified: Option<UnifiedMount> = None;
        for m in mountinfo.lines().filter_map(parse_mountinfo_line) {
            match m.fstype.as_str() {
                "cgroup" => {
                    let controllers: Vec<String> = m
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_owned)
                        .collect();
                    // A second mount of an already seen hierarchy (a bind mount) adds nothing.
                    if controllers.is_empty()
                        || v1
                            .iter()
                            .any(|h| h.controllers.iter().any(|c| controllers.contains(c)))
                    {
                        continue;
                    }
                    let own_path = own
                        .iter()
                        .find(|(ctrls, _)| {
                            !ctrls.is_empty() && ctrls.iter().all(|c| controllers.contains(c))
                        })
                        .map(|(_, p)| p.as_str());
                    let own = own_dir(&m.mountpoint, &m.root, own_path);
                    v1.push(V1Mount {
                        controllers,
                        mountpoint: m.mountpoint,
                        own,
                    });
                }
                "cgroup2" => {
                    // Prefer the canonical mount points over any bind mount elsewhere.
                    let canonical = m.mountpoint == Path::new("/sys/fs/cgroup")
                        || m.mountpoint == Path::new("/sys/fs/cgroup/unified");
                    if unified.is_some() && !canonical {
                        continue;
                    }
                    let own_path = own
                        .iter()
                        .find(|(ctrls, _)| ctrls.is_empty())
                        .map(|(_, p)| p.as_str());
                    let controllers = fs::read_to_string(m.mountpoint.join("cgroup.controllers"))
                        .map(|s| s.split_whitespace().map(str::to_owned).collect())
                        .unwrap_or_default();
                    let own = own_dir(&m.mountpoint, &m.root, own_path);
                    unified = Some(UnifiedMount {
                        mountpoint: m.mountpoint,
                        own,
                        controllers,
                    });
                }
                _ => {}
            }
        }
        let has_v1_controllers = v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        let layout = match (has_v1_controllers, unified.is_some()) {
            (true, true) => Layout::Hybrid,
            (true, false) => Layout::V1,
            (false, true) => {
                // Pure v2: a leftover named v1 hierarchy (name=systemd) is not ours to manage.
                v1.clear();
                Layout::V2
            }
            (false, false) => return Err(CgroupError::NoCgroupMounts),
        };
        Ok(Hierarchy {
            layout,
            v1,
            unified,
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Mounted v1 hierarchies (empty on pure v2).
    pub fn v1_mounts(&self) -> &[V1Mount] {
        &self.v1
    }

    /// The cgroup2 mount, if any (pure v2 and hybrid).
    pub fn unified(&self) -> Option<&UnifiedMount> {
        self.unified.as_ref()
    }

    /// Where a v1 controller is mounted.
    pub fn v1_mountpoint(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.mountpoint.as_path())
    }
}

/// The caller's cgroup directory inside a mount: the mount shows the hierarchy from
/// `mount_root` down, so `/proc/self/cgroup`'s path is made relative to it first. When
/// the caller is outside what is mounted (cgroup namespaces), the mount point is used.
fn own_dir(mountpoint: &Path, mount_root: &str, own: Option<&str>) -> PathBuf {
    let Some(own) = own else {
        return mountpoint.to_path_buf();
    };
    let rel = Path::new(own)
        .strip_prefix(mount_root)
        .unwrap_or(Path::new(""));
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return mountpoint.to_path_buf();
    }
    mountpoint.join(rel)
}

struct MountEntry {
    root: String,
    mountpoint: PathBuf,
    fstype: String,
    super_options: String,
}

/// One line of mountinfo (proc(5)): `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    if sep < 6 || fields.len() < sep + 4 {
        return None;
    }
    Some(MountEntry {
        root: unescape_octal(fields[3]),
        mountpoint: PathBuf::from(unescape_octal(fields[4])),
        fstype: fields[sep + 1].to_owned(),
        super_options: fields[sep + 3].to_owned(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/proc/self/cgroup` lines `id:controllers:path` → (controllers, path); v2 has no controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            let ctrls = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            Some((ctrls, path.to_owned()))
        })
        .collect()
}

/// A validated `cgroupsPath`: whether it was absolute, and its clean relative form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupsPath {
    pub absolute: bool,
    pub rel: PathBuf,
}

impl CgroupsPath {
    /// The directory in a hierarchy mounted at `mountpoint` where the caller is in `own`.
    pub fn dir_in(&self, mountpoint: &Path, own: &Path) -> PathBuf {
        if self.absolute {
            mountpoint.join(&self.rel)
        } else {
            own.join(&self.rel)
        }
    }
}

/// Validate a container id for use as a directory name.
pub(crate) fn check_id(id: &str) -> Result<(), CgroupError> {
    let bad = |reason| {
        Err(CgroupError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("not a directory name");
    }
    if id.contains('/') || id.contains('\0') {
        return bad("contains '/' or NUL");
    }
    Ok(())
}

/// Validate and clean a `cgroupsPath`: collapse `//` and `.`, refuse `..`, NUL and a
/// path that names no cgroup below its base (`/`, `.`, ``).
pub(crate) fn clean_cgroups_path(path: &str) -> Result<CgroupsPath, CgroupError> {
    let bad = |reason| {
        Err(CgroupError::InvalidCgroupsPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.contains('\0') {
        return bad("contains NUL");
    }
    let mut rel = PathBuf::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return bad("'..' is not allowed"),
            p => rel.push(p),
        }
    }
    if rel.as_os_str().is_empty() {
        return bad(
            "names no cgroup below the root (a container must not take over a whole hierarchy)",
        );
    }
    Ok(CgroupsPath {
        absolute: path.starts_with('/'),
        rel,
    })
}

/// Turn runc's systemd-style `slice:prefix:name` into the cgroupfs path systemd would
/// use (runc `libcontainer/cgroups/systemd/common.go` `ExpandSlice` and `getUnitName`):
/// `system.slice:docker:abc` → `/system.slice/docker-abc.scope`,
/// `user-1000.slice:berth:x` → `/user.slice/user-1000.slice/berth-x.scope`.
///
/// berth does not talk to systemd over D-Bus: the runtime may use this to place the
/// cgroup where systemd would, but no scope unit is registered (so systemd does not
/// know about it; `--systemd-cgroup` is otherwise unsupported).
pub fn expand_systemd_path(spec: &str) -> Result<String, CgroupError> {
    let bad = |reason| {
        Err(CgroupError::InvalidCgroupsPath {
            path: spec.to_owned(),
            reason,
        })
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let [slice, prefix, name] = parts.as_slice() else {
        return bad("systemd cgroupsPath must be \"slice:prefix:name\"");
    };
    if name.is_empty() || [slice, prefix, name].iter().any(|p| p.contains('/')) {
        return bad("systemd cgroupsPath parts must be non-empty names without '/'");
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return bad("the slice must end in \".slice\"");
    };
    let mut path = String::new();
    if slice != "-.slice" {
        if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
            return bad("invalid slice name");
        }
        // "a-b-c.slice" lives in "/a.slice/a-b.slice/a-b-c.slice".
        let mut acc = String::new();
        for comp in stem.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(comp);
            path.push('/');
            path.push_str(&acc);
            path.push_str(".slice");
        }
    }
    let unit = if name.ends_with(".slice") {
        (*name).to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push('/');
    path.push_str(&unit);
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HOST_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HOST_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/fd691d9fea4c65ffe9cad8c2d09824a7
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn this_hosts_hybrid_layout() {
        let h = Hierarchy::from_mountinfo(HOST_MOUNTINFO, HOST_CGROUP).unwrap();
        assert_eq!(h.layout(), Layout::Hybrid);
        assert_eq!(h.v1_mounts().len(), 9);
        assert_eq!(
            h.v1_mountpoint("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            h.v1_mountpoint("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        let mem = h
            .v1_mounts()
            .iter()
            .find(|m| m.controllers == ["memory"])
            .unwrap();
        assert_eq!(
            mem.own,
            Path::new("/sys/fs/cgroup/memory/process_api/fd691d9fea4c65ffe9cad8c2d09824a7")
        );
        let cpu = h
            .v1_mounts()
            .iter()
            .find(|m| m.controllers == ["cpu"])
            .unwrap();
        assert_eq!(cpu.own, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(
            h.unified().unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn comounted_v1_and_pure_v2() {
        let mi = "\
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let h = Hierarchy::from_mountinfo(mi, "3:cpu,cpuacct:/a\n2:memory:/\n").unwrap();
        assert_eq!(h.layout(), Layout::V1);
        assert_eq!(h.v1_mounts()[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(
            h.v1_mounts()[0].own,
            Path::new("/sys/fs/cgroup/cpu,cpuacct/a")
        );

        let mi = "\
25 24 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
26 24 0:23 / /run/x rw - cgroup cgroup rw,xattr,name=systemd
";
        let h = Hierarchy::from_mountinfo(mi, "0::/user.slice/s.scope\n").unwrap();
        assert_eq!(h.layout(), Layout::V2);
        assert!(h.v1_mounts().is_empty());
        assert_eq!(
            h.unified().unwrap().own,
            Path::new("/sys/fs/cgroup/user.slice/s.scope")
        );
    }

    #[test]
    fn cgroupns_mount_root_and_escapes() {
        // Inside a cgroup namespace the mount root is the namespace root.
        let mi = "25 24 0:22 /ctr /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchy::from_mountinfo(mi, "0::/ctr/sub\n").unwrap();
        let u = h.unified().unwrap();
        assert_eq!(u.mountpoint, Path::new("/sys/fs/cgroup x"));
        assert_eq!(u.own, Path::new("/sys/fs/cgroup x/sub"));
        // Own cgroup outside the mount root: fall back to the mount point.
        let h = Hierarchy::from_mountinfo(mi, "0::/../other\n").unwrap();
        assert_eq!(h.unified().unwrap().own, Path::new("/sys/fs/cgroup x"));
    }

    #[test]
    fn no_mounts_is_an_error() {
        let mi = "22 1 0:21 / /proc rw - proc proc rw\n";
        assert!(matches!(
            Hierarchy::from_mountinfo(mi, ""),
            Err(CgroupError::NoCgroupMounts)
        ));
    }

    #[test]
    fn cgroups_path_cleaning() {
        let p = clean_cgroups_path("/a//b/./c").unwrap();
        assert!(p.absolute);
        assert_eq!(p.rel, Path::new("a/b/c"));
        let p = clean_cgroups_path("x/y").unwrap();
        assert!(!p.absolute);
        assert_eq!(
            p.dir_in(Path::new("/m"), Path::new("/m/own")),
            Path::new("/m/own/x/y")
        );
        for bad in ["", "/", ".", "/a/../b", "..", "a/\0"] {
            assert!(
                clean_cgroups_path(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(check_id("abc").is_ok());
        for bad in ["", ".", "..", "a/b"] {
            assert!(check_id(bad).is_err());
        }
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            expand_systemd_path("system.slice:docker:abc").unwrap(),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(
            expand_systemd_path("user-1000.slice:berth:x").unwrap(),
            "/user.slice/user-1000.slice/berth-x.scope"
        );
        assert_eq!(
            expand_systemd_path(":berth:x").unwrap(),
            "/system.slice/berth-x.scope"
        );
        assert_eq!(expand_systemd_path("-.slice:p:n").unwrap(), "/p-n.scope");
        assert_eq!(
            expand_systemd_path("a.slice:p:b.slice").unwrap(),
            "/a.slice/b.slice"
        );
        for bad in [
            "a:b",
            "a.scope:p:n",
            "a--b.slice:p:n",
            "a.slice:p:",
            "a.slice:p/q:n",
        ] {
            assert!(expand_systemd_path(bad).is_err(), "{bad:?}");
        }
    }
}
