//! Finding the file a target mapped, and its debug file: one search order
//! for every tool (the places of [`SearchPath`]), and a build-id check on
//! each file found, so that a file of another build at a path is passed
//! over for the next place rather than trusted.
//!
//! A mapped file is looked for under the target's root, in a live
//! process's `/proc/PID/map_files`, under the sysroot and on this machine.
//! Its debug file is looked for by build-id (`.build-id/xx/rest.debug`)
//! and by `.gnu_debuglink` name under each root's `/usr/lib/debug`, then
//! in the debug directories given (`--debug-dir`).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::elf::{ElfImage, build_id_in, hex_id, section_in};
use crate::error::{Error, Result};
use crate::escape::escape_path;
use crate::root::{Place, SearchPath};
use crate::target::{Mapping, ProcessTarget};

/// A file found, and what was passed over on the way to it: files at the
/// path that were not the one the process had (one message each).
#[derive(Debug)]
pub struct Found<T> {
    pub file: T,
    pub passed_over: Vec<String>,
}

/// The first place of `places` whose file at `path` (or at the mapping
/// `range`, for `/proc/PID/map_files`) `check` accepts. `check` gets the
/// open file and its name on this machine and says why it refuses one.
/// When none is accepted, the error is the first refusal, else the first
/// place's error opening it.
pub fn first_accepted<T>(
    places: &[Place<'_>],
    path: &Path,
    range: Option<(u64, u64)>,
    mut check: impl FnMut(File, PathBuf) -> Result<T>,
) -> Result<Found<T>> {
    let mut passed_over: Vec<Error> = Vec::new();
    let mut first_error = None;
    for place in places {
        match place.open(path, range) {
            Ok(file) => match check(file, place.shown(path, range)) {
                Ok(t) => {
                    let shown = place.shown(path, range);
                    let used = escape_path(&shown);
                    return Ok(Found {
                        file: t,
                        passed_over: passed_over
                            .iter()
                            .map(|e| passed_over_for(e, &used))
                            .collect(),
                    });
                }
                Err(e) => passed_over.push(e),
            },
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(match passed_over.into_iter().next() {
        Some(refused) => refused,
        None => Error::io(
            path,
            first_error.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
        ),
    })
}

/// What to say of a file passed over for `used`.
fn passed_over_for(refused: &Error, used: &str) -> String {
    match refused {
        Error::WrongFile {
            path,
            in_memory,
            on_disk,
        } => format!(
            "{} is not the file the process mapped (build-id {in_memory} in memory, {on_disk} \
             there); {used} is used instead",
            escape_path(path)
        ),
        e => format!("{e}; {used} is used instead"),
    }
}

/// Refuse a file whose build-id is not `want` (nothing to compare is no
/// refusal).
fn check_build_id(want: Option<&[u8]>, have: Option<&[u8]>, shown: &Path) -> Result<()> {
    match (want, have) {
        (Some(want), Some(have)) if want != have => Err(Error::WrongFile {
            path: shown.to_owned(),
            in_memory: hex_id(want),
            on_disk: hex_id(have),
        }),
        _ => Ok(()),
    }
}

/// The build-id of the file mapped as `maps`, from its ELF header in the
/// target's memory (its mapping at offset 0), where that can be read.
pub fn mapped_build_id(target: &dyn ProcessTarget, maps: &[&Mapping]) -> Option<Vec<u8>> {
    let head = maps.iter().find(|m| m.offset == 0)?;
    let mut page = vec![0u8; 4096.min(head.len()) as usize];
    let n = target.read_memory(head.start, &mut page).ok()?;
    build_id_in(&page[..n])
}

/// Open the ELF file `target` mapped as `path` (its mappings `maps`): the
/// first file in the target's search order that is an ELF file with the
/// build-id the mapping has in memory.
pub fn open_mapped(
    target: &dyn ProcessTarget,
    path: &Path,
    maps: &[&Mapping],
) -> Result<Found<ElfImage>> {
    let places = target.search_path()?.places();
    let want = mapped_build_id(target, maps);
    let range = maps
        .iter()
        .find(|m| m.offset == 0)
        .or(maps.first())
        .map(|m| (m.start, m.end));
    first_accepted(&places, path, range, |file, shown| {
        let image = ElfImage::open(file, &shown)?;
        check_build_id(want.as_deref(), image.build_id().as_deref(), &shown)?;
        Ok(image)
    })
}

/// Open the file a core's process mapped as `path`, for its bytes (any
/// file, ELF or not): the first in the search order whose build-id, if it
/// has one in its first page, is `want`.
pub fn open_backing(search: &SearchPath, path: &Path, want: Option<&[u8]>) -> Result<Found<File>> {
    use std::os::unix::fs::FileExt;
    first_accepted(&search.places(), path, None, |file, shown| {
        let mut head = vec![0u8; 4096];
        let n = file
            .read_at(&mut head, 0)
            .map_err(|e| Error::io(&shown, e))?;
        check_build_id(want, build_id_in(&head[..n]).as_deref(), &shown)?;
        Ok(file)
    })
}

/// What `.gnu_debuglink` names: a debug file's name and the CRC-32 of its
/// contents.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DebugLink {
    name: String,
    crc: u32,
}

/// Parse a `.gnu_debuglink` section: the name, NUL, padding to four
/// bytes, the CRC. A name with a slash (or `..`) is refused: it names a
/// file, not a path.
fn parse_debuglink(bytes: &[u8]) -> Option<DebugLink> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&bytes[..nul]).ok()?;
    if name.is_empty() || name.contains('/') || name == ".." {
        return None;
    }
    let at = (nul + 4) & !3;
    let crc = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    Some(DebugLink {
        name: name.to_owned(),
        crc,
    })
}

