//! The server side of Engine.IO sessions, transport-agnostic and sans-IO:
//! the handshake, the heartbeat, both transports' packet flow (long-polling
//! and WebSocket) and the upgrade from one to the other, as the reference
//! server (npm `engine.io` 6) runs them.
//!
//! The machine speaks Engine.IO, not HTTP: its inputs are a handshake, a
//! poll, a POST body, a WebSocket upgrade or message, a connection gone,
//! the time and the application's commands; its outputs are
//! [`ServerTransmit`]s (packets for a poll, a refusal with the reference's
//! error code, WebSocket messages and closes, all by the caller's
//! connection id `C`), [`ServerEvent`]s and the next deadline. An HTTP
//! binding (duplex-polling's `EngineIoServer`) parses the requests, keeps
//! each request's response encoding and headers, and frames the answers.
//!
//! | input | what happens |
//! |---|---|
//! | [`handle_handshake`](Server::handle_handshake) | a session with a fresh `sid`; polling: the `open` packet answers the request; WebSocket: accepted, `open` is the first message. Too many sessions: refused |
//! | [`handle_poll`](Server::handle_poll) | queued packets at once, or the poll is parked until there are some (a ping after `pingInterval`); a second concurrent poll: refused and the session closed (the parked one gets `1`) |
//! | [`handle_post`](Server::handle_post) | each packet handled; `ok`. Over `max_payload`: 413 and the session closed; undecodable: 400 and closed |
//! | [`handle_upgrade`](Server::handle_upgrade) | accepted; `2probe` → `3probe`, a parked poll gets `6`, `5` switches the session to the WebSocket |
//! | [`handle_message`](Server::handle_message) | a packet on a WebSocket |
//! | [`handle_closed`](Server::handle_closed) | a poll aborted (the session ends, "transport error"), a WebSocket gone ("transport close"), an upgrade dropped |
//! | [`handle_timeout`](Server::handle_timeout) | pings, ping timeouts, upgrade timeouts and noops, close timeouts |
//! | [`handle_sent`](Server::handle_sent) | the caller wrote messages of a WebSocket: it may be [`writable`](Server::writable) again |
//! | [`close_all`](Server::close_all) | every session closed at once, as the reference's `server.close()` (a server shutting down) |
//!
//! Time is decided here and nowhere else: every input first runs the timers
//! that are due by the time it carries, each at its own deadline, so a
//! late `handle_timeout` (or none at all) never lets a pong that arrives
//! after the ping timeout save its session, and a deadline computed from a
//! timer (the pong wait after a ping) never inherits the caller's lateness.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use duplex_engineio::server::{Server, ServerConfig, ServerEvent, ServerTransmit};
//! use duplex_engineio::{Packet, ProtocolVersion, TransportKind, WsMessage};
//!
//! let mut server = Server::<u64>::new(ServerConfig::default());
//! let t0 = Instant::now();
//! server.handle_handshake(1, TransportKind::Polling, ProtocolVersion::V4, t0);
//! let Some(ServerTransmit::Packets { request: 1, packets, .. }) = server.poll_transmit() else { panic!() };
//! assert!(matches!(packets[..], [Packet::Open(_)]));
//! let Some(ServerEvent::Opened { session, .. }) = server.poll_event() else { panic!() };
//!
//! // The client polls; the poll is parked until the application sends.
//! server.handle_poll(session.as_str(), 2, t0);
//! assert!(server.poll_transmit().is_none());
//! server.send(session.as_str(), WsMessage::Text("hello".into()), t0).unwrap();
//! let Some(ServerTransmit::Packets { request: 2, packets, .. }) = server.poll_transmit() else { panic!() };
//! assert_eq!(packets, [Packet::message("hello")]);
//! assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(25)));
//! ```

mod encoded;
mod queue;

use std::collections::VecDeque;
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngCore, SeedableRng, rngs::StdRng};

use self::encoded::EncodedCache;
pub use self::queue::QueueLimits;
use self::queue::SendQueue;
use crate::{
    Error, Heartbeat, HeartbeatConfig, HeartbeatEvent, Limits, OpenPacket, Packet, PayloadFormat,
    ProtocolVersion, ServerErrorCode, TransportKind, Upgrade, UpgradeConfig, UpgradeEvent,
    UpgradeState, WsMessage, decode_payload, jsonp,
};
use duplex_core::Deadlines;
pub use duplex_core::SessionId;

/// Most packets in one POST body.
const MAX_PACKETS_PER_PAYLOAD: usize = 10_000;

/// Most deadlines of one session run one by one at their own instants in
/// one call; past it the session is told the current time at once (bounds
/// the work when a caller is very late and a timer repeats, as the upgrade
/// noop does).
const MAX_TIMER_STEPS: usize = 64;

/// Settings of an Engine.IO server, named and defaulted as the reference
/// server's options.
pub struct ServerConfig {
    /// `pingInterval`: time between pings. Default 25 s.
    pub ping_interval: Duration,
    /// `pingTimeout`: time to wait for the pong. Default 20 s.
    pub ping_timeout: Duration,
    /// `upgradeTimeout`: time for a client to finish an upgrade. Default 10 s.
    pub upgrade_timeout: Duration,
    /// `maxHttpBufferSize`, announced as `maxPayload`: the largest POST body
    /// and WebSocket message in bytes. Default 1,000,000.
    pub max_payload: usize,
    /// Announce and accept upgrades from polling to WebSocket. Default on.
    pub allow_upgrades: bool,
    /// `allowEIO3`: accept protocol v3 clients (Socket.IO 2). Default off.
    pub allow_eio3: bool,
    /// Most sessions at once; handshakes beyond are refused. Default 65,536.
    pub max_sessions: usize,
    /// After the application closes a polling session with no poll waiting,
    /// how long the `1` waits for the next poll. Default 30 s, as the
    /// reference's `closeTimeout`.
    pub close_timeout: Duration,
    /// Bounds of each session's send queue.
    pub queue: QueueLimits,
    /// The source of session ids. Default: seeded from the OS.
    pub rng: Box<dyn RngCore + Send>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            allow_upgrades: true,
            allow_eio3: false,
            max_sessions: 65_536,
            close_timeout: Duration::from_secs(30),
            queue: QueueLimits::default(),
            rng: Box::new(StdRng::from_os_rng()),
        }
    }
}

