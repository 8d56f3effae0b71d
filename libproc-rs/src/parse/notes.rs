//! Parsers for the descriptors of Linux x86_64 core-file notes.
//!
//! Each takes the note's descriptor bytes and returns `None` when they are
//! too short to hold the structure. The layouts are the kernel's
//! (`struct elf_prstatus`, `struct elf_prpsinfo`, `siginfo_t`, and the
//! `NT_FILE` table written by `fill_files_note`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::parse::psargs::psargs_trimmed;

pub const NT_PRSTATUS: u32 = 1;
/// The FP registers (`user_fpregs_struct`), also a PTRACE_GETREGSET set.
pub const NT_FPREGSET: u32 = 2;
/// The XSAVE area (owner `LINUX`), also a PTRACE_GETREGSET set.
pub const NT_X86_XSTATE: u32 = 0x202;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
pub const NT_SIGINFO: u32 = 0x5349_4749;
pub const NT_FILE: u32 = 0x4649_4c45;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// One thread's `NT_PRSTATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrStatus {
    /// Signal that stopped the thread (`pr_cursig`).
    pub cursig: u16,
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub registers: Registers,
}

/// Size of `struct elf_prstatus` on x86_64.
pub const PRSTATUS_SIZE: usize = 336;
const PRSTATUS_REG_OFFSET: usize = 112;

pub fn parse_prstatus(b: &[u8]) -> Option<PrStatus> {
    if b.len() < PRSTATUS_REG_OFFSET + 27 * 8 {
        return None;
    }
    let mut regs = [0u64; 27];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = u64_at(b, PRSTATUS_REG_OFFSET + i * 8)?;
    }
    Some(PrStatus {
        cursig: u16_at(b, 12)?,
        pid: i32_at(b, 32)?,
        ppid: i32_at(b, 36)?,
        pgrp: i32_at(b, 40)?,
        sid: i32_at(b, 44)?,
        registers: Registers(regs),
    })
}

/// The process's `NT_PRPSINFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrPsinfo {
    pub state: u8,
    pub sname: u8,
    pub flag: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    pub fname: OsString,
    pub psargs: OsString,
}

/// Size of `struct elf_prpsinfo` on x86_64.
pub const PRPSINFO_SIZE: usize = 136;

fn c_string(b: &[u8]) -> OsString {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    OsString::from_vec(b[..end].to_vec())
}

pub fn parse_prpsinfo(b: &[u8]) -> Option<PrPsinfo> {
    if b.len() < PRPSINFO_SIZE {
        return None;
    }
    // The kernel turns the last argument's NUL into a space; drop it, as
    // psargs built from a live process does.
    let psargs = psargs_trimmed(c_string(&b[56..136]).into_vec());
    Some(PrPsinfo {
        state: b[0],
        sname: b[1],
        flag: u64_at(b, 8)?,
        uid: u32_at(b, 16)?,
        gid: u32_at(b, 20)?,
        pid: i32_at(b, 24)?,
        ppid: i32_at(b, 28)?,
        pgrp: i32_at(b, 32)?,
        sid: i32_at(b, 36)?,
        fname: c_string(&b[40..56]),
        psargs,
    })
}

/// Signals whose `siginfo_t` carries a fault address.
fn has_fault_addr(signo: i32) -> bool {
    matches!(signo, 4 | 5 | 7 | 8 | 11) // SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV
}

pub fn parse_siginfo(b: &[u8]) -> Option<SignalInfo> {
    let signo = i32_at(b, 0)?;
    let errno = i32_at(b, 4)?;
    let code = i32_at(b, 8)?;
    let fault_addr = if has_fault_addr(signo) && code > 0 {
        u64_at(b, 16)
    } else {
        None
    };
    // si_code <= 0 means the signal came from a process (SI_USER, SI_TKILL,
    // SI_QUEUE...), which fills si_pid and si_uid.
    let (sender_pid, sender_uid) = if code <= 0 {
        (i32_at(b, 16), u32_at(b, 20))
    } else {
        (None, None)
    };
    Some(SignalInfo {
        signo,
        code,
        errno,
        fault_addr,
        sender_pid,
        sender_uid,
    })
}

/// One entry of `NT_FILE`: a file-backed mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    /// Offset into the file, in bytes.
    pub offset: u64,
    pub path: PathBuf,
}

/// Parse `NT_FILE`. Returns the entries that are complete; `truncated` is
/// set when the table promised more than the bytes hold.
pub fn parse_nt_file(b: &[u8]) -> (Vec<FileMapping>, bool) {
    let (Some(count), Some(page_size)) = (u64_at(b, 0), u64_at(b, 8)) else {
        return (Vec::new(), !b.is_empty());
    };
    let table = 16usize;
    // Never trust the count for an allocation: bound it by what fits.
    let max_entries = (b.len().saturating_sub(table) / 24) as u64;
    let n = count.min(max_entries) as usize;
    let mut truncated = count > max_entries;
    let mut names = b.get(table + n * 24..).unwrap_or(&[]).split(|&c| c == 0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let off = table + i * 24;
        let (Some(start), Some(end), Some(pgoff)) =
            (u64_at(b, off), u64_at(b, off + 8), u64_at(b, off + 16))
        else {
            truncated = true;
            break;
        };
        let Some(name) = names.next() else {
            truncated = true;
            break;
        };
        out.push(FileMapping {
            start,
            end,
            offset: pgoff.saturating_mul(page_size),
            path: PathBuf::from(OsString::from_vec(name.to_vec())),
        });
    }
    (out, truncated)
}

/// The signal that ended a process, from a core's `NT_SIGINFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    /// The faulting address for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP.
    pub fault_addr: Option<u64>,
    /// The sender for signals sent by a process (`si_code <= 0`).
    pub sender_pid: Option<i32>,
    pub sender_uid: Option<u32>,
}

