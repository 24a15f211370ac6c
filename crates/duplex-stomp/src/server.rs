//! The server session: every state and transition of the server side of
//! one STOMP connection lives in this module.
//!
//! ```text
//!   new() ─▶ AwaitingConnect ──CONNECT/STOMP accepted──▶ Connected ──DISCONNECT+receipt──▶ Disconnecting
//!                 │                                          │                                  │
//!                 └── any other frame, bad input, no common  │                       RECEIPT sent
//!                     version, refused login, timeout ───────┴── bad input, ERROR sent ─────────┴──▶ Closed
//!                                                            └── DISCONNECT without receipt ────────▶ Closed
//! ```
//!
//! Every fault of the client is answered by an `ERROR` frame with a
//! `message` header (and `receipt-id` when the offending frame asked for a
//! receipt), after which the session is closed: the caller writes out what
//! [`ServerSession::poll_transmit`] hands back and shuts the socket.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use rand::{RngCore, SeedableRng};

use crate::ack::AckMode;
use crate::decoder::{Decoded, FrameDecoder, Limits};
use crate::error::Error;
use crate::frame::{Command, Frame, encode_frame};
use crate::heartbeat::{HeartBeat, HeartBeatIntervals, HeartBeatTimer};
use crate::version::Version;

/// What a client presented in its `CONNECT` frame, for the authentication
/// hook.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    frame: &'a Frame,
    version: Version,
}

impl ConnectRequest<'_> {
    /// The `login` header.
    pub fn login(&self) -> Option<&str> {
        self.frame.header("login")
    }

    /// The `passcode` header.
    pub fn passcode(&self) -> Option<&str> {
        self.frame.header("passcode")
    }

    /// The `host` header.
    pub fn host(&self) -> Option<&str> {
        self.frame.header("host")
    }

    /// The version that will be used if the connection is accepted.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The whole `CONNECT` (or `STOMP`) frame.
    pub fn frame(&self) -> &Frame {
        self.frame
    }
}

/// The authentication hook: `true` accepts the connection.
pub type Authenticator = Box<dyn FnMut(&ConnectRequest<'_>) -> bool + Send>;

/// How a [`ServerSession`] accepts connections.
pub struct ServerConfig {
    /// Versions this server speaks. Default: all three.
    pub versions: Vec<Version>,
    /// What the server can send and wants to receive. Default 10 s both
    /// ways.
    pub heart_beat: HeartBeat,
    /// How many receive intervals of silence mean the client is gone: a
    /// client silent for `interval * tolerance` after its last octet is
    /// always dropped, one silent for less than `interval * (tolerance -
    /// 1/4)` never is. Default 2.
    pub heart_beat_tolerance: u32,
    /// The `server` header of `CONNECTED`.
    pub server_name: String,
    /// Limits on received frames.
    pub limits: Limits,
    /// How long a client may take to send `CONNECT`; `None` waits forever.
    /// Default 10 s: plenty for any real client, and short enough that a
    /// listener does not hold silent sockets for long.
    pub connect_timeout: Option<Duration>,
    /// Checks `login`/`passcode`/`host`; `None` accepts everyone.
    pub authenticator: Option<Authenticator>,
    /// Source of session ids. Default: the operating system's generator.
    pub rng: Box<dyn RngCore + Send>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            versions: Version::ALL.to_vec(),
            heart_beat: HeartBeat::every(Duration::from_secs(10)),
            heart_beat_tolerance: 2,
            server_name: concat!("duplex-stomp/", env!("CARGO_PKG_VERSION")).to_owned(),
            limits: Limits::default(),
            connect_timeout: Some(Duration::from_secs(10)),
            authenticator: None,
            rng: Box::new(rand::rngs::StdRng::from_os_rng()),
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("versions", &self.versions)
            .field("heart_beat", &self.heart_beat)
            .field("heart_beat_tolerance", &self.heart_beat_tolerance)
            .field("server_name", &self.server_name)
            .field("limits", &self.limits)
            .field("connect_timeout", &self.connect_timeout)
            .field("authenticator", &self.authenticator.is_some())
            .finish_non_exhaustive()
    }
}

/// What a server session settled with its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The negotiated version.
    pub version: Version,
    /// The `session` header sent in `CONNECTED`.
    pub session: String,
    /// The client's `login`, if any.
    pub login: Option<String>,
    /// The client's `host`, if any.
    pub host: Option<String>,
    /// The heart-beat intervals in force.
    pub heart_beat: HeartBeatIntervals,
}

