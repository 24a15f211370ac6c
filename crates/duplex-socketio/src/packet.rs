//! Socket.IO packets and their text encoding
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`.

use std::fmt::Write as _;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use crate::{Error, Str, Value};

mod ack;
mod json;

pub use ack::EncodedAck;

use json::{Shape, shape};

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

duplex_core::id_enum! {
    /// The seven packet types.
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
}

impl PacketType {
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
    /// The text message (to send as an Engine.IO `message`), already the
    /// checked text type Engine.IO takes, so it is not checked again.
    pub text: Str,
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
            duplex_core::put_decimal(out, self.attachments.len() as u64);
            out.put_u8(b'-');
        }
        if !self.is_default_namespace() {
            out.extend_from_slice(self.namespace.as_bytes());
            out.put_u8(b',');
        }
        if let Some(id) = self.ack_id {
            duplex_core::put_decimal(out, id);
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
            // Made of UTF-8 only: the namespace and data (both `Str`),
            // ASCII digits and punctuation.
            text: Str::from_validated(out.freeze()),
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

/// Namespaces up to this many bytes are kept by the decoder for the next
/// packet; a longer one is cut from its message each time.
const CACHED_NAMESPACE_MAX: usize = 64;

/// Where the parts of a packet's text lie, once all of them are checked.
struct Layout {
    packet_type: PacketType,
    /// The announced attachment count (binary types).
    attachments: usize,
    /// The byte range of the namespace, unless it is the default one.
    namespace: Option<(usize, usize)>,
    /// Whether the namespace is the decoder's last one.
    namespace_is_last: bool,
    ack_id: Option<u64>,
    /// Where the JSON payload starts: the text's length if there is none.
    data: usize,
}

/// Parses the text of a packet; returns it with the announced attachment
/// count (binary types), the attachments themselves still to come.
///
/// `last_namespace` is the namespace of an earlier packet: a packet in the
/// same namespace shares its bytes instead of cutting its own from the
/// message. (Cutting a slice from a freshly received `Bytes` allocates a
/// shared header; a connection mostly talks in one namespace.) With the
/// namespace kept apart, the payload is the message itself advanced past
/// the header, which allocates nothing.
pub(crate) fn decode_text(
    mut text: Bytes,
    version: ProtocolVersion,
    max_attachments: usize,
    last_namespace: &mut Str,
) -> Result<(Packet, usize), Error> {
    let layout = match parse_text(&text, version, max_attachments, last_namespace) {
        Ok(layout) => layout,
        Err(error) => return Err(invalid_utf8_first(&text, error)),
    };
    let namespace = match layout.namespace {
        None => Str::from_static(DEFAULT_NAMESPACE),
        Some(_) if layout.namespace_is_last => last_namespace.clone(),
        Some((start, end)) => new_namespace(&text, start, end, last_namespace),
    };
    let data = (layout.data < text.len()).then(|| {
        text.advance(layout.data);
        // Starts after an ASCII byte of UTF-8 text: still UTF-8.
        Str::from_validated(text)
    });
    Ok((
        Packet {
            packet_type: layout.packet_type,
            namespace,
            ack_id: layout.ack_id,
            data,
            attachments: Vec::new(),
        },
        layout.attachments,
    ))
}

/// The namespace `text[start..end]`, kept as the decoder's last one if
/// short.
fn new_namespace(text: &Bytes, start: usize, end: usize, last: &mut Str) -> Str {
    // `parse_text` checked it is UTF-8.
    if end.saturating_sub(start) > CACHED_NAMESPACE_MAX {
        return Str::from_validated(text.slice(start..end));
    }
    let bytes = text.get(start..end).unwrap_or_default();
    let namespace = Str::from_validated(Bytes::copy_from_slice(bytes));
    *last = namespace.clone();
    namespace
}

/// The error for text that failed to parse: `InvalidUtf8` if it is not
/// UTF-8 at all, as when the whole text was checked before anything else,
/// so the answer does not depend on which part was read first.
#[cold]
fn invalid_utf8_first(text: &[u8], error: Error) -> Error {
    if simdutf8::basic::from_utf8(text).is_err() {
        Error::InvalidUtf8
    } else {
        error
    }
}

/// Checks the whole text and finds its parts. Every byte is accounted
/// for: the header is ASCII by its grammar, the namespace is checked as
/// UTF-8 here, and the payload by the JSON check, which proves it UTF-8 as
/// it goes; so a packet that parses is UTF-8 throughout.
fn parse_text(
    s: &[u8],
    version: ProtocolVersion,
    max_attachments: usize,
    last_namespace: &Str,
) -> Result<Layout, Error> {
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
    let mut namespace = None;
    let mut namespace_is_last = false;
    if rest.first() == Some(&b'/') {
        let end = find_comma(rest);
        let ns = rest.get(..end).unwrap_or_default();
        // The last namespace was checked when it arrived.
        namespace_is_last = ns == last_namespace.as_bytes();
        if !namespace_is_last && !ns.is_ascii() && simdutf8::basic::from_utf8(ns).is_err() {
            return Err(Error::InvalidUtf8);
        }
        namespace = Some((i, i + end));
        i += (end + 1).min(rest.len());
    }

    // The ack id: digits up to the payload, which opens with `[`, `{` or
    // `"` (or there is none).
    let rest = s.get(i..).unwrap_or_default();
    let id_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !matches!(rest.get(id_len), None | Some(b'[' | b'{' | b'"')) {
        return Err(ack_id_error(rest));
    }
    let mut ack_id = None;
    if id_len > 0 {
        let mut id: u64 = 0;
        for &d in rest.get(..id_len).unwrap_or_default() {
            id = id
                .checked_mul(10)
                .and_then(|id| id.checked_add(u64::from(d - b'0')))
                .ok_or(Error::InvalidAckId)?;
        }
        ack_id = Some(id);
        i += id_len;
    }

    let data = s.get(i..).filter(|d| !d.is_empty());
    validate(packet_type, ack_id, data, version)?;
    Ok(Layout {
        packet_type,
        attachments,
        namespace,
        namespace_is_last,
        ack_id,
        data: i,
    })
}

/// The end of the namespace at the start of `rest`: its comma, or the end.
fn find_comma(rest: &[u8]) -> usize {
    // Namespaces are short: a plain loop finds the comma before a
    // vectorized search would have started.
    rest.iter().position(|&b| b == b',').unwrap_or(rest.len())
}

/// Why the bytes after the namespace are neither an ack id nor a
/// payload: a second comma means a malformed namespace.
#[cold]
fn ack_id_error(rest: &[u8]) -> Error {
    let json_start = memchr::memchr3(b'[', b'{', b'"', rest).unwrap_or(rest.len());
    if rest.get(..json_start).unwrap_or_default().contains(&b',') {
        Error::InvalidNamespace
    } else {
        Error::InvalidAckId
    }
}

fn validate(
    packet_type: PacketType,
    ack_id: Option<u64>,
    data: Option<&[u8]>,
    version: ProtocolVersion,
) -> Result<(), Error> {
    use PacketType as T;
    let shape = data.map(shape).transpose()?;
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
