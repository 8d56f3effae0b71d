//! The field encoding every NPTOOLS note is made of: a field is a 16-bit
//! tag, a 32-bit length and that many bytes, all little-endian; a record
//! is a run of fields, and a field may hold a record. A reader skips tags
//! it does not know; a length that runs past its record, or a known field
//! of the wrong size, is damage.

/// What is wrong with a note, for the notice that says it was not used.
pub(super) type Damage = String;

/// Builds a record.
#[derive(Debug, Default)]
pub(super) struct Writer {
    pub(super) buf: Vec<u8>,
}

impl Writer {
    pub(super) fn bytes(&mut self, tag: u16, value: &[u8]) {
        self.buf.extend_from_slice(&tag.to_le_bytes());
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&value[..len as usize]);
    }

    pub(super) fn u64(&mut self, tag: u16, v: u64) {
        self.bytes(tag, &v.to_le_bytes());
    }

    pub(super) fn u32(&mut self, tag: u16, v: u32) {
        self.bytes(tag, &v.to_le_bytes());
    }

    pub(super) fn i32(&mut self, tag: u16, v: i32) {
        self.bytes(tag, &v.to_le_bytes());
    }

    pub(super) fn u8(&mut self, tag: u16, v: u8) {
        self.bytes(tag, &[v]);
    }

    pub(super) fn opt_u64(&mut self, tag: u16, v: Option<u64>) {
        if let Some(v) = v {
            self.u64(tag, v);
        }
    }

    /// A field holding the record `fill` writes.
    pub(super) fn record(&mut self, tag: u16, fill: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&tag.to_le_bytes());
        self.buf.extend_from_slice(&[0; 4]);
        fill(self);
        let len = u32::try_from(self.buf.len() - start - 6).unwrap_or(u32::MAX);
        self.buf[start + 2..start + 6].copy_from_slice(&len.to_le_bytes());
    }
}

/// The fields of a record, in order.
#[derive(Debug, Clone)]
pub(super) struct Fields<'a> {
    rest: &'a [u8],
    /// What the record is, for messages.
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Fields { rest: bytes, what }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u16, &'a [u8]), Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((head, body)) = self.rest.split_at_checked(6) else {
            let n = self.rest.len();
            self.rest = &[];
            return Some(Err(format!(
                "{} ends in {n} bytes, too few for a field",
                self.what
            )));
        };
        let tag = u16::from_le_bytes([head[0], head[1]]);
        let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let Some((value, rest)) = body.split_at_checked(len) else {
            self.rest = &[];
            return Some(Err(format!(
                "field {tag} of {} says {len} bytes, {} are left",
                self.what,
                body.len()
            )));
        };
        self.rest = rest;
        Some(Ok((tag, value)))
    }
}

/// A record's fields, read once, looked up by tag.
#[derive(Debug)]
pub(super) struct Record<'a> {
    fields: Vec<(u16, &'a [u8])>,
    what: &'static str,
}

/// How a field's value becomes a value (`u64_of`, ...), given its name.
pub(super) type Conv<T> = fn(&[u8], &str) -> Result<T, Damage>;

impl<'a> Record<'a> {
    pub(super) fn parse(bytes: &'a [u8], what: &'static str) -> Result<Self, Damage> {
        Ok(Record {
            fields: Fields::new(bytes, what).collect::<Result<_, _>>()?,
            what,
        })
    }

    /// Every value of `tag`, in order.
    pub(super) fn all(&self, tag: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.fields
            .iter()
            .filter(move |(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    /// The value of `tag` (the last, if it repeats), converted.
    pub(super) fn opt<T>(&self, tag: u16, name: &str, conv: Conv<T>) -> Result<Option<T>, Damage> {
        self.all(tag).last().map(|v| conv(v, name)).transpose()
    }

    /// The value of a field the record must have.
    pub(super) fn req<T>(&self, tag: u16, name: &str, conv: Conv<T>) -> Result<T, Damage> {
        self.opt(tag, name, conv)?
            .ok_or_else(|| format!("{} without its {name}", self.what))
    }
}

/// A byte string.
pub(super) fn bytes_of(v: &[u8], _: &str) -> Result<Vec<u8>, Damage> {
    Ok(v.to_vec())
}

fn fixed<const N: usize>(v: &[u8], what: &str) -> Result<[u8; N], Damage> {
    v.try_into()
        .map_err(|_| format!("{what} is {} bytes, {N} expected", v.len()))
}

pub(super) fn u64_of(v: &[u8], what: &str) -> Result<u64, Damage> {
    fixed::<8>(v, what).map(u64::from_le_bytes)
}

pub(super) fn u32_of(v: &[u8], what: &str) -> Result<u32, Damage> {
    fixed::<4>(v, what).map(u32::from_le_bytes)
}

pub(super) fn i32_of(v: &[u8], what: &str) -> Result<i32, Damage> {
    fixed::<4>(v, what).map(i32::from_le_bytes)
}

pub(super) fn u8_of(v: &[u8], what: &str) -> Result<u8, Damage> {
    fixed::<1>(v, what).map(|b| b[0])
}

/// Packed little-endian numbers of `N` bytes each.
pub(super) fn packed<const N: usize>(v: &[u8], what: &str) -> Result<Vec<[u8; N]>, Damage> {
    if !v.len().is_multiple_of(N) {
        return Err(format!(
            "{what} is {} bytes, not a multiple of {N}",
            v.len()
        ));
    }
    Ok(v.chunks_exact(N)
        .map(|c| c.try_into().unwrap_or([0; N]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_damage_is_named() {
        let mut w = Writer::default();
        w.u64(1, 7);
        w.record(2, |r| r.bytes(3, b"abc"));
        let all: Vec<_> = Fields::new(&w.buf, "test").collect();
        assert_eq!(all.len(), 2);
        let (tag, v) = all[1].clone().unwrap();
        assert_eq!(tag, 2);
        let inner: Vec<_> = Fields::new(v, "inner").map(Result::unwrap).collect();
        assert_eq!(inner, [(3, &b"abc"[..])]);
        let cut = &w.buf[..w.buf.len() - 1];
        let last = Fields::new(cut, "test").last().unwrap();
        assert_eq!(
            last.unwrap_err(),
            "field 2 of test says 9 bytes, 8 are left"
        );
        assert!(Fields::new(&[1, 0, 0], "x").next().unwrap().is_err());
        assert!(u64_of(&[1, 2], "rlimit").is_err());
    }
}
