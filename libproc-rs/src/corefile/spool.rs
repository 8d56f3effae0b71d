//! Cores that are not a plain file to map: compressed ones (zstd, lz4's
//! frame format, xz; told by their first bytes, never by their name, as
//! systemd-coredump names them `core.*.zst`) and cores on a pipe, a FIFO
//! or standard input (the operand `-`).
//!
//! Such a core is decompressed (or copied) once, as it streams in, into an
//! unlinked temporary file under TMPDIR, which is then mapped like any
//! core. Memory stays bounded whatever the core's size: the input is read
//! through a small buffer, the decoders keep only their window, and the
//! output is written a buffer at a time. Runs of zero pages are not
//! written at all but left as holes, so the file is sparse. The file is on
//! disk rather than a memfd, which would cost the core's size in RAM.
//!
//! A stream that ends early or is corrupt is an error, not a partial core:
//! the decoders cannot say which bytes after the damage are right.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use super::{check_ident, human_bytes, not_core};
use crate::error::{Error, Result};
use crate::root::open_regular;

/// A compression format a core may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    /// lz4's frame format.
    Lz4,
    /// lz4's legacy format (`lz4 -l`), which has no end mark.
    Lz4Legacy,
    Xz,
}

impl Compression {
    /// The format whose magic number `head` starts with.
    pub fn detect(head: &[u8]) -> Option<Self> {
        const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
        const LZ4: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
        const LZ4_LEGACY: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
        const XZ: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
        if head.starts_with(&ZSTD) {
            Some(Compression::Zstd)
        } else if head.starts_with(&LZ4) {
            Some(Compression::Lz4)
        } else if head.starts_with(&LZ4_LEGACY) {
            Some(Compression::Lz4Legacy)
        } else if head.starts_with(&XZ) {
            Some(Compression::Xz)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Lz4 | Compression::Lz4Legacy => "lz4",
            Compression::Xz => "xz",
        }
    }
}

/// The longest magic number [`Compression::detect`] looks at.
const MAGIC_LEN: usize = 6;

/// Bytes written at a time.
const BUFFER: usize = 1 << 20;

/// Bytes of input read at a time.
const INPUT_BUFFER: usize = 256 << 10;

/// The unit of holes in the spooled file.
const PAGE: usize = 4096;

/// Open the core `path` names (`-` is standard input) as a file holding the
/// uncompressed core: the file itself when it is a plain regular file, or
/// else a temporary copy, decompressed when the content is compressed.
pub(super) fn open_core(path: &Path) -> Result<File> {
    let (file, regular) = if path == Path::new("-") {
        open_stdin(path)?
    } else {
        open_named(path)?
    };
    if regular {
        let mut head = [0u8; MAGIC_LEN];
        let n = read_head_at(&file, &mut head).map_err(|e| Error::io(path, e))?;
        return match Compression::detect(&head[..n]) {
            None => Ok(file),
            Some(c) => spool(path, FromStart { file, at: 0 }, &[], Some(c)),
        };
    }
    let mut input = file;
    let mut head = Vec::with_capacity(MAGIC_LEN);
    (&mut input)
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if head.is_empty() {
        return Err(not_core(path, "the input is empty"));
    }
    let compression = Compression::detect(&head);
    spool(path, input, &head, compression)
}

/// Standard input, and whether it is a regular file (`< core`), which is
/// mapped as it is. A terminal is refused rather than waited on.
fn open_stdin(path: &Path) -> Result<(File, bool)> {
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io(path, e))?;
    let file = File::from(fd);
    let kind = file.metadata().map_err(|e| Error::io(path, e))?.file_type();
    if kind.is_file() {
        return Ok((file, true));
    }
    if kind.is_char_device() && nix::unistd::isatty(&file).unwrap_or(false) {
        return Err(not_core(
            path,
            "standard input is a terminal: pipe a core into it, or name the file",
        ));
    }
    if !(kind.is_fifo() || kind.is_socket()) {
        return Err(not_core(path, "standard input is not a file or a pipe"));
    }
    Ok((file, false))
}

/// A named core: a regular file, or a pipe or FIFO (`<(zstd -dc core.zst)`,
/// `/dev/stdin`), which is read as a stream.
fn open_named(path: &Path) -> Result<(File, bool)> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_owned(),
        },
        _ => Error::io(path, e),
    })?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(Error::IsDirectory {
            path: path.to_owned(),
        });
    }
    if kind.is_fifo() || kind.is_socket() {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        return Ok((file, false));
    }
    if !kind.is_file() {
        return Err(not_core(path, "not a regular file or a pipe"));
    }
    let file = open_regular(path).map_err(|e| Error::io(path, e))?;
    Ok((file, true))
}

