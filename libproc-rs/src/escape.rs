//! Making bytes a target controls safe to print.
//!
//! argv, environment strings, paths and thread names are chosen by the
//! process being inspected, which may be hostile. Text output must not let it
//! write terminal control sequences to the operator's screen, and must stay
//! exact: every escape can be undone.
//!
//! The text form keeps printable UTF-8 as it is and writes every other byte
//! as `\xNN`: C0 and C1 control characters, DEL, bytes that are not valid
//! UTF-8, and the Unicode bidirectional-override characters (which can make
//! a line read differently from what it contains). A backslash is written
//! `\\`, so `\x1b` in the output always means the byte 0x1b and never the
//! four characters the process might have put there.
//!
//! (JSON output, in nptools-cli, carries bytes as journalctl does: a JSON
//! string when they are valid UTF-8, an array of byte values when not.)

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn push_octal_bytes(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "\\{b:03o}");
    }
}

/// True for characters that are valid UTF-8 but must not reach a terminal.
fn is_hazardous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

fn push_hex_bytes(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "\\x{b:02x}");
    }
}

/// Escape bytes for text output (see the module documentation).
///
/// Borrows when nothing needs escaping, which is the common case.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes)
        && !s.chars().any(|c| c == '\\' || is_hazardous(c))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if is_hazardous(c) {
                let mut buf = [0u8; 4];
                push_hex_bytes(&mut out, c.encode_utf8(&mut buf).as_bytes());
            } else {
                out.push(c);
            }
        }
        push_hex_bytes(&mut out, chunk.invalid());
    }
    Cow::Owned(out)
}

/// Escape an OS string for text output.
pub fn escape_os(s: &OsStr) -> Cow<'_, str> {
    escape_bytes(s.as_bytes())
}

/// Escape a path for text output.
pub fn escape_path(p: &Path) -> Cow<'_, str> {
    escape_bytes(p.as_os_str().as_bytes())
}

/// Words bash, ksh or zsh would not run as a command name if unquoted.
const SHELL_RESERVED: &[&str] = &[
    "!",
    "{",
    "}",
    "[[",
    "]]",
    "case",
    "coproc",
    "do",
    "done",
    "elif",
    "else",
    "end",
    "esac",
    "fi",
    "for",
    "foreach",
    "function",
    "if",
    "in",
    "nocorrect",
    "noglob",
    "repeat",
    "select",
    "then",
    "time",
    "until",
    "while",
];

fn is_shell_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b)
}

/// Quote one word for a POSIX.1-2024 shell (bash, ksh, zsh, and dash since
/// 0.5.12): as it is when it is safe, in `'...'` when it is printable, and in
/// `$'...'` when it holds control characters or bytes that are not UTF-8, so
/// that the result is both exact and safe to show. Bytes are written as
/// three-digit octal escapes (`\033`): POSIX leaves `\xHH` followed by
/// another hex digit unspecified, while `\ooo` always ends after three.
///
/// `first` marks the command word, where `NAME=value` would be taken as an
/// assignment and reserved words as syntax.
pub fn shell_quote(word: &[u8], first: bool) -> Cow<'_, str> {
    let needs_quotes = word.is_empty()
        || !word.iter().all(|&b| is_shell_safe(b))
        || (first && word.contains(&b'='))
        || (first && SHELL_RESERVED.iter().any(|r| r.as_bytes() == word));
    if !needs_quotes {
        // All safe bytes are ASCII.
        return Cow::Borrowed(std::str::from_utf8(word).unwrap_or_default());
    }
    let plain = match std::str::from_utf8(word) {
        Ok(s) if !s.chars().any(is_hazardous) => Some(s),
        _ => None,
    };
    if let Some(s) = plain
        && !s.contains('\'')
    {
        return Cow::Owned(format!("'{s}'"));
    }
    let mut out = String::from("$'");
    for chunk in word.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if is_hazardous(c) => {
                    let mut buf = [0u8; 4];
                    push_octal_bytes(&mut out, c.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
        push_octal_bytes(&mut out, chunk.invalid());
    }
    out.push('\'');
    Cow::Owned(out)
}

/// A whole command line, quoted word by word with [`shell_quote`].
pub fn shell_line<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut out = String::new();
    for (i, w) in words.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&shell_quote(w.as_ref().as_bytes(), i == 0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape_bytes(b"hello world"), Cow::Borrowed(_)));
        assert_eq!(escape_bytes("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }

    #[test]
    fn controls_and_invalid_bytes_become_hex() {
        assert_eq!(escape_bytes(b"a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape_bytes(b"tab\there\n"), "tab\\x09here\\x0a");
        assert_eq!(escape_bytes(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(escape_bytes(b"del\x7f"), "del\\x7f");
        // C1 CSI as UTF-8 and a right-to-left override.
        assert_eq!(escape_bytes("x\u{9b}y".as_bytes()), "x\\xc2\\x9by");
        assert_eq!(escape_bytes("\u{202e}".as_bytes()), "\\xe2\\x80\\xae");
    }

    #[test]
    fn backslash_is_doubled_so_escapes_are_unambiguous() {
        assert_eq!(escape_bytes(b"a\\x1b"), "a\\\\x1b");
    }

    #[test]
    fn shell_quoting_only_where_needed() {
        assert_eq!(shell_quote(b"/usr/bin/node", true), "/usr/bin/node");
        assert_eq!(
            shell_quote(b"--max-old-space-size=4096", false),
            "--max-old-space-size=4096"
        );
        assert_eq!(shell_quote(b"A=1", true), "'A=1'");
        assert_eq!(shell_quote(b"if", true), "'if'");
        assert_eq!(shell_quote(b"if", false), "if");
        assert_eq!(shell_quote(b"", false), "''");
        assert_eq!(shell_quote(b"two words", false), "'two words'");
        assert_eq!(shell_quote(b"~root", false), "'~root'");
        assert_eq!(shell_quote(b"#x", false), "'#x'");
        assert_eq!(shell_quote(b"$HOME", false), "'$HOME'");
        assert_eq!(shell_quote(b"it's", false), "$'it\\'s'");
        assert_eq!(shell_quote(b"a\tb\nc", false), "$'a\\tb\\nc'");
        assert_eq!(shell_quote(b"\xff\x1b", false), "$'\\377\\033'");
        // An escape never runs into a following digit.
        assert_eq!(shell_quote(b"\xff7", false), "$'\\3777'");
        assert_eq!(shell_quote(b"back\\slash", false), "'back\\slash'");
        assert_eq!(
            shell_quote(b"back\\slash\x01", false),
            "$'back\\\\slash\\001'"
        );
        assert_eq!(shell_quote(b"repeat", true), "'repeat'");
    }

    #[test]
    fn shell_line_joins_words() {
        let line = shell_line([OsStr::new("echo"), OsStr::new("a b"), OsStr::new("")]);
        assert_eq!(line, "echo 'a b' ''");
    }
}
