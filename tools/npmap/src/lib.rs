//! npmap: the address-space map of a process or core, after illumos
//! pmap(1). Flags and rendering only; the map comes from libproc-rs
//! ([`libproc_rs::addrmap::address_map`]).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use libproc_rs::addrmap::{AddressMap, Label, MapEntry, Totals, address_map_with};
use libproc_rs::target::MapName;
use libproc_rs::v8heap::V8Kind;
use nptools_cli::json::JsonBytes;
use nptools_cli::report::{self, StreamedArray};
use nptools_cli::{self as cli, CommonArgs, SearchArgs};
use serde_json::{Map, Value, json};

/// Print the address-space map of processes and core files.
#[derive(Debug, Parser)]
#[command(
    name = "npmap",
    version,
    about = "Print the address-space map of processes and core files",
    long_about = "Print the address-space map of each process or core file, one line per \
mapping, as illumos pmap does: start address, size in KiB, mode (rwxs letters, - where a \
permission is missing; on a core a trailing * when the core does not hold all of the \
mapping's data), and what is mapped: a file, or [ heap ], [ heap arena ], [ stack ], \
[ stack tid=N ], [ v8 heap ], [ v8 large ], [ v8 code ], [ v8 read-only ], [ v8 reserved ], \
[ anon ], [ shared anon ], [anon:NAME], [ vdso ], [ vvar ]. The last line is the total.\n\n\
How a mapping is named decides the --summary category it counts in:\n\n\
heap: [ heap ], the brk heap (named by the kernel; in a core, the anonymous mapping that \
holds the C library's current break, __curbrk), and [ heap arena ], glibc's thread-arena \
heaps: a private anonymous read-write mapping on a 64 MiB boundary that fills the 64 MiB \
window or is followed by a reserved tail without write access ending exactly at the \
window's end, whose first bytes are a valid glibc heap_info header when they can be read. \
The reserved tail counts too.\n\n\
v8: the pages of node's V8 engine, each checked against the layout of its page header \
(its size, allocation area, reservation, and a space that belongs to the same V8 heap): \
[ v8 heap ], regular 256 KiB pages of the JavaScript heap (new, old and trusted space); \
[ v8 large ], large object pages; [ v8 code ], the code space's pages; [ v8 read-only ], \
the read-only space. The sum is V8's committed heap (v8.getHeapSpaceStatistics()'s \
space_size summed, process.memoryUsage().heapTotal), plus the read-only space, which those \
count as 0. A mapping partly V8's is split at the pages' boundaries (with -x, a live part's \
RSS from /proc/PID/pagemap). Buffers and other native memory are not V8's heap: they are \
heap or anon.\n\n\
v8-reserved: [ v8 reserved ], the part of V8's code range (a 512 MiB reservation) that \
holds no page: address space, not memory.\n\n\
stack: [ stack ], the main thread's stack, and [ stack tid=N ], the private anonymous \
mapping holding thread N's stack pointer (from a core's registers, or for a live thread \
blocked in a system call from /proc/PID/task/N/syscall; npmap never stops the process, so \
the stack of a thread running on a CPU at that moment is the thread stack no stack pointer \
is in whose glibc thread block, at its top, names the thread).\n\n\
anon: other private anonymous memory: [ anon ] (thread stacks not found, guard pages, \
reservations, glibc's mmap'd allocations, Buffers, V8's pages when --no-v8 is given or their \
layout is not recognised) and [anon:NAME].\n\n\
shared: shared memory that is no file's contents: [ shared anon ] (/dev/zero (deleted)), \
[anon_shmem:NAME] and System V segments (/SYSVkey (deleted)).\n\n\
file: every other mapping of a file, private or shared, deleted files and memfds included.\n\n\
other: pages of the kernel: [ vdso ], [ vvar ] and other bracketed names. [vsyscall] is not \
listed: it is not part of the process (VmSize does not count it).\n\n\
With -x, a live process's resident, anonymous and locked KiB come from one read of \
/proc/PID/smaps; a kernel or gdb core records none of these (shown as -), a core written by \
npgcore has them as /proc/PID/smaps said when it was dumped (its NPTOOLS notes); every core \
gets a Dumped column too: the KiB of each mapping the core holds. A * in the mode column means that some \
of the mapping is missing from the core, however little (a kernel core keeps only the first \
page of each mapped ELF file; gcore leaves out unmodified file text and the vvar pages, and \
records mappings without access as readable).\n\n\
An operand that is a decimal number is a live process; anything else is the path of an \
x86_64 ELF core file. Unprintable bytes in paths and names are shown as \\xNN and a \
backslash as \\\\, unless --raw is given.",
    after_help = "Exit status: 0 when every operand was reported, 1 when any failed, 2 on usage errors."
)]
pub struct Args {
    /// Extended listing: RSS, Anon and Locked KiB per mapping (live), or
    /// Dumped KiB (core), with totals.
    #[arg(short = 'x')]
    pub extended: bool,

