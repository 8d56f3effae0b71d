//! npgcore: a core file of a running process, after illumos gcore(1).
//! Flags and rendering only; the core is written by libproc-rs's `gcore`.

use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::{CommandFactory, Parser};
use libproc_rs::Error;
use libproc_rs::diag::{Notice, Severity};
use libproc_rs::escape::{escape_os, escape_path};
use libproc_rs::gcore::{self, CoreRequest, CoreWritten, Note};
use libproc_rs::live::LiveProcess;
use libproc_rs::live::notes::OWNER;
use nptools_cli::json::json_bytes;
use serde_json::{Map, Value, json};

/// Write core files of running processes.
#[derive(Debug, Parser)]
#[command(
    name = "npgcore",
    version,
    about = "Write core files of running processes",
    long_about = "Write an x86_64 ELF core file of each process, named PREFIX.PID (core.PID in the \
current directory by default), and print its path. gdb, eu-stack and every nptools tool read it.\n\n\
The core holds what the kernel would dump had the process crashed, as \
/proc/PID/coredump_filter selects it: private and shared anonymous memory (heaps, stacks, the V8 \
heap), the first page of each ELF mapping (its build-id), and no file-backed text, which readers \
take from the files named in the core; --all adds file-backed mappings, as gdb's gcore does. \
Pages the process never touched are holes of a sparse file.\n\n\
The process is held stopped only while its registers and memory are copied: every thread is \
stopped together (PTRACE_SEIZE and PTRACE_INTERRUPT, so the image is consistent) and resumed \
right after; everything else is read before or after the stop. A process that was stopped \
(state T) stays stopped. On a terminal, a bar on stderr shows the copy's progress.\n\n\
The core holds the process's memory and secrets: it is created mode 0600, under no name until \
it is complete; an existing file is never replaced, and a failed or interrupted dump leaves \
nothing behind.",
    after_help = "Exit status: 0 when a core of every process was written, 1 when any failed, \
130 when interrupted (SIGINT, SIGTERM, SIGHUP), 2 on usage errors."
)]
pub struct Args {
    /// Name each core PREFIX.PID (default: core.PID in the current directory).
    #[arg(short = 'o', value_name = "PREFIX", default_value = "core")]
    pub prefix: OsString,

    /// Add file-backed mappings (executable and library text, mapped
    /// files), as gdb's gcore does: a larger core that needs no files to
    /// be read.
    #[arg(long)]
    pub all: bool,

    /// One JSON object per process, one per line: path, pid, sizes,
    /// segments, notes, threads and how long the process was held.
    #[arg(long)]
    pub json: bool,

    /// Process ids.
    #[arg(value_name = "pid", required = true)]
    pub pids: Vec<OsString>,
}

/// The clap definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// Run npgcore with the process's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    gcore::interrupt::catch_interrupts();
    let mut failed = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for operand in &args.pids {
        let shown = escape_os(operand);
        // Asked to stop after the last core: no more.
        match gcore::interrupt::stop_if_asked().and_then(|()| dump(&args, operand)) {
            Ok(Dumped {
                written,
                notes_caveats,
            }) => {
                for caveat in &notes_caveats {
                    eprintln!("npgcore: {shown}: warning: {caveat}");
                }
                for (tid, why) in &written.threads_lost {
                    eprintln!("npgcore: {shown}: warning: thread {tid} is not in the core: {why}");
                }
                if written.unreadable_bytes > 0 {
                    eprintln!(
                        "npgcore: {shown}: warning: {} bytes of memory could not be read; the \
                         core marks them missing",
                        written.unreadable_bytes
                    );
                }
                let line = if args.json {
                    serde_json::to_string(&Value::Object(json_doc(&written, &notes_caveats)))
                        .unwrap_or_default()
                } else {
                    escape_path(&written.path).into_owned()
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return ExitCode::from(u8::from(failed));
                }
            }
            Err(Error::Interrupted { signal }) => {
                eprintln!(
                    "npgcore: {shown}: interrupted by {signal}: the process runs on and no core \
                     was written"
                );
                return ExitCode::from(130);
            }
            Err(e) => {
                eprintln!("npgcore: {shown}: {e}");
                failed = true;
            }
        }
    }
    ExitCode::from(u8::from(failed))
}

/// A core written, with what was said while its notes were gathered.
#[derive(Debug)]
struct Dumped {
    written: CoreWritten,
    /// Why the NPTOOLS notes are partial or absent (said as warnings).
    notes_caveats: Vec<String>,
}

