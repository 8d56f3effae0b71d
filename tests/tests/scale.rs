//! Output that scales: `npmap --json` of 100,000 mappings and `npfiles
//! --json` of tens of thousands of descriptors are written entry by entry,
//! so they cost no more memory than the text reports (which keep one
//! small record per mapping or descriptor: the totals come first, and
//! pipe and socket ends are matched across the whole table). Before, the
//! JSON was built as one tree of the whole document: 4 KiB per mapping,
//! 405 MB at 100,000 mappings.

use std::process::Command;

use nptools_tests::*;

const MAPPINGS: usize = 100_000;

/// `vm.max_map_count` (65530 by default) raised for a test and put back
/// when dropped.
struct MaxMapCount {
    old: Option<String>,
}

const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

impl MaxMapCount {
    fn at_least(n: u64) -> Self {
        let old = std::fs::read_to_string(MAX_MAP_COUNT)
            .unwrap_or_else(|e| panic!("cannot read {MAX_MAP_COUNT}: {e}"));
        let now: u64 = old.trim().parse().expect("a number");
        if now >= n {
            return MaxMapCount { old: None };
        }
        std::fs::write(MAX_MAP_COUNT, n.to_string()).unwrap_or_else(|e| {
            panic!(
                "vm.max_map_count is {now}, below the {n} mappings this test needs, and \
                 cannot be raised ({e}): run the tests as root"
            )
        });
        MaxMapCount { old: Some(old) }
    }
}

impl Drop for MaxMapCount {
    fn drop(&mut self) {
        if let Some(old) = &self.old
            && let Err(e) = std::fs::write(MAX_MAP_COUNT, old.trim())
        {
            eprintln!("could not put vm.max_map_count back to {}: {e}", old.trim());
        }
    }
}

/// Run a tool and return its result and its peak RSS in KiB.
fn peak(tool_name: &str, args: &[&str], operand: &str) -> (Run, u64) {
    run_with_peak_rss(Command::new(tool(tool_name)).args(args).arg(operand))
}

#[test]
fn npmap_json_of_100000_mappings_in_bounded_memory() {
    let _limit = MaxMapCount::at_least(MAPPINGS as u64 + 10_000);
    let p = Spawn::new(fixture("npmap"))
        .env("NPT_MAPS", MAPPINGS.to_string())
        .start();
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", p.pid())).unwrap();
    // npmap leaves out [vsyscall], which is not part of the process.
    let listed = maps.lines().filter(|l| !l.ends_with("[vsyscall]")).count();
    assert!(
        listed > MAPPINGS,
        "the fixture has {listed} mappings, not the {MAPPINGS} it was asked for"
    );

    let (text, text_kib) = peak("npmap", &[], &p.pid_arg());
    assert_eq!(
        text.ok().lines().count(),
        listed + 2,
        "header, mappings, total"
    );
    let (json, json_kib) = peak("npmap", &["--json"], &p.pid_arg());
    assert_eq!(json.code(), 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    let mappings = doc["mappings"].as_array().expect("mappings");
    assert_eq!(mappings.len(), listed);
    let sizes: u64 = mappings
        .iter()
        .map(|m| m["size_kib"].as_u64().unwrap())
        .sum();
    assert_eq!(doc["summary"]["total"]["size_kib"].as_u64(), Some(sizes));
    assert_eq!(json.stdout.iter().filter(|&&b| b == b'\n').count(), 1);

    // The report keeps an entry per mapping (160 bytes, and the file's
    // path), made as the mappings read are given up: near 21 MB at
    // 100,000 (30 MB when both were held). 32 MB leaves room for allocator
    // slack; the tree the JSON was built as took 405 MB. And the JSON
    // costs what the listing costs, give or take a buffer.
    eprintln!("npmap --json peak RSS {json_kib} KiB, text {text_kib} KiB, {listed} mappings");
    assert!(json_kib < 32 * 1024, "npmap --json peak RSS {json_kib} KiB");
    assert!(
        json_kib < text_kib + 4 * 1024,
        "npmap --json {json_kib} KiB against the listing's {text_kib} KiB"
    );
}

#[test]
fn npfiles_json_of_many_descriptors_in_bounded_memory() {
    // The fixture raises its soft RLIMIT_NOFILE to the count; the hard
    // limit it inherits bounds it (raising that needs CAP_SYS_RESOURCE).
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    let many = hard.min(50_000) as usize;
    assert!(
        many >= 20_000,
        "the RLIMIT_NOFILE hard limit is {hard}: this test needs at least 20,000 descriptors"
    );
    let dir = scratch();
    let mut spawn = Spawn::new(fixture("openfiles"))
        .arg("1")
        .arg(many.to_string());
    spawn.cwd = Some(dir.path().to_owned());
    let p = spawn.start();
    let open = std::fs::read_dir(format!("/proc/{}/fd", p.pid()))
        .unwrap()
        .count();
    assert_eq!(open, many);

    let (text, text_kib) = peak("npfiles", &[], &p.pid_arg());
    text.ok();
    let (json, json_kib) = peak("npfiles", &["--json"], &p.pid_arg());
    assert_eq!(json.code(), 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    let fds = doc["fds"].as_array().expect("fds");
    assert_eq!(fds.len(), many);
    assert_eq!(fds.last().unwrap()["fd"].as_u64(), Some(many as u64 - 1));
    assert_eq!(doc["rlimit"].as_u64(), Some(many as u64));

    // The table keeps a record of about 700 bytes per descriptor (pipes
    // and sockets are matched across all of it): 14 MB at 20,000. Bound:
    // 8 MB and 1 KiB per descriptor; the JSON tree took 67 MB at 20,000.
    eprintln!("npfiles --json peak RSS {json_kib} KiB, text {text_kib} KiB, {many} descriptors");
    let bound = 8 * 1024 + many as u64;
    assert!(
        json_kib < bound,
        "npfiles --json peak RSS {json_kib} KiB, bound {bound}"
    );
    assert!(
        json_kib < text_kib + 4 * 1024,
        "npfiles --json {json_kib} KiB against the report's {text_kib} KiB"
    );
}
