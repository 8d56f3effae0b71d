//! libuv's handles, read from a node process's memory: the event loops
//! (the main thread's static `default_loop_struct`, and each Worker's, which
//! node keeps on the worker thread's stack) and every handle on each loop's
//! handle queue, with its type, libuv's flags and, where it has one, its
//! descriptor.
//!
//! The layouts are libuv 1.x's public ABI on x86_64 Linux (`uv.h`,
//! `uv/unix.h`, `uv/linux.h`), the same in 1.44 (Debian 12's shared
//! libuv1), 1.46 (node 20), 1.51 (node 22, 25) and 1.52 (node 24, 26);
//! checked against node 20's DWARF. The flags
//! are libuv's internal `UV_HANDLE_*` enum (`src/uv-common.h`), the same
//! values in those versions. No debug information is needed: the
//! main loop is found through the exported `uv_default_loop` (the static
//! `default_loop_ptr` it reads; in node, or in a shared `libuv.so`), a
//! Worker's by the loop's pointer to itself in its embedded `wq_async`
//! handle, searched above the thread's stack pointer or, for a thread
//! running (whose stack pointer cannot be had without stopping it), at
//! the top of the thread stacks no known stack pointer is in.
//!
//! Nothing is trusted unchecked: a loop is used only when its handle queue
//! closes within [`MAX_HANDLES`], every link's `prev` points back, every
//! handle's `loop` points to the loop and its type is in range. A live
//! process runs while it is read, so a walk that fails is tried again a
//! few times before the loop is called unreadable.

use crate::addrmap::running_thread_stacks;
use crate::elf::variables::{NotLocated, locate_in_libraries};
use crate::target::{MemoryExt, ProcessTarget};

/// The most handles walked on one loop before the queue is called broken.
pub const MAX_HANDLES: usize = 1 << 22;

/// How many stack bytes above a thread's stack pointer are searched for a
/// loop.
const STACK_SCAN: u64 = 1 << 20;

// uv_loop_t (uv.h, UV_LOOP_PRIVATE_FIELDS in uv/unix.h and uv/linux.h).
const LOOP_HANDLE_QUEUE: u64 = 16;
const LOOP_BACKEND_FD: u64 = 64;
const LOOP_WATCHERS: usize = 104;
const LOOP_NWATCHERS: usize = 112;
const LOOP_WQ_ASYNC: u64 = 176;
const LOOP_ASYNC_IO_FD: u64 = 456 + IO_FD;
const LOOP_ASYNC_WFD: u64 = 512;
const LOOP_SIGNAL_PIPEFD: u64 = 552;
const LOOP_EMFILE_FD: u64 = 768;
const LOOP_INOTIFY_FD: u64 = 840;
const LOOP_SIZE: usize = 848;

// uv_handle_t (UV_HANDLE_FIELDS, UV_HANDLE_PRIVATE_FIELDS).
const HANDLE_DATA: usize = 0;
const HANDLE_LOOP: usize = 8;
const HANDLE_TYPE: usize = 16;
const HANDLE_QUEUE: u64 = 32;
const HANDLE_FLAGS: usize = 88;
const HANDLE_SIZE: usize = 96;
/// What is read of each handle at once: up to a pipe's `pipe_fname`.
const HANDLE_READ: usize = 264;
/// `connection_cb` in a `uv_stream_t`.
const STREAM_CONNECTION_CB: u64 = 224;
/// `fd` in a `uv__io_t`.
const IO_FD: u64 = 48;

/// libuv's handle flags (`src/uv-common.h`), as far as this report uses
/// them.
pub mod flags {
    pub const CLOSING: u32 = 0x1;
    pub const CLOSED: u32 = 0x2;
    pub const ACTIVE: u32 = 0x4;
    pub const REF: u32 = 0x8;
    pub const INTERNAL: u32 = 0x10;
    pub const LISTENING: u32 = 0x40;
    pub const CONNECTION: u32 = 0x80;
    pub const SHUT: u32 = 0x200;
    pub const READ_EOF: u32 = 0x800;
    pub const READING: u32 = 0x1000;
    pub const BOUND: u32 = 0x2000;
    pub const READABLE: u32 = 0x4000;
    pub const WRITABLE: u32 = 0x8000;
}

