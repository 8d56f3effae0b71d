//! npstack: frames and names of real threads, live, on gcore cores and on
//! kernel cores; C, C++ and node targets; robustness of the live capture.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nptools_tests::*;

/// The stacks fixture built as the tests want it: optimised, without
/// frame pointers, so unwinding must use the CFI tables.
fn stacks_fixture() -> PathBuf {
    fixture_variant("stacks", "o2", &["-O2", "-fomit-frame-pointer"])
}

/// Worker TIDs from the fixture's ready line.
fn worker_tids(p: &Proc) -> Vec<i32> {
    p.ready_line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().expect("tid"))
        .collect()
}

/// Wait until each thread is blocked in read(2) (syscall 0), so that the
/// stacks are the ones the fixture promises.
fn wait_in_read(pid: i32, tids: &[i32]) {
    for &tid in tids.iter().chain(std::iter::once(&pid)) {
        wait_in_syscall(pid, tid, 0);
    }
}

/// One thread's block of a text report: its header line and frame lines.
#[derive(Debug)]
struct ThreadOut {
    header: String,
    frames: Vec<String>,
}

fn threads_of(report: &str) -> Vec<ThreadOut> {
    let mut out: Vec<ThreadOut> = Vec::new();
    for line in report.lines() {
        if line.starts_with("-----------------  ") {
            out.push(ThreadOut {
                header: line.to_owned(),
                frames: Vec::new(),
            });
        } else if let Some(t) = out.last_mut() {
            t.frames.push(line.to_owned());
        }
    }
    out
}

/// The function name of a frame line ` <pc> name () + off`.
fn function(frame: &str) -> &str {
    let rest = frame.trim_start();
    let rest = rest.split_once(' ').map_or("", |(_, r)| r);
    rest.split(" () + ").next().unwrap_or(rest)
}

fn find_thread(threads: &[ThreadOut], tid: i32) -> &ThreadOut {
    threads
        .iter()
        .find(|t| t.header.contains(&format!("lwp# {tid} ")))
        .unwrap_or_else(|| panic!("no thread {tid} in {threads:#?}"))
}

/// Every frame line has the ` <16 hex digits> ...` shape.
fn check_frame_shape(t: &ThreadOut) {
    for f in &t.frames {
        let pc = f.get(1..17).unwrap_or("");
        assert!(
            f.starts_with(' ') && pc.len() == 16 && pc.bytes().all(|b| b.is_ascii_hexdigit()),
            "frame line shape: {f:?}"
        );
    }
}

/// Check the stacks fixture's report: workers read <- npt_leaf <-
/// npt_middle x3 <- npt_thread_main <- start_thread <- clone3; main read <-
/// npt_main_wait <- main ... _start. Names on the header when `names`.
fn check_fixture_report(report: &str, pid: i32, workers: &[i32], names: bool) {
    let threads = threads_of(report);
    assert_eq!(threads.len(), workers.len() + 1, "{report}");
    let main = find_thread(&threads, pid);
    assert!(main.header.contains("thread# 1"), "{}", main.header);
    let main_fns: Vec<&str> = main.frames.iter().map(|f| function(f)).collect();
    assert!(main_fns[0].contains("read"), "main leaf: {main_fns:?}");
    assert_eq!(main_fns[1], "npt_main_wait", "{main_fns:?}");
    assert_eq!(main_fns[2], "main", "{main_fns:?}");
    assert_eq!(*main_fns.last().unwrap(), "_start", "{main_fns:?}");
    for (i, &tid) in workers.iter().enumerate() {
        let t = find_thread(&threads, tid);
        check_frame_shape(t);
        let fns: Vec<&str> = t.frames.iter().map(|f| function(f)).collect();
        assert!(fns[0].contains("read"), "leaf of {tid}: {fns:?}");
        assert_eq!(
            &fns[1..6],
            [
                "npt_leaf",
                "npt_middle",
                "npt_middle",
                "npt_middle",
                "npt_thread_main"
            ],
            "thread {tid}: {report}"
        );
        assert!(fns[6].contains("start_thread"), "{fns:?}");
        assert!(fns.last().unwrap().contains("clone"), "{fns:?}");
        let named = t.header.contains(&format!("[npt-worker-{}]", i + 1));
        assert_eq!(named, names, "thread name on {:?}", t.header);
    }
}

