//! cgroup v1: turning `linux.resources` into writes to per-controller directories,
//! and the v1 freezer.
//!
//! Owns: the v1 file names and the order in which they are written. Reads done while
//! planning (current limits, which files exist) decide order and fallbacks; nothing is
//! written here — [`crate::cgroupfs::execute`] does that.
//!
//! Ordering constraints (each one is also commented at its site):
//! - memory: the kernel keeps `memory.limit_in_bytes <= memory.memsw.limit_in_bytes`, so
//!   when raising, memsw goes first, when lowering, the limit goes first (runc
//!   `fs/memory.go` `setMemoryAndSwap`);
//! - cpu: `cpu.cfs_period_us` before `cpu.cfs_quota_us`, retried after the quota on
//!   EINVAL (runc `fs/cpu.go`); `cpu.rt_period_us` before `cpu.rt_runtime_us`;
//! - devices: `a` to `devices.deny` before the spec's rules (see [`crate::devices`]).
//!
//! Reference: Documentation/admin-guide/cgroup-v1/{memory,cpusets,blkio-controller,
//! devices,freezer-subsystem,hugetlb,pids}.rst and scheduler/sched-bwc.rst.

use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxPids,
};

use crate::cgroupfs::{self, current_device_line, exists, read_u64_opt, Plan};
use crate::convert::{v1_limit, MAX_SHARES, MIN_SHARES};
use crate::devices;
use crate::error::CgroupError;
use crate::manager::CgroupPaths;

/// Resolve the directory of a v1 controller, or say which field needed it.
pub(crate) fn need<'a>(
    paths: &'a CgroupPaths,
    field: &'static str,
    controller: &str,
) -> Result<&'a Path, CgroupError> {
    paths
        .v1_dir(controller)
        .ok_or_else(|| CgroupError::ControllerUnavailable {
            field,
            controller: controller.to_owned(),
            where_: None,
        })
}

/// Memory bytes: -1 (unlimited) or > 0; 0 means unset.
pub(crate) fn check_bytes(field: &'static str, v: Option<i64>) -> Result<Option<i64>, CgroupError> {
    match v {
        None | Some(0) => Ok(None),
        Some(v) if v == -1 || v > 0 => Ok(Some(v)),
        Some(v) => Err(CgroupError::InvalidValue {
            field,
            value: v.to_string(),
            reason: "must be -1 (unlimited) or a positive number of bytes".into(),
        }),
    }
}