/// `uv_handle_type` (uv.h's UV_HANDLE_TYPE_MAP, from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleType {
    Async,
    Check,
    FsEvent,
    FsPoll,
    Handle,
    Idle,
    Pipe,
    Poll,
    Prepare,
    Process,
    Stream,
    Tcp,
    Timer,
    Tty,
    Udp,
    Signal,
}

impl HandleType {
    const ALL: [HandleType; 16] = [
        HandleType::Async,
        HandleType::Check,
        HandleType::FsEvent,
        HandleType::FsPoll,
        HandleType::Handle,
        HandleType::Idle,
        HandleType::Pipe,
        HandleType::Poll,
        HandleType::Prepare,
        HandleType::Process,
        HandleType::Stream,
        HandleType::Tcp,
        HandleType::Timer,
        HandleType::Tty,
        HandleType::Udp,
        HandleType::Signal,
    ];

    /// The type for libuv's number, `None` out of range.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.get((raw as usize).checked_sub(1)?).copied()
    }

    /// libuv's own name (`uv_handle_type_name`).
    pub fn name(self) -> &'static str {
        match self {
            HandleType::Async => "async",
            HandleType::Check => "check",
            HandleType::FsEvent => "fs_event",
            HandleType::FsPoll => "fs_poll",
            HandleType::Handle => "handle",
            HandleType::Idle => "idle",
            HandleType::Pipe => "pipe",
            HandleType::Poll => "poll",
            HandleType::Prepare => "prepare",
            HandleType::Process => "process",
            HandleType::Stream => "stream",
            HandleType::Tcp => "tcp",
            HandleType::Timer => "timer",
            HandleType::Tty => "tty",
            HandleType::Udp => "udp",
            HandleType::Signal => "signal",
        }
    }

    /// Where the handle keeps its descriptor (`io_watcher.fd`), for the
    /// types that own one.
    fn fd_offset(self) -> Option<u64> {
        match self {
            // uv_stream_t: 96 bytes of UV_STREAM_FIELDS and two request
            // pointers before io_watcher at 136.
            HandleType::Tcp | HandleType::Pipe | HandleType::Tty => Some(136 + IO_FD),
            // uv_udp_t: two sizes, alloc_cb, recv_cb, then io_watcher.
            HandleType::Udp => Some(128 + IO_FD),
            // uv_poll_t: poll_cb, then io_watcher.
            HandleType::Poll => Some(104 + IO_FD),
            _ => None,
        }
    }
}

/// Which loop a handle is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopKind {
    /// node's main thread: `default_loop_struct`.
    Main,
    /// A Worker's loop, on this thread's stack: it has the check, idle and
    /// prepare handles every node Environment makes.
    Worker(i32),
    /// Another loop on this thread's stack (the inspector's I/O thread's,
    /// with `--inspect`).
    Thread(i32),
}

impl LoopKind {
    /// `main`, `worker` or `thread`.
    pub fn name(self) -> &'static str {
        match self {
            LoopKind::Main => "main",
            LoopKind::Worker(_) => "worker",
            LoopKind::Thread(_) => "thread",
        }
    }

    /// The thread whose stack holds the loop, but for the main loop.
    pub fn thread(self) -> Option<i32> {
        match self {
            LoopKind::Main => None,
            LoopKind::Worker(tid) | LoopKind::Thread(tid) => Some(tid),
        }
    }

    /// `main loop`, `worker loop, thread 1234`, `loop of thread 1234`.
    pub fn describe(self) -> String {
        match self {
            LoopKind::Main => "main loop".to_owned(),
            LoopKind::Worker(tid) => format!("worker loop, thread {tid}"),
            LoopKind::Thread(tid) => format!("loop of thread {tid}"),
        }
    }
}

/// What a handle's type adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleDetail {
    None,
    /// A signal handle's signal number.
    Signal(i32),
    /// A child process's pid.
    Process(i32),
    /// An fs_event's inotify watch descriptor (on the loop's inotify fd)
    /// and the path it watches, when readable.
    FsEvent {
        wd: i32,
        path: Option<Vec<u8>>,
    },
    /// A pipe's name (bound or connected), when libuv kept one.
    PipeName(Vec<u8>),
}

