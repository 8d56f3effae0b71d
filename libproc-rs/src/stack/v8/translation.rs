//! Deoptimization translations: for each call in maglev or optimized code,
//! the interpreter frames V8 would rebuild there, outermost first, each
//! with its function and bytecode offset. V8's debugger and its stack
//! traces read a compiled frame's functions and positions from them, so
//! npstack does too; the code's source position table, which says the
//! same less exactly, is the fallback.
//!
//! A translation is a BEGIN instruction (how far back the translation it
//! reuses starts, how many frames, how many of them JavaScript), then
//! instructions: an opcode byte and operands, each a VLQ (7 bits a byte,
//! low bits first, the top bit set on all but the last; signed ones keep
//! the sign in bit 0). A frame instruction starts each frame; value
//! instructions after it say where each register of the frame is. An
//! opcode byte past the last opcode, or MATCH_PREVIOUS_TRANSLATION, says
//! that the next so many instructions are those at the same places in
//! the reused translation.
//!
//! V8 numbers the opcodes by their place in a list that changes between
//! releases and is not in the postmortem metadata. So the lists V8 has
//! had are candidates, and one is taken for a Code only when every one of
//! its translations reads through with it: a BEGIN first, as many frames
//! as it announces, the innermost at the bytecode offset its
//! deoptimization entry keeps, and functions that are SharedFunctionInfos.

use std::cell::Cell;
use std::rc::Rc;

use super::decoder::{CodeAt, Decoder};

/// What an opcode starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Begin,
    /// An interpreter frame: its bytecode offset, its function's literal,
    /// then the rest.
    Interpreted,
    /// A JavaScript builtin continuation frame (counted among the
    /// JavaScript frames, but not one with a bytecode position).
    JsContinuation,
    /// Any other frame.
    Frame,
    Value,
    MatchPrevious,
}

/// An opcode list: what each opcode starts and its operand count, in
/// the order of the opcodes. Only these matter for reading: two lists
/// that differ in the names of opcodes alike read the same.
pub(super) type Table = Vec<(Op, u8)>;

/// A Code's translations, as found once per Code.
#[derive(Debug, Clone)]
pub(super) struct Translations {
    bytes: Rc<Vec<u8>>,
    /// The index of the candidate opcode list they read with.
    table: usize,
    /// The Code's deoptimization literals (a tagged array).
    literals: u64,
}

/// A JavaScript frame V8 rebuilds for a call: its function (a
/// SharedFunctionInfo) and bytecode offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RebuiltFrame {
    pub(super) shared: u64,
    pub(super) bytecode_offset: u64,
}

/// One JavaScript frame a translation rebuilds: an interpreter frame, or
/// a builtin's continuation (no bytecode position of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Translated {
    pub(super) bytecode_offset: i64,
    /// Its SharedFunctionInfo's index among the deoptimization literals.
    pub(super) literal: u64,
    pub(super) continuation: bool,
}

/// The lists V8 has had since V8 11 (node 20), and the ones between and
/// after that its changes so far suggest. The lists of the official node
/// builds come first: V8 11.3's, 13.6's (also 14.1's and 14.6's) and
/// 12.4's, as their operand count arrays read.
pub(super) fn candidate_tables() -> &'static [Table] {
    static TABLES: std::sync::OnceLock<Vec<Table>> = std::sync::OnceLock::new();
    TABLES.get_or_init(all_tables)
}

fn all_tables() -> Vec<Table> {
    const V8_13: Shape = Shape {
        bytecode_array_operand: true,
        wasm_inlined: true,
        liftoff: true,
        extra_arguments_operands: 3,
        rest_length: true,
        string_concat: true,
        one_operand_values: 20,
    };
    const V8_12: Shape = Shape {
        bytecode_array_operand: false,
        wasm_inlined: true,
        liftoff: false,
        extra_arguments_operands: 2,
        rest_length: false,
        string_concat: false,
        one_operand_values: 18,
    };
    let mut tables = vec![by_name(), frames_first(&V8_13), frames_first(&V8_12)];
    for bits in 0u32..1 << 6 {
        let has = |n: u32| bits & (1 << n) != 0;
        for one_operand_values in 17..=23 {
            let t = frames_first(&Shape {
                bytecode_array_operand: has(0),
                wasm_inlined: has(1),
                liftoff: has(2),
                extra_arguments_operands: 2 + u8::from(has(3)),
                rest_length: has(4),
                string_concat: has(5),
                one_operand_values,
            });
            if !tables.contains(&t) {
                tables.push(t);
            }
        }
    }
    tables
}

