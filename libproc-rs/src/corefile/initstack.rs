//! Recovering argv and the initial environment from the stack the kernel
//! built at exec time.
//!
//! A core has no `/proc/PID/cmdline`, but its main stack still holds what
//! `execve` laid out, from low to high addresses:
//!
//! ```text
//!   argc | argv[0..argc] | NULL | envp[0..envc] | NULL | auxv ... AT_NULL
//!   ... padding, AT_RANDOM bytes, platform string ...
//!   argv strings | env strings | AT_EXECFN string | NULL word (stack top)
//! ```
//!
//! The auxiliary vector is located by searching, just below `AT_RANDOM`, for
//! the exact bytes of the core's `NT_AUXV` note; that match is the
//! cross-check that the stack is the one the kernel built. From there the
//! words below it are searched for argc: a count n followed by n non-NULL
//! pointers and a NULL. The envp[] slots are the words between that NULL and
//! the one before the auxiliary vector.
//!
//! The strings are then read the way the kernel reads them for
//! `/proc/PID/cmdline` and `/proc/PID/environ`: as the contiguous area that
//! ends at `AT_EXECFN`, split at NULs. That keeps the answer equal to what
//! the live process showed even after a program permuted its `argv[]`
//! pointers (GNU getopt does), re-pointed `argv[0]`, or replaced `envp[]`
//! entries in place (glibc's setenv does, before the first variable is
//! added). Only when the area cannot be read, or the program wrote over it
//! (a process title), are the pointers followed one by one.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crate::error::NotRecovered;
use crate::parse::auxv::{self, AuxEntry};
use crate::target::{Memory, MemoryExt};

/// What the initial stack gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    pub argv: Vec<OsString>,
    pub envp: Vec<OsString>,
    /// Address of the auxiliary vector on the stack.
    pub auxv_addr: u64,
    /// Address of argc (the initial stack pointer).
    pub argc_addr: u64,
    /// Where the strings were read.
    pub strings: StringsFrom,
}

/// Where the argv and envp strings of an [`InitialStack`] were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringsFrom {
    /// The intact argument area: what /proc/PID/cmdline would show.
    Area,
    /// The `argv[]` and `envp[]` pointers, one by one, because the area
    /// could not be read.
    Pointers,
    /// The pointers, because the process wrote over its argument area (a
    /// process title, or arguments blanked out).
    PointersAreaRewritten,
}

/// Why the argument area could not be used as it is.
enum AreaProblem {
    /// Not readable, or no `AT_EXECFN` to find its end.
    Unreadable,
    /// The process wrote over it.
    Rewritten,
}

/// Upper bounds that keep a corrupted stack from making us loop or allocate
/// without end. The kernel's own limit for one string is 32 pages, and for
/// all of them a quarter of the stack limit.
const MAX_POINTERS: usize = 1 << 20;
const MAX_STRING: usize = 32 * 4096;
const MAX_AREA: u64 = 64 << 20;
const PAGE: u64 = 4096;

/// Find the auxiliary vector below `anchor`, searching at most `window`
/// bytes down, page by page, and stopping at memory that is not there. Each
/// step searches one new page plus the image's length of the page above it,
/// so the cost is linear in the window.
fn find_auxv(mem: &dyn Memory, image: &[u8], anchor: u64, window: u64) -> Option<u64> {
    let top = anchor.checked_add(PAGE - 1)? & !(PAGE - 1);
    let floor = top.saturating_sub(window);
    let mut above: Vec<u8> = Vec::new();
    let mut base = top;
    while base > floor && base >= PAGE {
        let page_start = base - PAGE;
        let mut buf = vec![0u8; PAGE as usize];
        match mem.read_memory(page_start, &mut buf) {
            Ok(n) if n == buf.len() => {}
            _ => break,
        }
        let tail = image.len().saturating_sub(1).min(above.len());
        buf.extend_from_slice(&above[..tail]);
        if let Some(pos) = rfind_aligned(&buf, image) {
            return Some(page_start + pos as u64);
        }
        buf.truncate(PAGE as usize);
        above = buf;
        base = page_start;
    }
    None
}

/// The highest 8-byte-aligned position of `needle` in `hay`.
fn rfind_aligned(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let last = (hay.len() - needle.len()) & !7;
    (0..=last)
        .rev()
        .step_by(8)
        .find(|&i| &hay[i..i + needle.len()] == needle)
}

