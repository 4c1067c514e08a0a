//! seccomp: Docker's default seccomp profile as data, and the parser for
//! Docker-format profiles (`--security-opt seccomp=profile.json`).
//!
//! The default profile is moby's `profiles/seccomp/default.json` (v0.2.3, as
//! vendored by moby at the time of writing) restricted to x86_64 hosts: an
//! allow-list ([`RULES`]) with every other syscall failing with EPERM. Some
//! rules apply only when the container holds a capability (Docker checks the
//! *bounding* set): with CAP_SYS_ADMIN a container may mount, unshare, setns
//! and clone with namespace flags; without it, `clone` is allowed only with no
//! CLONE_NEW* flag (a masked-equal argument filter) and `clone3` fails with
//! ENOSYS so that libc falls back to the filterable `clone`.
//!
//! Invariants:
//! - every syscall name in [`RULES`] resolves with this host's libseccomp
//!   (tested). Names Docker allows that this libseccomp (2.5.4) cannot name
//!   are listed in [`NEWER_SYSCALLS`]: they stay blocked here (EPERM), which
//!   is stricter than Docker, never looser.
//! - [`default_profile`] and [`from_docker_json`] of Docker's own default.json
//!   produce the same filter (tested against a copy in `testdata/`).
//! - a user profile is validated completely before anything is created: an
//!   unknown syscall, action, operator, architecture or capability is an
//!   error naming the JSON field (`syscalls[3].names[1]: unknown syscall "foo"`).
//!
//! [`BLOCKED`] documents, with reasons, the syscalls the default profile
//! denies; it is checked against [`RULES`] by the tests, and the lead's
//! real-kernel tests take their examples from it.

use libseccomp::ScmpSyscall;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use super::capabilities;

/// errno of the default action: EPERM, Docker's `defaultErrnoRet: 1`.
pub const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// x86_64 plus the two ABIs an x86_64 kernel also executes (Docker's archMap
/// entry for SCMP_ARCH_X86_64). A syscall made through any other ABI is
/// killed by the runtime (bad-arch action).
pub const ARCHITECTURES: [Arch; 3] = [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];

/// When a rule is part of the profile, given the container's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only when the capability is in the container's (bounding) set.
    HasCap(&'static str),
    /// Only when the capability is NOT in the container's set.
    LacksCap(&'static str),
}

/// One argument comparison; for `ScmpCmpMaskedEq`, `value` is the mask and
/// `value_two` the expected result (OCI and Docker order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    pub index: usize,
    pub value: u64,
    pub value_two: u64,
    pub op: LinuxSeccompOperator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub names: &'static [&'static str],
    pub action: LinuxSeccompAction,
    pub errno_ret: Option<u32>,
    /// All must hold (libseccomp ANDs the comparisons of one rule).
    pub args: &'static [Arg],
    pub when: When,
}

const fn allow(names: &'static [&'static str]) -> Rule {
    Rule {
        names,
        action: LinuxSeccompAction::ScmpActAllow,
        errno_ret: None,
        args: &[],
        when: When::Always,
    }
}

const fn allow_with(cap: &'static str, names: &'static [&'static str]) -> Rule {
    Rule {
        when: When::HasCap(cap),
        ..allow(names)
    }
}

const fn allow_arg(name: &'static [&'static str], args: &'static [Arg]) -> Rule {
    Rule {
        args,
        ..allow(name)
    }
}

const fn arg0(op: LinuxSeccompOperator, value: u64) -> Arg {
    Arg {
        index: 0,
        value,
        value_two: 0,
        op,
    }
}

use LinuxSeccompOperator::{ScmpCmpEq as EQ, ScmpCmpGt as GT, ScmpCmpLt as LT, ScmpCmpMaskedEq};

/// Address families socket(2) refuses: AF_ALG (38, the kernel crypto API, a
/// steady source of kernel bugs) and AF_VSOCK (40, talks to the hypervisor).
/// The three rules below allow everything below 38, 39 (AF_NFC) and above 40.
const AF_ALG: u64 = libc::AF_ALG as u64;
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;

