//! Published ports for connections made on the host itself, without NAT.
//!
//! A TCP connection from a host process to `127.0.0.1:<published port>` would
//! otherwise be DNATed packet by packet (conntrack rewrites every packet and
//! re-routes each locally generated one): ~10% of its throughput against a
//! connection to the container's own address over the same bridge. Instead a
//! cgroup `connect4` BPF program (attached to the root of the cgroup2 hierarchy,
//! so it sees every process's connect) rewrites the destination *at connect
//! time* to the container's address and port, as socket-level load balancers do;
//! the connection is then an ordinary routed one. Only:
//! * TCP sockets in the host's network namespace (its netns cookie is compiled
//!   into the program; a container connecting to its own 127.0.0.1 is left alone),
//! * destinations that are a published `ip:port` exactly, or, for ports
//!   published on every address, `127.0.0.0/8:port` and `<gateway>:port` for the
//!   gateway (bridge) address of any of the instance's networks.
//!
//! The socket is first bound (`bpf_bind`, port chosen at connect) to the gateway
//! address of the container's network, the source a DNATed connection got from
//! the masquerade; if that fails (the bridge or its address is gone, or the
//! application bound the socket itself) nothing is rewritten: a stale entry
//! can then never send a connection out of another interface.
//!
//! Everything else (other host addresses, UDP, other namespaces, hairpin) is
//! still served by the nftables DNAT rules, which stay installed either way: this
//! is an accelerator, and any failure here leaves those rules to do the work.
//! One visible difference: `getpeername()` on such a socket names the container.
//!
//! Lifetime: loaded and attached with an instance's first published TCP port,
//! kept (inert with an empty map; re-attaching costs ~0.8 ms, mostly the kernel
//! recomputing every cgroup's effective programs) while ports come and go,
//! detached by a full install that finds no published port and by teardown.
//! The map follows the state like the DNAT map elements do: a detach deletes
//! the container's entries at once, a full install (network changes,
//! `reconcile` after a crash) rewrites the map from the records.
//!
//! No bpffs is needed: the attachment keeps the program (and its map) alive, and
//! later invocations find them again by name through `BPF_PROG_QUERY` on the
//! cgroup. Map: key `ip . port` (network order, padded to 8 bytes); value the
//! container's `ip . port` in the same layout, then the gateway address (16
//! bytes). Key address 0.0.0.0 stands for "every address", and a key with port 0
//! marks a gateway address (a published port is never 0).
//!
//! Program (hand-assembled; `bpf_sock_addr` offsets: user_ip4 4, user_port 24,
//! type 32):
//! ```text
//!  r6 = r1;  if ctx->type != SOCK_STREAM goto allow
//!  if bpf_get_netns_cookie(ctx) != HOST goto allow
//!  if user_port == 0 goto allow
//!  v = lookup(map, {user_ip4, user_port})
//!  if !v {
//!    if (user_ip4 & 0xff) != 127 && !lookup(map, {user_ip4, 0}) goto allow   // a gateway?
//!    v = lookup(map, {0.0.0.0, user_port})                                     // "any"
//!  }
//!  if v && bind(ctx, {AF_INET, v.gateway, port 0}) == 0 {
//!    ctx->user_ip4 = v.ip;  ctx->user_port = v.port
//!  }
//! allow: return 1
//! ```

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use berth_sys::{BpfMap, BPF_CGROUP_INET4_CONNECT};

const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_GET_NETNS_COOKIE: i32 = 122;
const MAX_ENTRIES: u32 = 4096;
const HELPER_BIND: i32 = 64;
/// Map value: container `ip . port` (8 bytes), then the gateway address and 4
/// bytes of padding.
const VALUE_SIZE: usize = 16;

/// A published TCP port as the program sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// `None`: every address (looked up for 127.0.0.0/8 destinations).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub to_ip: Ipv4Addr,
    pub to_port: u16,
    /// The gateway (bridge) address of the container's network: the socket is
    /// bound to it, and only redirected if that bind succeeds.
    pub via: Ipv4Addr,
}

/// `ip . port` in the layout of the program's key and value.
fn addr_port(ip: Ipv4Addr, port: u16) -> [u8; 8] {
    let o = ip.octets();
    let p = port.to_be_bytes();
    [o[0], o[1], o[2], o[3], p[0], p[1], 0, 0]
}

impl Redirect {
    fn key(&self) -> [u8; 8] {
        addr_port(
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
        )
    }
    fn value(&self) -> [u8; VALUE_SIZE] {
        let mut v = [0u8; VALUE_SIZE];
        v[..8].copy_from_slice(&addr_port(self.to_ip, self.to_port));
        v[8..12].copy_from_slice(&self.via.octets());
        v
    }
}

