//! JavaScript frames named from the V8 heap itself, with no help from the
//! target (no perf map, no flags).
//!
//! node exports V8's postmortem metadata: `v8dbg_*` symbols whose values
//! are the frame layout, the object field offsets and the instance types
//! of its V8 version. [`V8::from_image`] reads them from the node binary on
//! disk (found by [`super::modules::Modules::v8`]). A [`Decoder`] then reads
//! a stopped thread's V8 frames: V8's own frames by the type marker they
//! hold; a JavaScript frame by the JSFunction in its fixed slot, its
//! SharedFunctionInfo, the function's name (a String, or inside a
//! ScopeInfo; else the property holding it), the receiver's type, the
//! Script's name, and the position being executed: from the bytecode offset
//! an interpreted frame saves, from the pc through a baseline Code's
//! bytecode offset table, or from an optimized Code's source positions
//! (with the functions inlined there); else where the function starts. On a
//! live process this runs while the thread is stopped: the garbage
//! collector moves objects once the thread runs again.
//!
//! Every read is checked: instance types, string lengths, bounded string
//! nesting, bounded table sizes, names without control characters. What
//! does not check out gives `<unknown JS frame>`, never a guess.
//!
//! Decoded versions: node 20 (V8 11.3) and node 22 (V8 12.4). What the
//! metadata does not give is these versions' layout: the ScopeInfo
//! ([`SCOPE_V11_V12`]), and the Code fields of V8 11.3 and the Code
//! tables' offsets of V8 12.4 ([`CodeLayout`]); each is checked by the
//! object's type and, for a Code, by the pc falling in its instructions.

use std::collections::HashMap;
use std::ops::Range;

use super::nodejs::JsName;
use crate::elf::{Symbol, bytes_at_vaddr, hashed_symbol_in, runs, section_in, symbols_with_prefix};
use crate::target::Memory;

/// The constants this module reads, by name without `v8dbg_`. Field
/// offsets are matched by prefix (`class_JSFunction__shared__`): the type
/// suffix changed between V8 versions (`Object`, `Tagged_Object_`).
#[derive(Debug, Clone, Default)]
struct Constants(HashMap<String, i64>);

