//! The cgroup v2 device filter: a program compiled by berth-cgroups
//! (`DeviceProgram`) and attached with berth-sys's bpf(2) wrapper really decides
//! what a process in the cgroup may open. This host's cgroup2 mount (hybrid
//! layout) accepts device programs even without controllers, so the v2 path is
//! tested on the real kernel here. Root only.

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Processes have exited (each check waits for its shell); the dir can go.
        let _ = fs::remove_dir(&self.0);
    }
}

fn unified_root() -> PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for line in info.lines() {
        if let Some((pre, post)) = line.split_once(" - ") {
            if post.starts_with("cgroup2 ") {
                return PathBuf::from(pre.split(' ').nth(4).expect("mount point"));
            }
        }
    }
    panic!("this test needs a cgroup2 mount (pure v2 or hybrid host)");
}

/// Run `script` in `sh` inside the cgroup; true if it exits 0.
fn allowed(dir: &Path, script: &str) -> bool {
    let procs = dir.join("cgroup.procs");
    let full = format!("echo $$ > {} && {script}", procs.display());
    Command::new("sh")
        .arg("-c")
        .arg(full)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn sh")
        .success()
}

fn attach(dir: &Path, rules: &str) {
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_str(rules).expect("rules json");
    let program = berth_cgroups::DeviceProgram::from_spec(&rules).expect("compile rules");
    let f = fs::File::open(dir).expect("open cgroup dir");
    let license = CString::new(berth_cgroups::DeviceProgram::LICENSE).expect("license");
    berth_sys::bpf_attach_device_program(f.as_fd(), program.instructions(), &license)
        .expect("attach program");
}

#[test]
fn device_program_allows_and_denies_per_rule() {
    assert!(nix::unistd::geteuid().is_root(), "needs root");
    let dir = unified_root().join(format!("berth-devprog-{}", std::process::id()));
    fs::create_dir(&dir).expect("create cgroup");
    let cg = Cgroup(dir);
    attach(
        &cg.0,
        r#"[{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}]"#,
    );
    assert!(
        allowed(&cg.0, "echo x > /dev/null"),
        "/dev/null rw is allowed"
    );
    assert!(
        allowed(&cg.0, "head -c1 /dev/zero >/dev/null"),
        "/dev/zero read is allowed"
    );
    assert!(
        !allowed(&cg.0, "echo x > /dev/zero"),
        "/dev/zero write is denied"
    );
    assert!(
        !allowed(&cg.0, "head -c1 /dev/urandom >/dev/null"),
        "/dev/urandom is denied"
    );
    // Replacing the program leaves exactly the new one in force.
    attach(&cg.0, r#"[{"allow": true, "access": "rwm"}]"#);
    assert!(
        allowed(&cg.0, "head -c1 /dev/urandom >/dev/null"),
        "after replacement everything is allowed"
    );
}
