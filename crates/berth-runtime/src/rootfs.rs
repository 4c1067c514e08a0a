//! rootfs: everything the init does to the mount namespace.
//!
//! Order (each step needs the one before):
//! 1. "/" becomes rslave (or what rootfsPropagation asks) so nothing we mount
//!    propagates back to the host;
//! 2. the rootfs is bind-mounted onto itself so it is a mount point (pivot_root needs one);
//! 3. spec mounts, in spec order, each destination resolved *inside* the rootfs
//!    with openat2(RESOLVE_IN_ROOT) and mounted onto that fd via /proc/self/fd/N,
//!    so a symlink planted in an image can never redirect a mount to the host
//!    (CVE-2021-30465 class);
//! 4. device nodes (mknod, or bind-mounts of the host nodes inside a user namespace);
//! 5. pivot_root (or MS_MOVE + chroot with --no-pivot), then masked and
//!    read-only paths, the read-only root remount and rootfsPropagation.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

use crate::plan::{DevicePlan, MountPlan, Plan};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mount {target}: {source}")]
    Mount { target: String, source: io::Error },
    #[error("{op} {path}: {source}")]
    Path {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("pivot_root {path}: {source}")]
    Pivot { path: PathBuf, source: io::Error },
}

fn mount_err(target: impl Into<String>) -> impl FnOnce(nix::Error) -> RootfsError {
    let target = target.into();
    move |e| RootfsError::Mount {
        target,
        source: io::Error::from_raw_os_error(e as i32),
    }
}

fn path_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Path {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

const RESOLVE: u64 = berth_sys::RESOLVE_IN_ROOT | berth_sys::RESOLVE_NO_MAGICLINKS;

/// Open `path` (absolute, container view) inside the root `rootfd`.
pub fn open_in_root(rootfd: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    berth_sys::openat2(rootfd, rel, flags, 0, RESOLVE)
}

/// Resolve `path` (container view) inside the root the way the kernel would with
/// the rootfs as "/": every symlink that exists is followed, absolute targets
/// restart at the *container's* root, `..` never climbs above it. Components that
/// don't exist are appended as they are. The result names no symlink, so what is
/// created at it stays in the rootfs (runc's securejoin, on fds).
pub fn resolve_in_root(rootfd: BorrowedFd<'_>, path: &Path) -> io::Result<PathBuf> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;
    fn push_components(q: &mut VecDeque<OsString>, p: &Path) {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => q.push_front(n.to_os_string()),
                Component::ParentDir => q.push_front(OsString::from("..")),
                _ => {}
            }
        }
    }
    let mut todo = VecDeque::new();
    push_components(&mut todo, path);
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    let mut missing = false;
    while let Some(comp) = todo.pop_front() {
        if comp == ".." {
            resolved.pop();
            continue;
        }
        if missing {
            resolved.push(&comp);
            continue;
        }
        let parent = open_in_root(rootfd, &resolved, libc::O_PATH | libc::O_DIRECTORY)?;
        match nix::sys::stat::fstatat(
            Some(parent.as_raw_fd()),
            comp.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), comp.as_os_str())
                    .map_err(nix_io)?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                push_components(&mut todo, &target);
            }
            Ok(_) => resolved.push(&comp),
            Err(nix::Error::ENOENT) => {
                missing = true;
                resolved.push(&comp);
            }
            Err(e) => return Err(nix_io(e)),
        }
    }
    Ok(resolved)
}

