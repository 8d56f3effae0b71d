//! A kernel core of node whose executable is gone, or is another build of
//! node, by the time the core is read. The C library's `environ` cannot be
//! located (node holds the copy in use), so npenv and npargs -e show the
//! environment the process started with and say why; npstack's frames in
//! node read node+0xOFFSET and stderr names the file. No answer is empty
//! with exit 0.

use std::path::Path;

use nptools_tests::*;

fn sorted_env(report: &[u8]) -> Vec<String> {
    let mut vars: Vec<String> = indexed(report, "envp")
        .into_iter()
        .map(|v| String::from_utf8(v).expect("UTF-8 environment"))
        .collect();
    vars.sort();
    vars
}

/// What npenv, npargs -e and npstack say of `core` while the node it ran
/// (`exe`) is missing or another build; `why` is what stderr must say of
/// that file.
fn check_degraded(core: &Path, exe: &Path, why: &str) {
    let exe_text = exe.to_str().expect("UTF-8 path");
    let initial = ["NPT_FIRST=at-start", "PATH=/usr/bin:/bin"];
    for (tool, args) in [("npenv", &[][..]), ("npargs", &["-e"][..])] {
        let run = run_tool_on(tool, args, core);
        assert_eq!(
            sorted_env(&run.ok().into_bytes()),
            initial,
            "{tool} {args:?} shows the initial environment"
        );
        let warnings: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("warning:"))
            .collect();
        assert_eq!(warnings.len(), 1, "{tool}: one warning: {}", run.stderr);
        for part in [
            exe_text,
            why,
            "showing the environment the process started with",
        ] {
            assert!(
                warnings[0].contains(part),
                "{tool} says {part:?}: {}",
                run.stderr
            );
        }
        let json = run_tool_on(tool, &[args, &["--json"]].concat(), core);
        let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
        assert_eq!(doc["envp_origin"], "initial", "{tool}: {doc}");
        let caveat = doc["envp_caveat"].as_str().unwrap_or("");
        assert!(
            caveat.contains(exe_text) && caveat.contains(why),
            "{tool} --json says why: {doc}"
        );
    }

    let stack = run_tool_on("npstack", &[], core);
    let text = stack.ok();
    assert!(
        text.lines().any(|l| l.contains(" node+0x")),
        "npstack shows frames in node as node+0xOFFSET: {text}"
    );
    // The main thread's frames, down to its JavaScript and the V8
    // builtins node remaps, each say where they are.
    let main_thread = text
        .split("-----------------  lwp#")
        .nth(1)
        .expect("a thread");
    for frame in main_thread.lines().skip(1) {
        assert!(
            frame.split_whitespace().count() > 1,
            "a frame of the main thread is a bare address: {frame:?} in {main_thread}"
        );
    }
    assert_eq!(
        stack.stderr.matches(exe_text).count(),
        1,
        "npstack names the file once: {}",
        stack.stderr
    );
    assert!(stack.stderr.contains(why), "{}", stack.stderr);
    assert!(
        stack.stderr.contains(
            "JavaScript frames are not named from the V8 heap: V8's metadata is in node's file, \
             which cannot be used"
        ),
        "npstack says why no JavaScript frame is named: {}",
        stack.stderr
    );
    let json = run_tool_on("npstack", &["--json"], core);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("npstack JSON");
    let notices = doc["notices"].as_array().expect("notices");
    assert!(
        notices
            .iter()
            .any(|n| n.as_str().unwrap_or("").contains(exe_text)),
        "npstack --json carries the notice: {notices:?}"
    );
}

#[test]
fn a_node_core_whose_executable_is_deleted_or_replaced_says_so_and_is_never_empty() {
    let newest = *NODE_MAJORS.last().expect("a node release line");
    let other = NODE_MAJORS[0];
    let bin_dir = scratch();
    let exe = bin_dir.path().join("node");
    std::fs::copy(fetched_node(newest), &exe).expect("copy node");
    let spawn = Spawn::new(&exe)
        .arg("-e")
        .arg(
            "process.env.NPT_LATER = 'set-after-start'; console.log('ready'); \
             setInterval(() => {}, 1 << 30);",
        )
        .env("PATH", "/usr/bin:/bin")
        .env("NPT_FIRST", "at-start");
    let (_cores, core) = kernel_core(&spawn, |_| {});

    // While the file is there, the current environment shows.
    let env = run_tool_on("npenv", &[], &core);
    assert!(
        sorted_env(&env.ok().into_bytes()).contains(&"NPT_LATER=set-after-start".to_owned()),
        "npenv reads node's environ while node is there"
    );

    std::fs::remove_file(&exe).expect("delete the node copy");
    check_degraded(&core, &exe, "No such file or directory");

    std::fs::copy(fetched_node(other), &exe).expect("put another node build in its place");
    check_degraded(&core, &exe, "is not the file the process mapped");
}
