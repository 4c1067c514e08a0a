//! `docker load` of a hand-built OCI layout archive whose layers are zstd-compressed and
//! plain (uncompressed) tars: both unpack with the right bytes and modes, whiteouts in
//! the plain layer hide zstd-layer files under overlayfs, and a zstd blob whose content
//! does not match its name is refused without registering anything.
//! Must run as root (overlay mounts, whiteout device nodes).

mod common;

use berth_image::{Store, StoreError};
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const TAG: &str = "docker.io/library/zstdtest:1";

/// `sha256:<hex>`, computed here (not with the crate's own helper) so a bug there shows.
fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn raw(name: &'static str, data: &'static [u8], mode: u32) -> Raw<'static> {
    Raw {
        mode,
        ..file(name, data)
    }
}

/// Bottom layer, uncompressed tar (later zstd-compressed).
fn lower_tar() -> Vec<u8> {
    raw_tar(&[
        dir("bin"),
        raw("bin/tool", b"#!/bin/sh\necho zstd tool\n", 0o755),
        dir("etc"),
        raw("etc/secret", b"only root reads this\n", 0o600),
        raw("etc/gone", b"the upper layer whites this out\n", 0o644),
        dir("opq"),
        raw("opq/old", b"hidden by an opaque dir\n", 0o644),
        symlink("bin/link", "tool"),
    ])
}

/// Top layer, shipped uncompressed: a new file, a whiteout, an opaque directory.
fn upper_tar() -> Vec<u8> {
    raw_tar(&[
        dir("etc"),
        raw("etc/plain", b"from the plain layer\n", 0o640),
        raw("etc/.wh.gone", b"", 0o644),
        dir("opq"),
        raw("opq/.wh..wh..opq", b"", 0o644),
        raw("opq/new", b"replaces the opaque dir's contents\n", 0o644),
    ])
}

struct Built {
    archive: Vec<u8>,
    zstd_digest: String,
    plain_digest: String,
    lower_diff: String,
    upper_diff: String,
}

/// An OCI layout archive. `corrupt_zstd` stores the zstd layer under its true name but
/// with one payload byte flipped, so its content no longer matches the name; the bad
/// blob is written LAST so every other blob, the config and the manifest are already
/// in the store when the mismatch is found.
fn build(corrupt_zstd: bool) -> Built {
    build_with(corrupt_zstd, false)
}

/// `lie_diff_id`: the config names the zstd layer's diffID as the sha256 of the
/// COMPRESSED bytes (a classic mistake) instead of the uncompressed tar.
fn build_with(corrupt_zstd: bool, lie_diff_id: bool) -> Built {
    let lower = lower_tar();
    let upper = upper_tar();
    let zst = zstd::encode_all(&lower[..], 3).expect("zstd encode");
    assert!(
        zst.starts_with(&ZSTD_MAGIC),
        "zstd crate wrote no zstd frame"
    );
    assert_ne!(zst, lower);
    let zstd_digest = sha(&zst);
    let plain_digest = sha(&upper);
    let lower_diff = sha(&lower);
    let upper_diff = sha(&upper);

    let config_lower = if lie_diff_id {
        zstd_digest.clone()
    } else {
        lower_diff.clone()
    };
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/tool"]},
        "rootfs": {"type": "layers", "diff_ids": [config_lower, upper_diff]},
        "history": [{"created_by": "zstd layer"}, {"created_by": "plain layer"}],
    }))
    .expect("config json");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(&config),
            "size": config.len(),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                "digest": zstd_digest,
                "size": zst.len(),
            },
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": plain_digest,
                "size": upper.len(),
            },
        ],
    }))
    .expect("manifest json");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": TAG,
                "org.opencontainers.image.ref.name": "1",
            },
        }],
    }))
    .expect("index json");

    let mut zst_payload = zst.clone();
    if corrupt_zstd {
        let last = zst_payload.len() - 1;
        zst_payload[last] ^= 0xff;
    }
    let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha(b)["sha256:".len()..]);
    let mut ar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        ar.append_data(&mut h, name, data).expect("append");
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    add(&blob(&manifest), &manifest);
    add(&blob(&config), &config);
    add(&blob(&upper), &upper);
    // Named after the true content even when corrupted.
    add(&blob(&zst), &zst_payload);
    let archive = ar.into_inner().expect("finish archive");
    Built {
        archive,
        zstd_digest,
        plain_digest,
        lower_diff,
        upper_diff,
    }
}

