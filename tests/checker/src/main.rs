//! `berth-checker`: runs as a container's process and checks, from inside, that the
//! container is what its config.json asked for.
//!
//! The conformance harness (crates/berth-runtime/tests/conformance.rs) derives a list of
//! expectations from the config.json it generated and writes it to [`EXPECT_PATH`] inside
//! the rootfs; it runs the same bundle under berth-runtime and under runc, and runc
//! passing shows that an expectation (and this checker) is right.
//!
//! Output: one line per check, `ok <what>` or `not ok <what>: expected X, got Y`, then a
//! summary line `# berth-checker: N checks, M failed`. Exit status 0 only if every check
//! passed (1 if one failed, 2 if the expectations could not be read). The harness
//! requires the summary line, so a runtime that never ran the checker cannot pass.
//!
//! Expectations file: one directive per line, `#` starts a comment line, words are
//! separated by single spaces; a directive documented with `REST` takes the rest of the
//! line verbatim (it may contain spaces or be empty). Paths may not contain spaces.
//!
//! ```text
//! pid N                        getpid() == N
//! procs N...                   the numeric entries of /proc are exactly these pids
//! argc N                       number of arguments (argv[0] included)
//! arg I REST                   argv[I] == REST
//! hostname REST                /proc/sys/kernel/hostname (the UTS namespace's)
//! domainname REST              /proc/sys/kernel/domainname
//! user UID GID                 real, effective, saved and fs uid and gid
//! groups G...                  supplementary groups, as a set (none: `groups`)
//! umask OCTAL                  Umask: of /proc/self/status
//! env REST                     REST is KEY=VALUE and is in the environment
//! env-only                     no variable but those of the `env` lines
//! cwd PATH                     getcwd() == PATH (fails if cwd is outside the root) and
//!                              "." is the same inode as PATH
//! fds N...                     the open file descriptors are exactly these (leak check,
//!                              CVE-2024-21626); taken before the checker opens anything
//! rlimit RLIMIT_X SOFT HARD    from /proc/self/limits; a value is a number or `unlimited`
//! mount PATH TOKEN...          the topmost mount at PATH (from /proc/self/mountinfo):
//!     type=T[|T2...]             its filesystem type is one of these
//!     flag=F / noflag=F          per-mount option F (ro, rw, nosuid, nodev, noexec,
//!                                relatime, noatime, nodiratime) is present / absent
//!     opt=K=V                    K=V is among the superblock options
//!     size=BYTES                 tmpfs size (superblock option size=Nk)
//!     mode=OCTAL                 permission bits of the mount's root directory
//!     propagation=P              private, shared, slave, slave+shared or unbindable
//!     ino=N                      the mount's root directory has inode N (a bind source)
//! nomount PATH                 nothing is mounted at PATH
//! readonly-fs PATH             creating a file in directory PATH fails with EROFS
//! masked PATH                  PATH is absent, /dev/null (1:3) or an empty read-only dir
//! readonly PATH                PATH is absent or a read-only mount
//! dev PATH TYPE MAJ MIN MODE UID GID
//!                              TYPE c, b or p; MODE octal permission bits; `-` skips a field
//! open-rw PATH                 PATH opens for reading and writing (for a device node:
//!                              the devices cgroup allows it)
//! symlink PATH TARGET          PATH is a symlink to TARGET
//! exists PATH / absent PATH    PATH (not followed) exists / does not
//! ns TYPE new|same INODE       /proc/self/ns/TYPE differs from / equals the host's INODE
//! netdevs NAME...              the interfaces in /proc/net/dev are exactly these
//! loopback up|down             a UDP datagram to 127.0.0.1 comes back / cannot be sent
//! sysctl KEY REST              /proc/sys/KEY (dots become slashes) reads REST
//! oom_score_adj N              /proc/self/oom_score_adj
//! no_new_privs 0|1             NoNewPrivs: of /proc/self/status
//! cap SET HEX                  SET is bounding, effective, permitted, inheritable or
//!                              ambient; compared with CapBnd/CapEff/CapPrm/CapInh/CapAmb
//! idmap uid|gid I:O:N[,I:O:N...]
//!                              /proc/self/{uid,gid}_map holds exactly these ranges
//! ```

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::net::UdpSocket;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Where the harness puts the expectations, inside the container's rootfs.
const EXPECT_PATH: &str = "/.checker/expect";

