//! npfiles: every descriptor the fixture made, described as it made it;
//! exact `--type` counts and the seed pipeline; a node server with 100
//! clients; 20,000 descriptors; the refusal on cores.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nptools_tests::*;

/// A field of the `ready key=value ...` line; it must be there.
fn field<'a>(p: &'a Proc, key: &str) -> &'a str {
    p.ready_field(key)
        .unwrap_or_else(|| panic!("{key} in {:?}", p.ready_line))
}

struct Fixture {
    proc: Proc,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start(conns: usize, many: usize) -> Self {
        Self::start_with(&[&conns.to_string(), &many.to_string()])
    }
    fn start_with(args: &[&str]) -> Self {
        let dir = scratch();
        let mut spawn = Spawn::new(fixture("openfiles"));
        for a in args {
            spawn = spawn.arg(a);
        }
        spawn.cwd = Some(dir.path().to_owned());
        let proc = spawn.start();
        Fixture { proc, dir }
    }
    fn field(&self, key: &str) -> &str {
        field(&self.proc, key)
    }
    fn fd(&self, key: &str) -> i32 {
        self.field(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} in {:?}", self.proc.ready_line))
    }
    fn num(&self, key: &str) -> u64 {
        self.field(key).parse().unwrap()
    }
    /// The fixture's directory as the process sees it.
    fn cwd(&self) -> String {
        std::fs::read_link(format!("/proc/{}/cwd", self.proc.pid()))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
    /// (client fd, client port, accepted fd) per connection.
    fn connections(&self) -> Vec<(i32, u16, i32)> {
        self.field("clients")
            .split(',')
            .map(|c| {
                let v: Vec<&str> = c.split(':').collect();
                (
                    v[0].parse().unwrap(),
                    v[1].parse().unwrap(),
                    v[2].parse().unwrap(),
                )
            })
            .collect()
    }
}

/// Split a report into its descriptors: fd -> the fd line and the lines
/// under it.
fn blocks(report: &str) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in report.lines() {
        let t = line.trim_start();
        // `%4d: `: indented up to three spaces, none from fd 1000 on.
        let fd_line = line.len() - t.len() < 4
            && t.split_once(": ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if fd_line {
            let fd: i32 = t.split_once(':').unwrap().0.parse().unwrap();
            current = Some(fd);
            out.insert(fd, vec![line.to_owned()]);
        } else if let Some(fd) = current {
            out.get_mut(&fd).unwrap().push(line.trim().to_owned());
        }
    }
    out
}

fn has(block: &[String], want: &str) -> bool {
    block.iter().any(|l| l == want)
}

#[track_caller]
fn expect(blocks: &BTreeMap<i32, Vec<String>>, fd: i32, lines: &[&str]) {
    let b = blocks
        .get(&fd)
        .unwrap_or_else(|| panic!("fd {fd} missing from the report"));
    for want in lines {
        assert!(has(b, want), "fd {fd}: no line {want:?} in {b:#?}");
    }
}

fn npfiles(args: &[&str]) -> Run {
    run_tool("npfiles", args)
}

fn count_lines(out: &str) -> usize {
    out.lines().count()
}

