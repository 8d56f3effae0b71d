//! npargs against real processes and their kernel and gcore cores.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;

use nptools_tests::*;

/// argv chosen to break naive tools: spaces, quotes, a tab, a newline, an
/// empty string, a byte that is not UTF-8, a backslash, an escape sequence.
fn hostile_args() -> Vec<Vec<u8>> {
    vec![
        b"two words".to_vec(),
        b"it's \"quoted\"".to_vec(),
        b"tab\there".to_vec(),
        b"new\nline".to_vec(),
        b"".to_vec(),
        b"bad\xffbyte".to_vec(),
        b"back\\slash".to_vec(),
        b"\x1b[31mred\x1b[0m".to_vec(),
        "caf\u{e9}".as_bytes().to_vec(),
    ]
}

/// The same arguments as npargs must print them (escaped by hand here, not
/// by the code under test).
fn hostile_args_escaped() -> Vec<&'static str> {
    vec![
        "two words",
        "it's \"quoted\"",
        "tab\\x09here",
        "new\\x0aline",
        "",
        "bad\\xffbyte",
        "back\\\\slash",
        "\\x1b[31mred\\x1b[0m",
        "caf\u{e9}",
    ]
}

fn spawn_hostile() -> Spawn {
    let mut s = Spawn::new(fixture("argsenv"))
        .env("HOME", "/nowhere")
        .env("NPT_GREETING", "hello world")
        .env(
            OsString::from("NPT_BYTES"),
            OsString::from_vec(b"\x01\xfe".to_vec()),
        );
    for a in hostile_args() {
        s = s.arg(OsString::from_vec(a));
    }
    s
}

fn expected_argv_lines(program: &std::path::Path) -> Vec<Vec<u8>> {
    let mut v = vec![program.as_os_str().as_encoded_bytes().to_vec()];
    v.extend(hostile_args_escaped().iter().map(|s| s.as_bytes().to_vec()));
    v
}

/// The kernel's pr_psargs for our argv, raw: the first 79 bytes of the
/// argument area, NULs as spaces.
fn psargs_area(program: &std::path::Path) -> Vec<u8> {
    let mut area = program.as_os_str().as_encoded_bytes().to_vec();
    for a in hostile_args() {
        area.push(b' ');
        area.extend_from_slice(&a);
    }
    area.truncate(79);
    // As the kernel's pr_psargs is read: without trailing spaces (the cut
    // can end on the space between two arguments, depending on the
    // fixture's path).
    while area.last() == Some(&b' ') {
        area.pop();
    }
    area
}

