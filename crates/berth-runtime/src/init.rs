//! init: the child side of create and exec (stage process S and init I; see `sync`).
//!
//! Nothing here returns to the caller: each function ends in execve or exit.
//! Errors travel back to the parent as `Msg::Error` so the parent reports
//! them once and undoes what it set up. The process is marked non-dumpable
//! from the first instruction until execve, so nothing in the container can
//! open /proc/<pid>/exe of the runtime binary while it is still the runtime
//! (CVE-2019-5736); execve of the container program resets that.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{Gid, Uid};

use crate::plan::{NsKind, Plan, ProcessPlan};
use crate::sync::{Channel, Msg};

/// What init needs besides the plan.
pub struct InitContext<'a> {
    pub id: &'a str,
    pub plan: &'a Plan,
    pub chan: Channel,
    /// The exec fifo (opened O_RDWR by the parent); None for exec.
    pub fifo: Option<OwnedFd>,
    /// A connected --console-socket, for terminal: true.
    pub console_socket: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Keep fds 3..3+preserve_fds open across execve (runc --preserve-fds).
    pub preserve_fds: u32,
    /// For exec: namespace files of the container to join (already opened).
    pub join: Vec<(NsKind, OwnedFd)>,
    /// The compiled seccomp program (the parent prepared it before forking).
    pub seccomp: Option<crate::security::Filter>,
    /// The cgroup the stage moves itself into before anything else (the init and
    /// everything it forks inherit it), and whether it was born in its cgroup2
    /// directory already (`fork_into_cgroup`).
    pub cgroup: Option<(&'a berth_cgroups::Manager, bool)>,
}

/// Entry point of the stage process. Never returns.
pub fn stage(mut ctx: InitContext<'_>) -> ! {
    let chan_fd = ctx.chan.raw();
    // By reference: the channel must still be open to carry the error back.
    match stage_inner(&mut ctx) {
        Ok(never) => match never {},
        Err(msg) => {
            let c = ChannelRef(chan_fd);
            c.send_error(&msg);
            berth_sys::exit_now(1)
        }
    }
}

/// Sends on a channel by raw fd (used on error paths after the Channel moved).
struct ChannelRef(RawFd);

impl ChannelRef {
    fn send_error(&self, msg: &str) {
        let body = serde_json::to_vec(&Msg::Error {
            msg: msg.to_string(),
        })
        .unwrap_or_default();
        let sent = nix::sys::socket::send(self.0, &body, nix::sys::socket::MsgFlags::MSG_NOSIGNAL);
        // A failure of the channel itself means the parent gave up first and has
        // its own error to report; anything else is news worth telling.
        if sent.is_err() && !msg.starts_with("sync:") {
            // Nobody listens any more (the failure came after `start`): the
            // container's stderr is the only place left to say it.
            let _ = writeln!(std::io::stderr(), "berth-runtime: container init: {msg}");
        }
    }
}

enum Never {}

