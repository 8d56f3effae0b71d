//! The core reader itself, on real kernel and gcore cores of a fixture whose
//! threads, memory and signal we know.

use std::collections::BTreeSet;
use std::fs;

use libproc_rs::corefile::CoreFile;
use libproc_rs::target::MapName;
use libproc_rs::{Error, Memory, MemoryExt, ProcessTarget};
use nptools_tests::*;

fn dontdump_addr(p: &Proc) -> u64 {
    let hex = p
        .ready_field("dontdump")
        .and_then(|v| v.strip_prefix("0x"))
        .expect("fixture reports its dontdump page");
    u64::from_str_radix(hex, 16).unwrap()
}

fn tids(pid: i32) -> BTreeSet<i32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn kernel_core_threads_signal_and_memory() {
    let fx = fixture("argsenv");
    let spawn = Spawn::new(&fx).arg("x").env("NPT_THREADS", "3");
    let mut live_tids = BTreeSet::new();
    let mut secret = 0;
    let mut pid = 0;
    let (_dir, path) = kernel_core(&spawn, |p| {
        live_tids = tids(p.pid());
        secret = dontdump_addr(p);
        pid = p.pid();
    });
    let core = CoreFile::open(&path, &libproc_rs::OpenOptions::default()).unwrap();
    let mut notices: Vec<libproc_rs::diag::Notice> = Vec::new();
    core.drain_notices(&mut notices);
    assert!(notices.is_empty(), "{notices:?}");

    let info = core.psinfo();
    assert_eq!(info.pid, pid);
    assert_eq!(info.fname, "argsenv");
    assert_eq!(info.uid, 0);

    let threads = core.threads().unwrap();
    assert_eq!(threads.len(), 4, "main thread and three more");
    assert_eq!(threads[0].tid, pid, "main thread first");
    assert_eq!(
        threads.iter().map(|t| t.tid).collect::<BTreeSet<_>>(),
        live_tids
    );
    for t in &threads {
        let regs = t.registers.expect("registers from NT_PRSTATUS");
        assert_ne!(regs.rip(), 0);
        assert_eq!(t.stack_pointer, Some(regs.rsp()));
        assert!(t.name.is_none(), "kernel cores hold no thread names");
        // Every stack pointer lies in memory the core holds.
        core.read_u64(regs.rsp()).expect("stack is in the core");
    }

    let sig = core.fatal_signal().expect("NT_SIGINFO");
    assert_eq!(sig.signo, 6);
    assert_eq!(
        sig.sender_pid,
        Some(std::process::id() as i32),
        "kill(2) from the test"
    );

    // Text the kernel did not dump comes from the file NT_FILE names.
    let maps = core.mappings().unwrap();
    let text = maps
        .iter()
        .find(|m| m.perms.exec && m.path() == Some(fx.as_path()))
        .expect("fixture text mapping");
    assert_eq!(
        text.dumped,
        Some(0),
        "the kernel keeps file-backed text out of cores"
    );
    let mut from_core = vec![0u8; 64];
    core.read_exact_at(text.start, &mut from_core).unwrap();
    let file = fs::read(&fx).unwrap();
    let off = text.offset as usize;
    assert_eq!(from_core, file[off..off + 64]);

    // Memory excluded from the dump is an error, never zeros.
    let mut buf = [0u8; 16];
    match core.read_memory(secret, &mut buf) {
        Err(Error::MemoryUnavailable { addr, .. }) => assert_eq!(addr, secret),
        other => panic!("expected unavailable memory, got {other:?} {buf:?}"),
    }
    // The main stack is named.
    assert!(maps.iter().any(|m| m.name == MapName::Stack));
    assert!(maps.iter().any(|m| m.name == MapName::Vdso));
    assert!(
        matches!(
            core.open_files(libproc_rs::openfiles::Options::full(), &mut notices),
            Err(Error::NoDescriptorTable)
        ),
        "a kernel core records no open files"
    );
}

