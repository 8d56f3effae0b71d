//! npfiles: the open files of a process, after illumos pfiles(1), with
//! socket endpoints. Flags and rendering only; the data comes from
//! libproc-rs (`openfiles`).

mod libuv;
mod text;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, ValueEnum};
use libproc_rs::ProcessTarget;
use libproc_rs::libuv::LibuvView;
use libproc_rs::openfiles::{
    Descriptor, Endpoint, FdTable, FileKind, Options, Protocol, SocketEntry, TableSource,
};
use libproc_rs::parse::fdinfo::{clock_name, open_flag_names, signal_name, signals_in_mask};
use libproc_rs::parse::socket::sock_type_name;
use nptools_cli::json::json_bytes;
use nptools_cli::report::{self, StreamedArray};
use nptools_cli::{self as cli, CommonArgs, ReportError};
use serde_json::{Map, Value, json};

/// The kinds of descriptor `--type` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FdType {
    /// Regular files.
    File,
    /// Directories.
    Dir,
    /// Character devices.
    Chr,
    /// Block devices.
    Blk,
    /// Pipes and FIFOs.
    Fifo,
    /// Sockets of every kind.
    Sock,
    /// TCP sockets (IPv4 and IPv6).
    Tcp,
    /// UDP sockets (IPv4 and IPv6).
    Udp,
    /// UNIX domain sockets.
    Unix,
    /// Anonymous inodes: eventfd, epoll, timerfd, signalfd, inotify, pidfd...
    Anon,
}

impl FdType {
    fn name(self) -> &'static str {
        match self {
            FdType::File => "file",
            FdType::Dir => "dir",
            FdType::Chr => "chr",
            FdType::Blk => "blk",
            FdType::Fifo => "fifo",
            FdType::Sock => "sock",
            FdType::Tcp => "tcp",
            FdType::Udp => "udp",
            FdType::Unix => "unix",
            FdType::Anon => "anon",
        }
    }
}

/// Print the open files of processes.
#[derive(Debug, Parser)]
#[command(
    name = "npfiles",
    version,
    about = "Print the open files of processes, with socket endpoints",
    long_about = "Print every open file descriptor of each process, as illumos pfiles does: \
the file's type, mode, device, inode, owner and size; the open flags; and what the descriptor \
is: a file's path and offset, a socket's type, local and peer address and state, the fd of this \
process that holds a pipe's other end, an eventfd's count, the fds an epoll instance watches, \
a timerfd's timer, a signalfd's signals, inotify watches.\n\n\
Socket details come from the kernel's sock_diag netlink interface, asked inside the process's \
network namespace (so a process in a container shows its own addresses); where netlink is not \
available they come from /proc/PID/net, with a warning. Nothing stops the process.\n\n\
With --type, only descriptors of that type are printed, one line each and no header, so \
`npfiles --type sock PID | wc -l` counts socket descriptors exactly.\n\n\
Of a node process, each descriptor libuv holds has a `libuv:` line: the handle's type, what libuv \
knows of its state (listening, active, closing, ref) and its loop (main or a worker's), so a \
descriptor node does not know about stands out.\n\n\
A Linux core file records no descriptor table: of a node core, npfiles lists the descriptors \
node's libuv held (read from its loops in the core's memory), in the same line shapes, and says \
so on stderr and in --json; of another core it prints its header, says so and exits 1. A core \
written by npgcore carries the descriptor table as it was when it was dumped (its NPTOOLS \
notes), and npfiles prints the report it printed live then, libuv's lines included. \
Paths and UNIX socket names are escaped (\\xNN, \\\\) unless --raw is given.",
    after_help = "Exit status: 0 when every operand was reported, 1 when any failed, 2 on usage errors."
)]
pub struct Args {
    /// Print only the first line of each descriptor (type, mode, device,
    /// inode, owner, size).
    #[arg(short = 'n')]
    pub names_only: bool,

    /// Print only descriptors of this type, one line each, without a header
    /// (with --json: only these in `fds`).
    #[arg(long = "type", value_name = "TYPE", value_enum)]
    pub fd_type: Option<FdType>,

    /// Take socket details from /proc/PID/net without asking sock_diag
    /// netlink, as when netlink is not available (no UNIX peers then).
    #[arg(long)]
    pub sockets_from_procfs: bool,