fn stage_inner(ctx: &mut InitContext<'_>) -> Result<Never, String> {
    let _ = nix::sys::prctl::set_dumpable(false);
    if let Some((cg, born_in_unified)) = ctx.cgroup {
        cg.join_self(born_in_unified).map_err(|e| e.to_string())?;
    }
    let plan = ctx.plan;
    let is_exec = ctx.fifo.is_none();

    // Namespaces to join: opened up front, joined in the order below.
    let mut join: Vec<(NsKind, OwnedFd)> = std::mem::take(&mut ctx.join);
    if !is_exec {
        for ns in &plan.namespaces {
            if let Some(p) = &ns.path {
                let f = fs::File::open(p).map_err(|e| {
                    format!(
                        "open {} namespace {}: {e}",
                        ns.kind.spec_name(),
                        p.display()
                    )
                })?;
                join.push((ns.kind, f.into()));
            }
        }
    }
    join.sort_by_key(|(k, _)| *k);
    // runc's order: first every namespace we may enter as we are (a netns the
    // engine made outside the container's userns can only be joined from outside
    // it), then the userns, then those that needed it (a rootless runtime enters
    // the container's own namespaces only from inside its userns).
    let has_user = join.iter().any(|(k, _)| *k == NsKind::User);
    let mut deferred = Vec::new();
    for entry in join.iter().filter(|(k, _)| *k != NsKind::User) {
        let (kind, fd) = entry;
        match setns(fd.as_fd(), kind.clone_flag()) {
            Ok(()) => {}
            Err(nix::Error::EPERM) if has_user => deferred.push(entry),
            Err(e) => return Err(format!("join {} namespace: {e}", kind.spec_name())),
        }
    }
    let user = join.iter().filter(|(k, _)| *k == NsKind::User);
    for (kind, fd) in user.chain(deferred) {
        setns(fd.as_fd(), kind.clone_flag())
            .map_err(|e| format!("join {} namespace: {e}", kind.spec_name()))?;
    }
    if join.iter().any(|(k, _)| *k == NsKind::User) {
        become_root_in_userns()?;
    }

    if !is_exec {
        if plan.has_new(NsKind::User) {
            unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("unshare user namespace: {e}"))?;
            // Only the parent, outside, may write our id maps. An unprivileged
            // parent can only open /proc/<pid>/*_map of a dumpable process: dumpable
            // just for this exchange (runc's nsexec does the same). Nothing from the
            // container runs yet, so nothing can use the window.
            let _ = nix::sys::prctl::set_dumpable(true);
            ctx.chan.send(&Msg::MapRequest).map_err(|e| e.to_string())?;
            ctx.chan
                .expect(Msg::MapDone, "MapDone")
                .map_err(|e| e.to_string())?;
            let _ = nix::sys::prctl::set_dumpable(false);
            become_root_in_userns()?;
        }
        let mut flags = CloneFlags::empty();
        for ns in &plan.namespaces {
            if ns.path.is_none() && ns.kind != NsKind::User {
                flags |= ns.kind.clone_flag();
            }
        }
        unshare(flags).map_err(|e| format!("unshare namespaces ({}): {e}", ns_names(plan)))?;
        if plan.has_new(NsKind::Time) && !plan.time_offsets.is_empty() {
            // Offsets can only be written before any process enters the namespace.
            let mut text = String::new();
            for (clock, secs, nanos) in &plan.time_offsets {
                text.push_str(&format!("{clock} {secs} {nanos}\n"));
            }
            fs::write("/proc/self/timens_offsets", text)
                .map_err(|e| format!("write timens_offsets: {e}"))?;
        }
    }

    // The second fork: children of this process are in the new pid namespace.
    match berth_sys::fork().map_err(|e| format!("fork init: {e}"))? {
        berth_sys::ForkResult::Child => {
            let r = if is_exec {
                exec_process(ctx)
            } else {
                init(ctx)
            };
            let msg = match r {
                Ok(never) => match never {},
                Err(m) => m,
            };
            ChannelRef(ctx.chan.raw()).send_error(&msg);
            berth_sys::exit_now(1)
        }
        berth_sys::ForkResult::Parent { child } => {
            ctx.chan
                .send(&Msg::InitPid {
                    pid: child.as_raw(),
                })
                .map_err(|e| e.to_string())?;
            berth_sys::exit_now(0)
        }
    }
}

fn ns_names(plan: &Plan) -> String {
    plan.namespaces
        .iter()
        .filter(|n| n.path.is_none())
        .map(|n| n.kind.spec_name())
        .collect::<Vec<_>>()
        .join(",")
}

fn become_root_in_userns() -> Result<(), String> {
    let z = Uid::from_raw(0);
    let g = Gid::from_raw(0);
    nix::unistd::setresgid(g, g, g).map_err(|e| format!("setresgid(0) in user namespace: {e}"))?;
    nix::unistd::setresuid(z, z, z).map_err(|e| format!("setresuid(0) in user namespace: {e}"))?;
    Ok(())
}

