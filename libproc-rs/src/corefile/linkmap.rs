//! The mapped files of a core that has no `NT_FILE` note, recovered from
//! the dynamic linker's list of loaded modules in the core's memory.
//!
//! The kernel leaves `NT_FILE` out when the table would exceed
//! `kernel.core_file_note_size_limit` (4 MiB by default: about 20,000
//! mappings of files with long paths). Without it a core's segments are
//! bare address ranges. What the dynamic linker keeps in memory still
//! names the modules:
//!
//! ```text
//!   AT_PHDR, AT_PHNUM (auxv)  -> the executable's program headers
//!   PT_PHDR                   -> where the executable is loaded
//!   PT_DYNAMIC -> DT_DEBUG    -> struct r_debug { r_version, r_map, ... }
//!   r_map -> struct link_map { l_addr, l_name, l_ld, l_next, ... } -> ...
//! ```
//!
//! Each module's own program headers (in memory: the kernel dumps the first
//! page of every ELF mapping; else from the file) say which of its pages
//! come from which offset of the file, and the core's segments that lie in
//! them become the entries `NT_FILE` would have held. The executable is
//! named by `AT_EXECFN`. Other mapped files (data files, not modules) are
//! not in the list and stay unnamed.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;

use object::LittleEndian;
use object::elf::{self, Dyn64, FileHeader64, ProgramHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};

use crate::escape::escape_path;
use crate::parse::auxv::{self, AuxEntry};
use crate::parse::notes::FileMapping;
use crate::target::{Memory, MemoryExt};

const PAGE: u64 = 4096;
/// Bounds against a corrupted or hostile list.
const MAX_MODULES: usize = 4096;
const MAX_NAMESPACES: usize = 16;
const MAX_DYNAMIC: u64 = 4096;
const MAX_PATH: usize = 4096;

type Phdr = ProgramHeader64<LittleEndian>;

/// A module: its path, load bias and the `PT_LOAD` headers that say where
/// its file's pages are.
struct Module {
    path: PathBuf,
    bias: u64,
    loads: Vec<(u64, u64, u64)>,
}

/// The `PT_LOAD` headers as (vaddr, filesz, offset).
fn loads_of(phdrs: &[Phdr]) -> Vec<(u64, u64, u64)> {
    let e = LittleEndian;
    phdrs
        .iter()
        .filter(|p| p.p_type(e) == elf::PT_LOAD && p.p_filesz(e) > 0)
        .map(|p| (p.p_vaddr(e), p.p_filesz(e), p.p_offset(e)))
        .collect()
}

/// `count` program headers at `addr` in memory.
fn phdrs_at(mem: &dyn Memory, addr: u64, count: u64) -> Option<Vec<Phdr>> {
    let size = size_of::<Phdr>();
    if count == 0 || count > 4096 {
        return None;
    }
    let mut buf = vec![0u8; count as usize * size];
    mem.read_exact_at(addr, &mut buf).ok()?;
    let (list, _) = object::pod::slice_from_bytes::<Phdr>(&buf, count as usize).ok()?;
    Some(list.to_vec())
}

/// The program headers of the ELF image whose header is at `addr`.
fn image_phdrs_in_memory(mem: &dyn Memory, addr: u64) -> Option<Vec<Phdr>> {
    let mut head = [0u8; 64];
    mem.read_exact_at(addr, &mut head).ok()?;
    let header = FileHeader64::<LittleEndian>::parse(&head[..]).ok()?;
    let e = LittleEndian;
    if usize::from(header.e_phentsize(e)) != size_of::<Phdr>() {
        return None;
    }
    phdrs_at(
        mem,
        addr.checked_add(header.e_phoff(e))?,
        u64::from(header.e_phnum(e)),
    )
}

/// The program headers in the first bytes of an ELF file.
fn image_phdrs_in_file(head: &[u8]) -> Option<Vec<Phdr>> {
    let header = FileHeader64::<LittleEndian>::parse(head).ok()?;
    Some(header.program_headers(LittleEndian, head).ok()?.to_vec())
}

