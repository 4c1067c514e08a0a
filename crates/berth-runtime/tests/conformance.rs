//! Conformance: each scenario builds a busybox bundle whose process is the static
//! `berth-checker` (tests/checker), derives from the config.json what the checker must
//! find inside the container, and runs it under runc AND berth-runtime; runc passing shows
//! that the expectation is right. Run as root:
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p berth-checker \
//!     --target x86_64-unknown-linux-gnu
//! cargo test -p berth-runtime --test conformance            # both runtimes
//! cargo test -p berth-runtime --test conformance runc       # one of them
//! cargo test -p berth-runtime --test conformance mounts::berth -- --nocapture
//! ```
//! (the checker is looked for in the target dir the tests run from: build both with the
//! same CARGO_TARGET_DIR, or set BERTH_CHECKER; BERTH_RUNTIME and BERTH_RUNC choose the
//! runtimes, see tests/common). `--nocapture` shows each check of a passing run; a failing
//! run's panic message shows the failed checks, the runtime's output and the expectations.
//!
//! Expectations follow runc's behaviour where the runtime spec leaves room (HOME from the
//! rootfs's /etc/passwd, umask 0022 by default, ambient capabilities raised only when
//! also inheritable and permitted, a runtime-configured `lo` only in a netns it created).

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::{Bundle, Container, Invocation, NamespaceHolder, Runtime, CHECKER_IN_ROOTFS};
use serde_json::{json, Value};

both!(
    default_spec,
    process_identity,
    rlimits_and_oom_score,
    mounts,
    devices,
    sysctl,
    joined_namespaces,
    host_namespaces,
    user_namespace,
    cgroup_namespace,
    create_start_delete,
    kill_running,
    spec_command,
);

// ---------------------------------------------------------------------------------------
// Scenarios

/// `runc spec` as it is (read-only root, new pid/net/ipc/uts/mount namespaces, masked
/// and read-only paths, three capabilities, no_new_privs), the checker as process.
fn default_spec(runtime: &Runtime) {
    let bundle = checker_bundle();
    run_checker(runtime, &bundle, &[]);
}

