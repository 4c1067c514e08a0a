//! `berth-runtime`: runc's command line over the berth-runtime library.
//!
//! Flag names, defaults, exit codes and the `--log`/`--log-format json`
//! contract follow runc, so containerd's shim and dockerd can use this binary
//! in its place.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_runtime::{cgroup, container, logging, plan, spawn, spec, state};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "An OCI container runtime with runc's command line"
)]
struct Cli {
    /// Directory for container state (tmpfs recommended).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Log file (default: stderr for warnings and debug).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", default_value = "text")]
    log_format: String,
    /// Debug logging.
    #[arg(long)]
    debug: bool,
    /// Use the systemd cgroup driver (not supported: a clear error when a container is created).
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, hide = true)]
    criu: Option<String>,
    /// Accepted for runc compatibility: rootless mode is detected from the euid.
    #[arg(long, hide = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// Path to the bundle (directory holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master (SCM_RIGHTS) when process.terminal is true.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the container init's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Don't give the container its own session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    container_id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container: everything but the user program, which waits for `start`.
    Create(CreateArgs),
    /// Run the user program of a created container.
    Start { container_id: String },
    /// Create and start a container; in the foreground, wait and return its exit code.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process.
        #[arg(short, long)]
        detach: bool,
        /// Don't delete the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print the OCI state of a container as JSON.
    State { container_id: String },
    /// Send a signal (default SIGTERM) to the container's init, or with --all to every process.
    Kill {
        #[arg(short, long)]
        all: bool,
        container_id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete containers and everything they hold (cgroup, state).
    Delete {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        container_ids: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a new process in a running container.
    Exec(ExecArgs),
    /// Show the container's processes (`ps` output filtered to its cgroup, or --format json).
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        container_id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Print what this runtime supports (runtime-spec features.md).
    Features,
    /// Freeze every process of the container.
    Pause { container_id: String },
    /// Thaw a paused container.
    Resume { container_id: String },
    /// Change a running container's resource limits (runc's flags, or -r resources.json; "-" is stdin).
    Update(UpdateArgs),
    /// Container events: `--stats` once, else stats every --interval and OOM kills as they happen.
    Events {
        #[arg(long)]
        stats: bool,
        /// Seconds between stats events (e.g. 5, 5s, 500ms).
        #[arg(long, default_value = "5s")]
        interval: String,
        container_id: String,
    },
}

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
struct UpdateArgs {
    #[arg(short, long)]
    resources: Option<String>,
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    #[arg(long)]
    memory: Option<String>,
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Accepted for runc compatibility; the kernel no longer supports kernel memory limits.
    #[arg(long = "kernel-memory", hide = true)]
    kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", hide = true)]
    kernel_memory_tcp: Option<String>,
    container_id: String,
}

#[derive(clap::Args)]
struct ExecArgs {
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Extra environment (KEY=value), repeatable.
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// A process.json (the OCI `process` object) instead of COMMAND and flags.
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability (e.g. CAP_NET_ADMIN), repeatable.
    #[arg(short, long = "cap")]
    cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    container_id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    logging::start_clock();
    let cli = Cli::parse();
    let format = if cli.log_format == "json" {
        logging::Format::Json
    } else {
        logging::Format::Text
    };
    logging::init(cli.log.clone(), format, cli.debug);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let msg = error_chain(&e);
            logging::log("error", &msg);
            let _ = writeln!(std::io::stderr(), "berth-runtime: {msg}");
            ExitCode::from(1)
        }
    }
}

/// The error and its causes joined by ": ", skipping a cause whose text the
/// message before it already contains (thiserror variants often embed their source).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/berth-runtime");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("berth-runtime"),
        None => PathBuf::from(format!("/tmp/berth-runtime-{}", nix::unistd::geteuid())),
    }
}

