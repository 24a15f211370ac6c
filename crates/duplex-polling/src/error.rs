//! The crate's one error type, and why a session ended.
//!
//! The workspace's one error convention (the same in duplex-ws,
//! duplex-engineio, duplex-socketio, duplex-polling and duplex-stomp): one
//! `Error` per crate whose every value answers three questions.
//! [`Error::is_peer_fault`] says the client sent a request the protocol
//! does not allow; [`Error::is_local`] (its negation) says the application
//! misused a command, which sends nothing; [`Error::answer`] gives what the
//! dialect answers a peer fault with, here an HTTP status, and `None` for
//! a local fault.

use http::StatusCode;

/// Everything that can go wrong in this crate.
///
/// Peer faults (the client sent a request the protocol does not allow) are
/// answered by the machines themselves with the dialect's HTTP status or
/// close frame; they appear here so that the answers have names and tests.
/// Local faults are the application's misuse of a command, returned from
/// that command. [`Error::is_local`] tells them apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the peer's faults ---------------------------------------------
    /// An Engine.IO query, payload or packet that does not parse.
    #[error("malformed Engine.IO request: {0}")]
    EngineIo(#[from] duplex_engineio::Error),
    /// The request names a session that does not exist (any more).
    #[error("unknown session id")]
    UnknownSid,
    /// An Engine.IO handshake (no `sid`) with a method other than GET.
    #[error("handshake with a method other than GET")]
    BadHandshakeMethod,
    /// The request's transport is not the one the session uses (a polling
    /// request after the upgrade to WebSocket, say).
    #[error("request transport does not match the session's")]
    TransportMismatch,
    /// A second receiving request while one is still open.
    #[error("another receiving request is still open")]
    ConcurrentReceive,
    /// A request body larger than the configured limit (413).
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A SockJS send without a payload (`Payload expected.`).
    #[error("payload expected")]
    PayloadExpected,
    /// A SockJS payload that is not JSON (`Broken JSON encoding.`).
    #[error("broken JSON encoding")]
    BrokenJson,
    /// A SockJS htmlfile or jsonp request without `c=`.
    #[error("\"callback\" parameter required")]
    MissingCallback,
    /// A SockJS callback with characters outside `[a-zA-Z0-9_.-]`.
    #[error("invalid \"callback\" parameter")]
    InvalidCallback,
    /// No such resource under the mount point (404).
    #[error("not found")]
    NotFound,
    /// The resource exists but not for this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A plain request to an endpoint that only speaks WebSocket (400).
    #[error("not a valid websocket request")]
    NotWebSocket,
    /// An `Origin` outside the configured allow-list (403).
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// The configured number of sessions is reached (503).
    #[error("too many sessions")]
    TooManySessions,

    // ---- local misuse ----------------------------------------------------
    /// The application named a session that is closed or never existed.
    #[error("no open session with this id")]
    NoSuchSession,
    /// The session's send queue is full (with [`crate::OverflowPolicy::Reject`]).
    #[error("send queue full")]
    QueueFull,
    /// The dialect carries text only (SockJS sessions, Server-Sent Events).
    #[error("this transport carries text messages only")]
    BinaryNotSupported,
    /// A Server-Sent Events event name containing a line break.
    #[error("event name contains a line break")]
    InvalidEventName,
}

impl Error {
    /// Whether the local caller misused the API (as opposed to the peer
    /// sending something wrong).
    pub fn is_local(&self) -> bool {
        match self {
            Error::EngineIo(e) => e.is_local(),
            Error::NoSuchSession
            | Error::QueueFull
            | Error::BinaryNotSupported
            | Error::InvalidEventName => true,
            _ => false,
        }
    }

    /// Whether the peer is at fault: the request is answered with
    /// [`Error::answer`].
    pub fn is_peer_fault(&self) -> bool {
        !self.is_local()
    }

    /// The HTTP status a peer fault is answered with (sockjs-node's 500 for
    /// a SockJS body or callback it cannot use, Engine.IO's 400 or 403);
    /// `None` for the caller's faults, which the peer never hears of.
    pub fn answer(&self) -> Option<StatusCode> {
        Some(match self {
            Error::EngineIo(e) => {
                return e.answer().map(|code| {
                    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
                });
            }
            Error::UnknownSid
            | Error::BadHandshakeMethod
            | Error::TransportMismatch
            | Error::ConcurrentReceive
            | Error::NotWebSocket => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::PayloadExpected
            | Error::BrokenJson
            | Error::MissingCallback
            | Error::InvalidCallback => StatusCode::INTERNAL_SERVER_ERROR,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::OriginNotAllowed => StatusCode::FORBIDDEN,
            Error::TooManySessions => StatusCode::SERVICE_UNAVAILABLE,
            Error::NoSuchSession
            | Error::QueueFull
            | Error::BinaryNotSupported
            | Error::InvalidEventName => return None,
        })
    }
}

/// Why a session ended, as reported in [`crate::Event::Closed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application closed it.
    Application,
    /// The client closed it: an Engine.IO `close` packet, or the WebSocket
    /// carrying the session closed.
    Client,
    /// The transport failed: an aborted long-poll (Engine.IO), a second
    /// concurrent poll, a body the transport cannot carry.
    TransportError,
    /// The client sent something that does not parse.
    ParseError,
    /// No answer to a heartbeat in time (Engine.IO `pingTimeout`).
    PingTimeout,
    /// No receiving request arrived within the disconnect delay (SockJS, SSE).
    Expired,
    /// A receiving request was aborted by the client (SockJS answers later
    /// requests with `c[1002,"Connection interrupted"]`).
    Interrupted,
    /// The send queue overflowed with [`crate::OverflowPolicy::CloseSession`].
    QueueOverflow,
    /// A request body above the configured limit (413).
    PayloadTooLarge,
    /// A Server-Sent Events client resumed from an event that is no longer
    /// in the replay buffer, so it cannot be served without a gap.
    ReplayGap,
}

impl CloseReason {
    /// A short name; the Engine.IO reference server's reason where one
    /// exists (`"transport close"`, `"ping timeout"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Application => "forced close",
            CloseReason::Client => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::ParseError => "parse error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::Expired => "expired",
            CloseReason::Interrupted => "connection interrupted",
            CloseReason::QueueOverflow => "queue overflow",
            CloseReason::PayloadTooLarge => "payload too large",
            CloseReason::ReplayGap => "replay gap",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_faults_carry_a_status_and_local_ones_none() {
        let peer = Error::TooManySessions;
        assert!(peer.is_peer_fault() && !peer.is_local());
        assert_eq!(peer.answer(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(
            Error::PayloadTooLarge { limit: 1 }.answer(),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
        assert_eq!(
            Error::EngineIo(duplex_engineio::Error::UnknownTransport).answer(),
            Some(StatusCode::BAD_REQUEST)
        );
        let local = Error::EngineIo(duplex_engineio::Error::QueueFull);
        assert!(local.is_local() && local.answer().is_none());
        assert_eq!(Error::QueueFull.answer(), None);
    }
}