/// Capability names by number (linux/capability.h), for readable differences.
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// `/proc/self/limits` row names (fs/proc/base.c `lnames`) by OCI rlimit type.
const RLIMIT_ROWS: [(&str, &str); 16] = [
    ("RLIMIT_CPU", "Max cpu time"),
    ("RLIMIT_FSIZE", "Max file size"),
    ("RLIMIT_DATA", "Max data size"),
    ("RLIMIT_STACK", "Max stack size"),
    ("RLIMIT_CORE", "Max core file size"),
    ("RLIMIT_RSS", "Max resident set"),
    ("RLIMIT_NPROC", "Max processes"),
    ("RLIMIT_NOFILE", "Max open files"),
    ("RLIMIT_MEMLOCK", "Max locked memory"),
    ("RLIMIT_AS", "Max address space"),
    ("RLIMIT_LOCKS", "Max file locks"),
    ("RLIMIT_SIGPENDING", "Max pending signals"),
    ("RLIMIT_MSGQUEUE", "Max msgqueue size"),
    ("RLIMIT_NICE", "Max nice priority"),
    ("RLIMIT_RTPRIO", "Max realtime priority"),
    ("RLIMIT_RTTIME", "Max realtime timeout"),
];

fn main() -> ExitCode {
    // Before anything else opens a file: what the runtime left open is what we are
    // looking for.
    let open_fds = list_open_fds();

    let mut report = Report::default();
    let text = match fs::read_to_string(EXPECT_PATH) {
        Ok(text) => text,
        Err(err) => {
            report.fail(&format!("read {EXPECT_PATH}"), "readable", &err.to_string());
            return report.finish(2);
        }
    };
    let mut env_keys: Option<BTreeSet<OsString>> = None;
    let mut env_only = false;
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (directive, rest) = line.split_once(' ').unwrap_or((line, ""));
        let words: Vec<&str> = rest.split(' ').filter(|w| !w.is_empty()).collect();
        match directive {
            "env" => {
                if let Some((key, _)) = rest.split_once('=') {
                    env_keys
                        .get_or_insert_with(BTreeSet::new)
                        .insert(OsString::from(key));
                }
                check_env(&mut report, rest);
            }
            "env-only" => env_only = true,
            "fds" => check_fds(&mut report, &open_fds, &words),
            _ => check_directive(&mut report, directive, rest, &words).unwrap_or_else(|why| {
                report.fail(&format!("line {}: {line}", index + 1), "valid", &why)
            }),
        }
    }
    if env_only {
        check_env_only(&mut report, env_keys.unwrap_or_default());
    }
    report.finish(1)
}

#[derive(Default)]
struct Report {
    checks: usize,
    failed: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        self.checks += 1;
        println!("ok {what}");
    }

    fn fail(&mut self, what: &str, expected: &str, got: &str) {
        self.checks += 1;
        self.failed += 1;
        println!("not ok {what}: expected {expected}, got {got}");
    }

    /// Records a comparison of two displayable values (`ok what: value` when equal).
    fn compare<T: PartialEq + std::fmt::Display>(&mut self, what: &str, expected: T, got: T) {
        if expected == got {
            self.ok(&format!("{what}: {expected}"));
        } else {
            self.fail(what, &expected.to_string(), &got.to_string());
        }
    }

    /// Records the result of a check that could not be made (an I/O error).
    fn compare_io<T: PartialEq + std::fmt::Display>(
        &mut self,
        what: &str,
        expected: T,
        got: io::Result<T>,
    ) {
        match got {
            Ok(got) => self.compare(what, expected, got),
            Err(err) => self.fail(what, &expected.to_string(), &format!("error: {err}")),
        }
    }

    fn finish(self, failure_status: u8) -> ExitCode {
        println!(
            "# berth-checker: {} checks, {} failed",
            self.checks, self.failed
        );
        let _ = io::stdout().flush();
        if self.failed == 0 && failure_status != 2 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(failure_status)
        }
    }
}