/// One handle on a loop's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub address: u64,
    pub loop_kind: LoopKind,
    pub handle_type: HandleType,
    pub flags: u32,
    /// The handle's `data` pointer (node's wrapper object).
    pub data: u64,
    /// The descriptor it owns, for streams, UDP and polls once opened.
    pub fd: Option<i32>,
    /// A stream with a connection callback: `uv_listen` was called on it
    /// (on Unix libuv does not set `UV_HANDLE_LISTENING`).
    pub listening: bool,
    pub detail: HandleDetail,
}

impl Handle {
    /// libuv's state as words: `listening`, `connection`, `reading`,
    /// `readable`, `writable`, `shut`, `eof`, `bound`, `active`,
    /// `closing`, `closed`, `ref` or `unref`, `internal`.
    pub fn state_words(&self) -> Vec<&'static str> {
        use flags::*;
        let f = self.flags;
        let stream = matches!(
            self.handle_type,
            HandleType::Tcp | HandleType::Pipe | HandleType::Tty | HandleType::Udp
        );
        let mut out = Vec::new();
        let words: &[(u32, &str)] = &[
            (LISTENING, "listening"),
            (CONNECTION, "connection"),
            (READING, "reading"),
            (READABLE, "readable"),
            (WRITABLE, "writable"),
            (SHUT, "shut"),
            (READ_EOF, "eof"),
            (BOUND, "bound"),
        ];
        if stream {
            if self.listening && f & LISTENING == 0 {
                out.push("listening");
            }
            out.extend(words.iter().filter(|(b, _)| f & b != 0).map(|(_, w)| *w));
        }
        for (b, w) in [(ACTIVE, "active"), (CLOSING, "closing"), (CLOSED, "closed")] {
            if f & b != 0 {
                out.push(w);
            }
        }
        out.push(if f & REF != 0 { "ref" } else { "unref" });
        if f & INTERNAL != 0 {
            out.push("internal");
        }
        out
    }
}

/// A descriptor a loop keeps for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopFdRole {
    /// `backend_fd`: the epoll instance.
    Epoll,
    /// The eventfd (or a pipe's read end) that wakes the loop for async
    /// handles.
    AsyncWake,
    /// The write end of the async pipe, where no eventfd is used.
    AsyncWrite,
    /// The pipe signal handlers write to: its read and write ends.
    SignalRead,
    SignalWrite,
    /// The inotify instance fs_event handles share.
    Inotify,
    /// `/dev/null` held in reserve to accept and drop a connection at
    /// EMFILE.
    Reserve,
}

impl LoopFdRole {
    pub fn name(self) -> &'static str {
        match self {
            LoopFdRole::Epoll => "epoll",
            LoopFdRole::AsyncWake => "async wakeup",
            LoopFdRole::AsyncWrite => "async wakeup write end",
            LoopFdRole::SignalRead => "signal pipe read end",
            LoopFdRole::SignalWrite => "signal pipe write end",
            LoopFdRole::Inotify => "inotify",
            LoopFdRole::Reserve => "EMFILE reserve (/dev/null)",
        }
    }
}

/// One event loop and its handles, in queue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loop {
    pub address: u64,
    pub kind: LoopKind,
    pub handles: Vec<Handle>,
    /// The loop's own descriptors.
    pub fds: Vec<(i32, LoopFdRole)>,
}

/// What libuv held: its loops, and notices about loops that could not be
/// read (a Worker's loop whose queue was broken: the others are still
/// reported).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibuvView {
    pub loops: Vec<Loop>,
    pub problems: Vec<String>,
}

/// A descriptor libuv holds, and who holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    Handle(&'a Handle),
    Loop(&'a Loop, LoopFdRole),
}

impl LibuvView {
    /// Every descriptor libuv holds, by number, with its holders (a
    /// descriptor held twice is listed with both); fs_event and signal
    /// handles are given as holders of their loop's inotify fd and signal
    /// pipe.
    pub fn by_fd(&self) -> std::collections::BTreeMap<i32, Vec<Holder<'_>>> {
        let mut out: std::collections::BTreeMap<i32, Vec<Holder<'_>>> = Default::default();
        for l in &self.loops {
            for &(fd, role) in &l.fds {
                out.entry(fd).or_default().push(Holder::Loop(l, role));
            }
            for h in &l.handles {
                let fd = match h.handle_type {
                    HandleType::FsEvent => l.fd_of(LoopFdRole::Inotify),
                    HandleType::Signal => l.fd_of(LoopFdRole::SignalRead),
                    _ => h.fd,
                };
                if let Some(fd) = fd {
                    out.entry(fd).or_default().push(Holder::Handle(h));
                }
            }
        }
        out
    }
}

