//! npfiles and node's libuv handles: live, each descriptor libuv holds gets
//! a `libuv:` line; on a kernel core (which records no descriptor table)
//! npfiles lists the descriptors libuv held. Ground truth comes from the
//! node process itself, printed just before it is read or aborted:
//! `process.getActiveResourcesInfo()`, the `fd` of each handle it made, and
//! `/proc/self/fd`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nptools_tests::*;
use serde_json::Value;

/// A node server with TCP connections, a UNIX socket server, a child's
/// stdio pipes, a timer, an fs watcher and a Worker with a server of its
/// own; it prints `ready` and what it holds as JSON. `full: false` keeps
/// only the TCP server and its connections (for the other node lines).
fn server_script(full: bool) -> String {
    format!(
        r#"
'use strict';
const net = require('net'), fs = require('fs'), cp = require('child_process');
const {{ Worker }} = require('worker_threads');
const full = {full};
console.log('starting'); // makes process.stdout's handle before the list
const held = [], clients = [];
let unix = null, child = null, workerFd = null, connected = 0;
const srv = net.createServer((c) => {{ held.push(c); check(); }});
srv.listen(0, '127.0.0.1', () => {{
  for (let i = 0; i < 3; i++)
    clients.push(net.connect(srv.address().port, '127.0.0.1', () => {{ connected++; check(); }}));
}});
if (full) {{
  unix = net.createServer().listen(process.cwd() + '/u.sock', check);
  child = cp.spawn('/bin/cat', [], {{ stdio: ['pipe', 'pipe', 'inherit'] }});
  setInterval(() => {{}}, 1000);
  fs.watch(process.cwd(), () => {{}});
  const w = new Worker(`
    const net = require('net');
    const {{ parentPort }} = require('worker_threads');
    const s = net.createServer().listen(0, '127.0.0.1', () => parentPort.postMessage(s._handle.fd));
    setInterval(() => {{}}, 1000);`, {{ eval: true }});
  w.on('message', (fd) => {{ workerFd = fd; check(); }});
}}
let reported = false;
function check() {{
  if (reported || held.length < 3 || connected < 3) return;
  if (full && (workerFd === null || !unix.listening)) return;
  reported = true;
  setTimeout(report, 100);
}}
function report() {{
  const fds = {{}};
  for (const f of fs.readdirSync('/proc/self/fd')) {{
    try {{ fds[f] = fs.readlinkSync('/proc/self/fd/' + f); }} catch (e) {{}}
  }}
  const out = {{
    resources: process.getActiveResourcesInfo(),
    fds,
    tcp_listen: srv._handle.fd,
    tcp_conns: held.concat(clients).map((c) => c._handle.fd),
  }};
  if (full) {{
    out.unix_listen = unix._handle.fd;
    out.child_pipes = [child.stdin._handle.fd, child.stdout._handle.fd];
    out.worker_listen = workerFd;
  }}
  console.log('ready ' + JSON.stringify(out));
}}
setInterval(() => {{}}, 1 << 30);
"#
    )
}

fn spawn_server(node: &Path, dir: &Path, full: bool) -> Spawn {
    let script = dir.join("server.js");
    std::fs::write(&script, server_script(full)).unwrap();
    Spawn::new(node)
        .arg(&script)
        .cwd(dir)
        .env("PATH", "/usr/bin:/bin")
}

/// What the node script printed on its ready line.
fn truth(p: &Proc) -> Value {
    let json = p.ready_line.strip_prefix("ready ").expect("ready JSON");
    serde_json::from_str(json).expect("ready line is JSON")
}

fn fd_of(v: &Value) -> i32 {
    v.as_i64().expect("an fd") as i32
}

/// The handles of one loop kind in npfiles --json's `libuv`.
fn handles<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["libuv"]["loops"]
        .as_array()
        .expect("libuv.loops")
        .iter()
        .filter(|l| l["kind"] == kind)
        .flat_map(|l| l["handles"].as_array().unwrap())
        .collect()
}

fn has(h: &Value, word: &str) -> bool {
    h["state"].as_array().unwrap().iter().any(|w| w == word)
}

/// The main loop's ref'd handles counted as node's
/// `getActiveResourcesInfo()` names them.
fn resource_counts(doc: &Value) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for h in handles(doc, "main") {
        if !has(h, "ref") {
            continue;
        }
        let name = match (h["type"].as_str().unwrap(), has(h, "listening")) {
            ("tcp", true) => "TCPServerWrap",
            ("tcp", false) => "TCPSocketWrap",
            ("pipe", _) => "PipeWrap",
            ("fs_event", _) => "FSEventWrap",
            ("process", _) => "ProcessWrap",
            _ => continue,
        };
        *out.entry(name).or_default() += 1;
    }
    out
}

