use super::*;

/// A real stat (of `/`) with this mode and inode.
fn stat(mode: u32, ino: u64) -> FdStat {
    let root = nix::sys::stat::stat("/").expect("stat /");
    FdStat {
        mode,
        ino,
        ..FdStat::from_stat(&root)
    }
}

/// One descriptor of every shape the table holds.
fn table() -> FdTable {
    let fd = |fd: i32, link: &str, st: Option<FdStat>, kind: FileKind| Descriptor {
        fd,
        link: link.into(),
        stat: st,
        kind,
        info: None,
        socket: None,
        other_end: Vec::new(),
    };
    let mut file = fd(
        3,
        "/tmp/data-\x1b.txt",
        Some(stat(0o100640, 7)),
        FileKind::Regular,
    );
    file.info = Some(FdInfo {
        pos: Some(1234),
        flags: Some(0o100002),
        ..FdInfo::default()
    });
    let mut ep = fd(
        4,
        "anon_inode:[eventpoll]",
        Some(stat(0o600, 8)),
        FileKind::Anon,
    );
    ep.info = Some(FdInfo {
        flags: Some(0o2000002),
        epoll: vec![EpollWatch {
            fd: 5,
            events: 0x19,
            ino: 0x61af,
        }],
        eventfd_count: Some(7),
        timerfd: Some(TimerFd {
            clockid: 1,
            ticks: 3,
            settime_flags: 1,
            value: (999, 499_000_000),
            interval: (2, 500_000_000),
        }),
        sigmask: Some(0x4002),
        inotify: vec![InotifyWatch {
            wd: 1,
            ino: 0x1a,
            dev: (8, 1),
            mask: 0xfce,
        }],
        pidfd_pid: Some(-1),
        pos: Some(0),
    });
    // A socket descriptor: (fd, protocol, type, state, local, peer, UNIX
    // peer inode); its inode is 300 + fd.
    let sock = |n: i32, protocol, ty, state, local, peer, unix_peer| {
        let inode = 300 + n as u64;
        let mut d = fd(
            n,
            &format!("socket:[{inode}]"),
            Some(stat(0o140777, inode)),
            FileKind::Socket,
        );
        d.socket = Some(SocketEntry {
            inode,
            protocol,
            sock_type: ty,
            state,
            local,
            peer,
            unix_peer,
        });
        d
    };
    let inet = |a: &str| Endpoint::Inet(a.parse().unwrap());
    let mut tcp = sock(
        5,
        Protocol::Tcp,
        1,
        1,
        inet("127.0.0.1:40000"),
        Some(inet("127.0.0.1:80")),
        None,
    );
    tcp.other_end = vec![6, 9];
    let v6 = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 9, 2));
    let v6 = sock(6, Protocol::Udp, 2, 7, Endpoint::Inet(v6), None, None);
    let unix = sock(
        7,
        Protocol::Unix,
        5,
        1,
        Endpoint::Unix(UnixName::Abstract(b"a\x1bb".to_vec())),
        Some(Endpoint::Unix(UnixName::Path(b"/run/s".to_vec()))),
        Some(401),
    );
    let mut unnamed = unix.clone();
    unnamed.fd = 8;
    if let Some(s) = unnamed.socket.as_mut() {
        s.local = Endpoint::Unix(UnixName::Unnamed);
    }
    FdTable {
        rlimit: Some(1024),
        fds: vec![
            file,
            ep,
            tcp,
            v6,
            unix,
            unnamed,
            fd(9, "socket:[5]", None, FileKind::Socket),
            fd(
                10,
                "/odd",
                Some(stat(0o150000, 1)),
                FileKind::Other(0o150000),
            ),
            fd(
                11,
                "/dev/pts/4",
                Some(stat(0o20620, 3)),
                FileKind::CharDevice,
            ),
        ],
        socket_source: Some(TableSource::Netlink),
    }
}

fn take_one(n_type: u32, desc: &[u8]) -> Recorded {
    let mut r = Recorded::default();
    r.take(n_type, desc);
    r
}

#[test]
fn the_descriptor_table_round_trips() {
    let t = table();
    let r = take_one(NT_NPTOOLS_FDTABLE, &encode_fd_table(&t));
    assert_eq!(r.notices, Vec::<String>::new());
    assert_eq!(r.fd_table, Some(t));
    let empty = FdTable {
        rlimit: None,
        fds: Vec::new(),
        socket_source: Some(TableSource::Procfs),
    };
    let r = take_one(NT_NPTOOLS_FDTABLE, &encode_fd_table(&empty));
    assert_eq!(r.fd_table, Some(empty));
    assert_eq!(r.names(), ["descriptors"]);
}

