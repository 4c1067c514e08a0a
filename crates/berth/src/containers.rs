//! containers: run/create/start/stop/kill/rm/ps/logs/exec/attach/wait/top/
//! port/rename/pause/update/events/cp, and the container, volume and system
//! command groups.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use berth_engine::lifecycle::CreateRequest;
use berth_engine::parse;
use berth_engine::record::{Container, HostConfig, Status};
use berth_engine::{Engine, EngineError};

use crate::attach::{self, Outcome};
use crate::cli::*;
use crate::engine;
use crate::format::{self, Row};

fn host_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Flags → a create request (every value validated here, before anything exists).
pub fn request(a: &RunArgs) -> Result<CreateRequest, EngineError> {
    let mut it = a.image_and_cmd.iter();
    let image = it.next().cloned().unwrap_or_default();
    let cmd: Vec<String> = it.cloned().collect();
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| EngineError::Invalid(format!("open {}: {e}", f.display())))?;
        env.extend(parse::env_file(&text, lookup)?);
    }
    for e in &a.env {
        if let Some(v) = parse::env(e, lookup)? {
            env.push(v);
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = parse::key_value("--label", l, true)?;
        labels.insert(k, v);
    }
    let mut hc = HostConfig {
        runtime: a.runtime.clone().unwrap_or_default(),
        auto_remove: a.rm,
        read_only: a.read_only,
        publish_all: a.publish_all,
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        add_hosts: a.add_host.clone(),
        init: a.init,
        privileged: a.privileged,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        // a seccomp profile file is read now: the record keeps the JSON, so a
        // later start does not depend on the file (docker's CLI does the same)
        security_opt: berth_engine::security::inline_seccomp_files(&a.security_opt)
            .map_err(|e| EngineError::Invalid(e.to_string()))?,
        ipc_mode: a.ipc.clone().unwrap_or_default(),
        pid_mode: a.pid.clone().unwrap_or_default(),
        uts_mode: a.uts.clone().unwrap_or_default(),
        group_add: a.group_add.clone(),
        network_aliases: a.network_alias.clone(),
        ip: a.ip.clone(),
        ..Default::default()
    };
    for m in ["ipc", "pid", "uts"] {
        let v = match m {
            "ipc" => &hc.ipc_mode,
            "pid" => &hc.pid_mode,
            _ => &hc.uts_mode,
        };
        let ok = v.is_empty()
            || v == "host"
            || v == "private"
            || v == "shareable"
            || (m != "uts" && v.starts_with("container:"));
        if !ok {
            return Err(EngineError::Invalid(format!("invalid --{m} value {v:?}")));
        }
    }
    let userns =
        berth_engine::security::userns::from_flags(a.userns.as_deref(), &a.uidmap, &a.gidmap)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
    hc.userns_mode = userns.mode;
    hc.uid_maps = userns.uid_maps;
    hc.gid_maps = userns.gid_maps;
    match a.network.as_slice() {
        [] => hc.network_mode = "bridge".into(),
        [one] => {
            hc.network_mode = if ["host", "none", "bridge", "default"].contains(&one.as_str())
                || one.starts_with("container:")
            {
                if one == "default" {
                    "bridge".into()
                } else {
                    one.clone()
                }
            } else {
                hc.networks = vec![one.clone()];
                one.clone()
            }
        }
        many => {
            if many
                .iter()
                .any(|n| n == "host" || n == "none" || n.starts_with("container:"))
            {
                return Err(EngineError::Invalid("conflicting options: host, none and container: network modes cannot be combined with other networks".into()));
            }
            hc.network_mode = many[0].clone();
            hc.networks = many.to_vec();
        }
    }
    for p in &a.publish {
        hc.ports.push(parse::publish(p)?);
    }
    if !hc.ports.is_empty()
        && (hc.network_mode == "host"
            || hc.network_mode == "none"
            || hc.network_mode.starts_with("container:"))
    {
        return Err(EngineError::Invalid(format!(
            "conflicting options: port publishing and the {} network mode",
            hc.network_mode
        )));
    }
    for v in &a.volume {
        hc.mounts.push(parse::volume(v)?);
    }
    for m in &a.mount {
        hc.mounts.push(parse::mount(m)?);
    }
    for m in hc.mounts.iter_mut() {
        if m.kind == "bind" && m.source.starts_with('.') {
            m.source = std::fs::canonicalize(&m.source)
                .map_err(|_| EngineError::Invalid(format!("invalid mount config for type \"bind\": bind source path does not exist: {}", m.source)))?
                .to_string_lossy()
                .into_owned();
        }
    }
    let mut dsts: Vec<&str> = hc.mounts.iter().map(|m| m.destination.as_str()).collect();
    dsts.sort();
    if let Some(w) = dsts.windows(2).find(|w| w[0] == w[1]) {
        return Err(EngineError::Invalid(format!(
            "duplicate mount point: {}",
            w[0]
        )));
    }
    for t in &a.tmpfs {
        hc.tmpfs.push(parse::tmpfs(t)?);
    }
    let r = &mut hc.resources;
    r.memory = a
        .memory
        .as_deref()
        .map(|m| parse::memory("--memory", m))
        .transpose()?;
    r.memory_swap = a
        .memory_swap
        .as_deref()
        .map(parse::memory_swap)
        .transpose()?;
    r.memory_reservation = a
        .memory_reservation
        .as_deref()
        .map(|m| parse::bytes("--memory-reservation", m))
        .transpose()?;
    if let (Some(m), Some(s)) = (r.memory, r.memory_swap) {
        if s != -1 && s < m {
            return Err(EngineError::Invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
    }
    if r.memory_swap.is_some() && r.memory.is_none() {
        return Err(EngineError::Invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    r.oom_kill_disable = a.oom_kill_disable;
    r.nano_cpus = a
        .cpus
        .as_deref()
        .map(|c| parse::nano_cpus(c, host_cpus()))
        .transpose()?;
    if r.nano_cpus.is_some() && (a.cpu_period.is_some() || a.cpu_quota.is_some()) {
        return Err(EngineError::Invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    r.cpu_shares = a.cpu_shares;
    r.cpu_period = a.cpu_period;
    if let Some(p) = a.cpu_period {
        if !(1000..=1_000_000).contains(&p) {
            return Err(EngineError::Invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into()));
        }
    }
    r.cpu_quota = a.cpu_quota;
    if let Some(q) = a.cpu_quota {
        if q > 0 && q < 1000 {
            return Err(EngineError::Invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
            ));
        }
    }
    r.cpuset_cpus = a.cpuset_cpus.clone();
    r.pids_limit = a.pids_limit.filter(|p| *p != 0);
    r.blkio_weight = a.blkio_weight;
    if let Some(w) = a.blkio_weight {
        if w != 0 && !(10..=1000).contains(&w) {
            return Err(EngineError::Invalid(
                "invalid --blkio-weight: range is 10 to 1000".into(),
            ));
        }
    }
    for (list, flag, bytes, dst) in [
        (&a.device_read_bps, "--device-read-bps", true, 0),
        (&a.device_write_bps, "--device-write-bps", true, 1),
        (&a.device_read_iops, "--device-read-iops", false, 2),
        (&a.device_write_iops, "--device-write-iops", false, 3),
    ] {
        for s in list {
            let v = parse::device_rate(flag, s, bytes)?;
            match dst {
                0 => r.device_read_bps.push(v),
                1 => r.device_write_bps.push(v),
                2 => r.device_read_iops.push(v),
                _ => r.device_write_iops.push(v),
            }
        }
    }
    for u in &a.ulimit {
        hc.ulimits.push(parse::ulimit(u)?);
    }
    if let Some(p) = &a.restart {
        hc.restart_policy = parse::restart_policy(p)?;
    } else {
        hc.restart_policy.name = "no".into();
    }
    for s in &a.sysctl {
        let (k, v) = parse::key_value("--sysctl", s, false)?;
        hc.sysctls.insert(k, v);
    }
    hc.shm_size = a
        .shm_size
        .as_deref()
        .map(|s| parse::bytes("--shm-size", s).map(|v| v as u64))
        .transpose()?;
    for d in &a.device {
        hc.devices.push(parse::device(d)?);
    }
    for o in &a.log_opt {
        let (k, v) = parse::key_value("--log-opt", o, false)?;
        match k.as_str() {
            "max-size" => hc.log_max_size = Some(parse::bytes("--log-opt max-size", &v)? as u64),
            "max-file" => {
                hc.log_max_file = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    EngineError::Invalid(format!("invalid --log-opt max-file {v:?}"))
                })?
            }
            _ => {
                return Err(EngineError::Invalid(format!(
                    "unknown log opt '{k}' for json-file log driver"
                )))
            }
        }
    }
    if let Some(d) = &a.log_driver {
        if d != "json-file" {
            return Err(EngineError::Invalid(format!(
                "log driver {d:?} is not supported (berth writes json-file logs)"
            )));
        }
    }
    if let Some(s) = &a.stop_signal {
        parse::signal(s)?;
    }
    // validate security options now, so a bad one fails before anything exists
    berth_engine::lifecycle::security_options(&hc)?;
    for e in &a.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        if port.parse::<u16>().map(|p| p == 0).unwrap_or(true) || !["tcp", "udp"].contains(&proto) {
            return Err(EngineError::Invalid(format!(
                "invalid --expose {e:?}: expected PORT[/tcp|udp]"
            )));
        }
    }
    Ok(CreateRequest {
        name: a.name.clone(),
        image,
        cmd,
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        env,
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        domainname: a.domainname.clone(),
        labels,
        tty: a.tty,
        open_stdin: a.interactive,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        expose: a.expose.clone(),
        host_config: hc,
    })
}

pub fn create(g: &Global, a: RunArgs) -> Result<i32> {
    let e = engine(g)?;
    let req = request(&a)?;
    let c = e.create(req)?;
    println!("{}", c.id);
    Ok(0)
}

pub fn run(g: &Global, a: RunArgs) -> Result<i32> {
    let e = engine(g)?;
    if a.detach && a.rm && a.restart.is_some() {
        bail!(EngineError::Invalid(
            "conflicting options: --restart and --rm".into()
        ));
    }
    let req = request(&a)?;
    let c = e.create(req)?;
    if a.detach {
        match e.start(&c.id, None) {
            Ok(_) => {
                println!("{}", c.id);
                Ok(0)
            }
            Err(err) => {
                if a.rm {
                    let _ = e.remove(&c.id, true, true);
                }
                Err(err.into())
            }
        }
    } else {
        let code = start_attached(&e, &c.id, a.interactive, a.tty, a.sig_proxy);
        match code {
            Ok(code) => {
                if a.rm {
                    // docker run --rm returns once the container is gone
                    for _ in 0..500 {
                        if e.records().load(&c.id).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                Ok(code)
            }
            Err(err) => {
                if a.rm {
                    let _ = e.remove(&c.id, true, true);
                }
                Err(err)
            }
        }
    }
}

/// Attach-socket frames (berth-monitor's protocol): "this client will do the
/// exit command's work" and "it is done".
const FRAME_CLAIM_CLEANUP: u8 = 3;
const FRAME_CLEANUP_DONE: u8 = 4;

/// Start with the attach client connected before the process execs.
///
/// When no restart policy can bring the container back, this process (which
/// waits for the exit anyway) claims the monitor's exit command and runs
/// `cleanup` (and `--rm`) itself: that saves an exec of this 10 MB CLI by the
/// monitor and polling for its result. The claim lives on the socket: if we die
/// before saying "done", the monitor runs the exit command as before.
fn start_attached(e: &Engine, id: &str, stdin: bool, tty: bool, sig_proxy: bool) -> Result<i32> {
    let mut conn = None;
    let mut claim: Option<std::os::unix::net::UnixStream> = None;
    let sock = e.attach_socket(id);
    let mut hook = |c: &Container| -> Result<(), EngineError> {
        let s = attach::connect(&sock).map_err(|err| EngineError::io("attach", err))?;
        if matches!(c.host_config.restart_policy.name.as_str(), "" | "no") {
            if let Ok(mut k) = s.try_clone() {
                if k.write_all(&[FRAME_CLAIM_CLEANUP, 0, 0, 0, 0, 0, 0, 0])
                    .is_ok()
                {
                    claim = Some(k);
                }
            }
        }
        conn = Some(s);
        Ok(())
    };
    let c = e.start(id, Some(&mut hook))?;
    let stream = conn.ok_or_else(|| anyhow!("attach: not connected"))?;
    if sig_proxy && !tty {
        proxy_signals(e, &c);
    }
    match attach::relay(stream, stdin, tty)? {
        Outcome::Exited(code) if claim.is_some() => {
            if e.cleanup(&c.id).is_ok() {
                if let Some(mut k) = claim {
                    let _ = k.write_all(&[FRAME_CLEANUP_DONE, 0, 0, 0, 0, 0, 0, 0]);
                }
            }
            // else: dropping the claim without "done" hands the cleanup back
            Ok(code)
        }
        Outcome::Exited(code) => {
            // the monitor reports the exit before its cleanup records it (OOM
            // kill, finish time): return once the record tells the whole story
            let _ = e.wait_exited(&c.id, Duration::from_secs(10));
            Ok(code)
        }
        Outcome::Detached => Ok(0),
        Outcome::Lost => Ok(e.wait(id)?),
    }
}

/// Forward SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR* to the container (docker's --sig-proxy).
fn proxy_signals(e: &Engine, c: &Container) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let rt = e.runtime_for(c);
    let id = c.id.clone();
    std::thread::spawn(move || loop {
        match set.wait() {
            Ok(sig) => {
                let _ = rt.kill(&id, sig as i32);
            }
            Err(_) => return,
        }
    });
}

pub fn start(g: &Global, a: StartArgs) -> Result<i32> {
    let e = engine(g)?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!(EngineError::Invalid(
                "you cannot start and attach multiple containers at once".into()
            ));
        }
        let c = e.get(&a.containers[0])?;
        return start_attached(
            &e,
            &c.id,
            a.interactive && c.config.open_stdin,
            c.config.tty,
            !c.config.tty,
        );
    }
    let mut failed = false;
    for name in &a.containers {
        match e.start(name, None) {
            Ok(_) => println!("{name}"),
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 125 } else { 0 })
}

