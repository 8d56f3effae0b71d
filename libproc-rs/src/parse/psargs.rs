//! `pr_psargs` and the argument area: the one way a process's and a core's
//! psargs are built, so both show the same header.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Maximum length of `pr_psargs` without its NUL (`ELF_PRARGSZ - 1`).
pub const PSARGS_MAX: usize = 79;

/// Build `pr_psargs` from the raw argument area (`argv` strings with their
/// NULs) the way the kernel's core dumper does (the first 79 bytes, NULs
/// turned into spaces), then drop trailing spaces: the kernel turns the last
/// argument's NUL into one, and a rewritten area (setproctitle) leaves many.
/// [`crate::parse::notes::parse_prpsinfo`] trims the same way, so a process and its
/// core show the same string.
pub fn psargs_from_arg_area(area: &[u8]) -> OsString {
    let v: Vec<u8> = area[..area.len().min(PSARGS_MAX)]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    psargs_trimmed(v)
}

/// psargs without its trailing spaces: the one trimming rule for psargs
/// built here and `pr_psargs` read from a core.
pub(crate) fn psargs_trimmed(mut v: Vec<u8>) -> OsString {
    while v.last() == Some(&b' ') {
        v.pop();
    }
    OsString::from_vec(v)
}

/// The caveat for a process that wrote over its argument area.
pub const REWRITTEN_ARGV: &str = "the process wrote over its argument area (a title set with \
setproctitle or node's process.title, or arguments blanked out): argv shows what the area \
holds now, without the NUL padding after it";

/// Drop the empty strings a rewritten argument area leaves after the title
/// (libuv and setproctitle pad the old area with NULs). Returns whether any
/// were dropped.
pub fn trim_title_padding(items: &mut Vec<OsString>) -> bool {
    let before = items.len();
    while items.len() > 1 && items.last().is_some_and(|s| s.is_empty()) {
        items.pop();
    }
    items.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psargs_matches_the_kernel() {
        assert_eq!(psargs_from_arg_area(b"node\0app.js\0"), "node app.js");
        assert_eq!(psargs_from_arg_area(b"a\0\0b\0"), "a  b");
        assert_eq!(psargs_from_arg_area(b"x \0"), "x");
        assert_eq!(psargs_from_arg_area(b"title\0\0\0\0"), "title");
        let long: Vec<u8> = std::iter::repeat_n(b'x', 200).collect();
        assert_eq!(psargs_from_arg_area(&long).len(), PSARGS_MAX);
        assert_eq!(psargs_from_arg_area(b""), "");
    }
}