/// Every CLONE_NEW* flag: NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
/// | NEWCGROUP = 0x7e020000.
pub const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// The default profile, in Docker's order. Everything not matched here fails
/// with EPERM.
#[rustfmt::skip] // policy data: one commented entry per line, grouped by topic
pub static RULES: &[Rule] = &[
    // --- Unconditional allow-list (Docker's first rule, grouped by topic). ---
    // Sockets and networking; the container's netns bounds what they reach.
    // socketcall is the i386 multiplexer for all of these (and for socket(2),
    // so the AF_ALG/AF_VSOCK filter below does not cover x86 32-bit binaries:
    // the same gap Docker has).
    allow(&[
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
        "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send",
        "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
    ]),
    // File descriptors and plain I/O on them.
    allow(&[
        "close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl", "read",
        "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev",
        "pwritev2", "lseek", "_llseek", "pipe", "pipe2", "flock", "sendfile", "sendfile64",
        "splice", "tee", "vmsplice", "copy_file_range", "readahead", "fadvise64",
        "fadvise64_64", "fallocate", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
        "cachestat", // kernel 6.5: page cache statistics of a file the caller has open
    ]),
    // Paths, files and directories inside the container's mount namespace;
    // ownership and permission changes are still checked against capabilities,
    // device creation against the device cgroup.
    allow(&[
        "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "chmod", "fchmod",
        "fchmodat", "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown",
        "lchown32", "creat", "open", "openat", "openat2", "link", "linkat", "symlink",
        "symlinkat", "readlink", "readlinkat", "rename", "renameat", "renameat2", "unlink",
        "unlinkat", "mkdir", "mkdirat", "rmdir", "mknod", "mknodat", "truncate", "truncate64",
        "ftruncate", "ftruncate64", "umask", "utime", "utimes", "utimensat", "utimensat_time64",
        "futimesat", "getdents", "getdents64",
        // Only encodes a handle; opening one (open_by_handle_at) is the dangerous half.
        "name_to_handle_at",
    ]),
    // stat and statfs in all their ABI variants.
    allow(&[
        "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat",
        "statx", "statfs", "statfs64", "fstatfs", "fstatfs64",
    ]),
    // Extended attributes (trusted.* and security.* still need capabilities).
    allow(&[
        "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
        "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    ]),
    // Readiness and event notification.
    allow(&[
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "poll", "ppoll",
        "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "signalfd",
        "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
        "timerfd_settime", "timerfd_settime64",
        // Useless without an fd from fanotify_init, which needs CAP_SYS_ADMIN.
        "fanotify_mark",
    ]),
    // Linux AIO (not io_uring, which stays blocked).
    allow(&[
        "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
        "io_pgetevents_time64",
    ]),
    // Memory management of the caller's own address space.
    allow(&[
        "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "mlock",
        "mlock2", "mlockall", "munlock", "munlockall", "msync", "remap_file_pages",
        "membarrier", "memfd_create", "memfd_secret", "pkey_alloc", "pkey_free",
        "pkey_mprotect",
        "map_shadow_stack", // kernel 6.6: user shadow stacks (CET)
    ]),
    // Processes and threads: creation (clone is filtered below), exec, exit,
    // waiting, futexes, thread-local storage.
    allow(&[
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
        "waitpid", "getpid", "getppid", "gettid", "set_tid_address", "set_robust_list",
        "get_robust_list", "rseq", "restart_syscall", "get_thread_area", "set_thread_area",
        "futex", "futex_time64", "futex_waitv",
        "futex_wait", "futex_wake", "futex_requeue", // kernel 6.7: futex2
        "pidfd_open", "pidfd_send_signal", "process_mrelease",
    ]),
    // Self-restriction: these can only take privileges away.
    allow(&[
        "prctl", "capget", "capset", "seccomp", "landlock_add_rule", "landlock_create_ruleset",
        "landlock_restrict_self",
    ]),
    // Credentials; changing them is gated by CAP_SETUID/CAP_SETGID.
    allow(&[
        "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid",
        "getegid32", "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups",
        "getgroups32", "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32",
        "setregid", "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32",
        "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32",
    ]),
    // Sessions and process groups (job control).
    allow(&["getpgid", "getpgrp", "getsid", "setpgid", "setsid"]),
    // Signals; the pid namespace limits whom they reach.
    allow(&[
        "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
        "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn",
        "pause",
    ]),
    // Reading clocks, sleeping, timers. adjtimex/clock_adjtime only read the
    // clock without CAP_SYS_TIME (the kernel checks it for changes).
    allow(&[
        "alarm", "getitimer", "setitimer", "clock_getres", "clock_getres_time64",
        "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
        "nanosleep", "gettimeofday", "time", "times", "timer_create", "timer_delete",
        "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
        "timer_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64",
    ]),
    // Scheduling, priorities and resource limits; raising them needs
    // CAP_SYS_NICE / CAP_SYS_RESOURCE, which the default set lacks.
    allow(&[
        "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
        "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
        "sched_setscheduler", "sched_yield", "getpriority", "setpriority", "ioprio_get",
        "ioprio_set", "getrlimit", "setrlimit", "prlimit64", "ugetrlimit", "getrusage",
        "getcpu",
    ]),
    // SysV IPC and POSIX message queues, scoped by the IPC namespace.
    allow(&[
        "ipc", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop",
        "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
        "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
    ]),
    // System information that is namespaced or harmless.
    allow(&["uname", "sysinfo", "getrandom"]),
    // --- Conditional and argument-filtered rules. ---
    // Since kernel 4.8 seccomp re-checks a tracee's syscalls after ptrace
    // changes them, so ptrace can no longer bypass the filter (Docker:
    // minKernel 4.8; berth needs far newer kernels anyway). Other tracing is
    // limited by CAP_SYS_PTRACE and the pid namespace.
    allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
    // socket(2) for every address family but AF_ALG and AF_VSOCK.
    allow_arg(&["socket"], &[arg0(LT, AF_ALG)]),
    allow_arg(&["socket"], &[arg0(EQ, AF_ALG + 1)]),
    allow_arg(&["socket"], &[arg0(GT, AF_VSOCK)]),
    // personality(2) only for the execution domains programs actually use;
    // others (e.g. ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC) weaken the process's
    // own hardening and old kernels had bugs in them.
    allow_arg(&["personality"], &[arg0(EQ, 0x0)]), // PER_LINUX
    allow_arg(&["personality"], &[arg0(EQ, 0x0008)]), // UNAME26 (old software checking "2.6")
    allow_arg(&["personality"], &[arg0(EQ, 0x20000)]), // PER_LINUX32 (setarch i386)
    allow_arg(&["personality"], &[arg0(EQ, 0x20008)]), // PER_LINUX32 | UNAME26
    allow_arg(&["personality"], &[arg0(EQ, 0xffffffff)]), // query the current persona
    // x86-only: set FS/GS bases (every amd64 libc needs it for TLS).
    allow(&["arch_prctl"]),
    // x86-only: local descriptor table, used by Wine and some JITs.
    allow(&["modify_ldt"]),
    // Opening files by handle bypasses the mount namespace: the "shocker"
    // escape read host files this way. Only when asked for explicitly.
    allow_with("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    // CAP_SYS_ADMIN containers are trusted with mounts and namespaces.
    allow_with(
        "CAP_SYS_ADMIN",
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
            "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
            "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
            "setns", "syslog", "umount", "umount2", "unshare",
        ],
    ),
    // Without CAP_SYS_ADMIN, clone(2) only when no CLONE_NEW* flag is set:
    // new namespaces (user namespaces above all) expose kernel attack surface.
    Rule {
        when: When::LacksCap("CAP_SYS_ADMIN"),
        ..allow_arg(
            &["clone"],
            &[Arg { index: 0, value: CLONE_NAMESPACE_FLAGS, value_two: 0, op: ScmpCmpMaskedEq }],
        )
    },
    // clone3 passes its flags in memory, which seccomp cannot inspect: answer
    // ENOSYS so libc falls back to clone(2), which is filtered above.
    Rule {
        action: LinuxSeccompAction::ScmpActErrno,
        errno_ret: Some(libc::ENOSYS as u32),
        when: When::LacksCap("CAP_SYS_ADMIN"),
        ..allow(&["clone3"])
    },
    // reboot(2): would reboot the host (or kill the container's pid-ns init).
    allow_with("CAP_SYS_BOOT", &["reboot"]),
    // chroot(2): CAP_SYS_CHROOT is in the default set, so this is normally on.
    allow_with("CAP_SYS_CHROOT", &["chroot"]),
    // Kernel modules: code running in the host kernel.
    allow_with("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    // Process accounting is host-wide.
    allow_with("CAP_SYS_PACCT", &["acct"]),
    // Inspecting and manipulating other processes.
    allow_with(
        "CAP_SYS_PTRACE",
        &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
    ),
    // Raw port I/O to host hardware.
    allow_with("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    // The clock is not namespaced: this sets the host's time.
    allow_with("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    // Hang up the controlling terminal.
    allow_with("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    // NUMA memory policy.
    allow_with(
        "CAP_SYS_NICE",
        &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    ),
    // The kernel log leaks kernel addresses and host activity.
    allow_with("CAP_SYSLOG", &["syslog"]),
    // BPF programs run in the kernel.
    allow_with("CAP_BPF", &["bpf"]),
    // Performance counters leak information about the host.
    allow_with("CAP_PERFMON", &["perf_event_open"]),
];

/// Syscalls Docker's profile allows that this host's libseccomp cannot name;
/// the default profile omits them (they fail with EPERM) and a user profile
/// may list them (they are dropped, as the runtime would skip them).
#[rustfmt::skip] // policy data: one commented entry per line, grouped by topic
pub static NEWER_SYSCALLS: &[&str] = &[
    "getxattrat", "setxattrat", "listxattrat", "removexattrat", // kernel 6.13, libseccomp 2.6
    "listmount", "statmount",                                   // kernel 6.8, libseccomp 2.6
    "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", // kernel 6.8, libseccomp 2.6
    "mseal",                                                    // kernel 6.10, libseccomp 2.6
    "uretprobe",                                                // kernel 6.11, libseccomp 2.6
    "riscv_hwprobe",                                            // riscv only, libseccomp 2.6
    "open_tree_attr",                                           // kernel 6.15
    "file_getattr", "file_setattr",                             // kernel 6.17
];

/// A syscall the default profile denies (with Docker's default capabilities),
/// why, and the capability that lifts the block, if any.
#[derive(Debug, Clone, Copy)]
pub struct Blocked {
    pub name: &'static str,
    pub why: &'static str,
    pub unless_cap: Option<&'static str>,
}

const fn blocked(
    name: &'static str,
    why: &'static str,
    unless_cap: Option<&'static str>,
) -> Blocked {
    Blocked {
        name,
        why,
        unless_cap,
    }
}

const SYS_ADMIN: Option<&str> = Some("CAP_SYS_ADMIN");

/// The notable syscalls denied by default (Docker's "significant syscalls
/// blocked by the default profile", updated for the current profile).
#[rustfmt::skip] // policy data: one commented entry per line, grouped by topic
pub static BLOCKED: &[Blocked] = &[
    blocked("acct", "process accounting is host-wide", Some("CAP_SYS_PACCT")),
    blocked("add_key", "the kernel keyring is not namespaced", None),
    blocked("keyctl", "the kernel keyring is not namespaced", None),
    blocked("request_key", "the kernel keyring is not namespaced", None),
    blocked("bpf", "loads programs into the kernel; reads kernel memory", SYS_ADMIN),
    blocked("clock_settime", "the clock is not namespaced: sets host time", Some("CAP_SYS_TIME")),
    blocked("settimeofday", "the clock is not namespaced: sets host time", Some("CAP_SYS_TIME")),
    blocked("stime", "the clock is not namespaced: sets host time", Some("CAP_SYS_TIME")),
    blocked("clone", "only without CLONE_NEW* flags (no new namespaces)", SYS_ADMIN),
    blocked("clone3", "ENOSYS: its flags cannot be filtered; libc falls back to clone", SYS_ADMIN),
    blocked("create_module", "obsolete kernel module interface", None),
    blocked("get_kernel_syms", "obsolete; leaks kernel symbols", None),
    blocked("query_module", "obsolete kernel module interface", None),
    blocked("init_module", "loads code into the host kernel", Some("CAP_SYS_MODULE")),
    blocked("finit_module", "loads code into the host kernel", Some("CAP_SYS_MODULE")),
    blocked("delete_module", "unloads host kernel modules", Some("CAP_SYS_MODULE")),
    blocked("get_mempolicy", "NUMA policy; leaks host memory layout", Some("CAP_SYS_NICE")),
    blocked("mbind", "NUMA policy can starve host memory nodes", Some("CAP_SYS_NICE")),
    blocked("set_mempolicy", "NUMA policy can starve host memory nodes", Some("CAP_SYS_NICE")),
    blocked("migrate_pages", "moves other processes' memory between NUMA nodes", None),
    blocked("move_pages", "moves other processes' memory between NUMA nodes", None),
    blocked("ioperm", "raw port I/O to host hardware", Some("CAP_SYS_RAWIO")),
    blocked("iopl", "raw port I/O to host hardware", Some("CAP_SYS_RAWIO")),
    blocked("io_uring_setup", "io_uring: large kernel attack surface, I/O unseen by seccomp", None),
    blocked("io_uring_enter", "io_uring: large kernel attack surface, I/O unseen by seccomp", None),
    blocked("io_uring_register", "io_uring: large kernel attack surface, I/O unseen by seccomp", None),
    blocked("kcmp", "inspects kernel objects of other processes", Some("CAP_SYS_PTRACE")),
    blocked("pidfd_getfd", "steals file descriptors from other processes", Some("CAP_SYS_PTRACE")),
    blocked("process_madvise", "changes memory of other processes", Some("CAP_SYS_PTRACE")),
    blocked("kexec_file_load", "loads a new kernel to boot the host into", None),
    blocked("kexec_load", "loads a new kernel to boot the host into", None),
    blocked("lookup_dcookie", "tracing interface; leaks host paths", SYS_ADMIN),
    blocked("mount", "mounts can expose or shadow host filesystems", SYS_ADMIN),
    blocked("umount", "unmounting can uncover what a mount hid", SYS_ADMIN),
    blocked("umount2", "unmounting can uncover what a mount hid (masked paths)", SYS_ADMIN),
    blocked("fsopen", "new mount API: same power as mount", SYS_ADMIN),
    blocked("fsmount", "new mount API: same power as mount", SYS_ADMIN),
    blocked("move_mount", "new mount API: same power as mount", SYS_ADMIN),
    blocked("open_tree", "new mount API: clones mount trees", SYS_ADMIN),
    blocked("mount_setattr", "new mount API: could make read-only mounts writable", SYS_ADMIN),
    blocked("nfsservctl", "removed NFS daemon interface", None),
    blocked("open_by_handle_at", "opens host files by handle (the 'shocker' escape)", Some("CAP_DAC_READ_SEARCH")),
    blocked("perf_event_open", "performance counters leak host information", SYS_ADMIN),
    blocked("personality", "only the common execution domains (argument filter)", None),
    blocked("pivot_root", "changes the root mount; only the runtime needs it", None),
    blocked("quotactl", "filesystem quotas are host-wide", SYS_ADMIN),
    blocked("reboot", "would reboot the host", Some("CAP_SYS_BOOT")),
    blocked("setns", "joins other namespaces", SYS_ADMIN),
    blocked("unshare", "creates namespaces (user namespaces expose kernel surface)", SYS_ADMIN),
    blocked("socket", "not for AF_ALG or AF_VSOCK (argument filter)", None),
    blocked("swapon", "swap is host-wide", None),
    blocked("swapoff", "swap is host-wide", None),
    blocked("sysfs", "obsolete filesystem-type query", None),
    blocked("_sysctl", "obsolete; sysctls are written through /proc/sys", None),
    blocked("syslog", "the kernel log leaks kernel addresses", SYS_ADMIN),
    blocked("uselib", "obsolete; a source of old exploits", None),
    blocked("userfaultfd", "lets exploits stall the kernel inside race windows", None),
    blocked("ustat", "obsolete", None),
    blocked("vhangup", "hangs up the terminal", Some("CAP_SYS_TTY_CONFIG")),
    blocked("vm86", "virtual-8086 mode; old kernel bugs", None),
    blocked("vm86old", "virtual-8086 mode; old kernel bugs", None),
];

fn has(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c == cap)
}

impl Rule {
    /// Is this rule part of the profile for a container with `caps`?
    pub fn applies(&self, caps: &[String]) -> bool {
        match self.when {
            When::Always => true,
            When::HasCap(c) => has(caps, c),
            When::LacksCap(c) => !has(caps, c),
        }
    }

    fn to_oci(self) -> LinuxSyscall {
        let mut s = LinuxSyscall::default();
        s.set_names(self.names.iter().map(|n| (*n).to_string()).collect());
        s.set_action(self.action);
        s.set_errno_ret(self.errno_ret);
        if !self.args.is_empty() {
            s.set_args(Some(
                self.args
                    .iter()
                    .map(|a| oci_arg(a.index, a.value, a.value_two, a.op))
                    .collect(),
            ));
        }
        s
    }
}

fn oci_arg(index: usize, value: u64, value_two: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    // 0 is omitted, as Docker's JSON does; the runtime reads a missing valueTwo as 0.
    let b = if value_two != 0 {
        b.value_two(value_two)
    } else {
        b
    };
    b.build().expect("every field of a seccomp argument is set")
}

/// Docker's default profile for a container whose capability set (bounding)
/// is `caps` (canonical `CAP_*` names, as [`capabilities::resolve`] returns).
pub fn default_profile(caps: &[String]) -> LinuxSeccomp {
    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActErrno);
    s.set_default_errno_ret(Some(DEFAULT_ERRNO));
    s.set_architectures(Some(ARCHITECTURES.to_vec()));
    s.set_syscalls(Some(
        RULES
            .iter()
            .filter(|r| r.applies(caps))
            .map(|r| r.to_oci())
            .collect(),
    ));
    s
}

// ---------------------------------------------------------------------------
// Docker-format profiles.

#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    #[error("invalid json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

fn field_err(field: impl Into<String>, message: impl Into<String>) -> SeccompProfileError {
    SeccompProfileError::Field {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: Option<String>,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<DockerArch>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    syscalls: Option<Vec<DockerSyscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArch {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    /// Deprecated single-name form, still accepted by Docker.
    name: Option<String>,
    names: Option<Vec<String>>,
    action: Option<String>,
    errno_ret: Option<u32>,
    args: Option<Vec<DockerArg>>,
    includes: Option<DockerFilter>,
    excludes: Option<DockerFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerArg {
    index: u64,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerFilter {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// Architecture names used in `includes.arches`/`excludes.arches` (Docker's
/// "native" names, libseccomp's spelling).
const FILTER_ARCHES: &[&str] = &[
    "x86",
    "amd64",
    "x32",
    "arm",
    "arm64",
    "mips",
    "mipsel",
    "mips64",
    "mips64n32",
    "mipsel64",
    "mipsel64n32",
    "mips3l64n32",
    "ppc",
    "ppc64",
    "ppc64le",
    "s390",
    "s390x",
    "riscv64",
    "loong64",
    "loongarch64",
    "parisc",
    "parisc64",
    "m68k",
    "sh",
    "sheb",
];

/// Facts about the host a Docker profile is resolved against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// libseccomp architecture of the host (selects the archMap entry).
    pub arch: Arch,
    /// The same architecture in `includes.arches` spelling ("amd64").
    pub filter_arch: &'static str,
    /// (version, major revision) of the running kernel, e.g. (6, 18).
    pub kernel: (u64, u64),
}

impl Host {
    /// This machine. Only x86_64 is supported by berth's default profile;
    /// the parser also knows aarch64.
    pub fn current() -> Host {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| parse_kernel(r.trim()))
            .unwrap_or((0, 0));
        let (arch, filter_arch) = if cfg!(target_arch = "aarch64") {
            (Arch::ScmpArchAarch64, "arm64")
        } else {
            (Arch::ScmpArchX86_64, "amd64")
        };
        Host {
            arch,
            filter_arch,
            kernel,
        }
    }
}

/// "6.18.44-fc-v657" → (6, 18); minor revisions and suffixes are ignored.
fn parse_kernel(release: &str) -> Option<(u64, u64)> {
    let mut it = release.split(['.', '-']);
    let v = it.next()?.parse().ok()?;
    let major = it.next()?.parse().ok()?;
    Some((v, major))
}

/// Does this host's libseccomp know `name` (on any architecture)?
pub fn is_known_syscall(name: &str) -> bool {
    ScmpSyscall::from_name(name).is_ok()
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// Parse a Docker-format seccomp profile (`--security-opt seccomp=file.json`)
/// for a container with capabilities `caps`, on this host.
pub fn from_docker_json(json: &str, caps: &[String]) -> Result<LinuxSeccomp, SeccompProfileError> {
    from_docker_json_on(json, caps, &Host::current())
}

/// [`from_docker_json`] against the given host facts (pure).
pub fn from_docker_json_on(
    json: &str,
    caps: &[String],
    host: &Host,
) -> Result<LinuxSeccomp, SeccompProfileError> {
    let p: DockerProfile = serde_json::from_str(json)?;

    let default_action = match &p.default_action {
        None => {
            return Err(field_err(
                "defaultAction",
                "missing (use seccomp=unconfined to disable seccomp)",
            ))
        }
        Some(a) => parse_action(a, "defaultAction")?,
    };
    if p.listener_path.is_some() {
        return Err(field_err(
            "listenerPath",
            "seccomp user notification is not supported",
        ));
    }

    let architectures = match (&p.architectures, &p.arch_map) {
        (Some(a), Some(m)) if !a.is_empty() && !m.is_empty() => {
            return Err(field_err(
                "archMap",
                "both 'architectures' and 'archMap' are given; use one",
            ))
        }
        (Some(a), _) if !a.is_empty() => {
            let mut out = Vec::new();
            for (i, name) in a.iter().enumerate() {
                out.push(parse_arch(name, &format!("architectures[{i}]"))?);
            }
            Some(out)
        }
        (_, Some(m)) if !m.is_empty() => {
            let mut chosen = None;
            for (i, entry) in m.iter().enumerate() {
                let arch = parse_arch(&entry.architecture, &format!("archMap[{i}].architecture"))?;
                let mut subs = Vec::new();
                for (j, s) in entry.sub_architectures.iter().flatten().enumerate() {
                    subs.push(parse_arch(
                        s,
                        &format!("archMap[{i}].subArchitectures[{j}]"),
                    )?);
                }
                if arch == host.arch && chosen.is_none() {
                    chosen = Some(std::iter::once(arch).chain(subs).collect::<Vec<_>>());
                }
            }
            chosen
        }
        _ => None,
    };

    let mut flags = Vec::new();
    for (i, f) in p.flags.iter().flatten().enumerate() {
        let flag: LinuxSeccompFilterFlag = parse_enum(f)
            .ok_or_else(|| field_err(format!("flags[{i}]"), format!("unknown flag {f:?}")))?;
        flags.push(flag);
    }

    let mut syscalls = Vec::new();
    for (i, sc) in p.syscalls.iter().flatten().enumerate() {
        let at = format!("syscalls[{i}]");
        // Validate every rule, even one excluded on this host: a typo must
        // not hide until the profile is used elsewhere.
        let names: Vec<(String, String)> = match (&sc.name, &sc.names) {
            (Some(_), Some(n)) if !n.is_empty() => {
                return Err(field_err(
                    &at,
                    "both 'name' and 'names' are given; use 'names'",
                ))
            }
            (Some(n), _) => vec![(format!("{at}.name"), n.clone())],
            (None, Some(n)) => n
                .iter()
                .enumerate()
                .map(|(j, n)| (format!("{at}.names[{j}]"), n.clone()))
                .collect(),
            (None, None) => Vec::new(),
        };
        if names.is_empty() {
            return Err(field_err(format!("{at}.names"), "missing or empty"));
        }
        for (f, n) in &names {
            if !is_known_syscall(n) && !NEWER_SYSCALLS.contains(&n.as_str()) {
                return Err(field_err(f, format!("unknown syscall {n:?}")));
            }
        }
        let action = match &sc.action {
            None => return Err(field_err(format!("{at}.action"), "missing")),
            Some(a) => parse_action(a, &format!("{at}.action"))?,
        };
        let mut args = Vec::new();
        for (j, a) in sc.args.iter().flatten().enumerate() {
            let af = format!("{at}.args[{j}]");
            if a.index > 5 {
                return Err(field_err(
                    format!("{af}.index"),
                    format!("{} is out of range 0..=5", a.index),
                ));
            }
            let op: LinuxSeccompOperator = parse_enum(&a.op).ok_or_else(|| {
                field_err(format!("{af}.op"), format!("unknown operator {:?}", a.op))
            })?;
            args.push(oci_arg(a.index as usize, a.value, a.value_two, op));
        }
        let included = match &sc.includes {
            None => true,
            Some(f) => filter_matches(f, &format!("{at}.includes"), caps, host, true)?,
        };
        let excluded = match &sc.excludes {
            None => false,
            Some(f) => filter_matches(f, &format!("{at}.excludes"), caps, host, false)?,
        };
        if !included || excluded {
            continue;
        }
        // Names this libseccomp cannot express are dropped, like the runtime would.
        let kept: Vec<String> = names
            .into_iter()
            .map(|(_, n)| n)
            .filter(|n| is_known_syscall(n))
            .collect();
        if kept.is_empty() {
            continue;
        }
        let mut out = LinuxSyscall::default();
        out.set_names(kept);
        out.set_action(action);
        out.set_errno_ret(sc.errno_ret);
        if !args.is_empty() {
            out.set_args(Some(args));
        }
        syscalls.push(out);
    }

    let mut s = LinuxSeccomp::default();
    s.set_default_action(default_action);
    s.set_default_errno_ret(p.default_errno_ret);
    s.set_architectures(architectures);
    if !flags.is_empty() {
        s.set_flags(Some(flags));
    }
    s.set_syscalls(Some(syscalls));
    Ok(s)
}

fn parse_action(a: &str, field: &str) -> Result<LinuxSeccompAction, SeccompProfileError> {
    let action: LinuxSeccompAction =
        parse_enum(a).ok_or_else(|| field_err(field, format!("unknown action {a:?}")))?;
    if action == LinuxSeccompAction::ScmpActNotify {
        return Err(field_err(
            field,
            "SCMP_ACT_NOTIFY (seccomp user notification) is not supported",
        ));
    }
    Ok(action)
}

fn parse_arch(a: &str, field: &str) -> Result<Arch, SeccompProfileError> {
    match parse_enum::<Arch>(a) {
        // SCMP_ARCH_NATIVE would mean "whatever the runtime runs on": refuse
        // the ambiguity in a portable profile, as Docker's parser does.
        Some(Arch::ScmpArchNative) | None => {
            Err(field_err(field, format!("unknown architecture {a:?}")))
        }
        Some(arch) => Ok(arch),
    }
}

/// For `includes` (all conditions must hold) or `excludes` (any condition
/// excludes), following moby's `setupSeccomp`.
fn filter_matches(
    f: &DockerFilter,
    at: &str,
    caps: &[String],
    host: &Host,
    includes: bool,
) -> Result<bool, SeccompProfileError> {
    let mut arch_hit = None;
    if let Some(arches) = &f.arches {
        for (k, a) in arches.iter().enumerate() {
            if !FILTER_ARCHES.contains(&a.as_str()) {
                return Err(field_err(
                    format!("{at}.arches[{k}]"),
                    format!("unknown architecture {a:?}"),
                ));
            }
        }
        if !arches.is_empty() {
            arch_hit = Some(arches.iter().any(|a| a == host.filter_arch));
        }
    }
    let mut cap_hits = Vec::new();
    for (k, c) in f.caps.iter().flatten().enumerate() {
        let canonical = capabilities::normalize(c)
            .ok()
            .filter(|c| c != capabilities::ALL)
            .ok_or_else(|| {
                field_err(
                    format!("{at}.caps[{k}]"),
                    format!("unknown capability {c:?}"),
                )
            })?;
        cap_hits.push(has(caps, &canonical));
    }
    let kernel_hit = match &f.min_kernel {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => {
            let want = parse_min_kernel(v).ok_or_else(|| {
                field_err(
                    format!("{at}.minKernel"),
                    format!("invalid kernel version {v:?}, expected \"<kernel>.<major>\""),
                )
            })?;
            Some(host.kernel >= want)
        }
    };
    Ok(if includes {
        arch_hit.unwrap_or(true) && cap_hits.iter().all(|h| *h) && kernel_hit.unwrap_or(true)
    } else {
        arch_hit.unwrap_or(false) || cap_hits.iter().any(|h| *h) || kernel_hit.unwrap_or(false)
    })
}

fn parse_min_kernel(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once('.')?;
    let k = (a.parse().ok()?, b.parse().ok()?);
    (k != (0, 0)).then_some(k)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const DOCKER_DEFAULT: &str = include_str!("testdata/docker-default.json");

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn default_caps() -> Vec<String> {
        s(&capabilities::DEFAULT)
    }

    fn host() -> Host {
        Host {
            arch: Arch::ScmpArchX86_64,
            filter_arch: "amd64",
            kernel: (6, 18),
        }
    }

    /// (name, action, errno, args) for every name of every rule, sorted: two
    /// profiles with equal canonical forms compile to the same filter.
    type Canon = (String, String, Option<u32>, Vec<(usize, u64, u64, String)>);
    fn canonical(p: &LinuxSeccomp) -> (String, Option<u32>, BTreeSet<String>, Vec<Canon>) {
        let mut rules = Vec::new();
        for sc in p.syscalls().iter().flatten() {
            let args: Vec<_> = sc
                .args()
                .iter()
                .flatten()
                .map(|a| {
                    (
                        a.index(),
                        a.value(),
                        a.value_two().unwrap_or(0),
                        format!("{:?}", a.op()),
                    )
                })
                .collect();
            for n in sc.names() {
                rules.push((
                    n.clone(),
                    format!("{:?}", sc.action()),
                    sc.errno_ret(),
                    args.clone(),
                ));
            }
        }
        rules.sort();
        let arches = p
            .architectures()
            .iter()
            .flatten()
            .map(|a| format!("{a:?}"))
            .collect();
        (
            format!("{:?}", p.default_action()),
            p.default_errno_ret(),
            arches,
            rules,
        )
    }

    /// Equal canonical forms, reporting only the differing rules on failure.
    fn assert_equivalent(got: &LinuxSeccomp, want: &LinuxSeccomp, what: &str) {
        let (g, w) = (canonical(got), canonical(want));
        let missing: Vec<_> = w.3.iter().filter(|r| !g.3.contains(r)).collect();
        let extra: Vec<_> = g.3.iter().filter(|r| !w.3.contains(r)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{what}: missing {missing:?}, extra {extra:?}"
        );
        assert_eq!((g.0, g.1, g.2), (w.0, w.1, w.2), "{what}");
        assert_eq!(g.3, w.3, "{what}: duplicate counts differ");
    }

    /// Whether `p` allows `name` with no argument condition.
    fn allows_freely(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls().iter().flatten().any(|sc| {
            sc.action() == LinuxSeccompAction::ScmpActAllow
                && sc.args().as_ref().is_none_or(|a| a.is_empty())
                && sc.names().iter().any(|n| n == name)
        })
    }

    fn mentions(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls()
            .iter()
            .flatten()
            .any(|sc| sc.names().iter().any(|n| n == name))
    }

    #[test]
    fn every_name_in_the_table_resolves_here() {
        for r in RULES {
            for n in r.names {
                assert!(is_known_syscall(n), "libseccomp does not know {n}");
            }
        }
        for b in BLOCKED {
            assert!(
                is_known_syscall(b.name),
                "libseccomp does not know {}",
                b.name
            );
        }
    }

    #[test]
    fn newer_syscalls_are_really_unknown_here() {
        // If libseccomp learns one of these, it belongs in RULES instead.
        for n in NEWER_SYSCALLS {
            assert!(!is_known_syscall(n), "{n} now resolves: move it into RULES");
        }
    }

    #[test]
    fn no_name_is_listed_twice_in_the_unconditional_allow_list() {
        let mut seen = BTreeSet::new();
        for r in RULES
            .iter()
            .filter(|r| r.when == When::Always && r.args.is_empty())
        {
            for n in r.names {
                assert!(seen.insert(*n), "{n} listed twice");
            }
        }
    }

    #[test]
    fn conditional_rules_use_known_capabilities() {
        for r in RULES {
            if let When::HasCap(c) | When::LacksCap(c) = r.when {
                assert!(capabilities::bit(c).is_some(), "{c}");
            }
        }
    }

    #[test]
    fn default_profile_shape() {
        let p = default_profile(&default_caps());
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(j["architectures"][2], "SCMP_ARCH_X32");
    }

    #[test]
    fn blocked_list_holds_for_default_caps_and_lifts_with_its_capability() {
        let base = default_profile(&default_caps());
        for b in BLOCKED {
            assert!(
                !allows_freely(&base, b.name),
                "{} is allowed by default",
                b.name
            );
            if let Some(cap) = b.unless_cap {
                let mut caps = default_caps();
                caps.push(cap.to_string());
                assert!(
                    allows_freely(&default_profile(&caps), b.name),
                    "{} not allowed with {cap}",
                    b.name
                );
            }
        }
        // The ones no capability unlocks stay blocked even for "all capabilities".
        let all: Vec<String> = capabilities::KNOWN
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        let p = default_profile(&all);
        for name in [
            "kexec_load",
            "swapon",
            "pivot_root",
            "keyctl",
            "userfaultfd",
            "io_uring_setup",
        ] {
            assert!(!mentions(&p, name), "{name}");
        }
    }

    #[test]
    fn clone_filter_without_sys_admin() {
        assert_eq!(CLONE_NAMESPACE_FLAGS, 0x7e020000);
        let p = default_profile(&default_caps());
        let clones: Vec<_> = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|sc| sc.names().iter().any(|n| n == "clone"))
            .collect();
        assert_eq!(clones.len(), 1);
        let a = clones[0].args().clone().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].index(), a[0].value(), a[0].value_two().unwrap_or(0)),
            (0, 0x7e020000, 0)
        );
        assert_eq!(a[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let c3: Vec<_> = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|sc| sc.names().iter().any(|n| n == "clone3"))
            .collect();
        assert_eq!(c3.len(), 1);
        assert_eq!(c3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(c3[0].errno_ret(), Some(libc::ENOSYS as u32));
    }

    #[test]
    fn sys_admin_unlocks_mount_unshare_setns_and_plain_clone() {
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let p = default_profile(&caps);
        for n in ["mount", "unshare", "setns", "clone", "clone3", "umount2"] {
            assert!(allows_freely(&p, n), "{n}");
        }
        // Neither the clone flag filter nor clone3's ENOSYS remains.
        let restricted = p.syscalls().iter().flatten().any(|sc| {
            sc.names().iter().any(|n| n == "clone" || n == "clone3")
                && (sc.args().is_some() || sc.action() != LinuxSeccompAction::ScmpActAllow)
        });
        assert!(!restricted);
    }

    #[test]
    fn personality_allow_list() {
        let p = default_profile(&default_caps());
        let values: BTreeSet<u64> = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|sc| sc.names() == &vec!["personality".to_string()])
            .flat_map(|sc| sc.args().clone().unwrap())
            .map(|a| {
                assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpEq);
                a.value()
            })
            .collect();
        assert_eq!(values, BTreeSet::from([0, 8, 0x20000, 0x20008, 0xffffffff]));
    }

    #[test]
    fn docker_default_json_equals_default_profile() {
        for caps in [
            default_caps(),
            vec![],
            {
                let mut c = default_caps();
                c.extend(s(&[
                    "CAP_SYS_ADMIN",
                    "CAP_SYS_PTRACE",
                    "CAP_SYS_BOOT",
                    "CAP_DAC_READ_SEARCH",
                ]));
                c
            },
            capabilities::KNOWN
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
        ] {
            let parsed =
                from_docker_json_on(DOCKER_DEFAULT, &caps, &host()).expect("docker default parses");
            assert_equivalent(&parsed, &default_profile(&caps), &format!("caps {caps:?}"));
        }
    }

    #[test]
    fn docker_default_json_parses_on_this_host() {
        // The real host (kernel version read from /proc), not the fixture host.
        let p = from_docker_json(DOCKER_DEFAULT, &default_caps()).unwrap();
        assert_equivalent(&p, &default_profile(&default_caps()), "this host");
    }

    /// Compile a profile the way berth-runtime does (libseccomp, same mapping).
    fn compile(p: &LinuxSeccomp) -> libseccomp::ScmpFilterContext {
        use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
        let act = |a: LinuxSeccompAction, errno: Option<u32>| match a {
            LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
            LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(1) as i32),
            other => panic!("unexpected action {other:?}"),
        };
        let default = act(p.default_action(), p.default_errno_ret());
        let mut ctx = ScmpFilterContext::new(default).unwrap();
        ctx.set_ctl_nnp(false).unwrap();
        for a in p.architectures().iter().flatten() {
            let arch = match a {
                Arch::ScmpArchX86_64 => ScmpArch::X8664,
                Arch::ScmpArchX86 => ScmpArch::X86,
                Arch::ScmpArchX32 => ScmpArch::X32,
                other => panic!("unexpected arch {other:?}"),
            };
            ctx.add_arch(arch).unwrap();
        }
        for sc in p.syscalls().iter().flatten() {
            let action = act(sc.action(), sc.errno_ret());
            let conds: Vec<_> = sc
                .args()
                .iter()
                .flatten()
                .map(|a| {
                    let (op, datum) = match a.op() {
                        LinuxSeccompOperator::ScmpCmpMaskedEq => (
                            ScmpCompareOp::MaskedEqual(a.value()),
                            a.value_two().unwrap_or(0),
                        ),
                        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
                        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
                        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
                        other => panic!("unexpected op {other:?}"),
                    };
                    ScmpArgCompare::new(a.index() as u32, op, datum)
                })
                .collect();
            for n in sc.names() {
                let nr = ScmpSyscall::from_name(n).unwrap();
                let r = if conds.is_empty() {
                    ctx.add_rule(action, nr)
                } else {
                    ctx.add_rule_conditional(action, nr, &conds)
                };
                r.unwrap_or_else(|e| panic!("{n}: {e}"));
            }
        }
        ctx
    }

    #[test]
    fn default_profile_compiles_with_libseccomp() {
        // What the runtime will do with it: every rule must be accepted.
        let all: Vec<String> = capabilities::KNOWN
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        for caps in [default_caps(), vec![], all] {
            compile(&default_profile(&caps));
        }
    }

    /// Raw syscalls whose results differ with and without the filter; none of
    /// them can do harm unfiltered (bad reboot magic, nonexistent paths).
    const PROBE: &str = r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    print(name, ctypes.get_errno() if r == -1 else 0)
call("reboot", 169, 0, 0, 0, 0)
call("swapon", 167, b"/nonexistent-berth-probe", 0)
call("mount", 165, b"none", b"/nonexistent-berth-probe", b"tmpfs", 0, 0)
call("unshare_user", 272, 0x10000000)
call("clone3", 435, 0, 0)
call("personality_no_randomize", 135, 0x0040000)
call("personality_query", 135, 0xffffffff)
call("socket_alg", 41, 38, 5, 0)
call("keyctl", 250, 0, 0, 0, 0, 0)
call("getpid", 39)
"#;

    /// Run PROBE in a child of a thread that has `filter` loaded (the filter
    /// stays on that thread and its children, not on the test process).
    fn probe(filter: Option<LinuxSeccomp>) -> std::collections::BTreeMap<String, i32> {
        std::thread::spawn(move || {
            if let Some(f) = filter {
                compile(&f)
                    .load()
                    .expect("load seccomp filter (needs root or no_new_privs)");
            }
            let out = std::process::Command::new("python3")
                .args(["-c", PROBE])
                .output()
                .expect("python3 (apt: python3) runs the syscall probe");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| {
                    let (k, v) = l.split_once(' ').unwrap();
                    (k.to_string(), v.parse().unwrap())
                })
                .collect()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn filter_blocks_on_the_real_kernel() {
        const EPERM: i32 = libc::EPERM;
        let got = probe(Some(default_profile(&default_caps())));
        let want = [
            ("reboot", EPERM),
            ("swapon", EPERM),
            ("mount", EPERM),
            ("unshare_user", EPERM),
            ("clone3", libc::ENOSYS),
            ("personality_no_randomize", EPERM),
            ("personality_query", 0),
            ("socket_alg", EPERM),
            ("keyctl", EPERM),
            ("getpid", 0),
        ];
        for (k, v) in want {
            assert_eq!(got.get(k), Some(&v), "{k}: {got:?}");
        }
        // The control: without the filter none of the blocked calls says EPERM,
        // so the assertions above really measure the filter.
        let free = probe(None);
        for k in [
            "reboot",
            "swapon",
            "mount",
            "unshare_user",
            "clone3",
            "personality_no_randomize",
            "socket_alg",
            "keyctl",
        ] {
            assert_ne!(free.get(k), got.get(k), "{k}: {free:?}");
        }
        // With CAP_SYS_ADMIN in the set, namespaces and mounts reach the kernel.
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let admin = probe(Some(default_profile(&caps)));
        assert_eq!(admin.get("unshare_user"), Some(&0), "{admin:?}");
        assert_eq!(admin.get("mount"), Some(&libc::ENOENT), "{admin:?}");
        assert_ne!(admin.get("clone3"), Some(&libc::ENOSYS), "{admin:?}");
    }

    fn err(json: &str) -> String {
        from_docker_json_on(json, &default_caps(), &host())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_syscall_names_the_field() {
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW"},
            {"names":["write"],"action":"SCMP_ACT_ALLOW"},
            {"names":["close"],"action":"SCMP_ACT_ALLOW"},
            {"names":["openat","foo"],"action":"SCMP_ACT_ALLOW"}]}"#);
        assert_eq!(e, r#"syscalls[3].names[1]: unknown syscall "foo""#);
        // Also in a rule that does not apply on this host.
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["bar"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["s390x"]}}]}"#);
        assert!(
            e.contains(r#"syscalls[0].names[0]: unknown syscall "bar""#),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"baz","action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(
            e.contains(r#"syscalls[0].name: unknown syscall "baz""#),
            "{e}"
        );
    }

    #[test]
    fn bad_op_action_arch_are_errors_naming_the_field() {
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ALMOST"}]}]}"#);
        assert_eq!(
            e,
            r#"syscalls[0].args[0].op: unknown operator "SCMP_CMP_ALMOST""#
        );
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#);
        assert!(
            e.contains("syscalls[0].args[0].index: 6 is out of range"),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_MAYBE"}]}"#,
        );
        assert_eq!(e, r#"syscalls[0].action: unknown action "SCMP_ACT_MAYBE""#);
        let e = err(r#"{"defaultAction":"SCMP_ACT_NOPE","syscalls":[]}"#);
        assert!(
            e.contains(r#"defaultAction: unknown action "SCMP_ACT_NOPE""#),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_Z80"]}"#,
        );
        assert_eq!(
            e,
            r#"architectures[1]: unknown architecture "SCMP_ARCH_Z80""#
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_Q"]}]}"#,
        );
        assert!(
            e.contains(r#"archMap[0].subArchitectures[0]: unknown architecture "SCMP_ARCH_Q""#),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["vax"]}}]}"#,
        );
        assert!(
            e.contains(r#"syscalls[0].includes.arches[0]: unknown architecture "vax""#),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_FLY"]}}]}"#,
        );
        assert!(
            e.contains(r#"syscalls[0].excludes.caps[0]: unknown capability "CAP_FLY""#),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"five"}}]}"#,
        );
        assert!(
            e.contains("syscalls[0].includes.minKernel: invalid kernel version"),
            "{e}"
        );
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#);
        assert!(e.contains("flags[0]: unknown flag"), "{e}");
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
        );
        assert!(e.contains("both 'architectures' and 'archMap'"), "{e}");
        let e = err(r#"{"syscalls":[]}"#);
        assert!(e.contains("defaultAction: missing"), "{e}");
        let e = err(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
        assert!(e.contains("not supported"), "{e}");
        let e = err(r#"{"defaultAction": 3}"#);
        assert!(e.starts_with("invalid json"), "{e}");
    }

    #[test]
    fn includes_and_excludes_resolve_against_caps_arch_and_kernel() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "flags":["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls":[
            {"names":["reboot"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"excludes":{"caps":["sys_boot"]}},
            {"names":["kexec_load"],"action":"SCMP_ACT_KILL_PROCESS","includes":{"minKernel":"9.0"}},
            {"names":["swapon"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"4.8","arches":["amd64"]}},
            {"names":["swapoff"],"action":"SCMP_ACT_ERRNO","includes":{"arches":["arm64"]}},
            {"names":["mount"],"action":"SCMP_ACT_ERRNO","excludes":{"arches":["amd64"]}},
            {"names":["write"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":255,"valueTwo":2,"op":"SCMP_CMP_MASKED_EQ"}]},
            {"names":["listmount","mseal"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let p = from_docker_json_on(json, &default_caps(), &host()).unwrap();
        let names: Vec<String> = p
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect();
        assert_eq!(names, s(&["reboot", "swapon", "write"]));
        let sc = &p.syscalls().as_ref().unwrap()[0];
        assert_eq!(sc.errno_ret(), Some(38));
        let w = &p.syscalls().as_ref().unwrap()[2];
        let a = w.args().clone().unwrap()[0];
        assert_eq!(
            (a.value(), a.value_two(), a.op()),
            (255, Some(2), LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
        assert_eq!(
            p.flags().clone().unwrap(),
            vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]
        );
        assert_eq!(
            p.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64]
        );

        let mut caps = default_caps();
        caps.push("CAP_SYS_BOOT".into());
        let p = from_docker_json_on(json, &caps, &host()).unwrap();
        assert!(!mentions(&p, "reboot"));
        let old = Host {
            kernel: (4, 4),
            ..host()
        };
        let p = from_docker_json_on(json, &default_caps(), &old).unwrap();
        assert!(!mentions(&p, "swapon"));
    }

    #[test]
    fn arch_map_picks_the_hosts_entry() {
        let p = from_docker_json_on(DOCKER_DEFAULT, &default_caps(), &host()).unwrap();
        assert_eq!(p.architectures().clone().unwrap(), ARCHITECTURES.to_vec());
        let arm = Host {
            arch: Arch::ScmpArchAarch64,
            filter_arch: "arm64",
            kernel: (6, 1),
        };
        let p = from_docker_json_on(DOCKER_DEFAULT, &default_caps(), &arm).unwrap();
        assert_eq!(
            p.architectures().clone().unwrap(),
            vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        assert!(mentions(&p, "cacheflush"));
        assert!(!mentions(&p, "arch_prctl"));
    }

    #[test]
    fn kernel_release_parsing() {
        assert_eq!(parse_kernel("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_kernel("5.4-rc3"), Some((5, 4)));
        assert_eq!(parse_min_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_min_kernel("0.0"), None);
        assert_eq!(parse_min_kernel("4"), None);
    }
}
