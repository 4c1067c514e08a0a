//! logging: runc-compatible log output.
//!
//! containerd's runc shim passes `--log <file> --log-format json` and, when a
//! command fails, reports the `msg` of the last `{"level","msg","time"}` line
//! of that file. So every error is written there once, as that JSON, and also
//! printed to stderr as one plain line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Sink {
    path: Option<PathBuf>,
    format: Format,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

pub fn init(path: Option<PathBuf>, format: Format, debug: bool) {
    let _ = SINK.set(Sink {
        path,
        format,
        debug,
    });
}

pub fn is_debug() -> bool {
    SINK.get().is_some_and(|s| s.debug)
}

/// Write one log line at `level` ("debug", "info", "warning", "error").
pub fn log(level: &str, msg: &str) {
    let Some(sink) = SINK.get() else { return };
    if level == "debug" && !sink.debug {
        return;
    }
    let line = match sink.format {
        Format::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": rfc3339_now()}).to_string()
        }
        Format::Text => format!("time=\"{}\" level={} msg={:?}", rfc3339_now(), level, msg),
    };
    match &sink.path {
        Some(p) => {
            if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(p) {
                let _ = writeln!(f, "{line}");
            }
        }
        // Without a log file, warnings and errors-worth-knowing go to stderr (as runc's logrus).
        None if sink.debug || level == "warning" => eprintln!("{line}"),
        None => {}
    }
}

static START: OnceLock<(std::time::Instant, bool)> = OnceLock::new();

/// Mark the process start for [`phase`]. `BERTH_TIMING=1` turns phase timing on.
pub fn start_clock() {
    let _ = START.set((
        std::time::Instant::now(),
        std::env::var_os("BERTH_TIMING").is_some(),
    ));
}

/// With BERTH_TIMING set, print the time since start at a named step to stderr
/// (a cheap profile of the start path; forked children inherit the clock).
pub fn phase(name: &str) {
    if let Some((t0, true)) = START.get() {
        eprintln!(
            "[{:8.3} ms] {} {}",
            t0.elapsed().as_secs_f64() * 1000.0,
            std::process::id(),
            name
        );
    }
}

pub fn debug(msg: &str) {
    log("debug", msg);
}

pub fn warn(msg: &str) {
    log("warning", msg);
}

/// Now as RFC 3339 with nanoseconds in UTC, like Go's time.RFC3339Nano.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days → (year, month, day) for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }
}
