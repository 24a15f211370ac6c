//! JSONP polling (v3 only): responses wrapped as `___eio[<j>]("<payload>");`
//! and POST bodies form-encoded as `d=<payload>`.
//!
//! The payload inside is a [`PayloadFormat::V3String`](crate::PayloadFormat::V3String)
//! payload. Both directions follow the reference server's
//! `polling-jsonp` transport byte for byte.

use bytes::{BufMut, BytesMut};

use crate::Error;
use crate::handshake::percent_decode;

/// Appends the JSONP response `___eio[<index>]("<payload>");` to `out`.
///
/// `index` is the `j` query parameter (digits only, see
/// [`HandshakeQuery::jsonp_index`](crate::HandshakeQuery::jsonp_index)).
/// The payload is escaped as `JSON.stringify` escapes a string, plus
/// U+2028 and U+2029, which JSON allows but JavaScript did not.
pub fn encode_jsonp(index: &str, payload: &str, out: &mut BytesMut) {
    out.reserve(payload.len() + index.len() + 12);
    out.extend_from_slice(b"___eio[");
    out.extend_from_slice(index.as_bytes());
    out.extend_from_slice(b"](\"");
    escape_js_string(payload, out);
    out.extend_from_slice(b"\");");
}

fn escape_js_string(text: &str, out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0x00..=0x1f => Some(b""),
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                Some(b"")
            }
            _ => None,
        };
        let Some(escape) = escape else {
            i += 1;
            continue;
        };
        out.extend_from_slice(bytes.get(plain_from..i).unwrap_or_default());
        if !escape.is_empty() {
            out.extend_from_slice(escape);
            i += 1;
        } else if b == 0xe2 {
            let last = bytes.get(i + 2).copied().unwrap_or(0xa8);
            out.extend_from_slice(if last == 0xa8 { b"\\u2028" } else { b"\\u2029" });
            i += 3;
        } else {
            out.extend_from_slice(b"\\u00");
            let hex = |n: u8| HEX.get(usize::from(n)).copied().unwrap_or(b'0');
            out.put_u8(hex(b >> 4));
            out.put_u8(hex(b & 0xf));
            i += 1;
        }
        plain_from = i;
    }
    out.extend_from_slice(bytes.get(plain_from..).unwrap_or_default());
}

/// Extracts the payload from a JSONP POST body `d=<payload>`.
///
/// The field is form-decoded (`+` and `%XX`), then the newline escaping of
/// the JSONP client is undone as the reference server does it: `\n` (a
/// backslash and `n`) becomes a newline, and `\\n` becomes `\n`.
pub fn decode_jsonp_body(body: &[u8]) -> Result<String, Error> {
    let mut data = None;
    for pair in body.split(|&b| b == b'&') {
        let (key, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (
                pair.get(..i).unwrap_or_default(),
                pair.get(i + 1..).unwrap_or_default(),
            ),
            None => (pair, &[][..]),
        };
        if percent_decode(key)? == "d" {
            if data.is_some() {
                return Err(Error::InvalidJsonpBody);
            }
            data = Some(value);
        }
    }
    let data = percent_decode(data.ok_or(Error::InvalidJsonpBody)?)?;
    if memchr::memchr(b'\\', data.as_bytes()).is_none() {
        return Ok(data.into_owned());
    }
    // Pass 1, /(\\)?\\n/g: a lone `\n` becomes a newline, `\\n` is kept.
    let mut first = String::with_capacity(data.len());
    let mut rest = data.as_ref();
    while let Some(i) = rest.find('\\') {
        let (before, from) = rest.split_at(i);
        first.push_str(before);
        if from.starts_with("\\\\n") {
            first.push_str("\\\\n");
            rest = from.get(3..).unwrap_or_default();
        } else if from.starts_with("\\n") {
            first.push('\n');
            rest = from.get(2..).unwrap_or_default();
        } else {
            first.push('\\');
            rest = from.get(1..).unwrap_or_default();
        }
    }
    first.push_str(rest);
    // Pass 2, /\\\\n/g: `\\n` becomes `\n`.
    Ok(first.replace("\\\\n", "\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonp(index: &str, payload: &str) -> String {
        let mut out = BytesMut::new();
        encode_jsonp(index, payload, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    // v3 spec, "JSONP": `___eio[4]("packet data");`.
    #[test]
    fn spec_example() {
        assert_eq!(jsonp("4", "packet data"), r#"___eio[4]("packet data");"#);
    }

    #[test]
    fn escapes_like_json_stringify() {
        assert_eq!(jsonp("0", "6:4hello"), r#"___eio[0]("6:4hello");"#);
        assert_eq!(jsonp("1", "a\"b\\c"), r#"___eio[1]("a\"b\\c");"#);
        assert_eq!(
            jsonp("1", "\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}"),
            "___eio[1](\"\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}\");"
        );
        assert_eq!(
            jsonp("2", "a\u{2028}b\u{2029}€😀"),
            "___eio[2](\"a\\u2028b\\u2029€😀\");"
        );
    }

    #[test]
    fn post_body_decoding() {
        assert_eq!(decode_jsonp_body(b"d=6%3A4hello").unwrap(), "6:4hello");
        assert_eq!(decode_jsonp_body(b"x=1&d=2:4+").unwrap(), "2:4 ");
        // The client escapes newlines as `\n` and `\n` literals as `\\n`.
        assert_eq!(decode_jsonp_body(br"d=3:4a\nb").unwrap(), "3:4a\nb");
        assert_eq!(decode_jsonp_body(br"d=a\\nb").unwrap(), r"a\nb");
        assert_eq!(decode_jsonp_body(br"d=a\b").unwrap(), r"a\b");
        assert_eq!(decode_jsonp_body(b"d=%E2%82%AC").unwrap(), "€");
    }

    #[test]
    fn post_body_errors() {
        assert!(matches!(
            decode_jsonp_body(b"x=1"),
            Err(Error::InvalidJsonpBody)
        ));
        assert!(matches!(
            decode_jsonp_body(b"d=1&d=2"),
            Err(Error::InvalidJsonpBody)
        ));
        assert!(matches!(
            decode_jsonp_body(b"d=%ff"),
            Err(Error::InvalidQueryEncoding)
        ));
    }
}
