//! Hand-built blocks: each test packs random logical fields (scales, mins, quants, indices) into a block
//! following the struct layouts of ggml's `ggml-common.h`, and checks that every value `dequantize`
//! returns is the format's formula of those fields, in ggml's order of operations.

use ggml_quants::{dequantize_to_vec, QuantFormat};
use half::f16;
use proptest::prelude::*;

/// A finite f16 (any sign, normal or subnormal), as stored bits and as its value.
fn finite_f16() -> impl Strategy<Value = f16> {
    any::<u16>().prop_map(|bits| f16::from_bits(if bits & 0x7c00 == 0x7c00 { bits & !0x4000 } else { bits }))
}

const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

fn decode(format: QuantFormat, block: &[u8]) -> Vec<f32> {
    assert_eq!(block.len(), format.block_bytes());
    dequantize_to_vec(format, block).unwrap()
}

fn assert_bits(format: QuantFormat, got: &[f32], want: &[f32]) -> Result<(), TestCaseError> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert_eq!(g.to_bits(), w.to_bits(), "{} value {}: got {}, want {}", format, i, g, w);
    }
    Ok(())
}

/// 32 nibbles packed as ggml's Q4/IQ4_NL blocks do: value j in the low nibble of byte j, value j + 16 in
/// its high nibble.
fn pack_nibbles_32(q: &[u8]) -> Vec<u8> {
    (0..16).map(|j| (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4)).collect()
}

