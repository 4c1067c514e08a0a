//! berth-init: pid 1 for `berth run --init` (docker's tini, catatonit for podman).
//!
//! A process that was never written to be pid 1 neither reaps the orphans
//! that get reparented to it nor dies on SIGTERM (the kernel drops signals to
//! pid 1 that it has no handler for). berth-init runs the real command as its
//! child and does both: every signal it receives is forwarded to the child,
//! every zombie is reaped, and it exits with the child's status (128+N when
//! the child died of signal N).
//!
//! Built as a static binary (scripts build it like tests/checker) and
//! bind-mounted read-only at /sbin/berth-init, so it runs in any image and a
//! container cannot rewrite it (it is busy while it runs: ETXTBSY).

use std::process::Command;

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("berth-init: usage: berth-init -- COMMAND [ARG...]");
        std::process::exit(2);
    }
    let child = match Command::new(&args[0]).args(&args[1..]).spawn() {
        Ok(c) => Pid::from_raw(c.id() as i32),
        Err(e) => {
            eprintln!("berth-init: exec {}: {e}", args[0]);
            std::process::exit(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    // Signals are blocked only now: the child inherits our mask (std's spawn
    // does not reset it). A signal sent in the instant between is dropped by the
    // kernel (pid 1 without a handler), and a child that already exited is
    // found by the first reaping pass below.
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    for s in [
        Signal::SIGFPE,
        Signal::SIGILL,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        all.remove(s);
    }
    if let Err(e) = all.thread_block() {
        eprintln!("berth-init: block signals: {e}");
        std::process::exit(1);
    }
    let mut sig = Signal::SIGCHLD;
    loop {
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            sig = all.wait().unwrap_or(Signal::SIGCHLD);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(p, s, _)) if p == child => {
                    std::process::exit(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        sig = all.wait().unwrap_or(Signal::SIGCHLD);
    }
}
