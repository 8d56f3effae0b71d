//! Capturing live threads: each one's registers and a window of its stack,
//! with the thread stopped for as short a time as that copy takes.
//!
//! A thread is stopped with `PTRACE_SEIZE` + `PTRACE_INTERRUPT`, never
//! `PTRACE_ATTACH` or SIGSTOP: if this process dies at any moment (SIGINT,
//! SIGKILL, a panic), the kernel detaches and the thread runs on. A
//! `Seized` guard detaches in `Drop` for every other way out.
//!
//! The signals an operator sends from the terminal or with `kill` (Ctrl-Z's
//! SIGTSTP, Ctrl-C's SIGINT, SIGTERM, SIGHUP, ...) are blocked while any
//! thread is seized ([`SignalsHeld`]): one that comes then is delivered as
//! soon as the thread is let go, so stopping npstack never leaves a thread
//! of the target stopped with it. SIGKILL and SIGSTOP cannot be blocked:
//! after SIGKILL the kernel lets every thread go as npstack dies; after
//! SIGSTOP a thread held at that moment stays stopped until npstack is
//! continued (SIGCONT) or killed.

use procfs::FromRead;
use std::cell::Cell;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::ptrace;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::LiveProcess;
use crate::error::{Error, Result};
use crate::parse::task::stat_state;
use crate::target::capture::{
    CaptureRequest, Captured, StackWindow, StopMode, ThreadLost, WhileHeld,
};
use crate::target::{Mapping, Memory, ProcessTarget, Registers, Thread};

/// How many bytes of stack above the stack pointer are copied while a
/// thread is stopped. Deeper frames (callers that do not run while the
/// thread is blocked) are read after it runs again.
pub const STACK_WINDOW: u64 = 64 * 1024;

/// The x86_64 red zone below the stack pointer, copied too: a leaf
/// function may keep data there.
const RED_ZONE: u64 = 128;

/// How long to wait for a thread to stop before giving up on it.
const STOP_PATIENCE: Duration = Duration::from_secs(1);

/// How long to poll for a stop before looking at why it is late.
const STOP_SPIN: Duration = Duration::from_millis(2);

/// Capture the requested threads of `process`.
///
/// A thread that exits before or while it is stopped is reported with a
/// problem, not an error. A refusal on the first thread is an error for the
/// whole process (the same refusal would repeat for every thread).
pub(super) fn capture_threads(
    process: &LiveProcess,
    request: CaptureRequest<'_>,
    while_held: &mut dyn WhileHeld,
) -> Result<Vec<Captured>> {
    while_held.before_stopping();
    // Threads an earlier capture left seized: let go of those that have
    // stopped since; the others are not seized again (they cannot be).
    let mut still_late = process.late.take();
    still_late.retain_mut(|s| {
        s.detach();
        !s.done
    });
    let mut capture = Capture {
        process,
        pid: process.pid(),
        mappings: request.mappings,
        waiter: StopWaiter::new(),
        late: Vec::new(),
        still_late: still_late.iter().map(|s| s.tid()).collect(),
    };
    let mut out = match request.mode {
        StopMode::OneByOne => capture.one_by_one(request.threads, while_held)?,
        StopMode::Snapshot => capture.snapshot(request.threads, while_held)?,
    };
    for s in &mut capture.late {
        s.detach();
    }
    // Kept for the next capture, without holding the operator's signals.
    for mut s in capture.late.drain(..).filter(|s| !s.done) {
        s.signals = None;
        still_late.push(s);
    }
    *process.late.borrow_mut() = still_late;
    capture.forget_reused_tids(&mut out);
    Ok(out)
}

/// One capture of a process's threads.
struct Capture<'a> {
    process: &'a LiveProcess,
    pid: i32,
    mappings: &'a [Mapping],
    waiter: StopWaiter,
    /// Threads that did not stop in time: let go at the end if their stop
    /// has come by then (else the kernel does it when we exit).
    late: Vec<Seized>,
    /// Threads an earlier capture seized that have not stopped yet: still
    /// ours, so not seized again.
    still_late: Vec<i32>,
}

