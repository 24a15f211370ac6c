//! The HTTP binding of Engine.IO (protocol v4, and v3 behind a switch):
//! requests in, response framing out. The sessions themselves (handshake,
//! heartbeat, both transports' packet flow, the upgrade) are
//! duplex-engineio's [`duplex_engineio::server::Server`]; this module parses
//! each request (CORS, query, transport, method), hands it to the session
//! machine as an Engine.IO input, and frames what comes back: polling
//! payloads in the format and JSONP wrapping the request asked for, the
//! reference's JSON error answers, WebSocket accepts with their headers.
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

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use duplex_engineio::server::{
    self, PostBody, QueueLimits, Refusal, Server, ServerConfig, ServerEvent, ServerTransmit,
};
use duplex_engineio::{
    HandshakeQuery, Packet, PayloadFormat, ProtocolVersion, ServerErrorCode, TransportKind,
    WsMessage, jsonp,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use rand::{RngCore, SeedableRng, rngs::StdRng};

use crate::http::{Cors, OpenInfo, Response};
use crate::queue::{OverflowPolicy, QueueConfig};
use crate::shell::FastMap;
use crate::{
    CloseReason, Error, Event, HttpTransmit, Message, Request, RequestId, SessionId, TransportName,
};

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

crate::shell::dialect_config!(EngineIoConfig {
    ping_interval,
    ping_timeout,
    upgrade_timeout,
    max_http_buffer_size,
    polling,
    websocket,
    allow_upgrades,
    allow_eio3,
    max_sessions,
    close_timeout,
    queue,
    cors,
});

impl EngineIoConfig {
    /// The session machine's settings; the random source moves there, and
    /// `self` keeps a stand-in that is never used.
    fn split(mut self) -> (ServerConfig, EngineIoConfig) {
        let rng = std::mem::replace(&mut self.rng, Box::new(MovedRng));
        let server = ServerConfig {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            upgrade_timeout: self.upgrade_timeout,
            max_payload: self.max_http_buffer_size,
            allow_upgrades: self.allow_upgrades && self.websocket,
            allow_eio3: self.allow_eio3,
            max_sessions: self.max_sessions,
            close_timeout: self.close_timeout,
            queue: QueueLimits {
                max_messages: self.queue.max_messages,
                max_bytes: self.queue.max_bytes,
                close_on_overflow: self.queue.overflow == OverflowPolicy::CloseSession,
            },
            rng,
        };
        (server, self)
    }
}

/// What stays in [`EngineIoConfig::rng`] once the session machine owns the
/// real source; the binding never draws from it.
struct MovedRng;

impl RngCore for MovedRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
}

/// How a polling response is encoded, fixed by the GET's query.
#[derive(Clone, Debug)]
struct PollEncoding {
    supports_binary: bool,
    jsonp: Option<String>,
}

/// A request handed to the session machine and not answered yet: what its
/// answer will need from it.
#[derive(Debug)]
struct Pending {
    /// The CORS headers its answer carries.
    cors: HeaderMap,
    /// For a poll or a polling handshake: how to encode the payload.
    encoding: Option<PollEncoding>,
}

/// A sans-IO Engine.IO server endpoint: every session of one mount point.
///
/// ```
/// use std::time::Instant;
/// use duplex_polling::{EngineIoConfig, EngineIoServer, Event, Message, Request, RequestId, HttpTransmit};
/// use http::Method;
///
/// let mut server = EngineIoServer::new(EngineIoConfig::default());
/// let now = Instant::now();
/// server.handle_request(Request::new(RequestId(1), Method::GET, "/?EIO=4&transport=polling"), now);
/// let Some(HttpTransmit::Response { response, .. }) = server.poll_transmit() else { panic!() };
/// assert!(response.body.starts_with(b"0{\"sid\":"));
/// let Some(Event::Opened { session, .. }) = server.poll_event() else { panic!() };
///
/// // The client polls; the GET is parked until the application sends.
/// let poll = format!("/?EIO=4&transport=polling&sid={session}");
/// server.handle_request(Request::new(RequestId(2), Method::GET, &poll), now);
/// assert!(server.poll_transmit().is_none());
/// server.send(&session, Message::text("hello"), now).unwrap();
/// let Some(HttpTransmit::Response { request, response }) = server.poll_transmit() else { panic!() };
/// assert_eq!((request, &response.body[..]), (RequestId(2), &b"4hello"[..]));
/// ```
pub struct EngineIoServer {
    config: EngineIoConfig,
    engine: Server<RequestId>,
    pending: FastMap<RequestId, Pending>,
    /// What the application is told about a session its handshake opens.
    opening: FastMap<RequestId, OpenInfo>,
    /// Answers the binding gives itself (refused queries, CORS preflights)
    /// ahead of the session machine's, which are framed as they are taken.
    transmits: VecDeque<HttpTransmit>,
}

