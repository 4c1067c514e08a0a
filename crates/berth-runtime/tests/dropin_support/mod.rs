//! Scaffolding for the drop-in tests (`tests/dropin.rs`): private containerd and
//! dockerd daemons, a locally made busybox image, and a logging wrapper around the
//! runtime under test.
//!
//! Isolation. Each daemon runs as PID 1 of its own PID namespace and in a private
//! mount namespace with a fresh tmpfs on `/run`:
//! - containerd 1.6 puts shim sockets in `/run/containerd/s` whatever its config says,
//!   and dockerd looks for a system containerd at `/run/containerd/containerd.sock`;
//!   the private `/run` keeps both away from the host's `/run`;
//! - every mount a daemon, shim or runtime makes (overlay snapshots, container
//!   rootfs) lives in that namespace and disappears with it;
//! - stopping the daemon (SIGTERM, then SIGKILL) ends the namespace's PID 1, so the
//!   kernel kills every shim and container left in it: nothing survives a failed test.
//!
//! What remains on the host is files under the scratch directory and the cgroups the
//! runtime made (`/<tag>/<id>` in every hierarchy): `Scratch`'s `Drop` unmounts
//! anything still mounted under the directory, removes those cgroups and the directory
//! (kept for a post-mortem when `BERTH_DROPIN_KEEP` is set).
//!
//! Nothing here touches the network: images are built from /bin/busybox and imported
//! from a tar file; dockerd runs with `--bridge=none --iptables=false`.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

pub const RUNC: &str = "/usr/sbin/runc";
pub const CONTAINERD: &str = "/usr/bin/containerd";
pub const CTR: &str = "/usr/bin/ctr";
pub const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";
pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// The client from the same docker.io package as the daemon (API 1.41); a newer
/// client elsewhere on PATH would need API negotiation.
pub const DOCKER: &str = "/usr/bin/docker";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The runtime under test for the berth variants: `$BERTH_RUNTIME`, else the binary
/// Cargo built together with these tests (never a stale one).
pub fn berth_runtime() -> PathBuf {
    match std::env::var_os("BERTH_RUNTIME") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime")),
    }
}

/// Fails the test (never skips) unless we are root and every tool is present.
pub fn require(tools: &[&str]) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the drop-in tests must run as root"
    );
    for tool in tools {
        let found = if tool.contains('/') {
            is_executable(Path::new(tool))
        } else {
            PATH.split(':')
                .any(|d| is_executable(&Path::new(d).join(tool)))
        };
        assert!(
            found,
            "missing {tool}: apt-get install -y containerd docker.io runc busybox-static \
             util-linux coreutils tar (berth-runtime: cargo build --release -p berth-runtime, \
             or set BERTH_RUNTIME)"
        );
    }
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| is_executable(Path::new(p)))
        .expect("missing busybox: apt-get install -y busybox-static")
}

// ------------------------------------------------------------------ commands

/// The result of one command, with everything needed to explain a failure.
pub struct Run {
    pub what: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Panics with the command, status and output unless it succeeded.
    pub fn expect_ok(self, ctx: &str) -> Self {
        assert!(self.ok(), "{ctx}: {}", self.describe());
        self
    }

    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "TIMED OUT (killed)".to_string(),
        };
        format!(
            "`{}` -> {status}\n--- stdout\n{}\n--- stderr\n{}",
            self.what, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion or until `timeout`, then kills it. Output goes to files,
/// not pipes, so a grandchild that keeps a pipe open cannot hang the test.
pub fn run(mut cmd: Command, scratch: &Path, timeout: Duration) -> Run {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let out_path = scratch.join(format!("cmd-{n}.out"));
    let err_path = scratch.join(format!("cmd-{n}.err"));
    let what = format!("{cmd:?}").replace('"', "");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("create stdout file"))
        .stderr(fs::File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &Path| {
        let mut s = String::new();
        let _ = fs::File::open(p).and_then(|mut f| f.read_to_string(&mut s));
        let _ = fs::remove_file(p);
        s
    };
    Run {
        what,
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(100));
    }
}

// ------------------------------------------------------------------ scratch

/// A unique tag and directory for one test; cleans up on drop, also after a panic.
/// Declare daemons *after* it so they are dropped (stopped) first.
pub struct Scratch {
    /// `berth-dropin-<pid>-<n>`: image name, containerd namespace, cgroup parent.
    pub tag: String,
    pub dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
}

