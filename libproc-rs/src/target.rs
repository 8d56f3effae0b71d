//! The process-target abstraction shared by every tool.
//!
//! A [`ProcessTarget`] is a process to be inspected: a live one
//! ([`crate::live::LiveProcess`]) or one preserved in an ELF core file
//! ([`crate::corefile::CoreFile`]). Tools are written once against the trait;
//! the difference between the two sources stays in this crate.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::diag::Sink;
use crate::error::{Error, Result};
use crate::parse::auxv::AuxEntry;
pub use crate::parse::maps::{MapName, Mapping, Perms};
pub use crate::parse::notes::{Registers, SignalInfo};
pub use crate::parse::psargs::{
    PSARGS_MAX, REWRITTEN_ARGV, psargs_from_arg_area, trim_title_padding,
};
use crate::parse::smaps::MappingUsage;
use crate::root::{RootDir, SearchPath};

/// How an operand is opened: where else the files it names are looked
/// for (see [`SearchPath`]).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Look for the files a target names under this directory, after the
    /// target's own root and before this machine's (a core from another
    /// machine, with that machine's files copied here).
    pub sysroot: Option<PathBuf>,
    /// Look for debug files here too, after the roots' /usr/lib/debug
    /// (as `DIR/.build-id/xx/rest.debug`, or by `.gnu_debuglink` name).
    pub debug_dirs: Vec<PathBuf>,
}

/// What an operand names: a decimal number is a live process, anything else
/// the path of an x86_64 ELF core file: plain or compressed (zstd, lz4, xz),
/// a regular file or a pipe, and `-` for standard input (see
/// [`crate::corefile::spool`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand<'a> {
    Pid(i32),
    Core(&'a Path),
}

impl<'a> Operand<'a> {
    /// Tell which `operand` is. A number too large to be a PID is a process
    /// that does not exist.
    pub fn parse(operand: &'a OsStr) -> Result<Self> {
        let bytes = operand.as_encoded_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return Ok(Operand::Core(Path::new(operand)));
        }
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .map(Operand::Pid)
            .ok_or(Error::PidOutOfRange)
    }
}

/// Where a target's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Live { pid: i32 },
    Core { path: PathBuf },
}

/// Who the process is, as `ps` would show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Psinfo {
    pub pid: i32,
    pub ppid: i32,
    /// Real user and group ids.
    pub uid: u32,
    pub gid: u32,
    /// State letter as in /proc/PID/stat (`R`, `S`, `D`, `T`, `Z`, ...).
    pub state: char,
    /// The executable's name as the kernel keeps it (at most 15 bytes).
    pub fname: OsString,
    /// The start of the command line, argv joined by spaces, at most 79
    /// bytes: the kernel's `pr_psargs`, computed the same way for a live
    /// process so that a process and its core show the same header.
    pub psargs: OsString,
}

/// One thread (LWP) of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub tid: i32,
    /// The thread's name (`comm`) where the source records one; kernel and
    /// gdb cores do not.
    pub name: Option<OsString>,
    /// Registers, where they can be had without stopping anything (a core).
    pub registers: Option<Registers>,
    /// The current stack pointer, where known: from the registers, or for a
    /// live thread blocked in a system call from /proc/PID/task/TID/syscall.
    pub stack_pointer: Option<u64>,
}

/// Arguments or environment strings, with a note when they are not the
/// exact vector (for example, recovered from the 80-byte `pr_psargs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringList {
    pub items: Vec<OsString>,
    /// Set when the list is a best effort; says what is uncertain.
    pub caveat: Option<String>,
}

/// Read access to a target's memory.
pub trait Memory {
    /// Copy target memory at `addr` into `buf`. Returns how many bytes were
    /// copied, counted from `addr`; fewer than `buf.len()` when the rest is
    /// unavailable. Memory a core does not hold is an error, never zeros.
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize>;

    /// Read each `(address, length)` of `ranges` into consecutive slots of
    /// `out` (as long as the lengths' sum); says which reads were whole.
    /// For many small reads: a live process makes them in a few system
    /// calls instead of one each.
    fn read_ranges(&self, ranges: &[(u64, usize)], out: &mut [u8]) -> Vec<bool> {
        range_slots(ranges, out)
            .map(|r| r.is_some_and(|(a, slot)| self.read_exact_at(a, slot).is_ok()))
            .collect()
    }

    /// Read `len` bytes at each of `addrs` into consecutive `len`-byte
    /// slots of `out` (`addrs.len() * len` bytes); says which reads were
    /// whole (see [`Memory::read_ranges`]).
    fn read_each(&self, addrs: &[u64], len: usize, out: &mut [u8]) -> Vec<bool> {
        let ranges: Vec<(u64, usize)> = addrs.iter().map(|&a| (a, len)).collect();
        self.read_ranges(&ranges, out)
    }
}

