//! Published ports go over nf_tables netlink, never through the `nft` binary.
//!
//! Run as root against the real kernel. ONE test function on purpose: it points
//! PATH at an empty directory so that any `nft` exec on the per-container path
//! fails, and PATH is process-wide (this file is its own test process). The
//! `nft` binary is still used, by absolute path, to inspect the table and by
//! berth to install the table once (network creation). Unique table, bridge
//! (`bn<pid>…`), an unused 10.200-250.x.0/24 subnet; all traffic stays between
//! the namespaces and the bridge created here; everything is removed in Drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use berth_net::*;
use nix::sched::{setns, CloneFlags};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn free_subnet() -> Ipv4Net {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .output()
        .expect("ip route");
    let routes = String::from_utf8_lossy(&out.stdout).to_string();
    let start = std::process::id() as usize * 13;
    for i in 0..(51 * 256) {
        let k = (start + i) % (51 * 256);
        let (b, c) = (200 + k / 256, k % 256);
        if !routes.contains(&format!("10.{b}.{c}.")) && !routes.contains(&format!("10.{b}.0.0/16"))
        {
            return format!("10.{b}.{c}.0/24").parse().expect("subnet");
        }
    }
    panic!("no free test subnet");
}

fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn which(tool: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{tool} not installed"))
}

/// Everything this test creates; Drop restores PATH and removes it all.
struct Guard {
    net: Net,
    dir: tempfile::TempDir,
    table: String,
    bridge: String,
    nft: PathBuf,
    path: String,
    forward: String,
}

impl Guard {
    fn nft_table(&self) -> String {
        let out = Command::new(&self.nft)
            .args(["list", "table", "ip", &self.table])
            .output()
            .expect("nft list");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn request(&self, id: &str, ports: &str) -> AttachRequest {
        AttachRequest {
            container_id: id.into(),
            container_name: id.into(),
            hostname: id.into(),
            mode: NetworkMode::Bridge(vec![EndpointRequest {
                network: "bridge".into(),
                ip: None,
                aliases: vec![],
            }]),
            ports: if ports.is_empty() {
                vec![]
            } else {
                ports
                    .split(',')
                    .flat_map(|p| PortMapping::parse(p).expect("spec"))
                    .collect()
            },
            publish_all_exposed: vec![],
            dns: vec![],
            dns_search: vec![],
            add_hosts: vec![],
            etc_dir: self.dir.path().join("etc").join(id),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        std::env::set_var("PATH", &self.path);
        let _ = self.net.teardown_all();
        let _ = Command::new(&self.nft)
            .args(["delete", "table", "ip", &self.table])
            .output();
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .output();
        }
        let _ = nix::mount::umount2(
            &self.dir.path().join("run/netns"),
            nix::mount::MntFlags::MNT_DETACH,
        );
        let _ = std::fs::write(IP_FORWARD, self.forward.trim());
    }
}

/// A TCP server in the namespace at `ns` answering every connection with `reply`.
fn serve(ns: &Path, port: u16, reply: &'static str) {
    let f = std::fs::File::open(ns).expect("open netns");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        setns(&f, CloneFlags::CLONE_NEWNET).expect("setns");
        let l = TcpListener::bind(("0.0.0.0", port)).expect("bind in netns");
        tx.send(()).expect("ready");
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.write_all(reply.as_bytes());
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("server ready");
}

fn fetch(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(1500))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn published_ports_change_over_netlink_atomically_without_nft() {
    let pid = std::process::id() % 100_000;
    let table = format!("bn{pid}t");
    let bridge = format!("bn{pid}d");
    let dir = tempfile::tempdir().expect("tempdir");
    let forward = std::fs::read_to_string(IP_FORWARD).expect("read ip_forward");
    let options = NetOptions {
        table: table.clone(),
        default_bridge: bridge.clone(),
        subnet_pool: vec![free_subnet()],
    };
    let net =
        Net::open_with(dir.path().join("state"), dir.path().join("run"), options).expect("open");
    let g = Guard {
        net,
        dir,
        table,
        bridge,
        nft: which("nft"),
        path: std::env::var("PATH").unwrap_or_default(),
        forward,
    };

    // The first attach creates the network and installs the table with `nft`.
    let (p1, p2, p3, p4, p5) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let a = g
        .net
        .attach(&g.request("a", &format!("127.0.0.1:{p1}:80,{p2}:53/udp")))
        .expect("attach a");
    let ip_a = a.endpoints[0].ip;
    let t = g.nft_table();
    assert!(t.contains(&format!("127.0.0.1 . {p1} timeout")), "{t}");
    assert!(
        t.contains(&format!("comment \"ctr:a\" : {ip_a} . 80")),
        "{t}"
    );
    assert!(t.contains(&format!("{p2} timeout")), "{t}");
    assert!(
        t.contains(&format!("comment \"ctr:a\" : {ip_a} . 53")),
        "{t}"
    );

    // From here on any exec of `nft` fails.
    let empty = g.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).expect("mkdir");
    std::env::set_var("PATH", &empty);

