//! The ELF auxiliary vector: parsing, names and value decoding.
//!
//! The same bytes come from `/proc/PID/auxv` and from a core's `NT_AUXV`
//! note: pairs of native words, ending with `AT_NULL`.

/// One auxiliary vector entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxEntry {
    pub key: u64,
    pub value: u64,
}

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_BASE_PLATFORM: u64 = 24;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;

/// More entries than any kernel writes (it has room for about 50); a longer
/// vector is cut here so that a corrupt one cannot cost without bound.
pub const MAX_ENTRIES: usize = 256;

/// Parse a little-endian 64-bit auxiliary vector. Stops at `AT_NULL`
/// (which is not returned) or after [`MAX_ENTRIES`]; a trailing partial pair
/// is ignored.
pub fn parse_auxv(bytes: &[u8]) -> Vec<AuxEntry> {
    let mut out = Vec::new();
    for pair in bytes.chunks_exact(16).take(MAX_ENTRIES) {
        let key = u64::from_le_bytes(pair[..8].try_into().unwrap_or_default());
        let value = u64::from_le_bytes(pair[8..].try_into().unwrap_or_default());
        if key == AT_NULL {
            break;
        }
        out.push(AuxEntry { key, value });
    }
    out
}

/// Encode entries back into the byte image the kernel wrote, including the
/// closing `AT_NULL` pair. Used to find the vector on a process stack.
pub fn encode_auxv(entries: &[AuxEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity((entries.len() + 1) * 16);
    for e in entries.iter().chain(std::iter::once(&AuxEntry {
        key: AT_NULL,
        value: 0,
    })) {
        out.extend_from_slice(&e.key.to_le_bytes());
        out.extend_from_slice(&e.value.to_le_bytes());
    }
    out
}

/// Look up the value of a key.
pub fn lookup(entries: &[AuxEntry], key: u64) -> Option<u64> {
    entries.iter().find(|e| e.key == key).map(|e| e.value)
}

/// The `AT_*` name of a key (Linux, x86_64), if it has one.
pub fn aux_name(key: u64) -> Option<&'static str> {
    Some(match key {
        0 => "AT_NULL",
        1 => "AT_IGNORE",
        2 => "AT_EXECFD",
        3 => "AT_PHDR",
        4 => "AT_PHENT",
        5 => "AT_PHNUM",
        6 => "AT_PAGESZ",
        7 => "AT_BASE",
        8 => "AT_FLAGS",
        9 => "AT_ENTRY",
        10 => "AT_NOTELF",
        11 => "AT_UID",
        12 => "AT_EUID",
        13 => "AT_GID",
        14 => "AT_EGID",
        15 => "AT_PLATFORM",
        16 => "AT_HWCAP",
        17 => "AT_CLKTCK",
        23 => "AT_SECURE",
        24 => "AT_BASE_PLATFORM",
        25 => "AT_RANDOM",
        26 => "AT_HWCAP2",
        27 => "AT_RSEQ_FEATURE_SIZE",
        28 => "AT_RSEQ_ALIGN",
        29 => "AT_HWCAP3",
        30 => "AT_HWCAP4",
        31 => "AT_EXECFN",
        32 => "AT_SYSINFO",
        33 => "AT_SYSINFO_EHDR",
        51 => "AT_MINSIGSTKSZ",
        _ => return None,
    })
}

/// How the value of a key is best shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxKind {
    /// A pointer to a NUL-terminated string in the target.
    String,
    /// A user or group id.
    Uid,
    Gid,
    /// A bit mask with named flags.
    HwCap,
    HwCap2,
    /// A plain number (page size, clock ticks, a boolean).
    Number,
    /// A pointer to 16 random bytes.
    RandomBytes,
    /// An address in the target, decoded by the mapping that holds it.
    Address,
    /// Nothing more to say.
    Opaque,
}