/// hostname and domainname, env (spaces, `=`, empty values), an argv with spaces, a cwd
/// the rootfs lacks (the runtime creates it), a non-root user with additional groups and
/// a umask, a writable root, ambient capabilities for that user, no no_new_privs.
fn process_identity(runtime: &Runtime) {
    let mut bundle = checker_bundle();
    let process = &mut bundle.config["process"];
    process["args"] = json!([CHECKER_IN_ROOTFS, "two words", "", "x=y"]);
    process["env"] = json!([
        "PATH=/bin",
        "CONF_SPACES=a b  c",
        "CONF_EQUALS=k=v=w",
        "CONF_EMPTY=",
    ]);
    process["cwd"] = json!("/work/sub-dir");
    process["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 2000], "umask": 0o027});
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    process["capabilities"]["inheritable"] = caps.clone();
    process["capabilities"]["ambient"] = caps;
    process["noNewPrivileges"] = json!(false);
    bundle.config["hostname"] = json!("conf-uts");
    bundle.config["domainname"] = json!("conf.example");
    bundle.config["root"]["readonly"] = json!(false);
    run_checker(runtime, &bundle, &[]);
}

/// rlimits (lowered soft limits, a soft limit raised to the hard one; never above this
/// process's hard limits: root here lacks CAP_SYS_RESOURCE) and oomScoreAdj (raised:
/// lowering it needs CAP_SYS_RESOURCE too).
fn rlimits_and_oom_score(runtime: &Runtime) {
    use nix::sys::resource::{getrlimit, Resource};
    let hard = |r: Resource| getrlimit(r).expect("getrlimit").1;
    let nofile = hard(Resource::RLIMIT_NOFILE).min(4096);
    let memlock = hard(Resource::RLIMIT_MEMLOCK);
    let rlimits = json!([
        {"type": "RLIMIT_NOFILE", "soft": nofile.min(512), "hard": nofile},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": hard(Resource::RLIMIT_CORE)},
        {"type": "RLIMIT_NPROC", "soft": hard(Resource::RLIMIT_NPROC).min(1000), "hard": hard(Resource::RLIMIT_NPROC)},
        {"type": "RLIMIT_MEMLOCK", "soft": memlock, "hard": memlock},
        {"type": "RLIMIT_MSGQUEUE", "soft": hard(Resource::RLIMIT_MSGQUEUE).min(4096), "hard": hard(Resource::RLIMIT_MSGQUEUE)},
    ]);
    let host_adj: i64 = read_trimmed("/proc/self/oom_score_adj")
        .parse()
        .expect("oom_score_adj");
    let mut bundle = checker_bundle();
    bundle.config["process"]["rlimits"] = rlimits;
    bundle.config["process"]["oomScoreAdj"] = json!((host_adj + 123).min(1000));
    run_checker(runtime, &bundle, &[]);
}

/// Extra mounts on a read-only root (their destinations must be created first): tmpfs
/// with size/mode and atime flags, bind read-only, bind with nosuid/nodev/noexec, a file
/// bind, rbind vs bind of a tree with a submount, shared and private propagation.
fn mounts(runtime: &Runtime) {
    let mut bundle = checker_bundle();
    let plain_src = bundle.host_path("plain-src");
    let tree_src = bundle.host_path("tree-src");
    let file_src = bundle.host_path("file-src");
    fs::create_dir_all(&plain_src).expect("create bind source");
    fs::write(plain_src.join("hello"), "hello\n").expect("write bind source file");
    fs::write(&file_src, "a file\n").expect("write file bind source");
    bundle.mount_tmpfs_on_host(&tree_src.join("sub"));
    let src = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let extra_mounts = json!([
        {"destination": "/conf/tmpfs", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "noexec", "noatime", "size=1m", "mode=700"]},
        {"destination": "/conf/deep/a/b/tmpfs", "type": "tmpfs", "source": "tmpfs",
         "options": ["suid", "dev", "exec", "strictatime", "mode=1777", "size=300k"]},
        {"destination": "/conf/bind-ro", "type": "bind", "source": src(&plain_src),
         "options": ["bind", "ro"]},
        {"destination": "/conf/bind-flags", "type": "bind", "source": src(&plain_src),
         "options": ["bind", "nosuid", "nodev", "noexec"]},
        {"destination": "/conf/file", "type": "bind", "source": src(&file_src),
         "options": ["bind", "ro"]},
        {"destination": "/conf/rbind", "type": "bind", "source": src(&tree_src),
         "options": ["rbind"]},
        {"destination": "/conf/bind", "type": "bind", "source": src(&tree_src),
         "options": ["bind"]},
        {"destination": "/conf/shared", "type": "bind", "source": src(&plain_src),
         "options": ["rbind", "rshared"]},
        {"destination": "/conf/private", "type": "bind", "source": src(&plain_src),
         "options": ["bind", "private"]},
    ]);
    let mounts = bundle.config["mounts"]
        .as_array_mut()
        .expect("mounts array");
    mounts.extend(extra_mounts.as_array().expect("array").iter().cloned());
    let extra = [
        "mount /conf/rbind/sub type=tmpfs".to_string(),
        "nomount /conf/bind/sub".to_string(),
    ];
    run_checker(runtime, &bundle, &extra);
}

/// linux.devices: char, block and fifo nodes with modes (created with umask 0: 0666 must
/// stay 0666), owners, and a destination whose directories do not exist yet.
fn devices(runtime: &Runtime) {
    let mut bundle = checker_bundle();
    bundle.config["linux"]["devices"] = json!([
        {"path": "/dev/conf-char", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 1000, "gid": 1000},
        {"path": "/dev/conf-block", "type": "b", "major": 7, "minor": 200, "fileMode": 0o640, "uid": 0, "gid": 6},
        {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o620, "uid": 0, "gid": 5},
        {"path": "/dev/conf/sub/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600, "uid": 0, "gid": 0},
    ]);
    run_checker(runtime, &bundle, &[]);
}

/// linux.sysctl in the container's own net and ipc namespaces; the host keeps its values.
fn sysctl(runtime: &Runtime) {
    let keys = [
        "net.ipv4.ip_forward",
        "kernel.shmmax",
        "net.ipv4.tcp_syncookies",
    ];
    let host_before: Vec<String> = keys.iter().map(|k| read_sysctl(k)).collect();
    let mut bundle = checker_bundle();
    let forward = if host_before[0] == "1" { "0" } else { "1" };
    let syncookies = if host_before[2] == "2" { "0" } else { "2" };
    bundle.config["linux"]["sysctl"] = json!({
        keys[0]: forward,
        keys[1]: "123456789",
        keys[2]: syncookies,
    });
    run_checker(runtime, &bundle, &[]);
    let host_after: Vec<String> = keys.iter().map(|k| read_sysctl(k)).collect();
    assert_eq!(
        host_before, host_after,
        "{}: a container sysctl changed the host's",
        runtime.name
    );
}

/// net, ipc and uts namespaces joined by path (a process holding them): the runtime must
/// not configure them (no hostname, `lo` left down).
fn joined_namespaces(runtime: &Runtime) {
    let holder = NamespaceHolder::new(&["net", "ipc", "uts"]);
    let mut bundle = checker_bundle();
    let namespaces = bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces");
    for ns in namespaces.iter_mut() {
        let proc_name = match ns["type"].as_str() {
            Some("network") => "net",
            Some("ipc") => "ipc",
            Some("uts") => "uts",
            _ => continue,
        };
        ns["path"] = json!(holder.ns_path(proc_name));
    }
    remove_key(&mut bundle.config, "hostname");
    let extra = [format!("hostname {}", holder.hostname)];
    run_checker(runtime, &bundle, &extra);
}

/// Only a mount namespace: pid, net, ipc, uts... stay the host's.
fn host_namespaces(runtime: &Runtime) {
    let mut bundle = checker_bundle();
    bundle.config["linux"]["namespaces"] = json!([{"type": "mount"}]);
    remove_key(&mut bundle.config, "hostname");
    run_checker(runtime, &bundle, &[]);
}

/// A user namespace with uid/gid mappings, rootfs owned by the mapped root; the default
/// devices are then bind mounts of the host's.
fn user_namespace(runtime: &Runtime) {
    const HOST_ID: u32 = 100_000;
    let mut bundle = checker_bundle();
    let linux = &mut bundle.config["linux"];
    linux["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
    bundle.install_checker(""); // so that chown reaches it; rewritten by run_checker
    bundle.chown_rootfs(HOST_ID, HOST_ID);
    run_checker(runtime, &bundle, &[]);
}

/// A new cgroup namespace.
fn cgroup_namespace(runtime: &Runtime) {
    let mut bundle = checker_bundle();
    bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "cgroup"}));
    run_checker(runtime, &bundle, &[]);
}

