//! cgroup: the runtime's glue to berth-cgroups — building managers (with the
//! v2 eBPF device-program loader from berth-sys), `update` (live limits, runc's
//! flags or a resources JSON), and `events` (stats once or streamed, and OOM kills).

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::state::{Root, State, Status};

/// Load a compiled device program into a v2 cgroup directory.
fn load_device_program(dir: &Path, p: &berth_cgroups::DeviceProgram) -> std::io::Result<()> {
    let f = std::fs::File::open(dir)?;
    let license = std::ffi::CString::new(berth_cgroups::DeviceProgram::LICENSE)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    berth_sys::bpf_attach_device_program(f.as_fd(), p.instructions(), &license)
}

pub fn new_manager(cgroups_path: Option<&str>, id: &str) -> Result<berth_cgroups::Manager> {
    let hier = berth_cgroups::Hierarchy::detect()?;
    Ok(berth_cgroups::Manager::new(&hier, cgroups_path, id)?
        .with_device_program_loader(load_device_program))
}

pub fn manager_of(st: &State) -> berth_cgroups::Manager {
    berth_cgroups::Manager::from_paths(&st.cgroup).with_device_program_loader(load_device_program)
}

/// runc update's flags, each overriding the container's current resources.
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    pub resources_file: Option<String>,
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_share: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<i64>,
}

/// "512m", "1g", "1024", "-1" → bytes (docker's RAMInBytes: binary units).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}: negative");
    }
    Ok((n * mult as f64) as i64)
}

/// The new resources: the container's current ones, then the file, then the flags.
pub fn merged_resources(
    current: Option<LinuxResources>,
    f: &UpdateFlags,
) -> Result<LinuxResources> {
    let mut v = serde_json::to_value(current.unwrap_or_default())?;
    if let Some(path) = &f.resources_file {
        let text = if path == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("read resources from stdin")?;
            s
        } else {
            std::fs::read_to_string(path).with_context(|| format!("read {path}"))?
        };
        let r: Value =
            serde_json::from_str(&text).with_context(|| format!("parse resources {path}"))?;
        merge(&mut v, r);
    }
    let mut set = |section: &str, key: &str, val: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = val;
    };
    if let Some(w) = f.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    if let Some(x) = f.cpu_period {
        set("cpu", "period", json!(x));
    }
    if let Some(x) = f.cpu_quota {
        set("cpu", "quota", json!(x));
    }
    if let Some(x) = f.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(x));
    }
    if let Some(x) = f.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(x));
    }
    if let Some(x) = f.cpu_share {
        set("cpu", "shares", json!(x));
    }
    if let Some(x) = &f.cpuset_cpus {
        set("cpu", "cpus", json!(x));
    }
    if let Some(x) = &f.cpuset_mems {
        set("cpu", "mems", json!(x));
    }
    if let Some(x) = &f.memory {
        set("memory", "limit", json!(parse_bytes(x)?));
    }
    if let Some(x) = &f.memory_reservation {
        set("memory", "reservation", json!(parse_bytes(x)?));
    }
    if let Some(x) = &f.memory_swap {
        set("memory", "swap", json!(parse_bytes(x)?));
    }
    if let Some(x) = f.pids_limit {
        set("pids", "limit", json!(x));
    }
    serde_json::from_value(v).context("invalid resources")
}

fn merge(dst: &mut Value, src: Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                merge(d.entry(k).or_insert(Value::Null), v);
            }
        }
        (d, s) => *d = s,
    }
}

/// `update`: write new limits to a live container, and remember them for later updates.
pub fn update(root: &Root, id: &str, flags: &UpdateFlags) -> Result<()> {
    let mut st = root.load(id)?;
    if st.status(root) == Status::Stopped {
        bail!("container {id} is not running");
    }
    let current = st
        .config
        .pointer("/linux/resources")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok());
    let new = merged_resources(current, flags)?;
    manager_of(&st).set(&new).context("update resources")?;
    if let Some(linux) = st.config.get_mut("linux") {
        linux["resources"] = serde_json::to_value(&new)?;
    }
    root.save(&st)?;
    Ok(())
}

/// `events`: `--stats` prints one stats event; otherwise stream stats every
/// `interval`, and an `oom` event whenever the OOM killer strikes in the container,
/// until it stops.
pub fn events(root: &Root, id: &str, stats_once: bool, interval: Duration) -> Result<()> {
    let st = root.load(id)?;
    let cg = manager_of(&st);
    let emit = |kind: &str, data: Value| -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", json!({"type": kind, "id": id, "data": data}))?;
        out.flush()?;
        Ok(())
    };
    if stats_once {
        if st.status(root) == Status::Stopped {
            bail!("container {id} is not running");
        }
        return emit("stats", serde_json::to_value(cg.stats()?)?);
    }
    let oom_kills = |s: &berth_cgroups::Stats| s.memory.as_ref().map(|m| m.oom_kill).unwrap_or(0);
    let mut seen_ooms = cg.stats().map(|s| oom_kills(&s)).unwrap_or(0);
    let mut next_stats = Instant::now();
    // OOM kills are polled more often than stats are printed, so they're reported promptly.
    let tick = interval.min(Duration::from_millis(100));
    loop {
        let stats = cg.stats();
        if let Ok(s) = &stats {
            let kills = oom_kills(s);
            if kills > seen_ooms {
                for _ in seen_ooms..kills {
                    emit("oom", Value::Null)?;
                }
                seen_ooms = kills;
            }
            if Instant::now() >= next_stats {
                emit("stats", serde_json::to_value(s)?)?;
                next_stats = Instant::now() + interval;
            }
        }
        if st.status(root) == Status::Stopped {
            return Ok(());
        }
        std::thread::sleep(tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512m").expect("m"), 512 << 20);
        assert_eq!(parse_bytes("1G").expect("g"), 1 << 30);
        assert_eq!(parse_bytes("100").expect("plain"), 100);
        assert_eq!(parse_bytes("1.5k").expect("frac"), 1536);
        assert_eq!(parse_bytes("-1").expect("unlimited"), -1);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn flags_override_current_resources() {
        let cur: LinuxResources =
            serde_json::from_value(json!({"memory": {"limit": 100}, "pids": {"limit": 5}}))
                .expect("json");
        let f = UpdateFlags {
            memory: Some("64m".into()),
            cpu_quota: Some(50000),
            ..Default::default()
        };
        let r = merged_resources(Some(cur), &f).expect("merge");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(64 << 20));
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(5));
        assert_eq!(r.cpu().as_ref().and_then(|c| c.quota()), Some(50000));
    }
}
