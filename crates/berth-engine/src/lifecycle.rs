//! lifecycle: create → start → (monitor) → cleanup → restart or rm.
//!
//! ```text
//! berth run ──► create: validate flags, resolve image, reserve name, write record
//!           ──► start:  lock record
//!                        mount overlay (image layers + upper/work)      ─┐ undo in reverse
//!                        berth-net attach (netns, veth, nft, /etc files) │ on any failure
//!                        resolve --user in the image, generate spec      │
//!                        spawn berth-monitor ─► runtime run --detach ─► "ok <pid>"
//!                          (create + start in one exec; the process is running,
//!                          and the monitor holds off its output and exit ...)
//!                        record: running, pid                           ─┘
//!                        (hook: the CLI attaches here)
//!                        close the report pipe (... until here: the monitor goes on)
//! berth-monitor: logs, attach clients, waitpid ─► exit file ─► exec `berth container cleanup ID`
//!   (unless the attached `berth run` claimed the cleanup on the attach socket and
//!   reported it done: then the CLI ran `cleanup` itself, one exec of berth fewer)
//! cleanup: lock; OOM? (cgroup oom_kill); runtime delete ∥ (net detach; unmount);
//!          record: exited(code); then --rm, or the restart policy (with backoff)
//! ```
//! Every record change holds the container's lock; name reservation holds the
//! engine-wide names lock, so parallel `berth run`s never collide.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::events;
use crate::record::{Container, HostConfig, MountRecord, Records, Status};
use crate::root::Root;
use crate::runtime::Runtime;
use crate::spec::{self, SpecInput};
use crate::volume::Volumes;
use crate::EngineError;

pub struct Engine {
    pub root: Root,
    /// The OCI runtime used when a container does not name one.
    pub default_runtime: String,
    /// Where berth's own binaries live (berth, berth-monitor, berth-runtime, berth-init).
    pub bin_dir: PathBuf,
    images: std::cell::OnceCell<berth_image::Store>,
}

/// What `berth create`/`run` asks for, before merging with the image.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub image: String,
    pub cmd: Vec<String>,
    /// Some(vec![]) resets the image's entrypoint (`--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// `--expose 80[/udp]`, added to the image's ExposedPorts (for `-P`).
    pub expose: Vec<String>,
    pub host_config: HostConfig,
}

impl Engine {
    pub fn open(
        root_dir: &Path,
        run_dir: &Path,
        default_runtime: &str,
        bin_dir: PathBuf,
    ) -> Result<Engine, EngineError> {
        let root = Root::new(root_dir, run_dir)
            .map_err(|e| EngineError::io(format!("create {}", root_dir.display()), e))?;
        Ok(Engine {
            root,
            default_runtime: default_runtime.into(),
            bin_dir,
            images: Default::default(),
        })
    }

    pub fn images(&self) -> Result<&berth_image::Store, EngineError> {
        if let Some(s) = self.images.get() {
            return Ok(s);
        }
        let s = berth_image::Store::open(&self.root.image_dir())
            .map_err(|e| EngineError::Image(e.to_string()))?;
        Ok(self.images.get_or_init(|| s))
    }