pub fn stop(g: &Global, a: StopArgs, restart: bool) -> Result<i32> {
    let e = engine(g)?;
    let mut failed = false;
    for name in &a.containers {
        let r = (|| -> Result<(), EngineError> {
            if let Some(s) = &a.signal {
                let c = e.get(name)?;
                let sig = parse::signal(s)?;
                if matches!(c.state.status, Status::Running) {
                    let _ = e.kill(&c.id, sig);
                }
            }
            e.stop(name, a.time)?;
            if restart {
                let c = e.get(name)?;
                {
                    let _l = e.records().lock(&c.id)?;
                    let mut fresh = e.records().load(&c.id)?;
                    fresh.state.stopped_by_user = false;
                    e.records().save(&fresh)?;
                }
                e.start(&c.id, None)?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => println!("{name}"),
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 125 } else { 0 })
}

pub fn kill(g: &Global, a: KillArgs) -> Result<i32> {
    let e = engine(g)?;
    let sig = parse::signal(&a.signal)?;
    let mut failed = false;
    for name in &a.containers {
        match e.kill(name, sig) {
            Ok(_) => println!("{name}"),
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 125 } else { 0 })
}

pub fn rm(g: &Global, a: RmArgs) -> Result<i32> {
    let e = engine(g)?;
    let mut failed = false;
    for name in &a.containers {
        match e.remove(name, a.force, a.volumes) {
            Ok(()) => println!("{name}"),
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn status_text(c: &Container) -> String {
    let now = berth_engine::time::unix_nanos(std::time::SystemTime::now());
    let since = |t: &str| {
        berth_engine::time::parse_rfc3339(t)
            .map(|t| now - t)
            .unwrap_or(0)
    };
    match c.state.status {
        Status::Running => format!(
            "Up {}",
            berth_engine::time::human_duration(since(&c.state.started_at))
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            berth_engine::time::human_duration(since(&c.state.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            berth_engine::time::human_duration(since(&c.state.finished_at))
        ),
        Status::Exited if c.state.started_at.is_empty() => "Created".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            berth_engine::time::human_duration(since(&c.state.finished_at))
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

pub fn ports_text(c: &Container) -> String {
    c.network
        .ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                if p.host_ip.is_empty() {
                    "0.0.0.0"
                } else {
                    &p.host_ip
                },
                p.host_port,
                p.container_port,
                p.protocol
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ps_filter(c: &Container, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "name" => c.name.contains(v.as_str()),
        "id" => c.id.starts_with(v.as_str()),
        "status" => c.state.status.as_str() == v,
        "exited" => c.state.status == Status::Exited && c.state.exit_code.to_string() == *v,
        "ancestor" => c.config.image == *v || c.config.image_id.contains(v.as_str()),
        "label" => {
            let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
            c.config
                .labels
                .get(lk)
                .map(|x| lv.is_empty() || x == lv)
                .unwrap_or(false)
        }
        "volume" => c
            .host_config
            .mounts
            .iter()
            .any(|m| m.name == *v || m.destination == *v),
        "network" => c.network.endpoints.iter().any(|n| n.network == *v),
        _ => false,
    })
}

pub fn parse_filters(list: &[String]) -> Result<Vec<(String, String)>, EngineError> {
    list.iter()
        .map(|f| parse::key_value("--filter", f, false))
        .collect()
}

pub fn ps(g: &Global, a: PsArgs) -> Result<i32> {
    let e = engine(g)?;
    let filters = parse_filters(&a.filter)?;
    let mut list = e.list(
        a.all
            || a.last.is_some()
            || a.latest
            || filters.iter().any(|(k, _)| k == "status" || k == "exited"),
    )?;
    list.retain(|c| ps_filter(c, &filters));
    if a.latest {
        list.truncate(1);
    }
    if let Some(n) = a.last {
        list.truncate(n);
    }
    if a.quiet {
        for c in &list {
            println!(
                "{}",
                if a.no_trunc {
                    c.id.as_str()
                } else {
                    c.short_id()
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Row> = list
        .iter()
        .map(|c| {
            let mut cmd = berth_engine::spec::args(c).join(" ");
            if !a.no_trunc && cmd.chars().count() > 20 {
                cmd = cmd.chars().take(19).collect::<String>() + "…";
            }
            let mut r = Row::new();
            r.insert(
                "ID".into(),
                if a.no_trunc {
                    c.id.clone()
                } else {
                    c.short_id().to_string()
                },
            );
            r.insert("Image".into(), c.config.image.clone());
            r.insert("Command".into(), format!("\"{cmd}\""));
            r.insert("CreatedAt".into(), c.created.clone());
            let now = berth_engine::time::unix_nanos(std::time::SystemTime::now());
            let created = berth_engine::time::parse_rfc3339(&c.created)
                .map(|t| now - t)
                .unwrap_or(0);
            r.insert(
                "RunningFor".into(),
                format!("{} ago", berth_engine::time::human_duration(created)),
            );
            r.insert("Status".into(), status_text(c));
            r.insert("State".into(), c.state.status.as_str().into());
            r.insert("Ports".into(), ports_text(c));
            r.insert("Names".into(), c.name.clone());
            r.insert(
                "Labels".into(),
                c.config
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            r.insert(
                "Networks".into(),
                c.network
                    .endpoints
                    .iter()
                    .map(|n| n.network.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            r.insert(
                "Mounts".into(),
                c.host_config
                    .mounts
                    .iter()
                    .map(|m| {
                        if m.name.is_empty() {
                            m.source.clone()
                        } else {
                            m.name.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            );
            r
        })
        .collect();
    let headers = [
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
    ];
    print!("{}", format::render(a.format.as_deref(), &headers, &rows));
    Ok(0)
}

pub fn logs(g: &Global, a: LogsArgs) -> Result<i32> {
    let e = engine(g)?;
    let c = e.get(&a.container)?;
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| EngineError::Invalid(format!("invalid --tail {n:?}")))?,
        ),
    };
    let point = |s: &Option<String>, flag: &str| -> Result<Option<i128>, EngineError> {
        s.as_deref()
            .map(|v| {
                berth_engine::time::parse_point(v)
                    .ok_or_else(|| EngineError::Invalid(format!("invalid value {v:?} for {flag}")))
            })
            .transpose()
    };
    let opts = berth_engine::logs::Options {
        tail,
        since: point(&a.since, "--since")?,
        until: point(&a.until, "--until")?,
        timestamps: a.timestamps,
        follow: a.follow,
    };
    let id = c.id.clone();
    let running = || {
        e.records()
            .load(&id)
            .map(|c| {
                matches!(
                    c.state.status,
                    Status::Running | Status::Paused | Status::Restarting
                )
            })
            .unwrap_or(false)
    };
    let mut out = io::stdout();
    let mut err = io::stderr();
    berth_engine::logs::show(&e.log_path(&c.id), &opts, &running, &mut out, &mut err);
    Ok(0)
}

pub fn exec(g: &Global, a: ExecArgs) -> Result<i32> {
    let e = engine(g)?;
    let c = e.get(&a.container_and_cmd[0])?;
    if c.state.status != Status::Running {
        bail!(EngineError::Conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let cmd: Vec<String> = a.container_and_cmd[1..].to_vec();
    let rootfs = PathBuf::from(format!("/proc/{}/root", c.state.pid));
    let user = berth_engine::users::resolve_in_rootfs(
        &rootfs,
        a.user.as_deref().unwrap_or(&c.config.user),
        &c.host_config.group_add,
    )?;
    let mut env = berth_engine::spec::env(&c);
    for kv in &a.env {
        if let Some(v) = parse::env(kv, |k| std::env::var(k).ok())? {
            let key = v.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(v);
        }
    }
    if a.tty && !env.iter().any(|v| v.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(e.root.container_run(&c.id).join("bundle/config.json"))
            .context("read the container's config.json")?,
    )?;
    let mut process = config["process"].clone();
    process["args"] = serde_json::json!(cmd);
    process["env"] = serde_json::json!(env);
    process["terminal"] = serde_json::json!(a.tty);
    process["cwd"] =
        serde_json::json!(a.workdir.clone().unwrap_or_else(
            || if c.config.working_dir.is_empty() {
                "/".into()
            } else {
                c.config.working_dir.clone()
            }
        ));
    process["user"] = serde_json::json!({"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids});
    if user.uid != 0 {
        for k in ["effective", "permitted", "ambient", "inheritable"] {
            process["capabilities"][k] = serde_json::json!([]);
        }
    }
    if a.privileged {
        process["capabilities"] = serde_json::Value::Null;
    }
    let pfile = tempfile::NamedTempFile::new()?;
    std::fs::write(pfile.path(), serde_json::to_vec(&process)?)?;
    let rt = e.runtime_for(&c);
    let mut cmdline = rt.command();
    cmdline.arg("exec").arg("--process").arg(pfile.path());
    if a.detach {
        cmdline.arg("--detach");
    }
    if a.tty && !a.detach {
        cmdline.arg("--tty");
    }
    cmdline.arg(&c.id);
    if !a.interactive {
        cmdline.stdin(std::process::Stdio::null());
    }
    let out = cmdline
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("exec the runtime")?;
    let output = out.wait_with_output()?;
    let code = output
        .status
        .code()
        .unwrap_or(128 + nix_signal(&output.status));
    let errtext = String::from_utf8_lossy(&output.stderr).to_string();
    if !output.status.success() && (errtext.contains("not found") || errtext.contains("no such")) {
        eprintln!("berth: {}", errtext.lines().last().unwrap_or("").trim());
        return Ok(127);
    }
    if !output.status.success() && errtext.contains("permission denied") {
        eprintln!("berth: {}", errtext.lines().last().unwrap_or("").trim());
        return Ok(126);
    }
    io::stderr().write_all(&output.stderr)?;
    Ok(code)
}

fn nix_signal(s: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.signal().unwrap_or(0)
}

pub fn attach(g: &Global, a: AttachArgs) -> Result<i32> {
    let e = engine(g)?;
    let c = e.get(&a.container)?;
    if c.state.status != Status::Running {
        bail!(EngineError::Conflict(
            "You cannot attach to a stopped container, start it first".into()
        ));
    }
    let stream = attach::connect(&e.attach_socket(&c.id))?;
    if a.sig_proxy && !c.config.tty {
        proxy_signals(&e, &c);
    }
    match attach::relay(stream, !a.no_stdin && c.config.open_stdin, c.config.tty)? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Detached => Ok(0),
        Outcome::Lost => Ok(e.wait(&c.id)?),
    }
}

pub fn wait(g: &Global, a: Names) -> Result<i32> {
    let e = engine(g)?;
    let mut failed = false;
    for n in &a.names {
        match e.wait(n) {
            Ok(code) => println!("{code}"),
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn top(g: &Global, a: TopArgs) -> Result<i32> {
    let e = engine(g)?;
    let c = e.get(&a.container)?;
    if c.state.status != Status::Running && c.state.status != Status::Paused {
        bail!(EngineError::Conflict(format!(
            "container {} is not running",
            c.name
        )));
    }
    let pids = e.runtime_for(&c).pids(&c.id)?;
    let ps_args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-f".into()]
    } else {
        a.ps_args.clone()
    };
    let list = pids
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new("ps")
        .args(&ps_args)
        .arg("-p")
        .arg(&list)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    io::stdout().write_all(&out.stdout)?;
    Ok(0)
}

pub fn port(g: &Global, a: PortArgs) -> Result<i32> {
    let e = engine(g)?;
    let c = e.get(&a.container)?;
    let (want_port, want_proto) = match &a.port {
        Some(p) => {
            let (n, pr) = p.split_once('/').unwrap_or((p, "tcp"));
            (
                Some(
                    n.parse::<u16>()
                        .map_err(|_| EngineError::Invalid(format!("invalid port {p:?}")))?,
                ),
                pr.to_string(),
            )
        }
        None => (None, String::new()),
    };
    let mut found = false;
    for p in &c.network.ports {
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &p.host_ip
        };
        match want_port {
            Some(n) if n == p.container_port && want_proto == p.protocol => {
                println!("{ip}:{}", p.host_port);
                found = true;
            }
            Some(_) => {}
            None => {
                println!(
                    "{}/{} -> {ip}:{}",
                    p.container_port, p.protocol, p.host_port
                );
                found = true;
            }
        }
    }
    if a.port.is_some() && !found {
        bail!(EngineError::Invalid(format!(
            "no public port '{}' published for {}",
            a.port.unwrap_or_default(),
            c.name
        )));
    }
    Ok(0)
}

pub fn rename(g: &Global, a: RenameArgs) -> Result<i32> {
    engine(g)?.rename(&a.container, &a.new_name)?;
    Ok(0)
}

pub fn pause(g: &Global, a: Names, p: bool) -> Result<i32> {
    let e = engine(g)?;
    for n in &a.names {
        e.pause(n, p)?;
        println!("{n}");
    }
    Ok(0)
}

pub fn update(g: &Global, a: UpdateArgs) -> Result<i32> {
    let e = engine(g)?;
    let mut res = serde_json::Map::new();
    let mut memory = serde_json::Map::new();
    if let Some(m) = &a.memory {
        memory.insert("limit".into(), parse::memory("--memory", m)?.into());
    }
    if let Some(m) = &a.memory_swap {
        memory.insert("swap".into(), parse::memory_swap(m)?.into());
    }
    if let Some(m) = &a.memory_reservation {
        memory.insert(
            "reservation".into(),
            parse::bytes("--memory-reservation", m)?.into(),
        );
    }
    let mut cpu = serde_json::Map::new();
    if let Some(c) = &a.cpus {
        let n = parse::nano_cpus(c, host_cpus())?;
        cpu.insert("period".into(), 100_000.into());
        cpu.insert("quota".into(), (n * 100_000 / 1_000_000_000).into());
    }
    if let Some(v) = a.cpu_shares {
        cpu.insert("shares".into(), v.into());
    }
    if let Some(v) = a.cpu_period {
        cpu.insert("period".into(), v.into());
    }
    if let Some(v) = a.cpu_quota {
        cpu.insert("quota".into(), v.into());
    }
    if let Some(v) = &a.cpuset_cpus {
        cpu.insert("cpus".into(), v.clone().into());
    }
    if !memory.is_empty() {
        res.insert("memory".into(), memory.into());
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), cpu.into());
    }
    if let Some(p) = a.pids_limit {
        res.insert("pids".into(), serde_json::json!({"limit": p}));
    }
    if let Some(w) = a.blkio_weight {
        res.insert("blockIO".into(), serde_json::json!({"weight": w}));
    }
    let restart = a
        .restart
        .as_deref()
        .map(parse::restart_policy)
        .transpose()?;
    for name in &a.containers {
        let c = e.get(name)?;
        if !res.is_empty() {
            if c.state.status != Status::Running && c.state.status != Status::Paused {
                bail!(EngineError::Conflict(format!(
                    "container {} is not running: cannot update live limits",
                    c.name
                )));
            }
            let f = tempfile::NamedTempFile::new()?;
            std::fs::write(
                f.path(),
                serde_json::to_vec(&serde_json::Value::Object(res.clone()))?,
            )?;
            e.runtime_for(&c).update(&c.id, f.path())?;
        }
        let _l = e.records().lock(&c.id)?;
        let mut fresh = e.records().load(&c.id)?;
        let r = &mut fresh.host_config.resources;
        if let Some(m) = &a.memory {
            r.memory = Some(parse::memory("--memory", m)?);
        }
        if let Some(c) = &a.cpus {
            r.nano_cpus = Some(parse::nano_cpus(c, host_cpus())?);
        }
        if let Some(v) = a.cpu_shares {
            r.cpu_shares = Some(v);
        }
        if let Some(v) = a.pids_limit {
            r.pids_limit = Some(v);
        }
        if let Some(p) = &restart {
            fresh.host_config.restart_policy = p.clone();
        }
        e.records().save(&fresh)?;
        println!("{name}");
    }
    Ok(0)
}

pub fn events(g: &Global, a: EventsArgs) -> Result<i32> {
    let e = engine(g)?;
    let filters = parse_filters(&a.filter)?;
    let point = |s: &Option<String>| {
        s.as_deref()
            .map(|v| {
                berth_engine::time::parse_point(v)
                    .ok_or_else(|| EngineError::Invalid(format!("invalid time {v:?}")))
            })
            .transpose()
    };
    let since = point(&a.since)?;
    let until = point(&a.until)?;
    let path = e.root.events();
    let print = |ev: &berth_engine::events::Event| {
        if !berth_engine::events::matches(ev, &filters) {
            return;
        }
        if let Some(f) = &a.format {
            let mut r = Row::new();
            r.insert("Type".into(), ev.kind.clone());
            r.insert("Action".into(), ev.action.clone());
            r.insert("ID".into(), ev.actor.id.clone());
            r.insert("Time".into(), ev.time.to_string());
            for (k, v) in &ev.actor.attributes {
                r.insert(k.clone(), v.clone());
            }
            if f.trim() == "{{json .}}" {
                println!("{}", serde_json::to_string(ev).unwrap_or_default());
            } else {
                println!("{}", format::apply(f, &r));
            }
        } else {
            let t = berth_engine::time::format_rfc3339(
                std::time::UNIX_EPOCH + Duration::from_nanos(ev.time_nano.max(0) as u64),
            );
            let attrs = ev
                .actor
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            println!("{t} {} {} {} ({attrs})", ev.kind, ev.action, ev.actor.id);
        }
        let _ = io::stdout().flush();
    };
    let mut pos = 0u64;
    let now = berth_engine::time::unix_nanos(std::time::SystemTime::now());
    loop {
        if let Ok(mut f) = std::fs::File::open(&path) {
            use std::io::{BufRead, Seek, SeekFrom};
            let _ = f.seek(SeekFrom::Start(pos));
            let mut r = io::BufReader::new(f);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if !line.ends_with('\n') {
                    break;
                }
                pos += line.len() as u64;
                if let Ok(ev) = serde_json::from_str::<berth_engine::events::Event>(&line) {
                    let t = ev.time_nano;
                    let after_since = since.map(|s| t >= s).unwrap_or(t >= now);
                    let before_until = until.map(|u| t <= u).unwrap_or(true);
                    if after_since && before_until {
                        print(&ev);
                    }
                }
                line.clear();
            }
        }
        if let Some(u) = until {
            if berth_engine::time::unix_nanos(std::time::SystemTime::now()) > u {
                return Ok(0);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `berth cp CONTAINER:SRC DST` / `berth cp SRC CONTAINER:DST`: paths inside the
/// container are resolved in its root (/proc/PID/root while running, the overlay
/// mounted on a temp dir otherwise) without following symlinks out of it.
pub fn cp(g: &Global, a: CpArgs) -> Result<i32> {
    let e = engine(g)?;
    let split = |s: &str| -> Option<(String, String)> {
        if s.starts_with('/') || s.starts_with('.') {
            return None;
        }
        s.split_once(':')
            .map(|(c, p)| (c.to_string(), p.to_string()))
    };
    let (ctr, inside, host, to_host) = match (split(&a.src), split(&a.dst)) {
        (Some((c, p)), None) => (c, p, a.dst.clone(), true),
        (None, Some((c, p))) => (c, p, a.src.clone(), false),
        _ => bail!(EngineError::Invalid("copying between containers or between host paths is not supported: one side must be CONTAINER:PATH".into())),
    };
    let c = e.get(&ctr)?;
    let guard = e.container_root(&c)?;
    let root = guard.path();
    let inside_abs = if inside.starts_with('/') {
        inside.clone()
    } else {
        format!("/{inside}")
    };
    // "dir/" and "dir" both name the directory; split off the last component
    let trimmed = inside_abs.trim_end_matches('/');
    let (parent, base) = match trimmed.rsplit_once('/') {
        Some((p, b)) => (
            if p.is_empty() {
                "/".to_string()
            } else {
                p.to_string()
            },
            b.to_string(),
        ),
        None => ("/".to_string(), String::new()),
    };
    let dirfd = berth_engine::lifecycle::open_in_root(root, &parent).ok_or_else(|| {
        EngineError::Invalid(format!(
            "Could not find the file {inside} in container {ctr}"
        ))
    })?;
    let dir = format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        std::os::fd::AsRawFd::as_raw_fd(&dirfd)
    );
    let inside_path = if base.is_empty() {
        format!("{dir}/.")
    } else {
        format!("{dir}/{base}")
    };
    let status = if to_host {
        if std::fs::symlink_metadata(&inside_path).is_err() {
            bail!(EngineError::Invalid(format!(
                "Could not find the file {inside} in container {ctr}"
            )));
        }
        let dst = if Path::new(&host).is_dir() && !base.is_empty() {
            Path::new(&host).join(&base)
        } else {
            PathBuf::from(&host)
        };
        Command::new("cp")
            .arg("-a")
            .arg("-T")
            .arg(&inside_path)
            .arg(&dst)
            .status()?
    } else {
        if std::fs::symlink_metadata(&host).is_err() {
            bail!(EngineError::Invalid(format!(
                "could not find the file {host} on the host"
            )));
        }
        let host_name = Path::new(&host)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The destination is resolved inside the container's root, never
        // through a symlink that points out of it: an existing directory gets
        // the file inside it; otherwise the last component is replaced.
        let dir_fd = berth_engine::lifecycle::open_in_root(
            root,
            if trimmed.is_empty() { "/" } else { trimmed },
        );
        let target = match &dir_fd {
            Some(fd) => format!(
                "/proc/{}/fd/{}/{host_name}",
                std::process::id(),
                std::os::fd::AsRawFd::as_raw_fd(fd)
            ),
            None => inside_path.clone(),
        };
        if std::fs::symlink_metadata(&target)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            std::fs::remove_file(&target)?;
        }
        let st = Command::new("cp")
            .arg("-a")
            .arg("-T")
            .arg(&host)
            .arg(&target)
            .status()?;
        drop(dir_fd);
        st
    };
    drop(dirfd);
    drop(guard);
    if !status.success() {
        bail!("copy failed");
    }
    Ok(0)
}

pub fn container_cmd(g: &Global, c: ContainerCmd) -> Result<i32> {
    match c {
        ContainerCmd::Ls(a) => ps(g, a),
        ContainerCmd::Inspect(a) => crate::inspect::inspect(
            g,
            InspectArgs {
                kind: Some("container".into()),
                ..a
            },
        ),
        ContainerCmd::Rm(a) => rm(g, a),
        ContainerCmd::Cleanup { id } => {
            engine(g)?.cleanup(&id)?;
            Ok(0)
        }
        ContainerCmd::Prune(_) => {
            let e = engine(g)?;
            let mut n = 0;
            for c in e.list(true)? {
                if matches!(
                    c.state.status,
                    Status::Exited | Status::Created | Status::Dead
                ) {
                    e.remove(&c.id, false, false)?;
                    println!("{}", c.id);
                    n += 1;
                }
            }
            println!("Deleted Containers: {n}");
            Ok(0)
        }
    }
}

fn volume_users(e: &Engine, name: &str) -> Result<Vec<String>> {
    Ok(e.records()
        .list()?
        .into_iter()
        .filter(|c| {
            c.host_config
                .mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name == name)
        })
        .map(|c| c.short_id().to_string())
        .collect())
}

pub fn volume_cmd(g: &Global, c: VolumeCmd) -> Result<i32> {
    let e = engine(g)?;
    match c {
        VolumeCmd::Create {
            name,
            label,
            driver,
        } => {
            if driver != "local" {
                bail!(EngineError::Invalid(format!(
                    "volume driver {driver:?} is not supported (only local)"
                )));
            }
            let mut labels = BTreeMap::new();
            for l in &label {
                let (k, v) = parse::key_value("--label", l, true)?;
                labels.insert(k, v);
            }
            let anonymous = name.is_none();
            let name = name.unwrap_or_else(|| berth_engine::names::random_hex(32));
            let v = e.volumes().create(&name, labels, anonymous)?;
            println!("{}", v.name);
        }
        VolumeCmd::Ls { quiet, format } => {
            let vols = e.volumes().list()?;
            if quiet {
                for v in vols {
                    println!("{}", v.name);
                }
            } else {
                let rows: Vec<Row> = vols
                    .iter()
                    .map(|v| {
                        [
                            ("Driver".to_string(), v.driver.clone()),
                            ("Name".to_string(), v.name.clone()),
                            ("Mountpoint".to_string(), v.mountpoint.clone()),
                        ]
                        .into()
                    })
                    .collect();
                print!(
                    "{}",
                    format::render(
                        format.as_deref(),
                        &[("Driver", "DRIVER"), ("Name", "VOLUME NAME")],
                        &rows
                    )
                );
            }
        }
        VolumeCmd::Inspect { names } => {
            let mut out = Vec::new();
            for n in &names {
                out.push(e.volumes().inspect(n)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCmd::Rm { force, names } => {
            let mut failed = false;
            for n in &names {
                let users = volume_users(&e, n)?;
                let r = e.volumes().remove(n, &users);
                match r {
                    Ok(()) => println!("{n}"),
                    Err(EngineError::NoSuchVolume(_)) if force => {}
                    Err(err) => {
                        eprintln!("berth: {err}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
        VolumeCmd::Prune(a) => {
            let mut freed = 0u64;
            for v in e.volumes().list()? {
                if !a.all && !v.anonymous {
                    continue;
                }
                if volume_users(&e, &v.name)?.is_empty() {
                    freed += dir_size(Path::new(&v.mountpoint));
                    e.volumes().remove(&v.name, &[])?;
                    println!("{}", v.name);
                }
            }
            println!("Total reclaimed space: {}", human_size(freed));
        }
    }
    Ok(0)
}

pub fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

pub fn human_size(b: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.3}{}", units[i]).replace(".000", "")
    }
}

pub fn system_cmd(g: &Global, c: SystemCmd) -> Result<i32> {
    let e = engine(g)?;
    match c {
        SystemCmd::Boot => {
            for n in e.boot()? {
                println!("{n}");
            }
        }
        SystemCmd::Df => {
            let images = e
                .images()?
                .list()
                .map_err(|err| EngineError::Image(err.to_string()))?;
            let containers = e.list(true)?;
            let vols = e.volumes().list()?;
            let img_size: u64 = images.iter().map(|i| i.size).sum();
            let active_imgs = images
                .iter()
                .filter(|i| containers.iter().any(|c| c.config.image_id == i.id))
                .count();
            let ctr_size: u64 = containers
                .iter()
                .map(|c| dir_size(&e.root.container_dir(&c.id).join("upper")))
                .sum();
            let running = containers
                .iter()
                .filter(|c| c.state.status == Status::Running)
                .count();
            let vol_size: u64 = vols
                .iter()
                .map(|v| dir_size(Path::new(&v.mountpoint)))
                .sum();
            let rows: Vec<Row> = vec![
                [
                    ("Type", "Images"),
                    ("TotalCount", &images.len().to_string()),
                    ("Active", &active_imgs.to_string()),
                    ("Size", &human_size(img_size)),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                [
                    ("Type", "Containers"),
                    ("TotalCount", &containers.len().to_string()),
                    ("Active", &running.to_string()),
                    ("Size", &human_size(ctr_size)),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                [
                    ("Type", "Local Volumes"),
                    ("TotalCount", &vols.len().to_string()),
                    (
                        "Active",
                        &vols
                            .iter()
                            .filter(|v| {
                                volume_users(&e, &v.name)
                                    .map(|u| !u.is_empty())
                                    .unwrap_or(false)
                            })
                            .count()
                            .to_string(),
                    ),
                    ("Size", &human_size(vol_size)),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ];
            print!(
                "{}",
                format::render(
                    None,
                    &[
                        ("Type", "TYPE"),
                        ("TotalCount", "TOTAL"),
                        ("Active", "ACTIVE"),
                        ("Size", "SIZE")
                    ],
                    &rows
                )
            );
        }
        SystemCmd::Prune(a) => {
            container_cmd(
                g,
                ContainerCmd::Prune(PruneArgs {
                    force: true,
                    all: false,
                    volumes: false,
                    filter: vec![],
                }),
            )?;
            crate::networks::network_cmd(
                g,
                NetworkCmd::Prune(PruneArgs {
                    force: true,
                    all: false,
                    volumes: false,
                    filter: vec![],
                }),
            )?;
            crate::images::image_cmd(
                g,
                ImageCmd::Prune(PruneArgs {
                    force: true,
                    all: a.all,
                    volumes: false,
                    filter: vec![],
                }),
            )?;
            if a.volumes {
                volume_cmd(
                    g,
                    VolumeCmd::Prune(PruneArgs {
                        force: true,
                        all: false,
                        volumes: false,
                        filter: vec![],
                    }),
                )?;
            }
        }
        SystemCmd::Teardown => {
            for c in e.list(true)? {
                if let Err(err) = e.remove(&c.id, true, true) {
                    eprintln!("berth: remove {}: {err}", c.name);
                }
            }
            berth_engine::security::runtime_exe::release(&e.root.run.join("exe"));
            berth_engine::network::open(&e)?
                .teardown_all()
                .map_err(|err| EngineError::Network(err.to_string()))?;
        }
        SystemCmd::Info => {
            let h = berth_cgroups_layout();
            println!("Root Dir: {}", e.root.dir.display());
            println!("Run Dir: {}", e.root.run.display());
            println!("Default Runtime: {}", e.default_runtime);
            println!("Cgroup Layout: {h}");
            println!("Containers: {}", e.list(true)?.len());
            println!(
                "Images: {}",
                e.images()?.list().map(|l| l.len()).unwrap_or(0)
            );
        }
    }
    Ok(0)
}

fn berth_cgroups_layout() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = mounts.lines().any(|l| l.contains(" - cgroup "));
    let v2 = mounts.lines().any(|l| l.contains(" - cgroup2 "));
    match (v1, v2) {
        (true, true) => "hybrid (cgroup v1 controllers, cgroup2 mounted)".into(),
        (true, false) => "v1".into(),
        (false, true) => "v2".into(),
        _ => "none".into(),
    }
}
