//! [`ModelFile`]: an RWKV-7 GGUF opened, its hyperparameters read and every tensor checked; tensors are
//! borrowed from the memory map.

use std::path::Path;

use gguf_file::{GgmlType, GgufFile, MetadataValue};

use crate::error::ModelError;
use crate::hparams::HParams;
use crate::tensors::{check_types, unsupported, validate_tensors, weight_format};

/// A validated RWKV-7 model file.
#[derive(Debug)]
pub struct ModelFile {
    gguf: GgufFile,
    hparams: HParams,
}

/// One tensor of a [`ModelFile`]: raw bytes straight from the file.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    /// The GGUF tensor name (`token_embd.weight`, `blk.0.time_mix_r.weight`, ...).
    pub name: &'a str,
    /// The ggml storage type of `bytes`.
    pub dtype: GgmlType,
    /// Dimensions in ggml order (`ne[0]` fastest): a matrix `[K, M]` is M rows of K values.
    pub shape: &'a [u64],
    /// The tensor's data as stored in the file (ggml's block layout for quantized types).
    pub bytes: &'a [u8],
}

impl TensorRef<'_> {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

impl ModelFile {
    /// Opens (memory-maps) an RWKV-7 GGUF and validates it: GGUF structure, architecture,
    /// hyperparameters against tensor shapes, the full tensor table, and that the engine runs every
    /// tensor's type ([`crate::tensors::gpu_supports`]), so that nothing is uploaded from a file that
    /// cannot run.
    pub fn open(path: impl AsRef<Path>) -> Result<ModelFile, ModelError> {
        Self::from_gguf(GgufFile::open(path)?)
    }

    /// Validates an already parsed GGUF file as an RWKV-7 model.
    pub fn from_gguf(gguf: GgufFile) -> Result<ModelFile, ModelError> {
        let hparams = HParams::from_gguf(&gguf)?;
        validate_tensors(&gguf, &hparams)?;
        check_types(&gguf, &hparams)?;
        Ok(ModelFile { gguf, hparams })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.gguf.path()
    }

    /// The model's hyperparameters, cross-checked against the tensor shapes.
    pub fn hparams(&self) -> &HParams {
        &self.hparams
    }

    /// The underlying GGUF file (all metadata and tensor infos).
    pub fn gguf(&self) -> &GgufFile {
        &self.gguf
    }

    /// A metadata value.
    pub fn metadata(&self, key: &str) -> Option<&MetadataValue> {
        self.gguf.metadata(key)
    }

    /// The tensor `name`, borrowed from the file.
    pub fn tensor(&self, name: &str) -> Result<TensorRef<'_>, ModelError> {
        let t = self
            .gguf
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor { path: self.path().to_path_buf(), tensor: name.to_string() })?;
        Ok(TensorRef { name: &t.info.name, dtype: t.info.ggml_type, shape: &t.info.dims, bytes: t.data })
    }

    /// The tensor `name` as f32 values (row-major in ggml order), dequantized as ggml does
    /// (`kernels::formats::dequantize`, i.e. `ggml_quants`).
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let t = self.tensor(name)?;
        let format = weight_format(t.dtype).ok_or_else(|| unsupported(&self.gguf, name, t.dtype))?;
        Ok(kernels::formats::dequantize(format, t.bytes)?)
    }
}
