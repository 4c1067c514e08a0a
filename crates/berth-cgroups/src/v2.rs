//! cgroup v2: turning `linux.resources` into writes in the one unified directory,
//! enabling controllers on the way down, and the v2 freezer.
//!
//! Owns: the v2 file names, the v1→v2 value conversions at their call sites (formulas in
//! [`crate::convert`]), and which OCI fields have no v2 meaning.
//!
//! - Controllers must be enabled in every ancestor's `cgroup.subtree_control` before their
//!   files appear in the container's directory. [`enable_controllers`] does that from the
//!   mount point down to the parent, as runc `fs2/create.go` `CreateCgroupPath` does. The
//!   "no internal processes" rule (cgroup-v2.rst) makes that fail in an ancestor holding
//!   processes; then controllers are tried one by one and failures are left to surface as
//!   a clear "controller not available" error if a limit needs them.
//! - Fields without a v2 equivalent that are tuning hints are ignored exactly as runc and
//!   crun ignore them: `memory.swappiness`, `memory.kernel`, `memory.kernelTCP`,
//!   `memory.disableOOMKiller`, `memory.useHierarchy`, `blockIO.leafWeight` (incl. per
//!   device). Guarantees without an equivalent are errors: `cpu.realtime*`, `network`.
//! - `unified` is written last so it can override anything above (runc does the same).
//! - Devices: a `BPF_PROG_TYPE_CGROUP_DEVICE` program ([`crate::devices`]).
//!
//! Reference: Documentation/admin-guide/cgroup-v2.rst.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory};

use crate::cgroupfs::{self, current_device_line, exists, Plan, Step};
use crate::convert::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2, v2_limit};
use crate::devices::{self, DeviceProgram};
use crate::error::CgroupError;
use crate::v1::{check_bytes, check_cpu, check_dev, check_weight};

/// The container's v2 directory and the controllers enabled for it.
pub(crate) struct V2Dir<'a> {
    pub dir: &'a Path,
    /// From the directory's `cgroup.controllers`; `None` skips the check (hybrid
    /// hugetlb, where the enabling writes are part of the same plan).
    pub enabled: Option<Vec<String>>,
}

