//! Measures what berth-net adds to a run: attach + detach on an existing network,
//! with and without a published port. Prints one JSON object. Used by
//! bench/net_bench.py; run as root.
//!
//! usage: net_timing <subnet a.b.c.0/24> <iterations> [table] [bridge]

use std::time::Instant;

use berth_net::{AttachRequest, EndpointRequest, Net, NetOptions, NetworkMode, PortMapping};

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
    let net = Net::open_with(dir.path().join("state"), dir.path().join("run"), options)?;
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
        etc_dir: dir.path().join("etc").join(id),
    };
    let result = (|| -> Result<String, Box<dyn std::error::Error>> {
        // First attach creates the bridge and table; not part of the steady state.
        let t = Instant::now();
        net.attach(&req("warm", vec![]))?;
        let first_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut plain = Vec::new();
        let mut published = Vec::new();
        for i in 0..iters {
            let id = format!("c{i}");
            let t = Instant::now();
            net.attach(&req(&id, vec![]))?;
            let a = t.elapsed();
            let t = Instant::now();
            net.detach(&id)?;
            plain.push((a.as_secs_f64() * 1e3, t.elapsed().as_secs_f64() * 1e3));
            let t = Instant::now();
            net.attach(&req(&id, PortMapping::parse("0.0.0.0::80")?))?;
            let a = t.elapsed();
            let t = Instant::now();
            net.detach(&id)?;
            published.push((a.as_secs_f64() * 1e3, t.elapsed().as_secs_f64() * 1e3));
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (mut pa, mut pd): (Vec<f64>, Vec<f64>) = plain.into_iter().unzip();
        let (mut qa, mut qd): (Vec<f64>, Vec<f64>) = published.into_iter().unzip();
        Ok(format!(
            "{{\"iterations\": {iters}, \"first_attach_ms\": {first_ms:.3}, \"attach_ms\": {:.3}, \"detach_ms\": {:.3}, \"attach_port_ms\": {:.3}, \"detach_port_ms\": {:.3}}}",
            med(&mut pa), med(&mut pd), med(&mut qa), med(&mut qd)
        ))
    })();
    let teardown = net.teardown_all();
    println!("{}", result?);
    teardown?;
    Ok(())
}
