//! npstack --sample against processes whose CPU time is known: a node
//! script that splits its time by design between two functions (one
//! optimized, one interpreted), on node 20, 22, 24 and 26; a real npm
//! package (acorn) running hot beside V8's own CPU profiler, started on
//! the main thread by a worker through the inspector; a C program with
//! threads that spin and threads that sleep. And the ways a run ends:
//! interrupted (SIGINT) or by the target's exit, each with every output
//! written whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nptools_tests::*;
use serde_json::Value;

fn split_script() -> PathBuf {
    workspace().join("tests/fixtures/sample/split.js")
}

/// node running split.js (see its header), once it is ready.
fn start_split(node: &Path) -> Proc {
    Spawn::new(node)
        .arg("--allow-natives-syntax")
        .arg("--no-sparkplug")
        .arg(split_script())
        .start()
}

/// The folded file's lines: the stack's frames and its count; fails on a
/// line that is not `frame;frame;... COUNT`.
fn folded(path: &Path) -> Vec<(Vec<String>, u64)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let (stack, count) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a folded line: {line:?}"));
            let count = count
                .parse()
                .unwrap_or_else(|_| panic!("no count at the end of {line:?}"));
            (stack.split(';').map(str::to_owned).collect(), count)
        })
        .collect()
}

/// Samples whose stack holds a frame naming `function`, over those holding
/// any of `functions`.
fn shares(lines: &[(Vec<String>, u64)], functions: &[&str]) -> Vec<f64> {
    let holds = |frames: &[String], f: &str| {
        frames
            .iter()
            .any(|fr| fr.starts_with(&format!("{f} (")) || fr == f)
    };
    let counts: Vec<u64> = functions
        .iter()
        .map(|f| {
            lines
                .iter()
                .filter(|(fr, _)| holds(fr, f))
                .map(|(_, n)| n)
                .sum()
        })
        .collect();
    let total: u64 = counts.iter().sum();
    assert!(total > 0, "no sample holds any of {functions:?}");
    counts
        .iter()
        .map(|&c| c as f64 / total as f64 * 100.0)
        .collect()
}

/// The SVG parses as XML and its frames' titles name `functions`.
fn check_svg(path: &Path, functions: &[&str]) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    // inferno's SVG starts with a DOCTYPE, which roxmltree refuses unless
    // asked.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, options)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    for f in functions {
        assert!(
            titles.iter().any(|t| t.starts_with(f)),
            "no frame of {} names {f}",
            path.display()
        );
    }
}

