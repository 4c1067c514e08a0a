//! berth-monitor: the tiny parent of one container (the role conmon plays).
//!
//! It starts the OCI runtime's `create` (or `run --detach`), becomes the container's parent (it is a
//! child subreaper, so the init is reparented to it when `create` exits), and
//! then does only four things until the container exits:
//!   1. holds the container's stdio (pipes, or the pty master received over the
//!      console socket) and writes every byte to the log in Docker's json-file
//!      format, rotating at --log-max-size;
//!   2. serves `attach.sock`: any number of clients get the output as Docker's
//!      8-byte-header frames and can send stdin / window sizes / stdin close;
//!   3. reaps, and writes the exit status to `exit` (atomically);
//!   4. execs the exit command (`berth container cleanup ID`), which does the
//!      heavier work (OOM check, unmount, network detach, --rm, restart policy).
//! Everything else lives in `berth`, so this process stays small (target < 1 MiB
//! RSS): no allocator-heavy crates, no threads, one poll loop.
//!
//! Protocol on --report-fd (to the engine that spawned us): one line, `ok <pid>` after a
//! successful create, or `err <message>`. The runtime command may be `create` (the
//! container waits for a `start`) or `run --detach` (create and start in one exec of
//! the runtime, one fewer per container). With `--hold`, after `ok` the monitor
//! waits until the engine closes its end of the pipe — the record is saved and the
//! attach client (and its cleanup claim) connected — before it reads the
//! container's output or acts on its exit, so an attached `berth run` misses no
//! output and no early exit even though the container is already running.
//!
//! Frames (both directions): `[kind u8][0 0 0][len u32 BE][payload]`.
//! monitor → client: kind 1 stdout, 2 stderr, 0xFE exit (payload i32 BE).
//! client → monitor: kind 0 stdin bytes, 1 resize (rows u16, cols u16), 2 close stdin,
//! 3 "I will clean up" (the attached `berth run`, which is waiting anyway, does the
//! exit command's work itself and saves an exec of the CLI), 4 "cleanup done".
//! A claim binds only while its client stays connected: if it goes away before
//! the exit, or after the exit without sending 4 (killed mid-cleanup), the
//! monitor execs the exit command as usual, so a `kill -9` of the CLI never
//! leaves a container unrecorded.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub const FRAME_STDIN: u8 = 0;
pub const FRAME_RESIZE: u8 = 1;
pub const FRAME_CLOSE_STDIN: u8 = 2;
pub const FRAME_CLAIM_CLEANUP: u8 = 3;
pub const FRAME_CLEANUP_DONE: u8 = 4;
pub const FRAME_EXIT: u8 = 0xFE;

struct Args {
    dir: PathBuf,
    /// Where the sockets go: a short path (sun_path is 108 bytes).
    sock_dir: PathBuf,
    log: PathBuf,
    log_max_size: u64,
    log_max_file: u32,
    tty: bool,
    stdin: bool,
    pid_file: PathBuf,
    report_fd: Option<i32>,
    /// After reporting, wait until the engine closes its end of the report pipe
    /// before touching the container's output or exit (see the module docs).
    hold: bool,
    exit_command: Vec<String>,
    runtime: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        dir: PathBuf::new(),
        sock_dir: PathBuf::new(),
        log: PathBuf::new(),
        log_max_size: 0,
        log_max_file: 1,
        tty: false,
        stdin: false,
        pid_file: PathBuf::new(),
        report_fd: None,
        hold: false,
        exit_command: Vec::new(),
        runtime: Vec::new(),
    };
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => a.dir = val()?.into(),
            "--sock-dir" => a.sock_dir = val()?.into(),
            "--log" => a.log = val()?.into(),
            "--log-max-size" => {
                a.log_max_size = val()?.parse().map_err(|_| "bad --log-max-size")?
            }
            "--log-max-file" => {
                a.log_max_file = val()?.parse().map_err(|_| "bad --log-max-file")?
            }
            "--pid-file" => a.pid_file = val()?.into(),
            "--report-fd" => a.report_fd = Some(val()?.parse().map_err(|_| "bad --report-fd")?),
            "--tty" => a.tty = true,
            "--stdin" => a.stdin = true,
            "--hold" => a.hold = true,
            "--exit-command" => a.exit_command.push(val()?),
            "--" => {
                a.runtime = it.by_ref().collect();
                break;
            }
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    if a.sock_dir.as_os_str().is_empty() {
        a.sock_dir = a.dir.clone();
    }
    if a.runtime.is_empty() || a.dir.as_os_str().is_empty() {
        return Err(
            "usage: berth-monitor --dir D --log L --pid-file P [...] -- RUNTIME ARGS".into(),
        );
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            std::process::exit(2);
        }
    };
    // The engine's end of the start handshake; close-on-exec so neither the
    // runtime nor the container inherits it.
    let mut report = args.report_fd.map(|fd| {
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        File::from(berth_sys::own_fd(fd))
    });
    match run(&args, &mut report) {
        Ok((_, true)) => {}
        Ok((_, false)) => {
            // run() has written the exit status already.
            if !args.exit_command.is_empty() {
                // exec keeps the signal mask: the cleanup (and any container it
                // restarts) must not start with SIGCHLD blocked
                let _ = SigSet::all().thread_unblock();
                let err = Command::new(&args.exit_command[0])
                    .args(&args.exit_command[1..])
                    .exec();
                eprintln!("berth-monitor: exec exit command: {err}");
            }
        }
        Err(e) => {
            if let Some(r) = report.as_mut() {
                let _ = writeln!(r, "err {}", e.replace('\n', " "));
            }
            std::process::exit(1);
        }
    }
}

