//! Parser for `/proc/PID/maps`.
//!
//! Written here rather than taken from procfs because paths are bytes: a
//! mapped file whose name is not UTF-8 makes procfs's line reader fail, and
//! scale matters (a process may have tens of thousands of mappings, and
//! procfs allocates a map per entry). The parser works on bytes and is tested
//! on literal input.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

const DELETED: &[u8] = b" (deleted)";

/// Access permissions of a mapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
}

impl Perms {
    /// The `rwxs` form pmap prints, with `-` for what is missing.
    pub fn letters(&self) -> String {
        [
            (self.read, 'r'),
            (self.write, 'w'),
            (self.exec, 'x'),
            (self.shared, 's'),
        ]
        .iter()
        .map(|&(on, c)| if on { c } else { '-' })
        .collect()
    }
}

/// What a mapping maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapName {
    /// A file, by the path the kernel gave when it was mapped.
    File(PathBuf),
    /// The brk heap.
    Heap,
    /// The main thread's stack.
    Stack,
    Vdso,
    Vvar,
    Vsyscall,
    /// Anonymous memory with no name.
    Anon,
    /// Anonymous memory named with PR_SET_VMA_ANON_NAME (`[anon:NAME]`).
    AnonNamed(OsString),
    /// Shared anonymous memory named the same way (`[anon_shmem:NAME]`).
    AnonShmemNamed(OsString),
    /// Any other bracketed kernel name, without the brackets.
    Other(OsString),
}

/// One mapping of the address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: Perms,
    /// Offset into the mapped file, in bytes.
    pub offset: u64,
    /// Device (major, minor) and inode of the mapped file; zero for
    /// anonymous memory and unknown in a core.
    pub dev: (u32, u32),
    pub inode: u64,
    pub name: MapName,
    /// The mapped file had been deleted (`(deleted)` in /proc/PID/maps).
    pub deleted: bool,
    /// For a core: how many bytes of the mapping the core holds, counted
    /// from its start. `None` for a live process.
    pub dumped: Option<u64>,
}

impl Mapping {
    /// Anonymous-looking fields for what a caller does not know: no
    /// offset, device or inode, not deleted, no dumped size.
    pub fn new(start: u64, end: u64, perms: Perms, name: MapName) -> Self {
        Mapping {
            start,
            end,
            perms,
            offset: 0,
            dev: (0, 0),
            inode: 0,
            name,
            deleted: false,
            dumped: None,
        }
    }
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    /// The mapped file's path, for file mappings.
    pub fn path(&self) -> Option<&Path> {
        match &self.name {
            MapName::File(p) => Some(p),
            _ => None,
        }
    }
}

/// A hexadecimal field. Written out rather than through `from_str_radix`:
/// a map may have tens of thousands of lines with four of these each.
fn hex(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 16 {
        return None;
    }
    field.iter().try_fold(0u64, |v, &b| {
        let d = (b as char).to_digit(16)?;
        Some(v << 4 | u64::from(d))
    })
}

