//! spec: image config + `berth run` flags → OCI runtime spec. Pure: every fact
//! about the host (CPUs, swap accounting, device numbers, the user looked up
//! in the image's /etc/passwd, the netns made by berth-net) comes in through
//! [`SpecInput`], so the whole mapping is golden-file tested without root.
//!
//! The Docker → OCI conversions follow moby's `daemon/oci_linux.go`:
//! `--cpus` becomes a CFS quota over a 100 ms period; `--memory` without
//! `--memory-swap` allows as much swap again (only where the host accounts
//! swap); the mounts and device rules are Docker's defaults. Security defaults
//! (capabilities, seccomp, masked paths) are applied afterwards by
//! [`crate::security`].

use serde_json::{json, Value};

use crate::record::Container;

/// Host facts and resolved inputs the pure mapping needs.
#[derive(Debug, Clone, Default)]
pub struct SpecInput {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The network namespace to join; `Some("")` is a new empty one (`--network
    /// none`), None shares the host's (`--network host`).
    pub netns: Option<String>,
    /// IPC/PID namespaces of another container (`--ipc container:x`), by path.
    pub ipc_ns: Option<String>,
    pub pid_ns: Option<String>,
    /// (destination, source) of /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(String, String)>,
    /// Resolved sources of bind and volume mounts, in `host_config.mounts` order.
    pub mount_sources: Vec<String>,
    /// (path in container, type 'c'|'b', major, minor, permissions, mode, uid, gid).
    pub devices: Vec<Device>,
    /// (major, minor) for each `--device-*-bps/iops` entry, in record order.
    pub throttle_devices: Vec<(i64, i64)>,
    pub swap_accounting: bool,
    /// Host path of berth's init (`--init`), bind-mounted at /sbin/berth-init.
    pub init_binary: Option<String>,
    /// A new user namespace with these maps (`--userns`); empty: none.
    pub uid_mappings: Vec<crate::security::userns::IdMap>,
    pub gid_mappings: Vec<crate::security::userns::IdMap>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub path: String,
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub permissions: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const INIT_PATH: &str = "/sbin/berth-init";

/// The process's argv: entrypoint then cmd (already merged with the image at create).
pub fn args(c: &Container) -> Vec<String> {
    let mut a: Vec<String> = c.config.entrypoint.clone();
    a.extend(c.config.cmd.iter().cloned());
    a
}

/// The process's environment: PATH default, HOSTNAME, TERM for a tty, then the
/// image's and the user's (later entries win, as in docker).
pub fn env(c: &Container) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // a later value replaces an earlier one in place (docker's merge)
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        match out
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(slot) => *slot = kv,
            None => out.push(kv),
        }
    };
    set(format!("PATH={DEFAULT_PATH}"));
    if !c.config.hostname.is_empty() {
        set(format!("HOSTNAME={}", c.config.hostname));
    }
    if c.config.tty {
        set("TERM=xterm".into());
    }
    for e in &c.config.env {
        set(e.clone());
    }
    out
}

fn namespace(kind: &str, path: Option<&str>) -> Value {
    match path {
        Some(p) => json!({"type": kind, "path": p}),
        None => json!({"type": kind}),
    }
}

