//! Reading and writing cgroupfs files, and running a write plan with rollback.
//!
//! Owns: every `open`/`read`/`write`/`mkdir`/`rmdir` this crate does on cgroupfs.
//!
//! Invariants:
//! - Every access is `<controller directory>/<file name>`; file names are constants or
//!   validated by the caller ([`check_file_name`]: no `/`, not `.`/`..`), so a write can
//!   only land inside the manager's own directory. (Plain paths, not dirfds: cgroupfs has
//!   no symlinks and only root can create directories in it; the directories themselves
//!   come from [`crate::Hierarchy`] and a cleaned `cgroupsPath`.)
//! - Files are opened `O_WRONLY|O_TRUNC` **without** `O_CREAT`: the kernel provides every
//!   cgroup file, so a missing one means a missing controller, never a file to create.
//!   Each value is one `write(2)`, as the kernel parses one write at a time.
//! - [`execute`] applies [`Step`]s in order; when one fails, the values already written
//!   are restored in reverse order from what was read before writing (netavark's
//!   "undo in reverse, report both" pattern), so `set`/`update` never leaves a
//!   half-applied set of limits behind unless the rollback itself fails, which is then
//!   reported with the cause.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::devices::DeviceProgram;
use crate::error::CgroupError;

/// Attaches a `BPF_PROG_TYPE_CGROUP_DEVICE` program to the cgroup v2 directory `dir`,
/// replacing any program berth attached before. Implemented outside this crate (the bpf(2)
/// syscall needs `unsafe`, which only `berth-sys` may contain); see
/// [`crate::Manager::with_device_program_loader`].
pub type DeviceProgramLoader = fn(dir: &Path, program: &DeviceProgram) -> io::Result<()>;

/// Read a whole cgroup file.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Read a cgroup file, `None` if it does not exist (controller or feature absent).
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ENODEV: some files (e.g. memory.kmem.*) exist but cannot be read on newer kernels.
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Read a single unsigned number; `None` if the file is absent.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    match read_opt(dir, file)? {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| CgroupError::Parse {
                path: dir.join(file),
                content: s.trim().to_owned(),
            }),
    }
}

/// Whether `dir/file` exists.
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Write `value` to `dir/file` in one write(2).
pub(crate) fn write_raw(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.join(file))?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        ));
    }
    Ok(())
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, memory.oom_control) → lookups.
pub(crate) fn flat_keyed(text: &str) -> Vec<(&str, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k, v))
        })
        .collect()
}

pub(crate) fn key(kv: &[(&str, u64)], k: &str) -> Option<u64> {
    kv.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v)
}

/// Parse `cgroup.procs`.
pub(crate) fn parse_procs(path: &Path, text: &str) -> Result<Vec<i32>, CgroupError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
                path: path.to_owned(),
                content: l.to_owned(),
            })
        })
        .collect()
}

/// Pids in `dir/cgroup.procs`; empty if the directory is gone.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    match read_opt(dir, "cgroup.procs")? {
        None => Ok(Vec::new()),
        Some(text) => parse_procs(&dir.join("cgroup.procs"), &text),
    }
}

/// Pids in `dir` and every cgroup below it (a container may create child cgroups).
pub(crate) fn procs_recursive(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut out = procs(dir)?;
    for sub in subdirs(dir)? {
        out.extend(procs_recursive(&sub)?);
    }
    Ok(out)
}

/// Child directories (child cgroups) of `dir`; empty if `dir` is gone.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|source| CgroupError::Read {
            path: dir.to_owned(),
            source,
        })?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// A user-supplied file name (from `unified` or a hugepage size) must stay in `dir`.
pub(crate) fn check_file_name(field: &'static str, name: &str) -> Result<(), CgroupError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(CgroupError::InvalidValue {
            field,
            value: format!("{name:?}"),
            reason: "must be a plain cgroup file name".into(),
        });
    }
    Ok(())
}

/// One write of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// The OCI field it implements, for messages (`memory.limit`).
    pub field: &'static str,
    pub dir: PathBuf,
    pub file: String,
    pub value: String,
    /// What to write back if a later step fails (read before writing), if restorable.
    pub undo: Option<String>,
    /// On EINVAL, retry this write once after the next step (runc's cpu period/quota dance).
    pub retry_after_next: bool,
    /// Read back after writing and fail if the kernel stored something else (clamping).
    pub verify: bool,
}

/// One step of applying resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Write(Write),
    /// Attach a v2 device program (not undoable: the previous program is replaced).
    DeviceProgram {
        dir: PathBuf,
        program: DeviceProgram,
    },
}

impl Step {
    #[cfg(test)]
    pub fn as_write(&self) -> Option<&Write> {
        match self {
            Step::Write(w) => Some(w),
            Step::DeviceProgram { .. } => None,
        }
    }
}