/// Runs one directive; an `Err` means the directive itself is malformed.
fn check_directive(
    report: &mut Report,
    directive: &str,
    rest: &str,
    words: &[&str],
) -> Result<(), String> {
    match (directive, words) {
        ("pid", [pid]) => report.compare("pid", parse::<u32>(pid)?, std::process::id()),
        ("procs", pids) => {
            let expected = pids
                .iter()
                .map(|p| parse::<u32>(p))
                .collect::<Result<_, _>>()?;
            report.compare_io("processes in /proc", Set(expected), list_procs().map(Set));
        }
        ("argc", [n]) => report.compare("argc", parse::<usize>(n)?, std::env::args_os().count()),
        ("arg", [index, ..]) => {
            let i = parse::<usize>(index)?;
            let value = rest.split_once(' ').map_or("", |(_, v)| v);
            let got = std::env::args_os()
                .nth(i)
                .map(|a| a.to_string_lossy().into_owned());
            report.compare(
                &format!("argv[{i}]"),
                quoted(Some(value)),
                quoted(got.as_deref()),
            );
        }
        ("hostname", _) => report.compare_io(
            "hostname",
            rest.to_string(),
            read_trimmed("/proc/sys/kernel/hostname"),
        ),
        ("domainname", _) => report.compare_io(
            "domainname",
            rest.to_string(),
            read_trimmed("/proc/sys/kernel/domainname"),
        ),
        ("user", [uid, gid]) => {
            let status = Status::read();
            for (name, field, want) in [("uid", "Uid", uid), ("gid", "Gid", gid)] {
                let want = parse::<u32>(want)?;
                // real, effective, saved set, filesystem
                let got = status
                    .field(field)
                    .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "));
                report.compare_io(name, format!("{want} {want} {want} {want}"), got);
            }
        }
        ("groups", gids) => {
            let expected = gids
                .iter()
                .map(|g| parse::<u32>(g))
                .collect::<Result<_, _>>()?;
            let got = Status::read().field("Groups").and_then(|v| {
                v.split_whitespace()
                    .map(|g| g.parse::<u32>().map_err(io::Error::other))
                    .collect::<io::Result<BTreeSet<u32>>>()
            });
            report.compare_io("supplementary groups", Set(expected), got.map(Set));
        }
        ("umask", [mask]) => {
            let want = parse_octal(mask)?;
            let got = Status::read()
                .field("Umask")
                .and_then(|v| u32::from_str_radix(&v, 8).map_err(io::Error::other));
            report.compare_io("umask", Octal(want), got.map(Octal));
        }
        ("cwd", [path]) => check_cwd(report, path),
        ("rlimit", [name, soft, hard]) => check_rlimit(report, name, soft, hard)?,
        ("mount", [path, tokens @ ..]) => check_mount(report, path, tokens)?,
        ("nomount", [path]) => {
            let what = format!("nothing mounted at {path}");
            match MountInfo::read().map(|m| m.find(path).map(|e| e.fstype.clone())) {
                Ok(None) => report.ok(&what),
                Ok(Some(fstype)) => report.fail(&what, "no mount", &format!("a {fstype} mount")),
                Err(err) => report.fail(&what, "no mount", &format!("error: {err}")),
            }
        }
        ("readonly-fs", [path]) => check_readonly_fs(report, path),
        ("masked", [path]) => check_masked(report, path),
        ("readonly", [path]) => check_readonly_path(report, path),
        ("dev", [path, kind, major, minor, mode, uid, gid]) => {
            check_device(report, path, [*kind, *major, *minor, *mode, *uid, *gid])?
        }
        ("open-rw", [path]) => {
            let opened = fs::OpenOptions::new().read(true).write(true).open(path);
            report.compare_io(
                &format!("open {path} read-write"),
                "opened",
                opened.map(|_| "opened"),
            )
        }
        ("symlink", [path, target]) => report.compare_io(
            &format!("symlink {path}"),
            target.to_string(),
            fs::read_link(path).map(|t| t.display().to_string()),
        ),
        ("exists", [path]) => report.compare(
            &format!("{path} exists"),
            true,
            fs::symlink_metadata(path).is_ok(),
        ),
        ("absent", [path]) => report.compare(
            &format!("{path} absent"),
            true,
            fs::symlink_metadata(path).is_err(),
        ),
        ("ns", [kind, relation @ ("new" | "same"), host]) => {
            let host = parse::<u64>(host)?;
            let what = format!("{kind} namespace {relation}");
            match fs::metadata(format!("/proc/self/ns/{kind}")) {
                Ok(meta) if (meta.ino() == host) == (*relation == "same") => {
                    report.ok(&format!("{what}: {}", meta.ino()))
                }
                Ok(meta) => report.fail(
                    &what,
                    &format!(
                        "{} host's {host}",
                        if *relation == "same" { "=" } else { "!=" }
                    ),
                    &meta.ino().to_string(),
                ),
                Err(err) => report.fail(&what, relation, &format!("error: {err}")),
            }
        }
        ("netdevs", names) => {
            let expected = names.iter().map(|n| n.to_string()).collect();
            report.compare_io("network interfaces", Set(expected), list_netdevs().map(Set));
        }
        ("loopback", [state @ ("up" | "down")]) => {
            report.compare("loopback", state.to_string(), loopback_state().to_string())
        }
        ("sysctl", [key, ..]) => {
            let value = rest.split_once(' ').map_or("", |(_, v)| v);
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            report.compare_io(
                &format!("sysctl {key}"),
                value.to_string(),
                read_trimmed(&path),
            );
        }
        ("oom_score_adj", [n]) => report.compare_io(
            "oom_score_adj",
            parse::<i32>(n)?,
            read_trimmed("/proc/self/oom_score_adj")
                .and_then(|v| v.parse::<i32>().map_err(io::Error::other)),
        ),
        ("no_new_privs", [flag @ ("0" | "1")]) => report.compare_io(
            "no_new_privs",
            flag.to_string(),
            Status::read().field("NoNewPrivs"),
        ),
        ("cap", [set, hex]) => {
            let field = match *set {
                "bounding" => "CapBnd",
                "effective" => "CapEff",
                "permitted" => "CapPrm",
                "inheritable" => "CapInh",
                "ambient" => "CapAmb",
                _ => return Err(format!("unknown capability set {set}")),
            };
            let want = parse_hex(hex)?;
            let got = Status::read()
                .field(field)
                .and_then(|v| parse_hex(&v).map_err(io::Error::other));
            report.compare_io(&format!("{set} capabilities"), Caps(want), got.map(Caps));
        }
        ("idmap", [kind @ ("uid" | "gid"), ranges]) => {
            let expected: BTreeSet<String> = ranges.split(',').map(|r| r.to_string()).collect();
            let got = fs::read_to_string(format!("/proc/self/{kind}_map")).map(|text| {
                text.lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(":"))
                    .collect::<BTreeSet<_>>()
            });
            report.compare_io(&format!("{kind}_map"), Set(expected), got.map(Set));
        }
        _ => return Err("unknown directive or wrong number of words".to_string()),
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(word: &str) -> Result<T, String> {
    word.parse().map_err(|_| format!("bad number {word:?}"))
}

fn parse_octal(word: &str) -> Result<u32, String> {
    u32::from_str_radix(word, 8).map_err(|_| format!("bad octal number {word:?}"))
}

fn parse_hex(word: &str) -> Result<u64, String> {
    u64::from_str_radix(word.trim_start_matches("0x"), 16)
        .map_err(|_| format!("bad hex number {word:?}"))
}

fn read_trimmed(path: &str) -> io::Result<String> {
    fs::read_to_string(path).map(|s| s.trim_end_matches('\n').to_string())
}

fn quoted(value: Option<&str>) -> String {
    value.map_or_else(|| "(none)".to_string(), |v| format!("{v:?}"))
}

/// A set shown as `{a, b}`.
#[derive(PartialEq)]
struct Set<T>(BTreeSet<T>);

impl<T: std::fmt::Display> std::fmt::Display for Set<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<String> = self.0.iter().map(|i| i.to_string()).collect();
        write!(f, "{{{}}}", items.join(", "))
    }
}

