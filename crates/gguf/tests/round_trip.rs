//! Write files with every metadata type and several tensor types, read them back (memory-mapped and from
//! memory), and compare every key and tensor. Also re-writes the golden llama.cpp files.

use std::path::PathBuf;

use gguf_file::{ErrorKind, GgmlType, GgufFile, GgufWriter, MetadataArray, MetadataValue};
use test_data::golden;

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("gguf-{}-{name}", std::process::id()))
}

/// Deterministic bytes for a tensor.
fn bytes(n: u64, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn every_value() -> Vec<(String, MetadataValue)> {
    let v: Vec<(&str, MetadataValue)> = vec![
        ("general.architecture", "rwkv7".into()),
        ("t.u8", 200u8.into()),
        ("t.i8", (-7i8).into()),
        ("t.u16", 60000u16.into()),
        ("t.i16", (-30000i16).into()),
        ("t.u32", 4_000_000_000u32.into()),
        ("t.i32", (-2_000_000_000i32).into()),
        ("t.f32", 1e-5f32.into()),
        ("t.bool", true.into()),
        ("t.string", "héllo \\n \u{1F642}".into()),
        ("t.empty_string", "".into()),
        ("t.u64", u64::MAX.into()),
        ("t.i64", i64::MIN.into()),
        ("t.f64", std::f64::consts::PI.into()),
        ("t.strings", vec!["<s>", "\\x00", "\\n\\n", ""].into()),
        ("t.i32s", vec![3i32, 1, 1, 5].into()),
        ("t.f32s", vec![0.5f32, -0.25].into()),
        ("t.bools", vec![true, false, true].into()),
        ("t.u8s", vec![1u8, 2, 3].into()),
        ("t.i8s", vec![-1i8, 1].into()),
        ("t.u16s", vec![1u16, 65535].into()),
        ("t.i16s", vec![-1i16, 1].into()),
        ("t.u32s", vec![7u32].into()),
        ("t.u64s", vec![u64::MAX, 0].into()),
        ("t.i64s", vec![i64::MIN].into()),
        ("t.f64s", vec![1e300f64, -0.0].into()),
        ("t.empty_f32s", MetadataArray::F32(vec![]).into()),
        (
            "t.nested",
            vec![
                MetadataArray::String(vec!["a".into(), "bc".into()]),
                MetadataArray::U8(vec![]),
                MetadataArray::Array(vec![MetadataArray::F64(vec![2.0]), MetadataArray::Bool(vec![false])]),
            ]
            .into(),
        ),
    ];
    v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// (name, type, dims)
fn tensor_specs() -> Vec<(&'static str, GgmlType, Vec<u64>)> {
    vec![
        ("emb", GgmlType::F16, vec![8, 5]),
        ("q", GgmlType::Q8_0, vec![64, 3]),
        ("vec", GgmlType::F32, vec![7]),
        ("k4", GgmlType::Q4_K, vec![256, 2]),
        ("bf", GgmlType::BF16, vec![3, 1, 1, 2]),
        ("scalar", GgmlType::F32, vec![]),
        ("bytes", GgmlType::I8, vec![1]),
        ("empty", GgmlType::F32, vec![0, 4]),
    ]
}

fn build(version: u32, alignment: Option<u32>) -> (GgufWriter<'static>, Vec<Vec<u8>>) {
    let mut w = GgufWriter::new();
    w.set_version(version);
    for (k, v) in every_value() {
        w.set(k, v);
    }
    if let Some(a) = alignment {
        w.set_alignment(a);
    }
    let mut datas = Vec::new();
    for (i, (name, ty, dims)) in tensor_specs().into_iter().enumerate() {
        let data = bytes(ty.tensor_bytes(&dims).unwrap(), i as u8);
        w.add_tensor(name, ty, &dims, data.clone());
        datas.push(data);
    }
    (w, datas)
}

fn check(file: &GgufFile, version: u32, alignment: u64, datas: &[Vec<u8>]) {
    assert_eq!(file.version(), version);
    assert_eq!(file.alignment(), alignment);
    assert_eq!(file.data_offset() % alignment, 0);
    let mut expected = every_value();
    if alignment != 32 {
        expected.push(("general.alignment".into(), MetadataValue::U32(alignment as u32)));
    }
    let found: Vec<(String, MetadataValue)> =
        file.metadata_entries().map(|(k, v)| (k.to_string(), v.clone())).collect();
    assert_eq!(found, expected);
    for (key, value) in &expected {
        assert_eq!(file.metadata(key), Some(value), "key {key}");
    }
    let specs = tensor_specs();
    assert_eq!(file.tensor_infos().len(), specs.len());
    for ((name, ty, dims), data) in specs.iter().zip(datas) {
        let t = file.tensor(name).unwrap_or_else(|| panic!("tensor {name} missing"));
        assert_eq!(t.info.ggml_type, *ty, "{name}");
        assert_eq!(&t.info.dims, dims, "{name}");
        assert_eq!(t.info.offset % alignment, 0, "{name}");
        assert_eq!(t.data, &data[..], "{name}");
    }
    assert!(file.tensor("absent").is_none());
    assert!(file.metadata("absent").is_none());
}

#[test]
fn round_trip_through_a_file_v3_and_v2_with_alignments() {
    for (version, alignment) in [(3, None), (2, None), (3, Some(64)), (3, Some(1)), (2, Some(4096))] {
        let (w, datas) = build(version, alignment);
        let path = tmp(&format!("rt-{version}-{alignment:?}.gguf"));
        let written = w.write_file(&path).unwrap();
        assert_eq!(written, std::fs::metadata(&path).unwrap().len());
        let file = GgufFile::open(&path).unwrap();
        check(&file, version, alignment.unwrap_or(32) as u64, &datas);
        let in_memory = GgufFile::from_bytes("mem", w.to_bytes().unwrap()).unwrap();
        check(&in_memory, version, alignment.unwrap_or(32) as u64, &datas);
        drop(file);
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn streamed_tensors_equal_in_memory_ones() {
    let (w, datas) = build(3, None);
    let mut streamed = GgufWriter::new();
    for (k, v) in every_value() {
        streamed.set(k, v);
    }
    for (name, ty, dims) in tensor_specs() {
        streamed.declare_tensor(name, ty, &dims);
    }
    let mut out = Vec::new();
    let mut calls = 0;
    streamed
        .write_with(&mut out, "stream", |info, sink| {
            calls += 1;
            let i = tensor_specs().iter().position(|s| s.0 == info.name).unwrap();
            sink.write_all(&datas[i])
        })
        .unwrap();
    assert_eq!(calls, datas.len());
    assert_eq!(out, w.to_bytes().unwrap());
}

#[test]
fn writer_refuses_bad_tensors() {
    let cases: Vec<(GgufWriter<'static>, &str)> = vec![
        (
            {
                let mut w = GgufWriter::new();
                w.add_tensor("short", GgmlType::F32, &[4], vec![0u8; 15]);
                w
            },
            "16 bytes expected but 15",
        ),
        (
            {
                let mut w = GgufWriter::new();
                w.add_tensor("odd_q8", GgmlType::Q8_0, &[33], vec![]);
                w
            },
            "odd_q8",
        ),
        (
            {
                let mut w = GgufWriter::new();
                w.add_tensor("dup", GgmlType::I8, &[1], vec![0u8]).add_tensor("dup", GgmlType::I8, &[1], vec![0u8]);
                w
            },
            "'dup' appears twice",
        ),
        (
            {
                let mut w = GgufWriter::new();
                w.set_alignment(48);
                w
            },
            "alignment 48",
        ),
        (
            {
                let mut w = GgufWriter::new();
                w.set("general.alignment", 32u64);
                w
            },
            "must be a u32",
        ),
        (
            {
                let mut w = GgufWriter::new();
                w.declare_tensor("later", GgmlType::F32, &[1]);
                w
            },
            "later",
        ),
        (
            {
                let mut w = GgufWriter::new();
                w.add_tensor("five", GgmlType::F32, &[1, 1, 1, 1, 1], vec![0u8; 4]);
                w
            },
            "five",
        ),
    ];
    for (w, needle) in cases {
        let msg = w.to_bytes().unwrap_err().to_string();
        assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
        assert!(msg.starts_with("<memory>: "), "{msg}");
    }
    let mut w = GgufWriter::new();
    w.declare_tensor("t", GgmlType::F32, &[2]);
    let err = w.write_with(&mut Vec::new(), "out.gguf", |_, sink| sink.write_all(&[0; 4])).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::DataSize { expected: 8, found: 4, .. }), "{err}");
    assert!(err.to_string().starts_with("out.gguf: "));
    let err = GgufWriter::new().set_version(1).to_bytes().unwrap_err();
    assert!(matches!(err.kind, ErrorKind::UnsupportedVersion(1)));
}

/// Re-writing a llama.cpp file with our writer (same keys, same tensors, same order) must give the same
/// bytes: our layout and padding equal gguf-py's.
#[test]
fn golden_files_rewrite_byte_identically() {
    for name in ["model-f16.gguf", "model-q8_0.gguf"] {
        let path = golden(name);
        let original = std::fs::read(&path).unwrap();
        let file = GgufFile::open(&path).unwrap();
        let mut w = GgufWriter::new();
        w.set_version(file.version());
        for (k, v) in file.metadata_entries() {
            w.set(k, v.clone());
        }
        for t in file.tensors() {
            w.add_tensor(t.info.name.clone(), t.info.ggml_type, &t.info.dims, t.data);
        }
        let rewritten = w.to_bytes().unwrap();
        assert_eq!(rewritten.len(), original.len(), "{name}");
        assert!(rewritten == original, "{name}: bytes differ");
    }
}
