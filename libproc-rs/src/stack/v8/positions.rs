//! Where a frame is in its script: a script's name and lines, and the
//! position tables that map an offset in bytecode or compiled code to a
//! source position (with the functions inlined there). The tables'
//! decoding is pure functions over their bytes, tested on literal tables;
//! the [`Decoder`] methods here find the tables in the heap and learn, per
//! table kind, how this V8 codes them ([`DeltaCoding`]).

use super::decoder::{CodeAt, Decoder, NAME_MAX, TABLE_MAX};

/// Largest source prefix read to count lines, in UTF-16 units.
const SOURCE_MAX: usize = 64 << 20;

/// A Script's name and, once needed, where its lines end.
#[derive(Debug, Clone, Default)]
pub(super) struct ScriptInfo {
    name: Option<String>,
    /// Position of each line's end (its newline), ascending, and the
    /// position up to which they are known (newlines counted in part of
    /// the source; `u32::MAX` for V8's own table).
    line_ends: Option<(Vec<u32>, u32)>,
}

/// Where a source position is: its script's name, and the 1-based line
/// and column in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SourceLocation {
    pub(super) script: Option<String>,
    pub(super) line: Option<u32>,
    pub(super) column: Option<u32>,
}

/// A function inlined into compiled code (its SharedFunctionInfo), and
/// the source position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InlinedFunction {
    pub(super) shared: u64,
    pub(super) position: u32,
}

/// The source positions at a point of compiled code: the function's own,
/// and the functions inlined there with theirs, innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CodePositions {
    pub(super) position: u32,
    pub(super) inlined: Vec<InlinedFunction>,
}

impl Decoder<'_, '_> {
    /// A script's name, read once.
    fn script(&mut self, script: u64) -> &ScriptInfo {
        if !self.scripts.contains_key(&script) {
            let l = self.l();
            let name = self
                .field(script, l.script_name)
                .and_then(|n| self.string(n, NAME_MAX));
            self.scripts.insert(
                script,
                ScriptInfo {
                    name,
                    line_ends: None,
                },
            );
        }
        &self.scripts[&script]
    }

    /// A script's name, and the 1-based line and column of a position in it.
    pub(super) fn located(&mut self, script: Option<u64>, position: Option<u32>) -> SourceLocation {
        let Some(script) = script else {
            return SourceLocation::default();
        };
        let name = self.script(script).name.clone();
        let lc = position.and_then(|p| self.line_column(script, p));
        SourceLocation {
            script: name,
            line: lc.map(|x| x.0),
            column: lc.map(|x| x.1),
        }
    }

    /// 1-based line and column of a source position in a script: from the
    /// line ends V8 computed, or by counting newlines in the source.
    fn line_column(&mut self, script: u64, position: u32) -> Option<(u32, u32)> {
        let known = self.script(script).line_ends.as_ref().map(|e| e.1);
        if known.is_none_or(|upto| upto < position) {
            let ends = self.line_ends(script);
            if let Some(info) = self.scripts.get_mut(&script) {
                info.line_ends = ends;
            }
        }
        let (ends, _) = self.scripts.get(&script)?.line_ends.as_ref()?;
        let line = ends.partition_point(|&e| e < position);
        let line_start = match line {
            0 => 0,
            n => ends[n - 1].checked_add(1)?,
        };
        Some((
            u32::try_from(line).ok()?.checked_add(1)?,
            position.checked_sub(line_start)?.checked_add(1)?,
        ))
    }

