//! A bounds-checked little-endian reader for the crate's encodings: every read that would pass
//! the end is a [`ModelError::Corrupt`] naming the field, never a panic.

use crate::error::ModelError;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// The next `n` bytes, or `Corrupt` naming `what` when fewer are left.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelError> {
        let left = self.left();
        if left < n {
            return Err(ModelError::Corrupt(format!(
                "truncated: {what} needs {n} bytes at offset {}, {left} left",
                self.pos
            )));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ModelError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn f64(&mut self, what: &str) -> Result<f64, ModelError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// Bytes not read yet.
    pub(crate) fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exactly_to_the_end_and_not_past_it() {
        let bytes = [1u8, 2, 0, 3, 0, 0, 0];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 2);
        assert_eq!(r.take(4, "c").unwrap(), &[3, 0, 0, 0]);
        assert_eq!(r.left(), 0);
        let err = r.u8("d").unwrap_err();
        assert!(matches!(err, ModelError::Corrupt(ref m) if m.contains("d needs 1 bytes")));
        let mut short = Reader::new(&bytes[..7]);
        assert!(short.f64("e").is_err());
        assert_eq!(short.left(), 7, "a failed read consumes nothing");
    }
}
