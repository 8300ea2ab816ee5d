//! The in-place packer against independent whole-matrix packers written here from the layout
//! description of `formats` (`pack_f16_bytes`, `repack_q8_0`, `pack_f32` of `dequantize`), which
//! are checked element by element against that description first.

use gpu_core::WriteOnly;
use half::f16;

use super::{pack_matrices, pack_matrix, pack_row_blocks, row_block_packings, MatrixBytes, Packing, SourceMatrix};
use crate::formats::{
    dequantize, encode, q8_quant_words, quantize_q8_0, row_blocks, WeightFormat, Q8_0_BLOCK, Q8_0_BLOCK_BYTES,
};
use crate::testing::Rng;

fn pad16(mut words: Vec<u32>) -> Vec<u32> {
    words.resize(words.len().next_multiple_of(4), 0);
    words
}

/// F32 values as GPU words (bit patterns), padded to a multiple of 16 bytes.
fn pack_f32(values: &[f32]) -> Vec<u32> {
    pad16(values.iter().map(|v| v.to_bits()).collect())
}

/// Stored F16 bytes as GPU words (two halves per word, low half first), zero-padded to a
/// multiple of 16 bytes.
fn pack_f16_bytes(bytes: &[u8]) -> Vec<u32> {
    pad16(
        bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect(),
    )
}

/// Stored Q8_0 blocks of a `rows` x `k` matrix as the GPU layout: every quant, then every scale.
fn repack_q8_0(bytes: &[u8], rows: usize, k: usize) -> Vec<u32> {
    assert_eq!(bytes.len(), WeightFormat::Q8_0.stored_bytes(rows * k));
    let blocks = || bytes.chunks_exact(Q8_0_BLOCK_BYTES);
    let quants: Vec<u8> = blocks().flat_map(|b| b[2..].to_vec()).collect();
    let scales: Vec<u16> = blocks().map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    let mut words: Vec<u32> = quants.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    words.extend(scales.chunks(2).map(|c| c[0] as u32 | (*c.get(1).unwrap_or(&0) as u32) << 16));
    pad16(words)
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    Rng::new(seed).vec(n, 2.0)
}

/// Random matrices: (format, rows, k, GGUF bytes). Row lengths and counts include 1 and odd
/// values (F16 stacks whose byte lengths are not multiples of 4).
fn random_stack(rng: &mut Rng, stored: &[WeightFormat]) -> Vec<(WeightFormat, usize, usize, Vec<u8>)> {
    stored
        .iter()
        .map(|&format| {
            let rows = 1 + (rng.next_u64() % 9) as usize;
            let k = match format {
                WeightFormat::Q8_0 => Q8_0_BLOCK * (1 + (rng.next_u64() % 4) as usize),
                _ => 1 + (rng.next_u64() % 70) as usize,
            };
            let values = rng.vec(rows * k, 1.5);
            (format, rows, k, encode(format, &values).unwrap())
        })
        .collect()
}

fn sources(stack: &[(WeightFormat, usize, usize, Vec<u8>)]) -> Vec<SourceMatrix<'_>> {
    stack.iter().map(|(format, rows, k, bytes)| SourceMatrix { format: *format, bytes, rows: *rows, k: *k }).collect()
}

/// The layout the independent packers give for the stack, packed as `format`.
fn expected_words(format: WeightFormat, stack: &[(WeightFormat, usize, usize, Vec<u8>)]) -> Vec<u32> {
    let concat: Vec<u8> = stack.iter().flat_map(|s| s.3.iter().copied()).collect();
    match format {
        WeightFormat::F16 => pack_f16_bytes(&concat),
        WeightFormat::Q8_0 => repack_q8_0(&concat, concat.len() / 34, 32),
        WeightFormat::F32 => {
            let values: Vec<f32> = stack.iter().flat_map(|(f, _, _, b)| dequantize(*f, b).unwrap()).collect();
            pack_f32(&values)
        }
    }
}

