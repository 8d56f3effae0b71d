//! The process-target abstraction shared by every tool.
//!
//! A [`ProcessTarget`] is a process to be inspected: a live one
//! ([`crate::live::LiveProcess`]) or one preserved in an ELF core file
//! ([`crate::corefile::CoreFile`]). Tools are written once against the trait;
//! the difference between the two sources stays in this crate.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::auxv::AuxEntry;
use crate::error::{Error, Result};
use crate::files::RootDir;
use crate::smaps::MappingUsage;

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

/// Maximum length of `pr_psargs` without its NUL (`ELF_PRARGSZ - 1`).
pub const PSARGS_MAX: usize = 79;

/// Build `pr_psargs` from the raw argument area (`argv` strings with their
/// NULs) the way the kernel's core dumper does (the first 79 bytes, NULs
/// turned into spaces), then drop trailing spaces: the kernel turns the last
/// argument's NUL into one, and a rewritten area (setproctitle) leaves many.
/// [`crate::notes::parse_prpsinfo`] trims the same way, so a process and its
/// core show the same string.
pub fn psargs_from_arg_area(area: &[u8]) -> OsString {
    let v: Vec<u8> = area[..area.len().min(PSARGS_MAX)]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    psargs_trimmed(v)
}

/// psargs without its trailing spaces: the one trimming rule for psargs
/// built here and `pr_psargs` read from a core.
pub(crate) fn psargs_trimmed(mut v: Vec<u8>) -> OsString {
    while v.last() == Some(&b' ') {
        v.pop();
    }
    OsString::from_vec(v)
}

/// The caveat for a process that wrote over its argument area.
pub const REWRITTEN_ARGV: &str = "the process wrote over its argument area (a title set with \
setproctitle or node's process.title, or arguments blanked out): argv shows what the area \
holds now, without the NUL padding after it";

/// Drop the empty strings a rewritten argument area leaves after the title
/// (libuv and setproctitle pad the old area with NULs). Returns whether any
/// were dropped.
pub fn trim_title_padding(items: &mut Vec<OsString>) -> bool {
    let before = items.len();
    while items.len() > 1 && items.last().is_some_and(|s| s.is_empty()) {
        items.pop();
    }
    items.len() != before
}

/// The signal that ended a process, from a core's `NT_SIGINFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    /// The faulting address for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP.
    pub fault_addr: Option<u64>,
    /// The sender for signals sent by a process (`si_code <= 0`).
    pub sender_pid: Option<i32>,
    pub sender_uid: Option<u32>,
}

impl SignalInfo {
    /// Whether the signal ended the process. gdb's gcore records the
    /// SIGSTOP it stopped the process with, which kills nothing.
    pub fn is_fatal(&self) -> bool {
        self.signo != nix::libc::SIGSTOP
    }

    /// One line for a report: `SIGSEGV (signal 11) at address 0x0`,
    /// `SIGABRT (signal 6) sent by pid 42 uid 0`.
    pub fn describe(&self) -> String {
        let name = nix::sys::signal::Signal::try_from(self.signo)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| format!("signal {}", self.signo));
        let mut text = format!("{name} (signal {})", self.signo);
        if let Some(addr) = self.fault_addr {
            text.push_str(&format!(" at address {addr:#x}"));
        }
        if let Some(pid) = self.sender_pid {
            text.push_str(&format!(" sent by pid {pid}"));
            if let Some(uid) = self.sender_uid {
                text.push_str(&format!(" uid {uid}"));
            }
        }
        text
    }
}

/// x86_64 general-purpose registers in the kernel's `user_regs_struct`
/// order (also the order of `pr_reg` in `NT_PRSTATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers(pub [u64; 27]);

impl Registers {
    pub const NAMES: [&'static str; 27] = [
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
        "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds",
        "es", "fs", "gs",
    ];
    pub fn rip(&self) -> u64 {
        self.0[16]
    }
    pub fn rsp(&self) -> u64 {
        self.0[19]
    }
    pub fn rbp(&self) -> u64 {
        self.0[4]
    }
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

/// Arguments or environment strings, with a note when they are not the
/// exact vector (for example, recovered from the 80-byte `pr_psargs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringList {
    pub items: Vec<OsString>,
    /// Set when the list is a best effort; says what is uncertain.
    pub caveat: Option<String>,
}

