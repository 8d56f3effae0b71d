//! npmap: the address-space map of a fixture whose mappings we know, live,
//! from a gcore core and from a kernel core; the seed pipeline; VmSize; an
//! idle node process; a map that changes while it is read; JSON; escaping.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use nptools_tests::*;

const MIB_KIB: u64 = 1024;

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    start: u64,
    size_kib: u64,
    mode: String,
    name: String,
}

impl Line {
    fn end(&self) -> u64 {
        self.start + self.size_kib * 1024
    }
    fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end()
    }
}

/// A default listing: the header, the mappings and the total.
#[derive(Debug)]
struct Listing {
    header: String,
    lines: Vec<Line>,
    total: u64,
}

fn parse_listing(text: &str) -> Listing {
    let mut rows = text.lines();
    let header = rows.next().expect("header line").to_owned();
    let mut lines = Vec::new();
    let mut total = None;
    for row in rows {
        if let Some(t) = row.strip_prefix(" total ") {
            assert!(total.is_none(), "one total line");
            total = Some(t.trim().strip_suffix('K').unwrap().parse().unwrap());
            continue;
        }
        assert!(total.is_none(), "nothing after the total: {row:?}");
        // ADDRESS(16) SIZEK MODE  NAME: the address starts the line.
        let (addr, rest) = row.split_at(16);
        let rest = rest.trim_start();
        let (size, rest) = rest.split_once("K ").unwrap_or_else(|| panic!("{row:?}"));
        let rest = rest.trim_start();
        let (mode, name) = rest.split_once(' ').unwrap_or_else(|| panic!("{row:?}"));
        lines.push(Line {
            start: u64::from_str_radix(addr, 16).unwrap_or_else(|_| panic!("{row:?}")),
            size_kib: size.trim().parse().unwrap_or_else(|_| panic!("{row:?}")),
            mode: mode.to_owned(),
            name: name.trim_start().to_owned(),
        });
    }
    Listing {
        header,
        lines,
        total: total.expect("a total line"),
    }
}

/// The category a name belongs to, as the man page defines it.
fn category(name: &str) -> &'static str {
    match name {
        "[ heap ]" | "[ heap arena ]" => "heap",
        "[ stack ]" => "stack",
        n if n.starts_with("[ stack tid=") => "stack",
        "[ anon ]" => "anon",
        n if n.starts_with("[anon:") => "anon",
        "[ v8 reserved ]" => "v8-reserved",
        n if n.starts_with("[ v8 ") => "v8",
        "[ shared anon ]" => "shared",
        n if n.starts_with("[anon_shmem:") => "shared",
        n if n.starts_with("[ ") => "other",
        _ => "file",
    }
}

/// `--summary` output as name -> columns.
fn parse_summary(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split(' ');
        let name = f.next().unwrap().to_owned();
        let cols: Vec<String> = f.map(str::to_owned).collect();
        assert!(out.insert(name, cols).is_none(), "one line per name");
    }
    let names: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "anon",
            "file",
            "heap",
            "other",
            "shared",
            "stack",
            "total",
            "v8",
            "v8-reserved"
        ],
        "stable names: {text}"
    );
    out
}

fn size_of(summary: &BTreeMap<String, Vec<String>>, name: &str) -> u64 {
    summary[name][0].parse().unwrap()
}

fn npmap<S: AsRef<OsStr>>(args: &[&str], operand: S) -> Run {
    run_tool_on("npmap", args, operand)
}

/// The thread ids of the `[ stack tid=N ]` lines, sorted.
fn stack_tids(listing: &Listing) -> Vec<i32> {
    let mut tids: Vec<i32> = listing
        .lines
        .iter()
        .filter_map(|l| l.name.strip_prefix("[ stack tid=")?.strip_suffix(" ]"))
        .map(|t| t.parse().unwrap())
        .collect();
    tids.sort_unstable();
    tids
}

