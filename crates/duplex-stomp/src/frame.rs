//! Frames: command, headers, body; and their encoding.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use duplex_core::Utf8Bytes;

use crate::error::Error;
use crate::escape::{Escaping, write_escaped};
use crate::version::Version;

/// The fifteen STOMP commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session (every version).
    Connect,
    /// Client: open a session (1.1+ alias of `CONNECT` that protocol sniffers
    /// can tell from HTTP).
    Stomp,
    /// Client: send a message to a destination.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: refuse a message (1.1+).
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll back a transaction.
    Abort,
    /// Client: end the session gracefully.
    Disconnect,
    /// Server: the session is open.
    Connected,
    /// Server: a message from a subscription.
    Message,
    /// Server: a frame that asked for a receipt was processed.
    Receipt,
    /// Server: something went wrong; the connection closes after it.
    Error,
}

impl Command {
    /// Every command, client commands first.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses a command line (without its line end). Commands are case
    /// sensitive.
    pub fn parse(line: &[u8]) -> Option<Command> {
        Some(match line {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"CONNECTED" => Command::Connected,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// Whether a client sends this command.
    pub fn is_client_command(self) -> bool {
        !self.is_server_command()
    }

    /// Whether a server sends this command.
    pub fn is_server_command(self) -> bool {
        matches!(
            self,
            Command::Connected | Command::Message | Command::Receipt | Command::Error
        )
    }

    /// Whether frames of this command may carry a body (`SEND`, `MESSAGE`,
    /// `ERROR`).
    pub fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }

    /// Whether this frame's headers are never escaped (`CONNECT`, `STOMP`,
    /// `CONNECTED`), for backward compatibility with STOMP 1.0.
    pub fn is_unescaped(self) -> bool {
        matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }

    pub(crate) fn escaping(self, version: Version) -> Escaping {
        if self.is_unescaped() {
            return Escaping::None;
        }
        match version {
            Version::V1_0 => Escaping::None,
            Version::V1_1 => Escaping::V1_1,
            Version::V1_2 => Escaping::V1_2,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header entry: a name and a value, both the workspace's checked UTF-8
/// text, so that decoded headers point into the received buffer without
/// copying and are read as `&str` without a second full check.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Header {
    name: Utf8Bytes,
    value: Utf8Bytes,
}

impl Header {
    /// A header from text (copied).
    pub fn new(name: &str, value: &str) -> Header {
        Header {
            name: Utf8Bytes::copy_from_str(name),
            value: Utf8Bytes::copy_from_str(value),
        }
    }

    /// A header from static text (not copied).
    pub fn from_static(name: &'static str, value: &'static str) -> Header {
        Header {
            name: Utf8Bytes::from_static(name),
            value: Utf8Bytes::from_static(value),
        }
    }

    /// A header from owned strings (not copied).
    pub fn from_strings(name: String, value: String) -> Header {
        Header {
            name: Utf8Bytes::from(name),
            value: Utf8Bytes::from(value),
        }
    }

    /// Callers promise both are UTF-8 (checked by the decoder, or cut from
    /// another header).
    pub(crate) fn from_utf8_bytes(name: Bytes, value: Bytes) -> Header {
        Header {
            name: Utf8Bytes::from_validated(name),
            value: Utf8Bytes::from_validated(value),
        }
    }

    /// The header name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The header value.
    pub fn value(&self) -> &str {
        self.value.as_str()
    }

    /// The header name as the shared buffer it was decoded into.
    pub fn name_bytes(&self) -> &Bytes {
        self.name.as_shared_bytes()
    }

    /// The header value as the shared buffer it was decoded into.
    pub fn value_bytes(&self) -> &Bytes {
        self.value.as_shared_bytes()
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.name(), self.value())
    }
}

/// A STOMP frame: a command, headers in order (repeats kept, the first one
/// wins on lookup), and a body.
///
/// Decoded frames do not list the `content-length` header: it only frames
/// the body, whose length is `body().len()`, and the encoder writes it
/// itself whenever the body is not empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    command: Command,
    headers: Vec<Header>,
    body: Bytes,
}

impl Frame {
    /// A frame with no headers and no body.
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn from_parts(command: Command, headers: Vec<Header>, body: Bytes) -> Frame {
        Frame {
            command,
            headers,
            body,
        }
    }

    /// Adds a header (builder style). Repeats are kept; the first wins.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Frame {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Sets the body (builder style).
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }

    /// The command.
    pub fn command(&self) -> Command {
        self.command
    }

    /// Every header, in order, repeats included.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_entry(name).map(Header::value)
    }

    /// The first header called `name`.
    pub fn header_entry(&self, name: &str) -> Option<&Header> {
        self.headers
            .iter()
            .find(|h| h.name.as_bytes() == name.as_bytes())
    }

    /// Appends a header. Repeats are kept; the first wins.
    pub fn push_header(&mut self, header: Header) {
        self.headers.push(header);
    }

    /// Replaces the value of the first header called `name`, or appends one.
    pub fn set_header(&mut self, name: &str, value: &str) {
        let value = Utf8Bytes::copy_from_str(value);
        match self
            .headers
            .iter_mut()
            .find(|h| h.name.as_bytes() == name.as_bytes())
        {
            Some(h) => h.value = value,
            None => self.headers.push(Header {
                name: Utf8Bytes::copy_from_str(name),
                value,
            }),
        }
    }