fn npstack(args: &[&str]) -> Run {
    run_tool("npstack", args)
}

#[test]
fn c_threads_live_on_gcore_and_on_kernel_core() {
    let spawn = Spawn::new(stacks_fixture());
    let p = spawn.start();
    let workers = worker_tids(&p);
    assert_eq!(workers.len(), 3);
    wait_in_read(p.pid(), &workers);

    let live = npstack(&[&p.pid_arg()]);
    assert_eq!(live.code(), 0, "{}", live.stderr);
    let text = live.text();
    assert!(text.starts_with(&format!("{}:\t", p.pid())), "{text}");
    check_fixture_report(&text, p.pid(), &workers, true);

    let dir = scratch();
    let g = gcore(p.pid(), dir.path());
    let gr = npstack(&[g.to_str().unwrap()]);
    assert_eq!(gr.code(), 0, "{}", gr.stderr);
    // gdb's core records no thread names: none are printed.
    check_fixture_report(&gr.text(), p.pid(), &workers, false);
    assert!(
        !gr.text().contains("killed by"),
        "gcore is no crash: {}",
        gr.text()
    );

    let mut kworkers = Vec::new();
    let mut kpid = 0;
    let (_kd, k) = kernel_core(&spawn, |kp| {
        kworkers = worker_tids(kp);
        kpid = kp.pid();
        wait_in_read(kp.pid(), &kworkers);
    });
    let kr = npstack(&[k.to_str().unwrap()]);
    assert_eq!(kr.code(), 0, "{}", kr.stderr);
    let text = kr.text();
    assert!(text.contains("killed by SIGABRT (signal 6)"), "{text}");
    check_fixture_report(&text, kpid, &kworkers, false);
}

#[test]
fn thread_selection_by_number_and_tid() {
    let p = Spawn::new(stacks_fixture()).start();
    let workers = worker_tids(&p);
    wait_in_read(p.pid(), &workers);
    let one = npstack(&[&format!("{}/1", p.pid())]);
    let threads = threads_of(&one.ok());
    assert_eq!(threads.len(), 1);
    assert!(
        threads[0]
            .header
            .contains(&format!("lwp# {} / thread# 1", p.pid()))
    );

    let by_tid = npstack(&[&format!("{}/{}", p.pid(), workers[1])]);
    let threads = threads_of(&by_tid.ok());
    assert_eq!(threads.len(), 1);
    assert!(threads[0].header.contains(&format!("lwp# {} ", workers[1])));

    let range = npstack(&[&format!("{}/2-3", p.pid())]);
    let threads = threads_of(&range.ok());
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert!(threads[0].header.contains("thread# 2") && threads[1].header.contains("thread# 3"));
}

#[test]
fn group_prints_identical_stacks_once() {
    let p = Spawn::new(stacks_fixture()).env("NPT_THREADS", "5").start();
    let workers = worker_tids(&p);
    wait_in_read(p.pid(), &workers);
    let r = npstack(&["--group", &p.pid_arg()]);
    let threads = threads_of(&r.ok());
    assert_eq!(
        threads.len(),
        2,
        "main and one group of workers: {threads:#?}"
    );
    let group = threads
        .iter()
        .find(|t| t.header.contains("5 threads"))
        .expect("a group of five");
    let mut workers = workers;
    workers.sort_unstable();
    assert_eq!(
        expand(&group_runs(&group.header)),
        workers,
        "{}",
        group.header
    );
}

