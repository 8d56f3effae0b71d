//! V8's heap pages, found in a target's memory: which mappings (or which
//! parts of them) are V8's JavaScript heap, its code, its read-only space,
//! and its code range's reserved but uncommitted address space.
//!
//! V8 allocates its heap in chunks aligned to 256 KiB (`kPageSize`, the
//! same from V8 11.3 to 14.6): regular pages of exactly 256 KiB and large
//! object pages of any multiple of 4 KiB. Every chunk starts with a header,
//! so that V8 finds it from any object's address by masking; the header (or
//! from V8 13 on, the metadata it points to) says the chunk's size, its
//! allocation area, the `Heap` and the space (`owner`) it belongs to, and
//! the reservation the chunk was mapped as. The `v8dbg_*` metadata does not
//! describe it, so the layouts are measured per version (below) and each
//! page is accepted only when all of these hold:
//!
//! - the area starts inside the chunk's first 64 KiB and ends inside the
//!   chunk, after it starts; the size is a multiple of 4 KiB;
//! - the reservation is the chunk itself (same address, same size);
//! - the owner is a space whose `heap` is the page's heap and whose id is a
//!   space of that version; the id names the space (`old_space`, ...).
//!
//! Read-only pages have no heap and no owner (the read-only heap is shared
//! by the isolates); they are accepted with the same area checks, when they
//! are not writable and the layout was recognised on ordinary pages.
//!
//! The code range (a 512 MiB reservation that holds the code space) is
//! found from a code page's reservation: it was made by a
//! `BoundedPageAllocator` whose region holds the page, whose page size is
//! 256 KiB and commit size 4 KiB, and which allocates from the allocator the
//! other pages came from. What of the region is not a page is
//! [`V8Kind::Reserved`].
//!
//! Nothing is labelled without these checks: a process that is not node,
//! or a node whose layout is not one of these, gets no V8 pages, and
//! [`V8Scan::unrecognised`] says why when the target looks like node.
//!
//! # What was measured (official linux-x64 builds, live processes)
//!
//! Offsets in bytes; all builds without pointer compression or sandbox.
//!
//! | V8 (node) | header | size | heap | area start, end | owner | reservation (allocator, address, size) |
//! |---|---|---|---|---|---|---|
//! | 11.3 (20) | in chunk | 0 | 16 | 24, 32 | 64 | 72, 80, 88 |
//! | 12.4 (22) | in chunk, the chunk's address at 8 | 16 | 24 | 32, 40 | 72 | 80, 88, 96 |
//! | 13.6, 14.1, 14.6 (24, 25, 26) | flags at 0, metadata pointer at 8; metadata: | 48 | 64 | 72, 56 | 80 | 0, 8, 16 |
//!
//! - Area start: chunk + 0x1148 (11.3), + 0x1140 (12.4), + 0x10 (13.6 on);
//!   code pages + 0x3030 (11.3), + 0x3020 (12.4), + 0x20 (13.6 on).
//! - A space: vtable at 0, its `Heap*` at 8, its id (u32) at 16. The ids are
//!   the order `v8.getHeapSpaceStatistics()` lists the spaces in (checked:
//!   new 1, old 2, code 3, trusted 5, large objects 6 in 11.3, 7 in 12.4, 8
//!   from 13.6).
//! - `BoundedPageAllocator`: page size, commit size, parent allocator,
//!   region start, region size at 48, 56, 64, 72, 80 (11.3, 12.4) and 16,
//!   24, 32, 40, 48 (13.6 on). Code range: 512 MiB (25: 512 MiB - 256 KiB).
//!   In 11.3 and 12.4 a code page is mapped as a read-write header, a
//!   guard page, read-write-execute code and a trailing guard page; from
//!   13.6 the code range is one read-write-execute mapping, mostly not
//!   resident.
//! - Read-only space: 53,248 bytes (20), 110,592 (22), 122,880 (24),
//!   126,976 (25), seven pages of 1,658,880 bytes in all (26); heap and
//!   owner 0, no reservation.
//! - With a 20 MB heap on each version, the pages found per space summed
//!   exactly to each `space_size` of `v8.getHeapSpaceStatistics()` (new
//!   space's two semispaces included); the read-only pages are the only
//!   extra, as that space reports 0 there.

