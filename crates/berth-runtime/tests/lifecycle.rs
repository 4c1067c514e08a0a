//! Lifecycle: the runc command line as containerd, dockerd and people use it — `run`
//! (foreground and `--detach`), create → start → kill → delete with `state` at each step,
//! `list`, `ps`, `pause`/`resume`, `exec`, terminals through `--console-socket`, hooks,
//! `spec` and `features`. Each scenario runs against runc AND berth-runtime
//! (`<scenario>::runc`, `<scenario>::berth`): runc passing shows the expectation is right.
//! Run as root:
//!
//! ```text
//! cargo test --release -p berth-runtime --test lifecycle            # both runtimes
//! cargo test --release -p berth-runtime --test lifecycle ::berth    # one of them
//! ```
//! (BERTH_RUNTIME and BERTH_RUNC choose the binaries, see tests/common.) Every container
//! has a unique id in a private `--root` and is deleted by its guard even when a test
//! fails; after each delete the test checks that no state dir, cgroup, process or mount
//! named after it remains.

#[macro_use]
mod common;

use std::fs;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_everything_gone, assert_one_line_error, temp_dir, Bundle, Container, Runtime};
use serde_json::{json, Value};

both!(
    run_foreground,
    run_passes_stdio,
    run_exit_code,
    run_killed_by_signal,
    run_detach_pid_file,
    create_start_kill_delete,
    created_kill_and_delete,
    run_forwards_signals,
    start_twice_and_never_created,
    delete_running_needs_force,
    kill_all,
    list_and_ps,
    pause_resume,
    exec_basics,
    exec_env_overrides_config,
    exec_process_json,
    exec_detach_pid_file,
    exec_stopped_fails,
    terminal_console_socket,
    exec_tty_console_socket,
    terminal_without_console_socket,
    hooks_order_and_state,
    hook_failure_cleans_up,
    hook_env_and_args,
    hook_missing_binary,
    hook_timeout,
    spec_writes_and_refuses_overwrite,
    spec_rootless,
    global_flags,
    features,
);

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// run

/// `run` in the foreground: the process is pid 1, `ps` sees only the container's
/// processes, the hostname is the config's, the network namespace has only `lo`, up.
fn run_foreground(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["hostname"] = json!("life-uts");
    bundle.config["process"]["args"] = json!([
        "sh",
        "-c",
        "echo pid=$$; echo host=$(hostname); ps -o pid,comm; echo links; ip -o link; echo end"
    ]);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    let out = container.run();
    out.assert_success();
    let stdout = out.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&"pid=1"),
        "{}: $$ is not 1:\n{out}",
        runtime.name
    );
    assert!(
        lines.contains(&"host=life-uts"),
        "{}: hostname is not the config's:\n{out}",
        runtime.name
    );
    // ps: a header, then exactly the shell (pid 1) and ps itself.
    let ps: Vec<&str> = section(&lines, "PID", "links");
    let commands: Vec<&str> = ps
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        commands,
        ["sh", "ps"],
        "{}: ps inside shows other processes than the container's:\n{out}",
        runtime.name
    );
    assert!(
        ps.first()
            .is_some_and(|l| l.split_whitespace().next() == Some("1")),
        "{}: the shell is not pid 1 in ps:\n{out}",
        runtime.name
    );
    let links = section(&lines, "links", "end");
    assert_eq!(
        links.len(),
        1,
        "{}: the network namespace has other links than lo:\n{out}",
        runtime.name
    );
    assert!(
        links[0].contains(" lo:") && links[0].contains("UP"),
        "{}: lo is missing or down: {:?}\n{out}",
        runtime.name,
        links[0]
    );
    assert_everything_gone(&container);
}

/// The lines strictly between the line starting with `from` and the line `to`.
fn section<'a>(lines: &[&'a str], from: &str, to: &str) -> Vec<&'a str> {
    lines
        .iter()
        .skip_while(|l| !l.trim_start().starts_with(from))
        .skip(1)
        .take_while(|l| **l != to)
        .copied()
        .collect()
}

/// A foreground `run` without a terminal hands its stdin, stdout and stderr to the
/// container's process.
fn run_passes_stdio(runtime: &Runtime) {
    let bundle = busybox_with(&[
        "sh",
        "-c",
        "read line; echo \"got $line\"; echo to-stderr >&2",
    ]);
    let container = Container::new(runtime, &bundle);
    let files = temp_dir("stdio");
    let stdin_path = files.path().join("stdin");
    fs::write(&stdin_path, "hello\n").expect("write stdin file");
    let (stdout_path, stderr_path) = (files.path().join("stdout"), files.path().join("stderr"));
    let mut child = runtime
        .command()
        .args([
            "--root",
            path_str(&container.state_root()),
            "run",
            "--bundle",
            path_str(bundle.path()),
            &container.id,
        ])
        .stdin(fs::File::open(&stdin_path).expect("open stdin file"))
        .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("create stderr file"))
        .spawn()
        .expect("spawn run");
    let status = common::wait_timeout(&mut child, WAIT).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{}: run did not finish", runtime.name)
    });
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "{}: {status}\n{stdout}\n{stderr}",
        runtime.name
    );
    assert_eq!(stdout, "got hello\n", "{}: stdout", runtime.name);
    assert_eq!(stderr, "to-stderr\n", "{}: stderr", runtime.name);
    assert_everything_gone(&container);
}

/// The container's exit code is the runtime's.
fn run_exit_code(runtime: &Runtime) {
    let bundle = busybox_with(&["sh", "-c", "exit 7"]);
    let container = Container::new(runtime, &bundle);
    let out = container.run();
    assert_eq!(out.status.code(), Some(7), "{}: {out}", runtime.name);
    assert_everything_gone(&container);
}

/// A process killed by signal N makes `run` exit 128+N.
fn run_killed_by_signal(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    let out = std::thread::scope(|scope| {
        let run = scope.spawn(|| container.run());
        container.wait_for_status("running", WAIT);
        container.kill("KILL").assert_success();
        run.join().expect("the run thread")
    });
    assert_eq!(
        out.status.code(),
        Some(128 + 9),
        "{}: run of a SIGKILLed process: {out}",
        runtime.name
    );
    assert_everything_gone(&container);
}

