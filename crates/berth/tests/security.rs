//! Security defaults of `berth run` on the real kernel (issue 4, "Must show",
//! engine half): the default seccomp profile, capabilities, no_new_privs,
//! masked and read-only /proc and /sys paths, `--read-only`, `--user`, custom
//! and invalid seccomp profiles, bad security flags, and a catalogue of
//! malicious images (symlinks out of the rootfs) that must never make the
//! engine or the runtime read or write a host path.
//!
//! Every seccomp check has a control run that differs only in the filter
//! (`--security-opt seccomp=unconfined`) or only in the capability, so a test
//! proves the *filter* is what blocks a call, not the missing capability.
//! Syscalls are made by a tiny static probe compiled here with `gcc -static`
//! (apt: gcc, libc6-dev) and bind-mounted into the busybox image; each probed
//! call is harmless even with no filter at all (bad reboot magic, nonexistent
//! paths). Expected values: crates/berth-engine/src/security/README-tests.md.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

const EPERM: i32 = libc::EPERM;
const ENOENT: i32 = libc::ENOENT;
const EINVAL: i32 = libc::EINVAL;

/// Docker's default capability set (14 capabilities), as /proc prints it.
const DOCKER_CAPS: &str = "00000000a80425fb";
/// DOCKER_CAPS plus CAP_SYS_ADMIN (bit 21).
const DOCKER_CAPS_SYS_ADMIN: &str = "00000000a82425fb";
const NO_CAPS: &str = "0000000000000000";

// ---------------------------------------------------------------- helpers

/// `berth run --rm <flags> busybox <cmd>`.
fn run(flags: &[&str], cmd: &[&str]) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.push("busybox");
    args.extend_from_slice(cmd);
    berth(&args)
}

/// Like `run`, but the container must exit 0; its stdout.
fn run_ok(flags: &[&str], cmd: &[&str]) -> String {
    let o = run(flags, cmd);
    assert!(
        o.status.success(),
        "run {flags:?} {cmd:?} exited {:?}: {}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The container's /proc/self/status as a map (`CapEff` → `00000000a80425fb`).
fn status(flags: &[&str]) -> BTreeMap<String, String> {
    run_ok(flags, &["cat", "/proc/self/status"])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn field<'a>(s: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    s.get(k)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {k} in /proc/self/status: {s:?}"))
}

fn assert_caps(flags: &[&str], prm: &str, eff: &str, bnd: &str) {
    let s = status(flags);
    assert_eq!(field(&s, "CapInh"), NO_CAPS, "{flags:?}");
    assert_eq!(field(&s, "CapPrm"), prm, "{flags:?}");
    assert_eq!(field(&s, "CapEff"), eff, "{flags:?}");
    assert_eq!(field(&s, "CapBnd"), bnd, "{flags:?}");
    assert_eq!(field(&s, "CapAmb"), NO_CAPS, "{flags:?}");
}

/// The per-binary scratch directory the harness tears down (next to root/).
fn scratch() -> PathBuf {
    env()
        .root
        .parent()
        .expect("engine root has a parent")
        .to_path_buf()
}

const PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
/* Each call is harmless even when nothing filters it: bad reboot magic
   (EINVAL), nonexistent paths (ENOENT), a user namespace for this process. */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *n = argv[i];
        long r;
        errno = 0;
        if (!strcmp(n, "reboot")) r = syscall(SYS_reboot, 0L, 0L, 0L, 0L);
        else if (!strcmp(n, "mount")) r = syscall(SYS_mount, "none", "/nonexistent-berth-probe", "tmpfs", 0L, 0L);
        else if (!strcmp(n, "swapon")) r = syscall(SYS_swapon, "/nonexistent-berth-probe", 0L);
        else if (!strcmp(n, "unshare_user")) r = syscall(SYS_unshare, 0x10000000L);
        else if (!strcmp(n, "getpid")) r = syscall(SYS_getpid);
        else { printf("%s unknown\n", n); return 2; }
        printf("%s %d\n", n, r == -1 ? errno : 0);
    }
    return 0;
}
"#;

/// The static syscall probe, compiled once per test binary.
fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let dir = scratch().join("probe");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("probe.c"), PROBE_C).unwrap();
        let bin = dir.join("probe");
        let o = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&bin)
            .arg(dir.join("probe.c"))
            .output()
            .expect("gcc (apt: gcc, libc6-dev) builds the static syscall probe");
        assert!(
            o.status.success(),
            "gcc -static probe.c: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        bin
    })
}

/// Run the probe in a busybox container with `flags`: syscall name → errno (0 = success).
fn syscalls(flags: &[&str]) -> BTreeMap<String, i32> {
    let vol = format!("{}:/probe:ro", probe().display());
    let mut f = vec!["-v", vol.as_str()];
    f.extend_from_slice(flags);
    run_ok(
        &f,
        &[
            "/probe",
            "reboot",
            "mount",
            "swapon",
            "unshare_user",
            "getpid",
        ],
    )
    .lines()
    .map(|l| {
        let (k, v) = l
            .split_once(' ')
            .unwrap_or_else(|| panic!("probe line {l:?}"));
        (
            k.to_string(),
            v.parse().unwrap_or_else(|_| panic!("probe line {l:?}")),
        )
    })
    .collect()
}

fn errno_of(m: &BTreeMap<String, i32>, call: &str) -> i32 {
    *m.get(call)
        .unwrap_or_else(|| panic!("probe printed no {call}: {m:?}"))
}

// ---------------------------------------------------------------- seccomp