/// mkdir -p inside the root (symlinks followed inside it). Returns an O_PATH fd of the dir.
pub fn mkdir_all_in_root(rootfd: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    // Usually the directory exists: one lookup.
    match open_in_root(rootfd, path, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let target = resolve_in_root(rootfd, path)?;
    let mut cur = PathBuf::from("/");
    let mut fd = open_in_root(rootfd, &cur, libc::O_PATH | libc::O_DIRECTORY)?;
    for comp in target.components().skip(1) {
        let name = comp.as_os_str();
        // Relative to the already-open parent, never by path.
        match nix::sys::stat::mkdirat(Some(fd.as_raw_fd()), name, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(nix_io(e)),
        }
        cur.push(name);
        fd = open_in_root(rootfd, &cur, libc::O_PATH | libc::O_DIRECTORY)?;
    }
    Ok(fd)
}

/// Make sure `path` exists inside the root as a regular file (for file bind
/// mounts, /dev nodes); symlinks are followed inside the root.
pub fn create_file_in_root(rootfd: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    match open_in_root(rootfd, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let target = resolve_in_root(rootfd, path)?;
    let parent = mkdir_all_in_root(rootfd, target.parent().unwrap_or(Path::new("/")), 0o755)?;
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    match nix::fcntl::openat(
        Some(parent.as_raw_fd()),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(fd) => drop(berth_sys::own_fd(fd)),
        Err(nix::Error::EEXIST) => {}
        Err(e) => return Err(nix_io(e)),
    }
    open_in_root(rootfd, &target, libc::O_PATH)
}

/// Steps 1–4, run by the init in its new mount namespace, before pivot_root.
pub struct Prepared {
    pub rootfd: OwnedFd,
}

pub fn prepare(plan: &Plan, in_userns: bool) -> Result<Prepared, RootfsError> {
    // 1. Nothing we do below may propagate to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        plan.root_propagation,
        None::<&str>,
    )
    .map_err(mount_err("/"))?;
    make_parent_private(&plan.rootfs)?;
    // 2. pivot_root needs the new root to be a mount point.
    let rootfs = plan.rootfs.as_path();
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(mount_err(rootfs.display().to_string()))?;
    let rootfd: OwnedFd = fs::File::open(rootfs)
        .map_err(path_err("open", rootfs))?
        .into();

    // 3. Spec mounts in order.
    for m in &plan.mounts {
        mount_one(rootfd.as_fd(), plan, m, in_userns)?;
    }
    // 4. Devices.
    if plan.populate_dev {
        for d in default_devices() {
            if !plan.devices.iter().any(|x| x.path == d.path) {
                create_device(rootfd.as_fd(), &d, in_userns)?;
            }
        }
        create_dev_symlinks(rootfd.as_fd(), plan)?;
    }
    for d in &plan.devices {
        create_device(rootfd.as_fd(), d, in_userns)?;
    }
    // A missing cwd is created (as runc does), before the root may turn read-only.
    mkdir_all_in_root(rootfd.as_fd(), &plan.process.cwd, 0o755).map_err(|source| {
        RootfsError::Path {
            op: "create cwd",
            path: plan.process.cwd.clone(),
            source,
        }
    })?;
    Ok(Prepared { rootfd })
}

/// pivot_root(2) can't move a root whose parent mount is shared: make the
/// mount that holds the rootfs private (runc's rootfsParentMountPrivate).
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let Some(parent) = rootfs.parent() else {
        return Ok(());
    };
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(path_err("read", Path::new("/proc/self/mountinfo")))?;
    let mut best: Option<(&str, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let mp = f[4];
        let covers = parent == Path::new(mp) || parent.starts_with(mp);
        if covers && best.is_none_or(|(b, _)| mp.len() >= b.len()) {
            let shared = f[6..]
                .iter()
                .take_while(|x| **x != "-")
                .any(|x| x.starts_with("shared:"));
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        mount(
            None::<&str>,
            mp,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(mount_err(mp))?;
    }
    Ok(())
}

fn mount_one(
    rootfd: BorrowedFd<'_>,
    plan: &Plan,
    m: &MountPlan,
    in_userns: bool,
) -> Result<(), RootfsError> {
    let dest = &m.destination;
    let dest_s = dest.display().to_string();
    let merr = |source: io::Error| RootfsError::Mount {
        target: dest_s.clone(),
        source,
    };
    if m.fstype == "cgroup" || m.fstype == "cgroup2" {
        return mount_cgroup(rootfd, plan, m, in_userns);
    }
    // A missing bind source fails before anything is created in the rootfs.
    if let Some(src) = m.source.as_deref().filter(|_| m.is_bind) {
        if let Err(e) = fs::symlink_metadata(src) {
            return Err(RootfsError::Mount {
                target: format!("{dest_s} (bind source {})", src.display()),
                source: e,
            });
        }
    }
    // The target: a directory, unless a bind mount's source is a file.
    let src_is_file = m.is_bind
        && m.source
            .as_ref()
            .is_some_and(|s| fs::metadata(s).is_ok_and(|md| !md.is_dir()));
    let target = if src_is_file {
        create_file_in_root(rootfd, dest)
    } else {
        mkdir_all_in_root(rootfd, dest, 0o755)
    }
    .map_err(|source| RootfsError::Path {
        op: "create mount target",
        path: dest.clone(),
        source,
    })?;

    if m.is_bind {
        let src = m.source.as_deref().unwrap_or(Path::new(""));
        let rec = m.flags & MsFlags::MS_REC;
        mount(
            Some(src),
            berth_sys::fd_path(target.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(|e| merr(nix_io(e)))?;
        // The target fd still names the covered directory: reopen to reach the new mount.
        let mounted = open_in_root(rootfd, dest, libc::O_PATH).map_err(&merr)?;
        let extra = m.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(mounted.as_fd(), extra, in_userns).map_err(&merr)?;
        }
        finish_mount(mounted.as_fd(), m).map_err(&merr)?;
        return Ok(());
    }

    let src = m
        .source
        .as_deref()
        .map(|p| p.as_os_str())
        .unwrap_or(OsStr::new(&m.fstype))
        .to_owned();
    let mut data = m.data.clone();
    if let (Some(label), true) = (
        &plan.mount_label,
        matches!(m.fstype.as_str(), "tmpfs" | "devpts" | "mqueue"),
    ) {
        if !data.is_empty() {
            data.push(',');
        }
        data.push_str(&format!("context=\"{label}\""));
    }
    let flags = m.flags & !MsFlags::MS_REMOUNT;
    let tpath = berth_sys::fd_path(target.as_fd());
    let res = do_mount(&src, &tpath, &m.fstype, flags, &data);
    match res {
        Ok(()) => {}
        // devpts in a user namespace: gid=5 may be unmapped; retry without it (runc does too).
        Err(nix::Error::EINVAL) if m.fstype == "devpts" && data.contains("gid=") => {
            let d: Vec<&str> = data.split(',').filter(|o| !o.starts_with("gid=")).collect();
            do_mount(&src, &tpath, &m.fstype, flags, &d.join(",")).map_err(|e| merr(nix_io(e)))?;
        }
        // sysfs can't be mounted without owning the netns (e.g. --net=host in a userns): bind /sys.
        Err(nix::Error::EPERM) if m.fstype == "sysfs" => {
            mount(
                Some("/sys"),
                tpath.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| merr(nix_io(e)))?;
            let mounted = open_in_root(rootfd, dest, libc::O_PATH).map_err(&merr)?;
            remount_bind(mounted.as_fd(), flags, true).map_err(&merr)?;
        }
        Err(e) => return Err(merr(nix_io(e))),
    }
    let mounted = open_in_root(rootfd, dest, libc::O_PATH).map_err(&merr)?;
    if m.tmpcopyup {
        copy_up(target.as_fd(), &mounted).map_err(&merr)?;
    }
    finish_mount(mounted.as_fd(), m).map_err(&merr)?;
    Ok(())
}

fn do_mount(
    src: &OsStr,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> nix::Result<()> {
    let data = if data.is_empty() { None } else { Some(data) };
    mount(Some(src), target, Some(fstype), flags, data)
}

/// Bind remount with `flags`; in a user namespace the flags the kernel locked
/// (nosuid, nodev, noexec, ro, atime) must be kept or the remount fails with EPERM.
fn remount_bind(fd: BorrowedFd<'_>, flags: MsFlags, in_userns: bool) -> io::Result<()> {
    let target = berth_sys::fd_path(fd);
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(
        None::<&str>,
        target.as_str(),
        None::<&str>,
        base | flags,
        None::<&str>,
    ) {
        Ok(()) => Ok(()),
        Err(nix::Error::EPERM) if in_userns => {
            let st = nix::sys::statvfs::fstatvfs(fd).map_err(nix_io)?;
            let locked = statvfs_to_ms(st.flags());
            mount(
                None::<&str>,
                target.as_str(),
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .map_err(nix_io)
        }
        Err(e) => Err(nix_io(e)),
    }
}

fn statvfs_to_ms(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags as F;
    let mut m = MsFlags::empty();
    for (a, b) in [
        (F::ST_RDONLY, MsFlags::MS_RDONLY),
        (F::ST_NOSUID, MsFlags::MS_NOSUID),
        (F::ST_NODEV, MsFlags::MS_NODEV),
        (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (F::ST_NOATIME, MsFlags::MS_NOATIME),
        (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (F::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            m |= b;
        }
    }
    m
}

/// Propagation flags and recursive attributes, after the mount exists.
fn finish_mount(fd: BorrowedFd<'_>, m: &MountPlan) -> io::Result<()> {
    let target = berth_sys::fd_path(fd);
    for p in &m.propagation {
        mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(nix_io)?;
    }
    if m.attr_set != 0 || m.attr_clr != 0 {
        let mut clr = m.attr_clr;
        // The atime settings are one field: changing it means clearing the whole field.
        if m.attr_set & (crate::plan::MOUNT_ATTR_NOATIME | crate::plan::MOUNT_ATTR_STRICTATIME) != 0
        {
            clr |= 0x70;
        }
        berth_sys::mount_setattr(fd, "", true, m.attr_set, clr, 0)?;
    }
    Ok(())
}

/// tmpcopyup: copy what the tmpfs now hides into it.
fn copy_up(hidden: BorrowedFd<'_>, mounted: &OwnedFd) -> io::Result<()> {
    let from = PathBuf::from(berth_sys::fd_path(hidden));
    let to = PathBuf::from(berth_sys::fd_path(mounted.as_fd()));
    copy_tree(&from, &to)
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for e in fs::read_dir(from)? {
        let e = e?;
        let md = fs::symlink_metadata(e.path())?;
        let dst = to.join(e.file_name());
        if md.is_dir() {
            fs::DirBuilder::new()
                .mode(md.mode() & 0o7777)
                .create(&dst)?;
            copy_tree(&e.path(), &dst)?;
        } else if md.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &dst)?;
        } else if md.is_file() {
            fs::copy(e.path(), &dst)?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()));
        if !md.file_type().is_symlink() {
            fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// A cgroup mount. With a new cgroup namespace the container gets real cgroupfs
/// mounts that show only its own subtree; without one it gets bind mounts of
/// its own cgroup directories. On v1 and hybrid hosts: a tmpfs holding one
/// directory per v1 hierarchy (runc's layout).
fn mount_cgroup(
    rootfd: BorrowedFd<'_>,
    plan: &Plan,
    m: &MountPlan,
    _in_userns: bool,
) -> Result<(), RootfsError> {
    let dest = &m.destination;
    let merr = |source: io::Error| RootfsError::Mount {
        target: dest.display().to_string(),
        source,
    };
    let target = mkdir_all_in_root(rootfd, dest, 0o755).map_err(&merr)?;
    let cgroupns = plan.has(crate::plan::NsKind::Cgroup);
    let flags = m.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = m.flags.contains(MsFlags::MS_RDONLY);
    let hierarchies = host_cgroup_mounts(&plan.rootfs).map_err(&merr)?;
    let v1: Vec<&CgroupMount> = hierarchies.iter().filter(|h| !h.v2).collect();
    let tpath = berth_sys::fd_path(target.as_fd());
    if v1.is_empty() {
        // Pure v2.
        if cgroupns {
            mount(
                Some("cgroup2"),
                tpath.as_str(),
                Some("cgroup2"),
                flags
                    | if ro {
                        MsFlags::MS_RDONLY
                    } else {
                        MsFlags::empty()
                    },
                None::<&str>,
            )
            .map_err(|e| merr(nix_io(e)))?;
        } else if let Some(h) = hierarchies.iter().find(|h| h.v2) {
            let src = h.mountpoint.join(h.own_path.trim_start_matches('/'));
            mount(
                Some(&src),
                tpath.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| merr(nix_io(e)))?;
            let mounted = open_in_root(rootfd, dest, libc::O_PATH).map_err(&merr)?;
            remount_bind(
                mounted.as_fd(),
                flags
                    | if ro {
                        MsFlags::MS_RDONLY
                    } else {
                        MsFlags::empty()
                    },
                true,
            )
            .map_err(&merr)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        tpath.as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(|e| merr(nix_io(e)))?;
    let base = open_in_root(rootfd, dest, libc::O_PATH | libc::O_DIRECTORY).map_err(&merr)?;
    for h in &v1 {
        let name = h.dir_name();
        let sub = dest.join(&name);
        let subfd = mkdir_all_in_root(rootfd, &sub, 0o755).map_err(&merr)?;
        let sp = berth_sys::fd_path(subfd.as_fd());
        let sub_flags = flags
            | if ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
        if cgroupns {
            mount(
                Some("cgroup"),
                sp.as_str(),
                Some("cgroup"),
                sub_flags,
                Some(h.options.as_str()),
            )
            .map_err(|e| merr(nix_io(e)))?;
        } else {
            // Flags for all the binds are set at once below, with one recursive mount_setattr.
            let src = h.mountpoint.join(h.own_path.trim_start_matches('/'));
            mount(
                Some(&src),
                sp.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| RootfsError::Mount {
                target: format!("{} (bind of {})", sub.display(), src.display()),
                source: nix_io(e),
            })?;
        }
        // Co-mounted controllers get symlinks (cpu -> cpu,cpuacct), as on the host.
        if name.contains(',') {
            for c in name.split(',') {
                let _ = nix::unistd::symlinkat(name.as_str(), Some(base.as_raw_fd()), c);
            }
        }
    }
    // nosuid/nodev/noexec (and ro) on the tmpfs and every hierarchy under it in one call.
    let mut attrs = 0;
    for (flag, attr) in [
        (MsFlags::MS_NOSUID, crate::plan::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, crate::plan::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, crate::plan::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_RDONLY, crate::plan::MOUNT_ATTR_RDONLY),
    ] {
        if m.flags.contains(flag) {
            attrs |= attr;
        }
    }
    if attrs != 0 {
        let mounted = open_in_root(rootfd, dest, libc::O_PATH).map_err(&merr)?;
        berth_sys::mount_setattr(mounted.as_fd(), "", true, attrs, 0, 0).map_err(&merr)?;
    }
    Ok(())
}

struct CgroupMount {
    mountpoint: PathBuf,
    v2: bool,
    /// Mount options naming the hierarchy (e.g. "cpu,cpuacct" or "none,name=systemd").
    options: String,
    controllers: Vec<String>,
    /// This process's cgroup in that hierarchy (from /proc/self/cgroup).
    own_path: String,
}

impl CgroupMount {
    fn dir_name(&self) -> String {
        self.mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.controllers.join(","))
    }
}

/// The host's cgroup hierarchies, ignoring copies that earlier spec mounts
/// (an rbind of /sys) made inside the rootfs itself.
fn host_cgroup_mounts(rootfs: &Path) -> io::Result<Vec<CgroupMount>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let own = fs::read_to_string("/proc/self/cgroup")?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pf: Vec<&str> = pre.split(' ').collect();
        let qf: Vec<&str> = post.split(' ').collect();
        if pf.len() < 5 || qf.len() < 3 {
            continue;
        }
        let fstype = qf[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let v2 = fstype == "cgroup2";
        let super_opts: Vec<&str> = qf[2].split(',').collect();
        let known = [
            "cpu",
            "cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "net_cls",
            "net_prio",
            "blkio",
            "perf_event",
            "hugetlb",
            "pids",
            "rdma",
            "misc",
        ];
        let controllers: Vec<String> = super_opts
            .iter()
            .filter(|o| known.contains(o) || o.starts_with("name="))
            .map(|s| s.to_string())
            .collect();
        let options = if controllers.iter().any(|c| c.starts_with("name=")) {
            format!("none,{}", controllers.join(","))
        } else {
            controllers.join(",")
        };
        // Match /proc/self/cgroup lines: "ID:controllers:path" ("0::path" for v2).
        let own_path = own
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let (_, ctl, path) = (it.next()?, it.next()?, it.next()?);
                let set: Vec<&str> = ctl.split(',').filter(|s| !s.is_empty()).collect();
                let matches = if v2 {
                    set.is_empty()
                } else {
                    !set.is_empty() && set.iter().all(|c| controllers.iter().any(|x| x == c))
                };
                matches.then(|| path.to_string())
            })
            .next()
            .unwrap_or_else(|| "/".into());
        if !v2 && controllers.is_empty() {
            continue;
        }
        if Path::new(pf[4]).starts_with(rootfs) {
            continue;
        }
        out.push(CgroupMount {
            mountpoint: PathBuf::from(pf[4]),
            v2,
            options,
            controllers,
            own_path,
        });
    }
    Ok(out)
}

/// The default devices every container gets (runtime-spec config-linux.md "Default Devices").
pub fn default_devices() -> Vec<DevicePlan> {
    let dev = |path: &str, major, minor| DevicePlan {
        path: PathBuf::from(path),
        kind: 'c',
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    };
    vec![
        dev("/dev/null", 1, 3),
        dev("/dev/zero", 1, 5),
        dev("/dev/full", 1, 7),
        dev("/dev/random", 1, 8),
        dev("/dev/urandom", 1, 9),
        dev("/dev/tty", 5, 0),
    ]
}

fn create_device(
    rootfd: BorrowedFd<'_>,
    d: &DevicePlan,
    in_userns: bool,
) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Path {
        op: "create device",
        path: d.path.clone(),
        source,
    };
    let parent_path = d.path.parent().unwrap_or(Path::new("/dev"));
    let parent = mkdir_all_in_root(rootfd, parent_path, 0o755).map_err(err)?;
    let name = d.path.file_name().unwrap_or_default();
    if in_userns && d.kind != 'p' {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        let target = create_file_in_root(rootfd, &d.path).map_err(err)?;
        // Still before pivot_root: the same path names the host's node.
        mount(
            Some(&d.path),
            berth_sys::fd_path(target.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err(nix_io(e)))?;
        return Ok(());
    }
    let kind = match d.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let dev = nix::sys::stat::makedev(d.major, d.minor);
    // Replace whatever the image put there (a file, a stale node).
    let _ = nix::unistd::unlinkat(
        Some(parent.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    nix::sys::stat::mknodat(
        Some(parent.as_raw_fd()),
        name,
        kind,
        Mode::from_bits_truncate(d.mode),
        dev,
    )
    .map_err(|e| err(nix_io(e)))?;
    let node = open_in_root(rootfd, &d.path, libc::O_PATH | libc::O_NOFOLLOW).map_err(err)?;
    let p = berth_sys::fd_path(node.as_fd());
    // mknod is subject to the umask: set the mode explicitly, then the owner.
    fs::set_permissions(&p, fs::Permissions::from_mode(d.mode)).map_err(err)?;
    nix::unistd::fchownat(
        Some(parent.as_raw_fd()),
        name,
        Some(nix::unistd::Uid::from_raw(d.uid)),
        Some(nix::unistd::Gid::from_raw(d.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err(nix_io(e)))?;
    Ok(())
}

fn create_dev_symlinks(rootfd: BorrowedFd<'_>, plan: &Plan) -> Result<(), RootfsError> {
    let dev = open_in_root(rootfd, Path::new("/dev"), libc::O_PATH | libc::O_DIRECTORY).map_err(
        |source| RootfsError::Path {
            op: "open",
            path: "/dev".into(),
            source,
        },
    )?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if plan
        .mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev/pts"))
    {
        links.push(("pts/ptmx", "ptmx"));
    }
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => {
                return Err(RootfsError::Path {
                    op: "symlink",
                    path: Path::new("/dev").join(name),
                    source: nix_io(e),
                })
            }
        }
    }
    Ok(())
}

/// Step 5: switch the root. Afterwards cwd is "/" of the container.
pub fn pivot(prepared: &Prepared, rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    let perr = |source| RootfsError::Pivot {
        path: rootfs.to_path_buf(),
        source,
    };
    // The old root, to detach it by fd after the pivot (the kernel promises
    // nothing about what "." is after pivot_root).
    let oldroot: OwnedFd = fs::File::open("/")
        .map_err(|source| RootfsError::Pivot {
            path: "/".into(),
            source,
        })?
        .into();
    nix::unistd::fchdir(prepared.rootfd.as_raw_fd()).map_err(|e| perr(nix_io(e)))?;
    if no_pivot {
        // For ramfs/initramfs roots, where pivot_root is impossible.
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| perr(nix_io(e)))?;
        nix::unistd::chroot(".").map_err(|e| perr(nix_io(e)))?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one; the old
        // root is then detached, with no put_old directory left in the image.
        nix::unistd::pivot_root(".", ".").map_err(|e| perr(nix_io(e)))?;
        nix::unistd::fchdir(oldroot.as_raw_fd()).map_err(|e| perr(nix_io(e)))?;
        // Make the old root rslave before detaching so the unmount can't propagate to the host.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| perr(nix_io(e)))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| perr(nix_io(e)))?;
    }
    nix::unistd::chdir("/").map_err(|e| perr(nix_io(e)))?;
    Ok(())
}

/// After pivot_root: masked paths, read-only paths, read-only root, root propagation.
pub fn finalize(plan: &Plan) -> Result<(), RootfsError> {
    let root: OwnedFd = fs::File::open("/")
        .map_err(path_err("open", Path::new("/")))?
        .into();
    for p in &plan.masked_paths {
        mask_path(root.as_fd(), p)?;
    }
    for p in &plan.readonly_paths {
        readonly_path(root.as_fd(), p)?;
    }
    if plan.root_readonly {
        // MS_REC is ignored by a remount: remount "/" itself only, as runc does.
        remount_bind(root.as_fd(), MsFlags::MS_RDONLY, true).map_err(|source| {
            RootfsError::Mount {
                target: "/".into(),
                source,
            }
        })?;
    }
    if let Some(p) = plan.rootfs_propagation {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).map_err(mount_err("/"))?;
    }
    Ok(())
}

/// `p` opened O_PATH inside the root, or None when it doesn't exist: masked and
/// read-only paths the image lacks are simply skipped.
fn open_existing(
    root: BorrowedFd<'_>,
    p: &Path,
    op: &'static str,
) -> Result<Option<OwnedFd>, RootfsError> {
    match open_in_root(root, p, libc::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(source) => Err(RootfsError::Path {
            op,
            path: p.to_path_buf(),
            source,
        }),
    }
}

fn mask_path(root: BorrowedFd<'_>, p: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_existing(root, p, "mask")? else {
        return Ok(());
    };
    let target = berth_sys::fd_path(fd.as_fd());
    let is_dir = fs::metadata(&target).is_ok_and(|m| m.is_dir());
    let res = if is_dir {
        mount(
            Some("tmpfs"),
            target.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    res.map_err(mount_err(p.display().to_string()))
}

fn readonly_path(root: BorrowedFd<'_>, p: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_existing(root, p, "readonly")? else {
        return Ok(());
    };
    let target = berth_sys::fd_path(fd.as_fd());
    mount(
        Some(target.as_str()),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(mount_err(p.display().to_string()))?;
    let mounted = open_in_root(root, p, libc::O_PATH).map_err(|source| RootfsError::Path {
        op: "readonly",
        path: p.to_path_buf(),
        source,
    })?;
    remount_bind(
        mounted.as_fd(),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        true,
    )
    .map_err(|source| RootfsError::Mount {
        target: p.display().to_string(),
        source,
    })
}

/// Bind the pty slave over /dev/console (after pivot_root, so inside the container).
pub fn mount_console(slave_path: &Path) -> Result<(), RootfsError> {
    let root: OwnedFd = fs::File::open("/")
        .map_err(path_err("open", Path::new("/")))?
        .into();
    let target =
        create_file_in_root(root.as_fd(), Path::new("/dev/console")).map_err(|source| {
            RootfsError::Path {
                op: "create",
                path: "/dev/console".into(),
                source,
            }
        })?;
    mount(
        Some(slave_path),
        berth_sys::fd_path(target.as_fd()).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(mount_err("/dev/console"))
}
