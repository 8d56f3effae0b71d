//! A process preserved in an ELF core file (from the kernel or gdb's gcore).
//!
//! The file is mmapped, never read whole: opening a core touches its ELF
//! header, program headers and notes, and memory reads copy only what is
//! asked for. Memory comes from the `PT_LOAD` segments; bytes a segment
//! declares but the core does not hold (`p_filesz < p_memsz`, or a file cut
//! short) are *unavailable*, never zeros. File-backed memory the core left
//! out (the kernel keeps only the first page of each ELF mapping) is read
//! from the file named in `NT_FILE`, after checking that its build-id is the
//! one the process had mapped.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

mod inferred;
pub mod initstack;
mod linkmap;
pub mod spool;

use memmap2::Mmap;
use object::LittleEndian;
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader};

use crate::diag::Sink;
use crate::elf::locate::open_backing;
use crate::elf::{build_id_in, map_file};
use crate::error::NotRecovered;
use crate::error::{Error, Result};
use crate::npnotes::{self, Recorded};
use crate::parse::auxv::{self, AuxEntry};
use crate::parse::notes::{self, FileMapping};
use crate::root::SearchPath;
use crate::target::{
    MapName, Mapping, Memory, OpenOptions, Perms, ProcessTarget, Psinfo, REWRITTEN_ARGV,
    SignalInfo, Source, StringList, Thread, psargs_from_arg_area, trim_title_padding,
};
use initstack::InitialStack;

/// The bytes of a core: a mapping of the file, or (for tests and fuzzing)
/// an owned buffer.
enum CoreBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::fmt::Debug for CoreBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CoreBytes({} bytes)", self.as_slice().len())
    }
}

impl CoreBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            CoreBytes::Mapped(m) => m,
            CoreBytes::Owned(v) => v,
        }
    }
}

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    /// Bytes the header says are in the file.
    filesz: u64,
    /// Bytes actually present (less than `filesz` in a truncated core).
    present: u64,
    flags: u32,
}

impl Segment {
    fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// Where the kernel puts the vsyscall page on x86_64 (a core may dump it).
const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;

/// A file named in NT_FILE, opened on this machine for memory the core
/// left out. Read with `pread`, never mapped: it is not ours, and a file
/// truncated under a mapping raises SIGBUS.
#[derive(Debug)]
struct BackingFile {
    file: File,
    len: u64,
}

/// Files opened for memory reads by path; `None` when one could not be
/// used (missing, or not the file the process had).
type FileCache = RefCell<HashMap<PathBuf, Option<Rc<BackingFile>>>>;

/// An ELF core file.
#[derive(Debug)]
pub struct CoreFile {
    source: Source,
    bytes: CoreBytes,
    /// Where the files the core names are looked for: the sysroot, then
    /// this machine's root.
    search: SearchPath,
    segments: Vec<Segment>,
    psinfo: Psinfo,
    threads: Vec<Thread>,
    auxv: Vec<AuxEntry>,
    files: Vec<FileMapping>,
    siginfo: Option<SignalInfo>,
    problems: Vec<String>,
    /// Warnings found while reading (a mapped file that changed).
    notices: RefCell<Vec<String>>,
    /// What makes every report of this core partial (no NT_FILE note),
    /// said on stderr and carried in --json.
    caveats: Vec<String>,
    initial_stack: OnceCell<std::result::Result<InitialStack, NotRecovered>>,
    file_cache: FileCache,
    /// What the NPTOOLS notes of an npgcore core say (nothing for a kernel
    /// or gdb core).
    recorded: Recorded,
    /// The file the core's bytes are mapped from, asked where its holes are.
    data_file: Option<File>,
}

fn not_core(path: &Path, what: impl Into<String>) -> Error {
    Error::NotCore {
        path: path.to_owned(),
        what: what.into(),
    }
}

/// Check the ELF identification and say plainly what the file is when it
/// is not an x86_64 core.
fn check_ident(data: &[u8], path: &Path) -> Result<()> {
    if data.len() < 4 || data[..4] != elf::ELFMAG {
        return Err(not_core(path, "not an ELF file"));
    }
    if data.len() < 64 {
        return Err(Error::Corrupt {
            path: path.to_owned(),
            what: format!("ELF header cut short ({} bytes)", data.len()),
        });
    }
    if data[4] != elf::ELFCLASS64.0 {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            what: "a 32-bit ELF file; only x86_64 cores are supported".into(),
        });
    }
    if data[5] != elf::ELFDATA2LSB.0 {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            what: "a big-endian ELF file; only x86_64 cores are supported".into(),
        });
    }
    let e_type = u16::from_le_bytes([data[16], data[17]]);
    let machine = u16::from_le_bytes([data[18], data[19]]);
    if e_type != elf::ET_CORE.0 {
        let what = match e_type {
            t if t == elf::ET_EXEC.0 => "an ELF executable",
            t if t == elf::ET_DYN.0 => "an ELF shared object or PIE executable",
            t if t == elf::ET_REL.0 => "an ELF relocatable object",
            _ => "an ELF file of unknown type",
        };
        return Err(not_core(path, what));
    }
    if machine != elf::EM_X86_64.0 {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            what: format!("a core for machine type {machine}; only x86_64 cores are supported"),
        });
    }
    Ok(())
}