impl std::fmt::Debug for EngineIoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIoServer")
            .field("config", &self.config)
            .field("sessions", &self.engine.session_count())
            .field("connections", &self.engine.connection_count())
            .finish_non_exhaustive()
    }
}

impl EngineIoServer {
    /// An endpoint with these settings and no sessions.
    pub fn new(config: EngineIoConfig) -> Self {
        let (server, config) = config.split();
        Self {
            config,
            engine: Server::new(server),
            pending: FastMap::default(),
            opening: FastMap::default(),
            transmits: VecDeque::new(),
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
        self.engine.session_count()
    }

    /// Requests and connections the machine holds (parked polls,
    /// WebSockets); zero once every session is gone.
    pub fn connection_count(&self) -> usize {
        self.engine.connection_count()
    }

    /// Whether `session` is open.
    pub fn is_open(&self, session: &SessionId) -> bool {
        self.engine.is_open(session.as_str())
    }

    /// The transport carrying `session` now.
    pub fn transport(&self, session: &SessionId) -> Option<TransportName> {
        self.engine.transport(session.as_str()).map(transport_name)
    }

    /// Whether `session`'s transport would take a packet now, without
    /// waiting (the reference's `transport.writable`): polling, a GET is
    /// parked and nothing is queued for it yet; WebSocket, every message
    /// written ([`handle_websocket_sent`](Self::handle_websocket_sent))
    /// and nothing queued. Socket.IO drops a volatile packet otherwise.
    pub fn writable(&self, session: &SessionId) -> bool {
        self.engine.writable(session.as_str())
    }

    /// How many more messages `session` can queue before `send` overflows:
    /// the application's view of backpressure.
    pub fn send_capacity(&self, session: &SessionId) -> Option<usize> {
        self.engine.send_capacity(session.as_str())
    }

    // ---- inputs ------------------------------------------------------------

    /// A request arrived (polling GET or POST, a handshake, or a WebSocket
    /// upgrade request, see [`Request::websocket`]).
    pub fn handle_request(&mut self, request: Request, now: Instant) {
        self.dispatch(request, now);
    }

    /// The client went away before its request was answered (or a
    /// WebSocket dropped without a close).
    pub fn abort(&mut self, request: RequestId, now: Instant) {
        self.pending.remove(&request);
        self.engine.handle_closed(request, now);
    }

    /// A message arrived on a WebSocket this machine accepted.
    pub fn handle_websocket_message(
        &mut self,
        connection: RequestId,
        message: Message,
        now: Instant,
    ) {
        self.engine.handle_message(connection, to_ws(message), now);
    }

    /// A WebSocket this machine accepted was closed by the peer or failed.
    pub fn handle_websocket_closed(&mut self, connection: RequestId, now: Instant) {
        self.abort(connection, now);
    }

    /// Advances every timer to `now`: pings, ping timeouts, upgrade
    /// timeouts and noops, close timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
    }

    /// The adapter wrote `messages` of the WebSocket messages transmitted
    /// on `connection` (report after each flush of its writes): what
    /// [`writable`](Self::writable) needs for WebSocket sessions.
    pub fn handle_websocket_sent(&mut self, connection: RequestId, messages: usize) {
        self.engine.handle_sent(connection, messages);
    }

