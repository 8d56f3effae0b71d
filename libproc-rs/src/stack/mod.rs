//! Thread stacks (npstack): capture, unwind, name.
//!
//! Capture and analysis are separate steps.
//! [`ProcessTarget::capture_threads`] copies each
//! thread's registers and a window of its stack while the thread is stopped
//! (live) or takes them from the core; everything after that (opening
//! modules, unwinding with framehop, symbols, DWARF, Node.js names) runs
//! from the copy, with the target running.

pub mod modules;
pub mod nodejs;
pub mod symbolize;
pub mod v8;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64};
use framehop::{FrameAddress, Unwinder};

use crate::error::Result;
use crate::target::capture::{CaptureRequest, Captured, StopMode, WhileHeld};
use crate::target::{MemoryExt, ProcessTarget, Thread};
use modules::Modules;
use nodejs::JsName;
use symbolize::SourceLine;
use v8::{CodeKind, Decoder, JsFrame, V8, V8Missing};

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
    /// Warnings for stderr (a module that is not the one the process had).
    pub notices: Vec<String>,
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
}

/// What a frame of V8's code that did not decode is.
const UNKNOWN_JS: &str = "unknown JS frame";

/// Collect the stacks of a target's threads.
pub fn collect(target: &dyn ProcessTarget, options: &Options) -> Result<Stacks> {
    let mappings = target.mappings()?;
    let all = target.threads()?;
    let numbered: Vec<(i32, usize)> = all.iter().zip(1..).map(|(t, n)| (t.tid, n)).collect();
    let keep = match &options.select {
        Some(sel) => sel.select(&numbered),
        None => vec![true; all.len()],
    };
    // The chosen threads, and their thread numbers.
    let (threads, mut numbers): (Vec<Thread>, Vec<usize>) = all
        .into_iter()
        .zip(1..)
        .zip(keep)
        .filter_map(|(pair, kept)| kept.then_some(pair))
        .unzip();
    let mut modules = Modules::new(&mappings);
    let found = if options.no_heap_names {
        None
    } else {
        modules.v8(target)
    };
    let (v8, v8_missing) = match found {
        Some(Ok(v8)) => (Some(v8), None),
        Some(Err(why)) => (None, Some(why)),
        None => (None, None),
    };
    let mut cache = Caches {
        unwind: CacheX86_64::new(),
        sigreturn: HashMap::new(),
    };
    let jit = JitRanges::new(&mappings);
    // With V8 metadata, each thread is walked and its JavaScript frames
    // named while it is stopped: the heap may move once it runs.
    let mut held = WalkWhileHeld {
        target,
        modules: &mut modules,
        cache: &mut cache,
        v8: v8.as_ref(),
        jit: &jit,
        early: HashMap::new(),
        js_failed: None,
    };
    let mode = if options.snapshot {
        StopMode::Snapshot
    } else {
        StopMode::OneByOne
    };
    let request = CaptureRequest {
        threads: &threads,
        mappings: &mappings,
        mode,
    };
    let mut captured = target.capture_threads(request, &mut held)?;
    // Threads started while we worked: one more pass for them (a
    // selection takes them by TID only).
    let known: std::collections::HashSet<i32> = numbered.iter().map(|&(t, _)| t).collect();
    let arrived = target
        .thread_ids()
        .is_ok_and(|ids| ids.iter().any(|t| !known.contains(t)));
    let listed = if arrived {
        target.threads().unwrap_or_default()
    } else {
        Vec::new()
    };
    let newcomers: Vec<_> = listed
        .into_iter()
        .filter(|t| !known.contains(&t.tid))
        .filter(|t| options.select.as_ref().is_none_or(|s| s.has_tid(t.tid)))
        .collect();
    let request = CaptureRequest {
        threads: &newcomers,
        mappings: &mappings,
        mode,
    };
    if !newcomers.is_empty()
        && let Ok(more) = target.capture_threads(request, &mut held)
    {
        // A newcomer that is already gone was never seen: leave it out.
        let more: Vec<_> = more.into_iter().filter(|c| c.registers.is_some()).collect();
        numbers.extend((numbered.len() + 1..).take(more.len()));
        captured.extend(more);
    }
    let WalkWhileHeld {
        mut early,
        js_failed,
        ..
    } = held;

    let mut pcs: Vec<Vec<Walked>> = Vec::with_capacity(captured.len());
    let mut problems: Vec<Option<String>> = Vec::with_capacity(captured.len());
    let mut named: Vec<Vec<Option<JsFrame>>> = Vec::with_capacity(captured.len());
    for cap in &captured {
        let (walked, problem, js) = match early.remove(&cap.tid) {
            Some(e) if cap.registers.is_some() => e,
            _ => {
                let (w, p) = walk_loading(target, &mut modules, &mut cache, cap);
                (w, p, Vec::new())
            }
        };
        pcs.push(walked);
        problems.push(problem);
        named.push(js);
    }

    // Name every frame: one symbol lookup per module for all threads.
    let mut lookups = Vec::new();
    for walked in &pcs {
        lookups.extend(walked.iter().map(Walked::lookup));
    }
    let symbols = modules.symbolize(&lookups, target);
    let mut perf: Option<nodejs::PerfMap> = None;
    let mut perf_note = None;
    let mut next = 0;
    let mut out = Stacks::default();
    let mut unnamed_jit = false;
    // Frames of JavaScript left unnamed under --no-heap-names.
    let mut unnamed_by_choice = 0;
    // V8's metadata is there but its layout was not recognised: every
    // frame in the interpreter or in compiled code is JavaScript left
    // unnamed.
    let layout_failed = matches!(v8_missing, Some(V8Missing::Layout(_)));
    for (((cap, walked), js), (problem, number)) in captured
        .iter()
        .zip(&pcs)
        .zip(named)
        .zip(problems.into_iter().zip(numbers))
    {
        let mut frames = Vec::with_capacity(walked.len());
        let mut js_unnamed = 0;
        let mut js = js.into_iter();
        for w in walked {
            let (pc, lookup, at) = (w.pc, w.lookup(), w.code_address());
            let hit = symbols[next].clone();
            next += 1;
            let module_index = modules.exec_module_at(lookup);
            let module = module_index.map(|i| &modules.list[i]);
            let mut frame = Frame {
                pc,
                kind: if module.is_some() {
                    FrameKind::Native
                } else {
                    FrameKind::Unknown
                },
                module: module.map(|m| m.path.clone()),
                module_offset: module.and_then(|m| m.bias()).map(|b| at.wrapping_sub(b)),
                symbol: hit
                    .as_ref()
                    .map(|h| symbolize::demangle(&h.name).into_owned()),
                offset: hit.as_ref().map_or(0, |h| at.wrapping_sub(h.start)),
                source: None,
                inlined: Vec::new(),
                js: None,
                v8_frame: None,
                interrupted_by_signal: w.interrupted,
            };
            match js.next().flatten() {
                Some(JsFrame::Function(name)) => {
                    frame.kind = FrameKind::Js;
                    frame.js = Some(name);
                }
                Some(JsFrame::Internal(what)) => frame.v8_frame = Some(what),
                Some(JsFrame::Unknown) => frame.v8_frame = Some(UNKNOWN_JS.into()),
                None => {}
            }
            if module.is_none() && v8.is_none() && !options.no_heap_names && jit.contains(lookup) {
                unnamed_jit = true;
            }
            if module.is_none() && frame.js.is_none() {
                let map = perf.get_or_insert_with(|| {
                    let map = nodejs::load_perf_map(target);
                    perf_note = map.note.clone();
                    map
                });
                if let Some(entry) = map.lookup(lookup) {
                    frame.offset = pc.wrapping_sub(entry.start);
                    match nodejs::js_name(&entry.name) {
                        Some(js) => {
                            frame.kind = FrameKind::Js;
                            frame.js = Some(js);
                            frame.v8_frame = None;
                        }
                        None => frame.symbol = Some(entry.name.clone()),
                    }
                }
            }
            // Left unnamed, once the perf map has had its say: a frame that
            // did not decode, or with no layout, one in V8's compiled code
            // or its interpreter.
            let in_interpreter = || {
                frame
                    .symbol
                    .as_deref()
                    .is_some_and(|s| s.starts_with("Builtins_InterpreterEntryTrampoline"))
            };
            let javascript = frame.js.is_none()
                && (module.is_none() && jit.contains(lookup) || in_interpreter());
            if frame.v8_frame.as_deref() == Some(UNKNOWN_JS) || layout_failed && javascript {
                js_unnamed += 1;
            }
            if options.no_heap_names && javascript {
                unnamed_by_choice += 1;
            }
            if options.verbose
                && module.is_some()
                && let Some(info) = modules.line_info(lookup, target)
            {
                frame.source = Some(info.location);
                frame.inlined = info.inlined;
            }
            frames.push(frame);
        }
        let names: Vec<&str> = frames.iter().filter_map(|f| f.symbol.as_deref()).collect();
        let role = nodejs::thread_role(&names, cap.tid == target.pid());
        out.threads.push(ThreadStack {
            tid: cap.tid,
            number,
            name: cap.name.clone(),
            role,
            frames,
            problem: cap.problem.map(|p| p.to_string()).or(problem),
            held_us: cap
                .held
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            js_unnamed,
        });
    }
    out.notices = modules.take_notices();
    let unnamed: usize = out.threads.iter().map(|t| t.js_unnamed).sum();
    if unnamed > 0 && (v8.is_some() || layout_failed) {
        let step = match (js_failed, &v8_missing) {
            (Some(step), _) => step.to_owned(),
            (None, Some(why)) => why.to_string(),
            (None, None) => "the frames did not decode".to_owned(),
        };
        out.notices.push(format!(
            "{unnamed} JavaScript frame{} not named: {}: {step}",
            if unnamed == 1 { "" } else { "s" },
            modules.v8_versions(target),
        ));
    } else if unnamed_jit {
        out.notices.push(format!(
            "JavaScript frames are not named from the V8 heap: {}",
            v8_missing.as_ref().map_or_else(
                || "no module has V8's postmortem metadata".to_owned(),
                ToString::to_string
            )
        ));
    } else if v8.as_ref().is_some_and(|v| !v.knows_builtins()) {
        out.notices.push(
            "node's symbol table does not say where V8's builtins are: interpreted \
             JavaScript frames are not named"
                .into(),
        );
    }
    if unnamed_by_choice > 0 && perf_note.is_none() {
        out.notices.push(format!(
            "{unnamed_by_choice} JavaScript frame{} not named: --no-heap-names, and no perf \
             map (node --perf-basic-prof) names {}",
            if unnamed_by_choice == 1 { "" } else { "s" },
            if unnamed_by_choice == 1 { "it" } else { "them" },
        ));
    }
    out.notices.extend(perf_note);
    Ok(out)
}

