//! The storage types a synthetic file can have (`rwkv-cli synth --type`): their names, the ggml type of
//! their main matrices, and the `general.file_type` value (llama.cpp's `enum llama_ftype`) they write.

use ggml_quants::QuantFormat;

use super::SynthError;

/// The storage type of a synthetic file.
///
/// - [`SynthType::F32`] and [`SynthType::F16`] are what llama.cpp's converter writes with `--outtype f32`
///   / `f16` (in an F16 file the LoRA matrices are F16 too).
/// - Every other named type is what `llama-quantize` writes for the file type of that name from the F32
///   file (no importance matrix): the embedding and every attention and FFN projection in the type's base
///   format, the output matrix in Q6_K (except in Q8_0, BF16 and F16 files), and the tensors
///   llama-quantize leaves alone (1-D tensors, `lerp_fused`, every LoRA matrix) F32, as in the source.
///   RWKV-7's tensor names match none of llama-quantize's per-name upgrades (`attn_v`, `ffn_down`,
///   `attn_output`), so the `_M` mixes differ from their base type only in the output matrix.
/// - [`SynthType::Pure`] is `llama-quantize --pure`: the output matrix too in the base format.
///   `q3_k`, `q4_k` and `q5_k` (llama-quantize has no file type of those names) are pure.
///
/// Where a matrix's rows are not whole blocks of its format, llama-quantize's fallback applies (Q4_K →
/// Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, Q2_K/Q3_K → Q4_0, IQ4_XS → IQ4_NL, then F16 where even those do not
/// fit); a 32-value format with no fallback refuses the shape, as llama-quantize does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum SynthType {
    /// `f32`: every tensor F32 (the converter's `--outtype f32`).
    F32,
    /// `f16`: the embedding, projections, output and a/v/g LoRA matrices F16 (the converter's `--outtype f16`).
    F16,
    /// `bf16`: the embedding and projections BF16, the output matrix too.
    BF16,
    /// `q8_0`: the embedding and projections Q8_0, the output matrix too.
    Q8_0,
    /// `q4_0`: the embedding and projections Q4_0, the output matrix Q6_K.
    Q4_0,
    /// `q4_1`: the embedding and projections Q4_1, the output matrix Q6_K.
    Q4_1,
    /// `q5_0`: the embedding and projections Q5_0, the output matrix Q6_K.
    Q5_0,
    /// `q5_1`: the embedding and projections Q5_1, the output matrix Q6_K.
    Q5_1,
    /// `q2_k`: the embedding and projections Q2_K, the output matrix Q6_K.
    Q2_K,
    /// `q3_k_m`: the embedding and projections Q3_K, the output matrix Q6_K.
    Q3_K_M,
    /// `q4_k_m`: the embedding and projections Q4_K, the output matrix Q6_K.
    Q4_K_M,
    /// `q5_k_m`: the embedding and projections Q5_K, the output matrix Q6_K.
    Q5_K_M,
    /// `q6_k`: the embedding and projections Q6_K, the output matrix too.
    Q6_K,
    /// `iq4_nl`: the embedding and projections IQ4_NL, the output matrix Q6_K.
    IQ4_NL,
    /// `iq4_xs`: the embedding and projections IQ4_XS, the output matrix Q6_K.
    IQ4_XS,
    /// Every quantizable matrix in this format (`llama-quantize --pure`).
    Pure(QuantFormat),
}

