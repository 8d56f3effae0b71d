//! ELF images the target has mapped: symbols, build-ids, load addresses.
//!
//! Files are parsed with `object`, the one ELF reader of this crate (the
//! core reader uses it too). A mapped file is read with `pread` through
//! object's `ReadCache` rather than mmapped: the file belongs to the target,
//! which could truncate it while we read, and a truncated mapping kills the
//! reader with SIGBUS. Only the parts asked for are read: finding a symbol
//! in node's 75,000-entry `.dynsym` goes through the GNU hash table.

use std::fs::File;
use std::path::{Path, PathBuf};

pub mod locate;
pub mod variables;

use memmap2::Mmap;
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, LittleEndian, ReadCache, ReadRef};

use crate::error::{Error, Result};
use crate::target::Mapping;

type Header = FileHeader64<Endianness>;

/// Map a file read-only (core files). Empty files cannot be mapped; say so.
pub fn map_file(file: &File, path: &Path) -> Result<Mmap> {
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::NotCore {
            path: path.to_owned(),
            what: "the file is empty".into(),
        });
    }
    // SAFETY: the mapping is read-only and private to this process. A core
    // truncated by someone else while mapped would raise SIGBUS; that is the
    // accepted cost of never reading a multi-gigabyte core whole.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
    Ok(map)
}

/// A symbol found in an image, with its link-time address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub value: u64,
    pub size: u64,
}

/// An ELF file a target mapped.
#[derive(Debug)]
pub struct ElfImage {
    path: PathBuf,
    cache: ReadCache<File>,
}

