//! The in-place packer against an independent whole-matrix packer written from the layout's
//! description (`formats`), and F32 layouts against `ggml_quants`'s decoding.

use gpu_core::WriteOnly;

use super::{pack_matrices, pack_matrix, pack_row_blocks, row_block_packings, MatrixBytes, Packing, SourceMatrix};
use crate::formats::{dequantize, encode, row_blocks, WeightFormat};
use crate::testing::Rng;

/// Random matrices: (format, rows, k, stored bytes). Row lengths and counts include 1 and odd
/// values (F16 stacks whose byte lengths are not multiples of 4).
fn random_stack(rng: &mut Rng, stored: &[WeightFormat]) -> Vec<(WeightFormat, usize, usize, Vec<u8>)> {
    stored
        .iter()
        .map(|&format| {
            let rows = 1 + (rng.next_u64() % 9) as usize;
            let k = match format.block_elements() {
                1 => 1 + (rng.next_u64() % 70) as usize,
                b => b * (1 + (rng.next_u64() % 3) as usize),
            };
            let values = rng.vec(rows * k, 1.5);
            (format, rows, k, encode(format, &values).unwrap())
        })
        .collect()
}

fn sources(stack: &[(WeightFormat, usize, usize, Vec<u8>)]) -> Vec<SourceMatrix<'_>> {
    stack.iter().map(|(format, rows, k, bytes)| SourceMatrix { format: *format, bytes, rows: *rows, k: *k }).collect()
}