#[derive(PartialEq)]
struct Octal(u32);

impl std::fmt::Display for Octal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// A capability mask shown as hex and names.
#[derive(PartialEq)]
struct Caps(u64);

impl std::fmt::Display for Caps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = (0..64)
            .filter(|bit| self.0 & (1 << bit) != 0)
            .map(|bit| {
                CAP_NAMES
                    .get(bit)
                    .map_or_else(|| format!("cap{bit}"), |n| n.to_string())
            })
            .collect();
        write!(f, "{:#018x} {{{}}}", self.0, names.join(","))
    }
}

/// The `Name:\tvalue` lines of /proc/self/status.
struct Status(io::Result<String>);

impl Status {
    fn read() -> Status {
        Status(fs::read_to_string("/proc/self/status"))
    }

    fn field(&self, name: &str) -> io::Result<String> {
        let text = self
            .0
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        text.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key == name).then(|| value.trim().to_string())
            })
            .ok_or_else(|| io::Error::other(format!("no {name}: in /proc/self/status")))
    }
}

/// Open descriptors, listed without leaving the listing's own descriptor in the answer.
fn list_open_fds() -> io::Result<BTreeSet<u32>> {
    let listed: Vec<u32> = fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own descriptor is closed now: its link no longer resolves.
    Ok(listed
        .into_iter()
        .filter(|fd| fs::read_link(format!("/proc/self/fd/{fd}")).is_ok())
        .collect())
}

