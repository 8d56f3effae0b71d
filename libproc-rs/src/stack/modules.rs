//! The code a target has mapped, as modules: which file covers which
//! addresses, its load bias, its unwind tables for framehop and its symbols.
//! Files are opened only when a stack touches them, and read with `pread`
//! through the one ELF reader (`object`).

use std::cell::{Cell, OnceCell};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use framehop::x86_64::UnwinderX86_64;
use framehop::{ExplicitModuleSectionInfo, Module as FhModule, Unwinder};

use super::v8::{V8, V8Missing};
use crate::elf::locate::{debug_file, open_mapped};
use crate::elf::{ElfImage, SymbolIndex, section_in, section_range_in, symbols_for};
use crate::error::Error;
use crate::stack::symbolize::{Dwarf, LineInfo, load_dwarf};
use crate::target::{MapName, Mapping, ProcessTarget};

/// The bytes of an ELF image: a file on disk, or a copy from the target's
/// memory (the vDSO).
#[derive(Debug)]
enum Image {
    File(ElfImage),
    Memory(Vec<u8>),
}

/// One mapped ELF object.
#[derive(Debug)]
pub struct Module {
    /// The path the target mapped it by (`[vdso]` for the vDSO).
    pub path: PathBuf,
    /// Lowest and highest address of its mappings.
    pub start: u64,
    pub end: u64,
    /// Its executable ranges.
    pub exec: Vec<(u64, u64)>,
    /// The mappings of the file, for its load bias.
    mappings: Vec<Mapping>,
    /// Executable mappings of the file away from where it was loaded: a
    /// second mapping of some of its code (node 22 maps V8's builtins
    /// again, near the code V8 compiles, for short calls).
    aliases: Vec<Mapping>,
    /// Each alias's range and how far it is from the loaded code, once the
    /// image is open.
    shifts: OnceCell<Vec<(u64, u64, u64)>>,
    vdso: bool,
    /// The image and its load bias, once opened (`None` when it could not
    /// be: missing, or not the file the target had).
    image: OnceCell<Option<(Image, u64)>>,
    /// Its separate debug file (by build-id), once looked for.
    debug: OnceCell<Option<ElfImage>>,
    /// Its DWARF, once looked for (`-v`).
    dwarf: OnceCell<Option<Dwarf>>,
    /// How many batches of addresses its symbols were looked up for: from
    /// the second on (a sampling run), through an index of its tables and
    /// of its debug file's, built once.
    lookups: Cell<u32>,
    index: OnceCell<SymbolIndex>,
    debug_index: OnceCell<SymbolIndex>,
}

impl Module {
    /// A module made of `mappings` (the vDSO's executable whole).
    fn new(path: PathBuf, mappings: Vec<Mapping>, vdso: bool) -> Module {
        Module {
            path,
            start: mappings.iter().map(|m| m.start).min().unwrap_or(0),
            end: mappings.iter().map(|m| m.end).max().unwrap_or(0),
            exec: mappings
                .iter()
                .filter(|m| vdso || m.perms.exec)
                .map(|m| (m.start, m.end))
                .collect(),
            mappings,
            aliases: Vec::new(),
            shifts: OnceCell::new(),
            vdso,
            image: OnceCell::new(),
            debug: OnceCell::new(),
            dwarf: OnceCell::new(),
            lookups: Cell::new(0),
            index: OnceCell::new(),
            debug_index: OnceCell::new(),
        }
    }

    /// The short name printed in frames: the file name.
    pub fn short_name(&self) -> &OsStr {
        if self.vdso {
            return OsStr::new("[vdso]");
        }
        self.path.file_name().unwrap_or(self.path.as_os_str())
    }

    pub fn is_exec(&self, addr: u64) -> bool {
        self.exec.iter().any(|&(s, e)| s <= addr && addr < e)
            || self.aliases.iter().any(|m| m.contains(addr))
    }

    /// How far `addr`, in an alias of this module's code, is from the same
    /// code where the module was loaded (0 outside aliases).
    pub fn shift_at(&self, addr: u64) -> u64 {
        self.shifts
            .get()
            .and_then(|v| v.iter().find(|&&(s, e, _)| s <= addr && addr < e))
            .map_or(0, |&(_, _, d)| d)
    }

