//! The library's layers, as lib.rs documents them, checked on its source:
//! each top-level module uses only modules of earlier layers (so there is no
//! cycle), the parsers touch no file and no target, and /proc and ptrace are
//! reached only from `live`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, first to last; a module may use modules of its own layer
/// when the pair is listed in `SIDEWAYS`, and of earlier layers always.
const LAYERS: &[&[&str]] = &[
    &["escape"],
    &["error", "diag"],
    &["parse"],
    &["root"],
    &["openfiles"],
    &["target", "npnotes"],
    &["elf"],
    &["live", "corefile"],
    &["gcore"],
    &["environ", "addrmap", "stack", "libuv", "v8heap"],
];

/// Uses within one layer: (user, used).
const SIDEWAYS: &[(&str, &str)] = &[("addrmap", "v8heap"), ("libuv", "addrmap")];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).expect("under src");
                let first = rel.components().next().expect("a component");
                let name = first.as_os_str().to_str().expect("utf-8 name");
                let module = name.strip_suffix(".rs").unwrap_or(name).to_owned();
                out.push((module, path));
            }
        }
    }
    out.sort();
    out
}

/// Source without comments (line comments and doc comments), so that a
/// module named in prose is not counted as used.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `text` names with `crate::`, including inside
/// `use crate::{a, b::c}` groups.
fn crate_uses(text: &str, modules: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|p| p.trim().split("::").next().unwrap_or("").trim())
                .collect()
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        };
        for n in names {
            if modules.iter().any(|m| m == n) && !found.iter().any(|f| f == n) {
                found.push(n.to_owned());
            }
        }
    }
    found
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS and lib.rs"))
}

#[test]
fn modules_use_only_earlier_layers() {
    let files = sources(&src());
    let modules: Vec<String> = files
        .iter()
        .map(|(m, _)| m.clone())
        .filter(|m| m != "lib")
        .collect();
    let mut uses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (module, path) in &files {
        if module == "lib" {
            continue;
        }
        let text = code(&std::fs::read_to_string(path).expect("read source"));
        for used in crate_uses(&text, &modules) {
            if &used != module {
                uses.entry(module.clone()).or_default().push(used);
            }
        }
    }
    let mut wrong = Vec::new();
    for (user, used) in &uses {
        for u in used {
            let (a, b) = (layer_of(user), layer_of(u));
            if b > a || (b == a && !SIDEWAYS.contains(&(user.as_str(), u.as_str()))) {
                wrong.push(format!(
                    "{user} (layer {}) uses {u} (layer {})",
                    a + 1,
                    b + 1
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "uses against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn parsers_touch_no_file_and_no_target() {
    let files = sources(&src());
    let mut wrong = Vec::new();
    for (module, path) in files.iter().filter(|(m, _)| m == "parse") {
        let text = code(&std::fs::read_to_string(path).expect("read source"));
        for bad in [
            "std::fs",
            "File::",
            "crate::target",
            "crate::live",
            "crate::corefile",
        ] {
            if text.contains(bad) {
                wrong.push(format!("{module}: {} uses {bad}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn only_live_reads_proc_or_traces_and_analyses_never_ask_the_source() {
    let files = sources(&src());
    let mut wrong = Vec::new();
    for (module, path) in &files {
        let text = code(&std::fs::read_to_string(path).expect("read source"));
        let mut bad: Vec<&str> = Vec::new();
        if module != "live" {
            // root.rs reopens our own descriptors through /proc/self/fd.
            let proc_paths = text.matches("\"/proc/").count();
            let own = text.matches("\"/proc/self/").count();
            if proc_paths > own {
                bad.push("a /proc path");
            }
            if text.contains("ptrace::") || text.contains("libc::PTRACE") {
                bad.push("ptrace");
            }
        }
        if ["environ", "addrmap", "stack", "elf", "openfiles"].contains(&module.as_str())
            && (text.contains("Source::") || text.contains(".source()"))
        {
            bad.push("the target's Source");
        }
        for b in bad {
            wrong.push(format!("{}: {b}", path.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
