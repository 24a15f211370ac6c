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
//!
//! # Features
//!
//! Each protocol is a cargo feature, so that an application compiles only
//! what it serves; each asks tokio, hyper and hyper-util for only the
//! features it uses, and none of them turns on serde_json's features.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `ws` | on | WebSocket client and server ([`connect`], [`accept`], [`upgrade`], [`WebSocketStream`]); every other feature builds on it. No hyper server or client. |
//! | `http2` | on | WebSockets over HTTP/2 (RFC 8441): [`upgrade`] takes an extended CONNECT; `Http2Connection`, the client that opens several WebSockets on one connection |
//! | `socketio` | on | [`socketio`]: the Socket.IO server and client (and, through `polling`, [`engineio`]) |
//! | `sockjs` | on | [`sockjs`]: the SockJS server, every transport |
//! | `sse` | on | [`sse`]: the Server-Sent Events server |
//! | `stomp` | on | [`stomp`]: STOMP client, server and relay over TCP and WebSocket; over SockJS with `sockjs` |
//! | `polling` | with the three above | [`polling`]: the HTTP driver they share, `serve_http` (HTTP/1.1 and HTTP/2 on one connection), [`HttpLimits`], [`Cors`] |
//! | `tls` | off | `wss://` for the clients and TLS accept for servers (tokio-rustls, ring, webpki roots) |
//! | `cluster` | off | Socket.IO across servers: the cluster API and its transport interface (implies `socketio`; the Redis transport is the crate `duplex-redis`) |
//! | `axum` | off | `axum::WebSocketUpgrade`: a WebSocket extractor for axum 0.8 |
//!
//! For example, a Socket.IO server and nothing else:
//! `duplex-tokio = { version = "0.1", default-features = false, features = ["socketio"] }`.
//! The Socket.IO service is a `tower::Service`, so it mounts in an axum
//! router as it is (the `socketio_axum` example); plain WebSockets in axum
//! go through the `axum` feature's extractor (the `axum_websocket` example).
// docs.rs (`--cfg docsrs`, nightly) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's example is compiled as a doctest too, so that it cannot rot.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![forbid(unsafe_code)]

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "ws")]
mod client;
#[cfg(feature = "polling")]
pub mod engineio;
#[cfg(feature = "ws")]
mod error;
#[cfg(feature = "http2")]
mod h2_client;
#[cfg(feature = "polling")]
mod http;
#[cfg(feature = "polling")]
mod limits;
#[cfg(feature = "polling")]
pub mod polling;
#[cfg(feature = "ws")]
mod server;
#[cfg(feature = "socketio")]
pub mod socketio;
#[cfg(feature = "sockjs")]
pub mod sockjs;
#[cfg(feature = "sse")]
pub mod sse;
#[cfg(feature = "stomp")]
pub mod stomp;
#[cfg(feature = "ws")]
mod stream;
#[cfg(feature = "ws")]
mod tls;

#[cfg(feature = "ws")]
pub use client::{ClientConfig, ClientIo, client_handshake, connect, connect_with};
/// The cross-origin settings of every HTTP endpoint (Socket.IO, SockJS,
/// SSE, Engine.IO): the `cors` field of their configs.
#[cfg(feature = "polling")]
pub use duplex_polling::Cors;
/// Whether a request asks for a WebSocket (HTTP/1.1 upgrade or HTTP/2
/// CONNECT): duplex-ws decides it; re-exported where the adapter's users
/// route requests.
#[cfg(feature = "ws")]
pub use duplex_ws::handshake::wants_websocket;
#[cfg(feature = "cluster")]
pub use error::ClusterFailure;
#[cfg(feature = "ws")]
pub use error::Error;
#[cfg(feature = "http2")]
pub use h2_client::{Http2Connection, Http2Stream};
#[cfg(feature = "polling")]
pub use http::{HttpProtocol, HttpServerConfig, serve_http};
#[cfg(feature = "polling")]
pub use limits::HttpLimits;
#[cfg(feature = "ws")]
pub use server::{
    Acceptance, Opening, Rejection, ServerConfig, Upgrade, UpgradedIo, accept, accept_with,
    offered_protocols, upgrade,
};
#[cfg(feature = "ws")]
pub use stream::{StreamConfig, WebSocketStream};
#[cfg(feature = "ws")]
pub use tls::MaybeTlsStream;
#[cfg(feature = "tls")]
pub use tls::{Alpn, TlsAcceptor, TlsServerConfig};
/// The rustls this adapter was built with, for [`ClientConfig::tls`] and
/// for code that wraps [`TlsAcceptor`] streams.
#[cfg(feature = "tls")]
pub use tokio_rustls::{self, rustls};

/// The guide `docs/websocket.md`, compiled so that its examples stay true
/// (only under `cargo test`: the guides are not part of the package).
#[cfg(all(doctest, feature = "polling"))]
#[doc = include_str!("../../../docs/websocket.md")]
pub struct WebSocketGuide;

/// The guide `docs/socketio.md`, compiled so that its examples stay true.
#[cfg(all(doctest, feature = "socketio"))]
#[doc = include_str!("../../../docs/socketio.md")]
pub struct SocketIoGuide;

/// The guide `docs/socketio-recovery.md`, compiled so that its example
/// stays true.
#[cfg(all(doctest, feature = "socketio"))]
#[doc = include_str!("../../../docs/socketio-recovery.md")]
pub struct SocketIoRecoveryGuide;

/// The guide `docs/tls-http2.md`, compiled so that its examples stay true.
#[cfg(all(doctest, feature = "tls", feature = "polling"))]
#[doc = include_str!("../../../docs/tls-http2.md")]
pub struct TlsHttp2Guide;

/// The sans-IO WebSocket crate this adapter drives.
#[cfg(feature = "ws")]
pub use duplex_ws as ws;
