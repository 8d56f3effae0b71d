//! Walking a captured thread's stack: framehop's unwinding over the modules
//! opened so far, stepping over signal frames by what the kernel saved in
//! them; and, while a thread is held, naming its V8 frames.

use std::collections::HashMap;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64};
use framehop::{FrameAddress, Unwinder};

use super::MAX_FRAMES;
use super::modules::Modules;
use super::v8::{CodeKind, Decoder, JsFrame, NameCache, V8};
use crate::target::capture::{Captured, WhileHeld};
use crate::target::{MapName, Mapping, MemoryExt, ProcessTarget};

/// A frame as walked: its pc, and whether a signal interrupted it there
/// (then the pc is where it was interrupted, not a return address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Walked {
    pub(super) pc: u64,
    pub(super) interrupted: bool,
    /// The pc is the exact instruction (first frame, or interrupted).
    exact: bool,
    /// The frame pointer register (rbp) in this frame.
    fp: u64,
    /// How far the pc is from where its code was loaded, when it runs in
    /// a second mapping of it (see [`Modules::alias_shift`]).
    shift: u64,
}

impl Walked {
    fn new(pc: u64, fp: u64, exact: bool, interrupted: bool) -> Walked {
        Walked {
            pc,
            interrupted,
            exact,
            fp,
            shift: 0,
        }
    }

    /// Where the pc's code is in its module: the pc itself, but in a second
    /// mapping of the code.
    pub(super) fn code_address(&self) -> u64 {
        self.pc.wrapping_sub(self.shift)
    }

    /// The address to look the frame up by: a return address points after
    /// the call, possibly into the next function, so callers are looked up
    /// one byte back.
    pub(super) fn lookup(&self) -> u64 {
        let at = self.code_address();
        if self.exact { at } else { at.wrapping_sub(1) }
    }
}

/// A thread's stack, walked.
#[derive(Debug, Default)]
pub(super) struct Walk {
    pub(super) frames: Vec<Walked>,
    /// Why the walk stopped short, when it did.
    pub(super) problem: Option<String>,
    /// Each frame as V8 names it (`None` for a native frame); empty when
    /// V8's frames were not named.
    pub(super) js: Vec<Option<JsFrame>>,
}

/// x86_64 `__restore_rt`, where a signal handler returns to:
/// `mov $15, %rax` (rt_sigreturn); `syscall`.
const SIGRETURN_CODE: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];

/// Offsets in the kernel's signal frame, from the stack pointer at
/// `__restore_rt` (which points at the `ucontext`): the saved registers in
/// `uc_mcontext` (at 40; rbp, rsp, rip are gregs 10, 15, 16). The signal's
/// number is not there: the kernel fills the `siginfo` after the context
/// only for SA_SIGINFO handlers, and nothing in the frame says which.
const UC_RBP: u64 = 40 + 10 * 8;
const UC_RSP: u64 = 40 + 15 * 8;
const UC_RIP: u64 = 40 + 16 * 8;

/// Where a walk is: the registers unwound so far, and the address of the
/// frame to step out of.
struct Cursor {
    regs: UnwindRegsX86_64,
    address: FrameAddress,
}

impl Cursor {
    fn at(rip: u64, rsp: u64, rbp: u64) -> Cursor {
        Cursor {
            regs: UnwindRegsX86_64::new(rip, rsp, rbp),
            address: FrameAddress::from_instruction_pointer(rip),
        }
    }
}

/// Walks stacks: the modules opened so far, and what walks share across
/// threads.
pub(super) struct Walker<'t> {
    target: &'t dyn ProcessTarget,
    pub(super) modules: Modules,
    /// framehop's rule cache.
    unwind: CacheX86_64,
    /// Which addresses hold the signal trampoline, kept per address:
    /// threads share most of their frames.
    sigreturn: HashMap<u64, bool>,
}

