//! nf_tables over netlink (NETLINK_NETFILTER): the per-container firewall changes.
//!
//! Published ports are elements of maps in berth's table (see `firewall`), so a
//! container's attach/detach only adds or expires map elements. Doing that with
//! `nft -f -` costs a fork+exec and nft's own cache load (6-20 ms on this host);
//! here it is one `sendmsg` of a transaction batch and a few `recvmsg`s for the
//! acks (tens of microseconds of kernel work).
//!
//! Why elements are expired instead of deleted: a NFT_MSG_DELSETELEM commit
//! queues the table's destroy work (it frees the element after an RCU grace
//! period), and since 6.x closing ANY bound netfilter socket flushes that work
//! (`nft_rcv_nl_event` on NETLINK_URELEASE), so the close blocks for a grace
//! period: 8-20 ms on this host, for `nft` too. Re-adding an existing element
//! with a 1 ms expiration is an in-place update that queues nothing; lookups
//! and dumps skip an element once it expired (expirations are kept in jiffies,
//! so that is at the next clock tick: at most 4 ms at HZ=250) and the set's GC
//! frees it later.
//! So the maps carry `flags timeout` and every element a (decade-long) timeout.
//!
//! Wire format (include/uapi/linux/netfilter/nfnetlink.h, nf_tables.h):
//! ```text
//!  NFNL_MSG_BATCH_BEGIN (res_id = NFNL_SUBSYS_NFTABLES)      seq s
//!  NFT_MSG_NEWSETELEM, NLM_F_ACK                              seq s+1 ..
//!  NFNL_MSG_BATCH_END                                         seq s+n+1
//! ```
//! The kernel applies the batch atomically (all messages or none) while it runs
//! our `sendmsg`, then queues one ack or error per NLM_F_ACK message on the
//! socket before `sendmsg` returns; so after the send every reply is already
//! readable and a non-blocking read until EAGAIN sees them all (no timeouts).
//! Numbers inside nf_tables attributes are big-endian; data registers are
//! 4-byte aligned, so each field of a concatenated key is padded to 4 bytes.

use std::io;
use std::net::Ipv4Addr;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;

const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSETELEM: u16 = 12;
/// Deletes an element, and (unlike DELSETELEM) is no error when there is none.
const NFT_MSG_DESTROYSETELEM: u16 = 26;
const NLM_F_APPEND: u16 = 0x800;
/// nfgenmsg.nfgen_family of an `ip` table.
pub(crate) const NFPROTO_IPV4: u8 = 2;
/// nfgenmsg.nfgen_family of a `netdev` table.
pub(crate) const NFPROTO_NETDEV: u8 = 5;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NF_NETDEV_INGRESS: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_IIFTYPE: u32 = 8;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const ARPHRD_ETHER: u16 = 1;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_LL_HEADER: u32 = 0;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_DREG: u16 = 3;
const NFTA_FWD_SREG_DEV: u16 = 1;
/// NFT_REG_1: a 16-byte register (holds a 6-byte MAC, then the ifindex).
const NFT_REG_1: u32 = 1;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_SET_ELEM_USERDATA: u16 = 6;
const NFTA_DATA_VALUE: u16 = 1;
/// libnftnl's userdata TLV type for an element comment (what `nft list` shows).
const NFTNL_UDATA_SET_ELEM_COMMENT: u8 = 0;

/// One map element: key and value already in register layout; timeouts in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub set: String,
    pub key: Vec<u8>,
    pub data: Option<Vec<u8>>,
    pub comment: Option<String>,
    pub timeout_ms: Option<u64>,
    /// Time left before the element expires (an update when it exists).
    pub expire_ms: Option<u64>,
}

/// An `inet_service` key: the port in network order, 2 bytes (the set's klen).
pub(crate) fn port_key(port: u16) -> Vec<u8> {
    port.to_be_bytes().to_vec()
}

/// An `ipv4_addr . inet_service` key or value: 4 address bytes, then the port
/// padded to a 4-byte register.
pub(crate) fn addr_port(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut v = ip.octets().to_vec();
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v
}

