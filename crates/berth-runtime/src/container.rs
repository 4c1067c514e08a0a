//! container: the lifecycle operations on an existing container
//! (start, kill, delete, state, list, ps, pause, resume), with runc's
//! semantics and error wording where containerd or dockerd match on them.

use std::fs;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::state::{Root, State, Status};

/// `start`: release the init waiting on the exec fifo, then run poststart hooks.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let st = root.load(id)?;
    match st.status(root) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        s => bail!("cannot start a container in the {} state", s.as_str()),
    }
    let fifo_path = st.fifo_path(root);
    // Non-blocking: ENXIO means no reader, i.e. the init is gone.
    let fifo = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .map_err(|e| anyhow!("container init is not waiting for start: {e}"))?;
    nix::unistd::write(fifo.as_fd(), b"0").context("write exec fifo")?;
    // POLLERR on a fifo's write end means no reader is left: the init's copy
    // (close-on-exec) was closed by execve — or the init died.
    let mut fds = [nix::poll::PollFd::new(
        fifo.as_fd(),
        nix::poll::PollFlags::empty(),
    )];
    loop {
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("wait for container start"),
        }
    }
    drop(fifo);
    let _ = fs::remove_file(&fifo_path);
    crate::logging::phase("started");
    let spec: oci_spec::runtime::Spec = serde_json::from_value(st.config.clone())?;
    if let Some(h) = spec.hooks() {
        let json = serde_json::to_string(&st.oci(Status::Running))?;
        crate::hooks::run_all_warn("poststart", h.poststart(), &json);
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// Parse a signal as runc does: "KILL", "SIGKILL", "9".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("unknown signal {s:?}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

pub fn kill(root: &Root, id: &str, sig: Signal, all: bool) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(root);
    if all {
        let cg = crate::cgroup::manager_of(&st);
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() && status == Status::Stopped {
            bail!("container not running");
        }
        // A frozen cgroup would hold the signal until thawed; SIGKILL must land now.
        let frozen = status == Status::Paused;
        for p in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), sig);
        }
        if frozen && sig == Signal::SIGKILL {
            let _ = cg.thaw();
        }
        return Ok(());
    }
    if status == Status::Stopped {
        bail!("container not running");
    }
    // A pidfd pins the process: no risk of signalling a recycled pid.
    let pidfd = berth_sys::pidfd_open(st.pid).context("container not running")?;
    if !st.init_alive() {
        bail!("container not running");
    }
    berth_sys::pidfd_send_signal(pidfd.as_fd(), sig as i32)
        .with_context(|| format!("kill {} with {sig}", st.pid))?;
    Ok(())
}

/// `delete`: remove a stopped (or, with force, any) container and its cgroup.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let st = match root.load(id) {
        Ok(st) => st,
        Err(crate::state::StateError::NotFound(_)) if force => return Ok(()),
        Err(crate::state::StateError::Parse { .. }) if force => {
            // A torn record from a crash: nothing to signal, just the directory.
            root.remove(id)?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = st.status(root);
    match status {
        Status::Stopped => {}
        // runc deletes a created container without --force: it never ran.
        Status::Created => kill_and_wait(&st)?,
        _ if force => kill_and_wait(&st)?,
        s => bail!(
            "cannot delete container {id} that is not stopped: {}",
            s.as_str()
        ),
    }
    let r = destroy(root, &st);
    crate::logging::phase("deleted");
    r
}

fn kill_and_wait(st: &State) -> Result<()> {
    let cg = crate::cgroup::manager_of(st);
    if st.init_alive() {
        let _ = nix::sys::signal::kill(Pid::from_raw(st.pid), Signal::SIGKILL);
    }
    let _ = cg.thaw();
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.init_alive() {
        if Instant::now() > deadline {
            bail!("container init {} did not die after SIGKILL", st.pid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Everything after the processes are gone: cgroup, poststop hooks, the record.
fn destroy(root: &Root, st: &State) -> Result<()> {
    let cg = crate::cgroup::manager_of(st);
    let cg_res = cg.destroy();
    if let Ok(spec) = serde_json::from_value::<oci_spec::runtime::Spec>(st.config.clone()) {
        if let Some(h) = spec.hooks() {
            let json = serde_json::to_string(&st.oci(Status::Stopped))?;
            crate::hooks::run_all_warn("poststop", h.poststop(), &json);
        }
    }
    root.remove(&st.id)?;
    cg_res.context("remove cgroup")
}

/// runc's `state`/`list --format json` object (go-runc's Container).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerJson {
    pub oci_version: &'static str,
    pub id: String,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

pub fn describe(root: &Root, st: &State) -> ContainerJson {
    let status = st.status(root);
    ContainerJson {
        oci_version: crate::state::OCI_VERSION,
        id: st.id.clone(),
        pid: if status == Status::Stopped { 0 } else { st.pid },
        status: status.as_str(),
        bundle: st.bundle.display().to_string(),
        rootfs: st.rootfs.display().to_string(),
        created: st.created.clone(),
        owner: st.owner.clone(),
        annotations: st.annotations.clone(),
    }
}

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let st = root.load(id)?;
    match st.status(root) {
        Status::Running | Status::Created => {}
        s => bail!("container not running or created: {}", s.as_str()),
    }
    crate::cgroup::manager_of(&st).freeze().context("pause")
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let st = root.load(id)?;
    if st.status(root) != Status::Paused {
        bail!("container not paused");
    }
    crate::cgroup::manager_of(&st).thaw().context("resume")
}

/// Pids of every process in the container (from its cgroup).
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let st = root.load(id)?;
    let cg = crate::cgroup::manager_of(&st);
    match cg.pids() {
        Ok(p) => Ok(p),
        // Without a cgroup to ask, at least the init.
        Err(_) if st.init_alive() => Ok(vec![st.pid]),
        Err(e) => Err(anyhow::Error::from(e).context("list processes")),
    }
}
