//! npgcore: cores of real processes, read back by gdb, eu-stack and the
//! nptools tools; what is dumped (sparse, no bigger than the kernel's);
//! the target left as it was; and every fault the issue lists.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nptools_tests::*;

fn gcore_fixture() -> PathBuf {
    fixture("gcore")
}

/// The fixture, parked: every thread in read(2).
fn parked(touch_mb: u32) -> Proc {
    let p = Spawn::new(gcore_fixture())
        .env("GC_TOUCH_MB", touch_mb.to_string())
        .start();
    wait_parked(&p);
    p
}

fn wait_parked(p: &Proc) {
    let workers = p.ready_field("workers").expect("workers on the ready line");
    for tid in workers.split(',').map(|t| t.parse::<i32>().expect("tid")) {
        wait_in_syscall(p.pid(), tid, 0);
    }
    wait_in_syscall(p.pid(), p.pid(), 0);
}

fn hex_field(p: &Proc, key: &str) -> u64 {
    let v = p.ready_field(key).expect("field on the ready line");
    u64::from_str_radix(v.trim_start_matches("0x"), 16).expect("hex address")
}

/// Run npgcore with `args`, in `dir`.
fn npgcore_in(dir: &Path, args: &[&str]) -> Run {
    run_command(Command::new(tool("npgcore")).args(args).current_dir(dir))
}

/// Write a core of `pid` into `dir`; its path.
fn npgcore(pid: i32, dir: &Path) -> PathBuf {
    let out = npgcore_in(dir, &[&pid.to_string()]).ok();
    assert_eq!(out.trim(), format!("core.{pid}"), "npgcore prints the path");
    dir.join(format!("core.{pid}"))
}

