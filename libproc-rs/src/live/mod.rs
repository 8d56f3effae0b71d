//! A live process, read through /proc and `process_vm_readv`.
//!
//! argv, environment, auxv and maps are files under /proc, memory is copied
//! with `process_vm_readv` (falling back to `/proc/PID/mem` where that system
//! call is unavailable), descriptors and sockets come from /proc and
//! sock_diag ([`fds`]). Files the process mapped are opened through
//! `/proc/PID/root`, so a process in a container resolves its own paths.
//! Only [`capture`] stops anything: each thread, for as long as copying its
//! registers and some stack takes; and [`freeze`], every thread together,
//! for as long as a core writer copies registers and memory.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, IoSliceMut, Read};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

pub mod capture;
pub mod fds;
pub mod freeze;
pub mod notes;
pub mod reread;
pub mod sockdiag;

use nix::errno::Errno;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

use crate::diag::Sink;
use crate::error::{Error, PermissionCause, Result};
use crate::parse::auxv::{AuxEntry, parse_auxv};
use crate::parse::maps::parse_line;
use crate::parse::smaps::{MappingUsage, SmapsParser};
use crate::parse::task::{parse_syscall_sp, split_nul_list, stat_state};
use crate::root::{RootDir, SearchPath};
use crate::target::{
    Mapping, Memory, MemoryExt, OpenOptions, ProcessTarget, Psinfo, REWRITTEN_ARGV, Source,
    StringList, Thread, psargs_from_arg_area, trim_title_padding,
};
use reread::{for_each_line, read_consistent};

/// `PF_KTHREAD` in the flags field of /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;
/// Bit of CAP_SYS_PTRACE in the capability masks.
const CAP_SYS_PTRACE: u32 = 19;

/// A running process.
#[derive(Debug)]
pub struct LiveProcess {
    source: Source,
    psinfo: Psinfo,
    /// `/proc/PID`, or `/proc/PID/task/TID` of a live thread when the leader
    /// has exited but other threads still run.
    dir: PathBuf,
    /// The thread whose memory view is read (the leader, or that thread).
    mem_tid: i32,
    /// Real, effective and saved user ids, for diagnosing refusals.
    uids: [u32; 3],
    /// Start time from /proc/PID/stat: tells the process from a later one
    /// that reuses its PID.
    start_time: u64,
    /// The PID the process has in its own PID namespace (the last NSpid of
    /// /proc/PID/status; the PID itself where the kernel gives none).
    namespace_pid: i32,
    mem: OnceCell<std::result::Result<File, i32>>,
    /// The sysroot and debug directories given.
    options: OpenOptions,
    /// Where its files are looked for, from `/proc/PID/root` on (opened
    /// when first needed).
    search: OnceCell<SearchPath>,
    /// Threads seized by an earlier capture that had not stopped when it
    /// ended (asleep in state D): each capture lets go of those whose stop
    /// has come since, so that a sampling run leaves none stopped for more
    /// than a tick (the kernel lets go of the rest when this process exits).
    late: std::cell::RefCell<Vec<capture::Seized>>,
}

/// Give `each` the /proc/PID/pagemap entries (`file`) of `count` pages
/// from page number `first`, in order, read in blocks; returns how many it
/// was given (fewer when a read fails or the file ends).
pub(super) fn pagemap_entries(
    file: &File,
    first: u64,
    count: u64,
    mut each: impl FnMut(u64),
) -> u64 {
    let mut buf = [0u8; 8 * 4096];
    let mut done = 0u64;
    while done < count {
        let n = ((count - done) as usize).min(4096) * 8;
        let got = match file.read_at(&mut buf[..n], (first + done) * 8) {
            Ok(got) if got >= 8 => got,
            _ => break,
        };
        for e in buf[..got - got % 8].chunks_exact(8) {
            each(u64::from_le_bytes(e.try_into().expect("8 bytes")));
        }
        done += (got / 8) as u64;
    }
    done
}

