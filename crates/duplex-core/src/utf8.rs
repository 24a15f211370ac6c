//! UTF-8 checks: whole payloads ([`validate`], [`as_str`]) and incremental
//! validation that fails on the first byte that can no longer start or
//! continue a valid sequence, even when the message arrives in pieces
//! (Autobahn 6.4.x checks exactly this).

/// Why bytes were rejected as text: they are not UTF-8. The crate's one
/// error; it is always the fault of whoever produced the bytes, so each
/// protocol crate turns it into its own answer (close code 1007, an
/// Engine.IO or Socket.IO decode error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

/// Validates a text message fed in any number of pieces.
///
/// A code point split across pieces is held (at most 3 bytes) until the next
/// piece completes it; an invalid prefix is reported at once.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: usize,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a code point is split across the last piece and the next.
    pub fn is_mid_code_point(&self) -> bool {
        self.partial_len != 0
    }

    /// Validates the next piece of the message.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len != 0 {
            let width = char_width(self.partial[0]);
            let take = (width - self.partial_len).min(input.len());
            let (head, rest) = input.split_at(take);
            let end = self.partial_len + take;
            self.partial
                .get_mut(self.partial_len..end)
                .ok_or(InvalidUtf8)?
                .copy_from_slice(head);
            self.partial_len = end;
            let pending = self.partial.get(..end).ok_or(InvalidUtf8)?;
            match std::str::from_utf8(pending) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
            input = rest;
        }
        if is_ascii(input) {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = input.get(e.valid_up_to()..).ok_or(InvalidUtf8)?;
                self.partial
                    .get_mut(..tail.len())
                    .ok_or(InvalidUtf8)?
                    .copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the message: an unfinished code point is an error. Resets the
    /// validator for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.partial_len == 0;
        *self = Self::default();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }
}

/// Validates a complete text payload in one call (ASCII a word at a time,
/// anything else with SIMD).
#[inline]
pub fn validate(input: &[u8]) -> Result<(), InvalidUtf8> {
    if is_ascii(input) || simdutf8::basic::from_utf8(input).is_ok() {
        Ok(())
    } else {
        Err(InvalidUtf8)
    }
}

/// `input` as `&str`, or `None` if it is not UTF-8.
///
/// std's `from_utf8` walks a short unaligned payload a byte at a time
/// (about 100 instructions for 16 bytes, as much as decoding the frame
/// around it); ASCII, the common case, is proven here a word at a time.
#[inline]
pub fn as_str(input: &[u8]) -> Option<&str> {
    ascii::as_ascii_str(input).or_else(|| simdutf8::basic::from_utf8(input).ok())
}

/// UTF-16 code units of valid UTF-8 (JavaScript's `String.prototype.length`,
/// the unit of Engine.IO v3 payload lengths): one per char, two for a char
/// that needs four bytes, i.e. every byte except continuation bytes, plus
/// one per four-byte lead byte.
pub fn utf16_len(utf8: &[u8]) -> usize {
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

/// The crate's only `unsafe`: viewing bytes just checked to be ASCII as a
/// `&str` without std checking them again. Kept to this module so the
/// proof sits next to the block; the tests below run under Miri
/// (`cargo +nightly miri test -p duplex-core --lib utf8`).
#[allow(unsafe_code)]
mod ascii {
    /// `input` as `&str` if every byte is ASCII.
    #[inline]
    pub(super) fn as_ascii_str(input: &[u8]) -> Option<&str> {
        if super::is_ascii(input) {
            // SAFETY: `is_ascii` returned true, so every byte is below 0x80,
            // and a sequence of such bytes is valid UTF-8 (each is a
            // one-byte code point).
            Some(unsafe { std::str::from_utf8_unchecked(input) })
        } else {
            None
        }
    }
}

/// Whether every byte is ASCII. Short payloads (the common chat message)
/// are OR-folded a word at a time, which `<[u8]>::is_ascii` does not do
/// for them here (it compiled to a byte loop: 340 instructions for 125
/// bytes against 92); long ones go straight to simdutf8, which handles
/// ASCII at full speed and saves a second pass over non-ASCII text.
#[inline]
fn is_ascii(input: &[u8]) -> bool {
    if input.len() < 32 {
        // std's check is cheapest below a few words (7 instructions at 16).
        return input.is_ascii();
    }
    if input.len() > 256 {
        return false;
    }
    let mut words = input.chunks_exact(8);
    let mut acc = 0u64;
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        acc |= u64::from_ne_bytes(bytes);
    }
    let tail = words.remainder().iter().fold(0u8, |a, b| a | b);
    acc & 0x8080_8080_8080_8080 == 0 && tail < 0x80
}