impl<'t> Walker<'t> {
    pub(super) fn new(target: &'t dyn ProcessTarget, modules: Modules) -> Walker<'t> {
        Walker {
            target,
            modules,
            unwind: CacheX86_64::new(),
            sigreturn: HashMap::new(),
        }
    }

    /// Each captured thread's walk: the one made while it was held (in
    /// `early`, by TID), else one made now.
    pub(super) fn walks_of(
        &mut self,
        captured: &[Captured],
        mut early: HashMap<i32, Walk>,
    ) -> Vec<Walk> {
        captured
            .iter()
            .map(|cap| match early.remove(&cap.tid) {
                Some(walk) if cap.registers.is_some() => walk,
                _ => self.walk_loading(cap),
            })
            .collect()
    }

    /// Walk a thread's stack, opening the modules its frames land in and
    /// walking again until every frame's module has been opened (a frame in
    /// a module with no unwind table yet is walked by frame pointer, which
    /// may go wrong).
    pub(super) fn walk_loading(&mut self, cap: &Captured) -> Walk {
        let Some(regs) = cap.registers else {
            return Walk::default();
        };
        if let Some(i) = self.modules.exec_module_at(regs.rip()) {
            self.modules.load(i, self.target);
        }
        let mut walked = None;
        for _ in 0..8 {
            let walk = self.walk(cap);
            let missing: Vec<usize> = walk
                .frames
                .iter()
                .filter_map(|w| self.modules.unopened_at(w.lookup()))
                .collect();
            if missing.is_empty() {
                walked = Some(walk);
                break;
            }
            for i in missing {
                self.modules.load(i, self.target);
            }
        }
        let mut walk = walked.unwrap_or_else(|| self.walk(cap));
        for w in &mut walk.frames {
            w.shift = self.modules.alias_shift(w.pc);
        }
        walk
    }

    /// One walk with the modules opened so far.
    fn walk(&mut self, cap: &Captured) -> Walk {
        let Some(regs) = cap.registers else {
            return Walk::default();
        };
        let target = self.target;
        let mut missing_stack = None;
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            cap.stack_word(target, addr).map_err(|e| {
                missing_stack.get_or_insert(e.to_string());
            })
        };
        let mut cursor = Cursor::at(regs.rip(), regs.rsp(), regs.rbp());
        let mut frames = vec![Walked::new(regs.rip(), regs.rbp(), true, false)];
        let mut problem = None;
        loop {
            if frames.len() >= MAX_FRAMES {
                problem = Some(format!("stopped after {MAX_FRAMES} frames"));
                break;
            }
            let next = if self.is_sigreturn(cursor.address.address()) {
                // The handler "returns" to the trampoline's first byte.
                if let Some(last) = frames.last_mut() {
                    last.exact = true;
                }
                signal_frame(&mut cursor, &mut read_stack)
            } else {
                self.caller(&mut cursor, &mut read_stack)
            };
            let Some(frame) = next else {
                break;
            };
            frames.push(frame);
        }
        if frames.len() <= 1
            && let Some(why) = missing_stack
        {
            problem = Some(format!("its stack is not available: {why}"));
        }
        Walk {
            frames,
            problem,
            js: Vec::new(),
        }
    }

    /// The caller of the frame at `cursor`, unwound by framehop; `None`
    /// where the walk ends.
    fn caller(
        &mut self,
        cursor: &mut Cursor,
        read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
    ) -> Option<Walked> {
        let before = cursor.regs.sp();
        let unwound = self.modules.unwinder().unwind_frame(
            cursor.address,
            &mut cursor.regs,
            &mut self.unwind,
            read_stack,
        );
        let ra = unwound.ok()??;
        let next = FrameAddress::from_return_address(ra)?;
        // The stack grows down: a caller's frame is above.
        if cursor.regs.sp() <= before
            && !matches!(cursor.address, FrameAddress::InstructionPointer(_))
        {
            return None;
        }
        cursor.address = next;
        Some(Walked::new(ra, cursor.regs.bp(), false, false))
    }

    /// Whether the code at `pc` is the signal-return trampoline.
    fn is_sigreturn(&mut self, pc: u64) -> bool {
        let target = self.target;
        *self.sigreturn.entry(pc).or_insert_with(|| {
            let mut code = [0u8; SIGRETURN_CODE.len()];
            target.read_exact_at(pc, &mut code).is_ok() && code == SIGRETURN_CODE
        })
    }
}

/// Step over a signal frame (the cursor is at the trampoline) to the frame
/// the signal interrupted, by the registers the kernel saved; `None` when
/// they cannot be read.
fn signal_frame(
    cursor: &mut Cursor,
    read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
) -> Option<Walked> {
    let uc = cursor.regs.sp();
    let rip = read_stack(uc.checked_add(UC_RIP)?).ok()?;
    let rsp = read_stack(uc.checked_add(UC_RSP)?).ok()?;
    let rbp = read_stack(uc.checked_add(UC_RBP)?).ok()?;
    *cursor = Cursor::at(rip, rsp, rbp);
    Some(Walked::new(rip, rbp, true, true))
}

