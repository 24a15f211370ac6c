//! Acknowledgement modes and received messages.

use std::fmt;

use bytes::Bytes;

use crate::frame::Frame;

/// A subscription's `ack` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AckMode {
    /// The server counts a message as consumed as soon as it sends it.
    #[default]
    Auto,
    /// The client acknowledges; an `ACK` or `NACK` covers the named message
    /// and every earlier unacknowledged one of the subscription.
    Client,
    /// The client acknowledges each message on its own.
    ClientIndividual,
}

impl AckMode {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }

    /// Parses a header value; a missing header means [`AckMode::Auto`].
    pub fn parse(value: &str) -> Option<AckMode> {
        match value {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }

    /// Whether the client must send `ACK` or `NACK` frames.
    pub fn needs_ack(self) -> bool {
        self != AckMode::Auto
    }
}

impl fmt::Display for AckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `MESSAGE` frame received by a client, with accessors for the headers
/// that relate it to its subscription and to a later `ACK` or `NACK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    frame: Frame,
}

impl Message {
    /// Wraps a `MESSAGE` frame.
    pub fn new(frame: Frame) -> Message {
        Message { frame }
    }

    /// The `destination` header.
    pub fn destination(&self) -> Option<&str> {
        self.frame.header("destination")
    }

    /// The `message-id` header.
    pub fn message_id(&self) -> Option<&str> {
        self.frame.header("message-id")
    }

    /// The `subscription` header.
    pub fn subscription(&self) -> Option<&str> {
        self.frame.header("subscription")
    }

    /// The `ack` header (STOMP 1.2, for `client` and `client-individual`
    /// subscriptions): the value a 1.2 `ACK` or `NACK` names in its `id`.
    pub fn ack_id(&self) -> Option<&str> {
        self.frame.header("ack")
    }

    /// The `content-type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.frame.header("content-type")
    }

    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.frame.header(name)
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        self.frame.body()
    }

    /// The whole frame.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The whole frame, owned.
    pub fn into_frame(self) -> Frame {
        self.frame
    }
}