/// Addresses ascend without overlapping, and the total adds up.
fn check_listing(listing: &Listing, what: &str) {
    for w in listing.lines.windows(2) {
        assert!(w[0].end() <= w[1].start, "{what}: {w:?}");
    }
    assert_eq!(
        listing.total,
        listing.lines.iter().map(|l| l.size_kib).sum::<u64>(),
        "{what}: the total adds up"
    );
}

/// Every summary category equals the sum of its mappings in the listing,
/// and total equals the listing's total.
fn check_summary_matches_listing(listing: &Listing, summary: &BTreeMap<String, Vec<String>>) {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for l in &listing.lines {
        *sums.entry(category(&l.name)).or_default() += l.size_kib;
    }
    for name in [
        "heap",
        "v8",
        "v8-reserved",
        "anon",
        "stack",
        "file",
        "shared",
        "other",
    ] {
        assert_eq!(
            size_of(summary, name),
            sums.get(name).copied().unwrap_or(0),
            "{name} is the sum of its mappings"
        );
    }
    assert_eq!(size_of(summary, "total"), listing.total);
}

/// What the fixture said it made.
#[derive(Debug)]
struct Made {
    big: u64,
    brk: u64,
    arena: u64,
    shared: u64,
    tids: Vec<i32>,
}

fn made(p: &Proc) -> Made {
    let field = |k: &str| -> &str {
        p.ready_field(k)
            .unwrap_or_else(|| panic!("{k} in {:?}", p.ready_line))
    };
    let addr = |k: &str| {
        let v = field(k);
        if v == "(nil)" {
            0
        } else {
            u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
        }
    };
    Made {
        big: addr("big"),
        brk: addr("brk"),
        arena: addr("arena"),
        shared: addr("shared"),
        tids: field("tids")
            .split(',')
            .map(|t| t.parse().unwrap())
            .collect(),
    }
}

/// Wait until every thread of `pid` is blocked in pause(2), so that its
/// stack pointer is known without stopping it.
fn wait_until_all_paused(pid: i32) {
    const SYS_PAUSE: &str = "34 ";
    eventually(10, &format!("threads of {pid} never paused"), || {
        let busy: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .filter(|t| {
                !std::fs::read_to_string(t.path().join("syscall"))
                    .is_ok_and(|s| s.starts_with(SYS_PAUSE))
            })
            .map(|t| t.file_name())
            .collect();
        if busy.is_empty() {
            Ok(())
        } else {
            Err(format!("not in pause(2): {busy:?}"))
        }
    });
}

