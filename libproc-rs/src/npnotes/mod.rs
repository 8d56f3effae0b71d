//! The notes an npgcore core carries under the owner name `NPTOOLS`: what
//! /proc knew of the process when it was dumped and an ELF core has no
//! place for. Encoding ([`encode_fd_table`] and friends) is used by
//! `crate::live::notes`, which reads /proc before the target is stopped;
//! decoding ([`Recorded`]) by [`crate::corefile`].
//!
//! # Format
//!
//! Each note is an ELF note (`namesz` 8, name `NPTOOLS\0`, `n_type` one of
//! the `NT_NPTOOLS_*` constants) whose descriptor is a 32-bit
//! little-endian version ([`VERSION`], 1), one record, and an end mark (a
//! field of tag 0 and length 0, last). A record is a
//! run of fields; a field is a 16-bit tag, a 32-bit length and that many
//! bytes, all little-endian; a field may hold a record. Numbers are
//! little-endian of their type's size (u64 8 bytes, i32/u32 4, u8 1);
//! strings are raw bytes, not NUL-terminated. A field may repeat (lists);
//! an optional field is left out when there is no value.
//!
//! A reader skips fields whose tags it does not know, so a writer may add
//! fields without a new version. A note with another version, a field
//! whose length runs past its record, a known field of the wrong size, a
//! required field missing, an enumeration value the reader does not know or
//! a missing end mark is not used, and the reader says so (a notice, once);
//! it never guesses.
//! `doc/npgcore-notes.md` ([`NOTES_DOC`]) lists every tag.

mod wire;

use std::ffi::OsString;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::openfiles::{
    Descriptor, EpollWatch, FdInfo, FdStat, FdTable, FileKind, InotifyWatch, Protocol, SocketEntry,
    TableSource, TimerFd, UnixName,
};
use crate::parse::smaps::MappingUsage;
use crate::parse::socket::Endpoint;
use wire::{Damage, Fields, Record, Writer, bytes_of, i32_of, packed, u8_of, u32_of, u64_of};

/// The owner name of the notes (`namesz` 8 with its NUL).
pub const OWNER: &[u8] = b"NPTOOLS";
/// The version every note starts with.
pub const VERSION: u32 = 1;

/// The descriptor table: what npfiles shows of a live process.
pub const NT_NPTOOLS_FDTABLE: u32 = 1;
/// Thread names: each thread's id and `comm`.
pub const NT_NPTOOLS_THREADS: u32 = 2;
/// Every resource limit of /proc/PID/limits, soft and hard.
pub const NT_NPTOOLS_LIMITS: u32 = 3;
/// The working directory and the root directory.
pub const NT_NPTOOLS_PATHS: u32 = 4;
/// Each mapping's /proc/PID/smaps figures.
pub const NT_NPTOOLS_SMAPS: u32 = 5;

/// The format, for npgcore's man page.
pub const NOTES_DOC: &str = include_str!("../../../doc/npgcore-notes.md");

/// A soft or hard limit of `unlimited` (RLIM_INFINITY).
pub const UNLIMITED: u64 = u64::MAX;

/// The short name of a note type, for messages and --json.
pub fn note_name(n_type: u32) -> &'static str {
    match n_type {
        NT_NPTOOLS_FDTABLE => "descriptors",
        NT_NPTOOLS_THREADS => "threads",
        NT_NPTOOLS_LIMITS => "limits",
        NT_NPTOOLS_PATHS => "paths",
        NT_NPTOOLS_SMAPS => "smaps",
        _ => "unknown",
    }
}

/// One line of /proc/PID/limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// `Max open files`, ...
    pub name: Vec<u8>,
    /// [`UNLIMITED`] for `unlimited`.
    pub soft: u64,
    pub hard: u64,
    /// `files`, `bytes`, ... (may be empty).
    pub units: Vec<u8>,
}

/// Each mapping's /proc/PID/smaps figures: every field counted in kB, by
/// name, in the order the kernel printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmapsTable {
    /// `Size`, `Rss`, `Pss`, `Shared_Clean`, ..., `Anonymous`, `Swap`,
    /// `Locked`, ...
    pub fields: Vec<String>,
    pub mappings: Vec<MappingFigures>,
}