    // Attach: the element appears and DNAT works.
    let b = g
        .net
        .attach(&g.request("b", &format!("{p3}:8080")))
        .expect("attach b without nft");
    let ip_b = b.endpoints[0].ip;
    let t = g.nft_table();
    assert!(
        t.contains(&format!("comment \"ctr:b\" : {ip_b} . 8080")),
        "{t}"
    );
    serve(b.netns_path.as_ref().expect("netns"), 8080, "from b");
    assert_eq!(fetch(p3).expect("published port of b"), "from b");

    // Detach: the element is gone from the listing and from the data path at
    // the next clock tick (its expiration is 1 ms, kept in jiffies); a's
    // elements are untouched.
    g.net.detach("b").expect("detach b without nft");
    let mut t = g.nft_table();
    for _ in 0..20 {
        if !t.contains("ctr:b") {
            break;
        }
        assert!(t.contains("ctr:b\" : ") && t.contains(" expires "), "{t}");
        std::thread::sleep(Duration::from_millis(2));
        t = g.nft_table();
    }
    assert!(!t.contains("ctr:b"), "{t}");
    assert!(
        t.contains(&format!("comment \"ctr:a\" : {ip_a} . 80")),
        "{t}"
    );
    assert!(
        fetch(p3).is_err(),
        "port of a detached container still answers"
    );

    // The same host port, right away, for another container (the expired
    // element is replaced in place).
    let c = g
        .net
        .attach(&g.request("c", &format!("{p3}:8080")))
        .expect("attach c on b's old port without nft");
    let ip_c = c.endpoints[0].ip;
    // b's namespace is still held by its server thread, so its veth (and
    // address) linger: c must not get that address.
    assert_ne!(ip_c, ip_b);
    serve(c.netns_path.as_ref().expect("netns"), 8080, "from c");
    assert_eq!(fetch(p3).expect("published port of c"), "from c");
    let t = g.nft_table();
    assert!(
        t.contains(&format!("comment \"ctr:c\" : {ip_c} . 8080")),
        "{t}"
    );

    // Bad input: an element the kernel refuses (the key exists with other data,
    // placed there behind berth's back) fails the whole batch: p5 is not added
    // either, and the attach is undone (no netns file, lease or element).
    let out = Command::new(&g.nft)
        .args([
            "add",
            "element",
            "ip",
            &g.table,
            "tcp_any",
            &format!("{{ {p4} timeout 1h comment \"intruder\" : 192.0.2.9 . 1 }}"),
        ])
        .output()
        .expect("nft add element");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = g
        .net
        .attach(&g.request("d", &format!("{p5}:80,{p4}:80")))
        .expect_err("clashing element must fail (nft fallback unavailable)");
    let msg = format!("{e}");
    assert!(msg.contains("nft"), "fallback error expected: {msg}");
    let t = g.nft_table();
    assert!(!t.contains("ctr:d"), "half-applied batch: {t}");
    assert!(
        !t.contains(&format!("{p5} timeout")),
        "half-applied batch: {t}"
    );
    assert!(!g.dir.path().join("run/netns/d").exists());
    assert_eq!(g.net.attachment("d").expect("state"), None);
    assert_eq!(
        g.net.inspect("bridge").expect("inspect").containers.len(),
        2,
        "only a and c hold leases"
    );

    // With nft back, the same attach repairs the table (full re-install from
    // berth's state drops the intruder) and succeeds.
    std::env::set_var("PATH", &g.path);
    let d = g
        .net
        .attach(&g.request("d", &format!("{p5}:80,{p4}:80")))
        .expect("attach d with the fallback");
    let t = g.nft_table();
    assert!(!t.contains("intruder"), "{t}");
    assert!(
        t.contains(&format!("comment \"ctr:d\" : {} . 80", d.endpoints[0].ip)),
        "{t}"
    );
    assert!(t.contains("ctr:a") && t.contains("ctr:c"), "{t}");
}
