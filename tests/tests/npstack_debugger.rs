//! npstack's JavaScript frames against V8's inspector, the ground truth: a
//! real npm package (tests/fetch-packages.sh installs them, pinned) runs hot
//! on every node release line of NODE_MAJORS, a Debugger pauses its main
//! thread at random moments (tests/fixtures/debugger/pause.js), and for
//! each pause npstack's frames of the paused thread must be the debugger's
//! call frames: the same functions at the same script, line and column.
//!
//! The figure is the share of frames that are identical, asserted against a
//! floor per release line (`FLOOR`); every frame that differs is printed,
//! ours beside the debugger's.
//!
//! **When two frames are identical.** Their locations must be equal, as
//! strings: npstack's `SCRIPT:LINE:COLUMN` against the debugger's script
//! url and its 1-based line and column, with a leading `file://` taken off
//! either (nothing else): the debugger gives a CommonJS module's path as a
//! `file://` url, and V8 names an ES module by its url, which npstack
//! prints as it is. Their names must be equal, except for what V8's own
//! stack traces (`new Error().stack`, and so npstack) add to the
//! debugger's name: the type of the receiver before a method's name; for
//! a function with no name, `<anonymous>`, or, called as a method, the
//! property of the receiver holding it (`ne.parse` for an arrow function
//! in a class field `parse`, where the debugger says ``). So a debugger
//! name `D` matches npstack's `D` or `T.D`, and an empty debugger name
//! matches `<anonymous>`, `T.<anonymous>` or `T.m`, where `T` and `m` are
//! one word each (no dot, no space). Anything else differs:
//! `[kOnMessage]` (a method keyed by a symbol, named at run time) against
//! `EventEmitter.<anonymous>` is a difference. How many frames match only
//! by the property name is printed beside the figure.
//!
//! **Alignment.** The two lists (innermost first) are aligned by their
//! longest common subsequence of identical frames. Between two aligned
//! frames, the frames left on each side are paired in order, and a side
//! that runs out pairs with no frame; a pause scores its identical pairs
//! out of all its pairs. So a missing or extra frame costs one and does not
//! shift the frames after it into mismatches.
//!
//! On one pause per release line a gcore core is taken too: npstack on it
//! must print the same JavaScript frames as live.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use nptools_tests::*;
use serde_json::Value;

/// The packages run hot, each a workload of pause.js.
const PACKAGES: &[&str] = &["acorn", "esprima", "marked"];

/// Pauses per package and release line: enough for a figure that moves
/// by a few points only from run to run; the whole comparison takes about
/// a minute.
const PAUSES: usize = 24;

/// How many times node may die under the debugger (and be restarted) in
/// one release line's comparison.
const MAX_DEATHS: usize = 2;

/// The least share of identical frames (percent) on each release line:
/// the 99.5. In the runs since maglev frames and V8 14's position
/// tables were read right, the lowest figures were 99.5 to 99.7 by the
/// strict rule (without names by the property holding a function, which
/// were all but a few of the frames that differed) and over 99.8 with it;
/// a pause whose every frame differs would cost about 0.3 points.
const FLOOR: &[(u32, f64)] = &[(20, 99.5), (22, 99.5), (24, 99.5), (25, 99.5), (26, 99.5)];

/// The futex system call, where the paused main thread waits for the
/// debugger's next message.
const SYS_FUTEX: u32 = 202;

fn script() -> PathBuf {
    workspace().join("tests/fixtures/debugger/pause.js")
}

/// The node_modules tests/fetch-packages.sh fills (`make packages`, part of
/// `make test`).
fn node_modules() -> PathBuf {
    let p = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("npm/node_modules");
    for pkg in PACKAGES {
        assert!(
            p.join(pkg).join("package.json").is_file(),
            "{pkg} is not installed in {}: run `make packages` (make test does), which \
             installs the pinned packages from the npm registry",
            p.display()
        );
    }
    p
}

/// pause.js, started under its debugger: killed and reaped when dropped.
struct Paused {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Its first line: node's and V8's versions.
    ready: Value,
}

