//! Drop-in tests: berth-runtime in the place of runc under containerd (`ctr`, through
//! the io.containerd.runc.v2 shim) and dockerd (`--add-runtime`).
//!
//! Every scenario runs twice: with runc (/usr/sbin/runc), which shows the test itself is
//! right, and with berth-runtime (`$BERTH_RUNTIME`, else target/release/berth-runtime).
//! The runtime is always reached through a logging wrapper script, so each test also
//! checks that the runtime under test did the work, and prints the exact command lines
//! the shim ran (see them with `cargo test --test dropin -- --nocapture`).
//!
//! Each test starts and stops its own daemon with its own directories, sockets,
//! namespaces and cgroup names; see `dropin_support` for the isolation and cleanup.
//! Needs root, containerd, docker.io, runc, busybox-static; a missing tool fails the
//! test. No network: the image is made from /bin/busybox and imported from a file.

mod dropin_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dropin_support::{
    berth_runtime, build_image, require, run, wait_until, Containerd, Dockerd, Run, Scratch,
    Wrapper, CONTAINERD, CTR, DOCKER, DOCKERD, RUNC, SHIM,
};

/// Time allowed for one client command; a hung runtime fails the test instead of hanging it.
const STEP: Duration = Duration::from_secs(20);

fn berth() -> PathBuf {
    let path = berth_runtime();
    require(&[path.to_str().expect("utf-8 runtime path")]);
    path
}

// ------------------------------------------------------------------ containerd

/// `ctr` against a private containerd, with `--runc-binary` set to the wrapper.
struct Ctr<'a> {
    scratch: &'a Scratch,
    containerd: Containerd,
    wrapper: Wrapper,
    image: String,
}

impl<'a> Ctr<'a> {
    fn start(scratch: &'a Scratch, runtime: &Path) -> Self {
        require(&[
            CONTAINERD,
            CTR,
            SHIM,
            "unshare",
            "tar",
            "sha256sum",
            "script",
        ]);
        let wrapper = Wrapper::new(scratch, runtime);
        let archive = build_image(scratch, &scratch.tag);
        let containerd = Containerd::start(scratch);
        let ctr = Ctr {
            scratch,
            containerd,
            wrapper,
            image: format!("docker.io/library/{}:latest", scratch.tag),
        };
        ctr.ctr(&["images", "import", archive.to_str().expect("utf-8")])
            .expect_ok("ctr images import");
        let images = ctr.ctr(&["images", "ls", "-q"]).expect_ok("ctr images ls");
        assert!(
            images.stdout.lines().any(|l| l == ctr.image),
            "imported image {} not listed:\n{}",
            ctr.image,
            images.stdout
        );
        ctr
    }

    fn command(&self) -> Command {
        let mut c = Command::new(CTR);
        c.arg("-a")
            .arg(&self.containerd.socket)
            .args(["-n", &self.scratch.tag]);
        c
    }

    fn ctr(&self, args: &[&str]) -> Run {
        let mut c = self.command();
        c.args(args);
        run(c, &self.scratch.dir, STEP)
    }

