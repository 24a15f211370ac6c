//! The check every payload passes before anyone sees it: one JSON value
//! (RFC 8259) in UTF-8, and its top-level shape.
//!
//! A single pass over the bytes ([`scan_json`]) accepts the payloads seen
//! in practice; anything it does not accept (an error, nesting deeper
//! than it tracks, a bare top-level number) goes to serde_json, which
//! gives the final answer and the error message. The pass also proves the
//! payload is UTF-8: outside strings it accepts ASCII grammar bytes only,
//! and a string holding non-ASCII bytes is validated from its first such
//! byte to its closing quote. So the packet decoder needs no separate
//! UTF-8 pass over the text (callgrind: that pass and the JSON walk were
//! the two largest costs of a decode).

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::Error;

/// The top-level shape of a JSON payload, read without building it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Array { empty: bool },
    Object,
    String,
    Other,
}

/// Checks that `json` is UTF-8 holding one JSON value and returns its
/// top-level shape.
///
/// Every packet's payload is checked here, as the reference parser's
/// `JSON.parse` does, so a malformed packet closes the connection.
pub(crate) fn shape(json: &[u8]) -> Result<Shape, Error> {
    match scan_json(json) {
        Some(shape) => Ok(shape),
        None => shape_slow(json),
    }
}

/// What the one-pass scan does not accept: UTF-8 first (serde_json's
/// walk does not validate the inside of strings it skips), then
/// serde_json's answer.
#[cold]
fn shape_slow(json: &[u8]) -> Result<Shape, Error> {
    if simdutf8::basic::from_utf8(json).is_err() {
        return Err(Error::InvalidUtf8);
    }
    shape_by_serde(json)
}

/// serde_json's answer: the reference for what [`scan_json`] accepts, and
/// the error for what it does not.
pub(crate) fn shape_by_serde(json: &[u8]) -> Result<Shape, Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let shape = de
        .deserialize_any(ShapeVisitor)
        .map_err(Error::InvalidJson)?;
    de.end().map_err(Error::InvalidJson)?;
    Ok(shape)
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut empty = true;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            empty = false;
        }
        Ok(Shape::Array { empty })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape::Object)
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::String)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

/// Containers open around the current position, as one bit each (set for
/// an object); deeper nesting than the bits hold is left to serde_json.
#[derive(Default)]
struct Nesting {
    bits: u64,
    depth: u32,
}

impl Nesting {
    fn push(&mut self, object: bool) -> Option<()> {
        if self.depth >= u64::BITS {
            return None;
        }
        self.bits = (self.bits << 1) | u64::from(object);
        self.depth += 1;
        Some(())
    }

    fn pop(&mut self) {
        self.bits >>= 1;
        self.depth -= 1;
    }

    /// `Some(true)` inside an object, `Some(false)` inside an array.
    fn top(&self) -> Option<bool> {
        (self.depth > 0).then_some(self.bits & 1 == 1)
    }
}

