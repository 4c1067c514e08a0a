//! spawn: the parent side of `create` and `exec`, and the foreground wait loop
//! of `run`/`exec` (signal forwarding, pty copying, exit status).
//!
//! The parent is single-threaded and forks directly (no re-exec of itself as
//! runc does with `runc init`): that is most of why berth-runtime starts fast.
//! It becomes a child subreaper first, so the init — a grandchild, forked by
//! the stage process — is reparented to us when the stage exits; after
//! `create` exits the init is reparented to *our* nearest subreaper (the
//! containerd shim, conmon, berth's monitor), exactly as with runc.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::init::InitContext;
use crate::plan::{IdMap, NsKind, Plan};
use crate::state::{Root, State, Status};
use crate::sync::{self, Msg, SyncError};

pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground with terminal: true and no console socket:
    /// the pty master comes back to us instead.
    pub foreground_tty: bool,
}

pub struct Created {
    pub pid: i32,
    pub pty: Option<OwnedFd>,
}

/// Undo for a failed create, in reverse order of setup.
struct Undo<'a> {
    root: &'a Root,
    id: String,
    cgroup: Option<berth_cgroups::Manager>,
    pids: Vec<i32>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in self.pids.iter().rev() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.destroy() {
                crate::logging::log("error", &format!("cleanup: remove cgroup: {e}"));
            }
        }
        if let Err(e) = self.root.remove(&self.id) {
            crate::logging::log("error", &format!("cleanup: {e}"));
        }
    }
}

pub fn create(root: &Root, opts: &CreateOpts<'_>) -> Result<Created> {
    let bundle = fs::canonicalize(opts.bundle)
        .with_context(|| format!("bundle {}", opts.bundle.display()))?;
    let spec = crate::plan::load_spec(&bundle)?;
    let plan = crate::plan::from_spec(&spec, &bundle)?;
    if plan.process.terminal && opts.console_socket.is_none() && !opts.foreground_tty {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    if !plan.process.terminal && opts.console_socket.is_some() {
        bail!("cannot use console socket if runc will not detach or allocate tty");
    }
    // Compile the seccomp profile now (or take it from the cache): a bad one must
    // fail before anything exists, and the init only loads the program.
    let seccomp = plan
        .seccomp
        .as_ref()
        .map(|s| crate::security::prepare_seccomp(s, Some(&root.path.join("seccomp-cache"))))
        .transpose()?;
    let console = match opts.console_socket {
        Some(p) => Some(OwnedFd::from(
            UnixStream::connect(p)
                .with_context(|| format!("connect console socket {}", p.display()))?,
        )),
        None => None,
    };
    crate::logging::phase("plan done");
    let cg = crate::cgroup::new_manager(plan.cgroups_path.as_deref(), opts.id)?;

    let dir = root.reserve(opts.id)?;
    let mut undo = Undo {
        root,
        id: opts.id.to_string(),
        cgroup: None,
        pids: Vec::new(),
        armed: true,
    };
    let fifo_path = dir.join(crate::state::FIFO_NAME);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .with_context(|| format!("mkfifo {}", fifo_path.display()))?;
    // O_RDWR never blocks on a fifo; the init inherits it and reads from it.
    let fifo: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo_path)
        .context("open exec fifo")?
        .into();

    crate::logging::phase("state dir + fifo");
    // Rootless without limits asked for: no cgroup is fine (runc does the same);
    // with limits, failing to create one is an error.
    let rootless = !nix::unistd::geteuid().is_root();
    let use_cgroup = match cg.create() {
        Ok(()) => true,
        Err(e) if rootless && plan.resources.is_none() => {
            crate::logging::warn(&format!("rootless: running without a cgroup: {e}"));
            false
        }
        Err(e) => return Err(e.into()),
    };
    if use_cgroup {
        undo.cgroup = Some(berth_cgroups::Manager::from_paths(&cg.paths()));
        crate::logging::phase("cgroup dirs");
        if let Some(r) = &plan.resources {
            cg.set(r)?;
        }
    }
    let cgroup_paths = if use_cgroup {
        cg.paths()
    } else {
        berth_cgroups::CgroupPaths::default()
    };

    crate::logging::phase("cgroup created+set");
    let owner = nix::unistd::getuid().as_raw();
    let mut st = State {
        id: opts.id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: crate::logging::rfc3339_now(),
        owner: if owner == 0 {
            "root".into()
        } else {
            owner.to_string()
        },
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup_paths.clone(),
        config: serde_json::to_value(&spec)?,
        use_systemd: false,
    };
    // Recorded (pid 0) before any process exists: if the runtime dies from here on,
    // `delete --force` still finds the cgroup to remove.
    root.save(&st)?;
    berth_sys::set_child_subreaper()?;
    let (parent_chan, child_chan) = sync::pair()?;
    let (forked, born_in_unified) = fork_stage(use_cgroup.then_some(&cg))?;
    match forked {
        berth_sys::ForkResult::Child => {
            drop(parent_chan);
            crate::init::stage(InitContext {
                id: opts.id,
                plan: &plan,
                chan: child_chan,
                fifo: Some(fifo),
                console_socket: console,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
                join: Vec::new(),
                seccomp,
                cgroup: use_cgroup.then_some((&cg, born_in_unified)),
            })
        }
        berth_sys::ForkResult::Parent { child } => {
            drop(child_chan);
            drop(fifo);
            drop(console);
            let stage = child.as_raw();
            undo.pids.push(stage);
            crate::logging::phase("stage forked");

            let mut pid = 0;
            let mut pty = None;
            loop {
                let (msg, fd) = parent_chan
                    .recv_fd()
                    .map_err(|e| remote(e, "create container"))?;
                match msg {
                    Msg::MapRequest => {
                        write_id_maps(stage, &plan.uid_mappings, &plan.gid_mappings)?;
                        parent_chan.send(&Msg::MapDone)?;
                    }
                    Msg::InitPid { pid: p } => {
                        pid = p;
                        undo.pids.insert(0, p);
                        // Reap the stage; the init is now our child (subreaper).
                        let _ = waitpid(child, None);
                        undo.pids.retain(|x| *x != stage);
                        st.pid = pid;
                        st.pid_start = crate::state::proc_stat(pid).map(|s| s.1).unwrap_or(0);
                    }
                    Msg::CreateRuntime => {
                        let state_json = serde_json::to_string(&st.oci(Status::Creating))?;
                        crate::hooks::run_all(
                            "prestart",
                            &plan.hooks.prestart().clone(),
                            &state_json,
                        )?;
                        crate::hooks::run_all(
                            "createRuntime",
                            &plan.hooks.create_runtime().clone(),
                            &state_json,
                        )?;
                        parent_chan.send(&Msg::HooksDone { state: state_json })?;
                    }
                    Msg::Pty => pty = fd,
                    Msg::Ready => break,
                    other => bail!("create: unexpected message {other:?}"),
                }
            }
            if pid == 0 {
                bail!("create: init never reported its pid");
            }
            crate::logging::phase("init ready");
            root.save(&st)?;
            if let Some(p) = opts.pid_file {
                write_pid_file(p, pid)?;
            }
            undo.armed = false;
            Ok(Created { pid, pty })
        }
    }
}

