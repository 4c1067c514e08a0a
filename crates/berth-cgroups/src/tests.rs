//! Unit tests against a fake cgroupfs in a temp dir (no root needed).
//!
//! A fake hierarchy is a temp dir with one directory per mount and a mountinfo text
//! pointing at them. After `create()`, each test writes the files the kernel would
//! have made in the new directory ([`seed_v1`], [`seed_v2`]), calls the API, and reads
//! back what was written. Regular files keep only the last write, so ordering is
//! checked on the plan ([`Manager::plan`]) instead.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::detect::Layout;
use crate::devices::DeviceProgram;
use crate::{CgroupError, CgroupPaths, Hierarchy, Manager, Stats};

const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
];

struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    hier: Hierarchy,
}

fn fake(v1: &[&str], unified: Option<&str>, own_memory: &str) -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    let mut mi = String::new();
    let mut pc = String::new();
    for (i, c) in v1.iter().enumerate() {
        let dir = root.join(c);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.procs"), "1\n").unwrap();
        if *c == "cpuset" {
            fs::write(dir.join("cpuset.cpus"), "0-3\n").unwrap();
            fs::write(dir.join("cpuset.mems"), "0\n").unwrap();
        }
        mi += &format!(
            "{} 1 0:{} / {} rw - cgroup cgroup rw,{c}\n",
            30 + i,
            30 + i,
            dir.display()
        );
        let own = if *c == "memory" { own_memory } else { "/" };
        pc += &format!("{}:{c}:{own}\n", i + 1);
    }
    if let Some(ctrls) = unified {
        let dir = root.join("unified");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.controllers"), format!("{ctrls}\n")).unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        fs::write(dir.join("cgroup.procs"), "1\n").unwrap();
        mi += &format!("99 1 0:99 / {} rw - cgroup2 cgroup2 rw\n", dir.display());
        pc += "0::/\n";
    }
    let hier = Hierarchy::from_mountinfo(&mi, &pc).unwrap();
    Fake {
        _tmp: tmp,
        root,
        hier,
    }
}

fn seed(dir: &Path, files: &[(&str, &str)]) {
    for (f, v) in files {
        fs::write(dir.join(f), v).unwrap();
    }
}

const UNLIMITED: &str = "9223372036854771712\n";

