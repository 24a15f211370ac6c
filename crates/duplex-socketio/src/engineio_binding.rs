//! Socket.IO over Engine.IO: what a Socket.IO machine makes of what an
//! Engine.IO session reports, and how its packets become Engine.IO
//! messages.
//!
//! * [`socketio_version`]: the Socket.IO revision an Engine.IO session of
//!   a given protocol carries (socket.io-protocol: "Socket.IO v5 over
//!   Engine.IO v4", v4 over Engine.IO v3).
//! * [`disconnect_reason`]: the reason a socket disconnects with when its
//!   Engine.IO session closes, from the Engine.IO close reason (the
//!   reference server hands the engine's reason through to the sockets).
//! * [`DEFAULT_PATH`]: where the Engine.IO endpoint of Socket.IO is.
//! * [`packet_messages`]: an encoded packet as the Engine.IO messages that
//!   carry it, to be queued all or none.
//!
//! Any runtime driving a [`Server`](crate::server::Server) or a
//! [`Client`](crate::client::Client) over an Engine.IO session takes these
//! decisions from here, so that two adapters cannot disagree on them.
//!
//! ```
//! use bytes::Bytes;
//! use duplex_engineio::{ProtocolVersion as Eio, WsMessage};
//! use duplex_socketio::engineio_binding::{disconnect_reason, packet_messages, socketio_version};
//! use duplex_socketio::server::DisconnectReason;
//! use duplex_socketio::{Packet, ProtocolVersion};
//!
//! assert_eq!(socketio_version(Eio::V4), ProtocolVersion::V5);
//! assert_eq!(disconnect_reason("ping timeout"), DisconnectReason::PingTimeout);
//!
//! // socket.io-protocol's example: `emit("hello", <Buffer 01 02 03>)`.
//! let packet = Packet::event_with("/", "hello", &[Bytes::from_static(&[1, 2, 3]).into()], None)
//!     .unwrap();
//! let messages = packet_messages(packet.encode());
//! assert_eq!(messages.len(), 2);
//! assert!(matches!(&messages[0], WsMessage::Text(t)
//!     if t.as_str() == r#"51-["hello",{"_placeholder":true,"num":0}]"#));
//! assert_eq!(messages[1], WsMessage::Binary(Bytes::from_static(&[1, 2, 3])));
//! ```

use duplex_engineio::{ProtocolVersion as EngineIoVersion, WsMessage};

use crate::server::DisconnectReason;
use crate::{EncodedPacket, ProtocolVersion};

/// The path Socket.IO's Engine.IO endpoint is served at unless configured
/// otherwise (the reference server's and client's `path` option).
pub const DEFAULT_PATH: &str = "/socket.io/";

/// The Socket.IO revision an Engine.IO session of protocol `engineio`
/// carries: v4 over Engine.IO 3 (`EIO=3`), v5 over Engine.IO 4 (`EIO=4`).
pub fn socketio_version(engineio: EngineIoVersion) -> ProtocolVersion {
    match engineio {
        EngineIoVersion::V3 => ProtocolVersion::V4,
        EngineIoVersion::V4 => ProtocolVersion::V5,
    }
}

/// The reason the sockets of an Engine.IO session disconnect with when the
/// session closes for the Engine.IO reason `engineio_close` (the
/// reference's texts: `"transport close"`, `"ping timeout"`...).
///
/// The reference server passes the engine's reason through unchanged; the
/// one Engine.IO reason with no Socket.IO counterpart, `"forced close"`
/// (the server closed the session), is reported as
/// [`DisconnectReason::ForcedServerClose`]. A reason this side does not
/// know (a transport's own, such as an overflowing queue) is a transport
/// failure: [`DisconnectReason::TransportError`].
pub fn disconnect_reason(engineio_close: &str) -> DisconnectReason {
    match engineio_close {
        "transport close" => DisconnectReason::TransportClose,
        "ping timeout" => DisconnectReason::PingTimeout,
        "parse error" => DisconnectReason::ParseError,
        "forced close" | "forced server close" => DisconnectReason::ForcedServerClose,
        "server shutting down" => DisconnectReason::ServerShuttingDown,
        _ => DisconnectReason::TransportError,
    }
}