/// The thread ids of a `--group` header, as its runs: `lwp# 4153-4156,
/// 4160` is (4153, 4156) and (4160, 4160).
fn group_runs(header: &str) -> Vec<(i32, i32)> {
    let list = header
        .split("lwp# ")
        .nth(1)
        .and_then(|rest| rest.split("  ").next())
        .and_then(|rest| rest.split(" [").next())
        .unwrap_or_else(|| panic!("no thread ids in {header}"));
    list.split(", ")
        .map(|item| {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let tid = |t: &str| t.parse().unwrap_or_else(|_| panic!("{item} in {header}"));
            (tid(a), tid(b))
        })
        .collect()
}

fn expand(runs: &[(i32, i32)]) -> Vec<i32> {
    runs.iter().flat_map(|&(a, b)| a..=b).collect()
}

#[test]
fn json_has_the_documented_shape() {
    let p = Spawn::new(stacks_fixture()).env("NPT_THREADS", "1").start();
    let workers = worker_tids(&p);
    wait_in_read(p.pid(), &workers);
    let r = npstack(&["--json", "-v", &p.pid_arg()]);
    let doc: serde_json::Value = serde_json::from_str(&r.ok()).expect("JSON");
    assert_eq!(doc["pid"], p.pid());
    assert_eq!(doc["source"], "live");
    let threads = doc["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    let w = threads.iter().find(|t| t["tid"] == workers[0]).unwrap();
    assert_eq!(w["name"], "npt-worker-1");
    assert_eq!(w["thread"], 2);
    let frames = w["frames"].as_array().unwrap();
    let leaf = frames
        .iter()
        .find(|f| f["symbol"] == "npt_leaf")
        .expect("npt_leaf");
    assert_eq!(leaf["kind"], "native");
    assert!(
        leaf["module"].as_str().unwrap().ends_with("stacks-o2"),
        "{leaf}"
    );
    assert!(leaf["pc"].as_str().unwrap().starts_with("0x"));
    assert!(leaf["offset"].as_str().unwrap().starts_with("0x"));
    // -v: the line of the call to read() in stacks.c.
    assert!(
        leaf["file"].as_str().unwrap().ends_with("stacks.c"),
        "{leaf}"
    );
    let src = std::fs::read_to_string(workspace().join("tests/fixtures/stacks.c")).unwrap();
    let line = leaf["line"].as_u64().expect("a line") as usize;
    assert!(
        src.lines().nth(line - 1).unwrap().contains("read("),
        "line {line}"
    );
}

#[test]
fn cpp_names_are_demangled() {
    let p = Spawn::new(fixture_variant("stacks_cpp", "o2", &["-O2"])).start();
    // Give the main thread time to block in read.
    wait_in_read(p.pid(), &[]);
    let r = npstack(&[&p.pid_arg()]);
    let text = r.ok();
    assert!(
        text.contains("npt::inner::Holder<int>::wait_for<char>(int, char)"),
        "{text}"
    );
    assert!(
        text.contains("(anonymous namespace)::start_waiting()"),
        "{text}"
    );
    assert!(!text.contains(" _ZN"), "mangled names left: {text}");
}

fn node_script(name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    (dir, path)
}

#[test]
fn node_server_main_thread_and_roles() {
    let server = workspace().join("demo/server.js");
    let p = Spawn::new(node()).arg(&server).start();
    // Let the event loop settle into epoll.
    std::thread::sleep(Duration::from_millis(300));
    for args in [vec![p.pid_arg()], vec!["--snapshot".into(), p.pid_arg()]] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = npstack(&args);
        assert_eq!(r.code(), 0, "{}", r.stderr);
        let text = r.text();
        let threads = threads_of(&text);
        let main = find_thread(&threads, p.pid());
        assert!(main.header.contains("main (event loop)"), "{}", main.header);
        let fns: Vec<&str> = main.frames.iter().map(|f| function(f)).collect();
        let pos = |name: &str| {
            fns.iter()
                .position(|f| f.contains(name))
                .unwrap_or_else(|| panic!("{name} not on the main thread: {fns:?}"))
        };
        assert!(fns[0].contains("epoll"), "{fns:?}");
        assert!(pos("uv__io_poll") < pos("uv_run"));
        assert!(pos("uv_run") < pos("node::Start("));
        assert!(fns.last().unwrap().contains("_start"), "{fns:?}");
        let roles = |role: &str| threads.iter().filter(|t| t.header.contains(role)).count();
        assert!(roles("V8 platform worker") >= 1, "{text}");
        assert_eq!(roles("V8 delayed-task scheduler"), 1, "{text}");
    }
}

