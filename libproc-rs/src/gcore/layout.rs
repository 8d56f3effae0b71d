//! The bytes of an x86_64 ELF core's headers and notes, as the kernel lays
//! them out (fs/binfmt_elf.c): the ELF header, the program headers (one
//! PT_NOTE, then a PT_LOAD per mapping), the notes, then the memory from
//! the next page on. Encoders only: what goes in is the caller's.

use crate::parse::notes::{
    NT_AUXV, NT_FILE, NT_PRPSINFO, NT_PRSTATUS, NT_SIGINFO, PRPSINFO_SIZE, PRSTATUS_SIZE, PrPsinfo,
};
use crate::target::Registers;

pub use crate::parse::notes::{NT_FPREGSET, NT_X86_XSTATE};

const EHDR_SIZE: usize = 64;
pub(super) const PHDR_SIZE: usize = 56;
const SHDR_SIZE: usize = 64;
/// `e_phnum`'s escape: the count is in section header 0's `sh_info`.
const PN_XNUM: usize = 0xffff;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// One note: owner name, type, descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub owner: Vec<u8>,
    pub n_type: u32,
    pub desc: Vec<u8>,
}

impl Note {
    pub(super) fn core(n_type: u32, desc: Vec<u8>) -> Note {
        Note {
            owner: b"CORE".to_vec(),
            n_type,
            desc,
        }
    }

    /// Its size in the PT_NOTE segment: header, NUL-terminated name and
    /// descriptor, each padded to 4 bytes.
    pub fn size(&self) -> usize {
        12 + pad4(self.owner.len() + 1) + pad4(self.desc.len())
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&((self.owner.len() + 1) as u32).to_le_bytes());
        out.extend_from_slice(&(self.desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.n_type.to_le_bytes());
        let name_at = out.len();
        out.extend_from_slice(&self.owner);
        out.resize(name_at + pad4(self.owner.len() + 1), 0);
        let desc_at = out.len();
        out.extend_from_slice(&self.desc);
        out.resize(desc_at + pad4(self.desc.len()), 0);
    }
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

/// What `NT_PRSTATUS` says of one thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrStatus {
    pub cursig: u16,
    pub sigpend: u64,
    pub sighold: u64,
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub sid: i32,
    /// utime, stime, cutime, cstime in microseconds.
    pub times_us: [u64; 4],
    pub registers: Option<Registers>,
}

/// `struct elf_prstatus`.
pub fn prstatus(s: &PrStatus) -> Vec<u8> {
    let mut b = vec![0u8; PRSTATUS_SIZE];
    put(&mut b, 12, &s.cursig.to_le_bytes());
    put(&mut b, 16, &s.sigpend.to_le_bytes());
    put(&mut b, 24, &s.sighold.to_le_bytes());
    for (i, v) in [s.pid, s.ppid, s.pgrp, s.sid].iter().enumerate() {
        put(&mut b, 32 + i * 4, &v.to_le_bytes());
    }
    for (i, us) in s.times_us.iter().enumerate() {
        put(&mut b, 48 + i * 16, &(us / 1_000_000).to_le_bytes());
        put(&mut b, 56 + i * 16, &(us % 1_000_000).to_le_bytes());
    }
    if let Some(r) = &s.registers {
        for (i, v) in r.0.iter().enumerate() {
            put(&mut b, 112 + i * 8, &v.to_le_bytes());
        }
        // pr_fpvalid: an NT_FPREGSET follows.
        put(&mut b, 328, &1i32.to_le_bytes());
    }
    b
}

/// The kernel's `pr_state` and `pr_sname` for a state letter /proc shows.
pub fn state_numbers(letter: char) -> (u8, u8) {
    match letter {
        'R' => (0, b'R'),
        'S' => (1, b'S'),
        'D' => (2, b'D'),
        'T' | 't' => (3, b'T'),
        'Z' => (4, b'Z'),
        'X' => (5, b'W'),
        _ => (6, b'.'),
    }
}