#[allow(deprecated)] // LinuxMemory::kernel: deprecated in the spec, still honoured where the kernel has it.
pub(crate) fn plan_memory(
    plan: &mut Plan,
    paths: &CgroupPaths,
    m: &LinuxMemory,
) -> Result<(), CgroupError> {
    let limit = check_bytes("memory.limit", m.limit())?;
    let mut swap = check_bytes("memory.swap", m.swap())?;
    let reservation = check_bytes("memory.reservation", m.reservation())?;
    let kernel = check_bytes("memory.kernel", m.kernel())?;
    let kernel_tcp = check_bytes("memory.kernelTCP", m.kernel_tcp())?;
    let anything = limit.is_some()
        || swap.is_some()
        || reservation.is_some()
        || kernel.is_some()
        || kernel_tcp.is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.use_hierarchy().is_some();
    if !anything {
        return Ok(());
    }
    let dir = need(paths, "memory", "memory")?;
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidValue {
                field: "memory.swappiness",
                value: s.to_string(),
                reason: "must be in 0..=100".into(),
            });
        }
    }
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s > 0 && s < l {
            return Err(CgroupError::InvalidValue {
                field: "memory.swap",
                value: s.to_string(),
                reason: format!("memory+swap must be >= memory.limit ({l}) on cgroup v1"),
            });
        }
    }
    let has_memsw = exists(dir, "memory.memsw.limit_in_bytes");
    // runc: "If the memory update is set to -1 and the swap is not explicitly set, we
    // should also set swap to -1, it means unlimited memory."
    if limit == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    if !has_memsw {
        // Swap accounting is off (swapaccount=0 or CONFIG_MEMCG_SWAP unset): nothing
        // limits swap separately. "No swap beyond the limit" and "unlimited" are what
        // we get anyway; anything else cannot be honoured.
        match swap {
            None | Some(-1) => swap = None,
            Some(s) if Some(s) == limit => swap = None,
            Some(s) => {
                return Err(CgroupError::Unsupported {
                    field: "memory.swap",
                    reason: format!(
                        "cannot limit memory+swap to {s}: swap accounting is not enabled on this host \
                         (no memory.memsw.limit_in_bytes in {}); only -1 or a value equal to memory.limit is possible",
                        dir.display()
                    ),
                })
            }
        }
    }
    let write_limit = |plan: &mut Plan, l: i64| {
        plan.write("memory.limit", dir, "memory.limit_in_bytes", v1_limit(l));
    };
    let write_swap = |plan: &mut Plan, s: i64| {
        plan.write(
            "memory.swap",
            dir,
            "memory.memsw.limit_in_bytes",
            v1_limit(s),
        );
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // The kernel requires limit <= memsw at every moment. Raising memsw above the
            // current limit is always allowed, so when the new memsw is above the current
            // limit it goes first; otherwise the limit is lowered first (runc setMemoryAndSwap).
            let cur = read_u64_opt(dir, "memory.limit_in_bytes")?.unwrap_or(u64::MAX);
            if s == -1 || cur < s as u64 {
                write_swap(plan, s);
                write_limit(plan, l);
            } else {
                write_limit(plan, l);
                write_swap(plan, s);
            }
        }
        (Some(l), None) => write_limit(plan, l),
        (None, Some(s)) => write_swap(plan, s),
        (None, None) => {}
    }
    if let Some(r) = reservation {
        plan.write(
            "memory.reservation",
            dir,
            "memory.soft_limit_in_bytes",
            v1_limit(r),
        );
    }
    // Kernel memory limits: deprecated (kmem.limit_in_bytes is a no-op or gone since
    // Linux 5.16/6.1, as runc 1.1+ and crun treat it); honoured only where the file exists.
    if let Some(k) = kernel {
        if exists(dir, "memory.kmem.limit_in_bytes") {
            plan.write(
                "memory.kernel",
                dir,
                "memory.kmem.limit_in_bytes",
                v1_limit(k),
            );
        }
    }
    if let Some(k) = kernel_tcp {
        if exists(dir, "memory.kmem.tcp.limit_in_bytes") {
            plan.write(
                "memory.kernelTCP",
                dir,
                "memory.kmem.tcp.limit_in_bytes",
                v1_limit(k),
            );
        }
    }
    if let Some(s) = m.swappiness() {
        plan.write("memory.swappiness", dir, "memory.swappiness", s.to_string());
    }
    if let Some(d) = m.disable_oom_killer() {
        let undo = cgroupfs::read_opt(dir, "memory.oom_control")
            .ok()
            .flatten()
            .and_then(|s| cgroupfs::key(&cgroupfs::flat_keyed(&s), "oom_kill_disable"))
            .map(|v| v.to_string());
        plan.write_with_undo(
            "memory.disableOOMKiller",
            dir,
            "memory.oom_control",
            if d { "1" } else { "0" },
            undo,
        );
    }
    if let Some(h) = m.use_hierarchy() {
        plan.write(
            "memory.useHierarchy",
            dir,
            "memory.use_hierarchy",
            if h { "1" } else { "0" },
        );
    }
    Ok(())
}

/// A cpuset list (`0-3,5`): digits, `-` and `,` only.
pub(crate) fn check_cpuset(field: &'static str, v: &str) -> Result<(), CgroupError> {
    let ok = v.split(',').all(|part| {
        let mut it = part.trim().splitn(2, '-');
        let a = it.next().unwrap_or("");
        let b = it.next();
        !a.is_empty() && a.parse::<u32>().is_ok() && b.iter().all(|b| b.parse::<u32>().is_ok())
    });
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidValue {
            field,
            value: format!("{v:?}"),
            reason: "must be a list like \"0-3,5\"".into(),
        })
    }
}

