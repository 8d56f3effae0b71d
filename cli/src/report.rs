//! Pieces of output every tool shares: the header line, the JSON
//! description of a target, and decoded auxiliary-vector entries.

use std::ffi::OsStr;

use serde_json::{Map, Value, json};

use libproc_rs::escape::{escape_bytes, escape_os};
use libproc_rs::parse::auxv::{self, AuxEntry, AuxKind};
use libproc_rs::parse::passwd::IdNames;
use libproc_rs::target::{Mapping, MemoryExt, ProcessTarget, Source};

use crate::json::{json_bytes, json_os};

/// The first line of every report, as the illumos tools print it:
/// `PID:<TAB>psargs` for a process, `core 'OPERAND' of PID:<TAB>psargs` for
/// a core (the operand as the user typed it).
pub fn header(target: &dyn ProcessTarget, operand: &OsStr) -> String {
    let info = target.psinfo();
    let psargs = escape_os(&info.psargs);
    match target.source() {
        Source::Live { pid } => format!("{pid}:\t{psargs}"),
        Source::Core { .. } => format!("core '{}' of {}:\t{psargs}", escape_os(operand), info.pid),
    }
}

/// The fields that identify a target in JSON output.
pub fn target_json(target: &dyn ProcessTarget) -> Map<String, Value> {
    let info = target.psinfo();
    let mut m = Map::new();
    m.insert("pid".into(), json!(info.pid));
    match target.source() {
        Source::Live { .. } => {
            m.insert("source".into(), json!("live"));
        }
        Source::Core { path } => {
            m.insert("source".into(), json!("core"));
            m.insert("core".into(), json_os(path.as_os_str()));
        }
    }
    m.insert("fname".into(), json_os(&info.fname));
    m.insert("psargs".into(), json_os(&info.psargs));
    let recorded = target.npgcore_notes();
    if !recorded.is_empty() {
        m.insert("npgcore_notes".into(), json!(recorded));
    }
    // What stderr says makes the whole report partial.
    let caveats = target.caveats();
    if !caveats.is_empty() {
        m.insert("notices".into(), json!(caveats));
    }
    m
}

/// Where user and group names come from: the target's own root for a live
/// process (containers have their own users), this machine for a core.
pub fn id_names_for(target: &dyn ProcessTarget) -> IdNames {
    target.root_dir().map(|r| r.id_names()).unwrap_or_default()
}

/// One auxiliary-vector entry, named and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAux {
    pub entry: AuxEntry,
    /// `AT_*`, or the decimal type for unknown entries.
    pub name: String,
    /// Human-readable meaning, escaped for a terminal; may be empty.
    pub text: String,
    /// The same meaning for JSON (strings carried as bytes are exact).
    pub json: Value,
}

fn id_text(id: u64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{id}({n})"),
        None => id.to_string(),
    }
}

/// Name the mapping an address falls in, as `path+0xOFF` from the start of
/// that object's first mapping.
fn address_text(addr: u64, maps: &[Mapping]) -> Option<String> {
    let m = maps.iter().find(|m| m.contains(addr))?;
    let label = match &m.name {
        libproc_rs::target::MapName::File(p) => {
            escape_bytes(p.as_os_str().as_encoded_bytes()).into_owned()
        }
        libproc_rs::target::MapName::Vdso => "[vdso]".into(),
        _ => return None,
    };
    let base = maps
        .iter()
        .filter(|o| o.name == m.name)
        .map(|o| o.start)
        .min()
        .unwrap_or(m.start);
    Some(match addr - base {
        0 => label,
        off => format!("{label}+{off:#x}"),
    })
}

/// Decode every entry of the auxiliary vector.
pub fn decode_auxv(
    target: &dyn ProcessTarget,
    entries: &[AuxEntry],
    maps: &[Mapping],
    names: &IdNames,
) -> Vec<DecodedAux> {
    entries
        .iter()
        .map(|&entry| {
            let v = entry.value;
            let (text, json) = match auxv::aux_kind(entry.key) {
                AuxKind::String => match target.read_cstring(v, 4096) {
                    Ok(s) => (escape_os(&s).into_owned(), json_os(&s)),
                    Err(_) => (String::new(), Value::Null),
                },
                AuxKind::Uid => {
                    let t = id_text(v, u32::try_from(v).ok().and_then(|u| names.user(u)));
                    (t.clone(), json!(t))
                }
                AuxKind::Gid => {
                    let t = id_text(v, u32::try_from(v).ok().and_then(|g| names.group(g)));
                    (t.clone(), json!(t))
                }
                AuxKind::HwCap => {
                    let t = auxv::hwcap_names(v);
                    (t.clone(), json!(t))
                }
                AuxKind::HwCap2 => {
                    let t = auxv::hwcap2_names(v);
                    (t.clone(), json!(t))
                }
                AuxKind::Number if entry.key == auxv::AT_SECURE => {
                    let t = if v == 0 {
                        "0 (no)"
                    } else {
                        "1 (yes: setuid, setgid or file capabilities)"
                    };
                    (t.to_owned(), json!(v != 0))
                }
                AuxKind::Number => (v.to_string(), json!(v)),
                AuxKind::RandomBytes => {
                    let mut b = [0u8; 16];
                    match target.read_exact_at(v, &mut b) {
                        Ok(()) => {
                            let t: String = b.iter().map(|x| format!("{x:02x}")).collect();
                            (t.clone(), json!(t))
                        }
                        Err(_) => (String::new(), Value::Null),
                    }
                }
                AuxKind::Address => match address_text(v, maps) {
                    Some(t) => (t.clone(), json!(t)),
                    None => (String::new(), Value::Null),
                },
                AuxKind::Opaque => (String::new(), Value::Null),
            };
            let name = auxv::aux_name(entry.key)
                .map(str::to_owned)
                .unwrap_or_else(|| entry.key.to_string());
            DecodedAux {
                entry,
                name,
                text,
                json,
            }
        })
        .collect()
}

