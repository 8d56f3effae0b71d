//! Opening files a target names, safely.
//!
//! A core names files in NT_FILE, and a live process in a container names
//! files under its own root; either may be hostile. Opening a path it chose
//! must not block (a FIFO), must not touch a device (opening some has
//! effects), and must stay inside the root it belongs to (an absolute
//! symlink in a container must not reach the host's files).
//!
//! So files are first opened with `O_PATH`, which opens nothing, checked to
//! be regular files, and only then reopened for reading through
//! `/proc/self/fd/N`, which reopens that very inode. Inside a root, paths
//! resolve with `openat2(RESOLVE_IN_ROOT)` (Linux 5.6+); where that is not
//! available they are resolved here, a component at a time, by the same
//! rules.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::parse::passwd::IdNames;

fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// Reopen an `O_PATH` descriptor for reading once it is known to be a
/// regular file.
fn reopen_regular(fd: OwnedFd) -> io::Result<File> {
    let st = fstat(fd.as_fd())?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(not_regular());
    }
    let reopened = open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )?;
    Ok(File::from(reopened))
}

/// Open a path that must be a regular file, following symlinks as usual.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let fd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    reopen_regular(fd)
}

/// A directory that paths are resolved under, as if it were `/`.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Whether paths resolve here as they do under our own `/`: the same
    /// directory, seen with the same mounts.
    ours: bool,
}

