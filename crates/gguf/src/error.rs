//! Errors: every one names the file (or the in-memory source) and what in it was wrong.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::types::TypeIdError;

/// An error reading or writing a GGUF file: the file, then what was wrong with it.
#[derive(Debug, Error)]
#[error("{}: {kind}", path.display())]
pub struct GgufError {
    /// The file (for in-memory data, the label given to the parser).
    pub path: PathBuf,
    pub kind: ErrorKind,
}

impl GgufError {
    pub fn new(path: impl AsRef<Path>, kind: ErrorKind) -> GgufError {
        GgufError { path: path.as_ref().to_path_buf(), kind }
    }
}

/// What went wrong. Messages name the key, the tensor or the part of the file involved.
#[derive(Debug, Error)]
pub enum ErrorKind {
    #[error("cannot {action}: {source}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("the file is empty")]
    Empty,

    #[error("not a GGUF file: it starts with {found:02x?}, GGUF files start with \"GGUF\" (47 47 55 46)")]
    BadMagic { found: Vec<u8> },

    #[error("GGUF version {0} is not supported (this reader handles versions 2 and 3)")]
    UnsupportedVersion(u32),

    #[error("this looks like a big-endian GGUF (version {0} byte-swapped); only little-endian files are supported")]
    BigEndian(u32),

    #[error("truncated {what}: {needed} bytes needed at offset {offset} but the file has {file_len} bytes")]
    Truncated { what: String, offset: u64, needed: u64, file_len: u64 },

    #[error("{what}: {count} {unit} declared at offset {offset}, which cannot fit in a file of {file_len} bytes")]
    CountTooLarge { what: String, count: u64, unit: &'static str, offset: u64, file_len: u64 },

    #[error("{what} is not valid UTF-8 (at offset {offset})")]
    InvalidUtf8 { what: String, offset: u64 },

    #[error("metadata key '{key}' has unknown value type id {type_id}")]
    UnknownValueType { key: String, type_id: u32 },

    #[error("metadata key '{key}': arrays nested deeper than {max} levels")]
    NestingTooDeep { key: String, max: usize },

    #[error("metadata key '{key}' appears twice")]
    DuplicateKey { key: String },

    #[error("metadata key 'general.alignment' must be a u32, found {found}")]
    AlignmentType { found: String },

    #[error("alignment {0} (key 'general.alignment') is not a power of two greater than zero")]
    BadAlignment(u64),

    #[error("tensor '{tensor}': {reason}")]
    BadTensorInfo { tensor: String, reason: String },

    #[error("tensor '{tensor}': {problem}")]
    TensorType { tensor: String, problem: TypeIdError },

    #[error("tensor '{tensor}' appears twice")]
    DuplicateTensor { tensor: String },

    #[error(
        "tensor '{tensor}' ({size} bytes at data offset {offset}) extends past the end of the file \
         (the data section holds {available} bytes)"
    )]
    TensorOutOfBounds { tensor: String, offset: u64, size: u64, available: u64 },

    #[error("tensors '{first}' (bytes {first_start}..{first_end}) and '{second}' (from byte {second_start}) overlap")]
    OverlappingTensors { first: String, first_start: u64, first_end: u64, second: String, second_start: u64 },

    #[error("writing tensor '{tensor}': {expected} bytes expected but {found} were given")]
    DataSize { tensor: String, expected: u64, found: u64 },
}

impl ErrorKind {
    pub(crate) fn bad_tensor(tensor: &str, reason: impl Into<String>) -> ErrorKind {
        ErrorKind::BadTensorInfo { tensor: tensor.to_string(), reason: reason.into() }
    }
}
