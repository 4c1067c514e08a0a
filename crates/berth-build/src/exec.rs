//! exec: a build step's root filesystem and the RUN container.
//!
//! A step mounts the image-so-far as overlay lowers with a fresh upper dir; what
//! the step changes lands in the upper dir, which becomes the new layer (overlay
//! already records deletions as whiteouts, which the store packs as `.wh.` files).
//! RUN is a real container: the engine's spec generator and security defaults
//! (Docker's capabilities, seccomp profile, masked paths), a network namespace
//! from berth-net (bridge by default, as `docker build`), and the OCI runtime's
//! `run` in the foreground with the build's stdout/stderr — no monitor, no record.
//!
//! Invariant: every mount and network attachment made here is undone by a Drop
//! guard, so a failing or interrupted step leaves nothing behind; a build that
//! is killed outright leaves a scratch dir whose flock is free, removed by the
//! next build.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_engine::record::{Config, Container, HostConfig};
use berth_engine::Engine;

use crate::BuildError;

/// Runtime mountpoints a RUN may leave in the upper dir when the image lacks
/// them; removed again when they are empty and were not there before.
const MOUNTPOINTS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc",
    "proc",
    "sys",
    "dev",
];

/// An overlay of `lowers` + a fresh upper dir, mounted at `<dir>/rootfs`.
pub struct Mounted {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
}

impl Mounted {
    pub fn new(dir: PathBuf, lowers: Vec<PathBuf>) -> Result<Mounted, BuildError> {
        let rootfs = dir.join("rootfs");
        let upper = dir.join("upper");
        fs::create_dir_all(&rootfs)
            .map_err(|e| BuildError::io(format!("create {}", rootfs.display()), e))?;
        let ov = berth_image::snapshot::Overlay {
            lowers,
            upper: upper.clone(),
            work: dir.join("work"),
        };
        let mut m = Mounted {
            dir,
            rootfs,
            upper,
            mounted: false,
        };
        // volatile: the upper dir is packed once and deleted; syncing it on unmount
        // only to free its blocks again cost ~3 ms per file here
        ov.mount_volatile(&m.rootfs)
            .map_err(|e| BuildError::Step(format!("mount the step's rootfs: {e}")))?;
        m.mounted = true;
        Ok(m)
    }

