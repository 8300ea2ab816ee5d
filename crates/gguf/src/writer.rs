//! [`GgufWriter`]: builds a GGUF v3 (or v2) file from metadata and tensors.
//!
//! Tensors either carry their bytes (`add_tensor`) or are declared with type and shape only
//! (`declare_tensor`) and have their bytes produced while the file is written (`write_with`), so that files
//! larger than memory can be streamed out. Each tensor's data starts at a multiple of the alignment and the
//! padding is zero, as llama.cpp writes it.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::{ErrorKind, GgufError};
use crate::parse::{TensorInfo, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};
use crate::types::GgmlType;
use crate::value::{MetadataArray, MetadataValue};

struct PlannedTensor<'a> {
    name: String,
    ggml_type: GgmlType,
    dims: Vec<u64>,
    data: Option<Cow<'a, [u8]>>,
}

/// A GGUF file under construction. Validation (shapes, sizes, duplicate names, alignment) happens when the
/// file is written, and errors name the output and the tensor.
pub struct GgufWriter<'a> {
    version: u32,
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<PlannedTensor<'a>>,
}

impl Default for GgufWriter<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> GgufWriter<'a> {
    /// An empty GGUF v3 file.
    pub fn new() -> Self {
        GgufWriter { version: 3, metadata: Vec::new(), tensors: Vec::new() }
    }

    /// Sets the GGUF version written in the header (2 or 3; the two share one little-endian layout).
    pub fn set_version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Sets a metadata key; a key set twice keeps its first position and its last value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key, value)),
        }
        self
    }

    /// Removes a metadata key (no effect if absent).
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self
    }

    /// Sets `general.alignment` (must be a power of two; checked when writing).
    pub fn set_alignment(&mut self, alignment: u32) -> &mut Self {
        self.set(ALIGNMENT_KEY, alignment)
    }

    /// Adds a tensor with its raw bytes (`dims` in ggml order, `ne[0]` fastest).
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ggml_type: GgmlType,
        dims: &[u64],
        data: impl Into<Cow<'a, [u8]>>,
    ) -> &mut Self {
        let data = Some(data.into());
        self.tensors.push(PlannedTensor { name: name.into(), ggml_type, dims: dims.to_vec(), data });
        self
    }

    /// Declares a tensor whose bytes the `fill` callback of [`GgufWriter::write_with`] will produce.
    pub fn declare_tensor(&mut self, name: impl Into<String>, ggml_type: GgmlType, dims: &[u64]) -> &mut Self {
        self.tensors.push(PlannedTensor { name: name.into(), ggml_type, dims: dims.to_vec(), data: None });
        self
    }

    /// The tensor infos the file will have (offsets relative to the data section), after validation.
    pub fn plan(&self) -> Result<Vec<TensorInfo>, ErrorKind> {
        let alignment = self.alignment()?;
        let mut offset = 0u64;
        let mut infos: Vec<TensorInfo> = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            if infos.iter().any(|i| i.name == t.name) {
                return Err(ErrorKind::DuplicateTensor { tensor: t.name.clone() });
            }
            if t.dims.len() > MAX_DIMS {
                return Err(ErrorKind::bad_tensor(&t.name, format!("{} dimensions; at most {MAX_DIMS}", t.dims.len())));
            }
            let size = t.ggml_type.tensor_bytes(&t.dims).ok_or_else(|| {
                ErrorKind::bad_tensor(
                    &t.name,
                    format!(
                        "dimensions {:?} do not fit {} (row length must be a multiple of {}, size must fit 64 bits)",
                        t.dims,
                        t.ggml_type,
                        t.ggml_type.block_size()
                    ),
                )
            })?;
            if let Some(data) = &t.data {
                if data.len() as u64 != size {
                    return Err(ErrorKind::DataSize {
                        tensor: t.name.clone(),
                        expected: size,
                        found: data.len() as u64,
                    });
                }
            }
            infos.push(TensorInfo { name: t.name.clone(), dims: t.dims.clone(), ggml_type: t.ggml_type, offset, size });
            offset = (offset + size).div_ceil(alignment) * alignment;
        }
        Ok(infos)
    }

    fn alignment(&self) -> Result<u64, ErrorKind> {
        match self.metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY).map(|(_, v)| v) {
            None => Ok(DEFAULT_ALIGNMENT),
            Some(MetadataValue::U32(a)) if a.is_power_of_two() => Ok(u64::from(*a)),
            Some(MetadataValue::U32(a)) => Err(ErrorKind::BadAlignment(u64::from(*a))),
            Some(other) => Err(ErrorKind::AlignmentType { found: other.type_description() }),
        }
    }

    /// Writes the file to `path`. Every tensor must have been added with its bytes.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<u64, GgufError> {
        self.write_file_with(path, |info, _| Err(missing_data(info)))
    }

    /// Writes the file to `path`, calling `fill` for each declared tensor (in order) to write its bytes.
    pub fn write_file_with(
        &self,
        path: impl AsRef<Path>,
        fill: impl FnMut(&TensorInfo, &mut dyn Write) -> io::Result<()>,
    ) -> Result<u64, GgufError> {
        let path = path.as_ref();
        let file = File::create(path)
            .map_err(|source| GgufError::new(path, ErrorKind::Io { action: "create the file", source }))?;
        let mut out = BufWriter::new(file);
        let n = self.write_with(&mut out, path, fill)?;
        out.flush().map_err(|source| GgufError::new(path, ErrorKind::Io { action: "write the file", source }))?;
        Ok(n)
    }

    /// The whole file in memory. Every tensor must have been added with its bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GgufError> {
        let mut out = Vec::new();
        self.write_with(&mut out, "<memory>", |info, _| Err(missing_data(info)))?;
        Ok(out)
    }

    /// Writes the file to `out` (`label` names it in errors) and returns the number of bytes written.
    /// `fill` is called for each tensor declared without data and must write exactly its `size` bytes.
    pub fn write_with<W: Write>(
        &self,
        out: &mut W,
        label: impl AsRef<Path>,
        mut fill: impl FnMut(&TensorInfo, &mut dyn Write) -> io::Result<()>,
    ) -> Result<u64, GgufError> {
        let err = |kind| GgufError::new(label.as_ref(), kind);
        let io_err = |source| err(ErrorKind::Io { action: "write the file", source });
        if self.version != 2 && self.version != 3 {
            return Err(err(ErrorKind::UnsupportedVersion(self.version)));
        }
        let alignment = self.alignment().map_err(err)?;
        let infos = self.plan().map_err(err)?;

        let mut w = Counting { inner: out, written: 0 };
        let mut head = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&self.version.to_le_bytes());
        head.extend_from_slice(&(infos.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut head, key);
            head.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut head, value);
        }
        for info in &infos {
            put_string(&mut head, &info.name);
            head.extend_from_slice(&(info.dims.len() as u32).to_le_bytes());
            for d in &info.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&info.ggml_type.id().to_le_bytes());
            head.extend_from_slice(&info.offset.to_le_bytes());
        }
        w.write_all(&head).map_err(io_err)?;
        pad(&mut w, alignment).map_err(io_err)?;

        let data_start = w.written;
        for (info, t) in infos.iter().zip(&self.tensors) {
            let before = w.written;
            debug_assert_eq!(before - data_start, info.offset);
            match &t.data {
                Some(data) => w.write_all(data).map_err(io_err)?,
                None => fill(info, &mut w).map_err(io_err)?,
            }
            let found = w.written - before;
            if found != info.size {
                return Err(err(ErrorKind::DataSize { tensor: info.name.clone(), expected: info.size, found }));
            }
            pad(&mut w, alignment).map_err(io_err)?;
        }
        Ok(w.written)
    }
}

