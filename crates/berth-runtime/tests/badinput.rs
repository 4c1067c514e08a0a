//! Bad input: every mistake a caller can make with `create` gets one clear error line on
//! stderr (and, with `--log-format json --log FILE`, a `{"level":"error","msg","time"}`
//! line, what containerd's shim reports), a non-zero exit, and nothing left behind: no
//! state dir, no cgroup named after the id, no process, no mount under the bundle.
//! Each scenario runs against runc AND berth-runtime (`<scenario>::runc`,
//! `<scenario>::berth`). Run as root:
//!
//! ```text
//! cargo test --release -p berth-runtime --test badinput          # both runtimes
//! cargo test --release -p berth-runtime --test badinput ::berth  # one of them
//! ```

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    assert_everything_gone, assert_one_line_error, cgroup_dirs_named, mounts_under, processes_of,
    temp_dir, unique_name, Bundle, Container, Runtime,
};
use serde_json::{json, Value};

both!(
    malformed_config,
    missing_bundle,
    empty_args,
    relative_cwd,
    missing_bind_source,
    missing_namespace_path,
    bad_log_format,
    truncated_config,
    missing_config,
    missing_rootfs,
    unknown_namespace_type,
    invalid_container_id,
    duplicate_id,
    root_is_a_file,
    root_read_only,
    json_log_on_error,
    rlimit_above_hard_limit,
    missing_executable,
);

/// config.json that is not JSON.
fn malformed_config(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    fs::write(
        bundle.path().join("config.json"),
        "{ \"ociVersion\": \"1.0.2\", this is not json }",
    )
    .expect("write config.json");
    create_fails(runtime, &bundle);
}

/// A valid config.json cut in half (a writer that crashed).
fn truncated_config(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    let path = bundle.path().join("config.json");
    let text = fs::read_to_string(&path).expect("read config.json");
    fs::write(&path, &text[..text.len() / 2]).expect("truncate config.json");
    create_fails(runtime, &bundle);
}

/// No config.json at all.
fn missing_config(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    fs::remove_file(bundle.path().join("config.json")).expect("remove config.json");
    create_fails(runtime, &bundle);
}

/// root.path names a directory that does not exist.
fn missing_rootfs(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["root"]["path"] = json!("no-such-rootfs");
    bundle.write_config();
    let out = create_fails(runtime, &bundle);
    assert!(
        out.stderr.contains("no-such-rootfs"),
        "{}: the error does not name the rootfs:\n{}",
        runtime.name,
        out.shown
    );
}

/// A namespace type the spec does not know.
fn unknown_namespace_type(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "foo"}));
    bundle.write_config();
    let out = create_fails(runtime, &bundle);
    assert!(
        out.stderr.contains("foo"),
        "{}: the error does not name the namespace type:\n{}",
        runtime.name,
        out.shown
    );
}

/// An id that would escape the state root, or is empty-ish.
fn invalid_container_id(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    let container = Container::new(runtime, &bundle);
    let escape = format!("../{}", container.id);
    for id in [escape.as_str(), "a/b", ".."] {
        let out = container.invoke(&["create", "--bundle", path_str(bundle.path()), id]);
        out.assert_failure();
        assert_one_line_error(runtime, &out);
        let made = container.state_root().join(id);
        assert!(
            id == ".." || !made.exists(),
            "{}: create {id:?} made {}",
            runtime.name,
            made.display()
        );
    }
    // Nothing escaped the root: `--root R create ../X` must not make R/../X.
    let escaped = container.state_root().join(&escape);
    assert!(
        !escaped.exists(),
        "{}: create {escape:?} made {}",
        runtime.name,
        escaped.display()
    );
    assert_everything_gone(&container);
}