/// Writes `words` through `write_words` in pieces cut at random points.
fn pieces(p: &Packing<'_>, rng: &mut Rng) -> Vec<u32> {
    let mut out = vec![0xdead_beef; p.words()];
    let mut at = 0;
    while at < out.len() {
        let n = (1 + rng.next_u64() as usize % 23).min(out.len() - at);
        p.write_words(at, &mut out[at..at + n]).unwrap();
        at += n;
    }
    out
}

#[test]
fn every_range_matches_the_whole_matrix_packers() {
    let mut rng = Rng::new(11);
    for case in 0..60 {
        let format = WeightFormat::ALL[case % 3];
        let count = 1 + case % 4;
        let stack = random_stack(&mut rng, &vec![format; count]);
        let packing = Packing::from_sources(format, &sources(&stack)).unwrap();
        let expected = expected_words(format, &stack);
        assert_eq!(packing.words(), expected.len(), "case {case}");
        assert_eq!(packing.to_words().unwrap(), expected, "case {case} {format:?}");
        assert_eq!(pieces(&packing, &mut rng), expected, "case {case} {format:?} in pieces");
    }
}

#[test]
fn f32_layouts_widen_mixed_formats_exactly() {
    let mut rng = Rng::new(12);
    for case in 0..30 {
        let stored: Vec<WeightFormat> =
            (0..1 + case % 4).map(|_| WeightFormat::ALL[rng.next_u64() as usize % 3]).collect();
        let stack = random_stack(&mut rng, &stored);
        let packing = Packing::from_sources(WeightFormat::F32, &sources(&stack)).unwrap();
        let expected = expected_words(WeightFormat::F32, &stack);
        assert_eq!(packing.to_words().unwrap(), expected, "case {case} {stored:?}");
        assert_eq!(pieces(&packing, &mut rng), expected, "case {case} {stored:?} in pieces");
    }
}

#[test]
fn mapped_memory_is_written_in_chunks_from_any_offset() {
    // Larger than one 64 KiB chunk, with several matrices: a Q8_0 stack of 3 x 2048 x 96.
    // Then an F32 layout widened from all three formats.
    let mut rng = Rng::new(13);
    let cases = WeightFormat::ALL.map(|f| (f, [f; 3])).into_iter().chain([(WeightFormat::F32, WeightFormat::ALL)]);
    for (format, stored) in cases {
        let stack: Vec<_> = stored
            .iter()
            .map(|&s| {
                let k = if s == WeightFormat::Q8_0 { 96 } else { 97 };
                (s, 2048, k, encode(s, &rng.vec(2048 * k, 1.0)).unwrap())
            })
            .collect();
        let packing = Packing::from_sources(format, &sources(&stack)).unwrap();
        let expected: Vec<u8> = bytemuck::cast_slice(&expected_words(format, &stack)).to_vec();
        assert!(expected.len() > 4 * super::CHUNK_WORDS, "{format:?}");
        let mut mapped = vec![0xaau8; expected.len()];
        // Three pieces, as threads filling one buffer would write them.
        let cuts = [0, 4 * 12_345, 4 * 70_001, expected.len()];
        for w in cuts.windows(2) {
            packing.write_to(w[0] as u64, WriteOnly::from_mut(&mut mapped[w[0]..w[1]])).unwrap();
        }
        assert!(mapped == expected, "{format:?} from {stored:?}");
    }
}

#[test]
fn row_blocks_pack_as_separate_layouts() {
    let mut rng = Rng::new(14);
    for format in WeightFormat::ALL {
        let (rows, k) = (1000, 96);
        let bytes = encode(format, &rng.vec(rows * k, 1.0)).unwrap();
        let blocks = row_blocks(format, rows, k, 40_000).unwrap();
        let matrix = SourceMatrix { format, bytes: &bytes, rows, k };
        let packings = row_block_packings(format, matrix, &blocks).unwrap();
        let widened = row_block_packings(WeightFormat::F32, matrix, &blocks).unwrap();
        let mut at = 0;
        for ((p, w), &n) in packings.iter().zip(&widened).zip(&blocks) {
            let block = (format, n, k, bytes[at..at + format.stored_bytes(n * k)].to_vec());
            assert_eq!(p.to_words().unwrap(), expected_words(format, std::slice::from_ref(&block)));
            assert_eq!(w.to_words().unwrap(), expected_words(WeightFormat::F32, &[block]));
            assert!(p.bytes() <= 40_000);
            at += format.stored_bytes(n * k);
        }
        assert!(row_block_packings(format, matrix, &blocks[1..]).is_err());
    }
}

