//! The tokio + hyper runtime adapter for the duplex sans-IO crates: it moves
//! bytes and timers between sockets and the protocol machines, and decides
//! nothing about any protocol itself.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//!
//! # async fn demo() -> Result<(), duplex_tokio::Error> {
//! // A WebSocket echo server on a raw TCP listener...
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     loop {
//!         // accept fails when file descriptors run out (EMFILE): wait
//!         // for some to be freed rather than stop serving for good.
//!         let Ok((tcp, _)) = listener.accept().await else {
//!             tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//!             continue;
//!         };
//!         tokio::spawn(async move {
//!             let mut ws = duplex_tokio::accept(tcp).await?;
//!             while let Some(msg) = ws.next().await {
//!                 ws.send(msg?).await?;
//!             }
//!             Ok::<_, duplex_tokio::Error>(())
//!         });
//!     }
//! });
//! // ...and a client talking to it.
//! let (mut ws, _) = duplex_tokio::connect(&format!("ws://{addr}/")).await?;
//! ws.send("hello".into()).await?;
//! assert_eq!(ws.next().await.transpose()?, Some("hello".into()));
//! ws.close().await?;
//! # Ok(()) }
//! ```
// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![forbid(unsafe_code)]

mod client;
pub mod engineio;
mod error;
mod http;
mod limits;
pub mod polling;
mod server;
pub mod socketio;
pub mod sockjs;
pub mod sse;
pub mod stomp;
mod stream;
mod tls;

pub use client::{ClientConfig, ClientIo, client_handshake, connect, connect_with};
#[cfg(feature = "cluster")]
pub use error::ClusterFailure;
pub use error::Error;
pub use limits::HttpLimits;
pub use server::{
    Acceptance, Rejection, ServerConfig, Upgrade, UpgradedIo, accept, accept_with, upgrade,
};
pub use stream::{StreamConfig, WebSocketStream};
pub use tls::MaybeTlsStream;
#[cfg(feature = "tls")]
pub use tls::{Alpn, TlsAcceptor, TlsServerConfig};
/// The rustls this adapter was built with, for [`ClientConfig::tls`] and
/// for code that wraps [`TlsAcceptor`] streams.
#[cfg(feature = "tls")]
pub use tokio_rustls::{self, rustls};

/// The sans-IO WebSocket crate this adapter drives.
pub use duplex_ws as ws;