/// What `ls -l /proc/PID/fd | grep -c socket` counts.
fn sockets_in_proc(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// The number of a descriptor's fd line's `ino:` field.
fn ino_of(block: &[String]) -> u64 {
    block[0]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ino:"))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn every_descriptor_the_fixture_made_is_described() {
    let fx = Fixture::start(5, 0);
    let pid = fx.proc.pid_arg();
    let cwd = fx.cwd();
    let run = npfiles(&[&pid]);
    let report = run.ok();
    assert!(run.stderr.is_empty(), "no warnings: {}", run.stderr);
    let mut lines = report.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with(&format!("{pid}:\t")), "{header}");
    assert!(header.contains("openfiles 5 0"), "{header}");
    assert_eq!(
        lines.next().unwrap(),
        format!("  Current rlimit: {} file descriptors", fx.field("rlimit"))
    );
    let b = blocks(&report);

    // The pipe: each end names the other.
    let (r, w) = (fx.fd("pipe_r"), fx.fd("pipe_w"));
    let pipe_ino = ino_of(&b[&r]);
    assert_eq!(ino_of(&b[&w]), pipe_ino);
    assert!(b[&r][0].contains(": S_IFIFO mode:0600 "), "{:?}", b[&r]);
    let pipe = format!("pipe:[{pipe_ino}]");
    expect(&b, r, &["O_RDONLY", &pipe, &format!("other end: fd {w}")]);
    expect(&b, w, &["O_WRONLY", &pipe, &format!("other end: fd {r}")]);

    // The regular file: mode, size, flags, escaped path, offset.
    let file = fx.fd("file");
    assert!(
        b[&file][0].contains(": S_IFREG mode:0640 ") && b[&file][0].ends_with(" size:3000"),
        "{:?}",
        b[&file]
    );
    let meta = std::fs::metadata(fx.dir.path().join("data-\x1b.txt")).unwrap();
    assert!(
        b[&file][0].contains(&format!(" ino:{} ", meta.ino())),
        "{:?}",
        b[&file]
    );
    expect(
        &b,
        file,
        &[
            "O_RDWR|O_LARGEFILE",
            &format!("{cwd}/data-\\x1b.txt"),
            "offset:1234",
        ],
    );
    expect(
        &b,
        fx.fd("gone"),
        &[
            "O_WRONLY|O_APPEND|O_LARGEFILE",
            &format!("{cwd}/gone.txt (deleted)"),
        ],
    );
    let dir = fx.fd("dir");
    assert!(b[&dir][0].contains(": S_IFDIR "), "{:?}", b[&dir]);
    expect(&b, dir, &["O_RDONLY|O_LARGEFILE|O_DIRECTORY", &cwd]);
    // A FIFO opened O_RDWR holds both of its ends.
    let fifo = fx.fd("fifo");
    expect(
        &b,
        fifo,
        &[
            "O_RDWR|O_NONBLOCK|O_LARGEFILE",
            &format!("{cwd}/fifo"),
            &format!("other end: fd {fifo}"),
        ],
    );

    // Anonymous inodes.
    let efd = fx.fd("eventfd");
    assert!(
        b[&efd][0].contains(": S_IFANON mode:0600 "),
        "{:?}",
        b[&efd]
    );
    expect(
        &b,
        efd,
        &[
            "O_RDWR|O_CLOEXEC",
            "anon_inode:[eventfd]",
            "eventfd count:7",
        ],
    );
    let ep = fx.fd("epoll");
    let watching = b[&ep]
        .iter()
        .find_map(|l| l.strip_prefix("epoll watching fds: "))
        .unwrap_or_else(|| panic!("{:?}", b[&ep]));
    let watched: BTreeSet<i32> = watching.split(',').map(|s| s.parse().unwrap()).collect();
    assert_eq!(watched, BTreeSet::from([r, efd]));
    let tfd = fx.fd("timerfd");
    let timer = b[&tfd].iter().find(|l| l.starts_with("timerfd ")).unwrap();
    assert!(
        timer.starts_with("timerfd CLOCK_MONOTONIC value:9")
            && timer.contains(" interval:2.500000000s"),
        "{timer}"
    );
    expect(
        &b,
        fx.fd("signalfd"),
        &["anon_inode:[signalfd]", "signalfd signals: SIGUSR1,SIGUSR2"],
    );
    expect(
        &b,
        fx.fd("pidfd"),
        &["anon_inode:[pidfd]", &format!("pidfd pid:{pid}")],
    );
    let dmeta = std::fs::metadata(fx.dir.path()).unwrap();
    let (major, minor) = (
        nix::sys::stat::major(dmeta.dev()),
        nix::sys::stat::minor(dmeta.dev()),
    );
    expect(
        &b,
        fx.fd("inotify"),
        &[&format!(
            "inotify wd:1 dev:{major},{minor} ino:{} mask:0x300",
            dmeta.ino()
        )],
    );

    // TCP: the listener and both ends of each connection, each naming the
    // fd that holds its peer.
    let port = fx.num("tcp_port");
    let listener = fx.fd("tcp_listen");
    assert!(
        b[&listener][0].contains(": S_IFSOCK "),
        "{:?}",
        b[&listener]
    );
    expect(
        &b,
        listener,
        &[
            "SOCK_STREAM",
            &format!("sockname: AF_INET 127.0.0.1  port: {port}"),
            "state: LISTEN",
        ],
    );
    for (c, cport, a) in fx.connections() {
        expect(
            &b,
            c,
            &[
                &format!("sockname: AF_INET 127.0.0.1  port: {cport}"),
                &format!("peername: AF_INET 127.0.0.1  port: {port}"),
                "state: ESTABLISHED",
                &format!("peer: fd {a} of this process"),
            ],
        );
        expect(
            &b,
            a,
            &[
                &format!("sockname: AF_INET 127.0.0.1  port: {port}"),
                &format!("peername: AF_INET 127.0.0.1  port: {cport}"),
                &format!("peer: fd {c} of this process"),
            ],
        );
    }
    let udp = fx.fd("udp");
    expect(
        &b,
        udp,
        &[
            "SOCK_DGRAM",
            &format!(
                "sockname: AF_INET 127.0.0.1  port: {}",
                fx.field("udp_port")
            ),
        ],
    );
    assert!(!b[&udp].iter().any(|l| l.starts_with("peername:")));
    expect(
        &b,
        fx.fd("tcp6"),
        &[
            &format!("sockname: AF_INET6 ::1  port: {}", fx.field("tcp6_port")),
            "state: LISTEN",
        ],
    );

    // UNIX: the pair names each other by inode and fd; the path and
    // abstract names are shown, escaped.
    let pair: Vec<i32> = fx
        .field("pair")
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let (p0, p1) = (pair[0], pair[1]);
    expect(
        &b,
        p0,
        &[
            "state: CONNECTED",
            &format!("peer: ino:{} fd {p1} of this process", ino_of(&b[&p1])),
        ],
    );
    expect(
        &b,
        p1,
        &[&format!(
            "peer: ino:{} fd {p0} of this process",
            ino_of(&b[&p0])
        )],
    );
    let sock_path = format!("AF_UNIX {cwd}/sock");
    expect(
        &b,
        fx.fd("unix_listen"),
        &[&format!("sockname: {sock_path}"), "state: LISTEN"],
    );
    let (uc, ua) = (fx.fd("unix_client"), fx.fd("unix_accepted"));
    expect(
        &b,
        uc,
        &[
            &format!("peername: {sock_path}"),
            &format!("peer: ino:{} fd {ua} of this process", ino_of(&b[&ua])),
        ],
    );
    expect(
        &b,
        ua,
        &[
            &format!("sockname: {sock_path}"),
            &format!("peer: ino:{} fd {uc} of this process", ino_of(&b[&uc])),
        ],
    );
    expect(
        &b,
        fx.fd("unix_abstract"),
        &[
            "SOCK_DGRAM",
            &format!("sockname: AF_UNIX @npfiles-\\x1b-test-{pid}"),
        ],
    );

    // A socket that is not TCP, UDP or UNIX is still a socket, and says so.
    let nl = fx.fd("netlink");
    let nl_ino = ino_of(&b[&nl]);
    assert!(b[&nl][0].contains(": S_IFSOCK "), "{:?}", b[&nl]);
    expect(
        &b,
        nl,
        &[
            "O_RDWR|O_CLOEXEC",
            &format!("socket:[{nl_ino}] (not in the kernel's TCP, UDP or UNIX socket tables)"),
        ],
    );

    // -n: the header, the rlimit and one line per descriptor.
    let n = npfiles(&["-n", &pid]).ok();
    assert_eq!(count_lines(&n), 2 + b.len(), "{n}");
    assert_eq!(blocks(&n).len(), b.len());
    // --raw: the bytes as they are.
    let raw = npfiles(&["--raw", &pid]);
    assert_eq!(raw.code(), 0);
    let raw_text = String::from_utf8_lossy(&raw.stdout);
    assert!(raw_text.contains(&format!("{cwd}/data-\x1b.txt\n")));
    assert!(raw_text.contains(&format!("sockname: AF_UNIX @npfiles-\x1b-test-{pid}\n")));
}

