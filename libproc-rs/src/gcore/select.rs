//! Which memory goes into the core: the kernel's choice
//! (`vma_dump_size` in fs/binfmt_elf.c), driven by
//! /proc/PID/coredump_filter, with gdb's file-backed memory on request.

use crate::parse::maps::{MapName, Mapping};
use crate::parse::vmflags::{DumpArea, VmFlags};

/// Bits of /proc/PID/coredump_filter (`MMF_DUMP_*`).
const ANON_PRIVATE: u64 = 1 << 0;
const ANON_SHARED: u64 = 1 << 1;
const MAPPED_PRIVATE: u64 = 1 << 2;
const MAPPED_SHARED: u64 = 1 << 3;
const ELF_HEADERS: u64 = 1 << 4;
const HUGETLB_PRIVATE: u64 = 1 << 5;
const HUGETLB_SHARED: u64 = 1 << 6;

pub(super) const PAGE: u64 = 4096;

/// What of one mapping goes into the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Bytes dumped from the mapping's start (its PT_LOAD's `p_filesz`
    /// before any unreadable page shortens it).
    pub len: u64,
    /// Pages that pagemap shows neither present nor swapped are zeros
    /// (private anonymous memory never written): they may be left as
    /// holes instead of read. Elsewhere such a page is the file's (or a
    /// shared object's) content, and is read.
    pub holes: bool,
}

impl Choice {
    const NOTHING: Choice = Choice {
        len: 0,
        holes: false,
    };
}

/// What the kernel would dump of `area` under `filter`; `all` adds every
/// readable file-backed mapping whole, as gdb's gcore does.
///
/// Where this differs from the kernel: `[vvar]` and `[vsyscall]`, which
/// the kernel writes from the inside, are given no bytes (a debugger
/// cannot read them); a private mapping counts as written to when smaps
/// shows anonymous pages in memory or swap (the kernel asks whether it has
/// an `anon_vma`, which one keeps after its pages are gone); the first
/// page of a file mapping is kept when it starts with the ELF magic
/// (`elf_magic`), whatever the file's mode bits.
pub fn choose(area: &DumpArea, filter: u64, all: bool, elf_magic: bool) -> Choice {
    let m = &area.mapping;
    let flags = area.flags;
    let whole = Choice {
        len: m.len(),
        holes: false,
    };
    match m.name {
        MapName::Vdso => return whole,
        MapName::Vvar | MapName::Vsyscall => return Choice::NOTHING,
        _ => {}
    }
    if flags.has(VmFlags::DONT_DUMP) || flags.has(VmFlags::IO) || flags.has(VmFlags::PFN_MAP) {
        return Choice::NOTHING;
    }
    let shared = m.perms.shared || flags.has(VmFlags::SHARED);
    if flags.has(VmFlags::HUGETLB) {
        let bit = if shared {
            HUGETLB_SHARED
        } else {
            HUGETLB_PRIVATE
        };
        return if filter & bit != 0 {
            whole
        } else {
            Choice::NOTHING
        };
    }
    let file = is_file(m);
    if shared {
        // Shared memory of an unlinked file (a MAP_SHARED|MAP_ANONYMOUS
        // region, a memfd) is anonymous to the kernel.
        let bit = if !file || m.deleted {
            ANON_SHARED
        } else {
            MAPPED_SHARED
        };
        return if filter & bit != 0 || (all && file && m.perms.read) {
            whole
        } else {
            Choice::NOTHING
        };
    }
    if area.has_anon && filter & ANON_PRIVATE != 0 {
        return Choice {
            len: m.len(),
            holes: !file,
        };
    }
    if !file {
        return Choice::NOTHING;
    }
    if filter & MAPPED_PRIVATE != 0 || (all && m.perms.read) {
        return whole;
    }
    if filter & ELF_HEADERS != 0 && m.offset == 0 && m.perms.read && elf_magic {
        return Choice {
            len: PAGE.min(m.len()),
            holes: false,
        };
    }
    Choice::NOTHING
}

/// A mapping of a file (one with an inode), as opposed to anonymous or
/// kernel-named memory.
fn is_file(m: &Mapping) -> bool {
    matches!(m.name, MapName::File(_)) && m.inode != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::maps::parse_line;

    fn area(line: &str, flags: &str, has_anon: bool) -> DumpArea {
        DumpArea {
            mapping: parse_line(line.as_bytes()).expect("a maps line"),
            flags: VmFlags::parse(flags.as_bytes()),
            has_anon,
        }
    }

    #[test]
    fn the_kernels_default_filter() {
        let heap = area("5000-9000 rw-p 00000000 00:00 0 [heap]", "rd wr", true);
        assert_eq!(
            choose(&heap, 0x33, false, false),
            Choice {
                len: 0x4000,
                holes: true
            }
        );
        let untouched = area("5000-9000 rw-p 00000000 00:00 0", "rd wr", false);
        assert_eq!(choose(&untouched, 0x33, false, false).len, 0);
        let text = area(
            "1000-3000 r-xp 00000000 fe:00 12 /usr/bin/x",
            "rd ex",
            false,
        );
        assert_eq!(choose(&text, 0x33, false, true).len, 0x1000);
        assert_eq!(choose(&text, 0x33, false, false).len, 0);
        assert_eq!(choose(&text, 0x33, true, false).len, 0x2000);
        let data = area("3000-5000 rw-p 00002000 fe:00 12 /usr/bin/x", "rd wr", true);
        assert_eq!(
            choose(&data, 0x33, false, false),
            Choice {
                len: 0x2000,
                holes: false
            },
            "a written file mapping is read whole: its absent pages are the file's"
        );
        let shm = area(
            "a000-b000 rw-s 00000000 00:01 7 /dev/zero (deleted)",
            "rd wr sh",
            false,
        );
        assert_eq!(choose(&shm, 0x33, false, false).len, 0x1000);
        assert_eq!(choose(&shm, 0x31, false, false).len, 0);
        let io = area(
            "c000-d000 rw-s 00000000 00:06 9 /dev/mem",
            "rd wr sh io pf",
            false,
        );
        assert_eq!(choose(&io, 0xff, true, false).len, 0);
        let vvar = area(
            "e000-f000 r--p 00000000 00:00 0 [vvar]",
            "rd pf io dd",
            false,
        );
        assert_eq!(choose(&vvar, 0xff, true, false).len, 0);
        let vdso = area("f000-11000 r-xp 00000000 00:00 0 [vdso]", "rd ex", false);
        assert_eq!(choose(&vdso, 0, false, false).len, 0x2000);
        let excluded = area("5000-9000 rw-p 00000000 00:00 0", "rd wr dd", true);
        assert_eq!(choose(&excluded, 0xff, true, false).len, 0);
    }
}