impl Loop {
    fn fd_of(&self, role: LoopFdRole) -> Option<i32> {
        self.fds.iter().find(|(_, r)| *r == role).map(|(fd, _)| *fd)
    }
}

/// Why no libuv view could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoLibuv {
    /// The executable defines no `uv_default_loop`: not node (or a
    /// node built without libuv's symbols).
    NotNode(String),
    /// node's main loop is there but could not be read or is not sane.
    Unreadable(String),
}

impl std::fmt::Display for NoLibuv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoLibuv::NotNode(why) | NoLibuv::Unreadable(why) => f.write_str(why),
        }
    }
}

/// How many times a live loop's walk is tried before it is called broken.
const LIVE_TRIES: usize = 3;

/// Read every libuv loop of `target` and their handles.
pub fn read(target: &dyn ProcessTarget) -> Result<LibuvView, NoLibuv> {
    let maps = target
        .mappings()
        .map_err(|e| NoLibuv::Unreadable(format!("cannot read the mappings: {e}")))?;
    let main = match locate_in_libraries(target, &maps, &["uv_default_loop"], is_libuv) {
        Ok(found) => default_loop(target, found.address).map_err(|why| {
            NoLibuv::Unreadable(format!("node's main libuv loop cannot be found: {why}"))
        })?,
        Err(NotLocated::NoModules) => {
            return Err(NoLibuv::NotNode("no executable is mapped".into()));
        }
        Err(NotLocated::Undefined) => {
            return Err(NoLibuv::NotNode(
                "not a node process: no libuv loop (uv_default_loop) in its executable or a libuv library".into(),
            ));
        }
        Err(NotLocated::Denied(e)) => return Err(NoLibuv::Unreadable(e.to_string())),
        Err(NotLocated::Skipped(why)) => {
            return Err(NoLibuv::NotNode(format!(
                "cannot look for node's libuv loop: {}",
                why.join("; ")
            )));
        }
    };
    let tries = if matches!(target.source(), crate::target::Source::Live { .. }) {
        LIVE_TRIES
    } else {
        1
    };
    let mut view = LibuvView::default();
    let main_loop = walk_retrying(target, main, LoopKind::Main, tries)
        .map_err(|why| NoLibuv::Unreadable(format!("node's main libuv loop {why}")))?;
    view.loops.push(main_loop);
    let pointers = target.thread_stack_pointers().unwrap_or_default();
    // Adds the loop at `candidate`, or says why it cannot be read.
    let add = |view: &mut LibuvView, candidate: u64, tid: i32| -> Result<(), String> {
        if view.loops.iter().any(|l| l.address == candidate) {
            return Ok(());
        }
        match walk_retrying(target, candidate, LoopKind::Thread(tid), tries) {
            Ok(mut l) => {
                if is_environment_loop(&l) {
                    l.kind = LoopKind::Worker(tid);
                    for h in &mut l.handles {
                        h.loop_kind = l.kind;
                    }
                }
                view.loops.push(l);
                Ok(())
            }
            Err(why) => Err(format!(
                "the libuv loop on thread {tid}'s stack at {candidate:#x} {why}"
            )),
        }
    };
    for (tid, sp) in pointers.iter().skip(1) {
        let Some(sp) = sp else { continue };
        for candidate in loops_on_stack(target, &maps, *sp) {
            if let Err(why) = add(&mut view, candidate, *tid) {
                view.problems.push(why);
            }
        }
    }
    // A thread running (not in a system call) has no stack pointer to be
    // had without stopping it: the tops of the thread stacks no known
    // stack pointer is in are searched instead, where a Worker keeps its
    // loop (in the frame of the function the thread starts in).
    for (i, owner) in running_thread_stacks(target, &maps, &pointers) {
        let m = &maps[i];
        // Searched from below the stack pointer, the stack may hold what is
        // left of frames returned from: a look-alike that is not a loop is
        // said only when no loop is found beside it.
        let from = m.end.saturating_sub(STACK_SCAN).max(m.start);
        let mut found = false;
        let mut failed = Vec::new();
        for candidate in loops_on_stack(target, &maps, from) {
            match add(&mut view, candidate, owner) {
                Ok(()) => found = true,
                Err(why) => failed.push(why),
            }
        }
        if !found {
            view.problems.extend(failed);
        }
    }
    Ok(view)
}

