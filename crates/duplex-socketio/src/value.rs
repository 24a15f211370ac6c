//! [`Value`]: a JSON tree that can also hold binary data, and its
//! conversion to and from a payload with placeholders plus attachments.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::{Error, Str};

mod ser;

/// A JSON value, or a binary buffer.
///
/// Objects keep their keys in order (a `Vec` of pairs), so a payload
/// decodes and re-encodes byte for byte in the reference's key order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// Binary data: an attachment on the wire.
    Binary(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in order.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }

    /// The value as plain JSON; binary values become arrays of byte
    /// numbers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Binary(b) => serde_json::Value::Array(b.iter().map(|x| (*x).into()).collect()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(pairs) => serde_json::Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Event arguments as a `T`: the single argument, or all of them as a
    /// sequence (so a handler of one argument takes it as itself, and one
    /// of several as a tuple or a `Vec`). Binary values read as arrays of
    /// byte numbers.
    pub fn from_args<T: serde::de::DeserializeOwned>(
        args: &[Value],
    ) -> Result<T, serde_json::Error> {
        let json = match args {
            [one] => one.to_json(),
            many => serde_json::Value::Array(many.iter().map(Value::to_json).collect()),
        };
        serde_json::from_value(json)
    }

    /// Any `Serialize` value as a payload: fields in the order they
    /// serialize (no detour through a sorted `serde_json::Map`) and bytes
    /// (`serde_bytes`) kept as [`Value::Binary`], so they travel as binary
    /// attachments. Otherwise the tree `serde_json::to_value` builds. Fails
    /// on a map key that is not a string or a number, a number beyond 64
    /// bits, or the type's own `Serialize` error.
    ///
    /// ```
    /// use duplex_socketio::Value;
    ///
    /// #[derive(serde::Serialize)]
    /// struct Move { to: &'static str, from: &'static str }
    ///
    /// let value = Value::from_serialize(&Move { to: "e4", from: "e2" }).unwrap();
    /// assert_eq!(value.encode().0.as_str(), r#"{"to":"e4","from":"e2"}"#);
    /// ```
    pub fn from_serialize<T: Serialize + ?Sized>(data: &T) -> Result<Value, serde_json::Error> {
        ser::to_value(data)
    }

    /// Whether there is binary data anywhere inside.
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Binary(_) => true,
            Value::Array(v) => v.iter().any(Value::has_binary),
            Value::Object(pairs) => pairs.iter().any(|(_, v)| v.has_binary()),
            _ => false,
        }
    }

    /// Compact JSON with every binary replaced by
    /// `{"_placeholder":true,"num":N}` (N counting in document order), and
    /// the binaries in that order: the reference's `deconstructPacket`.
    pub fn encode(&self) -> (Str, Vec<Bytes>) {
        let buffers = RefCell::new(Vec::new());
        // Serializing into a Vec cannot fail for this tree (keys are strings).
        let json = serde_json::to_vec(&Deconstruct {
            value: self,
            buffers: &buffers,
        })
        .unwrap_or_default();
        let text = Str::from_utf8(Bytes::from(json)).unwrap_or_default();
        (text, buffers.into_inner())
    }

    /// The payload of an event `[name, ...args]`, deconstructed.
    pub fn encode_event(name: &str, args: &[Value]) -> (Str, Vec<Bytes>) {
        let buffers = RefCell::new(Vec::new());
        let json = serde_json::to_vec(&EventArgs {
            name: Some(name),
            args,
            buffers: &buffers,
        })
        .unwrap_or_default();
        let text = Str::from_utf8(Bytes::from(json)).unwrap_or_default();
        (text, buffers.into_inner())
    }

    /// Appends `items` to `out` as a JSON array, deconstructed: returns the
    /// binary attachments, in the order of their placeholders. Written in
    /// place after what `out` holds, so that a packet's header and its
    /// payload share one buffer (an ACK's, see `Packet::encode_ack`).
    pub(crate) fn encode_array_into(items: &[Value], out: &mut Vec<u8>) -> Vec<Bytes> {
        let buffers = RefCell::new(Vec::new());
        // Writing into a Vec cannot fail for this tree (keys are strings).
        let _ = serde_json::to_writer(
            out,
            &EventArgs {
                name: None,
                args: items,
                buffers: &buffers,
            },
        );
        buffers.into_inner()
    }

    /// Parses JSON text and puts `attachments` back in place of their
    /// placeholders: the reference's `reconstructPacket`. An object whose
    /// `_placeholder` is `true` must have a `num` indexing `attachments`.
    pub fn decode(json: &[u8], attachments: &[Bytes]) -> Result<Value, Error> {
        let value: Value = serde_json::from_slice(json).map_err(Error::InvalidJson)?;
        value.reconstruct(attachments)
    }

    fn reconstruct(self, attachments: &[Bytes]) -> Result<Value, Error> {
        Ok(match self {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| v.reconstruct(attachments))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(pairs) => {
                if let Some(index) = placeholder_index(&pairs)? {
                    let data = attachments.get(index).ok_or(Error::InvalidPlaceholder)?;
                    return Ok(Value::Binary(data.clone()));
                }
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| Ok((k, v.reconstruct(attachments)?)))
                        .collect::<Result<_, Error>>()?,
                )
            }
            other => other,
        })
    }
}