/// A second create with the same id fails and leaves the first container intact: still
/// created, then startable.
fn duplicate_id(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(["sh", "-c", "echo first-ran"]);
    bundle.write_config();
    let mut second = Bundle::busybox();
    second.config["process"]["args"] = json!(["sh", "-c", "echo second-ran"]);
    second.write_config();
    let container = Container::new(runtime, &bundle);
    let first = container.create();
    first.assert_success();
    let state = container.state().expect("state of the first container");
    let cgroups = cgroup_dirs_named(&container.id);

    let out = container.invoke(&["create", "--bundle", path_str(second.path()), &container.id]);
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert_eq!(out.stdout(), "", "{}: {out}", runtime.name);

    let after = container.state().expect("the first container survives");
    assert_eq!(after["status"], "created", "{}: {after}", runtime.name);
    assert_eq!(after["pid"], state["pid"], "{}: {after}", runtime.name);
    assert_eq!(
        after["bundle"], state["bundle"],
        "{}: {after}",
        runtime.name
    );
    assert_eq!(
        cgroup_dirs_named(&container.id),
        cgroups,
        "{}: the failed create changed the first container's cgroups",
        runtime.name
    );
    container.start().assert_success();
    container.wait_for_status("stopped", Duration::from_secs(20));
    assert_eq!(
        first.stdout(),
        "first-ran\n",
        "{}: the first container's process",
        runtime.name
    );
    container.delete().assert_success();
    assert_everything_gone(&container);
    assert!(
        mounts_under(second.path()).is_empty(),
        "{}: mounts left under the second bundle",
        runtime.name
    );
}

/// Two creates of one id at the same moment: exactly one wins, the other fails cleanly,
/// and the winner is a working container.
///
/// berth-runtime only: runc 1.1.5 fails it (the loser gets as far as the exec fifo,
/// "exec fifo .../exec.fifo already exists", tears down the cgroups it shares with the
/// winner and leaves an orphaned `runc init` in them), so it cannot validate the test.
#[test]
fn duplicate_id_race_berth() {
    duplicate_id_race(&Runtime::berth());
}

fn duplicate_id_race(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(["sh", "-c", "echo ran"]);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    for _ in 0..3 {
        let barrier = std::sync::Barrier::new(2);
        let (a, b) = std::thread::scope(|scope| {
            let create = || {
                barrier.wait();
                container.create()
            };
            let a = scope.spawn(create);
            let b = scope.spawn(create);
            (
                a.join().expect("first create thread"),
                b.join().expect("second create thread"),
            )
        });
        let (winner, loser) = match (a.success(), b.success()) {
            (true, false) => (a, b),
            (false, true) => (b, a),
            _ => panic!(
                "{}: two creates of one id: not exactly one succeeded:\n{a}\n{b}",
                runtime.name
            ),
        };
        assert_one_line_error(runtime, &loser);
        let state = container.state().expect("the winner's state");
        assert_eq!(state["status"], "created", "{}: {state}", runtime.name);
        container.start().assert_success();
        container.wait_for_status("stopped", Duration::from_secs(20));
        assert_eq!(winner.stdout(), "ran\n", "{}: {winner}", runtime.name);
        container.delete().assert_success();
        assert_everything_gone(&container);
    }
}

/// `--bundle` names a directory that does not exist.
fn missing_bundle(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    let container = Container::new(runtime, &bundle);
    let missing = bundle.host_path("no-such-bundle");
    let out = container.invoke(&["create", "--bundle", path_str(&missing), &container.id]);
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert_everything_gone(&container);
}

/// process.args is empty.
fn empty_args(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!([]);
    bundle.write_config();
    create_fails(runtime, &bundle);
}

/// process.cwd is relative.
fn relative_cwd(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["cwd"] = json!("tmp");
    bundle.write_config();
    create_fails(runtime, &bundle);
}

/// A bind mount whose source does not exist: nothing of the mounts made before it
/// stays.
fn missing_bind_source(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    let missing = bundle.host_path("no-such-source");
    bundle.config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({"destination": "/mnt", "type": "bind", "source": path_str(&missing), "options": ["rbind"]}));
    bundle.write_config();
    let out = create_fails(runtime, &bundle);
    assert!(
        out.stderr.contains("no-such-source"),
        "{}: the error does not name the source:\n{}",
        runtime.name,
        out.shown
    );
}

