//! What a core writer needs from `/proc/PID/smaps` beyond the mapping
//! lines: each mapping's `VmFlags` (the kernel's `VM_IO`, `VM_DONTDUMP`,
//! hugetlb, ...), and whether it holds anonymous pages (`Anonymous`,
//! `Swap`), which is how the kernel's core dump tells a private mapping
//! that was written to (it has an `anon_vma`) from one that never was.
//! Bytes in, records out.

use crate::parse::maps::{Mapping, parse_line};

/// The `VmFlags` a core writer looks at, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmFlags(pub u32);

impl VmFlags {
    /// `io`: memory-mapped I/O (`VM_IO`); never dumped.
    pub const IO: u32 = 1 << 0;
    /// `dd`: excluded from core dumps (`VM_DONTDUMP`, `MADV_DONTDUMP`).
    pub const DONT_DUMP: u32 = 1 << 1;
    /// `ht`: hugetlb pages.
    pub const HUGETLB: u32 = 1 << 2;
    /// `sh`: shared (`VM_SHARED`).
    pub const SHARED: u32 = 1 << 3;
    /// `pf`: raw page frames (`VM_PFNMAP`): nothing to read.
    pub const PFN_MAP: u32 = 1 << 4;
    /// `rd`: readable.
    pub const READ: u32 = 1 << 5;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// Parse the two-letter names after `VmFlags:`.
    pub fn parse(rest: &[u8]) -> VmFlags {
        let mut bits = 0;
        for name in rest.split(|&b| b == b' ').filter(|n| !n.is_empty()) {
            bits |= match name {
                b"io" => VmFlags::IO,
                b"dd" => VmFlags::DONT_DUMP,
                b"ht" => VmFlags::HUGETLB,
                b"sh" => VmFlags::SHARED,
                b"pf" => VmFlags::PFN_MAP,
                b"rd" => VmFlags::READ,
                _ => 0,
            };
        }
        VmFlags(bits)
    }
}

/// One mapping as a core writer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpArea {
    pub mapping: Mapping,
    pub flags: VmFlags,
    /// It holds anonymous pages, in memory or in swap: the kernel would
    /// have an `anon_vma` for it.
    pub has_anon: bool,
}

/// A parser of `/proc/PID/smaps` for [`DumpArea`]s, fed one line at a time.
#[derive(Debug, Default)]
pub struct DumpAreaParser {
    out: Vec<DumpArea>,
}

/// A nonzero `Name:   N kB` figure.
fn nonzero_kib(rest: &[u8]) -> bool {
    rest.iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .any(|&d| d != b'0')
}

impl DumpAreaParser {
    /// Take one line, without its newline.
    pub fn line(&mut self, line: &[u8]) {
        match line.first() {
            Some(b'A'..=b'Z') => {
                let Some(area) = self.out.last_mut() else {
                    return;
                };
                if let Some(rest) = line.strip_prefix(b"VmFlags:") {
                    area.flags = VmFlags::parse(rest);
                } else if let Some(rest) = line
                    .strip_prefix(b"Anonymous:")
                    .or_else(|| line.strip_prefix(b"Swap:"))
                {
                    area.has_anon |= nonzero_kib(rest);
                }
            }
            Some(_) => {
                if let Some(mapping) = parse_line(line) {
                    self.out.push(DumpArea {
                        mapping,
                        flags: VmFlags::default(),
                        has_anon: false,
                    });
                }
            }
            None => {}
        }
    }

    pub fn finish(self) -> Vec<DumpArea> {
        self.out
    }
}

/// `/proc/PID/coredump_filter`: a hexadecimal bit mask.
pub fn parse_coredump_filter(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_anonymous_pages_per_mapping() {
        let smaps = b"\
55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]
Rss:                 132 kB
Anonymous:           132 kB
Swap:                  0 kB
VmFlags: rd wr mr mw me ac 
7f5ab4c0b000-7f5ab4c0f000 r--p 00000000 00:00 0                          [vvar]
Anonymous:             0 kB
VmFlags: rd mr pf io de dd 
7f0000000000-7f0000100000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)
Anonymous:             0 kB
Swap:                  8 kB
VmFlags: rd wr sh mr mw me ms 
";
        let mut p = DumpAreaParser::default();
        for l in smaps.split(|&b| b == b'\n') {
            p.line(l);
        }
        let areas = p.finish();
        assert_eq!(areas.len(), 3);
        assert!(areas[0].has_anon);
        assert_eq!(areas[0].flags, VmFlags(VmFlags::READ));
        assert!(!areas[1].has_anon);
        assert!(areas[1].flags.has(VmFlags::IO) && areas[1].flags.has(VmFlags::DONT_DUMP));
        assert!(areas[2].has_anon, "swap counts as anonymous pages");
        assert!(areas[2].flags.has(VmFlags::SHARED));
    }

    #[test]
    fn coredump_filter_is_hex() {
        assert_eq!(parse_coredump_filter(b"00000033\n"), Some(0x33));
        assert_eq!(parse_coredump_filter(b"zz"), None);
    }
}