/// The program and map name for an instance (berth's nft table name).
pub(crate) fn object_name(table: &str) -> String {
    let h = table.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    // BPF object names: at most 15 bytes of [A-Za-z0-9_.].
    // "2": the map layout (a program of another layout is another program).
    format!("berth2_{:08x}", h & 0xffff_ffff)
}

/// The mount point of the cgroup2 hierarchy (/sys/fs/cgroup, or
/// /sys/fs/cgroup/unified on a hybrid host).
fn cgroup2_root() -> io::Result<PathBuf> {
    // The usual places first: two statfs(2) instead of reading every mount.
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if nix::sys::statfs::statfs(p)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        {
            return Ok(PathBuf::from(p));
        }
    }
    // Elsewhere: the engine's own cgroup detection (mountinfo).
    berth_cgroups::Hierarchy::detect()
        .map_err(io::Error::other)?
        .unified()
        .map(|u| u.mountpoint.clone())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup2 mount"))
}

/// One eBPF instruction.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | (dst & 0xf);
    b[2..4].copy_from_slice(&off.to_ne_bytes());
    b[4..8].copy_from_slice(&imm.to_ne_bytes());
    b
}

/// The program's instructions for `map_fd` and the host's netns cookie.
#[allow(clippy::vec_init_then_push)] // one push per line keeps the listing's numbering
fn program(map_fd: RawFd, cookie: u64) -> Vec<[u8; 8]> {
    const LDX_W: u8 = 0x61;
    const STX_W: u8 = 0x63;
    const ST_W: u8 = 0x62;
    const ST_H: u8 = 0x6a;
    const ST_DW: u8 = 0x7a;
    const MOV_X: u8 = 0xbf;
    const MOV_K: u8 = 0xb7;
    const ADD_K: u8 = 0x07;
    const AND_K: u8 = 0x57;
    const JNE_K: u8 = 0x55;
    const JEQ_K: u8 = 0x15;
    const JNE_X: u8 = 0x5d;
    const LD_DW: u8 = 0x18;
    const CALL: u8 = 0x85;
    const EXIT: u8 = 0x95;
    const PSEUDO_MAP_FD: u8 = 1;
    let (lo, hi) = (cookie as u32 as i32, (cookie >> 32) as u32 as i32);
    let map = |v: &mut Vec<[u8; 8]>| {
        v.push(insn(LD_DW, 1, PSEUDO_MAP_FD, 0, map_fd));
        v.push(insn(0, 0, 0, 0, 0));
    };
    let mut p = Vec::new();
    p.push(insn(MOV_X, 6, 1, 0, 0)); // 0: r6 = ctx
    p.push(insn(LDX_W, 2, 6, 32, 0)); // 1: r2 = ctx->type
    p.push(insn(JNE_K, 2, 0, 50, libc::SOCK_STREAM)); // 2: -> 53 allow
    p.push(insn(MOV_X, 1, 6, 0, 0)); // 3
    p.push(insn(CALL, 0, 0, 0, HELPER_GET_NETNS_COOKIE)); // 4
    p.push(insn(LD_DW, 2, 0, 0, lo)); // 5
    p.push(insn(0, 0, 0, 0, hi)); // 6
    p.push(insn(JNE_X, 0, 2, 45, 0)); // 7: -> 53 allow
    p.push(insn(LDX_W, 7, 6, 4, 0)); // 8: r7 = user_ip4
    p.push(insn(LDX_W, 8, 6, 24, 0)); // 9: r8 = user_port
    p.push(insn(JEQ_K, 8, 0, 42, 0)); // 10: port 0 -> 53 allow
    p.push(insn(STX_W, 10, 7, -8, 0)); // 11: key = ip . port
    p.push(insn(STX_W, 10, 8, -4, 0)); // 12
    map(&mut p); // 13, 14
    p.push(insn(MOV_X, 2, 10, 0, 0)); // 15
    p.push(insn(ADD_K, 2, 0, 0, -8)); // 16
    p.push(insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM)); // 17
    p.push(insn(JNE_K, 0, 0, 18, 0)); // 18: hit -> 37
    p.push(insn(MOV_X, 2, 7, 0, 0)); // 19
    p.push(insn(AND_K, 2, 0, 0, 0xff)); // 20: first octet
    p.push(insn(JEQ_K, 2, 0, 7, 127)); // 21: 127/8 -> 29 any
    p.push(insn(ST_W, 10, 0, -4, 0)); // 22: key = ip . 0 (a gateway?)
    map(&mut p); // 23, 24
    p.push(insn(MOV_X, 2, 10, 0, 0)); // 25
    p.push(insn(ADD_K, 2, 0, 0, -8)); // 26
    p.push(insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM)); // 27
    p.push(insn(JEQ_K, 0, 0, 24, 0)); // 28: no -> 53 allow
    p.push(insn(ST_W, 10, 0, -8, 0)); // 29: any: key = 0.0.0.0 . port
    p.push(insn(STX_W, 10, 8, -4, 0)); // 30
    map(&mut p); // 31, 32
    p.push(insn(MOV_X, 2, 10, 0, 0)); // 33
    p.push(insn(ADD_K, 2, 0, 0, -8)); // 34
    p.push(insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM)); // 35
    p.push(insn(JEQ_K, 0, 0, 16, 0)); // 36: miss -> 53 allow
    p.push(insn(MOV_X, 9, 0, 0, 0)); // 37: hit: r9 = value
    p.push(insn(ST_DW, 10, 0, -24, 0)); // 38: sockaddr_in at fp-24, zeroed
    p.push(insn(ST_DW, 10, 0, -16, 0)); // 39
    p.push(insn(ST_H, 10, 0, -24, libc::AF_INET)); // 40: sin_family
    p.push(insn(LDX_W, 2, 9, 8, 0)); // 41: value.via
    p.push(insn(STX_W, 10, 2, -20, 0)); // 42: sin_addr (port 0)
    p.push(insn(MOV_X, 1, 6, 0, 0)); // 43
    p.push(insn(MOV_X, 2, 10, 0, 0)); // 44
    p.push(insn(ADD_K, 2, 0, 0, -24)); // 45
    p.push(insn(MOV_K, 3, 0, 0, 16)); // 46
    p.push(insn(CALL, 0, 0, 0, HELPER_BIND)); // 47: bind(ctx, &sin, 16)
    p.push(insn(JNE_K, 0, 0, 4, 0)); // 48: gateway gone (or bound) -> 53 allow
    p.push(insn(LDX_W, 2, 9, 0, 0)); // 49: rewrite
    p.push(insn(STX_W, 6, 2, 4, 0)); // 50: ctx->user_ip4
    p.push(insn(LDX_W, 2, 9, 4, 0)); // 51
    p.push(insn(STX_W, 6, 2, 24, 0)); // 52: ctx->user_port
    p.push(insn(MOV_K, 0, 0, 0, 1)); // 53: allow
    p.push(insn(EXIT, 0, 0, 0, 0)); // 54
    p
}