    pub fn unmount(&mut self) -> Result<(), BuildError> {
        if self.mounted {
            berth_image::snapshot::unmount(&self.rootfs)
                .map_err(|e| BuildError::Step(format!("unmount the step's rootfs: {e}")))?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Does the upper dir hold any change?
    pub fn changed(&self) -> bool {
        fs::read_dir(&self.upper)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.unmount();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What one RUN needs.
pub struct RunSpec {
    pub id: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// `bridge` (default), `host`, `none`, or a berth network's name.
    pub network: String,
    /// Capture output to this file instead of passing it through (`-q`).
    pub capture: Option<PathBuf>,
}

/// The network and scratch record of a RUN container, undone on drop.
struct RunGuard<'a> {
    engine: &'a Engine,
    c: Container,
    attached: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if self.attached {
            let _ = berth_engine::network::detach(self.engine, &self.c);
        }
        let rt = self.engine.runtime_for(&self.c);
        if rt.has_state(&self.c.id) {
            let _ = rt.delete(&self.c.id);
        }
        let _ = fs::remove_dir_all(self.engine.root.container_dir(&self.c.id));
    }
}

/// Run `spec` as a container on the mounted root; returns its exit code.
pub fn run(engine: &Engine, m: &Mounted, spec: &RunSpec) -> Result<i32, BuildError> {
    let present: Vec<bool> = MOUNTPOINTS
        .iter()
        .map(|p| fs::symlink_metadata(m.rootfs.join(p)).is_ok())
        .collect();
    let hc = HostConfig {
        network_mode: spec.network.clone(),
        ..Default::default()
    };
    let c = Container {
        id: spec.id.clone(),
        name: spec.id.clone(),
        config: Config {
            cmd: spec.argv.clone(),
            env: spec.env.clone(),
            working_dir: spec.workdir.clone(),
            user: spec.user.clone(),
            hostname: spec.id[..12.min(spec.id.len())].to_string(),
            ..Default::default()
        },
        host_config: hc,
        ..Default::default()
    };
    let cdir = engine.root.container_dir(&c.id);
    fs::create_dir_all(cdir.join("etc"))
        .map_err(|e| BuildError::io(format!("create {}", cdir.display()), e))?;
    let mut guard = RunGuard {
        engine,
        c,
        attached: false,
    };
    let net = berth_engine::network::attach(engine, &guard.c)
        .map_err(|e| BuildError::Step(e.to_string()))?;
    guard.attached = true;
    let c = &guard.c;
    let user = berth_engine::users::resolve_in_rootfs(&m.rootfs, &c.config.user, &[])
        .map_err(|e| BuildError::Step(e.to_string()))?;
    let input = berth_engine::spec::SpecInput {
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids.clone(),
        netns: net.netns.clone(),
        etc_files: net.etc_files.clone(),
        ..Default::default()
    };
    let value = berth_engine::spec::generate(c, &input);
    let mut oci: oci_spec::runtime::Spec = serde_json::from_value(value)
        .map_err(|e| BuildError::Step(format!("generated spec: {e}")))?;
    let sec = berth_engine::lifecycle::security_options(&c.host_config)
        .map_err(|e| BuildError::Step(e.to_string()))?;
    berth_engine::security::apply(&mut oci, &sec, user.uid == 0)
        .map_err(|e| BuildError::Step(e.to_string()))?;
    let mut root = oci.root().clone().unwrap_or_default();
    root.set_path(m.rootfs.clone());
    root.set_readonly(Some(false));
    oci.set_root(Some(root));
    let bundle = m.dir.join("bundle");
    fs::create_dir_all(&bundle).map_err(|e| BuildError::io("create bundle", e))?;
    let json = serde_json::to_vec(&oci).map_err(|e| BuildError::Step(format!("spec: {e}")))?;
    fs::write(bundle.join("config.json"), json)
        .map_err(|e| BuildError::io("write config.json", e))?;

    let rt = engine.runtime_for(c);
    let mut cmd: Command = rt.command();
    cmd.arg("run").arg("--bundle").arg(&bundle).arg(&c.id);
    cmd.stdin(Stdio::null());
    if let Some(path) = &spec.capture {
        let f = fs::File::create(path)
            .map_err(|e| BuildError::io(format!("create {}", path.display()), e))?;
        let f2 = f.try_clone().map_err(|e| BuildError::io("dup", e))?;
        cmd.stdout(f).stderr(f2);
    }
    let status = cmd
        .status()
        .map_err(|e| BuildError::io(format!("exec {}", rt.binary.display()), e))?;
    let code = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 255,
    };
    drop(guard);
    // the runtime's mountpoints, where the image had none: not part of the layer
    for (p, was) in MOUNTPOINTS.iter().zip(present) {
        if was {
            continue;
        }
        let u = m.upper.join(p);
        if let Ok(md) = fs::symlink_metadata(&u) {
            if md.is_file() && md.len() == 0 {
                let _ = fs::remove_file(&u);
            } else if md.is_dir() {
                let _ = fs::remove_dir(&u); // only when empty
            }
        }
    }
    Ok(code)
}

/// A unique id for a step container: `build-<pid>-<n>-<nanos>`, hashed to 64 hex
/// like container ids (runtimes and cgroup paths expect simple names).
pub fn step_id(seq: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    crate::context::sha256_hex(format!("build-{}-{seq}-{nanos}", std::process::id()).as_bytes())
}

/// Remove debris of killed builds: scratch dirs whose owner's flock is free.
pub fn clean_debris(tmp: &Path) {
    let Ok(rd) = fs::read_dir(tmp) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("lock") {
            continue;
        }
        let Ok(f) = fs::OpenOptions::new().write(true).open(&p) else {
            continue;
        };
        let Ok(_l) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let dir = p.with_extension("");
        // a killed build may have left overlays mounted inside
        if let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") {
            let prefix = dir.to_string_lossy().into_owned();
            for line in mounts.lines() {
                if let Some(mp) = line.split(' ').nth(4) {
                    if mp.starts_with(&prefix) {
                        let _ = berth_image::snapshot::unmount(Path::new(mp));
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_file(&p);
    }
}

pub fn io_error(what: &str, e: io::Error) -> BuildError {
    BuildError::io(what.to_string(), e)
}
