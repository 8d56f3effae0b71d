//! What an npgcore core keeps of /proc, read from a live process before
//! it is stopped: the NPTOOLS notes (their format is
//! [`crate::npnotes`]). Nothing here stops or touches the target.

use std::ffi::OsString;

use super::LiveProcess;
use crate::diag::Sink;
use crate::error::Result;
use crate::npnotes::{self, Paths, SmapsTable};
use crate::openfiles::Options;
use crate::target::ProcessTarget;

pub use crate::npnotes::OWNER;

/// The NPTOOLS notes of `process`, as (n_type, descriptor) pairs in the
/// order they go into the core, all under [`OWNER`]: the descriptor table
/// (read as npfiles reads it live, [`Options::full`]), the thread names,
/// the resource limits, the working and root directories, and each
/// mapping's smaps figures. What could not be read of the directories is
/// left out; the rest failing is an error (the process has gone, or is not
/// ours to read). Notices from reading the descriptors (netlink not
/// available) go to `sink`.
pub fn collect(process: &LiveProcess, sink: &mut dyn Sink) -> Result<Vec<(u32, Vec<u8>)>> {
    let table = process.open_files(Options::full(), sink)?;
    let threads: Vec<(i32, OsString)> = process
        .threads()?
        .into_iter()
        .filter_map(|t| Some((t.tid, t.name?)))
        .collect();
    let limits = npnotes::parse_limits(&process.read_file("limits")?);
    let link = |name: &str| {
        std::fs::read_link(process.dir.join(name))
            .ok()
            .map(OsString::from)
    };
    let paths = Paths {
        cwd: link("cwd"),
        root: link("root"),
    };
    let mut smaps = SmapsTable::default();
    process.read_lines("smaps", |line| smaps.line(line))?;
    Ok(vec![
        (
            npnotes::NT_NPTOOLS_FDTABLE,
            npnotes::encode_fd_table(&table),
        ),
        (
            npnotes::NT_NPTOOLS_THREADS,
            npnotes::encode_threads(&threads),
        ),
        (npnotes::NT_NPTOOLS_LIMITS, npnotes::encode_limits(&limits)),
        (npnotes::NT_NPTOOLS_PATHS, npnotes::encode_paths(&paths)),
        (npnotes::NT_NPTOOLS_SMAPS, npnotes::encode_smaps(&smaps)),
    ])
}
