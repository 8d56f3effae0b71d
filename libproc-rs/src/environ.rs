//! The *current* environment of a process, read from the C library's
//! `environ` variable in its memory.
//!
//! `/proc/PID/environ` and a core's initial stack give the environment as it
//! was at exec time. Variables set later (setenv, putenv, Node.js's
//! `process.env.X = ...`, which calls setenv) live only in the array that
//! `environ` points to. This module finds that variable and follows it.
//!
//! Where `environ` lives: symbol resolution searches the executable before
//! the libraries, so when the executable refers to `environ` the linker gives
//! it a copy (an `R_X86_64_COPY` relocation into its own .bss; node does
//! this) and the C library's copy is unused. So the executable is searched
//! first, then the C library (glibc's `libc.so.6`, musl's `ld-musl-*.so.1`).
//! A static binary has the symbol in its `.symtab` only, which is searched
//! too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::auxv;
use crate::elf::{ElfImage, check_mapped_build_id};
use crate::error::{Error, Result};
use crate::escape::escape_path;
use crate::target::{Mapping, MemoryExt, ProcessTarget, StringList};

/// Bounds against a corrupted or hostile array: entries, bytes in one
/// string, and bytes in all of them.
const MAX_VARS: usize = 1 << 20;
const MAX_VAR_LEN: usize = 1 << 20;
const MAX_TOTAL: usize = 64 << 20;

const ENVIRON_SYMBOLS: [&str; 3] = ["__environ", "environ", "_environ"];

/// Where the environment shown came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOrigin {
    /// Followed the `environ` pointer found in `module`.
    Environ {
        module: PathBuf,
        symbol: String,
        /// Address of the `environ` variable in the target.
        address: u64,
    },
    /// The environment at exec time (asked for, or as a fallback).
    Initial,
}

/// An environment and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub vars: StringList,
    pub origin: EnvOrigin,
}

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

/// The files to search, in symbol-resolution order.
fn candidate_modules(maps: &[Mapping], auxv: &[auxv::AuxEntry]) -> Vec<PathBuf> {
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
            && is_libc(p)
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
) -> std::result::Result<Option<(String, u64)>, LocateError> {
    use LocateError::{Denied, Skipped};
    let file = target.open_mapped_file(path).map_err(|e| match e {
        Error::PermissionDenied { .. } => Denied(e),
        e => Skipped(format!("cannot open {}: {e}", escape_path(path))),
    })?;
    let image = ElfImage::open(file, path).map_err(|e| Skipped(e.to_string()))?;
    let mine: Vec<&Mapping> = maps.iter().filter(|m| m.path() == Some(path)).collect();
    check_mapped_build_id(target, &image, &mine).map_err(|e| Skipped(e.to_string()))?;
    let Some(sym) = image.find_symbol(names) else {
        return Ok(None);
    };
    let bias = image
        .load_bias(&mine)
        .ok_or_else(|| Skipped(format!("cannot tell where {} is loaded", escape_path(path))))?;
    Ok(Some((sym.name, bias.wrapping_add(sym.value))))
}

/// Follow `environ` at `address`.
fn read_environ(target: &dyn ProcessTarget, address: u64) -> Result<Vec<OsString>> {
    let array = target.read_u64(address)?;
    let mut vars = Vec::new();
    if array == 0 {
        // clearenv() leaves environ NULL: an empty environment.
        return Ok(vars);
    }
    let mut budget = MAX_TOTAL;
    for i in 0..MAX_VARS as u64 {
        let p = target.read_u64(array.wrapping_add(i * 8))?;
        if p == 0 {
            return Ok(vars);
        }
        let var = target.read_cstring(p, MAX_VAR_LEN.min(budget))?;
        budget = budget
            .checked_sub(var.len() + 1)
            .ok_or_else(|| Error::not_available("the environment is larger than 64 MiB"))?;
        vars.push(var);
    }
    Err(Error::not_available("the environ array has no end"))
}

/// The current environment, falling back to the initial one (with a caveat
/// that says why) when `environ` cannot be found or read.
pub fn current_environ(target: &dyn ProcessTarget) -> Result<Environment> {
    let failure = match find_and_read(target) {
        Ok(env) => return Ok(env),
        Err(why) => why,
    };
    let mut initial = target.initial_environ().map_err(|e| match e {
        // A refusal names its cause and fix; the failed attempt at the
        // current environment was refused for the same reason.
        Error::PermissionDenied { .. } => e,
        e => Error::not_available(format!("{failure}; and {e}")),
    })?;
    let note = format!("{failure}; showing the environment the process started with");
    initial.caveat = Some(match initial.caveat.take() {
        Some(c) => format!("{note} ({c})"),
        None => note,
    });
    Ok(Environment {
        vars: initial,
        origin: EnvOrigin::Initial,
    })
}

fn find_and_read(target: &dyn ProcessTarget) -> std::result::Result<Environment, String> {
    let maps = target.mappings().map_err(|e| e.to_string())?;
    let (path, symbol, address) =
        locate_variable(target, &maps, &ENVIRON_SYMBOLS, false).map_err(|why| match why {
            NotLocated::NoModules => "no executable or C library is mapped".to_owned(),
            NotLocated::Undefined => {
                "no environ symbol in the executable or the C library (static or stripped binary?)"
                    .to_owned()
            }
            NotLocated::Denied(e) => format!("cannot resolve environ: {e}"),
            NotLocated::Skipped(reasons) => {
                format!("cannot resolve environ: {}", reasons.join("; "))
            }
        })?;
    let vars = read_environ(target, address).map_err(|e| {
        format!(
            "cannot read the environ array ({symbol} in {}): {e}",
            escape_path(&path)
        )
    })?;
    Ok(Environment {
        vars: StringList {
            items: vars,
            caveat: None,
        },
        origin: EnvOrigin::Environ {
            module: path,
            symbol,
            address,
        },
    })
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
/// still searched. Returns the module, the name found and the address.
pub(crate) fn locate_variable(
    target: &dyn ProcessTarget,
    maps: &[Mapping],
    names: &[&str],
    library_first: bool,
) -> std::result::Result<(PathBuf, String, u64), NotLocated> {
    let auxv = target.auxv().unwrap_or_default();
    let mut reasons = Vec::new();
    let mut candidates = candidate_modules(maps, &auxv);
    if library_first && !candidates.is_empty() {
        candidates.rotate_left(1);
    }
    if candidates.is_empty() {
        return Err(NotLocated::NoModules);
    }
    for path in candidates {
        match locate_in(target, maps, &path, names) {
            Ok(Some((symbol, address))) => return Ok((path, symbol, address)),
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
    use crate::procmaps::parse_maps;

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
        let c = candidate_modules(&maps, &auxv);
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
