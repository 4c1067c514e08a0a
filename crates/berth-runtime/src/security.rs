//! security: user switch, capabilities, no_new_privs and seccomp for the
//! container process (init or exec).
//!
//! Ordering (runc's, for the same reasons):
//! 1. the bounding set is dropped while we still hold CAP_SETPCAP;
//! 2. PR_SET_KEEPCAPS, then setgroups/setresgid/setresuid, so the permitted set
//!    survives the switch to a non-root uid;
//! 3. effective/permitted/inheritable are set, then ambient (needs them);
//! 4. no_new_privs;
//! 5. seccomp. With no_new_privs the filter is loaded at the very end, right
//!    before execve, so it constrains nothing of ours; without it loading needs
//!    CAP_SYS_ADMIN, so it is loaded before capabilities are dropped.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxCapabilities, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use crate::plan::ProcessPlan;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("capabilities: {op}: {msg}")]
    Caps { op: &'static str, msg: String },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        source: nix::Error,
    },
    #[error("seccomp: {0}")]
    Seccomp(String),
}

fn caps_err(op: &'static str) -> impl FnOnce(caps::errors::CapsError) -> SecurityError {
    move |e| SecurityError::Caps {
        op,
        msg: e.to_string(),
    }
}

/// Capabilities named in the spec that this kernel knows; unknown names are
/// skipped with a warning, as runc does.
fn to_set(list: &Option<oci_spec::runtime::Capabilities>) -> CapsHashSet {
    let mut out = CapsHashSet::new();
    let last = last_cap();
    for c in list.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match Capability::from_str(&name) {
            Ok(cap) if u32::from(cap.index()) <= last => {
                out.insert(cap);
            }
            _ => crate::logging::warn(&format!(
                "capability {name} is not known to this kernel; ignored"
            )),
        }
    }
    out
}

fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// Step 1: drop every capability not in the bounding set.
pub fn drop_bounding(c: &LinuxCapabilities) -> Result<(), SecurityError> {
    let keep = to_set(c.bounding());
    let last = last_cap();
    for cap in caps::all() {
        if u32::from(cap.index()) > last || keep.contains(&cap) {
            continue;
        }
        caps::drop(None, CapSet::Bounding, cap).map_err(caps_err("drop bounding"))?;
    }
    Ok(())
}

/// Step 2: become the process's user. Keeps capabilities across the uid change.
pub fn switch_user(p: &ProcessPlan, setgroups_allowed: bool) -> Result<(), SecurityError> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let sys = |op| move |source| SecurityError::Sys { op, source };
    nix::sys::prctl::set_keepcaps(true).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    if setgroups_allowed {
        let groups: Vec<Gid> = p
            .additional_gids
            .iter()
            .map(|g| Gid::from_raw(*g))
            .collect();
        setgroups(&groups).map_err(sys("setgroups"))?;
    } else if !p.additional_gids.is_empty() {
        return Err(SecurityError::Sys {
            op: "setgroups (denied in this user namespace)",
            source: nix::Error::EPERM,
        });
    }
    let g = Gid::from_raw(p.gid);
    setresgid(g, g, g).map_err(sys("setresgid"))?;
    let u = Uid::from_raw(p.uid);
    setresuid(u, u, u).map_err(sys("setresuid"))?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys("prctl(PR_SET_KEEPCAPS)"))?;
    Ok(())
}