/// Walk a thread's stack, opening the modules its frames land in and
/// walking again until every frame's module has been opened (a frame in a
/// module with no unwind table yet is walked by frame pointer, which may
/// go wrong).
fn walk_loading(
    target: &dyn ProcessTarget,
    modules: &mut Modules,
    cache: &mut Caches,
    cap: &Captured,
) -> (Vec<Walked>, Option<String>) {
    let Some(regs) = cap.registers else {
        return (Vec::new(), None);
    };
    if let Some(i) = modules.exec_module_at(regs.rip()) {
        modules.load(i, target);
    }
    let mut walked = None;
    for _ in 0..8 {
        let (frames, problem) = walk(target, modules, cache, cap);
        let missing: Vec<usize> = frames
            .iter()
            .filter_map(|w| modules.unopened_at(w.lookup()))
            .collect();
        if missing.is_empty() {
            walked = Some((frames, problem));
            break;
        }
        for i in missing {
            modules.load(i, target);
        }
    }
    let (mut frames, problem) = walked.unwrap_or_else(|| walk(target, modules, cache, cap));
    for w in &mut frames {
        w.shift = modules.alias_shift(w.pc);
    }
    (frames, problem)
}

/// What walks share across threads: framehop's rule cache, and which
/// addresses hold the signal trampoline.
struct Caches {
    unwind: CacheX86_64,
    sigreturn: HashMap<u64, bool>,
}