/// Two thirds of the main thread's samples in optimizedWork, one third in
/// interpretedWork, on each release line; the flame graph names both.
#[test]
fn split_by_design_on_each_node() {
    let majors = [20, 22, 24, 26];
    let dir = scratch();
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = majors
            .iter()
            .map(|&major| {
                let dir = dir.path();
                s.spawn(move || {
                    let node = fetched_node(major);
                    let target = start_split(&node);
                    let fold = dir.join(format!("split-{major}.folded"));
                    let svg = dir.join(format!("split-{major}.svg"));
                    let run = run_tool(
                        "npstack",
                        [
                            "--sample".as_ref(),
                            "2s".as_ref(),
                            "--rate".as_ref(),
                            "199".as_ref(),
                            "--folded".as_ref(),
                            fold.as_os_str(),
                            "--flamegraph".as_ref(),
                            svg.as_os_str(),
                            target.pid_arg().as_ref(),
                        ],
                    );
                    let report = run.ok();
                    let lines = folded(&fold);
                    let got = shares(&lines, &["optimizedWork", "interpretedWork"]);
                    let samples: u64 = lines.iter().map(|(_, n)| n).sum();
                    check_svg(&svg, &["optimizedWork", "interpretedWork"]);
                    let off = (got[0] - 200.0 / 3.0).abs();
                    eprintln!(
                        "node {major}: optimizedWork {:.1}%, interpretedWork {:.1}% of {samples} samples",
                        got[0], got[1]
                    );
                    (off > 8.0).then(|| {
                        format!(
                            "node {major}: optimizedWork has {:.1}% (design 66.7%), \
                             interpretedWork {:.1}% (33.3%), of {samples} samples; report:\n{report}",
                            got[0], got[1]
                        )
                    })
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|r| r.join().expect("a node's run panicked"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// SIGINT in the middle of a 60 s run ends it at once, with every file
/// written whole, the target running, and the interruption said.
#[test]
fn interrupted_run_writes_complete_files() {
    let target = start_split(&node());
    let dir = scratch();
    let (fold, svg, speed) = (
        dir.path().join("f"),
        dir.path().join("f.svg"),
        dir.path().join("f.speedscope.json"),
    );
    let mut child = Command::new(tool("npstack"))
        .arg("--sample")
        .arg("60s")
        .arg("--folded")
        .arg(&fold)
        .arg("--flamegraph")
        .arg(&svg)
        .arg("--speedscope")
        .arg(&speed)
        .arg(target.pid_arg())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start npstack");
    std::thread::sleep(Duration::from_millis(1200));
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT to npstack");
    let out = loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            break child.wait_with_output().expect("output");
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "npstack did not end after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "npstack failed: {stderr}");
    assert!(stderr.contains("interrupted"), "stderr: {stderr}");
    let lines = folded(&fold);
    assert!(!lines.is_empty(), "no samples written");
    shares(&lines, &["optimizedWork", "interpretedWork"]);
    check_svg(&svg, &["optimizedWork"]);
    let doc: Value = serde_json::from_slice(&std::fs::read(&speed).expect("speedscope file"))
        .expect("the speedscope file is JSON");
    assert_eq!(
        doc["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    let profile = &doc["profiles"][0];
    assert_eq!(profile["type"], "sampled");
    let frames = doc["shared"]["frames"].as_array().expect("frames").len();
    let samples = profile["samples"].as_array().expect("samples");
    assert_eq!(
        samples.len(),
        profile["weights"].as_array().expect("weights").len()
    );
    for s in samples {
        for i in s.as_array().expect("a stack") {
            assert!((i.as_u64().expect("an index") as usize) < frames);
        }
    }
    // Not left stopped: every thread's state is one of a running process.
    for (tid, state) in task_states(target.pid()) {
        assert!(
            state != 't' && state != 'T',
            "thread {tid} left in state {state}"
        );
    }
}

/// A target that exits mid-run ends it, with the samples until then written
/// and its exit said.
#[test]
fn target_exit_ends_the_run() {
    let script = "const end = Date.now() + 900; let s = 0; \
                  function busyUntilExit() { while (Date.now() < end) s++; } \
                  console.log('ready'); busyUntilExit();";
    let target = Spawn::new(node()).arg("-e").arg(script).start();
    let dir = scratch();
    let fold = dir.path().join("f");
    let started = Instant::now();
    let run = run_tool(
        "npstack",
        [
            "--sample".as_ref(),
            "30s".as_ref(),
            "--folded".as_ref(),
            fold.as_os_str(),
            target.pid_arg().as_ref(),
        ],
    );
    run.ok();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run did not end when the target exited"
    );
    assert!(run.stderr.contains("exited"), "stderr: {}", run.stderr);
    let lines = folded(&fold);
    assert!(
        lines
            .iter()
            .any(|(f, _)| f.iter().any(|n| n.starts_with("busyUntilExit"))),
        "no sample names busyUntilExit: {lines:?}"
    );
}

/// By default only threads on a CPU are counted; --idle counts the
/// sleepers too, under their blocking frame.
#[test]
fn idle_counts_sleeping_threads() {
    let target = Spawn::new(fixture("spinsleep")).start();
    let dir = scratch();
    let count = |idle: bool| -> HashMap<String, u64> {
        let fold = dir.path().join(format!("f-{idle}"));
        let mut args: Vec<std::ffi::OsString> = vec!["--sample".into(), "1s".into()];
        if idle {
            args.push("--idle".into());
        }
        args.extend(["--folded".into(), fold.clone().into_os_string()]);
        args.push(target.pid_arg().into());
        run_tool("npstack", &args).ok();
        let mut by_thread = HashMap::new();
        for (frames, n) in folded(&fold) {
            *by_thread.entry(frames[0].clone()).or_insert(0) += n;
            let leafish = frames.iter().any(|f| f == "spin_here" || f == "sleep_here");
            assert!(leafish || frames[0] != "spinner", "{frames:?}");
        }
        by_thread
    };
    let busy = count(false);
    assert!(busy.get("spinner").copied().unwrap_or(0) > 0, "{busy:?}");
    assert!(
        !busy.contains_key("sleeper"),
        "sleepers counted without --idle: {busy:?}"
    );
    let all = count(true);
    assert!(all.get("sleeper").copied().unwrap_or(0) > 0, "{all:?}");
    assert!(all.get("spinner").copied().unwrap_or(0) > 0, "{all:?}");
}

/// A core cannot be sampled: a usage error on one line.
#[test]
fn a_core_is_a_usage_error() {
    let core = workspace().join("testdata/core.tiny");
    let run = run_tool(
        "npstack",
        ["--sample".as_ref(), "1s".as_ref(), core.as_os_str()],
    );
    assert_eq!(run.code(), 2, "stderr: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("live process"), "{}", run.stderr);
    let run = run_tool("npstack", ["--sample", "soon", "1"]);
    assert_eq!(run.code(), 2, "stderr: {}", run.stderr);
}

/// A function as both profiles name it: the last part of its name (V8's
/// profile names acorn's `pp$5.parseIdent` by the variable it was assigned
/// through, npstack `Parser.parseIdent` by its receiver) and its script.
fn function_key(name: &str, script: &str) -> (String, String) {
    let last = name.rsplit('.').next().unwrap_or(name);
    let last = match last {
        "" | "<anonymous>" => "(anonymous)",
        l => l,
    };
    (
        last.to_owned(),
        script.trim_start_matches("file://").to_owned(),
    )
}

/// The ten functions with the most self time in V8's profiler of a real
/// npm package running hot (acorn parsing its own source): npstack's share
/// of each within 5 points, and in the same order where V8's shares differ
/// by more. Self time is counted as V8's profiler counts it (see below),
/// over the samples in JavaScript: V8 counts the main thread's garbage
/// collection as wall time (also while it waits for the collector's
/// helper threads), which a sampler of threads on a CPU does not see.
#[test]
fn agrees_with_v8s_profiler() {
    let modules = workspace().join("target/npm/node_modules");
    let modules = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| PathBuf::from(t).join("npm/node_modules"))
        .filter(|p| p.is_dir())
        .unwrap_or(modules);
    assert!(
        modules.join("acorn").is_dir(),
        "acorn is not in {}: run tests/fetch-packages.sh (make test does)",
        modules.display()
    );
    let dir = scratch();
    let v8_out = dir.path().join("v8.json");
    let target = Spawn::new(node())
        .arg(workspace().join("tests/fixtures/sample/profile.js"))
        .arg(&modules)
        .arg("5")
        .arg(&v8_out)
        .start();
    let run = run_tool(
        "npstack",
        [
            "--sample",
            "4500ms",
            "--rate",
            "199",
            "--json",
            &format!("{}/1", target.pid()),
        ],
    );
    let ours: Value = serde_json::from_str(&run.ok()).expect("--json");
    eventually(20, "V8's profile", || {
        std::fs::metadata(&v8_out)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    std::thread::sleep(Duration::from_millis(200));
    let v8: Value = serde_json::from_slice(&std::fs::read(&v8_out).unwrap()).expect("V8 profile");

    let mut v8_self: HashMap<(String, String), f64> = HashMap::new();
    for f in v8["functions"].as_array().expect("functions") {
        let name = f["name"].as_str().unwrap_or("");
        if name.starts_with('(') && f["url"].as_str() == Some("") {
            continue; // (program), (idle), (garbage collector), (root)
        }
        let key = function_key(name, f["url"].as_str().unwrap_or(""));
        *v8_self.entry(key).or_default() += f["samples"].as_f64().unwrap();
    }
    let mut our_self: HashMap<(String, String), f64> = HashMap::new();
    for s in ours["stacks"].as_array().expect("stacks") {
        let frames = s["frames"].as_array().unwrap();
        // V8's convention: a sample whose pc is in a JavaScript function's
        // own code counts for that function, not for one inlined there (it
        // expands inlined calls only in frames below the leaf); a sample in
        // native code counts for the innermost JavaScript frame, inlined
        // or not.
        let own = frames.iter().rev().find(|f| f["inlined"] != true);
        let leaf = match own {
            Some(f) if f["kind"] == "js" => f,
            _ => match frames.iter().rev().find(|f| f["kind"] == "js") {
                Some(f) => f,
                None => continue,
            },
        };
        let script = leaf["script"].as_str().unwrap_or("");
        let name = leaf["name"].as_str().unwrap();
        let name = name.strip_suffix(&format!(" ({script})")).unwrap_or(name);
        *our_self.entry(function_key(name, script)).or_default() += s["count"].as_f64().unwrap();
    }
    let percent = |m: &mut HashMap<(String, String), f64>| {
        let total: f64 = m.values().sum();
        assert!(total > 0.0, "no JavaScript samples");
        m.values_mut().for_each(|v| *v *= 100.0 / total);
        total
    };
    let (v8_total, our_total) = (percent(&mut v8_self), percent(&mut our_self));
    let mut top: Vec<(&(String, String), f64)> = v8_self.iter().map(|(k, &v)| (k, v)).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(10);
    let ours_of = |k: &(String, String)| our_self.get(k).copied().unwrap_or(0.0);
    let mut table = format!(
        "{:<28} {:>6} {:>8}   (V8: {v8_total} samples, npstack: {our_total})\n",
        "function", "V8 %", "npstack %"
    );
    let mut bad = Vec::new();
    for (k, share) in &top {
        let mine = ours_of(k);
        table.push_str(&format!("{:<28} {share:>6.1} {mine:>8.1}\n", k.0));
        if (mine - share).abs() > 5.0 {
            bad.push(format!("{}: V8 {share:.1}%, npstack {mine:.1}%", k.0));
        }
    }
    for (i, (a, sa)) in top.iter().enumerate() {
        for (b, sb) in &top[i + 1..] {
            if sa - sb > 5.0 && ours_of(a) <= ours_of(b) {
                bad.push(format!("order: {} before {} in V8's profile", a.0, b.0));
            }
        }
    }
    eprintln!("{table}");
    assert!(bad.is_empty(), "{}\n{table}", bad.join("\n"));
}

/// A thread asleep in state D when it is seized cannot stop until it wakes
/// (here from vfork, after 700 ms): the run lets go of it at the next tick
/// once its stop has come, instead of leaving it stopped to the end.
#[test]
fn a_thread_seized_in_state_d_is_let_go_once_it_wakes() {
    let target = Spawn::new(fixture("vforker")).start();
    let tid: i32 = target.ready_field("tid").unwrap().parse().unwrap();
    let state = || {
        std::fs::read_to_string(format!("/proc/{}/task/{tid}/stat", target.pid()))
            .ok()
            .and_then(|s| s.rsplit_once(") ")?.1.chars().next())
    };
    assert_eq!(state(), Some('D'), "the thread is not in vfork");
    let mut npstack = Command::new(tool("npstack"))
        .args([
            "--sample",
            "4s",
            "--idle",
            "--rate",
            "50",
            &target.pid_arg(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Past the vfork's end, while the run goes on: the thread runs, not
    // held in a tracing stop (at most now and then, for a sample).
    std::thread::sleep(Duration::from_millis(1800));
    let stopped = (0..20)
        .filter(|_| {
            std::thread::sleep(Duration::from_millis(50));
            state() == Some('t')
        })
        .count();
    let status = npstack.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        stopped < 10,
        "the thread was in a tracing stop at {stopped} of 20 looks"
    );
    assert_ne!(state(), Some('t'), "left stopped after the run");
}
