//! User and group names for ids, from passwd(5) and group(5) files.
//!
//! Only the files are consulted, not NSS: the tools must not load C
//! libraries or talk to directory services while inspecting a process.
//! Which files are read (the target's root for a live process, this
//! machine for a core) is [`crate::root::RootDir::id_names`]'s business.

use std::collections::HashMap;

/// id → name, from the bytes of a passwd or group file.
pub fn parse_id_names(bytes: &[u8]) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.first() == Some(&b'#') {
            continue;
        }
        let mut fields = line.split(|&b| b == b':');
        let (Some(name), _, Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(name), Some(id)) = (
            std::str::from_utf8(name),
            std::str::from_utf8(id)
                .ok()
                .and_then(|s| s.parse::<u32>().ok()),
        ) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        // The first entry for an id wins, as getpwuid does.
        out.entry(id).or_insert_with(|| name.to_owned());
    }
    out
}

/// Names of users and groups as seen from one root directory.
#[derive(Debug, Default, Clone)]
pub struct IdNames {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl IdNames {
    /// The names in a passwd file's and a group file's bytes.
    pub fn from_files(passwd: &[u8], group: &[u8]) -> Self {
        IdNames {
            users: parse_id_names(passwd),
            groups: parse_id_names(group),
        }
    }

    pub fn user(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(String::as_str)
    }

    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let m = parse_id_names(
            b"root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\nnobody:x:65534:65534::/:/bin/false\ndup:x:0:0::/:/bin/sh\n:x:5:5::/:\n",
        );
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(m.get(&5), None);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn parses_group_lines() {
        let m = parse_id_names(b"wheel:x:10:alice,bob\n");
        assert_eq!(m.get(&10).map(String::as_str), Some("wheel"));
    }
}