/// One mapping's figures, in KiB, in [`SmapsTable::fields`] order (`None`
/// where the kernel printed no such field for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingFigures {
    pub start: u64,
    pub end: u64,
    pub kib: Vec<Option<u64>>,
}

impl SmapsTable {
    /// The figure `field` (`Rss`) of `m`.
    pub fn get(&self, m: &MappingFigures, field: &str) -> Option<u64> {
        let i = self.fields.iter().position(|f| f == field)?;
        m.kib.get(i).copied().flatten()
    }

    /// What npmap -x shows of `m`.
    pub fn usage(&self, m: &MappingFigures) -> MappingUsage {
        MappingUsage {
            rss_kib: self.get(m, "Rss").unwrap_or(0),
            anon_kib: self.get(m, "Anonymous").unwrap_or(0),
            locked_kib: self.get(m, "Locked").unwrap_or(0),
        }
    }

    /// Parse /proc/PID/smaps held in memory (see [`SmapsTable::line`]).
    pub fn parse(smaps: &[u8]) -> SmapsTable {
        let mut table = SmapsTable::default();
        for line in smaps.split(|&b| b == b'\n') {
            table.line(line);
        }
        table
    }

    /// Take one line of /proc/PID/smaps, without its newline: a mapping
    /// line starts a mapping, each `Name: N kB` line after it is one of
    /// its figures; other lines are skipped.
    pub fn line(&mut self, line: &[u8]) {
        let Some(&first) = line.first() else {
            return;
        };
        if !first.is_ascii_uppercase() {
            if let Some(m) = crate::parse::maps::parse_line(line) {
                self.mappings.push(MappingFigures {
                    start: m.start,
                    end: m.end,
                    kib: Vec::new(),
                });
            }
            return;
        }
        let Some(m) = self.mappings.last_mut() else {
            return;
        };
        let Some((name, value)) = std::str::from_utf8(line)
            .ok()
            .and_then(|t| t.split_once(':'))
        else {
            return;
        };
        let Some(n) = value
            .trim()
            .strip_suffix("kB")
            .and_then(|n| n.trim().parse::<u64>().ok())
        else {
            return;
        };
        let i = match self.fields.iter().position(|f| f == name) {
            Some(i) => i,
            None => {
                self.fields.push(name.to_owned());
                self.fields.len() - 1
            }
        };
        if m.kib.len() <= i {
            m.kib.resize(i + 1, None);
        }
        m.kib[i] = Some(n);
    }
}

/// Parse /proc/PID/limits: the columns are placed under the header's
/// `Soft Limit`, `Hard Limit` and `Units`.
pub fn parse_limits(text: &[u8]) -> Vec<Limit> {
    let mut lines = text.split(|&b| b == b'\n');
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let find = |word: &[u8]| header.windows(word.len()).position(|w| w == word);
    let (Some(soft_at), Some(hard_at), Some(units_at)) =
        (find(b"Soft Limit"), find(b"Hard Limit"), find(b"Units"))
    else {
        return Vec::new();
    };
    let value = |b: &[u8]| -> Option<u64> {
        let s = std::str::from_utf8(b).ok()?.trim();
        if s == "unlimited" {
            Some(UNLIMITED)
        } else {
            s.parse().ok()
        }
    };
    let trim = |b: &[u8]| b.trim_ascii().to_vec();
    lines
        .filter(|l| l.len() > hard_at)
        .filter_map(|l| {
            let units = l.get(units_at..).unwrap_or_default();
            Some(Limit {
                name: trim(&l[..soft_at]),
                soft: value(&l[soft_at..hard_at])?,
                hard: value(&l[hard_at..units_at.min(l.len())])?,
                units: trim(units),
            })
        })
        .collect()
}

/// The field that ends a note's record: a note cut short at a field
/// boundary is told from a shorter one.
const T_END: u16 = 0;

/// A note's descriptor: the version, the record, its end.
fn note(fill: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::default();
    w.buf.extend_from_slice(&VERSION.to_le_bytes());
    fill(&mut w);
    w.bytes(T_END, &[]);
    w.buf
}

