//! npstack names JavaScript frames from the V8 heap: checked against V8's
//! own `new Error().stack` of the same frames, live, on a gcore core and on
//! a kernel core, on the system's node and on the official build of every
//! release line in NODE_MAJORS (fetched by `make nodes`).

use std::fmt;
use std::path::{Path, PathBuf};

use nptools_tests::*;
use serde_json::Value;

/// The ground-truth script (see its header).
fn script() -> PathBuf {
    workspace().join("tests/fixtures/jsstack.js")
}

/// A node the frame tests run on: its path, release line and version.
struct Node {
    path: PathBuf,
    major: u32,
    version: String,
}

impl Node {
    fn at(path: PathBuf) -> Node {
        let out = std::process::Command::new(&path)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let major = version
            .strip_prefix('v')
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("{} --version says {version:?}", path.display()));
        Node {
            path,
            major,
            version,
        }
    }

    /// Whether `--always-turbofan` optimizes a function on its first call:
    /// in V8 11.3 (node 20) it does; from V8 12 (node 22) it only lowers
    /// the bar for tiering up, which a function run once never reaches, and
    /// V8 14.1 (node 25) removed it. Where it does not, natives syntax
    /// optimizes the script instead.
    fn always_turbofan_optimizes_first_calls(&self) -> bool {
        self.major <= 20
    }

    /// The official builds of node 20 and 22 are built without Maglev
    /// (`process.config.variables.v8_enable_maglev` is 0), as is the system
    /// node 20.
    fn has_maglev(&self) -> bool {
        self.major >= 24
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} ({})", self.version, self.path.display())
    }
}

/// The system's node, then each fetched release line, oldest first.
fn nodes() -> Vec<Node> {
    std::iter::once(node())
        .chain(NODE_MAJORS.iter().map(|&m| fetched_node(m)))
        .map(Node::at)
        .collect()
}

/// Runs `check` on each of `nodes`, every one of them to its end, and
/// fails naming each node it failed on, with its message.
fn on_each(nodes: &[Node], check: impl Fn(&Node)) {
    assert!(!nodes.is_empty(), "no node to run on");
    let failed: Vec<String> = nodes
        .iter()
        .filter_map(|n| {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(n)));
            let payload = run.err()?;
            let why = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Some(format!("=== on {n}:\n{why}"))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "failed on {} of {} nodes:\n{}",
        failed.len(),
        nodes.len(),
        failed.join("\n")
    );
}

/// The 1-based number of the first line of the script containing `text`.
fn line_of(text: &str) -> usize {
    line_in(&script(), text)
}

fn line_in(path: &Path, text: &str) -> usize {
    let src = std::fs::read_to_string(path).unwrap();
    src.lines().position(|l| l.contains(text)).expect(text) + 1
}

/// One JavaScript frame as npstack prints it:
/// ` <pc> NAME (LOCATION) [js, TIER]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JsLine {
    name: String,
    location: String,
    tier: String,
}

/// An inlined function's line has no pc and ends with ` (inlined)`.
fn parse_js_line(line: &str) -> Option<JsLine> {
    let rest = line.get(18..)?;
    let rest = rest.strip_suffix(" (inlined)").unwrap_or(rest);
    let (head, tier) = rest.rsplit_once(" [js, ")?;
    let (name, location) = head.rsplit_once(" (")?;
    Some(JsLine {
        name: name.to_owned(),
        location: location.strip_suffix(')')?.to_owned(),
        tier: tier.strip_suffix(']')?.to_owned(),
    })
}

