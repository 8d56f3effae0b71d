//! Files found where they are: a process in a chroot or in its own mount
//! and PID namespace, read live from outside; a stripped library named
//! from its debug file (--debug-dir, and this machine's /usr/lib/debug for
//! a container's libc); a file of another build at a path passed over for
//! the right one, and named.

use std::path::{Path, PathBuf};
use std::process::Command;

use nptools_tests::*;

/// A command's absolute path (the targets run with an empty environment).
fn which(cmd: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .expect("run sh");
    let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!p.is_empty(), "{cmd} is not installed");
    PathBuf::from(p)
}

/// Put `from` at `to` as a hard link where it can be: a copy we wrote
/// could not be run while another test's child, forked between our write
/// and its close, still held it open (ETXTBSY).
fn link_or_copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// Put `file` at the same path under `root`.
fn copy_into(root: &Path, file: &Path) {
    let to = root.join(file.strip_prefix("/").unwrap());
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    link_or_copy(&std::fs::canonicalize(file).unwrap(), &to);
}

/// Copy each of `files` and the libraries `ldd` names for it under `root`,
/// at the same paths: a root a program can be chrooted into.
fn populate(root: &Path, files: &[&Path]) {
    for file in files {
        copy_into(root, file);
        let out = Command::new("ldd").arg(file).output().expect("run ldd");
        let text = String::from_utf8_lossy(&out.stdout);
        for lib in text.split_whitespace().filter(|w| w.starts_with('/')) {
            copy_into(root, Path::new(lib));
        }
    }
}

/// The thread roles of a report: what its headers say after `[name]`.
fn roles(report: &str) -> Vec<String> {
    let mut out: Vec<String> = report
        .lines()
        .filter(|l| l.starts_with("-----------------  lwp# "))
        .map(|l| {
            let after = l.split_once("] ").map_or("", |(_, r)| r);
            after.trim_end_matches('-').trim().to_owned()
        })
        .collect();
    out.sort();
    out
}

const NODE_SCRIPT: &str = "process.env.NPT_ROOTS_LATER = 'set'; console.log('ready'); \
                           setInterval(() => {}, 1 << 30);";

/// npstack's report of an idle node, once its threads have all started
/// (the same roles as `want`, when given); stderr must be empty.
fn node_report(pid: i32, want: Option<&[String]>, prefix: &[&str]) -> String {
    let mut report = String::new();
    eventually(20, "node's threads did not settle", || {
        let r = run_as(prefix, "npstack", &[&pid.to_string()]);
        assert_eq!(r.code(), 0, "{}", r.stderr);
        assert_eq!(r.stderr, "", "nothing to say:\n{}", r.text());
        report = r.text();
        let have = roles(&report);
        let main_ok = have.iter().any(|r| r == "main (event loop)");
        match want {
            Some(w) if have != w => Err(format!("{have:?} want {w:?}")),
            _ if !main_ok => Err(report.clone()),
            _ => Ok(()),
        }
    });
    report
}

/// Run a tool, under `prefix` (a command that runs the rest) if any.
fn run_as(prefix: &[&str], tool_name: &str, args: &[&str]) -> Run {
    if prefix.is_empty() {
        return run_tool(tool_name, args);
    }
    let mut cmd = Command::new(prefix[0]);
    cmd.args(&prefix[1..]).arg(tool(tool_name)).args(args);
    run_command(&mut cmd)
}

/// Drop CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE, without which
/// /proc/PID/map_files cannot be opened: files must then be found by their
/// paths on this machine.
fn without_sys_admin(pid: i32, a_mapping: &str) -> Vec<&'static str> {
    let probe = Command::new("capsh")
        .args([DROP, "--", "-c"])
        .arg(format!("exec head -c 4 /proc/{pid}/map_files/{a_mapping}"))
        .output()
        .expect("run capsh (apt-get install libcap2-bin)");
    assert!(
        !probe.status.success(),
        "map_files should be refused without CAP_SYS_ADMIN"
    );
    // capsh runs `bash -c SCRIPT TOOL ARGS...`.
    vec!["capsh", DROP, "--", "-c", "exec \"$0\" \"$@\""]
}

const DROP: &str = "--drop=cap_sys_admin,cap_checkpoint_restore";