/// A note's record, without its end field, which must be there, empty,
/// and last.
fn body_of(record: &[u8]) -> Result<&[u8], Damage> {
    let mut at = 0;
    for field in Fields::new(record, "the note") {
        let (tag, v) = field?;
        at += 6 + v.len();
        if tag == T_END {
            if !v.is_empty() || at != record.len() {
                return Err("its end mark is not at its end".into());
            }
            return Ok(&record[..at - 6]);
        }
    }
    Err("it is cut short (no end mark)".into())
}

// Tags of the descriptor table (see doc/npgcore-notes.md).
const T_RLIMIT: u16 = 1;
const T_SOCKET_SOURCE: u16 = 2;
const T_FD: u16 = 3;

const D_FD: u16 = 1;
const D_LINK: u16 = 2;
const D_STAT: u16 = 3;
const D_KIND: u16 = 4;
const D_KIND_BITS: u16 = 5;
const D_INFO: u16 = 6;
const D_SOCKET: u16 = 7;
const D_OTHER_END: u16 = 8;

const S_MODE: u16 = 1;
const S_DEV: u16 = 2;
const S_INO: u16 = 3;
const S_UID: u16 = 4;
const S_GID: u16 = 5;
const S_SIZE: u16 = 6;
const S_RDEV: u16 = 7;
const S_NLINK: u16 = 8;

const I_POS: u16 = 1;
const I_FLAGS: u16 = 2;
const I_EVENTFD: u16 = 3;
const I_EPOLL: u16 = 4;
const I_TIMERFD: u16 = 5;
const I_SIGMASK: u16 = 6;
const I_INOTIFY: u16 = 7;
const I_PIDFD: u16 = 8;

const K_INODE: u16 = 1;
const K_PROTOCOL: u16 = 2;
const K_TYPE: u16 = 3;
const K_STATE: u16 = 4;
const K_LOCAL: u16 = 5;
const K_PEER: u16 = 6;
const K_UNIX_PEER: u16 = 7;

const E_INET4: u16 = 1;
const E_INET6: u16 = 2;
const E_UNNAMED: u16 = 3;
const E_PATH: u16 = 4;
const E_ABSTRACT: u16 = 5;

fn kind_code(k: FileKind) -> (u32, Option<u32>) {
    match k {
        FileKind::Regular => (1, None),
        FileKind::Directory => (2, None),
        FileKind::CharDevice => (3, None),
        FileKind::BlockDevice => (4, None),
        FileKind::Fifo => (5, None),
        FileKind::Socket => (6, None),
        FileKind::Symlink => (7, None),
        FileKind::Anon => (8, None),
        FileKind::Other(bits) => (9, Some(bits)),
    }
}

fn kind_of(code: u32, bits: Option<u32>) -> Result<FileKind, Damage> {
    Ok(match code {
        1 => FileKind::Regular,
        2 => FileKind::Directory,
        3 => FileKind::CharDevice,
        4 => FileKind::BlockDevice,
        5 => FileKind::Fifo,
        6 => FileKind::Socket,
        7 => FileKind::Symlink,
        8 => FileKind::Anon,
        9 => FileKind::Other(bits.ok_or("an unknown file type without its type bits")?),
        other => return Err(format!("unknown file kind {other}")),
    })
}

fn dev_bytes((major, minor): (u32, u32)) -> [u8; 8] {
    let mut b = [0; 8];
    b[..4].copy_from_slice(&major.to_le_bytes());
    b[4..].copy_from_slice(&minor.to_le_bytes());
    b
}

fn dev_of(v: &[u8], what: &str) -> Result<(u32, u32), Damage> {
    let n = u64_of(v, what)?;
    Ok((n as u32, (n >> 32) as u32))
}

fn write_endpoint(w: &mut Writer, e: &Endpoint) {
    match e {
        Endpoint::Inet(SocketAddr::V4(a)) => {
            let mut b = a.ip().octets().to_vec();
            b.extend_from_slice(&a.port().to_le_bytes());
            w.bytes(E_INET4, &b);
        }
        Endpoint::Inet(SocketAddr::V6(a)) => {
            let mut b = a.ip().octets().to_vec();
            b.extend_from_slice(&a.port().to_le_bytes());
            b.extend_from_slice(&a.flowinfo().to_le_bytes());
            b.extend_from_slice(&a.scope_id().to_le_bytes());
            w.bytes(E_INET6, &b);
        }
        Endpoint::Unix(UnixName::Unnamed) => w.bytes(E_UNNAMED, &[]),
        Endpoint::Unix(UnixName::Path(p)) => w.bytes(E_PATH, p),
        Endpoint::Unix(UnixName::Abstract(a)) => w.bytes(E_ABSTRACT, a),
    }
}