/// The list as V8 11 kept it: in alphabetical order.
fn by_name() -> Table {
    use Op::*;
    let mut t = vec![
        (Value, 1), // ARGUMENTS_ELEMENTS
        (Value, 0), // ARGUMENTS_LENGTH
        (Begin, 3), // BEGIN_WITHOUT_FEEDBACK
        (Begin, 3), // BEGIN_WITH_FEEDBACK
        (Value, 1), // BOOL_REGISTER
        (Value, 1), // BOOL_STACK_SLOT
        (Frame, 3), // BUILTIN_CONTINUATION_FRAME
        (Value, 1), // CAPTURED_OBJECT
        (Frame, 3), // CONSTRUCT_STUB_FRAME
    ];
    t.extend([(Value, 1); 5]); // DOUBLE_REGISTER .. FLOAT_STACK_SLOT
    t.push((Frame, 2)); // INLINED_EXTRA_ARGUMENTS
    t.extend([(Value, 1); 8]); // INT32_REGISTER .. UNSIGNED_BIGINT64_STACK_SLOT
    t.extend([
        (Interpreted, 5),    // INTERPRETED_FRAME_WITH_RETURN
        (Interpreted, 3),    // INTERPRETED_FRAME_WITHOUT_RETURN
        (JsContinuation, 3), // JAVA_SCRIPT_BUILTIN_CONTINUATION_FRAME
        (JsContinuation, 3), // ... WITH_CATCH_FRAME
        (Frame, 4),          // JS_TO_WASM_BUILTIN_CONTINUATION_FRAME
        (Value, 0),          // OPTIMIZED_OUT
    ]);
    t.extend([(Value, 1); 5]); // LITERAL, REGISTER, STACK_SLOT, UINT32_*
    t.push((Value, 2)); // UPDATE_FEEDBACK
    t.push((MatchPrevious, 1));
    t
}

/// What a frames-first list holds beyond what all of them do.
struct Shape {
    /// Interpreter frames also name their BytecodeArray.
    bytecode_array_operand: bool,
    /// Frames of wasm code inlined into JavaScript, and of Liftoff code.
    wasm_inlined: bool,
    liftoff: bool,
    /// INLINED_EXTRA_ARGUMENTS' operands: a function and a height, then
    /// also a parameter count.
    extra_arguments_operands: u8,
    rest_length: bool,
    string_concat: bool,
    /// The one-operand value opcodes from BOOL_REGISTER to
    /// UNSIGNED_BIGINT64_STACK_SLOT (the registers and stack slots of
    /// each kind of value).
    one_operand_values: usize,
}

/// The list from V8 12 on: JavaScript frames, other frames, then values.
fn frames_first(x: &Shape) -> Table {
    use Op::*;
    let with = u8::from(x.bytecode_array_operand);
    let mut t = vec![
        (Interpreted, 5 + with), // INTERPRETED_FRAME_WITH_RETURN
        (Interpreted, 3 + with), // INTERPRETED_FRAME_WITHOUT_RETURN
        (JsContinuation, 3),     // JAVASCRIPT_BUILTIN_CONTINUATION_FRAME
        (JsContinuation, 3),     // ... WITH_CATCH_FRAME
        (Frame, 2),              // CONSTRUCT_CREATE_STUB_FRAME
        (Frame, 1),              // CONSTRUCT_INVOKE_STUB_FRAME
        (Frame, 3),              // BUILTIN_CONTINUATION_FRAME
        (Frame, 4),              // JS_TO_WASM_BUILTIN_CONTINUATION_FRAME
    ];
    if x.wasm_inlined {
        t.push((Frame, 3));
    }
    if x.liftoff {
        t.push((Frame, 3));
    }
    t.push((Frame, x.extra_arguments_operands)); // INLINED_EXTRA_ARGUMENTS
    t.extend([(Value, 1), (Value, 0)]); // ARGUMENTS_ELEMENTS, _LENGTH
    if x.rest_length {
        t.push((Value, 0));
    }
    t.extend([(Begin, 3), (Begin, 3)]);
    // BOOL_REGISTER, BOOL_STACK_SLOT, CAPTURED_OBJECT, then STRING_CONCAT
    // where there is one.
    t.extend([(Value, 1); 3]);
    if x.string_concat {
        t.push((Value, 0));
    }
    t.extend(std::iter::repeat_n(
        (Value, 1),
        x.one_operand_values.saturating_sub(3),
    ));
    t.push((Value, 0)); // OPTIMIZED_OUT
    t.extend([(Value, 1); 5]); // LITERAL, REGISTER, TAGGED_STACK_SLOT, UINT32_*
    t.push((Value, 2)); // UPDATE_FEEDBACK
    t.push((MatchPrevious, 1));
    t
}

