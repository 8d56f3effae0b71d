//! The heap layout of one V8 version: where the frame's slots, the
//! objects' fields and the instance types are, from the metadata
//! ([`Constants`]), and what the metadata does not say but the version
//! implies (a ScopeInfo's header and flags, V8 11.3's Code fields, the
//! tables' offsets). Chosen once for a node binary, so that the decoder
//! reads fields by name and never by version.

use std::ops::Range;

use super::constants::Constants;

/// The ScopeInfo layout of one V8 version: where its header's counts are
/// and bit positions in its flags word. After the header come, in order:
/// [module variable count], context local names (inline when fewer than
/// `max_inlined_locals`, else one hash table), context local infos, [saved
/// class variable info], [function variable name, slot], [inferred name],
/// [start, end position: before V8 12.9], then fields not read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ScopeLayout {
    /// The flags are a raw u32 (V8 12.9 on), not a Smi.
    pub(super) raw_flags: bool,
    /// Index of the first variable-length slot (after the map): V8's
    /// `scopeinfo_idx_first_vars`.
    pub(super) first_vars: u64,
    /// Start and end position are header slots 3 and 4 (V8 12.9 on), not
    /// after the names.
    pub(super) positions_in_header: bool,
    pub(super) scope_type_mask: u64,
    /// Scope types with position info after the names: eval, function,
    /// module, script.
    pub(super) positioned: &'static [u64],
    /// The module scope type, whose ScopeInfo counts its module variables
    /// before the local names (V8 12.9 on).
    pub(super) module_scope: Option<u64>,
    pub(super) has_saved_class_variable: u64,
    pub(super) function_variable_shift: u64,
    pub(super) has_inferred_function_name: u64,
    pub(super) is_empty: u64,
    pub(super) max_inlined_locals: u64,
}

/// V8 11.3 (node 20) and V8 12.4 (node 22): the same flag bits.
const SCOPE_V11_V12: ScopeLayout = ScopeLayout {
    raw_flags: false,
    first_vars: 3,
    positions_in_header: false,
    scope_type_mask: 0xf,
    // ScopeType: class 0, eval 1, function 2, module 3, script 4, catch 5,
    // block 6, with 7, shadow realm 8.
    positioned: &[1, 2, 3, 4],
    module_scope: None,
    has_saved_class_variable: 1 << 10,
    function_variable_shift: 12,
    has_inferred_function_name: 1 << 14,
    is_empty: 1 << 29,
    max_inlined_locals: 75,
};

/// V8 13.6 (node 24) to 14.6 (node 26): flags a u32 (and 4 bytes of
/// padding), positions in the header (`scopeinfo_idx_first_vars` 5), scope
/// types renumbered (script 0, REPL 1, class 2, eval 3, function 4, module
/// 5), the empty flag one bit lower.
const SCOPE_V13: ScopeLayout = ScopeLayout {
    raw_flags: true,
    first_vars: 5,
    positions_in_header: true,
    scope_type_mask: 0xf,
    positioned: &[],
    module_scope: Some(5),
    has_saved_class_variable: 1 << 10,
    function_variable_shift: 12,
    has_inferred_function_name: 1 << 14,
    is_empty: 1 << 28,
    max_inlined_locals: 75,
};

impl ScopeLayout {
    /// The layout the metadata's ScopeInfo indices imply.
    fn from(c: &Constants) -> Result<ScopeLayout, LayoutError> {
        let index = |name: &str| c.get(&format!("scopeinfo_idx_{name}"));
        match (
            index("nparams"),
            index("ncontextlocals"),
            index("first_vars"),
        ) {
            (Some(1), Some(2), Some(3)) => Ok(SCOPE_V11_V12),
            (Some(1), Some(2), Some(5)) => Ok(SCOPE_V13),
            (nparams, locals, first_vars) => Err(LayoutError::ScopeInfo {
                nparams,
                locals,
                first_vars,
            }),
        }
    }
}