fn read_endpoint(v: &[u8]) -> Result<Endpoint, Damage> {
    let mut found = None;
    for field in Fields::new(v, "a socket endpoint") {
        let (tag, v) = field?;
        let e = match tag {
            E_INET4 => {
                let b: [u8; 6] = v
                    .try_into()
                    .map_err(|_| format!("an IPv4 endpoint is {} bytes, 6 expected", v.len()))?;
                let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                Endpoint::Inet(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_le_bytes([b[4], b[5]]),
                )))
            }
            E_INET6 => {
                let b: [u8; 26] = v
                    .try_into()
                    .map_err(|_| format!("an IPv6 endpoint is {} bytes, 26 expected", v.len()))?;
                let ip: [u8; 16] = b[..16].try_into().unwrap_or_default();
                let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                Endpoint::Inet(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    u16::from_le_bytes([b[16], b[17]]),
                    word(18),
                    word(22),
                )))
            }
            E_UNNAMED => Endpoint::Unix(UnixName::Unnamed),
            E_PATH => Endpoint::Unix(UnixName::Path(v.to_vec())),
            E_ABSTRACT => Endpoint::Unix(UnixName::Abstract(v.to_vec())),
            _ => continue,
        };
        if found.replace(e).is_some() {
            return Err("a socket endpoint with two addresses".into());
        }
    }
    found.ok_or_else(|| "a socket endpoint without its address".into())
}

fn write_stat(w: &mut Writer, s: &FdStat) {
    w.u32(S_MODE, s.mode);
    w.bytes(S_DEV, &dev_bytes(s.dev));
    w.u64(S_INO, s.ino);
    w.u32(S_UID, s.uid);
    w.u32(S_GID, s.gid);
    w.u64(S_SIZE, s.size);
    w.bytes(S_RDEV, &dev_bytes(s.rdev));
    w.u64(S_NLINK, s.nlink);
}

fn read_stat(v: &[u8]) -> Result<FdStat, Damage> {
    let r = Record::parse(v, "a descriptor's stat")?;
    Ok(FdStat {
        mode: r.req(S_MODE, "mode", u32_of)?,
        dev: r.req(S_DEV, "dev", dev_of)?,
        ino: r.req(S_INO, "ino", u64_of)?,
        uid: r.req(S_UID, "uid", u32_of)?,
        gid: r.req(S_GID, "gid", u32_of)?,
        size: r.req(S_SIZE, "size", u64_of)?,
        rdev: r.req(S_RDEV, "rdev", dev_of)?,
        nlink: r.req(S_NLINK, "nlink", u64_of)?,
    })
}

fn write_info(w: &mut Writer, i: &FdInfo) {
    w.opt_u64(I_POS, i.pos);
    if let Some(f) = i.flags {
        w.u32(I_FLAGS, f);
    }
    w.opt_u64(I_EVENTFD, i.eventfd_count);
    for e in &i.epoll {
        let mut b = e.fd.to_le_bytes().to_vec();
        b.extend_from_slice(&e.events.to_le_bytes());
        b.extend_from_slice(&e.ino.to_le_bytes());
        w.bytes(I_EPOLL, &b);
    }
    if let Some(t) = &i.timerfd {
        let mut b = t.clockid.to_le_bytes().to_vec();
        b.extend_from_slice(&t.ticks.to_le_bytes());
        b.extend_from_slice(&t.settime_flags.to_le_bytes());
        for n in [t.value.0, t.value.1, t.interval.0, t.interval.1] {
            b.extend_from_slice(&n.to_le_bytes());
        }
        w.bytes(I_TIMERFD, &b);
    }
    w.opt_u64(I_SIGMASK, i.sigmask);
    for n in &i.inotify {
        let mut b = n.wd.to_le_bytes().to_vec();
        b.extend_from_slice(&n.ino.to_le_bytes());
        b.extend_from_slice(&dev_bytes(n.dev));
        b.extend_from_slice(&n.mask.to_le_bytes());
        w.bytes(I_INOTIFY, &b);
    }
    if let Some(p) = i.pidfd_pid {
        w.i32(I_PIDFD, p);
    }
}

