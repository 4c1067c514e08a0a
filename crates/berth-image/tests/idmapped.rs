//! Idmapped overlay snapshots (user-namespaced containers), as root on the real
//! kernel: the shared layer dirs stay owned by host root on disk while the mounted
//! rootfs shows them owned by the mapped root, writes land in the upper dir with
//! the writer's host ids, and no idmapped mount outlives the overlay.

use berth_image::snapshot::{self, Overlay};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const HOST: u32 = 231_072;

struct Unmount<'a>(&'a Path);
impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = snapshot::unmount(self.0);
    }
}

fn mounts_under(p: &Path) -> Vec<String> {
    let p = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&p))
        .collect()
}

#[test]
fn lowers_appear_owned_by_the_mapped_root_and_stay_root_owned_on_disk() {
    assert_eq!(nix::unistd::geteuid().as_raw(), 0, "runs as root");
    let dir = tempfile::tempdir().unwrap();
    let (l1, l2) = (dir.path().join("l1"), dir.path().join("l2"));
    std::fs::create_dir_all(l1.join("etc")).unwrap();
    std::fs::create_dir_all(&l2).unwrap();
    std::fs::write(l1.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(l2.join("top"), "2").unwrap();
    std::os::unix::fs::chown(l2.join("top"), Some(1000), Some(1000)).unwrap();
    let target = dir.path().join("merged");
    std::fs::create_dir_all(&target).unwrap();
    let ov = Overlay {
        lowers: vec![l1.clone(), l2.clone()],
        upper: dir.path().join("upper"),
        work: dir.path().join("work"),
    };
    std::fs::create_dir_all(&ov.upper).unwrap();
    std::os::unix::fs::chown(&ov.upper, Some(HOST), Some(HOST)).unwrap();
    let map = format!("0 {HOST} 65536\n");
    let userns = berth_sys::user_namespace_fd(&map, &map).expect("user namespace fd");
    ov.mount_idmapped(&target, userns.as_fd())
        .expect("idmapped overlay");
    let _u = Unmount(&target);

    let md = std::fs::metadata(target.join("etc/passwd")).unwrap();
    assert_eq!(
        (md.uid(), md.gid()),
        (HOST, HOST),
        "layer file as seen in the rootfs"
    );
    let md = std::fs::metadata(target.join("top")).unwrap();
    assert_eq!(
        (md.uid(), md.gid()),
        (HOST + 1000, HOST + 1000),
        "uid 1000 maps too"
    );
    assert_eq!(std::fs::read_to_string(target.join("top")).unwrap(), "2");
    // copy-up of /etc keeps the mapped owner in the upper dir; a new file is the writer's
    std::fs::write(target.join("etc/x"), "x").unwrap();
    std::os::unix::fs::chown(target.join("etc/x"), Some(HOST), Some(HOST)).unwrap();
    let up = std::fs::metadata(ov.upper.join("etc")).unwrap();
    assert_eq!((up.uid(), up.gid()), (HOST, HOST), "copied-up dir in upper");
    assert_eq!(
        std::fs::metadata(ov.upper.join("etc/x")).unwrap().uid(),
        HOST
    );
    // the shared layers are untouched on disk
    let md = std::fs::metadata(l1.join("etc/passwd")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert_eq!(std::fs::metadata(l2.join("top")).unwrap().uid(), 1000);
    assert!(!l1.join("etc/x").exists());
    // only the overlay itself is mounted: the idmapped clones are private to it
    assert_eq!(
        mounts_under(dir.path()),
        vec![target.to_string_lossy().into_owned()]
    );
    drop(_u);
    assert!(mounts_under(dir.path()).is_empty());
    let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700));
}

#[test]
fn user_namespace_fd_rejects_a_map_the_kernel_refuses() {
    // overlapping ranges: the kernel refuses the uid_map write
    let bad = "0 100000 10\n5 200000 10\n";
    assert!(berth_sys::user_namespace_fd(bad, "0 100000 10\n").is_err());
}

/// Concurrent calls (the engine's and the store's threads may make them) each
/// finish: their helper children must not wait on one another. A child that
/// waited for EOF on its pipe held a fork-copy of the other call's write end,
/// and two calls then hung forever (seen in CI: 7 minutes, killed by hand).
#[test]
fn user_namespace_fd_from_many_threads_at_once() {
    let (tx, rx) = std::sync::mpsc::channel();
    let threads = 8;
    for t in 0..threads {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for i in 0..25u32 {
                let map = format!("0 {} 1000\n", HOST + (t * 25 + i) * 1000);
                berth_sys::user_namespace_fd(&map, &map).expect("user namespace fd");
            }
            let _ = tx.send(t);
        });
    }
    for _ in 0..threads {
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("every thread's user namespaces within a minute (no deadlock)");
    }
}

/// Host fact the snapshot relies on for its fast path (Linux >= 6.13): overlayfs
/// takes a detached idmapped mount as a `lowerdir+` fd, so nothing is attached.
#[test]
fn overlay_takes_detached_idmapped_layers_by_fd() {
    let dir = tempfile::tempdir().unwrap();
    let map = format!("0 {HOST} 65536\n");
    let userns = berth_sys::user_namespace_fd(&map, &map).unwrap();
    let mnt = berth_sys::open_tree_clone(dir.path(), false).unwrap();
    berth_sys::mount_setattr_idmap(mnt.as_fd(), userns.as_fd()).unwrap();
    let fs = berth_sys::fsopen("overlay").unwrap();
    berth_sys::fsconfig_set_fd(fs.as_fd(), "lowerdir+", mnt.as_fd())
        .expect("lowerdir+ by fd (kernel >= 6.13)");
}