#[inline(always)]
fn skip_whitespace(json: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = json.get(i) {
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES * 0x80;

/// The high bit of every byte of `word` (little-endian) that ends the
/// fast run inside a string: the quote, the backslash, or a control
/// character (JSON forbids them unescaped). The lowest set bit is exact
/// (higher ones may be false positives from borrows, which only the first
/// match avoids).
#[inline(always)]
fn string_stops(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(ONES) & !quote;
    let zero_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (zero_quote | zero_backslash | control) & HIGH
}

/// The eight bytes from `i` as a little-endian word. Past the end of
/// `json` they read as zero, a control character, so a string running
/// off the end stops there (and is rejected) instead of falling back to a
/// byte-at-a-time tail.
#[inline(always)]
fn word_at(json: &[u8], i: usize) -> u64 {
    match json
        .get(i..i.wrapping_add(8))
        .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
    {
        Some(chunk) => u64::from_le_bytes(chunk),
        None => word_at_end(json, i),
    }
}

/// [`word_at`] for the last (fewer than eight) bytes.
#[cold]
fn word_at_end(json: &[u8], i: usize) -> u64 {
    json.get(i..)
        .unwrap_or_default()
        .iter()
        .take(8)
        .rev()
        .fold(0, |word, &b| (word << 8) | u64::from(b))
}

/// The index after the string opening at `i` (which holds `"`), once its
/// escapes are JSON's and its bytes UTF-8.
#[inline(always)]
fn scan_string(json: &[u8], i: usize) -> Option<usize> {
    // Most strings are short, ASCII and without escapes: one or two words
    // to the closing quote.
    let mut at = i + 1;
    loop {
        let word = word_at(json, at);
        let stops = string_stops(word) | (word & HIGH);
        if stops == 0 {
            at += 8;
            continue;
        }
        at += (stops.trailing_zeros() / 8) as usize;
        return if json.get(at) == Some(&b'"') {
            Some(at + 1)
        } else {
            scan_string_rest(json, at)
        };
    }
}

/// The rest of a string from `at`, a backslash, a control or a non-ASCII
/// byte (or the end of the input).
#[cold]
#[inline(never)]
fn scan_string_rest(json: &[u8], mut at: usize) -> Option<usize> {
    // Until the first non-ASCII byte, high bytes stop the word search too;
    // from that byte to the closing quote the text is validated in one go
    // (a run of non-ASCII text is not stopped at every character).
    let mut high = HIGH;
    let mut utf8_from = None;
    loop {
        match *json.get(at)? {
            b'"' => {
                if let Some(from) = utf8_from {
                    simdutf8::basic::from_utf8(json.get(from..at)?).ok()?;
                }
                return Some(at + 1);
            }
            b'\\' => match *json.get(at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                b'u' => {
                    let hex = json.get(at + 2..at + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    at += 6;
                }
                _ => return None,
            },
            0x80.. => {
                utf8_from = utf8_from.or(Some(at));
                high = 0;
                at += 1;
            }
            _ => return None,
        }
        loop {
            let word = word_at(json, at);
            let stops = string_stops(word) | (word & high);
            if stops != 0 {
                at += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
    }
}

/// The index after `"key":` when the key's string opens at or after `i`
/// (past whitespace).
#[inline(always)]
fn scan_key(json: &[u8], i: usize) -> Option<usize> {
    let i = skip_whitespace(json, i);
    if json.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_whitespace(json, scan_string(json, i)?);
    if json.get(i) != Some(&b':') {
        return None;
    }
    Some(i + 1)
}

fn scan_digits(json: &[u8], mut i: usize) -> (usize, bool) {
    let start = i;
    while json.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    (i, i > start)
}

/// The index after the number starting at `i`:
/// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn scan_number(json: &[u8], mut i: usize) -> Option<usize> {
    if json.get(i) == Some(&b'-') {
        i += 1;
    }
    match json.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = scan_digits(json, i).0,
        _ => return None,
    }
    if json.get(i) == Some(&b'.') {
        let (end, any) = scan_digits(json, i + 1);
        if !any {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = json.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = json.get(i) {
            i += 1;
        }
        let (end, any) = scan_digits(json, i);
        if !any {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// One pass over `json` checking that it is UTF-8 and one JSON value
/// (RFC 8259). `None` when it is not sure the text is valid: the caller
/// then asks serde_json.
pub(crate) fn scan_json(json: &[u8]) -> Option<Shape> {
    let mut i = skip_whitespace(json, 0);
    let shape = match json.get(i)? {
        b'[' => Shape::Array {
            empty: json.get(skip_whitespace(json, i + 1)) == Some(&b']'),
        },
        b'{' => Shape::Object,
        b'"' => Shape::String,
        // A number alone may be out of serde_json's range (`1e999`).
        b'-' | b'0'..=b'9' => return None,
        _ => Shape::Other,
    };
    let mut nesting = Nesting::default();
    'value: loop {
        // A value starts at `i` (maybe after whitespace).
        i = skip_whitespace(json, i);
        match *json.get(i)? {
            b'"' => i = scan_string(json, i)?,
            b'[' => {
                nesting.push(false)?;
                i = skip_whitespace(json, i + 1);
                if json.get(i) != Some(&b']') {
                    continue 'value;
                }
                nesting.pop();
                i += 1;
            }
            b'{' => {
                nesting.push(true)?;
                i = skip_whitespace(json, i + 1);
                if json.get(i) != Some(&b'}') {
                    i = scan_key(json, i)?;
                    continue 'value;
                }
                nesting.pop();
                i += 1;
            }
            b't' if json.get(i..i + 4) == Some(b"true") => i += 4,
            b'f' if json.get(i..i + 5) == Some(b"false") => i += 5,
            b'n' if json.get(i..i + 4) == Some(b"null") => i += 4,
            b'-' | b'0'..=b'9' => i = scan_number(json, i)?,
            _ => return None,
        }
        // After a value: close containers, or go on to the next element.
        loop {
            i = skip_whitespace(json, i);
            let Some(object) = nesting.top() else {
                return (i == json.len()).then_some(shape);
            };
            match (*json.get(i)?, object) {
                (b',', false) => {
                    i += 1;
                    continue 'value;
                }
                (b',', true) => {
                    i = scan_key(json, i + 1)?;
                    continue 'value;
                }
                (b']', false) | (b'}', true) => {
                    nesting.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Shape, scan_json, shape, shape_by_serde};

    /// The reference: UTF-8 (the text a decoder checked whole before),
    /// then serde_json.
    fn reference(json: &[u8]) -> Option<Shape> {
        std::str::from_utf8(json).ok()?;
        shape_by_serde(json).ok()
    }

    /// Whatever the fast scanner accepts, the reference accepts with the
    /// same shape (it may hand hard cases to serde_json, never accept
    /// more), and the full check gives the reference's answer.
    fn agrees_bytes(json: &[u8]) {
        let reference = reference(json);
        if let Some(fast) = scan_json(json) {
            assert_eq!(Some(fast), reference, "{json:?}");
        }
        assert_eq!(shape(json).ok(), reference, "{json:?}");
        if std::str::from_utf8(json).is_err() {
            assert!(
                matches!(shape(json), Err(crate::Error::InvalidUtf8)),
                "{json:?}"
            );
        }
    }

    fn agrees(json: &str) {
        agrees_bytes(json.as_bytes());
    }

    #[test]
    fn accepts_common_payloads_with_their_shape() {
        for (json, shape) in [
            (
                r#"["message",1,"2",{"3":[true]}]"#,
                Shape::Array { empty: false },
            ),
            (" [ ] ", Shape::Array { empty: true }),
            (
                r#"{"sid":"abc","n":-1.5e+3,"z":0,"a":[null,false,{}]}"#,
                Shape::Object,
            ),
            (r#""caf\u00e9 \"x\" \\ \/ \b\f\n\r\t""#, Shape::String),
            ("true", Shape::Other),
            ("\t\r\n null \n", Shape::Other),
            (r#"["é ☃ 😀"]"#, Shape::Array { empty: false }),
        ] {
            assert_eq!(scan_json(json.as_bytes()), Some(shape), "{json:?}");
            agrees(json);
        }
    }

    #[test]
    fn rejects_what_json_forbids() {
        for json in [
            "",
            " ",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{1:2}",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[-]",
            "[+1]",
            "[\"\\x\"]",
            "[\"\\u12g4\"]",
            "[\"a\u{1}\"]",
            "[\"open]",
            "[1] x",
            "[1][2]",
            "[tru]",
            "[nul]",
            "[True]",
            "{\"a\":1]",
            "[1}",
            "\"a\" \"b\"",
            "{,}",
            "[1 2]",
        ] {
            assert_eq!(scan_json(json.as_bytes()), None, "{json:?}");
            assert!(shape_by_serde(json.as_bytes()).is_err(), "{json:?}");
        }
    }

    #[test]
    fn word_scan_finds_the_first_stop_byte() {
        for stop in [b'"', b'\\', 0x00, 0x1f] {
            for at in 0..8 {
                for filler in [b'a', b' ', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
                    let mut bytes = [filler; 8];
                    bytes[at] = stop;
                    let found = super::string_stops(u64::from_le_bytes(bytes));
                    assert_eq!(
                        found.trailing_zeros() / 8,
                        at as u32,
                        "{stop} {at} {filler}"
                    );
                }
            }
        }
        for filler in [
            b'a', b' ', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']', 0x21, 0x5b, 0x5d,
        ] {
            assert_eq!(super::string_stops(u64::from_le_bytes([filler; 8])), 0);
        }
    }

    #[test]
    fn deep_nesting_goes_to_serde() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(scan_json(deep.as_bytes()), None);
        assert_eq!(
            super::shape(deep.as_bytes()).ok(),
            Some(Shape::Array { empty: false })
        );
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            "\"",
            "\\",
            "\\\"",
            "\\u00e9",
            "\\uZ",
            "\\n",
            "\\q",
            "a",
            "0",
            "1",
            "9",
            "-",
            ".",
            "e",
            "E",
            "+",
            " ",
            "\n",
            "\u{1}",
            "é",
            "😀",
            "true",
            "false",
            "null",
            "\"k\":",
            "\"s\"",
            "[1,2]",
            "{\"a\":1}",
        ])
    }

    fn value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".{0,10}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::vec((".{0,5}", inner), 0..4)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn non_ascii_strings_are_validated_as_utf8() {
        // Valid: non-ASCII at every offset within a word, runs of it,
        // after escapes, in keys, and at the end of the input.
        for pad in 0..10 {
            let a = "a".repeat(pad);
            for json in [
                format!(r#"["{a}é"]"#),
                format!(r#"["é{a}"]"#),
                format!(r#"["{a}☃😀 caf\u00e9 \"é\" ☃☃☃☃☃☃☃☃☃"]"#),
                format!(r#"{{"{a}ключ":"значение{a}"}}"#),
                format!(r#""{a}😀""#),
            ] {
                assert!(scan_json(json.as_bytes()).is_some(), "{json:?}");
                agrees(&json);
            }
        }
        // Invalid: a lone continuation byte, a truncated sequence, overlong
        // forms, a surrogate, beyond U+10FFFF, bytes that never occur, and
        // non-ASCII outside strings.
        for bad in [
            &b"\x80"[..],
            b"\xc3",
            b"\xc3(",
            b"\xc0\x80",
            b"\xe0\x80\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\xff",
            b"\xe2\x98",
        ] {
            for pad in [0, 3, 7, 8, 12] {
                let a = "a".repeat(pad);
                for json in [
                    [format!(r#"["{a}"#).as_bytes(), bad, b"\"]"].concat(),
                    [format!(r#"["{a}é"#).as_bytes(), bad, b"\"]"].concat(),
                    [format!(r#"["{a}"#).as_bytes(), bad, br#"x\n"]"#].concat(),
                    [br#"{""#, bad, format!(r#"{a}":1}}"#).as_bytes()].concat(),
                ] {
                    assert_eq!(scan_json(&json), None, "{json:?}");
                    assert!(
                        matches!(shape(&json), Err(crate::Error::InvalidUtf8)),
                        "{json:?}"
                    );
                }
            }
        }
        for json in [
            &b"[\xc3\xa9]"[..],
            b"[1]\xc3\xa9",
            b"\xef\xbb\xbf[1]",
            b"[1,\xff]",
        ] {
            assert_eq!(scan_json(json), None, "{json:?}");
            assert!(shape(json).is_err(), "{json:?}");
            agrees_bytes(json);
        }
    }

    #[test]
    fn words_past_the_end_read_as_zero() {
        let json = b"0123456789";
        assert_eq!(super::word_at(json, 0), u64::from_le_bytes(*b"01234567"));
        assert_eq!(super::word_at(json, 2), u64::from_le_bytes(*b"23456789"));
        assert_eq!(super::word_at(json, 3), u64::from_le_bytes(*b"3456789\0"));
        assert_eq!(
            super::word_at(json, 9),
            u64::from_le_bytes(*b"9\0\0\0\0\0\0\0")
        );
        assert_eq!(super::word_at(json, 10), 0);
        assert_eq!(super::word_at(json, 11), 0);
    }

    #[test]
    fn strings_of_every_length_end_anywhere() {
        for len in 0..40 {
            let s = "x".repeat(len);
            for json in [
                format!(r#""{s}""#),
                format!(r#"["{s}"]"#),
                format!(r#"{{"{s}":"{s}"}}"#),
            ] {
                assert!(scan_json(json.as_bytes()).is_some(), "{json:?}");
                // Cut anywhere: never accepted.
                for cut in 0..json.len() {
                    assert_eq!(scan_json(&json.as_bytes()[..cut]), None, "{json:?} {cut}");
                }
            }
        }
    }

    fn byte_token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            token().prop_map(|t| t.as_bytes().to_vec()),
            prop::sample::select(vec![
                &b"\x80"[..],
                b"\xc3",
                b"\xc3\xa9",
                b"\xc0\x80",
                b"\xed\xa0\x80",
                b"\xe2\x98\x83",
                b"\xf0\x9f\x98\x80",
                b"\xf4\x90\x80\x80",
                b"\xff",
                b"\"\xc3\xa9\"",
                b"\"abcdefgh\xc3\"",
            ])
            .prop_map(<[u8]>::to_vec),
            prop::collection::vec(any::<u8>(), 1..4),
        ]
    }

    proptest! {
        #[test]
        fn token_soup_never_accepted_beyond_serde(tokens in prop::collection::vec(token(), 0..16)) {
            agrees(&tokens.concat());
        }

        #[test]
        fn byte_soup_never_accepted_beyond_utf8_and_serde(tokens in prop::collection::vec(byte_token(), 0..16)) {
            agrees_bytes(&tokens.concat());
        }

        #[test]
        fn every_serialized_container_takes_the_fast_path(v in value(), pretty in any::<bool>()) {
            let json = if pretty {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            }
            .unwrap();
            if v.is_array() || v.is_object() || v.is_string() {
                prop_assert_eq!(scan_json(json.as_bytes()), shape_by_serde(json.as_bytes()).ok());
            } else {
                agrees(&json);
            }
        }
    }
}