/// A library that may define libuv's `uv_default_loop`: libuv itself (a
/// node built with a shared libuv, as Debian's and Alpine's are) or
/// `libnode`.
fn is_libuv(path: &std::path::Path) -> bool {
    path.file_name().is_some_and(|n| {
        let n = n.as_encoded_bytes();
        n.starts_with(b"libuv.so") || n.starts_with(b"libnode.so")
    })
}

/// The main loop, from `uv_default_loop` at `function`: its first load of
/// a RIP-relative quadword (`mov disp32(%rip), %reg`) reads the static
/// `default_loop_ptr`, which node set at start-up. (`uv_default_loop` is
/// exported and found through the hash table; `default_loop_struct` is a
/// local symbol, and a search of node's `.symtab` for it costs hundreds of
/// milliseconds.) What it points to is checked as any loop is.
fn default_loop(target: &dyn ProcessTarget, function: u64) -> Result<u64, String> {
    let mut code = [0u8; 48];
    let n = target
        .read_memory(function, &mut code)
        .map_err(|e| format!("uv_default_loop's code cannot be read: {e}"))?;
    let pointer = rip_relative_load(&code[..n], function)
        .ok_or("uv_default_loop's code is not the one known (no load of default_loop_ptr)")?;
    match target.read_u64(pointer) {
        Ok(0) => Err("default_loop_ptr is NULL (the loop was never initialised)".into()),
        Ok(l) => Ok(l),
        Err(e) => Err(format!("default_loop_ptr cannot be read: {e}")),
    }
}

/// The address the first `REX.W mov disp32(%rip), %reg` in `code` (at
/// run-time address `at`) loads from.
fn rip_relative_load(code: &[u8], at: u64) -> Option<u64> {
    (0..code.len().checked_sub(7)?).find_map(|i| {
        let (rex, op, modrm) = (code[i], code[i + 1], code[i + 2]);
        if (rex == 0x48 || rex == 0x4c) && op == 0x8b && modrm & 0xc7 == 0x05 {
            let disp = i32::from_le_bytes(code[i + 3..i + 7].try_into().ok()?);
            Some((at + i as u64 + 7).wrapping_add_signed(disp.into()))
        } else {
            None
        }
    })
}

/// Does the loop hold the check, idle and prepare handles node's
/// Environment makes on every loop it runs (the main one and each
/// Worker's)? The inspector's I/O loop has none.
fn is_environment_loop(l: &Loop) -> bool {
    [HandleType::Check, HandleType::Idle, HandleType::Prepare]
        .iter()
        .all(|t| l.handles.iter().any(|h| h.handle_type == *t))
}

fn walk_retrying(
    target: &dyn ProcessTarget,
    address: u64,
    kind: LoopKind,
    tries: usize,
) -> Result<Loop, String> {
    let mut last = String::new();
    for _ in 0..tries {
        match walk_loop(target, address, kind) {
            Ok(l) => return Ok(l),
            Err(why) => last = why,
        }
    }
    Err(last)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The bytes read of one handle, and reads of what lies beyond them.
struct Fields<'a> {
    at: u64,
    bytes: &'a [u8],
}

impl Fields<'_> {
    fn i32(&self, target: &dyn ProcessTarget, off: u64) -> Result<i32, String> {
        match self.bytes.get(off as usize..off as usize + 4) {
            Some(b) => Ok(i32::from_le_bytes(b.try_into().expect("4 bytes"))),
            None => i32_at(target, self.at + off),
        }
    }

    fn i64(&self, target: &dyn ProcessTarget, off: u64) -> Result<i64, String> {
        match self.bytes.get(off as usize..off as usize + 8) {
            Some(b) => Ok(i64::from_le_bytes(b.try_into().expect("8 bytes"))),
            None => target
                .read_u64(self.at + off)
                .map(|v| v as i64)
                .map_err(|e| format!("cannot be read at {:#x}: {e}", self.at + off)),
        }
    }
}

fn i32_at(target: &dyn ProcessTarget, addr: u64) -> Result<i32, String> {
    let mut b = [0u8; 4];
    target
        .read_exact_at(addr, &mut b)
        .map_err(|e| format!("cannot be read at {addr:#x}: {e}"))?;
    Ok(i32::from_le_bytes(b))
}