/// Check a fixture's report against what it made: the same checks for a
/// live process and for its cores. Returns the listing and the summary.
fn check_fixture_report(
    operand: &OsStr,
    m: &Made,
    core: bool,
) -> (Listing, BTreeMap<String, Vec<String>>) {
    let r = npmap(&[], operand);
    let text = r.ok();
    assert!(r.stderr.is_empty(), "no warning: {}", r.stderr);
    let listing = parse_listing(&text);
    let find = |addr: u64| {
        listing
            .lines
            .iter()
            .find(|l| l.contains(addr))
            .unwrap_or_else(|| panic!("no mapping holds {addr:#x}:\n{text}"))
    };
    check_listing(&listing, &operand.to_string_lossy());
    // The 64 MiB anonymous mapping.
    let big = find(m.big);
    assert_eq!(big.start, m.big);
    assert_eq!(big.size_kib, 64 * MIB_KIB);
    assert_eq!(big.name, "[ anon ]");
    assert!(big.mode.starts_with("rw-"), "{big:?}");
    // The brk heap: 64 blocks of 4 KiB.
    let heap = find(m.brk);
    assert_eq!(heap.name, "[ heap ]", "{text}");
    assert!(heap.size_kib >= 256, "{heap:?}");
    assert_eq!(
        listing
            .lines
            .iter()
            .filter(|l| l.name == "[ heap ]")
            .count(),
        1
    );
    // The thread arena: a 64 MiB-aligned window of rw part and reserved tail.
    let arena = find(m.arena);
    assert_eq!(arena.name, "[ heap arena ]", "{text}");
    assert_eq!(arena.start % (64 << 20), 0);
    let window: Vec<&Line> = listing
        .lines
        .iter()
        .filter(|l| l.start >= arena.start && l.start < arena.start + (64 << 20))
        .collect();
    assert!(
        window.iter().all(|l| l.name == "[ heap arena ]"),
        "{window:?}"
    );
    assert_eq!(window.iter().map(|l| l.size_kib).sum::<u64>(), 64 * MIB_KIB);
    // Thread stacks, labelled with their TIDs, and the main thread's stack.
    let labelled = stack_tids(&listing);
    let mut want = m.tids.clone();
    want.sort_unstable();
    assert_eq!(labelled, want, "thread stacks:\n{text}");
    assert_eq!(
        listing
            .lines
            .iter()
            .filter(|l| l.name == "[ stack ]")
            .count(),
        1
    );
    if m.shared != 0 {
        let s = find(m.shared);
        assert_eq!(s.name, "[ shared anon ]", "{text}");
        assert_eq!(s.size_kib, MIB_KIB);
    }
    if core {
        assert!(listing.header.starts_with("core '"), "{}", listing.header);
        // Kernel cores keep only the first page of an ELF file's text.
        assert!(
            listing.lines.iter().any(|l| l.mode.ends_with('*')),
            "some mapping is not wholly in the core:\n{text}"
        );
        assert!(!big.mode.ends_with('*'), "{big:?}");
    } else {
        assert!(listing.lines.iter().all(|l| !l.mode.contains('*')));
    }

    let s = npmap(&["--summary"], operand);
    let summary = parse_summary(&s.ok());
    check_summary_matches_listing(&listing, &summary);
    assert!(size_of(&summary, "heap") >= 64 * MIB_KIB + heap.size_kib);
    assert!(size_of(&summary, "anon") >= 64 * MIB_KIB);
    assert!(size_of(&summary, "stack") > 0);
    assert!(size_of(&summary, "file") > 0);
    (listing, summary)
}

/// `-x`: a live process's RSS/Anon/Locked, a core's Dumped; the total is
/// `listing_total`, the default listing's.
fn check_extended(operand: &OsStr, m: &Made, core: bool, listing_total: u64) {
    let text = npmap(&["-x"], operand).ok();
    let rows: Vec<&str> = text.lines().collect();
    let titles: Vec<&str> = rows[1].split_whitespace().collect();
    let want: &[&str] = if core {
        &[
            "Address", "Kbytes", "RSS", "Anon", "Locked", "Dumped", "Mode", "Mapped", "File",
        ]
    } else {
        &[
            "Address", "Kbytes", "RSS", "Anon", "Locked", "Mode", "Mapped", "File",
        ]
    };
    assert_eq!(titles, want, "{text}");
    let big = rows
        .iter()
        .find(|r| r.starts_with(&format!("{:016x}", m.big)))
        .unwrap_or_else(|| panic!("{text}"));
    let f: Vec<&str> = big.split_whitespace().collect();
    assert_eq!(f[1], (64 * MIB_KIB).to_string());
    if core {
        assert_eq!(&f[2..5], ["-", "-", "-"]);
        // The kernel and gcore dump private anonymous memory whole.
        assert_eq!(f[5], (64 * MIB_KIB).to_string(), "{big}");
    } else {
        // 16 MiB touched (a little more if huge pages were used).
        let rss: u64 = f[2].parse().unwrap();
        let anon: u64 = f[3].parse().unwrap();
        assert!((16 * MIB_KIB..=18 * MIB_KIB).contains(&rss), "{big}");
        assert_eq!(rss, anon, "{big}");
    }
    let n = rows.len();
    assert!(rows[n - 2].starts_with("----------------"), "{text}");
    let totals: Vec<&str> = rows[n - 1].split_whitespace().collect();
    assert_eq!(&totals[..2], ["total", "Kb"]);
    assert_eq!(totals[2], listing_total.to_string());
}

