//! Reads of a stopped thread's heap: a page at a time, each page read
//! once and kept for that thread only, within a budget of bytes. Every
//! read of the decoder goes through here, so that a heap that is not what
//! it seems (a wrong layout, objects being moved) costs a bounded stall of
//! the thread and no more.

use std::collections::HashMap;

use crate::target::Memory;

/// Most bytes read from the heap for one thread's frames: a bound on the
/// stall of a live thread whatever its heap holds.
const READ_BUDGET: usize = 64 << 20;
const PAGE: u64 = 4096;

/// Reads of the heap for one stopped thread, a page at a time, each page
/// read once. Nothing is kept after the thread runs again.
pub(super) struct Heap<'a> {
    mem: &'a dyn Memory,
    pages: HashMap<u64, Option<Box<[u8]>>>,
    budget: usize,
}

impl<'a> Heap<'a> {
    pub(super) fn new(mem: &'a dyn Memory) -> Heap<'a> {
        Heap {
            mem,
            pages: HashMap::new(),
            budget: READ_BUDGET,
        }
    }

    fn page(&mut self, base: u64) -> Option<&[u8]> {
        if !self.pages.contains_key(&base) {
            let mut buf = vec![0u8; PAGE as usize];
            let got = if self.budget >= buf.len() {
                self.budget -= buf.len();
                match self.mem.read_memory(base, &mut buf) {
                    Ok(n) if n == buf.len() => Some(buf.into_boxed_slice()),
                    _ => None,
                }
            } else {
                None
            };
            self.pages.insert(base, got);
        }
        self.pages.get(&base)?.as_deref()
    }

    /// Exactly `buf.len()` bytes at `addr`, or `None`.
    pub(super) fn read(&mut self, addr: u64, buf: &mut [u8]) -> Option<()> {
        if buf.len() as u64 > 4 * PAGE {
            // Large reads (source text) go straight to the target.
            self.budget = self.budget.checked_sub(buf.len())?;
            let n = self.mem.read_memory(addr, buf).ok()?;
            return (n == buf.len()).then_some(());
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.checked_add(done as u64)?;
            let base = at & !(PAGE - 1);
            let off = (at - base) as usize;
            let page = self.page(base)?;
            let n = (page.len() - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Some(())
    }

    /// `N` bytes at `addr`, for the little-endian integers below.
    fn array<const N: usize>(&mut self, addr: u64) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        self.read(addr, &mut b)?;
        Some(b)
    }

    pub(super) fn word(&mut self, addr: u64) -> Option<u64> {
        self.array(addr).map(u64::from_le_bytes)
    }

    pub(super) fn u8(&mut self, addr: u64) -> Option<u8> {
        self.array(addr).map(u8::from_le_bytes)
    }

    pub(super) fn u16(&mut self, addr: u64) -> Option<u16> {
        self.array(addr).map(u16::from_le_bytes)
    }

    pub(super) fn i32(&mut self, addr: u64) -> Option<i32> {
        self.array(addr).map(i32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Image;
    use super::*;

    /// `pages` pages from 0, each byte its address's low byte.
    fn counting(pages: u64) -> Image {
        let mut image = Image::new(0, (pages * PAGE) as usize);
        for (i, b) in image.bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        image
    }

    #[test]
    fn reads_across_a_page_boundary_read_each_page_once() {
        let mem = counting(3);
        let mut heap = Heap::new(&mem);
        // 8 bytes starting 4 before the third page's start.
        let at = 2 * PAGE - 4;
        let want = u64::from_le_bytes([0xfc, 0xfd, 0xfe, 0xff, 0, 1, 2, 3]);
        assert_eq!(heap.word(at), Some(want));
        assert_eq!(mem.reads.get(), 2, "one read a page");
        assert_eq!(heap.u16(at + 2), Some(0xfffe));
        assert_eq!(heap.u8(PAGE + 1), Some(1));
        assert_eq!(heap.i32(2 * PAGE), Some(0x0302_0100));
        assert_eq!(mem.reads.get(), 2, "pages read once");
    }

    #[test]
    fn unreadable_reads_give_nothing() {
        let mem = counting(8);
        let mut heap = Heap::new(&mem);
        // Into a page that is not there, even in part; past the address
        // space.
        assert_eq!(heap.word(8 * PAGE - 4), None);
        assert_eq!(heap.word(u64::MAX - 3), None);
        // A large read goes to the target in one: all of it, or nothing.
        let mut big = vec![0u8; 5 * PAGE as usize];
        assert_eq!(heap.read(4 * PAGE, &mut big), None);
        assert_eq!(heap.read(PAGE + 2, &mut big), Some(()));
        assert_eq!(big[..3], [2, 3, 4]);
    }
}
