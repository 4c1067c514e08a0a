//! fsutil: copying files between two directory trees without ever leaving either.
//!
//! A COPY reads from the build context (or another stage's root) and writes into
//! an image's root filesystem. Both may hold hostile symlinks: a context file
//! `x -> /etc/shadow`, an image whose `/app` is a symlink to `/`. Every path is
//! therefore resolved with `openat2(RESOLVE_IN_ROOT)` from a directory fd of the
//! tree (a symlink is followed, but inside the tree, as chroot would), and every
//! entry is created relative to an already-open parent fd with the last
//! component never followed (`O_NOFOLLOW`, `RESOLVE_NO_SYMLINKS`). Nothing here
//! builds a host path by string concatenation and then opens it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

const IN_ROOT: u64 = berth_sys::RESOLVE_IN_ROOT | berth_sys::RESOLVE_NO_MAGICLINKS;
const BENEATH_NOFOLLOW: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A directory tree addressed only through in-root resolution.
pub struct Tree {
    fd: OwnedFd,
    path: PathBuf,
}

/// Ownership and mode overrides for copied entries (`--chown`, `--chmod`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    /// uid:gid for everything copied; None keeps 0:0 for context files and the
    /// source owner for `--from` files (Docker's rule is passed in by the caller).
    pub owner: Option<(u32, u32)>,
    pub mode: Option<u32>,
}

/// The kind of one source entry, as found by [`Tree::walk`].
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink(PathBuf),
    /// fifo, socket, device: copied as a node (rare in contexts).
    Special,
}

