//! The renderers over maps built by hand, against tests/golden/ (see
//! `nptools_cli::golden`; `NPTOOLS_BLESS=1` rewrites the files).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use libproc_rs::addrmap::{Category, Label, V8Outcome};
use libproc_rs::parse::smaps::MappingUsage;
use libproc_rs::target::{MapName, Mapping, Perms, Psinfo, Source};
use nptools_cli::assert_golden;
use nptools_cli::golden::StubTarget;

use super::*;

/// A path with bytes a terminal must not get raw: an escape sequence, a
/// newline, a byte that is not UTF-8.
const HOSTILE_PATH: &[u8] = b"/tmp/x\x1b]0;pwned\x07\nlib\xff.so";

fn perms(letters: &str) -> Perms {
    let b = letters.as_bytes();
    Perms {
        read: b[0] == b'r',
        write: b[1] == b'w',
        exec: b[2] == b'x',
        shared: b[3] == b's',
    }
}

fn file(path: &[u8]) -> MapName {
    MapName::File(PathBuf::from(OsString::from_vec(path.to_vec())))
}

/// One entry; `dumped` (bytes) makes it a core's.
fn entry(start: u64, kib: u64, mode: &str, name: MapName, label: Label) -> MapEntry {
    MapEntry {
        mapping: Mapping::new(start, start + kib * 1024, perms(mode), name),
        label,
        usage: None,
    }
}

fn v8(kind: V8Kind, space: &'static str) -> Label {
    Label::V8 {
        kind,
        space: Some(space),
    }
}

fn deleted(mut e: MapEntry) -> MapEntry {
    e.mapping.deleted = true;
    e
}

/// Every kind of line npmap names, in address order.
fn entries() -> Vec<MapEntry> {
    vec![
        entry(0x400000, 7612, "r-x-", file(b"/usr/bin/node"), Label::File),
        entry(0xb6f000, 24, "rw--", file(b"/usr/bin/node"), Label::File),
        entry(0x565d000, 176, "rw--", MapName::Anon, Label::Anon),
        entry(0x3d831000, 1728, "rw--", MapName::Heap, Label::Heap),
        entry(
            0x9b2680000,
            256,
            "rw--",
            MapName::Anon,
            v8(V8Kind::Heap, "old_space"),
        ),
        entry(
            0x136a0400000,
            15628,
            "rw--",
            MapName::Anon,
            v8(V8Kind::Large, "large_object_space"),
        ),
        entry(
            0x1f6717540000,
            120,
            "r---",
            MapName::Anon,
            v8(V8Kind::ReadOnly, "read_only_space"),
        ),
        entry(0x7f0000000000, 132, "rw--", MapName::Anon, Label::Arena),
        entry(0x7f0000021000, 65404, "----", MapName::Anon, Label::Arena),
        entry(
            0x7f0023000000,
            256,
            "rwx-",
            MapName::Anon,
            v8(V8Kind::Code, "code_space"),
        ),
        entry(
            0x7f0023040000,
            521472,
            "rwx-",
            MapName::Anon,
            Label::V8 {
                kind: V8Kind::Reserved,
                space: None,
            },
        ),
        entry(
            0x7f9e70000000,
            4,
            "rw--",
            MapName::AnonNamed("v8\x1b[2J".into()),
            Label::AnonNamed("v8\x1b[2J".into()),
        ),
        deleted(entry(
            0x7f9e70100000,
            64,
            "rw-s",
            file(b"/dev/zero"),
            Label::SharedAnon,
        )),
        entry(
            0x7f9e70200000,
            8,
            "rw-s",
            MapName::AnonShmemNamed("ring".into()),
            Label::SharedNamed("ring".into()),
        ),
        deleted(entry(
            0x7f9e70300000,
            16,
            "rw-s",
            file(b"/SYSV0000abcd"),
            Label::SysvShm,
        )),
        deleted(entry(
            0x7f9e70400000,
            12,
            "r-x-",
            file(HOSTILE_PATH),
            Label::File,
        )),
        entry(
            0x7f9e7afff000,
            8192,
            "rw--",
            MapName::Anon,
            Label::ThreadStack(4249),
        ),
        entry(
            0x7f9e82470000,
            4,
            "r-x-",
            MapName::Other("uprobes".into()),
            Label::Kernel("uprobes".into()),
        ),
        entry(0x7f9e82474000, 16, "r---", MapName::Vvar, Label::Vvar),
        entry(0x7f9e82478000, 8, "r-x-", MapName::Vdso, Label::Vdso),
        entry(0x7ffcdb723000, 132, "rw--", MapName::Stack, Label::Stack),
    ]
}

