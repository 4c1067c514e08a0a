//! Layer tarballs: unpacking one into a directory (for overlayfs), and packing an
//! overlay upper directory back into a layer (for commit/build).
//!
//! Unpacking owns the security boundary between image content and the host:
//! - every entry name is split into components; `..` or an absolute name is rejected
//!   (never cleaned), so a hostile tar gets a clear error rather than a surprise;
//! - parents are opened one component at a time from the layer root fd with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, and the final component is
//!   created with `O_EXCL`/`O_NOFOLLOW` or an `*at` call that never follows it, so a
//!   symlink planted by an earlier entry (tar-slip) can never redirect a write; such an
//!   entry is an error, not a silent re-route;
//! - hard-link targets are resolved the same way and must already exist in this layer;
//! - `trusted.overlay.*` xattrs from the tar are dropped: only berth decides what
//!   overlayfs sees as opaque or redirected.
//!
//! OCI whiteouts become overlayfs whiteouts: `.wh.<name>` → a 0:0 character device
//! `<name>`; `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory
//! (OCI image-spec layer.md "Whiteouts"; kernel Documentation/filesystems/overlayfs.rst).
//!
//! The compressed stream (gzip, zstd or none, sniffed from magic bytes) and the
//! uncompressed tar (the diffID) are both hashed while streaming; the caller compares.
//! Directory mtimes are set after all entries, deepest first, because creating a child
//! changes the parent's mtime.

use crate::digest::HashReader;
use nix::fcntl::AtFlags;
use nix::sys::stat::{self, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer entry {entry:?}: path escapes the layer (contains '..')")]
    DotDot { entry: String },
    #[error("layer entry {entry:?}: absolute path not allowed")]
    Absolute { entry: String },
    #[error("layer entry {entry:?}: path goes through a symlink or non-directory ({source})")]
    ThroughSymlink {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?}: hard link target {target:?} is not in this layer")]
    LinkTarget {
        entry: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry:?}: invalid whiteout")]
    BadWhiteout { entry: String },
    #[error("layer entry {entry:?}: {op}: {source}")]
    Entry {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("read layer tar: {0}")]
    Read(#[source] io::Error),
    #[error("open layer root {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pack {path}: {source}")]
    Pack {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What unpacking measured. The caller compares the digests with the manifest/config.
#[derive(Debug, Clone)]
pub struct UnpackStats {
    /// sha256 of the blob as read (compressed form).
    pub digest: String,
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// bytes of the blob.
    pub compressed_size: u64,
    /// bytes of the uncompressed tar.
    pub tar_size: u64,
}

/// Compression sniffed from the first bytes of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A reader that decompresses `inner` according to its magic bytes.
pub fn decompress<'a, R: Read + 'a>(inner: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, inner);
    let kind = sniff(br.fill_buf()?);
    Ok(match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
        Compression::None => Box::new(br),
    })
}

/// Unpack the layer blob `blob` into the existing, empty directory `dest`.
pub fn unpack(blob: impl Read, dest: &Path) -> Result<UnpackStats, LayerError> {
    let root: OwnedFd = File::open(dest)
        .map_err(|source| LayerError::Root {
            path: dest.to_path_buf(),
            source,
        })?
        .into();
    let mut outer = HashReader::new(blob);
    let (diff_id, tar_size) = {
        let inner = decompress(&mut outer).map_err(LayerError::Read)?;
        let mut tar_hash = HashReader::new(inner);
        {
            let mut archive = tar::Archive::new(&mut tar_hash);
            let mut u = Unpacker {
                root: &root,
                cache: None,
                dirs: Vec::new(),
            };
            for entry in archive.entries().map_err(LayerError::Read)? {
                let entry = entry.map_err(LayerError::Read)?;
                u.entry(entry)?;
            }
            u.finish()?;
        }
        tar_hash.finish().map_err(LayerError::Read)?
    };
    let (digest, compressed_size) = outer.finish().map_err(LayerError::Read)?;
    Ok(UnpackStats {
        digest,
        diff_id,
        compressed_size,
        tar_size,
    })
}

/// Split an entry name into safe components: no `..`, not absolute, `.` and empty dropped.
pub fn components(entry: &[u8]) -> Result<Vec<&OsStr>, LayerError> {
    let name = || String::from_utf8_lossy(entry).into_owned();
    if entry.first() == Some(&b'/') {
        return Err(LayerError::Absolute { entry: name() });
    }
    let mut out = Vec::new();
    for c in entry.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(LayerError::DotDot { entry: name() }),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

struct DirTimes {
    path: Vec<Vec<u8>>,
    mtime: i64,
}

struct Unpacker<'a> {
    root: &'a OwnedFd,
    /// The last parent directory opened: tar entries come grouped by directory.
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    dirs: Vec<DirTimes>,
}

const BENEATH: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

fn entry_err<'a>(entry: &'a str, op: &'static str) -> impl FnOnce(nix::Error) -> LayerError + 'a {
    move |e| LayerError::Entry {
        entry: entry.to_string(),
        op,
        source: io::Error::from(e),
    }
}

fn io_err<'a>(entry: &'a str, op: &'static str) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Entry {
        entry: entry.to_string(),
        op,
        source,
    }
}

