//! Open file descriptors in detail (npfiles): the table's types, and the
//! matching of a pipe's or a socket's other end.
//!
//! Each descriptor has what `stat` of /proc/PID/fd/N says (type, mode,
//! device, inode, owner, size), what /proc/PID/fdinfo/N says (open flags,
//! offset, and for anonymous inodes their state: an eventfd's count, the fds
//! an epoll instance watches, a timerfd's timer, a signalfd's mask, inotify
//! watches), and for sockets their endpoints and state from the kernel's
//! socket tables. Reading them is `crate::live::fds`'s work; a core file
//! records no descriptors at all (see [`crate::ProcessTarget::open_files`]).

pub use crate::parse::{fdinfo, socket};

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

pub use fdinfo::{EpollWatch, FdInfo, InotifyWatch, TimerFd};
pub use socket::{Endpoint, Protocol, SocketEntry, SocketTable, TableSource, UnixName};

/// What to find out about each descriptor beyond `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Read /proc/PID/fdinfo/N (flags, offset, anonymous inode state, and
    /// which fd holds a pipe's other end).
    pub fdinfo: bool,
    /// Look sockets up in the kernel's socket tables.
    pub sockets: bool,
    /// Ask the kernel only about this protocol (`--type tcp` needs no UNIX
    /// table); `None` for all of TCP, UDP and UNIX.
    pub only_protocol: Option<Protocol>,
    /// Read sockets from /proc/PID/net without asking netlink (the
    /// fallback's own answer, to compare it with netlink's).
    pub procfs_sockets: bool,
}

impl Options {
    /// Everything.
    pub fn full() -> Self {
        Options {
            fdinfo: true,
            sockets: true,
            only_protocol: None,
            procfs_sockets: false,
        }
    }
}

/// The type of file a descriptor refers to, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Symlink,
    /// An anonymous inode (eventfd, epoll, timerfd, signalfd, inotify...):
    /// Linux gives these no file type bits.
    Anon,
    /// Type bits this crate does not know.
    Other(u32),
}

const S_IFMT: u32 = 0o170000;

impl FileKind {
    pub fn from_mode(mode: u32) -> Self {
        match mode & S_IFMT {
            0o100000 => FileKind::Regular,
            0o040000 => FileKind::Directory,
            0o020000 => FileKind::CharDevice,
            0o060000 => FileKind::BlockDevice,
            0o010000 => FileKind::Fifo,
            0o140000 => FileKind::Socket,
            0o120000 => FileKind::Symlink,
            0 => FileKind::Anon,
            other => FileKind::Other(other),
        }
    }

    /// The short type name `--type` uses: `file`, `dir`, `chr`, `blk`,
    /// `fifo`, `sock`, `lnk`, `anon`, `other`.
    pub fn type_name(self) -> &'static str {
        match self {
            FileKind::Regular => "file",
            FileKind::Directory => "dir",
            FileKind::CharDevice => "chr",
            FileKind::BlockDevice => "blk",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "sock",
            FileKind::Symlink => "lnk",
            FileKind::Anon => "anon",
            FileKind::Other(_) => "other",
        }
    }
}

/// `stat` of the file a descriptor refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdStat {
    pub mode: u32,
    pub dev: (u32, u32),
    pub ino: u64,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: (u32, u32),
    pub nlink: u64,
}

fn split_dev(dev: u64) -> (u32, u32) {
    (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    )
}

impl FdStat {
    pub(crate) fn from_stat(st: &nix::sys::stat::FileStat) -> Self {
        FdStat {
            mode: st.st_mode,
            dev: split_dev(st.st_dev),
            ino: st.st_ino,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u64,
            rdev: split_dev(st.st_rdev),
            nlink: st.st_nlink,
        }
    }
}

/// One open descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub fd: i32,
    /// What /proc/PID/fd/N reads: a path (with ` (deleted)` when the file
    /// was removed), `socket:[INODE]`, `pipe:[INODE]`, `anon_inode:[NAME]`.
    pub link: OsString,
    /// `None` when the file could not be stat'ed.
    pub stat: Option<FdStat>,
    pub kind: FileKind,
    /// From fdinfo, when asked for and readable.
    pub info: Option<FdInfo>,
    /// The socket as the kernel's tables describe it, when found there.
    pub socket: Option<SocketEntry>,
    /// Other descriptors of this process that hold the other end: of a
    /// pipe or FIFO (opened the other way), of a connected socket.
    pub other_end: Vec<i32>,
}

impl Descriptor {
    /// The path of a file or directory, without the ` (deleted)` the
    /// kernel appends, and whether the file was deleted.
    pub fn path(&self) -> (&[u8], bool) {
        let bytes = self.link.as_bytes();
        match bytes.strip_suffix(b" (deleted)") {
            Some(p) if self.stat.is_some_and(|s| s.nlink == 0) => (p, true),
            _ => (bytes, false),
        }
    }