/// Little-endian reads at fixed places of a value already checked for
/// size.
struct At<'a>(&'a [u8]);

impl At<'_> {
    fn u32(&self, i: usize) -> u32 {
        u32::from_le_bytes(self.0[i..i + 4].try_into().unwrap_or_default())
    }
    fn u64(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.0[i..i + 8].try_into().unwrap_or_default())
    }
}

fn sized<'a>(v: &'a [u8], n: usize, what: &str) -> Result<At<'a>, Damage> {
    if v.len() == n {
        Ok(At(v))
    } else {
        Err(format!("{what} is {} bytes, {n} expected", v.len()))
    }
}

fn read_info(v: &[u8]) -> Result<FdInfo, Damage> {
    let r = Record::parse(v, "a descriptor's fdinfo")?;
    let epoll = |v: &[u8], what: &str| -> Result<EpollWatch, Damage> {
        let a = sized(v, 16, what)?;
        Ok(EpollWatch {
            fd: a.u32(0) as i32,
            events: a.u32(4),
            ino: a.u64(8),
        })
    };
    let timerfd = |v: &[u8], what: &str| -> Result<TimerFd, Damage> {
        let a = sized(v, 48, what)?;
        Ok(TimerFd {
            clockid: a.u32(0) as i32,
            ticks: a.u64(4),
            settime_flags: a.u32(12),
            value: (a.u64(16), a.u64(24)),
            interval: (a.u64(32), a.u64(40)),
        })
    };
    let inotify = |v: &[u8], what: &str| -> Result<InotifyWatch, Damage> {
        let a = sized(v, 24, what)?;
        Ok(InotifyWatch {
            wd: a.u32(0) as i32,
            ino: a.u64(4),
            dev: (a.u32(12), a.u32(16)),
            mask: a.u32(20),
        })
    };
    Ok(FdInfo {
        pos: r.opt(I_POS, "pos", u64_of)?,
        flags: r.opt(I_FLAGS, "flags", u32_of)?,
        eventfd_count: r.opt(I_EVENTFD, "eventfd count", u64_of)?,
        epoll: r
            .all(I_EPOLL)
            .map(|v| epoll(v, "an epoll watch"))
            .collect::<Result<_, _>>()?,
        timerfd: r.opt(I_TIMERFD, "a timerfd", timerfd)?,
        sigmask: r.opt(I_SIGMASK, "sigmask", u64_of)?,
        inotify: r
            .all(I_INOTIFY)
            .map(|v| inotify(v, "an inotify watch"))
            .collect::<Result<_, _>>()?,
        pidfd_pid: r.opt(I_PIDFD, "pidfd pid", i32_of)?,
    })
}

fn write_socket(w: &mut Writer, s: &SocketEntry) {
    w.u64(K_INODE, s.inode);
    w.u8(
        K_PROTOCOL,
        match s.protocol {
            Protocol::Tcp => 1,
            Protocol::Udp => 2,
            Protocol::Unix => 3,
        },
    );
    w.u8(K_TYPE, s.sock_type);
    w.u8(K_STATE, s.state);
    w.record(K_LOCAL, |r| write_endpoint(r, &s.local));
    if let Some(p) = &s.peer {
        w.record(K_PEER, |r| write_endpoint(r, p));
    }
    w.opt_u64(K_UNIX_PEER, s.unix_peer);
}

