//! The escaping of `tokenizer.ggml.tokens` in RWKV GGUF files (Python `repr` of a byte string without the
//! `b'…'` wrapper), undone the way llama.cpp does it: `\t \n \r` are control characters, `\xhh` is one byte,
//! `\` followed by any other character is that character; every other character stands for its UTF-8 bytes.

/// The bytes an escaped token string stands for, or why it is malformed.
pub fn unescape_token(escaped: &str) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            None => return Err("backslash at the end"),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let hi = bytes.next().and_then(hex_value);
                let lo = bytes.next().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err("\\x not followed by two hex digits"),
                }
            }
            // A multi-byte character after the backslash: its first byte here, the rest by the loop.
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

/// The inverse of [`unescape_token`] as Python's `repr(bytes)` writes it (used to write vocabularies).
pub fn escape_token(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_escapes() {
        assert_eq!(unescape_token("\\n").unwrap(), b"\n");
        assert_eq!(unescape_token("\\xff").unwrap(), [0xff]);
        assert_eq!(unescape_token("\\xC3\\xa9").unwrap(), [0xc3, 0xa9]);
        assert_eq!(unescape_token("a\\'b\\\\").unwrap(), b"a'b\\");
        assert_eq!(unescape_token("\\t \\r").unwrap(), b"\t \r");
        assert_eq!(unescape_token("é").unwrap(), "é".as_bytes());
        assert_eq!(unescape_token("\\é").unwrap(), "é".as_bytes());
        assert!(unescape_token("\\").is_err());
        assert!(unescape_token("\\x4").is_err());
        assert!(unescape_token("\\xg0").is_err());
    }

    proptest! {
        #[test]
        fn escape_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let escaped = escape_token(&bytes);
            prop_assert!(escaped.is_ascii());
            prop_assert_eq!(unescape_token(&escaped).unwrap(), bytes);
        }
    }
}
