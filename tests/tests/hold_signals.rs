//! An operator's signals to npstack while it holds a thread of the target:
//! Ctrl-Z (SIGTSTP), Ctrl-C (SIGINT), SIGTERM and SIGHUP, sent at random
//! moments of runs on a thousand-thread target. Whatever the moment, no
//! thread of the target is left stopped, and the signal then does what it
//! always does to npstack: SIGTSTP stops it (and SIGCONT lets it finish),
//! the others end it.

#![allow(unsafe_code)] // a pre_exec hook and waitpid with WUNTRACED

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::libc;
use nix::sys::signal::Signal;
use nptools_tests::*;

/// Tries per signal.
const TRIES: usize = 16;

/// A small xorshift generator: the delays need only to spread, and the
/// seed is printed so a failure can be replayed.
struct Delays(u64);

impl Delays {
    fn new() -> Delays {
        let seed = std::env::var("HOLD_SIGNALS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("HOLD_SIGNALS_SEED={seed}");
        Delays(seed)
    }

    /// A delay below `max`.
    fn below(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_micros(self.0 % max.as_micros().max(1) as u64)
    }
}

/// The target's threads in a stop (`t` traced, `T` stopped).
fn stopped_threads(pid: i32) -> Vec<(i32, char)> {
    task_states(pid)
        .into_iter()
        .filter(|(_, s)| matches!(s, 't' | 'T'))
        .collect()
}

/// Start npstack on `pid` with the operator's signals at their default
/// action and unblocked, whatever the test runner inherited (a shell's
/// background job ignores SIGINT).
fn start_npstack(pid: i32) -> i32 {
    let mut cmd = Command::new(tool("npstack"));
    // A process group of its own, as a shell gives a job: the kernel
    // discards SIGTSTP sent to a process whose group is orphaned, and the
    // test's own group is orphaned under CI (started with no terminal
    // session around it); a group whose parent, this test, is in another
    // group of the same session is not.
    cmd.arg(pid.to_string())
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (signal, sigprocmask) between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGTSTP, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    cmd.spawn().expect("start npstack").id() as i32
}

/// `waitpid(pid, WUNTRACED)`: the raw status.
fn wait_untraced(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes one int through a pointer to a local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        if r == pid {
            return status;
        }
        assert_eq!(
            nix::errno::Errno::last(),
            nix::errno::Errno::EINTR,
            "waitpid {pid}"
        );
    }
}

/// How long an npstack run on `pid` takes: the quickest of three (the
/// first may be slowed by a cold cache).
fn run_time(pid: i32) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            run_tool("npstack", [pid.to_string()]).ok();
            start.elapsed()
        })
        .min()
        .unwrap()
}

/// Send `sig` to npstack at random moments of TRIES runs; after each, no
/// thread of the target is stopped and npstack's status is the signal's.
fn signal_while_holding(sig: Signal) {
    let target = Spawn::new(fixture("stacks"))
        .env("NPT_THREADS", "1000")
        .start();
    let pid = target.pid();
    let run = run_time(pid);
    let mut delays = Delays::new();
    let mut caught = 0;
    for i in 0..TRIES {
        let npstack = start_npstack(pid);
        std::thread::sleep(delays.below(run * 3 / 4));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(npstack), sig).expect("kill");
        let status = wait_untraced(npstack);
        let stopped = stopped_threads(pid);
        assert!(
            stopped.is_empty(),
            "try {i}: {sig} to npstack left threads of the target stopped: {stopped:?} \
             (npstack status {status:#x})"
        );
        let finished = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if sig == Signal::SIGTSTP {
            if libc::WIFSTOPPED(status) {
                assert_eq!(libc::WSTOPSIG(status), libc::SIGTSTP, "try {i}");
                caught += 1;
                // Stopped for a moment, as an operator would leave it:
                // still no thread of the target stopped.
                std::thread::sleep(Duration::from_millis(20));
                let stopped = stopped_threads(pid);
                assert!(
                    stopped.is_empty(),
                    "try {i}: while npstack is stopped: {stopped:?}"
                );
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(npstack), Signal::SIGCONT)
                    .expect("SIGCONT");
                let status = wait_untraced(npstack);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "try {i}: npstack continued after SIGTSTP ended with status {status:#x}"
                );
            } else {
                assert!(finished, "try {i}: status {status:#x} after SIGTSTP");
            }
        } else if libc::WIFSIGNALED(status) {
            assert_eq!(libc::WTERMSIG(status), sig as i32, "try {i}");
            caught += 1;
        } else {
            assert!(finished, "try {i}: status {status:#x} after {sig}");
        }
        assert!(
            std::fs::metadata(format!("/proc/{pid}/task")).is_ok(),
            "the target died"
        );
    }
    // Most signals must land inside a run for the test to mean anything.
    assert!(
        caught * 2 >= TRIES,
        "only {caught} of {TRIES} {sig}s came while npstack ran (a run takes {run:?})"
    );
    let stopped = stopped_threads(pid);
    assert!(stopped.is_empty(), "at the end: {stopped:?}");
}

#[test]
fn sigtstp_while_holding_leaves_no_thread_stopped() {
    signal_while_holding(Signal::SIGTSTP);
}

#[test]
fn sigint_while_holding_leaves_no_thread_stopped() {
    signal_while_holding(Signal::SIGINT);
}

#[test]
fn sigterm_while_holding_leaves_no_thread_stopped() {
    signal_while_holding(Signal::SIGTERM);
}

#[test]
fn sighup_while_holding_leaves_no_thread_stopped() {
    signal_while_holding(Signal::SIGHUP);
}
