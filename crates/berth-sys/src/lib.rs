//! berth-sys: the only crate in berth allowed to contain `unsafe`.
//!
//! Everything here is a thin wrapper over one syscall (or one libc call) that
//! `nix` does not expose safely. Each block carries a `// SAFETY:` note about
//! that call. Wrappers take and return `OwnedFd`/`BorrowedFd` rather than raw
//! integers wherever an fd crosses the boundary.
//!
//! Invariants callers must keep:
//! - [`fork`] is only sound in a single-threaded process. `berth-runtime` is
//!   single-threaded by design (ARCHITECTURE.md: no tokio in the runtime), and
//!   the engine never calls it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub use nix::unistd::{ForkResult, Pid};

/// fork(2) for a single-threaded process.
///
/// The runtime is single-threaded, so the child inherits a consistent copy of
/// the address space (no lock held by a vanished thread).
pub fn fork() -> io::Result<ForkResult> {
    // SAFETY: berth-runtime never starts a second thread (no tokio, no thread
    // pools), so after fork the child may run arbitrary Rust code.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// fork(2) as clone3(2) with `CLONE_INTO_CGROUP`: the child starts life in the
/// cgroup2 directory `cgroup` (an fd opened on it, not O_PATH), so nobody has to
/// migrate it there. Migrating a process by writing its pid to `cgroup.procs`
/// takes the kernel's global threadgroup rwsem for writing, which waits for an
/// RCU grace period (~10-20 ms on an otherwise idle 250 Hz host); being born in
/// the cgroup takes only the read side.
///
/// Same contract as [`fork`] (single-threaded callers). Errors are the kernel's:
/// ENOSYS/E2BIG/EINVAL on kernels without clone3 or CLONE_INTO_CGROUP (< 5.7),
/// for which the caller falls back to [`fork`].
pub fn fork_into_cgroup(cgroup: BorrowedFd<'_>) -> io::Result<ForkResult> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    // struct clone_args, CLONE_ARGS_SIZE_VER2 (88 bytes): the cgroup field is VER2.
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: without CLONE_VM the child gets a copy of the address space, as
    // with fork(2); the caller is single-threaded (see `fork`), so no lock is
    // held by a thread that does not exist in the child. glibc's atfork handlers
    // do not run, which only matters for state this process does not use
    // (its own raise() asks the kernel for the tid, so abort() still works).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// openat2(2) resolving `path` with `resolve` flags (e.g. RESOLVE_IN_ROOT) from `dirfd`.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `cpath` is a valid NUL-terminated string and `how` has the
        // layout of struct open_how (OPEN_HOW_SIZE_VER0 = 24 bytes); the kernel
        // returns a new fd or -1.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                cpath.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel just handed us this fd; nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        let err = io::Error::last_os_error();
        // openat2 returns EAGAIN when a concurrent rename races RESOLVE_IN_ROOT.
        if err.raw_os_error() != Some(libc::EAGAIN) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

pub const RESOLVE_IN_ROOT: u64 = libc::RESOLVE_IN_ROOT;
pub const RESOLVE_NO_MAGICLINKS: u64 = libc::RESOLVE_NO_MAGICLINKS;

/// Mark every fd >= `first` close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC).
///
/// This is what keeps host fds (including a host cwd or /sys/fs/cgroup dirfd)
/// from reaching the container program: CVE-2024-21626.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes fd flags of this process; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setdomainname(2).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): give the container its own session keyring
/// so it cannot read the host's keys (runc does the same unless --no-new-keyring).
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `cname` is a valid C string for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            cname.as_ptr(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Make `fd` (a tty slave) the controlling terminal of this session (TIOCSCTTY).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument, no pointers.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set the window size of a terminal (TIOCSWINSZ).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own for the whole call.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Read the window size of a terminal (TIOCGWINSZ).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into the winsize struct we own.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// Open the pty slave that belongs to `master` (TIOCGPTPEER), without a path lookup,
/// so a hostile /dev/pts inside the container cannot substitute another file.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags as an int and returns a new fd.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// pidfd_open(2): a stable handle on a process that survives pid reuse.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: null siginfo is allowed (kernel fills it as for kill(2)).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// personality(2).
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: plain integer argument.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The current umask, and set a new one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail and touches no memory.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Own a raw fd received from elsewhere (e.g. SCM_RIGHTS, or an env-passed fd number).
///
/// # Panics
/// Never; but the caller must be sure no one else owns `fd`.
pub fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass fds they have just received and that no other
    // owner in this process refers to (documented contract).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Unmap this process's resident code pages (`MADV_DONTNEED` on every executable
/// file mapping: the binary's and its libraries' text), so a long-lived process
/// keeps only the code it runs afterwards. Only mappings without a single private
/// (copied-on-write) page are touched — a text relocation or a debugger's
/// breakpoint would have made one, and dropping it would revert the code — so
/// what is dropped is exactly the file's content, mapped back from the page
/// cache by a minor fault when used again. Writable and RELRO mappings are never
/// executable and are left alone, as is the kernel's [vdso]. Returns the bytes
/// released from the page tables (not all of them were resident).
pub fn release_code_pages() -> io::Result<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    // (start, end, executable file mapping, anonymous kB)
    let mut maps: Vec<(usize, usize, bool, u64)> = Vec::new();
    for line in smaps.lines() {
        if let Some(kb) = line.strip_prefix("Anonymous:") {
            if let Some(m) = maps.last_mut() {
                m.3 = kb
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(u64::MAX);
            }
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue; // a "Key: value" line
        };
        let path = f.nth(3).unwrap_or("");
        // Unknown until its Anonymous line: assume the worst.
        let read_only = perms == "r-xp" || perms == "r--p";
        maps.push((start, end, read_only && path.starts_with('/'), u64::MAX));
    }
    let mut released = 0;
    for (start, end, code, anon_kb) in maps {
        if !code || anon_kb != 0 {
            continue;
        }
        // SAFETY: [start, end) is a whole private, read-only, executable file
        // mapping of this process as the kernel listed it, with no anonymous
        // (modified) page; MADV_DONTNEED only drops its page-table entries, and
        // the next access maps the same file contents back — including the page
        // this call returns to.
        let r =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if r == 0 {
            released += end - start;
        }
    }
    Ok(released)
}

/// Exit this process immediately, without running destructors or atexit handlers.
/// Used by forked children whose parent owns the shared state.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// PR_SET_CHILD_SUBREAPER for this process.
pub fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

fn cstring(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A `/proc/self/fd/N` path naming an open fd, for syscalls that only take paths
/// (mount(2) target): the kernel follows the magic link to exactly that inode.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// mount_setattr(2) on the mount at `path` relative to `dirfd` (AT_EMPTY_PATH when `path` is empty).
/// `recursive` adds AT_RECURSIVE. `propagation` is 0 or one MS_* propagation type.
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &str,
    recursive: bool,
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation,
        userns_fd: 0,
    };
    let cpath = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut flags = if path.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: `attr` is a properly laid out struct mount_attr (linux/mount.h,
    // MOUNT_ATTR_SIZE_VER0 = 32 bytes) that outlives the call; `cpath` is a valid C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            cpath.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bring interface `name` up (SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram socket).
/// Used for `lo` in a fresh network namespace, where it starts down.
pub fn set_link_up(name: &str) -> io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags of the ifreq we own.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS,
            &mut req as *mut libc::ifreq,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS just filled.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &req as *const libc::ifreq,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Every signal back to SIG_DFL and none blocked, before execve: a signal
/// ignored here (Rust's runtime ignores SIGPIPE) would stay ignored in the
/// container program.
pub fn reset_signal_dispositions() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if matches!(s, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        let _ = unsafe { sigaction(s, &dfl) };
    }
    let _ = SigSet::all().thread_unblock();
}

// bpf(2) for cgroup v2 device programs (linux/bpf.h). The attr is the prefix of
// union bpf_attr that each command reads; unused bytes stay zero.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<i64> {
    // SAFETY: `attr` is a 128-byte buffer laid out as the union bpf_attr prefix
    // the command expects; every pointer stored in it outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn put32(a: &mut [u8; 128], off: usize, v: u32) {
    a[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(a: &mut [u8; 128], off: usize, v: u64) {
    a[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Load a BPF_PROG_TYPE_CGROUP_DEVICE program and make it the cgroup's device
/// filter: attach the new one (BPF_F_ALLOW_MULTI) *before* detaching the old
/// ones, so the cgroup is never left without a filter.
pub fn bpf_attach_device_program(
    cgroup: BorrowedFd<'_>,
    insns: &[u64],
    license: &CStr,
) -> io::Result<()> {
    let prog = bpf_load_program(
        BPF_PROG_TYPE_CGROUP_DEVICE,
        0,
        "",
        insns,
        license,
        64 * 1024,
    )?;
    let old = bpf_cgroup_programs(cgroup, BPF_CGROUP_DEVICE)?;
    bpf_cgroup_attach(cgroup, prog.as_fd(), BPF_CGROUP_DEVICE)?;
    for id in old {
        let Ok(old_fd) = bpf_program_fd(id) else {
            continue;
        };
        bpf_cgroup_detach(cgroup, old_fd.as_fd(), BPF_CGROUP_DEVICE)?;
    }
    Ok(())
}

/// BPF_PROG_LOAD with a verifier log of `log_size` bytes, quoted in the error.
fn bpf_load_program(
    prog_type: u32,
    expected_attach_type: u32,
    name: &str,
    insns: &[u64],
    license: &CStr,
    log_size: usize,
) -> io::Result<OwnedFd> {
    let mut log = vec![0u8; log_size];
    let mut a = [0u8; 128];
    put32(&mut a, 0, prog_type);
    put32(&mut a, 4, insns.len() as u32);
    put64(&mut a, 8, insns.as_ptr() as u64);
    put64(&mut a, 16, license.as_ptr() as u64);
    put32(&mut a, 24, 1); // log_level
    put32(&mut a, 28, log.len() as u32);
    put64(&mut a, 32, log.as_mut_ptr() as u64);
    let n = name.as_bytes();
    a[48..48 + n.len().min(15)].copy_from_slice(&n[..n.len().min(15)]);
    put32(&mut a, 68, expected_attach_type);
    bpf(BPF_PROG_LOAD, &mut a).map(new_fd).map_err(|e| {
        let end = log.iter().position(|b| *b == 0).unwrap_or(0);
        io::Error::new(
            e.kind(),
            format!(
                "BPF_PROG_LOAD: {e}: {}",
                String::from_utf8_lossy(&log[..end])
            ),
        )
    })
}

/// BPF_PROG_GET_FD_BY_ID.
fn bpf_program_fd(id: u32) -> io::Result<OwnedFd> {
    let mut g = [0u8; 128];
    put32(&mut g, 0, id);
    bpf(BPF_PROG_GET_FD_BY_ID, &mut g).map(new_fd)
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
/// attach type of a cgroup `connect4` program (bpf_sock_addr, IPv4 connect).
pub const BPF_CGROUP_INET4_CONNECT: u32 = 10;

/// A fresh fd the kernel just returned.
fn new_fd(fd: i64) -> OwnedFd {
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// A BPF hash map with its key and value sizes, so that every access passes
/// buffers of exactly the sizes the kernel will read or write.
pub struct BpfMap {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl BpfMap {
    /// BPF_MAP_CREATE of a hash map named `name` (at most 15 bytes).
    pub fn create_hash(
        name: &str,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> io::Result<BpfMap> {
        let mut a = [0u8; 128];
        put32(&mut a, 0, BPF_MAP_TYPE_HASH);
        put32(&mut a, 4, key_size);
        put32(&mut a, 8, value_size);
        put32(&mut a, 12, max_entries);
        let n = name.as_bytes();
        a[28..28 + n.len().min(15)].copy_from_slice(&n[..n.len().min(15)]);
        let fd = new_fd(bpf(BPF_MAP_CREATE, &mut a)?);
        Ok(BpfMap {
            fd,
            key_size: key_size as usize,
            value_size: value_size as usize,
        })
    }

    /// The map with id `id` (BPF_MAP_GET_FD_BY_ID), its sizes read back.
    pub fn by_id(id: u32) -> io::Result<BpfMap> {
        let mut a = [0u8; 128];
        put32(&mut a, 0, id);
        let fd = new_fd(bpf(BPF_MAP_GET_FD_BY_ID, &mut a)?);
        // struct bpf_map_info: type, id, key_size, value_size, ...
        let mut info = [0u8; 128];
        let mut q = [0u8; 128];
        put32(&mut q, 0, fd.as_raw_fd() as u32);
        put32(&mut q, 4, info.len() as u32);
        put64(&mut q, 8, info.as_mut_ptr() as u64);
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut q)?;
        let word = |o: usize| {
            u32::from_ne_bytes([info[o], info[o + 1], info[o + 2], info[o + 3]]) as usize
        };
        Ok(BpfMap {
            fd,
            key_size: word(8),
            value_size: word(12),
        })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn check(&self, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v.len() != self.value_size) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(())
    }

    /// BPF_MAP_UPDATE_ELEM (create or replace).
    pub fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.check(key, Some(value))?;
        let mut a = [0u8; 128];
        put32(&mut a, 0, self.fd.as_raw_fd() as u32);
        put64(&mut a, 8, key.as_ptr() as u64);
        put64(&mut a, 16, value.as_ptr() as u64);
        bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
    }

    /// BPF_MAP_DELETE_ELEM; a missing key is fine.
    pub fn delete(&self, key: &[u8]) -> io::Result<()> {
        self.check(key, None)?;
        let mut a = [0u8; 128];
        put32(&mut a, 0, self.fd.as_raw_fd() as u32);
        put64(&mut a, 8, key.as_ptr() as u64);
        match bpf(BPF_MAP_DELETE_ELEM, &mut a) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Every key in the map (BPF_MAP_GET_NEXT_KEY from the start).
    pub fn keys(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut next = vec![0u8; self.key_size];
            let mut a = [0u8; 128];
            put32(&mut a, 0, self.fd.as_raw_fd() as u32);
            if let Some(prev) = out.last() {
                put64(&mut a, 8, prev.as_ptr() as u64);
            }
            put64(&mut a, 16, next.as_mut_ptr() as u64);
            match bpf(BPF_MAP_GET_NEXT_KEY, &mut a) {
                Ok(_) => out.push(next),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Loads a BPF_PROG_TYPE_CGROUP_SOCK_ADDR program named `name` for attach type
/// `attach_type` (the kernel's verifier checks every instruction, map fds in
/// 64-bit immediates included).
pub fn bpf_load_sock_addr_program(
    name: &str,
    insns: &[u64],
    license: &CStr,
    attach_type: u32,
) -> io::Result<OwnedFd> {
    bpf_load_program(
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        attach_type,
        name,
        insns,
        license,
        16 * 1024,
    )
}

/// BPF_PROG_ATTACH of `prog` to `cgroup` with BPF_F_ALLOW_MULTI.
pub fn bpf_cgroup_attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut a = [0u8; 128];
    put32(&mut a, 0, cgroup.as_raw_fd() as u32);
    put32(&mut a, 4, prog.as_raw_fd() as u32);
    put32(&mut a, 8, attach_type);
    put32(&mut a, 12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut a).map(drop)
}

/// BPF_PROG_DETACH of `prog` from `cgroup`.
pub fn bpf_cgroup_detach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut a = [0u8; 128];
    put32(&mut a, 0, cgroup.as_raw_fd() as u32);
    put32(&mut a, 4, prog.as_raw_fd() as u32);
    put32(&mut a, 8, attach_type);
    bpf(BPF_PROG_DETACH, &mut a).map(drop)
}

/// Ids of the programs attached directly to `cgroup` for `attach_type`.
pub fn bpf_cgroup_programs(cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut a = [0u8; 128];
    put32(&mut a, 0, cgroup.as_raw_fd() as u32);
    put32(&mut a, 4, attach_type);
    put64(&mut a, 16, ids.as_mut_ptr() as u64);
    put32(&mut a, 24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut a)?;
    let n = u32::from_ne_bytes([a[24], a[25], a[26], a[27]]) as usize;
    Ok(ids[..n.min(ids.len())].to_vec())
}

/// The program with id `id`, its name and the id of its first map (if any).
pub fn bpf_program_by_id(id: u32) -> io::Result<(OwnedFd, String, Option<u32>)> {
    let fd = bpf_program_fd(id)?;
    // struct bpf_prog_info: nr_map_ids at 52, map_ids at 56, name[16] at 64.
    let mut map_ids = [0u32; 1];
    let mut info = [0u8; 128];
    put32(&mut info, 52, map_ids.len() as u32);
    put64(&mut info, 56, map_ids.as_mut_ptr() as u64);
    let mut q = [0u8; 128];
    put32(&mut q, 0, fd.as_raw_fd() as u32);
    put32(&mut q, 4, 80); // info_len: up to and including name
    put64(&mut q, 8, info.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut q)?;
    let name = &info[64..80];
    let name = String::from_utf8_lossy(&name[..name.iter().position(|b| *b == 0).unwrap_or(16)])
        .to_string();
    let nr = u32::from_ne_bytes([info[52], info[53], info[54], info[55]]);
    Ok((fd, name, (nr > 0 && map_ids[0] != 0).then_some(map_ids[0])))
}

/// The cookie of the calling thread's network namespace (SO_NETNS_COOKIE, 5.14+).
pub fn netns_cookie() -> io::Result<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let s = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` (8) bytes into `cookie`.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

/// fsopen(2): a filesystem context for `fstype` (e.g. "overlay"), close-on-exec.
pub fn fsopen(fstype: &str) -> io::Result<OwnedFd> {
    let name = CString::new(fstype).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `name` is a valid C string; FSOPEN_CLOEXEC = 1. The kernel returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), 1 as libc::c_uint) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// fsconfig(2) FSCONFIG_SET_STRING `key=value` on a context from [`fsopen`].
/// Each call is one option, so no option string is limited to a page (overlay's
/// repeated "lowerdir+" keys, Linux >= 6.8).
pub fn fsconfig_set_string(fsfd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let ckey = cstr(key.as_bytes())?;
    let cval = cstr(value)?;
    // FSCONFIG_SET_STRING = 1 takes `value` as a string and aux = 0.
    fsconfig(fsfd, 1, ckey.as_ptr(), cval.as_ptr().cast(), 0)
}

/// The fsconfig(2) syscall; every public wrapper passes pointers that live across the call.
fn fsconfig(
    fsfd: BorrowedFd<'_>,
    cmd: libc::c_uint,
    key: *const libc::c_char,
    value: *const libc::c_void,
    aux: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `key` is NULL or a valid C string and `value` NULL or valid for `cmd`
    // (the callers' contract above), both alive for the call; the kernel only reads them.
    let ret = unsafe { libc::syscall(libc::SYS_fsconfig, fsfd.as_raw_fd(), cmd, key, value, aux) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// fsconfig(2) FSCONFIG_CMD_CREATE: build the superblock from the options set so far.
pub fn fsconfig_create(fsfd: BorrowedFd<'_>) -> io::Result<()> {
    // FSCONFIG_CMD_CREATE = 6 takes no key, value or aux.
    fsconfig(fsfd, 6, std::ptr::null(), std::ptr::null(), 0)
}

/// fsmount(2): a detached mount (close-on-exec fd) of a created context; `attr_flags` are MOUNT_ATTR_*.
pub fn fsmount(fsfd: BorrowedFd<'_>, attr_flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; FSMOUNT_CLOEXEC = 1. Returns a new fd or -1.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fsfd.as_raw_fd(),
            1 as libc::c_uint,
            attr_flags as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// move_mount(2) of the detached mount `from` (MOVE_MOUNT_F_EMPTY_PATH) onto `to_path`.
pub fn move_mount_to(from: BorrowedFd<'_>, to_path: &Path) -> io::Result<()> {
    let empty = CString::new("").map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let cto = cstring(to_path)?;
    // SAFETY: both strings are valid C strings; AT_FDCWD resolves `to_path`
    // relative to the cwd; MOVE_MOUNT_F_EMPTY_PATH = 4 makes `from` itself the source.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            cto.as_ptr(),
            4 as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// open_tree(2) with OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC: a detached copy of the
/// mount at `path` (the subtree too when `recursive`), not attached anywhere, so it
/// can be changed (e.g. idmapped) without touching the original and disappears
/// when the last fd and user of it go.
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    // OPEN_TREE_CLONE = 1; OPEN_TREE_CLOEXEC = O_CLOEXEC.
    let mut flags = 1 | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `cpath` is a valid C string for the call; the kernel returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, cpath.as_ptr(), flags) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// mount_setattr(2) MOUNT_ATTR_IDMAP on the detached mount `mnt` (from
/// [`open_tree_clone`]): files appear with their on-disk ids mapped through
/// `userns`'s uid_map/gid_map (on-disk 0 is seen as the host id container 0 maps
/// to), and ids written through the mount are mapped back.
pub fn mount_setattr_idmap(mnt: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = CString::new("").map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `attr` is a struct mount_attr (MOUNT_ATTR_SIZE_VER0 = 32 bytes) that
    // outlives the call; `empty` is a valid C string; AT_EMPTY_PATH makes `mnt` itself
    // the target.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsconfig(2) FSCONFIG_SET_FD `key` = `fd` (e.g. overlay's "lowerdir+" given a
/// detached mount, Linux >= 6.13). EINVAL on kernels or keys that take no fd.
pub fn fsconfig_set_fd(fsfd: BorrowedFd<'_>, key: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
    let ckey = cstr(key.as_bytes())?;
    // FSCONFIG_SET_FD = 5 takes value NULL and the fd in aux; the kernel takes its own
    // reference to the fd's file.
    fsconfig(fsfd, 5, ckey.as_ptr(), std::ptr::null(), fd.as_raw_fd())
}

/// An fd of a new user namespace whose uid_map and gid_map are `uid_map` and
/// `gid_map` (the text of /proc/PID/uid_map: "inside outside count" lines), for
/// [`mount_setattr_idmap`]. Needs CAP_SETUID/CAP_SETGID over the host ids named.
///
/// A namespace needs a process to be created in: a child made with
/// clone(CLONE_NEWUSER) that sleeps in pause(2) until this call has the
/// namespace's fd and SIGKILLs it. It is a raw clone without CLONE_VM (a fork),
/// sound in a multi-threaded caller because the child calls nothing but
/// prctl(2) and pause(2), async-signal-safe and allocation-free. The child must
/// not wait on anything another thread's child could hold: it once waited for
/// EOF on a pipe, and two concurrent calls each forked a copy of the other's
/// write end, so each child waited for the other forever.
pub fn user_namespace_fd(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack: the child runs on a
    // copy-on-write copy of this stack). The child branch below only makes raw
    // syscalls and never returns, so no Rust state, lock or allocator is used there.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if ret == 0 {
        // SAFETY: in the child: die with the thread that made us (if it dies
        // before killing us), then sleep until killed; never returns.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            loop {
                libc::pause();
            }
        }
    }
    let pid = Pid::from_raw(ret as libc::pid_t);
    let result = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        std::fs::File::open(format!("/proc/{pid}/ns/user")).map(OwnedFd::from)
    })();
    // The namespace lives on through the fd; the child has done its part.
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    result
}

/// Install a classic-BPF seccomp program (the raw `struct sock_filter` array,
/// 8 bytes per instruction, as libseccomp's `seccomp_export_bpf` writes it) on
/// the calling thread with seccomp(SECCOMP_SET_MODE_FILTER, flags).
pub fn seccomp_set_filter(program: &[u8], flags: u32) -> io::Result<()> {
    if program.is_empty() || program.len() % 8 != 0 || program.len() / 8 > u16::MAX as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // Decoded into properly aligned structs (the byte slice may be unaligned).
    let mut insns: Vec<libc::sock_filter> = program
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `insns`, which lives until after the call; the
    // kernel copies the program and keeps no pointer into our memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsconfig(2) FSCONFIG_SET_FLAG: a boolean option such as overlayfs's `volatile`.
pub fn fsconfig_set_flag(fsfd: BorrowedFd<'_>, key: &str) -> io::Result<()> {
    let ckey = cstr(key.as_bytes())?;
    // FSCONFIG_SET_FLAG = 0 takes no value and aux = 0.
    fsconfig(fsfd, 0, ckey.as_ptr(), std::ptr::null(), 0)
}