/// An ordered list of steps built by the v1/v2 planners.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// Append a write whose undo value is the file's current single-line content.
    pub fn write(
        &mut self,
        field: &'static str,
        dir: &Path,
        file: &str,
        value: impl Into<String>,
    ) -> &mut Write {
        let undo = current_scalar(dir, file);
        self.write_with_undo(field, dir, file, value, undo)
    }

    /// Append a write with an explicit undo value.
    pub fn write_with_undo(
        &mut self,
        field: &'static str,
        dir: &Path,
        file: &str,
        value: impl Into<String>,
        undo: Option<String>,
    ) -> &mut Write {
        self.steps.push(Step::Write(Write {
            field,
            dir: dir.to_owned(),
            file: file.to_owned(),
            value: value.into(),
            undo,
            retry_after_next: false,
            verify: false,
        }));
        match self.steps.last_mut() {
            Some(Step::Write(w)) => w,
            _ => unreachable!("a write was just pushed"),
        }
    }

    #[cfg(test)]
    pub fn writes(&self) -> Vec<(String, String)> {
        self.steps
            .iter()
            .filter_map(Step::as_write)
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect()
    }
}

/// The current value of a one-line file, to restore it on rollback.
pub(crate) fn current_scalar(dir: &Path, file: &str) -> Option<String> {
    let s = fs::read_to_string(dir.join(file)).ok()?;
    let s = s.trim();
    (!s.is_empty() && !s.contains('\n')).then(|| s.to_owned())
}

/// The current line for device `dev` ("8:0") in a per-device file, or `absent` if none.
pub(crate) fn current_device_line(
    dir: &Path,
    file: &str,
    dev: &str,
    absent: String,
) -> Option<String> {
    let s = fs::read_to_string(dir.join(file)).ok()?;
    Some(
        s.lines()
            .find(|l| l.split_whitespace().next() == Some(dev))
            .map(str::to_owned)
            .unwrap_or(absent),
    )
}

/// Apply `plan`; on failure restore what was already written, in reverse.
pub(crate) fn execute(plan: Plan, loader: Option<DeviceProgramLoader>) -> Result<(), CgroupError> {
    let mut done: Vec<Write> = Vec::new();
    let mut deferred: Option<(Write, io::Error)> = None;
    for step in plan.steps {
        let result = match step {
            Step::Write(w) => match write_step(&w) {
                Ok(()) => {
                    done.push(w);
                    Ok(())
                }
                Err(err) => {
                    let einval = matches!(&err, CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EINVAL));
                    if w.retry_after_next && einval && deferred.is_none() {
                        let source = io::Error::from_raw_os_error(libc::EINVAL);
                        deferred = Some((w, source));
                        continue;
                    }
                    Err(err)
                }
            },
            Step::DeviceProgram { dir, program } => match loader {
                Some(load) => load(&dir, &program)
                    .map_err(|source| CgroupError::DeviceProgram { dir, source }),
                None => Err(CgroupError::Unsupported {
                    field: "devices",
                    reason: "cgroup v2 device rules need an eBPF device program loader \
                             (Manager::with_device_program_loader) and none is configured"
                        .into(),
                }),
            },
        };
        let result = result.and_then(|()| match deferred.take() {
            None => Ok(()),
            Some((w, _)) => write_step(&w).map(|()| done.push(w)),
        });
        if let Err(cause) = result {
            return Err(rollback(done, cause));
        }
    }
    if let Some((w, source)) = deferred {
        let err = CgroupError::Write {
            field: w.field,
            file: w.file,
            value: w.value,
            dir: w.dir,
            source,
        };
        return Err(rollback(done, err));
    }
    Ok(())
}

fn write_step(w: &Write) -> Result<(), CgroupError> {
    if let Err(source) = write_raw(&w.dir, &w.file, &w.value) {
        let (field, file, value, dir) = (w.field, w.file.clone(), w.value.clone(), w.dir.clone());
        // EBUSY on a memory limit: the kernel could not reclaim below the new value.
        let is_mem_limit = matches!(
            w.file.as_str(),
            "memory.limit_in_bytes" | "memory.memsw.limit_in_bytes"
        );
        if is_mem_limit && source.raw_os_error() == Some(libc::EBUSY) {
            let usage = read_u64_opt(&w.dir, "memory.usage_in_bytes").ok().flatten();
            return Err(CgroupError::MemoryBelowUsage {
                field,
                file,
                value,
                dir,
                usage,
                source,
            });
        }
        return Err(CgroupError::Write {
            field,
            file,
            value,
            dir,
            source,
        });
    }
    if w.verify {
        let got = read(&w.dir, &w.file)?;
        if got.trim() != w.value.trim() {
            return Err(CgroupError::Clamped {
                field: w.field,
                file: w.file.clone(),
                dir: w.dir.clone(),
                wanted: w.value.clone(),
                got: got.trim().to_owned(),
            });
        }
    }
    Ok(())
}