/// Why V8's metadata gives no layout npstack knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A constant the layout needs is missing (named by its symbol).
    #[error("its V8 metadata lacks {0}")]
    Lacks(String),
    /// The ScopeInfo's header indices are not those of a version npstack
    /// knows.
    #[error(
        "ScopeInfo layout not recognised (scopeinfo_idx_nparams {}, ncontextlocals {}, \
         first_vars {})",
        shown(*.nparams),
        shown(*.locals),
        shown(*.first_vars)
    )]
    ScopeInfo {
        nparams: Option<i64>,
        locals: Option<i64>,
        first_vars: Option<i64>,
    },
}

/// A constant's value for a message, `missing` when there is none.
fn shown(v: Option<i64>) -> String {
    v.map_or_else(|| "missing".to_owned(), |v| v.to_string())
}

/// The metadata's constants, each one the layout cannot do without an
/// error naming its symbol.
struct Required<'c>(&'c Constants);

impl Required<'_> {
    fn lacks(what: String) -> LayoutError {
        LayoutError::Lacks(what)
    }

    /// `v8dbg_NAME`.
    fn value(&self, name: &str) -> Result<i64, LayoutError> {
        self.0
            .get(name)
            .ok_or_else(|| Self::lacks(format!("v8dbg_{name}")))
    }

    /// `v8dbg_class_CLASS__FIELD`: a field's offset.
    fn field(&self, class: &str, field: &str) -> Result<u64, LayoutError> {
        self.0
            .field(class, field)
            .ok_or_else(|| Self::lacks(format!("v8dbg_class_{class}__{field}")))
    }

    /// `v8dbg_type_CLASS`: an instance type.
    fn ty(&self, class: &str) -> Result<u16, LayoutError> {
        self.0
            .instance_type(class)
            .ok_or_else(|| Self::lacks(format!("v8dbg_type_{class}")))
    }

    /// `v8dbg_NAME`'s low 16 bits (a string tag or mask, an instance type).
    fn small(&self, name: &str) -> Result<u16, LayoutError> {
        u16::try_from(self.value(name)? & 0xffff).map_err(|_| Self::lacks(format!("v8dbg_{name}")))
    }
}

/// Where the metadata and the heap layout it implies are: every offset is
/// from the untagged object start.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) fp_function: i64,
    pub(super) fp_marker: i64,
    pub(super) fp_bytecode_array: i64,
    pub(super) fp_bytecode_offset: i64,
    pub(super) heap_tag: u64,
    pub(super) heap_tag_mask: u64,
    pub(super) map: u64,
    pub(super) instance_type: u64,
    pub(super) first_nonstring: u16,
    pub(super) js_function: Range<u16>,
    pub(super) sfi_type: u16,
    pub(super) scope_info_type: u16,
    pub(super) script_type: u16,
    /// A DebugInfo's type (V8 11 puts it where a function's Script was).
    pub(super) debug_info_type: Option<u16>,
    pub(super) bytecode_type: u16,
    /// ByteArray, and TrustedByteArray (V8 12 keeps position tables there).
    pub(super) byte_array_types: Vec<u16>,
    pub(super) fixed_array_type: u16,
    pub(super) uncompiled_types: Vec<u16>,
    pub(super) function_shared: u64,
    pub(super) sfi_name: u64,
    pub(super) sfi_script: u64,
    /// Where the function's data may be (see [`Layout::from`]).
    pub(super) sfi_function_data: Vec<u64>,
    pub(super) script_name: u64,
    pub(super) script_source: u64,
    pub(super) script_line_ends: Option<u64>,
    pub(super) strings: StringLayout,
    pub(super) array_length: u64,
    pub(super) array_data: u64,
    pub(super) bytecode_data: u64,
    pub(super) bytecode_positions: u64,
    pub(super) uncompiled_inferred_name: Option<u64>,
    pub(super) uncompiled_start: Option<u64>,
    pub(super) scope: ScopeLayout,
    /// For the receiver's type name (`Shape.area`): where a frame's
    /// receiver is, the JSProxy and JSGlobalProxy types (the first
    /// receiver types), the Map type and where a map keeps its
    /// constructor. `None` when the metadata lacks any of them.
    pub(super) receiver: Option<ReceiverLayout>,
    /// For compiled (baseline, maglev, optimized) frames: the function's
    /// Code object. `None` when the metadata lacks it.
    pub(super) code: Option<CodeLayout>,
    /// Each bytecode's size at the three operand scales (V8's
    /// `Bytecodes::kBytecodeSizes`), to step through a BytecodeArray.
    pub(super) bytecode_sizes: Option<Vec<u8>>,
}