fn check_fds(report: &mut Report, open: &io::Result<BTreeSet<u32>>, words: &[&str]) {
    let expected: BTreeSet<u32> = words.iter().filter_map(|w| w.parse().ok()).collect();
    let what = "open file descriptors";
    match open {
        Ok(open) if *open == expected => report.ok(&format!("{what}: {}", Set(expected))),
        Ok(open) => {
            // Name what leaked: a host directory here is how CVE-2024-21626 starts.
            let got: Vec<String> = open
                .iter()
                .map(|fd| match fs::read_link(format!("/proc/self/fd/{fd}")) {
                    Ok(target) if !expected.contains(fd) => format!("{fd} -> {}", target.display()),
                    _ => fd.to_string(),
                })
                .collect();
            report.fail(
                what,
                &Set(expected).to_string(),
                &format!("{{{}}}", got.join(", ")),
            );
        }
        Err(err) => report.fail(what, &Set(expected).to_string(), &format!("error: {err}")),
    }
}

fn check_env(report: &mut Report, entry: &str) {
    let what = format!("env {entry}");
    let Some((key, value)) = entry.split_once('=') else {
        report.fail(&what, "KEY=VALUE", entry);
        return;
    };
    let got = std::env::var_os(key).map(|v| v.to_string_lossy().into_owned());
    report.compare(
        &format!("env {key}"),
        quoted(Some(value)),
        quoted(got.as_deref()),
    );
}

fn check_env_only(report: &mut Report, expected: BTreeSet<OsString>) {
    let extra: BTreeSet<String> = std::env::vars_os()
        .filter(|(key, _)| !expected.contains(key))
        .map(|(key, value)| {
            let mut entry = key.into_vec();
            entry.push(b'=');
            entry.extend(value.into_vec());
            String::from_utf8_lossy(&entry).into_owned()
        })
        .collect();
    if extra.is_empty() {
        report.ok("no other environment variables");
    } else {
        report.fail(
            "no other environment variables",
            "none",
            &Set(extra).to_string(),
        );
    }
}

fn check_cwd(report: &mut Report, path: &str) {
    // getcwd fails (ENOENT) when the cwd is not reachable from the root: a cwd left
    // outside the container's root is how CVE-2024-21626 escapes.
    report.compare_io(
        "cwd",
        path.to_string(),
        std::env::current_dir().map(|p| p.display().to_string()),
    );
    let same = fs::metadata(".").and_then(|here| {
        fs::metadata(path).map(|there| (here.dev(), here.ino()) == (there.dev(), there.ino()))
    });
    report.compare_io(&format!("cwd is the inode of {path}"), true, same);
}

fn check_rlimit(report: &mut Report, name: &str, soft: &str, hard: &str) -> Result<(), String> {
    let row = RLIMIT_ROWS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, row)| *row)
        .ok_or_else(|| format!("unknown rlimit {name}"))?;
    // Format "%-25s %-20s %-20s %-10s": the name column is 25 characters wide.
    let got = fs::read_to_string("/proc/self/limits").and_then(|text| {
        text.lines()
            .find(|line| line.get(..25).map(str::trim_end) == Some(row))
            .and_then(|line| {
                let mut values = line[25..].split_whitespace();
                Some(format!("{} {}", values.next()?, values.next()?))
            })
            .ok_or_else(|| io::Error::other(format!("no {row} row in /proc/self/limits")))
    });
    report.compare_io(
        &format!("rlimit {name} (soft hard)"),
        format!("{soft} {hard}"),
        got,
    );
    Ok(())
}

/// One line of /proc/self/mountinfo (proc(5)).
struct MountEntry {
    mount_point: String,
    options: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_options: Vec<String>,
}

