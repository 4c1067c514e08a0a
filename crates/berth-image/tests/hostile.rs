//! Hostile layers: nothing is ever written outside the layer, the error is clear,
//! nothing is half-registered and other images stay intact.

mod common;

use berth_image::Store;
use common::*;
use std::path::Path;

fn layer_count(root: &Path) -> usize {
    std::fs::read_dir(root.join("layers"))
        .expect("layers")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count()
}

#[test]
fn tar_slip_catalogue() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let root = t.path().join("store");
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir outside");
    std::fs::write(outside.join("secret"), b"keep").expect("secret");
    let store = Store::open(&root).expect("open");
    let good = busybox(&store);
    let out_s = outside.to_str().expect("utf8");
    let secret = format!("{out_s}/secret");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            raw_tar(&[file("../../../outside/evil", b"x")]),
            "escapes",
        ),
        (
            "dotdot-middle",
            raw_tar(&[dir("a/"), file("a/../../evil", b"x")]),
            "escapes",
        ),
        (
            "absolute",
            raw_tar(&[file(&format!("{out_s}/evil"), b"x")]),
            "absolute",
        ),
        (
            "symlink-abs-then-file",
            raw_tar(&[symlink("link", out_s), file("link/evil", b"x")]),
            "symlink",
        ),
        (
            "symlink-rel-then-file",
            raw_tar(&[
                symlink("link", "../../../../../../../.."),
                file(&format!("link{out_s}/evil"), b"x"),
            ]),
            "symlink",
        ),
        (
            "symlink-then-dir",
            raw_tar(&[symlink("d", out_s), dir("d/sub/"), file("d/sub/evil", b"x")]),
            "symlink",
        ),
        (
            "hardlink-dotdot",
            raw_tar(&[hardlink("h", "../../outside/secret")]),
            "not in this layer",
        ),
        (
            "hardlink-absolute",
            raw_tar(&[hardlink("h", &secret)]),
            "not in this layer",
        ),
        (
            "hardlink-through-symlink",
            raw_tar(&[symlink("s", out_s), hardlink("h", "s/secret")]),
            "not in this layer",
        ),
        (
            "whiteout-dotdot",
            raw_tar(&[file("a/.wh...", b"")]),
            "whiteout",
        ),
    ];
    let layers_before = layer_count(&root);
    for (name, tar, want) in &cases {
        let err = store
            .import(&tar[..], &[], Some(&format!("evil:{name}")))
            .expect_err(name);
        let msg = format!("{err}: {:?}", std::error::Error::source(&err));
        assert!(
            msg.contains(want),
            "{name}: error {msg:?} should mention {want:?}"
        );
        let entries: Vec<_> = std::fs::read_dir(&outside)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            entries,
            vec![std::ffi::OsString::from("secret")],
            "{name} wrote outside"
        );
        assert_eq!(
            std::fs::read(outside.join("secret")).expect("secret"),
            b"keep"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(outside.join("secret"))
                .expect("md")
                .nlink(),
            1,
            "{name} linked the secret"
        );
        assert!(
            store.resolve(&format!("evil:{name}")).is_err(),
            "{name} registered"
        );
    }
    assert_eq!(
        layer_count(&root),
        layers_before,
        "no half-unpacked layer left"
    );
    // The good image is intact and nothing else is registered.
    assert_eq!(store.list().expect("list").len(), 1);
    let m = mount_image(&store, &good, t.path(), "after");
    assert!(m.target.join("bin/busybox").exists());
    // Store-private scratch space holds nothing after the failures.
    drop(m);
    drop(store);
    let tmp_entries = std::fs::read_dir(root.join("tmp")).expect("tmp").count();
    assert_eq!(tmp_entries, 0, "tmp debris left");
}