    pub fn records(&self) -> Records<'_> {
        Records::new(&self.root)
    }

    pub fn volumes(&self) -> Volumes<'_> {
        Volumes::new(&self.root)
    }

    /// The runtime binary for a container: a bare name is looked up beside
    /// `berth` first (berth-runtime ships there), then in PATH.
    pub fn runtime_for(&self, c: &Container) -> Runtime {
        let name = if c.host_config.runtime.is_empty() {
            self.default_runtime.as_str()
        } else {
            c.host_config.runtime.as_str()
        };
        let binary = if name.contains('/') {
            PathBuf::from(name)
        } else {
            let beside = self.bin_dir.join(name);
            if beside.exists() {
                beside
            } else {
                PathBuf::from(name)
            }
        };
        let root = self.root.runtime_root(name);
        // never the writable host file itself: CVE-2019-5736
        let binary = crate::security::runtime_exe::protect(&binary, &self.root.run.join("exe"));
        Runtime::new(binary, root)
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.root.container_run(id).join("bundle")
    }

    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.bundle(id).join("rootfs")
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.root.container_dir(id).join("log.json")
    }

    /// Unix socket paths are limited to 108 bytes: sockets live in a short
    /// per-container directory, `<run>/s/<id12>/`.
    pub fn socket_dir(&self, id: &str) -> PathBuf {
        self.root.run.join("s").join(&id[..12.min(id.len())])
    }

    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.socket_dir(id).join("attach.sock")
    }

    // ---------------------------------------------------------------- create

    pub fn create(&self, req: CreateRequest) -> Result<Container, EngineError> {
        if let Some(n) = &req.name {
            if !crate::names::is_valid_name(n) {
                return Err(EngineError::Invalid(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let hc = &req.host_config;
        if !hc.runtime.is_empty() {
            let rt = self.runtime_for(&Container {
                host_config: hc.clone(),
                ..Default::default()
            });
            if which(&rt.binary).is_none() {
                return Err(EngineError::Invalid(format!(
                    "unknown or invalid runtime name: {}",
                    hc.runtime
                )));
            }
        }
        for m in &hc.mounts {
            if m.kind == "bind" {
                let p = Path::new(&m.source);
                if !p.is_absolute() {
                    return Err(EngineError::Invalid(format!(
                        "invalid mount config: bind source {:?} must be an absolute path",
                        m.source
                    )));
                }
                if !p.exists() {
                    return Err(EngineError::Invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    )));
                }
            }
        }
        crate::security::userns::validate("--uidmap", &hc.uid_maps)
            .and_then(|_| crate::security::userns::validate("--gidmap", &hc.gid_maps))
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let userns = !hc.uid_maps.is_empty() || hc.userns_mode.starts_with("auto");
        if userns && hc.privileged {
            // docker's rule: privileged means the host's ids
            return Err(EngineError::Invalid(
                "conflicting options: --privileged and a user namespace (--userns=host is implied)"
                    .into(),
            ));
        }
        if hc.auto_remove && hc.restart_policy.name != "no" && !hc.restart_policy.name.is_empty() {
            return Err(EngineError::Invalid(
                "conflicting options: --restart and --rm".into(),
            ));
        }
        let image = self.images()?.resolve(&req.image).map_err(|e| {
            EngineError::Image(format!("unable to find image '{}' locally: {e}", req.image))
        })?;
        let ic = image.config.config().clone().unwrap_or_default();

        let id = crate::names::new_id();
        let mut c = Container {
            id: id.clone(),
            created: crate::time::now(),
            ..Default::default()
        };
        c.config.image = req.image.clone();
        c.config.image_id = image.id.clone();
        c.config.entrypoint = match &req.entrypoint {
            Some(e) => e.clone(),
            None => ic.entrypoint().clone().unwrap_or_default(),
        };
        c.config.cmd = if !req.cmd.is_empty() {
            req.cmd.clone()
        } else if req.entrypoint.is_some() {
            Vec::new()
        } else {
            ic.cmd().clone().unwrap_or_default()
        };
        if c.config.entrypoint.is_empty() && c.config.cmd.is_empty() {
            return Err(EngineError::Invalid("no command specified".into()));
        }
        c.config.env = ic.env().clone().unwrap_or_default();
        c.config.env.extend(req.env.iter().cloned());
        c.config.working_dir = req
            .working_dir
            .clone()
            .or_else(|| ic.working_dir().clone())
            .unwrap_or_default();
        c.config.user = req
            .user
            .clone()
            .or_else(|| ic.user().clone())
            .unwrap_or_default();
        c.config.hostname = req.hostname.clone().unwrap_or_else(|| id[..12].to_string());
        c.config.domainname = req.domainname.clone().unwrap_or_default();
        c.config.labels = ic
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        c.config.labels.extend(req.labels.clone());
        c.config.tty = req.tty;
        c.config.open_stdin = req.open_stdin;
        c.config.stop_signal = req
            .stop_signal
            .clone()
            .or_else(|| ic.stop_signal().clone())
            .unwrap_or_else(|| "SIGTERM".into());
        crate::parse::signal(&c.config.stop_signal)?;
        c.config.stop_timeout = req.stop_timeout;
        c.config.exposed_ports = ic.exposed_ports().clone().unwrap_or_default();
        for e in &req.expose {
            let p = if e.contains('/') {
                e.clone()
            } else {
                format!("{e}/tcp")
            };
            if !c.config.exposed_ports.contains(&p) {
                c.config.exposed_ports.push(p);
            }
        }
        c.config.volumes = ic.volumes().clone().unwrap_or_default();
        c.host_config = req.host_config.clone();
        if c.host_config.network_mode.is_empty() {
            c.host_config.network_mode = "bridge".into();
        }
        if let Some(other) = c.host_config.network_mode.strip_prefix("container:") {
            let o = self.records().find(other)?;
            c.host_config.network_mode = format!("container:{}", o.id);
        }
        if c.host_config.log_max_file == 0 {
            c.host_config.log_max_file = 1;
        }
        // Anonymous volumes for the image's VOLUME entries no mount covers.
        for v in &c.config.volumes {
            if !c.host_config.mounts.iter().any(|m| &m.destination == v) {
                c.host_config.mounts.push(MountRecord {
                    kind: "volume".into(),
                    destination: v.clone(),
                    ..Default::default()
                });
            }
        }

        // Reserve the name and write the record under the names lock.
        {
            let _names = self
                .root
                .lock_names()
                .map_err(|e| EngineError::io("lock names", e))?;
            let all = self.records().list()?;
            assign_userns(&mut c.host_config, &all)?;
            c.name = match &req.name {
                Some(n) => {
                    if let Some(o) = all.iter().find(|o| &o.name == n) {
                        return Err(EngineError::NameInUse {
                            name: n.clone(),
                            id: o.id.clone(),
                        });
                    }
                    n.clone()
                }
                None => crate::names::generate_name(|n| all.iter().any(|o| o.name == n)),
            };
            let dir = self.root.container_dir(&id);
            fs::create_dir_all(&dir)
                .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
            if let Err(e) = self
                .create_volumes(&mut c)
                .and_then(|_| self.records().save(&c))
            {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
        events::emit(
            &self.root,
            "container",
            "create",
            &c.id,
            &[("name", &c.name), ("image", &c.config.image)],
        );
        Ok(c)
    }

    fn create_volumes(&self, c: &mut Container) -> Result<(), EngineError> {
        for m in c.host_config.mounts.iter_mut() {
            if m.kind != "volume" {
                continue;
            }
            let anonymous = m.name.is_empty();
            if anonymous {
                m.name = crate::names::random_hex(32);
            }
            let v = self.volumes().create(&m.name, BTreeMap::new(), anonymous)?;
            m.source = v.mountpoint;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- start

    /// Start a created or exited container. `hook` runs after the container's
    /// process exists but before it execs (the CLI attaches there, so no output
    /// is lost).
    pub fn start(
        &self,
        key: &str,
        hook: Option<&mut dyn FnMut(&Container) -> Result<(), EngineError>>,
    ) -> Result<Container, EngineError> {
        let id = self.records().find(key)?.id;
        let lock = self.records().lock(&id)?;
        let mut c = self.records().load(&id)?;
        self.refresh(&mut c);
        match c.state.status {
            Status::Running | Status::Paused => return Ok(c),
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container {} is {}: cannot start",
                    c.name,
                    c.state.status.as_str()
                )))
            }
            _ => {}
        }
        let mut undo = Undo::new(self, &c);
        let (pid, monitor_pid, hold) = match self.prepare_and_create(&mut c, &mut undo) {
            Ok(p) => p,
            Err(e) => {
                c.state.error = e.to_string();
                c.state.status = if c.state.started_at.is_empty() {
                    Status::Created
                } else {
                    Status::Exited
                };
                if c.state.status == Status::Exited {
                    c.state.exit_code = e.exit_code().max(126).min(128);
                }
                drop(undo);
                let _ = self.records().save(&c);
                return Err(e);
            }
        };
        c.state.status = Status::Running;
        c.state.pid = pid;
        c.state.pid_start = process_start_time(pid).unwrap_or(0);
        c.state.monitor_pid = monitor_pid;
        c.state.monitor_start = process_start_time(monitor_pid).unwrap_or(0);
        c.state.started_at = crate::time::now();
        c.state.finished_at.clear();
        c.state.exit_code = 0;
        c.state.oom_killed = false;
        c.state.error.clear();
        if let Err(e) = self.records().save(&c) {
            drop(undo);
            return Err(e);
        }
        if let Some(h) = hook {
            if let Err(e) = h(&c) {
                drop(undo);
                return Err(e);
            }
        }
        // The monitor goes on (output, exit) once this end is closed: the record
        // says running and the attach client, if any, is connected.
        drop(hold);
        undo.disarm();
        drop(lock);
        events::emit(
            &self.root,
            "container",
            "start",
            &c.id,
            &[("name", &c.name), ("image", &c.config.image)],
        );
        Ok(c)
    }

    /// Everything up to the runtime's `run --detach`; returns the init's and the
    /// monitor's pids and the monitor's hold (see [`Engine::spawn_monitor`]).
    fn prepare_and_create(
        &self,
        c: &mut Container,
        undo: &mut Undo<'_>,
    ) -> Result<(i32, i32, fs::File), EngineError> {
        let t = Timing::new();
        let id = c.id.clone();
        let dir = self.root.container_dir(&id);
        let run = self.root.container_run(&id);
        let bundle = self.bundle(&id);
        let rootfs = self.rootfs(&id);
        for d in [
            dir.join("upper"),
            dir.join("work"),
            dir.join("etc"),
            rootfs.clone(),
        ] {
            fs::create_dir_all(&d)
                .map_err(|e| EngineError::io(format!("create {}", d.display()), e))?;
        }
        let _ = fs::remove_file(run.join("exit"));

        // 1. the root filesystem: image layers + this container's upper dir
        self.mount_rootfs(c, &rootfs)?;
        undo.rootfs = Some(rootfs.clone());
        t.mark("rootfs");

        // 2. the network: a netns with its interfaces, rules and /etc files
        let net = crate::network::attach(self, c)?;
        undo.network = true;
        c.network = net.settings.clone();
        t.mark("network");

        // 3. the spec
        let user =
            crate::users::resolve_in_rootfs(&rootfs, &c.config.user, &c.host_config.group_add)?;
        self.populate_volumes(c, &rootfs)?;
        self.chown_etc_files(c, &net.etc_files)?;
        let input = self.spec_input(c, &user, &net)?;
        let value = spec::generate(c, &input);
        let mut oci: oci_spec::runtime::Spec = serde_json::from_value(value)
            .map_err(|e| EngineError::Invalid(format!("generated spec: {e}")))?;
        let sec = security_options(&c.host_config)?;
        crate::security::apply(&mut oci, &sec, user.uid == 0)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let json = serde_json::to_vec_pretty(&oci).expect("spec serializes");
        // Under the run root, rewritten at every start: no fsync (see record::save).
        crate::record::replace_unsynced(&bundle.join("config.json"), &json)
            .map_err(|e| EngineError::io("write config.json", e))?;
        t.mark("spec");

        // 4. the monitor, which runs `runtime run --detach` and stays as the parent
        let started = self.spawn_monitor(c, &bundle)?;
        undo.runtime = true;
        t.mark("monitor+run");
        Ok(started)
    }

    fn spec_input(
        &self,
        c: &Container,
        user: &crate::users::ResolvedUser,
        net: &crate::network::Attached,
    ) -> Result<SpecInput, EngineError> {
        let hc = &c.host_config;
        let mut input = SpecInput {
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids.clone(),
            netns: net.netns.clone(),
            etc_files: net.etc_files.clone(),
            swap_accounting: swap_accounting(),
            uid_mappings: hc.uid_maps.clone(),
            gid_mappings: hc.gid_maps.clone(),
            ..Default::default()
        };
        for m in &hc.mounts {
            input.mount_sources.push(m.source.clone());
        }
        for (mode, ns, field) in [(&hc.ipc_mode, "ipc", 0), (&hc.pid_mode, "pid", 1)] {
            if let Some(other) = mode.strip_prefix("container:") {
                let o = self.records().find(other)?;
                if o.state.status != Status::Running {
                    return Err(EngineError::Conflict(format!(
                        "cannot join {ns} namespace of a non running container: {}",
                        o.name
                    )));
                }
                let path = format!("/proc/{}/ns/{ns}", o.state.pid);
                if field == 0 {
                    input.ipc_ns = Some(path);
                } else {
                    input.pid_ns = Some(path);
                }
            }
        }
        for d in &hc.devices {
            input.devices.push(device_info(
                &d.path_on_host,
                &d.path_in_container,
                &d.permissions,
            )?);
        }
        let r = &hc.resources;
        for (path, _) in r
            .device_read_bps
            .iter()
            .chain(&r.device_write_bps)
            .chain(&r.device_read_iops)
            .chain(&r.device_write_iops)
        {
            let d = device_info(path, path, "rwm")?;
            input.throttle_devices.push((d.major, d.minor));
        }
        if hc.init {
            input.init_binary = Some(self.init_binary()?.to_string_lossy().into_owned());
        }
        Ok(input)
    }

    /// Docker copies what the image has at a volume's path into a new, empty volume.
    fn populate_volumes(&self, c: &Container, rootfs: &Path) -> Result<(), EngineError> {
        for m in &c.host_config.mounts {
            if m.kind != "volume" {
                continue;
            }
            let data = Path::new(&m.source);
            let empty = fs::read_dir(data)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            let marker = data.parent().map(|p| p.join(".populated"));
            if !empty || marker.as_ref().map(|m| m.exists()).unwrap_or(true) {
                continue;
            }
            // A fresh volume belongs to a user-namespaced container's root (as
            // docker's userns-remap creates it); the copy below keeps the image
            // content's owners as the container sees them (idmapped layers).
            if let Some((uid, gid)) = userns_root(c) {
                std::os::unix::fs::lchown(data, Some(uid), Some(gid))
                    .map_err(|e| EngineError::io(format!("chown {}", data.display()), e))?;
            }
            if let Some(src) = open_in_root(rootfs, &m.destination) {
                let from = format!("/proc/{}/fd/{}/.", std::process::id(), src.as_raw_fd());
                let st = Command::new("cp")
                    .arg("-a")
                    .arg(&from)
                    .arg(data)
                    .stderr(Stdio::null())
                    .status();
                if !matches!(st, Ok(s) if s.success()) {
                    return Err(EngineError::Invalid(format!(
                        "copy image content into volume {}",
                        m.name
                    )));
                }
            }
            if let Some(mk) = marker {
                let _ = fs::write(mk, b"");
            }
        }
        Ok(())
    }

    /// Spawn the monitor, which runs the runtime's `run --detach` (create and start
    /// in one exec) and reports the init's pid. The container is running when this
    /// returns, but the monitor holds off reading its output and acting on its exit
    /// until the returned file (our end of the report pipe) is closed: the caller
    /// first records the container as running and connects its attach client.
    fn spawn_monitor(
        &self,
        c: &Container,
        bundle: &Path,
    ) -> Result<(i32, i32, fs::File), EngineError> {
        let run = self.root.container_run(&c.id);
        let pid_file = run.join("pid");
        let _ = fs::remove_file(&pid_file);
        let rt = self.runtime_for(c);
        fs::create_dir_all(&rt.root).map_err(|e| EngineError::io("create runtime root", e))?;
        // A stale runtime state (crash) would make `run` refuse the id.
        if rt.has_state(&c.id) {
            let _ = rt.delete(&c.id);
        }
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::empty())
            .map_err(|e| EngineError::io("pipe", e.into()))?;
        let _ = nix::fcntl::fcntl(
            r.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        let monitor = self.monitor_binary();
        let sock = self.socket_dir(&c.id);
        fs::create_dir_all(&sock)
            .map_err(|e| EngineError::io(format!("create {}", sock.display()), e))?;
        let mut cmd = Command::new(&monitor);
        cmd.arg("--dir")
            .arg(&run)
            .arg("--sock-dir")
            .arg(&sock)
            .arg("--report-fd")
            .arg(w.as_raw_fd().to_string())
            .arg("--log")
            .arg(self.log_path(&c.id))
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--log-max-size")
            .arg(c.host_config.log_max_size.unwrap_or(0).to_string())
            .arg("--log-max-file")
            .arg(c.host_config.log_max_file.to_string());
        if c.config.tty {
            cmd.arg("--tty");
        }
        if c.config.open_stdin {
            cmd.arg("--stdin");
        }
        cmd.arg("--hold");
        let me = self.bin_dir.join("berth");
        for a in [
            me.to_string_lossy().into_owned(),
            "--root".into(),
            self.root.dir.to_string_lossy().into_owned(),
            "--run-root".into(),
            self.root.run.to_string_lossy().into_owned(),
            "container".into(),
            "cleanup".into(),
            c.id.clone(),
        ] {
            cmd.arg("--exit-command").arg(a);
        }
        cmd.arg("--");
        cmd.args(rt.run_detached_argv(&c.id, bundle, &pid_file));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| EngineError::io(format!("exec {}", monitor.display()), e))?;
        drop(w);
        // One line, read byte by byte so nothing past it is consumed: the pipe
        // stays ours to close (the monitor's hold).
        let mut report = fs::File::from(r);
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while let Ok(1) = report.read(&mut b) {
            if b[0] == b'\n' {
                break;
            }
            line.push(b[0]);
        }
        let line = String::from_utf8_lossy(&line);
        // The monitor stays alive; reap it if it already failed.
        let _ = child.try_wait();
        let line = line.trim();
        if let Some(pid) = line.strip_prefix("ok ") {
            let pid = pid
                .parse()
                .map_err(|_| EngineError::Invalid(format!("monitor reported a bad pid {pid:?}")))?;
            return Ok((pid, child.id() as i32, report));
        }
        let _ = child.wait();
        let msg = line
            .strip_prefix("err ")
            .unwrap_or("monitor exited without reporting")
            .to_string();
        Err(exec_error(msg))
    }

    /// berth-monitor: $BERTH_MONITOR, else the static build if there is one and
    /// it is not older than the one beside `berth` (no ld.so, libc.so, libgcc_s
    /// mapped: its RSS is ~0.8 MiB below the dynamic one's, which matters once
    /// per container), else the one beside `berth`. The static build is where
    /// scripts/test puts it (`--target x86_64-unknown-linux-gnu`), or installed
    /// beside `berth` in place of the dynamic one.
    pub fn monitor_binary(&self) -> PathBuf {
        if let Some(p) = std::env::var_os("BERTH_MONITOR") {
            return PathBuf::from(p);
        }
        let beside = self.bin_dir.join("berth-monitor");
        let static_build = match (self.bin_dir.file_name(), self.bin_dir.parent()) {
            (Some(profile), Some(target)) => target
                .join("x86_64-unknown-linux-gnu")
                .join(profile)
                .join("berth-monitor"),
            _ => return beside,
        };
        let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        match (mtime(&static_build), mtime(&beside)) {
            (Some(s), Some(b)) if s >= b && is_static_elf(&static_build) => static_build,
            (Some(_), None) if is_static_elf(&static_build) => static_build,
            _ => beside,
        }
    }

    /// The static `berth-init` for `--init`: $BERTH_INIT, beside `berth`, where
    /// cargo puts the static build (`--target x86_64-unknown-linux-gnu`), or
    /// /usr/libexec/berth. A dynamically linked one would not run in an image
    /// without the host's libc, so only a static binary qualifies.
    pub fn init_binary(&self) -> Result<PathBuf, EngineError> {
        let mut candidates: Vec<PathBuf> = std::env::var_os("BERTH_INIT")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        candidates.push(self.bin_dir.join("berth-init"));
        if let Some(profile) = self.bin_dir.file_name() {
            if let Some(target) = self.bin_dir.parent() {
                candidates.push(
                    target
                        .join("x86_64-unknown-linux-gnu")
                        .join(profile)
                        .join("berth-init"),
                );
            }
        }
        candidates.push(PathBuf::from("/usr/libexec/berth/berth-init"));
        candidates
            .into_iter()
            .find(|p| is_static_elf(p))
            .ok_or_else(|| EngineError::Invalid("--init: no static berth-init found (build it with scripts/test, or set BERTH_INIT)".into()))
    }

    // ---------------------------------------------------------------- state

    /// Make the record tell the truth after crashes: a "running" container
    /// whose process is gone (monitor killed, or a reboot) is finished here.
    pub fn refresh(&self, c: &mut Container) {
        if !matches!(
            c.state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            return;
        }
        if c.state.status == Status::Restarting
            && pid_alive(c.state.monitor_pid, c.state.monitor_start)
        {
            return;
        }
        if c.state.pid > 0 && pid_alive(c.state.pid, c.state.pid_start) {
            return;
        }
        // The container is gone. While its monitor (or the cleanup it execs) lives,
        // that finishes the record; only when nobody will, record it here.
        if pid_alive(c.state.monitor_pid, c.state.monitor_start) {
            return;
        }
        let exit = self.root.container_run(&c.id).join("exit");
        if let Ok(_l) = self.records().lock(&c.id) {
            if let Ok(fresh) = self.records().load(&c.id) {
                *c = fresh;
            }
            if !matches!(
                c.state.status,
                Status::Running | Status::Paused | Status::Restarting
            ) {
                return;
            }
            if (c.state.pid > 0 && pid_alive(c.state.pid, c.state.pid_start))
                || pid_alive(c.state.monitor_pid, c.state.monitor_start)
            {
                return;
            }
            let (code, _) = read_exit(&exit).unwrap_or((255, String::new()));
            self.teardown(c);
            c.state.status = Status::Exited;
            c.state.exit_code = code;
            c.state.finished_at = crate::time::now();
            c.state.pid = 0;
            let _ = self.records().save(c);
        }
    }

    /// Undo the running-state resources: runtime state (and its cgroup),
    /// network, rootfs mount. Idempotent.
    /// Each step is skipped when there is nothing to undo (each costs an exec
    /// or a lock): `cleanup` has usually done it all before `rm` asks again.
    fn teardown(&self, c: &Container) {
        self.teardown_with(c, || ());
    }

    /// [`Engine::teardown`], with the runtime's delete (an exec and a dozen cgroup
    /// rmdirs) running while this process detaches the network, unmounts the
    /// rootfs and then does `meanwhile` (record writes, removing directories):
    /// nothing of the one depends on the other.
    fn teardown_with(&self, c: &Container, meanwhile: impl FnOnce()) {
        let rt = self.runtime_for(c);
        let deleting = if rt.has_state(&c.id) {
            rt.spawn_delete(&c.id).ok()
        } else {
            None
        };
        if !c.network.netns.is_empty() || !c.network.endpoints.is_empty() {
            let _ = crate::network::detach(self, c);
        }
        let rootfs = self.rootfs(&c.id);
        if is_mount_point(&rootfs) {
            let _ = berth_image::snapshot::unmount(&rootfs);
        }
        meanwhile();
        if let Some(d) = deleting {
            let _ = d.wait();
        }
    }

    pub fn list(&self, all: bool) -> Result<Vec<Container>, EngineError> {
        let mut v = self.records().list()?;
        for c in v.iter_mut() {
            self.refresh(c);
        }
        if !all {
            v.retain(|c| {
                matches!(
                    c.state.status,
                    Status::Running | Status::Paused | Status::Restarting
                )
            });
        }
        Ok(v)
    }

    pub fn get(&self, key: &str) -> Result<Container, EngineError> {
        let mut c = self.records().find(key)?;
        self.refresh(&mut c);
        Ok(c)
    }

    // ---------------------------------------------------------------- cleanup

    /// The monitor's exit command: fold the exit status into the record, free
    /// the running-state resources, then `--rm` or restart.
    pub fn cleanup(&self, id: &str) -> Result<(), EngineError> {
        let t = Timing::new();
        let lock = self.records().lock(id)?;
        let mut c = self.records().load(id)?;
        let running = c.clone();
        let exit = self.root.container_run(id).join("exit");
        let (code, finished) = read_exit(&exit).unwrap_or((255, crate::time::now()));
        let oom = oom_killed(&c.id);
        t.mark("cleanup: oom");
        // `--rm` goes straight on to remove: the record says so and the files go
        // while the runtime deletes its state (one record write, a rename over the
        // old one, and a whole `rm` less on the exit path).
        let auto_remove = c.host_config.auto_remove;
        c.network.netns.clear();
        c.network.endpoints.clear();
        c.state.status = if auto_remove {
            Status::Removing
        } else {
            Status::Exited
        };
        c.state.exit_code = code;
        c.state.oom_killed = oom;
        c.state.finished_at = finished;
        c.state.pid = 0;
        let mut saved = Ok(());
        let mut removed = Ok(());
        self.teardown_with(&running, || {
            saved = self.records().save(&c);
            if auto_remove && saved.is_ok() {
                removed = self.remove_files(&c);
            }
        });
        t.mark("cleanup: teardown");
        saved?;
        if oom {
            events::emit(
                &self.root,
                "container",
                "oom",
                &c.id,
                &[("name", &c.name), ("image", &c.config.image)],
            );
        }
        events::emit(
            &self.root,
            "container",
            "die",
            &c.id,
            &[
                ("name", &c.name),
                ("image", &c.config.image),
                ("exitCode", &code.to_string()),
            ],
        );
        if auto_remove {
            removed?;
            self.finish_remove(&c, true);
            drop(lock);
            t.mark("cleanup: remove");
            return Ok(());
        }
        if !self.should_restart(&c) {
            return Ok(());
        }
        // Docker's backoff: 100 ms doubling per consecutive restart, capped at 1 min.
        let delay =
            Duration::from_millis(100u64.saturating_mul(1 << c.state.restart_count.min(10)))
                .min(Duration::from_secs(60));
        c.state.status = Status::Restarting;
        c.state.restart_count += 1;
        c.state.monitor_pid = std::process::id() as i32;
        c.state.monitor_start = process_start_time(c.state.monitor_pid).unwrap_or(0);
        self.records().save(&c)?;
        drop(lock);
        std::thread::sleep(delay);
        // `stop` during the backoff wins.
        let fresh = self.records().load(id)?;
        if fresh.state.stopped_by_user || fresh.state.status != Status::Restarting {
            return Ok(());
        }
        events::emit(
            &self.root,
            "container",
            "restart",
            &c.id,
            &[("name", &c.name)],
        );
        self.start(id, None).map(drop)
    }

    fn should_restart(&self, c: &Container) -> bool {
        let p = &c.host_config.restart_policy;
        match p.name.as_str() {
            "always" => !c.state.stopped_by_user,
            "unless-stopped" => !c.state.stopped_by_user,
            "on-failure" => {
                c.state.exit_code != 0
                    && !c.state.stopped_by_user
                    && (p.maximum_retry_count == 0 || c.state.restart_count < p.maximum_retry_count)
            }
            _ => false,
        }
    }

    // ---------------------------------------------------------------- stop/kill/rm

    pub fn kill(&self, key: &str, signal: i32) -> Result<Container, EngineError> {
        let mut c = self.get(key)?;
        if !matches!(c.state.status, Status::Running | Status::Paused) {
            return Err(EngineError::Conflict(format!(
                "cannot kill container: {}: container {} is not running",
                key, c.id
            )));
        }
        {
            let _l = self.records().lock(&c.id)?;
            let mut fresh = self.records().load(&c.id)?;
            fresh.state.stopped_by_user = true;
            self.records().save(&fresh)?;
            c = fresh;
        }
        self.runtime_for(&c).kill(&c.id, signal)?;
        events::emit(
            &self.root,
            "container",
            "kill",
            &c.id,
            &[("name", &c.name), ("signal", &signal.to_string())],
        );
        Ok(c)
    }

    /// Stop: the stop signal, then SIGKILL after the timeout; returns once the
    /// record says exited (cleanup done).
    pub fn stop(&self, key: &str, timeout: Option<i64>) -> Result<Container, EngineError> {
        let c = self.get(key)?;
        if c.state.status == Status::Restarting {
            let _l = self.records().lock(&c.id)?;
            let mut fresh = self.records().load(&c.id)?;
            fresh.state.stopped_by_user = true;
            fresh.state.status = Status::Exited;
            self.records().save(&fresh)?;
            return Ok(fresh);
        }
        if !matches!(c.state.status, Status::Running | Status::Paused) {
            return Ok(c);
        }
        let sig = crate::parse::signal(&c.config.stop_signal).unwrap_or(15);
        let timeout = timeout.or(c.config.stop_timeout).unwrap_or(10);
        if c.state.status == Status::Paused {
            let _ = self.runtime_for(&c).resume(&c.id);
        }
        let _ = self.kill(&c.id, sig);
        let deadline = Instant::now() + Duration::from_secs(timeout.max(0) as u64);
        if !wait_gone(c.state.pid, c.state.pid_start, deadline) {
            let _ = self.runtime_for(&c).kill(&c.id, 9);
            wait_gone(
                c.state.pid,
                c.state.pid_start,
                Instant::now() + Duration::from_secs(10),
            );
        }
        let c = self.wait_exited(&c.id, Duration::from_secs(10))?;
        events::emit(&self.root, "container", "stop", &c.id, &[("name", &c.name)]);
        Ok(c)
    }

    /// Wait until the record says the container is no longer running (the
    /// monitor's cleanup has run), or refresh finishes it if nobody will.
    pub fn wait_exited(&self, id: &str, limit: Duration) -> Result<Container, EngineError> {
        let deadline = Instant::now() + limit;
        loop {
            let mut c = self.records().load(id)?;
            if !matches!(c.state.status, Status::Running | Status::Paused)
                || Instant::now() > deadline
            {
                return Ok(c);
            }
            if !pid_alive(c.state.pid, c.state.pid_start)
                && !pid_alive(c.state.monitor_pid, c.state.monitor_start)
            {
                self.refresh(&mut c);
                return Ok(c);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `berth wait`: block until the container is not running; its exit code.
    pub fn wait(&self, key: &str) -> Result<i32, EngineError> {
        let c = self.get(key)?;
        loop {
            let c = self.wait_exited(&c.id, Duration::from_secs(3600))?;
            match c.state.status {
                Status::Running | Status::Paused | Status::Restarting => continue,
                _ => return Ok(c.state.exit_code),
            }
        }
    }

    pub fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<(), EngineError> {
        let mut c = self.get(key)?;
        if matches!(
            c.state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {}: Stop the container before attempting removal or force remove",
                    c.name,
                    c.state.status.as_str()
                )));
            }
            {
                let _l = self.records().lock(&c.id)?;
                let mut fresh = self.records().load(&c.id)?;
                fresh.state.stopped_by_user = true;
                fresh.host_config.auto_remove = false;
                fresh.host_config.restart_policy.name = "no".into();
                self.records().save(&fresh)?;
            }
            if c.state.status == Status::Paused {
                let _ = self.runtime_for(&c).resume(&c.id);
            }
            let _ = self.runtime_for(&c).kill(&c.id, 9);
            wait_gone(
                c.state.pid,
                c.state.pid_start,
                Instant::now() + Duration::from_secs(10),
            );
            c = self.wait_exited(&c.id, Duration::from_secs(10))?;
        }
        let _l = self.records().lock(&c.id)?;
        if c.state.status != Status::Removing {
            c.state.status = Status::Removing;
            let _ = self.records().save(&c);
        }
        self.teardown(&c);
        self.remove_files(&c)?;
        self.finish_remove(&c, volumes);
        Ok(())
    }

    /// The container's directories: run state, sockets, then the record's own
    /// (its removal is what makes the container gone).
    fn remove_files(&self, c: &Container) -> Result<(), EngineError> {
        let dir = self.root.container_dir(&c.id);
        let _ = fs::remove_dir_all(self.root.container_run(&c.id));
        let _ = fs::remove_dir_all(self.socket_dir(&c.id));
        fs::remove_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("remove {}", dir.display()), e))
    }

    /// After the files: anonymous volumes (with `-v`) and the destroy event.
    fn finish_remove(&self, c: &Container, volumes: bool) {
        if volumes {
            for m in &c.host_config.mounts {
                if m.kind == "volume"
                    && self
                        .volumes()
                        .inspect(&m.name)
                        .map(|v| v.anonymous)
                        .unwrap_or(false)
                {
                    let _ = self.volumes().remove(&m.name, &[]);
                }
            }
        }
        events::emit(
            &self.root,
            "container",
            "destroy",
            &c.id,
            &[("name", &c.name), ("image", &c.config.image)],
        );
    }

    pub fn pause(&self, key: &str, pause: bool) -> Result<(), EngineError> {
        let c = self.get(key)?;
        let _l = self.records().lock(&c.id)?;
        let mut c = self.records().load(&c.id)?;
        match (pause, &c.state.status) {
            (true, Status::Running) => self.runtime_for(&c).pause(&c.id)?,
            (false, Status::Paused) => self.runtime_for(&c).resume(&c.id)?,
            (true, _) => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running",
                    c.name
                )))
            }
            (false, _) => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not paused",
                    c.name
                )))
            }
        }
        c.state.status = if pause {
            Status::Paused
        } else {
            Status::Running
        };
        self.records().save(&c)?;
        events::emit(
            &self.root,
            "container",
            if pause { "pause" } else { "unpause" },
            &c.id,
            &[("name", &c.name)],
        );
        Ok(())
    }

    pub fn rename(&self, key: &str, new: &str) -> Result<(), EngineError> {
        if !crate::names::is_valid_name(new) {
            return Err(EngineError::Invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let _names = self
            .root
            .lock_names()
            .map_err(|e| EngineError::io("lock names", e))?;
        let c = self.records().find(key)?;
        if let Some(o) = self.records().list()?.into_iter().find(|o| o.name == new) {
            return Err(EngineError::NameInUse {
                name: new.into(),
                id: o.id,
            });
        }
        let _l = self.records().lock(&c.id)?;
        let mut c = self.records().load(&c.id)?;
        c.name = new.into();
        self.records().save(&c)?;
        events::emit(&self.root, "container", "rename", &c.id, &[("name", new)]);
        Ok(())
    }

    /// `berth system boot`: after a reboot, bring back containers whose restart
    /// policy says so (`always`, and `unless-stopped` ones not stopped by hand).
    pub fn boot(&self) -> Result<Vec<String>, EngineError> {
        let mut started = Vec::new();
        for c in self.list(true)? {
            let p = c.host_config.restart_policy.name.as_str();
            let wanted = match p {
                "always" => true,
                "unless-stopped" => !c.state.stopped_by_user,
                _ => false,
            };
            if wanted && c.state.status == Status::Exited {
                self.start(&c.id, None)?;
                started.push(c.name.clone());
            }
        }
        Ok(started)
    }

    /// The container's root filesystem, described: the image's layers (bottom
    /// first) under this container's upper and work dirs.
    fn overlay(&self, c: &Container) -> Result<berth_image::snapshot::Overlay, EngineError> {
        let store = self.images()?;
        let image = store
            .resolve(&c.config.image_id)
            .map_err(|e| EngineError::Image(e.to_string()))?;
        let lowers = store
            .layer_dirs(&image)
            .map_err(|e| EngineError::Image(e.to_string()))?;
        let dir = self.root.container_dir(&c.id);
        Ok(berth_image::snapshot::Overlay {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
        })
    }

    /// Mount the container's rootfs at `target`; for a user-namespaced container
    /// the layers are idmapped to its maps and a fresh upper dir is chowned to its
    /// root, so it owns what the image has and what it writes (snapshot.rs).
    fn mount_rootfs(&self, c: &Container, target: &Path) -> Result<(), EngineError> {
        let overlay = self.overlay(c)?;
        let hc = &c.host_config;
        if let Some((uid, _)) = userns_root(c) {
            reachable_by(target, uid)?;
        }
        let mounted = match userns_root(c) {
            None => overlay.mount(target),
            Some((uid, gid)) => {
                use std::os::unix::fs::MetadataExt;
                let up = &overlay.upper;
                fs::create_dir_all(up)
                    .map_err(|e| EngineError::io(format!("create {}", up.display()), e))?;
                let md = fs::symlink_metadata(up)
                    .map_err(|e| EngineError::io(format!("stat {}", up.display()), e))?;
                if md.uid() == 0 && md.gid() == 0 {
                    std::os::unix::fs::lchown(up, Some(uid), Some(gid))
                        .map_err(|e| EngineError::io(format!("chown {}", up.display()), e))?;
                }
                use crate::security::userns::map_text;
                let ns =
                    berth_sys::user_namespace_fd(&map_text(&hc.uid_maps), &map_text(&hc.gid_maps))
                        .map_err(|e| {
                            EngineError::io("create a user namespace for idmapped layers", e)
                        })?;
                overlay.mount_idmapped(target, std::os::fd::AsFd::as_fd(&ns))
            }
        };
        mounted.map_err(|e| EngineError::Image(format!("mount rootfs: {e}")))
    }

    /// /etc/hosts, hostname and resolv.conf of a user-namespaced container belong
    /// to its root (writable inside, as with docker's userns-remap). Only this
    /// container's own files: `--network container:x` shares x's.
    fn chown_etc_files(
        &self,
        c: &Container,
        files: &[(String, String)],
    ) -> Result<(), EngineError> {
        let Some((uid, gid)) = userns_root(c) else {
            return Ok(());
        };
        let own = self.root.container_dir(&c.id);
        for (_, src) in files {
            let p = Path::new(src);
            if p.starts_with(&own) {
                std::os::unix::fs::lchown(p, Some(uid), Some(gid))
                    .map_err(|e| EngineError::io(format!("chown {}", p.display()), e))?;
            }
        }
        Ok(())
    }

    /// The container's filesystem as the container sees it: /proc/PID/root while
    /// it runs (volumes and tmpfs included), else its overlay mounted on a
    /// private temporary mount point for as long as the guard lives.
    pub fn container_root(&self, c: &Container) -> Result<RootGuard, EngineError> {
        if matches!(c.state.status, Status::Running | Status::Paused)
            && pid_alive(c.state.pid, c.state.pid_start)
        {
            return Ok(RootGuard {
                path: PathBuf::from(format!("/proc/{}/root", c.state.pid)),
                mounted: false,
            });
        }
        let dir = self.root.container_dir(&c.id);
        let target = self
            .root
            .container_run(&c.id)
            .join(format!("peek-{}", crate::names::random_hex(4)));
        fs::create_dir_all(&target)
            .map_err(|e| EngineError::io(format!("create {}", target.display()), e))?;
        for d in [dir.join("upper"), dir.join("work")] {
            fs::create_dir_all(&d)
                .map_err(|e| EngineError::io(format!("create {}", d.display()), e))?;
        }
        if let Err(e) = self.mount_rootfs(c, &target) {
            let _ = fs::remove_dir(&target);
            return Err(e);
        }
        Ok(RootGuard {
            path: target,
            mounted: true,
        })
    }

    /// Containers whose running state refers to an image (rmi refuses those).
    pub fn containers_using_image(&self, image_id: &str) -> Result<Vec<String>, EngineError> {
        Ok(self
            .records()
            .list()?
            .into_iter()
            .filter(|c| c.config.image_id == image_id)
            .map(|c| c.name)
            .collect())
    }
}

pub struct RootGuard {
    path: PathBuf,
    mounted: bool,
}

impl RootGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        if self.mounted {
            let _ = berth_image::snapshot::unmount(&self.path);
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// `BERTH_TIMING=1`: each start phase's wall time on stderr (for bench/ and
/// for finding where a slow start goes).
struct Timing {
    start: Option<Instant>,
    last: std::cell::Cell<Option<Instant>>,
}

impl Timing {
    fn new() -> Timing {
        let on = std::env::var_os("BERTH_TIMING").is_some();
        let now = Instant::now();
        Timing {
            start: on.then_some(now),
            last: std::cell::Cell::new(on.then_some(now)),
        }
    }
    fn mark(&self, what: &str) {
        if let (Some(start), Some(last)) = (self.start, self.last.get()) {
            let now = Instant::now();
            eprintln!(
                "timing: {what:<16} {:>7.2} ms (total {:.2} ms)",
                (now - last).as_secs_f64() * 1e3,
                (now - start).as_secs_f64() * 1e3
            );
            self.last.set(Some(now));
        }
    }
}

/// Undo of a half-done start, in reverse order.
struct Undo<'a> {
    engine: &'a Engine,
    c: Container,
    rootfs: Option<PathBuf>,
    network: bool,
    runtime: bool,
    armed: bool,
}

impl<'a> Undo<'a> {
    fn new(engine: &'a Engine, c: &Container) -> Undo<'a> {
        Undo {
            engine,
            c: c.clone(),
            rootfs: None,
            network: false,
            runtime: false,
            armed: true,
        }
    }
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.runtime {
            let rt = self.engine.runtime_for(&self.c);
            let _ = rt.kill(&self.c.id, 9);
            let _ = rt.delete(&self.c.id);
        }
        if self.network {
            let _ = crate::network::detach(self.engine, &self.c);
        }
        if let Some(r) = &self.rootfs {
            let _ = berth_image::snapshot::unmount(r);
        }
    }
}

/// Map the runtime's words to docker's exit codes: 127 not found, 126 cannot execute.
fn exec_error(msg: String) -> EngineError {
    let m = msg.to_ascii_lowercase();
    if m.contains("not found") || m.contains("no such file") {
        EngineError::Exec {
            code: 127,
            message: format!("failed to create container: {msg}"),
        }
    } else if m.contains("permission denied")
        || m.contains("is a directory")
        || m.contains("exec format")
    {
        EngineError::Exec {
            code: 126,
            message: format!("failed to create container: {msg}"),
        }
    } else {
        EngineError::Runtime {
            op: "create".into(),
            message: msg,
        }
    }
}

fn read_exit(path: &Path) -> Option<(i32, String)> {
    let s = fs::read_to_string(path).ok()?;
    let mut it = s.split_whitespace();
    let code = it.next()?.parse().ok()?;
    Some((code, it.next().unwrap_or("").to_string()))
}

/// Whether something is mounted on `path` (its device differs from its parent's,
/// or it is the root of a bind mount of the same fs, which overlay never is).
fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        fs::symlink_metadata(path),
        path.parent().map(fs::symlink_metadata),
    ) {
        (Ok(m), Some(Ok(p))) => m.dev() != p.dev(),
        _ => false,
    }
}

