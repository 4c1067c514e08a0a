//! runtime: the engine's only way to the OCI runtime — exec it with runc's
//! command line (`create`, `start`, `kill`, `delete`, `exec`, `pause`, ...).
//! Never a Cargo dependency, so `--runtime runc` drives runc the same way and
//! tests can tell engine bugs from runtime bugs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::EngineError;

#[derive(Debug, Clone)]
pub struct Runtime {
    /// The binary (a name looked up in PATH and beside `berth`, or a path).
    pub binary: PathBuf,
    /// Its `--root`: one state directory per runtime binary.
    pub root: PathBuf,
}

impl Runtime {
    pub fn new(binary: PathBuf, root: PathBuf) -> Runtime {
        Runtime { binary, root }
    }

    /// `berth-runtime ... ` with the global flags every call carries.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c
    }

    /// The argv for `run --detach` (create and start in one exec), handed to the
    /// monitor, which runs it so the container's init becomes its child.
    /// runc, crun and berth-runtime all take these flags.
    pub fn run_detached_argv(&self, id: &str, bundle: &Path, pid_file: &Path) -> Vec<String> {
        vec![
            self.binary.to_string_lossy().into_owned(),
            "--root".into(),
            self.root.to_string_lossy().into_owned(),
            "run".into(),
            "--detach".into(),
            "--bundle".into(),
            bundle.to_string_lossy().into_owned(),
            "--pid-file".into(),
            pid_file.to_string_lossy().into_owned(),
            id.into(),
        ]
    }

    fn run(&self, what: &str, args: &[&str]) -> Result<Output, EngineError> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| EngineError::io(format!("exec {}", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(EngineError::Runtime {
                op: what.into(),
                message: message(&out),
            });
        }
        Ok(out)
    }

    /// Whether the runtime keeps state for `id` (runc and berth-runtime both use
    /// `<root>/<id>/`): no state, nothing to delete — and no exec to pay for.
    pub fn has_state(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    pub fn kill(&self, id: &str, signal: i32) -> Result<(), EngineError> {
        self.run("kill", &["kill", id, &signal.to_string()])
            .map(drop)
    }

    /// `delete --force`: idempotent from the engine's point of view (an id the
    /// runtime does not know is already deleted).
    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        self.spawn_delete(id)?.wait()
    }

    /// [`Runtime::delete`] started and not waited for, so the caller can undo
    /// other things (network, rootfs mount) while the runtime removes its cgroups
    /// and state: an exec and a dozen rmdirs off the exit path.
    pub fn spawn_delete(&self, id: &str) -> Result<Deleting, EngineError> {
        let child = self
            .command()
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EngineError::io(format!("exec {}", self.binary.display()), e))?;
        Ok(Deleting(child))
    }

    pub fn pause(&self, id: &str) -> Result<(), EngineError> {
        self.run("pause", &["pause", id]).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<(), EngineError> {
        self.run("resume", &["resume", id]).map(drop)
    }

    pub fn update(&self, id: &str, resources_json: &Path) -> Result<(), EngineError> {
        let r = resources_json.to_string_lossy();
        self.run("update", &["update", "--resources", &r, id])
            .map(drop)
    }

    pub fn pids(&self, id: &str) -> Result<Vec<i32>, EngineError> {
        let out = self.run("ps", &["ps", "--format", "json", id])?;
        serde_json::from_slice(&out.stdout).map_err(|e| EngineError::Runtime {
            op: "ps".into(),
            message: format!("bad output: {e}"),
        })
    }
}

/// A `delete` in flight ([`Runtime::spawn_delete`]).
pub struct Deleting(Child);

impl Deleting {
    pub fn wait(self) -> Result<(), EngineError> {
        let out = self
            .0
            .wait_with_output()
            .map_err(|e| EngineError::io("wait for the runtime's delete", e))?;
        if out.status.success() {
            return Ok(());
        }
        let message = message(&out);
        if message.contains("does not exist")
            || message.contains("not exist")
            || message.contains("not found")
        {
            return Ok(());
        }
        Err(EngineError::Runtime {
            op: "delete".into(),
            message,
        })
    }
}

/// The runtime's last error line: runc-style runtimes print `level=error msg="…"`
/// or plain text on stderr.
fn message(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let line = line
        .split_once("msg=\"")
        .map(|(_, m)| m.trim_end_matches('"'))
        .unwrap_or(line);
    if line.is_empty() {
        format!("exited with {}", out.status)
    } else {
        line.to_string()
    }
}