/// A regular file read from its start with `pread`, leaving alone the
/// offset it may share with other processes (standard input).
struct FromStart {
    file: File,
    at: u64,
}

impl Read for FromStart {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

fn read_head_at(file: &File, head: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What the input stream has shown so far: the decoders report errors in
/// their own words, and this tells an input that ended or failed from
/// data that is wrong.
#[derive(Debug, Default)]
struct InputState {
    ended: bool,
    error: Option<(io::ErrorKind, Option<i32>)>,
}

/// The input, noting its end and its errors in a state the spooler keeps.
struct Watched<R> {
    inner: R,
    state: Rc<RefCell<InputState>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.state.borrow_mut().ended = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.state.borrow_mut().error = Some((e.kind(), e.raw_os_error()));
                }
                Err(e)
            }
        }
    }
}

type Input<R> = BufReader<Watched<io::Chain<io::Cursor<Vec<u8>>, R>>>;

/// Copy `head` then `input` (decompressed as `compression` says) into a new
/// unlinked sparse file, and hand it back.
fn spool<R: Read>(
    path: &Path,
    input: R,
    head: &[u8],
    compression: Option<Compression>,
) -> Result<File> {
    let state = Rc::new(RefCell::new(InputState::default()));
    let watched: Input<R> = BufReader::with_capacity(
        INPUT_BUFFER,
        Watched {
            inner: io::Cursor::new(head.to_vec()).chain(input),
            state: Rc::clone(&state),
        },
    );
    let mut decoder: Box<dyn Read + '_> = match compression {
        None => Box::new(watched),
        Some(Compression::Zstd) => Box::new(ZstdFrames::new(watched)),
        Some(c @ (Compression::Lz4 | Compression::Lz4Legacy)) => Box::new(Lz4Frames {
            decoder: lz4_flex::frame::FrameDecoder::new(watched),
            state: Rc::clone(&state),
            frame_ended: false,
            legacy: c == Compression::Lz4Legacy,
        }),
        Some(Compression::Xz) => Box::new(lzma_rust2::XzReader::new(watched, true)),
    };
    let dir = std::env::temp_dir();
    let out = unlinked_temp_file(&dir).map_err(|e| temp_error(path, &dir, 0, e))?;
    let mut buf = vec![0u8; BUFFER];
    let mut written: u64 = 0;
    loop {
        let mut n = 0;
        fill(&mut *decoder, &mut buf, &mut n)
            .map_err(|e| stream_error(path, compression, written + n as u64, &state.borrow(), e))?;
        if written == 0 {
            check_head(&buf[..n], path, compression)?;
        }
        write_sparse(&out, written, &buf[..n]).map_err(|e| temp_error(path, &dir, written, e))?;
        written += n as u64;
        if n < buf.len() {
            break;
        }
    }
    out.set_len(written)
        .map_err(|e| temp_error(path, &dir, written, e))?;
    Ok(out)
}

