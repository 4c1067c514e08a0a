//! Support for berth-runtime's privileged integration tests: busybox bundles, runtime
//! invocations with their own state root, and guards that clean up even when a test
//! panics.
//!
//! Every test runs as root on a shared machine, possibly beside other tests doing the
//! same: every name (container id, temp dir, namespace holder) is unique
//! (`conf-<pid>-<counter>`), and each guard undoes what its owner set up:
//! - [`Container`] drops with `runtime delete --force`, then removes cgroups still named
//!   after its id, then its state root;
//! - [`Bundle`] unmounts what it mounted on the host, then removes its directory;
//! - [`NamespaceHolder`] kills and reaps its process.
//!
//! Binaries, each overridable by an environment variable:
//! - runc: `BERTH_RUNC`, else `/usr/sbin/runc`, else `runc` on `PATH`;
//! - berth-runtime: `BERTH_RUNTIME`, else the binary Cargo built with these tests
//!   (`CARGO_BIN_EXE_berth-runtime`, so never a stale one);
//! - the conformance checker: `BERTH_CHECKER`, else the static build under the target
//!   directory these tests run from (see [`CHECKER_BUILD`]).

#![allow(dead_code)] // each test binary uses a different part of this module

/// Runs every scenario as `<scenario>::runc` and `<scenario>::berth`: runc passing
/// shows the test itself is right. Needs `Runtime` in scope of the calling file.
#[allow(unused_macros)]
macro_rules! both {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn runc() {
                super::$scenario(&super::Runtime::runc());
            }

            #[test]
            fn berth() {
                super::$scenario(&super::Runtime::berth());
            }
        }
    )*};
}

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How to build the checker; printed when it is missing or stale.
pub const CHECKER_BUILD: &str = "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build \
     --release -p berth-checker --target x86_64-unknown-linux-gnu";

/// Where the checker and its expectations go inside a rootfs (see tests/checker).
pub const CHECKER_IN_ROOTFS: &str = "/.checker/checker";
pub const EXPECT_IN_ROOTFS: &str = "/.checker/expect";

/// How long one runtime command may take before the test fails.
pub const RUNTIME_TIMEOUT: Duration = Duration::from_secs(60);

/// A name no other test on this machine uses: `<prefix>-<pid>-<counter>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// An OCI runtime binary with runc's command line.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub name: &'static str,
    pub path: PathBuf,
}

impl Runtime {
    pub fn runc() -> Runtime {
        let path = std::env::var_os("BERTH_RUNC")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/usr/sbin/runc")).filter(|p| p.exists()))
            .unwrap_or_else(|| PathBuf::from("runc"));
        Runtime { name: "runc", path }
    }

    pub fn berth() -> Runtime {
        let path = std::env::var_os("BERTH_RUNTIME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime")));
        Runtime {
            name: "berth-runtime",
            path,
        }
    }

    /// A command for this runtime, with a clean stdin.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        command.stdin(Stdio::null());
        command
    }

    /// Runs `self args...` with stdout and stderr in files under `dir`, waiting at most
    /// [`RUNTIME_TIMEOUT`]. Files rather than pipes: after `create`, the container
    /// holds the runtime's stdout, and a pipe would not reach EOF until it exits.
    pub fn invoke(&self, dir: &Path, args: &[&str]) -> Invocation {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        let verb = args
            .iter()
            .find(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_lowercase()))
            .unwrap_or(&"cmd");
        let stdout_path = dir.join(format!("{n}-{verb}.stdout"));
        let stderr_path = dir.join(format!("{n}-{verb}.stderr"));
        let stdout = fs::File::create(&stdout_path).expect("create stdout file");
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        let mut child = self
            .command()
            .args(args)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run {} ({}): {err}", self.name, self.path.display())
            });
        let status = wait_timeout(&mut child, RUNTIME_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {} did not finish in {RUNTIME_TIMEOUT:?}; stderr: {}",
                self.name,
                args.join(" "),
                fs::read_to_string(&stderr_path).unwrap_or_default()
            )
        });
        Invocation {
            command: format!("{} {}", self.name, args.join(" ")),
            status,
            stdout_path,
            stderr_path,
        }
    }

    /// `runtime spec` in a fresh directory; the parsed config.json.
    pub fn spec(&self) -> Value {
        let dir = temp_dir("spec");
        let out = self.command().arg("spec").current_dir(dir.path()).output();
        let out = out.unwrap_or_else(|err| panic!("cannot run {} spec: {err}", self.name));
        assert!(
            out.status.success(),
            "{} spec failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let text =
            fs::read_to_string(dir.path().join("config.json")).expect("spec writes config.json");
        serde_json::from_str(&text).expect("spec writes JSON")
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One finished runtime command; its output stays in files (see [`Runtime::invoke`]).
#[derive(Debug)]
pub struct Invocation {
    pub command: String,
    pub status: ExitStatus,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Invocation {
    /// stdout as of now: after `create`, the container keeps writing here.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the command's output unless it exited 0.
    pub fn assert_success(&self) -> &Invocation {
        assert!(self.success(), "{self}");
        self
    }

    pub fn assert_failure(&self) -> &Invocation {
        assert!(!self.success(), "expected a failure:\n{self}");
        self
    }
}

impl std::fmt::Display for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout\n{}--- stderr\n{}---",
            self.command,
            self.status,
            self.stdout(),
            self.stderr()
        )
    }
}