/// create → created (the process waits before the checker runs) → start → stopped;
/// a second start fails; delete removes everything.
fn create_start_delete(runtime: &Runtime) {
    let bundle = checker_bundle();
    let expect = prepare_checker(runtime, &bundle, &[]);
    let container = Container::new(runtime, &bundle);
    let created = container.create();
    created.assert_success();
    let state = container
        .state()
        .unwrap_or_else(|| panic!("{}: state after create failed", runtime.name));
    assert_eq!(
        state["status"], "created",
        "{}: state after create: {state}",
        runtime.name
    );
    assert_eq!(
        state["id"],
        container.id.as_str(),
        "{}: state id",
        runtime.name
    );
    assert!(
        state["pid"].as_u64().unwrap_or(0) > 0,
        "{}: state has no pid: {state}",
        runtime.name
    );
    assert_eq!(
        Path::new(state["bundle"].as_str().unwrap_or_default()),
        bundle.path(),
        "{}: state bundle",
        runtime.name
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        created.stdout(),
        "",
        "{}: the process ran before start:\n{created}",
        runtime.name
    );
    container.start().assert_success();
    container.wait_for_status("stopped", Duration::from_secs(20));
    container.start().assert_failure();
    assert_checker_passed(runtime, &created, false, &expect);
    container.delete().assert_success();
    assert!(
        container.state().is_none(),
        "{}: state after delete succeeded",
        runtime.name
    );
    assert_no_leftovers(&container);
}

/// A running container: state says running with the pid, kill KILL stops it,
/// delete cleans up.
fn kill_running(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(["/bin/sleep", "1000"]);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let state = container.wait_for_status("running", Duration::from_secs(10));
    let pid = state["pid"].as_u64().expect("running container has a pid");
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(
        comm.trim(),
        "sleep",
        "{}: state pid {pid} is not the container's process",
        runtime.name
    );
    container.delete().assert_failure(); // running: needs --force
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", Duration::from_secs(10));
    container.delete().assert_success();
    assert_no_leftovers(&container);
}

/// `spec` writes runc's default config (ociVersion and the hostname aside).
fn spec_command(runtime: &Runtime) {
    let mut ours = runtime.spec();
    let mut runc = Runtime::runc().spec();
    for key in ["ociVersion", "hostname"] {
        remove_key(&mut ours, key);
        remove_key(&mut runc, key);
    }
    let mut differences = Vec::new();
    json_differences("", &runc, &ours, &mut differences);
    assert!(
        differences.is_empty(),
        "{} spec differs from runc spec:\n  {}",
        runtime.name,
        differences.join("\n  ")
    );
}

/// Where `b` differs from `a`, as `path: a-value → b-value` lines.
fn json_differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let (va, vb) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                json_differences(&format!("{path}.{key}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                json_differences(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} → {b}")),
        _ => {}
    }
}

