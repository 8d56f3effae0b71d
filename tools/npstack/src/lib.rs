//! npstack: the stack of every thread of a process or core, after illumos
//! pstack(1), Node.js-aware. Flags and rendering only; capture, unwinding
//! and naming live in libproc-rs's `stack` module.

use std::ffi::OsStr;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use libproc_rs::diag::{Notice, Sink};
use libproc_rs::escape::{escape_bytes, escape_os};
use libproc_rs::stack::nodejs::JsName;
use libproc_rs::stack::sample::SampleOptions;
use libproc_rs::stack::{self, Frame, Options, ThreadStack};
use libproc_rs::{Error, OpenOptions, ProcessTarget};
use nptools_cli::json::json_os;
use nptools_cli::report;
use nptools_cli::{self as cli, CommonArgs, ReportError, SearchArgs};
use serde_json::{Map, Value, json};

/// Print the stack of every thread of processes and core files.
#[derive(Debug, Parser)]
#[command(
    name = "npstack",
    version,
    about = "Print the stack of every thread of processes and core files",
    long_about = "Print a stack trace for each thread (LWP) of each process or core file, as \
illumos pstack does: a header line per thread with its TID, thread number, name and, for \
Node.js, its role (main event loop, libuv threadpool worker, V8 platform worker, ...), then \
one frame per line: the program counter, the function (demangled C++ and Rust) and the \
offset into it.\n\n\
A live process is stopped one thread at a time, only for as long as it takes to copy the \
thread's registers and the top of its stack (PTRACE_SEIZE and PTRACE_INTERRUPT, never \
SIGSTOP); unwinding and symbol lookup happen afterwards, with the process running. If \
npstack is interrupted or killed, the process keeps running. --snapshot stops all threads \
together instead, for a consistent picture.\n\n\
Frames are unwound with the binaries' .eh_frame tables, and by frame pointer where code has \
none (V8's JIT code).\n\n\
JavaScript frames are named from the V8 heap, with no flag needed in node: the function (as \
a JavaScript stack trace names it, Type.method for a method call), the script, the line and \
column being executed, and the tier (interpreted, baseline, maglev, optimized): `blockHere \
(/app/x.js:23:11) [js, interpreted]`. Functions inlined into optimized code show on lines \
of their own above it, marked (inlined). Where only the line the function starts on is known \
the location reads `(/app/x.js:18, start)`; on node 20, compiled code that is not the \
function's own (on-stack replacement, or code it has left) has no tier (from node 22 on a \
frame's code is found from its pc). V8's own frames \
show what they are: <entry frame>, <exit frame>, <internal frame>, <stub frame>, ... A frame \
in V8's code that does not decode shows <unknown JS frame>. The layout of V8's objects comes \
from the v8dbg_* symbols node carries, read from .dynsym and .symtab: node 20, 22, 24, 25 \
and 26 are decoded, the rest of each layout chosen by what the metadata shows. JavaScript \
frames left unnamed are said once on stderr, with node's and V8's versions and the step that \
failed (`4 JavaScript frames not named: node 27.0.0 (V8 15.1.1.1): ScopeInfo layout not \
recognised`); --json gives the count per thread (js_unnamed) and the notices. On a live process each \
thread's frames are named while it is stopped (the heap moves once it runs), which adds the \
reads of a few words per JavaScript frame to the stop. Without those symbols, or with \
--no-heap-names, JavaScript frames are named from /tmp/perf-PID.map when node runs with \
--perf-basic-prof, and otherwise show as addresses.\n\n\
--sample DURATION samples a live process instead, at --rate HZ (99): the threads on a CPU \
(state R in /proc, read before a thread is stopped; --idle counts blocked threads too), each \
held only for the copy of its registers and stack top, its frames named after it runs again. \
It prints the stacks that took the most samples, with counts and percentages, and writes \
--folded stacks (thread;outer;...;inner COUNT), an SVG --flamegraph (JavaScript green, V8's \
own code aqua, native red to yellow) and a --speedscope file; --json gives the stacks and \
their counts. Ctrl-C ends it early with every output written whole.\n\n\
An operand is a decimal process id or the path of an x86_64 ELF core file, optionally \
followed by /LWPS to choose threads: 4242/1,5-9 selects by TID, or by thread number when no \
TID matches.",
    after_help = "Exit status: 0 when every operand was reported, 1 when any failed, 2 on usage errors."
)]
pub struct Args {
    /// Add source file:line and inlined calls from DWARF debug information
    /// (the binary's own, or its debug file: see --debug-dir).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Print each distinct stack once, with the threads that share it (a
    /// run of consecutive thread ids as FIRST-LAST; --json lists every id).
    #[arg(long)]
    pub group: bool,

