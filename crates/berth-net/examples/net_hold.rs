//! Attaches two containers ("srv" with 5201/tcp published on an ephemeral host
//! port, and "cli") to a private default network, prints one JSON line describing
//! them, waits until stdin closes, then tears everything down. Used by
//! bench/net_bench.py for throughput runs; run as root.
//!
//! usage: net_hold <subnet a.b.c.0/24> [table] [bridge]

use std::io::Read;

use berth_net::{AttachRequest, EndpointRequest, Net, NetOptions, NetworkMode, PortMapping};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let subnet = args
        .get(1)
        .ok_or("usage: net_hold SUBNET [TABLE] [BRIDGE]")?
        .parse()?;
    let pid = std::process::id();
    let table = args.get(2).cloned().unwrap_or(format!("bbench{pid}"));
    let bridge = args.get(3).cloned().unwrap_or(format!("bb{pid}"));
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
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let srv = net.attach(&req("srv", PortMapping::parse("5201")?))?;
        let cli = net.attach(&req("cli", vec![]))?;
        let path = |a: &berth_net::Attachment| {
            a.netns_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        println!(
            "{{\"srv_netns\": \"{}\", \"srv_ip\": \"{}\", \"gateway\": \"{}\", \"host_port\": {}, \"cli_netns\": \"{}\"}}",
            path(&srv),
            srv.endpoints[0].ip,
            srv.endpoints[0].gateway,
            srv.ports[0].host_port,
            path(&cli)
        );
        let mut sink = Vec::new();
        std::io::stdin().read_to_end(&mut sink)?;
        Ok(())
    })();
    let teardown = net.teardown_all();
    result?;
    teardown?;
    Ok(())
}
