//! The `v8dbg_*` constants of a node binary: V8's postmortem metadata,
//! read once from the image's symbols and looked up by name. Kept apart
//! from the layout they imply so that the lookups' rules (field offsets by
//! prefix, whatever their type suffix; a class's one instance type) are in
//! one place.

use std::collections::HashMap;

use crate::elf::Symbol;

/// The constants this module reads, by name without `v8dbg_`. Field
/// offsets are matched by prefix (`class_JSFunction__shared__`): the type
/// suffix changed between V8 versions (`Object`, `Tagged_Object_`).
#[derive(Debug, Clone, Default)]
pub(super) struct Constants(pub(super) HashMap<String, i64>);

impl Constants {
    pub(super) fn from_symbols(
        symbols: &[Symbol],
        read: impl Fn(&Symbol) -> Option<Vec<u8>>,
    ) -> Constants {
        let mut map = HashMap::new();
        for sym in symbols {
            let Some(name) = sym.name.strip_prefix("v8dbg_") else {
                continue;
            };
            if !matches!(sym.size, 1 | 2 | 4 | 8) {
                continue;
            }
            let Some(bytes) = read(sym) else { continue };
            let value = match bytes.len() {
                1 => i64::from(bytes[0]),
                2 => i64::from(u16::from_le_bytes([bytes[0], bytes[1]])),
                4 => i64::from(i32::from_le_bytes(
                    bytes[..4].try_into().unwrap_or_default(),
                )),
                8 => i64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()),
                _ => continue,
            };
            map.insert(name.to_owned(), value);
        }
        Constants(map)
    }

    pub(super) fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    /// The one value of the constants named `prefix...` (none when they
    /// disagree).
    pub(super) fn unique(&self, prefix: &str) -> Option<i64> {
        let mut found = self
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, &v)| v);
        let v = found.next()?;
        found.all(|other| other == v).then_some(v)
    }

    /// A field offset: `class_CLASS__FIELD__TYPE` whatever the type (a
    /// field listed under two types must have one offset).
    pub(super) fn field(&self, class: &str, field: &str) -> Option<u64> {
        u64::try_from(self.unique(&format!("class_{class}__{field}__"))?).ok()
    }

    /// An instance type: `type_CLASS__TYPE_NAME`, by class, whatever the
    /// type's name (`STRING_TYPE` became `SEQ_TWO_BYTE_STRING_TYPE`). A
    /// class with several types (cons strings, one- and two-byte) has none
    /// here.
    pub(super) fn instance_type(&self, class: &str) -> Option<u16> {
        u16::try_from(self.unique(&format!("type_{class}__"))?).ok()
    }

    /// Frame type numbers and their labels (`EntryFrame` → `entry frame`).
    pub(super) fn frame_types(&self) -> HashMap<i64, String> {
        self.0
            .iter()
            .filter_map(|(k, &v)| {
                let name = k.strip_prefix("frametype_")?;
                Some((v, words(name)))
            })
            .collect()
    }
}

/// `ConstructEntryFrame` → `construct entry frame`.
fn words(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constants from `(name, value)` pairs.
    fn constants(pairs: &[(&str, i64)]) -> Constants {
        Constants(pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect())
    }

    #[test]
    fn fields_by_prefix_whatever_their_type() {
        let c = constants(&[
            ("class_JSFunction__shared__Object", 24),
            ("class_Map__instance_type__uint16_t", 12),
            ("class_Map__instance_type__Tagged_Object_", 12),
            ("class_Code__flags__uint32_t", 48),
            ("class_Code__flags__int", 40),
            ("class_Code__flags_extra__uint32_t", 7),
            ("type_JSFunction__JS_FUNCTION_TYPE", 2070),
            ("type_ConsString__CONS_ONE_BYTE_STRING_TYPE", 41),
            ("type_ConsString__CONS_TWO_BYTE_STRING_TYPE", 33),
            ("class_Script__name__Object", -8),
        ]);
        assert_eq!(c.field("JSFunction", "shared"), Some(24));
        // Listed under two types with one offset: that offset.
        assert_eq!(c.field("Map", "instance_type"), Some(12));
        // Two offsets for one field: none (`flags_extra` is another field).
        assert_eq!(c.unique("class_Code__flags__"), None);
        assert_eq!(c.field("Code", "flags"), None);
        assert_eq!(c.field("Code", "flags_extra"), Some(7));
        // A negative offset is no offset.
        assert_eq!(c.field("Script", "name"), None);
        assert_eq!(c.field("Script", "source"), None);
        assert_eq!(c.instance_type("JSFunction"), Some(2070));
        // A class of several types has none here.
        assert_eq!(c.instance_type("ConsString"), None);
    }

    #[test]
    fn read_from_symbols_of_their_size() {
        let sym = |name: &str, value, size| Symbol {
            name: name.to_owned(),
            value,
            size,
        };
        let symbols = [
            sym("v8dbg_HeapObjectTag", 0, 4),
            sym("v8dbg_FirstNonstringType", 1, 2),
            sym("v8dbg_frametype_EntryFrame", 2, 1),
            sym("v8dbg_off_fp_function", 3, 8),
            sym("v8dbg_odd", 4, 3),
            sym("not_v8dbg_x", 5, 4),
        ];
        let bytes = |s: &Symbol| -> Option<Vec<u8>> {
            Some(match s.value {
                0 => 1i32.to_le_bytes().to_vec(),
                1 => 128u16.to_le_bytes().to_vec(),
                2 => vec![4],
                3 => (-16i64).to_le_bytes().to_vec(),
                _ => vec![9; s.size as usize],
            })
        };
        let c = Constants::from_symbols(&symbols, bytes);
        assert_eq!(c.get("HeapObjectTag"), Some(1));
        assert_eq!(c.get("FirstNonstringType"), Some(128));
        assert_eq!(c.get("off_fp_function"), Some(-16));
        assert_eq!(c.get("odd"), None, "3 bytes is no integer's size");
        assert_eq!(c.0.len(), 4, "only v8dbg_ symbols");
        assert_eq!(
            c.frame_types(),
            HashMap::from([(4, "entry frame".to_owned())])
        );
    }

    #[test]
    fn frame_type_labels() {
        assert_eq!(words("EntryFrame"), "entry frame");
        assert_eq!(words("ConstructEntryFrame"), "construct entry frame");
        assert_eq!(words("StubFrame"), "stub frame");
    }
}