    /// Stop all threads together for a consistent picture (longer stall).
    #[arg(long)]
    pub snapshot: bool,

    /// Do not read the V8 heap: name JavaScript frames from node's perf
    /// map (--perf-basic-prof) only.
    #[arg(long)]
    pub no_heap_names: bool,

    #[command(flatten)]
    pub sampling: sample::SampleArgs,

    #[command(flatten)]
    pub search: SearchArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The clap definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// Open `PID[/LWPS]` or a core.
fn open(operand: &OsStr, options: &OpenOptions) -> Result<Box<dyn ProcessTarget>, Error> {
    libproc_rs::open(&stack::split_operand(operand).0, options)
}

mod sample;

/// A usage error of --sample, if the operands have one: one live process.
fn sample_usage_error(operands: &[std::ffi::OsString]) -> Option<String> {
    let [operand] = operands else {
        return Some("--sample takes one process id".to_owned());
    };
    let target = stack::split_operand(operand).0;
    match libproc_rs::Operand::parse(&target) {
        Ok(libproc_rs::Operand::Pid(_)) => None,
        Ok(libproc_rs::Operand::Core(_)) => Some(format!(
            "{}: --sample needs a live process id, not a core file",
            escape_os(operand)
        )),
        Err(e) => Some(e.to_string()),
    }
}

/// Run npstack with the process's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if args.sampling.sample.is_some()
        && let Some(why) = sample_usage_error(&args.common.operands)
    {
        eprintln!("npstack: {why}");
        return ExitCode::from(2);
    }
    let options = args.common.run_options(true);
    let raw = args.common.raw;
    let open_options = args.search.open_options();
    cli::run_opening(
        "npstack",
        &args.common.operands,
        options,
        |op| open(op, &open_options),
        |target, operand, out, diag| {
            let (_, select) = stack::split_operand(operand);
            let opts = Options {
                snapshot: args.snapshot,
                verbose: args.verbose,
                no_heap_names: args.no_heap_names,
                select,
                name_after_resume: false,
            };
            if let Some(duration) = args.sampling.sample {
                let sampling = SampleOptions {
                    duration,
                    rate: args.sampling.rate,
                    idle: args.sampling.idle,
                    stack: opts,
                };
                return sample::run(
                    target,
                    &sampling,
                    &args.sampling,
                    args.common.json,
                    out,
                    diag,
                );
            }
            if !args.common.json
                && let Some(sig) = target.fatal_signal().filter(|s| s.is_fatal())
            {
                writeln!(out, "  killed by {}", sig.describe())?;
            }
            // The notices go to stderr and, for scripts, into the JSON.
            let mut notices: Vec<Notice> = Vec::new();
            let stacks = stack::collect(target, &opts, &mut notices)?;
            for n in &notices {
                diag.notice(n.clone());
            }
            if args.common.json {
                write_json(out, target, &stacks, &notices, args.group)?;
            } else if args.group {
                for group in groups(&stacks.threads) {
                    write_group(out, &group, raw)?;
                }
            } else {
                for t in &stacks.threads {
                    write_thread_header(out, t, raw)?;
                    write_frames(out, t, raw)?;
                }
            }
            Ok(())
        },
    )
}

fn name_text(name: &OsStr, raw: bool) -> Vec<u8> {
    if raw {
        name.as_encoded_bytes().to_vec()
    } else {
        escape_os(name).into_owned().into_bytes()
    }
}

fn write_thread_header(out: &mut dyn Write, t: &ThreadStack, raw: bool) -> Result<(), ReportError> {
    write!(
        out,
        "-----------------  lwp# {} / thread# {}",
        t.tid, t.number
    )?;
    write_name_and_role(out, t.name.as_ref(), t.role, raw)
}