/// The sections of a report, one per thread: (header, frame lines).
fn sections(report: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in report.lines() {
        if line.starts_with("-----------------") {
            out.push((line.to_owned(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(line.to_owned());
        }
    }
    out
}

fn js_frames(lines: &[String]) -> Vec<JsLine> {
    lines
        .iter()
        .filter(|l| l.contains(" [js, "))
        .map(|l| parse_js_line(l).unwrap_or_else(|| panic!("unparsable JS frame: {l}")))
        .collect()
}

/// V8's frames from a stack trace: (function, location). A frame with no
/// function prints only its location; ` [as x]` (the property V8 found
/// the function under) is not something npstack prints.
fn v8_frames(stack: &str) -> Vec<(String, String)> {
    stack
        .lines()
        .filter_map(|l| l.trim().strip_prefix("at "))
        .map(
            |f| match f.strip_suffix(')').and_then(|f| f.rsplit_once(" (")) {
                Some((name, loc)) => {
                    let name = name.split(" [as ").next().unwrap_or(name);
                    (name.to_owned(), loc.to_owned())
                }
                None => ("<anonymous>".to_owned(), f.to_owned()),
            },
        )
        .collect()
}

/// The stack trace a run of the script printed on its ready line.
fn stack_of(ready_line: &str) -> String {
    let v: Value = serde_json::from_str(ready_line)
        .unwrap_or_else(|e| panic!("ready line is not JSON ({e}): {ready_line}"));
    v["stack"].as_str().expect("stack").to_owned()
}

/// What a run of the script must show.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// The tier of the script's functions.
    tier: &'static str,
    /// The tier of the script's top level (`Object.<anonymous>`).
    top_level: &'static str,
    /// Compare the names of node's own functions too (node 22 names some
    /// of them by looking up the property that holds them, which npstack
    /// does but for properties keyed by a symbol).
    internal_names: bool,
}

impl Expect {
    /// Every function of the script of `tier`.
    const fn all(tier: &'static str) -> Expect {
        Expect {
            tier,
            top_level: tier,
            internal_names: true,
        }
    }
}

/// npstack's JavaScript frames must be V8's, in order: same functions,
/// scripts, lines and columns, the script's own frames of the expected
/// tier (node's, from its snapshot, may be compiled otherwise), with the
/// innermost frame at the line where it blocks.
fn assert_same_frames(ours: &[JsLine], stack: &str, expect: Expect, what: &str) {
    let theirs = v8_frames(stack);
    let report = format!("{what}, expecting {expect:?}\nnpstack: {ours:#?}\nV8:\n{stack}");
    assert!(theirs.len() >= 8, "{report}");
    assert_eq!(ours.len(), theirs.len(), "frame count: {report}");
    let script = script().display().to_string();
    let blocks = format!("{script}:{}:", line_of("npstack: blocks here"));
    for (i, (o, (name, loc))) in ours.iter().zip(&theirs).enumerate() {
        if loc.starts_with(&script) {
            let tier = match name.as_str() {
                "Object.<anonymous>" => expect.top_level,
                _ => expect.tier,
            };
            assert_eq!(o.tier, tier, "frame {i} tier: {report}");
        }
        if i == 0 {
            assert_eq!(o.name, "blockHere", "{report}");
            assert!(o.location.starts_with(&blocks), "frame 0: {report}");
            continue;
        }
        assert_eq!(&o.location, loc, "frame {i} location: {report}");
        if expect.internal_names || loc.starts_with(&script) {
            assert_eq!(&o.name, name, "frame {i} name: {report}");
        }
    }
}

/// The main thread's JavaScript frames in a report, and the V8 frames that
/// must follow them.
fn main_thread_js(report: &str) -> Vec<JsLine> {
    let all = sections(report);
    let (header, lines) = all.first().expect("no thread in report");
    assert!(header.contains("thread# 1 "), "{report}");
    let text = lines.join("\n");
    assert!(text.contains("<entry frame>"), "{report}");
    assert!(!text.contains("<unknown JS frame>"), "{report}");
    js_frames(lines)
}

/// The futex system call, where Atomics.wait blocks.
const SYS_FUTEX: u32 = 202;

/// The script run by `node` with `flags` and then `mode` (the script's
/// argument), blocked: its frames live and from a gcore core must be V8's,
/// as `expect`ed. Returns how it was started.
fn ground_truth_live(node: &Path, flags: &[&str], mode: &str, expect: Expect) -> Spawn {
    let mut spawn = Spawn::new(node);
    for f in flags {
        spawn = spawn.arg(f);
    }
    let spawn = spawn.arg(script()).arg(mode);
    let p = spawn.start();
    // It says it is ready just before it blocks.
    wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
    let stack = stack_of(&p.ready_line);
    let live = run_tool("npstack", [format!("{}/1", p.pid())]).ok();
    assert_same_frames(&main_thread_js(&live), &stack, expect, "live");

    let dir = scratch();
    let core = gcore(p.pid(), dir.path());
    let from_gcore = run_tool_on("npstack", &[], &core).ok();
    assert_same_frames(&main_thread_js(&from_gcore), &stack, expect, "gcore core");
    spawn
}

fn ground_truth(node: &Path) {
    let expect = Expect::all("interpreted");
    let spawn = ground_truth_live(node, &[], "main", expect);

    let mut aborted = String::new();
    let (_dir, core) = kernel_core(&spawn, |p| {
        wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
        aborted = p.ready_line.clone();
    });
    let from_kernel = run_tool_on("npstack", &[], &core).ok();
    assert_same_frames(
        &main_thread_js(&from_kernel),
        &stack_of(&aborted),
        expect,
        "kernel core",
    );
}

#[test]
fn js_frames_are_v8s_own_live_and_from_both_cores() {
    on_each(&nodes(), |n| ground_truth(&n.path));
}

/// Compiled code has no saved bytecode offset: baseline code maps its pc
/// to a bytecode, optimized code to a source position.
#[test]
fn baseline_and_optimized_frames_give_the_line_being_executed() {
    on_each(&nodes(), |n| {
        let baseline = Expect::all("baseline");
        ground_truth_live(&n.path, &["--always-sparkplug"], "main", baseline);
        if n.always_turbofan_optimizes_first_calls() {
            let optimized = Expect::all("optimized");
            ground_truth_live(&n.path, &["--always-turbofan"], "main", optimized);
        } else {
            let flags = ["--allow-natives-syntax", "--no-turbo-inlining"];
            ground_truth_live(&n.path, &flags, "turbofan", optimized_by("optimized"));
        }
    });
}

/// Optimized frames whose code was deoptimized while they waited in a
/// call: V8 has pointed their returns at its lazy deoptimization exits,
/// and each must still give the call it waits in, live and from a core.
#[test]
fn deoptimized_frames_waiting_in_a_call_give_the_call() {
    on_each(&nodes(), |n| deoptimized_frames(&n.path));
}

fn deoptimized_frames(node: &Path) {
    let fixture = workspace().join("tests/fixtures/jsdeopt.js");
    let p = Spawn::new(node)
        .arg("--allow-natives-syntax")
        .arg("--no-turbo-inlining")
        .arg(&fixture)
        .start();
    wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
    let stack = stack_of(&p.ready_line);
    let theirs = v8_frames(&stack);
    let dir = scratch();
    let core = gcore(p.pid(), dir.path());
    let live = run_tool("npstack", [format!("{}/1", p.pid())]).ok();
    let from_core = run_tool_on("npstack", &[], &core).ok();
    for (what, text) in [("live", live), ("gcore core", from_core)] {
        let report = format!("{what}: npstack:\n{text}\nV8:\n{stack}");
        let tiers = ["interpreted", "optimized", "optimized"];
        assert_leading_frames(&main_thread_js(&text), &theirs, &fixture, &tiers, &report);
    }
}

/// npstack's frames, as many as V8's, and the first `tiers.len()` with
/// V8's names, those tiers, and V8's locations (the innermost's at the
/// fixture's line where it blocks).
fn assert_leading_frames(
    ours: &[JsLine],
    theirs: &[(String, String)],
    fixture: &Path,
    tiers: &[&str],
    report: &str,
) {
    assert_eq!(ours.len(), theirs.len(), "{report}");
    let blocks = format!(
        "{}:{}:",
        fixture.display(),
        line_in(fixture, "npstack: blocks here")
    );
    for (i, ((o, (name, loc)), tier)) in ours.iter().zip(theirs).zip(tiers).enumerate() {
        assert_eq!(&o.name, name, "frame {i}: {report}");
        assert_eq!(&o.tier, tier, "frame {i}: {report}");
        if i == 0 {
            assert!(o.location.starts_with(&blocks), "{report}");
        } else {
            assert_eq!(&o.location, loc, "frame {i}: {report}");
        }
    }
}

/// Maglev, V8's mid-tier optimizing compiler, where node has it.
#[test]
fn maglev_frames_give_the_line_being_executed() {
    let with_maglev: Vec<Node> = nodes().into_iter().filter(Node::has_maglev).collect();
    on_each(&with_maglev, |n| {
        let flags = ["--allow-natives-syntax", "--no-maglev-inlining"];
        ground_truth_live(&n.path, &flags, "maglev", optimized_by("maglev"));
    });
}

/// The chain optimized by natives syntax (the script's `maglev` and
/// `turbofan` modes, run with inlining off so that each function has a
/// frame of its own in that tier; inlined frames are tested below): the
/// top level that calls it stays interpreted.
const fn optimized_by(tier: &'static str) -> Expect {
    Expect {
        tier,
        top_level: "interpreted",
        internal_names: true,
    }
}

/// Functions inlined into optimized code show as frames of their own,
/// where each runs, as V8's stack trace has them.
#[test]
fn functions_inlined_into_optimized_code_have_frames() {
    on_each(&nodes(), |n| {
        inlined_frames(&n.path, "optimized");
        if n.has_maglev() {
            inlined_frames(&n.path, "maglev");
        }
    });
}

/// The inlining fixture optimized to `tier` (`optimized` by Turbofan, or
/// `maglev`).
fn inlined_frames(node: &Path, tier: &str) {
    let fixture = workspace().join("tests/fixtures/jsinline.js");
    let mut spawn = Spawn::new(node).arg("--allow-natives-syntax");
    if tier == "maglev" {
        // leaf's bytecode (107 bytes) is over Maglev's default limit for
        // inlining (100).
        spawn = spawn.arg("--max-maglev-inlined-bytecode-size=200");
    }
    let mut spawn = spawn.arg(&fixture);
    if tier == "maglev" {
        spawn = spawn.arg("maglev");
    }
    let p = spawn.start();
    wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
    let stack = stack_of(&p.ready_line);
    let theirs = v8_frames(&stack);
    let text = run_tool("npstack", [format!("{}/1", p.pid())]).ok();
    assert!(text.contains(" (inlined)"), "{text}");
    let report = format!("{tier}: npstack:\n{text}\nV8:\n{stack}");
    let ours = main_thread_js(&text);
    assert_leading_frames(&ours, &theirs, &fixture, &[tier; 3], &report);
}

#[test]
fn a_worker_threads_worker_has_its_frames_on_its_own_thread() {
    on_each(&nodes(), |n| worker_frames(&n.path));
}

fn worker_frames(node: &Path) {
    let p = Spawn::new(node).arg(script()).arg("worker").start();
    let stack = stack_of(&p.ready_line);
    // It says it is ready just before it blocks.
    eventually(10, "the worker never blocked", || {
        let text = run_tool("npstack", [p.pid_arg()]).ok();
        match text.lines().find(|l| l.contains(" [js, ")) {
            Some(l) if l.contains(" blockHere (") => Ok(()),
            _ => Err(text),
        }
    });
    let dir = scratch();
    let core = gcore(p.pid(), dir.path());
    for (what, report) in [
        ("live", run_tool("npstack", [p.pid_arg()]).ok()),
        ("gcore core", run_tool_on("npstack", &[], &core).ok()),
    ] {
        let all = sections(&report);
        let with_js: Vec<_> = all
            .iter()
            .filter(|(_, lines)| !js_frames(lines).is_empty())
            .collect();
        assert_eq!(with_js.len(), 1, "{what}: JS on one thread only:\n{report}");
        let (header, lines) = with_js[0];
        assert!(!header.contains("thread# 1 "), "{what}: {report}");
        if what == "live" {
            assert!(header.contains("worker_threads Worker"), "{report}");
        }
        // node's own functions in a worker come from its snapshot without
        // the names V8 inferred for them: V8's stack trace then names them
        // by the property holding them, as npstack does, but for a property
        // keyed by a symbol (`[nodejs.internal.kHybridDispatch]`), which
        // npstack does not look at: those are compared by location only.
        let expect = Expect {
            internal_names: false,
            ..Expect::all("interpreted")
        };
        assert_same_frames(&js_frames(lines), &stack, expect, what);
        let named = js_frames(lines);
        let loader = named
            .iter()
            .find(|f| f.location.starts_with("node:internal/modules/cjs/loader"))
            .expect("a loader frame");
        assert_eq!(loader.name, "Module._compile", "{what}: {report}");
    }
}

/// The frame of `hot` in the main thread of the hot-loop script, named by
/// npstack with `flags`.
fn hot_frame(pid: i32, flags: &[&str]) -> Result<JsLine, String> {
    let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    args.push(format!("{pid}/1"));
    let text = run_tool("npstack", &args).ok();
    js_frames(&sections(&text).first().ok_or(text.clone())?.1)
        .into_iter()
        .find(|f| f.name == "hot")
        .ok_or(text)
}

#[test]
fn hot_code_is_named_optimized_as_the_perf_map_names_it() {
    on_each(&nodes(), |n| hot_code(&n.path));
}

fn hot_code(node: &Path) {
    let dir = scratch();
    let p = Spawn::new(node)
        .cwd(dir.path())
        .arg("--perf-basic-prof")
        .arg(script())
        .arg("hot")
        .start();
    // The loop is what runs: its body, or its header, where optimized code
    // checks the condition and for interrupts (V8 gives that check the `for`
    // statement's position).
    let in_loop = |location: &str| {
        ["for (let i = 0; i < n; i++)", "sum = (sum + i * i)"]
            .iter()
            .any(|l| location.starts_with(&format!("{}:{}:", script().display(), line_of(l))))
    };
    // The loop runs in optimized code most of the time: catch it there.
    let optimized = |flags: &[&str], what: &str| {
        let mut seen = None;
        eventually(20, what, || {
            let f = hot_frame(p.pid(), flags)?;
            if f.tier == "optimized" {
                seen = Some(f);
                Ok(())
            } else {
                Err(format!("{f:?}"))
            }
        });
        seen.unwrap()
    };
    let heap = optimized(&[], "hot never seen in optimized code");
    assert!(in_loop(&heap.location), "{heap:?}");
    let perf = optimized(&["--no-heap-names"], "hot never named from the perf map");
    // The perf map names the function and where it starts.
    let start = format!("{}:{}, start", script().display(), line_of("function hot("));
    assert_eq!(
        (perf.name.as_str(), perf.tier.as_str()),
        (heap.name.as_str(), heap.tier.as_str()),
        "perf map and V8 heap disagree"
    );
    assert_eq!(perf.location, start, "{perf:?}");
    let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", p.pid()));
}

#[test]
fn without_v8_metadata_frames_come_from_the_perf_map_and_npstack_says_so() {
    // node with its v8dbg_* symbols renamed: a node that carries no
    // postmortem metadata (a stripped or custom build).
    let dir = scratch();
    let mut bytes = std::fs::read(node()).unwrap();
    let mut renamed = 0;
    for i in 0..bytes.len().saturating_sub(6) {
        if &bytes[i..i + 6] == b"v8dbg_" {
            bytes[i + 4] = b'X';
            renamed += 1;
        }
    }
    assert!(renamed > 500, "node has {renamed} v8dbg_ names");
    let bare = dir.path().join("node");
    std::fs::write(&bare, bytes).unwrap();
    std::fs::set_permissions(&bare, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let p = Spawn::new(&bare)
        .cwd(dir.path())
        .arg("--perf-basic-prof")
        .arg(script())
        .arg("hot")
        .start();
    eventually(20, "hot never named from the perf map", || {
        let r = run_tool("npstack", [format!("{}/1", p.pid())]);
        if !r
            .stderr
            .contains("not named from the V8 heap: it has no V8 postmortem metadata")
        {
            return Err(r.stderr);
        }
        let text = r.ok();
        let hot = js_frames(&sections(&text)[0].1)
            .into_iter()
            .find(|f| f.name == "hot")
            .ok_or(text.clone())?;
        assert!(hot.location.ends_with(", start"), "{hot:?}");
        Ok(())
    });
    let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", p.pid()));
}

/// A core whose memory reads come back with some words changed: each
/// aligned word is replaced, with odds 1 in `rate`, by a value derived from
/// its address and the seed (the same on every read of it). What npstack
/// reads from the V8 heap (and the stacks) is so mutated where it reads.
struct Mutated {
    core: libproc_rs::corefile::CoreFile,
    seed: u64,
    rate: u64,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl libproc_rs::Memory for Mutated {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> libproc_rs::Result<usize> {
        let n = self.core.read_memory(addr, buf)?;
        let end = addr + n as u64;
        let mut word = addr & !7;
        while word < end {
            let h = mix(word ^ self.seed);
            if h.is_multiple_of(self.rate) {
                // Garbage, a Smi, a tagged pointer near the word, or zero.
                let value = match (h >> 40) % 4 {
                    0 => mix(h),
                    1 => (h >> 8) << 32,
                    2 => (word ^ ((h >> 16) & 0xfff8)) | 1,
                    _ => 0,
                };
                for (i, b) in value.to_le_bytes().iter().enumerate() {
                    let at = word + i as u64;
                    if at >= addr && at < end {
                        buf[(at - addr) as usize] = *b;
                    }
                }
            }
            word += 8;
        }
        Ok(n)
    }
}

impl libproc_rs::ProcessTarget for Mutated {
    fn source(&self) -> &libproc_rs::target::Source {
        self.core.source()
    }
    fn psinfo(&self) -> &libproc_rs::target::Psinfo {
        self.core.psinfo()
    }
    fn argv(&self) -> libproc_rs::Result<libproc_rs::target::StringList> {
        self.core.argv()
    }
    fn initial_environ(&self) -> libproc_rs::Result<libproc_rs::target::StringList> {
        self.core.initial_environ()
    }
    fn auxv(&self) -> libproc_rs::Result<Vec<libproc_rs::parse::auxv::AuxEntry>> {
        self.core.auxv()
    }
    fn mappings(&self) -> libproc_rs::Result<Vec<libproc_rs::target::Mapping>> {
        self.core.mappings()
    }
    fn threads(&self) -> libproc_rs::Result<Vec<libproc_rs::target::Thread>> {
        self.core.threads()
    }
    fn search_path(&self) -> libproc_rs::Result<&libproc_rs::root::SearchPath> {
        self.core.search_path()
    }
}

/// The JavaScript names of a collected stack, by frame.
fn js_names(stacks: &libproc_rs::stack::Stacks) -> Vec<String> {
    stacks
        .threads
        .iter()
        .flat_map(|t| &t.frames)
        .filter_map(|f| {
            f.js.as_ref()
                .map(|j| format!("{} {:?} {:?}", j.function, j.script, j.line))
                .or_else(|| f.v8_frame.clone())
        })
        .collect()
}

#[test]
fn mutated_heap_bytes_give_unknown_frames_never_a_crash() {
    // The system's node 20; node 22, whose loader frames go through the
    // property search too; 24 and 26, the newer layouts (25 is 24's but for
    // a few offsets). Fewer seeds on the newer ones, for time.
    let mut nodes = vec![Node::at(node())];
    nodes.extend([22, 24, 26].map(|m| Node::at(fetched_node(m))));
    on_each(&nodes, |n| {
        let seeds = match n.major {
            20 => 200,
            22 => 100,
            _ => 40,
        };
        mutated_heap(&n.path, seeds);
    });
}

fn mutated_heap(node: &Path, seeds: u64) {
    use libproc_rs::stack::{Options, collect};
    let p = Spawn::new(node).arg(script()).start();
    wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
    let dir = scratch();
    let path = gcore(p.pid(), dir.path());
    drop(p);
    let open = |seed, rate| Mutated {
        core: libproc_rs::corefile::CoreFile::open(&path, &libproc_rs::OpenOptions::default())
            .unwrap(),
        seed,
        rate,
    };
    let options = Options::default();
    // Unchanged (odds of 1 in 2^64): the frames of the ground truth.
    let clean = js_names(&collect(&open(0, u64::MAX), &options, &mut Vec::new()).unwrap());
    assert!(
        clean.iter().any(|n| n.starts_with("blockHere ")),
        "{clean:#?}"
    );
    let mut changed = 0;
    for seed in 1..=seeds {
        let rate = [7, 50, 400, 3000][(seed % 4) as usize];
        let target = open(seed, rate);
        // Any outcome but a panic (which fails the test) is acceptable;
        // names must stay within bounds.
        let Ok(stacks) = collect(&target, &options, &mut Vec::new()) else {
            continue;
        };
        let names = js_names(&stacks);
        for t in &stacks.threads {
            assert!(t.frames.len() <= libproc_rs::stack::MAX_FRAMES);
            for f in t.frames.iter().filter_map(|f| f.js.as_ref()) {
                // Bounded, and no bytes that are not text.
                let ok =
                    |s: &str, most| s.chars().count() <= most && !s.chars().any(|c| c.is_control());
                assert!(ok(&f.function, 2 * 4096 + 3), "seed {seed}: {f:?}");
                assert!(
                    f.script.as_deref().is_none_or(|s| ok(s, 4097)),
                    "seed {seed}: {f:?}"
                );
            }
        }
        if names != clean {
            changed += 1;
            if std::env::var_os("NPT_SHOW").is_some() {
                for n in names.iter().filter(|n| !clean.contains(n)) {
                    eprintln!("seed {seed} rate {rate}: {n}");
                }
            }
        }
    }
    // The mutations reached what npstack reads.
    assert!(
        changed >= seeds / 4,
        "only {changed} of {seeds} mutated cores read differently"
    );
}

/// A node whose ScopeInfo layout npstack cannot recognise (its
/// `scopeinfo_idx_first_vars` constant renamed, as a release with a new
/// layout would look): the frames it cannot name are said once on stderr,
/// with node's and V8's versions and the step that failed, and counted in
/// `--json`, never shown as the interpreter without a word.
#[test]
fn a_layout_not_recognised_is_said_never_silent() {
    for (major, version, v8) in [
        (24, "24.22.3", "13.6.233.17"),
        (26, "26.12.1", "14.6.202.34"),
    ] {
        let dir = scratch();
        let mut bytes = std::fs::read(fetched_node(major)).unwrap();
        let name = b"v8dbg_scopeinfo_idx_first_vars";
        let mut renamed = 0;
        for i in 0..bytes.len().saturating_sub(name.len()) {
            if &bytes[i..i + name.len()] == name {
                bytes[i + name.len() - 1] = b'X';
                renamed += 1;
            }
        }
        assert!(
            renamed >= 1,
            "node {major} has no {}",
            String::from_utf8_lossy(name)
        );
        let renamed_node = dir.path().join("node");
        std::fs::write(&renamed_node, bytes).unwrap();
        std::fs::set_permissions(
            &renamed_node,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let p = Spawn::new(&renamed_node).arg(script()).start();
        wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
        let r = run_tool("npstack", [format!("{}/1", p.pid())]);
        let said = format!(
            "JavaScript frames not named: node {version} (V8 {v8}): ScopeInfo layout not \
             recognised (scopeinfo_idx_nparams 1, ncontextlocals 2, first_vars missing)"
        );
        assert_eq!(
            r.stderr.matches(&said).count(),
            1,
            "node {major}: {}",
            r.stderr
        );
        let text = r.ok();
        assert!(js_frames(&sections(&text)[0].1).is_empty(), "{text}");
        let json = run_tool("npstack", ["--json".to_owned(), format!("{}/1", p.pid())]).ok();
        let doc: Value = serde_json::from_str(&json).unwrap();
        let unnamed = doc["threads"][0]["js_unnamed"].as_u64().unwrap();
        assert!(unnamed >= 8, "node {major}: {unnamed} unnamed:\n{json}");
        let notices = doc["notices"].as_array().unwrap();
        assert!(
            notices.iter().any(|n| n.as_str().unwrap().contains(&said)),
            "node {major}: {json}"
        );
    }
}

/// Removes the debug file it installed, however the test ends.
struct Installed(PathBuf);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A stripped node (no `.symtab`: where V8's builtins are and, from node
/// 24, the bytecode sizes are only there) names its JavaScript frames once
/// its debug file is installed under /usr/lib/debug/.build-id, as its
/// native frames are named; without it, npstack says what is missing.
#[test]
fn a_stripped_node_is_named_from_its_debug_file() {
    let dir = scratch();
    let node = fetched_node(24);
    let stripped = dir.path().join("node");
    let debug = dir.path().join("node.debug");
    for args in [
        vec!["--only-keep-debug".into(), node.clone(), debug.clone()],
        vec!["--strip-all".into(), node.clone(), stripped.clone()],
    ] {
        let r = run_command(std::process::Command::new("objcopy").args(&args));
        assert_eq!(
            r.code(),
            0,
            "objcopy {args:?} (apt-get install binutils): {}",
            r.stderr
        );
    }
    let notes = run_command(
        std::process::Command::new("readelf")
            .arg("-n")
            .arg(&stripped),
    );
    let id = notes
        .text()
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .expect("the stripped node has a build-id")
        .to_owned();
    let p = Spawn::new(&stripped).arg(script()).start();
    wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
    let operand = format!("{}/1", p.pid());

    let bare = run_tool("npstack", [&operand]);
    assert!(
        bare.stderr
            .contains("node's symbol table does not say where V8's builtins are"),
        "{}",
        bare.stderr
    );

    let place = PathBuf::from(format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &id[..2],
        &id[2..]
    ));
    assert!(!place.exists(), "{} is installed already", place.display());
    std::fs::create_dir_all(place.parent().unwrap()).unwrap();
    std::fs::copy(&debug, &place).unwrap();
    let _installed = Installed(place);
    let named = run_tool("npstack", [&operand]);
    let stack = stack_of(&p.ready_line);
    assert_same_frames(
        &main_thread_js(&named.ok()),
        &stack,
        Expect::all("interpreted"),
        "stripped node 24 with its debug file",
    );
}

/// With --no-heap-names and no perf map, JavaScript frames show as the
/// interpreter: npstack says so rather than leave them unexplained.
#[test]
fn no_heap_names_without_a_perf_map_says_so() {
    let dir = scratch();
    let p = Spawn::new(fetched_node(24))
        .cwd(dir.path())
        .arg(script())
        .start();
    wait_in_syscall(p.pid(), p.pid(), SYS_FUTEX);
    let r = run_tool(
        "npstack",
        ["--no-heap-names".to_owned(), format!("{}/1", p.pid())],
    );
    assert_eq!(
        r.stderr
            .matches("JavaScript frames not named: --no-heap-names, and no perf map")
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert!(js_frames(&sections(&r.ok())[0].1).is_empty());
    // Named from the heap, nothing is said.
    let named = run_tool("npstack", [format!("{}/1", p.pid())]);
    assert_eq!(named.stderr, "", "{}", named.stderr);
}