/// The container's init (pid 1 of a new pid namespace, normally).
fn init(ctx: &mut InitContext<'_>) -> Result<Never, String> {
    let plan = ctx.plan;
    let p = &plan.process;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    if !ctx.no_new_keyring {
        // Its own session keyring, so the container can't read the host's keys.
        if let Err(e) = berth_sys::join_session_keyring(&format!("_ses.{}", ctx.id)) {
            // Kernels with keyrings disabled (ENOSYS) and some user namespaces refuse; runc tolerates it too.
            crate::logging::debug(&format!("join session keyring: {e}"));
        }
    }
    let in_userns = plan.has(NsKind::User);
    // A new or a joined mount namespace both get the full rootfs setup (as runc);
    // without one (inherited from the runtime) the root is only chroot'ed into.
    let new_mnt = plan.has(NsKind::Mnt);
    crate::logging::phase("init start");
    let prepared = if new_mnt {
        Some(crate::rootfs::prepare(plan, in_userns).map_err(|e| e.to_string())?)
    } else {
        None
    };

    crate::logging::phase("rootfs prepared");
    // prestart + createRuntime hooks run in the parent, now that namespaces exist.
    ctx.chan
        .send(&Msg::CreateRuntime)
        .map_err(|e| e.to_string())?;
    let state_json = match ctx.chan.recv().map_err(|e| e.to_string())? {
        Msg::HooksDone { state } => state,
        other => return Err(format!("sync: expected HooksDone, got {other:?}")),
    };
    crate::hooks::run_all(
        "createContainer",
        &plan.hooks.create_container().clone(),
        &state_in_container(&state_json, "creating"),
    )
    .map_err(|e| e.to_string())?;

    if let Some(prepared) = &prepared {
        crate::rootfs::pivot(prepared, &plan.rootfs, ctx.no_pivot).map_err(|e| e.to_string())?;
    } else {
        // The runtime's mount namespace is shared: mounting there would change the
        // host, so the spec's mounts are not made (logged), and the root is a chroot.
        if !plan.mounts.is_empty() {
            crate::logging::warn(
                "no mount namespace: the config's mounts are not made in the runtime's namespace",
            );
        }
        nix::unistd::chroot(&plan.rootfs)
            .map_err(|e| format!("chroot {}: {e}", plan.rootfs.display()))?;
        nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    }
    drop(prepared);
    crate::logging::phase("pivoted");
    if plan.has_new(NsKind::Net) {
        // A new network namespace starts with lo down.
        berth_sys::set_link_up("lo").map_err(|e| format!("bring up lo: {e}"))?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname {h}: {e}"))?;
    }
    if let Some(d) = &plan.domainname {
        berth_sys::setdomainname(d).map_err(|e| format!("setdomainname {d}: {e}"))?;
    }
    for (key, value) in &plan.sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).map_err(|e| format!("sysctl {key}={value}: {e}"))?;
    }
    if new_mnt {
        crate::rootfs::finalize(plan).map_err(|e| e.to_string())?;
    }
    crate::logging::phase("finalized");
    if p.terminal {
        setup_terminal(ctx, true)?;
    }
    let (exe, filter) = become_process(p, plan, ctx.preserve_fds, ctx.seccomp.as_ref())?;

    crate::logging::phase("privileges dropped");
    ctx.chan.send(&Msg::Ready).map_err(|e| e.to_string())?;
    // Block until `start` writes to the exec fifo.
    if let Some(fifo) = ctx.fifo.take() {
        let mut f = fs::File::from(fifo);
        let mut b = [0u8; 1];
        loop {
            match f.read(&mut b) {
                Ok(1) => break,
                Ok(_) => return Err("exec fifo closed before start".into()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read exec fifo: {e}")),
            }
        }
        // The fd stays open (CLOEXEC) until execve: `start` sees the fifo lose
        // its last reader exactly when the user program begins.
        std::mem::forget(f);
    }
    crate::hooks::run_all(
        "startContainer",
        &plan.hooks.start_container().clone(),
        &state_in_container(&state_json, "created"),
    )
    .map_err(|e| e.to_string())?;
    if p.no_new_privileges {
        if let Some(f) = &filter {
            // Last: nothing of ours runs under the filter but execve itself.
            crate::security::load_filter(f).map_err(|e| e.to_string())?;
        }
    }
    do_exec(&exe, p, ctx.preserve_fds)
}

/// The state JSON for hooks run inside the container: the pid as the container
/// sees it (1 in a new pid namespace) and the status at that point (runc does the same).
fn state_in_container(state_json: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state_json) {
        Ok(mut v) => {
            v["pid"] = serde_json::json!(nix::unistd::getpid().as_raw());
            v["status"] = serde_json::json!(status);
            v.to_string()
        }
        Err(_) => state_json.to_string(),
    }
}

/// An `exec`'d process inside a running container.
fn exec_process(ctx: &mut InitContext<'_>) -> Result<Never, String> {
    let plan = ctx.plan;
    let p = &plan.process;
    if p.terminal {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        setup_terminal(ctx, false)?;
    }
    let (exe, filter) = become_process(p, plan, ctx.preserve_fds, ctx.seccomp.as_ref())?;
    if p.no_new_privileges {
        if let Some(f) = &filter {
            crate::security::load_filter(f).map_err(|e| e.to_string())?;
        }
    }
    // The channel is CLOEXEC: the parent sees EOF once execve succeeded.
    do_exec(&exe, p, ctx.preserve_fds)
}

