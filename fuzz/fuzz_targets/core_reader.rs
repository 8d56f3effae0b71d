//! Fuzz the core reader: any bytes given as a core file must give a clean
//! error or a target whose every query answers without a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use libproc_rs::corefile::CoreFile;
use libproc_rs::diag::Notice;
use libproc_rs::openfiles::Options;
use libproc_rs::{Memory, MemoryExt, ProcessTarget, addrmap, environ, stack};

fuzz_target!(|data: &[u8]| {
    let Ok(core) = CoreFile::from_bytes(data.to_vec(), Path::new("fuzz.core")) else {
        return;
    };
    let mut notices: Vec<Notice> = Vec::new();
    let _ = core.psinfo();
    let _ = core.argv();
    let _ = core.initial_environ();
    let _ = environ::current_environ(&core);
    let _ = core.auxv();
    let _ = core.open_files(Options::full(), &mut notices);
    let _ = core.fatal_signal();
    let maps = core.mappings().unwrap_or_default();
    for t in core.threads().unwrap_or_default() {
        if let Some(sp) = t.stack_pointer {
            let _ = core.read_u64(sp);
        }
    }
    // What npmap and npstack do with a core (stacks with DWARF too; the
    // files a core names are read from this machine).
    let _ = addrmap::address_map(&core, true, &mut notices);
    let options = stack::Options {
        verbose: true,
        ..Default::default()
    };
    let _ = stack::collect(&core, &options, &mut notices);
    core.drain_notices(&mut notices);
    let mut buf = [0u8; 64];
    for m in maps.iter().take(16) {
        let _ = core.read_memory(m.start, &mut buf);
        let _ = core.read_memory(m.end.wrapping_sub(8), &mut buf);
        let _ = core.read_cstring(m.start, 256);
    }
});