    // ---- outputs -----------------------------------------------------------

    /// The next thing for the adapter to write.
    pub fn poll_transmit(&mut self) -> Option<HttpTransmit> {
        loop {
            if let Some(t) = self.transmits.pop_front() {
                return Some(t);
            }
            match self.engine.poll_transmit()? {
                // The one transmit per message a WebSocket session is sent
                // (per recipient of a broadcast): handed out as it comes,
                // not through the queue (issue #19).
                ServerTransmit::Send {
                    connection,
                    message,
                } => {
                    return Some(HttpTransmit::WebSocketMessage {
                        connection,
                        message: from_ws(message),
                    });
                }
                t => self.render(t),
            }
        }
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = match self.engine.poll_event()? {
            ServerEvent::Opened {
                session,
                connection,
                transport,
                version,
            } => {
                let info = self.opening.remove(&connection).unwrap_or_else(|| {
                    let mut info = OpenInfo::from_request(
                        transport_name(transport),
                        &Request::new(connection, Method::GET, ""),
                    );
                    info.engineio_version = Some(version);
                    info
                });
                Event::Opened { session, info }
            }
            ServerEvent::Message { session, message } => Event::Message {
                session,
                message: from_ws(message),
            },
            ServerEvent::Closed { session, reason } => Event::Closed {
                session,
                reason: close_reason(reason),
            },
        };
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
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
        let messages = messages.into_iter().map(to_ws).collect();
        let r = self.engine.send_all(session.as_str(), messages, now);
        r.map_err(command_error)
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
        let r = self.engine.send(session.as_str(), to_ws(message), now);
        r.map_err(command_error)
    }

    /// Asks whether the client of `session` is still there (the engine's
    /// [`probe`](duplex_engineio::Server::probe): v4, one extra ping now
    /// and [`Event::Closed`] (`ping timeout`) unless it answers within
    /// `pingTimeout`; v3, its next ping). The answer comes from
    /// [`poll_alive`](Self::poll_alive).
    pub fn probe(&mut self, session: &SessionId, now: Instant) -> Result<(), Error> {
        let r = self.engine.probe(session.as_str(), now);
        r.map_err(command_error)
    }

    /// The next probed session whose client showed life since its probe.
    pub fn poll_alive(&mut self) -> Option<SessionId> {
        self.engine.poll_alive()
    }

    /// Closes `session`: what is queued goes out, then the `close` packet
    /// (to the parked GET, or the next one within `close_timeout`); a
    /// WebSocket is closed after the queue. [`Event::Closed`] follows at once.
    pub fn close(&mut self, session: &SessionId, now: Instant) -> Result<(), Error> {
        let r = self.engine.close(session.as_str(), now);
        r.map_err(command_error)
    }

    /// Closes every session at once, as the reference's `server.close()`
    /// for a server shutting down (what is queued is dropped; a parked GET
    /// gets `1`; a session without one is forgotten and its next GET gets
    /// the unknown-session 400; WebSockets are closed with 1000): every
    /// client sees its transport close and reconnects. Returns how many
    /// were open; [`Event::Closed`] (`forced close`) follows for each.
    pub fn close_all(&mut self, now: Instant) -> usize {
        self.engine.close_all(now)
    }

    // ---- requests ----------------------------------------------------------