impl ElfImage {
    /// Check and open an ELF file.
    pub fn open(file: File, path: &Path) -> Result<Self> {
        let image = ElfImage {
            path: path.to_owned(),
            cache: ReadCache::new(file),
        };
        Header::parse(&image.cache).map_err(|e| Error::BadElf {
            path: path.to_owned(),
            what: e.to_string(),
        })?;
        Ok(image)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn header(&self) -> Option<(&Header, Endianness)> {
        let h = Header::parse(&self.cache).ok()?;
        let e = h.endian().ok()?;
        Some((h, e))
    }

    /// `ET_EXEC`, `ET_DYN`, ...
    pub fn file_type(&self) -> u16 {
        self.header().map(|(h, e)| h.e_type(e).0).unwrap_or(0)
    }

    /// The `PT_LOAD` segments as (file offset, vaddr, filesz, memsz).
    pub fn loads(&self) -> Vec<(u64, u64, u64, u64)> {
        let Some((h, e)) = self.header() else {
            return Vec::new();
        };
        let Ok(phdrs) = h.program_headers(e, &self.cache) else {
            return Vec::new();
        };
        phdrs
            .iter()
            .filter(|p| p.p_type(e) == elf::PT_LOAD)
            .map(|p| (p.p_offset(e), p.p_vaddr(e), p.p_filesz(e), p.p_memsz(e)))
            .collect()
    }

    /// The GNU build-id, from the `PT_NOTE` segments.
    pub fn build_id(&self) -> Option<Vec<u8>> {
        build_id_in(&self.cache)
    }

    /// Find the first *defined* symbol among `names`, in `.dynsym` (through
    /// the GNU hash table when there is one) and then in `.symtab`.
    pub fn find_symbol(&self, names: &[&str]) -> Option<Symbol> {
        let (h, e) = self.header()?;
        let data = &self.cache;
        let sections = h.sections(e, data).ok()?;
        let defined = |sym: &elf::Sym64<Endianness>| {
            use object::read::elf::Sym;
            sym.st_shndx(e) != elf::SHN_UNDEF && sym.st_value(e) != 0
        };
        let make = |name: &str, sym: &elf::Sym64<Endianness>| {
            use object::read::elf::Sym;
            Symbol {
                name: name.to_owned(),
                value: sym.st_value(e),
                size: sym.st_size(e),
            }
        };
        // .dynsym through the GNU hash table.
        if let Some(found) = names
            .iter()
            .find_map(|n| hashed_symbol_in(data, n).flatten())
        {
            return Some(found);
        }
        // Linear search: .dynsym without a hash table, then .symtab (a static
        // binary has only that).
        for kind in [elf::SHT_DYNSYM, elf::SHT_SYMTAB] {
            let Ok(table) = sections.symbols(e, data, kind) else {
                continue;
            };
            for name in names {
                for sym in table.iter() {
                    use object::read::elf::Sym;
                    if defined(sym) && sym.name(e, table.strings()) == Ok(name.as_bytes()) {
                        return Some(make(name, sym));
                    }
                }
            }
        }
        None
    }

    /// The file's bytes, for the generic readers below.
    pub fn data(&self) -> &ReadCache<File> {
        &self.cache
    }

    /// The difference between run-time and link-time addresses, given the
    /// mappings of this file in the target.
    pub fn load_bias(&self, mappings: &[&Mapping]) -> Option<u64> {
        if self.file_type() == elf::ET_EXEC.0 {
            return Some(0);
        }
        let page = 4096u64;
        for (offset, vaddr, _, _) in self.loads() {
            let want = offset & !(page - 1);
            if let Some(m) = mappings.iter().find(|m| m.offset == want) {
                return Some(m.start.wrapping_sub(vaddr & !(page - 1)));
            }
        }
        None
    }
}

/// A defined symbol of `.dynsym` by name, through the GNU hash table, in an
/// ELF image at offset 0 of `data`: `Some(None)` when the table says it is
/// not there, `None` when there is no table to ask.
pub fn hashed_symbol_in<'a, R: ReadRef<'a>>(data: R, name: &str) -> Option<Option<Symbol>> {
    use object::read::elf::Sym;
    let h = FileHeader64::<LittleEndian>::parse(data).ok()?;
    let e = LittleEndian;
    let sections = h.sections(e, data).ok()?;
    let dynsym = sections.symbols(e, data, elf::SHT_DYNSYM).ok()?;
    let (hash, link) = sections.gnu_hash(e, data).ok()??;
    if link != dynsym.section() {
        return None;
    }
    let versions = sections
        .versions(e, data)
        .ok()
        .flatten()
        .unwrap_or_default();
    let found = hash.find(
        e,
        name.as_bytes(),
        elf::gnu_hash(name.as_bytes()),
        None,
        &dynsym,
        &versions,
    );
    Some(
        found
            .filter(|(_, sym)| sym.st_shndx(e) != elf::SHN_UNDEF && sym.st_value(e) != 0)
            .map(|(_, sym)| Symbol {
                name: name.to_owned(),
                value: sym.st_value(e),
                size: sym.st_size(e),
            }),
    )
}

/// The build-id in the `PT_NOTE` segments of an ELF image that starts at
/// offset 0 of `data` (a file, or its first page copied from memory).
pub fn build_id_in<'a, R: ReadRef<'a>>(data: R) -> Option<Vec<u8>> {
    let h = FileHeader64::<LittleEndian>::parse(data).ok()?;
    let e = LittleEndian;
    for ph in h.program_headers(e, data).ok()? {
        if ph.p_type(e) != elf::PT_NOTE {
            continue;
        }
        let Ok(Some(mut notes)) = ph.notes(e, data) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == elf::ELF_NOTE_GNU && note.n_type(e) == elf::NT_GNU_BUILD_ID {
                return Some(note.desc().to_vec());
            }
        }
    }
    None
}

/// Lower-case hex of a build-id.
pub fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A section's header, by name, in an ELF image at offset 0 of `data`.
fn section_header_in<'a, R: ReadRef<'a>>(
    data: R,
    name: &[u8],
) -> Option<&'a elf::SectionHeader64<LittleEndian>> {
    let h = FileHeader64::<LittleEndian>::parse(data).ok()?;
    let sections = h.sections(LittleEndian, data).ok()?;
    sections
        .section_by_name(LittleEndian, name)
        .map(|(_, sh)| sh)
}

/// A section's link-time address range, by name, without reading it.
pub fn section_range_in<'a, R: ReadRef<'a>>(data: R, name: &[u8]) -> Option<std::ops::Range<u64>> {
    use object::read::elf::SectionHeader;
    let sh = section_header_in(data, name)?;
    let start = sh.sh_addr(LittleEndian);
    Some(start..start.saturating_add(sh.sh_size(LittleEndian)))
}