    /// Options for `ctr run`: the runtime under test, its `--root`, and FIFOs in the
    /// scratch dir (ctr's defaults are under /run/containerd).
    fn runtime_opts(&self) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            self.wrapper.path.display().to_string(),
            "--runc-root".into(),
            self.scratch.path("runtime-root").display().to_string(),
            "--fifo-dir".into(),
            self.scratch.path("fifo").display().to_string(),
        ]
    }

    fn run_container(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Run {
        let mut c = self.command();
        c.arg("run")
            .args(flags)
            .args(self.runtime_opts())
            .arg(&self.image)
            .arg(id)
            .args(cmd);
        run(c, &self.scratch.dir, STEP)
    }

    /// The STATUS column of `ctr task ls` for `id`, if listed.
    fn task_status(&self, id: &str) -> Option<String> {
        let ls = self.ctr(&["task", "ls"]);
        ls.stdout.lines().find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&id)).then(|| cols.last().unwrap_or(&"").to_string())
        })
    }

    fn wait_status(&self, id: &str, want: &str) {
        let mut last = None;
        let ok = wait_until(Duration::from_secs(15), || {
            last = self.task_status(id);
            last.as_deref() == Some(want)
        });
        assert!(
            ok,
            "task {id}: want {want}, last status {last:?}\n{}",
            self.report()
        );
    }

    /// Kills the task with `kill_args`, checks it stops with `exit_code`, then deletes
    /// the task and the container.
    fn kill_and_delete(&self, id: &str, kill_args: &[&str], exit_code: u32) {
        let mut args = vec!["task", "kill"];
        args.extend_from_slice(kill_args);
        args.push(id);
        self.ctr(&args).expect_ok("ctr task kill");
        self.wait_status(id, "STOPPED");
        let del = self
            .ctr(&["task", "delete", id])
            .expect_ok("ctr task delete");
        // ctr reports a non-zero exit status of the deleted task as a warning.
        assert!(
            del.stderr.contains(&format!("exit code {exit_code}")),
            "task {id}: expected exit code {exit_code}: {}",
            del.describe()
        );
        assert_eq!(self.task_status(id), None, "task {id} still listed");
        self.ctr(&["container", "delete", id])
            .expect_ok("ctr container delete");
        let ls = self.ctr(&["container", "ls", "-q"]);
        assert!(
            !ls.stdout.lines().any(|l| l == id),
            "container {id} still listed"
        );
    }

    fn report(&self) -> String {
        format!(
            "--- runtime calls\n{}--- containerd log (tail)\n{}",
            self.wrapper.calls(),
            self.containerd.daemon.log_tail(30)
        )
    }
}

/// `ctr run --rm` streams output; `ctr run -d`, then `task kill` (SIGTERM, seen by the
/// container's trap), `task delete`, `container delete`.
fn ctr_run_kill_delete(runtime: &Path) {
    let scratch = Scratch::new("ctr");
    let ctr = Ctr::start(&scratch, runtime);

    let out = ctr.run_container(&["--rm"], "fg", &["sh", "-c", "echo hello; echo $$"]);
    assert!(
        out.ok(),
        "ctr run --rm: {}\n{}",
        out.describe(),
        ctr.report()
    );
    assert_eq!(
        out.stdout,
        "hello\n1\n",
        "ctr run --rm output\n{}",
        ctr.report()
    );
    assert_eq!(ctr.task_status("fg"), None, "--rm left the task");

    let script = "trap 'exit 7' TERM; while true; do sleep 0.1; done";
    let bg = ctr.run_container(&["-d"], "bg", &["sh", "-c", script]);
    assert!(bg.ok(), "ctr run -d: {}\n{}", bg.describe(), ctr.report());
    ctr.wait_status("bg", "RUNNING");
    ctr.kill_and_delete("bg", &[], 7);

    for sub in ["create", "start", "kill", "delete"] {
        ctr.wrapper.assert_called(sub);
    }
    eprintln!(
        "runtime calls ({}):\n{}",
        runtime.display(),
        ctr.wrapper.calls()
    );
}

