//! JavaScript frames named from the V8 heap itself, with no help from the
//! target (no perf map, no flags).
//!
//! node exports V8's postmortem metadata: `v8dbg_*` symbols whose values
//! are the frame layout, the object field offsets and the instance types
//! of its V8 version. [`V8::from_image`] reads them from the node binary on
//! disk (found by [`super::modules::Modules::v8`]). A [`Decoder`] then reads
//! a stopped thread's V8 frames: V8's own frames by the type marker they
//! hold; a JavaScript frame by the JSFunction in its fixed slot, its
//! SharedFunctionInfo, the function's name (a String, or inside a
//! ScopeInfo; else the property holding it), the receiver's type, the
//! Script's name, and the position being executed: from the bytecode offset
//! an interpreted frame saves, from the pc through a baseline Code's
//! bytecode offset table, or from an optimized Code's source positions
//! (with the functions inlined there); else where the function starts. On a
//! live process this runs while the thread is stopped: the garbage
//! collector moves objects once the thread runs again.
//!
//! Every read is checked: instance types, string lengths, bounded string
//! nesting, bounded table sizes, names without control characters. What
//! does not check out gives `<unknown JS frame>`, never a guess.
//!
//! Decoded versions: node 20 (V8 11.3), 22 (V8 12.4), 24 (V8 13.6), 25
//! (V8 14.1) and 26 (V8 14.6). What the metadata does not give is these
//! versions' layout: the ScopeInfo ([`layout::SCOPE_V11_V12`],
//! [`layout::SCOPE_V13`]), the Code fields of V8 11.3 and the Code tables'
//! offsets from V8 12.4 on ([`layout::CodeLayout`]), and how a position
//! table codes its offsets ([`positions::DeltaCoding`]); each is checked by
//! the object's type and, for a Code, by the pc falling in its
//! instructions.
//!
//! The modules, by concern:
//! - this one: what callers use, [`V8`] (read from a node binary),
//!   [`JsFrame`], [`CodeKind`] and the [`Decoder`];
//! - [`constants`]: the `v8dbg_*` values, by name;
//! - [`layout`]: the heap layout those values imply, with what this
//!   module knows of each version that they do not say;
//! - [`heap`]: the page-cached, bounded reader of the stopped thread's
//!   heap;
//! - [`decoder`]: a frame's decoding: its function, its code and tier,
//!   the functions inlined there;
//! - [`names`]: the receiver's type, a method's name from the property
//!   holding it, and the names a ScopeInfo keeps;
//! - [`strings`]: V8 strings' text (sequential, external, cons, sliced,
//!   thin);
//! - [`positions`]: scripts' lines and the source position tables, with
//!   their pure decoding functions.
//!
//! How a new node release is added: pin it in `tests/fetch-node.sh`
//! (`make nodes` fetches it into `target/node/MAJOR`), run `npstack` on
//! it, and read the notice a frame left unnamed gives: it names node's and
//! V8's versions and the step that failed. Metadata that moved is usually
//! found again by a new name or prefix in [`layout::Layout::from`]; a
//! layout the metadata does not give (a ScopeInfo's header and flag bits,
//! a Code's fields) is a new case chosen by the values that tell it, next
//! to the others in [`layout`]; a position table's coding is learnt per
//! table kind in [`positions`]. Last, add it to the nodes the JavaScript
//! frame tests run (`tests/tests/npstack_js.rs`).

mod constants;
mod decoder;
mod heap;
mod layout;
mod names;
mod positions;
mod strings;
#[cfg(test)]
mod testing;
mod translation;

use std::collections::HashMap;
use std::ops::Range;

use super::nodejs::JsName;
use crate::elf::{
    Symbol, SymbolKind, bytes_at_vaddr, hashed_symbol_in, runs, section_in, symbols_with_prefix,
};
use constants::Constants;
pub(crate) use decoder::Decoder;
pub use decoder::NameCache;
use layout::Layout;
pub use layout::LayoutError;
pub use positions::{baseline_offset_at, source_position_at};

/// What V8 knows about a node binary: its layout, the frame types, and
/// where its embedded builtins are (the interpreter's frames run there).
#[derive(Debug, Clone)]
pub struct V8 {
    layout: Layout,
    frame_types: HashMap<i64, String>,
    /// The embedded builtins in the binary's text, at run time. (node 22
    /// also runs them from a second mapping of that text: see
    /// [`super::modules::Modules::alias_shift`].)
    builtins: Option<Range<u64>>,
}

const BLOB_CODE: &str = "v8_Default_embedded_blob_code_";
const BLOB_CODE_SIZE: &str = "v8_Default_embedded_blob_code_size_";
const BYTECODE_SIZES: &str = "_ZN2v88internal11interpreter9Bytecodes14kBytecodeSizesE";
/// `v8::internal::Version::`, before `6major_E` and the like.
const VERSION: &str = "_ZN2v88internal7Version";

