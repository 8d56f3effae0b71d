//! Holding a whole process still for a core file, and what /proc tells a
//! core writer before and after the hold.
//!
//! [`LiveProcess::freeze`] stops every thread together, with
//! `capture.rs`'s [`Seized`] (PTRACE_SEIZE + INTERRUPT; the operator's
//! signals held back while any thread is held; detached in `Drop`, so a
//! process that was stopped before stays stopped, and the kernel lets
//! everything go if this process dies). Threads that appear while the
//! others stop are caught too: the task list is read again after each
//! round of stops until no new thread shows. While the [`Frozen`] lives,
//! nothing of the target runs: its register sets and memory are copied
//! from a consistent image.

use std::collections::HashSet;
use std::fs::File;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::ptrace;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;
use procfs::FromRead;
use std::io::IoSliceMut;

use super::LiveProcess;
use super::capture::{Seized, StopWaiter, Waited, already_traced, registers_from};
use crate::error::{Error, Result};
use crate::parse::maps::Mapping;
use crate::parse::vmflags::{DumpArea, DumpAreaParser, parse_coredump_filter};
use crate::target::capture::ThreadLost;
use crate::target::{ProcessTarget, Registers};

/// How many times the task list is read again for threads that appeared
/// while the others were being stopped (a thread creating threads
/// without pause is caught within a few).
const SEIZE_ROUNDS: usize = 64;

/// The regsets PTRACE_GETREGSET names by their core note types.
const NT_PRFPREG: i32 = crate::parse::notes::NT_FPREGSET as i32;
const NT_X86_XSTATE: i32 = crate::parse::notes::NT_X86_XSTATE as i32;

/// The largest XSAVE area read (AMX's is about 11 KiB); the kernel says
/// how much of it the thread's state fills.
const XSTATE_MAX: usize = 16 * 1024;

/// One stopped thread's register sets.
#[derive(Debug, Clone)]
pub struct FrozenThread {
    pub tid: i32,
    pub registers: Registers,
    /// `user_fpregs_struct` (512 bytes), as `NT_FPREGSET` holds it.
    pub fpregs: Vec<u8>,
    /// The XSAVE area, as `NT_X86_XSTATE` holds it; `None` where the
    /// kernel gives none.
    pub xstate: Option<Vec<u8>>,
}

/// A process with every thread stopped; they run again when it is dropped
/// (or [`Frozen::thaw`]ed).
#[derive(Debug)]
pub struct Frozen<'a> {
    process: &'a LiveProcess,
    /// Declared before the waiter: dropped (detached) first.
    seized: Vec<Seized>,
    /// Seized threads that did not stop in time.
    late: Vec<Seized>,
    threads: Vec<FrozenThread>,
    lost: Vec<(i32, ThreadLost)>,
    pagemap: Option<File>,
    since: Instant,
    _waiter: StopWaiter,
}

