//! Security (issue 4), on the real kernel, as root: seccomp, capabilities,
//! no_new_privs, a read-only root, non-root users, user namespaces, malicious bundles
//! (symlinks and `..` that point out of the rootfs), the runtime binary as a target
//! (CVE-2019-5736), fd and cwd leaks (CVE-2024-21626) and bad input.
//!
//! Each scenario builds a busybox bundle whose config.json is what the engine will
//! generate for the flag named in its comment (`--cap-drop ALL`, `--read-only`,
//! `--user 1000:1000`...), runs a shell script inside and checks what the script
//! reports. Scenarios run as `<scenario>::runc` and `<scenario>::berth`: runc 1.1.5
//! passing shows the expectation is right. A few are `berth` only, where issue 4 asks
//! for more than runc does (each says why).
//!
//! ```text
//! cargo test -p berth-runtime --test security                 # both runtimes
//! cargo test -p berth-runtime --test security berth           # one of them
//! cargo test -p berth-runtime --test security docker_default -- --nocapture
//! ```
//!
//! This host's kernel has neither /proc/kcore nor /proc/sysrq-trigger
//! (CONFIG_PROC_KCORE and CONFIG_MAGIC_SYSRQ are off): those two checks pass trivially
//! here, so the masked /proc/timer_list and /proc/keys and the read-only /proc/sys are
//! checked as well.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{temp_dir, unique_name, Bundle, Container, Invocation, Runtime};
use serde_json::{json, Value};

/// Scenarios where issue 4 asks more of berth than runc 1.1.5 does.
macro_rules! berth_only {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn berth() {
                super::$scenario(&super::Runtime::berth());
            }
        }
    )*};
}

both!(
    docker_default,
    cap_drop_all,
    no_new_privileges,
    seccomp_argument_filters,
    readonly_root_with_tmpfs,
    user_without_capabilities,
    user_with_capabilities,
    user_with_ambient_capabilities,
    symlink_etc_to_host_root,
    symlink_dir_to_host_dir,
    destination_symlink_to_host,
    destination_with_dotdot,
    cwd_symlink_out,
    device_symlink_out,
    user_namespace_root_is_unprivileged,
    runtime_exe_from_created_container,
    runtime_exe_from_running_container,
    no_fd_leak_into_init,
    no_fd_leak_into_exec,
    cwd_magic_link_init,
    cwd_magic_link_exec,
    unknown_syscall_name_is_skipped,
    bad_seccomp_operator,
    bad_seccomp_architecture,
    overlapping_uid_mappings,
    apparmor_without_apparmor,
    selinux_without_selinux,
);

berth_only!(unknown_capability);

// ---------------------------------------------------------------------------------------
// Docker's defaults, as the engine will write them into config.json

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// [`DOCKER_CAPS`] as a /proc/<pid>/status mask.
const DOCKER_CAP_MASK: &str = "00000000a80425fb";
const NO_CAPS: &str = "0000000000000000";

/// Docker's masked and read-only paths (moby `oci/defaults.go`).
const DOCKER_MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const DOCKER_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The unconditional allow-list of Docker's default seccomp profile
/// (moby `profiles/seccomp/default.json`, first rule). Names this libseccomp does
/// not know (other architectures' calls) are skipped by both runtimes.
const DOCKER_ALLOWED_SYSCALLS: &str = "
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
    exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
    fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
    flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
    ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents
    getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
    getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
    getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
    getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
    inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
    io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
    io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
    listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
    membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
    mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
    msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
    _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
    pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
    process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
    readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
    semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid
    setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
    setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
    setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
    setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
    signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
    statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
    timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
    timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
    timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
    utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
";

/// The namespace flags Docker's profile forbids in clone(2) (CLONE_NEWNS | NEWUTS |
/// NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP).
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;

fn docker_allowed_syscalls() -> Vec<&'static str> {
    DOCKER_ALLOWED_SYSCALLS.split_whitespace().collect()
}

/// Docker's default seccomp profile as moby renders it into config.json for a container
/// with [`DOCKER_CAPS`] on x86_64 (the rules for other capabilities and architectures
/// left out): everything not allowed fails with EPERM.
fn docker_seccomp() -> Value {
    let mut syscalls = vec![
        json!({"names": docker_allowed_syscalls(), "action": "SCMP_ACT_ALLOW"}),
        // kernel >= 4.8
        json!({"names": ["process_vm_readv", "process_vm_writev", "ptrace"],
               "action": "SCMP_ACT_ALLOW"}),
        // every socket family but AF_VSOCK
        json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}),
    ];
    // personality: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query
    for persona in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                             "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}));
    }
    syscalls.extend([
        json!({"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW"}),
        // CAP_SYS_CHROOT is one of the defaults
        json!({"names": ["chroot"], "action": "SCMP_ACT_ALLOW"}),
        // without CAP_SYS_ADMIN: clone only without namespace flags
        json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                         "op": "SCMP_CMP_MASKED_EQ"}]}),
        // its flags can't be filtered: ENOSYS makes libc fall back to clone
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}),
    ]);
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

/// `berth run` with the defaults: Docker's capabilities, seccomp profile, masked and
/// read-only paths, a writable root, no no_new_privs.
fn docker_like(bundle: &mut Bundle) {
    let caps = json!(DOCKER_CAPS);
    let config = &mut bundle.config;
    config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
    config["process"]["noNewPrivileges"] = json!(false);
    config["root"]["readonly"] = json!(false);
    config["linux"]["seccomp"] = docker_seccomp();
    config["linux"]["maskedPaths"] = json!(DOCKER_MASKED_PATHS);
    config["linux"]["readonlyPaths"] = json!(DOCKER_READONLY_PATHS);
}

// ---------------------------------------------------------------------------------------
// 1. Docker's defaults

/// The status lines every capability scenario prints.
const PRINT_STATUS: &str =
    "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status\n";

