//! The renderers over a descriptor table built by hand, against
//! tests/golden/ (see `nptools_cli::golden`; `NPTOOLS_BLESS=1` rewrites the
//! files).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libproc_rs::openfiles::{EpollWatch, FdInfo, FdStat, InotifyWatch, TimerFd, UnixName};
use libproc_rs::target::Source;
use nptools_cli::assert_golden;
use nptools_cli::golden::StubTarget;

use super::*;

/// A path with bytes a terminal must not get raw: an escape sequence, a
/// newline, a byte that is not UTF-8.
const HOSTILE_PATH: &[u8] = b"/tmp/log\x1b]0;pwned\x07\nfile\xff.txt";

const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_APPEND: u32 = 0o2000;
const O_NONBLOCK: u32 = 0o4000;
const O_DIRECTORY: u32 = 0o200000;
const O_CLOEXEC: u32 = 0o2000000;

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

/// A descriptor with its stat and open flags (`None`: no fdinfo read).
fn fd(n: i32, mode: u32, ino: u64, link: &[u8], flags: Option<u32>) -> Descriptor {
    Descriptor {
        fd: n,
        link: OsString::from_vec(link.to_vec()),
        stat: Some(FdStat {
            mode,
            dev: (0, 14),
            ino,
            uid: 1000,
            gid: 1000,
            size: 0,
            rdev: (0, 0),
            nlink: 1,
        }),
        kind: FileKind::from_mode(mode),
        info: flags.map(|f| FdInfo {
            flags: Some(f),
            ..FdInfo::default()
        }),
        socket: None,
        other_end: Vec::new(),
    }
}

fn with_info(mut d: Descriptor, f: impl FnOnce(&mut FdInfo)) -> Descriptor {
    f(d.info.get_or_insert_with(FdInfo::default));
    d
}

fn with_stat(mut d: Descriptor, f: impl FnOnce(&mut FdStat)) -> Descriptor {
    f(d.stat.as_mut().expect("a stat"));
    d
}

fn inet(text: &str) -> Endpoint {
    Endpoint::Inet(text.parse().expect("a socket address"))
}

/// A socket descriptor and its table entry.
#[allow(clippy::too_many_arguments)]
fn socket(
    n: i32,
    ino: u64,
    protocol: Protocol,
    sock_type: u8,
    state: u8,
    local: Endpoint,
    peer: Option<Endpoint>,
    unix_peer: Option<u64>,
) -> Descriptor {
    let mut d = fd(
        n,
        S_IFSOCK | 0o777,
        ino,
        format!("socket:[{ino}]").as_bytes(),
        Some(O_RDWR | O_NONBLOCK | O_CLOEXEC),
    );
    d.socket = Some(SocketEntry {
        inode: ino,
        protocol,
        sock_type,
        state,
        local,
        peer,
        unix_peer,
    });
    d
}

fn ends(mut d: Descriptor, others: &[i32]) -> Descriptor {
    d.other_end = others.to_vec();
    d
}