pub fn generate(c: &Container, input: &SpecInput) -> Value {
    let hc = &c.host_config;
    let mut args = args(c);
    if hc.init {
        let mut a = vec![INIT_PATH.to_string(), "--".to_string()];
        a.append(&mut args);
        args = a;
    }
    let mut process = json!({
        "terminal": c.config.tty,
        "user": {"uid": input.uid, "gid": input.gid},
        "args": args,
        "env": env(c),
        "cwd": if c.config.working_dir.is_empty() { "/" } else { c.config.working_dir.as_str() },
    });
    if !input.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(input.additional_gids);
    }
    if !hc.ulimits.is_empty() {
        process["rlimits"] = hc
            .ulimits
            .iter()
            .map(|u| json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": u.soft, "hard": u.hard}))
            .collect();
    }

    let nosuid_noexec_nodev = ["nosuid", "noexec", "nodev"];
    let shm = hc.shm_size.unwrap_or(64 << 20);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": nosuid_noexec_nodev}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if hc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if hc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": nosuid_noexec_nodev}),
    ];
    if input.ipc_ns.is_none() && hc.ipc_mode != "host" {
        mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}));
    }
    for (dst, src) in &input.etc_files {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    for (m, src) in hc.mounts.iter().zip(input.mount_sources.iter()) {
        let mut opts = vec!["rbind".to_string()];
        opts.push(if m.read_only { "ro" } else { "rw" }.into());
        let prop = m
            .options
            .iter()
            .find(|o| o.ends_with("shared") || o.ends_with("slave") || o.ends_with("private"));
        opts.push(prop.cloned().unwrap_or_else(|| "rprivate".into()));
        if m.kind == "tmpfs" {
            let mut t = vec!["nosuid".to_string(), "nodev".to_string()];
            t.extend(m.options.iter().cloned());
            if m.read_only {
                t.push("ro".into());
            }
            mounts.push(json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": t}));
        } else {
            mounts.push(json!({"destination": m.destination, "type": "bind", "source": src, "options": opts}));
        }
    }
    for (dst, opts) in &hc.tmpfs {
        let mut o = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(String::from));
        mounts.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    if let Some(init) = &input.init_binary {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro", "rprivate"]}));
    }

    let mut namespaces = vec![namespace("mount", None)];
    match (&input.pid_ns, hc.pid_mode.as_str()) {
        (Some(p), _) => namespaces.push(namespace("pid", Some(p))),
        (None, "host") => {}
        _ => namespaces.push(namespace("pid", None)),
    }
    match (&input.ipc_ns, hc.ipc_mode.as_str()) {
        (Some(p), _) => namespaces.push(namespace("ipc", Some(p))),
        (None, "host") => {}
        _ => namespaces.push(namespace("ipc", None)),
    }
    if hc.uts_mode != "host" && hc.network_mode != "host" {
        namespaces.push(namespace("uts", None));
    }
    match input.netns.as_deref() {
        Some("") => namespaces.push(namespace("network", None)),
        Some(ns) => namespaces.push(namespace("network", Some(ns))),
        None => {}
    }
    namespaces.push(namespace("cgroup", None));
    let userns = !input.uid_mappings.is_empty();
    if userns {
        namespaces.push(namespace("user", None));
    }

    let r = &hc.resources;
    let mut memory = serde_json::Map::new();
    if let Some(m) = r.memory.filter(|m| *m > 0) {
        memory.insert("limit".into(), json!(m));
        if input.swap_accounting {
            match r.memory_swap {
                Some(s) if s != 0 => memory.insert("swap".into(), json!(s)),
                _ => memory.insert("swap".into(), json!(m * 2)),
            };
        }
    }
    if let Some(m) = r.memory_reservation {
        memory.insert("reservation".into(), json!(m));
    }
    if r.oom_kill_disable {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = r.nano_cpus {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(n * 100_000 / 1_000_000_000));
    }
    if let Some(p) = r.cpu_period {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(q) = r.cpu_quota {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(s) = r.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(s) = &r.cpuset_cpus {
        cpu.insert("cpus".into(), json!(s));
    }
    let mut devices_allow = vec![json!({"allow": false, "access": "rwm"})];
    if hc.privileged {
        devices_allow = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        // Docker's default allow list: mknod of anything, and the standard nodes.
        for (kind, major, minor, access) in [
            ("c", None, None, "m"),
            ("b", None, None, "m"),
            ("c", Some(1), Some(3), "rwm"),    // /dev/null
            ("c", Some(1), Some(8), "rwm"),    // /dev/random
            ("c", Some(1), Some(7), "rwm"),    // /dev/full
            ("c", Some(5), Some(0), "rwm"),    // /dev/tty
            ("c", Some(1), Some(5), "rwm"),    // /dev/zero
            ("c", Some(1), Some(9), "rwm"),    // /dev/urandom
            ("c", Some(136), None, "rwm"),     // /dev/pts/*
            ("c", Some(5), Some(2), "rwm"),    // /dev/ptmx
            ("c", Some(10), Some(200), "rwm"), // /dev/net/tun
        ] {
            let mut d = json!({"allow": true, "type": kind, "access": access});
            if let Some(m) = major {
                d["major"] = json!(m);
            }
            if let Some(m) = minor {
                d["minor"] = json!(m);
            }
            devices_allow.push(d);
        }
    }
    for d in &input.devices {
        devices_allow.push(json!({"allow": true, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "access": d.permissions}));
    }
    let mut resources = json!({"devices": devices_allow});
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = r.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    let mut blkio = serde_json::Map::new();
    if let Some(w) = r.blkio_weight {
        blkio.insert("weight".into(), json!(w));
    }
    let mut throttle = input.throttle_devices.iter();
    for (key, list) in [
        ("throttleReadBpsDevice", &r.device_read_bps),
        ("throttleWriteBpsDevice", &r.device_write_bps),
        ("throttleReadIOPSDevice", &r.device_read_iops),
        ("throttleWriteIOPSDevice", &r.device_write_iops),
    ] {
        let mut v = Vec::new();
        for (_, rate) in list {
            if let Some((major, minor)) = throttle.next() {
                v.push(json!({"major": major, "minor": minor, "rate": rate}));
            }
        }
        if !v.is_empty() {
            blkio.insert(key.into(), Value::Array(v));
        }
    }
    if !blkio.is_empty() {
        resources["blockIO"] = Value::Object(blkio);
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("/berth/{}", c.id),
    });
    if !input.devices.is_empty() {
        linux["devices"] = input
            .devices
            .iter()
            .map(|d| json!({"path": d.path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "fileMode": d.mode, "uid": d.uid, "gid": d.gid}))
            .collect();
    }
    if !hc.sysctls.is_empty() {
        linux["sysctl"] = json!(hc.sysctls);
    }
    if userns {
        let maps = |m: &[crate::security::userns::IdMap]| -> Value {
            m.iter()
                .map(
                    |m| json!({"containerID": m.container_id, "hostID": m.host_id, "size": m.size}),
                )
                .collect()
        };
        linux["uidMappings"] = maps(&input.uid_mappings);
        linux["gidMappings"] = maps(&input.gid_mappings);
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": hc.read_only},
        "mounts": mounts,
        "linux": linux,
        "annotations": {"org.berth.container.name": c.name},
    });
    if namespaces_has(&spec, "uts") && !c.config.hostname.is_empty() {
        spec["hostname"] = json!(c.config.hostname);
        if !c.config.domainname.is_empty() {
            spec["domainname"] = json!(c.config.domainname);
        }
    }
    spec
}

fn namespaces_has(spec: &Value, kind: &str) -> bool {
    spec["linux"]["namespaces"]
        .as_array()
        .map(|a| a.iter().any(|n| n["type"] == kind))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;

    fn sample() -> (Container, SpecInput) {
        let mut c = Container {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            name: "web".into(),
            ..Default::default()
        };
        c.config.cmd = vec!["httpd".into(), "-f".into()];
        c.config.entrypoint = vec!["/bin/busybox".into()];
        c.config.env = vec!["PATH=/bin".into(), "A=1".into()];
        c.config.hostname = "0123456789ab".into();
        c.config.working_dir = "/srv".into();
        c.host_config.resources.memory = Some(512 << 20);
        c.host_config.resources.nano_cpus = Some(1_500_000_000);
        c.host_config.resources.pids_limit = Some(100);
        c.host_config.resources.device_read_bps = vec![("/dev/sda".into(), 1 << 20)];
        c.host_config.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }];
        c.host_config.mounts = vec![MountRecord {
            kind: "volume".into(),
            name: "data".into(),
            destination: "/data".into(),
            read_only: true,
            ..Default::default()
        }];
        c.host_config.tmpfs = vec![("/run".into(), "size=1m".into())];
        c.host_config
            .sysctls
            .insert("net.ipv4.ip_forward".into(), "1".into());
        let input = SpecInput {
            uid: 1000,
            gid: 1000,
            netns: Some("/run/berth/net/netns/0123".into()),
            etc_files: vec![(
                "/etc/hosts".into(),
                "/var/lib/berth/containers/0123/etc/hosts".into(),
            )],
            mount_sources: vec!["/var/lib/berth/volumes/data/_data".into()],
            throttle_devices: vec![(8, 0)],
            swap_accounting: false,
            ..Default::default()
        };
        (c, input)
    }

    /// Golden file: `BERTH_UPDATE_GOLDEN=1 cargo test -p berth-engine spec` rewrites it;
    /// review the diff like code.
    #[test]
    fn golden_basic() {
        let (c, input) = sample();
        let got = serde_json::to_string_pretty(&generate(&c, &input)).unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/spec-basic.json");
        if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &got).unwrap();
        }
        let want =
            std::fs::read_to_string(path).expect("golden file (BERTH_UPDATE_GOLDEN=1 to create)");
        assert_eq!(got, want, "spec differs from {path}");
        // and the result is a valid OCI spec
        let _: oci_spec::runtime::Spec = serde_json::from_str(&got).unwrap();
    }

    #[test]
    fn cpus_become_quota_and_swap_follows_accounting() {
        let (c, mut input) = sample();
        let s = generate(&c, &input);
        assert_eq!(s["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(s["linux"]["resources"]["cpu"]["period"], 100_000);
        assert!(s["linux"]["resources"]["memory"].get("swap").is_none());
        input.swap_accounting = true;
        let s = generate(&c, &input);
        assert_eq!(s["linux"]["resources"]["memory"]["swap"], 1024i64 << 20);
    }

    #[test]
    fn host_network_shares_uts_and_net() {
        let (mut c, mut input) = sample();
        c.host_config.network_mode = "host".into();
        input.netns = None;
        let s = generate(&c, &input);
        assert!(!namespaces_has(&s, "network"));
        assert!(!namespaces_has(&s, "uts"));
        assert!(s.get("hostname").is_none());
    }

    #[test]
    fn env_order_and_override() {
        let (mut c, _) = sample();
        c.config.tty = true;
        let e = env(&c);
        assert_eq!(e[0], "PATH=/bin");
        assert!(e.contains(&"TERM=xterm".to_string()));
        assert!(e.contains(&"HOSTNAME=0123456789ab".to_string()));
    }

    #[test]
    fn userns_adds_the_namespace_and_maps() {
        use crate::security::userns::IdMap;
        let (c, mut input) = sample();
        let s = generate(&c, &input);
        assert!(!namespaces_has(&s, "user"));
        assert!(s["linux"].get("uidMappings").is_none());
        input.uid_mappings = vec![IdMap {
            container_id: 0,
            host_id: 100000,
            size: 65536,
        }];
        input.gid_mappings = vec![IdMap {
            container_id: 0,
            host_id: 200000,
            size: 1000,
        }];
        let s = generate(&c, &input);
        assert!(namespaces_has(&s, "user"));
        assert_eq!(
            s["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(
            s["linux"]["gidMappings"],
            json!([{"containerID": 0, "hostID": 200000, "size": 1000}])
        );
        let spec: oci_spec::runtime::Spec = serde_json::from_value(s).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), 100000);
    }

    #[test]
    fn init_wraps_args() {
        let (mut c, mut input) = sample();
        c.host_config.init = true;
        input.init_binary = Some("/usr/libexec/berth/berth-init".into());
        let s = generate(&c, &input);
        assert_eq!(s["process"]["args"][0], INIT_PATH);
        assert_eq!(s["process"]["args"][1], "--");
        assert_eq!(s["process"]["args"][2], "/bin/busybox");
    }
}