/// The program and map of one instance.
pub(crate) struct SockLb {
    name: String,
}

impl SockLb {
    pub(crate) fn new(table: &str) -> SockLb {
        SockLb {
            name: object_name(table),
        }
    }

    fn cgroup(&self) -> io::Result<File> {
        File::open(cgroup2_root()?)
    }

    /// (program fd, map) of this instance's attached program, if any.
    fn find(&self, cg: &File) -> io::Result<Option<(OwnedFd, BpfMap)>> {
        for id in berth_sys::bpf_cgroup_programs(cg.as_fd(), BPF_CGROUP_INET4_CONNECT)? {
            // A program detached meanwhile (another instance's) is no error.
            let Ok((prog, name, map)) = berth_sys::bpf_program_by_id(id) else {
                continue;
            };
            if let (true, Some(map)) = (name == self.name, map) {
                return Ok(Some((prog, BpfMap::by_id(map)?)));
            }
        }
        Ok(None)
    }

    /// The map of the attached program, loading and attaching it first if
    /// this instance has none.
    fn ensure(&self) -> io::Result<BpfMap> {
        let cg = self.cgroup()?;
        if let Some((_, map)) = self.find(&cg)? {
            return Ok(map);
        }
        let map = BpfMap::create_hash(&self.name, 8, VALUE_SIZE as u32, MAX_ENTRIES)?;
        let insns: Vec<u64> = program(map.as_fd().as_raw_fd(), berth_sys::netns_cookie()?)
            .iter()
            .map(|i| u64::from_ne_bytes(*i))
            .collect();
        let license = CString::new("Dual MIT/GPL").map_err(io::Error::other)?;
        let prog = berth_sys::bpf_load_sock_addr_program(
            &self.name,
            &insns,
            &license,
            BPF_CGROUP_INET4_CONNECT,
        )?;
        berth_sys::bpf_cgroup_attach(cg.as_fd(), prog.as_fd(), BPF_CGROUP_INET4_CONNECT)?;
        Ok(map)
    }

