//! SockJS on hyper: [`SockJsService`] serves every transport of
//! duplex-polling's SockJS dialect (xhr, xhr_streaming, eventsource,
//! htmlfile, jsonp, the session and raw WebSockets) under a prefix, and
//! hands each session to the application as a [`SockJsSocket`]: a stream of
//! messages in, a sink of messages out, closed with a code and a reason,
//! whatever transport the client picked.
//!
//! The options are sockjs-node's, in [`duplex_polling::SockJsConfig`]:
//! `websocket`, `cookie_needed`, `response_limit`, `heartbeat_delay`,
//! `disconnect_delay`, `sockjs_url`, and `cors.allowed_origins`.

mod body;
mod service;
mod socket;

pub use body::SockJsBody;
pub use duplex_polling::{CloseReason, Message, OpenInfo, SessionId, SockJsConfig, TransportName};
pub use service::SockJsService;
pub use socket::{SockJsError, SockJsSender, SockJsSocket};
