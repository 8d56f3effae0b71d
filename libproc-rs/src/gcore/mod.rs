//! Writing an ELF core file of a live process, as the kernel would have
//! written it had the process crashed, while holding the process still
//! only for as long as its registers and memory take to copy.
//!
//! - Before the stop: /proc/PID/smaps (VmFlags, anonymous pages),
//!   coredump_filter, auxv, the process's figures, a copy buffer faulted
//!   in, and the output file created (so an unwritable directory fails
//!   with nothing stopped).
//! - During the stop ([`crate::live::freeze`]): every thread's register
//!   sets, the mappings read again (the image is of this moment), pagemap
//!   for which pages of private anonymous memory hold data, and the memory
//!   copied straight into the file through one bounded buffer and
//!   `pwrite` (never the whole image in memory).
//! - After: each thread's times and signal masks, the notes and the
//!   headers written, and the file given its name ([`output`]).
//!
//! What is dumped is the kernel's choice ([`select`]); pages that pagemap
//! shows neither present nor swapped in private anonymous memory are
//! holes of a sparse file. Memory that cannot be read (very rare: a
//! debugger's read, /proc/PID/mem, reads past PROT_NONE) is not written as
//! zeros: its segment is split (or, past a limit of segments, shortened)
//! so that its bytes are outside every segment's `p_filesz`, which readers
//! report as missing.
//!
//! Notes of our own (`extra_notes` of [`CoreRequest`]) follow the
//! kernel's.

pub mod interrupt;
pub mod layout;
pub mod output;
pub mod select;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::live::LiveProcess;
use crate::live::freeze::{Frozen, FrozenThread, TaskFigures};
use crate::parse::maps::{MapName, Mapping};
use crate::parse::notes::{PRPSINFO_SIZE, PrPsinfo};
use crate::parse::vmflags::{DumpArea, VmFlags};
use crate::target::{Memory, ProcessTarget};
pub use layout::Note;
use layout::{FileEntry, Layout, PrStatus, Segment, ThreadNotes};
use output::CoreFileOut;
use select::{Choice, PAGE, choose};

/// Bytes copied per read of the target and write of the file.
const COPY_CHUNK: usize = 4 << 20;

/// Program headers kept spare for splitting segments around memory that
/// cannot be read.
const SPLIT_SLOTS: usize = 64;

/// What to write.
#[derive(Debug, Clone)]
pub struct CoreRequest<'a> {
    /// The core's path (it must not exist).
    pub path: &'a Path,
    /// Add file-backed mappings, as gdb's gcore does.
    pub all: bool,
    /// Notes written after the kernel's, gathered before the stop.
    pub extra_notes: Vec<Note>,
}

/// A core written.
#[derive(Debug, Clone)]
pub struct CoreWritten {
    pub path: PathBuf,
    pub pid: i32,
    /// The file's size (holes included).
    pub file_size: u64,
    /// Bytes of memory copied into it.
    pub memory_bytes: u64,
    /// PT_LOAD segments.
    pub segments: usize,
    pub notes: usize,
    pub threads: usize,
    /// Threads not in the core, and why.
    pub threads_lost: Vec<(i32, String)>,
    /// Bytes of memory that could not be read, outside every segment's
    /// file image.
    pub unreadable_bytes: u64,
    /// How long the target was held stopped.
    pub held: Duration,
    /// How long the whole dump took.
    pub wall: Duration,
}

