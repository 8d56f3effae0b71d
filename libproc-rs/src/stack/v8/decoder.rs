//! A stopped thread's frames decoded: a frame's type marker, or its
//! JSFunction, SharedFunctionInfo and the code it runs (interpreted,
//! baseline, maglev, optimized, with what was inlined there), put together
//! into the name node's stack traces give. The reading of names, strings
//! and positions it needs is in [`super::names`], [`super::strings`] and
//! [`super::positions`]: further `impl Decoder` blocks over the state kept
//! here, which is what lives as long as the thread stays stopped.

use std::collections::HashMap;

use super::heap::Heap;
use super::layout::Layout;
use super::positions::{
    CodePositions, DeltaCoding, InlinedFunction, ScriptInfo, SourceLocation, baseline_offset_at,
    smi,
};
use super::translation::Translations;
use super::{CodeKind, JsFrame, V8};
use crate::stack::nodejs::JsName;
use crate::target::Memory;

/// How many of a DebugInfo's fields are searched for its Script.
const DEBUG_INFO_FIELDS: u64 = 8;
/// Longest function or script name kept, in UTF-16 units.
pub(super) const NAME_MAX: usize = 4096;
/// Most entries of a line-ends array or position table read.
pub(super) const TABLE_MAX: usize = 16 << 20;
/// Compiled code's instructions start 64-byte aligned, 32 bytes after
/// the start of their InstructionStream.
const CODE_ALIGNMENT: u64 = 64;
const ISTREAM_HEADER: u64 = 32;
/// Farthest searched back from a pc for its code's start: 1 MiB.
const MAX_CODE_STEPS: usize = 1 << 14;

/// What a SharedFunctionInfo gives: the function's own name and the name
/// V8 inferred for an anonymous function from where it was assigned
/// (`None` when empty), the script and where the function starts.
#[derive(Debug, Clone)]
pub(super) struct FunctionInfo {
    pub(super) name: Option<String>,
    pub(super) inferred: Option<String>,
    script: Option<u64>,
    start: Option<u32>,
}

/// A function's compiled code that a pc is in.
#[derive(Debug, Clone, Copy)]
pub(super) struct CodeAt {
    pub(super) code: u64,
    pub(super) start: u64,
    /// Where its instructions end.
    pub(super) end: u64,
    pub(super) tier: &'static str,
    /// Its source position table (maglev, optimized) or bytecode offset
    /// table (baseline).
    pub(super) table: u64,
}

/// Where a frame is executing (a source position), and the functions
/// inlined there, innermost first.
#[derive(Debug, Default)]
struct Executing {
    position: Option<u32>,
    inlined: Vec<JsName>,
}

impl From<Option<u32>> for Executing {
    /// A position with nothing inlined.
    fn from(position: Option<u32>) -> Executing {
        Executing {
            position,
            inlined: Vec::new(),
        }
    }
}

/// The call a compiled frame is at: its offset in the code, and the index
/// of its deoptimization entry, where found.
#[derive(Debug, Clone, Copy)]
struct CallSite {
    offset: u64,
    entry: Option<u64>,
}

/// Compiled code found from a pc: where its instructions start and end,
/// and its Code.
#[derive(Debug, Clone, Copy)]
struct CodeRange {
    start: u64,
    end: u64,
    code: u64,
}

/// The stack slots a JavaScript function's frame is decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FrameSlots {
    kind: CodeKind,
    /// The frame's pc, and whether it is the exact instruction (else a
    /// return address).
    pc: u64,
    exact: bool,
    function: u64,
    receiver: Option<u64>,
    bytecode: Option<u64>,
    offset: Option<u64>,
}

/// Most frames a [`NameCache`] keeps before it starts again.
const NAME_CACHE_MAX: usize = 1 << 16;

/// JavaScript frames named in earlier samples of a run (npstack --sample),
/// by the stack slots they were decoded from, each with the
/// SharedFunctionInfo its JSFunction had then.
///
/// A sampled thread is named after it runs again (only its stack is copied
/// while it is held), so a slot may by then point at an object the
/// collector moved. An entry is taken only when the frame's function
/// still is a JSFunction (its map says so) whose SharedFunctionInfo is
/// the one recorded: a moved function fails that check and is decoded
/// again, and the cost of being wrong is one sample given to the function
/// the same slots named before, which a profile of thousands absorbs.
#[derive(Debug, Default)]
pub struct NameCache(HashMap<FrameSlots, (u64, JsName)>);

