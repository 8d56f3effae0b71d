//! What the unit tests decode from, with no process: target memory made
//! of literal bytes, and a V8 whose layout is read from literal metadata
//! (node 22's offsets for the fields the tests lay out).

use std::cell::Cell;
use std::collections::HashMap;

use super::V8;
use super::constants::Constants;
use super::layout::Layout;
use crate::error::{Error, Result};
use crate::target::Memory;

/// V8's heap object tag.
pub(super) const TAG: u64 = 1;
/// Instance types: a sequential one-byte string, a one-byte cons string
/// (below the first non-string type, 0x80) and the ScopeInfo type.
pub(super) const SEQ_ONE_BYTE: u16 = 0x08;
pub(super) const CONS_ONE_BYTE: u16 = 0x09;
pub(super) const SCOPE_INFO: u16 = 0xb0;

/// Target memory: `bytes` from `base`, and how many reads were asked.
pub(super) struct Image {
    pub(super) base: u64,
    pub(super) bytes: Vec<u8>,
    pub(super) reads: Cell<usize>,
}

impl Image {
    /// `len` zero bytes at `base`.
    pub(super) fn new(base: u64, len: usize) -> Image {
        Image {
            base,
            bytes: vec![0; len],
            reads: Cell::new(0),
        }
    }

    pub(super) fn put(&mut self, addr: u64, value: &[u8]) {
        let at = (addr - self.base) as usize;
        self.bytes[at..at + value.len()].copy_from_slice(value);
    }

    pub(super) fn put_word(&mut self, addr: u64, value: u64) {
        self.put(addr, &value.to_le_bytes());
    }

    /// A map at `addr` (untagged) for objects of type `ty`; its tagged
    /// address.
    pub(super) fn map(&mut self, addr: u64, ty: u16) -> u64 {
        self.put(addr + 12, &ty.to_le_bytes());
        addr + TAG
    }

    /// A sequential one-byte string at `addr` whose map is `map`; its
    /// tagged address.
    pub(super) fn seq_string(&mut self, addr: u64, map: u64, text: &str) -> u64 {
        self.put_word(addr, map);
        self.put(addr + 12, &(text.len() as i32).to_le_bytes());
        self.put(addr + 16, text.as_bytes());
        addr + TAG
    }
}

impl Memory for Image {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        self.reads.set(self.reads.get() + 1);
        let rest = usize::try_from(addr.wrapping_sub(self.base))
            .ok()
            .and_then(|at| self.bytes.get(at..))
            .filter(|rest| !rest.is_empty())
            .ok_or(Error::MemoryUnavailable {
                addr,
                reason: "outside the test image",
            })?;
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// A V8 of the ScopeInfo layout `first_vars` picks (3: V8 11 and 12; 5:
/// V8 13 on), with node 22's string and object offsets.
pub(super) fn test_v8(first_vars: i64) -> V8 {
    test_v8_with(first_vars, &[])
}

/// [`test_v8`], with more constants (`extra`: name without `v8dbg_`,
/// value).
pub(super) fn test_v8_with(first_vars: i64, extra: &[(&str, i64)]) -> V8 {
    let fields = [
        ("HeapObject__map", 0),
        ("Map__instance_type", 12),
        ("String__length", 12),
        ("SeqOneByteString__chars", 16),
        ("ConsString__first", 16),
        ("ConsString__second", 24),
        ("SlicedString__parent", 16),
        ("SlicedString__offset", 24),
        ("ThinString__actual", 16),
        ("ExternalString__resource", 16),
        ("FixedArrayBase__length", 8),
        ("FixedArray__data", 16),
        ("BytecodeArray__data", 40),
        ("JSFunction__shared", 24),
        ("SharedFunctionInfo__name_or_scope_info", 16),
        ("SharedFunctionInfo__script", 32),
        ("Script__name", 24),
        ("Script__source", 16),
    ];
    let types = [
        ("JSFunction", 2070),
        ("SharedFunctionInfo", 0xc0),
        ("ScopeInfo", i64::from(SCOPE_INFO)),
        ("Script", 0xc1),
        ("BytecodeArray", 0xc2),
        ("ByteArray", 0xc3),
        ("FixedArray", 0xc4),
    ];
    let values = [
        ("off_fp_function", -16),
        ("off_fp_context_or_frame_type", -8),
        ("off_fp_bytecode_array", -24),
        ("off_fp_bytecode_offset", -32),
        ("HeapObjectTag", TAG as i64),
        ("HeapObjectTagMask", 3),
        ("FirstNonstringType", 0x80),
        ("StringRepresentationMask", 7),
        ("StringEncodingMask", 8),
        ("OneByteStringTag", 8),
        ("SeqStringTag", 0),
        ("ConsStringTag", 1),
        ("ExternalStringTag", 2),
        ("SlicedStringTag", 3),
        ("ThinStringTag", 5),
        ("scopeinfo_idx_nparams", 1),
        ("scopeinfo_idx_ncontextlocals", 2),
        ("scopeinfo_idx_first_vars", first_vars),
    ];
    let mut c = Constants::default();
    for (name, offset) in fields {
        c.0.insert(format!("class_{name}__Object"), offset);
    }
    for (class, ty) in types {
        c.0.insert(format!("type_{class}__TYPE"), ty);
    }
    for (name, value) in values.iter().chain(extra) {
        c.0.insert((*name).to_owned(), *value);
    }
    V8 {
        layout: Layout::from(&c).expect("the test layout"),
        frame_types: HashMap::new(),
        builtins: None,
    }
}

/// `v` as an unsigned VLQ, as V8's tables write them: 7 bits a byte, low
/// bits first, the top bit set on all but the last byte.
pub(super) fn push_uvlq(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}
