//! Golden cases from the official tokenizer, round trips and streaming decoding.

use super::*;
use proptest::prelude::*;
use std::sync::OnceLock;

fn world() -> &'static Tokenizer {
    static WORLD: OnceLock<Tokenizer> = OnceLock::new();
    WORLD.get_or_init(Tokenizer::world)
}

struct Case {
    text: String,
    bytes: Vec<u8>,
    ids: Vec<u32>,
}

fn golden_cases() -> Vec<Case> {
    let path = test_data::golden("tokenizer_cases.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .unwrap();
    let cases = json["cases"].as_array().expect("cases array");
    assert_eq!(cases.len() as u64, json["n_cases"].as_u64().unwrap());
    cases
        .iter()
        .map(|c| {
            let hex = c["utf8_hex"].as_str().unwrap();
            let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            let ids = c["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            Case { text: c["text"].as_str().unwrap().to_owned(), bytes, ids }
        })
        .collect()
}

/// Checks every golden case against `tok`: exact ids, and decoding gives the exact bytes back.
pub(crate) fn check_golden_cases(tok: &Tokenizer) {
    let cases = golden_cases();
    assert!(cases.len() >= 48);
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(case.text.as_bytes(), case.bytes, "case {i}: text and utf8_hex differ");
        assert_eq!(tok.encode(&case.text), case.ids, "case {i}: {:?}", case.text);
        assert_eq!(tok.encode_bytes(&case.bytes), case.ids, "case {i}");
        assert_eq!(tok.decode(&case.ids).unwrap(), case.bytes, "case {i}");
    }
}

#[test]
fn world_matches_official_tokenizer_on_golden_cases() {
    check_golden_cases(world());
}

#[test]
fn world_matches_golden_prompt_tokens() {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(test_data::golden("tokens.json")).unwrap()).unwrap();
    let prompt = std::fs::read_to_string(test_data::golden("prompt.txt")).unwrap();
    assert_eq!(json["prompt"].as_str().unwrap(), prompt);
    let ids: Vec<u32> = json["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(ids.len() as u64, json["n_tokens"].as_u64().unwrap());
    assert_eq!(world().encode(&prompt), ids);
}

#[test]
fn world_vocabulary_shape() {
    let tok = world();
    assert_eq!(tok.vocab_size(), WORLD_VOCAB_SIZE);
    assert_eq!(tok.token_type(0).unwrap(), TokenType::Control);
    assert_eq!(tok.token_bytes(0).unwrap(), b"<s>");
    for b in 0..=255u8 {
        assert_eq!(tok.token_bytes(b as u32 + 1).unwrap(), [b], "ids 1..=256 are the single bytes");
    }
    assert_eq!(tok.token_bytes(WORLD_EOT_TOKEN_ID).unwrap(), b"\n\n");
    assert_eq!(tok.token_type(65535).unwrap(), TokenType::Unused);
    assert_eq!(tok.token_bytes(65535).unwrap(), b"[PAD65535]");
    // Control and unused ids decode to nothing, literal text never encodes to them.
    assert_eq!(tok.decode(&[0, 65530]).unwrap(), b"");
    assert!(!tok.encode("<s>[PAD65530]").iter().any(|&id| id == 0 || id >= 65530));
    // Every normal token's text encodes back to that single id (the vocabulary has no duplicates).
    for id in 1..65530u32 {
        assert_eq!(tok.encode_bytes(tok.token_bytes(id).unwrap()), [id], "token {id}");
    }
}

#[test]
fn invalid_ids_are_errors() {
    let tok = world();
    let err = tok.decode(&[5, 65536]).unwrap_err();
    assert_eq!(err, TokenizerError::InvalidId { id: 65536, vocab_size: 65536 });
    assert!(tok.token_bytes(u32::MAX).is_err());
    assert!(tok.stream_decoder().push(70000).is_err());
}

#[test]
fn construction_errors() {
    let bytes: Vec<String> = (0..=255u8).map(|b| escape_token(&[b])).collect();
    assert!(Tokenizer::from_tokens(&bytes, None).is_ok());
    assert_eq!(Tokenizer::from_tokens(&bytes[1..], None).unwrap_err(), TokenizerError::MissingByte(0));
    let mut types = vec![1; 256];
    types[7] = 3;
    assert_eq!(Tokenizer::from_tokens(&bytes, Some(&types)).unwrap_err(), TokenizerError::MissingByte(7));
    assert!(matches!(
        Tokenizer::from_tokens(&bytes, Some(&types[1..])),
        Err(TokenizerError::TypeCountMismatch { tokens: 256, types: 255 })
    ));
    types[7] = 42;
    assert!(matches!(Tokenizer::from_tokens(&bytes, Some(&types)), Err(TokenizerError::UnknownTokenType { .. })));
    let mut bad = bytes.clone();
    bad.push("\\x9".into());
    assert!(matches!(Tokenizer::from_tokens(&bad, None), Err(TokenizerError::BadEscape { id: 256, .. })));
    bad[256] = String::new();
    assert!(matches!(Tokenizer::from_tokens(&bad, None), Err(TokenizerError::EmptyToken { id: 256 })));
}

#[test]
fn greedy_longest_match_on_a_small_vocabulary() {
    // ids 0..256 single bytes, then "ab", "abc", "abcd" and "bcd": "abcb" -> "abc" + "b", "abcd" -> "abcd".
    let mut tokens: Vec<String> = (0..=255u8).map(|b| escape_token(&[b])).collect();
    for t in ["ab", "abc", "abcd", "bcd", "ab"] {
        tokens.push(t.into());
    }
    let tok = Tokenizer::from_tokens(&tokens, None).unwrap();
    assert_eq!(tok.encode("abcb"), [257, b'b' as u32]);
    assert_eq!(tok.encode("abcd"), [258]);
    assert_eq!(tok.encode("abab"), [256, 256], "a repeated string maps to its first id");
    assert_eq!(tok.encode("xbcd"), [b'x' as u32, 259]);
    assert_eq!(tok.encode(""), Vec::<u32>::new());
}

/// Whether `bytes` (1 to 3 bytes) can be completed into one valid UTF-8 character, checked by trying every
/// second byte and padding with continuation bytes (only the second byte of a sequence is restricted).
fn is_incomplete_char(bytes: &[u8]) -> bool {
    if bytes.is_empty() || bytes.len() > 3 {
        return false;
    }
    (bytes.len() + 1..=4).any(|total| {
        (0x80..=0xbfu8).any(|second| {
            let mut seq = bytes.to_vec();
            if seq.len() == 1 {
                seq.push(second);
            }
            seq.resize(total, 0x80);
            std::str::from_utf8(&seq).is_ok_and(|s| s.chars().count() == 1)
        })
    })
}

fn id_sequence() -> impl Strategy<Value = Vec<u32>> {
    // Single bytes (ids 1..=256) split characters often; the whole vocabulary adds multi-byte tokens.
    proptest::collection::vec(prop_oneof![1..=256u32, 0..WORLD_VOCAB_SIZE as u32], 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decode_inverts_encode(text in any::<String>()) {
        let tok = world();
        prop_assert_eq!(tok.decode(&tok.encode(&text)).unwrap(), text.as_bytes());
    }

    #[test]
    fn decode_inverts_encode_on_text_like_strings(text in "[ \\n\\ta-zA-Z0-9éü東京🙂\\u{301}\\u{200d}.,:;'\"-]{0,200}") {
        let tok = world();
        prop_assert_eq!(tok.decode(&tok.encode(&text)).unwrap(), text.as_bytes());
    }

    #[test]
    fn decode_inverts_encode_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let tok = world();
        prop_assert_eq!(tok.decode(&tok.encode_bytes(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn stream_decoder_yields_the_lossless_prefix(ids in id_sequence()) {
        let tok = world();
        let mut stream = tok.stream_decoder();
        let mut printed = String::new();
        for (i, &id) in ids.iter().enumerate() {
            printed.push_str(&stream.push(id).unwrap());
            let seen = tok.decode(&ids[..=i]).unwrap();
            let held = stream.pending_len();
            prop_assert!(held == 0 || is_incomplete_char(&seen[seen.len() - held..]), "held back {held} bytes");
            prop_assert_eq!(&printed, &String::from_utf8_lossy(&seen[..seen.len() - held]));
        }
        printed.push_str(&stream.finish());
        let all = tok.decode(&ids).unwrap();
        prop_assert_eq!(printed, String::from_utf8_lossy(&all));
    }
}

/// Encoding speed on mixed text (the golden cases and prompt, repeated to 4 MB). Ignored by default because
/// timing on a shared machine is noisy: `cargo test -p rwkv-model encode_throughput -- --ignored`.
#[test]
#[ignore]
fn encode_throughput() {
    let mut unit: String = golden_cases().into_iter().map(|c| c.text).collect();
    unit.push_str(&std::fs::read_to_string(test_data::golden("prompt.txt")).unwrap());
    let text = unit.repeat((4 << 20) / unit.len() + 1);
    let tok = world();
    let start = std::time::Instant::now();
    let ids = tok.encode(&text);
    let mb_per_s = text.len() as f64 / 1e6 / start.elapsed().as_secs_f64();
    eprintln!("encoded {} bytes into {} tokens at {mb_per_s:.1} MB/s", text.len(), ids.len());
    assert!(mb_per_s >= 10.0, "{mb_per_s:.1} MB/s");
}

/// The tokenizer built from the golden GGUF's own `tokenizer.ggml.*` arrays is the built-in one.
#[test]
fn golden_gguf_tokenizer_equals_world() {
    use gguf_file::MetadataValue;
    for name in ["model-f16.gguf", "model-q8_0.gguf"] {
        let model = crate::ModelFile::open(test_data::golden(name)).unwrap();
        let file = model.gguf();
        let array = |key: &str| file.metadata(key).and_then(MetadataValue::as_array).unwrap().clone();
        let types = array("tokenizer.ggml.token_type");
        let types: Vec<i32> = (0..types.len()).map(|i| types.get(i).and_then(|v| v.as_i64()).unwrap() as i32).collect();
        assert_eq!(types, world_token_types(), "{name}: derived World token types");
        let tok = Tokenizer::from_gguf(file).unwrap();
        assert!(&tok == world(), "{name}");
        check_golden_cases(&tok);
    }
}
