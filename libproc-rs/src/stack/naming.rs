//! Naming walked frames, by their module's symbols, by V8's heap (named
//! while the thread was held) or by node's perf map; and saying which
//! JavaScript frames were left unnamed, and why.

use std::collections::HashMap;

use super::capture::CapturedThreads;
use super::modules::{Module, Modules, SymbolHit};
use super::nodejs::{self, PerfMap};
use super::symbolize;
use super::v8::{JsFrame, V8, V8Missing};
use super::walk::{JitRanges, Walk, Walked};
use super::{Frame, FrameKind, Options, ThreadStack};
use crate::target::ProcessTarget;
use crate::target::capture::Captured;

/// What a frame of V8's code that did not decode is.
const UNKNOWN_JS: &str = "unknown JS frame";

/// V8 as found in the target's modules: what names JavaScript frames from
/// the heap, or why nothing does.
pub(super) struct FoundV8 {
    pub(super) v8: Option<V8>,
    pub(super) missing: Option<V8Missing>,
}

impl FoundV8 {
    /// Look for V8's metadata, unless the options say not to read the heap.
    pub(super) fn find(
        modules: &mut Modules,
        target: &dyn ProcessTarget,
        options: &Options,
    ) -> FoundV8 {
        let found = if options.no_heap_names {
            None
        } else {
            modules.v8(target)
        };
        match found {
            Some(Ok(v8)) => FoundV8 {
                v8: Some(v8),
                missing: None,
            },
            Some(Err(why)) => FoundV8 {
                v8: None,
                missing: Some(why),
            },
            None => FoundV8 {
                v8: None,
                missing: None,
            },
        }
    }

    /// V8's metadata is there but its layout was not recognised: every
    /// frame in the interpreter or in compiled code is JavaScript left
    /// unnamed.
    fn layout_failed(&self) -> bool {
        matches!(self.missing, Some(V8Missing::Layout(_)))
    }
}

/// What was left unnamed, for the notices.
#[derive(Debug, Default)]
pub(super) struct Unnamed {
    /// JavaScript frames shown unnamed, in every thread.
    frames: usize,
    /// The first step that failed for one of those.
    failed_step: Option<&'static str>,
    /// A frame in JIT code while no V8 was there to name it.
    jit_without_v8: bool,
    /// JavaScript frames left unnamed under --no-heap-names.
    by_choice: usize,
    /// The perf map's warning, if it was read.
    perf_note: Option<String>,
}

impl Unnamed {
    /// What several takes left unnamed, together; `failed_step` is the
    /// first step that failed while a thread was held, or after.
    pub(super) fn merged(all: Vec<Unnamed>, failed_step: Option<&'static str>) -> Unnamed {
        let mut out = Unnamed {
            failed_step,
            ..Unnamed::default()
        };
        for u in all {
            out.frames += u.frames;
            out.failed_step = out.failed_step.or(u.failed_step);
            out.jit_without_v8 |= u.jit_without_v8;
            out.by_choice += u.by_choice;
            out.perf_note = u.perf_note.or(out.perf_note);
        }
        out
    }
}

/// Names the frames of walked threads.
pub(super) struct Namer<'a> {
    target: &'a dyn ProcessTarget,
    modules: &'a Modules,
    jit: &'a JitRanges,
    v8: &'a FoundV8,
    options: &'a Options,
    /// The perf map, read when a frame first needs it.
    perf: Option<PerfMap>,
    /// Symbols found so far, by lookup address (a sampling run looks up
    /// the same addresses again and again; a module's symbol table is
    /// scanned whole for each batch).
    symbols: KnownSymbols,
    unnamed: Unnamed,
}

/// Symbols found so far: by lookup address, and for each symbol the span
/// from its start to the highest address found in it. An address in a
/// span is given that symbol with no look at the tables: a symbol that
/// started inside the span and reached its end would have been found
/// instead, so only a symbol nested wholly inside another (rare in
/// compiled code) could be missed, and then its container is named.
#[derive(Debug, Default)]
pub(super) struct KnownSymbols {
    by_address: HashMap<u64, Option<SymbolHit>>,
    spans: std::collections::BTreeMap<u64, (u64, SymbolHit)>,
}

impl KnownSymbols {
    fn get(&self, addr: u64) -> Option<Option<SymbolHit>> {
        if let Some(hit) = self.by_address.get(&addr) {
            return Some(hit.clone());
        }
        let (_, (last, hit)) = self.spans.range(..=addr).next_back()?;
        (addr <= *last).then(|| Some(hit.clone()))
    }

    fn insert(&mut self, addr: u64, hit: Option<SymbolHit>) {
        if let Some(h) = &hit
            && h.start <= addr
        {
            let span = self.spans.entry(h.start).or_insert((addr, h.clone()));
            span.0 = span.0.max(addr);
        }
        self.by_address.insert(addr, hit);
    }

    fn len(&self) -> usize {
        self.by_address.len()
    }
}