fn node_counts(t: &Value) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for r in t["resources"].as_array().unwrap() {
        for name in [
            "TCPServerWrap",
            "TCPSocketWrap",
            "PipeWrap",
            "FSEventWrap",
            "ProcessWrap",
        ] {
            if r == name {
                *out.entry(name).or_default() += 1;
            }
        }
    }
    out
}

/// The fd a handle of `kind` and `ty` owns with the state `word`.
fn handle_fds(doc: &Value, kind: &str, ty: &str, word: Option<&str>) -> BTreeSet<i32> {
    handles(doc, kind)
        .into_iter()
        .filter(|h| h["type"] == ty && word.is_none_or(|w| has(h, w)))
        .filter_map(|h| h["fd"].as_i64().map(|f| f as i32))
        .collect()
}

/// What both the live and the core report must agree with.
fn check_against_truth(doc: &Value, t: &Value, full: bool) {
    let listen = fd_of(&t["tcp_listen"]);
    assert_eq!(
        handle_fds(doc, "main", "tcp", Some("listening")),
        BTreeSet::from([listen]),
        "{doc}"
    );
    let conns: BTreeSet<i32> = t["tcp_conns"]
        .as_array()
        .unwrap()
        .iter()
        .map(fd_of)
        .collect();
    let mut tcp = handle_fds(doc, "main", "tcp", None);
    tcp.remove(&listen);
    assert_eq!(tcp, conns);
    // Every descriptor libuv holds is one /proc/self/fd listed.
    let proc_fds: BTreeSet<i32> = t["fds"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    for f in doc["fds"].as_array().unwrap() {
        let fd = fd_of(&f["fd"]);
        assert!(proc_fds.contains(&fd), "libuv's fd {fd} was not open: {t}");
    }
    if !full {
        return;
    }
    assert_eq!(resource_counts(doc), node_counts(t), "{doc}\n{t}");
    let unix = fd_of(&t["unix_listen"]);
    let named: Vec<&Value> = handles(doc, "main")
        .into_iter()
        .filter(|h| h["fd"] == unix)
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["type"], "pipe");
    assert!(has(named[0], "listening"));
    assert!(named[0]["name"].as_str().unwrap().ends_with("/u.sock"));
    let pipes = handle_fds(doc, "main", "pipe", None);
    for p in t["child_pipes"].as_array().unwrap() {
        assert!(pipes.contains(&fd_of(p)), "child pipe {p} in {pipes:?}");
    }
    assert_eq!(
        handle_fds(doc, "worker", "tcp", Some("listening")),
        BTreeSet::from([fd_of(&t["worker_listen"])])
    );
    let main = handles(doc, "main");
    // node's one timer handle: not always active (libuv stops it while
    // node runs the timers that are due).
    assert!(main.iter().any(|h| h["type"] == "timer"));
    assert!(
        main.iter()
            .any(|h| h["type"] == "fs_event" && has(h, "active"))
    );
    assert!(main.iter().any(|h| h["type"] == "process"));
}