use std::collections::HashMap;

use crate::target::{Mapping, MemoryExt, ProcessTarget};

/// V8's page alignment and regular page size.
pub const PAGE_SIZE: u64 = 256 << 10;

/// What a V8 chunk (or range) is, as npmap labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V8Kind {
    /// A regular page of a data space (new, old, trusted, shared).
    Heap,
    /// A large object page of a data space.
    Large,
    /// A page of the code space or code large object space.
    Code,
    /// A page of the read-only space.
    ReadOnly,
    /// The code range's address space that no page holds.
    Reserved,
}

/// One range V8 owns, with the space it belongs to (`None` for a
/// reservation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V8Range {
    pub start: u64,
    pub end: u64,
    pub kind: V8Kind,
    /// The space's name as `v8.getHeapSpaceStatistics()` gives it.
    pub space: Option<&'static str>,
}

/// What a look for V8's pages found.
#[derive(Debug, Clone, Default)]
pub struct V8Scan {
    /// The ranges, sorted by address, not overlapping.
    pub ranges: Vec<V8Range>,
    /// The layout recognised (e.g. `V8 13.6-14.6`).
    pub layout: Option<&'static str>,
    /// Set when the target looks like node but no layout was recognised.
    pub unrecognised: Option<String>,
}

/// A version's chunk layout (see the module documentation).
struct Layout {
    name: &'static str,
    /// Offset of the metadata pointer in the chunk, when the metadata is
    /// kept elsewhere; else the fields below are in the chunk.
    metadata_at: Option<u64>,
    /// Offset in the chunk of a word that must equal the chunk's address.
    self_at: Option<u64>,
    size: usize,
    heap: usize,
    area_start: usize,
    area_end: usize,
    owner: usize,
    reservation: [usize; 3],
    /// The bounded page allocator's page size, commit size, parent, start
    /// and size.
    bounded: [u64; 5],
    /// Each space id's name, as an index into [`SPACE_NAMES`].
    spaces: &'static [u8],
}

/// V8's spaces, in the order `v8.getHeapSpaceStatistics()` lists them
/// from V8 13.6 on; a version's space ids index [`Layout::spaces`], which
/// picks from these.
const SPACE_NAMES: &[&str] = &[
    "read_only_space",
    "new_space",
    "old_space",
    "code_space",
    "shared_space",
    "trusted_space",
    "shared_trusted_space",
    "new_large_object_space",
    "large_object_space",
    "code_large_object_space",
    "shared_large_object_space",
    "shared_trusted_large_object_space",
    "trusted_large_object_space",
];
/// V8 11.3: no trusted spaces.
const SPACES_11: &[u8] = &[0, 1, 2, 3, 4, 7, 8, 9, 10];
/// V8 12.4: trusted, not shared trusted.
const SPACES_12: &[u8] = &[0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12];
const SPACES_13: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// The layouts measured (see the module documentation): name, metadata
/// pointer, self pointer, then size, heap, area start, area end and owner,
/// the reservation's allocator, address and size, the bounded allocator's
/// fields, and the spaces.
#[rustfmt::skip]
const LAYOUTS: &[Layout] = &[
    layout("V8 11.3", None, None, [0, 16, 24, 32, 64], [72, 80, 88], [48, 56, 64, 72, 80], SPACES_11),
    layout("V8 12.4", None, Some(8), [16, 24, 32, 40, 72], [80, 88, 96], [48, 56, 64, 72, 80], SPACES_12),
    layout("V8 13.6-14.6", Some(8), None, [48, 64, 72, 56, 80], [0, 8, 16], [16, 24, 32, 40, 48], SPACES_13),
];

