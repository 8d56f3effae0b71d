//! Where a C library variable is at run time (`environ`, `__curbrk`):
//! the executable's and the C library's symbol tables, searched in the
//! dynamic linker's order, each checked to be the file the process mapped.

use std::path::{Path, PathBuf};

use crate::elf::locate::open_mapped;
use crate::error::Error;
use crate::escape::escape_path;
use crate::parse::auxv;
use crate::target::{Mapping, ProcessTarget};

fn is_libc(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or_default();
    name.starts_with(b"libc.so")
        || name.starts_with(b"libc-")
        || name.starts_with(b"ld-musl")
        || name.starts_with(b"libc.musl")
}

/// The files to search, in symbol-resolution order: the executable, then
/// the libraries `is_lib` picks, in address order.
fn candidate_modules(
    maps: &[Mapping],
    auxv: &[auxv::AuxEntry],
    is_lib: fn(&Path) -> bool,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let exec = [auxv::AT_PHDR, auxv::AT_ENTRY]
        .iter()
        .filter_map(|&k| auxv::lookup(auxv, k))
        .find_map(|addr| {
            maps.iter()
                .find(|m| m.contains(addr))?
                .path()
                .map(Path::to_owned)
        })
        // Without an auxv, the lowest file mapping is the executable.
        .or_else(|| maps.iter().find_map(|m| m.path().map(Path::to_owned)));
    out.extend(exec);
    for m in maps {
        if let Some(p) = m.path()
            && is_lib(p)
            && !out.iter().any(|o| o == p)
        {
            out.push(p.to_owned());
        }
    }
    out
}

/// Why a module could not be searched.
enum LocateError {
    /// Access was refused: no other module will fare better.
    Denied(Error),
    /// This module could not be used; another may.
    Skipped(String),
}

/// Find the address of the first of `names` in one module, checking that
/// the file we open is the one the process mapped.
fn locate_in(
    target: &dyn ProcessTarget,
    maps: &[Mapping],
    path: &Path,
    names: &[&str],
) -> Result<Option<(String, u64)>, LocateError> {
    use LocateError::{Denied, Skipped};
    let mine: Vec<&Mapping> = maps.iter().filter(|m| m.path() == Some(path)).collect();
    let image = match open_mapped(target, path, &mine) {
        Ok(found) => found.file,
        Err(e @ Error::PermissionDenied { .. }) => return Err(Denied(e)),
        Err(e @ (Error::WrongFile { .. } | Error::BadElf { .. })) => {
            return Err(Skipped(e.to_string()));
        }
        // An I/O error names the file it was opening already.
        Err(e @ Error::Io { .. }) => return Err(Skipped(format!("cannot open {e}"))),
        Err(e) => return Err(Skipped(format!("cannot open {}: {e}", escape_path(path)))),
    };
    let Some(sym) = image.find_symbol(names) else {
        return Ok(None);
    };
    let bias = image
        .load_bias(&mine)
        .ok_or_else(|| Skipped(format!("cannot tell where {} is loaded", escape_path(path))))?;
    Ok(Some((sym.name, bias.wrapping_add(sym.value))))
}

/// A variable found: the module that defines it, the name found, and its
/// run-time address.
#[derive(Debug)]
pub(crate) struct Located {
    pub module: PathBuf,
    pub symbol: String,
    pub address: u64,
    /// Why modules searched before it could not be: one of them may hold
    /// the copy the program uses (a copy relocation), leaving this one
    /// unused.
    pub skipped_before: Vec<String>,
}

/// Why a C library variable could not be located.
#[derive(Debug)]
pub(crate) enum NotLocated {
    /// No executable or C library is mapped.
    NoModules,
    /// None of the modules defines any of the names.
    Undefined,
    /// Access was refused.
    Denied(Error),
    /// Modules that could not be used, and why.
    Skipped(Vec<String>),
}

/// The run-time address of a C library variable (the first of `names`
/// defined), searched in symbol-resolution order: the executable, then the
/// C library. With `library_first`, the C library is searched first: for a
/// variable no executable takes a copy of, this spares a linear search of a
/// large executable's `.symtab` (node's is huge); a static executable is
/// still searched.
pub(crate) fn locate_variable(
    target: &dyn ProcessTarget,
    maps: &[Mapping],
    names: &[&str],
    library_first: bool,
) -> Result<Located, NotLocated> {
    let auxv = target.auxv().unwrap_or_default();
    let mut candidates = candidate_modules(maps, &auxv, is_libc);
    if library_first && !candidates.is_empty() {
        candidates.rotate_left(1);
    }
    locate_among(target, maps, names, candidates)
}

/// The run-time address of the first of `names` defined in the executable
/// or, after it, in a mapped library `is_lib` picks (node built with a
/// shared libuv or as libnode).
pub(crate) fn locate_in_libraries(
    target: &dyn ProcessTarget,
    maps: &[Mapping],
    names: &[&str],
    is_lib: fn(&Path) -> bool,
) -> Result<Located, NotLocated> {
    let auxv = target.auxv().unwrap_or_default();
    locate_among(target, maps, names, candidate_modules(maps, &auxv, is_lib))
}

fn locate_among(
    target: &dyn ProcessTarget,
    maps: &[Mapping],
    names: &[&str],
    candidates: Vec<PathBuf>,
) -> Result<Located, NotLocated> {
    let mut reasons = Vec::new();
    if candidates.is_empty() {
        return Err(NotLocated::NoModules);
    }
    for path in candidates {
        match locate_in(target, maps, &path, names) {
            Ok(Some((symbol, address))) => {
                return Ok(Located {
                    module: path,
                    symbol,
                    address,
                    skipped_before: reasons,
                });
            }
            Ok(None) => {}
            Err(LocateError::Denied(e)) => return Err(NotLocated::Denied(e)),
            Err(LocateError::Skipped(why)) => reasons.push(why),
        }
    }
    if reasons.is_empty() {
        Err(NotLocated::Undefined)
    } else {
        Err(NotLocated::Skipped(reasons))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::maps::parse_maps;

    #[test]
    fn executable_comes_before_libc() {
        let maps = parse_maps(
            b"00400000-00401000 r--p 00000000 08:01 1 /usr/bin/node\n\
7f0000000000-7f0000001000 r--p 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libm.so.6\n\
7f0000100000-7f0000101000 r--p 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
7f0000200000-7f0000201000 r--p 00000000 08:01 4 /lib/ld-musl-x86_64.so.1\n",
        );
        let auxv = vec![auxv::AuxEntry {
            key: auxv::AT_PHDR,
            value: 0x400040,
        }];
        let c = candidate_modules(&maps, &auxv, is_libc);
        assert_eq!(
            c,
            vec![
                PathBuf::from("/usr/bin/node"),
                "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                "/lib/ld-musl-x86_64.so.1".into()
            ]
        );
    }
}