impl Unpacker<'_> {
    /// Open (creating missing directories, mode 0755 root-owned as docker does) the
    /// directory `parts` under the root, never following a symlink.
    fn open_dir(
        &mut self,
        parts: &[&OsStr],
        create: bool,
        entry: &str,
    ) -> Result<OwnedFd, LayerError> {
        let key: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
        if let Some((k, fd)) = &self.cache {
            if *k == key {
                return fd.try_clone().map_err(io_err(entry, "dup"));
            }
        }
        let mut cur = self.root.try_clone().map_err(io_err(entry, "dup"))?;
        for part in parts {
            let next = match open_beneath(&cur, Path::new(part)) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                    stat::mkdirat(
                        Some(cur.as_raw_fd()),
                        *part,
                        Mode::from_bits_truncate(0o755),
                    )
                    .or_else(|e| {
                        if e == nix::Error::EEXIST {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(entry_err(entry, "mkdir parent"))?;
                    open_beneath(&cur, Path::new(part)).map_err(|source| {
                        LayerError::ThroughSymlink {
                            entry: entry.to_string(),
                            source,
                        }
                    })?
                }
                Err(source) => {
                    return Err(LayerError::ThroughSymlink {
                        entry: entry.to_string(),
                        source,
                    })
                }
            };
            cur = next;
        }
        self.cache = Some((key, cur.try_clone().map_err(io_err(entry, "dup"))?));
        Ok(cur)
    }

    /// Remove whatever is at `name` in `dir`, unless both it and the new entry are
    /// directories (a directory entry updates an existing directory in place).
    fn clear(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        new_is_dir: bool,
        entry: &str,
    ) -> Result<(), LayerError> {
        let st = match stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(nix::Error::ENOENT) => return Ok(()),
            Err(e) => return Err(entry_err(entry, "stat")(e)),
        };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && new_is_dir {
            return Ok(());
        }
        if is_dir {
            // Replacing a directory: any cached fd below it is stale.
            self.cache = None;
            remove_tree_at(dir, name).map_err(io_err(entry, "remove existing directory"))?;
        } else {
            unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                .map_err(entry_err(entry, "remove existing"))?;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<(), LayerError> {
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let parts = components(&raw)?;
        let Some((last, parents)) = parts.split_last() else {
            // "./" itself: the layer root's metadata.
            if kind == tar::EntryType::Directory {
                let meta = Meta::of(&mut e);
                let fd = self.root.try_clone().map_err(io_err(&name, "dup"))?;
                meta.apply_fd(&File::from(fd), &name)?;
                self.dirs.push(DirTimes {
                    path: Vec::new(),
                    mtime: meta.mtime,
                });
            }
            return Ok(());
        };
        let last_b = last.as_bytes();
        if last_b.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            let dir = self.open_dir(parents, true, &name)?;
            if last_b == OPAQUE_WHITEOUT.as_bytes() {
                let f = File::from(open_dir_rw(&dir, Path::new("."), &name)?);
                xattr::FileExt::set_xattr(&f, OVERLAY_OPAQUE_XATTR, b"y")
                    .map_err(io_err(&name, "set opaque xattr"))?;
                return Ok(());
            }
            let target = &last_b[WHITEOUT_PREFIX.len()..];
            if target.is_empty()
                || target == b"."
                || target == b".."
                || target.starts_with(WHITEOUT_PREFIX.as_bytes())
            {
                return Err(LayerError::BadWhiteout { entry: name });
            }
            let target = OsStr::from_bytes(target);
            self.clear(&dir, target, false, &name)?;
            stat::mknodat(
                Some(dir.as_raw_fd()),
                target,
                SFlag::S_IFCHR,
                Mode::empty(),
                0,
            )
            .map_err(entry_err(&name, "mknod whiteout"))?;
            return Ok(());
        }
        let meta = Meta::of(&mut e);
        let dir = self.open_dir(parents, true, &name)?;
        let dfd = Some(dir.as_raw_fd());
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                self.clear(&dir, last, true, &name)?;
                match stat::mkdirat(dfd, *last, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(err) => return Err(entry_err(&name, "mkdir")(err)),
                }
                let f = File::from(open_dir_rw(&dir, Path::new(last), &name)?);
                meta.apply_fd(&f, &name)?;
                self.dirs.push(DirTimes {
                    path: parts.iter().map(|p| p.as_bytes().to_vec()).collect(),
                    mtime: meta.mtime,
                });
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                self.clear(&dir, last, false, &name)?;
                let fd = berth_sys::openat2(
                    dir.as_fd(),
                    Path::new(last),
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
                    0o600,
                    BENEATH,
                )
                .map_err(io_err(&name, "create file"))?;
                let mut f = File::from(fd);
                io::copy(&mut e, &mut f).map_err(LayerError::Read)?;
                meta.apply_fd(&f, &name)?;
                set_mtime_fd(&f, meta.mtime, &name)?;
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::Entry {
                        entry: name.clone(),
                        op: "symlink",
                        source: io::Error::new(io::ErrorKind::InvalidData, "no target"),
                    })?
                    .into_owned();
                self.clear(&dir, last, false, &name)?;
                // The target is stored verbatim: it is only data until something
                // follows it, and nothing in the unpacker ever does.
                unistd::symlinkat(OsStr::from_bytes(&target), dfd, *last)
                    .map_err(entry_err(&name, "symlink"))?;
                meta.apply_at(&dir, last, true, &name)?;
            }
            T::Link => {
                let target_raw = e
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::LinkTarget {
                        entry: name.clone(),
                        target: String::new(),
                        source: io::Error::new(io::ErrorKind::InvalidData, "no target"),
                    })?
                    .into_owned();
                let target = String::from_utf8_lossy(&target_raw).into_owned();
                let tparts = components(&target_raw).map_err(|_| LayerError::LinkTarget {
                    entry: name.clone(),
                    target: target.clone(),
                    source: io::Error::from_raw_os_error(libc::EXDEV),
                })?;
                let Some((tlast, tparents)) = tparts.split_last() else {
                    return Err(LayerError::LinkTarget {
                        entry: name,
                        target,
                        source: io::Error::from_raw_os_error(libc::EINVAL),
                    });
                };
                let tdir =
                    self.open_dir(tparents, false, &name)
                        .map_err(|e| LayerError::LinkTarget {
                            entry: name.clone(),
                            target: target.clone(),
                            source: io::Error::other(e.to_string()),
                        })?;
                if parts == tparts {
                    return Ok(());
                }
                // The directory fd for the entry may have been evicted from the cache
                // by the target lookup; reopen it.
                let dir = self.open_dir(parents, true, &name)?;
                self.clear(&dir, last, false, &name)?;
                // Flags 0: never follow a symlink at the source.
                unistd::linkat(
                    Some(tdir.as_raw_fd()),
                    *tlast,
                    Some(dir.as_raw_fd()),
                    *last,
                    AtFlags::empty(),
                )
                .map_err(|err| LayerError::LinkTarget {
                    entry: name.clone(),
                    target: target.clone(),
                    source: io::Error::from(err),
                })?;
            }
            T::Char | T::Block | T::Fifo => {
                self.clear(&dir, last, false, &name)?;
                let (sflag, dev) = match kind {
                    T::Char => (SFlag::S_IFCHR, meta.dev),
                    T::Block => (SFlag::S_IFBLK, meta.dev),
                    _ => (SFlag::S_IFIFO, 0),
                };
                stat::mknodat(dfd, *last, sflag, Mode::from_bits_truncate(0o600), dev)
                    .map_err(entry_err(&name, "mknod"))?;
                meta.apply_at(&dir, last, false, &name)?;
            }
            _ => {
                // Unknown entry types (e.g. GNU volume labels) carry no file.
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), LayerError> {
        self.cache = None;
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.len()));
        for d in dirs {
            let name = String::from_utf8_lossy(&d.path.join(&b'/')).into_owned();
            let parts: Vec<&OsStr> = d.path.iter().map(|p| OsStr::from_bytes(p)).collect();
            let Some((last, parents)) = parts.split_last() else {
                let f = File::from(self.root.try_clone().map_err(io_err(&name, "dup"))?);
                set_mtime_fd(&f, d.mtime, &name)?;
                continue;
            };
            // A later entry may have replaced the directory; skip what is gone.
            let Ok(dir) = self.open_dir(parents, false, &name) else {
                continue;
            };
            let t = TimeSpec::new(d.mtime, 0);
            match stat::utimensat(
                Some(dir.as_raw_fd()),
                *last,
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            ) {
                Ok(()) | Err(nix::Error::ENOENT) => {}
                Err(e) => return Err(entry_err(&name, "set directory mtime")(e)),
            }
        }
        Ok(())
    }
}

