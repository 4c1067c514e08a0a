//! capabilities: Docker's default capability set, the names this kernel
//! knows, and the `--cap-add` / `--cap-drop` / `--privileged` arithmetic.
//!
//! Semantics follow moby `daemon/pkg/oci/caps` (`NormalizeLegacyCapabilities`,
//! `TweakCapabilities`):
//! - names are case-insensitive and accepted with or without `CAP_`;
//! - `ALL` may appear in either list: `--cap-add ALL` gives every available
//!   capability except the dropped ones; `--cap-drop ALL` starts from nothing
//!   and keeps only what is added;
//! - `--privileged` gives every available capability regardless of the lists
//!   (which are still validated, as Docker does);
//! - "available" means known to berth AND present in the engine's own bounding
//!   set: a capability the engine does not hold cannot be granted to a child
//!   (this sandbox, for instance, runs without `CAP_SYS_RESOURCE`).
//!
//! Invariant: every list this module returns is sorted, deduplicated and made
//! of canonical `CAP_*` names from [`KNOWN`].
//!
//! Reference: capabilities(7); the bit numbers are `include/uapi/linux/capability.h`.

use std::collections::BTreeSet;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// Every capability this kernel knows (Linux 6.x: `cap_last_cap` = 40), with
/// its bit number in `/proc/<pid>/status` masks.
#[rustfmt::skip] // policy data: one commented entry per line, grouped by topic
pub const KNOWN: [(&str, u32); 41] = [
    ("CAP_CHOWN", 0),               // change file owner and group
    ("CAP_DAC_OVERRIDE", 1),        // bypass file read/write/execute permission checks
    ("CAP_DAC_READ_SEARCH", 2),     // bypass read/search checks; open_by_handle_at
    ("CAP_FOWNER", 3),              // bypass owner checks (chmod, utime on others' files)
    ("CAP_FSETID", 4),              // keep setuid/setgid bits when a file is modified
    ("CAP_KILL", 5),                // send signals to processes of other users
    ("CAP_SETGID", 6),              // change gids, set supplementary groups
    ("CAP_SETUID", 7),              // change uids
    ("CAP_SETPCAP", 8),             // drop from the bounding set, set securebits
    ("CAP_LINUX_IMMUTABLE", 9),     // set immutable and append-only file flags
    ("CAP_NET_BIND_SERVICE", 10),   // bind ports below 1024
    ("CAP_NET_BROADCAST", 11),      // broadcast and multicast listening (unused)
    ("CAP_NET_ADMIN", 12),          // configure interfaces, routes, firewall
    ("CAP_NET_RAW", 13),            // raw and packet sockets
    ("CAP_IPC_LOCK", 14),           // lock memory beyond RLIMIT_MEMLOCK
    ("CAP_IPC_OWNER", 15),          // bypass SysV IPC permission checks
    ("CAP_SYS_MODULE", 16),         // load and unload kernel modules
    ("CAP_SYS_RAWIO", 17),          // port I/O, /dev/mem, raw block devices
    ("CAP_SYS_CHROOT", 18),         // chroot(2)
    ("CAP_SYS_PTRACE", 19),         // trace arbitrary processes
    ("CAP_SYS_PACCT", 20),          // process accounting, acct(2)
    ("CAP_SYS_ADMIN", 21),          // mount, namespaces and most other administration
    ("CAP_SYS_BOOT", 22),           // reboot(2), kexec_load(2)
    ("CAP_SYS_NICE", 23),           // raise priorities, real-time scheduling, NUMA policy
    ("CAP_SYS_RESOURCE", 24),       // override resource limits and quotas
    ("CAP_SYS_TIME", 25),           // set the system clock
    ("CAP_SYS_TTY_CONFIG", 26),     // vhangup(2), privileged tty ioctls
    ("CAP_MKNOD", 27),              // create device nodes
    ("CAP_LEASE", 28),              // file leases on files one does not own
    ("CAP_AUDIT_WRITE", 29),        // write to the kernel audit log
    ("CAP_AUDIT_CONTROL", 30),      // configure kernel auditing
    ("CAP_SETFCAP", 31),            // set file capabilities
    ("CAP_MAC_OVERRIDE", 32),       // bypass mandatory access control
    ("CAP_MAC_ADMIN", 33),          // configure mandatory access control
    ("CAP_SYSLOG", 34),             // privileged syslog(2), see kernel addresses
    ("CAP_WAKE_ALARM", 35),         // timers that wake the system
    ("CAP_BLOCK_SUSPEND", 36),      // block system suspend
    ("CAP_AUDIT_READ", 37),         // read the audit log via multicast netlink
    ("CAP_PERFMON", 38),            // perf_event_open and other performance monitoring
    ("CAP_BPF", 39),                // privileged BPF operations
    ("CAP_CHECKPOINT_RESTORE", 40), // checkpoint/restore helpers (ns_last_pid, set_tid)
];