impl Constants {
    fn from_symbols(symbols: &[Symbol], read: impl Fn(&Symbol) -> Option<Vec<u8>>) -> Constants {
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

    fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    /// The one value of the constants named `prefix...` (none when they
    /// disagree).
    fn unique(&self, prefix: &str) -> Option<i64> {
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
    fn field(&self, class: &str, field: &str) -> Option<u64> {
        u64::try_from(self.unique(&format!("class_{class}__{field}__"))?).ok()
    }

    /// An instance type: `type_CLASS__TYPE_NAME`, by class, whatever the
    /// type's name (`STRING_TYPE` became `SEQ_TWO_BYTE_STRING_TYPE`). A
    /// class with several types (cons strings, one- and two-byte) has none
    /// here.
    fn instance_type(&self, class: &str) -> Option<u16> {
        u16::try_from(self.unique(&format!("type_{class}__"))?).ok()
    }

    /// Frame type numbers and their labels (`EntryFrame` → `entry frame`).
    fn frame_types(&self) -> HashMap<i64, String> {
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

/// The ScopeInfo layout of one V8 version: where its header's counts are
/// and bit positions in its flags word. After the header come, in order:
/// [module variable count], context local names (inline when fewer than
/// `max_inlined_locals`, else one hash table), context local infos, [saved
/// class variable info], [function variable name, slot], [inferred name],
/// [start, end position: before V8 12.9], then fields not read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScopeLayout {
    /// The flags are a raw u32 (V8 12.9 on), not a Smi.
    raw_flags: bool,
    /// Index of the first variable-length slot (after the map): V8's
    /// `scopeinfo_idx_first_vars`.
    first_vars: u64,
    /// Start and end position are header slots 3 and 4 (V8 12.9 on), not
    /// after the names.
    positions_in_header: bool,
    scope_type_mask: u64,
    /// Scope types with position info after the names: eval, function,
    /// module, script.
    positioned: &'static [u64],
    /// The module scope type, whose ScopeInfo counts its module variables
    /// before the local names (V8 12.9 on).
    module_scope: Option<u64>,
    has_saved_class_variable: u64,
    function_variable_shift: u64,
    has_inferred_function_name: u64,
    is_empty: u64,
    max_inlined_locals: u64,
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
    fn from(c: &Constants) -> Result<ScopeLayout, String> {
        let index = |name: &str| c.get(&format!("scopeinfo_idx_{name}"));
        match (
            index("nparams"),
            index("ncontextlocals"),
            index("first_vars"),
        ) {
            (Some(1), Some(2), Some(3)) => Ok(SCOPE_V11_V12),
            (Some(1), Some(2), Some(5)) => Ok(SCOPE_V13),
            (p, l, f) => Err(format!(
                "ScopeInfo layout not recognised (scopeinfo_idx_nparams {}, \
                 ncontextlocals {}, first_vars {})",
                shown(p),
                shown(l),
                shown(f)
            )),
        }
    }
}

/// A constant's value for a message, `missing` when there is none.
fn shown(v: Option<i64>) -> String {
    v.map_or_else(|| "missing".to_owned(), |v| v.to_string())
}

/// Where the metadata and the heap layout it implies are: every offset is
/// from the untagged object start.
#[derive(Debug, Clone)]
struct Layout {
    fp_function: i64,
    fp_marker: i64,
    fp_bytecode_array: i64,
    fp_bytecode_offset: i64,
    heap_tag: u64,
    heap_tag_mask: u64,
    map: u64,
    instance_type: u64,
    first_nonstring: u16,
    js_function: Range<u16>,
    sfi_type: u16,
    scope_info_type: u16,
    script_type: u16,
    bytecode_type: u16,
    /// ByteArray, and TrustedByteArray (V8 12 keeps position tables there).
    byte_array_types: Vec<u16>,
    fixed_array_type: u16,
    uncompiled_types: Vec<u16>,
    function_shared: u64,
    sfi_name: u64,
    sfi_script: u64,
    /// Where the function's data may be (see [`Layout::from`]).
    sfi_function_data: Vec<u64>,
    script_name: u64,
    script_source: u64,
    script_line_ends: Option<u64>,
    string_length: u64,
    seq_chars: u64,
    cons_first: u64,
    cons_second: u64,
    sliced_parent: u64,
    sliced_offset: u64,
    thin_actual: u64,
    external_resource: u64,
    representation_mask: u16,
    encoding_mask: u16,
    one_byte_tag: u16,
    seq_tag: u16,
    cons_tag: u16,
    external_tag: u16,
    sliced_tag: u16,
    thin_tag: u16,
    array_length: u64,
    array_data: u64,
    bytecode_data: u64,
    bytecode_positions: u64,
    uncompiled_inferred_name: Option<u64>,
    uncompiled_start: Option<u64>,
    scope: ScopeLayout,
    /// For the receiver's type name (`Shape.area`): where a frame's
    /// receiver is, the JSProxy and JSGlobalProxy types (the first
    /// receiver types), the Map type and where a map keeps its
    /// constructor. `None` when the metadata lacks any of them.
    receiver: Option<ReceiverLayout>,
    /// For compiled (baseline, maglev, optimized) frames: the function's
    /// Code object. `None` when the metadata lacks it.
    code: Option<CodeLayout>,
    /// Each bytecode's size at the three operand scales (V8's
    /// `Bytecodes::kBytecodeSizes`), to step through a BytecodeArray.
    bytecode_sizes: Option<Vec<u8>>,
}

/// Where a JSFunction keeps its Code, and a Code's fields: its instructions
/// (start, size), its kind (in its flags) and its table (source positions
/// for maglev and optimized code, bytecode offsets for baseline code).
#[derive(Debug, Clone)]
struct CodeLayout {
    /// Where a JSFunction keeps its Code: gone in V8 13 (a dispatch
    /// handle there instead).
    function_code: Option<u64>,
    /// A Code's instruction stream field and the InstructionStream type
    /// (V8 12 on): a pc's Code is found from the stream's header before
    /// its instructions (see [`Decoder::code_of_pc`]).
    instruction_stream: Option<(u64, u16)>,
    code_type: u16,
    instruction_start: u64,
    instruction_size: u64,
    flags: u64,
    kind_mask: u32,
    table: u64,
    baseline: u32,
    maglev: u32,
    turbofan: u32,
    /// The deoptimization data of maglev and optimized code, and in it the
    /// indices of the inlined functions' count, their SharedFunctionInfos
    /// (a weak array) and the inlining positions.
    deopt_data: u64,
    deopt: Option<(u64, u64, u64)>,
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
            Some((
                index("DeoptimizationDataInlinedFunctionCountIndex")?,
                index("DeoptimizationDataLiteralArrayIndex")?,
                index("DeoptimizationDataInliningPositionsIndex")?,
            ))
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
struct ReceiverLayout {
    fp_receiver: i64,
    proxy_type: u16,
    global_proxy_type: u16,
    map_type: u16,
    map_constructor: u64,
    /// To find the property holding a function (see
    /// [`Decoder::method_name`]). `None` when the metadata lacks any of it.
    properties: Option<PropertyLayout>,
}

/// Where an object's named properties are: fast ones through its map's
/// descriptors (in the object or its property array), the others in a
/// name dictionary; and how a property's details read.
#[derive(Debug, Clone)]
struct PropertyLayout {
    map_prototype: u64,
    map_bit_field3: u64,
    own_descriptors: (u32, u32),
    dictionary_shift: u32,
    map_descriptors: u64,
    map_size_words: u64,
    map_inobject_start: u64,
    object_properties: u64,
    descriptors_header: u64,
    descriptor_size: u64,
    descriptor_details: u64,
    descriptor_value: u64,
    kind_mask: i64,
    location: (i64, i64),
    location_descriptor: i64,
    dont_enum: i64,
    attributes_shift: i64,
    index: (i64, i64),
    representation: (i64, i64),
    representation_double: i64,
    dictionary_entries: u64,
    dictionary_entry_size: u64,
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
    fn from(c: &Constants) -> Result<Layout, String> {
        let lacks = |what: String| format!("its V8 metadata lacks {what}");
        let need = |name: &str| c.get(name).ok_or_else(|| lacks(format!("v8dbg_{name}")));
        let field = |class: &str, f: &str| {
            c.field(class, f)
                .ok_or_else(|| lacks(format!("v8dbg_class_{class}__{f}")))
        };
        let ty = |class: &str| {
            c.instance_type(class)
                .ok_or_else(|| lacks(format!("v8dbg_type_{class}")))
        };
        let small = |name: &str| -> Result<u16, String> {
            u16::try_from(need(name)? & 0xffff).map_err(|_| lacks(format!("v8dbg_{name}")))
        };
        let js_function = ty("JSFunction")?;
        // V8 12 gives the range of function types; V8 11 only the first,
        // the plain one, with the class-constructor kinds after it.
        let first = c
            .get("FirstJSFunctionType")
            .and_then(|v| u16::try_from(v).ok())
            .unwrap_or(js_function);
        let last = c
            .get("LastJSFunctionType")
            .and_then(|v| u16::try_from(v).ok())
            .unwrap_or(js_function.saturating_add(16));
        let bytecode_data = field("BytecodeArray", "data")?;
        let uncompiled_types =
            c.0.iter()
                .filter(|(k, _)| k.starts_with("type_UncompiledData"))
                .filter_map(|(_, &v)| u16::try_from(v).ok())
                .collect();
        let sfi_name = field("SharedFunctionInfo", "name_or_scope_info")?;
        // The function's data (UncompiledData until it is compiled): named
        // in V8 11's metadata; since, the untagged field before the name
        // (V8 12), or the one before that (V8 13 keeps trusted data first,
        // then untrusted): each candidate is taken only where its object
        // has an UncompiledData type.
        let sfi_function_data = match field("SharedFunctionInfo", "function_data") {
            Ok(off) => vec![off],
            Err(_) => [8, 16]
                .into_iter()
                .filter_map(|back| sfi_name.checked_sub(back).filter(|&o| o >= 8))
                .collect(),
        };
        let sfi_script = field("SharedFunctionInfo", "script_or_debug_info")
            .or_else(|_| field("SharedFunctionInfo", "script"))
            .or_else(|_| field("SharedFunctionInfo", "raw_script"))?;
        Ok(Layout {
            fp_function: need("off_fp_function")?,
            fp_marker: need("off_fp_context_or_frame_type")?,
            fp_bytecode_array: need("off_fp_bytecode_array")?,
            fp_bytecode_offset: need("off_fp_bytecode_offset")?,
            heap_tag: need("HeapObjectTag")? as u64,
            heap_tag_mask: need("HeapObjectTagMask")? as u64,
            map: field("HeapObject", "map")?,
            instance_type: field("Map", "instance_type")?,
            first_nonstring: small("FirstNonstringType")?,
            js_function: first..last.saturating_add(1),
            sfi_type: ty("SharedFunctionInfo")?,
            scope_info_type: ty("ScopeInfo")?,
            script_type: ty("Script")?,
            bytecode_type: ty("BytecodeArray")?,
            byte_array_types: [ty("ByteArray")?]
                .into_iter()
                .chain(c.instance_type("TrustedByteArray"))
                .collect(),
            fixed_array_type: ty("FixedArray")?,
            uncompiled_types,
            function_shared: field("JSFunction", "shared")?,
            sfi_name,
            sfi_script,
            sfi_function_data,
            script_name: field("Script", "name")?,
            script_source: field("Script", "source")?,
            script_line_ends: field("Script", "line_ends").ok(),
            string_length: field("String", "length")?,
            seq_chars: field("SeqOneByteString", "chars")?,
            cons_first: field("ConsString", "first")?,
            cons_second: field("ConsString", "second")?,
            sliced_parent: field("SlicedString", "parent")?,
            sliced_offset: field("SlicedString", "offset")?,
            thin_actual: field("ThinString", "actual")?,
            external_resource: field("ExternalString", "resource")?,
            representation_mask: small("StringRepresentationMask")?,
            encoding_mask: small("StringEncodingMask")?,
            one_byte_tag: small("OneByteStringTag")?,
            seq_tag: small("SeqStringTag")?,
            cons_tag: small("ConsStringTag")?,
            external_tag: small("ExternalStringTag")?,
            sliced_tag: small("SlicedStringTag")?,
            thin_tag: small("ThinStringTag")?,
            array_length: field("FixedArrayBase", "length")?,
            array_data: field("FixedArray", "data")?,
            // The BytecodeArray's source position table: after map, length,
            // constant pool and handler table (V8 11), or after map, length
            // and wrapper (V8 12).
            bytecode_positions: if field("BytecodeArray", "wrapper").is_ok() {
                24
            } else {
                32
            },
            bytecode_data,
            uncompiled_inferred_name: field("UncompiledData", "inferred_name").ok(),
            uncompiled_start: field("UncompiledData", "start_position").ok(),
            scope: ScopeLayout::from(c)?,
            receiver: (|| {
                Some(ReceiverLayout {
                    fp_receiver: c.get("off_fp_args")?,
                    proxy_type: c.instance_type("JSProxy")?,
                    global_proxy_type: c.instance_type("JSGlobalProxy")?,
                    map_type: c.instance_type("Map")?,
                    map_constructor: c.field("Map", "constructor_or_back_pointer")?,
                    properties: PropertyLayout::from(c),
                })
            })(),
            code: CodeLayout::from(c),
            bytecode_sizes: None,
        })
    }
}

/// What V8 knows about a node binary: its layout, the frame types, and
/// where its embedded builtins are (the interpreter's frames run there).
#[derive(Debug, Clone)]
pub struct V8 {
    layout: Layout,
    frame_types: HashMap<i64, String>,
    /// The embedded builtins in the binary's text, at run time. (node 22
    /// also runs them from a second mapping of that text: see
    /// [`super::modules::Modules::alias_shift`].)
    builtins: Option<Range<u64>>,
}

const BLOB_CODE: &str = "v8_Default_embedded_blob_code_";
const BLOB_CODE_SIZE: &str = "v8_Default_embedded_blob_code_size_";
const BYTECODE_SIZES: &str = "_ZN2v88internal11interpreter9Bytecodes14kBytecodeSizesE";
/// `v8::internal::Version::`, before `6major_E` and the like.
const VERSION: &str = "_ZN2v88internal7Version";

/// Symbols searched for in the node binary: the metadata, and where the
/// embedded builtins are. (The bytecode sizes are looked up by name.)
pub const SYMBOL_PREFIXES: &[&[u8]] = &[b"v8dbg_", BLOB_CODE.as_bytes()];

impl V8 {
    /// The V8 of an image whose symbols (from [`SYMBOL_PREFIXES`]) are
    /// `symbols`, loaded at `bias`; `read` gives a symbol's bytes from the
    /// file. `Err` says what is missing.
    pub fn from_symbols(
        symbols: &[Symbol],
        bias: u64,
        read: impl Fn(u64, u64) -> Option<Vec<u8>>,
    ) -> Result<V8, String> {
        let constants = Constants::from_symbols(symbols, |s| read(s.value, s.size));
        if constants.0.is_empty() {
            return Err("it has no V8 postmortem metadata (v8dbg_* symbols)".into());
        }
        let mut layout = Layout::from(&constants)?;
        let by_name = |n: &str| symbols.iter().find(|s| s.name == n);
        layout.bytecode_sizes = by_name(BYTECODE_SIZES)
            .filter(|s| s.size % 3 == 0 && s.size <= 3 * 256)
            .and_then(|s| read(s.value, s.size));
        let builtins = by_name(BLOB_CODE).and_then(|start| {
            let size = by_name(BLOB_CODE_SIZE)?;
            let bytes = read(size.value, 4)?;
            let len = u32::from_le_bytes(bytes[..4].try_into().ok()?);
            let begin = start.value.wrapping_add(bias);
            Some(begin..begin.saturating_add(u64::from(len)))
        });
        Ok(V8 {
            frame_types: constants.frame_types(),
            layout,
            builtins,
        })
    }

    /// The V8 of an ELF image at offset 0 of `data`.
    pub fn from_image<'a, R: object::ReadRef<'a>>(data: R, bias: u64) -> Result<V8, String> {
        use object::elf::{STT_NOTYPE, STT_OBJECT};
        // The metadata: exported data objects (in .dynsym, and again in
        // .symtab: read once), 4-byte ints in node 20 and 22, else of 1 to
        // 8 bytes. The builtins' bounds: two local labels of .symtab.
        let search = |sizes: &[u64]| {
            symbols_with_prefix(data, SYMBOL_PREFIXES, |s| match s.kind {
                STT_OBJECT => sizes.contains(&s.size) && s.dynamic,
                STT_NOTYPE => s.local && !s.dynamic && s.size == 0,
                _ => false,
            })
        };
        let mut symbols = search(&[4]);
        if !symbols.iter().any(|s| s.name.starts_with("v8dbg_")) {
            symbols = search(&[1, 2, 4, 8]);
        }
        // The bytecode sizes: exported to node 22; since node 24 in
        // `.symtab` only, among the few data objects of their size.
        match hashed_symbol_in(data, BYTECODE_SIZES).flatten() {
            Some(s) => symbols.push(s),
            None => symbols.extend(symbols_with_prefix(
                data,
                &[BYTECODE_SIZES.as_bytes()],
                |s| {
                    s.kind == STT_OBJECT
                        && !s.dynamic
                        && s.size % 3 == 0
                        && (3 * 128..=3 * 256).contains(&s.size)
                },
            )),
        }
        // The constants lie together in .data: read them in runs, not one
        // read each.
        let mut spans: Vec<(u64, u64)> = symbols.iter().map(|s| (s.value, s.size.max(4))).collect();
        spans.sort_unstable();
        let runs: Vec<(u64, Vec<u8>)> = runs(&spans)
            .into_iter()
            .filter_map(|(_, start, end)| Some((start, bytes_at_vaddr(data, start, end - start)?)))
            .collect();
        V8::from_symbols(&symbols, bias, |vaddr, len| {
            let (start, bytes) = runs
                .iter()
                .find(|(s, b)| *s <= vaddr && vaddr - s < b.len() as u64)?;
            let at = usize::try_from(vaddr - start).ok()?;
            bytes
                .get(at..at.checked_add(usize::try_from(len).ok()?)?)
                .map(<[u8]>::to_vec)
        })
    }

    /// Which node and V8 an image holds, for messages: `node 24.22.3 (V8
    /// 13.6.233.17)`. node's version is where its release URL names it in
    /// `.rodata`, V8's in `v8::internal::Version`'s four ints (in
    /// `.symtab`). Read only when a message needs it.
    pub fn versions_in<'a, R: object::ReadRef<'a>>(data: R) -> String {
        use object::elf::STT_OBJECT;
        const RELEASE: &[u8] = b"/download/release/v";
        let node = section_in(data, b".rodata").and_then(|(_, text)| {
            let at = memchr::memmem::find(text, RELEASE)? + RELEASE.len();
            let rest = text.get(at..at + 32)?;
            let end = rest.iter().position(|&b| b == b'/')?;
            std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
        });
        let parts: Vec<Symbol> = symbols_with_prefix(data, &[VERSION.as_bytes()], |s| {
            s.kind == STT_OBJECT && s.size == 4
        });
        let part = |name: &str| {
            let s = parts
                .iter()
                .find(|s| s.name == format!("{VERSION}{name}"))?;
            let b = bytes_at_vaddr(data, s.value, 4)?;
            Some(i32::from_le_bytes(b[..4].try_into().ok()?))
        };
        let v8 = (|| {
            Some(format!(
                "{}.{}.{}.{}",
                part("6major_E")?,
                part("6minor_E")?,
                part("6build_E")?,
                part("6patch_E")?
            ))
        })();
        format!(
            "node {} (V8 {})",
            node.as_deref().unwrap_or("of unknown version"),
            v8.as_deref().unwrap_or("unknown")
        )
    }

    /// Whether `pc` is in V8's embedded builtins.
    pub fn in_builtins(&self, pc: u64) -> bool {
        self.builtins.as_ref().is_some_and(|r| r.contains(&pc))
    }

    /// Whether the embedded builtins were found (without them interpreted
    /// frames cannot be told from native ones).
    pub fn knows_builtins(&self) -> bool {
        self.builtins.is_some()
    }
}

/// What a V8 frame is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsFrame {
    /// A JavaScript function.
    Function(JsName),
    /// A frame of V8 itself, by its type (`entry frame`, `exit frame`).
    Internal(String),
    /// A frame in JIT code or the interpreter that did not decode.
    Unknown,
}

/// Where a frame's code is, as far as V8 goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// In V8's embedded builtins (the interpreter, stubs).
    Builtin,
    /// In code V8 compiled at run time (no module maps it).
    Jit,
}

/// Most bytes read from the heap for one thread's frames: a bound on the
/// stall of a live thread whatever its heap holds.
const READ_BUDGET: usize = 64 << 20;
/// Longest function or script name kept, in UTF-16 units.
const NAME_MAX: usize = 4096;
/// Most prototypes searched, and properties read on one object, when
/// looking for the property that holds a function.
const MAX_PROTOTYPES: usize = 16;
const MAX_PROPERTIES: u64 = 4096;
/// Deepest cons-string nesting followed.
const CONS_DEPTH: usize = 32;
/// Largest source prefix read to count lines, in UTF-16 units.
const SOURCE_MAX: usize = 64 << 20;
/// Most entries of a line-ends array or position table read.
const TABLE_MAX: usize = 16 << 20;
const PAGE: u64 = 4096;
/// Compiled code's instructions start 64-byte aligned, 32 bytes after
/// the start of their InstructionStream.
const CODE_ALIGNMENT: u64 = 64;
const ISTREAM_HEADER: u64 = 32;
/// Farthest searched back from a pc for its code's start: 1 MiB.
const MAX_CODE_STEPS: usize = 1 << 14;

/// Reads of the heap for one stopped thread, a page at a time, each page
/// read once. Nothing is kept after the thread runs again.
struct Heap<'a> {
    mem: &'a dyn Memory,
    pages: HashMap<u64, Option<Box<[u8]>>>,
    budget: usize,
}

impl<'a> Heap<'a> {
    fn new(mem: &'a dyn Memory) -> Heap<'a> {
        Heap {
            mem,
            pages: HashMap::new(),
            budget: READ_BUDGET,
        }
    }

    fn page(&mut self, base: u64) -> Option<&[u8]> {
        if !self.pages.contains_key(&base) {
            let mut buf = vec![0u8; PAGE as usize];
            let got = if self.budget >= buf.len() {
                self.budget -= buf.len();
                match self.mem.read_memory(base, &mut buf) {
                    Ok(n) if n == buf.len() => Some(buf.into_boxed_slice()),
                    _ => None,
                }
            } else {
                None
            };
            self.pages.insert(base, got);
        }
        self.pages.get(&base)?.as_deref()
    }

    /// Exactly `buf.len()` bytes at `addr`, or `None`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Option<()> {
        if buf.len() as u64 > 4 * PAGE {
            // Large reads (source text) go straight to the target.
            self.budget = self.budget.checked_sub(buf.len())?;
            let n = self.mem.read_memory(addr, buf).ok()?;
            return (n == buf.len()).then_some(());
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.checked_add(done as u64)?;
            let base = at & !(PAGE - 1);
            let off = (at - base) as usize;
            let page = self.page(base)?;
            let n = (page.len() - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Some(())
    }

    /// `N` bytes at `addr`, for the little-endian integers below.
    fn array<const N: usize>(&mut self, addr: u64) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        self.read(addr, &mut b)?;
        Some(b)
    }

    fn word(&mut self, addr: u64) -> Option<u64> {
        self.array(addr).map(u64::from_le_bytes)
    }

    fn u8(&mut self, addr: u64) -> Option<u8> {
        self.array(addr).map(u8::from_le_bytes)
    }

    fn u16(&mut self, addr: u64) -> Option<u16> {
        self.array(addr).map(u16::from_le_bytes)
    }

    fn i32(&mut self, addr: u64) -> Option<i32> {
        self.array(addr).map(i32::from_le_bytes)
    }
}

/// A Script's name and, once needed, where its lines end.
#[derive(Debug, Clone, Default)]
struct ScriptInfo {
    name: Option<String>,
    /// Position of each line's end (its newline), ascending, and the
    /// position up to which they are known (newlines counted in part of
    /// the source; `u32::MAX` for V8's own table).
    line_ends: Option<(Vec<u32>, u32)>,
}

/// What a SharedFunctionInfo gives: the function's own name and the name
/// V8 inferred for an anonymous function from where it was assigned
/// (`None` when empty), the script and where the function starts.
#[derive(Debug, Clone)]
struct FunctionInfo {
    name: Option<String>,
    inferred: Option<String>,
    script: Option<u64>,
    start: Option<u32>,
}

/// A function's compiled code that a pc is in.
#[derive(Debug, Clone, Copy)]
struct CodeAt {
    code: u64,
    start: u64,
    tier: &'static str,
    /// Its source position table (maglev, optimized) or bytecode offset
    /// table (baseline).
    table: u64,
}

/// The stack slots a JavaScript function's frame is decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FrameSlots {
    kind: CodeKind,
    /// The frame's pc, and whether it is the exact instruction (else a
    /// return address).
    pc: u64,
    exact: bool,
    function: u64,
    receiver: Option<u64>,
    bytecode: Option<u64>,
    offset: Option<u64>,
}

/// Decodes the JavaScript frames of one stopped thread.
pub(crate) struct Decoder<'v, 'a> {
    v8: &'v V8,
    heap: Heap<'a>,
    frames: HashMap<FrameSlots, Option<JsName>>,
    functions: HashMap<u64, Option<FunctionInfo>>,
    scripts: HashMap<u64, ScriptInfo>,
    positions: HashMap<(u64, u64), Option<u32>>,
    /// Compiled code found from pcs: (start, end, Code).
    codes: Vec<(u64, u64, u64)>,
    /// The InstructionStream map, once seen.
    stream_map: Option<u64>,
    /// How this V8's position tables are written, bytecode arrays' and
    /// Codes', once a table of the kind shows it.
    coding: [Option<DeltaCoding>; 2],
    /// The first step that failed for a JavaScript frame left unnamed.
    failed: Option<&'static str>,
}

impl<'v, 'a> Decoder<'v, 'a> {
    pub fn new(v8: &'v V8, mem: &'a dyn Memory) -> Decoder<'v, 'a> {
        Decoder {
            v8,
            heap: Heap::new(mem),
            frames: HashMap::new(),
            functions: HashMap::new(),
            scripts: HashMap::new(),
            positions: HashMap::new(),
            codes: Vec::new(),
            stream_map: None,
            coding: [None; 2],
            failed: None,
        }
    }

