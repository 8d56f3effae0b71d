//! Test harness for nptools: builds C fixtures with the system cc, starts
//! real processes, makes real core files (kernel and gcore), and runs the
//! built binaries against them. Nothing is mocked.
//!
//! The binaries under test are taken from `NPTOOLS_BIN_DIR` (set by
//! `make test`) or `target/release`. When something a test needs is missing
//! (a binary, cc, gdb, a kernel that writes cores where we can find them),
//! the test fails and says what to install; it never passes silently.

#![allow(unsafe_code)] // pre_exec hooks to raise RLIMIT_CORE in children

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Directory holding the built nptools binaries.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("NPTOOLS_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace().join("target/release"),
    }
}

/// Path of a built tool; fails loudly when it has not been built.
pub fn tool(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `make test` (or `cargo build --release`) first, or set NPTOOLS_BIN_DIR",
        p.display()
    );
    p
}

/// Scratch space that is removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    let base = workspace().join("target/nptools-scratch");
    std::fs::create_dir_all(&base).expect("create target/nptools-scratch");
    tempfile::Builder::new()
        .prefix("t")
        .tempdir_in(base)
        .expect("create scratch dir")
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Compile `tests/fixtures/NAME.c` (or `.cc`) and return the executable.
pub fn fixture(name: &str) -> PathBuf {
    fixture_variant(name, "", &[])
}

/// Compile a fixture with extra compiler flags (`-static`, `-s`, `-no-pie`)
/// into an executable named NAME-VARIANT.
pub fn fixture_variant(name: &str, variant: &str, flags: &[&str]) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workspace().join("target/nptools-fixtures");
    std::fs::create_dir_all(&dir).expect("create fixture dir");
    let c = workspace().join(format!("tests/fixtures/{name}.c"));
    let cc_src = workspace().join(format!("tests/fixtures/{name}.cc"));
    let (src, compiler) = if c.exists() {
        (c, "cc")
    } else {
        (cc_src, "c++")
    };
    assert!(src.exists(), "no fixture source for {name}");
    let out = if variant.is_empty() {
        dir.join(name)
    } else {
        dir.join(format!("{name}-{variant}"))
    };
    let fresh = match (std::fs::metadata(&out), std::fs::metadata(&src)) {
        (Ok(o), Ok(s)) => o.modified().ok() >= s.modified().ok(),
        _ => false,
    };
    if !fresh {
        // Build to a private name and rename, so that test binaries running
        // in parallel never see a half-written executable.
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let status = Command::new(compiler)
            .args(["-g", "-O0", "-fno-omit-frame-pointer", "-pthread"])
            .args(flags)
            .arg("-o")
            .arg(&tmp)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {compiler} (install gcc/g++): {e}"));
        assert!(status.success(), "{compiler} failed on {}", src.display());
        std::fs::rename(&tmp, &out).expect("install fixture");
    }
    out
}

/// A process started for a test; killed and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    /// The line on which it said it was ready.
    pub ready_line: String,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    pub fn pid_arg(&self) -> String {
        self.pid().to_string()
    }

    /// The value of `KEY=value` on the ready line (`ready key=value ...`).
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        self.ready_line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// Wait until the process prints `ready` (or a line containing it).
    fn wait_ready(mut self, timeout: Duration) -> Self {
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(None);
                        return;
                    }
                    Ok(_) if line.contains("ready") => {
                        let _ = tx.send(Some(line.trim_end().to_owned()));
                        // Keep draining so the child never blocks on a full pipe.
                        let _ = std::io::copy(&mut r, &mut std::io::sink());
                        return;
                    }
                    Ok(_) => {}
                }
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(Some(line)) => {
                self.ready_line = line;
                self
            }
            _ => panic!("process {} did not become ready", self.pid()),
        }
    }

    /// Send a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we own.
        unsafe {
            nix::libc::kill(self.pid(), sig);
        }
    }

    /// Wait for the process to end.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait for child")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start a test target.
#[derive(Debug, Default, Clone)]
pub struct Spawn {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Replace the environment with exactly these.
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// Raise RLIMIT_CORE so that a fatal signal leaves a kernel core.
    pub allow_core: bool,
    /// Override argv[0].
    pub arg0: Option<OsString>,
    /// Write this to /proc/self/coredump_filter before exec (inherited).
    pub coredump_filter: Option<u32>,
    /// Point its stderr at /dev/null, not the test's (whose file grows
    /// while a test compares two reads of the descriptor table).
    pub quiet_stderr: bool,
}