/// The executable anonymous mappings: where V8's compiled code is.
pub(super) struct JitRanges(Vec<(u64, u64)>);

impl JitRanges {
    pub(super) fn new(mappings: &[Mapping]) -> JitRanges {
        JitRanges(
            mappings
                .iter()
                .filter(|m| m.perms.exec && m.path().is_none())
                .filter(|m| m.name != MapName::Vdso)
                .map(|m| (m.start, m.end))
                .collect(),
        )
    }

    pub(super) fn contains(&self, pc: u64) -> bool {
        let i = self.0.partition_point(|&(s, _)| s <= pc);
        i > 0 && pc < self.0[i - 1].1
    }
}

/// What is done while a thread is held: with V8's metadata, its stack is
/// walked and its JavaScript frames named, for the heap may move once it
/// runs. Without, nothing.
pub(super) struct WalkWhileHeld<'w, 't, 'j> {
    walker: &'w mut Walker<'t>,
    /// Names V8's frames; `None` without V8, or when they are named after
    /// the thread runs again (a sample).
    pub(super) js: Option<JsNamer<'j>>,
    /// The walks made, by TID.
    pub(super) walks: HashMap<i32, Walk>,
}

impl<'w, 't, 'j> WalkWhileHeld<'w, 't, 'j> {
    pub(super) fn new(
        walker: &'w mut Walker<'t>,
        js: Option<JsNamer<'j>>,
    ) -> WalkWhileHeld<'w, 't, 'j> {
        WalkWhileHeld {
            walker,
            js,
            walks: HashMap::new(),
        }
    }
}

/// Names the V8 frames of walked threads: those in V8's builtins (the
/// interpreter) or in its compiled code, each once (a frameless stub shares
/// its caller's frame pointer). Names found are carried from one thread to
/// the next and, in a sampling run, from one sample to the next
/// ([`NameCache`]).
pub(super) struct JsNamer<'w> {
    pub(super) v8: &'w V8,
    pub(super) jit: &'w JitRanges,
    pub(super) cache: NameCache,
    /// The first step that failed for a JavaScript frame left unnamed.
    pub(super) failed: Option<&'static str>,
}

impl JsNamer<'_> {
    /// Each frame as V8 names it (`None` for a native frame).
    pub(super) fn name(
        &mut self,
        target: &dyn ProcessTarget,
        modules: &Modules,
        cap: &Captured,
        walked: &[Walked],
    ) -> Vec<Option<JsFrame>> {
        let (v8, jit) = (self.v8, self.jit);
        let mut decoder = Decoder::new(v8, target).carrying(std::mem::take(&mut self.cache));
        let mut word = |a: u64| cap.stack_word(target, a).ok();
        let mut last_fp = None;
        let named = walked
            .iter()
            .map(|w| {
                let lookup = w.lookup();
                let kind = if v8.in_builtins(lookup) {
                    CodeKind::Builtin
                } else if modules.exec_module_at(lookup).is_none() && jit.contains(lookup) {
                    CodeKind::Jit
                } else {
                    last_fp = None;
                    return None;
                };
                if last_fp.replace(w.fp) == Some(w.fp) {
                    return None;
                }
                decoder.frame(kind, (w.pc, w.exact), w.fp, &mut word)
            })
            .collect();
        self.failed = self.failed.or(decoder.failed_step());
        self.cache = decoder.into_cache();
        named
    }
}

impl WhileHeld for WalkWhileHeld<'_, '_, '_> {
    fn before_stopping(&mut self) {
        if self.js.is_some() {
            // Walking a stopped thread should not wait for a module to open.
            self.walker.modules.load_common(self.walker.target);
        }
    }

    fn stopped(&mut self, cap: &Captured) {
        let Some(js) = self.js.as_mut() else {
            return;
        };
        let mut walk = self.walker.walk_loading(cap);
        walk.js = js.name(self.walker.target, &self.walker.modules, cap, &walk.frames);
        self.walks.insert(cap.tid, walk);
    }
}
