//! User-namespaced containers through `berth run` (issue 4), as root on the real
//! kernel: `--userns=auto` and `--uidmap/--gidmap` give the container a remapped
//! range; root inside is an unprivileged uid on the host; the image's files
//! (owned by host root on disk) are the container root's through idmapped
//! layers, its writes land in the upper dir with its host ids, named volumes and
//! /etc files are its own, parallel containers get disjoint ranges, and `rm`
//! leaves no mount behind. Bad maps are refused before anything exists.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use common::*;

/// (container id, host id, size) of the first line of a uid_map text.
fn first_map(text: &str) -> (u32, u32, u32) {
    let v: Vec<u32> = text
        .split_whitespace()
        .take(3)
        .map(|n| n.parse().unwrap_or_else(|_| panic!("bad uid_map {text:?}")))
        .collect();
    (v[0], v[1], v[2])
}

/// `HostConfig.IDMappings.UidMap` → ["0:100000:65536", ...].
fn inspect_maps(name: &str, which: &str) -> Vec<(u32, u32, u32)> {
    let json = ok(&[
        "inspect",
        "-f",
        &format!("{{{{json .HostConfig.IDMappings.{which}}}}}"),
        name,
    ]);
    let v: Vec<String> = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    v.iter()
        .map(|m| {
            let p: Vec<u32> = m.split(':').map(|n| n.parse().unwrap()).collect();
            (p[0], p[1], p[2])
        })
        .collect()
}

fn host_status(pid: &str, field: &str) -> Vec<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

fn container_dir(name: &str) -> PathBuf {
    env().root.join("containers").join(inspect(name, ".Id"))
}

/// `berth run -d --name <name> <flags> busybox sleep 1000`.
fn run_detached(name: &Name, flags: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name.as_str()];
    args.extend_from_slice(flags);
    args.extend(["busybox", "sleep", "1000"]);
    ok(&args);
}

fn exec(name: &Name, script: &str) -> String {
    ok(&["exec", name.as_str(), "sh", "-c", script])
}

#[test]
fn auto_root_is_an_unprivileged_host_uid() {
    let c = Name::new("uns-auto");
    run_detached(&c, &["--userns=auto"]);
    assert_eq!(inspect(c.as_str(), ".HostConfig.UsernsMode"), "auto");
    let uids = inspect_maps(c.as_str(), "UidMap");
    let gids = inspect_maps(c.as_str(), "GidMap");
    assert_eq!(uids.len(), 1, "{uids:?}");
    let (cid, host, size) = uids[0];
    assert_eq!((cid, size), (0, 65536));
    assert!(
        host >= 100_000,
        "auto picked host ids below the pool: {host}"
    );
    assert_eq!(gids[0].0, 0);

    // inside: root, with the recorded range
    let inside = exec(
        &c,
        "cat /proc/self/uid_map; echo; cat /proc/self/gid_map; echo; id -u; id -g",
    );
    let lines: Vec<&str> = inside.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(first_map(lines[0]), uids[0], "uid_map inside: {inside}");
    assert_eq!(first_map(lines[1]), gids[0], "gid_map inside: {inside}");
    assert_eq!(&lines[2..], ["0", "0"], "{inside}");

    // outside: the container's processes are the unprivileged host ids
    let pid = inspect(c.as_str(), ".State.Pid");
    assert_eq!(host_status(&pid, "Uid"), vec![host; 4]);
    assert_eq!(host_status(&pid, "Gid"), vec![gids[0].1; 4]);
    // an exec'd process too: every process in its pid namespace is the mapped uid
    exec(&c, "sleep 30 >/dev/null 2>&1 &");
    for p in pids_in_container(&pid) {
        assert_eq!(host_status(&p, "Uid")[0], host, "pid {p} in the container");
    }
}

/// Host pids sharing the container init's pid namespace.
fn pids_in_container(init: &str) -> Vec<String> {
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        if std::fs::read_link(e.path().join("ns/pid")).ok().as_ref() == Some(&ns) {
            out.push(name);
        }
    }
    assert!(out.len() >= 2, "init and the exec'd sleep: {out:?}");
    out
}