/// Write a core of `process` as `request` says; `progress` is told the
/// bytes copied and the bytes to copy as the copy goes.
pub fn write_core(
    process: &LiveProcess,
    request: CoreRequest<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CoreWritten> {
    let started = Instant::now();
    let pid = process.pid();
    if let Some(traced) = process.already_traced() {
        return Err(traced);
    }
    let before = Before::gather(process)?;
    let mut out = CoreFileOut::create(request.path)?;
    let mut buf = copy_buffer();
    interrupt::stop_if_asked()?;

    let mut frozen = process.freeze()?;
    let copied = copy_while_frozen(&mut frozen, &before, &request, &mut out, &mut buf, progress);
    let threads = frozen.threads().to_vec();
    let lost: Vec<(i32, String)> = frozen
        .lost()
        .iter()
        .map(|(tid, why)| (*tid, why.to_string()))
        .collect();
    let held = frozen.thaw();
    let copied = copied?;
    // It died while held (SIGKILL): not a core of a live process. (A
    // zombie leader whose other threads run on is alive.)
    let alive = |tid| {
        process
            .task_figures(tid)
            .is_some_and(|f| f.state != 'Z' && f.state != 'X')
    };
    if !threads.iter().any(|t| alive(t.tid)) {
        return Err(Error::ProcessGone { pid });
    }
    drop(buf);

    let notes = notes(
        process,
        &before,
        &threads,
        &copied.maps,
        &request.extra_notes,
    );
    let notes_len: usize = notes.iter().map(Note::size).sum();
    if notes_len as u64 != copied.layout.notes_len {
        return Err(Error::CoreOutput {
            dir: out.dir().to_path_buf(),
            source: std::io::Error::other("the notes changed size after the stop"),
        });
    }
    let needed = copied.layout.data_offset + copied.total;
    let mut note_bytes = Vec::with_capacity(notes_len);
    for n in &notes {
        n.encode(&mut note_bytes);
    }
    out.write_at(&note_bytes, copied.layout.notes_offset, needed)?;
    let (head, shdr) = layout::headers(&copied.layout, &copied.segments);
    out.write_at(&head, 0, needed)?;
    if let (Some(s), Some(at)) = (shdr, copied.layout.shdr_offset) {
        out.write_at(&s, at, needed)?;
    }
    let file_size = copied
        .segments
        .iter()
        .map(|s| s.offset + s.filesz)
        .max()
        .unwrap_or(0)
        .max(copied.layout.data_offset);
    out.set_len(file_size, needed)?;
    interrupt::stop_if_asked()?;
    let (path, _file) = out.persist()?;
    Ok(CoreWritten {
        path,
        pid,
        file_size,
        memory_bytes: copied.done,
        segments: copied.segments.len(),
        notes: notes.len(),
        threads: threads.len(),
        threads_lost: lost,
        unreadable_bytes: copied.unreadable,
        held,
        wall: started.elapsed(),
    })
}

/// What is read before the stop.
struct Before {
    filter: u64,
    /// smaps's areas by start address.
    areas: HashMap<u64, DumpArea>,
    /// File mappings at offset 0 whose first bytes are the ELF magic.
    elf_starts: Vec<u64>,
    auxv: Vec<u8>,
    figures: TaskFigures,
}

impl Before {
    fn gather(process: &LiveProcess) -> Result<Before> {
        let areas = process.dump_areas()?;
        let elf_starts = areas
            .iter()
            .map(|a| &a.mapping)
            .filter(|m| m.offset == 0 && m.perms.read && m.path().is_some())
            .filter(|m| starts_with_elf_magic(process, m.start))
            .map(|m| m.start)
            .collect();
        Ok(Before {
            filter: process.coredump_filter(),
            areas: areas.into_iter().map(|a| (a.mapping.start, a)).collect(),
            elf_starts,
            auxv: process.auxv_bytes()?,
            figures: process.task_figures(process.pid()).unwrap_or_default(),
        })
    }

    /// What smaps said of `m`, if it is the same mapping; else what can be
    /// told without smaps (a mapping made since: taken as written to).
    fn area(&self, m: &Mapping) -> DumpArea {
        match self.areas.get(&m.start) {
            Some(a) if a.mapping == *m => a.clone(),
            _ => DumpArea {
                mapping: m.clone(),
                flags: VmFlags(if m.perms.read { VmFlags::READ } else { 0 }),
                has_anon: true,
            },
        }
    }
}

fn starts_with_elf_magic(memory: &dyn Memory, addr: u64) -> bool {
    let mut magic = [0u8; 4];
    matches!(memory.read_memory(addr, &mut magic), Ok(4)) && magic == *b"\x7fELF"
}

/// A buffer for the copy, written through so its pages are ours before
/// the target stops.
#[allow(clippy::slow_vector_initialization)]
fn copy_buffer() -> Vec<u8> {
    let mut b = Vec::with_capacity(COPY_CHUNK);
    b.resize(COPY_CHUNK, 0);
    b
}

/// What the copy during the stop produced.
struct Copied {
    maps: Vec<Mapping>,
    layout: Layout,
    segments: Vec<Segment>,
    total: u64,
    done: u64,
    unreadable: u64,
}

/// A stretch of memory to copy, and where it goes in the file.
struct Run {
    segment: usize,
    start: u64,
    end: u64,
}

fn copy_while_frozen(
    frozen: &mut Frozen<'_>,
    before: &Before,
    request: &CoreRequest<'_>,
    out: &mut CoreFileOut,
    buf: &mut [u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Copied> {
    let maps = frozen.mappings()?;
    let choices: Vec<Choice> = maps
        .iter()
        .map(|m| {
            let elf = if before.areas.contains_key(&m.start) {
                before.elf_starts.contains(&m.start)
            } else {
                m.offset == 0 && m.path().is_some() && frozen_elf_magic(frozen, m.start)
            };
            choose(&before.area(m), before.filter, request.all, elf)
        })
        .collect();
    // The notes' sizes do not depend on what is learnt after the stop.
    let sized = notes_sized(before, frozen.threads(), &maps, &request.extra_notes);
    let layout = Layout::new(maps.len() + SPLIT_SLOTS, sized);
    let mut segments = Vec::with_capacity(maps.len());
    let mut offset = layout.data_offset;
    for (m, c) in maps.iter().zip(&choices) {
        segments.push(Segment {
            vaddr: m.start,
            memsz: m.len(),
            filesz: c.len,
            offset,
            read: m.perms.read,
            write: m.perms.write,
            exec: m.perms.exec,
        });
        offset += c.len;
    }
    let runs = runs(frozen, &segments, &choices);
    let total: u64 = runs.iter().map(|r| r.end - r.start).sum();
    let needed = layout.data_offset + total;
    let mut done = 0u64;
    let mut unreadable: Vec<(usize, u64, u64)> = Vec::new();
    progress(0, total);
    for run in &runs {
        let seg = &segments[run.segment];
        let mut addr = run.start;
        while addr < run.end {
            interrupt::stop_if_asked()?;
            let n = ((run.end - addr) as usize).min(buf.len());
            match frozen.read(addr, &mut buf[..n]) {
                Ok(got) => {
                    out.write_at(&buf[..got], seg.offset + (addr - seg.vaddr), needed)?;
                    addr += got as u64;
                    done += got as u64;
                }
                Err(e) if e.is_gone() => return Err(e),
                Err(_) => {
                    let page = addr / PAGE * PAGE;
                    let next = (page + PAGE).min(run.end);
                    match unreadable.last_mut() {
                        Some((s, _, end)) if *s == run.segment && *end == page => *end = next,
                        _ => unreadable.push((run.segment, page, next)),
                    }
                    done += next - addr;
                    addr = next;
                }
            }
            progress(done, total);
        }
    }
    let unreadable_bytes = unreadable.iter().map(|(_, a, b)| b - a).sum();
    let segments = split_unreadable(segments, &unreadable, layout.load_slots);
    Ok(Copied {
        maps,
        layout,
        segments,
        total,
        done: done - unreadable_bytes,
        unreadable: unreadable_bytes,
    })
}

fn frozen_elf_magic(frozen: &Frozen<'_>, addr: u64) -> bool {
    let mut magic = [0u8; 4];
    matches!(frozen.read(addr, &mut magic), Ok(4)) && magic == *b"\x7fELF"
}

/// The stretches to copy: whole dumped ranges, or, where absent pages may
/// be holes, the runs of pages pagemap shows holding data.
fn runs(frozen: &mut Frozen<'_>, segments: &[Segment], choices: &[Choice]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut pages = Vec::new();
    for (i, (s, c)) in segments.iter().zip(choices).enumerate() {
        if s.filesz == 0 {
            continue;
        }
        let end = s.vaddr + s.filesz;
        if !c.holes {
            runs.push(Run {
                segment: i,
                start: s.vaddr,
                end,
            });
            continue;
        }
        pages.clear();
        frozen.pages_with_data(s.vaddr, s.filesz.div_ceil(PAGE) as usize, &mut pages);
        let mut at = 0;
        while at < pages.len() {
            if !pages[at] {
                at += 1;
                continue;
            }
            let first = at;
            while at < pages.len() && pages[at] {
                at += 1;
            }
            runs.push(Run {
                segment: i,
                start: s.vaddr + first as u64 * PAGE,
                end: (s.vaddr + at as u64 * PAGE).min(end),
            });
        }
    }
    runs
}

/// The segments with each unreadable range `(segment, start, end)` taken
/// out of the file image: a segment is split into the part before (as it
/// was), the range (no file bytes) and the part after, while program
/// header slots last (`slots` in all); past that, the segment's file
/// image ends where the range starts.
fn split_unreadable(
    segments: Vec<Segment>,
    unreadable: &[(usize, u64, u64)],
    slots: usize,
) -> Vec<Segment> {
    if unreadable.is_empty() {
        return segments;
    }
    let mut spare = slots.saturating_sub(segments.len());
    let mut out = Vec::with_capacity(segments.len() + unreadable.len() * 2);
    for (i, seg) in segments.into_iter().enumerate() {
        let mut cur = seg;
        for &(_, a, b) in unreadable.iter().filter(|u| u.0 == i) {
            if a < cur.vaddr {
                continue;
            }
            let head = a - cur.vaddr;
            if spare < 2 {
                cur.filesz = cur.filesz.min(head);
                break;
            }
            spare -= 2;
            if head > 0 {
                out.push(Segment {
                    memsz: head,
                    filesz: cur.filesz.min(head),
                    ..cur
                });
            }
            out.push(Segment {
                vaddr: a,
                memsz: b - a,
                filesz: 0,
                offset: cur.offset + head,
                ..cur
            });
            let skip = b - cur.vaddr;
            cur = Segment {
                vaddr: b,
                memsz: cur.memsz - skip,
                filesz: cur.filesz.saturating_sub(skip),
                offset: cur.offset + skip,
                ..cur
            };
        }
        if cur.memsz > 0 {
            out.push(cur);
        }
    }
    out
}

/// The size of the notes [`notes`] will write, from what is known during
/// the stop (the per-thread figures read after it have fixed sizes).
fn notes_sized(
    before: &Before,
    threads: &[FrozenThread],
    maps: &[Mapping],
    extra: &[Note],
) -> usize {
    // Ours come last and are sized as they are, not copied while the
    // process is held (the descriptor table of a busy server is large).
    let notes = assemble(before, threads, maps, &[], |_| TaskFigures::default(), None);
    notes.iter().chain(extra).map(Note::size).sum()
}

/// The notes, with each thread's figures read now that it runs again.
fn notes(
    process: &LiveProcess,
    before: &Before,
    threads: &[FrozenThread],
    maps: &[Mapping],
    extra: &[Note],
) -> Vec<Note> {
    assemble(
        before,
        threads,
        maps,
        extra,
        |tid| process.task_figures(tid).unwrap_or_default(),
        Some(process),
    )
}

fn assemble(
    before: &Before,
    threads: &[FrozenThread],
    maps: &[Mapping],
    extra: &[Note],
    figures: impl Fn(i32) -> TaskFigures,
    process: Option<&LiveProcess>,
) -> Vec<Note> {
    let thread_notes = threads
        .iter()
        .map(|t| {
            let f = figures(t.tid);
            ThreadNotes {
                prstatus: layout::prstatus(&PrStatus {
                    cursig: 0,
                    sigpend: f.sigpend,
                    sighold: f.sighold,
                    pid: t.tid,
                    ppid: f.ppid,
                    pgrp: f.pgrp,
                    sid: f.sid,
                    times_us: f.times_us,
                    registers: Some(t.registers),
                }),
                fpregs: t.fpregs.clone(),
                xstate: t.xstate.clone(),
            }
        })
        .collect();
    let psinfo = match process {
        Some(p) => layout::prpsinfo(&psinfo(p, &before.figures), before.figures.nice as i8),
        None => vec![0u8; PRPSINFO_SIZE],
    };
    let files: Vec<FileEntry> = maps.iter().filter_map(file_entry).collect();
    layout::all_notes(
        thread_notes,
        psinfo,
        layout::no_siginfo(),
        before.auxv.clone(),
        layout::nt_file(&files),
        extra,
    )
}

fn psinfo(process: &LiveProcess, f: &TaskFigures) -> PrPsinfo {
    let p = process.psinfo();
    // As the process was before we stopped it.
    let (state, sname) = layout::state_numbers(p.state);
    PrPsinfo {
        state,
        sname,
        flag: f.flags,
        uid: p.uid,
        gid: p.gid,
        pid: p.pid,
        ppid: p.ppid,
        pgrp: f.pgrp,
        sid: f.sid,
        fname: p.fname.clone(),
        psargs: p.psargs.clone(),
    }
}

/// The `NT_FILE` entry of a file mapping, with the path as the kernel
/// writes it (` (deleted)` included).
fn file_entry(m: &Mapping) -> Option<FileEntry> {
    use std::os::unix::ffi::OsStrExt;
    let MapName::File(path) = &m.name else {
        return None;
    };
    let mut bytes = path.as_os_str().as_bytes().to_vec();
    if m.deleted {
        bytes.extend_from_slice(b" (deleted)");
    }
    Some(FileEntry {
        start: m.start,
        end: m.end,
        offset: m.offset,
        path: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(vaddr: u64, len: u64, offset: u64) -> Segment {
        Segment {
            vaddr,
            memsz: len,
            filesz: len,
            offset,
            read: true,
            write: true,
            exec: false,
        }
    }

    #[test]
    fn unreadable_memory_is_outside_every_file_image() {
        let segs = vec![seg(0x10000, 0x5000, 0x1000), seg(0x20000, 0x1000, 0x6000)];
        let split = split_unreadable(segs.clone(), &[(0, 0x11000, 0x12000)], 10);
        assert_eq!(
            split
                .iter()
                .map(|s| (s.vaddr, s.memsz, s.filesz, s.offset))
                .collect::<Vec<_>>(),
            vec![
                (0x10000, 0x1000, 0x1000, 0x1000),
                (0x11000, 0x1000, 0, 0x2000),
                (0x12000, 0x3000, 0x3000, 0x3000),
                (0x20000, 0x1000, 0x1000, 0x6000),
            ]
        );
        // No spare slots: the file image ends where the unreadable part starts.
        let short = split_unreadable(segs, &[(0, 0x11000, 0x12000)], 2);
        assert_eq!((short[0].memsz, short[0].filesz), (0x5000, 0x1000));
        assert_eq!(short.len(), 2);
    }
}
