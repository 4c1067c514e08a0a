//! hooks: OCI lifecycle hooks (runtime-spec config.md "POSIX-platform Hooks").
//!
//! Each hook gets the container state JSON on stdin, its own args (args[0] is
//! argv[0]) and env, and is killed when its timeout (seconds) runs out.
//! prestart/createRuntime/poststart/poststop run in the runtime's namespaces;
//! createContainer/startContainer are run by the init, in the container's.
//! A failing hook fails the operation, except poststart and poststop,
//! whose failures are logged (runtime-spec: "MUST log a warning").

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{stage} hook #{index} ({path}): {msg}")]
    Failed {
        stage: &'static str,
        index: usize,
        path: String,
        msg: String,
    },
}

/// Run every hook of a stage whose failures are only warnings (poststart,
/// poststop): a failing hook is logged and the rest still run.
pub fn run_all_warn(stage: &'static str, hooks: &Option<Vec<Hook>>, state_json: &str) {
    for (index, h) in hooks.iter().flatten().enumerate() {
        if let Err(msg) = run_one(h, state_json) {
            let e = HookError::Failed {
                stage,
                index,
                path: h.path().display().to_string(),
                msg,
            };
            crate::logging::warn(&e.to_string());
        }
    }
}

pub fn run_all(
    stage: &'static str,
    hooks: &Option<Vec<Hook>>,
    state_json: &str,
) -> Result<(), HookError> {
    for (index, h) in hooks.iter().flatten().enumerate() {
        run_one(h, state_json).map_err(|msg| HookError::Failed {
            stage,
            index,
            path: h.path().display().to_string(),
            msg,
        })?;
    }
    Ok(())
}

fn run_one(h: &Hook, state_json: &str) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for kv in h.env().clone().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that doesn't read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    Err(format!(
        "{status}, stdout: {}, stderr: {}",
        out.trim(),
        err.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).expect("hook json")
    }

    #[test]
    fn hook_reads_state_and_env() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \"$FOO\" >> {}", out.display(), out.display())],
            "env": ["FOO=bar"]
        }));
        run_all("prestart", &Some(vec![h]), "{\"id\":\"x\"}").expect("hook runs");
        assert_eq!(
            std::fs::read_to_string(&out).expect("out"),
            "{\"id\":\"x\"}bar\n"
        );
    }

    #[test]
    fn failing_and_slow_hooks_error() {
        let bad = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 3"]}),
        );
        let e = run_all("createRuntime", &Some(vec![bad]), "{}")
            .expect_err("fails")
            .to_string();
        assert!(
            e.contains("createRuntime hook #0") && e.contains("oops"),
            "{e}"
        );
        let slow =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let e = run_all("prestart", &Some(vec![slow]), "{}")
            .expect_err("times out")
            .to_string();
        assert!(e.contains("timed out"), "{e}");
    }
}
