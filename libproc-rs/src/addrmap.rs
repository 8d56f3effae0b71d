//! The address-space map (npmap): what each mapping is, how much of it is
//! in use, and the categories of `npmap --summary`.
//!
//! [`address_map`] turns a target's mappings into a listing: every mapping
//! gets a [`Label`] (the bracketed name pmap prints, or the file) and a
//! [`Category`]; a live process can add per-mapping use from
//! `/proc/PID/smaps` (one streamed read), and a core says how much of each
//! mapping it holds.
//!
//! What is decided here, and how:
//!
//! - **Thread stacks** are the mappings that hold a thread's stack pointer:
//!   from a core's registers, or for a live thread blocked in a system call
//!   from /proc/PID/task/TID/syscall. Nothing is stopped, so the stack of a
//!   live thread that is running on a CPU at that moment is not found and
//!   stays `[ anon ]`.
//! - **glibc thread arenas** (the heaps malloc makes for threads) are
//!   found by shape and confirmed by content: a private anonymous
//!   read-write mapping that starts on a 64 MiB boundary (glibc's
//!   `HEAP_MAX_SIZE`), and either fills the 64 MiB window or is followed by
//!   private anonymous mappings without write access (the reserved tail)
//!   that end exactly at the window's end. When the start of the mapping
//!   can be read, it must also hold a plausible `heap_info` header
//!   ([`HeapInfo::fits`]); this keeps V8's aligned reservations out. When it
//!   cannot be read, the shape alone decides.
//! - **The brk heap** and **vvar** pages are named by /proc; a core does
//!   not name them, and the core reader infers them (see
//!   [`crate::ProcessTarget::mappings_named`]).
//! - **V8's heap** (node's JavaScript heap, its code, its read-only space
//!   and its code range's reservation) is found and checked page by page
//!   by [`crate::v8heap`]; a mapping partly V8's is split at the pages'
//!   boundaries, so that each category's sum is right. A split part's use
//!   on a live process comes from /proc/PID/pagemap (resident KiB; all of
//!   it anonymous, as the mapping is private anonymous memory).
//! - `[vsyscall]` is left out: it is the kernel's fixed page at
//!   `ffffffffff600000`, the same in every process, and not part of its
//!   address space (VmSize does not count it).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::diag::Sink;
use crate::error::Result;
use crate::parse::maps::index_holding;
use crate::parse::smaps::MappingUsage;
use crate::target::{MapName, Mapping, MemoryExt, ProcessTarget};
use crate::v8heap::{V8Kind, V8Range, V8Scan, find_v8_pages};

/// glibc's `HEAP_MAX_SIZE` on 64-bit systems (twice the largest mmap
/// threshold): every thread-arena heap is this size and aligned to it.
pub const HEAP_MAX_SIZE: u64 = 64 << 20;
/// The summary categories, in the order `--summary` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// The brk heap and glibc's thread-arena heaps.
    Heap,
    /// V8's pages: the JavaScript heap (its spaces' pages, large objects
    /// included), its code and its read-only space.
    V8,
    /// V8's code range, reserved and not (yet) holding a page.
    V8Reserved,
    /// Private anonymous memory that is not a heap, V8's or a stack
    /// (mmap'd buffers, guard pages and reservations, `[anon:NAME]`).
    Anon,
    /// The main thread's stack and the stacks of threads found from their
    /// stack pointers.
    Stack,
    /// Mappings of files (private or shared), deleted files and memfds too.
    File,
    /// Shared memory that is no file's contents: shared anonymous memory
    /// (`/dev/zero (deleted)`), `[anon_shmem:NAME]`, System V segments
    /// (`/SYSVxxxxxxxx (deleted)`).
    Shared,
    /// Pages the kernel provides: vdso, vvar and other bracketed names.
    Other,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Heap,
        Category::V8,
        Category::V8Reserved,
        Category::Anon,
        Category::Stack,
        Category::File,
        Category::Shared,
        Category::Other,
    ];

    /// The stable name scripts see.
    pub fn name(self) -> &'static str {
        match self {
            Category::Heap => "heap",
            Category::V8 => "v8",
            Category::V8Reserved => "v8-reserved",
            Category::Anon => "anon",
            Category::Stack => "stack",
            Category::File => "file",
            Category::Shared => "shared",
            Category::Other => "other",
        }
    }
}