/// The kernel's pr_psargs for our argv, escaped.
fn expected_psargs(program: &std::path::Path) -> String {
    let mut s = String::new();
    for chunk in psargs_area(program).utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[test]
fn argv_is_the_same_live_and_from_gcore_and_kernel_cores() {
    let spawn = spawn_hostile();
    let program = spawn.program.clone();
    let p = spawn.start();

    let live = run_tool("npargs", [p.pid_arg()]);
    let live_text = live.stdout.clone();
    live.ok();
    let want = expected_argv_lines(&program);
    assert_eq!(
        indexed(&live_text, "argv"),
        want,
        "live argv\n{}",
        show(&live_text)
    );
    let first = live_text.split(|&b| b == b'\n').next().unwrap();
    assert_eq!(
        String::from_utf8_lossy(first),
        format!("{}:\t{}", p.pid(), expected_psargs(&program))
    );

    let dir = scratch();
    let g = gcore(p.pid(), dir.path());
    let gr = run_tool("npargs", [&g]);
    assert_eq!(gr.code(), 0, "{}", gr.stderr);
    assert_eq!(indexed(&gr.stdout, "argv"), want, "gcore argv");
    let gfirst = gr.text().lines().next().unwrap().to_owned();
    assert_eq!(
        gfirst,
        format!(
            "core '{}' of {}:\t{}",
            g.display(),
            p.pid(),
            expected_psargs(&program)
        )
    );

    let (_kd, k) = kernel_core(&spawn, |_| {});
    let kr = run_tool("npargs", [&k]);
    assert_eq!(kr.code(), 0, "{}", kr.stderr);
    assert_eq!(indexed(&kr.stdout, "argv"), want, "kernel core argv");
    assert!(
        kr.text()
            .lines()
            .next()
            .unwrap()
            .ends_with(&format!(":\t{}", expected_psargs(&program)))
    );
    // Nothing a hostile argv holds reaches the terminal raw.
    for out in [&live_text, &gr.stdout, &kr.stdout] {
        assert!(!out.contains(&0x1b), "raw ESC in output");
        assert!(std::str::from_utf8(out).is_ok(), "output is valid UTF-8");
    }
}

#[test]
fn raw_and_json_carry_the_exact_bytes() {
    let spawn = spawn_hostile();
    let p = spawn.start();
    let raw = run_tool("npargs", ["--raw".to_owned(), p.pid_arg()]);
    assert_eq!(raw.code(), 0);
    // With --raw, a newline inside an argument is written as is; so compare
    // the whole output with what we expect byte for byte.
    let mut want = Vec::new();
    let program = spawn.program.as_os_str().as_encoded_bytes().to_vec();
    let mut all = vec![program.clone()];
    all.extend(hostile_args());
    for (i, a) in all.iter().enumerate() {
        want.extend_from_slice(format!("argv[{i}]: ").as_bytes());
        want.extend_from_slice(a);
        want.push(b'\n');
    }
    // The header carries psargs raw too.
    let mut whole = format!("{}:\t", p.pid()).into_bytes();
    whole.extend_from_slice(&psargs_area(&spawn.program));
    whole.push(b'\n');
    whole.extend_from_slice(&want);
    assert_eq!(show(&raw.stdout), show(&whole));

    let j = run_tool("npargs", ["--json".to_owned(), p.pid_arg()]);
    let doc: serde_json::Value = serde_json::from_slice(&j.stdout).expect("valid JSON");
    assert_eq!(doc["pid"], p.pid());
    assert_eq!(doc["source"], "live");
    let argv = doc["argv"].as_array().unwrap();
    assert_eq!(argv.len(), all.len());
    for (got, want) in argv.iter().zip(&all) {
        let bytes: Vec<u8> = match got {
            serde_json::Value::String(s) => s.as_bytes().to_vec(),
            serde_json::Value::Array(a) => a.iter().map(|b| b.as_u64().unwrap() as u8).collect(),
            other => panic!("unexpected JSON {other}"),
        };
        assert_eq!(show(&bytes), show(want));
    }
    // Non-UTF-8 goes as an array of bytes, valid UTF-8 as a string.
    assert!(argv[6].is_array());
    assert!(argv[1].is_string());
}

#[test]
fn dash_l_line_reruns_the_same_argv_in_bash() {
    let spawn = spawn_hostile();
    let p = spawn.start();
    let line = run_tool("npargs", ["-l".to_owned(), p.pid_arg()]).ok();
    assert_eq!(line.lines().count(), 1, "one line: {line:?}");
    assert!(!line.contains('\x1b'), "the line is safe to print");
    // Run the line; NPT_ECHO makes the fixture print its argv and exit.
    let out = run_command(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(line.trim_end())
            .env_clear()
            .env("NPT_ECHO", "1"),
    );
    assert_eq!(out.code(), 0, "bash failed: {}", out.stderr);
    let mut want = Vec::new();
    want.extend_from_slice(spawn.program.as_os_str().as_encoded_bytes());
    want.push(0);
    for a in hostile_args() {
        want.extend_from_slice(&a);
        want.push(0);
    }
    assert_eq!(show(&out.stdout), show(&want));
}

fn auxv_lines(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| {
            l.starts_with("AT_")
                || l.split_whitespace()
                    .next()
                    .is_some_and(|w| w.parse::<u64>().is_ok())
        })
        .map(|l| {
            let mut parts = l.splitn(3, char::is_whitespace).filter(|s| !s.is_empty());
            let name = parts.next().unwrap().to_owned();
            let rest = l[name.len()..].trim_start();
            let (value, decoded) = rest.split_once(' ').unwrap_or((rest, ""));
            (name, value.to_owned(), decoded.trim().to_owned())
        })
        .collect()
}