/// Fork the stage process, born in the cgroup's cgroup2 directory when there is
/// one and the kernel can (clone3 `CLONE_INTO_CGROUP`); the stage then moves
/// itself into the v1 hierarchies (`Manager::join_self`). Neither way takes the
/// kernel's threadgroup lock for writing, as the parent writing the stage's pid
/// into every `cgroup.procs` would (one RCU grace period per container).
/// Returns whether the child was born in the cgroup2 directory.
fn fork_stage(cg: Option<&berth_cgroups::Manager>) -> Result<(berth_sys::ForkResult, bool)> {
    if let Some(dir) = cg.and_then(|c| c.clone_target()) {
        let f = fs::File::open(dir).with_context(|| format!("open cgroup {}", dir.display()))?;
        match berth_sys::fork_into_cgroup(f.as_fd()) {
            Ok(r) => return Ok((r, true)),
            // No clone3 or no CLONE_INTO_CGROUP (< 5.7): the stage joins by itself.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
                ) => {}
            Err(e) => return Err(e).with_context(|| format!("fork into cgroup {}", dir.display())),
        }
    }
    Ok((berth_sys::fork()?, false))
}

fn remote(e: SyncError, what: &str) -> anyhow::Error {
    match e {
        SyncError::Remote(m) => anyhow!("{what}: {m}"),
        SyncError::Closed => anyhow!("{what}: container init exited unexpectedly"),
        other => anyhow!("{what}: {other}"),
    }
}