/// The stack pointer of a thread blocked in a system call, from its task
/// directory's `syscall` file.
fn syscall_sp(task: &Path) -> Option<u64> {
    std::fs::read(task.join("syscall"))
        .ok()
        .and_then(|s| parse_syscall_sp(&s))
}

fn our_capabilities() -> u64 {
    procfs::process::Process::myself()
        .and_then(|p| p.status())
        .map_or(0, |s| s.capeff)
}

impl LiveProcess {
    /// The error for a refused stop, naming its cause and the fix.
    pub(crate) fn attach_refused(&self) -> Error {
        Error::PermissionDenied {
            pid: self.pid_i(),
            cause: self.permission_cause(true),
        }
    }

    /// Open process `pid`. Fails for processes that do not exist, zombies
    /// and kernel threads.
    pub fn open(pid: i32) -> Result<Self> {
        Self::open_with(pid, &OpenOptions::default())
    }

    /// [`LiveProcess::open`], with its files looked for also under a
    /// sysroot and its debug files in debug directories (`options`).
    pub fn open_with(pid: i32, options: &OpenOptions) -> Result<Self> {
        // The directories given must be there, whatever the process.
        for dir in options.sysroot.iter().chain(&options.debug_dirs) {
            RootDir::open(dir).map_err(|e| Error::io(dir, e))?;
        }
        if pid <= 0 {
            return Err(Error::NoSuchProcess { pid });
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let process =
            procfs::process::Process::new(pid).map_err(|_| Error::NoSuchProcess { pid })?;
        let stat = process.stat().map_err(|_| Error::NoSuchProcess { pid })?;
        if u64::from(stat.flags) & PF_KTHREAD != 0 {
            return Err(Error::KernelThread { pid });
        }
        let (mut dir, mut mem_tid) = (proc_dir.clone(), pid);
        if stat.state == 'Z' {
            // The leader of a thread group may be a zombie while its other
            // threads run on; read through one of them.
            (dir, mem_tid) = Self::live_thread(&proc_dir, pid).ok_or(Error::Zombie { pid })?;
        }
        let status = process.status().ok();
        let (uid, gid, uids) = match &status {
            Some(s) => (s.ruid, s.rgid, [s.ruid, s.euid, s.suid]),
            None => {
                let m = std::fs::metadata(&proc_dir).map_err(|_| Error::NoSuchProcess { pid })?;
                (m.uid(), m.gid(), [m.uid(); 3])
            }
        };
        let mut live = LiveProcess {
            source: Source::Live { pid },
            psinfo: Psinfo {
                pid,
                ppid: stat.ppid,
                uid,
                gid,
                state: stat.state,
                fname: OsString::new(),
                psargs: OsString::new(),
            },
            dir,
            mem_tid,
            uids,
            start_time: stat.starttime,
            namespace_pid: status
                .as_ref()
                .and_then(|s| s.nspid.as_ref()?.last().copied())
                .unwrap_or(pid),
            mem: OnceCell::new(),
            options: options.clone(),
            search: OnceCell::new(),
            late: std::cell::RefCell::new(Vec::new()),
        };
        let comm = live.read_file("comm")?;
        live.psinfo.fname = OsString::from_vec(comm.strip_suffix(b"\n").unwrap_or(&comm).to_vec());
        let cmdline = live.read_file("cmdline")?;
        live.psinfo.psargs = psargs_from_arg_area(&cmdline);
        Ok(live)
    }

    /// Each /proc/PID/pagemap entry of `[start, end)` (one per 4 KiB page),
    /// in order; `None` when not all of them could be read.
    fn pagemap(&self, start: u64, end: u64, each: impl FnMut(u64)) -> Option<()> {
        let file = File::open(self.dir.join("pagemap")).ok()?;
        let (first, last) = (start / 4096, end.div_ceil(4096));
        let count = last.saturating_sub(first);
        (pagemap_entries(&file, first, count, each) == count).then_some(())
    }

    /// A thread of `pid` other than the (zombie) leader that is still alive.
    fn live_thread(proc_dir: &Path, pid: i32) -> Option<(PathBuf, i32)> {
        for entry in std::fs::read_dir(proc_dir.join("task")).ok()?.flatten() {
            // Threads may exit while we look: skip, do not give up.
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if tid == pid {
                continue;
            }
            let Ok(stat) = std::fs::read(entry.path().join("stat")) else {
                continue;
            };
            if matches!(stat_state(&stat), Some(s) if s != 'Z' && s != 'X') {
                return Some((entry.path(), tid));
            }
        }
        None
    }

    /// argc as exec left it on the stack (/proc/PID/stat's startstack is the
    /// address of argc), where the memory can be read.
    fn initial_argc(&self) -> Option<usize> {
        use procfs::FromRead;
        // From the directory we read through: a zombie leader's own stat
        // shows no memory.
        let stat = procfs::process::Stat::from_file(self.dir.join("stat")).ok()?;
        if stat.startstack == 0 {
            return None;
        }
        let argc = self.read_u64(stat.startstack).ok()?;
        (argc < 1 << 20).then_some(argc as usize)
    }

    /// An empty answer from /proc where there is always something: if the
    /// process is no longer the one we opened (it exited, or its PID now
    /// belongs to another), that is why.
    fn gone_if_empty(&self, empty: bool) -> Result<()> {
        if empty && !self.still_there() {
            return Err(Error::ProcessGone { pid: self.pid_i() });
        }
        Ok(())
    }

    fn still_there(&self) -> bool {
        match procfs::process::Process::new(self.pid_i()).and_then(|p| p.stat()) {
            Ok(stat) => {
                stat.starttime == self.start_time
                    && (stat.state != 'Z' || self.mem_tid != self.pid_i())
            }
            Err(_) => false,
        }
    }

    fn task_dir(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/task", self.pid_i()))
    }

    fn pid_i(&self) -> i32 {
        self.psinfo.pid
    }

    /// Turn an I/O error on a /proc file into the error a user should see.
    fn proc_error(&self, path: &Path, e: io::Error) -> Error {
        let pid = self.pid_i();
        match e.raw_os_error() {
            Some(nix::libc::ENOENT) | Some(nix::libc::ESRCH) => Error::ProcessGone { pid },
            Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => Error::PermissionDenied {
                pid,
                // /proc/PID/mem is guarded like ptrace attach; the others
                // like a ptrace read.
                cause: self.permission_cause(path.ends_with("mem")),
            },
            _ => Error::io(path, e),
        }
    }

    /// Work out why access was refused. `attach` is true for accesses that
    /// need PTRACE_MODE_ATTACH (memory), which Yama also governs.
    fn permission_cause(&self, attach: bool) -> PermissionCause {
        let our_uid = nix::unistd::geteuid().as_raw();
        let caps = our_capabilities();
        let privileged = caps & (1 << CAP_SYS_PTRACE) != 0;
        // The kernel wants our uid to equal the target's real, effective and
        // saved uids alike.
        let other_user = self.uids.iter().any(|&u| u != our_uid);
        if !privileged && other_user {
            if our_uid == 0 {
                return PermissionCause::MissingCapability;
            }
            let names = RootDir::open(Path::new("/"))
                .map(|r| r.id_names())
                .unwrap_or_default();
            return PermissionCause::OtherUser {
                target_uid: self.psinfo.uid,
                target_user: names.user(self.psinfo.uid).map(str::to_owned),
                our_uid,
            };
        }
        if attach
            && let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            && let Ok(level) = s.trim().parse::<u32>()
            && (level >= 3 || (level >= 1 && !privileged))
        {
            return PermissionCause::PtraceScope { level };
        }
        // A non-dumpable process has its /proc files owned by root.
        if !privileged
            && let Ok(m) = std::fs::metadata(self.dir.join("environ"))
            && m.uid() == 0
            && our_uid != 0
        {
            return PermissionCause::NotDumpable;
        }
        if our_uid == 0 && !privileged {
            return PermissionCause::MissingCapability;
        }
        PermissionCause::Unknown
    }

    /// Read a whole file under the process's /proc directory. These files
    /// read back empty once the process has exited, so an empty answer is
    /// checked against the process still being there.
    fn read_file(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(name);
        let mut buf = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| self.proc_error(&path, e))?;
        self.gone_if_empty(buf.is_empty())?;
        Ok(buf)
    }