impl MountEntry {
    fn propagation(&self) -> &'static str {
        let has = |prefix: &str| self.optional.iter().any(|f| f.starts_with(prefix));
        match (has("shared:"), has("master:"), has("unbindable")) {
            (_, _, true) => "unbindable",
            (true, true, _) => "slave+shared",
            (true, false, _) => "shared",
            (false, true, _) => "slave",
            (false, false, _) => "private",
        }
    }
}

struct MountInfo(Vec<MountEntry>);

impl MountInfo {
    fn read() -> io::Result<MountInfo> {
        let text = fs::read_to_string("/proc/self/mountinfo")?;
        let entries = text
            .lines()
            .filter_map(|line| {
                let (left, right) = line.split_once(" - ")?;
                let left: Vec<&str> = left.split(' ').collect();
                let right: Vec<&str> = right.split(' ').collect();
                Some(MountEntry {
                    mount_point: unescape(left.get(4)?),
                    options: left.get(5)?.split(',').map(String::from).collect(),
                    optional: left[6..].iter().map(|s| s.to_string()).collect(),
                    fstype: right.first()?.to_string(),
                    super_options: right.get(2)?.split(',').map(String::from).collect(),
                })
            })
            .collect();
        Ok(MountInfo(entries))
    }

    /// The topmost mount at `path`: mountinfo lists a mount after its parent.
    fn find(&self, path: &str) -> Option<&MountEntry> {
        self.0.iter().rev().find(|e| e.mount_point == path)
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_mount(report: &mut Report, path: &str, tokens: &[&str]) -> Result<(), String> {
    let info = match MountInfo::read() {
        Ok(info) => info,
        Err(err) => {
            report.fail(
                &format!("mount {path}"),
                "mountinfo",
                &format!("error: {err}"),
            );
            return Ok(());
        }
    };
    let Some(entry) = info.find(path) else {
        report.fail(&format!("mount {path}"), "a mount", "nothing mounted there");
        return Ok(());
    };
    report.ok(&format!("mount {path}"));
    for token in tokens {
        let (key, value) = token
            .split_once('=')
            .ok_or_else(|| format!("bad mount token {token:?}"))?;
        let what = format!("mount {path} {key} {value}");
        match key {
            "type" => {
                if value.split('|').any(|t| t == entry.fstype) {
                    report.ok(&what)
                } else {
                    report.fail(&what, value, &entry.fstype)
                }
            }
            "flag" | "noflag" => {
                let present = entry.options.iter().any(|o| o == value);
                if present == (key == "flag") {
                    report.ok(&what)
                } else {
                    let expected = if present { "absent" } else { "present" };
                    report.fail(&what, expected, &entry.options.join(","))
                }
            }
            "opt" => {
                if entry.super_options.iter().any(|o| o == value) {
                    report.ok(&what)
                } else {
                    report.fail(&what, value, &entry.super_options.join(","))
                }
            }
            "size" => {
                let want = parse::<u64>(value)?;
                let got = entry
                    .super_options
                    .iter()
                    .find_map(|o| o.strip_prefix("size="))
                    .and_then(parse_size);
                match got {
                    Some(got) => report.compare(&format!("mount {path} size"), want, got),
                    None => report.fail(&what, value, &entry.super_options.join(",")),
                }
            }
            "mode" => {
                let want = parse_octal(value)?;
                let got = fs::metadata(path).map(|m| Octal(m.mode() & 0o7777));
                report.compare_io(&format!("mount {path} mode"), Octal(want), got);
            }
            "propagation" => report.compare(
                &format!("mount {path} propagation"),
                value,
                entry.propagation(),
            ),
            "ino" => report.compare_io(
                &format!("mount {path} is the bind source (inode)"),
                parse::<u64>(value)?,
                fs::metadata(path).map(|m| m.ino()),
            ),
            _ => return Err(format!("unknown mount token {token:?}")),
        }
    }
    Ok(())
}

/// A size as the kernel shows it in mount options: a number with an optional k/m/g suffix.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        _ => return None,
    };
    Some(n << shift)
}

fn check_readonly_fs(report: &mut Report, dir: &str) {
    let probe = Path::new(dir).join(format!(".berth-checker-probe-{}", std::process::id()));
    let what = format!("{dir} is a read-only filesystem");
    match fs::File::create(&probe) {
        Err(err) if err.raw_os_error() == Some(30) => report.ok(&what), // EROFS
        Err(err) => report.fail(&what, "EROFS", &format!("error: {err}")),
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            report.fail(&what, "EROFS", "the file was created")
        }
    }
}