    /// The load bias, once the image is open.
    pub fn bias(&self) -> Option<u64> {
        self.image.get()?.as_ref().map(|(_, b)| *b)
    }

    /// Where `addr` is in the file: its offset from the start of the file,
    /// by the mapping that holds it. For a module whose file could not be
    /// used, this is what is known of a frame in it (also in a second
    /// mapping of its code, as node's remapped V8 builtins are).
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        let m = self
            .mappings
            .iter()
            .chain(&self.aliases)
            .find(|m| m.contains(addr))?;
        Some(addr - m.start + m.offset)
    }

    /// The separate debug file for this module, if there is one where
    /// the target's debug files are looked for.
    fn debug_image(&self, target: &dyn ProcessTarget) -> Option<&ElfImage> {
        self.debug
            .get_or_init(|| match &self.image.get()?.as_ref()?.0 {
                Image::File(img) => debug_file(target, img, &self.path),
                Image::Memory(_) => None,
            })
            .as_ref()
    }

    fn with_data<T>(&self, f: impl FnOnce(&dyn ImageData) -> T) -> Option<T> {
        match &self.image.get()?.as_ref()?.0 {
            Image::File(img) => Some(f(&img.data())),
            Image::Memory(bytes) => Some(f(&bytes.as_slice())),
        }
    }
}

/// What the module code needs from an image, whatever holds its bytes.
trait ImageData {
    fn section(&self, name: &[u8]) -> Option<(u64, Vec<u8>)>;
    fn section_range(&self, name: &[u8]) -> Option<std::ops::Range<u64>>;
    fn symbols(
        &self,
        addrs: &[u64],
        index: Option<&OnceCell<SymbolIndex>>,
    ) -> Vec<Option<(String, u64)>>;
    fn v8(&self, bias: u64) -> Result<V8, V8Missing>;
    fn v8_versions(&self) -> String;
}

impl<'a, R: object::ReadRef<'a>> ImageData for R {
    fn section(&self, name: &[u8]) -> Option<(u64, Vec<u8>)> {
        section_in(*self, name).map(|(a, d)| (a, d.to_vec()))
    }
    fn section_range(&self, name: &[u8]) -> Option<std::ops::Range<u64>> {
        section_range_in(*self, name)
    }
    fn symbols(
        &self,
        addrs: &[u64],
        index: Option<&OnceCell<SymbolIndex>>,
    ) -> Vec<Option<(String, u64)>> {
        symbols_in(*self, addrs, index)
    }
    fn v8(&self, bias: u64) -> Result<V8, V8Missing> {
        V8::from_image(*self, bias)
    }
    fn v8_versions(&self) -> String {
        V8::versions_in(*self)
    }
}

/// The symbols of `addrs` in an image: through its index when one is
/// kept (built the first time), else by one scan of its tables.
fn symbols_in<'a, R: object::ReadRef<'a>>(
    data: R,
    addrs: &[u64],
    index: Option<&OnceCell<SymbolIndex>>,
) -> Vec<Option<(String, u64)>> {
    match index {
        Some(cell) => cell
            .get_or_init(|| SymbolIndex::build(data))
            .lookup(data, addrs),
        None => symbols_for(data, addrs),
    }
}

/// A symbol found for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolHit {
    pub name: String,
    /// Run-time address of the symbol's start.
    pub start: u64,
}

/// All modules of a target, sorted by address, with one framehop unwinder
/// holding the unwind tables of those opened so far.
pub struct Modules {
    pub list: Vec<Module>,
    unwinder: UnwinderX86_64<Vec<u8>>,
    notices: Vec<String>,
    /// The module V8's metadata was last read from.
    v8_module: Option<usize>,
}

impl std::fmt::Debug for Modules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modules").field("list", &self.list).finish()
    }
}

