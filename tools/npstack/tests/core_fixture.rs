//! npstack on the checked-in core (testdata/core.tiny, from
//! testdata/make-tiny-core.sh), with the fixture's binary found under
//! `--sysroot sysroot`: registers from NT_PRSTATUS, the stack from the
//! core, text and .eh_frame from the binary, names from its .symtab.
//! Needs no root and no live process.

use nptools_cli::assert_golden;
use nptools_cli::golden::run_in_testdata;

const NPSTACK: &str = env!("CARGO_BIN_EXE_npstack");

/// The fixture's call chain, innermost first.
const FRAMES: [&str; 6] = [
    "crash_here",
    "parse_request",
    "handle_request",
    "serve",
    "start_c",
    "_start",
];

#[test]
fn frames_are_named_from_the_sysroot() {
    let out = run_in_testdata(NPSTACK, &["--sysroot", "sysroot", "core.tiny"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).expect("escaped output is UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[1], "  killed by SIGSEGV (signal 11) at address 0xdead0",
        "{stdout}"
    );
    assert!(lines[2].starts_with("-----------------  lwp# "), "{stdout}");
    // crash_here has no frame pointer of its own: parse_request is found
    // only through .eh_frame.
    let names: Vec<&str> = lines[3..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(names, FRAMES, "{stdout}");
    assert_golden!("tiny-stack.txt", &out.stdout);
}

#[test]
fn json() {
    let out = run_in_testdata(NPSTACK, &["--json", "--sysroot", "sysroot", "core.tiny"]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["signal"]["number"], 11);
    let frames = doc["threads"][0]["frames"].as_array().expect("frames");
    let symbols: Vec<&str> = frames
        .iter()
        .map(|f| f["symbol"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(symbols, FRAMES);
    assert!(
        frames
            .iter()
            .all(|f| f["module"] == "/nptools-fixture/bin/tiny"),
        "{frames:?}"
    );
    assert_golden!("tiny-stack.json", &out.stdout);
}

#[test]
fn without_the_sysroot_frames_are_offsets_into_the_missing_file_and_stderr_says_so() {
    // The core names /nptools-fixture/bin/tiny, which is not on this
    // machine: what names the frames above is the sysroot. Without it a
    // frame is where it is in that file, and stderr names the file.
    let out = run_in_testdata(NPSTACK, &["core.tiny"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("crash_here"), "{stdout}");
    assert!(
        stdout.contains(" 000000000040100f tiny+0x100f\n"),
        "{stdout}"
    );
    assert_eq!(
        stderr
            .matches("/nptools-fixture/bin/tiny: No such file or directory")
            .count(),
        1,
        "the missing file is named once: {stderr}"
    );
    assert!(
        stderr.contains("shown as offsets into the file"),
        "{stderr}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "a partial stack is still a stack"
    );
}
