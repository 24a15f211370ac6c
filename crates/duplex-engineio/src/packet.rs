//! Engine.IO packets and their encoding as WebSocket messages.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Buf as _;
use bytes::{BufMut, Bytes, BytesMut};

use crate::{Error, ProtocolVersion, Utf8Bytes};

duplex_core::id_enum! {
    /// The seven Engine.IO packet types and their wire digits.
    pub enum PacketType {
        /// `0`: the handshake, sent by the server with the session data.
        Open = 0,
        /// `1`: close the transport (and the session).
        Close = 1,
        /// `2`: heartbeat request (from the server in v4, from the client in v3),
        /// or with data `probe` the first step of an upgrade.
        Ping = 2,
        /// `3`: heartbeat answer, or `probe` answer of an upgrade.
        Pong = 3,
        /// `4`: application data, text or binary.
        Message = 4,
        /// `5`: completes an upgrade to the new transport.
        Upgrade = 5,
        /// `6`: nothing; ends a pending poll during an upgrade.
        Noop = 6,
    }
}

impl PacketType {
    /// The type of an ASCII digit (`b'0'`..=`b'6'`).
    pub const fn from_digit(digit: u8) -> Option<Self> {
        Self::from_id(digit.wrapping_sub(b'0'))
    }

    /// The ASCII digit that starts a text packet of this type.
    pub const fn digit(self) -> u8 {
        b'0' + self as u8
    }
}

/// One Engine.IO packet.
///
/// Text is kept as [`Utf8Bytes`] and binary as [`Bytes`], so decoding a
/// packet out of a received buffer slices it instead of copying.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Packet {
    /// `0` with the handshake JSON (see [`crate::OpenPacket`]).
    Open(Utf8Bytes),
    /// `1`.
    Close,
    /// `2`, with optional data (`probe` during an upgrade; empty otherwise).
    Ping(Utf8Bytes),
    /// `3`, with optional data (`probe` during an upgrade; empty otherwise).
    Pong(Utf8Bytes),
    /// `4` with text data.
    Message(Utf8Bytes),
    /// `4` with binary data.
    Binary(Bytes),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

/// The payload of the `probe` ping and pong of an upgrade.
pub const PROBE: &str = "probe";

/// One WebSocket message carrying one Engine.IO packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WsMessage {
    /// A text frame.
    Text(Utf8Bytes),
    /// A binary frame.
    Binary(Bytes),
}

impl Packet {
    /// A ping without data (`2`).
    pub const fn ping() -> Self {
        Packet::Ping(Utf8Bytes::new())
    }

    /// A pong without data (`3`).
    pub const fn pong() -> Self {
        Packet::Pong(Utf8Bytes::new())
    }

    /// The upgrade probe ping (`2probe`).
    pub const fn probe_ping() -> Self {
        Packet::Ping(Utf8Bytes::from_static(PROBE))
    }

    /// The upgrade probe answer (`3probe`).
    pub const fn probe_pong() -> Self {
        Packet::Pong(Utf8Bytes::from_static(PROBE))
    }

