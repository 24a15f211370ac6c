//! The client side of SockJS: session URLs, frames in, events out, sends
//! batched, as sockjs-client speaks to a server. Sans-IO: the caller opens
//! the requests (or the WebSocket) at the paths this gives and feeds what
//! arrives.
//!
//! Frames come one at a time from a WebSocket message or an `xhr`
//! response ([`SockJsClient::handle_frame`]), or as a byte stream of
//! `\n`-ended frames from `xhr_streaming` ([`SockJsClient::receive`],
//! split-invariant; its 2 KiB `h` prelude reads as a heartbeat).
//!
//! ```
//! use duplex_polling::{SockJsClient, SockJsClientEvent, SockJsClientTransport};
//!
//! let mut rng = rand::rng();
//! let mut client = SockJsClient::new("/echo", SockJsClientTransport::XhrPolling, &mut rng);
//! assert!(client.receive_path().ends_with("/xhr"));
//! client.handle_frame("o").unwrap();
//! client.handle_frame(r#"a["hi","there"]"#).unwrap();
//! assert_eq!(client.poll_event(), Some(SockJsClientEvent::Open));
//! assert_eq!(client.poll_event(), Some(SockJsClientEvent::Message("hi".into())));
//! client.send("back").unwrap();
//! assert_eq!(client.poll_transmit().as_deref(), Some(r#"["back"]"#));
//! ```

use std::collections::VecDeque;

use rand::RngCore;

use crate::Error;

/// How a [`SockJsClient`] reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockJsClientTransport {
    /// A WebSocket at `…/websocket`: one frame per message, sends as
    /// messages.
    WebSocket,
    /// `POST …/xhr_streaming`: frames on one long response, reopened when
    /// the server ends it; sends with `POST …/xhr_send`.
    XhrStreaming,
    /// `POST …/xhr`: one frame per response; sends with `POST …/xhr_send`.
    XhrPolling,
}

impl SockJsClientTransport {
    /// The last path segment of the receiving request.
    pub fn path_segment(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::XhrStreaming => "xhr_streaming",
            Self::XhrPolling => "xhr",
        }
    }
}

/// Limits of a [`SockJsClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockJsClientConfig {
    /// The longest frame, in bytes. Default 1 MiB.
    pub max_frame_size: usize,
    /// Most events not yet taken with [`SockJsClient::poll_event`], and
    /// most messages waiting to be sent. Default 4096.
    pub max_queued: usize,
}

impl Default for SockJsClientConfig {
    fn default() -> Self {
        Self {
            max_frame_size: 1024 * 1024,
            max_queued: 4096,
        }
    }
}

/// What the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockJsClientEvent {
    /// The session is open (`o`).
    Open,
    /// A message (one of an `a[…]` frame's strings).
    Message(String),
    /// A heartbeat (`h`), or the `xhr_streaming` prelude.
    Heartbeat,
    /// The server closed the session (`c[code,"reason"]`); nothing more
    /// comes.
    Closed {
        /// The close code (3000 "Go away!", 2010 another connection…).
        code: u16,
        /// The reason.
        reason: String,
    },
}

/// Where a [`SockJsClient`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    Closed,
}

/// One SockJS session, client side. See the module documentation.
#[derive(Debug, Clone)]
pub struct SockJsClient {
    config: SockJsClientConfig,
    transport: SockJsClientTransport,
    /// `<prefix>/<server>/<session>`.
    session_path: String,
    state: State,
    /// A partial `xhr_streaming` line.
    line: Vec<u8>,
    events: VecDeque<SockJsClientEvent>,
    outgoing: Vec<String>,
}

impl SockJsClient {
    /// A session under `prefix` (a path such as `/echo`) over `transport`,
    /// with the server and session ids drawn from `rng`.
    pub fn new(prefix: &str, transport: SockJsClientTransport, rng: &mut impl RngCore) -> Self {
        Self::with_config(prefix, transport, rng, SockJsClientConfig::default())
    }

