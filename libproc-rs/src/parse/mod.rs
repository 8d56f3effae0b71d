//! Parsers that take bytes and return records: no file, no process, no
//! target. Each is tested on literal input.
//!
//! - [`maps`]: `/proc/PID/maps` lines, and the mapping types.
//! - [`smaps`]: `/proc/PID/smaps`, each mapping's resident, anonymous and
//!   locked KiB.
//! - [`notes`]: an ELF core's notes (NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO,
//!   NT_FILE), and the register and signal types.
//! - [`auxv`]: the auxiliary vector, and what its entries mean.
//! - [`psargs`]: `pr_psargs` from an argument area, as the kernel builds it.
//! - [`fdinfo`]: `/proc/PID/fdinfo/N` and `/proc/PID/limits`.
//! - [`socket`]: the socket records both socket sources give.
//! - [`procnet`]: the socket tables in /proc/PID/net (tcp, tcp6, udp, udp6,
//!   unix).
//! - [`passwd`]: passwd(5) and group(5) files.
//! - [`task`]: NUL-separated lists (cmdline, environ) and a thread's
//!   `syscall` file.
//! - [`vmflags`]: what a core writer reads in smaps (VmFlags, anonymous
//!   pages) and `coredump_filter`.

pub mod auxv;
pub mod fdinfo;
pub mod maps;
pub mod notes;
pub mod passwd;
pub mod procnet;
pub mod psargs;
pub mod smaps;
pub mod socket;
pub mod task;
pub mod vmflags;
