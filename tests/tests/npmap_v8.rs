//! V8's heap in npmap, against V8's own figures: node (tests/fixtures/
//! v8heap.js) prints `v8.getHeapSpaceStatistics()` and
//! `process.memoryUsage().heapTotal` on its ready line after collecting
//! garbage, then blocks its JavaScript thread; npmap's `v8` pages, per space
//! and in all, must be what V8 says it committed, live, on the kernel's core
//! of the same process, and on gdb's; `-x`'s RSS what V8 says is resident.
//! A Buffer is not V8's heap; a C program has no V8 at all.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use nptools_tests::*;
use serde_json::Value;

const PAGE: u64 = 256 << 10;
const MIB: u64 = 1 << 20;

/// What the node said on its ready line.
#[derive(Debug)]
struct Truth {
    committed: u64,
    physical: u64,
    heap_total: u64,
    /// space name -> (space_size, physical_space_size)
    spaces: BTreeMap<String, (u64, u64)>,
}

fn truth(p: &Proc) -> Truth {
    let num = |k: &str| -> u64 {
        p.ready_field(k)
            .unwrap_or_else(|| panic!("no {k} in {}", p.ready_line))
            .parse()
            .unwrap()
    };
    let spaces = p
        .ready_line
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("space."))
        .map(|w| {
            let (name, v) = w.split_once('=').unwrap();
            let (s, ph) = v.split_once(',').unwrap();
            (name.to_owned(), (s.parse().unwrap(), ph.parse().unwrap()))
        })
        .collect();
    Truth {
        committed: num("committed"),
        physical: num("physical"),
        heap_total: num("heap_total"),
        spaces,
    }
}

/// node `major` (0: the system's) holding about `mb` MB of JavaScript
/// objects, a large array of `large` bytes and a Buffer of `native`.
fn holder(major: u32, mb: u64, large: u64, native: u64) -> Spawn {
    let node = if major == 0 {
        node()
    } else {
        fetched_node(major)
    };
    Spawn::new(node)
        .arg("--expose-gc")
        .arg("--max-old-space-size=4096")
        .arg(workspace().join("tests/fixtures/v8heap.js"))
        .arg(mb.to_string())
        .arg(large.to_string())
        .arg(native.to_string())
}

fn summary(operand: &OsStr, x: bool) -> BTreeMap<String, Vec<u64>> {
    let args: &[&str] = if x {
        &["--summary", "-x"]
    } else {
        &["--summary"]
    };
    let run = run_tool_on("npmap", args, operand);
    assert!(
        !run.stderr.contains("not recognised"),
        "layout not recognised: {}",
        run.stderr
    );
    run.ok()
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            let name = f.next().unwrap().to_owned();
            (name, f.map(|v| v.parse().unwrap_or(u64::MAX)).collect())
        })
        .collect()
}

fn close(what: &str, got: u64, want: u64, slack: u64) {
    assert!(
        got.abs_diff(want) <= slack,
        "{what}: npmap {got}, V8 {want} (slack {slack})"
    );
}