/// A temp dir under /tmp named `berth-<what>-…`, traversable by anyone (a user
/// namespace's root is an unprivileged host uid).
pub fn temp_dir(what: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("berth-{what}-"))
        .tempdir()
        .expect("create temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

/// `runc spec`, made for tests: no terminal, and rlimits clamped to this process's hard
/// limits (root here lacks CAP_SYS_RESOURCE, so a runtime cannot raise them).
/// Both runtimes get the same config, so a difference in behaviour is the runtime's.
pub fn base_spec() -> Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    let mut spec = SPEC.get_or_init(|| Runtime::runc().spec()).clone();
    spec["process"]["terminal"] = Value::Bool(false);
    if let Some(rlimits) = spec["process"]["rlimits"].as_array_mut() {
        for rlimit in rlimits {
            let Some(resource) = rlimit["type"].as_str().and_then(rlimit_resource) else {
                continue;
            };
            let (_, host_hard) = nix::sys::resource::getrlimit(resource).expect("getrlimit");
            let hard = rlimit["hard"].as_u64().unwrap_or(u64::MAX).min(host_hard);
            let soft = rlimit["soft"].as_u64().unwrap_or(u64::MAX).min(hard);
            rlimit["hard"] = hard.into();
            rlimit["soft"] = soft.into();
        }
    }
    spec
}

/// The nix resource for an OCI rlimit type (`RLIMIT_NOFILE`).
pub fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource;
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

/// The names `busybox --list` installs, read once.
fn busybox_applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(busybox_path())
            .arg("--list")
            .output()
            .expect("run busybox --list (apt-get install busybox-static)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .map(String::from)
            .collect()
    })
}

/// A static busybox: `BERTH_BUSYBOX`, else apt's busybox-static.
pub fn busybox_path() -> PathBuf {
    std::env::var_os("BERTH_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/busybox"))
}

/// A bundle directory: `config.json` (edit [`Bundle::config`], then
/// [`Bundle::write_config`]) and a busybox `rootfs/`.
pub struct Bundle {
    dir: Option<tempfile::TempDir>,
    pub config: Value,
    host_mounts: Vec<PathBuf>,
}

impl Bundle {
    /// A bundle with a busybox rootfs (every applet linked in /bin, an /etc/passwd with
    /// root and `conf` (1000:1000, home /home/conf)) and [`base_spec`] as config, its
    /// process `sh`.
    pub fn busybox() -> Bundle {
        let dir = temp_dir("bundle");
        let rootfs = dir.path().join("rootfs");
        for sub in [
            "bin",
            "dev",
            "etc",
            "proc",
            "sys",
            "tmp",
            "root",
            "home/conf",
            ".checker",
        ] {
            fs::create_dir_all(rootfs.join(sub)).expect("create rootfs dirs");
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .expect("chmod /tmp");
        fs::copy(busybox_path(), rootfs.join("bin/busybox")).unwrap_or_else(|err| {
            panic!("copy {} into the rootfs: {err}", busybox_path().display())
        });
        for applet in busybox_applets() {
            let link = rootfs.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).expect("link busybox applet");
            }
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             conf:x:1000:1000:conf:/home/conf:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .expect("write /etc/passwd");
        let mut config = base_spec();
        config["process"]["args"] = serde_json::json!(["sh"]);
        let bundle = Bundle {
            dir: Some(dir),
            config,
            host_mounts: Vec::new(),
        };
        bundle.write_config();
        bundle
    }

    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("bundle dir exists until drop")
            .path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    /// A host path inside the bundle dir but outside the rootfs (bind sources).
    pub fn host_path(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(self.path().join("config.json"), text).expect("write config.json");
    }

