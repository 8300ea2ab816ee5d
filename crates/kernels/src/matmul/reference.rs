//! The CPU reference of matmul is the projection reference of matvec, for T tokens.

pub use crate::matvec::reference::projection;
