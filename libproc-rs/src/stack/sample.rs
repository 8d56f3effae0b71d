//! Sampling a live process's stacks (npstack --sample): at a rate, the
//! threads on a CPU at that instant (or all of them, `idle`) are captured
//! one by one, walked and named as npstack names them, and their stacks
//! counted.
//!
//! One [`Session`] serves the whole run, so the modules' symbols and unwind
//! tables, V8's metadata and node's perf map are loaded once, and
//! JavaScript names are carried from sample to sample. A thread's state is
//! read from /proc before it is stopped: a sleeping thread is neither
//! stopped nor counted unless `idle` asks for it.
//!
//! Each thread is held only for the copy of its registers and the top of
//! its stack; its JavaScript frames are named from that copy after it runs
//! again ([`Options::name_after_resume`]), each heap object checked by its
//! map (see [`super::v8::NameCache`] for why that is right enough for a
//! profile).

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Frame, FrameKind, Options, Session, ThreadStack};
use crate::diag::Sink;
use crate::error::Result;
use crate::target::{ProcessTarget, Thread};

/// How often the mappings are read again (new compiled code, new threads'
/// stacks), and the perf map dropped to be read again when needed.
const REFRESH: Duration = Duration::from_millis(250);
const PERF_REFRESH: Duration = Duration::from_secs(2);

/// How to sample.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub duration: Duration,
    /// Samples a second.
    pub rate: u32,
    /// Count threads that are not on a CPU too.
    pub idle: bool,
    /// How stacks are collected (the selection of threads among them).
    pub stack: Options,
}

/// What a frame of a sampled stack is, for colouring a flame graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// A JavaScript function.
    Js,
    /// V8's own code: its builtins, its runtime, its frames (`<entry
    /// frame>`).
    V8,
    /// Native code of a module (node's C++, libuv, the C library, ...).
    Native,
    /// Code nothing names.
    Unknown,
}

impl SampleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleKind::Js => "js",
            SampleKind::V8 => "v8",
            SampleKind::Native => "native",
            SampleKind::Unknown => "unknown",
        }
    }
}

/// One frame of a sampled stack: a function's name, as one line of a
/// flame graph shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SampleFrame {
    /// `function (script)` for JavaScript (the line is left out: a
    /// profile counts functions); the symbol, `module+0xOFFSET` or the
    /// address for native code; `<entry frame>` for V8's own frames.
    pub name: String,
    pub kind: SampleKind,
    /// A JavaScript function's script and the line it was at in the first
    /// sample that had it (speedscope shows them).
    pub script: Option<String>,
    pub line: Option<u32>,
    /// A JavaScript function inlined into the optimized code of its
    /// caller (no frame of its own on the stack).
    pub inlined: bool,
}

/// A distinct stack of one kind of thread, and how many samples had it.
#[derive(Debug, Clone)]
pub struct SampledStack {
    /// Index in [`Profile::threads`].
    pub thread: usize,
    /// Outermost first.
    pub frames: Vec<SampleFrame>,
    pub count: u64,
}

/// The threads a profile counts, by what they are: threads of one name and
/// role (libuv's threadpool workers, say) are counted together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SampledThread {
    pub name: Option<OsString>,
    pub role: Option<&'static str>,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// After the duration asked for.
    Duration,
    /// Interrupted (SIGINT, SIGTERM).
    Interrupted,
    /// The target exited.
    TargetExited,
    /// A sample could not be taken, after others were (the failure is a
    /// notice): the outputs hold those.
    Failed,
}

/// What a run of samples found.
#[derive(Debug, Clone)]
pub struct Profile {
    pub threads: Vec<SampledThread>,
    /// Most samples first.
    pub stacks: Vec<SampledStack>,
    /// Each thread sample in time order: the index of its stack in
    /// `stacks`, and when, from the run's start.
    pub timeline: Vec<(usize, Duration)>,
    /// Sampling ticks taken, and thread samples counted over them.
    pub ticks: u64,
    pub samples: u64,
    /// Distinct thread ids counted.
    pub tids_seen: usize,
    pub elapsed: Duration,
    pub rate: u32,
    pub ended: Ended,
    /// How long each sampled thread was held, in microseconds: all of
    /// them, and the main thread's.
    pub held_us: Vec<u64>,
    pub main_held_us: Vec<u64>,
}

/// Progress, as the run goes: time since the start, thread samples and
/// distinct threads seen.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub elapsed: Duration,
    pub samples: u64,
    pub threads: usize,
}