/// Where the files a core names are looked for: the sysroot, if any, then
/// this machine's root; debug files also in the debug directories.
fn search_roots(options: &OpenOptions) -> Result<SearchPath> {
    SearchPath::new(None, None, options.sysroot.as_deref(), &options.debug_dirs)
        .map_err(|(dir, e)| Error::io(dir, e))
}

/// One `PT_NOTE` segment's bytes (as many as the file holds), and its
/// alignment.
struct NoteBlock<'d> {
    bytes: &'d [u8],
    align: u64,
}

/// What a core's program headers give: its memory segments, sorted by
/// address, and its note blocks.
#[derive(Default)]
struct Headers<'d> {
    segments: Vec<Segment>,
    note_blocks: Vec<NoteBlock<'d>>,
}

impl<'d> Headers<'d> {
    /// Read the program headers. A file cut short is a problem where it
    /// leaves the rest readable, else an error.
    fn read(data: &'d [u8], path: &Path, problems: &mut Vec<String>) -> Result<Headers<'d>> {
        let corrupt = |what: String| Error::Corrupt {
            path: path.to_owned(),
            what,
        };
        let header = FileHeader64::<LittleEndian>::parse(data)
            .map_err(|e| corrupt(format!("ELF header: {e}")))?;
        let e = LittleEndian;
        let ph_end = table_end(header.e_phoff(e), header.e_phnum(e), header.e_phentsize(e));
        if ph_end > data.len() as u64 {
            return Err(corrupt(format!(
                "truncated: the file is {} bytes, but its program headers end at byte {ph_end}",
                data.len()
            )));
        }
        let phdrs = header
            .program_headers(e, data)
            .map_err(|err| corrupt(format!("program headers: {err}")))?;
        if phdrs.is_empty() {
            return Err(corrupt("no program headers".into()));
        }
        let mut headers = Headers::default();
        let mut cut = CutSegments::default();
        for ph in phdrs {
            headers.take(ph, data, &mut cut, problems);
        }
        // gdb writes section headers after the data; a cut there loses no
        // memory, but the file is still not what was written.
        let file_len = data.len() as u64;
        let sh_end = table_end(header.e_shoff(e), header.e_shnum(e), header.e_shentsize(e));
        if header.e_shoff(e) != 0 && sh_end > file_len {
            problems.push(format!(
                "the core is truncated: the file is {file_len} bytes, but its section headers end at byte {sh_end}"
            ));
        }
        if cut.segments > 0 {
            problems.push(format!(
                "the core is truncated: {} of its memory is missing from {} of {} segments",
                human_bytes(cut.missing_bytes),
                cut.segments,
                headers.segments.len()
            ));
        }
        headers.segments.sort_by_key(|s| s.vaddr);
        Ok(headers)
    }

    /// Take one program header: a `PT_LOAD` is a segment, a `PT_NOTE` a
    /// note block.
    fn take(
        &mut self,
        ph: &elf::ProgramHeader64<LittleEndian>,
        data: &'d [u8],
        cut: &mut CutSegments,
        problems: &mut Vec<String>,
    ) {
        let e = LittleEndian;
        let (offset, filesz) = (ph.p_offset(e), ph.p_filesz(e));
        let present = (data.len() as u64).saturating_sub(offset).min(filesz);
        match ph.p_type(e) {
            elf::PT_LOAD => {
                if present < filesz {
                    cut.missing_bytes = cut.missing_bytes.saturating_add(filesz - present);
                    cut.segments += 1;
                }
                self.segments.push(Segment {
                    vaddr: ph.p_vaddr(e),
                    memsz: ph.p_memsz(e).max(filesz),
                    offset,
                    filesz,
                    present,
                    flags: ph.p_flags(e).0,
                });
            }
            elf::PT_NOTE => {
                if present < filesz {
                    problems.push(format!(
                        "the notes are cut short: {} of {} bytes present",
                        present, filesz
                    ));
                }
                if present > 0 {
                    let start = offset as usize;
                    self.note_blocks.push(NoteBlock {
                        bytes: &data[start..start + present as usize],
                        align: ph.p_align(e),
                    });
                }
            }
            _ => {}
        }
    }
}

/// The `PT_LOAD` segments a file cut short holds only part of.
#[derive(Default)]
struct CutSegments {
    segments: usize,
    missing_bytes: u64,
}

/// The `CORE` notes: each thread's status, the process, the auxiliary
/// vector, the mapped files (sorted by address) and the fatal signal.
#[derive(Default)]
struct CoreNotes {
    prstatus: Vec<notes::PrStatus>,
    prpsinfo: Option<notes::PrPsinfo>,
    auxv: Vec<AuxEntry>,
    files: Vec<FileMapping>,
    siginfo: Option<SignalInfo>,
    recorded: Recorded,
}

impl CoreNotes {
    /// Read every note block. A note that cannot be read ends its block,
    /// and is a problem, as is a core without threads.
    fn read(blocks: &[NoteBlock<'_>], problems: &mut Vec<String>) -> CoreNotes {
        let mut notes = CoreNotes::default();
        for block in blocks {
            notes.read_block(block, problems);
        }
        if notes.prstatus.is_empty() {
            problems.push("the core holds no thread (no NT_PRSTATUS note)".into());
        }
        notes.files.sort_by_key(|f| f.start);
        notes
    }

    fn read_block(&mut self, block: &NoteBlock<'_>, problems: &mut Vec<String>) {
        let e = LittleEndian;
        let Ok(mut iter) =
            NoteIterator::<FileHeader64<LittleEndian>>::new(e, block.align, block.bytes)
        else {
            problems.push(format!(
                "a note segment has invalid alignment {}",
                block.align
            ));
            return;
        };
        loop {
            match iter.next() {
                Ok(Some(note)) if note.name() == b"CORE" => {
                    self.take(note.n_type(e).0, note.desc(), problems);
                }
                Ok(Some(note)) if note.name() == npnotes::OWNER => {
                    self.recorded.take(note.n_type(e).0, note.desc());
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(err) => {
                    problems.push(format!("a note could not be read: {err}"));
                    return;
                }
            }
        }
    }

    /// Take one `CORE` note of type `kind`.
    fn take(&mut self, kind: u32, desc: &[u8], problems: &mut Vec<String>) {
        match kind {
            notes::NT_PRSTATUS => match notes::parse_prstatus(desc) {
                Some(s) => self.prstatus.push(s),
                None => problems.push("a thread's NT_PRSTATUS is too short".into()),
            },
            notes::NT_PRPSINFO => self.prpsinfo = notes::parse_prpsinfo(desc),
            notes::NT_AUXV => self.auxv = auxv::parse_auxv(desc),
            notes::NT_FILE => {
                let (list, truncated) = notes::parse_nt_file(desc);
                if truncated {
                    problems.push("the NT_FILE table is cut short".into());
                }
                self.files = list;
            }
            notes::NT_SIGINFO => self.siginfo = notes::parse_siginfo(desc),
            _ => {}
        }
    }

    /// Who the process was: from NT_PRPSINFO, or (a problem) what the
    /// first thread's status says.
    fn psinfo(&self, problems: &mut Vec<String>) -> Psinfo {
        let pid = self
            .prpsinfo
            .as_ref()
            .map(|p| p.pid)
            .or_else(|| self.prstatus.first().map(|s| s.pid))
            .unwrap_or(0);
        let Some(p) = &self.prpsinfo else {
            problems.push("the core has no process information (NT_PRPSINFO)".into());
            return Psinfo {
                pid,
                ppid: self.prstatus.first().map(|s| s.ppid).unwrap_or(0),
                state: '?',
                ..Psinfo::default()
            };
        };
        Psinfo {
            pid,
            ppid: p.ppid,
            uid: p.uid,
            gid: p.gid,
            state: if p.sname.is_ascii_graphic() {
                p.sname as char
            } else {
                '?'
            },
            fname: p.fname.clone(),
            psargs: p.psargs.clone(),
        }
    }

    /// The threads, with their registers, the process's (`pid`) first.
    fn threads(&self, pid: i32) -> Vec<Thread> {
        let mut threads: Vec<Thread> = self
            .prstatus
            .iter()
            .map(|s| Thread {
                tid: s.pid,
                name: None,
                registers: Some(s.registers),
                stack_pointer: Some(s.registers.rsp()),
            })
            .collect();
        threads.sort_by_key(|t| (t.tid != pid, t.tid));
        threads
    }
}

impl CoreFile {
    /// Open a core file by path; `-` is standard input. A compressed core
    /// (zstd, lz4, xz) or one on a pipe is first copied, decompressed, to
    /// a temporary file (see [`spool`]).
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Self> {
        let file = spool::open_core(path)?;
        let map = map_file(&file, path)?;
        let mut core = Self::parse(CoreBytes::Mapped(map), path, options)?;
        core.data_file = Some(file);
        Ok(core)
    }

    /// Parse a core held in memory (tests, fuzzing). `path` is only used in
    /// messages.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self> {
        Self::parse(CoreBytes::Owned(bytes), path, &OpenOptions::default())
    }

    /// Read a core's headers and notes: its segments, threads, process
    /// information and mapped files. What is wrong with the file but leaves
    /// it readable is kept as a problem, in the order it was found.
    fn parse(bytes: CoreBytes, path: &Path, options: &OpenOptions) -> Result<Self> {
        let data = bytes.as_slice();
        check_ident(data, path)?;
        let search = search_roots(options)?;
        let mut problems = Vec::new();
        let Headers {
            segments,
            note_blocks,
        } = Headers::read(data, path, &mut problems)?;
        let notes = CoreNotes::read(&note_blocks, &mut problems);
        let psinfo = notes.psinfo(&mut problems);
        let mut threads = notes.threads(psinfo.pid);
        if let Some(names) = &notes.recorded.threads {
            let names: HashMap<i32, &OsString> = names.iter().map(|(t, n)| (*t, n)).collect();
            for t in &mut threads {
                t.name = names.get(&t.tid).map(|&n| n.clone());
            }
        }
        let mut core = CoreFile {
            source: Source::Core {
                path: path.to_owned(),
            },
            bytes,
            search,
            segments,
            psinfo,
            threads,
            auxv: notes.auxv,
            files: notes.files,
            siginfo: notes.siginfo,
            problems,
            notices: RefCell::new(Vec::new()),
            caveats: notes.recorded.notices.clone(),
            initial_stack: OnceCell::new(),
            file_cache: RefCell::new(HashMap::new()),
            recorded: notes.recorded,
            data_file: None,
        };
        if core.files.is_empty() {
            core.files_from_link_map();
        }
        core.rebuild_psargs();
        Ok(core)
    }

    /// A core without NT_FILE: name its modules from the dynamic linker's
    /// list in memory, and say so.
    fn files_from_link_map(&mut self) {
        let segments: Vec<(u64, u64)> = self.segments.iter().map(|s| (s.vaddr, s.end())).collect();
        let file_head = |path: &Path| {
            let file = open_backing(&self.search, path, None).ok()?.file;
            let mut head = vec![0u8; 64 * 1024];
            let n = file.read_at(&mut head, 0).ok()?;
            head.truncate(n);
            Some(head)
        };
        let recovered = linkmap::recover(&*self, &self.auxv, &segments, &file_head);
        self.files = recovered.files;
        self.caveats.push(recovered.notice);
    }

    /// pr_psargs is whatever the dumper wrote (gdb writes only the program
    /// name). Where argv is on the stack, rebuild it the way the kernel
    /// does, so that a process and all its cores share a header.
    fn rebuild_psargs(&mut self) {
        if let Ok(stack) = self.initial_stack()
            && stack.strings == initstack::StringsFrom::Area
        {
            let mut area = Vec::new();
            for a in &stack.argv {
                area.extend_from_slice(a.as_bytes());
                area.push(0);
            }
            self.psinfo.psargs = psargs_from_arg_area(&area);
        }
    }

    /// What the core's NPTOOLS notes recorded (an npgcore core): the
    /// limits, the working and root directories, and what the readers of
    /// [`ProcessTarget`] give from them.
    pub fn recorded(&self) -> &Recorded {
        &self.recorded
    }

    /// The path of the core.
    pub fn path(&self) -> &Path {
        match &self.source {
            Source::Core { path } => path,
            Source::Live { .. } => Path::new(""),
        }
    }

    fn notice(&self, msg: String) {
        let mut n = self.notices.borrow_mut();
        if !n.contains(&msg) {
            n.push(msg);
        }
    }

    fn segment_at(&self, addr: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.vaddr <= addr);
        let s = self.segments.get(i.checked_sub(1)?)?;
        (addr < s.end()).then_some(s)
    }