#[test]
fn a_symlink_inside_the_layer_stays_data() {
    require_root();
    // Symlinks pointing anywhere are legal content; they are only never followed.
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(t.path()).expect("open");
    let tar = raw_tar(&[
        symlink("etc", "/etc"),
        symlink("up", "../../.."),
        file("x", b"1"),
    ]);
    let img = store
        .import(&tar[..], &[], Some("links:1"))
        .expect("import");
    let d = &store.layer_dirs(&img).expect("dirs")[0];
    assert_eq!(
        std::fs::read_link(d.join("etc")).expect("etc"),
        Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_link(d.join("up")).expect("up"),
        Path::new("../../..")
    );
}

#[test]
fn corrupt_and_truncated_blobs() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(t.path()).expect("open");
    let good = busybox(&store);
    // A digest that does not match the content is refused and nothing is stored.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = store
        .put_blob(&b"hello"[..], Some(&wrong))
        .expect_err("mismatch");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(!store.has_blob(&wrong));
    // A truncated gzip layer.
    let tar = raw_tar(&[file("big", &vec![7u8; 100_000])]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gz");
    let gz = gz.finish().expect("gz");
    let err = store
        .import(&gz[..gz.len() / 2], &[], Some("trunc:1"))
        .expect_err("truncated");
    assert!(err.to_string().contains("unpack"), "{err}");
    // A truncated plain tar.
    let err = store
        .import(&tar[..700], &[], Some("trunc:2"))
        .expect_err("truncated tar");
    assert!(err.to_string().contains("unpack"), "{err}");
    assert_eq!(store.list().expect("list").len(), 1);
    assert_eq!(store.resolve("busybox").expect("bb").id, good.id);
    assert!(store.layer_dirs(&good).expect("dirs")[0]
        .join("bin/busybox")
        .exists());
}

#[test]
fn special_files_whiteouts_and_xattrs_unpack_faithfully() {
    require_root();
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let t = tempfile::tempdir().expect("tmp");
    let store = Store::open(t.path()).expect("open");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str,
                   kind: tar::EntryType,
                   mode: u32,
                   uid: u64,
                   dev: Option<(u32, u32)>,
                   xattr: Option<(&str, &[u8])>,
                   data: &[u8]| {
        if let Some((k, v)) = xattr {
            let key = format!("SCHILY.xattr.{k}");
            b.append_pax_extensions([(key.as_str(), v)]).expect("pax");
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid + 1);
        h.set_mtime(1234567);
        h.set_size(data.len() as u64);
        if let Some((ma, mi)) = dev {
            h.set_device_major(ma).expect("major");
            h.set_device_minor(mi).expect("minor");
        }
        b.append_data(&mut h, name, data).expect("append");
    };
    use tar::EntryType as T;
    add("d/", T::Directory, 0o750, 1000, None, None, b"");
    add(
        "d/f",
        T::Regular,
        0o4755,
        1000,
        None,
        Some(("user.berth", b"v1")),
        b"data",
    );
    add(
        "d/cap",
        T::Regular,
        0o755,
        0,
        None,
        Some(("trusted.overlay.opaque", b"y")),
        b"x",
    );
    add("dev/null", T::Char, 0o666, 0, Some((1, 3)), None, b"");
    add("dev/loop9", T::Block, 0o660, 0, Some((7, 9)), None, b"");
    add("p", T::Fifo, 0o600, 5, None, None, b"");
    add("gone/.wh.x", T::Regular, 0o644, 0, None, None, b"");
    add("opq/.wh..wh..opq", T::Regular, 0o644, 0, None, None, b"");
    let tar = b.into_inner().expect("tar");
    let img = store
        .import(&tar[..], &[], Some("special:1"))
        .expect("import");
    let d = &store.layer_dirs(&img).expect("dirs")[0];
    let md = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(md("d").permissions().mode() & 0o7777, 0o750);
    assert_eq!((md("d").uid(), md("d").gid()), (1000, 1001));
    assert_eq!(
        md("d").mtime(),
        1234567,
        "directory mtime set after its children"
    );
    assert_eq!(
        md("d/f").permissions().mode() & 0o7777,
        0o4755,
        "setuid survives chown"
    );
    assert_eq!(
        xattr::get(d.join("d/f"), "user.berth").expect("xattr"),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        xattr::get(d.join("d/cap"), "trusted.overlay.opaque").expect("xattr"),
        None,
        "overlay xattrs from a tar are dropped"
    );
    assert!(md("dev/null").file_type().is_char_device());
    assert_eq!(md("dev/null").rdev(), libc::makedev(1, 3));
    assert!(md("dev/loop9").file_type().is_block_device());
    assert_eq!(md("dev/loop9").rdev(), libc::makedev(7, 9));
    assert!(md("p").file_type().is_fifo());
    assert_eq!(md("p").uid(), 5);
    assert!(
        md("gone/x").file_type().is_char_device() && md("gone/x").rdev() == 0,
        "whiteout"
    );
    assert!(!d.join("gone/.wh.x").exists());
    assert_eq!(
        xattr::get(d.join("opq"), "trusted.overlay.opaque").expect("xattr"),
        Some(b"y".to_vec())
    );
    assert!(!d.join("opq/.wh..wh..opq").exists());
}