    /// Copies the static checker to [`CHECKER_IN_ROOTFS`] and writes `expect` to
    /// [`EXPECT_IN_ROOTFS`]. Panics, saying how to build it, if it is missing.
    pub fn install_checker(&self, expect: &str) {
        let checker = checker_path();
        let dest = self.in_rootfs(CHECKER_IN_ROOTFS);
        fs::create_dir_all(dest.parent().expect("has parent")).expect("create /.checker");
        fs::copy(&checker, &dest).expect("copy checker into rootfs");
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).expect("chmod checker");
        let expect_path = self.in_rootfs(EXPECT_IN_ROOTFS);
        fs::write(&expect_path, expect).expect("write expectations");
        fs::set_permissions(&expect_path, fs::Permissions::from_mode(0o644)).expect("chmod expect");
    }

    /// A path inside the rootfs (`/etc/passwd` → `<bundle>/rootfs/etc/passwd`).
    pub fn in_rootfs(&self, path: &str) -> PathBuf {
        self.rootfs().join(path.trim_start_matches('/'))
    }

    /// Changes the owner of everything in the rootfs (for user namespaces).
    pub fn chown_rootfs(&self, uid: u32, gid: u32) {
        fn walk(path: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("lchown rootfs");
            let is_dir = fs::symlink_metadata(path)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if is_dir {
                for entry in fs::read_dir(path).expect("read rootfs dir") {
                    walk(&entry.expect("rootfs dir entry").path(), uid, gid);
                }
            }
        }
        walk(&self.rootfs(), uid, gid);
    }

    /// Mounts a tmpfs at `path` on the host; unmounted when the bundle drops.
    pub fn mount_tmpfs_on_host(&mut self, path: &Path) {
        use nix::mount::{mount, MsFlags};
        fs::create_dir_all(path).expect("create host mount point");
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=1m"),
        )
        .unwrap_or_else(|err| panic!("mount tmpfs on {}: {err}", path.display()));
        self.host_mounts.push(path.to_path_buf());
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        use nix::mount::{umount2, MntFlags};
        for path in self.host_mounts.drain(..).rev() {
            if let Err(err) = umount2(&path, MntFlags::MNT_DETACH) {
                eprintln!("cleanup: umount {}: {err}", path.display());
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(err) = dir.close() {
                eprintln!("cleanup: remove {}: {err}", path.display());
            }
        }
    }
}

/// The static checker binary; panics with [`CHECKER_BUILD`] if it is missing, stale or
/// dynamically linked.
pub fn checker_path() -> PathBuf {
    let relative = Path::new("x86_64-unknown-linux-gnu/release/berth-checker");
    let path = if let Some(path) = std::env::var_os("BERTH_CHECKER") {
        PathBuf::from(path)
    } else {
        // The target dir these tests were built in: an ancestor of this test binary
        // (<target>/debug/deps/conformance-…), or CARGO_TARGET_DIR, or the workspace's.
        let exe = std::env::current_exe().expect("current_exe");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let candidates: Vec<PathBuf> = exe
            .ancestors()
            .map(Path::to_path_buf)
            .chain(std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
            .chain([workspace.join("target")])
            .map(|dir| dir.join(relative))
            .collect();
        match candidates.iter().find(|p| p.is_file()) {
            Some(path) => path.clone(),
            None => panic!(
                "the conformance checker is not built; build it with\n  {CHECKER_BUILD}\n\
                 (same CARGO_TARGET_DIR as the tests), or point BERTH_CHECKER at it"
            ),
        }
    };
    assert!(
        path.is_file(),
        "BERTH_CHECKER={} is not a file",
        path.display()
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/checker/src/main.rs");
    if let (Ok(bin), Ok(src)) = (fs::metadata(&path), fs::metadata(&source)) {
        assert!(
            bin.mtime() >= src.mtime(),
            "the checker {} is older than its source; rebuild it with\n  {CHECKER_BUILD}",
            path.display()
        );
    }
    assert!(
        !has_elf_interpreter(&path),
        "the checker {} is dynamically linked and cannot run in a busybox rootfs; build it with\n  {CHECKER_BUILD}",
        path.display()
    );
    path
}

/// Whether an ELF64 file asks for a dynamic loader (has a PT_INTERP program header).
fn has_elf_interpreter(path: &Path) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    };
    if bytes.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        bytes.get(at..at + 4) == Some(&3u32.to_le_bytes()[..]) // PT_INTERP
    })
}