/// `struct elf_prpsinfo`, from the record the core reader parses it into
/// (with `pr_nice`, which the reader does not keep): the command name in
/// 16 bytes, the arguments in 80.
pub fn prpsinfo(p: &PrPsinfo, nice: i8) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut b = vec![0u8; PRPSINFO_SIZE];
    b[0] = p.state;
    b[1] = p.sname;
    b[2] = u8::from(p.sname == b'Z');
    b[3] = nice as u8;
    put(&mut b, 8, &p.flag.to_le_bytes());
    put(&mut b, 16, &p.uid.to_le_bytes());
    put(&mut b, 20, &p.gid.to_le_bytes());
    for (i, v) in [p.pid, p.ppid, p.pgrp, p.sid].iter().enumerate() {
        put(&mut b, 24 + i * 4, &v.to_le_bytes());
    }
    let fname = p.fname.as_bytes();
    put(&mut b, 40, &fname[..fname.len().min(15)]);
    let args = p.psargs.as_bytes();
    let args: Vec<u8> = args[..args.len().min(79)]
        .iter()
        .map(|&c| if c == 0 { b' ' } else { c })
        .collect();
    put(&mut b, 56, &args);
    b
}

/// A `siginfo_t` of zeros: no signal made this core (a live process was
/// copied), which readers tell from a fatal one.
pub fn no_siginfo() -> Vec<u8> {
    vec![0u8; 128]
}

/// One entry of `NT_FILE`.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub start: u64,
    pub end: u64,
    /// Offset in the file, in bytes.
    pub offset: u64,
    pub path: Vec<u8>,
}

/// The `NT_FILE` table: count, page size, (start, end, offset in pages)
/// per entry, then the NUL-terminated paths.
pub fn nt_file(entries: &[FileEntry]) -> Vec<u8> {
    const PAGE: u64 = 4096;
    let mut b = Vec::new();
    b.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    b.extend_from_slice(&PAGE.to_le_bytes());
    for e in entries {
        b.extend_from_slice(&e.start.to_le_bytes());
        b.extend_from_slice(&e.end.to_le_bytes());
        b.extend_from_slice(&(e.offset / PAGE).to_le_bytes());
    }
    for e in entries {
        b.extend_from_slice(&e.path);
        b.push(0);
    }
    b
}

/// The notes of one stopped thread, in the kernel's order: `NT_PRSTATUS`
/// first, and for the first thread the process's notes right after it,
/// then its `NT_FPREGSET` and `NT_X86_XSTATE`.
#[derive(Debug)]
pub struct ThreadNotes {
    pub prstatus: Vec<u8>,
    pub fpregs: Vec<u8>,
    pub xstate: Option<Vec<u8>>,
}

/// Every note, in the kernel's order; `extra` (notes of our own) come
/// last.
pub fn all_notes(
    threads: Vec<ThreadNotes>,
    psinfo: Vec<u8>,
    siginfo: Vec<u8>,
    auxv: Vec<u8>,
    files: Vec<u8>,
    extra: &[Note],
) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut process = Some([
        Note::core(NT_PRPSINFO, psinfo),
        Note::core(NT_SIGINFO, siginfo),
        Note::core(NT_AUXV, auxv),
        Note::core(NT_FILE, files),
    ]);
    for t in threads {
        notes.push(Note::core(NT_PRSTATUS, t.prstatus));
        if let Some(p) = process.take() {
            notes.extend(p);
        }
        notes.push(Note::core(NT_FPREGSET, t.fpregs));
        if let Some(x) = t.xstate {
            notes.push(Note {
                owner: b"LINUX".to_vec(),
                n_type: NT_X86_XSTATE,
                desc: x,
            });
        }
    }
    notes.extend(extra.iter().cloned());
    notes
}

/// One PT_LOAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub offset: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

/// Where the parts of the file go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Room for this many program headers besides PT_NOTE.
    pub load_slots: usize,
    pub notes_offset: u64,
    pub notes_len: u64,
    /// The extended-numbering section header, when there are too many
    /// segments for `e_phnum`.
    pub shdr_offset: Option<u64>,
    /// Where memory starts (page-aligned).
    pub data_offset: u64,
}

impl Layout {
    pub fn new(load_slots: usize, notes_len: usize) -> Layout {
        let phdrs = (load_slots + 1) * PHDR_SIZE;
        let notes_offset = (EHDR_SIZE + phdrs) as u64;
        let mut end = notes_offset + notes_len as u64;
        let shdr_offset = (load_slots + 1 >= PN_XNUM).then(|| {
            let at = end.div_ceil(8) * 8;
            end = at + SHDR_SIZE as u64;
            at
        });
        Layout {
            load_slots,
            notes_offset,
            notes_len: notes_len as u64,
            shdr_offset,
            data_offset: end.div_ceil(4096) * 4096,
        }
    }
}