    /// Where each line of a script ends, and up to which position that is
    /// known (all of the source, or its first [`SOURCE_MAX`] units).
    fn line_ends(&mut self, script: u64) -> Option<(Vec<u32>, u32)> {
        let l = self.l();
        if let Some(off) = l.script_line_ends
            && let Some(arr) = self.field(script, off)
            && self.type_of(arr) == Some(l.fixed_array_type)
        {
            let len = usize::try_from(self.smi_field(arr, l.array_length)?).ok()?;
            if len > TABLE_MAX {
                return None;
            }
            let mut raw = vec![0u8; len * 8];
            let base = arr.checked_sub(l.heap_tag)?.checked_add(l.array_data)?;
            self.heap.read(base, &mut raw)?;
            let ends: Option<Vec<u32>> = raw
                .chunks_exact(8)
                .map(|c| {
                    smi(u64::from_le_bytes(c.try_into().ok()?)).and_then(|v| u32::try_from(v).ok())
                })
                .collect();
            return ends.filter(|e| e.is_sorted()).map(|e| (e, u32::MAX));
        }
        // Count the newlines in the source, once.
        let source = self.field(script, l.script_source)?;
        let len = self.string_len(source)?.min(SOURCE_MAX);
        let ends: Vec<u32> = match self.flat_one_byte(source) {
            Some(chars) => {
                let mut text = vec![0u8; len];
                self.heap.read(chars, &mut text)?;
                memchr::memchr_iter(b'\n', &text)
                    .filter_map(|i| u32::try_from(i).ok())
                    .collect()
            }
            None => self
                .string_units(source, len)?
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c == u16::from(b'\n'))
                .filter_map(|(i, _)| u32::try_from(i).ok())
                .collect(),
        };
        Some((ends, u32::try_from(len).unwrap_or(u32::MAX)))
    }

    /// The source position of a bytecode offset, from the BytecodeArray's
    /// source position table (absent until V8 has needed it: then `None`).
    pub(super) fn bytecode_position(&mut self, array: u64, offset: u64) -> Option<u32> {
        if let Some(known) = self.positions.get(&(array, offset)) {
            return *known;
        }
        let found = self.read_bytecode_position(array, offset);
        self.positions.insert((array, offset), found);
        found
    }

    fn read_bytecode_position(&mut self, array: u64, offset: u64) -> Option<u32> {
        let l = self.l();
        let table = self.field(array, l.bytecode_positions)?;
        let bytes = self.byte_array(table)?;
        let length = u64::try_from(self.smi_field(array, l.array_length)?).ok()?;
        self.position_entry(&bytes, offset, BYTECODE_TABLE, length)
            .map(|(p, _)| p)
    }

    /// [`position_entry_at`] in a table of this V8 (a bytecode array's or
    /// a Code's: `kind`), whose coding is learnt from the first table of
    /// its kind that shows it (see [`DeltaCoding`]).
    fn position_entry(
        &mut self,
        table: &[u8],
        offset: u64,
        kind: usize,
        size: u64,
    ) -> Option<(u32, Option<u32>)> {
        let coding = match self.coding[kind] {
            Some(c) => c,
            None => match delta_coding(table, size)? {
                (c, true) => {
                    self.coding[kind] = Some(c);
                    c
                }
                // A table that does not show it: as the other kind's
                // tables are, else the older coding.
                (_, false) => self.coding[1 - kind].unwrap_or(DeltaCoding::Signed),
            },
        };
        position_entry_at(table, offset, coding)
    }

    /// The lazy deoptimization exits of a Code: after the inlining
    /// positions, its deoptimization data gives where the exits start and
    /// how many eager and lazy ones there are, then an entry of three
    /// (bytecode offset, translation index, pc) per exit, eager ones first.
    fn lazy_exits(&mut self, code: &CodeAt) -> Option<LazyExits> {
        let c = self.l().code.as_ref()?;
        let positions_at = c.deopt?.positions;
        let data = self.field(code.code, c.deopt_data)?;
        let mut number = |i: u64| {
            let at = self.l().array_data + 8 * (positions_at + i);
            self.smi_field(data, at).and_then(|v| u64::try_from(v).ok())
        };
        let (start, eager, lazy) = (number(1)?, number(2)?, number(3)?);
        // The entries must lie in the array.
        let length = u64::try_from(self.smi_field(data, self.l().array_length)?).ok()?;
        let end = eager
            .checked_add(lazy)?
            .checked_mul(3)?
            .checked_add(positions_at + 4)?;
        (lazy <= MAX_DEOPT_ENTRIES && end <= length).then_some(LazyExits {
            data,
            entries: positions_at + 4,
            start: start.checked_add(eager.checked_mul(LAZY_EXIT_SIZE)?)?,
            first: eager,
            count: lazy,
        })
    }

    /// Field `field` (0: bytecode offset, 2: pc) of deoptimization entry
    /// `entry`.
    fn deopt_entry(&mut self, exits: &LazyExits, entry: u64, field: u64) -> Option<i64> {
        let at = self.l().array_data + 8 * (exits.entries + 3 * entry + field);
        self.smi_field(exits.data, at)
    }

    /// Where the call returns to, in code that was deoptimized while it
    /// waited in the call (`offset`: where the frame now returns, from the
    /// code's start). V8 points such a frame's return at the start of a
    /// lazy deoptimization exit, one of the fixed-size calls after the
    /// code's instructions; the deoptimization entry of that exit keeps
    /// the call's own return offset. `None` when `offset` is not at such
    /// an exit.
    pub(super) fn lazy_deopt_call(&mut self, code: &CodeAt, offset: u64) -> Option<u64> {
        let exits = self.lazy_exits(code)?;
        let past = offset.checked_sub(exits.start)?;
        if !past.is_multiple_of(LAZY_EXIT_SIZE) || past / LAZY_EXIT_SIZE >= exits.count {
            return None;
        }
        let entry = exits.first + past / LAZY_EXIT_SIZE;
        u64::try_from(self.deopt_entry(&exits, entry, 2)?).ok()
    }

    /// The lazy deoptimization entry (its index) for the call returning
    /// to `offset` in optimized code: the one whose pc is `offset`.
    pub(super) fn lazy_entry(&mut self, code: &CodeAt, offset: u64) -> Option<u64> {
        let exits = self.lazy_exits(code)?;
        let offset = i64::try_from(offset).ok()?;
        for entry in exits.first..exits.first + exits.count {
            if self.deopt_entry(&exits, entry, 2)? == offset {
                return Some(entry);
            }
        }
        None
    }

    /// Deoptimization entry `index`'s bytecode offset (that of the
    /// innermost function at its call) and where its translation starts.
    pub(super) fn entry_of(&mut self, code: &CodeAt, index: u64) -> Option<(u64, usize)> {
        let exits = self.lazy_exits(code)?;
        if index >= exits.first + exits.count {
            return None;
        }
        let offset = u64::try_from(self.deopt_entry(&exits, index, 0)?).ok()?;
        let start = usize::try_from(self.deopt_entry(&exits, index, 1)?).ok()?;
        Some((offset, start))
    }

    /// A Code's first `most` deoptimization entries, eager then lazy: each
    /// one's bytecode offset and where its translation starts.
    pub(super) fn deopt_entries(&mut self, code: &CodeAt, most: u64) -> Option<Vec<(i64, usize)>> {
        let exits = self.lazy_exits(code)?;
        (0..(exits.first + exits.count).min(most))
            .map(|entry| {
                let offset = self.deopt_entry(&exits, entry, 0)?;
                let start = usize::try_from(self.deopt_entry(&exits, entry, 1)?).ok()?;
                Some((offset, start))
            })
            .collect()
    }

    /// The source position of an offset into maglev or optimized code, in
    /// the function itself, and the functions inlined into it there with
    /// their positions, innermost first. A position in inlined code names
    /// its function by an inlining id: the deoptimization data holds, for
    /// each, the inlined function and the position of its call in the
    /// function it was inlined into (itself inlined, or not).
    pub(super) fn code_positions(&mut self, code: &CodeAt, offset: u64) -> Option<CodePositions> {
        let bytes = self.byte_array(code.table)?;
        let size = code.end - code.start;
        let (mut position, mut inlining) = self.position_entry(&bytes, offset, CODE_TABLE, size)?;
        let mut inlined = Vec::new();
        if inlining.is_none() {
            return Some(CodePositions { position, inlined });
        }
        let c = self.l().code.as_ref()?;
        let deopt = c.deopt?;
        let (count_at, literals_at, positions_at) = (deopt.count, deopt.literals, deopt.positions);
        let l = self.l();
        let data = self.field(code.code, c.deopt_data)?;
        let element = |i: u64| l.array_data + 8 * i;
        let count = u64::try_from(self.smi_field(data, element(count_at))?).ok()?;
        let literals = self.field(data, element(literals_at))?;
        let records = self.field(data, element(positions_at))?;
        let records = self.byte_array(records)?;
        // Each record: the call's raw source position (8 bytes), the
        // inlined function's index among the literals (4), padding.
        while let Some(id) = inlining {
            if inlined.len() > 64 {
                return None;
            }
            let rec = records.get(16 * id as usize..16 * id as usize + 16)?;
            let raw = i64::from_le_bytes(rec[..8].try_into().ok()?);
            let function = u32::from_le_bytes(rec[8..12].try_into().ok()?);
            if u64::from(function) >= count {
                return None;
            }
            // A weak reference: clear its weak bit.
            let sfi = self.field(literals, element(u64::from(function)))? & !2;
            inlined.push(InlinedFunction {
                shared: sfi,
                position,
            });
            (position, inlining) = unpack_position(raw)?;
        }
        Some(CodePositions { position, inlined })
    }
}

