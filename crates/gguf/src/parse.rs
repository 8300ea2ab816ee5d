//! Parsing of the GGUF header, metadata and tensor infos from bytes, with every count and length bounded by
//! the bytes that remain before anything is allocated.

use std::collections::HashMap;

use crate::cursor::{Cursor, PREALLOC_CAP};
use crate::error::ErrorKind;
use crate::types::GgmlType;
use crate::value::{MetadataArray, MetadataValue, ValueType};

pub const MAGIC: [u8; 4] = *b"GGUF";
/// The data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The alignment key.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// ggml tensors have at most 4 dimensions.
pub const MAX_DIMS: usize = 4;
/// Arrays of arrays deeper than this are refused (bounds recursion on hostile files).
pub const MAX_ARRAY_DEPTH: usize = 8;

/// The smallest possible encoded metadata entry: empty key (8), value type (4), one-byte value (1).
const MIN_KV_BYTES: u64 = 13;
/// The smallest possible tensor info: empty name (8), n_dims (4), type (4), offset (8).
const MIN_TENSOR_INFO_BYTES: u64 = 24;

/// One tensor as described by its tensor info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in ggml order (`ne[0]` fastest); between 0 and 4 of them.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes, computed from the type and dimensions.
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements (product of the dimensions; 1 for zero dimensions). Checked at parse time.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The dimensions padded with trailing 1s to ggml's 4, the form in which ggml compares shapes.
    pub fn ne4(&self) -> [u64; 4] {
        let mut ne = [1u64; 4];
        for (slot, &d) in ne.iter_mut().zip(&self.dims) {
            *slot = d;
        }
        ne
    }
}