impl Paused {
    fn start(node: &std::path::Path, package: &str) -> Paused {
        // Not Spawn: pause.js is driven through its stdin and talks on its
        // stdout after its ready line.
        let mut child = Command::new(node)
            .arg(script())
            .arg(node_modules())
            .arg(package)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", node.display()));
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut p = Paused {
            child,
            stdin,
            lines,
            ready: Value::Null,
        };
        p.ready = p
            .next_line("its ready line")
            .unwrap_or_else(|| panic!("pause.js ended before its ready line: {:?}", p.status()));
        assert_eq!(p.ready["ready"], true, "not a ready line: {}", p.ready);
        p
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line, or None when node has ended (closed its stdout).
    fn next_line(&self, what: &str) -> Option<Value> {
        let line = match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {
                panic!("pause.js (pid {}) did not print {what}", self.pid())
            }
        };
        Some(
            serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("pause.js printed a line that is not JSON ({e}): {line}")
            }),
        )
    }

    /// The next pause's call frames, once the main thread waits in the
    /// debugger's message loop; None when node has died.
    fn paused(&self) -> Option<Vec<Frame>> {
        let v = self.next_line("a pause")?;
        let frames = v["frames"]
            .as_array()
            .unwrap_or_else(|| panic!("no frames in {v}"))
            .iter()
            .map(|f| {
                let url = f["url"].as_str().expect("url");
                Frame {
                    name: f["name"].as_str().expect("name").to_owned(),
                    location: without_file_scheme(&format!("{url}:{}:{}", f["line"], f["column"])),
                    tier: String::new(),
                }
            })
            .collect();
        wait_in_syscall(self.pid(), self.pid(), SYS_FUTEX);
        Some(frames)
    }

    /// How node ended.
    fn status(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for node")
    }

    /// Resume the main thread; pause.js pauses it again shortly.
    fn resume(&mut self) {
        writeln!(self.stdin, "next").expect("write to pause.js");
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JavaScript frame: npstack's (with its tier) or the debugger's (tier
/// empty), its location `SCRIPT:LINE:COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    name: String,
    location: String,
    tier: String,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.name.is_empty() {
            "\"\""
        } else {
            &self.name
        };
        if self.location.is_empty() {
            write!(f, "{name} (no location)")?;
        } else {
            write!(f, "{name} ({})", self.location)?;
        }
        if !self.tier.is_empty() {
            write!(f, " [{}]", self.tier)?;
        }
        Ok(())
    }
}

/// A location with a leading `file://` taken off.
fn without_file_scheme(location: &str) -> String {
    location
        .strip_prefix("file://")
        .unwrap_or(location)
        .to_owned()
}

/// npstack's JavaScript frame line: ` <16-hex pc> NAME (LOCATION) [js,
/// TIER]` (` NAME [js, TIER]` without a location); an inlined function's has no pc and ends with ` (inlined)`,
/// which is kept in the tier (`optimized, inlined`).
fn parse_js_line(line: &str) -> Option<Frame> {
    let rest = line.get(18..)?;
    let (rest, inlined) = match rest.strip_suffix(" (inlined)") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (head, tier) = rest.rsplit_once(" [js, ")?;
    // A frame whose position npstack could not find has no location.
    let (name, location) = match head.strip_suffix(')').and_then(|h| h.rsplit_once(" (")) {
        Some((name, location)) => (name, location),
        None => (head, ""),
    };
    let tier = tier.strip_suffix(']')?;
    Some(Frame {
        name: name.to_owned(),
        location: without_file_scheme(location),
        tier: if inlined {
            format!("{tier}, inlined")
        } else {
            tier.to_owned()
        },
    })
}

/// The JavaScript frames of the report's first thread, which must be the
/// main thread.
fn main_thread_js(report: &str) -> Vec<Frame> {
    let mut lines = report
        .lines()
        .skip_while(|l| !l.starts_with("-----------------"));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no thread in report:\n{report}"));
    assert!(header.contains("thread# 1 "), "{report}");
    lines
        .take_while(|l| !l.starts_with("-----------------"))
        .filter(|l| l.contains(" [js, "))
        .map(|l| parse_js_line(l).unwrap_or_else(|| panic!("unparsable JS frame: {l}")))
        .collect()
}

/// The debugger's name `theirs` names the same function as npstack's
/// `ours` (see the header for the rule).
fn same_name(ours: &str, theirs: &str) -> bool {
    let bare = if theirs.is_empty() {
        "<anonymous>"
    } else {
        theirs
    };
    if ours == bare {
        return true;
    }
    let word = |w: &str| !w.is_empty() && !w.contains(['.', ' ']);
    match ours.strip_suffix(bare).and_then(|t| t.strip_suffix('.')) {
        Some(ty) => word(ty),
        None => theirs.is_empty() && by_property(ours),
    }
}