    fn file_mapping_at(&self, addr: u64) -> Option<&FileMapping> {
        let i = self.files.partition_point(|f| f.start <= addr);
        let f = self.files.get(i.checked_sub(1)?)?;
        (addr < f.end).then_some(f)
    }

    fn initial_stack(&self) -> &std::result::Result<InitialStack, NotRecovered> {
        self.initial_stack
            .get_or_init(|| initstack::recover(self, &self.auxv))
    }

    /// The build-id the process had for the file mapped at `fm`, read from
    /// the first page of that file's mapping at offset 0 in the core.
    fn build_id_in_core(&self, fm: &FileMapping) -> Option<Vec<u8>> {
        let head = self
            .files
            .iter()
            .filter(|f| f.path == fm.path && f.offset == 0)
            .min_by_key(|f| f.start)?;
        let seg = self.segment_at(head.start)?;
        if seg.vaddr != head.start || seg.present == 0 {
            return None;
        }
        let len = seg.present.min(4096) as usize;
        let start = seg.offset as usize;
        build_id_in(self.bytes.as_slice().get(start..start + len)?)
    }

    /// The file behind `fm`, if it exists here and is the same file.
    fn backing_file(&self, fm: &FileMapping) -> Option<Rc<BackingFile>> {
        if let Some(entry) = self.file_cache.borrow().get(&fm.path) {
            return entry.clone();
        }
        let want = self.build_id_in_core(fm);
        let loaded = match open_backing(&self.search, &fm.path, want.as_deref()) {
            Ok(found) => {
                for note in found.passed_over {
                    self.notice(note);
                }
                let len = found.file.metadata().ok().map(|m| m.len());
                len.map(|len| {
                    Rc::new(BackingFile {
                        file: found.file,
                        len,
                    })
                })
            }
            // Its memory is treated as missing.
            Err(e @ Error::WrongFile { .. }) => {
                self.notice(e.to_string());
                None
            }
            Err(_) => None,
        };
        self.file_cache
            .borrow_mut()
            .insert(fm.path.clone(), loaded.clone());
        loaded
    }