/// The end of a thread header: ` [name] role  -----`.
fn write_name_and_role(
    out: &mut dyn Write,
    name: Option<&std::ffi::OsString>,
    role: Option<&str>,
    raw: bool,
) -> Result<(), ReportError> {
    if let Some(name) = name {
        out.write_all(b" [")?;
        out.write_all(&name_text(name, raw))?;
        out.write_all(b"]")?;
    }
    if let Some(role) = role {
        write!(out, " {role}")?;
    }
    writeln!(out, "  --------------------")?;
    Ok(())
}

/// Where a JavaScript frame is: `script:line:column` being executed, as
/// in a JavaScript stack trace, or `script:line, start` where only the
/// line the function starts on is known.
fn js_location(js: &JsName) -> Option<String> {
    let script = js.script.as_deref().map(|s| escape_bytes(s.as_bytes()));
    let column = js.column.filter(|_| !js.at_start);
    let mut text = match (script, js.line, column) {
        (Some(s), Some(l), Some(c)) => format!("{s}:{l}:{c}"),
        (Some(s), Some(l), None) => format!("{s}:{l}"),
        (Some(s), None, _) => s.into_owned(),
        (None, Some(l), _) => format!("line {l}"),
        (None, None, _) => return None,
    };
    if js.at_start {
        text.push_str(", start");
    }
    Some(text)
}

/// A JavaScript function: `name (script:line:column) [js, tier]`.
fn js_text(js: &JsName) -> String {
    let mut text = escape_bytes(js.function.as_bytes()).into_owned();
    if let Some(loc) = js_location(js) {
        text.push_str(&format!(" ({loc})"));
    }
    match js.tier {
        Some(tier) => text.push_str(&format!(" [js, {tier}]")),
        None => text.push_str(" [js]"),
    }
    text
}

/// One frame line: ` <pc> <symbol> () + <offset>`, or the module and
/// offset, or the bare pc; a JavaScript frame as `name (script:line) [js,
/// tier]`; a frame of V8 itself adds what it is (`<entry frame>`).
fn frame_line(f: &Frame) -> String {
    let mut line = format!(" {:016x}", f.pc);
    if let Some(js) = &f.js {
        line.push(' ');
        line.push_str(&js_text(js));
    } else if let Some(sym) = &f.symbol {
        line.push_str(&format!(
            " {} () + {:x}",
            escape_bytes(sym.as_bytes()),
            f.offset
        ));
    } else if let (Some(m), Some(off)) = (&f.module, f.module_offset) {
        let name = m.file_name().unwrap_or(m.as_os_str());
        line.push_str(&format!(" {}+0x{off:x}", escape_os(name)));
    }
    if let Some(what) = &f.v8_frame {
        line.push_str(&format!(" <{what}>"));
    }
    if let Some(src) = &f.source
        && let (Some(file), Some(l)) = (&src.file, src.line)
    {
        line.push_str(&format!(" [{}:{l}]", escape_bytes(file.as_bytes())));
    }
    line
}

fn write_frames(out: &mut dyn Write, t: &ThreadStack, _raw: bool) -> Result<(), ReportError> {
    if let Some(p) = &t.problem
        && t.frames.is_empty()
    {
        writeln!(out, " <{p}>")?;
        return Ok(());
    }
    for f in &t.frames {
        for (name, src) in &f.inlined {
            let mut line = format!(" {:>16} {} (inlined)", "", escape_bytes(name.as_bytes()));
            if let (Some(file), Some(l)) = (&src.file, src.line) {
                line.push_str(&format!(" [{}:{l}]", escape_bytes(file.as_bytes())));
            }
            writeln!(out, "{line}")?;
        }
        for js in f.js.iter().flat_map(|j| &j.inlined) {
            writeln!(out, " {:>16} {} (inlined)", "", js_text(js))?;
        }
        if f.interrupted_by_signal {
            writeln!(out, " --- called from signal handler ---")?;
        }
        writeln!(out, "{}", frame_line(f))?;
    }
    if let Some(p) = &t.problem
        && !t.frames.is_empty()
    {
        writeln!(out, " <{p}>")?;
    }
    Ok(())
}