#[test]
fn the_container_owns_its_rootfs_and_the_image_stays_root_owned() {
    let c = Name::new("uns-rootfs");
    run_detached(&c, &["--userns=auto"]);
    let host = inspect_maps(c.as_str(), "UidMap")[0].1;
    let out = exec(
        &c,
        "touch /etc/x && echo touched; echo data > /newfile && echo wrote; \
         stat -c '%u:%g' /bin/busybox /etc /; head -c 4 /bin/busybox >/dev/null && echo read-image; \
         echo '10.9.8.7 extra' >> /etc/hosts && echo hosts-ok; mkdir -p /var/x && chown 1000:1000 /var/x && echo chowned",
    );
    for want in ["touched", "wrote", "read-image", "hosts-ok", "chowned"] {
        assert!(out.contains(want), "{want} missing: {out}");
    }
    // image files appear as the container's root, not as nobody (65534)
    assert_eq!(out.lines().filter(|l| *l == "0:0").count(), 3, "{out}");

    let dir = container_dir(c.as_str());
    let upper = dir.join("upper");
    for (p, uid) in [
        (upper.join("etc/x"), host),
        (upper.join("newfile"), host),
        (upper.join("etc"), host),
        (upper.join("var/x"), host + 1000),
    ] {
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(md.uid(), uid, "{} owner on the host", p.display());
    }
    assert_eq!(
        std::fs::metadata(&upper).unwrap().uid(),
        host,
        "the upper dir itself"
    );
    // /etc/hosts is the container's (written above)
    let hosts = dir.join("etc/hosts");
    assert_eq!(std::fs::metadata(&hosts).unwrap().uid(), host);
    assert!(std::fs::read_to_string(&hosts)
        .unwrap()
        .contains("10.9.8.7 extra"));
    // the shared image layers are untouched: still host root's on disk, no /etc/x
    let image_etc = image_file_owners("etc");
    assert!(image_etc.iter().all(|(uid, _)| *uid == 0), "{image_etc:?}");
    assert!(!image_file_exists("etc/x"));
}

/// (uid, gid) of `rel` in every unpacked layer of the test root that has it.
fn image_file_owners(rel: &str) -> Vec<(u32, u32)> {
    layer_dirs()
        .into_iter()
        .filter_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
        .map(|m| (m.uid(), m.gid()))
        .collect()
}

fn image_file_exists(rel: &str) -> bool {
    layer_dirs().into_iter().any(|l| l.join(rel).exists())
}

/// Every unpacked layer dir under the test's image store (whatever its layout:
/// a directory holding `bin`, `etc`).
fn layer_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![env().root.join("image")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        if d.join("bin").is_dir() && d.join("etc").is_dir() {
            out.push(d);
            continue;
        }
        if stack.len() > 10_000 {
            break;
        }
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no unpacked layer found under {}",
        env().root.join("image").display()
    );
    out
}

#[test]
fn a_named_volume_is_writable_by_the_mapped_root() {
    let c = Name::new("uns-vol");
    let vol = unique("unsvol");
    let _v = VolumeGuard(vol.clone());
    run_detached(&c, &["--userns=auto", "-v", &format!("{vol}:/data")]);
    let host = inspect_maps(c.as_str(), "UidMap")[0].1;
    let out = exec(
        &c,
        "echo hi > /data/f && echo wrote; mkdir /data/d && echo mkdir; stat -c '%u' /data",
    );
    assert!(out.contains("wrote") && out.contains("mkdir"), "{out}");
    let mp = volume_mountpoint(&vol);
    assert_eq!(
        std::fs::metadata(&mp).unwrap().uid(),
        host,
        "volume dir on the host"
    );
    assert_eq!(std::fs::metadata(mp.join("f")).unwrap().uid(), host);
    assert_eq!(std::fs::read_to_string(mp.join("f")).unwrap(), "hi\n");
}

fn volume_mountpoint(name: &str) -> PathBuf {
    let json = ok(&["volume", "inspect", name]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    PathBuf::from(
        v[0]["Mountpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("no Mountpoint: {json}")),
    )
}

struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = berth(&["volume", "rm", "-f", &self.0]);
    }
}

#[test]
fn parallel_containers_get_disjoint_ranges() {
    let names: Vec<Name> = (0..4).map(|_| Name::new("uns-par")).collect();
    std::thread::scope(|s| {
        for n in &names {
            s.spawn(move || {
                ok(&[
                    "create",
                    "--name",
                    n.as_str(),
                    "--userns=auto:size=70000",
                    "busybox",
                    "true",
                ]);
            });
        }
    });
    let mut ranges: Vec<(u32, u32)> = names
        .iter()
        .map(|n| {
            let m = inspect_maps(n.as_str(), "UidMap");
            assert_eq!(m[0].2, 70000, "auto:size=N");
            (m[0].1, m[0].2)
        })
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(
            u64::from(w[0].0) + u64::from(w[0].1) <= u64::from(w[1].0),
            "overlapping ranges: {ranges:?}"
        );
    }
    // and every other auto container of this engine is disjoint from them too
    let all: BTreeSet<(u32, u32)> = ranges.iter().copied().collect();
    assert_eq!(all.len(), 4);
}