/// `ctr task exec`, `ctr task ps`, a terminal (`ctr run -t`, console socket) and
/// `ctr task kill --all -s SIGKILL`.
fn ctr_exec_ps_tty_kill_all(runtime: &Path) {
    let scratch = Scratch::new("ctrx");
    let ctr = Ctr::start(&scratch, runtime);

    let bg = ctr.run_container(
        &["-d"],
        "bg",
        &["sh", "-c", "while true; do sleep 0.1; done"],
    );
    assert!(bg.ok(), "ctr run -d: {}\n{}", bg.describe(), ctr.report());
    ctr.wait_status("bg", "RUNNING");

    let fifo = scratch.path("fifo").display().to_string();
    let exec = ctr.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        &fifo,
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo exec-ok; echo $$; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert!(
        exec.ok(),
        "ctr task exec: {}\n{}",
        exec.describe(),
        ctr.report()
    );
    let lines: Vec<&str> = exec.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"exec-ok"),
        "exec output: {}",
        exec.describe()
    );
    assert_ne!(lines.get(1), Some(&"1"), "exec'd process must not be pid 1");
    assert!(
        lines
            .get(2)
            .is_some_and(|l| l.starts_with("sh -c while true")),
        "exec must see the container's pid 1: {}",
        exec.describe()
    );

    let ps = ctr.ctr(&["task", "ps", "bg"]).expect_ok("ctr task ps");
    assert!(
        ps.stdout.lines().count() >= 2,
        "ctr task ps lists no process: {}",
        ps.describe()
    );

    ctr.kill_and_delete("bg", &["--all", "--signal", "SIGKILL"], 137);

    // ctr -t needs a terminal of its own: script(1) gives it one.
    let mut c = Command::new("script");
    let inner = format!(
        "{} -a {} -n {} run --rm -t {} {} tty sh -c 'tty; echo $$'",
        CTR,
        ctr.containerd.socket.display(),
        scratch.tag,
        ctr.runtime_opts().join(" "),
        ctr.image
    );
    c.args(["-qec", &inner, "/dev/null"]);
    let tty = run(c, &scratch.dir, STEP);
    assert!(tty.ok(), "ctr run -t: {}\n{}", tty.describe(), ctr.report());
    let out = tty.stdout.replace('\r', "");
    assert!(
        out.contains("/dev/pts/0\n1\n"),
        "ctr run -t: want a pty and pid 1: {}",
        tty.describe()
    );

    for sub in ["exec", "ps", "kill --all", "create"] {
        ctr.wrapper.assert_called(sub);
    }
    assert!(
        ctr.wrapper.calls().contains("--console-socket"),
        "no --console-socket in the runtime calls:\n{}",
        ctr.wrapper.calls()
    );
    eprintln!(
        "runtime calls ({}):\n{}",
        runtime.display(),
        ctr.wrapper.calls()
    );
}

#[test]
fn containerd_run_kill_delete_runc() {
    ctr_run_kill_delete(Path::new(RUNC));
}

#[test]
fn containerd_run_kill_delete_berth() {
    ctr_run_kill_delete(&berth());
}

#[test]
fn containerd_exec_ps_tty_kill_all_runc() {
    ctr_exec_ps_tty_kill_all(Path::new(RUNC));
}

#[test]
fn containerd_exec_ps_tty_kill_all_berth() {
    ctr_exec_ps_tty_kill_all(&berth());
}

// ------------------------------------------------------------------ dockerd

/// The docker CLI against a private dockerd started with `--add-runtime dropin=<wrapper>`.
struct Docker<'a> {
    scratch: &'a Scratch,
    dockerd: Dockerd,
    wrapper: Wrapper,
    image: String,
}

impl<'a> Docker<'a> {
    fn start(scratch: &'a Scratch, runtime: &Path) -> Self {
        require(&[
            DOCKERD,
            DOCKER,
            CONTAINERD,
            SHIM,
            "unshare",
            "tar",
            "sha256sum",
        ]);
        let wrapper = Wrapper::new(scratch, runtime);
        let archive = build_image(scratch, &scratch.tag);
        let dockerd = Dockerd::start(scratch, &[("dropin", &wrapper.path)]);
        let docker = Docker {
            scratch,
            dockerd,
            wrapper,
            image: format!("{}:latest", scratch.tag),
        };
        let load = docker
            .docker(&["load", "-i", archive.to_str().expect("utf-8")])
            .expect_ok("docker load");
        assert!(
            load.stdout
                .contains(&format!("Loaded image: {}", docker.image)),
            "docker load: {}",
            load.describe()
        );
        docker
    }

    fn docker(&self, args: &[&str]) -> Run {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_CONFIG", self.scratch.path("docker-cli"))
            .args(["-H", &self.dockerd.host])
            .args(args);
        run(c, &self.scratch.dir, STEP)
    }

    fn report(&self) -> String {
        format!(
            "--- runtime calls\n{}--- dockerd log (tail)\n{}",
            self.wrapper.calls(),
            self.dockerd.daemon.log_tail(30)
        )
    }
}