impl Spawn {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Spawn {
            program: program.into(),
            ..Spawn::default()
        }
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }
    /// Run in `dir` (node writes its `--perf-basic-prof` log there).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if self.quiet_stderr {
                Stdio::null()
            } else {
                Stdio::inherit()
            });
        if let Some(a0) = &self.arg0 {
            cmd.arg0(a0);
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        if self.allow_core {
            let filter = self.coredump_filter.map(|f| format!("{f:#x}\0"));
            // SAFETY: setrlimit, open, write and close are async-signal-safe;
            // the filter string was formatted before fork.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = nix::libc::rlimit {
                        rlim_cur: nix::libc::RLIM_INFINITY,
                        rlim_max: nix::libc::RLIM_INFINITY,
                    };
                    if nix::libc::setrlimit(nix::libc::RLIMIT_CORE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if let Some(f) = &filter {
                        let fd = nix::libc::open(
                            c"/proc/self/coredump_filter".as_ptr(),
                            nix::libc::O_WRONLY,
                        );
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        let n = nix::libc::write(fd, f.as_ptr().cast(), f.len() - 1);
                        nix::libc::close(fd);
                        if n < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        cmd
    }

    /// Start the process and wait until it prints `ready`.
    pub fn start(&self) -> Proc {
        let child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        Proc {
            child,
            ready_line: String::new(),
        }
        .wait_ready(Duration::from_secs(30))
    }
}

/// The result of running a tool.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match self.status.code() {
            Some(c) => c,
            None => panic!(
                "tool died from signal {:?}; stderr: {}",
                self.status.signal(),
                self.stderr
            ),
        }
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("tool output is UTF-8")
    }
    /// Assert exit 0 and no panic, and return stdout as text.
    pub fn ok(&self) -> String {
        assert_eq!(self.code(), 0, "tool failed; stderr:\n{}", self.stderr);
        self.text()
    }
    /// Assert that the tool did not crash (whatever its status).
    pub fn no_crash(&self) {
        let _ = self.code();
        assert!(
            !self.stderr.contains("panicked"),
            "tool panicked: {}",
            self.stderr
        );
    }
}

/// Run a built tool with arguments, with a time limit.
pub fn run_tool<I, S>(name: &str, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_command(Command::new(tool(name)).args(args))
}

/// Run a built tool with flags and then one operand (a PID or a core).
pub fn run_tool_on(name: &str, args: &[&str], operand: impl AsRef<OsStr>) -> Run {
    run_command(Command::new(tool(name)).args(args).arg(operand))
}

/// A child whose stdout and stderr are drained by threads, so that it
/// never blocks on a full pipe.
struct Captured {
    child: Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl Captured {
    fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tool");
        fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = pipe.read_to_end(&mut v);
                v
            })
        }
        let stdout = drain(child.stdout.take().expect("piped"));
        let stderr = drain(child.stderr.take().expect("piped"));
        Captured {
            child,
            stdout,
            stderr,
        }
    }

    /// Collect the output of a child that has ended with `status`.
    fn finish(self, status: ExitStatus) -> Run {
        Run {
            status,
            stdout: self.stdout.join().expect("stdout thread"),
            stderr: String::from_utf8_lossy(&self.stderr.join().expect("stderr thread"))
                .into_owned(),
        }
    }
}

/// Run a command to completion (killing it after two minutes).
pub fn run_command(cmd: &mut Command) -> Run {
    let mut captured = Captured::spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = captured.child.try_wait().expect("wait for the tool") {
            return captured.finish(status);
        }
        if Instant::now() > deadline {
            let _ = captured.child.kill();
            panic!("tool did not finish within two minutes: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run a command to completion (killing it after two minutes) and return
/// its result with its peak resident set size in KiB. The peak is taken by
/// the `peakrss` fixture, not by wait4 here: a child's peak counts the
/// memory its parent had at exec, and a test may hold much at that moment
/// (see tests/fixtures/peakrss.c).
pub fn run_with_peak_rss(cmd: &mut Command) -> (Run, u64) {
    let mut measured = Command::new(fixture("peakrss"));
    measured.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        measured.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => measured.env(key, v),
            None => measured.env_remove(key),
        };
    }
    let mut run = run_command(&mut measured);
    let stderr = run.stderr.trim_end();
    let (rest, last) = stderr.rsplit_once('\n').unwrap_or(("", stderr));
    let kib = last
        .strip_prefix("peakrss: ")
        .and_then(|l| l.strip_suffix(" KiB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak from peakrss: {}", run.stderr));
    run.stderr = if rest.is_empty() {
        String::new()
    } else {
        format!("{rest}\n")
    };
    (run, kib)
}

/// Write a gcore core of `pid` into `dir` and return its path.
pub fn gcore(pid: i32, dir: &Path) -> PathBuf {
    let prefix = dir.join("gcore");
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcore (install gdb): {e}"));
    let path = dir.join(format!("gcore.{pid}"));
    assert!(
        path.is_file(),
        "gcore wrote no core for {pid}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Start `spawn` in a fresh directory with core dumps allowed, abort it with
/// SIGABRT, and return the kernel's core file (plus the directory holding
/// it, which removes the core when dropped).
pub fn kernel_core(
    spawn: &Spawn,
    before_abort: impl FnOnce(&Proc),
) -> (tempfile::TempDir, PathBuf) {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    assert!(
        !pattern.starts_with('|') && !pattern.contains('/'),
        "kernel.core_pattern is {pattern:?}; the kernel core tests need a plain file name \
         in the process's directory: run `sysctl kernel.core_pattern=core` (as .ci/run does)"
    );
    let dir = scratch();
    let mut spawn = spawn.clone();
    spawn.cwd = Some(dir.path().to_owned());
    spawn.allow_core = true;
    let mut p = spawn.start();
    before_abort(&p);
    p.signal(nix::libc::SIGABRT);
    let status = p.wait();
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            status.core_dumped(),
            "process did not dump core (status {status:?}, core_pattern {pattern:?})"
        );
    }
    let name = expand_core_pattern(pattern.trim(), p.pid());
    let path = dir.path().join(name);
    assert!(path.is_file(), "no core file at {}", path.display());
    (dir, path)
}

/// The file name the kernel gives a core for the simple patterns we accept.
fn expand_core_pattern(pattern: &str, pid: i32) -> String {
    let uses_pid = std::fs::read_to_string("/proc/sys/kernel/core_uses_pid")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let mut name = pattern.replace("%p", &pid.to_string());
    if uses_pid && !pattern.contains("%p") {
        name = format!("{name}.{pid}");
    }
    name
}

/// Split a report's `LABEL[N]: value` lines into values, in order, checking
/// that the indexes run 0, 1, 2...
pub fn indexed(report: &[u8], label: &str) -> Vec<Vec<u8>> {
    let prefix = format!("{label}[");
    let mut out = Vec::new();
    for line in report.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(prefix.as_bytes()) {
            let close = rest
                .iter()
                .position(|&b| b == b']')
                .expect("closing bracket");
            let idx: usize = std::str::from_utf8(&rest[..close])
                .expect("index")
                .parse()
                .expect("index number");
            assert_eq!(idx, out.len(), "indexes in order");
            let value = rest[close + 1..]
                .strip_prefix(b": ")
                .expect("': ' after index");
            out.push(value.to_vec());
        }
    }
    out
}