#[test]
fn auxv_is_decoded_live_and_from_cores() {
    let spawn = spawn_hostile();
    let p = spawn.start();
    let live = run_tool("npargs", ["-x".to_owned(), p.pid_arg()]).ok();
    let entries = auxv_lines(&live);
    let get = |name: &str| {
        entries
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("{name} missing in\n{live}"))
            .clone()
    };
    assert_eq!(get("AT_PAGESZ").2, "4096");
    assert_eq!(get("AT_PAGESZ").1, "0x0000000000001000");
    assert_eq!(get("AT_EXECFN").2, spawn.program.display().to_string());
    assert_eq!(get("AT_PLATFORM").2, "x86_64");
    assert_eq!(get("AT_UID").2, "0(root)");
    assert_eq!(get("AT_EGID").2, "0(root)");
    assert_eq!(get("AT_SECURE").2, "0 (no)");
    assert!(get("AT_HWCAP").2.contains("fpu"), "{:?}", get("AT_HWCAP"));
    assert_eq!(get("AT_SYSINFO_EHDR").2, "[vdso]");
    assert!(
        get("AT_ENTRY")
            .2
            .starts_with(&spawn.program.display().to_string())
    );
    assert!(
        get("AT_BASE").2.contains("ld-linux"),
        "{:?}",
        get("AT_BASE")
    );
    // The raw /proc/PID/auxv has the same entries, in the same order.
    let raw = std::fs::read(format!("/proc/{}/auxv", p.pid())).unwrap();
    let keys: Vec<u64> = raw
        .chunks_exact(16)
        .map(|c| u64::from_le_bytes(c[..8].try_into().unwrap()))
        .take_while(|&k| k != 0)
        .collect();
    assert_eq!(keys.len(), entries.len());

    let dir = scratch();
    let g = gcore(p.pid(), dir.path());
    let from_core = run_tool("npargs", ["-x".as_ref(), g.as_os_str()]).ok();
    assert_eq!(auxv_lines(&from_core), entries, "gcore auxv matches live");

    let (_kd, k) = kernel_core(&spawn, |_| {});
    let kx = run_tool("npargs", ["-x".as_ref(), k.as_os_str()]).ok();
    let kentries = auxv_lines(&kx);
    assert_eq!(kentries.len(), entries.len());
    let kget = |name: &str| kentries.iter().find(|e| e.0 == name).unwrap().2.clone();
    assert_eq!(kget("AT_EXECFN"), spawn.program.display().to_string());
    assert_eq!(kget("AT_PLATFORM"), "x86_64");
    assert_eq!(kget("AT_UID"), "0(root)");
}

#[test]
fn sections_and_operands_are_separated_like_pargs() {
    let spawn = Spawn::new(fixture("argsenv")).arg("one").env("A", "1");
    let p1 = spawn.start();
    let p2 = spawn.start();
    let out = run_tool("npargs", ["-a", "-e", &p1.pid_arg(), &p2.pid_arg()]).ok();
    let program = spawn.program.display().to_string();
    let want = format!(
        "{p1}:\t{program} one\nargv[0]: {program}\nargv[1]: one\n\nenvp[0]: A=1\n\n\
         {p2}:\t{program} one\nargv[0]: {program}\nargv[1]: one\n\nenvp[0]: A=1\n",
        p1 = p1.pid(),
        p2 = p2.pid()
    );
    assert_eq!(out, want);
    // -e alone prints the environment only, as pargs -e does.
    let env_only = run_tool("npargs", ["-e", &p1.pid_arg()]).ok();
    assert_eq!(
        env_only,
        format!("{}:\t{program} one\nenvp[0]: A=1\n", p1.pid())
    );
}

