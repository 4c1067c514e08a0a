//! parse: the Docker CLI's value syntaxes (`--memory 512m`, `--cpus 1.5`,
//! `-v name:/data:ro`, `--mount type=bind,...`, `--ulimit nofile=1024:2048`,
//! `--restart on-failure:3`, `-p 127.0.0.1:8080:80/tcp`, ...). Pure functions,
//! each error says which flag and what was wrong, in docker's words where
//! docker has words for it.

use crate::record::{DeviceRecord, MountRecord, PortRequest, RestartPolicy, Ulimit};
use crate::EngineError;

fn invalid(msg: String) -> EngineError {
    EngineError::Invalid(msg)
}

/// docker's RAMInBytes: a number with an optional b/k/m/g/t/p suffix (binary
/// multiples), optionally followed by `b` ("512m", "512mb", "1.5g").
pub fn bytes(flag: &str, s: &str) -> Result<i64, EngineError> {
    let err = || {
        invalid(format!("invalid value {s:?} for {flag}: invalid size: expected a number with an optional b, k, m, g, t or p suffix"))
    };
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| r.ends_with(|c: char| "kmgtp".contains(c)))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| err())?;
    if !v.is_finite() || v < 0.0 {
        return Err(err());
    }
    Ok((v * mult as f64) as i64)
}

/// `--memory`: docker refuses less than 6 MiB (the kernel needs room for the
/// process itself).
pub fn memory(flag: &str, s: &str) -> Result<i64, EngineError> {
    let v = bytes(flag, s)?;
    if v != 0 && v < 6 * 1024 * 1024 {
        return Err(invalid(format!(
            "invalid value {s:?} for {flag}: minimum memory limit allowed is 6MB"
        )));
    }
    Ok(v)
}

/// `--memory-swap`: bytes, or -1 for unlimited.
pub fn memory_swap(s: &str) -> Result<i64, EngineError> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    bytes("--memory-swap", s)
}

/// `--cpus 1.5` → NanoCPUs; refused when not positive or above the host's CPUs.
pub fn nano_cpus(s: &str, host_cpus: usize) -> Result<i64, EngineError> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| invalid(format!("invalid value {s:?} for --cpus: not a number")))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(invalid(format!(
            "invalid value {s:?} for --cpus: must be a positive number"
        )));
    }
    if v > host_cpus as f64 {
        return Err(invalid(format!(
            "range of CPUs is from 0.01 to {host_cpus}.00, as there are only {host_cpus} CPUs available"
        )));
    }
    Ok((v * 1e9).round() as i64)
}

pub fn restart_policy(s: &str) -> Result<RestartPolicy, EngineError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let max = match count {
        None => 0,
        Some(c) => c.parse::<u32>().map_err(|_| {
            invalid(format!(
                "invalid restart policy {s:?}: maximum retry count must be a number"
            ))
        })?,
    };
    match name {
        "" | "no" if count.is_none() => Ok(RestartPolicy { name: "no".into(), maximum_retry_count: 0 }),
        "on-failure" => Ok(RestartPolicy { name: name.into(), maximum_retry_count: max }),
        "always" | "unless-stopped" if count.is_none() => Ok(RestartPolicy { name: name.into(), maximum_retry_count: 0 }),
        "always" | "unless-stopped" | "no" => Err(invalid(format!(
            "invalid restart policy {s:?}: maximum retry count can only be used with 'on-failure'"
        ))),
        _ => Err(invalid(format!(
            "invalid restart policy {s:?}: expected no, on-failure[:max-retries], always or unless-stopped"
        ))),
    }
}

/// `--ulimit nofile=1024[:2048]`.
pub fn ulimit(s: &str) -> Result<Ulimit, EngineError> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| invalid(format!("invalid ulimit {s:?}: expected name=soft[:hard]")))?;
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !NAMES.contains(&name) {
        return Err(invalid(format!(
            "invalid ulimit {s:?}: unknown resource {name:?}"
        )));
    }
    let num = |v: &str| -> Result<u64, EngineError> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse()
            .map_err(|_| invalid(format!("invalid ulimit {s:?}: {v:?} is not a number")))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(invalid(format!(
            "invalid ulimit {s:?}: soft limit is greater than hard limit"
        )));
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