/// Whether npstack's name is `T.m` (two words), as V8's stack traces name
/// a function with no name called as the method `m` of a `T`.
fn by_property(ours: &str) -> bool {
    let word = |w: &str| !w.is_empty() && !w.contains(['.', ' ']);
    ours.split_once('.')
        .is_some_and(|(t, m)| word(t) && word(m) && !m.starts_with('<'))
}

fn identical(ours: &Frame, theirs: &Frame) -> bool {
    ours.location == theirs.location && same_name(&ours.name, &theirs.name)
}

/// The two lists aligned: pairs of (ours, theirs), either side missing
/// where the other has a frame too many; identical pairs are those of
/// their longest common subsequence.
fn align<'a>(
    ours: &'a [Frame],
    theirs: &'a [Frame],
) -> Vec<(Option<&'a Frame>, Option<&'a Frame>)> {
    let (n, m) = (ours.len(), theirs.len());
    // lcs[i][j]: the longest common subsequence of ours[i..] and theirs[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if identical(&ours[i], &theirs[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    // Frames between two aligned pairs, paired in order.
    let flush = |out: &mut Vec<_>, a: &'a [Frame], b: &'a [Frame]| {
        for k in 0..a.len().max(b.len()) {
            out.push((a.get(k), b.get(k)));
        }
    };
    let (mut gap_i, mut gap_j) = (0, 0);
    while i < n && j < m {
        if identical(&ours[i], &theirs[j]) && lcs[i][j] == lcs[i + 1][j + 1] + 1 {
            flush(&mut out, &ours[gap_i..i], &theirs[gap_j..j]);
            out.push((Some(&ours[i]), Some(&theirs[j])));
            i += 1;
            j += 1;
            (gap_i, gap_j) = (i, j);
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    flush(&mut out, &ours[gap_i..], &theirs[gap_j..]);
    out
}

/// What one release line scored.
#[derive(Debug, Default)]
struct Score {
    identical: usize,
    total: usize,
    /// By npstack's tier ("missing" where npstack has no frame): identical
    /// and total.
    tiers: std::collections::BTreeMap<String, (usize, usize)>,
    /// Identical frames whose names match only as V8's stack traces name
    /// a function with no name by the property holding it.
    by_property: usize,
    differences: Vec<String>,
}

impl Score {
    fn add(&mut self, what: &str, ours: &[Frame], theirs: &[Frame]) {
        for (k, pair) in align(ours, theirs).into_iter().enumerate() {
            let tier = pair.0.map_or("missing", |o| o.tier.as_str()).to_owned();
            let same = matches!(pair, (Some(o), Some(t)) if identical(o, t));
            let t = self.tiers.entry(tier).or_default();
            self.total += 1;
            t.1 += 1;
            if same {
                self.identical += 1;
                t.0 += 1;
                if let (Some(o), Some(t)) = pair
                    && t.name.is_empty()
                    && by_property(&o.name)
                {
                    self.by_property += 1;
                }
            } else {
                let show = |f: Option<&Frame>| f.map_or("(no frame)".to_owned(), |f| f.to_string());
                self.differences.push(format!(
                    "  {what} frame {k}:\n    ours:     {}\n    debugger: {}",
                    show(pair.0),
                    show(pair.1)
                ));
            }
        }
    }

    fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.identical as f64 / self.total as f64
        }
    }
}