    /// Read a file under the process's /proc directory line by line,
    /// without holding it whole (maps and smaps can be tens of megabytes).
    /// An empty file is checked as in [`LiveProcess::read_file`].
    fn read_lines(&self, name: &str, line: impl FnMut(&[u8])) -> Result<()> {
        let path = self.dir.join(name);
        let read = File::open(&path)
            .and_then(|mut f| for_each_line(&mut f, line))
            .map_err(|e| self.proc_error(&path, e))?;
        self.gone_if_empty(read == 0)
    }

    fn read_via_mem_file(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let path = self.dir.join("mem");
        let file = match self.mem.get_or_init(|| {
            File::open(&path).map_err(|e| e.raw_os_error().unwrap_or(nix::libc::EIO))
        }) {
            Ok(f) => f,
            Err(errno) => return Err(self.proc_error(&path, io::Error::from_raw_os_error(*errno))),
        };
        match file.read_at(buf, addr) {
            Ok(n) if n > 0 => Ok(n),
            Ok(_) => Err(Error::MemoryUnavailable {
                addr,
                reason: "not mapped",
            }),
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => Err(Error::MemoryUnavailable {
                addr,
                reason: "not mapped",
            }),
            Err(e) => Err(self.proc_error(&path, e)),
        }
    }
}