/// Docker's default set (moby `oci/caps/defaults.go`), in Docker's order.
/// Everything else — notably CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE,
/// CAP_SYS_MODULE, CAP_DAC_READ_SEARCH — must be asked for with `--cap-add`.
#[rustfmt::skip] // policy data: one commented entry per line, grouped by topic
pub const DEFAULT: [&str; 14] = [
    "CAP_CHOWN",            // chown files in the image (package managers do)
    "CAP_DAC_OVERRIDE",     // root ignores file permission bits, as on a normal system
    "CAP_FSETID",           // keep setuid/setgid bits when root modifies a file
    "CAP_FOWNER",           // root may chmod/utime files it does not own
    "CAP_MKNOD",            // mknod device nodes (use is still limited by the device cgroup)
    "CAP_NET_RAW",          // raw sockets: ping, packet capture in the container's netns
    "CAP_SETGID",           // switch group ids (su, daemons dropping privileges)
    "CAP_SETUID",           // switch user ids (su, daemons dropping privileges)
    "CAP_SETFCAP",          // set file capabilities (installing ping and the like)
    "CAP_SETPCAP",          // drop capabilities from the bounding set of children
    "CAP_NET_BIND_SERVICE", // bind ports below 1024 (web servers on :80)
    "CAP_SYS_CHROOT",       // chroot(2) (build tools, some daemons)
    "CAP_KILL",             // signal processes of other uids in the container
    "CAP_AUDIT_WRITE",      // write audit records (login, sshd, sudo expect to)
];

/// The magic value accepted by `--cap-add` and `--cap-drop`.
pub const ALL: &str = "ALL";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapabilityError {
    /// Docker's wording, so scripts matching on it keep working.
    #[error("unknown capability: {0:?}")]
    Unknown(String),
    #[error("capability not supported by your kernel or not available in the current environment: {0:?}")]
    Unavailable(String),
}

/// The bit number of a canonical `CAP_*` name.
pub fn bit(name: &str) -> Option<u32> {
    KNOWN.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// `sys_admin`, `CAP_SYS_ADMIN`, `Sys_Admin` → `CAP_SYS_ADMIN`; `all` → `ALL`.
pub fn normalize(name: &str) -> Result<String, CapabilityError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == ALL {
        return Ok(upper);
    }
    let canonical = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if bit(&canonical).is_none() {
        return Err(CapabilityError::Unknown(canonical));
    }
    Ok(canonical)
}

/// The capability mask (as in `/proc/<pid>/status`) of a set of canonical names.
/// Names that are not canonical are ignored.
pub fn mask(caps: &[String]) -> u64 {
    caps.iter()
        .filter_map(|c| bit(c))
        .fold(0u64, |m, b| m | (1u64 << b))
}

/// Canonical names of the bits set in `mask`, sorted.
pub fn from_mask(mask: u64) -> Vec<String> {
    let mut v: Vec<String> = KNOWN
        .iter()
        .filter(|(_, b)| mask & (1u64 << b) != 0)
        .map(|(n, _)| (*n).to_string())
        .collect();
    v.sort();
    v
}

/// Capabilities the engine can hand to a container: the known ones that are in
/// this process's bounding set (`CapBnd` of /proc/self/status), as Docker's
/// `GetAllCapabilities` does. Falls back to every known capability when the
/// status file cannot be read; the runtime then reports what it cannot grant.
pub fn available() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        });
    match bounding {
        Some(m) => from_mask(m),
        None => KNOWN.iter().map(|(n, _)| (*n).to_string()).collect(),
    }
}