fn read_socket(v: &[u8]) -> Result<SocketEntry, Damage> {
    let r = Record::parse(v, "a socket")?;
    let protocol = |v: &[u8], what: &str| match u8_of(v, what)? {
        1 => Ok(Protocol::Tcp),
        2 => Ok(Protocol::Udp),
        3 => Ok(Protocol::Unix),
        other => Err(format!("unknown socket protocol {other}")),
    };
    let endpoint = |v: &[u8], _: &str| read_endpoint(v);
    Ok(SocketEntry {
        inode: r.req(K_INODE, "inode", u64_of)?,
        protocol: r.req(K_PROTOCOL, "protocol", protocol)?,
        sock_type: r.req(K_TYPE, "type", u8_of)?,
        state: r.req(K_STATE, "state", u8_of)?,
        local: r.req(K_LOCAL, "local endpoint", endpoint)?,
        peer: r.opt(K_PEER, "peer", endpoint)?,
        unix_peer: r.opt(K_UNIX_PEER, "unix peer", u64_of)?,
    })
}

fn write_descriptor(w: &mut Writer, d: &Descriptor) {
    w.i32(D_FD, d.fd);
    w.bytes(D_LINK, d.link.as_bytes());
    if let Some(s) = &d.stat {
        w.record(D_STAT, |r| write_stat(r, s));
    }
    let (code, bits) = kind_code(d.kind);
    w.u32(D_KIND, code);
    if let Some(b) = bits {
        w.u32(D_KIND_BITS, b);
    }
    if let Some(i) = &d.info {
        w.record(D_INFO, |r| write_info(r, i));
    }
    if let Some(s) = &d.socket {
        w.record(D_SOCKET, |r| write_socket(r, s));
    }
    let ends: Vec<u8> = d.other_end.iter().flat_map(|f| f.to_le_bytes()).collect();
    w.bytes(D_OTHER_END, &ends);
}

fn read_descriptor(v: &[u8]) -> Result<Descriptor, Damage> {
    let r = Record::parse(v, "a descriptor")?;
    let ends = |v: &[u8], what: &str| -> Result<Vec<i32>, Damage> {
        Ok(packed::<4>(v, what)?
            .into_iter()
            .map(i32::from_le_bytes)
            .collect())
    };
    Ok(Descriptor {
        fd: r.req(D_FD, "fd", i32_of)?,
        link: r.req(D_LINK, "link", os_of)?,
        stat: r.opt(D_STAT, "stat", |v, _| read_stat(v))?,
        kind: kind_of(
            r.req(D_KIND, "kind", u32_of)?,
            r.opt(D_KIND_BITS, "type bits", u32_of)?,
        )?,
        info: r.opt(D_INFO, "fdinfo", |v, _| read_info(v))?,
        socket: r.opt(D_SOCKET, "socket", |v, _| read_socket(v))?,
        other_end: r.opt(D_OTHER_END, "other end", ends)?.unwrap_or_default(),
    })
}

fn os_of(v: &[u8], _: &str) -> Result<OsString, Damage> {
    Ok(OsString::from_vec(v.to_vec()))
}

/// The descriptor of an `NT_NPTOOLS_FDTABLE` note.
pub fn encode_fd_table(t: &FdTable) -> Vec<u8> {
    note(|w| {
        w.opt_u64(T_RLIMIT, t.rlimit);
        if let Some(s) = t.socket_source {
            w.u8(
                T_SOCKET_SOURCE,
                match s {
                    TableSource::Netlink => 1,
                    TableSource::Procfs => 2,
                },
            );
        }
        for d in &t.fds {
            w.record(T_FD, |r| write_descriptor(r, d));
        }
    })
}

fn decode_fd_table(body: &[u8]) -> Result<FdTable, Damage> {
    let r = Record::parse(body, "the descriptor table")?;
    let source = |v: &[u8], what: &str| match u8_of(v, what)? {
        1 => Ok(TableSource::Netlink),
        2 => Ok(TableSource::Procfs),
        other => Err(format!("unknown socket source {other}")),
    };
    Ok(FdTable {
        rlimit: r.opt(T_RLIMIT, "rlimit", u64_of)?,
        fds: r.all(T_FD).map(read_descriptor).collect::<Result<_, _>>()?,
        socket_source: r.opt(T_SOCKET_SOURCE, "socket source", source)?,
    })
}

const TH_THREAD: u16 = 1;
const TH_TID: u16 = 1;
const TH_NAME: u16 = 2;