/// What a mapping is, as npmap names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// The brk heap.
    Heap,
    /// A glibc thread-arena heap (its read-write part or reserved tail).
    Arena,
    /// The main thread's stack.
    Stack,
    /// The stack of thread `tid`.
    ThreadStack(i32),
    Anon,
    /// `[anon:NAME]`.
    AnonNamed(OsString),
    /// Shared anonymous memory (`/dev/zero (deleted)`).
    SharedAnon,
    /// `[anon_shmem:NAME]`.
    SharedNamed(OsString),
    /// A System V shared memory segment, by its `/SYSVkey` name.
    SysvShm,
    /// A mapped file.
    File,
    Vdso,
    Vvar,
    /// Another bracketed kernel name, without the brackets.
    Kernel(OsString),
    /// V8's pages of one kind (and one space, but for a reservation).
    V8 {
        kind: V8Kind,
        space: Option<&'static str>,
    },
}

impl Label {
    pub fn category(&self) -> Category {
        match self {
            Label::Heap | Label::Arena => Category::Heap,
            Label::Stack | Label::ThreadStack(_) => Category::Stack,
            Label::Anon | Label::AnonNamed(_) => Category::Anon,
            Label::SharedAnon | Label::SharedNamed(_) | Label::SysvShm => Category::Shared,
            Label::File => Category::File,
            Label::Vdso | Label::Vvar | Label::Kernel(_) => Category::Other,
            Label::V8 {
                kind: V8Kind::Reserved,
                ..
            } => Category::V8Reserved,
            Label::V8 { .. } => Category::V8,
        }
    }

    /// A stable word for JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Label::Heap => "heap",
            Label::Arena => "arena",
            Label::Stack => "stack",
            Label::ThreadStack(_) => "thread_stack",
            Label::Anon => "anon",
            Label::AnonNamed(_) => "anon_named",
            Label::SharedAnon => "shared_anon",
            Label::SharedNamed(_) => "shared_named",
            Label::SysvShm => "sysv_shm",
            Label::File => "file",
            Label::Vdso => "vdso",
            Label::Vvar => "vvar",
            Label::Kernel(_) => "kernel",
            Label::V8 { kind, .. } => match kind {
                V8Kind::Heap => "v8_heap",
                V8Kind::Large => "v8_large",
                V8Kind::Code => "v8_code",
                V8Kind::ReadOnly => "v8_read_only",
                V8Kind::Reserved => "v8_reserved",
            },
        }
    }
}

/// `/SYSV` and eight hex digits: the name the kernel gives a System V
/// shared memory segment.
fn is_sysv_name(path: &Path) -> bool {
    let b = path.as_os_str().as_bytes();
    b.len() == 13 && b.starts_with(b"/SYSV") && b[5..].iter().all(u8::is_ascii_hexdigit)
}

/// The label a mapping has from its name alone.
fn label_from_name(m: &Mapping) -> Label {
    match &m.name {
        MapName::File(p) if m.deleted && p.as_os_str().as_bytes() == b"/dev/zero" => {
            Label::SharedAnon
        }
        MapName::File(p) if m.deleted && is_sysv_name(p) => Label::SysvShm,
        MapName::File(_) => Label::File,
        MapName::Heap => Label::Heap,
        MapName::Stack => Label::Stack,
        MapName::Vdso => Label::Vdso,
        MapName::Vvar => Label::Vvar,
        MapName::Vsyscall => Label::Kernel("vsyscall".into()),
        MapName::Anon => Label::Anon,
        MapName::AnonNamed(n) => Label::AnonNamed(n.clone()),
        MapName::AnonShmemNamed(n) => Label::SharedNamed(n.clone()),
        MapName::Other(n) => Label::Kernel(n.clone()),
    }
}

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub mapping: Mapping,
    pub label: Label,
    /// From /proc/PID/smaps, when asked for on a live process.
    pub usage: Option<MappingUsage>,
}

