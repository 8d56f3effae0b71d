//! What a core does not name but /proc would: the brk heap and the vvar
//! pages. A kernel or gdb core lists its mappings without the names
//! /proc/PID/maps gives; npmap's labels need these two, so they are
//! inferred here, where the core is read, from what the core holds.

use crate::diag::Sink;
use crate::elf::variables::locate_variable;
use crate::parse::maps::index_holding;
use crate::target::{MapName, Mapping, MemoryExt, ProcessTarget};

/// Name the brk heap and the vvar pages among a core's `maps` (address
/// order), as /proc would have; a warning goes to `sink` when the heap
/// cannot be told apart.
pub(super) fn name_heap_and_vvar(
    core: &dyn ProcessTarget,
    maps: &mut [Mapping],
    sink: &mut dyn Sink,
) {
    match program_break(core, maps) {
        Some(brk) => name_heap(brk, maps),
        None => sink.warn(
            "the brk heap cannot be told apart in this core (the C library's __curbrk was not \
             found or not readable); it is listed as [ anon ]"
                .into(),
        ),
    }
    name_vvar(maps);
}

/// The program break, from the C library's `__curbrk`.
fn program_break(core: &dyn ProcessTarget, maps: &[Mapping]) -> Option<u64> {
    locate_variable(core, maps, &["__curbrk"], true)
        .ok()
        .and_then(|found| core.read_u64(found.address).ok())
}

/// Private anonymous memory, the stuff a heap is made of.
fn is_private_anon(m: &Mapping) -> bool {
    !m.perms.shared && m.name == MapName::Anon
}

/// The heap is the mapping the break falls in or ends; an unused heap (the
/// break where it started) has no mapping.
fn name_heap(brk: u64, maps: &mut [Mapping]) {
    let Some(i) = brk
        .checked_sub(1)
        .and_then(|last| index_holding(maps, last, |m| m))
    else {
        return;
    };
    let m = &mut maps[i];
    if is_private_anon(m) && m.start < brk {
        m.name = MapName::Heap;
    }
}

/// vvar: the read-only anonymous pages just below the vdso.
fn name_vvar(maps: &mut [Mapping]) {
    let Some(vdso) = maps.iter().position(|m| m.name == MapName::Vdso) else {
        return;
    };
    let mut end = maps[vdso].start;
    for m in maps[..vdso].iter_mut().rev() {
        let p = m.perms;
        if m.end != end || m.name != MapName::Anon || p.write || p.exec {
            break;
        }
        // vvar is a few pages; a large mapping here is something else.
        if m.len() > 64 * 1024 {
            break;
        }
        m.name = MapName::Vvar;
        end = m.start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::maps::parse_maps;

    #[test]
    fn vvar_is_below_the_vdso() {
        let mut maps = parse_maps(
            b"1000-100000 r--p 00000000 00:00 0\n\
7f0000000000-7f0000004000 r--p 00000000 00:00 0\n\
7f0000004000-7f0000006000 r--p 00000000 00:00 0\n\
7f0000006000-7f0000008000 r-xp 00000000 00:00 0 [vdso]\n",
        );
        name_vvar(&mut maps);
        let names: Vec<&MapName> = maps.iter().map(|m| &m.name).collect();
        assert_eq!(
            names,
            [
                &MapName::Anon,
                &MapName::Vvar,
                &MapName::Vvar,
                &MapName::Vdso
            ]
        );
    }

    #[test]
    fn heap_holds_the_break() {
        let mut maps = parse_maps(
            b"1000-2000 rw-p 00000000 00:00 0\n\
2000-5000 rw-p 00000000 00:00 0\n\
5000-6000 rw-p 00000000 00:00 0\n",
        );
        name_heap(0x5000, &mut maps);
        let names: Vec<&MapName> = maps.iter().map(|m| &m.name).collect();
        assert_eq!(names, [&MapName::Anon, &MapName::Heap, &MapName::Anon]);
        // A break where the heap started names nothing.
        let mut maps = parse_maps(b"1000-2000 rw-p 00000000 00:00 0\n");
        name_heap(0x1000, &mut maps);
        assert_eq!(maps[0].name, MapName::Anon);
    }
}
