//! Opt-in per-phase timing of attach/detach, for the `net_timing` benchmark.
//!
//! Disabled (one relaxed atomic load per mark) unless [`enable`] was called.
//! Marks are kept per thread: an operation runs on its caller's thread, so
//! concurrent operations on other threads do not mix their phases.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The last mark's time and the phases recorded so far.
type Marks = (Option<Instant>, Vec<(&'static str, f64)>);

thread_local! {
    static MARKS: RefCell<Marks> = const { RefCell::new((None, Vec::new())) };
}

/// Turns phase recording on or off for the whole process.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Returns and clears the phases recorded on this thread: (name, milliseconds).
pub fn take() -> Vec<(&'static str, f64)> {
    MARKS.with(|m| {
        let mut m = m.borrow_mut();
        m.0 = None;
        std::mem::take(&mut m.1)
    })
}

/// Starts a new interval (the beginning of an operation).
pub(crate) fn start() {
    if ENABLED.load(Ordering::Relaxed) {
        MARKS.with(|m| m.borrow_mut().0 = Some(Instant::now()));
    }
}

/// Records the time since the previous mark (or [`start`]) under `phase`.
pub(crate) fn mark(phase: &'static str) {
    if ENABLED.load(Ordering::Relaxed) {
        MARKS.with(|m| {
            let mut m = m.borrow_mut();
            let now = Instant::now();
            if let Some(prev) = m.0.replace(now) {
                m.1.push((phase, (now - prev).as_secs_f64() * 1e3));
            }
        });
    }
}