/// Everything in a GGUF file except the tensor data itself.
#[derive(Debug)]
pub struct Layout {
    pub version: u32,
    pub metadata: Vec<(String, MetadataValue)>,
    pub metadata_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

pub fn parse(bytes: &[u8]) -> Result<Layout, ErrorKind> {
    if bytes.is_empty() {
        return Err(ErrorKind::Empty);
    }
    let head = &bytes[..bytes.len().min(4)];
    if head != &MAGIC[..head.len()] {
        return Err(ErrorKind::BadMagic { found: head.to_vec() });
    }
    let mut c = Cursor::new(bytes);
    let header = || "header".to_string();
    c.take(4, &header)?;
    let version = c.u32(&header)?;
    if version != 2 && version != 3 {
        return Err(if matches!(version.swap_bytes(), 2 | 3) {
            ErrorKind::BigEndian(version.swap_bytes())
        } else {
            ErrorKind::UnsupportedVersion(version)
        });
    }
    let tensor_count = c.u64(&header)?;
    let kv_count = c.u64(&header)?;
    c.check_count(kv_count, MIN_KV_BYTES, "metadata entries", &|| "metadata entry count".into())?;
    c.check_count(tensor_count, MIN_TENSOR_INFO_BYTES, "tensor infos", &|| "tensor count".into())?;

    let reserve = kv_count.min(PREALLOC_CAP) as usize;
    let mut metadata = Vec::with_capacity(reserve);
    let mut metadata_index = HashMap::with_capacity(reserve);
    for i in 0..kv_count {
        let key = c.string(&|| format!("key of metadata entry {i} of {kv_count}"))?;
        let type_id = c.u32(&|| format!("value type of metadata key '{key}'"))?;
        let value_type =
            ValueType::from_id(type_id).ok_or_else(|| ErrorKind::UnknownValueType { key: key.clone(), type_id })?;
        let value = read_value(&mut c, value_type, &key, 0)?;
        if metadata_index.insert(key.clone(), metadata.len()).is_some() {
            return Err(ErrorKind::DuplicateKey { key });
        }
        metadata.push((key, value));
    }

    let alignment = match metadata_index.get(ALIGNMENT_KEY).map(|&i| &metadata[i].1) {
        None => DEFAULT_ALIGNMENT,
        Some(MetadataValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(MetadataValue::U32(a)) => return Err(ErrorKind::BadAlignment(u64::from(*a))),
        Some(other) => return Err(ErrorKind::AlignmentType { found: other.type_description() }),
    };

    let reserve = tensor_count.min(PREALLOC_CAP) as usize;
    let mut tensors = Vec::with_capacity(reserve);
    let mut tensor_index = HashMap::with_capacity(reserve);
    for i in 0..tensor_count {
        let info = read_tensor_info(&mut c, i, tensor_count, alignment)?;
        if tensor_index.insert(info.name.clone(), tensors.len()).is_some() {
            return Err(ErrorKind::DuplicateTensor { tensor: info.name });
        }
        tensors.push(info);
    }

    // The data section starts at the end of the infos rounded up to the alignment.
    let data_offset = c.pos().div_ceil(alignment) * alignment;
    check_placement(&tensors, bytes.len() as u64, data_offset)?;
    Ok(Layout { version, metadata, metadata_index, tensors, tensor_index, alignment, data_offset })
}

fn read_value(c: &mut Cursor, ty: ValueType, key: &str, depth: usize) -> Result<MetadataValue, ErrorKind> {
    let what = || format!("value of metadata key '{key}'");
    Ok(match ty {
        ValueType::U8 => MetadataValue::U8(c.array::<1>(&what)?[0]),
        ValueType::I8 => MetadataValue::I8(c.array::<1>(&what)?[0] as i8),
        ValueType::Bool => MetadataValue::Bool(c.array::<1>(&what)?[0] != 0),
        ValueType::U16 => MetadataValue::U16(u16::from_le_bytes(c.array(&what)?)),
        ValueType::I16 => MetadataValue::I16(i16::from_le_bytes(c.array(&what)?)),
        ValueType::U32 => MetadataValue::U32(u32::from_le_bytes(c.array(&what)?)),
        ValueType::I32 => MetadataValue::I32(i32::from_le_bytes(c.array(&what)?)),
        ValueType::F32 => MetadataValue::F32(f32::from_le_bytes(c.array(&what)?)),
        ValueType::U64 => MetadataValue::U64(u64::from_le_bytes(c.array(&what)?)),
        ValueType::I64 => MetadataValue::I64(i64::from_le_bytes(c.array(&what)?)),
        ValueType::F64 => MetadataValue::F64(f64::from_le_bytes(c.array(&what)?)),
        ValueType::String => MetadataValue::String(c.string(&what)?),
        ValueType::Array => MetadataValue::Array(read_array(c, key, depth)?),
    })
}

fn read_array(c: &mut Cursor, key: &str, depth: usize) -> Result<MetadataArray, ErrorKind> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(ErrorKind::NestingTooDeep { key: key.to_string(), max: MAX_ARRAY_DEPTH });
    }
    let what = || format!("array in metadata key '{key}'");
    let type_id = c.u32(&what)?;
    let elem =
        ValueType::from_id(type_id).ok_or_else(|| ErrorKind::UnknownValueType { key: key.to_string(), type_id })?;
    let count = c.u64(&what)?;
    c.check_count(count, elem.min_encoded_size(), "array elements", &what)?;
    let n = count as usize;