/// The files a v1 kernel creates in a new cgroup (a representative subset).
fn seed_v1(m: &Manager) {
    let p = m.paths();
    let d = |c: &str| p.v1_dir(c).unwrap().to_owned();
    seed(
        &d("memory"),
        &[
            ("cgroup.procs", ""),
            ("memory.limit_in_bytes", UNLIMITED),
            ("memory.memsw.limit_in_bytes", UNLIMITED),
            ("memory.soft_limit_in_bytes", UNLIMITED),
            ("memory.kmem.limit_in_bytes", UNLIMITED),
            ("memory.kmem.tcp.limit_in_bytes", UNLIMITED),
            ("memory.swappiness", "60\n"),
            ("memory.use_hierarchy", "1\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
            ("memory.usage_in_bytes", "1048576\n"),
        ],
    );
    seed(
        &d("cpu"),
        &[
            ("cgroup.procs", ""),
            ("cpu.shares", "1024\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_burst_us", "0\n"),
            ("cpu.rt_period_us", "1000000\n"),
            ("cpu.rt_runtime_us", "0\n"),
            ("cpu.idle", "0\n"),
        ],
    );
    seed(
        &d("cpuset"),
        &[
            ("cgroup.procs", ""),
            ("cpuset.cpus", "0-3\n"),
            ("cpuset.mems", "0\n"),
        ],
    );
    seed(
        &d("pids"),
        &[
            ("cgroup.procs", ""),
            ("pids.max", "max\n"),
            ("pids.current", "0\n"),
        ],
    );
    seed(
        &d("blkio"),
        &[
            ("cgroup.procs", ""),
            ("blkio.bfq.weight", "100\n"),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ],
    );
    seed(
        &d("devices"),
        &[
            ("cgroup.procs", ""),
            ("devices.allow", ""),
            ("devices.deny", ""),
        ],
    );
    seed(
        &d("freezer"),
        &[("cgroup.procs", ""), ("freezer.state", "THAWED\n")],
    );
    seed(&d("cpuacct"), &[("cgroup.procs", "")]);
    if let Some(h) = p.v1_dir("hugetlb") {
        seed(
            h,
            &[
                ("cgroup.procs", ""),
                ("hugetlb.2MB.limit_in_bytes", UNLIMITED),
                ("hugetlb.1GB.limit_in_bytes", UNLIMITED),
            ],
        );
    }
}

/// The files a v2 kernel shows in a new cgroup with these controllers enabled.
fn seed_v2(dir: &Path) {
    seed(
        dir,
        &[
            (
                "cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma\n",
            ),
            ("cgroup.procs", ""),
            ("cgroup.freeze", "0\n"),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("cgroup.kill", ""),
            ("cpu.weight", "100\n"),
            ("cpu.max", "max 100000\n"),
            ("cpu.max.burst", "0\n"),
            ("cpu.idle", "0\n"),
            ("cpuset.cpus", "\n"),
            ("cpuset.mems", "\n"),
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.low", "0\n"),
            ("memory.high", "max\n"),
            ("memory.current", "1048576\n"),
            ("pids.max", "max\n"),
            ("io.weight", "default 100\n"),
            ("io.max", ""),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.rsvd.max", "max\n"),
        ],
    );
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(dir: &Path, f: &str) -> String {
    fs::read_to_string(dir.join(f)).unwrap().trim().to_owned()
}

const FULL_SPEC: &str = r#"{
    "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10,
               "disableOOMKiller": true, "kernelTCP": 16777216},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0", "idle": 0},
    "pids": {"limit": 10},
    "blockIO": {"weight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
}"#;

#[test]
fn v1_full_spec_is_written() {
    let f = fake(V1_CONTROLLERS, None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    assert_eq!(m.layout(), Layout::V1);
    m.create().unwrap();
    let mem = f.root.join("memory/berth/c1");
    assert!(mem.is_dir());
    seed_v1(&m);
    m.set(&res(FULL_SPEC)).unwrap();
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(read(&mem, "memory.swappiness"), "10");
    assert_eq!(read(&mem, "memory.oom_control"), "1");
    assert_eq!(read(&mem, "memory.kmem.tcp.limit_in_bytes"), "16777216");
    let cpu = f.root.join("cpu/berth/c1");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&cpu, "cpu.idle"), "0");
    let cpuset = f.root.join("cpuset/berth/c1");
    assert_eq!(read(&cpuset, "cpuset.cpus"), "0-1");
    assert_eq!(read(&cpuset, "cpuset.mems"), "0");
    assert_eq!(read(&f.root.join("pids/berth/c1"), "pids.max"), "10");
    let blk = f.root.join("blkio/berth/c1");
    assert_eq!(read(&blk, "blkio.bfq.weight"), "300");
    assert_eq!(read(&blk, "blkio.bfq.weight_device"), "8:0 200");
    assert_eq!(read(&blk, "blkio.throttle.read_bps_device"), "8:0 1048576");
    assert_eq!(read(&blk, "blkio.throttle.write_iops_device"), "8:0 100");
    assert_eq!(
        read(
            &f.root.join("hugetlb/berth/c1"),
            "hugetlb.2MB.limit_in_bytes"
        ),
        "4194304"
    );
}