    fn l(&self) -> &'v Layout {
        &self.v8.layout
    }

    /// Whether a tagged word points at a heap object.
    fn is_heap(&self, tagged: u64) -> bool {
        tagged & self.l().heap_tag_mask == self.l().heap_tag && tagged > 4096
    }

    /// A tagged field of the object `obj` (tagged) at `offset`.
    fn field(&mut self, obj: u64, offset: u64) -> Option<u64> {
        let at = obj.checked_sub(self.l().heap_tag)?.checked_add(offset)?;
        self.heap.word(at)
    }

    /// The instance type of the object `obj` (tagged).
    fn type_of(&mut self, obj: u64) -> Option<u16> {
        if !self.is_heap(obj) {
            return None;
        }
        let map = self.field(obj, self.l().map)?;
        self.map_type(map)
    }

    /// A Smi field's value (x86_64 without pointer compression: the upper
    /// 32 bits).
    fn smi_field(&mut self, obj: u64, offset: u64) -> Option<i64> {
        smi(self.field(obj, offset)?)
    }

    /// Decode one frame: `pc` is its pc (`exact` for the instruction
    /// itself, else a return address), `fp` its frame pointer; `word` reads
    /// its stack slots (from the copied window first).
    pub fn frame(
        &mut self,
        kind: CodeKind,
        (pc, exact): (u64, bool),
        fp: u64,
        word: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Option<JsFrame> {
        let l = self.l();
        let slot = |off: i64| fp.checked_add_signed(off);
        let marker = word(slot(l.fp_marker)?)?;
        if marker & 1 == 0 {
            // A typed frame: its marker is the type shifted left by one
            // (V8's StackFrame::TypeToMarker).
            let label = self.v8.frame_types.get(&((marker >> 1) as i64));
            return match label {
                Some(l) => Some(JsFrame::Internal(l.clone())),
                None if kind == CodeKind::Jit => Some(JsFrame::Unknown),
                None => None,
            };
        }
        let function = word(slot(l.fp_function)?)?;
        let decoded = self.function_frame(kind, (pc, exact), fp, function, word);
        let js_function = |d: &mut Self| {
            d.type_of(function)
                .is_some_and(|t| d.l().js_function.contains(&t))
        };
        let interpreted = |d: &mut Self, word: &mut dyn FnMut(u64) -> Option<u64>| {
            let bytecode = slot(l.fp_bytecode_array).and_then(word);
            bytecode.is_some_and(|b| d.type_of(b) == Some(l.bytecode_type))
        };
        match (decoded, kind) {
            (Some(js), _) => Some(JsFrame::Function(js)),
            (None, CodeKind::Jit) => {
                let step = if js_function(self) {
                    "the function's SharedFunctionInfo did not decode"
                } else {
                    "no JSFunction in the frame of compiled code"
                };
                self.unnamed(step);
                Some(JsFrame::Unknown)
            }
            // An interpreter frame (a function and its bytecode) that did
            // not decode: say so rather than show the interpreter.
            (None, CodeKind::Builtin) if js_function(self) && interpreted(self, word) => {
                self.unnamed("the function's SharedFunctionInfo did not decode");
                Some(JsFrame::Unknown)
            }
            // A builtin whose frame is not a JavaScript one: its symbol
            // says more than `<unknown>` would.
            (None, CodeKind::Builtin) => None,
        }
    }

    /// Note the first step that failed for a JavaScript frame left
    /// unnamed (a more precise one may have been noted on the way).
    fn unnamed(&mut self, step: &'static str) {
        self.failed.get_or_insert(step);
    }

    /// The first step that failed for a JavaScript frame left unnamed.
    pub fn failed_step(&self) -> Option<&'static str> {
        self.failed
    }