/// The fifth bits of 32 values as Q5_0/Q5_1's `qh` (a little-endian u32, bit j for value j).
fn pack_fifth_bits(q: &[u8]) -> [u8; 4] {
    let bits = q.iter().enumerate().fold(0u32, |acc, (j, &v)| acc | (u32::from(v >> 4 & 1) << j));
    bits.to_le_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn q8_0(d in finite_f16(), q in prop::collection::vec(any::<i8>(), 32)) {
        let mut block = d.to_le_bytes().to_vec();
        block.extend(q.iter().map(|&v| v as u8));
        let want: Vec<f32> = q.iter().map(|&v| v as f32 * d.to_f32()).collect();
        assert_bits(QuantFormat::Q8_0, &decode(QuantFormat::Q8_0, &block), &want)?;
    }

    #[test]
    fn q4_0_and_iq4_nl(d in finite_f16(), q in prop::collection::vec(0u8..16, 32)) {
        let mut block = d.to_le_bytes().to_vec();
        block.extend(pack_nibbles_32(&q));
        let want: Vec<f32> = q.iter().map(|&v| (v as i32 - 8) as f32 * d.to_f32()).collect();
        assert_bits(QuantFormat::Q4_0, &decode(QuantFormat::Q4_0, &block), &want)?;
        let want: Vec<f32> = q.iter().map(|&v| d.to_f32() * f32::from(KVALUES_IQ4NL[v as usize])).collect();
        assert_bits(QuantFormat::IQ4_NL, &decode(QuantFormat::IQ4_NL, &block), &want)?;
    }

    #[test]
    fn q4_1(d in finite_f16(), m in finite_f16(), q in prop::collection::vec(0u8..16, 32)) {
        let mut block = [d.to_le_bytes(), m.to_le_bytes()].concat();
        block.extend(pack_nibbles_32(&q));
        let want: Vec<f32> = q.iter().map(|&v| v as f32 * d.to_f32() + m.to_f32()).collect();
        assert_bits(QuantFormat::Q4_1, &decode(QuantFormat::Q4_1, &block), &want)?;
    }

    #[test]
    fn q5_0(d in finite_f16(), q in prop::collection::vec(0u8..32, 32)) {
        let mut block = d.to_le_bytes().to_vec();
        block.extend(pack_fifth_bits(&q));
        block.extend(pack_nibbles_32(&q));
        let want: Vec<f32> = q.iter().map(|&v| (v as i32 - 16) as f32 * d.to_f32()).collect();
        assert_bits(QuantFormat::Q5_0, &decode(QuantFormat::Q5_0, &block), &want)?;
    }

    #[test]
    fn q5_1(d in finite_f16(), m in finite_f16(), q in prop::collection::vec(0u8..32, 32)) {
        let mut block = [d.to_le_bytes(), m.to_le_bytes()].concat();
        block.extend(pack_fifth_bits(&q));
        block.extend(pack_nibbles_32(&q));
        let want: Vec<f32> = q.iter().map(|&v| v as f32 * d.to_f32() + m.to_f32()).collect();
        assert_bits(QuantFormat::Q5_1, &decode(QuantFormat::Q5_1, &block), &want)?;
    }

    #[test]
    fn q2_k(
        d in finite_f16(),
        dmin in finite_f16(),
        sc in prop::collection::vec(0u8..16, 16),
        m in prop::collection::vec(0u8..16, 16),
        q in prop::collection::vec(0u8..4, 256),
    ) {
        // block_q2_K: scales[16] (scale | min << 4), qs[64], d, dmin. The value e = 128·h + 32·k + i
        // (h < 2, k < 4, i < 32) is bits 2k..2k+2 of qs[32·h + i].
        let mut block: Vec<u8> = (0..16).map(|j| sc[j] | (m[j] << 4)).collect();
        let mut qs = [0u8; 64];
        for (e, &v) in q.iter().enumerate() {
            qs[32 * (e / 128) + e % 32] |= v << (2 * ((e % 128) / 32));
        }
        block.extend(qs);
        block.extend(d.to_le_bytes());
        block.extend(dmin.to_le_bytes());
        let want: Vec<f32> = (0..256)
            .map(|e| (d.to_f32() * sc[e / 16] as f32) * q[e] as f32 - dmin.to_f32() * m[e / 16] as f32)
            .collect();
        assert_bits(QuantFormat::Q2_K, &decode(QuantFormat::Q2_K, &block), &want)?;
    }

    #[test]
    fn q3_k(d in finite_f16(), sc in prop::collection::vec(0u8..64, 16), q in prop::collection::vec(-4i8..4, 256)) {
        // block_q3_K: hmask[32], qs[64], scales[12], d. q + 4 is stored as its low two bits (placed as in
        // Q2_K) and a high bit, bit e / 32 of hmask[e % 32]. Six-bit scale j: its low nibble is the low
        // (j < 8) or high (j >= 8) nibble of scales[j % 8], its top two bits are bits 2·(j / 4) of
        // scales[8 + j % 4].
        let mut hmask = [0u8; 32];
        let mut qs = [0u8; 64];
        for (e, &v) in q.iter().enumerate() {
            let biased = (v + 4) as u8;
            qs[32 * (e / 128) + e % 32] |= (biased & 3) << (2 * ((e % 128) / 32));
            hmask[e % 32] |= (biased >> 2) << (e / 32);
        }
        let mut scales = [0u8; 12];
        for (j, &s) in sc.iter().enumerate() {
            scales[j % 8] |= (s & 0x0f) << (4 * (j / 8));
            scales[8 + j % 4] |= (s >> 4) << (2 * (j / 4));
        }
        let block = [&hmask[..], &qs[..], &scales[..], &d.to_le_bytes()[..]].concat();
        let want: Vec<f32> = (0..256).map(|e| (d.to_f32() * (sc[e / 16] as i32 - 32) as f32) * q[e] as f32).collect();
        assert_bits(QuantFormat::Q3_K, &decode(QuantFormat::Q3_K, &block), &want)?;
    }

    #[test]
    fn q4_k_and_q5_k(
        d in finite_f16(),
        dmin in finite_f16(),
        sc in prop::collection::vec(0u8..64, 8),
        m in prop::collection::vec(0u8..64, 8),
        q in prop::collection::vec(0u8..32, 256),
    ) {
        // scales[12]: bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7
        // the same for the mins; bytes 8-11 the low nibbles of scale 4+j (low) and min 4+j (high).
        let mut scales = [0u8; 12];
        for j in 0..4 {
            scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            scales[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
            scales[j + 8] = (sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4);
        }
        // Value e = 64·c + i (i < 32) is the low nibble of qs[32·c + i], e = 64·c + 32 + i its high
        // nibble; Q5_K's fifth bit of value e is bit e / 32 of qh[e % 32].
        let mut qs = [0u8; 128];
        let mut qh = [0u8; 32];
        for (e, &v) in q.iter().enumerate() {
            qs[32 * (e / 64) + e % 32] |= (v & 0x0f) << (4 * ((e % 64) / 32));
            qh[e % 32] |= (v >> 4) << (e / 32);
        }
        let head = [&d.to_le_bytes()[..], &dmin.to_le_bytes()[..], &scales[..]].concat();
        let value = |e: usize, q: u8| (d.to_f32() * sc[e / 32] as f32) * q as f32 - dmin.to_f32() * m[e / 32] as f32;

        let q4_block = [&head[..], &qs[..]].concat();
        let want: Vec<f32> = (0..256).map(|e| value(e, q[e] & 0x0f)).collect();
        assert_bits(QuantFormat::Q4_K, &decode(QuantFormat::Q4_K, &q4_block), &want)?;

        let q5_block = [&head[..], &qh[..], &qs[..]].concat();
        let want: Vec<f32> = (0..256).map(|e| value(e, q[e])).collect();
        assert_bits(QuantFormat::Q5_K, &decode(QuantFormat::Q5_K, &q5_block), &want)?;
    }

    #[test]
    fn q6_k(d in finite_f16(), sc in prop::collection::vec(any::<i8>(), 16), q in prop::collection::vec(0u8..64, 256)) {
        // block_q6_K: ql[128], qh[64], scales[16], d. In each half h of 128 values, value 32·g + i
        // (g < 4, i < 32) keeps its low nibble in ql[64·h + 32·(g % 2) + i] (low nibble for g < 2, high
        // for g >= 2) and its top two bits at bits 2g..2g+2 of qh[32·h + i].
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for (e, &v) in q.iter().enumerate() {
            let (h, g, i) = (e / 128, (e % 128) / 32, e % 32);
            ql[64 * h + 32 * (g % 2) + i] |= (v & 0x0f) << (4 * (g / 2));
            qh[32 * h + i] |= (v >> 4) << (2 * g);
        }
        let scales: Vec<u8> = sc.iter().map(|&s| s as u8).collect();
        let block = [&ql[..], &qh[..], &scales[..], &d.to_le_bytes()[..]].concat();
        let want: Vec<f32> = (0..256).map(|e| (d.to_f32() * sc[e / 16] as f32) * (q[e] as i32 - 32) as f32).collect();
        assert_bits(QuantFormat::Q6_K, &decode(QuantFormat::Q6_K, &block), &want)?;
    }

    #[test]
    fn iq4_xs(d in finite_f16(), ls in prop::collection::vec(0u8..64, 8), q in prop::collection::vec(0u8..16, 256)) {
        // block_iq4_xs: d, scales_h (u16: bits 2s..2s+2 are the top bits of scale s), scales_l[4]
        // (scale s's low nibble in byte s / 2, high nibble for odd s), qs[128] (sub-block s's 32
        // indices packed as IQ4_NL in qs[16·s..16·s + 16]).
        let scales_h = ls.iter().enumerate().fold(0u16, |acc, (s, &v)| acc | (u16::from(v >> 4) << (2 * s)));
        let scales_l: Vec<u8> = (0..4).map(|i| (ls[2 * i] & 0x0f) | ((ls[2 * i + 1] & 0x0f) << 4)).collect();
        let mut block = [&d.to_le_bytes()[..], &scales_h.to_le_bytes()[..], &scales_l[..]].concat();
        for sub in q.chunks(32) {
            block.extend(pack_nibbles_32(sub));
        }
        let want: Vec<f32> = (0..256)
            .map(|e| (d.to_f32() * (ls[e / 32] as i32 - 32) as f32) * f32::from(KVALUES_IQ4NL[q[e] as usize]))
            .collect();
        assert_bits(QuantFormat::IQ4_XS, &decode(QuantFormat::IQ4_XS, &block), &want)?;
    }

    #[test]
    fn element_formats(bits in any::<u32>()) {
        let value = f32::from_bits(bits);
        assert_bits(QuantFormat::F32, &decode(QuantFormat::F32, &bits.to_le_bytes()), &[value])?;
        let half = (bits >> 16) as u16;
        let bf16_value = f32::from_bits(u32::from(half) << 16);
        assert_bits(QuantFormat::BF16, &decode(QuantFormat::BF16, &half.to_le_bytes()), &[bf16_value])?;
        let h = f16::from_bits(half);
        if h.is_finite() {
            assert_bits(QuantFormat::F16, &decode(QuantFormat::F16, &half.to_le_bytes()), &[h.to_f32()])?;
        }
    }
}