/// Our own notes (descriptors, thread names, limits, cwd and root, smaps),
/// read from /proc before the stop. A process whose /proc cannot be read
/// whole still gets a core, without them: a core is worth more than its
/// notes, and the caveats say what is missing.
fn nptools_notes(process: &LiveProcess) -> (Vec<Note>, Vec<String>) {
    let mut said: Vec<Notice> = Vec::new();
    let notes = match libproc_rs::live::notes::collect(process, &mut said) {
        Ok(notes) => notes
            .into_iter()
            .map(|(n_type, desc)| Note {
                owner: OWNER.to_vec(),
                n_type,
                desc,
            })
            .collect(),
        Err(e) => {
            said.push(Notice {
                severity: Severity::Warning,
                text: format!(
                    "the core has no NPTOOLS notes (descriptors, thread names, limits, smaps): {e}"
                ),
            });
            Vec::new()
        }
    };
    (notes, said.into_iter().map(|n| n.text).collect())
}

fn dump(args: &Args, operand: &OsStr) -> Result<Dumped, Error> {
    let pid = operand
        .to_str()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(Error::NotAProcessId)?
        .parse::<i32>()
        .map_err(|_| Error::PidOutOfRange)?;
    let process = LiveProcess::open(pid)?;
    let mut path = args.prefix.clone();
    path.push(format!(".{pid}"));
    let path = PathBuf::from(path);
    // Gathered before the stop, so that they cost the process nothing.
    let (extra_notes, notes_caveats) = nptools_notes(&process);
    let mut bar = ProgressBar::new(std::io::stderr().is_terminal(), pid);
    let request = CoreRequest {
        path: &path,
        all: args.all,
        extra_notes,
    };
    let written = gcore::write_core(&process, request, &mut |done, total| bar.show(done, total));
    bar.clear();
    Ok(Dumped {
        written: written?,
        notes_caveats,
    })
}

/// The `--json` document of one core.
fn json_doc(w: &CoreWritten, notes_caveats: &[String]) -> Map<String, Value> {
    let allocated = std::fs::metadata(&w.path).map_or(0, |m| m.blocks() * 512);
    let mut doc = Map::new();
    doc.insert(
        "path".into(),
        json_bytes(w.path.as_os_str().as_encoded_bytes()),
    );
    doc.insert("pid".into(), json!(w.pid));
    doc.insert("file_size".into(), json!(w.file_size));
    doc.insert("allocated_bytes".into(), json!(allocated));
    doc.insert("memory_bytes_written".into(), json!(w.memory_bytes));
    doc.insert("unreadable_bytes".into(), json!(w.unreadable_bytes));
    doc.insert("segments".into(), json!(w.segments));
    doc.insert("notes".into(), json!(w.notes));
    doc.insert("threads".into(), json!(w.threads));
    doc.insert(
        "threads_lost".into(),
        Value::Array(
            w.threads_lost
                .iter()
                .map(|(tid, why)| json!({"tid": tid, "why": why}))
                .collect(),
        ),
    );
    doc.insert("notes_caveats".into(), json!(notes_caveats));
    doc.insert("held_ms".into(), json!(ms(w.held)));
    doc.insert("wall_ms".into(), json!(ms(w.wall)));
    doc
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The copy's progress on stderr, when it is a terminal, redrawn ten times
/// a second and erased at the end. It is drawn by a thread of its own: the
/// copy, which runs while the process is held, only stores two numbers, so
/// a terminal that blocks (Ctrl-S, a stalled ssh) cannot hold the process.
#[derive(Debug)]
struct ProgressBar {
    shared: Arc<Shared>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    done: AtomicU64,
    total: AtomicU64,
    finished: AtomicBool,
}

impl ProgressBar {
    fn new(on: bool, pid: i32) -> ProgressBar {
        let shared = Arc::new(Shared::default());
        let drawer = on.then(|| {
            let shared = Arc::clone(&shared);
            gcore::interrupt::spawn_without_signals(move || draw_until_finished(&shared, pid))
        });
        ProgressBar { shared, drawer }
    }

    fn show(&self, done: u64, total: u64) {
        self.shared.total.store(total, Ordering::Relaxed);
        self.shared.done.store(done, Ordering::Relaxed);
    }

    fn clear(&mut self) {
        self.shared.finished.store(true, Ordering::Relaxed);
        if let Some(drawer) = self.drawer.take() {
            let _ = drawer.join();
        }
    }
}

fn draw_until_finished(shared: &Shared, pid: i32) {
    const WIDTH: u64 = 30;
    let mut drawn = false;
    while !shared.finished.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let total = shared.total.load(Ordering::Relaxed);
        if total == 0 {
            continue;
        }
        let done = shared.done.load(Ordering::Relaxed).min(total);
        let filled = done * WIDTH / total;
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '.' })
            .collect();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        eprint!(
            "\rnpgcore: {pid}: [{bar}] {:.0}/{:.0} MiB",
            mib(done),
            mib(total)
        );
        drawn = true;
    }
    if drawn {
        eprint!("\r{:60}\r", "");
    }
}

