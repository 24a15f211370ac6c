//! The pieces every cluster message is made of: the broadcast options, the
//! Socket.IO packet as the adapters publish it, a fetched socket, and the
//! helpers that read them out of a decoded [`Value`].

use super::Error;
use super::msgpack;
use crate::Value;

/// Which sockets an operation selects, as the Node adapter publishes it:
/// `{rooms, except, flags}`.
///
/// Empty `rooms` means every socket of the namespace. `except` lists rooms
/// (a socket id is a room too) whose members are left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Opts {
    /// Target rooms; empty selects the whole namespace.
    pub rooms: Vec<String>,
    /// Rooms whose members are left out.
    pub except: Vec<String>,
    /// The broadcast flags (`local`, `volatile`, `compress`, `timeout`,
    /// ...) kept as the sender wrote them, so they re-encode byte for
    /// byte; `None` when the sender left them undefined.
    pub flags: Option<Value>,
}

impl Opts {
    /// Selects the members of `rooms` (all sockets when empty).
    pub fn rooms<I: IntoIterator<Item = S>, S: Into<String>>(rooms: I) -> Self {
        Self {
            rooms: rooms.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Leaves out the members of `except` as well.
    #[must_use]
    pub fn except<I: IntoIterator<Item = S>, S: Into<String>>(mut self, except: I) -> Self {
        self.except = except.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the `local` flag is set (nothing is to be published).
    pub fn is_local(&self) -> bool {
        matches!(self.flag("local"), Some(Value::Bool(true)))
    }

    /// The `timeout` flag in milliseconds, if set.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self.flag("timeout") {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            _ => None,
        }
    }

    /// Marks the selection volatile (Node's `volatile` flag): a packet
    /// that may be dropped, never stored nor offset by recovery.
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.set_flag("volatile", Value::Bool(true));
        self
    }

    /// Sets the flag `name` to `value`, replacing one of that name and
    /// keeping the others.
    pub fn set_flag(&mut self, name: &str, value: Value) {
        let mut all = match self.flags.take() {
            Some(Value::Object(fields)) => fields,
            _ => Vec::new(),
        };
        all.retain(|(k, _)| k != name);
        all.push((name.to_owned(), value));
        self.flags = Some(Value::Object(all));
    }

    /// The flag named `name`, if the flags hold it.
    pub fn flag(&self, name: &str) -> Option<&Value> {
        self.flags.as_ref().and_then(|f| f.get(name))
    }

    pub(crate) fn to_value(&self, with_flags: bool) -> Value {
        let mut pairs = vec![
            ("rooms".to_owned(), strings(&self.rooms)),
            ("except".to_owned(), strings(&self.except)),
        ];
        match &self.flags {
            Some(flags) if with_flags => pairs.push(("flags".to_owned(), flags.clone())),
            _ => {}
        }
        Value::Object(pairs)
    }

    pub(crate) fn from_value(v: &Value) -> Result<Self, Error> {
        Ok(Self {
            rooms: rooms_field(v, "rooms")?,
            except: rooms_field(v, "except")?,
            flags: v.get("flags").filter(|f| **f != Value::Null).cloned(),
        })
    }
}

/// A Socket.IO packet as the adapters publish it: `{type, data, nsp}`
/// (`nsp` only where the adapter had set it before publishing, `id` only
/// when the sender added one).
#[derive(Clone, Debug, PartialEq)]
pub struct WirePacket {
    /// The Socket.IO packet type; 2 (EVENT) for every emit.
    pub packet_type: u8,
    /// The event name followed by its arguments; Buffers stay
    /// [`Value::Binary`].
    pub data: Vec<Value>,
    /// The namespace, when the sender wrote it.
    pub nsp: Option<String>,
    /// An acknowledgement id, when the sender wrote one.
    pub id: Option<u64>,
}

impl WirePacket {
    /// An EVENT packet `[event, ...args]`, without a namespace (as the
    /// sharded adapter publishes it).
    pub fn event(event: &str, args: impl IntoIterator<Item = Value>) -> Self {
        let mut data = vec![Value::String(event.to_owned())];
        data.extend(args);
        Self {
            packet_type: 2,
            data,
            nsp: None,
            id: None,
        }
    }

    /// The same packet with the namespace set (as the classic adapter
    /// publishes it).
    #[must_use]
    pub fn with_nsp(mut self, nsp: &str) -> Self {
        self.nsp = Some(nsp.to_owned());
        self
    }

    /// The event name, when `data` starts with one.
    pub fn event_name(&self) -> Option<&str> {
        self.data.first().and_then(Value::as_str)
    }

    /// The namespace the packet is for: Node reads a missing one as `/`.
    pub fn namespace(&self) -> &str {
        self.nsp.as_deref().unwrap_or("/")
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut pairs = vec![
            ("type".to_owned(), Value::Number(self.packet_type.into())),
            ("data".to_owned(), Value::Array(self.data.clone())),
        ];
        if let Some(nsp) = &self.nsp {
            pairs.push(("nsp".to_owned(), Value::String(nsp.clone())));
        }
        if let Some(id) = self.id {
            pairs.push(("id".to_owned(), Value::Number(id.into())));
        }
        Value::Object(pairs)
    }