fn fixture_spawn() -> Spawn {
    Spawn::new(fixture("npmap"))
        .env("NPT_THREADS", "4")
        .env("NPT_SHARED", "1")
}

#[test]
fn fixture_live_gcore_and_kernel_core() {
    let spawn = fixture_spawn();
    let p = spawn.start();
    wait_until_all_paused(p.pid());
    let m = made(&p);
    assert_eq!(m.tids.len(), 4);
    let pid = p.pid_arg();
    let (listing, live) = check_fixture_report(pid.as_ref(), &m, false);
    check_extended(pid.as_ref(), &m, false, listing.total);

    // total is VmSize.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let vmsize: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix(" kB"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(size_of(&live, "total"), vmsize);

    // With -x, RSS is a third column: of the heap, at least what was touched.
    let x = parse_summary(&npmap(&["--summary", "-x"], &pid).ok());
    assert!(x.values().all(|c| c.len() == 2), "{x:?}");
    assert_eq!(size_of(&x, "anon"), size_of(&live, "anon"));
    let anon_rss: u64 = x["anon"][1].parse().unwrap();
    assert!(anon_rss >= 16 * MIB_KIB, "{x:?}");
    assert!(x["shared"][1].parse::<u64>().unwrap() >= 4);

    // The seed document's pipeline, verbatim.
    let sum = seed_anon_sum(&pid);
    // grep anon picks [ anon ], [anon:NAME] and [ shared anon ].
    assert_eq!(sum, size_of(&live, "anon") + size_of(&live, "shared"));

    let dir = scratch();
    let g = gcore(p.pid(), dir.path());
    let (glisting, gsum) = check_fixture_report(g.as_os_str(), &m, true);
    check_extended(g.as_os_str(), &m, true, glisting.total);
    // The fixture is idle: the same heap, anon, stack and shared memory
    // (gcore leaves out vvar, so other and the total may be smaller).
    for name in ["heap", "anon", "stack", "shared", "file"] {
        assert_eq!(size_of(&gsum, name), size_of(&live, name), "{name}");
    }
    drop(p);

    let mut k_made = None;
    let (_kd, k) = kernel_core(&spawn, |p| {
        wait_until_all_paused(p.pid());
        k_made = Some(made(p));
    });
    let km = k_made.unwrap();
    let (klisting, ksum) = check_fixture_report(k.as_os_str(), &km, true);
    check_extended(k.as_os_str(), &km, true, klisting.total);
    // A kernel core has every mapping, vvar included: the same sizes as a
    // live copy of the fixture.
    for name in ["heap", "anon", "stack", "shared", "file", "other", "total"] {
        assert_eq!(size_of(&ksum, name), size_of(&live, name), "{name}");
    }
    let kx = parse_summary(&npmap(&["--summary", "-x"], &k).ok());
    assert!(kx.values().all(|c| c.len() == 3 && c[1] == "-"), "{kx:?}");
}

/// Check that every summary category of one `--json` document is the sum
/// of its mappings (one snapshot, so it holds for a process that changes).
fn check_json_summary(doc: &serde_json::Value) {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_end = 0;
    for m in doc["mappings"].as_array().unwrap() {
        assert!(m["start"].as_u64().unwrap() >= last_end, "{m}");
        last_end = m["end"].as_u64().unwrap();
        *sums
            .entry(m["category"].as_str().unwrap().into())
            .or_default() += m["size_kib"].as_u64().unwrap();
    }
    for (name, t) in doc["summary"].as_object().unwrap() {
        let want = if name == "total" {
            sums.values().sum()
        } else {
            sums.get(name).copied().unwrap_or(0)
        };
        assert_eq!(t["size_kib"].as_u64().unwrap(), want, "{name}");
    }
}

