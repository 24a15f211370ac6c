//! The adapter's error type.

use duplex_ws::{HandshakeError, ProtocolError};

/// Everything that can go wrong in the adapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The opening handshake was refused (by us, or by the server).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The handshake did not finish within the handshake timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The transport closed before the handshake finished.
    #[error("connection closed during the handshake")]
    HandshakeEof,
    /// The peer broke the WebSocket protocol; the connection was closed with
    /// the matching close code.
    #[error("peer protocol violation: {0}")]
    Protocol(ProtocolError),
    /// A local misuse of the connection (sending after close, and so on).
    #[error(transparent)]
    Local(duplex_ws::Error),
    /// A `ws://` or `wss://` URL that cannot be used.
    #[error("invalid WebSocket URL: {0}")]
    InvalidUrl(String),
    /// `wss://` without the `tls` feature, or a TLS failure.
    #[error("TLS: {0}")]
    Tls(String),
}

impl From<duplex_ws::Error> for Error {
    fn from(e: duplex_ws::Error) -> Self {
        match e {
            duplex_ws::Error::Protocol(p) => Self::Protocol(p),
            other => Self::Local(other),
        }
    }
}
