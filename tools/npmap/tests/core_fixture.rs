//! npmap on the checked-in core (testdata/core.tiny, from
//! testdata/make-tiny-core.sh): mappings from NT_FILE and the program
//! headers, what the core holds of each. Needs no root and no live
//! process.

use nptools_cli::assert_golden;
use nptools_cli::golden::run_in_testdata;

const NPMAP: &str = env!("CARGO_BIN_EXE_npmap");

fn text(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).expect("escaped output is UTF-8")
}

#[test]
fn listing() {
    let out = run_in_testdata(NPMAP, &["core.tiny"]);
    let stdout = text(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("core 'core.tiny' of "), "{stdout}");
    // The executable's four segments: the first page is in the core (its
    // build-id), the text and read-only data are not.
    assert!(lines[1].starts_with("0000000000400000      4K r---   /nptools-fixture/bin/tiny"));
    assert!(lines[2].starts_with("0000000000401000      4K r-x-*  /nptools-fixture/bin/tiny"));
    for name in ["[ anon ]", "[ vdso ]", "[ stack ]"] {
        assert!(stdout.contains(name), "no {name} in\n{stdout}");
    }
    assert!(lines.last().unwrap().starts_with(" total "), "{stdout}");
    assert_golden!("tiny-listing.txt", &out.stdout);
}

#[test]
fn extended_and_summary() {
    let out = run_in_testdata(NPMAP, &["-x", "core.tiny"]);
    let stdout = text(&out);
    assert!(stdout.contains(" Dumped Mode   Mapped File"), "{stdout}");
    assert_golden!("tiny-extended.txt", &out.stdout);

    let out = run_in_testdata(NPMAP, &["--summary", "-x", "core.tiny"]);
    let stdout = text(&out);
    assert!(stdout.lines().any(|l| l.starts_with("stack ")), "{stdout}");
    assert_golden!("tiny-summary-x.txt", &out.stdout);
}