/// Shared CPU validation (both versions): shares, quota and period ranges.
pub(crate) fn check_cpu(c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if !(MIN_SHARES..=MAX_SHARES).contains(&s) {
            return Err(CgroupError::InvalidValue {
                field: "cpu.shares",
                value: s.to_string(),
                reason: format!(
                    "must be in {MIN_SHARES}..={MAX_SHARES} (the kernel would silently clamp it)"
                ),
            });
        }
    }
    // kernel/sched/core.c: min_cfs_quota_period = 1 ms, max_cfs_quota_period = 1 s.
    if let Some(p) = c.period().filter(|p| *p != 0) {
        if !(1000..=1_000_000).contains(&p) {
            return Err(CgroupError::InvalidValue {
                field: "cpu.period",
                value: p.to_string(),
                reason: "must be in 1000..=1000000 microseconds (1 ms to 1 s)".into(),
            });
        }
    }
    if let Some(q) = c.quota().filter(|q| *q > 0) {
        if q < 1000 {
            return Err(CgroupError::InvalidValue {
                field: "cpu.quota",
                value: q.to_string(),
                reason: "must be -1 (unlimited) or at least 1000 microseconds (the kernel minimum, 1 ms)".into(),
            });
        }
    }
    if let Some(i) = c.idle() {
        if !(0..=1).contains(&i) {
            return Err(CgroupError::InvalidValue {
                field: "cpu.idle",
                value: i.to_string(),
                reason: "must be 0 or 1".into(),
            });
        }
    }
    for (field, v) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            check_cpuset(field, v)?;
        }
    }
    Ok(())
}

pub(crate) fn plan_cpu(
    plan: &mut Plan,
    paths: &CgroupPaths,
    c: &LinuxCpu,
) -> Result<(), CgroupError> {
    check_cpu(c)?;
    if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        plan.write(
            "cpu.cpus",
            need(paths, "cpu.cpus", "cpuset")?,
            "cpuset.cpus",
            cpus,
        );
    }
    if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        plan.write(
            "cpu.mems",
            need(paths, "cpu.mems", "cpuset")?,
            "cpuset.mems",
            mems,
        );
    }
    let shares = c.shares().filter(|s| *s != 0);
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    let rt_period = c.realtime_period().filter(|p| *p != 0);
    let rt_runtime = c.realtime_runtime().filter(|r| *r != 0);
    if shares.is_none()
        && quota.is_none()
        && period.is_none()
        && rt_period.is_none()
        && rt_runtime.is_none()
        && c.burst().is_none()
        && c.idle().is_none()
    {
        return Ok(());
    }
    let dir = need(paths, "cpu", "cpu")?;
    if let Some(s) = shares {
        // Read back: the kernel clamps silently (runc does the same check).
        plan.write("cpu.shares", dir, "cpu.shares", s.to_string())
            .verify = true;
    }
    if let Some(p) = period {
        // Lowering the period can be refused (EINVAL) while the old quota is in place when
        // an ancestor has a quota; then it is retried after the quota (runc fs/cpu.go).
        plan.write("cpu.period", dir, "cpu.cfs_period_us", p.to_string())
            .retry_after_next = quota.is_some();
    }
    if let Some(q) = quota {
        plan.write("cpu.quota", dir, "cpu.cfs_quota_us", v1_limit(q));
    }
    if let Some(b) = c.burst() {
        plan.write("cpu.burst", dir, "cpu.cfs_burst_us", b.to_string());
    }
    // The period must be in place before a runtime is checked against it.
    if let Some(p) = rt_period {
        plan.write("cpu.realtimePeriod", dir, "cpu.rt_period_us", p.to_string());
    }
    if let Some(r) = rt_runtime {
        plan.write(
            "cpu.realtimeRuntime",
            dir,
            "cpu.rt_runtime_us",
            r.to_string(),
        );
    }
    if let Some(i) = c.idle() {
        plan.write("cpu.idle", dir, "cpu.idle", i.to_string());
    }
    Ok(())
}