#[test]
fn type_counts_are_exact_and_the_seed_pipeline_works() {
    let conns = 7;
    let fx = Fixture::start(conns, 0);
    let pid = fx.proc.pid_arg();
    // listener + both ends of each connection + the IPv6 listener + the
    // socket only bound.
    let tcp = 1 + 2 * conns + 1 + 1;
    let unix = 2 + 3 + 1;
    // ... and one netlink socket.
    let sock = tcp + 1 + unix + 1;
    // The pipe's two ends, the named FIFO, and stdout (a pipe to us).
    let expected = [
        ("sock", sock),
        ("tcp", tcp),
        ("udp", 1),
        ("unix", unix),
        ("fifo", 4),
        ("anon", 6),
        ("dir", 1),
        ("file", 2),
        // stdin, stderr and the fixture's /dev/null.
        ("chr", 3),
        ("blk", 0),
    ];
    // Each type's listing, for the checks below.
    let mut listed = BTreeMap::new();
    for (t, n) in expected {
        let run = npfiles(&["--type", t, &pid]);
        let out = run.ok();
        assert!(run.stderr.is_empty(), "{}", run.stderr);
        assert_eq!(count_lines(&out), n, "--type {t}:\n{out}");
        for line in out.lines() {
            let ty = line.split_whitespace().nth(1).unwrap();
            let ok = ty == t || (t == "sock" && ["tcp", "udp", "unix"].contains(&ty));
            assert!(ok, "--type {t}: {line}");
        }
        listed.insert(t, out);
    }
    let socks = &listed["sock"];
    let nl = format!("{:4}: sock socket:[", fx.fd("netlink"));
    assert!(socks.lines().any(|l| l.starts_with(&nl)), "{socks}");
    let tcp_lines = &listed["tcp"];
    let port = fx.num("tcp_port");
    assert!(
        tcp_lines.lines().any(|l| l == listener_line(&fx.proc)),
        "{tcp_lines}"
    );
    let (c, cport, a) = fx.connections()[0];
    for want in [
        format!("{c:4}: tcp 127.0.0.1:{cport} 127.0.0.1:{port} ESTABLISHED"),
        format!("{a:4}: tcp 127.0.0.1:{port} 127.0.0.1:{cport} ESTABLISHED"),
        format!(
            "{:4}: tcp [::1]:{} *:* LISTEN",
            fx.fd("tcp6"),
            fx.field("tcp6_port")
        ),
    ] {
        assert!(tcp_lines.lines().any(|l| l == want), "{want}\n{tcp_lines}");
    }

    // The seed document's pipeline, verbatim, beside what the kernel lists.
    let tool = tool("npfiles");
    let seed = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' {pid} | grep '^[ ]*[0-9]\\+\\:' | grep IFSOCK | wc -l",
            tool.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&seed.stdout).trim(),
        sock.to_string()
    );
    assert_eq!(sockets_in_proc(fx.proc.pid()), sock);

    // The /proc/PID/net fallback agrees with netlink on inet sockets and
    // finds the same UNIX sockets (without their peers).
    let fallback =
        run_command(Command::new(tool).args(["--sockets-from-procfs", "--type", "sock", &pid]));
    let fb = fallback.ok();
    // The same listing, from netlink.
    let netlink = socks;
    // /proc/PID/net has no UNIX peers and no sockets that are only bound.
    let bound = format!("{:4}: ", fx.fd("tcp_bound"));
    let inet = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.contains(": unix ") && !l.starts_with(&bound))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(inet(&fb), inet(netlink));
    assert_eq!(count_lines(&fb), sock);
    let bound_line = format!(
        "{bound}tcp 127.0.0.1:{} *:* CLOSE",
        fx.field("tcp_bound_port")
    );
    assert!(netlink.lines().any(|l| l == bound_line), "{netlink}");
}

