//! The crate's one error type.
//!
//! The workspace's one error convention (the same in duplex-ws,
//! duplex-engineio, duplex-socketio, duplex-polling and duplex-stomp): one
//! `Error` per crate whose every value answers three questions.
//! [`Error::is_peer_fault`] says the remote end broke the protocol, which
//! ends the session; [`Error::is_local`] (its negation) says the local
//! caller misused the API, which sends nothing; [`Error::answer`] gives what
//! the protocol answers a peer fault with, here the reference server's
//! error code with its HTTP status and JSON body (a request over polling
//! gets that answer, a WebSocket transport is closed), and `None` for a
//! local fault.

/// Everything that can go wrong in this crate.
///
/// Most variants are the peer's fault (a malformed packet or payload, a bad
/// handshake query, a broken heartbeat): the session must end, an HTTP
/// request gets `400 Bad Request`. [`Error::is_local`] picks out the few that
/// are the local caller's misuse instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- packets -------------------------------------------------------
    /// A packet with no bytes at all (not even its type).
    #[error("empty packet")]
    EmptyPacket,
    /// The packet type is not one of `0`..=`6`.
    #[error("unknown packet type {0:#04x}")]
    UnknownPacketType(u8),
    /// A binary packet whose type is not `message` (only messages carry binary).
    #[error("binary packet of type {0} is not a message")]
    BinaryNotMessage(u8),
    /// Text that is not valid UTF-8.
    #[error("packet text is not valid UTF-8")]
    InvalidUtf8,
    /// A `b`-prefixed packet whose data is not valid base64.
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,

    // ---- payloads ------------------------------------------------------
    /// A v3 length prefix that is not a decimal number followed by its
    /// separator (`:` in string payloads, `0xff` in binary ones), or is too long.
    #[error("invalid length prefix in a payload")]
    InvalidLength,
    /// The payload ends before the packet its length announced.
    #[error("payload ends inside a packet")]
    Truncated,
    /// A v3 string payload length that ends in the middle of a surrogate pair.
    #[error("a payload length ends inside a character")]
    LengthSplitsCharacter,
    /// A v3 binary payload whose packet header is neither 0 (string) nor 1 (binary).
    #[error("binary payload header {0:#04x} is neither 0 (string) nor 1 (binary)")]
    InvalidPayloadHeader(u8),
    /// A payload (or an announced packet length) above `max_payload`.
    #[error("payload larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// More packets in one payload than `max_packets`.
    #[error("more than {limit} packets in one payload")]
    TooManyPackets {
        /// The configured limit.
        limit: usize,
    },
    /// A payload with no packets where one is required (an empty body).
    #[error("empty payload")]
    EmptyPayload,
    /// A binary (`application/octet-stream`) polling body in protocol v4,
    /// where binary travels base64-encoded inside text payloads.
    #[error("binary polling body in Engine.IO v4")]
    BinaryBodyInV4,
    /// A JSONP POST body without exactly one `d` field.
    #[error("JSONP body has no single `d` field")]
    InvalidJsonpBody,

    // ---- open packet ---------------------------------------------------
    /// The `open` packet's JSON does not parse as the handshake data.
    #[error("invalid open packet: {0}")]
    InvalidOpenPacket(#[source] serde_json::Error),

    // ---- handshake query -----------------------------------------------
    /// The query has no `EIO` parameter.
    #[error("missing EIO query parameter")]
    MissingProtocolVersion,
    /// `EIO` is neither `3` nor `4`, or the server does not accept it.
    #[error("unsupported Engine.IO protocol version")]
    UnsupportedProtocolVersion,
    /// The query has no `transport` parameter.
    #[error("missing transport query parameter")]
    MissingTransport,
    /// `transport` is neither `polling` nor `websocket`.
    #[error("unknown transport")]
    UnknownTransport,
    /// A reserved parameter (`EIO`, `transport`, `sid`, `b64`, `j`) appears twice.
    #[error("query parameter `{0}` appears more than once")]
    DuplicateQueryParameter(&'static str),
    /// A percent-escape that does not decode to UTF-8.
    #[error("query parameter is not valid UTF-8 after percent-decoding")]
    InvalidQueryEncoding,

    // ---- session -------------------------------------------------------
    /// A `ping` from the client in v4 or a `pong` in v3: the heartbeat runs
    /// the other way round in each version.
    #[error("heartbeat packet in the wrong direction")]
    InvalidHeartbeatDirection,

    // ---- local misuse --------------------------------------------------
    /// `receive` was called after `finish` on a payload decoder.
    #[error("payload decoder used after finish")]
    ReceiveAfterFinish,
    /// A packet that this encoding cannot carry (a binary `open`, say).
    #[error("packet cannot be encoded this way")]
    Unencodable,
    /// The application named a server session that is closed or never
    /// existed.
    #[error("no open session with this id")]
    NoSuchSession,
    /// The server session's send queue is full.
    #[error("send queue full")]
    QueueFull,
}

impl Error {
    /// Whether the local caller misused the API (as opposed to the peer
    /// sending something wrong).
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Error::ReceiveAfterFinish
                | Error::Unencodable
                | Error::NoSuchSession
                | Error::QueueFull
        )
    }

    /// Whether the peer is at fault: the session ends, a request is
    /// answered with [`Error::answer`].
    pub fn is_peer_fault(&self) -> bool {
        !self.is_local()
    }

    /// What the server answers a peer fault with (the HTTP status and JSON
    /// body of [`ServerErrorCode`]); `None` for the caller's faults, which
    /// the peer never hears of.
    pub fn answer(&self) -> Option<ServerErrorCode> {
        self.is_peer_fault().then(|| self.server_error_code())
    }
}

