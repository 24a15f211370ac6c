//! The client session: every state and transition of a STOMP client lives
//! in this module.
//!
//! ```text
//!   new() ──CONNECT──▶ Connecting ──CONNECTED──▶ Connected ──DISCONNECT+receipt──▶ Disconnecting
//!                          │                         │                                 │
//!                          └──── ERROR, bad input, heart-beat timeout ─────────────────┴──▶ Closed
//!                                                    └──DISCONNECT without receipt─────────▶ Closed
//!                                                                   Disconnecting ──RECEIPT──▶ Closed
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};

use crate::ack::{AckMode, Message};
use crate::decoder::{Decoded, FrameDecoder, Limits};
use crate::error::Error;
use crate::frame::{Command, Frame, encode_frame};
use crate::heartbeat::{HeartBeat, HeartBeatIntervals, HeartBeatTimer};
use crate::version::Version;

/// How a [`ClientSession`] connects.
#[derive(Clone)]
pub struct ClientConfig {
    /// The `host` header: the virtual host to connect to.
    pub host: String,
    /// The `login` header, if any.
    pub login: Option<String>,
    /// The `passcode` header, if any.
    pub passcode: Option<String>,
    /// The versions offered in `accept-version`. Offering only 1.0 sends no
    /// `accept-version` (nor `heart-beat`), as a 1.0 client would. Default:
    /// all three.
    pub versions: Vec<Version>,
    /// What this client can send and wants to receive. Default 10 s both
    /// ways.
    pub heart_beat: HeartBeat,
    /// How many receive intervals of silence mean the server is gone.
    /// Default 2.
    pub heart_beat_tolerance: u32,
    /// Open with a `STOMP` frame instead of `CONNECT` (1.2 servers only).
    pub use_stomp_command: bool,
    /// Extra headers for the `CONNECT` frame.
    pub connect_headers: Vec<(String, String)>,
    /// Limits on received frames.
    pub limits: Limits,
    /// Most receipts awaited at once. Default 1024.
    pub max_pending_receipts: usize,
    /// How long to wait for `CONNECTED`. Default 30 s.
    pub connect_timeout: Option<Duration>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("login", &self.login)
            .field("passcode", &self.passcode.as_ref().map(|_| "<redacted>"))
            .field("versions", &self.versions)
            .field("heart_beat", &self.heart_beat)
            .field("heart_beat_tolerance", &self.heart_beat_tolerance)
            .field("use_stomp_command", &self.use_stomp_command)
            .field("connect_headers", &self.connect_headers)
            .field("limits", &self.limits)
            .field("max_pending_receipts", &self.max_pending_receipts)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl ClientConfig {
    /// Defaults for connecting to virtual host `host`.
    pub fn new(host: impl Into<String>) -> ClientConfig {
        ClientConfig {
            host: host.into(),
            login: None,
            passcode: None,
            versions: Version::ALL.to_vec(),
            heart_beat: HeartBeat::every(Duration::from_secs(10)),
            heart_beat_tolerance: 2,
            use_stomp_command: false,
            connect_headers: Vec::new(),
            limits: Limits::default(),
            max_pending_receipts: 1024,
            connect_timeout: Some(Duration::from_secs(30)),
        }
    }

    /// The WebSocket subprotocols that carry the configured versions
    /// (`v12.stomp`, `v11.stomp`, `v10.stomp`), highest first, as a
    /// STOMP-over-WebSocket client offers them: the server picks the first
    /// it speaks, so the best common version wins.
    pub fn websocket_subprotocols(&self) -> Vec<&'static str> {
        let mut versions = self.versions.clone();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions.dedup();
        versions
            .into_iter()
            .map(Version::websocket_subprotocol)
            .collect()
    }
}

/// What the server's `CONNECTED` frame settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The negotiated version.
    pub version: Version,
    /// The `session` header, if any.
    pub session: Option<String>,
    /// The `server` header, if any.
    pub server: Option<String>,
    /// The heart-beat intervals now in force.
    pub heart_beat: HeartBeatIntervals,
}

/// Something that happened on a [`ClientSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server accepted the connection.
    Connected(Connected),
    /// A message from a subscription.
    Message(Message),
    /// The server processed the frame that asked for this receipt.
    Receipt {
        /// The `receipt-id`.
        receipt_id: String,
    },
    /// The server sent an `ERROR` frame; the session is closed.
    Error(Frame),
    /// The server confirmed `DISCONNECT`; the session is closed and the
    /// socket can be shut.
    Disconnected,
    /// The connection failed (malformed input, a silent server, an
    /// unexpected frame); the session is closed.
    Failed(Error),
}