/// No thread of `pid` is held by a tracer (the dump let everything go).
fn assert_running(pid: i32) {
    eventually(5, "the target runs on after npgcore", || {
        let states = task_states(pid);
        if !states.is_empty() && states.iter().all(|(_, s)| *s == 'S' || *s == 'R') {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    });
}

/// The function names of each thread of an npstack text report.
fn npstack_functions(report: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for line in report.lines() {
        if line.starts_with("-----------------") {
            out.push(Vec::new());
        } else if let Some(t) = out.last_mut()
            && line.starts_with(' ')
        {
            let rest = line.trim_start().split_once(' ').map_or("", |(_, r)| r);
            t.push(rest.split(" (").next().unwrap_or(rest).to_owned());
        }
    }
    out
}

fn gdb(args: &[&str]) -> String {
    let out = Command::new("gdb")
        .arg("-batch")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gdb: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn gdb_eu_stack_and_npstack_read_the_core_as_they_read_the_process() {
    let dir = scratch();
    let p = parked(1);
    let bin = gcore_fixture();
    let bin = bin.to_str().unwrap();
    let live = run_tool_on("npstack", &[], p.pid_arg()).ok();
    let core = npgcore(p.pid(), dir.path());
    assert_running(p.pid());
    let core_s = core.to_str().unwrap();

    let from_core = run_tool_on("npstack", &[], core_s).ok();
    let (live_f, core_f) = (npstack_functions(&live), npstack_functions(&from_core));
    assert_eq!(live_f.len(), 3, "three threads live:\n{live}");
    assert_eq!(live_f, core_f, "live:\n{live}\ncore:\n{from_core}");
    assert!(core_f[0].iter().any(|f| f == "gc_main_wait"), "{from_core}");
    for t in &core_f[1..] {
        assert!(
            t.iter().any(|f| f == "gc_leaf") && t.iter().any(|f| f == "gc_worker"),
            "{from_core}"
        );
    }

    let bt = gdb(&["-ex", "thread apply all bt", bin, core_s]);
    assert_eq!(
        bt.matches("\nThread ").count(),
        3,
        "gdb sees three threads:\n{bt}"
    );
    assert!(
        bt.contains("gc_main_wait") && bt.matches("gc_leaf").count() == 2,
        "{bt}"
    );
    assert!(!bt.contains("Cannot access memory"), "{bt}");

    let eu = Command::new("eu-stack")
        .args(["--core", core_s, "-e", bin])
        .output()
        .expect("run eu-stack");
    let eu = String::from_utf8_lossy(&eu.stdout);
    assert_eq!(eu.matches("TID ").count(), 3, "{eu}");
    assert!(
        eu.contains("gc_main_wait") && eu.matches("gc_worker").count() == 2,
        "{eu}"
    );

    // The same frames as the kernel's core of the same process.
    let kernel = kernel_core_of(p);
    let from_kernel = run_tool_on("npstack", &[], &kernel.1).ok();
    assert_eq!(npstack_functions(&from_kernel), core_f, "{from_kernel}");
}

/// The kernel's core of a running fixture `p` (SIGABRT; RLIMIT_CORE raised
/// with prlimit), in a directory of its own.
fn kernel_core_of(mut p: Proc) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", p.pid())).expect("cwd");
    let st = Command::new("prlimit")
        .args([format!("--pid={}", p.pid()), "--core=unlimited".into()])
        .status()
        .expect("run prlimit");
    assert!(st.success());
    p.signal(nix::libc::SIGABRT);
    let status = p.wait();
    use std::os::unix::process::ExitStatusExt;
    assert!(status.core_dumped(), "no kernel core: {status:?}");
    let core = cwd.join("core");
    let moved = dir.path().join("core");
    std::fs::rename(&core, &moved).expect("move the kernel's core");
    (dir, moved)
}

#[test]
fn the_core_is_private_sparse_no_bigger_than_the_kernels_and_holds_the_memory() {
    let dir = scratch();
    let p = parked(2);
    let touch = hex_field(&p, "touch");
    let reserve = hex_field(&p, "reserve");
    let core = npgcore(p.pid(), dir.path());
    let meta = std::fs::metadata(&core).expect("core");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let allocated = meta.blocks() * 512;
    assert!(
        meta.len() > 1 << 30,
        "the 1 GiB reservation is in the core's address range: {}",
        meta.len()
    );
    assert!(
        allocated < 64 << 20,
        "untouched pages are holes: {allocated} bytes allocated of {}",
        meta.len()
    );

    let bin = gcore_fixture();
    let core_s = core.to_str().unwrap();
    let word = |addr: u64| {
        let out = gdb(&[
            "-ex",
            &format!("x/1gx {addr:#x}"),
            bin.to_str().unwrap(),
            core_s,
        ]);
        out.lines()
            .rev()
            .find(|l| l.starts_with("0x"))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_owned)
            .unwrap_or(out)
    };
    assert_eq!(word(touch + 0x1000), "0x6763000000001000");
    assert_eq!(
        word(touch + (2 << 20) - 8),
        format!("{:#x}", 0x6763000000000000u64 | ((2 << 20) - 8))
    );
    assert_eq!(word(reserve + (64 << 20)), "0x0000000000000072");
    assert_eq!(
        word(reserve + 4096),
        "0x0000000000000000",
        "a hole reads as the zeros it was"
    );

    // npmap lists the same mappings from the core as from the process.
    let live = run_tool_on("npmap", &[], p.pid_arg()).ok();
    let from_core = run_tool_on("npmap", &[], core_s).ok();
    let columns = |r: &str| -> Vec<String> {
        r.lines()
            .skip(1)
            .filter(|l| l.starts_with(|c: char| c.is_ascii_hexdigit()))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {}", f[0], f.last().unwrap_or(&""))
            })
            .collect()
    };
    assert_eq!(
        columns(&live),
        columns(&from_core),
        "live:\n{live}\ncore:\n{from_core}"
    );

    let (_kdir, kernel) = kernel_core_of(p);
    let kmeta = std::fs::metadata(&kernel).expect("kernel core");
    assert!(
        meta.len() <= kmeta.len(),
        "npgcore's core ({}) is no bigger than the kernel's ({})",
        meta.len(),
        kmeta.len()
    );
    assert!(allocated <= kmeta.blocks() * 512 + (1 << 20));
}