fn rollback(done: Vec<Write>, cause: CgroupError) -> CgroupError {
    let mut failures = Vec::new();
    for w in done.into_iter().rev() {
        let Some(undo) = &w.undo else { continue };
        if undo == &w.value {
            continue;
        }
        if let Err(e) = write_raw(&w.dir, &w.file, undo) {
            failures.push(format!(
                "restore {} to {undo} in {}: {e}",
                w.file,
                w.dir.display()
            ));
        }
    }
    if failures.is_empty() {
        cause
    } else {
        CgroupError::RollbackFailed {
            cause: Box::new(cause),
            failures,
        }
    }
}

/// `mkdir -p dir`, returning the directories it created (outermost first).
pub(crate) fn mkdir_all(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.exists() {
            break;
        }
        missing.push(d.to_owned());
        cur = d.parent();
    }
    missing.reverse();
    let mut created = Vec::new();
    for d in missing {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            // Another container may be creating the shared parent at the same moment.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                remove_created(&created);
                return Err(CgroupError::Create { path: d, source });
            }
        }
    }
    Ok(created)
}

/// Best-effort rmdir of directories this call created, innermost first.
pub(crate) fn remove_created(created: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for d in created.iter().rev() {
        if let Err(e) = fs::remove_dir(d) {
            if e.kind() != io::ErrorKind::NotFound {
                failures.push(format!("remove {}: {e}", d.display()));
            }
        }
    }
    failures
}

/// rmdir `dir` and any child cgroups (deepest first), retrying EBUSY briefly (a killed
/// process may take a moment to leave; runc `RemovePath` retries the same way).
/// A directory that is already gone counts as removed.
pub(crate) fn remove_cgroup(dir: &Path) -> Result<(), CgroupError> {
    for sub in subdirs(dir)? {
        remove_cgroup(&sub)?;
    }
    let mut delay = std::time::Duration::from_millis(10);
    for attempt in 0..8 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 7 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_in_reverse() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::write(d.join("a"), "1\n").unwrap();
        fs::write(d.join("b"), "2\n").unwrap();
        let mut plan = Plan::default();
        plan.write("x.a", d, "a", "10");
        plan.write("x.b", d, "b", "20");
        plan.write("x.c", d, "c", "30"); // no such file: fails
        let err = execute(plan, None).unwrap_err();
        assert!(
            matches!(&err, CgroupError::Write { file, .. } if file == "c"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "1");
        assert_eq!(fs::read_to_string(d.join("b")).unwrap(), "2");
    }

    #[test]
    fn rollback_failure_is_reported_with_the_cause() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        // "a" was written, but by rollback time it cannot be written back (now a directory).
        fs::create_dir(d.join("a")).unwrap();
        let done = vec![Write {
            field: "x.a",
            dir: d.to_owned(),
            file: "a".into(),
            value: "10".into(),
            undo: Some("1".into()),
            retry_after_next: false,
            verify: false,
        }];
        let err = rollback(done, CgroupError::NoFreezer);
        assert!(
            matches!(&err, CgroupError::RollbackFailed { cause, .. } if matches!(**cause, CgroupError::NoFreezer))
        );
        let msg = err.to_string();
        assert!(
            msg.contains("rolling back") && msg.contains("restore a to 1"),
            "{msg}"
        );
    }

    #[test]
    fn verify_detects_clamping() {
        let t = tempfile::tempdir().unwrap();
        // Reads back something other than what was written, like a clamping kernel file.
        std::os::unix::fs::symlink("/dev/null", t.path().join("cpu.shares")).unwrap();
        let mut plan = Plan::default();
        plan.write("cpu.shares", t.path(), "cpu.shares", "5").verify = true;
        let err = execute(plan, None).unwrap_err();
        assert!(matches!(err, CgroupError::Clamped { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "cpu.shares: wrote 5 to cpu.shares in {} but the kernel kept \"\"",
                t.path().display()
            )
        );
    }

    #[test]
    fn mkdir_all_reports_created_and_remove_is_idempotent() {
        let t = tempfile::tempdir().unwrap();
        let leaf = t.path().join("berth/c1");
        let created = mkdir_all(&leaf).unwrap();
        assert_eq!(created, vec![t.path().join("berth"), leaf.clone()]);
        assert!(mkdir_all(&leaf).unwrap().is_empty());
        fs::create_dir(leaf.join("child")).unwrap();
        remove_cgroup(&leaf).unwrap();
        assert!(!leaf.exists());
        remove_cgroup(&leaf).unwrap();
    }

    #[test]
    fn file_names_stay_inside() {
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(check_file_name("unified", bad).is_err());
        }
        assert!(check_file_name("unified", "memory.high").is_ok());
    }
}