/// A decimal field (the inode).
fn decimal(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    field.iter().try_fold(0u64, |v, &b| {
        let d = (b as char).to_digit(10)?;
        v.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// The kernel writes a newline in a path as `\012`; undo that.
fn unescape_newlines(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if name[i..].starts_with(b"\\012") {
            out.push(b'\n');
            i += 4;
        } else {
            out.push(name[i]);
            i += 1;
        }
    }
    out
}

/// Classify the name column of a maps line.
pub fn classify_name(name: &[u8]) -> (MapName, bool) {
    if name.is_empty() {
        return (MapName::Anon, false);
    }
    if name[0] == b'[' && name.ends_with(b"]") {
        let inner = &name[1..name.len() - 1];
        let kind = match inner {
            b"heap" => MapName::Heap,
            b"stack" => MapName::Stack,
            b"vdso" => MapName::Vdso,
            b"vvar" => MapName::Vvar,
            b"vsyscall" => MapName::Vsyscall,
            _ => {
                if let Some(n) = inner.strip_prefix(b"anon:") {
                    MapName::AnonNamed(OsString::from_vec(n.to_vec()))
                } else if let Some(n) = inner.strip_prefix(b"anon_shmem:") {
                    MapName::AnonShmemNamed(OsString::from_vec(n.to_vec()))
                } else if inner.starts_with(b"stack:") {
                    // Kernels before 4.5 named thread stacks `[stack:TID]`.
                    MapName::Stack
                } else {
                    MapName::Other(OsString::from_vec(inner.to_vec()))
                }
            }
        };
        return (kind, false);
    }
    let (path, deleted) = match name.strip_suffix(DELETED) {
        Some(p) => (p, true),
        None => (name, false),
    };
    (
        MapName::File(PathBuf::from(OsString::from_vec(unescape_newlines(path)))),
        deleted,
    )
}

/// Parse one line (without its newline). `None` for a malformed line.
pub fn parse_line(line: &[u8]) -> Option<Mapping> {
    let mut rest = line;
    let mut fields: [&[u8]; 5] = [&[]; 5];
    for f in &mut fields {
        let start = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    let name_start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let name = &rest[name_start..];

    let dash = fields[0].iter().position(|&b| b == b'-')?;
    let start = hex(&fields[0][..dash])?;
    let end = hex(&fields[0][dash + 1..])?;
    let p = fields[1];
    if p.len() < 4 {
        return None;
    }
    let perms = Perms {
        read: p[0] == b'r',
        write: p[1] == b'w',
        exec: p[2] == b'x',
        shared: p[3] == b's',
    };
    let offset = hex(fields[2])?;
    let colon = fields[3].iter().position(|&b| b == b':')?;
    let major = u32::try_from(hex(&fields[3][..colon])?).ok()?;
    let minor = u32::try_from(hex(&fields[3][colon + 1..])?).ok()?;
    let inode = decimal(fields[4])?;
    let (name, deleted) = classify_name(name);
    Some(Mapping {
        start,
        end,
        perms,
        offset,
        dev: (major, minor),
        inode,
        name,
        deleted,
        dumped: None,
    })
}

/// The index of the item whose mapping holds `addr`, among `items` sorted
/// by address without overlaps (`mapping` gives an item's mapping).
pub fn index_holding<T>(items: &[T], addr: u64, mapping: impl Fn(&T) -> &Mapping) -> Option<usize> {
    let i = items.partition_point(|item| mapping(item).start <= addr);
    (i > 0 && mapping(&items[i - 1]).contains(addr)).then(|| i - 1)
}

/// Parse the whole of `/proc/PID/maps` held in memory (a live process's
/// map is streamed through [`parse_line`] instead). Malformed lines are
/// skipped.
pub fn parse_maps(bytes: &[u8]) -> Vec<Mapping> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(parse_line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_letters() {
        let p = Perms {
            read: true,
            write: false,
            exec: true,
            shared: false,
        };
        assert_eq!(p.letters(), "r-x-");
    }
    use std::os::unix::ffi::OsStrExt;

    const SAMPLE: &[u8] = b"\
00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon
00e03000-00e24000 rw-p 00000000 00:00 0           [heap]
7f2c1f4e0000-7f2c1f4e1000 rw-s 00000000 00:05 1234 /dev/zero (deleted)
7f2c1f500000-7f2c1f501000 r--p 00000000 00:00 0           [anon:v8 heap]
7fff2b3c0000-7fff2b3e1000 rw-p 00000000 00:00 0           [stack]
7fff2b3fe000-7fff2b400000 r-xp 00000000 00:00 0           [vdso]
7f2c1f600000-7f2c1f601000 r--p 00001000 fd:01 42          /tmp/with space/and\\012newline
7f2c1f700000-7f2c1f701000 rw-p 00000000 00:00 0 
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0   [vsyscall]
";

    #[test]
    fn parses_every_kind() {
        let maps = parse_maps(SAMPLE);
        assert_eq!(maps.len(), 9);
        assert_eq!(maps[0].start, 0x400000);
        assert_eq!(maps[0].end, 0x452000);
        assert_eq!(maps[0].perms.letters(), "r-x-");
        assert_eq!(maps[0].dev, (8, 2));
        assert_eq!(maps[0].inode, 173521);
        assert_eq!(maps[0].path().unwrap(), Path::new("/usr/bin/dbus-daemon"));
        assert_eq!(maps[1].name, MapName::Heap);
        assert!(maps[2].deleted && maps[2].perms.shared);
        assert_eq!(maps[2].path().unwrap(), Path::new("/dev/zero"));
        assert_eq!(maps[3].name, MapName::AnonNamed("v8 heap".into()));
        assert_eq!(maps[4].name, MapName::Stack);
        assert_eq!(maps[5].name, MapName::Vdso);
        assert_eq!(
            maps[6].path().unwrap().as_os_str().as_bytes(),
            b"/tmp/with space/and\nnewline"
        );
        assert_eq!(maps[6].offset, 0x1000);
        assert_eq!(maps[7].name, MapName::Anon);
        assert_eq!(maps[8].name, MapName::Vsyscall);
    }

    #[test]
    fn non_utf8_paths_survive() {
        let m = parse_line(b"1000-2000 r--p 00000000 00:01 7 /tmp/\xff\xfe").unwrap();
        assert_eq!(m.path().unwrap().as_os_str().as_bytes(), b"/tmp/\xff\xfe");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"1000-zz r--p 0 00:00 0").is_none());
        assert!(parse_line(b"1000-10000000000000000 r--p 0 00:00 0").is_none());
        assert!(parse_line(b"1000-2000 r--p 0 00:00 99999999999999999999").is_none());
        assert!(parse_line(b"1000-2000 r--p 0 00:00 -1").is_none());
        let m = parse_line(b"fFfF-1_0000 r--p 0 00:00 0");
        assert!(m.is_none(), "{m:?}");
        let m = parse_line(b"AbC0-aBd0 r--p 0 00:00 18446744073709551615").unwrap();
        assert_eq!((m.start, m.end, m.inode), (0xabc0, 0xabd0, u64::MAX));
        assert!(parse_line(b"").is_none());
        assert_eq!(
            parse_maps(b"junk\n1000-2000 r--p 00000000 00:00 0\n").len(),
            1
        );
    }
}
