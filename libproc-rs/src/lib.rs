//! libproc-rs: everything nptools knows about processes, in one place.
//!
//! The nptools binaries (`npargs`, `npenv`, and the tools that follow) are
//! thin: they parse flags and render. All knowledge of `/proc`, of ELF core
//! files, of the initial process stack and of the C library's `environ`
//! lives here, behind one trait, [`ProcessTarget`], which a live process
//! ([`live::LiveProcess`]) and a core file ([`corefile::CoreFile`]) both
//! implement. A report written against the trait is the same report for
//! both.
//!
//! What this crate does not do: it never stops a process to read what
//! /proc or `process_vm_readv` can give, never reads a core file whole (it is
//! mmapped; only headers, notes and the memory asked for are touched), and
//! never turns memory a core lacks into zeros.
//!
//! # Example
//!
//! ```no_run
//! use libproc_rs::{open, ProcessTarget};
//!
//! let target = open("4242".as_ref())?;             // or a core's path
//! for arg in target.argv()?.items {
//!     println!("{}", libproc_rs::escape::escape_os(&arg));
//! }
//! let env = libproc_rs::environ::current_environ(target.as_ref())?;
//! println!("{} variables", env.vars.items.len());
//! # Ok::<(), libproc_rs::Error>(())
//! ```
//!
//! # Layout
//!
//! - [`target`]: the trait and the data types it returns.
//! - [`live`], [`corefile`]: the two sources.
//! - [`procmaps`], [`notes`], [`auxv`], [`initstack`], [`names`]: parsers
//!   that take bytes and are tested on literal input.
//! - [`elf`]: ELF images a target mapped (symbols, build-ids, load bias).
//! - [`files`]: opening files a target names without blocking, touching
//!   devices or leaving its root.
//! - [`environ`]: the current environment from the C library's `environ`.
//! - [`openfiles`]: open descriptors in detail (stat, fdinfo, and sockets
//!   from sock_diag netlink in the target's network namespace).
//! - [`smaps`]: the labelled address-space map (heaps, arenas, thread
//!   stacks, usage from smaps) and its summary categories.
//! - [`escape`]: making bytes a target controls safe to print, and JSON.
//! - [`report`], [`cli`]: output pieces and the operand loop the tools share.

pub mod addrmap;
pub mod corefile;
pub mod elf;
pub mod environ;
pub mod error;
pub mod escape;
pub mod live;
pub mod openfiles;
pub mod parse;
pub mod root;
pub mod stack;
pub mod target;

use std::ffi::OsStr;

pub use error::{Error, PermissionCause, Result};
pub use target::{Memory, MemoryExt, OpenOptions, Operand, ProcessTarget};

/// Open an operand (see [`Operand`]): a live process or a core file.
pub fn open(operand: &OsStr, options: &OpenOptions) -> Result<Box<dyn ProcessTarget>> {
    Ok(match Operand::parse(operand)? {
        Operand::Pid(pid) => Box::new(live::LiveProcess::open(pid)?),
        Operand::Core(path) => Box::new(corefile::CoreFile::open(path, options)?),
    })
}
