//! The HTTP transports browsers fall back to when a WebSocket cannot get
//! through, as sans-IO state machines: long-polling and streaming, with an
//! Engine.IO, a SockJS and a Server-Sent Events dialect.
//!
//! A machine is handed HTTP requests as data ([`Request`]), WebSocket
//! messages and the current time, and answers with what to write
//! ([`HttpTransmit`]: complete responses, streaming responses chunk by chunk,
//! WebSocket accepts, messages and closes, all by request id), with
//! application [`Event`]s (session opened, message, closed), and with when
//! it next wants to be woken. It never touches a socket or a clock; an
//! adapter moves the bytes and the time.
//!
//! * [`EngineIoServer`]: Engine.IO v4 (and v3) polling, WebSocket and the
//!   upgrade between them, as the reference server answers: the HTTP
//!   binding of duplex-engineio's session machine
//!   ([`duplex_engineio::server::Server`]), which holds the sessions.
//! * [`SockJsServer`]: SockJS 0.3.3, every transport.
//! * [`SseServer`]: one-way push over `text/event-stream` with resumption
//!   from `Last-Event-ID`.
//!
//! All three implement [`Endpoint`], so one adapter loop drives any of them
//! (`docs/transports.md` has the state diagrams and the dialects side by
//! side). Every queue and buffer is bounded ([`QueueConfig`], body limits,
//! response limits, session counts) with documented defaults.
//!
//! The adapter loop is the same for all three:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use duplex_polling::{EngineIoConfig, EngineIoServer, Event, Message, Request, RequestId, HttpTransmit};
//! use http::Method;
//!
//! let mut server = EngineIoServer::new(EngineIoConfig::default());
//! let t0 = Instant::now();
//! // 1. Requests (and WebSocket messages, aborts, timeouts) go in...
//! server.handle_request(Request::new(RequestId(1), Method::GET, "/?EIO=4&transport=polling"), t0);
//! // 2. ...application events come out, and the application answers...
//! while let Some(event) = server.poll_event() {
//!     if let Event::Opened { session, .. } = event {
//!         server.send(&session, Message::text("welcome"), t0).unwrap();
//!     }
//! }
//! // 3. ...then everything to write, by request id...
//! while let Some(transmit) = server.poll_transmit() {
//!     match transmit {
//!         HttpTransmit::Response { request, response } => assert_eq!(request, RequestId(1)),
//!         other => unreachable!("{other:?}"),
//!     }
//! }
//! // 4. ...and the adapter sleeps until a socket is ready or this instant.
//! assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(25)));
//! ```
// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![forbid(unsafe_code)]

mod endpoint;
mod engineio;
mod error;
mod http;
mod id;
mod queue;
mod session;
mod shell;
mod sockjs;
mod sockjs_client;
mod sse;
mod sse_client;

pub use crate::endpoint::Endpoint;
pub use crate::engineio::{EngineIoConfig, EngineIoServer};
pub use crate::error::{CloseReason, Error};
pub use crate::http::{
    Cors, Event, HttpTransmit, Message, OpenInfo, Request, Response, TransportName,
};
/// The old name of [`HttpTransmit`], kept for one release.
#[deprecated(
    note = "renamed `HttpTransmit`: four crates had a `Transmit`, each meaning something else"
)]
pub type Transmit = HttpTransmit;
pub use crate::id::RequestId;
pub use crate::queue::{OverflowPolicy, QueueConfig};
pub use crate::sockjs::{SockJsConfig, SockJsServer};
pub use crate::sockjs_client::{
    SockJsClient, SockJsClientConfig, SockJsClientEvent, SockJsClientTransport,
};
pub use crate::sse::{SseConfig, SseServer};
pub use crate::sse_client::{SseEvent, SseParser, SseParserConfig};
pub use duplex_core::{SessionId, Utf8Bytes};
pub use duplex_engineio::ProtocolVersion;

/// The guide `docs/transports.md`, compiled so that its examples stay true
/// (only under `cargo test`: the guides are not part of the package).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/transports.md")]
pub struct TransportsGuide;
