//! The engine end to end: real containers from the offline busybox image,
//! driven through the `berth` CLI as a user would.

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn run_rm_propagates_exit_codes() {
    for (cmd, want) in [
        (vec!["true"], 0),
        (vec!["false"], 1),
        (vec!["sh", "-c", "exit 3"], 3),
        // pid 1 cannot be SIGKILLed from inside its own namespace: a child can
        (vec!["sh", "-c", "sh -c 'kill -9 $$'; exit $?"], 137),
        (vec!["/does/not/exist"], 127),
        (vec!["/etc"], 126),
    ] {
        let mut args = vec!["run", "--rm", "busybox"];
        args.extend(cmd.iter());
        let o = berth(&args);
        assert_eq!(o.status.code(), Some(want), "{cmd:?}: {}", stderr(&o));
    }
}

#[test]
fn run_foreground_streams_stdout_and_stderr() {
    let o = berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
}

#[test]
fn run_rm_leaves_nothing() {
    let n = Name::new("rmgone");
    let o = berth(&["run", "--rm", "--name", n.as_str(), "busybox", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all = ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!all.lines().any(|l| l == n.as_str()), "{all}");
}

#[test]
fn oom_kill_is_137_and_recorded() {
    let n = Name::new("oom");
    // tail buffers a newline-free stream without bound: a memory hog in one command
    let o = berth(&[
        "run",
        "--name",
        n.as_str(),
        "--memory",
        "16m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert_eq!(inspect(n.as_str(), ".State.OOMKilled"), "true");
    assert_eq!(inspect(n.as_str(), ".State.ExitCode"), "137");
    assert_eq!(inspect(n.as_str(), ".State.Status"), "exited");
}

#[test]
fn detached_logs_follow_streams_new_lines() {
    let n = Name::new("logs");
    let id = ok(&[
        "run",
        "-d",
        "--name",
        n.as_str(),
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.3; done",
    ]);
    assert_eq!(id.len(), 64);
    let mut child = command()
        .args(["logs", "-f", n.as_str()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["line1", "line2", "line3", "line4", "line5", "line6"]
    );
    // the log file is docker's json-file format
    let ts = ok(&["logs", "-t", "--tail", "1", n.as_str()]);
    assert!(
        ts.ends_with(" line6") && ts.contains('T') && ts.contains('Z'),
        "{ts}"
    );
}

#[test]
fn exec_it_through_a_real_pty() {
    let n = Name::new("exec");
    ok(&["run", "-d", "--name", n.as_str(), "busybox", "sleep", "60"]);
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = command()
        .args(["exec", "-it", n.as_str(), "sh"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let master = std::fs::File::from(pty.master);
    let mut writer = master.try_clone().unwrap();
    // everything the pty shows, accumulated by a reader thread
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let mut master = master;
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen2
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // type only once the shell shows its prompt (input typed earlier may be
    // flushed when the terminal switches to raw mode)
    wait_for("the shell prompt", Duration::from_secs(10), || {
        seen.lock().unwrap().contains("# ")
    });
    writer
        .write_all(b"tty; echo marker-$((6*7)); exit 5\n")
        .unwrap();
    let status = child.wait().unwrap();
    wait_for("the output", Duration::from_secs(5), || {
        seen.lock().unwrap().contains("marker-42")
    });
    let text = seen.lock().unwrap().clone();
    assert_eq!(status.code(), Some(5), "{text}");
    assert!(
        text.contains("/dev/pts/"),
        "exec -t must run on a pty: {text}"
    );
    assert!(text.contains("marker-42"), "{text}");
}

#[test]
fn exec_plain_and_exit_codes() {
    let n = Name::new("exec2");
    ok(&[
        "run",
        "-d",
        "--name",
        n.as_str(),
        "-e",
        "FOO=bar",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(ok(&["exec", n.as_str(), "sh", "-c", "echo $FOO"]), "bar");
    assert_eq!(
        ok(&["exec", "-e", "FOO=baz", n.as_str(), "sh", "-c", "echo $FOO"]),
        "baz"
    );
    assert_eq!(
        ok(&["exec", "-u", "1000:1000", n.as_str(), "id", "-u"]),
        "1000"
    );
    assert_eq!(
        berth(&["exec", n.as_str(), "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    assert_eq!(
        berth(&["exec", n.as_str(), "/nope"]).status.code(),
        Some(127)
    );
}

#[test]
fn stop_sends_the_stop_signal_then_sigkill() {
    // a process that exits on TERM: stop returns quickly with its code
    let a = Name::new("stop-term");
    ok(&[
        "run",
        "-d",
        "--name",
        a.as_str(),
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    ok(&["stop", a.as_str()]);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(inspect(a.as_str(), ".State.ExitCode"), "0");
    assert!(ok(&["logs", a.as_str()]).contains("got-term"));

    // a process that ignores TERM (pid 1 has no default handlers): SIGKILL after -t
    let b = Name::new("stop-kill");
    ok(&[
        "run",
        "-d",
        "--name",
        b.as_str(),
        "busybox",
        "sleep",
        "1000",
    ]);
    let t = Instant::now();
    ok(&["stop", "-t", "1", b.as_str()]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "SIGKILL came before the timeout: {took:?}"
    );
    assert_eq!(inspect(b.as_str(), ".State.ExitCode"), "137");

    // --stop-signal is honoured
    let c = Name::new("stop-usr1");
    ok(&[
        "run",
        "-d",
        "--name",
        c.as_str(),
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 9' USR1; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    ok(&["stop", c.as_str()]);
    assert_eq!(inspect(c.as_str(), ".State.ExitCode"), "9");
}

#[test]
fn restart_on_failure_restarts_exactly_n_times() {
    let n = Name::new("restart");
    ok(&[
        "run",
        "-d",
        "--name",
        n.as_str(),
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 2",
    ]);
    wait_for("three restarts", Duration::from_secs(30), || {
        inspect(n.as_str(), ".RestartCount") == "3"
            && inspect(n.as_str(), ".State.Status") == "exited"
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inspect(n.as_str(), ".RestartCount"), "3");
    assert_eq!(inspect(n.as_str(), ".State.Status"), "exited");
    assert_eq!(inspect(n.as_str(), ".State.ExitCode"), "2");
    assert_eq!(
        ok(&["logs", n.as_str()])
            .lines()
            .filter(|l| *l == "run")
            .count(),
        4
    );
}

#[test]
fn ps_tells_the_truth_after_the_cli_is_killed() {
    let n = Name::new("cli-killed");
    let mut cli = command()
        .args(["run", "--name", n.as_str(), "busybox", "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("running", Duration::from_secs(10), || {
        berth(&["inspect", "-f", "{{.State.Status}}", n.as_str()])
            .stdout
            .starts_with(b"running")
    });
    cli.kill().unwrap();
    cli.wait().unwrap();
    let ps = ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert!(
        ps.lines().any(|l| l == format!("{} running", n.as_str())),
        "{ps}"
    );
    ok(&["kill", n.as_str()]);
    wait_for("exited", Duration::from_secs(10), || {
        inspect(n.as_str(), ".State.Status") == "exited"
    });
    assert_eq!(inspect(n.as_str(), ".State.ExitCode"), "137");
}

#[test]
fn ps_is_right_after_the_monitor_is_killed() {
    let n = Name::new("mon-killed");
    ok(&["run", "-d", "--name", n.as_str(), "busybox", "sleep", "30"]);
    let pid: i32 = inspect(n.as_str(), ".State.Pid").parse().unwrap();
    // the monitor is the container init's parent
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(ppid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(inspect(n.as_str(), ".State.Status"), "running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("exited", Duration::from_secs(10), || {
        inspect(n.as_str(), ".State.Status") == "exited"
    });
    let id = inspect(n.as_str(), ".Id");
    ok(&["rm", n.as_str()]);
    assert!(
        container_mounts(&id).is_empty(),
        "{:?}",
        container_mounts(&id)
    );
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
}

#[test]
fn twenty_parallel_runs() {
    let names: Vec<Name> = (0..20).map(|_| Name::new("par")).collect();
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            command()
                .args([
                    "run",
                    "--rm",
                    "--name",
                    n.as_str(),
                    "busybox",
                    "sh",
                    "-c",
                    "echo hi",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "hi\n");
    }
    let all = ok(&["ps", "-a", "--format", "{{.Names}}"]);
    for n in &names {
        assert!(!all.lines().any(|l| l == n.as_str()));
    }
}

#[test]
fn named_volume_survives_rm() {
    let vol = unique("vol");
    let a = Name::new("vol-a");
    ok(&[
        "run",
        "--name",
        a.as_str(),
        "-v",
        &format!("{vol}:/data"),
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    ok(&["rm", a.as_str()]);
    let out = ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/data"),
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "kept");
    assert!(ok(&["volume", "ls", "-q"]).lines().any(|l| l == vol));
    ok(&["volume", "rm", &vol]);
}

#[test]
fn bind_mount_and_tmpfs_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in"), "from-host").unwrap();
    let bind = format!("{}:/mnt", dir.path().display());
    assert_eq!(
        ok(&["run", "--rm", "-v", &bind, "busybox", "cat", "/mnt/in"]),
        "from-host"
    );
    ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo back > /mnt/out",
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        "back\n"
    );
    let ro = berth(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "echo ok > /tmp/x && cat /tmp/x && touch /rootfile",
    ]);
    assert_eq!(stdout(&ro), "ok\n");
    assert_ne!(ro.status.code(), Some(0));
    assert!(
        stderr(&ro).contains("Read-only file system"),
        "{}",
        stderr(&ro)
    );
}

#[test]
fn env_workdir_user_hostname_entrypoint() {
    let out = ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "boxy",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(out, "1 /tmp 1000:1000 boxy");
    let out = ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "via",
        "entrypoint",
    ]);
    assert_eq!(out, "via entrypoint");
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "# comment\nX=from-file\n").unwrap();
    let out = ok(&[
        "run",
        "--rm",
        "--env-file",
        f.path().to_str().unwrap(),
        "busybox",
        "sh",
        "-c",
        "echo $X",
    ]);
    assert_eq!(out, "from-file");
}

#[test]
fn limits_land_in_the_cgroup() {
    let n = Name::new("limits");
    ok(&[
        "run",
        "-d",
        "--name",
        n.as_str(),
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "30",
    ]);
    let id = inspect(n.as_str(), ".Id");
    let mem = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(mem.trim(), (64u64 << 20).to_string());
    let quota =
        std::fs::read_to_string(format!("/sys/fs/cgroup/cpu/berth/{id}/cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "50000");
    let pids = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/berth/{id}/pids.max")).unwrap();
    assert_eq!(pids.trim(), "50");
    ok(&["update", "--memory", "128m", n.as_str()]);
    let mem = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(mem.trim(), (128u64 << 20).to_string());
    let stats = ok(&["stats", "--no-stream", n.as_str()]);
    assert!(
        stats.contains("THROTTLED %") && stats.contains(n.as_str()),
        "{stats}"
    );
    ok(&["rm", "-f", n.as_str()]);
    assert!(cgroup_dirs(&id).is_empty());
}

#[test]
fn pause_unpause_top_rename_wait() {
    let n = Name::new("misc");
    ok(&["run", "-d", "--name", n.as_str(), "busybox", "sleep", "30"]);
    ok(&["pause", n.as_str()]);
    assert_eq!(inspect(n.as_str(), ".State.Status"), "paused");
    ok(&["unpause", n.as_str()]);
    assert_eq!(inspect(n.as_str(), ".State.Status"), "running");
    assert!(ok(&["top", n.as_str()]).contains("sleep 30"));
    let renamed = Name::new("misc-renamed");
    ok(&["rename", n.as_str(), renamed.as_str()]);
    // pid 1 without a handler ignores TERM (as under docker); KILL always works
    ok(&["kill", "-s", "TERM", renamed.as_str()]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(inspect(renamed.as_str(), ".State.Status"), "running");
    ok(&["kill", "-s", "KILL", renamed.as_str()]);
    assert_eq!(ok(&["wait", renamed.as_str()]), "137");
}

#[test]
fn init_reaps_zombies_and_forwards_signals() {
    // without --init, pid 1 is the shell; with it, berth-init is pid 1 and the
    // command is its child
    assert_eq!(ok(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]), "1");
    let out = ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "echo $$; cat /proc/1/cmdline",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("2"), "{out}");
    assert!(
        lines
            .next()
            .unwrap_or("")
            .starts_with("/sbin/berth-init\0--\0sh"),
        "{out:?}"
    );
    // an orphaned zombie is reaped by berth-init
    let out = ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "(sleep 0.1 &) ; sleep 0.5; ps -o stat,comm | grep -c '^Z' || true",
    ]);
    assert_eq!(out, "0");
    // SIGTERM reaches a command that would ignore it as pid 1
    let n = Name::new("init-term");
    ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        n.as_str(),
        "busybox",
        "sleep",
        "600",
    ]);
    let t = Instant::now();
    ok(&["stop", "-t", "10", n.as_str()]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "TERM was not forwarded"
    );
    assert_eq!(inspect(n.as_str(), ".State.ExitCode"), "143");
}

#[test]
fn published_port_reaches_a_server_in_the_container() {
    let n = Name::new("web");
    // -P publishes every exposed port (here from --expose) on an ephemeral host port
    ok(&[
        "run",
        "-d",
        "--name",
        n.as_str(),
        "--expose",
        "8080",
        "-P",
        "busybox",
        "sh",
        "-c",
        "echo served > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
    ]);
    let mapping = ok(&["port", n.as_str(), "8080/tcp"]);
    let port = mapping.rsplit(':').next().unwrap().to_string();
    assert!(port.parse::<u16>().unwrap() > 0, "{mapping}");
    let mut body = String::new();
    wait_for(
        "the server",
        Duration::from_secs(10),
        || match std::process::Command::new("busybox")
            .args(["wget", "-qO-", &format!("http://127.0.0.1:{port}/")])
            .output()
        {
            Ok(o) if o.status.success() => {
                body = stdout(&o);
                true
            }
            _ => false,
        },
    );
    assert_eq!(body, "served\n");
    // from another container, through the host's published port on the gateway (hairpin)
    let gw = inspect(n.as_str(), ".NetworkSettings.Gateway");
    let out = ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gw}:{port}/"),
    ]);
    assert_eq!(out, "served");
    // and a second container publishing the same host port is refused before it starts
    let m = Name::new("web2");
    let o = berth(&[
        "run",
        "-d",
        "--name",
        m.as_str(),
        "-p",
        &format!("{port}:80"),
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
}

#[test]
fn user_network_names_resolve_and_networks_are_isolated() {
    let net_a = unique("neta");
    let net_b = unique("netb");
    ok(&["network", "create", &net_a]);
    ok(&["network", "create", &net_b]);
    let srv = Name::new("srv");
    ok(&[
        "run",
        "-d",
        "--name",
        srv.as_str(),
        "--network",
        &net_a,
        "--network-alias",
        "db",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ok(&[
            "run",
            "--rm",
            "--network",
            &net_a,
            "busybox",
            "wget",
            "-qO-",
            &format!("http://{}/", srv.as_str())
        ]),
        "hi"
    );
    assert_eq!(
        ok(&[
            "run",
            "--rm",
            "--network",
            &net_a,
            "busybox",
            "wget",
            "-qO-",
            "http://db/"
        ]),
        "hi"
    );
    let ip = inspect(srv.as_str(), ".NetworkSettings.IPAddress");
    let o = berth(&[
        "run",
        "--rm",
        "--network",
        &net_b,
        "busybox",
        "wget",
        "-T",
        "2",
        "-qO-",
        &format!("http://{ip}/"),
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "another network reached the server"
    );
    // removing a network with a container attached is refused
    assert_ne!(berth(&["network", "rm", &net_a]).status.code(), Some(0));
    ok(&["rm", "-f", srv.as_str()]);
    ok(&["network", "rm", &net_a, &net_b]);
    // --network none has only lo
    let links = ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links, "lo");
}

#[test]
fn cp_both_ways() {
    let n = Name::new("cp");
    ok(&[
        "run",
        "-d",
        "--name",
        n.as_str(),
        "busybox",
        "sh",
        "-c",
        "echo inside > /srv.txt; sleep 30",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    ok(&[
        "cp",
        &format!("{}:/srv.txt", n.as_str()),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("srv.txt")).unwrap(),
        "inside\n"
    );
    std::fs::write(dir.path().join("up.txt"), "uploaded").unwrap();
    ok(&[
        "cp",
        dir.path().join("up.txt").to_str().unwrap(),
        &format!("{}:/tmp/", n.as_str()),
    ]);
    assert_eq!(ok(&["exec", n.as_str(), "cat", "/tmp/up.txt"]), "uploaded");
    // a stopped container too
    ok(&["stop", "-t", "0", n.as_str()]);
    ok(&[
        "cp",
        &format!("{}:/tmp/up.txt", n.as_str()),
        dir.path().join("back.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("back.txt")).unwrap(),
        "uploaded"
    );
}

#[test]
fn create_then_start_attach() {
    let n = Name::new("create");
    ok(&[
        "create",
        "--name",
        n.as_str(),
        "busybox",
        "sh",
        "-c",
        "echo started",
    ]);
    assert_eq!(inspect(n.as_str(), ".State.Status"), "created");
    let o = berth(&["start", "-a", n.as_str()]);
    assert_eq!(stdout(&o), "started\n");
    assert_eq!(inspect(n.as_str(), ".State.Status"), "exited");
}

#[test]
fn events_record_the_lifecycle() {
    let n = Name::new("events");
    let since = ok(&["version"]); // just to have a point before
    let _ = since;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    ok(&["run", "--name", n.as_str(), "busybox", "true"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        &format!("container={}", n.as_str()),
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev.lines().collect();
    assert_eq!(actions, ["create", "start", "die"], "{ev}");
}

// ------------------------------------------------------------ bad input

fn assert_nothing_new(before: &str) {
    let after = ok(&["ps", "-a", "-q", "--no-trunc"]);
    let b: std::collections::BTreeSet<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().filter(|l| !b.contains(l)).collect();
    // other tests run in parallel: only containers with our marker name count
    for id in new {
        let name = inspect(id, ".Name");
        assert!(!name.contains("badinput"), "a failed run left {name}");
    }
}

#[test]
fn bad_input_is_125_and_leaves_nothing() {
    let before = ok(&["ps", "-a", "-q", "--no-trunc"]);
    let n = Name::new("badinput");
    for (args, needle) in [
        (
            vec!["run", "--name", n.as_str(), "no-such-image:nope", "true"],
            "unable to find image",
        ),
        (
            vec![
                "run",
                "--name",
                n.as_str(),
                "--memory",
                "10q",
                "busybox",
                "true",
            ],
            "--memory",
        ),
        (
            vec![
                "run",
                "--name",
                n.as_str(),
                "--cpus",
                "-1",
                "busybox",
                "true",
            ],
            "--cpus",
        ),
        (
            vec![
                "run",
                "--name",
                n.as_str(),
                "-v",
                "/does/not/exist:/x",
                "busybox",
                "true",
            ],
            "does not exist",
        ),
        (
            vec![
                "run",
                "--name",
                n.as_str(),
                "--restart",
                "sometimes",
                "busybox",
                "true",
            ],
            "restart policy",
        ),
        (
            vec![
                "run",
                "--name",
                n.as_str(),
                "-p",
                "99999:80",
                "busybox",
                "true",
            ],
            "port",
        ),
        (
            vec![
                "run",
                "--name",
                n.as_str(),
                "--bogus-flag",
                "busybox",
                "true",
            ],
            "bogus",
        ),
        (
            vec!["run", "--name", "bad/name", "busybox", "true"],
            "Invalid container name",
        ),
    ] {
        let o = berth(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: {err}"
        );
        assert!(
            err.trim().lines().count() <= 3,
            "one clear error, not a dump: {err}"
        );
    }
    assert_nothing_new(&before);

    // a name already in use
    ok(&["create", "--name", n.as_str(), "busybox", "true"]);
    let o = berth(&["run", "--name", n.as_str(), "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    // exec into a stopped container
    let o = berth(&["exec", n.as_str(), "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    // removing a running container needs -f
    let r = Name::new("badinput-running");
    ok(&["run", "-d", "--name", r.as_str(), "busybox", "sleep", "30"]);
    let o = berth(&["rm", r.as_str()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("force"), "{}", stderr(&o));
}