impl Scratch {
    pub fn new(what: &str) -> Self {
        let tag = format!(
            "berth-dropin-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bd-{what}-"))
            .tempdir_in("/tmp")
            .expect("create scratch dir");
        let dir = tmp.path().to_path_buf();
        // Shims put files such as runc-process*.json and pty sockets in $TMPDIR.
        fs::create_dir(dir.join("tmp")).expect("create scratch tmp");
        Scratch {
            tag,
            dir,
            tmp: Some(tmp),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_under(&self.dir);
        remove_cgroups(&self.tag);
        // BERTH_DROPIN_KEEP=1 keeps the directory (daemon logs, runtime calls, the
        // bundles' config.json) for a post-mortem; mounts and cgroups are gone anyway.
        if std::env::var_os("BERTH_DROPIN_KEEP").is_some() {
            if let Some(tmp) = self.tmp.take() {
                eprintln!("kept {}", tmp.keep().display());
            }
        }
    }
}

/// Lazily unmounts every mount point at or below `dir`, deepest first. Normally there
/// is none: the daemons mount only inside their private namespace.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        eprintln!("cleanup: unmounting leftover {p}");
        if let Err(e) = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("cleanup: umount {p}: {e}");
        }
    }
}

/// Every cgroup directory (up to three levels deep in each hierarchy) whose name starts
/// with `tag`, with its descendants, children before parents.
pub fn find_cgroups(tag: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, tag: &str, inside: bool, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let hit = inside || e.file_name().to_string_lossy().starts_with(tag);
            if hit || depth < 3 {
                walk(&path, depth + 1, tag, hit, out);
            }
            if hit {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(CGROUP_ROOT), 0, tag, false, &mut out);
    out
}

/// Removes the cgroups `find_cgroups` names; one that still has processes is reported.
pub fn remove_cgroups(tag: &str) {
    for cg in find_cgroups(tag) {
        if let Err(e) = fs::remove_dir(&cg) {
            eprintln!("cleanup: rmdir {}: {e}", cg.display());
        }
    }
}

// ------------------------------------------------------------------ runtime wrapper

/// A script that stands in for the runtime: it records each command line the shim
/// runs (with the exit code and, on failure, the tail of the runtime's `--log` file),
/// keeps copies of the bundle's config.json and of `exec --process` files, then runs
/// the real runtime.
pub struct Wrapper {
    pub path: PathBuf,
    pub log: PathBuf,
}

impl Wrapper {
    pub fn new(scratch: &Scratch, real: &Path) -> Self {
        let dir = scratch.path("runtime-calls");
        fs::create_dir_all(&dir).expect("create runtime-calls dir");
        let log = dir.join("calls.log");
        let path = scratch.path("runtime-wrapper");
        let script = format!(
            r#"#!/bin/bash
# Drop-in test wrapper: log how the runtime is called, then call it.
real='{real}'
dir='{dir}'
line="$(date +%T.%N)$(printf ' %q' "$@")"
prev= logfile=
for a in "$@"; do
  case $prev in
    --bundle) cp "$a/config.json" "$dir/config-${{a##*/}}.json" 2>/dev/null ;;
    --process) cp "$a" "$dir/process-$(date +%s%N).json" 2>/dev/null ;;
    --log) logfile=$a ;;
  esac
  prev=$a
done
"$real" "$@"
rc=$?
echo "$line => rc=$rc" >> "$dir/calls.log"
if [ $rc -ne 0 ] && [ -n "$logfile" ] && [ -f "$logfile" ]; then
  tail -n 3 "$logfile" | sed 's/^/    log: /' >> "$dir/calls.log"
fi
exit $rc
"#,
            real = real.display(),
            dir = dir.display(),
        );
        fs::write(&path, script).expect("write runtime wrapper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
        Wrapper { path, log }
    }

    pub fn calls(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics unless the shim ran the runtime's `subcommand` successfully at least once:
    /// proof that the runtime under test, not some default, did the work.
    pub fn assert_called(&self, subcommand: &str) {
        let calls = self.calls();
        let hit = calls
            .lines()
            .any(|l| l.contains(&format!(" {subcommand} ")) && l.ends_with("=> rc=0"));
        assert!(
            hit,
            "the runtime wrapper never ran a successful `{subcommand}`; calls:\n{calls}"
        );
    }
}

// ------------------------------------------------------------------ image

