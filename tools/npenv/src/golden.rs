//! The report over a target built by hand, against tests/golden/ (see
//! `nptools_cli::golden`; `NPTOOLS_BLESS=1` rewrites the files).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;

use libproc_rs::target::{Source, StringList};
use nptools_cli::assert_golden;
use nptools_cli::golden::StubTarget;

use super::*;

/// A live process whose environment holds bytes a terminal must not get
/// raw: an escape sequence, a newline, a byte that is not UTF-8.
fn target() -> StubTarget {
    let mut t = StubTarget::node_server(Source::Live { pid: 4242 });
    t.environ = StringList {
        items: [
            &b"PATH=/usr/local/bin:/usr/bin:/bin"[..],
            b"NODE_ENV=production",
            b"PROMPT=\x1b]0;pwned\x07",
            b"MULTI=one\ntwo",
            b"LATIN1=caf\xe9",
            b"BACKSLASH=a\\b",
        ]
        .iter()
        .map(|v| OsString::from_vec(v.to_vec()))
        .collect(),
        caveat: None,
    };
    t
}

fn report(flags: &[&str]) -> (Vec<u8>, Vec<String>) {
    let all = ["npenv"].iter().chain(flags).chain(&["4242"]);
    let args = Args::try_parse_from(all).expect("flags npenv takes");
    let mut out = Vec::new();
    let mut diag = Diagnostics::new("npenv", OsStr::new("4242"));
    if write_report(&args, &target(), &mut out, &mut diag).is_err() {
        panic!("rendering into a buffer failed");
    }
    (out, diag.warnings().to_vec())
}

#[test]
fn text() {
    let (out, warnings) = report(&[]);
    assert!(!out.contains(&0x1b), "escape bytes reached the output");
    // The stub has no files to find `environ` in.
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("showing the environment the process started with")),
        "{warnings:?}"
    );
    assert_golden!("envp.txt", &out);
}

#[test]
fn initial_is_the_same_list_without_a_warning() {
    let (out, warnings) = report(&["--initial"]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(out, report(&[]).0);
}

#[test]
fn raw() {
    let (out, _) = report(&["--raw"]);
    assert!(out.windows(4).any(|w| w == b"\x1b]0;"));
    assert_golden!("envp-raw.txt", &out);
}

#[test]
fn json() {
    assert_golden!("env.json", &report(&["--json"]).0);
    assert_golden!("env-initial.json", &report(&["--json", "--initial"]).0);
}