    /// One `NAME SIZE` line per category (heap, v8, v8-reserved, anon,
    /// stack, file, shared, other, total), SIZE in KiB, no header; with -x, RSS as a third column
    /// (- for a core) and, for a core, the dumped KiB as a fourth.
    #[arg(long)]
    pub summary: bool,

    /// Do not look for V8's heap pages: they show as [ anon ], as before
    /// nptools knew them.
    #[arg(long = "no-v8")]
    pub no_v8: bool,

    #[command(flatten)]
    pub search: SearchArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The clap definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// Run npmap with the process's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    // --summary is for scripts: no header line.
    let options = cli::RunOptions {
        header: !args.summary && !args.common.json,
        ..args.common.run_options(true)
    };
    let open_options = args.search.open_options();
    cli::run_opening(
        "npmap",
        &args.common.operands,
        options,
        |op| libproc_rs::open(op, &open_options),
        |target, _operand, out, diag| {
            let map = address_map_with(target, args.extended, !args.no_v8, diag)?;
            if args.common.json {
                write_json(out, target, &map)?;
            } else if args.summary {
                write_summary(out, &map, args.extended)?;
            } else if args.extended {
                write_extended(out, &map, args.common.raw)?;
            } else {
                write_listing(out, &map, args.common.raw)?;
            }
            Ok(())
        },
    )
}

/// The name npmap shows, unescaped: a bracketed name, or the file's
/// path with ` (deleted)` when it was deleted.
fn name_bytes(e: &MapEntry) -> Vec<u8> {
    let bracket = |inner: &[u8]| [b"[ ", inner, b" ]"].concat();
    let tagged = |tag: &[u8], name: &OsString| [tag, name.as_bytes(), b"]"].concat();
    match &e.label {
        Label::Heap => bracket(b"heap"),
        Label::Arena => bracket(b"heap arena"),
        Label::Stack => bracket(b"stack"),
        Label::ThreadStack(tid) => format!("[ stack tid={tid} ]").into_bytes(),
        Label::Anon => bracket(b"anon"),
        Label::AnonNamed(n) => tagged(b"[anon:", n),
        Label::SharedAnon => bracket(b"shared anon"),
        Label::SharedNamed(n) => tagged(b"[anon_shmem:", n),
        Label::Vdso => bracket(b"vdso"),
        Label::Vvar => bracket(b"vvar"),
        Label::Kernel(n) => bracket(n.as_bytes()),
        Label::V8 { kind, .. } => bracket(match kind {
            V8Kind::Heap => b"v8 heap",
            V8Kind::Large => b"v8 large",
            V8Kind::Code => b"v8 code",
            V8Kind::ReadOnly => b"v8 read-only",
            V8Kind::Reserved => b"v8 reserved",
        }),
        Label::File | Label::SysvShm => {
            let mut v = match &e.mapping.name {
                MapName::File(p) => p.as_os_str().as_bytes().to_vec(),
                _ => Vec::new(),
            };
            if e.mapping.deleted {
                v.extend_from_slice(b" (deleted)");
            }
            v
        }
    }
}

/// Digits of `n` in decimal.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The mode column: `rwxs` letters, and for a core `*` when the core does
/// not hold all of the mapping.
fn mode(e: &MapEntry) -> String {
    let mut m = e.mapping.perms.letters();
    if e.missing_from_core() {
        m.push('*');
    }
    m
}

/// Lines are assembled by hand rather than with `write!`: a process may
/// have tens of thousands of mappings, and the formatting machinery was a
/// visible share of npmap's time on them.
fn push_hex16(line: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line.extend((0..16).rev().map(|i| HEX[(n >> (i * 4)) as usize & 0xf]));
}

/// `text` right-aligned in `width` columns, after a space.
fn push_cell(line: &mut Vec<u8>, text: &[u8], width: usize) {
    line.push(b' ');
    line.resize(line.len() + width.saturating_sub(text.len()), b' ');
    line.extend_from_slice(text);
}

fn push_number(line: &mut Vec<u8>, n: Option<u64>, width: usize) {
    let mut digits = [0u8; 20];
    let text: &[u8] = match n {
        None => b"-",
        Some(mut n) => {
            let mut i = digits.len();
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            &digits[i..]
        }
    };
    push_cell(line, text, width);
}