/// (type, name, base format, `general.file_type`) of every named type.
const NAMED: [(SynthType, &str, QuantFormat, u32); 15] = [
    (SynthType::F32, "f32", QuantFormat::F32, 0),
    (SynthType::F16, "f16", QuantFormat::F16, 1),
    (SynthType::BF16, "bf16", QuantFormat::BF16, 32),
    (SynthType::Q8_0, "q8_0", QuantFormat::Q8_0, 7),
    (SynthType::Q4_0, "q4_0", QuantFormat::Q4_0, 2),
    (SynthType::Q4_1, "q4_1", QuantFormat::Q4_1, 3),
    (SynthType::Q5_0, "q5_0", QuantFormat::Q5_0, 8),
    (SynthType::Q5_1, "q5_1", QuantFormat::Q5_1, 9),
    (SynthType::Q2_K, "q2_k", QuantFormat::Q2_K, 10),
    (SynthType::Q3_K_M, "q3_k_m", QuantFormat::Q3_K, 12),
    (SynthType::Q4_K_M, "q4_k_m", QuantFormat::Q4_K, 15),
    (SynthType::Q5_K_M, "q5_k_m", QuantFormat::Q5_K, 17),
    (SynthType::Q6_K, "q6_k", QuantFormat::Q6_K, 18),
    (SynthType::IQ4_NL, "iq4_nl", QuantFormat::IQ4_NL, 25),
    (SynthType::IQ4_XS, "iq4_xs", QuantFormat::IQ4_XS, 30),
];

/// Formats with no llama-quantize file type of their own name: their plain name means pure.
const PURE_BY_NAME: [QuantFormat; 3] = [QuantFormat::Q3_K, QuantFormat::Q4_K, QuantFormat::Q5_K];

impl SynthType {
    /// Every named type (not the pure ones), in the order of `--help`.
    pub fn named() -> impl Iterator<Item = SynthType> {
        NAMED.iter().map(|n| n.0)
    }

    /// The types the parser accepts by name: the named ones, then `q3_k`, `q4_k`, `q5_k`.
    pub fn names() -> Vec<String> {
        let pure = PURE_BY_NAME.iter().map(|&f| SynthType::Pure(f).to_string());
        NAMED.iter().map(|n| n.1.to_owned()).chain(pure).collect()
    }

    fn named_row(self) -> Option<&'static (SynthType, &'static str, QuantFormat, u32)> {
        NAMED.iter().find(|n| n.0 == self)
    }

    /// The format of the file's main matrices (embedding and projections).
    pub fn base(self) -> QuantFormat {
        match (self, self.named_row()) {
            (SynthType::Pure(format), _) => format,
            (_, Some(row)) => row.2,
            (_, None) => QuantFormat::F32,
        }
    }

    /// True for `llama-quantize --pure` files (no Q6_K output matrix).
    pub fn is_pure(self) -> bool {
        matches!(self, SynthType::Pure(_))
    }

    /// `general.file_type`: llama.cpp's `enum llama_ftype` value of the file type (for a pure file, that of
    /// the file type llama-quantize was given: the named type with the same base, `_M` for K-quants).
    pub fn llama_ftype(self) -> u32 {
        let base = self.base();
        NAMED.iter().find(|n| n.2 == base).map_or(0, |n| n.3)
    }
}

impl std::str::FromStr for SynthType {
    type Err = SynthError;
    fn from_str(s: &str) -> Result<Self, SynthError> {
        let lower = s.trim().to_ascii_lowercase();
        if let Some(row) = NAMED.iter().find(|n| n.1 == lower) {
            return Ok(row.0);
        }
        if lower == "q8" {
            return Ok(SynthType::Q8_0);
        }
        let pure_name = lower.strip_prefix("pure-");
        match QuantFormat::from_name(pure_name.unwrap_or(&lower)) {
            Some(format) if pure_name.is_some() || PURE_BY_NAME.contains(&format) => Ok(SynthType::Pure(format)),
            _ => Err(SynthError::UnknownType { name: s.to_owned(), known: SynthType::names().join(", ") }),
        }
    }
}

impl std::fmt::Display for SynthType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self, self.named_row()) {
            (SynthType::Pure(format), _) if PURE_BY_NAME.contains(format) => {
                f.write_str(&format.name().to_ascii_lowercase())
            }
            (SynthType::Pure(format), _) => write!(f, "pure-{}", format.name().to_ascii_lowercase()),
            (_, Some(row)) => f.write_str(row.1),
            (_, None) => f.write_str("?"),
        }
    }
}
