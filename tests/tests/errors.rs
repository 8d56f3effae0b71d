//! Bad operands get one clear line on stderr naming the operand and the
//! cause, a nonzero exit, and never a panic; the next operand still runs.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nptools_tests::*;

const TOOLS: [&str; 3] = ["npargs", "npenv", "npmap"];

/// Run every tool on one operand and check the one-line error.
fn expect_error(operand: &str, cause: &str) {
    for t in TOOLS {
        let r = run_tool(t, [operand]);
        assert_eq!(r.code(), 1, "{t} {operand}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{t} {operand} printed {:?}", r.text());
        let want = format!("{t}: {operand}: {cause}");
        assert!(
            r.stderr.starts_with(&want),
            "{t} {operand}: expected {want:?}, got {:?}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "one line: {:?}", r.stderr);
    }
}

fn unused_pid() -> i32 {
    let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .map(|s| s.trim().parse().unwrap_or(32768))
        .unwrap_or(32768);
    (1..max)
        .rev()
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid")
}

#[test]
fn no_such_process() {
    expect_error(&unused_pid().to_string(), "no such process");
    expect_error("99999999999", "no such process");
}

#[test]
fn zombie() {
    // The fixture forks a child that exits at once and never reaps it.
    let parent = Spawn::new(fixture("argsenv"))
        .env("NPT_ZOMBIE", "1")
        .start();
    let zpid: i32 = parent
        .ready_field("zombie")
        .and_then(|s| s.parse().ok())
        .expect("fixture reports its zombie");
    let stat = format!("/proc/{zpid}/stat");
    eventually(10, "child never became a zombie", || {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        if s.contains(") Z ") { Ok(()) } else { Err(s) }
    });
    expect_error(&zpid.to_string(), "process is a zombie");
}

#[test]
fn kernel_thread() {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let kthread = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let flags = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok());
            flags.is_some_and(|f| f & PF_KTHREAD != 0)
        })
        .expect(
            "no kernel thread is visible in this PID namespace: this test needs the host's /proc",
        );
    expect_error(&kthread.to_string(), "process is a kernel thread");
}

#[test]
fn other_users_process_names_the_cause() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs the tools as another user, so it must run as root (as make test does in CI)"
    );
    let p = Spawn::new(fixture("argsenv")).env("A", "1").start();
    for (t, args) in [
        ("npenv", vec![]),
        ("npargs", vec!["-e"]),
        ("npargs", vec!["-x"]),
        ("npmap", vec![]),
        ("npmap", vec!["-x"]),
    ] {
        let mut cmd = Command::new(tool(t));
        cmd.args(&args).arg(p.pid_arg()).uid(65534).gid(65534);
        let r = run_command(&mut cmd);
        assert_eq!(r.code(), 1, "{t} {args:?}: {}", r.stderr);
        let want = format!(
            "{t}: {}: permission denied: the process belongs to user root (uid 0) and we run as uid 65534",
            p.pid()
        );
        assert!(r.stderr.starts_with(&want), "{t}: {:?}", r.stderr);
        assert!(r.stderr.contains("CAP_SYS_PTRACE"), "names the fix");
        assert_eq!(
            r.stderr.matches("permission denied").count(),
            1,
            "says it once: {:?}",
            r.stderr
        );
    }
    // argv is public (like ps), so plain npargs works for anyone.
    let mut cmd = Command::new(tool("npargs"));
    cmd.arg(p.pid_arg()).uid(65534).gid(65534);
    let r = run_command(&mut cmd);
    assert_eq!(r.code(), 0, "{}", r.stderr);
}