    // Fixed-size elements: one bounds check for the whole run, then a conversion.
    fn fixed<const N: usize, T>(
        c: &mut Cursor,
        n: usize,
        what: &dyn Fn() -> String,
        f: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, ErrorKind> {
        let bytes = c.take((n * N) as u64, what)?;
        Ok(bytes.chunks_exact(N).map(|ch| f(ch.try_into().unwrap_or([0; N]))).collect())
    }
    Ok(match elem {
        ValueType::U8 => MetadataArray::U8(fixed::<1, _>(c, n, &what, |b| b[0])?),
        ValueType::I8 => MetadataArray::I8(fixed::<1, _>(c, n, &what, |b| b[0] as i8)?),
        ValueType::Bool => MetadataArray::Bool(fixed::<1, _>(c, n, &what, |b| b[0] != 0)?),
        ValueType::U16 => MetadataArray::U16(fixed(c, n, &what, u16::from_le_bytes)?),
        ValueType::I16 => MetadataArray::I16(fixed(c, n, &what, i16::from_le_bytes)?),
        ValueType::U32 => MetadataArray::U32(fixed(c, n, &what, u32::from_le_bytes)?),
        ValueType::I32 => MetadataArray::I32(fixed(c, n, &what, i32::from_le_bytes)?),
        ValueType::F32 => MetadataArray::F32(fixed(c, n, &what, f32::from_le_bytes)?),
        ValueType::U64 => MetadataArray::U64(fixed(c, n, &what, u64::from_le_bytes)?),
        ValueType::I64 => MetadataArray::I64(fixed(c, n, &what, i64::from_le_bytes)?),
        ValueType::F64 => MetadataArray::F64(fixed(c, n, &what, f64::from_le_bytes)?),
        ValueType::String => {
            let mut items = Vec::with_capacity(n.min(PREALLOC_CAP as usize));
            for i in 0..n {
                items.push(c.string(&|| format!("element {i} of {n} of array in metadata key '{key}'"))?);
            }
            MetadataArray::String(items)
        }
        ValueType::Array => {
            let mut items = Vec::with_capacity(n.min(PREALLOC_CAP as usize));
            for _ in 0..n {
                items.push(read_array(c, key, depth + 1)?);
            }
            MetadataArray::Array(items)
        }
    })
}

fn read_tensor_info(c: &mut Cursor, i: u64, count: u64, alignment: u64) -> Result<TensorInfo, ErrorKind> {
    let name = c.string(&|| format!("name of tensor info {i} of {count}"))?;
    let what = || format!("tensor info {i} of {count} ('{name}')");
    let n_dims = c.u32(&what)?;
    if n_dims as usize > MAX_DIMS {
        return Err(ErrorKind::bad_tensor(&name, format!("{n_dims} dimensions; ggml tensors have at most {MAX_DIMS}")));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(&what)?);
    }
    let type_id = c.u32(&what)?;
    let offset = c.u64(&what)?;

    if let Some(d) = dims.iter().find(|&&d| d > i64::MAX as u64) {
        return Err(ErrorKind::bad_tensor(
            &name,
            format!("dimension {d} in {dims:?} is larger than ggml's limit 2^63-1"),
        ));
    }
    if dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).is_none_or(|n| n > i64::MAX as u64) {
        return Err(ErrorKind::bad_tensor(&name, format!("dimensions {dims:?}: the element count overflows 64 bits")));
    }
    let ggml_type =
        GgmlType::from_id(type_id).map_err(|problem| ErrorKind::TensorType { tensor: name.clone(), problem })?;
    let ne0 = dims.first().copied().unwrap_or(1);
    if !ne0.is_multiple_of(ggml_type.block_size()) {
        return Err(ErrorKind::bad_tensor(
            &name,
            format!(
                "row length ne[0] = {ne0} is not a multiple of the {} block size {}",
                ggml_type.name(),
                ggml_type.block_size()
            ),
        ));
    }
    let size = ggml_type.tensor_bytes(&dims).ok_or_else(|| {
        ErrorKind::bad_tensor(&name, format!("{ggml_type} tensor of dimensions {dims:?}: byte size overflows 64 bits"))
    })?;
    if !offset.is_multiple_of(alignment) {
        return Err(ErrorKind::bad_tensor(
            &name,
            format!("data offset {offset} is not a multiple of the alignment {alignment}"),
        ));
    }
    Ok(TensorInfo { name, dims, ggml_type, offset, size })
}

/// Every tensor must lie inside the data section, and no two may share a byte.
fn check_placement(tensors: &[TensorInfo], file_len: u64, data_offset: u64) -> Result<(), ErrorKind> {
    let available = file_len.saturating_sub(data_offset);
    for t in tensors {
        if t.offset.checked_add(t.size).is_none_or(|end| end > available) {
            return Err(ErrorKind::TensorOutOfBounds {
                tensor: t.name.clone(),
                offset: t.offset,
                size: t.size,
                available,
            });
        }
    }
    let mut order: Vec<&TensorInfo> = tensors.iter().filter(|t| t.size > 0).collect();
    order.sort_by_key(|t| (t.offset, t.size));
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.offset + a.size > b.offset {
            return Err(ErrorKind::OverlappingTensors {
                first: a.name.clone(),
                first_start: a.offset,
                first_end: a.offset + a.size,
                second: b.name.clone(),
                second_start: b.offset,
            });
        }
    }
    Ok(())
}