/// A section's link-time address and contents, by name, in an ELF image at
/// offset 0 of `data`. `None` for a missing or `SHT_NOBITS` section.
pub fn section_in<'a, R: ReadRef<'a>>(data: R, name: &[u8]) -> Option<(u64, &'a [u8])> {
    use object::read::elf::SectionHeader;
    let sh = section_header_in(data, name)?;
    let e = LittleEndian;
    if sh.sh_type(e) == elf::SHT_NOBITS {
        return None;
    }
    Some((sh.sh_addr(e), sh.data(e, data).ok()?))
}

/// Largest debug section decompressed (the size is the file's word).
const DECOMPRESSED_MAX: u64 = 1 << 30;

/// A section's contents by name, decompressed when it is `SHF_COMPRESSED`
/// (debug files usually are).
pub fn debug_section_in<'a, R: ReadRef<'a>>(
    data: R,
    name: &[u8],
) -> Option<std::borrow::Cow<'a, [u8]>> {
    use object::read::elf::{CompressionHeader, SectionHeader};
    use object::{CompressedData, CompressionFormat};
    let sh = section_header_in(data, name)?;
    let e = LittleEndian;
    if sh.sh_type(e) == elf::SHT_NOBITS {
        return None;
    }
    let Some((header, offset, size)) = sh.compression(e, data).ok()? else {
        return sh.data(e, data).ok().map(std::borrow::Cow::Borrowed);
    };
    let format = match header.ch_type(e) {
        elf::ELFCOMPRESS_ZLIB => CompressionFormat::Zlib,
        elf::ELFCOMPRESS_ZSTD => CompressionFormat::Zstandard,
        _ => return None,
    };
    let uncompressed_size = header.ch_size(e);
    if uncompressed_size > DECOMPRESSED_MAX {
        return None;
    }
    CompressedData {
        format,
        data: data.read_bytes_at(offset, size).ok()?,
        uncompressed_size,
    }
    .decompress()
    .ok()
}

type SymbolTable<'a, R> = object::read::elf::SymbolTable<'a, FileHeader64<LittleEndian>, R>;

/// The symbol tables of an ELF image, `.symtab` before `.dynsym` (the
/// order a name is preferred in).
fn symbol_tables<'a, R: ReadRef<'a>>(data: R) -> Vec<SymbolTable<'a, R>> {
    let e = LittleEndian;
    let Some(sections) = FileHeader64::<LittleEndian>::parse(data)
        .ok()
        .and_then(|h| h.sections(e, data).ok())
    else {
        return Vec::new();
    };
    [elf::SHT_SYMTAB, elf::SHT_DYNSYM]
        .into_iter()
        .filter_map(|kind| sections.symbols(e, data, kind).ok())
        .collect()
}

/// The address range of a defined function symbol. A size of 0
/// (hand-written assembly) covers one byte: better no name than a wrong
/// one.
fn function_range(sym: &elf::Sym64<LittleEndian>) -> Option<(u64, u64)> {
    use object::read::elf::Sym;
    let e = LittleEndian;
    let kind = sym.st_type();
    if (kind != elf::STT_FUNC && kind != elf::STT_GNU_IFUNC) || sym.st_shndx(e) == elf::SHN_UNDEF {
        return None;
    }
    let start = sym.st_value(e);
    Some((start, start.saturating_add(sym.st_size(e).max(1))))
}

