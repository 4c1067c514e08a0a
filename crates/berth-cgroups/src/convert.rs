//! Value conversions between OCI (v1-shaped) resource values and cgroup v2 files.
//!
//! Owns: the formulas runc and crun use, each cited, so that a spec produces the same
//! kernel values under berth as under runc. All functions are pure.
//!
//! Conventions: in OCI, `-1` means unlimited; cgroup v1 files take `-1`, v2 files take
//! the word `max`. A `0` in an optional OCI number means "not set" (runc treats it so).

use crate::error::CgroupError;

/// cpu.shares range the kernel accepts (kernel/sched/sched.h MIN_SHARES/MAX_SHARES);
/// outside it the kernel silently clamps, so we refuse instead.
pub const MIN_SHARES: u64 = 2;
pub const MAX_SHARES: u64 = 262_144;

/// cpu.shares → cpu.weight.
///
/// runc `libcontainer/cgroups/utils.go` `ConvertCPUSharesToCgroupV2Value` (runc 1.0–1.2,
/// crun before 1.23): maps [2, 262144] linearly onto [1, 10000]:
/// `weight = 1 + ((shares - 2) * 9999) / 262142`. The default 1024 shares becomes 39, not
/// v2's default 100 — a known quirk kept for compatibility with what runc writes.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(MIN_SHARES, MAX_SHARES) - 2) * 9999) / 262_142
}

/// blkio.weight [10, 1000] → io.weight [1, 10000].
///
/// runc `libcontainer/cgroups/utils.go` `ConvertBlkIOToIOWeightValue` (also crun
/// `src/libcrun/cgroup-resources.c`): `1 + (weight - 10) * 9999 / 990`.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight.max(10)) - 10) * 9999 / 990
}

/// OCI `memory.swap` (v1 semantics: memory **plus** swap) → v2 `memory.swap.max`
/// (swap alone), given OCI `memory.limit`. Returns `None` for "leave unset",
/// `Some(-1)` for "max".
///
/// runc `libcontainer/cgroups/utils.go` `ConvertMemorySwapToCgroupV2Value`:
/// - limit -1 and swap unset → swap unlimited too ("set both memory and swap to unlimited");
/// - swap -1 → max; swap 0 → unset;
/// - otherwise swap needs a positive limit and swap >= limit, and the v2 value is swap − limit.
pub fn swap_to_v2(swap: i64, limit: i64) -> Result<Option<i64>, CgroupError> {
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    let invalid = |reason: &str| CgroupError::InvalidValue {
        field: "memory.swap",
        value: swap.to_string(),
        reason: reason.to_owned(),
    };
    if swap < 0 {
        return Err(invalid(
            "must be -1 (unlimited) or a positive number of bytes",
        ));
    }
    if limit <= 0 {
        return Err(invalid("a swap limit needs a memory limit (memory.limit)"));
    }
    if swap < limit {
        return Err(invalid(&format!(
            "memory+swap must be >= memory.limit ({limit})"
        )));
    }
    Ok(Some(swap - limit))
}

/// A v2 limit: negative → `max`.
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// A v1 limit: any negative → `-1`.
pub fn v1_limit(v: i64) -> String {
    if v < 0 {
        "-1".to_owned()
    } else {
        v.to_string()
    }
}

/// Parse a v2 `max`-or-number file value; `None` means no limit.
pub fn parse_v2_limit(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        None
    } else {
        s.parse().ok()
    }
}

/// v1 reports "no memory limit" as LONG_MAX rounded down to the page size
/// (9223372036854771712 with 4 KiB pages). Anything that large is no limit.
pub fn v1_memory_limit(v: u64) -> Option<u64> {
    (v < (1u64 << 62)).then_some(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        // Values from runc's TestConvertCPUSharesToCgroupV2Value.
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        // Monotonic over the whole range.
        let mut last = 0;
        for s in MIN_SHARES..=MAX_SHARES {
            let w = shares_to_weight(s);
            assert!((1..=10_000).contains(&w) && w >= last);
            last = w;
        }
    }

    #[test]
    fn blkio_weight_to_io_weight_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        for w in 10..=1000u16 {
            assert!((1..=10_000).contains(&blkio_weight_to_io_weight(w)));
        }
    }

    #[test]
    fn swap_conversion_table() {
        let m = 64 << 20;
        assert_eq!(swap_to_v2(0, -1).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(0, m).unwrap(), None);
        assert_eq!(swap_to_v2(-1, m).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(m, m).unwrap(), Some(0));
        assert_eq!(swap_to_v2(3 * m, m).unwrap(), Some(2 * m));
        assert!(swap_to_v2(m, 2 * m).is_err());
        assert!(swap_to_v2(m, 0).is_err());
        assert!(swap_to_v2(m, -1).is_err());
        assert!(swap_to_v2(-5, m).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(5), "5");
        assert_eq!(v1_limit(-7), "-1");
        assert_eq!(parse_v2_limit("max\n"), None);
        assert_eq!(parse_v2_limit("42\n"), Some(42));
        assert_eq!(v1_memory_limit(9_223_372_036_854_771_712), None);
        assert_eq!(v1_memory_limit(67_108_864), Some(67_108_864));
    }
}