#[test]
fn node_perf_basic_prof_names_the_js_function() {
    let (d, script) = node_script(
        "busy.js",
        "function nptBusyLoop(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }\n\
         console.log('ready');\n\
         for (;;) nptBusyLoop(1e6);\n",
    );
    let p = Spawn::new(node())
        .cwd(d.path())
        .arg("--perf-basic-prof")
        .arg(&script)
        .start();
    // The perf map alone (the V8 heap would name it too).
    let target = format!("{}/1", p.pid());
    eventually(20, "nptBusyLoop never named", || {
        let text = npstack(&["--no-heap-names", &target]).ok();
        let line = text
            .lines()
            .find(|l| l.contains(" nptBusyLoop ("))
            .ok_or(text.clone())?;
        assert!(line.contains("busy.js:1"), "{line}");
        assert!(line.contains("[js, "), "{line}");
        Ok(())
    });
    // A map another user could have written is not trusted (as perf does).
    let map = format!("/tmp/perf-{}.map", p.pid());
    std::os::unix::fs::chown(&map, Some(65534), None).unwrap();
    let r = npstack(&["--no-heap-names", &target]);
    assert!(
        !r.ok().contains(" nptBusyLoop ("),
        "names from a foreign map"
    );
    assert!(r.stderr.contains("belongs to uid 65534"), "{}", r.stderr);
    let _ = std::fs::remove_file(map);
}

fn assert_running(p: &mut Proc) {
    assert!(p.child.try_wait().unwrap().is_none(), "the target died");
    // A thread caught between our detach and the scheduler can show `t`
    // for an instant; a thread left stopped stays so.
    eventually(2, "threads left stopped", || {
        // In ptrace-stop (`t`) or stopped (`T`).
        let stopped: Vec<(i32, char)> = task_states(p.pid())
            .into_iter()
            .filter(|&(_, s)| s == 't' || s == 'T')
            .collect();
        if stopped.is_empty() {
            Ok(())
        } else {
            Err(format!("{stopped:?}"))
        }
    });
}

#[test]
fn stress_against_thread_churn_leaves_nothing_stopped() {
    let mut p = Spawn::new(stacks_fixture()).env("NPT_CHURN", "1").start();
    for i in 0..200 {
        let args = if i % 4 == 3 {
            vec!["--snapshot".to_owned(), p.pid_arg()]
        } else {
            vec![p.pid_arg()]
        };
        let r = run_tool("npstack", &args);
        r.no_crash();
        assert_eq!(r.code(), 0, "run {i}: {}", r.stderr);
        assert!(
            r.text().contains("npt_thread_main"),
            "run {i}: {}",
            r.text()
        );
    }
    assert_running(&mut p);
}

#[test]
fn killing_npstack_mid_run_leaves_the_target_running() {
    let mut p = Spawn::new(stacks_fixture())
        .env("NPT_THREADS", "300")
        .env("NPT_CHURN", "1")
        .start();
    let bin = tool("npstack");
    use nix::sys::signal::Signal;
    for (i, sig) in [Signal::SIGINT, Signal::SIGKILL, Signal::SIGTERM]
        .iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        let mut child = std::process::Command::new(&bin)
            .args(if i % 2 == 0 {
                vec!["--snapshot"]
            } else {
                vec![]
            })
            .arg(p.pid_arg())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(500 + 700 * i as u64));
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), *sig);
        let _ = child.wait();
        assert_running(&mut p);
    }
}

