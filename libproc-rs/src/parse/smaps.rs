//! `/proc/PID/smaps`: each mapping with its resident, anonymous and
//! locked KiB. Bytes in, records out; reading the file is the caller's.

use crate::parse::maps::{Mapping, parse_line};

/// Memory use of one mapping, from /proc/PID/smaps, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MappingUsage {
    /// Resident in memory (`Rss`).
    pub rss_kib: u64,
    /// Anonymous: not backed by a file, or private copies of file pages
    /// (`Anonymous`).
    pub anon_kib: u64,
    /// Locked in memory (`Locked`).
    pub locked_kib: u64,
}

/// The number in a smaps field line (`Rss:      1234 kB`).
fn field_kib(rest: &[u8]) -> u64 {
    rest.iter()
        .skip_while(|&&b| b == b' ' || b == b'\t')
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

/// A parser of `/proc/PID/smaps`, fed one line at a time (see
/// [`for_each_line`]): each mapping line (as in /proc/PID/maps) is followed
/// by its `Name: value` lines. Fields other than Rss, Anonymous and Locked
/// are skipped; a malformed mapping line is skipped with its fields.
#[derive(Debug, Default)]
pub struct SmapsParser {
    out: Vec<(Mapping, MappingUsage)>,
    /// Whether the fields that follow belong to the last entry of `out`.
    current: bool,
}

impl SmapsParser {
    /// Take one line, without its newline.
    pub fn line(&mut self, line: &[u8]) {
        let Some(&first) = line.first() else {
            return;
        };
        // Field names start with a capital letter; mapping lines with a
        // lower-case hexadecimal address.
        if first.is_ascii_uppercase() {
            let Some((_, usage)) = self.out.last_mut().filter(|_| self.current) else {
                return;
            };
            if let Some(rest) = line.strip_prefix(b"Rss:") {
                usage.rss_kib = field_kib(rest);
            } else if let Some(rest) = line.strip_prefix(b"Anonymous:") {
                usage.anon_kib = field_kib(rest);
            } else if let Some(rest) = line.strip_prefix(b"Locked:") {
                usage.locked_kib = field_kib(rest);
            }
            return;
        }
        match parse_line(line) {
            Some(m) => {
                self.out.push((m, MappingUsage::default()));
                self.current = true;
            }
            None => self.current = false,
        }
    }

    /// The mappings read, with their use.
    pub fn finish(self) -> Vec<(Mapping, MappingUsage)> {
        self.out
    }
}

/// Parse the whole of `/proc/PID/smaps` held in memory.
pub fn parse_smaps(bytes: &[u8]) -> Vec<(Mapping, MappingUsage)> {
    let mut p = SmapsParser::default();
    for line in bytes.split(|&b| b == b'\n') {
        p.line(line);
    }
    p.finish()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::parse::maps::MapName;

    const SMAPS: &[u8] = b"\
55d6055e8000-55d6055e9000 r--p 00000000 fe:00 10141839                   /tmp/npm/npmapfx
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   4 kB
Pss:                   4 kB
Anonymous:             0 kB
Locked:                0 kB
THPeligible:           0
VmFlags: rd mr mw me dw sd
55d63943d000-55d63947f000 rw-p 00000000 00:00 0                          [heap]
Size:                264 kB
Rss:                 260 kB
Anonymous:           260 kB
LazyFree:              0 kB
Locked:               12 kB
VmFlags: rd wr mr mw me ac sd
not a mapping line
Rss:                 999 kB
7f7bc3600000-7f7bc7600000 rw-p 00000000 00:00 0 
Size:              65536 kB
Rss:               16384 kB
Anonymous:         16384 kB
Locked:                0 kB
";

    #[test]
    fn smaps_fields_attach_to_their_mapping() {
        let v = parse_smaps(SMAPS);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].0.path(), Some(Path::new("/tmp/npm/npmapfx")));
        assert_eq!(
            v[0].1,
            MappingUsage {
                rss_kib: 4,
                anon_kib: 0,
                locked_kib: 0
            }
        );
        assert_eq!(v[1].0.name, MapName::Heap);
        assert_eq!(
            v[1].1,
            MappingUsage {
                rss_kib: 260,
                anon_kib: 260,
                locked_kib: 12
            }
        );
        // The fields after a malformed line are not credited to anyone.
        assert_eq!(v[2].0.start, 0x7f7bc3600000);
        assert_eq!(v[2].1.rss_kib, 16384);
        assert_eq!(v[2].1.anon_kib, 16384);
    }

    #[test]
    fn smaps_empty_and_truncated() {
        assert!(parse_smaps(b"").is_empty());
        let v = parse_smaps(b"1000-2000 rw-p 00000000 00:00 0\nRss:  ");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1.rss_kib, 0);
    }
}