/// The Engine.IO messages that carry `packet`: its text as one text
/// message, then each binary attachment as one binary message, in order.
///
/// They are one unit: queue them all or none, never some. A text packet
/// announcing attachments whose messages were refused would make the peer
/// take the next packet's messages for the missing attachments (the
/// reference parser reconstructs from whatever binary messages follow).
///
/// The text is handed on as it is: both crates hold the same checked text
/// type, so nothing is checked or copied here.
pub fn packet_messages(packet: EncodedPacket) -> Vec<WsMessage> {
    let mut messages = Vec::with_capacity(1 + packet.attachments.len());
    messages.push(WsMessage::Text(packet.text));
    messages.extend(packet.attachments.into_iter().map(WsMessage::Binary));
    messages
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::server::version_for_engineio;
    use crate::{Decoder, DecoderConfig, Packet, Str, Value};

    #[test]
    fn versions_of_the_protocol_document() {
        assert_eq!(socketio_version(EngineIoVersion::V3), ProtocolVersion::V4);
        assert_eq!(socketio_version(EngineIoVersion::V4), ProtocolVersion::V5);
        // The same answer as the numeric form the server machine documents.
        for (eio, n) in [(EngineIoVersion::V3, 3), (EngineIoVersion::V4, 4)] {
            assert_eq!(socketio_version(eio), version_for_engineio(n));
        }
    }

    #[test]
    fn engine_close_reasons_pass_through() {
        let cases = [
            ("transport close", DisconnectReason::TransportClose),
            ("transport error", DisconnectReason::TransportError),
            ("ping timeout", DisconnectReason::PingTimeout),
            ("parse error", DisconnectReason::ParseError),
            ("forced close", DisconnectReason::ForcedServerClose),
            ("server shutting down", DisconnectReason::ServerShuttingDown),
            ("forced server close", DisconnectReason::ForcedServerClose),
            // Reasons of the HTTP binding that Engine.IO does not name.
            ("expired", DisconnectReason::TransportError),
            ("queue overflow", DisconnectReason::TransportError),
            ("payload too large", DisconnectReason::TransportError),
            ("", DisconnectReason::TransportError),
        ];
        for (engine, want) in cases {
            assert_eq!(disconnect_reason(engine), want, "{engine:?}");
        }
    }

    #[test]
    fn socketio_reasons_survive_the_round_trip() {
        // Every reason a whole connection can end with is read back as
        // itself from its own text (the namespace-level ones never come
        // from the engine).
        for reason in [
            DisconnectReason::TransportClose,
            DisconnectReason::TransportError,
            DisconnectReason::PingTimeout,
            DisconnectReason::ParseError,
            DisconnectReason::ServerShuttingDown,
            DisconnectReason::ForcedServerClose,
        ] {
            assert_eq!(disconnect_reason(reason.as_str()), reason);
        }
    }

    #[test]
    fn a_packet_without_binary_is_one_text_message() {
        // socket.io-protocol: `socket.emit("hello", "world")` is `2["hello","world"]`.
        let packet = Packet::event_with("/", "hello", &["world".into()], None).unwrap();
        assert_eq!(
            packet_messages(packet.encode()),
            [WsMessage::Text(crate::Str::from_static(
                r#"2["hello","world"]"#
            ))]
        );
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,6}".prop_map(Value::String),
            proptest::collection::vec(any::<u8>(), 0..8)
                .prop_map(|b| Value::Binary(Bytes::from(b))),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    proptest! {
        /// The messages, fed in order to a peer's decoder, give back the
        /// packet: the text first, then exactly its attachments.
        #[test]
        fn messages_decode_back_to_the_packet(
            args in proptest::collection::vec(value(), 0..4),
            ack in proptest::option::of(0u64..1000),
        ) {
            let packet = Packet::event_with(Str::from_static("/chat"), "e", &args, ack).unwrap();
            let encoded = packet.encode();
            let attachments = encoded.attachments.len();
            let messages = packet_messages(encoded);
            prop_assert_eq!(messages.len(), 1 + attachments);
            let mut decoder = Decoder::new(DecoderConfig {
                max_attachments: usize::MAX,
                ..DecoderConfig::default()
            });
            let mut decoded = None;
            for message in messages {
                let out = match message {
                    WsMessage::Text(t) => decoder.receive_text(t.into_bytes()),
                    WsMessage::Binary(b) => decoder.receive_binary(b),
                };
                if let Some(p) = out.unwrap() {
                    prop_assert!(decoded.is_none(), "one packet only");
                    decoded = Some(p);
                }
            }
            let decoded = decoded.unwrap();
            prop_assert_eq!(decoded.event_name(), Some("e".to_owned()));
            prop_assert_eq!(decoded.ack_id, ack);
        }
    }
}