#[test]
fn explicit_uidmap_and_gidmap() {
    let c = Name::new("uns-map");
    run_detached(
        &c,
        &[
            "--uidmap",
            "0:400000:1000",
            "--uidmap",
            "1000:500000:1",
            "--gidmap",
            "0:600000:2000",
        ],
    );
    assert_eq!(inspect(c.as_str(), ".HostConfig.UsernsMode"), "private");
    let out = exec(&c, "cat /proc/self/uid_map; cat /proc/self/gid_map");
    let maps: Vec<(u32, u32, u32)> = out.lines().map(first_map).collect();
    assert_eq!(
        maps,
        vec![(0, 400000, 1000), (1000, 500000, 1), (0, 600000, 2000)],
        "{out}"
    );
    let pid = inspect(c.as_str(), ".State.Pid");
    assert_eq!(host_status(&pid, "Uid")[0], 400000);
    assert_eq!(host_status(&pid, "Gid")[0], 600000);
    assert_eq!(ok(&["exec", "-u", "1000", c.as_str(), "id", "-u"]), "1000");
}

#[test]
fn a_restart_keeps_the_range_and_the_files() {
    let c = Name::new("uns-restart");
    run_detached(&c, &["--userns=auto"]);
    let before = inspect_maps(c.as_str(), "UidMap");
    exec(&c, "echo kept > /root-file");
    ok(&["stop", "-t", "0", c.as_str()]);
    ok(&["start", c.as_str()]);
    assert_eq!(inspect_maps(c.as_str(), "UidMap"), before);
    let out = exec(
        &c,
        "cat /root-file; echo again >> /root-file && echo appended",
    );
    assert!(out.contains("kept") && out.contains("appended"), "{out}");
}

#[test]
fn rm_leaves_no_mount_behind() {
    let c = Name::new("uns-rm");
    run_detached(&c, &["--userns=auto", "-v", "/anon"]);
    let id = inspect(c.as_str(), ".Id");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rootfs: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(&id) && l.contains(" - overlay "))
        .collect();
    assert_eq!(
        rootfs.len(),
        1,
        "only the overlay rootfs is mounted on the host: {rootfs:#?}"
    );
    assert!(
        !rootfs[0].contains("idmapped"),
        "the idmapped layers are private to the overlay"
    );
    assert!(
        !mountinfo
            .lines()
            .any(|l| l.contains("idmapped") && l.contains(&*env().root.to_string_lossy())),
        "an idmapped layer is attached on the host"
    );
    ok(&["rm", "-f", "-v", c.as_str()]);
    assert!(
        container_mounts(&id).is_empty(),
        "{:?}",
        container_mounts(&id)
    );
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = after
        .lines()
        .filter(|l| {
            l.contains(&id)
                || (l.contains("idmapped") && l.contains(&*env().root.to_string_lossy()))
        })
        .collect();
    assert!(left.is_empty(), "mounts left after rm: {left:#?}");
    assert!(!env().root.join("containers").join(&id).exists());
}

/// Bad input: refused with one clear line naming the flag, exit 125, and no
/// container is created.
#[test]
fn bad_maps_are_refused_and_nothing_is_created() {
    for (flags, needle) in [
        (
            vec!["--uidmap", "0:100000:65536", "--uidmap", "1000:300000:10"],
            "invalid --uidmap: 0:100000:65536 overlaps 1000:300000:10 (container ids)",
        ),
        (
            vec!["--uidmap", "0:100000:10", "--uidmap", "10:100005:10"],
            "(host ids)",
        ),
        (
            vec![
                "--uidmap", "0:1:1", "--gidmap", "0:100:10", "--gidmap", "5:200:1",
            ],
            "invalid --gidmap",
        ),
        (
            vec!["--uidmap", "0:100000"],
            "invalid --uidmap \"0:100000\"",
        ),
        (
            vec!["--userns", "bogus"],
            "invalid --userns value \"bogus\"",
        ),
        (
            vec!["--userns", "auto", "--uidmap", "0:1:1"],
            "conflicting options",
        ),
        (vec!["--userns", "auto", "--privileged"], "--privileged"),
    ] {
        let name = Name::new("uns-bad");
        let mut args = vec!["run", "--name", name.as_str()];
        args.extend(flags.iter().copied());
        args.extend(["busybox", "true"]);
        let o = berth(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{flags:?}: {err}");
        assert!(err.contains(needle), "{flags:?}: {err:?} lacks {needle:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{flags:?}: {err}");
        let i = berth(&["inspect", name.as_str()]);
        assert!(!i.status.success(), "{flags:?}: a container was created");
    }
}

#[test]
fn host_is_the_default_and_shows_in_inspect() {
    let c = Name::new("uns-host");
    run_detached(&c, &[]);
    assert_eq!(inspect(c.as_str(), ".HostConfig.UsernsMode"), "");
    let pid = inspect(c.as_str(), ".State.Pid");
    assert_eq!(host_status(&pid, "Uid")[0], 0);
    let inside = exec(&c, "cat /proc/self/uid_map");
    assert_eq!(first_map(&inside), (0, 0, u32::MAX));
}
