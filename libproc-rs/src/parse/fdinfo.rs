//! Parsers for /proc/PID/fdinfo/N and /proc/PID/limits, and the names of
//! open flags. They take bytes and are tested on literal input.

/// What /proc/PID/fdinfo/N says about one descriptor. Which fields are
/// present depends on what the descriptor is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdInfo {
    /// The file offset (`pos:`).
    pub pos: Option<u64>,
    /// The open flags (`flags:`, octal), with `O_CLOEXEC` set when the
    /// descriptor is close-on-exec.
    pub flags: Option<u32>,
    /// eventfd: the counter (`eventfd-count:`).
    pub eventfd_count: Option<u64>,
    /// epoll: the descriptors it watches (`tfd:` lines).
    pub epoll: Vec<EpollWatch>,
    /// timerfd: its clock and settings.
    pub timerfd: Option<TimerFd>,
    /// signalfd: the signals it accepts, bit N-1 for signal N (`sigmask:`).
    pub sigmask: Option<u64>,
    /// inotify: the watches (`inotify wd:` lines).
    pub inotify: Vec<InotifyWatch>,
    /// pidfd: the process it refers to (`Pid:`; -1 once it has been reaped).
    pub pidfd_pid: Option<i32>,
}

/// One descriptor an epoll instance watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollWatch {
    /// The watched descriptor's number in the process that added it.
    pub fd: i32,
    /// The events asked for (`EPOLLIN` = 1, `EPOLLOUT` = 4, ...).
    pub events: u32,
    /// The inode of the watched file.
    pub ino: u64,
}

/// One inotify watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InotifyWatch {
    pub wd: i32,
    /// The watched inode and its device (major, minor).
    pub ino: u64,
    pub dev: (u32, u32),
    pub mask: u32,
}

/// A timerfd's clock and timer, as fdinfo shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerFd {
    pub clockid: i32,
    /// Expirations not yet read.
    pub ticks: u64,
    /// `TFD_TIMER_ABSTIME` and friends.
    pub settime_flags: u32,
    /// Time to the next expiry and the period, as (seconds, nanoseconds).
    pub value: (u64, u64),
    pub interval: (u64, u64),
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.strip_prefix(name)?.strip_prefix(':').map(str::trim)
}

/// The value after `key:` in a line of space-separated `key:value` words.
fn word<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    // Values may be padded (`tfd:        5`): join the key with the next word.
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if let Some(v) = w.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            return if v.is_empty() { words.next() } else { Some(v) };
        }
    }
    None
}

fn hex<T: TryFrom<u64>>(s: Option<&str>) -> Option<T> {
    u64::from_str_radix(s?, 16)
        .ok()
        .and_then(|v| T::try_from(v).ok())
}

