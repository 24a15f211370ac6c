//! Socket.IO packets and their text encoding
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{Error, Str, Value};

/// Socket.IO protocol revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ProtocolVersion {
    /// Revision 4 (Socket.IO 1.x/2.x over Engine.IO v3): the default
    /// namespace is connected implicitly, type 4 is `ERROR` with any
    /// payload, and a namespace may carry a query (`/admin?token=1`).
    V4,
    /// Revision 5 (Socket.IO 3.x and later over Engine.IO v4): every
    /// namespace needs a CONNECT, which may carry an auth object; the
    /// server answers with `{"sid":...}` or a CONNECT_ERROR object.
    #[default]
    V5,
}

/// The seven packet types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: connect to a namespace (request, or grant with `{"sid":...}`).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event, `["name", ...args]`, maybe with an ack id.
    Event = 2,
    /// `3`: the answer to an event's ack id, `[...args]`.
    Ack = 3,
    /// `4`: connection to a namespace refused (`ERROR` in v4).
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type of a numeric id.
    pub const fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::Connect,
            1 => Self::Disconnect,
            2 => Self::Event,
            3 => Self::Ack,
            4 => Self::ConnectError,
            5 => Self::BinaryEvent,
            6 => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The numeric id.
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// Whether packets of this type carry binary attachments.
    pub const fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }

    /// Whether this is an event (text or binary).
    pub const fn is_event(self) -> bool {
        matches!(self, Self::Event | Self::BinaryEvent)
    }

    /// Whether this is an ack (text or binary).
    pub const fn is_ack(self) -> bool {
        matches!(self, Self::Ack | Self::BinaryAck)
    }
}

/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "/";

/// One Socket.IO packet.
///
/// `data` is the JSON text of the payload as it travels, with binary
/// attachments replaced by `{"_placeholder":true,"num":N}`, and
/// `attachments` holds the binary buffers in order. [`Value`] converts
/// between that form and a tree with the binaries in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The type. [`Packet::encode`] writes `EVENT`/`ACK` with attachments as
    /// `BINARY_EVENT`/`BINARY_ACK`, as the reference encoder does.
    pub packet_type: PacketType,
    /// The namespace, `/` by default.
    pub namespace: Str,
    /// The acknowledgement id.
    pub ack_id: Option<u64>,
    /// The JSON payload.
    pub data: Option<Str>,
    /// Binary attachments (binary packets only).
    pub attachments: Vec<Bytes>,
}

/// A packet encoded once: the text message and the binary messages that
/// follow it. Cloning shares the bytes, so one encoding serves every
/// recipient of a broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPacket {
    /// The text message (to send as an Engine.IO `message`).
    pub text: Bytes,
    /// The binary messages, one Engine.IO binary `message` each, in order.
    pub attachments: Vec<Bytes>,
}

fn check_namespace(namespace: &Str) -> Result<(), Error> {
    if namespace.as_bytes().first() == Some(&b'/') && !namespace.as_bytes().contains(&b',') {
        Ok(())
    } else {
        Err(Error::InvalidNamespace)
    }
}

impl Packet {
    fn new(packet_type: PacketType, namespace: Str) -> Result<Self, Error> {
        check_namespace(&namespace)?;
        Ok(Self {
            packet_type,
            namespace,
            ack_id: None,
            data: None,
            attachments: Vec::new(),
        })
    }

    /// A CONNECT, with an optional payload (the client's auth object, or
    /// the server's `{"sid":...}`).
    pub fn connect(namespace: impl Into<Str>, data: Option<Str>) -> Result<Self, Error> {
        let mut p = Self::new(PacketType::Connect, namespace.into())?;
        p.data = data;
        Ok(p)
    }

    /// The server's v5 CONNECT answer `{"sid":"<sid>"}`.
    pub fn connect_ok(namespace: impl Into<Str>, sid: &str) -> Result<Self, Error> {
        let mut json = String::with_capacity(sid.len() + 10);
        json.push_str("{\"sid\":");
        push_json_string(&mut json, sid);
        json.push('}');
        Self::connect(namespace, Some(json.into()))
    }

    /// A CONNECT_ERROR: `{"message":"<message>"}` in v5, `"<message>"` in v4.
    pub fn connect_error(
        namespace: impl Into<Str>,
        message: &str,
        version: ProtocolVersion,
    ) -> Result<Self, Error> {
        let mut p = Self::new(PacketType::ConnectError, namespace.into())?;
        let mut json = String::with_capacity(message.len() + 14);
        if version == ProtocolVersion::V5 {
            json.push_str("{\"message\":");
        }
        push_json_string(&mut json, message);
        if version == ProtocolVersion::V5 {
            json.push('}');
        }
        p.data = Some(json.into());
        Ok(p)
    }

