//! Helpers shared by the integration tests: temp stores, overlay mounts that always
//! unmount, and hand-built (possibly hostile) layer tars.
#![allow(dead_code)]

use berth_image::snapshot::{self, Overlay};
use berth_image::{Image, Store};
use std::path::{Path, PathBuf};

/// An overlay mounted under a temp dir; unmounted on drop even when the test fails.
pub struct Mounted {
    pub target: PathBuf,
    pub upper: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = snapshot::unmount(&self.target);
    }
}

/// Mount `img` with a fresh upper/work under `dir/name`.
pub fn mount_image(store: &Store, img: &Image, dir: &Path, name: &str) -> Mounted {
    let lowers = store.layer_dirs(img).expect("layer dirs");
    mount_lowers(lowers, dir, name)
}

pub fn mount_lowers(lowers: Vec<PathBuf>, dir: &Path, name: &str) -> Mounted {
    let base = dir.join(name);
    let target = base.join("merged");
    std::fs::create_dir_all(&target).expect("mkdir target");
    let ov = Overlay {
        lowers,
        upper: base.join("upper"),
        work: base.join("work"),
    };
    ov.mount(&target).expect("overlay mount");
    Mounted {
        target,
        upper: ov.upper,
    }
}

/// One tar entry written with a raw header, so names like `../x` get through
/// (the tar crate's safe API refuses them, which is exactly what a hostile tar avoids).
pub struct Raw<'a> {
    pub name: &'a str,
    pub kind: tar::EntryType,
    pub link: Option<&'a str>,
    pub data: &'a [u8],
    pub mode: u32,
}

pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name,
        kind: tar::EntryType::Regular,
        link: None,
        data,
        mode: 0o644,
    }
}
pub fn dir(name: &str) -> Raw<'_> {
    Raw {
        name,
        kind: tar::EntryType::Directory,
        link: None,
        data: b"",
        mode: 0o755,
    }
}
pub fn symlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name,
        kind: tar::EntryType::Symlink,
        link: Some(target),
        data: b"",
        mode: 0o777,
    }
}
pub fn hardlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        name,
        kind: tar::EntryType::Link,
        link: Some(target),
        data: b"",
        mode: 0o644,
    }
}

pub fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            if let Some(l) = e.link {
                old.linkname = [0; 100];
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        b.append(&h, e.data).expect("append raw");
    }
    b.into_inner().expect("finish tar")
}

pub fn busybox(store: &Store) -> Image {
    berth_image::bootstrap::busybox(store, "busybox:latest").expect("bootstrap busybox")
}

pub fn ino(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .ino()
}

/// Must run as root: mounts and device nodes need it. Fail, never skip.
pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "these tests need root");
}
