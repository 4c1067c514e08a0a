//! Network namespaces kept alive by bind-mounted files, `ip netns` style.
//!
//! A namespace is created by a short-lived thread that `unshare(CLONE_NEWNET)`s
//! (only that thread moves) and bind-mounts `/proc/thread-self/ns/net` onto
//! `<run_dir>/netns/<id>`; the mount keeps the namespace alive after the thread
//! exits and is the path the engine puts into the OCI spec. The thread also opens
//! the rtnetlink socket used to configure the namespace: sockets stay bound to the
//! namespace they were created in, so the caller's threads never switch namespace.
//! That socket is handed on ([`hand_off`]) to the link driver's [`socket_in`] for
//! the same path, saving a second thread + `setns` (0.2-1 ms) per attach.
//!
//! `<run_dir>/netns` is made a shared mount point first (as `ip netns` does), so
//! the netns mounts propagate into mount namespaces copied later and an unmount
//! here propagates too.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::netlink::Netlink;

/// Makes `dir` exist and be a shared mount point.
pub(crate) fn prepare_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        // EINVAL: not a mount point yet; bind it onto itself, then retry.
        Err(nix::errno::Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            shared().map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Undoes [`prepare_dir`] (used when tearing everything down).
pub(crate) fn release_dir(dir: &Path) -> io::Result<()> {
    match umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates a new network namespace pinned at `path`; returns a netlink socket
/// inside it.
pub(crate) fn create(path: &Path) -> io::Result<Netlink> {
    OpenOptions::new().write(true).create_new(true).open(path)?;
    let target = path.to_path_buf();
    let result = std::thread::spawn(move || -> io::Result<Netlink> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Netlink::open()
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")));
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

thread_local! {
    /// A socket just created inside the namespace pinned at a path, waiting for
    /// the first [`socket_in`] of that path within the same operation (which
    /// runs on its caller's thread).
    static HANDED_OFF: RefCell<Option<(PathBuf, Netlink)>> = const { RefCell::new(None) };
}

/// Parks `socket` (opened inside the namespace at `path`) for [`socket_in`].
/// The caller clears it with [`drop_hand_off`] when its operation ends.
pub(crate) fn hand_off(path: &Path, socket: Netlink) {
    HANDED_OFF.with(|h| *h.borrow_mut() = Some((path.to_path_buf(), socket)));
}

pub(crate) fn drop_hand_off() {
    HANDED_OFF.with(|h| h.borrow_mut().take());
}

/// A netlink socket inside the namespace pinned at (or referenced by) `path`.
pub(crate) fn socket_in(path: &Path) -> io::Result<Netlink> {
    let parked = HANDED_OFF.with(|h| {
        let mut h = h.borrow_mut();
        match h.take() {
            Some((p, socket)) if p == path => Some(socket),
            other => {
                *h = other;
                None
            }
        }
    });
    if let Some(socket) = parked {
        return Ok(socket);
    }
    let ns = File::open(path)?;
    std::thread::spawn(move || -> io::Result<Netlink> {
        setns(&ns, CloneFlags::CLONE_NEWNET)?;
        Netlink::open()
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")))
}

/// Unmounts and removes a pinned namespace file; missing files are fine.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Pinned namespace files under `dir` (their file names are container ids).
pub(crate) fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd.filter_map(|e| e.ok().map(|e| e.path())).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