/// `run --detach --pid-file`: returns while the container runs; the pid file holds the
/// host pid of its init, alive, in another pid namespace.
fn run_detach_pid_file(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    let files = temp_dir("pidfile");
    let pid_file = files.path().join("init.pid");
    let started = Instant::now();
    let out = container.invoke(&[
        "run",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        "--bundle",
        path_str(bundle.path()),
        &container.id,
    ]);
    out.assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{}: run --detach took {:?}",
        runtime.name,
        started.elapsed()
    );
    let state = container
        .state()
        .unwrap_or_else(|| panic!("{}: no state after run --detach", runtime.name));
    assert_eq!(state["status"], "running", "{}: {state}", runtime.name);
    let pid = read_pid_file(&pid_file);
    assert_eq!(
        i64::from(pid),
        state["pid"].as_i64().unwrap_or(0),
        "{}: pid file and state disagree",
        runtime.name
    );
    assert!(is_alive(pid), "{}: pid {pid} is not alive", runtime.name);
    assert_ne!(
        ns_of(&format!("/proc/{pid}/ns/pid")),
        ns_of("/proc/self/ns/pid"),
        "{}: pid {pid} is in the host's pid namespace",
        runtime.name
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim(),
        "sleep",
        "{}: pid {pid} is not the container's process",
        runtime.name
    );
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

// ---------------------------------------------------------------------------------------
// create, start, kill, delete, state, list, ps, pause

/// create → created (pid > 0) → start → running → the default signal, TERM, SIGTERM
/// and 15 reach the process → KILL → stopped → delete → state fails and nothing is left.
fn create_start_kill_delete(runtime: &Runtime) {
    let bundle = busybox_with(&[
        "sh",
        "-c",
        "trap 'echo got-term' TERM; echo ready; while true; do sleep 1000 & wait $!; done",
    ]);
    let container = Container::new(runtime, &bundle);
    let created = container.create();
    created.assert_success();
    let state = container
        .state()
        .unwrap_or_else(|| panic!("{}: state after create failed", runtime.name));
    assert_eq!(state["status"], "created", "{}: {state}", runtime.name);
    assert_eq!(
        state["id"],
        container.id.as_str(),
        "{}: {state}",
        runtime.name
    );
    let pid = state["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "{}: created without a pid: {state}", runtime.name);
    assert!(state["ociVersion"].is_string(), "{}: {state}", runtime.name);
    assert_eq!(
        Path::new(state["bundle"].as_str().unwrap_or_default()),
        bundle.path(),
        "{}: {state}",
        runtime.name
    );
    assert_eq!(
        Path::new(state["rootfs"].as_str().unwrap_or_default()),
        bundle.rootfs(),
        "{}: {state}",
        runtime.name
    );
    assert!(
        state["created"]
            .as_str()
            .is_some_and(|t| t.len() >= 20 && t.as_bytes().get(10) == Some(&b'T')),
        "{}: created is not an RFC 3339 time: {state}",
        runtime.name
    );
    assert_eq!(
        created.stdout(),
        "",
        "{}: the process ran before start",
        runtime.name
    );

    container.start().assert_success();
    let state = container.wait_for_status("running", WAIT);
    assert_eq!(
        state["pid"].as_i64(),
        Some(pid),
        "{}: {state}",
        runtime.name
    );
    wait_until(runtime, "the process says ready", || {
        created.stdout().contains("ready")
    });

    // "" is `kill ID` without a signal: SIGTERM by default.
    for (n, signal) in ["", "TERM", "SIGTERM", "15"].iter().enumerate() {
        let out = if signal.is_empty() {
            container.invoke(&["kill", &container.id])
        } else {
            container.kill(signal)
        };
        out.assert_success();
        wait_until(
            runtime,
            &format!("kill {signal} reaches the process"),
            || created.stdout().matches("got-term").count() == n + 1,
        );
        let state = container.state().expect("state");
        assert_eq!(
            state["status"], "running",
            "{}: the trapped {signal} stopped the container",
            runtime.name
        );
    }
    let bad_signal = container.kill("NOSUCHSIG");
    bad_signal.assert_failure();
    assert_one_line_error(runtime, &bad_signal);
    container.kill("KILL").assert_success();
    let state = container.wait_for_status("stopped", WAIT);
    assert!(!is_alive(pid as i32), "{}: {state}", runtime.name);
    assert_eq!(
        state["pid"].as_i64().unwrap_or(0),
        0,
        "{}: a stopped container has a pid: {state}",
        runtime.name
    );
    let list = container.invoke(&["list", "--format", "json"]);
    list.assert_success();
    let list: Value = serde_json::from_str(&list.stdout()).expect("list json");
    assert_eq!(
        list[0]["status"], "stopped",
        "{}: list of a stopped container: {list}",
        runtime.name
    );
    let kill_stopped = container.kill("KILL");
    kill_stopped.assert_failure();
    assert_one_line_error(runtime, &kill_stopped);

    container.delete().assert_success();
    let out = container.invoke(&["state", &container.id]);
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert_everything_gone(&container);
}

/// A created (never started) container takes an exec, can be killed (→ stopped) and
/// deleted; a
/// created container is deleted without --force too. `delete` of an unknown id fails,
/// `delete --force` of one succeeds.
fn created_kill_and_delete(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    let created = container.create();
    created.assert_success();
    let pid = container.state().expect("state")["pid"]
        .as_i64()
        .expect("pid") as i32;
    // exec works in a created container too (its namespaces exist), and does not start it.
    let exec = container.invoke(&["exec", &container.id, "cat", "/proc/1/cmdline"]);
    exec.assert_success();
    assert!(
        !exec.stdout().starts_with("sleep"),
        "{}: pid 1 is already the user program before start: {exec}",
        runtime.name
    );
    assert_eq!(
        container.state().expect("state")["status"],
        "created",
        "{}: exec started the container",
        runtime.name
    );
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    wait_until(runtime, "the killed init is gone", || !is_alive(pid));
    container.delete().assert_success();
    assert_eq!(created.stdout(), "", "{}: the process ran", runtime.name);
    assert_everything_gone(&container);

    let second = Container::new(runtime, &bundle);
    second.create().assert_success();
    let pid = second.state().expect("state")["pid"].as_i64().expect("pid") as i32;
    second.delete().assert_success();
    assert!(
        second.state().is_none(),
        "{}: state after delete",
        runtime.name
    );
    wait_until(runtime, "the created init is gone", || !is_alive(pid));
    assert_everything_gone(&second);

    let unknown = second.invoke(&["delete", &format!("{}-never", second.id)]);
    unknown.assert_failure();
    assert_one_line_error(runtime, &unknown);
    second
        .invoke(&["delete", "--force", &format!("{}-never", second.id)])
        .assert_success();
}

/// SIGTERM to a foreground `run` is forwarded to the container's process (here a shell
/// that traps it and exits 42), and `run` exits with its code.
fn run_forwards_signals(runtime: &Runtime) {
    let bundle = busybox_with(&[
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo ready; while true; do sleep 1; done",
    ]);
    let container = Container::new(runtime, &bundle);
    let files = temp_dir("run-out");
    let stdout_path = files.path().join("stdout");
    let stdout = fs::File::create(&stdout_path).expect("create stdout file");
    let mut child = runtime
        .command()
        .args([
            "--root",
            path_str(&container.state_root()),
            "run",
            "--bundle",
            path_str(bundle.path()),
            &container.id,
        ])
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    let status = {
        let deadline = Instant::now() + WAIT;
        while !fs::read_to_string(&stdout_path)
            .unwrap_or_default()
            .contains("ready")
        {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{}: the container never said ready", runtime.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal the runtime");
        common::wait_timeout(&mut child, WAIT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}: run did not exit after SIGTERM", runtime.name)
        })
    };
    assert_eq!(
        status.code(),
        Some(42),
        "{}: run after SIGTERM: {status}",
        runtime.name
    );
    assert_everything_gone(&container);
}

