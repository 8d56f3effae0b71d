//! What the kernel tells about a socket: the protocol, the two endpoints
//! and the state, as sock_diag netlink or /proc/PID/net report them.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

/// The protocols npfiles asks the kernel about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Unix,
}

impl Protocol {
    /// `tcp`, `udp`, `unix`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Unix => "unix",
        }
    }
}

/// A UNIX socket's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixName {
    /// Not bound (a socketpair, a client that did not bind).
    Unnamed,
    /// A filesystem path.
    Path(Vec<u8>),
    /// An abstract name (without its leading NUL).
    Abstract(Vec<u8>),
}

impl UnixName {
    /// The name as bytes: the path, `@name` for an abstract name, empty
    /// when unnamed.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            UnixName::Unnamed => Vec::new(),
            UnixName::Path(p) => p.clone(),
            UnixName::Abstract(a) => {
                let mut v = vec![b'@'];
                v.extend_from_slice(a);
                v
            }
        }
    }
}

/// One end of a socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Inet(SocketAddr),
    Unix(UnixName),
}

impl Endpoint {
    /// `AF_INET`, `AF_INET6`, `AF_UNIX`.
    pub fn family(&self) -> &'static str {
        match self {
            Endpoint::Inet(SocketAddr::V4(_)) => "AF_INET",
            Endpoint::Inet(SocketAddr::V6(_)) => "AF_INET6",
            Endpoint::Unix(_) => "AF_UNIX",
        }
    }
}

/// `SOCK_STREAM` and friends.
pub fn sock_type_name(t: u8) -> String {
    match t {
        1 => "SOCK_STREAM".into(),
        2 => "SOCK_DGRAM".into(),
        3 => "SOCK_RAW".into(),
        4 => "SOCK_RDM".into(),
        5 => "SOCK_SEQPACKET".into(),
        other => format!("SOCK_TYPE({other})"),
    }
}

/// A socket's state by the kernel's TCP numbering (also used for UDP and
/// UNIX sockets): the TCP names for TCP, and for the others `CONNECTED`,
/// `UNCONNECTED` or `LISTEN`.
pub fn state_name(protocol: Protocol, state: u8) -> String {
    const TCP: [&str; 14] = [
        "",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
        "NEW_SYN_RECV",
        "BOUND_INACTIVE",
    ];
    match (protocol, state) {
        (Protocol::Tcp, 1..=13) => TCP[state as usize].to_owned(),
        (_, 1) => "CONNECTED".to_owned(),
        (_, 7) => "UNCONNECTED".to_owned(),
        (_, 10) => "LISTEN".to_owned(),
        (_, s) => format!("STATE({s})"),
    }
}

/// One socket as the kernel's tables describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEntry {
    pub inode: u64,
    pub protocol: Protocol,
    /// `SOCK_STREAM` = 1, `SOCK_DGRAM` = 2, `SOCK_SEQPACKET` = 5.
    pub sock_type: u8,
    /// The kernel's state number (see [`state_name`]).
    pub state: u8,
    pub local: Endpoint,
    /// The remote end of a connected inet socket; for a UNIX socket the
    /// peer's name when the peer is in the table.
    pub peer: Option<Endpoint>,
    /// A connected UNIX socket's peer inode.
    pub unix_peer: Option<u64>,
}

/// An inet address that names no end (`0.0.0.0:0`, `[::]:0`): the remote
/// end of a socket that is not connected.
pub fn is_unspecified(a: &SocketAddr) -> bool {
    a.ip().is_unspecified() && a.port() == 0
}

impl SocketEntry {
    /// A TCP or UDP socket from a table row, with no peer when `remote` is
    /// unspecified.
    pub fn inet(
        inode: u64,
        protocol: Protocol,
        state: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> SocketEntry {
        SocketEntry {
            inode,
            protocol,
            sock_type: if protocol == Protocol::Udp { 2 } else { 1 },
            state,
            local: Endpoint::Inet(local),
            peer: (!is_unspecified(&remote)).then_some(Endpoint::Inet(remote)),
            unix_peer: None,
        }
    }

    pub fn state_name(&self) -> String {
        state_name(self.protocol, self.state)
    }
}

/// Where the socket table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSource {
    /// The kernel's sock_diag netlink interface.
    Netlink,
    /// /proc/PID/net/{tcp,tcp6,udp,udp6,unix}: slower, and without UNIX
    /// peers.
    Procfs,
}

/// The sockets of a network namespace, by inode.
#[derive(Debug, Clone)]
pub struct SocketTable {
    pub by_inode: HashMap<u64, SocketEntry>,
    pub source: TableSource,
}

impl SocketTable {
    pub fn new(source: TableSource) -> Self {
        SocketTable {
            by_inode: HashMap::with_capacity(1024),
            source,
        }
    }

    /// Add an entry; for UNIX sockets, fill in peer names afterwards with
    /// [`SocketTable::link_unix_peers`].
    pub fn insert(&mut self, entry: SocketEntry) {
        self.by_inode.insert(entry.inode, entry);
    }

    /// Give each connected UNIX socket its peer's name.
    pub fn link_unix_peers(&mut self) {
        let names: Vec<(u64, Endpoint)> = self
            .by_inode
            .values()
            .filter_map(|e| {
                let peer = self.by_inode.get(&e.unix_peer?)?;
                Some((e.inode, peer.local.clone()))
            })
            .collect();
        for (inode, name) in names {
            if let Some(e) = self.by_inode.get_mut(&inode) {
                e.peer = Some(name);
            }
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(state_name(Protocol::Tcp, 10), "LISTEN");
        assert_eq!(state_name(Protocol::Tcp, 1), "ESTABLISHED");
        assert_eq!(state_name(Protocol::Unix, 1), "CONNECTED");
        assert_eq!(state_name(Protocol::Udp, 7), "UNCONNECTED");
        assert_eq!(sock_type_name(5), "SOCK_SEQPACKET");
    }
}