impl Tree {
    pub fn open(path: &Path) -> io::Result<Tree> {
        let f = File::open(path)?;
        Ok(Tree {
            fd: f.into(),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `rel` (relative to the tree, symlinks followed inside it) with `flags`.
    pub fn open_in(&self, rel: &str, flags: OFlag) -> io::Result<OwnedFd> {
        let rel = if rel.is_empty() { "." } else { rel };
        berth_sys::openat2(
            self.fd.as_fd(),
            Path::new(rel),
            (flags | OFlag::O_CLOEXEC).bits(),
            0,
            IN_ROOT,
        )
    }

    /// lstat of `rel`: its parent resolved in the tree, the last component not followed.
    pub fn lstat(&self, rel: &str) -> io::Result<FileStat> {
        let (parent, name) = split_last(rel);
        let dir = self.open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        match name {
            None => nix::sys::stat::fstat(dir.as_raw_fd()).map_err(errno),
            Some(n) => {
                nix::sys::stat::fstatat(Some(dir.as_raw_fd()), n, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(errno)
            }
        }
    }

    /// stat of `rel` with every symlink followed (inside the tree).
    pub fn stat(&self, rel: &str) -> io::Result<FileStat> {
        let fd = self.open_in(rel, OFlag::O_PATH)?;
        nix::sys::stat::fstat(fd.as_raw_fd()).map_err(errno)
    }

    /// Create the directory `rel` and its missing parents (mode 0755, owned by
    /// `owner` or root), following existing symlinks inside the tree — a dangling
    /// one gets its target created, inside the tree, as Docker does. Returns the dir fd.
    pub fn mkdir_all(&self, rel: &str, owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
        self.mkdir_all_depth(rel, owner, 0)
    }

    fn mkdir_all_depth(
        &self,
        rel: &str,
        owner: Option<(u32, u32)>,
        depth: u32,
    ) -> io::Result<OwnedFd> {
        if depth > 40 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let mut cur = self.open_in(".", OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
        let mut so_far = String::new();
        for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let parent = so_far.clone();
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(comp);
            match self.open_in(&so_far, OFlag::O_DIRECTORY | OFlag::O_RDONLY) {
                Ok(fd) => cur = fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // `cur` is the resolved parent: a dangling symlink there points at
                    // what to create; otherwise make the entry itself
                    let st = nix::sys::stat::fstatat(
                        Some(cur.as_raw_fd()),
                        comp,
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    );
                    if matches!(st, Ok(ref st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK) {
                        let target =
                            nix::fcntl::readlinkat(Some(cur.as_raw_fd()), comp).map_err(errno)?;
                        let target = target.to_string_lossy();
                        let joined = if target.starts_with('/') {
                            target.into_owned()
                        } else {
                            format!("{parent}/{target}")
                        };
                        self.mkdir_all_depth(&clamp(&joined), owner, depth + 1)?;
                        cur = self.open_in(&so_far, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
                        continue;
                    }
                    match nix::sys::stat::mkdirat(
                        Some(cur.as_raw_fd()),
                        comp,
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                        Err(e) => return Err(errno(e)),
                    }
                    let fd = berth_sys::openat2(
                        cur.as_fd(),
                        Path::new(comp),
                        (OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC).bits(),
                        0,
                        BENEATH_NOFOLLOW,
                    )?;
                    if let Some((u, g)) = owner {
                        nix::unistd::fchown(
                            fd.as_raw_fd(),
                            Some(Uid::from_raw(u)),
                            Some(Gid::from_raw(g)),
                        )
                        .map_err(errno)?;
                    }
                    cur = fd;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cur)
    }

    /// Every entry under `rel` (itself first, then children sorted, depth first),
    /// with the path relative to the tree. Symlinks are reported, never followed.
    /// `skip(rel_path, is_dir)` prunes entries (the .dockerignore).
    pub fn walk(
        &self,
        rel: &str,
        skip: &dyn Fn(&str, bool) -> bool,
        visit: &mut dyn FnMut(&str, &FileStat, &EntryKind) -> io::Result<()>,
    ) -> io::Result<()> {
        let st = self.lstat(rel)?;
        let kind = self.kind_of(rel, &st)?;
        visit(rel, &st, &kind)?;
        if kind == EntryKind::Dir {
            let dir = self.open_in(rel, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
            let mut names: Vec<Vec<u8>> = Vec::new();
            let mut d = nix::dir::Dir::from_fd(nix::unistd::dup(dir.as_raw_fd()).map_err(errno)?)
                .map_err(errno)?;
            for e in d.iter() {
                let e = e.map_err(errno)?;
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(n.to_vec());
                }
            }
            names.sort();
            for n in names {
                let name = String::from_utf8_lossy(&n).into_owned();
                let child = if rel.is_empty() || rel == "." {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let cst = self.lstat(&child)?;
                let is_dir =
                    SFlag::from_bits_truncate(cst.st_mode & libc::S_IFMT) == SFlag::S_IFDIR;
                if skip(&child, is_dir) {
                    continue;
                }
                self.walk(&child, skip, visit)?;
            }
        }
        Ok(())
    }

    fn kind_of(&self, rel: &str, st: &FileStat) -> io::Result<EntryKind> {
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => EntryKind::Dir,
            libc::S_IFREG => EntryKind::File,
            libc::S_IFLNK => {
                let (parent, name) = split_last(rel);
                let dir = self.open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
                let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name.unwrap_or("."))
                    .map_err(errno)?;
                EntryKind::Symlink(PathBuf::from(target))
            }
            _ => EntryKind::Special,
        })
    }

    /// Read a regular file (symlinks followed inside the tree).
    pub fn open_file(&self, rel: &str) -> io::Result<File> {
        Ok(File::from(self.open_in(rel, OFlag::O_RDONLY)?))
    }
}

/// Lexical clean inside a root: `..` at the top stays at the top (chroot semantics).
pub fn clamp(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// `a/b/c` → (`a/b`, Some(`c`)); `` or `.` → (`.`, None).
pub fn split_last(rel: &str) -> (&str, Option<&str>) {
    let rel = rel.trim_end_matches('/');
    if rel.is_empty() || rel == "." {
        return (".", None);
    }
    match rel.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "." } else { p }, Some(n)),
        None => (".", Some(rel)),
    }
}

/// Remove whatever is at `name` in `dir` unless it is a directory (a directory
/// stays and is merged into, as Docker does).
fn clear_entry(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<FileStat>> {
    match nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(Some(st)),
        Ok(_) => {
            nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                .map_err(errno)?;
            Ok(None)
        }
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(errno(e)),
    }
}

/// Copy the entry `src_rel` of `src` (a file, symlink, node or a whole directory
/// tree) to the entry `name` inside the open directory `dst_dir` of the
/// destination. Directories merge into existing ones. `skip` prunes source paths.
pub fn copy_entry(
    src: &Tree,
    src_rel: &str,
    dst_dir: BorrowedFd<'_>,
    name: &str,
    attrs: &Attrs,
    keep_owner: bool,
    skip: &dyn Fn(&str, bool) -> bool,
) -> io::Result<u64> {
    let st = src.lstat(src_rel)?;
    let kind = src.kind_of(src_rel, &st)?;
    let (uid, gid) = match attrs.owner {
        Some(o) => o,
        None if keep_owner => (st.st_uid, st.st_gid),
        None => (0, 0),
    };
    let perm = attrs.mode.unwrap_or(st.st_mode & 0o7777);
    let mut files = 0u64;
    match kind {
        EntryKind::Dir => {
            let existing = clear_entry(dst_dir, name)?;
            if existing.is_none() {
                nix::sys::stat::mkdirat(
                    Some(dst_dir.as_raw_fd()),
                    name,
                    Mode::from_bits_truncate(0o700),
                )
                .map_err(errno)?;
            }
            let d = berth_sys::openat2(
                dst_dir,
                Path::new(name),
                (OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC).bits(),
                0,
                BENEATH_NOFOLLOW,
            )?;
            // children first, then the directory's own metadata (mtime would change otherwise)
            let mut children: Vec<String> = Vec::new();
            src.walk_children(src_rel, &mut children)?;
            for c in children {
                let child_rel = if src_rel.is_empty() || src_rel == "." {
                    c.clone()
                } else {
                    format!("{src_rel}/{c}")
                };
                let cst = src.lstat(&child_rel)?;
                if skip(&child_rel, cst.st_mode & libc::S_IFMT == libc::S_IFDIR) {
                    continue;
                }
                files += copy_entry(src, &child_rel, d.as_fd(), &c, attrs, keep_owner, skip)?;
            }
            set_meta(d.as_fd(), uid, gid, perm, &st)?;
        }
        EntryKind::File => {
            clear_entry_or_fail_dir(dst_dir, name)?;
            let mut input = src.open_file(src_rel)?;
            let out = berth_sys::openat2(
                dst_dir,
                Path::new(name),
                (OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC).bits(),
                0o600,
                BENEATH_NOFOLLOW,
            )?;
            let mut out = File::from(out);
            io::copy(&mut input, &mut out)?;
            set_meta(out.as_fd(), uid, gid, perm, &st)?;
            files += 1;
        }
        EntryKind::Symlink(target) => {
            clear_entry_or_fail_dir(dst_dir, name)?;
            nix::unistd::symlinkat(target.as_os_str(), Some(dst_dir.as_raw_fd()), name)
                .map_err(errno)?;
            lchown_at(dst_dir, name, uid, gid)?;
            files += 1;
        }
        EntryKind::Special => {
            clear_entry_or_fail_dir(dst_dir, name)?;
            let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
            nix::sys::stat::mknodat(
                Some(dst_dir.as_raw_fd()),
                name,
                kind,
                Mode::from_bits_truncate(perm),
                st.st_rdev,
            )
            .map_err(errno)?;
            lchown_at(dst_dir, name, uid, gid)?;
            files += 1;
        }
    }
    Ok(files)
}

/// Chown the entry `name` in `dir` itself (a symlink or node, never its target).
fn lchown_at(dir: BorrowedFd<'_>, name: &str, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(errno)
}

fn clear_entry_or_fail_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    if clear_entry(dir, name)?.is_some() {
        // a non-directory over a directory: Docker refuses this too
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("cannot overwrite directory {name:?} with a non-directory"),
        ));
    }
    Ok(())
}