impl ServerConfig {
    /// Replaces the random source, e.g. with a seeded one in tests.
    pub fn with_rng(mut self, rng: impl RngCore + Send + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("allow_eio3", &self.allow_eio3)
            .field("max_sessions", &self.max_sessions)
            .field("close_timeout", &self.close_timeout)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

/// Why a session ended, as reported in [`ServerEvent::Closed`]; the
/// reference server's reason strings in [`CloseReason::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The application closed it.
    Application,
    /// The client closed it: a `close` packet, or its WebSocket closed.
    Client,
    /// The transport failed: an aborted poll, a second concurrent poll, a
    /// body the transport cannot carry.
    TransportError,
    /// The client sent a packet that does not parse.
    ParseError,
    /// No pong (v4) or ping (v3) in time.
    PingTimeout,
    /// The send queue overflowed with [`QueueLimits::close_on_overflow`].
    QueueOverflow,
    /// A POST body or WebSocket message above `max_payload`.
    PayloadTooLarge,
}

impl CloseReason {
    /// The reference server's reason (`"transport close"`, `"ping timeout"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Application => "forced close",
            CloseReason::Client => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::ParseError => "parse error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::QueueOverflow => "queue overflow",
            CloseReason::PayloadTooLarge => "payload too large",
        }
    }
}

/// How a request is refused; the binding renders the HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The reference's `{"code":N,"message":..}` answer (400 or 403).
    Code(ServerErrorCode),
    /// The configured number of sessions is reached (503).
    TooManySessions,
    /// A body above `max_payload` (413, empty body).
    PayloadTooLarge,
}

/// A POST body as the client sent it, read up to `max_payload + 1` bytes.
#[derive(Clone, Debug)]
pub enum PostBody {
    /// A polling payload; `octet_stream` if its `Content-Type` was
    /// `application/octet-stream` (a v3 binary payload).
    Payload {
        /// The body.
        body: Bytes,
        /// Whether the body was sent as `application/octet-stream`.
        octet_stream: bool,
    },
    /// A JSONP form body (`d=<payload>`).
    Jsonp(Bytes),
}

impl PostBody {
    fn len(&self) -> usize {
        match self {
            PostBody::Payload { body, .. } | PostBody::Jsonp(body) => body.len(),
        }
    }
}

/// What the server tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent<C> {
    /// A handshake succeeded.
    Opened {
        /// The new session.
        session: SessionId,
        /// The request or WebSocket that opened it.
        connection: C,
        /// The transport it opened on.
        transport: TransportKind,
        /// The client's protocol version.
        version: ProtocolVersion,
    },
    /// A message from the client.
    Message {
        /// The session.
        session: SessionId,
        /// The message, text or binary.
        message: WsMessage,
    },
    /// The session ended; once per session, also when the application
    /// closed it.
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
}

/// What the caller must write, by its connection id.
///
/// Every request handed in ends in exactly one of `Packets`,
/// `PostAccepted`, `Refuse` or `AcceptWebSocket` (a parked poll produces
/// nothing until its answer); an accepted WebSocket then carries `Send`s and
/// ends with a `CloseWebSocket` or the caller's
/// [`handle_closed`](Server::handle_closed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerTransmit<C> {
    /// Answer the poll (or the polling handshake) with these packets, as a
    /// payload of `version` in the format the request asked for.
    Packets {
        /// The request.
        request: C,
        /// The packets, oldest first.
        packets: Vec<Packet>,
        /// The session's protocol version.
        version: ProtocolVersion,
    },
    /// Answer the POST: its packets were taken (`ok`).
    PostAccepted {
        /// The request.
        request: C,
    },
    /// Refuse the request.
    Refuse {
        /// The request.
        request: C,
        /// How.
        refusal: Refusal,
    },
    /// Complete the WebSocket handshake; the id names the connection now.
    AcceptWebSocket {
        /// The request, now the connection.
        connection: C,
    },
    /// Send one message on a WebSocket.
    Send {
        /// The connection.
        connection: C,
        /// One packet as one message.
        message: WsMessage,
    },
    /// Close a WebSocket with this code; the server forgot it.
    CloseWebSocket {
        /// The connection.
        connection: C,
        /// The close code (1000, 1002 on a parse error, 1009 when too large).
        code: u16,
    },
}

/// What a connection id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A parked poll.
    Poll,
    /// The WebSocket carrying the session.
    WebSocket,
    /// A WebSocket upgrading the session (not yet switched).
    Upgrade,
}

#[derive(Clone, Debug)]
struct Conn {
    session: SessionId,
    role: Role,
    /// WebSocket messages handed out as [`ServerTransmit::Send`] that the
    /// caller has not reported written yet ([`Server::handle_sent`]).
    unsent: usize,
}

impl Conn {
    fn new(session: SessionId, role: Role) -> Self {
        Self {
            session,
            role,
            unsent: 0,
        }
    }
}

/// What carries packets to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receiver<C> {
    Poll(C),
    WebSocket(C),
}