#[test]
fn a_thousand_threads() {
    let p = Spawn::new(stacks_fixture())
        .env("NPT_THREADS", "1000")
        .start();
    let workers = worker_tids(&p);
    wait_in_read(p.pid(), &workers);
    let r = npstack(&["--group", &p.pid_arg()]);
    let text = r.ok();
    let header = text
        .lines()
        .find(|l| l.contains("1000 threads: lwp# "))
        .unwrap_or_else(|| panic!("{}", &text[..text.len().min(2000)]));
    // The ids are written as runs (`4153-4156, 4160`): expanded, they are
    // the workers, in order, and no two items could have been one run.
    let runs = group_runs(header);
    let mut workers = workers;
    workers.sort_unstable();
    assert_eq!(expand(&runs), workers, "{header}");
    assert!(
        runs.windows(2).all(|w| w[0].1 + 1 != w[1].0),
        "runs not joined: {header}"
    );
    // Threads started one after another get consecutive ids, but other
    // processes starting threads meanwhile break the runs: a few hundred
    // bytes, where the full list was 6 KB.
    let full: usize = workers.iter().map(|t| t.to_string().len() + 2).sum();
    assert!(header.len() < full / 2, "{} bytes: {header}", header.len());
    // --json keeps every id.
    let json: serde_json::Value =
        serde_json::from_slice(&npstack(&["--group", "--json", &p.pid_arg()]).stdout)
            .expect("JSON");
    let group = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["count"] == 1000)
        .expect("the group of 1000");
    let tids: Vec<i32> = group["tids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap() as i32)
        .collect();
    assert_eq!(tids, workers);
    let plain = npstack(&[&p.pid_arg()]);
    assert_eq!(threads_of(&plain.ok()).len(), 1001);
}

#[test]
fn truncated_kernel_core_shows_what_is_there() {
    let spawn = Spawn::new(stacks_fixture());
    let (_kd, k) = kernel_core(&spawn, |kp| wait_in_read(kp.pid(), &worker_tids(kp)));
    let len = std::fs::metadata(&k).unwrap().len();
    let cut = k.with_extension("cut");
    std::fs::copy(&k, &cut).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&cut).unwrap();
    // Keep the notes and the first segments; lose the rest.
    f.set_len(len / 3).unwrap();
    let r = npstack(&[cut.to_str().unwrap()]);
    r.no_crash();
    assert_eq!(r.code(), 1, "a truncated core is a failure: {}", r.text());
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    assert!(
        r.text().contains("-----------------  lwp# "),
        "{}",
        r.text()
    );
}

#[test]
fn bad_operands() {
    let r = npstack(&["999999999"]);
    assert_eq!(r.code(), 1);
    assert!(r.stderr.starts_with("npstack: 999999999: "), "{}", r.stderr);
    let r = npstack(&["2"]);
    assert_eq!(r.code(), 1);
    assert!(r.stderr.contains("kernel thread"), "{}", r.stderr);
    let not_core = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let r = npstack(&[not_core.to_str().unwrap()]);
    assert_eq!(r.code(), 1);
    assert!(r.stderr.contains("not a core file"), "{}", r.stderr);
    let r = npstack(&["1/x-y"]);
    r.no_crash();
    assert_eq!(r.code(), 1, "{}", r.stderr);
}