const fn layout(
    name: &'static str,
    metadata_at: Option<u64>,
    self_at: Option<u64>,
    [size, heap, area_start, area_end, owner]: [usize; 5],
    reservation: [usize; 3],
    bounded: [u64; 5],
    spaces: &'static [u8],
) -> Layout {
    Layout {
        name,
        metadata_at,
        self_at,
        size,
        heap,
        area_start,
        area_end,
        owner,
        reservation,
        bounded,
        spaces,
    }
}

/// Words read of a chunk's header or metadata: enough for every layout.
const FIELDS: usize = 13;

/// A chunk's fields, read with a layout.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    start: u64,
    size: u64,
    heap: u64,
    area_start: u64,
    area_end: u64,
    owner: u64,
    allocator: u64,
    reserved_at: u64,
    reserved_size: u64,
}

impl Chunk {
    /// The area checks every page passes, read-only ones too.
    fn area_fits(&self) -> bool {
        self.size > 0
            && self.size.is_multiple_of(4096)
            && self.area_start > self.start
            && self.area_start < self.start + (64 << 10)
            && self.area_end > self.area_start
            && self.area_end <= self.start.saturating_add(self.size)
    }
    fn is_read_only(&self) -> bool {
        self.heap == 0 && self.owner == 0 && self.reserved_size == 0
    }
    fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

fn words<const N: usize>(b: &[u8]) -> [u64; N] {
    let mut w = [0u64; N];
    for (i, c) in b.chunks_exact(8).take(N).enumerate() {
        w[i] = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    w
}

/// The chunks at `positions` read with `layout` (in one batch of reads, and
/// a second one for metadata kept elsewhere); `None` where unreadable or
/// the area checks fail.
fn read_chunks(
    target: &dyn ProcessTarget,
    layout: &Layout,
    positions: &[u64],
) -> Vec<Option<Chunk>> {
    // Metadata kept elsewhere is read no further than its last field.
    let len = match layout.metadata_at {
        Some(_) => layout.owner + 8,
        None => FIELDS * 8,
    };
    let mut fields = vec![0u8; positions.len() * len];
    let whole: Vec<bool> = match layout.metadata_at {
        Some(off) => {
            let mut headers = vec![0u8; positions.len() * 16];
            let read = target.read_each(positions, 16, &mut headers);
            let metadata: Vec<u64> = headers
                .chunks_exact(16)
                .zip(&read)
                .map(|(h, &ok)| {
                    let md = words::<2>(h)[(off / 8) as usize];
                    if ok && md != 0 && md.is_multiple_of(8) {
                        md
                    } else {
                        0
                    }
                })
                .collect();
            // Null addresses fail to read, as they should. (The metadata
            // are 5 KiB apart, one to a page of the C heap: nothing to join.)
            target.read_each(&metadata, len, &mut fields)
        }
        None => target.read_each(positions, len, &mut fields),
    };
    positions
        .iter()
        .zip(fields.chunks_exact(len))
        .zip(whole)
        .map(|((&at, b), ok)| {
            let w = words::<FIELDS>(b);
            if !ok
                || layout
                    .self_at
                    .is_some_and(|off| w[(off / 8) as usize] != at)
            {
                return None;
            }
            let f = |off: usize| w[off / 8];
            let chunk = Chunk {
                start: at,
                size: f(layout.size),
                heap: f(layout.heap),
                area_start: f(layout.area_start),
                area_end: f(layout.area_end),
                owner: f(layout.owner),
                allocator: f(layout.reservation[0]),
                reserved_at: f(layout.reservation[1]),
                reserved_size: f(layout.reservation[2]),
            };
            chunk.area_fits().then_some(chunk)
        })
        .collect()
}

/// The space a chunk's owner is, checked against the chunk's heap (the
/// owners read are kept: a space has many pages).
fn space_of(
    target: &dyn ProcessTarget,
    layout: &Layout,
    chunk: &Chunk,
    owners: &mut HashMap<u64, Option<(u64, usize)>>,
) -> Option<usize> {
    if chunk.heap == 0 || chunk.reserved_at != chunk.start || chunk.reserved_size != chunk.size {
        return None;
    }
    let owner = chunk.owner;
    let (heap, id) = (*owners.entry(owner).or_insert_with(|| {
        let mut b = [0u8; 24];
        target.read_exact_at(owner, &mut b).ok()?;
        let w = words::<3>(&b);
        let id = (w[2] & 0xffff_ffff) as usize;
        (id > 0 && id < layout.spaces.len()).then_some((w[1], id))
    }))?;
    (heap == chunk.heap).then_some(id)
}

/// Candidate positions: 256 KiB-aligned addresses in the mappings (private
/// anonymous ones, from the caller) that can be read. In a mapping with many
/// positions (the code range: 2,000 in 512 MiB), those never touched are
/// left out when the target can tell (a live process's pagemap): a page's
/// header is written when it is made.
fn candidates(target: &dyn ProcessTarget, maps: &[&Mapping]) -> Vec<(u64, usize)> {
    const MANY: u64 = 8;
    let mut out = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        if !m.perms.read {
            continue;
        }
        let first = m.start.next_multiple_of(PAGE_SIZE);
        let count = m.end.saturating_sub(16).saturating_sub(first) / PAGE_SIZE
            + u64::from(first.saturating_add(16) <= m.end);
        let populated = (count >= MANY)
            .then(|| target.populated_pages(m.start, m.end))
            .flatten();
        let mut at = first;
        while at.saturating_add(16) <= m.end {
            let page = ((at - m.start) / 4096) as usize;
            if populated
                .as_ref()
                .is_none_or(|p| p.get(page).copied().unwrap_or(true))
            {
                out.push((at, i));
            }
            at += PAGE_SIZE;
        }
    }
    out
}

/// Does the target look like node (so that finding nothing is worth
/// saying)? A mapped file named `node` or `libnode.so*`.
pub fn looks_like_node(maps: &[&Mapping]) -> bool {
    maps.iter().any(|m| {
        m.path()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "node" || n.starts_with("libnode.so"))
    })
}