/// `Some(num)` if the object is a placeholder, an error if it claims to be
/// one without a valid `num`.
fn placeholder_index(pairs: &[(String, Value)]) -> Result<Option<usize>, Error> {
    let is_placeholder = pairs
        .iter()
        .any(|(k, v)| k == "_placeholder" && *v == Value::Bool(true));
    if !is_placeholder {
        return Ok(None);
    }
    let num = pairs.iter().rev().find(|(k, _)| k == "num").map(|(_, v)| v);
    match num {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or(Error::InvalidPlaceholder),
        _ => Err(Error::InvalidPlaceholder),
    }
}

/// Checks every placeholder in `json` against `count` attachments.
pub(crate) fn check_placeholders(json: &[u8], count: usize) -> Result<(), Error> {
    // Only binary packets get here; building the tree once is the simple
    // way to apply exactly the rules of `Value::decode`.
    let value: Value = serde_json::from_slice(json).map_err(Error::InvalidJson)?;
    fn walk(v: &Value, count: usize) -> Result<(), Error> {
        match v {
            Value::Array(items) => items.iter().try_for_each(|v| walk(v, count)),
            Value::Object(pairs) => match placeholder_index(pairs)? {
                Some(i) if i < count => Ok(()),
                Some(_) => Err(Error::InvalidPlaceholder),
                None => pairs.iter().try_for_each(|(_, v)| walk(v, count)),
            },
            _ => Ok(()),
        }
    }
    walk(&value, count)
}

struct Deconstruct<'a> {
    value: &'a Value,
    buffers: &'a RefCell<Vec<Bytes>>,
}

impl Serialize for Deconstruct<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let child = |value| Deconstruct {
            value,
            buffers: self.buffers,
        };
        match self.value {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::Binary(data) => {
                let num = {
                    let mut buffers = self.buffers.borrow_mut();
                    buffers.push(data.clone());
                    buffers.len() - 1
                };
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("_placeholder", &true)?;
                map.serialize_entry("num", &num)?;
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&child(item))?;
                }
                seq.end()
            }
            Value::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, &child(v))?;
                }
                map.end()
            }
        }
    }
}

/// An event's array `[name, ...args]`, or without a name a plain array of
/// `args` (an ACK's).
struct EventArgs<'a> {
    name: Option<&'a str>,
    args: &'a [Value],
    buffers: &'a RefCell<Vec<Bytes>>,
}

impl Serialize for EventArgs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let named = usize::from(self.name.is_some());
        let mut seq = s.serialize_seq(Some(named + self.args.len()))?;
        if let Some(name) = self.name {
            seq.serialize_element(name)?;
        }
        for value in self.args {
            seq.serialize_element(&Deconstruct {
                value,
                buffers: self.buffers,
            })?;
        }
        seq.end()
    }
}

/// The value as serde sees it: binary through `serialize_bytes` (JSON
/// writes it as an array of byte numbers, as [`Value::to_json`]; a
/// serializer that knows binary keeps it), objects in their key order.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(text) => s.serialize_str(text),
            Value::Binary(data) => s.serialize_bytes(data),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (key, value) in pairs {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            pairs.push((k, v));
        }
        Ok(Value::Object(pairs))
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Binary(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(n.into())
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n.into())
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Number(n.into())
    }
}

/// A finite number; NaN and the infinities, which JSON cannot carry,
/// become `null` (as `JSON.stringify` writes them).
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_json_with_binary_as_byte_numbers() {
        let value = Value::Object(vec![
            ("z".to_owned(), Value::Binary(Bytes::from_static(&[1, 255]))),
            ("a".to_owned(), Value::Array(vec![Value::Null, 1.5.into()])),
        ]);
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"z":[1,255],"a":[null,1.5]}"#
        );
    }

    #[test]
    fn numbers_of_every_width_convert() {
        assert_eq!(Value::from(7u64).to_json(), serde_json::json!(7));
        assert_eq!(Value::from(7usize).to_json(), serde_json::json!(7));
        assert_eq!(Value::from(-7i32).to_json(), serde_json::json!(-7));
        assert_eq!(Value::from(7u32).to_json(), serde_json::json!(7));
        assert_eq!(Value::from(1.5f64).to_json(), serde_json::json!(1.5));
        assert_eq!(Value::from(f64::NAN), Value::Null);
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(
            Value::from(vec![Value::from(1u64)]).to_json(),
            serde_json::json!([1])
        );
    }

    #[test]
    fn binary_reads_as_byte_numbers() {
        let value = Value::Object(vec![
            ("z".to_owned(), Value::Binary(Bytes::from_static(&[1, 255]))),
            ("a".to_owned(), Value::Array(vec![Value::Null, true.into()])),
        ]);
        assert_eq!(
            value.to_json(),
            serde_json::json!({"z": [1, 255], "a": [null, true]})
        );
    }

    #[test]
    fn one_argument_is_itself_several_are_a_sequence() {
        let one: String = Value::from_args(&["hi".into()]).unwrap();
        assert_eq!(one, "hi");
        let two: (String, i64) = Value::from_args(&["a".into(), 2.into()]).unwrap();
        assert_eq!(two, ("a".to_owned(), 2));
        let none: Vec<i64> = Value::from_args(&[]).unwrap();
        assert!(none.is_empty());
        assert!(Value::from_args::<i64>(&["x".into()]).is_err());
    }
}