    /// The permissions of a mapping gcore left out, from the segment of
    /// the mapped file that covers its offset (text segments are `r-x`).
    fn file_perms(&self, fm: &FileMapping) -> Option<Perms> {
        let backing = self.backing_file(fm)?;
        let mut head = vec![0u8; 64 * 1024];
        let n = backing.file.read_at(&mut head, 0).ok()?;
        let flags = crate::elf::load_flags_at(&head[..n], fm.offset)?;
        Some(Perms {
            read: flags & elf::PF_R.0 != 0,
            write: flags & elf::PF_W.0 != 0,
            exec: flags & elf::PF_X.0 != 0,
            shared: false,
        })
    }

    /// Read from the file behind a file-backed mapping.
    fn read_from_file(&self, addr: u64, buf: &mut [u8], limit: u64) -> Option<usize> {
        let fm = self.file_mapping_at(addr)?;
        let backing = self.backing_file(fm)?;
        let file_off = fm.offset.checked_add(addr - fm.start)?;
        let avail = backing
            .len
            .checked_sub(file_off)?
            .min(fm.end - addr)
            .min(limit);
        let n = (buf.len() as u64).min(avail) as usize;
        if n == 0 {
            return None;
        }
        backing.file.read_exact_at(&mut buf[..n], file_off).ok()?;
        Some(n)
    }