    /// Checks the request's HTTP shape and hands it to the session machine
    /// as the Engine.IO input it is.
    fn dispatch(&mut self, request: Request, now: Instant) {
        if !self.config.cors.allows(&request) {
            return self.refuse(&request, ServerErrorCode::Forbidden);
        }
        if request.method == Method::OPTIONS && self.config.cors.enabled && !request.websocket {
            let cors = &self.config.cors;
            let response = cors.preflight(&request, HeaderMap::new(), "GET, POST", "86400");
            return self.respond(request.id, response);
        }
        let query = match HandshakeQuery::parse(&request.query) {
            Ok(q) => q,
            Err(e) => return self.refuse(&request, e.server_error_code()),
        };
        let enabled = match query.transport {
            TransportKind::Polling => self.config.polling,
            TransportKind::WebSocket => self.config.websocket,
        };
        if !enabled {
            return self.refuse(&request, ServerErrorCode::UnknownTransport);
        }
        let polling = query.transport == TransportKind::Polling;
        let Some(sid) = query.sid.as_deref() else {
            if request.method != Method::GET {
                return self.refuse(&request, ServerErrorCode::BadHandshakeMethod);
            }
            if polling == request.websocket && self.engine.accepts(query.version) {
                // A plain GET naming the websocket transport, or an
                // upgrade request naming polling.
                return self.refuse(&request, ServerErrorCode::BadRequest);
            }
            let mut info = OpenInfo::from_request(transport_name(query.transport), &request);
            info.engineio_version = Some(query.version);
            self.opening.insert(request.id, info);
            self.park(&request, polling.then(|| encoding(&query)));
            self.engine
                .handle_handshake(request.id, query.transport, query.version, now);
            return;
        };
        if !self.engine.contains(sid) {
            return self.refuse(&request, ServerErrorCode::UnknownSid);
        }
        if request.websocket {
            if polling {
                return self.refuse(&request, ServerErrorCode::BadRequest);
            }
            self.park(&request, None);
            return self.engine.handle_upgrade(sid, request.id, now);
        }
        if !polling {
            return self.refuse(&request, ServerErrorCode::BadRequest);
        }
        if request.method == Method::GET {
            self.park(&request, Some(encoding(&query)));
            self.engine.handle_poll(sid, request.id, now);
        } else if request.method == Method::POST {
            let body = if query.jsonp_index.is_some() {
                PostBody::Jsonp(request.body.clone())
            } else {
                PostBody::Payload {
                    body: request.body.clone(),
                    octet_stream: request
                        .header_str(&header::CONTENT_TYPE)
                        .is_some_and(|ct| ct.eq_ignore_ascii_case("application/octet-stream")),
                }
            };
            self.park(&request, None);
            self.engine.handle_post(sid, request.id, body, now);
        } else {
            self.refuse(&request, ServerErrorCode::BadRequest);
        }
    }

    /// Remembers what the answer to `request` will need.
    fn park(&mut self, request: &Request, encoding: Option<PollEncoding>) {
        let mut cors = HeaderMap::new();
        self.config.cors.apply(request, &mut cors, false);
        self.pending.insert(request.id, Pending { cors, encoding });
    }

    // ---- rendering ---------------------------------------------------------

    fn render(&mut self, transmit: ServerTransmit<RequestId>) {
        match transmit {
            ServerTransmit::Packets {
                request,
                packets,
                version,
            } => {
                let Some(pending) = self.pending.remove(&request) else {
                    return;
                };
                let mut headers = HeaderMap::new();
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.extend(pending.cors);
                let encoding = pending.encoding.unwrap_or(PollEncoding {
                    supports_binary: false,
                    jsonp: None,
                });
                let response = poll_response(version, &encoding, headers, &packets);
                self.respond(request, response);
            }
            ServerTransmit::PostAccepted { request } => {
                let Some(pending) = self.pending.remove(&request) else {
                    return;
                };
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.extend(pending.cors);
                self.respond(
                    request,
                    Response::new(StatusCode::OK, headers, Bytes::from_static(b"ok")),
                );
            }
            ServerTransmit::Refuse { request, refusal } => {
                // A refused handshake opens nothing.
                self.opening.remove(&request);
                let Some(pending) = self.pending.remove(&request) else {
                    return;
                };
                let response = refusal_response(refusal, pending.cors);
                self.respond(request, response);
            }
            ServerTransmit::AcceptWebSocket { connection } => {
                let headers = self
                    .pending
                    .remove(&connection)
                    .map(|p| p.cors)
                    .unwrap_or_default();
                self.transmits.push_back(HttpTransmit::AcceptWebSocket {
                    request: connection,
                    headers,
                });
            }
            // poll_transmit hands these out directly; kept here so that
            // render stays total.
            ServerTransmit::Send {
                connection,
                message,
            } => self.transmits.push_back(HttpTransmit::WebSocketMessage {
                connection,
                message: from_ws(message),
            }),
            ServerTransmit::CloseWebSocket { connection, code } => {
                self.transmits.push_back(HttpTransmit::CloseWebSocket {
                    connection,
                    code,
                    reason: String::new(),
                })
            }
        }
    }

