//! The renderers over stacks built by hand, against tests/golden/ (see
//! `nptools_cli::golden`; `NPTOOLS_BLESS=1` rewrites the files).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libproc_rs::diag::{Notice, Severity};
use libproc_rs::stack::symbolize::SourceLine;
use libproc_rs::stack::{FrameKind, Stacks};
use libproc_rs::target::{SignalInfo, Source};
use nptools_cli::assert_golden;
use nptools_cli::golden::StubTarget;

use super::*;

/// A thread name with bytes a terminal must not get raw.
const HOSTILE_NAME: &[u8] = b"w\x1b[31m\xff\n";

fn native(pc: u64, module: &str, symbol: Option<&str>, offset: u64) -> Frame {
    Frame {
        pc,
        kind: FrameKind::Native,
        module: Some(module.into()),
        module_offset: Some(pc - 0x400000),
        symbol: symbol.map(str::to_owned),
        offset,
        source: None,
        inlined: Vec::new(),
        js: None,
        v8_frame: None,
        interrupted_by_signal: false,
    }
}

fn js(pc: u64, function: &str, tier: Option<&'static str>) -> Frame {
    Frame {
        kind: FrameKind::Js,
        module: None,
        module_offset: None,
        js: Some(JsName {
            function: function.to_owned(),
            script: Some("/app/server.js".to_owned()),
            line: Some(23),
            column: Some(11),
            at_start: false,
            tier,
            inlined: Vec::new(),
        }),
        ..native(pc, "", None, 0)
    }
}

fn line(file: &str, n: u32) -> SourceLine {
    SourceLine {
        file: Some(file.to_owned()),
        line: Some(n),
    }
}

/// The main thread of a node process: native frames with and without
/// symbols and DWARF lines, inlined calls, JavaScript frames of each
/// kind, V8's own frames, and a signal handler.
fn main_thread() -> ThreadStack {
    let mut poll = native(
        0x7f74_0b62_6cae,
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        Some("epoll_pwait"),
        0x4e,
    );
    poll.module_offset = Some(0x126cae);
    let mut uv = native(0x18c_0366, "/usr/bin/node", Some("uv__io_poll"), 0x3a6);
    uv.source = Some(line("../deps/uv/src/unix/linux.c", 1432));
    uv.inlined = vec![(
        "uv__epoll_ctl_flush".to_owned(),
        line("../deps/uv/src/unix/linux.c", 1201),
    )];
    let mut handler = native(
        0x7f74_0b5d_2520,
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        None,
        0,
    );
    handler.module_offset = Some(0x42520);
    let mut interrupted = js(0x3a2f_0000_1234, "Server.handle", Some("optimized"));
    interrupted.interrupted_by_signal = true;
    if let Some(j) = interrupted.js.as_mut() {
        j.inlined = vec![JsName {
            function: "parseHeader".to_owned(),
            script: Some("/app/http.js".to_owned()),
            line: Some(7),
            column: Some(3),
            at_start: false,
            tier: Some("optimized"),
            inlined: Vec::new(),
        }];
    }
    let mut at_start = js(0x3a2f_0000_5678, "<anonymous>", None);
    if let Some(j) = at_start.js.as_mut() {
        j.at_start = true;
        j.line = Some(18);
        j.script = Some("/app/\x1b[2Jevil.js".to_owned());
    }
    let mut no_script = js(0x3a2f_0000_9abc, "blockHere", Some("interpreted"));
    if let Some(j) = no_script.js.as_mut() {
        j.script = None;
    }
    let mut entry = native(
        0x1e4_5678,
        "/usr/bin/node",
        Some("Builtins_JSEntryTrampoline"),
        0x5c,
    );
    entry.v8_frame = Some("entry frame".to_owned());
    let mut unknown = native(0x3a2f_0001_0000, "", None, 0);
    unknown.kind = FrameKind::Unknown;
    unknown.module = None;
    unknown.module_offset = None;
    unknown.v8_frame = Some("unknown JS frame".to_owned());
    let mut rust = native(
        0x55d0_0000_1000,
        "/usr/bin/node",
        Some("std::rt::lang_start::{{closure}}"),
        0x16,
    );
    rust.module_offset = None;
    ThreadStack {
        tid: 4242,
        number: 1,
        name: Some("node".into()),
        role: Some("main (event loop)"),
        frames: vec![
            poll,
            uv,
            handler,
            interrupted,
            at_start,
            no_script,
            entry,
            unknown,
            rust,
        ],
        problem: None,
        held_us: Some(850),
        js_unnamed: 1,
    }
}