impl<'a> V2Dir<'a> {
    pub fn open(dir: &'a Path) -> Result<V2Dir<'a>, CgroupError> {
        let enabled = cgroupfs::read(dir, "cgroup.controllers")?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        Ok(V2Dir {
            dir,
            enabled: Some(enabled),
        })
    }

    pub fn need(&self, field: &'static str, controller: &str) -> Result<&'a Path, CgroupError> {
        match &self.enabled {
            Some(e) if !e.iter().any(|c| c == controller) => {
                Err(CgroupError::ControllerUnavailable {
                    field,
                    controller: controller.to_owned(),
                    where_: Some(self.dir.to_owned()),
                })
            }
            _ => Ok(self.dir),
        }
    }
}

/// Write `+ctrl ...` into `cgroup.subtree_control` of `mountpoint` and every directory
/// down to (not including) `leaf`. Best effort: see the module doc.
pub(crate) fn enable_controllers(mountpoint: &Path, leaf: &Path, controllers: &[String]) {
    if controllers.is_empty() {
        return;
    }
    let all: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    for dir in ancestors(mountpoint, leaf) {
        if cgroupfs::write_raw(&dir, "cgroup.subtree_control", &all.join(" ")).is_err() {
            for c in &all {
                let _ = cgroupfs::write_raw(&dir, "cgroup.subtree_control", c);
            }
        }
    }
}

/// The directories from `mountpoint` down to the parent of `leaf`.
pub(crate) fn ancestors(mountpoint: &Path, leaf: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = leaf.parent();
    while let Some(d) = cur {
        if !d.starts_with(mountpoint) {
            break;
        }
        out.push(d.to_owned());
        if d == mountpoint {
            break;
        }
        cur = d.parent();
    }
    out.reverse();
    out
}

#[allow(deprecated)] // LinuxMemory::kernel: only checked for validity, no v2 equivalent.
pub(crate) fn plan_memory(
    plan: &mut Plan,
    d: &V2Dir<'_>,
    m: &LinuxMemory,
) -> Result<(), CgroupError> {
    let limit = check_bytes("memory.limit", m.limit())?;
    let swap = check_bytes("memory.swap", m.swap())?;
    let reservation = check_bytes("memory.reservation", m.reservation())?;
    check_bytes("memory.kernel", m.kernel())?;
    check_bytes("memory.kernelTCP", m.kernel_tcp())?;
    let swap_v2 = swap_to_v2(swap.unwrap_or(0), limit.unwrap_or(0))?;
    if limit.is_none() && swap_v2.is_none() && reservation.is_none() {
        return Ok(());
    }
    let dir = d.need("memory", "memory")?;
    if let Some(l) = limit {
        // v2 accepts a memory.max below usage and then reclaims or OOM-kills; with
        // checkBeforeUpdate the caller asked to be refused instead (runc fs2/memory.go).
        if l > 0 && m.check_before_update() == Some(true) {
            if let Some(cur) = cgroupfs::read_u64_opt(dir, "memory.current")? {
                if cur > l as u64 {
                    return Err(CgroupError::InvalidValue {
                        field: "memory.limit",
                        value: l.to_string(),
                        reason: format!(
                            "below the current usage of {cur} bytes (checkBeforeUpdate)"
                        ),
                    });
                }
            }
        }
        plan.write("memory.limit", dir, "memory.max", v2_limit(l));
    }
    if let Some(s) = swap_v2 {
        if exists(dir, "memory.swap.max") {
            plan.write("memory.swap", dir, "memory.swap.max", v2_limit(s));
        } else if s != 0 && s != -1 {
            return Err(CgroupError::Unsupported {
                field: "memory.swap",
                reason: format!(
                    "cannot allow {s} bytes of swap: swap accounting is not enabled (no memory.swap.max in {})",
                    dir.display()
                ),
            });
        }
    }
    if let Some(r) = reservation {
        // runc maps the soft limit to memory.low (best-effort protection).
        plan.write("memory.reservation", dir, "memory.low", v2_limit(r));
    }
    Ok(())
}

pub(crate) fn plan_cpu(plan: &mut Plan, d: &V2Dir<'_>, c: &LinuxCpu) -> Result<(), CgroupError> {
    check_cpu(c)?;
    if c.realtime_period().is_some_and(|p| p != 0) || c.realtime_runtime().is_some_and(|r| r != 0) {
        return Err(CgroupError::Unsupported {
            field: "cpu.realtimeRuntime",
            reason: "realtime CPU bandwidth (cpu.rt_*) does not exist on cgroup v2".into(),
        });
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        plan.write(
            "cpu.cpus",
            d.need("cpu.cpus", "cpuset")?,
            "cpuset.cpus",
            cpus,
        );
    }
    if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        plan.write(
            "cpu.mems",
            d.need("cpu.mems", "cpuset")?,
            "cpuset.mems",
            mems,
        );
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        let dir = d.need("cpu.shares", "cpu")?;
        plan.write(
            "cpu.shares",
            dir,
            "cpu.weight",
            shares_to_weight(s).to_string(),
        );
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        let dir = d.need("cpu.quota", "cpu")?;
        // cpu.max is "$QUOTA $PERIOD". With only a period given keep the current quota
        // (runc would reset it to "max", which silently lifts a limit).
        let q = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_owned(),
            None => cgroupfs::read_opt(dir, "cpu.max")?
                .and_then(|s| s.split_whitespace().next().map(str::to_owned))
                .unwrap_or_else(|| "max".to_owned()),
        };
        let value = match period {
            Some(p) => format!("{q} {p}"),
            None => q,
        };
        plan.write(
            if quota.is_some() {
                "cpu.quota"
            } else {
                "cpu.period"
            },
            dir,
            "cpu.max",
            value,
        );
    }
    if let Some(b) = c.burst() {
        plan.write(
            "cpu.burst",
            d.need("cpu.burst", "cpu")?,
            "cpu.max.burst",
            b.to_string(),
        );
    }
    if let Some(i) = c.idle() {
        plan.write(
            "cpu.idle",
            d.need("cpu.idle", "cpu")?,
            "cpu.idle",
            i.to_string(),
        );
    }
    Ok(())
}