#[test]
fn idle_node_summary_is_sane_live_and_from_a_kernel_core() {
    let spawn = node_eval("");
    let p = spawn.start();
    let check = |operand: &OsStr| {
        let r = npmap(&["--summary"], operand);
        let s = parse_summary(&r.ok());
        assert!(r.stderr.is_empty(), "{}", r.stderr);
        for name in ["heap", "anon", "stack", "file"] {
            assert!(size_of(&s, name) > 0, "{name} in {s:?}");
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&npmap(&["--json"], operand).stdout).expect("JSON");
        check_json_summary(&doc);
        let kinds: Vec<&str> = doc["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.iter().filter(|&&k| k == "stack").count(), 1);
        // node's brk heap; its threads blocked in system calls.
        assert!(kinds.contains(&"heap"), "{kinds:?}");
        assert!(kinds.contains(&"thread_stack"), "{kinds:?}");
    };
    check(p.pid_arg().as_ref());
    drop(p);
    let (_kd, k) = kernel_core(&spawn, |_| {});
    check(k.as_os_str());
    // A core does not change: the text listing and summary agree too.
    let listing = parse_listing(&npmap(&[], &k).ok());
    check_listing(&listing, "kernel core");
    check_summary_matches_listing(&listing, &parse_summary(&npmap(&["--summary"], &k).ok()));
}

#[test]
fn a_map_that_changes_while_read_is_never_garbled() {
    let p = Spawn::new(fixture("npmap"))
        .env("NPT_CHURN", "1")
        .env("NPT_MAPS", "2000")
        .start();
    let pid = p.pid_arg();
    for i in 0..20 {
        let listing = parse_listing(&npmap(&[], &pid).ok());
        check_listing(&listing, &format!("run {i}"));
        assert!(listing.lines.iter().all(|l| l.size_kib > 0));
        assert!(listing.lines.len() > 2000);
    }
    for _ in 0..5 {
        let r = npmap(&["--json", "-x"], &pid);
        check_json_summary(&serde_json::from_slice(&r.stdout).expect("JSON"));
    }
}

#[test]
fn json_has_mappings_and_summary() {
    let p = fixture_spawn().start();
    wait_until_all_paused(p.pid());
    let m = made(&p);
    let doc: serde_json::Value =
        serde_json::from_slice(&npmap(&["--json"], p.pid_arg()).stdout).expect("JSON");
    assert_eq!(doc["pid"], p.pid());
    assert_eq!(doc["source"], "live");
    let maps = doc["mappings"].as_array().unwrap();
    let big = maps
        .iter()
        .find(|e| e["start"] == m.big)
        .expect("the big mapping");
    assert_eq!(big["size_kib"], 64 * MIB_KIB);
    assert_eq!(big["kind"], "anon");
    assert_eq!(big["category"], "anon");
    assert_eq!(big["name"], "[ anon ]");
    assert!(big["rss_kib"].is_null(), "no usage without -x");
    assert!(big["dumped_kib"].is_null());
    let mut tids: Vec<i64> = maps
        .iter()
        .filter(|e| e["kind"] == "thread_stack")
        .map(|e| e["tid"].as_i64().unwrap())
        .collect();
    tids.sort_unstable();
    let mut want: Vec<i64> = m.tids.iter().map(|&t| t.into()).collect();
    want.sort_unstable();
    assert_eq!(tids, want);
    let summary = parse_summary(&npmap(&["--summary"], p.pid_arg()).ok());
    for (name, cols) in &summary {
        assert_eq!(
            doc["summary"][name]["size_kib"].to_string(),
            cols[0],
            "{name}"
        );
    }
    let x: serde_json::Value =
        serde_json::from_slice(&npmap(&["--json", "-x"], p.pid_arg()).stdout).unwrap();
    assert!(x["summary"]["total"]["rss_kib"].as_u64().unwrap() > 16 * MIB_KIB);
}

#[test]
fn file_names_are_escaped_and_deleted_files_say_so_live_and_in_a_core() {
    let dir = scratch();
    let file = dir.path().join("evil\x1b[31mname");
    std::fs::write(&file, vec![7u8; 4096]).unwrap();
    let spawn = Spawn::new(fixture("npmap")).env("NPT_MAPFILE", &file);
    let p = spawn.start();
    let text = npmap(&[], p.pid_arg()).ok();
    assert!(!text.contains('\x1b'), "{text}");
    assert!(text.contains("evil\\x1b[31mname\n"), "{text}");
    let raw = npmap(&["--raw"], p.pid_arg()).ok();
    assert!(raw.contains("evil\x1b[31mname\n"));
    drop(p);

    let (_kd, k) = kernel_core(&spawn, |_| std::fs::remove_file(&file).unwrap());
    let text = npmap(&[], &k).ok();
    assert!(text.contains("evil\\x1b[31mname (deleted)\n"), "{text}");
    let doc: serde_json::Value = serde_json::from_slice(&npmap(&["--json"], &k).stdout).unwrap();
    let entry = doc["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["deleted"] == true)
        .expect("the deleted file");
    assert_eq!(entry["category"], "file");
    assert_eq!(
        Path::new(entry["path"].as_str().unwrap()),
        file.as_path(),
        "the path without the (deleted) mark"
    );
}

#[test]
fn bad_operands_get_one_line_each_and_the_rest_still_run() {
    let p = fixture_spawn().start();
    let r = npmap(&["--summary", "/nonexistent/core"], p.pid_arg());
    assert_eq!(r.code(), 1);
    assert_eq!(
        r.stderr,
        "npmap: /nonexistent/core: no such file or directory\n"
    );
    parse_summary(&r.text());
    let usage = run_tool("npmap", ["--bogus", "1"]);
    assert_eq!(usage.code(), 2);
}

#[test]
fn a_static_binary_core_finds_the_brk_heap_and_a_stripped_one_says_it_cannot() {
    let spawn = Spawn::new(fixture_variant("npmap", "static", &["-static"]));
    let (_kd, k) = kernel_core(&spawn, |p| wait_until_all_paused(p.pid()));
    let r = npmap(&[], &k);
    assert!(r.ok().contains("K rw--   [ heap ]\n"), "{}", r.text());
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    let stripped = fixture_variant("npmap", "static-stripped", &["-static", "-s"]);
    let (_kd, k) = kernel_core(&Spawn::new(stripped), |p| wait_until_all_paused(p.pid()));
    let r = npmap(&["--summary"], &k);
    let summary = parse_summary(&r.ok());
    assert!(
        r.stderr.starts_with("npmap: ")
            && r.stderr
                .contains("warning: the brk heap cannot be told apart")
            && r.stderr.lines().count() == 1,
        "{}",
        r.stderr
    );
    // The thread arena is still found from its shape and header.
    assert_eq!(size_of(&summary, "heap"), 64 * MIB_KIB);
}

/// Threads spinning on a CPU have no stack pointer in /proc (they are in no
/// system call), and npmap does not stop them: their stacks are told by
/// glibc's thread block at the top of each, so every thread's stack is
/// labelled with its id, the running ones' as the sleeping ones'.
#[test]
fn running_threads_stacks_are_labelled_live() {
    let p = Spawn::new(fixture("spinsleep")).start();
    let task = format!("/proc/{}/task", p.pid());
    let mut want: Vec<(i32, String)> = std::fs::read_dir(&task)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .filter(|&t| t != p.pid())
        .map(|t| {
            let comm = std::fs::read_to_string(format!("{task}/{t}/comm")).unwrap();
            (t, comm.trim().to_owned())
        })
        .collect();
    want.sort_unstable();
    let spinners: Vec<i32> = want
        .iter()
        .filter(|(_, c)| c == "spinner")
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(spinners.len(), 2, "{want:?}");
    for t in &spinners {
        let syscall = std::fs::read_to_string(format!("{task}/{t}/syscall")).unwrap();
        assert_eq!(syscall.trim(), "running", "spinner {t}");
    }
    let text = npmap(&[], p.pid_arg()).ok();
    let labelled = stack_tids(&parse_listing(&text));
    let tids: Vec<i32> = want.iter().map(|(t, _)| *t).collect();
    assert_eq!(labelled, tids, "threads {want:?}:\n{text}");
}