impl Capture<'_> {
    /// Stop, copy and resume each thread in turn.
    fn one_by_one(
        &mut self,
        threads: &[Thread],
        while_held: &mut dyn WhileHeld,
    ) -> Result<Vec<Captured>> {
        let mut out = Vec::with_capacity(threads.len());
        for thread in threads {
            // The window's pages are faulted in before the thread stops,
            // not while it waits for the copy.
            let window = window_buffer();
            let seized_at = Instant::now();
            if self.still_late.contains(&thread.tid) {
                out.push(Captured::lost(thread, ThreadLost::Uninterruptible));
                continue;
            }
            let captured = match Seized::seize(thread.tid) {
                Ok(seized) => self.hold_one(thread, seized, seized_at, window, while_held),
                Err(Errno::ESRCH) => Captured::lost(thread, ThreadLost::ExitedBeforeStop),
                Err(_) if self.is_zombie(thread) => Captured::lost(thread, ThreadLost::Zombie),
                Err(e) => {
                    // Refused before any thread could be stopped: the same
                    // refusal would repeat for every thread.
                    let none_yet = out.iter().all(|c: &Captured| c.registers.is_none());
                    if none_yet && let Some(err) = self.refusal(e, thread.tid) {
                        return Err(err);
                    }
                    Captured::lost(thread, ThreadLost::NotStopped(e))
                }
            };
            out.push(captured);
        }
        Ok(out)
    }

    /// Wait for one seized thread to stop, copy it, show the copy to
    /// `while_held`, and let it go.
    fn hold_one(
        &mut self,
        thread: &Thread,
        mut seized: Seized,
        seized_at: Instant,
        window: Vec<u8>,
        while_held: &mut dyn WhileHeld,
    ) -> Captured {
        match seized.wait_stop(self.pid, &self.waiter) {
            Waited::Stopped => {
                let copied = self.copy_stopped(thread, window);
                if let Ok(c) = &copied {
                    while_held.stopped(c);
                }
                seized.detach();
                let held = seized_at.elapsed();
                match copied {
                    Ok(mut c) => {
                        // Now that it runs: give back what the window did
                        // not use (the next window reuses those pages).
                        c.window.bytes.shrink_to_fit();
                        Captured {
                            held: Some(held),
                            ..c
                        }
                    }
                    Err(why) => Captured::lost(thread, why),
                }
            }
            Waited::Exited => Captured::lost(thread, ThreadLost::ExitedWhileStopping),
            Waited::Late(why) => {
                self.late.push(seized);
                Captured::lost(thread, why)
            }
        }
    }

    /// Stop every thread, copy them all, then let them all go.
    fn snapshot(
        &mut self,
        threads: &[Thread],
        while_held: &mut dyn WhileHeld,
    ) -> Result<Vec<Captured>> {
        let seized_at = Instant::now();
        let mut seized = self.seize_all(threads)?;
        let waited: Vec<Option<Waited>> = seized
            .iter_mut()
            .map(|s| s.as_mut().map(|s| s.wait_stop(self.pid, &self.waiter)))
            .collect();
        let mut out: Vec<Captured> = threads
            .iter()
            .zip(&seized)
            .zip(waited)
            .map(|((thread, s), w)| self.copy_held(thread, s.as_ref(), w, while_held))
            .collect();
        for s in seized.iter_mut().flatten() {
            s.detach();
        }
        let held = seized_at.elapsed();
        for c in out.iter_mut().filter(|c| c.registers.is_some()) {
            c.held = Some(held);
            c.window.bytes.shrink_to_fit();
        }
        self.late
            .extend(seized.into_iter().flatten().filter(|s| !s.done));
        Ok(out)
    }

    /// Seize every thread (`None` for one that could not be). A refusal
    /// before any thread is seized is an error.
    fn seize_all(&self, threads: &[Thread]) -> Result<Vec<Option<Seized>>> {
        let mut seized = Vec::with_capacity(threads.len());
        for thread in threads {
            if self.still_late.contains(&thread.tid) {
                seized.push(None);
                continue;
            }
            match Seized::seize(thread.tid) {
                Ok(s) => seized.push(Some(s)),
                Err(e) => {
                    if seized.iter().all(Option::is_none)
                        && !self.is_zombie(thread)
                        && let Some(err) = self.refusal(e, thread.tid)
                    {
                        return Err(err);
                    }
                    seized.push(None);
                }
            }
        }
        Ok(seized)
    }

    /// Copy one thread of a snapshot, held or not as `seized` and `waited`
    /// say.
    fn copy_held(
        &self,
        thread: &Thread,
        seized: Option<&Seized>,
        waited: Option<Waited>,
        while_held: &mut dyn WhileHeld,
    ) -> Captured {
        match (seized, waited) {
            (Some(s), Some(Waited::Stopped)) if s.stopped => {
                match self.copy_stopped(thread, Vec::new()) {
                    Ok(c) => {
                        while_held.stopped(&c);
                        c
                    }
                    Err(why) => Captured::lost(thread, why),
                }
            }
            (_, Some(Waited::Late(why))) => Captured::lost(thread, why),
            (None, _) if self.still_late.contains(&thread.tid) => {
                Captured::lost(thread, ThreadLost::Uninterruptible)
            }
            _ if self.is_zombie(thread) => Captured::lost(thread, ThreadLost::Zombie),
            _ => Captured::lost(thread, ThreadLost::ExitedBeforeStop),
        }
    }

    /// Copy a stopped thread's registers and stack window, into `bytes`
    /// (a [`window_buffer`], faulted in before the stop), or into a buffer
    /// of the window's size made now when `bytes` is too small (a
    /// snapshot, whose threads are all stopped by then: touching a whole
    /// window buffer each would lengthen every thread's hold).
    fn copy_stopped(
        &self,
        thread: &Thread,
        mut bytes: Vec<u8>,
    ) -> std::result::Result<Captured, ThreadLost> {
        let regs = ptrace::getregs(Pid::from_raw(thread.tid)).map_err(ThreadLost::Registers)?;
        let registers = registers_from(&regs);
        let mut captured = Captured::with_registers(thread, registers);
        if let Some((start, end)) = window_range(registers.rsp(), self.mappings) {
            let len = (end - start) as usize;
            if bytes.len() < len {
                bytes = vec![0u8; len];
            }
            bytes.truncate(len);
            if let Ok(n) = self.process.read_memory(start, &mut bytes) {
                bytes.truncate(n);
                captured.window = StackWindow { start, bytes };
            }
        }
        Ok(captured)
    }

    /// A TID that was ours when listed but whose thread exited and whose
    /// number another process's thread then took is not ours any more.
    fn forget_reused_tids(&self, out: &mut [Captured]) {
        let pid = self.pid;
        for c in out {
            if c.registers.is_some() && !Path::new(&format!("/proc/{pid}/task/{}", c.tid)).exists()
            {
                c.registers = None;
                c.window = StackWindow::default();
                c.problem = Some(ThreadLost::ExitedWhileRead);
            }
        }
    }

    /// An exited thread whose group lives on (a zombie leader) cannot be
    /// stopped and has nothing to show. Checked only when a stop fails.
    fn is_zombie(&self, thread: &Thread) -> bool {
        thread_state(self.pid, thread.tid) == Some('Z')
    }

    /// The error for a seize that was refused, `None` when `e` is not a
    /// refusal.
    fn refusal(&self, e: Errno, tid: i32) -> Option<Error> {
        match e {
            Errno::EPERM | Errno::EACCES => {
                Some(already_traced(self.pid, tid).unwrap_or_else(|| self.process.attach_refused()))
            }
            _ => None,
        }
    }
}