/// `start` of a running container fails (and leaves it running); `start` of an id
/// never created fails.
fn start_twice_and_never_created(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    container.wait_for_status("running", WAIT);
    let again = container.start();
    again.assert_failure();
    assert_one_line_error(runtime, &again);
    container.wait_for_status("running", WAIT);

    let never = container.invoke(&["start", &format!("{}-never", container.id)]);
    never.assert_failure();
    assert_one_line_error(runtime, &never);

    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    let stopped = container.start();
    stopped.assert_failure();
    assert_one_line_error(runtime, &stopped);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// `delete` of a running container fails without --force and leaves it running;
/// `delete --force` kills and removes it.
fn delete_running_needs_force(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let state = container.wait_for_status("running", WAIT);
    let pid = state["pid"].as_i64().unwrap_or(0) as i32;
    let out = container.delete();
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    container.wait_for_status("running", WAIT);
    assert!(
        is_alive(pid),
        "{}: failed delete killed {pid}",
        runtime.name
    );

    container
        .invoke(&["delete", "--force", &container.id])
        .assert_success();
    assert!(
        container.state().is_none(),
        "{}: state after delete --force",
        runtime.name
    );
    wait_until(runtime, "the init is gone", || !is_alive(pid));
    assert_everything_gone(&container);
}

/// `kill --all KILL` kills every process of the container, not just its init.
fn kill_all(runtime: &Runtime) {
    let bundle = busybox_with(&["sh", "-c", "sleep 1000 & sleep 1001 & wait"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    container.wait_for_status("running", WAIT);
    let mut pids = Vec::new();
    wait_until(runtime, "both sleeps run", || {
        pids = container_pids(&container);
        pids.len() >= 3
    });
    container
        .invoke(&["kill", "--all", &container.id, "KILL"])
        .assert_success();
    container.wait_for_status("stopped", WAIT);
    wait_until(runtime, "every process is gone", || {
        pids.iter().all(|p| !is_alive(*p))
    });
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// `list` (table, --format json, -q) shows the container; `ps --format json` lists the
/// init pid and `ps` (table) a line for it.
fn list_and_ps(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let state = container.wait_for_status("running", WAIT);
    let pid = state["pid"].as_i64().expect("pid");

    let table = container.invoke(&["list"]);
    table.assert_success();
    let stdout = table.stdout();
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header.get(..3),
        Some(&["ID", "PID", "STATUS"][..]),
        "{}: list header:\n{table}",
        runtime.name
    );
    let row: Vec<&str> = lines
        .find(|l| l.split_whitespace().next() == Some(container.id.as_str()))
        .unwrap_or_else(|| {
            panic!(
                "{}: list does not show the container:\n{table}",
                runtime.name
            )
        })
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(1..3),
        Some(&[pid.to_string().as_str(), "running"][..]),
        "{}: list row:\n{table}",
        runtime.name
    );

    let json_out = container.invoke(&["list", "--format", "json"]);
    json_out.assert_success();
    let list: Value = serde_json::from_str(&json_out.stdout())
        .unwrap_or_else(|e| panic!("{}: list --format json: {e}\n{json_out}", runtime.name));
    let entry = list
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == container.id.as_str()))
        .unwrap_or_else(|| panic!("{}: not in list json:\n{json_out}", runtime.name));
    assert_eq!(entry["status"], "running", "{}: {entry}", runtime.name);
    assert_eq!(
        entry["pid"].as_i64(),
        Some(pid),
        "{}: {entry}",
        runtime.name
    );
    assert_eq!(
        Path::new(entry["bundle"].as_str().unwrap_or_default()),
        bundle.path(),
        "{}: {entry}",
        runtime.name
    );

    let quiet = container.invoke(&["list", "-q"]);
    quiet.assert_success();
    assert_eq!(
        quiet.stdout().trim(),
        container.id,
        "{}: list -q:\n{quiet}",
        runtime.name
    );

    assert!(
        container_pids(&container).contains(&(pid as i32)),
        "{}: ps --format json lacks the init {pid}",
        runtime.name
    );
    let ps = container.invoke(&["ps", &container.id]);
    ps.assert_success();
    let ps_out = ps.stdout();
    assert!(
        ps_out.lines().next().is_some_and(|h| h.contains("PID")),
        "{}: ps has no header:\n{ps}",
        runtime.name
    );
    assert!(
        ps_out
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().any(|w| w == pid.to_string()) && l.contains("sleep")),
        "{}: ps does not show the init:\n{ps}",
        runtime.name
    );

    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// `pause` freezes every process (status "paused", the processes frozen: they stop
