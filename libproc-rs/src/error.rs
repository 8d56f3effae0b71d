//! The one error type of the library.
//!
//! Every variant carries the subject it concerns (a PID, a path, an address)
//! so that a front-end can print `npX: OPERAND: cause` without guessing. The
//! `Display` text is the *cause* only; the operand is printed by the caller,
//! which knows how the user spelled it.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::escape::escape_path;

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the kernel refused us access to a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionCause {
    /// The target runs as another user and we lack CAP_SYS_PTRACE.
    OtherUser {
        target_uid: u32,
        target_user: Option<String>,
        our_uid: u32,
    },
    /// The Yama LSM (`kernel.yama.ptrace_scope`) forbids it.
    PtraceScope { level: u32 },
    /// The target made itself non-dumpable (setuid, prctl(PR_SET_DUMPABLE, 0)),
    /// so only CAP_SYS_PTRACE opens it.
    NotDumpable,
    /// We run as root but without CAP_SYS_PTRACE (a container that drops it).
    MissingCapability,
    /// The kernel said no and none of the usual causes applies.
    Unknown,
}

impl fmt::Display for PermissionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermissionCause::OtherUser {
                target_uid,
                target_user,
                our_uid,
            } => {
                let who = match target_user {
                    Some(name) => format!("user {name} (uid {target_uid})"),
                    None => format!("uid {target_uid}"),
                };
                write!(
                    f,
                    "the process belongs to {who} and we run as uid {our_uid}; \
                     run as that user, or as root / with CAP_SYS_PTRACE"
                )
            }
            PermissionCause::PtraceScope { level } => write!(
                f,
                "kernel.yama.ptrace_scope is {level}; run with CAP_SYS_PTRACE (e.g. sudo) \
                 or lower it with `sysctl kernel.yama.ptrace_scope=0`"
            ),
            PermissionCause::NotDumpable => write!(
                f,
                "the process is not dumpable (setuid or PR_SET_DUMPABLE=0); \
                 only root / CAP_SYS_PTRACE may read it"
            ),
            PermissionCause::MissingCapability => write!(
                f,
                "we run as root but without CAP_SYS_PTRACE; add that capability \
                 (e.g. docker run --cap-add SYS_PTRACE)"
            ),
            PermissionCause::Unknown => write!(
                f,
                "the kernel refused access (an LSM such as SELinux or AppArmor may forbid it); \
                 try as root / with CAP_SYS_PTRACE"
            ),
        }
    }
}

