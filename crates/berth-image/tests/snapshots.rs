//! Store + layers + overlay snapshots on the real kernel (root).

mod common;

use berth_image::snapshot;
use berth_image::{CommitOptions, Store};
use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

#[test]
fn bootstrap_is_deterministic_and_resolvable() {
    require_root();
    let t1 = tempfile::tempdir().expect("tmp");
    let t2 = tempfile::tempdir().expect("tmp");
    let s1 = Store::open(t1.path()).expect("open");
    let s2 = Store::open(t2.path()).expect("open");
    let a = busybox(&s1);
    let b = busybox(&s2);
    assert_eq!(a.id, b.id, "same busybox must give the same image id");
    assert_eq!(a.manifest_digest, b.manifest_digest);
    let again = busybox(&s1);
    assert_eq!(again.id, a.id);
    assert_eq!(s1.list().expect("list").len(), 1);
    for r in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        &a.id,
        &a.id[7..13],
        &a.id[..11],
    ] {
        assert_eq!(s1.resolve(r).expect(r).id, a.id, "{r}");
    }
    assert_eq!(a.repo_tags, vec!["docker.io/library/busybox:latest"]);
    let cfg = a.config.config().clone().expect("config");
    assert_eq!(cfg.cmd().clone().expect("cmd"), vec!["sh"]);
    assert!(cfg.env().clone().expect("env")[0].starts_with("PATH="));
    let dirs = s1.layer_dirs(&a).expect("dirs");
    assert_eq!(dirs.len(), 1);
    let root = &dirs[0];
    assert!(std::fs::symlink_metadata(root.join("bin/sh"))
        .expect("sh")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).expect("sh"),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        std::fs::metadata(root.join("tmp"))
            .expect("tmp")
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert_eq!(
        std::fs::metadata(root.join("root"))
            .expect("root")
            .permissions()
            .mode()
            & 0o7777,
        0o700
    );
    assert!(a.size > 1_000_000, "size {}", a.size);
    let insp = s1.inspect("busybox").expect("inspect");
    assert_eq!(insp["Id"], a.id);
    assert_eq!(insp["RepoTags"][0], "busybox:latest");
    assert_eq!(
        insp["RootFS"]["Layers"].as_array().expect("layers").len(),
        1
    );
    assert_eq!(insp["Os"], "linux");
    assert!(s1.resolve("nosuch").is_err());
    assert!(s1
        .resolve("Bad:Name")
        .expect_err("invalid")
        .to_string()
        .contains("invalid reference format"));
}

#[test]
fn two_containers_share_lowers_and_not_writes() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(&t.path().join("store")).expect("open");
    let img = busybox(&store);
    let layer = store.layer_dirs(&img).expect("dirs")[0].clone();
    let c1 = mount_image(&store, &img, t.path(), "c1");
    let c2 = mount_image(&store, &img, t.path(), "c2");
    // Same inode through both mounts and in the layer dir: the layer is shared, not copied.
    let i0 = ino(&layer.join("bin/busybox"));
    assert_eq!(ino(&c1.target.join("bin/busybox")), i0);
    assert_eq!(ino(&c2.target.join("bin/busybox")), i0);
    std::fs::write(c1.target.join("etc/passwd"), b"changed\n").expect("write c1");
    std::fs::write(c1.target.join("new"), b"x").expect("write new");
    assert_eq!(
        std::fs::read(c1.target.join("etc/passwd")).expect("c1"),
        b"changed\n"
    );
    assert!(std::fs::read(c2.target.join("etc/passwd"))
        .expect("c2")
        .starts_with(b"root:"));
    assert!(std::fs::read(layer.join("etc/passwd"))
        .expect("layer")
        .starts_with(b"root:"));
    assert!(!c2.target.join("new").exists());
    std::fs::remove_file(c1.target.join("bin/ls")).expect("rm ls");
    assert!(c2.target.join("bin/ls").symlink_metadata().is_ok());
    let changes = snapshot::diff(&c1.upper, std::slice::from_ref(&layer)).expect("diff");
    let s: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        s,
        vec!["C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "A /new"]
    );
}

