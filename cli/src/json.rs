//! JSON pieces: bytes a target controls, exactly.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The JSON form of bytes: a string when they are UTF-8, else an array of
/// byte values.
pub fn json_bytes(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::Value::String(s.to_owned()),
        Err(_) => serde_json::Value::Array(bytes.iter().map(|&b| b.into()).collect()),
    }
}

/// [`json_bytes`] written straight to a serializer, for output written as
/// it is made (a report's entries one by one, never a whole tree).
#[derive(Debug, Clone, Copy)]
pub struct JsonBytes<'a>(pub &'a [u8]);

impl serde::Serialize for JsonBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(self.0),
        }
    }
}

/// The JSON form of an OS string (see [`json_bytes`]).
pub fn json_os(s: &OsStr) -> serde_json::Value {
    json_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_arrays_for_non_utf8() {
        assert_eq!(json_bytes(b"ok\x1b").to_string(), "\"ok\\u001b\"");
        assert_eq!(json_bytes(b"a\xff").to_string(), "[97,255]");
        for b in [&b"ok\x1b"[..], b"a\xff", b""] {
            let streamed = serde_json::to_string(&JsonBytes(b)).unwrap();
            assert_eq!(streamed, json_bytes(b).to_string());
        }
    }
}