/// x86_64 `__restore_rt`, where a signal handler returns to:
/// `mov $15, %rax` (rt_sigreturn); `syscall`.
const SIGRETURN_CODE: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];

/// Offsets in the kernel's signal frame, from the stack pointer at
/// `__restore_rt` (which points at the `ucontext`): the saved registers in
/// `uc_mcontext` (at 40; rbp, rsp, rip are gregs 10, 15, 16). The signal's
/// number is not there: the kernel fills the `siginfo` after the context
/// only for SA_SIGINFO handlers, and nothing in the frame says which.
const UC_RBP: u64 = 40 + 10 * 8;
const UC_RSP: u64 = 40 + 15 * 8;
const UC_RIP: u64 = 40 + 16 * 8;

/// A frame as walked: its pc, and whether a signal interrupted it there
/// (then the pc is where it was interrupted, not a return address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Walked {
    pc: u64,
    interrupted: bool,
    /// The pc is the exact instruction (first frame, or interrupted).
    exact: bool,
    /// The frame pointer register (rbp) in this frame.
    fp: u64,
    /// How far the pc is from where its code was loaded, when it runs in
    /// a second mapping of it (see [`Modules::alias_shift`]).
    shift: u64,
}

impl Walked {
    /// Where the pc's code is in its module: the pc itself, but in a second
    /// mapping of the code.
    fn code_address(&self) -> u64 {
        self.pc.wrapping_sub(self.shift)
    }