impl MapEntry {
    pub fn category(&self) -> Category {
        self.label.category()
    }
    pub fn size_kib(&self) -> u64 {
        self.mapping.len() / 1024
    }
    /// KiB of the mapping a core holds; `None` for a live process.
    pub fn dumped_kib(&self) -> Option<u64> {
        self.mapping
            .dumped
            .map(|d| d.min(self.mapping.len()) / 1024)
    }
    /// For a core: some of the mapping's data is not in the core.
    pub fn missing_from_core(&self) -> bool {
        self.mapping.dumped.is_some_and(|d| d < self.mapping.len())
    }
    /// Private anonymous memory (the stuff arenas and stacks are made of).
    fn is_private_anon(&self) -> bool {
        !self.mapping.perms.shared && matches!(self.label, Label::Anon | Label::AnonNamed(_))
    }
}

/// Sizes of one category (or of everything), in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub size_kib: u64,
    /// With usage (a live process and `-x`).
    pub rss_kib: Option<u64>,
    pub anon_kib: Option<u64>,
    pub locked_kib: Option<u64>,
    /// For a core.
    pub dumped_kib: Option<u64>,
}

fn add_opt(sum: Option<u64>, v: Option<u64>) -> Option<u64> {
    match (sum, v) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (None, Some(b)) => Some(b),
        (s, None) => s,
    }
}

impl Totals {
    fn add(&mut self, e: &MapEntry) {
        // Saturating: a damaged core can claim any sizes.
        self.size_kib = self.size_kib.saturating_add(e.size_kib());
        self.rss_kib = add_opt(self.rss_kib, e.usage.map(|u| u.rss_kib));
        self.anon_kib = add_opt(self.anon_kib, e.usage.map(|u| u.anon_kib));
        self.locked_kib = add_opt(self.locked_kib, e.usage.map(|u| u.locked_kib));
        self.dumped_kib = add_opt(self.dumped_kib, e.dumped_kib());
    }
}

/// A target's address space, labelled.
#[derive(Debug, Clone, Default)]
pub struct AddressMap {
    pub entries: Vec<MapEntry>,
    /// The mappings come with what a core holds of them (a core: no usage).
    pub from_core: bool,
    /// Per-mapping use was read (live, when asked for).
    pub has_usage: bool,
    /// V8's pages were looked for, and with which result.
    pub v8: Option<V8Outcome>,
}

/// What looking for V8's pages gave, for the report.
#[derive(Debug, Clone, Default)]
pub struct V8Outcome {
    /// The layout recognised.
    pub layout: Option<&'static str>,
    /// Why a target that looks like node has no V8 pages labelled.
    pub unrecognised: Option<String>,
}

impl AddressMap {
    /// Totals per category, in [`Category::ALL`] order. A category with no
    /// mapping has zero size, and zero use or dumped bytes where those are
    /// known for the target.
    pub fn summary(&self) -> Vec<(Category, Totals)> {
        Category::ALL
            .iter()
            .map(|&c| {
                let mut t = self.empty_totals();
                for e in self.entries.iter().filter(|e| e.category() == c) {
                    t.add(e);
                }
                (c, t)
            })
            .collect()
    }

    /// Totals of the whole listing.
    pub fn total(&self) -> Totals {
        let mut t = self.empty_totals();
        for e in &self.entries {
            t.add(e);
        }
        t
    }