/// A namespace to join whose path does not exist.
fn missing_namespace_path(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    let missing = bundle.host_path("no-such-netns");
    for ns in bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
    {
        if ns["type"] == "network" {
            ns["path"] = json!(path_str(&missing));
        }
    }
    bundle.write_config();
    let out = create_fails(runtime, &bundle);
    assert!(
        out.stderr.contains("no-such-netns"),
        "{}: the error does not name the namespace path:\n{}",
        runtime.name,
        out.shown
    );
}

/// `--log-format` other than text or json.
fn bad_log_format(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    let container = Container::new(runtime, &bundle);
    let out = container.invoke(&[
        "--log-format",
        "xml",
        "create",
        "--bundle",
        path_str(bundle.path()),
        &container.id,
    ]);
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert_everything_gone(&container);
}

/// `--systemd-cgroup`: berth-runtime has no systemd driver; `create` says so in one line
/// and leaves nothing, other commands accept the flag.
///
/// berth-runtime only: runc has the driver (and needs a running systemd for it).
#[test]
fn systemd_cgroup_flag_berth() {
    let runtime = Runtime::berth();
    let bundle = Bundle::busybox();
    let container = Container::new(&runtime, &bundle);
    let out = container.invoke(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        path_str(bundle.path()),
        &container.id,
    ]);
    out.assert_failure();
    assert_one_line_error(&runtime, &out);
    assert!(
        out.stderr().contains("systemd"),
        "the error does not mention systemd:\n{out}"
    );
    assert_everything_gone(&container);
    container
        .invoke(&["--systemd-cgroup", "list"])
        .assert_success();
}

/// `--root` is a regular file.
fn root_is_a_file(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    let dir = temp_dir("root-file");
    let root = dir.path().join("root");
    fs::write(&root, "not a directory").expect("write root file");
    create_fails_with_root(runtime, &bundle, &root);
    create_fails_with_root(runtime, &bundle, &root.join("below"));
    assert_eq!(
        fs::read_to_string(&root).expect("root file"),
        "not a directory",
        "{}: the root file changed",
        runtime.name
    );
}

/// `--root` is (or is under) a read-only mount.
fn root_read_only(runtime: &Runtime) {
    let bundle = Bundle::busybox();
    let dir = temp_dir("root-ro");
    let mount = ReadOnlyTmpfs::new(&dir.path().join("ro"));
    create_fails_with_root(runtime, &bundle, &mount.path);
    create_fails_with_root(runtime, &bundle, &mount.path.join("state"));
}

/// `--log FILE --log-format json`: the last line of FILE after a failed create is JSON
/// with level "error", the message and the time.
fn json_log_on_error(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["root"]["path"] = json!("no-such-rootfs");
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    let logs = temp_dir("log");
    let log = logs.path().join("log.json");
    let out = container.invoke(&[
        "--log",
        path_str(&log),
        "--log-format",
        "json",
        "create",
        "--bundle",
        path_str(bundle.path()),
        &container.id,
    ]);
    out.assert_failure();
    let text = fs::read_to_string(&log).unwrap_or_else(|e| {
        panic!(
            "{}: no log file {}: {e}\n{out}",
            runtime.name,
            log.display()
        )
    });
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{}: empty log file\n{out}", runtime.name));
    let line: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{}: last log line is not JSON ({e}): {last}", runtime.name));
    assert_eq!(line["level"], "error", "{}: {last}", runtime.name);
    assert!(
        line["msg"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-rootfs")),
        "{}: the msg does not say what failed: {last}",
        runtime.name
    );
    assert!(
        line["time"].as_str().is_some_and(|t| t.len() >= 20),
        "{}: no time: {last}",
        runtime.name
    );
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<Value>(l).is_ok(),
            "{}: a log line is not JSON: {l}",
            runtime.name
        );
    }
    assert_everything_gone(&container);
}