/// Each range's address and its slot of `out` (consecutive slots, as long
/// as the ranges), `None` for ranges past the end of `out`.
pub(crate) fn range_slots<'a>(
    ranges: &'a [(u64, usize)],
    out: &'a mut [u8],
) -> impl Iterator<Item = Option<(u64, &'a mut [u8])>> + 'a {
    let mut rest = Some(out);
    ranges.iter().map(move |&(a, len)| {
        let (slot, tail) = rest.take()?.split_at_mut_checked(len)?;
        rest = Some(tail);
        Some((a, slot))
    })
}

pub mod capture;

/// A process to inspect, live or from a core.
pub trait ProcessTarget: Memory {
    /// Where the data comes from.
    fn source(&self) -> &Source;

    /// Identity and command-line summary.
    fn psinfo(&self) -> &Psinfo;

    /// The process id (as the target's own PID namespace knows it, for a
    /// core).
    fn pid(&self) -> i32 {
        self.psinfo().pid
    }

    /// The argument vector.
    fn argv(&self) -> Result<StringList>;

    /// The environment the process was started with.
    fn initial_environ(&self) -> Result<StringList>;

    /// The auxiliary vector.
    fn auxv(&self) -> Result<Vec<AuxEntry>>;

    /// The address-space mappings, sorted by address.
    fn mappings(&self) -> Result<Vec<Mapping>>;

    /// The mappings with their memory use, from one read of
    /// /proc/PID/smaps (or what an npgcore core recorded of it; a mapping
    /// it recorded nothing for has `None`). `None` where the source
    /// records no use (a kernel or gdb core).
    #[allow(clippy::type_complexity)]
    fn mappings_with_usage(&self) -> Result<Option<Vec<(Mapping, Option<MappingUsage>)>>> {
        Ok(None)
    }

    /// KiB of `[start, end)` resident in memory, for a part of a mapping
    /// (smaps gives whole mappings): a live process reads
    /// /proc/PID/pagemap. `None` where the source cannot say (a core).
    fn resident_kib(&self, _start: u64, _end: u64) -> Option<u64> {
        None
    }

    /// For each 4 KiB page of `[start, end)`: does it hold data (resident
    /// or swapped out), so that a search can skip memory never touched. A
    /// live process reads /proc/PID/pagemap; `None` where the source cannot
    /// tell cheaply (a core: every page is read as it is).
    fn populated_pages(&self, _start: u64, _end: u64) -> Option<Vec<bool>> {
        None
    }

    /// Whether each mapping says how much of it the source holds
    /// ([`Mapping::dumped`]): a core does, a live process holds it all.
    fn records_dumped_sizes(&self) -> bool {
        false
    }

    /// The mappings named as /proc/PID/maps names them, for a map of the
    /// whole address space: a core, which does not record the names of its
    /// brk heap and vvar pages, infers them (and warns when it cannot).
    fn mappings_named(&self, _sink: &mut dyn Sink) -> Result<Vec<Mapping>> {
        self.mappings()
    }

    /// The threads, main thread first.
    fn threads(&self) -> Result<Vec<Thread>>;

    /// The thread ids, main thread first: [`ProcessTarget::threads`]
    /// without the per-thread details (cheaper on a live process).
    fn thread_ids(&self) -> Result<Vec<i32>> {
        Ok(self.threads()?.iter().map(|t| t.tid).collect())
    }

    /// A live thread's scheduler state as /proc shows it (`R` on a CPU or
    /// about to be, `S`, `D`, `Z`, ...); `None` for a core, or a thread
    /// that is gone.
    fn thread_state(&self, _tid: i32) -> Option<char> {
        None
    }

    /// Each thread's id and stack pointer where known (see
    /// [`Thread::stack_pointer`]): [`ProcessTarget::threads`] without the
    /// names, cheaper on a live process.
    fn thread_stack_pointers(&self) -> Result<Vec<(i32, Option<u64>)>> {
        Ok(self
            .threads()?
            .into_iter()
            .map(|t| (t.tid, t.stack_pointer))
            .collect())
    }

    /// The open file descriptors described in detail (stat, fdinfo,
    /// sockets; see [`crate::openfiles`]). Only a live process can: neither
    /// the kernel nor gdb writes the descriptor table into a core.
    fn open_files(
        &self,
        _options: crate::openfiles::Options,
        _sink: &mut dyn Sink,
    ) -> Result<crate::openfiles::FdTable> {
        Err(Error::NoDescriptorTable)
    }

    /// The signal that ended the process (cores only).
    fn fatal_signal(&self) -> Option<SignalInfo> {
        None
    }

    /// Where the files the target names are looked for, in order (see
    /// [`SearchPath`]); [`crate::elf::locate`] checks which one is the
    /// file the process had.
    fn search_path(&self) -> Result<&SearchPath> {
        Err(Error::NoRootDir)
    }

    /// The directory the target's paths resolve under: `/proc/PID/root`
    /// for a live process (so a process in a container resolves its own
    /// files), `/` or a sysroot for a core.
    fn root_dir(&self) -> Result<&RootDir> {
        Ok(self.search_path()?.root())
    }

    /// Hand over what the source itself found, once a report is done:
    /// problems of the source (a truncated or damaged core) as failures,
    /// and warnings that came up while reading (a file on this machine that
    /// is not the one a core's process had mapped). Drains the warnings.
    fn drain_notices(&self, _sink: &mut dyn Sink) {}

    /// What makes every report of this source partial (a core without
    /// NT_FILE), for --json; [`ProcessTarget::drain_notices`] says it on
    /// stderr.
    fn caveats(&self) -> Vec<String> {
        Vec::new()
    }

    /// The NPTOOLS notes an npgcore core carried and were read
    /// (`descriptors`, `threads`, `limits`, `paths`, `smaps`; see
    /// [`crate::npnotes`]), for --json: what came from them rather than
    /// from the core's own notes. Empty for everything else.
    fn npgcore_notes(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Copy the requested threads' registers and a window of each one's
    /// stack, for a stack walk (see [`capture`]). A live process stops its
    /// threads for the copy, one by one or together as the request says,
    /// and `while_held` sees each copy before its thread runs again. A
    /// thread that cannot be captured comes back with a problem; an error
    /// is for the whole target (the first stop refused). The default, for a
    /// source that recorded its threads' registers (a core), takes those.
    fn capture_threads(
        &self,
        request: capture::CaptureRequest<'_>,
        while_held: &mut dyn capture::WhileHeld,
    ) -> Result<Vec<capture::Captured>> {
        Ok(capture::from_recorded(request.threads, while_held))
    }

    /// The PID the running process has in its own PID namespace, which
    /// names the files it writes for tools (a JIT's perf map,
    /// `/tmp/perf-PID.map`). `None` where no process runs (a core): a file
    /// under its PID is not known to be its.
    fn namespace_pid(&self) -> Option<i32> {
        None
    }
}

/// Convenience reads on top of [`Memory::read_memory`].
pub trait MemoryExt {
    /// Read exactly `buf.len()` bytes or fail.
    fn read_exact_at(&self, addr: u64, buf: &mut [u8]) -> Result<()>;
    /// Read a little-endian u64.
    fn read_u64(&self, addr: u64) -> Result<u64>;
    /// Read a NUL-terminated string of at most `max` bytes (without the NUL).
    /// A string that runs into unavailable memory or past `max` is an error.
    fn read_cstring(&self, addr: u64, max: usize) -> Result<OsString>;
}

impl<T: Memory + ?Sized> MemoryExt for T {
    fn read_exact_at(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let at = addr
                .checked_add(done as u64)
                .ok_or(Error::MemoryUnavailable {
                    addr,
                    reason: "address overflows",
                })?;
            let n = self.read_memory(at, &mut buf[done..])?;
            if n == 0 {
                return Err(Error::MemoryUnavailable {
                    addr: at,
                    reason: "",
                });
            }
            done += n;
        }
        Ok(())
    }

    fn read_u64(&self, addr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_exact_at(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn read_cstring(&self, addr: u64, max: usize) -> Result<OsString> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            let at = addr
                .checked_add(out.len() as u64)
                .ok_or(Error::MemoryUnavailable {
                    addr,
                    reason: "address overflows",
                })?;
            // Do not cross a page boundary in one read: the next page may be
            // unmapped even though the string ends before it.
            let to_page_end = (4096 - (at % 4096)) as usize;
            let want = chunk.len().min(to_page_end);
            let n = self.read_memory(at, &mut chunk[..want])?;
            if n == 0 {
                return Err(Error::MemoryUnavailable {
                    addr: at,
                    reason: "",
                });
            }
            if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                break;
            }
            out.extend_from_slice(&chunk[..n]);
            if out.len() > max {
                return Err(Error::StringTooLong { addr, max });
            }
        }
        if out.len() > max {
            return Err(Error::StringTooLong { addr, max });
        }
        Ok(OsStr::from_bytes(&out).to_owned())
    }
}
