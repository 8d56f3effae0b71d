//! V8 strings' text, whatever their representation (sequential,
//! external, cons, sliced, thin) and encoding, bounded in length and
//! nesting. Function, property and script names and scripts' sources all
//! come through here.

use super::decoder::Decoder;
use super::heap::Heap;

/// Deepest cons-string nesting followed.
const CONS_DEPTH: usize = 32;

impl Decoder<'_, '_> {
    /// A string's text, at most `max` UTF-16 units (longer ones are cut
    /// and end with `…`). A name with control characters is taken for
    /// what it almost always is, memory that is not a name: `None`.
    pub(super) fn string(&mut self, s: u64, max: usize) -> Option<String> {
        let len = self.string_len(s)?;
        let units = self.string_units(s, len.min(max))?;
        if units
            .iter()
            .any(|&u| char::from_u32(u32::from(u)).is_some_and(char::is_control))
        {
            return None;
        }
        let mut text = String::from_utf16_lossy(&units);
        if len > max {
            text.push('…');
        }
        Some(text)
    }

    pub(super) fn string_len(&mut self, s: u64) -> Option<usize> {
        let ty = self.type_of(s)?;
        if ty >= self.l().first_nonstring {
            return None;
        }
        let at = s
            .checked_sub(self.l().heap_tag)?
            .checked_add(self.l().strings.length)?;
        usize::try_from(self.heap.i32(at)?).ok()
    }

    /// Where an external string's characters are (`base`, its untagged
    /// address): the resource's data pointer, cached right after it (not in
    /// "uncached" external strings, which are rare: then no text).
    fn external_chars(&mut self, base: u64) -> Option<u64> {
        let at = base.checked_add(self.l().strings.external_resource + 8)?;
        self.heap.word(at).filter(|&data| data != 0)
    }

    /// Where the characters of a flat one-byte string are (sequential or
    /// external, behind any thin strings): sources usually are.
    pub(super) fn flat_one_byte(&mut self, mut s: u64) -> Option<u64> {
        let l = self.l();
        for _ in 0..CONS_DEPTH {
            let ty = self.type_of(s)?;
            if ty >= l.first_nonstring || ty & l.strings.encoding_mask != l.strings.one_byte_tag {
                return None;
            }
            let repr = ty & l.strings.representation_mask;
            let base = s.checked_sub(l.heap_tag)?;
            if repr == l.strings.seq_tag {
                return base.checked_add(l.strings.seq_chars);
            } else if repr == l.strings.external_tag {
                return self.external_chars(base);
            } else if repr == l.strings.thin_tag {
                s = self.field(s, l.strings.thin_actual)?;
            } else {
                return None;
            }
        }
        None
    }

    /// The first `want` UTF-16 units of a string (all of it when shorter).
    pub(super) fn string_units(&mut self, s: u64, want: usize) -> Option<Vec<u16>> {
        let mut out = Vec::with_capacity(want.min(1 << 16));
        self.append_units(s, 0, want, &mut out, 0)?;
        Some(out)
    }

    /// Append units `from..from + want` of string `s` (cut at its end).
    fn append_units(
        &mut self,
        s: u64,
        from: usize,
        want: usize,
        out: &mut Vec<u16>,
        depth: usize,
    ) -> Option<()> {
        if depth > CONS_DEPTH {
            return None;
        }
        let l = self.l();
        let ty = self.type_of(s)?;
        if ty >= l.first_nonstring {
            return None;
        }
        let len = self.string_len(s)?;
        let want = want.min(len.saturating_sub(from));
        if want == 0 {
            return Some(());
        }
        let one_byte = ty & l.strings.encoding_mask == l.strings.one_byte_tag;
        let repr = ty & l.strings.representation_mask;
        let base = s.checked_sub(l.heap_tag)?;
        let chars = |ptr: u64, heap: &mut Heap, out: &mut Vec<u16>| -> Option<()> {
            if one_byte {
                let mut b = vec![0u8; want];
                heap.read(ptr.checked_add(from as u64)?, &mut b)?;
                out.extend(b.iter().map(|&c| u16::from(c)));
            } else {
                let mut b = vec![0u8; want * 2];
                heap.read(ptr.checked_add(from as u64 * 2)?, &mut b)?;
                out.extend(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])));
            }
            Some(())
        };
        if repr == l.strings.seq_tag {
            chars(base.checked_add(l.strings.seq_chars)?, &mut self.heap, out)
        } else if repr == l.strings.external_tag {
            let data = self.external_chars(base)?;
            chars(data, &mut self.heap, out)
        } else if repr == l.strings.cons_tag {
            let first = self.field(s, l.strings.cons_first)?;
            let second = self.field(s, l.strings.cons_second)?;
            let first_len = self.string_len(first)?;
            if from < first_len {
                let n = want.min(first_len - from);
                self.append_units(first, from, n, out, depth + 1)?;
                if want > n {
                    self.append_units(second, 0, want - n, out, depth + 1)?;
                }
                Some(())
            } else {
                self.append_units(second, from - first_len, want, out, depth + 1)
            }
        } else if repr == l.strings.sliced_tag {
            let parent = self.field(s, l.strings.sliced_parent)?;
            let offset = usize::try_from(self.smi_field(s, l.strings.sliced_offset)?).ok()?;
            self.append_units(parent, offset.checked_add(from)?, want, out, depth + 1)
        } else if repr == l.strings.thin_tag {
            let actual = self.field(s, l.strings.thin_actual)?;
            self.append_units(actual, from, want, out, depth + 1)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{CONS_ONE_BYTE, Image, SEQ_ONE_BYTE, test_v8};
    use super::*;

    #[test]
    fn sequential_and_cons_strings_read_bounded() {
        let base = 0x10_0000;
        let mut mem = Image::new(base, 0x1000);
        let seq = mem.map(base, SEQ_ONE_BYTE);
        let cons = mem.map(base + 0x80, CONS_ONE_BYTE);
        let hello = mem.seq_string(base + 0x100, seq, "hello, ");
        let world = mem.seq_string(base + 0x180, seq, "world");
        let bell = mem.seq_string(base + 0x200, seq, "a\u{7}b");
        // A cons string: map, length, then its two halves.
        let both = base + 0x280;
        mem.put_word(both, cons);
        mem.put(both + 12, &12i32.to_le_bytes());
        mem.put_word(both + 16, hello);
        mem.put_word(both + 24, world);
        let both = both + 1;
        let v8 = test_v8(3);
        let mut d = Decoder::new(&v8, &mem);
        assert_eq!(d.string(hello, 4096).as_deref(), Some("hello, "));
        assert_eq!(d.string_len(both), Some(12));
        assert_eq!(d.string(both, 4096).as_deref(), Some("hello, world"));
        assert_eq!(d.string(both, 9).as_deref(), Some("hello, wo…"));
        // Units from the middle, across the halves.
        assert_eq!(
            d.string_units(both, 12)
                .map(|u| String::from_utf16_lossy(&u[5..9])),
            Some(", wo".to_owned())
        );
        assert_eq!(d.flat_one_byte(world), Some(base + 0x180 + 16));
        assert_eq!(d.flat_one_byte(both), None, "a cons string is not flat");
        // A control character: not a name.
        assert_eq!(d.string(bell, 4096), None);
        // A map, or an untagged word: not a string.
        assert_eq!(d.string(seq, 4096), None);
        assert_eq!(d.string(base + 0x100, 4096), None);
    }
}