/// Read one VLQ, unsigned.
fn uvlq(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Read one VLQ, signed (sign in bit 0, then the magnitude).
fn svlq(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let v = uvlq(bytes, at)?;
    let magnitude = (v >> 1) as i64;
    Some(if v & 1 == 1 { -magnitude } else { magnitude })
}

/// One instruction: its opcode and its operands (up to six).
#[derive(Debug, Clone, Copy)]
struct Instruction {
    op: Op,
    operands: [i64; 6],
}

/// A cursor over instructions, taking matched ones from the translation
/// reused.
struct Reader<'b> {
    bytes: &'b [u8],
    table: &'b Table,
    at: usize,
    /// Where the reused translation's next instruction is, if any.
    basis: Option<usize>,
    /// How many instructions still come from the reused translation.
    matched: u64,
}

impl Reader<'_> {
    /// The instruction at `*at`, read raw (no matching).
    fn raw(&self, at: &mut usize) -> Option<Instruction> {
        let byte = *self.bytes.get(*at)?;
        *at += 1;
        let &(op, count) = self.table.get(usize::from(byte))?;
        let mut operands = [0; 6];
        for slot in operands.iter_mut().take(usize::from(count)) {
            *slot = svlq(self.bytes, at)?;
        }
        Some(Instruction { op, operands })
    }

    fn next(&mut self) -> Option<Instruction> {
        if self.matched == 0 {
            let byte = *self.bytes.get(self.at)?;
            let count = self.table.len();
            if usize::from(byte) >= count {
                self.at += 1;
                self.matched = u64::from(byte) - count as u64;
            } else if self.table[usize::from(byte)].0 == Op::MatchPrevious {
                self.at += 1;
                self.matched = uvlq(self.bytes, &mut self.at)?;
            }
        }
        if self.matched > 0 {
            self.matched -= 1;
            let mut basis = self.basis?;
            let i = self.raw(&mut basis)?;
            self.basis = Some(basis);
            return (!matches!(i.op, Op::Begin | Op::MatchPrevious)).then_some(i);
        }
        let mut at = self.at;
        let i = self.raw(&mut at)?;
        self.at = at;
        if let Some(mut basis) = self.basis {
            // The reused translation's instruction at this place, passed.
            self.basis = self.raw(&mut basis).map(|_| basis);
        }
        (!matches!(i.op, Op::Begin | Op::MatchPrevious)).then_some(i)
    }
}

/// Most instructions read for one translation, and for all of one
/// thread's (what a core made to read long costs at most).
const MAX_INSTRUCTIONS: usize = 1 << 15;
pub(super) const INSTRUCTION_BUDGET: usize = 1 << 23;
/// How many of a Code's deoptimization entries must read through for an
/// opcode list to be taken.
const CHECKED_ENTRIES: u64 = 64;