#[test]
fn a_stopped_process_stays_stopped_and_others_run_on() {
    let dir = scratch();
    let p = parked(1);
    p.signal(nix::libc::SIGSTOP);
    eventually(5, "the fixture stops", || {
        let s = task_states(p.pid());
        if s.iter().all(|(_, st)| *st == 'T') {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    });
    npgcore(p.pid(), dir.path());
    std::thread::sleep(Duration::from_millis(50));
    let s = task_states(p.pid());
    assert!(s.iter().all(|(_, st)| *st == 'T'), "still stopped: {s:?}");
    p.signal(nix::libc::SIGCONT);
    assert_running(p.pid());
}

#[test]
fn faults_are_one_line_errors_and_leave_the_target_running() {
    let dir = scratch();
    let d = dir.path();
    let one_line = |r: &Run, pid: &str, what: &str| {
        assert_eq!(r.code(), 1, "{what}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{what}: {}", r.stderr);
        assert!(
            r.stderr.starts_with(&format!("npgcore: {pid}: ")),
            "{what}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{what}");
    };
    let r = npgcore_in(d, &["999999999"]);
    one_line(&r, "999999999", "no such pid");
    let r = npgcore_in(d, &["2"]);
    one_line(&r, "2", "kernel thread");
    assert!(r.stderr.contains("kernel thread"));

    let mut zombie = Command::new("sh")
        .args(["-c", "sleep 0.1 & exec sleep 30"])
        .spawn()
        .expect("sh");
    let zpid = eventually_child(zombie.id() as i32);
    eventually(5, "the child becomes a zombie", || {
        match task_states(zpid).first() {
            Some((_, 'Z')) => Ok(()),
            s => Err(format!("{s:?}")),
        }
    });
    let r = npgcore_in(d, &[&zpid.to_string()]);
    one_line(&r, &zpid.to_string(), "zombie");
    assert!(r.stderr.contains("zombie"));
    let _ = zombie.kill();
    let _ = zombie.wait();

    let p = parked(1);
    let pid = p.pid_arg();

    // Another user's process.
    let r = run_command(
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(tool("npgcore"))
            .args(["-o", "/tmp/npgcore-nobody", &pid]),
    );
    one_line(&r, &pid, "another user's process");
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);

    // Already traced.
    let mut strace = Command::new("strace")
        .args(["-p", &pid, "-o", "/dev/null"])
        .stderr(Stdio::null())
        .spawn()
        .expect("strace");
    eventually(5, "strace attaches", || {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if s.lines()
            .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
        {
            Ok(())
        } else {
            Err(s)
        }
    });
    let r = npgcore_in(d, &[&pid]);
    one_line(&r, &pid, "already traced");
    assert!(r.stderr.contains("already being traced by process") && r.stderr.contains("strace"));
    let _ = strace.kill();
    let _ = strace.wait();

    // Unwritable directory: a read-only bind mount, in a mount namespace
    // of its own.
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let r = run_command(
        Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind {0} {0} && mount -o remount,bind,ro {0} && exec {1} -o {0}/core {2}",
                ro.display(),
                tool("npgcore").display(),
                pid
            )),
    );
    one_line(&r, &pid, "unwritable directory");
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);

    // A name that is taken, even by a symlink, is never replaced.
    let target = d.join("precious");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, d.join(format!("core.{pid}"))).unwrap();
    let r = npgcore_in(d, &[&pid]);
    one_line(&r, &pid, "existing name");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    std::fs::remove_file(d.join(format!("core.{pid}"))).unwrap();

    // A full disk: a 1 MiB tmpfs for a core of several MiB.
    let small = d.join("small");
    std::fs::create_dir(&small).unwrap();
    let r = run_command(Command::new("unshare").args(["-m", "sh", "-c"]).arg(format!(
        "mount -t tmpfs -o size=1m none {0} && {1} -o {0}/core {2}; rc=$?; ls -A {0} >&2; exit $rc",
        small.display(),
        tool("npgcore").display(),
        pid
    )));
    one_line(&r, &pid, "full disk");
    assert!(
        r.stderr.contains("no room in") && r.stderr.contains("it needs "),
        "{}",
        r.stderr
    );
    assert_running(p.pid());
    assert!(std::fs::read_dir(d).unwrap().all(|e| {
        let n = e.unwrap().file_name();
        !n.to_string_lossy().contains("core")
    }));
}