/// `berth run busybox`: Docker's capabilities and seccomp profile. The namespace,
/// mount, swap and reboot calls fail with EPERM, masked /proc files read empty,
/// read-only ones can't be written; what the 14 capabilities allow still works.
fn docker_default(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    docker_like(&mut bundle);
    let script = format!(
        "{PRINT_STATUS}
t unshare-user unshare -U true
t unshare-mount unshare -m true
t unshare-net unshare -n true
t mount mount -t tmpfs none /mnt
t umount umount /proc
touch /swapfile
t swapon swapon /swapfile
# reboot(2) in a child pid namespace only ends that namespace; never risk the host's
if [ $$ = 1 ]; then t reboot reboot -f; else echo 'reboot rc=99: not pid 1, not tried'; fi
t kcore head -c 16 /proc/kcore
t timer_list cat /proc/timer_list
t keys cat /proc/keys
t firmware ls -A /sys/firmware
t sysrq sh -c 'echo h > /proc/sysrq-trigger'
t proc-sys sh -c 'echo conf > /proc/sys/kernel/domainname'
t sethostname hostname conf-host
t fork sh -c '(true) && echo forked'
t chown chown 1000:1000 /tmp
t mknod mknod /tmp/null c 1 3
t chroot chroot / true
"
    );
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.status("CapEff", DOCKER_CAP_MASK);
    c.status("CapPrm", DOCKER_CAP_MASK);
    c.status("CapBnd", DOCKER_CAP_MASK);
    c.status("CapInh", NO_CAPS);
    c.status("CapAmb", NO_CAPS);
    c.status("NoNewPrivs", "0");
    c.status("Seccomp", "2");
    c.fails("unshare-user", "Operation not permitted");
    c.fails("unshare-mount", "Operation not permitted");
    c.fails("unshare-net", "Operation not permitted");
    c.fails("mount", "permission denied"); // busybox's words for EPERM
    c.fails("umount", "Operation not permitted");
    c.fails("swapon", "Operation not permitted");
    c.fails("reboot", "Operation not permitted");
    c.reads_nothing("kcore");
    c.reads_nothing("timer_list");
    c.reads_nothing("keys");
    c.reads_nothing("firmware");
    c.fails("sysrq", "");
    c.fails("proc-sys", "Read-only file system");
    c.fails("sethostname", "Operation not permitted");
    c.succeeds("fork", "forked");
    c.succeeds("chown", "");
    c.succeeds("mknod", "");
    c.succeeds("chroot", "");
    c.finish();
}

/// `--cap-drop ALL`: every set empty, so even root can't chown.
fn cap_drop_all(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    docker_like(&mut bundle);
    bundle.config["process"]["capabilities"] = json!({
        "bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": [],
    });
    let script = format!(
        "{PRINT_STATUS}
t id id -u
t chown chown 1000:1000 /tmp
t mknod mknod /tmp/null c 1 3
t unshare-user unshare -U true
"
    );
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    for field in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
        c.status(field, NO_CAPS);
    }
    c.status("NoNewPrivs", "0");
    c.status("Seccomp", "2");
    c.succeeds("id", "0");
    c.fails("chown", "Operation not permitted");
    c.fails("mknod", "Operation not permitted");
    c.fails("unshare-user", "Operation not permitted");
    c.finish();
}

/// `--security-opt no-new-privileges`: NoNewPrivs 1 (0 without it: [`docker_default`]),
/// the filter still in place.
fn no_new_privileges(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    docker_like(&mut bundle);
    bundle.config["process"]["noNewPrivileges"] = json!(true);
    let script = format!("{PRINT_STATUS}\nt unshare-user unshare -U true\n");
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.status("NoNewPrivs", "1");
    c.status("Seccomp", "2");
    c.status("CapEff", DOCKER_CAP_MASK);
    c.fails("unshare-user", "Operation not permitted");
    c.finish();
}

// ---------------------------------------------------------------------------------------
// 2. seccomp argument filters, errnoRet and defaultErrnoRet

/// An allow-list whose default is ENOSYS (defaultErrnoRet 38), so what the filter
/// refuses ("Function not implemented") is told apart from what the kernel refuses for
/// lack of a capability (EPERM): personality only with arg0 == 0 (SCMP_CMP_EQ),
/// clone/unshare only without CLONE_NEWUSER (SCMP_CMP_MASKED_EQ), sethostname with its
/// own errnoRet (95, EOPNOTSUPP).
fn seccomp_argument_filters(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    let no_newuser = json!([{"index": 0, "value": CLONE_NEWUSER, "valueTwo": 0,
                             "op": "SCMP_CMP_MASKED_EQ"}]);
    bundle.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": docker_allowed_syscalls(), "action": "SCMP_ACT_ALLOW"},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone", "unshare"], "action": "SCMP_ACT_ALLOW", "args": no_newuser},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
        ],
    });
    let script = format!(
        "{PRINT_STATUS}
t personality-linux linux64 true
t personality-linux32 linux32 true
t unshare-user unshare -U true
t unshare-uts unshare -u true
t fork sh -c '(true) && echo forked'
t subshell sh -c 'echo $(echo substituted)'
t mount mount -t tmpfs none /mnt
t sethostname hostname conf-host
"
    );
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.status("Seccomp", "2");
    c.status("NoNewPrivs", "1");
    c.succeeds("personality-linux", "");
    c.fails("personality-linux32", "Function not implemented");
    c.fails("unshare-user", "Function not implemented");
    // passes the filter: the kernel refuses, for lack of CAP_SYS_ADMIN
    c.fails("unshare-uts", "Operation not permitted");
    c.succeeds("fork", "forked");
    c.succeeds("subshell", "substituted");
    c.fails("mount", "Function not implemented");
    c.fails("sethostname", "not supported");
    c.finish();
}

// ---------------------------------------------------------------------------------------
// 3. read-only root

