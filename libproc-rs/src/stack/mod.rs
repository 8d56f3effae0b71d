//! Thread stacks (npstack): capture, unwind, name.
//!
//! [`collect`] runs the steps in order, each in a module of its own:
//!
//! - `capture`: choose the threads and copy each one's registers and a
//!   window of its stack ([`ProcessTarget::capture_threads`]: a live thread
//!   is stopped for the copy; a core's come from its notes).
//! - `walk`: unwind each copy with framehop over the [`modules`] its
//!   frames land in. Where node has V8's metadata, a thread is walked while
//!   it is held and its JavaScript frames named from the heap ([`v8`]),
//!   which may move once it runs.
//! - `naming`: symbols and DWARF ([`symbolize`]), node's perf map and
//!   thread roles ([`nodejs`]), and notices of what was left unnamed.
//!
//! Everything after the copy runs with the target running.

mod capture;
pub mod modules;
mod naming;
pub mod nodejs;
pub mod sample;
pub mod symbolize;
pub mod v8;
mod walk;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::diag::Sink;
use crate::error::Result;
use crate::target::{ProcessTarget, Thread};
use modules::Modules;
use naming::{FoundV8, Namer};
use nodejs::JsName;
use symbolize::SourceLine;
use walk::{JitRanges, JsNamer, WalkWhileHeld, Walker};

/// Most frames walked per thread.
pub const MAX_FRAMES: usize = 1024;

/// Which threads to show: `1,5-9` as illumos takes after `pid/`. A number
/// selects the thread with that TID, or else the thread with that thread
/// number (1 is the main thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(Vec<(u64, u64)>);

impl Selection {
    /// Parse `1,5-9`. `None` when it is not such a list.
    pub fn parse(text: &[u8]) -> Option<Selection> {
        let text = std::str::from_utf8(text).ok()?;
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            if !digits(a) || !digits(b) {
                return None;
            }
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            if a > b {
                return None;
            }
            ranges.push((a, b));
        }
        Some(Selection(ranges))
    }

    fn has(&self, n: u64) -> bool {
        self.0.iter().any(|&(a, b)| a <= n && n <= b)
    }

    /// Whether the selection names this TID.
    pub fn has_tid(&self, tid: i32) -> bool {
        self.has(tid as u64)
    }

    /// Select from `(tid, thread number)` pairs: by TID, or by thread
    /// number when the selection names no TID of these threads.
    pub fn select(&self, threads: &[(i32, usize)]) -> Vec<bool> {
        let by_tid = threads.iter().any(|&(t, _)| self.has_tid(t));
        threads
            .iter()
            .map(|&(tid, number)| {
                if by_tid {
                    self.has_tid(tid)
                } else {
                    self.has(number as u64)
                }
            })
            .collect()
    }
}

/// Split an operand `TARGET[/LWPS]`. An operand that names an existing
/// file is taken whole, so a core whose path ends in `/1` still opens.
pub fn split_operand(operand: &OsStr) -> (OsString, Option<Selection>) {
    let bytes = operand.as_bytes();
    if std::fs::symlink_metadata(operand).is_ok() {
        return (operand.to_owned(), None);
    }
    if let Some(slash) = bytes.iter().rposition(|&b| b == b'/')
        && slash > 0
        && let Some(sel) = Selection::parse(&bytes[slash + 1..])
    {
        return (OsStr::from_bytes(&bytes[..slash]).to_owned(), Some(sel));
    }
    (operand.to_owned(), None)
}

/// What kind of code a frame is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Code of a mapped file (an ELF module).
    Native,
    /// A JavaScript function.
    Js,
    /// Code nothing names (JIT code without a perf map, say).
    Unknown,
}

impl FrameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameKind::Native => "native",
            FrameKind::Js => "js",
            FrameKind::Unknown => "unknown",
        }
    }
}