/// Something that happened on a [`ServerSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client connected; `CONNECTED` is queued.
    Connected(Accepted),
    /// A valid client frame: `SEND`, `SUBSCRIBE`, `UNSUBSCRIBE`, `ACK`,
    /// `NACK`, `BEGIN`, `COMMIT`, `ABORT` or `DISCONNECT`, with the headers
    /// its command and version require. Receipts are the caller's to send
    /// (a broker sends them once it has processed the frame).
    Frame(Frame),
    /// The client broke the protocol or went silent; an `ERROR` frame is
    /// queued and the session is closed.
    Failed(Error),
}

/// Where a server session is. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// Waiting for `CONNECT` or `STOMP`.
    AwaitingConnect,
    /// Connected.
    Connected,
    /// The client sent `DISCONNECT` asking for this receipt; the session
    /// closes once a `RECEIPT` with it is sent.
    Disconnecting {
        /// The receipt that ends the session.
        receipt: String,
    },
    /// Nothing more is read; write out what is queued and shut the socket.
    Closed,
}

/// A sans-IO STOMP server session for one connection.
pub struct ServerSession {
    config: ServerConfig,
    state: ServerState,
    version: Version,
    decoder: FrameDecoder,
    out: BytesMut,
    failure: Option<Error>,
    timer: HeartBeatTimer,
    now: Instant,
    connect_deadline: Option<Instant>,
}