/// making progress), `resume` thaws them.
fn pause_resume(runtime: &Runtime) {
    let mut bundle = busybox_with(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; usleep 10000; done",
    ]);
    bundle.config["root"]["readonly"] = json!(false);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let state = container.wait_for_status("running", WAIT);
    let pid = state["pid"].as_i64().expect("pid") as i32;
    let counter = bundle.in_rootfs("/tmp/count");
    let count = || -> u64 {
        fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_until(runtime, "the loop counts", || count() > 3);

    container.invoke(&["pause", &container.id]).assert_success();
    let state = container.state().expect("state");
    assert_eq!(state["status"], "paused", "{}: {state}", runtime.name);
    let frozen_state = proc_state(pid);
    assert!(
        matches!(frozen_state, Some('D' | 'T')),
        "{}: the paused init is in state {frozen_state:?}, not D or T",
        runtime.name
    );
    std::thread::sleep(Duration::from_millis(100));
    let before = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(),
        before,
        "{}: the loop kept counting while paused",
        runtime.name
    );
    let exec_paused = container.invoke(&["exec", &container.id, "true"]);
    exec_paused.assert_failure();
    assert_one_line_error(runtime, &exec_paused);
    let pause_again = container.invoke(&["pause", &container.id]);
    assert!(
        pause_again.success() || !pause_again.stderr().trim().is_empty(),
        "{}: a second pause failed silently:\n{pause_again}",
        runtime.name
    );

    container
        .invoke(&["resume", &container.id])
        .assert_success();
    let state = container.state().expect("state");
    assert_eq!(state["status"], "running", "{}: {state}", runtime.name);
    wait_until(runtime, "the loop counts again", || count() > before + 3);
    let resume_again = container.invoke(&["resume", &container.id]);
    resume_again.assert_failure();
    assert_one_line_error(runtime, &resume_again);

    // A paused container can be killed and deleted.
    container.invoke(&["pause", &container.id]).assert_success();
    container
        .invoke(&["delete", "--force", &container.id])
        .assert_success();
    wait_until(runtime, "the init is gone", || !is_alive(pid));
    assert_everything_gone(&container);
}

// ---------------------------------------------------------------------------------------
// exec

/// exec into a container whose init is `sleep 1000`: output and exit code, --env,
/// --cwd, --user, the container's pid namespace.
fn exec_basics(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let state = container.wait_for_status("running", WAIT);
    let init = state["pid"].as_i64().expect("pid");
    let id = container.id.as_str();

    let out = container.invoke(&["exec", id, "sh", "-c", "echo hi; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}: {out}", runtime.name);
    assert_eq!(out.stdout(), "hi\n", "{}: {out}", runtime.name);

    let out = container.invoke(&[
        "exec",
        "--env",
        "LIFE_VAR=a b",
        id,
        "sh",
        "-c",
        "echo \"$LIFE_VAR\"",
    ]);
    out.assert_success();
    assert_eq!(out.stdout(), "a b\n", "{}: --env: {out}", runtime.name);

    let out = container.invoke(&["exec", "--cwd", "/tmp", id, "pwd"]);
    out.assert_success();
    assert_eq!(out.stdout(), "/tmp\n", "{}: --cwd: {out}", runtime.name);
    let out = container.invoke(&["exec", "--cwd", "/no/such/dir", id, "pwd"]);
    out.assert_failure();
    assert_one_line_error(runtime, &out);

    let out = container.invoke(&[
        "exec",
        "--user",
        "1000:1000",
        "--additional-gids",
        "10",
        "--additional-gids",
        "2000",
        id,
        "id",
        "-G",
    ]);
    out.assert_success();
    assert_eq!(
        out.stdout(),
        "1000 10 2000\n",
        "{}: --additional-gids: {out}",
        runtime.name
    );

    let out = container.invoke(&[
        "exec",
        "--user",
        "1000:1000",
        id,
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    out.assert_success();
    assert_eq!(
        out.stdout(),
        "1000\n1000\n",
        "{}: --user: {out}",
        runtime.name
    );

    // The container's pid namespace: its /proc shows pid 1, and the same namespace as
    // the init's.
    let out = container.invoke(&[
        "exec",
        id,
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; ls /proc",
    ]);
    out.assert_success();
    let stdout = out.stdout();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().unwrap_or_default(),
        ns_of(&format!("/proc/{init}/ns/pid")),
        "{}: exec is not in the init's pid namespace:\n{out}",
        runtime.name
    );
    let proc_pids: Vec<u32> = lines.filter_map(|l| l.trim().parse().ok()).collect();
    assert!(
        proc_pids.contains(&1) && proc_pids.iter().all(|p| *p < 100),
        "{}: /proc in the exec'd process shows other pids: {proc_pids:?}",
        runtime.name
    );
    let out = container.invoke(&["exec", id, "cat", "/proc/1/comm"]);
    assert_eq!(out.stdout(), "sleep\n", "{}: {out}", runtime.name);

    let out = container.invoke(&["exec", id, "sh", "-c", "kill -KILL $$"]);
    assert_eq!(
        out.status.code(),
        Some(128 + 9),
        "{}: exec of a process killed by SIGKILL: {out}",
        runtime.name
    );

    let out = container.invoke(&["exec", id, "/no/such/program"]);
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    container.wait_for_status("running", WAIT);

    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// `exec --env` of a variable the config already sets.
fn exec_env_overrides_config(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    container.wait_for_status("running", WAIT);
    let id = container.id.as_str();
    // --env overrides the config's value (TERM=xterm) instead of adding a second TERM
    // that getenv(3), which returns the first, would never see.
    let out = container.invoke(&["exec", "--env", "TERM=dumb", id, "env"]);
    out.assert_success();
    let stdout = out.stdout();
    let term: Vec<&str> = stdout.lines().filter(|l| l.starts_with("TERM=")).collect();
    assert_eq!(
        term,
        ["TERM=dumb"],
        "{}: --env TERM=dumb over the config's TERM=xterm: {out}",
        runtime.name
    );

    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// `exec --process process.json`: args, env, cwd and user come from the file.
fn exec_process_json(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    container.wait_for_status("running", WAIT);
    let files = temp_dir("process");
    let process_json = files.path().join("process.json");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "echo \"$LIFE_JSON\"; pwd; id -u; id -g; exit 4"],
        "env": ["PATH=/bin", "LIFE_JSON=from json"],
        "cwd": "/tmp"
    });
    fs::write(&process_json, process.to_string()).expect("write process.json");
    let out = container.invoke(&["exec", "--process", path_str(&process_json), &container.id]);
    assert_eq!(out.status.code(), Some(4), "{}: {out}", runtime.name);
    assert_eq!(
        out.stdout(),
        "from json\n/tmp\n1000\n1000\n",
        "{}: {out}",
        runtime.name
    );
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// `exec --detach --pid-file`: returns at once; the pid file holds the host pid of the
/// exec'd process, alive, in the container's pid namespace.
fn exec_detach_pid_file(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let state = container.wait_for_status("running", WAIT);
    let init = state["pid"].as_i64().expect("pid");
    let files = temp_dir("pidfile");
    let pid_file = files.path().join("exec.pid");
    let started = Instant::now();
    let out = container.invoke(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &container.id,
        "sleep",
        "999",
    ]);
    out.assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{}: exec --detach took {:?}",
        runtime.name,
        started.elapsed()
    );
    let pid = read_pid_file(&pid_file);
    assert!(
        is_alive(pid),
        "{}: exec'd pid {pid} is not alive",
        runtime.name
    );
    assert_ne!(
        i64::from(pid),
        init,
        "{}: pid file holds the init",
        runtime.name
    );
    // The pid file may be written a moment before the process finishes its
    // execve (runc's exec --detach under load): wait for it, briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut cmdline = String::new();
    while std::time::Instant::now() < deadline {
        cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline == "sleep\0999\0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        cmdline, "sleep\0999\0",
        "{}: pid {pid} is not the exec'd process",
        runtime.name
    );
    assert_eq!(
        ns_of(&format!("/proc/{pid}/ns/pid")),
        ns_of(&format!("/proc/{init}/ns/pid")),
        "{}: the exec'd process is not in the container's pid namespace",
        runtime.name
    );
    assert!(
        container_pids(&container).contains(&pid),
        "{}: ps --format json lacks the exec'd {pid}",
        runtime.name
    );
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    wait_until(runtime, "the exec'd process is gone", || !is_alive(pid));
    assert_everything_gone(&container);
}