    /// Copy as much as one contiguous source holds at `addr`.
    fn read_once(&self, addr: u64, buf: &mut [u8]) -> std::result::Result<usize, CoreGap> {
        let Some(seg) = self.segment_at(addr) else {
            return self
                .read_from_file(addr, buf, u64::MAX)
                .ok_or(CoreGap::NotMapped);
        };
        let off = addr - seg.vaddr;
        let to_end = seg.end() - addr;
        if off < seg.present {
            let n = (buf.len() as u64).min(seg.present - off).min(to_end) as usize;
            let start = (seg.offset + off) as usize;
            buf[..n].copy_from_slice(&self.bytes.as_slice()[start..start + n]);
            return Ok(n);
        }
        if off < seg.filesz {
            return Err(CoreGap::Truncated);
        }
        self.read_from_file(addr, buf, to_end)
            .ok_or(CoreGap::NotDumped)
    }
}

/// Why memory at an address cannot be read from a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum CoreGap {
    #[error("{}", self.reason())]
    NotMapped,
    /// In a segment the file was cut short of.
    #[error("{}", self.reason())]
    Truncated,
    /// Mapped, but neither dumped nor backed by a file at hand.
    #[error("{}", self.reason())]
    NotDumped,
}

impl CoreGap {
    /// What [`Error::MemoryUnavailable`] says of it.
    fn reason(self) -> &'static str {
        match self {
            CoreGap::NotMapped => "not mapped in the core",
            CoreGap::Truncated => "cut off: the core file is truncated",
            CoreGap::NotDumped => "not dumped in the core",
        }
    }
}

/// The name of a mapped file from NT_FILE, which names a deleted file as
/// the kernel's d_path does: with " (deleted)" appended.
fn file_map_name(path: &Path) -> (MapName, bool) {
    match path.as_os_str().as_bytes().strip_suffix(b" (deleted)") {
        Some(p) => (
            MapName::File(PathBuf::from(std::ffi::OsStr::from_bytes(p))),
            true,
        ),
        None => (MapName::File(path.to_owned()), false),
    }
}

/// The file offset where a header table (`count` entries of `entsize`
/// bytes at `offset`) ends, saturating on hostile values.
fn table_end(offset: u64, count: u16, entsize: u16) -> u64 {
    offset.saturating_add(u64::from(count) * u64::from(entsize))
}

fn human_bytes(n: u64) -> String {
    const K: u64 = 1024;
    match n {
        n if n >= K * K * K => format!("{:.1} GiB", n as f64 / (K * K * K) as f64),
        n if n >= K * K => format!("{:.1} MiB", n as f64 / (K * K) as f64),
        n if n >= K => format!("{:.1} KiB", n as f64 / K as f64),
        n => format!("{n} bytes"),
    }
}