    /// For an anonymous inode: what it is (`eventfd`, `eventpoll`,
    /// `timerfd`, `signalfd`, `inotify`, `pidfd`, ...).
    pub fn anon_name(&self) -> Option<&[u8]> {
        let name = self.link.as_bytes().strip_prefix(b"anon_inode:")?;
        Some(
            name.strip_prefix(b"[")
                .and_then(|n| n.strip_suffix(b"]"))
                .unwrap_or(name),
        )
    }

    /// The inode (of the pipe or socket for those), when stat worked.
    pub fn inode(&self) -> Option<u64> {
        self.stat.map(|s| s.ino)
    }

    /// The `--type` name: the socket's protocol (`tcp`, `udp`, `unix`) for
    /// a socket found in the tables, else [`FileKind::type_name`].
    pub fn type_name(&self) -> &'static str {
        match &self.socket {
            Some(s) => s.protocol.name(),
            None => self.kind.type_name(),
        }
    }

    /// Does this descriptor belong to `--type TYPE`? `sock` takes every
    /// socket, `tcp`/`udp`/`unix` only sockets of that protocol.
    pub fn is_type(&self, wanted: &str) -> bool {
        wanted == self.kind.type_name() || wanted == self.type_name()
    }
}

/// The descriptor table of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdTable {
    /// The soft limit on open files (`None`: unlimited or unknown).
    pub rlimit: Option<u64>,
    pub fds: Vec<Descriptor>,
    /// Where socket details came from, when sockets were looked up.
    pub socket_source: Option<TableSource>,
}

/// Give each socket descriptor not yet matched its entry in `sockets`.
/// Returns whether some socket is still unmatched.
pub(crate) fn attach_sockets(fds: &mut [Descriptor], sockets: &SocketTable) -> bool {
    let mut unmatched = false;
    for d in fds.iter_mut() {
        if d.kind == FileKind::Socket && d.socket.is_none() {
            d.socket = d.inode().and_then(|i| sockets.by_inode.get(&i).cloned());
            unmatched |= d.socket.is_none();
        }
    }
    unmatched
}

/// The type of a descriptor that could not be stat'ed, from its link.
pub(crate) fn kind_from_link(link: &[u8]) -> FileKind {
    if link.starts_with(b"socket:") {
        FileKind::Socket
    } else if link.starts_with(b"pipe:") {
        FileKind::Fifo
    } else if link.starts_with(b"anon_inode:") {
        FileKind::Anon
    } else {
        FileKind::Other(0)
    }
}