/// pids.max value: 0 = unset (runc), negative = `max`.
pub(crate) fn pids_value(p: &LinuxPids) -> Option<String> {
    match p.limit() {
        0 => None,
        l if l < 0 => Some("max".into()),
        l => Some(l.to_string()),
    }
}

pub(crate) fn plan_pids(plan: &mut Plan, dir: &Path, p: &LinuxPids) {
    if let Some(v) = pids_value(p) {
        plan.write("pids.limit", dir, "pids.max", v);
    }
}

/// blkio weights are 10..=1000 (Documentation/admin-guide/cgroup-v1/blkio-controller.rst).
pub(crate) fn check_weight(field: &'static str, w: u16) -> Result<(), CgroupError> {
    if (10..=1000).contains(&w) {
        Ok(())
    } else {
        Err(CgroupError::InvalidValue {
            field,
            value: w.to_string(),
            reason: "must be in 10..=1000".into(),
        })
    }
}

pub(crate) fn check_dev(
    field: &'static str,
    major: i64,
    minor: i64,
) -> Result<String, CgroupError> {
    if (0..=0xfff).contains(&major) && (0..=0xf_ffff).contains(&minor) {
        Ok(format!("{major}:{minor}"))
    } else {
        Err(CgroupError::InvalidValue {
            field,
            value: format!("{major}:{minor}"),
            reason: "not a valid major:minor device number".into(),
        })
    }
}

pub(crate) fn plan_blkio(
    plan: &mut Plan,
    paths: &CgroupPaths,
    b: &LinuxBlockIo,
) -> Result<(), CgroupError> {
    let weight = b.weight().filter(|w| *w != 0);
    let leaf = b.leaf_weight().filter(|w| *w != 0);
    let wdev = b.weight_device().as_deref().unwrap_or_default();
    let throttles = [
        (
            "blockIO.throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    let any_throttle = throttles
        .iter()
        .any(|(_, _, t)| t.as_ref().is_some_and(|t| !t.is_empty()));
    if weight.is_none() && leaf.is_none() && wdev.is_empty() && !any_throttle {
        return Ok(());
    }
    let dir = need(paths, "blockIO", "blkio")?;
    // CFQ (removed in Linux 5.0) had blkio.weight; BFQ has blkio.bfq.weight (same 1..1000 scale).
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| exists(dir, f));
    let weight_device_file = ["blkio.weight_device", "blkio.bfq.weight_device"]
        .into_iter()
        .find(|f| exists(dir, f));
    let no_weight = |field| {
        CgroupError::Unsupported {
        field,
        reason: format!(
            "no blkio.weight or blkio.bfq.weight in {}: proportional weights need the BFQ (or, before Linux 5.0, CFQ) I/O scheduler",
            dir.display()
        ),
    }
    };
    if let Some(w) = weight {
        check_weight("blockIO.weight", w)?;
        let file = weight_file.ok_or_else(|| no_weight("blockIO.weight"))?;
        plan.write("blockIO.weight", dir, file, w.to_string());
    }
    if let Some(w) = leaf {
        check_weight("blockIO.leafWeight", w)?;
        if !exists(dir, "blkio.leaf_weight") {
            return Err(CgroupError::Unsupported {
                field: "blockIO.leafWeight",
                reason:
                    "blkio.leaf_weight does not exist (it belonged to CFQ, removed in Linux 5.0)"
                        .into(),
            });
        }
        plan.write(
            "blockIO.leafWeight",
            dir,
            "blkio.leaf_weight",
            w.to_string(),
        );
    }
    for wd in wdev {
        let dev = check_dev("blockIO.weightDevice", wd.major(), wd.minor())?;
        if let Some(w) = wd.weight() {
            check_weight("blockIO.weightDevice", w)?;
            let file = weight_device_file.ok_or_else(|| no_weight("blockIO.weightDevice"))?;
            // Weight 0 removes a per-device weight.
            let undo = current_device_line(dir, file, &dev, format!("{dev} 0"));
            plan.write_with_undo(
                "blockIO.weightDevice",
                dir,
                file,
                format!("{dev} {w}"),
                undo,
            );
        }
        if let Some(w) = wd.leaf_weight() {
            check_weight("blockIO.weightDevice", w)?;
            if !exists(dir, "blkio.leaf_weight_device") {
                return Err(CgroupError::Unsupported {
                    field: "blockIO.weightDevice",
                    reason: "leafWeight: blkio.leaf_weight_device does not exist (CFQ, removed in Linux 5.0)".into(),
                });
            }
            let undo =
                current_device_line(dir, "blkio.leaf_weight_device", &dev, format!("{dev} 0"));
            plan.write_with_undo(
                "blockIO.weightDevice",
                dir,
                "blkio.leaf_weight_device",
                format!("{dev} {w}"),
                undo,
            );
        }
    }
    for (field, file, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            let dev = check_dev(field, t.major(), t.minor())?;
            // A rate of 0 removes the limit for that device.
            let undo = current_device_line(dir, file, &dev, format!("{dev} 0"));
            plan.write_with_undo(field, dir, file, format!("{dev} {}", t.rate()), undo);
        }
    }
    Ok(())
}

