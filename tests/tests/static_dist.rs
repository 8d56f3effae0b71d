//! The static npstack `make dist` builds (part of `make test`), run inside
//! a chroot that holds nothing but that one file and a /proc, against a node
//! process outside it: what an on-call engineer gets by copying the binary
//! into a container.

use std::path::PathBuf;
use std::process::Command;

use nptools_tests::*;

/// Where `make dist` leaves the static binaries.
fn dist_bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("NPTOOLS_DIST_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"))
            .join("dist/x86_64-unknown-linux-gnu/release"),
    };
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "the static {name} is not at {}: run `make dist` (make test does), or set \
         NPTOOLS_DIST_BIN_DIR",
        p.display()
    );
    p
}

/// The program header types of an ELF64 little-endian executable.
fn segment_types(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "not an ELF64 LE file");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count)
        .map(|i| {
            let o = phoff + i * size;
            u32::from_le_bytes(elf[o..o + 4].try_into().unwrap())
        })
        .collect()
}

#[test]
fn static_npstack_in_an_empty_chroot_names_a_nodes_frames() {
    const PT_INTERP: u32 = 3;
    let bin = dist_bin("npstack");
    let elf = std::fs::read(&bin).expect("read the static npstack");
    assert!(
        !segment_types(&elf).contains(&PT_INTERP),
        "{} asks for a dynamic loader: not static",
        bin.display()
    );

    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::copy(&bin, root.join("npstack")).unwrap();
    let mut inside: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    inside.sort();
    assert_eq!(inside, ["npstack", "proc"], "the chroot holds only these");

    let js = "function npWaitsInChroot() { console.log('ready'); \
              Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); } \
              npWaitsInChroot();";
    let p = Spawn::new(node()).arg("-e").arg(js).start();
    // The host's /proc, bound into the chroot in a mount namespace of its
    // own: the bind goes when the namespace does.
    let script = format!(
        "mount --bind /proc '{root}/proc' && exec chroot '{root}' /npstack {pid}",
        root = root.display(),
        pid = p.pid()
    );
    let mut report = String::new();
    eventually(20, "the node never waited in npWaitsInChroot", || {
        let r = run_command(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(&script),
        );
        report = r.ok();
        match report.lines().find(|l| l.contains(" [js, ")) {
            Some(l) if l.contains("npWaitsInChroot") => Ok(()),
            _ => Err(report.clone()),
        }
    });
    assert!(
        report.starts_with(&format!("{}:", p.pid())),
        "the header names the process: {report}"
    );
    // Native frames are named too: node's own functions and libc's.
    assert!(report.contains("node::"), "node's C++ frames: {report}");
    assert!(report.contains(" uv_run"), "libuv's frames: {report}");
    // The mount went with the namespace.
    assert!(
        std::fs::read_dir(root.join("proc"))
            .unwrap()
            .next()
            .is_none(),
        "the bind mount of /proc outlived its namespace"
    );
}
