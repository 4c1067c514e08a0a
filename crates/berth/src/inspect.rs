//! inspect: Docker-shaped JSON for containers (and, by name lookup, images,
//! volumes and networks).

use anyhow::Result;
use berth_engine::record::{Container, Status};
use serde_json::{json, Value};

use crate::cli::{Global, InspectArgs};
use crate::engine;

pub fn container_json(e: &berth_engine::Engine, c: &Container) -> Value {
    let s = &c.state;
    let hc = &c.host_config;
    let ports: serde_json::Map<String, Value> = {
        let mut m = serde_json::Map::new();
        for p in &c.config.exposed_ports {
            m.insert(p.clone(), Value::Null);
        }
        for p in &c.network.ports {
            let key = format!("{}/{}", p.container_port, p.protocol);
            let entry = m.entry(key).or_insert(Value::Array(vec![]));
            if !entry.is_array() {
                *entry = Value::Array(vec![]);
            }
            entry.as_array_mut().expect("array").push(json!({"HostIp": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip }, "HostPort": p.host_port.to_string()}));
        }
        m
    };
    let networks: serde_json::Map<String, Value> = c
        .network
        .endpoints
        .iter()
        .map(|n| {
            (n.network.clone(), json!({
                "IPAddress": n.ip, "IPPrefixLen": n.prefix, "Gateway": n.gateway, "MacAddress": n.mac,
                "Aliases": hc.network_aliases, "NetworkID": n.network,
            }))
        })
        .collect();
    let first = c.network.endpoints.first();
    let mounts: Vec<Value> = hc
        .mounts
        .iter()
        .map(|m| json!({"Type": m.kind, "Name": m.name, "Source": m.source, "Destination": m.destination, "Driver": if m.kind == "volume" { "local" } else { "" }, "Mode": if m.read_only { "ro" } else { "" }, "RW": !m.read_only, "Propagation": m.options.first().cloned().unwrap_or_default()}))
        .collect();
    let r = &hc.resources;
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": berth_engine::spec::args(c).first().cloned().unwrap_or_default(),
        "Args": berth_engine::spec::args(c).iter().skip(1).cloned().collect::<Vec<_>>(),
        "State": {
            "Status": if s.status == Status::Exited && s.started_at.is_empty() { "created" } else { s.status.as_str() },
            "Running": matches!(s.status, Status::Running | Status::Paused),
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": if matches!(s.status, Status::Running | Status::Paused) { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": if s.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.started_at },
            "FinishedAt": if s.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.finished_at },
        },
        "Image": c.config.image_id,
        "ResolvConfPath": e.root.container_dir(&c.id).join("etc/resolv.conf"),
        "HostnamePath": e.root.container_dir(&c.id).join("etc/hostname"),
        "HostsPath": e.root.container_dir(&c.id).join("etc/hosts"),
        "LogPath": e.log_path(&c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "HostConfig": {
            "Binds": hc.mounts.iter().filter(|m| m.kind == "bind").map(|m| format!("{}:{}{}", m.source, m.destination, if m.read_only { ":ro" } else { "" })).collect::<Vec<_>>(),
            "NetworkMode": hc.network_mode,
            "PortBindings": hc.ports.iter().map(|p| (format!("{}/{}", p.container_port, p.protocol), json!([{"HostIp": p.host_ip, "HostPort": p.host_port}]))).collect::<serde_json::Map<_, _>>(),
            "RestartPolicy": {"Name": hc.restart_policy.name, "MaximumRetryCount": hc.restart_policy.maximum_retry_count},
            "AutoRemove": hc.auto_remove,
            "Runtime": if hc.runtime.is_empty() { e.default_runtime.clone() } else { hc.runtime.clone() },
            "Privileged": hc.privileged,
            "ReadonlyRootfs": hc.read_only,
            "CapAdd": hc.cap_add,
            "CapDrop": hc.cap_drop,
            "SecurityOpt": hc.security_opt,
            "Tmpfs": hc.tmpfs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "Memory": r.memory.unwrap_or(0),
            "MemorySwap": r.memory_swap.unwrap_or(0),
            "MemoryReservation": r.memory_reservation.unwrap_or(0),
            "OomKillDisable": r.oom_kill_disable,
            "NanoCpus": r.nano_cpus.unwrap_or(0),
            "CpuShares": r.cpu_shares.unwrap_or(0),
            "CpuPeriod": r.cpu_period.unwrap_or(0),
            "CpuQuota": r.cpu_quota.unwrap_or(0),
            "CpusetCpus": r.cpuset_cpus.clone().unwrap_or_default(),
            "PidsLimit": r.pids_limit,
            "BlkioWeight": r.blkio_weight.unwrap_or(0),
            "Ulimits": hc.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Init": hc.init,
            "Sysctls": hc.sysctls,
            "ShmSize": hc.shm_size.unwrap_or(64 << 20),
            "IpcMode": if hc.ipc_mode.is_empty() { "private" } else { &hc.ipc_mode },
            "PidMode": hc.pid_mode,
            "UTSMode": hc.uts_mode,
            "UsernsMode": hc.userns_mode,
            "IDMappings": {
                "UidMap": hc.uid_maps.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                "GidMap": hc.gid_maps.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            },
            "Dns": hc.dns,
            "DnsSearch": hc.dns_search,
            "ExtraHosts": hc.add_hosts,
            "LogConfig": {"Type": "json-file", "Config": {
                "max-size": hc.log_max_size.map(|s| s.to_string()).unwrap_or_default(),
                "max-file": hc.log_max_file.to_string()}},
            "Devices": hc.devices.iter().map(|d| json!({"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": c.config.hostname,
            "Domainname": c.config.domainname,
            "User": c.config.user,
            "Tty": c.config.tty,
            "OpenStdin": c.config.open_stdin,
            "Env": berth_engine::spec::env(c),
            "Cmd": c.config.cmd,
            "Entrypoint": if c.config.entrypoint.is_empty() { Value::Null } else { json!(c.config.entrypoint) },
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir,
            "Labels": c.config.labels,
            "StopSignal": c.config.stop_signal,
            "StopTimeout": c.config.stop_timeout,
            "ExposedPorts": c.config.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "Volumes": c.config.volumes.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
        },
        "NetworkSettings": {
            "SandboxKey": c.network.netns,
            "Ports": ports,
            "IPAddress": first.map(|n| n.ip.clone()).unwrap_or_default(),
            "IPPrefixLen": first.map(|n| n.prefix).unwrap_or(0),
            "Gateway": first.map(|n| n.gateway.clone()).unwrap_or_default(),
            "MacAddress": first.map(|n| n.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        },
    })
}

pub fn inspect(g: &Global, a: InspectArgs) -> Result<i32> {
    let e = engine(g)?;
    let mut out: Vec<Value> = Vec::new();
    let mut failed = false;
    for name in &a.names {
        let kind = a.kind.as_deref();
        let mut found = None;
        if kind.is_none() || kind == Some("container") {
            if let Ok(c) = e.get(name) {
                found = Some(container_json(&e, &c));
            }
        }
        if found.is_none() && (kind.is_none() || kind == Some("image")) {
            found = crate::images::inspect_json(&e, name).ok();
        }
        if found.is_none() && (kind.is_none() || kind == Some("volume")) {
            if let Ok(v) = e.volumes().inspect(name) {
                found = Some(serde_json::to_value(v)?);
            }
        }
        if found.is_none() && (kind.is_none() || kind == Some("network")) {
            found = crate::networks::inspect_json(&e, name).ok();
        }
        match found {
            Some(v) => out.push(v),
            None => {
                eprintln!("berth: Error: No such object: {name}");
                failed = true;
            }
        }
    }
    match &a.format {
        Some(f) => {
            for v in &out {
                println!("{}", go_template(f, v));
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(if failed { 1 } else { 0 })
}

/// `{{.State.Status}}`, `{{json .Mounts}}`, `{{.NetworkSettings.IPAddress}}`:
/// dotted paths into the JSON, with `json` to print a value as JSON.
pub fn go_template(f: &str, v: &Value) -> String {
    let mut out = String::new();
    let mut rest = f;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let inner = rest[i + 2..i + j].trim();
        let (as_json, path) = match inner.strip_prefix("json") {
            Some(p) => (true, p.trim()),
            None => (false, inner),
        };
        let mut cur = v;
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|p| !p.is_empty())
        {
            cur = cur.get(part).unwrap_or(&Value::Null);
        }
        if as_json {
            out.push_str(&serde_json::to_string(cur).unwrap_or_default());
        } else {
            match cur {
                Value::String(s) => out.push_str(s),
                Value::Null => out.push_str("<no value>"),
                other => out.push_str(&other.to_string()),
            }
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out.replace("\\n", "\n").replace("\\t", "\t")
}