/// The name of a symbol, when it has one.
fn symbol_name<'a, R: ReadRef<'a>>(
    table: &SymbolTable<'a, R>,
    sym: &elf::Sym64<LittleEndian>,
) -> Option<String> {
    use object::read::elf::Sym;
    let name = sym.name(LittleEndian, table.strings()).ok()?;
    (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
}

/// The function symbol containing each of `addrs` (link-time addresses,
/// sorted ascending), from `.symtab` and `.dynsym`: its name and start
/// address. Two passes over each table whatever the number of addresses
/// (the innermost containing symbol, then its name); names are read only
/// for the symbols that match. For one batch of lookups; many batches
/// over one image are cheaper through a [`SymbolIndex`], which gives the
/// same answers.
pub fn symbols_for<'a, R: ReadRef<'a>>(data: R, addrs: &[u64]) -> Vec<Option<(String, u64)>> {
    let mut names: Vec<Option<(String, u64)>> = vec![None; addrs.len()];
    let tables = symbol_tables(data);
    // Pass 1: the latest-starting symbol that contains each address.
    let mut best: Vec<Option<u64>> = vec![None; addrs.len()];
    for table in &tables {
        for sym in table.iter() {
            let Some((start, end)) = function_range(sym) else {
                continue;
            };
            let first = addrs.partition_point(|&a| a < start);
            for (i, &a) in addrs.iter().enumerate().skip(first) {
                if a >= end {
                    break;
                }
                if best[i].is_none_or(|b| start > b) {
                    best[i] = Some(start);
                }
            }
        }
    }
    // Pass 2: a name for each chosen start, from .symtab before .dynsym.
    let mut wanted: Vec<(u64, usize)> = best
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|start| (start, i)))
        .collect();
    wanted.sort_unstable();
    for table in &tables {
        for sym in table.iter() {
            let Some((start, end)) = function_range(sym) else {
                continue;
            };
            let first = wanted.partition_point(|&(s, _)| s < start);
            for &(s, i) in &wanted[first..] {
                if s != start {
                    break;
                }
                if names[i].is_none()
                    && addrs[i] < end
                    && let Some(name) = symbol_name(table, sym)
                {
                    names[i] = Some((name, start));
                }
            }
        }
    }
    names
}

/// An image's function symbols sorted by address, for many lookups (a
/// sampling run meets new addresses in every batch): one pass over the
/// tables to build, then a binary search per address, with the answers
/// of [`symbols_for`]. It holds no names (node's tables have over a
/// hundred thousand): they are read from the image when found.
#[derive(Debug, Default)]
pub struct SymbolIndex {
    /// Start, end, table (its place in [`symbol_tables`]) and index in
    /// it, sorted by start and then in the order a name is preferred in.
    entries: Vec<(u64, u64, u32, u32)>,
    /// The highest end of `entries[..=i]`: a search going down from an
    /// address stops where no earlier symbol reaches it.
    reach: Vec<u64>,
}

impl SymbolIndex {
    pub fn build<'a, R: ReadRef<'a>>(data: R) -> SymbolIndex {
        let mut entries = Vec::new();
        for (t, table) in symbol_tables(data).iter().enumerate() {
            for (i, sym) in table.iter().enumerate() {
                if let Some((start, end)) = function_range(sym) {
                    entries.push((start, end, t as u32, i as u32));
                }
            }
        }
        entries.sort_unstable_by_key(|&(start, _, table, i)| (start, table, i));
        let reach = entries
            .iter()
            .scan(0, |high, e| {
                *high = e.1.max(*high);
                Some(*high)
            })
            .collect();
        SymbolIndex { entries, reach }
    }

    /// As [`symbols_for`] on the image the index was built from (`data`).
    pub fn lookup<'a, R: ReadRef<'a>>(&self, data: R, addrs: &[u64]) -> Vec<Option<(String, u64)>> {
        let tables = symbol_tables(data);
        addrs
            .iter()
            .map(|&a| {
                let start = self.innermost_start(a)?;
                let first = self.entries.partition_point(|e| e.0 < start);
                self.entries[first..]
                    .iter()
                    .take_while(|e| e.0 == start)
                    .filter(|e| a < e.1)
                    .find_map(|&(_, _, t, i)| {
                        let table = tables.get(t as usize)?;
                        let sym = table.symbol(object::SymbolIndex(i as usize)).ok()?;
                        symbol_name(table, sym)
                    })
                    .map(|name| (name, start))
            })
            .collect()
    }

    /// The latest start of a symbol containing `addr`.
    fn innermost_start(&self, addr: u64) -> Option<u64> {
        let below = self.entries.partition_point(|e| e.0 <= addr);
        (0..below)
            .rev()
            .take_while(|&j| self.reach[j] > addr)
            .find(|&j| self.entries[j].1 > addr)
            .map(|j| self.entries[j].0)
    }
}