/// A transaction under construction.
pub(crate) struct Batch {
    buf: Vec<u8>,
    first_seq: u32,
    next_seq: u32,
    /// seq -> description, for every message the kernel will ack.
    pending: Vec<(u32, String)>,
}

impl Batch {
    pub(crate) fn new(first_seq: u32) -> Batch {
        let mut b = Batch {
            buf: Vec::with_capacity(512),
            first_seq,
            next_seq: first_seq,
            pending: Vec::new(),
        };
        b.control(NFNL_MSG_BATCH_BEGIN);
        b
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn control(&mut self, ty: u16) {
        let seq = self.take_seq();
        let at = msg_begin(
            &mut self.buf,
            ty,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        msg_end(&mut self.buf, at);
    }

    fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// Adds one `NEWSETELEM` for `ip` table `table`.`elem.set`: creates the
    /// element, or (without NLM_F_EXCL) updates the expiration of an identical
    /// existing one.
    pub(crate) fn set_element(&mut self, table: &str, elem: &Element) {
        self.set_element_in(NFPROTO_IPV4, table, elem)
    }

    /// [`Batch::set_element`] for a table of any family.
    pub(crate) fn set_element_in(&mut self, family: u8, table: &str, elem: &Element) {
        let seq = self.take_seq();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
        let verb = if elem.expire_ms.is_some() {
            "expire"
        } else {
            "add"
        };
        let b = &mut self.buf;
        let at = msg_begin(b, ty, flags, seq, family, 0);
        put_strz(b, NFTA_SET_ELEM_LIST_TABLE, table);
        put_strz(b, NFTA_SET_ELEM_LIST_SET, &elem.set);
        let list = nest_begin(b, NFTA_SET_ELEM_LIST_ELEMENTS);
        let item = nest_begin(b, NFTA_LIST_ELEM);
        let key = nest_begin(b, NFTA_SET_ELEM_KEY);
        put_attr(b, NFTA_DATA_VALUE, &elem.key);
        nest_end(b, key);
        if let Some(data) = &elem.data {
            let d = nest_begin(b, NFTA_SET_ELEM_DATA);
            put_attr(b, NFTA_DATA_VALUE, data);
            nest_end(b, d);
        }
        if let Some(t) = elem.timeout_ms {
            put_attr(b, NFTA_SET_ELEM_TIMEOUT, &t.to_be_bytes());
        }
        if let Some(t) = elem.expire_ms {
            put_attr(b, NFTA_SET_ELEM_EXPIRATION, &t.to_be_bytes());
        }
        if let Some(c) = &elem.comment {
            // TLV: type, length (with the NUL), bytes, NUL; at most 255.
            let c = &c.as_bytes()[..c.len().min(254)];
            let mut udata = vec![NFTNL_UDATA_SET_ELEM_COMMENT, (c.len() + 1) as u8];
            udata.extend_from_slice(c);
            udata.push(0);
            put_attr(b, NFTA_SET_ELEM_USERDATA, &udata);
        }
        nest_end(b, item);
        nest_end(b, list);
        msg_end(b, at);
        self.pending.push((
            seq,
            format!("{verb} element {} of set {}", hex(&elem.key), elem.set),
        ));
    }

    /// Deletes the element `key` of `table`.`set` if there is one (kernel 6.3+).
    pub(crate) fn destroy_element_in(&mut self, family: u8, table: &str, set: &str, key: &[u8]) {
        let seq = self.take_seq();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DESTROYSETELEM;
        let b = &mut self.buf;
        let at = msg_begin(b, ty, NLM_F_REQUEST | NLM_F_ACK, seq, family, 0);
        put_strz(b, NFTA_SET_ELEM_LIST_TABLE, table);
        put_strz(b, NFTA_SET_ELEM_LIST_SET, set);
        let list = nest_begin(b, NFTA_SET_ELEM_LIST_ELEMENTS);
        let item = nest_begin(b, NFTA_LIST_ELEM);
        let k = nest_begin(b, NFTA_SET_ELEM_KEY);
        put_attr(b, NFTA_DATA_VALUE, key);
        nest_end(b, k);
        nest_end(b, item);
        nest_end(b, list);
        msg_end(b, at);
        self.pending
            .push((seq, format!("delete element {} of set {set}", hex(key))));
    }

    /// Creates base chain `chain` of netdev table `table` on the ingress hook of
    /// `device` (policy accept). Without NLM_F_EXCL an existing chain is fine.
    pub(crate) fn netdev_ingress_chain(
        &mut self,
        table: &str,
        chain: &str,
        device: &str,
        priority: i32,
    ) {
        let seq = self.take_seq();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN;
        let b = &mut self.buf;
        let at = msg_begin(
            b,
            ty,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
            seq,
            NFPROTO_NETDEV,
            0,
        );
        put_strz(b, NFTA_CHAIN_TABLE, table);
        put_strz(b, NFTA_CHAIN_NAME, chain);
        let hook = nest_begin(b, NFTA_CHAIN_HOOK);
        put_attr(b, NFTA_HOOK_HOOKNUM, &NF_NETDEV_INGRESS.to_be_bytes());
        put_attr(b, NFTA_HOOK_PRIORITY, &priority.to_be_bytes());
        put_strz(b, NFTA_HOOK_DEV, device);
        nest_end(b, hook);
        put_attr(b, NFTA_CHAIN_POLICY, &NF_ACCEPT.to_be_bytes());
        put_strz(b, NFTA_CHAIN_TYPE, "filter");
        msg_end(b, at);
        self.pending
            .push((seq, format!("add netdev chain {chain}")));
    }

    /// Appends to netdev chain `chain` the rule
    /// `fwd to ether daddr map @map` (what `nft --debug=netlink` shows for it:
    /// meta iiftype == ether; payload 6b @ link header + 0 => reg 1;
    /// lookup reg 1 set map dreg 1; fwd sreg_dev 1): an Ethernet frame whose
    /// destination MAC is a key of `map` is sent out of the interface the
    /// map names (its ifindex) and goes no further on this host.
    pub(crate) fn fwd_by_mac_rule(&mut self, table: &str, chain: &str, map: &str) {
        let seq = self.take_seq();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE;
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        let b = &mut self.buf;
        let at = msg_begin(b, ty, flags, seq, NFPROTO_NETDEV, 0);
        put_strz(b, NFTA_RULE_TABLE, table);
        put_strz(b, NFTA_RULE_CHAIN, chain);
        let exprs = nest_begin(b, NFTA_RULE_EXPRESSIONS);
        let expr = |b: &mut Vec<u8>, name: &str, body: &dyn Fn(&mut Vec<u8>)| {
            let e = nest_begin(b, NFTA_LIST_ELEM);
            put_strz(b, NFTA_EXPR_NAME, name);
            let d = nest_begin(b, NFTA_EXPR_DATA);
            body(b);
            nest_end(b, d);
            nest_end(b, e);
        };
        expr(b, "meta", &|b| {
            put_attr(b, NFTA_META_KEY, &NFT_META_IIFTYPE.to_be_bytes());
            put_attr(b, NFTA_META_DREG, &NFT_REG_1.to_be_bytes());
        });
        expr(b, "cmp", &|b| {
            put_attr(b, NFTA_CMP_SREG, &NFT_REG_1.to_be_bytes());
            put_attr(b, NFTA_CMP_OP, &NFT_CMP_EQ.to_be_bytes());
            let d = nest_begin(b, NFTA_CMP_DATA);
            put_attr(b, NFTA_DATA_VALUE, &ARPHRD_ETHER.to_ne_bytes());
            nest_end(b, d);
        });
        expr(b, "payload", &|b| {
            put_attr(b, NFTA_PAYLOAD_DREG, &NFT_REG_1.to_be_bytes());
            put_attr(b, NFTA_PAYLOAD_BASE, &NFT_PAYLOAD_LL_HEADER.to_be_bytes());
            put_attr(b, NFTA_PAYLOAD_OFFSET, &0u32.to_be_bytes());
            put_attr(b, NFTA_PAYLOAD_LEN, &6u32.to_be_bytes());
        });
        expr(b, "lookup", &|b| {
            put_strz(b, NFTA_LOOKUP_SET, map);
            put_attr(b, NFTA_LOOKUP_SREG, &NFT_REG_1.to_be_bytes());
            put_attr(b, NFTA_LOOKUP_DREG, &NFT_REG_1.to_be_bytes());
        });
        expr(b, "fwd", &|b| {
            put_attr(b, NFTA_FWD_SREG_DEV, &NFT_REG_1.to_be_bytes());
        });
        nest_end(b, exprs);
        msg_end(b, at);
        self.pending
            .push((seq, format!("add rule to chain {chain}")));
    }

    /// The bytes to send: the messages followed by BATCH_END.
    pub(crate) fn finish(mut self) -> (Vec<u8>, u32, Vec<(u32, String)>) {
        self.control(NFNL_MSG_BATCH_END);
        (self.buf, self.first_seq, self.pending)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends an nlmsghdr and an nfgenmsg; returns the message start.
fn msg_begin(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched by msg_end
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
    at
}

fn msg_end(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

fn put_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align4(buf.len()), 0);
}

fn put_strz(buf: &mut Vec<u8>, ty: u16, s: &str) {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    put_attr(buf, ty, &v);
}

fn nest_begin(buf: &mut Vec<u8>, ty: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    at
}

fn nest_end(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
}

fn ctx(op: &'static str) -> impl FnOnce(io::Error) -> (String, io::Error) {
    move |e| (op.to_string(), e)
}

/// Sends `batch` on a fresh socket (see [`Conn::commit`]).
pub(crate) fn commit(batch: Batch) -> Result<(), (String, io::Error)> {
    if batch.is_empty() {
        return Ok(());
    }
    Conn::open()?.commit(batch)
}

/// A NETLINK_NETFILTER socket: queries, then at most one batch.
pub(crate) struct Conn {
    socket: Socket,
    /// Sequence numbers of queries (batches number their own messages from 1).
    seq: u32,
}

impl Conn {
    pub(crate) fn open() -> Result<Conn, (String, io::Error)> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(ctx("open netfilter socket"))?;
        socket.bind_auto().map_err(ctx("bind netfilter socket"))?;
        Ok(Conn {
            socket,
            seq: 0x4000_0000,
        })
    }

    /// Whether chain `chain` exists in table `table` of `family` (a missing
    /// table is `false` too). One GETCHAIN round trip; nothing is committed.
    pub(crate) fn chain_exists(
        &mut self,
        family: u8,
        table: &str,
        chain: &str,
    ) -> io::Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut buf = Vec::with_capacity(64);
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
        let at = msg_begin(&mut buf, ty, NLM_F_REQUEST | NLM_F_ACK, seq, family, 0);
        put_strz(&mut buf, NFTA_CHAIN_TABLE, table);
        put_strz(&mut buf, NFTA_CHAIN_NAME, chain);
        msg_end(&mut buf, at);
        self.socket.send_to(&buf, &SocketAddr::new(0, 0), 0)?;
        let mut found = false;
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            for (ty, s, payload) in messages(&data) {
                if s != seq {
                    continue;
                }
                if ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN {
                    found = true;
                } else if ty == NLMSG_ERROR && payload.len() >= 4 {
                    let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    return match -code {
                        0 => Ok(found),
                        libc::ENOENT => Ok(false),
                        e => Err(io::Error::from_raw_os_error(e)),
                    };
                }
            }
        }
    }