/// Decodes the JavaScript frames of one stopped thread.
pub(crate) struct Decoder<'v, 'a> {
    v8: &'v V8,
    pub(super) heap: Heap<'a>,
    frames: HashMap<FrameSlots, Option<JsName>>,
    /// Frames named in earlier samples, checked before use.
    carried: NameCache,
    functions: HashMap<u64, Option<FunctionInfo>>,
    pub(super) scripts: HashMap<u64, ScriptInfo>,
    pub(super) positions: HashMap<(u64, u64), Option<u32>>,
    /// Compiled code found from pcs, and the pcs in none.
    codes: Vec<CodeRange>,
    no_code: std::collections::HashSet<u64>,
    /// The InstructionStream map, once seen.
    stream_map: Option<u64>,
    /// How this V8's position tables are written, bytecode arrays' and
    /// Codes', once a table of the kind shows it.
    pub(super) coding: [Option<DeltaCoding>; 2],
    /// The opcode list (of [`super::translation::candidate_tables`]) that
    /// last read a Code's translations, and each Code's translations, the
    /// list they read with and its deoptimization literals.
    pub(super) table_taken: Option<usize>,
    pub(super) translation_cache: HashMap<u64, Option<Translations>>,
    /// How many translation instructions this thread may still read.
    pub(super) translation_budget: std::cell::Cell<usize>,
    /// The first step that failed for a JavaScript frame left unnamed,
    /// and what failed while decoding the frame at hand.
    failed: Option<&'static str>,
    step: Option<&'static str>,
}

impl<'v, 'a> Decoder<'v, 'a> {
    pub fn new(v8: &'v V8, mem: &'a dyn Memory) -> Decoder<'v, 'a> {
        Decoder {
            v8,
            heap: Heap::new(mem),
            frames: HashMap::new(),
            carried: NameCache::default(),
            functions: HashMap::new(),
            scripts: HashMap::new(),
            positions: HashMap::new(),
            codes: Vec::new(),
            no_code: std::collections::HashSet::new(),
            stream_map: None,
            coding: [None; 2],
            table_taken: None,
            translation_cache: HashMap::new(),
            translation_budget: std::cell::Cell::new(super::translation::INSTRUCTION_BUDGET),
            failed: None,
            step: None,
        }
    }

    /// Use the names of earlier samples (see [`NameCache`]).
    pub fn carrying(mut self, cache: NameCache) -> Self {
        self.carried = cache;
        self
    }

    /// The names this decoder used and found, for the next sample.
    pub fn into_cache(self) -> NameCache {
        let mut cache = self.carried;
        if cache.0.len() > NAME_CACHE_MAX {
            cache.0.clear();
        }
        cache
    }