impl LiveProcess {
    /// Stop every thread of the process and copy their register sets.
    ///
    /// A refusal (another user's process, a tracer already attached) is an
    /// error before anything is stopped; a thread that exits meanwhile is
    /// listed in [`Frozen::lost`].
    pub fn freeze(&self) -> Result<Frozen<'_>> {
        let pid = self.pid_i();
        let mut frozen = Frozen {
            process: self,
            seized: Vec::new(),
            late: Vec::new(),
            threads: Vec::new(),
            lost: Vec::new(),
            pagemap: None,
            since: Instant::now(),
            _waiter: StopWaiter::new(),
        };
        let mut tried = HashSet::new();
        for _ in 0..SEIZE_ROUNDS {
            let tids = match self.thread_ids() {
                Ok(t) => t,
                Err(e) if frozen.seized.is_empty() => return Err(e),
                Err(_) => break,
            };
            let new: Vec<i32> = tids.into_iter().filter(|t| tried.insert(*t)).collect();
            if new.is_empty() {
                break;
            }
            let mut batch = Vec::with_capacity(new.len());
            for tid in new {
                match Seized::seize(tid) {
                    Ok(s) => batch.push(s),
                    Err(Errno::ESRCH) => frozen.lost.push((tid, ThreadLost::ExitedBeforeStop)),
                    // A zombie leader (its other threads run on) refuses
                    // the seize as a stranger would: it is not a refusal.
                    Err(_) if super::capture::thread_state(pid, tid) == Some('Z') => {
                        frozen.lost.push((tid, ThreadLost::Zombie))
                    }
                    Err(Errno::EPERM | Errno::EACCES)
                        if frozen.seized.is_empty() && batch.is_empty() =>
                    {
                        return Err(
                            already_traced(pid, tid).unwrap_or_else(|| self.attach_refused())
                        );
                    }
                    Err(e) => frozen.lost.push((tid, ThreadLost::NotStopped(e))),
                }
            }
            for mut s in batch {
                let tid = s.tid();
                match s.wait_stop(pid, &frozen._waiter) {
                    Waited::Stopped => frozen.seized.push(s),
                    Waited::Exited => frozen.lost.push((tid, ThreadLost::ExitedWhileStopping)),
                    Waited::Late(why) => {
                        frozen.lost.push((tid, why));
                        frozen.late.push(s);
                    }
                }
            }
        }
        if frozen.seized.is_empty() {
            return Err(Error::ProcessGone { pid });
        }
        // The leader first, as the kernel writes it (and as readers take
        // the first NT_PRSTATUS for the process's).
        frozen.seized.sort_by_key(|s| (s.tid() != pid, s.tid()));
        for s in frozen.seized.iter().filter(|s| s.is_stopped()) {
            match regsets(s.tid()) {
                Ok(t) => frozen.threads.push(t),
                Err(e) => frozen.lost.push((s.tid(), ThreadLost::Registers(e))),
            }
        }
        if frozen.threads.is_empty() {
            return Err(Error::ProcessGone { pid });
        }
        Ok(frozen)
    }
}

impl Frozen<'_> {
    /// The stopped threads, the leader first.
    pub fn threads(&self) -> &[FrozenThread] {
        &self.threads
    }

    /// Threads that could not be stopped or read, and why.
    pub fn lost(&self) -> &[(i32, ThreadLost)] {
        &self.lost
    }

    /// How long the first thread has been held.
    pub fn held(&self) -> Duration {
        self.since.elapsed()
    }

    /// The mappings now, while nothing runs (one read of /proc/PID/maps).
    pub fn mappings(&self) -> Result<Vec<Mapping>> {
        self.process.mappings()
    }

    /// Whether each of `count` pages from `start` holds data the process
    /// could read back (present in memory or in swap), from
    /// /proc/PID/pagemap, appended to `out`. Where pagemap cannot be read,
    /// every page counts as holding data.
    pub fn pages_with_data(&mut self, start: u64, count: usize, out: &mut Vec<bool>) {
        const PRESENT: u64 = 1 << 63;
        const SWAPPED: u64 = 1 << 62;
        let base = out.len();
        out.resize(base + count, true);
        if self.pagemap.is_none() {
            self.pagemap = File::open(self.process.dir.join("pagemap")).ok();
        }
        let Some(file) = &self.pagemap else {
            return;
        };
        let mut i = base;
        super::pagemap_entries(file, start / 4096, count as u64, |e| {
            out[i] = e & (PRESENT | SWAPPED) != 0;
            i += 1;
        });
    }

    /// Copy memory at `addr` into `buf`: `process_vm_readv`, and where that
    /// faults (a page the process itself may not read, PROT_NONE),
    /// /proc/PID/mem, which reads what a debugger may. Returns how many
    /// bytes were copied from `addr` on; fails when not even the first
    /// byte can be.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: buf.len(),
        }];
        let mut local = [IoSliceMut::new(buf)];
        match process_vm_readv(Pid::from_raw(self.process.mem_tid), &mut local, &remote) {
            Ok(n) if n > 0 => Ok(n),
            Err(Errno::ESRCH) => Err(Error::ProcessGone {
                pid: self.process.pid_i(),
            }),
            _ => self.process.read_via_mem_file(addr, buf),
        }
    }

    /// Let every thread run again; how long the first was held.
    pub fn thaw(mut self) -> Duration {
        for s in self.seized.iter_mut().chain(self.late.iter_mut()) {
            s.detach();
        }
        self.since.elapsed()
    }
}

