//! STOMP on tokio: a server over TCP, WebSocket and SockJS on the embedded
//! broker or relayed to an external one, and a client over TCP and
//! WebSocket.
//!
//! Everything STOMP is decided by `duplex-stomp`'s machines
//! ([`duplex_stomp::ServerSession`], [`duplex_stomp::ClientSession`],
//! [`duplex_stomp::Broker`], [`duplex_stomp::Relay`]), down to the text of
//! every `ERROR` frame; this module moves their bytes, runs their timers,
//! opens their connections and owns their tasks:
//!
//! * one task owns the embedded [`duplex_stomp::Broker`] ([`BrokerHandle`]);
//!   each connection talks to it over a channel and gets its frames back
//!   through a bounded outbox;
//! * one task per connection drives its session: bytes in, events to the
//!   broker, frames out, a timer until the session's `poll_timeout()`;
//!   with a relay, the task also moves the bytes of the connection to the
//!   upstream broker, opened when the relay asks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use duplex_tokio::stomp::{AckMode, ClientConfig, ClientEvent, StompClient, StompServer};
//!
//! let server = StompServer::embedded();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move { server.serve_tcp(listener).await });
//!
//! let mut client = StompClient::connect(addr, ClientConfig::new("/")).await?;
//! client.subscribe("/topic/news", AckMode::Auto).await?;
//! client.send("/topic/news", &[], "hello").await?;
//! let Some(ClientEvent::Message(m)) = client.next_event().await else { panic!() };
//! assert_eq!(m.body().as_ref(), b"hello");
//! # Ok(()) }
//! ```

mod broker;
mod client;
mod connection;
mod relay;
mod server;
mod transport;

pub use broker::BrokerHandle;
pub use client::{StompClient, StompReceiver, StompSender};
pub use relay::RelayConfig;
pub use server::{StompBackend, StompServer};

// What a STOMP application names from the sans-IO crate (the client's
// config, ack modes, events and frames, the server sessions' config and
// authenticator), so that a dependency on duplex-tokio is enough.
pub use duplex_stomp::{
    Accepted, AckMode, Authenticator, ClientConfig, ClientEvent, Command, ConnectRequest,
    Connected, Frame, Header, HeartBeat, Limits, Message, ServerConfig, Version,
};

/// What can go wrong for a [`StompClient`]: the adapter's one
/// [`crate::Error`], under the name it had when it was a type of its own.
pub type StompError = crate::Error;

/// The guide `docs/sockjs-stomp.md`, compiled so that its examples stay
/// true.
#[cfg(all(doctest, feature = "sockjs"))]
#[doc = include_str!("../../../../docs/sockjs-stomp.md")]
pub struct SockJsStompGuide;
