//! The container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
//!
//! berth is daemonless, so names on a user network are served by keeping every
//! member's hosts file current instead of by a DNS server. The files live in an
//! engine-owned directory and are bind-mounted into running containers, so they
//! are always rewritten IN PLACE (truncate + write): a rename would leave the
//! container looking at the old inode.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::Ipv4Addr;
use std::path::Path;

/// One line of a hosts file: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
}

/// Renders a hosts file: localhost lines, the container itself, its peers on user
/// networks, then `--add-host` entries (last, so they read as overrides).
pub fn render_hosts(
    own: Option<&HostEntry>,
    peers: &[HostEntry],
    add_hosts: &[(String, String)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in own.into_iter().chain(peers) {
        s.push_str(&format!("{}\t{}\n", e.ip, e.names.join(" ")));
    }
    for (name, ip) in add_hosts {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s
}

/// Renders resolv.conf: the given servers/search domains, else the host's file
/// with loopback nameservers dropped (they are unreachable from the container's
/// namespace), as docker does.
pub fn render_resolv(dns: &[String], dns_search: &[String], host_resolv: &str) -> String {
    let mut s = String::new();
    if dns.is_empty() && dns_search.is_empty() {
        for line in host_resolv.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("nameserver") {
                if let Some(ip) = words.next() {
                    if ip.starts_with("127.") || ip == "::1" {
                        continue;
                    }
                }
            }
            s.push_str(line);
            s.push('\n');
        }
        return s;
    }
    for d in dns {
        s.push_str(&format!("nameserver {d}\n"));
    }
    if !dns_search.is_empty() {
        s.push_str(&format!("search {}\n", dns_search.join(" ")));
    } else {
        // Keep the host's search domains when only servers were overridden.
        for line in host_resolv.lines().filter(|l| l.starts_with("search ")) {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

/// Replaces `path`'s content in place (same inode), creating it if needed. An
/// unchanged file is left alone: truncating a file whose data is not yet on
/// disk makes ext4 (auto_da_alloc) flush it on close, which cost up to 10 ms
/// here when a container is re-attached with the same names.
pub fn write_in_place(path: &Path, content: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let mut old = Vec::new();
    f.read_to_end(&mut old)?;
    if old == content.as_bytes() {
        return Ok(());
    }
    f.set_len(0)?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(content.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_self_peers_and_extra() {
        let own = HostEntry {
            ip: Ipv4Addr::new(10, 0, 0, 2),
            names: vec!["web".into()],
        };
        let peer = HostEntry {
            ip: Ipv4Addr::new(10, 0, 0, 3),
            names: vec!["db".into(), "database".into()],
        };
        let s = render_hosts(Some(&own), &[peer], &[("gw".into(), "10.0.0.1".into())]);
        assert!(s.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(s.contains("10.0.0.2\tweb\n10.0.0.3\tdb database\n10.0.0.1\tgw\n"));
    }

    #[test]
    fn resolv_drops_loopback_servers() {
        let host =
            "nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.test\noptions edns0\n";
        assert_eq!(
            render_resolv(&[], &[], host),
            "nameserver 192.0.2.53\nsearch example.test\noptions edns0\n"
        );
        assert_eq!(
            render_resolv(&["192.0.2.9".into()], &["a.test".into()], host),
            "nameserver 192.0.2.9\nsearch a.test\n"
        );
        assert_eq!(
            render_resolv(&["192.0.2.9".into()], &[], host),
            "nameserver 192.0.2.9\nsearch example.test\n"
        );
    }

    #[test]
    fn write_in_place_keeps_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("hosts");
        write_in_place(&p, "a long first version\n").expect("write");
        let ino = std::fs::metadata(&p).expect("stat").ino();
        write_in_place(&p, "b\n").expect("rewrite");
        assert_eq!(std::fs::metadata(&p).expect("stat").ino(), ino);
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "b\n");
    }
}