    /// Removes every header called `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers
            .retain(|h| h.name.as_bytes() != name.as_bytes());
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = body.into();
    }

    /// Splits the frame into its parts.
    pub fn into_parts(self) -> (Command, Vec<Header>, Bytes) {
        (self.command, self.headers, self.body)
    }

    /// Appends the frame to `out` as `version` writes it: headers escaped
    /// for that version (never for `CONNECT`, `STOMP`, `CONNECTED`), any
    /// `content-length` header replaced by the body's true length when the
    /// body is not empty, LF line ends, NUL at the end. On error nothing is
    /// appended.
    pub fn encode(&self, version: Version, out: &mut BytesMut) -> Result<(), Error> {
        encode_frame(
            self.command,
            self.headers
                .iter()
                .map(|h| (h.name.as_ref(), h.value.as_ref())),
            &self.body,
            version,
            out,
        )
    }

    /// The frame encoded into a new buffer.
    pub fn to_bytes(&self, version: Version) -> Result<Bytes, Error> {
        let mut out = BytesMut::new();
        self.encode(version, &mut out)?;
        Ok(out.freeze())
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish()
    }
}

/// Appends a frame built from borrowed parts to `out`, exactly as
/// [`Frame::encode`] would, without building a [`Frame`] first. On error
/// nothing is appended.
pub fn encode_frame<'a>(
    command: Command,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    body: &[u8],
    version: Version,
    out: &mut BytesMut,
) -> Result<(), Error> {
    let escaping = command.escaping(version);
    let start = out.len();
    let estimate = command.as_str().len()
        + headers
            .clone()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum::<usize>()
        + body.len()
        + 40;
    out.reserve(estimate);
    out.put_slice(command.as_str().as_bytes());
    out.put_u8(b'\n');
    for (name, value) in headers {
        if name == b"content-length" {
            continue;
        }
        let written = if name.is_empty() {
            Err(Error::Unencodable {
                reason: "empty header name",
            })
        } else if name.first() == Some(&0) {
            // A line starting with NUL reads as the end of a frame.
            Err(Error::Unencodable {
                reason: "header name starting with NUL",
            })
        } else {
            write_escaped(out, name, escaping, true).and_then(|()| {
                out.put_u8(b':');
                write_escaped(out, value, escaping, false)
            })
        };
        if let Err(e) = written {
            out.truncate(start);
            return Err(e);
        }
        out.put_u8(b'\n');
    }
    if !body.is_empty() {
        out.put_slice(b"content-length:");
        duplex_core::put_decimal(out, body.len() as u64);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.put_slice(body);
    out.put_u8(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_content_length_only_when_a_body_is_present() {
        let f = Frame::new(Command::Send)
            .with_header("destination", "/queue/a")
            .with_header("content-length", "999")
            .with_body(&b"hi\0there"[..]);
        assert_eq!(
            f.to_bytes(Version::V1_2).unwrap().as_ref(),
            b"SEND\ndestination:/queue/a\ncontent-length:8\n\nhi\0there\0"
        );
        let f = Frame::new(Command::Disconnect).with_header("receipt", "77");
        assert_eq!(
            f.to_bytes(Version::V1_2).unwrap().as_ref(),
            b"DISCONNECT\nreceipt:77\n\n\0"
        );
    }

    #[test]
    fn connect_frames_are_never_escaped() {
        let f = Frame::new(Command::Connect).with_header("login", "a\\b:c");
        assert_eq!(
            f.to_bytes(Version::V1_2).unwrap().as_ref(),
            b"CONNECT\nlogin:a\\b:c\n\n\0"
        );
        let f = Frame::new(Command::Connected).with_header("x", "a\nb");
        assert!(matches!(
            f.to_bytes(Version::V1_2),
            Err(Error::Unencodable { .. })
        ));
        let f = Frame::new(Command::Send).with_header("x", "a\\b:c\nd\re");
        assert_eq!(
            f.to_bytes(Version::V1_2).unwrap().as_ref(),
            b"SEND\nx:a\\\\b\\cc\\nd\\re\n\n\0"
        );
    }

    #[test]
    fn failed_encoding_appends_nothing() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let f = Frame::new(Command::Send)
            .with_header("ok", "v")
            .with_header("bad", "x\ny");
        assert!(f.encode(Version::V1_0, &mut out).is_err());
        assert_eq!(out.as_ref(), b"prefix");
        let f = Frame::new(Command::Send).with_header("", "v");
        assert!(f.encode(Version::V1_2, &mut out).is_err());
        assert_eq!(out.as_ref(), b"prefix");
    }

    #[test]
    fn decimal_writer() {
        for n in [0usize, 7, 10, 170, 65_536, usize::MAX] {
            let mut out = BytesMut::new();
            duplex_core::put_decimal(&mut out, n as u64);
            assert_eq!(out.as_ref(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn first_header_wins_and_set_replaces_it() {
        let mut f = Frame::new(Command::Message)
            .with_header("foo", "World")
            .with_header("foo", "Hello");
        assert_eq!(f.header("foo"), Some("World"));
        f.set_header("foo", "x");
        assert_eq!(f.header("foo"), Some("x"));
        assert_eq!(f.headers().len(), 2);
        f.remove_header("foo");
        assert_eq!(f.header("foo"), None);
    }
}
