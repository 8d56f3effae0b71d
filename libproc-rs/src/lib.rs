//! libproc-rs: everything nptools knows about processes, in one place.
//!
//! The nptools binaries are thin: they parse flags and render (with
//! nptools-cli, the crate they share). All knowledge of `/proc`, of ELF core
//! files, of the initial process stack, of the C library and of V8 lives
//! here, behind one trait, [`ProcessTarget`], which a live process
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
//! use libproc_rs::{OpenOptions, ProcessTarget, open};
//!
//! let target = open("4242".as_ref(), &OpenOptions::default())?; // or a core's path
//! for arg in target.argv()?.items {
//!     println!("{}", libproc_rs::escape::escape_os(&arg));
//! }
//! let env = libproc_rs::environ::current_environ(target.as_ref())?;
//! println!("{} variables", env.vars.items.len());
//! # Ok::<(), libproc_rs::Error>(())
//! ```
//!
//! # Layers
//!
//! Each layer uses only the layers above it in this list; the test
//! `tests/layers.rs` checks it, so there is no cycle.
//!
//! 1. [`escape`], [`error`], [`diag`]: making target bytes printable, the
//!    error types, and the sink notices go to.
//! 2. [`parse`]: parsers from bytes to records (maps, smaps, notes, auxv,
//!    fdinfo, /proc/net, passwd); no file, no process.
//! 3. [`root`]: opening a file a target names, under its root, safely.
//! 4. [`openfiles`]: the descriptor table's types and the matching of
//!    pipe and socket ends.
//! 5. [`target`]: the trait, the types it returns (with `target/capture.rs`,
//!    what capturing a thread asks for and gives), and [`Operand`];
//!    [`npnotes`], the bytes of the NPTOOLS notes an npgcore core carries
//!    (what /proc knew: descriptors, thread names, limits, cwd and root,
//!    smaps figures), written by `live` and read by `corefile`.
//! 6. [`elf`]: ELF images a target mapped: symbols, build-ids, load bias,
//!    and where a C library variable is at run time.
//! 7. [`live`], [`corefile`]: the two sources. All /proc and ptrace
//!    access is in `live` (the stop of a thread in `live/capture.rs`);
//!    what a core does not record but /proc would (its heap, its vvar) is
//!    inferred in `corefile`. What differs between the two is a method of
//!    the trait, so the analyses never ask which source they read.
//! 8. [`gcore`]: writing a core file of a live process (the ELF layout,
//!    what is dumped, the safe output file), on top of `live`'s hold of
//!    every thread ([`live::freeze`]).
//! 9. [`environ`], [`addrmap`], [`stack`], [`libuv`], [`v8heap`]: the
//!    analyses, written against the trait only ([`addrmap`] labels the
//!    pages [`v8heap`] finds; [`libuv`] looks for Workers' loops on the
//!    thread stacks [`addrmap`] tells).
//! 10. This file: [`open`], which picks the source.

pub mod addrmap;
pub mod corefile;
pub mod diag;
pub mod elf;
pub mod environ;
pub mod error;
pub mod escape;
pub mod gcore;
pub mod libuv;
pub mod live;
pub mod npnotes;
pub mod openfiles;
pub mod parse;
pub mod root;
pub mod stack;
pub mod target;
pub mod v8heap;

use std::ffi::OsStr;

pub use error::{Error, PermissionCause, Result};
pub use target::{Memory, MemoryExt, OpenOptions, Operand, ProcessTarget};

/// Open an operand (see [`Operand`]): a live process or a core file.
pub fn open(operand: &OsStr, options: &OpenOptions) -> Result<Box<dyn ProcessTarget>> {
    Ok(match Operand::parse(operand)? {
        Operand::Pid(pid) => Box::new(live::LiveProcess::open_with(pid, options)?),
        Operand::Core(path) => Box::new(corefile::CoreFile::open(path, options)?),
    })
}