impl SignalInfo {
    /// Whether the signal ended the process. gdb's gcore records the
    /// SIGSTOP it stopped the process with, which kills nothing; npgcore
    /// records no signal (0).
    pub fn is_fatal(&self) -> bool {
        self.signo != nix::libc::SIGSTOP && self.signo != 0
    }

    /// One line for a report: `SIGSEGV (signal 11) at address 0x0`,
    /// `SIGABRT (signal 6) sent by pid 42 uid 0`.
    pub fn describe(&self) -> String {
        let name = nix::sys::signal::Signal::try_from(self.signo)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| format!("signal {}", self.signo));
        let mut text = format!("{name} (signal {})", self.signo);
        if let Some(addr) = self.fault_addr {
            text.push_str(&format!(" at address {addr:#x}"));
        }
        if let Some(pid) = self.sender_pid {
            text.push_str(&format!(" sent by pid {pid}"));
            if let Some(uid) = self.sender_uid {
                text.push_str(&format!(" uid {uid}"));
            }
        }
        text
    }
}

/// x86_64 general-purpose registers in the kernel's `user_regs_struct`
/// order (also the order of `pr_reg` in `NT_PRSTATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers(pub [u64; 27]);

impl Registers {
    pub const NAMES: [&'static str; 27] = [
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
        "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds",
        "es", "fs", "gs",
    ];
    pub fn rip(&self) -> u64 {
        self.0[16]
    }
    pub fn rsp(&self) -> u64 {
        self.0[19]
    }
    pub fn rbp(&self) -> u64 {
        self.0[4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prstatus_fields_and_registers() {
        let mut b = vec![0u8; PRSTATUS_SIZE];
        b[12..14].copy_from_slice(&6u16.to_le_bytes());
        b[32..36].copy_from_slice(&4242i32.to_le_bytes());
        b[36..40].copy_from_slice(&1i32.to_le_bytes());
        for i in 0..27u64 {
            let off = 112 + i as usize * 8;
            b[off..off + 8].copy_from_slice(&(0x1000 + i).to_le_bytes());
        }
        let s = parse_prstatus(&b).unwrap();
        assert_eq!(s.cursig, 6);
        assert_eq!(s.pid, 4242);
        assert_eq!(s.ppid, 1);
        assert_eq!(s.registers.rip(), 0x1000 + 16);
        assert_eq!(s.registers.rsp(), 0x1000 + 19);
        assert!(parse_prstatus(&b[..200]).is_none());
    }

    #[test]
    fn prpsinfo_strings() {
        let mut b = vec![0u8; PRPSINFO_SIZE];
        b[0] = 0;
        b[1] = b'R';
        b[16..20].copy_from_slice(&1000u32.to_le_bytes());
        b[24..28].copy_from_slice(&77i32.to_le_bytes());
        b[40..44].copy_from_slice(b"node");
        b[56..70].copy_from_slice(b"node server.js");
        let p = parse_prpsinfo(&b).unwrap();
        assert_eq!(p.sname, b'R');
        assert_eq!(p.uid, 1000);
        assert_eq!(p.pid, 77);
        assert_eq!(p.fname, "node");
        assert_eq!(p.psargs, "node server.js");
        assert!(parse_prpsinfo(&b[..100]).is_none());
    }

    #[test]
    fn siginfo_fault_and_sender() {
        let mut b = vec![0u8; 128];
        b[0..4].copy_from_slice(&11i32.to_le_bytes());
        b[8..12].copy_from_slice(&1i32.to_le_bytes()); // SEGV_MAPERR
        b[16..24].copy_from_slice(&0xdeadu64.to_le_bytes());
        let s = parse_siginfo(&b).unwrap();
        assert_eq!(s.fault_addr, Some(0xdead));
        assert_eq!(s.sender_pid, None);

        let mut k = vec![0u8; 128];
        k[0..4].copy_from_slice(&6i32.to_le_bytes());
        k[8..12].copy_from_slice(&(-6i32).to_le_bytes()); // SI_TKILL
        k[16..20].copy_from_slice(&99i32.to_le_bytes());
        k[20..24].copy_from_slice(&0u32.to_le_bytes());
        let s = parse_siginfo(&k).unwrap();
        assert_eq!(s.sender_pid, Some(99));
        assert_eq!(s.fault_addr, None);
        assert!(parse_siginfo(&k[..8]).is_none());
    }

    fn nt_file(entries: &[(u64, u64, u64, &str)], page: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        b.extend_from_slice(&page.to_le_bytes());
        for (s, e, o, _) in entries {
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&e.to_le_bytes());
            b.extend_from_slice(&o.to_le_bytes());
        }
        for (_, _, _, n) in entries {
            b.extend_from_slice(n.as_bytes());
            b.push(0);
        }
        b
    }

    #[test]
    fn nt_file_table() {
        let b = nt_file(
            &[
                (0x400000, 0x401000, 0, "/bin/a"),
                (0x7f00, 0x8f00, 2, "/lib/b.so"),
            ],
            4096,
        );
        let (v, truncated) = parse_nt_file(&b);
        assert!(!truncated);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].offset, 8192);
        assert_eq!(v[1].path, PathBuf::from("/lib/b.so"));
    }

    #[test]
    fn nt_file_lies_are_bounded() {
        let mut b = nt_file(&[(1, 2, 0, "/x")], 4096);
        b[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let (v, truncated) = parse_nt_file(&b);
        assert!(truncated);
        assert!(v.len() <= 1);
        assert_eq!(parse_nt_file(&[]), (Vec::new(), false));
        assert!(parse_nt_file(&[1, 2, 3]).1);
    }
}