/// Read until `buf` is full or the stream ends, counting in `n` the bytes
/// read (also those read before an error).
fn fill(input: &mut dyn Read, buf: &mut [u8], n: &mut usize) -> io::Result<()> {
    while *n < buf.len() {
        match input.read(&mut buf[*n..]) {
            Ok(0) => break,
            Ok(k) => *n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Refuse what is not a core from its first bytes, before copying the rest.
fn check_head(head: &[u8], path: &Path, compression: Option<Compression>) -> Result<()> {
    if head.is_empty() {
        let what = match compression {
            Some(c) => format!("{}-compressed, but empty", c.name()),
            None => "the input is empty".into(),
        };
        return Err(not_core(path, what));
    }
    match (check_ident(head, path), compression) {
        (Err(Error::NotCore { path, what }), Some(c)) => Err(Error::NotCore {
            path,
            what: format!("{}-compressed, but {what}", c.name()),
        }),
        // A header cut short is told by the mapped file's own checks.
        (Err(Error::Corrupt { .. }), _) => Ok(()),
        (result, _) => result,
    }
}

/// Write `data` at `offset`, leaving pages of zeros as holes.
fn write_sparse(out: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    let mut run_start = None;
    for (i, page) in data.chunks(PAGE).enumerate() {
        let at = i * PAGE;
        match (is_zero(page), run_start) {
            (false, None) => run_start = Some(at),
            (true, Some(start)) => {
                out.write_all_at(&data[start..at], offset + start as u64)?;
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        out.write_all_at(&data[start..], offset + start as u64)?;
    }
    Ok(())
}

fn is_zero(bytes: &[u8]) -> bool {
    // Or-ing whole chunks lets the compiler use vector instructions.
    let mut chunks = bytes.chunks_exact(64);
    let zero = chunks
        .by_ref()
        .all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0);
    zero && chunks.remainder().iter().all(|&b| b == 0)
}

/// A new file under `dir` with no name: `O_TMPFILE`, or where the
/// filesystem lacks it, a file created and unlinked at once.
fn unlinked_temp_file(dir: &Path) -> io::Result<File> {
    match open(
        dir,
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => return Ok(File::from(fd)),
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for attempt in 0..100 {
        let name = dir.join(format!(
            ".nptools-core-{}-{stamp}-{attempt}",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&name)
        {
            Ok(file) => {
                std::fs::remove_file(&name)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

fn temp_error(path: &Path, dir: &Path, written: u64, source: io::Error) -> Error {
    Error::TempFile {
        path: path.to_owned(),
        dir: dir.to_owned(),
        written,
        source,
    }
}

/// Say why a stream could not be read: the input failed, ended early, or
/// holds data the decoder refused.
fn stream_error(
    path: &Path,
    compression: Option<Compression>,
    written: u64,
    state: &InputState,
    e: io::Error,
) -> Error {
    if let Some((kind, raw)) = state.error {
        let source = raw.map_or_else(|| io::Error::from(kind), io::Error::from_raw_os_error);
        return Error::io(path, source);
    }
    let Some(c) = compression else {
        return Error::io(path, e);
    };
    let after = if written == 0 {
        String::new()
    } else {
        format!(", after {} of the core", human_bytes(written))
    };
    let what = if state.ended {
        format!("the {} stream ends early{after}", c.name())
    } else {
        format!("bad {} data{after}: {e}", c.name())
    };
    Error::Corrupt {
        path: PathBuf::from(path),
        what,
    }
}

/// Every zstd frame of a stream in turn (`zstd` writes one, but frames may
/// be concatenated, and skippable frames are allowed), each checked against
/// its checksum when it has one.
struct ZstdFrames<R> {
    input: R,
    decoder: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(input: R) -> Self {
        ZstdFrames {
            input,
            decoder: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Start the next frame, skipping skippable ones; false at the end of
    /// the input.
    fn next_frame(&mut self) -> io::Result<bool> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        loop {
            if self.input.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.reset(&mut self.input) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.input).take(want), &mut io::sink())?;
                    if skipped < want {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) => return Err(invalid_data(e)),
            }
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        loop {
            if self.in_frame {
                let n = self.decoder.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                if !self.decoder.is_finished() {
                    self.decoder
                        .decode_blocks(&mut self.input, BlockDecodingStrategy::UptoBlocks(1))
                        .map_err(invalid_data)?;
                    continue;
                }
                if let (Some(want), Some(have)) = (
                    self.decoder.get_checksum_from_data(),
                    self.decoder.get_calculated_checksum(),
                ) && want != have
                {
                    return Err(invalid_data("checksum mismatch"));
                }
                self.in_frame = false;
            }
            if !self.next_frame()? {
                return Ok(0);
            }
            self.in_frame = true;
        }
    }
}

fn invalid_data(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// lz4 frames in turn. lz4_flex's decoder reports the end of each frame as
/// the end of its input, and the end of its input at a block boundary as
/// the end of a frame: an end counts only where a frame ended just before.
struct Lz4Frames<R: Read> {
    decoder: lz4_flex::frame::FrameDecoder<R>,
    state: Rc<RefCell<InputState>>,
    /// The last read ended a frame.
    frame_ended: bool,
    /// The legacy format ends where its input does.
    legacy: bool,
}

impl<R: Read> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.decoder.read(buf)?;
            if n > 0 {
                self.frame_ended = false;
                return Ok(n);
            }
            if !self.state.borrow().ended {
                self.frame_ended = true;
                continue;
            }
            if self.frame_ended || self.legacy {
                return Ok(0);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_magic() {
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0x24, 0]),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::detect(&[0x04, 0x22, 0x4d, 0x18, 0x64, 0x40]),
            Some(Compression::Lz4)
        );
        assert_eq!(
            Compression::detect(&[0x02, 0x21, 0x4c, 0x18, 0, 0]),
            Some(Compression::Lz4Legacy)
        );
        assert_eq!(Compression::detect(b"\xfd7zXZ\0\0"), Some(Compression::Xz));
        assert_eq!(Compression::detect(b"\x7fELF\x02\x01"), None);
        assert_eq!(Compression::detect(b"\xfd7zX"), None);
        assert_eq!(Compression::detect(b""), None);
    }

    #[test]
    fn zero_pages_are_told_apart() {
        let mut page = vec![0u8; PAGE];
        assert!(is_zero(&page));
        assert!(is_zero(&page[..100]));
        page[PAGE - 1] = 1;
        assert!(!is_zero(&page));
        page[PAGE - 1] = 0;
        page[70] = 0x80;
        assert!(!is_zero(&page));
    }
}
