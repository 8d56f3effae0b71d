//! The descriptor table of a live process, read from /proc/PID/fd and
//! /proc/PID/fdinfo, with sockets from sock_diag netlink in the process's
//! network namespace (or /proc/PID/net where netlink is not available).
//! Nothing here stops or touches the target.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use super::sockdiag::{self, Dump};
use crate::diag::Sink;
use crate::openfiles::{
    Descriptor, FdStat, FdTable, FileKind, Options, Protocol, SocketTable, TableSource,
    attach_sockets, kind_from_link, link_other_ends,
};
use crate::parse::{fdinfo, procnet};

/// Describe the descriptors of a live process whose /proc directory is
/// `dir`; `limits` is the text of /proc/PID/limits. Descriptors closed
/// meanwhile are left out. Fails only when /proc/PID/fd cannot be listed.
///
/// On a busy server this is thousands of descriptors, each a readlink, a
/// stat and an fdinfo read: they are made relative to open directory
/// descriptors (no path walk through /proc each time) and shared among a
/// few threads, while another thread asks the kernel for the socket table.
pub fn describe_live(
    dir: &Path,
    limits: &[u8],
    options: Options,
    sink: &mut dyn Sink,
) -> io::Result<FdTable> {
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
    let query = move || socket_table(dir, options);
    let (fds, sockets) = describe_all(&dirs, &numbers, options.sockets.then_some(query));
    let mut table = FdTable {
        rlimit: fdinfo::parse_nofile_limit(limits),
        fds,
        socket_source: None,
    };
    if let Some((sockets, notice)) = sockets
        && table.fds.iter().any(|d| d.kind == FileKind::Socket)
    {
        if let Some(notice) = notice {
            sink.warn(notice);
        }
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

/// Describe the descriptors `numbers`, shared among a few threads when
/// there are many, while one more thread runs `sockets` (the query of the
/// socket table) if asked. Where no thread can be had, the work is done
/// here.
fn describe_all<S: Send>(
    dirs: &ProcFdDirs,
    numbers: &[i32],
    sockets: Option<impl Fn() -> S + Send + Copy>,
) -> (Vec<Descriptor>, Option<S>) {
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
    std::thread::scope(|scope| {
        // Whether there are sockets at all is known only once links are
        // read; asking the kernel costs little next to that, so ask at once.
        let query = sockets.map(|q| (q, std::thread::Builder::new().spawn_scoped(scope, q).ok()));
        let mut parts = numbers.chunks(chunk);
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|part| {
                let handle =
                    std::thread::Builder::new().spawn_scoped(scope, move || describe(part));
                (part, handle.ok())
            })
            .collect();
        let mut fds = describe(first);
        for (part, handle) in others {
            fds.extend(match handle.map(|h| h.join()) {
                Some(Ok(described)) => described,
                _ => describe(part),
            });
        }
        let table = query.map(|(q, handle)| match handle.map(|h| h.join()) {
            Some(Ok(table)) => table,
            _ => q(),
        });
        (fds, table)
    })
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

/// The socket table of the target's network namespace: netlink first,
/// /proc/PID/net when netlink fails (or when `options` asks for it).
fn socket_table(dir: &Path, options: Options) -> (SocketTable, Option<String>) {
    let only = options.only_protocol;
    let dumps: Vec<Dump> = Dump::ALL
        .into_iter()
        .filter(|d| only.is_none_or(|p| p == d.protocol()))
        .collect();
    let answer = if options.procfs_sockets {
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
