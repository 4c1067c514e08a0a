//! runtime_exe: the OCI runtime is executed through a read-only bind mount of its
//! binary, so no container can rewrite it (CVE-2019-5736).
//!
//! The attack: an image makes the runtime execute itself inside the container
//! (an entrypoint or `exec` target that is a symlink to /proc/self/exe, with the
//! image's own ld.so and libc running attacker code in that process), or a
//! container process opens /proc/PID/exe of a runtime process it can see. Either
//! way the container ends up holding the host binary's inode, and once the
//! runtime exits (no more ETXTBSY) it reopens /proc/self/fd/N for writing. The
//! runtime's own defence (non-dumpable until execve) covers only the second way.
//!
//! Here a process's /proc/PID/exe names the file *through the mount it was
//! executed from*; if that mount is read-only, every reopen for writing fails
//! with EROFS, whatever the container does. So the engine runs the runtime as
//! `<run>/exe/<hash of its path>/<name>`: a read-only, nosuid, nodev bind mount
//! of the binary, made once (atomically read-only: a detached clone is set
//! read-only before it is attached) and re-made when the binary is replaced (a
//! rebuild or an upgrade gives a new inode). Cost per use: two stat(2)s and a
//! statfs(2). runc and crun get the same effect from a sealed memfd copy of
//! themselves, paid on every invocation; this keeps the runtime's page-cache
//! pages and its seccomp cache key (size and mtime of /proc/self/exe) shared.
//!
//! Any failure (not root, the binary is missing, no new mount API) falls back
//! to the binary's own path: a protection, never a reason a container fails.
//! [`release`] unmounts them all (`berth system teardown`).

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV (linux/mount.h).
const MOUNT_ATTRS: u64 = 0x1 | 0x2 | 0x4;

/// The path to execute `binary` by: its read-only bind mount under `dir`, made
/// or refreshed as needed, or `binary` itself if that cannot be done.
pub fn protect(binary: &Path, dir: &Path) -> PathBuf {
    match protected(binary, dir) {
        Ok(p) => p,
        Err(_) => binary.to_path_buf(),
    }
}

fn protected(binary: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let binary = fs::canonicalize(binary)?;
    let name = binary
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let slot = dir.join(format!(
        "{:016x}",
        fnv1a(binary.as_os_str().as_encoded_bytes())
    ));
    let target = slot.join(name);
    let src = fs::metadata(&binary)?;
    if is_bound_read_only(&target, &src) {
        return Ok(target);
    }
    fs::create_dir_all(&slot)?;
    // Two engines starting at once must not stack two mounts.
    let _lock = crate::root::Lock::exclusive(&slot.join(".lock"))?;
    if is_bound_read_only(&target, &src) {
        return Ok(target);
    }
    // A stale mount (the binary was replaced) goes first; then a fresh one.
    while is_mount_point(&target) {
        nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH)
            .map_err(std::io::Error::from)?;
    }
    if !target.exists() {
        fs::File::create(&target)?;
    }
    let mnt = berth_sys::open_tree_clone(&binary, false)?;
    berth_sys::mount_setattr(mnt.as_fd(), "", false, MOUNT_ATTRS, 0, 0)?;
    berth_sys::move_mount_to(mnt.as_fd(), &target)?;
    if is_bound_read_only(&target, &src) {
        Ok(target)
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EIO))
    }
}

/// `target` shows the binary's inode, on a read-only mount.
fn is_bound_read_only(target: &Path, src: &fs::Metadata) -> bool {
    let Ok(t) = fs::metadata(target) else {
        return false;
    };
    if (t.dev(), t.ino()) != (src.dev(), src.ino()) {
        return false;
    }
    nix::sys::statvfs::statvfs(target)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

fn is_mount_point(p: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = p.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == p)
}

/// Unmount every protected runtime under `dir` and remove the directory.
pub fn release(dir: &Path) {
    let Ok(slots) = fs::read_dir(dir) else {
        return;
    };
    for slot in slots.flatten() {
        let Ok(files) = fs::read_dir(slot.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            while is_mount_point(&p) {
                if nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH).is_err() {
                    break;
                }
            }
        }
    }
    let _ = fs::remove_dir_all(dir);
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