impl<C: Copy> Receiver<C> {
    fn connection(self) -> C {
        match self {
            Receiver::Poll(c) | Receiver::WebSocket(c) => c,
        }
    }
}

#[derive(Debug)]
struct Session<C> {
    /// False once the application saw it closed; the `1` may still be owed
    /// to the next poll.
    open: bool,
    receiver: Option<Receiver<C>>,
    queue: SendQueue,
    version: ProtocolVersion,
    heartbeat: Heartbeat,
    /// The WebSocket being upgraded to, and the upgrade's progress.
    upgrade: Option<(C, Upgrade)>,
    /// A closing polling session: when to give up waiting for a poll.
    close_deadline: Option<Instant>,
    /// [`Server::probe`] asked for a sign of life not seen yet.
    probed: bool,
    /// Messages and bytes sent at once (not queued) since flush number
    /// `.0`: they count against the queue's bounds until the next flush,
    /// as they did when every message waited in the queue for it.
    direct: (u64, usize, usize),
}

impl<C: Copy> Session<C> {
    fn websocket(&self) -> Option<C> {
        match self.receiver {
            Some(Receiver::WebSocket(c)) => Some(c),
            _ => None,
        }
    }

    /// Messages and bytes sent at once since flush number `flushes`.
    fn held(&self, flushes: u64) -> (usize, usize) {
        match self.direct {
            (at, messages, bytes) if at == flushes => (messages, bytes),
            _ => (0, 0),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [
            self.heartbeat.poll_timeout(),
            self.upgrade.as_ref().and_then(|(_, u)| u.poll_timeout()),
            self.close_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The tables looked up on every packet: sessions by id, connections by
/// request id (ids this server or its caller generated).
pub(crate) use duplex_core::FastMap;

/// A sans-IO Engine.IO server: every session of one mount point, keyed by
/// the caller's connection ids `C` (request ids; the id of an accepted
/// WebSocket request names its connection).
pub struct Server<C> {
    config: ServerConfig,
    /// Boxed: a `Session` is some 250 bytes, and a hash table keeps up to
    /// twice as many slots as entries, so inline it cost an idle session
    /// some 300 bytes more than a box (issue #19).
    sessions: FastMap<SessionId, Box<Session<C>>>,
    connections: FastMap<C, Conn>,
    deadlines: Deadlines<SessionId>,
    dirty: Vec<SessionId>,
    transmits: VecDeque<ServerTransmit<C>>,
    events: VecDeque<ServerEvent<C>>,
    /// Probed sessions heard from since ([`Server::poll_alive`]): at most
    /// one entry per session, so bounded by `max_sessions`.
    alive: VecDeque<SessionId>,
    now: Option<Instant>,
    /// A broadcast's WebSocket message, made once for all its recipients.
    encoded: EncodedCache,
    /// Flushes so far: a session's messages sent at once count against its
    /// queue's bounds until the next one ([`Session::held`]).
    flushes: u64,
}

impl<C> std::fmt::Debug for Server<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("sessions", &self.sessions.len())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl<C: Copy + Eq + Hash> Server<C> {
    /// A server with these settings and no sessions.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            sessions: FastMap::default(),
            connections: FastMap::default(),
            deadlines: Deadlines::default(),
            dirty: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            alive: VecDeque::new(),
            now: None,
            encoded: EncodedCache::default(),
            flushes: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Sessions held (open ones and closing ones whose `1` is still owed).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Polls and WebSockets held; zero once every session is gone.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Whether handshakes in `version` are accepted (v3 only with
    /// `allow_eio3`).
    pub fn accepts(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::V4 || self.config.allow_eio3
    }

    /// Whether a session `sid` is held (open or closing).
    pub fn contains(&self, sid: &str) -> bool {
        self.sessions.contains_key(sid)
    }

    /// Whether `sid` is open.
    pub fn is_open(&self, sid: &str) -> bool {
        self.sessions.get(sid).is_some_and(|s| s.open)
    }

    /// The transport carrying `sid` now.
    pub fn transport(&self, sid: &str) -> Option<TransportKind> {
        let s = self.sessions.get(sid)?;
        Some(match s.websocket() {
            Some(_) => TransportKind::WebSocket,
            None => TransportKind::Polling,
        })
    }

    /// The protocol version of `sid`.
    pub fn version(&self, sid: &str) -> Option<ProtocolVersion> {
        self.sessions.get(sid).map(|s| s.version)
    }

    /// Whether `sid`'s transport would take a packet now, without waiting
    /// (the reference's `transport.writable`, which its Socket.IO server
    /// reads to drop a volatile packet): polling, a GET is parked and
    /// nothing is queued for it yet; WebSocket, every message handed out
    /// was reported written ([`handle_sent`](Self::handle_sent)) and
    /// nothing is queued. False for a session that is not open.
    pub fn writable(&self, sid: &str) -> bool {
        let Some(s) = self.sessions.get(sid).filter(|s| s.open) else {
            return false;
        };
        s.queue.is_empty()
            && match s.receiver {
                Some(Receiver::Poll(_)) => true,
                Some(Receiver::WebSocket(c)) => {
                    self.connections.get(&c).is_some_and(|c| c.unsent == 0)
                }
                None => false,
            }
    }

    /// How many more messages `sid` can queue before `send` overflows
    /// (until the next flush: see [`QueueLimits`]).
    pub fn send_capacity(&self, sid: &str) -> Option<usize> {
        self.sessions
            .get(sid)
            .filter(|s| s.open)
            .map(|s| s.queue.free_slots().saturating_sub(s.held(self.flushes).0))
    }

    // ---- inputs ------------------------------------------------------------

    /// A handshake (a request without `sid`) on `transport`. The caller
    /// has checked that the request's shape fits the transport (a GET for
    /// polling, an upgrade request for WebSocket).
    pub fn handle_handshake(
        &mut self,
        connection: C,
        transport: TransportKind,
        version: ProtocolVersion,
        now: Instant,
    ) {
        self.advance(now);
        self.handshake(connection, transport, version, now);
        self.flush();
    }

    /// A polling GET for `sid`.
    pub fn handle_poll(&mut self, sid: &str, request: C, now: Instant) {
        self.advance(now);
        if let Some(sid) = self.polling_session(sid, request) {
            self.on_poll(sid, request);
        }
        self.flush();
    }

    /// A polling POST for `sid`.
    pub fn handle_post(&mut self, sid: &str, request: C, body: PostBody, now: Instant) {
        self.advance(now);
        if let Some(sid) = self.polling_session(sid, request) {
            self.on_post(sid, request, body, now);
        }
        self.flush();
    }

    /// A WebSocket upgrade request naming `sid` (the upgrade from polling).
    pub fn handle_upgrade(&mut self, sid: &str, connection: C, now: Instant) {
        self.advance(now);
        match self.sessions.get_key_value(sid) {
            None => self.refuse(connection, Refusal::Code(ServerErrorCode::UnknownSid)),
            Some((sid, _)) => {
                let sid = sid.clone();
                self.on_upgrade_request(sid, connection, now);
            }
        }
        self.flush();
    }

    /// A message arrived on a WebSocket this server accepted.
    pub fn handle_message(&mut self, connection: C, message: WsMessage, now: Instant) {
        self.advance(now);
        self.on_message(connection, message, now);
        self.flush();
    }

    /// A request went away before its answer, or a WebSocket closed or
    /// failed.
    pub fn handle_closed(&mut self, connection: C, now: Instant) {
        self.advance(now);
        if let Some(conn) = self.connections.remove(&connection) {
            match conn.role {
                Role::Poll => {
                    if let Some(s) = self.sessions.get_mut(&conn.session) {
                        if s.receiver.map(Receiver::connection) == Some(connection) {
                            s.receiver = None;
                        }
                    }
                    // As the reference: "poll connection closed prematurely".
                    self.close_session(&conn.session, CloseReason::TransportError);
                }
                Role::WebSocket => self.close_session(&conn.session, CloseReason::Client),
                Role::Upgrade => {
                    if let Some(s) = self.sessions.get_mut(&conn.session) {
                        if s.upgrade.as_ref().is_some_and(|(c, _)| *c == connection) {
                            s.upgrade = None;
                        }
                    }
                    self.reschedule(&conn.session);
                }
            }
        }
        self.flush();
    }

    /// The caller wrote `messages` of the [`ServerTransmit::Send`]s of
    /// `connection` (in order, all of them once its write buffer is
    /// flushed): the reference's WebSocket transport is writable again
    /// when the last message handed to it is written. Only
    /// [`writable`](Self::writable) reads it; a caller that never reports
    /// leaves its WebSockets unwritable once they sent something.
    pub fn handle_sent(&mut self, connection: C, messages: usize) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.unsent = c.unsent.saturating_sub(messages);
        }
    }

    /// Runs every timer due by `now`: pings, ping timeouts, upgrade
    /// timeouts and noops, close timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.flush();
    }

    // ---- outputs -----------------------------------------------------------

    /// The next thing to write.
    pub fn poll_transmit(&mut self) -> Option<ServerTransmit<C>> {
        self.flush();
        let transmit = self.transmits.pop_front();
        if transmit.is_none() {
            // Everything is handed out: a broadcast's message is not kept
            // past its burst.
            self.encoded.clear();
        }
        transmit
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ServerEvent<C>> {
        self.events.pop_front()
    }

    /// The next session that showed life after a [`probe`](Self::probe):
    /// a packet arrived from its client (a v4 pong, a v3 ping, a
    /// message). Once per probe.
    pub fn poll_alive(&mut self) -> Option<SessionId> {
        self.alive.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    // ---- commands ----------------------------------------------------------

    /// Queues a message for `sid`; it goes out with the next poll (or at
    /// once on a WebSocket or to a parked poll).
    ///
    /// Fails with [`Error::NoSuchSession`] if the session is not open, and
    /// with [`Error::QueueFull`] when its queue is full (the session is then
    /// also closed under [`QueueLimits::close_on_overflow`]).
    pub fn send(&mut self, sid: &str, message: WsMessage, now: Instant) -> Result<(), Error> {
        // One message is a group of one: the same checks, the same
        // queueing, without a vector to carry it (one allocation fewer on
        // every message the server sends).
        self.advance(now);
        let bytes = ws_len(&message);
        self.queue_all(sid, 1, bytes, std::iter::once(message))
    }

    /// Queues several messages that only make sense together (a Socket.IO
    /// binary packet: its text, then each attachment), all or none: a queue
    /// with room for only some of them refuses them all, so the client never
    /// gets a packet without its attachments.
    pub fn send_all(
        &mut self,
        sid: &str,
        messages: Vec<WsMessage>,
        now: Instant,
    ) -> Result<(), Error> {
        self.advance(now);
        let bytes = messages.iter().map(ws_len).sum();
        self.queue_all(sid, messages.len(), bytes, messages)
    }

    /// Asks whether the client of `sid` is still there, by the rule the
    /// heartbeat judges it with anyway: v4, one extra `ping` goes out now
    /// and the session closes with [`CloseReason::PingTimeout`] unless a
    /// packet arrives within `ping_timeout`; v3 (the client pings),
    /// nothing is sent and its next ping or the usual timeout decides. A
    /// packet received after the probe is reported once by
    /// [`poll_alive`](Self::poll_alive). A session already probed and not
    /// heard from since is left as it is.
    ///
    /// Fails with [`Error::NoSuchSession`] if the session is not open.
    pub fn probe(&mut self, sid: &str, now: Instant) -> Result<(), Error> {
        let (sid, _) = self.open_session(sid, now)?;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return Err(Error::NoSuchSession);
        };
        if !std::mem::replace(&mut s.probed, true) {
            s.heartbeat.probe(now);
            self.drain_heartbeat(&sid);
            self.reschedule(&sid);
            self.flush();
        }
        Ok(())
    }

    /// Closes `sid`: what is queued goes out, then the `close` packet (to
    /// the parked poll, or the next one within `close_timeout`); a WebSocket
    /// is closed after the queue. [`ServerEvent::Closed`] follows at once.
    pub fn close(&mut self, sid: &str, now: Instant) -> Result<(), Error> {
        let (sid, s) = self.open_session(sid, now)?;
        if s.receiver.is_some() {
            self.close_session(&sid, CloseReason::Application);
        } else if let Some(s) = self.sessions.get_mut(&sid) {
            s.open = false;
            s.heartbeat.stop();
            s.close_deadline = Some(now + self.config.close_timeout);
            if let Some((conn, _)) = s.upgrade.take() {
                if self.connections.remove(&conn).is_some() {
                    self.close_websocket(conn, 1000);
                }
            }
            self.events.push_back(ServerEvent::Closed {
                session: sid.clone(),
                reason: CloseReason::Application,
            });
            self.reschedule(&sid);
        }
        self.flush();
        Ok(())
    }

    /// Closes every session at once, as the reference's `server.close()`
    /// (every socket's `close(discard)`) for a server shutting down;
    /// returns how many were open. What is queued is dropped; a parked
    /// poll gets the `close` packet; a session without one is forgotten
    /// (its next poll gets the unknown-session error); a WebSocket, and
    /// one being upgraded to, is closed with 1000. Either way the client
    /// sees its transport close and reconnects. [`ServerEvent::Closed`]
    /// (`forced close`) follows for each open session. Sessions whose
    /// `close` waits for a poll are forgotten too. New handshakes are
    /// still accepted: refusing them is the listener's business.
    pub fn close_all(&mut self, now: Instant) -> usize {
        self.advance(now);
        let mut sids: Vec<SessionId> = self.sessions.keys().cloned().collect();
        // The order of the events does not depend on the table's.
        sids.sort();
        let mut open = 0;
        for sid in sids {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            open += usize::from(s.open);
            // Discarded, as the reference's `close(true)` does not wait
            // for its write buffer.
            s.queue.drain();
            self.close_session(&sid, CloseReason::Application);
        }
        self.flush();
        open
    }

    /// The commands' common start: the clock brought to `now`, then `sid`
    /// if it names a session the application may still use (one it closed
    /// is waiting only to tell the client).
    fn open_session(&mut self, sid: &str, now: Instant) -> Result<(SessionId, &Session<C>), Error> {
        self.advance(now);
        self.sessions
            .get_key_value(sid)
            .filter(|(_, s)| s.open)
            .map(|(sid, s)| (sid.clone(), &**s))
            .ok_or(Error::NoSuchSession)
    }

    // ---- time --------------------------------------------------------------

    /// Runs the timers due by `now`, each at its own deadline, as a punctual
    /// clock would have.
    fn advance(&mut self, now: Instant) {
        let now = match self.now {
            Some(t) if t > now => t,
            _ => now,
        };
        self.now = Some(now);
        for sid in self.deadlines.take_due(now) {
            for _ in 0..MAX_TIMER_STEPS {
                match self.sessions.get(&sid).and_then(|s| s.deadline()) {
                    Some(at) if at <= now => self.step(&sid, at),
                    _ => break,
                }
            }
            if self
                .sessions
                .get(&sid)
                .and_then(|s| s.deadline())
                .is_some_and(|at| at <= now)
            {
                self.step(&sid, now);
            }
            self.reschedule(&sid);
        }
    }

    /// One session's timers at `at`.
    fn step(&mut self, sid: &SessionId, at: Instant) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if s.close_deadline.is_some_and(|t| t <= at) {
            // The closing session's `1` found no poll in time.
            return self.forget(sid);
        }
        s.heartbeat.handle_timeout(at);
        if let Some((_, upgrade)) = &mut s.upgrade {
            upgrade.handle_timeout(at);
        }
        self.drain_heartbeat(sid);
        self.drain_upgrade(sid);
    }

    // ---- requests ----------------------------------------------------------

    fn handshake(
        &mut self,
        connection: C,
        transport: TransportKind,
        version: ProtocolVersion,
        now: Instant,
    ) {
        if !self.accepts(version) {
            let refusal = Refusal::Code(ServerErrorCode::UnsupportedProtocolVersion);
            return self.refuse(connection, refusal);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return self.refuse(connection, Refusal::TooManySessions);
        }
        let mut sid = SessionId::generate(self.config.rng.as_mut());
        while self.sessions.contains_key(&sid) {
            sid = SessionId::generate(self.config.rng.as_mut());
        }
        let websocket = transport == TransportKind::WebSocket;
        let upgrades: &[&str] = if !websocket && self.config.allow_upgrades {
            &["websocket"]
        } else {
            &[]
        };
        let open = OpenPacket::new(
            sid.as_str(),
            upgrades,
            millis(self.config.ping_interval),
            millis(self.config.ping_timeout),
            Some(self.config.max_payload as u64),
        )
        .to_packet();
        let heartbeat = Heartbeat::new(
            version,
            HeartbeatConfig {
                ping_interval: self.config.ping_interval,
                ping_timeout: self.config.ping_timeout,
            },
            now,
        );
        let receiver = if websocket {
            self.connections
                .insert(connection, Conn::new(sid.clone(), Role::WebSocket));
            self.transmits
                .push_back(ServerTransmit::AcceptWebSocket { connection });
            self.ws_send(connection, &open, version);
            Some(Receiver::WebSocket(connection))
        } else {
            self.transmits.push_back(ServerTransmit::Packets {
                request: connection,
                packets: vec![open],
                version,
            });
            None
        };
        self.sessions.insert(
            sid.clone(),
            Box::new(Session {
                open: true,
                receiver,
                queue: SendQueue::new(self.config.queue),
                version,
                heartbeat,
                upgrade: None,
                close_deadline: None,
                probed: false,
                direct: (0, 0, 0),
            }),
        );
        self.events.push_back(ServerEvent::Opened {
            session: sid.clone(),
            connection,
            transport,
            version,
        });
        self.reschedule(&sid);
    }

    /// The session a polling request names, or its refusal: unknown, or
    /// carried by a WebSocket already.
    fn polling_session(&mut self, sid: &str, request: C) -> Option<SessionId> {
        let refusal = match self.sessions.get_key_value(sid) {
            None => ServerErrorCode::UnknownSid,
            Some((_, s)) if s.websocket().is_some() => ServerErrorCode::BadRequest,
            Some((sid, _)) => return Some(sid.clone()),
        };
        self.refuse(request, Refusal::Code(refusal));
        None
    }

    fn on_poll(&mut self, sid: SessionId, request: C) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let version = s.version;
        if !s.open {
            // The application closed it: what is left, then `1`.
            let mut packets = s.queue.drain();
            packets.push(Packet::Close);
            self.transmits.push_back(ServerTransmit::Packets {
                request,
                packets,
                version,
            });
            return self.forget(&sid);
        }
        if !s.queue.is_empty() {
            let packets = s.queue.drain();
            self.transmits.push_back(ServerTransmit::Packets {
                request,
                packets,
                version,
            });
            return;
        }
        if s.upgrade
            .as_ref()
            .is_some_and(|(_, u)| u.state() == UpgradeState::Probed)
        {
            // The client is switching: release it at once.
            self.transmits.push_back(ServerTransmit::Packets {
                request,
                packets: vec![Packet::Noop],
                version,
            });
            return;
        }
        if s.receiver.is_some() {
            // The reference: "overlap from client"; the parked poll gets `1`
            // and the session ends.
            self.refuse(request, Refusal::Code(ServerErrorCode::BadRequest));
            return self.close_session(&sid, CloseReason::TransportError);
        }
        s.receiver = Some(Receiver::Poll(request));
        self.connections.insert(request, Conn::new(sid, Role::Poll));
    }

    fn on_post(&mut self, sid: SessionId, request: C, body: PostBody, now: Instant) {
        let limit = self.config.max_payload;
        if body.len() > limit {
            self.refuse(request, Refusal::PayloadTooLarge);
            return self.close_session(&sid, CloseReason::PayloadTooLarge);
        }
        let Some(version) = self.sessions.get(&sid).map(|s| s.version) else {
            return;
        };
        let decoded = match body {
            PostBody::Jsonp(body) => jsonp::decode_jsonp_body(&body).map(|payload| {
                let format = match version {
                    ProtocolVersion::V4 => PayloadFormat::V4,
                    ProtocolVersion::V3 => PayloadFormat::V3String,
                };
                (Bytes::from(payload), format)
            }),
            PostBody::Payload { body, octet_stream } => {
                PayloadFormat::for_request(version, octet_stream).map(|f| (body, f))
            }
        };
        let Ok((body, format)) = decoded else {
            self.refuse(request, Refusal::Code(ServerErrorCode::BadRequest));
            return self.close_session(&sid, CloseReason::TransportError);
        };
        let limits = Limits {
            max_payload: limit,
            max_packets: MAX_PACKETS_PER_PAYLOAD,
        };
        for packet in decode_payload(body, format, limits) {
            match packet {
                Ok(packet) => {
                    if !self.on_packet(&sid, packet, now) {
                        break;
                    }
                }
                Err(_) => {
                    self.refuse(request, Refusal::Code(ServerErrorCode::BadRequest));
                    return self.close_session(&sid, CloseReason::ParseError);
                }
            }
        }
        self.reschedule(&sid);
        self.transmits
            .push_back(ServerTransmit::PostAccepted { request });
    }

    fn on_upgrade_request(&mut self, sid: SessionId, connection: C, now: Instant) {
        self.transmits
            .push_back(ServerTransmit::AcceptWebSocket { connection });
        let upgrade_timeout = self.config.upgrade_timeout;
        let allow = self.config.allow_upgrades;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !allow || !s.open || s.upgrade.is_some() || s.websocket().is_some() {
            // Already upgrading or upgraded: the reference accepts, then
            // closes the newcomer.
            return self.close_websocket(connection, 1000);
        }
        s.upgrade = Some((
            connection,
            Upgrade::new(
                UpgradeConfig {
                    timeout: upgrade_timeout,
                    ..UpgradeConfig::default()
                },
                now,
            ),
        ));
        self.connections
            .insert(connection, Conn::new(sid.clone(), Role::Upgrade));
        self.reschedule(&sid);
    }

    fn on_message(&mut self, connection: C, message: WsMessage, now: Instant) {
        let Some(conn) = self.connections.get(&connection).cloned() else {
            return;
        };
        let Some(version) = self.sessions.get(&conn.session).map(|s| s.version) else {
            return;
        };
        if ws_len(&message) > self.config.max_payload {
            return self.close_session(&conn.session, CloseReason::PayloadTooLarge);
        }
        let packet = Packet::from_websocket(message, version);
        match conn.role {
            Role::WebSocket => match packet {
                Ok(packet) => {
                    self.on_packet(&conn.session, packet, now);
                }
                Err(_) => self.close_session(&conn.session, CloseReason::ParseError),
            },
            Role::Upgrade => {
                if let Some((_, upgrade)) = self
                    .sessions
                    .get_mut(&conn.session)
                    .and_then(|s| s.upgrade.as_mut())
                {
                    match &packet {
                        Ok(p) => upgrade.handle_packet(p, now),
                        Err(_) => upgrade.abort(),
                    }
                }
                self.drain_upgrade(&conn.session);
            }
            Role::Poll => {}
        }
        self.reschedule(&conn.session);
    }

    // ---- session logic -----------------------------------------------------

    /// One packet from the client (POST body or WebSocket). False if the
    /// session ended.
    fn on_packet(&mut self, sid: &SessionId, packet: Packet, now: Instant) -> bool {
        let Some(s) = self.sessions.get_mut(sid) else {
            return false;
        };
        if s.heartbeat
            .handle_packet(packet.packet_type(), now)
            .is_err()
        {
            self.close_session(sid, CloseReason::TransportError);
            return false;
        }
        if std::mem::take(&mut s.probed) {
            self.alive.push_back(sid.clone());
        }
        let open = s.open;
        match packet {
            Packet::Message(text) if open => self.events.push_back(ServerEvent::Message {
                session: sid.clone(),
                message: WsMessage::Text(text),
            }),
            Packet::Binary(data) if open => self.events.push_back(ServerEvent::Message {
                session: sid.clone(),
                message: WsMessage::Binary(data),
            }),
            Packet::Close => {
                self.close_session(sid, CloseReason::Client);
                return false;
            }
            _ => {}
        }
        self.drain_heartbeat(sid);
        self.sessions.contains_key(sid)
    }

    /// Queues `count` messages of `bytes` bytes in all for the open
    /// session `sid`, all or none, or sends them at once when nothing is
    /// queued ahead of them on its WebSocket. One lookup of the session
    /// (a hash of its id) on that path, the one every broadcast recipient
    /// takes, and no copy of its id (issue #19).
    fn queue_all(
        &mut self,
        sid: &str,
        count: usize,
        bytes: usize,
        messages: impl IntoIterator<Item = WsMessage>,
    ) -> Result<(), Error> {
        let Some(s) = self.sessions.get_mut(sid).filter(|s| s.open) else {
            return Err(Error::NoSuchSession);
        };
        // What went out at once since the last flush still counts, as it
        // would have waited in the queue for that flush (review9b: without
        // it an idle WebSocket session took any number of messages).
        let (held, held_bytes) = s.held(self.flushes);
        if !s
            .queue
            .fits(count.saturating_add(held), bytes.saturating_add(held_bytes))
        {
            if s.queue.close_on_overflow() {
                if let Some(sid) = self.session_key(sid) {
                    self.close_session(&sid, CloseReason::QueueOverflow);
                }
            }
            return Err(Error::QueueFull);
        }
        // A WebSocket session with nothing queued: the messages go out now,
        // in the order a flush would have sent them (nothing is ahead of
        // them, and a `close` after them still follows them). The queue's
        // buffer, its drain at the flush, the session's entry in the dirty
        // list and the flush's lookup of it are saved per message: a room
        // broadcast pays them once per recipient (issue #19). Sending moves
        // none of the session's timers, so its deadline stays as it is.
        if let (Some(conn), true) = (s.websocket(), s.queue.is_empty()) {
            let version = s.version;
            s.direct = (
                self.flushes,
                held.saturating_add(count),
                held_bytes.saturating_add(bytes),
            );
            for message in messages {
                self.ws_send(conn, &ws_packet(message), version);
            }
            return Ok(());
        }
        for message in messages {
            let len = ws_len(&message);
            // Fits: checked for all of them above.
            s.queue.push(ws_packet(message), len);
        }
        // Goes out at the next flush: a `close` right after still sees the
        // message queued and sends it before the `1`, in the same answer.
        if let Some(sid) = self.session_key(sid) {
            self.dirty.push(sid);
        }
        Ok(())
    }

    /// The table's own id of session `sid`, shared rather than copied.
    fn session_key(&self, sid: &str) -> Option<SessionId> {
        self.sessions.get_key_value(sid).map(|(k, _)| k.clone())
    }

    fn drain_heartbeat(&mut self, sid: &SessionId) {
        loop {
            let Some(s) = self.sessions.get_mut(sid) else {
                return;
            };
            match s.heartbeat.poll_event() {
                None => return,
                Some(HeartbeatEvent::SendPing) => {
                    s.queue.push_control(Packet::ping());
                    self.dirty.push(sid.clone());
                }
                Some(HeartbeatEvent::SendPong) => {
                    s.queue.push_control(Packet::pong());
                    self.dirty.push(sid.clone());
                }
                Some(HeartbeatEvent::TimedOut) => {
                    return self.close_session(sid, CloseReason::PingTimeout);
                }
            }
        }
    }

    fn drain_upgrade(&mut self, sid: &SessionId) {
        loop {
            let Some(s) = self.sessions.get_mut(sid) else {
                return;
            };
            let Some((conn, upgrade)) = &mut s.upgrade else {
                return;
            };
            let conn = *conn;
            match upgrade.poll_event() {
                None => return,
                Some(UpgradeEvent::SendProbePong) => {
                    let version = s.version;
                    self.ws_send(conn, &Packet::probe_pong(), version);
                }
                Some(UpgradeEvent::SendNoop) => {
                    if let Some(Receiver::Poll(poll)) = s.receiver {
                        s.receiver = None;
                        let version = s.version;
                        self.answer_poll(poll, vec![Packet::Noop], version);
                    }
                }
                Some(UpgradeEvent::Completed) => {
                    s.upgrade = None;
                    let version = s.version;
                    if let Some(Receiver::Poll(poll)) =
                        s.receiver.replace(Receiver::WebSocket(conn))
                    {
                        self.answer_poll(poll, vec![Packet::Noop], version);
                    }
                    if let Some(c) = self.connections.get_mut(&conn) {
                        c.role = Role::WebSocket;
                    }
                    self.dirty.push(sid.clone());
                }
                Some(UpgradeEvent::Aborted) => {
                    s.upgrade = None;
                    self.connections.remove(&conn);
                    self.close_websocket(conn, 1000);
                }
            }
        }
    }

    /// Ends a session now, answering whatever carries it the way the
    /// reference does, and tells the application (if it was open).
    fn close_session(&mut self, sid: &SessionId, reason: CloseReason) {
        let Some(mut s) = self.sessions.remove(sid) else {
            return;
        };
        self.deadlines.set(sid, None);
        s.heartbeat.stop();
        if let Some((conn, _)) = s.upgrade.take() {
            if self.connections.remove(&conn).is_some() {
                self.close_websocket(conn, 1000);
            }
        }
        match s.receiver.take() {
            Some(Receiver::Poll(poll)) => {
                let packets = match reason {
                    // The client asked: release its poll quietly.
                    CloseReason::Client => vec![Packet::Noop],
                    CloseReason::Application => {
                        let mut p = s.queue.drain();
                        p.push(Packet::Close);
                        p
                    }
                    _ => vec![Packet::Close],
                };
                self.answer_poll(poll, packets, s.version);
            }
            // Unless the peer already closed it.
            Some(Receiver::WebSocket(conn)) if self.connections.remove(&conn).is_some() => {
                if reason == CloseReason::Application {
                    for packet in s.queue.drain() {
                        self.ws_send(conn, &packet, s.version);
                    }
                }
                let code = match reason {
                    CloseReason::ParseError => 1002,
                    CloseReason::PayloadTooLarge => 1009,
                    _ => 1000,
                };
                self.close_websocket(conn, code);
            }
            _ => {}
        }
        if s.open {
            self.events.push_back(ServerEvent::Closed {
                session: sid.clone(),
                reason,
            });
        }
    }

    /// Drops a closing session whose `1` went out or timed out.
    fn forget(&mut self, sid: &SessionId) {
        if let Some(s) = self.sessions.remove(sid) {
            if let Some(r) = s.receiver {
                self.connections.remove(&r.connection());
            }
        }
        self.deadlines.set(sid, None);
    }

    fn reschedule(&mut self, sid: &SessionId) {
        let deadline = self.sessions.get(sid).and_then(|s| s.deadline());
        self.deadlines.set(sid, deadline);
    }

    /// Moves queued packets to whatever carries each session.
    fn flush(&mut self) {
        // Messages sent at once before now stop counting against bounds.
        self.flushes = self.flushes.wrapping_add(1);
        // Called on every poll_transmit: nothing to do most times.
        if self.dirty.is_empty() {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        for sid in dirty.drain(..) {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if s.queue.is_empty() {
                continue;
            }
            let version = s.version;
            // Sending moves none of the session's timers (nor does taking
            // its poll): its deadline is read here rather than the session
            // looked up again afterwards.
            let deadline = s.deadline();
            match s.receiver {
                Some(Receiver::Poll(poll)) => {
                    let packets = s.queue.drain();
                    s.receiver = None;
                    self.answer_poll(poll, packets, version);
                }
                Some(Receiver::WebSocket(conn)) => {
                    for packet in s.queue.drain() {
                        self.ws_send(conn, &packet, version);
                    }
                }
                None => {}
            }
            self.deadlines.set(&sid, deadline);
        }
        // The list's buffer serves the next flush: one allocation fewer per
        // message sent. Sessions marked during this flush wait for the next
        // one, as before.
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    // ---- outputs -----------------------------------------------------------

    fn refuse(&mut self, request: C, refusal: Refusal) {
        self.transmits
            .push_back(ServerTransmit::Refuse { request, refusal });
    }

    fn answer_poll(&mut self, poll: C, packets: Vec<Packet>, version: ProtocolVersion) {
        if self.connections.remove(&poll).is_some() {
            self.transmits.push_back(ServerTransmit::Packets {
                request: poll,
                packets,
                version,
            });
        }
    }

    fn ws_send(&mut self, connection: C, packet: &Packet, version: ProtocolVersion) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.unsent += 1;
        }
        self.transmits.push_back(ServerTransmit::Send {
            connection,
            message: self.encoded.websocket_message(packet, version),
        });
    }

    fn close_websocket(&mut self, connection: C, code: u16) {
        self.transmits
            .push_back(ServerTransmit::CloseWebSocket { connection, code });
    }
}

/// The Engine.IO packet that carries an application message.
fn ws_packet(message: WsMessage) -> Packet {
    match message {
        WsMessage::Text(t) => Packet::Message(t),
        WsMessage::Binary(b) => Packet::Binary(b),
    }
}

fn ws_len(message: &WsMessage) -> usize {
    match message {
        WsMessage::Text(t) => t.len(),
        WsMessage::Binary(b) => b.len(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
