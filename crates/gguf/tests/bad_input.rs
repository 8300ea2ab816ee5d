//! One test per class of bad input: each must give an error naming the file, the problem and the key or
//! tensor involved — never a panic.

mod common;

use std::path::PathBuf;

use common::{find, put_u32, put_u64, small_file, tensor_info_at};
use gguf_file::{ErrorKind, GgmlType, GgufError, GgufFile, GgufWriter, TypeIdError};

const LABEL: &str = "case.gguf";

fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(LABEL, bytes)
}

/// Parses `bytes`, expects an error, and checks that its message names the file and contains every needle.
fn fails(bytes: Vec<u8>, needles: &[&str]) -> ErrorKind {
    let err = parse(bytes).expect_err("bad input must be refused");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{LABEL}: ")), "message must name the file: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{msg:?} should contain {n:?}");
    }
    err.kind
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("gguf-bad-{}-{name}", std::process::id()))
}

#[test]
fn the_small_file_is_valid() {
    let f = parse(small_file()).unwrap();
    assert_eq!(f.tensor_infos().len(), 3);
}

#[test]
fn empty_file() {
    let path = tmp("empty.gguf");
    std::fs::write(&path, b"").unwrap();
    let err = GgufFile::open(&path).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Empty));
    assert!(err.to_string().contains("empty.gguf: the file is empty"), "{err}");
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(fails(vec![], &["empty"]), ErrorKind::Empty));
}

#[test]
fn missing_file_names_the_path() {
    let err = GgufFile::open(tmp("does-not-exist.gguf")).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Io { .. }));
    assert!(err.to_string().contains("does-not-exist.gguf: cannot open the file"), "{err}");
}

#[test]
fn wrong_magic() {
    let mut b = small_file();
    b[..4].copy_from_slice(b"GGML");
    assert!(matches!(fails(b, &["not a GGUF file"]), ErrorKind::BadMagic { .. }));
    assert!(matches!(fails(b"PK\x03\x04 zip".to_vec(), &["not a GGUF file"]), ErrorKind::BadMagic { .. }));
    assert!(matches!(fails(b"G".to_vec(), &["truncated header"]), ErrorKind::Truncated { .. }));
}

#[test]
fn unsupported_version() {
    for v in [0u32, 1, 4, 0xffff_ffff] {
        let mut b = small_file();
        put_u32(&mut b, 4, v);
        let kind = fails(b, &[&format!("version {v}")]);
        assert!(matches!(kind, ErrorKind::UnsupportedVersion(found) if found == v));
    }
    let mut b = small_file();
    put_u32(&mut b, 4, 3u32.swap_bytes());
    assert!(matches!(fails(b, &["big-endian"]), ErrorKind::BigEndian(3)));
}

#[test]
fn truncated_header() {
    let b = small_file();
    for len in [4, 7, 8, 15, 23] {
        let kind = fails(b[..len].to_vec(), &["truncated header"]);
        assert!(matches!(kind, ErrorKind::Truncated { .. }));
    }
}

#[test]
fn truncated_metadata_names_the_key() {
    let b = small_file();
    // Cut inside the value of "test.count" (a u32).
    let at = find(&b, b"test.count") + "test.count".len() + 4 + 2;
    fails(b[..at].to_vec(), &["truncated value of metadata key 'test.count'"]);
    // Cut inside the string array.
    let at = find(&b, b"\\n");
    fails(b[..at].to_vec(), &["truncated element 3 of 4 of array in metadata key 'test.tokens'"]);
    // Cut inside a key.
    let at = find(&b, b"test.eps") + 3;
    fails(b[..at].to_vec(), &["truncated key of metadata entry 2 of 6"]);
}

#[test]
fn truncated_tensor_infos_name_the_tensor() {
    let b = small_file();
    let at = tensor_info_at(&b, "second") + 6;
    fails(b[..at].to_vec(), &["truncated tensor info 1 of 3 ('second')"]);
    let at = find(&b, b"third") + 2;
    fails(b[..at].to_vec(), &["truncated name of tensor info 2 of 3"]);
}