/// The address range of the first mapping of a file named `name` in
/// /proc/PID/maps, as map_files names it.
fn mapping_of(pid: i32, name: &str) -> String {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .find(|l| l.ends_with(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} not mapped:\n{maps}"))
        .to_owned()
}

/// The libc frames npstack names only from the C library's debug file,
/// which the host has (libc6-dbg) and a root copied from it lacks.
fn libc_debug_file() {
    let libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").expect("read libc");
    let id = libproc_rs::elf::build_id_in(libc.as_slice()).expect("libc has a build-id");
    let hex = libproc_rs::elf::hex_id(&id);
    let path = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    assert!(
        Path::new(&path).is_file(),
        "{path} is missing: install libc6-dbg, which these tests read the C library's \
         local names from"
    );
}

fn check_node_frames(report: &str) {
    for name in ["uv_run () + ", "node::Start(", "epoll_pwait () + "] {
        assert!(report.contains(name), "{name} missing:\n{report}");
    }
    // A local name of libc, from the host's /usr/lib/debug.
    assert!(
        report.contains("__futex_abstimed_wait_common () + "),
        "{report}"
    );
    assert!(!report.contains("libc.so.6+0x"), "{report}");
}

fn check_npenv(pid: i32, prefix: &[&str]) {
    let r = run_as(prefix, "npenv", &[&pid.to_string()]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "the current environment, without a word");
    assert!(r.text().contains("NPT_ROOTS_LATER=set"), "{}", r.text());
}

#[test]
fn a_node_in_a_chroot_is_read_from_outside_as_one_outside() {
    libc_debug_file();
    let outside = node_eval("process.env.NPT_ROOTS_LATER = 'set';").start();
    let want = roles(&node_report(outside.pid(), None, &[]));
    drop(outside);

    let dir = scratch();
    let root = dir.path().join("root");
    let node = node();
    populate(&root, &[&node]);
    let p = Spawn::new(which("chroot"))
        .arg(&root)
        .arg(&node)
        .arg("-e")
        .arg(NODE_SCRIPT)
        .start();
    // /proc/PID/maps names the host's path, which is not under the root.
    let host_path = root.join(node.strip_prefix("/").unwrap());
    assert!(
        std::fs::read_to_string(format!("/proc/{}/maps", p.pid()))
            .unwrap()
            .contains(host_path.to_str().unwrap())
    );
    let report = node_report(p.pid(), Some(&want), &[]);
    check_node_frames(&report);
    check_npenv(p.pid(), &[]);

    // Without /proc/PID/map_files: the path on this machine, same build.
    let prefix = without_sys_admin(p.pid(), &mapping_of(p.pid(), "libc.so.6"));
    let report = node_report(p.pid(), Some(&want), &prefix);
    check_node_frames(&report);
    check_npenv(p.pid(), &prefix);
}

/// Start `program` in its own mount and PID namespace and, once it says
/// `ready`, mount an empty tmpfs over `hide` inside that namespace (with a
/// copy of `replacement` in it, named like the program, if given). Returns
/// unshare's process and the program's PID here.
fn start_hidden(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    hide: &Path,
    replacement: Option<&Path>,
    scratch: &Path,
) -> (Proc, i32) {
    let out = scratch.join("program.out");
    let script = r#"out=$1; hide=$2; repl=$3; shift 3
"$@" > "$out" &
until grep -q ready "$out" 2>/dev/null; do sleep 0.05; done
mount -t tmpfs none "$hide" || exit 1
if [ -n "$repl" ]; then cp "$repl" "$hide/${1##*/}" || exit 1; fi
echo ready
wait"#;
    let mut spawn = Spawn::new(which("unshare"))
        .args_of(&[
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&out)
        .arg(hide)
        .arg(replacement.map_or(PathBuf::new(), Path::to_owned))
        .arg(program)
        .args_of(args)
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
    for (k, v) in env {
        spawn = spawn.env(k, v);
    }
    let p = spawn.start();
    let children = |pid: i32| -> Vec<i32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .map(|c| c.parse().unwrap())
            .collect()
    };
    let sh = children(p.pid())[0];
    let name = program.file_name().unwrap().to_str().unwrap();
    let pid = children(sh)
        .into_iter()
        .find(|&c| {
            std::fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|comm| name.starts_with(comm.trim()))
        })
        .expect("the program under the namespace's shell");
    // Inside, the program's path is now the tmpfs's.
    let inside = format!("/proc/{pid}/root{}", program.display());
    assert_eq!(
        Path::new(&inside).exists(),
        replacement.is_some(),
        "{inside}"
    );
    (p, pid)
}