    fn respond(&mut self, request: RequestId, response: Response) {
        self.transmits
            .push_back(HttpTransmit::Response { request, response });
    }

    /// Answers `request` at once with the reference's JSON error.
    fn refuse(&mut self, request: &Request, code: ServerErrorCode) {
        let mut cors = HeaderMap::new();
        self.config.cors.apply(request, &mut cors, false);
        let response = refusal_response(Refusal::Code(code), cors);
        self.respond(request.id, response);
    }
}

fn encoding(query: &HandshakeQuery) -> PollEncoding {
    PollEncoding {
        supports_binary: query.supports_binary(),
        jsonp: query.jsonp_index.clone(),
    }
}

/// The reference server's answer to a refused request.
fn refusal_response(refusal: Refusal, cors: HeaderMap) -> Response {
    let mut headers = HeaderMap::new();
    let (status, body) = match refusal {
        Refusal::Code(code) => (
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            Bytes::from(code.json_body()),
        ),
        Refusal::TooManySessions => (
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(br#"{"code":3,"message":"Too many sessions"}"#),
        ),
        Refusal::PayloadTooLarge => {
            headers.extend(cors);
            return Response::new(StatusCode::PAYLOAD_TOO_LARGE, headers, Bytes::new());
        }
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.extend(cors);
    Response::new(status, headers, body)
}

/// A polling answer: the packets in the format the GET asked for.
fn poll_response(
    version: ProtocolVersion,
    encoding: &PollEncoding,
    mut headers: HeaderMap,
    packets: &[Packet],
) -> Response {
    let format = PayloadFormat::for_response(version, encoding.supports_binary, packets);
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

fn to_ws(message: Message) -> WsMessage {
    match message {
        Message::Text(t) => WsMessage::Text(t),
        Message::Binary(b) => WsMessage::Binary(b),
    }
}

fn from_ws(message: WsMessage) -> Message {
    match message {
        WsMessage::Text(t) => Message::Text(t),
        WsMessage::Binary(b) => Message::Binary(b),
    }
}

fn transport_name(transport: TransportKind) -> TransportName {
    match transport {
        TransportKind::Polling => TransportName::Polling,
        TransportKind::WebSocket => TransportName::WebSocket,
    }
}

fn close_reason(reason: server::CloseReason) -> CloseReason {
    match reason {
        server::CloseReason::Application => CloseReason::Application,
        server::CloseReason::Client => CloseReason::Client,
        server::CloseReason::TransportError => CloseReason::TransportError,
        server::CloseReason::ParseError => CloseReason::ParseError,
        server::CloseReason::PingTimeout => CloseReason::PingTimeout,
        server::CloseReason::QueueOverflow => CloseReason::QueueOverflow,
        server::CloseReason::PayloadTooLarge => CloseReason::PayloadTooLarge,
    }
}

/// The session machine's command errors in this crate's terms.
fn command_error(e: duplex_engineio::Error) -> Error {
    match e {
        duplex_engineio::Error::NoSuchSession => Error::NoSuchSession,
        duplex_engineio::Error::QueueFull => Error::QueueFull,
        other => Error::EngineIo(other),
    }
}

crate::endpoint::delegate_endpoint!(
    EngineIoServer,
    |s, session, _code, _reason, now| s.close(session, now),
    fn handle_websocket_sent(&mut self, connection: RequestId, messages: usize) {
        EngineIoServer::handle_websocket_sent(self, connection, messages)
    }
);