/// The ELF header and the program headers, for `segments` (at most
/// `layout.load_slots` of them), and the extended-numbering section header
/// if the layout has one.
pub fn headers(layout: &Layout, segments: &[Segment]) -> (Vec<u8>, Option<Vec<u8>>) {
    let phnum = segments.len() + 1;
    let mut b = vec![0u8; EHDR_SIZE + phnum * PHDR_SIZE];
    put(&mut b, 0, b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little-endian
    b[6] = 1; // EV_CURRENT
    put(&mut b, 16, &4u16.to_le_bytes()); // ET_CORE
    put(&mut b, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut b, 20, &1u32.to_le_bytes());
    put(&mut b, 32, &(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    put(&mut b, 52, &(EHDR_SIZE as u16).to_le_bytes());
    put(&mut b, 54, &(PHDR_SIZE as u16).to_le_bytes());
    let shdr = layout.shdr_offset.map(|at| {
        put(&mut b, 40, &at.to_le_bytes()); // e_shoff
        put(&mut b, 58, &(SHDR_SIZE as u16).to_le_bytes());
        put(&mut b, 60, &1u16.to_le_bytes()); // e_shnum
        let mut s = vec![0u8; SHDR_SIZE];
        put(&mut s, 32, &1u64.to_le_bytes()); // sh_size: e_shnum
        put(&mut s, 44, &(phnum as u32).to_le_bytes()); // sh_info: the count
        s
    });
    put(&mut b, 56, &(phnum.min(PN_XNUM) as u16).to_le_bytes());
    let mut at = EHDR_SIZE;
    let mut phdr =
        |ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64, align: u64| {
            put(&mut b, at, &ty.to_le_bytes());
            put(&mut b, at + 4, &flags.to_le_bytes());
            put(&mut b, at + 8, &off.to_le_bytes());
            put(&mut b, at + 16, &vaddr.to_le_bytes());
            put(&mut b, at + 32, &filesz.to_le_bytes());
            put(&mut b, at + 40, &memsz.to_le_bytes());
            put(&mut b, at + 48, &align.to_le_bytes());
            at += PHDR_SIZE;
        };
    phdr(PT_NOTE, 0, layout.notes_offset, 0, layout.notes_len, 0, 4);
    for s in segments {
        let flags = [(s.read, PF_R), (s.write, PF_W), (s.exec, PF_X)]
            .iter()
            .filter(|(on, _)| *on)
            .fold(0, |f, (_, bit)| f | bit);
        phdr(PT_LOAD, flags, s.offset, s.vaddr, s.filesz, s.memsz, 4096);
    }
    (b, shdr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::notes::{parse_nt_file, parse_prpsinfo, parse_prstatus};

    #[test]
    fn notes_read_back_with_the_readers() {
        let mut regs = [0u64; 27];
        regs[16] = 0x401000;
        let s = PrStatus {
            pid: 42,
            ppid: 1,
            pgrp: 42,
            sid: 7,
            registers: Some(Registers(regs)),
            ..PrStatus::default()
        };
        let back = parse_prstatus(&prstatus(&s)).expect("prstatus");
        assert_eq!((back.pid, back.ppid, back.sid), (42, 1, 7));
        assert_eq!(back.registers.rip(), 0x401000);
        let (state, sname) = state_numbers('S');
        let p = PrPsinfo {
            state,
            sname,
            flag: 0,
            uid: 0,
            gid: 0,
            pid: 42,
            ppid: 1,
            pgrp: 42,
            sid: 42,
            fname: "node".into(),
            psargs: "node server.js".into(),
        };
        let back = parse_prpsinfo(&prpsinfo(&p, 0)).expect("prpsinfo");
        assert_eq!(back.sname, b'S');
        assert_eq!(back.fname, "node");
        assert_eq!(back.psargs, "node server.js");
        let files = nt_file(&[FileEntry {
            start: 0x1000,
            end: 0x3000,
            offset: 0x2000,
            path: b"/bin/x".to_vec(),
        }]);
        let (back, truncated) = parse_nt_file(&files);
        assert!(!truncated);
        assert_eq!((back[0].start, back[0].offset), (0x1000, 0x2000));
    }

    #[test]
    fn note_padding_and_layout() {
        let n = Note {
            owner: b"LINUX".to_vec(),
            n_type: 0x202,
            desc: vec![1, 2, 3],
        };
        let mut b = Vec::new();
        n.encode(&mut b);
        assert_eq!(b.len(), n.size());
        assert_eq!(b.len(), 12 + 8 + 4);
        let l = Layout::new(3, 100);
        assert_eq!(l.notes_offset, 64 + 4 * 56);
        assert_eq!(l.data_offset, 4096);
        assert!(Layout::new(70_000, 0).shdr_offset.is_some());
    }
}
