//! Copying what a stack walk needs: a thread's registers and a window of its
//! stack, with the thread stopped for as short a time as that copy takes.
//!
//! A live thread is stopped with `PTRACE_SEIZE` + `PTRACE_INTERRUPT`, never
//! `PTRACE_ATTACH` or SIGSTOP: if this process dies at any moment (SIGINT,
//! SIGKILL, a panic), the kernel detaches and the thread runs on. A
//! [`Seized`] guard detaches in `Drop` for every other way out. A core's
//! threads are "captured" by taking the registers the core recorded.

use std::ffi::OsString;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::target::{Mapping, ProcessTarget, Registers, Thread};

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
}

impl Captured {
    /// A word of stack from the window, if the window holds it.
    pub fn window_word(&self, addr: u64) -> Option<u64> {
        let (start, bytes) = &self.window;
        let off = usize::try_from(addr.checked_sub(*start)?).ok()?;
        let b = bytes.get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
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

/// A thread we have seized; detached on drop.
#[derive(Debug)]
struct Seized {
    tid: Pid,
    /// Stopped (we waited for its stop) and not yet detached.
    stopped: bool,
    /// A signal that arrived while we held the thread, to hand back.
    pending: Option<Signal>,
    done: bool,
}

impl Seized {
    fn seize(tid: i32) -> nix::Result<Seized> {
        let pid = Pid::from_raw(tid);
        ptrace::seize(pid, ptrace::Options::empty())?;
        let mut s = Seized {
            tid: pid,
            stopped: false,
            pending: None,
            done: false,
        };
        if let Err(e) = ptrace::interrupt(pid) {
            // Nothing to wait for: detaching a running tracee fails, but
            // the seize alone does not stop it; dropping ends it.
            s.done = true;
            let _ = ptrace::detach(pid, None);
            return Err(e);
        }
        Ok(s)
    }

    /// Wait for the interrupt stop. Returns false when the thread exited.
    fn wait_stop(&mut self) -> bool {
        loop {
            match waitpid(self.tid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::PtraceEvent(..)) | Ok(WaitStatus::PtraceSyscall(..)) => {
                    self.stopped = true;
                    return true;
                }
                Ok(WaitStatus::Stopped(_, sig)) => {
                    // A signal arrived before our interrupt: keep it to hand
                    // back on detach, so the thread still gets it.
                    if sig != Signal::SIGSTOP || self.pending.is_none() {
                        self.pending = Some(sig);
                    }
                    self.stopped = true;
                    return true;
                }
                Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => {
                    self.done = true;
                    return false;
                }
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.done = true;
                    return false;
                }
            }
        }
    }

    fn detach(&mut self) {
        if self.done {
            return;
        }
        if !self.stopped {
            // The interrupt is on its way: take the stop, else the detach
            // fails and the thread stays stopped until we exit.
            if !self.wait_stop() {
                return;
            }
        }
        let _ = ptrace::detach(self.tid, self.pending.take());
        self.done = true;
    }
}

impl Drop for Seized {
    fn drop(&mut self) {
        self.detach();
    }
}

fn registers_from(r: &nix::libc::user_regs_struct) -> Registers {
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
    })
}

fn lost(thread: &Thread, why: impl Into<String>) -> Captured {
    Captured {
        tid: thread.tid,
        name: thread.name.clone(),
        registers: None,
        window: (0, Vec::new()),
        problem: Some(why.into()),
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
    match mode {
        StopMode::OneByOne => {
            for thread in threads {
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
                if !s.wait_stop() {
                    out.push(lost(thread, "the thread exited while it was being stopped"));
                    continue;
                }
                let copied = copy_stopped(target, thread, mappings);
                s.detach();
                out.push(copied.unwrap_or_else(|why| lost(thread, why)));
            }
        }
        StopMode::Snapshot => {
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
            for s in seized.iter_mut().flatten() {
                s.wait_stop();
            }
            for (thread, s) in threads.iter().zip(&seized) {
                out.push(match s {
                    Some(s) if s.stopped => copy_stopped(target, thread, mappings)
                        .unwrap_or_else(|why| lost(thread, why)),
                    _ if zombie(thread) => lost(thread, ZOMBIE),
                    _ => lost(thread, "the thread exited before it could be stopped"),
                });
            }
            for s in seized.iter_mut().flatten() {
                s.detach();
            }
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
        };
        assert_eq!(c.window_word(0x1008), Some(0xdead_beef));
        assert_eq!(c.window_word(0x1009), None);
        assert_eq!(c.window_word(0xff8), None);
    }
}