impl Memory for CoreFile {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let Some(at) = addr.checked_add(done as u64) else {
                break;
            };
            match self.read_once(at, &mut buf[done..]) {
                Ok(n) => done += n,
                Err(gap) if done == 0 => {
                    return Err(Error::MemoryUnavailable {
                        addr,
                        reason: gap.reason(),
                    });
                }
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// Small reads scattered over a large core are read from the file
    /// (pread) rather than through the mapping: a fault on the mapping maps
    /// the pages around it too and unmapping them at exit costs more than
    /// the read.
    fn read_ranges(&self, ranges: &[(u64, usize)], out: &mut [u8]) -> Vec<bool> {
        use std::os::unix::fs::FileExt;
        crate::target::range_slots(ranges, out)
            .map(|r| {
                let Some((a, slot)) = r else {
                    return false;
                };
                let len = slot.len();
                let seg = self.segment_at(a);
                match (&self.data_file, seg) {
                    (Some(f), Some(seg))
                        if a - seg.vaddr + len as u64 <= seg.present.min(seg.memsz) =>
                    {
                        f.read_exact_at(slot, seg.offset + (a - seg.vaddr)).is_ok()
                    }
                    _ => crate::MemoryExt::read_exact_at(self, a, slot).is_ok(),
                }
            })
            .collect()
    }
}

impl ProcessTarget for CoreFile {
    fn source(&self) -> &Source {
        &self.source
    }

    fn psinfo(&self) -> &Psinfo {
        &self.psinfo
    }

    fn argv(&self) -> Result<StringList> {
        match self.initial_stack() {
            Ok(s) => {
                let mut items = s.argv.clone();
                let caveat = (s.strings == initstack::StringsFrom::PointersAreaRewritten
                    && trim_title_padding(&mut items))
                .then(|| REWRITTEN_ARGV.to_owned());
                Ok(StringList { items, caveat })
            }
            Err(why) => Ok(StringList {
                items: self
                    .psinfo
                    .psargs
                    .as_bytes()
                    .split(|&b| b == b' ')
                    .filter(|w| !w.is_empty())
                    .map(|w| OsString::from(std::ffi::OsStr::from_bytes(w)))
                    .collect(),
                caveat: Some(format!(
                    "{why}; argv is taken from the 80-byte pr_psargs, so it may be cut short \
                     and arguments that contain spaces are split"
                )),
            }),
        }
    }

    fn initial_environ(&self) -> Result<StringList> {
        match self.initial_stack() {
            Ok(s) => Ok(StringList {
                items: s.envp.clone(),
                caveat: None,
            }),
            Err(why) => Err(Error::NoInitialStack { why: why.clone() }),
        }
    }

    fn auxv(&self) -> Result<Vec<AuxEntry>> {
        if self.auxv.is_empty() {
            return Err(Error::MissingNote {
                what: "auxiliary vector",
                note: "NT_AUXV",
            });
        }
        Ok(self.auxv.clone())
    }

    fn mappings(&self) -> Result<Vec<Mapping>> {
        let vdso = auxv::lookup(&self.auxv, auxv::AT_SYSINFO_EHDR);
        let main_sp = self
            .threads
            .iter()
            .find(|t| t.tid == self.psinfo.pid)
            .and_then(|t| t.stack_pointer);
        let mut out = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            let file = self
                .files
                .binary_search_by_key(&s.vaddr, |f| f.start)
                .ok()
                .map(|i| &self.files[i]);
            let (name, deleted) = if let Some(f) = file {
                file_map_name(&f.path)
            } else if Some(s.vaddr) == vdso {
                (MapName::Vdso, false)
            } else if s.vaddr == VSYSCALL_ADDR {
                (MapName::Vsyscall, false)
            } else if main_sp.is_some_and(|sp| s.vaddr <= sp && sp < s.end()) {
                (MapName::Stack, false)
            } else {
                (MapName::Anon, false)
            };
            out.push(Mapping {
                start: s.vaddr,
                end: s.end(),
                perms: Perms {
                    read: s.flags & elf::PF_R.0 != 0,
                    write: s.flags & elf::PF_W.0 != 0,
                    exec: s.flags & elf::PF_X.0 != 0,
                    shared: false,
                },
                offset: file.map(|f| f.offset).unwrap_or(0),
                dev: (0, 0),
                inode: 0,
                name,
                deleted,
                dumped: Some(s.present),
            });
        }
        // File mappings that gcore left without a segment.
        for f in &self.files {
            if self.segment_at(f.start).is_none() {
                let (name, deleted) = file_map_name(&f.path);
                out.push(Mapping {
                    start: f.start,
                    end: f.end,
                    perms: self.file_perms(f).unwrap_or(Perms {
                        read: true,
                        ..Perms::default()
                    }),
                    offset: f.offset,
                    dev: (0, 0),
                    inode: 0,
                    name,
                    deleted,
                    dumped: Some(0),
                });
            }
        }
        out.sort_by_key(|m| m.start);
        Ok(out)
    }

    fn threads(&self) -> Result<Vec<Thread>> {
        Ok(self.threads.clone())
    }

    fn fatal_signal(&self) -> Option<SignalInfo> {
        self.siginfo
    }

    /// The sysroot if there is one (its /etc names the core's users),
    /// then this machine's root.
    fn search_path(&self) -> Result<&SearchPath> {
        Ok(&self.search)
    }

    fn records_dumped_sizes(&self) -> bool {
        true
    }

