//! The fallback socket source: /proc/PID/net/{tcp,tcp6,udp,udp6,unix}, the
//! tables the target's network namespace shows. Slower than netlink on busy
//! hosts (the kernel formats every socket as text) and without UNIX peers,
//! but always there.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::socket::{Endpoint, Protocol, SocketEntry, UnixName};

fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // Each 32-bit word is printed in the host's byte order.
    let words: Option<Vec<[u8; 4]>> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match bytes.len() {
        4 => Some(SocketAddr::new(
            Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
            port,
        )),
        16 => Some(SocketAddr::new(
            Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
            port,
        )),
        _ => None,
    }
}

/// Parse /proc/net/tcp, tcp6, udp or udp6 (the header line is skipped).
pub fn parse_inet(text: &[u8], protocol: Protocol) -> Vec<SocketEntry> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            Some(SocketEntry::inet(
                f[9].parse().ok()?,
                protocol,
                u8::from_str_radix(f[3], 16).ok()?,
                parse_addr(f[1])?,
                parse_addr(f[2])?,
            ))
        })
        .collect()
}

/// `__SO_ACCEPTCON` in the Flags column: a listening socket.
const SO_ACCEPTCON: u32 = 1 << 16;
/// `SS_CONNECTED` in the St column.
const SS_CONNECTED: u8 = 3;

/// Parse /proc/net/unix (the header line is skipped). The path is the rest
/// of the line; the kernel writes an abstract name's leading NUL as `@`.
pub fn parse_unix(text: &[u8]) -> Vec<SocketEntry> {
    text.split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            // Seven space-separated columns (padded with runs of spaces),
            // then one space and the path, which may itself hold spaces.
            let mut rest = line;
            let mut cols: Vec<&[u8]> = Vec::with_capacity(7);
            for _ in 0..7 {
                let start = rest.iter().position(|&b| b != b' ')?;
                rest = &rest[start..];
                let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
                cols.push(&rest[..end]);
                rest = &rest[end..];
            }
            let path = rest.strip_prefix(b" ");
            let num = |b: &[u8], radix| {
                std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| u64::from_str_radix(s, radix).ok())
            };
            let flags = num(cols[3], 16)? as u32;
            let sock_type = num(cols[4], 16)? as u8;
            let st = num(cols[5], 16)? as u8;
            let inode = num(cols[6], 10)?;
            let name = match path {
                None | Some(b"") => UnixName::Unnamed,
                Some(p) => match p.strip_prefix(b"@") {
                    Some(a) => UnixName::Abstract(a.to_vec()),
                    None => UnixName::Path(p.to_vec()),
                },
            };
            let state = if flags & SO_ACCEPTCON != 0 {
                10
            } else if st == SS_CONNECTED {
                1
            } else {
                7
            };
            Some(SocketEntry {
                inode,
                protocol: Protocol::Unix,
                sock_type,
                state,
                local: Endpoint::Unix(name),
                peer: None,
                unix_peer: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp4_and_tcp6_lines() {
        let v4 = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 41240 1 0000000000000000 20 4 30 10 -1\n";
        let e = parse_inet(v4, Protocol::Tcp);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].inode, 41234);
        assert_eq!(e[0].state, 10);
        assert_eq!(
            e[0].local,
            Endpoint::Inet("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(e[0].peer, None);
        assert_eq!(
            e[1].peer,
            Some(Endpoint::Inet("127.0.0.1:50000".parse().unwrap()))
        );
        let v6 = b"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51234 1 0000000000000000 100 0 0 10 0\n";
        let e = parse_inet(v6, Protocol::Tcp);
        assert_eq!(e[0].local, Endpoint::Inet("[::1]:8081".parse().unwrap()));
        assert_eq!(e[0].inode, 51234);
    }

    #[test]
    fn unix_lines() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 20001 /run/a b.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03 20002\n\
0000000000000000: 00000002 00000000 00000000 0002 01 20003 @abs\n\
000000002a3ffd81: 00000003 00000000 00000000 0001 03  1157 /run/short\n";
        let e = parse_unix(text);
        assert_eq!(e.len(), 4);
        // A short inode is padded to five columns.
        assert_eq!(e[3].inode, 1157);
        assert_eq!(
            e[3].local,
            Endpoint::Unix(UnixName::Path(b"/run/short".to_vec()))
        );
        assert_eq!(e[0].state, 10);
        assert_eq!(
            e[0].local,
            Endpoint::Unix(UnixName::Path(b"/run/a b.sock".to_vec()))
        );
        assert_eq!(e[1].state, 1);
        assert_eq!(e[1].local, Endpoint::Unix(UnixName::Unnamed));
        assert_eq!(e[2].sock_type, 2);
        assert_eq!(
            e[2].local,
            Endpoint::Unix(UnixName::Abstract(b"abs".to_vec()))
        );
    }
}