/// The descriptor of an `NT_NPTOOLS_THREADS` note: (tid, comm) pairs.
pub fn encode_threads(threads: &[(i32, OsString)]) -> Vec<u8> {
    note(|w| {
        for (tid, name) in threads {
            w.record(TH_THREAD, |r| {
                r.i32(TH_TID, *tid);
                r.bytes(TH_NAME, name.as_bytes());
            });
        }
    })
}

fn decode_threads(body: &[u8]) -> Result<Vec<(i32, OsString)>, Damage> {
    let thread = |v: &[u8]| -> Result<(i32, OsString), Damage> {
        let r = Record::parse(v, "a thread")?;
        Ok((
            r.req(TH_TID, "tid", i32_of)?,
            r.req(TH_NAME, "name", os_of)?,
        ))
    };
    Record::parse(body, "the thread names")?
        .all(TH_THREAD)
        .map(thread)
        .collect()
}

const L_LIMIT: u16 = 1;
const L_NAME: u16 = 1;
const L_SOFT: u16 = 2;
const L_HARD: u16 = 3;
const L_UNITS: u16 = 4;

/// The descriptor of an `NT_NPTOOLS_LIMITS` note.
pub fn encode_limits(limits: &[Limit]) -> Vec<u8> {
    note(|w| {
        for l in limits {
            w.record(L_LIMIT, |r| {
                r.bytes(L_NAME, &l.name);
                r.u64(L_SOFT, l.soft);
                r.u64(L_HARD, l.hard);
                r.bytes(L_UNITS, &l.units);
            });
        }
    })
}

fn decode_limits(body: &[u8]) -> Result<Vec<Limit>, Damage> {
    let limit = |v: &[u8]| -> Result<Limit, Damage> {
        let r = Record::parse(v, "a limit")?;
        Ok(Limit {
            name: r.req(L_NAME, "name", bytes_of)?,
            soft: r.req(L_SOFT, "soft value", u64_of)?,
            hard: r.req(L_HARD, "hard value", u64_of)?,
            units: r.opt(L_UNITS, "units", bytes_of)?.unwrap_or_default(),
        })
    };
    Record::parse(body, "the limits")?
        .all(L_LIMIT)
        .map(limit)
        .collect()
}

const P_CWD: u16 = 1;
const P_ROOT: u16 = 2;

/// The working and root directories, as /proc/PID/cwd and /proc/PID/root
/// read (`None` where they could not be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    pub cwd: Option<OsString>,
    pub root: Option<OsString>,
}

/// The descriptor of an `NT_NPTOOLS_PATHS` note.
pub fn encode_paths(p: &Paths) -> Vec<u8> {
    note(|w| {
        if let Some(c) = &p.cwd {
            w.bytes(P_CWD, c.as_bytes());
        }
        if let Some(r) = &p.root {
            w.bytes(P_ROOT, r.as_bytes());
        }
    })
}

fn decode_paths(body: &[u8]) -> Result<Paths, Damage> {
    let r = Record::parse(body, "the paths")?;
    Ok(Paths {
        cwd: r.opt(P_CWD, "cwd", os_of)?,
        root: r.opt(P_ROOT, "root", os_of)?,
    })
}

const M_FIELD: u16 = 1;
const M_MAPPING: u16 = 2;
const M_START: u16 = 1;
const M_END: u16 = 2;
const M_KIB: u16 = 3;
/// A figure the kernel did not print for a mapping.
const ABSENT: u64 = u64::MAX;

/// The descriptor of an `NT_NPTOOLS_SMAPS` note.
pub fn encode_smaps(t: &SmapsTable) -> Vec<u8> {
    note(|w| {
        for f in &t.fields {
            w.bytes(M_FIELD, f.as_bytes());
        }
        for m in &t.mappings {
            w.record(M_MAPPING, |r| {
                r.u64(M_START, m.start);
                r.u64(M_END, m.end);
                let kib: Vec<u8> = m
                    .kib
                    .iter()
                    .flat_map(|k| k.unwrap_or(ABSENT).to_le_bytes())
                    .collect();
                r.bytes(M_KIB, &kib);
            });
        }
    })
}