    /// The kernel leaves pages a process never touched out of its core as
    /// holes in a sparse file; the file system says where they are
    /// (SEEK_DATA, SEEK_HOLE) without a page being read.
    fn populated_pages(&self, start: u64, end: u64) -> Option<Vec<bool>> {
        use nix::unistd::{Whence, lseek};
        let file = self.data_file.as_ref()?;
        let seg = self.segment_at(start)?;
        if end > seg.vaddr + seg.present.min(seg.memsz) {
            return None;
        }
        let (from, to) = (
            seg.offset + (start - seg.vaddr),
            seg.offset + (end - seg.vaddr),
        );
        let mut pages = vec![false; (end - start).div_ceil(4096) as usize];
        let mut at = from;
        while at < to {
            let data = match lseek(file, at as i64, Whence::SeekData) {
                Ok(d) => d as u64,
                Err(nix::errno::Errno::ENXIO) => break,
                Err(_) => return None,
            };
            if data >= to {
                break;
            }
            let hole = (lseek(file, data as i64, Whence::SeekHole).ok()? as u64).min(to);
            let (a, b) = ((data - from) / 4096, (hole - from).div_ceil(4096));
            let n = pages.len();
            pages[a as usize..(b as usize).min(n)].fill(true);
            at = hole;
        }
        Some(pages)
    }

    fn thread_ids(&self) -> Result<Vec<i32>> {
        Ok(self.threads.iter().map(|t| t.tid).collect())
    }

    fn mappings_named(&self, sink: &mut dyn Sink) -> Result<Vec<Mapping>> {
        let mut maps = self.mappings()?;
        inferred::name_heap_and_vvar(self, &mut maps, sink);
        Ok(maps)
    }

    fn caveats(&self) -> Vec<String> {
        self.caveats.clone()
    }

    /// The table npgcore recorded; a core without it (the kernel's, gdb's)
    /// has none.
    fn open_files(
        &self,
        _options: crate::openfiles::Options,
        _sink: &mut dyn Sink,
    ) -> Result<crate::openfiles::FdTable> {
        match &self.recorded.fd_table {
            Some(table) => Ok(table.clone()),
            None if self
                .recorded
                .unusable
                .contains(&npnotes::NT_NPTOOLS_FDTABLE) =>
            {
                Err(Error::MissingNote {
                    what: "usable descriptor table",
                    note: "its NPTOOLS descriptors note could not be read",
                })
            }
            None => Err(Error::NoDescriptorTable),
        }
    }

    /// The mappings as [`ProcessTarget::mappings_named`] names them, with
    /// the smaps figures npgcore recorded for each (a mapping it recorded
    /// none for has no use).
    fn mappings_with_usage(
        &self,
    ) -> Result<Option<Vec<(Mapping, Option<crate::parse::smaps::MappingUsage>)>>> {
        let Some(smaps) = &self.recorded.smaps else {
            return Ok(None);
        };
        let mut notices: Vec<crate::diag::Notice> = Vec::new();
        let maps = self.mappings_named(&mut notices)?;
        for n in notices {
            self.notice(n.text);
        }
        let usage = |m: &Mapping| {
            let i = smaps
                .mappings
                .binary_search_by_key(&m.start, |f| f.start)
                .ok()?;
            let f = &smaps.mappings[i];
            (f.end == m.end).then(|| smaps.usage(f))
        };
        Ok(Some(
            maps.into_iter()
                .map(|m| {
                    let u = usage(&m);
                    (m, u)
                })
                .collect(),
        ))
    }