/// The JavaScript frames of the translation at `start`, outermost first,
/// or `None` when it does not read through with `table` (or `budget`,
/// the instructions left to read, runs out).
pub(super) fn frames(
    bytes: &[u8],
    start: usize,
    table: &Table,
    budget: &Cell<usize>,
) -> Option<Vec<Translated>> {
    let mut at = start;
    let reader = Reader {
        bytes,
        table,
        at: 0,
        basis: None,
        matched: 0,
    };
    let begin = reader.raw(&mut at)?;
    if begin.op != Op::Begin {
        return None;
    }
    // Its first operand, how far back the reused translation starts, is
    // unsigned.
    let mut first = start + 1;
    let lookback = uvlq(bytes, &mut first)?;
    let (frame_count, js_count) = (begin.operands[1], begin.operands[2]);
    if !(1..=256).contains(&frame_count) || !(1..=frame_count).contains(&js_count) {
        return None;
    }
    let basis = match lookback {
        0 => None,
        back => {
            let mut b = start.checked_sub(usize::try_from(back).ok()?)?;
            (reader.raw(&mut b)?.op == Op::Begin).then_some(b)?;
            Some(b)
        }
    };
    let mut reader = Reader {
        at,
        basis,
        ..reader
    };
    let (mut seen, mut js) = (0, Vec::new());
    for _ in 0..MAX_INSTRUCTIONS {
        budget.set(budget.get().checked_sub(1)?);
        let i = reader.next()?;
        match i.op {
            Op::Interpreted | Op::JsContinuation => js.push(Translated {
                bytecode_offset: i.operands[0],
                literal: u64::try_from(i.operands[1]).ok()?,
                continuation: i.op == Op::JsContinuation,
            }),
            Op::Frame => {}
            _ => continue,
        }
        seen += 1;
        if seen == frame_count {
            return (js.len() as i64 == js_count).then_some(js);
        }
    }
    None
}

impl Decoder<'_, '_> {
    /// The functions and bytecode offsets V8 rebuilds for a call of
    /// `code`, from the translation starting at `start` (its deoptimization
    /// entry's), outermost first. `None` when no opcode list reads the
    /// code's translations.
    pub(super) fn translated_frames(
        &mut self,
        code: &CodeAt,
        start: usize,
    ) -> Option<Vec<RebuiltFrame>> {
        let Translations {
            bytes,
            table,
            literals,
        } = self.translations(code)?;
        let frames = frames(
            &bytes,
            start,
            &candidate_tables()[table],
            &self.translation_budget,
        )?;
        if frames.iter().any(|f| f.continuation) {
            return None;
        }
        frames
            .iter()
            .map(|f| {
                Some(RebuiltFrame {
                    shared: self.literal_sfi(literals, f.literal)?,
                    bytecode_offset: u64::try_from(f.bytecode_offset).ok()?,
                })
            })
            .collect()
    }

    /// A SharedFunctionInfo among a Code's deoptimization literals.
    fn literal_sfi(&mut self, literals: u64, index: u64) -> Option<u64> {
        let l = self.l();
        let length = u64::try_from(self.smi_field(literals, l.array_length)?).ok()?;
        if index >= length {
            return None;
        }
        // A weak reference: clear its weak bit.
        let sfi = self.field(literals, l.array_data + 8 * index)? & !2;
        (self.type_of(sfi) == Some(l.sfi_type)).then_some(sfi)
    }

    /// A Code's translations, the opcode list they read with and its
    /// deoptimization literals; found once per Code.
    fn translations(&mut self, code: &CodeAt) -> Option<Translations> {
        if let Some(known) = self.translation_cache.get(&code.code) {
            return known.clone();
        }
        let found = self.read_translations(code);
        self.translation_cache.insert(code.code, found.clone());
        found
    }

    fn read_translations(&mut self, code: &CodeAt) -> Option<Translations> {
        let c = self.l().code.as_ref()?;
        let literals_at = c.deopt?.literals;
        let data = self.field(code.code, c.deopt_data)?;
        let l = self.l();
        let element = |i: u64| l.array_data + 8 * i;
        // The translations are the deoptimization data's first element.
        let array = self.field(data, element(0))?;
        let bytes = Rc::new(self.byte_array(array)?);
        let literals = self.field(data, element(literals_at))?;
        let entries = self.deopt_entries(code, CHECKED_ENTRIES)?;
        // The list last taken first, then the others in order.
        let order = std::iter::once(self.table_taken)
            .flatten()
            .chain(0..candidate_tables().len());
        for t in order {
            if self.reads_with(&bytes, &entries, t, literals) {
                self.table_taken = Some(t);
                return Some(Translations {
                    bytes,
                    table: t,
                    literals,
                });
            }
        }
        None
    }