fn split_area(area: &[u8]) -> Vec<OsString> {
    let body = area.strip_suffix(&[0]).unwrap_or(area);
    body.split(|&b| b == 0)
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect()
}

/// Recover argv and envp. The error says why it could not be done.
pub fn recover(mem: &dyn Memory, auxv: &[AuxEntry]) -> Result<InitialStack, NotRecovered> {
    if auxv.is_empty() {
        return Err(NotRecovered::NoAuxv);
    }
    let image = auxv::encode_auxv(auxv);
    let anchors = [
        (auxv::AT_RANDOM, 64 * 1024),
        (auxv::AT_EXECFN, MAX_AREA + 64 * 1024),
    ];
    let auxv_addr = anchors
        .iter()
        .filter_map(|&(key, window)| Some((auxv::lookup(auxv, key)?, window)))
        .find_map(|(anchor, window)| find_auxv(mem, &image, anchor, window))
        .ok_or(NotRecovered::NoAuxvCopy)?;

    let word = |addr: u64| -> Result<u64, NotRecovered> {
        mem.read_u64(addr)
            .map_err(|_| NotRecovered::Unreadable(addr))
    };
    let envp_end = auxv_addr.checked_sub(8).ok_or(NotRecovered::AuxvAtZero)?;
    if word(envp_end)? != 0 {
        return Err(NotRecovered::NoNullBeforeAuxv);
    }
    // Walk down to argc. envp[] cannot be walked by its NULL: a program may
    // have edited the array in place (glibc's unsetenv shifts entries down
    // while environ still points at the stack), leaving NULLs inside it. argc
    // is the first word from the top that is a count n >= 1 (the kernel has
    // forced argc >= 1 since 5.18) followed by n non-NULL pointers and a
    // NULL: envp[] holds only pointers and NULLs, neither of which is a
    // small count.
    let mut at = envp_end;
    let (argc_addr, argc) = loop {
        at = at.checked_sub(8).ok_or(NotRecovered::NoRoomForArgc)?;
        let w = word(at)?;
        // Words between `at` and envp's NULL: argv[], its NULL, envp[].
        let above = (envp_end - at) / 8 - 1;
        if w >= 1 && w < above && w <= MAX_POINTERS as u64 {
            let null_at = at + 8 * (w + 1);
            // A program may point argv[] entries elsewhere (argv[0] at its
            // basename, say), but none is NULL.
            let looks_right =
                word(null_at)? == 0 && (1..=w).all(|i| word(at + 8 * i).is_ok_and(|p| p != 0));
            if looks_right {
                break (at, w as usize);
            }
        }
        if above > 2 * MAX_POINTERS as u64 {
            return Err(NotRecovered::ArgcNotFound);
        }
    };
    let argv_ptrs: Vec<u64> = (1..=argc as u64)
        .map(|i| word(argc_addr + 8 * i))
        .collect::<Result<_, _>>()?;
    let envp_start = argc_addr + 8 * (argc as u64 + 2);
    // The envp[] slots as they are now (NULLs left by unsetenv dropped);
    // their number is the number of variables exec gave.
    let envp_slots = ((envp_end - envp_start) / 8) as usize;
    let envp_ptrs: Vec<u64> = (0..envp_slots as u64)
        .map(|i| word(envp_start + 8 * i))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|&p| p != 0)
        .collect();

    let (Vectors { argv, envp }, strings) =
        match read_area(mem, auxv, auxv_addr, &argv_ptrs, envp_slots) {
            Ok(v) => (v, StringsFrom::Area),
            Err(problem) => (
                read_each(mem, &argv_ptrs, &envp_ptrs).ok_or(NotRecovered::StringsNotInCore)?,
                match problem {
                    AreaProblem::Unreadable => StringsFrom::Pointers,
                    AreaProblem::Rewritten => StringsFrom::PointersAreaRewritten,
                },
            ),
        };
    Ok(InitialStack {
        argv,
        envp,
        auxv_addr,
        argc_addr,
        strings,
    })
}

/// The argument and environment strings, as read from the stack.
struct Vectors {
    argv: Vec<OsString>,
    envp: Vec<OsString>,
}