/// Everything between a prepared environment and execve, shared by init and exec:
/// process attributes while privileged, the executable looked up in the container,
/// then user, capabilities, no_new_privs and (unless no_new_privs defers it) seccomp.
/// Returns the filter if it must still be loaded (no_new_privs: just before execve).
fn become_process<'f>(
    p: &ProcessPlan,
    plan: &Plan,
    preserve_fds: u32,
    filter: Option<&'f crate::security::Filter>,
) -> Result<(PathBuf, Option<&'f crate::security::Filter>), String> {
    prepare_process(p, plan)?;
    let exe = find_executable(p)?;
    drop_privileges(p, plan, filter, preserve_fds)?;
    Ok((exe, filter))
}

/// rlimits, oom_score_adj, personality, LSM labels: all while still privileged.
fn prepare_process(p: &ProcessPlan, plan: &Plan) -> Result<(), String> {
    for r in &p.rlimits {
        if let Err(e) = nix::sys::resource::setrlimit(r.resource, r.soft, r.hard) {
            let (_, cur_hard) = nix::sys::resource::getrlimit(r.resource).unwrap_or((0, 0));
            let hint = if e == nix::Error::EPERM && r.hard > cur_hard {
                format!(" (above the runtime's own hard limit {cur_hard}; raising it needs CAP_SYS_RESOURCE)")
            } else {
                String::new()
            };
            return Err(format!(
                "setrlimit {:?} soft={} hard={}: {e}{hint}",
                r.resource, r.soft, r.hard
            ));
        }
    }
    if let Some(adj) = p.oom_score_adj {
        fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj {adj}: {e}"))?;
    }
    if let Some(pers) = plan.personality {
        berth_sys::personality(pers).map_err(|e| format!("personality: {e}"))?;
    }
    if let Some(profile) = &p.apparmor_profile {
        let enabled = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        if !enabled {
            return Err(format!(
                "apparmor profile {profile:?} requested but AppArmor is not enabled on this host"
            ));
        }
        fs::write("/proc/self/attr/apparmor/exec", format!("exec {profile}"))
            .or_else(|_| fs::write("/proc/self/attr/exec", format!("exec {profile}")))
            .map_err(|e| format!("set apparmor profile {profile}: {e}"))?;
    }
    if let Some(label) = &p.selinux_label {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(format!(
                "selinux label {label:?} requested but SELinux is not enabled on this host"
            ));
        }
        fs::write("/proc/self/attr/exec", label)
            .map_err(|e| format!("set selinux label {label}: {e}"))?;
    }
    Ok(())
}

fn drop_privileges(
    p: &ProcessPlan,
    plan: &Plan,
    filter: Option<&crate::security::Filter>,
    preserve_fds: u32,
) -> Result<(), String> {
    // Before any seccomp filter can forbid close_range: no host fd may survive
    // into the container (CVE-2024-21626). Everything opened after this is O_CLOEXEC.
    mark_fds_cloexec(preserve_fds)?;
    if !p.no_new_privileges {
        if let Some(f) = filter {
            // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we have it.
            crate::security::load_filter(f).map_err(|e| e.to_string())?;
        }
    }
    if let Some(c) = &p.capabilities {
        crate::security::drop_bounding(c).map_err(|e| e.to_string())?;
    }
    let setgroups_allowed = fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    crate::security::switch_user(p, setgroups_allowed).map_err(|e| e.to_string())?;
    if let Some(c) = &p.capabilities {
        crate::security::apply_capabilities(c).map_err(|e| e.to_string())?;
    }
    // Without an explicit umask the process gets 0022, not whatever the runtime was started with.
    berth_sys::umask(p.umask.unwrap_or(0o022));
    nix::unistd::chdir(&p.cwd)
        .map_err(|e| format!("chdir to cwd ({}) set in config.json: {e}", p.cwd.display()))?;
    if p.no_new_privileges {
        crate::security::set_no_new_privs().map_err(|e| e.to_string())?;
    }
    let _ = plan;
    Ok(())
}

/// "No such file or directory (os error 2)" → "no such file or directory".
fn lower_os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    s.to_ascii_lowercase()
}