/// The pages one layout finds.
struct Found {
    pages: Vec<(Chunk, V8Kind, Option<&'static str>)>,
    ordinary: usize,
}

fn kind_of(space: &str) -> V8Kind {
    if space.starts_with("code") {
        V8Kind::Code
    } else if space.contains("large") {
        V8Kind::Large
    } else {
        V8Kind::Heap
    }
}

fn scan_with(
    target: &dyn ProcessTarget,
    layout: &Layout,
    maps: &[&Mapping],
    positions: &[(u64, usize)],
) -> Found {
    let mut owners = HashMap::new();
    let mut found = Found {
        pages: Vec::new(),
        ordinary: 0,
    };
    let mut skip_to = 0u64;
    let addrs: Vec<u64> = positions.iter().map(|p| p.0).collect();
    let chunks = read_chunks(target, layout, &addrs);
    // Where the address range that each mapping starts stops being mapped:
    // a page's size must end inside it (a code page spans a guard area of
    // other permissions, so not inside its first mapping alone).
    let mut mapped_to: Vec<u64> = maps.iter().map(|m| m.end).collect();
    for j in (0..maps.len().saturating_sub(1)).rev() {
        if maps[j + 1].start == maps[j].end {
            mapped_to[j] = mapped_to[j + 1];
        }
    }
    for (&(at, i), chunk) in positions.iter().zip(chunks) {
        // Inside a large object page found before: its objects' bytes.
        if at < skip_to {
            continue;
        }
        let Some(chunk) = chunk else {
            continue;
        };
        if chunk
            .start
            .checked_add(chunk.size)
            .is_none_or(|end| end > mapped_to[i])
        {
            continue;
        }
        if chunk.is_read_only() {
            if !maps[i].perms.write {
                found
                    .pages
                    .push((chunk, V8Kind::ReadOnly, Some("read_only_space")));
                skip_to = chunk.end();
            }
            continue;
        }
        let Some(id) = space_of(target, layout, &chunk, &mut owners) else {
            continue;
        };
        let space = SPACE_NAMES[usize::from(layout.spaces[id])];
        found.pages.push((chunk, kind_of(space), Some(space)));
        found.ordinary += 1;
        skip_to = chunk.end();
    }
    found
}

/// The layout of the target's pages, tried on a sample: the mappings that
/// are exactly one regular page (how V8 maps most of its pages), else the
/// first positions.
fn layout_of(
    target: &dyn ProcessTarget,
    maps: &[&Mapping],
    positions: &[(u64, usize)],
) -> Option<&'static Layout> {
    const SAMPLE: usize = 48;
    let mut sample: Vec<(u64, usize)> = positions
        .iter()
        .filter(|(at, i)| {
            maps[*i].start == *at && maps[*i].len() == PAGE_SIZE && maps[*i].perms.write
        })
        .take(SAMPLE)
        .copied()
        .collect();
    if sample.is_empty() {
        sample = positions.iter().take(4 * SAMPLE).copied().collect();
    }
    LAYOUTS
        .iter()
        .find(|layout| scan_with(target, layout, maps, &sample).ordinary > 0)
}