    fn empty_totals(&self) -> Totals {
        let usage = self.has_usage.then_some(0);
        Totals {
            size_kib: 0,
            rss_kib: usage,
            anon_kib: usage,
            locked_kib: usage,
            dumped_kib: self.from_core.then_some(0),
        }
    }
}

/// The first four fields of glibc's `heap_info`, the header at the start of
/// every thread-arena heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapInfo {
    /// The arena (`malloc_state`) this heap belongs to.
    pub ar_ptr: u64,
    /// The arena's previous heap, or 0.
    pub prev: u64,
    /// Bytes of the heap in use by malloc.
    pub size: u64,
    /// Bytes made read-write (the length of the read-write mapping).
    pub mprotect_size: u64,
}

impl HeapInfo {
    pub const LEN: usize = 32;

    pub fn parse(b: &[u8; Self::LEN]) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        HeapInfo {
            ar_ptr: word(0),
            prev: word(1),
            size: word(2),
            mprotect_size: word(3),
        }
    }

    /// Is this a plausible header of a heap whose read-write part is
    /// `rw_len` bytes? glibc keeps `mprotect_size` equal to that part,
    /// `size` page-aligned within it, the arena pointer aligned and set, and
    /// `prev` either null or another 64 MiB-aligned heap.
    pub fn fits(&self, rw_len: u64) -> bool {
        self.mprotect_size == rw_len
            && self.size > 0
            && self.size <= self.mprotect_size
            && self.size.is_multiple_of(4096)
            && self.ar_ptr != 0
            && self.ar_ptr.is_multiple_of(8)
            && self.prev.is_multiple_of(HEAP_MAX_SIZE)
    }
}

/// For the entry at `i`: if it has the shape of a glibc heap, the index one
/// past its last mapping (the read-write part, then the reserved tail).
fn arena_shape(entries: &[MapEntry], i: usize) -> Option<usize> {
    let rw = &entries[i];
    let m = &rw.mapping;
    let window_end = m.start.checked_add(HEAP_MAX_SIZE)?;
    let aligned_rw = m.start.is_multiple_of(HEAP_MAX_SIZE)
        && rw.is_private_anon()
        && m.perms.read
        && m.perms.write
        && m.end <= window_end;
    if !aligned_rw {
        return None;
    }
    let mut end = m.end;
    let mut j = i + 1;
    while end < window_end {
        let tail = entries.get(j)?;
        if tail.mapping.start != end || !tail.is_private_anon() || tail.mapping.perms.write {
            return None;
        }
        end = tail.mapping.end;
        j += 1;
    }
    (end == window_end).then_some(j)
}

/// Label glibc's thread-arena heaps (see the module documentation).
fn label_arenas(target: &dyn ProcessTarget, entries: &mut [MapEntry]) {
    let mut i = 0;
    while i < entries.len() {
        let Some(next) = arena_shape(entries, i) else {
            i += 1;
            continue;
        };
        let m = &entries[i].mapping;
        let mut header = [0u8; HeapInfo::LEN];
        let confirmed = match target.read_exact_at(m.start, &mut header) {
            Ok(()) => HeapInfo::parse(&header).fits(m.len()),
            // Unreadable (not in the core, or refused): the shape decides.
            Err(_) => true,
        };
        if confirmed {
            for e in &mut entries[i..next] {
                e.label = Label::Arena;
            }
            i = next;
        } else {
            i += 1;
        }
    }
}

/// The entry holding `addr`, by binary search.
fn entry_at(entries: &[MapEntry], addr: u64) -> Option<usize> {
    index_holding(entries, addr, |e| &e.mapping)
}

