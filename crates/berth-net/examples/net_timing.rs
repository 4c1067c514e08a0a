//! Measures what berth-net adds to a run: attach + detach on an existing network,
//! with and without a published port. Prints one JSON object with medians (ms):
//! * `attach_ms` .. `detach_port_ms`: wall time, one long-lived `Net` handle;
//! * `*_cpu_ms`: CPU time of the calling thread in the same calls (user + system;
//!   what the operation costs regardless of how loaded the machine is; excludes
//!   waits and work the kernel does in its own threads);
//! * `cli_attach_port_ms`, `cli_detach_port_ms`: wall time with a fresh `Net`
//!   opened and dropped around each call, as a `berth` CLI invocation does;
//! * `phases`: the median of each internal phase (berth_net::timing).
//!
//! Directories mirror the engine's on a standard host: state and etc files on
//! disk (a temp dir under $TMPDIR, default /tmp), the runtime dir on tmpfs
//! (/dev/shm here, standing in for /run, which is tmpfs on most hosts). With
//! NET_TIMING_ETC=DIR the etc files (hosts, hostname, resolv.conf) go under DIR
//! instead (e.g. /dev/shm, to see what a tmpfs etc dir would save).
//!
//! Used by bench/net_bench.py; run as root.
//!
//! usage: net_timing <subnet a.b.c.0/24> <iterations> [table] [bridge]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_net::{AttachRequest, EndpointRequest, Net, NetOptions, NetworkMode, PortMapping};
use nix::time::{clock_gettime, ClockId};

/// Wall clock and this thread's CPU time at one instant.
struct Clock(Instant, Duration);

impl Clock {
    fn now() -> Clock {
        Clock(Instant::now(), thread_cpu())
    }
}

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let subnet = args
        .get(1)
        .ok_or("usage: net_timing SUBNET ITER [TABLE] [BRIDGE]")?
        .parse()?;
    let iters: usize = args.get(2).map_or(Ok(50), |s| s.parse())?;
    let pid = std::process::id();
    let table = args.get(3).cloned().unwrap_or(format!("bbench{pid}"));
    let bridge = args.get(4).cloned().unwrap_or(format!("bb{pid}"));
    let dir = tempfile::tempdir()?;
    let options = NetOptions {
        table,
        default_bridge: bridge,
        subnet_pool: vec![subnet],
    };
    berth_net::timing::enable(true);
    let run_dir = tempfile::Builder::new()
        .prefix("net_timing")
        .tempdir_in("/dev/shm")?;
    let (state, run) = (dir.path().join("state"), run_dir.path().join("run"));
    let open = || Net::open_with(&state, &run, options.clone());
    let etc_tmp = match std::env::var_os("NET_TIMING_ETC") {
        Some(base) => Some(
            tempfile::Builder::new()
                .prefix("net_timing_etc")
                .tempdir_in(base)?,
        ),
        None => None,
    };
    let etc_base = etc_tmp
        .as_ref()
        .map_or_else(|| dir.path().join("etc"), |d| d.path().to_path_buf());
    let net = open()?;
    let req = |id: &str, ports: Vec<PortMapping>| AttachRequest {
        container_id: id.into(),
        container_name: id.into(),
        hostname: id.into(),
        mode: NetworkMode::Bridge(vec![EndpointRequest {
            network: "bridge".into(),
            ip: None,
            aliases: vec![],
        }]),
        ports,
        publish_all_exposed: vec![],
        dns: vec![],
        dns_search: vec![],
        add_hosts: vec![],
        etc_dir: etc_base.join(id),
    };
    let result = (|| -> Result<String, Box<dyn std::error::Error>> {
        // First attach creates the bridge and table; not part of the steady state.
        let t = Instant::now();
        net.attach(&req("warm", vec![]))?;
        let first_ms = t.elapsed().as_secs_f64() * 1e3;
        berth_net::timing::take();
        // op name -> (wall times, cpu times, phase -> times)
        type Samples = (Vec<f64>, Vec<f64>, BTreeMap<&'static str, Vec<f64>>);
        let mut ops: BTreeMap<&str, Samples> = BTreeMap::new();
        let mut record = |op: &'static str, c: Clock| {
            let (wall, cpu) = (c.0.elapsed(), thread_cpu().saturating_sub(c.1));
            let e = ops.entry(op).or_default();
            e.0.push(wall.as_secs_f64() * 1e3);
            e.1.push(cpu.as_secs_f64() * 1e3);
            for (phase, ms) in berth_net::timing::take() {
                e.2.entry(phase).or_default().push(ms);
            }
        };
        let port = || PortMapping::parse("0.0.0.0::80");
        // A fresh id per attach, as for new containers (fresh etc dir and veth).
        for i in 0..iters {
            let id = format!("a{i}");
            let c = Clock::now();
            net.attach(&req(&id, vec![]))?;
            record("attach", c);
            let c = Clock::now();
            net.detach(&id)?;
            record("detach", c);
            let id = format!("p{i}");
            let c = Clock::now();
            net.attach(&req(&id, port()?))?;
            record("attach_port", c);
            let c = Clock::now();
            net.detach(&id)?;
            record("detach_port", c);
            // CLI-like: open the handle, act, drop it (closes its sockets).
            let id = format!("q{i}");
            let c = Clock::now();
            open()?.attach(&req(&id, port()?))?;
            record("cli_attach_port", c);
            let c = Clock::now();
            open()?.detach(&id)?;
            record("cli_detach_port", c);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let mut out = format!("{{\"iterations\": {iters}, \"first_attach_ms\": {first_ms:.3}");
        for (op, (wall, cpu, _)) in ops.iter_mut() {
            out += &format!(", \"{op}_ms\": {:.3}", med(wall));
            if !op.starts_with("cli") {
                out += &format!(", \"{op}_cpu_ms\": {:.3}", med(cpu));
            }
        }
        out += ", \"phases\": {";
        for (i, (op, (_, _, phases))) in ops.iter_mut().enumerate() {
            let list: Vec<String> = phases
                .iter_mut()
                .map(|(p, v)| format!("\"{p}\": {:.3}", med(v)))
                .collect();
            out += &format!(
                "{}\"{op}\": {{{}}}",
                if i > 0 { ", " } else { "" },
                list.join(", ")
            );
        }
        out += "}}";
        Ok(out)
    })();
    let teardown = net.teardown_all();
    println!("{}", result?);
    teardown?;
    Ok(())
}
