//! Sans-IO STOMP 1.0, 1.1 and 1.2: a frame codec, client and server session
//! machines, an in-memory broker and a relay to an external broker. Nothing
//! here touches a socket, a clock or a thread: bytes and the time go in,
//! events and bytes come out.
//!
//! ```
//! use bytes::BytesMut;
//! use duplex_stomp::{Command, Decoded, Frame, FrameDecoder, Limits, Version};
//!
//! // Encode a SEND frame for STOMP 1.2 (a content-length is added).
//! let frame = Frame::new(Command::Send)
//!     .with_header("destination", "/queue/a")
//!     .with_body(&b"hello\0world"[..]);
//! let mut wire = BytesMut::new();
//! frame.encode(Version::V1_2, &mut wire).unwrap();
//!
//! // Decode it again, one octet at a time, after a heart-beat.
//! let mut decoder = FrameDecoder::new(Limits::default());
//! let mut items = Vec::new();
//! for byte in b"\n".iter().chain(wire.iter()) {
//!     decoder.receive(&[*byte]);
//!     while let Some(item) = decoder.decode().unwrap() {
//!         items.push(item);
//!     }
//! }
//! assert_eq!(items, vec![Decoded::HeartBeat, Decoded::Frame(frame)]);
//! ```
//!
//! See `docs/stomp.md` for the sessions and the broker.

// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![forbid(unsafe_code)]

mod ack;
pub mod broker;
pub mod client;
mod decoder;
mod error;
mod escape;
mod frame;
mod heartbeat;
pub mod relay;
pub mod server;
mod version;

pub use ack::{AckMode, Message};
pub use broker::{Broker, BrokerConfig, BrokerOutput, ConnectionId};
pub use client::{ClientConfig, ClientEvent, ClientSession, ClientState, Connected};
pub use decoder::{Decoded, FrameDecoder, Limits};
pub use error::Error;
pub use frame::{Command, Frame, Header, encode_frame};
pub use heartbeat::{HeartBeat, HeartBeatIntervals};
pub use relay::{Relay, RelayConfig, RelayEvent, RelayState, Side};
pub use server::{
    Accepted, Authenticator, ConnectRequest, ServerConfig, ServerEvent, ServerSession, ServerState,
};
pub use version::Version;

/// The guide `docs/stomp.md`, compiled so that its examples stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/stomp.md")]
pub struct StompGuide;