/// A Smi's value (x86_64 without pointer compression).
pub(super) fn smi(word: u64) -> Option<i64> {
    (word & 0xffff_ffff == 0).then_some((word as i64) >> 32)
}

/// Read one VLQ-encoded, zigzagged integer from a source position table.
fn read_vlq(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let value = read_uvlq(bytes, at)?;
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// The script offset of the last entry at or before `code_offset` in a
/// V8 source position table: pairs of (code offset delta, with whether it
/// is a statement; source position delta), each a zigzag VLQ, from code
/// offset -1 (V8's function-entry offset, for the stack check on entry). A
/// source position packs the script offset + 1 in bits 1..31 (bit 0 flags
/// an external position, bits 31.. the inlining).
pub fn source_position_at(table: &[u8], code_offset: u64) -> Option<u32> {
    let (coding, _) = delta_coding(table, u64::MAX)?;
    position_entry_at(table, code_offset, coding).map(|(p, _)| p)
}

/// A Code's lazy deoptimization exits (see [`Decoder::lazy_exits`]).
struct LazyExits {
    /// The deoptimization data, and the index of its first entry.
    data: u64,
    entries: u64,
    /// Where the first lazy exit starts, the index of its entry, and how
    /// many there are.
    start: u64,
    first: u64,
    count: u64,
}

/// Most lazy deoptimization entries searched in one Code.
const MAX_DEOPT_ENTRIES: u64 = 1 << 16;

/// The size of a lazy deoptimization exit on x86_64: one call through
/// the root register.
const LAZY_EXIT_SIZE: u64 = 4;

/// Indices of [`Decoder::coding`].
const BYTECODE_TABLE: usize = 0;
const CODE_TABLE: usize = 1;

/// How a V8's tables write code offset deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeltaCoding {
    /// To V8 14.1's bytecode tables: the delta for a statement, -delta - 1
    /// for an expression, then the source position's delta.
    Signed,
    /// V8 14.1's and 14.6's: `2 * delta + 1` (now and then `2 * delta`),
    /// bitwise negated for a statement. Odd but for a few: the other
    /// coding's bytecode tables start with an even one (the function
    /// entry, -1), and have about as many even values as odd.
    Odd,
}