/// Where a client session is. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState {
    /// `CONNECT` sent, waiting for `CONNECTED`.
    Connecting,
    /// Connected; commands may be sent.
    Connected,
    /// `DISCONNECT` sent, waiting for the `RECEIPT` with this id.
    Disconnecting {
        /// The receipt that ends the session.
        receipt: String,
    },
    /// Nothing more is sent or read.
    Closed,
}

/// A sans-IO STOMP client session: feed it received bytes, call commands,
/// write what [`ClientSession::poll_transmit`] hands out, and tell it the
/// time.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: ClientState,
    version: Version,
    decoder: FrameDecoder,
    out: BytesMut,
    events: VecDeque<ClientEvent>,
    timer: HeartBeatTimer,
    now: Instant,
    subscriptions: HashMap<String, AckMode>,
    transactions: HashSet<String>,
    receipts: HashSet<String>,
    next_id: u64,
    connect_deadline: Option<Instant>,
}

impl ClientSession {
    /// A session that has queued its `CONNECT` (or `STOMP`) frame. `now` is
    /// the current time; later times come through
    /// [`ClientSession::handle_timeout`].
    pub fn new(config: ClientConfig, now: Instant) -> Result<ClientSession, Error> {
        // Until CONNECTED says otherwise nothing is unescaped: an early ERROR
        // from a server of any version then still reads, never fails.
        let mut decoder = FrameDecoder::new(config.limits);
        decoder.set_version(Version::V1_0);
        let mut session = ClientSession {
            decoder,
            state: ClientState::Connecting,
            version: config
                .versions
                .iter()
                .copied()
                .max()
                .unwrap_or(Version::V1_0),
            out: BytesMut::new(),
            events: VecDeque::new(),
            timer: HeartBeatTimer::disarmed(),
            now,
            subscriptions: HashMap::new(),
            transactions: HashSet::new(),
            receipts: HashSet::new(),
            next_id: 0,
            connect_deadline: config.connect_timeout.and_then(|t| now.checked_add(t)),
            config,
        };
        session.write_connect()?;
        Ok(session)
    }

    fn write_connect(&mut self) -> Result<(), Error> {
        let c = &self.config;
        if c.versions.is_empty() {
            return Err(Error::InvalidLocalFrame {
                reason: "no version offered",
            });
        }
        let only_1_0 = c.versions.iter().all(|v| *v == Version::V1_0);
        let command = if c.use_stomp_command {
            Command::Stomp
        } else {
            Command::Connect
        };
        let accept = Version::list(&c.versions);
        let heart_beat = c.heart_beat.to_header_value();
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(6 + c.connect_headers.len());
        if !only_1_0 {
            headers.push(("accept-version", &accept));
        }
        headers.push(("host", &c.host));
        if let Some(login) = &c.login {
            headers.push(("login", login));
        }
        if let Some(passcode) = &c.passcode {
            headers.push(("passcode", passcode));
        }
        if !only_1_0 {
            headers.push(("heart-beat", &heart_beat));
        }
        headers.extend(
            c.connect_headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        encode_frame(
            command,
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &[],
            Version::V1_0,
            &mut self.out,
        )
    }

    /// Where the session is.
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// The negotiated version (the highest offered one until `CONNECTED`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the session has ended; once the last bytes from
    /// [`ClientSession::poll_transmit`] are written the socket can be shut.
    pub fn is_closed(&self) -> bool {
        self.state == ClientState::Closed
    }

    /// The heart-beat intervals in force (none before `CONNECTED`).
    pub fn heart_beat(&self) -> HeartBeatIntervals {
        self.timer.intervals()
    }

    // ---- bytes and time in, bytes out ----

    /// Hands received bytes to the session. They are decoded lazily by
    /// [`ClientSession::poll_event`]: call it until `None` after each
    /// `receive`, so that no more than one partial frame stays buffered.
    pub fn receive(&mut self, data: &[u8]) {
        if self.state == ClientState::Closed {
            return;
        }
        self.decoder.receive(data);
        self.timer.on_receive();
    }

    /// Appends the bytes to write to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        let n = self.out.len();
        out.extend_from_slice(&self.out);
        self.out.clear();
        n
    }