fn check_masked(report: &mut Report, path: &str) {
    let what = format!("{path} masked");
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(_) => return report.ok(&format!("{what}: absent")),
    };
    let ft = meta.file_type();
    if ft.is_char_device() {
        let (major, minor) = dev_numbers(meta.rdev());
        return report.compare(
            &what,
            "char 1:3".to_string(),
            format!("char {major}:{minor}"),
        );
    }
    if ft.is_dir() {
        let entries = fs::read_dir(path).map(|d| d.count()).unwrap_or(usize::MAX);
        let ro = MountInfo::read()
            .ok()
            .and_then(|m| m.find(path).map(|e| e.options.iter().any(|o| o == "ro")))
            .unwrap_or(false);
        if entries == 0 && ro {
            return report.ok(&what);
        }
        return report.fail(
            &what,
            "an empty read-only mount",
            &format!("a directory with {entries} entries, read-only mount: {ro}"),
        );
    }
    report.fail(
        &what,
        "/dev/null or an empty read-only dir",
        "an unmasked file",
    )
}

fn check_readonly_path(report: &mut Report, path: &str) {
    let what = format!("{path} read-only");
    if fs::symlink_metadata(path).is_err() {
        return report.ok(&format!("{what}: absent"));
    }
    match MountInfo::read().map(|m| m.find(path).map(|e| e.options.join(","))) {
        Ok(Some(options)) if options.split(',').any(|o| o == "ro") => report.ok(&what),
        Ok(Some(options)) => report.fail(&what, "a ro mount", &options),
        Ok(None) => report.fail(&what, "a ro mount", "no mount there"),
        Err(err) => report.fail(&what, "a ro mount", &format!("error: {err}")),
    }
}

/// glibc's `gnu_dev_major`/`gnu_dev_minor`.
fn dev_numbers(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

fn check_device(report: &mut Report, path: &str, fields: [&str; 6]) -> Result<(), String> {
    let [kind, major, minor, mode, uid, gid] = fields;
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            report.fail(
                &format!("device {path}"),
                "present",
                &format!("error: {err}"),
            );
            return Ok(());
        }
    };
    let ft = meta.file_type();
    let got_kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else if ft.is_fifo() {
        "p"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else {
        "file"
    };
    let (got_major, got_minor) = dev_numbers(meta.rdev());
    if kind != "-" {
        report.compare(
            &format!("device {path} type"),
            kind.to_string(),
            got_kind.to_string(),
        );
    }
    if major != "-" || minor != "-" {
        report.compare(
            &format!("device {path} major:minor"),
            format!("{major}:{minor}"),
            format!(
                "{}:{}",
                if major == "-" {
                    "-".to_string()
                } else {
                    got_major.to_string()
                },
                if minor == "-" {
                    "-".to_string()
                } else {
                    got_minor.to_string()
                }
            ),
        );
    }
    if mode != "-" {
        let want = parse_octal(mode)?;
        report.compare(
            &format!("device {path} mode"),
            Octal(want),
            Octal(meta.mode() & 0o7777),
        );
    }
    if uid != "-" {
        report.compare(
            &format!("device {path} uid"),
            parse::<u32>(uid)?,
            meta.uid(),
        );
    }
    if gid != "-" {
        report.compare(
            &format!("device {path} gid"),
            parse::<u32>(gid)?,
            meta.gid(),
        );
    }
    Ok(())
}

fn list_procs() -> io::Result<BTreeSet<u32>> {
    Ok(fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

fn list_netdevs() -> io::Result<BTreeSet<String>> {
    // Two header lines, then "  name: counters..." per interface of our netns.
    Ok(fs::read_to_string("/proc/net/dev")?
        .lines()
        .skip(2)
        .filter_map(|line| Some(line.split_once(':')?.0.trim().to_string()))
        .collect())
}

/// Loopback is up when a datagram to 127.0.0.1 comes back: a down `lo` has no address.
fn loopback_state() -> &'static str {
    let round_trip = || -> io::Result<bool> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        socket.send_to(b"berth", socket.local_addr()?)?;
        let mut buf = [0u8; 8];
        Ok(socket.recv(&mut buf)? == 5)
    };
    match round_trip() {
        Ok(true) => "up",
        _ => "down",
    }
}
