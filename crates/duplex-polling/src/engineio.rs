//! The Engine.IO dialect (protocol v4, and v3 behind a switch): HTTP
//! long-polling, WebSocket, and the upgrade from one to the other, as the
//! reference server (npm `engine.io` 6) answers them.
//!
//! | request | answer |
//! |---|---|
//! | `GET ?EIO=4&transport=polling` | 200, `0{"sid":..,"upgrades":["websocket"],..}`; [`Event::Opened`] |
//! | WebSocket `?EIO=4&transport=websocket` | accepted; first message `0{..,"upgrades":[],..}` |
//! | `GET ..&sid=X` | queued packets joined by `0x1e`, or parked until there are some (a ping after `pingInterval`) |
//! | `POST ..&sid=X` | `ok`; each message an [`Event::Message`] |
//! | WebSocket `..&transport=websocket&sid=X` | the upgrade: `2probe` → `3probe`, a parked GET gets `6`, `5` switches |
//! | a second concurrent GET | the first gets `1`, this one 400; the session is closed |
//! | `POST 1` while a GET is parked | the GET gets `6`; the session is closed |
//! | body over `max_http_buffer_size` | 413; the session is closed |
//! | missing/unknown `transport`, bad `EIO`, unknown `sid`, a non-GET handshake | 400 with the reference's `{"code":N,"message":..}` |
//! | too many sessions | 503 |

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use duplex_engineio::{
    HandshakeQuery, Heartbeat, HeartbeatConfig, HeartbeatEvent, Limits, OpenPacket, Packet,
    PayloadFormat, ProtocolVersion, ServerErrorCode, TransportKind, Upgrade, UpgradeConfig,
    UpgradeEvent, UpgradeState, WsMessage, decode_payload, jsonp,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use rand::{RngCore, SeedableRng, rngs::StdRng};

use crate::http::{Cors, OpenInfo, Response};
use crate::queue::{Full, OverflowPolicy, QueueConfig};
use crate::session::{Attach, Receiver, SessionCore, Timing};
use crate::timer::Timers;
use crate::{
    CloseReason, Error, Event, Message, Request, RequestId, SessionId, Transmit, TransportName,
};

/// Most packets in one POST body.
const MAX_PACKETS_PER_PAYLOAD: usize = 10_000;

/// Settings of an Engine.IO endpoint, named and defaulted as the reference
/// server's options.
pub struct EngineIoConfig {
    /// `pingInterval`: time between pings. Default 25 s.
    pub ping_interval: Duration,
    /// `pingTimeout`: time to wait for the pong. Default 20 s.
    pub ping_timeout: Duration,
    /// `upgradeTimeout`: time for a client to finish an upgrade. Default 10 s.
    pub upgrade_timeout: Duration,
    /// `maxHttpBufferSize`, announced as `maxPayload`: the largest POST body
    /// and WebSocket message in bytes. Default 1,000,000.
    pub max_http_buffer_size: usize,
    /// Accept the polling transport. Default on.
    pub polling: bool,
    /// Accept the WebSocket transport. Default on.
    pub websocket: bool,
    /// `allowUpgrades`: let polling sessions upgrade to WebSocket. Default on.
    pub allow_upgrades: bool,
    /// `allowEIO3`: accept protocol v3 clients (Socket.IO 2). Default off.
    pub allow_eio3: bool,
    /// Most sessions at once; handshakes beyond get 503. Default 65,536.
    pub max_sessions: usize,
    /// After the application closes a polling session with no GET waiting,
    /// how long the `1` waits for the next GET. Default 30 s, as the
    /// reference's `closeTimeout`.
    pub close_timeout: Duration,
    /// Bounds of each session's send queue.
    pub queue: QueueConfig,
    /// CORS and the Origin allow-list. Default: no CORS headers, any origin.
    pub cors: Cors,
    /// The source of session ids. Default: seeded from the OS.
    pub rng: Box<dyn RngCore + Send>,
}

impl Default for EngineIoConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_http_buffer_size: 1_000_000,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            allow_eio3: false,
            max_sessions: 65_536,
            close_timeout: Duration::from_secs(30),
            queue: QueueConfig::default(),
            cors: Cors::disabled(),
            rng: Box::new(StdRng::from_os_rng()),
        }
    }
}