/// Read the contiguous string area and split it, if it is intact.
///
/// The area ends at `AT_EXECFN` and holds exactly argc + envc strings. Its
/// start is found by counting that many NULs back from the end (the byte
/// before it is zero: the gap or platform string the kernel put below), so
/// a program that re-pointed `argv[0]` (at its basename, or at another
/// string) does not move it. When the original `argv[0]` pointer still lies
/// on the stack but not in the first string found, the program wrote over
/// the area (a process title), and the pointers are followed instead.
fn read_area(
    mem: &dyn Memory,
    auxv: &[AuxEntry],
    auxv_addr: u64,
    argv_ptrs: &[u64],
    envc: usize,
) -> Result<Vectors, AreaProblem> {
    use AreaProblem::{Rewritten, Unreadable};
    let end = auxv::lookup(auxv, auxv::AT_EXECFN).ok_or(Unreadable)?;
    let wanted = argv_ptrs.len() + envc;
    // Count NULs backwards from the end, a page at a time, until `wanted`
    // strings are behind us; then read the area once.
    let mut start = end;
    let mut nuls = 0usize;
    let area_start = 'scan: loop {
        if end - start > MAX_AREA || start <= auxv_addr {
            return Err(Unreadable);
        }
        let chunk_start = ((start - 1) & !(PAGE - 1)).max(auxv_addr);
        let mut chunk = vec![0u8; (start - chunk_start) as usize];
        mem.read_exact_at(chunk_start, &mut chunk)
            .map_err(|_| Unreadable)?;
        for (i, &b) in chunk.iter().enumerate().rev() {
            if b == 0 {
                if nuls == wanted {
                    break 'scan chunk_start + i as u64 + 1;
                }
                nuls += 1;
            }
        }
        start = chunk_start;
    };
    let mut area = vec![0u8; (end - area_start) as usize];
    mem.read_exact_at(area_start, &mut area)
        .map_err(|_| Unreadable)?;
    let mut strings = split_area(&area);
    if area.last() != Some(&0) || strings.len() != wanted {
        return Err(Unreadable);
    }
    // The original argv[0] lies at the start of the area. A program may
    // have moved the pointer into that first string (its basename) or out
    // of the stack altogether; anywhere else on the stack means the strings
    // no longer are the ones exec laid out: a title was written over them
    // (more NULs than before, or fewer), or arguments were blanked.
    if let Some(&p0) = argv_ptrs.first() {
        let first_len = strings.first().map_or(0, |s| s.len() as u64);
        let in_first = p0 >= area_start && p0 < area_start + first_len.max(1);
        let on_stack = p0 > auxv_addr && p0 < end;
        if on_stack && !in_first {
            return Err(Rewritten);
        }
    }
    let envp = strings.split_off(argv_ptrs.len());
    Ok(Vectors {
        argv: strings,
        envp,
    })
}