/// `docker run --rm --runtime <r> --network none` prints `hello` and pid `1`.
fn docker_run_rm(docker: &Docker, runtime_name: &str) {
    let out = docker.docker(&[
        "run",
        "--rm",
        "--runtime",
        runtime_name,
        "--network",
        "none",
        &docker.image,
        "sh",
        "-c",
        "echo hello; echo $$",
    ]);
    assert!(
        out.ok(),
        "docker run --runtime {runtime_name}: {}\n{}",
        out.describe(),
        docker.report()
    );
    assert_eq!(
        out.stdout,
        "hello\n1\n",
        "docker run output\n{}",
        docker.report()
    );
}

fn dockerd_run_rm(runtime: &Path) {
    let scratch = Scratch::new("dkr");
    let docker = Docker::start(&scratch, runtime);
    docker_run_rm(&docker, "dropin");
    for sub in ["create", "start", "delete"] {
        docker.wrapper.assert_called(sub);
    }
    eprintln!(
        "runtime calls ({}):\n{}",
        runtime.display(),
        docker.wrapper.calls()
    );
}

/// `docker run -d`, `docker exec`, `docker top`, `docker stop` (SIGTERM, seen by the
/// container's trap: exit code 7), `docker rm`.
fn dockerd_detached_lifecycle(runtime: &Path) {
    let scratch = Scratch::new("dkrx");
    let docker = Docker::start(&scratch, runtime);
    let name = format!("{}-bg", scratch.tag);
    let script = "trap 'exit 7' TERM; while true; do sleep 0.1; done";
    let run = docker.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        "dropin",
        "--network",
        "none",
        &docker.image,
        "sh",
        "-c",
        script,
    ]);
    assert!(
        run.ok(),
        "docker run -d: {}\n{}",
        run.describe(),
        docker.report()
    );

    let exec = docker.docker(&["exec", &name, "sh", "-c", "echo exec-ok; hostname"]);
    assert!(
        exec.ok(),
        "docker exec: {}\n{}",
        exec.describe(),
        docker.report()
    );
    assert!(
        exec.stdout.starts_with("exec-ok\n"),
        "docker exec: {}",
        exec.describe()
    );

    let top = docker.docker(&["top", &name]);
    assert!(
        top.ok(),
        "docker top: {}\n{}",
        top.describe(),
        docker.report()
    );
    assert!(
        top.stdout.contains("while true"),
        "docker top: {}",
        top.describe()
    );

    let stop = docker.docker(&["stop", "-t", "10", &name]);
    assert!(
        stop.ok(),
        "docker stop: {}\n{}",
        stop.describe(),
        docker.report()
    );
    let code = docker
        .docker(&["inspect", "-f", "{{.State.ExitCode}}", &name])
        .expect_ok("docker inspect");
    assert_eq!(
        code.stdout.trim(),
        "7",
        "exit code after docker stop\n{}",
        docker.report()
    );
    docker.docker(&["rm", &name]).expect_ok("docker rm");

    for sub in ["create", "start", "exec", "ps", "kill", "delete"] {
        docker.wrapper.assert_called(sub);
    }
    eprintln!(
        "runtime calls ({}):\n{}",
        runtime.display(),
        docker.wrapper.calls()
    );
}

#[test]
fn dockerd_run_rm_runc() {
    dockerd_run_rm(Path::new(RUNC));
}

/// Docker's built-in `runc` runtime (runc from PATH), next to `--add-runtime`: shows
/// the daemon setup itself is sound.
#[test]
fn dockerd_builtin_runc() {
    let scratch = Scratch::new("dkrb");
    let docker = Docker::start(&scratch, Path::new(RUNC));
    docker_run_rm(&docker, "runc");
}

#[test]
fn dockerd_run_rm_berth() {
    dockerd_run_rm(&berth());
}

#[test]
fn dockerd_detached_lifecycle_runc() {
    dockerd_detached_lifecycle(Path::new(RUNC));
}

#[test]
fn dockerd_detached_lifecycle_berth() {
    dockerd_detached_lifecycle(&berth());
}
