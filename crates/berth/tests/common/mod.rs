//! Test harness for the berth CLI: one private engine root per test binary
//! (so parallel tests share it, like parallel users would), unique container
//! names per test, and cleanup of everything a test made even when it fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Env {
    pub root: PathBuf,
    pub run: PathBuf,
}

static ENV: OnceLock<Env> = OnceLock::new();

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// The shared engine root for this test binary, with the offline busybox image.
pub fn env() -> &'static Env {
    ENV.get_or_init(|| {
        assert_eq!(nix::unistd::geteuid().as_raw(), 0, "the berth engine tests run as root (real containers)");
        // scripts/test points BERTH_TEST_ROOT at a directory it tears down after
        // the run (teardown.sh below: bridges, nft table, netns mounts).
        let parent = std::env::var_os("BERTH_TEST_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
        let pid = std::process::id();
        let base = parent.join(format!("berth-test-{pid}"));
        let e = Env { root: base.join("root"), run: base.join("run") };
        std::fs::create_dir_all(&e.root).unwrap();
        std::fs::create_dir_all(&e.run).unwrap();
        // host-wide names unique to this test binary
        std::env::set_var("BERTH_NFT_TABLE", format!("berth_t{pid}"));
        std::env::set_var("BERTH_BRIDGE", format!("bt{pid}"));
        std::env::set_var("BERTH_SUBNET_POOL", (0..8).map(|i| format!("10.{}.{}.0/24", 120 + i, pid % 250)).collect::<Vec<_>>().join(","));
        let teardown = format!(
            "#!/bin/sh\nBERTH_NFT_TABLE=berth_t{pid} BERTH_BRIDGE=bt{pid} exec {} --root {} --run-root {} system teardown\n",
            bin().display(),
            e.root.display(),
            e.run.display()
        );
        std::fs::write(base.join("teardown.sh"), teardown).unwrap();
        let out = raw(&e, &["image", "bootstrap", "busybox:latest"]);
        assert!(out.status.success(), "bootstrap: {}", String::from_utf8_lossy(&out.stderr));
        e
    })
}

pub fn raw(e: &Env, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--root")
        .arg(&e.root)
        .arg("--run-root")
        .arg(&e.run)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run berth")
}

pub fn berth(args: &[&str]) -> Output {
    raw(env(), args)
}

pub fn command() -> Command {
    let e = env();
    let mut c = Command::new(bin());
    c.arg("--root").arg(&e.root).arg("--run-root").arg(&e.run);
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and require success; the trimmed stdout.
pub fn ok(args: &[&str]) -> String {
    let o = berth(args);
    assert!(
        o.status.success(),
        "berth {args:?} failed ({:?}): {}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o).trim().to_string()
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A container name that is force-removed (with its anonymous volumes) when dropped.
pub struct Name(pub String);

impl Name {
    pub fn new(prefix: &str) -> Name {
        Name(unique(prefix))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = berth(&["rm", "-f", "-v", &self.0]);
    }
}

pub fn inspect(name: &str, path: &str) -> String {
    ok(&["inspect", "-f", &format!("{{{{{path}}}}}"), name])
}

pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mount points under the test root (overlay rootfs, netns files) — none may
/// outlive the containers that made them.
pub fn mounts_under(p: &Path) -> Vec<String> {
    let p = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&p))
        .collect()
}

pub fn container_mounts(id: &str) -> Vec<String> {
    let e = env();
    let mut v = mounts_under(&e.run.join("containers").join(id));
    v.extend(mounts_under(&e.root.join("containers").join(id)));
    v
}

/// cgroup directories for a container id in every v1 hierarchy and cgroup2.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let p = e.path().join("berth").join(id);
            if p.exists() {
                out.push(p);
            }
        }
    }
    let p = Path::new("/sys/fs/cgroup/berth").join(id);
    if p.exists() {
        out.push(p);
    }
    out
}