/// `exec` into a container whose process has exited fails with an error.
fn exec_stopped_fails(runtime: &Runtime) {
    let bundle = busybox_with(&["true"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    container.wait_for_status("stopped", WAIT);
    let out = container.invoke(&["exec", &container.id, "echo", "hi"]);
    out.assert_failure();
    assert_eq!(out.stdout(), "", "{}: {out}", runtime.name);
    assert_one_line_error(runtime, &out);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

// ---------------------------------------------------------------------------------------
// terminals

/// process.terminal with `create --console-socket`: the runtime sends the pty master
/// over SCM_RIGHTS; the container's output arrives on it and its stdin is a tty.
fn terminal_console_socket(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["terminal"] = json!(true);
    bundle.config["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    bundle.config["process"]["args"] = json!(["sh", "-c", format!("stty size; {TTY_SCRIPT}")]);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    let console = ConsoleSocket::new();
    container
        .invoke(&[
            "create",
            "--console-socket",
            path_str(&console.path()),
            "--bundle",
            path_str(bundle.path()),
            &container.id,
        ])
        .assert_success();
    let master = console.receive_master(runtime);
    container.start().assert_success();
    let output = master.read_until("ok", WAIT);
    let (size, rest) = output.split_once('\n').unwrap_or((&output, ""));
    assert_eq!(
        size.trim(),
        "33 111",
        "{}: `stty size` with consoleSize 33x111: {output:?}",
        runtime.name
    );
    assert_tty_output(runtime, rest);
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// `exec --tty --detach --console-socket` (what containerd does): the exec'd process
/// gets its own pty, its master sent to the socket.
fn exec_tty_console_socket(runtime: &Runtime) {
    let bundle = busybox_with(&["sleep", "1000"]);
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    container.wait_for_status("running", WAIT);
    let console = ConsoleSocket::new();
    container
        .invoke(&[
            "exec",
            "--tty",
            "--detach",
            "--console-socket",
            path_str(&console.path()),
            &container.id,
            "sh",
            "-c",
            TTY_SCRIPT,
        ])
        .assert_success();
    let master = console.receive_master(runtime);
    let output = master.read_until("ok", WAIT);
    assert_tty_output(runtime, &output);
    let no_socket = container.invoke(&["exec", "--tty", "--detach", &container.id, "true"]);
    no_socket.assert_failure();
    assert_one_line_error(runtime, &no_socket);
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// terminal: true, `create` without --console-socket: a clear error, nothing created.
fn terminal_without_console_socket(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["terminal"] = json!(true);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    let out = container.create();
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert!(
        out.stderr().contains("console"),
        "{}: the error does not mention the console socket:\n{out}",
        runtime.name
    );
    assert_everything_gone(&container);

    // The other way round: a console socket for a process without a terminal.
    let plain = Bundle::busybox();
    let container = Container::new(runtime, &plain);
    let console = ConsoleSocket::new();
    let out = container.invoke(&[
        "create",
        "--console-socket",
        path_str(&console.path()),
        "--bundle",
        path_str(plain.path()),
        &container.id,
    ]);
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert_everything_gone(&container);
}

/// Prints the tty, whether stdin is one, then `ok`; sleeps so the reader gets it all
/// before the pty closes.
const TTY_SCRIPT: &str = "tty; test -t 0 && echo stdin-is-a-tty; echo ok; sleep 2";

fn assert_tty_output(runtime: &Runtime, output: &str) {
    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("/dev/pts/") || *l == "/dev/console"),
        "{}: `tty` printed no pty: {output:?}",
        runtime.name
    );
    assert!(
        lines.contains(&"stdin-is-a-tty") && lines.contains(&"ok"),
        "{}: output through the pty master: {output:?}",
        runtime.name
    );
}

/// A `--console-socket` listener: receives the pty master the runtime sends.
struct ConsoleSocket {
    dir: tempfile::TempDir,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> ConsoleSocket {
        let dir = temp_dir("console");
        let listener =
            UnixListener::bind(dir.path().join("console.sock")).expect("bind console socket");
        listener
            .set_nonblocking(true)
            .expect("non-blocking console socket");
        ConsoleSocket { dir, listener }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("console.sock")
    }

    /// The runtime's connection (already made: it connects during create/exec), then
    /// one message whose SCM_RIGHTS carries the master.
    fn receive_master(&self, runtime: &Runtime) -> PtyMaster {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let deadline = Instant::now() + WAIT;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "{}: never connected to the console socket",
                        runtime.name
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept on the console socket: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking stream");
        stream
            .set_read_timeout(Some(WAIT))
            .expect("console socket read timeout");
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap_or_else(|e| panic!("{}: recvmsg on the console socket: {e}", runtime.name));
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                fds.extend(received);
            }
        }
        let masters: Vec<PtyMaster> = fds.into_iter().map(PtyMaster).collect();
        assert_eq!(
            masters.len(),
            1,
            "{}: the console socket message carried {} fds",
            runtime.name,
            masters.len()
        );
        masters.into_iter().next().expect("one fd")
    }
}

/// A received pty master, closed on drop (a raw fd: this crate forbids the unsafe that
/// would make it an OwnedFd).
struct PtyMaster(RawFd);

impl PtyMaster {
    /// What the pty says until its output contains `needle` (plus a moment for the
    /// rest), EIO (every slave closed) or `timeout`.
    fn read_until(&self, needle: &str, timeout: Duration) -> String {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        fcntl(self.0, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("non-blocking master");
        let deadline = Instant::now() + timeout;
        let mut seen_at = None;
        let mut output = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(self.0, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => break,
                Ok(n) => output.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("read pty master: {e}"),
            }
            if seen_at.is_none() && String::from_utf8_lossy(&output).contains(needle) {
                seen_at = Some(Instant::now());
            }
            let settled = seen_at.is_some_and(|t| t.elapsed() > Duration::from_millis(200));
            if settled || Instant::now() > deadline {
                break;
            }
        }
        String::from_utf8_lossy(&output).into_owned()
    }
}

impl Drop for PtyMaster {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.0);
    }
}

