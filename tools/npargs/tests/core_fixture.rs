//! npargs on the checked-in core (testdata/core.tiny, from
//! testdata/make-tiny-core.sh): argv and the environment from the initial
//! stack, the auxiliary vector from NT_AUXV. Needs no root and no live
//! process.

use nptools_cli::assert_golden;
use nptools_cli::golden::run_in_testdata;

const NPARGS: &str = env!("CARGO_BIN_EXE_npargs");

#[test]
fn argv_from_the_initial_stack() {
    let out = run_in_testdata(NPARGS, &["core.tiny"]);
    let stdout = String::from_utf8(out.stdout.clone()).expect("escaped output is UTF-8");
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let argv: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(
        argv,
        [
            "argv[0]: /nptools-fixture/bin/tiny",
            "argv[1]: hello world",
            "argv[2]: esc\\x1b[31mred",
            "argv[3]: bad\\xffutf8",
            "argv[4]: new\\x0aline",
        ]
    );
    assert_golden!("tiny-argv.txt", &out.stdout);
}

#[test]
fn environment_and_auxv() {
    let out = run_in_testdata(NPARGS, &["-e", "-x", "core.tiny"]);
    let stdout = String::from_utf8(out.stdout.clone()).expect("escaped output is UTF-8");
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("envp[2]: NPTOOLS_FIXTURE=title\\x1b]0;pwned\\x07\n"),
        "{stdout}"
    );
    for line in [
        "AT_PHDR              0x0000000000400040 /nptools-fixture/bin/tiny+0x40",
        "AT_ENTRY             0x0000000000401000 /nptools-fixture/bin/tiny+0x1000",
        "AT_PLATFORM          ",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("AT_EXECFN ") && l.ends_with(" /nptools-fixture/bin/tiny")),
        "{stdout}"
    );
    // npargs has no --sysroot: the binary is not found, so the initial
    // environment is shown, and said so.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("showing the environment the process started with"),
        "{stderr}"
    );
    assert_golden!("tiny-env-auxv.txt", &out.stdout);
}

#[test]
fn json() {
    let out = run_in_testdata(NPARGS, &["--json", "-a", "-e", "-x", "core.tiny"]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["source"], "core");
    assert_eq!(doc["fname"], "tiny");
    assert_eq!(doc["argv"][1], "hello world");
    // Not UTF-8: an array of the bytes.
    assert_eq!(doc["argv"][3], serde_json::json!(b"bad\xffutf8".to_vec()));
    assert_golden!("tiny-args.json", &out.stdout);
}
