//! The names around a function: the type of its receiver, the property
//! of the receiver (or its prototypes) that holds a method with no name of
//! its own, and the function name, inferred name and start a ScopeInfo
//! keeps. Apart from the frame's decoding because each follows its own
//! objects' layout (maps, descriptors, dictionaries, ScopeInfo slots).

use super::decoder::{Decoder, NAME_MAX};
use super::layout::PropertyLayout;

/// Most prototypes searched, and properties read on one object, when
/// looking for the property that holds a function.
const MAX_PROTOTYPES: usize = 16;
const MAX_PROPERTIES: u64 = 4096;

impl Decoder<'_, '_> {
    /// The type name V8 puts before a method's name in a stack trace: the
    /// name of the receiver's constructor, for a receiver that is an
    /// object (not undefined, a primitive or the global proxy, as in a
    /// plain call).
    pub(super) fn receiver_type(&mut self, receiver: u64) -> Option<String> {
        let r = self.l().receiver.as_ref()?;
        let ty = self.type_of(receiver)?;
        // Not an object (below the first receiver type, JSProxy), a proxy,
        // or the global proxy (a plain call's receiver).
        if ty <= r.proxy_type || ty == r.global_proxy_type {
            return None;
        }
        if r.functions_by_name && self.l().js_function.contains(&ty) {
            let shared = self.field(receiver, self.l().function_shared)?;
            let info = self.function_info(shared)?;
            if let Some(name) = info.name.or(info.inferred) {
                return Some(name);
            }
        }
        let mut ctor = self.field(receiver, self.l().map)?;
        // A map's constructor slot holds its back pointer (a map) until
        // the root map, which holds the constructor.
        for _ in 0..64 {
            if self.type_of(ctor)? != r.map_type {
                break;
            }
            ctor = self.field(ctor, r.map_constructor)?;
        }
        if !self.l().js_function.contains(&self.type_of(ctor)?) {
            return None;
        }
        let shared = self.field(ctor, self.l().function_shared)?;
        let info = self.function_info(shared)?;
        info.name.or(info.inferred)
    }

    /// The name of the one enumerable property of `object` or its
    /// prototypes whose value is `function` (none when there are several,
    /// as V8 does). Properties keyed by symbols are not looked at.
    pub(super) fn method_name(&mut self, object: u64, function: u64) -> Option<String> {
        let p = self.l().receiver.as_ref()?.properties.as_ref()?;
        let mut found: Option<u64> = None;
        let mut current = object;
        for _ in 0..MAX_PROTOTYPES {
            let ty = self.type_of(current)?;
            let r = self.l().receiver.as_ref()?;
            if ty <= r.proxy_type || self.l().js_function.contains(&ty) && current != object {
                break;
            }
            for key in self.keys_holding(current, function, p)? {
                if found.replace(key).is_some_and(|k| k != key) {
                    return None;
                }
            }
            let map = self.field(current, self.l().map)?;
            current = self.field(map, p.map_prototype)?;
            if !self.is_heap(current) {
                break;
            }
        }
        self.string(found?, NAME_MAX)
    }

    /// The keys (strings) of `object`'s own enumerable data properties whose
    /// value is `value`.
    fn keys_holding(&mut self, object: u64, value: u64, p: &PropertyLayout) -> Option<Vec<u64>> {
        let all = self.own_data_properties(object, p, true)?;
        Some(
            all.into_iter()
                .filter(|&(_, v)| v == value)
                .map(|(k, _)| k)
                .collect(),
        )
    }

    /// The value of `function`'s own `name` data property when it is a
    /// string: V8 gives a function its name there when the name is known
    /// only as the program runs (a method keyed by a symbol,
    /// `[kOnMessage]`), and V8's debugger goes by it. Looked up for a
    /// function whose SharedFunctionInfo has no name.
    pub(super) fn own_name(&mut self, function: u64) -> Option<String> {
        let p = self.l().receiver.as_ref()?.properties.as_ref()?;
        for (key, value) in self.own_data_properties(function, p, false)? {
            if self.string_len(key) == Some(4) && self.string(key, 4).as_deref() == Some("name") {
                return self.string(value, NAME_MAX);
            }
        }
        None
    }