// ---------------------------------------------------------------------------------------
// hooks

const HOOK_STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Every hook appends `<stage> <state JSON from stdin>` to one log: they run in order,
/// each gets the container's id, and the status and pid of its moment.
fn hooks_order_and_state(runtime: &Runtime) {
    let mut bundle = busybox_with(&["sleep", "1000"]);
    let log_dir = bundle.host_path("hooklog");
    fs::create_dir_all(&log_dir).expect("create hook log dir");
    let host_log = log_dir.join("log");
    let mut hooks = serde_json::Map::new();
    for stage in HOOK_STAGES {
        // startContainer runs in the container: its path and log resolve in the rootfs,
        // where the log dir is bind-mounted.
        let log = if stage == "startContainer" {
            "/hooklog/log".to_string()
        } else {
            path_str(&host_log).to_string()
        };
        hooks.insert(
            stage.to_string(),
            json!([{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("printf '%s ' {stage} >> {log}; cat >> {log}; echo >> {log}")],
                "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            }]),
        );
    }
    bundle.config["hooks"] = Value::Object(hooks);
    bundle.config["root"]["readonly"] = json!(false);
    bundle.config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({"destination": "/hooklog", "type": "bind", "source": path_str(&log_dir), "options": ["rbind", "rw"]}));
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    let pid = container.state().expect("state")["pid"]
        .as_i64()
        .expect("pid");
    container.start().assert_success();
    container.wait_for_status("running", WAIT);
    wait_until(runtime, "poststart ran", || {
        fs::read_to_string(&host_log).is_ok_and(|l| l.contains("poststart "))
    });
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", WAIT);
    container.delete().assert_success();

    let log = fs::read_to_string(&host_log).expect("hook log");
    let mut entries: Vec<(&str, Value)> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (stage, state) = l.split_once(' ').unwrap_or((l, ""));
            let state = serde_json::from_str(state).unwrap_or_else(|e| {
                panic!("{}: {stage} got no state JSON ({e}):\n{log}", runtime.name)
            });
            (stage, state)
        })
        .collect();
    // Known gap of the reference: runc 1.1.5 runs poststart as soon as the init read the
    // exec fifo, racing the init's startContainer hook and the execve (poststart may come
    // first and see "created"). The spec orders startContainer → execve → poststart;
    // berth-runtime is held to it.
    let runc_race = runtime.name == "runc";
    if runc_race {
        let at = |name: &str| entries.iter().position(|(s, _)| *s == name);
        if let (Some(start), Some(post)) = (at("startContainer"), at("poststart")) {
            if post + 1 == start {
                entries.swap(start, post);
            }
        }
    }
    let stages: Vec<&str> = entries.iter().map(|(s, _)| *s).collect();
    assert_eq!(stages, HOOK_STAGES, "{}: hook order:\n{log}", runtime.name);
    let mut wrong = Vec::new();
    for (stage, state) in &entries {
        if state["id"] != container.id.as_str() {
            wrong.push(format!("{stage}: id {}", state["id"]));
        }
        if Path::new(state["bundle"].as_str().unwrap_or_default()) != bundle.path() {
            wrong.push(format!("{stage}: bundle {}", state["bundle"]));
        }
        let (status, expected_pid) = match *stage {
            "prestart" | "createRuntime" => ("creating", pid),
            // Run in the container: the pid as the container sees it (runtime-spec
            // "State": "for hooks executed in the container namespace, it is the pid as
            // seen by the container").
            "createContainer" => ("creating", 1),
            "startContainer" => ("created", 1),
            "poststart" => ("running", pid),
            _ => ("stopped", 0),
        };
        let raced = runc_race && *stage == "poststart" && state["status"] == "created";
        if state["status"] != status && !raced {
            wrong.push(format!(
                "{stage}: status {}, expected {status:?}",
                state["status"]
            ));
        }
        // A stopped container's pid is optional: absent or 0.
        let got_pid = state["pid"].as_i64().unwrap_or(0);
        if got_pid != expected_pid {
            wrong.push(format!(
                "{stage}: pid {got_pid}, expected {expected_pid} (init's host pid {pid})"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}: hooks got wrong state:\n  {}\nhook log:\n{log}",
        runtime.name,
        wrong.join("\n  ")
    );
    assert_everything_gone(&container);
}

/// A prestart, createRuntime or createContainer hook exiting 1 fails `create` with a
/// message from the hook, and leaves no state dir, cgroup or process behind (the init
/// the runtime had started is gone).
fn hook_failure_cleans_up(runtime: &Runtime) {
    for stage in ["prestart", "createRuntime", "createContainer"] {
        let mut bundle = busybox_with(&["sleep", "1000"]);
        let state_copy = bundle.host_path("failed-hook-state.json");
        let parent_file = bundle.host_path("failed-hook-parent");
        // The hook's parent is the runtime (prestart, createRuntime) or the container's
        // init (createContainer, run by it before pivot_root, /proc still the host's):
        // `read` is a builtin, so /proc/self is the hook's shell.
        let script = format!(
            "read -r _ _ _ ppid _ < /proc/self/stat; echo $ppid > {}; cat > {}; \
             echo hook-said-no >&2; exit 1",
            path_str(&parent_file),
            path_str(&state_copy)
        );
        bundle.config["hooks"] = json!({stage: [{
            "path": "/bin/sh",
            "args": ["sh", "-c", script],
            "env": ["PATH=/usr/bin:/bin"],
        }]});
        bundle.write_config();
        let container = Container::new(runtime, &bundle);
        let out = container.create();
        out.assert_failure();
        assert_one_line_error(runtime, &out);
        let stderr = out.stderr();
        assert!(
            stderr.contains("hook") && stderr.contains("hook-said-no"),
            "{}: a failed {stage} hook: the error does not name the hook or show its \
             output:\n{out}",
            runtime.name
        );
        let state: Value =
            serde_json::from_str(&fs::read_to_string(&state_copy).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{}: the {stage} hook got no state: {e}", runtime.name));
        let init = if stage == "createContainer" {
            fs::read_to_string(&parent_file)
                .unwrap_or_default()
                .trim()
                .parse()
                .unwrap_or(0)
        } else {
            state["pid"].as_i64().unwrap_or(0) as i32
        };
        assert!(init > 0, "{}: {stage} state: {state}", runtime.name);
        wait_until(
            runtime,
            &format!("the init of a create whose {stage} hook failed is gone"),
            || !is_alive(init),
        );
        assert!(
            container.state().is_none(),
            "{}: state of a create whose {stage} hook failed",
            runtime.name
        );
        assert_everything_gone(&container);
    }
}

/// A prestart hook whose path does not exist fails `create` cleanly.
fn hook_missing_binary(runtime: &Runtime) {
    let mut bundle = busybox_with(&["sleep", "1000"]);
    bundle.config["hooks"] = json!({"prestart": [{"path": "/no/such/hook"}]});
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    let out = container.create();
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert!(
        out.stderr().contains("/no/such/hook") || out.stderr().contains("no such file"),
        "{}: the error does not say which hook is missing:\n{out}",
        runtime.name
    );
    assert_everything_gone(&container);
}

/// Hooks get their args verbatim (args[0] is argv[0]) and only their own env.
fn hook_env_and_args(runtime: &Runtime) {
    let mut bundle = busybox_with(&["sleep", "1000"]);
    let out_file = bundle.host_path("hook-out");
    let script = format!(
        "{{ echo \"$0 $1\"; tr '\\0' ' ' < /proc/$$/cmdline; echo; env; }} > {}",
        path_str(&out_file)
    );
    bundle.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["life-argv0", "-c", script, "zero", "one"],
        "env": ["PATH=/usr/bin:/bin", "LIFE_HOOK=a b"],
    }]});
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    let text = fs::read_to_string(&out_file).unwrap_or_default();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("zero one"),
        "{}: hook args:\n{text}",
        runtime.name
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("life-argv0 -c ")),
        "{}: hook argv[0]:\n{text}",
        runtime.name
    );
    let env: Vec<&str> = lines.collect();
    assert!(
        env.contains(&"LIFE_HOOK=a b"),
        "{}: hook env:\n{text}",
        runtime.name
    );
    let leaked: Vec<&&str> = env
        .iter()
        .filter(|l| l.starts_with("HOME=") || l.starts_with("CARGO") || l.starts_with("RUST"))
        .collect();
    assert!(
        leaked.is_empty(),
        "{}: the runtime's environment leaked into the hook: {leaked:?}",
        runtime.name
    );
    container.delete().assert_success();
    assert_everything_gone(&container);
}

