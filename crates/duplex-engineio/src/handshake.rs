//! The handshake: the request query (`EIO`, `transport`, `sid`, `b64`, `j`)
//! and the `open` packet's JSON.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{Error, Packet, Utf8Bytes};

/// Engine.IO protocol revision, the `EIO` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// Revision 3 (Socket.IO 1.x and 2.x clients): the client pings, length-prefixed payloads.
    V3,
    /// Revision 4 (Socket.IO 3.x and later): the server pings, `0x1e`-joined payloads.
    V4,
}

impl ProtocolVersion {
    /// The value of the `EIO` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V3 => "3",
            ProtocolVersion::V4 => "4",
        }
    }
}

/// The transport named by the `transport` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling (XHR, or JSONP when `j` is present).
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name on the wire (`polling`, `websocket`), as in `upgrades`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// The Engine.IO parameters of a request's query string.
///
/// ```
/// use duplex_engineio::{HandshakeQuery, ProtocolVersion, TransportKind};
/// let q = HandshakeQuery::parse("EIO=4&transport=polling&t=N8hyd6w").unwrap();
/// assert_eq!(q.version, ProtocolVersion::V4);
/// assert_eq!(q.transport, TransportKind::Polling);
/// assert!(q.sid.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeQuery {
    /// `EIO`: `3` or `4`.
    pub version: ProtocolVersion,
    /// `transport`: `polling` or `websocket`.
    pub transport: TransportKind,
    /// `sid`: the session id, absent on the handshake request itself.
    pub sid: Option<String>,
    /// `b64`: a v3 client that cannot receive binary payloads. Any
    /// non-empty value counts, as it does for the reference server.
    pub b64: bool,
    /// `j`: the JSONP callback index, keeping only its digits as the
    /// reference does. `Some` means the client polls with JSONP.
    pub jsonp_index: Option<String>,
}

impl HandshakeQuery {
    /// Parses a query string (without the leading `?`). Parameters other
    /// than the five reserved ones are ignored; each reserved one may
    /// appear once. `transport` is checked before `EIO`, in the reference
    /// server's order.
    pub fn parse(query: &str) -> Result<Self, Error> {
        let mut eio = None;
        let mut transport = None;
        let mut sid = None;
        let mut b64 = None;
        let mut j = None;
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (slot, name) = match key {
                "EIO" => (&mut eio, "EIO"),
                "transport" => (&mut transport, "transport"),
                "sid" => (&mut sid, "sid"),
                "b64" => (&mut b64, "b64"),
                "j" => (&mut j, "j"),
                _ => continue,
            };
            if slot.is_some() {
                return Err(Error::DuplicateQueryParameter(name));
            }
            *slot = Some(percent_decode(value.as_bytes())?);
        }
        let transport = match transport.as_deref() {
            None => return Err(Error::MissingTransport),
            Some("polling") => TransportKind::Polling,
            Some("websocket") => TransportKind::WebSocket,
            Some(_) => return Err(Error::UnknownTransport),
        };
        let version = match eio.as_deref() {
            None => return Err(Error::MissingProtocolVersion),
            Some("4") => ProtocolVersion::V4,
            Some("3") => ProtocolVersion::V3,
            Some(_) => return Err(Error::UnsupportedProtocolVersion),
        };
        Ok(Self {
            version,
            transport,
            sid: sid.filter(|s| !s.is_empty()).map(Cow::into_owned),
            b64: b64.is_some_and(|v| !v.is_empty()),
            jsonp_index: j.map(|j| j.chars().filter(char::is_ascii_digit).collect()),
        })
    }

    /// Whether the client can receive binary payloads (v3 XHR2 without `b64`,
    /// and not JSONP).
    pub fn supports_binary(&self) -> bool {
        !self.b64 && self.jsonp_index.is_none()
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space and
/// `%XX` a byte. A `%` not followed by two hex digits stays as it is (as
/// Node's `querystring` leaves it); the result must be UTF-8.
pub(crate) fn percent_decode(input: &[u8]) -> Result<Cow<'_, str>, Error> {
    if !input.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(input)
            .map(Cow::Borrowed)
            .map_err(|_| Error::InvalidQueryEncoding);
    }
    let out = duplex_core::form_decode(input);
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| Error::InvalidQueryEncoding)
}

/// The handshake data of the `open` packet.
///
/// Serialized as compact JSON with exactly the keys `sid`, `upgrades`,
/// `pingInterval`, `pingTimeout` and `maxPayload`, in that order, as the
/// reference server and the official test suite expect (`maxPayload` is
/// left out when `None`, as in v3's examples).
///
/// ```
/// use duplex_engineio::OpenPacket;
/// let open = OpenPacket::new("lv_VI97HAXpY6yYWAAAC", &["websocket"], 25000, 20000, Some(1_000_000));
/// assert_eq!(
///     open.to_json(),
///     r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    /// The session id.
    pub sid: String,
    /// Transports the client may upgrade to (`["websocket"]` from polling,
    /// `[]` on a WebSocket).
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between heartbeats.
    pub ping_interval: u64,
    /// Milliseconds to wait for the heartbeat's answer.
    pub ping_timeout: u64,
    /// Largest payload in bytes the server accepts (v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload: Option<u64>,
}

impl OpenPacket {
    /// Handshake data from its parts.
    pub fn new(
        sid: impl Into<String>,
        upgrades: &[&str],
        ping_interval: u64,
        ping_timeout: u64,
        max_payload: Option<u64>,
    ) -> Self {
        Self {
            sid: sid.into(),
            upgrades: upgrades.iter().map(|&u| u.to_owned()).collect(),
            ping_interval,
            ping_timeout,
            max_payload,
        }
    }