#[test]
fn paths_that_are_not_cores() {
    let dir = scratch();
    let d = dir.path();
    let text = d.join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let empty = d.join("empty");
    std::fs::write(&empty, "").unwrap();
    let tiny = d.join("tiny");
    std::fs::write(&tiny, b"\x7fELF\x02\x01").unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();

    expect_error(&s(&d.join("missing")), "no such file or directory");
    expect_error(&s(d), "is a directory, not a core file");
    expect_error(&s(&text), "not a core file: not an ELF file");
    expect_error(&s(&empty), "not a core file: the file is empty");
    expect_error(&s(&tiny), "corrupt core: ELF header cut short");
    expect_error(
        &s(&fixture("argsenv")),
        "not a core file: an ELF shared object or PIE executable",
    );
    expect_error(
        &s(&fixture_variant("argsenv", "nopie", &["-no-pie"])),
        "not a core file: an ELF executable",
    );
    expect_error("/dev/null", "not a core file: not a regular file");

    // A core of another architecture: the class byte says 32-bit.
    let p = Spawn::new(fixture("argsenv")).start();
    let core = gcore(p.pid(), d);
    let mut bytes = std::fs::read(&core).unwrap();
    bytes[4] = 1;
    let elf32 = d.join("elf32.core");
    std::fs::write(&elf32, &bytes).unwrap();
    expect_error(&s(&elf32), "unsupported core: a 32-bit ELF file");
    bytes[4] = 2;
    bytes[18] = 183; // EM_AARCH64
    let arm = d.join("arm.core");
    std::fs::write(&arm, &bytes).unwrap();
    expect_error(&s(&arm), "unsupported core: a core for machine type 183");
}

#[test]
fn later_operands_still_run_and_exit_is_one() {
    let p = Spawn::new(fixture("argsenv")).env("A", "1").start();
    let bad = unused_pid().to_string();
    let r = run_tool("npenv", [bad.as_str(), &p.pid_arg()]);
    assert_eq!(r.code(), 1);
    assert!(r.text().contains("envp[0]: A=1"), "{}", r.text());
    assert_eq!(r.stderr, format!("npenv: {bad}: no such process\n"));
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        vec![],
        vec!["--bogus", "1"],
        vec!["-l", "-e", "1"],
        vec!["-l", "-x", "1"],
    ] {
        let r = run_tool("npargs", &args);
        assert_eq!(r.code(), 2, "npargs {args:?}: {}", r.stderr);
    }
    for args in [vec![], vec!["-x", "1"]] {
        let r = run_tool("npenv", &args);
        assert_eq!(r.code(), 2, "npenv {args:?}: {}", r.stderr);
    }
    assert_eq!(run_tool("npenv", ["--help"]).code(), 0);
}

#[test]
fn closed_stdout_ends_quietly() {
    let p = Spawn::new(fixture("argsenv")).env("A", "1").start();
    let pids = vec![p.pid_arg(); 2000].join(" ");
    for t in TOOLS {
        let script = format!(
            "{} {pids} | head -n 1; echo \"status=${{PIPESTATUS[0]}}\"",
            tool(t).display()
        );
        let r = run_command(Command::new("bash").arg("-c").arg(&script));
        let text = r.text();
        assert!(text.ends_with("status=0\n"), "{t}: {text}");
        assert!(r.stderr.is_empty(), "{t} complained: {}", r.stderr);
    }
}

#[test]
fn truncated_core_prints_what_is_there_and_exits_one() {
    let dir = scratch();
    let spawn = Spawn::new(fixture("argsenv")).arg("keep me").env("A", "1");
    let (_kd, core) = kernel_core(&spawn, |_| {});
    let bytes = std::fs::read(&core).unwrap();
    // Cut off the last quarter: the stack, mapped last but one, goes
    // with it only if it lies there; the notes and headers stay.
    let cut = dir.path().join("cut.core");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let r = run_tool("npargs", [&cut]);
    assert_eq!(r.code(), 1, "{}", r.stderr);
    let text = r.text();
    assert!(
        text.starts_with(&format!("core '{}' of ", cut.display())),
        "{text}"
    );
    assert!(text.contains("argv[0]: "), "{text}");
    assert!(
        r.stderr.contains("the core is truncated"),
        "warns about what is missing: {}",
        r.stderr
    );
}