/// Little-endian words of `bytes`, zero-padded to a multiple of 16 bytes.
fn words_of(mut bytes: Vec<u8>) -> Vec<u32> {
    bytes.resize(bytes.len().next_multiple_of(16), 0);
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The layout of the stack packed as `format`, built whole: F32 as the decoded values' bits;
/// otherwise every block without its split-off `d`, then those `d` in block order (or the stored
/// bytes as they are where the format has no `d` region).
fn expected_words(format: WeightFormat, stack: &[(WeightFormat, usize, usize, Vec<u8>)]) -> Vec<u32> {
    if format == WeightFormat::F32 {
        let values: Vec<f32> = stack.iter().flat_map(|(f, _, _, b)| dequantize(*f, b).unwrap()).collect();
        return words_of(values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
    let stored: Vec<u8> = stack.iter().flat_map(|s| s.3.iter().copied()).collect();
    let Some(at) = format.split_d() else { return words_of(stored) };
    let mut bodies = Vec::new();
    let mut ds = Vec::new();
    for block in stored.chunks_exact(format.block_bytes()) {
        bodies.extend_from_slice(&block[..at]);
        bodies.extend_from_slice(&block[at + 2..]);
        ds.extend_from_slice(&block[at..at + 2]);
    }
    bodies.extend(ds);
    words_of(bodies)
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
    for case in 0..90 {
        let format = WeightFormat::ALL[case % WeightFormat::ALL.len()];
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
    for case in 0..45 {
        let stored: Vec<WeightFormat> =
            (0..1 + case % 4).map(|_| WeightFormat::ALL[rng.next_u64() as usize % WeightFormat::ALL.len()]).collect();
        let stack = random_stack(&mut rng, &stored);
        let packing = Packing::from_sources(WeightFormat::F32, &sources(&stack)).unwrap();
        let expected = expected_words(WeightFormat::F32, &stack);
        assert_eq!(packing.to_words().unwrap(), expected, "case {case} {stored:?}");
        assert_eq!(pieces(&packing, &mut rng), expected, "case {case} {stored:?} in pieces");
    }
}

#[test]
fn mapped_memory_is_written_in_chunks_from_any_offset() {
    // Larger than one 64 KiB chunk, with several matrices: stacks of 3 x 1024 x K of each
    // format. Then an F32 layout widened from several formats.
    let mut rng = Rng::new(13);
    let mixed = [WeightFormat::F16, WeightFormat::Q8_0, WeightFormat::Q4_K];
    let cases = WeightFormat::ALL.map(|f| (f, [f; 3])).into_iter().chain([(WeightFormat::F32, mixed)]);
    for (format, stored) in cases {
        let stack: Vec<_> = stored
            .iter()
            .map(|&s| {
                let k = if s.block_elements() == 1 { 97 } else { 256 };
                (s, 1024, k, encode(s, &rng.vec(1024 * k, 1.0)).unwrap())
            })
            .collect();
        let packing = Packing::from_sources(format, &sources(&stack)).unwrap();
        let expected: Vec<u8> = bytemuck::cast_slice(&expected_words(format, &stack)).to_vec();
        assert!(expected.len() > 4 * super::CHUNK_WORDS, "{format:?}");
        let mut mapped = vec![0xaau8; expected.len()];
        // Three pieces, as threads filling one buffer would write them.
        let cuts = [0, 4 * 12_345, 4 * 30_001, expected.len()];
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
        let (rows, k) = (150, 256);
        let bytes = encode(format, &rng.vec(rows * k, 1.0)).unwrap();
        let max = format.gpu_words(rows * k) as u64 * 4 / 3;
        let blocks = row_blocks(format, rows, k, max).unwrap();
        let matrix = SourceMatrix { format, bytes: &bytes, rows, k };
        let packings = row_block_packings(format, matrix, &blocks).unwrap();
        let widened = row_block_packings(WeightFormat::F32, matrix, &blocks).unwrap();
        let mut at = 0;
        for ((p, w), &n) in packings.iter().zip(&widened).zip(&blocks) {
            let block = (format, n, k, bytes[at..at + format.stored_bytes(n * k)].to_vec());
            assert_eq!(p.to_words().unwrap(), expected_words(format, std::slice::from_ref(&block)));
            assert_eq!(w.to_words().unwrap(), expected_words(WeightFormat::F32, &[block]));
            assert!(p.bytes() <= max);
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
    let k4 = encode(WeightFormat::Q4_K, &[0.5; 256]).unwrap();
    assert!(Packing::from_sources(WeightFormat::Q4_K, &[src(WeightFormat::Q4_K, &k4, 2, 128)]).is_err());
    assert!(Packing::from_sources(WeightFormat::Q4_K, &[src(WeightFormat::Q4_K, &k4, 1, 256)]).is_ok());
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

/// The stored blocks of a GPU layout of `n` values (the inverse of the packing, written from
/// the layout's description): bodies, then the split-off `d` put back in place.
fn unpack_gpu(format: WeightFormat, words: &[u32], n: usize) -> Vec<u8> {
    let bytes: &[u8] = bytemuck::cast_slice(words);
    let blocks = n / format.block_elements();
    let body = format.body_bytes();
    let mut out = Vec::with_capacity(format.stored_bytes(n));
    for b in 0..blocks {
        let block_body = &bytes[b * body..(b + 1) * body];
        match format.split_d() {
            None => out.extend_from_slice(block_body),
            Some(at) => {
                let d = &bytes[4 * format.body_words(n) + 2 * b..][..2];
                out.extend_from_slice(&block_body[..at]);
                out.extend_from_slice(d);
                out.extend_from_slice(&block_body[at..]);
            }
        }
    }
    out
}

#[test]
fn the_whole_matrix_packer_follows_the_layout_description() {
    // Element by element for the element formats; for block formats, unpacking the description's
    // bodies and `d` gives back the stored blocks.
    let mut rng = Rng::new(15);
    for format in WeightFormat::ALL {
        let n = 3 * format.block_elements().max(7);
        let bytes = encode(format, &rng.vec(n, 1.0)).unwrap();
        let words = expected_words(format, &[(format, 1, n, bytes.clone())]);
        assert_eq!(words.len(), format.gpu_words(n), "{format:?}");
        let values = dequantize(format, &bytes).unwrap();
        match format {
            WeightFormat::F32 => assert!(words[..n].iter().zip(&values).all(|(w, v)| *w == v.to_bits())),
            WeightFormat::F16 | WeightFormat::BF16 => {
                for e in 0..n {
                    let half = (words[e / 2] >> (16 * (e % 2))) as u16;
                    assert_eq!(half, u16::from_le_bytes([bytes[2 * e], bytes[2 * e + 1]]), "{format:?} {e}");
                }
            }
            _ => assert!(unpack_gpu(format, &words, n) == bytes, "{format:?}"),
        }
        assert!(words[format.stored_bytes(n).div_ceil(4)..].iter().all(|&w| w == 0), "{format:?}: padding");
    }
}

#[test]
fn packed_matrices_keep_the_flat_order() {
    // Two matrices with different row lengths (3 blocks, then 2 blocks per row).
    let mut rng = Rng::new(16);
    for format in [WeightFormat::Q8_0, WeightFormat::Q6_K, WeightFormat::F16, WeightFormat::Q4_1] {
        let b = format.block_elements().max(32);
        let (a, c) = (encode(format, &rng.vec(3 * b, 1.0)).unwrap(), encode(format, &rng.vec(4 * b, 1.0)).unwrap());
        let packed = pack_matrices(
            format,
            &[MatrixBytes { bytes: &a, rows: 1, k: 3 * b }, MatrixBytes { bytes: &c, rows: 2, k: 2 * b }],
        )
        .unwrap();
        assert_eq!(packed, expected_words(format, &[(format, 5, b, [a, c].concat())]), "{format:?}");
    }
}

#[test]
fn row_blocks_fit_the_binding_and_cover_every_row() {
    for format in WeightFormat::ALL {
        let k = 256;
        let rows = 160;
        let max = format.gpu_words(rows * k) as u64 * 4 / 3;
        let blocks = row_blocks(format, rows, k, max).unwrap();
        assert_eq!(blocks.iter().sum::<usize>(), rows);
        assert!(blocks.len() > 1);
        let bytes = encode(format, &Rng::new(7).vec(rows * k, 2.0)).unwrap();
        let parts = pack_row_blocks(format, &bytes, k, &blocks).unwrap();
        let mut stored = Vec::new();
        for (part, &n) in parts.iter().zip(&blocks) {
            assert!(part.len() as u64 * 4 <= max, "{format:?}: {} bytes", part.len() * 4);
            assert_eq!(part.len(), format.gpu_words(n * k));
            stored.extend(unpack_gpu(format, part, n * k));
        }
        assert!(stored == bytes, "{format:?}: the row blocks hold the stored bytes");
        assert_eq!(row_blocks(format, rows, k, 1 << 30).unwrap(), vec![rows]);
        assert!(row_blocks(format, rows, k, 64).is_err());
    }
}

#[test]
fn matrices_of_another_format_are_errors() {
    assert!(pack_matrix(WeightFormat::F16, &[0u8; 6], 2, 2).is_err());
    assert!(pack_matrix(WeightFormat::Q6_K, &[0u8; 210], 1, 128).is_err());
    let q = encode(WeightFormat::Q8_0, &[0.5; 32]).unwrap();
    let e = Packing::from_sources(
        WeightFormat::F16,
        &[SourceMatrix { format: WeightFormat::Q8_0, bytes: &q, rows: 1, k: 32 }],
    );
    assert!(e.unwrap_err().to_string().contains("a Q8_0 matrix cannot be packed as F16"));
}