#[test]
fn frames_under_a_signal_handler() {
    let p = Spawn::new(stacks_fixture()).env("NPT_HANDLER", "1").start();
    let workers = worker_tids(&p);
    wait_in_read(p.pid(), &workers);
    p.signal(nix::libc::SIGUSR2);
    // Wait for pause(2) (syscall 34) in the handler.
    wait_in_syscall(p.pid(), p.pid(), 34);
    let check = |text: &str| {
        let threads = threads_of(text);
        let main = find_thread(&threads, p.pid());
        let fns: Vec<&str> = main.frames.iter().map(|f| function(f)).collect();
        let at = |name: &str| {
            fns.iter()
                .position(|f| *f == name)
                .unwrap_or_else(|| panic!("{name} missing: {fns:?}"))
        };
        let line = main
            .frames
            .iter()
            .position(|f| f.contains("--- called from signal handler ---"))
            .expect("the signal line");
        assert!(at("npt_in_handler") < line, "{fns:?}");
        assert!(
            fns[at("npt_in_handler") + 1].contains("restore_rt"),
            "{fns:?}"
        );
        // Below the line: the interrupted read, then the code that called it.
        assert!(fns[line + 1].contains("read"), "{fns:?}");
        assert!(
            at("npt_main_wait") > line && at("main") > at("npt_main_wait"),
            "{fns:?}"
        );
    };
    check(&npstack(&[&p.pid_arg()]).ok());
    let dir = scratch();
    check(&npstack(&[gcore(p.pid(), dir.path()).to_str().unwrap()]).ok());
}

#[test]
fn a_process_someone_else_traces_is_refused_with_the_tracer_named() {
    let p = Spawn::new(stacks_fixture()).env("NPT_THREADS", "1").start();
    let mut tracer = std::process::Command::new("gdb")
        .args(["-nx", "-q", "-batch", "-ex", "shell sleep 30", "-p"])
        .arg(p.pid_arg())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run gdb");
    let status = format!("/proc/{}/status", p.pid());
    eventually(30, "gdb never attached", || {
        let s = std::fs::read_to_string(&status).unwrap_or_default();
        if s.contains("TracerPid:\t0") {
            Err(s)
        } else {
            Ok(())
        }
    });
    let r = npstack(&[&p.pid_arg()]);
    let _ = tracer.kill();
    let _ = tracer.wait();
    assert_eq!(r.code(), 1, "{}", r.text());
    assert!(
        r.stderr.contains("already being traced by process"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(gdb)"), "{}", r.stderr);
}

#[test]
fn sysroot_finds_moved_binaries_and_a_rebuilt_binary_is_named() {
    // A private copy of the fixture, so that it can be moved and rebuilt.
    let dir = scratch();
    let bin = dir.path().join("stacks-private");
    std::fs::copy(stacks_fixture(), &bin).unwrap();
    let spawn = Spawn::new(&bin).env("NPT_THREADS", "1");
    let (_kd, core) = kernel_core(&spawn, |kp| wait_in_read(kp.pid(), &worker_tids(kp)));
    let core = core.to_str().unwrap().to_owned();

    // Moved away: frames of the executable have no names, until --sysroot.
    let sysroot = dir.path().join("sysroot");
    let moved = sysroot.join(bin.strip_prefix("/").unwrap());
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&bin, &moved).unwrap();
    let without = npstack(&[&core]);
    assert!(!without.text().contains("npt_leaf"), "{}", without.text());
    let with = npstack(&["--sysroot", sysroot.to_str().unwrap(), &core]);
    assert_eq!(with.code(), 0, "{}", with.stderr);
    assert!(with.text().contains("npt_leaf () + "), "{}", with.text());

    // A different build at the path: not used, and named on stderr.
    let other = fixture_variant("stacks", "o1", &["-O1", "-DNPT_OTHER_BUILD=1"]);
    std::fs::copy(other, &bin).unwrap();
    let r = npstack(&[&core]);
    assert!(!r.text().contains("npt_leaf"), "{}", r.text());
    assert!(
        r.stderr.contains("stacks-private") && r.stderr.contains("build-id"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.matches("build-id").count(),
        1,
        "said once: {}",
        r.stderr
    );
}

#[test]
fn perf_map_is_found_under_the_pid_of_the_targets_namespace() {
    let (d, script) = node_script(
        "nsbusy.js",
        "function nptInNamespace(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 3; return s; }\n\
         console.log('ready ' + process.pid);\n\
         for (;;) nptInNamespace(1e6);\n",
    );
    let p = Spawn::new("unshare")
        .cwd(d.path())
        .arg("--pid")
        .arg("--fork")
        .arg("--kill-child")
        .arg(node())
        .arg("--perf-basic-prof")
        .arg(&script)
        .start();
    // node is PID 1 in its namespace, so it writes /tmp/perf-1.map.
    assert_eq!(p.ready_line, "ready 1", "node should be PID 1 inside");
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid())).unwrap();
    let node_pid: i32 = children
        .split_whitespace()
        .next()
        .expect("node")
        .parse()
        .unwrap();
    eventually(20, "not named from perf-1.map", || {
        let text = npstack(&["--no-heap-names", &format!("{node_pid}/1")]).ok();
        if text.contains(" nptInNamespace (") {
            Ok(())
        } else {
            Err(text)
        }
    });
    drop(p);
    let _ = std::fs::remove_file("/tmp/perf-1.map");
}