#[test]
fn json_is_complete() {
    let fx = Fixture::start(2, 0);
    let pid = fx.proc.pid_arg();
    let out = npfiles(&["--json", &pid]).ok();
    assert_eq!(out.lines().count(), 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["pid"], fx.proc.pid());
    assert_eq!(doc["source"], "live");
    assert_eq!(doc["socket_source"], "netlink");
    assert_eq!(doc["rlimit"], fx.num("rlimit"));
    let fds = doc["fds"].as_array().unwrap();
    let by_fd = |fd: i32| {
        fds.iter()
            .find(|f| f["fd"] == fd)
            .unwrap_or_else(|| panic!("fd {fd} in {out}"))
    };
    let file = by_fd(fx.fd("file"));
    assert_eq!(file["type"], "file");
    assert_eq!(file["offset"], 1234);
    assert_eq!(file["size"], 3000);
    assert_eq!(file["mode"], 0o640);
    assert_eq!(file["flags"], serde_json::json!(["O_RDWR", "O_LARGEFILE"]));
    assert_eq!(file["path"], format!("{}/data-\x1b.txt", fx.cwd()));
    assert_eq!(file["deleted"], false);
    assert_eq!(by_fd(fx.fd("gone"))["deleted"], true);
    let l = by_fd(fx.fd("tcp_listen"));
    assert_eq!(l["type"], "tcp");
    assert_eq!(l["socket"]["state"], "LISTEN");
    assert_eq!(l["socket"]["local"]["address"], "127.0.0.1");
    assert_eq!(l["socket"]["local"]["port"], fx.num("tcp_port"));
    let (c, _, a) = fx.connections()[1];
    assert_eq!(by_fd(c)["socket"]["peer_fds"], serde_json::json!([a]));
    let ep = by_fd(fx.fd("epoll"));
    assert_eq!(ep["anon"]["kind"], "eventpoll");
    assert_eq!(ep["anon"]["watches"].as_array().unwrap().len(), 2);
    assert_eq!(by_fd(fx.fd("eventfd"))["anon"]["count"], 7);
    let pipe = by_fd(fx.fd("pipe_r"));
    assert_eq!(
        pipe["pipe"]["other_end_fds"],
        serde_json::json!([fx.fd("pipe_w")])
    );
    let only_udp = npfiles(&["--json", "--type", "udp", &pid]).ok();
    let only_udp: serde_json::Value = serde_json::from_str(&only_udp).unwrap();
    assert_eq!(only_udp["fds"].as_array().unwrap().len(), 1);
    assert_eq!(only_udp["fds"][0]["fd"], fx.fd("udp"));
    let abs = by_fd(fx.fd("unix_abstract"));
    assert_eq!(
        abs["socket"]["local"]["name"],
        format!("@npfiles-\x1b-test-{pid}")
    );
    assert_eq!(abs["socket"]["local"]["abstract"], true);
}