#[test]
fn gcore_has_the_same_threads_and_memory() {
    let p = Spawn::new(fixture("argsenv"))
        .arg("x")
        .env("NPT_THREADS", "2")
        .start();
    let dir = scratch();
    let path = gcore(p.pid(), dir.path());
    let core = CoreFile::open(&path, &libproc_rs::OpenOptions::default()).unwrap();
    assert_eq!(
        core.threads()
            .unwrap()
            .iter()
            .map(|t| t.tid)
            .collect::<BTreeSet<_>>(),
        tids(p.pid())
    );
    // gcore honours MADV_DONTDUMP as well, and the page reads as missing.
    let secret = dontdump_addr(&p);
    let mut buf = [0u8; 16];
    let got = core.read_memory(secret, &mut buf);
    assert!(
        matches!(got, Err(Error::MemoryUnavailable { .. })) || buf == [0xab; 16],
        "either missing or the real bytes, never zeros: {got:?} {buf:?}"
    );
}

#[test]
fn core_without_the_stack_falls_back_to_psargs_and_says_so() {
    // coredump_filter 0x10: ELF headers only, no anonymous memory, so neither
    // the stack nor the heap is in the core.
    let spawn = Spawn {
        coredump_filter: Some(0x10),
        ..Spawn::new(fixture("argsenv"))
            .arg("one")
            .arg("two words")
            .env("A", "1")
    };
    let (_dir, core) = kernel_core(&spawn, |_| {});
    let r = run_tool("npargs", [&core]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let argv = indexed(&r.stdout, "argv");
    let prog = spawn.program.display().to_string();
    assert_eq!(
        argv,
        [prog.as_bytes(), b"one", b"two", b"words"],
        "split pr_psargs"
    );
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("pr_psargs"),
        "says argv is approximate: {}",
        r.stderr
    );
    for args in [&["--initial"][..], &[]] {
        let e = run_tool_on("npenv", args, &core);
        assert_eq!(e.code(), 1);
        assert!(e.stderr.contains("not available"), "{}", e.stderr);
        assert!(e.stdout.ends_with(b"\n") && indexed(&e.stdout, "envp").is_empty());
    }
}

#[test]
fn root_without_cap_sys_ptrace_is_told_so() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "must run as root, as make test does"
    );
    let p = Spawn::new("setpriv")
        .arg("--reuid=65534")
        .arg("--regid=65534")
        .arg("--clear-groups")
        .arg("--")
        .arg(fixture("argsenv"))
        .env("A", "1")
        .start();
    assert!(p.ready_line.starts_with("ready"));
    let r = run_command(
        std::process::Command::new("setpriv")
            .args(["--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", "--"])
            .arg(tool("npenv"))
            .arg(p.pid_arg()),
    );
    // Without CAP_SYS_PTRACE, root may still read /proc/PID/environ but not
    // the process's memory: npenv falls back to the initial environment and
    // says why, in one line.
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(indexed(&r.stdout, "envp"), [b"A=1"]);
    assert!(
        r.stderr.contains("without CAP_SYS_PTRACE") && r.stderr.contains("started with"),
        "names the missing capability: {}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn a_huge_core_is_never_read_whole() {
    // Grow a real core to 8 GiB (sparse, so this disk need not hold it). A
    // tool that read or copied the file would need gigabytes; mapping it
    // touches only the headers, notes and the pages asked for.
    let p = Spawn::new(fixture("argsenv")).arg("x").start();
    let dir = scratch();
    let path = gcore(p.pid(), dir.path());
    let big = dir.path().join("big.core");
    fs::copy(&path, &big).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let (r, peak_kib) = run_with_peak_rss(
        std::process::Command::new(tool("npargs"))
            .args(["-e", "-x"])
            .arg(&big),
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(
        peak_kib < 64 * 1024,
        "npargs used {peak_kib} KiB on an 8 GiB core"
    );
}