/// A table's coding, and whether the table shows it for sure, for a table
/// of code or bytecode `size` bytes long: one whose first value is even is
/// `Signed`; one that read as `Signed` would end past the code's end is
/// `Odd`. Otherwise: with no even value, `Odd`, for sure if it starts with
/// the function entry as `Odd` writes it (+1, where `Signed` writes -1)
/// and has at least 8 entries, or has at least 16; with a third or more
/// even, `Signed`, for sure from 4 entries; with fewer, `Odd`, for sure
/// from 16 entries of which under an eighth are even.
fn delta_coding(table: &[u8], size: u64) -> Option<(DeltaCoding, bool)> {
    let (mut at, mut count, mut even, mut first) = (0usize, 0, 0, None);
    // Where the last entry is, read as Signed.
    let mut signed_end: i64 = -1;
    while at < table.len() {
        let v = read_vlq(table, &mut at)?;
        if at >= table.len() || read_vlq(table, &mut at).is_none() {
            return None;
        }
        first.get_or_insert(v);
        count += 1;
        even += usize::from(un_negated(v) & 1 == 0);
        signed_end = signed_end.saturating_add(un_negated(v));
    }
    // Odd never starts with an even value; a table that read as Signed
    // would end past its code's end is not Signed.
    if first.is_some_and(|v| un_negated(v) & 1 == 0) {
        return Some((DeltaCoding::Signed, true));
    }
    if u64::try_from(signed_end).is_ok_and(|e| e >= size) {
        return Some((DeltaCoding::Odd, true));
    }
    Some(match even {
        0 => (
            DeltaCoding::Odd,
            count >= 16 || first == Some(1) && count >= 8,
        ),
        e if 3 * e >= count => (DeltaCoding::Signed, count >= 4),
        e => (DeltaCoding::Odd, count >= 16 && 8 * e < count),
    })
}

