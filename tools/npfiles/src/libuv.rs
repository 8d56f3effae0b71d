//! libuv's view of the descriptors (see `libproc_rs::libuv`): a line under
//! each descriptor a loop or handle holds, and for a core without a
//! descriptor table the list of those descriptors itself.

use std::collections::BTreeMap;
use std::io::Write;

use libproc_rs::ProcessTarget;
use libproc_rs::diag::Sink;
use libproc_rs::libuv::{self, Handle, HandleDetail, HandleType, Holder, LibuvView, LoopFdRole};
use libproc_rs::parse::fdinfo::signal_name;
use nptools_cli::ReportError;
use nptools_cli::json::json_bytes;
use nptools_cli::report::{self, StreamedArray};
use serde_json::{Map, Value, json};

use crate::FdType;

/// What stderr and --json say of a core's list.
pub const CORE_NOTICE: &str = "a Linux core file records no descriptor table: \
these are the descriptors node's libuv held";

/// libuv's view of a live process or a core with a descriptor table:
/// nothing for a process that is not node, a warning when node's loop
/// cannot be read.
pub fn view_beside_table(target: &dyn ProcessTarget, diag: &mut dyn Sink) -> Option<LibuvView> {
    match libuv::read(target) {
        Ok(view) => {
            for p in &view.problems {
                diag.warn(p.clone());
            }
            Some(view)
        }
        Err(libuv::NoLibuv::NotNode(_)) => None,
        Err(e @ libuv::NoLibuv::Unreadable(_)) => {
            diag.warn(format!("no libuv view: {e}"));
            None
        }
    }
}

fn push_text(line: &mut String, bytes: &[u8], raw: bool) {
    line.push(' ');
    line.push_str(&String::from_utf8_lossy(&report::text_bytes(bytes, raw)));
}

/// `tcp, listening, active, ref (main loop)`.
pub fn holder_text(h: &Holder<'_>, raw: bool) -> String {
    match h {
        Holder::Loop(l, role) => format!("{} of the {}", role.name(), l.kind.describe()),
        Holder::Handle(h) => {
            let mut head = h.handle_type.name().to_owned();
            match &h.detail {
                HandleDetail::Signal(0) => {}
                HandleDetail::Signal(n) => head.push_str(&format!(" {}", signal_name(*n))),
                HandleDetail::Process(pid) => head.push_str(&format!(" pid:{pid}")),
                HandleDetail::FsEvent { wd, path } => {
                    head.push_str(&format!(" wd:{wd}"));
                    if let Some(p) = path {
                        push_text(&mut head, p, raw);
                    }
                }
                HandleDetail::PipeName(name) => push_text(&mut head, name, raw),
                HandleDetail::None => {}
            }
            format!(
                "{head}, {} ({})",
                h.state_words().join(", "),
                h.loop_kind.describe()
            )
        }
    }
}

/// The `libuv:` lines under a descriptor.
pub fn write_lines(holders: &[Holder<'_>], raw: bool, out: &mut dyn Write) -> std::io::Result<()> {
    for h in holders {
        writeln!(out, "      libuv: {}", holder_text(h, raw))?;
    }
    Ok(())
}

pub fn handle_json(h: &Handle) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(h.handle_type.name()));
    m.insert("state".into(), json!(h.state_words()));
    m.insert("flags".into(), json!(h.flags));
    m.insert("loop".into(), json!(h.loop_kind.name()));
    if let Some(tid) = h.loop_kind.thread() {
        m.insert("thread".into(), json!(tid));
    }
    m.insert("handle".into(), json!(format!("{:#x}", h.address)));
    m.insert("data".into(), json!(format!("{:#x}", h.data)));
    m.insert("fd".into(), json!(h.fd));
    match &h.detail {
        HandleDetail::Signal(n) => {
            m.insert("signal".into(), json!(n));
        }
        HandleDetail::Process(pid) => {
            m.insert("pid".into(), json!(pid));
        }
        HandleDetail::FsEvent { wd, path } => {
            m.insert("wd".into(), json!(wd));
            m.insert(
                "path".into(),
                path.as_deref().map_or(Value::Null, json_bytes),
            );
        }
        HandleDetail::PipeName(name) => {
            m.insert("name".into(), json_bytes(name));
        }
        HandleDetail::None => {}
    }
    Value::Object(m)
}

