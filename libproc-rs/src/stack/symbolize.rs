//! Names for code addresses: demangling, and file:line with inlined frames
//! from DWARF (the binary's own, or its separate debug file found by
//! build-id or debug link: [`crate::elf::locate::debug_file`]), through addr2line over the same `object` reader.

use std::borrow::Cow;
use std::rc::Rc;

use object::ReadRef;

use crate::elf::{ElfImage, debug_section_in, section_in};

/// A demangled symbol name: Rust (v0, or legacy with its hash dropped),
/// then C++ (Itanium ABI); anything else unchanged.
pub fn demangle(name: &str) -> Cow<'_, str> {
    if (name.starts_with("_R") || is_legacy_rust(name))
        && let Ok(d) = rustc_demangle::try_demangle(name)
    {
        return Cow::Owned(format!("{d:#}"));
    }
    if name.starts_with("_Z")
        && let Ok(sym) = cpp_demangle::Symbol::new(name)
        && let Ok(s) = sym.demangle()
    {
        return Cow::Owned(s);
    }
    Cow::Borrowed(name)
}

/// Legacy Rust symbols are `_ZN...17h<16 hex digits>E`.
fn is_legacy_rust(name: &str) -> bool {
    // Bytes, not str slices: a hostile name may put a multi-byte
    // character where the hash would be.
    let Some(body) = name
        .as_bytes()
        .strip_prefix(b"_ZN")
        .and_then(|n| n.strip_suffix(b"E"))
    else {
        return false;
    };
    body.len() > 19
        && body[body.len() - 19..].starts_with(b"17h")
        && body[body.len() - 16..].iter().all(u8::is_ascii_hexdigit)
}

/// A source location.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceLine {
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// What DWARF says about an address: the functions inlined at it
/// (innermost first) and the location in the outermost (real) function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineInfo {
    pub location: SourceLine,
    /// Inlined calls, innermost first: the inlined function's name and the
    /// location inside it.
    pub inlined: Vec<(String, SourceLine)>,
}

type Reader = gimli::EndianRcSlice<gimli::LittleEndian>;

/// DWARF for one module.
pub struct Dwarf {
    ctx: addr2line::Context<Reader>,
}

impl std::fmt::Debug for Dwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dwarf")
    }
}

fn load_from<'a, R: ReadRef<'a>>(data: R) -> Option<Dwarf> {
    section_in(data, b".debug_info")?;
    let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, gimli::Error> {
        let bytes: Rc<[u8]> = debug_section_in(data, id.name().as_bytes())
            .map(|d| Rc::from(&*d))
            .unwrap_or_else(|| Rc::from(&[][..]));
        Ok(Reader::new(bytes, gimli::LittleEndian))
    })
    .ok()?;
    let ctx = addr2line::Context::from_dwarf(dwarf).ok()?;
    Some(Dwarf { ctx })
}

/// DWARF for a module: from its separate debug file when there is one,
/// else from the file itself.
pub fn load_dwarf(image: &ElfImage, debug: Option<&ElfImage>) -> Option<Dwarf> {
    debug
        .and_then(|d| load_from(d.data()))
        .or_else(|| load_from(image.data()))
}

impl Dwarf {
    /// File, line and inlined frames for a link-time address.
    pub fn lookup(&self, svma: u64) -> LineInfo {
        let mut info = LineInfo::default();
        let Ok(mut frames) = self.ctx.find_frames(svma).skip_all_loads() else {
            return info;
        };
        let mut all = Vec::new();
        while let Ok(Some(frame)) = frames.next() {
            let name = frame
                .function
                .as_ref()
                .and_then(|f| f.raw_name().ok().map(|n| demangle(n.as_ref()).into_owned()));
            let loc = SourceLine {
                file: frame
                    .location
                    .as_ref()
                    .and_then(|l| l.file.map(str::to_owned)),
                line: frame.location.as_ref().and_then(|l| l.line),
            };
            all.push((name, loc));
        }
        if let Some((_, loc)) = all.pop() {
            info.location = loc;
        }
        info.inlined = all
            .into_iter()
            .map(|(n, l)| (n.unwrap_or_else(|| "??".to_owned()), l))
            .collect();
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_cpp_and_rust() {
        assert_eq!(demangle("_ZN4node5StartEiPPc"), "node::Start(int, char**)");
        assert_eq!(
            demangle("_ZN3std2rt10lang_start17h0123456789abcdefE"),
            "std::rt::lang_start"
        );
        assert_eq!(demangle("epoll_wait"), "epoll_wait");
        assert_eq!(demangle("_Znot valid"), "_Znot valid");
        // Multi-byte characters where a hash would be: no panic.
        let hostile = format!("_ZN{}E", "é".repeat(10));
        assert_eq!(demangle(&hostile), hostile);
        let hostile = format!("_ZN3foo17h{}E", "é".repeat(8));
        assert_eq!(demangle(&hostile), hostile);
    }
}