    pub(super) fn l(&self) -> &'v Layout {
        &self.v8.layout
    }

    /// Whether a tagged word points at a heap object.
    pub(super) fn is_heap(&self, tagged: u64) -> bool {
        tagged & self.l().heap_tag_mask == self.l().heap_tag && tagged > 4096
    }

    /// A tagged field of the object `obj` (tagged) at `offset`.
    pub(super) fn field(&mut self, obj: u64, offset: u64) -> Option<u64> {
        let at = obj.checked_sub(self.l().heap_tag)?.checked_add(offset)?;
        self.heap.word(at)
    }

    /// The instance type of the object `obj` (tagged).
    pub(super) fn type_of(&mut self, obj: u64) -> Option<u16> {
        if !self.is_heap(obj) {
            return None;
        }
        let map = self.field(obj, self.l().map)?;
        self.map_type(map)
    }

    /// A Smi field's value (x86_64 without pointer compression: the upper
    /// 32 bits).
    pub(super) fn smi_field(&mut self, obj: u64, offset: u64) -> Option<i64> {
        smi(self.field(obj, offset)?)
    }

    /// Decode one frame: `pc` is its pc (`exact` for the instruction
    /// itself, else a return address), `fp` its frame pointer; `word` reads
    /// its stack slots (from the copied window first).
    pub fn frame(
        &mut self,
        kind: CodeKind,
        (pc, exact): (u64, bool),
        fp: u64,
        word: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Option<JsFrame> {
        let l = self.l();
        let slot = |off: i64| fp.checked_add_signed(off);
        let marker = word(slot(l.fp_marker)?)?;
        if marker & 1 == 0 {
            // A typed frame: its marker is the type shifted left by one
            // (V8's StackFrame::TypeToMarker).
            let label = self.v8.frame_types.get(&((marker >> 1) as i64));
            return match label {
                Some(l) => Some(JsFrame::Internal(l.clone())),
                None if kind == CodeKind::Jit => Some(JsFrame::Unknown),
                None => None,
            };
        }
        let function = word(slot(l.fp_function)?)?;
        self.step = None;
        let decoded = self.function_frame(kind, (pc, exact), fp, function, word);
        let js_function = |d: &mut Self| {
            d.type_of(function)
                .is_some_and(|t| d.l().js_function.contains(&t))
        };
        let interpreted = |d: &mut Self, word: &mut dyn FnMut(u64) -> Option<u64>| {
            let bytecode = slot(l.fp_bytecode_array).and_then(word);
            bytecode.is_some_and(|b| d.type_of(b) == Some(l.bytecode_type))
        };
        match (decoded, kind) {
            (Some(js), _) => Some(JsFrame::Function(js)),
            (None, CodeKind::Jit) => {
                let step = if js_function(self) {
                    "the function's SharedFunctionInfo did not decode"
                } else {
                    "no JSFunction in the frame of compiled code"
                };
                self.unnamed(step);
                Some(JsFrame::Unknown)
            }
            // An interpreter frame (a function and its bytecode) that did
            // not decode: say so rather than show the interpreter.
            (None, CodeKind::Builtin) if js_function(self) && interpreted(self, word) => {
                self.unnamed("the function's SharedFunctionInfo did not decode");
                Some(JsFrame::Unknown)
            }
            // A builtin whose frame is not a JavaScript one: its symbol
            // says more than `<unknown>` would.
            (None, CodeKind::Builtin) => None,
        }
    }

    /// Note the first step that failed for a JavaScript frame left
    /// unnamed: `step`, or a more precise one noted while decoding it.
    fn unnamed(&mut self, step: &'static str) {
        let step = self.step.take().unwrap_or(step);
        self.failed.get_or_insert(step);
    }

    /// The first step that failed for a JavaScript frame left unnamed.
    pub fn failed_step(&self) -> Option<&'static str> {
        self.failed
    }

    /// A JavaScript function's frame, decoded once for each distinct set of
    /// the stack slots it is decoded from (a recursion repeats them).
    fn function_frame(
        &mut self,
        kind: CodeKind,
        (pc, exact): (u64, bool),
        fp: u64,
        function: u64,
        word: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Option<JsName> {
        let l = self.l();
        let mut slot = |off: Option<i64>| {
            off.and_then(|o| fp.checked_add_signed(o))
                .and_then(&mut *word)
        };
        let slots = FrameSlots {
            kind,
            pc,
            exact,
            function,
            receiver: slot(l.receiver.as_ref().map(|r| r.fp_receiver)),
            bytecode: slot(Some(l.fp_bytecode_array)),
            offset: slot(Some(l.fp_bytecode_offset)),
        };
        if let Some(known) = self.frames.get(&slots) {
            return known.clone();
        }
        if let Some((shared, name)) = self.carried.0.get(&slots).cloned()
            && self.still_function_of(function, shared)
        {
            self.frames.insert(slots, Some(name.clone()));
            return Some(name);
        }
        let decoded = self.decode_function_frame(&slots);
        if let Some(name) = &decoded
            && let Some(shared) = self.field(function, l.function_shared)
        {
            self.carried.0.insert(slots, (shared, name.clone()));
        }
        self.frames.insert(slots, decoded.clone());
        decoded
    }

    /// Whether `function` is (still) a JSFunction of `shared`.
    fn still_function_of(&mut self, function: u64, shared: u64) -> bool {
        let l = self.l();
        self.type_of(function)
            .is_some_and(|t| l.js_function.contains(&t))
            && self.field(function, l.function_shared) == Some(shared)
    }

    fn decode_function_frame(&mut self, slots: &FrameSlots) -> Option<JsName> {
        let l = self.l();
        let FrameSlots {
            kind,
            pc,
            exact,
            function,
            receiver,
            bytecode,
            offset,
        } = *slots;
        let ty = self.type_of(function)?;
        if !l.js_function.contains(&ty) {
            return None;
        }
        let shared = self.field(function, l.function_shared)?;
        let info = self.function_info(shared)?;
        let display = self.display_name(function, &info, receiver);
        // An interpreted or baseline frame holds its BytecodeArray.
        let bytecode = bytecode.filter(|&b| self.type_of(b) == Some(l.bytecode_type));
        // Compiled code: the Code the pc is in (a return address: the call
        // before it), see [`Decoder::code_at`].
        let code = match kind {
            CodeKind::Jit => self.code_at(function, pc - u64::from(!exact)),
            CodeKind::Builtin => None,
        };
        // Compiled code whose Code is not found: its tier is not known,
        // only that it is compiled.
        let tier = match (kind, bytecode, &code) {
            (CodeKind::Builtin, Some(_), _) => Some("interpreted"),
            (CodeKind::Builtin, None, _) => return None,
            (CodeKind::Jit, _, Some(c)) => Some(c.tier),
            (CodeKind::Jit, _, None) => None,
        };
        // The position being executed: interpreted and baseline frames by
        // their bytecode offset, maglev and optimized code by its pc.
        let executing = match (tier, bytecode, &code) {
            (Some("interpreted"), Some(array), _) => {
                self.interpreted_position(array, offset).into()
            }
            (Some("baseline"), Some(array), Some(c)) => self
                .baseline_bytecode_offset(c, array, pc)
                .and_then(|offset| self.bytecode_position(array, offset))
                .into(),
            (Some(compiled @ ("maglev" | "optimized")), _, Some(c)) => {
                self.compiled_position(c, (pc, exact), compiled, shared)
            }
            _ => Executing::default(),
        };
        Some(self.named(display, &info, executing.position, tier, executing.inlined))
    }

    /// A function's name as V8's stack traces show it: with the receiver's
    /// type, and for a method with no name of its own, the property of the
    /// receiver (or its prototypes) holding it.
    fn display_name(
        &mut self,
        function: u64,
        info: &FunctionInfo,
        receiver: Option<u64>,
    ) -> String {
        let type_name = receiver.and_then(|r| self.receiver_type(r));
        // A function whose name was given as the program ran has it in its
        // own `name` property (empty or not), which V8's debugger goes by.
        let own = match info.name {
            None => self.own_name(function),
            Some(_) => None,
        };
        let (name, inferred) = match &own {
            Some(n) => ((!n.is_empty()).then_some(n.as_str()), None),
            None => (info.name.as_deref(), info.inferred.as_deref()),
        };
        let method = match (&type_name, name, inferred, &own, receiver) {
            (Some(_), None, None, None, Some(r)) => self.method_name(r, function),
            _ => None,
        };
        call_name(type_name.as_deref(), name.or(method.as_deref()), inferred)
    }

    /// Where an interpreted frame is: the bytecode offset it saved (a Smi,
    /// counted from the tagged array), as a source position.
    fn interpreted_position(&mut self, array: u64, offset: Option<u64>) -> Option<u32> {
        let l = self.l();
        let header = (l.bytecode_data - l.heap_tag) as i64;
        let offset = u64::try_from(smi(offset?)? - header).ok()?;
        self.bytecode_position(array, offset)
    }

    /// Where maglev or optimized code `c` is executing at `pc` (`exact`, or
    /// a return address), and the functions inlined there: at a call, the
    /// frames V8 would rebuild, read from the call's deoptimization entry's
    /// translation, are the debugger's; the position table is the fallback.
    fn compiled_position(
        &mut self,
        c: &CodeAt,
        (pc, exact): (u64, bool),
        compiled: &'static str,
        shared: u64,
    ) -> Executing {
        let call = self.call_site(c, pc - c.start, exact, compiled);
        let entry = call.entry.and_then(|index| self.entry_of(c, index));
        let found = match entry.and_then(|(_, start)| self.translated(c, start, shared)) {
            Some(found) => Some(found),
            None => {
                // Maglev's entries were never matched to the call here: the
                // table's positions as they are.
                let called = entry
                    .filter(|_| compiled == "optimized")
                    .map(|(offset, _)| offset);
                self.table_positions(c, call.offset, exact, called, shared)
            }
        };
        let Some(found) = found else {
            return Executing::default();
        };
        let inlined = found
            .inlined
            .into_iter()
            .map(|f| self.inlined_frame(f.shared, f.position, compiled))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Executing {
            position: Some(found.position),
            inlined,
        }
    }

    /// The call compiled code `c` is at, from the offset of its pc (a
    /// return address unless `exact`): its deoptimization entry, found by
    /// the call's return in optimized code, through the safepoint table in
    /// maglev's (whose entries keep their exits' pcs). A return V8 pointed
    /// at a lazy deoptimization exit is mapped back to the call's own.
    fn call_site(&mut self, c: &CodeAt, offset: u64, exact: bool, compiled: &str) -> CallSite {
        if exact {
            return CallSite {
                offset,
                entry: None,
            };
        }
        if compiled == "maglev" {
            return match self.maglev_safepoint(c, offset) {
                Some((call, index)) => CallSite {
                    offset: call,
                    entry: Some(index),
                },
                None => CallSite {
                    offset,
                    entry: None,
                },
            };
        }
        let offset = self.lazy_deopt_call(c, offset).unwrap_or(offset);
        CallSite {
            offset,
            entry: self.lazy_entry(c, offset),
        }
    }

    /// A frame's name put together: where it is executing, else where its
    /// function starts.
    fn named(
        &mut self,
        function: String,
        info: &FunctionInfo,
        executing: Option<u32>,
        tier: Option<&'static str>,
        inlined: Vec<JsName>,
    ) -> JsName {
        let (position, at_start) = match (executing, info.start) {
            (Some(p), _) => (Some(p), false),
            (None, Some(s)) => (Some(s), true),
            (None, None) => (None, false),
        };
        let SourceLocation {
            script,
            line,
            column,
        } = self.located(info.script, position);
        JsName {
            function,
            script,
            line,
            column,
            at_start: line.is_some() && at_start,
            tier,
            inlined,
        }
    }

    /// The position of a call in `code`, and the functions inlined there
    /// with theirs (innermost first), from the call's deoptimization
    /// translation (at `start`); `None` unless its outermost frame is
    /// `shared`'s and every position is found.
    fn translated(&mut self, code: &CodeAt, start: usize, shared: u64) -> Option<CodePositions> {
        let frames = self.translated_frames(code, start)?;
        if frames.first()?.shared != shared {
            return None;
        }
        let mut positions = frames
            .into_iter()
            .map(|f| {
                let array = self.sfi_bytecode(f.shared)?;
                Some(InlinedFunction {
                    shared: f.shared,
                    position: self.bytecode_position(array, f.bytecode_offset)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let outer = positions.remove(0);
        positions.reverse();
        Some(CodePositions {
            position: outer.position,
            inlined: positions,
        })
    }

    /// The position at `offset` in maglev or optimized `code` and the
    /// functions inlined there (innermost first), from the code's source
    /// position table (a return address is looked up one byte back, in the
    /// call). At a call, V8 keeps the bytecode being executed by the
    /// innermost function (`called`: the debugger's position), the one the
    /// table names: taken only where the table names one.
    fn table_positions(
        &mut self,
        code: &CodeAt,
        offset: u64,
        exact: bool,
        called: Option<u64>,
        shared: u64,
    ) -> Option<CodePositions> {
        let at = offset - u64::from(!exact && offset > 0);
        let mut found = self.code_positions(code, at)?;
        if let Some(offset) = called {
            let innermost = found.inlined.first().map_or(shared, |f| f.shared);
            if let Some(p) = self
                .sfi_bytecode(innermost)
                .and_then(|array| self.bytecode_position(array, offset))
            {
                match found.inlined.first_mut() {
                    Some(call) => call.position = p,
                    None => found.position = p,
                }
            }
        }
        Some(found)
    }

    pub(super) fn function_info(&mut self, shared: u64) -> Option<FunctionInfo> {
        if let Some(known) = self.functions.get(&shared) {
            return known.clone();
        }
        let info = self.read_function_info(shared);
        self.functions.insert(shared, info.clone());
        info
    }

    fn read_function_info(&mut self, shared: u64) -> Option<FunctionInfo> {
        let l = self.l();
        if self.type_of(shared)? != l.sfi_type {
            return None;
        }
        let name_or_scope = self.field(shared, l.sfi_name)?;
        let mut name = None;
        let mut inferred = None;
        let mut start = None;
        if self.type_of(name_or_scope) == Some(l.scope_info_type) {
            let Some(s) = self.scope_info(name_or_scope) else {
                self.step = Some("the function's ScopeInfo did not decode");
                return None;
            };
            name = s.name;
            inferred = s.inferred;
            start = s.start;
        } else if let Some(s) = self.string(name_or_scope, NAME_MAX) {
            name = Some(s);
        } else if smi(name_or_scope).is_none() {
            // Neither a String, a ScopeInfo, nor the empty-name Smi.
            return None;
        }
        // A function not compiled yet keeps its inferred name and start in
        // its UncompiledData.
        if inferred.is_none() || start.is_none() {
            let mut uncompiled = None;
            for &off in &l.sfi_function_data {
                let data = self.field(shared, off)?;
                if self
                    .type_of(data)
                    .is_some_and(|t| l.uncompiled_types.contains(&t))
                {
                    uncompiled = Some(data);
                    break;
                }
            }
            if let Some(data) = uncompiled {
                if inferred.is_none()
                    && let Some(o) = l.uncompiled_inferred_name
                    && let Some(n) = self.field(data, o)
                {
                    inferred = self.string(n, NAME_MAX);
                }
                if start.is_none()
                    && let Some(o) = l.uncompiled_start
                    && let Some(at) = data.checked_sub(l.heap_tag).and_then(|d| d.checked_add(o))
                {
                    start = self.heap.i32(at).and_then(|v| u32::try_from(v).ok());
                }
            }
        }
        let name = name.filter(|n| !n.is_empty());
        let inferred = inferred.filter(|n| !n.is_empty());
        let script_field = self.field(shared, l.sfi_script)?;
        let script = match self.type_of(script_field) {
            Some(t) if t == l.script_type => Some(script_field),
            // V8 11 keeps a function's DebugInfo in place of its Script
            // while a debugger is attached, and the Script in the
            // DebugInfo: the one of its first fields that is a Script.
            Some(t) if Some(t) == l.debug_info_type => (1..=DEBUG_INFO_FIELDS).find_map(|i| {
                let f = self.field(script_field, 8 * i)?;
                (self.type_of(f) == Some(l.script_type)).then_some(f)
            }),
            _ => None,
        };
        Some(FunctionInfo {
            name,
            inferred,
            script,
            start,
        })
    }

    /// The compiled code `pc` is in: found from the pc itself where the
    /// metadata names the InstructionStream (see [`Decoder::code_of_pc`]),
    /// else (or when that finds none) the function's current Code if `pc`
    /// is in it, else, on V8 11, from the pc.
    fn code_at(&mut self, function: u64, pc: u64) -> Option<CodeAt> {
        let c = self.l().code.as_ref()?;
        let function_code = c.function_code;
        if c.instruction_stream.is_some()
            && let Some(code) = self.code_of_pc(pc)
            && let Some(at) = self.code_info(code, pc)
        {
            return Some(at);
        }
        if let Some(at) = function_code
            .and_then(|f| self.field(function, f))
            .and_then(|code| self.code_info(code, pc))
        {
            return Some(at);
        }
        // V8 11: code the function no longer runs (entered by on-stack
        // replacement for a hot loop, or left since) is found from the pc.
        if c.instruction_stream.is_none() {
            let code = self.code_of_pc(pc)?;
            return self.code_info(code, pc);
        }
        None
    }

    /// A Code object's kind and table, if `pc` is in its instructions.
    fn code_info(&mut self, code: u64, pc: u64) -> Option<CodeAt> {
        let c = self.l().code.as_ref()?;
        if self.type_of(code)? != c.code_type {
            return None;
        }
        let base = code.checked_sub(self.l().heap_tag)?;
        let start = self.heap.word(base.checked_add(c.instruction_start)?)?;
        let size = self.heap.i32(base.checked_add(c.instruction_size)?)?;
        let end = start.checked_add(u64::try_from(size).ok()?)?;
        if !(start..end).contains(&pc) {
            return None;
        }
        let flags = self.heap.i32(base.checked_add(c.flags)?)? as u32;
        let tier = match flags & c.kind_mask {
            k if k == c.baseline => "baseline",
            k if k == c.maglev => "maglev",
            k if k == c.turbofan => "optimized",
            _ => return None,
        };
        Some(CodeAt {
            code,
            start,
            end,
            tier,
            table: self.field(code, c.table)?,
        })
    }

    /// The Code whose instructions hold `pc`, from the pc alone: compiled
    /// code lies in an InstructionStream, a 32-byte header (its map, then
    /// its Code) right before instructions that start 64-byte aligned.
    /// Stepping back from the pc, the first start whose header has the
    /// InstructionStream map and a Code pointing back at that stream, and
    /// whose instructions hold the pc, is it (V8 11's is told by the Code
    /// word before the instructions, see [`Decoder::code_for_start`]).
    /// This needs neither the
    /// function (its Code may since have changed: on-stack replacement,
    /// deoptimization) nor V8's dispatch table.
    fn code_of_pc(&mut self, pc: u64) -> Option<u64> {
        if let Some(known) = self.codes.iter().find(|r| (r.start..r.end).contains(&pc)) {
            return Some(known.code);
        }
        if self.no_code.contains(&pc) {
            return None;
        }
        let found = self.search_code_of_pc(pc);
        match found {
            Some(range) => self.codes.push(range),
            None => {
                self.no_code.insert(pc);
            }
        }
        found.map(|r| r.code)
    }

    /// [`Decoder::code_of_pc`]'s search. Stepping back from the pc, the
    /// first start with a Code for it (see [`Decoder::code_for_start`]) is
    /// the code's: its instructions hold the pc, or no code does.
    fn search_code_of_pc(&mut self, pc: u64) -> Option<CodeRange> {
        let c = self.l().code.as_ref()?;
        let tag = self.l().heap_tag;
        let mut start = pc & !(CODE_ALIGNMENT - 1);
        for _ in 0..MAX_CODE_STEPS {
            if let Some(code) = self.code_for_start(start)? {
                let base = code - tag;
                let begins = self.heap.word(base.checked_add(c.instruction_start)?)?;
                let size = self.heap.i32(base.checked_add(c.instruction_size)?)?;
                let end = begins.checked_add(u64::try_from(size).ok()?)?;
                return (begins == start && (start..end).contains(&pc)).then_some(CodeRange {
                    start,
                    end,
                    code,
                });
            }
            start = start.checked_sub(CODE_ALIGNMENT)?;
        }
        None
    }

    /// The Code whose instructions would start at `start`, from what lies
    /// right before it: an InstructionStream header (its map, then its
    /// Code, pointing back at the stream) where the metadata names the
    /// InstructionStream; on V8 11, a Code word whose instruction start is
    /// `start`. `None` when a word there cannot be read (no code starts
    /// below such a gap), `Some(None)` when no code starts there.
    fn code_for_start(&mut self, start: u64) -> Option<Option<u64>> {
        let c = self.l().code.as_ref()?;
        let tag = self.l().heap_tag;
        let Some((stream_field, stream_type)) = c.instruction_stream else {
            let code = self.heap.word(start.checked_sub(8)?)?;
            let is_code = self.is_heap(code)
                && self.type_of(code) == Some(c.code_type)
                && self.heap.word(code - tag + c.instruction_start) == Some(start);
            return Some(is_code.then_some(code));
        };
        let header = start.checked_sub(ISTREAM_HEADER)?;
        let map = self.heap.word(header)?;
        let is_stream = match self.stream_map {
            Some(known) => map == known,
            None => self.map_type(map) == Some(stream_type),
        };
        if is_stream
            && let Some(code) = self.heap.word(header + 8)
            && self.type_of(code) == Some(c.code_type)
            && self.field(code, stream_field) == Some(header + tag)
        {
            self.stream_map = Some(map);
            return Some(Some(code));
        }
        Some(None)
    }

    /// The instance type a map (tagged) gives its objects.
    fn map_type(&mut self, map: u64) -> Option<u16> {
        if !self.is_heap(map) {
            return None;
        }
        let at = map
            .checked_sub(self.l().heap_tag)?
            .checked_add(self.l().instance_type)?;
        self.heap.u16(at)
    }

    /// A byte array's bytes (ByteArray or TrustedByteArray), bounded.
    pub(super) fn byte_array(&mut self, array: u64) -> Option<Vec<u8>> {
        let l = self.l();
        if !self
            .type_of(array)
            .is_some_and(|t| l.byte_array_types.contains(&t))
        {
            return None;
        }
        let len = usize::try_from(self.smi_field(array, l.array_length)?).ok()?;
        if len == 0 || len > TABLE_MAX {
            return None;
        }
        let mut bytes = vec![0u8; len];
        // A byte array's bytes follow its map and length.
        let base = array
            .checked_sub(l.heap_tag)?
            .checked_add(l.array_length + 8)?;
        self.heap.read(base, &mut bytes)?;
        Some(bytes)
    }

    /// A function's BytecodeArray, from its SharedFunctionInfo: in its
    /// function data (see [`Layout::sfi_function_data`]), directly or
    /// through its baseline Code.
    fn sfi_bytecode(&mut self, shared: u64) -> Option<u64> {
        let l = self.l();
        for &off in &l.sfi_function_data {
            let Some(data) = self.field(shared, off) else {
                continue;
            };
            match self.type_of(data) {
                Some(t) if t == l.bytecode_type => return Some(data),
                Some(t) if l.code.as_ref().is_some_and(|c| c.code_type == t) => {
                    let c = l.code.as_ref()?;
                    let inner = self.field(data, c.deopt_data)?;
                    if self.type_of(inner) == Some(l.bytecode_type) {
                        return Some(inner);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// An inlined function as a frame: its name (no receiver is known), its
    /// script and where in it it runs.
    fn inlined_frame(&mut self, shared: u64, position: u32, tier: &'static str) -> Option<JsName> {
        let info = self.function_info(shared)?;
        let SourceLocation {
            script,
            line,
            column,
        } = self.located(info.script, Some(position));
        Some(JsName {
            function: call_name(None, info.name.as_deref(), info.inferred.as_deref()),
            script,
            line,
            column,
            at_start: false,
            tier: Some(tier),
            inlined: Vec::new(),
        })
    }

    /// The bytecode a baseline code pc is in, from the Code's bytecode
    /// offset table.
    fn baseline_bytecode_offset(&mut self, code: &CodeAt, array: u64, pc: u64) -> Option<u64> {
        let sizes = self.l().bytecode_sizes.as_deref()?;
        let table = self.byte_array(code.table)?;
        let l = self.l();
        let len = usize::try_from(self.smi_field(array, l.array_length)?).ok()?;
        if len > TABLE_MAX {
            return None;
        }
        let mut bytecodes = vec![0u8; len];
        let base = array
            .checked_sub(l.heap_tag)?
            .checked_add(l.bytecode_data)?;
        self.heap.read(base, &mut bytecodes)?;
        baseline_offset_at(&table, &bytecodes, sizes, pc.checked_sub(code.start)?)
    }
}

/// A function's name as node 20's stack traces give it: a method call
/// (a receiver with a type) reads `Type.name` unless the name already
/// starts with the type, and `Type.<anonymous>` without a name; a name V8
/// inferred (`holder.method` for `holder.method = function () {}`) reads
/// as it is.
fn call_name(type_name: Option<&str>, name: Option<&str>, inferred: Option<&str>) -> String {
    match (type_name, name, inferred) {
        (Some(t), Some(n), _) if !n.starts_with(t) => format!("{t}.{n}"),
        (_, Some(n), _) | (_, None, Some(n)) => n.to_owned(),
        (Some(t), None, None) => format!("{t}.<anonymous>"),
        (None, None, None) => "<anonymous>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_as_v8_prints_them() {
        // As node 20 prints them (checked by hand beside `new Error().stack`).
        assert_eq!(call_name(Some("Shape"), Some("area"), None), "Shape.area");
        assert_eq!(
            call_name(Some("Object"), Some("named"), None),
            "Object.named"
        );
        assert_eq!(
            call_name(Some("Module"), None, Some("Module._compile")),
            "Module._compile"
        );
        assert_eq!(call_name(Some("Foo"), None, Some("foo.f")), "foo.f");
        assert_eq!(call_name(Some("Object"), None, None), "Object.<anonymous>");
        assert_eq!(call_name(Some("Shape"), Some("Shape"), None), "Shape");
        assert_eq!(call_name(None, Some("plain"), None), "plain");
        assert_eq!(call_name(None, None, None), "<anonymous>");
    }
}
