//! The crate's errors: what the peer did wrong, separate from what the local
//! caller did wrong.
//!
//! The workspace's one error convention (the same in duplex-ws,
//! duplex-engineio, duplex-socketio, duplex-polling and duplex-stomp): one
//! `Error` per crate whose every value answers three questions.
//! [`Error::is_peer_fault`] says the remote end broke the protocol, which
//! ends the connection; [`Error::is_local`] (its negation) says the local
//! caller misused the API, which sends nothing and leaves the connection as
//! it was; [`Error::answer`] gives what the protocol answers a peer fault
//! with, here the close code of the close frame, and `None` for a local
//! fault. In this crate the peer's faults also have a type of their own,
//! [`ProtocolError`], wrapped by [`Error::Protocol`]; the opening
//! handshake's refusals are [`crate::HandshakeError`], whose answer is an
//! HTTP status.

use crate::close::CloseCode;

/// A rule of RFC 6455 the peer broke. Each maps to the close code the
/// connection sends before it ends ([`ProtocolError::close_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An opcode from the reserved ranges 0x3-0x7 or 0xB-0xF.
    #[error("reserved opcode {0:#x}")]
    ReservedOpCode(u8),
    /// RSV1-3 set without an extension that defines them.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// A client frame without a mask.
    #[error("client frame is not masked")]
    UnmaskedClientFrame,
    /// A server frame with a mask.
    #[error("server frame is masked")]
    MaskedServerFrame,
    /// A control frame with more than 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooLong,
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A 64-bit length with the most significant bit set.
    #[error("frame length has the most significant bit set")]
    InvalidLength,
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is in progress.
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A text message or close reason that is not UTF-8.
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A permessage-deflate message that does not inflate.
    #[error("invalid permessage-deflate data")]
    InvalidCompressedData,
    /// A close payload of one byte, or a status code that may not be sent.
    #[error("invalid close frame payload or status code")]
    InvalidCloseFrame,
    /// A frame longer than the configured frame limit.
    #[error("frame of {len} bytes is over the limit of {limit}")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message longer than the configured message limit.
    #[error("message of at least {len} bytes is over the limit of {limit}")]
    MessageTooLarge {
        /// The length reached so far.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code this error is answered with.
    pub fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer broke the protocol; the connection is closing with
    /// `close_code()`.
    #[error("peer protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The local caller sent data after the connection started closing.
    #[error("the connection is closing or closed")]
    Closed,
    /// The local caller asked to send a close code that may not go on the
    /// wire (1005, 1006, 1015, or outside the registered ranges).
    #[error("close code {0} may not be sent")]
    UnsendableCloseCode(CloseCode),
    /// The local caller gave a control frame payload over 125 bytes, or a
    /// close reason over 123.
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
    /// The local caller broke fragmentation rules with the frame-level API
    /// (a continuation with no message started, or a new message before the
    /// last one finished).
    #[error("frame out of sequence: {0}")]
    FrameSequence(&'static str),
}

impl Error {
    /// Whether the peer broke the protocol (the connection closes with
    /// [`Error::answer`]), as opposed to the local caller.
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Self::Protocol(_))
    }

    /// Whether the local caller misused the API: nothing was sent and the
    /// connection is as it was.
    pub fn is_local(&self) -> bool {
        !self.is_peer_fault()
    }

    /// The close code the connection answers a peer fault with; `None` for
    /// the caller's faults, which the peer never hears of.
    pub fn answer(&self) -> Option<CloseCode> {
        match self {
            Self::Protocol(p) => Some(p.close_code()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_faults_carry_their_close_code_and_local_ones_none() {
        let peer = Error::from(ProtocolError::MessageTooLarge { len: 9, limit: 8 });
        assert!(peer.is_peer_fault() && !peer.is_local());
        assert_eq!(peer.answer(), Some(CloseCode::MESSAGE_TOO_BIG));
        let peer = Error::from(ProtocolError::InvalidUtf8);
        assert_eq!(peer.answer(), Some(CloseCode::INVALID_PAYLOAD));
        let local = Error::Closed;
        assert!(local.is_local() && !local.is_peer_fault());
        assert_eq!(local.answer(), None);
    }
}