/// The end of a line: the mode padded to five columns, two spaces, the
/// name.
fn push_mode_and_name(line: &mut Vec<u8>, e: &MapEntry, raw: bool) {
    let mode = mode(e);
    line.push(b' ');
    line.extend_from_slice(mode.as_bytes());
    line.resize(line.len() + 7 - mode.len().min(5), b' ');
    line.extend_from_slice(&report::text_bytes(&name_bytes(e), raw));
    line.push(b'\n');
}

/// The default listing: `ADDRESS SIZEK MODE NAME`, then ` total SIZEK`. The
/// address starts the line, so `tr -s ' ' | cut -d ' ' -f 2` is the size.
fn write_listing(out: &mut dyn Write, map: &AddressMap, raw: bool) -> io::Result<()> {
    let total = map.total().size_kib;
    let w = digits(total).max(6);
    let mut line = Vec::with_capacity(256);
    for e in &map.entries {
        line.clear();
        push_hex16(&mut line, e.mapping.start);
        push_number(&mut line, Some(e.size_kib()), w);
        line.push(b'K');
        push_mode_and_name(&mut line, e, raw);
        out.write_all(&line)?;
    }
    writeln!(out, " total {total:>width$}K", width = w + 10)
}

/// A numeric column of the extended listing.
struct Column {
    title: &'static str,
    width: usize,
    value: fn(&MapEntry) -> Option<u64>,
    total: Option<u64>,
}

fn cell(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// `-x`: Address, Kbytes, RSS, Anon, Locked (and Dumped for a core), Mode,
/// Mapped File, then a totals row.
fn write_extended(out: &mut dyn Write, map: &AddressMap, raw: bool) -> io::Result<()> {
    let t = map.total();
    let mut columns = vec![
        Column {
            title: "Kbytes",
            width: 0,
            value: |e| Some(e.size_kib()),
            total: Some(t.size_kib),
        },
        Column {
            title: "RSS",
            width: 0,
            value: |e| e.usage.map(|u| u.rss_kib),
            total: t.rss_kib,
        },
        Column {
            title: "Anon",
            width: 0,
            value: |e| e.usage.map(|u| u.anon_kib),
            total: t.anon_kib,
        },
        Column {
            title: "Locked",
            width: 0,
            value: |e| e.usage.map(|u| u.locked_kib),
            total: t.locked_kib,
        },
    ];
    if map.from_core {
        columns.push(Column {
            title: "Dumped",
            width: 0,
            value: MapEntry::dumped_kib,
            total: t.dumped_kib,
        });
    }
    for c in &mut columns {
        c.width = c.title.len().max(digits(c.total.unwrap_or(0))).max(7);
    }
    write!(out, "{:<16}", "Address")?;
    for c in &columns {
        write!(out, " {:>w$}", c.title, w = c.width)?;
    }
    writeln!(out, " {:<5}  Mapped File", "Mode")?;
    let mut line = Vec::with_capacity(256);
    for e in &map.entries {
        line.clear();
        push_hex16(&mut line, e.mapping.start);
        for c in &columns {
            push_number(&mut line, (c.value)(e), c.width);
        }
        push_mode_and_name(&mut line, e, raw);
        out.write_all(&line)?;
    }
    write!(out, "{}", "-".repeat(16))?;
    for c in &columns {
        write!(out, " {}", "-".repeat(c.width))?;
    }
    writeln!(out)?;
    write!(out, "{:<16}", "total Kb")?;
    for c in &columns {
        write!(out, " {:>w$}", cell(c.total), w = c.width)?;
    }
    writeln!(out)
}

/// `--summary`: `NAME SIZE` per category and the total; with `-x`, RSS
/// (`-` for a core) and for a core the dumped KiB.
fn write_summary(out: &mut dyn Write, map: &AddressMap, extended: bool) -> io::Result<()> {
    let mut line = |name: &str, t: &Totals| -> io::Result<()> {
        write!(out, "{name} {}", t.size_kib)?;
        if extended {
            write!(out, " {}", cell(t.rss_kib))?;
            if let Some(d) = t.dumped_kib {
                write!(out, " {d}")?;
            }
        }
        writeln!(out)
    };
    for (c, t) in map.summary() {
        line(c.name(), &t)?;
    }
    line("total", &map.total())
}

fn totals_json(t: &Totals) -> Value {
    json!({
        "size_kib": t.size_kib,
        "rss_kib": t.rss_kib,
        "anon_kib": t.anon_kib,
        "locked_kib": t.locked_kib,
        "dumped_kib": t.dumped_kib,
    })
}

/// One mapping in `--json` (fields in this order).
#[derive(serde::Serialize)]
struct EntryJson<'a> {
    start: u64,
    end: u64,
    size_kib: u64,
    perms: String,
    name: JsonBytes<'a>,
    kind: &'static str,
    category: &'static str,
    path: Option<JsonBytes<'a>>,
    deleted: bool,
    offset: u64,
    tid: Option<i32>,
    v8_space: Option<&'static str>,
    rss_kib: Option<u64>,
    anon_kib: Option<u64>,
    locked_kib: Option<u64>,
    dumped_kib: Option<u64>,
}