impl Memory for LiveProcess {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: buf.len(),
        }];
        let mut local = [IoSliceMut::new(buf)];
        match process_vm_readv(Pid::from_raw(self.mem_tid), &mut local, &remote) {
            Ok(n) if n > 0 => Ok(n),
            Ok(_) | Err(Errno::EFAULT) => Err(Error::MemoryUnavailable {
                addr,
                reason: "not mapped",
            }),
            Err(Errno::ESRCH) => Err(Error::ProcessGone { pid: self.pid_i() }),
            // EPERM may be a seccomp filter on process_vm_readv rather than
            // a refusal of access, and ENOSYS a kernel without it: the mem
            // file either works or says why not.
            Err(_) => self.read_via_mem_file(addr, buf),
        }
    }

    fn read_ranges(&self, ranges: &[(u64, usize)], out: &mut [u8]) -> Vec<bool> {
        // process_vm_readv stops at the first remote range it cannot read:
        // what came before it is whole, it is not, and the rest is asked
        // again. At most IOV_MAX (1024) ranges a call.
        let mut ok = vec![false; ranges.len()];
        // Where each range's slot starts in `out`, and where the last ends.
        let mut slots = Vec::with_capacity(ranges.len() + 1);
        let mut end = 0usize;
        for &(_, len) in ranges {
            slots.push(end);
            end += len;
        }
        slots.push(end);
        if out.len() < end {
            return ok;
        }
        let mut i = 0;
        while i < ranges.len() {
            let n = (ranges.len() - i).min(1024);
            let remote: Vec<RemoteIoVec> = ranges[i..i + n]
                .iter()
                .map(|&(a, len)| RemoteIoVec {
                    base: a as usize,
                    len,
                })
                .collect();
            let mut local = [IoSliceMut::new(&mut out[slots[i]..slots[i + n]])];
            let got = match process_vm_readv(Pid::from_raw(self.mem_tid), &mut local, &remote) {
                Ok(got) => got,
                Err(Errno::EFAULT) => 0,
                // Refused or unsupported: one by one, through read_memory's
                // fallback.
                Err(_) => {
                    for j in i..ranges.len() {
                        let slot = &mut out[slots[j]..slots[j + 1]];
                        ok[j] = self.read_exact_at(ranges[j].0, slot).is_ok();
                    }
                    return ok;
                }
            };
            // The ranges read whole: those whose slots end within `got`.
            let whole = slots[i + 1..=i + n].partition_point(|&e| e - slots[i] <= got);
            ok[i..i + whole].fill(true);
            // The range that failed (a partial read of it included) is
            // skipped.
            i += if whole == n { n } else { whole + 1 };
        }
        ok
    }
}

