//! The crate's one error type.
//!
//! The workspace's one error convention (the same in duplex-ws,
//! duplex-engineio, duplex-socketio, duplex-polling and duplex-stomp): one
//! `Error` per crate whose every value answers three questions.
//! [`Error::is_peer_fault`] says the remote end broke the protocol, which
//! ends the connection; [`Error::is_local`] (its negation) says the local
//! caller misused the API, which sends nothing; [`Error::answer`] gives what
//! the protocol answers a peer fault with, here the `message` header of the
//! `ERROR` frame a server sends before it closes, and `None` for a local
//! fault.

use crate::frame::Command;

/// Everything that can go wrong in this crate.
///
/// Variants are grouped by whose fault they are: [`Error::is_peer_fault`]
/// says whether the remote end broke the protocol (which ends the connection,
/// with an `ERROR` frame when we are the server), or whether the local caller
/// misused the API (nothing was sent, the connection is unaffected unless the
/// variant says otherwise). For a relay the upstream broker is a remote peer
/// too: its failures count as peer faults.
///
/// [`Error::error_message`] and the `Display` text are what a server puts in
/// the `message` header and the body of the `ERROR` frame it answers with
/// ([`crate::ServerSession::abort`]), so no variant carries text that a
/// client must not see (such as a broker's address).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- peer faults: framing ----
    /// A header line (bytes before its LF) is longer than the configured limit.
    #[error("header line longer than {limit} bytes")]
    HeaderLineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// A frame has more header lines than the configured limit.
    #[error("more than {limit} headers in one frame")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// A frame body is larger than the configured limit.
    #[error("frame body larger than {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A whole frame (command, headers, body and NUL) is larger than the
    /// configured limit.
    #[error("frame larger than {limit} bytes")]
    FrameTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The command line is not one of the fifteen STOMP commands.
    #[error("unknown command")]
    UnknownCommand,
    /// A header line has no colon or an empty name.
    #[error("malformed header line")]
    MalformedHeader,
    /// A backslash escape that the negotiated version does not define
    /// (such as `\t`, or `\r` in STOMP 1.1).
    #[error("undefined escape sequence in a header")]
    InvalidEscape,
    /// A command or header is not valid UTF-8.
    #[error("header is not valid UTF-8")]
    InvalidUtf8,
    /// The `content-length` header is not a decimal octet count.
    #[error("invalid content-length header")]
    InvalidContentLength,
    /// The octet after a `content-length` body is not the NUL that ends a frame.
    #[error("frame body not followed by NUL")]
    MissingNul,
    /// A frame other than `SEND`, `MESSAGE` or `ERROR` carries a body.
    #[error("{command} frames must not have a body")]
    BodyNotAllowed {
        /// The command of the offending frame.
        command: Command,
    },

    // ---- peer faults: protocol ----
    /// A frame lacks a header that its command requires.
    #[error("{command} frame lacks the required {header} header")]
    MissingHeader {
        /// The command of the frame.
        command: Command,
        /// The missing header.
        header: &'static str,
    },
    /// A header holds a value its command does not allow (an unknown `ack`
    /// mode, a malformed `heart-beat`).
    #[error("invalid {header} header")]
    InvalidHeader {
        /// The header at fault.
        header: &'static str,
    },
    /// A frame that is not allowed in the current state or from this role
    /// (a `SEND` before `CONNECT`, a `MESSAGE` from a client).
    #[error("unexpected {command} frame")]
    UnexpectedFrame {
        /// The command of the frame.
        command: Command,
    },
    /// Client and server share no protocol version.
    #[error("no common protocol version")]
    NoCommonVersion,
    /// The server's authentication hook refused the credentials.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The peer sent nothing, not even a heart-beat, for longer than the
    /// negotiated interval plus the tolerance.
    #[error("peer silent for longer than the heart-beat interval")]
    HeartBeatTimeout,
    /// The `CONNECT`/`CONNECTED` exchange did not finish within the
    /// configured time.
    #[error("connection not established within the connect timeout")]
    ConnectTimeout,
    /// The server sent an `ERROR` frame.
    #[error("server error: {message}")]
    ServerError {
        /// The `message` header of the `ERROR` frame (empty when absent).
        message: String,
    },
    /// A `SUBSCRIBE` reused an identifier that is still subscribed.
    #[error("subscription id already in use")]
    DuplicateSubscription,
    /// An `UNSUBSCRIBE` named no existing subscription.
    #[error("unknown subscription")]
    UnknownSubscription,
    /// A `BEGIN` reused an identifier that is still open.
    #[error("transaction id already in use")]
    DuplicateTransaction,
    /// A frame named a transaction that is not open.
    #[error("unknown transaction")]
    UnknownTransaction,
    /// A broker or session limit (subscriptions, transactions, frames per
    /// transaction, queue depth) was reached by the peer.
    #[error("limit reached: {what}")]
    LimitReached {
        /// Which limit.
        what: &'static str,
    },

    /// The client sent more frames than the relay holds while the upstream
    /// broker has not yet answered `CONNECT`.
    #[error("more than {limit} frames before the broker answered")]
    TooManyPendingFrames {
        /// The configured bound ([`crate::relay::RelayConfig::max_pending_frames`]).
        limit: usize,
    },
    /// The client read its messages too slowly: the frames waiting for it
    /// reached the server's bound.
    #[error("the client did not read its messages fast enough")]
    SlowConsumer,
    /// A client frame that the relay's upstream session cannot carry (an
    /// unknown subscription or transaction, which the broker would refuse
    /// too).
    #[error("frame cannot be relayed: {cause}")]
    NotRelayable {
        /// Why the upstream session refused it.
        cause: Box<Error>,
    },

    // ---- the relay's upstream broker (a remote peer too) ----
    /// The relay could not reach the upstream broker. Deliberately says
    /// nothing of the broker's address: this text goes to clients.
    #[error("the upstream broker cannot be reached")]
    UpstreamUnavailable,
    /// The upstream broker's connection ended while the client's was open.
    #[error("the upstream broker closed the connection")]
    UpstreamClosed,
    /// The upstream session failed (malformed input, a silent broker, no
    /// `CONNECTED` in time).
    #[error("the upstream broker failed: {cause}")]
    UpstreamFailed {
        /// What went wrong on the upstream hop.
        cause: Box<Error>,
    },

    // ---- local decisions ----
    /// The server is shutting down and ends every connection.
    #[error("the server is shutting down")]
    ShuttingDown,

    // ---- local misuse ----
    /// The command needs a connected session.
    #[error("session is not connected")]
    NotConnected,
    /// The session has ended; nothing more can be sent.
    #[error("session is closed")]
    Closed,
    /// A header cannot be written in the negotiated version (a line feed in a
    /// STOMP 1.0 value, a colon in a `CONNECT` header name, a carriage return
    /// where it cannot be escaped).
    #[error("header cannot be encoded: {reason}")]
    Unencodable {
        /// What made it unencodable.
        reason: &'static str,
    },
    /// The command does not exist in the negotiated version (`NACK` in 1.0).
    #[error("{what} is not available in the negotiated STOMP version")]
    UnsupportedByVersion {
        /// The feature.
        what: &'static str,
    },
    /// The caller named a subscription this session does not have.
    #[error("no such local subscription")]
    NoSuchSubscription,
    /// The caller named a transaction this session has not begun.
    #[error("no such local transaction")]
    NoSuchTransaction,
    /// A local frame of the wrong kind for this role (a client sending
    /// `MESSAGE`, a server sending `SEND`).
    #[error("{command} cannot be sent by this side")]
    WrongRole {
        /// The command.
        command: Command,
    },
    /// Too many receipts are outstanding.
    #[error("too many outstanding receipts")]
    TooManyReceipts,
    /// A frame the caller asked to send is not valid STOMP (a `SUBSCRIBE`
    /// without `id`, an `ACK` for a message that needs none).
    #[error("invalid frame: {reason}")]
    InvalidLocalFrame {
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The pattern of the caller's own faults (all but [`Error::ShuttingDown`],
/// the one local error the peer is told of), written once for
/// [`Error::is_peer_fault`] and [`Error::error_message`]; as a pattern, the
/// `match` there still checks that every variant is placed.
macro_rules! caller_faults {
    () => {
        Error::NotConnected
            | Error::Closed
            | Error::Unencodable { .. }
            | Error::UnsupportedByVersion { .. }
            | Error::NoSuchSubscription
            | Error::NoSuchTransaction
            | Error::WrongRole { .. }
            | Error::TooManyReceipts
            | Error::InvalidLocalFrame { .. }
    };
}

impl Error {
    /// Whether the remote peer caused this error (as opposed to the local
    /// caller). Peer faults end the connection.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, caller_faults!() | Error::ShuttingDown)
    }

    /// Whether the local caller misused the API: nothing was sent, and the
    /// connection is unaffected unless the variant says otherwise.
    pub fn is_local(&self) -> bool {
        !self.is_peer_fault()
    }

    /// What a server answers a peer fault with: the `message` header of the
    /// `ERROR` frame ([`Error::error_message`]; the frame's body is the
    /// `Display` text). `None` for the caller's faults and for
    /// [`Error::ShuttingDown`], which the peer hears of as the server's own
    /// decision through [`Error::error_message`] instead.
    pub fn answer(&self) -> Option<&'static str> {
        self.is_peer_fault().then(|| self.error_message())
    }

    /// A short text for the `message` header of an `ERROR` frame: ASCII, no
    /// colon, backslash or line break, so it encodes the same in every
    /// version (it may be sent before a version is negotiated).
    pub fn error_message(&self) -> &'static str {
        match self {
            Error::HeaderLineTooLong { .. } => "header line too long",
            Error::TooManyHeaders { .. } => "too many headers",
            Error::BodyTooLarge { .. } => "frame body too large",
            Error::FrameTooLarge { .. } => "frame too large",
            Error::UnknownCommand => "unknown command",
            Error::MalformedHeader => "malformed header",
            Error::InvalidEscape => "undefined escape sequence",
            Error::InvalidUtf8 => "header is not valid UTF-8",
            Error::InvalidContentLength => "invalid content-length",
            Error::MissingNul => "frame not terminated by NUL",
            Error::BodyNotAllowed { .. } => "frame must not have a body",
            Error::MissingHeader { .. } => "missing required header",
            Error::InvalidHeader { .. } => "invalid header value",
            Error::UnexpectedFrame { .. } => "unexpected frame",
            Error::NoCommonVersion => "no common protocol version",
            Error::AuthenticationFailed => "authentication failed",
            Error::HeartBeatTimeout => "heart-beat timeout",
            Error::ConnectTimeout => "connect timeout",
            Error::ServerError { .. } => "server error",
            Error::DuplicateSubscription => "subscription id already in use",
            Error::UnknownSubscription => "unknown subscription",
            Error::DuplicateTransaction => "transaction id already in use",
            Error::UnknownTransaction => "unknown transaction",
            Error::LimitReached { .. } => "limit reached",
            Error::TooManyPendingFrames { .. } => "too many frames",
            Error::SlowConsumer => "slow consumer",
            Error::NotRelayable { .. } => "frame not relayable",
            Error::UpstreamUnavailable => "broker unavailable",
            Error::UpstreamClosed => "broker connection lost",
            Error::UpstreamFailed { .. } => "broker failed",
            Error::ShuttingDown => "server shutting down",
            caller_faults!() => "internal error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_faults_carry_an_error_message_and_local_ones_none() {
        let peer = Error::BodyTooLarge { limit: 8 };
        assert!(peer.is_peer_fault() && !peer.is_local());
        assert_eq!(peer.answer(), Some("frame body too large"));
        let local = Error::NotConnected;
        assert!(local.is_local() && !local.is_peer_fault());
        assert_eq!(local.answer(), None);
    }
}
