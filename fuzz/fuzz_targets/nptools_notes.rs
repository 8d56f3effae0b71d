//! Fuzz the decoder of the NPTOOLS notes an npgcore core carries (the core
//! reader reaches it too, but rarely builds a note it accepts the owner of):
//! the first byte picks the note type, the rest is its descriptor. Any
//! bytes give a decoded note or a notice, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libproc_rs::npnotes::Recorded;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, desc)) = data.split_first() else {
        return;
    };
    let mut recorded = Recorded::default();
    recorded.take(u32::from(kind % 7), desc);
    recorded.take(u32::from(kind % 7), desc);
    if let Some(smaps) = &recorded.smaps {
        for m in &smaps.mappings {
            let _ = smaps.usage(m);
        }
    }
});
