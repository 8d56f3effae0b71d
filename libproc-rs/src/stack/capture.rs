//! Copying what a stack walk needs: a thread's registers and a window of its
//! stack, with the thread stopped for as short a time as that copy takes.
//!
//! A live thread is stopped with `PTRACE_SEIZE` + `PTRACE_INTERRUPT`, never
//! `PTRACE_ATTACH` or SIGSTOP: if this process dies at any moment (SIGINT,
//! SIGKILL, a panic), the kernel detaches and the thread runs on. A
//! `Seized` guard detaches in `Drop` for every other way out. A core's
//! threads are "captured" by taking the registers the core recorded.

use std::ffi::OsString;

use std::path::Path;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::ptrace;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::target::{Mapping, MemoryExt, ProcessTarget, Registers, Thread};

/// How many bytes of stack above the stack pointer are copied while a live
/// thread is stopped. Deeper frames (callers that do not run while the
/// thread is blocked) are read after it runs again.
pub const STACK_WINDOW: u64 = 64 * 1024;

/// The x86_64 red zone below the stack pointer, copied too: a leaf
/// function may keep data there.
const RED_ZONE: u64 = 128;

/// One thread's state, copied.
#[derive(Debug, Clone)]
pub struct Captured {
    pub tid: i32,
    pub name: Option<OsString>,
    pub registers: Option<Registers>,
    /// Stack bytes copied while the thread was stopped: start address and
    /// bytes. Empty for a core (its memory does not change).
    pub window: (u64, Vec<u8>),
    /// Why the thread could not be captured, when it could not.
    pub problem: Option<String>,
    /// How long a live thread was held stopped.
    pub held: Option<Duration>,
}

impl Captured {
    /// A word of stack from the window, if the window holds it.
    pub fn window_word(&self, addr: u64) -> Option<u64> {
        let (start, bytes) = &self.window;
        let off = usize::try_from(addr.checked_sub(*start)?).ok()?;
        let b = bytes.get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// A word of stack: from the window, else from the target's memory.
    pub fn stack_word(&self, target: &dyn ProcessTarget, addr: u64) -> Result<u64> {
        match self.window_word(addr) {
            Some(w) => Ok(w),
            None => target.read_u64(addr),
        }
    }
}

/// How live threads are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// One thread at a time: stop, copy, resume, next.
    OneByOne,
    /// Stop every thread, copy them all, then resume them all.
    Snapshot,
}

/// How long to wait for a thread to stop before giving up on it.
const STOP_PATIENCE: Duration = Duration::from_secs(1);

/// How long to poll for a stop before looking at why it is late.
const STOP_SPIN: Duration = Duration::from_millis(2);

/// How a wait for a stop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waited {
    Stopped,
    Exited,
    /// It did not stop in time; why, as far as /proc tells.
    Late(String),
}

