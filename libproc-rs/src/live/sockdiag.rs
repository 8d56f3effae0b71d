//! Socket tables from the kernel's sock_diag netlink interface
//! (NETLINK_SOCK_DIAG), asked inside the target's network namespace.
//!
//! The netlink socket is created in the target's namespace by a short-lived
//! thread that joins it with `setns(CLONE_NEWNET)`: a socket stays in the
//! namespace it was created in, and joining from a thread of its own leaves
//! the namespace of the rest of the program alone. One dump per family and
//! protocol is asked for, and the answers are indexed by inode.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::unix::nlas::UnixDiagName;
use netlink_packet_sock_diag::unix::{self, ShowFlags, UnixRequest};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};

use crate::parse::socket::{Endpoint, Protocol, SocketEntry, SocketTable, TableSource, UnixName};

/// Open a sock_diag socket in the network namespace `ns_path`
/// (`/proc/PID/ns/net`). When that is our own namespace no thread is needed.
pub fn open_in_namespace(ns_path: &Path) -> io::Result<Socket> {
    let theirs = std::fs::metadata(ns_path)?;
    let ours = std::fs::metadata("/proc/self/ns/net")?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return open_socket();
    }
    let ns = File::open(ns_path)?;
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                io::Error::other(format!(
                    "cannot join the process's network namespace ({e}); that needs CAP_SYS_ADMIN"
                ))
            })?;
            open_socket()
        })?
        .join()
        .map_err(|_| io::Error::other("the namespace thread failed"))?
}

fn open_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Every state: the crate's flags stop at TCP_CLOSING, and unconnected UNIX
/// sockets are in TCP_CLOSE.
const ALL_STATES: u32 = 0xffff_ffff;
/// The states of sockets in the kernel's lookup tables, TCP_ESTABLISHED to
/// TCP_NEW_SYN_RECV.
const HASHED_STATES: u32 = 0x1ffe;
/// TCP_BOUND_INACTIVE (Linux 6.5+): bound, neither listening nor connected.
/// Asking for it makes the kernel walk its whole bind table as well, so it
/// has a dump of its own, run only when a socket was not found otherwise.
const BOUND_INACTIVE: u32 = 1 << 13;

/// One table of the kernel's: a sock_diag dump, and the /proc/PID/net file
/// that lists the same sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    Tcp4,
    Tcp6,
    Udp4,
    Udp6,
    Unix,
    /// TCP sockets that are bound and nothing more.
    TcpBound4,
    TcpBound6,
}

impl Dump {
    /// The tables every socket in use is in.
    pub const ALL: [Dump; 5] = [Dump::Tcp4, Dump::Tcp6, Dump::Udp4, Dump::Udp6, Dump::Unix];
    /// TCP sockets only bound (not in /proc/PID/net/tcp either).
    pub const BOUND: [Dump; 2] = [Dump::TcpBound4, Dump::TcpBound6];

    pub fn protocol(self) -> Protocol {
        match self {
            Dump::Tcp4 | Dump::Tcp6 | Dump::TcpBound4 | Dump::TcpBound6 => Protocol::Tcp,
            Dump::Udp4 | Dump::Udp6 => Protocol::Udp,
            Dump::Unix => Protocol::Unix,
        }
    }

    /// The file under /proc/PID/ with the same table.
    pub fn proc_file(self) -> &'static str {
        match self {
            Dump::Tcp4 | Dump::TcpBound4 => "net/tcp",
            Dump::Tcp6 | Dump::TcpBound6 => "net/tcp6",
            Dump::Udp4 => "net/udp",
            Dump::Udp6 => "net/udp6",
            Dump::Unix => "net/unix",
        }
    }

    fn request(self) -> SockDiagMessage {
        match self {
            Dump::Tcp4 => inet_request(AF_INET, IPPROTO_TCP, HASHED_STATES),
            Dump::Tcp6 => inet_request(AF_INET6, IPPROTO_TCP, HASHED_STATES),
            Dump::Udp4 => inet_request(AF_INET, IPPROTO_UDP, HASHED_STATES),
            Dump::Udp6 => inet_request(AF_INET6, IPPROTO_UDP, HASHED_STATES),
            Dump::Unix => unix_request(),
            Dump::TcpBound4 => inet_request(AF_INET, IPPROTO_TCP, BOUND_INACTIVE),
            Dump::TcpBound6 => inet_request(AF_INET6, IPPROTO_TCP, BOUND_INACTIVE),
        }
    }
}