    /// [`SockJsClient::new`] with these limits.
    pub fn with_config(
        prefix: &str,
        transport: SockJsClientTransport,
        rng: &mut impl RngCore,
        config: SockJsClientConfig,
    ) -> Self {
        // sockjs-client: a three-digit server id, an eight-character
        // session id.
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz012345";
        let server = rng.next_u32() % 1000;
        let session: String = (0..8)
            .map(|_| {
                let i = (rng.next_u32() as usize) % ALPHABET.len();
                ALPHABET.get(i).map_or('a', |&b| char::from(b))
            })
            .collect();
        SockJsClient {
            config,
            transport,
            session_path: format!("{}/{server:03}/{session}", prefix.trim_end_matches('/')),
            state: State::Connecting,
            line: Vec::new(),
            events: VecDeque::new(),
            outgoing: Vec::new(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> SockJsClientTransport {
        self.transport
    }

    /// The path to receive on: the WebSocket's, or the `xhr` /
    /// `xhr_streaming` request's (each poll or stream reopens it).
    pub fn receive_path(&self) -> String {
        format!("{}/{}", self.session_path, self.transport.path_segment())
    }

    /// The path that sends go to with `POST` (not used over WebSocket).
    pub fn send_path(&self) -> String {
        format!("{}/xhr_send", self.session_path)
    }

    /// Whether the session is open (the `o` frame came, no `c` yet).
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the server closed the session.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Feeds one whole frame (a WebSocket message, an `xhr` response body;
    /// a trailing `\n` is ignored). A frame that is not SockJS fails with
    /// [`Error::BrokenJson`]; the session should then be dropped.
    pub fn handle_frame(&mut self, frame: &str) -> Result<(), Error> {
        let frame = frame.strip_suffix('\n').unwrap_or(frame);
        if frame.len() > self.config.max_frame_size {
            return Err(Error::PayloadTooLarge {
                limit: self.config.max_frame_size,
            });
        }
        if self.state == State::Closed {
            // A closed session repeats its close frame to every request.
            return Ok(());
        }
        let (kind, rest) = frame.split_at_checked(1).ok_or(Error::BrokenJson)?;
        match (kind, self.state) {
            ("o", State::Connecting) if rest.is_empty() => {
                self.state = State::Open;
                self.push(SockJsClientEvent::Open)?;
            }
            ("h", _) => self.push(SockJsClientEvent::Heartbeat)?,
            ("a", State::Open) => {
                let messages: Vec<String> =
                    serde_json::from_str(rest).map_err(|_| Error::BrokenJson)?;
                for m in messages {
                    self.push(SockJsClientEvent::Message(m))?;
                }
            }
            // The old single-message frame.
            ("m", State::Open) => {
                let message: String = serde_json::from_str(rest).map_err(|_| Error::BrokenJson)?;
                self.push(SockJsClientEvent::Message(message))?;
            }
            ("c", _) => {
                let (code, reason): (u16, String) =
                    serde_json::from_str(rest).map_err(|_| Error::BrokenJson)?;
                self.state = State::Closed;
                self.outgoing.clear();
                self.push(SockJsClientEvent::Closed { code, reason })?;
            }
            _ => return Err(Error::BrokenJson),
        }
        Ok(())
    }

    /// Feeds bytes of an `xhr_streaming` response: frames each ending in
    /// `\n`, cut anywhere.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(end);
            self.extend_line(head)?;
            let line = std::mem::take(&mut self.line);
            let text = std::str::from_utf8(&line).map_err(|_| Error::BrokenJson)?;
            self.handle_frame(text)?;
            rest = tail.get(1..).unwrap_or_default();
        }
        self.extend_line(rest)
    }

    /// Forgets a partial `xhr_streaming` frame when its response ended.
    pub fn handle_stream_end(&mut self) {
        self.line.clear();
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SockJsClientEvent> {
        self.events.pop_front()
    }

    /// Queues a message; [`SockJsClient::poll_send`] gives what to write.
    /// Fails with [`Error::NoSuchSession`] once the session is closed and
    /// with [`Error::QueueFull`] past [`SockJsClientConfig::max_queued`].
    pub fn send(&mut self, message: &str) -> Result<(), Error> {
        if self.state == State::Closed {
            return Err(Error::NoSuchSession);
        }
        if self.outgoing.len() >= self.config.max_queued {
            return Err(Error::QueueFull);
        }
        self.outgoing.push(message.to_owned());
        Ok(())
    }

    /// Every queued message as one JSON array of strings: a WebSocket
    /// message, or the body of a `POST` to [`SockJsClient::send_path`].
    /// `None` while nothing is queued or the session is not open yet.
    pub fn poll_transmit(&mut self) -> Option<String> {
        if self.state != State::Open || self.outgoing.is_empty() {
            return None;
        }
        let batch = std::mem::take(&mut self.outgoing);
        serde_json::to_string(&batch).ok()
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.line.len() + bytes.len() > self.config.max_frame_size {
            return Err(Error::PayloadTooLarge {
                limit: self.config.max_frame_size,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn push(&mut self, event: SockJsClientEvent) -> Result<(), Error> {
        if self.events.len() >= self.config.max_queued {
            return Err(Error::QueueFull);
        }
        self.events.push_back(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn client(transport: SockJsClientTransport) -> SockJsClient {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        SockJsClient::new("/echo/", transport, &mut rng)
    }

    fn events(c: &mut SockJsClient) -> Vec<SockJsClientEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    #[test]
    fn paths_name_server_session_and_transport() {
        let c = client(SockJsClientTransport::XhrStreaming);
        let path = c.receive_path();
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts.len(), 5, "{path}");
        assert_eq!(
            (parts[0], parts[1], parts[4]),
            ("", "echo", "xhr_streaming")
        );
        assert_eq!(parts[2].len(), 3);
        assert!(parts[2].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(parts[3].len(), 8);
        assert_eq!(
            c.send_path(),
            format!("/echo/{}/{}/xhr_send", parts[2], parts[3])
        );
        assert!(
            client(SockJsClientTransport::WebSocket)
                .receive_path()
                .ends_with("/websocket")
        );
    }

    #[test]
    fn frames_become_events() {
        let mut c = client(SockJsClientTransport::XhrPolling);
        assert!(c.poll_transmit().is_none());
        c.send("early").unwrap();
        // Nothing goes out before the open frame.
        assert!(c.poll_transmit().is_none());
        for frame in [
            "o\n",
            "h",
            r#"a["a\n\"b","\u2028"]"#,
            r#"m"old""#,
            r#"c[3000,"Go away!"]"#,
        ] {
            c.handle_frame(frame).unwrap();
        }
        assert_eq!(
            events(&mut c),
            [
                SockJsClientEvent::Open,
                SockJsClientEvent::Heartbeat,
                SockJsClientEvent::Message("a\n\"b".into()),
                SockJsClientEvent::Message("\u{2028}".into()),
                SockJsClientEvent::Message("old".into()),
                SockJsClientEvent::Closed {
                    code: 3000,
                    reason: "Go away!".into()
                },
            ]
        );
        assert!(c.is_closed());
        assert!(matches!(c.send("late"), Err(Error::NoSuchSession)));
        // The repeated close frame of later requests is no news.
        c.handle_frame(r#"c[3000,"Go away!"]"#).unwrap();
        assert!(c.poll_event().is_none());
    }

    #[test]
    fn sends_are_batched_as_a_json_array() {
        let mut c = client(SockJsClientTransport::WebSocket);
        c.handle_frame("o").unwrap();
        c.send("x").unwrap();
        c.send("\"quoted\"\n").unwrap();
        assert_eq!(
            c.poll_transmit().as_deref(),
            Some(r#"["x","\"quoted\"\n"]"#)
        );
        assert!(c.poll_transmit().is_none());
    }

    #[test]
    fn malformed_frames_fail() {
        for frame in ["", "x", "a[1]", "a[", "c[1]", "oo"] {
            let mut c = client(SockJsClientTransport::XhrPolling);
            if frame.starts_with('a') {
                c.handle_frame("o").unwrap();
            }
            assert!(c.handle_frame(frame).is_err(), "{frame:?}");
        }
        // A message before the open frame.
        let mut c = client(SockJsClientTransport::XhrPolling);
        assert!(c.handle_frame(r#"a["x"]"#).is_err());
        // A second open.
        c.handle_frame("o").unwrap();
        assert!(c.handle_frame("o").is_err());
    }

    #[test]
    fn streams_split_anywhere_give_the_same_events() {
        let mut stream = vec![b'h'; 2048];
        stream.extend_from_slice(b"\no\na[\"\xC3\xA9t\xC3\xA9\",\"x\"]\nh\nc[3000,\"Go away!\"]\n");
        let mut whole = client(SockJsClientTransport::XhrStreaming);
        whole.receive(&stream).unwrap();
        let expected = events(&mut whole);
        assert_eq!(expected.len(), 6, "{expected:?}");
        assert_eq!(expected[2], SockJsClientEvent::Message("été".into()));
        for at in (0..stream.len()).step_by(7).chain(2040..stream.len()) {
            let mut c = client(SockJsClientTransport::XhrStreaming);
            c.receive(&stream[..at]).unwrap();
            c.receive(&stream[at..]).unwrap();
            assert_eq!(events(&mut c), expected, "split at {at}");
        }
    }

    #[test]
    fn limits_bound_frames_and_queues() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let config = SockJsClientConfig {
            max_frame_size: 16,
            max_queued: 2,
        };
        let mut c =
            SockJsClient::with_config("/p", SockJsClientTransport::XhrStreaming, &mut rng, config);
        assert!(matches!(
            c.receive(&[b'h'; 17]),
            Err(Error::PayloadTooLarge { limit: 16 })
        ));
        let mut c =
            SockJsClient::with_config("/p", SockJsClientTransport::XhrPolling, &mut rng, config);
        c.handle_frame("o").unwrap();
        assert!(c.handle_frame(r#"a["1","2"]"#).is_err());
        c.send("1").unwrap();
        c.send("2").unwrap();
        assert!(matches!(c.send("3"), Err(Error::QueueFull)));
    }
}
