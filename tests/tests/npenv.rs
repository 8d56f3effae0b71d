//! npenv: the current environment (through `environ`) and the initial one,
//! live and from cores, for C programs and node.

use std::path::Path;

use nptools_tests::*;

fn env_of(report: &[u8]) -> Vec<String> {
    indexed(report, "envp")
        .into_iter()
        .map(|v| String::from_utf8(v).expect("UTF-8 env"))
        .collect()
}

fn npenv(args: &[&str], operand: impl AsRef<std::ffi::OsStr>) -> Run {
    run_tool_on("npenv", args, operand)
}

/// Check current and initial environments of one operand.
fn check(operand: impl AsRef<std::ffi::OsStr>, current: &[&str], initial: &[&str]) {
    let op = operand.as_ref();
    let cur = npenv(&[], op);
    assert_eq!(cur.code(), 0, "npenv {op:?}: {}", cur.stderr);
    assert_eq!(
        env_of(&cur.stdout),
        current,
        "current environment of {op:?}"
    );
    assert!(cur.stderr.is_empty(), "no warning expected: {}", cur.stderr);
    let init = npenv(&["--initial"], op);
    assert_eq!(init.code(), 0, "{}", init.stderr);
    assert_eq!(
        env_of(&init.stdout),
        initial,
        "initial environment of {op:?}"
    );
}

/// The same check on the live process, a gcore core of it, and a kernel
/// core of a second copy.
fn check_live_and_cores(spawn: &Spawn, current: &[&str], initial: &[&str]) {
    let p = spawn.start();
    check(p.pid_arg(), current, initial);
    let dir = scratch();
    check(gcore(p.pid(), dir.path()), current, initial);
    let (_kd, k) = kernel_core(spawn, |_| {});
    check(&k, current, initial);
}

#[test]
fn setenv_after_start_shows_live_and_in_cores_but_not_in_initial() {
    let spawn = Spawn::new(fixture("argsenv"))
        .env("HOME", "/nowhere")
        .env("NPT_SETENV", "NPT_NEW=set at run time");
    let initial = ["HOME=/nowhere", "NPT_SETENV=NPT_NEW=set at run time"];
    let current = [initial[0], initial[1], "NPT_NEW=set at run time"];
    check_live_and_cores(&spawn, &current, &initial);
}

#[test]
fn changing_an_existing_variable_does_not_rewrite_the_initial_one() {
    // glibc's setenv replaces the pointer in place while environ is still the
    // array on the stack; the initial environment must stay what exec gave.
    let spawn = Spawn::new(fixture("argsenv"))
        .env("HOME", "/nowhere")
        .env("NPT_SETENV", "HOME=/changed")
        .env("NPT_UNSETENV", "NPT_SETENV");
    let initial = [
        "HOME=/nowhere",
        "NPT_SETENV=HOME=/changed",
        "NPT_UNSETENV=NPT_SETENV",
    ];
    let current = ["HOME=/changed", "NPT_UNSETENV=NPT_SETENV"];
    check_live_and_cores(&spawn, &current, &initial);
}

#[test]
fn putenv_is_seen() {
    let p = Spawn::new(fixture("argsenv"))
        .env("A", "1")
        .env("NPT_PUTENV", "NPT_PUT=via putenv")
        .start();
    let out = npenv(&[], p.pid_arg()).ok();
    assert!(out.contains("envp[2]: NPT_PUT=via putenv\n"), "{out}");
}

#[test]
fn static_binary_uses_its_symtab_and_stripped_one_falls_back_with_a_warning() {
    let static_fx = fixture_variant("argsenv", "static", &["-static"]);
    let p = Spawn::new(&static_fx)
        .env("NPT_SETENV", "NPT_NEW=1")
        .start();
    check(
        p.pid_arg(),
        &["NPT_SETENV=NPT_NEW=1", "NPT_NEW=1"],
        &["NPT_SETENV=NPT_NEW=1"],
    );

    let stripped = fixture_variant("argsenv", "static-stripped", &["-static", "-s"]);
    let p = Spawn::new(&stripped).env("NPT_SETENV", "NPT_NEW=1").start();
    let r = npenv(&[], p.pid_arg());
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(
        env_of(&r.stdout),
        ["NPT_SETENV=NPT_NEW=1"],
        "falls back to the initial environment"
    );
    assert!(
        r.stderr.contains("warning:")
            && r.stderr.contains("environ")
            && r.stderr.contains("started with"),
        "says why on stderr: {}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
}

#[test]
fn node_process_env_assignment_shows_live_and_in_a_kernel_core() {
    let spawn = node_eval("process.env.NP_TEST = '1';").env("NP_BEFORE", "at start");
    let p = spawn.start();
    let r = npenv(&["--json"], p.pid_arg());
    let doc: serde_json::Value = serde_json::from_slice(&r.stdout).expect("JSON");
    let envp: Vec<&str> = doc["envp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(envp.contains(&"NP_TEST=1"), "{envp:?}");
    assert!(envp.contains(&"NP_BEFORE=at start"));
    assert_eq!(doc["envp_origin"], "environ");
    // node keeps its own copy of environ (a copy relocation), and that is
    // the one to follow.
    assert_eq!(
        Path::new(doc["environ_module"].as_str().unwrap()),
        std::fs::canonicalize(node()).unwrap()
    );
    let init = npenv(&["--initial"], p.pid_arg());
    assert_eq!(
        env_of(&init.stdout),
        ["NP_BEFORE=at start", "PATH=/usr/bin:/bin"]
    );

    let (_kd, k) = kernel_core(&spawn, |_| {});
    let kr = npenv(&[], &k);
    assert!(kr.stderr.is_empty(), "{}", kr.stderr);
    assert_eq!(
        env_of(&kr.stdout),
        ["NP_BEFORE=at start", "PATH=/usr/bin:/bin", "NP_TEST=1"]
    );
    let ki = npenv(&["--initial"], &k);
    assert_eq!(
        env_of(&ki.stdout),
        ["NP_BEFORE=at start", "PATH=/usr/bin:/bin"]
    );
}

#[test]
fn a_process_whose_main_thread_exited_is_read_through_another_thread() {
    let p = Spawn::new(fixture("argsenv"))
        .env("A", "1")
        .env("NPT_SETENV", "NPT_NEW=1")
        .env("NPT_LEADER_EXIT", "1")
        .start();
    let stat = format!("/proc/{}/stat", p.pid());
    eventually(10, "leader never exited", || {
        let s = std::fs::read_to_string(&stat).unwrap();
        if s.contains(") Z ") { Ok(()) } else { Err(s) }
    });
    check(
        p.pid_arg(),
        &[
            "A=1",
            "NPT_LEADER_EXIT=1",
            "NPT_SETENV=NPT_NEW=1",
            "NPT_NEW=1",
        ],
        &["A=1", "NPT_LEADER_EXIT=1", "NPT_SETENV=NPT_NEW=1"],
    );
    let argv = run_tool("npargs", [p.pid_arg()]);
    assert_eq!(argv.code(), 0, "{}", argv.stderr);
}