/// A delta value with a statement's negation undone.
fn un_negated(v: i64) -> i64 {
    if v < 0 { !v } else { v }
}

/// The script offset of the last entry at or before `code_offset` in a
/// table of `coding`, with the inlining id of the entry (bits 31..47 hold
/// it plus one; `None` for the function itself).
fn position_entry_at(
    table: &[u8],
    code_offset: u64,
    coding: DeltaCoding,
) -> Option<(u32, Option<u32>)> {
    let mut at = 0usize;
    // Deltas start from the function-entry offset, -1.
    let (mut code, mut raw) = (-1i64, 0i64);
    let mut found = None;
    while at < table.len() {
        let v = read_vlq(table, &mut at)?;
        let delta = match coding {
            DeltaCoding::Signed => un_negated(v),
            DeltaCoding::Odd => un_negated(v) >> 1,
        };
        let pos = read_vlq(table, &mut at)?;
        code = code.checked_add(delta)?;
        raw = raw.checked_add(pos)?;
        if code > code_offset as i64 {
            break;
        }
        found = Some(raw);
    }
    unpack_position(found?)
}

/// A raw source position: the script offset + 1 in bits 1..31 and the
/// inlining id + 1 in bits 31..47 (bit 0 flags an external position, not
/// decoded).
fn unpack_position(raw: i64) -> Option<(u32, Option<u32>)> {
    if raw & 1 != 0 {
        return None;
    }
    let offset = ((raw >> 1) & ((1 << 30) - 1)) - 1;
    let inlined = ((raw >> 31) & 0xffff) - 1;
    Some((u32::try_from(offset).ok()?, u32::try_from(inlined).ok()))
}

/// Read one unsigned VLQ (7 bits a byte, low first, high bit for more).
fn read_uvlq(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        if shift >= 64 {
            return None;
        }
        value |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
}

