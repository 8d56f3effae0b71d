//! Small /proc files of a process and its threads: NUL-separated lists
//! (cmdline, environ) and a task's `syscall` file.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Split a NUL-separated /proc file (cmdline, environ) into its strings.
pub fn split_nul_list(bytes: &[u8]) -> Vec<OsString> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    body.split(|&b| b == 0)
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect()
}

/// The stack pointer in /proc/PID/task/TID/syscall (`NR a1 .. a6 SP PC`;
/// `-1 SP PC` when blocked elsewhere in the kernel; `running` when on a CPU).
pub fn parse_syscall_sp(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let sp = match fields.len() {
        9 => fields[7],
        3 => fields[1],
        _ => return None,
    };
    u64::from_str_radix(sp.strip_prefix("0x")?, 16).ok()
}

/// The state letter of a /proc/PID/stat or /proc/PID/task/TID/stat line
/// (`R`, `S`, `D`, `Z`, ...): the field after the command name, whose
/// closing parenthesis is the last one on the line. Only this field is
/// read: it is asked for while threads are held, and must not fail on a
/// field it does not need.
pub fn stat_state(stat: &[u8]) -> Option<char> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).map(|&b| b as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_lists() {
        assert!(split_nul_list(b"").is_empty());
        assert_eq!(
            split_nul_list(b"a\0b c\0\0"),
            vec![OsString::from("a"), "b c".into(), "".into()]
        );
        // No trailing NUL (setproctitle overwrote it).
        assert_eq!(split_nul_list(b"title"), vec![OsString::from("title")]);
    }

    #[test]
    fn syscall_stack_pointer() {
        let blocked = b"0 0x3 0x7ffd 0x1 0x0 0x0 0x0 0x7ffc9a1b2c38 0x7f00aa\n";
        assert_eq!(parse_syscall_sp(blocked), Some(0x7ffc9a1b2c38));
        assert_eq!(parse_syscall_sp(b"-1 0x7ffe00 0x400000\n"), Some(0x7ffe00));
        assert_eq!(parse_syscall_sp(b"running\n"), None);
        assert_eq!(parse_syscall_sp(b""), None);
    }

    #[test]
    fn stat_state_is_after_the_last_parenthesis() {
        assert_eq!(stat_state(b"42 (node) S 1 42 42 0 -1"), Some('S'));
        assert_eq!(stat_state(b"42 (a) (b)) Z 1"), Some('Z'));
        assert_eq!(stat_state(b"42 (cut"), None);
        assert_eq!(stat_state(b"42 (x)"), None);
    }
}