/// A stopped thread's general, FP and extended register sets.
fn regsets(tid: i32) -> std::result::Result<FrozenThread, Errno> {
    let regs = ptrace::getregs(Pid::from_raw(tid))?;
    let mut fpregs = vec![0u8; 512];
    let n = get_regset(tid, NT_PRFPREG, &mut fpregs)?;
    fpregs.truncate(n);
    let mut xstate = vec![0u8; XSTATE_MAX];
    let xstate = get_regset(tid, NT_X86_XSTATE, &mut xstate).ok().map(|n| {
        xstate.truncate(n);
        xstate
    });
    Ok(FrozenThread {
        tid,
        registers: registers_from(&regs),
        fpregs,
        xstate,
    })
}

/// `PTRACE_GETREGSET` of `n_type` into `buf`; how many bytes it filled.
#[allow(unsafe_code)]
fn get_regset(tid: i32, n_type: i32, buf: &mut [u8]) -> std::result::Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the kernel writes at most iov_len bytes to iov_base, which
    // is `buf`, and updates iov_len, a local.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            n_type as usize as *mut libc::c_void,
            (&raw mut iov).cast::<libc::c_void>(),
        )
    };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(iov.iov_len.min(buf.len()))
    }
}

/// A thread's figures for its `NT_PRSTATUS` and the process's
/// `NT_PRPSINFO`, from /proc/PID/task/TID/stat and status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskFigures {
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub nice: i64,
    /// The kernel's task flags (`PF_*`).
    pub flags: u64,
    pub state: char,
    /// User, system, children's user and children's system time, in
    /// microseconds.
    pub times_us: [u64; 4],
    /// Signals pending for the thread (`SigPnd`) and blocked (`SigBlk`).
    pub sigpend: u64,
    pub sighold: u64,
}

impl LiveProcess {
    /// /proc/PID/coredump_filter (the kernel's default, 0x33, where it
    /// cannot be read).
    pub fn coredump_filter(&self) -> u64 {
        std::fs::read(self.dir.join("coredump_filter"))
            .ok()
            .and_then(|b| parse_coredump_filter(&b))
            .unwrap_or(0x33)
    }

    /// Each mapping with its VmFlags and whether it holds anonymous pages,
    /// from /proc/PID/smaps.
    pub fn dump_areas(&self) -> Result<Vec<DumpArea>> {
        let mut parser = DumpAreaParser::default();
        self.read_lines("smaps", |l| parser.line(l))?;
        Ok(parser.finish())
    }

    /// The auxiliary vector's bytes as the kernel gives them.
    pub fn auxv_bytes(&self) -> Result<Vec<u8>> {
        self.read_file("auxv")
    }

    /// A tracer already attached to the process (gdb, strace), as the
    /// error to report.
    pub fn already_traced(&self) -> Option<Error> {
        already_traced(self.pid_i(), self.mem_tid)
    }

    /// One thread's figures; `None` once it has exited.
    pub fn task_figures(&self, tid: i32) -> Option<TaskFigures> {
        let dir = format!("/proc/{}/task/{tid}", self.pid_i());
        let stat = procfs::process::Stat::from_file(format!("{dir}/stat")).ok()?;
        let status = procfs::process::Status::from_file(format!("{dir}/status")).ok();
        let tick_us = 1_000_000 / procfs::ticks_per_second().max(1);
        let us = |ticks: u64| ticks.saturating_mul(tick_us);
        Some(TaskFigures {
            ppid: stat.ppid,
            pgrp: stat.pgrp,
            sid: stat.session,
            nice: stat.nice,
            flags: u64::from(stat.flags),
            state: stat.state,
            times_us: [
                us(stat.utime),
                us(stat.stime),
                us(stat.cutime.max(0) as u64),
                us(stat.cstime.max(0) as u64),
            ],
            sigpend: status.as_ref().map_or(0, |s| s.sigpnd),
            sighold: status.as_ref().map_or(0, |s| s.sigblk),
        })
    }
}
