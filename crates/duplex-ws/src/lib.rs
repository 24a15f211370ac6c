//! Sans-IO RFC 6455 WebSocket: the opening handshake for both roles, a
//! frame codec, message assembly and the connection state machine. No
//! sockets, clocks or async: bytes in, events out, commands in, bytes out.
//!
//! ```
//! use bytes::BytesMut;
//! use duplex_ws::{Config, Connection, Event, Message, Role};
//!
//! // A server connection receives a masked text frame ("Hello", RFC 6455 5.7)...
//! let mut server = Connection::new(Role::Server, Config::default());
//! server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! let Some(Event::Message(Message::Text(text))) = server.poll_event() else { panic!() };
//! assert_eq!(text, "Hello");
//!
//! // ...and echoes it: the bytes to write come out of poll_transmit.
//! server.send_text(text.as_str()).unwrap();
//! let mut out = BytesMut::new();
//! server.poll_transmit(&mut out);
//! assert_eq!(&out[..], b"\x81\x05Hello");
//! ```
//!
//! See `docs/websocket.md` for driving a connection from a blocking loop or
//! from tokio, and [`handshake`] for the opening handshake.
// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![forbid(unsafe_code)]

mod close;
mod config;
mod connection;
mod decoder;
mod deflate;
mod error;
mod frame;
pub mod handshake;
mod mask;
mod message;
mod transmit;

pub use close::{CloseCode, CloseFrame};
pub use config::Config;
pub use connection::{Connection, Event, EventRef, State};
pub use decoder::{FrameDecoder, Role};
pub use deflate::{DeflateConfig, DeflateParams};
pub use duplex_core::{InvalidUtf8, Utf8Validator};
pub use error::{Error, ProtocolError};
pub use frame::{Frame, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode};
pub use handshake::HandshakeError;
pub use mask::apply_mask;
pub use message::{Message, Utf8Bytes};
pub use transmit::TransmitChunks;
/// The old name of [`TransmitChunks`], kept for one release.
#[deprecated(
    note = "renamed `TransmitChunks`: four crates had a `Transmit`, each meaning something else"
)]
pub type Transmit = TransmitChunks;
// The checks, shared with every crate (their one `unsafe` block proves ASCII).
use duplex_core::utf8;
