//! SockJS on hyper: [`SockJsService`] serves every transport of
//! duplex-polling's SockJS dialect (xhr, xhr_streaming, eventsource,
//! htmlfile, jsonp, the session and raw WebSockets) under a prefix, and
//! hands each session to the application as a [`SockJsSocket`]: a stream of
//! messages in, a sink of messages out, closed with a code and a reason,
//! whatever transport the client picked.
//!
//! The HTTP side is the one driver of [`crate::http`]; this module adds
//! only the sockets: `app.rs` keeps each session's inbox and waiting sends
//! on the driver, `socket.rs` is the application's handle, `service.rs`
//! wires the two.
//!
//! The options are sockjs-node's, in [`duplex_polling::SockJsConfig`]:
//! `websocket`, `cookie_needed`, `response_limit`, `heartbeat_delay`,
//! `disconnect_delay`, `sockjs_url`, and `cors.allowed_origins`.

mod app;
mod error;
mod service;
mod socket;

/// The body of every response a [`SockJsService`] writes (the driver's
/// body, whole or streamed).
pub use crate::http::HttpBody as SockJsBody;
/// The cross-origin settings of the config's `cors` field.
pub use duplex_polling::Cors;
pub use duplex_polling::{CloseReason, Message, OpenInfo, SessionId, SockJsConfig, TransportName};
pub use error::SockJsError;
pub use service::SockJsService;
pub use socket::{SockJsSender, SockJsSocket};