    /// A JavaScript function's frame, decoded once for each distinct set of
    /// the stack slots it is decoded from (a recursion repeats them).
    fn function_frame(
        &mut self,
        kind: CodeKind,
        (pc, exact): (u64, bool),
        fp: u64,
        function: u64,
        word: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Option<JsName> {
        let l = self.l();
        let mut slot = |off: Option<i64>| {
            off.and_then(|o| fp.checked_add_signed(o))
                .and_then(&mut *word)
        };
        let slots = FrameSlots {
            kind,
            pc,
            exact,
            function,
            receiver: slot(l.receiver.as_ref().map(|r| r.fp_receiver)),
            bytecode: slot(Some(l.fp_bytecode_array)),
            offset: slot(Some(l.fp_bytecode_offset)),
        };
        if let Some(known) = self.frames.get(&slots) {
            return known.clone();
        }
        let decoded = self.decode_function_frame(&slots);
        self.frames.insert(slots, decoded.clone());
        decoded
    }

    fn decode_function_frame(&mut self, slots: &FrameSlots) -> Option<JsName> {
        let l = self.l();
        let FrameSlots {
            kind,
            pc,
            exact,
            function,
            receiver,
            bytecode,
            offset,
        } = *slots;
        let ty = self.type_of(function)?;
        if !l.js_function.contains(&ty) {
            return None;
        }
        let shared = self.field(function, l.function_shared)?;
        let info = self.function_info(shared)?;
        let type_name = receiver.and_then(|r| self.receiver_type(r));
        // A method with no name of its own, as V8's stack traces name it:
        // by the property of the receiver (or its prototypes) holding it.
        let method = match (&type_name, &info.name, &info.inferred, receiver) {
            (Some(_), None, None, Some(r)) => self.method_name(r, function),
            _ => None,
        };
        let display = call_name(
            type_name.as_deref(),
            info.name.as_deref().or(method.as_deref()),
            info.inferred.as_deref(),
        );
        // An interpreted or baseline frame holds its BytecodeArray.
        let bytecode = bytecode.filter(|&b| self.type_of(b) == Some(l.bytecode_type));
        // Compiled code: the function's Code, when the pc is in it (not in
        // code the function has since left, deoptimized or replaced).
        let code = match kind {
            CodeKind::Jit => self.code_at(function, pc),
            CodeKind::Builtin => None,
        };
        // Compiled code that is not the function's Code (entered by
        // on-stack replacement for a hot loop, or left since): its tier is
        // not known, only that it is compiled.
        let tier = match (kind, bytecode, &code) {
            (CodeKind::Builtin, Some(_), _) => Some("interpreted"),
            (CodeKind::Builtin, None, _) => return None,
            (CodeKind::Jit, _, Some(c)) => Some(c.tier),
            (CodeKind::Jit, _, None) => None,
        };
        let mut inlined = Vec::new();
        // The position being executed. An interpreted frame saves its
        // bytecode offset (a Smi, counted from the tagged array); baseline
        // code maps its pc to a bytecode offset; maglev and optimized code
        // map their pc to a source position. A return address is looked up
        // one byte back, in the call.
        let executing = match (tier, bytecode, &code) {
            (Some("interpreted"), Some(array), _) => offset
                .and_then(smi)
                .and_then(|raw| {
                    let header = (l.bytecode_data - l.heap_tag) as i64;
                    u64::try_from(raw - header).ok()
                })
                .and_then(|offset| self.bytecode_position(array, offset)),
            (Some("baseline"), Some(array), Some(c)) => self
                .baseline_bytecode_offset(c, array, pc)
                .and_then(|offset| self.bytecode_position(array, offset)),
            (Some(compiled @ ("maglev" | "optimized")), _, Some(c)) => {
                let at = pc - c.start - u64::from(!exact && pc > c.start);
                match self.code_positions(c, at) {
                    Some((outer, calls)) => {
                        inlined = calls
                            .into_iter()
                            .map(|(sfi, p)| self.inlined_frame(sfi, p, compiled))
                            .collect::<Option<Vec<_>>>()
                            .unwrap_or_default();
                        Some(outer)
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let (position, at_start) = match (executing, info.start) {
            (Some(p), _) => (Some(p), false),
            (None, Some(s)) => (Some(s), true),
            (None, None) => (None, false),
        };
        let (script, line, column) = self.located(info.script, position);
        Some(JsName {
            function: display,
            script,
            line,
            column,
            at_start: line.is_some() && at_start,
            tier,
            inlined,
        })
    }

    fn function_info(&mut self, shared: u64) -> Option<FunctionInfo> {
        if let Some(known) = self.functions.get(&shared) {
            return known.clone();
        }
        let info = self.read_function_info(shared);
        self.functions.insert(shared, info.clone());
        info
    }

    fn read_function_info(&mut self, shared: u64) -> Option<FunctionInfo> {
        let l = self.l();
        if self.type_of(shared)? != l.sfi_type {
            return None;
        }
        let name_or_scope = self.field(shared, l.sfi_name)?;
        let mut name = None;
        let mut inferred = None;
        let mut start = None;
        if self.type_of(name_or_scope) == Some(l.scope_info_type) {
            let Some(s) = self.scope_info(name_or_scope) else {
                self.failed.get_or_insert("ScopeInfo layout not recognised");
                return None;
            };
            name = s.name;
            inferred = s.inferred;
            start = s.start;
        } else if let Some(s) = self.string(name_or_scope, NAME_MAX) {
            name = Some(s);
        } else if smi(name_or_scope).is_none() {
            // Neither a String, a ScopeInfo, nor the empty-name Smi.
            return None;
        }
        // A function not compiled yet keeps its inferred name and start in
        // its UncompiledData.
        if inferred.is_none() || start.is_none() {
            let mut uncompiled = None;
            for &off in &l.sfi_function_data {
                let data = self.field(shared, off)?;
                if self
                    .type_of(data)
                    .is_some_and(|t| l.uncompiled_types.contains(&t))
                {
                    uncompiled = Some(data);
                    break;
                }
            }
            if let Some(data) = uncompiled {
                if inferred.is_none()
                    && let Some(o) = l.uncompiled_inferred_name
                    && let Some(n) = self.field(data, o)
                {
                    inferred = self.string(n, NAME_MAX);
                }
                if start.is_none()
                    && let Some(o) = l.uncompiled_start
                    && let Some(at) = data.checked_sub(l.heap_tag).and_then(|d| d.checked_add(o))
                {
                    start = self.heap.i32(at).and_then(|v| u32::try_from(v).ok());
                }
            }
        }
        let name = name.filter(|n| !n.is_empty());
        let inferred = inferred.filter(|n| !n.is_empty());
        let script_field = self.field(shared, l.sfi_script)?;
        let script = (self.type_of(script_field) == Some(l.script_type)).then_some(script_field);
        Some(FunctionInfo {
            name,
            inferred,
            script,
            start,
        })
    }

    /// The compiled code `pc` is in: found from the pc itself where the
    /// layout allows (see [`Decoder::code_of_pc`]), else the function's
    /// current Code if `pc` is in it.
    fn code_at(&mut self, function: u64, pc: u64) -> Option<CodeAt> {
        let c = self.l().code.as_ref()?;
        let code = match (c.instruction_stream, c.function_code) {
            (Some(_), _) => self.code_of_pc(pc)?,
            (None, Some(off)) => self.field(function, off)?,
            (None, None) => return None,
        };
        self.code_info(code, pc)
    }

    /// A Code object's kind and table, if `pc` is in its instructions.
    fn code_info(&mut self, code: u64, pc: u64) -> Option<CodeAt> {
        let c = self.l().code.as_ref()?;
        if self.type_of(code)? != c.code_type {
            return None;
        }
        let base = code.checked_sub(self.l().heap_tag)?;
        let start = self.heap.word(base.checked_add(c.instruction_start)?)?;
        let size = self.heap.i32(base.checked_add(c.instruction_size)?)?;
        let end = start.checked_add(u64::try_from(size).ok()?)?;
        if !(start..end).contains(&pc) {
            return None;
        }
        let flags = self.heap.i32(base.checked_add(c.flags)?)? as u32;
        let tier = match flags & c.kind_mask {
            k if k == c.baseline => "baseline",
            k if k == c.maglev => "maglev",
            k if k == c.turbofan => "optimized",
            _ => return None,
        };
        Some(CodeAt {
            code,
            start,
            tier,
            table: self.field(code, c.table)?,
        })
    }

    /// The Code whose instructions hold `pc`, from the pc alone: compiled
    /// code lies in an InstructionStream, a 32-byte header (its map, then
    /// its Code) right before instructions that start 64-byte aligned.
    /// Stepping back from the pc, the first start whose header has the
    /// InstructionStream map and a Code pointing back at that stream, and
    /// whose instructions hold the pc, is it. This needs neither the
    /// function (its Code may since have changed: on-stack replacement,
    /// deoptimization) nor V8's dispatch table.
    fn code_of_pc(&mut self, pc: u64) -> Option<u64> {
        if let Some(&(_, _, code)) = self
            .codes
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(&pc))
        {
            return Some(code);
        }
        let c = self.l().code.as_ref()?;
        let (stream_field, stream_type) = c.instruction_stream?;
        let tag = self.l().heap_tag;
        let mut start = pc & !(CODE_ALIGNMENT - 1);
        for _ in 0..MAX_CODE_STEPS {
            let header = start.checked_sub(ISTREAM_HEADER)?;
            // An unreadable word: no code starts below the gap.
            let map = self.heap.word(header)?;
            let is_stream = match self.stream_map {
                Some(known) => map == known,
                None => self.map_type(map) == Some(stream_type),
            };
            if is_stream
                && let Some(code) = self.heap.word(header + 8)
                && self.field(code, stream_field) == Some(header + tag)
                && let Some(at) = self.code_info(code, pc)
                && at.start == start
            {
                self.stream_map = Some(map);
                let size = self.heap.i32(code - tag + c.instruction_size)?;
                let end = start.checked_add(u64::try_from(size).ok()?)?;
                self.codes.push((start, end, code));
                return Some(code);
            }
            start = start.checked_sub(CODE_ALIGNMENT)?;
        }
        None
    }

    /// The instance type a map (tagged) gives its objects.
    fn map_type(&mut self, map: u64) -> Option<u16> {
        if !self.is_heap(map) {
            return None;
        }
        let at = map
            .checked_sub(self.l().heap_tag)?
            .checked_add(self.l().instance_type)?;
        self.heap.u16(at)
    }

    /// A byte array's bytes (ByteArray or TrustedByteArray), bounded.
    fn byte_array(&mut self, array: u64) -> Option<Vec<u8>> {
        let l = self.l();
        if !self
            .type_of(array)
            .is_some_and(|t| l.byte_array_types.contains(&t))
        {
            return None;
        }
        let len = usize::try_from(self.smi_field(array, l.array_length)?).ok()?;
        if len == 0 || len > TABLE_MAX {
            return None;
        }
        let mut bytes = vec![0u8; len];
        // A byte array's bytes follow its map and length.
        let base = array
            .checked_sub(l.heap_tag)?
            .checked_add(l.array_length + 8)?;
        self.heap.read(base, &mut bytes)?;
        Some(bytes)
    }

    /// The source position of an offset into maglev or optimized code, in
    /// the function itself, and the functions inlined into it there with
    /// their positions, innermost first. A position in inlined code names
    /// its function by an inlining id: the deoptimization data holds, for
    /// each, the inlined function and the position of its call in the
    /// function it was inlined into (itself inlined, or not).
    fn code_positions(&mut self, code: &CodeAt, offset: u64) -> Option<(u32, Vec<(u64, u32)>)> {
        let bytes = self.byte_array(code.table)?;
        let (mut position, mut inlining) = self.position_entry(&bytes, offset, CODE_TABLE)?;
        let mut inlined = Vec::new();
        if inlining.is_none() {
            return Some((position, inlined));
        }
        let c = self.l().code.as_ref()?;
        let (count_at, literals_at, positions_at) = c.deopt?;
        let l = self.l();
        let data = self.field(code.code, c.deopt_data)?;
        let element = |i: u64| l.array_data + 8 * i;
        let count = u64::try_from(self.smi_field(data, element(count_at))?).ok()?;
        let literals = self.field(data, element(literals_at))?;
        let records = self.field(data, element(positions_at))?;
        let records = self.byte_array(records)?;
        // Each record: the call's raw source position (8 bytes), the
        // inlined function's index among the literals (4), padding.
        while let Some(id) = inlining {
            if inlined.len() > 64 {
                return None;
            }
            let rec = records.get(16 * id as usize..16 * id as usize + 16)?;
            let raw = i64::from_le_bytes(rec[..8].try_into().ok()?);
            let function = u32::from_le_bytes(rec[8..12].try_into().ok()?);
            if u64::from(function) >= count {
                return None;
            }
            // A weak reference: clear its weak bit.
            let sfi = self.field(literals, element(u64::from(function)))? & !2;
            inlined.push((sfi, position));
            (position, inlining) = unpack_position(raw)?;
        }
        Some((position, inlined))
    }

    /// An inlined function as a frame: its name (no receiver is known), its
    /// script and where in it it runs.
    fn inlined_frame(&mut self, shared: u64, position: u32, tier: &'static str) -> Option<JsName> {
        let info = self.function_info(shared)?;
        let (script, line, column) = self.located(info.script, Some(position));
        Some(JsName {
            function: call_name(None, info.name.as_deref(), info.inferred.as_deref()),
            script,
            line,
            column,
            at_start: false,
            tier: Some(tier),
            inlined: Vec::new(),
        })
    }

    /// The bytecode a baseline code pc is in, from the Code's bytecode
    /// offset table.
    fn baseline_bytecode_offset(&mut self, code: &CodeAt, array: u64, pc: u64) -> Option<u64> {
        let sizes = self.l().bytecode_sizes.as_deref()?;
        let table = self.byte_array(code.table)?;
        let l = self.l();
        let len = usize::try_from(self.smi_field(array, l.array_length)?).ok()?;
        if len > TABLE_MAX {
            return None;
        }
        let mut bytecodes = vec![0u8; len];
        let base = array
            .checked_sub(l.heap_tag)?
            .checked_add(l.bytecode_data)?;
        self.heap.read(base, &mut bytecodes)?;
        baseline_offset_at(&table, &bytecodes, sizes, pc.checked_sub(code.start)?)
    }

    /// The type name V8 puts before a method's name in a stack trace: the
    /// name of the receiver's constructor, for a receiver that is an
    /// object (not undefined, a primitive or the global proxy, as in a
    /// plain call).
    fn receiver_type(&mut self, receiver: u64) -> Option<String> {
        let r = self.l().receiver.as_ref()?;
        let ty = self.type_of(receiver)?;
        // Not an object (below the first receiver type, JSProxy), a proxy,
        // or the global proxy (a plain call's receiver).
        if ty <= r.proxy_type || ty == r.global_proxy_type {
            return None;
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
    fn method_name(&mut self, object: u64, function: u64) -> Option<String> {
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
        let l = self.l();
        let map = self.field(object, l.map)?;
        let base = map.checked_sub(l.heap_tag)?;
        let bits = self.heap.i32(base.checked_add(p.map_bit_field3)?)? as u32;
        let properties = self.field(object, p.object_properties)?;
        let mut keys = Vec::new();
        let is_string = |d: &mut Self, k: u64| d.type_of(k).is_some_and(|t| t < l.first_nonstring);
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
                if self.field(properties, at(1))? != value {
                    continue;
                }
                let key = self.field(properties, at(0))?;
                let details = self.smi_field(properties, at(2))?;
                if is_string(self, key) && self.enumerable_data(details, p) {
                    keys.push(key);
                }
            }
            return Some(keys);
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
            if !self.enumerable_data(details, p) {
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
            if held == value {
                let key = self.field(descriptors, at(0))?;
                if is_string(self, key) {
                    keys.push(key);
                }
            }
        }
        Some(keys)
    }

    /// Whether property details are those of an enumerable data property.
    fn enumerable_data(&self, details: i64, p: &PropertyLayout) -> bool {
        details & p.kind_mask == 0 && (details >> p.attributes_shift) & p.dont_enum == 0
    }

    /// The function name, inferred name and start position in a ScopeInfo.
    fn scope_info(&mut self, scope: u64) -> Option<ScopeNames> {
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

    /// A script's name, read once.
    fn script(&mut self, script: u64) -> &ScriptInfo {
        if !self.scripts.contains_key(&script) {
            let l = self.l();
            let name = self
                .field(script, l.script_name)
                .and_then(|n| self.string(n, NAME_MAX));
            self.scripts.insert(
                script,
                ScriptInfo {
                    name,
                    line_ends: None,
                },
            );
        }
        &self.scripts[&script]
    }

    /// A script's name, and the 1-based line and column of a position in it.
    fn located(
        &mut self,
        script: Option<u64>,
        position: Option<u32>,
    ) -> (Option<String>, Option<u32>, Option<u32>) {
        let Some(script) = script else {
            return (None, None, None);
        };
        let name = self.script(script).name.clone();
        let lc = position.and_then(|p| self.line_column(script, p));
        (name, lc.map(|x| x.0), lc.map(|x| x.1))
    }

    /// 1-based line and column of a source position in a script: from the
    /// line ends V8 computed, or by counting newlines in the source.
    fn line_column(&mut self, script: u64, position: u32) -> Option<(u32, u32)> {
        let known = self.script(script).line_ends.as_ref().map(|e| e.1);
        if known.is_none_or(|upto| upto < position) {
            let ends = self.line_ends(script);
            if let Some(info) = self.scripts.get_mut(&script) {
                info.line_ends = ends;
            }
        }
        let (ends, _) = self.scripts.get(&script)?.line_ends.as_ref()?;
        let line = ends.partition_point(|&e| e < position);
        let line_start = match line {
            0 => 0,
            n => ends[n - 1].checked_add(1)?,
        };
        Some((
            u32::try_from(line).ok()?.checked_add(1)?,
            position.checked_sub(line_start)?.checked_add(1)?,
        ))
    }

    /// Where each line of a script ends, and up to which position that is
    /// known (all of the source, or its first [`SOURCE_MAX`] units).
    fn line_ends(&mut self, script: u64) -> Option<(Vec<u32>, u32)> {
        let l = self.l();
        if let Some(off) = l.script_line_ends
            && let Some(arr) = self.field(script, off)
            && self.type_of(arr) == Some(l.fixed_array_type)
        {
            let len = usize::try_from(self.smi_field(arr, l.array_length)?).ok()?;
            if len > TABLE_MAX {
                return None;
            }
            let mut raw = vec![0u8; len * 8];
            let base = arr.checked_sub(l.heap_tag)?.checked_add(l.array_data)?;
            self.heap.read(base, &mut raw)?;
            let ends: Option<Vec<u32>> = raw
                .chunks_exact(8)
                .map(|c| {
                    smi(u64::from_le_bytes(c.try_into().ok()?)).and_then(|v| u32::try_from(v).ok())
                })
                .collect();
            return ends.filter(|e| e.is_sorted()).map(|e| (e, u32::MAX));
        }
        // Count the newlines in the source, once.
        let source = self.field(script, l.script_source)?;
        let len = self.string_len(source)?.min(SOURCE_MAX);
        let ends: Vec<u32> = match self.flat_one_byte(source) {
            Some(chars) => {
                let mut text = vec![0u8; len];
                self.heap.read(chars, &mut text)?;
                memchr::memchr_iter(b'\n', &text)
                    .filter_map(|i| u32::try_from(i).ok())
                    .collect()
            }
            None => self
                .string_units(source, len)?
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c == u16::from(b'\n'))
                .filter_map(|(i, _)| u32::try_from(i).ok())
                .collect(),
        };
        Some((ends, u32::try_from(len).unwrap_or(u32::MAX)))
    }

    /// The source position of a bytecode offset, from the BytecodeArray's
    /// source position table (absent until V8 has needed it: then `None`).
    fn bytecode_position(&mut self, array: u64, offset: u64) -> Option<u32> {
        if let Some(known) = self.positions.get(&(array, offset)) {
            return *known;
        }
        let found = self.read_bytecode_position(array, offset);
        self.positions.insert((array, offset), found);
        found
    }

    fn read_bytecode_position(&mut self, array: u64, offset: u64) -> Option<u32> {
        let l = self.l();
        let table = self.field(array, l.bytecode_positions)?;
        let bytes = self.byte_array(table)?;
        self.position_entry(&bytes, offset, BYTECODE_TABLE)
            .map(|(p, _)| p)
    }

    /// [`position_entry_at`] in a table of this V8 (a bytecode array's or
    /// a Code's: `kind`), whose coding is learnt from the first table of
    /// its kind that shows it (see [`DeltaCoding`]).
    fn position_entry(
        &mut self,
        table: &[u8],
        offset: u64,
        kind: usize,
    ) -> Option<(u32, Option<u32>)> {
        let coding = match self.coding[kind] {
            Some(c) => c,
            None => {
                let (c, sure) = delta_coding(table)?;
                if sure {
                    self.coding[kind] = Some(c);
                }
                c
            }
        };
        position_entry_at(table, offset, coding)
    }

    /// A string's text, at most `max` UTF-16 units (longer ones are cut
    /// and end with `…`). A name with control characters is taken for
    /// what it almost always is, memory that is not a name: `None`.
    fn string(&mut self, s: u64, max: usize) -> Option<String> {
        let len = self.string_len(s)?;
        let units = self.string_units(s, len.min(max))?;
        if units
            .iter()
            .any(|&u| char::from_u32(u32::from(u)).is_some_and(char::is_control))
        {
            return None;
        }
        let mut text = String::from_utf16_lossy(&units);
        if len > max {
            text.push('…');
        }
        Some(text)
    }

    fn string_len(&mut self, s: u64) -> Option<usize> {
        let ty = self.type_of(s)?;
        if ty >= self.l().first_nonstring {
            return None;
        }
        let at = s
            .checked_sub(self.l().heap_tag)?
            .checked_add(self.l().string_length)?;
        usize::try_from(self.heap.i32(at)?).ok()
    }

    /// Where an external string's characters are (`base`, its untagged
    /// address): the resource's data pointer, cached right after it (not in
    /// "uncached" external strings, which are rare: then no text).
    fn external_chars(&mut self, base: u64) -> Option<u64> {
        let at = base.checked_add(self.l().external_resource + 8)?;
        self.heap.word(at).filter(|&data| data != 0)
    }

    /// Where the characters of a flat one-byte string are (sequential or
    /// external, behind any thin strings): sources usually are.
    fn flat_one_byte(&mut self, mut s: u64) -> Option<u64> {
        let l = self.l();
        for _ in 0..CONS_DEPTH {
            let ty = self.type_of(s)?;
            if ty >= l.first_nonstring || ty & l.encoding_mask != l.one_byte_tag {
                return None;
            }
            let repr = ty & l.representation_mask;
            let base = s.checked_sub(l.heap_tag)?;
            if repr == l.seq_tag {
                return base.checked_add(l.seq_chars);
            } else if repr == l.external_tag {
                return self.external_chars(base);
            } else if repr == l.thin_tag {
                s = self.field(s, l.thin_actual)?;
            } else {
                return None;
            }
        }
        None
    }

    /// The first `want` UTF-16 units of a string (all of it when shorter).
    fn string_units(&mut self, s: u64, want: usize) -> Option<Vec<u16>> {
        let mut out = Vec::with_capacity(want.min(1 << 16));
        self.append_units(s, 0, want, &mut out, 0)?;
        Some(out)
    }

    /// Append units `from..from + want` of string `s` (cut at its end).
    fn append_units(
        &mut self,
        s: u64,
        from: usize,
        want: usize,
        out: &mut Vec<u16>,
        depth: usize,
    ) -> Option<()> {
        if depth > CONS_DEPTH {
            return None;
        }
        let l = self.l();
        let ty = self.type_of(s)?;
        if ty >= l.first_nonstring {
            return None;
        }
        let len = self.string_len(s)?;
        let want = want.min(len.saturating_sub(from));
        if want == 0 {
            return Some(());
        }
        let one_byte = ty & l.encoding_mask == l.one_byte_tag;
        let repr = ty & l.representation_mask;
        let base = s.checked_sub(l.heap_tag)?;
        let chars = |ptr: u64, heap: &mut Heap, out: &mut Vec<u16>| -> Option<()> {
            if one_byte {
                let mut b = vec![0u8; want];
                heap.read(ptr.checked_add(from as u64)?, &mut b)?;
                out.extend(b.iter().map(|&c| u16::from(c)));
            } else {
                let mut b = vec![0u8; want * 2];
                heap.read(ptr.checked_add(from as u64 * 2)?, &mut b)?;
                out.extend(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])));
            }
            Some(())
        };
        if repr == l.seq_tag {
            chars(base.checked_add(l.seq_chars)?, &mut self.heap, out)
        } else if repr == l.external_tag {
            let data = self.external_chars(base)?;
            chars(data, &mut self.heap, out)
        } else if repr == l.cons_tag {
            let first = self.field(s, l.cons_first)?;
            let second = self.field(s, l.cons_second)?;
            let first_len = self.string_len(first)?;
            if from < first_len {
                let n = want.min(first_len - from);
                self.append_units(first, from, n, out, depth + 1)?;
                if want > n {
                    self.append_units(second, 0, want - n, out, depth + 1)?;
                }
                Some(())
            } else {
                self.append_units(second, from - first_len, want, out, depth + 1)
            }
        } else if repr == l.sliced_tag {
            let parent = self.field(s, l.sliced_parent)?;
            let offset = usize::try_from(self.smi_field(s, l.sliced_offset)?).ok()?;
            self.append_units(parent, offset.checked_add(from)?, want, out, depth + 1)
        } else if repr == l.thin_tag {
            let actual = self.field(s, l.thin_actual)?;
            self.append_units(actual, from, want, out, depth + 1)
        } else {
            None
        }
    }
}

/// A function's name as node 20's stack traces give it: a method call
/// (a receiver with a type) reads `Type.name` unless the name already
/// starts with the type, and `Type.<anonymous>` without a name; a name V8
/// inferred (`holder.method` for `holder.method = function () {}`) reads
/// as it is.
fn call_name(type_name: Option<&str>, name: Option<&str>, inferred: Option<&str>) -> String {
    match (type_name, name, inferred) {
        (Some(t), Some(n), _) if !n.starts_with(t) => format!("{t}.{n}"),
        (_, Some(n), _) | (_, None, Some(n)) => n.to_owned(),
        (Some(t), None, None) => format!("{t}.<anonymous>"),
        (None, None, None) => "<anonymous>".to_owned(),
    }
}

#[derive(Debug, Clone, Default)]
struct ScopeNames {
    name: Option<String>,
    inferred: Option<String>,
    start: Option<u32>,
}

/// A Smi's value (x86_64 without pointer compression).
fn smi(word: u64) -> Option<i64> {
    (word & 0xffff_ffff == 0).then_some((word as i64) >> 32)
}

/// Read one VLQ-encoded, zigzagged integer from a source position table.
fn read_vlq(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let value = read_uvlq(bytes, at)?;
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// The script offset of the last entry at or before `code_offset` in a
/// V8 source position table: pairs of (code offset delta, with whether it
/// is a statement; source position delta), each a zigzag VLQ, from code
/// offset -1 (V8's function-entry offset, for the stack check on entry). A
/// source position packs the script offset + 1 in bits 1..31 (bit 0 flags
/// an external position, bits 31.. the inlining).
pub fn source_position_at(table: &[u8], code_offset: u64) -> Option<u32> {
    let (coding, _) = delta_coding(table)?;
    position_entry_at(table, code_offset, coding).map(|(p, _)| p)
}

/// Indices of [`Decoder::coding`].
const BYTECODE_TABLE: usize = 0;
const CODE_TABLE: usize = 1;

/// How a V8's tables write code offset deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeltaCoding {
    /// To V8 14.1's bytecode tables: the delta for a statement, -delta - 1
    /// for an expression.
    Signed,
    /// V8 14.1's code tables and all of V8 14.6's: `2 * delta + 1`,
    /// bitwise negated for a statement. Un-negated, every such value is
    /// odd; the other coding's bytecode tables start with an even one (the
    /// function entry, -1), and a table of either gives itself away once
    /// one value is even.
    Odd,
}

/// A table's coding, and whether the table shows it for sure (an even
/// value: `Signed`) or only makes it likely (all of at least 4 values odd:
/// `Odd`; fewer: `Odd` too, but not sure).
fn delta_coding(table: &[u8]) -> Option<(DeltaCoding, bool)> {
    let mut at = 0usize;
    let mut count = 0;
    while at < table.len() {
        let v = read_vlq(table, &mut at)?;
        read_vlq(table, &mut at)?;
        if un_negated(v) & 1 == 0 {
            return Some((DeltaCoding::Signed, true));
        }
        count += 1;
    }
    Some((DeltaCoding::Odd, count >= 4))
}

/// A delta value with a statement's negation undone.
fn un_negated(v: i64) -> i64 {
    if v < 0 { !v } else { v }
}

/// The script offset of the last entry at or before `code_offset` in a
/// table of `coding`, with the inlining id of the entry (bits 31..47 hold
/// it plus one; `None` for the function itself).
fn position_entry_at(
    table: &[u8],
    code_offset: u64,
    coding: DeltaCoding,
) -> Option<(u32, Option<u32>)> {
    let mut at = 0usize;
    // Deltas start from the function-entry offset, -1.
    let (mut code, mut raw) = (-1i64, 0i64);
    let mut found = None;
    while at < table.len() {
        let v = read_vlq(table, &mut at)?;
        let delta = match coding {
            DeltaCoding::Signed => un_negated(v),
            DeltaCoding::Odd => un_negated(v) >> 1,
        };
        let pos = read_vlq(table, &mut at)?;
        code = code.checked_add(delta)?;
        raw = raw.checked_add(pos)?;
        if code > code_offset as i64 {
            break;
        }
        found = Some(raw);
    }
    unpack_position(found?)
}

/// A raw source position: the script offset + 1 in bits 1..31 and the
/// inlining id + 1 in bits 31..47 (bit 0 flags an external position, not
/// decoded).
fn unpack_position(raw: i64) -> Option<(u32, Option<u32>)> {
    if raw & 1 != 0 {
        return None;
    }
    let offset = ((raw >> 1) & ((1 << 30) - 1)) - 1;
    let inlined = ((raw >> 31) & 0xffff) - 1;
    Some((u32::try_from(offset).ok()?, u32::try_from(inlined).ok()))
}

/// Read one unsigned VLQ (7 bits a byte, low first, high bit for more).
fn read_uvlq(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        if shift >= 64 {
            return None;
        }
        value |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
}

/// The offset of the bytecode that baseline machine code at `pc_offset`
/// (from its start) runs: the table gives, as unsigned VLQs, the machine
/// code size of the function's entry and then of each bytecode in turn;
/// bytecodes are stepped through with `sizes` (three rows: single, wide
/// and extra-wide operands; opcodes 0 to 3 are the prefixes that choose
/// the row). The bytecode whose code ends at or after `pc_offset` is the
/// one (a call's return address is the end of its call). `None` in the
/// function's entry (V8's offset -1, the stack check).
pub fn baseline_offset_at(
    table: &[u8],
    bytecodes: &[u8],
    sizes: &[u8],
    pc_offset: u64,
) -> Option<u64> {
    let row = sizes.len() / 3;
    let mut at = 0usize;
    let mut end = read_uvlq(table, &mut at)?;
    let mut offset = 0usize;
    while end < pc_offset {
        let here = offset;
        let mut op = usize::from(*bytecodes.get(offset)?);
        let (mut scale, mut size) = (0, 0);
        if op < 4 {
            // Wide (0, 2) or extra-wide (1, 3) prefix: the bytecode follows.
            scale = if op % 2 == 0 { 1 } else { 2 };
            size = 1;
            op = usize::from(*bytecodes.get(offset + 1)?);
        }
        size += usize::from(*sizes.get(scale * row + op)?);
        if size == 0 {
            return None;
        }
        offset += size;
        end = end.checked_add(read_uvlq(table, &mut at)?)?;
        if end >= pc_offset {
            return Some(here as u64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vlq(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    #[test]
    fn position_tables() {
        // Entries (code offset, script offset): (0, 10) statement,
        // (5, 42) expression, (9, 100) statement.
        let mut t = Vec::new();
        let raw = |o: i64| (o + 1) << 1;
        vlq(&mut t, 1);
        vlq(&mut t, raw(10));
        vlq(&mut t, -5 - 1);
        vlq(&mut t, raw(42) - raw(10));
        vlq(&mut t, 4);
        vlq(&mut t, raw(100) - raw(42));
        assert_eq!(source_position_at(&t, 0), Some(10));
        assert_eq!(source_position_at(&t, 4), Some(10));
        assert_eq!(source_position_at(&t, 5), Some(42));
        assert_eq!(source_position_at(&t, 8), Some(42));
        assert_eq!(source_position_at(&t, 9), Some(100));
        assert_eq!(source_position_at(&t, 1000), Some(100));
        // Truncated or garbage tables give nothing, never a panic.
        assert_eq!(source_position_at(&t[..1], 3), None);
        assert_eq!(source_position_at(&[0xff; 20], 3), None);
        assert_eq!(source_position_at(&[], 3), None);
    }

    #[test]
    fn position_tables_of_v8_14() {
        // The same entries as above, with V8 14.6's coding: 2 * delta + 1,
        // negated for a statement.
        let mut t = Vec::new();
        let raw = |o: i64| (o + 1) << 1;
        vlq(&mut t, !3);
        vlq(&mut t, raw(10));
        vlq(&mut t, 2 * 5 + 1);
        vlq(&mut t, raw(42) - raw(10));
        vlq(&mut t, !(2 * 4 + 1));
        vlq(&mut t, raw(100) - raw(42));
        assert_eq!(delta_coding(&t), Some((DeltaCoding::Odd, false)));
        assert_eq!(source_position_at(&t, 0), Some(10));
        assert_eq!(source_position_at(&t, 4), Some(10));
        assert_eq!(source_position_at(&t, 5), Some(42));
        assert_eq!(source_position_at(&t, 9), Some(100));
        // An even value settles it: the older coding.
        let mut old = Vec::new();
        vlq(&mut old, -1);
        vlq(&mut old, raw(10));
        assert_eq!(delta_coding(&old), Some((DeltaCoding::Signed, true)));
    }

    #[test]
    fn baseline_pcs_map_to_bytecodes() {
        // Six opcodes: 0 to 3 are the prefixes, 4 takes an operand (1, 2
        // or 4 bytes by scale), 5 none. Sizes, in rows of six by scale.
        let sizes = [
            1, 1, 1, 1, 2, 1, // single
            1, 1, 1, 1, 3, 1, // wide
            1, 1, 1, 1, 5, 1, // extra-wide
        ];
        // Offsets 0: op4 x; 2: op5; 3: wide op4 x x; 7: op5.
        let bytecodes = [4, 9, 5, 0, 4, 9, 9, 5];
        // Machine code: the entry 10 bytes, then 5, 3, 8, 2.
        let table = [10, 5, 3, 8, 2];
        let at = |pc| baseline_offset_at(&table, &bytecodes, &sizes, pc);
        assert_eq!(at(10), None, "the entry");
        assert_eq!(at(11), Some(0));
        assert_eq!(at(15), Some(0), "a return address at the end of a call");
        assert_eq!(at(16), Some(2));
        assert_eq!(at(19), Some(3));
        assert_eq!(at(26), Some(3));
        assert_eq!(at(27), Some(7));
        assert_eq!(at(29), None, "past the last bytecode");
        // Truncated tables and bytecodes give nothing, never a panic.
        assert_eq!(
            baseline_offset_at(&table[..2], &bytecodes, &sizes, 27),
            None
        );
        assert_eq!(
            baseline_offset_at(&table, &bytecodes[..4], &sizes, 27),
            None
        );
        assert_eq!(baseline_offset_at(&table, &[0], &sizes, 27), None);
    }

    #[test]
    fn frame_type_labels() {
        assert_eq!(words("EntryFrame"), "entry frame");
        assert_eq!(words("ConstructEntryFrame"), "construct entry frame");
        assert_eq!(words("StubFrame"), "stub frame");
    }

    #[test]
    fn method_names_as_v8_prints_them() {
        // As node 20 prints them (checked by hand beside `new Error().stack`).
        assert_eq!(call_name(Some("Shape"), Some("area"), None), "Shape.area");
        assert_eq!(
            call_name(Some("Object"), Some("named"), None),
            "Object.named"
        );
        assert_eq!(
            call_name(Some("Module"), None, Some("Module._compile")),
            "Module._compile"
        );
        assert_eq!(call_name(Some("Foo"), None, Some("foo.f")), "foo.f");
        assert_eq!(call_name(Some("Object"), None, None), "Object.<anonymous>");
        assert_eq!(call_name(Some("Shape"), Some("Shape"), None), "Shape");
        assert_eq!(call_name(None, Some("plain"), None), "plain");
        assert_eq!(call_name(None, None, None), "<anonymous>");
    }

    #[test]
    fn smis() {
        assert_eq!(smi(5 << 32), Some(5));
        assert_eq!(smi((-3i64 << 32) as u64), Some(-3));
        assert_eq!(smi(0x1234_0001), None);
    }
}