fn set_meta(fd: BorrowedFd<'_>, uid: u32, gid: u32, perm: u32, st: &FileStat) -> io::Result<()> {
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
    )
    .map_err(errno)?;
    // after chown: chown clears setuid/setgid bits
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(perm)).map_err(errno)?;
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::futimens(fd.as_raw_fd(), &mtime, &mtime).map_err(errno)?;
    Ok(())
}

impl Tree {
    fn walk_children(&self, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
        let dir = self.open_in(rel, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
        let mut d = nix::dir::Dir::from_fd(nix::unistd::dup(dir.as_raw_fd()).map_err(errno)?)
            .map_err(errno)?;
        for e in d.iter() {
            let e = e.map_err(errno)?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        out.sort();
        Ok(())
    }

    /// Names in the directory `rel` (sorted), for wildcard expansion.
    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        self.walk_children(rel, &mut v)?;
        Ok(v)
    }
}

/// Chown/chmod an existing directory fd (a created destination dir under --chown).
pub fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
    )
    .map_err(errno)
}

/// Is `md` a directory? (for std metadata callers)
pub fn is_dir_mode(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_keeps_paths_inside() {
        assert_eq!(clamp("/a/../../b"), "b");
        assert_eq!(clamp("../../etc"), "etc");
        assert_eq!(clamp("a/./b/"), "a/b");
    }

    #[test]
    fn mkdir_all_follows_dangling_symlinks_inside_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../x/y", d.path().join("rel")).unwrap();
        let t = Tree::open(d.path()).unwrap();
        t.mkdir_all("abs/new", None).unwrap();
        t.mkdir_all("rel/z", None).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        let inner = d
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("new");
        assert!(inner.is_dir(), "{inner:?}");
        assert!(d.path().join("x/y/z").is_dir());
    }

    #[test]
    fn copies_never_write_through_a_destination_symlink() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("f"), "data").unwrap();
        std::os::unix::fs::symlink(outside.path().join("victim"), dst.path().join("f")).unwrap();
        let s = Tree::open(src.path()).unwrap();
        let dfd = Tree::open(dst.path())
            .unwrap()
            .open_in(".", OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .unwrap();
        copy_entry(
            &s,
            "f",
            dfd.as_fd(),
            "f",
            &Attrs::default(),
            false,
            &|_, _| false,
        )
        .unwrap();
        assert!(!outside.path().join("victim").exists());
        assert_eq!(
            std::fs::read_to_string(dst.path().join("f")).unwrap(),
            "data"
        );
    }
}