    /// `object`'s own data properties keyed by strings (only the
    /// enumerable ones with `enumerable_only`): (key, value), from a name
    /// dictionary or the map's descriptors (values in the object, its
    /// property array, or the descriptors). Doubles are left out.
    fn own_data_properties(
        &mut self,
        object: u64,
        p: &PropertyLayout,
        enumerable_only: bool,
    ) -> Option<Vec<(u64, u64)>> {
        let l = self.l();
        let map = self.field(object, l.map)?;
        let base = map.checked_sub(l.heap_tag)?;
        let bits = self.heap.i32(base.checked_add(p.map_bit_field3)?)? as u32;
        let properties = self.field(object, p.object_properties)?;
        let mut found = Vec::new();
        let is_string = |d: &mut Self, k: u64| d.type_of(k).is_some_and(|t| t < l.first_nonstring);
        let wanted = |details: i64| {
            details & p.kind_mask == 0
                && (!enumerable_only || (details >> p.attributes_shift) & p.dont_enum == 0)
        };
        if bits >> p.dictionary_shift & 1 == 1 {
            // A name dictionary: a hash table of (key, value, details).
            let len = self.smi_field(properties, l.array_length)?;
            let capacity = self.smi_field(properties, l.array_data + 16)?;
            let entries = p.dictionary_entries;
            let size = p.dictionary_entry_size;
            let (Ok(len), Ok(capacity)) = (u64::try_from(len), u64::try_from(capacity)) else {
                return None;
            };
            if capacity > MAX_PROPERTIES || entries + capacity * size > len {
                return None;
            }
            for i in 0..capacity {
                let at = |k: u64| l.array_data + 8 * (entries + i * size + k);
                let key = self.field(properties, at(0))?;
                if !is_string(self, key) {
                    continue;
                }
                let details = self.smi_field(properties, at(2))?;
                if wanted(details) {
                    found.push((key, self.field(properties, at(1))?));
                }
            }
            return Some(found);
        }
        let count = u64::from((bits & p.own_descriptors.0) >> p.own_descriptors.1);
        if count > MAX_PROPERTIES {
            return None;
        }
        let descriptors = self.field(map, p.map_descriptors)?;
        let size_words = u64::from(self.heap.u8(base.checked_add(p.map_size_words)?)?);
        let start_words = u64::from(self.heap.u8(base.checked_add(p.map_inobject_start)?)?);
        let inobject = size_words.saturating_sub(start_words);
        for i in 0..count {
            let at = |k: u64| p.descriptors_header + 8 * (i * p.descriptor_size + k);
            let details = self.smi_field(descriptors, at(p.descriptor_details))?;
            if !wanted(details) {
                continue;
            }
            let (mask, shift) = p.location;
            let held = if (details & mask) >> shift == p.location_descriptor {
                self.field(descriptors, at(p.descriptor_value))?
            } else {
                let (mask, shift) = p.representation;
                if (details & mask) >> shift == p.representation_double {
                    continue;
                }
                let (mask, shift) = p.index;
                let index = u64::try_from((details & mask) >> shift).ok()?;
                if index < inobject {
                    self.field(object, 8 * (start_words + index))?
                } else {
                    // The property array: map, length, then the values.
                    self.field(properties, 16 + 8 * (index - inobject))?
                }
            };
            let key = self.field(descriptors, at(0))?;
            if is_string(self, key) {
                found.push((key, held));
            }
        }
        Some(found)
    }

