//! Sans-IO [Engine.IO](https://github.com/socketio/engine.io-protocol):
//! protocol v4 and, for old clients, v3.
//!
//! * [`Packet`]: the seven packet types, text and binary messages, the
//!   upgrade `probe`; one packet per WebSocket message
//!   ([`Packet::to_websocket`], [`Packet::from_websocket`]).
//! * [`PayloadFormat`], [`PayloadDecoder`], [`decode_payload`]: polling
//!   bodies in the v4 format and the three v3 ones (string with UTF-16
//!   lengths, binary for XHR2, base64), plus [`jsonp`] wrapping.
//! * [`OpenPacket`] and [`HandshakeQuery`]: the handshake.
//! * [`Heartbeat`] and [`Upgrade`]: the session timers, driven by
//!   `handle_timeout(now)` / `poll_timeout()`.
//! * [`client::ClientSession`]: the client side of a v4 session (handshake,
//!   heartbeat watchdog, polling requests, the upgrade probe).
//! * [`server::Server`]: the server side of every session of an endpoint
//!   (handshake, heartbeat, polling and WebSocket packet flow, the
//!   upgrade), transport-agnostic: an HTTP binding such as duplex-polling's
//!   `EngineIoServer` frames its answers.
//!
//! Nothing here touches a socket, a clock or a runtime.
//!
//! ```
//! use bytes::Bytes;
//! use duplex_engineio::{decode_payload, Limits, Packet, PayloadFormat};
//!
//! // A v4 polling body with a text and a binary message.
//! let body = Bytes::from_static(b"4hello\x1ebAQIDBA==");
//! let packets: Vec<Packet> = decode_payload(body.clone(), PayloadFormat::V4, Limits::default())
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(packets, [Packet::message("hello"), Packet::binary(&[1u8, 2, 3, 4][..])]);
//!
//! // And back.
//! assert_eq!(PayloadFormat::V4.encode_to_bytes(&packets), body);
//! ```
// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![forbid(unsafe_code)]

pub mod client;
pub mod client_url;
mod error;
mod handshake;
pub mod jsonp;
mod packet;
mod payload;
pub mod server;
mod session;

/// Text packets hold the workspace's one checked UTF-8 byte type.
pub use duplex_core::Utf8Bytes;
use duplex_core::utf8;
pub use error::{Error, ServerErrorCode};
pub use handshake::{HandshakeQuery, OpenPacket, ProtocolVersion, TransportKind};
pub use packet::{PROBE, Packet, PacketType, WsMessage};
pub use payload::{
    Limits, PayloadDecoder, PayloadFormat, PayloadPackets, RECORD_SEPARATOR, decode_payload,
    decode_payload_vec,
};
pub use session::{
    Heartbeat, HeartbeatConfig, HeartbeatEvent, HeartbeatState, Upgrade, UpgradeConfig,
    UpgradeEvent, UpgradeState,
};