#[test]
fn full_disk_mid_unpack_is_a_clean_error() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let root = t.path().join("small");
    std::fs::create_dir(&root).expect("mkdir");
    nix::mount::mount(
        Some("tmpfs"),
        &root,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=12m"),
    )
    .expect("mount tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _u = Unmount(&root);
    let store = Store::open(&root).expect("open");
    let good = store
        .import(&raw_tar(&[file("small", b"ok")])[..], &[], Some("good:1"))
        .expect("small image");
    // 8 MiB of blob plus 8 MiB unpacked cannot fit in 12 MiB.
    let big: Vec<u8> = (0..8 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let err = store
        .import(&raw_tar(&[file("big", &big)])[..], &[], Some("big:1"))
        .expect_err("ENOSPC");
    let msg = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(
        msg.contains("No space left") || msg.contains("os error 28"),
        "{msg}"
    );
    assert!(store.resolve("big:1").is_err());
    assert_eq!(store.resolve("good:1").expect("good").id, good.id);
    assert!(store.layer_dirs(&good).expect("dirs")[0]
        .join("small")
        .exists());
    drop(store);
    // The next open reclaims the space the failed import used.
    let store = Store::open(&root).expect("reopen");
    let st = nix::sys::statvfs::statvfs(&root).expect("statvfs");
    assert!(
        st.blocks_available() * st.fragment_size() > 10 << 20,
        "space not reclaimed"
    );
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn debris_of_a_killed_process_is_removed_on_open() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let root = t.path();
    let store = Store::open(root).expect("open");
    let good = busybox(&store);
    drop(store);
    // What kill -9 mid-import leaves: an unlocked scratch dir with a half layer, a blob
    // nobody references, and a stale index temp file.
    std::fs::create_dir_all(root.join("tmp/99999-1-0/layer-3/usr")).expect("debris");
    std::fs::write(root.join("tmp/99999-1-0/layer-3/usr/half"), b"x").expect("debris");
    std::fs::write(root.join("tmp/99999-1-0.lock"), b"").expect("lock");
    let orphan = format!("{:064x}", 7);
    std::fs::write(root.join("blobs/sha256").join(&orphan), b"orphan").expect("orphan blob");
    // A live process's scratch dir must survive: hold its lock.
    let live = root.join("tmp/live-1.lock");
    std::fs::create_dir_all(root.join("tmp/live-1")).expect("live");
    let f = std::fs::File::create(&live).expect("live lock");
    let _held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).expect("flock");
    let store = Store::open(root).expect("reopen");
    assert!(!root.join("tmp/99999-1-0").exists());
    assert!(!root.join("tmp/99999-1-0.lock").exists());
    assert!(
        root.join("tmp/live-1").exists(),
        "a live process's scratch space is kept"
    );
    assert!(
        !root.join("blobs/sha256").join(&orphan).exists(),
        "unreferenced blob collected"
    );
    assert_eq!(store.resolve("busybox").expect("bb").id, good.id);
    assert!(store.layer_dirs(&good).expect("dirs")[0]
        .join("bin/busybox")
        .exists());
}