/// `waitpid(tid, __WALL | WNOHANG)`: the raw status, or `None` while
/// nothing has happened. Raw, because nix's `WaitStatus` cannot carry a
/// real-time signal (it fails with EINVAL after the kernel has already
/// handed over the stop, and the signal would be lost).
#[allow(unsafe_code)]
fn poll_status(tid: i32) -> Result<Option<i32>, Errno> {
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
fn detach_with(tid: i32, sig: i32) -> Result<(), Errno> {
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
struct StopWaiter {
    fd: Option<SignalFd>,
    /// The signal mask to put back.
    old_mask: Option<SigSet>,
}

impl StopWaiter {
    fn new() -> StopWaiter {
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
            old_mask: blocked.then_some(old),
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
        if let Some(old) = &self.old_mask {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(old), None);
        }
    }
}

/// A thread we have seized; detached on drop.
#[derive(Debug)]
struct Seized {
    tid: i32,
    /// Stopped (we took its stop) and not yet detached.
    stopped: bool,
    /// A signal that arrived while we held the thread, to hand back on
    /// detach (0: none).
    pending: i32,
    /// Detached, exited, or given up on.
    done: bool,
}

impl Seized {
    fn seize(tid: i32) -> nix::Result<Seized> {
        let pid = Pid::from_raw(tid);
        ptrace::seize(pid, ptrace::Options::empty())?;
        let mut s = Seized {
            tid,
            stopped: false,
            pending: 0,
            done: false,
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
    fn wait_stop(&mut self, pid: i32, waiter: &StopWaiter) -> Waited {
        let start = Instant::now();
        let mut looked = false;
        loop {
            match poll_status(self.tid) {
                Ok(Some(status)) if libc::WIFSTOPPED(status) => {
                    self.took_stop(status);
                    return Waited::Stopped;
                }
                Ok(Some(status)) if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) => {
                    self.done = true;
                    return Waited::Exited;
                }
                Ok(Some(_)) => continue,
                Err(Errno::ECHILD) | Err(Errno::ESRCH) => {
                    self.done = true;
                    return Waited::Exited;
                }
                Err(e) => return Waited::Late(format!("waiting for it to stop failed: {e}")),
                Ok(None) => {}
            }
            let waited = start.elapsed();
            if waited >= STOP_SPIN && !looked {
                looked = true;
                match thread_state(pid, self.tid) {
                    Some('D') => {
                        return Waited::Late(
                            "it is in uninterruptible sleep (state D) and cannot stop until it \
                             wakes"
                                .into(),
                        );
                    }
                    Some('Z') | None => {
                        self.done = true;
                        return Waited::Exited;
                    }
                    _ => {}
                }
            }
            if waited > STOP_PATIENCE {
                return Waited::Late(format!(
                    "it did not stop within {} s",
                    STOP_PATIENCE.as_secs()
                ));
            }
            let until = if looked { STOP_PATIENCE } else { STOP_SPIN };
            waiter.sleep(until.saturating_sub(waited));
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
    fn detach(&mut self) {
        if self.done {
            return;
        }
        if !self.stopped {
            match poll_status(self.tid) {
                Ok(Some(status)) if libc::WIFSTOPPED(status) => self.took_stop(status),
                _ => return,
            }
        }
        let _ = detach_with(self.tid, std::mem::take(&mut self.pending));
        self.done = true;
    }
}

impl Drop for Seized {
    fn drop(&mut self) {
        self.detach();
    }
}

fn registers_from(r: &libc::user_regs_struct) -> Registers {
    Registers([
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ])
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

/// Copy a stopped thread's registers and stack window.
fn copy_stopped(
    target: &dyn ProcessTarget,
    thread: &Thread,
    mappings: &[Mapping],
) -> std::result::Result<Captured, String> {
    let regs = ptrace::getregs(Pid::from_raw(thread.tid))
        .map_err(|e| format!("could not read its registers: {e}"))?;
    let registers = registers_from(&regs);
    let mut window = (0, Vec::new());
    if let Some((start, end)) = window_range(registers.rsp(), mappings) {
        let mut buf = vec![0u8; (end - start) as usize];
        if let Ok(n) = target.read_memory(start, &mut buf) {
            buf.truncate(n);
            window = (start, buf);
        }
    }
    Ok(Captured {
        tid: thread.tid,
        name: thread.name.clone(),
        registers: Some(registers),
        window,
        problem: None,
        held: None,
    })
}

fn lost(thread: &Thread, why: impl Into<String>) -> Captured {
    Captured {
        tid: thread.tid,
        name: thread.name.clone(),
        registers: None,
        window: (0, Vec::new()),
        problem: Some(why.into()),
        held: None,
    }
}

/// Capture the given live threads.
///
/// A thread that exits before or while it is stopped is reported with a
/// problem, not an error. A refusal on the first thread is an error for the
/// whole process (the same refusal would repeat for every thread).
pub fn capture_live(
    target: &dyn ProcessTarget,
    threads: &[Thread],
    mappings: &[Mapping],
    mode: StopMode,
    on_stop: &mut dyn FnMut(&Captured),
) -> Result<Vec<Captured>> {
    let pid = target.pid();
    let refused = |e: Errno, tid: i32| -> Option<Error> {
        match e {
            Errno::EPERM | Errno::EACCES => Some(
                already_traced(pid, tid)
                    .map(Error::not_available)
                    .unwrap_or_else(|| target.attach_refused()),
            ),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(threads.len());
    // An exited thread whose group lives on (a zombie leader) cannot be
    // stopped and has nothing to show. Checked only when a stop fails.
    let zombie = |t: &Thread| thread_state(pid, t.tid) == Some('Z');
    // Threads that did not stop in time: let go at the end if their stop
    // has come by then (else the kernel does it when we exit).
    let mut late = Vec::new();
    let waiter = StopWaiter::new();
    match mode {
        StopMode::OneByOne => {
            for thread in threads {
                let seized_at = Instant::now();
                let mut s = match Seized::seize(thread.tid) {
                    Ok(s) => s,
                    Err(Errno::ESRCH) => {
                        out.push(lost(thread, "the thread exited before it could be stopped"));
                        continue;
                    }
                    Err(_) if zombie(thread) => {
                        out.push(lost(thread, ZOMBIE));
                        continue;
                    }
                    Err(e) => match refused(e, thread.tid) {
                        // Refused before any thread could be stopped: the
                        // same refusal would repeat for every thread.
                        Some(err) if out.iter().all(|c: &Captured| c.registers.is_none()) => {
                            return Err(err);
                        }
                        _ => {
                            out.push(lost(thread, format!("could not stop the thread: {e}")));
                            continue;
                        }
                    },
                };
                match s.wait_stop(pid, &waiter) {
                    Waited::Stopped => {
                        let copied = copy_stopped(target, thread, mappings);
                        if let Ok(c) = &copied {
                            on_stop(c);
                        }
                        s.detach();
                        let held = seized_at.elapsed();
                        out.push(copied.map_or_else(
                            |why| lost(thread, why),
                            |c| Captured {
                                held: Some(held),
                                ..c
                            },
                        ));
                    }
                    Waited::Exited => {
                        out.push(lost(thread, "the thread exited while it was being stopped"))
                    }
                    Waited::Late(why) => {
                        out.push(lost(thread, format!("not shown: {why}")));
                        late.push(s);
                    }
                }
            }
        }
        StopMode::Snapshot => {
            let seized_at = Instant::now();
            let mut seized = Vec::with_capacity(threads.len());
            for thread in threads {
                match Seized::seize(thread.tid) {
                    Ok(s) => seized.push(Some(s)),
                    Err(e) => {
                        if seized.iter().all(Option::is_none)
                            && !zombie(thread)
                            && let Some(err) = refused(e, thread.tid)
                        {
                            return Err(err);
                        }
                        seized.push(None);
                    }
                }
            }
            let waited: Vec<Option<Waited>> = seized
                .iter_mut()
                .map(|s| s.as_mut().map(|s| s.wait_stop(pid, &waiter)))
                .collect();
            for ((thread, s), w) in threads.iter().zip(&seized).zip(waited) {
                out.push(match (s, w) {
                    (Some(s), Some(Waited::Stopped)) if s.stopped => {
                        match copy_stopped(target, thread, mappings) {
                            Ok(c) => {
                                on_stop(&c);
                                c
                            }
                            Err(why) => lost(thread, why),
                        }
                    }
                    (_, Some(Waited::Late(why))) => lost(thread, format!("not shown: {why}")),
                    _ if zombie(thread) => lost(thread, ZOMBIE),
                    _ => lost(thread, "the thread exited before it could be stopped"),
                });
            }
            for s in seized.iter_mut().flatten() {
                s.detach();
            }
            let held = seized_at.elapsed();
            for c in out.iter_mut().filter(|c| c.registers.is_some()) {
                c.held = Some(held);
            }
            late.extend(seized.into_iter().flatten().filter(|s| !s.done));
        }
    }
    for s in &mut late {
        s.detach();
    }
    // A TID that was ours when listed but whose thread exited and whose
    // number another process's thread then took is not ours any more.
    for c in &mut out {
        if c.registers.is_some() && !Path::new(&format!("/proc/{pid}/task/{}", c.tid)).exists() {
            c.registers = None;
            c.window = (0, Vec::new());
            c.problem = Some("the thread exited while it was being read".into());
        }
    }
    Ok(out)
}

const ZOMBIE: &str = "the thread has exited (a zombie): it has no registers or stack left";

/// A thread's state letter from /proc/PID/task/TID/stat.
fn thread_state(pid: i32, tid: i32) -> Option<char> {
    let stat = std::fs::read(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).map(|&b| b as char)
}

/// When a thread already has a tracer (gdb, strace), the message saying so:
/// a thread can have only one, whatever our privileges.
fn already_traced(pid: i32, tid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    let tracer: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()?;
    if tracer == 0 {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{tracer}/comm")).unwrap_or_default();
    Some(format!(
        "thread {tid} is already being traced by process {tracer} ({}); a thread can have only \
         one tracer: detach that one first",
        crate::escape::escape_bytes(comm.trim_end().as_bytes())
    ))
}

/// A core's threads, with the registers it recorded.
pub fn capture_core(threads: &[Thread]) -> Vec<Captured> {
    threads
        .iter()
        .map(|t| match t.registers {
            Some(r) => Captured {
                tid: t.tid,
                name: t.name.clone(),
                registers: Some(r),
                window: (0, Vec::new()),
                problem: None,
                held: None,
            },
            None => lost(t, "the core holds no registers for this thread"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{MapName, Perms};

    fn map(start: u64, end: u64) -> Mapping {
        Mapping {
            start,
            end,
            perms: Perms::default(),
            offset: 0,
            dev: (0, 0),
            inode: 0,
            name: MapName::Anon,
            deleted: false,
            dumped: None,
        }
    }

    #[test]
    fn window_stays_inside_the_stack_mapping() {
        let maps = [map(0x1000, 0x2000), map(0x10000, 0x40000)];
        assert_eq!(window_range(0x10010, &maps), Some((0x10000, 0x20010)));
        assert_eq!(window_range(0x3ff00, &maps), Some((0x3ff00 - 128, 0x40000)));
        assert_eq!(window_range(0x5000, &maps), None);
    }

    #[test]
    fn window_words() {
        let mut bytes = vec![0u8; 16];
        bytes[8..].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        let c = Captured {
            tid: 1,
            name: None,
            registers: None,
            window: (0x1000, bytes),
            problem: None,
            held: None,
        };
        assert_eq!(c.window_word(0x1008), Some(0xdead_beef));
        assert_eq!(c.window_word(0x1009), None);
        assert_eq!(c.window_word(0xff8), None);
    }
}