/// One descriptor of every kind npfiles describes.
fn table() -> FdTable {
    let mut deleted_path = HOSTILE_PATH.to_vec();
    deleted_path.extend_from_slice(b" (deleted)");
    let fds = vec![
        with_stat(
            fd(0, S_IFCHR | 0o620, 6, b"/dev/pts/3", Some(O_RDWR)),
            |s| s.rdev = (136, 3),
        ),
        ends(
            fd(1, S_IFIFO | 0o600, 5001, b"pipe:[5001]", Some(O_WRONLY)),
            &[3],
        ),
        with_info(
            with_stat(
                fd(
                    2,
                    S_IFREG | 0o644,
                    77,
                    &deleted_path,
                    Some(O_WRONLY | O_APPEND),
                ),
                |s| {
                    s.nlink = 0;
                    s.size = 8192;
                },
            ),
            |i| i.pos = Some(4096),
        ),
        ends(fd(3, S_IFIFO | 0o600, 5001, b"pipe:[5001]", Some(0)), &[1]),
        fd(
            4,
            S_IFDIR | 0o755,
            2,
            b"/app",
            Some(O_DIRECTORY | O_CLOEXEC),
        ),
        socket(
            5,
            9001,
            Protocol::Tcp,
            1,
            10,
            inet("0.0.0.0:8080"),
            None,
            None,
        ),
        ends(
            socket(
                6,
                9002,
                Protocol::Tcp,
                1,
                1,
                inet("127.0.0.1:8080"),
                Some(inet("127.0.0.1:51514")),
                None,
            ),
            &[7],
        ),
        ends(
            socket(
                7,
                9003,
                Protocol::Tcp,
                1,
                1,
                inet("127.0.0.1:51514"),
                Some(inet("127.0.0.1:8080")),
                None,
            ),
            &[6],
        ),
        socket(8, 9004, Protocol::Udp, 2, 7, inet("[::1]:53"), None, None),
        socket(
            9,
            9005,
            Protocol::Unix,
            1,
            10,
            Endpoint::Unix(UnixName::Path(b"/run/app\x1b[2J.sock".to_vec())),
            None,
            None,
        ),
        socket(
            10,
            9006,
            Protocol::Unix,
            1,
            1,
            Endpoint::Unix(UnixName::Abstract(b"node\xff\nipc".to_vec())),
            None,
            Some(12345),
        ),
        ends(
            socket(
                11,
                9007,
                Protocol::Unix,
                1,
                1,
                Endpoint::Unix(UnixName::Unnamed),
                Some(Endpoint::Unix(UnixName::Unnamed)),
                Some(9008),
            ),
            &[12],
        ),
        ends(
            socket(
                12,
                9008,
                Protocol::Unix,
                1,
                1,
                Endpoint::Unix(UnixName::Unnamed),
                Some(Endpoint::Unix(UnixName::Unnamed)),
                Some(9007),
            ),
            &[11],
        ),
        fd(13, S_IFSOCK | 0o777, 9009, b"socket:[9009]", Some(O_RDWR)),
        with_info(
            fd(
                14,
                0o600,
                10,
                b"anon_inode:[eventfd]",
                Some(O_RDWR | O_CLOEXEC),
            ),
            |i| i.eventfd_count = Some(3),
        ),
        with_info(
            fd(
                15,
                0o600,
                10,
                b"anon_inode:[eventpoll]",
                Some(O_RDWR | O_CLOEXEC),
            ),
            |i| {
                i.epoll = vec![
                    EpollWatch {
                        fd: 5,
                        events: 0x19,
                        ino: 9001,
                    },
                    EpollWatch {
                        fd: 14,
                        events: 0x1,
                        ino: 10,
                    },
                ]
            },
        ),
        with_info(
            fd(
                16,
                0o600,
                10,
                b"anon_inode:[timerfd]",
                Some(O_RDWR | O_CLOEXEC),
            ),
            |i| {
                i.timerfd = Some(TimerFd {
                    clockid: 1,
                    ticks: 2,
                    settime_flags: 0,
                    value: (0, 250_000_000),
                    interval: (1, 5),
                })
            },
        ),
        with_info(
            fd(17, 0o600, 10, b"anon_inode:[signalfd]", Some(O_RDWR)),
            |i| i.sigmask = Some((1 << 1) | (1 << 14)),
        ),
        with_info(fd(18, 0o600, 10, b"anon_inode:inotify", Some(0)), |i| {
            i.inotify = vec![InotifyWatch {
                wd: 1,
                ino: 2,
                dev: (8, 1),
                mask: 0x300,
            }]
        }),
        with_info(
            fd(19, 0o600, 10, b"anon_inode:[pidfd]", Some(O_RDWR)),
            |i| i.pidfd_pid = Some(4250),
        ),
        Descriptor {
            stat: None,
            info: None,
            kind: FileKind::Fifo,
            ..fd(20, 0, 0, b"pipe:[6000]", None)
        },
        ends(
            fd(21, S_IFIFO | 0o644, 123, b"/run/fifo", Some(O_RDWR)),
            &[21],
        ),
        with_stat(fd(22, S_IFBLK | 0o660, 300, b"/dev/sda", Some(0)), |s| {
            s.rdev = (8, 0)
        }),
    ];
    FdTable {
        rlimit: Some(1024),
        fds,
        socket_source: Some(TableSource::Netlink),
    }
}

fn render(f: impl FnOnce(&mut Vec<u8>) -> Result<(), ReportError>) -> Vec<u8> {
    let mut out = Vec::new();
    if f(&mut out).is_err() {
        panic!("rendering into a buffer failed");
    }
    out
}

#[test]
fn report() {
    let table = table();
    let out = render(|o| write_report(&table, None, false, false, o));
    assert!(!out.contains(&0x1b), "escape bytes reached the output");
    assert_golden!("report.txt", &out);
}

#[test]
fn report_raw() {
    let table = table();
    let out = render(|o| write_report(&table, None, false, true, o));
    assert!(out.windows(HOSTILE_PATH.len()).any(|w| w == HOSTILE_PATH));
    assert_golden!("report-raw.txt", &out);
}

#[test]
fn names_only() {
    let mut table = table();
    table.rlimit = None;
    assert_golden!(
        "names-only.txt",
        &render(|o| write_report(&table, None, true, false, o))
    );
}

/// Every `--type`, each after a `## --type NAME` line of the test's.
#[test]
fn typed() {
    let table = table();
    let mut out = Vec::new();
    for t in FdType::value_variants() {
        out.extend_from_slice(format!("## --type {}\n", t.name()).as_bytes());
        out.extend(render(|o| write_typed(&table, *t, false, o)));
    }
    out.extend_from_slice(b"## --type unix --raw\n");
    out.extend(render(|o| write_typed(&table, FdType::Unix, true, o)));
    assert_golden!("typed.txt", &out);
}

#[test]
fn json() {
    let table = table();
    let target = StubTarget::node_server(Source::Live { pid: 4242 });
    assert_golden!(
        "files.json",
        &render(|o| write_json(&target, &table, None, None, o))
    );
    assert_golden!(
        "files-tcp.json",
        &render(|o| write_json(&target, &table, None, Some(FdType::Tcp), o))
    );
}
