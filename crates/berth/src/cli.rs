//! cli: docker's command line, with docker's names.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A container engine: what docker does, daemonless, on berth-runtime."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where images, containers and volumes live.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: PathBuf,
    /// Run state (runtime state, netns files, sockets): tmpfs, gone after a reboot.
    #[arg(
        long,
        global = true,
        env = "BERTH_RUN_ROOT",
        default_value = "/run/berth"
    )]
    pub run_root: PathBuf,
    /// The default OCI runtime (a runc-compatible binary).
    #[arg(
        long = "default-runtime",
        global = true,
        env = "BERTH_RUNTIME",
        default_value = "berth-runtime"
    )]
    pub runtime: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and start a container
    Run(Box<RunArgs>),
    /// Create a container without starting it
    Create(Box<RunArgs>),
    /// Start stopped containers
    Start(StartArgs),
    /// Stop running containers (stop signal, then SIGKILL after the timeout)
    Stop(StopArgs),
    /// Restart containers
    Restart(StopArgs),
    /// Send a signal to running containers
    Kill(KillArgs),
    /// Remove containers
    Rm(RmArgs),
    /// List containers
    #[command(alias = "ls")]
    Ps(PsArgs),
    /// Fetch a container's logs
    Logs(LogsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Attach to a running container's output (and input)
    Attach(AttachArgs),
    /// Docker-shaped JSON for containers, images, volumes or networks
    Inspect(InspectArgs),
    /// Block until containers stop, then print their exit codes
    Wait(Names),
    /// Show a container's processes
    Top(TopArgs),
    /// Show published ports
    Port(PortArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Freeze all processes of containers
    Pause(Names),
    /// Thaw paused containers
    Unpause(Names),
    /// Change a running container's limits
    Update(UpdateArgs),
    /// Live resource usage, with CPU throttling and page cache made visible
    Stats(StatsArgs),
    /// Real-time events
    Events(EventsArgs),
    /// Copy files between a container and the host
    Cp(CpArgs),
    /// Changes to a container's filesystem (A added, C changed, D deleted)
    Diff(DiffArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCmd),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Remove images
    Rmi(RmiArgs),
    /// Add a name to an image
    Tag(TagArgs),
    /// An image's layers and the instructions that made them
    History(HistoryArgs),
    /// Load images from a tar archive (docker save or OCI layout) or stdin
    Load(LoadArgs),
    /// Save images to a tar archive that docker and podman can load
    Save(SaveArgs),
    /// Make a single-layer image from a rootfs tarball
    Import(ImportArgs),
    /// Pull an image from a registry
    Pull(PullArgs),
    /// Push an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(BuilderCmd),
    /// Show the version
    Version,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub domainname: Option<String>,
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    #[arg(long)]
    pub mount: Vec<String>,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    #[arg(long = "expose")]
    pub expose: Vec<String>,
    #[arg(long = "network", alias = "net")]
    pub network: Vec<String>,
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    #[arg(long)]
    pub ip: Option<String>,
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "device-read-bps")]
    pub device_read_bps: Vec<String>,
    #[arg(long = "device-write-bps")]
    pub device_write_bps: Vec<String>,
    #[arg(long = "device-read-iops")]
    pub device_read_iops: Vec<String>,
    #[arg(long = "device-write-iops")]
    pub device_write_iops: Vec<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub ulimit: Vec<String>,
    #[arg(long)]
    pub init: bool,
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long)]
    pub sysctl: Vec<String>,
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    #[arg(long)]
    pub ipc: Option<String>,
    #[arg(long)]
    pub pid: Option<String>,
    #[arg(long)]
    pub uts: Option<String>,
    /// host (default), auto, auto:size=N
    #[arg(long)]
    pub userns: Option<String>,
    /// CONTAINER_ID:HOST_ID:SIZE, a user namespace uid map line (repeatable)
    #[arg(long)]
    pub uidmap: Vec<String>,
    /// CONTAINER_ID:HOST_ID:SIZE, a user namespace gid map line (repeatable)
    #[arg(long)]
    pub gidmap: Vec<String>,
    #[arg(long)]
    pub device: Vec<String>,
    #[arg(long)]
    pub runtime: Option<String>,
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Accepted for compatibility; berth has no registry to pull from implicitly.
    #[arg(long)]
    pub pull: Option<String>,
    #[arg(long)]
    pub platform: Option<String>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub image_and_cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    #[arg(short = 'a', long)]
    pub attach: bool,
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    #[arg(short = 'l', long)]
    pub latest: bool,
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(short = 's', long)]
    pub size: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(short = 't', long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub container_and_cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Names {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    pub port: Option<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    #[arg(short = 'a', long)]
    pub archive: bool,
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    pub src: String,
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// List containers
    #[command(alias = "list", name = "ls")]
    Ls(PsArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Docker-shaped JSON
    Inspect(InspectArgs),
    /// Remove containers
    Rm(RmArgs),
    /// (internal) the monitor's exit command: record the exit, free resources, --rm / restart
    #[command(hide = true)]
    Cleanup { id: String },
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long)]
    pub volumes: bool,
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    Create {
        name: Option<String>,
        #[arg(short = 'l', long = "label")]
        label: Vec<String>,
        #[arg(short = 'd', long, default_value = "local")]
        driver: String,
    },
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(long)]
        format: Option<String>,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    #[command(alias = "remove")]
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    Prune(PruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Disk usage of images, containers and volumes
    Df,
    /// Remove stopped containers, unused networks, dangling images (and volumes with --volumes)
    Prune(PruneArgs),
    /// Start the containers whose restart policy says so (call from a boot script)
    Boot,
    /// Where berth keeps things and what the host offers
    Info,
    /// Remove every container, then berth's bridges, nft table and netns mounts:
    /// the host is left as it was before berth ran (images and volumes stay)
    Teardown,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    Create {
        name: String,
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long)]
        gateway: Option<String>,
        #[arg(long)]
        internal: bool,
        #[arg(long = "label")]
        label: Vec<String>,
    },
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(long)]
        format: Option<String>,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    Connect {
        #[arg(long)]
        alias: Vec<String>,
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    Disconnect {
        #[arg(short = 'f', long)]
        force: bool,
        network: String,
        container: String,
    },
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(long)]
    pub digests: bool,
    pub reference: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    #[command(alias = "list")]
    Ls(ImagesArgs),
    Inspect(InspectArgs),
    History(HistoryArgs),
    Tag(TagArgs),
    #[command(alias = "remove")]
    Rm(RmiArgs),
    Prune(PruneArgs),
    Load(LoadArgs),
    Save(SaveArgs),
    Import(ImportArgs),
    Pull(PullArgs),
    Push(PushArgs),
    /// Make the offline base image `busybox:latest` from the host's busybox-static
    Bootstrap {
        #[arg(default_value = "busybox:latest")]
        tag: String,
    },
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name of the Dockerfile (default: PATH/Dockerfile, else PATH/Containerfile); `-` reads stdin
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Name and optionally a tag (name:tag); may be repeated
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Set the target build stage
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the cache
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set metadata on the image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Print only the image id
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image id to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Network for RUN instructions: bridge (default), host, none, or a network name
    #[arg(long, default_value = "bridge")]
    pub network: String,
    /// Set the platform (only this host's, linux/amd64, can be built)
    #[arg(long)]
    pub platform: Option<String>,
    /// Only check the Dockerfile against the lints; build nothing
    #[arg(long)]
    pub lint: bool,
    /// Accepted for docker compatibility (intermediate containers are always removed)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Accepted for docker compatibility
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Accepted for docker compatibility: berth never pulls during a build
    #[arg(long)]
    pub pull: bool,
    /// The context: a directory, or `-` for a tar on stdin
    pub context: String,
}

#[derive(Subcommand, Debug)]
pub enum BuilderCmd {
    /// Remove the build cache
    Prune(BuilderPruneArgs),
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Do not prompt for confirmation (berth never prompts)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Accepted for docker compatibility
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    #[arg(short = 'i', long)]
    pub input: Option<PathBuf>,
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// A tarball path, or - for stdin
    pub file: String,
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(long = "tls-verify", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    #[arg(long)]
    pub platform: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(long = "tls-verify", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    #[arg(long = "tls-verify", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    pub server: String,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub server: String,
}
