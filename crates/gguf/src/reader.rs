//! [`GgufFile`]: a parsed GGUF file whose tensor data stays in the memory map (or the buffer it was read
//! from) and is handed out by name as byte slices, without copying.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{ErrorKind, GgufError};
use crate::parse::{parse, Layout, TensorInfo};
use crate::value::MetadataValue;

enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A tensor of a [`GgufFile`]: its info and its raw bytes (exactly `info.size` of them).
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a> {
    pub info: &'a TensorInfo,
    pub data: &'a [u8],
}

/// A validated GGUF file: header, metadata and tensor infos parsed; every tensor known to lie inside the
/// file, aligned, and not overlapping another.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    layout: Layout,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.layout.version)
            .field("metadata", &self.layout.metadata.len())
            .field("tensors", &self.layout.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and parses the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let err = |kind| GgufError::new(path, kind);
        let file = File::open(path).map_err(|source| err(ErrorKind::Io { action: "open the file", source }))?;
        let len = file.metadata().map_err(|source| err(ErrorKind::Io { action: "read the file size", source }))?.len();
        if len == 0 {
            return Err(err(ErrorKind::Empty));
        }
        // SAFETY: the map is read-only. If another process truncates or rewrites the file while it is
        // mapped, reads may fault or see new data; like every mmap-based model loader (llama.cpp included)
        // we accept that for model files, which are not modified while in use.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|source| err(ErrorKind::Io { action: "memory-map the file", source }))?;
        Self::from_source(path.to_path_buf(), Bytes::Mapped(map))
    }

    /// Parses GGUF bytes held in memory; `label` stands in for the file name in errors.
    pub fn from_bytes(label: impl AsRef<Path>, bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::from_source(label.as_ref().to_path_buf(), Bytes::Owned(bytes))
    }

    fn from_source(path: PathBuf, bytes: Bytes) -> Result<GgufFile, GgufError> {
        match parse(&bytes) {
            Ok(layout) => Ok(GgufFile { path, bytes, layout }),
            Err(kind) => Err(GgufError { path, kind }),
        }
    }

    /// Asks the OS to read the whole file ahead, in the background, for a reader that is about
    /// to touch every tensor (a model load): no effect on bytes held in memory, and nothing to
    /// wait for; a refusal is ignored (it is only a hint).
    pub fn prefetch(&self) {
        #[cfg(unix)]
        if let Bytes::Mapped(map) = &self.bytes {
            let _ = map.advise(memmap2::Advice::WillNeed);
        }
    }

    /// The file's path (or the label given to [`GgufFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.layout.version
    }

    /// Data alignment (`general.alignment`, or 32).
    pub fn alignment(&self) -> u64 {
        self.layout.alignment
    }

    /// Absolute file offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.layout.data_offset
    }

    /// Length of the whole file in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The value of a metadata key.
    pub fn metadata(&self, key: &str) -> Option<&MetadataValue> {
        self.layout.metadata_index.get(key).map(|&i| &self.layout.metadata[i].1)
    }

    /// All metadata entries in file order.
    pub fn metadata_entries(&self) -> impl ExactSizeIterator<Item = (&str, &MetadataValue)> {
        self.layout.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// All tensor infos in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.layout.tensors
    }

    /// The tensor called `name` with its bytes, borrowed from the map.
    pub fn tensor(&self, name: &str) -> Option<Tensor<'_>> {
        self.layout.tensor_index.get(name).and_then(|&i| self.tensor_at(i))
    }

    /// All tensors in file order.
    pub fn tensors(&self) -> impl Iterator<Item = Tensor<'_>> {
        (0..self.layout.tensors.len()).filter_map(|i| self.tensor_at(i))
    }

    fn tensor_at(&self, i: usize) -> Option<Tensor<'_>> {
        let info = self.layout.tensors.get(i)?;
        // Placement was checked at parse time, so the range is inside the file.
        let start = usize::try_from(self.layout.data_offset + info.offset).ok()?;
        let data = self.bytes.get(start..start.checked_add(usize::try_from(info.size).ok()?)?)?;
        Some(Tensor { info, data })
    }
}