duplex_core::id_enum! {
    /// The error codes of the reference server's HTTP error responses
    /// (`400 {"code":3,"message":"Bad request"}`), which clients report to
    /// their users.
    pub enum ServerErrorCode {
        /// 0: `transport` missing or unknown.
        UnknownTransport = 0,
        /// 1: `sid` names no session.
        UnknownSid = 1,
        /// 2: a handshake (no `sid`) with a method other than GET.
        BadHandshakeMethod = 2,
        /// 3: anything else wrong with the request.
        BadRequest = 3,
        /// 4: refused by the application.
        Forbidden = 4,
        /// 5: `EIO` missing or not supported.
        UnsupportedProtocolVersion = 5,
    }
}

impl ServerErrorCode {
    /// The numeric code (its [`ServerErrorCode::id`]).
    pub fn code(self) -> u8 {
        self.id()
    }

    /// The reference server's message for the code.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status: 403 for [`ServerErrorCode::Forbidden`], 400 otherwise.
    pub fn http_status(self) -> u16 {
        if self == Self::Forbidden { 403 } else { 400 }
    }

    /// The JSON body, `{"code":<code>,"message":"<message>"}`.
    pub fn json_body(self) -> String {
        format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            self.code(),
            self.message()
        )
    }
}

impl Error {
    /// The code the reference server answers this error with, for errors
    /// found in a request (its query or its body).
    pub fn server_error_code(&self) -> ServerErrorCode {
        match self {
            Error::MissingTransport | Error::UnknownTransport => ServerErrorCode::UnknownTransport,
            Error::MissingProtocolVersion | Error::UnsupportedProtocolVersion => {
                ServerErrorCode::UnsupportedProtocolVersion
            }
            _ => ServerErrorCode::BadRequest,
        }
    }
}

/// Text that failed the shared UTF-8 check is the peer's [`Error::InvalidUtf8`].
impl From<duplex_core::InvalidUtf8> for Error {
    fn from(_: duplex_core::InvalidUtf8) -> Self {
        Error::InvalidUtf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_error_bodies() {
        assert_eq!(
            Error::UnknownTransport.server_error_code().json_body(),
            r#"{"code":0,"message":"Transport unknown"}"#
        );
        assert_eq!(
            Error::UnsupportedProtocolVersion
                .server_error_code()
                .json_body(),
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        );
        assert_eq!(
            ServerErrorCode::UnknownSid.json_body(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
        assert_eq!(
            Error::Truncated.server_error_code(),
            ServerErrorCode::BadRequest
        );
        assert_eq!(ServerErrorCode::Forbidden.http_status(), 403);
        assert_eq!(ServerErrorCode::BadHandshakeMethod.http_status(), 400);
    }

    #[test]
    fn peer_faults_carry_an_answer_and_local_ones_none() {
        let peer = Error::UnknownTransport;
        assert!(peer.is_peer_fault() && !peer.is_local());
        assert_eq!(peer.answer(), Some(ServerErrorCode::UnknownTransport));
        assert_eq!(Error::Truncated.answer(), Some(ServerErrorCode::BadRequest));
        let local = Error::QueueFull;
        assert!(local.is_local() && !local.is_peer_fault());
        assert_eq!(local.answer(), None);
    }
}