fn open_beneath(dir: &OwnedFd, name: &Path) -> io::Result<OwnedFd> {
    berth_sys::openat2(
        dir.as_fd(),
        name,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
        BENEATH,
    )
}

fn open_dir_rw(dir: &OwnedFd, name: &Path, entry: &str) -> Result<OwnedFd, LayerError> {
    berth_sys::openat2(
        dir.as_fd(),
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
        BENEATH,
    )
    .map_err(|source| LayerError::ThroughSymlink {
        entry: entry.to_string(),
        source,
    })
}

/// Recursively remove `name` under `dir` without following symlinks.
fn remove_tree_at(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let sub = berth_sys::openat2(
        dir.as_fd(),
        Path::new(name),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
        BENEATH,
    )?;
    let path = PathBuf::from(berth_sys::fd_path(sub.as_fd()));
    for child in std::fs::read_dir(&path)? {
        let child = child?;
        if child.file_type()?.is_dir() {
            remove_tree_at(&sub, &child.file_name())?;
        } else {
            unistd::unlinkat(
                Some(sub.as_raw_fd()),
                child.file_name().as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            )?;
        }
    }
    unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)?;
    Ok(())
}

fn set_mtime_fd(f: &File, mtime: i64, entry: &str) -> Result<(), LayerError> {
    let t = TimeSpec::new(mtime, 0);
    stat::futimens(f.as_raw_fd(), &t, &t).map_err(entry_err(entry, "set mtime"))
}

