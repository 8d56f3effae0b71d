//! SIGINT, SIGTERM and SIGHUP to a core writer: the dump stops at the next
//! chunk, the target runs on, and the partial file goes (an unnamed file
//! needs no removal; a temporary name is unlinked when it drops).
//!
//! While threads are held, `live/capture.rs` blocks these signals (so that
//! a signal can never leave the target stopped); the copy loop asks
//! [`interrupted`], which also looks at the blocked signals pending, so a
//! Ctrl-C does not wait for the whole image to be copied.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::libc;

use crate::error::{Error, Result};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

const CAUGHT_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::Relaxed);
}

/// Catch SIGINT, SIGTERM and SIGHUP from now on, for [`interrupted`].
#[allow(unsafe_code)]
pub fn catch_interrupts() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in CAUGHT_SIGNALS {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// [`Error::Interrupted`] when a signal asked us to stop.
pub fn stop_if_asked() -> Result<()> {
    match interrupted() {
        Some(sig) => Err(Error::Interrupted {
            signal: sig.as_str(),
        }),
        None => Ok(()),
    }
}

/// The signal that asked us to stop, caught or pending while blocked.
#[allow(unsafe_code)]
pub fn interrupted() -> Option<Signal> {
    let caught = CAUGHT.load(Ordering::Relaxed);
    if caught != 0 {
        return Signal::try_from(caught).ok();
    }
    // SAFETY: sigpending writes one sigset_t, a local.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigpending(&mut set) } != 0 {
        return None;
    }
    CAUGHT_SIGNALS
        .into_iter()
        // SAFETY: sigismember reads the set filled above.
        .find(|s| unsafe { libc::sigismember(&set, *s as libc::c_int) } == 1)
}

/// Start a thread that takes no signal: one sent to the tool is delivered
/// to the thread that holds the target, which blocks the operator's while
/// it holds (a Ctrl-Z taken by a helper thread would stop the tool with
/// the target held).
pub fn spawn_without_signals<F>(f: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() + Send + 'static,
{
    use nix::sys::signal::{SigmaskHow, pthread_sigmask};
    let mut old = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
    // The new thread inherits the mask; this one gets its own back.
    let handle = std::thread::spawn(f);
    if blocked.is_ok() {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    handle
}