/// What was recovered: the file mappings (sorted by address) and the one
/// notice that says where they came from.
pub(super) struct Recovered {
    pub files: Vec<FileMapping>,
    pub notice: String,
}

/// Recover the mapped modules of a core without `NT_FILE`. `segments` are
/// the core's memory segments as (start, end), sorted; `file_head` reads the
/// first bytes of a file on this machine (for a module whose headers the
/// core did not keep).
pub(super) fn recover(
    mem: &dyn Memory,
    auxv: &[AuxEntry],
    segments: &[(u64, u64)],
    file_head: &dyn Fn(&std::path::Path) -> Option<Vec<u8>>,
) -> Recovered {
    const NO_NT_FILE: &str = "the core has no NT_FILE note (the kernel leaves it out when the \
        table of mapped files would exceed kernel.core_file_note_size_limit)";
    let (modules, outcome) = match find_modules(mem, auxv, file_head) {
        Ok(found) => found,
        Err(why) => {
            return Recovered {
                files: Vec::new(),
                notice: format!("{NO_NT_FILE}, and {why}; mapped files are shown as [ anon ]"),
            };
        }
    };
    let mut files = Vec::new();
    for m in &modules {
        add_mappings(m, segments, &mut files);
    }
    files.sort_by_key(|f| f.start);
    files.dedup_by(|later, earlier| later.start < earlier.end);
    let exec = &modules[0].path;
    let relative = if exec.is_relative() {
        format!(
            "; the executable's path {} is relative to the process's working directory, which \
             a core does not record",
            escape_path(exec)
        )
    } else {
        String::new()
    };
    let notice = match outcome {
        ListOutcome::Read { at } => format!(
            "{NO_NT_FILE}; the executable and {} shared object{} were found from the dynamic \
             linker's list in memory (r_debug at {at:#x}); other mapped files are shown as \
             [ anon ]{relative}",
            modules.len() - 1,
            if modules.len() == 2 { "" } else { "s" },
        ),
        ListOutcome::Static => format!(
            "{NO_NT_FILE}; the executable was found from the auxiliary vector (it has no \
             dynamic section: a static executable); other mapped files are shown as \
             [ anon ]{relative}"
        ),
        ListOutcome::Missing(why) => format!(
            "{NO_NT_FILE}; the executable was found from the auxiliary vector, but the \
             shared objects cannot be named: {why}; they are shown as [ anon ]{relative}"
        ),
    };
    Recovered { files, notice }
}

/// How the dynamic linker's list was read.
enum ListOutcome {
    /// Read from the `r_debug` at this address.
    Read { at: u64 },
    /// The executable is static: there is no list.
    Static,
    /// The list could not be read, and why.
    Missing(String),
}

/// The executable (first) and the shared objects in the dynamic linker's
/// list.
fn find_modules(
    mem: &dyn Memory,
    auxv: &[AuxEntry],
    file_head: &dyn Fn(&std::path::Path) -> Option<Vec<u8>>,
) -> Result<(Vec<Module>, ListOutcome), String> {
    let e = LittleEndian;
    let (Some(phdr), Some(phnum)) = (
        auxv::lookup(auxv, auxv::AT_PHDR),
        auxv::lookup(auxv, auxv::AT_PHNUM),
    ) else {
        return Err("the auxiliary vector (NT_AUXV) does not say where the executable is".into());
    };
    if auxv::lookup(auxv, auxv::AT_PHENT).is_some_and(|n| n != size_of::<Phdr>() as u64) {
        return Err("the executable's program headers are not 64-bit ones".into());
    }
    let phdrs = phdrs_at(mem, phdr, phnum).ok_or_else(|| {
        format!("the executable's program headers (at AT_PHDR {phdr:#x}) are not in the core")
    })?;
    let bias = exec_bias(mem, &phdrs, phdr)
        .ok_or("the executable's load address cannot be told from its program headers")?;
    let path = auxv::lookup(auxv, auxv::AT_EXECFN)
        .and_then(|a| mem.read_cstring(a, MAX_PATH).ok())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or("the executable's name (AT_EXECFN) is not in the core")?;
    let mut modules = vec![Module {
        path,
        bias,
        loads: loads_of(&phdrs),
    }];
    let Some(dynamic) = phdrs.iter().find(|p| p.p_type(e) == elf::PT_DYNAMIC) else {
        return Ok((modules, ListOutcome::Static));
    };
    let dyn_addr = bias.wrapping_add(dynamic.p_vaddr(e));
    let outcome = match r_debug_address(mem, dyn_addr, dynamic.p_memsz(e)) {
        Ok(r_debug) => match read_list(mem, r_debug, auxv) {
            Ok(list) => {
                for (path, bias) in list {
                    let loads = image_phdrs_in_memory(mem, bias)
                        .or_else(|| image_phdrs_in_file(&file_head(&path)?))
                        .map(|p| loads_of(&p))
                        .unwrap_or_default();
                    modules.push(Module { path, bias, loads });
                }
                ListOutcome::Read { at: r_debug }
            }
            Err(why) => ListOutcome::Missing(why),
        },
        Err(why) => ListOutcome::Missing(why),
    };
    Ok((modules, outcome))
}