    /// The address to look the frame up by: a return address points after
    /// the call, possibly into the next function, so callers are looked up
    /// one byte back.
    fn lookup(&self) -> u64 {
        let at = self.code_address();
        if self.exact { at } else { at.wrapping_sub(1) }
    }
}

/// One walk with the modules opened so far. A signal frame is stepped
/// over by reading the registers the kernel saved in it.
fn walk(
    target: &dyn ProcessTarget,
    modules: &Modules,
    cache: &mut Caches,
    cap: &Captured,
) -> (Vec<Walked>, Option<String>) {
    let Caches {
        unwind: cache,
        sigreturn,
    } = cache;
    let Some(regs) = cap.registers else {
        return (Vec::new(), None);
    };
    let mut missing_stack = None;
    let mut read_stack = |addr: u64| -> std::result::Result<u64, ()> {
        cap.stack_word(target, addr).map_err(|e| {
            missing_stack.get_or_insert(e.to_string());
        })
    };
    let mut uregs = UnwindRegsX86_64::new(regs.rip(), regs.rsp(), regs.rbp());
    let mut address = FrameAddress::from_instruction_pointer(regs.rip());
    let mut frames = vec![Walked {
        pc: regs.rip(),
        interrupted: false,
        exact: true,
        fp: regs.rbp(),
        shift: 0,
    }];
    let mut problem = None;
    loop {
        if frames.len() >= MAX_FRAMES {
            problem = Some(format!("stopped after {MAX_FRAMES} frames"));
            break;
        }
        if is_sigreturn(target, sigreturn, address.address()) {
            // The handler "returns" to the trampoline's first byte.
            if let Some(last) = frames.last_mut() {
                last.exact = true;
            }
            let uc = uregs.sp();
            let saved = (|| {
                let rip = read_stack(uc.checked_add(UC_RIP)?).ok()?;
                let rsp = read_stack(uc.checked_add(UC_RSP)?).ok()?;
                let rbp = read_stack(uc.checked_add(UC_RBP)?).ok()?;
                Some((rip, rsp, rbp))
            })();
            let Some((rip, rsp, rbp)) = saved else {
                break;
            };
            uregs = UnwindRegsX86_64::new(rip, rsp, rbp);
            address = FrameAddress::from_instruction_pointer(rip);
            frames.push(Walked {
                pc: rip,
                interrupted: true,
                exact: true,
                fp: rbp,
                shift: 0,
            });
            continue;
        }
        let before = uregs.sp();
        match modules
            .unwinder()
            .unwind_frame(address, &mut uregs, cache, &mut read_stack)
        {
            Ok(Some(ra)) => {
                let Some(next) = FrameAddress::from_return_address(ra) else {
                    break;
                };
                // The stack grows down: a caller's frame is above.
                if uregs.sp() <= before && !matches!(address, FrameAddress::InstructionPointer(_)) {
                    break;
                }
                address = next;
                frames.push(Walked {
                    pc: ra,
                    interrupted: false,
                    exact: false,
                    fp: uregs.bp(),
                    shift: 0,
                });
            }
            Ok(None) | Err(_) => break,
        }
    }
    if frames.len() <= 1
        && let Some(why) = missing_stack
    {
        problem = Some(format!("its stack is not available: {why}"));
    }
    (frames, problem)
}