fn pair(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s
        .trim()
        .strip_prefix('(')?
        .strip_suffix(')')?
        .split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// The kernel's internal dev_t (`sdev:` in fdinfo): 12-bit major above a
/// 20-bit minor.
fn kernel_dev(v: u32) -> (u32, u32) {
    (v >> 20, v & 0xf_ffff)
}

/// Parse the text of /proc/PID/fdinfo/N.
pub fn parse_fdinfo(bytes: &[u8]) -> FdInfo {
    let text = String::from_utf8_lossy(bytes);
    let mut info = FdInfo::default();
    let mut timer = TimerFd::default();
    let mut is_timer = false;
    for line in text.lines() {
        if let Some(v) = field(line, "pos") {
            info.pos = v.parse().ok();
        } else if let Some(v) = field(line, "flags") {
            info.flags = u32::from_str_radix(v, 8).ok();
        } else if let Some(v) = field(line, "eventfd-count") {
            info.eventfd_count = v.parse().ok();
        } else if line.starts_with("tfd:") {
            let fd = word(line, "tfd").and_then(|v| v.parse().ok());
            if let Some(fd) = fd {
                info.epoll.push(EpollWatch {
                    fd,
                    events: hex(word(line, "events")).unwrap_or(0),
                    ino: hex(word(line, "ino")).unwrap_or(0),
                });
            }
        } else if let Some(rest) = line.strip_prefix("inotify ") {
            if let Some(wd) = hex(word(rest, "wd")) {
                info.inotify.push(InotifyWatch {
                    wd,
                    ino: hex(word(rest, "ino")).unwrap_or(0),
                    dev: kernel_dev(hex(word(rest, "sdev")).unwrap_or(0)),
                    mask: hex(word(rest, "mask")).unwrap_or(0),
                });
            }
        } else if let Some(v) = field(line, "Pid") {
            info.pidfd_pid = v.parse().ok();
        } else if let Some(v) = field(line, "sigmask") {
            info.sigmask = u64::from_str_radix(v, 16).ok();
        } else if let Some(v) = field(line, "clockid") {
            is_timer = true;
            timer.clockid = v.parse().unwrap_or(-1);
        } else if let Some(v) = field(line, "ticks") {
            timer.ticks = v.parse().unwrap_or(0);
        } else if let Some(v) = field(line, "settime flags") {
            timer.settime_flags = u32::from_str_radix(v, 8).unwrap_or(0);
        } else if let Some(v) = field(line, "it_value") {
            timer.value = pair(v).unwrap_or_default();
        } else if let Some(v) = field(line, "it_interval") {
            timer.interval = pair(v).unwrap_or_default();
        }
    }
    if is_timer {
        info.timerfd = Some(timer);
    }
    info
}

/// The soft limit on open files from /proc/PID/limits (`None` for
/// "unlimited" or when the line is missing).
pub fn parse_nofile_limit(bytes: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

const ACCESS_MODE: u32 = 0o3;
const O_PATH: u32 = 0o10000000;
const O_SYNC: u32 = 0o4010000;

/// Open flags other than the access mode, in the kernel's bit order.
const FLAG_NAMES: &[(u32, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o20000000, "O_TMPFILE"),
];

/// The names of open flags as fdinfo shows them: the access mode first
/// (`O_RDONLY`, `O_WRONLY`, `O_RDWR`, or `O_PATH`), then the others; bits
/// without a name as one hexadecimal number.
pub fn open_flag_names(flags: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = flags;
    if flags & O_PATH != 0 {
        names.push("O_PATH".to_owned());
        rest &= !O_PATH;
    } else {
        names.push(
            match flags & ACCESS_MODE {
                0 => "O_RDONLY",
                1 => "O_WRONLY",
                2 => "O_RDWR",
                _ => "O_ACCMODE",
            }
            .to_owned(),
        );
    }
    rest &= !ACCESS_MODE;
    if rest & O_SYNC == O_SYNC {
        names.push("O_SYNC".to_owned());
        rest &= !O_SYNC;
    }
    for &(bit, name) in FLAG_NAMES {
        if rest & bit != 0 {
            names.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names
}

/// True when the flags open for reading (`O_RDONLY` or `O_RDWR`).
pub fn flags_read(flags: u32) -> bool {
    flags & O_PATH == 0 && matches!(flags & ACCESS_MODE, 0 | 2)
}

/// True when the flags open for writing (`O_WRONLY` or `O_RDWR`).
pub fn flags_write(flags: u32) -> bool {
    flags & O_PATH == 0 && matches!(flags & ACCESS_MODE, 1 | 2)
}

/// Signal numbers in a signalfd mask.
pub fn signals_in_mask(mask: u64) -> Vec<i32> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| b + 1)
        .collect()
}

/// The name of a signal number (`SIGINT`), or `SIGn` / `SIGRTMIN+n`.
pub fn signal_name(signo: i32) -> String {
    if let Ok(sig) = nix::sys::signal::Signal::try_from(signo) {
        return sig.as_str().to_owned();
    }
    match signo {
        // The kernel's numbering: SIGRTMIN is 32 (glibc reserves 32 and 33).
        32..=64 => format!("SIGRTMIN+{}", signo - 32),
        _ => format!("SIG{signo}"),
    }
}

/// The name of a clock id as timerfd uses them.
pub fn clock_name(clockid: i32) -> String {
    match clockid {
        0 => "CLOCK_REALTIME".into(),
        1 => "CLOCK_MONOTONIC".into(),
        7 => "CLOCK_BOOTTIME".into(),
        8 => "CLOCK_REALTIME_ALARM".into(),
        9 => "CLOCK_BOOTTIME_ALARM".into(),
        other => format!("CLOCK({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_file() {
        let i = parse_fdinfo(b"pos:\t4096\nflags:\t0100002\nmnt_id:\t25\nino:\t1234\n");
        assert_eq!(i.pos, Some(4096));
        assert_eq!(i.flags, Some(0o100002));
        assert_eq!(
            open_flag_names(0o2104002),
            ["O_RDWR", "O_NONBLOCK", "O_LARGEFILE", "O_CLOEXEC"]
        );
        assert_eq!(open_flag_names(0), ["O_RDONLY"]);
        assert_eq!(open_flag_names(0o4010001), ["O_WRONLY", "O_SYNC"]);
        assert_eq!(open_flag_names(0o12000000), ["O_PATH", "O_CLOEXEC"]);
        assert_eq!(open_flag_names(0o2 | 1 << 30), ["O_RDWR", "0x40000000"]);
        assert!(flags_read(0) && !flags_write(0));
        assert!(!flags_read(1) && flags_write(1));
        assert!(flags_read(2) && flags_write(2));
    }

    #[test]
    fn eventfd_epoll_signalfd() {
        let e = parse_fdinfo(
            b"pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n\
              eventfd-count:                7\neventfd-id: 1\neventfd-semaphore: 0\n",
        );
        assert_eq!(e.eventfd_count, Some(7));
        let p = parse_fdinfo(
            b"pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n\
              tfd:        5 events:       19 data:                5  pos:0 ino:61af sdev:f\n\
              tfd:       12 events:        4 data:       7f0000000c  pos:0 ino:1d sdev:8\n",
        );
        assert_eq!(
            p.epoll,
            [
                EpollWatch {
                    fd: 5,
                    events: 0x19,
                    ino: 0x61af
                },
                EpollWatch {
                    fd: 12,
                    events: 4,
                    ino: 0x1d
                }
            ]
        );
        let s = parse_fdinfo(
            b"pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nsigmask:\t0000000000004002\n",
        );
        assert_eq!(s.sigmask, Some(0x4002));
        assert_eq!(signals_in_mask(0x4002), [2, 15]);
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(34), "SIGRTMIN+2");
        assert_eq!(clock_name(1), "CLOCK_MONOTONIC");
    }

    #[test]
    fn timerfd_and_inotify() {
        let t = parse_fdinfo(
            b"pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nclockid: 1\nticks: 3\n\
              settime flags: 01\nit_value: (0, 499000000)\nit_interval: (2, 500)\n",
        );
        assert_eq!(
            t.timerfd,
            Some(TimerFd {
                clockid: 1,
                ticks: 3,
                settime_flags: 1,
                value: (0, 499_000_000),
                interval: (2, 500),
            })
        );
        let n = parse_fdinfo(
            b"pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1038\n\
              inotify wd:a ino:1a sdev:800001 mask:fce ignored_mask:0 fhandle-bytes:8 \
              fhandle-type:1 f_handle:1a00000000000000\n",
        );
        assert_eq!(
            n.inotify,
            [InotifyWatch {
                wd: 10,
                ino: 0x1a,
                dev: (8, 1),
                mask: 0xfce
            }]
        );
        assert_eq!(parse_fdinfo(b"").timerfd, None);
        let p = parse_fdinfo(
            b"pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t267342\nPid:\t7723\nNSpid:\t7723\n",
        );
        assert_eq!(p.pidfd_pid, Some(7723));
    }

    #[test]
    fn nofile_limit() {
        let text =
            b"Limit                     Soft Limit           Hard Limit           Units     \n\
            Max processes             63432                63432                processes \n\
            Max open files            1024                 524288               files     \n";
        assert_eq!(parse_nofile_limit(text), Some(1024));
        assert_eq!(
            parse_nofile_limit(
                b"Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }
}