impl EngineIoConfig {
    /// Replaces the random source, e.g. with a seeded one in tests.
    pub fn with_rng(mut self, rng: impl RngCore + Send + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }
}

impl std::fmt::Debug for EngineIoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIoConfig")
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_http_buffer_size", &self.max_http_buffer_size)
            .field("polling", &self.polling)
            .field("websocket", &self.websocket)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("allow_eio3", &self.allow_eio3)
            .field("max_sessions", &self.max_sessions)
            .field("close_timeout", &self.close_timeout)
            .field("queue", &self.queue)
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}

/// How a polling response is encoded, fixed by the GET's query.
#[derive(Clone, Debug)]
struct PollEncoding {
    version: ProtocolVersion,
    supports_binary: bool,
    jsonp: Option<String>,
}

/// What a request or connection id stands for.
#[derive(Clone, Debug)]
enum Role {
    /// A parked polling GET, with the headers its answer will carry.
    Poll {
        encoding: PollEncoding,
        headers: HeaderMap,
    },
    /// The WebSocket carrying the session.
    WebSocket,
    /// A WebSocket that is upgrading the session (probe not yet confirmed).
    Upgrade,
}

#[derive(Clone, Debug)]
struct Conn {
    session: SessionId,
    role: Role,
}

#[derive(Debug)]
struct EioSession {
    core: SessionCore<Packet>,
    version: ProtocolVersion,
    heartbeat: Heartbeat,
    /// The WebSocket being upgraded to, and the upgrade's progress.
    upgrade: Option<(RequestId, Upgrade)>,
    /// A closing polling session: when to give up waiting for a GET.
    close_deadline: Option<Instant>,
}