/// How a wait for a stop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Waited {
    Stopped,
    Exited,
    /// It did not stop in time, and why, as far as /proc tells.
    Late(ThreadLost),
}

/// `waitpid(tid, __WALL | WNOHANG)`: the raw status, or `None` while
/// nothing has happened. Raw, because nix's `WaitStatus` cannot carry a
/// real-time signal (it fails with EINVAL after the kernel has already
/// handed over the stop, and the signal would be lost).
#[allow(unsafe_code)]
fn poll_status(tid: i32) -> std::result::Result<Option<i32>, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes one int through a pointer to a local.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        match r {
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(Errno::last()),
            0 => return Ok(None),
            _ => return Ok(Some(status)),
        }
    }
}

/// `PTRACE_DETACH`, handing back signal `sig` (0 for none). Raw for the
/// same reason: real-time signals.
#[allow(unsafe_code)]
fn detach_with(tid: i32, sig: i32) -> std::result::Result<(), Errno> {
    // SAFETY: PTRACE_DETACH reads no memory; the signal travels by value in
    // the data argument.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            sig as libc::c_long as *mut libc::c_void,
        )
    };
    if r == -1 { Err(Errno::last()) } else { Ok(()) }
}

/// Sleeps until a child of ours (a thread we trace) changes state: SIGCHLD
/// is blocked and read through a signalfd, so the wait has a time limit and
/// costs no CPU (a busy wait would hold the CPU a resumed thread needs).
#[derive(Debug)]
pub(super) struct StopWaiter {
    fd: Option<SignalFd>,
    /// SIGCHLD was blocked here (not before): unblock it at the end.
    unblock: bool,
}