/// An ELF executable without a PT_INTERP program header (no dynamic loader).
fn is_static_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let Ok(n) = f.read(&mut head) else {
        return false;
    };
    head.truncate(n);
    if n < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        // PT_INTERP = 3; a header past what we read cannot be judged: not static
        o + 4 <= head.len() && u32::from_le_bytes(head[o..o + 4].try_into().expect("4 bytes")) != 3
    })
}

/// Field 22 of /proc/PID/stat.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Alive and not a zombie, and (if known) the same process as recorded.
pub fn pid_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = s.rfind(')') else {
        return false;
    };
    let after = &s[close + 2..];
    if after.starts_with('Z') || after.starts_with('X') {
        return false;
    }
    start == 0 || process_start_time(pid) == Some(start)
}

fn wait_gone(pid: i32, start: u64, deadline: Instant) -> bool {
    while pid_alive(pid, start) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Whether the OOM killer struck in the container's cgroup (read before the
/// runtime deletes it).
fn oom_killed(id: &str) -> bool {
    let Ok(h) = berth_cgroups::Hierarchy::detect() else {
        return false;
    };
    let path = format!("/berth/{id}");
    let Ok(m) = berth_cgroups::Manager::new(&h, Some(&path), id) else {
        return false;
    };
    m.oom_kills().is_some_and(|n| n > 0)
}

fn swap_accounting() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .map(|s| s.contains("memory"))
            .unwrap_or(false)
            && Path::new("/proc/swaps").exists()
            && fs::read_to_string("/proc/swaps")
                .map(|s| s.lines().count() > 1)
                .unwrap_or(false)
}

