//! One statistics model for v1 and v2 ([`Stats`]), and the readers that fill it.
//!
//! Owns: which kernel file and field backs each number, and unit normalisation
//! (CPU times in nanoseconds, memory in bytes).
//!
//! Invariants:
//! - A section is `None` when its controller is not available, so "unknown" never
//!   looks like zero; inside a section, a limit is `None` when there is **no limit**
//!   (v1 `-1`/huge values, v2 `max`), never 0.
//! - `working_set = usage - inactive_file` (saturating), the definition cAdvisor, the
//!   kubelet and `docker stats` use.
//! - Memory figures on v1 are hierarchical (`total_*` in memory.stat), so processes in
//!   child cgroups are counted, matching v2 where memory.stat is always hierarchical.
//!
//! Sources: v1 `cpuacct.usage{,_user,_sys}` (ns) or `cpuacct.stat` (USER_HZ ticks),
//! `cpu.stat` (`throttled_time` ns), `memory.{usage,limit,max_usage}_in_bytes`,
//! `memory.stat`, `memory.oom_control`, `memory.{,memsw.}failcnt`, `memory.kmem.usage_in_bytes`,
//! `blkio.throttle.io_service{_bytes,d}_recursive`; v2 `cpu.stat` (µs), `cpu.max`,
//! `memory.{current,max,peak,stat,events,swap.current}`, `io.stat`; both `pids.{current,max}`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cgroupfs::{flat_keyed, key, read_opt, read_u64_opt};
use crate::convert::{parse_v2_limit, v1_memory_limit};
use crate::error::CgroupError;