/// The paths a debug file may have in a debug directory `base` laid out
/// as `/usr/lib/debug` is (`""` for a directory given, whose paths are
/// resolved under it): by build-id, then by debug-link name under the
/// file's directory `dir` and at the top. With `beside`, also beside the
/// file itself (`dir/NAME`, `dir/.debug/NAME`), as gdb looks.
fn debug_paths(
    base: &str,
    id: Option<&str>,
    link: Option<&DebugLink>,
    dir: &Path,
    beside: bool,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(hex) = id.filter(|h| h.len() > 2) {
        out.push(format!("{base}/.build-id/{}/{}.debug", &hex[..2], &hex[2..]).into());
    }
    if let Some(link) = link {
        let dir = dir.to_string_lossy();
        let dir = dir.trim_end_matches('/');
        let name = &link.name;
        if beside {
            out.push(format!("{dir}/{name}").into());
            out.push(format!("{dir}/.debug/{name}").into());
        }
        out.push(format!("{base}{dir}/{name}").into());
        out.push(format!("{base}/{name}").into());
    }
    out
}

/// The CRC-32 `.gnu_debuglink` keeps, of a whole file.
fn crc_of(mut file: &File) -> Option<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf).ok()? {
            0 => return Some(hasher.finalize()),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// The separate debug file of `image`, mapped by the target as `path`:
/// by build-id, and by `.gnu_debuglink` name (beside the file, and under
/// `/usr/lib/debug`), under each root of the target's search path, then in
/// its debug directories. A candidate must have the image's build-id (or,
/// for an image without one, the CRC its debug link records): a debug file
/// for another build is worse than none.
pub fn debug_file(target: &dyn ProcessTarget, image: &ElfImage, path: &Path) -> Option<ElfImage> {
    let search = target.search_path().ok()?;
    let id = image.build_id().filter(|id| id.len() > 1);
    let link = section_in(image.data(), b".gnu_debuglink").and_then(|(_, b)| parse_debuglink(b));
    if id.is_none() && link.is_none() {
        return None;
    }
    let hex = id.as_deref().map(hex_id);
    let dir = path.parent().unwrap_or(Path::new("/"));
    let paths =
        |base: &str, beside: bool| debug_paths(base, hex.as_deref(), link.as_ref(), dir, beside);
    let under_roots = search.roots().iter().flat_map(|r| {
        paths("/usr/lib/debug", true)
            .into_iter()
            .map(move |p| (r, p))
    });
    let in_dirs = search
        .debug_dirs()
        .iter()
        .flat_map(|d| paths("", false).into_iter().map(move |p| (d, p)));
    let candidates = under_roots.chain(in_dirs);
    for (root, candidate) in candidates {
        let Ok(file) = root.open_file(&candidate) else {
            continue;
        };
        let shown = root.shown(&candidate);
        let accepted = match &id {
            Some(id) => ElfImage::open(file, &shown)
                .ok()
                .filter(|d| d.build_id().as_ref() == Some(id)),
            None => {
                let crc = link.as_ref().map(|l| l.crc);
                if crc_of(&file) != crc {
                    continue;
                }
                ElfImage::open(file, &shown).ok()
            }
        };
        if accepted.is_some() {
            return accepted;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debuglink_is_a_name_padded_to_four_then_a_crc() {
        let mut b = b"libc.so.6.debug\0".to_vec();
        b.extend_from_slice(&0x1234_5678u32.to_le_bytes());
        assert_eq!(
            parse_debuglink(&b),
            Some(DebugLink {
                name: "libc.so.6.debug".into(),
                crc: 0x1234_5678
            })
        );
        // "ab\0" pads to four bytes before the CRC.
        let b = [b'a', b'b', 0, 0, 1, 0, 0, 0];
        assert_eq!(parse_debuglink(&b).map(|l| l.crc), Some(1));
        assert_eq!(parse_debuglink(b"../../etc/passwd\0\0\0\0\0\0\0\0"), None);
        assert_eq!(parse_debuglink(b"x\0\0"), None, "cut short");
    }

    #[test]
    fn debug_paths_by_build_id_then_by_link() {
        let link = DebugLink {
            name: "libx.so.debug".into(),
            crc: 0,
        };
        let dir = Path::new("/usr/lib");
        assert_eq!(
            debug_paths("/usr/lib/debug", Some("abcdef"), Some(&link), dir, true),
            vec![
                PathBuf::from("/usr/lib/debug/.build-id/ab/cdef.debug"),
                "/usr/lib/libx.so.debug".into(),
                "/usr/lib/.debug/libx.so.debug".into(),
                "/usr/lib/debug/usr/lib/libx.so.debug".into(),
                "/usr/lib/debug/libx.so.debug".into(),
            ]
        );
        // A directory given: its paths resolve under it.
        assert_eq!(
            debug_paths("", Some("abcdef"), None, dir, false),
            vec![PathBuf::from("/.build-id/ab/cdef.debug")]
        );
        assert_eq!(
            debug_paths("", None, Some(&link), dir, false),
            vec![
                PathBuf::from("/usr/lib/libx.so.debug"),
                "/libx.so.debug".into()
            ]
        );
    }
}