/// Everything that can go wrong while opening or reading a target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such process")]
    NoSuchProcess { pid: i32 },

    /// An operand of digits too large to be a PID.
    #[error("no such process")]
    PidOutOfRange,

    /// An operand that must be a PID (npgcore dumps live processes only).
    #[error("not a process id")]
    NotAProcessId,

    #[error("process exited while it was being read")]
    ProcessGone { pid: i32 },

    #[error("process is a zombie (defunct): it has exited and has no memory left to read")]
    Zombie { pid: i32 },

    #[error("process is a kernel thread: it has no user address space")]
    KernelThread { pid: i32 },

    #[error("permission denied: {cause}")]
    PermissionDenied { pid: i32, cause: PermissionCause },

    #[error("no such file or directory")]
    NotFound { path: PathBuf },

    #[error("is a directory, not a core file")]
    IsDirectory { path: PathBuf },

    #[error("not a core file: {what}")]
    NotCore { path: PathBuf, what: String },

    #[error("unsupported core: {what}")]
    Unsupported { path: PathBuf, what: String },

    #[error("corrupt core: {what}")]
    Corrupt { path: PathBuf, what: String },

    #[error("memory at {addr:#x} is not available{}", reason_suffix(.reason))]
    MemoryUnavailable { addr: u64, reason: &'static str },

    /// A string longer than a reader allows (a corrupt or hostile target).
    #[error("string at {addr:#x} is longer than {max} bytes")]
    StringTooLong { addr: u64, max: usize },

    #[error("the environment is larger than 64 MiB")]
    EnvironTooLarge,

    #[error("the environ array has no end")]
    EnvironUnterminated,

    /// Neither the current environment nor the initial one could be had.
    #[error("{current}; and {initial}")]
    NoEnvironment {
        current: Box<NoCurrentEnviron>,
        initial: Box<Error>,
    },

    /// A core's initial stack (argv, envp) could not be recovered.
    #[error("the initial environment is not available: {why}")]
    NoInitialStack { why: NotRecovered },

    #[error("the core has no {what} ({note})")]
    MissingNote {
        what: &'static str,
        note: &'static str,
    },

    #[error("no root directory")]
    NoRootDir,

    /// An ELF file the target mapped that `object` cannot read.
    #[error("{}: {what}", escape_path(.path))]
    BadElf { path: PathBuf, what: String },

    /// A thread has a tracer already (gdb, strace): it can have only one,
    /// whatever our privileges.
    #[error(
        "thread {tid} is already being traced by process {tracer} ({}); a thread can have only \
         one tracer: detach that one first",
        crate::escape::escape_bytes(.comm)
    )]
    AlreadyTraced {
        tid: i32,
        tracer: i32,
        comm: Vec<u8>,
    },

    #[error("the process has an empty argument vector")]
    EmptyArgv,

    /// A core file: neither the kernel nor gdb's gcore records descriptors.
    #[error("a Linux core file records no open files")]
    NoDescriptorTable,

    /// A file on disk is not the one the process had mapped at that path.
    #[error(
        "{} is not the file the process mapped (build-id {in_memory} in memory, {on_disk} on \
         disk); it is not used",
        escape_path(.path)
    )]
    WrongFile {
        path: PathBuf,
        in_memory: String,
        on_disk: String,
    },

    /// A compressed or piped core could not be copied to a temporary file
    /// (under `dir`, TMPDIR) to be mapped; `written` is how much had been.
    #[error("{}", temp_file_text(.dir, .written, .source))]
    TempFile {
        path: PathBuf,
        dir: PathBuf,
        written: u64,
        source: io::Error,
    },

    /// npgcore: the core's name is taken (it never replaces a file).
    #[error(
        "{} exists; npgcore does not replace a file: remove it or give another prefix (-o)",
        escape_path(.path)
    )]
    CoreExists { path: PathBuf },

    /// npgcore: the file system filled up; the partial core is removed.
    #[error(
        "no room in {} for the core: it needs {needed} bytes ({written} were written); \
         the partial file is removed",
        escape_path(.dir)
    )]
    NoRoomForCore {
        dir: PathBuf,
        needed: u64,
        written: u64,
    },

    /// npgcore: the core cannot be written in `dir`.
    #[error("cannot write a core in {}: {source}", escape_path(.dir))]
    CoreOutput { dir: PathBuf, source: io::Error },

    /// npgcore was asked to stop by a signal: the target runs on.
    #[error("interrupted by {signal}: the target runs on and no core was written")]
    Interrupted { signal: &'static str },

    #[error("{}: {source}", escape_path(.path))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn temp_file_text(dir: &std::path::Path, written: &u64, source: &io::Error) -> String {
    let dir = escape_path(dir);
    let written = format!("{:.1} MiB written", *written as f64 / (1024.0 * 1024.0));
    match source.raw_os_error() {
        Some(nix::libc::ENOSPC | nix::libc::EDQUOT) => format!(
            "no room in {dir} for the uncompressed core ({source}, {written}); \
             set TMPDIR to a directory with more space"
        ),
        _ => format!("cannot copy the core to a temporary file in {dir}: {source}"),
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True for errors that mean the process vanished: a caller iterating
    /// over threads or fds skips the item instead of failing.
    pub fn is_gone(&self) -> bool {
        match self {
            Error::ProcessGone { .. } | Error::NoSuchProcess { .. } => true,
            Error::Io { source, .. } => source.raw_os_error() == Some(nix::libc::ESRCH),
            _ => false,
        }
    }
}

/// Why the initial stack could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRecovered {
    #[error("the core has no auxiliary vector")]
    NoAuxv,
    #[error("the initial stack is not in the core (no copy of the auxiliary vector found)")]
    NoAuxvCopy,
    #[error("initial stack unreadable at {0:#x}")]
    Unreadable(u64),
    #[error("the auxiliary vector is at address 0")]
    AuxvAtZero,
    #[error("no NULL before the auxiliary vector")]
    NoNullBeforeAuxv,
    #[error("initial stack has no argument count")]
    NoRoomForArgc,
    #[error("argument count not found on the initial stack")]
    ArgcNotFound,
    #[error("argument strings are not in the core")]
    StringsNotInCore,
}

/// Why the current environment could not be read through `environ`.
#[derive(Debug, thiserror::Error)]
pub enum NoCurrentEnviron {
    #[error("{0}")]
    Mappings(Error),
    #[error("no executable or C library is mapped")]
    NoModules,
    #[error("no environ symbol in the executable or the C library (static or stripped binary?)")]
    Undefined,
    #[error("cannot resolve environ: {0}")]
    Denied(Error),
    #[error("cannot resolve environ: {}", .0.join("; "))]
    Skipped(Vec<String>),
    /// `environ` was found only in the C library, which is left unused
    /// (NULL) when the executable takes a copy of it; the executable
    /// could not be searched.
    #[error(
        "{}; the C library's environ (in {}) is NULL, as it is when the executable holds \
         the copy the program uses",
        .skipped.join("; "),
        escape_path(.module)
    )]
    ExecutableUnsearched {
        skipped: Vec<String>,
        module: PathBuf,
    },
    #[error("cannot read the environ array ({symbol} in {}): {source}", escape_path(.module))]
    Unreadable {
        symbol: String,
        module: PathBuf,
        source: Error,
    },
}