#[test]
fn string_length_past_the_end_or_absurd() {
    let b = small_file();
    let len_at = find(&b, b"test.eps") - 8;
    // Longer than what remains: truncated.
    let mut m = b.clone();
    put_u64(&mut m, len_at, (b.len() - len_at - 8 + 1) as u64);
    let kind = fails(m, &["truncated key of metadata entry 2 of 6"]);
    assert!(matches!(kind, ErrorKind::Truncated { .. }));
    // Longer than the whole file: absurd.
    for len in [b.len() as u64 + 1, u64::MAX, 1 << 62] {
        let mut m = b.clone();
        put_u64(&mut m, len_at, len);
        let kind = fails(m, &["length of key of metadata entry 2", &len.to_string(), "cannot fit"]);
        assert!(matches!(kind, ErrorKind::CountTooLarge { .. }));
    }
    // A string value (not a key).
    let mut m = b.clone();
    let at = find(&b, b"test") + 4 + 4; // "test" is the value of general.architecture: len field before it
    let len_at = find(&b[..at], b"\x04\x00\x00\x00\x00\x00\x00\x00test");
    put_u64(&mut m, len_at, u64::MAX - 3);
    fails(m, &["length of value of metadata key 'general.architecture'"]);
}

#[test]
fn array_length_past_the_end_or_absurd() {
    let b = small_file();
    let count_at = find(&b, b"test.types") + "test.types".len() + 4 + 4;
    for count in [1000u64, u64::MAX, u64::MAX / 4 + 1] {
        let mut m = b.clone();
        put_u64(&mut m, count_at, count);
        let kind = fails(m, &["array in metadata key 'test.types'", &count.to_string(), "array elements"]);
        assert!(matches!(kind, ErrorKind::CountTooLarge { .. }));
    }
    let count_at = find(&b, b"test.tokens") + "test.tokens".len() + 4 + 4;
    let mut m = b.clone();
    put_u64(&mut m, count_at, 1 << 40);
    fails(m, &["array in metadata key 'test.tokens'"]);
}

#[test]
fn absurd_entry_and_tensor_counts() {
    let b = small_file();
    let mut m = b.clone();
    put_u64(&mut m, 16, u64::MAX);
    fails(m, &["metadata entry count", "cannot fit"]);
    let mut m = b.clone();
    put_u64(&mut m, 8, 1 << 50);
    fails(m, &["tensor count", "cannot fit"]);
}

/// A valid file whose `general.alignment` (a u32) is then patched to `a`.
fn with_alignment(a: u32) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.alignment", 32u32).add_tensor("t", GgmlType::F32, &[1], vec![0u8; 4]);
    let mut b = w.to_bytes().unwrap();
    let at = find(&b, b"general.alignment") + "general.alignment".len() + 4;
    put_u32(&mut b, at, a);
    b
}

#[test]
fn zero_or_non_power_of_two_alignment() {
    for a in [0u32, 3, 48, 0x8000_0001] {
        let kind = fails(with_alignment(a), &[&format!("alignment {a}"), "general.alignment", "power of two"]);
        assert!(matches!(kind, ErrorKind::BadAlignment(found) if found == u64::from(a)));
    }
    // Wrong value type: the key holds a u64 instead of a u32.
    let mut w = GgufWriter::new();
    w.set("general.alignment", 32u32);
    let mut b = w.to_bytes().unwrap();
    let type_at = find(&b, b"general.alignment") + "general.alignment".len();
    put_u32(&mut b, type_at, 5); // i32
    let kind = fails(b, &["'general.alignment' must be a u32, found i32"]);
    assert!(matches!(kind, ErrorKind::AlignmentType { .. }));
}

#[test]
fn tensor_offset_or_size_past_the_end() {
    let b = small_file();
    let info = tensor_info_at(&b, "third");
    // third: n_dims 2, dims 32 and 2, type, offset.
    let offset_at = info + 4 + 16 + 4;
    let mut m = b.clone();
    put_u64(&mut m, offset_at, 1 << 20);
    let kind = fails(m, &["tensor 'third'", "extends past the end"]);
    assert!(matches!(kind, ErrorKind::TensorOutOfBounds { .. }));
    // Misaligned offset.
    let mut m = b.clone();
    put_u64(&mut m, offset_at, 33);
    fails(m, &["tensor 'third'", "data offset 33 is not a multiple of the alignment 32"]);
    // Size past the end: more rows.
    let mut m = b.clone();
    put_u64(&mut m, info + 4 + 8, 1000);
    fails(m, &["tensor 'third'", "extends past the end"]);
    // Data section cut short.
    let kind = fails(b[..b.len() - 40].to_vec(), &["tensor 'third'", "extends past the end"]);
    assert!(matches!(kind, ErrorKind::TensorOutOfBounds { .. }));
}

