//! [`Utf8Bytes`]: UTF-8 text held in reference-counted bytes.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

use crate::utf8::{self, InvalidUtf8};

/// UTF-8 text stored in [`Bytes`], so that a message's text can be a slice
/// of the buffer it was read into and can be handed from one protocol crate
/// to the next (WebSocket frame, Engine.IO packet, Socket.IO namespace,
/// SockJS message) without a copy or a second check.
///
/// Every constructor starts from a `str` or checks the bytes, except
/// [`Utf8Bytes::from_validated`], which trusts a check the caller already
/// made. Because that one is safe to call, [`Utf8Bytes::as_str`] does not
/// take the invariant on faith: it proves ASCII a word at a time and checks
/// anything else with SIMD, so broken bytes read back as `""`, never as
/// undefined behaviour.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// An empty text.
    pub const fn new() -> Self {
        Self(Bytes::new())
    }

    /// Text from a static string, without allocating.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// Checks that `bytes` is UTF-8 and wraps it without copying (the same
    /// as `Utf8Bytes::try_from(bytes)`, named like `String::from_utf8`).
    #[inline]
    pub fn from_utf8(bytes: Bytes) -> Result<Self, InvalidUtf8> {
        utf8::validate(&bytes)?;
        Ok(Self(bytes))
    }

    /// A copy of a borrowed string. (`From<&'static str>` does not copy;
    /// this is for strings that do not live that long.)
    pub fn copy_from_str(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// Wraps bytes that the caller has already proven to be UTF-8 (a text
    /// frame checked piece by piece while it arrived, a slice of checked
    /// text cut at character boundaries), so that they are not checked a
    /// second time.
    ///
    /// Passing bytes that are not UTF-8 is a bug in the caller; it cannot
    /// cause undefined behaviour (`as_str` gives `""` for them), and debug
    /// builds assert against it.
    #[inline]
    pub fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(
            utf8::validate(&bytes).is_ok(),
            "from_validated given bytes that are not UTF-8"
        );
        Self(bytes)
    }

    /// The text as `&str`.
    ///
    /// The bytes were checked on the way in; this checks them again (ASCII
    /// a word at a time, anything else with SIMD), since the workspace
    /// keeps `unsafe` to proving ASCII. Callers that only forward the text
    /// can use [`Utf8Bytes::as_bytes`] instead.
    #[inline]
    pub fn as_str(&self) -> &str {
        utf8::as_str(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared buffer the text lives in, borrowed: for callers that keep
    /// a cheap clone of it as a key or hand it to a byte-level API.
    #[inline]
    pub fn as_shared_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The underlying bytes, without copying.
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The part of `self` that `subset` borrows (a `&str` taken from
    /// [`Utf8Bytes::as_str`] and cut at character boundaries), as
    /// `Utf8Bytes` sharing the same buffer: no copy and no check, since a
    /// `&str` is UTF-8.
    ///
    /// Panics if a non-empty `subset` does not lie inside `self`, as
    /// [`Bytes::slice_ref`] does; an empty one gives an empty text.
    pub fn slice_ref(&self, subset: &str) -> Self {
        Self(self.0.slice_ref(subset.as_bytes()))
    }

    /// Length in UTF-16 code units, the unit of Engine.IO v3 string
    /// payloads (JavaScript's `String.prototype.length`).
    pub fn utf16_len(&self) -> usize {
        utf8::utf16_len(&self.0)
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Lets a `HashMap<Utf8Bytes, _>` or `BTreeMap` be searched with a `&str`;
/// `Hash` and `Ord` agree with `str`'s for that reason.
impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Utf8Bytes {
    // Hashed as the `str` it is, so that `Borrow<str>` lookups find it
    // (`Bytes` hashes as a byte slice, which hashes differently).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
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
    type Error = InvalidUtf8;

    #[inline]
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        Self::from_utf8(bytes)
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl From<Utf8Bytes> for String {
    fn from(text: Utf8Bytes) -> Self {
        text.as_str().to_owned()
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

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<[u8]> for Utf8Bytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[u8]> for Utf8Bytes {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        other == self
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        other == self
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
    use std::collections::{BTreeSet, HashSet};

    use super::*;

    #[test]
    fn checked_constructors_accept_utf8_and_reject_the_rest() {
        let text = Utf8Bytes::try_from(Bytes::from_static("κόσμε €".as_bytes())).unwrap();
        assert_eq!(text, "κόσμε €");
        assert_eq!(text.len(), "κόσμε €".len());
        assert_eq!(
            Utf8Bytes::from_utf8(Bytes::from_static(b"ab\xff")),
            Err(InvalidUtf8)
        );
        assert_eq!(
            Utf8Bytes::try_from(Bytes::from_static(b"\xed\xa0\x80")),
            Err(InvalidUtf8)
        );
        assert_eq!(Utf8Bytes::from(String::from("owned")), "owned");
        assert_eq!(Utf8Bytes::copy_from_str(&String::from("copy")), "copy");
        assert!(Utf8Bytes::new().is_empty());
        assert_eq!(Utf8Bytes::default(), "");
    }

    #[test]
    fn static_and_owned_text_share_their_buffers() {
        static HELLO: &str = "hello";
        let text = Utf8Bytes::from(HELLO);
        assert_eq!(text.as_bytes().as_ptr(), HELLO.as_ptr());
        let received = Bytes::from(b"abc".to_vec());
        let ptr = received.as_ptr();
        let text = Utf8Bytes::try_from(received).unwrap();
        assert_eq!(text.into_bytes().as_ptr(), ptr);
    }

    #[test]
    fn slice_ref_cuts_without_copying() {
        let text = Utf8Bytes::from(String::from("/chat,17[\"é\"]"));
        let comma = text.find(',').unwrap();
        let ns = text.slice_ref(&text[..comma]);
        assert_eq!(ns, "/chat");
        assert_eq!(ns.as_bytes().as_ptr(), text.as_bytes().as_ptr());
        let tail = text.slice_ref(&text[comma + 3..]);
        assert_eq!(tail, "[\"é\"]");
        assert_eq!(text.slice_ref(""), "");
    }

    #[test]
    fn unchecked_bytes_that_are_not_utf8_read_as_empty() {
        // What a buggy `from_validated` caller gets in release builds:
        // the bytes survive, the text view is empty, nothing is unsound.
        if cfg!(debug_assertions) {
            let caught =
                std::panic::catch_unwind(|| Utf8Bytes::from_validated(Bytes::from_static(b"\xff")));
            assert!(caught.is_err());
        } else {
            let broken = Utf8Bytes::from_validated(Bytes::from_static(b"\xff"));
            assert_eq!(broken.as_str(), "");
            assert_eq!(broken.as_bytes(), b"\xff");
        }
        let fine = Utf8Bytes::from_validated(Bytes::from_static(b"ok"));
        assert_eq!(fine.as_str(), "ok");
    }

    #[test]
    fn looks_up_by_str_in_hashed_and_ordered_sets() {
        let hashed: HashSet<Utf8Bytes> = ["/", "/chat", "é"]
            .into_iter()
            .map(Utf8Bytes::from)
            .collect();
        assert!(hashed.contains("/chat"));
        assert!(hashed.contains("é"));
        assert!(!hashed.contains("/admin"));
        let ordered: BTreeSet<Utf8Bytes> =
            ["b", "a", "é"].into_iter().map(Utf8Bytes::from).collect();
        assert!(ordered.contains("é"));
        let as_strs: Vec<&str> = ordered.iter().map(Utf8Bytes::as_str).collect();
        let mut sorted = vec!["b", "a", "é"];
        sorted.sort();
        assert_eq!(as_strs, sorted);
    }

    #[test]
    fn formats_and_derefs_as_str() {
        let text = Utf8Bytes::from("say \"hi\"");
        assert_eq!(format!("{text}"), "say \"hi\"");
        assert_eq!(format!("{text:?}"), "\"say \\\"hi\\\"\"");
        assert!(text.starts_with("say"));
        assert_eq!(String::from(text.clone()), "say \"hi\"");
        assert_eq!(Bytes::from(text), Bytes::from_static(b"say \"hi\""));
    }

    #[test]
    fn utf16_length_counts_code_units_like_javascript() {
        assert_eq!(Utf8Bytes::from("hello").utf16_len(), 5);
        // "€" is one UTF-16 unit but three UTF-8 bytes.
        assert_eq!(Utf8Bytes::from("€").utf16_len(), 1);
        // An astral-plane character is a surrogate pair: two units.
        assert_eq!(Utf8Bytes::from("😀").utf16_len(), 2);
        assert_eq!(Utf8Bytes::from("aé€😀").utf16_len(), 5);
    }
}