    /// A text message.
    pub fn message(text: impl Into<Utf8Bytes>) -> Self {
        Packet::Message(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Packet::Binary(data.into())
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) | Packet::Binary(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Whether this is the `probe` ping or pong of an upgrade.
    pub fn is_probe(&self) -> bool {
        matches!(self, Packet::Ping(d) | Packet::Pong(d) if d == PROBE)
    }

    /// Whether the packet carries binary data.
    pub fn is_binary(&self) -> bool {
        matches!(self, Packet::Binary(_))
    }

    /// The text after the type digit, empty for packets without data and
    /// for binary messages.
    pub fn text(&self) -> &[u8] {
        match self {
            Packet::Open(d) | Packet::Ping(d) | Packet::Pong(d) | Packet::Message(d) => {
                d.as_bytes()
            }
            _ => &[],
        }
    }

    /// Decodes one text packet: `<type digit>[<data>]`.
    ///
    /// This is the format of a WebSocket text frame and of one element of a
    /// polling payload. A leading `b` is *not* special here (see
    /// [`Packet::decode_base64`]); the data of `close`, `upgrade` and `noop`
    /// is ignored as the reference implementation does.
    pub fn decode_text(text: Utf8Bytes) -> Result<Self, Error> {
        let Some(&first) = text.as_bytes().first() else {
            return Err(Error::EmptyPacket);
        };
        let kind = PacketType::from_digit(first).ok_or(Error::UnknownPacketType(first))?;
        // Cutting after an ASCII digit keeps the rest valid UTF-8. The text
        // is consumed, not cloned, and a bare type digit (a pong `3`) yields
        // an empty payload without touching a reference count.
        let data = move || {
            let mut bytes = text.into_bytes();
            if bytes.len() == 1 {
                return Utf8Bytes::from_validated(Bytes::new());
            }
            bytes.advance(1);
            Utf8Bytes::from_validated(bytes)
        };
        Ok(match kind {
            PacketType::Open => Packet::Open(data()),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(data()),
            PacketType::Pong => Packet::Pong(data()),
            PacketType::Message => Packet::Message(data()),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// Decodes a text packet from bytes, checking UTF-8 first.
    pub fn decode_text_bytes(bytes: Bytes) -> Result<Self, Error> {
        Self::decode_text(Utf8Bytes::from_utf8(bytes)?)
    }

    /// Decodes the part after the `b` of a base64 packet in a polling
    /// payload: in v4 the whole text is the base64 of a binary message; in
    /// v3 a type digit (always `4` in practice) comes before the base64.
    pub fn decode_base64(after_b: &[u8], version: ProtocolVersion) -> Result<Self, Error> {
        let encoded = match version {
            ProtocolVersion::V4 => after_b,
            ProtocolVersion::V3 => {
                let (&digit, rest) = after_b.split_first().ok_or(Error::EmptyPacket)?;
                match PacketType::from_digit(digit) {
                    Some(PacketType::Message) => rest,
                    Some(_) => return Err(Error::BinaryNotMessage(digit.wrapping_sub(b'0'))),
                    None => return Err(Error::UnknownPacketType(digit)),
                }
            }
        };
        let mut out = Vec::with_capacity(encoded.len() / 4 * 3 + 3);
        BASE64
            .decode_vec(encoded, &mut out)
            .map_err(|_| Error::InvalidBase64)?;
        Ok(Packet::Binary(Bytes::from(out)))
    }

    /// Decodes a binary WebSocket message (or the body of a binary packet
    /// in a v3 binary payload): in v4 the bytes are the message as is; in
    /// v3 the first byte is the packet type (`4`) and the rest the message.
    pub fn decode_binary(data: Bytes, version: ProtocolVersion) -> Result<Self, Error> {
        match version {
            ProtocolVersion::V4 => Ok(Packet::Binary(data)),
            ProtocolVersion::V3 => {
                let Some(&kind) = data.first() else {
                    return Err(Error::EmptyPacket);
                };
                match PacketType::from_id(kind) {
                    Some(PacketType::Message) => Ok(Packet::Binary(data.slice(1..))),
                    Some(_) => Err(Error::BinaryNotMessage(kind)),
                    None => Err(Error::UnknownPacketType(kind)),
                }
            }
        }
    }

    /// Decodes one WebSocket message.
    pub fn from_websocket(message: WsMessage, version: ProtocolVersion) -> Result<Self, Error> {
        match message {
            WsMessage::Text(text) => Self::decode_text(text),
            WsMessage::Binary(data) => Self::decode_binary(data, version),
        }
    }

    /// Encodes the packet as one WebSocket message: text packets as
    /// `<type digit><data>` text frames, binary messages as binary frames
    /// (as they are in v4, behind a `0x04` type byte in v3).
    pub fn to_websocket(&self, version: ProtocolVersion) -> WsMessage {
        match self {
            Packet::Binary(data) => match version {
                ProtocolVersion::V4 => WsMessage::Binary(data.clone()),
                ProtocolVersion::V3 => {
                    let mut out = BytesMut::with_capacity(1 + data.len());
                    out.put_u8(PacketType::Message.id());
                    out.extend_from_slice(data);
                    WsMessage::Binary(out.freeze())
                }
            },
            _ => {
                let mut out = BytesMut::with_capacity(1 + self.text().len());
                self.encode_text_into(&mut out);
                // Only a digit and already-valid text went in.
                WsMessage::Text(Utf8Bytes::from_validated(out.freeze()))
            }
        }
    }

    /// Appends the text form `<type digit><data>` to `out`. A binary
    /// message is appended in the v4 payload form `b<base64>`.
    pub fn encode_text_into(&self, out: &mut BytesMut) {
        match self {
            Packet::Binary(data) => {
                out.put_u8(b'b');
                put_base64(out, data);
            }
            _ => {
                out.put_u8(self.packet_type().digit());
                out.extend_from_slice(self.text());
            }
        }
    }

    /// The number of bytes [`Packet::encode_text_into`] appends.
    pub fn encoded_text_len(&self) -> usize {
        match self {
            Packet::Binary(data) => 1 + base64_len(data.len()),
            _ => 1 + self.text().len(),
        }
    }
}

/// Length of the padded standard base64 of `n` bytes.
pub(crate) const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the padded standard base64 of `data` without an intermediate string.
pub(crate) fn put_base64(out: &mut BytesMut, data: &[u8]) {
    let start = out.len();
    let len = base64_len(data.len());
    out.resize(start + len, 0);
    if let Some(dst) = out.get_mut(start..) {
        // The slice is exactly as long as the encoding, so this cannot fail.
        let _ = BASE64.encode_slice(data, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion::{V3, V4};

    fn text(p: &Packet) -> String {
        match p.to_websocket(V4) {
            WsMessage::Text(t) => t.as_str().to_owned(),
            WsMessage::Binary(_) => panic!("binary"),
        }
    }

    fn dec(s: &'static str) -> Packet {
        Packet::decode_text(Utf8Bytes::from_static(s)).unwrap()
    }

    #[test]
    fn every_type_round_trips_as_text() {
        let cases = [
            ("0{\"sid\":\"x\"}", Packet::Open("{\"sid\":\"x\"}".into())),
            ("1", Packet::Close),
            ("2", Packet::ping()),
            ("3", Packet::pong()),
            ("4hello", Packet::message("hello")),
            ("4", Packet::message("")),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
        ];
        for (wire, packet) in cases {
            assert_eq!(dec(wire), packet, "decoding {wire}");
            assert_eq!(text(&packet), wire, "encoding {packet:?}");
        }
    }

    // v4 spec, "Upgrade" and v3 spec, "2 ping": `2probe` / `3probe`.
    #[test]
    fn probe_ping_and_pong() {
        assert_eq!(dec("2probe"), Packet::probe_ping());
        assert!(dec("2probe").is_probe());
        assert_eq!(text(&Packet::probe_pong()), "3probe");
        assert!(!Packet::ping().is_probe());
    }

    // v4 spec, "Packet encoding / WebSocket": `4hello`; binary sent as is.
    #[test]
    fn v4_websocket_examples() {
        assert_eq!(dec("4hello"), Packet::message("hello"));
        assert_eq!(text(&Packet::message("hello")), "4hello");
        let bin = Packet::binary(&[1u8, 2, 3, 4][..]);
        assert_eq!(
            bin.to_websocket(V4),
            WsMessage::Binary(Bytes::from_static(&[1, 2, 3, 4]))
        );
        assert_eq!(
            Packet::from_websocket(WsMessage::Binary(Bytes::from_static(&[1, 2, 3, 4])), V4)
                .unwrap(),
            bin
        );
    }

    // v3 spec, "Packet": `4|0|1|2|3|4|5` is a binary message with bytes 0..=5.
    #[test]
    fn v3_binary_packet_example() {
        let wire = Bytes::from_static(&[4, 0, 1, 2, 3, 4, 5]);
        let packet = Packet::binary(&[0u8, 1, 2, 3, 4, 5][..]);
        assert_eq!(Packet::decode_binary(wire.clone(), V3).unwrap(), packet);
        assert_eq!(packet.to_websocket(V3), WsMessage::Binary(wire));
    }

    // v3 spec, "4 message" examples: `4HelloWorld` both ways.
    #[test]
    fn v3_message_example() {
        assert_eq!(dec("4HelloWorld"), Packet::message("HelloWorld"));
        assert_eq!(
            Packet::message("HelloWorld").to_websocket(V3),
            WsMessage::Text("4HelloWorld".into())
        );
    }

    #[test]
    fn decoding_slices_without_copying() {
        let wire = Bytes::from_static(b"4hello");
        let Packet::Message(m) = Packet::decode_text_bytes(wire.clone()).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(m.as_bytes().as_ptr(), wire[1..].as_ptr());
    }

    #[test]
    fn bad_packets_are_typed_errors() {
        assert!(matches!(
            Packet::decode_text(Utf8Bytes::new()),
            Err(Error::EmptyPacket)
        ));
        assert!(matches!(
            Packet::decode_text("abc".into()),
            Err(Error::UnknownPacketType(b'a'))
        ));
        assert!(matches!(
            Packet::decode_text("7".into()),
            Err(Error::UnknownPacketType(b'7'))
        ));
        assert!(matches!(
            Packet::decode_text_bytes(Bytes::from_static(b"4\xff")),
            Err(Error::InvalidUtf8)
        ));
        assert!(matches!(
            Packet::decode_binary(Bytes::new(), V3),
            Err(Error::EmptyPacket)
        ));
        assert!(matches!(
            Packet::decode_binary(Bytes::from_static(&[2, 1]), V3),
            Err(Error::BinaryNotMessage(2))
        ));
        assert!(matches!(
            Packet::decode_binary(Bytes::from_static(&[9, 1]), V3),
            Err(Error::UnknownPacketType(9))
        ));
        assert!(matches!(
            Packet::decode_base64(b"!!!", V4),
            Err(Error::InvalidBase64)
        ));
        assert!(matches!(
            Packet::decode_base64(b"2AQ==", V3),
            Err(Error::BinaryNotMessage(2))
        ));
    }

    #[test]
    fn close_upgrade_noop_ignore_trailing_data() {
        assert_eq!(dec("1bye"), Packet::Close);
        assert_eq!(dec("5x"), Packet::Upgrade);
        assert_eq!(dec("6x"), Packet::Noop);
    }

    #[test]
    fn base64_packets() {
        // v4 payload spec example: `bAQIDBA==` is <01 02 03 04>.
        assert_eq!(
            Packet::decode_base64(b"AQIDBA==", V4).unwrap(),
            Packet::binary(&[1u8, 2, 3, 4][..])
        );
        // v3: `b4AQIDBA==`.
        assert_eq!(
            Packet::decode_base64(b"4AQIDBA==", V3).unwrap(),
            Packet::binary(&[1u8, 2, 3, 4][..])
        );
        let mut out = BytesMut::new();
        Packet::binary(&[1u8, 2, 3, 4][..]).encode_text_into(&mut out);
        assert_eq!(&out[..], b"bAQIDBA==");
        assert_eq!(Packet::binary(&[1u8, 2, 3, 4][..]).encoded_text_len(), 9);
    }
}