    /// A DISCONNECT.
    pub fn disconnect(namespace: impl Into<Str>) -> Result<Self, Error> {
        Self::new(PacketType::Disconnect, namespace.into())
    }

    /// An EVENT (or BINARY_EVENT when there are attachments) with JSON
    /// `data` (an array whose first element is the event name) that already
    /// holds the attachments' placeholders.
    pub fn event(
        namespace: impl Into<Str>,
        data: Str,
        attachments: Vec<Bytes>,
        ack_id: Option<u64>,
    ) -> Result<Self, Error> {
        let kind = if attachments.is_empty() {
            PacketType::Event
        } else {
            PacketType::BinaryEvent
        };
        let mut p = Self::new(kind, namespace.into())?;
        p.data = Some(data);
        p.attachments = attachments;
        p.ack_id = ack_id;
        Ok(p)
    }

    /// An EVENT `[name, ...args]` built from values, binaries deconstructed
    /// into placeholders and attachments.
    pub fn event_with(
        namespace: impl Into<Str>,
        name: &str,
        args: &[Value],
        ack_id: Option<u64>,
    ) -> Result<Self, Error> {
        let (data, attachments) = Value::encode_event(name, args);
        Self::event(namespace, data, attachments, ack_id)
    }

    /// An ACK (or BINARY_ACK when there are attachments) of `ack_id` with
    /// JSON `data` (an array).
    pub fn ack(
        namespace: impl Into<Str>,
        data: Str,
        attachments: Vec<Bytes>,
        ack_id: u64,
    ) -> Result<Self, Error> {
        let kind = if attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        let mut p = Self::new(kind, namespace.into())?;
        p.data = Some(data);
        p.attachments = attachments;
        p.ack_id = Some(ack_id);
        Ok(p)
    }

    /// An ACK `[...args]` built from values.
    pub fn ack_with(namespace: impl Into<Str>, args: &[Value], ack_id: u64) -> Result<Self, Error> {
        let (data, attachments) = Value::Array(args.to_vec()).encode();
        Self::ack(namespace, data, attachments, ack_id)
    }

    /// The type written on the wire: `EVENT`/`ACK` become binary when
    /// there are attachments.
    pub fn wire_type(&self) -> PacketType {
        match self.packet_type {
            PacketType::Event if !self.attachments.is_empty() => PacketType::BinaryEvent,
            PacketType::Ack if !self.attachments.is_empty() => PacketType::BinaryAck,
            other => other,
        }
    }

    /// Whether the packet is in the default namespace `/`.
    pub fn is_default_namespace(&self) -> bool {
        self.namespace == DEFAULT_NAMESPACE
    }

    /// The length of the text [`Packet::encode_text_into`] writes.
    pub fn encoded_len(&self) -> usize {
        let mut n = 1;
        if self.wire_type().is_binary() {
            n += decimal_len(self.attachments.len() as u64) + 1;
        }
        if !self.is_default_namespace() {
            n += self.namespace.len() + 1;
        }
        if let Some(id) = self.ack_id {
            n += decimal_len(id);
        }
        n + self.data.as_ref().map_or(0, Str::len)
    }

    /// Appends the text message to `out`.
    pub fn encode_text_into(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        let kind = self.wire_type();
        out.put_u8(b'0' + kind.id());
        if kind.is_binary() {
            put_decimal(out, self.attachments.len() as u64);
            out.put_u8(b'-');
        }
        if !self.is_default_namespace() {
            out.extend_from_slice(self.namespace.as_bytes());
            out.put_u8(b',');
        }
        if let Some(id) = self.ack_id {
            put_decimal(out, id);
        }
        if let Some(data) = &self.data {
            out.extend_from_slice(data.as_bytes());
        }
    }

    /// Encodes the packet once: its text message and its attachments.
    pub fn encode(&self) -> EncodedPacket {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_text_into(&mut out);
        EncodedPacket {
            text: out.freeze(),
            attachments: self.attachments.clone(),
        }
    }

    /// The event name: the first element of an event's array, if a string.
    pub fn event_name(&self) -> Option<String> {
        if !self.packet_type.is_event() {
            return None;
        }
        let data = self.data.as_ref()?;
        serde_json::Deserializer::from_slice(data.as_bytes())
            .deserialize_seq(FirstString)
            .ok()
            .flatten()
    }

    /// The payload as a [`Value`] with the attachments put back in place of
    /// their placeholders; `None` without payload.
    pub fn value(&self) -> Result<Option<Value>, Error> {
        self.data
            .as_ref()
            .map(|d| Value::decode(d.as_bytes(), &self.attachments))
            .transpose()
    }

