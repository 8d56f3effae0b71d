//! Golden files for the tools' tests (the `golden` feature, which each
//! tool turns on for its tests only).
//!
//! A test renders a report into a buffer and [`check`]s it against a
//! checked-in file; with `NPTOOLS_BLESS=1` in the environment it writes the
//! file instead (the update switch object and addr2line have). A blessed
//! change is reviewed like code: `git diff tools/*/tests/golden/`.
//!
//! [`StubTarget`] is a [`ProcessTarget`] built from values, for renderers
//! that take a target for their header fields.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libproc_rs::Error;
use libproc_rs::error::Result;
use libproc_rs::escape::escape_bytes;
use libproc_rs::parse::auxv::AuxEntry;
use libproc_rs::root::RootDir;
use libproc_rs::target::{
    Mapping, Memory, ProcessTarget, Psinfo, SignalInfo, Source, StringList, Thread,
};

/// The environment variable that turns comparing into writing.
pub const BLESS_VAR: &str = "NPTOOLS_BLESS";

/// Whether golden files are being written (`NPTOOLS_BLESS` set, and not
/// to `0`).
pub fn blessing() -> bool {
    std::env::var_os(BLESS_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The workspace's `testdata/`: the checked-in core fixture (see
/// `testdata/make-tiny-core.sh`).
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Run a built tool (`env!("CARGO_BIN_EXE_npX")`) with `args` in
/// `testdata/`, so that the operands (`core.tiny`, `--sysroot sysroot`)
/// and the output are the same in every checkout.
pub fn run_in_testdata(tool: &str, args: &[&str]) -> Output {
    let dir = testdata();
    assert!(
        dir.join("core.tiny").is_file(),
        "{}: no core.tiny; the core fixture is checked in (git lfs or a sparse checkout?)",
        dir.display()
    );
    Command::new(tool)
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Compare `actual` with the golden file at `path`, or write it there when
/// [`blessing`]. A mismatch or a missing file panics with what differs.
pub fn check(path: &Path, actual: &[u8]) {
    if blessing() {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        fs::write(path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run the test with {BLESS_VAR}=1 to write it",
            path.display()
        )
    });
    if let Some(diff) = difference(&expected, actual) {
        panic!(
            "{} does not match the output:\n{diff}\n\
             If the new output is right, run the test with {BLESS_VAR}=1 and review the diff.",
            path.display()
        );
    }
}

/// [`check`] against `tests/golden/NAME` of the calling crate.
#[macro_export]
macro_rules! assert_golden {
    ($name:expr, $actual:expr) => {
        $crate::golden::check(
            &::std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden")
                .join($name),
            $actual,
        )
    };
}

/// The first line where `actual` differs from `expected`, both escaped
/// so that control bytes show (a long line, as JSON is, around the first
/// differing byte); `None` when they are equal.
pub fn difference(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let lines = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split_inclusive(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    let (want, got) = (lines(expected), lines(actual));
    let at = want
        .iter()
        .zip(&got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    let (w, g) = (want.get(at), got.get(at));
    let column = match (w, g) {
        (Some(a), Some(b)) => a.iter().zip(b).take_while(|(x, y)| x == y).count(),
        _ => 0,
    };
    let show = |l: Option<&Vec<u8>>| match l {
        Some(l) => excerpt(l, column),
        None => "(end of output)".to_owned(),
    };
    Some(format!(
        "first difference at line {}, byte {} ({} lines expected, {} written)\n  expected: {}\n  actual:   {}",
        at + 1,
        column + 1,
        want.len(),
        got.len(),
        show(w),
        show(g),
    ))
}

/// Bytes shown in a mismatch, either side of a differing one.
const CONTEXT: usize = 60;

/// A line escaped; a long one cut to the bytes around `column`.
fn excerpt(line: &[u8], column: usize) -> String {
    if line.len() <= 2 * CONTEXT + 40 {
        return escape_bytes(line).into_owned();
    }
    let from = column.saturating_sub(CONTEXT);
    let to = (column + CONTEXT).min(line.len());
    format!(
        "{}{}{}",
        if from > 0 { "..." } else { "" },
        escape_bytes(&line[from..to]),
        if to < line.len() { "..." } else { "" }
    )
}

/// A target made of values: what a renderer reads from a target (its
/// source and psinfo for the header and JSON, argv, environment, auxv and
/// memory for npargs), with nothing behind it. It has no root directory,
/// so nothing is opened by path.
#[derive(Debug, Clone)]
pub struct StubTarget {
    pub source: Source,
    pub psinfo: Psinfo,
    pub argv: StringList,
    pub environ: StringList,
    pub auxv: Vec<AuxEntry>,
    pub mappings: Vec<Mapping>,
    pub threads: Vec<Thread>,
    /// Readable memory: bytes at an address.
    pub memory: Vec<(u64, Vec<u8>)>,
    pub signal: Option<SignalInfo>,
}

impl StubTarget {
    /// An empty target with this source and identity.
    pub fn new(source: Source, psinfo: Psinfo) -> Self {
        StubTarget {
            source,
            psinfo,
            argv: StringList::default(),
            environ: StringList::default(),
            auxv: Vec::new(),
            mappings: Vec::new(),
            threads: Vec::new(),
            memory: Vec::new(),
            signal: None,
        }
    }

    /// `node /app/server.js`, PID 4242, read from `source`.
    pub fn node_server(source: Source) -> Self {
        let psinfo = Psinfo {
            pid: 4242,
            fname: "node".into(),
            psargs: "node /app/server.js".into(),
            ..Psinfo::default()
        };
        StubTarget::new(source, psinfo)
    }
}

impl Memory for StubTarget {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        for (start, bytes) in &self.memory {
            if let Some(off) = addr.checked_sub(*start)
                && let Some(rest) = bytes.get(off as usize..)
                && !rest.is_empty()
            {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                return Ok(n);
            }
        }
        Err(Error::MemoryUnavailable {
            addr,
            reason: "not in the stub's memory",
        })
    }
}

impl ProcessTarget for StubTarget {
    fn source(&self) -> &Source {
        &self.source
    }
    fn psinfo(&self) -> &Psinfo {
        &self.psinfo
    }
    fn argv(&self) -> Result<StringList> {
        Ok(self.argv.clone())
    }
    fn initial_environ(&self) -> Result<StringList> {
        Ok(self.environ.clone())
    }
    fn auxv(&self) -> Result<Vec<AuxEntry>> {
        Ok(self.auxv.clone())
    }
    fn mappings(&self) -> Result<Vec<Mapping>> {
        Ok(self.mappings.clone())
    }
    fn threads(&self) -> Result<Vec<Thread>> {
        Ok(self.threads.clone())
    }
    fn fatal_signal(&self) -> Option<SignalInfo> {
        self.signal
    }
    fn root_dir(&self) -> Result<&RootDir> {
        Err(Error::NoRootDir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_line_is_shown_escaped() {
        assert_eq!(difference(b"a\nb\n", b"a\nb\n"), None);
        let d = difference(b"a\nb\nc\n", b"a\nb\x1b\nc\n").unwrap();
        assert!(
            d.starts_with("first difference at line 2, byte 2 (3 lines expected, 3 written)"),
            "{d}"
        );
        assert!(
            d.contains("expected: b\\x0a") && d.contains("actual:   b\\x1b\\x0a"),
            "{d}"
        );
        let d = difference(b"a\n", b"a\nmore\n").unwrap();
        assert!(
            d.contains("line 2") && d.contains("expected: (end of output)"),
            "{d}"
        );
        // A long line (JSON) shows the bytes around the difference.
        let long = format!("{{\"a\":\"{}\",\"b\":1}}\n", "x".repeat(300));
        let d = difference(
            long.as_bytes(),
            long.replace("\"b\":1", "\"b\":2").as_bytes(),
        )
        .unwrap();
        assert!(
            d.contains("byte 313") && d.contains("...xxx") && d.contains("\"b\":2}"),
            "{d}"
        );
        assert!(d.len() < 400, "{d}");
    }

    #[test]
    fn the_stub_reads_only_its_memory() {
        let mut t = StubTarget::new(Source::Live { pid: 1 }, Psinfo::default());
        t.memory.push((0x1000, b"abc".to_vec()));
        let mut buf = [0u8; 8];
        assert_eq!(t.read_memory(0x1001, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"bc");
        assert!(t.read_memory(0x1003, &mut buf).is_err());
    }
}