/// Walk the loop at `address`: its handle queue, checked link by link.
fn walk_loop(target: &dyn ProcessTarget, address: u64, kind: LoopKind) -> Result<Loop, String> {
    let mut raw = vec![0u8; LOOP_SIZE];
    target
        .read_exact_at(address, &mut raw)
        .map_err(|e| format!("cannot be read at {address:#x}: {e}"))?;
    let head = address + LOOP_HANDLE_QUEUE;
    let ahead = ReadAhead::of_watchers(target, address, &raw);
    let mut handles = Vec::new();
    let mut prev = head;
    let mut next = u64_at(&raw, LOOP_HANDLE_QUEUE as usize);
    if next == 0 {
        return Err("is not initialised (its handle queue is empty of links)".into());
    }
    while next != head {
        if handles.len() >= MAX_HANDLES {
            return Err(format!(
                "has a handle queue that does not close within {MAX_HANDLES} handles"
            ));
        }
        let h = next.wrapping_sub(HANDLE_QUEUE);
        // One read for the common fields and a stream's or pipe's own (a
        // handle near the end of a mapping is read as far as it goes),
        // unless it was read ahead.
        let mut whole = [0u8; HANDLE_READ];
        let got = match ahead.get(h, HANDLE_READ) {
            Some(b) => {
                whole.copy_from_slice(b);
                HANDLE_READ
            }
            None => target.read_memory(h, &mut whole).unwrap_or(0),
        };
        if got < HANDLE_SIZE {
            target
                .read_exact_at(h, &mut whole[..HANDLE_SIZE])
                .map_err(|e| format!("has a handle at {h:#x} that cannot be read: {e}"))?;
        }
        let fields = Fields {
            at: h,
            bytes: &whole[..got.max(HANDLE_SIZE)],
        };
        let b = &whole[..HANDLE_SIZE];
        let back = u64_at(b, HANDLE_QUEUE as usize + 8);
        if back != prev {
            return Err(format!(
                "has a broken handle queue at {h:#x} (prev {back:#x}, expected {prev:#x})"
            ));
        }
        let owner = u64_at(b, HANDLE_LOOP);
        if owner != address {
            return Err(format!(
                "has a handle at {h:#x} whose loop is {owner:#x}, not the loop"
            ));
        }
        let raw_type = u32_at(b, HANDLE_TYPE);
        let handle_type = HandleType::from_raw(raw_type)
            .ok_or_else(|| format!("has a handle at {h:#x} of unknown type {raw_type}"))?;
        let fd = match handle_type.fd_offset() {
            Some(off) => Some(fields.i32(target, off)?).filter(|&fd| fd >= 0),
            None => None,
        };
        let listening = match handle_type {
            HandleType::Tcp | HandleType::Pipe => fields.i64(target, STREAM_CONNECTION_CB)? != 0,
            _ => false,
        };
        let detail = match handle_type {
            // uv_signal_t: signal_cb, then signum.
            HandleType::Signal => HandleDetail::Signal(fields.i32(target, 104)?),
            // uv_process_t: exit_cb, then pid.
            HandleType::Process => HandleDetail::Process(fields.i32(target, 104)?),
            // uv_fs_event_t: path, cb, watchers queue, then wd.
            HandleType::FsEvent => HandleDetail::FsEvent {
                wd: fields.i32(target, 128)?,
                path: c_string_at(target, h + 96),
            },
            // uv_pipe_t: the stream (248 bytes), ipc, then pipe_fname.
            HandleType::Pipe => pipe_name(target, h),
            _ => HandleDetail::None,
        };
        handles.push(Handle {
            address: h,
            loop_kind: kind,
            handle_type,
            flags: u32_at(b, HANDLE_FLAGS),
            data: u64_at(b, HANDLE_DATA),
            fd,
            listening,
            detail,
        });
        prev = next;
        next = u64_at(b, HANDLE_QUEUE as usize);
    }
    let last = u64_at(&raw, LOOP_HANDLE_QUEUE as usize + 8);
    if last != prev {
        return Err(format!(
            "has a handle queue whose last link is {last:#x}, not {prev:#x}"
        ));
    }
    if !handles
        .iter()
        .any(|h| h.address == address + LOOP_WQ_ASYNC && h.handle_type == HandleType::Async)
    {
        return Err("has no work-queue async handle of its own on its queue".into());
    }
    let fd_at =
        |off: u64| i32::from_le_bytes(raw[off as usize..off as usize + 4].try_into().unwrap());
    let mut fds = Vec::new();
    let mut add = |fd: i32, role| {
        if fd >= 0 {
            fds.push((fd, role));
        }
    };
    add(fd_at(LOOP_BACKEND_FD), LoopFdRole::Epoll);
    add(fd_at(LOOP_ASYNC_IO_FD), LoopFdRole::AsyncWake);
    let async_w = fd_at(LOOP_ASYNC_WFD);
    if async_w != fd_at(LOOP_ASYNC_IO_FD) {
        add(async_w, LoopFdRole::AsyncWrite);
    }
    add(fd_at(LOOP_SIGNAL_PIPEFD), LoopFdRole::SignalRead);
    add(fd_at(LOOP_SIGNAL_PIPEFD + 4), LoopFdRole::SignalWrite);
    add(fd_at(LOOP_INOTIFY_FD), LoopFdRole::Inotify);
    add(fd_at(LOOP_EMFILE_FD), LoopFdRole::Reserve);
    Ok(Loop {
        address,
        kind,
        handles,
        fds,
    })
}