    /// Whether every checked translation reads with opcode list `table`: as
    /// many frames as it says, the innermost at its entry's bytecode offset,
    /// and (in the first 8) functions that are SharedFunctionInfos.
    fn reads_with(
        &mut self,
        bytes: &[u8],
        entries: &[(i64, usize)],
        table: usize,
        literals: u64,
    ) -> bool {
        let table = &candidate_tables()[table];
        for (i, &(offset, start)) in entries.iter().enumerate() {
            let Some(js) = frames(bytes, start, table, &self.translation_budget) else {
                return false;
            };
            if !js
                .last()
                .is_some_and(|f| f.continuation || f.bytecode_offset == offset)
            {
                return false;
            }
            if i < 8
                && !js
                    .iter()
                    .all(|f| f.continuation || self.literal_sfi(literals, f.literal).is_some())
            {
                return false;
            }
        }
        true
    }
}

/// A maglev safepoint table's layout, as its header gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SafepointLayout {
    length: usize,
    pc: usize,
    deopt_index: usize,
    registers: usize,
    /// Whether each entry holds the count of registers it pushed (V8 14.6
    /// keeps those counts in an array after the entries).
    pushed_in_entry: bool,
}

impl SafepointLayout {
    /// The header's entry configuration: whether entries have deoptimization
    /// data (bit 0), then the byte sizes of the tagged register indexes,
    /// of pcs and of deoptimization indices, 3 bits each; V8 14.6 sets bit
    /// 10 where the pushed register counts are out of the entries.
    fn new(length: u32, config: u32, pushed_in_entry: bool) -> Option<SafepointLayout> {
        let field = |at: u32| ((config >> at) & 7) as usize;
        let l = SafepointLayout {
            length: usize::try_from(length).ok()?,
            registers: field(1),
            pc: field(4),
            deopt_index: field(7),
            pushed_in_entry,
        };
        let sizes_fit = (1..=4).contains(&l.pc) && (1..=4).contains(&l.deopt_index);
        let high = if pushed_in_entry { 0 } else { 1 };
        (config & 1 == 1
            && sizes_fit
            && config >> 10 == high
            && l.registers <= 4
            && l.length <= 1 << 16)
            .then_some(l)
    }

    /// An entry: its pc, deoptimization index and trampoline (V8 writes
    /// both plus one, so that 0 is none), the count of registers pushed
    /// (where entries hold it), then the tagged register indexes.
    fn entry_size(&self) -> usize {
        2 * self.pc + self.deopt_index + usize::from(self.pushed_in_entry) + self.registers
    }
}

/// Little-endian unsigned of `bytes.len()` bytes.
fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0, |v, &b| (v << 8) | u64::from(b))
}

/// The (call pc, deoptimization index) of the entry of a maglev safepoint
/// table whose pc or trampoline is `offset`: the table's entries in
/// `table`, each of `layout`, with pcs rising within `size`.
fn safepoint_entry(
    table: &[u8],
    layout: &SafepointLayout,
    size: u64,
    offset: u64,
) -> Option<(u64, u64)> {
    let mut last = None;
    let mut found = None;
    for entry in table.chunks_exact(layout.entry_size()).take(layout.length) {
        let pc = le(&entry[..layout.pc]);
        let index = le(&entry[layout.pc..layout.pc + layout.deopt_index]);
        let trampoline =
            le(&entry[layout.pc + layout.deopt_index..2 * layout.pc + layout.deopt_index]);
        // Rising pcs, in the code; a trampoline after its call.
        if last.is_some_and(|l| pc <= l) || pc > size || (trampoline > 0 && trampoline - 1 < pc) {
            return None;
        }
        last = Some(pc);
        if index > 0 && (pc == offset || trampoline == offset + 1) {
            found = Some((pc, index - 1));
        }
    }
    found
}

