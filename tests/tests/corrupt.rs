//! The tools never crash on a strange core: truncated and bit-flipped
//! copies of real kernel and gcore cores give output or a clear error, never
//! a panic or a signal.

use std::path::Path;

use nptools_tests::*;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const RUNS: [&[&str]; 3] = [&["-e", "-x"], &["-l"], &["--json", "-a", "-e", "-x"]];

/// Run the tools over one damaged core and check they neither crash nor
/// hang; return npargs's exit status.
fn survive(core: &Path, what: &str) -> i32 {
    let mut code = 0;
    for args in RUNS {
        let r = run_tool_on("npargs", args, core);
        r.no_crash();
        assert!(
            matches!(r.code(), 0 | 1),
            "npargs {args:?} on {what}: exit {} ({})",
            r.code(),
            r.stderr
        );
        code = code.max(r.code());
    }
    let others: [(&str, &[&str]); 4] = [
        ("npenv", &[]),
        ("npenv", &["--initial"]),
        ("npmap", &["-x"]),
        ("npmap", &["--json", "-x"]),
    ];
    for (tool, args) in others {
        let r = run_tool_on(tool, args, core);
        r.no_crash();
        assert!(matches!(r.code(), 0 | 1), "{tool} on {what}: {}", r.stderr);
    }
    code
}

/// File offsets where the headers, the notes and the first bytes of every
/// segment begin: the places where a cut or a flipped bit matters most.
fn landmarks(bytes: &[u8]) -> Vec<usize> {
    let mut v = vec![0, 16, 32, 52, 63, 64, 65];
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(bytes[56..58].try_into().unwrap()) as usize;
    for i in 0..phnum {
        let ph = phoff + i * 56;
        v.push(ph);
        let off = u64::from_le_bytes(bytes[ph + 8..ph + 16].try_into().unwrap()) as usize;
        let filesz = u64::from_le_bytes(bytes[ph + 32..ph + 40].try_into().unwrap()) as usize;
        v.extend([
            off,
            off + 1,
            off + filesz / 2,
            (off + filesz).saturating_sub(1),
        ]);
    }
    v.push(bytes.len() - 1);
    v.retain(|&o| o < bytes.len());
    v.sort_unstable();
    v.dedup();
    v
}

fn cores() -> Vec<(tempfile::TempDir, std::path::PathBuf, &'static str)> {
    let spawn = Spawn::new(fixture("argsenv"))
        .arg("an argument")
        .env("A", "1")
        .env("NPT_SETENV", "B=2")
        .env("NPT_THREADS", "2");
    let (kd, k) = kernel_core(&spawn, |_| {});
    let p = spawn.start();
    let gd = scratch();
    let g = gcore(p.pid(), gd.path());
    vec![(kd, k, "kernel"), (gd, g, "gcore")]
}

#[test]
fn truncated_cores() {
    for (_dir, core, kind) in cores() {
        let bytes = std::fs::read(&core).unwrap();
        let work = scratch();
        let cut = work.path().join("cut.core");
        let marks = landmarks(&bytes);
        let mut failures = 0;
        for &len in &marks {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            if survive(&cut, &format!("{kind} core cut at {len}")) != 0 {
                failures += 1;
            }
        }
        // Every cut short of the whole file is reported as a failure.
        assert_eq!(failures, marks.len(), "{kind}: a truncated core exited 0");
    }
}

#[test]
fn bit_flipped_cores() {
    for (_dir, core, kind) in cores() {
        let bytes = std::fs::read(&core).unwrap();
        let marks = landmarks(&bytes);
        let notes_end = marks
            .iter()
            .copied()
            .filter(|&m| m < 64 * 1024)
            .max()
            .unwrap();
        let work = scratch();
        let flipped = work.path().join("flipped.core");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..150 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.below(8) {
                // Mostly in the headers and notes, sometimes anywhere.
                let at = if rng.below(4) == 0 {
                    rng.below(b.len())
                } else {
                    rng.below(notes_end.max(64))
                };
                b[at] ^= 1 << rng.below(8);
            }
            std::fs::write(&flipped, &b).unwrap();
            survive(&flipped, &format!("{kind} core, flip round {round}"));
        }
    }
}