impl Modules {
    /// The modules of a target: every file with an executable mapping, and
    /// the vDSO.
    pub fn new(mappings: &[Mapping]) -> Modules {
        let mut by_path: HashMap<&Path, Vec<&Mapping>> = HashMap::new();
        for m in mappings {
            if let MapName::File(p) = &m.name {
                by_path.entry(p.as_path()).or_default().push(m);
            }
        }
        let mut list: Vec<Module> = by_path
            .into_iter()
            .filter(|(_, maps)| maps.iter().any(|m| m.perms.exec))
            .map(|(path, maps)| {
                // A loaded file's mappings keep address - offset close to
                // that of the mapping of its start (its ELF header); an
                // executable mapping far from it maps its code a second
                // time.
                let head = maps.iter().find(|m| m.offset == 0).unwrap_or(&maps[0]);
                let first = head.start.wrapping_sub(head.offset);
                let (near, far): (Vec<&Mapping>, Vec<&Mapping>) = maps
                    .iter()
                    .partition(|m| m.start.wrapping_sub(m.offset).abs_diff(first) < ALIAS_DISTANCE);
                let mut module =
                    Module::new(path.to_owned(), near.into_iter().cloned().collect(), false);
                module.aliases = far.into_iter().filter(|m| m.perms.exec).cloned().collect();
                module
            })
            .collect();
        for m in mappings.iter().filter(|m| m.name == MapName::Vdso) {
            list.push(Module::new(PathBuf::from("[vdso]"), vec![m.clone()], true));
        }
        list.sort_by_key(|m| m.start);
        Modules {
            list,
            unwinder: UnwinderX86_64::new(),
            notices: Vec::new(),
            v8_module: None,
        }
    }

    /// How far `addr` is from the same code where its module was loaded,
    /// when it is in a second mapping of that code (0 elsewhere).
    pub fn alias_shift(&self, addr: u64) -> u64 {
        self.exec_module_at(addr)
            .map_or(0, |i| self.list[i].shift_at(addr))
    }

    /// The module whose executable mappings hold `addr`.
    pub fn exec_module_at(&self, addr: u64) -> Option<usize> {
        let i = self.list.partition_point(|m| m.start <= addr);
        (0..i).rev().find(|&j| self.list[j].is_exec(addr))
    }

    /// The module whose executable mappings hold `addr`, if it has not been
    /// opened yet (nor failed to open).
    pub fn unopened_at(&self, addr: u64) -> Option<usize> {
        self.exec_module_at(addr)
            .filter(|&i| self.list[i].image.get().is_none())
    }

