//! Real-kernel tests: run as root on a v1 or hybrid host (this project's machine).
//! Skipped (with a message) when not root or when the host is pure v2 — v2 is covered by
//! the fake-cgroupfs unit tests.
//!
//! Every test makes its own cgroup `/berth-test-<pid>-<n>` (absolute, so no shared
//! parent is left behind) held by a [`Cg`] guard whose `Drop` destroys it even when an
//! assertion fails. Processes are started blocked on stdin, moved into the cgroup with
//! `apply`, then released, so no test code runs outside the cgroup.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_cgroups::{CgroupError, Hierarchy, Layout, Manager, Stats};
use oci_spec::runtime::LinuxResources;

static N: AtomicUsize = AtomicUsize::new(0);

struct Cg {
    m: Manager,
    name: String,
    children: Vec<Child>,
    // Held for the whole test: these tests measure CPU time, I/O rates and memory
    // pressure, so they run one at a time rather than against each other.
    _serial: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Cg {
    fn drop(&mut self) {
        if let Err(e) = self.m.destroy() {
            eprintln!("cleanup of {} failed: {e:#?}", self.name);
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn setup() -> Option<Cg> {
    // Never a silent skip: these tests need root on a v1 or hybrid host (as CI is);
    // pure v2 is covered by the fake-cgroupfs unit tests.
    assert!(
        nix::unistd::geteuid().is_root(),
        "the real-kernel cgroup tests need root"
    );
    let hier = Hierarchy::detect().expect("detect");
    assert!(
        hier.layout() != Layout::V2,
        "the real-kernel cgroup tests need a v1 or hybrid cgroup host"
    );
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!(
        "berth-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let m = Manager::new(&hier, Some(&format!("/{name}")), &name).expect("new");
    m.create().expect("create");
    Some(Cg {
        m,
        name,
        children: Vec::new(),
        _serial: serial,
    })
}

impl Cg {
    fn dir(&self, controller: &str) -> PathBuf {
        self.m
            .paths()
            .v1_dir(controller)
            .expect("controller mounted")
            .to_owned()
    }

    /// Start `sh -c script` inside the cgroup: blocked on stdin until it has been moved in.
    fn spawn(&mut self, script: &str) -> usize {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        self.m.apply(child.id() as i32).expect("apply");
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("release");
        self.children.push(child);
        self.children.len() - 1
    }

    fn wait(&mut self, i: usize) -> (std::process::ExitStatus, String) {
        let mut out = String::new();
        let c = &mut self.children[i];
        if let Some(o) = c.stdout.as_mut() {
            let _ = o.read_to_string(&mut out);
        }
        (c.wait().expect("wait"), out)
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .expect("read")
        .trim()
        .to_owned()
}

fn leftovers(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup")
        .expect("ls /sys/fs/cgroup")
        .flatten()
    {
        let p = e.path().join(name);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

#[test]
fn limits_are_written_and_read_back() {
    let Some(mut cg) = setup() else { return };
    let i = cg.spawn("exec sleep 30");
    cg.m.set(&res(
        r#"{"memory": {"limit": 67108864, "swap": 67108864, "reservation": 33554432},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 10}}"#,
    ))
    .expect("set");
    assert_eq!(read(&cg.dir("memory"), "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&cg.dir("cpu"), "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&cg.dir("cpu"), "cpu.shares"), "512");
    assert_eq!(read(&cg.dir("cpuset"), "cpuset.cpus"), "0");
    assert_eq!(read(&cg.dir("pids"), "pids.max"), "10");
    let pid = cg.children[i].id() as i32;
    assert_eq!(cg.m.pids().expect("pids"), [pid]);
    let s = cg.m.stats().expect("stats");
    assert_eq!(s.memory.as_ref().unwrap().limit, Some(64 << 20));
    assert_eq!(s.pids.as_ref().unwrap().limit, Some(10));
    assert_eq!(s.pids.as_ref().unwrap().current, 1);
    assert_eq!(s.cpu.as_ref().unwrap().quota_us, Some(50_000));
    assert_eq!(s.cpu.as_ref().unwrap().limit_cpus(), Some(0.5));
    // Hybrid: the process is in the cgroup2 directory too.
    if let Some(u) = cg.m.paths().unified_dir().filter(|d| d.is_dir()) {
        assert_eq!(read(u, "cgroup.procs"), pid.to_string());
    }
    // update: raise, then lower, the live limit.
    cg.m.set(&res(
        r#"{"memory": {"limit": 134217728, "swap": 134217728}}"#,
    ))
    .expect("raise");
    assert_eq!(
        read(&cg.dir("memory"), "memory.limit_in_bytes"),
        "134217728"
    );
    cg.m.set(&res(r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#))
        .expect("lower");
    assert_eq!(read(&cg.dir("memory"), "memory.limit_in_bytes"), "33554432");
    let name = cg.name.clone();
    drop(cg);
    assert_eq!(leftovers(&name), Vec::<PathBuf>::new());
}

#[test]
fn memory_below_usage_is_a_clear_error_and_nothing_changes() {
    let Some(mut cg) = setup() else { return };
    cg.m.set(&res(
        r#"{"memory": {"limit": 268435456}, "pids": {"limit": 100}}"#,
    ))
    .expect("set");
    // Hold ~100 MiB of anonymous memory (no swap on this host: not reclaimable).
    cg.spawn(r#"exec perl -e '$x = "a" x (100*1024*1024); print "ready\n"; $| = 1; sleep 30'"#);
    let mem = cg.dir("memory");
    let start = Instant::now();
    while cg.m.stats().unwrap().memory.unwrap().usage < 100 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "child did not allocate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let err =
        cg.m.set(&res(
            r#"{"pids": {"limit": 50}, "memory": {"limit": 4096}}"#,
        ))
        .unwrap_err();
    let msg = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(matches!(err, CgroupError::MemoryBelowUsage { .. }), "{msg}");
    assert!(msg.contains("set memory.limit_in_bytes to 4096"), "{msg}");
    assert!(msg.contains("Device or resource busy"), "{msg}");
    // Rolled back: the pids limit written before the failure is restored.
    assert_eq!(read(&cg.dir("pids"), "pids.max"), "100");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "268435456");
}

#[test]
fn oom_kill_inside_the_limit_is_counted() {
    let Some(mut cg) = setup() else { return };
    cg.m.set(&res(r#"{"memory": {"limit": 67108864, "swap": 67108864}}"#))
        .expect("set");
    let i = cg.spawn(r#"exec perl -e '$x = "a" x (200*1024*1024); print "survived\n"'"#);
    let (status, out) = cg.wait(i);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "expected SIGKILL from the OOM killer, got {status:?} {out}"
    );
    let s = cg.m.stats().expect("stats");
    let mem = s.memory.unwrap();
    assert!(mem.oom_kill >= 1, "{mem:?}");
    // (limit_hits is not asserted: Linux 6.18 leaves v1 memory.failcnt at 0.)
    assert!(mem.max_usage.unwrap() <= 64 << 20, "{mem:?}");
}

#[test]
fn pids_limit_stops_the_eleventh_process() {
    let Some(mut cg) = setup() else { return };
    cg.m.set(&res(r#"{"pids": {"limit": 10}}"#)).expect("set");
    // The shell itself is one of the 10; perl replaces it (exec), then forks until refused.
    let i = cg.spawn(
        r#"exec perl -e 'my $n = 0; while ($n < 20) { my $p = fork(); last unless defined $p; if ($p == 0) { close STDOUT; sleep 30; exit 0 } $n++ } print "$n\n"'"#,
    );
    let (_, out) = cg.wait(i);
    assert_eq!(out.trim(), "9", "9 children + perl = 10 processes");
    assert!(cg.m.stats().unwrap().pids.unwrap().current <= 10);
}

#[test]
fn half_a_cpu_throttles_a_busy_loop() {
    let Some(mut cg) = setup() else { return };
    cg.m.set(&res(r#"{"cpu": {"quota": 50000, "period": 100000}}"#))
        .expect("set");
    // Two busy loops ask for two CPUs: throttled even when other tests load the machine.
    cg.spawn("perl -e 'while (1) {}' & exec perl -e 'while (1) {}'");
    std::thread::sleep(Duration::from_millis(300));
    let a = cg.m.stats().unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let b = cg.m.stats().unwrap();
    let cores = Stats::cpu_cores_used(&a, &b, t0.elapsed()).unwrap();
    let pct = Stats::throttled_percent(&a, &b).unwrap();
    let cpu = b.cpu.as_ref().unwrap();
    eprintln!(
        "cores used {cores:.3}, throttled {pct:.1}% ({} of {} periods)",
        cpu.nr_throttled, cpu.nr_periods
    );
    assert!(cpu.nr_throttled > 0);
    assert!(cores <= 0.6, "{cores}");
    assert!(cores >= 0.2, "{cores} (machine too busy?)");
    assert!(pct > 50.0, "{pct}");
    // No quota: throttling is "not applicable", not 0%.
    cg.m.set(&res(r#"{"cpu": {"quota": -1}}"#)).expect("unset");
    let c = cg.m.stats().unwrap();
    assert_eq!(Stats::throttled_percent(&b, &c), None);
}

#[test]
fn freeze_stops_and_thaw_resumes_a_counter() {
    let Some(mut cg) = setup() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let counter = tmp.path().join("n");
    cg.spawn(&format!(
        r#"exec perl -e '$| = 1; for ($i = 0;; $i++) {{ open(F, ">", "{}.tmp"); print F $i; close F; rename("{0}.tmp", "{0}"); select(undef, undef, undef, 0.005) }}'"#,
        counter.display()
    ));
    let value = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let start = Instant::now();
    while value() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "counter did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    cg.m.freeze().expect("freeze");
    assert!(cg.m.is_frozen());
    assert_eq!(read(&cg.dir("freezer"), "freezer.state"), "FROZEN");
    let v1 = value();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(value(), v1, "a frozen counter must not move");
    cg.m.thaw().expect("thaw");
    assert!(!cg.m.is_frozen());
    std::thread::sleep(Duration::from_millis(200));
    assert!(value() > v1, "the counter resumes after thaw");
}

#[test]
fn page_cache_counts_as_file_not_anon() {
    let Some(mut cg) = setup() else { return };
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let f = tmp.path().join("big");
    // Written outside with O_DIRECT, so none of it is in the page cache yet.
    let st = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", f.display()),
            "bs=1M",
            "count=64",
            "oflag=direct",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let before = cg.m.stats().unwrap().memory.unwrap();
    let i = cg.spawn(&format!("cat {} > /dev/null", f.display()));
    assert!(cg.wait(i).0.success());
    let after = cg.m.stats().unwrap().memory.unwrap();
    eprintln!(
        "file {} -> {}, anon {} -> {}",
        before.file, after.file, before.anon, after.anon
    );
    assert!(after.file >= before.file + (48 << 20), "{after:?}");
    assert!(after.anon < 16 << 20, "{after:?}");
    assert!(after.working_set <= after.usage);
}

#[test]
fn read_bps_limit_on_a_loop_device() {
    let Some(mut cg) = setup() else { return };
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&img)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "skipped: losetup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    struct Loop(String);
    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = Command::new("losetup").args(["-d", &self.0]).status();
        }
    }
    let _loop = Loop(dev.clone());
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(&dev).unwrap().rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    );
    let rate = 4u64 << 20;
    cg.m.set(&res(&format!(
        r#"{{"blockIO": {{"throttleReadBpsDevice": [{{"major": {major}, "minor": {minor}, "rate": {rate}}}]}}}}"#
    )))
    .expect("set");
    assert_eq!(
        read(&cg.dir("blkio"), "blkio.throttle.read_bps_device"),
        format!("{major}:{minor} {rate}")
    );
    let t0 = Instant::now();
    let i = cg.spawn(&format!(
        "dd if={dev} of=/dev/null bs=1M count=8 iflag=direct 2>/dev/null"
    ));
    assert!(cg.wait(i).0.success());
    let secs = t0.elapsed().as_secs_f64();
    let measured = (8u64 << 20) as f64 / secs;
    eprintln!(
        "read 8 MiB in {secs:.2}s = {:.2} MiB/s (limit 4)",
        measured / (1 << 20) as f64
    );
    // The first bytes ride the throttle's initial budget; the rate must stay near the limit.
    assert!(measured < rate as f64 * 1.5, "{measured}");
    assert!(measured > rate as f64 * 0.5, "{measured}");
    let s = cg.m.stats().unwrap();
    let d = s
        .blkio
        .unwrap()
        .into_iter()
        .find(|d| d.major == major && d.minor == minor)
        .expect("device stats");
    assert!(d.read_bytes >= 8 << 20, "{d:?}");
    // A device that does not exist: a clear error naming the field.
    let err =
        cg.m.set(&res(
            r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 4000, "minor": 7, "rate": 1}]}}"#,
        ))
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "blockIO.throttleReadBpsDevice: set blkio.throttle.read_bps_device to 4000:7 1"
        ),
        "{err}"
    );
}

#[test]
fn bad_kernel_values_name_the_field() {
    let Some(cg) = setup() else { return };
    let err = cg.m.set(&res(r#"{"cpu": {"quota": 500}}"#)).unwrap_err();
    assert!(err.to_string().starts_with("cpu.quota"), "{err}");
    let err = cg.m.set(&res(r#"{"cpu": {"cpus": "7-9"}}"#)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cpu.cpus: set cpuset.cpus to 7-9"),
        "{err}"
    );
}

#[test]
fn destroy_kills_leftovers_and_removes_every_directory() {
    let Some(mut cg) = setup() else { return };
    // A process tree, a child cgroup with a process in it, and a zombie-to-be.
    cg.spawn("sleep 60 & sleep 60 & wait");
    let sub = cg.dir("pids").join("nested");
    std::fs::create_dir(&sub).unwrap();
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(sub.join("cgroup.procs"), other.id().to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(cg.m.pids().unwrap().len() >= 4, "{:?}", cg.m.pids());
    cg.m.destroy().expect("destroy");
    assert_eq!(leftovers(&cg.name), Vec::<PathBuf>::new());
    let _ = other.wait();
    // Idempotent: gone is success.
    cg.m.destroy().expect("destroy again");
    assert!(cg.m.pids().unwrap().is_empty());
}

#[test]
fn create_refuses_a_cgroup_with_foreign_processes() {
    let Some(cg) = setup() else { return };
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(cg.dir("pids").join("cgroup.procs"), other.id().to_string()).unwrap();
    // A second container pointed at the same cgroupsPath must not adopt it.
    let hier = Hierarchy::detect().unwrap();
    let m2 = Manager::new(&hier, Some(&format!("/{}", cg.name)), "second").unwrap();
    let err = m2.create().unwrap_err();
    assert!(matches!(err, CgroupError::InUse { .. }), "{err}");
    other.kill().unwrap();
    let _ = other.wait();
}

#[test]
fn hugetlb_on_this_hybrid_host_goes_to_cgroup2() {
    let Some(cg) = setup() else { return };
    let hier = Hierarchy::detect().unwrap();
    let Some(u) = hier
        .unified()
        .filter(|u| u.controllers.iter().any(|c| c == "hugetlb"))
    else {
        eprintln!("skipped: hugetlb is not a cgroup2 controller here");
        return;
    };
    if hier.v1_mountpoint("hugetlb").is_some() {
        eprintln!("skipped: hugetlb is a v1 controller here");
        return;
    }
    let root_ctl = u.mountpoint.join("cgroup.subtree_control");
    let was_enabled = read(&u.mountpoint, "cgroup.subtree_control")
        .split_whitespace()
        .any(|c| c == "hugetlb");
    let r = cg.m.set(&res(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
    ));
    let dir = cg.m.paths().unified_dir().unwrap().to_owned();
    let got = std::fs::read_to_string(dir.join("hugetlb.2MB.max")).map(|s| s.trim().to_owned());
    // Put the host back as it was before asserting.
    cg.m.destroy().expect("destroy");
    if !was_enabled {
        let _ = std::fs::write(&root_ctl, "-hugetlb");
    }
    r.expect("set hugepageLimits");
    assert_eq!(got.unwrap(), "4194304");
}