/// Whether a symbol may be one of the builtins' bounds: local labels of
/// `.symtab`.
fn is_builtins_label(s: SymbolKind) -> bool {
    s.kind == object::elf::STT_NOTYPE && s.local && !s.dynamic && s.size == 0
}

/// Whether a `.symtab` symbol may be the bytecode sizes: a data object of
/// three rows of one byte a bytecode.
fn is_bytecode_sizes(s: SymbolKind) -> bool {
    s.kind == object::elf::STT_OBJECT && !s.dynamic && bytecode_sizes_size(s.size)
}

/// Whether `size` bytes can be the bytecode sizes (V8 has 128 to 256
/// bytecodes).
fn bytecode_sizes_size(size: u64) -> bool {
    size.is_multiple_of(3) && (3 * 128..=3 * 256).contains(&size)
}

/// Why an image gives no V8 to name frames with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V8Missing {
    /// No `v8dbg_*` symbols: a node built without them, or not node.
    #[error("it has no V8 postmortem metadata (v8dbg_* symbols)")]
    NoMetadata,
    /// The metadata is there, but what it says is not a layout npstack
    /// knows (what is missing or not recognised).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The module that holds the metadata (node, or libnode) could not be
    /// opened or is another build (its file name; its path is named in the
    /// notice about the file).
    #[error("V8's metadata is in {0}'s file, which cannot be used")]
    Unusable(String),
}

/// Symbols searched for in the node binary: the metadata, and where the
/// embedded builtins are. (The bytecode sizes are looked up by name.)
pub const SYMBOL_PREFIXES: &[&[u8]] = &[b"v8dbg_", BLOB_CODE.as_bytes()];

impl V8 {
    /// The V8 of an image whose symbols (from [`SYMBOL_PREFIXES`]) are
    /// `symbols`, loaded at `bias`; `read` gives a symbol's bytes from the
    /// file. `Err` says what is missing.
    pub fn from_symbols(
        symbols: &[Symbol],
        bias: u64,
        read: impl Fn(u64, u64) -> Option<Vec<u8>>,
    ) -> Result<V8, V8Missing> {
        let constants = Constants::from_symbols(symbols, |s| read(s.value, s.size));
        if constants.0.is_empty() {
            return Err(V8Missing::NoMetadata);
        }
        let mut v8 = V8 {
            frame_types: constants.frame_types(),
            layout: Layout::from(&constants)?,
            builtins: None,
        };
        v8.take_local_symbols(symbols, bias, read);
        Ok(v8)
    }

    /// Where the builtins are and the bytecode sizes, from `.symtab`'s
    /// symbols (`symbols`) and the bytes `read` gives; what is known
    /// already is kept.
    fn take_local_symbols(
        &mut self,
        symbols: &[Symbol],
        bias: u64,
        read: impl Fn(u64, u64) -> Option<Vec<u8>>,
    ) {
        let by_name = |n: &str| symbols.iter().find(|s| s.name == n);
        if self.layout.bytecode_sizes.is_none() {
            self.layout.bytecode_sizes = by_name(BYTECODE_SIZES)
                .filter(|s| bytecode_sizes_size(s.size))
                .and_then(|s| read(s.value, s.size));
        }
        if self.builtins.is_none() {
            self.builtins = by_name(BLOB_CODE).and_then(|start| {
                let size = by_name(BLOB_CODE_SIZE)?;
                let bytes = read(size.value, 4)?;
                let len = u32::from_le_bytes(bytes[..4].try_into().ok()?);
                let begin = start.value.wrapping_add(bias);
                Some(begin..begin.saturating_add(u64::from(len)))
            });
        }
    }

    /// Whether what only `.symtab` gives is missing (a stripped node):
    /// where the builtins are, or the bytecode sizes.
    pub fn lacks_local_symbols(&self) -> bool {
        self.builtins.is_none() || self.layout.bytecode_sizes.is_none()
    }

    /// Take what `.symtab` gives from `debug`, the separate debug file of
    /// the stripped node image `data`: the symbols from the debug file,
    /// their bytes from the image (a debug file keeps no data).
    pub fn complete_from_debug_file<'a, 'b, R: object::ReadRef<'a>, D: object::ReadRef<'b>>(
        &mut self,
        data: R,
        debug: D,
        bias: u64,
    ) {
        let symbols = symbols_with_prefix(
            debug,
            &[BLOB_CODE.as_bytes(), BYTECODE_SIZES.as_bytes()],
            |s| is_builtins_label(s) || is_bytecode_sizes(s),
        );
        self.take_local_symbols(&symbols, bias, |vaddr, len| {
            bytes_at_vaddr(data, vaddr, len)
        });
    }

