//! Container snapshots: overlayfs over an image's unpacked layers, and `docker diff`.
//!
//! The mount uses the new mount API (fsopen/fsconfig/fsmount/move_mount) with one
//! `lowerdir+` option per layer (Linux >= 6.8), so the number of layers is not limited
//! by the one-page mount data string of mount(2), and layer paths need no shortening.
//! Layers are never copied: every container's overlay points at the same layer dirs.
//! overlayfs needs at least one lower layer; an image with zero layers (scratch) gets
//! an empty directory next to the work dir (`<work>.empty`).
//!
//! Order: [`Overlay::lowers`] is BOTTOM first (image order); overlayfs wants the
//! topmost lower first, so the list is reversed when the options are set.
//!
//! User-namespaced containers ([`Overlay::mount_idmapped`]): the layers on disk are
//! owned by host root, but the container's root is an unprivileged host id. Each
//! lower layer is handed to overlayfs as an idmapped mount (open_tree clone +
//! MOUNT_ATTR_IDMAP with a user namespace holding the container's maps; overlayfs
//! takes idmapped layers since 5.19), so the shared layer dirs are never chowned
//! and every container sees them owned by its own root. The clones are passed as
//! fds (`lowerdir+` with FSCONFIG_SET_FD, Linux >= 6.13); on older kernels they are
//! attached under `<work>.idmap/N` only until the overlay exists (overlayfs keeps
//! private clones of its layers), so no idmapped mount outlives the call either
//! way. The upper dir is not idmapped: what the container writes is stored with
//! its host ids, as in a plain rootless overlay (the caller chowns `upper` to the
//! container's root).

