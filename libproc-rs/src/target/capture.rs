//! What a stack walk starts from: each thread's registers and a window of
//! its stack, copied by [`ProcessTarget::capture_threads`].
//!
//! The copy is the only step that needs a live thread stopped; everything
//! after it (unwinding, symbols, names) runs from the copy, with the target
//! running. A [`WhileHeld`] runs what must see a thread still stopped (the
//! V8 heap may move once it runs).
//!
//! [`ProcessTarget::capture_threads`]: super::ProcessTarget::capture_threads

use std::ffi::OsString;
use std::time::Duration;

use nix::errno::Errno;

use super::{Memory, MemoryExt, Registers, Thread};
use crate::error::Result;
use crate::parse::maps::Mapping;

/// How live threads are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// One thread at a time: stop, copy, resume, next.
    OneByOne,
    /// Stop every thread, copy them all, then resume them all.
    Snapshot,
}

/// Which threads to capture, and how.
#[derive(Debug, Clone, Copy)]
pub struct CaptureRequest<'a> {
    pub threads: &'a [Thread],
    /// The target's mappings: a stack window ends where its mapping does.
    pub mappings: &'a [Mapping],
    pub mode: StopMode,
}

/// What runs while a captured thread is held.
pub trait WhileHeld {
    /// Called once, before a target that stops threads stops any: a
    /// chance to make ready what [`WhileHeld::stopped`] needs, so that a
    /// thread is not held while it is done.
    fn before_stopping(&mut self) {}

    /// Called with each thread's copy, before a stopped thread runs again.
    fn stopped(&mut self, thread: &Captured);
}

/// Stack bytes copied while the thread was stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackWindow {
    pub start: u64,
    pub bytes: Vec<u8>,
}

/// One thread's state, copied.
#[derive(Debug, Clone)]
pub struct Captured {
    pub tid: i32,
    pub name: Option<OsString>,
    pub registers: Option<Registers>,
    /// Empty for a core (its memory does not change).
    pub window: StackWindow,
    /// Why the thread could not be captured, when it could not.
    pub problem: Option<ThreadLost>,
    /// How long a live thread was held stopped.
    pub held: Option<Duration>,
}

impl Captured {
    /// A thread with its registers, and nothing copied of its stack.
    pub fn with_registers(thread: &Thread, registers: Registers) -> Captured {
        Captured {
            tid: thread.tid,
            name: thread.name.clone(),
            registers: Some(registers),
            window: StackWindow::default(),
            problem: None,
            held: None,
        }
    }

    /// A thread that could not be captured, and why.
    pub fn lost(thread: &Thread, why: ThreadLost) -> Captured {
        Captured {
            tid: thread.tid,
            name: thread.name.clone(),
            registers: None,
            window: StackWindow::default(),
            problem: Some(why),
            held: None,
        }
    }

    /// A word of stack from the window, if the window holds it.
    pub fn window_word(&self, addr: u64) -> Option<u64> {
        let StackWindow { start, bytes } = &self.window;
        let off = usize::try_from(addr.checked_sub(*start)?).ok()?;
        let b = bytes.get(off..off.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// A word of stack: from the window, else from the target's memory.
    pub fn stack_word(&self, memory: &dyn Memory, addr: u64) -> Result<u64> {
        match self.window_word(addr) {
            Some(w) => Ok(w),
            None => memory.read_u64(addr),
        }
    }
}

/// Why a thread has no registers or stack to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ThreadLost {
    #[error("the thread exited before it could be stopped")]
    ExitedBeforeStop,
    #[error("the thread exited while it was being stopped")]
    ExitedWhileStopping,
    #[error("the thread exited while it was being read")]
    ExitedWhileRead,
    #[error("the thread has exited (a zombie): it has no registers or stack left")]
    Zombie,
    #[error("could not stop the thread: {0}")]
    NotStopped(Errno),
    #[error("could not read its registers: {0}")]
    Registers(Errno),
    #[error("not shown: it is in uninterruptible sleep (state D) and cannot stop until it wakes")]
    Uninterruptible,
    #[error("not shown: waiting for it to stop failed: {0}")]
    WaitFailed(Errno),
    #[error("not shown: it did not stop within {secs} s")]
    StopTimeout { secs: u64 },
    #[error("the core holds no registers for this thread")]
    NoRecordedRegisters,
}

/// Threads "captured" from the registers their source recorded (a core),
/// each shown to `while_held`.
pub fn from_recorded(threads: &[Thread], while_held: &mut dyn WhileHeld) -> Vec<Captured> {
    let captured: Vec<Captured> = threads
        .iter()
        .map(|t| match t.registers {
            Some(r) => Captured::with_registers(t, r),
            None => Captured::lost(t, ThreadLost::NoRecordedRegisters),
        })
        .collect();
    for c in captured.iter().filter(|c| c.registers.is_some()) {
        while_held.stopped(c);
    }
    captured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_words() {
        let mut bytes = vec![0u8; 16];
        bytes[8..].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        let c = Captured {
            tid: 1,
            name: None,
            registers: None,
            window: StackWindow {
                start: 0x1000,
                bytes,
            },
            problem: None,
            held: None,
        };
        assert_eq!(c.window_word(0x1008), Some(0xdead_beef));
        assert_eq!(c.window_word(0x1009), None);
        assert_eq!(c.window_word(0xff8), None);
    }

    #[test]
    fn reasons_read_as_before() {
        assert_eq!(
            ThreadLost::StopTimeout { secs: 1 }.to_string(),
            "not shown: it did not stop within 1 s"
        );
        assert_eq!(
            ThreadLost::NotStopped(Errno::EPERM).to_string(),
            format!("could not stop the thread: {}", Errno::EPERM)
        );
    }
}