/// A live process's map, with smaps use.
fn live_map() -> AddressMap {
    let mut entries = entries();
    for (i, e) in entries.iter_mut().enumerate() {
        let kib = e.size_kib();
        let i = i as u64;
        e.usage = Some(MappingUsage {
            rss_kib: kib / (i % 3 + 1),
            anon_kib: if e.category() == Category::File {
                0
            } else {
                kib / (i % 4 + 1)
            },
            locked_kib: if i == 3 { 4 } else { 0 },
        });
    }
    AddressMap {
        entries,
        from_core: false,
        has_usage: true,
        v8: Some(V8Outcome {
            layout: Some("V8 13.6-14.6"),
            unrecognised: None,
        }),
    }
}

/// A core's map: file text and reservations left out, the rest dumped.
fn core_map() -> AddressMap {
    let mut entries = entries();
    for e in &mut entries {
        let len = e.mapping.len();
        e.mapping.dumped = Some(match e.label {
            Label::File => 4096.min(len),
            Label::Arena if !e.mapping.perms.write => 0,
            Label::Vvar => 0,
            _ => len,
        });
    }
    AddressMap {
        entries,
        from_core: true,
        has_usage: false,
        v8: Some(V8Outcome {
            layout: None,
            unrecognised: Some("V8's heap pages were not recognised".into()),
        }),
    }
}

fn render(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out).expect("rendering into a buffer");
    out
}

fn psinfo() -> Psinfo {
    Psinfo {
        pid: 28720,
        ppid: 1,
        uid: 1000,
        gid: 1000,
        state: 'S',
        fname: "node".into(),
        psargs: "node demo/server.js".into(),
    }
}

#[test]
fn listing() {
    let map = live_map();
    let out = render(|o| write_listing(o, &map, false));
    assert_golden!("listing.txt", &out);
    // What the seed pipeline cuts out: the size is the second field.
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().all(|l| !l.contains('\x1b')), "{text}");
}

#[test]
fn listing_raw() {
    let map = live_map();
    let out = render(|o| write_listing(o, &map, true));
    assert!(out.windows(HOSTILE_PATH.len()).any(|w| w == HOSTILE_PATH));
    assert_golden!("listing-raw.txt", &out);
}

#[test]
fn extended() {
    let map = live_map();
    assert_golden!("extended.txt", &render(|o| write_extended(o, &map, false)));
}

#[test]
fn summary() {
    let map = live_map();
    assert_golden!("summary.txt", &render(|o| write_summary(o, &map, false)));
    assert_golden!("summary-x.txt", &render(|o| write_summary(o, &map, true)));
}

#[test]
fn json() {
    let map = live_map();
    let target = StubTarget::new(Source::Live { pid: 28720 }, psinfo());
    assert_golden!("map.json", &render(|o| write_json(o, &target, &map)));
}

#[test]
fn core_listing_extended_and_summary() {
    let map = core_map();
    assert_golden!(
        "core-listing.txt",
        &render(|o| write_listing(o, &map, false))
    );
    assert_golden!(
        "core-extended.txt",
        &render(|o| write_extended(o, &map, false))
    );
    assert_golden!(
        "core-summary-x.txt",
        &render(|o| write_summary(o, &map, true))
    );
}

#[test]
fn core_json() {
    let map = core_map();
    let target = StubTarget::new(
        Source::Core {
            path: "/var/cores/core.28720".into(),
        },
        psinfo(),
    );
    assert_golden!("core-map.json", &render(|o| write_json(o, &target, &map)));
}