/// A libuv worker, repeated: `--group` shows it once.
fn worker(tid: i32, number: usize, name: &[u8]) -> ThreadStack {
    let mut wait = native(
        0x7f74_0b59_1d36,
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        Some("__futex_abstimed_wait_common"),
        0x126,
    );
    wait.module_offset = Some(0x91d36);
    ThreadStack {
        tid,
        number,
        name: Some(OsString::from_vec(name.to_vec())),
        role: Some("libuv threadpool worker"),
        frames: vec![
            wait,
            native(0x18b_c2a0, "/usr/bin/node", Some("uv_cond_wait"), 0x10),
            native(0x18a_9f1d, "/usr/bin/node", Some("worker"), 0x6d),
        ],
        problem: None,
        held_us: Some(120),
        js_unnamed: 0,
    }
}

fn stacks() -> Stacks {
    let mut cut_short = worker(4250, 5, b"node");
    cut_short.frames.truncate(1);
    cut_short.problem = Some("stack ends in memory the core does not hold".to_owned());
    Stacks {
        threads: vec![
            main_thread(),
            worker(4246, 2, b"node"),
            worker(4247, 3, b"node"),
            worker(4248, 4, HOSTILE_NAME),
            cut_short,
            ThreadStack {
                tid: 4251,
                number: 6,
                name: None,
                role: None,
                frames: Vec::new(),
                problem: Some("the thread exited".to_owned()),
                held_us: None,
                js_unnamed: 0,
            },
        ],
    }
}

fn notices() -> Vec<Notice> {
    vec![Notice {
        severity: Severity::Warning,
        text:
            "1 JavaScript frame not named: node 22.0.0 (V8 12.4): ScopeInfo layout not recognised"
                .to_owned(),
    }]
}

fn text(stacks: &Stacks, raw: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for t in &stacks.threads {
        if write_thread_header(&mut out, t, raw).is_err() || write_frames(&mut out, t, raw).is_err()
        {
            panic!("rendering into a buffer failed");
        }
    }
    out
}

fn grouped(stacks: &Stacks, raw: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for g in groups(&stacks.threads) {
        if write_group(&mut out, &g, raw).is_err() {
            panic!("rendering into a buffer failed");
        }
    }
    out
}

fn target() -> StubTarget {
    let mut t = StubTarget::node_server(Source::Core {
        path: "core.4242".into(),
    });
    t.signal = Some(SignalInfo {
        signo: 6,
        code: -6,
        errno: 0,
        fault_addr: None,
        sender_pid: Some(4242),
        sender_uid: Some(1000),
    });
    t
}

fn json(stacks: &Stacks, group: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if write_json(&mut out, &target(), stacks, &notices(), group).is_err() {
        panic!("rendering into a buffer failed");
    }
    out
}

#[test]
fn frames() {
    let out = text(&stacks(), false);
    assert!(!out.contains(&0x1b), "escape bytes reached the output");
    assert_golden!("frames.txt", &out);
}

#[test]
fn frames_raw() {
    let out = text(&stacks(), true);
    assert!(out.windows(HOSTILE_NAME.len()).any(|w| w == HOSTILE_NAME));
    assert_golden!("frames-raw.txt", &out);
}

#[test]
fn group() {
    let out = grouped(&stacks(), false);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("3 threads: lwp# 4246-4248 libuv threadpool worker"),
        "{text}"
    );
    assert_golden!("group.txt", &out);
}

#[test]
fn json_threads_and_groups() {
    assert_golden!("stacks.json", &json(&stacks(), false));
    assert_golden!("stacks-group.json", &json(&stacks(), true));
}
