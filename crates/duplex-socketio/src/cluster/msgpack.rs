//! MessagePack as notepack.io (the Node adapter's encoder) writes it, and
//! JSON as `JSON.stringify` writes the same values.
//!
//! notepack picks the shortest format for each value, writes every
//! non-integer number as float64, integral numbers as integers, strings as
//! `str` and Buffers as `bin` (never `str`), and skips object keys whose
//! value is `undefined` (which [`Value`] cannot hold, so nothing to skip).

use bytes::Bytes;
use rmp::Marker;
use rmp::encode as enc;

use super::Error;
use crate::Value;

/// How deep arrays and maps may nest in a decoded message: deeper input
/// is refused instead of recursing without bound.
pub const MAX_DEPTH: usize = 64;

/// Encodes `value` as notepack.io does.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(&mut out, value);
    out
}

/// Appends the notepack.io encoding of `value` to `out`.
pub fn encode_into(out: &mut Vec<u8>, value: &Value) {
    // Writing into a Vec cannot fail, so the results are ignored.
    match value {
        Value::Null => {
            let _ = enc::write_nil(out);
        }
        Value::Bool(b) => {
            let _ = enc::write_bool(out, *b);
        }
        Value::Number(n) => encode_number(out, n),
        Value::String(s) => {
            let _ = enc::write_str(out, s);
        }
        Value::Binary(b) => {
            let _ = enc::write_bin(out, b);
        }
        Value::Array(items) => {
            let _ = enc::write_array_len(out, len_u32(items.len()));
            for item in items {
                encode_into(out, item);
            }
        }
        Value::Object(pairs) => {
            let _ = enc::write_map_len(out, len_u32(pairs.len()));
            for (k, v) in pairs {
                let _ = enc::write_str(out, k);
                encode_into(out, v);
            }
        }
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The largest magnitude JavaScript holds exactly; integral floats beyond
/// it are written as float64 here (notepack writes garbage integers).
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

fn encode_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(u) = n.as_u64() {
        let _ = enc::write_uint(out, u);
    } else if let Some(i) = n.as_i64() {
        let _ = enc::write_sint(out, i);
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        // JavaScript has one number type: 2.0 is the integer 2 to notepack
        // (`Math.floor(v) === v`), and -0 is written as 0.
        if f.is_finite() && f.floor() == f && f.abs() <= MAX_SAFE {
            #[allow(clippy::cast_possible_truncation)]
            let i = f as i64;
            let _ = enc::write_sint(out, i);
        } else {
            let _ = enc::write_f64(out, f);
        }
    }
}

/// Decodes one notepack.io (MessagePack) value filling all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, Error> {
    let mut rd = Reader { buf: input, pos: 0 };
    let value = rd.value(0)?;
    if rd.pos != input.len() {
        return Err(Error::Msgpack("trailing bytes"));
    }
    Ok(value)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(Error::Msgpack("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(Error::Msgpack("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn len(&mut self, bytes: usize) -> Result<usize, Error> {
        Ok(match bytes {
            1 => usize::from(self.be::<1>()?[0]),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => usize::try_from(u32::from_be_bytes(self.be()?))
                .map_err(|_| Error::Msgpack("length overflow"))?,
        })
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Msgpack("nested too deeply"));
        }
        let marker = Marker::from_u8(self.be::<1>()?[0]);
        Ok(match marker {
            Marker::FixPos(n) => Value::Number(n.into()),
            Marker::FixNeg(n) => Value::Number(n.into()),
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::U8 => Value::Number(self.be::<1>()?[0].into()),
            Marker::U16 => Value::Number(u16::from_be_bytes(self.be()?).into()),
            Marker::U32 => Value::Number(u32::from_be_bytes(self.be()?).into()),
            Marker::U64 => Value::Number(u64::from_be_bytes(self.be()?).into()),
            Marker::I8 => Value::Number(i8::from_be_bytes(self.be()?).into()),
            Marker::I16 => Value::Number(i16::from_be_bytes(self.be()?).into()),
            Marker::I32 => Value::Number(i32::from_be_bytes(self.be()?).into()),
            Marker::I64 => Value::Number(i64::from_be_bytes(self.be()?).into()),
            Marker::F32 => float(f64::from(f32::from_be_bytes(self.be()?))),
            Marker::F64 => float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(n) => self.string(usize::from(n))?,
            Marker::Str8 => {
                let n = self.len(1)?;
                self.string(n)?
            }
            Marker::Str16 => {
                let n = self.len(2)?;
                self.string(n)?
            }
            Marker::Str32 => {
                let n = self.len(4)?;
                self.string(n)?
            }
            Marker::Bin8 => {
                let n = self.len(1)?;
                Value::Binary(Bytes::copy_from_slice(self.take(n)?))
            }
            Marker::Bin16 => {
                let n = self.len(2)?;
                Value::Binary(Bytes::copy_from_slice(self.take(n)?))
            }
            Marker::Bin32 => {
                let n = self.len(4)?;
                Value::Binary(Bytes::copy_from_slice(self.take(n)?))
            }
            Marker::FixArray(n) => self.array(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.len(2)?;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.len(4)?;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => self.map(usize::from(n), depth)?,
            Marker::Map16 => {
                let n = self.len(2)?;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.len(4)?;
                self.map(n, depth)?
            }
            // notepack's own `undefined` (fixext 1, type 0, data 0) reads
            // back as undefined, which JSON and `Value` know as null.
            Marker::FixExt1 => {
                let [ty, data] = self.be::<2>()?;
                if ty == 0 && data == 0 {
                    Value::Null
                } else {
                    return Err(Error::Msgpack("unsupported extension type"));
                }
            }
            _ => return Err(Error::Msgpack("unsupported MessagePack type")),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, Error> {
        let s = self.take(n)?;
        // notepack decodes invalid UTF-8 with replacement characters.
        Ok(Value::String(String::from_utf8_lossy(s).into_owned()))
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, Error> {
        // Every element takes at least one byte: a length beyond what is
        // left is a lie, and must not size an allocation.
        if n > self.remaining() {
            return Err(Error::Msgpack("truncated"));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, Error> {
        if n > self.remaining() / 2 {
            return Err(Error::Msgpack("truncated"));
        }
        let mut pairs: Vec<(String, Value)> = Vec::with_capacity(n);
        for _ in 0..n {
            // JavaScript object keys are strings: numbers and the like
            // become their decimal text.
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".to_owned(),
                _ => return Err(Error::Msgpack("map key is not a string")),
            };
            let value = self.value(depth + 1)?;
            // A repeated key overwrites the first in place, as in an
            // object literal.
            if let Some(slot) = pairs.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                pairs.push((key, value));
            }
        }
        Ok(Value::Object(pairs))
    }
}

fn float(f: f64) -> Value {
    // NaN and the infinities have no JSON form; JSON.stringify writes null.
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Encodes `value` as `JSON.stringify` does, Buffers included: Node
/// writes a Buffer as `{"type":"Buffer","data":[bytes]}`.
pub fn to_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_json(&mut out, value);
    out
}

/// Appends the `JSON.stringify` text of `value` to `out`.
pub fn write_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_json_number(out, n),
        Value::String(s) => {
            // serde_json escapes exactly the characters JSON.stringify
            // escapes for well-formed strings.
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Value::Binary(b) => {
            out.extend_from_slice(br#"{"type":"Buffer","data":["#);
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(byte.to_string().as_bytes());
            }
            out.extend_from_slice(b"]}");
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(pairs) => {
            out.push(b'{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_json(out, v);
            }
            out.push(b'}');
        }
    }
}

fn write_json_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    match n.as_f64() {
        Some(f) if n.is_f64() => out.extend_from_slice(js_number(f).as_bytes()),
        _ => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

/// A number as JavaScript's `Number.prototype.toString` writes it (what
/// `JSON.stringify` writes): the shortest digits that read back the same,
/// in fixed notation from 1e-7 up to 1e21 and as `d.ddde+X` beyond.
pub fn js_number(f: f64) -> String {
    if !f.is_finite() {
        // JSON.stringify writes NaN and the infinities as null.
        return "null".to_owned();
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as JavaScript
    // picks them: "1.2345e20", "5e-324".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exp + 1;
    let zeros = |count: i64| "0".repeat(usize::try_from(count).unwrap_or(0));
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", zeros(n - k))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0).min(digits.len()));
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", zeros(-n))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1.min(digits.len()));
        if rest.is_empty() {
            format!("{first}e{sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{sign}{}", e.abs())
        }
    };
    if f < 0.0 { format!("-{body}") } else { body }
}

/// Parses JSON text into a [`Value`], keeping key order (Buffers stay the
/// `{"type":"Buffer",...}` objects JSON.parse makes of them). Straight into
/// [`Value`], whose objects are pairs in wire order: a detour through
/// `serde_json::Value` would sort the keys unless the whole build enables
/// serde_json's `preserve_order`.
pub fn from_json(input: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(input).map_err(Error::Json)
}