fn decode_smaps(body: &[u8]) -> Result<SmapsTable, Damage> {
    let r = Record::parse(body, "the smaps figures")?;
    let figures = |v: &[u8], what: &str| -> Result<Vec<Option<u64>>, Damage> {
        Ok(packed::<8>(v, what)?
            .into_iter()
            .map(|b| Some(u64::from_le_bytes(b)).filter(|&n| n != ABSENT))
            .collect())
    };
    let mapping = |v: &[u8]| -> Result<MappingFigures, Damage> {
        let m = Record::parse(v, "a mapping's figures")?;
        Ok(MappingFigures {
            start: m.req(M_START, "start", u64_of)?,
            end: m.req(M_END, "end", u64_of)?,
            kib: m.opt(M_KIB, "figures", figures)?.unwrap_or_default(),
        })
    };
    let mut t = SmapsTable {
        fields: r
            .all(M_FIELD)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect(),
        mappings: r.all(M_MAPPING).map(mapping).collect::<Result<_, _>>()?,
    };
    if let Some(m) = t.mappings.iter().find(|m| m.kib.len() > t.fields.len()) {
        return Err(format!(
            "the mapping at {:#x} has {} figures for {} field names",
            m.start,
            m.kib.len(),
            t.fields.len()
        ));
    }
    t.mappings.sort_by_key(|m| m.start);
    Ok(t)
}

/// What the NPTOOLS notes of a core say, decoded; each note that could
/// not be used is left out and said in [`Recorded::notices`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub fd_table: Option<FdTable>,
    pub threads: Option<Vec<(i32, OsString)>>,
    pub limits: Option<Vec<Limit>>,
    pub paths: Option<Paths>,
    pub smaps: Option<SmapsTable>,
    /// The types of the notes that were there but could not be used.
    pub unusable: Vec<u32>,
    /// Why, one line each.
    pub notices: Vec<String>,
}

impl Recorded {
    /// Take one `NPTOOLS` note. A second note of a type already taken
    /// replaces nothing: it is damage.
    pub fn take(&mut self, n_type: u32, desc: &[u8]) {
        if let Err(why) = self.try_take(n_type, desc) {
            self.unusable.push(n_type);
            self.notices.push(format!(
                "the core's NPTOOLS {} note (type {n_type}) is not used: {why}",
                note_name(n_type)
            ));
        }
    }

    fn try_take(&mut self, n_type: u32, desc: &[u8]) -> Result<(), Damage> {
        let Some((version, body)) = desc.split_first_chunk::<4>() else {
            return Err(format!("{} bytes, too short for its version", desc.len()));
        };
        let version = u32::from_le_bytes(*version);
        if n_type == 0 || n_type > NT_NPTOOLS_SMAPS {
            return Err("a type this version of nptools does not know".into());
        }
        if version != VERSION {
            return Err(format!(
                "version {version}, and this version of nptools reads version {VERSION}"
            ));
        }
        // The first note of a type is kept; a second one is not used.
        fn once<T>(slot: &mut Option<T>, v: T) -> Result<(), Damage> {
            if slot.is_some() {
                return Err("the core has two of them".into());
            }
            *slot = Some(v);
            Ok(())
        }
        let body = body_of(body)?;
        match n_type {
            NT_NPTOOLS_FDTABLE => once(&mut self.fd_table, decode_fd_table(body)?),
            NT_NPTOOLS_THREADS => once(&mut self.threads, decode_threads(body)?),
            NT_NPTOOLS_LIMITS => once(&mut self.limits, decode_limits(body)?),
            NT_NPTOOLS_PATHS => once(&mut self.paths, decode_paths(body)?),
            _ => once(&mut self.smaps, decode_smaps(body)?),
        }
    }

    /// The names of the notes read, for --json (`descriptors`, `threads`,
    /// ...).
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut add = |present: bool, t: u32| {
            if present {
                v.push(note_name(t));
            }
        };
        add(self.fd_table.is_some(), NT_NPTOOLS_FDTABLE);
        add(self.threads.is_some(), NT_NPTOOLS_THREADS);
        add(self.limits.is_some(), NT_NPTOOLS_LIMITS);
        add(self.paths.is_some(), NT_NPTOOLS_PATHS);
        add(self.smaps.is_some(), NT_NPTOOLS_SMAPS);
        v
    }
}

#[cfg(test)]
mod tests;