impl fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSession")
            .field("state", &self.state)
            .field("version", &self.version)
            .field("buffered_out", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    /// A session for a connection accepted at `now`.
    pub fn new(config: ServerConfig, now: Instant) -> ServerSession {
        // Before CONNECT nothing is unescaped (CONNECT never is), so any early
        // frame reads far enough to be refused with its receipt id.
        let mut decoder = FrameDecoder::new(config.limits);
        decoder.set_version(Version::V1_0);
        ServerSession {
            decoder,
            state: ServerState::AwaitingConnect,
            version: Version::V1_0,
            out: BytesMut::new(),
            failure: None,
            timer: HeartBeatTimer::disarmed(),
            now,
            connect_deadline: config.connect_timeout.and_then(|t| now.checked_add(t)),
            config,
        }
    }

    /// Where the session is.
    pub fn state(&self) -> &ServerState {
        &self.state
    }

    /// The negotiated version (1.0 before `CONNECT`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the session has ended: write out what
    /// [`ServerSession::poll_transmit`] hands back, then shut the socket.
    pub fn is_closed(&self) -> bool {
        self.state == ServerState::Closed
    }

    /// The heart-beat intervals in force.
    pub fn heart_beat(&self) -> HeartBeatIntervals {
        self.timer.intervals()
    }

    // ---- bytes and time in, bytes out ----

    /// Hands received bytes to the session; they are decoded by
    /// [`ServerSession::poll_event`]: call it until `None` after each
    /// `receive`, so that no more than one partial frame stays buffered.
    pub fn receive(&mut self, data: &[u8]) {
        match self.state {
            ServerState::Closed => return,
            // After DISCONNECT nothing more is read (STOMP 1.2: the client
            // must not send more frames), so nothing is kept either: a client
            // that keeps sending must not grow the buffer while the receipt
            // is on its way.
            ServerState::Disconnecting { .. } => {}
            ServerState::AwaitingConnect | ServerState::Connected => self.decoder.receive(data),
        }
        self.timer.on_receive();
    }

    /// Received bytes not yet decoded (at most one partial frame after
    /// [`ServerSession::poll_event`] has returned `None`).
    pub fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    /// Appends the bytes to write to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        let n = self.out.len();
        out.extend_from_slice(&self.out);
        self.out.clear();
        n
    }

    /// Whether bytes are waiting in [`ServerSession::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// When [`ServerSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ServerState::AwaitingConnect => self.connect_deadline,
            ServerState::Connected | ServerState::Disconnecting { .. } => self.timer.poll_timeout(),
            ServerState::Closed => None,
        }
    }

    /// Tells the session the time: sends due heart-beats and ends the
    /// session when the client is silent too long or never connects.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            ServerState::AwaitingConnect => {
                if self.connect_deadline.is_some_and(|d| now >= d) {
                    self.fail(Error::ConnectTimeout, None);
                }
            }
            ServerState::Connected | ServerState::Disconnecting { .. } => {
                let tick = self.timer.handle_timeout(now);
                if tick.peer_silent {
                    self.fail(Error::HeartBeatTimeout, None);
                } else if tick.send_heart_beat {
                    self.out.put_u8(b'\n');
                }
            }
            ServerState::Closed => {}
        }
    }

    /// The next event, decoding received bytes as needed.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if let Some(e) = self.failure.take() {
            return Some(ServerEvent::Failed(e));
        }
        while matches!(
            self.state,
            ServerState::AwaitingConnect | ServerState::Connected
        ) {
            match self.decoder.decode() {
                Ok(None) => return None,
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(Some(Decoded::Frame(frame))) => {
                    if let Some(event) = self.on_frame(frame) {
                        return Some(event);
                    }
                }
                Err(e) => {
                    self.fail(e, None);
                    return self.failure.take().map(ServerEvent::Failed);
                }
            }
        }
        None
    }

    /// Queues an `ERROR` frame for `error` and closes.
    fn fail(&mut self, error: Error, receipt: Option<&str>) {
        self.write_error(
            error.error_message(),
            receipt,
            &[],
            error.to_string().as_bytes(),
        );
        self.close();
        self.failure = Some(error);
    }

    fn close(&mut self) {
        self.state = ServerState::Closed;
        self.timer.disarm();
    }

    fn write_error(
        &mut self,
        message: &str,
        receipt: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) {
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(3 + extra.len());
        headers.push(("message", message));
        if let Some(r) = receipt {
            headers.push(("receipt-id", r));
        }
        headers.extend_from_slice(extra);
        if !body.is_empty() {
            headers.push(("content-type", "text/plain"));
        }
        let encoded = encode_frame(
            Command::Error,
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            body,
            self.version,
            &mut self.out,
        );
        if encoded.is_err() {
            // Only a receipt id from the client can make this fail; drop it
            // rather than send no ERROR at all.
            let _ = encode_frame(
                Command::Error,
                [(b"message".as_slice(), message.as_bytes())].into_iter(),
                body,
                Version::V1_2,
                &mut self.out,
            );
        }
    }

    /// The transition table for received frames.
    fn on_frame(&mut self, frame: Frame) -> Option<ServerEvent> {
        match (&self.state, frame.command()) {
            (ServerState::AwaitingConnect, Command::Connect | Command::Stomp) => {
                self.on_connect(&frame)
            }
            (ServerState::Connected, command) => match self.validate(&frame) {
                Ok(()) => {
                    if command == Command::Disconnect {
                        self.state = match frame.header("receipt") {
                            Some(r) => ServerState::Disconnecting {
                                receipt: r.to_owned(),
                            },
                            None => ServerState::Closed,
                        };
                        if self.state == ServerState::Closed {
                            self.timer.disarm();
                        }
                    }
                    Some(ServerEvent::Frame(frame))
                }
                Err(e) => {
                    self.fail(e, frame.header("receipt"));
                    self.failure.take().map(ServerEvent::Failed)
                }
            },
            (_, command) => {
                self.fail(Error::UnexpectedFrame { command }, frame.header("receipt"));
                self.failure.take().map(ServerEvent::Failed)
            }
        }
    }

    fn on_connect(&mut self, frame: &Frame) -> Option<ServerEvent> {
        let Some(version) =
            Version::negotiate(frame.header("accept-version"), &self.config.versions)
        else {
            let supported = Version::list(&self.config.versions);
            let body = format!(
                "Supported protocol versions are {}",
                supported.replace(',', " ")
            );
            self.write_error(
                Error::NoCommonVersion.error_message(),
                None,
                &[("version", &supported)],
                body.as_bytes(),
            );
            self.close();
            return Some(ServerEvent::Failed(Error::NoCommonVersion));
        };
        let client_beat = match frame.header("heart-beat") {
            None => HeartBeat::NONE,
            Some(v) => match HeartBeat::parse(v) {
                Some(hb) => hb,
                None => {
                    self.fail(
                        Error::InvalidHeader {
                            header: "heart-beat",
                        },
                        None,
                    );
                    return self.failure.take().map(ServerEvent::Failed);
                }
            },
        };
        let request = ConnectRequest { frame, version };
        if let Some(auth) = self.config.authenticator.as_mut() {
            if !auth(&request) {
                self.fail(Error::AuthenticationFailed, None);
                return self.failure.take().map(ServerEvent::Failed);
            }
        }
        let intervals = if version == Version::V1_0 {
            HeartBeatIntervals::default()
        } else {
            self.config.heart_beat.negotiate(client_beat)
        };
        let session = format!("session-{:016x}", self.config.rng.next_u64());
        let heart_beat = self.config.heart_beat.to_header_value();
        let mut headers: Vec<(&str, &str)> = vec![("version", version.as_str())];
        if version >= Version::V1_1 {
            headers.push(("heart-beat", &heart_beat));
        }
        headers.push(("session", &session));
        headers.push(("server", &self.config.server_name));
        let encoded = encode_frame(
            Command::Connected,
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &[],
            version,
            &mut self.out,
        );
        if encoded.is_err() {
            // Only a server name with a line break gets here.
            self.fail(
                Error::Unencodable {
                    reason: "server name",
                },
                None,
            );
            return self.failure.take().map(ServerEvent::Failed);
        }
        self.version = version;
        self.decoder.set_version(version);
        self.connect_deadline = None;
        self.timer
            .arm(intervals, self.config.heart_beat_tolerance, self.now);
        self.timer.on_receive();
        self.state = ServerState::Connected;
        Some(ServerEvent::Connected(Accepted {
            version,
            session,
            login: frame.header("login").map(str::to_owned),
            host: frame.header("host").map(str::to_owned),
            heart_beat: intervals,
        }))
    }

    /// The headers each client command requires in the negotiated version.
    fn validate(&self, frame: &Frame) -> Result<(), Error> {
        let command = frame.command();
        let need = |header: &'static str| {
            frame
                .header(header)
                .map(|_| ())
                .ok_or(Error::MissingHeader { command, header })
        };
        let v = self.version;
        match command {
            Command::Send => need("destination"),
            Command::Subscribe => {
                need("destination")?;
                if v >= Version::V1_1 {
                    need("id")?;
                }
                match frame.header("ack") {
                    Some(a) if AckMode::parse(a).is_none() => {
                        Err(Error::InvalidHeader { header: "ack" })
                    }
                    _ => Ok(()),
                }
            }
            Command::Unsubscribe if v == Version::V1_0 => {
                need("id").or_else(|_| need("destination"))
            }
            Command::Unsubscribe => need("id"),
            Command::Ack | Command::Nack if v == Version::V1_2 => need("id"),
            Command::Ack | Command::Nack if v == Version::V1_1 => {
                need("message-id")?;
                need("subscription")
            }
            Command::Ack => need("message-id"),
            Command::Begin | Command::Commit | Command::Abort => need("transaction"),
            Command::Disconnect => Ok(()),
            // NACK in 1.0, a second CONNECT, and server commands.
            _ => Err(Error::UnexpectedFrame { command }),
        }
    }

    // ---- commands ----

    /// Sends a server frame (`MESSAGE`, `RECEIPT` or `ERROR`). An `ERROR`
    /// closes the session; so does the `RECEIPT` that answers `DISCONNECT`.
    pub fn send_frame(&mut self, frame: &Frame) -> Result<(), Error> {
        match self.state {
            ServerState::Connected | ServerState::Disconnecting { .. } => {}
            ServerState::AwaitingConnect => return Err(Error::NotConnected),
            ServerState::Closed => return Err(Error::Closed),
        }
        let command = frame.command();
        if !command.is_server_command() || command == Command::Connected {
            return Err(Error::WrongRole { command });
        }
        frame.encode(self.version, &mut self.out)?;
        match command {
            Command::Error => self.close(),
            Command::Receipt => {
                if let (ServerState::Disconnecting { receipt }, Some(id)) =
                    (&self.state, frame.header("receipt-id"))
                {
                    if receipt == id {
                        self.close();
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the session with the `ERROR` frame `error` decides: its
    /// [`Error::error_message`] as the `message` header, its text as the
    /// body, and `receipt_id` when the offending frame asked for a receipt.
    /// For the server's own decisions ([`Error::ShuttingDown`],
    /// [`Error::SlowConsumer`]) and a relay's refusals; works in every
    /// state but `Closed`.
    pub fn abort(&mut self, error: &Error, receipt_id: Option<&str>) -> Result<(), Error> {
        if self.state == ServerState::Closed {
            return Err(Error::Closed);
        }
        self.write_error(
            error.error_message(),
            receipt_id,
            &[],
            error.to_string().as_bytes(),
        );
        self.close();
        Ok(())
    }

    /// Sends `RECEIPT` for `receipt_id`.
    pub fn send_receipt(&mut self, receipt_id: &str) -> Result<(), Error> {
        self.send_frame(&Frame::new(Command::Receipt).with_header("receipt-id", receipt_id))
    }

    /// Sends `ERROR` with a `message` header, a `receipt-id` when given and
    /// a text body, then closes.
    pub fn send_error(
        &mut self,
        message: &str,
        receipt_id: Option<&str>,
        body: &str,
    ) -> Result<(), Error> {
        let mut frame = Frame::new(Command::Error).with_header("message", message);
        if let Some(r) = receipt_id {
            frame = frame.with_header("receipt-id", r);
        }
        if !body.is_empty() {
            frame = frame
                .with_header("content-type", "text/plain")
                .with_body(body.to_owned());
        }
        self.send_frame(&frame)
    }
}