impl StopWaiter {
    pub(super) fn new() -> StopWaiter {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        let mut old = SigSet::empty();
        let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old)).is_ok();
        let fd = blocked
            .then(|| {
                SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
            })
            .flatten();
        StopWaiter {
            fd,
            unblock: blocked && !old.contains(Signal::SIGCHLD),
        }
    }

    /// Sleep until SIGCHLD or `limit`, whichever comes first.
    fn sleep(&self, limit: Duration) {
        let Some(fd) = &self.fd else {
            // No signalfd: a short sleep between polls.
            std::thread::sleep(limit.min(Duration::from_micros(100)));
            return;
        };
        let ms = u16::try_from(limit.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0 {
            // Drain: one SIGCHLD may stand for several stops, and the
            // caller polls every thread it waits for anyway.
            while let Ok(Some(_)) = fd.read_signal() {}
        }
    }
}

impl Drop for StopWaiter {
    fn drop(&mut self) {
        if let Some(fd) = &self.fd {
            while let Ok(Some(_)) = fd.read_signal() {}
        }
        if self.unblock {
            // Only SIGCHLD: the mask is not put back whole, which would
            // unblock the signals a thread still seized holds back.
            let mut mask = SigSet::empty();
            mask.add(Signal::SIGCHLD);
            let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&mask), None);
        }
    }
}

/// A thread we have seized; detached on drop.
#[derive(Debug)]
pub(super) struct Seized {
    tid: i32,
    /// Stopped (we took its stop) and not yet detached.
    stopped: bool,
    /// A signal that arrived while we held the thread, to hand back on
    /// detach (0: none).
    pending: i32,
    /// Detached, exited, or given up on.
    done: bool,
    /// The operator's signals are held back while this thread may stop;
    /// dropped (after the detach) when it is let go.
    signals: Option<SignalsHeld>,
}

impl Seized {
    pub(super) fn seize(tid: i32) -> nix::Result<Seized> {
        let pid = Pid::from_raw(tid);
        // Before the thread can stop: a Ctrl-Z from now on waits for the
        // detach.
        let signals = Some(SignalsHeld::take());
        ptrace::seize(pid, ptrace::Options::empty())?;
        let mut s = Seized {
            tid,
            stopped: false,
            pending: 0,
            done: false,
            signals,
        };
        if let Err(e) = ptrace::interrupt(pid) {
            // Nothing to wait for: the seize alone does not stop it.
            s.done = true;
            let _ = detach_with(tid, 0);
            return Err(e);
        }
        Ok(s)
    }