/// The `PT_LOAD` program headers of an ELF image at offset 0 of `data`.
fn loads_in<'a, R: ReadRef<'a>>(data: R) -> Vec<&'a elf::ProgramHeader64<LittleEndian>> {
    let Ok(h) = FileHeader64::<LittleEndian>::parse(data) else {
        return Vec::new();
    };
    let e = LittleEndian;
    h.program_headers(e, data)
        .map(|p| p.iter().filter(|p| p.p_type(e) == elf::PT_LOAD).collect())
        .unwrap_or_default()
}

/// The link-time address and file offset of the first `PT_LOAD` segment
/// of an ELF image at offset 0 of `data`.
pub fn first_load_in<'a, R: ReadRef<'a>>(data: R) -> Option<(u64, u64)> {
    let e = LittleEndian;
    loads_in(data)
        .first()
        .map(|p| (p.p_vaddr(e), p.p_offset(e)))
}

/// The `p_flags` of the `PT_LOAD` segment covering file offset `offset`
/// (page-aligned, as a mapping's offset is), from an ELF image's first
/// bytes.
pub fn load_flags_at<'a, R: ReadRef<'a>>(data: R, offset: u64) -> Option<u32> {
    let e = LittleEndian;
    loads_in(data)
        .into_iter()
        .find(|p| {
            let start = p.p_offset(e) & !0xfff;
            start <= offset && offset < p.p_offset(e).saturating_add(p.p_filesz(e)).max(start + 1)
        })
        .map(|p| p.p_flags(e).0)
}

/// What a symbol is, before its name is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolKind {
    /// From `.dynsym` (else `.symtab`).
    pub dynamic: bool,
    /// `STT_OBJECT`, `STT_FUNC`, `STT_NOTYPE`, ...
    pub kind: elf::SymbolType,
    pub local: bool,
    pub size: u64,
}

/// The defined symbols whose names start with one of `prefixes`, from
/// `.dynsym` and then `.symtab` (each name once: the first seen wins).
/// Only the names of symbols `worth` keeps are read: reading all of
/// node's 180,000 names would cost more than the search.
pub fn symbols_with_prefix<'a, R: ReadRef<'a>>(
    data: R,
    prefixes: &[&[u8]],
    worth: impl Fn(SymbolKind) -> bool,
) -> Vec<Symbol> {
    use object::read::elf::Sym;
    let mut out: Vec<Symbol> = Vec::new();
    let Ok(h) = FileHeader64::<LittleEndian>::parse(data) else {
        return out;
    };
    let e = LittleEndian;
    let Ok(sections) = h.sections(e, data) else {
        return out;
    };
    let mut seen = std::collections::HashSet::new();
    for kind in [elf::SHT_DYNSYM, elf::SHT_SYMTAB] {
        use object::read::elf::SectionHeader;
        let Ok(table) = sections.symbols(e, data, kind) else {
            continue;
        };
        let Some((strtab, strtab_len)) = sections
            .section(table.string_section())
            .ok()
            .and_then(|sh| sh.file_range(e))
        else {
            continue;
        };
        // The names worth reading, by their place in the string table:
        // read in runs (node's v8dbg_ names lie together), not one by one.
        let mut wanted: Vec<(u64, &elf::Sym64<LittleEndian>)> = table
            .iter()
            .filter(|sym| {
                sym.st_shndx(e) != elf::SHN_UNDEF
                    && worth(SymbolKind {
                        dynamic: kind == elf::SHT_DYNSYM,
                        kind: sym.st_type(),
                        local: sym.st_bind() == elf::STB_LOCAL,
                        size: sym.st_size(e),
                    })
            })
            .map(|sym| (u64::from(sym.st_name(e)), sym))
            .filter(|&(at, _)| at < strtab_len)
            .collect();
        wanted.sort_unstable_by_key(|&(at, _)| at);
        let spans: Vec<(u64, u64)> = wanted.iter().map(|&(at, _)| (at, NAME_READ)).collect();
        for (run, first, end) in runs(&spans) {
            let end = end.min(strtab_len);
            let Ok(bytes) = data.read_bytes_at(strtab + first, end - first) else {
                continue;
            };
            for &(at, sym) in &wanted[run] {
                let tail = &bytes[(at - first) as usize..];
                let Some(len) = tail.iter().position(|&b| b == 0) else {
                    continue;
                };
                let name = &tail[..len];
                if prefixes.iter().any(|p| name.starts_with(p)) && seen.insert(name) {
                    out.push(Symbol {
                        name: String::from_utf8_lossy(name).into_owned(),
                        value: sym.st_value(e),
                        size: sym.st_size(e),
                    });
                }
            }
        }
    }
    out
}