fn missing_data(info: &TensorInfo) -> io::Error {
    io::Error::other(format!("tensor '{}' was declared without data and no fill callback was given", info.name))
}

struct Counting<'w, W: Write> {
    inner: &'w mut W,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pad<W: Write>(w: &mut Counting<W>, alignment: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut left = w.written.div_ceil(alignment) * alignment - w.written;
    while left > 0 {
        let n = left.min(ZEROS.len() as u64);
        w.write_all(&ZEROS[..n as usize])?;
        left -= n;
    }
    Ok(())
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &MetadataValue) {
    use MetadataValue as V;
    match value {
        V::U8(v) => out.push(*v),
        V::I8(v) => out.push(*v as u8),
        V::Bool(v) => out.push(u8::from(*v)),
        V::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        V::String(s) => put_string(out, s),
        V::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, array: &MetadataArray) {
    use MetadataArray as A;
    out.extend_from_slice(&array.element_type().id().to_le_bytes());
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    macro_rules! each_le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match array {
        A::U8(v) => out.extend_from_slice(v),
        A::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        A::Bool(v) => out.extend(v.iter().map(|&x| u8::from(x))),
        A::U16(v) => each_le!(v),
        A::I16(v) => each_le!(v),
        A::U32(v) => each_le!(v),
        A::I32(v) => each_le!(v),
        A::F32(v) => each_le!(v),
        A::U64(v) => each_le!(v),
        A::I64(v) => each_le!(v),
        A::F64(v) => each_le!(v),
        A::String(v) => v.iter().for_each(|s| put_string(out, s)),
        A::Array(v) => v.iter().for_each(|a| put_array(out, a)),
    }
}