/// npmap's V8 figures for `operand` against what the node said.
fn check(operand: &OsStr, t: &Truth, live: bool) {
    let what = operand.to_string_lossy();
    assert_eq!(t.committed, t.heap_total, "V8's two figures agree");
    let doc: Value =
        serde_json::from_str(&run_tool_on("npmap", &["--json"], operand).ok()).unwrap();
    assert!(doc["v8"]["layout"].is_string(), "{what}: {}", doc["v8"]);
    // Per space, from the labelled mappings.
    let mut spaces: BTreeMap<String, u64> = BTreeMap::new();
    for m in doc["mappings"].as_array().unwrap() {
        let kind = m["kind"].as_str().unwrap();
        let name = m["name"].as_str().unwrap();
        assert_eq!(kind.starts_with("v8_"), name.starts_with("[ v8 "), "{m}");
        assert!(!(kind.starts_with("v8_") && name.contains("anon")), "{m}");
        if let Some(space) = m["v8_space"].as_str() {
            *spaces.entry(space.to_owned()).or_default() += m["size_kib"].as_u64().unwrap() * 1024;
        }
    }
    let read_only = spaces.remove("read_only_space").unwrap_or(0);
    assert!(
        read_only > 0 && read_only <= 2 * MIB,
        "{what}: read-only {read_only}"
    );
    // A few pages apart at most: V8's sweeper threads still run while
    // JavaScript is blocked.
    for (name, &(size, _)) in &t.spaces {
        let got = spaces.get(name).copied().unwrap_or(0);
        close(
            &format!("{what}: {name}"),
            got,
            size,
            4 * PAGE + size / 1000,
        );
    }
    for name in spaces.keys() {
        assert!(
            t.spaces.contains_key(name),
            "{what}: {name} is not V8's: {spaces:?}"
        );
    }
    // In all: committed, and the read-only space V8 counts as 0.
    let s = summary(operand, false);
    close(
        &format!("{what}: v8"),
        s["v8"][0] * 1024,
        t.committed + read_only,
        4 * PAGE + t.committed / 1000,
    );
    let categories: u64 = s
        .iter()
        .filter(|(k, _)| *k != "total")
        .map(|(_, v)| v[0])
        .sum();
    assert_eq!(categories, s["total"][0], "{what}: {s:?}");
    // The code range's reservation, apart.
    assert!(s["v8-reserved"][0] * 1024 >= 256 * MIB, "{what}: {s:?}");
    if live {
        // Resident: what V8 calls physical (it counts a page it committed
        // but never touched, so a few pages apart).
        let x = summary(operand, true);
        let rss = x["v8"][1] * 1024;
        close(
            &format!("{what}: v8 RSS"),
            rss,
            t.physical + read_only,
            8 * PAGE + t.physical / 50,
        );
        assert_eq!(
            x["v8-reserved"][1], 0,
            "{what}: the reservation is not resident: {x:?}"
        );
        // The seed pipeline no longer counts V8's pages as anon. grep anon
        // picks [ anon ], [ shared anon ] and anon_inode: files (node's
        // io_uring rings), never [ v8 ... ]. Three reads of a live process
        // agree once it holds still (its threads map and unmap memory of
        // their own).
        eventually(10, "the seed pipeline's anon sum", || {
            let doc: Value =
                serde_json::from_str(&run_tool_on("npmap", &["--json"], operand).ok()).unwrap();
            let s = summary(operand, false);
            let sum = seed_anon_sum(&what);
            let anon_inodes: u64 = doc["mappings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["category"] == "file" && m["name"].as_str().unwrap().contains("anon"))
                .map(|m| m["size_kib"].as_u64().unwrap())
                .sum();
            let want = s["anon"][0] + s["shared"][0] + anon_inodes;
            (sum == want)
                .then_some(())
                .ok_or(format!("{what}: seed sum {sum}, categories {want}"))
        });
    }
}

/// A 10 MB heap on node `major`, live and on its kernel core.
fn live_and_kernel_core(major: u32) {
    let mut t = None;
    let (_dir, core) = kernel_core(&holder(major, 10, 0, 0), |p| {
        let truth = truth(p);
        check(p.pid_arg().as_ref(), &truth, true);
        t = Some(truth);
    });
    check(core.as_os_str(), &t.unwrap(), false);
}

#[test]
fn node_20_live_and_kernel_core() {
    live_and_kernel_core(20);
}

#[test]
fn node_22_live_and_kernel_core() {
    live_and_kernel_core(22);
}

#[test]
fn node_24_live_and_kernel_core() {
    live_and_kernel_core(24);
}

#[test]
fn node_26_live_and_kernel_core() {
    live_and_kernel_core(26);
}

#[test]
fn system_node_20_on_gcore() {
    let p = holder(0, 10, 4 * MIB, 0).start();
    let t = truth(&p);
    let dir = scratch();
    let core = gcore(p.pid(), dir.path());
    check(core.as_os_str(), &t, false);
}

/// A 1 GB heap on node `major` (with a large array beside the small
/// objects): live and on the kernel's core of it.
fn one_gigabyte_heap(major: u32) {
    let mut t = None;
    let (_dir, core) = kernel_core(&holder(major, 1000, 8 * MIB, 0), |p| {
        let truth = truth(p);
        assert!(truth.committed >= 1000 * MIB, "{truth:?}");
        check(p.pid_arg().as_ref(), &truth, true);
        t = Some(truth);
    });
    check(core.as_os_str(), &t.unwrap(), false);
}

#[test]
fn one_gigabyte_heap_node_20() {
    one_gigabyte_heap(20);
}

#[test]
fn one_gigabyte_heap_node_22() {
    one_gigabyte_heap(22);
}

#[test]
fn one_gigabyte_heap_node_24() {
    one_gigabyte_heap(24);
}

#[test]
fn one_gigabyte_heap_node_26() {
    one_gigabyte_heap(26);
}

/// 100 MB in a Buffer is native memory: anon (or heap), never v8.
#[test]
fn buffer_is_not_v8() {
    let p = holder(24, 10, 0, 100 * MIB).start();
    let t = truth(&p);
    check(p.pid_arg().as_ref(), &t, true);
    let s = summary(p.pid_arg().as_ref(), false);
    assert!((s["anon"][0] + s["heap"][0]) * 1024 >= 100 * MIB, "{s:?}");
    let listing = run_tool_on("npmap", &[], p.pid_arg()).ok();
    let buffer = listing.lines().find(|l| {
        let size: u64 = l
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.strip_suffix('K'))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        size * 1024 >= 100 * MIB && size * 1024 < 110 * MIB
    });
    let buffer = buffer.unwrap_or_else(|| panic!("no 100 MB mapping: {listing}"));
    assert!(buffer.ends_with("[ anon ]"), "{buffer}");
}

/// A C program: no V8 pages, nothing said about V8.
#[test]
fn c_program_has_no_v8() {
    let p = Spawn::new(fixture("npmap")).start();
    let run = run_tool_on("npmap", &["--summary"], p.pid_arg());
    assert_eq!(run.stderr, "");
    let s = run.ok();
    assert!(s.contains("\nv8 0\nv8-reserved 0\n"), "{s}");
    let doc: Value =
        serde_json::from_str(&run_tool_on("npmap", &["--json"], p.pid_arg()).ok()).unwrap();
    assert_eq!(doc["v8"]["layout"], Value::Null);
    assert_eq!(doc["v8"]["unrecognised"], Value::Null);
    assert!(
        doc["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["v8_space"].is_null())
    );
    // --no-v8 leaves V8 out of a node too.
    let n = holder(24, 10, 0, 0).start();
    let s = run_tool_on("npmap", &["--summary", "--no-v8"], n.pid_arg()).ok();
    assert!(s.contains("\nv8 0\nv8-reserved 0\n"), "{s}");
}