/// The code range's region, from a code page's bounded allocator.
fn code_range(
    target: &dyn ProcessTarget,
    layout: &Layout,
    code: &Chunk,
    parent: u64,
) -> Option<(u64, u64)> {
    let mut b = [0u8; 88];
    let len = (layout.bounded[4] + 8) as usize;
    target.read_exact_at(code.allocator, &mut b[..len]).ok()?;
    let w = words::<11>(&b);
    let f = |off: u64| w[(off / 8) as usize];
    let [page, commit, up, start, size] = layout.bounded.map(f);
    let end = start.checked_add(size)?;
    (page == PAGE_SIZE
        && commit == 4096
        && up == parent
        && start.is_multiple_of(4096)
        && size.is_multiple_of(4096)
        && size <= 4 << 30
        && start <= code.start
        && code.end() <= end)
        .then_some((start, end))
}

/// Find V8's pages in `maps` (the target's private anonymous mappings,
/// sorted); `node`: the target looks like node (see [`looks_like_node`]),
/// so that finding no layout is said.
pub fn find_v8_pages(target: &dyn ProcessTarget, maps: &[&Mapping], node: bool) -> V8Scan {
    let positions = candidates(target, maps);
    if positions.is_empty() {
        return V8Scan::default();
    }
    let Some(layout) = layout_of(target, maps, &positions) else {
        return V8Scan {
            unrecognised: node.then(|| {
                "V8's heap pages were not recognised (a V8 version whose page layout \
                 npmap does not know); they are shown as anon"
                    .to_owned()
            }),
            ..V8Scan::default()
        };
    };
    let found = scan_with(target, layout, maps, &positions);
    let mut ranges: Vec<V8Range> = found
        .pages
        .iter()
        .map(|(c, kind, space)| V8Range {
            start: c.start,
            // Inside its mappings (checked in the scan), so this cannot
            // pass the end of the address space.
            end: c.end().next_multiple_of(4096),
            kind: *kind,
            space: *space,
        })
        .collect();
    // The allocator the data pages came from, the most common one.
    let mut allocators: HashMap<u64, usize> = HashMap::new();
    for (c, kind, _) in &found.pages {
        if *kind == V8Kind::Heap {
            *allocators.entry(c.allocator).or_default() += 1;
        }
    }
    let parent = allocators.iter().max_by_key(|(_, n)| **n).map(|(a, _)| *a);
    let mut regions: Vec<(u64, u64)> = Vec::new();
    if let Some(parent) = parent {
        for (c, kind, _) in &found.pages {
            if *kind == V8Kind::Code
                && c.allocator != parent
                && let Some(r) = code_range(target, layout, c, parent)
                && !regions.contains(&r)
            {
                regions.push(r);
            }
        }
    }
    ranges.sort_by_key(|r| r.start);
    for (start, end) in regions {
        let mut gaps = Vec::new();
        let mut at = start;
        for r in ranges.iter().filter(|r| r.end > start && r.start < end) {
            if r.start > at {
                gaps.push((at, r.start));
            }
            at = at.max(r.end);
        }
        if at < end {
            gaps.push((at, end));
        }
        ranges.extend(gaps.into_iter().map(|(start, end)| V8Range {
            start,
            end,
            kind: V8Kind::Reserved,
            space: None,
        }));
    }
    ranges.sort_by_key(|r| r.start);
    V8Scan {
        ranges,
        layout: Some(layout.name),
        unrecognised: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use crate::parse::auxv::AuxEntry;
    use crate::target::{MapName, Memory, Perms, Psinfo, Source, StringList, Thread};

    /// Memory in blocks, and mappings: just what the search reads.
    struct Blocks {
        blocks: Vec<(u64, Vec<u8>)>,
        maps: Vec<Mapping>,
        source: Source,
        psinfo: Psinfo,
    }

    impl Blocks {
        fn new() -> Self {
            Blocks {
                blocks: Vec::new(),
                maps: Vec::new(),
                source: Source::Live { pid: 1 },
                psinfo: Psinfo::default(),
            }
        }
        fn words(&mut self, at: u64, w: &[u64]) {
            self.blocks
                .push((at, w.iter().flat_map(|x| x.to_le_bytes()).collect()));
        }
        fn map(&mut self, start: u64, len: u64, rwx: &str) {
            let b = rwx.as_bytes();
            let perms = Perms {
                read: b[0] == b'r',
                write: b[1] == b'w',
                exec: b[2] == b'x',
                shared: false,
            };
            self.maps
                .push(Mapping::new(start, start + len, perms, MapName::Anon));
        }
    }

    impl Memory for Blocks {
        fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
            let (start, bytes) = self
                .blocks
                .iter()
                .find(|(s, b)| (*s..*s + b.len() as u64).contains(&addr))
                .ok_or(Error::MemoryUnavailable { addr, reason: "" })?;
            let from = &bytes[(addr - start) as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            Ok(n)
        }
    }

    impl ProcessTarget for Blocks {
        fn source(&self) -> &Source {
            &self.source
        }
        fn psinfo(&self) -> &Psinfo {
            &self.psinfo
        }
        fn argv(&self) -> Result<StringList> {
            Ok(StringList::default())
        }
        fn initial_environ(&self) -> Result<StringList> {
            Ok(StringList::default())
        }
        fn auxv(&self) -> Result<Vec<AuxEntry>> {
            Ok(Vec::new())
        }
        fn mappings(&self) -> Result<Vec<Mapping>> {
            Ok(self.maps.clone())
        }
        fn threads(&self) -> Result<Vec<Thread>> {
            Ok(Vec::new())
        }
    }

    const HEAP: u64 = 0x2000_0000;
    const ALLOC: u64 = 0x6bb_fd90;

    /// A V8 13.6 chunk at `at` of `size`, its metadata at `md`, owned by
    /// `owner`, reserved by `alloc`, with the area starting at `area`.
    fn chunk13(t: &mut Blocks, at: u64, size: u64, md: u64, owner: u64, alloc: u64, area: u64) {
        t.words(at, &[0x104, md]);
        let mut m = [0u64; 11];
        m[0] = alloc;
        m[1] = at;
        m[2] = size;
        m[6] = size;
        m[7] = at + size;
        m[8] = HEAP;
        m[9] = at + area;
        m[10] = owner;
        t.words(md, &m);
    }

    fn owner(t: &mut Blocks, at: u64, heap: u64, id: u64) {
        t.words(at, &[0x3d7_3448, heap, id]);
    }

    fn found(t: &Blocks) -> V8Scan {
        let maps: Vec<&Mapping> = t.maps.iter().collect();
        find_v8_pages(t, &maps, true)
    }

    #[test]
    fn pages_of_v8_13_and_its_code_range() {
        let mut t = Blocks::new();
        owner(&mut t, 0x3000_0000, HEAP, 2); // old space
        owner(&mut t, 0x3000_1000, HEAP, 3); // code space
        owner(&mut t, 0x3000_2000, 0x1234_0000, 2); // another heap's
        // An old-space page; a large object page; a page whose owner is of
        // another heap; bytes that are no header.
        t.map(0x7000_0000, PAGE_SIZE, "rw-");
        chunk13(
            &mut t,
            0x7000_0000,
            PAGE_SIZE,
            0x3100_0000,
            0x3000_0000,
            ALLOC,
            0x10,
        );
        t.map(0x7100_0000, 16 * PAGE_SIZE + 0x3000, "rw-");
        chunk13(
            &mut t,
            0x7100_0000,
            16 * PAGE_SIZE + 0x3000,
            0x3100_1000,
            0x3000_0000,
            ALLOC,
            0x10,
        );
        t.map(0x7200_0000, PAGE_SIZE, "rw-");
        chunk13(
            &mut t,
            0x7200_0000,
            PAGE_SIZE,
            0x3100_2000,
            0x3000_2000,
            ALLOC,
            0x10,
        );
        t.map(0x7300_0000, PAGE_SIZE, "rw-");
        t.words(0x7300_0000, &[0x11; 16]);
        // A code range of 8 pages, its first one a code page.
        let range = 0x7f00_0000_0000;
        t.map(range, 8 * PAGE_SIZE, "rwx");
        chunk13(
            &mut t,
            range,
            PAGE_SIZE,
            0x3100_3000,
            0x3000_1000,
            0x3200_0000,
            0x20,
        );
        t.words(
            0x3200_0000,
            &[0x667_de50, 0, PAGE_SIZE, 4096, ALLOC, range, 8 * PAGE_SIZE],
        );
        let scan = found(&t);
        assert_eq!(scan.layout, Some("V8 13.6-14.6"));
        let got: Vec<(u64, u64, V8Kind, Option<&str>)> = scan
            .ranges
            .iter()
            .map(|r| (r.start, r.end, r.kind, r.space))
            .collect();
        assert_eq!(
            got,
            [
                (0x7000_0000, 0x7004_0000, V8Kind::Heap, Some("old_space")),
                (0x7100_0000, 0x7140_3000, V8Kind::Heap, Some("old_space")),
                (range, range + PAGE_SIZE, V8Kind::Code, Some("code_space")),
                (
                    range + PAGE_SIZE,
                    range + 8 * PAGE_SIZE,
                    V8Kind::Reserved,
                    None
                ),
            ]
        );
    }

    #[test]
    fn nothing_recognised_is_said_for_node_only() {
        let mut t = Blocks::new();
        t.map(0x7000_0000, PAGE_SIZE, "rw-");
        t.words(0x7000_0000, &[0x40000, 4, HEAP, 0x7000_1148, 0x7004_0000]);
        let scan = found(&t);
        assert!(scan.ranges.is_empty());
        assert!(scan.unrecognised.is_some());
        let maps: Vec<&Mapping> = t.maps.iter().collect();
        assert!(find_v8_pages(&t, &maps, false).unrecognised.is_none());
    }
}