    /// Open module `i` and add its unwind tables, once.
    pub fn load(&mut self, i: usize, target: &dyn ProcessTarget) {
        if self.list[i].image.get().is_some() {
            return;
        }
        let loaded = open_image(&self.list[i], target, &mut self.notices);
        let module = &self.list[i];
        let _ = module.image.set(loaded);
        let Some(bias) = module.bias() else {
            return;
        };
        let shifts = match &module.image.get() {
            Some(Some((Image::File(img), _))) => alias_shifts(&module.aliases, &img.loads(), bias),
            _ => Vec::new(),
        };
        let _ = module.shifts.set(shifts);
        let sections = module.with_data(|d| {
            let text = d.section_range(b".text");
            (text, d.section(b".eh_frame_hdr"), d.section(b".eh_frame"))
        });
        let Some((text, hdr, eh)) = sections else {
            return;
        };
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: text,
            eh_frame_hdr_svma: hdr.as_ref().map(|(a, b)| span(*a, b)),
            eh_frame_hdr: hdr.map(|(_, b)| b),
            eh_frame_svma: eh.as_ref().map(|(a, b)| span(*a, b)),
            eh_frame: eh.map(|(_, b)| b),
            ..Default::default()
        };
        let name = module.path.to_string_lossy().into_owned();
        self.unwinder
            .add_module(FhModule::new(name, module.start..module.end, bias, info));
    }

    pub fn unwinder(&self) -> &UnwinderX86_64<Vec<u8>> {
        &self.unwinder
    }

    /// Symbols for lookup addresses (run-time), grouped per module so each
    /// symbol table is read once. The result is indexed like `addrs`.
    pub fn symbolize(&self, addrs: &[u64], target: &dyn ProcessTarget) -> Vec<Option<SymbolHit>> {
        let mut out = vec![None; addrs.len()];
        let mut per_module: HashMap<usize, Vec<(u64, usize)>> = HashMap::new();
        for (k, &a) in addrs.iter().enumerate() {
            if let Some(i) = self.exec_module_at(a)
                && let Some(bias) = self.list[i].bias()
            {
                per_module
                    .entry(i)
                    .or_default()
                    .push((a.wrapping_sub(bias), k));
            }
        }
        for (i, mut wanted) in per_module {
            wanted.sort_unstable();
            let svmas: Vec<u64> = wanted.iter().map(|w| w.0).collect();
            let module = &self.list[i];
            let bias = module.bias().unwrap_or(0);
            // The debug file's .symtab has the local names a stripped
            // library lacks; the library's own tables fill the rest.
            let batches = module.lookups.get();
            module.lookups.set(batches.saturating_add(1));
            let indexed = |cell| (batches > 0).then_some(cell);
            let mut found = match module.debug_image(target) {
                Some(debug) => symbols_in(debug.data(), &svmas, indexed(&module.debug_index)),
                None => vec![None; svmas.len()],
            };
            if found.iter().any(Option::is_none) {
                let Some(own) = module.with_data(|d| d.symbols(&svmas, indexed(&module.index)))
                else {
                    continue;
                };
                for (f, o) in found.iter_mut().zip(own) {
                    if f.is_none() {
                        *f = o;
                    }
                }
            }
            for ((_, k), hit) in wanted.iter().zip(found) {
                out[*k] = hit.map(|(name, start)| SymbolHit {
                    name,
                    start: start.wrapping_add(bias),
                });
            }
        }
        out
    }

    /// File, line and inlined calls for a run-time lookup address, from
    /// the DWARF of the module holding it.
    pub fn line_info(&self, addr: u64, target: &dyn ProcessTarget) -> Option<LineInfo> {
        let module = &self.list[self.exec_module_at(addr)?];
        let (image, bias) = module.image.get()?.as_ref()?;
        let Image::File(img) = image else {
            return None;
        };
        let dwarf = module
            .dwarf
            .get_or_init(|| load_dwarf(img, module.debug_image(target)))
            .as_ref()?;
        Some(dwarf.lookup(addr.wrapping_sub(*bias)))
    }

    /// Open the modules a stopped thread's walk most likely needs before
    /// threads are stopped: the C library (where threads wait), the dynamic
    /// loader and the vDSO. (The V8 module is open already.) Any other is
    /// opened when a walk first needs it.
    pub fn load_common(&mut self, target: &dyn ProcessTarget) {
        for i in 0..self.list.len() {
            let name = self.list[i].short_name().as_encoded_bytes();
            if self.list[i].vdso
                || name.starts_with(b"libc.so")
                || name.starts_with(b"libc-")
                || name.starts_with(b"ld-linux")
            {
                self.load(i, target);
            }
        }
    }

    /// V8's postmortem metadata, from the module that has it: the
    /// executable (node) or a library named like node's (libnode.so).
    /// `None` when no candidate module could be opened and none is named
    /// like node.
    pub fn v8(&mut self, target: &dyn ProcessTarget) -> Option<Result<V8, V8Missing>> {
        let mut found = None;
        for i in self.v8_candidates(target) {
            self.load(i, target);
            self.v8_module = Some(i);
            let m = &self.list[i];
            let Some(bias) = m.bias() else {
                // node's (or libnode's) file is missing or another build:
                // that is why no JavaScript frame is named.
                let name = m.short_name().as_encoded_bytes();
                if found.is_none() && (name.starts_with(b"node") || name.starts_with(b"libnode")) {
                    let shown = crate::escape::escape_path(Path::new(m.short_name()));
                    found = Some(Err(V8Missing::Unusable(shown.into_owned())));
                }
                continue;
            };
            match m.with_data(|d| d.v8(bias)) {
                Some(Ok(mut v8)) => {
                    // A stripped node: what only .symtab gives, from its
                    // debug file.
                    if v8.lacks_local_symbols()
                        && let Some(debug) = m.debug_image(target)
                        && let Some(Image::File(img)) =
                            m.image.get().and_then(|i| i.as_ref()).map(|i| &i.0)
                    {
                        v8.complete_from_debug_file(img.data(), debug.data(), bias);
                    }
                    return Some(Ok(v8));
                }
                Some(Err(why)) => found = Some(Err(why)),
                None => {}
            }
        }
        found
    }

    /// Which node and V8 the module with V8 in it is (see
    /// [`V8::versions_in`]), for messages.
    pub fn v8_versions(&mut self, target: &dyn ProcessTarget) -> String {
        self.v8_module
            .into_iter()
            .chain(self.v8_candidates(target))
            .find_map(|i| self.list[i].with_data(|d| d.v8_versions()))
            .unwrap_or_else(|| "node of unknown version".to_owned())
    }

    /// The modules that may hold V8: the executable (node) or a library
    /// named like node's (libnode.so).
    fn v8_candidates(&self, target: &dyn ProcessTarget) -> Vec<usize> {
        let entry = target.auxv().ok().and_then(|a| {
            a.iter()
                .find(|e| e.key == crate::parse::auxv::AT_ENTRY)
                .map(|e| e.value)
        });
        (0..self.list.len())
            .filter(|&i| {
                let m = &self.list[i];
                !m.vdso
                    && (entry.is_some_and(|e| m.start <= e && e < m.end)
                        || m.short_name().as_encoded_bytes().starts_with(b"libnode"))
            })
            .collect()
    }

    /// Warnings from opening modules (a file that is not the one the
    /// process had). Drains them.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }
}