/// The hugetlb sizes a directory offers, from its `hugetlb.<size>.<suffix>` files.
pub(crate) fn hugetlb_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let rest = name
                        .strip_prefix("hugetlb.")?
                        .strip_suffix(suffix)?
                        .strip_suffix('.')?;
                    (!rest.contains('.')).then(|| rest.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    sizes
}

/// hugetlb limits: `limit_suffix` is `limit_in_bytes` on v1 and `max` on v2. The
/// reservation limit (`rsvd.*`, Linux 5.7) is set too where present, as runc does, so
/// reserved-but-unfaulted pages count (the spec: "default to reservation limits").
pub(crate) fn plan_hugetlb(
    plan: &mut Plan,
    dir: &Path,
    limits: &[LinuxHugepageLimit],
    limit_suffix: &str,
    fmt: fn(i64) -> String,
) -> Result<(), CgroupError> {
    for l in limits {
        let size = l.page_size();
        cgroupfs::check_file_name("hugepageLimits", size)?;
        let file = format!("hugetlb.{size}.{limit_suffix}");
        if !exists(dir, &file) {
            return Err(CgroupError::InvalidValue {
                field: "hugepageLimits",
                value: format!("pageSize {size:?}"),
                reason: format!(
                    "not a huge page size of this host (available: {})",
                    hugetlb_sizes(dir, limit_suffix).join(", ")
                ),
            });
        }
        if l.limit() < -1 {
            return Err(CgroupError::InvalidValue {
                field: "hugepageLimits",
                value: l.limit().to_string(),
                reason: "must be -1 (unlimited) or a number of bytes".into(),
            });
        }
        let value = fmt(l.limit());
        plan.write("hugepageLimits", dir, &file, value.clone());
        let rsvd = format!("hugetlb.{size}.rsvd.{limit_suffix}");
        if exists(dir, &rsvd) {
            plan.write("hugepageLimits", dir, &rsvd, value);
        }
    }
    Ok(())
}

pub(crate) fn plan_devices(
    plan: &mut Plan,
    paths: &CgroupPaths,
    rules: &[LinuxDeviceCgroup],
) -> Result<(), CgroupError> {
    let rules = devices::parse_rules(rules)?;
    let dir = need(paths, "devices", "devices")?;
    for (file, line) in devices::v1_writes(&rules) {
        // Not restorable line by line; a failure here is a bad rule at create time.
        plan.write_with_undo("devices", dir, file, line, None);
    }
    Ok(())
}