/// `--read-only --tmpfs /tmp`: / can't be written, /tmp is a writable tmpfs, and
/// nothing the container writes reaches the rootfs directory.
fn readonly_root_with_tmpfs(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    docker_like(&mut bundle);
    bundle.config["root"]["readonly"] = json!(true);
    push_mounts(
        &mut bundle,
        json!([{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=1m"]}]),
    );
    let script = "
t write-root touch /conf-file
t write-etc sh -c 'echo x >> /etc/passwd'
t mkdir-root mkdir /conf-dir
t tmp-type stat -f -c %T /tmp
t write-tmp sh -c 'echo written > /tmp/f && cat /tmp/f'
t remount-rw mount -o remount,rw /
";
    let out = run_script(runtime, &mut bundle, script);
    let mut c = Checks::new(runtime, &out);
    c.fails("write-root", "Read-only file system");
    c.fails("write-etc", "Read-only file system");
    c.fails("mkdir-root", "Read-only file system");
    c.succeeds("tmp-type", "tmpfs");
    c.succeeds("write-tmp", "written");
    c.fails("remount-rw", "");
    for leaked in ["conf-file", "conf-dir", "tmp/f"] {
        c.check(
            !bundle.in_rootfs(leaked).exists(),
            format!("{leaked} appeared in the rootfs directory"),
        );
    }
    c.finish();
}

// ---------------------------------------------------------------------------------------
// 4. non-root users

fn set_user(bundle: &mut Bundle, uid: u32, gid: u32) {
    bundle.config["process"]["user"] = json!({"uid": uid, "gid": gid});
}

/// `--user 1000:1000` as Docker renders it: only the bounding set keeps the default
/// capabilities; uid and gid 1000, no capability at all.
fn user_without_capabilities(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    docker_like(&mut bundle);
    set_user(&mut bundle, 1000, 1000);
    bundle.config["process"]["capabilities"] = json!({
        "bounding": DOCKER_CAPS, "effective": [], "permitted": [], "inheritable": [],
        "ambient": [],
    });
    let script = format!(
        "{PRINT_STATUS}
t uid id -u
t gid id -g
t groups id -G
t write-passwd sh -c 'echo x >> /etc/passwd'
t chown chown 1000 /etc/passwd
"
    );
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.succeeds("uid", "1000");
    c.succeeds("gid", "1000");
    c.succeeds("groups", "1000");
    for field in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        c.status(field, NO_CAPS);
    }
    c.status("CapBnd", DOCKER_CAP_MASK);
    c.fails("write-passwd", "Permission denied");
    c.fails("chown", "Operation not permitted");
    c.finish();
}

/// uid 1000 with the default capabilities in bounding, effective and permitted but
/// neither inheritable nor ambient: capabilities(7) drops permitted and effective at
/// execve for a non-root user running a file without file capabilities.
fn user_with_capabilities(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    docker_like(&mut bundle);
    set_user(&mut bundle, 1000, 1000);
    let script = format!("{PRINT_STATUS}\nt uid id -u\nt chown chown 1000 /etc/passwd\n");
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.succeeds("uid", "1000");
    for field in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        c.status(field, NO_CAPS);
    }
    c.status("CapBnd", DOCKER_CAP_MASK);
    c.fails("chown", "Operation not permitted");
    c.finish();
}

/// uid 1000 with ambient capabilities: those that are also inheritable and permitted
/// survive execve (CAP_NET_BIND_SERVICE, CAP_KILL); CAP_CHOWN, inheritable and
/// permitted but not ambient, does not; CAP_SETUID, ambient but not inheritable, can't
/// be raised (runc skips it with a warning).
fn user_with_ambient_capabilities(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    docker_like(&mut bundle);
    set_user(&mut bundle, 1000, 1000);
    let kept = [
        "CAP_NET_BIND_SERVICE",
        "CAP_KILL",
        "CAP_CHOWN",
        "CAP_SETUID",
    ];
    bundle.config["process"]["capabilities"] = json!({
        "bounding": kept, "effective": kept, "permitted": kept,
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"],
        "ambient": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_SETUID"],
    });
    let script = format!("{PRINT_STATUS}\nt uid id -u\nt chown chown 1000 /etc/passwd\n");
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.succeeds("uid", "1000");
    // NET_BIND_SERVICE (10) | KILL (5)
    c.status("CapAmb", "0000000000000420");
    c.status("CapPrm", "0000000000000420");
    c.status("CapEff", "0000000000000420");
    // ... | CHOWN (0)
    c.status("CapInh", "0000000000000421");
    // ... | SETUID (7)
    c.status("CapBnd", "00000000000004a1");
    c.fails("chown", "Operation not permitted");
    c.finish();
}

// ---------------------------------------------------------------------------------------
// 5. malicious bundles: symlinks and `..` pointing out of the rootfs

/// An image with `etc -> /`: mounts at /etc/<name> (a tmpfs) and /etc/<name>-file (a
/// file bind) resolve to <rootfs>/<name>..., never to the host's /<name>.
fn symlink_etc_to_host_root(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    let name = unique_name("berth-canary");
    let host_dir = Path::new("/").join(&name);
    let host_file = Path::new("/").join(format!("{name}-file"));
    let _cleanup = RemoveOnDrop(vec![host_dir.clone(), host_file.clone()]);
    assert!(
        !host_dir.exists() && !host_file.exists(),
        "{name} exists on the host"
    );
    fs::remove_dir_all(bundle.in_rootfs("/etc")).expect("remove /etc");
    std::os::unix::fs::symlink("/", bundle.in_rootfs("/etc")).expect("symlink etc -> /");
    let source = bundle.host_path("bind-source");
    fs::write(&source, "bound file\n").expect("write bind source");
    push_mounts(
        &mut bundle,
        json!([
            {"destination": format!("/etc/{name}"), "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m"]},
            {"destination": format!("/etc/{name}-file"), "type": "bind",
             "source": source, "options": ["bind", "ro"]},
        ]),
    );
    let script = format!(
        "t tmpfs stat -f -c %T /etc/{name}/
t in-root stat -f -c %T /{name}/
t file cat /etc/{name}-file
"
    );
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.succeeds("tmpfs", "tmpfs");
    c.succeeds("in-root", "tmpfs");
    c.succeeds("file", "bound file");
    c.check(
        !host_dir.exists(),
        format!("{} was created on the host", host_dir.display()),
    );
    c.check(
        !host_file.exists(),
        format!("{} was created on the host", host_file.display()),
    );
    c.check(
        bundle.in_rootfs(&name).is_dir(),
        format!("the mount point was not created as <rootfs>/{name}"),
    );
    c.no_host_mount(&name);
    c.finish();
}