/// One frame of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The instruction pointer (first frame) or return address.
    pub pc: u64,
    pub kind: FrameKind,
    /// The module holding the code, and the pc's link-time address in it.
    pub module: Option<PathBuf>,
    pub module_offset: Option<u64>,
    /// The function, demangled, and the pc's offset from its start.
    pub symbol: Option<String>,
    pub offset: u64,
    /// From DWARF (`-v`): the source line, and inlined calls at this pc
    /// (innermost first).
    pub source: Option<SourceLine>,
    pub inlined: Vec<(String, SourceLine)>,
    /// A JavaScript function's name, where known.
    pub js: Option<JsName>,
    /// What a frame of V8 itself is (`entry frame`), or `unknown JS frame`
    /// for JIT or interpreter code that did not decode.
    pub v8_frame: Option<String>,
    /// A signal interrupted this frame here: the frames above ran in its
    /// handler.
    pub interrupted_by_signal: bool,
}

/// One thread's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStack {
    pub tid: i32,
    /// 1 for the main thread, then in TID order (illumos's thread#).
    pub number: usize,
    pub name: Option<OsString>,
    pub role: Option<&'static str>,
    pub frames: Vec<Frame>,
    /// Why there are no frames, or why they stop early.
    pub problem: Option<String>,
    /// How long a live thread was held stopped, in microseconds.
    pub held_us: Option<u64>,
    /// JavaScript frames that could not be named (shown as `<unknown JS
    /// frame>`, or as the interpreter or bare JIT addresses when V8's
    /// layout was not recognised at all).
    pub js_unnamed: usize,
}

/// Every selected thread's stack.
#[derive(Debug, Clone, Default)]
pub struct Stacks {
    pub threads: Vec<ThreadStack>,
}

/// How to collect stacks.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stop all threads together (live).
    pub snapshot: bool,
    /// Add file:line and inlined frames from DWARF.
    pub verbose: bool,
    /// Do not read the V8 heap (JavaScript names from the perf map only).
    pub no_heap_names: bool,
    pub select: Option<Selection>,
    /// Name JavaScript frames after each thread runs again, from the copy
    /// of its stack (a sample: see [`v8::NameCache`]), not while it is
    /// held.
    pub name_after_resume: bool,
}

/// Collect the stacks of a target's threads: choose the threads, capture
/// them (walking and naming V8's frames while each is held, where V8 is
/// there), walk the rest, then name every frame and say what was left
/// unnamed (in `sink`: a module that is not the one the process had,
/// JavaScript frames left unnamed and why).
pub fn collect(
    target: &dyn ProcessTarget,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<Stacks> {
    let chosen = capture::choose(target, options.select.as_ref())?;
    let mut session = Session::new(target, options.clone())?;
    let stacks = session.take(chosen, true)?;
    session.notices(sink);
    Ok(stacks)
}

/// Stacks taken from one target again and again (a sampling run), or once
/// ([`collect`]). What does not change between takes is found once: the
/// modules with their symbols and unwind tables, V8's metadata, node's
/// perf map, and the names of JavaScript frames seen before.
pub struct Session<'t> {
    target: &'t dyn ProcessTarget,
    options: Options,
    walker: Walker<'t>,
    v8: FoundV8,
    mappings: Vec<crate::target::Mapping>,
    jit: JitRanges,
    /// JavaScript names carried from take to take.
    names: v8::NameCache,
    perf: Option<nodejs::PerfMap>,
    symbols: naming::KnownSymbols,
    /// What was left unnamed over all takes, for [`Session::notices`].
    unnamed: Vec<naming::Unnamed>,
    js_failed: Option<&'static str>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.target.pid())
            .finish()
    }
}