/// The handles that own a descriptor, read from a live process before the
/// walk in a few large reads instead of a system call for each: the loop's `watchers` array holds, for
/// each descriptor it polls, a pointer to the `uv__io_t` embedded in its
/// handle (a stream's at 136, a UDP handle's at 128, a poll handle's at
/// 104). Nothing read here is trusted: the walk takes bytes from it only
/// for the handles its own links lead to, and checks them as any others.
struct ReadAhead {
    /// Spans read whole: start, offset in `bytes`, length; sorted.
    spans: Vec<(u64, usize, usize)>,
    bytes: Vec<u8>,
}

impl ReadAhead {
    /// Gaps between handles up to this are read through rather than
    /// starting another range (cheaper than one more range of a system
    /// call); no span is longer than `MAX_SPAN`.
    const GAP: u64 = 2048;
    const MAX_SPAN: u64 = 256 << 10;
    /// The most bytes read ahead of one loop.
    const BUDGET: usize = 64 << 20;

    fn of_watchers(target: &dyn ProcessTarget, address: u64, raw: &[u8]) -> Self {
        let mut ahead = ReadAhead {
            spans: Vec::new(),
            bytes: Vec::new(),
        };
        // A core's memory is read without a system call a read: nothing
        // to gain.
        if !matches!(target.source(), crate::target::Source::Live { .. }) {
            return ahead;
        }
        let (watchers, n) = (
            u64_at(raw, LOOP_WATCHERS),
            u32_at(raw, LOOP_NWATCHERS) as usize,
        );
        if watchers == 0 || n == 0 || n > MAX_HANDLES {
            return ahead;
        }
        let mut table = vec![0u8; n * 8];
        if target.read_exact_at(watchers, &mut table).is_err() {
            return ahead;
        }
        let loop_end = address + LOOP_SIZE as u64;
        // From the start of a stream holding the watcher to the end of
        // what is read of a poll handle holding it.
        let mut blocks: Vec<(u64, u64)> = table
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .filter(|&w| w != 0 && !(address..loop_end).contains(&w))
            .filter_map(|w| Some((w.checked_sub(136)?, w.checked_add(160)?)))
            .collect();
        blocks.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for (start, end) in blocks {
            match ranges.last_mut() {
                Some(last)
                    if start <= last.1.saturating_add(Self::GAP)
                        && end - last.0 <= Self::MAX_SPAN =>
                {
                    last.1 = last.1.max(end);
                }
                _ => ranges.push((start, end)),
            }
        }
        // What is read ahead is bounded (a table of garbage, or a million
        // connections): past the budget the walk reads handles one by one.
        let mut budget = Self::BUDGET;
        let ranges: Vec<(u64, usize)> = ranges
            .into_iter()
            .map(|(a, b)| (a, (b - a) as usize))
            .take_while(|&(_, len)| match budget.checked_sub(len) {
                Some(left) => {
                    budget = left;
                    true
                }
                None => false,
            })
            .collect();
        let mut bytes = vec![0u8; ranges.iter().map(|r| r.1).sum()];
        let whole = target.read_ranges(&ranges, &mut bytes);
        let mut off = 0;
        for (&(a, len), ok) in ranges.iter().zip(whole) {
            if ok {
                ahead.spans.push((a, off, len));
            }
            off += len;
        }
        ahead.bytes = bytes;
        ahead
    }

