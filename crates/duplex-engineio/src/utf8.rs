//! [`Utf8Bytes`]: text held in reference-counted bytes, cut without copying.

use std::fmt;

use bytes::Bytes;

/// UTF-8 text stored in [`Bytes`], so that a packet's text can be a slice of
/// the buffer it was read into.
///
/// The bytes are always valid UTF-8: every constructor checks it (or starts
/// from a `str`).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a static string, without allocating.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// An empty text.
    pub const fn new() -> Self {
        Self::from_static("")
    }

    /// Checks that `bytes` is UTF-8 and wraps it without copying.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, crate::Error> {
        match simdutf8::basic::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(crate::Error::InvalidUtf8),
        }
    }

    /// Wraps bytes already known to be UTF-8 (a slice of checked text cut
    /// at a character boundary).
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        debug_assert!(simdutf8::basic::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text.
    ///
    /// `#![forbid(unsafe_code)]` rules out an unchecked conversion, so this
    /// re-checks the (always valid) bytes with a SIMD validator; hot paths
    /// that only copy the text should use [`Utf8Bytes::as_bytes`].
    pub fn as_str(&self) -> &str {
        simdutf8::basic::from_utf8(&self.0).unwrap_or_default()
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in UTF-16 code units, the unit of Engine.IO v3 string payloads
    /// (JavaScript's `String.prototype.length`).
    pub fn utf16_len(&self) -> usize {
        utf16_len(&self.0)
    }
}

/// UTF-16 code units of valid UTF-8: one per char, two for a char that
/// needs four bytes, i.e. every byte except continuation bytes, plus one
/// per four-byte lead byte.
pub(crate) fn utf16_len(utf8: &[u8]) -> usize {
    if utf8.is_ascii() {
        return utf8.len();
    }
    utf8.iter()
        .map(|&b| match b {
            0x80..=0xbf => 0,
            0xf0..=0xff => 2,
            _ => 1,
        })
        .sum()
}

impl From<&'static str> for Utf8Bytes {
    fn from(text: &'static str) -> Self {
        Self::from_static(text)
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = crate::Error;
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        Self::try_from_bytes(bytes)
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_length_counts_code_units_like_javascript() {
        assert_eq!(Utf8Bytes::from("hello").utf16_len(), 5);
        // "€" is one UTF-16 unit but three UTF-8 bytes.
        assert_eq!(Utf8Bytes::from("€").utf16_len(), 1);
        // An astral-plane character is a surrogate pair: two units.
        assert_eq!(Utf8Bytes::from("😀").utf16_len(), 2);
        assert_eq!(Utf8Bytes::from("aé€😀").utf16_len(), 5);
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert!(matches!(
            Utf8Bytes::try_from_bytes(Bytes::from_static(b"\xff")),
            Err(crate::Error::InvalidUtf8)
        ));
    }
}
