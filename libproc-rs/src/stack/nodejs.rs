//! What Node.js knowledge npstack has without reading the V8 heap: the role
//! of each thread, told by the functions on its stack, and JavaScript frame
//! names from the perf map node writes with `--perf-basic-prof`.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::target::ProcessTarget;

/// The role of a Node.js thread, from the symbols of its frames (innermost
/// first) and whether it is the process's main thread.
pub fn thread_role(symbols: &[&str], is_main: bool) -> Option<&'static str> {
    // Outermost frames decide: a thread's start routine names its job.
    const ROLES: &[(&str, &str)] = &[
        ("node::worker::Worker::StartThread", "worker_threads Worker"),
        ("PlatformWorkerThread", "V8 platform worker"),
        ("DelayedTaskScheduler", "V8 delayed-task scheduler"),
        ("InspectorIo::ThreadMain", "inspector I/O"),
        ("StartIoThreadMain", "signal watchdog"),
        ("SigintWatchdog", "signal watchdog"),
    ];
    for sym in symbols.iter().rev() {
        for (needle, role) in ROLES {
            if sym.contains(needle) {
                return Some(role);
            }
        }
        // libuv's threadpool start routine is a static function `worker`.
        if *sym == "worker" && symbols.iter().any(|s| s.starts_with("uv_")) {
            return Some("libuv threadpool worker");
        }
    }
    if is_main
        && symbols
            .iter()
            .any(|s| *s == "uv_run" || s.starts_with("node::Start"))
    {
        return Some("main (event loop)");
    }
    None
}

/// One function of a perf map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfEntry {
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// A JavaScript function, named from the V8 heap or a perf map entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsName {
    pub function: String,
    pub script: Option<String>,
    /// 1-based line and column in the script, where known.
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The line is where the function starts, not the one executing.
    pub at_start: bool,
    /// interpreted, baseline, maglev or optimized.
    pub tier: Option<&'static str>,
    /// Functions inlined into this one's optimized code where it runs,
    /// innermost first.
    pub inlined: Vec<JsName>,
}

/// Parse a perf map (`START SIZE NAME` per line, hex numbers), sorted by
/// start. Lines that do not parse are skipped.
pub fn parse_perf_map(text: &[u8]) -> Vec<PerfEntry> {
    let mut out: Vec<PerfEntry> = text
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let mut parts = line.splitn(3, ' ');
            let start = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
            let size = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
            let name = parts.next()?.trim_end().to_owned();
            Some(PerfEntry { start, size, name })
        })
        .collect();
    out.sort_by_key(|e| e.start);
    out
}

/// The entry covering `addr`. V8 can log a new function at the address of
/// one it freed; the last one logged (the latest in the file, which sorting
/// keeps last among equal starts) wins.
pub fn perf_lookup(entries: &[PerfEntry], addr: u64) -> Option<&PerfEntry> {
    let i = entries.partition_point(|e| e.start <= addr);
    entries[..i]
        .iter()
        .rev()
        .take(64)
        .find(|e| addr < e.start.saturating_add(e.size))
}

/// Split a V8 perf-map name (`JS:*fib /app/busy.js:1:13`) into function,
/// location and tier. Names that are not JavaScript functions (builtins,
/// bytecode handlers, stubs) give `None`.
pub fn js_name(name: &str) -> Option<JsName> {
    let rest = ["JS:", "LazyCompile:", "Function:", "Eval:", "Script:"]
        .iter()
        .find_map(|p| name.strip_prefix(p))?;
    // On-stack-replacement code is marked too: `o` before its tier (V8
    // 14.6) or `'` after it (V8 13.6, 14.1).
    let rest = match rest.strip_prefix('o') {
        Some(r) if r.starts_with(['+', '*']) => r,
        _ => rest,
    };
    let (tier, rest) = match rest.chars().next()? {
        '~' => (Some("interpreted"), &rest[1..]),
        '^' => (Some("baseline"), &rest[1..]),
        '+' => (Some("maglev"), &rest[1..]),
        '*' => (Some("optimized"), &rest[1..]),
        _ => (None, rest),
    };
    let rest = match tier {
        Some(_) => rest.strip_prefix('\'').unwrap_or(rest),
        None => rest,
    };
    let (function, location) = match rest.split_once(' ') {
        Some((f, loc)) => (f, Some(loc)),
        None => (rest, None),
    };
    let function = if function.is_empty() {
        "<anonymous>".to_owned()
    } else {
        function.to_owned()
    };
    // `script:line:column`, where the function starts; else kept whole.
    let parsed = location.and_then(|loc| {
        let mut parts = loc.rsplitn(3, ':');
        let column = parts.next()?.parse().ok()?;
        let line = parts.next()?.parse().ok()?;
        Some((parts.next().map(str::to_owned), line, column))
    });
    let (script, line, column) = match parsed {
        Some((script, line, column)) => (script, Some(line), Some(column)),
        None => (location.map(str::to_owned), None, None),
    };
    Some(JsName {
        function,
        inlined: Vec::new(),
        at_start: line.is_some(),
        script,
        line,
        column,
        tier,
    })
}

/// Most of a perf map read: its last 256 MiB (node appends to it for as
/// long as it runs, and the newest entry for an address is the right one).
const PERF_MAP_MAX: u64 = 256 << 20;

