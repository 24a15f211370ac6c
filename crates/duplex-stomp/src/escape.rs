//! Header value escaping, per version (STOMP 1.2 "Value Encoding").
//!
//! | version | decoded escapes              | raw octets that cannot be sent |
//! |---------|------------------------------|--------------------------------|
//! | 1.0     | none (a backslash is literal) | LF, CR; `:` in a name          |
//! | 1.1     | `\n` `\c` `\\`               | CR                             |
//! | 1.2     | `\r` `\n` `\c` `\\`          | none                           |
//!
//! `CONNECT`, `STOMP` and `CONNECTED` frames follow the 1.0 column in every
//! version. A carriage return is refused where it cannot be escaped because
//! receivers treat a CR before LF as part of the line end.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;

/// How header octets are written and read in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// STOMP 1.0, and `CONNECT`/`CONNECTED` frames of every version.
    None,
    /// STOMP 1.1.
    V1_1,
    /// STOMP 1.2.
    V1_2,
}

/// Whether `bytes` holds an octet that escaping or validation must look at.
#[inline]
fn has_special(bytes: &[u8]) -> bool {
    memchr::memchr3(b'\\', b':', b'\n', bytes).is_some() || memchr::memchr(b'\r', bytes).is_some()
}

/// Appends one header name or value to `out`, escaped for `escaping`.
pub(crate) fn write_escaped(
    out: &mut BytesMut,
    bytes: &[u8],
    escaping: Escaping,
    is_name: bool,
) -> Result<(), Error> {
    if !has_special(bytes) {
        out.put_slice(bytes);
        return Ok(());
    }
    for &b in bytes {
        match (escaping, b) {
            (Escaping::None, b'\n') => {
                return Err(Error::Unencodable {
                    reason: "line feed in an unescaped header",
                });
            }
            (Escaping::None, b'\r') | (Escaping::V1_1, b'\r') => {
                return Err(Error::Unencodable {
                    reason: "carriage return where it cannot be escaped",
                });
            }
            (Escaping::None, b':') if is_name => {
                return Err(Error::Unencodable {
                    reason: "colon in an unescaped header name",
                });
            }
            (Escaping::None, _) => out.put_u8(b),
            (_, b'\\') => out.put_slice(b"\\\\"),
            (_, b'\n') => out.put_slice(b"\\n"),
            (_, b':') => out.put_slice(b"\\c"),
            (_, b'\r') => out.put_slice(b"\\r"),
            (_, _) => out.put_u8(b),
        }
    }
    Ok(())
}

/// Decodes one header name or value cut from a received frame: the same
/// `Bytes` when there is nothing to unescape, a new buffer otherwise.
pub(crate) fn unescape(raw: Bytes, escaping: Escaping) -> Result<Bytes, Error> {
    if escaping == Escaping::None {
        return Ok(raw);
    }
    let Some(first) = memchr::memchr(b'\\', &raw) else {
        return Ok(raw);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(raw.get(..first).unwrap_or_default());
    let mut rest = raw.get(first..).unwrap_or_default().iter();
    while let Some(&b) = rest.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let decoded = match rest.next() {
            Some(b'n') => b'\n',
            Some(b'c') => b':',
            Some(b'\\') => b'\\',
            Some(b'r') if escaping == Escaping::V1_2 => b'\r',
            _ => return Err(Error::InvalidEscape),
        };
        out.push(decoded);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, e: Escaping, name: bool) -> Result<String, Error> {
        let mut out = BytesMut::new();
        write_escaped(&mut out, s.as_bytes(), e, name)?;
        Ok(String::from_utf8(out.to_vec()).unwrap())
    }

    fn unesc(s: &str, e: Escaping) -> Result<String, Error> {
        unescape(Bytes::copy_from_slice(s.as_bytes()), e)
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn stomp_1_0_neither_escapes_nor_unescapes() {
        assert_eq!(
            unesc(r"a\nb\cc\\d\t", Escaping::None).unwrap(),
            r"a\nb\cc\\d\t"
        );
        assert_eq!(esc(r"a:b\c", Escaping::None, false).unwrap(), r"a:b\c");
        assert!(matches!(
            esc("a\nb", Escaping::None, false),
            Err(Error::Unencodable { .. })
        ));
        assert!(matches!(
            esc("a\rb", Escaping::None, false),
            Err(Error::Unencodable { .. })
        ));
        assert!(matches!(
            esc("a:b", Escaping::None, true),
            Err(Error::Unencodable { .. })
        ));
    }

    #[test]
    fn stomp_1_1_escapes_lf_colon_backslash_only() {
        assert_eq!(unesc(r"a\nb", Escaping::V1_1).unwrap(), "a\nb");
        assert_eq!(unesc(r"a\cb", Escaping::V1_1).unwrap(), "a:b");
        assert_eq!(unesc(r"a\\b", Escaping::V1_1).unwrap(), "a\\b");
        // `\r` is undefined in 1.1 and therefore a fatal error.
        assert_eq!(unesc(r"a\rb", Escaping::V1_1), Err(Error::InvalidEscape));
        assert_eq!(unesc(r"a\tb", Escaping::V1_1), Err(Error::InvalidEscape));
        assert_eq!(
            unesc("trailing\\", Escaping::V1_1),
            Err(Error::InvalidEscape)
        );
        assert_eq!(
            esc("a\nb:c\\d", Escaping::V1_1, false).unwrap(),
            r"a\nb\cc\\d"
        );
        assert!(matches!(
            esc("a\rb", Escaping::V1_1, false),
            Err(Error::Unencodable { .. })
        ));
    }

    #[test]
    fn stomp_1_2_adds_carriage_return() {
        assert_eq!(unesc(r"a\rb", Escaping::V1_2).unwrap(), "a\rb");
        assert_eq!(unesc(r"\r\n\c\\", Escaping::V1_2).unwrap(), "\r\n:\\");
        assert_eq!(unesc(r"a\tb", Escaping::V1_2), Err(Error::InvalidEscape));
        assert_eq!(esc("\r\n:\\", Escaping::V1_2, true).unwrap(), r"\r\n\c\\");
    }

    #[test]
    fn unescape_without_backslash_shares_the_buffer() {
        let raw = Bytes::from_static(b"plain:value");
        let out = unescape(raw.clone(), Escaping::V1_2).unwrap();
        assert_eq!(out.as_ptr(), raw.as_ptr());
    }
}
