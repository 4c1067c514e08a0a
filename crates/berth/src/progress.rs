//! progress: a live status line for long transfers (load, pull, push) when
//! stdout is a terminal — a bar when the total is known, a running count
//! otherwise. Off a terminal nothing is drawn; callers print plain lines.

use std::io::{self, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Counters {
    pub bytes: AtomicU64,
    pub items: AtomicU64,
}

pub struct Progress {
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Start drawing `label` with the counters, if stdout is a terminal.
    pub fn start(label: &str, total: Option<u64>, item_word: &'static str) -> Progress {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = io::stdout().is_terminal().then(|| {
            let (c, s, label) = (counters.clone(), stop.clone(), label.to_string());
            let started = Instant::now();
            std::thread::spawn(move || loop {
                let done = s.load(Ordering::Relaxed);
                let line = render(
                    &label,
                    c.bytes.load(Ordering::Relaxed),
                    total,
                    c.items.load(Ordering::Relaxed),
                    item_word,
                    started.elapsed(),
                );
                let mut out = io::stdout().lock();
                let _ = write!(out, "\r\x1b[2K{line}");
                if done {
                    let _ = writeln!(out);
                    return;
                }
                let _ = out.flush();
                drop(out);
                std::thread::sleep(Duration::from_millis(100));
            })
        });
        Progress {
            counters,
            stop,
            thread,
        }
    }

    /// Counting without drawing (`-q`).
    pub fn start_hidden() -> Progress {
        Progress {
            counters: Arc::new(Counters::default()),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `label [=========>          ] 120.5MB/240.0MB 2.1s`, or without a total
/// `label 3 layers, 12.4MB 2.1s`.
pub fn render(
    label: &str,
    bytes: u64,
    total: Option<u64>,
    items: u64,
    item_word: &str,
    elapsed: Duration,
) -> String {
    let size = crate::containers::human_size;
    let secs = format!("{:.1}s", elapsed.as_secs_f64());
    match total.filter(|t| *t > 0) {
        Some(t) => {
            let width = 30usize;
            let filled = ((bytes.min(t) as f64 / t as f64) * width as f64) as usize;
            let mut bar = "=".repeat(filled);
            if filled < width {
                bar.push('>');
                bar.push_str(&" ".repeat(width - filled - 1));
            }
            format!("{label} [{bar}] {}/{} {secs}", size(bytes), size(t))
        }
        None => format!("{label} {items} {item_word}, {} {secs}", size(bytes)),
    }
}

/// A reader that counts what passes through it.
pub struct Counting<R> {
    pub inner: R,
    pub counters: Arc<Counters>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn bars() {
        let s = render(
            "Loading",
            50,
            Some(100),
            0,
            "layers",
            Duration::from_millis(1500),
        );
        assert_eq!(s, "Loading [===============>              ] 50B/100B 1.5s");
        let s = render(
            "Loading",
            100,
            Some(100),
            0,
            "layers",
            Duration::from_secs(2),
        );
        assert!(s.contains("[==============================]"), "{s}");
        let s = render(
            "Pulling x",
            2_000_000,
            None,
            3,
            "layers",
            Duration::from_secs(1),
        );
        assert_eq!(s, "Pulling x 3 layers, 2MB 1.0s");
    }
}