    /// Wait for the interrupt stop, sleeping until the kernel says a child
    /// changed state (SIGCHLD, read from `waiter`). A thread that has not
    /// stopped after a moment is looked at: one in uninterruptible sleep
    /// cannot stop until it wakes, so it is not waited for.
    pub(super) fn wait_stop(&mut self, pid: i32, waiter: &StopWaiter) -> Waited {
        let start = Instant::now();
        let mut looked = false;
        loop {
            if let Some(waited) = self.poll_stop() {
                return waited;
            }
            let waited = start.elapsed();
            if waited >= STOP_SPIN && !looked {
                looked = true;
                if let Some(why) = self.look(pid) {
                    return why;
                }
            }
            if waited > STOP_PATIENCE {
                return Waited::Late(ThreadLost::StopTimeout {
                    secs: STOP_PATIENCE.as_secs(),
                });
            }
            let until = if looked { STOP_PATIENCE } else { STOP_SPIN };
            waiter.sleep(until.saturating_sub(waited));
        }
    }

    /// How the wait ended, if it has: one `waitpid`, retried past a status
    /// that is neither a stop nor an exit.
    fn poll_stop(&mut self) -> Option<Waited> {
        loop {
            match poll_status(self.tid) {
                Ok(Some(status)) if libc::WIFSTOPPED(status) => {
                    self.took_stop(status);
                    return Some(Waited::Stopped);
                }
                Ok(Some(status)) if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) => {
                    self.done = true;
                    return Some(Waited::Exited);
                }
                Ok(Some(_)) => continue,
                Err(Errno::ECHILD) | Err(Errno::ESRCH) => {
                    self.done = true;
                    return Some(Waited::Exited);
                }
                Err(e) => return Some(Waited::Late(ThreadLost::WaitFailed(e))),
                Ok(None) => return None,
            }
        }
    }

    /// Why a thread that is slow to stop will not stop, if /proc says: it
    /// is in uninterruptible sleep, or gone.
    fn look(&mut self, pid: i32) -> Option<Waited> {
        match thread_state(pid, self.tid) {
            Some('D') => Some(Waited::Late(ThreadLost::Uninterruptible)),
            Some('Z') | None => {
                self.done = true;
                Some(Waited::Exited)
            }
            _ => None,
        }
    }

    /// Record a stop `waitpid` reported. A signal-delivery stop (no ptrace
    /// event) carries the thread's own signal: it is given back on detach.
    fn took_stop(&mut self, status: i32) {
        if status >> 16 == 0 {
            self.pending = libc::WSTOPSIG(status);
        }
        self.stopped = true;
    }

    /// Let the thread go. One that has not stopped yet cannot be detached:
    /// if its stop has arrived by now it is taken; otherwise the kernel
    /// detaches it when this process exits.
    pub(super) fn detach(&mut self) {
        if !self.done {
            if !self.stopped {
                match poll_status(self.tid) {
                    Ok(Some(status)) if libc::WIFSTOPPED(status) => self.took_stop(status),
                    _ => return,
                }
            }
            let _ = detach_with(self.tid, std::mem::take(&mut self.pending));
            self.done = true;
        }
        // A signal that came while it was held takes effect here.
        self.signals = None;
    }
}

impl Seized {
    pub(super) fn tid(&self) -> i32 {
        self.tid
    }

    /// Held in a stop we took, and not let go yet.
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped && !self.done
    }
}

