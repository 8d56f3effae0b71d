//! Reading a map file that changes while it is read.
//!
//! The kernel produces /proc/PID/maps and smaps a few records per `read`,
//! and the map may change between reads. [`read_consistent`] checks that the
//! records it got ascend without overlapping, reads again when they do not,
//! and as a last resort keeps the records read last, so a listing is never
//! garbled: every mapping is one the process had, in address order.

use std::io::{self, Read};

use crate::error::Result;
use crate::parse::maps::Mapping;

/// How many times a map that changed while being read is read again.
const READ_ATTEMPTS: usize = 4;

/// Give `line` each line of `reader` (without its newline), holding only a
/// small buffer: the smaps of a process with many mappings is tens of
/// megabytes. Returns how many bytes were read.
pub fn for_each_line(reader: &mut dyn Read, mut line: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut filled, mut total) = (0, 0u64);
    loop {
        if filled == buf.len() {
            // One line longer than the buffer.
            buf.resize(buf.len() * 2, 0);
        }
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if filled > 0 {
                line(&buf[..filled]);
            }
            return Ok(total);
        }
        total += n as u64;
        // Only the new bytes can hold the end of the line kept from before.
        let (mut start, mut scan) = (0, filled);
        filled += n;
        while let Some(len) = buf[scan..filled].iter().position(|&b| b == b'\n') {
            line(&buf[start..scan + len]);
            start = scan + len + 1;
            scan = start;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// Do the mappings ascend without overlapping?
pub fn is_consistent<T>(entries: &[T], mapping: impl Fn(&T) -> &Mapping) -> bool {
    entries
        .windows(2)
        .all(|w| mapping(&w[0]).end <= mapping(&w[1]).start)
        && entries.iter().all(|e| mapping(e).start < mapping(e).end)
}

/// Make records read at different moments consistent: the kernel resumes
/// each read after the address where the last one stopped, so a record that
/// overlaps earlier ones is the newer view of that range, and the earlier
/// records it overlaps are dropped. Empty or inverted records are dropped.
pub fn keep_latest<T>(entries: Vec<T>, mapping: impl Fn(&T) -> &Mapping) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(entries.len());
    for e in entries {
        let m = mapping(&e);
        if m.start >= m.end {
            continue;
        }
        let start = m.start;
        while out.last().is_some_and(|p| mapping(p).end > start) {
            out.pop();
        }
        out.push(e);
    }
    out
}

/// Read a map file (with `read`, which parses it too) until the records are
/// consistent (see the module documentation); after a few reads, repair
/// the last one with [`keep_latest`].
pub fn read_consistent<T>(
    mut read: impl FnMut() -> Result<Vec<T>>,
    mapping: impl Fn(&T) -> &Mapping + Copy,
) -> Result<Vec<T>> {
    let mut attempt = 1;
    loop {
        let entries = read()?;
        if is_consistent(&entries, mapping) {
            return Ok(entries);
        }
        if attempt == READ_ATTEMPTS {
            return Ok(keep_latest(entries, mapping));
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::maps::parse_maps;
    use crate::parse::smaps::{SmapsParser, parse_smaps};

    #[test]
    fn lines_come_whole_from_any_reads() {
        // A reader that returns a few bytes at a time, and a line longer
        // than the buffer.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(7);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let long = vec![b'x'; 200_000];
        let text = [b"a\n\nbc\n".as_slice(), &long, b"\nlast"].concat();
        let mut lines = Vec::new();
        let n = for_each_line(&mut Dribble(&text), |l| lines.push(l.to_vec())).unwrap();
        assert_eq!(n, text.len() as u64);
        assert_eq!(
            lines,
            [
                b"a".to_vec(),
                vec![],
                b"bc".to_vec(),
                long,
                b"last".to_vec()
            ]
        );
        let smaps: &[u8] = b"1000-2000 rw-p 00000000 00:00 0\nRss:  8 kB\nLocked: 4 kB\n";
        let mut p = SmapsParser::default();
        for_each_line(&mut Dribble(smaps), |l| p.line(l)).unwrap();
        assert_eq!(p.finish(), parse_smaps(smaps));
    }

    #[test]
    fn records_from_a_changing_map_are_made_consistent() {
        // The second read saw [1000,3000) grown to [1000,4000).
        let maps = parse_maps(
            b"1000-3000 rw-p 00000000 00:00 0\n\
1000-4000 rw-p 00000000 00:00 0\n\
5000-6000 r--p 00000000 00:00 0\n\
5800-7000 r--p 00000000 00:00 0\n\
8000-8000 r--p 00000000 00:00 0\n",
        );
        assert!(!is_consistent(&maps, |m| m));
        let fixed = keep_latest(maps, |m| m);
        assert!(is_consistent(&fixed, |m| m));
        let ranges: Vec<(u64, u64)> = fixed.iter().map(|m| (m.start, m.end)).collect();
        assert_eq!(ranges, [(0x1000, 0x4000), (0x5800, 0x7000)]);
    }

    #[test]
    fn read_consistent_rereads_then_repairs() {
        let bad: &[u8] = b"1000-3000 rw-p 0 00:00 0\n2000-4000 rw-p 0 00:00 0\n";
        let good: &[u8] = b"1000-4000 rw-p 0 00:00 0\n";
        let mut reads = 0;
        let v = read_consistent(
            || {
                reads += 1;
                Ok(parse_maps(if reads < 3 { bad } else { good }))
            },
            |m| m,
        )
        .unwrap();
        assert_eq!(reads, 3);
        assert_eq!((v[0].start, v[0].end), (0x1000, 0x4000));

        let mut reads = 0;
        let v = read_consistent(
            || {
                reads += 1;
                Ok(parse_maps(bad))
            },
            |m| m,
        )
        .unwrap();
        assert_eq!(reads, READ_ATTEMPTS);
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].start, v[0].end), (0x2000, 0x4000));
    }
}