/// The offset of the bytecode that baseline machine code at `pc_offset`
/// (from its start) runs: the table gives, as unsigned VLQs, the machine
/// code size of the function's entry and then of each bytecode in turn;
/// bytecodes are stepped through with `sizes` (three rows: single, wide
/// and extra-wide operands; opcodes 0 to 3 are the prefixes that choose
/// the row). The bytecode whose code ends at or after `pc_offset` is the
/// one (a call's return address is the end of its call). `None` in the
/// function's entry (V8's offset -1, the stack check).
pub fn baseline_offset_at(
    table: &[u8],
    bytecodes: &[u8],
    sizes: &[u8],
    pc_offset: u64,
) -> Option<u64> {
    let row = sizes.len() / 3;
    let mut at = 0usize;
    let mut end = read_uvlq(table, &mut at)?;
    let mut offset = 0usize;
    while end < pc_offset {
        let here = offset;
        let mut op = usize::from(*bytecodes.get(offset)?);
        let (mut scale, mut size) = (0, 0);
        if op < 4 {
            // Wide (0, 2) or extra-wide (1, 3) prefix: the bytecode follows.
            scale = if op % 2 == 0 { 1 } else { 2 };
            size = 1;
            op = usize::from(*bytecodes.get(offset + 1)?);
        }
        size += usize::from(*sizes.get(scale * row + op)?);
        if size == 0 {
            return None;
        }
        offset += size;
        end = end.checked_add(read_uvlq(table, &mut at)?)?;
        if end >= pc_offset {
            return Some(here as u64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::v8::testing::{Image, TAG, push_uvlq, test_v8_with};

    /// A Code whose deoptimization data has 2 eager and 3 lazy exits from
    /// offset 1000, the lazy ones' entries returning to 100, 200 and 300
    /// with bytecode offsets 10, 20 and 30 (V8 12.4's indices).
    #[test]
    fn lazy_deoptimization_exits_map_back_to_their_calls() {
        let v8 = test_v8_with(
            3,
            &[
                ("CodeKindBaseline", 10),
                ("CodeKindFieldMask", 15),
                ("class_Code__instruction_start__Object", 40),
                ("class_Code__instruction_size__Object", 52),
                ("class_Code__flags__Object", 48),
                ("class_JSFunction__code__Object", 24),
                ("type_Code__CODE_TYPE", 0xc5),
                ("DeoptimizationDataInlinedFunctionCountIndex", 1),
                ("DeoptimizationDataLiteralArrayIndex", 2),
                ("DeoptimizationDataInliningPositionsIndex", 7),
            ],
        );
        let base = 0x10_0000;
        let mut mem = Image::new(base, 0x1000);
        let array_map = mem.map(base + 0x800, 0xc4);
        let code = base + TAG;
        let data = base + 0x100;
        mem.put_word(base + 8, data + TAG);
        mem.put_word(data, array_map);
        let smi = |v: i64| (v as u64) << 32;
        // Its length: the header's 11 slots and 5 entries of 3.
        mem.put_word(data + 8, smi(11 + 3 * 5));
        // Entries start at index 7 + 4; each is (bytecode offset,
        // translation index, pc).
        let header = [(8, 1000), (9, 2), (10, 3)];
        let entries = [
            (0, 5, 50),
            (1, 6, 60),
            (2, 10, 100),
            (3, 20, 200),
            (4, 30, 300),
        ];
        for (i, v) in header {
            mem.put_word(data + 16 + 8 * i, smi(v));
        }
        for (e, bytecode, pc) in entries {
            mem.put_word(data + 16 + 8 * (11 + 3 * e), smi(bytecode));
            mem.put_word(data + 16 + 8 * (11 + 3 * e + 2), smi(pc));
        }
        let mut d = Decoder::new(&v8, &mem);
        let at = CodeAt {
            code,
            start: 0,
            end: 2000,
            tier: "optimized",
            table: 0,
        };
        // The lazy exits are 4 bytes each from 1000 + 2 * 4; a frame returns
        // to the start of one.
        assert_eq!(d.lazy_deopt_call(&at, 1008), Some(100));
        assert_eq!(d.lazy_deopt_call(&at, 1016), Some(300));
        assert_eq!(d.lazy_deopt_call(&at, 1020), None, "past the last exit");
        assert_eq!(d.lazy_deopt_call(&at, 1004), None, "an eager exit");
        assert_eq!(d.lazy_deopt_call(&at, 1009), None, "not at an exit's start");
        assert_eq!(d.lazy_deopt_call(&at, 500), None, "in the instructions");
        let mut offset_of = |pc| {
            let entry = d.lazy_entry(&at, pc)?;
            d.entry_of(&at, entry).map(|(offset, _)| offset)
        };
        assert_eq!(offset_of(200), Some(20));
        assert_eq!(offset_of(50), None, "an eager entry");
        assert_eq!(offset_of(201), None);
        // Entries past the array's end are not read.
        mem.put_word(data + 8, smi(11 + 3 * 5 - 1));
        let mut d = Decoder::new(&v8, &mem);
        assert_eq!(d.lazy_deopt_call(&at, 1012), None);
    }

    /// `v` zigzagged, as a VLQ.
    fn vlq(out: &mut Vec<u8>, v: i64) {
        push_uvlq(out, ((v << 1) ^ (v >> 63)) as u64);
    }

    #[test]
    fn position_tables() {
        // Entries (code offset, script offset): (0, 10) statement,
        // (5, 42) expression, (9, 100) statement.
        let mut t = Vec::new();
        let raw = |o: i64| (o + 1) << 1;
        vlq(&mut t, 1);
        vlq(&mut t, raw(10));
        vlq(&mut t, -5 - 1);
        vlq(&mut t, raw(42) - raw(10));
        vlq(&mut t, 4);
        vlq(&mut t, raw(100) - raw(42));
        assert_eq!(source_position_at(&t, 0), Some(10));
        assert_eq!(source_position_at(&t, 4), Some(10));
        assert_eq!(source_position_at(&t, 5), Some(42));
        assert_eq!(source_position_at(&t, 8), Some(42));
        assert_eq!(source_position_at(&t, 9), Some(100));
        assert_eq!(source_position_at(&t, 1000), Some(100));
        // Truncated or garbage tables give nothing, never a panic.
        assert_eq!(source_position_at(&t[..1], 3), None);
        assert_eq!(source_position_at(&[0xff; 20], 3), None);
        assert_eq!(source_position_at(&[], 3), None);
    }

    #[test]
    fn position_tables_of_v8_14() {
        // The same entries as above, with V8 14.6's coding: 2 * delta + 1,
        // negated for a statement.
        let mut t = Vec::new();
        let raw = |o: i64| (o + 1) << 1;
        vlq(&mut t, !3);
        vlq(&mut t, raw(10));
        vlq(&mut t, 2 * 5 + 1);
        vlq(&mut t, raw(42) - raw(10));
        vlq(&mut t, !(2 * 4 + 1));
        vlq(&mut t, raw(100) - raw(42));
        assert_eq!(delta_coding(&t, u64::MAX), Some((DeltaCoding::Odd, false)));
        // Read as the older coding, its last entry (at 22) would lie past
        // a 20-byte code's end: it can only be V8 14.6's.
        assert_eq!(delta_coding(&t, 20), Some((DeltaCoding::Odd, true)));
        assert_eq!(delta_coding(&t, 100), Some((DeltaCoding::Odd, false)));
        assert_eq!(source_position_at(&t, 0), Some(10));
        assert_eq!(source_position_at(&t, 4), Some(10));
        assert_eq!(source_position_at(&t, 5), Some(42));
        assert_eq!(source_position_at(&t, 9), Some(100));
        // An entry at 12 written 2 * delta (as V8 14 now and then writes
        // one) among 15 odd ones: still Odd, for sure.
        vlq(&mut t, 2 * 3);
        vlq(&mut t, raw(7) - raw(100));
        for _ in 0..12 {
            vlq(&mut t, 2 * 2 + 1);
            vlq(&mut t, 0);
        }
        assert_eq!(delta_coding(&t, u64::MAX), Some((DeltaCoding::Odd, true)));
        assert_eq!(source_position_at(&t, 11), Some(100));
        assert_eq!(source_position_at(&t, 12), Some(7));
        // An even first value settles it: the older coding.
        let mut old = Vec::new();
        vlq(&mut old, -1);
        vlq(&mut old, raw(10));
        assert_eq!(
            delta_coding(&old, u64::MAX),
            Some((DeltaCoding::Signed, true))
        );
    }

    #[test]
    fn baseline_pcs_map_to_bytecodes() {
        // Six opcodes: 0 to 3 are the prefixes, 4 takes an operand (1, 2
        // or 4 bytes by scale), 5 none. Sizes, in rows of six by scale.
        let sizes = [
            1, 1, 1, 1, 2, 1, // single
            1, 1, 1, 1, 3, 1, // wide
            1, 1, 1, 1, 5, 1, // extra-wide
        ];
        // Offsets 0: op4 x; 2: op5; 3: wide op4 x x; 7: op5.
        let bytecodes = [4, 9, 5, 0, 4, 9, 9, 5];
        // Machine code: the entry 10 bytes, then 5, 3, 8, 2.
        let table = [10, 5, 3, 8, 2];
        let at = |pc| baseline_offset_at(&table, &bytecodes, &sizes, pc);
        assert_eq!(at(10), None, "the entry");
        assert_eq!(at(11), Some(0));
        assert_eq!(at(15), Some(0), "a return address at the end of a call");
        assert_eq!(at(16), Some(2));
        assert_eq!(at(19), Some(3));
        assert_eq!(at(26), Some(3));
        assert_eq!(at(27), Some(7));
        assert_eq!(at(29), None, "past the last bytecode");
        // Truncated tables and bytecodes give nothing, never a panic.
        assert_eq!(
            baseline_offset_at(&table[..2], &bytecodes, &sizes, 27),
            None
        );
        assert_eq!(
            baseline_offset_at(&table, &bytecodes[..4], &sizes, 27),
            None
        );
        assert_eq!(baseline_offset_at(&table, &[0], &sizes, 27), None);
    }

    #[test]
    fn smis() {
        assert_eq!(smi(5 << 32), Some(5));
        assert_eq!(smi((-3i64 << 32) as u64), Some(-3));
        assert_eq!(smi(0x1234_0001), None);
    }
}
