//! Compressed cores (zstd, lz4, xz, made by the real commands) and cores on
//! a pipe, a FIFO or standard input: every tool reads them as it reads the
//! plain core, damaged streams give a one-line error, and a large
//! compressed core costs little memory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nptools_tests::*;

/// The reports compared, plain core against compressed or streamed one.
const RUNS: &[(&str, &[&str])] = &[
    ("npstack", &[]),
    ("npstack", &["--json"]),
    ("npmap", &["-x"]),
    ("npmap", &["--json"]),
    ("npfiles", &[]),
    ("npenv", &[]),
    ("npargs", &["-e", "-x"]),
    ("npargs", &["--json", "-a", "-e", "-x"]),
];

const FORMATS: &[&str] = &["zst", "lz4", "xz"];

/// Compress `core` with the real command for `ext` into `dir`.
fn compress(core: &Path, ext: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("core.{ext}"));
    let (program, args, package): (&str, &[&str], &str) = match ext {
        "zst" => ("zstd", &["-q", "-c", "-T2"], "zstd"),
        "lz4" => ("lz4", &["-q", "-c"], "lz4"),
        "xz" => ("xz", &["-q", "-c", "-T2"], "xz-utils"),
        _ => unreachable!("no such format"),
    };
    let status = Command::new(program)
        .args(args)
        .arg(core)
        .stdout(File::create(&out).expect("create compressed core"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program} (apt-get install {package}): {e}"));
    assert!(status.success(), "{program} failed on {}", core.display());
    out
}

/// A kernel core of a small fixture with threads, argv and environment.
fn small_core() -> (tempfile::TempDir, PathBuf) {
    let spawn = Spawn::new(fixture("argsenv"))
        .arg("an argument")
        .env("A", "1")
        .env("NPT_THREADS", "2");
    kernel_core(&spawn, |_| {})
}

/// A run's output with the operand spelled `from` written as `to`.
fn as_if(run: &Run, from: &str, to: &str) -> (i32, String, String) {
    let out = String::from_utf8_lossy(&run.stdout).replace(from, to);
    (run.code(), out, run.stderr.replace(from, to))
}

/// Stdout of a run on `operand`, written as if the operand were `to`: `-`
/// only where it names the core (the header, JSON's `core`).
fn stdout_as_if(run: &Run, operand: &str, to: &str) -> String {
    let out = String::from_utf8_lossy(&run.stdout);
    if operand != "-" {
        return out.replace(operand, to);
    }
    out.replace("core '-' of", &format!("core '{to}' of"))
        .replace(r#""core":"-""#, &format!(r#""core":"{to}""#))
}

/// `/dev/fd/N` (a process substitution's operand) written as `to`.
fn without_dev_fd(text: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/dev/fd/") {
        out.push_str(&rest[..i]);
        rest = &rest[i + "/dev/fd/".len()..];
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str(to);
    }
    out.push_str(rest);
    out
}