/// The EXAMPLES section of the man page.
pub const MAN_EXAMPLES: &str = r#"A core of a running node service, which runs on:
    $ npgcore 4242
    core.4242
    $ npstack core.4242
    $ gdb -batch -ex 'thread apply all bt' /usr/bin/node core.4242

Into another directory, with file-backed text (as gdb's gcore):
    $ npgcore -o /var/cores/api --all 4242
    /var/cores/api.4242

How long the process was held, for a script:
    $ npgcore --json 4242 | jq .held_ms
"#;

/// The man page's sections of npgcore's own.
pub const MAN_SECTIONS: &[(&str, &str)] = &[
    ("OPERANDS", MAN_OPERANDS),
    ("WHAT IS DUMPED", MAN_DUMPED),
    ("NOTES", MAN_NOTES),
];

const MAN_OPERANDS: &str = "Each operand is the id of a live process (decimal digits). A \
process that cannot be dumped (no such process, a zombie, a kernel thread, another user's \
process without CAP_SYS_PTRACE, one already traced by gdb or strace) is reported on stderr as \
`npgcore: PID: cause` and the others are dumped.";

const MAN_DUMPED: &str = "Memory is chosen as the kernel chooses it for a crash \
(fs/binfmt_elf.c's vma_dump_size) by /proc/PID/coredump_filter, with these differences: \
[vvar] and [vsyscall], which only the kernel can read, are listed with no bytes; a private \
mapping counts as written to when smaps shows anonymous pages in memory or in swap; the first \
page of a file mapping is kept when it starts with the ELF magic. Every mapping has a PT_LOAD \
segment; one whose memory is not in the core has p_filesz smaller than p_memsz, which readers \
report as missing. In private anonymous memory, pages /proc/PID/pagemap shows neither present \
nor swapped (never touched: zeros) are holes of a sparse file, so the core takes the disk \
space of the memory used. Memory that cannot be read even as a debugger reads it \
(/proc/PID/mem) is never written as zeros: its segment is split around it so that it is \
outside every file image (missing, not zero), and npgcore says how many bytes on stderr.";

/// The NOTES section of the man page: the notes of our own, after the
/// kernel's.
const MAN_NOTES: &str = "A core holds the kernel's notes, in the kernel's order: for each \
thread NT_PRSTATUS, NT_FPREGSET and NT_X86_XSTATE (owner LINUX), the first thread (the leader) \
first and followed by NT_PRPSINFO, NT_SIGINFO (all zeros: no signal made this core), NT_AUXV \
and NT_FILE.\n\n\
After them come notes of owner NPTOOLS, which keep what /proc knew of the process, read just \
before it was stopped: type 1, the descriptor table (every field npfiles shows live: type, \
mode, device and inode, owner, size, open flags and offset, the path, a socket's protocol, \
type, state and both endpoints, a UNIX peer's inode, epoll, eventfd, timerfd, signalfd and \
inotify details, the open-files limit); type 2, each thread's id and name; type 3, every \
resource limit, soft and hard; type 4, the working and root directories; type 5, each \
mapping's smaps figures in KiB (RSS, PSS, anonymous, swap, locked, dirty and the rest). Each \
is a version (u32, now 1) and a record of fields (tag u16, length u32, value), little-endian, \
ending with a field of tag 0 and length 0; a reader skips tags it does not know, and a note of \
another version, or a damaged one, is not used and is said so. doc/npgcore-notes.md in the \
source lists every tag. On such a core npfiles prints the descriptor table as it was live, \
npstack names the threads and npmap -x shows RSS, Anon and Locked; kernel and gdb cores have \
none of these. When /proc cannot be read whole, the core is written without them and \
npgcore says so.";