/// Threads with the same frames, in order of first appearance.
fn groups(threads: &[ThreadStack]) -> Vec<Vec<&ThreadStack>> {
    let mut out: Vec<Vec<&ThreadStack>> = Vec::new();
    for t in threads {
        let same = |g: &&mut Vec<&ThreadStack>| {
            let first = g[0];
            first.problem == t.problem
                && first.frames.len() == t.frames.len()
                && first.frames.iter().zip(&t.frames).all(|(a, b)| {
                    // JavaScript frames share the interpreter's pc: their
                    // functions tell them apart.
                    (a.pc == b.pc
                        || (a.symbol.is_some() && a.symbol == b.symbol && a.offset == b.offset))
                        && a.js == b.js
                        && a.v8_frame == b.v8_frame
                })
        };
        match out.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(t),
            None => out.push(vec![t]),
        }
    }
    out
}

/// Thread ids with each run of consecutive ids written as its ends:
/// `4153-4156, 4160`. A node with 10,000 identical workers gets a header
/// of a few runs, not a 60 KB line.
fn tid_runs(tids: &[i32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < tids.len() {
        let start = tids[i];
        let mut end = start;
        while tids
            .get(i + 1)
            .is_some_and(|&next| Some(next) == end.checked_add(1))
        {
            end = tids[i + 1];
            i += 1;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&start.to_string());
        if end != start {
            out.push('-');
            out.push_str(&end.to_string());
        }
        i += 1;
    }
    out
}

fn write_group(out: &mut dyn Write, group: &[&ThreadStack], raw: bool) -> Result<(), ReportError> {
    let first = group[0];
    let tids: Vec<i32> = group.iter().map(|t| t.tid).collect();
    let count = group.len();
    write!(
        out,
        "-----------------  {count} thread{}: lwp# {}",
        if count == 1 { "" } else { "s" },
        tid_runs(&tids)
    )?;
    let same_name = group.iter().all(|t| t.name == first.name);
    let name = first.name.as_ref().filter(|_| same_name);
    write_name_and_role(out, name, first.role, raw)?;
    write_frames(out, first, raw)
}

fn frame_json(f: &Frame) -> Value {
    let mut m = Map::new();
    m.insert("pc".into(), json!(format!("{:#x}", f.pc)));
    m.insert("kind".into(), json!(f.kind.as_str()));
    m.insert("v8_frame".into(), json!(f.v8_frame));
    m.insert(
        "module".into(),
        f.module
            .as_ref()
            .map_or(Value::Null, |p| json_os(p.as_os_str())),
    );
    m.insert(
        "module_offset".into(),
        f.module_offset
            .map_or(Value::Null, |o| json!(format!("{o:#x}"))),
    );
    let (symbol, offset) = match (&f.js, &f.symbol) {
        (Some(js), _) => (Some(js.function.clone()), None),
        (None, Some(s)) => (Some(s.clone()), Some(format!("{:#x}", f.offset))),
        (None, None) => (None, None),
    };
    m.insert("symbol".into(), json!(symbol));
    m.insert(
        "interrupted_by_signal".into(),
        json!(f.interrupted_by_signal),
    );
    m.insert("offset".into(), json!(offset));
    let src = f.source.clone().unwrap_or_default();
    m.insert("file".into(), json!(src.file));
    m.insert("line".into(), json!(src.line));
    m.insert(
        "inlined".into(),
        Value::Array(
            f.inlined
                .iter()
                .map(|(name, s)| json!({"function": name, "file": s.file, "line": s.line}))
                .collect(),
        ),
    );
    if let Some(js) = &f.js {
        m.insert("js".into(), js_json(js));
    }
    Value::Object(m)
}

fn js_json(js: &JsName) -> Value {
    json!({
        "function": js.function,
        "script": js.script,
        "line": js.line,
        "column": js.column,
        "line_is_function_start": js.at_start,
        "tier": js.tier,
        "inlined": js.inlined.iter().map(js_json).collect::<Vec<_>>(),
    })
}

fn thread_json(t: &ThreadStack) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("tid".into(), json!(t.tid));
    m.insert("thread".into(), json!(t.number));
    m.insert(
        "name".into(),
        t.name.as_ref().map_or(Value::Null, |n| json_os(n)),
    );
    m.insert("role".into(), json!(t.role));
    m.insert("problem".into(), json!(t.problem));
    m.insert("held_us".into(), json!(t.held_us));
    m.insert("js_unnamed".into(), json!(t.js_unnamed));
    m.insert(
        "frames".into(),
        Value::Array(t.frames.iter().map(frame_json).collect()),
    );
    m
}