#[test]
fn bad_inputs_are_errors() {
    let q = encode(WeightFormat::Q8_0, &[0.5; 64]).unwrap();
    let h = encode(WeightFormat::F16, &[0.5; 64]).unwrap();
    let src = |format, bytes, rows, k| SourceMatrix { format, bytes, rows, k };
    // Only F32 layouts convert.
    assert!(Packing::from_sources(WeightFormat::F16, &[src(WeightFormat::Q8_0, &q, 2, 32)]).is_err());
    assert!(Packing::from_sources(WeightFormat::F32, &[src(WeightFormat::Q8_0, &q, 2, 32)]).is_ok());
    // Byte lengths and row lengths are checked against the stored format.
    assert!(Packing::from_sources(WeightFormat::F32, &[src(WeightFormat::F16, &h, 3, 32)]).is_err());
    assert!(Packing::from_sources(WeightFormat::Q8_0, &[src(WeightFormat::Q8_0, &q, 4, 16)]).is_err());
    assert!(Packing::from_sources(WeightFormat::F16, &[src(WeightFormat::F16, &h, 64, 0)]).is_err());
    assert!(row_block_packings(WeightFormat::F16, src(WeightFormat::F16, &h, 3, 32), &[1, 2]).is_err());
    // Ranges past the end and unaligned offsets.
    let p = Packing::from_sources(WeightFormat::Q8_0, &[src(WeightFormat::Q8_0, &q, 2, 32)]).unwrap();
    assert_eq!(p.words(), 20);
    assert!(p.write_words(18, &mut [0; 3]).is_err());
    assert!(p.write_words(17, &mut [0; 3]).is_ok());
    let mut bytes = [0u8; 8];
    assert!(p.write_to(2, WriteOnly::from_mut(&mut bytes[..])).is_err());
    assert!(p.write_to(4, WriteOnly::from_mut(&mut bytes[..6])).is_err());
    assert!(p.write_to(76, WriteOnly::from_mut(&mut bytes[..])).is_err());
}

#[test]
fn f32_words_are_bit_patterns_padded_to_16_bytes() {
    let v = values(5, 1);
    let w = pack_f32(&v);
    assert_eq!(w.len(), 8);
    for i in 0..5 {
        assert_eq!(f32::from_bits(w[i]), v[i]);
    }
    assert!(w[5..].iter().all(|&x| x == 0));
    assert_eq!(w.len(), WeightFormat::F32.gpu_words(5));
}

#[test]
fn f16_element_e_is_in_word_e_over_2_low_half_first() {
    let v = values(7, 2);
    let bytes = encode(WeightFormat::F16, &v).unwrap();
    let w = pack_f16_bytes(&bytes);
    assert_eq!(w.len(), WeightFormat::F16.gpu_words(7));
    for (e, &x) in v.iter().enumerate() {
        let half = if e % 2 == 0 { w[e / 2] & 0xffff } else { w[e / 2] >> 16 };
        assert_eq!(f16::from_bits(half as u16), f16::from_f32(x));
    }
    assert_eq!(dequantize(WeightFormat::F16, &bytes).unwrap()[3], f16::from_f32(v[3]).to_f32());
}

#[test]
fn q8_0_repack_puts_quants_then_scales() {
    let (rows, k) = (3, 64); // 6 blocks: 48 quant words then 3 scale words
    let v = values(rows * k, 4);
    let bytes = quantize_q8_0(&v).unwrap();
    let w = repack_q8_0(&bytes, rows, k);
    assert_eq!(w.len(), WeightFormat::Q8_0.gpu_words(rows * k));
    let nq = q8_quant_words(rows * k);
    assert_eq!(nq, 48);
    for e in 0..rows * k {
        let b = e / 32;
        assert_eq!((w[e / 4] >> (8 * (e % 4))) as u8, bytes[b * 34 + 2 + e % 32], "quant {e}");
    }
    for b in 0..rows * k / 32 {
        let half = if b % 2 == 0 { w[nq + b / 2] & 0xffff } else { w[nq + b / 2] >> 16 };
        assert_eq!(half as u16, u16::from_le_bytes([bytes[b * 34], bytes[b * 34 + 1]]), "scale {b}");
    }
}