/// A thread walked while stopped: its frames, why the walk stopped, and
/// its frames as V8 names them.
type Early = (Vec<Walked>, Option<String>, Vec<Option<JsFrame>>);

/// What is done while a thread is held: with V8 metadata, its stack is
/// walked and its JavaScript frames named (the heap may move once it
/// runs).
struct WalkWhileHeld<'a> {
    target: &'a dyn ProcessTarget,
    modules: &'a mut Modules,
    cache: &'a mut Caches,
    v8: Option<&'a V8>,
    jit: &'a JitRanges,
    early: HashMap<i32, Early>,
    /// The first step that failed for a JavaScript frame left unnamed.
    js_failed: Option<&'static str>,
}

impl WhileHeld for WalkWhileHeld<'_> {
    fn before_stopping(&mut self) {
        if self.v8.is_some() {
            // Walking a stopped thread should not wait for a module to open.
            self.modules.load_common(self.target);
        }
    }

    fn stopped(&mut self, cap: &Captured) {
        let Some(v8) = self.v8 else {
            return;
        };
        let (walked, problem) = walk_loading(self.target, self.modules, self.cache, cap);
        let (js, failed) = name_js_frames(v8, self.target, self.modules, self.jit, cap, &walked);
        self.js_failed = self.js_failed.or(failed);
        self.early.insert(cap.tid, (walked, problem, js));
    }
}

/// The executable anonymous mappings: where V8's compiled code is.
struct JitRanges(Vec<(u64, u64)>);

impl JitRanges {
    fn new(mappings: &[crate::target::Mapping]) -> JitRanges {
        JitRanges(
            mappings
                .iter()
                .filter(|m| m.perms.exec && m.path().is_none())
                .filter(|m| m.name != crate::target::MapName::Vdso)
                .map(|m| (m.start, m.end))
                .collect(),
        )
    }

    fn contains(&self, pc: u64) -> bool {
        let i = self.0.partition_point(|&(s, _)| s <= pc);
        i > 0 && pc < self.0[i - 1].1
    }
}

/// Name the V8 frames of a walked thread (`None` for native frames): those
/// in V8's builtins (the interpreter) or in its compiled code, each once
/// (a frameless stub shares its caller's frame pointer).
fn name_js_frames(
    v8: &V8,
    target: &dyn ProcessTarget,
    modules: &Modules,
    jit: &JitRanges,
    cap: &Captured,
    walked: &[Walked],
) -> (Vec<Option<JsFrame>>, Option<&'static str>) {
    let mut decoder = Decoder::new(v8, target);
    let mut word = |a: u64| cap.stack_word(target, a).ok();
    let mut last_fp = None;
    let named = walked
        .iter()
        .map(|w| {
            let lookup = w.lookup();
            let kind = if v8.in_builtins(lookup) {
                CodeKind::Builtin
            } else if modules.exec_module_at(lookup).is_none() && jit.contains(lookup) {
                CodeKind::Jit
            } else {
                last_fp = None;
                return None;
            };
            if last_fp.replace(w.fp) == Some(w.fp) {
                return None;
            }
            decoder.frame(kind, (w.pc, w.exact), w.fp, &mut word)
        })
        .collect();
    (named, decoder.failed_step())
}

/// Whether the code at `pc` is the signal-return trampoline.
/// Answers are kept per address: threads share most of their frames.
fn is_sigreturn(target: &dyn ProcessTarget, known: &mut HashMap<u64, bool>, pc: u64) -> bool {
    *known.entry(pc).or_insert_with(|| {
        let mut code = [0u8; SIGRETURN_CODE.len()];
        target.read_exact_at(pc, &mut code).is_ok() && code == SIGRETURN_CODE
    })
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
