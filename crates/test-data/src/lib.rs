//! Test support shared by every crate's tests (a dev-dependency only): the one place that says
//! where the golden reference data lives, and how a test that lacks data or an adapter feature
//! says so.
//!
//! - [`golden_dir`]: the files the default tests need, kept in the repository under
//!   `testdata/golden/` (`RWKV_GOLDEN_DIR` points elsewhere, e.g. at a copy on another machine).
//! - [`quant_dir`]: the larger set of quantized golden models, not kept in the repository; the
//!   folder named by `RWKV_GOLDEN_QUANT_DIR`, if any.
//! - [`require`] / [`skip`]: a test that cannot run prints `SKIPPED <test>: <what is missing>`
//!   and passes, unless `RWKV_REQUIRE` (a comma list of [`Requirement`] names, e.g.
//!   `golden-ext,subgroups`) lists what is missing: then it fails. CI and the GPU machine scripts
//!   set it to what their adapters have, so a missing feature or file cannot pass unnoticed.

use std::fmt;
use std::path::PathBuf;

/// Overrides [`golden_dir`].
pub const GOLDEN_DIR_ENV: &str = "RWKV_GOLDEN_DIR";
/// Names the folder of the quantized golden models ([`quant_dir`]).
pub const QUANT_DIR_ENV: &str = "RWKV_GOLDEN_QUANT_DIR";
/// A comma list of [`Requirement`] names whose absence fails a test instead of skipping it.
pub const REQUIRE_ENV: &str = "RWKV_REQUIRE";

/// Something a test may need that a machine may lack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The quantized golden models of `RWKV_GOLDEN_QUANT_DIR`.
    GoldenExt,
    /// An adapter with cooperative matrices (tensor cores).
    Coop,
    /// An adapter with subgroup operations.
    Subgroups,
    /// Python with llama.cpp's `gguf` package (gguf-py), the dequantization reference.
    GgufPy,
    /// Python with the official `openai` client package, the HTTP server's client.
    OpenaiPy,
}

impl Requirement {
    pub const ALL: [Requirement; 5] =
        [Requirement::GoldenExt, Requirement::Coop, Requirement::Subgroups, Requirement::GgufPy, Requirement::OpenaiPy];

    /// The name used in `RWKV_REQUIRE`.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::GoldenExt => "golden-ext",
            Requirement::Coop => "coop",
            Requirement::Subgroups => "subgroups",
            Requirement::GgufPy => "gguf-py",
            Requirement::OpenaiPy => "openai-py",
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The golden data the default tests read: `RWKV_GOLDEN_DIR` where set, else the repository's
/// `testdata/golden`.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os(GOLDEN_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/golden")),
    }
}

/// A file of [`golden_dir`].
pub fn golden(name: &str) -> PathBuf {
    golden_dir().join(name)
}

/// The quantized golden models (`RWKV_GOLDEN_QUANT_DIR`), or `None` where it is unset or empty.
/// Panics when it names something that is not a folder: a mistyped path must not read as
/// "data absent".
pub fn quant_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(QUANT_DIR_ENV).filter(|d| !d.is_empty())?);
    assert!(dir.is_dir(), "{QUANT_DIR_ENV}={} is not a folder", dir.display());
    Some(dir)
}

/// The items listed in `RWKV_REQUIRE`. Panics on a name that is not a [`Requirement`], so a
/// misspelt requirement cannot silently require nothing.
pub fn required() -> Vec<Requirement> {
    let list = std::env::var(REQUIRE_ENV).unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            Requirement::ALL.into_iter().find(|r| r.name() == name).unwrap_or_else(|| {
                let known: Vec<&str> = Requirement::ALL.iter().map(|r| r.name()).collect();
                panic!("{REQUIRE_ENV} lists {name:?}; known: {}", known.join(", "))
            })
        })
        .collect()
}

/// Whether `RWKV_REQUIRE` lists `item`.
pub fn is_required(item: Requirement) -> bool {
    required().contains(&item)
}

/// `test` cannot run because `item` is missing (`why` says what exactly): prints a visible
/// `SKIPPED` line, or panics where `RWKV_REQUIRE` lists `item`.
pub fn skip(item: Requirement, test: &str, why: &str) {
    if is_required(item) {
        panic!("{test}: {why}; {REQUIRE_ENV} lists {item}, so this test may not be skipped");
    }
    eprintln!("SKIPPED {test}: {why} (missing: {item})");
}

/// `Some(value)` where `found` is `Ok`; otherwise [`skip`]s `test` with the error as the reason
/// and gives `None`.
pub fn require<T, E: fmt::Display>(item: Requirement, test: &str, found: Result<T, E>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(why) => {
            skip(item, test, &why.to_string());
            None
        }
    }
}

/// [`quant_dir`] for `test`: skipped (or failed, where `golden-ext` is required) when unset.
pub fn require_quant_dir(test: &str) -> Option<PathBuf> {
    require(Requirement::GoldenExt, test, quant_dir().ok_or_else(|| format!("{QUANT_DIR_ENV} is not set")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_golden_dir_holds_the_golden_models() {
        for name in ["model-f16.gguf", "model-q8_0.gguf", "tokens.json"] {
            assert!(golden(name).is_file(), "{} lacks {name}", golden_dir().display());
        }
    }
}