/// Where the executable is loaded: `AT_PHDR` less `PT_PHDR`'s address, or
/// (without `PT_PHDR`) by the ELF header just before the program headers.
fn exec_bias(mem: &dyn Memory, phdrs: &[Phdr], phdr: u64) -> Option<u64> {
    let e = LittleEndian;
    if let Some(p) = phdrs.iter().find(|p| p.p_type(e) == elf::PT_PHDR) {
        return Some(phdr.wrapping_sub(p.p_vaddr(e)));
    }
    let first = phdrs
        .iter()
        .find(|p| p.p_type(e) == elf::PT_LOAD && p.p_offset(e) == 0)?;
    let header_at = phdr.checked_sub(64)?;
    let mut head = [0u8; 64];
    mem.read_exact_at(header_at, &mut head).ok()?;
    let header = FileHeader64::<LittleEndian>::parse(&head[..]).ok()?;
    (header.e_phoff(e) == 64).then(|| header_at.wrapping_sub(first.p_vaddr(e)))
}

/// The address of `r_debug`, from `DT_DEBUG` in the executable's dynamic
/// section at `addr`.
fn r_debug_address(mem: &dyn Memory, addr: u64, memsz: u64) -> Result<u64, String> {
    let e = LittleEndian;
    let size = size_of::<Dyn64<LittleEndian>>() as u64;
    for i in 0..(memsz / size).min(MAX_DYNAMIC) {
        let mut buf = [0u8; 16];
        mem.read_exact_at(addr.wrapping_add(i * size), &mut buf)
            .map_err(|err| {
                format!("the executable's dynamic section (at {addr:#x}) is not in the core: {err}")
            })?;
        let (d, _) = object::pod::from_bytes::<Dyn64<LittleEndian>>(&buf)
            .map_err(|()| "a dynamic entry could not be read".to_owned())?;
        let tag = d.d_tag(e);
        if tag == elf::DT_NULL {
            break;
        }
        if tag == elf::DT_DEBUG {
            return match d.d_val(e) {
                0 => Err(
                    "the executable's DT_DEBUG is 0 (the dynamic linker did not fill it in)".into(),
                ),
                v => Ok(v),
            };
        }
    }
    Err("the executable's dynamic section has no DT_DEBUG entry".into())
}