/// The checker's own test: under runc, each of these false expectations must fail
/// (one checker run per line, in one container whose pid 1 is a shell, with fd 7 left
/// open as a leak to find).
#[test]
fn checker_rejects_false_expectations() {
    let host_net = ns_inode("/proc/self/ns/net");
    let host_user = ns_inode("/proc/self/ns/user");
    let false_lines = [
        "pid 999".to_string(),
        "procs 1".into(),
        "argc 3".into(),
        "arg 0 /wrong".into(),
        "hostname wrong-host".into(),
        "domainname wrong.example".into(),
        "user 1 1".into(),
        "groups 5".into(),
        "umask 0077".into(),
        "env NOPE=1".into(),
        "env PATH=/wrong".into(),
        "env-only".into(),
        "cwd /tmp".into(),
        "fds 0 1 2".into(),
        "rlimit RLIMIT_NOFILE 1 1".into(),
        "mount /proc type=tmpfs".into(),
        "mount /dev flag=noexec".into(),
        "mount /dev noflag=nosuid".into(),
        "mount /dev/shm size=1024".into(),
        "mount /dev/shm mode=755".into(),
        "mount /dev/pts opt=gid=6".into(),
        "mount /dev/shm propagation=shared".into(),
        "mount /dev/shm ino=12345".into(),
        "mount /nonexistent type=tmpfs".into(),
        "nomount /proc".into(),
        "readonly-fs /dev/shm".into(),
        "masked /bin".into(),
        "readonly /dev/shm".into(),
        "dev /dev/null c 1 5 666 0 0".into(),
        "dev /dev/null b 1 3 666 0 0".into(),
        "dev /dev/null c 1 3 600 0 0".into(),
        "dev /dev/null c 1 3 666 1 0".into(),
        "symlink /dev/fd /wrong".into(),
        "exists /nope".into(),
        "absent /dev/null".into(),
        format!("ns net same {host_net}"),
        format!("ns user new {host_user}"),
        "netdevs eth0".into(),
        "loopback down".into(),
        "sysctl kernel.hostname wrong".into(),
        "oom_score_adj 999".into(),
        "no_new_privs 0".into(),
        "cap bounding 0x0".into(),
        "cap effective 0x1".into(),
        "idmap uid 0:1000:1".into(),
        "no-such-directive".into(),
    ];
    let mut bundle = checker_bundle();
    bundle.config["root"]["readonly"] = json!(false);
    bundle.config["process"]["args"] = json!([
        "/bin/sh",
        "-c",
        "for f in /.checker/false/*; do cp $f /.checker/expect; /.checker/checker 7</; echo \"# exit $?\"; done"
    ]);
    bundle.write_config();
    bundle.install_checker("");
    let dir = bundle.in_rootfs("/.checker/false");
    fs::create_dir_all(&dir).expect("create /.checker/false");
    for (i, line) in false_lines.iter().enumerate() {
        fs::write(dir.join(format!("{i:03}")), format!("{line}\n"))
            .expect("write false expectation");
    }
    let container = Container::new(&Runtime::runc(), &bundle);
    let out = container.run();
    out.assert_success();
    let stdout = out.stdout();
    let runs: Vec<&str> = stdout.split_inclusive("\n# exit ").collect();
    assert_eq!(
        runs.len(),
        false_lines.len() + 1,
        "one run per line:\n{out}"
    );
    let accepted: Vec<String> = false_lines
        .iter()
        .zip(&runs)
        .zip(&runs[1..])
        .filter(|((_, run), next)| {
            // each run is "<checks>\n# exit " and the next one starts with its status
            let failed_a_check = run.contains("\nnot ok ") || run.starts_with("not ok ");
            !failed_a_check || !next.starts_with('1')
        })
        .map(|((line, run), _)| format!("{line:?} gave:\n{run}"))
        .collect();
    assert!(
        accepted.is_empty(),
        "the checker accepted false expectations:\n{}",
        accepted.join("\n")
    );
    println!("{out}"); // shown with --nocapture
}

// ---------------------------------------------------------------------------------------
// Running the checker

/// A busybox bundle whose process is the checker.
fn checker_bundle() -> Bundle {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!([CHECKER_IN_ROOTFS]);
    bundle
}

/// Writes config.json, derives the expectations, installs checker and expectations.
fn prepare_checker(runtime: &Runtime, bundle: &Bundle, extra: &[String]) -> String {
    bundle.write_config();
    let mut expect = format!("# derived from {}/config.json\n", bundle.path().display());
    for line in expectations(bundle).iter().chain(extra) {
        if let Some(why) = known_gap(runtime, &bundle.config, line) {
            expect.push_str(&format!("# not checked for {}: {why}: ", runtime.name));
        }
        expect.push_str(line);
        expect.push('\n');
    }
    bundle.install_checker(&expect);
    expect
}