impl Decoder<'_, '_> {
    /// The call pc and deoptimization index of the safepoint of maglev
    /// `code` for a frame returning to `offset` (the call's return, or
    /// the lazy deoptimization exit V8 pointed it at). The table opens the
    /// metadata after the instructions: a header of 32-bit words holding
    /// the entry count and configuration (four words, the count and
    /// configuration in the first two or the second and third; from V8
    /// 14.6 three, the count second), then the entries. A layout is taken
    /// only where its entries read as a table.
    pub(super) fn maglev_safepoint(&mut self, code: &CodeAt, offset: u64) -> Option<(u64, u64)> {
        let mut header = [0u8; 16];
        self.heap.read(code.end, &mut header)?;
        let word = |i: usize| u32::from_le_bytes(header[4 * i..4 * i + 4].try_into().unwrap());
        let size = code.end - code.start;
        // (the words of the entry count and configuration, the header's
        // size, whether entries hold their pushed register counts)
        for (length, config, header_size, pushed) in
            [(0, 1, 16, true), (1, 2, 16, true), (1, 2, 12, false)]
        {
            let Some(layout) = SafepointLayout::new(word(length), word(config), pushed) else {
                continue;
            };
            let mut table = vec![0u8; layout.length * layout.entry_size()];
            if self.heap.read(code.end + header_size, &mut table).is_none() {
                continue;
            }
            if let Some(found) = safepoint_entry(&table, &layout, size, offset) {
                return Some(found);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stack::v8::testing::push_uvlq as uv;

    fn sv(out: &mut Vec<u8>, v: i64) {
        uv(out, (v.unsigned_abs() << 1) | u64::from(v < 0));
    }

    /// The opcode of `op` with `count` operands in `table`.
    fn opcode(table: &Table, op: Op, count: u8) -> u8 {
        table.iter().position(|&e| e == (op, count)).unwrap() as u8
    }

    fn emit(t: &Table, out: &mut Vec<u8>, op: Op, operands: &[i64]) {
        out.push(opcode(t, op, operands.len() as u8));
        for (i, &v) in operands.iter().enumerate() {
            match (op, i) {
                (Op::Begin, 0) => uv(out, v as u64),
                _ => sv(out, v),
            }
        }
    }

    #[test]
    fn translations_read_through_matches_of_the_one_reused() {
        let t = &candidate_tables()[1];
        let mut b = Vec::new();
        // A translation of its own: two frames, an interpreter frame
        // (bytecode offset 14, function 2) and one inlined (offset 2,
        // function 5), a value each.
        emit(t, &mut b, Op::Begin, &[0, 2, 2]);
        emit(t, &mut b, Op::Interpreted, &[14, 2, 1, 2]);
        emit(t, &mut b, Op::Value, &[3]);
        emit(t, &mut b, Op::Interpreted, &[2, 5, 6, 0]);
        emit(t, &mut b, Op::Value, &[7]);
        // One reusing it: its first two instructions matched (short
        // form), then its own inlined frame at offset 9.
        let second = b.len();
        emit(t, &mut b, Op::Begin, &[second as i64, 2, 2]);
        b.push(t.len() as u8 + 2);
        emit(t, &mut b, Op::Interpreted, &[9, 5, 6, 0]);
        let budget = Cell::new(INSTRUCTION_BUDGET);
        let f = |b: &[u8], start| frames(b, start, t, &budget).unwrap();
        let at = |bytecode_offset, literal| Translated {
            bytecode_offset,
            literal,
            continuation: false,
        };
        assert_eq!(f(&b, 0), vec![at(14, 2), at(2, 5)]);
        assert_eq!(f(&b, second), vec![at(14, 2), at(9, 5)]);
        // The long form of the match reads the same.
        let third = b.len();
        emit(t, &mut b, Op::Begin, &[third as i64, 2, 2]);
        b.push(opcode(t, Op::MatchPrevious, 1));
        uv(&mut b, 3);
        emit(t, &mut b, Op::Value, &[8]);
        assert_eq!(f(&b, third), vec![at(14, 2), at(2, 5)]);
    }

    #[test]
    fn a_translation_that_does_not_read_through_is_none() {
        let tables = candidate_tables();
        let t = &tables[1];
        let mut b = Vec::new();
        emit(t, &mut b, Op::Begin, &[0, 2, 2]);
        emit(t, &mut b, Op::Interpreted, &[14, 2, 1, 2]);
        // Cut before its second frame.
        let budget = Cell::new(INSTRUCTION_BUDGET);
        assert_eq!(frames(&b, 0, t, &budget), None);
        // Not a BEGIN at the start.
        assert_eq!(frames(&b, 1, t, &budget), None);
        // The lists differ: V8 11's reads no BEGIN there.
        assert_eq!(frames(&b, 0, &tables[0], &budget), None);
        // No budget left: nothing is read.
        emit(t, &mut b, Op::Interpreted, &[2, 5, 6, 0]);
        assert!(frames(&b, 0, t, &budget).is_some());
        assert_eq!(frames(&b, 0, t, &Cell::new(1)), None);
    }

    #[test]
    fn maglev_safepoints_give_the_calls_deoptimization_index() {
        // Node 24's V8, as read from a maglev Code: 7 entries of a 2-byte pc,
        // 1-byte deopt index, 2-byte trampoline, the pushed register count
        // and 1 byte of tagged registers.
        let layout = SafepointLayout::new(7, 0xa3, true).unwrap();
        assert_eq!(layout.entry_size(), 7);
        let table = [
            0x20, 0, 3, 0x50, 3, 0, 0, 0xea, 0, 4, 0x54, 3, 0, 0, 0x27, 1, 5, 0x58, 3, 0, 0, 0x4f,
            2, 6, 0x5c, 3, 0, 0, 0x8c, 2, 0, 0, 0, 1, 1, 0xa0, 2, 0, 0, 0, 0, 0, 0x40, 3, 0, 0, 0,
            1, 1,
        ];
        let at = |offset| safepoint_entry(&table, &layout, 0x360, offset);
        assert_eq!(at(0xea), Some((0xea, 3)), "a call's return");
        assert_eq!(at(0x353), Some((0xea, 3)), "its lazy exit");
        assert_eq!(at(0x28c), None, "a safepoint without deoptimization");
        assert_eq!(at(0xeb), None);
        // Falling pcs: not a table.
        let mut bad = table;
        bad[7] = 0x10;
        assert_eq!(safepoint_entry(&bad, &layout, 0x360, 0xea), None);
        assert_eq!(SafepointLayout::new(7, 7, true).map(|l| l.pc), None);
        assert_eq!(SafepointLayout::new(7, 0xa3, false), None);
        // Node 26's: 5-byte entries (no pushed register count in them).
        let layout = SafepointLayout::new(11, 0x4a1, false).unwrap();
        assert_eq!(layout.entry_size(), 5);
        assert_eq!(SafepointLayout::new(11, 0x4a1, true), None);
        let table = [
            0x04, 1, 0x17, 0xf9, 0x0e, 0x9d, 2, 0x18, 0xfd, 0x0e, 0x65, 3, 0x19, 1, 0x0f, 0x42, 6,
            0, 0, 0,
        ];
        let at = |offset| safepoint_entry(&table, &layout, 0xfd0, offset);
        assert_eq!(at(0x29d), Some((0x29d, 0x17)));
        assert_eq!(at(0xefc), Some((0x29d, 0x17)), "its lazy exit");
        assert_eq!(at(0x642), None);
    }

    #[test]
    fn every_candidate_has_one_match_and_two_begins() {
        let tables = candidate_tables();
        for t in tables {
            assert_eq!(t.iter().filter(|e| e.0 == Op::Begin).count(), 2);
            assert_eq!(t.iter().filter(|e| e.0 == Op::MatchPrevious).count(), 1);
        }
        // The operand counts of node 20's, 24's (to 26's) and 22's V8, as
        // the arrays in their binaries read.
        let counts = |t: &Table| t.iter().map(|e| e.1).collect::<Vec<_>>();
        let v8_11: &[u8] = &[
            1, 0, 3, 3, 1, 1, 3, 1, 3, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 5, 3, 3, 3, 4, 0,
            1, 1, 1, 1, 1, 2, 1,
        ];
        let v8_13: &[u8] = &[
            6, 4, 3, 3, 2, 1, 3, 4, 3, 3, 3, 1, 0, 0, 3, 3, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 2, 1,
        ];
        let v8_12: &[u8] = &[
            5, 3, 3, 3, 2, 1, 3, 4, 3, 2, 1, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 0, 1, 1, 1, 1, 1, 2, 1,
        ];
        assert_eq!(counts(&tables[0]), v8_11);
        assert_eq!(counts(&tables[1]), v8_13);
        assert_eq!(counts(&tables[2]), v8_12);
        assert_eq!(tables[1][0], (Op::Interpreted, 6));
    }
}