/// A container id in a private `--root`: deleted (forcibly) on drop, with any cgroup
/// still named after it.
pub struct Container<'a> {
    pub runtime: Runtime,
    pub id: String,
    pub bundle: &'a Bundle,
    /// `root/` is the runtime's `--root`, `out/` holds each command's output.
    dir: Option<tempfile::TempDir>,
}

impl<'a> Container<'a> {
    pub fn new(runtime: &Runtime, bundle: &'a Bundle) -> Container<'a> {
        Container {
            runtime: runtime.clone(),
            id: unique_name("conf"),
            bundle,
            dir: Some(temp_dir("container")),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir exists until drop").path()
    }

    /// The runtime's `--root` (created by the runtime).
    pub fn state_root(&self) -> PathBuf {
        self.dir().join("root")
    }

    /// `runtime --root <root> args...`, output kept beside the state root.
    pub fn invoke(&self, args: &[&str]) -> Invocation {
        let root = self
            .state_root()
            .to_str()
            .expect("utf-8 temp path")
            .to_string();
        let mut full = vec!["--root", root.as_str()];
        full.extend_from_slice(args);
        let out_dir = self.dir().join("out");
        fs::create_dir_all(&out_dir).expect("create output dir");
        self.runtime.invoke(&out_dir, &full)
    }

    fn bundle_arg(&self) -> String {
        self.bundle
            .path()
            .to_str()
            .expect("utf-8 bundle path")
            .to_string()
    }

    /// `run --bundle B ID` in the foreground: returns when the container has exited.
    pub fn run(&self) -> Invocation {
        self.invoke(&["run", "--bundle", &self.bundle_arg(), &self.id])
    }

    pub fn create(&self) -> Invocation {
        self.invoke(&["create", "--bundle", &self.bundle_arg(), &self.id])
    }

    pub fn start(&self) -> Invocation {
        self.invoke(&["start", &self.id])
    }

    pub fn kill(&self, signal: &str) -> Invocation {
        self.invoke(&["kill", &self.id, signal])
    }

    pub fn delete(&self) -> Invocation {
        self.invoke(&["delete", &self.id])
    }

    /// `state ID`, parsed; `None` if the command failed.
    pub fn state(&self) -> Option<Value> {
        let out = self.invoke(&["state", &self.id]);
        out.success().then(|| {
            serde_json::from_str(&out.stdout())
                .unwrap_or_else(|err| panic!("state is not JSON ({err}):\n{out}"))
        })
    }

    /// Polls `state` until its status is `status`; panics after `timeout`.
    pub fn wait_for_status(&self, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state();
            if let Some(state) = state.as_ref().filter(|s| s["status"] == status) {
                return state.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{}: container never reached status {status:?}; last state: {state:?}",
                self.runtime.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the runtime left behind for this id: its state dir, cgroup directories.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut found = cgroup_dirs_named(&self.id);
        let state_dir = self.state_root().join(&self.id);
        if state_dir.exists() {
            found.push(state_dir);
        }
        found
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if self.dir.is_none() {
            return;
        }
        let root = self.state_root().to_str().unwrap_or_default().to_string();
        let delete = self
            .runtime
            .command()
            .args(["--root", &root, "delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match delete {
            Ok(mut child) => {
                if wait_timeout(&mut child, RUNTIME_TIMEOUT).is_none() {
                    eprintln!(
                        "cleanup: {} delete --force {}: timed out",
                        self.runtime.name, self.id
                    );
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Err(err) => eprintln!(
                "cleanup: {} delete --force {}: {err}",
                self.runtime.name, self.id
            ),
        }
        // A runtime bug may leave cgroups behind; the machine is shared, remove them
        // (deepest first; rmdir of an empty cgroup succeeds once its tasks are gone).
        for dir in cgroup_dirs_named(&self.id).iter().rev() {
            if let Err(err) = fs::remove_dir(dir) {
                eprintln!("cleanup: rmdir {}: {err}", dir.display());
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(err) = dir.close() {
                eprintln!("cleanup: remove {}: {err}", path.display());
            }
        }
    }
}

/// Cgroup directories whose name contains `id`, in every mounted hierarchy, parents
/// before children, looked for a few levels deep (runc puts a container without
/// cgroupsPath under the runtime's own cgroup, e.g. memory:/process_api/<x>/<id>).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let path = entry.path();
            if names_container(&entry.file_name().to_string_lossy(), id) {
                found.push(path.clone());
            }
            if depth > 0 {
                walk(&path, id, depth - 1, found);
            }
        }
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if !right.starts_with("cgroup") {
            continue;
        }
        if let Some(mount_point) = left.split(' ').nth(4) {
            walk(Path::new(mount_point), id, 3, &mut found);
        }
    }
    found
}

/// Whether a cgroup directory name is `id` or embeds it (`berth-<id>.scope`), without
/// taking `conf-1-10` for `conf-1-1`.
fn names_container(name: &str, id: &str) -> bool {
    name.match_indices(id).any(|(at, _)| {
        let before = name[..at].chars().next_back();
        let after = name[at + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// A process holding new namespaces open (`unshare --<kind>... sh`), whose
/// `/proc/PID/ns/*` containers can join by path; killed on drop. Its UTS namespace, if
/// new, gets `hostname`.
pub struct NamespaceHolder {
    child: Child,
    pub hostname: String,
}

impl NamespaceHolder {
    /// `kinds` are unshare(1) options: "net", "ipc", "uts", "mount", "pid"...
    pub fn new(kinds: &[&str]) -> NamespaceHolder {
        let hostname = unique_name("conf-ns");
        let mut command = Command::new("unshare");
        for kind in kinds {
            command.arg(format!("--{kind}"));
        }
        let set_hostname = if kinds.contains(&"uts") {
            format!("hostname {hostname} && ")
        } else {
            String::new()
        };
        let mut child = command
            .args(["--", "/bin/sh", "-c"])
            .arg(format!("{set_hostname}echo ready && exec sleep 3600"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run unshare (util-linux)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read from unshare");
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unshare {kinds:?} failed");
        }
        NamespaceHolder { child, hostname }
    }

    /// `/proc/PID/ns/<kind>` of the holder (kind as in /proc: net, ipc, uts, mnt...).
    pub fn ns_path(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.child.id()))
    }
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes that still belong to a container: whose command line has `id` as an
/// argument (a runtime's own init before execve), or whose cwd or root is under `bundle`
/// (an init before pivot_root). Zombies have neither and are not counted.
pub fn processes_of(id: &str, bundle: &Path) -> Vec<String> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let dir = entry.path();
        let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let names_id = args.iter().any(|a| a == id);
        let in_bundle = ["cwd", "root"]
            .iter()
            .any(|link| fs::read_link(dir.join(link)).is_ok_and(|p| p.starts_with(bundle)));
        if names_id || in_bundle {
            found.push(format!("process {pid}: {}", args.join(" ")));
        }
    }
    found
}

/// Mount points in this mount namespace at or under `path` (/proc/self/mountinfo).
pub fn mounts_under(path: &Path) -> Vec<String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter(|line| {
            line.split(' ')
                .nth(4)
                .is_some_and(|mount_point| Path::new(mount_point).starts_with(path))
        })
        .map(|line| format!("mount: {line}"))
        .collect()
}

impl Container<'_> {
    /// [`Container::leftovers`] plus processes still running for it and mounts left
    /// under its bundle, each described in a line.
    pub fn everything_left(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .leftovers()
            .iter()
            .map(|p| format!("path: {}", p.display()))
            .collect();
        left.extend(processes_of(&self.id, self.bundle.path()));
        left.extend(mounts_under(self.bundle.path()));
        left
    }
}

/// A failed command explains itself: something on stderr, in one line.
pub fn assert_one_line_error(runtime: &Runtime, out: &Invocation) {
    let stderr = out.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !lines.is_empty(),
        "{}: failed without a word:\n{out}",
        runtime.name
    );
    assert_eq!(
        lines.len(),
        1,
        "{}: the error takes more than one line:\n{out}",
        runtime.name
    );
}

/// Once a container is deleted (or was never created): no state dir, cgroup, process
/// or mount is left for it ([`Container::everything_left`]); a killed process gets a
/// few seconds to be reaped.
pub fn assert_everything_gone(container: &Container) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = container.everything_left();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} left behind for {}:\n  {}",
            container.runtime.name,
            container.id,
            left.join("\n  ")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