/// Sample `target` (live) until the duration has passed, `stop` is set or
/// the target exits. `progress` is called after each tick. What was left
/// unnamed over the run goes to `sink` once, at the end.
pub fn sample(
    target: &dyn ProcessTarget,
    options: &SampleOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
    sink: &mut dyn Sink,
) -> Result<Profile> {
    let stack_options = Options {
        name_after_resume: true,
        snapshot: false,
        ..options.stack.clone()
    };
    let mut session = Session::new(target, stack_options)?;
    let mut run = Run::default();
    let period = Duration::from_secs(1) / options.rate.max(1);
    let start = Instant::now();
    let (mut refreshed, mut perf_read) = (start, start);
    let mut next = start;
    let ended = loop {
        if stop.load(Ordering::Relaxed) {
            break Ended::Interrupted;
        }
        if start.elapsed() >= options.duration {
            break Ended::Duration;
        }
        let Some((threads, numbers)) = run.choose(target, options) else {
            break Ended::TargetExited;
        };
        if !threads.is_empty() {
            match session.take_threads(threads, numbers) {
                Ok(stacks) => run.count(&stacks.threads, target.pid(), start.elapsed()),
                Err(_) if run.gone(target) => break Ended::TargetExited,
                Err(e) if run.samples > 0 => {
                    sink.fail(format!(
                        "sampling stopped after {:.1} s: {e}; the outputs hold the samples \
                         taken until then",
                        start.elapsed().as_secs_f64()
                    ));
                    break Ended::Failed;
                }
                Err(e) => return Err(e),
            }
        }
        run.ticks += 1;
        progress(Progress {
            elapsed: start.elapsed(),
            samples: run.samples,
            threads: run.counted.len(),
        });
        let now = Instant::now();
        if now.duration_since(refreshed) >= REFRESH {
            if session.refresh_mappings().is_err() && run.gone(target) {
                break Ended::TargetExited;
            }
            refreshed = now;
        }
        if now.duration_since(perf_read) >= PERF_REFRESH {
            session.forget_perf_map();
            perf_read = now;
        }
        next += period;
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            // Behind (a slow sample): the next tick is now, not a burst.
            None => next = Instant::now(),
        }
    };
    session.notices(sink);
    Ok(run.finish(start.elapsed(), options.rate, ended))
}

/// The counts so far.
#[derive(Default)]
struct Run {
    threads: Vec<SampledThread>,
    thread_index: HashMap<SampledThread, usize>,
    stacks: Vec<SampledStack>,
    stack_index: HashMap<(usize, Vec<SampleFrame>), usize>,
    timeline: Vec<(usize, Duration)>,
    ticks: u64,
    samples: u64,
    /// Each thread id seen: its name and the role its frames first gave.
    tids: HashMap<i32, (Option<OsString>, Option<&'static str>)>,
    /// The thread ids counted at least once.
    counted: std::collections::HashSet<i32>,
    held_us: Vec<u64>,
    main_held_us: Vec<u64>,
}

impl Run {
    /// The threads to sample now, with their thread numbers; `None` when
    /// the target is gone.
    fn choose(
        &mut self,
        target: &dyn ProcessTarget,
        options: &SampleOptions,
    ) -> Option<(Vec<Thread>, Vec<usize>)> {
        let tids = target.thread_ids().ok().filter(|t| !t.is_empty())?;
        let numbered: Vec<(i32, usize)> = tids.iter().zip(1..).map(|(&t, n)| (t, n)).collect();
        let selected = match &options.stack.select {
            Some(sel) => sel.select(&numbered),
            None => vec![true; numbered.len()],
        };
        if self.tids.len() < tids.len() || numbered.iter().any(|(t, _)| !self.tids.contains_key(t))
        {
            self.learn_names(target);
        }
        let mut threads = Vec::new();
        let mut numbers = Vec::new();
        for (&(tid, number), chosen) in numbered.iter().zip(selected) {
            if !chosen {
                continue;
            }
            // Read before the thread is stopped: a sleeping thread is
            // left alone.
            let wanted = match target.thread_state(tid) {
                Some('R') => true,
                Some('Z' | 'X') | None => false,
                Some(_) => options.idle,
            };
            if wanted {
                threads.push(Thread {
                    tid,
                    name: self.tids.get(&tid).and_then(|(n, _)| n.clone()),
                    registers: None,
                    stack_pointer: None,
                });
                numbers.push(number);
            }
        }
        Some((threads, numbers))
    }

    /// The names of the target's threads, for those not known yet.
    fn learn_names(&mut self, target: &dyn ProcessTarget) {
        for t in target.threads().unwrap_or_default() {
            self.tids.entry(t.tid).or_insert((t.name, None));
        }
    }

    /// Whether the target has exited (its main thread gone or a zombie).
    fn gone(&self, target: &dyn ProcessTarget) -> bool {
        target.thread_ids().map_or(true, |t| t.is_empty())
            || matches!(target.thread_state(target.pid()), None | Some('Z' | 'X'))
                && target.thread_ids().map_or(true, |t| t.len() <= 1)
    }