/// The target's JSON with what stderr says is missing, for scripts: the
/// target's caveats (already in it when there are any), then `notices`.
fn target_json_with(target: &dyn ProcessTarget, notices: &[Notice]) -> Map<String, Value> {
    let mut doc = report::target_json(target);
    let texts = notices.iter().map(|n| json!(n.text));
    match doc.get_mut("notices") {
        Some(Value::Array(caveats)) => caveats.extend(texts),
        _ => {
            doc.insert("notices".into(), Value::Array(texts.collect()));
        }
    }
    doc
}

fn write_json(
    out: &mut dyn Write,
    target: &dyn ProcessTarget,
    stacks: &stack::Stacks,
    notices: &[Notice],
    group: bool,
) -> Result<(), ReportError> {
    let threads = &stacks.threads;
    let mut doc = target_json_with(target, notices);
    if let Some(sig) = target.fatal_signal().filter(|s| s.is_fatal()) {
        doc.insert(
            "signal".into(),
            json!({"number": sig.signo, "description": sig.describe()}),
        );
    }
    if group {
        let groups: Vec<Value> = groups(threads)
            .iter()
            .map(|g| {
                let mut m = thread_json(g[0]);
                m.remove("tid");
                m.remove("thread");
                m.insert(
                    "tids".into(),
                    json!(g.iter().map(|t| t.tid).collect::<Vec<_>>()),
                );
                m.insert("count".into(), json!(g.len()));
                Value::Object(m)
            })
            .collect();
        doc.insert("groups".into(), Value::Array(groups));
    } else {
        doc.insert(
            "threads".into(),
            Value::Array(
                threads
                    .iter()
                    .map(|t| Value::Object(thread_json(t)))
                    .collect(),
            ),
        );
    }
    report::write_json_line(out, doc)?;
    Ok(())
}

/// The EXAMPLES section of the man page.
pub const MAN_EXAMPLES: &str = r#"Every thread of a running node process:
    $ npstack 4242
    4242:	node /app/server.js
    -----------------  lwp# 4242 / thread# 1 [node] main (event loop)  --------------------
     00007f740b626cae epoll_pwait () + 4e
     00000000018c0366 uv__io_poll () + 3a6
     00000000018ac8a7 uv_run () + 117
     ...

Identical stacks once (node has several identical V8 workers):
    $ npstack --group 4242

Only the main thread and threads 5 to 9, with source lines:
    $ npstack -v 4242/1,5-9

A core from another machine, with that machine's binaries under /srv/sysroot:
    $ npstack --sysroot /srv/sysroot core.4242

Where a node process spends its CPU, for ten seconds, as a flame graph:
    $ npstack --sample 10s --flamegraph cpu.svg 4242

Folded stacks of the main thread at 199 Hz, for flamegraph.pl or inferno:
    $ npstack --sample 30s --rate 199 --folded cpu.folded 4242/1

Names of the functions on the main thread, from a script:
    $ npstack --json 4242/1 | jq -r '.threads[0].frames[].symbol'
"#;

#[cfg(test)]
mod golden;

#[cfg(test)]
mod tests {
    use super::tid_runs;

    #[test]
    fn runs_of_thread_ids() {
        assert_eq!(tid_runs(&[4153, 4154, 4155, 4156, 4160]), "4153-4156, 4160");
        assert_eq!(tid_runs(&[4242]), "4242");
        assert_eq!(tid_runs(&[7, 8]), "7-8");
        // The main thread comes first, before lower ids.
        assert_eq!(tid_runs(&[50, 10, 11, 12, 51]), "50, 10-12, 51");
        assert_eq!(
            tid_runs(&[i32::MAX - 1, i32::MAX]),
            format!("{}-{}", i32::MAX - 1, i32::MAX)
        );
        assert_eq!(tid_runs(&[]), "");
    }
}
