//! save/load round trips, and archives made by skopeo and podman (apt: skopeo, podman).

mod common;

use berth_image::{CommitOptions, Store};
use common::*;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e} (apt-get install skopeo podman)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// podman with private storage under `dir` (vfs: no mounts left behind).
fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .arg("--storage-driver")
        .arg("vfs")
        .arg("--tmpdir")
        .arg(dir.join("tmp"));
    c
}

/// A two-layer image on top of busybox, with a file and a whiteout.
fn derived(store: &Store, t: &Path) -> berth_image::Image {
    let base = busybox(store);
    let m = mount_image(store, &base, t, "derive");
    std::fs::write(m.target.join("hello"), b"from berth\n").expect("write");
    std::fs::remove_file(m.target.join("etc/group")).expect("rm");
    let opts = CommitOptions {
        changes: vec!["CMD [\"cat\", \"/hello\"]".into()],
        ..Default::default()
    };
    store
        .commit(Some(&base), Some(&m.upper), &opts, Some("derived:1"))
        .expect("commit")
}

#[test]
fn save_then_load_round_trip() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let a = Store::open(&t.path().join("a")).expect("open");
    let img = derived(&a, t.path());
    let bb = a.resolve("busybox").expect("bb");
    let archive = t.path().join("save.tar");
    a.save(
        &["derived:1", "busybox"],
        std::fs::File::create(&archive).expect("create"),
    )
    .expect("save");
    let b = Store::open(&t.path().join("b")).expect("open");
    let loaded = b
        .load(std::fs::File::open(&archive).expect("open"))
        .expect("load");
    assert_eq!(loaded.len(), 2);
    assert_eq!(b.resolve("derived:1").expect("derived").id, img.id);
    assert_eq!(b.resolve("busybox").expect("bb").id, bb.id);
    let m = mount_image(&b, &b.resolve("derived:1").expect("d"), t.path(), "check");
    assert_eq!(
        std::fs::read(m.target.join("hello")).expect("hello"),
        b"from berth\n"
    );
    assert!(!m.target.join("etc/group").exists());
    // Loading from a pipe-like reader (no seeking) works the same.
    let c = Store::open(&t.path().join("c")).expect("open");
    let bytes = std::fs::read(&archive).expect("read");
    let via_pipe = c
        .load(std::io::Cursor::new(bytes))
        .expect("load from reader");
    assert_eq!(via_pipe.len(), 2);
}

#[test]
fn truncated_archive_and_missing_blob_register_nothing() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let a = Store::open(&t.path().join("a")).expect("open");
    busybox(&a);
    let mut buf = Vec::new();
    a.save(&["busybox"], &mut buf).expect("save");
    let b = Store::open(&t.path().join("b")).expect("open");
    let err = b.load(&buf[..buf.len() / 2]).expect_err("truncated");
    assert!(!err.to_string().is_empty());
    assert!(b.list().expect("list").is_empty());
    // An archive whose manifest names a layer blob it does not carry.
    let mut ar = tar::Archive::new(&buf[..]);
    let mut out = tar::Builder::new(Vec::new());
    let img = a.resolve("busybox").expect("bb");
    let layer_path = format!("blobs/sha256/{}", &img.layers[0].digest[7..]);
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").display().to_string();
        if p == layer_path {
            continue;
        }
        let mut h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("read");
        out.append_data(&mut h, &p, &data[..]).expect("append");
    }
    let broken = out.into_inner().expect("tar");
    let err = b.load(&broken[..]).expect_err("missing blob");
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(b.list().expect("list").is_empty());
}

#[test]
fn skopeo_archives_load_and_berth_archives_validate() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let a = Store::open(&t.path().join("a")).expect("open");
    let img = derived(&a, t.path());
    let archive = t.path().join("save.tar");
    a.save(
        &["derived:1"],
        std::fs::File::create(&archive).expect("create"),
    )
    .expect("save");
    // skopeo reads berth's archive as an OCI archive and as a docker archive.
    let oci_dir = t.path().join("ocidir");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("oci:{}:x", oci_dir.display())));
    let dock = t.path().join("skopeo-docker.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker-archive:{}:skopeo/made:1", dock.display())));
    let oci_tar = t.path().join("skopeo-oci.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:x", oci_dir.display()))
        .arg(format!("oci-archive:{}:skopeo/oci:2", oci_tar.display())));
    let b = Store::open(&t.path().join("b")).expect("open");
    let loaded = b
        .load(std::fs::File::open(&dock).expect("open"))
        .expect("load skopeo docker-archive");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, img.id, "same config → same image id");
    assert_eq!(b.resolve("skopeo/made:1").expect("tag").id, img.id);
    let loaded = b
        .load(std::fs::File::open(&oci_tar).expect("open"))
        .expect("load skopeo oci-archive");
    assert_eq!(loaded[0].id, img.id);
    assert_eq!(b.resolve("skopeo/oci:2").expect("tag").id, img.id);
    let m = mount_image(&b, &loaded[0], t.path(), "m");
    assert_eq!(
        std::fs::read(m.target.join("hello")).expect("hello"),
        b"from berth\n"
    );
}