/// Fill in [`Descriptor::other_end`]: for pipes and FIFOs the descriptors
/// on the same inode opened the other way; for sockets the descriptors of
/// the peer socket (a UNIX peer inode, or the inet socket whose endpoints
/// are ours swapped).
pub(crate) fn link_other_ends(fds: &mut [Descriptor]) {
    // Inode numbers repeat across filesystems: FIFOs are matched by device
    // and inode, and a UNIX socket's peer only among sockets.
    let mut fifos: HashMap<((u32, u32), u64), Vec<usize>> = HashMap::new();
    let mut sockets: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut by_endpoints: HashMap<(Endpoint, Endpoint), Vec<usize>> = HashMap::new();
    for (i, d) in fds.iter().enumerate() {
        match (d.kind, d.stat) {
            (FileKind::Fifo, Some(st)) => fifos.entry((st.dev, st.ino)).or_default().push(i),
            (FileKind::Socket, Some(st)) => sockets.entry(st.ino).or_default().push(i),
            _ => {}
        }
        if let Some(s) = &d.socket
            && s.protocol != Protocol::Unix
            && let Some(peer) = &s.peer
        {
            by_endpoints
                .entry((s.local.clone(), peer.clone()))
                .or_default()
                .push(i);
        }
    }
    let flags = |d: &Descriptor| d.info.as_ref().and_then(|i| i.flags);
    let mut found: Vec<Vec<i32>> = vec![Vec::new(); fds.len()];
    for (i, d) in fds.iter().enumerate() {
        let others: Vec<usize> = match (d.kind, &d.socket) {
            (FileKind::Fifo, _) => {
                let (Some(mine), Some(st)) = (flags(d), d.stat) else {
                    continue;
                };
                fifos
                    .get(&(st.dev, st.ino))
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|&j| {
                        // A FIFO opened O_RDWR holds both ends itself.
                        (j != i || (fdinfo::flags_read(mine) && fdinfo::flags_write(mine)))
                            && flags(&fds[j]).is_some_and(|theirs| {
                                (fdinfo::flags_read(mine) && fdinfo::flags_write(theirs))
                                    || (fdinfo::flags_write(mine) && fdinfo::flags_read(theirs))
                            })
                    })
                    .collect()
            }
            (FileKind::Socket, Some(s)) => match (&s.unix_peer, &s.peer) {
                (Some(peer), _) => sockets.get(peer).cloned().unwrap_or_default(),
                (None, Some(peer)) if s.protocol != Protocol::Unix => by_endpoints
                    .get(&(peer.clone(), s.local.clone()))
                    .cloned()
                    .unwrap_or_default(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        found[i] = others.into_iter().map(|j| fds[j].fd).collect();
    }
    for (d, others) in fds.iter_mut().zip(found) {
        d.other_end = others;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(fd: i32, mode: u32, ino: u64, flags: u32, link: &str) -> Descriptor {
        Descriptor {
            fd,
            link: link.into(),
            stat: Some(FdStat {
                mode,
                dev: (0, 15),
                ino,
                uid: 0,
                gid: 0,
                size: 0,
                rdev: (0, 0),
                nlink: 1,
            }),
            kind: FileKind::from_mode(mode),
            info: Some(FdInfo {
                flags: Some(flags),
                ..FdInfo::default()
            }),
            socket: None,
            other_end: Vec::new(),
        }
    }

    /// A connected TCP socket's descriptor.
    fn tcp(n: i32, inode: u64, local: &str, peer: &str) -> Descriptor {
        let mut d = fd(n, 0o140777, inode, 2, &format!("socket:[{inode}]"));
        d.socket = Some(SocketEntry {
            inode,
            protocol: Protocol::Tcp,
            sock_type: 1,
            state: 1,
            local: Endpoint::Inet(local.parse().unwrap()),
            peer: Some(Endpoint::Inet(peer.parse().unwrap())),
            unix_peer: None,
        });
        d
    }

    #[test]
    fn kinds_from_modes() {
        assert_eq!(FileKind::from_mode(0o100644), FileKind::Regular);
        assert_eq!(FileKind::from_mode(0o140777), FileKind::Socket);
        assert_eq!(FileKind::from_mode(0o600), FileKind::Anon);
        assert_eq!(FileKind::from_mode(0o020666).type_name(), "chr");
        assert_eq!(kind_from_link(b"socket:[5]"), FileKind::Socket);
    }

    #[test]
    fn pipe_ends_and_a_fifo_open_both_ways() {
        let mut fds = vec![
            fd(3, 0o10600, 100, 0, "pipe:[100]"),
            fd(4, 0o10600, 100, 1, "pipe:[100]"),
            // A dup of the read end is not the other end.
            fd(5, 0o10600, 100, 0o2000000, "pipe:[100]"),
            fd(6, 0o10600, 200, 2, "/run/fifo"),
        ];
        link_other_ends(&mut fds);
        assert_eq!(fds[0].other_end, [4]);
        assert_eq!(fds[1].other_end, [3, 5]);
        assert_eq!(fds[2].other_end, [4]);
        assert_eq!(fds[3].other_end, [6]);
    }

    #[test]
    fn socket_peers_in_the_same_process() {
        let a = tcp(7, 300, "127.0.0.1:40000", "127.0.0.1:80");
        let b = tcp(8, 301, "127.0.0.1:80", "127.0.0.1:40000");
        let mut u = fd(9, 0o140777, 400, 2, "socket:[400]");
        u.socket = Some(SocketEntry {
            inode: 400,
            protocol: Protocol::Unix,
            sock_type: 1,
            state: 1,
            local: Endpoint::Unix(UnixName::Unnamed),
            peer: None,
            unix_peer: Some(401),
        });
        let mut v = fd(10, 0o140777, 401, 2, "socket:[401]");
        v.socket = Some(SocketEntry {
            unix_peer: Some(400),
            inode: 401,
            ..u.socket.clone().unwrap()
        });
        let mut fds = vec![a, b, u, v];
        link_other_ends(&mut fds);
        assert_eq!(fds[0].other_end, [8]);
        assert_eq!(fds[1].other_end, [7]);
        assert_eq!(fds[2].other_end, [10]);
        assert_eq!(fds[3].other_end, [9]);
        assert!(fds[0].is_type("tcp") && fds[0].is_type("sock") && !fds[0].is_type("udp"));
    }

    #[test]
    fn deleted_paths() {
        let mut d = fd(3, 0o100644, 1, 0, "/tmp/x (deleted)");
        assert_eq!(d.path(), (&b"/tmp/x (deleted)"[..], false));
        d.stat.as_mut().unwrap().nlink = 0;
        assert_eq!(d.path(), (&b"/tmp/x"[..], true));
        let e = fd(4, 0o600, 2, 2, "anon_inode:[eventfd]");
        assert_eq!(e.anon_name(), Some(&b"eventfd"[..]));
        assert_eq!(
            fd(5, 0o600, 2, 0, "anon_inode:inotify").anon_name(),
            Some(&b"inotify"[..])
        );
    }
}