    /// Do not read node's libuv handles: no `libuv:` lines (and no
    /// `libuv` in --json); a core of node then lists nothing.
    #[arg(long)]
    pub no_libuv: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The clap definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

impl Args {
    /// What the report needs found out beyond `stat`.
    fn options(&self) -> Options {
        Options {
            procfs_sockets: self.sockets_from_procfs,
            ..self.fd_options()
        }
    }

    fn fd_options(&self) -> Options {
        match self.fd_type {
            _ if self.common.json => Options::full(),
            Some(t) => Options {
                fdinfo: matches!(t, FdType::Fifo | FdType::Anon),
                sockets: matches!(t, FdType::Sock | FdType::Tcp | FdType::Udp | FdType::Unix),
                only_protocol: match t {
                    FdType::Tcp => Some(Protocol::Tcp),
                    FdType::Udp => Some(Protocol::Udp),
                    FdType::Unix => Some(Protocol::Unix),
                    _ => None,
                },
                procfs_sockets: false,
            },
            None if self.names_only => Options::default(),
            None => Options::full(),
        }
    }
}

/// Run npfiles with the process's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let options = args.common.run_options(args.fd_type.is_none());
    cli::run(
        "npfiles",
        &args.common.operands,
        options,
        |target, _operand, out, diag| {
            let table = match target.open_files(args.options(), diag) {
                Err(libproc_rs::Error::NoDescriptorTable) if !args.no_libuv => {
                    return libuv::write_core_report(
                        target,
                        args.fd_type,
                        args.common.json,
                        args.common.raw,
                        out,
                        diag,
                    );
                }
                table => table?,
            };
            // libuv's view is only added where it is printed.
            let uv = match args.fd_type {
                _ if args.no_libuv => None,
                None if !args.names_only => libuv::view_beside_table(target, diag),
                _ if args.common.json => libuv::view_beside_table(target, diag),
                _ => None,
            };
            if args.common.json {
                write_json(target, &table, uv.as_ref(), args.fd_type, out)
            } else if let Some(t) = args.fd_type {
                write_typed(&table, t, args.common.raw, out)
            } else {
                write_report(&table, uv.as_ref(), args.names_only, args.common.raw, out)
            }
        },
    )
}

fn text(out: &mut dyn Write, bytes: &[u8], raw: bool) -> std::io::Result<()> {
    out.write_all(&report::text_bytes(bytes, raw))
}