fn device_info(host: &str, ctr: &str, perms: &str) -> Result<spec::Device, EngineError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = fs::metadata(host).map_err(|e| {
        EngineError::Invalid(format!(
            "error gathering device information while adding device {host:?}: {e}"
        ))
    })?;
    let kind = if md.file_type().is_char_device() {
        'c'
    } else if md.file_type().is_block_device() {
        'b'
    } else {
        return Err(EngineError::Invalid(format!("{host} is not a device node")));
    };
    let rdev = md.rdev();
    Ok(spec::Device {
        path: ctr.into(),
        kind,
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        permissions: perms.into(),
        mode: md.mode() & 0o777,
        uid: md.uid(),
        gid: md.gid(),
    })
}

/// Open a directory inside `rootfs` without following symlinks out of it.
pub fn open_in_root(rootfs: &Path, path: &str) -> Option<std::os::fd::OwnedFd> {
    let dir = fs::File::open(rootfs).ok()?;
    let flags =
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_DIRECTORY;
    berth_sys::openat2(
        std::os::fd::AsFd::as_fd(&dir),
        Path::new(path),
        flags.bits(),
        0,
        berth_sys::RESOLVE_IN_ROOT | berth_sys::RESOLVE_NO_MAGICLINKS,
    )
    .ok()
}