/// Label the mappings that hold a thread's stack pointer, and those of
/// running threads told by glibc's thread block (see
/// [`running_thread_stacks`]).
fn label_thread_stacks(target: &dyn ProcessTarget, entries: &mut [MapEntry]) {
    let Ok(threads) = target.thread_stack_pointers() else {
        return;
    };
    let pid = target.pid();
    let maps: Vec<&Mapping> = entries.iter().map(|e| &e.mapping).collect();
    for (i, tid) in running_thread_stacks(target, &maps, &threads) {
        if entries[i].is_private_anon() {
            entries[i].label = Label::ThreadStack(tid);
        }
    }
    for (tid, sp) in threads {
        let Some(i) = sp.and_then(|sp| entry_at(entries, sp)) else {
            continue;
        };
        let e = &mut entries[i];
        if e.is_private_anon() {
            e.label = if tid == pid {
                Label::Stack
            } else {
                Label::ThreadStack(tid)
            };
        }
    }
}

/// The stacks of the threads that are running (not in a system call, so
/// that their stack pointers cannot be had without stopping them), as
/// indices into `maps`, each with its thread.
///
/// A stack is a mapping that looks like one glibc makes (private,
/// anonymous, read-write, not executable, right above a guard area with
/// no access), holds none of the known stack pointers of `threads` (the
/// first is the main thread, whose stack is `[stack]`), and has at its top
/// glibc's `struct pthread` naming a running thread: its thread control
/// block starts with two pointers to itself, at 0 and 16, and the kernel's
/// thread id is at 0x2d0 (x86_64, glibc 2.26 on). Nothing else is taken:
/// not a look-alike mapping (a V8 code page), not the cached stack of a
/// thread that has exited (its id is cleared), not a stack of another C
/// library's threads.
pub fn running_thread_stacks<M: std::borrow::Borrow<Mapping>>(
    target: &dyn ProcessTarget,
    maps: &[M],
    threads: &[(i32, Option<u64>)],
) -> Vec<(usize, i32)> {
    let running: Vec<i32> = threads
        .iter()
        .skip(1)
        .filter(|(_, sp)| sp.is_none())
        .map(|(tid, _)| *tid)
        .collect();
    if running.is_empty() {
        return Vec::new();
    }
    let known: Vec<u64> = threads.iter().filter_map(|(_, sp)| *sp).collect();
    (1..maps.len())
        .filter(|&i| {
            let (guard, m) = (maps[i - 1].borrow(), maps[i].borrow());
            let (g, p) = (&guard.perms, &m.perms);
            !(g.read || g.write || g.exec)
                && guard.end == m.start
                && p.read
                && p.write
                && !p.exec
                && !p.shared
                && m.name == MapName::Anon
                && !known.iter().any(|&sp| m.contains(sp))
        })
        .filter_map(|i| Some((i, stack_owner(target, maps[i].borrow(), &running)?)))
        .collect()
}

/// Which of `running` the stack `m` is of (see [`running_thread_stacks`]),
/// searched from the top, where glibc puts the thread block.
fn stack_owner(target: &dyn ProcessTarget, m: &Mapping, running: &[i32]) -> Option<i32> {
    const TOP: u64 = 64 << 10;
    const TID: usize = 0x2d0;
    let start = m.end.saturating_sub(TOP).max(m.start);
    let mut buf = vec![0u8; (m.end - start) as usize];
    let n = target.read_memory(start, &mut buf).ok()?;
    let word = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
    (0..n.saturating_sub(TID + 4))
        .step_by(64)
        .rev()
        .find_map(|i| {
            let at = start + i as u64;
            (word(i) == at && word(i + 16) == at)
                .then(|| {
                    u32::from_le_bytes(buf[i + TID..i + TID + 4].try_into().expect("4 bytes"))
                        as i32
                })
                .filter(|tid| running.contains(tid))
        })
}