    /// Whether bytes are waiting in [`ClientSession::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// When [`ClientSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ClientState::Connected | ClientState::Disconnecting { .. } => self.timer.poll_timeout(),
            ClientState::Connecting => self.connect_deadline,
            ClientState::Closed => None,
        }
    }

    /// Tells the session the time: sends due heart-beats and notices a
    /// silent server or a missing `CONNECTED` (reported as
    /// [`ClientEvent::Failed`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.state == ClientState::Connecting && self.connect_deadline.is_some_and(|d| now >= d)
        {
            self.fail(Error::ConnectTimeout);
            return;
        }
        if !matches!(
            self.state,
            ClientState::Connected | ClientState::Disconnecting { .. }
        ) {
            return;
        }
        let tick = self.timer.handle_timeout(now);
        if tick.peer_silent {
            self.fail(Error::HeartBeatTimeout);
            return;
        }
        if tick.send_heart_beat {
            self.out.put_u8(b'\n');
        }
    }

    /// The next event, decoding received bytes as needed.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        while self.state != ClientState::Closed {
            match self.decoder.decode() {
                Ok(None) => return None,
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(Some(Decoded::Frame(frame))) => {
                    if let Some(event) = self.on_frame(frame) {
                        return Some(event);
                    }
                }
                Err(e) => {
                    self.fail(e);
                    return self.events.pop_front();
                }
            }
        }
        None
    }

    fn fail(&mut self, error: Error) {
        self.close();
        self.events.push_back(ClientEvent::Failed(error));
    }

    fn close(&mut self) {
        self.state = ClientState::Closed;
        self.timer.disarm();
    }

    /// The transition table for received frames.
    fn on_frame(&mut self, frame: Frame) -> Option<ClientEvent> {
        match (&self.state, frame.command()) {
            (ClientState::Connecting, Command::Connected) => match self.on_connected(&frame) {
                Ok(connected) => Some(ClientEvent::Connected(connected)),
                Err(e) => {
                    self.fail(e);
                    self.events.pop_front()
                }
            },
            (_, Command::Error) => {
                self.close();
                Some(ClientEvent::Error(frame))
            }
            (ClientState::Connected | ClientState::Disconnecting { .. }, Command::Message) => {
                Some(ClientEvent::Message(Message::new(frame)))
            }
            (ClientState::Connected | ClientState::Disconnecting { .. }, Command::Receipt) => {
                let Some(id) = frame.header("receipt-id") else {
                    self.fail(Error::MissingHeader {
                        command: Command::Receipt,
                        header: "receipt-id",
                    });
                    return self.events.pop_front();
                };
                self.receipts.remove(id);
                if matches!(&self.state, ClientState::Disconnecting { receipt } if receipt == id) {
                    self.close();
                    return Some(ClientEvent::Disconnected);
                }
                Some(ClientEvent::Receipt {
                    receipt_id: id.to_owned(),
                })
            }
            (_, command) => {
                self.fail(Error::UnexpectedFrame { command });
                self.events.pop_front()
            }
        }
    }

    fn on_connected(&mut self, frame: &Frame) -> Result<Connected, Error> {
        let version = match frame.header("version") {
            None => Version::V1_0,
            Some(v) => Version::parse(v).ok_or(Error::NoCommonVersion)?,
        };
        if !self.config.versions.contains(&version) {
            return Err(Error::NoCommonVersion);
        }
        let server_beat = match frame.header("heart-beat") {
            None => HeartBeat::NONE,
            Some(v) => HeartBeat::parse(v).ok_or(Error::InvalidHeader {
                header: "heart-beat",
            })?,
        };
        let intervals = if version == Version::V1_0 {
            HeartBeatIntervals::default()
        } else {
            self.config.heart_beat.negotiate(server_beat)
        };
        self.version = version;
        self.decoder.set_version(version);
        // Data has arrived since `now`, so the first tick resets the receive
        // deadline rather than firing it.
        self.timer
            .arm(intervals, self.config.heart_beat_tolerance, self.now);
        self.timer.on_receive();
        self.state = ClientState::Connected;
        Ok(Connected {
            version,
            session: frame.header("session").map(str::to_owned),
            server: frame.header("server").map(str::to_owned),
            heart_beat: intervals,
        })
    }

    // ---- commands ----

    fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    /// Sends `SEND` to `destination` with extra `headers` (such as
    /// `content-type`, `transaction` or `receipt`) and `body`.
    pub fn send(
        &mut self,
        destination: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), Error> {
        let mut all = Vec::with_capacity(headers.len() + 1);
        all.push(("destination", destination));
        all.extend_from_slice(headers);
        self.transmit(Command::Send, &all, body)
    }

    /// [`ClientSession::send`] with a `receipt` header of a fresh id, which
    /// it returns: the server's `RECEIPT` with that id
    /// ([`ClientEvent::Receipt`]) says it processed the frame. Counts
    /// against [`ClientConfig::max_pending_receipts`].
    pub fn send_with_receipt(
        &mut self,
        destination: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<String, Error> {
        let receipt = self.fresh_id("receipt");
        let mut all = Vec::with_capacity(headers.len() + 1);
        all.extend_from_slice(headers);
        all.push(("receipt", receipt.as_str()));
        self.send(destination, &all, body)?;
        Ok(receipt)
    }

    /// Subscribes to `destination`; returns the new subscription's id.
    pub fn subscribe(&mut self, destination: &str, ack: AckMode) -> Result<String, Error> {
        self.subscribe_with(destination, ack, &[])
    }

    /// Subscribes with extra headers (such as `receipt` or broker specific
    /// ones); returns the new subscription's id.
    pub fn subscribe_with(
        &mut self,
        destination: &str,
        ack: AckMode,
        headers: &[(&str, &str)],
    ) -> Result<String, Error> {
        let id = self.fresh_id("sub");
        let mut all = vec![("id", id.as_str()), ("destination", destination)];
        if ack != AckMode::Auto {
            all.push(("ack", ack.as_str()));
        }
        all.extend_from_slice(headers);
        self.transmit(Command::Subscribe, &all, &[])?;
        Ok(id)
    }

    /// Ends subscription `id`, with extra headers (such as `receipt`).
    pub fn unsubscribe(&mut self, id: &str, headers: &[(&str, &str)]) -> Result<(), Error> {
        let mut all = vec![("id", id)];
        all.extend_from_slice(headers);
        self.transmit(Command::Unsubscribe, &all, &[])
    }

    /// Acknowledges `message`, in `transaction` if given, with the headers
    /// the negotiated version uses (`id` in 1.2; `message-id` and
    /// `subscription` before).
    pub fn ack(&mut self, message: &Message, transaction: Option<&str>) -> Result<(), Error> {
        self.ack_or_nack(Command::Ack, message, transaction, &[])
    }

    /// Refuses `message` (STOMP 1.1+), in `transaction` if given.
    pub fn nack(&mut self, message: &Message, transaction: Option<&str>) -> Result<(), Error> {
        self.ack_or_nack(Command::Nack, message, transaction, &[])
    }

    /// [`ClientSession::ack`] or [`ClientSession::nack`] with extra headers
    /// (such as `receipt`).
    pub fn ack_or_nack(
        &mut self,
        command: Command,
        message: &Message,
        transaction: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<(), Error> {
        if !matches!(command, Command::Ack | Command::Nack) {
            return Err(Error::InvalidLocalFrame {
                reason: "not ACK or NACK",
            });
        }
        let missing = Error::InvalidLocalFrame {
            reason: "message lacks the headers to acknowledge it",
        };
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(3 + headers.len());
        match self.version {
            Version::V1_2 => all.push(("id", message.ack_id().ok_or(missing)?)),
            Version::V1_1 => {
                all.push(("message-id", message.message_id().ok_or(missing.clone())?));
                all.push(("subscription", message.subscription().ok_or(missing)?));
            }
            Version::V1_0 => {
                all.push(("message-id", message.message_id().ok_or(missing)?));
                if let Some(sub) = message.subscription() {
                    all.push(("subscription", sub));
                }
            }
        }
        if let Some(tx) = transaction {
            all.push(("transaction", tx));
        }
        all.extend_from_slice(headers);
        self.transmit(command, &all, &[])
    }

    /// Begins a transaction; returns its id.
    pub fn begin(&mut self) -> Result<String, Error> {
        let id = self.fresh_id("tx");
        self.transmit(Command::Begin, &[("transaction", &id)], &[])?;
        Ok(id)
    }

    /// Commits transaction `id`.
    pub fn commit(&mut self, id: &str) -> Result<(), Error> {
        self.transmit(Command::Commit, &[("transaction", id)], &[])
    }

    /// Aborts transaction `id`.
    pub fn abort(&mut self, id: &str) -> Result<(), Error> {
        self.transmit(Command::Abort, &[("transaction", id)], &[])
    }

    /// Sends `DISCONNECT` with a receipt; the session ends with
    /// [`ClientEvent::Disconnected`] when the receipt comes back. Returns
    /// the receipt id.
    pub fn disconnect(&mut self) -> Result<String, Error> {
        let receipt = self.fresh_id("disconnect");
        self.transmit(Command::Disconnect, &[("receipt", &receipt)], &[])?;
        Ok(receipt)
    }

    /// Sends any client frame (except `CONNECT`/`STOMP`), keeping the
    /// session's books (subscriptions, transactions, receipts, the end of
    /// the session on `DISCONNECT`).
    pub fn send_frame(&mut self, frame: &Frame) -> Result<(), Error> {
        let headers: Vec<(&str, &str)> = frame
            .headers()
            .iter()
            .map(|h| (h.name(), h.value()))
            .collect();
        self.transmit(frame.command(), &headers, frame.body())
    }

    /// Checks, encodes and then books one outgoing frame, so that a frame
    /// that cannot be encoded leaves no trace.
    fn transmit(
        &mut self,
        command: Command,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), Error> {
        match self.state {
            ClientState::Connected => {}
            ClientState::Connecting => return Err(Error::NotConnected),
            ClientState::Disconnecting { .. } | ClientState::Closed => return Err(Error::Closed),
        }
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let require = |name: &'static str, reason: &'static str| {
            get(name).ok_or(Error::InvalidLocalFrame { reason })
        };
        match command {
            Command::Connect | Command::Stomp => return Err(Error::WrongRole { command }),
            c if c.is_server_command() => return Err(Error::WrongRole { command }),
            Command::Nack if self.version == Version::V1_0 => {
                return Err(Error::UnsupportedByVersion { what: "NACK" });
            }
            Command::Send => {
                require("destination", "SEND needs a destination")?;
            }
            Command::Subscribe => {
                require("destination", "SUBSCRIBE needs a destination")?;
                let id = require("id", "SUBSCRIBE needs an id")?;
                if self.subscriptions.contains_key(id) {
                    return Err(Error::InvalidLocalFrame {
                        reason: "subscription id in use",
                    });
                }
                if get("ack").is_some_and(|a| AckMode::parse(a).is_none()) {
                    return Err(Error::InvalidLocalFrame {
                        reason: "unknown ack mode",
                    });
                }
            }
            Command::Unsubscribe => {
                let id = require("id", "UNSUBSCRIBE needs an id")?;
                if !self.subscriptions.contains_key(id) {
                    return Err(Error::NoSuchSubscription);
                }
            }
            Command::Begin => {
                let tx = require("transaction", "BEGIN needs a transaction")?;
                if self.transactions.contains(tx) {
                    return Err(Error::InvalidLocalFrame {
                        reason: "transaction id in use",
                    });
                }
            }
            Command::Commit | Command::Abort => {
                let tx = require("transaction", "COMMIT and ABORT need a transaction")?;
                if !self.transactions.contains(tx) {
                    return Err(Error::NoSuchTransaction);
                }
            }
            _ => {}
        }
        if matches!(command, Command::Send | Command::Ack | Command::Nack) {
            if let Some(tx) = get("transaction") {
                if !self.transactions.contains(tx) {
                    return Err(Error::NoSuchTransaction);
                }
            }
        }
        let receipt = get("receipt");
        if receipt.is_some() && self.receipts.len() >= self.config.max_pending_receipts {
            return Err(Error::TooManyReceipts);
        }
        let body = if command.allows_body() { body } else { &[] };
        encode_frame(
            command,
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            body,
            self.version,
            &mut self.out,
        )?;
        // Booked only once the frame is on its way.
        if let Some(r) = receipt {
            self.receipts.insert(r.to_owned());
        }
        match command {
            Command::Subscribe => {
                let ack = get("ack").and_then(AckMode::parse).unwrap_or_default();
                self.subscriptions
                    .insert(get("id").unwrap_or_default().to_owned(), ack);
            }
            Command::Unsubscribe => {
                self.subscriptions.remove(get("id").unwrap_or_default());
            }
            Command::Begin => {
                self.transactions
                    .insert(get("transaction").unwrap_or_default().to_owned());
            }
            Command::Commit | Command::Abort => {
                self.transactions
                    .remove(get("transaction").unwrap_or_default());
            }
            Command::Disconnect => {
                self.state = match receipt {
                    Some(r) => ClientState::Disconnecting {
                        receipt: r.to_owned(),
                    },
                    None => {
                        self.timer.disarm();
                        ClientState::Closed
                    }
                };
            }
            _ => {}
        }
        Ok(())
    }

    /// The ack mode of local subscription `id`.
    pub fn subscription(&self, id: &str) -> Option<AckMode> {
        self.subscriptions.get(id).copied()
    }

    /// Receipts asked for and not yet received.
    pub fn pending_receipts(&self) -> usize {
        self.receipts.len()
    }
}