impl EioSession {
    /// The WebSocket carrying the session, if it has moved to one.
    fn websocket(&self) -> Option<RequestId> {
        match self.core.receiver() {
            Some(Receiver::WebSocket(c)) => Some(c),
            _ => None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [
            self.heartbeat.poll_timeout(),
            self.upgrade.as_ref().and_then(|(_, u)| u.poll_timeout()),
            self.close_deadline,
            self.core.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// A sans-IO Engine.IO server endpoint: every session of one mount point.
///
/// ```
/// use std::time::Instant;
/// use duplex_polling::{EngineIoConfig, EngineIoServer, Event, Message, Request, RequestId, Transmit};
/// use http::Method;
///
/// let mut server = EngineIoServer::new(EngineIoConfig::default());
/// let now = Instant::now();
/// server.handle_request(Request::new(RequestId(1), Method::GET, "/?EIO=4&transport=polling"), now);
/// let Some(Transmit::Response { response, .. }) = server.poll_transmit() else { panic!() };
/// assert!(response.body.starts_with(b"0{\"sid\":"));
/// let Some(Event::Opened { session, .. }) = server.poll_event() else { panic!() };
///
/// // The client polls; the GET is parked until the application sends.
/// let poll = format!("/?EIO=4&transport=polling&sid={session}");
/// server.handle_request(Request::new(RequestId(2), Method::GET, &poll), now);
/// assert!(server.poll_transmit().is_none());
/// server.send(&session, Message::text("hello"), now).unwrap();
/// let Some(Transmit::Response { request, response }) = server.poll_transmit() else { panic!() };
/// assert_eq!((request, &response.body[..]), (RequestId(2), &b"4hello"[..]));
/// ```
pub struct EngineIoServer {
    config: EngineIoConfig,
    sessions: HashMap<SessionId, EioSession>,
    connections: HashMap<RequestId, Conn>,
    timers: Timers,
    dirty: Vec<SessionId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    now: Option<Instant>,
}

impl std::fmt::Debug for EngineIoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIoServer")
            .field("config", &self.config)
            .field("sessions", &self.sessions.len())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl EngineIoServer {
    /// An endpoint with these settings and no sessions.
    pub fn new(config: EngineIoConfig) -> Self {
        Self {
            config,
            sessions: HashMap::new(),
            connections: HashMap::new(),
            timers: Timers::default(),
            dirty: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            now: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineIoConfig {
        &self.config
    }

    /// The CORS settings and Origin allow-list, which the application may
    /// change at any time; they apply from the next request on.
    pub fn cors_mut(&mut self) -> &mut Cors {
        &mut self.config.cors
    }

    /// The most body bytes a request may carry; read at most one more.
    pub fn body_limit(&self) -> usize {
        self.config.max_http_buffer_size
    }

    /// Sessions in the table (open ones and closing ones whose `1` is still
    /// to be delivered).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Requests and connections the machine holds (parked polls,
    /// WebSockets); zero once every session is gone.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Whether `session` is open.
    pub fn is_open(&self, session: &SessionId) -> bool {
        self.sessions.get(session).is_some_and(|s| s.core.is_open())
    }

    /// The transport carrying `session` now.
    pub fn transport(&self, session: &SessionId) -> Option<TransportName> {
        let s = self.sessions.get(session)?;
        Some(if s.websocket().is_some() {
            TransportName::WebSocket
        } else {
            TransportName::Polling
        })
    }

    /// How many more messages `session` can queue before `send` overflows:
    /// the application's view of backpressure.
    pub fn send_capacity(&self, session: &SessionId) -> Option<usize> {
        self.sessions
            .get(session)
            .filter(|s| s.core.is_open())
            .map(|s| s.core.queue.free_slots())
    }

    fn touch(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |t| t.max(now)));
    }

    // ---- inputs ------------------------------------------------------------

    /// A request arrived (polling GET or POST, a handshake, or a WebSocket
    /// upgrade request, see [`Request::websocket`]).
    pub fn handle_request(&mut self, request: Request, now: Instant) {
        self.touch(now);
        if !self.config.cors.allows(&request) {
            let response = self.error_response(&request, ServerErrorCode::Forbidden);
            return self.respond(request.id, response);
        }
        if request.method == Method::OPTIONS && self.config.cors.enabled && !request.websocket {
            let mut headers = HeaderMap::new();
            self.config.cors.apply(&request, &mut headers, false);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
            return self.respond(
                request.id,
                Response::new(StatusCode::NO_CONTENT, headers, Bytes::new()),
            );
        }
        let query = match HandshakeQuery::parse(&request.query) {
            Ok(q) => q,
            Err(e) => {
                let response = self.error_response(&request, e.server_error_code());
                return self.respond(request.id, response);
            }
        };
        let enabled = match query.transport {
            TransportKind::Polling => self.config.polling,
            TransportKind::WebSocket => self.config.websocket,
        };
        if !enabled {
            let response = self.error_response(&request, ServerErrorCode::UnknownTransport);
            return self.respond(request.id, response);
        }
        match query.sid.clone() {
            None => self.handshake(request, query, now),
            Some(sid) => match self.sessions.get_key_value(sid.as_str()) {
                None => {
                    let response = self.error_response(&request, ServerErrorCode::UnknownSid);
                    self.respond(request.id, response);
                }
                Some((sid, _)) => {
                    let sid = sid.clone();
                    if request.websocket {
                        self.on_upgrade_request(request, query, sid, now);
                    } else if query.transport != TransportKind::Polling
                        || self
                            .sessions
                            .get(&sid)
                            .and_then(EioSession::websocket)
                            .is_some()
                    {
                        // A polling request after the upgrade, or a plain GET
                        // naming the websocket transport.
                        let response = self.error_response(&request, ServerErrorCode::BadRequest);
                        self.respond(request.id, response);
                    } else if request.method == Method::GET {
                        self.on_poll(request, query, sid, now);
                    } else if request.method == Method::POST {
                        self.on_post(request, query, sid, now);
                    } else {
                        let response = self.error_response(&request, ServerErrorCode::BadRequest);
                        self.respond(request.id, response);
                    }
                }
            },
        }
        self.flush();
    }

    /// The client went away before its request was answered (or a
    /// WebSocket dropped without a close).
    pub fn abort(&mut self, request: RequestId, now: Instant) {
        self.touch(now);
        let Some(conn) = self.connections.remove(&request) else {
            return;
        };
        match conn.role {
            Role::Poll { .. } => {
                if let Some(s) = self.sessions.get_mut(&conn.session) {
                    s.core.detach_request(request, now);
                }
                // As the reference: "poll connection closed prematurely".
                self.close_session(&conn.session, CloseReason::TransportError, now);
            }
            Role::WebSocket => self.close_session(&conn.session, CloseReason::Client, now),
            Role::Upgrade => self.drop_upgrade(&conn.session, request, now),
        }
        self.flush();
    }

    /// A message arrived on a WebSocket this machine accepted.
    pub fn websocket_message(&mut self, connection: RequestId, message: Message, now: Instant) {
        self.touch(now);
        let Some(conn) = self.connections.get(&connection).cloned() else {
            return;
        };
        let Some(version) = self.sessions.get(&conn.session).map(|s| s.version) else {
            return;
        };
        if message.len() > self.config.max_http_buffer_size {
            self.close_session(&conn.session, CloseReason::PayloadTooLarge, now);
            return self.flush();
        }
        let ws = match message {
            Message::Text(t) => WsMessage::Text(t),
            Message::Binary(b) => WsMessage::Binary(b),
        };
        let packet = Packet::from_websocket(ws, version);
        match conn.role {
            Role::WebSocket => match packet {
                Ok(packet) => {
                    self.on_packet(&conn.session, packet, now);
                }
                Err(_) => self.close_session(&conn.session, CloseReason::ParseError, now),
            },
            Role::Upgrade => {
                if let Some(s) = self.sessions.get_mut(&conn.session) {
                    if let Some((_, upgrade)) = &mut s.upgrade {
                        match &packet {
                            Ok(p) => upgrade.on_packet(p, now),
                            Err(_) => upgrade.abort(),
                        }
                    }
                }
                self.drain_upgrade(&conn.session, now);
            }
            Role::Poll { .. } => {}
        }
        self.reschedule(&conn.session);
        self.flush();
    }

    /// A WebSocket this machine accepted was closed by the peer or failed.
    pub fn websocket_closed(&mut self, connection: RequestId, now: Instant) {
        self.abort(connection, now);
    }

    /// Advances every timer to `now`: pings, ping timeouts, upgrade
    /// timeouts and noops, close timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.touch(now);
        for sid in self.timers.take_due(now) {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if s.close_deadline.is_some_and(|t| t <= now) {
                // The closing session's `1` found no GET in time.
                self.forget(&sid);
                continue;
            }
            s.heartbeat.handle_timeout(now);
            if let Some((_, upgrade)) = &mut s.upgrade {
                upgrade.handle_timeout(now);
            }
            self.drain_heartbeat(&sid, now);
            self.drain_upgrade(&sid, now);
            self.reschedule(&sid);
        }
        self.flush();
    }

    // ---- outputs -----------------------------------------------------------

    /// The next thing for the adapter to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.flush();
        self.transmits.pop_front()
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- commands ----------------------------------------------------------

    /// Queues several messages that only make sense together (a Socket.IO
    /// binary packet: its text, then each attachment), all or none: a
    /// queue with room for only some of them refuses them all, so the
    /// client never gets a packet without its attachments.
    pub fn send_all(
        &mut self,
        session: &SessionId,
        messages: Vec<Message>,
        now: Instant,
    ) -> Result<(), Error> {
        self.touch(now);
        let s = self
            .sessions
            .get(session)
            .filter(|s| s.core.is_open())
            .ok_or(Error::NoSuchSession)?;
        let bytes = messages.iter().map(Message::len).sum();
        if !s.core.queue.fits(messages.len(), bytes) {
            if s.core.queue.policy() == OverflowPolicy::CloseSession {
                self.close_session(session, CloseReason::QueueOverflow, now);
            }
            return Err(Error::QueueFull);
        }
        for message in messages {
            self.send(session, message, now)?;
        }
        Ok(())
    }

    /// Queues a message for `session`; it goes out with the next poll (or at
    /// once on a WebSocket or to a parked GET).
    ///
    /// Fails with [`Error::NoSuchSession`] if the session is not open, and
    /// with [`Error::QueueFull`] when its queue is full (the session is then
    /// also closed under [`OverflowPolicy::CloseSession`]).
    pub fn send(
        &mut self,
        session: &SessionId,
        message: Message,
        now: Instant,
    ) -> Result<(), Error> {
        self.touch(now);
        let s = self
            .sessions
            .get_mut(session)
            .filter(|s| s.core.is_open())
            .ok_or(Error::NoSuchSession)?;
        let len = message.len();
        let packet = match message {
            Message::Text(t) => Packet::Message(t),
            Message::Binary(b) => Packet::Binary(b),
        };
        match s.core.queue.push(packet, len) {
            Ok(()) => {
                self.dirty.push(session.clone());
                Ok(())
            }
            Err(Full) => {
                if s.core.queue.policy() == OverflowPolicy::CloseSession {
                    self.close_session(session, CloseReason::QueueOverflow, now);
                }
                Err(Error::QueueFull)
            }
        }
    }

    /// Closes `session`: what is queued goes out, then the `close` packet
    /// (to the parked GET, or the next one within `close_timeout`); a
    /// WebSocket is closed after the queue. [`Event::Closed`] follows at once.
    pub fn close(&mut self, session: &SessionId, now: Instant) -> Result<(), Error> {
        self.touch(now);
        let s = self
            .sessions
            .get_mut(session)
            .filter(|s| s.core.is_open())
            .ok_or(Error::NoSuchSession)?;
        if s.core.receiver().is_some() {
            self.close_session(session, CloseReason::Application, now);
        } else {
            s.core.close();
            s.heartbeat.stop();
            s.close_deadline = Some(now + self.config.close_timeout);
            if let Some((conn, _)) = s.upgrade.take() {
                if self.connections.remove(&conn).is_some() {
                    self.close_websocket(conn, 1000);
                }
            }
            self.events.push_back(Event::Closed {
                session: session.clone(),
                reason: CloseReason::Application,
            });
            self.reschedule(session);
        }
        self.flush();
        Ok(())
    }

    // ---- requests ----------------------------------------------------------

    fn handshake(&mut self, request: Request, query: HandshakeQuery, now: Instant) {
        if request.method != Method::GET {
            let response = self.error_response(&request, ServerErrorCode::BadHandshakeMethod);
            return self.respond(request.id, response);
        }
        if query.version == ProtocolVersion::V3 && !self.config.allow_eio3 {
            let response =
                self.error_response(&request, ServerErrorCode::UnsupportedProtocolVersion);
            return self.respond(request.id, response);
        }
        let websocket = query.transport == TransportKind::WebSocket;
        if websocket != request.websocket {
            // A plain GET naming the websocket transport, or an upgrade
            // request naming polling.
            let response = self.error_response(&request, ServerErrorCode::BadRequest);
            return self.respond(request.id, response);
        }
        if self.sessions.len() >= self.config.max_sessions {
            let mut response = self.error_response(&request, ServerErrorCode::BadRequest);
            response.status = StatusCode::SERVICE_UNAVAILABLE;
            response.body = Bytes::from_static(br#"{"code":3,"message":"Too many sessions"}"#);
            return self.respond(request.id, response);
        }
        let mut sid = SessionId::generate(self.config.rng.as_mut());
        while self.sessions.contains_key(&sid) {
            sid = SessionId::generate(self.config.rng.as_mut());
        }
        let upgrades: &[&str] = if !websocket && self.config.allow_upgrades && self.config.websocket
        {
            &["websocket"]
        } else {
            &[]
        };
        let open = OpenPacket::new(
            sid.as_str(),
            upgrades,
            millis(self.config.ping_interval),
            millis(self.config.ping_timeout),
            Some(self.config.max_http_buffer_size as u64),
        )
        .to_packet();
        let heartbeat = Heartbeat::new(
            query.version,
            HeartbeatConfig {
                ping_interval: self.config.ping_interval,
                ping_timeout: self.config.ping_timeout,
            },
            now,
        );
        let mut core = SessionCore::new(
            Timing {
                disconnect_delay: None,
                heartbeat: None,
                stream_limit: usize::MAX,
            },
            self.config.queue,
            now,
        );
        let transport = if websocket {
            core.attach(Receiver::WebSocket(request.id), now);
            self.connections.insert(
                request.id,
                Conn {
                    session: sid.clone(),
                    role: Role::WebSocket,
                },
            );
            let mut headers = HeaderMap::new();
            self.config.cors.apply(&request, &mut headers, false);
            self.transmits.push_back(Transmit::AcceptWebSocket {
                request: request.id,
                headers,
            });
            self.ws_send(request.id, &open, query.version);
            TransportName::WebSocket
        } else {
            let encoding = PollEncoding {
                version: query.version,
                supports_binary: query.supports_binary(),
                jsonp: query.jsonp_index.clone(),
            };
            let headers = self.poll_headers(&request);
            let response = poll_response(&encoding, headers, &[open]);
            self.respond(request.id, response);
            TransportName::Polling
        };
        self.sessions.insert(
            sid.clone(),
            EioSession {
                core,
                version: query.version,
                heartbeat,
                upgrade: None,
                close_deadline: None,
            },
        );
        let mut info = OpenInfo::from_request(transport, &request);
        info.engineio_version = Some(query.version);
        self.events.push_back(Event::Opened {
            session: sid.clone(),
            info,
        });
        self.reschedule(&sid);
    }

    fn on_poll(&mut self, request: Request, query: HandshakeQuery, sid: SessionId, now: Instant) {
        let headers = self.poll_headers(&request);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let encoding = PollEncoding {
            version: s.version,
            supports_binary: query.supports_binary(),
            jsonp: query.jsonp_index,
        };
        if !s.core.is_open() {
            // The application closed it: what is left, then `1`.
            let mut packets = s.core.queue.drain();
            packets.push(Packet::Close);
            self.respond(request.id, poll_response(&encoding, headers, &packets));
            self.forget(&sid);
            return;
        }
        if !s.core.queue.is_empty() {
            let packets = s.core.queue.drain();
            self.respond(request.id, poll_response(&encoding, headers, &packets));
            return;
        }
        if s.upgrade
            .as_ref()
            .is_some_and(|(_, u)| u.state() == UpgradeState::Probed)
        {
            // The client is switching: release it at once.
            self.respond(
                request.id,
                poll_response(&encoding, headers, &[Packet::Noop]),
            );
            return;
        }
        match s.core.attach(Receiver::Poll(request.id), now) {
            Attach::Attached => {
                self.connections.insert(
                    request.id,
                    Conn {
                        session: sid,
                        role: Role::Poll { encoding, headers },
                    },
                );
            }
            Attach::Busy(_) => {
                // The reference: "overlap from client"; the parked GET gets
                // `1` and the session ends.
                let response = self.error_response(&request, ServerErrorCode::BadRequest);
                self.respond(request.id, response);
                self.close_session(&sid, CloseReason::TransportError, now);
            }
        }
    }

    fn on_post(&mut self, request: Request, query: HandshakeQuery, sid: SessionId, now: Instant) {
        let limit = self.config.max_http_buffer_size;
        if request.body.len() > limit {
            let mut headers = HeaderMap::new();
            self.config.cors.apply(&request, &mut headers, false);
            self.respond(
                request.id,
                Response::new(StatusCode::PAYLOAD_TOO_LARGE, headers, Bytes::new()),
            );
            return self.close_session(&sid, CloseReason::PayloadTooLarge, now);
        }
        let Some(version) = self.sessions.get(&sid).map(|s| s.version) else {
            return;
        };
        let octet_stream = request
            .header_str(&header::CONTENT_TYPE)
            .is_some_and(|ct| ct.eq_ignore_ascii_case("application/octet-stream"));
        let decoded = if query.jsonp_index.is_some() {
            jsonp::decode_jsonp_body(&request.body).map(|payload| {
                let format = match version {
                    ProtocolVersion::V4 => PayloadFormat::V4,
                    ProtocolVersion::V3 => PayloadFormat::V3String,
                };
                (Bytes::from(payload), format)
            })
        } else {
            PayloadFormat::for_request(version, octet_stream).map(|f| (request.body.clone(), f))
        };
        let (body, format) = match decoded {
            Ok(d) => d,
            Err(_) => {
                let response = self.error_response(&request, ServerErrorCode::BadRequest);
                self.respond(request.id, response);
                return self.close_session(&sid, CloseReason::TransportError, now);
            }
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
                    let response = self.error_response(&request, ServerErrorCode::BadRequest);
                    self.respond(request.id, response);
                    return self.close_session(&sid, CloseReason::ParseError, now);
                }
            }
        }
        self.reschedule(&sid);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.config.cors.apply(&request, &mut headers, false);
        self.respond(
            request.id,
            Response::new(StatusCode::OK, headers, Bytes::from_static(b"ok")),
        );
    }

    fn on_upgrade_request(
        &mut self,
        request: Request,
        query: HandshakeQuery,
        sid: SessionId,
        now: Instant,
    ) {
        if query.transport != TransportKind::WebSocket {
            let response = self.error_response(&request, ServerErrorCode::BadRequest);
            return self.respond(request.id, response);
        }
        let mut headers = HeaderMap::new();
        self.config.cors.apply(&request, &mut headers, false);
        self.transmits.push_back(Transmit::AcceptWebSocket {
            request: request.id,
            headers,
        });
        let upgrade_timeout = self.config.upgrade_timeout;
        let allow = self.config.allow_upgrades;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !allow || !s.core.is_open() || s.upgrade.is_some() || s.websocket().is_some() {
            // Already upgrading or upgraded: the reference accepts, then
            // closes the newcomer.
            return self.close_websocket(request.id, 1000);
        }
        s.upgrade = Some((
            request.id,
            Upgrade::new(
                UpgradeConfig {
                    timeout: upgrade_timeout,
                    ..UpgradeConfig::default()
                },
                now,
            ),
        ));
        self.connections.insert(
            request.id,
            Conn {
                session: sid.clone(),
                role: Role::Upgrade,
            },
        );
        self.reschedule(&sid);
    }

    // ---- session logic -----------------------------------------------------

    /// One packet from the client (POST body or WebSocket). False if the
    /// session ended.
    fn on_packet(&mut self, sid: &SessionId, packet: Packet, now: Instant) -> bool {
        let Some(s) = self.sessions.get_mut(sid) else {
            return false;
        };
        if s.heartbeat.on_packet(packet.packet_type(), now).is_err() {
            self.close_session(sid, CloseReason::TransportError, now);
            return false;
        }
        let open = s.core.is_open();
        match packet {
            Packet::Message(text) if open => self.events.push_back(Event::Message {
                session: sid.clone(),
                message: Message::Text(text),
            }),
            Packet::Binary(data) if open => self.events.push_back(Event::Message {
                session: sid.clone(),
                message: Message::Binary(data),
            }),
            Packet::Close => {
                self.close_session(sid, CloseReason::Client, now);
                return false;
            }
            _ => {}
        }
        self.drain_heartbeat(sid, now);
        self.sessions.contains_key(sid)
    }

    fn drain_heartbeat(&mut self, sid: &SessionId, now: Instant) {
        loop {
            let Some(s) = self.sessions.get_mut(sid) else {
                return;
            };
            match s.heartbeat.poll_event() {
                None => return,
                Some(HeartbeatEvent::SendPing) => {
                    s.core.queue.push_control(Packet::ping());
                    self.dirty.push(sid.clone());
                }
                Some(HeartbeatEvent::SendPong) => {
                    s.core.queue.push_control(Packet::pong());
                    self.dirty.push(sid.clone());
                }
                Some(HeartbeatEvent::TimedOut) => {
                    return self.close_session(sid, CloseReason::PingTimeout, now);
                }
            }
        }
    }

    fn drain_upgrade(&mut self, sid: &SessionId, now: Instant) {
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
                    if let Some(Receiver::Poll(poll)) = s.core.receiver() {
                        s.core.detach(now);
                        self.answer_poll(poll, &[Packet::Noop]);
                    }
                }
                Some(UpgradeEvent::Completed) => {
                    s.upgrade = None;
                    if let Some(Receiver::Poll(poll)) =
                        s.core.replace(Receiver::WebSocket(conn), now)
                    {
                        self.answer_poll(poll, &[Packet::Noop]);
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

    /// The upgrade's WebSocket closed under it.
    fn drop_upgrade(&mut self, sid: &SessionId, conn: RequestId, _now: Instant) {
        if let Some(s) = self.sessions.get_mut(sid) {
            if s.upgrade.as_ref().is_some_and(|(c, _)| *c == conn) {
                s.upgrade = None;
            }
        }
        self.reschedule(sid);
    }

    /// Ends a session now, answering whatever carries it the way the
    /// reference does, and tells the application (if it was open).
    fn close_session(&mut self, sid: &SessionId, reason: CloseReason, now: Instant) {
        let Some(mut s) = self.sessions.remove(sid) else {
            return;
        };
        self.timers.set(sid, None);
        s.heartbeat.stop();
        if let Some((conn, _)) = s.upgrade.take() {
            if self.connections.remove(&conn).is_some() {
                self.close_websocket(conn, 1000);
            }
        }
        match s.core.detach(now) {
            Some(Receiver::Poll(poll)) => {
                let packets = match reason {
                    // The client asked: release its GET quietly.
                    CloseReason::Client => vec![Packet::Noop],
                    CloseReason::Application => {
                        let mut p = s.core.queue.drain();
                        p.push(Packet::Close);
                        p
                    }
                    _ => vec![Packet::Close],
                };
                self.answer_poll(poll, &packets);
            }
            // Unless the peer already closed it.
            Some(Receiver::WebSocket(conn)) if self.connections.remove(&conn).is_some() => {
                if reason == CloseReason::Application {
                    for packet in s.core.queue.drain() {
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
        if s.core.is_open() {
            self.events.push_back(Event::Closed {
                session: sid.clone(),
                reason,
            });
        }
    }

    /// Drops a closing session whose `1` went out or timed out.
    fn forget(&mut self, sid: &SessionId) {
        if let Some(s) = self.sessions.remove(sid) {
            if let Some(r) = s.core.receiver() {
                self.connections.remove(&r.request());
            }
        }
        self.timers.set(sid, None);
    }

    fn reschedule(&mut self, sid: &SessionId) {
        let deadline = self.sessions.get(sid).and_then(EioSession::deadline);
        self.timers.set(sid, deadline);
    }

    /// Moves queued packets to whatever carries each session.
    fn flush(&mut self) {
        let Some(now) = self.now else {
            return;
        };
        for sid in std::mem::take(&mut self.dirty) {
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            if s.core.queue.is_empty() {
                continue;
            }
            match s.core.receiver() {
                Some(Receiver::Poll(poll)) => {
                    let packets = s.core.queue.drain();
                    s.core.detach(now);
                    self.answer_poll(poll, &packets);
                }
                Some(Receiver::WebSocket(conn)) => {
                    let version = s.version;
                    for packet in s.core.queue.drain() {
                        self.ws_send(conn, &packet, version);
                    }
                }
                _ => {}
            }
            self.reschedule(&sid);
        }
    }

    // ---- rendering ---------------------------------------------------------

    fn respond(&mut self, request: RequestId, response: Response) {
        self.transmits
            .push_back(Transmit::Response { request, response });
    }

    fn answer_poll(&mut self, poll: RequestId, packets: &[Packet]) {
        if let Some(Conn {
            role: Role::Poll { encoding, headers },
            ..
        }) = self.connections.remove(&poll)
        {
            let response = poll_response(&encoding, headers, packets);
            self.respond(poll, response);
        }
    }

    fn ws_send(&mut self, connection: RequestId, packet: &Packet, version: ProtocolVersion) {
        let message = match packet.to_websocket(version) {
            WsMessage::Text(t) => Message::Text(t),
            WsMessage::Binary(b) => Message::Binary(b),
        };
        self.transmits.push_back(Transmit::WebSocketMessage {
            connection,
            message,
        });
    }

    fn close_websocket(&mut self, connection: RequestId, code: u16) {
        self.transmits.push_back(Transmit::CloseWebSocket {
            connection,
            code,
            reason: String::new(),
        });
    }

    fn poll_headers(&self, request: &Request) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.config.cors.apply(request, &mut headers, false);
        headers
    }

    /// The reference server's JSON error answer.
    fn error_response(&self, request: &Request, code: ServerErrorCode) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.config.cors.apply(request, &mut headers, false);
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        Response::new(status, headers, code.json_body())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A polling answer: the packets in the format the GET asked for.
fn poll_response(encoding: &PollEncoding, mut headers: HeaderMap, packets: &[Packet]) -> Response {
    let format = PayloadFormat::for_response(encoding.version, encoding.supports_binary, packets);
    let payload = format.encode_to_bytes(packets);
    let (body, content_type) = match &encoding.jsonp {
        Some(index) => {
            // JSONP never asks for binary, so the payload is text.
            let text = String::from_utf8_lossy(&payload);
            let mut out = BytesMut::new();
            jsonp::encode_jsonp(index, &text, &mut out);
            (out.freeze(), "text/plain; charset=UTF-8")
        }
        None => (payload, format.content_type()),
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Response::new(StatusCode::OK, headers, body)
}

crate::endpoint::delegate_endpoint!(EngineIoServer, |s, session, _code, _reason, now| s
    .close(session, now));