/// The (path, load bias) of each shared object in the `link_map` chains
/// from `r_debug` (every namespace, for `r_version` 2 and later), without
/// the executable (no name) and the vdso.
fn read_list(
    mem: &dyn Memory,
    r_debug: u64,
    auxv: &[AuxEntry],
) -> Result<Vec<(PathBuf, u64)>, String> {
    let vdso = auxv::lookup(auxv, auxv::AT_SYSINFO_EHDR);
    let missing = |what: &str, at: u64| {
        format!("the dynamic linker's {what} (at {at:#x}) is not in the core")
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut namespace = r_debug;
    for _ in 0..MAX_NAMESPACES {
        let mut head = [0u8; 48];
        mem.read_exact_at(namespace, &mut head[..16])
            .map_err(|_| missing("r_debug", namespace))?;
        let version = u32::from_le_bytes(head[..4].try_into().unwrap_or_default());
        let mut link = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        while link != 0 && seen.insert(link) && seen.len() <= MAX_MODULES {
            let mut l = [0u8; 32];
            mem.read_exact_at(link, &mut l)
                .map_err(|_| missing("link_map entry", link))?;
            let word =
                |i: usize| u64::from_le_bytes(l[i * 8..i * 8 + 8].try_into().unwrap_or_default());
            let (l_addr, l_name, l_next) = (word(0), word(1), word(3));
            let name: OsString = match l_name {
                0 => OsString::new(),
                p => mem
                    .read_cstring(p, MAX_PATH)
                    .map_err(|_| missing("name of a loaded object", p))?,
            };
            if !name.is_empty() && Some(l_addr) != vdso {
                out.push((PathBuf::from(name), l_addr));
            }
            link = l_next;
        }
        // glibc 2.35's r_debug_extended: r_next, the next namespace.
        if version < 2 || mem.read_exact_at(namespace, &mut head).is_err() {
            break;
        }
        namespace = u64::from_le_bytes(head[40..48].try_into().unwrap_or_default());
        if namespace == 0 {
            break;
        }
    }
    Ok(out)
}

/// The entries `NT_FILE` would hold for module `m`: each core segment in
/// the pages of a `PT_LOAD` that come from the file.
fn add_mappings(m: &Module, segments: &[(u64, u64)], out: &mut Vec<FileMapping>) {
    for &(vaddr, filesz, offset) in &m.loads {
        let Some(at) = m.bias.checked_add(vaddr) else {
            continue;
        };
        let start = at & !(PAGE - 1);
        let Some(end) = at
            .checked_add(filesz)
            .and_then(|x| x.checked_add(PAGE - 1))
            .map(|x| x & !(PAGE - 1))
        else {
            continue;
        };
        let file_start = offset & !(PAGE - 1);
        let first = segments.partition_point(|s| s.1 <= start);
        for &(s, e) in segments[first..].iter().take_while(|s| s.0 < end) {
            let (from, to) = (s.max(start), e.min(end));
            out.push(FileMapping {
                start: from,
                end: to,
                offset: file_start.wrapping_add(from - start),
                path: m.path.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_covers_the_segments_in_its_file_pages() {
        // A text segment split in two by the core, and a data segment
        // whose .bss runs past the file into an anonymous mapping.
        let m = Module {
            path: "/lib/x.so".into(),
            bias: 0x7f00_0000_0000,
            loads: vec![(0, 0x2100, 0), (0x3e10, 0x1f0, 0x2e10)],
        };
        let segments = [
            (0x7f00_0000_0000, 0x7f00_0000_1000),
            (0x7f00_0000_1000, 0x7f00_0000_3000),
            (0x7f00_0000_3000, 0x7f00_0000_4000),
            (0x7f00_0000_4000, 0x7f00_0000_6000),
        ];
        let mut out = Vec::new();
        add_mappings(&m, &segments, &mut out);
        let got: Vec<(u64, u64, u64)> = out.iter().map(|f| (f.start, f.end, f.offset)).collect();
        assert_eq!(
            got,
            [
                (0x7f00_0000_0000, 0x7f00_0000_1000, 0),
                (0x7f00_0000_1000, 0x7f00_0000_3000, 0x1000),
                (0x7f00_0000_3000, 0x7f00_0000_4000, 0x2000),
            ]
        );
    }

    /// Memory made of regions, each a start address and its bytes.
    struct Regions(Vec<(u64, Vec<u8>)>);

    impl Memory for Regions {
        fn read_memory(&self, addr: u64, buf: &mut [u8]) -> crate::error::Result<usize> {
            for (start, bytes) in &self.0 {
                if let Some(off) = addr.checked_sub(*start).map(|o| o as usize)
                    && off < bytes.len()
                {
                    let n = buf.len().min(bytes.len() - off);
                    buf[..n].copy_from_slice(&bytes[off..off + n]);
                    return Ok(n);
                }
            }
            Err(crate::error::Error::MemoryUnavailable {
                addr,
                reason: "not mapped in the core",
            })
        }
    }

    fn put(bytes: &mut [u8], at: usize, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            bytes[at + i * 8..at + i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// A program header: type, flags, offset, vaddr, paddr, filesz, memsz,
    /// align.
    fn phdr(bytes: &mut [u8], at: usize, ty: elf::ProgramType, offset: u64, vaddr: u64, size: u64) {
        bytes[at..at + 4].copy_from_slice(&ty.0.to_le_bytes());
        put(bytes, at + 8, &[offset, vaddr, vaddr, size, size, 0x1000]);
    }

    /// An executable loaded at 0x10000 whose DT_DEBUG says `r_debug`, the
    /// dynamic linker's list at 0x20000 naming /lib/libx.so at 0x40000,
    /// and the auxiliary vector.
    fn process(r_debug: u64) -> (Regions, Vec<AuxEntry>) {
        let mut exe = vec![0u8; 0x2000];
        phdr(&mut exe, 0x40, elf::PT_PHDR, 0x40, 0x40, 3 * 56);
        phdr(&mut exe, 0x40 + 56, elf::PT_LOAD, 0, 0, 0x2000);
        phdr(&mut exe, 0x40 + 112, elf::PT_DYNAMIC, 0x1800, 0x1800, 0x20);
        put(&mut exe, 0x1800, &[elf::DT_DEBUG.0 as u64, r_debug, 0, 0]);
        let mut ld = vec![0u8; 0x400];
        put(&mut ld, 0, &[1, 0x20100]);
        // The executable (no name), then the library.
        put(&mut ld, 0x100, &[0x10000, 0x20200, 0, 0x20140]);
        put(&mut ld, 0x140, &[0x40000, 0x20210, 0, 0]);
        ld[0x210..0x21d].copy_from_slice(b"/lib/libx.so\0");
        ld[0x300..0x30a].copy_from_slice(b"/bin/prog\0");
        let mut lib = vec![0u8; 0x1000];
        lib[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
        lib[32..40].copy_from_slice(&64u64.to_le_bytes());
        lib[54..56].copy_from_slice(&56u16.to_le_bytes());
        lib[56..58].copy_from_slice(&1u16.to_le_bytes());
        phdr(&mut lib, 64, elf::PT_LOAD, 0, 0, 0x1000);
        let auxv = [
            (auxv::AT_PHDR, 0x10040),
            (auxv::AT_PHENT, 56),
            (auxv::AT_PHNUM, 3),
            (auxv::AT_EXECFN, 0x20300),
        ]
        .map(|(key, value)| AuxEntry { key, value })
        .to_vec();
        let mem = Regions(vec![(0x10000, exe), (0x20000, ld), (0x40000, lib)]);
        (mem, auxv)
    }

    const SEGMENTS: [(u64, u64); 3] = [(0x10000, 0x12000), (0x20000, 0x21000), (0x40000, 0x41000)];

    fn names(r: &Recovered) -> Vec<(u64, u64, &str)> {
        r.files
            .iter()
            .map(|f| (f.start, f.end, f.path.to_str().unwrap()))
            .collect()
    }

    #[test]
    fn the_list_names_the_executable_and_its_libraries() {
        let (mem, auxv) = process(0x20000);
        let r = recover(&mem, &auxv, &SEGMENTS, &|_| None);
        assert_eq!(
            names(&r),
            [
                (0x10000, 0x12000, "/bin/prog"),
                (0x40000, 0x41000, "/lib/libx.so")
            ]
        );
        assert!(
            r.notice
                .contains("the executable and 1 shared object were found"),
            "{}",
            r.notice
        );
    }

    #[test]
    fn an_r_debug_the_core_lacks_is_said() {
        let (mem, auxv) = process(0x90000);
        let r = recover(&mem, &auxv, &SEGMENTS, &|_| None);
        assert_eq!(names(&r), [(0x10000, 0x12000, "/bin/prog")]);
        assert!(
            r.notice
                .contains("the dynamic linker's r_debug (at 0x90000) is not in the core"),
            "{}",
            r.notice
        );
    }
}