impl Drop for Seized {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The signals held back while a thread is seized: those an operator sends
/// to stop or end a tool (job control from the terminal, Ctrl-C, Ctrl-\,
/// `kill`, a closed terminal).
const OPERATOR_SIGNALS: [Signal; 7] = [
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGHUP,
];

thread_local! {
    /// How many [`SignalsHeld`] this thread has, and which of the operator
    /// signals the first one blocked (the rest were blocked already).
    static HOLDING: Cell<(usize, SigSet)> = Cell::new((0, SigSet::empty()));
}

/// While one is alive, [`OPERATOR_SIGNALS`] are blocked in this thread;
/// when the last one goes, a signal that came meanwhile is delivered. The
/// tools capture on one thread, so a signal sent to the process waits too.
#[derive(Debug)]
struct SignalsHeld(());

impl SignalsHeld {
    fn take() -> SignalsHeld {
        HOLDING.with(|h| {
            let (n, blocked) = h.get();
            if n > 0 {
                h.set((n + 1, blocked));
                return;
            }
            let mut set = SigSet::empty();
            for sig in OPERATOR_SIGNALS {
                set.add(sig);
            }
            let mut old = SigSet::empty();
            let mut blocked = SigSet::empty();
            if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).is_ok() {
                for sig in OPERATOR_SIGNALS.into_iter().filter(|s| !old.contains(*s)) {
                    blocked.add(sig);
                }
            }
            h.set((1, blocked));
        });
        SignalsHeld(())
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        HOLDING.with(|h| {
            let (n, blocked) = h.get();
            if n == 1 {
                let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&blocked), None);
                h.set((0, SigSet::empty()));
            } else {
                h.set((n.saturating_sub(1), blocked));
            }
        });
    }
}

pub(super) fn registers_from(r: &libc::user_regs_struct) -> Registers {
    Registers([
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ])
}

/// A buffer for the largest stack window, written through so that its pages
/// are ours before a thread is stopped (a fresh allocation's first touch
/// costs a page fault per page, tens of microseconds for the window).
// Not `vec![0; len]`: that is calloc, which leaves fresh pages untouched.
#[allow(clippy::slow_vector_initialization)]
fn window_buffer() -> Vec<u8> {
    let len = (RED_ZONE + STACK_WINDOW) as usize;
    let mut bytes = Vec::with_capacity(len);
    bytes.resize(len, 0);
    bytes
}

/// The range of stack to copy for a stack pointer: from just below it to the
/// end of its mapping, at most [`STACK_WINDOW`].
fn window_range(sp: u64, mappings: &[Mapping]) -> Option<(u64, u64)> {
    let i = mappings.partition_point(|m| m.end <= sp);
    let m = mappings.get(i).filter(|m| m.contains(sp))?;
    let start = sp.saturating_sub(RED_ZONE).max(m.start);
    let end = sp.saturating_add(STACK_WINDOW).min(m.end);
    Some((start, end))
}

/// A thread's state letter from /proc/PID/task/TID/stat.
pub(super) fn thread_state(pid: i32, tid: i32) -> Option<char> {
    stat_state(&std::fs::read(format!("/proc/{pid}/task/{tid}/stat")).ok()?)
}

/// When a thread already has a tracer (gdb, strace), the error saying so:
/// a thread can have only one, whatever our privileges.
pub(super) fn already_traced(pid: i32, tid: i32) -> Option<Error> {
    let status =
        procfs::process::Status::from_file(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    let tracer = status.tracerpid;
    if tracer == 0 {
        return None;
    }
    let comm = std::fs::read(format!("/proc/{tracer}/comm")).unwrap_or_default();
    Some(Error::AlreadyTraced {
        tid,
        tracer,
        comm: comm.trim_ascii_end().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{MapName, Perms};

    fn map(start: u64, end: u64) -> Mapping {
        Mapping::new(start, end, Perms::default(), MapName::Anon)
    }

    #[test]
    fn window_stays_inside_the_stack_mapping() {
        let maps = [map(0x1000, 0x2000), map(0x10000, 0x40000)];
        assert_eq!(window_range(0x10010, &maps), Some((0x10000, 0x20010)));
        assert_eq!(window_range(0x3ff00, &maps), Some((0x3ff00 - 128, 0x40000)));
        assert_eq!(window_range(0x5000, &maps), None);
    }
}
