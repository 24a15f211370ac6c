//! The crate's one error type, and why an awaited ack will not come.
//!
//! The workspace's one error convention (the same in duplex-ws,
//! duplex-engineio, duplex-socketio, duplex-polling and duplex-stomp): one
//! `Error` per crate whose every value answers three questions.
//! [`Error::is_peer_fault`] says the remote end broke the protocol, which
//! ends the connection; [`Error::is_local`] (its negation) says the local
//! caller misused the API, which sends nothing; [`Error::answer`] gives what
//! the protocol answers a peer fault with, here the disconnect the
//! reference gives a packet it cannot use (the Engine.IO connection closes
//! with `"parse error"`), and `None` for a local fault. A refused
//! namespace is not an error: it is the application's CONNECT_ERROR
//! ([`crate::server::Server::reject`]).

use crate::PacketType;
use crate::server::DisconnectReason;

/// Everything that can go wrong in this crate.
///
/// Peer faults (a malformed packet, a protocol violation) end the Engine.IO
/// connection, as the reference server closes it on a parser error; local
/// faults ([`Error::is_local`]) are misuse of the API by the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- codec (peer) --------------------------------------------------
    /// An empty packet.
    #[error("empty packet")]
    EmptyPacket,
    /// The first character is not a packet type `0`..=`6`.
    #[error("unknown packet type {0:#04x}")]
    UnknownPacketType(u8),
    /// A binary packet whose attachment count is missing, not a number, or
    /// not followed by `-`.
    #[error("invalid attachment count")]
    InvalidAttachmentCount,
    /// More attachments announced than the configured limit.
    #[error("more than {limit} attachments")]
    TooManyAttachments {
        /// The configured limit.
        limit: usize,
    },
    /// Attachments larger in total than the configured limit.
    #[error("attachments larger than {limit} bytes in total")]
    AttachmentsTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A namespace that does not start with `/` (or a segment ending in `,`
    /// that is neither a namespace nor an ack id).
    #[error("invalid namespace")]
    InvalidNamespace,
    /// An acknowledgement id that is not a decimal number, or too large.
    #[error("invalid acknowledgement id")]
    InvalidAckId,
    /// The payload is not valid JSON.
    #[error("invalid JSON payload: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The payload is JSON of the wrong shape for the packet type (a
    /// non-array or empty event, a non-array ack, a non-object connect, a
    /// payload on a disconnect).
    #[error("invalid payload for {packet_type:?}: expected {expected}")]
    InvalidPayload {
        /// The packet's type.
        packet_type: PacketType,
        /// What the payload should have been.
        expected: &'static str,
    },
    /// An event with an ack id on a packet type that cannot carry one, or
    /// an ack without one.
    #[error("ack id missing or not allowed on {0:?}")]
    MisplacedAckId(PacketType),
    /// Text that is not valid UTF-8.
    #[error("packet text is not valid UTF-8")]
    InvalidUtf8,
    /// A binary message arrived while no binary packet awaited attachments.
    #[error("binary data without a binary packet announcing it")]
    UnexpectedBinary,
    /// A binary packet's attachments never all arrived: a text packet came
    /// first, or the connection ended.
    #[error("binary packet announced {expected} attachments but {received} arrived")]
    MissingAttachments {
        /// Announced.
        expected: usize,
        /// Received before the text packet or the end.
        received: usize,
    },
    /// A `{"_placeholder":true,"num":N}` whose `num` is not the index of an
    /// attachment.
    #[error("placeholder refers to no attachment")]
    InvalidPlaceholder,

    // ---- state (peer) --------------------------------------------------
    /// A CONNECT for a namespace that is already connected or connecting.
    #[error("namespace already connected or connecting")]
    DuplicateConnect,
    /// More namespaces on one connection than the configured limit.
    #[error("more than {limit} namespaces on one connection")]
    TooManyNamespaces {
        /// The configured limit.
        limit: usize,
    },

    // ---- local misuse --------------------------------------------------
    /// Sending in a namespace that is not connected, or a handshake packet
    /// that does not fit the namespace's state.
    #[error("namespace is not in a state that allows this packet")]
    InvalidState,
    /// Too many acknowledgements awaited at once.
    #[error("more than {limit} acknowledgements pending")]
    TooManyPendingAcks {
        /// The configured limit.
        limit: usize,
    },
    /// A value could not be serialized as JSON.
    #[error("cannot serialize payload: {0}")]
    Serialize(#[source] serde_json::Error),
}

impl Error {
    /// Whether the local caller misused the API, as opposed to the peer
    /// sending something wrong.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Error::InvalidState | Error::TooManyPendingAcks { .. } | Error::Serialize(_)
        )
    }

    /// Whether the peer is at fault (the connection should be closed).
    pub fn is_peer_fault(&self) -> bool {
        !self.is_local()
    }

    /// What a peer fault is answered with: the connection closes with
    /// [`DisconnectReason::ParseError`], as the reference closes it on a
    /// packet it cannot use. `None` for the caller's faults, which the peer
    /// never hears of.
    pub fn answer(&self) -> Option<DisconnectReason> {
        self.is_peer_fault().then_some(DisconnectReason::ParseError)
    }
}

/// Why an awaited ack will not come, on either side (the server reports
/// only [`AckFailure::Timeout`] and [`AckFailure::Disconnected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckFailure {
    /// Its deadline passed.
    Timeout,
    /// The socket disconnected first: the namespace was left, refused or
    /// disconnected, the connection closed, or reconnection gave up.
    Disconnected,
    /// Too many acks were already awaited on the namespace; the event was
    /// not sent (client only).
    TooManyPending,
    /// The namespace is not connected and its buffer is full; the event
    /// was not sent (client only).
    BufferFull,
}

/// Text that failed the shared UTF-8 check is [`Error::InvalidUtf8`].
impl From<duplex_core::InvalidUtf8> for Error {
    fn from(_: duplex_core::InvalidUtf8) -> Self {
        Error::InvalidUtf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_faults_close_with_parse_error_and_local_ones_answer_nothing() {
        let peer = Error::DuplicateConnect;
        assert!(peer.is_peer_fault() && !peer.is_local());
        assert_eq!(peer.answer(), Some(DisconnectReason::ParseError));
        let local = Error::InvalidState;
        assert!(local.is_local() && !local.is_peer_fault());
        assert_eq!(local.answer(), None);
    }
}