/// Turn mappings into entries, in order. The listing needs every entry
/// before its first line (totals set the column widths, an arena is told
/// by the mappings after it), but not the mappings beside them: they are
/// given up a block at a time as their entries are made, which keeps the
/// peak near the entries' own size (at 100,000 mappings, 16 MB, not 26).
fn into_entries<T>(mut items: Vec<T>, entry: impl Fn(T) -> Option<MapEntry>) -> Vec<MapEntry> {
    const BLOCK: usize = 4096;
    let mut entries = Vec::with_capacity(items.len());
    // Reversed, the lowest addresses are at the end, where a block can be
    // cut off and the memory it held returned.
    items.reverse();
    while !items.is_empty() {
        let rest = items.len().saturating_sub(BLOCK);
        entries.extend(items.drain(rest..).rev().filter_map(&entry));
        items.shrink_to_fit();
    }
    entries
}

/// The labelled address space of a target. With `usage`, a live process's
/// mappings come with their use from /proc/PID/smaps (one read). V8's
/// pages are labelled (see [`address_map_with`] to leave them out).
pub fn address_map(
    target: &dyn ProcessTarget,
    usage: bool,
    sink: &mut dyn Sink,
) -> Result<AddressMap> {
    address_map_with(target, usage, true, sink)
}

/// [`address_map`], with V8's pages looked for only when `v8` is set.
pub fn address_map_with(
    target: &dyn ProcessTarget,
    usage: bool,
    v8: bool,
    sink: &mut dyn Sink,
) -> Result<AddressMap> {
    let with_usage = if usage {
        target.mappings_with_usage()?
    } else {
        None
    };
    let has_usage = with_usage.is_some();
    let entry = |mapping: Mapping, usage: Option<MappingUsage>| {
        (mapping.name != MapName::Vsyscall).then(|| MapEntry {
            label: label_from_name(&mapping),
            mapping,
            usage,
        })
    };
    let mut entries: Vec<MapEntry> = match with_usage {
        Some(v) => into_entries(v, |(m, u)| entry(m, u)),
        None => into_entries(target.mappings_named(sink)?, |m| entry(m, None)),
    };
    label_arenas(target, &mut entries);
    label_thread_stacks(target, &mut entries);
    let mut outcome = None;
    if v8 {
        let scan = scan_v8(target, &entries);
        if let Some(why) = &scan.unrecognised {
            sink.warn(why.clone());
        }
        entries = split_v8(target, entries, &scan.ranges);
        outcome = Some(V8Outcome {
            layout: scan.layout,
            unrecognised: scan.unrecognised,
        });
    }
    Ok(AddressMap {
        entries,
        from_core: target.records_dumped_sizes(),
        has_usage,
        v8: outcome,
    })
}

/// Look for V8's pages in the mappings still labelled anonymous.
fn scan_v8(target: &dyn ProcessTarget, entries: &[MapEntry]) -> V8Scan {
    let all: Vec<&Mapping> = entries.iter().map(|e| &e.mapping).collect();
    let anon: Vec<&Mapping> = entries
        .iter()
        .filter(|e| e.is_private_anon())
        .map(|e| &e.mapping)
        .collect();
    find_v8_pages(target, &anon, crate::v8heap::looks_like_node(&all))
}

/// A part `[start, end)` of `e`, labelled `label`, with its use: on a live
/// process from pagemap, in a core what of it the core holds.
fn part(target: &dyn ProcessTarget, e: &MapEntry, start: u64, end: u64, label: Label) -> MapEntry {
    let m = &e.mapping;
    let mut mapping = m.clone();
    mapping.start = start;
    mapping.end = end;
    mapping.dumped = m
        .dumped
        .map(|d| d.saturating_sub(start - m.start).min(end - start));
    // A source that cannot tell a part's RSS (a core's recorded smaps
    // figures are per mapping) shows "-", not 0.
    let usage = e.usage.and_then(|u| {
        let rss = target.resident_kib(start, end)?;
        Some(MappingUsage {
            rss_kib: rss,
            anon_kib: rss,
            locked_kib: if u.locked_kib > 0 { rss } else { 0 },
        })
    });
    MapEntry {
        mapping,
        label,
        usage,
    }
}