fn run(cli: Cli) -> Result<u8> {
    if cli.log_format != "text" && cli.log_format != "json" {
        bail!("invalid log-format {:?}: use text or json", cli.log_format);
    }
    let root_path = cli.root.clone().unwrap_or_else(default_root);
    let open_root = || state::Root::open(&root_path);
    let refuse_systemd = || -> Result<()> {
        if cli.systemd_cgroup {
            bail!("--systemd-cgroup is not supported by berth-runtime: there is no systemd cgroup driver; use the cgroupfs driver");
        }
        Ok(())
    };
    match cli.cmd {
        Cmd::Create(a) => {
            refuse_systemd()?;
            let root = open_root()?;
            spawn::create(&root, &create_opts(&a, false))?;
            Ok(0)
        }
        Cmd::Run {
            create,
            detach,
            keep,
        } => {
            refuse_systemd()?;
            let root = open_root()?;
            let opts = create_opts(&create, !detach);
            if !detach {
                spawn::block_forwarded_signals()?;
            }
            let created = spawn::create(&root, &opts)?;
            if let Err(e) = container::start(&root, &create.container_id) {
                let _ = container::delete(&root, &create.container_id, true);
                return Err(e);
            }
            if detach {
                return Ok(0);
            }
            let code = spawn::wait_foreground(created.pid, created.pty)?;
            if !keep {
                container::delete(&root, &create.container_id, true)?;
            }
            Ok(code.clamp(0, 255) as u8)
        }
        Cmd::Start { container_id } => {
            container::start(&open_root()?, &container_id)?;
            Ok(0)
        }
        Cmd::State { container_id } => {
            let root = open_root()?;
            let st = root.load(&container_id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&container::describe(&root, &st))?
            );
            Ok(0)
        }
        Cmd::Kill {
            all,
            container_id,
            signal,
        } => {
            let sig = container::parse_signal(&signal)?;
            container::kill(&open_root()?, &container_id, sig, all)?;
            Ok(0)
        }
        Cmd::Delete {
            force,
            container_ids,
        } => {
            let root = open_root()?;
            let mut failed = None;
            for id in &container_ids {
                if let Err(e) = container::delete(&root, id, force) {
                    failed = Some(e);
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(0),
            }
        }
        Cmd::List { format, quiet } => list(&open_root()?, &format, quiet),
        Cmd::Exec(a) => exec(&open_root()?, a),
        Cmd::Ps {
            format,
            container_id,
            ps_args,
        } => ps(&open_root()?, &container_id, &format, &ps_args),
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let body = serde_json::to_string_pretty(&spec::default_spec(rootless))?;
            std::fs::write(&path, body + "\n")
                .with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Cmd::Features => {
            println!("{}", serde_json::to_string_pretty(&spec::features())?);
            Ok(0)
        }
        Cmd::Pause { container_id } => {
            container::pause(&open_root()?, &container_id)?;
            Ok(0)
        }
        Cmd::Resume { container_id } => {
            container::resume(&open_root()?, &container_id)?;
            Ok(0)
        }
        Cmd::Update(a) => {
            let flags = cgroup::UpdateFlags {
                resources_file: a.resources,
                blkio_weight: a.blkio_weight,
                cpu_period: a.cpu_period,
                cpu_quota: a.cpu_quota,
                cpu_rt_period: a.cpu_rt_period,
                cpu_rt_runtime: a.cpu_rt_runtime,
                cpu_share: a.cpu_share,
                cpuset_cpus: a.cpuset_cpus,
                cpuset_mems: a.cpuset_mems,
                memory: a.memory,
                memory_reservation: a.memory_reservation,
                memory_swap: a.memory_swap,
                pids_limit: a.pids_limit,
            };
            if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
                logging::warn(
                    "--kernel-memory/--kernel-memory-tcp ignored: not supported by this kernel",
                );
            }
            cgroup::update(&open_root()?, &a.container_id, &flags)?;
            Ok(0)
        }
        Cmd::Events {
            stats,
            interval,
            container_id,
        } => {
            cgroup::events(
                &open_root()?,
                &container_id,
                stats,
                parse_interval(&interval)?,
            )?;
            Ok(0)
        }
    }
}