/// The container's capability set for `--cap-add`, `--cap-drop` and
/// `--privileged`, against the capabilities [`available`] to this process.
pub fn resolve(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, CapabilityError> {
    resolve_in(cap_add, cap_drop, privileged, &available())
}

/// [`resolve`] with the available set given (pure; what the tests use).
pub fn resolve_in(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    available: &[String],
) -> Result<Vec<String>, CapabilityError> {
    // Validate both lists first, even when privileged: a typo is an error
    // whatever else is on the command line (Docker validates at create, too).
    let adds = cap_add
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = cap_drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>, _>>()?;
    // Adding what the engine itself lacks can only fail later, inside the
    // runtime, with a vaguer error. Dropping it is harmless, so it is allowed.
    if let Some(missing) = adds.iter().find(|c| *c != ALL && !available.contains(c)) {
        return Err(CapabilityError::Unavailable(missing.clone()));
    }
    let all: BTreeSet<String> = available
        .iter()
        .filter(|c| bit(c).is_some())
        .cloned()
        .collect();
    if privileged {
        return Ok(all.into_iter().collect());
    }
    let set: BTreeSet<String> = if adds.iter().any(|c| c == ALL) {
        all.into_iter().filter(|c| !drops.contains(c)).collect()
    } else if drops.iter().any(|c| c == ALL) {
        adds.into_iter().collect()
    } else {
        DEFAULT
            .iter()
            .map(|c| (*c).to_string())
            // The default set may name a capability this process lacks; it
            // cannot be granted, so it is left out rather than failing every run.
            .filter(|c| all.contains(c) && !drops.contains(c))
            .chain(adds)
            .collect()
    };
    Ok(set.into_iter().collect())
}

/// The OCI `process.capabilities` for a resolved set, as Docker sets it.
///
/// Root: bounding, effective and permitted hold the set. A non-root `--user`:
/// only bounding holds it, so the process has no capabilities (what execve
/// would leave anyway without ambient capabilities) but a setuid-root or
/// file-capability binary in the image can still gain them up to the bound.
/// Inheritable and ambient are always empty (Docker ≥ 23 stopped setting
/// inheritable: CVE-2022-24769). Every set is written out, never left to a
/// default: oci-spec's `LinuxCapabilities::default()` is not empty.
pub fn linux_capabilities(caps: &[String], uid_is_root: bool) -> LinuxCapabilities {
    let set: Capabilities = caps.iter().filter_map(|c| to_oci(c)).collect();
    let empty = Capabilities::new();
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(set.clone()));
    lc.set_inheritable(Some(empty.clone()));
    lc.set_ambient(Some(empty.clone()));
    if uid_is_root {
        lc.set_effective(Some(set.clone()));
        lc.set_permitted(Some(set));
    } else {
        lc.set_effective(Some(empty.clone()));
        lc.set_permitted(Some(empty));
    }
    lc
}

