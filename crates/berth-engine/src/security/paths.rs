//! paths: Docker's default masked and read-only paths under /proc and /sys.
//!
//! The runtime masks a path by mounting /dev/null over a file or an empty
//! read-only tmpfs over a directory, and makes read-only paths read-only bind
//! mounts of themselves. Neither applies to `--privileged` containers (nor
//! with `--security-opt systempaths=unconfined`), as in Docker.
//!
//! Source: moby `daemon/pkg/oci/defaults.go` (`defaultLinuxMaskedPaths`, the
//! `ReadonlyPaths` of `DefaultLinuxSpec`).

use std::path::Path;

/// Hidden from the container: host information leaks or host-wide knobs.
#[rustfmt::skip] // policy data: one commented entry per line, grouped by topic
pub const MASKED: [&str; 12] = [
    "/proc/asound",        // the host's sound cards
    "/proc/acpi",          // host ACPI state and event controls
    "/proc/interrupts",    // per-CPU interrupt counts: side channel on host activity (GHSA-6fw5-f8r9-fgfm)
    "/proc/kcore",         // the host's physical memory as an ELF core
    "/proc/keys",          // kernel keyrings, which are not namespaced
    "/proc/latency_stats", // host-wide latency statistics, writable to reset
    "/proc/timer_list",    // every host timer, with task names and pids
    "/proc/timer_stats",   // host timer statistics, writable to enable
    "/proc/sched_debug",   // scheduler state of every host task
    "/proc/scsi",          // SCSI devices, writable to add/remove them
    "/sys/firmware",       // firmware tables (ACPI, DMI, EFI variables)
    "/sys/devices/virtual/powercap", // RAPL energy counters: power side channel (GHSA-jq35-85cj-fj4p)
];

/// Visible but read-only: host-wide state a container must not change.
#[rustfmt::skip] // policy data: one commented entry per line, grouped by topic
pub const READONLY: [&str; 5] = [
    "/proc/bus",           // PCI and USB device configuration
    "/proc/fs",            // filesystem-driver tunables (nfsd, ext4...)
    "/proc/irq",           // interrupt CPU affinity of the host
    "/proc/sys",           // sysctls (namespaced ones are set through the spec's linux.sysctl)
    "/proc/sysrq-trigger", // magic SysRq: reboot, crash or sync the host
];

/// The masked paths of a container.
pub fn masked_paths(privileged: bool) -> Vec<String> {
    if privileged {
        return Vec::new();
    }
    MASKED.iter().map(|p| (*p).to_string()).collect()
}

/// The read-only paths of a container.
pub fn readonly_paths(privileged: bool) -> Vec<String> {
    if privileged {
        return Vec::new();
    }
    READONLY.iter().map(|p| (*p).to_string()).collect()
}

/// Docker also masks each CPU's `thermal_throttle` directory where the host
/// has one (another side channel, GHSA-6fw5-f8r9-fgfm). `sys` is the host's
/// /sys (a parameter so tests can use a temp dir).
pub fn thermal_throttle_paths(sys: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys.join("devices/system/cpu")) else {
        return Vec::new();
    };
    let mut cpus: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
        .collect();
    cpus.sort_unstable();
    cpus.into_iter()
        .map(|n| format!("devices/system/cpu/cpu{n}/thermal_throttle"))
        .filter(|rel| sys.join(rel).is_dir())
        .map(|rel| format!("/sys/{rel}"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn defaults_and_privileged() {
        assert_eq!(masked_paths(false).len(), 12);
        assert_eq!(readonly_paths(false).len(), 5);
        assert!(masked_paths(false).contains(&"/proc/kcore".to_string()));
        assert!(readonly_paths(false).contains(&"/proc/sysrq-trigger".to_string()));
        assert!(masked_paths(true).is_empty());
        assert!(readonly_paths(true).is_empty());
    }

    #[test]
    fn paths_are_absolute_and_disjoint() {
        for p in MASKED.iter().chain(READONLY.iter()) {
            assert!(p.starts_with("/proc/") || p.starts_with("/sys/"), "{p}");
            assert!(!p.ends_with('/'));
        }
        for p in MASKED {
            assert!(!READONLY.contains(&p));
        }
    }

    #[test]
    fn thermal_throttle_found_only_where_present() {
        let d = tempfile::tempdir().unwrap();
        let cpu = d.path().join("devices/system/cpu");
        std::fs::create_dir_all(cpu.join("cpu0/thermal_throttle")).unwrap();
        std::fs::create_dir_all(cpu.join("cpu1")).unwrap();
        std::fs::create_dir_all(cpu.join("cpu10/thermal_throttle")).unwrap();
        std::fs::create_dir_all(cpu.join("cpufreq")).unwrap();
        assert_eq!(
            thermal_throttle_paths(d.path()),
            vec![
                "/sys/devices/system/cpu/cpu0/thermal_throttle".to_string(),
                "/sys/devices/system/cpu/cpu10/thermal_throttle".to_string(),
            ]
        );
        assert!(thermal_throttle_paths(&d.path().join("missing")).is_empty());
    }
}