/// The JSON form of a list of strings (see [`crate::json::json_bytes`]).
pub fn strings_json<S: AsRef<OsStr>>(items: &[S]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| json_bytes(s.as_ref().as_encoded_bytes()))
            .collect(),
    )
}

/// Bytes as they go to the terminal: escaped, or untouched with `--raw`.
pub fn text_bytes(bytes: &[u8], raw: bool) -> std::borrow::Cow<'_, [u8]> {
    if raw {
        std::borrow::Cow::Borrowed(bytes)
    } else {
        match escape_bytes(bytes) {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
        }
    }
}

/// Write the header line (see [`header`]); with `raw`, psargs unescaped.
pub fn write_header(
    out: &mut dyn std::io::Write,
    target: &dyn ProcessTarget,
    operand: &OsStr,
    raw: bool,
) -> std::io::Result<()> {
    if !raw {
        return writeln!(out, "{}", header(target, operand));
    }
    let info = target.psinfo();
    match target.source() {
        Source::Live { pid } => write!(out, "{pid}:\t")?,
        Source::Core { .. } => {
            out.write_all(b"core '")?;
            out.write_all(operand.as_encoded_bytes())?;
            write!(out, "' of {}:\t", info.pid)?;
        }
    }
    out.write_all(info.psargs.as_encoded_bytes())?;
    out.write_all(b"\n")
}

/// Write one JSON document and its newline (`--json` is one per operand).
pub fn write_json_line(
    out: &mut dyn std::io::Write,
    doc: Map<String, Value>,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &Value::Object(doc)).map_err(std::io::Error::from)?;
    writeln!(out)
}

/// The fields of a JSON document after its first ones, written as they
/// come (see [`write_json_line_streamed`]).
pub struct JsonFields<'a, 'w> {
    map: serde_json::ser::Compound<
        'a,
        &'w mut dyn std::io::Write,
        serde_json::ser::CompactFormatter,
    >,
}

impl std::fmt::Debug for JsonFields<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonFields")
    }
}

impl JsonFields<'_, '_> {
    /// Write `"key":value`.
    pub fn field<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> serde_json::Result<()> {
        serde::ser::SerializeMap::serialize_entry(&mut self.map, key, value)
    }
}

/// A JSON array of what an iterator yields, written element by element:
/// `StreamedArray(|| entries.iter().map(EntryJson::from))`. The closure is
/// called once per serialization.
pub struct StreamedArray<F>(pub F);

impl<F> std::fmt::Debug for StreamedArray<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamedArray")
    }
}

impl<F, I> serde::Serialize for StreamedArray<F>
where
    F: Fn() -> I,
    I: IntoIterator,
    I::Item: serde::Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

/// Write one JSON document and its newline as [`write_json_line`] does,
/// but with the fields after `head` written by `rest` as it makes them:
/// a report of 100,000 mappings or descriptors holds one entry's JSON at a
/// time, never the whole tree. The bytes are those of the same document
/// built as a [`Value`] and written whole.
pub fn write_json_line_streamed(
    out: &mut dyn std::io::Write,
    head: Map<String, Value>,
    rest: impl FnOnce(&mut JsonFields<'_, '_>) -> serde_json::Result<()>,
) -> std::io::Result<()> {
    use serde::ser::{SerializeMap, Serializer as _};
    let mut ser = serde_json::Serializer::new(out);
    let mut fields = JsonFields {
        map: (&mut ser).serialize_map(None)?,
    };
    for (k, v) in &head {
        fields.field(k, v)?;
    }
    rest(&mut fields)?;
    fields.map.end()?;
    writeln!(ser.into_inner())
}

/// Write `label[N]: value` lines, as pargs and penv do.
pub fn write_indexed<S: AsRef<OsStr>>(
    out: &mut dyn std::io::Write,
    label: &str,
    items: &[S],
    raw: bool,
) -> std::io::Result<()> {
    for (i, item) in items.iter().enumerate() {
        write!(out, "{label}[{i}]: ")?;
        out.write_all(&text_bytes(item.as_ref().as_encoded_bytes(), raw))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// JSON fields for an environment: `envp`, `envp_origin` (`"environ"` when
/// read through the C library's `environ`, `"initial"` for the exec-time
/// environment), `environ_module` and `environ_address` for the former, and
/// `envp_caveat` when the list is a fallback.
pub fn environment_json(env: &libproc_rs::environ::Environment) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("envp".into(), strings_json(&env.vars.items));
    match &env.origin {
        libproc_rs::environ::EnvOrigin::Environ {
            module,
            symbol,
            address,
        } => {
            m.insert("envp_origin".into(), json!("environ"));
            m.insert("environ_module".into(), json_os(module.as_os_str()));
            m.insert("environ_symbol".into(), json!(symbol));
            m.insert("environ_address".into(), json!(address));
        }
        libproc_rs::environ::EnvOrigin::Initial => {
            m.insert("envp_origin".into(), json!("initial"));
        }
    }
    if let Some(c) = &env.vars.caveat {
        m.insert("envp_caveat".into(), json!(c));
    }
    m
}