/// How many bytes the sequence led by `first` takes; 1 for bytes that cannot
/// lead one, so the next check rejects them.
fn char_width(first: u8) -> usize {
    match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], at: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in at {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    #[test]
    fn as_str_agrees_with_std() {
        let samples: [&[u8]; 9] = [
            b"",
            b"hello",
            b"0123456789abcdef0123456789abcdef0123456789",
            "κόσμε 𝄞 hello €".as_bytes(),
            &[0x80],
            &[b'a'; 300],
            &[0xed, 0xa0, 0x80],
            b"0123456789abcdef0123456789abcdef012345678\xff",
            &[0xf4, 0x90, 0x80, 0x80],
        ];
        for sample in samples {
            for start in 0..sample.len().min(9) {
                let bytes = &sample[start..];
                assert_eq!(as_str(bytes), std::str::from_utf8(bytes).ok(), "{bytes:x?}");
            }
        }
        // Every length around the word and fold boundaries, with a high
        // byte at every position.
        // Miri runs this a thousand times slower; 70 still crosses the
        // word (8) and short-input (32) boundaries.
        let max_len = if cfg!(miri) { 70 } else { 300 };
        for len in 0..max_len {
            let mut bytes = vec![b'x'; len];
            assert_eq!(as_str(&bytes), std::str::from_utf8(&bytes).ok());
            for at in 0..len {
                bytes[at] = 0x80;
                assert_eq!(as_str(&bytes), None, "len {len} at {at}");
                bytes[at] = b'x';
            }
        }
    }

    #[test]
    fn accepts_valid_text_split_anywhere() {
        let text = "κόσμε 𝄞 hello €".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(feed_split(text, &[i, j]), Ok(()), "cut at {i},{j}");
            }
        }
    }

    #[test]
    fn rejects_invalid_text_split_anywhere() {
        let bad: &[&[u8]] = &[
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xff",
            b"abc\xe2\x82",
        ];
        for bytes in bad {
            for i in 0..=bytes.len() {
                assert_eq!(
                    feed_split(bytes, &[i]),
                    Err(InvalidUtf8),
                    "{bytes:?} cut at {i}"
                );
            }
        }
    }

    #[test]
    fn fails_on_the_first_impossible_byte() {
        // 0xf4 0x90 can never be valid: rejected before the rest arrives.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ok\xf4"), Ok(()));
        assert!(v.is_mid_code_point());
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        // A surrogate half is rejected at its second byte.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
    }

    #[test]
    fn ascii_fold_matches_std() {
        // Miri runs this a thousand times slower; 70 still crosses the
        // word (8) and short-input (32) boundaries.
        let max_len = if cfg!(miri) { 70 } else { 300 };
        for len in 0..max_len {
            let mut bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(is_ascii(&bytes), len <= 256, "len {len}");
            if let Some(last) = bytes.last_mut() {
                *last = 0xc3;
                assert!(!is_ascii(&bytes), "len {len} with a high byte");
            }
        }
    }

    #[test]
    fn whole_payload_validation() {
        assert_eq!(validate(b"plain"), Ok(()));
        assert_eq!(validate("ü".as_bytes()), Ok(()));
        assert_eq!(validate(b"\xed\xa0\x80"), Err(InvalidUtf8));
    }
}