    /// For v4 namespaces with a query (`/admin?token=1`): the path and the query.
    pub fn namespace_and_query(&self) -> (&str, Option<&str>) {
        let ns = self.namespace.as_str();
        match ns.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (ns, None),
        }
    }
}

pub(crate) fn push_json_string(out: &mut String, s: &str) {
    // A str always serializes.
    let _ = write!(out, "{}", serde_json::Value::from(s));
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

fn put_decimal(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Reads the first element of a JSON array as a string.
struct FirstString;

impl<'de> Visitor<'de> for FirstString {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element::<serde_json::Value>()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(match first {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        })
    }
}

/// The top-level shape of a JSON payload, read without building it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Array { empty: bool },
    Object,
    String,
    Other,
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

/// Checks that `json` is one JSON value and returns its top-level shape.
///
/// Every packet's payload is checked here, as the reference parser's
/// `JSON.parse` does, so a malformed packet closes the connection. A
/// single pass over the bytes ([`scan_json`]) accepts the payloads seen in
/// practice; anything it does not accept (an error, or nesting deeper than
/// it tracks) goes to serde_json, which gives the final answer and the
/// error message. Callgrind showed serde_json's `IgnoredAny` walk taking
/// half the instructions of a whole packet decode.
pub(crate) fn shape(json: &[u8]) -> Result<Shape, Error> {
    match scan_json(json) {
        Some(shape) => Ok(shape),
        None => shape_by_serde(json),
    }
}

/// Whether `b` ends the fast run inside a string: the quote, the
/// backslash, or a control character (JSON forbids them unescaped).
fn is_string_stop(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
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

fn skip_whitespace(json: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = json.get(i) {
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of every byte of `word` (little-endian) that
/// [`is_string_stop`]; the lowest set bit is exact (higher ones may be
/// false positives from borrows, which only the first match avoids).
fn string_stops(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(ONES) & !quote;
    let zero_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (zero_quote | zero_backslash | control) & (ONES * 0x80)
}

/// The index after the string opening at `i` (which holds `"`). The text
/// is already known to be UTF-8.
fn scan_string(json: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        // Eight bytes at a time up to the next quote, backslash or control
        // character: strings are most of a payload's bytes.
        while let Some(chunk) = json.get(i..i + 8) {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?);
            let stops = string_stops(word);
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let &b = json.get(i)?;
        if !is_string_stop(b) {
            i += 1;
            continue;
        }
        match b {
            b'"' => return Some(i + 1),
            b'\\' => match json.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = json.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
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

/// One pass over `json` (already valid UTF-8) checking the JSON grammar
/// (RFC 8259). `None` when it is not sure the text is valid: the caller
/// then asks serde_json.
fn scan_json(json: &[u8]) -> Option<Shape> {
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
        // A value starts at `i` (after whitespace).
        i = skip_whitespace(json, i);
        match json.get(i)? {
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
                match json.get(i)? {
                    b'}' => {
                        nesting.pop();
                        i += 1;
                    }
                    b'"' => {
                        i = skip_whitespace(json, scan_string(json, i)?);
                        if json.get(i) != Some(&b':') {
                            return None;
                        }
                        i += 1;
                        continue 'value;
                    }
                    _ => return None,
                }
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
            match (json.get(i)?, object) {
                (b',', false) => {
                    i += 1;
                    continue 'value;
                }
                (b',', true) => {
                    i = skip_whitespace(json, i + 1);
                    if json.get(i) != Some(&b'"') {
                        return None;
                    }
                    i = skip_whitespace(json, scan_string(json, i)?);
                    if json.get(i) != Some(&b':') {
                        return None;
                    }
                    i += 1;
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

/// serde_json's answer: the reference for what [`scan_json`] accepts, and
/// the error for what it does not.
fn shape_by_serde(json: &[u8]) -> Result<Shape, Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let shape = de
        .deserialize_any(ShapeVisitor)
        .map_err(Error::InvalidJson)?;
    de.end().map_err(Error::InvalidJson)?;
    Ok(shape)
}

/// Parses the text of a packet; returns it with the announced attachment
/// count (binary types), the attachments themselves still to come.
pub(crate) fn decode_text(
    text: Bytes,
    version: ProtocolVersion,
    max_attachments: usize,
) -> Result<(Packet, usize), Error> {
    if simdutf8::basic::from_utf8(&text).is_err() {
        return Err(Error::InvalidUtf8);
    }
    let s: &[u8] = &text;
    let (&first, _) = s.split_first().ok_or(Error::EmptyPacket)?;
    let packet_type =
        PacketType::from_id(first.wrapping_sub(b'0')).ok_or(Error::UnknownPacketType(first))?;
    let mut i = 1;

    let mut attachments = 0;
    if packet_type.is_binary() {
        let rest = s.get(i..).unwrap_or_default();
        let dash = memchr::memchr(b'-', rest).ok_or(Error::InvalidAttachmentCount)?;
        let digits = rest.get(..dash).unwrap_or_default();
        if digits.is_empty() {
            return Err(Error::InvalidAttachmentCount);
        }
        for &d in digits {
            if !d.is_ascii_digit() {
                return Err(Error::InvalidAttachmentCount);
            }
            attachments = attachments * 10 + usize::from(d - b'0');
            if attachments > max_attachments {
                return Err(Error::TooManyAttachments {
                    limit: max_attachments,
                });
            }
        }
        i += dash + 1;
    }

    let rest = s.get(i..).unwrap_or_default();
    let namespace = if rest.first() == Some(&b'/') {
        let end = memchr::memchr(b',', rest).unwrap_or(rest.len());
        let ns = text.slice(i..i + end);
        i += (end + 1).min(rest.len());
        // Cut before an ASCII `,` (or at the end): still UTF-8.
        Str::slice_checked(ns)
    } else {
        Str::from_static(DEFAULT_NAMESPACE)
    };

    let rest = s.get(i..).unwrap_or_default();
    let json_start = memchr::memchr3(b'[', b'{', b'"', rest).unwrap_or(rest.len());
    let id_part = rest.get(..json_start).unwrap_or_default();
    let mut ack_id = None;
    if !id_part.is_empty() {
        if !id_part.iter().all(u8::is_ascii_digit) {
            return Err(if id_part.contains(&b',') {
                Error::InvalidNamespace
            } else {
                Error::InvalidAckId
            });
        }
        let mut id: u64 = 0;
        for &d in id_part {
            id = id
                .checked_mul(10)
                .and_then(|id| id.checked_add(u64::from(d - b'0')))
                .ok_or(Error::InvalidAckId)?;
        }
        ack_id = Some(id);
        i += id_part.len();
    }

    let data = (i < s.len()).then(|| Str::slice_checked(text.slice(i..)));
    validate(packet_type, ack_id, data.as_ref(), version)?;
    Ok((
        Packet {
            packet_type,
            namespace,
            ack_id,
            data,
            attachments: Vec::new(),
        },
        attachments,
    ))
}

fn validate(
    packet_type: PacketType,
    ack_id: Option<u64>,
    data: Option<&Str>,
    version: ProtocolVersion,
) -> Result<(), Error> {
    use PacketType as T;
    let shape = data.map(|d| shape(d.as_bytes())).transpose()?;
    let invalid = |expected| {
        Err(Error::InvalidPayload {
            packet_type,
            expected,
        })
    };
    match packet_type {
        T::Event | T::BinaryEvent if shape != Some(Shape::Array { empty: false }) => {
            return invalid("a non-empty array");
        }
        T::Ack | T::BinaryAck => {
            if !matches!(shape, Some(Shape::Array { .. })) {
                return invalid("an array");
            }
            if ack_id.is_none() {
                return Err(Error::MisplacedAckId(packet_type));
            }
        }
        T::Connect | T::Disconnect | T::ConnectError if ack_id.is_some() => {
            return Err(Error::MisplacedAckId(packet_type));
        }
        T::Connect
            if version == ProtocolVersion::V5 && !matches!(shape, None | Some(Shape::Object)) =>
        {
            return invalid("an object");
        }
        T::Disconnect if version == ProtocolVersion::V5 && shape.is_some() => {
            return invalid("no payload");
        }
        T::ConnectError
            if version == ProtocolVersion::V5
                && !matches!(shape, Some(Shape::Object | Shape::String)) =>
        {
            return invalid("an object or a string");
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod json_scan_tests {
    use proptest::prelude::*;

    use super::{Shape, scan_json, shape_by_serde};

    /// Whatever the fast scanner accepts, serde_json accepts with the same
    /// shape (it may hand hard cases to serde_json, never accept more).
    fn agrees(json: &str) {
        let serde = shape_by_serde(json.as_bytes()).ok();
        if let Some(fast) = scan_json(json.as_bytes()) {
            assert_eq!(Some(fast), serde, "{json:?}");
        }
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

    proptest! {
        #[test]
        fn token_soup_never_accepted_beyond_serde(tokens in prop::collection::vec(token(), 0..16)) {
            agrees(&tokens.concat());
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
