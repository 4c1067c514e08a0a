//! stats: what the primer says to watch — CPU %, how often the container was
//! throttled (nr_throttled / nr_periods over the sample) and for how long,
//! memory as working set with page cache shown apart, OOM kills, pids, block
//! and network I/O — with plain-words warnings where the primer says to worry.

use std::time::{Duration, Instant};

use anyhow::Result;
use berth_cgroups::Stats;
use berth_engine::record::{Container, Status};

use crate::cli::{Global, StatsArgs};
use crate::engine;
use crate::format::{self, Row};

struct Sample {
    at: Instant,
    stats: Stats,
    net: (u64, u64),
}

fn cgroup_stats(c: &Container) -> Option<Stats> {
    let h = berth_cgroups::Hierarchy::detect().ok()?;
    let m = berth_cgroups::Manager::new(&h, Some(&format!("/berth/{}", c.id)), &c.id).ok()?;
    m.stats().ok()
}

/// Bytes received and sent on the container's interfaces (its netns view of /proc/net/dev).
fn net_io(pid: i32) -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    let mut rx = 0;
    let mut tx = 0;
    for line in s.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

fn sample(c: &Container) -> Option<Sample> {
    Some(Sample {
        at: Instant::now(),
        stats: cgroup_stats(c)?,
        net: net_io(c.state.pid),
    })
}

fn size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.2}{}", units[i])
    }
}

fn dsize(b: u64) -> String {
    crate::containers::human_size(b)
}

/// One row and its warnings, from two samples.
fn row(c: &Container, prev: &Sample, cur: &Sample, no_trunc: bool) -> (Row, Vec<String>) {
    let mut r = Row::new();
    let mut warn = Vec::new();
    r.insert(
        "ID".into(),
        if no_trunc {
            c.id.clone()
        } else {
            c.short_id().into()
        },
    );
    r.insert("Container".into(), c.short_id().into());
    r.insert("Name".into(), c.name.clone());
    let interval = cur.at.duration_since(prev.at);
    let cores = Stats::cpu_cores_used(&prev.stats, &cur.stats, interval).unwrap_or(0.0);
    r.insert("CPUPerc".into(), format!("{:.2}%", cores * 100.0));
    match Stats::throttled_percent(&prev.stats, &cur.stats) {
        Some(p) => {
            r.insert("ThrottledPerc".into(), format!("{p:.1}%"));
            if p > 5.0 {
                warn.push(format!("{}: CPU throttled in {p:.0}% of scheduler periods (over 5%): the --cpus limit is slowing it down", c.name));
            }
        }
        None => {
            r.insert("ThrottledPerc".into(), "--".into());
        }
    }
    let thr = match (&prev.stats.cpu, &cur.stats.cpu) {
        (Some(a), Some(b)) => b.throttled_time_ns.saturating_sub(a.throttled_time_ns),
        _ => 0,
    };
    r.insert("ThrottledTime".into(), format!("{:.1}ms", thr as f64 / 1e6));
    if let Some(m) = &cur.stats.memory {
        let limit = m.limit.filter(|l| *l < (1u64 << 62));
        r.insert(
            "MemUsage".into(),
            format!(
                "{} / {}",
                size(m.working_set),
                limit.map(size).unwrap_or_else(|| "unlimited".into())
            ),
        );
        r.insert("Cache".into(), size(m.file));
        r.insert(
            "MemPerc".into(),
            limit
                .map(|l| format!("{:.2}%", m.working_set as f64 * 100.0 / l as f64))
                .unwrap_or_else(|| "--".into()),
        );
        r.insert("OOMKills".into(), m.oom_kill.to_string());
        if let Some(l) = limit {
            if m.working_set as f64 > 0.9 * l as f64 {
                warn.push(format!(
                    "{}: working set is {:.0}% of the memory limit: close to an OOM kill",
                    c.name,
                    m.working_set as f64 * 100.0 / l as f64
                ));
            }
        }
        if m.oom_kill > 0 {
            warn.push(format!(
                "{}: the OOM killer has killed {} process(es) in this container",
                c.name, m.oom_kill
            ));
        }
    }
    let (rx, tx) = cur.net;
    r.insert("NetIO".into(), format!("{} / {}", dsize(rx), dsize(tx)));
    let (br, bw) = cur
        .stats
        .blkio
        .as_ref()
        .map(|v| {
            v.iter()
                .fold((0, 0), |a, d| (a.0 + d.read_bytes, a.1 + d.write_bytes))
        })
        .unwrap_or((0, 0));
    r.insert("BlockIO".into(), format!("{} / {}", dsize(br), dsize(bw)));
    r.insert(
        "PIDs".into(),
        cur.stats
            .pids
            .as_ref()
            .map(|p| p.current.to_string())
            .unwrap_or_default(),
    );
    (r, warn)
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("ThrottledPerc", "THROTTLED %"),
    ("ThrottledTime", "THROTTLED TIME"),
    ("MemUsage", "MEM (WORKING SET) / LIMIT"),
    ("Cache", "PAGE CACHE"),
    ("MemPerc", "MEM %"),
    ("OOMKills", "OOM KILLS"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

pub fn stats(g: &Global, a: StatsArgs) -> Result<i32> {
    let e = engine(g)?;
    let pick = || -> Result<Vec<Container>> {
        Ok(if a.containers.is_empty() {
            e.list(a.all)?
        } else {
            a.containers
                .iter()
                .map(|n| e.get(n))
                .collect::<Result<Vec<_>, _>>()?
        })
    };
    let mut prev: std::collections::HashMap<String, Sample> = Default::default();
    for c in pick()? {
        if c.state.status == Status::Running {
            if let Some(s) = sample(&c) {
                prev.insert(c.id.clone(), s);
            }
        }
    }
    loop {
        std::thread::sleep(Duration::from_millis(if a.no_stream { 500 } else { 1000 }));
        let mut rows = Vec::new();
        let mut warnings = Vec::new();
        for c in pick()? {
            let Some(cur) = (if c.state.status == Status::Running {
                sample(&c)
            } else {
                None
            }) else {
                let mut r = Row::new();
                r.insert("ID".into(), c.short_id().into());
                r.insert("Name".into(), c.name.clone());
                for (k, _) in HEADERS.iter().skip(2) {
                    r.insert(k.to_string(), "--".into());
                }
                rows.push(r);
                continue;
            };
            let p = prev.remove(&c.id).unwrap_or(Sample {
                at: cur.at - Duration::from_millis(1),
                stats: cur.stats.clone(),
                net: cur.net,
            });
            let (r, w) = row(&c, &p, &cur, a.no_trunc);
            rows.push(r);
            warnings.extend(w);
            prev.insert(c.id.clone(), cur);
        }
        if !a.no_stream {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", format::render(a.format.as_deref(), HEADERS, &rows));
        for w in &warnings {
            println!("warning: {w}");
        }
        if a.no_stream {
            return Ok(0);
        }
    }
}