/// An rlimit above the runtime's own hard limit (root here lacks CAP_SYS_RESOURCE):
/// create fails saying so.
fn rlimit_above_hard_limit(runtime: &Runtime) {
    use nix::sys::resource::{getrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    assert!(hard < nr_open, "the hard RLIMIT_NOFILE is already nr_open");
    let above = (hard * 2).min(nr_open);
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": above, "hard": above}]);
    bundle.write_config();
    let out = create_fails(runtime, &bundle);
    assert!(
        out.stderr.to_lowercase().contains("rlimit"),
        "{}: the error does not mention the rlimit:\n{}",
        runtime.name,
        out.shown
    );
}

/// process.args[0] does not exist: create (not start) fails.
fn missing_executable(runtime: &Runtime) {
    for program in ["no-such-program", "/bin/no-such-program"] {
        let mut bundle = Bundle::busybox();
        bundle.config["process"]["args"] = json!([program]);
        bundle.write_config();
        let out = create_fails(runtime, &bundle);
        assert!(
            out.stderr.contains("no-such-program"),
            "{}: the error does not name the program\n{}",
            runtime.name,
            out.shown
        );
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// `create` of `bundle` fails with one error line, and leaves nothing; the error line
/// and the command's description (its output files go with the container).
fn create_fails(runtime: &Runtime, bundle: &Bundle) -> Failure {
    let container = Container::new(runtime, bundle);
    let out = container.create();
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    let failure = Failure {
        stderr: out.stderr(),
        shown: out.to_string(),
    };
    println!("{}", failure.shown); // shown with --nocapture
    assert!(
        container.state().is_none(),
        "{}: state of a failed create succeeds",
        runtime.name
    );
    assert_everything_gone(&container);
    failure
}

/// What a failed command printed.
struct Failure {
    stderr: String,
    /// The command, its status and output, for assertion messages.
    shown: String,
}

/// `--root <root> create` fails with one error line and leaves nothing; if it succeeds
/// after all, the container is force-deleted.
fn create_fails_with_root(runtime: &Runtime, bundle: &Bundle, root: &Path) {
    let guard = ForeignRoot {
        runtime: runtime.clone(),
        root: root.to_path_buf(),
        id: unique_name("bad"),
    };
    let out_dir = temp_dir("out");
    let out = runtime.invoke(
        out_dir.path(),
        &[
            "--root",
            path_str(root),
            "create",
            "--bundle",
            path_str(bundle.path()),
            &guard.id,
        ],
    );
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    // The root, or the ancestor that made it fail (runc names the file it cannot
    // mkdir under).
    assert!(
        root.ancestors()
            .take(2)
            .any(|p| out.stderr().contains(path_str(p))),
        "{}: the error does not name the root {}:\n{out}",
        runtime.name,
        root.display()
    );
    let mut left: Vec<String> = cgroup_dirs_named(&guard.id)
        .iter()
        .map(|p| format!("path: {}", p.display()))
        .collect();
    left.extend(processes_of(&guard.id, bundle.path()));
    left.extend(mounts_under(bundle.path()));
    assert!(
        left.is_empty(),
        "{} left behind:\n  {}",
        runtime.name,
        left.join("\n  ")
    );
}

/// A container id under a `--root` of the test's choosing: force-deleted on drop.
struct ForeignRoot {
    runtime: Runtime,
    root: PathBuf,
    id: String,
}

impl Drop for ForeignRoot {
    fn drop(&mut self) {
        let _ = self
            .runtime
            .command()
            .args([
                "--root",
                path_str(&self.root),
                "delete",
                "--force",
                &self.id,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        for dir in cgroup_dirs_named(&self.id).iter().rev() {
            if let Err(err) = fs::remove_dir(dir) {
                eprintln!("cleanup: rmdir {}: {err}", dir.display());
            }
        }
    }
}

/// A read-only tmpfs mounted at `path`; unmounted on drop.
struct ReadOnlyTmpfs {
    path: PathBuf,
}

impl ReadOnlyTmpfs {
    fn new(path: &Path) -> ReadOnlyTmpfs {
        use nix::mount::{mount, MsFlags};
        fs::create_dir_all(path).expect("create mount point");
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=64k"),
        )
        .unwrap_or_else(|e| panic!("mount read-only tmpfs on {}: {e}", path.display()));
        ReadOnlyTmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for ReadOnlyTmpfs {
    fn drop(&mut self) {
        use nix::mount::{umount2, MntFlags};
        if let Err(e) = umount2(&self.path, MntFlags::MNT_DETACH) {
            eprintln!("cleanup: umount {}: {e}", self.path.display());
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