pub(crate) fn plan_network(
    plan: &mut Plan,
    paths: &CgroupPaths,
    n: &LinuxNetwork,
) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        plan.write(
            "network.classID",
            need(paths, "network.classID", "net_cls")?,
            "net_cls.classid",
            id.to_string(),
        );
    }
    for p in n.priorities().as_deref().unwrap_or_default() {
        cgroupfs::check_file_name("network.priorities", p.name())?;
        let dir = need(paths, "network.priorities", "net_prio")?;
        let undo = current_device_line(
            dir,
            "net_prio.ifpriomap",
            p.name(),
            format!("{} 0", p.name()),
        );
        plan.write_with_undo(
            "network.priorities",
            dir,
            "net_prio.ifpriomap",
            format!("{} {}", p.name(), p.priority()),
            undo,
        );
    }
    Ok(())
}

/// Freeze a v1 freezer cgroup, looping until `freezer.state` reads FROZEN.
///
/// runc `fs/freezer.go`: FREEZING means some task has not stopped yet (e.g. one is
/// forking); writing FROZEN again continues the attempt, and an occasional thaw lets a
/// stuck task make progress. If it never settles, thaw and fail: a half-frozen
/// container is worse than an error.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    let write = |v: &str| {
        cgroupfs::write_raw(dir, "freezer.state", v).map_err(|source| CgroupError::Write {
            field: "freeze",
            file: "freezer.state".into(),
            value: v.into(),
            dir: dir.to_owned(),
            source,
        })
    };
    let start = std::time::Instant::now();
    let mut state = String::new();
    for i in 0..1000u32 {
        if i % 50 == 49 {
            write("THAWED")?;
            std::thread::sleep(Duration::from_millis(10));
        }
        write("FROZEN")?;
        if i > 10 {
            std::thread::sleep(Duration::from_millis(1));
        }
        state = cgroupfs::read(dir, "freezer.state")?.trim().to_owned();
        if state == "FROZEN" {
            return Ok(());
        }
    }
    let _ = write("THAWED");
    Err(CgroupError::FreezeTimeout {
        action: "freeze",
        path: dir.to_owned(),
        state,
        waited_ms: start.elapsed().as_millis() as u64,
    })
}

/// Thaw a v1 freezer cgroup and wait until it reads THAWED.
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    let start = std::time::Instant::now();
    let mut state = String::new();
    for _ in 0..1000 {
        cgroupfs::write_raw(dir, "freezer.state", "THAWED").map_err(|source| {
            CgroupError::Write {
                field: "thaw",
                file: "freezer.state".into(),
                value: "THAWED".into(),
                dir: dir.to_owned(),
                source,
            }
        })?;
        state = cgroupfs::read(dir, "freezer.state")?.trim().to_owned();
        if state == "THAWED" {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(CgroupError::FreezeTimeout {
        action: "thaw",
        path: dir.to_owned(),
        state,
        waited_ms: start.elapsed().as_millis() as u64,
    })
}

/// Give a new cpuset cgroup the parent's CPUs and memory nodes: v1 cpusets start empty
/// and refuse tasks until both are set (runc `fs/cpuset.go` `ensureParent`/`copyIfNeeded`).
/// Walks from the mount point down so every level on the way is filled.
pub(crate) fn fill_cpusets(mountpoint: &Path, leaf: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = leaf.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut parent = mountpoint.to_path_buf();
    for comp in rel.components() {
        let cur = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            // A missing file means no cpuset files here at all (not a cpuset hierarchy).
            let Some(mine) = cgroupfs::read_opt(&cur, file)? else {
                continue;
            };
            if mine.trim().is_empty() {
                let theirs = cgroupfs::read(&parent, file)?;
                let theirs = theirs.trim();
                if !theirs.is_empty() {
                    cgroupfs::write_raw(&cur, file, theirs).map_err(|source| {
                        CgroupError::Write {
                            field: "cpuset",
                            file: file.into(),
                            value: theirs.into(),
                            dir: cur.clone(),
                            source,
                        }
                    })?;
                }
            }
        }
        parent = cur;
    }
    Ok(())
}
