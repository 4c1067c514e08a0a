//! attach: the client side of a monitor's attach socket. Output frames go to
//! our stdout/stderr; stdin (when asked for) goes back as frames; a terminal is
//! put in raw mode for `-t` and its size follows ours; ctrl-p ctrl-q detaches
//! (docker's default detach keys).

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub const FRAME_STDIN: u8 = 0;
pub const FRAME_RESIZE: u8 = 1;
pub const FRAME_CLOSE_STDIN: u8 = 2;
pub const FRAME_EXIT: u8 = 0xFE;

pub enum Outcome {
    Exited(i32),
    Detached,
    /// The monitor went away without an exit frame.
    Lost,
}

pub fn connect(sock: &Path) -> io::Result<UnixStream> {
    let mut last = None;
    for _ in 0..200 {
        match UnixStream::connect(sock) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(last.unwrap_or_else(|| io::Error::other("attach socket did not appear")))
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind, 0, 0, 0];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter(enable: bool) -> RawMode {
        use nix::sys::termios::*;
        if !enable {
            return RawMode { saved: None };
        }
        let stdin = io::stdin();
        let Ok(t) = tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode { saved: Some(t) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

pub fn is_terminal() -> bool {
    use std::io::IsTerminal;
    io::stdin().is_terminal()
}

/// Relay until the container exits (or we detach). `stdin`: forward ours.
pub fn relay(stream: UnixStream, stdin: bool, tty: bool) -> io::Result<Outcome> {
    let raw = RawMode::enter(tty && stdin && is_terminal());
    if tty {
        if let Ok((rows, cols)) = berth_sys::window_size(io::stdout().as_fd())
            .or_else(|_| berth_sys::window_size(io::stdin().as_fd()))
        {
            let mut p = rows.to_be_bytes().to_vec();
            p.extend_from_slice(&cols.to_be_bytes());
            let _ = (&stream).write_all(&frame(FRAME_RESIZE, &p));
        }
    }
    let (detach_tx, detach_rx) = std::sync::mpsc::channel::<()>();
    if stdin {
        let mut w = stream.try_clone()?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut prev_ctrl_p = false;
            let mut last_size = None;
            loop {
                let n = match io::stdin().read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = w.write_all(&frame(FRAME_CLOSE_STDIN, &[]));
                        return;
                    }
                    Ok(n) => n,
                };
                if tty {
                    // ctrl-p ctrl-q: detach, leaving the container running
                    for &b in &buf[..n] {
                        if prev_ctrl_p && b == 0x11 {
                            let _ = detach_tx.send(());
                            let _ = w.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        prev_ctrl_p = b == 0x10;
                    }
                    let size = berth_sys::window_size(io::stdout().as_fd()).ok();
                    if size.is_some() && size != last_size {
                        last_size = size;
                        if let Some((r, c)) = size {
                            let mut p = r.to_be_bytes().to_vec();
                            p.extend_from_slice(&c.to_be_bytes());
                            let _ = w.write_all(&frame(FRAME_RESIZE, &p));
                        }
                    }
                }
                if w.write_all(&frame(FRAME_STDIN, &buf[..n])).is_err() {
                    return;
                }
            }
        });
    }
    let mut r = stream;
    let mut header = [0u8; 8];
    let out = io::stdout();
    let err = io::stderr();
    let result = loop {
        if r.read_exact(&mut header).is_err() {
            break if detach_rx.try_recv().is_ok() {
                Outcome::Detached
            } else {
                Outcome::Lost
            };
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).is_err() {
            break Outcome::Lost;
        }
        match header[0] {
            1 => {
                let mut o = out.lock();
                let _ = o.write_all(&payload);
                let _ = o.flush();
            }
            2 => {
                let mut e = err.lock();
                let _ = e.write_all(&payload);
                let _ = e.flush();
            }
            FRAME_EXIT if len == 4 => {
                break Outcome::Exited(i32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]))
            }
            _ => {}
        }
    };
    drop(raw);
    Ok(result)
}