/// Run `tool args operand` with `feed`'s bytes written into its standard
/// input through a pipe.
fn run_fed(tool_name: &str, args: &[&str], operand: &str, feed: &Path) -> Run {
    let mut child = Command::new(tool(tool_name))
        .args(args)
        .arg(operand)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let bytes = std::fs::read(feed).expect("read feed");
    // The tool may stop reading early (a bad stream): a broken pipe is fine.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let out = child.wait_with_output().expect("wait for tool");
    writer.join().expect("writer thread");
    Run {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 scratch path")
}

#[test]
fn compressed_cores_read_as_the_plain_core() {
    let (dir, core) = small_core();
    let plain = path_str(&core).to_owned();
    for ext in FORMATS {
        let packed = compress(&core, ext, dir.path());
        let name = path_str(&packed);
        for (tool_name, args) in RUNS {
            let want = run_tool_on(tool_name, args, &core);
            let got = run_tool_on(tool_name, args, &packed);
            got.no_crash();
            assert_eq!(
                as_if(&got, name, &plain),
                as_if(&want, &plain, &plain),
                "{tool_name} {args:?} on the {ext} core"
            );
        }
    }
    // The header names the operand as given.
    let zst = dir.path().join("core.zst");
    let r = run_tool_on("npargs", &[], &zst);
    assert!(
        r.text()
            .starts_with(&format!("core '{}' of ", zst.display())),
        "{}",
        r.text()
    );
}

#[test]
fn cores_on_pipes_fifos_and_stdin_read_as_the_plain_core() {
    let (dir, core) = small_core();
    let plain = path_str(&core).to_owned();
    let zst = compress(&core, "zst", dir.path());
    let xz = compress(&core, "xz", dir.path());
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    for (tool_name, args) in RUNS {
        let want = as_if(&run_tool_on(tool_name, args, &core), &plain, &plain);
        let what = format!("{tool_name} {args:?}");
        // `-` and /dev/stdin on a pipe, plain and compressed.
        for (operand, feed) in [("-", &core), ("-", &zst), ("/dev/stdin", &xz)] {
            let got = run_fed(tool_name, args, operand, feed);
            got.no_crash();
            assert_eq!(
                stdout_as_if(&got, operand, &plain),
                want.1,
                "{what} on {operand} fed {}",
                feed.display()
            );
            assert_eq!(got.code(), want.0, "{what} on {operand}: {}", got.stderr);
        }
        // `-` on a regular file (`< core.zst`).
        let out = Command::new(tool(tool_name))
            .args(*args)
            .arg("-")
            .stdin(File::open(&zst).expect("open core.zst"))
            .output()
            .expect("run tool");
        let got = Run {
            status: out.status,
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(got.code(), want.0, "{what} < core.zst: {}", got.stderr);
        assert_eq!(stdout_as_if(&got, "-", &plain), want.1, "{what} < core.zst");
        // A FIFO another thread writes the plain core into.
        let writer = {
            let (fifo, core) = (fifo.clone(), core.clone());
            std::thread::spawn(move || {
                let bytes = std::fs::read(core).expect("read core");
                let mut f = File::options().write(true).open(fifo).expect("open fifo");
                let _ = f.write_all(&bytes);
            })
        };
        let got = run_tool_on(tool_name, args, &fifo);
        writer.join().expect("fifo writer");
        assert_eq!(
            as_if(&got, path_str(&fifo), &plain),
            want,
            "{what} on a FIFO"
        );
        // A process substitution: `npX <(zstd -dc core.zst)`.
        let got = run_command(
            Command::new("bash")
                .arg("-c")
                .arg(r#"t=$1; z=$2; shift 2; exec "$t" "$@" <(zstd -dc "$z")"#)
                .arg("bash")
                .arg(tool(tool_name))
                .arg(&zst)
                .args(*args),
        );
        assert_eq!(got.code(), want.0, "{what} <(zstd -dc): {}", got.stderr);
        assert_eq!(
            without_dev_fd(&got.text(), &plain),
            want.1,
            "{what} <(zstd -dc)"
        );
    }
}

/// The one line of stderr a failed operand gives, checked for no panic.
fn one_error_line(r: &Run, what: &str) -> String {
    r.no_crash();
    assert_eq!(r.code(), 1, "{what}: exit {} ({})", r.code(), r.stderr);
    assert!(r.stdout.is_empty(), "{what}: printed {}", r.text());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line: {}", r.stderr);
    lines[0].to_owned()
}

#[test]
fn damaged_streams_give_one_line_errors() {
    let (dir, core) = small_core();
    let work = scratch();
    for ext in FORMATS {
        let packed = std::fs::read(compress(&core, ext, dir.path())).expect("read");
        let name = match *ext {
            "zst" => "zstd",
            e => e,
        };
        // Cut short: in the middle, and by its last byte.
        for len in [packed.len() / 2, packed.len() - 1] {
            let cut = work.path().join(format!("cut{len}.{ext}"));
            std::fs::write(&cut, &packed[..len]).expect("write");
            for tool_name in ["npstack", "npmap", "npfiles", "npenv", "npargs"] {
                let line = one_error_line(
                    &run_tool_on(tool_name, &[], &cut),
                    &format!("{tool_name} on {ext} cut at {len}"),
                );
                let want = format!(
                    "{tool_name}: {}: corrupt core: the {name} stream ends early",
                    cut.display()
                );
                assert!(line.starts_with(&want), "{line}\nwanted {want}");
            }
        }
        // Bytes overwritten in the middle.
        let mut bad = packed.clone();
        let mid = bad.len() / 2;
        bad[mid..mid + 16].fill(0xa5);
        let damaged = work.path().join(format!("bad.{ext}"));
        std::fs::write(&damaged, &bad).expect("write");
        let line = one_error_line(
            &run_tool_on("npstack", &[], &damaged),
            &format!("{ext} with damaged bytes"),
        );
        assert!(
            line.starts_with(&format!("npstack: {}: corrupt core: ", damaged.display())),
            "{line}"
        );
    }
    // Compressed, but not a core: text, and an executable.
    let text = work.path().join("notes.txt");
    std::fs::write(&text, "not a core\n".repeat(100)).expect("write");
    let exe = work.path().join("exe");
    std::fs::copy(fixture("argsenv"), &exe).expect("copy fixture");
    for (plain, what) in [
        (&text, "not an ELF file"),
        (&exe, "an ELF shared object or PIE executable"),
    ] {
        let zst = compress(plain, "zst", work.path());
        let line = one_error_line(&run_tool_on("npargs", &[], &zst), what);
        assert_eq!(
            line,
            format!(
                "npargs: {}: not a core file: zstd-compressed, but {what}",
                zst.display()
            )
        );
    }
    // An empty pipe.
    let empty = work.path().join("empty");
    std::fs::write(&empty, "").expect("write");
    let line = one_error_line(&run_fed("npstack", &[], "-", &empty), "empty stdin");
    assert_eq!(line, "npstack: -: not a core file: the input is empty");
}

/// A small tmpfs, unmounted when dropped.
struct SmallTmpfs(tempfile::TempDir);

impl SmallTmpfs {
    fn mount(size: &str) -> Self {
        let dir = scratch();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs (the test runs as root, as CI does)"
        );
        SmallTmpfs(dir)
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn no_room_in_tmpdir_is_a_clear_error() {
    let (dir, core) = small_core();
    let zst = compress(&core, "zst", dir.path());
    let tmp = SmallTmpfs::mount("8k");
    let r = run_command(
        Command::new(tool("npstack"))
            .arg(&zst)
            .env("TMPDIR", tmp.0.path()),
    );
    let line = one_error_line(&r, "npstack with a full TMPDIR");
    let want = format!(
        "npstack: {}: no room in {} for the uncompressed core (No space left on device",
        zst.display(),
        tmp.0.path().display()
    );
    assert!(line.starts_with(&want), "{line}\nwanted {want}");
    assert!(
        line.ends_with("set TMPDIR to a directory with more space"),
        "{line}"
    );
}

/// A node process holding 1 GiB of non-zero memory gives a core of more
/// than 1 GiB; npstack reads it zstd-compressed with a small fraction of
/// that resident, and prints what it prints for the plain core.
#[test]
fn a_large_compressed_core_costs_little_memory() {
    const GIB: u64 = 1 << 30;
    let spawn = node_eval(
        "globalThis.big = Buffer.alloc(2 ** 30, 7); \
         for (let i = 0; i < big.length; i += 4096) big[i] = i & 255;",
    );
    let (dir, core) = kernel_core(&spawn, |_| {});
    let size = std::fs::metadata(&core).expect("stat core").len();
    assert!(size > GIB, "the core holds the buffer: {size} bytes");
    let zst = compress(&core, "zst", dir.path());
    let (plain, plain_rss) = run_with_peak_rss(Command::new(tool("npstack")).arg(&core));
    let (packed, packed_rss) = run_with_peak_rss(Command::new(tool("npstack")).arg(&zst));
    eprintln!(
        "core {} MiB: npstack peak RSS {} MiB on it, {} MiB on it zstd-compressed",
        size >> 20,
        plain_rss >> 10,
        packed_rss >> 10
    );
    assert_eq!(
        as_if(&packed, path_str(&zst), path_str(&core)),
        as_if(&plain, path_str(&core), path_str(&core))
    );
    // Peak RSS is in KiB: well below the core's size (under a tenth, and
    // under 256 MiB whatever the core).
    assert!(
        packed_rss * 1024 < size / 10 && packed_rss < 256 * 1024,
        "npstack on a {size}-byte compressed core peaked at {packed_rss} KiB"
    );
}