/// The kind of value a key holds.
pub fn aux_kind(key: u64) -> AuxKind {
    match key {
        AT_PLATFORM | AT_BASE_PLATFORM | AT_EXECFN => AuxKind::String,
        AT_UID | AT_EUID => AuxKind::Uid,
        AT_GID | AT_EGID => AuxKind::Gid,
        AT_HWCAP => AuxKind::HwCap,
        AT_HWCAP2 => AuxKind::HwCap2,
        AT_RANDOM => AuxKind::RandomBytes,
        4 | 5 | AT_PAGESZ | 8 | AT_CLKTCK | AT_SECURE | 27 | 28 | 51 => AuxKind::Number,
        AT_PHDR | AT_BASE | AT_ENTRY | AT_SYSINFO_EHDR => AuxKind::Address,
        _ => AuxKind::Opaque,
    }
}

/// x86 `AT_HWCAP`: CPUID leaf 1, EDX.
const HWCAP_X86: [(u32, &str); 30] = [
    (0, "fpu"),
    (1, "vme"),
    (2, "de"),
    (3, "pse"),
    (4, "tsc"),
    (5, "msr"),
    (6, "pae"),
    (7, "mce"),
    (8, "cx8"),
    (9, "apic"),
    (11, "sep"),
    (12, "mtrr"),
    (13, "pge"),
    (14, "mca"),
    (15, "cmov"),
    (16, "pat"),
    (17, "pse36"),
    (18, "pn"),
    (19, "clflush"),
    (21, "dts"),
    (22, "acpi"),
    (23, "mmx"),
    (24, "fxsr"),
    (25, "sse"),
    (26, "sse2"),
    (27, "ss"),
    (28, "ht"),
    (29, "tm"),
    (30, "ia64"),
    (31, "pbe"),
];

/// x86 `AT_HWCAP2` (arch/x86/include/uapi/asm/hwcap2.h).
const HWCAP2_X86: [(u32, &str); 2] = [(0, "ring3mwait"), (1, "fsgsbase")];

fn flag_names(value: u64, table: &[(u32, &'static str)]) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut known = 0u64;
    for &(bit, name) in table {
        known |= 1 << bit;
        if value & (1 << bit) != 0 {
            names.push(name.to_owned());
        }
    }
    let rest = value & !known;
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names.join(" | ")
}

/// Names of the `AT_HWCAP` bits set in `value`; unknown bits as a hex mask.
pub fn hwcap_names(value: u64) -> String {
    flag_names(value, &HWCAP_X86)
}

/// Names of the `AT_HWCAP2` bits set in `value`.
pub fn hwcap2_names(value: u64) -> String {
    flag_names(value, &HWCAP2_X86)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(pairs: &[(u64, u64)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
            .collect()
    }

    #[test]
    fn parses_until_at_null() {
        let bytes = image(&[(6, 4096), (17, 100), (0, 0), (6, 1)]);
        let v = parse_auxv(&bytes);
        assert_eq!(
            v,
            vec![
                AuxEntry {
                    key: 6,
                    value: 4096
                },
                AuxEntry {
                    key: 17,
                    value: 100
                }
            ]
        );
        assert_eq!(encode_auxv(&v), image(&[(6, 4096), (17, 100), (0, 0)]));
    }

    #[test]
    fn tolerates_truncation() {
        let mut bytes = image(&[(6, 4096), (17, 100)]);
        bytes.truncate(20);
        assert_eq!(parse_auxv(&bytes).len(), 1);
        assert!(parse_auxv(&[]).is_empty());
    }

    #[test]
    fn names_and_flags() {
        assert_eq!(aux_name(31), Some("AT_EXECFN"));
        assert_eq!(aux_name(999), None);
        assert_eq!(hwcap_names(0b11), "fpu | vme");
        assert_eq!(hwcap_names(1 << 10), "0x400");
        assert_eq!(hwcap2_names(2), "fsgsbase");
        assert_eq!(hwcap2_names(0), "");
    }
}