impl ProcessTarget for LiveProcess {
    fn source(&self) -> &Source {
        &self.source
    }

    fn psinfo(&self) -> &Psinfo {
        &self.psinfo
    }

    fn argv(&self) -> Result<StringList> {
        let mut items = split_nul_list(&self.read_file("cmdline")?);
        let trailing_empty = items.iter().rev().take_while(|s| s.is_empty()).count();
        if trailing_empty == 0 {
            return Ok(StringList {
                items,
                caveat: None,
            });
        }
        // An intact area splits into exactly argc strings; a title written
        // over it leaves NUL padding, read as empty strings past argc. argc
        // needs the process's memory; without it nothing is dropped.
        let caveat = match self.initial_argc() {
            Some(argc) if items.len() > argc && trim_title_padding(&mut items) => {
                Some(REWRITTEN_ARGV.to_owned())
            }
            Some(_) => None,
            None if trailing_empty >= 2 => Some(format!(
                "argv ends in {trailing_empty} empty strings, which may be the padding of a \
                 title written over the arguments; without access to the process's memory \
                 they cannot be told apart"
            )),
            None => None,
        };
        Ok(StringList { items, caveat })
    }

    fn initial_environ(&self) -> Result<StringList> {
        Ok(StringList {
            items: split_nul_list(&self.read_file("environ")?),
            caveat: None,
        })
    }

    fn auxv(&self) -> Result<Vec<AuxEntry>> {
        Ok(parse_auxv(&self.read_file("auxv")?))
    }

    fn mappings(&self) -> Result<Vec<Mapping>> {
        read_consistent(
            || {
                let mut maps = Vec::new();
                self.read_lines("maps", |l| maps.extend(parse_line(l)))?;
                Ok(maps)
            },
            |m| m,
        )
    }

    fn mappings_with_usage(&self) -> Result<Option<Vec<(Mapping, Option<MappingUsage>)>>> {
        read_consistent(
            || {
                let mut parser = SmapsParser::default();
                self.read_lines("smaps", |l| parser.line(l))?;
                Ok(parser.finish())
            },
            |(m, _)| m,
        )
        .map(|v| Some(v.into_iter().map(|(m, u)| (m, Some(u))).collect()))
    }

    fn resident_kib(&self, start: u64, end: u64) -> Option<u64> {
        // Bit 63: present (bit 62, swapped, is not resident, as smaps's Rss
        // counts). The shared zero page, which a read of untouched memory
        // maps, is not counted (smaps does not count it either).
        let zero = zero_page_frame();
        let mut resident = 0u64;
        self.pagemap(start, end, |e| {
            resident += u64::from(e >> 63 == 1 && Some(e & PFN_MASK) != zero);
        })?;
        Some(resident * 4)
    }

    fn populated_pages(&self, start: u64, end: u64) -> Option<Vec<bool>> {
        let zero = zero_page_frame();
        let mut pages = Vec::with_capacity((end.saturating_sub(start) / 4096) as usize);
        self.pagemap(start, end, |e| {
            let present = e >> 63 == 1 && Some(e & PFN_MASK) != zero;
            pages.push(present || (e >> 62) & 1 == 1);
        })?;
        Some(pages)
    }

    fn thread_state(&self, tid: i32) -> Option<char> {
        capture::thread_state(self.pid_i(), tid)
    }

    fn thread_ids(&self) -> Result<Vec<i32>> {
        let task_dir = self.task_dir();
        let entries = std::fs::read_dir(&task_dir).map_err(|e| self.proc_error(&task_dir, e))?;
        let mut tids: Vec<i32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        tids.sort_unstable_by_key(|&t| (t != self.pid_i(), t));
        Ok(tids)
    }

