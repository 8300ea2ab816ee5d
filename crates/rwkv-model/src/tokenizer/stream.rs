//! Incremental decoding for printing tokens as they are generated.

use super::{Tokenizer, TokenizerError};

/// Turns token ids into text one id at a time. Each [`push`](Self::push) returns only whole UTF-8
/// characters; the bytes of a character split across tokens are held back until it is complete. Bytes that
/// can never become valid UTF-8 come out as U+FFFD exactly as [`String::from_utf8_lossy`] would write them,
/// so the concatenation of every `push` and the final [`finish`](Self::finish) equals
/// `String::from_utf8_lossy(&tokenizer.decode(ids)?)`.
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder with nothing pending (as [`Tokenizer::stream_decoder`] makes).
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        StreamDecoder { tokenizer, pending: Vec::new() }
    }

    /// Appends the bytes of token `id` and returns the text that became complete.
    pub fn push(&mut self, id: u32) -> Result<String, TokenizerError> {
        self.tokenizer.append_decoded(id, &mut self.pending)?;
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The first `valid` bytes were just checked, so this never falls back to the default.
                    out.push_str(std::str::from_utf8(&rest[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: it may still be completed by the next token.
                        None => {
                            rest = &rest[valid..];
                            break;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &rest[valid + bad..];
                        }
                    }
                }
            }
        }
        let kept = rest.len();
        let drained = self.pending.len() - kept;
        self.pending.drain(..drained);
        Ok(out)
    }

    /// Number of bytes held back: the start of a character not yet complete (at most 3).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Ends the stream: the bytes still held back, with U+FFFD for the incomplete character.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}