/// The text report's block for descriptor `fd`.
fn block(report: &str, fd: i32) -> String {
    let head = format!("{fd:4}: ");
    let mut out = String::new();
    let mut inside = false;
    for line in report.lines() {
        if line.len() > 5 && line.as_bytes()[4] == b':' && line[..4].trim().parse::<i32>().is_ok() {
            inside = line.starts_with(&head);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(run.ok().trim()).expect("npfiles --json")
}

#[test]
fn live_node_descriptors_have_libuv_lines() {
    let dir = scratch();
    let p = spawn_server(&node(), dir.path(), true).start();
    let t = truth(&p);
    let text = run_tool_on("npfiles", &[], p.pid_arg()).ok();
    let doc = json_of(&run_tool_on("npfiles", &["--json"], p.pid_arg()));
    check_against_truth(&doc, &t, true);
    let listen = fd_of(&t["tcp_listen"]);
    let b = block(&text, listen);
    assert!(b.contains("state: LISTEN"), "{b}");
    assert!(
        b.contains("      libuv: tcp, listening, bound, active, ref (main loop)\n"),
        "{b}"
    );
    let w = block(&text, fd_of(&t["worker_listen"]));
    assert!(w.contains("libuv: tcp, listening"), "{w}");
    assert!(w.contains("(worker loop, thread "), "{w}");
    // The inotify descriptor carries the fs_event handle that watches.
    let inotify = t["fds"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, l)| l.as_str() == Some("anon_inode:inotify"))
        .map(|(f, _)| f.parse::<i32>().unwrap())
        .expect("an inotify fd");
    assert!(
        block(&text, inotify).contains("libuv: fs_event wd:"),
        "{text}"
    );
    // The libuv lines are for the descriptors libuv holds, once each way.
    let lines = text
        .lines()
        .filter(|l| l.starts_with("      libuv: tcp"))
        .count();
    assert_eq!(lines, handle_fds(&doc, "main", "tcp", None).len() + 1);
}

#[test]
fn kernel_core_of_node_lists_what_libuv_held() {
    let script_dir = scratch();
    let spawn = spawn_server(&node(), script_dir.path(), true);
    // The script is in a directory of its own; kernel_core runs it in
    // another, which is where it binds its UNIX socket and dumps core.
    let mut t = Value::Null;
    let (_kd, core) = kernel_core(&spawn, |p| t = truth(p));
    let core_arg = core.to_str().unwrap();
    let run = run_tool_on("npfiles", &[], core_arg);
    let text = run.ok();
    assert_eq!(
        run.stderr,
        format!(
            "npfiles: {core_arg}: warning: a Linux core file records no descriptor table: \
             these are the descriptors node's libuv held\n"
        )
    );
    let doc = json_of(&run_tool_on("npfiles", &["--json"], core_arg));
    assert_eq!(doc["descriptors_from"], "libuv");
    assert!(
        doc["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("no descriptor table"))
    );
    check_against_truth(&doc, &t, true);
    // The seed's pipeline and --type sock count the sockets node held.
    let sockets = t["fds"]
        .as_object()
        .unwrap()
        .values()
        .filter(|l| l.as_str().unwrap().starts_with("socket:"))
        .count();
    let numbered = text
        .lines()
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|n| n.trim().parse::<i32>().is_ok())
        })
        .filter(|l| l.contains("IFSOCK"))
        .count();
    assert_eq!(numbered, sockets, "{text}\n{t}");
    let typed = run_tool_on("npfiles", &["--type", "sock"], core_arg).ok();
    assert_eq!(typed.lines().count(), sockets, "{typed}");
    let tcp = run_tool_on("npfiles", &["--type", "tcp"], core_arg).ok();
    assert_eq!(
        tcp.lines().count(),
        t["tcp_conns"].as_array().unwrap().len() + 2,
        "{tcp}"
    );
    // Each fd's type is the one /proc showed.
    for f in doc["fds"].as_array().unwrap() {
        let link = t["fds"][f["fd"].to_string()].as_str().unwrap();
        let want = match link.split(':').next().unwrap() {
            "socket" => "S_IFSOCK",
            "pipe" => "S_IFIFO",
            "anon_inode" => "S_IFANON",
            _ => "S_IFCHR",
        };
        assert_eq!(f["file_type"], want, "fd {} is {link}", f["fd"]);
    }
    let b = block(&text, fd_of(&t["tcp_listen"]));
    assert_eq!(
        b,
        format!(
            "{:4}: S_IFSOCK\n      libuv: tcp, listening, bound, active, ref (main loop)\n",
            fd_of(&t["tcp_listen"])
        )
    );
}

#[test]
fn every_node_line_main_loop_live_and_in_a_kernel_core() {
    for &major in NODE_MAJORS {
        let node = fetched_node(major);
        let dir = scratch();
        let spawn = spawn_server(&node, dir.path(), false);
        {
            let p = spawn.start();
            let doc = json_of(&run_tool_on("npfiles", &["--json"], p.pid_arg()));
            check_against_truth(&doc, &truth(&p), false);
        }
        let mut t = Value::Null;
        let (_kd, core) = kernel_core(&spawn, |p| t = truth(p));
        let doc = json_of(&run_tool_on("npfiles", &["--json"], &core));
        check_against_truth(&doc, &t, false);
        let listen = fd_of(&t["tcp_listen"]);
        let typed = run_tool_on("npfiles", &["--type", "tcp"], &core).ok();
        assert!(
            typed.contains(&format!("{listen:4}: tcp libuv: tcp, listening")),
            "node {major}: {typed}"
        );
    }
}