#[test]
fn node_server_with_100_clients() {
    // The server starts a second node process that opens 100 connections
    // and holds them; it says ready once it has accepted all 100. The
    // client exits when its stdin (a pipe from the server) closes.
    let script = r#"
const net = require('net');
const { spawn } = require('child_process');
let n = 0;
const server = net.createServer((c) => {
  if (++n === 100) console.log(`ready port=${server.address().port}`);
});
server.listen(0, '127.0.0.1', () => {
  const client = `
    const net = require('net');
    const socks = [];
    for (let i = 0; i < 100; i++) socks.push(net.connect(${server.address().port}, '127.0.0.1'));
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  `;
  spawn(process.execPath, ['-e', client], { stdio: ['pipe', 'ignore', 'inherit'] });
});
"#;
    let p = Spawn::new(node()).arg("-e").arg(script).start();
    let port = field(&p, "port");
    let out = npfiles(&["--type", "tcp", &p.pid_arg()]).ok();
    assert_eq!(count_lines(&out), 101, "{out}");
    let listen = out.lines().filter(|l| l.ends_with(" LISTEN")).count();
    let accepted = out
        .lines()
        .filter(|l| {
            l.contains(&format!(" tcp 127.0.0.1:{port} 127.0.0.1:")) && l.ends_with(" ESTABLISHED")
        })
        .count();
    assert_eq!((listen, accepted), (1, 100), "{out}");
    let sock = npfiles(&["--type", "sock", &p.pid_arg()]).ok();
    assert_eq!(count_lines(&sock), sockets_in_proc(p.pid()));
}

