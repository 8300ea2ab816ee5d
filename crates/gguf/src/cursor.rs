//! A bounds-checked little-endian cursor over the bytes of a file. Nothing here panics or allocates more
//! than the bytes that are actually there.

use crate::error::ErrorKind;

/// The most items reserved up front for a list whose length a file declares.
pub(crate) const PREALLOC_CAP: u64 = 4096;

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    /// The next `n` bytes; `what` names the field for the error if the file ends first.
    pub(crate) fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], ErrorKind> {
        if n > self.remaining() {
            return Err(ErrorKind::Truncated {
                what: what(),
                offset: self.pos(),
                needed: n,
                file_len: self.buf.len() as u64,
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], ErrorKind> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, ErrorKind> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, ErrorKind> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Refuses a count or length that could not fit in the whole file even if every item had its smallest
    /// size. Counts that pass may still run past the end; reading the items then reports the truncation
    /// precisely. Nothing may be pre-allocated from a count beyond [`PREALLOC_CAP`] items: allocations follow
    /// the bytes actually read.
    pub(crate) fn check_count(
        &self,
        count: u64,
        min_size: u64,
        unit: &'static str,
        what: &dyn Fn() -> String,
    ) -> Result<(), ErrorKind> {
        match count.checked_mul(min_size) {
            Some(bytes) if bytes <= self.buf.len() as u64 => Ok(()),
            _ => Err(ErrorKind::CountTooLarge {
                what: what(),
                count,
                unit,
                offset: self.pos(),
                file_len: self.buf.len() as u64,
            }),
        }
    }

    /// A GGUF string: u64 byte length, then that many UTF-8 bytes.
    pub(crate) fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, ErrorKind> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        self.check_count(len, 1, "bytes", &|| format!("length of {}", what()))?;
        let offset = self.pos();
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(ErrorKind::InvalidUtf8 { what: what(), offset }),
        }
    }
}