#[test]
fn v1_memory_and_swap_order_follows_the_current_limit() {
    let f = fake(&["memory"], None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    seed_v1_memory_only(&m, "67108864\n");
    // Raising: the new memsw (256M) is above the current limit (64M): memsw first.
    let plan = m
        .plan(&res(
            r#"{"memory": {"limit": 134217728, "swap": 268435456}}"#,
        ))
        .unwrap();
    assert_eq!(
        plan.writes(),
        [
            ("memory.memsw.limit_in_bytes".into(), "268435456".into()),
            ("memory.limit_in_bytes".into(), "134217728".into())
        ]
    );
    // Lowering below the current limit: the limit first.
    let plan = m
        .plan(&res(r#"{"memory": {"limit": 16777216, "swap": 33554432}}"#))
        .unwrap();
    assert_eq!(plan.writes()[0].0, "memory.limit_in_bytes");
    assert_eq!(plan.writes()[1].0, "memory.memsw.limit_in_bytes");
    // Unlimited memory without a swap value: swap unlimited too (runc), memsw first.
    let plan = m.plan(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(
        plan.writes(),
        [
            ("memory.memsw.limit_in_bytes".into(), "-1".into()),
            ("memory.limit_in_bytes".into(), "-1".into())
        ]
    );
    // memory+swap below memory is refused before anything is written.
    let err = m
        .plan(&res(r#"{"memory": {"limit": 67108864, "swap": 1048576}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("memory.swap"), "{err}");
}

fn seed_v1_memory_only(m: &Manager, limit: &str) {
    let p = m.paths();
    let d = p.v1_dir("memory").unwrap();
    seed(
        d,
        &[
            ("memory.limit_in_bytes", limit),
            ("memory.memsw.limit_in_bytes", limit),
            ("cgroup.procs", ""),
        ],
    );
}

#[test]
fn v1_without_swap_accounting() {
    let f = fake(&["memory"], None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    let d = m.paths().v1_dir("memory").unwrap().to_owned();
    seed(&d, &[("memory.limit_in_bytes", UNLIMITED)]);
    // Equal to the limit, or -1: fine, only the limit is written.
    for swap in ["67108864", "-1"] {
        let plan = m
            .plan(&res(&format!(
                r#"{{"memory": {{"limit": 67108864, "swap": {swap}}}}}"#
            )))
            .unwrap();
        assert_eq!(
            plan.writes(),
            [("memory.limit_in_bytes".into(), "67108864".into())]
        );
    }
    let err = m
        .plan(&res(
            r#"{"memory": {"limit": 67108864, "swap": 134217728}}"#,
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::Unsupported {
                field: "memory.swap",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("swap accounting"), "{err}");
}

#[test]
fn v1_devices_deny_all_first_then_spec_order() {
    let f = fake(&["devices"], None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    let plan = m
        .plan(&res(&format!(
            r#"{{"devices": {}}}"#,
            crate::devices::tests::DEFAULT_RULES
        )))
        .unwrap();
    let w = plan.writes();
    assert_eq!(w[0], ("devices.deny".into(), "a".into()));
    assert_eq!(w[1], ("devices.deny".into(), "a *:* rwm".into()));
    assert_eq!(w[2], ("devices.allow".into(), "c 1:3 rwm".into()));
    assert_eq!(
        w.last().unwrap(),
        &("devices.allow".into(), "b *:* m".into())
    );
}

#[test]
fn bad_values_are_refused_before_any_write() {
    let f = fake(V1_CONTROLLERS, None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    seed_v1(&m);
    for (spec, field) in [
        (r#"{"cpu": {"shares": 1}}"#, "cpu.shares"),
        (r#"{"cpu": {"shares": 300000}}"#, "cpu.shares"),
        (r#"{"cpu": {"quota": 500}}"#, "cpu.quota"),
        (r#"{"cpu": {"period": 100}}"#, "cpu.period"),
        (r#"{"cpu": {"cpus": "0-x"}}"#, "cpu.cpus"),
        (r#"{"memory": {"limit": -5}}"#, "memory.limit"),
        (r#"{"memory": {"swappiness": 101}}"#, "memory.swappiness"),
        (r#"{"blockIO": {"weight": 5}}"#, "blockIO.weight"),
        (
            r#"{"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}"#,
            "blockIO.throttleReadBpsDevice",
        ),
        (
            r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#,
            "hugepageLimits",
        ),
        (
            r#"{"hugepageLimits": [{"pageSize": "../x", "limit": 1}]}"#,
            "hugepageLimits",
        ),
        (r#"{"unified": {"memory.high": "1"}}"#, "unified"),
        (
            r#"{"devices": [{"allow": true, "type": "c", "access": "rwx"}]}"#,
            "devices",
        ),
    ] {
        let before = read(&f.root.join("memory/berth/c1"), "memory.limit_in_bytes");
        let err = m.set(&res(spec)).unwrap_err();
        assert!(err.to_string().starts_with(field), "{spec}: {err}");
        assert_eq!(
            read(&f.root.join("memory/berth/c1"), "memory.limit_in_bytes"),
            before
        );
    }
    let err = m
        .set(&res(
            r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("available: 1GB, 2MB"), "{err}");
}

#[test]
fn failed_set_rolls_back_what_was_written() {
    let f = fake(V1_CONTROLLERS, None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    seed_v1(&m);
    // The kernel would refuse a write: simulate with a missing file late in the plan.
    let blk = f.root.join("blkio/berth/c1");
    fs::remove_file(blk.join("blkio.throttle.read_bps_device")).unwrap();
    let err = m
        .set(&res(
            r#"{"memory": {"limit": 67108864}, "cpu": {"shares": 512, "quota": 20000},
                "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}}"#,
        ))
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "blockIO.throttleReadBpsDevice: set blkio.throttle.read_bps_device to 8:0 1"
        ),
        "{err}"
    );
    assert_eq!(
        read(&f.root.join("memory/berth/c1"), "memory.limit_in_bytes"),
        UNLIMITED.trim()
    );
    assert_eq!(read(&f.root.join("cpu/berth/c1"), "cpu.shares"), "1024");
    assert_eq!(read(&f.root.join("cpu/berth/c1"), "cpu.cfs_quota_us"), "-1");
}

#[test]
fn v1_unified_and_missing_controllers_are_errors() {
    let f = fake(&["memory", "cpu"], None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    let err = m
        .set(&res(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::Unsupported {
                field: "unified",
                ..
            }
        ),
        "{err}"
    );
    let err = m.set(&res(r#"{"pids": {"limit": 10}}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pids.limit: the pids controller is not available"
    );
    // An empty unified map and pids limit 0 (unset) are fine.
    m.set(&res(r#"{"unified": {}, "pids": {"limit": 0}}"#))
        .unwrap();
}

#[test]
fn relative_paths_follow_the_callers_cgroup_per_controller() {
    let f = fake(&["memory", "cpu"], None, "/process_api/abc");
    let m = Manager::new(&f.hier, Some("sub/c1"), "c1").unwrap();
    let p = m.paths();
    assert_eq!(
        p.v1_dir("memory").unwrap(),
        f.root.join("memory/process_api/abc/sub/c1")
    );
    assert_eq!(p.v1_dir("cpu").unwrap(), f.root.join("cpu/sub/c1"));
    let m = Manager::new(&f.hier, Some("/abs/c1"), "c1").unwrap();
    assert_eq!(
        m.paths().v1_dir("memory").unwrap(),
        f.root.join("memory/abs/c1")
    );
    assert!(Manager::new(&f.hier, Some("/"), "c1").is_err());
    assert!(Manager::new(&f.hier, Some("../x"), "c1").is_err());
    assert!(Manager::new(&f.hier, None, "a/b").is_err());
}

#[test]
fn create_refuses_a_busy_cgroup_and_cleans_up() {
    let f = fake(&["memory", "pids"], None, "/");
    // A foreign process already lives in the pids cgroup (listed second, so the memory
    // directory was created first and must be removed again).
    let busy = f.root.join("pids/shared");
    fs::create_dir_all(&busy).unwrap();
    fs::write(busy.join("cgroup.procs"), "4242\n").unwrap();
    let m = Manager::new(&f.hier, Some("/shared"), "c1").unwrap();
    let err = m.create().unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::InUse {
                count: 1,
                first: 4242,
                ..
            }
        ),
        "{err}"
    );
    assert!(!f.root.join("memory/shared").exists());
    assert!(busy.exists(), "a cgroup we did not create is left alone");
}

#[test]
fn v1_cpusets_are_filled_from_the_parent() {
    let f = fake(&["cpuset"], None, "/");
    let a = f.root.join("cpuset/berth");
    let b = a.join("c1");
    fs::create_dir_all(&b).unwrap();
    for d in [&a, &b] {
        seed(d, &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")]);
    }
    crate::v1::fill_cpusets(&f.root.join("cpuset"), &b).unwrap();
    assert_eq!(read(&b, "cpuset.cpus"), "0-3");
    assert_eq!(read(&a, "cpuset.mems"), "0");
}

#[test]
fn v1_freeze_thaw_pids_stats_destroy() {
    let f = fake(V1_CONTROLLERS, None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    seed_v1(&m);
    m.freeze().unwrap();
    assert!(m.is_frozen());
    m.thaw().unwrap();
    assert!(!m.is_frozen());

    let pids = f.root.join("pids/berth/c1");
    fs::create_dir(pids.join("child")).unwrap();
    fs::write(pids.join("child/cgroup.procs"), "30\n").unwrap();
    fs::write(pids.join("cgroup.procs"), "20\n10\n").unwrap();
    assert_eq!(m.pids().unwrap(), [10, 20, 30]);
    fs::remove_dir_all(pids.join("child")).unwrap();
    fs::write(pids.join("cgroup.procs"), "").unwrap();

    let mem = f.root.join("memory/berth/c1");
    seed(
        &mem,
        &[
            ("memory.usage_in_bytes", "100000000\n"),
            ("memory.max_usage_in_bytes", "120000000\n"),
            ("memory.limit_in_bytes", "134217728\n"),
            ("memory.memsw.usage_in_bytes", "100004096\n"),
            ("memory.failcnt", "7\n"),
            ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            (
                "memory.stat",
                "cache 5\nrss 6\ntotal_cache 60000000\ntotal_rss 30000000\ntotal_active_file 20000000\ntotal_inactive_file 40000000\n",
            ),
        ],
    );
    let cpu = f.root.join("cpu/berth/c1");
    seed(
        &cpu,
        &[
            (
                "cpu.stat",
                "nr_periods 10\nnr_throttled 4\nthrottled_time 123456\n",
            ),
            ("cpu.cfs_quota_us", "50000\n"),
        ],
    );
    let acct = f.root.join("cpuacct/berth/c1");
    seed(
        &acct,
        &[
            ("cpuacct.usage", "3000\n"),
            ("cpuacct.stat", "user 1\nsystem 2\n"),
        ],
    );
    seed(&pids, &[("pids.current", "3\n"), ("pids.max", "10\n")]);
    let blk = f.root.join("blkio/berth/c1");
    seed(
        &blk,
        &[
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
            ),
        ],
    );
    let s = m.stats().unwrap();
    let mem = s.memory.unwrap();
    assert_eq!(mem.usage, 100_000_000);
    assert_eq!(mem.limit, Some(134_217_728));
    assert_eq!(mem.file, 60_000_000);
    assert_eq!(mem.anon, 30_000_000);
    assert_eq!(mem.working_set, 60_000_000);
    assert_eq!(mem.oom_kill, 2);
    assert_eq!(mem.under_oom, Some(false));
    assert_eq!(mem.limit_hits, 7);
    assert_eq!(mem.swap_usage, Some(4096));
    let cpu = s.cpu.unwrap();
    assert_eq!(
        (cpu.usage_total_ns, cpu.usage_user_ns, cpu.usage_system_ns),
        (3000, 10_000_000, 20_000_000)
    );
    assert_eq!(
        (
            cpu.nr_periods,
            cpu.nr_throttled,
            cpu.throttled_time_ns,
            cpu.quota_us
        ),
        (10, 4, 123_456, Some(50_000))
    );
    assert_eq!(s.pids.unwrap().limit, Some(10));
    assert_eq!(s.blkio.unwrap()[0].write_ops, 2);

    // Fake directories hold regular files, which a real cgroupfs rmdir ignores: drop them.
    for d in m.paths().v1 {
        for e in fs::read_dir(&d.path).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
    m.destroy().unwrap();
    assert!(!f.root.join("memory/berth/c1").exists());
    assert!(
        f.root.join("memory/berth").exists(),
        "the shared parent stays"
    );
    m.destroy().unwrap();
    assert!(matches!(m.stats(), Err(CgroupError::Read { .. })));
    assert_eq!(m.pids().unwrap(), Vec::<i32>::new());
}

#[test]
fn destroy_refuses_paths_outside_their_mount() {
    let f = fake(&["memory"], None, "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    let mut p = m.paths();
    p.v1[0].path = p.v1[0].mountpoint.clone();
    let err = Manager::from_paths(&p).destroy().unwrap_err();
    assert!(
        matches!(err, CgroupError::InvalidCgroupsPath { .. }),
        "{err}"
    );
}

#[test]
fn paths_round_trip_through_json() {
    let f = fake(V1_CONTROLLERS, Some("hugetlb"), "/x");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    let j = serde_json::to_string(&m.paths()).unwrap();
    let back: CgroupPaths = serde_json::from_str(&j).unwrap();
    assert_eq!(back, m.paths());
    assert_eq!(Manager::from_paths(&back).paths().layout, Layout::Hybrid);
    // An empty/old state file still parses.
    let empty: CgroupPaths = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, CgroupPaths::default());
    assert!(!Manager::from_paths(&empty).is_frozen());
}

// ---- v2 ----

fn v2_manager(f: &Fake) -> (Manager, PathBuf) {
    let m = Manager::new(&f.hier, None, "c1")
        .unwrap()
        .with_device_program_loader(test_loader);
    m.create().unwrap();
    let dir = f.root.join("unified/berth/c1");
    seed_v2(&dir);
    (m, dir)
}

/// Stands in for berth-sys: records the program next to the cgroup.
fn test_loader(dir: &Path, program: &DeviceProgram) -> std::io::Result<()> {
    fs::write(dir.join("test.device_program"), program.to_bytes())
}

const V2_CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma misc";

#[test]
fn v2_create_enables_controllers_down_the_path() {
    let f = fake(&[], Some(V2_CONTROLLERS), "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    assert_eq!(m.layout(), Layout::V2);
    // The kernel makes cgroup.subtree_control on mkdir; the fake parent gets it up front.
    fs::create_dir(f.root.join("unified/berth")).unwrap();
    fs::write(f.root.join("unified/berth/cgroup.subtree_control"), "").unwrap();
    m.create().unwrap();
    let want = "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc";
    assert_eq!(
        read(&f.root.join("unified"), "cgroup.subtree_control"),
        want
    );
    assert_eq!(
        read(&f.root.join("unified/berth"), "cgroup.subtree_control"),
        want
    );
    assert!(
        !f.root
            .join("unified/berth/c1/cgroup.subtree_control")
            .exists(),
        "the leaf keeps its processes"
    );
    assert_eq!(
        m.clone_target(),
        Some(f.root.join("unified/berth/c1").as_path())
    );
    seed(&f.root.join("unified/berth/c1"), &[("cgroup.procs", "")]);
    m.apply(4321).unwrap();
    assert_eq!(
        read(&f.root.join("unified/berth/c1"), "cgroup.procs"),
        "4321"
    );
}

#[test]
fn v2_full_spec_is_converted() {
    let f = fake(&[], Some(V2_CONTROLLERS), "/");
    let (m, d) = v2_manager(&f);
    let spec = FULL_SPEC.replacen(
        "\"pids\"",
        r#""devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
           "unified": {"memory.high": "50331648"}, "pids""#,
        1,
    );
    m.set(&res(&spec)).unwrap();
    assert_eq!(read(&d, "memory.max"), "67108864");
    // OCI swap is memory+swap: v2 swap.max = 128M - 64M.
    assert_eq!(read(&d, "memory.swap.max"), "67108864");
    assert_eq!(read(&d, "memory.low"), "33554432");
    assert_eq!(read(&d, "memory.high"), "50331648");
    assert_eq!(read(&d, "cpu.weight"), "20"); // 512 shares
    assert_eq!(read(&d, "cpu.max"), "50000 100000");
    assert_eq!(read(&d, "cpuset.cpus"), "0-1");
    assert_eq!(read(&d, "pids.max"), "10");
    // io.max keeps only the last write in a fake file; io.weight: 1 + (300-10)*9999/990.
    assert_eq!(read(&d, "io.max"), "8:0 wiops=100");
    assert_eq!(read(&d, "io.weight"), "8:0 1920");
    assert_eq!(read(&d, "hugetlb.2MB.max"), "4194304");
    assert_eq!(read(&d, "hugetlb.2MB.rsvd.max"), "4194304");
    let prog = fs::read(d.join("test.device_program")).unwrap();
    assert_eq!(prog.len() % 8, 0);

    let plan = m.plan(&res(&spec)).unwrap();
    let w = plan.writes();
    assert_eq!(
        w.last().unwrap().0,
        "memory.high",
        "unified is written last"
    );
    assert!(w.contains(&("io.weight".into(), "default 2930".into())));
    assert!(w.contains(&("io.max".into(), "8:0 rbps=1048576".into())));
}

#[test]
fn v2_specifics() {
    let f = fake(&[], Some(V2_CONTROLLERS), "/");
    let (m, d) = v2_manager(&f);
    // Only a period: the current quota is kept.
    seed(&d, &[("cpu.max", "20000 100000\n")]);
    m.set(&res(r#"{"cpu": {"period": 50000}}"#)).unwrap();
    assert_eq!(read(&d, "cpu.max"), "20000 50000");
    m.set(&res(r#"{"cpu": {"quota": -1}, "memory": {"limit": -1}}"#))
        .unwrap();
    assert_eq!(read(&d, "cpu.max"), "max");
    assert_eq!(read(&d, "memory.max"), "max");
    assert_eq!(read(&d, "memory.swap.max"), "max");
    // BFQ present: its weight takes the blkio scale.
    seed(&d, &[("io.bfq.weight", "default 100\n")]);
    m.set(&res(r#"{"blockIO": {"weight": 300, "leafWeight": 10}}"#))
        .unwrap();
    assert_eq!(read(&d, "io.bfq.weight"), "300");
    // Hints without a v2 equivalent are ignored; guarantees are errors.
    m.set(&res(
        r#"{"memory": {"swappiness": 10, "disableOOMKiller": true, "kernel": 1048576}}"#,
    ))
    .unwrap();
    let err = m
        .set(&res(r#"{"cpu": {"realtimeRuntime": 1000}}"#))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
    let err = m.set(&res(r#"{"network": {"classID": 1}}"#)).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::Unsupported {
                field: "network",
                ..
            }
        ),
        "{err}"
    );
    // checkBeforeUpdate: below the current usage (1 MiB) is refused.
    let err = m
        .set(&res(
            r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("below the current usage"), "{err}");
    // Swap without a limit cannot be converted.
    let err = m.set(&res(r#"{"memory": {"swap": 1048576}}"#)).unwrap_err();
    assert!(err.to_string().starts_with("memory.swap"), "{err}");
    // Unknown unified files and escaping names.
    for u in [
        r#"{"memory.nope": "1"}"#,
        r#"{"../x.y": "1"}"#,
        r#"{"noprefix": "1"}"#,
    ] {
        let err = m.set(&res(&format!(r#"{{"unified": {u}}}"#))).unwrap_err();
        assert!(err.to_string().starts_with("unified"), "{err}");
    }
}

#[test]
fn v2_controller_not_enabled_and_missing_loader() {
    let f = fake(&[], Some("memory pids"), "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    let d = f.root.join("unified/berth/c1");
    seed_v2(&d);
    seed(&d, &[("cgroup.controllers", "memory\n")]);
    let err = m.set(&res(r#"{"pids": {"limit": 5}}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pids.limit: the pids controller is not available in {}",
            d.display()
        )
    );
    let err = m
        .set(&res(r#"{"devices": [{"allow": true}]}"#))
        .unwrap_err();
    assert!(err.to_string().contains("eBPF"), "{err}");
}

#[test]
fn v2_freeze_stats_destroy() {
    let f = fake(&[], Some(V2_CONTROLLERS), "/");
    let (m, d) = v2_manager(&f);
    seed(&d, &[("cgroup.events", "populated 1\nfrozen 1\n")]);
    m.freeze().unwrap();
    assert_eq!(read(&d, "cgroup.freeze"), "1");
    assert!(m.is_frozen());
    m.thaw().unwrap();
    assert_eq!(read(&d, "cgroup.freeze"), "0");

    seed(
        &d,
        &[
            ("cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 40\nnr_throttled 10\nthrottled_usec 7\n"),
            ("cpu.max", "50000 100000\n"),
            ("memory.current", "1000\n"),
            ("memory.max", "max\n"),
            ("memory.peak", "1500\n"),
            ("memory.stat", "anon 100\nfile 800\nkernel 50\nactive_file 300\ninactive_file 500\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n"),
            ("memory.swap.current", "0\n"),
            ("pids.current", "4\n"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
        ],
    );
    let s = m.stats().unwrap();
    let cpu = s.cpu.as_ref().unwrap();
    assert_eq!(
        (cpu.usage_total_ns, cpu.usage_user_ns, cpu.throttled_time_ns),
        (2_000_000, 1_500_000, 7000)
    );
    assert_eq!((cpu.quota_us, cpu.period_us), (Some(50_000), 100_000));
    let mem = s.memory.as_ref().unwrap();
    assert_eq!(
        (mem.limit, mem.max_usage, mem.kernel, mem.working_set),
        (None, Some(1500), Some(50), 500)
    );
    assert_eq!(
        (mem.oom_events, mem.oom_kill, mem.limit_hits, mem.under_oom),
        (Some(2), 1, 3, None)
    );
    assert_eq!(s.pids.as_ref().unwrap().limit, None);
    assert_eq!(s.blkio.as_ref().unwrap()[0].read_bytes, 10);
    let mut later = s.clone();
    later.cpu.as_mut().unwrap().nr_periods = 50;
    later.cpu.as_mut().unwrap().nr_throttled = 15;
    assert_eq!(Stats::throttled_percent(&s, &later), Some(50.0));

    for e in fs::read_dir(&d).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    m.destroy().unwrap();
    assert!(!d.exists());
}

// ---- hybrid ----

#[test]
fn hybrid_uses_v1_for_limits_and_cgroup2_for_hugetlb() {
    // This project's host: v1 controllers without hugetlb, cgroup2 owning hugetlb.
    let v1: Vec<&str> = V1_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| *c != "hugetlb")
        .collect();
    let f = fake(&v1, Some("hugetlb"), "/");
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    assert_eq!(m.layout(), Layout::Hybrid);
    assert_eq!(m.clone_target(), None, "no cgroup2 directory yet");
    m.create().unwrap();
    seed_v1(&m);
    let u = f.root.join("unified/berth/c1");
    assert!(u.is_dir(), "the cgroup2 side is created too");
    assert_eq!(
        m.clone_target(),
        Some(u.as_path()),
        "a child can be born in the cgroup2 side (CLONE_INTO_CGROUP)"
    );
    assert_eq!(
        read(&f.root.join("unified"), "cgroup.subtree_control"),
        "",
        "no controllers enabled on create"
    );
    seed(
        &u,
        &[
            ("cgroup.controllers", "hugetlb\n"),
            ("cgroup.procs", ""),
            ("hugetlb.2MB.max", "max\n"),
        ],
    );
    fs::write(f.root.join("unified/berth/cgroup.subtree_control"), "").unwrap();

    m.apply(777).unwrap();
    assert_eq!(read(&f.root.join("memory/berth/c1"), "cgroup.procs"), "777");
    assert_eq!(read(&u, "cgroup.procs"), "777");

    // Joining from inside: "0" (the caller's own thread) into every v1 `tasks`
    // file; the cgroup2 side only when the caller was not born there.
    for d in &m.paths().v1 {
        fs::write(d.path.join("tasks"), "").unwrap();
    }
    fs::write(u.join("cgroup.procs"), "").unwrap();
    m.join_self(true).unwrap();
    assert_eq!(read(&f.root.join("memory/berth/c1"), "tasks"), "0");
    assert_eq!(read(&f.root.join("pids/berth/c1"), "tasks"), "0");
    assert_eq!(read(&u, "cgroup.procs"), "", "born there: not written");
    m.join_self(false).unwrap();
    assert_eq!(read(&u, "cgroup.procs"), "0");

    m.set(&res(FULL_SPEC)).unwrap();
    assert_eq!(
        read(&f.root.join("memory/berth/c1"), "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(read(&u, "hugetlb.2MB.max"), "4194304");
    assert_eq!(
        read(&f.root.join("unified"), "cgroup.subtree_control"),
        "+hugetlb"
    );
    assert_eq!(
        read(&f.root.join("unified/berth"), "cgroup.subtree_control"),
        "+hugetlb"
    );
    // unified keys go to the cgroup2 directory on hybrid.
    m.set(&res(r#"{"unified": {"hugetlb.2MB.max": "2097152"}}"#))
        .unwrap();
    assert_eq!(read(&u, "hugetlb.2MB.max"), "2097152");
    // The v1 freezer is used.
    m.freeze().unwrap();
    assert_eq!(
        read(&f.root.join("freezer/berth/c1"), "freezer.state"),
        "FROZEN"
    );
}

#[test]
fn hybrid_survives_an_unusable_cgroup2_mount() {
    let f = fake(&["memory", "freezer"], Some(""), "/");
    // Make the cgroup2 side impossible to create (a file where the directory would go).
    fs::write(f.root.join("unified/berth"), "").unwrap();
    let m = Manager::new(&f.hier, None, "c1").unwrap();
    m.create().unwrap();
    seed_v1_memory_only(&m, UNLIMITED);
    seed(&f.root.join("freezer/berth/c1"), &[("cgroup.procs", "")]);
    m.apply(55).unwrap();
    m.set(&res(r#"{"memory": {"limit": 67108864}}"#)).unwrap();
    let err = m
        .set(&res(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(
        matches!(err, CgroupError::ControllerUnavailable { .. }),
        "{err}"
    );
}