/// A hook with timeout 1 that sleeps 5 is killed and fails `create` within ~1s.
fn hook_timeout(runtime: &Runtime) {
    let mut bundle = busybox_with(&["sleep", "1000"]);
    bundle.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sleep",
        "args": ["sleep", "5"],
        "timeout": 1,
    }]});
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    let started = Instant::now();
    let out = container.create();
    let took = started.elapsed();
    out.assert_failure();
    assert_one_line_error(runtime, &out);
    assert!(
        took < Duration::from_millis(4500),
        "{}: create with a 1s hook timeout took {took:?}",
        runtime.name
    );
    assert!(
        out.stderr().to_lowercase().contains("timeout")
            || out.stderr().to_lowercase().contains("timed out"),
        "{}: the error does not say the hook timed out:\n{out}",
        runtime.name
    );
    assert_everything_gone(&container);
}

// ---------------------------------------------------------------------------------------
// spec, features

/// `spec` writes a config.json in the current directory and refuses to overwrite one.
fn spec_writes_and_refuses_overwrite(runtime: &Runtime) {
    let dir = temp_dir("spec");
    let spec = |args: &[&str]| {
        runtime
            .command()
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run spec")
    };
    let first = spec(&["spec"]);
    assert!(first.status.success(), "{}: {first:?}", runtime.name);
    let path = dir.path().join("config.json");
    let text = fs::read_to_string(&path).expect("spec writes config.json");
    let config: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(
        config["ociVersion"].is_string(),
        "{}: {config}",
        runtime.name
    );
    assert_eq!(
        config["root"]["path"], "rootfs",
        "{}: {config}",
        runtime.name
    );
    assert!(
        config["process"]["args"].is_array(),
        "{}: {config}",
        runtime.name
    );

    fs::write(&path, "{\"mine\": true}").expect("overwrite config.json");
    let second = spec(&["spec"]);
    assert!(
        !second.status.success(),
        "{}: spec overwrote config.json",
        runtime.name
    );
    assert!(
        !second.stderr.is_empty(),
        "{}: spec refused silently",
        runtime.name
    );
    assert_eq!(
        fs::read_to_string(&path).expect("config.json"),
        "{\"mine\": true}",
        "{}: a failed spec changed config.json",
        runtime.name
    );

    // --bundle writes elsewhere.
    let other = temp_dir("spec-bundle");
    let third = spec(&["spec", "--bundle", path_str(other.path())]);
    assert!(third.status.success(), "{}: {third:?}", runtime.name);
    assert!(
        other.path().join("config.json").is_file(),
        "{}: spec --bundle",
        runtime.name
    );
}