#[test]
fn podman_loads_berth_archives_and_berth_loads_podman_saves() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let a = Store::open(&t.path().join("a")).expect("open");
    let img = derived(&a, t.path());
    let archive = t.path().join("save.tar");
    a.save(
        &["derived:1"],
        std::fs::File::create(&archive).expect("create"),
    )
    .expect("save");
    let p = t.path().join("podman");
    run(podman(&p).arg("load").arg("-i").arg(&archive));
    let ids = run(podman(&p)
        .arg("images")
        .arg("--no-trunc")
        .arg("--format")
        .arg("{{.ID}} {{.Repository}}:{{.Tag}}"));
    assert!(
        ids.contains(&img.id[7..]),
        "podman sees the same image id: {ids}"
    );
    assert!(ids.contains("derived:1"), "{ids}");
    for format in ["docker-archive", "oci-archive"] {
        let out = t.path().join(format!("podman-{format}.tar"));
        run(podman(&p)
            .arg("save")
            .arg("--format")
            .arg(format)
            .arg("-o")
            .arg(&out)
            .arg("docker.io/library/derived:1"));
        let b = Store::open(&t.path().join(format!("b-{format}"))).expect("open");
        let loaded = b
            .load(std::fs::File::open(&out).expect("open"))
            .expect(format);
        assert_eq!(loaded.len(), 1, "{format}");
        assert_eq!(loaded[0].id, img.id, "{format}");
        assert_eq!(
            b.resolve("derived:1").expect(format).id,
            img.id,
            "{format}: tag kept"
        );
        let m = mount_image(&b, &loaded[0], t.path(), format);
        assert_eq!(
            std::fs::read(m.target.join("hello")).expect("hello"),
            b"from berth\n"
        );
        assert!(!m.target.join("etc/group").exists());
    }
}

/// The example driver (built by `cargo test` along with the tests).
fn image_tool() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let p = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/image_tool");
    assert!(
        p.exists(),
        "{} missing: cargo test builds examples",
        p.display()
    );
    p
}

#[test]
fn kill_9_during_load_leaves_nothing_half_registered() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    // An archive big enough that unpacking takes a while: many small files.
    let src = Store::open(&t.path().join("src")).expect("open");
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..10_000 {
        let mut h = tar::Header::new_gnu();
        h.set_size(64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("d{}/f{i}", i / 1000), &[b'x'; 64][..])
            .expect("append");
    }
    let img = src
        .import(&b.into_inner().expect("tar")[..], &[], Some("many:1"))
        .expect("import");
    let archive = t.path().join("many.tar");
    src.save(
        &["many:1"],
        std::fs::File::create(&archive).expect("create"),
    )
    .expect("save");
    let root = t.path().join("victim");
    let victim = Store::open(&root).expect("open");
    let good = busybox(&victim);
    drop(victim);
    let mut child = Command::new(image_tool())
        .arg("--root")
        .arg(&root)
        .args(["load", "-i"])
        .arg(&archive)
        .spawn()
        .expect("spawn");
    // Wait until the child is unpacking (a layer dir in its scratch space), then kill -9.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut caught = false;
    while std::time::Instant::now() < deadline {
        let busy = std::fs::read_dir(root.join("tmp"))
            .expect("tmp")
            .flatten()
            .any(|e| {
                e.path().is_dir()
                    && std::fs::read_dir(e.path())
                        .map(|mut r| {
                            r.any(|x| {
                                x.is_ok_and(|x| {
                                    x.file_name().to_string_lossy().starts_with("layer")
                                })
                            })
                        })
                        .unwrap_or(false)
            });
        if busy {
            caught = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let _ = child.wait();
    assert!(caught, "the child never reached the unpack step");
    let store = Store::open(&root).expect("reopen");
    assert!(
        store.resolve("many:1").is_err(),
        "half-loaded image must not be registered"
    );
    assert_eq!(
        std::fs::read_dir(root.join("tmp")).expect("tmp").count(),
        2,
        "only this store's own scratch dir and lock"
    );
    assert_eq!(store.resolve("busybox").expect("bb").id, good.id);
    let loaded = store
        .load(std::fs::File::open(&archive).expect("open"))
        .expect("load after crash");
    assert_eq!(loaded[0].id, img.id);
    assert!(store.layer_dirs(&loaded[0]).expect("dirs")[0]
        .join("d9/f9999")
        .exists());
}