impl RootDir {
    /// Open a root directory (`/proc/PID/root`, `/`, or a sysroot).
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let st = fstat(fd.as_fd())?;
        let ours =
            std::fs::metadata("/").is_ok_and(|m| (m.dev(), m.ino()) == (st.st_dev, st.st_ino));
        Ok(RootDir {
            fd,
            path: path.to_owned(),
            ours,
        })
    }

    /// The root's own path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same root seen with other mounts (`/proc/PID/root` of a process
    /// in another mount namespace, whose root may be our very directory
    /// with other things mounted on it): not ours.
    pub fn with_other_mounts(mut self) -> Self {
        self.ours = false;
        self
    }

    /// `path` under this root as this machine names it, for messages: the
    /// path itself under our own root.
    pub fn shown(&self, path: &Path) -> PathBuf {
        if self.ours {
            return path.to_owned();
        }
        self.path.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Open `path` (absolute or not) as seen from this root; it must be a
    /// regular file.
    pub fn open_file(&self, path: &Path) -> io::Result<File> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(self.fd.as_fd(), rel, how) {
            Ok(fd) => reopen_regular(fd),
            // No openat2: a kernel before 5.6, or a seccomp profile that
            // refuses it (older container runtimes answer EPERM).
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => {
                if self.path == Path::new("/") {
                    open_regular(path)
                } else {
                    reopen_regular(self.resolve(rel)?)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Resolve `rel` under this root one component at a time, as
    /// `RESOLVE_IN_ROOT` would: absolute symlinks restart at the root and
    /// `..` stops there. Returns an `O_PATH` descriptor.
    fn resolve(&self, rel: &Path) -> io::Result<OwnedFd> {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStrExt;
        let components = |p: &Path| -> Vec<OsString> {
            p.as_os_str()
                .as_bytes()
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty() && *c != b".")
                .rev()
                .map(|c| std::ffi::OsStr::from_bytes(c).to_owned())
                .collect()
        };
        let mut todo = components(rel);
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        while let Some(name) = todo.pop() {
            if name == ".." {
                dirs.pop();
                continue;
            }
            let here = dirs.last().map_or(self.fd.as_fd(), |d| d.as_fd());
            let fd = nix::fcntl::openat(
                here,
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let st = fstat(fd.as_fd())?;
            if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK {
                links += 1;
                if links > 40 {
                    return Err(Errno::ELOOP.into());
                }
                let target = nix::fcntl::readlinkat(here, name.as_os_str())?;
                if target.as_bytes().starts_with(b"/") {
                    dirs.clear();
                }
                todo.extend(components(Path::new(&target)));
                continue;
            }
            dirs.push(fd);
        }
        match dirs.pop() {
            Some(fd) => Ok(fd),
            None => Ok(self.fd.try_clone()?),
        }
    }

    /// Read a small file under this root, at most `limit` bytes.
    pub fn read_small(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_file(path)?.take(limit).read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// User and group names from `/etc/passwd` and `/etc/group` under this
    /// root; missing or unreadable files give no names.
    pub fn id_names(&self) -> IdNames {
        let read = |rel: &str| {
            self.read_small(Path::new(rel), MAX_ID_FILE)
                .unwrap_or_default()
        };
        IdNames::from_files(&read("/etc/passwd"), &read("/etc/group"))
    }
}

/// Where a search looks for a file (see [`SearchPath`]).
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// A path resolved under a root directory.
    Root(&'a RootDir),
    /// A live process's `/proc/PID/map_files`: the very file of a mapping,
    /// by its address range, whatever path it has now (or none).
    MapFiles(&'a Path),
}

impl Place<'_> {
    /// Open the file mapped as `path` over `range` (start, end) from here.
    pub fn open(&self, path: &Path, range: Option<(u64, u64)>) -> io::Result<File> {
        match self {
            Place::Root(root) => root.open_file(path),
            Place::MapFiles(dir) => match range {
                Some(r) => open_regular(&map_file(dir, r)),
                None => Err(io::ErrorKind::NotFound.into()),
            },
        }
    }

    /// The file opened by [`Place::open`], as this machine names it.
    pub fn shown(&self, path: &Path, range: Option<(u64, u64)>) -> PathBuf {
        match (self, range) {
            (Place::Root(root), _) => root.shown(path),
            (Place::MapFiles(dir), Some(r)) => map_file(dir, r),
            (Place::MapFiles(dir), None) => dir.to_path_buf(),
        }
    }
}

fn map_file(dir: &Path, (start, end): (u64, u64)) -> PathBuf {
    dir.join(format!("{start:x}-{end:x}"))
}

/// Where the files a target names are looked for, in this order: under
/// the target's own root (`/proc/PID/root` of a live process, so a process
/// in a container resolves its own paths; the sysroot of a core), in a
/// live process's `/proc/PID/map_files`, under the sysroot, and on this
/// machine; each directory once. Debug files are looked for under the
/// same roots' `/usr/lib/debug`, then in the debug directories given.
/// Which file is the right one is for the caller to check (build-ids).
#[derive(Debug)]
pub struct SearchPath {
    roots: Vec<RootDir>,
    map_files: Option<PathBuf>,
    debug_dirs: Vec<RootDir>,
}

impl SearchPath {
    /// A search under `own` (the target's root), then `map_files`, then
    /// `sysroot` and this machine's root, with debug files also in
    /// `debug_dirs`. A directory that cannot be opened is an error naming
    /// it.
    pub fn new(
        own: Option<RootDir>,
        map_files: Option<PathBuf>,
        sysroot: Option<&Path>,
        debug_dirs: &[PathBuf],
    ) -> Result<Self, (PathBuf, io::Error)> {
        let open = |p: &Path| RootDir::open(p).map_err(|e| (p.to_owned(), e));
        let mut roots: Vec<RootDir> = own.into_iter().collect();
        for dir in sysroot.into_iter().chain([Path::new("/")]) {
            let root = open(dir)?;
            // Our root once: a process that shares it needs no second look.
            if !(root.ours && roots.iter().any(|r| r.ours)) {
                roots.push(root);
            }
        }
        let debug_dirs = debug_dirs
            .iter()
            .map(|d| open(d))
            .collect::<Result<_, _>>()?;
        Ok(SearchPath {
            roots,
            map_files,
            debug_dirs,
        })
    }

    /// The target's root: the first of the roots.
    pub fn root(&self) -> &RootDir {
        &self.roots[0]
    }

    /// Where a mapped file is looked for, in order.
    pub fn places(&self) -> Vec<Place<'_>> {
        let mut out = vec![Place::Root(&self.roots[0])];
        out.extend(self.map_files.as_deref().map(Place::MapFiles));
        out.extend(self.roots[1..].iter().map(Place::Root));
        out
    }

    /// The roots, in order, whose `/usr/lib/debug` holds debug files.
    pub fn roots(&self) -> &[RootDir] {
        &self.roots
    }

    /// The debug directories given (`--debug-dir`), searched after the
    /// roots.
    pub fn debug_dirs(&self) -> &[RootDir] {
        &self.debug_dirs
    }
}

/// passwd and group files larger than this are not read.
const MAX_ID_FILE: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        assert!(open_regular(Path::new("/dev/null")).is_err());
        assert!(open_regular(Path::new("/")).is_err());
        assert!(open_regular(Path::new("/proc/self/status")).is_ok());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let path = std::env::temp_dir().join(format!("nptools-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap();
        // A plain open would block here until a writer came.
        let err = open_regular(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let root = RootDir::open(Path::new("/")).unwrap();
        assert!(root.open_file(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn stays_inside_its_root() {
        let dir = std::env::temp_dir().join(format!("nptools-root-{}", std::process::id()));
        let etc = dir.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("passwd"), b"inside:x:1:1::/:/bin/sh\n").unwrap();
        // An absolute symlink must resolve inside the root, not on the host.
        let _ = std::fs::remove_file(etc.join("link"));
        let _ = std::fs::remove_file(etc.join("up"));
        std::os::unix::fs::symlink("/etc/passwd", etc.join("link")).unwrap();
        let root = RootDir::open(&dir).unwrap();
        let via_link = root.read_small(Path::new("/etc/link"), 1 << 20).unwrap();
        assert_eq!(via_link, b"inside:x:1:1::/:/bin/sh\n");
        assert!(root.open_file(Path::new("/etc")).is_err());
        // The fallback for kernels without openat2 resolves the same way.
        let fd = root.resolve(Path::new("etc/link")).unwrap();
        let mut text = String::new();
        reopen_regular(fd)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "inside:x:1:1::/:/bin/sh\n");
        std::os::unix::fs::symlink("../../../../etc/passwd", etc.join("up")).unwrap();
        let fd = root.resolve(Path::new("etc/up")).unwrap();
        text.clear();
        reopen_regular(fd)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "inside:x:1:1::/:/bin/sh\n", ".. stops at the root");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