/// A perf map as read: its entries (none when there is no map to use), and
/// a warning when the map was not used whole or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerfMap {
    pub entries: Vec<PerfEntry>,
    pub note: Option<String>,
}

impl PerfMap {
    /// The entry covering `addr` (see [`perf_lookup`]).
    pub fn lookup(&self, addr: u64) -> Option<&PerfEntry> {
        perf_lookup(&self.entries, addr)
    }
}

/// The perf map of a running target, read through its root directory under
/// the PID its own namespace gives it ([`ProcessTarget::namespace_pid`]).
/// No map is no warning.
pub fn load_perf_map(target: &dyn ProcessTarget) -> PerfMap {
    read_perf_map(target).unwrap_or_default()
}

fn read_perf_map(target: &dyn ProcessTarget) -> Option<PerfMap> {
    let nspid = target.namespace_pid()?;
    let path = PathBuf::from(format!("/tmp/perf-{nspid}.map"));
    let mut file = target.root_dir().ok()?.open_file(Path::new(&path)).ok()?;
    let meta = file.metadata().ok()?;
    // As perf does: a map someone else could have written is not trusted.
    let owner = meta.uid();
    if owner != 0 && owner != target.psinfo().uid {
        return Some(PerfMap {
            entries: Vec::new(),
            note: Some(format!(
                "{} belongs to uid {owner}, not to the process's user: not used",
                path.display()
            )),
        });
    }
    let len = meta.len();
    let start = len.saturating_sub(PERF_MAP_MAX);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(start)).ok()?;
    file.take(PERF_MAP_MAX).read_to_end(&mut bytes).ok()?;
    let mut note = None;
    if start > 0 {
        // Start at a whole line.
        let first = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |n| n + 1);
        bytes.drain(..first);
        note = Some(format!(
            "{} is {} MiB; only its last {} MiB were read",
            path.display(),
            len >> 20,
            PERF_MAP_MAX >> 20
        ));
    }
    Some(PerfMap {
        entries: parse_perf_map(&bytes),
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_frames() {
        let main = [
            "epoll_pwait",
            "uv__io_poll",
            "uv_run",
            "node::SpinEventLoopInternal(node::Environment*)",
            "node::Start(int, char**)",
            "main",
        ];
        assert_eq!(thread_role(&main, true), Some("main (event loop)"));
        assert_eq!(thread_role(&main, false), None);
        let platform = [
            "futex",
            "uv_cond_wait",
            "node::(anonymous namespace)::PlatformWorkerThread(void*)",
            "start_thread",
        ];
        assert_eq!(thread_role(&platform, false), Some("V8 platform worker"));
        let delayed = [
            "epoll_pwait",
            "uv_run",
            "node::WorkerThreadsTaskRunner::DelayedTaskScheduler::Start()::{lambda(void*)#1}::_FUN(void*)",
            "start_thread",
        ];
        assert_eq!(
            thread_role(&delayed, false),
            Some("V8 delayed-task scheduler")
        );
        let pool = ["futex", "uv_cond_wait", "worker", "start_thread"];
        assert_eq!(thread_role(&pool, false), Some("libuv threadpool worker"));
        assert_eq!(thread_role(&["read", "leaf", "start_thread"], false), None);
    }

    #[test]
    fn perf_map_names() {
        let map = parse_perf_map(b"18cfc40 36c Builtin:InterpreterEntryTrampoline\n7f1b700066c0 180 JS:*fib /tmp/busy.js:1:13\nbad line\n7f1b70005b80 100 JS:^fib /tmp/busy.js:1:13\n");
        assert_eq!(map.len(), 3);
        assert_eq!(
            perf_lookup(&map, 0x7f1b700066c0 + 0x10).unwrap().name,
            "JS:*fib /tmp/busy.js:1:13"
        );
        assert_eq!(perf_lookup(&map, 0x7f1b700066c0 + 0x180), None);
        let n = js_name("JS:*fib /tmp/busy.js:1:13").unwrap();
        assert_eq!(
            (
                n.function.as_str(),
                n.script.as_deref(),
                n.line,
                n.column,
                n.at_start,
                n.tier
            ),
            (
                "fib",
                Some("/tmp/busy.js"),
                Some(1),
                Some(13),
                true,
                Some("optimized")
            )
        );
        // A location that is not script:line:column is kept whole.
        let odd = js_name("JS:~f node:internal/x").unwrap();
        assert_eq!(
            (odd.script.as_deref(), odd.line),
            (Some("node:internal/x"), None)
        );
        assert_eq!(js_name("JS:~ /x.js:2:1").unwrap().function, "<anonymous>");
        assert_eq!(js_name("Builtin:InterpreterEntryTrampoline"), None);
        // On-stack-replacement code, as V8 13.6 and 14.6 mark it.
        for name in ["JS:*'hot /x.js:3:1", "JS:o*hot /x.js:3:1"] {
            let n = js_name(name).unwrap();
            assert_eq!((n.function.as_str(), n.tier), ("hot", Some("optimized")));
        }
        let n = js_name("JS:o+hot /x.js:3:1").unwrap();
        assert_eq!((n.function.as_str(), n.tier), ("hot", Some("maglev")));
        assert_eq!(js_name("JS:~outer /x.js:3:1").unwrap().function, "outer");
    }
}