use crate::layer::{is_whiteout, OVERLAY_OPAQUE_XATTR};
use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("overlay mount on {target}: {step}: {source}")]
    Mount {
        target: PathBuf,
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("unmount {target}: {source}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("diff {path}: {source}")]
    Diff {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An overlay mount description (containerd's pattern: described first, mounted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// Read-only layers, BOTTOM first.
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Overlay {
    /// Mount at `target` (which must exist). Creates `upper` and `work` if missing.
    pub fn mount(&self, target: &Path) -> Result<(), SnapshotError> {
        self.mount_with(target, None)
    }

    /// Mount at `target` with each lower layer idmapped through the user namespace
    /// `userns` (see the module doc). Creates `upper` and `work` if missing; their
    /// ownership is the caller's business.
    pub fn mount_idmapped(
        &self,
        target: &Path,
        userns: BorrowedFd<'_>,
    ) -> Result<(), SnapshotError> {
        self.mount_with(target, Some(userns))
    }

    /// Mount with overlayfs's `volatile` option: no syncs of the upper dir, ever. For
    /// scratch overlays whose upper dir is read once and deleted (build steps): after
    /// a crash such an upper dir must be thrown away, which is all a build does with it.
    pub fn mount_volatile(&self, target: &Path) -> Result<(), SnapshotError> {
        self.mount_opts(target, None, true)
    }

    fn mount_with(
        &self,
        target: &Path,
        userns: Option<BorrowedFd<'_>>,
    ) -> Result<(), SnapshotError> {
        self.mount_opts(target, userns, false)
    }

    fn mount_opts(
        &self,
        target: &Path,
        userns: Option<BorrowedFd<'_>>,
        volatile: bool,
    ) -> Result<(), SnapshotError> {
        let err = |step: &str| {
            let step = step.to_string();
            move |source: io::Error| SnapshotError::Mount {
                target: target.to_path_buf(),
                step,
                source,
            }
        };
        std::fs::create_dir_all(&self.upper).map_err(err("create upper"))?;
        std::fs::create_dir_all(&self.work).map_err(err("create work"))?;
        // Top first. An image may hold the same layer twice (two identical COPY steps);
        // overlayfs refuses a repeated lower dir (ELOOP), and applying a layer again
        // on top makes its earlier occurrence invisible anyway (every path it has is
        // set again), so only the topmost occurrence is kept.
        let mut seen = BTreeSet::new();
        let mut lowers: Vec<PathBuf> = self
            .lowers
            .iter()
            .rev()
            .filter(|l| seen.insert((*l).clone()))
            .cloned()
            .collect();
        if lowers.is_empty() {
            let empty = self.work.with_extension("empty");
            std::fs::create_dir_all(&empty).map_err(err("create empty lower"))?;
            lowers.push(empty);
        }
        let fs = berth_sys::fsopen("overlay").map_err(err("fsopen overlay"))?;
        // Attached idmapped clones (old kernels only); unmounted once the overlay exists.
        let mut staged = Staged(Vec::new());
        // The detached clones live until the superblock exists: closing the last fd
        // of a detached mount dissolves it.
        let mut clones = Vec::with_capacity(lowers.len());
        if let Some(userns) = userns {
            for l in &lowers {
                let step = format!("idmap {}", l.display());
                let mnt = berth_sys::open_tree_clone(l, false).map_err(err(&step))?;
                berth_sys::mount_setattr_idmap(mnt.as_fd(), userns).map_err(err(&step))?;
                clones.push(mnt);
            }
            let mut by_fd = true;
            for (i, (l, mnt)) in lowers.iter().zip(&clones).enumerate() {
                match berth_sys::fsconfig_set_fd(fs.as_fd(), "lowerdir+", mnt.as_fd()) {
                    Ok(()) => {}
                    // Before 6.13 overlayfs takes layers only as paths.
                    Err(e) if i == 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                        by_fd = false;
                        break;
                    }
                    Err(e) => return Err(err(&format!("lowerdir+ fd of {}", l.display()))(e)),
                }
            }
            if !by_fd {
                let base = self.work.with_extension("idmap");
                for (i, mnt) in clones.iter().enumerate() {
                    let at = base.join(i.to_string());
                    std::fs::create_dir_all(&at).map_err(err("create idmap staging dir"))?;
                    berth_sys::move_mount_to(mnt.as_fd(), &at)
                        .map_err(err("attach idmapped layer"))?;
                    staged.0.push(at.clone());
                    berth_sys::fsconfig_set_string(
                        fs.as_fd(),
                        "lowerdir+",
                        at.as_os_str().as_bytes(),
                    )
                    .map_err(err(&format!("lowerdir+ {}", at.display())))?;
                }
            }
            lowers.clear();
        }
        for (i, l) in lowers.iter().enumerate() {
            match berth_sys::fsconfig_set_string(fs.as_fd(), "lowerdir+", l.as_os_str().as_bytes())
            {
                Ok(()) => {}
                // Kernels before 6.8 have no "lowerdir+": one "lowerdir" string, which
                // the kernel limits to a page, is the best they can do.
                Err(e) if i == 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                    let joined = lowers
                        .iter()
                        .map(|l| l.as_os_str().as_bytes().to_vec())
                        .collect::<Vec<_>>()
                        .join(&b':');
                    berth_sys::fsconfig_set_string(fs.as_fd(), "lowerdir", &joined)
                        .map_err(err("lowerdir (kernel without lowerdir+)"))?;
                    break;
                }
                Err(e) => return Err(err(&format!("lowerdir+ {}", l.display()))(e)),
            }
        }
        berth_sys::fsconfig_set_string(fs.as_fd(), "upperdir", self.upper.as_os_str().as_bytes())
            .map_err(err("upperdir"))?;
        berth_sys::fsconfig_set_string(fs.as_fd(), "workdir", self.work.as_os_str().as_bytes())
            .map_err(err("workdir"))?;
        if volatile {
            berth_sys::fsconfig_set_flag(fs.as_fd(), "volatile").map_err(err("volatile"))?;
        }
        berth_sys::fsconfig_create(fs.as_fd()).map_err(err("create superblock"))?;
        let mnt = berth_sys::fsmount(fs.as_fd(), 0).map_err(err("fsmount"))?;
        berth_sys::move_mount_to(mnt.as_fd(), target).map_err(err("move_mount"))?;
        drop(clones);
        drop(staged);
        Ok(())
    }
}

/// Idmapped layer clones attached for a path-only overlayfs: detached on drop,
/// success or failure (the overlay holds its own private clones).
struct Staged(Vec<PathBuf>);

impl Drop for Staged {
    fn drop(&mut self) {
        for at in &self.0 {
            let _ = nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(at);
        }
        if let Some(base) = self.0.first().and_then(|p| p.parent()) {
            let _ = std::fs::remove_dir(base);
        }
    }
}

/// Unmount the overlay at `target` (lazily, so an open file in it cannot wedge cleanup).
pub fn unmount(target: &Path) -> Result<(), SnapshotError> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
        SnapshotError::Unmount {
            target: target.to_path_buf(),
            source: io::Error::from(e),
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// `A`, `C`, `D` as `docker diff` prints them.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute inside the container: `/etc/hosts`.
    pub path: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// What the upper dir changed relative to `lowers` (bottom first), sorted by path:
/// a whiteout is `D`, an entry that exists in a lower is `C`, anything else `A`;
/// an opaque directory also reports `D` for each lower entry it hides.
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, SnapshotError> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    // Top-most first: the first lower that has the path (or a whiteout for it) decides.
    for l in lowers.iter().rev() {
        if let Ok(md) = std::fs::symlink_metadata(l.join(rel)) {
            return !is_whiteout(&md);
        }
    }
    false
}

fn walk(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<(), SnapshotError> {
    let dir = upper.join(rel);
    let derr = |p: &Path| {
        let p = p.to_path_buf();
        move |source| SnapshotError::Diff { path: p, source }
    };
    let entries = std::fs::read_dir(&dir).map_err(derr(&dir))?;
    for e in entries {
        let e = e.map_err(derr(&dir))?;
        let crel = rel.join(e.file_name());
        let abs = upper.join(&crel);
        let md = std::fs::symlink_metadata(&abs).map_err(derr(&abs))?;
        let path = format!("/{}", crel.display());
        if is_whiteout(&md) {
            out.push(Change {
                kind: ChangeKind::Deleted,
                path,
            });
            continue;
        }
        let existed = in_lowers(lowers, &crel);
        out.push(Change {
            kind: if existed {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            },
            path: path.clone(),
        });
        if md.is_dir() {
            let opaque = xattr::get(&abs, OVERLAY_OPAQUE_XATTR)
                .ok()
                .flatten()
                .as_deref()
                == Some(b"y");
            if opaque && existed {
                let mine: BTreeSet<_> = std::fs::read_dir(&abs)
                    .map_err(derr(&abs))?
                    .flatten()
                    .map(|e| e.file_name())
                    .collect();
                let mut hidden = BTreeSet::new();
                for l in lowers {
                    if let Ok(rd) = std::fs::read_dir(l.join(&crel)) {
                        for le in rd.flatten() {
                            if !mine.contains(&le.file_name())
                                && in_lowers(lowers, &crel.join(le.file_name()))
                            {
                                hidden.insert(le.file_name());
                            }
                        }
                    }
                }
                for h in hidden {
                    out.push(Change {
                        kind: ChangeKind::Deleted,
                        path: format!("{path}/{}", h.to_string_lossy()),
                    });
                }
            }
            walk(upper, &crel, lowers, out)?;
        }
    }
    Ok(())
}