/// Write /proc/<pid>/{uid,gid}_map. Root writes them directly; an unprivileged
/// user maps only itself directly, and uses newuidmap/newgidmap (setuid helpers
/// from shadow's uidmap package) for ranges from /etc/subuid.
fn write_id_maps(pid: i32, uids: &[IdMap], gids: &[IdMap]) -> Result<()> {
    let fmt = |m: &[IdMap]| {
        m.iter()
            .map(|x| format!("{} {} {}\n", x.container_id, x.host_id, x.size))
            .collect::<String>()
    };
    let euid = nix::unistd::geteuid().as_raw();
    let only_self = uids.len() == 1 && uids[0].host_id == euid && uids[0].size == 1;
    if euid == 0 || only_self {
        if euid != 0 {
            // An unprivileged gid_map needs setgroups denied first (user_namespaces(7)).
            fs::write(format!("/proc/{pid}/setgroups"), "deny").context("write setgroups")?;
        }
        fs::write(format!("/proc/{pid}/uid_map"), fmt(uids))
            .with_context(|| format!("write uid_map for {pid}"))?;
        fs::write(format!("/proc/{pid}/gid_map"), fmt(gids))
            .with_context(|| format!("write gid_map for {pid}"))?;
        return Ok(());
    }
    for (tool, maps) in [("newuidmap", uids), ("newgidmap", gids)] {
        let mut cmd = std::process::Command::new(tool);
        cmd.arg(pid.to_string());
        for m in maps {
            cmd.args([
                m.container_id.to_string(),
                m.host_id.to_string(),
                m.size.to_string(),
            ]);
        }
        let out = cmd
            .output()
            .with_context(|| format!("run {tool} (install the uidmap package)"))?;
        if !out.status.success() {
            bail!("{tool}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    Ok(())
}

/// Atomically (temp + rename) write a pid file, as runc does: readers never see it half-written.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    fs::write(&tmp, pid.to_string())
        .with_context(|| format!("write pid file {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("write pid file {}", path.display()))?;
    Ok(())
}

pub struct ExecOpts<'a> {
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// Start a new process in a running container; returns its exit code when
/// in the foreground, 0 when detached.
pub fn exec(root: &Root, st: &State, plan: &Plan, opts: &ExecOpts<'_>) -> Result<i32> {
    let p = &plan.process;
    if p.terminal && opts.console_socket.is_none() && opts.detach {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    let seccomp = plan
        .seccomp
        .as_ref()
        .map(|s| crate::security::prepare_seccomp(s, Some(&root.path.join("seccomp-cache"))))
        .transpose()?;
    let console = match opts.console_socket {
        Some(path) => Some(OwnedFd::from(
            UnixStream::connect(path)
                .with_context(|| format!("connect console socket {}", path.display()))?,
        )),
        None => None,
    };
    // Namespace files of the init, opened now: if it dies meanwhile we fail here, not halfway.
    let mut join = Vec::new();
    for ns in &plan.namespaces {
        let path = format!("/proc/{}/ns/{}", st.pid, ns.kind.proc_name());
        let f = fs::File::open(&path).with_context(|| format!("open {path}"))?;
        join.push((ns.kind, OwnedFd::from(f)));
    }
    // Joining a user namespace we're already in is EINVAL; a pid ns needs the extra fork either way.
    join.retain(|(k, fd)| *k != NsKind::User || !same_ns(fd.as_fd(), "user"));

    if !opts.detach {
        block_forwarded_signals()?;
    }
    berth_sys::set_child_subreaper()?;
    let (parent_chan, child_chan) = sync::pair()?;
    let cg = crate::cgroup::manager_of(st);
    let (forked, born_in_unified) = fork_stage(Some(&cg))?;
    match forked {
        berth_sys::ForkResult::Child => {
            drop(parent_chan);
            crate::init::stage(InitContext {
                id: &st.id,
                plan,
                chan: child_chan,
                fifo: None,
                console_socket: console,
                no_pivot: false,
                no_new_keyring: true,
                preserve_fds: opts.preserve_fds,
                join,
                seccomp,
                cgroup: Some((&cg, born_in_unified)),
            })
        }
        berth_sys::ForkResult::Parent { child } => {
            drop(child_chan);
            drop(console);
            drop(join);
            let mut pid = 0;
            let mut pty = None;
            loop {
                match parent_chan.recv_fd() {
                    Ok((Msg::InitPid { pid: p }, _)) => {
                        pid = p;
                        let _ = waitpid(child, None);
                    }
                    Ok((Msg::Pty, fd)) => pty = fd,
                    Ok((other, _)) => bail!("exec: unexpected message {other:?}"),
                    // EOF: the CLOEXEC channel closed, so execve succeeded.
                    Err(SyncError::Closed) => break,
                    Err(e) => {
                        if pid > 0 {
                            let _ = waitpid(Pid::from_raw(pid), None);
                        }
                        let _ = waitpid(child, Some(WaitPidFlag::WNOHANG));
                        return Err(remote(e, "exec failed"));
                    }
                }
            }
            if pid == 0 {
                bail!("exec: process never reported its pid");
            }
            if let Some(path) = opts.pid_file {
                write_pid_file(path, pid)?;
            }
            if opts.detach {
                return Ok(0);
            }
            wait_foreground(pid, pty)
        }
    }
}

fn same_ns(fd: BorrowedFd<'_>, name: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(ours) = fs::metadata(format!("/proc/self/ns/{name}")) else {
        return false;
    };
    let Ok(theirs) = nix::sys::stat::fstat(fd.as_raw_fd()) else {
        return false;
    };
    ours.ino() == theirs.st_ino && ours.dev() == theirs.st_dev
}

/// Wait for `pid` (our child, via subreaper), forwarding signals to it and
/// copying between our stdio and its pty. Returns the shell-style exit code.
/// The signals a foreground `run`/`exec` forwards to the container (all but
/// those that can't be caught or belong to this process's own faults and job control).
pub fn forwarded_signals() -> SigSet {
    let mut mask = SigSet::empty();
    for s in Signal::iterator() {
        if !matches!(
            s,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGTSTP
                | Signal::SIGTTIN
                | Signal::SIGTTOU
        ) {
            mask.add(s);
        }
    }
    mask
}

/// Block the forwarded signals *before* the container exists, so a SIGTERM sent
/// to the runtime right after it starts is queued and forwarded, not fatal to us.
/// Children reset their mask before execve.
pub fn block_forwarded_signals() -> Result<()> {
    forwarded_signals().thread_block().context("block signals")
}

pub fn wait_foreground(pid: i32, pty: Option<OwnedFd>) -> Result<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};

    let mask = forwarded_signals();
    mask.thread_block().context("block signals")?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let target = Pid::from_raw(pid);

    let stdin = std::io::stdin();
    let raw_guard = match &pty {
        Some(m) => {
            if let Ok((rows, cols)) = berth_sys::window_size(stdin.as_fd()) {
                let _ = berth_sys::set_window_size(m.as_fd(), rows, cols);
            }
            RawMode::enter(stdin.as_fd())
        }
        None => None,
    };
    let mut stdin_open = pty.is_some();
    let mut exit_code = None;
    // Reap before anything else: the process may already be gone.
    reap(target, &mut exit_code);
    while exit_code.is_none() {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &pty {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let rev: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !rev[0].is_empty() {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    reap(target, &mut exit_code);
                } else if sig == libc::SIGWINCH {
                    if let (Some(m), Ok((rows, cols))) =
                        (&pty, berth_sys::window_size(stdin.as_fd()))
                    {
                        let _ = berth_sys::set_window_size(m.as_fd(), rows, cols);
                    }
                } else if let Ok(s) = Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(target, s);
                }
            }
        }
        if let Some(m) = &pty {
            if rev.len() > 1
                && !rev[1].is_empty()
                && !copy_once(m.as_fd(), &mut std::io::stdout())
                && exit_code.is_none()
            {
                // EIO: every slave fd is closed; the process is on its way out.
                // (Not when the SIGCHLD above already reaped it: waitpid would
                // fail with ECHILD and the real status would be lost.)
                reap_blocking(target, &mut exit_code);
            }
            if stdin_open && rev.len() > 2 && !rev[2].is_empty() {
                let mut buf = [0u8; 4096];
                match stdin.lock().read(&mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        let _ = write_all_fd(m.as_fd(), &buf[..n]);
                    }
                }
            }
        }
    }
    if let Some(m) = &pty {
        // Whatever the process wrote just before exiting.
        let _ = nix::fcntl::fcntl(
            m.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        while copy_once(m.as_fd(), &mut std::io::stdout()) {}
    }
    drop(raw_guard);
    let _ = mask.thread_unblock();
    Ok(exit_code.unwrap_or(255))
}

fn reap(target: Pid, exit_code: &mut Option<i32>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == target => *exit_code = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == target => {
                *exit_code = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

fn reap_blocking(target: Pid, exit_code: &mut Option<i32>) {
    match waitpid(target, None) {
        Ok(WaitStatus::Exited(_, code)) => *exit_code = Some(code),
        Ok(WaitStatus::Signaled(_, sig, _)) => *exit_code = Some(128 + sig as i32),
        _ => *exit_code = Some(255),
    }
}

/// Copy one chunk from `from` to `out`; false on EOF/EIO/EAGAIN.
fn copy_once(from: BorrowedFd<'_>, out: &mut impl Write) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
            true
        }
    }
}

fn write_all_fd(fd: BorrowedFd<'_>, mut buf: &[u8]) -> nix::Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The terminal in raw mode while a pty is attached; restored on drop.
struct RawMode {
    fd: i32,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY-free: BorrowedFd from a raw fd that stays open (stdin) for our lifetime.
        let fd = std::io::stdin();
        if fd.as_raw_fd() == self.fd {
            let _ = nix::sys::termios::tcsetattr(
                fd.as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                &self.saved,
            );
        }
    }
}

/// The pid file path made absolute against the caller's cwd, as runc does.
pub fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}