    /// Makes the map hold exactly `all` and the gateway marks (a full install).
    /// With nothing to redirect, an attached program is detached instead (and
    /// none is loaded): instances that publish no TCP port attach nothing.
    pub(crate) fn sync(&self, all: &[Redirect], gateways: &[Ipv4Addr]) -> io::Result<()> {
        if all.is_empty() {
            return self.remove();
        }
        let map = self.ensure()?;
        let mut want: Vec<([u8; 8], [u8; VALUE_SIZE])> =
            all.iter().map(|r| (r.key(), r.value())).collect();
        want.extend(
            gateways
                .iter()
                .map(|g| (addr_port(*g, 0), [0u8; VALUE_SIZE])),
        );
        for k in map.keys()? {
            if !want.iter().any(|(w, _)| w[..] == k[..]) {
                map.delete(&k)?;
            }
        }
        want.iter().try_for_each(|(k, v)| map.update(k, v))
    }

    /// Adds `add` and removes `remove` (a container's attach or detach), and
    /// marks `gateways` (marks stay until the next full install: a mark alone
    /// redirects nothing).
    pub(crate) fn change(
        &self,
        add: &[Redirect],
        remove: &[Redirect],
        gateways: &[Ipv4Addr],
    ) -> io::Result<()> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let map = if add.is_empty() {
            match self.find(&self.cgroup()?)? {
                Some((_, map)) => map,
                None => return Ok(()),
            }
        } else {
            self.ensure()?
        };
        for r in remove {
            map.delete(&r.key())?;
        }
        if !add.is_empty() {
            for g in gateways {
                map.update(&addr_port(*g, 0), &[0u8; VALUE_SIZE])?;
            }
        }
        add.iter()
            .try_for_each(|r| map.update(&r.key(), &r.value()))
    }

    /// Detaches the program (its map goes with it).
    pub(crate) fn remove(&self) -> io::Result<()> {
        let cg = match self.cgroup() {
            Ok(cg) => cg,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        while let Some((prog, _)) = self.find(&cg)? {
            berth_sys::bpf_cgroup_detach(cg.as_fd(), prog.as_fd(), BPF_CGROUP_INET4_CONNECT)?;
        }
        Ok(())
    }

    /// Whether this instance's program is attached (for tests and diagnostics).
    pub(crate) fn attached(&self) -> bool {
        self.cgroup()
            .and_then(|cg| self.find(&cg))
            .is_ok_and(|f| f.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_bpf_object_names() {
        let n = object_name("berth");
        assert_eq!(n.len(), 15);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_ne!(object_name("berth"), object_name("berth_t1"));
    }

    #[test]
    fn keys_are_address_then_port_in_network_order() {
        let r = Redirect {
            host_ip: None,
            host_port: 8080,
            to_ip: Ipv4Addr::new(10, 88, 0, 5),
            to_port: 80,
            via: Ipv4Addr::new(10, 88, 0, 1),
        };
        assert_eq!(r.key(), [0, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(
            r.value(),
            [10, 88, 0, 5, 0, 80, 0, 0, 10, 88, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn jumps_land_where_the_listing_says() {
        let p = program(3, 0x1122_3344_5566_7788);
        assert_eq!(p.len(), 55);
        let target =
            |pc: usize| pc as i64 + 1 + i64::from(i16::from_ne_bytes([p[pc][2], p[pc][3]]));
        // not TCP, another netns, port 0, not a gateway, no "any" entry: allow as is
        // not TCP, another netns, port 0, not a gateway, no "any" entry, the
        // gateway's address gone: allow as is
        for pc in [2, 7, 10, 28, 36, 48] {
            assert_eq!(target(pc), 53, "jump at {pc}");
        }
        assert_eq!(target(18), 37, "an exact hit binds, then rewrites");
        assert_eq!(target(21), 29, "127/8 looks up the any-address entry");
        assert_eq!(p[47], insn(0x85, 0, 0, 0, HELPER_BIND));
        assert_eq!(p[53], insn(0xb7, 0, 0, 0, 1));
        assert_eq!(p[54][0], 0x95);
        // the cookie, split over the two halves of a 64-bit immediate
        assert_eq!(
            i32::from_ne_bytes([p[5][4], p[5][5], p[5][6], p[5][7]]),
            0x5566_7788
        );
        assert_eq!(
            i32::from_ne_bytes([p[6][4], p[6][5], p[6][6], p[6][7]]),
            0x1122_3344
        );
    }
}