/// Writes a busybox image tar that both `ctr images import` and `docker load` accept:
/// an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) which containerd
/// reads, plus a docker-save `manifest.json` and `repositories` pointing at the same
/// blobs, which docker 20.10 reads. One uncompressed layer; every digest is computed.
/// The image is `<name>:latest` (containerd: `docker.io/library/<name>:latest`).
pub fn build_image(scratch: &Scratch, name: &str) -> PathBuf {
    let work = scratch.path("image");
    let rootfs = work.join("rootfs");
    for d in ["bin", "dev", "etc", "proc", "root", "sys", "tmp"] {
        fs::create_dir_all(rootfs.join(d)).expect("create rootfs dir");
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .expect("chmod rootfs tmp");
    fs::copy(busybox(), rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(busybox())
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            symlink("busybox", rootfs.join("bin").join(applet)).expect("symlink applet");
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("write passwd");
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("write group");

    let layout = work.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("create blobs dir");
    let layer_tmp = work.join("layer.tar");
    let tar = Command::new("tar")
        .args([
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--sort=name",
            "--mtime=@0",
            "-C",
        ])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer_tmp)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(tar.success(), "tar of the rootfs failed");
    let (layer_hex, layer_size) = add_blob_file(&blobs, &layer_tmp);

    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "berth drop-in test"}],
    });
    let (config_hex, config_size) = add_blob(&blobs, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_hex}"),
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_hex}"),
            "size": layer_size,
        }],
    });
    let (manifest_hex, manifest_size) = add_blob(&blobs, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_hex}"),
            "size": manifest_size,
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {
                "io.containerd.image.name": format!("docker.io/library/{name}:latest"),
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    });
    let write_json = |file: &str, v: &serde_json::Value| {
        fs::write(layout.join(file), v.to_string()).expect("write image json")
    };
    write_json("index.json", &index);
    write_json("oci-layout", &json!({"imageLayoutVersion": "1.0.0"}));
    write_json(
        "manifest.json",
        &json!([{
            "Config": format!("blobs/sha256/{config_hex}"),
            "RepoTags": [format!("{name}:latest")],
            "Layers": [format!("blobs/sha256/{layer_hex}")],
        }]),
    );
    write_json("repositories", &json!({ name: {"latest": layer_hex} }));

    let archive = scratch.path("image.tar");
    let tar = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args([
            "oci-layout",
            "index.json",
            "manifest.json",
            "repositories",
            "blobs",
        ])
        .status()
        .expect("run tar");
    assert!(tar.success(), "tar of the image layout failed");
    let _ = fs::remove_dir_all(&work);
    archive
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {} failed", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints a digest")
        .to_string()
}

fn add_blob_file(blobs: &Path, file: &Path) -> (String, u64) {
    let hex = sha256_hex(file);
    let size = fs::metadata(file).expect("stat blob").len();
    fs::rename(file, blobs.join(&hex)).expect("move blob");
    (hex, size)
}

fn add_blob(blobs: &Path, v: &serde_json::Value) -> (String, u64) {
    let tmp = blobs.join("incoming");
    fs::write(&tmp, v.to_string()).expect("write blob");
    add_blob_file(blobs, &tmp)
}

// ------------------------------------------------------------------ daemons