/// Step 3: effective, permitted, inheritable, then ambient.
pub fn apply_capabilities(c: &LinuxCapabilities) -> Result<(), SecurityError> {
    let permitted = to_set(c.permitted());
    let mut effective = to_set(c.effective());
    // The kernel refuses an effective cap outside permitted: clamp like runc.
    effective.retain(|x| permitted.contains(x));
    let inheritable = to_set(c.inheritable());
    // Order matters: raising permitted first keeps each step legal.
    caps::set(None, CapSet::Effective, &CapsHashSet::new()).map_err(caps_err("clear effective"))?;
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(caps_err("set inheritable"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(caps_err("set permitted"))?;
    caps::set(None, CapSet::Effective, &effective).map_err(caps_err("set effective"))?;
    let ambient = to_set(c.ambient());
    caps::clear(None, CapSet::Ambient).map_err(caps_err("clear ambient"))?;
    for cap in ambient {
        // An ambient cap must be permitted and inheritable; runc skips others with a warning.
        if caps::raise(None, CapSet::Ambient, cap).is_err() {
            crate::logging::debug(&format!("cannot raise ambient capability {cap}"));
        }
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs().map_err(|source| SecurityError::Sys {
        op: "prctl(PR_SET_NO_NEW_PRIVS)",
        source,
    })
}

/// Compile the spec's seccomp section into a libseccomp filter (not loaded yet).
pub fn compile_seccomp(s: &LinuxSeccomp) -> Result<ScmpFilterContext, SecurityError> {
    let e = |what: &str| {
        let what = what.to_string();
        move |err: libseccomp::error::SeccompError| SecurityError::Seccomp(format!("{what}: {err}"))
    };
    if s.listener_path().is_some() {
        return Err(SecurityError::Seccomp(
            "listenerPath (user notification) is not supported".into(),
        ));
    }
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(e("new filter"))?;
    // A syscall from an architecture not listed must fail, not slip through.
    ctx.set_act_badarch(ScmpAction::KillProcess)
        .map_err(e("bad arch action"))?;
    // We set no_new_privs ourselves when the spec asks; libseccomp must not force it.
    ctx.set_ctl_nnp(false).map_err(e("nnp"))?;
    // A binary tree of syscall numbers instead of libseccomp's default linear
    // list: on load the kernel runs the program once per syscall number and
    // architecture to build its action cache (1.5 ms for Docker's ~370-rule
    // profile as a list, here at every container start), and every syscall the
    // cache cannot answer (those with argument rules) walks the program. Needs
    // libseccomp 2.5; older ones keep the list.
    let _ = ctx.set_ctl_optimize(2);
    for a in s.architectures().clone().unwrap_or_default() {
        let arch = match a {
            Arch::ScmpArchNative => ScmpArch::Native,
            Arch::ScmpArchX86 => ScmpArch::X86,
            Arch::ScmpArchX86_64 => ScmpArch::X8664,
            Arch::ScmpArchX32 => ScmpArch::X32,
            Arch::ScmpArchArm => ScmpArch::Arm,
            Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
            // Architectures this host can never execute are harmless to skip.
            _ => continue,
        };
        ctx.add_arch(arch).map_err(e("add arch"))?;
    }
    for f in s.flags().clone().unwrap_or_default() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true).map_err(e("flag log"))?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true).map_err(e("flag spec_allow"))?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                ctx.set_ctl_tsync(true).map_err(e("flag tsync"))?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                ctx.set_ctl_waitkill(true)
                    .map_err(e("flag wait_killable_recv"))?;
            }
        }
    }
    for sc in s.syscalls().clone().unwrap_or_default() {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == default {
            // libseccomp rejects a rule equal to the default action; it is a no-op anyway.
            continue;
        }
        let mut conds = Vec::new();
        for a in sc.args().clone().unwrap_or_default() {
            let op = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                // OCI: value is the mask, valueTwo the value compared against.
                LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(a.value()),
            };
            let datum = if matches!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq) {
                a.value_two().unwrap_or(0)
            } else {
                a.value()
            };
            if a.index() > 5 {
                return Err(SecurityError::Seccomp(format!(
                    "argument index {} out of range",
                    a.index()
                )));
            }
            conds.push(ScmpArgCompare::new(a.index() as u32, op, datum));
        }
        for name in sc.names() {
            // Names unknown to this libseccomp (a newer kernel's syscall) are skipped, as runc does.
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                crate::logging::debug(&format!("seccomp: unknown syscall {name} skipped"));
                continue;
            };
            let res = if conds.is_empty() {
                ctx.add_rule(act, nr)
            } else {
                ctx.add_rule_conditional(act, nr, &conds)
            };
            res.map_err(e(&format!("rule for {name}")))?;
        }
    }
    Ok(ctx)
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, SecurityError> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SecurityError::Seccomp(
                "SCMP_ACT_NOTIFY needs listenerPath, which is not supported".into(),
            ))
        }
    })
}

/// A seccomp filter ready to load: the BPF program libseccomp generated and the
/// seccomp(2) flags the spec asked for. Built once in the runtime's parent
/// (before fork, so a bad profile fails before anything exists); the init only
/// hands the bytes to the kernel.
#[derive(Debug, Clone)]
pub struct Filter {
    bpf: Vec<u8>,
    flags: u32,
}

/// Bumped whenever what `compile_seccomp` generates for the same profile changes.
const SECCOMP_CACHE_FORMAT: &str = "berth-seccomp-bpf v1";

/// Compile `s` to BPF, or take the program from `<cache_dir>/<hash>.bpf`.
///
/// Compiling Docker's default profile (three architectures, ~350 syscalls) costs
/// milliseconds twice per container (libseccomp builds its database, then the
/// program); the same profile always yields the same program for the same
/// libseccomp and runtime binary. The cache key covers the profile (as JSON),
/// the libseccomp version and this binary's size and mtime; a cache file stores
/// the whole key next to the program and is used only if that key matches
/// byte for byte, so a hash collision or a stale file can only cost a compile.
pub fn prepare_seccomp(
    s: &LinuxSeccomp,
    cache_dir: Option<&std::path::Path>,
) -> Result<Filter, SecurityError> {
    let mut flags = 0u32;
    for f in s.flags().clone().unwrap_or_default() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            // Only meaningful with a notify listener, which is refused anyway.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        } as u32;
    }
    let key = cache_key(s);
    let path = match (cache_dir, &key) {
        (Some(d), Some(k)) => Some(d.join(format!("{:016x}.bpf", fnv1a(k)))),
        _ => None,
    };
    if let (Some(p), Some(k)) = (&path, &key) {
        if let Some(bpf) = read_cached(p, k) {
            return Ok(Filter { bpf, flags });
        }
    }
    let ctx = compile_seccomp(s)?;
    let bpf = export_bpf(&ctx, cache_dir)
        .map_err(|e| SecurityError::Seccomp(format!("export bpf: {e}")))?;
    if let (Some(p), Some(k)) = (&path, &key) {
        // Best effort: a read-only or full root only costs the next compile.
        let _ = write_cached(p, k, &bpf);
    }
    Ok(Filter { bpf, flags })
}