#[test]
fn commit_whiteouts_hide_files_in_later_layers() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(&t.path().join("store")).expect("open");
    let base = busybox(&store);
    let c = mount_image(&store, &base, t.path(), "c");
    std::fs::remove_file(c.target.join("etc/group")).expect("rm");
    std::fs::remove_dir_all(c.target.join("home")).expect("rm home");
    std::fs::create_dir(c.target.join("home")).expect("mkdir home (opaque)");
    std::fs::write(c.target.join("home/x"), b"1").expect("write");
    std::fs::write(c.target.join("hello"), b"hi").expect("write");
    xattr::set(c.target.join("hello"), "user.berth", b"kept").expect("set xattr");
    std::fs::hard_link(c.target.join("hello"), c.target.join("hello2")).expect("hard link");
    let opts = CommitOptions {
        changes: vec!["CMD [\"cat\", \"/hello\"]".into(), "ENV A=1".into()],
        created_by: Some("test".into()),
        ..Default::default()
    };
    let img = store
        .commit(Some(&base), Some(&c.upper), &opts, Some("derived:1"))
        .expect("commit");
    drop(c);
    assert_eq!(img.layers.len(), 2);
    let dirs = store.layer_dirs(&img).expect("dirs");
    let wh = std::fs::symlink_metadata(dirs[1].join("etc/group")).expect("whiteout node");
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    assert_eq!(
        xattr::get(dirs[1].join("home"), "trusted.overlay.opaque").expect("xattr"),
        Some(b"y".to_vec()),
        "a directory recreated in the container is opaque in the committed layer"
    );
    assert_eq!(
        xattr::get(dirs[1].join("hello"), "user.berth").expect("xattr"),
        Some(b"kept".to_vec())
    );
    assert_eq!(
        ino(&dirs[1].join("hello")),
        ino(&dirs[1].join("hello2")),
        "hard link survives commit"
    );
    let m = mount_image(&store, &img, t.path(), "m");
    assert!(
        !m.target.join("etc/group").exists(),
        "whiteout hides the lower file"
    );
    assert!(m.target.join("etc/passwd").exists());
    assert_eq!(std::fs::read(m.target.join("hello")).expect("hello"), b"hi");
    assert!(m.target.join("home/x").exists());
    assert!(
        !m.target.join("home/.wh..wh..opq").exists(),
        "whiteout markers never show"
    );
    let cfg = img.config.config().clone().expect("cfg");
    assert_eq!(cfg.cmd().clone().expect("cmd"), vec!["cat", "/hello"]);
    assert!(cfg.env().clone().expect("env").contains(&"A=1".to_string()));
    let hist = store.history("derived:1").expect("history");
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0].created_by, "test");
    assert_eq!(hist[0].id, img.id);
    // A config-only commit adds no layer.
    let img2 = store
        .commit(
            Some(&img),
            None,
            &CommitOptions {
                changes: vec!["WORKDIR /tmp".into()],
                ..Default::default()
            },
            Some("derived:2"),
        )
        .expect("commit config only");
    assert_eq!(img2.layers.len(), 2);
    assert!(store.history("derived:2").expect("h")[0].empty_layer);
}

#[test]
fn many_layers_and_scratch() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(&t.path().join("store")).expect("open");
    let mut img = store
        .commit(None, None, &CommitOptions::default(), Some("scratch:1"))
        .expect("scratch image");
    assert!(img.layers.is_empty());
    {
        let m = mount_image(&store, &img, t.path(), "scratch");
        assert_eq!(std::fs::read_dir(&m.target).expect("ls").count(), 0);
        std::fs::write(m.target.join("f"), b"x").expect("write into scratch container");
    }
    for i in 0..120 {
        let up = t.path().join(format!("up{i}"));
        std::fs::create_dir_all(up.join("d")).expect("mkdir");
        std::fs::write(up.join(format!("d/f{i}")), format!("{i}")).expect("write");
        img = store
            .commit(Some(&img), Some(&up), &CommitOptions::default(), None)
            .expect("commit layer");
    }
    store.tag(&img.id, "tall:120").expect("tag");
    let img = store.resolve("tall:120").expect("resolve");
    assert_eq!(img.layers.len(), 120);
    let dirs = store.layer_dirs(&img).expect("dirs");
    let total: usize = dirs.iter().map(|d| d.as_os_str().len() + 1).sum();
    assert!(
        total > 4096,
        "the lowerdir string ({total} bytes) must exceed a page for this test to mean anything"
    );
    let m = mount_image(&store, &img, t.path(), "tall");
    for i in [0, 1, 59, 119] {
        assert_eq!(
            std::fs::read_to_string(m.target.join(format!("d/f{i}"))).expect("file"),
            i.to_string()
        );
    }
    assert_eq!(
        std::fs::read_dir(m.target.join("d")).expect("ls").count(),
        120
    );
}

