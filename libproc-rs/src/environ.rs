//! The *current* environment of a process, read from the C library's
//! `environ` variable in its memory.
//!
//! `/proc/PID/environ` and a core's initial stack give the environment as it
//! was at exec time. Variables set later (setenv, putenv, Node.js's
//! `process.env.X = ...`, which calls setenv) live only in the array that
//! `environ` points to. This module follows that variable, which
//! [`crate::elf::variables`] finds (in the executable when it holds a copy,
//! as node does, else in the C library).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::elf::variables::{NotLocated, locate_variable};
use crate::error::{Error, NoCurrentEnviron, Result};
use crate::target::{MemoryExt, ProcessTarget, StringList};

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

/// Follow `environ` at `address`; `None` when it is NULL.
fn read_environ(target: &dyn ProcessTarget, address: u64) -> Result<Option<Vec<OsString>>> {
    let array = target.read_u64(address)?;
    if array == 0 {
        return Ok(None);
    }
    read_array(target, array).map(Some)
}

/// The strings of a NULL-terminated array at `array`.
fn read_array(target: &dyn ProcessTarget, array: u64) -> Result<Vec<OsString>> {
    let mut vars = Vec::new();
    let mut budget = MAX_TOTAL;
    for i in 0..MAX_VARS as u64 {
        let p = target.read_u64(array.wrapping_add(i * 8))?;
        if p == 0 {
            return Ok(vars);
        }
        let var = target.read_cstring(p, MAX_VAR_LEN.min(budget))?;
        budget = budget
            .checked_sub(var.len() + 1)
            .ok_or(Error::EnvironTooLarge)?;
        vars.push(var);
    }
    Err(Error::EnvironUnterminated)
}

/// The current environment, falling back to the initial one (with a caveat
/// that says why) when `environ` cannot be found or read.
pub fn current_environ(target: &dyn ProcessTarget) -> Result<Environment> {
    let failure = match find_and_read(target) {
        Ok(env) => return Ok(env),
        Err(why) => why,
    };
    let note = format!("{failure}; showing the environment the process started with");
    let mut initial = target.initial_environ().map_err(|e| match e {
        // A refusal names its cause and fix; the failed attempt at the
        // current environment was refused for the same reason.
        Error::PermissionDenied { .. } => e,
        e => Error::NoEnvironment {
            current: Box::new(failure),
            initial: Box::new(e),
        },
    })?;
    initial.caveat = Some(match initial.caveat.take() {
        Some(c) => format!("{note} ({c})"),
        None => note,
    });
    Ok(Environment {
        vars: initial,
        origin: EnvOrigin::Initial,
    })
}

fn find_and_read(target: &dyn ProcessTarget) -> std::result::Result<Environment, NoCurrentEnviron> {
    let maps = target.mappings().map_err(NoCurrentEnviron::Mappings)?;
    let found =
        locate_variable(target, &maps, &ENVIRON_SYMBOLS, false).map_err(|why| match why {
            NotLocated::NoModules => NoCurrentEnviron::NoModules,
            NotLocated::Undefined => NoCurrentEnviron::Undefined,
            NotLocated::Denied(e) => NoCurrentEnviron::Denied(e),
            NotLocated::Skipped(reasons) => NoCurrentEnviron::Skipped(reasons),
        })?;
    let vars = match read_environ(target, found.address) {
        Ok(Some(vars)) => vars,
        // The C library's own variable stays NULL when the executable
        // holds the copy in use; only a searched executable rules that out.
        Ok(None) if !found.skipped_before.is_empty() => {
            return Err(NoCurrentEnviron::ExecutableUnsearched {
                skipped: found.skipped_before,
                module: found.module,
            });
        }
        // clearenv() leaves environ NULL: an empty environment.
        Ok(None) => Vec::new(),
        Err(source) => {
            return Err(NoCurrentEnviron::Unreadable {
                symbol: found.symbol,
                module: found.module,
                source,
            });
        }
    };
    Ok(Environment {
        vars: StringList {
            items: vars,
            caveat: None,
        },
        origin: EnvOrigin::Environ {
            module: found.module,
            symbol: found.symbol,
            address: found.address,
        },
    })
}

/// The environment a tool should show: the current one, or with
/// `initial` the one the process started with.
pub fn environment(target: &dyn ProcessTarget, initial: bool) -> Result<Environment> {
    if initial {
        Ok(Environment {
            vars: target.initial_environ()?,
            origin: EnvOrigin::Initial,
        })
    } else {
        current_environ(target)
    }
}