/// Where a string's length and characters are, by its representation, and
/// how its instance type tells the representation and the encoding.
#[derive(Debug, Clone)]
pub(super) struct StringLayout {
    pub(super) length: u64,
    pub(super) seq_chars: u64,
    pub(super) cons_first: u64,
    pub(super) cons_second: u64,
    pub(super) sliced_parent: u64,
    pub(super) sliced_offset: u64,
    pub(super) thin_actual: u64,
    pub(super) external_resource: u64,
    pub(super) representation_mask: u16,
    pub(super) encoding_mask: u16,
    pub(super) one_byte_tag: u16,
    pub(super) seq_tag: u16,
    pub(super) cons_tag: u16,
    pub(super) external_tag: u16,
    pub(super) sliced_tag: u16,
    pub(super) thin_tag: u16,
}

impl StringLayout {
    fn from(m: &Required<'_>) -> Result<StringLayout, LayoutError> {
        Ok(StringLayout {
            length: m.field("String", "length")?,
            seq_chars: m.field("SeqOneByteString", "chars")?,
            cons_first: m.field("ConsString", "first")?,
            cons_second: m.field("ConsString", "second")?,
            sliced_parent: m.field("SlicedString", "parent")?,
            sliced_offset: m.field("SlicedString", "offset")?,
            thin_actual: m.field("ThinString", "actual")?,
            external_resource: m.field("ExternalString", "resource")?,
            representation_mask: m.small("StringRepresentationMask")?,
            encoding_mask: m.small("StringEncodingMask")?,
            one_byte_tag: m.small("OneByteStringTag")?,
            seq_tag: m.small("SeqStringTag")?,
            cons_tag: m.small("ConsStringTag")?,
            external_tag: m.small("ExternalStringTag")?,
            sliced_tag: m.small("SlicedStringTag")?,
            thin_tag: m.small("ThinStringTag")?,
        })
    }
}

/// Where a JSFunction keeps its Code, and a Code's fields: its instructions
/// (start, size), its kind (in its flags) and its table (source positions
/// for maglev and optimized code, bytecode offsets for baseline code).
#[derive(Debug, Clone)]
pub(super) struct CodeLayout {
    /// Where a JSFunction keeps its Code: gone in V8 13 (a dispatch
    /// handle there instead).
    pub(super) function_code: Option<u64>,
    /// A Code's instruction stream field and the InstructionStream type
    /// (V8 12 on): a pc's Code is found from the stream's header before
    /// its instructions (see [`super::decoder::Decoder::code_of_pc`]).
    pub(super) instruction_stream: Option<(u64, u16)>,
    pub(super) code_type: u16,
    pub(super) instruction_start: u64,
    pub(super) instruction_size: u64,
    pub(super) flags: u64,
    pub(super) kind_mask: u32,
    pub(super) table: u64,
    pub(super) baseline: u32,
    pub(super) maglev: u32,
    pub(super) turbofan: u32,
    /// The deoptimization data of maglev and optimized code, and where in
    /// it things are.
    pub(super) deopt_data: u64,
    pub(super) deopt: Option<DeoptIndices>,
}

/// Indices into the deoptimization data of maglev and optimized code.
#[derive(Debug, Clone, Copy)]
pub(super) struct DeoptIndices {
    /// The inlined functions' count.
    pub(super) count: u64,
    /// Their SharedFunctionInfos (a weak array).
    pub(super) literals: u64,
    /// The inlining positions.
    pub(super) positions: u64,
}