pub fn holders_json(holders: &[Holder<'_>]) -> Value {
    Value::Array(
        holders
            .iter()
            .map(|h| match h {
                Holder::Handle(h) => handle_json(h),
                Holder::Loop(l, role) => json!({
                    "loop_fd": role.name(),
                    "loop": l.kind.name(),
                    "loop_address": format!("{:#x}", l.address),
                }),
            })
            .collect(),
    )
}

/// The loops and every handle, for --json's `libuv`.
pub fn view_json(view: &LibuvView) -> Value {
    let loops: Vec<Value> = view
        .loops
        .iter()
        .map(|l| {
            let mut m = Map::new();
            m.insert("address".into(), json!(format!("{:#x}", l.address)));
            m.insert("kind".into(), json!(l.kind.name()));
            if let Some(tid) = l.kind.thread() {
                m.insert("thread".into(), json!(tid));
            }
            m.insert(
                "fds".into(),
                Value::Array(
                    l.fds
                        .iter()
                        .map(|(fd, r)| json!({"fd": fd, "role": r.name()}))
                        .collect(),
                ),
            );
            m.insert(
                "handles".into(),
                Value::Array(l.handles.iter().map(handle_json).collect()),
            );
            Value::Object(m)
        })
        .collect();
    json!({"loops": loops, "problems": view.problems})
}

/// The file type a core's descriptor had, as far as libuv tells: `None`
/// where it does not (a poll handle watches any descriptor).
fn kind_of(fd: i32, holders: &[Holder<'_>]) -> Option<(&'static str, &'static str)> {
    holders.iter().find_map(|h| match h {
        Holder::Handle(h) => match h.handle_type {
            HandleType::Tcp => Some(("S_IFSOCK", "tcp")),
            HandleType::Udp => Some(("S_IFSOCK", "udp")),
            HandleType::Tty => Some(("S_IFCHR", "chr")),
            // libuv makes a child's pipes with socketpair(2) and names
            // what it binds or connects to; an unnamed pipe handle on an
            // inherited 0-2 is node's stdio, which may be a FIFO.
            HandleType::Pipe if fd > 2 || matches!(h.detail, HandleDetail::PipeName(_)) => {
                Some(("S_IFSOCK", "unix"))
            }
            HandleType::Pipe => Some(("S_IFIFO", "fifo")),
            _ => None,
        },
        Holder::Loop(_, role) => Some(match role {
            LoopFdRole::SignalRead | LoopFdRole::SignalWrite | LoopFdRole::AsyncWrite => {
                ("S_IFIFO", "fifo")
            }
            LoopFdRole::Reserve => ("S_IFCHR", "chr"),
            LoopFdRole::Epoll | LoopFdRole::Inotify | LoopFdRole::AsyncWake => ("S_IFANON", "anon"),
        }),
    })
}

fn selected(fd: i32, holders: &[Holder<'_>], only: Option<FdType>) -> bool {
    let Some(t) = only else { return true };
    match kind_of(fd, holders) {
        Some((s_if, name)) => t.name() == name || (t == FdType::Sock && s_if == "S_IFSOCK"),
        None => false,
    }
}

/// npfiles on a core without a descriptor table: the descriptors libuv
/// held, or why there are none (the operand fails then).
pub fn write_core_report(
    target: &dyn ProcessTarget,
    only: Option<FdType>,
    json: bool,
    raw: bool,
    out: &mut dyn Write,
    diag: &mut dyn Sink,
) -> Result<(), ReportError> {
    let view = match libuv::read(target) {
        Ok(view) => view,
        Err(e) => {
            diag.fail(format!("a Linux core file records no open files, and {e}"));
            return Ok(());
        }
    };
    diag.warn(CORE_NOTICE.to_owned());
    for p in &view.problems {
        diag.warn(p.clone());
    }
    let by_fd: BTreeMap<i32, Vec<Holder<'_>>> = view.by_fd();
    let rows = || by_fd.iter().filter(move |(fd, h)| selected(**fd, h, only));
    if json {
        let fds = StreamedArray(|| {
            rows().map(|(fd, h)| {
                let (s_if, name) = kind_of(*fd, h).unwrap_or(("", "unknown"));
                json!({"fd": fd, "type": name, "file_type": s_if, "libuv": holders_json(h)})
            })
        });
        let mut head = report::target_json(target);
        let notices = head
            .entry("notices")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = notices {
            a.push(json!(CORE_NOTICE));
            a.extend(view.problems.iter().map(|p| json!(p)));
        }
        report::write_json_line_streamed(out, head, |doc| {
            doc.field("descriptors_from", "libuv")?;
            doc.field("rlimit", &Value::Null)?;
            doc.field("fds", &fds)?;
            doc.field("libuv", &view_json(&view))
        })?;
        return Ok(());
    }
    // Where a live report says its open-files limit: what this list is
    // (stderr says it too, for a reader of the report alone).
    if only.is_none() {
        writeln!(
            out,
            "  No descriptor table in a Linux core: the descriptors node's libuv held"
        )?;
    }
    for (fd, holders) in rows() {
        let kind = kind_of(*fd, holders);
        match (only, kind) {
            (Some(_), Some((_, name))) => {
                writeln!(
                    out,
                    "{fd:4}: {name} libuv: {}",
                    holder_text(&holders[0], raw)
                )?;
            }
            (Some(_), None) => {}
            (None, Some((s_if, _))) => {
                writeln!(out, "{fd:4}: {s_if}")?;
                write_lines(holders, raw, out)?;
            }
            (None, None) => {
                writeln!(out, "{fd:4}: (file type not recorded)")?;
                write_lines(holders, raw, out)?;
            }
        }
    }
    Ok(())
}