/// A daemon running as PID 1 of its own PID and mount namespaces (see the module doc).
pub struct Daemon {
    name: &'static str,
    unshare: Child,
    /// Host PID of the namespace's PID 1, i.e. the daemon.
    pid: Pid,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(scratch: &Scratch, name: &'static str, program: &str, args: &[String]) -> Self {
        let log = scratch.path(&format!("{name}.log"));
        let out = fs::File::create(&log).expect("create daemon log");
        let err = out.try_clone().expect("dup daemon log");
        // The tmpfs hides the host's /run from the daemon, its shims and runtimes only.
        let script = r#"mount -t tmpfs -o mode=0755 berth-dropin-run /run && exec "$0" "$@""#;
        let mut unshare = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--mount-proc",
                "--",
                "sh",
                "-c",
                script,
                program,
            ])
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("TMPDIR", scratch.path("tmp"))
            .env("HOME", scratch.path("tmp"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn unshare for {name}: {e}"));
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let mut pid = None;
        let found = wait_until(Duration::from_secs(5), || {
            pid = fs::read_to_string(&children)
                .ok()
                .and_then(|s| s.split_whitespace().next().map(str::to_owned))
                .and_then(|s| s.parse::<i32>().ok());
            pid.is_some()
        });
        if !found {
            let _ = unshare.kill();
            let _ = unshare.wait();
            panic!(
                "{name} did not start in its namespace; log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Daemon {
            name,
            unshare,
            pid: Pid::from_raw(pid.expect("found above")),
            log,
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.unshare.try_wait(), Ok(None))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until `ready` holds, failing early (with the daemon's log) if it exits.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let mut exited = false;
        let ok = wait_until(timeout, || {
            if !self.is_running() {
                exited = true;
                return true;
            }
            ready()
        });
        assert!(
            ok && !exited,
            "{} {} ; log:\n{}",
            self.name,
            if exited {
                "exited during startup"
            } else {
                "did not become ready in time"
            },
            self.log_tail(40)
        );
    }

    /// SIGTERM, a grace period, then SIGKILL. The signals go to the namespace's PID 1
    /// only while `unshare` has not reaped it, so the PID cannot have been reused.
    pub fn stop(&mut self) {
        for (signal, grace) in [
            (Signal::SIGTERM, Duration::from_secs(15)),
            (Signal::SIGKILL, Duration::from_secs(5)),
        ] {
            if !self.is_running() {
                return;
            }
            let _ = kill(self.pid, signal);
            if wait_until(grace, || !self.is_running()) {
                return;
            }
            eprintln!("{} did not stop on {signal}", self.name);
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private containerd: own root, state, sockets and opt dir; no CRI plugin.
pub struct Containerd {
    pub socket: PathBuf,
    pub daemon: Daemon,
}

impl Containerd {
    pub fn start(scratch: &Scratch) -> Self {
        let socket = scratch.path("containerd.sock");
        let config = scratch.path("containerd.toml");
        let p = |n: &str| scratch.path(n).display().to_string();
        fs::write(
            &config,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
                root = p("containerd-root"),
                state = p("containerd-state"),
                sock = socket.display(),
                opt = p("containerd-opt"),
            ),
        )
        .expect("write containerd config");
        let args = vec!["--config".to_string(), config.display().to_string()];
        let mut daemon = Daemon::spawn(scratch, "containerd", CONTAINERD, &args);
        let probe_dir = scratch.dir.clone();
        let sock = socket.clone();
        daemon.wait_ready(Duration::from_secs(20), || {
            let mut c = Command::new(CTR);
            c.arg("-a").arg(&sock).arg("version");
            run(c, &probe_dir, Duration::from_secs(5)).ok()
        });
        Containerd { socket, daemon }
    }
}

/// A private dockerd with its own data root, exec root, pidfile, socket, config file,
/// cgroup parent and managed containerd; no bridge, no iptables, no forwarding changes.
pub struct Dockerd {
    pub host: String,
    pub daemon: Daemon,
}

impl Dockerd {
    pub fn start(scratch: &Scratch, runtimes: &[(&str, &Path)]) -> Self {
        let socket = scratch.path("docker.sock");
        let config = scratch.path("daemon.json");
        fs::write(&config, "{}").expect("write daemon.json");
        let p = |n: &str| scratch.path(n).display().to_string();
        let mut args: Vec<String> = vec![
            "--config-file".into(),
            config.display().to_string(),
            "--data-root".into(),
            p("docker-data"),
            "--exec-root".into(),
            p("docker-exec"),
            "--pidfile".into(),
            p("docker.pid"),
            "-H".into(),
            format!("unix://{}", socket.display()),
            "--bridge=none".into(),
            "--iptables=false".into(),
            "--ip6tables=false".into(),
            "--ip-forward=false".into(),
            "--ip-masq=false".into(),
            "--userland-proxy=false".into(),
            "--shutdown-timeout=5".into(),
            format!("--cgroup-parent=/{}", scratch.tag),
        ];
        for (name, path) in runtimes {
            args.push("--add-runtime".into());
            args.push(format!("{name}={}", path.display()));
        }
        let mut daemon = Daemon::spawn(scratch, "dockerd", DOCKERD, &args);
        let host = format!("unix://{}", socket.display());
        let probe_dir = scratch.dir.clone();
        let h = host.clone();
        daemon.wait_ready(Duration::from_secs(40), || {
            let mut c = Command::new(DOCKER);
            c.args(["-H", &h, "version"]);
            run(c, &probe_dir, Duration::from_secs(5)).ok()
        });
        Dockerd { host, daemon }
    }
}
