//! The NPTOOLS notes an npgcore core carries, from real processes: what
//! the encoder reads of a live fixture decodes to what was read, and a
//! real kernel core of that fixture with those notes added (one more
//! PT_NOTE, appended) reads as the process did live: npfiles' report
//! byte for byte, npstack's thread names, npmap -x's RSS, Anon and Locked.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use libproc_rs::ProcessTarget;
use libproc_rs::diag::Notice;
use libproc_rs::live::LiveProcess;
use libproc_rs::live::notes::{OWNER, collect};
use libproc_rs::npnotes::{self, Recorded, SmapsTable};
use libproc_rs::openfiles::Options;
use nptools_tests::*;
use serde_json::Value;

/// A copy of `core` at `out` with one more PT_NOTE holding `notes` under
/// [`OWNER`]: the new program header table and the notes are appended, so
/// every offset in the core stays as it was.
fn add_notes(core: &Path, out: &Path, notes: &[(u32, Vec<u8>)]) {
    let mut bytes = std::fs::read(core).expect("read the core");
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phentsize = usize::from(u16_at(&bytes, 54));
    let phnum = usize::from(u16_at(&bytes, 56));
    assert_eq!(phentsize, 56, "an ELF64 core");
    assert!(phnum < 0xffff, "no PN_XNUM cores here");
    let mut table = bytes[phoff..phoff + phnum * phentsize].to_vec();
    let mut segment = Vec::new();
    for (n_type, desc) in notes {
        let mut name = OWNER.to_vec();
        name.push(0);
        segment.extend_from_slice(&(name.len() as u32).to_le_bytes());
        segment.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        segment.extend_from_slice(&n_type.to_le_bytes());
        segment.extend_from_slice(&name);
        segment.resize(segment.len().next_multiple_of(4), 0);
        segment.extend_from_slice(desc);
        segment.resize(segment.len().next_multiple_of(4), 0);
    }
    bytes.resize(bytes.len().next_multiple_of(8), 0);
    let new_phoff = bytes.len();
    let notes_at = new_phoff + (phnum + 1) * phentsize;
    let mut ph = vec![0u8; 56];
    ph[0..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
    ph[8..16].copy_from_slice(&(notes_at as u64).to_le_bytes());
    ph[32..40].copy_from_slice(&(segment.len() as u64).to_le_bytes());
    ph[48..56].copy_from_slice(&4u64.to_le_bytes());
    table.extend_from_slice(&ph);
    bytes.extend_from_slice(&table);
    bytes.extend_from_slice(&segment);
    bytes[32..40].copy_from_slice(&(new_phoff as u64).to_le_bytes());
    bytes[56..58].copy_from_slice(&((phnum + 1) as u16).to_le_bytes());
    std::fs::write(out, bytes).expect("write the core with notes");
}

fn decode(notes: &[(u32, Vec<u8>)]) -> Recorded {
    let mut r = Recorded::default();
    for (t, d) in notes {
        r.take(*t, d);
    }
    assert_eq!(r.notices, Vec::<String>::new());
    r
}

/// A report without its header line.
fn body(report: &str) -> &str {
    report.split_once('\n').map_or("", |(_, rest)| rest)
}

/// The timerfd's time to expiry in a report line (`value:999.1234s`), in
/// nanoseconds, and the report with it blanked: it counts down between
/// two reads.
fn timer_values(report: &str) -> (Vec<u128>, String) {
    let mut values = Vec::new();
    let mut out = String::new();
    for line in report.lines() {
        match line.split_once(" value:") {
            Some((head, rest)) if head.trim_start().starts_with("timerfd ") => {
                let (v, tail) = rest.split_once("s ").expect("value:S.Ns");
                let (s, ns) = v.split_once('.').expect("S.N");
                values
                    .push(s.parse::<u128>().unwrap() * 1_000_000_000 + ns.parse::<u128>().unwrap());
                out.push_str(&format!("{head} value:-s {tail}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    (values, out)
}

fn lines_with_sockets(report: &str) -> usize {
    report
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            l.len() - t.len() < 4
                && t.split_once(':')
                    .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|l| l.contains("IFSOCK"))
        .count()
}

/// `--json`'s descriptors without the timer's value (it counts down).
fn json_fds(run: &Run) -> Value {
    let mut v: Value = serde_json::from_slice(&run.stdout).expect("npfiles --json");
    for fd in v["fds"].as_array_mut().expect("fds") {
        if let Some(t) = fd.pointer_mut("/anon/timer") {
            t["value_ns"] = Value::Null;
        }
    }
    v["fds"].take()
}

struct LiveReads {
    notes: Vec<(u32, Vec<u8>)>,
    before: String,
    after: String,
    typed: Vec<(&'static [&'static str], String)>,
    json: Run,
}

const TYPED: &[&[&str]] = &[
    &["--type", "sock"],
    &["--type", "tcp"],
    &["--type", "unix"],
    &["-n"],
];

#[test]
fn npfiles_on_a_core_with_the_notes_is_the_live_report() {
    let mut live = None;
    let spawn = Spawn::new(fixture("openfiles")).arg("3");
    let (dir, core) = kernel_core(&spawn, |p| {
        let pid = p.pid_arg();
        let process = LiveProcess::open(p.pid()).expect("open the fixture");
        let mut sink: Vec<Notice> = Vec::new();
        // decode(encode(table)) is the table.
        let table = process.open_files(Options::full(), &mut sink).unwrap();
        let mut r = Recorded::default();
        r.take(
            npnotes::NT_NPTOOLS_FDTABLE,
            &npnotes::encode_fd_table(&table),
        );
        assert_eq!(r.fd_table.as_ref(), Some(&table));
        assert!(table.fds.iter().any(|d| !d.other_end.is_empty()));

        let before = run_tool_on("npfiles", &[], &pid).ok();
        let notes = collect(&process, &mut sink).expect("collect the notes");
        let after = run_tool_on("npfiles", &[], &pid).ok();
        assert!(sink.is_empty(), "{sink:?}");
        let typed = TYPED
            .iter()
            .map(|args| (*args, run_tool_on("npfiles", args, &pid).ok()))
            .collect();
        let json = run_tool_on("npfiles", &["--json"], &pid);
        // What the notes say of the rest.
        let r = decode(&notes);
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        let paths = r.paths.clone().unwrap();
        assert_eq!(paths.cwd, Some(OsString::from(cwd)));
        assert_eq!(paths.root, Some(OsString::from("/")));
        let limits = r.limits.clone().unwrap();
        let nofile = limits.iter().find(|l| l.name == b"Max open files").unwrap();
        assert_eq!(Some(nofile.soft), r.fd_table.as_ref().unwrap().rlimit);
        assert_eq!(nofile.soft.to_string(), p.ready_field("rlimit").unwrap());
        assert_eq!(limits.len(), 16, "{limits:?}");
        assert_eq!(
            r.threads,
            Some(vec![(p.pid(), OsString::from("openfiles"))])
        );
        live = Some(LiveReads {
            notes,
            before,
            after,
            typed,
            json,
        });
    });
    let live = live.unwrap();
    let with_notes = dir.path().join("core.notes");
    add_notes(&core, &with_notes, &live.notes);

    // The report: byte for byte as live, but for the header and the
    // timer, which counted down from one read to the next.
    let run = run_tool_on("npfiles", &[], &with_notes);
    let report = run.ok();
    assert_eq!(run.stderr, "");
    assert!(report.starts_with(&format!("core '{}' of ", with_notes.display())));
    let (core_timer, core_body) = timer_values(body(&report));
    let (t_before, before) = timer_values(body(&live.before));
    let (t_after, after) = timer_values(body(&live.after));
    assert_eq!(
        before, after,
        "the fixture's table changed between two reads"
    );
    assert_eq!(core_body, before);
    assert_eq!(core_timer.len(), 1);
    assert!(
        t_after[0] <= core_timer[0] && core_timer[0] <= t_before[0],
        "timer {core_timer:?} not between {t_before:?} and {t_after:?}"
    );
    // Peer matching is there, not only copied text.
    assert!(core_body.contains(" of this process\n"), "{core_body}");
    assert!(core_body.contains("other end: fd"), "{core_body}");
    assert_eq!(
        lines_with_sockets(&report),
        lines_with_sockets(&live.before)
    );
    assert!(lines_with_sockets(&report) >= 10);
    for (args, live_out) in &live.typed {
        let run = run_tool_on("npfiles", args, &with_notes);
        let out = run.ok();
        if args[0] == "-n" {
            assert_eq!(body(&out), body(live_out), "npfiles -n");
        } else {
            assert_eq!(&out, live_out, "npfiles {args:?}");
        }
    }
    let sock = run_tool_on("npfiles", &["--type", "sock"], &with_notes).ok();
    assert_eq!(sock.lines().count(), lines_with_sockets(&live.before));

    let json = run_tool_on("npfiles", &["--json"], &with_notes);
    assert_eq!(json.code(), 0, "{}", json.stderr);
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["descriptors_from"], "npgcore notes");
    assert_eq!(
        doc["npgcore_notes"],
        serde_json::json!(["descriptors", "threads", "limits", "paths", "smaps"])
    );
    let live_doc: Value = serde_json::from_slice(&live.json.stdout).unwrap();
    assert_eq!(doc["rlimit"], live_doc["rlimit"]);
    assert_eq!(doc["socket_source"], live_doc["socket_source"]);
    assert_eq!(json_fds(&json), json_fds(&live.json));

    // The core without the notes still has no table.
    let plain = run_tool_on("npfiles", &[], &core);
    assert_eq!(plain.code(), 1);
    assert!(
        plain.stderr.contains("records no open files"),
        "{}",
        plain.stderr
    );

    // A note of a version this nptools does not read: said once, in
    // --json too, and no table.
    let mut notes = live.notes.clone();
    notes[0].1[0] = 7;
    let odd = dir.path().join("core.v7");
    add_notes(&core, &odd, &notes);
    let run = run_tool_on("npfiles", &[], &odd);
    assert_eq!(run.code(), 1);
    run.no_crash();
    let said = "the core's NPTOOLS descriptors note (type 1) is not used: version 7, and \
                this version of nptools reads version 1";
    assert_eq!(run.stderr.matches(said).count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("usable descriptor table"),
        "{}",
        run.stderr
    );
    let json = run_tool_on("npfiles", &["--json"], &odd);
    assert_eq!(json.code(), 1);
    assert_eq!(json.stderr.matches(said).count(), 1, "{}", json.stderr);
    // A report that works on that core carries it in its --json notices.
    let map = run_tool_on("npmap", &["--json"], &odd);
    assert_eq!(map.code(), 0, "{}", map.stderr);
    assert_eq!(map.stderr.matches(said).count(), 1, "{}", map.stderr);
    let doc: Value = serde_json::from_slice(&map.stdout).unwrap();
    assert!(
        doc["notices"].as_array().unwrap().iter().any(|n| n == said),
        "{doc}"
    );
    assert_eq!(
        doc["npgcore_notes"],
        serde_json::json!(["threads", "limits", "paths", "smaps"])
    );
}

fn stacks_fixture() -> PathBuf {
    fixture_variant("stacks", "o2", &["-O2", "-fomit-frame-pointer"])
}

/// The thread header lines of an npstack report.
fn thread_headers(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| l.starts_with("-----------------  lwp# "))
        .collect()
}

/// npmap -x rows by address: (RSS, Anon, Locked) as printed.
fn usage_rows(report: &str) -> BTreeMap<u64, [String; 3]> {
    report
        .lines()
        .skip(2)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let addr = u64::from_str_radix(w.first()?, 16).ok()?;
            Some((addr, [w[2].to_owned(), w[3].to_owned(), w[4].to_owned()]))
        })
        .collect()
}