/// `KEY=VALUE` (labels, sysctls). A bare `KEY` is allowed for labels (empty value).
pub fn key_value(flag: &str, s: &str, bare_ok: bool) -> Result<(String, String), EngineError> {
    match s.split_once('=') {
        Some((k, _)) if k.is_empty() => Err(invalid(format!(
            "invalid value {s:?} for {flag}: empty key"
        ))),
        Some((k, v)) => Ok((k.into(), v.into())),
        None if bare_ok => Ok((s.into(), String::new())),
        None => Err(invalid(format!(
            "invalid value {s:?} for {flag}: expected KEY=VALUE"
        ))),
    }
}

/// `-e KEY=VALUE` or `-e KEY` (taken from the caller's environment, dropped if unset).
pub fn env(
    s: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, EngineError> {
    if s.is_empty() || s.starts_with('=') {
        return Err(invalid(format!("invalid environment variable {s:?}")));
    }
    if s.contains('=') {
        return Ok(Some(s.into()));
    }
    Ok(lookup(s).map(|v| format!("{s}={v}")))
}

/// An --env-file's lines: comments and blank lines skipped, `KEY` alone takes the
/// caller's value.
pub fn env_file(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(v) = env(line, &lookup)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// `-v SRC:DST[:OPTS]` or `-v DST` (anonymous volume). A SRC starting with `/`
/// (or `.`) is a bind mount; otherwise it names a volume.
pub fn volume(s: &str) -> Result<MountRecord, EngineError> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => return Err(invalid(format!("invalid volume specification: {s:?}"))),
    };
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid volume specification: {s:?}: the container path must be absolute"
        )));
    }
    let mut m = MountRecord {
        destination: dst.into(),
        ..Default::default()
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            "z" | "Z" | "nocopy" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                m.options.push(o.into())
            }
            _ => {
                return Err(invalid(format!(
                    "invalid volume specification: {s:?}: unknown option {o:?}"
                )))
            }
        }
    }
    if src.is_empty() {
        m.kind = "volume".into();
    } else if src.starts_with('/') || src.starts_with('.') {
        m.kind = "bind".into();
        m.source = src.into();
    } else {
        if !src
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(invalid(format!(
                "invalid volume name {src:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        m.kind = "volume".into();
        m.name = src.into();
    }
    Ok(m)
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]`.
pub fn mount(s: &str) -> Result<MountRecord, EngineError> {
    let mut m = MountRecord {
        kind: "volume".into(),
        ..Default::default()
    };
    for field in s.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => m.kind = v.into(),
            "source" | "src" => {
                m.source = v.into();
                m.name = v.into()
            }
            "target" | "destination" | "dst" => m.destination = v.into(),
            "readonly" | "ro" => m.read_only = v.is_empty() || v == "true" || v == "1",
            "bind-propagation" => m.options.push(v.into()),
            "tmpfs-size" => m
                .options
                .push(format!("size={}", bytes("--mount tmpfs-size", v)?)),
            "tmpfs-mode" => m.options.push(format!("mode={v}")),
            "volume-nocopy" | "consistency" => {}
            _ => {
                return Err(invalid(format!(
                    "invalid --mount {s:?}: unknown field {k:?}"
                )))
            }
        }
    }
    if !["bind", "volume", "tmpfs"].contains(&m.kind.as_str()) {
        return Err(invalid(format!(
            "invalid --mount {s:?}: type must be bind, volume or tmpfs"
        )));
    }
    if !m.destination.starts_with('/') {
        return Err(invalid(format!(
            "invalid --mount {s:?}: target must be an absolute path"
        )));
    }
    match m.kind.as_str() {
        "bind" if m.source.is_empty() => {
            return Err(invalid(format!(
                "invalid --mount {s:?}: bind needs a source"
            )))
        }
        "bind" => m.name.clear(),
        "tmpfs" if !m.source.is_empty() => {
            return Err(invalid(format!(
                "invalid --mount {s:?}: tmpfs takes no source"
            )))
        }
        _ => {}
    }
    Ok(m)
}

/// `--tmpfs /run[:size=64m,mode=1777]`.
pub fn tmpfs(s: &str) -> Result<(String, String), EngineError> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid --tmpfs {s:?}: the path must be absolute"
        )));
    }
    Ok((dst.into(), opts.into()))
}

/// `--device /dev/fuse[:/dev/fuse[:rwm]]`.
pub fn device(s: &str) -> Result<DeviceRecord, EngineError> {
    let parts: Vec<&str> = s.split(':').collect();
    let is_perm = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, ctr, perm) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perm(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if is_perm(p) => (*h, *c, *p),
        _ => return Err(invalid(format!("invalid device specification: {s:?}"))),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(invalid(format!(
            "invalid device specification: {s:?}: paths must be absolute"
        )));
    }
    Ok(DeviceRecord {
        path_on_host: host.into(),
        path_in_container: ctr.into(),
        permissions: perm.into(),
    })
}

/// `--device-read-bps /dev/sda:1mb` (bytes) or `--device-read-iops /dev/sda:1000`.
pub fn device_rate(flag: &str, s: &str, is_bytes: bool) -> Result<(String, u64), EngineError> {
    let (dev, rate) = s.rsplit_once(':').ok_or_else(|| {
        invalid(format!(
            "invalid value {s:?} for {flag}: expected DEVICE:RATE"
        ))
    })?;
    let rate = if is_bytes {
        bytes(flag, rate)? as u64
    } else {
        rate.parse().map_err(|_| {
            invalid(format!(
                "invalid value {s:?} for {flag}: rate must be a number"
            ))
        })?
    };
    Ok((dev.into(), rate))
}

/// `-p [ip:][hostPort:]containerPort[/proto]` with ranges (`8000-8001:80-81`).
pub fn publish(s: &str) -> Result<PortRequest, EngineError> {
    let err = |why: &str| invalid(format!("invalid port specification {s:?}: {why}"));
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(err("protocol must be tcp, udp or sctp"));
    }
    // An IPv6 host address is bracketed: [::1]:8080:80.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| err("unterminated [ address"))?;
        (ip.to_string(), r)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() == 3 {
            (parts[0].to_string(), &rest[parts[0].len() + 1..])
        } else {
            (String::new(), rest)
        }
    };
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let range = |r: &str, what: &str| -> Result<(u16, u16), EngineError> {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        let a: u16 = a
            .parse()
            .map_err(|_| err(&format!("{what} {r:?} is not a port number")))?;
        let b: u16 = b
            .parse()
            .map_err(|_| err(&format!("{what} {r:?} is not a port number")))?;
        if a == 0 || b < a {
            return Err(err(&format!("{what} range {r:?} is invalid")));
        }
        Ok((a, b))
    };
    let (c0, c1) = range(ctr, "container port")?;
    if !host.is_empty() {
        let (h0, h1) = range(host, "host port")?;
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(err("host and container port ranges differ in size"));
        }
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(err(&format!("{ip:?} is not an IP address")));
    }
    Ok(PortRequest {
        host_ip: ip,
        host_port: host.into(),
        container_port: ctr.into(),
        protocol: proto,
    })
}

/// `--user name|uid[:group|gid]`.
pub fn user(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((u, g)) => (u.into(), Some(g.into())),
        None => (s.into(), None),
    }
}

/// Signals by name (`SIGTERM`, `TERM`, `term`) or number.
pub fn signal(s: &str) -> Result<i32, EngineError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| invalid(format!("invalid signal: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes("--memory", "512m").unwrap(), 512 << 20);
        assert_eq!(bytes("--memory", "512mb").unwrap(), 512 << 20);
        assert_eq!(bytes("--memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(bytes("--memory", "100").unwrap(), 100);
        assert_eq!(bytes("--memory", "7K").unwrap(), 7 << 10);
        for bad in ["10q", "", "m", "-1m", "1..2g"] {
            let e = bytes("--memory", bad).unwrap_err().to_string();
            assert!(e.contains("--memory"), "{e}");
        }
        assert!(memory("--memory", "1m")
            .unwrap_err()
            .to_string()
            .contains("minimum memory limit"));
        assert_eq!(memory_swap("-1").unwrap(), -1);
    }

    #[test]
    fn cpus() {
        assert_eq!(nano_cpus("1.5", 2).unwrap(), 1_500_000_000);
        assert_eq!(nano_cpus("0.01", 2).unwrap(), 10_000_000);
        assert!(nano_cpus("-1", 2)
            .unwrap_err()
            .to_string()
            .contains("positive"));
        assert!(nano_cpus("0", 2).is_err());
        assert!(nano_cpus("x", 2).is_err());
        assert!(nano_cpus("3", 2)
            .unwrap_err()
            .to_string()
            .contains("only 2 CPUs"));
    }

    #[test]
    fn restart() {
        assert_eq!(restart_policy("no").unwrap().name, "no");
        let p = restart_policy("on-failure:3").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 3));
        assert_eq!(restart_policy("always").unwrap().name, "always");
        assert!(restart_policy("always:3").is_err());
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("on-failure:x").is_err());
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(ulimit("nproc=10").unwrap().hard, 10);
        assert!(ulimit("nofile=10:5").is_err());
        assert!(ulimit("bogus=1").is_err());
        assert!(ulimit("nofile").is_err());
    }

    #[test]
    fn volumes() {
        let v = volume("data:/data:ro").unwrap();
        assert_eq!(
            (
                v.kind.as_str(),
                v.name.as_str(),
                v.destination.as_str(),
                v.read_only
            ),
            ("volume", "data", "/data", true)
        );
        let b = volume("/srv:/srv").unwrap();
        assert_eq!((b.kind.as_str(), b.source.as_str()), ("bind", "/srv"));
        let a = volume("/anon").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("volume", ""));
        assert!(volume("rel").is_err());
        assert!(volume("a:b").is_err());
        assert!(volume("x:/y:bogus").is_err());
        assert!(volume("a:/b:c:d").is_err());
    }

    #[test]
    fn mounts() {
        let m = mount("type=bind,source=/srv,target=/srv,readonly").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.read_only),
            ("bind", "/srv", true)
        );
        let t = mount("type=tmpfs,target=/t,tmpfs-size=1m").unwrap();
        assert_eq!(t.options, vec!["size=1048576".to_string()]);
        assert!(mount("type=nfs,target=/x").is_err());
        assert!(mount("type=bind,target=/x").is_err());
        assert!(mount("type=volume,source=v,target=rel").is_err());
        assert!(mount("type=volume,bogus=1,target=/x").is_err());
    }

    #[test]
    fn ports() {
        let p = publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port.as_str(),
                p.container_port.as_str(),
                p.protocol.as_str()
            ),
            ("127.0.0.1", "8080", "80", "udp")
        );
        let p = publish("8080:80").unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port.as_str(),
                p.protocol.as_str()
            ),
            ("", "8080", "tcp")
        );
        let p = publish("80").unwrap();
        assert_eq!(p.host_port, "");
        assert!(publish("8000-8001:80-81").is_ok());
        for bad in [
            "",
            "x:80",
            "80/icmp",
            "8000-8002:80-81",
            "99999:80",
            "0:80",
            "1.2.3:80:80",
            "80-70",
        ] {
            assert!(publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn misc() {
        assert_eq!(signal("TERM").unwrap(), 15);
        assert_eq!(signal("SIGKILL").unwrap(), 9);
        assert_eq!(signal("9").unwrap(), 9);
        assert!(signal("SIGBOGUS").is_err());
        assert_eq!(user("1000:1000"), ("1000".into(), Some("1000".into())));
        assert_eq!(env("A=1", |_| None).unwrap(), Some("A=1".into()));
        assert_eq!(
            env("HOME", |_| Some("/x".into())).unwrap(),
            Some("HOME=/x".into())
        );
        assert_eq!(env("UNSET", |_| None).unwrap(), None);
        assert_eq!(
            env_file("# c\n\nA=1\nB\n", |_| Some("2".into())).unwrap(),
            vec!["A=1", "B=2"]
        );
        assert!(device("/dev/fuse").is_ok());
        assert_eq!(device("/dev/a:/dev/b:r").unwrap().permissions, "r");
        assert!(device("fuse").is_err());
        assert_eq!(
            device_rate("--device-read-bps", "/dev/sda:1mb", true).unwrap(),
            ("/dev/sda".into(), 1 << 20)
        );
        assert!(tmpfs("rel").is_err());
        assert!(key_value("--sysctl", "a", false).is_err());
    }
}