/// How far apart two mappings of one file can be and still belong to one
/// load of it (address minus file offset).
const ALIAS_DISTANCE: u64 = 1 << 30;

/// Each alias's range and its distance from where its file offset is
/// loaded, given the file's `PT_LOAD` segments (offset, vaddr, filesz,
/// memsz) and load bias.
fn alias_shifts(
    aliases: &[Mapping],
    loads: &[(u64, u64, u64, u64)],
    bias: u64,
) -> Vec<(u64, u64, u64)> {
    aliases
        .iter()
        .filter_map(|m| {
            let &(off, vaddr, _, _) = loads
                .iter()
                .find(|&&(off, _, filesz, _)| off <= m.offset && m.offset < off + filesz)?;
            let loaded = vaddr.wrapping_add(m.offset - off).wrapping_add(bias);
            Some((m.start, m.end, m.start.wrapping_sub(loaded)))
        })
        .collect()
}

/// The address range of section bytes starting at `start`.
fn span(start: u64, bytes: &[u8]) -> std::ops::Range<u64> {
    start..start.saturating_add(bytes.len() as u64)
}

/// Open a module's image and work out its load bias, checking that a file
/// on disk is the one the target mapped (same build-id as the ELF header in
/// the target's memory).
fn open_image(
    module: &Module,
    target: &dyn ProcessTarget,
    notices: &mut Vec<String>,
) -> Option<(Image, u64)> {
    if module.vdso {
        let mut bytes = vec![0u8; module.end.saturating_sub(module.start).min(1 << 20) as usize];
        let n = target.read_memory(module.start, &mut bytes).ok()?;
        bytes.truncate(n);
        let (vaddr, _) = crate::elf::first_load_in(bytes.as_slice())?;
        let bias = module.start.wrapping_sub(vaddr & !0xfff);
        return Some((Image::Memory(bytes), bias));
    }
    let maps: Vec<&Mapping> = module.mappings.iter().collect();
    let image = match open_mapped(target, &module.path, &maps) {
        Ok(found) => {
            notices.extend(found.passed_over);
            found.file
        }
        Err(e @ Error::WrongFile { .. }) => {
            notices.push(e.to_string());
            return None;
        }
        Err(e) => {
            notices.push(format!(
                "{e}; its frames are shown as offsets into the file"
            ));
            return None;
        }
    };
    let bias = image.load_bias(&maps)?;
    Some((Image::File(image), bias))
}