/// Relabel (and where a mapping is partly V8's, split) the private
/// anonymous entries that `ranges` (sorted) overlap.
fn split_v8(
    target: &dyn ProcessTarget,
    entries: Vec<MapEntry>,
    ranges: &[V8Range],
) -> Vec<MapEntry> {
    if ranges.is_empty() {
        return entries;
    }
    let mut out = Vec::with_capacity(entries.len() + 16);
    for e in entries {
        let (start, end) = (e.mapping.start, e.mapping.end);
        let first = ranges.partition_point(|r| r.end <= start);
        let overlapping = ranges[first..].iter().take_while(|r| r.start < end);
        if !e.is_private_anon() || ranges.get(first).is_none_or(|r| r.start >= end) {
            out.push(e);
            continue;
        }
        // The parts, with neighbours of the same label merged.
        let mut parts: Vec<(u64, u64, Label)> = Vec::new();
        let mut at = start;
        let push =
            |parts: &mut Vec<(u64, u64, Label)>, s: u64, t: u64, l: Label| match parts.last_mut() {
                Some(last) if last.2 == l && last.1 == s => last.1 = t,
                _ => parts.push((s, t, l)),
            };
        for r in overlapping {
            let (s, t) = (r.start.max(start), r.end.min(end));
            if s > at {
                push(&mut parts, at, s, e.label.clone());
            }
            let label = Label::V8 {
                kind: r.kind,
                space: r.space,
            };
            push(&mut parts, s.max(at), t, label);
            at = at.max(t);
        }
        if at < end {
            push(&mut parts, at, end, e.label.clone());
        }
        if let [(_, _, label)] = parts.as_slice() {
            let mut e = e;
            e.label = label.clone();
            out.push(e);
            continue;
        }
        for (s, t, label) in parts {
            out.push(part(target, &e, s, t, label));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::maps::parse_maps;

    fn entries(maps: &[u8]) -> Vec<MapEntry> {
        parse_maps(maps)
            .into_iter()
            .map(|m| MapEntry {
                label: label_from_name(&m),
                mapping: m,
                usage: None,
            })
            .collect()
    }

    #[test]
    fn entries_keep_the_order_of_the_mappings() {
        let maps: Vec<Mapping> = (0..10_000u64)
            .map(|i| {
                let perms = crate::parse::maps::Perms::default();
                Mapping::new(i * 4096, i * 4096 + 4096, perms, MapName::Anon)
            })
            .collect();
        let entries = into_entries(maps, |m| {
            (m.start % 3 != 0).then(|| MapEntry {
                label: label_from_name(&m),
                mapping: m,
                usage: None,
            })
        });
        let starts: Vec<u64> = entries.iter().map(|e| e.mapping.start).collect();
        let want: Vec<u64> = (0..10_000u64)
            .map(|i| i * 4096)
            .filter(|s| s % 3 != 0)
            .collect();
        assert_eq!(starts, want);
    }

    #[test]
    fn arena_shapes() {
        let e = entries(
            b"7f2298000000-7f2298021000 rw-p 00000000 00:00 0\n\
7f2298021000-7f229c000000 ---p 00000000 00:00 0\n\
7f229c000000-7f22a0000000 rw-p 00000000 00:00 0\n\
7f22a4000000-7f22a4021000 rw-p 00000000 00:00 0\n\
7f22a4021000-7f22a9000000 ---p 00000000 00:00 0\n\
7f22ac000000-7f22ac001000 rw-p 00000000 00:00 0\n\
7f22ac001000-7f22b0000000 r--p 00000000 00:00 0 /tmp/file\n\
7f22b0000000-7f22b0001000 rw-s 00000000 00:01 5 /dev/zero (deleted)\n\
7f22b0001000-7f22b4000000 ---p 00000000 00:00 0\n",
        );
        // rw part and reserved tail filling the 64 MiB window.
        assert_eq!(arena_shape(&e, 0), Some(2));
        // Fully grown: the rw part is the window.
        assert_eq!(arena_shape(&e, 2), Some(3));
        // The reservation runs past the window (as V8's do).
        assert_eq!(arena_shape(&e, 3), None);
        // The rest of the window is a file, or the rw part is shared.
        assert_eq!(arena_shape(&e, 5), None);
        assert_eq!(arena_shape(&e, 7), None);
        // Not aligned.
        assert_eq!(arena_shape(&e, 1), None);
    }

    #[test]
    fn heap_info_header() {
        let mut b = [0u8; HeapInfo::LEN];
        b[0..8].copy_from_slice(&0x7f22_9800_0020u64.to_le_bytes());
        b[16..24].copy_from_slice(&0x21000u64.to_le_bytes());
        b[24..32].copy_from_slice(&0x21000u64.to_le_bytes());
        let h = HeapInfo::parse(&b);
        assert_eq!(h.ar_ptr, 0x7f22_9800_0020);
        assert!(h.fits(0x21000));
        assert!(!h.fits(0x22000));
        // Bytes a program wrote (0x11 everywhere) are not a header.
        assert!(!HeapInfo::parse(&[0x11; HeapInfo::LEN]).fits(64 << 20));
        assert!(!HeapInfo::parse(&[0; HeapInfo::LEN]).fits(0x21000));
        let mut other_prev = b;
        other_prev[8..16].copy_from_slice(&0x7f22_9400_1000u64.to_le_bytes());
        assert!(!HeapInfo::parse(&other_prev).fits(0x21000));
    }

    #[test]
    fn labels_and_categories_from_names() {
        let e = entries(
            b"1000-2000 rw-s 00000000 00:01 5 /dev/zero (deleted)\n\
2000-3000 rw-s 00000000 00:01 6 /SYSV0000abcd (deleted)\n\
3000-4000 rw-s 00000000 00:01 7 /memfd:jit (deleted)\n\
4000-5000 rw-p 00000000 00:00 0 [anon:v8]\n\
5000-6000 rw-s 00000000 00:01 8 [anon_shmem:ring]\n\
6000-7000 r--p 00000000 00:00 0 [vvar_vclock]\n\
7000-8000 r--p 00000000 08:01 9 /SYSV0000abcd\n",
        );
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.label.kind(), e.category().name()))
            .collect();
        assert_eq!(
            got,
            [
                ("shared_anon", "shared"),
                ("sysv_shm", "shared"),
                ("file", "file"),
                ("anon_named", "anon"),
                ("shared_named", "shared"),
                ("kernel", "other"),
                ("file", "file"),
            ]
        );
    }

    #[test]
    fn summary_adds_up() {
        let mut map = AddressMap {
            entries: entries(
                b"1000-3000 rw-p 00000000 00:00 0 [heap]\n\
3000-4000 rw-p 00000000 00:00 0\n\
4000-6000 r--p 00000000 08:01 9 /bin/x\n",
            ),
            has_usage: true,
            ..AddressMap::default()
        };
        for (i, e) in map.entries.iter_mut().enumerate() {
            e.usage = Some(MappingUsage {
                rss_kib: i as u64 + 1,
                ..MappingUsage::default()
            });
        }
        let s = map.summary();
        let size = |c: Category| s.iter().find(|(k, _)| *k == c).unwrap().1;
        assert_eq!(size(Category::Heap).size_kib, 8);
        assert_eq!(size(Category::Heap).rss_kib, Some(1));
        assert_eq!(size(Category::Anon).size_kib, 4);
        assert_eq!(size(Category::File).size_kib, 8);
        assert_eq!(size(Category::Stack).rss_kib, Some(0));
        assert_eq!(size(Category::Shared).dumped_kib, None);
        assert_eq!(map.total().size_kib, 20);
        assert_eq!(map.total().rss_kib, Some(6));
    }
}