fn to_oci(name: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn all_known() -> Vec<String> {
        KNOWN.iter().map(|(n, _)| n.to_string()).collect()
    }

    fn sorted_default() -> Vec<String> {
        let mut d = s(&DEFAULT);
        d.sort();
        d
    }

    #[test]
    fn known_table_is_complete_and_ordered() {
        for (i, (name, b)) in KNOWN.iter().enumerate() {
            assert_eq!(i as u32, *b, "{name}");
            assert!(name.starts_with("CAP_"));
            assert!(to_oci(name).is_some(), "oci-spec knows {name}");
        }
        // This kernel's last capability; if the kernel grows one, KNOWN must too.
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .expect("cap_last_cap")
            .trim()
            .parse()
            .expect("number");
        assert_eq!(last as usize, KNOWN.len() - 1);
    }

    #[test]
    fn default_mask_is_dockers() {
        // Docker's `CapEff: 00000000a80425fb`.
        assert_eq!(mask(&s(&DEFAULT)), 0xa80425fb);
        assert_eq!(from_mask(0xa80425fb), sorted_default());
    }

    #[test]
    fn no_flags_gives_default() {
        let got = resolve_in(&[], &[], false, &all_known()).unwrap();
        assert_eq!(got, sorted_default());
        assert_eq!(got.len(), 14);
    }

    #[test]
    fn names_are_case_insensitive_with_or_without_prefix() {
        for n in ["sys_admin", "SYS_ADMIN", "cap_sys_admin", "Cap_Sys_Admin"] {
            assert_eq!(normalize(n).unwrap(), "CAP_SYS_ADMIN");
        }
        assert_eq!(normalize("all").unwrap(), "ALL");
    }

    #[test]
    fn add_and_drop() {
        let got = resolve_in(
            &s(&["net_admin"]),
            &s(&["CHOWN", "cap_kill"]),
            false,
            &all_known(),
        )
        .unwrap();
        assert!(got.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!got.contains(&"CAP_CHOWN".to_string()));
        assert!(!got.contains(&"CAP_KILL".to_string()));
        assert_eq!(got.len(), 13);
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
    }

    #[test]
    fn drop_all_then_add() {
        assert!(resolve_in(&[], &s(&["ALL"]), false, &all_known())
            .unwrap()
            .is_empty());
        assert_eq!(
            resolve_in(
                &s(&["NET_BIND_SERVICE", "chown"]),
                &s(&["all"]),
                false,
                &all_known()
            )
            .unwrap(),
            s(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE"])
        );
    }

    #[test]
    fn add_all_minus_drops() {
        let got = resolve_in(&s(&["ALL"]), &s(&["sys_admin"]), false, &all_known()).unwrap();
        assert_eq!(got.len(), 40);
        assert!(!got.contains(&"CAP_SYS_ADMIN".to_string()));
        // add ALL wins over drop ALL, as in Docker.
        assert_eq!(
            resolve_in(&s(&["ALL"]), &s(&["ALL"]), false, &all_known())
                .unwrap()
                .len(),
            41
        );
    }

    #[test]
    fn privileged_is_everything_available() {
        assert_eq!(
            resolve_in(&[], &s(&["ALL"]), true, &all_known())
                .unwrap()
                .len(),
            41
        );
        let mut avail = all_known();
        avail.retain(|c| c != "CAP_SYS_RESOURCE");
        let got = resolve_in(&[], &[], true, &avail).unwrap();
        assert_eq!(got.len(), 40);
        assert!(!got.contains(&"CAP_SYS_RESOURCE".to_string()));
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let e = resolve_in(&s(&["foo"]), &[], false, &all_known()).unwrap_err();
        assert_eq!(e, CapabilityError::Unknown("CAP_FOO".into()));
        assert_eq!(e.to_string(), r#"unknown capability: "CAP_FOO""#);
        // Validated even when privileged, and in the drop list too.
        assert!(resolve_in(&[], &s(&["CAP_NOPE"]), true, &all_known()).is_err());
    }

    #[test]
    fn adding_an_unavailable_capability_is_an_error() {
        let mut avail = all_known();
        avail.retain(|c| c != "CAP_SYS_RESOURCE");
        let e = resolve_in(&s(&["sys_resource"]), &[], false, &avail).unwrap_err();
        assert_eq!(e, CapabilityError::Unavailable("CAP_SYS_RESOURCE".into()));
        // Dropping it is fine.
        assert_eq!(
            resolve_in(&[], &s(&["sys_resource"]), false, &avail).unwrap(),
            sorted_default()
        );
    }

    #[test]
    fn available_reads_this_process() {
        let a = available();
        assert!(!a.is_empty());
        assert!(a.iter().all(|c| bit(c).is_some()));
    }

    #[test]
    fn oci_sets_for_root_and_non_root() {
        let caps = s(&DEFAULT);
        let want: Capabilities = caps.iter().filter_map(|c| to_oci(c)).collect();
        assert_eq!(want.len(), 14);
        let root = linux_capabilities(&caps, true);
        assert_eq!(root.bounding().as_ref(), Some(&want));
        assert_eq!(root.effective().as_ref(), Some(&want));
        assert_eq!(root.permitted().as_ref(), Some(&want));
        assert_eq!(root.inheritable().as_ref().map(|c| c.len()), Some(0));
        assert_eq!(root.ambient().as_ref().map(|c| c.len()), Some(0));

        let user = linux_capabilities(&caps, false);
        assert_eq!(user.bounding().as_ref(), Some(&want));
        for set in [
            user.effective(),
            user.permitted(),
            user.inheritable(),
            user.ambient(),
        ] {
            assert_eq!(set.as_ref().map(|c| c.len()), Some(0));
        }
        // Serialized with the spec's CAP_ names.
        let j = serde_json::to_value(&root).unwrap();
        assert!(j["bounding"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("CAP_NET_BIND_SERVICE")));
    }
}