/// An open file of a process. (The fd report belongs to npfiles; the trait
/// carries it so that both sources answer the same question.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFile {
    pub fd: i32,
    /// Where the descriptor points, as /proc/PID/fd/N reads.
    pub target: OsString,
}

/// Read access to a target's memory.
pub trait Memory {
    /// Copy target memory at `addr` into `buf`. Returns how many bytes were
    /// copied, counted from `addr`; fewer than `buf.len()` when the rest is
    /// unavailable. Memory a core does not hold is an error, never zeros.
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize>;
}

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
    /// /proc/PID/smaps. `None` where the source records no use (a core).
    fn mappings_with_usage(&self) -> Result<Option<Vec<(Mapping, MappingUsage)>>> {
        Ok(None)
    }

    /// The threads, main thread first.
    fn threads(&self) -> Result<Vec<Thread>>;

    /// The thread ids, main thread first: [`ProcessTarget::threads`]
    /// without the per-thread details (cheaper on a live process).
    fn thread_ids(&self) -> Result<Vec<i32>> {
        Ok(self.threads()?.iter().map(|t| t.tid).collect())
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

    /// The open file descriptors. A kernel core has none and says so.
    fn fds(&self) -> Result<Vec<OpenFile>>;

    /// The open file descriptors described in detail (stat, fdinfo,
    /// sockets; see [`crate::openfiles`]). Only a live process can; a core
    /// records no descriptors, and its [`ProcessTarget::fds`] says so.
    fn open_files(&self, _options: crate::openfiles::Options) -> Result<crate::openfiles::FdTable> {
        self.fds()?;
        Err(Error::not_available(
            "this source lists descriptors but cannot describe them",
        ))
    }

    /// The signal that ended the process (cores only).
    fn fatal_signal(&self) -> Option<SignalInfo> {
        None
    }

    /// The directory the target's paths resolve under: `/proc/PID/root`
    /// for a live process (so a process in a container resolves its own
    /// files), `/` or a sysroot for a core.
    fn root_dir(&self) -> Result<&RootDir>;

    /// Open a regular file by a path the target uses (a mapped file, say),
    /// resolved under [`ProcessTarget::root_dir`].
    fn open_mapped_file(&self, path: &Path) -> Result<File> {
        self.root_dir()?
            .open_file(path)
            .map_err(|e| Error::io(path, e))
    }

    /// The error for a refused ptrace attach (a live process names the
    /// cause and the fix; a core is never attached to).
    fn attach_refused(&self) -> Error {
        Error::not_available("this target cannot be stopped")
    }

    /// Problems found in the source itself (a truncated or damaged core).
    /// A tool prints them as warnings and exits 1.
    fn problems(&self) -> &[String] {
        &[]
    }

    /// Warnings that came up while reading (for example, a file on this
    /// machine that is not the one a core's process had mapped). Drains them.
    fn take_notices(&self) -> Vec<String> {
        Vec::new()
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
                return Err(Error::not_available(format!(
                    "string at {addr:#x} is longer than {max} bytes"
                )));
            }
        }
        if out.len() > max {
            return Err(Error::not_available(format!(
                "string at {addr:#x} is longer than {max} bytes"
            )));
        }
        Ok(OsStr::from_bytes(&out).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psargs_matches_the_kernel() {
        assert_eq!(psargs_from_arg_area(b"node\0app.js\0"), "node app.js");
        assert_eq!(psargs_from_arg_area(b"a\0\0b\0"), "a  b");
        assert_eq!(psargs_from_arg_area(b"x \0"), "x");
        assert_eq!(psargs_from_arg_area(b"title\0\0\0\0"), "title");
        let long: Vec<u8> = std::iter::repeat_n(b'x', 200).collect();
        assert_eq!(psargs_from_arg_area(&long).len(), PSARGS_MAX);
        assert_eq!(psargs_from_arg_area(b""), "");
    }

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
}