    fn npgcore_notes(&self) -> Vec<&'static str> {
        self.recorded.names()
    }

    fn drain_notices(&self, sink: &mut dyn Sink) {
        for problem in &self.problems {
            sink.fail(problem.clone());
        }
        for caveat in &self.caveats {
            sink.warn(caveat.clone());
        }
        for notice in self.notices.borrow_mut().drain(..) {
            sink.warn(notice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a minimal x86_64 core: one PT_NOTE with a thread and psinfo,
    /// and PT_LOADs given as (vaddr, memsz, bytes in the file).
    fn build_core(loads: &[(u64, u64, &[u8])]) -> Vec<u8> {
        let mut notes = Vec::new();
        let mut note = |ty: u32, desc: &[u8]| {
            notes.extend_from_slice(&5u32.to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&ty.to_le_bytes());
            notes.extend_from_slice(b"CORE\0\0\0\0");
            notes.extend_from_slice(desc);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
        };
        let mut prstatus = vec![0u8; notes::PRSTATUS_SIZE];
        prstatus[32..36].copy_from_slice(&77i32.to_le_bytes());
        prstatus[112 + 19 * 8..112 + 20 * 8].copy_from_slice(&0x1008u64.to_le_bytes());
        note(notes::NT_PRSTATUS, &prstatus);
        let mut psinfo = vec![0u8; notes::PRPSINFO_SIZE];
        psinfo[1] = b'S';
        psinfo[24..28].copy_from_slice(&77i32.to_le_bytes());
        psinfo[40..44].copy_from_slice(b"prog");
        psinfo[56..65].copy_from_slice(b"prog arg ");
        note(notes::NT_PRPSINFO, &psinfo);

        let phnum = 1 + loads.len();
        let data_start = 64 + 56 * phnum;
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(&elf::ELFMAG);
        out[4] = 2; // ELFCLASS64
        out[5] = 1; // little-endian
        out[6] = 1; // EV_CURRENT
        out[16..18].copy_from_slice(&elf::ET_CORE.0.to_le_bytes());
        out[18..20].copy_from_slice(&elf::EM_X86_64.0.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        out[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let mut phdr = |ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
            let mut p = vec![0u8; 56];
            p[0..4].copy_from_slice(&ty.to_le_bytes());
            p[4..8].copy_from_slice(&flags.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&vaddr.to_le_bytes());
            p[32..40].copy_from_slice(&filesz.to_le_bytes());
            p[40..48].copy_from_slice(&memsz.to_le_bytes());
            p[48..56].copy_from_slice(&4u64.to_le_bytes());
            out.extend_from_slice(&p);
        };
        let mut off = (data_start + notes.len()) as u64;
        phdr(
            elf::PT_NOTE.0,
            0,
            data_start as u64,
            0,
            notes.len() as u64,
            0,
        );
        for (vaddr, memsz, bytes) in loads {
            phdr(elf::PT_LOAD.0, 6, off, *vaddr, bytes.len() as u64, *memsz);
            off += bytes.len() as u64;
        }
        out.extend_from_slice(&notes);
        for (_, _, bytes) in loads {
            out.extend_from_slice(bytes);
        }
        out
    }

    fn open(bytes: Vec<u8>) -> CoreFile {
        CoreFile::from_bytes(bytes, Path::new("test.core")).unwrap()
    }

    #[test]
    fn notes_give_threads_and_psinfo() {
        let core = open(build_core(&[(0x1000, 0x1000, &[7u8; 16])]));
        assert_eq!(core.pid(), 77);
        assert_eq!(core.psinfo().fname, "prog");
        assert_eq!(core.psinfo().psargs, "prog arg");
        assert_eq!(core.psinfo().state, 'S');
        let t = core.threads().unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].stack_pointer, Some(0x1008));
        assert!(core.problems.is_empty(), "{:?}", core.problems);
    }

    #[test]
    fn undumped_bytes_are_unavailable_not_zero() {
        // 16 bytes present of a 4 KiB segment.
        let core = open(build_core(&[(0x1000, 0x1000, &[7u8; 16])]));
        let mut buf = [0u8; 32];
        // A read that runs past the dumped part stops there.
        assert_eq!(core.read_memory(0x1000, &mut buf).unwrap(), 16);
        assert_eq!(buf[..16], [7u8; 16]);
        assert!(matches!(
            core.read_memory(0x1010, &mut buf),
            Err(Error::MemoryUnavailable { addr: 0x1010, .. })
        ));
        assert!(matches!(
            core.read_memory(0x9000, &mut buf),
            Err(Error::MemoryUnavailable { .. })
        ));
    }

    #[test]
    fn reads_cross_adjacent_segments() {
        let core = open(build_core(&[
            (0x1000, 8, &[1u8; 8]),
            (0x1008, 8, &[2u8; 8]),
        ]));
        let mut buf = [0u8; 16];
        assert_eq!(core.read_memory(0x1004, &mut buf).unwrap(), 12);
        assert_eq!(buf[..12], [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
        let maps = core.mappings().unwrap();
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].dumped, Some(8));
        assert_eq!(maps[0].perms.letters(), "rw--");
    }

    #[test]
    fn truncation_is_a_problem_and_cut_bytes_are_unavailable() {
        let mut bytes = build_core(&[(0x1000, 0x100, &[5u8; 0x100])]);
        bytes.truncate(bytes.len() - 0x80);
        let core = open(bytes);
        assert!(
            core.problems.iter().any(|p| p.contains("truncated")),
            "{:?}",
            core.problems
        );
        let mut buf = [0u8; 0x100];
        assert_eq!(core.read_memory(0x1000, &mut buf).unwrap(), 0x80);
        match core.read_memory(0x1080, &mut buf) {
            Err(Error::MemoryUnavailable { reason, .. }) => assert!(reason.contains("truncated")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_cores_are_named() {
        let mut exec = build_core(&[]);
        exec[16..18].copy_from_slice(&elf::ET_EXEC.0.to_le_bytes());
        let err = CoreFile::from_bytes(exec, Path::new("x")).unwrap_err();
        assert_eq!(err.to_string(), "not a core file: an ELF executable");
        let err = CoreFile::from_bytes(b"#!/bin/sh\n".to_vec(), Path::new("x")).unwrap_err();
        assert_eq!(err.to_string(), "not a core file: not an ELF file");
    }
}