    fn threads(&self) -> Result<Vec<Thread>> {
        let task_dir = self.task_dir();
        let tids = self.thread_ids()?;
        let mut threads = Vec::with_capacity(tids.len());
        for tid in tids {
            let dir = task_dir.join(tid.to_string());
            // A thread that exits while we look is skipped.
            let Ok(comm) = std::fs::read(dir.join("comm")) else {
                continue;
            };
            let name = OsString::from_vec(comm.strip_suffix(b"\n").unwrap_or(&comm).to_vec());
            let stack_pointer = syscall_sp(&dir);
            threads.push(Thread {
                tid,
                name: Some(name),
                registers: None,
                stack_pointer,
            });
        }
        Ok(threads)
    }

    fn thread_stack_pointers(&self) -> Result<Vec<(i32, Option<u64>)>> {
        let task_dir = self.task_dir();
        Ok(self
            .thread_ids()?
            .into_iter()
            .map(|tid| (tid, syscall_sp(&task_dir.join(tid.to_string()))))
            .collect())
    }

    fn open_files(
        &self,
        options: crate::openfiles::Options,
        sink: &mut dyn Sink,
    ) -> Result<crate::openfiles::FdTable> {
        let limits = self.read_file("limits")?;
        let table = fds::describe_live(&self.dir, &limits, options, sink)
            .map_err(|e| self.proc_error(&self.dir.join("fd"), e))?;
        // Every fd vanishing at once means the process exited meanwhile.
        self.gone_if_empty(table.fds.is_empty())?;
        Ok(table)
    }

    /// `/proc/PID/root`, then `/proc/PID/map_files` (the mapped files
    /// themselves, whatever their paths: for a process in a chroot or
    /// another mount namespace, whose paths in /proc/PID/maps are not its
    /// own), then the sysroot and this machine's root.
    fn search_path(&self) -> Result<&SearchPath> {
        if let Some(search) = self.search.get() {
            return Ok(search);
        }
        let path = self.dir.join("root");
        let mut root = RootDir::open(&path).map_err(|e| self.proc_error(&path, e))?;
        let mount_ns = |dir: &Path| std::fs::read_link(dir.join("ns/mnt")).ok();
        let ours = mount_ns(Path::new("/proc/self"));
        if ours.is_none() || mount_ns(&self.dir) != ours {
            root = root.with_other_mounts();
        }
        let search = SearchPath::new(
            Some(root),
            Some(self.dir.join("map_files")),
            self.options.sysroot.as_deref(),
            &self.options.debug_dirs,
        )
        .map_err(|(dir, e)| Error::io(dir, e))?;
        Ok(self.search.get_or_init(|| search))
    }

    fn capture_threads(
        &self,
        request: crate::target::capture::CaptureRequest<'_>,
        while_held: &mut dyn crate::target::capture::WhileHeld,
    ) -> Result<Vec<crate::target::capture::Captured>> {
        capture::capture_threads(self, request, while_held)
    }

    /// The last NSpid field of /proc/PID/status; the PID itself where that
    /// cannot be read.
    fn namespace_pid(&self) -> Option<i32> {
        Some(self.namespace_pid)
    }
}

/// The frame-number bits of a /proc/PID/pagemap entry.
const PFN_MASK: u64 = (1 << 55) - 1;

/// The frame of the kernel's shared zero page, learnt from a page of our
/// own that was read and never written; `None` where pagemap hides frames
/// (without CAP_SYS_ADMIN they read as 0).
fn zero_page_frame() -> Option<u64> {
    static FRAME: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *FRAME.get_or_init(|| {
        let page = memmap2::MmapMut::map_anon(4096).ok()?;
        // Read, never written: the kernel maps its zero page here.
        std::hint::black_box(page[0]);
        let mut e = [0u8; 8];
        let got = File::open("/proc/self/pagemap")
            .and_then(|f| f.read_at(&mut e, page.as_ptr() as u64 / 4096 * 8))
            .ok();
        let e = u64::from_le_bytes(e);
        (got == Some(8) && e >> 63 == 1 && e & PFN_MASK != 0).then_some(e & PFN_MASK)
    })
}