/// Run every package under the debugger on node `major`, compare, report
/// and assert the floor.
fn compare(major: u32) {
    let node = fetched_node(major);
    let floor = FLOOR
        .iter()
        .find(|(m, _)| *m == major)
        .map(|(_, f)| *f)
        .expect("a floor for every release line");
    let mut score = Score::default();
    let mut versions = String::new();
    let mut cored = false;
    // node itself dies now and then under the debugger (node 22 has failed
    // a CHECK in its concurrent inliner): it is restarted, a few times.
    let mut deaths = Vec::new();
    for package in PACKAGES {
        let mut p = Paused::start(&node, package);
        versions = format!(
            "node {} (V8 {})",
            p.ready["node"].as_str().unwrap_or("?"),
            p.ready["v8"].as_str().unwrap_or("?")
        );
        for pause in 1..=PAUSES {
            let theirs = loop {
                match p.paused() {
                    Some(frames) => break frames,
                    None => {
                        deaths.push(format!("{package} before pause {pause}: {}", p.status()));
                        assert!(
                            deaths.len() <= MAX_DEATHS,
                            "{versions}: node died too often under the debugger: {deaths:?}"
                        );
                        p = Paused::start(&node, package);
                    }
                }
            };
            let live = run_tool("npstack", [format!("{}/1", p.pid())]).ok();
            let ours = main_thread_js(&live);
            assert!(
                !theirs.is_empty(),
                "{package} pause {pause}: no debugger frames"
            );
            score.add(&format!("{package} pause {pause}"), &ours, &theirs);
            if !cored {
                cored = true;
                let dir = scratch();
                let core = gcore(p.pid(), dir.path());
                let from_core = main_thread_js(&run_tool_on("npstack", &[], &core).ok());
                std::fs::remove_file(&core).expect("remove the core");
                assert_eq!(
                    from_core, ours,
                    "{versions}, {package} pause {pause}: npstack on a gcore core differs from live"
                );
            }
            p.resume();
        }
    }
    let mut report = format!(
        "debugger comparison: {versions}: {} of {} frames identical ({:.2}%)\n",
        score.identical,
        score.total,
        score.percent()
    );
    report += &format!(
        "  of them {} named by the property holding a function with no name (the debugger's \"\")\n",
        score.by_property
    );
    for d in &deaths {
        report += &format!("  node died ({d}) and was restarted\n");
    }
    for (tier, (same, all)) in &score.tiers {
        report += &format!("  {tier}: {same} of {all}\n");
    }
    // Every differing frame, in a file beside the build: make test shows
    // the figures (it runs this test with --nocapture), not pages of frames.
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("debugger-comparison");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("node-{major}.txt"));
    std::fs::write(&file, score.differences.join("\n") + "\n").unwrap();
    report += &format!(
        "  {} differing frames in {}\n",
        score.differences.len(),
        file.display()
    );
    // One print, so that release lines compared in parallel do not mix.
    print!("{report}");
    assert!(
        score.percent() >= floor,
        "{versions}: {:.2}% of frames identical to the debugger's, below the floor of {floor}%",
        score.percent()
    );
}

#[test]
fn debugger_node_20() {
    compare(20);
}

#[test]
fn debugger_node_22() {
    compare(22);
}

#[test]
fn debugger_node_24() {
    compare(24);
}

#[test]
fn debugger_node_25() {
    compare(25);
}

#[test]
fn debugger_node_26() {
    compare(26);
}

#[test]
fn every_release_line_has_a_floor() {
    assert_eq!(
        FLOOR.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
        NODE_MAJORS,
        "FLOOR (and the debugger_node_* tests) follow NODE_MAJORS"
    );
}

#[test]
fn names_match_by_the_documented_rule_only() {
    assert!(same_name("scan", "scan"));
    assert!(same_name("Object.scan", "scan"));
    assert!(same_name("Foo.scan", "scan"));
    assert!(same_name("pp$5.parseExprOps", "pp$5.parseExprOps"));
    assert!(same_name("<anonymous>", ""));
    assert!(same_name("MessagePort.<anonymous>", ""));
    assert!(!same_name("a.b.scan", "scan"));
    assert!(!same_name(".scan", "scan"));
    assert!(!same_name("rescan", "scan"));
    assert!(!same_name("EventEmitter.<anonymous>", "[kOnMessage]"));
    assert!(same_name("ne.parse", ""));
    assert!(!same_name("scan", ""));
    assert!(!same_name("a.b.parse", ""));
    assert!(!same_name("ne.parse", "lex"));
    assert!(!same_name("Object.scan", "Object.scan2"));
}

#[test]
fn alignment_costs_a_missing_frame_once() {
    let f = |name: &str, line: u32| Frame {
        name: name.to_owned(),
        location: format!("/x.js:{line}:1"),
        tier: String::new(),
    };
    let theirs = [f("a", 1), f("b", 2), f("c", 3), f("d", 4)];
    let ours = [f("a", 1), f("c", 3), f("d", 4)];
    let mut s = Score::default();
    s.add("t", &ours, &theirs);
    assert_eq!((s.identical, s.total), (3, 4));
    let ours = [f("a", 1), f("x", 9), f("c", 3), f("d", 4)];
    let mut s = Score::default();
    s.add("t", &ours, &theirs);
    assert_eq!((s.identical, s.total), (3, 4));
    assert_eq!(s.differences.len(), 1, "{:?}", s.differences);
}
