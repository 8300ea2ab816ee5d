//! Helpers shared by the bad-input and fuzz tests: a small valid file and the offsets of its fields.

#![allow(dead_code)]

use gguf_file::{f16_bytes, f32_bytes, GgmlType, GgufWriter, MetadataArray};

/// A small valid file: a few metadata types (including a string array and a nested array) and three
/// tensors (F32, F16, Q8_0).
pub fn small_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", "test")
        .set("test.count", 5u32)
        .set("test.eps", 1e-5f32)
        .set("test.tokens", vec!["<s>", "a", "bc", "\\n"])
        .set("test.types", vec![3i32, 1, 1, 1])
        .set("test.nested", vec![MetadataArray::U8(vec![1, 2]), MetadataArray::String(vec!["x".into()])]);
    let v: Vec<f32> = (0..8).map(|i| (i as f32 * 0.1).sin()).collect();
    // Two Q8_0 blocks of arbitrary bytes: the reader measures tensors, it does not decode them.
    let q8_0: Vec<u8> = (0..68u32).map(|i| (i * 37 % 251) as u8).collect();
    w.add_tensor("first", GgmlType::F32, &[4, 2], f32_bytes(&v))
        .add_tensor("second", GgmlType::F16, &[8], f16_bytes(&v))
        .add_tensor("third", GgmlType::Q8_0, &[32, 2], q8_0);
    w.to_bytes().unwrap()
}

/// Where a length/count (u64) or type/dimension-count (u32) field sits in a file.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    U64(usize),
    U32(usize),
}

/// Offsets of a valid file's structural fields: counts, string lengths, value and element types, array
/// counts, n_dims, dims, tensor types and offsets.
pub fn fields(bytes: &[u8]) -> Vec<Field> {
    let u32_at = |p: usize| u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
    let u64_at = |p: usize| u64::from_le_bytes(bytes[p..p + 8].try_into().unwrap()) as usize;
    let mut out = vec![Field::U32(4), Field::U64(8), Field::U64(16)];
    let n_tensors = u64_at(8);
    let n_kv = u64_at(16);
    let mut p = 24;
    fn string(p: &mut usize, out: &mut Vec<Field>, u64_at: &dyn Fn(usize) -> usize) {
        out.push(Field::U64(*p));
        *p += 8 + u64_at(*p);
    }
    fn value(
        ty: u32,
        p: &mut usize,
        out: &mut Vec<Field>,
        u32_at: &dyn Fn(usize) -> u32,
        u64_at: &dyn Fn(usize) -> usize,
    ) {
        match ty {
            0 | 1 | 7 => *p += 1,
            2 | 3 => *p += 2,
            4..=6 => *p += 4,
            10..=12 => *p += 8,
            8 => string(p, out, u64_at),
            9 => {
                let elem = u32_at(*p);
                out.push(Field::U32(*p));
                out.push(Field::U64(*p + 4));
                let n = u64_at(*p + 4);
                *p += 12;
                for _ in 0..n {
                    value(elem, p, out, u32_at, u64_at);
                }
            }
            _ => unreachable!("valid files only"),
        }
    }
    for _ in 0..n_kv {
        string(&mut p, &mut out, &u64_at);
        let ty = u32_at(p);
        out.push(Field::U32(p));
        p += 4;
        value(ty, &mut p, &mut out, &u32_at, &u64_at);
    }
    for _ in 0..n_tensors {
        string(&mut p, &mut out, &u64_at);
        let n_dims = u32_at(p) as usize;
        out.push(Field::U32(p));
        p += 4;
        for _ in 0..n_dims {
            out.push(Field::U64(p));
            p += 8;
        }
        out.push(Field::U32(p));
        out.push(Field::U64(p + 4));
        p += 12;
    }
    out
}

/// Offset of the first occurrence of `needle` in `bytes`.
pub fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes.windows(needle.len()).position(|w| w == needle).expect("needle present")
}

/// Offset just after tensor `name`'s name in its tensor info (where n_dims starts).
pub fn tensor_info_at(bytes: &[u8], name: &str) -> usize {
    let mut len_and_name = (name.len() as u64).to_le_bytes().to_vec();
    len_and_name.extend_from_slice(name.as_bytes());
    find(bytes, &len_and_name) + len_and_name.len()
}

pub fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