#[test]
fn npstack_and_npmap_on_a_core_with_the_notes_show_them() {
    let mut live = None;
    let spawn = Spawn::new(stacks_fixture());
    let (dir, core) = kernel_core(&spawn, |p| {
        let workers: Vec<i32> = p
            .ready_line
            .split_whitespace()
            .skip(1)
            .map(|t| t.parse().unwrap())
            .collect();
        for &tid in workers.iter().chain([p.pid()].iter()) {
            wait_in_syscall(p.pid(), tid, 0);
        }
        let pid = p.pid_arg();
        let process = LiveProcess::open(p.pid()).unwrap();
        // decode(encode(...)) of the names and the smaps figures.
        let names: Vec<(i32, OsString)> = process
            .threads()
            .unwrap()
            .into_iter()
            .map(|t| (t.tid, t.name.unwrap()))
            .collect();
        let smaps = SmapsTable::parse(&std::fs::read(format!("/proc/{pid}/smaps")).unwrap());
        let r = decode(&[
            (npnotes::NT_NPTOOLS_THREADS, npnotes::encode_threads(&names)),
            (npnotes::NT_NPTOOLS_SMAPS, npnotes::encode_smaps(&smaps)),
        ]);
        assert_eq!(r.threads.as_ref(), Some(&names));
        assert_eq!(r.smaps.as_ref(), Some(&smaps));
        assert!(
            ["Rss", "Pss", "Anonymous", "Swap", "Locked"]
                .iter()
                .all(|f| smaps.fields.iter().any(|g| g == f))
        );
        assert!(names.iter().any(|(_, n)| n == "npt-worker-2"));

        let mut sink: Vec<Notice> = Vec::new();
        let notes = collect(&process, &mut sink).unwrap();
        let stack = run_tool_on("npstack", &[], &pid).ok();
        let map = run_tool_on("npmap", &["-x"], &pid).ok();
        live = Some((notes, stack, map, workers));
    });
    let (notes, stack, map, workers) = live.unwrap();
    let with_notes = dir.path().join("core.notes");
    add_notes(&core, &with_notes, &notes);

    let run = run_tool_on("npstack", &[], &with_notes);
    let report = run.ok();
    let headers = thread_headers(&report);
    assert_eq!(headers, thread_headers(&stack), "{report}");
    for (i, tid) in workers.iter().enumerate() {
        let (lwp, name) = (format!("lwp# {tid} "), format!("[npt-worker-{}]", i + 1));
        assert!(
            headers
                .iter()
                .any(|h| h.contains(&lwp) && h.contains(&name)),
            "{name}: {headers:#?}"
        );
    }
    let json: Value =
        serde_json::from_slice(&run_tool_on("npstack", &["--json"], &with_notes).stdout).unwrap();
    assert!(
        json["npgcore_notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "threads"),
        "{json}"
    );
    // Without the notes, a kernel core names no thread.
    let plain = run_tool_on("npstack", &[], &core).ok();
    assert!(!plain.contains("[npt-worker-"), "{plain}");

    let out = run_tool_on("npmap", &["-x"], &with_notes).ok();
    assert!(out.lines().nth(1).unwrap().contains(" Dumped "), "{out}");
    let core_rows = usage_rows(&out);
    let live_rows = usage_rows(&map);
    let smaps = decode(&notes).smaps.unwrap();
    assert!(core_rows.len() >= 10, "{out}");
    for (addr, row) in &core_rows {
        let figures = smaps
            .mappings
            .iter()
            .find(|m| m.start == *addr)
            .unwrap_or_else(|| panic!("no figures for {addr:#x}"));
        let u = smaps.usage(figures);
        let want = [u.rss_kib, u.anon_kib, u.locked_kib].map(|n| n.to_string());
        assert_eq!(row, &want, "{addr:#x} in {out}");
        assert_eq!(
            Some(row),
            live_rows.get(addr),
            "{addr:#x}: live {map}\ncore {out}"
        );
    }
    assert!(core_rows.values().any(|r| r[0] != "0"));
    // The totals row carries the sums.
    let total = out.lines().last().unwrap();
    let live_total = map.lines().last().unwrap();
    let nums = |l: &str| {
        l.split_whitespace()
            .skip(2)
            .take(4)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        nums(total)[1..4],
        nums(live_total)[1..4],
        "{total} / {live_total}"
    );
}

/// A core npgcore wrote of `pid`, in `dir`.
fn npgcore_core(pid: i32, dir: &Path) -> PathBuf {
    let run = run_command(
        std::process::Command::new(tool("npgcore"))
            .arg(pid.to_string())
            .current_dir(dir),
    );
    assert_eq!(run.ok().trim(), format!("core.{pid}"), "{}", run.stderr);
    assert_eq!(run.stderr, "", "npgcore said something");
    dir.join(format!("core.{pid}"))
}

/// Through npgcore itself: the core of the fixture reads as the process
/// did live at that moment, in npfiles (byte for byte but the header and
/// the counting-down timer, and the seed's pipeline), npstack's thread
/// names and npmap -x's figures.
#[test]
fn an_npgcore_core_reads_as_the_process_did_live() {
    let dir = scratch();
    let p = Spawn::new(fixture("openfiles"))
        .arg("3")
        .cwd(dir.path())
        .start();
    let pid = p.pid_arg();
    // Before the dump: reading the first page of each ELF mapping maps it
    // into the process, as the kernel's dump does, and its RSS grows.
    let map_live = usage_rows(&run_tool_on("npmap", &["-x"], &pid).ok());
    let before = run_tool_on("npfiles", &[], &pid).ok();
    let sock_live = run_tool_on("npfiles", &["--type", "sock"], &pid).ok();
    let core = npgcore_core(p.pid(), dir.path());
    let after = run_tool_on("npfiles", &[], &pid).ok();
    let stack_live = run_tool_on("npstack", &[], &pid).ok();

    let run = run_tool_on("npfiles", &[], &core);
    let report = run.ok();
    assert_eq!(run.stderr, "");
    let (core_timer, core_body) = timer_values(body(&report));
    let (t_before, live_body) = timer_values(body(&before));
    let (t_after, live_after) = timer_values(body(&after));
    assert_eq!(live_body, live_after, "the fixture's table changed");
    assert_eq!(core_body, live_body);
    assert!(t_after[0] <= core_timer[0] && core_timer[0] <= t_before[0]);
    assert_eq!(lines_with_sockets(&report), lines_with_sockets(&before));
    assert!(lines_with_sockets(&report) >= 10);
    let sock = run_tool_on("npfiles", &["--type", "sock"], &core).ok();
    assert_eq!(sock, sock_live);

    let stack_core = run_tool_on("npstack", &[], &core).ok();
    assert_eq!(thread_headers(&stack_core), thread_headers(&stack_live));
    assert!(
        thread_headers(&stack_core)[0].contains("[openfiles]"),
        "{stack_core}"
    );

    // npmap -x: every mapping's RSS, Anon and Locked from the notes, as
    // npmap -x showed them live just before (the fixture is idle).
    let map_core = usage_rows(&run_tool_on("npmap", &["-x"], &core).ok());
    assert_eq!(map_core, map_live);
}

/// A node server with connections: npfiles of its npgcore core is npfiles
/// of the process, libuv's lines included, and the seed's pipeline counts
/// the same sockets.
#[test]
fn an_npgcore_core_of_a_node_server_keeps_its_descriptors() {
    let dir = scratch();
    // Ready only once every connection is made (node_eval says ready
    // at once).
    let mut spawn = Spawn::new(node())
        .env("PATH", "/usr/bin:/bin")
        .arg("-e")
        .arg(
            "const net = require('net'); const keep = [];
         const srv = net.createServer(s => keep.push(s));
         setInterval(() => {}, 1 << 30);
         srv.listen(0, '127.0.0.1', () => {
           let n = 0;
           for (let i = 0; i < 8; i++) {
             const c = net.connect(srv.address().port, '127.0.0.1', () => {
               keep.push(c);
               if (++n === 8) setTimeout(() => console.log('ready'), 200);
             });
           }
         });",
        );
    spawn.quiet_stderr = true;
    let p = spawn.start();
    let pid = p.pid_arg();
    let live = run_tool_on("npfiles", &[], &pid).ok();
    let core = npgcore_core(p.pid(), dir.path());
    let again = run_tool_on("npfiles", &[], &pid).ok();
    assert_eq!(body(&live), body(&again), "the server's table changed");
    let run = run_tool_on("npfiles", &[], &core);
    assert_eq!(run.stderr, "");
    let report = run.ok();
    assert_eq!(body(&report), body(&live));
    assert!(report.contains("libuv: tcp, listening"), "{report}");
    // 8 clients, 8 accepted, the listener (and node's own stdio, if any).
    assert!(lines_with_sockets(&report) >= 17, "{report}");
    assert_eq!(lines_with_sockets(&report), lines_with_sockets(&live));
    assert_eq!(
        run_tool_on("npfiles", &["--type", "sock"], &core).ok(),
        run_tool_on("npfiles", &["--type", "sock"], &pid).ok()
    );
}