/// "5", "5s", "500ms", "1m" → Duration.
fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => bail!("invalid interval {s:?}: use ms, s or m"),
    };
    if secs <= 0.0 {
        bail!("invalid interval {s:?}: must be positive");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn create_opts(a: &CreateArgs, foreground_tty: bool) -> spawn::CreateOpts<'_> {
    spawn::CreateOpts {
        id: &a.container_id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console_socket: a.console_socket.as_deref(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        foreground_tty,
    }
}

fn list(root: &state::Root, format: &str, quiet: bool) -> Result<u8> {
    let mut all = Vec::new();
    for id in root.ids()? {
        if let Ok(st) = root.load(&id) {
            all.push(container::describe(root, &st));
        }
    }
    if quiet {
        for c in &all {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    match format {
        "json" => println!("{}", serde_json::to_string(&all)?),
        "table" => {
            println!(
                "{:<12} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for c in &all {
                println!(
                    "{:<12} {:<8} {:<10} {:<40} {:<31} {}",
                    c.id, c.pid, c.status, c.bundle, c.created, c.owner
                );
            }
        }
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(0)
}

fn ps(root: &state::Root, id: &str, format: &str, ps_args: &[String]) -> Result<u8> {
    let pids = container::pids(root, id)?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            return Ok(0);
        }
        "table" => {}
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(0)
}

fn exec(root: &state::Root, a: ExecArgs) -> Result<u8> {
    let st = root.load(&a.container_id)?;
    match st.status(root) {
        state::Status::Stopped => bail!("cannot exec in a stopped container"),
        state::Status::Paused if !a.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => {}
    }
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(st.config.clone()).context("stored config")?;
    let mut plan = plan::from_spec(&spec, &st.bundle)?;
    let process = match &a.process {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            let p: oci_spec::runtime::Process = serde_json::from_slice(&text)
                .with_context(|| format!("parse {}", path.display()))?;
            plan::process_plan(&p)?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec: no command given (COMMAND or --process)");
            }
            let mut p = plan.process.clone();
            p.args = a.command.clone();
            // --env KEY=value replaces the config's KEY (runc), it doesn't add a second one.
            for kv in &a.env {
                let key = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
                p.env
                    .retain(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) != key);
                p.env.push(kv.clone());
            }
            p.terminal = a.tty;
            p.console_size = None;
            if let Some(cwd) = &a.cwd {
                p.cwd = cwd.clone();
            }
            if let Some(u) = &a.user {
                let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
                p.uid = uid
                    .parse()
                    .with_context(|| format!("--user {u}: uid must be numeric"))?;
                p.gid = gid
                    .parse()
                    .with_context(|| format!("--user {u}: gid must be numeric"))?;
            }
            if !a.additional_gids.is_empty() {
                p.additional_gids = a.additional_gids.clone();
            }
            if a.no_new_privs {
                p.no_new_privileges = true;
            }
            if let Some(l) = &a.process_label {
                p.selinux_label = Some(l.clone());
            }
            if let Some(ap) = &a.apparmor {
                p.apparmor_profile = Some(ap.clone());
            }
            if !a.cap.is_empty() {
                p.capabilities = Some(add_caps(p.capabilities.take(), &a.cap)?);
            }
            p
        }
    };
    plan.process = process;
    let pid_file = a.pid_file.as_deref().map(spawn::absolute);
    let code = spawn::exec(
        root,
        &st,
        &plan,
        &spawn::ExecOpts {
            pid_file: pid_file.as_deref(),
            console_socket: a.console_socket.as_deref(),
            detach: a.detach,
            preserve_fds: a.preserve_fds,
        },
    )?;
    Ok(code.clamp(0, 255) as u8)
}

/// `exec --cap X` adds X to every capability set, as runc does.
fn add_caps(
    base: Option<oci_spec::runtime::LinuxCapabilities>,
    add: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities> {
    let mut v = serde_json::to_value(base.unwrap_or_default())?;
    for set in [
        "bounding",
        "effective",
        "inheritable",
        "permitted",
        "ambient",
    ] {
        let list = v[set].as_array().cloned().unwrap_or_default();
        let mut list: Vec<serde_json::Value> = list;
        for c in add {
            let name = if c.to_ascii_uppercase().starts_with("CAP_") {
                c.to_ascii_uppercase()
            } else {
                format!("CAP_{}", c.to_ascii_uppercase())
            };
            if !list
                .iter()
                .any(|x| x == &serde_json::Value::String(name.clone()))
            {
                list.push(serde_json::Value::String(name));
            }
        }
        v[set] = serde_json::Value::Array(list);
    }
    serde_json::from_value(v).context("--cap: unknown capability")
}