#[test]
fn default_seccomp_blocks_with_eperm_and_unconfined_does_not() {
    let default = syscalls(&[]);
    let unconfined = syscalls(&["--security-opt", "seccomp=unconfined"]);

    // mount: the kernel resolves the target before checking CAP_SYS_ADMIN, so
    // without a filter it says ENOENT even with no capability: EPERM is the filter.
    assert_eq!(errno_of(&default, "mount"), EPERM, "{default:?}");
    assert_eq!(errno_of(&unconfined, "mount"), ENOENT, "{unconfined:?}");

    // unshare(CLONE_NEWUSER) needs no capability on this host
    // (max_user_namespaces > 0): EPERM is the filter.
    assert_eq!(errno_of(&default, "unshare_user"), EPERM, "{default:?}");
    assert_eq!(errno_of(&unconfined, "unshare_user"), 0, "{unconfined:?}");

    // reboot and swapon: EPERM in the default container (the capability
    // layer alone also says EPERM; the tests below separate the layers).
    assert_eq!(errno_of(&default, "reboot"), EPERM, "{default:?}");
    assert_eq!(errno_of(&default, "swapon"), EPERM, "{default:?}");

    // ordinary calls keep working
    assert_eq!(errno_of(&default, "getpid"), 0, "{default:?}");
}

#[test]
fn swapon_is_blocked_by_the_filter_even_with_sys_admin() {
    // Docker's profile never allows swapon; with the capability present only
    // the filter can say EPERM (unfiltered, the kernel reaches the path: ENOENT).
    let filtered = syscalls(&["--cap-add", "SYS_ADMIN"]);
    let unfiltered = syscalls(&[
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "seccomp=unconfined",
    ]);
    assert_eq!(errno_of(&filtered, "swapon"), EPERM, "{filtered:?}");
    assert_eq!(errno_of(&unfiltered, "swapon"), ENOENT, "{unfiltered:?}");
}

#[test]
fn sys_admin_opens_the_profile_for_mount_and_unshare_as_docker_does() {
    // Docker's profile allows mount/unshare exactly when CAP_SYS_ADMIN is granted.
    let m = syscalls(&["--cap-add", "SYS_ADMIN"]);
    assert_eq!(errno_of(&m, "mount"), ENOENT, "{m:?}");
    assert_eq!(errno_of(&m, "unshare_user"), 0, "{m:?}");
}