impl CodeLayout {
    /// V8 12 gives the Code's fields in its metadata (not the table's); V8
    /// 11 gives only the tables, and the rest is V8 11.3's layout (checked
    /// by the Code's type and by the pc falling in its instructions).
    fn from(c: &Constants) -> Option<CodeLayout> {
        let baseline = u32::try_from(c.get("CodeKindBaseline")?).ok()?;
        let v12 = c.field("Code", "instruction_start").is_some();
        let (function_code, instruction_start, instruction_size, flags, table, deopt_data) = if v12
        {
            (
                c.field("JSFunction", "code"),
                c.field("Code", "instruction_start")?,
                c.field("Code", "instruction_size")?,
                c.field("Code", "flags")?,
                16,
                8,
            )
        } else {
            (
                Some(48),
                40,
                56,
                48,
                c.field("Code", "source_position_table")?,
                c.field("Code", "deoptimization_data")?,
            )
        };
        let index = |n: &str| c.get(n).and_then(|v| u64::try_from(v).ok());
        let deopt = (|| {
            Some(DeoptIndices {
                count: index("DeoptimizationDataInlinedFunctionCountIndex")?,
                literals: index("DeoptimizationDataLiteralArrayIndex")?,
                positions: index("DeoptimizationDataInliningPositionsIndex")?,
            })
        })();
        let instruction_stream = c
            .field("Code", "instruction_stream")
            .zip(c.instance_type("InstructionStream"));
        if function_code.is_none() && instruction_stream.is_none() {
            return None;
        }
        Some(CodeLayout {
            function_code,
            instruction_stream,
            code_type: c.instance_type("Code")?,
            instruction_start,
            instruction_size,
            flags,
            kind_mask: u32::try_from(c.get("CodeKindFieldMask")?).ok()?,
            table,
            baseline,
            maglev: baseline + 1,
            turbofan: baseline + 2,
            deopt_data,
            deopt,
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct ReceiverLayout {
    pub(super) fp_receiver: i64,
    pub(super) proxy_type: u16,
    pub(super) global_proxy_type: u16,
    pub(super) map_type: u16,
    pub(super) map_constructor: u64,
    /// A receiver that is a function is named by its own name (V8 13 on:
    /// `Module._load`, where V8 12 says `Function._load`). The metadata
    /// tells V8 13 by its JSFunction having no `code` field.
    pub(super) functions_by_name: bool,
    /// To find the property holding a function (see
    /// [`super::decoder::Decoder::method_name`]). `None` when the metadata lacks any of it.
    pub(super) properties: Option<PropertyLayout>,
}

impl ReceiverLayout {
    fn from(c: &Constants) -> Option<ReceiverLayout> {
        Some(ReceiverLayout {
            fp_receiver: c.get("off_fp_args")?,
            proxy_type: c.instance_type("JSProxy")?,
            global_proxy_type: c.instance_type("JSGlobalProxy")?,
            map_type: c.instance_type("Map")?,
            map_constructor: c.field("Map", "constructor_or_back_pointer")?,
            functions_by_name: c.field("JSFunction", "code").is_none()
                && c.field("Code", "instruction_stream").is_some(),
            properties: PropertyLayout::from(c),
        })
    }
}

/// Where an object's named properties are: fast ones through its map's
/// descriptors (in the object or its property array), the others in a
/// name dictionary; and how a property's details read.
#[derive(Debug, Clone)]
pub(super) struct PropertyLayout {
    pub(super) map_prototype: u64,
    pub(super) map_bit_field3: u64,
    pub(super) own_descriptors: (u32, u32),
    pub(super) dictionary_shift: u32,
    pub(super) map_descriptors: u64,
    pub(super) map_size_words: u64,
    pub(super) map_inobject_start: u64,
    pub(super) object_properties: u64,
    pub(super) descriptors_header: u64,
    pub(super) descriptor_size: u64,
    pub(super) descriptor_details: u64,
    pub(super) descriptor_value: u64,
    pub(super) kind_mask: i64,
    pub(super) location: (i64, i64),
    pub(super) location_descriptor: i64,
    pub(super) dont_enum: i64,
    pub(super) attributes_shift: i64,
    pub(super) index: (i64, i64),
    pub(super) representation: (i64, i64),
    pub(super) representation_double: i64,
    pub(super) dictionary_entries: u64,
    pub(super) dictionary_entry_size: u64,
}

impl PropertyLayout {
    fn from(c: &Constants) -> Option<PropertyLayout> {
        let n = |name: &str| c.get(name);
        let u = |name: &str| c.get(name).and_then(|v| u64::try_from(v).ok());
        let u32_ = |name: &str| c.get(name).and_then(|v| u32::try_from(v).ok());
        Some(PropertyLayout {
            map_prototype: c.field("Map", "prototype")?,
            map_bit_field3: c.field("Map", "bit_field3")?,
            own_descriptors: (
                u32_("bit_field3_number_of_own_descriptors_mask")?,
                u32_("bit_field3_number_of_own_descriptors_shift")?,
            ),
            dictionary_shift: u32_("bit_field3_is_dictionary_map_shift")?,
            map_descriptors: c.field("Map", "instance_descriptors")?,
            map_size_words: c.field("Map", "instance_size_in_words")?,
            map_inobject_start: c.field(
                "Map",
                "inobject_properties_start_or_constructor_function_index",
            )?,
            object_properties: c.field("JSReceiver", "raw_properties_or_hash")?,
            descriptors_header: c.field("DescriptorArray", "header_size")?,
            descriptor_size: u("prop_desc_size")?,
            descriptor_details: u("prop_desc_details")?,
            descriptor_value: u("prop_desc_value")?,
            kind_mask: n("prop_kind_mask")?,
            location: (n("prop_location_mask")?, n("prop_location_shift")?),
            location_descriptor: n("prop_location_Descriptor")?,
            dont_enum: n("prop_attributes_DONT_ENUM")?,
            attributes_shift: n("prop_attributes_shift")?,
            index: (n("prop_index_mask")?, n("prop_index_shift")?),
            representation: (
                n("prop_representation_mask")?,
                n("prop_representation_shift")?,
            ),
            representation_double: n("prop_representation_double")?,
            dictionary_entries: u("namedictionary_prefix_start_index")?
                + u("namedictionaryshape_prefix_size")?,
            dictionary_entry_size: u("namedictionaryshape_entry_size")?,
        })
    }
}

impl Layout {
    pub(super) fn from(c: &Constants) -> Result<Layout, LayoutError> {
        let m = Required(c);
        // In the order the first one missing is reported.
        let js_function = js_function_types(&m)?;
        let bytecode_data = m.field("BytecodeArray", "data")?;
        let sfi_name = m.field("SharedFunctionInfo", "name_or_scope_info")?;
        let sfi_script = sfi_script(&m)?;
        Ok(Layout {
            fp_function: m.value("off_fp_function")?,
            fp_marker: m.value("off_fp_context_or_frame_type")?,
            fp_bytecode_array: m.value("off_fp_bytecode_array")?,
            fp_bytecode_offset: m.value("off_fp_bytecode_offset")?,
            heap_tag: m.value("HeapObjectTag")? as u64,
            heap_tag_mask: m.value("HeapObjectTagMask")? as u64,
            map: m.field("HeapObject", "map")?,
            instance_type: m.field("Map", "instance_type")?,
            first_nonstring: m.small("FirstNonstringType")?,
            js_function,
            sfi_type: m.ty("SharedFunctionInfo")?,
            scope_info_type: m.ty("ScopeInfo")?,
            script_type: m.ty("Script")?,
            debug_info_type: c.instance_type("DebugInfo"),
            bytecode_type: m.ty("BytecodeArray")?,
            byte_array_types: [m.ty("ByteArray")?]
                .into_iter()
                .chain(c.instance_type("TrustedByteArray"))
                .collect(),
            fixed_array_type: m.ty("FixedArray")?,
            uncompiled_types: uncompiled_types(c),
            function_shared: m.field("JSFunction", "shared")?,
            sfi_name,
            sfi_script,
            sfi_function_data: sfi_function_data(&m, sfi_name),
            script_name: m.field("Script", "name")?,
            script_source: m.field("Script", "source")?,
            script_line_ends: m.field("Script", "line_ends").ok(),
            strings: StringLayout::from(&m)?,
            array_length: m.field("FixedArrayBase", "length")?,
            array_data: m.field("FixedArray", "data")?,
            // The BytecodeArray's source position table: after map, length,
            // constant pool and handler table (V8 11), or after map, length
            // and wrapper (V8 12).
            bytecode_positions: if m.field("BytecodeArray", "wrapper").is_ok() {
                24
            } else {
                32
            },
            bytecode_data,
            uncompiled_inferred_name: m.field("UncompiledData", "inferred_name").ok(),
            uncompiled_start: m.field("UncompiledData", "start_position").ok(),
            scope: ScopeLayout::from(c)?,
            receiver: ReceiverLayout::from(c),
            code: CodeLayout::from(c),
            bytecode_sizes: None,
        })
    }
}

/// The JSFunction instance types. V8 12 gives their range; V8 11 only the
/// first, the plain one, with the class-constructor kinds after it.
fn js_function_types(m: &Required<'_>) -> Result<Range<u16>, LayoutError> {
    let js_function = m.ty("JSFunction")?;
    let bound = |name: &str| m.0.get(name).and_then(|v| u16::try_from(v).ok());
    let first = bound("FirstJSFunctionType").unwrap_or(js_function);
    let last = bound("LastJSFunctionType").unwrap_or(js_function.saturating_add(16));
    Ok(first..last.saturating_add(1))
}

/// The UncompiledData types (with and without preparse data, job...).
fn uncompiled_types(c: &Constants) -> Vec<u16> {
    c.0.iter()
        .filter(|(k, _)| k.starts_with("type_UncompiledData"))
        .filter_map(|(_, &v)| u16::try_from(v).ok())
        .collect()
}

/// Where a SharedFunctionInfo keeps its Script (or DebugInfo), by the
/// name the field has in each version.
fn sfi_script(m: &Required<'_>) -> Result<u64, LayoutError> {
    m.field("SharedFunctionInfo", "script_or_debug_info")
        .or_else(|_| m.field("SharedFunctionInfo", "script"))
        .or_else(|_| m.field("SharedFunctionInfo", "raw_script"))
}

/// Where a SharedFunctionInfo's function data may be (UncompiledData until
/// it is compiled, then its BytecodeArray or baseline Code): named in V8
/// 11's metadata; since, the field before the name (V8 12), or the one
/// before that (V8 13 keeps trusted data first, then untrusted). Each
/// candidate is taken only where its object has the type looked for.
fn sfi_function_data(m: &Required<'_>, sfi_name: u64) -> Vec<u64> {
    match m.field("SharedFunctionInfo", "function_data") {
        Ok(off) => vec![off],
        Err(_) => [8, 16]
            .into_iter()
            .filter_map(|back| sfi_name.checked_sub(back).filter(|&o| o >= 8))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constants with the ScopeInfo indices given.
    fn scope_indices(nparams: i64, locals: i64, first_vars: Option<i64>) -> Constants {
        let mut c = Constants::default();
        c.0.insert("scopeinfo_idx_nparams".into(), nparams);
        c.0.insert("scopeinfo_idx_ncontextlocals".into(), locals);
        if let Some(f) = first_vars {
            c.0.insert("scopeinfo_idx_first_vars".into(), f);
        }
        c
    }

    #[test]
    fn scope_layout_chosen_by_first_vars() {
        assert_eq!(
            ScopeLayout::from(&scope_indices(1, 2, Some(3))),
            Ok(SCOPE_V11_V12)
        );
        assert_eq!(
            ScopeLayout::from(&scope_indices(1, 2, Some(5))),
            Ok(SCOPE_V13)
        );
        // Another layout is said with the values that tell it.
        assert_eq!(
            ScopeLayout::from(&scope_indices(1, 2, Some(6)))
                .unwrap_err()
                .to_string(),
            "ScopeInfo layout not recognised (scopeinfo_idx_nparams 1, \
             ncontextlocals 2, first_vars 6)"
        );
        let err = ScopeLayout::from(&scope_indices(1, 3, None))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("ncontextlocals 3, first_vars missing)"),
            "{err}"
        );
    }

    #[test]
    fn a_layout_without_metadata_says_what_it_lacks() {
        let err = Layout::from(&Constants::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "its V8 metadata lacks v8dbg_type_JSFunction"
        );
    }
}