#[test]
fn json_lines_one_object_per_operand() {
    let spawn = Spawn::new(fixture("argsenv")).arg("x").env("A", "1");
    let p1 = spawn.start();
    let p2 = spawn.start();
    let out = run_tool(
        "npargs",
        ["--json", "-e", "-x", &p1.pid_arg(), &p2.pid_arg()],
    )
    .ok();
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1]["pid"], p2.pid());
    assert_eq!(docs[0]["envp"], serde_json::json!(["A=1"]));
    assert_eq!(docs[0]["envp_origin"], "environ");
    let auxv = docs[0]["auxv"].as_array().unwrap();
    let pagesz = auxv.iter().find(|a| a["name"] == "AT_PAGESZ").unwrap();
    assert_eq!(pagesz["value"], 4096);
    assert_eq!(pagesz["type"], 6);
}

#[test]
fn argv0_pointed_at_its_basename_reads_the_same_live_and_from_cores() {
    let spawn = Spawn::new(fixture("argsenv"))
        .arg("an arg")
        .env("NPT_BASENAME", "1");
    let p = spawn.start();
    let want = vec![
        spawn.program.as_os_str().as_encoded_bytes().to_vec(),
        b"an arg".to_vec(),
    ];
    let live = run_tool("npargs", [p.pid_arg()]);
    assert_eq!(indexed(&live.stdout, "argv"), want);
    let dir = scratch();
    let g = run_tool("npargs", [gcore(p.pid(), dir.path())]);
    assert_eq!(indexed(&g.stdout, "argv"), want, "gcore");
    let (_kd, k) = kernel_core(&spawn, |_| {});
    let k = run_tool("npargs", [&k]);
    assert_eq!(indexed(&k.stdout, "argv"), want, "kernel core");
    let header = |r: &Run| {
        r.text()
            .lines()
            .next()
            .unwrap()
            .split_once('\t')
            .unwrap()
            .1
            .to_owned()
    };
    assert_eq!(header(&g), header(&live));
    assert_eq!(header(&k), header(&live));
}

#[test]
fn a_node_process_title_shows_as_the_title_with_a_warning_live_and_from_a_core() {
    // libuv writes the title over the argument area and pads it with NULs;
    // that must not read as a title followed by dozens of empty arguments.
    let spawn = node_eval("process.title = 'myapp';");
    let p = spawn.start();
    let (_kd, core) = kernel_core(&spawn, |_| {});
    for operand in [p.pid_arg().into(), core.into_os_string()] {
        let r = run_tool("npargs", [&operand]);
        assert_eq!(r.code(), 0, "{}", r.stderr);
        assert_eq!(indexed(&r.stdout, "argv"), [b"myapp"], "{operand:?}");
        assert!(r.text().lines().next().unwrap().ends_with(":\tmyapp"));
        assert!(
            r.stderr.contains("wrote over its argument area"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn real_empty_trailing_arguments_are_never_dropped() {
    let p = Spawn::new(fixture("argsenv"))
        .arg("x")
        .arg("")
        .arg("")
        .start();
    let want: Vec<Vec<u8>> = vec![
        fixture("argsenv").as_os_str().as_encoded_bytes().to_vec(),
        b"x".to_vec(),
        b"".to_vec(),
        b"".to_vec(),
    ];
    // With access to memory, argc tells them from a title's padding.
    let r = run_tool("npargs", [p.pid_arg()]);
    assert_eq!(indexed(&r.stdout, "argv"), want);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // Without it (another user), they are kept, and the doubt is said.
    let r = run_command(
        std::process::Command::new(tool("npargs"))
            .arg(p.pid_arg())
            .uid(65534)
            .gid(65534),
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(indexed(&r.stdout, "argv"), want);
    assert!(r.stderr.contains("cannot be told apart"), "{}", r.stderr);
}
