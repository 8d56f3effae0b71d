//! The renderers over a target built by hand, against tests/golden/ (see
//! `nptools_cli::golden`; `NPTOOLS_BLESS=1` rewrites the files).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;

use libproc_rs::parse::auxv::{self, AuxEntry};
use libproc_rs::target::{MapName, Mapping, Perms, Psinfo, Source, StringList};
use nptools_cli::assert_golden;
use nptools_cli::golden::StubTarget;

use super::*;

/// Arguments with bytes a terminal must not get raw: an escape sequence,
/// a newline, a byte that is not UTF-8, and a quote and a space for -l.
fn argv() -> Vec<OsString> {
    [
        &b"node"[..],
        b"--title=\x1b]0;pwned\x07",
        b"two words",
        b"it's",
        b"new\nline",
        b"bad\xffutf8",
        b"",
    ]
    .iter()
    .map(|a| OsString::from_vec(a.to_vec()))
    .collect()
}

const EXECFN: u64 = 0x7ffd_3c1f_efe5;
const PLATFORM: u64 = 0x7ffd_3c1f_e009;
const RANDOM: u64 = 0x7ffd_3c1f_dff9;

fn mapping(start: u64, end: u64, name: MapName) -> Mapping {
    let perms = Perms {
        read: true,
        exec: true,
        ..Perms::default()
    };
    Mapping::new(start, end, perms, name)
}

/// A node process: argv, environment, and an auxiliary vector whose
/// strings, random bytes and addresses are in its memory and mappings.
fn target() -> StubTarget {
    let mut t = StubTarget::new(
        Source::Core {
            path: "/var/cores/core.4242".into(),
        },
        Psinfo {
            pid: 4242,
            uid: 1000,
            gid: 1000,
            fname: "node".into(),
            psargs: "node --title=\x1b]0;pwned\x07 two words".into(),
            ..Psinfo::default()
        },
    );
    t.argv = StringList {
        items: argv(),
        caveat: None,
    };
    t.environ = StringList {
        items: vec![
            "PATH=/usr/bin:/bin".into(),
            OsString::from_vec(b"PS1=\x1b[1m$ \xfe".to_vec()),
            "EMPTY=".into(),
        ],
        caveat: None,
    };
    t.mappings = vec![
        mapping(0x400000, 0x5db000, MapName::File("/usr/bin/node".into())),
        mapping(0x7ffd_3c1f_d000, 0x7ffd_3c1f_f000, MapName::Stack),
        mapping(0x7ffd_3c3e_2000, 0x7ffd_3c3e_4000, MapName::Vdso),
    ];
    t.memory = vec![
        (EXECFN, b"/usr/bin/node\0".to_vec()),
        (PLATFORM, b"x86_64\0".to_vec()),
        ((RANDOM), (0u8..16).map(|b| b * 17).collect()),
    ];
    let aux = |key, value| AuxEntry { key, value };
    t.auxv = vec![
        aux(auxv::AT_SYSINFO_EHDR, 0x7ffd_3c3e_2000),
        aux(auxv::AT_HWCAP, 0x178b_fbff),
        aux(auxv::AT_PAGESZ, 4096),
        aux(auxv::AT_CLKTCK, 100),
        aux(auxv::AT_PHDR, 0x400040),
        aux(auxv::AT_BASE, 0),
        aux(auxv::AT_ENTRY, 0x401000),
        aux(auxv::AT_UID, 1000),
        aux(auxv::AT_GID, 1000),
        aux(auxv::AT_SECURE, 1),
        aux(auxv::AT_RANDOM, RANDOM),
        aux(auxv::AT_HWCAP2, 0x2),
        aux(auxv::AT_EXECFN, EXECFN),
        aux(auxv::AT_PLATFORM, PLATFORM),
        // A string the core does not hold, and a type nobody knows.
        aux(auxv::AT_BASE_PLATFORM, 0x1000),
        aux(99, 0xdead_beef),
    ];
    t
}

fn args(flags: &[&str]) -> Args {
    let all = ["npargs"].iter().chain(flags).chain(&["core.4242"]);
    Args::try_parse_from(all).expect("flags npargs takes")
}

/// What `f` writes for the target, and the warnings it gave.
fn render(
    target: &StubTarget,
    f: impl FnOnce(&StubTarget, &mut Vec<u8>, &mut Diagnostics) -> Result<(), ReportError>,
) -> (Vec<u8>, Vec<String>) {
    let mut out = Vec::new();
    let mut diag = Diagnostics::new("npargs", OsStr::new("core.4242"));
    if f(target, &mut out, &mut diag).is_err() {
        panic!("rendering into a buffer failed");
    }
    (out, diag.warnings().to_vec())
}

#[test]
fn argv_text() {
    let a = args(&[]);
    let (out, warnings) = render(&target(), |t, o, d| write_text(&a, t, o, d));
    assert!(!out.contains(&0x1b), "escape bytes reached the output");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_golden!("argv.txt", &out);
}

#[test]
fn argv_raw() {
    let a = args(&["--raw"]);
    let (out, _) = render(&target(), |t, o, d| write_text(&a, t, o, d));
    assert!(out.windows(4).any(|w| w == b"\x1b]0;"));
    assert_golden!("argv-raw.txt", &out);
}

#[test]
fn argv_env_and_auxv_text() {
    let a = args(&["-a", "-e", "-x"]);
    let (out, warnings) = render(&target(), |t, o, d| write_text(&a, t, o, d));
    // The stub has no files to find `environ` in: the initial
    // environment, said so.
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("showing the environment the process started with")),
        "{warnings:?}"
    );
    assert_golden!("argv-env-auxv.txt", &out);
}

#[test]
fn shell_line() {
    let (out, _) = render(&target(), |t, o, d| write_line(t, o, d));
    assert_golden!("line.txt", &out);
}

#[test]
fn json() {
    let a = args(&["--json", "-a", "-e", "-x"]);
    let mut t = target();
    t.argv.caveat = Some("recovered from the 80-byte pr_psargs".to_owned());
    let (out, warnings) = render(&t, |t, o, d| write_json(&a, t, o, d));
    assert!(
        warnings.iter().any(|w| w.contains("pr_psargs")),
        "{warnings:?}"
    );
    assert_golden!("args.json", &out);
}
