//! An offline base image made from the host's static busybox (Debian: `apt-get install
//! busybox-static`), for the quick start and for tests on a machine with no registry.
//!
//! The image has one uncompressed layer: `/bin/busybox`, one symlink per applet at the
//! path `busybox --list-full` names, `/etc/passwd` and `/etc/group` (root, nobody),
//! `/tmp` (1777), `/root` (0700), and empty `/dev`, `/proc`, `/sys`, `/home`, `/var`,
//! `/run`. Config: `Cmd ["sh"]`, `Env PATH=...`. Every timestamp is the epoch, every
//! owner 0:0 and entries are sorted, so the same busybox binary always gives the same
//! layer digest, config digest and image id.

use crate::reference::Reference;
use crate::store::{self, Image, Store, StoreError};
use oci_spec::image::{Config, History};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{path} not found: install busybox-static (apt-get install busybox-static)")]
    NoBusybox { path: PathBuf },
    #[error("{path} is not a static binary (the image has no libc): install busybox-static")]
    NotStatic { path: PathBuf },
    #[error("run {path} --list-full: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("build busybox layer: {0}")]
    Tar(#[source] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub const BUSYBOX_PATH: &str = "/bin/busybox";
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build (or rebuild: the result is identical) the busybox image from `/bin/busybox`, tagged `tag`.
pub fn busybox(store: &Store, tag: &str) -> Result<Image, BootstrapError> {
    busybox_from(store, Path::new(BUSYBOX_PATH), tag)
}

pub fn busybox_from(store: &Store, busybox: &Path, tag: &str) -> Result<Image, BootstrapError> {
    let r = Reference::parse(tag).map_err(StoreError::from)?;
    let bin = std::fs::read(busybox).map_err(|_| BootstrapError::NoBusybox {
        path: busybox.to_path_buf(),
    })?;
    if !is_static_elf(&bin) {
        return Err(BootstrapError::NotStatic {
            path: busybox.to_path_buf(),
        });
    }
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|source| BootstrapError::List {
            path: busybox.to_path_buf(),
            source,
        })?;
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.contains("..") && l != "bin/busybox")
        .collect();
    let tar = layer_tar(&bin, &applets).map_err(BootstrapError::Tar)?;

    let _g = store.ingest_lock()?;
    let l = store.add_layer_blob(io::Cursor::new(tar))?;
    let mut ic = store::base_config();
    let epoch = store::rfc3339(0);
    ic.set_created(Some(epoch.clone()));
    let mut c = Config::default();
    c.set_env(Some(vec![PATH_ENV.to_string()]));
    c.set_cmd(Some(vec!["sh".to_string()]));
    ic.set_config(Some(c));
    ic.rootfs_mut().set_diff_ids(vec![l.diff_id.clone()]);
    let mut h = History::default();
    h.set_created(Some(epoch));
    h.set_created_by(Some(format!(
        "berth bootstrap busybox from {}",
        busybox.display()
    )));
    ic.set_history(Some(vec![h]));
    Ok(store.register_config(&ic, &[l], &[r])?)
}

/// Dynamic executables have a PT_INTERP program header; a static one does not.
fn is_static_elf(bin: &[u8]) -> bool {
    if bin.len() < 64 || &bin[..4] != b"\x7fELF" || bin[4] != 2 {
        return false;
    }
    let u16at = |o: usize| u16::from_le_bytes([bin[o], bin[o + 1]]) as usize;
    let u64at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bin[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64at(32), u16at(54), u16at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > bin.len() {
            return false;
        }
        if u32::from_le_bytes([bin[o], bin[o + 1], bin[o + 2], bin[o + 3]]) == 3 {
            return false;
        }
    }
    true
}

enum Node<'a> {
    Dir(u32),
    File(u32, &'a [u8]),
    Link(String),
}

fn layer_tar(bin: &[u8], applets: &[String]) -> io::Result<Vec<u8>> {
    let passwd =
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    let group = b"root:x:0:\nnogroup:x:65534:\n";
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for d in [
        "bin", "dev", "etc", "home", "proc", "run", "sbin", "sys", "usr", "usr/bin", "usr/sbin",
        "var",
    ] {
        nodes.insert(d.to_string(), Node::Dir(0o755));
    }
    nodes.insert("tmp".into(), Node::Dir(0o1777));
    nodes.insert("root".into(), Node::Dir(0o700));
    nodes.insert("bin/busybox".into(), Node::File(0o755, bin));
    nodes.insert("etc/passwd".into(), Node::File(0o644, passwd));
    nodes.insert("etc/group".into(), Node::File(0o644, group));
    for a in applets {
        if let Some((parent, _)) = a.rsplit_once('/') {
            nodes.entry(parent.to_string()).or_insert(Node::Dir(0o755));
        }
        nodes
            .entry(a.clone())
            .or_insert(Node::Link("/bin/busybox".into()));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (path, node) in &nodes {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match node {
            Node::Dir(mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), io::empty())?;
            }
            Node::File(mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data)?;
            }
            Node::Link(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_deterministic_and_complete() {
        let applets = vec![
            "bin/sh".to_string(),
            "usr/bin/awk".to_string(),
            "sbin/x/y".to_string(),
        ];
        let a = layer_tar(b"BIN", &applets).expect("tar");
        let b = layer_tar(b"BIN", &applets).expect("tar");
        assert_eq!(a, b);
        let mut ar = tar::Archive::new(&a[..]);
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        for want in [
            "bin/sh",
            "usr/bin/awk",
            "sbin/x/",
            "tmp/",
            "etc/passwd",
            "bin/busybox",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn static_detection() {
        assert!(is_static_elf(
            &std::fs::read(BUSYBOX_PATH).expect("busybox-static installed")
        ));
        assert!(!is_static_elf(&std::fs::read("/bin/ls").expect("ls")));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }
}
