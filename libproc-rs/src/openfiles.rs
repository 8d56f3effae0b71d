//! Open file descriptors in detail (npfiles): stat, fdinfo, sockets.
//!
//! For each descriptor of a live process: what `stat` of /proc/PID/fd/N
//! says (type, mode, device, inode, owner, size), what /proc/PID/fdinfo/N
//! says (open flags, offset, and for anonymous inodes their state: an
//! eventfd's count, the fds an epoll instance watches, a timerfd's timer,
//! a signalfd's mask, inotify watches), and for sockets their endpoints and
//! state from the kernel's socket tables (sock_diag netlink in the target's
//! network namespace, or /proc/PID/net where netlink is not available).
//!
//! Nothing here stops or touches the target: it is all /proc and netlink.
//! A descriptor closed while it is read is skipped. A core file records no
//! descriptors at all (see [`crate::ProcessTarget::open_files`]).

pub mod fdinfo;
pub mod procnet;
pub mod sockdiag;
pub mod socket;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

pub use fdinfo::{EpollWatch, FdInfo, InotifyWatch, TimerFd};
use sockdiag::Dump;
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
}

impl Options {
    /// Everything.
    pub fn full() -> Self {
        Options {
            fdinfo: true,
            sockets: true,
            only_protocol: None,
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

    /// The `S_IFxxx` name pfiles prints; `S_IFANON` for an anonymous inode.
    pub fn s_if_name(self) -> String {
        match self {
            FileKind::Regular => "S_IFREG".into(),
            FileKind::Directory => "S_IFDIR".into(),
            FileKind::CharDevice => "S_IFCHR".into(),
            FileKind::BlockDevice => "S_IFBLK".into(),
            FileKind::Fifo => "S_IFIFO".into(),
            FileKind::Socket => "S_IFSOCK".into(),
            FileKind::Symlink => "S_IFLNK".into(),
            FileKind::Anon => "S_IFANON".into(),
            FileKind::Other(bits) => format!("S_IF0{bits:o}"),
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
    fn from_stat(st: &nix::sys::stat::FileStat) -> Self {
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
    /// Things the user should know (netlink not available, and why).
    pub notices: Vec<String>,
}

/// Describe the descriptors of a live process whose /proc directory is
/// `dir`; `limits` is the text of /proc/PID/limits. Descriptors closed
/// meanwhile are left out. Fails only when /proc/PID/fd cannot be listed.
///
/// On a busy server this is thousands of descriptors, each a readlink, a
/// stat and an fdinfo read: they are made relative to open directory
/// descriptors (no path walk through /proc each time) and shared among a
/// few threads, while another thread asks the kernel for the socket table.
pub fn describe_live(dir: &Path, limits: &[u8], options: Options) -> io::Result<FdTable> {
    let fd_dir = dir.join("fd");
    let mut numbers: Vec<i32> = std::fs::read_dir(&fd_dir)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    let dirs = ProcFdDirs {
        fd: open_dir(&fd_dir)?,
        fdinfo: if options.fdinfo {
            Some(open_dir(&dir.join("fdinfo"))?)
        } else {
            None
        },
    };
    let mut table = FdTable {
        rlimit: fdinfo::parse_nofile_limit(limits),
        fds: Vec::with_capacity(numbers.len()),
        socket_source: None,
        notices: Vec::new(),
    };
    let workers = match numbers.len() {
        0..1024 => 1,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
    };
    let chunk = numbers.len().div_ceil(workers).max(1);
    let describe = |part: &[i32]| -> Vec<Descriptor> {
        let mut buf = Vec::new();
        part.iter()
            .filter_map(|&fd| dirs.describe(fd, &mut buf))
            .collect()
    };
    let sockets = std::thread::scope(|scope| {
        // Whether there are sockets at all is known only once links are
        // read; asking the kernel costs little next to that, so ask at once.
        // Where no thread can be had, the work is done here instead.
        let query = move || socket_table(dir, options.only_protocol);
        let sockets = options
            .sockets
            .then(|| std::thread::Builder::new().spawn_scoped(scope, query).ok());
        let mut parts = numbers.chunks(chunk);
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|part| {
                let handle =
                    std::thread::Builder::new().spawn_scoped(scope, move || describe(part));
                (part, handle.ok())
            })
            .collect();
        table.fds.extend(describe(first));
        for (part, handle) in others {
            table.fds.extend(match handle.map(|h| h.join()) {
                Some(Ok(described)) => described,
                _ => describe(part),
            });
        }
        sockets.map(|handle| match handle.map(|h| h.join()) {
            Some(Ok(table)) => table,
            _ => query(),
        })
    });
    if let Some((sockets, notice)) = sockets
        && table.fds.iter().any(|d| d.kind == FileKind::Socket)
    {
        table.notices.extend(notice);
        table.socket_source = Some(sockets.source);
        let unmatched = attach_sockets(&mut table.fds, &sockets);
        // Sockets only bound are listed by a dump of their own, which
        // costs a walk of the kernel's bind table: asked for only when a
        // socket is still unknown.
        if unmatched
            && sockets.source == TableSource::Netlink
            && options.only_protocol.is_none_or(|p| p == Protocol::Tcp)
            && let Ok((bound, _)) = sockdiag::query(&dir.join("ns/net"), &Dump::BOUND)
        {
            attach_sockets(&mut table.fds, &bound);
        }
    }
    link_other_ends(&mut table.fds);
    Ok(table)
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// /proc/PID/fd and /proc/PID/fdinfo, open.
struct ProcFdDirs {
    fd: OwnedFd,
    fdinfo: Option<OwnedFd>,
}

impl ProcFdDirs {
    /// Describe one descriptor; `None` when it was closed meanwhile.
    /// `buf` is scratch space, reused from one descriptor to the next.
    fn describe(&self, fd: i32, buf: &mut Vec<u8>) -> Option<Descriptor> {
        let name = fd.to_string();
        let stat = match nix::sys::stat::fstatat(&self.fd, name.as_str(), AtFlags::empty()) {
            Ok(st) => Some(FdStat::from_stat(&st)),
            Err(Errno::ENOENT) => return None,
            Err(_) => None,
        };
        // A socket's link is always `socket:[INODE]`: on a server with
        // thousands of connections, one system call fewer for each.
        let stat_kind = stat.map(|s| FileKind::from_mode(s.mode));
        let link = match stat {
            Some(s) if stat_kind == Some(FileKind::Socket) => {
                OsString::from(format!("socket:[{}]", s.ino))
            }
            _ => nix::fcntl::readlinkat(&self.fd, name.as_str()).ok()?,
        };
        let info = match &self.fdinfo {
            Some(dir) => match read_small_at(dir, &name, buf) {
                Ok(b) => Some(fdinfo::parse_fdinfo(b)),
                Err(Errno::ENOENT) => return None,
                Err(_) => None,
            },
            None => None,
        };
        // Anonymous inodes are told by their link: some (pidfs on newer
        // kernels, say) carry file type bits.
        let kind = match stat_kind {
            _ if link.as_bytes().starts_with(b"anon_inode:") => FileKind::Anon,
            Some(k) => k,
            None => kind_from_link(link.as_bytes()),
        };
        Some(Descriptor {
            fd,
            link,
            stat,
            kind,
            info,
            socket: None,
            other_end: Vec::new(),
        })
    }
}

/// Read a small /proc file relative to `dir` into `buf`. A seq_file read
/// that comes back short has returned everything, so the usual single read
/// suffices.
fn read_small_at<'a>(dir: &OwnedFd, name: &str, buf: &'a mut Vec<u8>) -> Result<&'a [u8], Errno> {
    let fd = nix::fcntl::openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut file = std::fs::File::from(fd);
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    break;
                }
                buf.resize(buf.len() * 2, 0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        }
    }
    Ok(&buf[..len])
}

/// Give each socket descriptor not yet matched its entry in `sockets`.
/// Returns whether some socket is still unmatched.
fn attach_sockets(fds: &mut [Descriptor], sockets: &SocketTable) -> bool {
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
fn kind_from_link(link: &[u8]) -> FileKind {
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

/// The socket table of the target's network namespace: netlink first,
/// /proc/PID/net when netlink fails (or when NPTOOLS_SOCKET_SOURCE=procfs
/// asks for it, which the tests use to check the fallback).
fn socket_table(dir: &Path, only: Option<Protocol>) -> (SocketTable, Option<String>) {
    let dumps: Vec<Dump> = Dump::ALL
        .into_iter()
        .filter(|d| only.is_none_or(|p| p == d.protocol()))
        .collect();
    let forced = std::env::var_os("NPTOOLS_SOCKET_SOURCE").is_some_and(|v| v == "procfs");
    let answer = if forced {
        Err(None)
    } else {
        sockdiag::query(&dir.join("ns/net"), &dumps).map_err(Some)
    };
    let (mut table, failed, notice) = match answer {
        Ok((table, failed)) => {
            // A kernel without IPv6 refuses those dumps and has no
            // /proc/PID/net/tcp6 either: nothing is missing then.
            let missing: Vec<String> = failed
                .iter()
                .filter(|(d, _)| dir.join(d.proc_file()).exists())
                .map(|(d, e)| format!("{} ({e})", d.proc_file()))
                .collect();
            let notice = (!missing.is_empty()).then(|| {
                format!(
                    "sock_diag netlink could not list {}; those come from /proc/PID/ instead",
                    missing.join(", ")
                )
            });
            (table, failed.into_iter().map(|(d, _)| d).collect(), notice)
        }
        Err(None) => (SocketTable::new(TableSource::Procfs), dumps, None),
        Err(Some(e)) => (
            SocketTable::new(TableSource::Procfs),
            dumps,
            Some(format!(
                "sock_diag netlink is not available: {e}; socket details come from \
                 /proc/PID/net instead, without UNIX socket peers"
            )),
        ),
    };
    for d in failed {
        let Ok(text) = std::fs::read(dir.join(d.proc_file())) else {
            continue;
        };
        let entries = match d.protocol() {
            Protocol::Unix => procnet::parse_unix(&text),
            inet => procnet::parse_inet(&text, inet),
        };
        for e in entries {
            table.insert(e);
        }
    }
    (table, notice)
}

/// Fill in [`Descriptor::other_end`]: for pipes and FIFOs the descriptors
/// on the same inode opened the other way; for sockets the descriptors of
/// the peer socket (a UNIX peer inode, or the inet socket whose endpoints
/// are ours swapped).
fn link_other_ends(fds: &mut [Descriptor]) {
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
        assert_eq!(FileKind::from_mode(0o140777).s_if_name(), "S_IFSOCK");
        assert_eq!(FileKind::from_mode(0o600), FileKind::Anon);
        assert_eq!(FileKind::from_mode(0o600).s_if_name(), "S_IFANON");
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