/// A mapping, serialized as [`EntryJson`] when it is written.
struct MappingJson<'a>(&'a MapEntry);

impl serde::Serialize for MappingJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let m = &e.mapping;
        let name = name_bytes(e);
        EntryJson {
            start: m.start,
            end: m.end,
            size_kib: e.size_kib(),
            perms: m.perms.letters(),
            name: JsonBytes(&name),
            kind: e.label.kind(),
            category: e.category().name(),
            path: m.path().map(|p| JsonBytes(p.as_os_str().as_bytes())),
            deleted: m.deleted,
            offset: m.offset,
            tid: match e.label {
                Label::ThreadStack(t) => Some(t),
                _ => None,
            },
            v8_space: match e.label {
                Label::V8 { space, .. } => space,
                _ => None,
            },
            rss_kib: e.usage.map(|u| u.rss_kib),
            anon_kib: e.usage.map(|u| u.anon_kib),
            locked_kib: e.usage.map(|u| u.locked_kib),
            dumped_kib: e.dumped_kib(),
        }
        .serialize(s)
    }
}

/// `--json`: the target, every mapping, and the summary, in one object.
/// The mappings are written one by one as they are serialized: a tree of
/// the whole document cost 4 KiB of memory per mapping (400 MB at
/// 100,000 mappings).
fn write_json(
    out: &mut dyn Write,
    target: &dyn libproc_rs::ProcessTarget,
    map: &AddressMap,
) -> io::Result<()> {
    report::write_json_line_streamed(out, report::target_json(target), |doc| {
        doc.field(
            "mappings",
            &StreamedArray(|| map.entries.iter().map(MappingJson)),
        )?;
        let mut summary = Map::new();
        for (c, t) in map.summary() {
            summary.insert(c.name().into(), totals_json(&t));
        }
        summary.insert("total".into(), totals_json(&map.total()));
        doc.field("summary", &summary)?;
        let v8 = map.v8.as_ref().map(|o| {
            json!({
                "layout": o.layout,
                "unrecognised": o.unrecognised,
            })
        });
        doc.field("v8", &v8)
    })
}

/// The EXAMPLES section of the man page.
pub const MAN_EXAMPLES: &str = r#"The map of a running process (lines left out as ...):
    $ npmap 28720
    28720:	node demo/server.js
    0000000000400000   7612K r---   /usr/bin/node
    000000000565d000    176K rw--   [ anon ]
    000000003d831000   1728K rw--   [ heap ]
    ...
    00007f9e7afff000   8192K rw--   [ stack tid=28726 ]
    00007f9e7c000000    132K rw--   [ heap arena ]
    00007f9e7c021000  65404K ----   [ heap arena ]
    00007f9e82478000      8K r-x-   [ vdso ]
    00007ffcdb723000    132K rw--   [ stack ]
     total           727904K

Memory per category, for a script or a cron job:
    $ npmap --summary 28720
    heap 67264
    v8 4608
    v8-reserved 522424
    anon 1224
    stack 41124
    file 91228
    shared 0
    other 32
    total 727904

The heap's resident KiB (with -x, RSS is the third column):
    $ npmap --summary -x 28720 | awk '$1 == "heap" { print $3 }'
    1624

The JavaScript heap's resident KiB (V8's pages; Buffers are heap or anon):
    $ npmap --summary -x 28720 | awk '$1 == "v8" { print $3 }'

Sum of the anonymous mappings (the seed pipeline; V8's pages are not among them):
    $ npmap 28720 | grep anon | tr -s ' ' | cut -d ' ' -f 2 | tr -d 'K' | awk '{s+=$1} END {print s}'

Resident and anonymous KiB per mapping, and what a core holds:
    $ npmap -x 28720 | tail
    $ npmap -x /var/cores/core.28720 | tail

Everything as JSON:
    $ npmap --json 28720 | jq '.summary.heap.size_kib'
"#;

#[cfg(test)]
mod golden;