/// The child of `parent` (sh's background sleep).
fn eventually_child(parent: i32) -> i32 {
    let mut child = 0;
    eventually(5, "sh starts its child", || {
        let kids = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        match kids.split_whitespace().next() {
            Some(k) => {
                child = k.parse().unwrap();
                Ok(())
            }
            None => Err(kids),
        }
    });
    child
}

/// Start npgcore on a fixture with a large heap, and once it holds the
/// target (its threads are in a tracing stop), do `act` to npgcore or the
/// target; npgcore's result.
fn mid_dump(p: &Proc, dir: &Path, act: impl FnOnce(&std::process::Child)) -> Run {
    let child = Command::new(tool("npgcore"))
        .arg(p.pid_arg())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("npgcore");
    eventually(20, "npgcore stops the target", || {
        let s = task_states(p.pid());
        if s.iter().any(|(_, st)| *st == 't') {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    });
    act(&child);
    let out = child.wait_with_output().expect("wait npgcore");
    child_run(out)
}

fn child_run(out: std::process::Output) -> Run {
    Run {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn signals_and_the_target_exiting_mid_dump_leave_no_core() {
    let dir = scratch();
    let p = parked(768);
    use nix::sys::signal::{Signal, kill};
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let r = mid_dump(&p, dir.path(), |c| {
            kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).expect("signal npgcore");
        });
        assert_eq!(r.code(), 130, "{}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("interrupted by SIG"), "{}", r.stderr);
        assert_running(p.pid());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no core left"
        );
    }
    let r = mid_dump(&p, dir.path(), |_| p.signal(nix::libc::SIGKILL));
    assert_eq!(r.code(), 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("exited"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no core left"
    );
}

#[test]
fn node_core_reads_in_gdb_and_npstack() {
    let dir = scratch();
    let p = node_eval("").start();
    std::thread::sleep(Duration::from_millis(200));
    let r = npgcore_in(dir.path(), &["--json", &p.pid_arg()]);
    let doc: serde_json::Value = serde_json::from_str(r.ok().trim()).expect("one JSON document");
    assert_eq!(doc["pid"], p.pid());
    assert!(doc["threads"].as_u64().unwrap() >= 5, "{doc}");
    assert!(doc["held_ms"].as_f64().is_some() && doc["segments"].as_u64().unwrap() > 10);
    let core = dir.path().join(doc["path"].as_str().unwrap());
    assert_running(p.pid());
    let core_s = core.to_str().unwrap();
    let bt = gdb(&[
        "-ex",
        "thread apply all bt",
        node().to_str().unwrap(),
        core_s,
    ]);
    assert!(bt.contains("uv_run") && bt.contains("node::Start"), "{bt}");
    let live = run_tool_on("npstack", &[], format!("{}/1", p.pid())).ok();
    let from_core = run_tool_on("npstack", &[], core_s).ok();
    let (live_f, core_f) = (npstack_functions(&live), npstack_functions(&from_core));
    assert_eq!(live_f[0], core_f[0], "live:\n{live}\ncore:\n{from_core}");
    assert!(
        core_f[0].iter().any(|f| f.contains("uv_run")),
        "{from_core}"
    );
}

/// A process whose leader has exited while another thread runs on is
/// alive: its core holds that thread, and says the leader is not in it.
#[test]
fn a_zombie_leader_with_a_live_thread_is_dumped() {
    let dir = scratch();
    let p = Spawn::new(fixture("zombieleader")).start();
    eventually(5, "the leader to exit", || {
        match task_states(p.pid()).first() {
            Some((_, 'Z')) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let run = npgcore_in(dir.path(), &[&p.pid_arg()]);
    assert_eq!(run.ok().trim(), format!("core.{}", p.pid()));
    assert!(
        run.stderr
            .contains(&format!("thread {} is not in the core", p.pid())),
        "{}",
        run.stderr
    );
    let stacks = run_tool_on("npstack", &[], dir.path().join(format!("core.{}", p.pid()))).ok();
    assert!(stacks.contains("[survivor]"), "{stacks}");
    assert!(stacks.contains("survive_here"), "{stacks}");
}