    /// The V8 of an ELF image at offset 0 of `data`.
    pub fn from_image<'a, R: object::ReadRef<'a>>(data: R, bias: u64) -> Result<V8, V8Missing> {
        use object::elf::STT_OBJECT;
        // The metadata: exported data objects (in .dynsym, and again in
        // .symtab: read once), 4-byte ints in node 20 and 22, else of 1 to
        // 8 bytes. The builtins' bounds: two local labels of .symtab.
        let search = |sizes: &[u64]| {
            symbols_with_prefix(data, SYMBOL_PREFIXES, |s| {
                s.kind == STT_OBJECT && sizes.contains(&s.size) && s.dynamic || is_builtins_label(s)
            })
        };
        let mut symbols = search(&[4]);
        if !symbols.iter().any(|s| s.name.starts_with("v8dbg_")) {
            symbols = search(&[1, 2, 4, 8]);
        }
        // The bytecode sizes: exported to node 22; since node 24 in
        // `.symtab` only, among the few data objects of their size.
        match hashed_symbol_in(data, BYTECODE_SIZES).flatten() {
            Some(s) => symbols.push(s),
            None => symbols.extend(symbols_with_prefix(
                data,
                &[BYTECODE_SIZES.as_bytes()],
                is_bytecode_sizes,
            )),
        }
        // The constants lie together in .data: read them in runs, not one
        // read each.
        let mut spans: Vec<(u64, u64)> = symbols.iter().map(|s| (s.value, s.size.max(4))).collect();
        spans.sort_unstable();
        let runs: Vec<(u64, Vec<u8>)> = runs(&spans)
            .into_iter()
            .filter_map(|(_, start, end)| Some((start, bytes_at_vaddr(data, start, end - start)?)))
            .collect();
        V8::from_symbols(&symbols, bias, |vaddr, len| {
            let (start, bytes) = runs
                .iter()
                .find(|(s, b)| *s <= vaddr && vaddr - s < b.len() as u64)?;
            let at = usize::try_from(vaddr - start).ok()?;
            bytes
                .get(at..at.checked_add(usize::try_from(len).ok()?)?)
                .map(<[u8]>::to_vec)
        })
    }

    /// Which node and V8 an image holds, for messages: `node 24.22.3 (V8
    /// 13.6.233.17)`. node's version is where its release URL names it in
    /// `.rodata`, V8's in `v8::internal::Version`'s four ints (in
    /// `.symtab`). Read only when a message needs it.
    pub fn versions_in<'a, R: object::ReadRef<'a>>(data: R) -> String {
        use object::elf::STT_OBJECT;
        const RELEASE: &[u8] = b"/download/release/v";
        let node = section_in(data, b".rodata").and_then(|(_, text)| {
            let at = memchr::memmem::find(text, RELEASE)? + RELEASE.len();
            let rest = text.get(at..at + 32)?;
            let end = rest.iter().position(|&b| b == b'/')?;
            std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
        });
        let parts: Vec<Symbol> = symbols_with_prefix(data, &[VERSION.as_bytes()], |s| {
            s.kind == STT_OBJECT && s.size == 4
        });
        let part = |name: &str| {
            let s = parts
                .iter()
                .find(|s| s.name == format!("{VERSION}{name}"))?;
            let b = bytes_at_vaddr(data, s.value, 4)?;
            Some(i32::from_le_bytes(b[..4].try_into().ok()?))
        };
        let v8 = (|| {
            Some(format!(
                "{}.{}.{}.{}",
                part("6major_E")?,
                part("6minor_E")?,
                part("6build_E")?,
                part("6patch_E")?
            ))
        })();
        format!(
            "node {} (V8 {})",
            node.as_deref().unwrap_or("of unknown version"),
            v8.as_deref().unwrap_or("unknown")
        )
    }

    /// Whether `pc` is in V8's embedded builtins.
    pub fn in_builtins(&self, pc: u64) -> bool {
        self.builtins.as_ref().is_some_and(|r| r.contains(&pc))
    }

    /// Whether the embedded builtins were found (without them interpreted
    /// frames cannot be told from native ones).
    pub fn knows_builtins(&self) -> bool {
        self.builtins.is_some()
    }
}

/// What a V8 frame is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsFrame {
    /// A JavaScript function.
    Function(JsName),
    /// A frame of V8 itself, by its type (`entry frame`, `exit frame`).
    Internal(String),
    /// A frame in JIT code or the interpreter that did not decode.
    Unknown,
}

/// Where a frame's code is, as far as V8 goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// In V8's embedded builtins (the interpreter, stubs).
    Builtin,
    /// In code V8 compiled at run time (no module maps it).
    Jit,
}