    pub(crate) fn from_value(v: &Value) -> Result<Self, Error> {
        let packet_type = u8::try_from(uint_field(v, "type")?).map_err(|_| Error::Field("type"))?;
        let data = match v.get("data") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err(Error::Field("data")),
        };
        let nsp = opt_string_field(v, "nsp")?;
        let id = match v.get("id") {
            None | Some(Value::Null) => None,
            Some(_) => Some(uint_field(v, "id")?),
        };
        Ok(Self {
            packet_type,
            data,
            nsp,
            id,
        })
    }
}

/// One socket of another node, as FETCH answers carry it:
/// `{id, handshake, rooms, data}`.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedSocket {
    /// The socket id.
    pub id: String,
    /// Node's handshake object (`headers, time, address, xdomain, secure,
    /// issued, url, query, auth`), kept whole.
    pub handshake: Value,
    /// Every room of the socket, its own id included.
    pub rooms: Vec<String>,
    /// The socket's data.
    pub data: Value,
}

impl FetchedSocket {
    /// A socket of this server as a fetch answers it: its handshake holds
    /// the one field a Rust server keeps of it, `auth` (the CONNECT
    /// payload); Node's other fields (headers, address, ...) are absent.
    pub fn local(id: String, rooms: Vec<String>, auth: Value, data: Value) -> Self {
        Self {
            id,
            handshake: Value::Object(vec![("auth".to_owned(), auth)]),
            rooms,
            data,
        }
    }

    /// The `auth` of the handshake (the CONNECT payload).
    pub fn auth(&self) -> Option<&Value> {
        self.handshake.get("auth")
    }

    pub(crate) fn to_value(&self) -> Value {
        Value::Object(vec![
            ("id".to_owned(), Value::String(self.id.clone())),
            ("handshake".to_owned(), self.handshake.clone()),
            ("rooms".to_owned(), strings(&self.rooms)),
            ("data".to_owned(), self.data.clone()),
        ])
    }

    pub(crate) fn from_value(v: &Value) -> Result<Self, Error> {
        Ok(Self {
            id: string_field(v, "id")?,
            handshake: v.get("handshake").cloned().unwrap_or(Value::Null),
            rooms: rooms_field(v, "rooms")?,
            data: v.get("data").cloned().unwrap_or(Value::Null),
        })
    }
}

/// How a message travels: the Node adapters send JSON text where they
/// can and MessagePack where a payload may hold binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `JSON.stringify`.
    Json,
    /// notepack.io MessagePack.
    Msgpack,
}

impl Format {
    /// The format of a received message, as the Node adapters tell it:
    /// JSON when the first byte is `{`.
    pub fn of(payload: &[u8]) -> Self {
        if payload.first() == Some(&b'{') {
            Format::Json
        } else {
            Format::Msgpack
        }
    }

    pub(crate) fn write(self, value: &Value) -> Vec<u8> {
        match self {
            Format::Json => msgpack::to_json(value),
            Format::Msgpack => msgpack::encode(value),
        }
    }
}

/// Decodes a payload in the format its first byte tells.
pub(crate) fn read_any(payload: &[u8]) -> Result<Value, Error> {
    match Format::of(payload) {
        Format::Json => msgpack::from_json(payload),
        Format::Msgpack => msgpack::decode(payload),
    }
}

/// One `key: value` of a message object.
pub(crate) fn pair(k: &str, v: Value) -> (String, Value) {
    (k.to_owned(), v)
}

/// A string value.
pub(crate) fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

pub(crate) fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

pub(crate) fn string_field(v: &Value, key: &'static str) -> Result<String, Error> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(Error::Field(key)),
    }
}

pub(crate) fn opt_string_field(v: &Value, key: &'static str) -> Result<Option<String>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::Field(key)),
    }
}

pub(crate) fn uint_field(v: &Value, key: &'static str) -> Result<u64, Error> {
    match v.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.floor() == *f && *f <= 9e15)
                    .map(|f| f as u64)
            })
            .ok_or(Error::Field(key)),
        _ => Err(Error::Field(key)),
    }
}

pub(crate) fn bool_field(v: &Value, key: &'static str) -> bool {
    // JavaScript truthiness is what `socket.disconnect(close)` sees.
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Null) | None => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// A room name: a string, or a number as its decimal text (Node allows
/// numeric rooms and compares them loosely).
pub(crate) fn room(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A list of rooms; missing or null is empty (`new Set(undefined)`).
pub(crate) fn rooms_field(v: &Value, key: &'static str) -> Result<Vec<String>, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| room(r).ok_or(Error::Field(key)))
            .collect(),
        Some(_) => Err(Error::Field(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_set_once_each_and_keep_the_others() {
        let mut opts = Opts::rooms(["r"]);
        opts.set_flag("local", Value::Bool(true));
        let opts = opts.volatile().volatile();
        assert!(opts.is_local());
        assert_eq!(opts.flag("volatile"), Some(&Value::Bool(true)));
        assert_eq!(
            opts.flags,
            Some(Value::Object(vec![
                ("local".to_owned(), Value::Bool(true)),
                ("volatile".to_owned(), Value::Bool(true)),
            ]))
        );
    }

    #[test]
    fn a_local_fetched_socket_carries_its_auth_in_the_handshake() {
        let auth = Value::Object(vec![("token".to_owned(), Value::String("t".to_owned()))]);
        let socket = FetchedSocket::local(
            "a".to_owned(),
            vec!["a".to_owned()],
            auth.clone(),
            Value::Null,
        );
        assert_eq!(socket.auth(), Some(&auth));
        assert_eq!(socket.rooms, ["a"]);
    }
}