trait ArgsOf {
    fn args_of(self, args: &[&str]) -> Self;
}

impl ArgsOf for Spawn {
    fn args_of(mut self, args: &[&str]) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }
}

#[test]
fn a_node_in_its_own_mount_and_pid_namespace_is_read_from_outside() {
    libc_debug_file();
    let dir = scratch();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let node = bin.join("node");
    link_or_copy(&std::fs::canonicalize(self::node()).unwrap(), &node);
    let outside = Spawn::new(&node).arg("-e").arg(NODE_SCRIPT).start();
    let want = roles(&node_report(outside.pid(), None, &[]));
    drop(outside);

    let (_ns, pid) = start_hidden(&node, &["-e", NODE_SCRIPT], &[], &bin, None, dir.path());
    let report = node_report(pid, Some(&want), &[]);
    check_node_frames(&report);
    check_npenv(pid, &[]);

    let prefix = without_sys_admin(pid, &mapping_of(pid, "/bin/node"));
    let report = node_report(pid, Some(&want), &prefix);
    check_node_frames(&report);
    check_npenv(pid, &prefix);
}

/// Build roots_lib.c as `dir/libnptroots.so` (another build when `build`
/// is not 1) and roots_main.c beside it; returns the program.
fn build_roots_fixture(dir: &Path, build: u32) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let src = workspace().join("tests/fixtures");
    let lib = dir.join("libnptroots.so");
    let cc = |args: &[&std::ffi::OsStr]| {
        let status = Command::new("cc")
            .args(["-g", "-O0", "-fno-omit-frame-pointer", "-Wl,--build-id"])
            .args(args)
            .status()
            .expect("run cc (install gcc)");
        assert!(status.success(), "cc {args:?}");
    };
    let define = format!("-DNPT_ROOTS_BUILD={build}");
    cc(&[
        "-shared".as_ref(),
        "-fPIC".as_ref(),
        define.as_ref(),
        "-o".as_ref(),
        lib.as_ref(),
        src.join("roots_lib.c").as_ref(),
    ]);
    let main = dir.join("roots_main");
    let lib_dir = format!("-L{}", dir.display());
    // Not $ORIGIN: the loader works that out from /proc, which a chroot
    // lacks.
    let rpath = format!("-Wl,-rpath,{}", dir.display());
    cc(&[
        "-o".as_ref(),
        main.as_ref(),
        src.join("roots_main.c").as_ref(),
        lib_dir.as_ref(),
        "-lnptroots".as_ref(),
        rpath.as_ref(),
    ]);
    main
}

/// Run objcopy with `args` in `dir`.
fn objcopy(dir: &Path, args: &[&str]) {
    let status = Command::new("objcopy")
        .current_dir(dir)
        .args(args)
        .status()
        .expect("run objcopy (install binutils)");
    assert!(status.success(), "objcopy {args:?}");
}

/// `.build-id/xx/rest.debug` for the build-id of the ELF file at `path`.
fn build_id_path(path: &Path) -> PathBuf {
    let bytes = std::fs::read(path).unwrap();
    let id = libproc_rs::elf::build_id_in(bytes.as_slice()).expect("a build-id");
    let hex = libproc_rs::elf::hex_id(&id);
    PathBuf::from(format!(".build-id/{}/{}.debug", &hex[..2], &hex[2..]))
}

fn place(file: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::copy(file, at).unwrap();
}

