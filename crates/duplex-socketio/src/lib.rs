//! Sans-IO [Socket.IO](https://github.com/socketio/socket.io-protocol):
//! protocol v5 and, for old clients, v4.
//!
//! * [`Packet`] and [`Decoder`]: the packet codec
//!   `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, with binary
//!   attachments travelling as separate messages after the packet.
//! * [`Value`]: payloads with binary data, deconstructed into
//!   `{"_placeholder":true,"num":N}` plus attachments, and reconstructed.
//! * [`Namespaces`]: the per-connection namespace handshake (CONNECT,
//!   CONNECT_ERROR, DISCONNECT), v4's implicit default namespace, and the
//!   connect timeout.
//! * [`Acks`]: ack id allocation and matching, with timeouts.
//! * [`Rooms`] and [`Broadcast`]: room membership and the recipients of a
//!   broadcast encoded once.
//! * [`engineio_binding`]: Socket.IO over Engine.IO (the revision each
//!   Engine.IO protocol carries, the disconnect reason of each Engine.IO
//!   close, a packet as the Engine.IO messages that carry it).
//! * [`recovery`]: connection state recovery (the packet log with offsets,
//!   the kept sessions, the restore with the missed packets).
//! * [`client::Client`]: the client side (namespaces, buffered emits,
//!   acks, binary packets, the reconnection backoff).
//!
//! Each Socket.IO packet is the data of one Engine.IO `message` packet (see
//! `duplex-engineio`), attachments each one binary message. Nothing here
//! touches a socket, a clock or a runtime.
//!
//! ```
//! use bytes::Bytes;
//! use duplex_socketio::{Decoder, DecoderConfig, Packet, Value};
//!
//! // Decode an event with an ack id from a client...
//! let mut decoder = Decoder::new(DecoderConfig::default());
//! let packet = decoder
//!     .receive_text(Bytes::from_static(br#"2/admin,456["project:delete",123]"#))
//!     .unwrap()
//!     .unwrap();
//! assert_eq!(packet.event_name().as_deref(), Some("project:delete"));
//! assert_eq!(packet.namespace, "/admin");
//!
//! // ...and answer it with an ack carrying a binary buffer.
//! let ack = Packet::ack_with("/admin", &[Bytes::from_static(&[3, 2, 1]).into()], 456).unwrap();
//! let wire = ack.encode();
//! assert_eq!(wire.text, r#"61-/admin,456[{"_placeholder":true,"num":0}]"#);
//! assert_eq!(wire.attachments, [Bytes::from_static(&[3, 2, 1])]);
//! ```
// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![forbid(unsafe_code)]

mod acks;
pub mod client;
pub mod cluster;
mod decoder;
pub mod engineio_binding;
mod error;
mod namespaces;
mod packet;
pub mod recovery;
mod rooms;
pub mod server;
mod value;

pub use acks::Acks;
pub use namespaces::{
    NamespaceState, Namespaces, NamespacesConfig, NamespacesEvent, Received, Role,
};
pub use rooms::{Broadcast, Rooms};

pub use decoder::{Decoder, DecoderConfig};
/// Namespaces, event names and JSON payloads are the workspace's one
/// checked UTF-8 byte type; `Str` is its old name here.
pub use duplex_core::{Utf8Bytes, Utf8Bytes as Str};
pub use error::{AckFailure, Error};
pub use packet::{
    DEFAULT_NAMESPACE, EncodedAck, EncodedPacket, Packet, PacketType, ProtocolVersion,
};
pub use value::Value;