/// Lossless text for assertion messages.
pub fn show(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect()
}

/// Call `check` every few milliseconds until it succeeds; after `secs`
/// seconds fail with `what` and the last thing `check` said.
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(()) => return,
            Err(last) => assert!(Instant::now() < deadline, "{what}: {last}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until a thread is in system call `nr` (from /proc/PID/task/TID/syscall).
pub fn wait_in_syscall(pid: i32, tid: i32, nr: u32) {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    eventually(
        10,
        &format!("thread {tid} never entered syscall {nr}"),
        || {
            let s = std::fs::read_to_string(&path).unwrap_or_default();
            if s.starts_with(&format!("{nr} ")) {
                Ok(())
            } else {
                Err(s)
            }
        },
    );
}

/// Each thread of `pid` with its state letter (from /proc/PID/task/TID/stat);
/// a thread that ends while the list is read is left out.
pub fn task_states(pid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next());
        if let Some(state) = state {
            let tid = e.file_name().to_str().unwrap().parse().unwrap();
            out.push((tid, state));
        }
    }
    out
}

/// Find the node binary; fails loudly when node is missing.
pub fn node() -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", "command -v node"])
        .output()
        .expect("run sh");
    let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !p.is_empty(),
        "node is not installed (apt-get install nodejs)"
    );
    PathBuf::from(p)
}

/// node running `setup` (JavaScript; may be empty) and then idling: it says
/// `ready` and waits on a timer. Its environment holds PATH=/usr/bin:/bin.
pub fn node_eval(setup: &str) -> Spawn {
    let script = format!("{setup} console.log('ready'); setInterval(() => {{}}, 1 << 30);");
    Spawn::new(node())
        .arg("-e")
        .arg(script.trim_start())
        .env("PATH", "/usr/bin:/bin")
}

/// The node release lines the V8 frame tests run on, newest last: the
/// official builds `make nodes` fetches (tests/fetch-node.sh pins them).
pub const NODE_MAJORS: &[u32] = &[20, 22, 24, 25, 26];

/// The official node build of release line `major`, fetched by `make nodes`
/// (part of `make test`) into `target/node/MAJOR`; fails loudly when it is
/// not there.
pub fn fetched_node(major: u32) -> PathBuf {
    let p = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join(format!("node/{major}/bin/node"));
    assert!(
        p.is_file(),
        "node {major} is not at {}: run `make nodes` (make test does), which fetches \
         it from the npm registry",
        p.display()
    );
    p
}

/// The seed document's npmap pipeline, verbatim, on `operand`: the KiB of
/// the lines `grep anon` picks.
pub fn seed_anon_sum(operand: &str) -> u64 {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} {operand} | grep anon | tr -s ' ' | cut -d ' ' -f 2 | tr -d 'K' | awk '{{s+=$1}} END {{print s}}'",
            tool("npmap").display()
        ))
        .output()
        .expect("run sh");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the seed pipeline gave no number on {operand}"))
}