#[test]
fn overlapping_tensors() {
    let b = small_file();
    let first = parse(b.clone()).unwrap().tensor("first").unwrap().info.offset;
    let info = tensor_info_at(&b, "second");
    let mut m = b.clone();
    put_u64(&mut m, info + 4 + 8 + 4, first); // second: n_dims 1, one dim, type, offset
    let kind = fails(m, &["'first'", "'second'", "overlap"]);
    assert!(matches!(kind, ErrorKind::OverlappingTensors { .. }));
}

#[test]
fn dimensions_whose_product_overflows() {
    let b = small_file();
    let info = tensor_info_at(&b, "first");
    let mut m = b.clone();
    put_u64(&mut m, info + 4, 1 << 40);
    put_u64(&mut m, info + 4 + 8, 1 << 40);
    fails(m, &["tensor 'first'", "overflows"]);
    let mut m = b.clone();
    put_u64(&mut m, info + 4, u64::MAX);
    fails(m, &["tensor 'first'", "larger than ggml's limit"]);
    // Byte size overflows although the element count fits.
    let mut m = b.clone();
    put_u64(&mut m, info + 4, 1 << 31);
    put_u64(&mut m, info + 4 + 8, 1 << 31);
    fails(m, &["tensor 'first'", "F32 tensor of dimensions [2147483648, 2147483648]: byte size overflows"]);
}

#[test]
fn too_many_dimensions() {
    let b = small_file();
    let info = tensor_info_at(&b, "first");
    let mut m = b.clone();
    put_u32(&mut m, info, 5);
    fails(m, &["tensor 'first'", "5 dimensions"]);
}

#[test]
fn unknown_or_retired_type_id() {
    let b = small_file();
    let info = tensor_info_at(&b, "second");
    let type_at = info + 4 + 8;
    let mut m = b.clone();
    put_u32(&mut m, type_at, 99);
    let kind = fails(m, &["tensor 'second'", "unknown ggml type id 99"]);
    assert!(matches!(kind, ErrorKind::TensorType { problem: TypeIdError::Unknown { id: 99 }, .. }));
    let mut m = b.clone();
    put_u32(&mut m, type_at, 31);
    fails(m, &["tensor 'second'", "31 (Q4_0_4_4) was retired"]);
    // A known type whose block size the row length does not fit.
    let mut m = b.clone();
    put_u32(&mut m, type_at, GgmlType::Q4_K.id());
    fails(m, &["tensor 'second'", "ne[0] = 8 is not a multiple of the Q4_K block size 256"]);
}

#[test]
fn unknown_value_type() {
    let b = small_file();
    let type_at = find(&b, b"test.count") + "test.count".len();
    let mut m = b.clone();
    put_u32(&mut m, type_at, 13);
    fails(m, &["metadata key 'test.count' has unknown value type id 13"]);
    // Unknown element type inside an array.
    let at = find(&b, b"test.types") + "test.types".len() + 4;
    let mut m = b.clone();
    put_u32(&mut m, at, 77);
    fails(m, &["metadata key 'test.types' has unknown value type id 77"]);
}

#[test]
fn duplicate_key_and_tensor() {
    let b = small_file();
    let mut m = b.clone();
    let at = find(&b, b"test.eps");
    m[at..at + 8].copy_from_slice(b"test.cou"); // "test.cou" is 8 bytes like "test.eps"
    let _ = parse(m).unwrap(); // different key: fine
    let mut m = b.clone();
    let at = find(&b, b"test.tokens");
    m[at..at + 11].copy_from_slice(b"test.nested"); // same length, now duplicates the last key
    fails(m, &["metadata key 'test.nested' appears twice"]);
    let mut m = b.clone();
    let at = find(&b, b"first");
    m[at..at + 5].copy_from_slice(b"third");
    fails(m, &["tensor 'third' appears twice"]);
}

#[test]
fn arrays_nested_too_deep() {
    use gguf_file::MetadataArray as A;
    let mut deep = A::U8(vec![1]);
    for _ in 0..gguf_file::MAX_ARRAY_DEPTH {
        deep = A::Array(vec![deep]);
    }
    let mut w = GgufWriter::new();
    w.set("deep", deep);
    fails(w.to_bytes().unwrap(), &["metadata key 'deep'", "nested deeper"]);
}

#[test]
fn invalid_utf8() {
    let b = small_file();
    let mut m = b.clone();
    let at = find(&b, b"<s>");
    m[at] = 0xff;
    fails(m, &["element 0 of 4 of array in metadata key 'test.tokens' is not valid UTF-8"]);
}