#[test]
fn a_stripped_library_in_a_chroot_is_named_from_its_debug_file_in_a_debug_dir() {
    let dir = scratch();
    let d = dir.path();
    // The library, stripped, with its debug file apart (named by its
    // .gnu_debuglink too), and another build's debug file.
    let build = d.join("build");
    let main = build_roots_fixture(&build, 1);
    objcopy(
        &build,
        &[
            "--only-keep-debug",
            "libnptroots.so",
            "libnptroots.so.debug",
        ],
    );
    objcopy(&build, &["--strip-all", "libnptroots.so"]);
    objcopy(
        &build,
        &["--add-gnu-debuglink=libnptroots.so.debug", "libnptroots.so"],
    );
    let other = d.join("other");
    build_roots_fixture(&other, 2);
    objcopy(
        &other,
        &[
            "--only-keep-debug",
            "libnptroots.so",
            "libnptroots.so.debug",
        ],
    );
    let debug = build.join("libnptroots.so.debug");
    let by_id = d.join("by-id");
    place(
        &debug,
        &by_id.join(build_id_path(&build.join("libnptroots.so"))),
    );
    let by_link = d.join("by-link");
    place(&debug, &by_link.join("libnptroots.so.debug"));
    let wrong = d.join("wrong");
    place(
        &other.join("libnptroots.so.debug"),
        &wrong.join(build_id_path(&build.join("libnptroots.so"))),
    );
    let wrong_link = d.join("wrong-link");
    place(
        &other.join("libnptroots.so.debug"),
        &wrong_link.join("libnptroots.so.debug"),
    );
    std::fs::remove_file(&debug).unwrap();

    let root = d.join("root");
    populate(&root, &[&main, &build.join("libnptroots.so")]);
    let p = Spawn::new(which("chroot")).arg(&root).arg(&main).start();
    wait_in_syscall(p.pid(), p.pid(), 0);
    let pid = p.pid_arg();
    let npstack = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push(&pid);
        let r = run_tool("npstack", &all);
        assert_eq!(r.code(), 0, "{}", r.stderr);
        assert_eq!(r.stderr, "", "{}", r.text());
        r.text()
    };
    let named = |r: &str| r.contains("nptroots_hidden_wait () + ");

    let plain = npstack(&[]);
    assert!(plain.contains("nptroots_wait () + "), "{plain}");
    assert!(!named(&plain), "the stripped library names it: {plain}");
    assert!(plain.contains("libnptroots.so+0x"), "{plain}");
    for (how, dir) in [("by build-id", &by_id), ("by debug link", &by_link)] {
        let r = npstack(&["--debug-dir", dir.to_str().unwrap()]);
        assert!(named(&r), "{how}: {r}");
    }
    let verbose = npstack(&["-v", "--debug-dir", by_id.to_str().unwrap()]);
    assert!(verbose.contains("roots_lib.c:"), "{verbose}");
    // Another build's debug file is not used, wherever it is.
    for dir in [&wrong, &wrong_link] {
        let r = npstack(&["--debug-dir", dir.to_str().unwrap()]);
        assert!(!named(&r), "{}: {r}", dir.display());
    }
    // Given twice: the second directory is searched too.
    let r = npstack(&[
        "--debug-dir",
        wrong.to_str().unwrap(),
        "--debug-dir",
        by_link.to_str().unwrap(),
    ]);
    assert!(named(&r), "{r}");
}

/// The stacks fixture (see npstack.rs), and another build of it.
fn stacks_builds() -> (PathBuf, PathBuf) {
    (
        fixture_variant("stacks", "o2", &["-O2", "-fomit-frame-pointer"]),
        fixture_variant("stacks", "o1", &["-O1", "-DNPT_OTHER_BUILD=1"]),
    )
}

fn wait_all_in_read(pid: i32) {
    eventually(10, "threads not started", || {
        let n = task_states(pid).len();
        if n >= 2 { Ok(()) } else { Err(n.to_string()) }
    });
    for (tid, _) in task_states(pid) {
        wait_in_syscall(pid, tid, 0);
    }
}