/// Follow each pointer, within a total budget of [`MAX_AREA`] bytes.
fn read_each(mem: &dyn Memory, argv_ptrs: &[u64], envp_ptrs: &[u64]) -> Option<Vectors> {
    let mut budget = MAX_AREA as usize;
    let mut read = |ptrs: &[u64]| -> Option<Vec<OsString>> {
        ptrs.iter()
            .map(|&p| {
                let s = mem.read_cstring(p, MAX_STRING.min(budget)).ok()?;
                budget = budget.checked_sub(s.len() + 1)?;
                Some(s)
            })
            .collect()
    };
    let argv = read(argv_ptrs)?;
    let envp = read(envp_ptrs)?;
    Some(Vectors { argv, envp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};

    /// Memory made of one block at `base`.
    struct Block {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Memory for Block {
        fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
            let off =
                addr.checked_sub(self.base)
                    .filter(|&o| o < self.bytes.len() as u64)
                    .ok_or(Error::MemoryUnavailable { addr, reason: "" })? as usize;
            let n = buf.len().min(self.bytes.len() - off);
            buf[..n].copy_from_slice(&self.bytes[off..off + n]);
            Ok(n)
        }
    }

    /// Lay out a stack the way the kernel does and return it with its auxv.
    fn build(argv: &[&[u8]], envp: &[&[u8]]) -> (Block, Vec<AuxEntry>) {
        let base = 0x7ffd_0000_0000u64;
        let size = 4 * PAGE as usize;
        let mut bytes = vec![0u8; size];
        let top = base + size as u64 - 8; // final NULL word
        // Strings: argv then envp then execfn, ending at `top`.
        let execfn = b"/bin/prog\0";
        let mut strings = Vec::new();
        let mut argv_at = Vec::new();
        let mut envp_at = Vec::new();
        let total: usize =
            argv.iter().chain(envp).map(|s| s.len() + 1).sum::<usize>() + execfn.len();
        let strings_start = top - total as u64;
        for s in argv {
            argv_at.push(strings_start + strings.len() as u64);
            strings.extend_from_slice(s);
            strings.push(0);
        }
        for s in envp {
            envp_at.push(strings_start + strings.len() as u64);
            strings.extend_from_slice(s);
            strings.push(0);
        }
        let execfn_at = strings_start + strings.len() as u64;
        strings.extend_from_slice(execfn);
        let off = (strings_start - base) as usize;
        bytes[off..off + strings.len()].copy_from_slice(&strings);
        // Random bytes and some padding below the strings.
        let random_at = (strings_start - 16 - 40) & !15;
        let auxv = vec![
            AuxEntry {
                key: auxv::AT_PAGESZ,
                value: 4096,
            },
            AuxEntry {
                key: auxv::AT_RANDOM,
                value: random_at,
            },
            AuxEntry {
                key: auxv::AT_EXECFN,
                value: execfn_at,
            },
        ];
        let image = auxv::encode_auxv(&auxv);
        let auxv_at = (random_at - image.len() as u64 - 24) & !15;
        let mut words = vec![argv.len() as u64];
        words.extend(&argv_at);
        words.push(0);
        words.extend(&envp_at);
        words.push(0);
        let sp = auxv_at - words.len() as u64 * 8;
        for (i, w) in words.iter().enumerate() {
            let o = (sp - base) as usize + i * 8;
            bytes[o..o + 8].copy_from_slice(&w.to_le_bytes());
        }
        let o = (auxv_at - base) as usize;
        bytes[o..o + image.len()].copy_from_slice(&image);
        (Block { base, bytes }, auxv)
    }

    #[test]
    fn recovers_argv_and_envp() {
        let (mem, auxv) = build(
            &[b"prog", b"a b", b"", b"\xff\ttab"],
            &[b"HOME=/root", b"X="],
        );
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.argv.len(), 4);
        assert_eq!(s.argv[1], "a b");
        assert_eq!(s.argv[2], "");
        assert_eq!(s.argv[3], OsString::from_vec(b"\xff\ttab".to_vec()));
        assert_eq!(
            s.envp,
            vec![OsString::from("HOME=/root"), OsString::from("X=")]
        );
        assert_eq!(mem.read_u64(s.argc_addr).unwrap(), 4);
    }

    #[test]
    fn empty_environment_and_single_arg() {
        let (mem, auxv) = build(&[b"prog"], &[]);
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.argv, vec![OsString::from("prog")]);
        assert!(s.envp.is_empty());
    }

    #[test]
    fn permuted_pointers_do_not_reorder_argv() {
        let (mut mem, auxv) = build(&[b"prog", b"-x", b"file"], &[b"A=1"]);
        let s = recover(&mem, &auxv).unwrap();
        // Swap argv[1] and argv[2] pointers as getopt would.
        let p1 = (s.argc_addr + 16 - mem.base) as usize;
        let p2 = p1 + 8;
        let (a, b) = (
            mem.bytes[p1..p1 + 8].to_vec(),
            mem.bytes[p2..p2 + 8].to_vec(),
        );
        mem.bytes[p1..p1 + 8].copy_from_slice(&b);
        mem.bytes[p2..p2 + 8].copy_from_slice(&a);
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(
            s.argv,
            vec![OsString::from("prog"), "-x".into(), "file".into()]
        );
    }

    #[test]
    fn missing_stack_is_an_error_not_garbage() {
        let (mem, auxv) = build(&[b"prog"], &[b"A=1"]);
        let empty = Block {
            base: mem.base,
            bytes: Vec::new(),
        };
        assert!(recover(&empty, &auxv).is_err());
        // An auxv that does not match what is on the stack.
        let mut other = auxv.clone();
        other[0].value = 8192;
        assert!(recover(&mem, &other).is_err());
        assert!(recover(&mem, &[]).is_err());
    }

    #[test]
    fn overwritten_area_falls_back_to_pointers() {
        let (mut mem, auxv) = build(&[b"prog", b"arg"], &[b"A=1"]);
        let s = recover(&mem, &auxv).unwrap();
        // Like setproctitle: put a NUL in the middle of argv[1].
        let argv1 = mem.read_u64(s.argc_addr + 16).unwrap();
        let o = (argv1 - mem.base) as usize + 1;
        mem.bytes[o] = 0;
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.argv, vec![OsString::from("prog"), "a".into()]);
        assert_eq!(s.envp, vec![OsString::from("A=1")]);
    }

    #[test]
    fn envp_edited_in_place_by_unsetenv() {
        let (mut mem, auxv) = build(&[b"prog", b"x"], &[b"A=1", b"B=2", b"C=3"]);
        let s = recover(&mem, &auxv).unwrap();
        // unsetenv("B") while environ is the stack array: C moves down, and
        // the old last slot becomes NULL.
        let envp0 = s.argc_addr + 8 * 4;
        let o = (envp0 - mem.base) as usize;
        let c = mem.bytes[o + 16..o + 24].to_vec();
        mem.bytes[o + 8..o + 16].copy_from_slice(&c);
        mem.bytes[o + 16..o + 24].copy_from_slice(&0u64.to_le_bytes());
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.argv, vec![OsString::from("prog"), "x".into()]);
        assert_eq!(
            s.envp,
            vec![OsString::from("A=1"), "B=2".into(), "C=3".into()],
            "the initial environment is what exec gave"
        );
    }

    #[test]
    fn repointed_argv0_does_not_change_argv() {
        let (mut mem, auxv) = build(&[b"/usr/bin/prog", b"x"], &[b"A=1"]);
        let s = recover(&mem, &auxv).unwrap();
        let slot = (s.argc_addr + 8 - mem.base) as usize;
        let p0 = u64::from_le_bytes(mem.bytes[slot..slot + 8].try_into().unwrap());
        // argv[0] = basename(argv[0]), as many daemons do.
        mem.bytes[slot..slot + 8].copy_from_slice(&(p0 + 9).to_le_bytes());
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.argv, vec![OsString::from("/usr/bin/prog"), "x".into()]);
        // argv[0] = "renamed", a string elsewhere in memory.
        mem.bytes[slot..slot + 8].copy_from_slice(&0x1000u64.to_le_bytes());
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.argv, vec![OsString::from("/usr/bin/prog"), "x".into()]);
        assert_eq!(s.envp, vec![OsString::from("A=1")]);
    }

    #[test]
    fn a_title_written_over_the_area_is_seen_as_such() {
        // Title with NUL padding, the original argv[0] on another page than
        // the end of the area (a large environment in between).
        let big = vec![b'x'; 6000];
        let mut env = b"BIG=".to_vec();
        env.extend_from_slice(&big);
        let (mut mem, auxv) = build(&[b"prog", b"argument"], &[&env]);
        let s = recover(&mem, &auxv).unwrap();
        let p0 = mem.read_u64(s.argc_addr + 8).unwrap();
        let o = (p0 - mem.base) as usize;
        let area_len = b"prog\0argument\0".len();
        mem.bytes[o..o + area_len].fill(0);
        mem.bytes[o..o + 5].copy_from_slice(b"title");
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.strings, StringsFrom::PointersAreaRewritten);
        assert_eq!(s.argv[0], "title");

        // A title with no NULs at all, longer than argv[0].
        let (mut mem, auxv) = build(&[b"prog", b"arg"], &[b"A=1"]);
        let s = recover(&mem, &auxv).unwrap();
        let p0 = mem.read_u64(s.argc_addr + 8).unwrap();
        let o = (p0 - mem.base) as usize;
        mem.bytes[o..o + 8].copy_from_slice(b"title xx");
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.strings, StringsFrom::PointersAreaRewritten, "{s:?}");
        assert_eq!(s.envp, vec![OsString::from("A=1")]);
    }

    #[test]
    fn real_empty_arguments_are_kept() {
        let (mem, auxv) = build(&[b"prog", b"", b""], &[b"A=1"]);
        let s = recover(&mem, &auxv).unwrap();
        assert_eq!(s.strings, StringsFrom::Area);
        assert_eq!(s.argv, vec![OsString::from("prog"), "".into(), "".into()]);
    }
}