/// What the reference runtime is known not to do, so the line is not checked for it
/// (berth-runtime is still held to it).
fn known_gap(runtime: &Runtime, config: &Value, line: &str) -> Option<&'static str> {
    let runc = runtime.name == "runc";
    if runc && line.starts_with("domainname ") && config.get("domainname").is_some() {
        return Some("runc 1.1.5 ignores `domainname` (runc#3600, in 1.2)");
    }
    None
}

/// Runs the checker in the foreground (`run`), requires it to pass and the runtime to
/// leave nothing behind.
fn run_checker(runtime: &Runtime, bundle: &Bundle, extra: &[String]) {
    let expect = prepare_checker(runtime, bundle, extra);
    let container = Container::new(runtime, bundle);
    let out = container.run();
    assert_checker_passed(runtime, &out, true, &expect);
    println!("{out}"); // shown with --nocapture
    assert_no_leftovers(&container);
}

/// Panics unless the checker printed its summary and no `not ok` line (and, for `run`,
/// the runtime exited with the checker's status 0).
fn assert_checker_passed(runtime: &Runtime, out: &Invocation, check_status: bool, expect: &str) {
    let stdout = out.stdout();
    let summary = stdout.lines().find(|l| l.starts_with("# berth-checker:"));
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("not ok")).collect();
    if summary.is_some() && failed.is_empty() && (!check_status || out.success()) {
        return;
    }
    let why = match summary {
        None if !out.success() => format!(
            "the runtime failed ({}) before the checker finished",
            out.status
        ),
        None => "the checker did not run to its end".to_string(),
        Some(_) if failed.is_empty() => "the runtime failed".to_string(),
        Some(_) => format!("{} checks failed:\n  {}", failed.len(), failed.join("\n  ")),
    };
    panic!(
        "{}: {why}\n\n{out}\n--- expectations\n{expect}",
        runtime.name
    );
}

fn assert_no_leftovers(container: &Container) {
    let left = container.leftovers();
    assert!(
        left.is_empty(),
        "{} left behind after the container was gone: {left:?}",
        container.runtime.name
    );
}

// ---------------------------------------------------------------------------------------
// Expectations derived from a config.json (the checker's line format: tests/checker)