#[test]
fn tag_remove_prune_and_gc() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(t.path()).expect("open");
    let img = busybox(&store);
    store.tag("busybox", "mine:1").expect("tag");
    assert_eq!(store.resolve("mine:1").expect("mine").id, img.id);
    assert_eq!(store.resolve("busybox").expect("bb").repo_tags.len(), 2);
    // An id with two names needs force.
    assert!(store.remove(&img.id, false, &|_| false).is_err());
    // The last name of an image in use is refused without force.
    let out = store.remove("mine:1", false, &|_| false).expect("untag");
    assert_eq!(out, vec!["Untagged: mine:1"]);
    let err = store
        .remove("busybox", false, &|id| id == img.id)
        .expect_err("in use");
    assert!(err.to_string().contains("in use"), "{err}");
    // force on an in-use image only untags; the image and its layers stay.
    let out = store
        .remove("busybox", true, &|id| id == img.id)
        .expect("force");
    assert_eq!(out, vec!["Untagged: busybox:latest"]);
    assert!(store.resolve(&img.id).is_ok());
    assert!(store.layer_dirs(&img).expect("dirs")[0].exists());
    // prune keeps what is in use, then deletes it once unused.
    assert!(store
        .prune(false, &|id| id == img.id)
        .expect("prune")
        .is_empty());
    assert_eq!(
        store.prune(false, &|_| false).expect("prune"),
        vec![img.id.clone()]
    );
    assert!(store.list().expect("list").is_empty());
    assert_eq!(
        std::fs::read_dir(t.path().join("blobs/sha256"))
            .expect("blobs")
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(t.path().join("layers"))
            .expect("layers")
            .count(),
        0
    );
    let img = busybox(&store);
    let out = store.remove("busybox", false, &|_| false).expect("rmi");
    assert_eq!(
        out,
        vec![
            "Untagged: busybox:latest".to_string(),
            format!("Deleted: {}", img.id)
        ]
    );
}

#[test]
fn import_with_changes_and_concurrent_unpack() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let root = t.path().join("store");
    let tar = raw_tar(&[
        dir("a/"),
        file("a/f", b"hello"),
        symlink("a/l", "f"),
        hardlink("a/h", "a/f"),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gz");
    let gz = gz.finish().expect("gz");
    // Several processes' worth of stores importing the same layer at once.
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let root = root.clone();
                let gz = gz.clone();
                s.spawn(move || {
                    let st = Store::open(&root).expect("open");
                    let changes = vec!["CMD [\"/a/f\"]".to_string(), "WORKDIR /a".to_string()];
                    st.import(&gz[..], &changes, Some(&format!("imp:{i}")))
                        .expect("import")
                        .layers[0]
                        .diff_id
                        .clone()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let store = Store::open(&root).expect("open");
    let img = store.resolve("imp:0").expect("imp");
    assert_eq!(
        img.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        img.config
            .config()
            .clone()
            .expect("c")
            .working_dir()
            .as_deref(),
        Some("/a")
    );
    let d = &store.layer_dirs(&img).expect("dirs")[0];
    assert_eq!(
        ino(&d.join("a/f")),
        ino(&d.join("a/h")),
        "hard link preserved"
    );
    assert_eq!(
        std::fs::read_link(d.join("a/l")).expect("link"),
        Path::new("f")
    );
    assert_eq!(
        std::fs::symlink_metadata(d.join("a/f")).expect("f").mtime(),
        1_000_000
    );
    let layers = std::fs::read_dir(root.join("layers"))
        .expect("ls")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert_eq!(layers, 1, "one unpacked dir for one layer");
    assert!(store
        .import(&b"not a tar at all, just text"[..], &[], Some("bad:1"))
        .is_err());
    assert!(store
        .import(&tar[..], &["RUN x".to_string()], None)
        .is_err());
}

#[test]
fn a_layer_repeated_in_one_image_mounts_with_the_top_occurrence_winning() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let a = t.path().join("A");
    let b = t.path().join("B");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("x"), "from A").unwrap();
    std::fs::write(b.join("x"), "from B").unwrap();
    std::fs::write(b.join("y"), "only B").unwrap();
    let target = t.path().join("m");
    std::fs::create_dir_all(&target).unwrap();
    let ov = snapshot::Overlay {
        lowers: vec![a.clone(), b.clone(), a.clone()],
        upper: t.path().join("upper"),
        work: t.path().join("work"),
    };
    ov.mount(&target)
        .expect("overlayfs refuses a repeated lower dir unless berth dedupes it");
    let x = std::fs::read_to_string(target.join("x"));
    let y = std::fs::read_to_string(target.join("y"));
    snapshot::unmount(&target).unwrap();
    assert_eq!(x.unwrap(), "from A", "the top A wins over B");
    assert_eq!(y.unwrap(), "only B");
}

#[test]
fn many_concurrent_opens_never_trip_over_each_others_debris_cleaning() {
    // every open cleans the debris of dead openers; it must never take the lock of a
    // live one that has not locked yet (that open then failed with EAGAIN)
    let t = tempfile::tempdir().expect("tmp");
    let root = t.path().to_path_buf();
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || {
                for _ in 0..40 {
                    Store::open(&root).expect("a concurrent open failed");
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("thread");
    }
    let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "debris left: {left:?}");
}