#[test]
fn packed_matrices_keep_the_flat_order() {
    // Two Q8_0 matrices with different row lengths (3 blocks, then 2 blocks).
    let (a, b) = (values(96, 5), values(2 * 32, 6));
    let (qa, qb) = (quantize_q8_0(&a).unwrap(), quantize_q8_0(&b).unwrap());
    let packed = pack_matrices(
        WeightFormat::Q8_0,
        &[MatrixBytes { bytes: &qa, rows: 1, k: 96 }, MatrixBytes { bytes: &qb, rows: 2, k: 32 }],
    )
    .unwrap();
    let mut both = qa.clone();
    both.extend_from_slice(&qb);
    assert_eq!(packed, repack_q8_0(&both, 5, 32));
    let fa = encode(WeightFormat::F16, &a).unwrap();
    let fb = encode(WeightFormat::F16, &b).unwrap();
    let p16 = pack_matrices(
        WeightFormat::F16,
        &[MatrixBytes { bytes: &fa, rows: 3, k: 32 }, MatrixBytes { bytes: &fb, rows: 1, k: 64 }],
    )
    .unwrap();
    assert_eq!(p16, pack_f16_bytes(&[fa, fb].concat()));
}

#[test]
fn row_blocks_fit_the_binding_and_cover_every_row() {
    for format in WeightFormat::ALL {
        let (rows, k) = (1000, 96);
        let max = 40_000u64;
        let blocks = row_blocks(format, rows, k, max).unwrap();
        assert_eq!(blocks.iter().sum::<usize>(), rows);
        assert!(blocks.len() > 1);
        let bytes = encode(format, &values(rows * k, 7)).unwrap();
        let parts = pack_row_blocks(format, &bytes, k, &blocks).unwrap();
        let mut flat = Vec::new();
        for (part, &n) in parts.iter().zip(&blocks) {
            assert!(part.len() as u64 * 4 <= max, "{format:?}: {} bytes", part.len() * 4);
            assert_eq!(part.len(), format.gpu_words(n * k));
            flat.extend(dequantize_gpu(format, part, n * k));
        }
        assert_eq!(flat, dequantize(format, &bytes).unwrap());
        assert_eq!(row_blocks(format, rows, k, 1 << 30).unwrap(), vec![rows]);
        assert!(row_blocks(format, rows, k, 64).is_err());
    }
}

/// Decodes a GPU layout back to values (the inverse of the packers, for the tests).
fn dequantize_gpu(format: WeightFormat, words: &[u32], n: usize) -> Vec<f32> {
    let half = |i: usize| f16::from_bits((words[i / 2] >> (16 * (i % 2))) as u16).to_f32();
    match format {
        WeightFormat::F32 => words[..n].iter().map(|&w| f32::from_bits(w)).collect(),
        WeightFormat::F16 => (0..n).map(half).collect(),
        WeightFormat::Q8_0 => {
            let nq = q8_quant_words(n);
            (0..n)
                .map(|e| {
                    let q = (words[e / 4] >> (8 * (e % 4))) as u8 as i8 as f32;
                    let b = e / 32;
                    let d = f16::from_bits((words[nq + b / 2] >> (16 * (b % 2))) as u16).to_f32();
                    d * q
                })
                .collect()
        }
    }
}

#[test]
fn matrices_of_another_format_are_errors() {
    assert!(pack_matrix(WeightFormat::F16, &[0u8; 6], 2, 2).is_err());
    let q = encode(WeightFormat::Q8_0, &[0.5; 32]).unwrap();
    let e = Packing::from_sources(
        WeightFormat::F16,
        &[SourceMatrix { format: WeightFormat::Q8_0, bytes: &q, rows: 1, k: 32 }],
    );
    assert!(e.unwrap_err().to_string().contains("a Q8_0 matrix cannot be packed as F16"));
}