    /// `len` bytes at `at`, when a span read holds them all.
    fn get(&self, at: u64, len: usize) -> Option<&[u8]> {
        let i = self.spans.partition_point(|s| s.0 <= at).checked_sub(1)?;
        let (start, off, span) = self.spans[i];
        let from = usize::try_from(at - start).ok()?;
        let end = from.checked_add(len).filter(|&e| e <= span)?;
        Some(&self.bytes[off + from..off + end])
    }
}

/// The string a `char*` field at `field` points to, when set and readable.
fn c_string_at(target: &dyn ProcessTarget, field: u64) -> Option<Vec<u8>> {
    match target.read_u64(field) {
        Ok(0) | Err(_) => None,
        Ok(p) => target
            .read_cstring(p, 4096)
            .ok()
            .map(|s| s.into_encoded_bytes()),
    }
}

/// A pipe's `pipe_fname` (after the stream's 248 bytes and `ipc`).
fn pipe_name(target: &dyn ProcessTarget, h: u64) -> HandleDetail {
    c_string_at(target, h + 256).map_or(HandleDetail::None, HandleDetail::PipeName)
}

/// Addresses on the stack above `sp` that look like a `uv_loop_t`: its
/// `wq_async` handle's `loop` field points to the loop it is in, and the
/// handle's type is async.
fn loops_on_stack(
    target: &dyn ProcessTarget,
    maps: &[crate::target::Mapping],
    sp: u64,
) -> Vec<u64> {
    let Some(m) = maps.iter().find(|m| m.contains(sp)) else {
        return Vec::new();
    };
    let start = sp & !7;
    let end = m.end.min(start.saturating_add(STACK_SCAN));
    let mut buf = vec![0u8; (end - start) as usize];
    let n = target.read_memory(start, &mut buf).unwrap_or(0);
    let self_offset = LOOP_WQ_ASYNC + HANDLE_LOOP as u64;
    let type_after = HANDLE_TYPE - HANDLE_LOOP;
    let mut out = Vec::new();
    for i in (0..n.saturating_sub(16)).step_by(8) {
        let at = start + i as u64;
        let word = u64_at(&buf, i);
        if word.wrapping_add(self_offset) == at
            && word >= m.start
            && u32_at(&buf, i + type_after) == 1
        {
            out.push(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_of_default_loop_ptr() {
        // node 20: push %rbp; mov %rsp,%rbp; push %r12; sub $8,%rsp;
        // mov 0x3dc4487(%rip),%r12
        let code = [
            0x55, 0x48, 0x89, 0xe5, 0x41, 0x54, 0x48, 0x83, 0xec, 0x08, 0x4c, 0x8b, 0x25, 0x87,
            0x44, 0xdc, 0x03, 0x4d, 0x85, 0xe4,
        ];
        assert_eq!(rip_relative_load(&code, 0x18ab550), Some(0x566f9e8));
        // node 26: mov 0x5994dd1(%rip),%rax first.
        let code = [0x48, 0x8b, 0x05, 0xd1, 0x4d, 0x99, 0x05, 0x48, 0x85, 0xc0];
        assert_eq!(rip_relative_load(&code, 0x1a0ce60), Some(0x73a1c38));
        assert_eq!(rip_relative_load(&[0x90; 16], 0), None);
    }

    #[test]
    fn handle_types_and_words() {
        assert_eq!(HandleType::from_raw(0), None);
        assert_eq!(HandleType::from_raw(12), Some(HandleType::Tcp));
        assert_eq!(HandleType::from_raw(16), Some(HandleType::Signal));
        assert_eq!(HandleType::from_raw(17), None);
        let h = Handle {
            address: 0,
            loop_kind: LoopKind::Main,
            handle_type: HandleType::Tcp,
            flags: flags::LISTENING | flags::ACTIVE | flags::REF,
            data: 0,
            fd: Some(18),
            listening: false,
            detail: HandleDetail::None,
        };
        assert_eq!(h.state_words(), ["listening", "active", "ref"]);
        let t = Handle {
            handle_type: HandleType::Timer,
            flags: flags::LISTENING | flags::CLOSING,
            ..h
        };
        assert_eq!(t.state_words(), ["closing", "unref"]);
    }
}