    /// Sends `batch` and checks one ack per message. A NACK becomes an error
    /// naming the failed message; the kernel has then applied nothing.
    pub(crate) fn commit(self, batch: Batch) -> Result<(), (String, io::Error)> {
        if batch.is_empty() {
            return Ok(());
        }
        let (bytes, begin_seq, pending) = batch.finish();
        let mut socket = self.socket;
        socket
            .send_to(&bytes, &SocketAddr::new(0, 0), 0)
            .map_err(ctx("send batch"))?;
        socket
            .set_non_blocking(true)
            .map_err(ctx("read batch acks"))?;
        read_acks(&mut socket, begin_seq, pending)
    }
}

fn read_acks(
    socket: &mut Socket,
    begin_seq: u32,
    mut pending: Vec<(u32, String)>,
) -> Result<(), (String, io::Error)> {
    while !pending.is_empty() {
        let data = match socket.recv_from_full() {
            Ok((data, _)) => data,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err((
                    format!("{} (no ack from the kernel)", pending[0].1),
                    io::Error::from(io::ErrorKind::UnexpectedEof),
                ))
            }
            Err(e) => return Err(ctx("read batch acks")(e)),
        };
        for (ty, seq, payload) in messages(&data) {
            if ty != NLMSG_ERROR || payload.len() < 4 {
                continue;
            }
            let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
            if seq == begin_seq && code != 0 {
                return Err((
                    "begin nf_tables batch".into(),
                    io::Error::from_raw_os_error(-code),
                ));
            }
            if let Some(pos) = pending.iter().position(|(s, _)| *s == seq) {
                let (_, what) = pending.swap_remove(pos);
                if code != 0 {
                    return Err((what, io::Error::from_raw_os_error(-code)));
                }
            }
        }
    }
    Ok(())
}