fn fd_list(fds: &[i32]) -> String {
    fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// The pfiles report.
fn write_report(
    table: &FdTable,
    uv: Option<&LibuvView>,
    names_only: bool,
    raw: bool,
    out: &mut dyn Write,
) -> Result<(), ReportError> {
    match table.rlimit {
        Some(n) => writeln!(out, "  Current rlimit: {n} file descriptors")?,
        None => writeln!(out, "  Current rlimit: unlimited file descriptors")?,
    }
    let by_fd = uv.map(LibuvView::by_fd).unwrap_or_default();
    for d in &table.fds {
        write_fd_line(d, out)?;
        if names_only {
            continue;
        }
        if let Some(flags) = d.info.as_ref().and_then(|i| i.flags) {
            writeln!(out, "      {}", open_flag_names(flags).join("|"))?;
        }
        write_detail(d, raw, out)?;
        if let Some(holders) = by_fd.get(&d.fd) {
            libuv::write_lines(holders, raw, out)?;
        }
    }
    Ok(())
}

/// `%4d: S_IFxxx mode:0%o dev:M,m ino:N uid:U gid:G size:N` (rdev for
/// devices).
fn write_fd_line(d: &Descriptor, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(s) = d.stat else {
        return writeln!(out, "{:4}: {} (cannot stat)", d.fd, text::s_if_name(d.kind));
    };
    write!(
        out,
        "{:4}: {} mode:0{:o} dev:{},{} ino:{} uid:{} gid:{} ",
        d.fd,
        text::s_if_name(d.kind),
        s.mode & 0o7777,
        s.dev.0,
        s.dev.1,
        s.ino,
        s.uid,
        s.gid
    )?;
    match d.kind {
        FileKind::CharDevice | FileKind::BlockDevice => {
            writeln!(out, "rdev:{},{}", s.rdev.0, s.rdev.1)
        }
        _ => writeln!(out, "size:{}", s.size),
    }
}

fn other_end_text(d: &Descriptor) -> String {
    match d.other_end.as_slice() {
        [] => "other end: not open in this process".to_owned(),
        fds => format!("other end: fd {}", fd_list(fds)),
    }
}

/// The lines after the flags: path and offset, socket, pipe, anon inode.
fn write_detail(d: &Descriptor, raw: bool, out: &mut dyn Write) -> Result<(), ReportError> {
    if d.kind == FileKind::Socket {
        return Ok(write_socket(d, raw, out)?);
    }
    out.write_all(b"      ")?;
    text(out, d.link.as_encoded_bytes(), raw)?;
    writeln!(out)?;
    match d.kind {
        FileKind::Fifo => {
            if d.info.is_some() {
                writeln!(out, "      {}", other_end_text(d))?;
            }
        }
        FileKind::Anon => {
            for line in anon_lines(d) {
                writeln!(out, "      {line}")?;
            }
        }
        _ => {
            if let Some(pos) = d.info.as_ref().and_then(|i| i.pos) {
                writeln!(out, "      offset:{pos}")?;
            }
        }
    }
    Ok(())
}

fn write_socket(d: &Descriptor, raw: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(s) = &d.socket else {
        out.write_all(b"        ")?;
        text(out, d.link.as_encoded_bytes(), raw)?;
        return writeln!(out, " (not in the kernel's TCP, UDP or UNIX socket tables)");
    };
    writeln!(out, "        {}", sock_type_name(s.sock_type))?;
    write!(out, "        sockname: ")?;
    write_endpoint(&s.local, raw, out)?;
    if let Some(peer) = &s.peer {
        write!(out, "        peername: ")?;
        write_endpoint(peer, raw, out)?;
    }
    writeln!(out, "        state: {}", s.state_name())?;
    match (s.unix_peer, d.other_end.as_slice()) {
        (Some(ino), []) => writeln!(out, "        peer: ino:{ino}")?,
        (Some(ino), fds) => writeln!(
            out,
            "        peer: ino:{ino} fd {} of this process",
            fd_list(fds)
        )?,
        (None, []) => {}
        (None, fds) => writeln!(out, "        peer: fd {} of this process", fd_list(fds))?,
    }
    Ok(())
}

fn write_endpoint(e: &Endpoint, raw: bool, out: &mut dyn Write) -> std::io::Result<()> {
    match e {
        Endpoint::Unix(name) if raw => {
            out.write_all(b"AF_UNIX ")?;
            out.write_all(&name.bytes())?;
            writeln!(out)
        }
        _ => writeln!(out, "{}", text::pfiles_text(e)),
    }
}

/// What an anonymous inode's fdinfo tells.
fn anon_lines(d: &Descriptor) -> Vec<String> {
    let Some(info) = &d.info else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if let Some(count) = info.eventfd_count {
        lines.push(format!("eventfd count:{count}"));
    }
    if d.anon_name() == Some(b"eventpoll") {
        let fds: Vec<i32> = info.epoll.iter().map(|w| w.fd).collect();
        // The events each one waits for are in --json.
        lines.push(match fds.as_slice() {
            [] => "epoll watching no fds".to_owned(),
            fds => format!("epoll watching fds: {}", fd_list(fds)),
        });
    }
    if let Some(t) = &info.timerfd {
        lines.push(format!(
            "timerfd {} value:{}.{:09}s interval:{}.{:09}s ticks:{}",
            clock_name(t.clockid),
            t.value.0,
            t.value.1,
            t.interval.0,
            t.interval.1,
            t.ticks
        ));
    }
    if let Some(mask) = info.sigmask {
        let names: Vec<String> = signals_in_mask(mask).into_iter().map(signal_name).collect();
        lines.push(format!("signalfd signals: {}", names.join(",")));
    }
    if let Some(pid) = info.pidfd_pid {
        lines.push(format!("pidfd pid:{pid}"));
    }
    for w in &info.inotify {
        lines.push(format!(
            "inotify wd:{} dev:{},{} ino:{} mask:{:#x}",
            w.wd, w.dev.0, w.dev.1, w.ino, w.mask
        ));
    }
    lines
}

/// One line per descriptor of type `t`: fd, type, and the most useful
/// detail.
fn write_typed(
    table: &FdTable,
    t: FdType,
    raw: bool,
    out: &mut dyn Write,
) -> Result<(), ReportError> {
    for d in table.fds.iter().filter(|d| d.is_type(t.name())) {
        write!(out, "{:4}: {} ", d.fd, d.type_name())?;
        match (&d.socket, d.kind) {
            (Some(s), _) => {
                write_short_endpoint(&s.local, raw, out)?;
                out.write_all(b" ")?;
                match &s.peer {
                    Some(p) => write_short_endpoint(p, raw, out)?,
                    None if s.protocol == Protocol::Unix => out.write_all(b"*")?,
                    None => out.write_all(b"*:*")?,
                }
                write!(out, " {}", s.state_name())?;
            }
            (None, FileKind::Fifo) => {
                text(out, d.link.as_encoded_bytes(), raw)?;
                if d.info.is_some() {
                    write!(out, " {}", other_end_text(d))?;
                }
            }
            (None, FileKind::Anon) => match anon_lines(d).first() {
                Some(first) => out.write_all(first.as_bytes())?,
                None => text(out, d.link.as_encoded_bytes(), raw)?,
            },
            (None, _) => text(out, d.link.as_encoded_bytes(), raw)?,
        }
        writeln!(out)?;
    }
    Ok(())
}

fn write_short_endpoint(e: &Endpoint, raw: bool, out: &mut dyn Write) -> std::io::Result<()> {
    match e {
        Endpoint::Unix(name) if raw => out.write_all(&name.bytes()),
        _ => out.write_all(text::short_text(e).as_bytes()),
    }
}

fn endpoint_json(e: &Endpoint) -> Value {
    match e {
        Endpoint::Inet(a) => json!({
            "family": e.family(),
            "address": a.ip().to_string(),
            "port": a.port(),
        }),
        Endpoint::Unix(name) => json!({
            "family": "AF_UNIX",
            "name": json_bytes(&name.bytes()),
            "abstract": matches!(name, libproc_rs::openfiles::UnixName::Abstract(_)),
        }),
    }
}

fn socket_json(s: &SocketEntry, d: &Descriptor) -> Value {
    let mut m = Map::new();
    m.insert("protocol".into(), json!(s.protocol.name()));
    m.insert("type".into(), json!(sock_type_name(s.sock_type)));
    m.insert("state".into(), json!(s.state_name()));
    m.insert("local".into(), endpoint_json(&s.local));
    m.insert(
        "peer".into(),
        s.peer.as_ref().map_or(Value::Null, endpoint_json),
    );
    m.insert("peer_inode".into(), json!(s.unix_peer));
    m.insert("peer_fds".into(), json!(d.other_end));
    Value::Object(m)
}

fn anon_json(d: &Descriptor) -> Value {
    let mut m = Map::new();
    m.insert(
        "kind".into(),
        json_bytes(d.anon_name().unwrap_or(d.link.as_encoded_bytes())),
    );
    if let Some(info) = &d.info {
        if let Some(c) = info.eventfd_count {
            m.insert("count".into(), json!(c));
        }
        if d.anon_name() == Some(b"eventpoll") {
            let watches: Vec<Value> = info
                .epoll
                .iter()
                .map(|w| json!({"fd": w.fd, "events": w.events, "ino": w.ino}))
                .collect();
            m.insert("watches".into(), Value::Array(watches));
        }
        if let Some(t) = &info.timerfd {
            m.insert(
                "timer".into(),
                json!({
                    "clock": clock_name(t.clockid),
                    "ticks": t.ticks,
                    "settime_flags": t.settime_flags,
                    "value_ns": u128::from(t.value.0) * 1_000_000_000 + u128::from(t.value.1),
                    "interval_ns": u128::from(t.interval.0) * 1_000_000_000 + u128::from(t.interval.1),
                }),
            );
        }
        if let Some(mask) = info.sigmask {
            m.insert("signals".into(), json!(signals_in_mask(mask)));
        }
        if let Some(pid) = info.pidfd_pid {
            m.insert("pid".into(), json!(pid));
        }
        if !info.inotify.is_empty() {
            let watches: Vec<Value> = info
                .inotify
                .iter()
                .map(|w| json!({"wd": w.wd, "dev": [w.dev.0, w.dev.1], "ino": w.ino, "mask": w.mask}))
                .collect();
            m.insert("inotify".into(), Value::Array(watches));
        }
    }
    Value::Object(m)
}

fn fd_json(d: &Descriptor) -> Value {
    let mut m = Map::new();
    m.insert("fd".into(), json!(d.fd));
    m.insert("type".into(), json!(d.type_name()));
    m.insert("link".into(), json_bytes(d.link.as_encoded_bytes()));
    if let Some(s) = d.stat {
        m.insert("mode".into(), json!(s.mode & 0o7777));
        m.insert("dev".into(), json!([s.dev.0, s.dev.1]));
        m.insert("ino".into(), json!(s.ino));
        m.insert("uid".into(), json!(s.uid));
        m.insert("gid".into(), json!(s.gid));
        m.insert("size".into(), json!(s.size));
        if matches!(d.kind, FileKind::CharDevice | FileKind::BlockDevice) {
            m.insert("rdev".into(), json!([s.rdev.0, s.rdev.1]));
        }
    }
    if let Some(info) = &d.info {
        if let Some(f) = info.flags {
            m.insert("flags".into(), json!(open_flag_names(f)));
        }
        if let Some(p) = info.pos {
            m.insert("offset".into(), json!(p));
        }
    }
    match d.kind {
        FileKind::Socket => {
            m.insert(
                "socket".into(),
                d.socket.as_ref().map_or(Value::Null, |s| socket_json(s, d)),
            );
        }
        FileKind::Fifo => {
            m.insert(
                "pipe".into(),
                json!({"inode": d.inode(), "other_end_fds": d.other_end}),
            );
        }
        FileKind::Anon => {
            m.insert("anon".into(), anon_json(d));
        }
        _ => {
            let (path, deleted) = d.path();
            m.insert("path".into(), json_bytes(path));
            m.insert("deleted".into(), json!(deleted));
        }
    }
    Value::Object(m)
}

/// `--json`: the target, the table's limit and socket source, and the
/// descriptors, each written as it is made (at 50,000 descriptors a tree
/// of the whole document would be hundreds of megabytes).
fn write_json(
    target: &dyn ProcessTarget,
    table: &FdTable,
    uv: Option<&LibuvView>,
    only: Option<FdType>,
    out: &mut dyn Write,
) -> Result<(), ReportError> {
    let by_fd = uv.map(LibuvView::by_fd).unwrap_or_default();
    let fds = StreamedArray(|| {
        table
            .fds
            .iter()
            .filter(|d| only.is_none_or(|t| d.is_type(t.name())))
            .map(|d| {
                let mut v = fd_json(d);
                if let (Some(h), Value::Object(m)) = (by_fd.get(&d.fd), &mut v) {
                    m.insert("libuv".into(), libuv::holders_json(h));
                }
                v
            })
    });
    let mut head = report::target_json(target);
    // A core's table can only be the one npgcore recorded.
    if matches!(target.source(), libproc_rs::target::Source::Core { .. }) {
        head.insert("descriptors_from".into(), json!("npgcore notes"));
    }
    report::write_json_line_streamed(out, head, |doc| {
        doc.field("rlimit", &table.rlimit)?;
        doc.field(
            "socket_source",
            &table.socket_source.map(|s| match s {
                TableSource::Netlink => "netlink",
                TableSource::Procfs => "procfs",
            }),
        )?;
        doc.field("fds", &fds)?;
        if let Some(view) = uv {
            doc.field("libuv", &libuv::view_json(view))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The EXAMPLES section of the man page.
pub const MAN_EXAMPLES: &str = r#"Every open file of a process:
    $ npfiles 4242
    4242:	node /app/server.js
      Current rlimit: 1024 file descriptors
      18: S_IFSOCK mode:0777 dev:0,8 ino:88213 uid:0 gid:0 size:0
          O_RDWR|O_NONBLOCK|O_CLOEXEC
            SOCK_STREAM
            sockname: AF_INET 127.0.0.1  port: 8080
            state: LISTEN
          libuv: tcp, listening, bound, active, ref (main loop)

The descriptors node's libuv held, from a kernel core:
    $ npfiles core
    core 'core' of 4242:	node /app/server.js
      18: S_IFSOCK
          libuv: tcp, listening, bound, active, ref (main loop)

Count the sockets, from a script:
    $ npfiles --type sock 4242 | wc -l

The TCP connections, one line each (fd, type, local, peer, state):
    $ npfiles --type tcp 4242
      18: tcp 127.0.0.1:8080 *:* LISTEN
      21: tcp 127.0.0.1:8080 127.0.0.1:51514 ESTABLISHED

The same in JSON:
    $ npfiles --json 4242 | jq '.fds[] | select(.type == "tcp") | .socket.peer'
"#;

#[cfg(test)]
mod golden;