/// The longest symbol name [`symbols_with_prefix`] reads.
const NAME_READ: u64 = 512;
/// Spans less than this far apart are read together.
const RUN_GAP: u64 = 4096;

/// Spans (start, length), sorted by start, grouped into runs to read in
/// one piece each: spans less than [`RUN_GAP`] apart share a run. Each run
/// is the range of its spans' indices and the bytes it covers.
pub fn runs(spans: &[(u64, u64)]) -> Vec<(std::ops::Range<usize>, u64, u64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        let start = spans[i].0;
        let mut end = start.saturating_add(spans[i].1);
        let mut j = i + 1;
        while j < spans.len() && spans[j].0 < end.saturating_add(RUN_GAP) {
            end = end.max(spans[j].0.saturating_add(spans[j].1));
            j += 1;
        }
        out.push((i..j, start, end));
        i = j;
    }
    out
}

/// `len` bytes at link-time address `vaddr`, from the `PT_LOAD` segment
/// holding them: its file contents, and zeros past them (`.bss`, where a
/// constant that is 0 lives).
pub fn bytes_at_vaddr<'a, R: ReadRef<'a>>(data: R, vaddr: u64, len: u64) -> Option<Vec<u8>> {
    let e = LittleEndian;
    let p = loads_in(data).into_iter().find(|p| {
        let start = p.p_vaddr(e);
        start <= vaddr && vaddr.saturating_add(len) <= start.saturating_add(p.p_memsz(e))
    })?;
    let rel = vaddr - p.p_vaddr(e);
    let in_file = p.p_filesz(e).saturating_sub(rel).min(len);
    let mut out = vec![0u8; usize::try_from(len).ok()?];
    if in_file > 0 {
        let bytes = data
            .read_bytes_at(p.p_offset(e).checked_add(rel)?, in_file)
            .ok()?;
        out[..bytes.len()].copy_from_slice(bytes);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index answers as the scan does, on real binaries: this test's
    /// own executable (Rust, with local symbols) and the C library, at the
    /// start, middle and end of every function and between functions.
    #[test]
    fn the_symbol_index_answers_as_the_scan() {
        for path in ["/proc/self/exe", "/usr/lib/x86_64-linux-gnu/libc.so.6"] {
            let Ok(bytes) = std::fs::read(path) else {
                assert_ne!(path, "/proc/self/exe", "cannot read {path}");
                continue;
            };
            let data = &bytes[..];
            let mut addrs: Vec<u64> = symbol_tables(data)
                .iter()
                .flat_map(|t| t.iter().filter_map(function_range).collect::<Vec<_>>())
                .flat_map(|(s, e)| [s.saturating_sub(1), s, s + (e - s) / 2, e - 1, e])
                .collect();
            addrs.sort_unstable();
            addrs.dedup();
            assert!(addrs.len() > 1000, "{path}: {} addresses", addrs.len());
            let index = SymbolIndex::build(data);
            assert_eq!(
                index.lookup(data, &addrs),
                symbols_for(data, &addrs),
                "{path}"
            );
            assert!(index.lookup(data, &addrs).iter().any(Option::is_some));
        }
    }

    #[test]
    fn spans_close_together_are_read_in_one_run() {
        // Two spans 100 bytes apart, one far away, one inside the first.
        let spans = [(0, 8), (100, 8), (10, 2), (100_000, 4)];
        let mut sorted = spans.to_vec();
        sorted.sort_unstable();
        assert_eq!(
            runs(&sorted),
            vec![(0..3, 0, 108), (3..4, 100_000, 100_004)]
        );
        assert_eq!(runs(&[]), vec![]);
        // A span at the end of the address space does not overflow.
        assert_eq!(
            runs(&[(u64::MAX - 1, 8)]),
            vec![(0..1, u64::MAX - 1, u64::MAX)]
        );
    }
}
