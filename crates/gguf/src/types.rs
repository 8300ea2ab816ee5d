//! ggml tensor types: ids as written in GGUF tensor infos, names, and block geometry.
//!
//! Every id that current ggml defines is known here with its block size and bytes per block, so that the
//! byte size of any tensor is computed correctly even when the engine cannot use its type. Ids that ggml
//! retired (4, 5, 31-33, 36-38) and ids never assigned are refused with [`TypeIdError`].

use std::fmt;

/// A ggml tensor element type (`enum ggml_type`), numbered as in ggml.h.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0,
    Q2_0,
}

/// Why a type id from a file is not a [`GgmlType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeIdError {
    /// The id was used by an old ggml and has since been removed (the name it had is given).
    Retired { id: u32, former_name: &'static str },
    /// No ggml version known to this reader assigns the id.
    Unknown { id: u32 },
}

impl fmt::Display for TypeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeIdError::Retired { id, former_name } => {
                write!(f, "ggml type id {id} ({former_name}) was retired from ggml and is not readable")
            }
            TypeIdError::Unknown { id } => write!(f, "unknown ggml type id {id}"),
        }
    }
}

impl std::error::Error for TypeIdError {}

/// (type, id, name, elements per block, bytes per block), in id order.
const TABLE: &[(GgmlType, u32, &str, u64, u64)] = &[
    (GgmlType::F32, 0, "F32", 1, 4),
    (GgmlType::F16, 1, "F16", 1, 2),
    (GgmlType::Q4_0, 2, "Q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "Q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "Q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "Q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "Q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "Q8_1", 32, 36),
    (GgmlType::Q2_K, 10, "Q2_K", 256, 84),
    (GgmlType::Q3_K, 11, "Q3_K", 256, 110),
    (GgmlType::Q4_K, 12, "Q4_K", 256, 144),
    (GgmlType::Q5_K, 13, "Q5_K", 256, 176),
    (GgmlType::Q6_K, 14, "Q6_K", 256, 210),
    (GgmlType::Q8_K, 15, "Q8_K", 256, 292),
    (GgmlType::IQ2_XXS, 16, "IQ2_XXS", 256, 66),
    (GgmlType::IQ2_XS, 17, "IQ2_XS", 256, 74),
    (GgmlType::IQ3_XXS, 18, "IQ3_XXS", 256, 98),
    (GgmlType::IQ1_S, 19, "IQ1_S", 256, 50),
    (GgmlType::IQ4_NL, 20, "IQ4_NL", 32, 18),
    (GgmlType::IQ3_S, 21, "IQ3_S", 256, 110),
    (GgmlType::IQ2_S, 22, "IQ2_S", 256, 82),
    (GgmlType::IQ4_XS, 23, "IQ4_XS", 256, 136),
    (GgmlType::I8, 24, "I8", 1, 1),
    (GgmlType::I16, 25, "I16", 1, 2),
    (GgmlType::I32, 26, "I32", 1, 4),
    (GgmlType::I64, 27, "I64", 1, 8),
    (GgmlType::F64, 28, "F64", 1, 8),
    (GgmlType::IQ1_M, 29, "IQ1_M", 256, 56),
    (GgmlType::BF16, 30, "BF16", 1, 2),
    (GgmlType::TQ1_0, 34, "TQ1_0", 256, 54),
    (GgmlType::TQ2_0, 35, "TQ2_0", 256, 66),
    (GgmlType::MXFP4, 39, "MXFP4", 32, 17),
    (GgmlType::NVFP4, 40, "NVFP4", 64, 36),
    (GgmlType::Q1_0, 41, "Q1_0", 128, 18),
    (GgmlType::Q2_0, 42, "Q2_0", 64, 18),
];

/// Ids that ggml once assigned and then removed, with the name they had.
const RETIRED: &[(u32, &str)] = &[
    (4, "Q4_2"),
    (5, "Q4_3"),
    (31, "Q4_0_4_4"),
    (32, "Q4_0_4_8"),
    (33, "Q4_0_8_8"),
    (36, "IQ4_NL_4_4"),
    (37, "IQ4_NL_4_8"),
    (38, "IQ4_NL_8_8"),
];

impl GgmlType {
    /// Every known type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|row| row.0)
    }

    /// The type with this id, or why there is none.
    pub fn from_id(id: u32) -> Result<GgmlType, TypeIdError> {
        if let Some(row) = TABLE.iter().find(|row| row.1 == id) {
            return Ok(row.0);
        }
        match RETIRED.iter().find(|r| r.0 == id) {
            Some(&(id, former_name)) => Err(TypeIdError::Retired { id, former_name }),
            None => Err(TypeIdError::Unknown { id }),
        }
    }

    /// Looks a type up by its ggml name (case-insensitive), e.g. `"q8_0"`.
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TABLE.iter().find(|row| row.2.eq_ignore_ascii_case(name)).map(|row| row.0)
    }

    fn row(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        // Every variant has exactly one row; the table is checked by a unit test.
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The id written in GGUF tensor infos.
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// ggml's name for the type (`"Q8_0"`, `"BF16"`, ...).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Elements per block (1 for plain element types).
    pub fn block_size(self) -> u64 {
        self.row().3
    }

    /// Bytes per block (bytes per element for plain element types).
    pub fn block_bytes(self) -> u64 {
        self.row().4
    }

    /// Bytes of one row of `ne0` elements, or `None` if `ne0` is not a multiple of the block size or the
    /// size overflows.
    pub fn row_bytes(self, ne0: u64) -> Option<u64> {
        if !ne0.is_multiple_of(self.block_size()) {
            return None;
        }
        (ne0 / self.block_size()).checked_mul(self.block_bytes())
    }

    /// Bytes of a tensor with dimensions `ne` (ggml order, `ne[0]` fastest), or `None` if the row length is
    /// not a multiple of the block size or the size overflows `u64`.
    pub fn tensor_bytes(self, ne: &[u64]) -> Option<u64> {
        let ne0 = ne.first().copied().unwrap_or(1);
        let rows = ne.iter().skip(1).try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        self.row_bytes(ne0)?.checked_mul(rows)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut ids: Vec<u32> = TABLE.iter().map(|r| r.1).collect();
        ids.dedup();
        assert_eq!(ids.len(), TABLE.len(), "ids must be unique and sorted");
        for ty in GgmlType::all() {
            assert_eq!(GgmlType::from_id(ty.id()), Ok(ty));
            assert_eq!(GgmlType::from_name(ty.name()), Some(ty));
            assert!(ty.block_size() > 0 && ty.block_bytes() > 0);
        }
        for &(id, _) in RETIRED {
            assert!(matches!(GgmlType::from_id(id), Err(TypeIdError::Retired { .. })));
        }
    }

    #[test]
    fn ids_match_ggml() {
        assert_eq!(GgmlType::F32.id(), 0);
        assert_eq!(GgmlType::F16.id(), 1);
        assert_eq!(GgmlType::Q8_0.id(), 8);
        assert_eq!(GgmlType::IQ2_XXS.id(), 16);
        assert_eq!(GgmlType::IQ3_XXS.id(), 18);
        assert_eq!(GgmlType::BF16.id(), 30);
        assert_eq!(GgmlType::MXFP4.id(), 39);
        assert_eq!(GgmlType::from_id(43), Err(TypeIdError::Unknown { id: 43 }));
        assert_eq!(GgmlType::from_id(u32::MAX), Err(TypeIdError::Unknown { id: u32::MAX }));
    }

    #[test]
    fn sizes() {
        assert_eq!(GgmlType::Q8_0.tensor_bytes(&[128, 3]), Some(4 * 34 * 3));
        assert_eq!(GgmlType::F16.tensor_bytes(&[5, 7]), Some(70));
        assert_eq!(GgmlType::Q4_K.tensor_bytes(&[512]), Some(288));
        assert_eq!(GgmlType::Q8_0.tensor_bytes(&[33]), None);
        assert_eq!(GgmlType::F32.tensor_bytes(&[1 << 40, 1 << 40]), None);
        assert_eq!(GgmlType::F32.tensor_bytes(&[]), Some(4));
    }
}