/// `spec --rootless` has a user namespace with the caller mapped, and no network
/// namespace.
fn spec_rootless(runtime: &Runtime) {
    let dir = temp_dir("spec");
    let out = runtime
        .command()
        .args(["spec", "--rootless"])
        .current_dir(dir.path())
        .output()
        .expect("run spec --rootless");
    assert!(out.status.success(), "{}: {out:?}", runtime.name);
    let config: Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join("config.json")).expect("config.json"),
    )
    .expect("config.json is JSON");
    let types: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(types.contains(&"user"), "{}: {types:?}", runtime.name);
    assert!(!types.contains(&"network"), "{}: {types:?}", runtime.name);
    let uid = nix::unistd::geteuid().as_raw();
    for map in ["uidMappings", "gidMappings"] {
        let first = &config["linux"][map][0];
        assert_eq!(first["containerID"], 0, "{}: {map}: {config}", runtime.name);
        assert!(
            first["size"].as_u64().unwrap_or(0) >= 1,
            "{}: {map}",
            runtime.name
        );
    }
    assert_eq!(
        config["linux"]["uidMappings"][0]["hostID"], uid,
        "{}: the caller is not mapped to root",
        runtime.name
    );
}

/// The global flags containerd and dockerd pass are accepted: `--debug`, `--log` with
/// either format; `--log-format json` writes only JSON lines.
fn global_flags(runtime: &Runtime) {
    let bundle = busybox_with(&["true"]);
    let container = Container::new(runtime, &bundle);
    let logs = temp_dir("log");
    let text_log = logs.path().join("text.log");
    container
        .invoke(&[
            "--debug",
            "--log",
            path_str(&text_log),
            "--log-format",
            "text",
            "list",
        ])
        .assert_success();
    let json_log = logs.path().join("json.log");
    let json_flags = [
        "--debug",
        "--log",
        path_str(&json_log),
        "--log-format",
        "json",
    ];
    let mut args: Vec<&str> = json_flags.to_vec();
    args.extend(["run", "--bundle", path_str(bundle.path()), &container.id]);
    container.invoke(&args).assert_success();
    let text = fs::read_to_string(&json_log).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "{}: a --log-format json line is not JSON ({e}): {line}",
                runtime.name
            )
        });
        assert!(
            value["level"].is_string() && value["msg"].is_string() && value["time"].is_string(),
            "{}: a log line without level, msg, time: {line}",
            runtime.name
        );
    }
    assert_everything_gone(&container);
}

/// `features` prints JSON with ociVersionMax and the namespaces it supports.
fn features(runtime: &Runtime) {
    let out = runtime
        .command()
        .arg("features")
        .output()
        .expect("run features");
    assert!(out.status.success(), "{}: {out:?}", runtime.name);
    let features: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: features is not JSON: {e}", runtime.name));
    assert!(
        features["ociVersionMax"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{}: {features}",
        runtime.name
    );
    let namespaces: Vec<&str> = features["linux"]["namespaces"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for ns in ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"] {
        assert!(
            namespaces.contains(&ns),
            "{}: features lacks namespace {ns}: {namespaces:?}",
            runtime.name
        );
    }
    let hooks: Vec<&str> = features["hooks"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(hooks, HOOK_STAGES, "{}: features hooks", runtime.name);
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A busybox bundle whose process is `args`.
fn busybox_with(args: &[&str]) -> Bundle {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(args);
    bundle.write_config();
    bundle
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Polls `condition` every 20 ms; panics naming `what` after [`WAIT`].
fn wait_until(runtime: &Runtime, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{}: timed out waiting until {what}",
            runtime.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The state letter of a process (R, S, D, T, Z...), None if it does not exist.
fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Whether `pid` exists and is not a zombie.
fn is_alive(pid: i32) -> bool {
    pid > 0 && !matches!(proc_state(pid), None | Some('Z' | 'X'))
}

/// `pid:[4026531836]` for a /proc/<pid>/ns/<kind> path.
fn ns_of(path: &str) -> String {
    fs::read_link(path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

fn read_pid_file(path: &Path) -> i32 {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read pid file {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {} holds {text:?}: {e}", path.display()))
}

/// `ps --format json ID`: the host pids of the container's processes.
fn container_pids(container: &Container) -> Vec<i32> {
    let out = container.invoke(&["ps", "--format", "json", &container.id]);
    out.assert_success();
    serde_json::from_str(&out.stdout())
        .unwrap_or_else(|e| panic!("ps --format json is not a list of pids ({e}):\n{out}"))
}