/// args[0] looked up in the process's PATH, inside the container (after pivot_root).
fn find_executable(p: &ProcessPlan) -> Result<PathBuf, String> {
    let name = &p.args[0];
    let is_exec = |path: &Path| {
        fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            p.cwd.join(name)
        };
        if is_exec(&path) {
            return Ok(PathBuf::from(name));
        }
        // runc's words, which engines map to exit codes: a missing file is
        // 127 ("no such file or directory"), anything else 126 ("permission denied")
        return Err(match fs::metadata(&path) {
            Err(e) => format!("exec: {name:?}: stat {name}: {}", lower_os_error(&e)),
            Ok(m) if m.is_dir() => format!("exec: {name:?}: is a directory: permission denied"),
            Ok(_) => format!("exec: {name:?}: permission denied"),
        });
    }
    let path_var = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(name);
        if is_exec(&cand) {
            return Ok(cand);
        }
    }
    Err(format!(
        "exec: {name:?}: executable file not found in $PATH"
    ))
}

/// HOME from the container's /etc/passwd when process.env has none (runc does
/// the same): `/root` for root, the user's home, else "/".
fn home_for(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty() {
            return f[5].to_string();
        }
    }
    if uid == 0 {
        "/root".into()
    } else {
        "/".into()
    }
}

/// close_range(CLOSE_RANGE_CLOEXEC) from fd 3 + preserved; where the kernel or a
/// filter refuses it, the same by walking /proc/self/fd.
fn mark_fds_cloexec(preserve_fds: u32) -> Result<(), String> {
    let first = 3 + preserve_fds;
    if berth_sys::cloexec_from(first).is_ok() {
        return Ok(());
    }
    let dir = fs::read_dir("/proc/self/fd").map_err(|e| format!("list /proc/self/fd: {e}"))?;
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd >= first as i32) {
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    Ok(())
}

fn do_exec(exe: &Path, p: &ProcessPlan, preserve_fds: u32) -> Result<Never, String> {
    use std::os::unix::ffi::OsStrExt;
    let cexe = CString::new(exe.as_os_str().as_bytes())
        .map_err(|_| "exec path contains NUL".to_string())?;
    let args: Vec<CString> = p
        .args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| "argument contains NUL".to_string())?;
    let mut env_list = p.env.clone();
    if !env_list.iter().any(|e| e.starts_with("HOME=")) {
        env_list.push(format!("HOME={}", home_for(p.uid)));
    }
    let env: Vec<CString> = env_list
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| "env contains NUL".to_string())?;
    berth_sys::reset_signal_dispositions();
    // No host fd may survive into the container (CVE-2024-21626).
    // Again, for anything opened since (best effort: a filter may forbid close_range,
    // and drop_privileges already covered every fd that existed then).
    let _ = berth_sys::cloexec_from(3 + preserve_fds);
    let e = nix::unistd::execve(&cexe, &args, &env).unwrap_err();
    Err(format!("exec {}: {e}", exe.display()))
}

/// Create the pty inside the container, make it our stdio and controlling
/// terminal, and hand the master to the console socket (or to the parent for a
/// foreground `run`/`exec`).
fn setup_terminal(ctx: &mut InitContext<'_>, console: bool) -> Result<(), String> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("open /dev/ptmx: {e}"))?;
    nix::pty::grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    nix::pty::unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let slave_name = nix::pty::ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave =
        berth_sys::open_pty_peer(master.as_fd()).map_err(|e| format!("open pty peer: {e}"))?;
    if let Some((rows, cols)) = ctx.plan.process.console_size {
        berth_sys::set_window_size(slave.as_fd(), rows, cols)
            .map_err(|e| format!("set console size: {e}"))?;
    }
    if console && ctx.plan.populate_dev {
        crate::rootfs::mount_console(Path::new(&slave_name)).map_err(|e| e.to_string())?;
    }
    // Send the master before the slave becomes our stdio.
    let master_fd = master.as_raw_fd();
    match ctx.console_socket.take() {
        Some(sock) => {
            let iov = [std::io::IoSlice::new(slave_name.as_bytes())];
            let fds = [master_fd];
            let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
            nix::sys::socket::sendmsg::<()>(
                sock.as_raw_fd(),
                &iov,
                &cmsg,
                nix::sys::socket::MsgFlags::empty(),
                None,
            )
            .map_err(|e| format!("send pty master to console socket: {e}"))?;
        }
        None => ctx
            .chan
            .send_fd(&Msg::Pty, Some(master_fd))
            .map_err(|e| e.to_string())?,
    }
    drop(master);
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).map_err(|e| format!("dup2 pty: {e}"))?;
    }
    berth_sys::set_controlling_terminal(slave.as_fd()).map_err(|e| format!("TIOCSCTTY: {e}"))?;
    Ok(())
}