/// Most symbol lookups a [`Namer`] keeps before it starts again.
const SYMBOLS_KEPT: usize = 1 << 20;

impl<'a> Namer<'a> {
    pub(super) fn new(
        target: &'a dyn ProcessTarget,
        modules: &'a Modules,
        jit: &'a JitRanges,
        v8: &'a FoundV8,
        options: &'a Options,
    ) -> Namer<'a> {
        Namer {
            target,
            modules,
            jit,
            v8,
            options,
            perf: None,
            symbols: KnownSymbols::default(),
            unnamed: Unnamed::default(),
        }
    }

    /// Every captured thread's stack, named. Symbols are looked up once per
    /// module for all threads.
    pub(super) fn threads(
        &mut self,
        captured: &CapturedThreads,
        walks: Vec<Walk>,
    ) -> Vec<ThreadStack> {
        let mut lookups: Vec<u64> = walks
            .iter()
            .flat_map(|w| w.frames.iter().map(Walked::lookup))
            .filter(|&a| self.symbols.get(a).is_none())
            .collect();
        lookups.sort_unstable();
        lookups.dedup();
        if self.symbols.len() + lookups.len() > SYMBOLS_KEPT {
            self.symbols = KnownSymbols::default();
        }
        let found = self.modules.symbolize(&lookups, self.target);
        for (a, hit) in lookups.into_iter().zip(found) {
            self.symbols.insert(a, hit);
        }
        let known = &self.symbols;
        let hits: Vec<Option<SymbolHit>> = walks
            .iter()
            .flat_map(|w| w.frames.iter().map(|f| known.get(f.lookup()).flatten()))
            .collect();
        let mut symbols = hits.into_iter();
        let stacks: Vec<ThreadStack> = captured
            .threads
            .iter()
            .zip(&captured.numbers)
            .zip(walks)
            .map(|((cap, &number), walk)| self.thread(cap, number, walk, &mut symbols))
            .collect();
        self.unnamed.frames += stacks.iter().map(|t| t.js_unnamed).sum::<usize>();
        stacks
    }

    /// What was left unnamed; `failed_step` is the first step that failed
    /// for a JavaScript frame named while its thread was held.
    pub(super) fn unnamed(&mut self, failed_step: Option<&'static str>) -> Unnamed {
        Unnamed {
            failed_step,
            perf_note: self.perf.as_ref().and_then(|p| p.note.clone()),
            ..std::mem::take(&mut self.unnamed)
        }
    }

    /// Use a perf map read before (a sampling run reads it once).
    pub(super) fn with_perf(mut self, perf: Option<PerfMap>) -> Self {
        self.perf = perf;
        self
    }

    /// Symbols found in an earlier take.
    pub(super) fn with_symbols(mut self, symbols: KnownSymbols) -> Self {
        self.symbols = symbols;
        self
    }

    /// The perf map, if a frame needed it, and the symbols found, for the
    /// next take.
    pub(super) fn into_kept(self) -> (Option<PerfMap>, KnownSymbols) {
        (self.perf, self.symbols)
    }

    /// One thread's stack, its frames named with `symbols` in turn.
    fn thread(
        &mut self,
        cap: &Captured,
        number: usize,
        walk: Walk,
        symbols: &mut impl Iterator<Item = Option<SymbolHit>>,
    ) -> ThreadStack {
        let Walk {
            frames: walked,
            problem,
            js,
        } = walk;
        let mut js = js.into_iter();
        let mut frames = Vec::with_capacity(walked.len());
        let mut js_unnamed = 0;
        for w in &walked {
            let frame = self.frame(w, symbols.next().flatten(), js.next().flatten());
            if self.left_unnamed(&frame, w.lookup()) {
                js_unnamed += 1;
            }
            frames.push(frame);
        }
        let names: Vec<&str> = frames.iter().filter_map(|f| f.symbol.as_deref()).collect();
        let role = nodejs::thread_role(&names, cap.tid == self.target.pid());
        ThreadStack {
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
        }
    }

    /// One frame, named by its module's symbol `hit`, by V8 (`js`), or by
    /// the perf map; with file and line under `-v`.
    fn frame(&mut self, w: &Walked, hit: Option<SymbolHit>, js: Option<JsFrame>) -> Frame {
        let lookup = w.lookup();
        let module = self
            .modules
            .exec_module_at(lookup)
            .map(|i| &self.modules.list[i]);
        let mut frame = native_frame(w, module, hit.as_ref());
        match js {
            Some(JsFrame::Function(name)) => {
                frame.kind = FrameKind::Js;
                frame.js = Some(name);
            }
            Some(JsFrame::Internal(what)) => frame.v8_frame = Some(what),
            Some(JsFrame::Unknown) => frame.v8_frame = Some(UNKNOWN_JS.into()),
            None => {}
        }
        let jit_code = module.is_none() && self.jit.contains(lookup);
        if jit_code && self.v8.v8.is_none() && !self.options.no_heap_names {
            self.unnamed.jit_without_v8 = true;
        }
        if module.is_none() && frame.js.is_none() {
            self.name_from_perf_map(&mut frame, lookup);
        }
        if self.options.verbose
            && module.is_some()
            && let Some(info) = self.modules.line_info(lookup, self.target)
        {
            frame.source = Some(info.location);
            frame.inlined = info.inlined;
        }
        frame
    }

    /// Name a frame nothing else named from node's perf map, if it has
    /// the frame's address.
    fn name_from_perf_map(&mut self, frame: &mut Frame, lookup: u64) {
        let target = self.target;
        let perf = self
            .perf
            .get_or_insert_with(|| nodejs::load_perf_map(target));
        let Some(entry) = perf.lookup(lookup) else {
            return;
        };
        frame.offset = frame.pc.wrapping_sub(entry.start);
        match nodejs::js_name(&entry.name) {
            Some(js) => {
                frame.kind = FrameKind::Js;
                frame.js = Some(js);
                frame.v8_frame = None;
            }
            None => frame.symbol = Some(entry.name.clone()),
        }
    }

    /// Whether a frame is JavaScript left unnamed, once the perf map has
    /// had its say: one that did not decode, or with no layout, one in V8's
    /// compiled code or its interpreter. Those left unnamed by
    /// --no-heap-names are counted apart.
    fn left_unnamed(&mut self, frame: &Frame, lookup: u64) -> bool {
        let in_interpreter = frame
            .symbol
            .as_deref()
            .is_some_and(|s| s.starts_with("Builtins_InterpreterEntryTrampoline"));
        let javascript = frame.js.is_none()
            && (frame.module.is_none() && self.jit.contains(lookup) || in_interpreter);
        if self.options.no_heap_names && javascript {
            self.unnamed.by_choice += 1;
        }
        frame.v8_frame.as_deref() == Some(UNKNOWN_JS) || self.v8.layout_failed() && javascript
    }
}