#[test]
fn twenty_thousand_descriptors() {
    let many = 20_000;
    let fx = Fixture::start(1, many);
    let pid = fx.proc.pid_arg();
    let total = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert_eq!(total, many);
    let (run, peak_kib) = run_with_peak_rss(Command::new(tool("npfiles")).arg(&pid));
    let report = run.ok();
    let b = blocks(&report);
    assert_eq!(b.len(), many);
    assert_eq!(*b.keys().last().unwrap(), many as i32 - 1);
    assert_eq!(
        report.lines().nth(1).unwrap(),
        format!("  Current rlimit: {} file descriptors", fx.field("rlimit"))
    );
    // Every descriptor lands in exactly one type.
    let types = ["chr", "sock", "fifo", "anon", "dir", "file", "blk"];
    let counted: usize = types
        .iter()
        .map(|t| count_lines(&npfiles(&["--type", t, &pid]).ok()))
        .sum();
    assert_eq!(counted, many);
    // Memory stays proportional to a small record per descriptor.
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

/// The fixed refusal for a core, whichever way the core was made.
fn check_core_refusal(core: &Path) {
    let run = npfiles(&[core.to_str().unwrap()]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    let out = run.text();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "only the header: {out}");
    assert!(
        lines[0].starts_with(&format!("core '{}' of ", core.display())),
        "{out}"
    );
    assert_eq!(
        run.stderr,
        format!(
            "npfiles: {}: a Linux core file records no open files, and not a node process: \
             no libuv loop (uv_default_loop) in its executable or a libuv library\n",
            core.display()
        )
    );
    for args in [["--type", "sock"], ["--json", "-n"]] {
        let r = npfiles(&[args[0], args[1], core.to_str().unwrap()]);
        assert_eq!(r.code(), 1);
        assert!(r.stdout.is_empty(), "{}", r.text());
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
}

#[test]
fn cores_record_no_open_files() {
    let (_kd, kernel) = kernel_core(&Spawn::new(fixture("openfiles")).arg("1"), |_| {});
    check_core_refusal(&kernel);
    // gcore writes no descriptor table either.
    let fx = Fixture::start(1, 0);
    let dir = scratch();
    check_core_refusal(&gcore(fx.proc.pid(), dir.path()));
}

#[test]
fn errors_and_usage() {
    let r = npfiles(&["999999999"]);
    assert_eq!(r.code(), 1);
    assert_eq!(r.stderr, "npfiles: 999999999: no such process\n");
    let r = npfiles(&["--type", "bogus", "1"]);
    assert_eq!(r.code(), 2);
    // A good operand after a bad one is still reported.
    let fx = Fixture::start(1, 0);
    let r = npfiles(&["--type", "udp", "999999999", &fx.proc.pid_arg()]);
    assert_eq!(r.code(), 1);
    assert_eq!(count_lines(&r.text()), 1);
}

/// Start the fixture with `conns` connections in a network namespace of
/// its own, under the command `prefix` (unshare and friends), loopback up.
fn in_own_network_namespace(prefix: &[&str], conns: usize, cwd: &Path) -> Proc {
    let mut spawn = Spawn::new(prefix[0]);
    for a in &prefix[1..] {
        spawn = spawn.arg(a);
    }
    let script = format!(
        "ip link set lo up && exec '{}' {conns}",
        fixture("openfiles").display()
    );
    spawn = spawn.arg("sh").arg("-c").arg(script);
    spawn.env = vec![("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into())];
    spawn.cwd = Some(cwd.to_owned());
    spawn.start()
}

/// The `--type tcp` line of the fixture's listener.
fn listener_line(p: &Proc) -> String {
    format!(
        "{:4}: tcp 127.0.0.1:{} *:* LISTEN",
        field(p, "tcp_listen").parse::<i32>().unwrap(),
        field(p, "tcp_port")
    )
}

#[test]
fn sockets_are_looked_up_in_the_target_network_namespace() {
    // A fixture in a network namespace of its own: its sockets are not in
    // ours, so they are only found by asking inside its namespace.
    let dir = scratch();
    let p = in_own_network_namespace(&["unshare", "--net"], 2, dir.path());
    let ours = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    let theirs = std::fs::metadata(format!("/proc/{}/ns/net", p.pid()))
        .unwrap()
        .ino();
    assert_ne!(ours, theirs, "the fixture runs in a namespace of its own");
    let run = npfiles(&["--type", "tcp", &p.pid_arg()]);
    let out = run.ok();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(count_lines(&out), 1 + 2 * 2 + 1 + 1, "{out}");
    assert!(out.lines().any(|l| l == listener_line(&p)), "{out}");
    // The /proc/PID/net fallback reads the same namespace (where a socket
    // only bound is not listed).
    let fb = run_command(Command::new(tool("npfiles")).args([
        "--sockets-from-procfs",
        "--type",
        "tcp",
        &p.pid_arg(),
    ]));
    let bound = format!("{:4}: ", field(&p, "tcp_bound").parse::<i32>().unwrap());
    let without_bound: Vec<&str> = out.lines().filter(|l| !l.starts_with(&bound)).collect();
    assert_eq!(fb.ok().lines().collect::<Vec<_>>(), without_bound);
}

#[test]
fn descriptors_closing_while_they_are_read_are_skipped() {
    // A thread in the fixture opens and closes descriptors without pause:
    // some vanish between npfiles listing them and reading them.
    let fx = Fixture::start_with(&["2", "0", "churn"]);
    let pid = fx.proc.pid_arg();
    for args in [
        vec![pid.as_str()],
        vec!["--type", "sock", &pid],
        vec!["--json", &pid],
    ] {
        for _ in 0..20 {
            let run = npfiles(&args);
            run.no_crash();
            assert_eq!(run.code(), 0, "{args:?}: {}", run.stderr);
            assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
        }
    }
    // What stays open is always reported.
    let out = npfiles(&["--type", "tcp", &pid]).ok();
    assert!(out.lines().any(|l| l == listener_line(&fx.proc)), "{out}");
}

#[test]
fn without_netlink_the_proc_tables_serve_and_a_warning_says_so() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs a fixture and npfiles as another user, so it must run as root"
    );
    // An unprivileged user's process in a user and network namespace of its
    // own: that user may read the process but not join its namespace.
    let dir = scratch();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let p = in_own_network_namespace(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
        ],
        1,
        dir.path(),
    );
    let mut cmd = Command::new(tool("npfiles"));
    cmd.args(["--type", "tcp", &p.pid_arg()])
        .uid(65534)
        .gid(65534);
    let r = run_command(&mut cmd);
    let out = r.ok();
    assert_eq!(
        r.stderr,
        format!(
            "npfiles: {}: warning: sock_diag netlink is not available: cannot join the \
             process's network namespace (EPERM: Operation not permitted); that needs \
             CAP_SYS_ADMIN; socket details come from /proc/PID/net instead, without UNIX \
             socket peers\n",
            p.pid()
        )
    );
    assert!(out.lines().any(|l| l == listener_line(&p)), "{out}");
    assert_eq!(count_lines(&out), 1 + 2 + 1, "{out}");
}
