//! `dequantize` against gguf-py's `gguf.quants.dequantize` (the package llama.cpp ships, checked by the
//! golden README against llama.cpp's own dequantization), bit for bit, on random blocks of every format.
//!
//! The blocks are random bytes with one constraint: every f16 field (the scales `d`, `dmin`, `m`, and
//! every value of an F16 tensor) is made finite by clearing one exponent bit where all five are set, so
//! that no product is a NaN whose payload two correct implementations may spell differently. Every
//! quant, scale and index byte is unconstrained. F32 and BF16 values are raw bits (NaNs included): both
//! sides only move bits.
//!
//! Needs `python3` with the `gguf` package (`pip install gguf==0.19.0`). Without it the test prints
//! SKIPPED, and fails if `RWKV_REQUIRE` lists `gguf-py` (test_data::Requirement::GgufPy).

use std::process::Command;

use ggml_quants::{dequantize_to_vec, QuantFormat};
use test_data::Requirement;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dequant_ref.py");

/// Byte offsets of the f16 fields of one block.
fn f16_fields(format: QuantFormat) -> Vec<usize> {
    use QuantFormat::*;
    match format {
        F32 | BF16 => vec![],
        F16 | Q4_0 | Q5_0 | Q8_0 | IQ4_NL | IQ4_XS => vec![0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => vec![0, 2],
        Q2_K => vec![80, 82],
        Q3_K => vec![108],
        Q6_K => vec![208],
    }
}

/// splitmix64: a fixed, seedable byte source.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// `blocks` random blocks of `format`, with finite f16 fields.
fn random_blocks(format: QuantFormat, blocks: usize, rng: &mut Bytes) -> Vec<u8> {
    let mut bytes = vec![0u8; blocks * format.block_bytes()];
    rng.fill(&mut bytes);
    for block in bytes.chunks_exact_mut(format.block_bytes()) {
        for at in f16_fields(format) {
            // The high byte holds the sign, the 5 exponent bits and 2 mantissa bits.
            if block[at + 1] & 0x7c == 0x7c {
                block[at + 1] &= !0x40;
            }
        }
    }
    bytes
}

/// The gguf-py reference, or why it cannot run.
fn python_with_gguf() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("python3 cannot import gguf and numpy: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

#[test]
fn dequantize_matches_gguf_py_bit_for_bit() {
    let test = "dequantize_matches_gguf_py_bit_for_bit";
    if test_data::require(Requirement::GgufPy, test, python_with_gguf()).is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ggml-quants-gguf-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Bytes(0x6767_6d6c_7175_616e);
    let mut inputs = Vec::new();
    for format in QuantFormat::ALL {
        // 16,384 values per format: 512 blocks of 32 or 64 blocks of 256.
        let blocks = 16_384 / format.block_elements();
        let bytes = random_blocks(format, blocks, &mut rng);
        std::fs::write(dir.join(format!("{}.bin", format.name())), &bytes).unwrap();
        inputs.push((format, bytes));
    }

    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(&dir)
        .args(QuantFormat::ALL.iter().map(|f| f.name()))
        .output()
        .expect("running the gguf-py script");
    assert!(out.status.success(), "dequant_ref.py failed: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("reference: {}", String::from_utf8_lossy(&out.stdout).trim());

    let mut failures = Vec::new();
    for (format, bytes) in &inputs {
        let reference: Vec<u32> = std::fs::read(dir.join(format!("{}.f32", format.name())))
            .unwrap()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let ours: Vec<u32> = dequantize_to_vec(*format, bytes).unwrap().iter().map(|v| v.to_bits()).collect();
        assert_eq!(ours.len(), reference.len(), "{format}: value count");
        let differing: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != reference[i]).collect();
        if let Some(&i) = differing.first() {
            let block = i / format.block_elements();
            failures.push(format!(
                "{format}: {} of {} values differ; value {i} (block {block}): ours {} ({:#010x}), gguf-py {} ({:#010x})",
                differing.len(),
                ours.len(),
                f32::from_bits(ours[i]),
                ours[i],
                f32::from_bits(reference[i]),
                reference[i],
            ));
        }
        eprintln!("{format}: {} values compared", ours.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "dequantize differs from gguf-py:\n{}", failures.join("\n"));
}
