//! A kernel core with no NT_FILE note: the kernel leaves the note out when
//! its table of mapped files would exceed kernel.core_file_note_size_limit
//! (4 MiB by default). The tools name the modules from the dynamic
//! linker's list in the core's memory instead, and say so.

use std::path::{Path, PathBuf};
use std::process::Command;

use nptools_tests::*;

/// Enough mappings of a file with a 200-byte name (about 230 bytes an
/// entry) for the table to pass 4 MiB.
const MAPPINGS: &str = "25000";

/// The notice every tool gives, once, on stderr.
const NOTICE: &str = "the core has no NT_FILE note";

/// The note types in a core, as readelf names them.
fn note_types(core: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(core)
        .output()
        .unwrap_or_else(|e| panic!("cannot run readelf (install binutils): {e}"));
    assert!(out.status.success(), "readelf -n failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kernel core of the manymaps fixture, checked to have no NT_FILE; the
/// directories hold the mapped file and the core.
fn core_without_nt_file() -> (PathBuf, tempfile::TempDir, tempfile::TempDir, PathBuf) {
    let exe = fixture("manymaps");
    let data_dir = scratch();
    let data = data_dir.path().join("m".repeat(200));
    std::fs::write(&data, [0u8; 4096]).expect("write the mapped file");
    let spawn = Spawn::new(&exe)
        .arg(&data)
        .arg(MAPPINGS)
        .env("PATH", "/usr/bin:/bin")
        .env("NPT_FIRST", "at-start");
    let (core_dir, core) = kernel_core(&spawn, |_| {});
    let notes = note_types(&core);
    assert!(
        notes.contains("NT_AUXV") && notes.contains("NT_PRSTATUS"),
        "readelf shows the core's notes: {notes}"
    );
    assert!(
        !notes.contains("NT_FILE"),
        "the kernel wrote NT_FILE for {MAPPINGS} mappings (has \
         kernel.core_file_note_size_limit been raised?), so this core does not test its \
         absence"
    );
    (exe, data_dir, core_dir, core)
}

fn assert_notice_once(tool: &str, stderr: &str) {
    assert_eq!(
        stderr.matches(NOTICE).count(),
        1,
        "{tool} says once that NT_FILE is missing: {stderr}"
    );
    assert!(
        stderr.contains("from the dynamic linker's list in memory"),
        "{tool} says where the modules came from: {stderr}"
    );
}

#[test]
fn modules_come_from_the_dynamic_linkers_list_for_npmap_npstack_and_npenv() {
    let (exe, _data, _cores, core) = core_without_nt_file();
    let exe_text = exe.to_str().expect("UTF-8 fixture path");

    // npmap names the executable and the C library.
    let map = run_tool_on("npmap", &[], &core);
    let listing = map.ok();
    assert!(
        listing
            .lines()
            .any(|l| l.contains(" r-x") && l.ends_with(exe_text)),
        "npmap names the executable's text: {}",
        &listing[..listing.len().min(4000)]
    );
    assert!(
        listing
            .lines()
            .any(|l| l.contains(" r-x") && l.ends_with("/libc.so.6")),
        "npmap names libc's text"
    );
    assert_notice_once("npmap", &map.stderr);
    let json = run_tool_on("npmap", &["--json"], &core);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("npmap JSON");
    assert!(
        doc["notices"][0].as_str().unwrap_or("").contains(NOTICE),
        "npmap --json carries the notice: {}",
        doc["notices"]
    );

    // npstack names the frames in main and in libc.
    let stack = run_tool_on("npstack", &[], &core);
    let text = stack.ok();
    for f in ["wait_for_abort () +", "main () +", "__libc_pause () +"] {
        assert!(text.contains(f), "npstack names {f}: {text}");
    }
    assert_notice_once("npstack", &stack.stderr);
    let json = run_tool_on("npstack", &["--json"], &core);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("npstack JSON");
    assert!(
        doc["notices"]
            .as_array()
            .expect("notices")
            .iter()
            .any(|n| n.as_str().unwrap_or("").contains(NOTICE)),
        "npstack --json carries the notice: {}",
        doc["notices"]
    );

    // npenv finds environ, so the variable set at run time shows.
    let env = run_tool_on("npenv", &[], &core);
    let mut vars: Vec<String> = indexed(&env.ok().into_bytes(), "envp")
        .into_iter()
        .map(|v| String::from_utf8(v).expect("UTF-8 environment"))
        .collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "NPT_FIRST=at-start",
            "NPT_LATER=set-after-start",
            "PATH=/usr/bin:/bin"
        ],
        "npenv shows the current environment"
    );
    assert_notice_once("npenv", &env.stderr);
    let json = run_tool_on("npenv", &["--json"], &core);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("npenv JSON");
    assert_eq!(doc["envp_origin"], "environ", "{doc}");
    assert!(
        doc["notices"][0].as_str().unwrap_or("").contains(NOTICE),
        "npenv --json carries the notice: {doc}"
    );
}