pub fn load_filter(f: &Filter) -> Result<(), SecurityError> {
    berth_sys::seccomp_set_filter(&f.bpf, f.flags)
        .map_err(|e| SecurityError::Seccomp(format!("load: {e}")))
}

/// libseccomp 2.5 exports only to an fd: an unnamed O_TMPFILE file, read back.
fn export_bpf(ctx: &ScmpFilterContext, dir: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek};
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = std::env::temp_dir();
    let dir = match dir {
        Some(d) if std::fs::create_dir_all(d).is_ok() => d,
        _ => tmp.as_path(),
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
        .map_err(|e| format!("temporary file in {}: {e}", dir.display()))?;
    ctx.export_bpf(&f).map_err(|e| e.to_string())?;
    let mut bpf = Vec::new();
    f.rewind().map_err(|e| e.to_string())?;
    f.read_to_end(&mut bpf).map_err(|e| e.to_string())?;
    Ok(bpf)
}

fn cache_key(s: &LinuxSeccomp) -> Option<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let v = libseccomp::ScmpVersion::current().ok()?;
    let mut key = format!(
        "{SECCOMP_CACHE_FORMAT}
libseccomp {}.{}.{}
exe {} {}.{}
",
        v.major,
        v.minor,
        v.micro,
        exe.size(),
        exe.mtime(),
        exe.mtime_nsec()
    )
    .into_bytes();
    key.extend(serde_json::to_vec(s).ok()?);
    Some(key)
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// File layout: key length (u64 LE), key, program.
fn read_cached(path: &std::path::Path, key: &[u8]) -> Option<Vec<u8>> {
    let data = std::fs::read(path).ok()?;
    let len = u64::from_le_bytes(data.get(..8)?.try_into().ok()?) as usize;
    let stored = data.get(8..8usize.checked_add(len)?)?;
    let bpf = &data[8 + len..];
    (stored == key && !bpf.is_empty() && bpf.len() % 8 == 0).then(|| bpf.to_vec())
}

fn write_cached(path: &std::path::Path, key: &[u8], bpf: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&(key.len() as u64).to_le_bytes())?;
    f.write_all(key)?;
    f.write_all(bpf)?;
    drop(f);
    // rename: a concurrent reader sees the old file or the whole new one.
    std::fs::rename(&tmp, path)
}

pub fn load_seccomp(ctx: &ScmpFilterContext) -> Result<(), SecurityError> {
    ctx.load()
        .map_err(|e| SecurityError::Seccomp(format!("load: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_a_docker_like_profile() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["read", "write", "exit_group", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }))
        .expect("profile json");
        let ctx = compile_seccomp(&s).expect("compile");
        let f = tempfile::tempfile().expect("tmp");
        ctx.export_bpf(&f).expect("export bpf");
        assert!(f.metadata().expect("meta").len() > 0);
    }

    #[test]
    fn notify_is_refused_clearly() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .expect("json");
        assert!(compile_seccomp(&s).is_err());
    }

    #[test]
    fn cached_program_is_the_compiled_one_and_a_bad_cache_file_is_ignored() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
        }))
        .expect("json");
        let expected = export_bpf(&compile_seccomp(&s).expect("compile"), None).expect("bpf");
        let dir = tempfile::tempdir().expect("tmp");
        let first = prepare_seccomp(&s, Some(dir.path())).expect("first");
        assert_eq!(first.bpf, expected);
        assert_eq!(first.flags, libc::SECCOMP_FILTER_FLAG_LOG as u32);
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .collect();
        assert_eq!(files.len(), 1, "one cache file, no temporary left");
        let path = files[0].path();
        assert_eq!(
            prepare_seccomp(&s, Some(dir.path())).expect("hit").bpf,
            expected
        );
        // A cache file whose stored key differs (collision, stale, corrupt) is not used.
        let mut data = std::fs::read(&path).expect("read");
        data[10] ^= 0xff;
        let n = data.len();
        data[n - 1] ^= 0xff;
        std::fs::write(&path, &data).expect("write");
        assert_eq!(
            prepare_seccomp(&s, Some(dir.path())).expect("miss").bpf,
            expected
        );
        // A different profile is a different key.
        let mut other = s.clone();
        other.set_default_errno_ret(Some(38));
        assert_ne!(cache_key(&s), cache_key(&other));
    }
}
