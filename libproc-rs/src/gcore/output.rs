//! The core's file: it holds the process's memory and secrets, so it is
//! created mode 0600 with no name (`O_TMPFILE`), or where the file system
//! cannot do that under a fresh temporary name (`O_CREAT | O_EXCL |
//! O_NOFOLLOW`), in the directory of the final name, and given that name
//! only when complete (`linkat`, which never replaces a file: no symlink
//! is followed and no file we did not create is clobbered). Dropped
//! before [`CoreFileOut::persist`], it leaves nothing behind.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, open, openat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, linkat, unlinkat};

use crate::error::{Error, Result};

/// A core being written.
#[derive(Debug)]
pub struct CoreFileOut {
    file: File,
    dir: OwnedFd,
    dir_path: PathBuf,
    path: PathBuf,
    name: OsString,
    /// The temporary name, where `O_TMPFILE` could not be used.
    temp_name: Option<OsString>,
    done: bool,
    /// Bytes written so far.
    pub written: u64,
}

impl CoreFileOut {
    /// Start the core that will be named `path`. Fails (before anything
    /// of the target is touched) when the directory cannot be written or
    /// the name is taken.
    pub fn create(path: &Path) -> Result<CoreFileOut> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::io(path, io::Error::from(io::ErrorKind::InvalidInput)))?
            .to_owned();
        let dir_path = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let out_err = |e: Errno| Error::CoreOutput {
            dir: dir_path.clone(),
            source: io::Error::from(e),
        };
        let dir = open(
            &dir_path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(out_err)?;
        if exists(&dir, &name) {
            return Err(Error::CoreExists {
                path: path.to_path_buf(),
            });
        }
        let mode = Mode::from_bits_truncate(0o600);
        let (fd, temp_name) = match openat(
            &dir,
            ".",
            OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            mode,
        ) {
            Ok(fd) => (fd, None),
            Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {
                let temp = temp_name(&name);
                let fd = openat(
                    &dir,
                    temp.as_os_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_RDWR
                        | OFlag::O_CLOEXEC,
                    mode,
                )
                .map_err(out_err)?;
                (fd, Some(temp))
            }
            Err(e) => return Err(out_err(e)),
        };
        Ok(CoreFileOut {
            file: File::from(fd),
            dir,
            dir_path,
            path: path.to_path_buf(),
            name,
            temp_name,
            done: false,
            written: 0,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// Write `bytes` at `offset`; a full disk is an error saying how many
    /// bytes the core needs (`needed`).
    pub fn write_at(&mut self, bytes: &[u8], offset: u64, needed: u64) -> Result<()> {
        let mut done = 0;
        while done < bytes.len() {
            match self.file.write_at(&bytes[done..], offset + done as u64) {
                Ok(0) => return Err(self.write_error(io::ErrorKind::WriteZero.into(), needed)),
                Ok(n) => {
                    done += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.write_error(e, needed)),
            }
        }
        Ok(())
    }

    /// Make the file `len` bytes long (a hole at the end stays a hole).
    pub fn set_len(&mut self, len: u64, needed: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| self.write_error(e, needed))
    }

    fn write_error(&self, e: io::Error, needed: u64) -> Error {
        match e.raw_os_error() {
            Some(nix::libc::ENOSPC | nix::libc::EDQUOT) => Error::NoRoomForCore {
                dir: self.dir_path.clone(),
                needed,
                written: self.written,
            },
            _ => Error::CoreOutput {
                dir: self.dir_path.clone(),
                source: e,
            },
        }
    }

    /// Give the complete file its name; fails, leaving nothing, when the
    /// name was taken meanwhile.
    pub fn persist(mut self) -> Result<(PathBuf, File)> {
        // Before the name is given: a failure after it would report an
        // error for a core that is there.
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::io(&self.path, e))?;
        let linked = match &self.temp_name {
            None => {
                let fd_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                linkat(
                    AT_FDCWD,
                    fd_path.as_str(),
                    &self.dir,
                    self.name.as_os_str(),
                    AtFlags::AT_SYMLINK_FOLLOW,
                )
            }
            Some(temp) => linkat(
                &self.dir,
                temp.as_os_str(),
                &self.dir,
                self.name.as_os_str(),
                AtFlags::empty(),
            ),
        };
        match linked {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                return Err(Error::CoreExists {
                    path: self.path.clone(),
                });
            }
            Err(e) => {
                return Err(Error::CoreOutput {
                    dir: self.dir_path.clone(),
                    source: io::Error::from(e),
                });
            }
        }
        self.remove_temp();
        self.done = true;
        Ok((self.path.clone(), file))
    }

    fn remove_temp(&mut self) {
        if let Some(temp) = self.temp_name.take() {
            let _ = unlinkat(&self.dir, temp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

impl Drop for CoreFileOut {
    fn drop(&mut self) {
        if !self.done {
            // An O_TMPFILE file goes with its descriptor.
            self.remove_temp();
        }
    }
}

/// Whether `dir` has an entry `name` (of any type, a symlink included).
fn exists(dir: &OwnedFd, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

/// `.NAME.npgcore-PID-NANOS`: unlikely to be taken, and created with
/// O_EXCL anyway.
fn temp_name(name: &OsStr) -> OsString {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut t = OsString::from(".");
    t.push(OsStr::from_bytes(name.as_bytes()));
    t.push(format!(".npgcore-{}-{nanos}", std::process::id()));
    t
}