pub fn which(p: &Path) -> Option<PathBuf> {
    if p.components().count() > 1 {
        return p.exists().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(p))
        .find(|c| c.exists())
}

/// The runtime mounts the rootfs as the container's root, an unprivileged host uid:
/// every directory above it must let that uid search it, or the runtime fails with
/// a bare EACCES. Say which one, before anything is set up.
fn reachable_by(target: &Path, uid: u32) -> Result<(), EngineError> {
    use std::os::unix::fs::MetadataExt;
    for dir in target.ancestors().skip(1) {
        let Ok(md) = fs::metadata(dir) else { continue };
        let ok = md.mode() & 0o001 != 0 || (md.uid() == uid && md.mode() & 0o100 != 0);
        if !ok {
            return Err(EngineError::Invalid(format!(
                "--userns: {} (mode {:o}) cannot be searched by the container's root (host uid {uid}), so its rootfs below cannot be mounted; make it o+x or use a --run-root whose parents are",
                dir.display(),
                md.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// The host uid and gid of a user-namespaced container's root (None: no userns).
pub fn userns_root(c: &Container) -> Option<(u32, u32)> {
    use crate::security::userns::host_id;
    let hc = &c.host_config;
    if hc.uid_maps.is_empty() {
        return None;
    }
    Some((host_id(&hc.uid_maps, 0)?, host_id(&hc.gid_maps, 0)?))
}

/// `--userns=auto`: give the container a block no other container of this
/// engine holds. Called under the names lock with every record, so two
/// parallel creates cannot pick the same block.
fn assign_userns(hc: &mut HostConfig, all: &[Container]) -> Result<(), EngineError> {
    use crate::security::userns::{allocate_auto, host_ranges};
    if !hc.userns_mode.starts_with("auto") || !hc.uid_maps.is_empty() {
        return Ok(());
    }
    let used_uids: Vec<_> = all
        .iter()
        .flat_map(|o| host_ranges(&o.host_config.uid_maps))
        .collect();
    let used_gids: Vec<_> = all
        .iter()
        .flat_map(|o| host_ranges(&o.host_config.gid_maps))
        .collect();
    let (uids, gids) = allocate_auto(
        &hc.userns_mode,
        Path::new("/etc/subuid"),
        Path::new("/etc/subgid"),
        &used_uids,
        &used_gids,
    )
    .map_err(|e| EngineError::Invalid(e.to_string()))?;
    hc.uid_maps = uids;
    hc.gid_maps = gids;
    Ok(())
}

/// The container's security flags, validated (a bad capability name or
/// seccomp profile fails `create`, before anything exists).
pub fn security_options(hc: &HostConfig) -> Result<crate::security::SecurityOptions, EngineError> {
    crate::security::SecurityOptions::from_flags(
        &hc.cap_add,
        &hc.cap_drop,
        hc.privileged,
        hc.read_only,
        &hc.security_opt,
    )
    .map_err(|e| EngineError::Invalid(e.to_string()))
}