/// Namespaces by OCI type and /proc/self/ns name.
const NAMESPACES: [(&str, &str); 8] = [
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

/// How a container gets a namespace.
enum Namespace {
    Host,
    New,
    Joined(String),
}

fn namespace(config: &Value, oci_type: &str) -> Namespace {
    let found = config["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|ns| ns["type"] == oci_type);
    match found {
        None => Namespace::Host,
        Some(ns) => match ns["path"].as_str() {
            Some(path) if !path.is_empty() => Namespace::Joined(path.to_string()),
            _ => Namespace::New,
        },
    }
}

/// The default devices a runtime creates in a tmpfs /dev: (name, major, minor).
const DEFAULT_DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Capability names by number (linux/capability.h).
const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Everything the checker can verify of `bundle`'s config.json.
fn expectations(bundle: &Bundle) -> Vec<String> {
    let config = &bundle.config;
    let process = &config["process"];
    let mut out = Vec::new();
    let mut push = |line: String| out.push(line);

    // Before the checker opens anything: only stdio (CVE-2024-21626 leaked a host fd).
    push("fds 0 1 2".into());

    let args = process["args"].as_array().cloned().unwrap_or_default();
    push(format!("argc {}", args.len()));
    for (i, arg) in args.iter().enumerate() {
        push(format!("arg {i} {}", arg.as_str().unwrap_or_default()));
    }

    // Identity. runc: umask 0022 unless set; no supplementary group but additionalGids
    // (the rootfs has no /etc/group).
    let uid = process["user"]["uid"].as_u64().unwrap_or(0);
    let gid = process["user"]["gid"].as_u64().unwrap_or(0);
    push(format!("user {uid} {gid}"));
    let groups: BTreeSet<u64> = process["user"]["additionalGids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    push(format!(
        "groups{}",
        groups.iter().map(|g| format!(" {g}")).collect::<String>()
    ));
    let umask = process["user"]["umask"].as_u64().unwrap_or(0o022);
    push(format!("umask {umask:04o}"));

    // Environment: exactly process.env, plus HOME when it lacks one (runc: the user's
    // home in the rootfs's /etc/passwd, else "/").
    let env: Vec<String> = process["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(String::from))
        .collect();
    for entry in &env {
        push(format!("env {entry}"));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        push(format!(
            "env HOME={}",
            passwd_home(&bundle.in_rootfs("/etc/passwd"), uid)
        ));
    }
    push("env-only".into());
    push(format!("cwd {}", process["cwd"].as_str().unwrap_or("/")));

    for rlimit in process["rlimits"].as_array().into_iter().flatten() {
        let value = |v: &Value| match v.as_u64() {
            Some(u64::MAX) | None => "unlimited".to_string(),
            Some(n) => n.to_string(),
        };
        push(format!(
            "rlimit {} {} {}",
            rlimit["type"].as_str().unwrap_or_default(),
            value(&rlimit["soft"]),
            value(&rlimit["hard"])
        ));
    }
    if let Some(adj) = process["oomScoreAdj"].as_i64() {
        push(format!("oom_score_adj {adj}"));
    }
    let no_new_privs = process["noNewPrivileges"].as_bool().unwrap_or(false);
    push(format!("no_new_privs {}", u8::from(no_new_privs)));
    for (set, mask) in expected_capabilities(process) {
        push(format!("cap {set} {mask:#x}"));
    }

    // Namespaces, compared with this process's (the runtime's) own.
    for (oci_type, proc_name) in NAMESPACES {
        let host = ns_inode(&format!("/proc/self/ns/{proc_name}"));
        match namespace(config, oci_type) {
            Namespace::Host => push(format!("ns {proc_name} same {host}")),
            Namespace::New => push(format!("ns {proc_name} new {host}")),
            Namespace::Joined(path) => push(format!("ns {proc_name} same {}", ns_inode(&path))),
        }
    }
    let userns = !matches!(namespace(config, "user"), Namespace::Host);
    if userns {
        for (kind, key) in [("uid", "uidMappings"), ("gid", "gidMappings")] {
            let ranges: Vec<String> = config["linux"][key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| format!("{}:{}:{}", m["containerID"], m["hostID"], m["size"]))
                .collect();
            push(format!("idmap {kind} {}", ranges.join(",")));
        }
    }
    if let Namespace::New = namespace(config, "pid") {
        push("pid 1".into());
        push("procs 1".into()); // the checker alone: no runtime process visible
    }
    match namespace(config, "network") {
        // runc brings up lo in a netns it creates, and touches no joined one.
        Namespace::New => push("netdevs lo\nloopback up".into()),
        Namespace::Joined(_) => push("netdevs lo\nloopback down".into()),
        Namespace::Host => {}
    }
    let hostname = match (namespace(config, "uts"), config["hostname"].as_str()) {
        (Namespace::Joined(_), _) => None, // the holder's: the scenario says
        (_, Some(name)) => Some(name.to_string()),
        (_, None) => Some(read_trimmed("/proc/sys/kernel/hostname")),
    };
    if let Some(hostname) = hostname {
        push(format!("hostname {hostname}"));
    }
    let domainname = config["domainname"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| read_trimmed("/proc/sys/kernel/domainname"));
    push(format!("domainname {domainname}"));
    if let Some(sysctl) = config["linux"]["sysctl"].as_object() {
        for (key, value) in sysctl {
            push(format!(
                "sysctl {key} {}",
                value.as_str().unwrap_or_default()
            ));
        }
    }

    // The root and the mounts.
    let readonly_root = config["root"]["readonly"].as_bool().unwrap_or(false);
    push(format!(
        "mount / flag={}",
        if readonly_root { "ro" } else { "rw" }
    ));
    if readonly_root {
        push("readonly-fs /".into());
    }
    let mounts = config["mounts"].as_array().cloned().unwrap_or_default();
    for mount in &mounts {
        out.extend(mount_expectations(mount, config));
    }
    let mut push = |line: String| out.push(line);
    for path in config["linux"]["maskedPaths"]
        .as_array()
        .into_iter()
        .flatten()
    {
        push(format!("masked {}", path.as_str().unwrap_or_default()));
    }
    for path in config["linux"]["readonlyPaths"]
        .as_array()
        .into_iter()
        .flatten()
    {
        push(format!("readonly {}", path.as_str().unwrap_or_default()));
    }

    // /dev: when it is a tmpfs the runtime fills it (in a user namespace, by bind
    // mounting the host's nodes: their owner is then unmapped).
    let dev_is_tmpfs = mounts
        .iter()
        .any(|m| m["destination"] == "/dev" && m["type"] == "tmpfs");
    if dev_is_tmpfs {
        for (name, major, minor) in DEFAULT_DEVICES {
            let path = format!("/dev/{name}");
            // usable despite linux.resources.devices denying all: runc allows its
            // default devices in the devices cgroup (/dev/tty: no controlling terminal)
            if name != "tty" && may_read_write(0o666, 0, 0, uid, gid, &groups) {
                push(format!("open-rw {path}"));
            }
            if userns {
                let mode = fs::metadata(&path)
                    .map(|m| m.mode() & 0o7777)
                    .unwrap_or(0o666);
                push(format!("dev {path} c {major} {minor} {mode:o} - -"));
            } else {
                push(format!("dev {path} c {major} {minor} 666 0 0"));
            }
        }
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            push(format!("symlink /dev/{link} {target}"));
        }
        if !process["terminal"].as_bool().unwrap_or(false) {
            push("absent /dev/console".into());
        }
    }
    for device in config["linux"]["devices"].as_array().into_iter().flatten() {
        let field = |key: &str| {
            device[key]
                .as_u64()
                .map_or("-".to_string(), |n| n.to_string())
        };
        let kind = device["type"].as_str().unwrap_or("-");
        let (major, minor) = if kind == "p" {
            ("-".to_string(), "-".to_string())
        } else {
            (field("major"), field("minor"))
        };
        let mode = device["fileMode"]
            .as_u64()
            .map_or("-".to_string(), |m| format!("{:o}", m & 0o7777));
        // a char device of the config is allowed in the devices cgroup like the defaults
        let (owner, group) = (
            device["uid"].as_u64().unwrap_or(0),
            device["gid"].as_u64().unwrap_or(0),
        );
        let file_mode = device["fileMode"].as_u64().unwrap_or(0o666);
        if kind == "c" && may_read_write(file_mode, owner, group, uid, gid, &groups) {
            push(format!(
                "open-rw {}",
                device["path"].as_str().unwrap_or_default()
            ));
        }
        push(format!(
            "dev {} {kind} {major} {minor} {mode} {} {}",
            device["path"].as_str().unwrap_or_default(),
            field("uid"),
            field("gid")
        ));
    }
    out.into_iter()
        .flat_map(|l| l.lines().map(String::from).collect::<Vec<_>>())
        .collect()
}

/// What the checker must find for one entry of `mounts`.
fn mount_expectations(mount: &Value, config: &Value) -> Vec<String> {
    let dest = mount["destination"].as_str().unwrap_or_default();
    let fstype = mount["type"].as_str().unwrap_or_default();
    let options: Vec<&str> = mount["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let is_bind = options.iter().any(|o| *o == "bind" || *o == "rbind");
    if fstype == "cgroup" || fstype == "cgroup2" {
        // The cgroup mount's shape is the cgroups issue's (a tmpfs of ro binds on v1).
        return vec![format!("mount {dest} type=cgroup|cgroup2|tmpfs")];
    }
    let mut tokens = Vec::new();
    if !is_bind {
        tokens.push(format!("type={fstype}"));
    }
    if !options.iter().any(|o| *o == "ro" || *o == "rw") {
        tokens.push("flag=rw".to_string());
    }
    for option in &options {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        match (key, fstype) {
            (
                "ro" | "rw" | "nosuid" | "nodev" | "noexec" | "noatime" | "relatime" | "nodiratime",
                _,
            ) => tokens.push(format!("flag={key}")),
            ("suid" | "dev" | "exec", _) => tokens.push(format!("noflag=no{key}")),
            ("strictatime", _) => {
                tokens.extend(["noflag=relatime".into(), "noflag=noatime".into()])
            }
            ("private" | "rprivate", _) => tokens.push("propagation=private".into()),
            ("shared" | "rshared", _) => tokens.push("propagation=shared".into()),
            ("slave" | "rslave", _) => tokens.push("propagation=slave".into()),
            ("unbindable" | "runbindable", _) => tokens.push("propagation=unbindable".into()),
            ("size", "tmpfs") => tokens.push(format!("size={}", tmpfs_size(value))),
            ("mode", "tmpfs") => tokens.push(format!("mode={value}")),
            // devpts shows these as %03o / %u
            ("mode" | "ptmxmode", "devpts") => {
                let mode = u32::from_str_radix(value, 8).expect("octal devpts mode");
                tokens.push(format!("opt={key}={mode:03o}"))
            }
            // shown as the host's id: devpts prints it in the initial user namespace
            ("gid" | "uid", "devpts") => {
                let id = value.parse().expect("devpts uid/gid");
                let map = if key == "uid" {
                    "uidMappings"
                } else {
                    "gidMappings"
                };
                tokens.push(format!("opt={key}={}", host_id(config, map, id)))
            }
            _ => {}
        }
    }
    let mut lines = Vec::new();
    if is_bind {
        let source = mount["source"].as_str().unwrap_or_default();
        let meta = fs::metadata(source).unwrap_or_else(|err| panic!("bind source {source}: {err}"));
        tokens.push(format!("ino={}", meta.ino()));
        if options.contains(&"ro") && meta.is_dir() {
            lines.push(format!("readonly-fs {dest}"));
        }
    }
    lines.insert(0, format!("mount {dest} {}", tokens.join(" ")));
    lines
}

/// A tmpfs `size=` option in bytes as the kernel keeps it: rounded up to pages.
fn tmpfs_size(value: &str) -> u64 {
    let (digits, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: u64 = digits.parse().expect("tmpfs size number");
    let bytes = match unit {
        "" => n,
        "k" | "K" => n << 10,
        "m" | "M" => n << 20,
        "g" | "G" => n << 30,
        _ => panic!("tmpfs size {value}: unit not handled by the harness"),
    };
    bytes.div_ceil(4096) * 4096
}

/// The sets /proc/self/status shows after the runtime set process.capabilities and
/// exec'd a binary without file capabilities (capabilities(7), "Transformation of
/// capabilities during execve()"):
/// - a capability enters the ambient set only if it is permitted and inheritable
///   (PR_CAP_AMBIENT_RAISE fails otherwise; runc ignores that failure);
/// - as uid 0 the binary counts as fully capable: P' = I | bounding, clamped to the old
///   permitted set under no_new_privs; E' = P';
/// - as another uid: P' = E' = ambient.
fn expected_capabilities(process: &Value) -> Vec<(&'static str, u64)> {
    let set = |name: &str| -> u64 {
        process["capabilities"][name]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|cap| {
                let bit = CAPS
                    .iter()
                    .position(|c| *c == cap)
                    .unwrap_or_else(|| panic!("unknown capability {cap}"));
                1u64 << bit
            })
            .fold(0, |a, b| a | b)
    };
    let (bounding, permitted, inheritable) =
        (set("bounding"), set("permitted"), set("inheritable"));
    let ambient = set("ambient") & permitted & inheritable;
    let uid = process["user"]["uid"].as_u64().unwrap_or(0);
    let no_new_privs = process["noNewPrivileges"].as_bool().unwrap_or(false);
    let after_exec = if uid == 0 {
        let mut p = inheritable | bounding;
        if no_new_privs {
            p &= permitted;
        }
        p | ambient
    } else {
        ambient
    };
    vec![
        ("bounding", bounding),
        ("inheritable", inheritable),
        ("ambient", ambient),
        ("permitted", after_exec),
        ("effective", after_exec),
    ]
}

/// The host id of container id `id` under `linux.<map>` (itself without a user namespace).
fn host_id(config: &Value, map: &str, id: u64) -> u64 {
    if let Namespace::Host = namespace(config, "user") {
        return id;
    }
    config["linux"][map]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|m| {
            let (inside, outside, size) = (
                m["containerID"].as_u64()?,
                m["hostID"].as_u64()?,
                m["size"].as_u64()?,
            );
            (inside <= id && id < inside + size).then(|| outside + id - inside)
        })
        .unwrap_or(65534) // unmapped: the overflow id
}

/// Whether a process of `uid`/`gid`/`groups` without CAP_DAC_OVERRIDE may open a file
/// of `mode`, `owner`, `group` read-write.
fn may_read_write(
    mode: u64,
    owner: u64,
    group: u64,
    uid: u64,
    gid: u64,
    groups: &BTreeSet<u64>,
) -> bool {
    let bits = if uid == owner {
        mode >> 6
    } else if gid == group || groups.contains(&group) {
        mode >> 3
    } else {
        mode
    };
    bits & 0o6 == 0o6
}

/// `uid`'s home in a passwd file, or "/".
fn passwd_home(passwd: &Path, uid: u64) -> String {
    fs::read_to_string(passwd)
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2)?.parse::<u64>().ok()? == uid)
                .then(|| fields.get(5).map(|h| h.to_string()))?
        })
        .unwrap_or_else(|| "/".to_string())
}

fn ns_inode(path: &str) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|err| panic!("stat {path}: {err}"))
        .ino()
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {path}: {err}"))
        .trim_end_matches('\n')
        .to_string()
}

fn read_sysctl(key: &str) -> String {
    read_trimmed(&format!("/proc/sys/{}", key.replace('.', "/")))
}

fn remove_key(value: &mut Value, key: &str) {
    if let Some(object) = value.as_object_mut() {
        object.remove(key);
    }
}