fn inet_request(family: u8, protocol: u8, states: u32) -> SockDiagMessage {
    SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::from_bits_retain(states),
        socket_id: if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        },
    })
}

fn unix_request() -> SockDiagMessage {
    SockDiagMessage::UnixRequest(UnixRequest {
        state_flags: unix::StateFlags::from_bits_retain(ALL_STATES),
        inode: 0,
        show_flags: ShowFlags::NAME | ShowFlags::PEER,
        cookie: [0xff; 8],
    })
}

/// Turn one sock_diag answer into a table entry. The kernel does not echo
/// an inet socket's protocol: `protocol` is the one the dump asked for.
pub fn entry_from_message(message: &SockDiagMessage, protocol: Protocol) -> Option<SocketEntry> {
    match message {
        SockDiagMessage::InetResponse(r) => {
            let h = &r.header;
            let id = &h.socket_id;
            Some(SocketEntry::inet(
                u64::from(h.inode),
                protocol,
                h.state,
                std::net::SocketAddr::new(id.source_address, id.source_port),
                std::net::SocketAddr::new(id.destination_address, id.destination_port),
            ))
        }
        SockDiagMessage::UnixResponse(r) => {
            let name = match r.name() {
                None => UnixName::Unnamed,
                Some(UnixDiagName::Pathname(p)) => UnixName::Path(p.as_encoded_bytes().to_vec()),
                Some(UnixDiagName::Abstract(a)) => UnixName::Abstract(a.clone()),
            };
            Some(SocketEntry {
                inode: u64::from(r.header.inode),
                protocol: Protocol::Unix,
                sock_type: r.header.kind,
                state: r.header.state,
                local: Endpoint::Unix(name),
                peer: None,
                unix_peer: r.peer().map(u64::from),
            })
        }
        _ => None,
    }
}

/// What a buffer of netlink messages held.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// More messages follow.
    More,
    /// The dump is complete.
    Done,
    /// The kernel answered with an error (a negative errno).
    Failed(i32),
}

/// Parse one buffer received from a dump, adding its sockets to `table` as
/// `protocol`. Messages that do not parse are skipped.
pub fn parse_batch(buf: &[u8], protocol: Protocol, table: &mut SocketTable) -> Batch {
    let mut offset = 0usize;
    while let Some(bytes) = buf.get(offset..)
        && bytes.len() >= 16
    {
        let len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if len < 16 || len > bytes.len() {
            break;
        }
        // A message that does not parse is skipped, not fatal.
        if let Ok(msg) = NetlinkMessage::<SockDiagMessage>::deserialize(&bytes[..len]) {
            match msg.payload {
                NetlinkPayload::Done(_) => return Batch::Done,
                // An error without a code is an acknowledgement.
                NetlinkPayload::Error(e) => {
                    return e.code.map_or(Batch::Done, |c| Batch::Failed(c.get()));
                }
                NetlinkPayload::InnerMessage(m) => {
                    if let Some(e) = entry_from_message(&m, protocol) {
                        table.insert(e);
                    }
                }
                _ => {}
            }
        }
        // Messages are aligned to 4 bytes.
        offset = offset.saturating_add((len + 3) & !3);
    }
    Batch::More
}

/// Run one dump and add what it returns to `table`.
fn dump(
    socket: &Socket,
    request: SockDiagMessage,
    protocol: Protocol,
    seq: u32,
    table: &mut SocketTable,
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut out = vec![0; packet.buffer_len()];
    packet.serialize(&mut out);
    socket.send(&out, 0)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        buf.clear();
        let n = socket.recv(&mut buf, 0)?;
        if n == 0 {
            return Err(io::Error::other("netlink socket closed during a dump"));
        }
        match parse_batch(&buf[..n], protocol, table) {
            Batch::More => {}
            Batch::Done => return Ok(()),
            Batch::Failed(code) => return Err(io::Error::from_raw_os_error(-code)),
        }
    }
}