#[test]
fn a_file_of_another_build_at_the_path_is_passed_over_and_named() {
    let (right, other) = stacks_builds();
    let dir = scratch();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let private = bin.join("stacks-private");
    link_or_copy(&right, &private);

    // Live, in a namespace where the path holds another build: the mapped
    // file is read through /proc/PID/map_files, and the other is named.
    let (ns, pid) = start_hidden(
        &private,
        &[],
        &[("NPT_THREADS", "1")],
        &bin,
        Some(&other),
        dir.path(),
    );
    wait_all_in_read(pid);
    let r = run_tool("npstack", [&pid.to_string()]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(r.text().contains("npt_leaf () + "), "{}", r.text());
    let inside = format!("/proc/{pid}/root{}", private.display());
    assert!(
        r.stderr.contains(&inside)
            && r.stderr.contains("build-id")
            && r.stderr.contains(&format!("/proc/{pid}/map_files/")),
        "names the file passed over and the one used: {}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "once: {}", r.stderr);
    drop(ns);

    // A core, with another build under the sysroot and the right one on
    // this machine: the sysroot's is passed over, and named.
    let spawn = Spawn::new(&private).env("NPT_THREADS", "1");
    let (_kd, core) = kernel_core(&spawn, |kp| wait_all_in_read(kp.pid()));
    let core = core.to_str().unwrap();
    let sysroot = dir.path().join("sysroot");
    place(&other, &sysroot.join(private.strip_prefix("/").unwrap()));
    let r = run_tool("npstack", ["--sysroot", sysroot.to_str().unwrap(), core]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(r.text().contains("npt_leaf () + "), "{}", r.text());
    let in_sysroot = sysroot.join(private.strip_prefix("/").unwrap());
    assert!(
        r.stderr.contains(in_sysroot.to_str().unwrap()) && r.stderr.contains("is used instead"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "once: {}", r.stderr);

    // Nothing right anywhere: named, and its frames are offsets.
    link_or_copy(&other, &private);
    let r = run_tool("npstack", ["--sysroot", sysroot.to_str().unwrap(), core]);
    assert!(!r.text().contains("npt_leaf"), "{}", r.text());
    assert!(r.stderr.contains("build-id"), "{}", r.stderr);
}

#[test]
fn sysroot_and_debug_dir_on_every_tool_that_reads_a_binary() {
    let dir = scratch();
    let p = node_eval("").start();
    let pid = p.pid_arg();
    let d = dir.path().to_str().unwrap();
    for tool_name in ["npstack", "npenv", "npmap"] {
        let r = run_tool(tool_name, ["--sysroot", d, "--debug-dir", d, &pid]);
        assert_eq!(r.code(), 0, "{tool_name}: {}", r.stderr);
    }
    let r = run_tool("npargs", ["-e", "--sysroot", d, "--debug-dir", d, &pid]);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    // A directory that is not there: one line naming it, exit 1.
    let missing = dir.path().join("missing");
    for tool_name in ["npstack", "npenv", "npargs", "npmap"] {
        for flag in ["--sysroot", "--debug-dir"] {
            let r = run_tool(tool_name, [flag, missing.to_str().unwrap(), &pid]);
            assert_eq!(r.code(), 1, "{tool_name} {flag}");
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
            assert!(
                r.stderr.contains(missing.to_str().unwrap()) && !r.stderr.contains("panicked"),
                "{}",
                r.stderr
            );
        }
    }
}

#[test]
fn a_containers_stripped_libc_is_named_from_this_machines_debug_file() {
    // A container as runtimes make one: its own mount namespace whose root
    // is a directory pivoted to, so /proc/PID/maps names the container's
    // own paths, which resolve under /proc/PID/root. Its libc is a copy of
    // this machine's (stripped); the debug file is only on this machine.
    libc_debug_file();
    let dir = scratch();
    let root = dir.path().join("root");
    let node = node();
    populate(&root, &[&node]);
    std::fs::create_dir_all(root.join("old")).unwrap();
    let script = format!(
        "cd '{}' && mount --bind . . && cd . && pivot_root . old && exec {} -e \"$0\"",
        root.display(),
        node.display()
    );
    let p = Spawn::new(which("unshare"))
        .args_of(&["--mount", "--pid", "--fork", "--kill-child", "sh", "-c"])
        .arg(&script)
        .arg(NODE_SCRIPT)
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .start();
    let pid: i32 = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid()))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("node")
        .parse()
        .unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        maps.lines()
            .any(|l| l.ends_with(&format!(" {}", node.display()))),
        "the container's own path: {maps}"
    );
    let report = node_report(pid, None, &[]);
    check_node_frames(&report);
    check_npenv(pid, &[]);
}