    /// Count one tick's stacks.
    fn count(&mut self, stacks: &[ThreadStack], pid: i32, at: Duration) {
        for t in stacks.iter().filter(|t| !t.frames.is_empty()) {
            let entry = self.tids.entry(t.tid).or_insert((t.name.clone(), None));
            if entry.1.is_none() {
                entry.1 = t.role;
            }
            let thread = SampledThread {
                name: entry.0.clone(),
                role: entry.1,
            };
            let ti = match self.thread_index.get(&thread) {
                Some(&i) => i,
                None => {
                    self.threads.push(thread.clone());
                    self.thread_index.insert(thread, self.threads.len() - 1);
                    self.threads.len() - 1
                }
            };
            let frames = sample_frames(&t.frames);
            let key = (ti, frames);
            let si = match self.stack_index.get(&key) {
                Some(&i) => i,
                None => {
                    self.stacks.push(SampledStack {
                        thread: ti,
                        frames: key.1.clone(),
                        count: 0,
                    });
                    self.stack_index.insert(key, self.stacks.len() - 1);
                    self.stacks.len() - 1
                }
            };
            self.stacks[si].count += 1;
            self.samples += 1;
            self.counted.insert(t.tid);
            self.timeline.push((si, at));
            if let Some(h) = t.held_us {
                self.held_us.push(h);
                if t.tid == pid {
                    self.main_held_us.push(h);
                }
            }
        }
    }

    fn finish(self, elapsed: Duration, rate: u32, ended: Ended) -> Profile {
        // Most samples first; ties in the order first seen.
        let mut order: Vec<usize> = (0..self.stacks.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.stacks[i].count));
        let mut new_index = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut stacks: Vec<Option<SampledStack>> = self.stacks.into_iter().map(Some).collect();
        let stacks = order.iter().filter_map(|&i| stacks[i].take()).collect();
        Profile {
            threads: self.threads,
            stacks,
            timeline: self
                .timeline
                .into_iter()
                .map(|(i, at)| (new_index[i], at))
                .collect(),
            ticks: self.ticks,
            samples: self.samples,
            tids_seen: self.counted.len(),
            elapsed,
            rate,
            ended,
            held_us: self.held_us,
            main_held_us: self.main_held_us,
        }
    }
}

/// A walked stack as a profile counts it: outermost first, a JavaScript
/// function's inlined calls as frames of their own.
pub fn sample_frames(frames: &[Frame]) -> Vec<SampleFrame> {
    let mut out = Vec::with_capacity(frames.len());
    for f in frames.iter().rev() {
        out.push(sample_frame(f));
        if let Some(js) = &f.js {
            // Inlined innermost first: outermost of them next.
            for inlined in js.inlined.iter().rev() {
                out.push(SampleFrame {
                    inlined: true,
                    ..js_frame(inlined)
                });
            }
        }
    }
    out
}

fn js_frame(js: &super::nodejs::JsName) -> SampleFrame {
    let name = match &js.script {
        Some(s) if !s.is_empty() => format!("{} ({s})", js.function),
        _ => js.function.clone(),
    };
    SampleFrame {
        name,
        kind: SampleKind::Js,
        script: js.script.clone(),
        line: js.line,
        inlined: false,
    }
}

fn sample_frame(f: &Frame) -> SampleFrame {
    if let Some(js) = &f.js {
        return js_frame(js);
    }
    let (name, kind) = if let Some(what) = &f.v8_frame {
        (format!("<{what}>"), SampleKind::V8)
    } else if let Some(sym) = &f.symbol {
        let v8 = sym.starts_with("Builtins_")
            || sym.starts_with("v8::")
            || sym.starts_with("Builtin:")
            || sym.contains("v8::internal::");
        let kind = if v8 {
            SampleKind::V8
        } else if f.kind == FrameKind::Native {
            SampleKind::Native
        } else {
            SampleKind::Unknown
        };
        (sym.clone(), kind)
    } else if let (Some(m), Some(off)) = (&f.module, f.module_offset) {
        let name = m.file_name().unwrap_or(m.as_os_str()).to_string_lossy();
        (format!("{name}+0x{off:x}"), SampleKind::Native)
    } else {
        (format!("0x{:x}", f.pc), SampleKind::Unknown)
    };
    SampleFrame {
        name,
        kind,
        script: None,
        line: None,
        inlined: false,
    }
}

/// A flag set by SIGINT or SIGTERM, for ending a run early. The signals
/// are caught (not their default, which would end npstack before it
/// writes what it has) from the first call on.
pub fn stop_on_signals() -> &'static AtomicBool {
    static STOP: AtomicBool = AtomicBool::new(false);
    extern "C" fn on_signal(_: nix::libc::c_int) {
        STOP.store(true, Ordering::Relaxed);
    }
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        #[allow(unsafe_code)]
        let _ = unsafe { sigaction(sig, &action) };
    }
    &STOP
}

/// The median and the largest of some figures.
pub fn median_and_max(values: &[u64]) -> Option<(u64, u64)> {
    let mut v = values.to_vec();
    v.sort_unstable();
    Some((*v.get(v.len() / 2)?, *v.last()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median_and_max(&[5, 1, 9]), Some((5, 9)));
        assert_eq!(median_and_max(&[]), None);
    }
}
