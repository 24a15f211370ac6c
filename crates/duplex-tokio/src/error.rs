//! The adapter's one error type.
//!
//! Every fallible function of duplex-tokio returns [`Error`], whatever the
//! protocol: a WebSocket connection, a STOMP client, a Socket.IO emit or
//! ack, the Socket.IO client. The sans-IO crates' errors travel inside it
//! unchanged ([`Error::Protocol`], [`Error::Stomp`]...), so their
//! `is_peer_fault()` and `answer()` stay reachable, and
//! [`Error::is_peer_fault`] says in one place whether the remote end is to
//! blame. The old per-protocol names ([`crate::stomp::StompError`],
//! [`crate::socketio::SendError`], [`crate::socketio::AckError`],
//! [`crate::socketio::client::ClientError`]) are aliases of it. The enum is
//! `#[non_exhaustive]` so that the SockJS and SSE drivers' errors can join
//! it without breaking a caller's `match`.

use duplex_ws::{HandshakeError, ProtocolError};

/// Everything that can go wrong in the adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- transport -------------------------------------------------------
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A `ws://` or `wss://` URL that cannot be used.
    #[error("invalid WebSocket URL: {0}")]
    InvalidUrl(String),
    /// `wss://` without the `tls` feature, or a TLS failure.
    #[error("TLS: {0}")]
    Tls(String),
    /// A cluster-wide request failed: the transport (Redis) away, or a
    /// server silent until the timeout.
    #[cfg(feature = "cluster")]
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterFailure),
    /// The connection (or the task that owns it) is over: a STOMP client's
    /// connection closed, a Socket.IO socket disconnected, a Socket.IO
    /// client's manager ended ([`crate::socketio::client::Manager::close`],
    /// or reconnection gave up).
    #[error("connection closed")]
    Closed,
    /// The peer did not answer in time (a STOMP `CONNECTED` or receipt, a
    /// Socket.IO ack).
    #[error("timed out")]
    Timeout,

    // ---- WebSocket -------------------------------------------------------
    /// The opening handshake was refused (by us, or by the server).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The handshake did not finish within the handshake timeout (the
    /// Socket.IO client's WebSocket did not open in time).
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

    // ---- STOMP -----------------------------------------------------------
    /// The STOMP session refused a local command, or the peer broke the
    /// protocol ([`duplex_stomp::Error::is_peer_fault`] tells which).
    #[cfg(feature = "stomp")]
    #[error(transparent)]
    Stomp(#[from] duplex_stomp::Error),
    /// The STOMP server answered with an `ERROR` frame.
    #[cfg(feature = "stomp")]
    #[error("server error: {}", .0.header("message").unwrap_or(""))]
    Refused(Box<duplex_stomp::Frame>),

    // ---- Socket.IO -------------------------------------------------------
    /// A send queue is full (a session's outgoing queue because the client
    /// reads too slowly, the Socket.IO client's command queue
    /// ([`crate::socketio::client::COMMAND_QUEUE`]) or a namespace's buffer):
    /// nothing was queued.
    #[error("the send queue is full")]
    QueueFull,
    /// A Socket.IO event could not be encoded (an invalid namespace, a value
    /// that does not serialize).
    #[error("cannot encode the packet")]
    Encode,
    /// Too many Socket.IO acks awaited on this socket; the event was not
    /// sent.
    #[error("too many acknowledgements pending")]
    TooManyPendingAcks,
    /// The socket disconnected before the awaited ack arrived.
    #[error("socket disconnected before acknowledging")]
    Disconnected,
    /// A Socket.IO event's or ack's arguments do not fit the type asked
    /// for (a handler's [`crate::socketio::Data`], an awaited ack's type).
    #[cfg(feature = "socketio")]
    #[error("the arguments do not fit: {0}")]
    InvalidPayload(#[source] serde_json::Error),
    /// A Socket.IO handler takes [`crate::socketio::State`] of a type
    /// never given to the builder (named here).
    #[error("no state of type {0} was given to the Socket.IO builder")]
    MissingState(&'static str),
    /// A Socket.IO handler takes an [`crate::socketio::Extension`] the
    /// socket does not have (its type named here).
    #[error("the socket has no extension of type {0}")]
    MissingExtension(&'static str),
    /// A Socket.IO handler takes what its kind of handler does not have
    /// (a socket in middleware, a disconnect reason in an event handler).
    #[error("{0} cannot be extracted here")]
    NotExtractable(&'static str),

    // ---- HTTP (the Socket.IO client's polling transport) ------------------
    /// A request to the server could not be made from the configured URL.
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    /// An HTTP request failed in transit.
    #[cfg(feature = "socketio")]
    #[error("HTTP request failed: {0}")]
    Http(#[from] hyper_util::client::legacy::Error),
    /// An HTTP response's body could not be read.
    #[cfg(feature = "socketio")]
    #[error("reading the response failed: {0}")]
    Body(#[from] hyper::Error),
    /// The server answered a request with an error status.
    #[error("the server answered {0}")]
    Status(http::StatusCode),

    // ---- WebSockets over HTTP/2 (RFC 8441, the client) --------------------
    /// The server cannot carry WebSockets over HTTP/2: it did not agree to
    /// `h2` in ALPN, or its SETTINGS do not enable extended CONNECT.
    #[error("no WebSockets over HTTP/2 at this server: {0}")]
    Http2Unavailable(&'static str),
    /// The HTTP/2 connection or one of its streams failed.
    #[error("HTTP/2: {0}")]
    Http2(#[source] hyper::Error),
    /// The server sent a WebSocket text message that is not UTF-8.
    #[error("the server sent text that is not UTF-8")]
    InvalidText,

    // ---- HTTP (request bodies, [`crate::HttpLimits::read_body`]) ----------
    /// A client's request body is longer than the route takes
    /// (answer: 413).
    #[error("request body over {limit} bytes")]
    BodyTooLarge {
        /// The most bytes the route takes.
        limit: usize,
    },
    /// A client's request body did not arrive within the body read
    /// timeout (answer: 408, and close the connection).
    #[error("request body not read within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// The connection failed while a request body was read (answer: 400).
    #[error("reading the request body failed: {0}")]
    BodyRead(Box<dyn std::error::Error + Send + Sync>),
}

impl From<duplex_ws::Error> for Error {
    fn from(e: duplex_ws::Error) -> Self {
        match e {
            duplex_ws::Error::Protocol(p) => Self::Protocol(p),
            other => Self::Local(other),
        }
    }
}

#[cfg(feature = "socketio")]
impl From<duplex_socketio::AckFailure> for Error {
    fn from(failure: duplex_socketio::AckFailure) -> Self {
        match failure {
            duplex_socketio::AckFailure::Timeout => Self::Timeout,
            duplex_socketio::AckFailure::Disconnected => Self::Disconnected,
            duplex_socketio::AckFailure::TooManyPending => Self::TooManyPendingAcks,
            duplex_socketio::AckFailure::BufferFull => Self::QueueFull,
        }
    }
}

impl Error {
    /// Whether the remote end is at fault (it broke a protocol, refused a
    /// handshake or a frame, answered with an error status or bad text),
    /// rather than this side or the network between.
    pub fn is_peer_fault(&self) -> bool {
        match self {
            Self::Handshake(_)
            | Self::Protocol(_)
            | Self::Status(_)
            | Self::InvalidText
            | Self::BodyTooLarge { .. }
            | Self::BodyTimeout(_) => true,
            #[cfg(feature = "socketio")]
            Self::InvalidPayload(_) => true,
            #[cfg(feature = "stomp")]
            Self::Refused(_) => true,
            #[cfg(feature = "stomp")]
            Self::Stomp(e) => e.is_peer_fault(),
            _ => false,
        }
    }
}

impl Error {
    /// The HTTP status a server answers a client's fault with: 413 for
    /// [`Error::BodyTooLarge`], 408 for [`Error::BodyTimeout`], 400 for
    /// [`Error::BodyRead`]; `None` for everything else.
    pub fn http_status(&self) -> Option<http::StatusCode> {
        match self {
            Self::BodyTooLarge { .. } => Some(http::StatusCode::PAYLOAD_TOO_LARGE),
            Self::BodyTimeout(_) => Some(http::StatusCode::REQUEST_TIMEOUT),
            Self::BodyRead(_) => Some(http::StatusCode::BAD_REQUEST),
            _ => None,
        }
    }
}

/// Why a cluster-wide request failed (feature `cluster`).
#[cfg(feature = "cluster")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterFailure {
    /// The cluster's transport (the Redis connection) is down; local
    /// delivery goes on meanwhile.
    #[error("the cluster transport (Redis) is unavailable")]
    Unavailable,
    /// The server's task ended before the request was answered.
    #[error("the server is gone")]
    ServerGone,
    /// The cluster machine refused the request, or the other servers did
    /// not all answer in time (its text is then Node's).
    #[error(transparent)]
    Request(#[from] duplex_socketio::cluster::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_faults_are_told_apart_from_local_and_network_ones() {
        assert!(
            Error::from(duplex_ws::Error::Protocol(ProtocolError::InvalidUtf8)).is_peer_fault()
        );
        assert!(!Error::from(duplex_ws::Error::Closed).is_peer_fault());
        #[cfg(feature = "stomp")]
        {
            assert!(Error::Stomp(duplex_stomp::Error::UnknownCommand).is_peer_fault());
            assert!(!Error::Stomp(duplex_stomp::Error::NotConnected).is_peer_fault());
        }
        assert!(Error::Status(http::StatusCode::BAD_REQUEST).is_peer_fault());
        assert!(!Error::QueueFull.is_peer_fault());
        assert!(!Error::Io(std::io::ErrorKind::BrokenPipe.into()).is_peer_fault());
    }
}