/// Ownership, mode, times, device number and xattrs of one entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    dev: libc::dev_t,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(e: &mut tar::Entry<'_, R>) -> Meta {
        let h = e.header();
        // Empty numeric fields read as 0, as Go's archive/tar (docker, containerd) reads them.
        let mut m = Meta {
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mode: h.mode().unwrap_or(0) & 0o7777,
            mtime: h.mtime().unwrap_or(0) as i64,
            dev: 0,
            xattrs: Vec::new(),
        };
        if matches!(h.entry_type(), tar::EntryType::Char | tar::EntryType::Block) {
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            m.dev = libc::makedev(major, minor);
        }
        if let Ok(Some(pax)) = e.pax_extensions() {
            for ext in pax.flatten() {
                let Ok(key) = ext.key() else { continue };
                if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                    // Only berth decides overlay semantics (opaque, redirect, metacopy).
                    if !x.starts_with("trusted.overlay.") {
                        m.xattrs.push((x.to_string(), ext.value_bytes().to_vec()));
                    }
                } else if let Ok(v) = ext.value() {
                    match key {
                        "uid" => m.uid = v.parse().unwrap_or(m.uid),
                        "gid" => m.gid = v.parse().unwrap_or(m.gid),
                        "mtime" => {
                            let secs = v.split('.').next().unwrap_or("0");
                            m.mtime = secs.parse().unwrap_or(m.mtime);
                        }
                        _ => {}
                    }
                }
            }
        }
        m
    }

    /// chown before chmod: chown clears set-id bits.
    fn apply_fd(&self, f: &File, entry: &str) -> Result<(), LayerError> {
        unistd::fchown(
            f.as_raw_fd(),
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        )
        .map_err(entry_err(entry, "chown"))?;
        stat::fchmod(f.as_raw_fd(), Mode::from_bits_truncate(self.mode))
            .map_err(entry_err(entry, "chmod"))?;
        for (k, v) in &self.xattrs {
            xattr::FileExt::set_xattr(f, k, v).map_err(io_err(entry, "set xattr"))?;
        }
        Ok(())
    }

    /// For nodes that cannot be opened for writing (symlinks, devices, fifos).
    fn apply_at(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        is_symlink: bool,
        entry: &str,
    ) -> Result<(), LayerError> {
        let dfd = Some(dir.as_raw_fd());
        unistd::fchownat(
            dfd,
            name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(entry_err(entry, "chown"))?;
        if !is_symlink {
            // The node was just created by mknodat under a verified parent, so it is
            // not a symlink and following is equivalent to not following.
            stat::fchmodat(
                dfd,
                name,
                Mode::from_bits_truncate(self.mode),
                stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(entry_err(entry, "chmod"))?;
        }
        // lsetxattr through the directory's magic link never follows the final name.
        let via = PathBuf::from(berth_sys::fd_path(dir.as_fd())).join(name);
        for (k, v) in &self.xattrs {
            xattr::set(&via, k, v).map_err(io_err(entry, "set xattr"))?;
        }
        let t = TimeSpec::new(self.mtime, 0);
        stat::utimensat(dfd, name, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(entry_err(entry, "set mtime"))?;
        Ok(())
    }
}

/// Write the overlay upper directory `upper` as an OCI layer tar to `out`:
/// 0:0 character devices become `.wh.<name>`, opaque directories get a
/// `.wh..wh..opq` entry. Entries are sorted so the same tree gives the same bytes.
pub fn pack_upper(upper: &Path, out: impl Write) -> Result<(), LayerError> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    fn pack(p: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
        move |source| LayerError::Pack {
            path: p.to_path_buf(),
            source,
        }
    }
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = upper.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&abs)
            .map_err(pack(&abs))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pack(&abs))?;
        names.sort_by_key(|d| d.file_name());
        let mut subdirs = Vec::new();
        for d in names {
            let crel = rel.join(d.file_name());
            let cabs = upper.join(&crel);
            let md = std::fs::symlink_metadata(&cabs).map_err(pack(&cabs))?;
            let ft = md.file_type();
            if ft.is_char_device() && md.rdev() == 0 {
                let wh = rel.join(format!(
                    "{WHITEOUT_PREFIX}{}",
                    d.file_name().to_string_lossy()
                ));
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(0);
                h.set_mode(0o644);
                h.set_mtime(md.mtime().max(0) as u64);
                b.append_data(&mut h, &wh, io::empty())
                    .map_err(pack(&cabs))?;
                continue;
            }
            if ft.is_file() && md.nlink() > 1 {
                if let Some(first) = inodes.get(&(md.dev(), md.ino())) {
                    let mut h = tar::Header::new_gnu();
                    h.set_metadata(&md);
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &crel, first).map_err(pack(&cabs))?;
                    continue;
                }
                inodes.insert((md.dev(), md.ino()), crel.clone());
            }
            let xattrs = list_xattrs(&cabs);
            if !xattrs.is_empty() {
                let exts: Vec<(String, Vec<u8>)> = xattrs
                    .into_iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                    .collect();
                b.append_pax_extensions(exts.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .map_err(pack(&cabs))?;
            }
            b.append_path_with_name(&cabs, &crel).map_err(pack(&cabs))?;
            if ft.is_dir() {
                if xattr::get(&cabs, OVERLAY_OPAQUE_XATTR)
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(b"y")
                {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(0);
                    h.set_mode(0o644);
                    b.append_data(&mut h, crel.join(OPAQUE_WHITEOUT), io::empty())
                        .map_err(pack(&cabs))?;
                }
                subdirs.push(crel);
            }
        }
        // Reverse so the stack pops them in sorted order.
        stack.extend(subdirs.into_iter().rev());
    }
    b.into_inner()
        .map_err(pack(upper))?
        .flush()
        .map_err(pack(upper))?;
    Ok(())
}

/// xattrs worth keeping in a layer: everything but overlay's own bookkeeping.
fn list_xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(names) = xattr::list(p) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in names {
        let k = n.to_string_lossy().into_owned();
        if k.starts_with("trusted.overlay.") {
            continue;
        }
        if let Ok(Some(v)) = xattr::get(p, &n) {
            out.push((k, v));
        }
    }
    out.sort();
    out
}

/// Is `md` an overlay whiteout (a 0:0 character device)?
pub fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        let c = components(b"./a/b/../c");
        assert!(matches!(c, Err(LayerError::DotDot { .. })));
        assert!(matches!(
            components(b"/etc/passwd"),
            Err(LayerError::Absolute { .. })
        ));
        assert!(matches!(components(b".."), Err(LayerError::DotDot { .. })));
        let ok = components(b"./a//b/./c/").expect("ok");
        assert_eq!(ok, vec![OsStr::new("a"), OsStr::new("b"), OsStr::new("c")]);
        assert!(components(b"./").expect("root").is_empty());
        assert_eq!(components(b"a..b/..c").expect("dots in names").len(), 2);
    }

    #[test]
    fn compression_sniffing() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(sniff(b"etc/"), Compression::None);
        assert_eq!(sniff(b""), Compression::None);
    }
}