#[test]
fn reboot_needs_sys_boot_and_bad_magic_is_einval_when_allowed() {
    // The probe passes bad magic: when both layers let it through, the kernel
    // answers EINVAL and never reboots anything. Docker's profile allows
    // reboot exactly when CAP_SYS_BOOT is granted, so for reboot the EPERM of
    // a default container cannot be attributed to one layer alone.
    let unfiltered = syscalls(&[
        "--cap-add",
        "SYS_BOOT",
        "--security-opt",
        "seccomp=unconfined",
    ]);
    assert_eq!(errno_of(&unfiltered, "reboot"), EINVAL, "{unfiltered:?}");
    let with_cap = syscalls(&["--cap-add", "SYS_BOOT"]);
    assert_eq!(errno_of(&with_cap, "reboot"), EINVAL, "{with_cap:?}");
    // without the capability but unfiltered: the capability layer
    let no_cap = syscalls(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(errno_of(&no_cap, "reboot"), EPERM, "{no_cap:?}");
    // and the filter still blocks the other calls when SYS_BOOT is added
    assert_eq!(errno_of(&with_cap, "unshare_user"), EPERM, "{with_cap:?}");
    assert_eq!(errno_of(&with_cap, "mount"), EPERM, "{with_cap:?}");
}

#[test]
fn privileged_runs_unfiltered() {
    let m = syscalls(&["--privileged"]);
    assert_eq!(errno_of(&m, "mount"), ENOENT, "{m:?}");
    assert_eq!(errno_of(&m, "swapon"), ENOENT, "{m:?}");
    assert_eq!(errno_of(&m, "unshare_user"), 0, "{m:?}");
    assert_eq!(errno_of(&m, "reboot"), EINVAL, "{m:?}");
}

#[test]
fn busybox_unshare_and_mount_fail_with_eperm_by_default() {
    // unshare -U: the filter (control: unconfined succeeds)
    let o = run(&[], &["unshare", "-U", "true"]);
    assert!(
        !o.status.success(),
        "unshare -U succeeded in a default container"
    );
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    run_ok(
        &["--security-opt", "seccomp=unconfined"],
        &["unshare", "-U", "true"],
    );

    // mount on a missing target: EPERM (busybox: "permission denied") only
    // from the filter; unfiltered the kernel reports the missing target
    let o = run(&[], &["mount", "-t", "tmpfs", "none", "/nonexistent"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    let o = run(
        &["--security-opt", "seccomp=unconfined"],
        &["mount", "-t", "tmpfs", "none", "/nonexistent"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such file or directory"),
        "{}",
        stderr(&o)
    );

    // a real mount: refused by default, works with CAP_SYS_ADMIN (Docker's rule)
    let o = run(&[], &["mount", "-t", "tmpfs", "none", "/tmp"]);
    assert!(
        !o.status.success(),
        "mount succeeded in a default container"
    );
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    let out = run_ok(
        &["--cap-add", "SYS_ADMIN"],
        &[
            "sh",
            "-c",
            "mount -t tmpfs none /tmp && grep ' /tmp tmpfs' /proc/mounts",
        ],
    );
    assert!(out.contains("none /tmp tmpfs"), "{out}");
}

#[test]
fn fork_and_pipelines_work_under_the_default_filter() {
    // glibc/busybox fall back from clone3 (ENOSYS) to clone
    let out = run_ok(
        &[],
        &[
            "sh",
            "-c",
            "echo a b c | tr ' ' '\\n' | wc -l; (sleep 0; echo sub) & wait",
        ],
    );
    assert_eq!(out, "3\nsub\n");
}

// ---------------------------------------------------------------- capabilities, no_new_privs, seccomp mode

#[test]
fn default_capabilities_are_dockers() {
    assert_caps(&[], DOCKER_CAPS, DOCKER_CAPS, DOCKER_CAPS);
}

#[test]
fn cap_drop_all_leaves_none() {
    assert_caps(&["--cap-drop", "ALL"], NO_CAPS, NO_CAPS, NO_CAPS);
}

#[test]
fn cap_add_and_drop_change_the_mask() {
    assert_caps(
        &["--cap-add", "SYS_ADMIN"],
        DOCKER_CAPS_SYS_ADMIN,
        DOCKER_CAPS_SYS_ADMIN,
        DOCKER_CAPS_SYS_ADMIN,
    );
    let nbs = "0000000000000400";
    assert_caps(
        &["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
        nbs,
        nbs,
        nbs,
    );
    let less = "00000000a80425da"; // without CHOWN (0) and KILL (5), names case-insensitive
    assert_caps(
        &["--cap-drop", "chown", "--cap-drop", "kill"],
        less,
        less,
        less,
    );
}

#[test]
fn user_1000_has_no_capabilities() {
    let s = status(&["--user", "1000:1000"]);
    assert_eq!(field(&s, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(field(&s, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(field(&s, "CapPrm"), NO_CAPS);
    assert_eq!(field(&s, "CapEff"), NO_CAPS);
    assert_eq!(field(&s, "CapAmb"), NO_CAPS);
    assert_eq!(field(&s, "CapBnd"), DOCKER_CAPS);
    assert_eq!(run_ok(&["--user", "1000:1000"], &["id", "-u"]), "1000\n");
    // and uid 1000 really lacks them: root-owned, mode 0700 /root is closed
    let o = run(&["--user", "1000:1000"], &["ls", "/root"]);
    assert!(!o.status.success(), "uid 1000 listed /root: {}", stdout(&o));
    run_ok(&[], &["ls", "/root"]);
}

#[test]
fn no_new_privileges_is_off_by_default_and_on_when_asked() {
    let s = status(&[]);
    assert_eq!(field(&s, "NoNewPrivs"), "0");
    for opt in [
        "no-new-privileges",
        "no-new-privileges=true",
        "no-new-privileges:true",
    ] {
        let s = status(&["--security-opt", opt]);
        assert_eq!(field(&s, "NoNewPrivs"), "1", "{opt}");
        assert_eq!(field(&s, "Seccomp"), "2", "{opt}");
    }
    let s = status(&["--security-opt", "no-new-privileges=false"]);
    assert_eq!(field(&s, "NoNewPrivs"), "0");
}

#[test]
fn seccomp_mode_is_filter_by_default_and_off_when_unconfined_or_privileged() {
    let s = status(&[]);
    assert_eq!(field(&s, "Seccomp"), "2");
    assert_eq!(field(&s, "Seccomp_filters"), "1");
    for flags in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"][..],
    ] {
        let s = status(flags);
        assert_eq!(field(&s, "Seccomp"), "0", "{flags:?}");
        assert_eq!(field(&s, "Seccomp_filters"), "0", "{flags:?}");
    }
}

// ---------------------------------------------------------------- masked and read-only paths

#[test]
fn masked_proc_files_are_dev_null() {
    let out = run_ok(
        &[],
        &[
            "stat",
            "-c",
            "%n %F %t:%T",
            "/proc/interrupts",
            "/proc/keys",
            "/proc/timer_list",
        ],
    );
    assert_eq!(
        out,
        "/proc/interrupts character special file 1:3\n\
         /proc/keys character special file 1:3\n\
         /proc/timer_list character special file 1:3\n"
    );
    assert_eq!(
        run_ok(&[], &["sh", "-c", "wc -c < /proc/interrupts"]).trim(),
        "0"
    );
    // control: unmasked, /proc/interrupts has the CPU header
    for flags in [
        &["--privileged"][..],
        &["--security-opt", "systempaths=unconfined"][..],
    ] {
        let out = run_ok(flags, &["head", "-n", "1", "/proc/interrupts"]);
        assert!(out.contains("CPU0"), "{flags:?}: {out}");
    }
}

#[test]
fn masked_dirs_are_empty_and_read_only() {
    assert_eq!(
        run_ok(&[], &["ls", "-A", "/proc/acpi", "/sys/firmware"]),
        "/proc/acpi:\n\n/sys/firmware:\n"
    );
    let o = run(&[], &["touch", "/proc/acpi/x"]);
    assert!(!o.status.success(), "wrote into the masked /proc/acpi");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // control: the host's /sys/firmware is not empty
    let out = run_ok(&["--privileged"], &["ls", "/sys/firmware"]);
    assert!(out.lines().any(|l| l == "acpi"), "{out}");
}

#[test]
fn proc_sys_and_friends_are_read_only() {
    let o = run(&[], &["sh", "-c", "echo x > /proc/sys/kernel/domainname"]);
    assert!(!o.status.success(), "wrote /proc/sys/kernel/domainname");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    let mounts = run_ok(&[], &["cat", "/proc/mounts"]);
    for p in ["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"] {
        let l = mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(p))
            .unwrap_or_else(|| panic!("{p} is not a mount point:\n{mounts}"));
        let opts = l.split(' ').nth(3).unwrap_or("");
        assert!(
            l.starts_with("proc ") && opts.split(',').any(|o| o == "ro"),
            "{l}"
        );
    }
    let acpi = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/proc/acpi"))
        .expect("/proc/acpi mount");
    assert!(
        acpi.starts_with("tmpfs ")
            && acpi
                .split(' ')
                .nth(3)
                .unwrap_or("")
                .split(',')
                .any(|o| o == "ro"),
        "{acpi}"
    );
    // (no write control: EROFS, not the EPERM a missing CAP_SYS_ADMIN gives,
    // already proves the read-only mount, and a write that succeeded could
    // reach the host if the uts namespace were missing)
}

// ---------------------------------------------------------------- read-only rootfs, tmpfs

#[test]
fn read_only_root_refuses_writes_and_tmpfs_accepts_them() {
    // control: the ordinary root is writable
    run_ok(&[], &["touch", "/x"]);
    let o = run(&["--read-only"], &["touch", "/x"]);
    assert!(!o.status.success(), "wrote / with --read-only");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--read-only"], &["touch", "/tmp/x"]);
    assert!(
        !o.status.success(),
        "wrote /tmp with --read-only and no --tmpfs"
    );
    let out = run_ok(
        &["--read-only", "--tmpfs", "/tmp"],
        &[
            "sh",
            "-c",
            "touch /tmp/x && echo ok; touch /x 2>&1 || echo ro",
        ],
    );
    assert!(
        out.starts_with("ok\n") && out.contains("Read-only file system") && out.ends_with("ro\n"),
        "{out}"
    );
}

// ---------------------------------------------------------------- custom seccomp profile

#[test]
fn custom_profile_blocks_what_it_names_and_replaces_the_default() {
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    let p = dir.path().join("no-mkdir.json");
    std::fs::write(
        &p,
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", p.display());
    let o = run(&["--security-opt", &opt], &["mkdir", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // control: the default profile lets mkdir through
    run_ok(&[], &["mkdir", "/tmp/x"]);
    // the custom profile replaced the default one: unshare is allowed now
    let s = status(&["--security-opt", &opt]);
    assert_eq!(field(&s, "Seccomp"), "2");
    run_ok(&["--security-opt", &opt], &["unshare", "-U", "true"]);
}

// ---------------------------------------------------------------- bad input

/// Create a container with bad flags: exit 125, one line naming the problem,
/// and no container under that name.
fn assert_refused(flags: &[&str], want: &str) {
    let n = Name::new("secbad");
    let mut args = vec!["run", "--name", n.as_str()];
    args.extend_from_slice(flags);
    args.extend(["busybox", "true"]);
    let o = berth(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{flags:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{flags:?}: not one line: {err}"
    );
    assert!(err.contains(want), "{flags:?}: want {want:?} in {err:?}");
    let all = ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !all.lines().any(|l| l == n.as_str()),
        "{flags:?} left a container: {all}"
    );
    assert!(
        !berth(&["inspect", n.as_str()]).status.success(),
        "{flags:?}: inspect finds the container"
    );
}

#[test]
fn unknown_capability_is_refused() {
    assert_refused(&["--cap-add", "FOO"], r#"unknown capability: "CAP_FOO""#);
    assert_refused(&["--cap-drop", "FOO"], r#"unknown capability: "CAP_FOO""#);
}

#[test]
fn unknown_security_opt_is_refused() {
    assert_refused(
        &["--security-opt", "bogus"],
        r#"invalid --security-opt "bogus""#,
    );
    assert_refused(
        &["--security-opt", "no-new-privileges=maybe"],
        r#"invalid --security-opt "no-new-privileges=maybe""#,
    );
    assert_refused(
        &["--security-opt", "apparmor=docker-default"],
        "no AppArmor",
    );
}

#[test]
fn invalid_seccomp_profiles_are_refused_naming_the_field() {
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    let allow = r#"{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}"#;
    let cases = [
        (
            "name.json",
            format!(r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{allow},{allow},{allow},{{"names":["mkdir","foo"],"action":"SCMP_ACT_ERRNO"}}]}}"#),
            r#"syscalls[3].names[1]: unknown syscall "foo""#,
        ),
        (
            "op.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_ALMOST"}]}]}"#.to_string(),
            r#"syscalls[0].args[0].op: unknown operator "SCMP_CMP_ALMOST""#,
        ),
        (
            "arch.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_Z80"],"syscalls":[]}"#.to_string(),
            r#"architectures[1]: unknown architecture "SCMP_ARCH_Z80""#,
        ),
        ("junk.json", "not json".to_string(), "junk.json"),
    ];
    for (file, body, want) in cases {
        let p = dir.path().join(file);
        std::fs::write(&p, body).unwrap();
        assert_refused(
            &["--security-opt", &format!("seccomp={}", p.display())],
            want,
        );
        // the message names the profile file
        assert_refused(
            &["--security-opt", &format!("seccomp={}", p.display())],
            &p.display().to_string(),
        );
    }
    let missing = dir.path().join("missing.json");
    assert_refused(
        &["--security-opt", &format!("seccomp={}", missing.display())],
        &missing.display().to_string(),
    );
}

// ---------------------------------------------------------------- malicious images

const SECRET: &str = "canary secret\n";
const EVIL_PASSWD: &str = "evil:x:4242:4242::/:/bin/sh\n";

/// A fresh host directory with two files whose access times are set far in
/// the past: under relatime the first read moves the atime, so `untouched`
/// notices reads as well as writes, new entries and mounts.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new() -> Canary {
        let dir = PathBuf::from(format!("/tmp/{}", unique("berth-canary")));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("file"), SECRET).unwrap();
        std::fs::write(dir.join("passwd"), EVIL_PASSWD).unwrap();
        let o = Command::new("touch")
            .args(["-a", "-d", "2000-01-01T00:00:00Z"])
            .arg(dir.join("file"))
            .arg(dir.join("passwd"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "touch -a: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Canary { dir }
    }

    fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// Names, sizes, inodes and times of every entry (never reads contents,
    /// which would move the atimes). The directory's own atime is left out:
    /// listing it here moves it.
    fn snapshot(&self) -> Vec<String> {
        let d = std::fs::symlink_metadata(&self.dir).expect("canary dir exists");
        let mut v = vec![format!(
            ". ino={} mtime={}.{} ctime={}.{}",
            d.ino(),
            d.mtime(),
            d.mtime_nsec(),
            d.ctime(),
            d.ctime_nsec()
        )];
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let m = std::fs::symlink_metadata(self.dir.join(&n)).unwrap();
            v.push(format!(
                "{} ino={} size={} atime={}.{} mtime={}.{} ctime={}.{}",
                n.to_string_lossy(),
                m.ino(),
                m.size(),
                m.atime(),
                m.atime_nsec(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            ));
        }
        v
    }

    /// Nothing was read, written, created or mounted in the canary since `before`.
    fn assert_untouched(&self, before: &[String], what: &str) {
        assert!(
            mounts_under(&self.dir).is_empty(),
            "{what}: host mounts on the canary: {:?}",
            mounts_under(&self.dir)
        );
        assert_eq!(
            self.snapshot(),
            before,
            "{what}: the host canary {} changed",
            self.path()
        );
        assert_eq!(self.read("file"), SECRET, "{what}");
        assert_eq!(self.read("passwd"), EVIL_PASSWD, "{what}");
        assert_eq!(
            self.snapshot(),
            before,
            "{what}: reading the canary with O_NOATIME moved an atime"
        );
    }

    /// A canary file's content without moving its atime (O_NOATIME: we own it).
    fn read(&self, name: &str) -> String {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(self.dir.join(name))
            .unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        // A leaked mount here would make remove_dir_all delete through it.
        for m in mounts_under(&self.dir).iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        if mounts_under(&self.dir).is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn busybox_binary() -> PathBuf {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("a static busybox on the host (apt: busybox-static or busybox)")
}

/// An image from a tarball made with `tar`: busybox as /bin/busybox and
/// /bin/sh, a /tmp, an /etc unless `links` replaces it, and the given
/// symlinks (path inside the rootfs → target, taken verbatim). Returns its ref.
fn evil_image(links: &[(&str, String)]) -> String {
    let stage = tempfile::tempdir_in(scratch()).unwrap();
    let r = stage.path().join("rootfs");
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::fs::create_dir_all(r.join("tmp")).unwrap();
    std::fs::copy(busybox_binary(), r.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
    if !links.iter().any(|(p, _)| *p == "etc") {
        std::fs::create_dir_all(r.join("etc")).unwrap();
    }
    for (p, target) in links {
        let at = r.join(p);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &at).unwrap();
    }
    let tar = stage.path().join("rootfs.tar");
    let o = Command::new("tar")
        .arg("-C")
        .arg(&r)
        .arg("--numeric-owner")
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar (apt: tar)");
    assert!(
        o.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reference = format!("{}:1", unique("evil"));
    let tar_s = tar.display().to_string();
    ok(&["import", "--change", r#"CMD ["sh"]"#, &tar_s, &reference]);
    reference
}

/// `berth run --rm <flags> <image> sh -c <script>`; the container must either
/// run (exit 0) or be refused with one clear line (125). Returns its stdout
/// when it ran.
fn run_confined(image: &str, flags: &[&str], script: &str) -> Option<String> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend([image, "sh", "-c", script]);
    let o = berth(&args);
    match o.status.code() {
        Some(0) => Some(stdout(&o)),
        Some(125) => {
            let err = stderr(&o);
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{flags:?}: refused without one clear line: {err}"
            );
            None
        }
        c => panic!(
            "{flags:?} {script:?}: neither ran nor was refused ({c:?}): {}{}",
            stdout(&o),
            stderr(&o)
        ),
    }
}

#[test]
fn canary_notices_reads_writes_and_new_entries() {
    // the check below is what every malicious-image test relies on: prove it can fail
    let c = Canary::new();
    let before = c.snapshot();
    assert_eq!(c.snapshot(), before, "snapshot is not stable");
    c.assert_untouched(&before, "the canary's own checks");
    c.assert_untouched(&before, "the canary's own checks, twice");
    let o = Command::new("cat")
        .arg(c.dir.join("file"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), SECRET);
    assert_ne!(
        c.snapshot(),
        before,
        "a read of the canary went unnoticed (atime)"
    );

    let c = Canary::new();
    let before = c.snapshot();
    std::fs::write(c.dir.join("new"), "x").unwrap();
    assert_ne!(c.snapshot(), before, "a new entry went unnoticed");

    let c = Canary::new();
    let before = c.snapshot();
    std::fs::OpenOptions::new()
        .append(true)
        .open(c.dir.join("passwd"))
        .unwrap();
    assert_eq!(
        c.snapshot(),
        before,
        "opening for write without writing changes nothing"
    );
    std::fs::write(c.dir.join("passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
    assert_ne!(c.snapshot(), before, "a rewrite went unnoticed");
}

#[test]
fn image_with_etc_symlinked_to_a_host_dir_stays_inside() {
    let c = Canary::new();
    let img = evil_image(&[("etc", c.path())]);
    let before = c.snapshot();
    // the engine writes /etc/hosts, /etc/hostname, /etc/resolv.conf and the
    // container writes through /etc: all of it must land in the rootfs
    let out = run_confined(
        &img,
        &[],
        "cat /etc/hosts /etc/passwd 2>&1; echo pwned > /etc/file; echo pwned > /etc/new; ls /etc",
    );
    if let Some(out) = out {
        assert!(
            !out.contains("canary secret") && !out.contains("evil:x"),
            "the container read the host canary: {out}"
        );
    }
    c.assert_untouched(&before, "/etc -> canary");
    // --user resolves names in the rootfs's /etc/passwd only, never the host's canary
    let o = berth(&["run", "--rm", "--user", "evil", &img, "id", "-u"]);
    assert!(
        !o.status.success(),
        "--user evil resolved through the host canary: {}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("4242"), "{}", stdout(&o));
    assert!(stderr(&o).contains("evil"), "{}", stderr(&o));
    c.assert_untouched(&before, "/etc -> canary, --user evil");
}

#[test]
fn image_with_etc_symlinked_to_host_root_stays_inside() {
    let img = evil_image(&[("etc", "/".to_string())]);
    let host_files = [
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/etc/passwd",
    ];
    let meta = |p: &str| {
        std::fs::symlink_metadata(p)
            .map(|m| {
                (
                    m.ino(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                )
            })
            .ok()
    };
    let before: Vec<_> = host_files.iter().map(|p| meta(p)).collect();
    let pwned = unique("berth-pwned");
    let host_new = ["/hosts", "/hostname", "/resolv.conf"].map(|p| (p, Path::new(p).exists()));
    let script =
        format!("echo pwned > /etc/{pwned}; cat /etc/hosts >/dev/null; ls /etc >/dev/null");
    let _ = run_confined(&img, &[], &script);
    assert!(
        !Path::new("/").join(&pwned).exists(),
        "the container wrote /{pwned} on the host"
    );
    let after: Vec<_> = host_files.iter().map(|p| meta(p)).collect();
    assert_eq!(
        after, before,
        "host files under /etc changed: {host_files:?}"
    );
    for (p, existed) in host_new {
        assert_eq!(
            Path::new(p).exists(),
            existed,
            "the engine created {p} on the host"
        );
    }
}

#[test]
fn image_with_etc_files_symlinked_to_host_files_stays_inside() {
    let c = Canary::new();
    let f = format!("{}/file", c.path());
    let pw = format!("{}/passwd", c.path());
    let img = evil_image(&[
        ("etc/hosts", f.clone()),
        ("etc/hostname", f.clone()),
        ("etc/resolv.conf", f),
        ("etc/passwd", pw.clone()),
        ("etc/group", pw),
    ]);
    let before = c.snapshot();
    if let Some(out) = run_confined(
        &img,
        &[],
        "cat /etc/hosts /etc/resolv.conf /etc/hostname /etc/passwd 2>&1; echo pwned > /etc/hosts",
    ) {
        assert!(
            !out.contains("canary secret") && !out.contains("evil:x"),
            "the container read the host canary: {out}"
        );
    }
    c.assert_untouched(&before, "/etc/* -> canary files");
    let o = berth(&["run", "--rm", "--user", "evil", &img, "id", "-u"]);
    assert!(
        !o.status.success(),
        "--user evil resolved through the host canary: {}",
        stdout(&o)
    );
    c.assert_untouched(&before, "/etc/passwd -> canary, --user evil");
}

#[test]
fn volume_destination_symlinked_to_a_host_dir_stays_inside() {
    let c = Canary::new();
    let rel = format!("../../../../../../../../..{}", c.path());
    let img = evil_image(&[("data", c.path()), ("rel", rel)]);
    let src = tempfile::tempdir_in(scratch()).unwrap();
    let s = src.path().display().to_string();
    let before = c.snapshot();
    for (i, dst) in ["/data", "/rel"].iter().enumerate() {
        let v = format!("{s}:{dst}");
        let m = format!("type=bind,src={s},dst={dst}");
        for flags in [vec!["-v", v.as_str()], vec!["--mount", m.as_str()]] {
            let marker = format!("w{i}-{}", flags[0].trim_start_matches('-'));
            if let Some(out) =
                run_confined(&img, &flags, &format!("ls {dst}; echo x > {dst}/{marker}"))
            {
                assert!(
                    !out.contains("passwd") && !out.contains("file"),
                    "{flags:?}: the container listed the host canary: {out}"
                );
                // confined: the bind mount landed where the container looks, the write in the source
                assert!(
                    src.path().join(&marker).exists(),
                    "{flags:?}: the write went elsewhere"
                );
            }
            c.assert_untouched(&before, &format!("{flags:?}"));
        }
        // a tmpfs on the symlink: ran or refused, nothing may reach the host
        let _ = run_confined(&img, &["--tmpfs", dst], &format!("echo x > {dst}/t"));
        c.assert_untouched(&before, &format!("--tmpfs {dst}"));
    }
}

#[test]
fn named_volume_copy_up_does_not_follow_a_symlink_out() {
    let c = Canary::new();
    let img = evil_image(&[("data", c.path())]);
    let vol = unique("secvol");
    let before = c.snapshot();
    let v = format!("{vol}:/data");
    let _ = run_confined(&img, &["-v", &v], "ls /data; echo x > /data/mine");
    c.assert_untouched(&before, "-v named:/data -> canary");
    let vol_dir = env().root.join("volumes").join(&vol).join("_data");
    if vol_dir.exists() {
        let names: Vec<_> = std::fs::read_dir(&vol_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n == "file" || n == "passwd"),
            "the volume copied the host canary: {names:?}"
        );
    }
    // control: copy-up does copy an image directory (busybox's /bin)
    let ctl = unique("secvol");
    let v = format!("{ctl}:/bin");
    run_ok(&["-v", &v], &["true"]);
    let ctl_dir = env().root.join("volumes").join(&ctl).join("_data");
    assert!(
        ctl_dir.join("busybox").exists(),
        "copy-up control: {} has no busybox",
        ctl_dir.display()
    );
    let _ = berth(&["volume", "rm", &vol, &ctl]);
}

#[test]
fn workdir_symlinked_out_stays_inside() {
    let c = Canary::new();
    let rel = format!("../../../../../../../../..{}", c.path());
    let img = evil_image(&[("wd", format!("{}/newdir", c.path())), ("rel", rel)]);
    let before = c.snapshot();
    for wd in ["/wd", "/wd/sub", "/rel", "/rel/sub"] {
        if let Some(out) = run_confined(&img, &["-w", wd], "pwd; ls; echo x > written") {
            assert!(
                !out.contains("passwd"),
                "-w {wd}: the container listed the host canary: {out}"
            );
        }
        c.assert_untouched(&before, &format!("-w {wd}"));
    }
    assert!(!c.dir.join("newdir").exists());
}

#[test]
fn special_dirs_symlinked_out_stay_inside() {
    // /proc, /dev and /sys get mounts and device nodes from the runtime
    for d in ["proc", "dev", "sys"] {
        let c = Canary::new();
        let img = evil_image(&[(d, c.path())]);
        let before = c.snapshot();
        let _ = run_confined(
            &img,
            &[],
            &format!("ls /{d} >/dev/null; echo x > /{d}/written 2>/dev/null; true"),
        );
        c.assert_untouched(&before, &format!("/{d} -> canary"));
    }
}

#[test]
fn dotdot_in_a_volume_destination_stays_inside() {
    let c = Canary::new();
    let src = tempfile::tempdir_in(scratch()).unwrap();
    std::fs::write(src.path().join("from-src"), "s").unwrap();
    let s = src.path().display().to_string();
    let before = c.snapshot();
    for dst in [
        format!("/../../../../..{}", c.path()),
        format!("/tmp/../../../..{}/sub", c.path()),
    ] {
        let v = format!("{s}:{dst}");
        let o = berth(&[
            "run",
            "--rm",
            "-v",
            &v,
            "busybox",
            "sh",
            "-c",
            &format!("ls {dst}; echo x > {dst}/written"),
        ]);
        match o.status.code() {
            // accepted: the destination is taken inside the rootfs (Docker cleans it)
            Some(0) => {
                assert!(stdout(&o).contains("from-src"), "-v {v}: {}", stdout(&o));
                assert!(
                    src.path().join("written").exists(),
                    "-v {v}: the write went elsewhere"
                );
                std::fs::remove_file(src.path().join("written")).unwrap();
            }
            Some(125) => assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o)),
            code => panic!("-v {v}: {code:?}: {}{}", stdout(&o), stderr(&o)),
        }
        c.assert_untouched(&before, &format!("-v {v}"));
    }
}

// ---------------------------------------------------------------- CVE-2019-5736

/// A copy of berth-runtime that a test hands to the engine with `--runtime`, so
/// a successful attack damages only the copy; remembers its bytes.
struct RuntimeCopy {
    path: PathBuf,
    original: Vec<u8>,
}

impl RuntimeCopy {
    fn new() -> RuntimeCopy {
        let src = bin().with_file_name("berth-runtime");
        let dir = scratch().join(unique("rt"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("berth-runtime");
        std::fs::copy(&src, &path).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        let original = std::fs::read(&path).unwrap();
        RuntimeCopy { path, original }
    }

    fn arg(&self) -> String {
        self.path.display().to_string()
    }

    fn assert_unchanged(&self, logs: &str) {
        let now = std::fs::read(&self.path).unwrap_or_default();
        assert!(
            now == self.original,
            "the runtime binary {} was modified ({} bytes, was {}); container output:\n{logs}",
            self.path.display(),
            now.len(),
            self.original.len()
        );
    }
}

impl Drop for RuntimeCopy {
    fn drop(&mut self) {
        // the engine's read-only bind of this copy (security/runtime_exe.rs)
        if let Ok(md) = std::fs::metadata(&self.path) {
            for m in mounts_under(&env().run.join("exe")) {
                let same = std::fs::metadata(&m)
                    .map(|t| (t.dev(), t.ino()) == (md.dev(), md.ino()))
                    .unwrap_or(false);
                if same {
                    let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        let _ = std::fs::remove_dir_all(self.path.parent().expect("copy has a dir"));
    }
}

/// A named volume removed on drop.
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = berth(&["volume", "rm", "-f", &self.0]);
    }
}

/// An image that lets the runtime binary run inside the container, as in the
/// CVE: the host's dynamic loader and the runtime's libraries at their paths,
/// busybox with its applets, and `/usr/local/bin/evil -> /proc/self/exe`, so
/// executing `evil` makes the runtime execute itself in the container.
fn exe_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let stage = tempfile::tempdir_in(scratch()).unwrap();
        let r = stage.path().join("rootfs");
        for d in ["bin", "tmp", "etc", "shared", "usr/local/bin"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::copy(busybox_binary(), r.join("bin/busybox")).unwrap();
        for a in [
            "sh", "sleep", "readlink", "mkfifo", "touch", "true", "cat", "test",
        ] {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).unwrap();
        }
        let ldd = Command::new("ldd")
            .arg(bin().with_file_name("berth-runtime"))
            .output()
            .expect("ldd (apt: libc-bin)");
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) else {
                continue;
            };
            let at = r.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::copy(path, &at).unwrap_or_else(|e| panic!("copy {path}: {e}"));
        }
        std::os::unix::fs::symlink("/proc/self/exe", r.join("usr/local/bin/evil")).unwrap();
        let tar = stage.path().join("rootfs.tar");
        let o = Command::new("tar")
            .arg("-C")
            .arg(&r)
            .args(["--numeric-owner", "-cf"])
            .arg(&tar)
            .arg(".")
            .output()
            .expect("tar (apt: tar)");
        assert!(
            o.status.success(),
            "tar: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let reference = format!("{}:1", unique("exe"));
        ok(&[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            &tar.display().to_string(),
            &reference,
        ]);
        reference
    })
}

/// The container's main process: waits for any process whose executable is not
/// busybox (the runtime running inside the container, blocked opening its
/// `--log` fifo for writing), holds its /proc/PID/exe open, lets it go on (reads
/// the fifo), then tries to rewrite the binary through the held fd once it no
/// longer runs (no ETXTBSY) — the CVE's steps.
const HOLD_AND_REWRITE: &str = r#"
mkfifo /shared/fifo
n=0
while [ ! -e /shared/done ]; do
  n=$((n+1)); [ $n -gt 20000 ] && break
  for d in /proc/[0-9]*; do
    [ "$d/exe" -ef /bin/busybox ] && continue
    {
      echo "opened ${d#/proc/} $(readlink /proc/self/fd/3)"
      cat /shared/fifo >/dev/null &
      i=0
      while [ $i -lt 60 ]; do
        if err=$( (echo pwned > /proc/self/fd/3) 2>&1); then echo WROTE; break; fi
        i=$((i+1)); sleep 0.05
      done
      echo "last-error: $err"
      touch /shared/done
    } 2>/dev/null 3<"$d/exe"
  done
done
echo scan-done
"#;

fn wait_logs(name: &str, needle: &str) -> String {
    let mut logs = String::new();
    wait_for(
        &format!("{needle:?} in the logs of {name}"),
        std::time::Duration::from_secs(40),
        || {
            logs = stdout(&berth(&["logs", name]));
            logs.contains(needle)
        },
    );
    logs
}

fn assert_attack_failed(rt: &RuntimeCopy, logs: &str) {
    // the test proves something only if the attack got hold of the binary
    let opened: Vec<&str> = logs.lines().filter(|l| l.starts_with("opened ")).collect();
    assert!(
        !opened.is_empty(),
        "the runtime never ran inside the container:\n{logs}"
    );
    assert!(
        !logs.contains("WROTE"),
        "the container rewrote the runtime binary:\n{logs}"
    );
    assert!(
        logs.contains("Read-only file system"),
        "the write failed for another reason than the read-only mount:\n{logs}"
    );
    assert!(
        !opened.iter().any(|l| l.ends_with(&rt.arg())),
        "the runtime ran from its writable host path:\n{logs}"
    );
    rt.assert_unchanged(logs);
}

fn fifo_ready(vol: &str) {
    let json = ok(&["volume", "inspect", vol]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    let fifo = Path::new(v[0]["Mountpoint"].as_str().expect("Mountpoint")).join("fifo");
    wait_for(
        "the attacker's fifo",
        std::time::Duration::from_secs(20),
        || fifo.exists(),
    );
}

/// `berth exec` of an image path that is a symlink to /proc/self/exe runs the
/// runtime's own binary inside the container (blocked on a fifo the container
/// controls); the container holds it and rewrites it after it exits.
#[test]
fn exec_of_proc_self_exe_cannot_rewrite_the_runtime() {
    let rt = RuntimeCopy::new();
    let vol = Volume(unique("cve"));
    let a = Name::new("cve-exec");
    let shared = format!("{}:/shared", vol.0);
    ok(&[
        "run",
        "-d",
        "--name",
        a.as_str(),
        "--network",
        "none",
        "--runtime",
        &rt.arg(),
        "-v",
        &shared,
        exe_image(),
        "sh",
        "-c",
        HOLD_AND_REWRITE,
    ]);
    fifo_ready(&vol.0);
    // the runtime, run as `evil` inside the container: fails (no such container),
    // and blocks opening its log (the fifo) until the attacker lets it go
    let o = berth(&[
        "exec",
        a.as_str(),
        "/usr/local/bin/evil",
        "--log",
        "/shared/fifo",
        "state",
        "nonexistent",
    ]);
    let logs = wait_logs(a.as_str(), "scan-done");
    assert!(
        !o.status.success(),
        "the runtime run inside the container should have failed:\n{}",
        stdout(&o)
    );
    assert_attack_failed(&rt, &logs);
}

/// The same through `berth run`: the entrypoint is the symlink, so the
/// container's init execs the runtime binary; a second container sharing its
/// pid namespace holds and rewrites it.
#[test]
fn entrypoint_of_proc_self_exe_cannot_rewrite_the_runtime() {
    let rt = RuntimeCopy::new();
    let vol = Volume(unique("cve"));
    let a = Name::new("cve-watch");
    let b = Name::new("cve-entry");
    let shared = format!("{}:/shared", vol.0);
    ok(&[
        "run",
        "-d",
        "--name",
        a.as_str(),
        "--network",
        "none",
        "--runtime",
        &rt.arg(),
        "-v",
        &shared,
        exe_image(),
        "sh",
        "-c",
        HOLD_AND_REWRITE,
    ]);
    fifo_ready(&vol.0);
    let pid = format!("container:{}", a.as_str());
    let o = berth(&[
        "run",
        "-d",
        "--name",
        b.as_str(),
        "--network",
        "none",
        "--pid",
        &pid,
        "--runtime",
        &rt.arg(),
        "-v",
        &shared,
        "--entrypoint",
        "/usr/local/bin/evil",
        exe_image(),
        "--log",
        "/shared/fifo",
        "state",
        "nonexistent",
    ]);
    assert!(o.status.success(), "run: {}{}", stdout(&o), stderr(&o));
    let logs = wait_logs(a.as_str(), "scan-done");
    assert_attack_failed(&rt, &logs);
}

/// While the host runs `berth exec` 15 times, the container scans /proc for the
/// runtime's processes joining it (before their execve) and tries to open and
/// rewrite their executables: they are non-dumpable, so it opens none.
#[test]
fn runtime_processes_joining_a_container_cannot_be_opened() {
    let rt = RuntimeCopy::new();
    let a = Name::new("cve-scan");
    let scanner = r#"
n=0
while [ ! -e /tmp/done ]; do
  for d in /proc/[0-9]*; do
    [ "$d/exe" -ef /bin/busybox ] && continue
    { [ /proc/self/fd/3 -ef /bin/busybox ] || {
        echo "opened ${d#/proc/} $(readlink /proc/self/fd/3)"
        if echo pwned 2>/dev/null > /proc/self/fd/3; then echo "WROTE ${d#/proc/}"; fi
      }
    } 2>/dev/null 3<"$d/exe"
  done
  n=$((n+1))
done
echo scans=$n
"#;
    ok(&[
        "run",
        "-d",
        "--name",
        a.as_str(),
        "--network",
        "none",
        "--runtime",
        &rt.arg(),
        exe_image(),
        "sh",
        "-c",
        scanner,
    ]);
    for i in 0..15 {
        let o = berth(&["exec", a.as_str(), "true"]);
        assert!(o.status.success(), "exec {i}: {}", stderr(&o));
    }
    ok(&["exec", a.as_str(), "touch", "/tmp/done"]);
    let logs = wait_logs(a.as_str(), "scans=");
    assert!(
        !logs.contains("opened "),
        "the container opened runtime executables:\n{logs}"
    );
    assert!(
        !logs.contains("WROTE"),
        "the container wrote a runtime executable:\n{logs}"
    );
    rt.assert_unchanged(&logs);
}