/// Splits a datagram into (type, seq, payload) netlink messages.
fn messages(data: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= data.len() {
        let len =
            u32::from_ne_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
        if len < 16 || off + len > data.len() {
            break;
        }
        let ty = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
        let seq =
            u32::from_ne_bytes([data[off + 8], data[off + 9], data[off + 10], data[off + 11]]);
        out.push((ty, seq, &data[off + 16..off + len]));
        off += align4(len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_use_register_layout() {
        // as `nft --debug=netlink` prints them: 0000901f, 0100007f 0000901f
        assert_eq!(port_key(8080), vec![0x1f, 0x90]);
        assert_eq!(
            addr_port(Ipv4Addr::new(10, 88, 0, 2), 80),
            vec![10, 88, 0, 2, 0, 0x50, 0, 0]
        );
    }

    /// The attribute payloads of a nested list, in order: (type, payload).
    fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        while b.len() >= 4 {
            let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
            let ty = u16::from_ne_bytes([b[2], b[3]]) & !NLA_F_NESTED;
            out.push((ty, &b[4..len]));
            b = &b[align4(len).min(b.len())..];
        }
        out
    }

    /// The payload of the attribute `ty` in `list`.
    fn attr<'a>(list: &[(u16, &'a [u8])], ty: u16) -> &'a [u8] {
        list.iter()
            .find(|a| a.0 == ty)
            .unwrap_or_else(|| panic!("attribute {ty}"))
            .1
    }

    #[test]
    fn shortcut_chain_and_rule_match_what_nft_sends() {
        let mut b = Batch::new(1);
        b.netdev_ingress_chain("t", "vx", "vx", 0);
        b.fwd_by_mac_rule("t", "vx", "l2_61");
        let (bytes, _, pending) = b.finish();
        assert_eq!(pending.len(), 2);
        let msgs = messages(&bytes);
        assert_eq!(msgs[1].0, 0x0a03, "NEWCHAIN");
        assert_eq!(msgs[1].2[0], NFPROTO_NETDEV);
        let chain = attrs(&msgs[1].2[4..]);
        let hook = attr(&chain, NFTA_CHAIN_HOOK);
        assert_eq!(
            attrs(hook),
            vec![
                (1, &[0u8, 0, 0, 0][..]),
                (2, &[0, 0, 0, 0][..]),
                (3, &b"vx\0"[..])
            ]
        );
        assert!(chain.contains(&(NFTA_CHAIN_TYPE, &b"filter\0"[..])));
        assert!(chain.contains(&(NFTA_CHAIN_POLICY, &[0, 0, 0, 1][..])));
        assert_eq!(msgs[2].0, 0x0a06, "NEWRULE");
        let rule = attrs(&msgs[2].2[4..]);
        let exprs = attr(&rule, NFTA_RULE_EXPRESSIONS);
        type Expr = (String, Vec<(u16, Vec<u8>)>);
        let exprs: Vec<Expr> = attrs(exprs)
            .into_iter()
            .map(|(_, e)| {
                let e = attrs(e);
                let name = String::from_utf8(e[0].1.to_vec()).expect("name");
                let data = attrs(e[1].1)
                    .into_iter()
                    .map(|(t, p)| (t, p.to_vec()))
                    .collect();
                (name.trim_end_matches('\0').to_string(), data)
            })
            .collect();
        let names: Vec<&str> = exprs.iter().map(|e| e.0.as_str()).collect();
        // nft: meta load iiftype => reg 1; cmp eq reg 1 0x0001; payload load 6b
        // @ link header + 0 => reg 1; lookup reg 1 set l2_61 dreg 1; fwd sreg_dev 1
        assert_eq!(names, ["meta", "cmp", "payload", "lookup", "fwd"]);
        assert_eq!(
            exprs[0].1,
            vec![(2, vec![0, 0, 0, 8]), (1, vec![0, 0, 0, 1])]
        );
        assert_eq!(
            exprs[2].1,
            vec![
                (1, vec![0, 0, 0, 1]),
                (2, vec![0, 0, 0, 0]),
                (3, vec![0, 0, 0, 0]),
                (4, vec![0, 0, 0, 6])
            ]
        );
        assert_eq!(exprs[3].1[0], (1, b"l2_61\0".to_vec()));
        assert_eq!(exprs[4].1, vec![(1, vec![0, 0, 0, 1])]);
    }

    #[test]
    fn batch_is_begin_messages_end() {
        let mut b = Batch::new(7);
        let e = Element {
            set: "tcp_any".into(),
            key: port_key(8080),
            data: Some(addr_port(Ipv4Addr::new(10, 88, 0, 2), 80)),
            comment: Some("ctr:abc".into()),
            timeout_ms: Some(1000),
            expire_ms: None,
        };
        b.set_element("berth", &e);
        b.set_element(
            "berth",
            &Element {
                comment: None,
                expire_ms: Some(1),
                ..e.clone()
            },
        );
        let (bytes, begin, pending) = b.finish();
        assert_eq!(begin, 7);
        assert_eq!(pending.iter().map(|p| p.0).collect::<Vec<_>>(), vec![8, 9]);
        let msgs = messages(&bytes);
        let kinds: Vec<(u16, u32)> = msgs.iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(
            kinds,
            vec![(16, 7), (0x0a0c, 8), (0x0a0c, 9), (17, 10)],
            "begin, newsetelem x2, end"
        );
        // begin/end carry res_id = NFNL_SUBSYS_NFTABLES in network order
        assert_eq!(msgs[0].2, &[0, 0, 0, 10]);
        let add = msgs[1].2;
        assert_eq!(&add[..4], &[NFPROTO_IPV4, 0, 0, 0]);
        // table attribute: len 10 ("berth\0"), type 1, padded to 12
        assert_eq!(
            &add[4..16],
            &[10, 0, 1, 0, b'b', b'e', b'r', b't', b'h', 0, 0, 0]
        );
        let comment = [0u8, 8, b'c', b't', b'r', b':', b'a', b'b', b'c', 0];
        assert!(add.windows(comment.len()).any(|w| w == comment));
        // timeout: len 12, type 4, u64 big-endian
        let timeout = [12u8, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8];
        assert!(add.windows(timeout.len()).any(|w| w == timeout));
        let expire = [12u8, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert!(!add.windows(expire.len()).any(|w| w == expire));
        assert!(msgs[2].2.windows(expire.len()).any(|w| w == expire));
    }
}