/// An image with `data -> <host canary dir>`: a tmpfs at /data/x, a file bind at
/// /data/file and a directory bind at /data/dir land under <rootfs>/<canary dir>; the
/// host's canary dir gets nothing.
fn symlink_dir_to_host_dir(runtime: &Runtime) {
    let canary = Canary::new();
    let mut bundle = Bundle::busybox();
    std::os::unix::fs::symlink(canary.path(), bundle.in_rootfs("/data")).expect("symlink");
    let file_source = bundle.host_path("bind-file");
    fs::write(&file_source, "bound file\n").expect("write bind source");
    let dir_source = bundle.host_path("bind-dir");
    fs::create_dir_all(&dir_source).expect("create bind source dir");
    fs::write(dir_source.join("inside"), "").expect("write bind source entry");
    push_mounts(
        &mut bundle,
        json!([
            {"destination": "/data/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
            {"destination": "/data/file", "type": "bind", "source": file_source,
             "options": ["bind", "ro"]},
            {"destination": "/data/dir", "type": "bind", "source": dir_source,
             "options": ["rbind", "ro"]},
        ]),
    );
    let script = "
t tmpfs stat -f -c %T /data/x/
t file cat /data/file
t dir ls /data/dir
t resolved readlink -f /data/x
";
    let out = run_script(runtime, &mut bundle, script);
    let mut c = Checks::new(runtime, &out);
    c.succeeds("tmpfs", "tmpfs");
    c.succeeds("file", "bound file");
    c.succeeds("dir", "inside");
    c.succeeds("resolved", &format!("{}/x", canary.path().display()));
    let inside = bundle.in_rootfs(canary.path().to_str().expect("utf-8"));
    c.check(
        inside.join("x").is_dir(),
        format!("no mount point at {}", inside.join("x").display()),
    );
    canary.check_untouched(&mut c);
    c.finish();
}

/// Mount destinations that are themselves symlinks to host paths: /mnt -> <canary>/newdir
/// (tmpfs), /mntfile -> <canary>/newfile (file bind), /copy -> <canary> (a tmpfs with
/// tmpcopyup, which must copy the rootfs's directory, not read the host's).
fn destination_symlink_to_host(runtime: &Runtime) {
    let canary = Canary::new();
    let mut bundle = Bundle::busybox();
    let link = |name: &str, target: PathBuf| {
        std::os::unix::fs::symlink(target, bundle.in_rootfs(name)).expect("symlink");
    };
    link("/mnt", canary.path().join("newdir"));
    link("/mntfile", canary.path().join("newfile"));
    link("/copy", canary.path().to_path_buf());
    let file_source = bundle.host_path("bind-file");
    fs::write(&file_source, "bound file\n").expect("write bind source");
    push_mounts(
        &mut bundle,
        json!([
            {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
            {"destination": "/mntfile", "type": "bind", "source": file_source,
             "options": ["bind", "ro"]},
            {"destination": "/copy", "type": "tmpfs", "source": "tmpfs",
             "options": ["tmpcopyup", "size=1m"]},
        ]),
    );
    let script = "
t mnt stat -f -c %T /mnt/
t mntfile cat /mntfile
t copy stat -f -c %T /copy/
t copy-content ls -A /copy/
";
    let out = run_script(runtime, &mut bundle, script);
    let mut c = Checks::new(runtime, &out);
    c.succeeds("mnt", "tmpfs");
    c.succeeds("mntfile", "bound file");
    c.succeeds("copy", "tmpfs");
    c.check(
        !out.stdout.contains("canary-file"),
        "tmpcopyup copied the host's canary dir into the container".into(),
    );
    canary.check_untouched(&mut c);
    c.finish();
}

/// `..`-laden destinations (`/../../../../<canary>/x`, and through a relative symlink
/// `up -> ../../../../..`) stay inside the rootfs.
fn destination_with_dotdot(runtime: &Runtime) {
    let canary = Canary::new();
    let mut bundle = Bundle::busybox();
    std::os::unix::fs::symlink("../../../../..", bundle.in_rootfs("/up")).expect("symlink up");
    let c_path = canary.path().display().to_string();
    let file_source = bundle.host_path("bind-file");
    fs::write(&file_source, "bound file\n").expect("write bind source");
    push_mounts(
        &mut bundle,
        json!([
            {"destination": format!("/../../../..{c_path}/x"), "type": "tmpfs",
             "source": "tmpfs", "options": ["size=1m"]},
            {"destination": format!("/../../..{c_path}/y"), "type": "bind",
             "source": file_source, "options": ["bind", "ro"]},
            {"destination": format!("/up{c_path}/z"), "type": "tmpfs",
             "source": "tmpfs", "options": ["size=1m"]},
        ]),
    );
    let script = format!(
        "t x stat -f -c %T {c_path}/x/
t y cat {c_path}/y
t z stat -f -c %T {c_path}/z/
"
    );
    let out = run_script(runtime, &mut bundle, &script);
    let mut c = Checks::new(runtime, &out);
    c.succeeds("x", "tmpfs");
    c.succeeds("y", "bound file");
    c.succeeds("z", "tmpfs");
    canary.check_untouched(&mut c);
    c.finish();
}

/// A cwd through a symlink out, `work -> <canary>`: with cwd /work (the image has the
/// directory the link names, <rootfs>/<canary>) the process runs and writes there;
/// with cwd /work/sub, which nothing has, the runtime creates it inside the rootfs or
/// refuses (runc 1.1.5: "mkdir /work: file exists").
fn cwd_symlink_out(runtime: &Runtime) {
    let canary = Canary::new();
    let script = "
t pwd pwd -P
t write sh -c 'echo marker > marker && ls'
";
    let mut failures = Vec::new();
    for (cwd, image_has_target) in [("/work", true), ("/work/sub", false)] {
        let mut bundle = Bundle::busybox();
        std::os::unix::fs::symlink(canary.path(), bundle.in_rootfs("/work")).expect("symlink");
        let target = bundle.in_rootfs(canary.path().to_str().expect("utf-8"));
        if image_has_target {
            fs::create_dir_all(&target).expect("create the link's target in the rootfs");
        }
        bundle.config["process"]["cwd"] = json!(cwd);
        bundle.config["root"]["readonly"] = json!(false);
        let out = run_script(runtime, &mut bundle, script);
        let mut c = Checks::new(runtime, &out);
        if image_has_target || out.success {
            let inside = match cwd.strip_prefix("/work/") {
                Some(rest) => canary.path().join(rest),
                None => canary.path().to_path_buf(),
            };
            c.succeeds("pwd", &inside.display().to_string());
            c.succeeds("write", "marker");
            let marker = bundle
                .in_rootfs(inside.to_str().expect("utf-8"))
                .join("marker");
            c.check(
                marker.is_file(),
                format!("the marker is not at {}", marker.display()),
            );
        }
        canary.check_untouched(&mut c);
        println!("{out}"); // shown with --nocapture
        if !c.failures.is_empty() {
            failures.push(format!("cwd {cwd}:\n  {}\n{out}", c.failures.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {}",
        runtime.name,
        failures.join("\n")
    );
}

/// linux.devices through a symlink out: /dev is a plain directory of the image (no
/// tmpfs mount) holding `evil -> <canary>/node` and `null -> <canary>/null`; the node
/// for /dev/evil is made inside the rootfs. Then a device path that climbs out of /dev
/// with `..`: made inside the rootfs (runc) or refused. No node appears on the host.
fn device_symlink_out(runtime: &Runtime) {
    let canary = Canary::new();
    let dotdot = format!("/dev/../../..{}/node2", canary.path().display());
    let mut failures = Vec::new();
    for (path, must_run) in [("/dev/evil", true), (dotdot.as_str(), false)] {
        let mut bundle = Bundle::busybox();
        for (name, target) in [("/dev/evil", "node"), ("/dev/null", "null")] {
            let target = canary.path().join(target);
            std::os::unix::fs::symlink(target, bundle.in_rootfs(name)).expect("symlink");
        }
        let mounts = bundle.config["mounts"].as_array_mut().expect("mounts");
        mounts.retain(|m| m["destination"] != "/dev");
        bundle.config["linux"]["devices"] = json!([
            {"path": path, "type": "c", "major": 1, "minor": 3, "fileMode": 0o666,
             "uid": 0, "gid": 0},
        ]);
        let container_path = plain_path(path);
        let script = format!(
            "t write sh -c 'echo x > {container_path} && echo written'\nt dev ls -l /dev\n"
        );
        let out = run_script(runtime, &mut bundle, &script);
        let mut c = Checks::new(runtime, &out);
        if must_run || out.success {
            c.succeeds("write", "written");
        }
        canary.check_untouched(&mut c);
        println!("{out}"); // shown with --nocapture
        if !c.failures.is_empty() {
            failures.push(format!(
                "device {path}:\n  {}\n{out}",
                c.failures.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {}",
        runtime.name,
        failures.join("\n")
    );
}

/// `path` with `.` and `..` resolved lexically, never above `/`.
fn plain_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

// ---------------------------------------------------------------------------------------
// 6. user namespaces

/// `--userns` with a remapped range: root inside is uid/gid 100000 on the host, both
/// for the runtime's init waiting in `created` and for the process after `start`.
fn user_namespace_root_is_unprivileged(runtime: &Runtime) {
    const HOST_ID: u32 = 100_000;
    let mut bundle = Bundle::busybox();
    let linux = &mut bundle.config["linux"];
    linux["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": HOST_ID, "size": 65536}]);
    bundle.config["process"]["args"] = json!([
        "sh",
        "-c",
        "echo uid_map $(cat /proc/self/uid_map); echo gid_map $(cat /proc/self/gid_map); \
         echo id $(id -u):$(id -g); exec sleep 1000"
    ]);
    bundle.write_config();
    bundle.chown_rootfs(HOST_ID, HOST_ID);
    let container = Container::new(runtime, &bundle);
    let created = container.create();
    created.assert_success();
    let pid = container
        .state()
        .and_then(|s| s["pid"].as_u64())
        .expect("created container has a pid");
    let created_ids = (proc_status(pid, "Uid"), proc_status(pid, "Gid"));
    container.start().assert_success();
    container.wait_for_status("running", Duration::from_secs(10));
    let stdout = wait_for_output(&created.stdout_path, "id ", Duration::from_secs(10));
    let running_ids = (proc_status(pid, "Uid"), proc_status(pid, "Gid"));
    println!(
        "host view of pid {pid}: created Uid {:?} Gid {:?}, running Uid {:?} Gid {:?}",
        created_ids.0, created_ids.1, running_ids.0, running_ids.1
    );
    let mut c = Checks::new(runtime, &Captured::from(&created));
    let want = format!("{HOST_ID}\t{HOST_ID}\t{HOST_ID}\t{HOST_ID}");
    c.eq("created: Uid", &created_ids.0, &want);
    c.eq("created: Gid", &created_ids.1, &want);
    c.eq("running: Uid", &running_ids.0, &want);
    c.eq("running: Gid", &running_ids.1, &want);
    c.check(
        stdout.contains("uid_map 0 100000 65536"),
        "uid_map inside is not `0 100000 65536`".into(),
    );
    c.check(
        stdout.contains("gid_map 0 100000 65536"),
        "gid_map inside is not `0 100000 65536`".into(),
    );
    c.check(
        stdout.contains("id 0:0"),
        "the process is not root inside".into(),
    );
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", Duration::from_secs(10));
    c.finish();
}

fn proc_status(pid: u64, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| format!("<no {field} line in /proc/{pid}/status>"))
}

// ---------------------------------------------------------------------------------------
// 7. the runtime binary as a target (CVE-2019-5736)

/// A copy of the runtime's binary, run instead of the original so that a successful
/// attack damages only the copy; remembers its bytes to compare afterwards.
struct RuntimeCopy {
    runtime: Runtime,
    original: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl RuntimeCopy {
    fn new(runtime: &Runtime) -> RuntimeCopy {
        let dir = temp_dir("exe");
        let path = dir.path().join(runtime.name);
        fs::copy(&runtime.path, &path)
            .unwrap_or_else(|err| panic!("copy {}: {err}", runtime.path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod copy");
        let original = fs::read(&path).expect("read runtime copy");
        RuntimeCopy {
            runtime: Runtime {
                name: runtime.name,
                path,
            },
            original,
            _dir: dir,
        }
    }

    fn check_unchanged(&self, c: &mut Checks) {
        let now = fs::read(&self.runtime.path).unwrap_or_default();
        c.check(
            now == self.original,
            format!(
                "the runtime binary {} was modified ({} bytes, was {})",
                self.runtime.path.display(),
                now.len(),
                self.original.len()
            ),
        );
    }
}

/// While the init still is the runtime (between create and start), a process exec'd
/// into the container tries `echo x > /proc/1/exe`, and holds /proc/1/exe open to
/// rewrite it through /proc/self/fd/3 once `start` has replaced the runtime.
fn runtime_exe_from_created_container(runtime: &Runtime) {
    let copy = RuntimeCopy::new(runtime);
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] =
        json!(["sh", "-c", "while [ ! -e /done ]; do sleep 0.1; done"]);
    bundle.write_config();
    let container = Container::new(&copy.runtime, &bundle);
    let _done = TouchOnDrop(bundle.in_rootfs("/done"));
    container.create().assert_success();
    let attack = "
echo readlink=$(readlink /proc/1/exe 2>&1)
if err=$( (echo pwned > /proc/1/exe) 2>&1); then echo direct-write=ok; else echo \"direct-write=failed $err\"; fi
if { echo \"held=yes $(readlink /proc/self/fd/3)\"
     while [ ! -e /started ]; do sleep 0.05; done
     i=0
     while [ $i -lt 40 ]; do
       if err=$( (echo pwned > /proc/self/fd/3) 2>&1); then echo reopen-write=ok; break; fi
       i=$((i+1)); sleep 0.05
     done
     echo \"reopen-write: last error: $err\"
   } 2>/dev/null 3</proc/1/exe; then :; else echo held=no; fi
echo attack-done
";
    let exec = container.invoke(&["exec", "--detach", &container.id, "sh", "-c", attack]);
    assert!(
        exec.success(),
        "{}: exec into the created container failed:\n{exec}",
        runtime.name
    );
    wait_for_output(&exec.stdout_path, "held=", Duration::from_secs(20));
    let start = container.start();
    fs::write(bundle.in_rootfs("/started"), "").expect("create /started");
    let stdout = wait_for_output(&exec.stdout_path, "attack-done", Duration::from_secs(20));
    let mut c = Checks::new(runtime, &Captured::from(&exec));
    c.check(start.success(), format!("start failed:\n{start}"));
    c.check(
        stdout.contains("direct-write=failed"),
        "echo pwned > /proc/1/exe did not fail".into(),
    );
    c.check(
        !stdout.contains("reopen-write=ok"),
        "the runtime binary was rewritten through a held /proc/1/exe".into(),
    );
    if runtime.name == "berth-runtime" {
        // berth's defence is that the init is non-dumpable until execve (init.rs); runc's
        // is a sealed memfd copy of itself, which may be opened but never written.
        c.check(
            stdout.contains("held=no"),
            "a container process could open /proc/1/exe of the runtime".into(),
        );
    }
    copy.check_unchanged(&mut c);
    c.finish();
}

/// A running container's init scans /proc for executables that are not busybox (the
/// runtime joining the container for `exec`, before its execve) and tries to open and
/// rewrite them, while the host runs `exec` 15 times.
fn runtime_exe_from_running_container(runtime: &Runtime) {
    let copy = RuntimeCopy::new(runtime);
    let mut bundle = Bundle::busybox();
    let scanner = "
n=0
while [ ! -e /done ]; do
  for d in /proc/[0-9]*; do
    [ \"$d/exe\" -ef /bin/busybox ] && continue
    { [ /proc/self/fd/3 -ef /bin/busybox ] || {
        echo \"opened ${d#/proc/} $(readlink /proc/self/fd/3)\"
        if echo pwned 2>/dev/null > /proc/self/fd/3; then echo \"wrote ${d#/proc/}\"; fi
      }
    } 2>/dev/null 3<\"$d/exe\"
  done
  n=$((n+1))
done
echo scans=$n
";
    bundle.config["process"]["args"] = json!(["sh", "-c", scanner]);
    bundle.write_config();
    let container = Container::new(&copy.runtime, &bundle);
    let _done = TouchOnDrop(bundle.in_rootfs("/done"));
    let created = container.create();
    created.assert_success();
    container.start().assert_success();
    let mut exec_failures = Vec::new();
    for i in 0..15 {
        let exec = container.invoke(&["exec", &container.id, "true"]);
        if !exec.success() {
            exec_failures.push(format!("exec {i} failed:\n{exec}"));
        }
    }
    fs::write(bundle.in_rootfs("/done"), "").expect("create /done");
    container.wait_for_status("stopped", Duration::from_secs(20));
    let mut c = Checks::new(runtime, &Captured::from(&created));
    for failure in exec_failures {
        c.check(false, failure);
    }
    let stdout = created.stdout();
    let opened: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("opened "))
        .collect();
    c.check(
        opened.is_empty(),
        format!("the container opened runtime executables: {opened:?}"),
    );
    c.check(
        !stdout.contains("wrote "),
        "the container wrote to a runtime executable".into(),
    );
    c.check(
        stdout.contains("scans="),
        "the scanner did not finish".into(),
    );
    copy.check_unchanged(&mut c);
    c.finish();
}

// ---------------------------------------------------------------------------------------
// 8. no host fd or cwd leaks (CVE-2024-21626)

/// The fds of an `ls -l /proc/self/fd` listing that are neither stdio nor ls's own
/// handle on the directory (whose link is gone or names /proc/<pid>/fd).
fn leaked_fds(listing: &str) -> Vec<String> {
    let mut leaked = Vec::new();
    let mut own_handle_seen = false;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || !fields[0].starts_with('l') {
            continue;
        }
        let fd = fields[8];
        if fd.parse::<u32>().is_err() || ["0", "1", "2"].contains(&fd) {
            continue;
        }
        let target = line.split_once(" -> ").map(|(_, t)| t.trim());
        let own = target.is_none_or(|t| t.starts_with("/proc/") && t.ends_with("/fd"));
        if own && !own_handle_seen {
            own_handle_seen = true;
            continue;
        }
        leaked.push(line.trim().to_string());
    }
    leaked
}

/// The container's first process (`ls` itself) has only stdio open, and starts in /.
fn no_fd_leak_into_init(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(["/bin/ls", "-l", "/proc/self/fd", "/proc/self/cwd"]);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    let out = Captured::from(&container.run());
    let mut c = Checks::new(runtime, &out);
    c.check(out.success, "run failed".into());
    let leaked = leaked_fds(&out.stdout);
    c.check(
        leaked.is_empty(),
        format!("fds leaked into the container: {leaked:?}"),
    );
    c.check(
        out.stdout.contains("cwd -> /\n"),
        "the process does not start in /".into(),
    );
    c.finish();
}

/// A process exec'd into a running container has only stdio open, and starts in /.
fn no_fd_leak_into_exec(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(["sleep", "1000"]);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let out = container.invoke(&[
        "exec",
        &container.id,
        "/bin/ls",
        "-l",
        "/proc/self/fd",
        "/proc/self/cwd",
    ]);
    let out = Captured::from(&out);
    let mut c = Checks::new(runtime, &out);
    c.check(out.success, "exec failed".into());
    let leaked = leaked_fds(&out.stdout);
    c.check(
        leaked.is_empty(),
        format!("fds leaked into the exec'd process: {leaked:?}"),
    );
    c.check(
        out.stdout.contains("cwd -> /\n"),
        "the exec'd process does not start in /".into(),
    );
    container.kill("KILL").assert_success();
    c.finish();
}

/// The script that shows where a process runs: `pwd -P` fails (ENOENT) when the cwd is
/// outside the process's root.
const SHOW_CWD: &str = "pwd -P && echo cwd-reachable";

/// process.cwd `/proc/self/fd/<n>` (a runtime fd to a host directory, if one leaked):
/// the runtime refuses, or the process's cwd is inside the container.
fn cwd_magic_link_init(runtime: &Runtime) {
    let mut outcomes = Vec::new();
    for fd in 3..=12 {
        let mut bundle = Bundle::busybox();
        bundle.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        bundle.config["process"]["args"] = json!(["sh", "-c", SHOW_CWD]);
        bundle.write_config();
        let container = Container::new(runtime, &bundle);
        let out = container.run();
        let escaped = out.success() && !out.stdout().contains("cwd-reachable");
        outcomes.push((fd, escaped, out.to_string()));
        drop(container);
    }
    let escaped: Vec<String> = outcomes
        .iter()
        .filter(|(_, escaped, _)| *escaped)
        .map(|(fd, _, out)| format!("cwd /proc/self/fd/{fd}:\n{out}"))
        .collect();
    assert!(
        escaped.is_empty(),
        "{}: the process ran outside the container root:\n{}",
        runtime.name,
        escaped.join("\n")
    );
}

/// `exec --cwd /proc/self/fd/<n>`: refused, or the process's cwd is inside the container.
fn cwd_magic_link_exec(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(["sleep", "1000"]);
    bundle.write_config();
    let container = Container::new(runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let mut escaped = Vec::new();
    for fd in 3..=12 {
        let cwd = format!("/proc/self/fd/{fd}");
        let out = container.invoke(&["exec", "--cwd", &cwd, &container.id, "sh", "-c", SHOW_CWD]);
        if out.success() && !out.stdout().contains("cwd-reachable") {
            escaped.push(out.to_string());
        }
    }
    container.kill("KILL").assert_success();
    assert!(
        escaped.is_empty(),
        "{}: an exec'd process ran outside the container root:\n{}",
        runtime.name,
        escaped.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// 9. bad input: a clear error naming the field, nothing created

/// A syscall name this libseccomp doesn't know is skipped (runc does so: a profile
/// written for a newer kernel must still load); the rest of the profile applies.
fn unknown_syscall_name_is_skipped(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["conf_no_such_syscall", "sethostname"],
                      "action": "SCMP_ACT_ERRNO", "errnoRet": 95}],
    });
    let out = run_script(runtime, &mut bundle, "t sethostname hostname conf-host\n");
    let mut c = Checks::new(runtime, &out);
    c.fails("sethostname", "not supported");
    c.finish();
}

/// Expects `create` to fail with an error line holding every one of `needles`
/// (case-insensitive), and the container not to exist afterwards.
fn assert_refused(runtime: &Runtime, bundle: &mut Bundle, needles: &[&str]) {
    bundle.config["process"]["args"] = json!(["true"]);
    bundle.write_config();
    let container = Container::new(runtime, bundle);
    let out = Captured::from(&container.create());
    let mut c = Checks::new(runtime, &out);
    c.check(!out.success, "create succeeded".into());
    let stderr = out.stderr.clone();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let naming = lines.iter().find(|line| {
        let line = line.to_lowercase();
        needles.iter().all(|n| line.contains(&n.to_lowercase()))
    });
    c.check(
        naming.is_some(),
        format!("no error line names all of {needles:?}"),
    );
    if runtime.name == "berth-runtime" {
        // One line, and one that a person can read: not a serde dump of every variant.
        c.check(
            lines.len() == 1,
            format!("the error takes {} lines", lines.len()),
        );
        c.check(
            naming.is_none_or(|l| l.len() <= 300),
            "the error line is longer than 300 characters".into(),
        );
    }
    c.check(
        container.state().is_none(),
        "state succeeds: the container exists".into(),
    );
    let left = container.leftovers();
    c.check(left.is_empty(), format!("left behind: {left:?}"));
    c.finish();
}

fn with_seccomp_rule(bundle: &mut Bundle, profile: Value) {
    bundle.config["linux"]["seccomp"] = profile;
}

/// `"op": "SCMP_CMP_FOO"`.
fn bad_seccomp_operator(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    with_seccomp_rule(
        &mut bundle,
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_FOO"}]}]}),
    );
    assert_refused(runtime, &mut bundle, &["seccomp", "SCMP_CMP_FOO"]);
}

/// `"architectures": ["SCMP_ARCH_FOO"]`.
fn bad_seccomp_architecture(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    with_seccomp_rule(
        &mut bundle,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"],
               "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_refused(runtime, &mut bundle, &["seccomp", "SCMP_ARCH_FOO"]);
}

/// `CAP_FOO` in the bounding set. berth only: runc 1.1 warns ("ignoring unknown or
/// unavailable capabilities") and runs the container; issue 4 asks for an error.
fn unknown_capability(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .expect("bounding")
        .push(json!("CAP_FOO"));
    assert_refused(runtime, &mut bundle, &["capabilit", "CAP_FOO"]);
}

/// uidMappings whose container ranges overlap (0-999 and 500-1499). runc fails when the
/// kernel rejects the uid_map write; berth should say so before doing anything.
fn overlapping_uid_mappings(runtime: &Runtime) {
    let mut bundle = Bundle::busybox();
    let linux = &mut bundle.config["linux"];
    linux["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    linux["uidMappings"] = json!([
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 500, "hostID": 200000, "size": 1000},
    ]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let needles: &[&str] = if runtime.name == "runc" {
        &["uid_map"]
    } else {
        &["uidMappings", "overlap"]
    };
    assert_refused(runtime, &mut bundle, needles);
}

/// apparmorProfile on a kernel without AppArmor.
fn apparmor_without_apparmor(runtime: &Runtime) {
    assert!(
        !Path::new("/sys/kernel/security/apparmor").exists()
            && !Path::new("/sys/module/apparmor/parameters/enabled").exists(),
        "this scenario needs a host without AppArmor"
    );
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["apparmorProfile"] = json!("docker-default");
    assert_refused(runtime, &mut bundle, &["apparmor"]);
}

/// selinuxLabel with SELinux disabled.
fn selinux_without_selinux(runtime: &Runtime) {
    assert!(
        !Path::new("/sys/fs/selinux/enforce").exists(),
        "this scenario needs a host with SELinux disabled"
    );
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
    assert_refused(runtime, &mut bundle, &["selinux"]);
}

// ---------------------------------------------------------------------------------------
// Running scripts and checking what they report

/// Defines `t NAME CMD...`, which runs CMD and prints `NAME rc=<status>: <output>` on
/// one line (stdout and stderr together).
const PRELUDE: &str = "t() { n=$1; shift; o=$(\"$@\" 2>&1); r=$?; \
     echo \"$n rc=$r: $(printf '%s' \"$o\" | tr '\\n' ' ')\"; }\n";

/// Runs `script` (after [`PRELUDE`]) as the bundle's process in the foreground, and
/// checks that the runtime left nothing behind.
fn run_script(runtime: &Runtime, bundle: &mut Bundle, script: &str) -> Captured {
    let script = format!("{PRELUDE}{script}\necho script-done\n");
    bundle.config["process"]["args"] = json!(["sh", "-c", script]);
    bundle.write_config();
    let container = Container::new(runtime, bundle);
    let out = Captured::from(&container.run());
    let left = container.leftovers();
    assert!(
        left.is_empty(),
        "{} left behind after run: {left:?}\n{out}",
        runtime.name
    );
    out
}

/// What a runtime command printed, read before its files go away with its container.
#[derive(Clone, Debug)]
struct Captured {
    command: String,
    success: bool,
    stdout: String,
    stderr: String,
    shown: String,
}

impl From<&Invocation> for Captured {
    fn from(out: &Invocation) -> Captured {
        Captured {
            command: out.command.clone(),
            success: out.success(),
            stdout: out.stdout(),
            stderr: out.stderr(),
            shown: out.to_string(),
        }
    }
}

impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Collects failed expectations about one runtime invocation and reports them together
/// with its output.
struct Checks<'a> {
    runtime: &'a Runtime,
    out: Captured,
    results: BTreeMap<String, (i32, String)>,
    failures: Vec<String>,
}

impl<'a> Checks<'a> {
    fn new(runtime: &'a Runtime, out: &Captured) -> Checks<'a> {
        let out = out.clone();
        let mut results = BTreeMap::new();
        for line in out.stdout.lines() {
            let Some((name, rest)) = line.split_once(" rc=") else {
                continue;
            };
            let Some((rc, text)) = rest.split_once(':') else {
                continue;
            };
            if let Ok(rc) = rc.parse::<i32>() {
                results.insert(name.to_string(), (rc, text.trim().to_string()));
            }
        }
        Checks {
            runtime,
            out,
            results,
            failures: Vec::new(),
        }
    }

    fn check(&mut self, ok: bool, failure: String) {
        if !ok {
            self.failures.push(failure);
        }
    }

    fn eq(&mut self, what: &str, got: &str, want: &str) {
        self.check(got == want, format!("{what}: got {got:?}, want {want:?}"));
    }

    fn result(&mut self, name: &str) -> Option<(i32, String)> {
        let found = self.results.get(name).cloned();
        if found.is_none() {
            self.failures
                .push(format!("{name}: the script did not report it"));
        }
        found
    }

    /// `name` exited 0 and its output contains `needle`.
    fn succeeds(&mut self, name: &str, needle: &str) {
        if let Some((rc, text)) = self.result(name) {
            self.check(
                rc == 0 && text.contains(needle),
                format!("{name}: want success with {needle:?}, got rc={rc}: {text}"),
            );
        }
    }

    /// `name` failed and its output contains `needle` (case-insensitive).
    fn fails(&mut self, name: &str, needle: &str) {
        if let Some((rc, text)) = self.result(name) {
            self.check(
                rc != 0 && text.to_lowercase().contains(&needle.to_lowercase()),
                format!("{name}: want a failure with {needle:?}, got rc={rc}: {text}"),
            );
        }
    }

    /// `name` failed, or succeeded printing nothing (a masked path).
    fn reads_nothing(&mut self, name: &str) {
        if let Some((rc, text)) = self.result(name) {
            self.check(
                rc != 0 || text.is_empty(),
                format!("{name}: read data: rc={rc}: {text}"),
            );
        }
    }

    /// The `field:` line of /proc/self/status that the script printed.
    fn status(&mut self, field: &str, want: &str) {
        let got = self
            .out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(str::trim)
            .unwrap_or("<missing>")
            .to_string();
        self.eq(field, &got, want);
    }

    /// No mount on the host mentions `name`.
    fn no_host_mount(&mut self, name: &str) {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let found: Vec<&str> = mountinfo.lines().filter(|l| l.contains(name)).collect();
        self.check(
            found.is_empty(),
            format!("the host has mounts naming {name}: {found:?}"),
        );
    }

    fn finish(&mut self) {
        if self.failures.is_empty() {
            println!("{}", self.out); // shown with --nocapture
            return;
        }
        if !self.out.stdout.contains("script-done") && self.out.command.contains(" run ") {
            self.failures
                .push("the script did not run to its end".to_string());
        }
        panic!(
            "{}: {} failed expectations:\n  {}\n\n{}",
            self.runtime.name,
            self.failures.len(),
            self.failures.join("\n  "),
            self.out
        );
    }
}

fn push_mounts(bundle: &mut Bundle, mounts: Value) {
    bundle.config["mounts"]
        .as_array_mut()
        .expect("mounts array")
        .extend(mounts.as_array().expect("array").iter().cloned());
}

/// Polls `path` until it contains `needle`; returns its content. Panics after `timeout`.
fn wait_for_output(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates a file when dropped: the signal a waiting container process needs to end,
/// even if the test panicked.
struct TouchOnDrop(PathBuf);

impl Drop for TouchOnDrop {
    fn drop(&mut self) {
        let _ = fs::write(&self.0, "");
    }
}

/// Removes host paths a buggy runtime may have created.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
            let _ = fs::remove_dir(path).or_else(|_| fs::remove_file(path));
        }
    }
}

/// A host directory (under /tmp) that a malicious bundle points at: one file,
/// `canary-file`, with old timestamps (so that a read updates its atime even under
/// relatime). Nothing a container does may change the directory or the file.
struct Canary {
    dir: tempfile::TempDir,
    before: CanaryState,
}

#[derive(Debug, PartialEq)]
struct CanaryState {
    entries: Vec<String>,
    dir: (u64, i64, i64, i64, i64),
    file: (u64, u64, i64, i64, i64, i64, i64, i64),
}

impl Canary {
    fn new() -> Canary {
        let dir = temp_dir("canary");
        let file = dir.path().join("canary-file");
        fs::write(&file, "canary: a container must never read or write this\n")
            .expect("write canary");
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let times = fs::FileTimes::new().set_accessed(old).set_modified(old);
        fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_times(times))
            .expect("set canary times");
        let before = Canary::state(dir.path());
        Canary { dir, before }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state(dir: &Path) -> CanaryState {
        let mut entries: Vec<String> = fs::read_dir(dir)
            .expect("read canary dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        let d = fs::symlink_metadata(dir).expect("stat canary dir");
        let f = fs::symlink_metadata(dir.join("canary-file")).unwrap_or(d.clone());
        CanaryState {
            entries,
            dir: (
                d.ino(),
                d.mtime(),
                d.mtime_nsec(),
                d.ctime(),
                d.ctime_nsec(),
            ),
            file: (
                f.ino(),
                f.size(),
                f.atime(),
                f.atime_nsec(),
                f.mtime(),
                f.mtime_nsec(),
                f.ctime(),
                f.ctime_nsec(),
            ),
        }
    }

    /// The directory and file are as created: same entries, no write, no read (atime),
    /// and no host mount names the directory.
    fn check_untouched(&self, c: &mut Checks) {
        let now = Canary::state(self.path());
        c.check(
            now.entries == self.before.entries,
            format!(
                "entries of the host canary dir {} changed: {:?} -> {:?}",
                self.path().display(),
                self.before.entries,
                now.entries
            ),
        );
        c.check(
            now.dir == self.before.dir,
            format!("the host canary dir {} was modified", self.path().display()),
        );
        c.check(
            now.file == self.before.file,
            format!(
                "the host canary file was read or written (ino, size, atime, mtime, ctime): \
                 {:?} -> {:?}",
                self.before.file, now.file
            ),
        );
        let name = self
            .path()
            .file_name()
            .expect("named")
            .to_string_lossy()
            .into_owned();
        c.no_host_mount(&name);
    }
}