impl<'t> Session<'t> {
    /// Read the target's mappings and find V8's metadata (unless
    /// `options.no_heap_names`).
    pub fn new(target: &'t dyn ProcessTarget, options: Options) -> Result<Session<'t>> {
        let mappings = target.mappings()?;
        let mut walker = Walker::new(target, Modules::new(&mappings));
        let v8 = FoundV8::find(&mut walker.modules, target, &options);
        let jit = JitRanges::new(&mappings);
        Ok(Session {
            target,
            options,
            walker,
            v8,
            mappings,
            jit,
            names: v8::NameCache::default(),
            perf: None,
            symbols: Default::default(),
            unnamed: Vec::new(),
            js_failed: None,
        })
    }

    /// Read the target's mappings again: code compiled since, and the
    /// stacks of threads started since, are in new ones. Modules loaded
    /// since are not opened.
    pub fn refresh_mappings(&mut self) -> Result<()> {
        self.mappings = self.target.mappings()?;
        self.jit = JitRanges::new(&self.mappings);
        Ok(())
    }

    /// Forget the perf map read so far: it is read again when a frame
    /// needs it (node appends to it as it compiles).
    pub fn forget_perf_map(&mut self) {
        self.perf = None;
    }

    /// Capture `threads` (numbered by `numbers`) one by one and name their
    /// stacks. Their JavaScript frames are named after each thread runs
    /// again when `options.name_after_resume`, else while it is held.
    pub fn take_threads(&mut self, threads: Vec<Thread>, numbers: Vec<usize>) -> Result<Stacks> {
        self.take(capture::Chosen::given(threads, numbers), false)
    }

    fn take(&mut self, chosen: capture::Chosen, newcomers: bool) -> Result<Stacks> {
        let target = self.target;
        let options = &self.options;
        let js = self.v8.v8.as_ref().map(|v8| JsNamer {
            v8,
            jit: &self.jit,
            cache: std::mem::take(&mut self.names),
            failed: None,
        });
        let (held_js, mut later_js) = match js {
            Some(js) if !options.name_after_resume => (Some(js), None),
            js => (None, js),
        };
        let mut held = WalkWhileHeld::new(&mut self.walker, held_js);
        let captured = capture::capture(
            target,
            chosen,
            &self.mappings,
            options,
            newcomers,
            &mut held,
        );
        let WalkWhileHeld { walks, js, .. } = held;
        let captured = captured?;
        let mut walks = self.walker.walks_of(&captured.threads, walks);
        if let Some(js) = &mut later_js {
            for (cap, walk) in captured.threads.iter().zip(&mut walks) {
                if walk.js.is_empty() {
                    walk.js = js.name(target, &self.walker.modules, cap, &walk.frames);
                }
            }
        }
        if let Some(js) = js.or(later_js) {
            self.js_failed = self.js_failed.or(js.failed);
            self.names = js.cache;
        }
        let namer = Namer::new(target, &self.walker.modules, &self.jit, &self.v8, options);
        let mut namer = namer
            .with_perf(self.perf.take())
            .with_symbols(std::mem::take(&mut self.symbols));
        let threads = namer.threads(&captured, walks);
        self.unnamed.push(namer.unnamed(None));
        (self.perf, self.symbols) = namer.into_kept();
        Ok(Stacks { threads })
    }

    /// Say in `sink` what was left unnamed over every take, once.
    pub fn notices(&mut self, sink: &mut dyn Sink) {
        let unnamed = naming::Unnamed::merged(std::mem::take(&mut self.unnamed), self.js_failed);
        let mut notices = self.walker.modules.take_notices();
        notices.extend(naming::notices(
            unnamed,
            &self.v8,
            &mut self.walker.modules,
            self.target,
        ));
        for notice in notices {
            sink.warn(notice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections() {
        let s = Selection::parse(b"1,5-9").unwrap();
        assert!(s.has(1) && s.has(7) && !s.has(4));
        assert_eq!(Selection::parse(b"9-5"), None);
        assert_eq!(Selection::parse(b"a"), None);
        assert_eq!(Selection::parse(b""), None);
        let threads = [(100, 1), (101, 2), (105, 3)];
        assert_eq!(
            Selection::parse(b"2").unwrap().select(&threads),
            [false, true, false]
        );
        assert_eq!(
            Selection::parse(b"105").unwrap().select(&threads),
            [false, false, true]
        );
    }

    #[test]
    fn operands_split_on_a_thread_list() {
        let (t, s) = split_operand(OsStr::new("4242/1,5-9"));
        assert_eq!(t, "4242");
        assert!(s.is_some());
        let (t, s) = split_operand(OsStr::new("/nonexistent/core"));
        assert_eq!(t, "/nonexistent/core");
        assert!(s.is_none());
    }
}
