//! pfiles's words for what libproc-rs found: `S_IFSOCK`, `AF_INET
//! 127.0.0.1  port: 8080`, and the compact endpoints of `--type` lines.

use std::net::IpAddr;

use libproc_rs::escape::escape_bytes;
use libproc_rs::openfiles::{Endpoint, FileKind, UnixName};
use libproc_rs::parse::socket::is_unspecified;

/// The `S_IFxxx` name pfiles prints; `S_IFANON` for an anonymous inode.
pub fn s_if_name(kind: FileKind) -> String {
    match kind {
        FileKind::Regular => "S_IFREG".into(),
        FileKind::Directory => "S_IFDIR".into(),
        FileKind::CharDevice => "S_IFCHR".into(),
        FileKind::BlockDevice => "S_IFBLK".into(),
        FileKind::Fifo => "S_IFIFO".into(),
        FileKind::Socket => "S_IFSOCK".into(),
        FileKind::Symlink => "S_IFLNK".into(),
        FileKind::Anon => "S_IFANON".into(),
        FileKind::Other(bits) => format!("S_IF0{bits:o}"),
    }
}

/// The pfiles form, escaped: `AF_INET 127.0.0.1  port: 8080`,
/// `AF_UNIX /run/x.sock`, `AF_UNIX @abstract`.
pub fn pfiles_text(e: &Endpoint) -> String {
    match e {
        Endpoint::Inet(a) => format!("{} {}  port: {}", e.family(), a.ip(), a.port()),
        Endpoint::Unix(UnixName::Unnamed) => "AF_UNIX".to_owned(),
        Endpoint::Unix(n) => format!("AF_UNIX {}", escape_bytes(&n.bytes())),
    }
}

/// The compact form `ss` prints: `127.0.0.1:8080`, `[::1]:8080`,
/// `*:*` for an unspecified peer, a UNIX path or `@name`, `*` unnamed.
pub fn short_text(e: &Endpoint) -> String {
    match e {
        Endpoint::Inet(a) if is_unspecified(a) => "*:*".to_owned(),
        Endpoint::Inet(a) => {
            let port = match a.port() {
                0 => "*".to_owned(),
                p => p.to_string(),
            };
            match a.ip() {
                IpAddr::V4(ip) => format!("{ip}:{port}"),
                IpAddr::V6(ip) => format!("[{ip}]:{port}"),
            }
        }
        Endpoint::Unix(UnixName::Unnamed) => "*".to_owned(),
        Endpoint::Unix(n) => escape_bytes(&n.bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(s_if_name(FileKind::from_mode(0o140777)), "S_IFSOCK");
        assert_eq!(s_if_name(FileKind::from_mode(0o600)), "S_IFANON");
    }

    #[test]
    fn endpoint_text() {
        let v4 = Endpoint::Inet("127.0.0.1:8080".parse().unwrap());
        assert_eq!(pfiles_text(&v4), "AF_INET 127.0.0.1  port: 8080");
        assert_eq!(short_text(&v4), "127.0.0.1:8080");
        let v6 = Endpoint::Inet("[::1]:443".parse().unwrap());
        assert_eq!(pfiles_text(&v6), "AF_INET6 ::1  port: 443");
        assert_eq!(short_text(&v6), "[::1]:443");
        assert_eq!(
            short_text(&Endpoint::Inet("0.0.0.0:0".parse().unwrap())),
            "*:*"
        );
        let abs = Endpoint::Unix(UnixName::Abstract(b"x\x1b".to_vec()));
        assert_eq!(pfiles_text(&abs), "AF_UNIX @x\\x1b");
        assert_eq!(pfiles_text(&Endpoint::Unix(UnixName::Unnamed)), "AF_UNIX");
    }
}