    /// The function name, inferred name and start position in a ScopeInfo.
    pub(super) fn scope_info(&mut self, scope: u64) -> Option<ScopeNames> {
        let s = self.l().scope;
        // Tagged slots after the map, by index.
        let at = |i: u64| 8 + 8 * i;
        let flags = if s.raw_flags {
            // A u32, then 4 bytes of padding.
            self.field(scope, at(0))? & 0xffff_ffff
        } else {
            self.smi_field(scope, at(0))? as u64
        };
        let count = u64::try_from(self.smi_field(scope, at(2))?).ok()?;
        if count > 1 << 20 {
            return None;
        }
        let mut names = ScopeNames::default();
        if flags & s.is_empty != 0 {
            return Some(names);
        }
        let scope_type = flags & s.scope_type_mask;
        let mut next = s.first_vars;
        if s.module_scope == Some(scope_type) {
            next += 1;
        }
        next += if count < s.max_inlined_locals {
            count
        } else {
            1
        };
        next += count;
        if flags & s.has_saved_class_variable != 0 {
            next += 1;
        }
        if (flags >> s.function_variable_shift) & 3 != 0 {
            // The name, or Smi 0 for none.
            let n = self.field(scope, at(next))?;
            names.name = self.string(n, NAME_MAX);
            next += 2;
        }
        if flags & s.has_inferred_function_name != 0 {
            let n = self.field(scope, at(next))?;
            names.inferred = self.string(n, NAME_MAX);
            next += 1;
        }
        let start_slot = if s.positions_in_header {
            Some(3)
        } else {
            s.positioned.contains(&scope_type).then_some(next)
        };
        if let Some(slot) = start_slot {
            names.start = self
                .smi_field(scope, at(slot))
                .and_then(|v| u32::try_from(v).ok());
        }
        Some(names)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ScopeNames {
    pub(super) name: Option<String>,
    pub(super) inferred: Option<String>,
    pub(super) start: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Image, SEQ_ONE_BYTE, TAG, test_v8};
    use super::*;

    /// What a ScopeInfo of `flags` (already a Smi or a raw u32, as the
    /// layout wants) and one context local, whose names are at `name_slot`
    /// and `name_slot` + 2 and its start at `start_slot`, gives when read
    /// with the ScopeInfo layout `first_vars` picks.
    fn names(first_vars: i64, flags: u64, name_slot: u64, start_slot: u64) -> Option<ScopeNames> {
        let base = 0x10_0000;
        let mut mem = Image::new(base, 0x1000);
        let seq = mem.map(base, SEQ_ONE_BYTE);
        let name = mem.seq_string(base + 0x100, seq, "area");
        let inferred = mem.seq_string(base + 0x180, seq, "Shape.area");
        let scope = base + 0x200;
        let slot = |i: u64| scope + 8 + 8 * i;
        mem.put_word(slot(0), flags);
        mem.put_word(slot(2), 1 << 32);
        mem.put_word(slot(name_slot), name);
        mem.put_word(slot(name_slot + 2), inferred);
        mem.put_word(slot(start_slot), 42 << 32);
        let v8 = test_v8(first_vars);
        Decoder::new(&v8, &mem).scope_info(scope + TAG)
    }

    /// A function scope with a function variable and an inferred name.
    const NAMED: u64 = 1 << 12 | 1 << 14;

    /// What [`names`] gives for this test's names.
    fn all() -> Option<ScopeNames> {
        Some(ScopeNames {
            name: Some("area".into()),
            inferred: Some("Shape.area".into()),
            start: Some(42),
        })
    }

    #[test]
    fn scope_info_names_of_v8_11_and_12() {
        // Function scope 2, flags a Smi; the names after the header (3),
        // the local's name and info; the start after the names.
        assert_eq!(names(3, (2 | NAMED) << 32, 5, 8), all());
        // The empty ScopeInfo has no names.
        assert_eq!(
            names(3, (2 | NAMED | 1 << 29) << 32, 5, 8),
            Some(ScopeNames::default())
        );
        // A block scope (6) has no start after its names.
        assert_eq!(
            names(3, (6 | NAMED) << 32, 5, 8).map(|n| n.start),
            Some(None)
        );
    }

    #[test]
    fn scope_info_names_of_v8_13_on() {
        // Function scope 4, flags a raw u32 (its padding not read); the
        // names after a header of 5, the start in the header's slot 3.
        let flags = 0xdead_0000_0000 | 4 | NAMED;
        assert_eq!(names(5, flags, 7, 3), all());
        // Read as V8 12's, the same bytes give no flags (not a Smi).
        assert_eq!(names(3, flags, 7, 3), None);
    }
}
