//! networks: `berth network create/ls/inspect/rm/connect/disconnect/prune`.

use std::collections::BTreeMap;

use anyhow::Result;
use berth_engine::{Engine, EngineError};

use crate::cli::*;
use crate::engine;
use crate::format::{self, Row};

fn net_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Network(e.to_string())
}

pub fn inspect_json(e: &Engine, name: &str) -> Result<serde_json::Value> {
    let net = berth_engine::network::open(e)?;
    let n = net.inspect(name).map_err(net_err)?;
    Ok(serde_json::to_value(n)?)
}

pub fn network_cmd(g: &Global, c: NetworkCmd) -> Result<i32> {
    let e = engine(g)?;
    let net = berth_engine::network::open(&e)?;
    match c {
        NetworkCmd::Create {
            name,
            driver,
            subnet,
            gateway,
            internal,
            label,
        } => {
            if driver != "bridge" {
                return Err(EngineError::Invalid(format!(
                    "network driver {driver:?} is not supported (only bridge)"
                ))
                .into());
            }
            let mut labels = BTreeMap::new();
            for l in &label {
                let (k, v) = berth_engine::parse::key_value("--label", l, true)?;
                labels.insert(k, v);
            }
            let subnet = subnet
                .map(|s| {
                    s.parse::<berth_net::Ipv4Net>()
                        .map_err(|e| EngineError::Invalid(format!("invalid --subnet {s:?}: {e}")))
                })
                .transpose()?;
            let gateway = gateway
                .map(|g| {
                    g.parse::<std::net::Ipv4Addr>()
                        .map_err(|_| EngineError::Invalid(format!("invalid --gateway {g:?}")))
                })
                .transpose()?;
            let spec = berth_net::NetworkSpec {
                name,
                subnet,
                gateway,
                internal,
                labels,
                bridge: None,
            };
            let n = net.create_network(&spec).map_err(net_err)?;
            println!("{}", n.id);
        }
        NetworkCmd::Ls { quiet, format } => {
            let list = net.list().map_err(net_err)?;
            if quiet {
                for n in &list {
                    println!("{}", &n.id[..12.min(n.id.len())]);
                }
                return Ok(0);
            }
            let rows: Vec<Row> = list
                .iter()
                .map(|n| {
                    [
                        ("ID".to_string(), n.id[..12.min(n.id.len())].to_string()),
                        ("Name".to_string(), n.name.clone()),
                        ("Driver".to_string(), "bridge".to_string()),
                        ("Scope".to_string(), "local".to_string()),
                        ("Subnet".to_string(), n.subnet.to_string()),
                    ]
                    .into()
                })
                .collect();
            print!(
                "{}",
                format::render(
                    format.as_deref(),
                    &[
                        ("ID", "NETWORK ID"),
                        ("Name", "NAME"),
                        ("Driver", "DRIVER"),
                        ("Scope", "SCOPE")
                    ],
                    &rows
                )
            );
        }
        NetworkCmd::Inspect { names } => {
            let mut out = Vec::new();
            for n in &names {
                out.push(serde_json::to_value(net.inspect(n).map_err(net_err)?)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        NetworkCmd::Rm { names } => {
            let mut failed = false;
            for n in &names {
                match net.remove_network(n) {
                    Ok(()) => println!("{n}"),
                    Err(err) => {
                        eprintln!("berth: {err}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
        NetworkCmd::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let c = e.get(&container)?;
            let ip = ip
                .as_deref()
                .map(|s| s.parse())
                .transpose()
                .map_err(|_| EngineError::Invalid("invalid --ip".into()))?;
            net.connect(&c.id, &network, &alias, ip).map_err(net_err)?;
        }
        NetworkCmd::Disconnect {
            network, container, ..
        } => {
            let c = e.get(&container)?;
            net.disconnect(&c.id, &network).map_err(net_err)?;
        }
        NetworkCmd::Prune(_) => {
            for n in net.prune().map_err(net_err)? {
                println!("Deleted Network: {n}");
            }
        }
    }
    Ok(0)
}