/// A frame as its module (if any) and the module's symbol `hit` name it.
fn native_frame(w: &Walked, module: Option<&Module>, hit: Option<&SymbolHit>) -> Frame {
    let at = w.code_address();
    Frame {
        pc: w.pc,
        kind: if module.is_some() {
            FrameKind::Native
        } else {
            FrameKind::Unknown
        },
        module: module.map(|m| m.path.clone()),
        // The link-time address where the file was read; else the offset
        // into the file, which is what can still be said.
        module_offset: module.and_then(|m| match m.bias() {
            Some(b) => Some(at.wrapping_sub(b)),
            None => m.file_offset(at),
        }),
        symbol: hit.map(|h| symbolize::demangle(&h.name).into_owned()),
        offset: hit.map_or(0, |h| at.wrapping_sub(h.start)),
        source: None,
        inlined: Vec::new(),
        js: None,
        v8_frame: None,
        interrupted_by_signal: w.interrupted,
    }
}

/// The warnings about JavaScript frames left unnamed.
pub(super) fn notices(
    unnamed: Unnamed,
    v8: &FoundV8,
    modules: &mut Modules,
    target: &dyn ProcessTarget,
) -> Vec<String> {
    let mut notices = Vec::new();
    notices.extend(heap_names_notice(&unnamed, v8, modules, target));
    if unnamed.by_choice > 0 && unnamed.perf_note.is_none() {
        let n = unnamed.by_choice;
        notices.push(format!(
            "{n} JavaScript frame{} not named: --no-heap-names, and no perf map (node \
             --perf-basic-prof) names {}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" },
        ));
    }
    notices.extend(unnamed.perf_note);
    notices
}

/// Why frames were not named from the V8 heap, if any were not.
fn heap_names_notice(
    unnamed: &Unnamed,
    v8: &FoundV8,
    modules: &mut Modules,
    target: &dyn ProcessTarget,
) -> Option<String> {
    let n = unnamed.frames;
    if n > 0 && (v8.v8.is_some() || v8.layout_failed()) {
        let step = match (unnamed.failed_step, &v8.missing) {
            (Some(step), _) => step.to_owned(),
            (None, Some(why)) => why.to_string(),
            (None, None) => "the frames did not decode".to_owned(),
        };
        return Some(format!(
            "{n} JavaScript frame{} not named: {}: {step}",
            if n == 1 { "" } else { "s" },
            modules.v8_versions(target),
        ));
    }
    if unnamed.jit_without_v8 || matches!(v8.missing, Some(V8Missing::Unusable(_))) {
        return Some(format!(
            "JavaScript frames are not named from the V8 heap: {}",
            v8.missing.as_ref().map_or_else(
                || "no module has V8's postmortem metadata".to_owned(),
                ToString::to_string
            )
        ));
    }
    v8.v8.as_ref().filter(|v| !v.knows_builtins()).map(|_| {
        "node's symbol table does not say where V8's builtins are: interpreted JavaScript \
         frames are not named"
            .to_owned()
    })
}
