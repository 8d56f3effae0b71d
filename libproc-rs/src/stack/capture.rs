//! Choosing the threads to show and capturing them (see
//! [`ProcessTarget::capture_threads`]), with one more pass for threads that
//! started meanwhile.

use std::collections::HashSet;

use super::{Options, Selection};
use crate::error::Result;
use crate::target::capture::{CaptureRequest, Captured, StopMode, WhileHeld};
use crate::target::{Mapping, ProcessTarget, Thread};

/// The threads chosen from those listed, with their thread numbers.
pub(super) struct Chosen {
    threads: Vec<Thread>,
    numbers: Vec<usize>,
    /// Every thread listed, chosen or not: one not among them started
    /// later.
    listed: HashSet<i32>,
}

impl Chosen {
    /// Threads chosen by the caller (a sample's running threads), with
    /// their numbers.
    pub(super) fn given(threads: Vec<Thread>, numbers: Vec<usize>) -> Chosen {
        let listed = threads.iter().map(|t| t.tid).collect();
        Chosen {
            threads,
            numbers,
            listed,
        }
    }
}

/// The threads captured, and each one's thread number.
pub(super) struct CapturedThreads {
    pub(super) threads: Vec<Captured>,
    pub(super) numbers: Vec<usize>,
}

/// The target's threads, numbered 1 (the main thread) on, and those of
/// them the selection chooses.
pub(super) fn choose(target: &dyn ProcessTarget, select: Option<&Selection>) -> Result<Chosen> {
    let all = target.threads()?;
    let numbered: Vec<(i32, usize)> = all.iter().zip(1..).map(|(t, n)| (t.tid, n)).collect();
    let keep = match select {
        Some(sel) => sel.select(&numbered),
        None => vec![true; all.len()],
    };
    let (threads, numbers) = all
        .into_iter()
        .zip(1..)
        .zip(keep)
        .filter_map(|(pair, kept)| kept.then_some(pair))
        .unzip();
    Ok(Chosen {
        threads,
        numbers,
        listed: numbered.iter().map(|&(t, _)| t).collect(),
    })
}

/// Capture the chosen threads, then (with `newcomers`) those started while
/// that was done (a selection takes them by TID only), numbered after the
/// threads listed.
pub(super) fn capture(
    target: &dyn ProcessTarget,
    chosen: Chosen,
    mappings: &[Mapping],
    options: &Options,
    newcomers: bool,
    while_held: &mut dyn WhileHeld,
) -> Result<CapturedThreads> {
    let mode = if options.snapshot {
        StopMode::Snapshot
    } else {
        StopMode::OneByOne
    };
    let first = CaptureRequest {
        threads: &chosen.threads,
        mappings,
        mode,
    };
    let mut threads = target.capture_threads(first, while_held)?;
    if !newcomers {
        return Ok(CapturedThreads {
            threads,
            numbers: chosen.numbers,
        });
    }
    let mut numbers = chosen.numbers;
    let newcomers = self::newcomers(target, &chosen.listed, options.select.as_ref());
    let again = CaptureRequest {
        threads: &newcomers,
        ..first
    };
    if !newcomers.is_empty()
        && let Ok(more) = target.capture_threads(again, while_held)
    {
        // A newcomer that is already gone was never seen: leave it out.
        let more: Vec<_> = more.into_iter().filter(|c| c.registers.is_some()).collect();
        numbers.extend((chosen.listed.len() + 1..).take(more.len()));
        threads.extend(more);
    }
    Ok(CapturedThreads { threads, numbers })
}

/// The threads not in `listed` (started since), as `select` takes them.
fn newcomers(
    target: &dyn ProcessTarget,
    listed: &HashSet<i32>,
    select: Option<&Selection>,
) -> Vec<Thread> {
    let arrived = target
        .thread_ids()
        .is_ok_and(|ids| ids.iter().any(|t| !listed.contains(t)));
    if !arrived {
        return Vec::new();
    }
    target
        .threads()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !listed.contains(&t.tid))
        .filter(|t| select.is_none_or(|s| s.has_tid(t.tid)))
        .collect()
}