#[test]
fn core_of_a_c_program_says_it_is_not_node() {
    let (_kd, core) = kernel_core(&Spawn::new(fixture("openfiles")).arg("1"), |_| {});
    let run = run_tool_on("npfiles", &["--json"], &core);
    assert_eq!(run.code(), 1);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.ends_with(
            "a Linux core file records no open files, and not a node process: \
             no libuv loop (uv_default_loop) in its executable or a libuv library\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn core_of_node_without_its_memory_says_the_loop_cannot_be_read() {
    // coredump_filter 0: no anonymous memory in the core, so neither
    // node's .bss (default_loop_ptr) nor the heap.
    let mut spawn = node_eval("");
    spawn.coredump_filter = Some(0);
    let (_kd, core) = kernel_core(&spawn, |_| {});
    for args in [&[][..], &["--type", "sock"], &["--json"]] {
        let run = run_tool_on("npfiles", args, &core);
        assert_eq!(run.code(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(
                "a Linux core file records no open files, and node's main libuv loop \
                 cannot be found: default_loop_ptr cannot be read: memory at"
            ),
            "{}",
            run.stderr
        );
        assert!(!run.text().contains("libuv:"), "{}", run.text());
    }
}

/// Two Workers, each with a listening server, spinning in JavaScript: a
/// running thread has no stack pointer in /proc (no system call), so its
/// loop is found at the top of its stack, and each server is put on its
/// own worker's thread (the ids the workers read from /proc/thread-self).
#[test]
fn running_workers_loops_are_found_live() {
    running_workers(&node());
    for major in [22, 24, 26] {
        running_workers(&fetched_node(major));
    }
}

fn running_workers(node: &Path) {
    let dir = scratch();
    let script = dir.path().join("spin.js");
    std::fs::write(
        &script,
        r#"
'use strict';
const { Worker } = require('worker_threads');
const got = [];
for (let i = 0; i < 2; i++) {
  const w = new Worker(`
    const net = require('net'), fs = require('fs');
    const { parentPort } = require('worker_threads');
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
      parentPort.postMessage({ fd: s._handle.fd, tid });
      setTimeout(() => { for (;;) {} }, 50);
    });`, { eval: true });
  w.on('message', (m) => {
    got.push(m);
    if (got.length === 2) setTimeout(() => console.log('ready ' + JSON.stringify(got)), 300);
  });
}
setInterval(() => {}, 1 << 30);
"#,
    )
    .unwrap();
    let p = Spawn::new(node)
        .arg(&script)
        .cwd(dir.path())
        .env("PATH", "/usr/bin:/bin")
        .start();
    let workers: Vec<(i32, i32)> =
        serde_json::from_str::<Value>(p.ready_line.strip_prefix("ready ").unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (fd_of(&w["fd"]), fd_of(&w["tid"])))
            .collect();
    for &(_, tid) in &workers {
        let syscall =
            std::fs::read_to_string(format!("/proc/{}/task/{tid}/syscall", p.pid())).unwrap();
        assert_eq!(
            syscall.trim(),
            "running",
            "worker thread {tid} is not spinning"
        );
    }
    let run = run_tool_on("npfiles", &[], p.pid_arg());
    let text = run.ok();
    assert_eq!(run.stderr, "", "no problem is said");
    for (fd, tid) in workers {
        let b = block(&text, fd);
        assert!(
            b.contains(&format!(
                "      libuv: tcp, listening, bound, active, ref (worker loop, thread {tid})\n"
            )),
            "{}: fd {fd} of worker thread {tid}:\n{b}",
            node.display()
        );
    }
}

/// A program on a shared libuv (libuv.so.1, as Debian's and Alpine's node
/// are built): its loop is found through the library's `uv_default_loop`,
/// live and in its kernel core.
#[test]
fn shared_libuv_loop_live_and_in_a_kernel_core() {
    let exe = fixture_variant("uvloop", "", &["-Wl,--no-as-needed", "-luv"]);
    let fds = |p: &Proc| -> (i32, i32) {
        let w: Vec<i32> = p.ready_line["ready ".len()..]
            .split(' ')
            .map(|f| f.parse().unwrap())
            .collect();
        (w[0], w[1])
    };
    let mut live = None;
    let (_kd, core) = kernel_core(&Spawn::new(&exe), |p| {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", p.pid())).unwrap();
        assert!(maps.contains("/libuv.so.1"), "libuv is not shared:\n{maps}");
        let run = run_tool_on("npfiles", &[], p.pid_arg());
        live = Some((fds(p), run.ok()));
        assert_eq!(run.stderr, "", "no problem is said");
    });
    let ((listen, pipe), text) = live.unwrap();
    let on_core = run_tool_on("npfiles", &[], &core).ok();
    for (what, report) in [("live", &text), ("core", &on_core)] {
        assert!(
            block(report, listen)
                .contains("      libuv: tcp, listening, bound, active, ref (main loop)\n"),
            "{what}: {report}"
        );
        assert!(
            block(report, pipe).contains("      libuv: pipe"),
            "{what}: {report}"
        );
    }
}
