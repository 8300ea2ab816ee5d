//! Reader and writer for GGUF files (versions 2 and 3), the model format of llama.cpp.
//!
//! [`GgufFile::open`] memory-maps a file, parses header, metadata and tensor infos with every count and
//! length checked against the bytes that remain, checks that every tensor lies inside the file without
//! overlapping another, and then hands out tensors by name as byte slices of the map. [`GgufWriter`] builds
//! files (used by tests and by the synthetic-model generator). See `docs/gguf.md` for why this crate exists
//! and exactly what it checks.

mod convert;
mod cursor;
mod error;
mod parse;
mod reader;
mod types;
mod value;
mod writer;

pub use convert::{f16_bytes, f32_bytes};
pub use error::{ErrorKind, GgufError};
pub use parse::{TensorInfo, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS};
pub use reader::{GgufFile, Tensor};
pub use types::{GgmlType, TypeIdError};
pub use value::{MetadataArray, MetadataValue, ValueType};
pub use writer::GgufWriter;