/// The sockets of the network namespace `ns_path` in the tables `dumps`.
/// Fails when no sock_diag socket can be had there; a table the kernel
/// refuses to dump (a protocol's diag module missing, no IPv6) is returned
/// with its error, for the caller to read elsewhere.
pub fn query(ns_path: &Path, dumps: &[Dump]) -> io::Result<(SocketTable, Vec<(Dump, io::Error)>)> {
    let socket = open_in_namespace(ns_path)?;
    let mut table = SocketTable::new(TableSource::Netlink);
    let mut failed = Vec::new();
    for (seq, &d) in dumps.iter().enumerate() {
        if let Err(e) = dump(
            &socket,
            d.request(),
            d.protocol(),
            seq as u32 + 1,
            &mut table,
        ) {
            failed.push((d, e));
        }
    }
    table.link_unix_peers();
    Ok((table, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: &[u8]) -> Vec<u8> {
        let mut v = ((bytes.len() + 16) as u32).to_ne_bytes().to_vec();
        v.extend_from_slice(&20u16.to_ne_bytes()); // SOCK_DIAG_BY_FAMILY
        v.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        v.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(bytes);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    #[test]
    fn inet_answer() {
        // struct inet_diag_msg: family, state, timer, retrans, then the
        // socket id (ports big-endian, addresses, interface, cookie), then
        // expires, rqueue, wqueue, uid, inode.
        let mut m = vec![2u8, 1, 0, 0];
        m.extend_from_slice(&8080u16.to_be_bytes());
        m.extend_from_slice(&50000u16.to_be_bytes());
        m.extend_from_slice(&[127, 0, 0, 1]);
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[127, 0, 0, 1]);
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0; 4 + 8]);
        m.extend_from_slice(&[0; 4 * 4]);
        m.extend_from_slice(&424242u32.to_ne_bytes());
        let mut buf = message(&m);
        // NLMSG_DONE
        let mut done = vec![20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        done.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&done);
        let mut t = SocketTable::new(TableSource::Netlink);
        assert_eq!(parse_batch(&buf, Protocol::Tcp, &mut t), Batch::Done);
        let e = &t.by_inode[&424242];
        assert_eq!(e.state, 1);
        assert_eq!(e.local, Endpoint::Inet("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(
            e.peer,
            Some(Endpoint::Inet("127.0.0.1:50000".parse().unwrap()))
        );
    }

    #[test]
    fn unix_answers_with_names_and_peers() {
        // struct unix_diag_msg: family, type, state, pad, inode, cookie[2];
        // then attributes (len, type): UNIX_DIAG_NAME = 0, UNIX_DIAG_PEER = 2.
        let unix_msg = |inode: u32, name: &[u8], peer: Option<u32>| {
            let mut m = vec![1u8, 1, 1, 0];
            m.extend_from_slice(&inode.to_ne_bytes());
            m.extend_from_slice(&[0; 8]);
            if !name.is_empty() {
                m.extend_from_slice(&((name.len() + 4) as u16).to_ne_bytes());
                m.extend_from_slice(&0u16.to_ne_bytes());
                m.extend_from_slice(name);
                while m.len() % 4 != 0 {
                    m.push(0);
                }
            }
            if let Some(p) = peer {
                m.extend_from_slice(&8u16.to_ne_bytes());
                m.extend_from_slice(&2u16.to_ne_bytes());
                m.extend_from_slice(&p.to_ne_bytes());
            }
            message(&m)
        };
        let mut buf = unix_msg(100, b"/run/s.sock\0", Some(101));
        buf.extend(unix_msg(101, b"", Some(100)));
        buf.extend(unix_msg(102, b"\0hidden", None));
        let mut t = SocketTable::new(TableSource::Netlink);
        assert_eq!(parse_batch(&buf, Protocol::Unix, &mut t), Batch::More);
        t.link_unix_peers();
        assert_eq!(t.by_inode[&100].unix_peer, Some(101));
        assert_eq!(
            t.by_inode[&101].peer,
            Some(Endpoint::Unix(UnixName::Path(b"/run/s.sock".to_vec())))
        );
        assert_eq!(
            t.by_inode[&102].local,
            Endpoint::Unix(UnixName::Abstract(b"hidden".to_vec()))
        );
    }

    #[test]
    fn an_error_answer_is_reported() {
        let mut m = (-95i32).to_ne_bytes().to_vec(); // EOPNOTSUPP
        m.extend_from_slice(&[16, 0, 0, 0, 20, 0, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut buf = message(&m);
        buf[4] = 2; // NLMSG_ERROR
        let mut t = SocketTable::new(TableSource::Netlink);
        assert_eq!(parse_batch(&buf, Protocol::Tcp, &mut t), Batch::Failed(-95));
    }
}