#[test]
fn the_other_notes_round_trip() {
    let threads = vec![(77, OsString::from("main")), (78, OsString::from("w\x1b1"))];
    let limits = parse_limits(
        b"Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 524288               files     \n\
Max realtime timeout      unlimited            unlimited            us        \n",
    );
    assert_eq!(
        limits[1],
        Limit {
            name: b"Max open files".to_vec(),
            soft: 1024,
            hard: 524288,
            units: b"files".to_vec()
        }
    );
    assert_eq!(limits[0].soft, UNLIMITED);
    assert_eq!(limits.len(), 3);
    let paths = Paths {
        cwd: Some("/srv/app".into()),
        root: None,
    };
    let smaps = SmapsTable::parse(
        b"55d6055e8000-55d6055e9000 r--p 00000000 fe:00 10141839   /bin/x\n\
Size:                  4 kB\nRss:                   4 kB\nPss:                   2 kB\n\
Anonymous:             0 kB\nLocked:                0 kB\nTHPeligible:           0\n\
VmFlags: rd mr mw me dw sd\n\
55d63943d000-55d63947f000 rw-p 00000000 00:00 0                  [heap]\n\
Size:                264 kB\nRss:                 260 kB\nPss:                 260 kB\n\
Anonymous:           260 kB\nSwap:                  8 kB\nLocked:               12 kB\n",
    );
    assert_eq!(
        smaps.fields,
        ["Size", "Rss", "Pss", "Anonymous", "Locked", "Swap"]
    );
    assert_eq!(smaps.get(&smaps.mappings[0], "Swap"), None);
    assert_eq!(smaps.get(&smaps.mappings[1], "Swap"), Some(8));
    assert_eq!(
        smaps.usage(&smaps.mappings[1]),
        MappingUsage {
            rss_kib: 260,
            anon_kib: 260,
            locked_kib: 12
        }
    );
    let mut r = Recorded::default();
    r.take(NT_NPTOOLS_THREADS, &encode_threads(&threads));
    r.take(NT_NPTOOLS_LIMITS, &encode_limits(&limits));
    r.take(NT_NPTOOLS_PATHS, &encode_paths(&paths));
    r.take(NT_NPTOOLS_SMAPS, &encode_smaps(&smaps));
    assert_eq!(r.notices, Vec::<String>::new());
    assert_eq!(r.threads, Some(threads));
    assert_eq!(r.limits, Some(limits));
    assert_eq!(r.paths, Some(paths));
    assert_eq!(r.smaps, Some(smaps));
    assert_eq!(r.names(), ["threads", "limits", "paths", "smaps"]);
}

#[test]
fn unknown_fields_are_skipped() {
    let desc = note(|w| {
        w.bytes(999, b"from a later nptools");
        w.record(TH_THREAD, |r| {
            r.i32(TH_TID, 5);
            r.u64(77, 1);
            r.bytes(TH_NAME, b"n");
        });
    });
    let r = take_one(NT_NPTOOLS_THREADS, &desc);
    assert_eq!(r.threads, Some(vec![(5, OsString::from("n"))]));
}

#[test]
fn versions_damage_and_duplicates_are_notices() {
    let mut desc = encode_fd_table(&table());
    desc[0] = 2;
    let r = take_one(NT_NPTOOLS_FDTABLE, &desc);
    assert_eq!(r.fd_table, None);
    assert_eq!(
        r.notices,
        [
            "the core's NPTOOLS descriptors note (type 1) is not used: version 2, and this \
          version of nptools reads version 1"
        ]
    );
    assert_eq!(r.unusable, [NT_NPTOOLS_FDTABLE]);
    let good = encode_fd_table(&table());
    let r = take_one(NT_NPTOOLS_FDTABLE, &good[..good.len() - 9]);
    assert_eq!(r.fd_table, None);
    assert!(r.notices[0].contains("are left"), "{:?}", r.notices);
    let r = take_one(NT_NPTOOLS_FDTABLE, &[good.as_slice(), &[0; 6]].concat());
    assert!(
        r.notices[0].contains("end mark is not at its end"),
        "{:?}",
        r.notices
    );
    let r = take_one(9, &good);
    assert!(r.notices[0].contains("does not know"), "{:?}", r.notices);
    let r = take_one(NT_NPTOOLS_PATHS, &[1, 0]);
    assert!(r.notices[0].contains("too short"), "{:?}", r.notices);
    let mut r = take_one(NT_NPTOOLS_FDTABLE, &good);
    r.take(NT_NPTOOLS_FDTABLE, &good);
    assert!(r.notices[0].contains("two of them"), "{:?}", r.notices);
    // A field of the wrong size, a required field missing.
    let desc = note(|w| w.record(T_FD, |r| r.u64(D_FD, 3)));
    let r = take_one(NT_NPTOOLS_FDTABLE, &desc);
    assert!(
        r.notices[0].contains("fd is 8 bytes, 4 expected"),
        "{:?}",
        r.notices
    );
    let desc = note(|w| w.record(T_FD, |r| r.i32(D_FD, 3)));
    let r = take_one(NT_NPTOOLS_FDTABLE, &desc);
    assert!(r.notices[0].contains("without its link"), "{:?}", r.notices);
}

/// Every truncation and many byte flips of a real encoding: a table, or a
/// notice, never a panic.
#[test]
fn damaged_notes_never_panic() {
    let good = encode_fd_table(&table());
    for cut in 0..good.len() {
        let r = take_one(NT_NPTOOLS_FDTABLE, &good[..cut]);
        assert!(r.fd_table.is_none() || cut == good.len());
        assert_eq!(r.notices.len() + usize::from(r.fd_table.is_some()), 1);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bad = good.clone();
        let at = (seed as usize) % bad.len();
        bad[at] ^= (seed >> 32) as u8 | 1;
        for t in 1..=5 {
            let r = take_one(t, &bad);
            assert_eq!(r.notices.len() + r.names().len(), 1);
        }
    }
}