pub(crate) fn plan_io(plan: &mut Plan, d: &V2Dir<'_>, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = b.weight().filter(|w| *w != 0);
    let wdev: Vec<_> = b
        .weight_device()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|w| w.weight().is_some())
        .collect();
    let throttles = [
        (
            "blockIO.throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    let any_throttle = throttles
        .iter()
        .any(|(_, _, t)| t.as_ref().is_some_and(|t| !t.is_empty()));
    if weight.is_none() && wdev.is_empty() && !any_throttle {
        return Ok(());
    }
    let dir = d.need("blockIO", "io")?;
    // With BFQ, io.bfq.weight takes the blkio scale (1..1000) directly (runc fs2/io.go);
    // otherwise io.weight with the converted value.
    let bfq = exists(dir, "io.bfq.weight");
    if let Some(w) = weight {
        check_weight("blockIO.weight", w)?;
        if bfq {
            plan.write("blockIO.weight", dir, "io.bfq.weight", w.to_string());
        } else {
            let undo = current_device_line(dir, "io.weight", "default", "default 100".into());
            plan.write_with_undo(
                "blockIO.weight",
                dir,
                "io.weight",
                format!("default {}", blkio_weight_to_io_weight(w)),
                undo,
            );
        }
    }
    for wd in wdev {
        let dev = check_dev("blockIO.weightDevice", wd.major(), wd.minor())?;
        let w = wd.weight().unwrap_or_default();
        check_weight("blockIO.weightDevice", w)?;
        let (file, value) = if bfq {
            ("io.bfq.weight", format!("{dev} {w}"))
        } else {
            // crun converts per-device weights the same way as the default weight.
            (
                "io.weight",
                format!("{dev} {}", blkio_weight_to_io_weight(w)),
            )
        };
        let undo = current_device_line(dir, file, &dev, format!("{dev} default"));
        plan.write_with_undo("blockIO.weightDevice", dir, file, value, undo);
    }
    for (field, key, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            let dev = check_dev(field, t.major(), t.minor())?;
            // v1's "0 = no limit" is "max" on v2.
            let rate = if t.rate() == 0 {
                "max".to_owned()
            } else {
                t.rate().to_string()
            };
            let undo = current_device_line(
                dir,
                "io.max",
                &dev,
                format!("{dev} rbps=max wbps=max riops=max wiops=max"),
            );
            plan.write_with_undo(field, dir, "io.max", format!("{dev} {key}={rate}"), undo);
        }
    }
    Ok(())
}

pub(crate) fn plan_devices(
    plan: &mut Plan,
    dir: &Path,
    rules: &[LinuxDeviceCgroup],
) -> Result<(), CgroupError> {
    let rules = devices::parse_rules(rules)?;
    plan.steps.push(Step::DeviceProgram {
        dir: dir.to_owned(),
        program: DeviceProgram::from_rules(&rules),
    });
    Ok(())
}

pub(crate) fn plan_unified(
    plan: &mut Plan,
    d: &V2Dir<'_>,
    unified: &HashMap<String, String>,
) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for k in keys {
        cgroupfs::check_file_name("unified", k)?;
        let Some((controller, _)) = k.split_once('.') else {
            return Err(CgroupError::InvalidValue {
                field: "unified",
                value: format!("{k:?}"),
                reason: "not a cgroup v2 file name (\"<controller>.<file>\")".into(),
            });
        };
        // "cgroup.*" files belong to the core, not to a controller.
        if controller != "cgroup" {
            d.need("unified", controller)?;
        }
        if !exists(d.dir, k) {
            return Err(CgroupError::InvalidValue {
                field: "unified",
                value: format!("{k:?}"),
                reason: format!("no such file in {}", d.dir.display()),
            });
        }
        plan.write("unified", d.dir, k, unified[k].clone());
    }
    Ok(())
}

/// Freeze: write 1 to `cgroup.freeze`, then wait for `cgroup.events` to say `frozen 1`
/// (the write only starts freezing; runc fs2/freezer.go waits the same way).
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    write_freeze(dir, "1")?;
    let start = Instant::now();
    loop {
        if events_frozen(dir)? == Some(true) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(5) {
            let _ = write_freeze(dir, "0");
            return Err(CgroupError::FreezeTimeout {
                action: "freeze",
                path: dir.to_owned(),
                state: "frozen 0".into(),
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Thaw: write 0 to `cgroup.freeze` (takes effect at once).
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    write_freeze(dir, "0")
}

fn write_freeze(dir: &Path, v: &str) -> Result<(), CgroupError> {
    cgroupfs::write_raw(dir, "cgroup.freeze", v).map_err(|source| CgroupError::Write {
        field: if v == "1" { "freeze" } else { "thaw" },
        file: "cgroup.freeze".into(),
        value: v.into(),
        dir: dir.to_owned(),
        source,
    })
}

/// `frozen` from `cgroup.events`; `None` when the file is absent.
pub(crate) fn events_frozen(dir: &Path) -> Result<Option<bool>, CgroupError> {
    Ok(cgroupfs::read_opt(dir, "cgroup.events")?
        .and_then(|s| cgroupfs::key(&cgroupfs::flat_keyed(&s), "frozen"))
        .map(|v| v == 1))
}