#[test]
fn signals_that_arrive_while_a_thread_is_held_are_not_lost() {
    let dir = scratch();
    let out = dir.path().join("rt");
    let p = Spawn::new(stacks_fixture())
        .env("NPT_THREADS", "4")
        .env("NPT_RT", "200000")
        .env("NPT_RT_OUT", &out)
        .start();
    let mut runs = 0;
    while !out.exists() {
        let args = if runs % 2 == 0 {
            vec![p.pid_arg()]
        } else {
            vec!["--snapshot".to_owned(), p.pid_arg()]
        };
        run_tool("npstack", &args).no_crash();
        runs += 1;
        assert!(runs < 5000, "the fixture never finished sending");
    }
    eventually(10, "the result file", || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.ends_with('\n') {
            Ok(())
        } else {
            Err(text)
        }
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.trim(),
        "sent 200000 received 200000",
        "after {runs} npstack runs"
    );
    assert!(
        runs >= 3,
        "npstack ran only {runs} times while signals arrived"
    );
    let mut p = p;
    assert_running(&mut p);
}

#[test]
fn a_thread_that_cannot_stop_does_not_hang_npstack_or_hold_the_others() {
    let p = Spawn::new(stacks_fixture())
        .env("NPT_THREADS", "2")
        .env("NPT_VFORK", "1")
        .start();
    let workers = worker_tids(&p);
    wait_in_read(p.pid(), &workers);
    // The thread that called vfork() waits in state D for its child.
    let mut stuck = 0;
    eventually(10, "no thread in state D", || {
        let (tid, _) = task_states(p.pid())
            .into_iter()
            .find(|&(_, s)| s == 'D')
            .ok_or("none yet")?;
        stuck = tid;
        Ok(())
    });
    let child: i32 = std::fs::read_to_string(format!("/proc/{}/task/{stuck}/children", p.pid()))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("the vfork child")
        .parse()
        .unwrap();
    for args in [
        vec![p.pid_arg()],
        vec!["--snapshot".to_owned(), p.pid_arg()],
    ] {
        let r = run_tool("npstack", &args);
        assert_eq!(r.code(), 0, "{args:?}: {}", r.stderr);
        let text = r.text();
        let threads = threads_of(&text);
        let t = find_thread(&threads, stuck);
        assert!(
            t.frames[0].contains("uninterruptible sleep (state D)"),
            "{text}"
        );
        // The other threads are shown in full.
        check_frame_shape(find_thread(&threads, workers[0]));
        assert!(text.contains("npt_leaf () + "), "{text}");
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child),
        nix::sys::signal::Signal::SIGKILL,
    );
}