/// A snapshot of one cgroup's usage and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub pids: Option<PidsStats>,
    /// Per block device, `None` when the blkio/io controller is not available.
    pub blkio: Option<Vec<BlkioDeviceStats>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Total CPU time consumed, nanoseconds.
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    /// CFS bandwidth periods that elapsed while the cgroup had runnable tasks.
    pub nr_periods: u64,
    /// Periods in which the cgroup used up its quota and was throttled.
    pub nr_throttled: u64,
    /// Total time spent throttled, nanoseconds.
    pub throttled_time_ns: u64,
    /// CFS quota per period in microseconds; `None` = no quota (unlimited).
    pub quota_us: Option<u64>,
    /// CFS period in microseconds (0 if unknown).
    pub period_us: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Current usage in bytes (anon + page cache + kernel, as the kernel charges it).
    pub usage: u64,
    /// The limit in bytes; `None` = no limit.
    pub limit: Option<u64>,
    /// Peak usage (v1 `max_usage_in_bytes`, v2 `memory.peak` on Linux 5.19+).
    pub max_usage: Option<u64>,
    /// Anonymous memory (heap, stacks): v1 `rss`, v2 `anon`.
    pub anon: u64,
    /// Page cache: v1 `cache`, v2 `file`. Counts toward the limit.
    pub file: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    /// Kernel memory charged to the cgroup (v1 `kmem.usage_in_bytes`, v2 `kernel`), if known.
    pub kernel: Option<u64>,
    /// `usage - inactive_file`: what cannot easily be reclaimed.
    pub working_set: u64,
    /// Swap in use, if swap accounting is on.
    pub swap_usage: Option<u64>,
    /// Times the limit was hit (v1 `memory.failcnt` + `memory.memsw.failcnt`, v2 `memory.events` `max`).
    /// Observed to stay 0 on v1 under Linux 6.18 even when the limit is hit (the kernel no
    /// longer tracks failcnt there); `oom_kill` is the reliable signal.
    pub limit_hits: u64,
    /// v2 `memory.events` `oom`: times the OOM killer was invoked (v1 has no counter).
    pub oom_events: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup (v1 `oom_control` `oom_kill`, Linux 4.13+).
    pub oom_kill: u64,
    /// v1 only: the cgroup is currently under OOM (with the OOM killer disabled, tasks hang here).
    pub under_oom: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` = no limit.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioDeviceStats {
    pub major: u32,
    pub minor: u32,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_ops: u64,
    pub write_ops: u64,
}

impl Stats {
    /// Percentage of CFS periods in which the cgroup was throttled between two samples
    /// (`Δnr_throttled / Δnr_periods × 100`). `None` when there is no quota (nothing can
    /// be throttled, which is different from "0% throttled"); `Some(0.0)` with a quota
    /// but no elapsed periods.
    pub fn throttled_percent(prev: &Stats, cur: &Stats) -> Option<f64> {
        let (p, c) = (prev.cpu.as_ref()?, cur.cpu.as_ref()?);
        c.quota_us?;
        let periods = c.nr_periods.saturating_sub(p.nr_periods);
        let throttled = c.nr_throttled.saturating_sub(p.nr_throttled);
        if periods == 0 {
            return Some(0.0);
        }
        Some(throttled as f64 * 100.0 / periods as f64)
    }

    /// CPUs used on average between two samples taken `interval` apart (1.0 = one CPU).
    pub fn cpu_cores_used(prev: &Stats, cur: &Stats, interval: Duration) -> Option<f64> {
        let (p, c) = (prev.cpu.as_ref()?, cur.cpu.as_ref()?);
        let ns = interval.as_nanos();
        if ns == 0 {
            return None;
        }
        Some(c.usage_total_ns.saturating_sub(p.usage_total_ns) as f64 / ns as f64)
    }
}

impl CpuStats {
    /// The CPU limit as a number of CPUs (quota / period), `None` without quota.
    pub fn limit_cpus(&self) -> Option<f64> {
        let q = self.quota_us?;
        (self.period_us > 0).then(|| q as f64 / self.period_us as f64)
    }
}

fn u(kv: &[(&str, u64)], k: &str) -> u64 {
    key(kv, k).unwrap_or(0)
}

/// v1 stats from per-controller directories (`dir(controller)`).
pub(crate) fn read_v1(
    dir: &dyn Fn(&str) -> Option<std::path::PathBuf>,
) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();

    let cpuacct = dir("cpuacct");
    let cpu = dir("cpu");
    if cpuacct.is_some() || cpu.is_some() {
        let mut c = CpuStats::default();
        if let Some(d) = &cpuacct {
            c.usage_total_ns = read_u64_opt(d, "cpuacct.usage")?.unwrap_or(0);
            match (
                read_u64_opt(d, "cpuacct.usage_user")?,
                read_u64_opt(d, "cpuacct.usage_sys")?,
            ) {
                (Some(user), Some(sys)) => {
                    c.usage_user_ns = user;
                    c.usage_system_ns = sys;
                }
                _ => {
                    // cpuacct.stat is in USER_HZ ticks; USER_HZ is 100 on every Linux ABI.
                    if let Some(s) = read_opt(d, "cpuacct.stat")? {
                        let kv = flat_keyed(&s);
                        c.usage_user_ns = u(&kv, "user") * 10_000_000;
                        c.usage_system_ns = u(&kv, "system") * 10_000_000;
                    }
                }
            }
        }
        if let Some(d) = &cpu {
            if let Some(s) = read_opt(d, "cpu.stat")? {
                let kv = flat_keyed(&s);
                c.nr_periods = u(&kv, "nr_periods");
                c.nr_throttled = u(&kv, "nr_throttled");
                c.throttled_time_ns = u(&kv, "throttled_time");
            }
            let quota = read_opt(d, "cpu.cfs_quota_us")?.and_then(|s| s.trim().parse::<i64>().ok());
            c.quota_us = quota.filter(|q| *q > 0).map(|q| q as u64);
            c.period_us = read_u64_opt(d, "cpu.cfs_period_us")?.unwrap_or(0);
        }
        stats.cpu = Some(c);
    }

    if let Some(d) = dir("memory") {
        let mut m = MemoryStats {
            usage: read_u64_opt(&d, "memory.usage_in_bytes")?.unwrap_or(0),
            ..Default::default()
        };
        m.limit = read_u64_opt(&d, "memory.limit_in_bytes")?.and_then(v1_memory_limit);
        m.max_usage = read_u64_opt(&d, "memory.max_usage_in_bytes")?;
        if let Some(s) = read_opt(&d, "memory.stat")? {
            let kv = flat_keyed(&s);
            // total_* are hierarchical (include child cgroups); plain ones are this cgroup only.
            let pick = |k: &str| {
                key(&kv, &format!("total_{k}"))
                    .or_else(|| key(&kv, k))
                    .unwrap_or(0)
            };
            m.anon = pick("rss");
            m.file = pick("cache");
            m.active_file = pick("active_file");
            m.inactive_file = pick("inactive_file");
        }
        m.kernel = read_u64_opt(&d, "memory.kmem.usage_in_bytes")
            .ok()
            .flatten();
        m.working_set = m.usage.saturating_sub(m.inactive_file);
        if let Some(memsw) = read_u64_opt(&d, "memory.memsw.usage_in_bytes")
            .ok()
            .flatten()
        {
            m.swap_usage = Some(memsw.saturating_sub(m.usage));
        }
        // A failed charge bumps exactly one counter: memsw's when swap accounting is on
        // and memory+swap was the limit that was hit, memory's otherwise.
        m.limit_hits = read_u64_opt(&d, "memory.failcnt")?.unwrap_or(0)
            + read_u64_opt(&d, "memory.memsw.failcnt")
                .ok()
                .flatten()
                .unwrap_or(0);
        if let Some(s) = read_opt(&d, "memory.oom_control")? {
            let kv = flat_keyed(&s);
            m.oom_kill = u(&kv, "oom_kill");
            m.under_oom = key(&kv, "under_oom").map(|v| v == 1);
        }
        stats.memory = Some(m);
    }

    if let Some(d) = dir("pids") {
        stats.pids = Some(read_pids(&d)?);
    }

    if let Some(d) = dir("blkio") {
        let mut devs: Vec<BlkioDeviceStats> = Vec::new();
        // The throttle layer sees every bio whatever the scheduler; fall back to BFQ's files.
        for (bytes, ops) in [
            (
                "blkio.throttle.io_service_bytes_recursive",
                "blkio.throttle.io_serviced_recursive",
            ),
            (
                "blkio.throttle.io_service_bytes",
                "blkio.throttle.io_serviced",
            ),
            (
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.bfq.io_serviced_recursive",
            ),
        ] {
            let (Some(b), Some(o)) = (read_opt(&d, bytes)?, read_opt(&d, ops)?) else {
                continue;
            };
            parse_v1_blkio(&b, &mut devs, true);
            parse_v1_blkio(&o, &mut devs, false);
            break;
        }
        devs.sort_by_key(|d| (d.major, d.minor));
        stats.blkio = Some(devs);
    }
    Ok(stats)
}

/// Lines `8:0 Read 4096` / `8:0 Write 0` / `Total 4096`.
fn parse_v1_blkio(text: &str, devs: &mut Vec<BlkioDeviceStats>, bytes: bool) {
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dev, op, val] = f.as_slice() else {
            continue;
        };
        let Some((maj, min)) = parse_dev(dev) else {
            continue;
        };
        let Ok(val) = val.parse::<u64>() else {
            continue;
        };
        let e = device_entry(devs, maj, min);
        match (*op, bytes) {
            ("Read", true) => e.read_bytes = val,
            ("Write", true) => e.write_bytes = val,
            ("Read", false) => e.read_ops = val,
            ("Write", false) => e.write_ops = val,
            _ => {}
        }
    }
}

fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn device_entry(devs: &mut Vec<BlkioDeviceStats>, major: u32, minor: u32) -> &mut BlkioDeviceStats {
    if let Some(i) = devs
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        return &mut devs[i];
    }
    devs.push(BlkioDeviceStats {
        major,
        minor,
        ..Default::default()
    });
    let last = devs.len() - 1;
    &mut devs[last]
}

fn read_pids(d: &Path) -> Result<PidsStats, CgroupError> {
    Ok(PidsStats {
        current: read_u64_opt(d, "pids.current")?.unwrap_or(0),
        limit: read_opt(d, "pids.max")?.and_then(|s| parse_v2_limit(&s)),
    })
}

/// v2 stats from the unified directory; sections follow its `cgroup.controllers`.
pub(crate) fn read_v2(d: &Path) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    let enabled: Vec<String> = read_opt(d, "cgroup.controllers")?
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let has = |c: &str| enabled.iter().any(|e| e == c);

    // cpu.stat exists (usage part) even without the cpu controller.
    if let Some(s) = read_opt(d, "cpu.stat")? {
        let kv = flat_keyed(&s);
        let mut c = CpuStats {
            usage_total_ns: u(&kv, "usage_usec") * 1000,
            usage_user_ns: u(&kv, "user_usec") * 1000,
            usage_system_ns: u(&kv, "system_usec") * 1000,
            nr_periods: u(&kv, "nr_periods"),
            nr_throttled: u(&kv, "nr_throttled"),
            throttled_time_ns: u(&kv, "throttled_usec") * 1000,
            ..Default::default()
        };
        if let Some(max) = read_opt(d, "cpu.max")? {
            let mut it = max.split_whitespace();
            c.quota_us = it.next().and_then(parse_v2_limit);
            c.period_us = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        }
        stats.cpu = Some(c);
    }

    if has("memory") {
        let mut m = MemoryStats {
            usage: read_u64_opt(d, "memory.current")?.unwrap_or(0),
            ..Default::default()
        };
        m.limit = read_opt(d, "memory.max")?.and_then(|s| parse_v2_limit(&s));
        m.max_usage = read_u64_opt(d, "memory.peak")?;
        if let Some(s) = read_opt(d, "memory.stat")? {
            let kv = flat_keyed(&s);
            m.anon = u(&kv, "anon");
            m.file = u(&kv, "file");
            m.active_file = u(&kv, "active_file");
            m.inactive_file = u(&kv, "inactive_file");
            // "kernel" appeared in Linux 5.18; before, sum its parts.
            m.kernel = key(&kv, "kernel").or_else(|| {
                let parts = [
                    "kernel_stack",
                    "pagetables",
                    "sec_pagetables",
                    "percpu",
                    "sock",
                    "vmalloc",
                    "slab",
                ];
                Some(parts.iter().map(|k| u(&kv, k)).sum())
            });
        }
        m.working_set = m.usage.saturating_sub(m.inactive_file);
        m.swap_usage = read_u64_opt(d, "memory.swap.current")?;
        if let Some(s) = read_opt(d, "memory.events")? {
            let kv = flat_keyed(&s);
            m.limit_hits = u(&kv, "max");
            m.oom_events = Some(u(&kv, "oom"));
            m.oom_kill = u(&kv, "oom_kill");
        }
        stats.memory = Some(m);
    }

    if has("pids") {
        stats.pids = Some(read_pids(d)?);
    }

    if has("io") {
        let mut devs = Vec::new();
        if let Some(s) = read_opt(d, "io.stat")? {
            for line in s.lines() {
                let mut it = line.split_whitespace();
                let Some((maj, min)) = it.next().and_then(parse_dev) else {
                    continue;
                };
                let e = device_entry(&mut devs, maj, min);
                for kv in it {
                    let Some((k, v)) = kv.split_once('=') else {
                        continue;
                    };
                    let v = v.parse().unwrap_or(0);
                    match k {
                        "rbytes" => e.read_bytes = v,
                        "wbytes" => e.write_bytes = v,
                        "rios" => e.read_ops = v,
                        "wios" => e.write_ops = v,
                        _ => {}
                    }
                }
            }
        }
        devs.sort_by_key(|d| (d.major, d.minor));
        stats.blkio = Some(devs);
    }
    Ok(stats)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample(periods: u64, throttled: u64, quota: Option<u64>) -> Stats {
        Stats {
            cpu: Some(CpuStats {
                nr_periods: periods,
                nr_throttled: throttled,
                quota_us: quota,
                period_us: 100_000,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn throttled_percent_between_samples() {
        let a = sample(100, 10, Some(50_000));
        let b = sample(200, 60, Some(50_000));
        assert_eq!(Stats::throttled_percent(&a, &b), Some(50.0));
        assert_eq!(Stats::throttled_percent(&b, &b), Some(0.0));
        // No quota: nothing to throttle, which is not "0% throttled".
        assert_eq!(
            Stats::throttled_percent(&sample(1, 0, None), &sample(2, 0, None)),
            None
        );
        assert_eq!(Stats::throttled_percent(&Stats::default(), &b), None);
        assert_eq!(b.cpu.as_ref().unwrap().limit_cpus(), Some(0.5));
    }

    #[test]
    fn cpu_cores_used() {
        let a = Stats {
            cpu: Some(CpuStats::default()),
            ..Default::default()
        };
        let mut b = a.clone();
        b.cpu.as_mut().unwrap().usage_total_ns = 500_000_000;
        assert_eq!(
            Stats::cpu_cores_used(&a, &b, Duration::from_secs(1)),
            Some(0.5)
        );
    }

    #[test]
    fn v1_blkio_parsing() {
        let mut devs = Vec::new();
        parse_v1_blkio(
            "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n7:1 Read 10\nTotal 4618\n",
            &mut devs,
            true,
        );
        parse_v1_blkio("8:0 Read 2\n8:0 Write 1\n", &mut devs, false);
        assert_eq!(
            devs[0],
            BlkioDeviceStats {
                major: 8,
                minor: 0,
                read_bytes: 4096,
                write_bytes: 512,
                read_ops: 2,
                write_ops: 1
            }
        );
        assert_eq!(devs[1].read_bytes, 10);
    }

    #[test]
    fn serde_round_trip_keeps_no_limit_distinct() {
        let s = Stats {
            memory: Some(MemoryStats {
                limit: None,
                usage: 5,
                ..Default::default()
            }),
            pids: Some(PidsStats {
                current: 1,
                limit: Some(10),
            }),
            ..Default::default()
        };
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.contains("\"limit\":null"), "{j}");
        let back: Stats = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
    }
}
