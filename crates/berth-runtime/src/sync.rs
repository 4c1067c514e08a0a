//! sync: the typed parent ↔ child protocol used while a container is created.
//!
//! Three processes take part: the runtime parent (P), a short-lived stage
//! process (S) that joins/creates namespaces, and the container init (I),
//! forked by S so that it is pid 1 of a new pid namespace.
//!
//! ```text
//!  P (berth-runtime create)        S (stage)                    I (init)
//!  fork S (clone3 into cgroup2) ──►  join v1 cgroups itself ("0" > tasks)
//!                                    setns(paths)
//!                  ◄─ MapRequest ──  unshare(USER)      (only for a new userns)
//!  write uid/gid_map ─ MapDone ───►  setresuid(0)
//!                                    unshare(rest), fork I ──────►
//!                  ◄─ InitPid ─────  exit(0)
//!                  ◄─ CreateRuntime ─────────────────────────────  mounts prepared in new mnt ns
//!  prestart + createRuntime hooks
//!                  ─ HooksDone ─────────────────────────────────►  createContainer hooks, pivot_root,
//!                                                                  devices, sysctl, user, caps
//!                  ◄─ Pty (+fd, foreground terminal only) ─────
//!                  ◄─ Ready ───────────────────────────────────  wait on exec fifo (start)
//!  write pid file + state.json, exit (create) or wait (run)
//! ```
//! Any side may instead send `Error { msg }`; P then kills what exists and
//! undoes its own steps in reverse.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    MapRequest,
    MapDone,
    InitPid {
        pid: i32,
    },
    CreateRuntime,
    /// Carries the OCI state JSON for the hooks the init runs itself.
    HooksDone {
        state: String,
    },
    Pty,
    Ready,
    Error {
        msg: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync: {op}: {source}")]
    Io {
        op: &'static str,
        source: nix::Error,
    },
    #[error("sync: peer closed the channel")]
    Closed,
    #[error("sync: bad message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("sync: expected {expected}, got {got:?}")]
    Unexpected { expected: &'static str, got: Msg },
    #[error("{0}")]
    Remote(String),
}

/// One end of a SOCK_SEQPACKET pair: message boundaries are kept by the kernel.
pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| SyncError::Io {
        op: "socketpair",
        source,
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        self.send_fd(msg, None)
    }

    /// Send a message, optionally with one fd attached (SCM_RIGHTS).
    pub fn send_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<(), SyncError> {
        let buf = serde_json::to_vec(msg)?;
        let iov = [IoSlice::new(&buf)];
        let fds;
        let cmsg: Vec<ControlMessage> = match fd {
            Some(f) => {
                fds = [f];
                vec![ControlMessage::ScmRights(&fds)]
            }
            None => vec![],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|source| SyncError::Io { op: "send", source })?;
        Ok(())
    }

    pub fn recv(&self) -> Result<Msg, SyncError> {
        Ok(self.recv_fd()?.0)
    }

    /// Receive a message and the fd attached to it, if any. `Error` messages become `Err(Remote)`.
    pub fn recv_fd(&self) -> Result<(Msg, Option<OwnedFd>), SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r
                        .cmsgs()
                        .map_err(|source| SyncError::Io { op: "recv", source })?
                    {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                let owned = berth_sys::own_fd(f);
                                if fd.is_none() {
                                    fd = Some(owned);
                                }
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::Error::EINTR) => continue,
                Err(source) => return Err(SyncError::Io { op: "recv", source }),
            }
        };
        if n == 0 {
            return Err(SyncError::Closed);
        }
        let msg: Msg = serde_json::from_slice(&buf[..n])?;
        if let Msg::Error { msg } = msg {
            return Err(SyncError::Remote(msg));
        }
        Ok((msg, fd))
    }

    /// Receive and require a specific message.
    pub fn expect(&self, want: Msg, name: &'static str) -> Result<(), SyncError> {
        let got = self.recv()?;
        if got != want {
            return Err(SyncError::Unexpected {
                expected: name,
                got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_fd() {
        let (a, b) = pair().expect("pair");
        let f = std::fs::File::open("/dev/null").expect("open");
        a.send_fd(&Msg::Pty, Some(f.as_raw_fd())).expect("send");
        let (m, fd) = b.recv_fd().expect("recv");
        assert_eq!(m, Msg::Pty);
        assert!(fd.is_some());
        a.send(&Msg::Error { msg: "boom".into() }).expect("send");
        assert!(matches!(b.recv(), Err(SyncError::Remote(m)) if m == "boom"));
        drop(a);
        assert!(matches!(b.recv(), Err(SyncError::Closed)));
    }
}