fn write_exit(dir: &Path, code: i32) -> io::Result<()> {
    let tmp = dir.join(".exit.tmp");
    let mut f = File::create(&tmp)?;
    writeln!(f, "{code} {}", now_rfc3339())?;
    // No fsync: this lives under the run root, and the cleanup folds it into the
    // record within milliseconds; a missing or empty file after a power loss
    // reads as exit code 255, which is all a lost file could say anyway.
    fs::rename(tmp, dir.join("exit"))
}

/// Where the container's output comes from.
enum Output {
    Pipes {
        stdout: Option<File>,
        stderr: Option<File>,
    },
    Pty(Option<File>),
}

/// Returns the exit code and whether an attached client did the cleanup.
fn run(args: &Args, report: &mut Option<File>) -> Result<(i32, bool), String> {
    nix::unistd::setsid().ok();
    berth_sys::set_child_subreaper().map_err(|e| format!("set child subreaper: {e}"))?;

    let attach_path = args.sock_dir.join("attach.sock");
    let _ = fs::remove_file(&attach_path);
    let listener = UnixListener::bind(&attach_path)
        .map_err(|e| format!("bind {}: {e}", attach_path.display()))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;

    // The runtime's own stderr: errors from `create` are read from here.
    let (rt_err_r, rt_err_w) = pipe_cloexec().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&args.runtime[0]);
    cmd.args(&args.runtime[1..]);
    let mut stdin_w: Option<File> = None;
    let mut output;
    let mut console: Option<UnixListener> = None;
    if args.tty {
        let sock = args.sock_dir.join("console.sock");
        let _ = fs::remove_file(&sock);
        let l = UnixListener::bind(&sock).map_err(|e| format!("bind {}: {e}", sock.display()))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        console = Some(l);
        cmd.arg("--console-socket").arg(&sock);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(rt_err_w));
        output = Output::Pty(None);
    } else {
        let (out_r, out_w) = pipe_cloexec().map_err(|e| e.to_string())?;
        let (err_r, err_w) = pipe_cloexec().map_err(|e| e.to_string())?;
        if args.stdin {
            let (in_r, in_w) = pipe_cloexec().map_err(|e| e.to_string())?;
            cmd.stdin(Stdio::from(in_r));
            stdin_w = Some(File::from(in_w));
        } else {
            cmd.stdin(Stdio::null());
        }
        cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        // The runtime's own errors go to our private pipe via --log? No: runc-style
        // runtimes print to stderr, which is the container's stderr pipe here; we read
        // that pipe before the container starts, so it is the runtime's message.
        drop(rt_err_w);
        output = Output::Pipes {
            stdout: Some(File::from(out_r)),
            stderr: Some(File::from(err_r)),
        };
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("exec {}: {e}", args.runtime[0]))?;
    drop(cmd);

    // Wait for `create`, taking the pty master from the console socket meanwhile:
    // asleep in poll on the runtime's pidfd (and the console socket), so its exit
    // wakes us at once.
    let pidfd = berth_sys::pidfd_open(child.id() as i32).ok();
    let status = loop {
        if let Some(l) = &console {
            if let Ok((s, _)) = l.accept() {
                let fd = receive_fd(&s).map_err(|e| format!("receive pty master: {e}"))?;
                output = Output::Pty(Some(File::from(fd)));
                console = None;
            }
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {
                let mut fds = Vec::with_capacity(2);
                if let Some(p) = &pidfd {
                    fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                }
                if let Some(l) = &console {
                    fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                }
                // Without a pidfd (old kernel): the old 1 ms polling.
                let timeout = if pidfd.is_some() {
                    PollTimeout::NONE
                } else {
                    PollTimeout::from(1u16)
                };
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(format!("poll: {e}")),
                }
            }
            Err(e) => return Err(format!("wait for runtime: {e}")),
        }
    };
    drop(pidfd);
    if let Some(l) = &console {
        // create may have sent the fd just before exiting
        l.set_nonblocking(true).ok();
        if let Ok((s, _)) = l.accept() {
            if let Ok(fd) = receive_fd(&s) {
                output = Output::Pty(Some(File::from(fd)));
            }
        }
    }
    let _ = fs::remove_file(args.sock_dir.join("console.sock"));
    if !status.success() {
        let mut msg = String::new();
        let mut from = match &mut output {
            Output::Pipes {
                stderr: Some(e), ..
            } => e.try_clone().ok(),
            _ => Some(File::from(rt_err_r)),
        };
        if let Some(f) = from.as_mut() {
            set_nonblocking(f.as_fd());
            let mut buf = vec![0u8; 65536];
            if let Ok(n) = f.read(&mut buf) {
                msg = String::from_utf8_lossy(&buf[..n]).trim().to_string();
            }
        }
        if msg.is_empty() {
            msg = format!("runtime create failed ({status})");
        }
        let _ = fs::remove_file(&attach_path);
        return Err(msg);
    }
    let pid: i32 = fs::read_to_string(&args.pid_file)
        .map_err(|e| format!("read pid file {}: {e}", args.pid_file.display()))?
        .trim()
        .parse()
        .map_err(|_| "bad pid file".to_string())?;
    if let Some(r) = report.as_mut() {
        let _ = writeln!(r, "ok {pid}");
        if args.hold {
            wait_reader_gone(r);
        }
    }
    *report = None;

    // SIGCHLD is blocked only now: a mask set earlier would be inherited by the
    // runtime and the container. An exit that raced this is caught by the first
    // reaping pass (`check_children` starts true).
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| format!("block SIGCHLD: {e}"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let mut check_children = true;
    let mut log = Log::open(&args.log, args.log_max_size, args.log_max_file)?;
    let mut clients: Vec<Client> = Vec::new();
    let mut exit_code: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    if let Output::Pty(Some(m)) = &output {
        set_nonblocking(m.as_fd());
    }
    let mut buf = vec![0u8; 32 * 1024];
    // From here on the monitor only polls, copies and reaps: the code that got it
    // here (argument parsing, spawning the runtime, most of libc and std) need not
    // stay mapped for the container's lifetime. Its RSS drops by most of the
    // binary's size; what it runs next faults back in from the page cache.
    let _ = berth_sys::release_code_pages();
    loop {
        // After the init exits, give the pipes a moment to drain, then stop.
        let open_outputs = match &output {
            Output::Pipes { stdout, stderr } => {
                stdout.is_some() as usize + stderr.is_some() as usize
            }
            Output::Pty(m) => m.is_some() as usize,
        };
        if let Some(t) = exited_at {
            if open_outputs == 0 || t.elapsed() > Duration::from_millis(500) {
                break;
            }
        }
        let mut fds: Vec<PollFd> = Vec::with_capacity(4 + clients.len());
        fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        let mut kinds: Vec<u8> = vec![0xFF, 0xFF];
        match &output {
            Output::Pipes { stdout, stderr } => {
                if let Some(f) = stdout {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    kinds.push(1);
                }
                if let Some(f) = stderr {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    kinds.push(2);
                }
            }
            Output::Pty(Some(m)) => {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                kinds.push(1);
            }
            Output::Pty(None) => {}
        }
        let first_client = fds.len();
        for c in &clients {
            fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
        }
        let timeout = if check_children {
            PollTimeout::ZERO
        } else if exited_at.is_some() {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|p| p.revents().map(|r| !r.is_empty()).unwrap_or(false))
            .collect();
        drop(fds);
        if ready[0] || check_children {
            check_children = false;
            while let Ok(Some(_)) = sfd.read_signal() {}
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => exit_code = Some(code),
                    Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                        exit_code = Some(128 + sig as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            if exit_code.is_some() && exited_at.is_none() {
                exited_at = Some(Instant::now());
            }
        }
        if ready[1] {
            while let Ok((s, _)) = listener.accept() {
                set_nonblocking(s.as_fd());
                let mut c = Client {
                    stream: s,
                    inbuf: Vec::new(),
                    claimed: false,
                };
                // What it sent before connecting counts now: a claim sent before
                // the exit must be seen before the exit is acted on.
                if serve_client(&mut c, &mut buf, &output, &mut stdin_w) {
                    clients.push(c);
                }
            }
        }
        for (i, kind) in kinds.iter().enumerate().skip(2) {
            if !ready[i] {
                continue;
            }
            let src: &mut Option<File> = match (&mut output, *kind) {
                (Output::Pipes { stdout, .. }, 1) => stdout,
                (Output::Pipes { stderr, .. }, _) => stderr,
                (Output::Pty(m), _) => m,
            };
            let Some(f) = src.as_mut() else { continue };
            match f.read(&mut buf) {
                Ok(0) => *src = None,
                Ok(n) => {
                    let stream = if *kind == 1 { "stdout" } else { "stderr" };
                    log.write(stream, &buf[..n]);
                    let frame = frame(*kind, &buf[..n]);
                    clients.retain_mut(|c| write_blocking(&mut c.stream, &frame).is_ok());
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => *src = None, // EIO on a pty whose slave side closed
            }
        }
        let mut drop_clients = Vec::new();
        for (ci, c) in clients.iter_mut().enumerate() {
            if ready.get(first_client + ci).copied().unwrap_or(false)
                && !serve_client(c, &mut buf, &output, &mut stdin_w)
            {
                drop_clients.push(ci);
            }
        }
        for ci in drop_clients.into_iter().rev() {
            clients.remove(ci);
        }
    }
    log.flush();
    let code = exit_code.unwrap_or(255);
    // The exit status is on disk before any client hears it, so `berth wait`
    // and the attached `berth run` agree.
    write_exit(&args.dir, code).map_err(|e| format!("write exit status: {e}"))?;
    let f = frame(FRAME_EXIT, &code.to_be_bytes());
    for c in clients.iter_mut() {
        let _ = write_blocking(&mut c.stream, &f);
    }
    // A client that claimed the cleanup does it now; wait for its word (or its end).
    let mut cleaned = false;
    for c in clients.iter_mut().filter(|c| c.claimed) {
        cleaned |= wait_cleanup_done(c);
    }
    drop(clients);
    let _ = fs::remove_file(&attach_path);
    Ok((code, cleaned))
}

/// Read what a client sent and act on each complete frame; false when it is gone.
fn serve_client(
    c: &mut Client,
    buf: &mut [u8],
    output: &Output,
    stdin_w: &mut Option<File>,
) -> bool {
    match c.stream.read(buf) {
        Ok(0) => false,
        Ok(n) => {
            c.inbuf.extend_from_slice(&buf[..n]);
            while let Some((kind, payload)) = take_frame(&mut c.inbuf) {
                match kind {
                    FRAME_STDIN => match output {
                        Output::Pty(Some(m)) => {
                            let _ = write_blocking(&mut &*m, &payload);
                        }
                        _ => {
                            if let Some(w) = stdin_w.as_mut() {
                                if write_blocking(w, &payload).is_err() {
                                    *stdin_w = None;
                                }
                            }
                        }
                    },
                    FRAME_RESIZE if payload.len() == 4 => {
                        if let Output::Pty(Some(m)) = output {
                            let rows = u16::from_be_bytes([payload[0], payload[1]]);
                            let cols = u16::from_be_bytes([payload[2], payload[3]]);
                            let _ = berth_sys::set_window_size(m.as_fd(), rows, cols);
                        }
                    }
                    FRAME_CLOSE_STDIN => *stdin_w = None,
                    FRAME_CLAIM_CLEANUP => c.claimed = true,
                    _ => {}
                }
            }
            true
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        Err(_) => false,
    }
}

/// `--hold`: sleep until the engine closes the read end of the report pipe
/// (POLLERR on our write end), which it does once the container's record is
/// saved and its attach client, if any, is connected — or when it dies.
fn wait_reader_gone(report: &File) {
    loop {
        let mut p = [PollFd::new(report.as_fd(), PollFlags::empty())];
        match poll(&mut p, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// Block until the client sends FRAME_CLEANUP_DONE (true) or goes away (false).
fn wait_cleanup_done(c: &mut Client) -> bool {
    if c.stream.set_nonblocking(false).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    loop {
        while let Some((kind, _)) = take_frame(&mut c.inbuf) {
            if kind == FRAME_CLEANUP_DONE {
                return true;
            }
        }
        match c.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    /// Sent FRAME_CLAIM_CLEANUP: it runs the exit command's work itself.
    claimed: bool,
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&[kind, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn take_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 8 {
        return None;
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if buf.len() < 8 + len {
        return None;
    }
    let kind = buf[0];
    let payload = buf[8..8 + len].to_vec();
    buf.drain(..8 + len);
    Some((kind, payload))
}

/// Write everything, waiting on a non-blocking fd when it is full (a slow
/// attached client slows the container's output rather than losing it).
fn write_blocking(w: &mut (impl Write + AsFd), mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match w.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut p = [PollFd::new(w.as_fd(), PollFlags::POLLOUT)];
                if poll(&mut p, PollTimeout::from(5000u16)).map_err(io::Error::from)? == 0 {
                    return Err(io::ErrorKind::TimedOut.into());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Both ends close-on-exec: `Stdio::from` dups the child's end onto 0/1/2, so
/// nothing else of ours leaks into the runtime or the container.
fn pipe_cloexec() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(fl) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
        );
    }
}

fn receive_fd(s: &UnixStream) -> io::Result<OwnedFd> {
    s.set_nonblocking(false)?;
    let mut data = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                return Ok(berth_sys::own_fd(fd));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no fd in console socket message",
    ))
}

/// Docker's json-file log: one JSON object per chunk, `{"log","stream","time"}`,
/// lines split at '\n' (a partial line is written when the buffer fills).
struct Log {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: u64,
    max_file: u32,
    pending: [Vec<u8>; 2],
}

impl Log {
    fn open(path: &Path, max_size: u64, max_file: u32) -> Result<Log, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("open log {}: {e}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Log {
            path: path.into(),
            file: Some(file),
            size,
            max_size,
            max_file: max_file.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    fn write(&mut self, stream: &str, data: &[u8]) {
        let i = (stream == "stderr") as usize;
        self.pending[i].extend_from_slice(data);
        while let Some(nl) = self.pending[i].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending[i].drain(..=nl).collect();
            self.emit(stream, &line);
        }
        if self.pending[i].len() >= 16 * 1024 {
            let line = std::mem::take(&mut self.pending[i]);
            self.emit(stream, &line);
        }
    }

    fn flush(&mut self) {
        for (i, stream) in ["stdout", "stderr"].iter().enumerate() {
            if !self.pending[i].is_empty() {
                let line = std::mem::take(&mut self.pending[i]);
                self.emit(stream, &line);
            }
        }
    }

    fn emit(&mut self, stream: &str, line: &[u8]) {
        let mut rec = String::with_capacity(line.len() + 80);
        rec.push_str("{\"log\":");
        json_string(&mut rec, &String::from_utf8_lossy(line));
        rec.push_str(",\"stream\":\"");
        rec.push_str(stream);
        rec.push_str("\",\"time\":\"");
        rec.push_str(&now_rfc3339());
        rec.push_str("\"}\n");
        if self.max_size > 0 && self.size + rec.len() as u64 > self.max_size && self.size > 0 {
            self.rotate();
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(rec.as_bytes()).is_ok() {
                self.size += rec.len() as u64;
            }
        }
    }

    /// log → log.1 → … → log.(max_file-1); the oldest falls off.
    fn rotate(&mut self) {
        self.file = None;
        let name = |n: u32| {
            if n == 0 {
                self.path.clone()
            } else {
                PathBuf::from(format!("{}.{n}", self.path.display()))
            }
        };
        if self.max_file <= 1 {
            let _ = fs::remove_file(name(0));
        } else {
            for n in (0..self.max_file - 1).rev() {
                let _ = fs::rename(name(n), name(n + 1));
            }
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        self.size = 0;
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 UTC with nanoseconds, as Docker's log timestamps.
fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}