    /// The compact JSON text.
    pub fn to_json(&self) -> String {
        // Strings, numbers and a list of strings always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses the JSON text of an `open` packet.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(json).map_err(Error::InvalidOpenPacket)
    }

    /// The `open` packet carrying this data.
    pub fn to_packet(&self) -> Packet {
        Packet::Open(Utf8Bytes::from(self.to_json()))
    }

    /// Reads the data of an `open` packet.
    pub fn from_packet(packet: &Packet) -> Result<Self, Error> {
        match packet {
            Packet::Open(json) => Self::from_json(json.as_bytes()),
            _ => Err(Error::UnknownPacketType(packet.packet_type().digit())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_spec_handshake_example_round_trips() {
        // v4 spec, "Handshake" (there pretty-printed; on the wire compact).
        let json = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let open = OpenPacket::from_json(json.as_bytes()).unwrap();
        assert_eq!(
            open,
            OpenPacket::new(
                "lv_VI97HAXpY6yYWAAAC",
                &["websocket"],
                25000,
                20000,
                Some(1_000_000)
            )
        );
        assert_eq!(open.to_json(), json);
        let pretty = "{\n  \"sid\": \"lv_VI97HAXpY6yYWAAAC\",\n  \"upgrades\": [\"websocket\"],\n  \"pingInterval\": 25000,\n  \"pingTimeout\": 20000,\n  \"maxPayload\": 1000000\n}";
        assert_eq!(OpenPacket::from_json(pretty.as_bytes()).unwrap(), open);
        assert_eq!(open.to_packet(), Packet::Open(json.to_string().into()));
    }

    #[test]
    fn v3_spec_handshake_examples() {
        // v3 sample session: the polling handshake, and the WebSocket-only one without `upgrades`.
        let polling = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}"#;
        let open = OpenPacket::from_json(polling.as_bytes()).unwrap();
        assert_eq!(open.max_payload, None);
        assert_eq!(open.to_json(), polling);
        let ws_only = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","pingInterval":25000,"pingTimeout":5000}"#;
        let open = OpenPacket::from_json(ws_only.as_bytes()).unwrap();
        assert!(open.upgrades.is_empty());
        assert_eq!(open.ping_timeout, 5000);
    }

    #[test]
    fn conformance_handshake_has_exactly_the_five_keys_in_order() {
        let json = OpenPacket::new("abc", &[], 300, 200, Some(1_000_000)).to_json();
        assert_eq!(
            json,
            r#"{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
        );
    }

    #[test]
    fn invalid_open_packet_is_an_error() {
        assert!(matches!(
            OpenPacket::from_json(b"{"),
            Err(Error::InvalidOpenPacket(_))
        ));
        assert!(matches!(
            OpenPacket::from_json(br#"{"sid":1}"#),
            Err(Error::InvalidOpenPacket(_))
        ));
        assert!(OpenPacket::from_packet(&Packet::Close).is_err());
    }

    #[test]
    fn query_parsing() {
        let q = HandshakeQuery::parse("EIO=3&transport=polling&t=N8hyd7H&sid=lv_VI97HAXpY6yYWAAAC")
            .unwrap();
        assert_eq!(q.version, ProtocolVersion::V3);
        assert_eq!(q.sid.as_deref(), Some("lv_VI97HAXpY6yYWAAAC"));
        assert!(q.supports_binary());
        let q = HandshakeQuery::parse("EIO=3&transport=polling&b64=1").unwrap();
        assert!(q.b64 && !q.supports_binary());
        let q = HandshakeQuery::parse("EIO=3&transport=polling&j=4").unwrap();
        assert_eq!(q.jsonp_index.as_deref(), Some("4"));
        assert!(!q.supports_binary());
        let q = HandshakeQuery::parse("j=1%3Ca%3E2&EIO=4&transport=websocket&sid=a%2Bb").unwrap();
        assert_eq!(q.jsonp_index.as_deref(), Some("12"));
        assert_eq!(q.transport, TransportKind::WebSocket);
        assert_eq!(q.sid.as_deref(), Some("a+b"));
        let q = HandshakeQuery::parse("EIO=4&transport=polling&b64=").unwrap();
        assert!(!q.b64);
    }

    #[test]
    fn query_errors() {
        assert!(matches!(
            HandshakeQuery::parse("transport=polling"),
            Err(Error::MissingProtocolVersion)
        ));
        assert!(matches!(
            HandshakeQuery::parse("EIO=abc&transport=abc"),
            Err(Error::UnknownTransport)
        ));
        assert!(matches!(
            HandshakeQuery::parse("EIO=abc&transport=polling"),
            Err(Error::UnsupportedProtocolVersion)
        ));
        assert!(matches!(
            HandshakeQuery::parse("EIO=2&transport=polling"),
            Err(Error::UnsupportedProtocolVersion)
        ));
        assert!(matches!(
            HandshakeQuery::parse("EIO=4"),
            Err(Error::MissingTransport)
        ));
        assert!(matches!(
            HandshakeQuery::parse("EIO=4&transport=abc"),
            Err(Error::UnknownTransport)
        ));
        assert!(matches!(
            HandshakeQuery::parse("EIO=4&EIO=4&transport=polling"),
            Err(Error::DuplicateQueryParameter("EIO"))
        ));
        assert!(matches!(
            HandshakeQuery::parse("EIO=4&transport=polling&sid=%ff"),
            Err(Error::InvalidQueryEncoding)
        ));
        assert!(matches!(
            HandshakeQuery::parse(""),
            Err(Error::MissingTransport)
        ));
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode(b"a%2").unwrap(), "a%2");
        assert_eq!(percent_decode(b"%zz+%41").unwrap(), "%zz A");
    }
}