fn assert_file(p: &Path, data: &[u8], mode: u32) {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    assert!(
        md.file_type().is_file(),
        "{} is not a regular file",
        p.display()
    );
    assert_eq!(
        md.permissions().mode() & 0o7777,
        mode,
        "{}: mode {:o}, want {mode:o}",
        p.display(),
        md.permissions().mode() & 0o7777
    );
    assert_eq!(
        std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())),
        data,
        "{}: wrong bytes",
        p.display()
    );
}

fn assert_absent(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Ok(md) => panic!(
            "{} should not exist, found {:?}",
            p.display(),
            md.file_type()
        ),
        Err(e) => panic!("stat {}: {e}", p.display()),
    }
}

#[test]
fn loads_zstd_and_plain_layers() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(&t.path().join("store")).expect("open store");
    let b = build(false);
    let imgs = store.load(&b.archive[..]).expect("load zstd+plain archive");
    assert_eq!(imgs.len(), 1, "one image in the archive");
    let img = &imgs[0];
    assert_eq!(img.repo_tags, vec![TAG.to_string()]);
    assert_eq!(store.resolve("zstdtest:1").expect("resolve tag").id, img.id);

    // The manifest's view is kept: compressed digest and media type vs uncompressed diffID.
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[0].digest, b.zstd_digest);
    assert_eq!(img.layers[0].diff_id, b.lower_diff);
    assert_eq!(
        img.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_ne!(img.layers[0].digest, img.layers[0].diff_id);
    assert_eq!(img.layers[1].digest, b.plain_digest);
    assert_eq!(img.layers[1].diff_id, b.upper_diff);
    assert_eq!(
        img.layers[1].media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    // The blob stored for the zstd layer is the compressed one.
    let stored = store.read_blob(&b.zstd_digest).expect("read zstd blob");
    assert!(
        stored.starts_with(&ZSTD_MAGIC),
        "zstd blob stored decompressed?"
    );

    let dirs = store.layer_dirs(img).expect("layer dirs");
    assert_eq!(dirs.len(), 2);
    let (lo, up) = (&dirs[0], &dirs[1]);
    // Bottom (zstd) layer: decompressed and unpacked with modes kept.
    assert_file(&lo.join("bin/tool"), b"#!/bin/sh\necho zstd tool\n", 0o755);
    assert_file(&lo.join("etc/secret"), b"only root reads this\n", 0o600);
    assert_file(
        &lo.join("etc/gone"),
        b"the upper layer whites this out\n",
        0o644,
    );
    assert_file(&lo.join("opq/old"), b"hidden by an opaque dir\n", 0o644);
    assert_eq!(
        std::fs::read_link(lo.join("bin/link")).expect("readlink"),
        Path::new("tool")
    );
    // Top (plain) layer: its file, and the whiteout as an overlay 0:0 char device.
    assert_file(&up.join("etc/plain"), b"from the plain layer\n", 0o640);
    let wh = std::fs::symlink_metadata(up.join("etc/gone")).expect("whiteout node");
    assert!(
        berth_image::layer::is_whiteout(&wh),
        "etc/gone in the plain layer is not a 0:0 char device (rdev {:#x})",
        wh.rdev()
    );
    assert_absent(&up.join("etc/.wh.gone"));
    assert_absent(&up.join("opq/.wh..wh..opq"));
    assert_absent(&up.join("bin/tool"));

    // Merged view: both layers' files, the whiteout and the opaque dir take effect.
    let m = mount_image(&store, img, t.path(), "merged");
    let root = &m.target;
    assert_file(
        &root.join("bin/tool"),
        b"#!/bin/sh\necho zstd tool\n",
        0o755,
    );
    assert_file(&root.join("etc/secret"), b"only root reads this\n", 0o600);
    assert_file(&root.join("etc/plain"), b"from the plain layer\n", 0o640);
    assert_file(
        &root.join("opq/new"),
        b"replaces the opaque dir's contents\n",
        0o644,
    );
    assert_absent(&root.join("etc/gone"));
    assert_absent(&root.join("opq/old"));
    let mut etc: Vec<String> = std::fs::read_dir(root.join("etc"))
        .expect("readdir etc")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    etc.sort();
    assert_eq!(etc, ["plain", "secret"]);
    drop(m);

    // docker's Size is the uncompressed total.
    assert_eq!(img.size, (lower_tar().len() + upper_tar().len()) as u64);

    // The layers were unpacked speculatively while the archive streamed in; unpack them
    // again from the stored blobs (the layer_dirs path) and check the zstd one again.
    for d in &dirs {
        std::fs::remove_dir_all(d).expect("remove layer dir");
    }
    let dirs2 = store.layer_dirs(img).expect("layer dirs after removal");
    assert_eq!(dirs2, dirs);
    assert_file(
        &dirs2[0].join("bin/tool"),
        b"#!/bin/sh\necho zstd tool\n",
        0o755,
    );
    assert_file(
        &dirs2[0].join("etc/secret"),
        b"only root reads this\n",
        0o600,
    );
    assert_file(
        &dirs2[1].join("etc/plain"),
        b"from the plain layer\n",
        0o640,
    );
    assert!(berth_image::layer::is_whiteout(
        &std::fs::symlink_metadata(dirs2[1].join("etc/gone")).expect("whiteout again")
    ));

    // Loading the same archive again is idempotent (blobs already present are skipped).
    let again = store.load(&b.archive[..]).expect("second load");
    assert_eq!(again[0].id, img.id);
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn zstd_layer_with_wrong_digest_is_refused() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(&t.path().join("store")).expect("open store");
    let b = build(true);
    let err = store
        .load(&b.archive[..])
        .expect_err("a corrupted zstd blob must be refused");
    match &err {
        StoreError::DigestMismatch { digest, actual } => {
            assert_eq!(digest, &b.zstd_digest);
            assert_ne!(actual, &b.zstd_digest);
        }
        other => panic!("want DigestMismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&b.zstd_digest) && msg.contains("digest mismatch"),
        "unclear error: {msg}"
    );
    assert!(
        store.list().expect("list").is_empty(),
        "an image was registered"
    );
    assert!(
        matches!(store.resolve("zstdtest:1"), Err(StoreError::NotFound(_))),
        "tag resolves after a failed load"
    );
    assert!(
        !store.has_blob(&b.zstd_digest),
        "corrupt blob kept in the store"
    );
    // No unpacked layer for the bad blob either (the good plain layer may be prefetched).
    let lower_dir = store.layer_dir(&b.lower_diff).expect("layer dir path");
    assert_absent(&lower_dir);

    // The store is still usable: the intact archive loads afterwards.
    let good = build(false);
    let imgs = store.load(&good.archive[..]).expect("load intact archive");
    assert_eq!(imgs.len(), 1);
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn zstd_layer_with_compressed_diff_id_is_refused() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(&t.path().join("store")).expect("open store");
    let b = build_with(false, true);
    let err = store
        .load(&b.archive[..])
        .expect_err("a diffID naming the compressed bytes must be refused");
    match &err {
        StoreError::DiffIdMismatch {
            digest,
            expected,
            actual,
        } => {
            assert_eq!(digest, &b.zstd_digest);
            assert_eq!(expected, &b.zstd_digest);
            assert_eq!(actual, &b.lower_diff);
        }
        other => panic!("want DiffIdMismatch, got {other:?}"),
    }
    assert!(
        err.to_string().contains("diffID mismatch"),
        "unclear error: {err}"
    );
    assert!(
        store.list().expect("list").is_empty(),
        "an image was registered"
    );
    assert!(matches!(
        store.resolve("zstdtest:1"),
        Err(StoreError::NotFound(_))
    ));
}
