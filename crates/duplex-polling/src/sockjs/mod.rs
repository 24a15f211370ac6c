//! The SockJS dialect (protocol 0.3.3) as sockjs-node serves it: every
//! transport under one prefix.
//!
//! | path under the prefix | methods | answer |
//! |---|---|---|
//! | `` or `/` | GET | `Welcome to SockJS!\n` |
//! | `/info` | GET, OPTIONS | `{"websocket":..,"origins":["*:*"],"cookie_needed":..,"entropy":..}` |
//! | `/iframe.html`, `/iframe-<v>.html` | GET | the iframe page, cached a year, with an ETag (304 on a match) |
//! | `/websocket` | GET (upgrade) | a raw WebSocket: plain messages |
//! | `/<server>/<session>/xhr` | POST, OPTIONS | one frame per request (long-poll) |
//! | `/<server>/<session>/xhr_send` | POST, OPTIONS | JSON array of messages → 204 |
//! | `/<server>/<session>/xhr_streaming` | POST, OPTIONS | 2 KiB prelude, then frames until the response limit |
//! | `/<server>/<session>/eventsource` | GET | `data: <frame>\r\n\r\n` until the limit |
//! | `/<server>/<session>/htmlfile?c=cb` | GET | `<script>p("<frame>");</script>` until the limit |
//! | `/<server>/<session>/jsonp?c=cb` | GET | `/**/cb("<frame>");` |
//! | `/<server>/<session>/jsonp_send` | POST | form `d=<json>` or raw JSON → `ok` |
//! | `/<server>/<session>/websocket` | GET (upgrade) | frames as WebSocket text messages |
//!
//! Anything else is 404; a known path with another method is 405 with
//! `Allow`.

mod frame;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_core::Utf8Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use sha1::{Digest, Sha1};

use self::frame::{
    ANOTHER_CONNECTION, Framing, INTERRUPTED, close_frame, iframe_page, message_frame,
    valid_callback,
};
use crate::http::{
    Cors, NO_CACHE, OpenInfo, Response, cache_for_a_year, form_pairs, query_param, text_response,
};
use crate::queue::{Full, OverflowPolicy, QueueConfig};
use crate::session::{Attach, Due, Lifecycle, Receiver, Timing};
use crate::shell::{Shell, open_session};
use crate::{
    CloseReason, Error, Event, HttpTransmit, Message, Request, RequestId, SessionId, TransportName,
};

/// Settings of a SockJS endpoint, named and defaulted as sockjs-node's
/// options.
pub struct SockJsConfig {
    /// `websocket`: serve the WebSocket transports (session and raw).
    /// Default on.
    pub websocket: bool,
    /// `jsessionid`: set a `JSESSIONID` cookie on session requests, for
    /// load balancers with sticky sessions (`/info` says `cookie_needed`).
    /// Default off.
    pub cookie_needed: bool,
    /// `response_limit`: a streaming response ends after this many frame
    /// bytes, so that browsers free what they hold; the client reconnects.
    /// Default 128 KiB.
    pub response_limit: usize,
    /// `heartbeat_delay`: an `h` frame this often on an idle receiver.
    /// Default 25 s.
    pub heartbeat_delay: Duration,
    /// `disconnect_delay`: a session without a receiving request for this
    /// long is closed. Default 5 s.
    pub disconnect_delay: Duration,
    /// `sockjs_url`: the client script the iframe page loads.
    pub sockjs_url: String,
    /// Most sessions at once; requests that would open more get 503.
    /// Default 65,536.
    pub max_sessions: usize,
    /// Largest `xhr_send`/`jsonp_send` body in bytes; more is 413.
    /// Default 1 MiB.
    pub max_body: usize,
    /// Bounds of each session's send queue.
    pub queue: QueueConfig,
    /// CORS and the Origin allow-list. Default: CORS on, any origin.
    pub cors: Cors,
    /// The source of session ids and `/info` entropy. Default: seeded from
    /// the OS.
    pub rng: Box<dyn RngCore + Send>,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        Self {
            websocket: true,
            cookie_needed: false,
            response_limit: 128 * 1024,
            heartbeat_delay: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            sockjs_url: "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js".into(),
            max_sessions: 65_536,
            max_body: 1 << 20,
            queue: QueueConfig::default(),
            cors: Cors::permissive(),
            rng: Box::new(StdRng::from_os_rng()),
        }
    }
}

crate::shell::dialect_config!(SockJsConfig {
    websocket,
    cookie_needed,
    response_limit,
    heartbeat_delay,
    disconnect_delay,
    sockjs_url,
    max_sessions,
    max_body,
    queue,
    cors,
});

/// The session transports, by their path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionTransport {
    Xhr,
    XhrSend,
    XhrStreaming,
    EventSource,
    HtmlFile,
    Jsonp,
    JsonpSend,
    WebSocket,
}

impl SessionTransport {
    fn from_segment(s: &str) -> Option<Self> {
        Some(match s {
            "xhr" => Self::Xhr,
            "xhr_send" => Self::XhrSend,
            "xhr_streaming" => Self::XhrStreaming,
            "eventsource" => Self::EventSource,
            "htmlfile" => Self::HtmlFile,
            "jsonp" => Self::Jsonp,
            "jsonp_send" => Self::JsonpSend,
            "websocket" => Self::WebSocket,
            _ => return None,
        })
    }

    /// The methods served, in sockjs-node's order (for `Allow`).
    fn methods(self) -> &'static [Method] {
        match self {
            Self::Xhr | Self::XhrSend | Self::XhrStreaming => &[Method::POST, Method::OPTIONS],
            Self::EventSource | Self::HtmlFile | Self::Jsonp | Self::WebSocket => &[Method::GET],
            Self::JsonpSend => &[Method::POST],
        }
    }
}

/// Where a path leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route<'a> {
    Greeting,
    Info,
    Iframe,
    RawWebSocket,
    Session {
        key: &'a str,
        transport: SessionTransport,
    },
}

impl Route<'_> {
    fn methods(self) -> &'static [Method] {
        match self {
            Route::Greeting | Route::Iframe | Route::RawWebSocket => &[Method::GET],
            Route::Info => &[Method::OPTIONS, Method::GET],
            Route::Session { transport, .. } => transport.methods(),
        }
    }
}

/// Routes a path (after the prefix) as sockjs-node's dispatcher does; the
/// `<server>` part is ignored.
fn route(path: &str, websocket: bool) -> Option<Route<'_>> {
    if path.is_empty() || path == "/" {
        return Some(Route::Greeting);
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let rest = path.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["info"] => Some(Route::Info),
        ["websocket"] if websocket => Some(Route::RawWebSocket),
        [name] if is_iframe(name) => Some(Route::Iframe),
        [server, key, transport] => {
            let id_ok = |s: &str| !s.is_empty() && !s.contains('.');
            let transport = SessionTransport::from_segment(transport)?;
            if !id_ok(server) || !id_ok(key) {
                return None;
            }
            if transport == SessionTransport::WebSocket && !websocket {
                return None;
            }
            Some(Route::Session { key, transport })
        }
        _ => None,
    }
}

/// `iframe[0-9-.a-z_]*.html`, where the `.` before `html` is any character.
fn is_iframe(name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix("iframe")
        .and_then(|m| m.strip_suffix("html"))
    else {
        return false;
    };
    let mut chars = middle.chars();
    if chars.next_back().is_none() {
        return false;
    }
    chars.all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || matches!(c, '-' | '.' | '_'))
}

/// What a SockJS session keeps beside the shared core.
#[derive(Debug)]
struct SjsState {
    /// The client's session key (polling transports only).
    key: Option<String>,
    /// Set once closing: repeated to every later receiving request.
    close_frame: Option<String>,
}

#[derive(Debug)]
struct Conn {
    session: SessionId,
    framing: Framing,
    /// Headers of a long-poll's eventual answer.
    headers: HeaderMap,
}

/// A sans-IO SockJS endpoint: every session of one prefix.
///
/// ```
/// use std::time::Instant;
/// use duplex_polling::{Event, Message, Request, RequestId, SockJsConfig, SockJsServer, HttpTransmit};
/// use http::Method;
///
/// let mut server = SockJsServer::new(SockJsConfig::default());
/// let now = Instant::now();
/// server.handle_request(Request::new(RequestId(1), Method::POST, "/000/abc/xhr"), now);
/// let Some(HttpTransmit::Response { response, .. }) = server.poll_transmit() else { panic!() };
/// assert_eq!(&response.body[..], b"o\n");
/// let Some(Event::Opened { session, .. }) = server.poll_event() else { panic!() };
///
/// let send = Request::new(RequestId(2), Method::POST, "/000/abc/xhr_send").body(r#"["hi"]"#);
/// server.handle_request(send, now);
/// let Some(HttpTransmit::Response { response, .. }) = server.poll_transmit() else { panic!() };
/// assert_eq!(response.status, 204);
/// let Some(Event::Message { message, .. }) = server.poll_event() else { panic!() };
/// server.send(&session, message, now).unwrap();
///
/// server.handle_request(Request::new(RequestId(3), Method::POST, "/000/abc/xhr"), now);
/// let Some(HttpTransmit::Response { response, .. }) = server.poll_transmit() else { panic!() };
/// assert_eq!(&response.body[..], b"a[\"hi\"]\n");
/// ```
pub struct SockJsServer {
    config: SockJsConfig,
    shell: Shell<Utf8Bytes, SjsState, Conn>,
    by_key: HashMap<String, SessionId>,
    iframe: Bytes,
    iframe_etag: HeaderValue,
}

impl std::fmt::Debug for SockJsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockJsServer")
            .field("config", &self.config)
            .field("shell", &self.shell)
            .finish_non_exhaustive()
    }
}

impl SockJsServer {
    /// An endpoint with these settings and no sessions.
    pub fn new(config: SockJsConfig) -> Self {
        let page = iframe_page(&config.sockjs_url);
        let digest = Sha1::digest(page.as_bytes());
        let mut etag = String::with_capacity(42);
        etag.push('"');
        for b in digest {
            etag.push_str(&format!("{b:02x}"));
        }
        etag.push('"');
        Self {
            iframe: Bytes::from(page),
            iframe_etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
            config,
            shell: Shell::default(),
            by_key: HashMap::new(),
        }
    }

    crate::shell::shell_methods!(SockJsConfig);

    /// The most body bytes a request may carry; read at most one more.
    pub fn body_limit(&self) -> usize {
        self.config.max_body
    }

    // ---- inputs ------------------------------------------------------------

    /// A request arrived under the prefix.
    pub fn handle_request(&mut self, request: Request, now: Instant) {
        self.touch(now);
        let id = request.id;
        if !self.config.cors.allows(&request) {
            return self.respond(id, text_response(StatusCode::FORBIDDEN, "Forbidden"));
        }
        let Some(route) = route(&request.path, self.config.websocket) else {
            return self.respond(id, not_found());
        };
        if !route.methods().contains(&request.method) {
            let allow = route
                .methods()
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&allow) {
                headers.insert(header::ALLOW, v);
            }
            return self.respond(
                id,
                Response::new(StatusCode::METHOD_NOT_ALLOWED, headers, Bytes::new()),
            );
        }
        match route {
            Route::Greeting => self.respond(
                id,
                text_response(StatusCode::OK, Bytes::from_static(b"Welcome to SockJS!\n")),
            ),
            Route::Info if request.method == Method::OPTIONS => {
                let response = self.options(&request, "OPTIONS, GET");
                self.respond(id, response);
            }
            Route::Info => {
                let body = format!(
                    r#"{{"websocket":{},"origins":["*:*"],"cookie_needed":{},"entropy":{}}}"#,
                    self.config.websocket,
                    self.config.cookie_needed,
                    self.config.rng.next_u32()
                );
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=UTF-8"),
                );
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
                self.config.cors.apply(&request, &mut headers, false);
                self.respond(id, Response::new(StatusCode::OK, headers, body));
            }
            Route::Iframe => {
                let response = self.iframe_response(&request);
                self.respond(id, response);
            }
            Route::RawWebSocket => self.open_websocket(&request, None, now),
            Route::Session { key, transport } => {
                let key = key.to_owned();
                self.session_request(&request, &key, transport, now);
            }
        }
        self.flush();
    }

    /// The client went away before its request was answered, or a
    /// WebSocket dropped.
    pub fn abort(&mut self, request: RequestId, now: Instant) {
        self.touch(now);
        let Some(conn) = self.shell.connections.remove(&request) else {
            return;
        };
        let sid = conn.session;
        let Some(s) = self.shell.sessions.get_mut(&sid) else {
            return;
        };
        if s.core.detach_request(request, now).is_none() {
            // A request that was never the receiver (a 2010 answer).
            return;
        }
        if s.dialect.key.is_none() {
            // WebSocket sessions live and die with their connection.
            self.remove(&sid, Some(CloseReason::Client));
        } else if s.core.close() {
            // As sockjs-node: the session is over, and later requests learn
            // why until it expires.
            s.dialect.close_frame = Some(INTERRUPTED.to_owned());
            self.shell.events.push_back(Event::Closed {
                session: sid.clone(),
                reason: CloseReason::Interrupted,
            });
            self.reschedule(&sid);
        } else {
            self.reschedule(&sid);
        }
        self.flush();
    }

    /// A message arrived on a WebSocket this endpoint accepted.
    pub fn handle_websocket_message(
        &mut self,
        connection: RequestId,
        message: Message,
        now: Instant,
    ) {
        self.touch(now);
        let Some(conn) = self.shell.connections.get(&connection) else {
            return;
        };
        let sid = conn.session.clone();
        if !self.is_open(&sid) {
            return;
        }
        if conn.framing == Framing::RawWebSocket {
            self.shell.events.push_back(Event::Message {
                session: sid,
                message,
            });
            return;
        }
        let text = match &message {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(b) => std::str::from_utf8(b).ok(),
        };
        let Some(text) = text else {
            return self.broken_framing(&sid, now);
        };
        if text.is_empty() {
            return;
        }
        let parsed = if text.starts_with('[') {
            parse_array(text.as_bytes())
        } else {
            serde_json::from_str::<serde_json::Value>(text)
                .map(|v| vec![value_to_text(v)])
                .map_err(|_| Error::BrokenJson)
        };
        match parsed {
            Ok(messages) => {
                for m in messages {
                    self.shell.events.push_back(Event::Message {
                        session: sid.clone(),
                        message: Message::Text(m),
                    });
                }
            }
            Err(_) => self.broken_framing(&sid, now),
        }
        self.flush();
    }

    // ---- commands ----------------------------------------------------------

    /// Queues a message for `session`. SockJS sessions carry text; binary is
    /// refused except on the raw `/websocket` endpoint, whose messages go
    /// straight to the socket (its own flow control is the connection's).
    pub fn send(
        &mut self,
        session: &SessionId,
        message: Message,
        now: Instant,
    ) -> Result<(), Error> {
        self.touch(now);
        let s = open_session(&mut self.shell.sessions, session)?;
        if let Some(Receiver::WebSocket(conn)) = s.core.receiver() {
            if self
                .shell
                .connections
                .get(&conn)
                .is_some_and(|c| c.framing == Framing::RawWebSocket)
            {
                self.shell
                    .transmits
                    .push_back(HttpTransmit::WebSocketMessage {
                        connection: conn,
                        message,
                    });
                return Ok(());
            }
        }
        let Message::Text(text) = message else {
            return Err(Error::BinaryNotSupported);
        };
        let len = text.len();
        match s.core.queue.push(text, len) {
            Ok(()) => {
                self.shell.dirty.push(session.clone());
                Ok(())
            }
            Err(Full) => {
                if s.core.queue.policy() == OverflowPolicy::CloseSession {
                    self.close_with(
                        session,
                        1011,
                        "Queue overflow",
                        CloseReason::QueueOverflow,
                        now,
                    );
                }
                Err(Error::QueueFull)
            }
        }
    }

    /// Closes `session` with a SockJS close code and reason: queued messages
    /// go out first, then `c[code,"reason"]`, repeated to later requests
    /// until the disconnect delay passes. [`Event::Closed`] follows at once.
    pub fn close(
        &mut self,
        session: &SessionId,
        code: u16,
        reason: &str,
        now: Instant,
    ) -> Result<(), Error> {
        self.touch(now);
        if !self.is_open(session) {
            return Err(Error::NoSuchSession);
        }
        self.close_with(session, code, reason, CloseReason::Application, now);
        self.flush();
        Ok(())
    }

    /// Closes `session` because the application is done with it:
    /// `c[1000,"Normal closure"]` after the queued messages.
    pub fn close_normally(&mut self, session: &SessionId, now: Instant) -> Result<(), Error> {
        let (code, reason) = frame::NORMAL_CLOSURE;
        self.close(session, code, reason, now)
    }

    /// Closes `session` because its application cannot keep up with the
    /// messages it receives: `c[1011,"Application too slow"]`.
    pub fn close_application_too_slow(
        &mut self,
        session: &SessionId,
        now: Instant,
    ) -> Result<(), Error> {
        let (code, reason) = frame::APPLICATION_TOO_SLOW;
        self.close(session, code, reason, now)
    }

    // ---- requests ----------------------------------------------------------

    fn session_request(
        &mut self,
        request: &Request,
        key: &str,
        transport: SessionTransport,
        now: Instant,
    ) {
        let id = request.id;
        if request.method == Method::OPTIONS {
            let response = self.options(request, "OPTIONS, POST");
            return self.respond(id, response);
        }
        let mut headers = HeaderMap::new();
        self.set_cookie(request, &mut headers);
        if transport != SessionTransport::WebSocket {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
        }
        let framing = match transport {
            SessionTransport::XhrSend | SessionTransport::JsonpSend => {
                return self.receive_messages(request, key, transport, headers, now);
            }
            SessionTransport::WebSocket => {
                return self.open_websocket(request, Some(headers), now);
            }
            SessionTransport::Xhr => {
                self.config.cors.apply(request, &mut headers, false);
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/javascript; charset=UTF-8"),
                );
                Framing::Xhr
            }
            SessionTransport::XhrStreaming => {
                self.config.cors.apply(request, &mut headers, false);
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/javascript; charset=UTF-8"),
                );
                Framing::XhrStreaming
            }
            SessionTransport::EventSource => {
                self.config.cors.apply(request, &mut headers, true);
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                );
                Framing::EventSource
            }
            SessionTransport::HtmlFile | SessionTransport::Jsonp => {
                let callback = query_param(&request.query, "c")
                    .or_else(|| query_param(&request.query, "callback"));
                let Some(callback) = callback else {
                    return self.respond(
                        id,
                        error_response(
                            headers,
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &Error::MissingCallback,
                        ),
                    );
                };
                let too_long = transport == SessionTransport::Jsonp && callback.len() > 32;
                if !valid_callback(&callback) || too_long {
                    return self.respond(
                        id,
                        error_response(
                            headers,
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &Error::InvalidCallback,
                        ),
                    );
                }
                if transport == SessionTransport::Jsonp {
                    headers.insert(
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    );
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/javascript; charset=UTF-8"),
                    );
                    Framing::Jsonp(callback)
                } else {
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=UTF-8"),
                    );
                    Framing::HtmlFile(callback)
                }
            }
        };
        let existing = self.by_key.get(key).cloned();
        if existing.is_none() && self.shell.sessions.len() >= self.config.max_sessions {
            return self.respond(id, too_many_sessions());
        }
        if let Some(prelude) = framing.prelude() {
            self.shell.transmits.push_back(HttpTransmit::StreamStart {
                request: id,
                status: StatusCode::OK,
                headers: headers.clone(),
            });
            self.shell.transmits.push_back(HttpTransmit::StreamChunk {
                request: id,
                data: prelude,
            });
        }
        let transport_name = match &framing {
            Framing::Xhr => TransportName::XhrPolling,
            Framing::Jsonp(_) => TransportName::JsonpPolling,
            Framing::XhrStreaming => TransportName::XhrStreaming,
            Framing::EventSource => TransportName::EventSource,
            Framing::HtmlFile(_) => TransportName::HtmlFile,
            Framing::WebSocket => TransportName::WebSocket,
            Framing::RawWebSocket => TransportName::RawWebSocket,
        };
        let receiver = if framing.is_streaming() {
            Receiver::Stream {
                request: id,
                written: 0,
            }
        } else {
            Receiver::Poll(id)
        };
        let is_new = existing.is_none();
        let sid = match existing {
            Some(sid) => sid,
            None => {
                let sid = self.new_session(Some(key.to_owned()), now);
                self.shell.events.push_back(Event::Opened {
                    session: sid.clone(),
                    info: OpenInfo::from_request(transport_name, request),
                });
                sid
            }
        };
        self.shell.connections.insert(
            id,
            Conn {
                session: sid.clone(),
                framing,
                headers,
            },
        );
        let Some(s) = self.shell.sessions.get_mut(&sid) else {
            return;
        };
        match s.core.attach(receiver, now) {
            Attach::Busy(_) => {
                // The session goes on with its receiver; this one learns why not.
                self.put_frame(id, ANOTHER_CONNECTION);
                self.end_request(id);
            }
            Attach::Attached if s.core.lifecycle() == Lifecycle::Closing => {
                let frame = s.dialect.close_frame.clone().unwrap_or_default();
                self.write_queued(&sid, now);
                self.write_frame(&sid, &frame, now);
                if let Some(r) = self.shell.detach(&sid, now) {
                    self.end_request(r);
                }
            }
            Attach::Attached if is_new => self.write_frame(&sid, "o", now),
            Attach::Attached => self.write_queued(&sid, now),
        }
        self.reschedule(&sid);
    }

    fn receive_messages(
        &mut self,
        request: &Request,
        key: &str,
        transport: SessionTransport,
        mut headers: HeaderMap,
        now: Instant,
    ) {
        let id = request.id;
        if transport == SessionTransport::XhrSend {
            self.config.cors.apply(request, &mut headers, false);
        }
        let sid = self.by_key.get(key).cloned();
        if request.body.len() > self.config.max_body {
            let error = Error::PayloadTooLarge {
                limit: self.config.max_body,
            };
            self.respond(
                id,
                error_response(headers, StatusCode::PAYLOAD_TOO_LARGE, &error),
            );
            if let Some(sid) = sid {
                self.close_with(
                    &sid,
                    1009,
                    "Message too big",
                    CloseReason::PayloadTooLarge,
                    now,
                );
            }
            return;
        }
        let form = transport == SessionTransport::JsonpSend
            && request.header_str(&header::CONTENT_TYPE).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        let payload = if form {
            form_pairs(&request.body)
                .find(|(k, _)| k == "d")
                .map(|(_, v)| Bytes::from(v))
                .unwrap_or_default()
        } else {
            request.body.clone()
        };
        let messages = match parse_array(&payload) {
            Ok(m) => m,
            Err(e) => {
                return self.respond(
                    id,
                    error_response(headers, StatusCode::INTERNAL_SERVER_ERROR, &e),
                );
            }
        };
        let Some(sid) = sid else {
            let mut response = not_found();
            response.headers.extend(headers);
            return self.respond(id, response);
        };
        if self.is_open(&sid) {
            for m in messages {
                self.shell.events.push_back(Event::Message {
                    session: sid.clone(),
                    message: Message::Text(m),
                });
            }
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        let response = if transport == SessionTransport::XhrSend {
            Response::new(StatusCode::NO_CONTENT, headers, Bytes::new())
        } else {
            Response::new(StatusCode::OK, headers, Bytes::from_static(b"ok"))
        };
        self.respond(id, response);
    }

    /// A session `/websocket` (`headers` given) or the raw `/websocket`.
    fn open_websocket(&mut self, request: &Request, headers: Option<HeaderMap>, now: Instant) {
        let id = request.id;
        if !request.websocket {
            return self.respond(
                id,
                text_response(StatusCode::BAD_REQUEST, "Not a valid websocket request"),
            );
        }
        if self.shell.sessions.len() >= self.config.max_sessions {
            return self.respond(id, too_many_sessions());
        }
        let raw = headers.is_none();
        self.shell
            .transmits
            .push_back(HttpTransmit::AcceptWebSocket {
                request: id,
                headers: HeaderMap::new(),
            });
        let sid = self.new_session(None, now);
        let framing = if raw {
            Framing::RawWebSocket
        } else {
            Framing::WebSocket
        };
        let transport = if raw {
            TransportName::RawWebSocket
        } else {
            TransportName::WebSocket
        };
        self.shell.connections.insert(
            id,
            Conn {
                session: sid.clone(),
                framing,
                headers: HeaderMap::new(),
            },
        );
        if let Some(s) = self.shell.sessions.get_mut(&sid) {
            s.core.attach(Receiver::WebSocket(id), now);
        }
        if !raw {
            self.write_frame(&sid, "o", now);
        }
        self.shell.events.push_back(Event::Opened {
            session: sid.clone(),
            info: OpenInfo::from_request(transport, request),
        });
        self.reschedule(&sid);
    }

    fn new_session(&mut self, key: Option<String>, now: Instant) -> SessionId {
        let raw_websocket = key.is_none();
        let timing = Timing {
            // WebSocket sessions end with their connection, not by a timer.
            disconnect_delay: (!raw_websocket).then_some(self.config.disconnect_delay),
            heartbeat: Some(self.config.heartbeat_delay),
            stream_limit: self.config.response_limit,
        };
        let state = SjsState {
            key: key.clone(),
            close_frame: None,
        };
        let (rng, queue) = (self.config.rng.as_mut(), self.config.queue);
        let sid = self.shell.open(rng, timing, queue, state, now);
        if let Some(key) = key {
            self.by_key.insert(key, sid.clone());
        }
        sid
    }

    // ---- session logic -----------------------------------------------------

    fn close_with(
        &mut self,
        sid: &SessionId,
        code: u16,
        reason: &str,
        why: CloseReason,
        now: Instant,
    ) {
        let Some(s) = self.shell.sessions.get_mut(sid) else {
            return;
        };
        if !s.core.close() {
            return;
        }
        s.dialect.close_frame = Some(close_frame(code, reason));
        self.shell.events.push_back(Event::Closed {
            session: sid.clone(),
            reason: why,
        });
        if s.dialect.key.is_none() {
            // A WebSocket session: say goodbye on the socket and forget it.
            if let Some(Receiver::WebSocket(conn)) = s.core.receiver() {
                let raw = self
                    .shell
                    .connections
                    .get(&conn)
                    .is_some_and(|c| c.framing == Framing::RawWebSocket);
                if raw {
                    self.shell.connections.remove(&conn);
                    self.shell
                        .transmits
                        .push_back(HttpTransmit::CloseWebSocket {
                            connection: conn,
                            code,
                            reason: reason.to_owned(),
                        });
                } else {
                    let frame = close_frame(code, reason);
                    self.write_queued(sid, now);
                    self.write_frame(sid, &frame, now);
                    self.end_request(conn);
                }
            }
            self.remove(sid, None);
            return;
        }
        if s.core.receiver().is_some() {
            let frame = close_frame(code, reason);
            self.write_queued(sid, now);
            self.write_frame(sid, &frame, now);
            if let Some(r) = self.shell.detach(sid, now) {
                self.end_request(r);
            }
        }
        self.reschedule(sid);
    }

    /// What a passed deadline means here: an `h` frame, or the end of a
    /// session whose client stayed away.
    fn on_due(&mut self, sid: &SessionId, due: Due, now: Instant) {
        match due {
            Due::Nothing => {}
            Due::Heartbeat(_) => self.write_frame(sid, "h", now),
            Due::Expired => {
                let reason = self.is_open(sid).then_some(CloseReason::Expired);
                self.remove(sid, reason);
            }
        }
    }

    fn broken_framing(&mut self, sid: &SessionId, _now: Instant) {
        if let Some(s) = self.shell.sessions.get_mut(sid) {
            if let Some(Receiver::WebSocket(conn)) = s.core.receiver() {
                self.shell.connections.remove(&conn);
                self.shell
                    .transmits
                    .push_back(HttpTransmit::CloseWebSocket {
                        connection: conn,
                        code: 1002,
                        reason: "Broken framing.".into(),
                    });
            }
        }
        self.remove(sid, Some(CloseReason::ParseError));
    }

    /// Forgets a session; tells the application if `reason` is given.
    fn remove(&mut self, sid: &SessionId, reason: Option<CloseReason>) {
        let Some(s) = self.shell.sessions.remove(sid) else {
            return;
        };
        if let Some(key) = &s.dialect.key {
            self.by_key.remove(key);
        }
        if let Some(r) = s.core.receiver() {
            if self.shell.connections.remove(&r.request()).is_some() {
                if let Receiver::WebSocket(conn) = r {
                    self.shell
                        .transmits
                        .push_back(HttpTransmit::CloseWebSocket {
                            connection: conn,
                            code: frame::NORMAL_CLOSURE.0,
                            reason: frame::NORMAL_CLOSURE.1.into(),
                        });
                }
            }
        }
        self.shell.timers.set(sid, None);
        if let (Some(reason), true) = (reason, s.core.is_open()) {
            self.shell.events.push_back(Event::Closed {
                session: sid.clone(),
                reason,
            });
        }
    }

    /// Writes what the queue holds as one `a[...]` frame to the receiver.
    fn write_queued(&mut self, sid: &SessionId, now: Instant) {
        let Some(s) = self.shell.sessions.get_mut(sid) else {
            return;
        };
        if s.core.queue.is_empty() || s.core.receiver().is_none() {
            return;
        }
        let items = s.core.queue.drain();
        let frame = message_frame(items.iter().map(Utf8Bytes::as_str));
        self.write_frame(sid, &frame, now);
    }

    /// Writes one frame to the session's receiver, ending a poll after it and
    /// a stream once over its limit.
    fn write_frame(&mut self, sid: &SessionId, frame: &str, now: Instant) {
        let Some(receiver) = self.shell.sessions.get(sid).and_then(|s| s.core.receiver()) else {
            return;
        };
        let request = receiver.request();
        let Some(written) = self.put_frame(request, frame) else {
            return;
        };
        let Some(s) = self.shell.sessions.get_mut(sid) else {
            return;
        };
        match receiver {
            Receiver::Poll(_) => {
                s.core.detach(now);
            }
            Receiver::Stream { .. } => {
                if s.core.wrote(written) {
                    s.core.detach(now);
                    self.end_request(request);
                }
            }
            Receiver::WebSocket(_) => {}
        }
    }

    /// Writes one frame to a request, attached or not; `None` if the request
    /// is unknown. A long-poll is answered (and forgotten) with it.
    fn put_frame(&mut self, request: RequestId, frame: &str) -> Option<usize> {
        let conn = self.shell.connections.get(&request)?;
        let data = conn.framing.wrap(frame);
        let len = data.len();
        if conn.framing.is_polling() {
            let headers = conn.headers.clone();
            self.shell.connections.remove(&request);
            self.respond(request, Response::new(StatusCode::OK, headers, data));
        } else if conn.framing.is_streaming() {
            self.shell
                .transmits
                .push_back(HttpTransmit::StreamChunk { request, data });
        } else {
            let message = Message::Text(Utf8Bytes::from(frame.to_owned()));
            self.shell
                .transmits
                .push_back(HttpTransmit::WebSocketMessage {
                    connection: request,
                    message,
                });
        }
        Some(len)
    }

    /// Ends a streaming response or closes a WebSocket; forgets the request.
    fn end_request(&mut self, request: RequestId) {
        let Some(conn) = self.shell.connections.remove(&request) else {
            return;
        };
        if conn.framing.is_streaming() {
            self.shell
                .transmits
                .push_back(HttpTransmit::StreamEnd { request });
        } else if matches!(conn.framing, Framing::WebSocket | Framing::RawWebSocket) {
            self.shell
                .transmits
                .push_back(HttpTransmit::CloseWebSocket {
                    connection: request,
                    code: frame::NORMAL_CLOSURE.0,
                    reason: frame::NORMAL_CLOSURE.1.into(),
                });
        }
    }

    fn flush(&mut self) {
        let Some((now, dirty)) = self.shell.take_dirty() else {
            return;
        };
        for sid in dirty {
            if self.is_open(&sid) {
                self.write_queued(&sid, now);
                self.reschedule(&sid);
            }
        }
    }

    // ---- rendering ---------------------------------------------------------

    fn set_cookie(&self, request: &Request, headers: &mut HeaderMap) {
        if !self.config.cookie_needed {
            return;
        }
        let value = request
            .header_str(&header::COOKIE)
            .and_then(|cookies| {
                cookies.split(';').find_map(|c| {
                    let (name, value) = c.split_once('=')?;
                    (name.trim() == "JSESSIONID").then(|| value.trim().to_owned())
                })
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "dummy".to_owned());
        let cookie = HeaderValue::from_str(&format!("JSESSIONID={value}; path=/"))
            .unwrap_or(HeaderValue::from_static("JSESSIONID=dummy; path=/"));
        headers.insert(header::SET_COOKIE, cookie);
    }

    /// A CORS preflight answer, cacheable for a year.
    fn options(&self, request: &Request, methods: &'static str) -> Response {
        let mut headers = HeaderMap::new();
        self.set_cookie(request, &mut headers);
        cache_for_a_year(request, &mut headers);
        // As long as the one-year cache of the answer itself.
        let max_age = "31536000";
        self.config
            .cors
            .preflight(request, headers, methods, max_age)
    }

    fn iframe_response(&self, request: &Request) -> Response {
        if request
            .headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v == self.iframe_etag)
        {
            return Response::new(StatusCode::NOT_MODIFIED, HeaderMap::new(), Bytes::new());
        }
        let mut headers = HeaderMap::new();
        cache_for_a_year(request, &mut headers);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        );
        headers.insert(header::ETAG, self.iframe_etag.clone());
        Response::new(StatusCode::OK, headers, self.iframe.clone())
    }
}

crate::endpoint::delegate_endpoint!(SockJsServer, |s, session, code, reason, now| s
    .close(session, code, reason, now));

/// Parses a SockJS send payload: a JSON array whose items become messages
/// (strings as they are, other values as their JSON text).
fn parse_array(payload: &[u8]) -> Result<Vec<Utf8Bytes>, Error> {
    if payload.is_empty() {
        return Err(Error::PayloadExpected);
    }
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Err(_) => Err(Error::BrokenJson),
        Ok(serde_json::Value::Array(items)) => Ok(items.into_iter().map(value_to_text).collect()),
        Ok(_) => Err(Error::PayloadExpected),
    }
}

fn value_to_text(value: serde_json::Value) -> Utf8Bytes {
    match value {
        serde_json::Value::String(s) => Utf8Bytes::from(s),
        other => Utf8Bytes::from(other.to_string()),
    }
}

fn not_found() -> Response {
    text_response(
        StatusCode::NOT_FOUND,
        Bytes::from_static(b"404 Error: Page not found\n"),
    )
}

fn too_many_sessions() -> Response {
    text_response(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions")
}

/// sockjs-node's error answer: the status and the message as plain text,
/// keeping the headers the transport had set.
fn error_response(mut headers: HeaderMap, status: StatusCode, error: &Error) -> Response {
    let message = match error {
        Error::PayloadExpected => "Payload expected.".to_owned(),
        Error::BrokenJson => "Broken JSON encoding.".to_owned(),
        Error::MissingCallback => "\"callback\" parameter required".to_owned(),
        Error::InvalidCallback => "invalid \"callback\" parameter".to_owned(),
        other => other.to_string(),
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    Response::new(status, headers, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_follows_the_dispatcher() {
        assert_eq!(route("", true), Some(Route::Greeting));
        assert_eq!(route("/", true), Some(Route::Greeting));
        assert_eq!(route("/info", true), Some(Route::Info));
        assert_eq!(route("/info/", true), Some(Route::Info));
        // The iframe names, good and bad, are the official suite's
        // (tests/sockjs_suite.rs, `iframe_page_test_*`).
        assert_eq!(route("/iframe.html", true), Some(Route::Iframe));
        for missing in ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/"] {
            assert_eq!(route(missing, true), None, "{missing}");
        }
        assert_eq!(
            route("/000/abc/xhr", true),
            Some(Route::Session {
                key: "abc",
                transport: SessionTransport::Xhr
            })
        );
        assert_eq!(
            route("/000/abc/xhr_send/", true),
            Some(Route::Session {
                key: "abc",
                transport: SessionTransport::XhrSend
            })
        );
        for bad in [
            "///xhr",
            "//a/xhr",
            "/a./a/xhr",
            "/a/a./xhr",
            "/./././xhr",
            "/xhr",
            "/a/b/c/xhr",
            "/a/b/nope",
        ] {
            assert_eq!(route(bad, true), None, "{bad}");
        }
        assert_eq!(route("/websocket", true), Some(Route::RawWebSocket));
        assert_eq!(route("/websocket", false), None);
        assert_eq!(route("/a/b/websocket", false), None);
    }

    #[test]
    fn send_payloads() {
        assert_eq!(
            parse_array(br#"["a","b"]"#).unwrap(),
            [Utf8Bytes::from_static("a"), Utf8Bytes::from_static("b")]
        );
        assert!(parse_array(b"[]").unwrap().is_empty());
        assert!(matches!(parse_array(b""), Err(Error::PayloadExpected)));
        assert!(matches!(parse_array(b"[\"x"), Err(Error::BrokenJson)));
        assert!(matches!(parse_array(b"{}"), Err(Error::PayloadExpected)));
        assert_eq!(
            parse_array(b"[1,null]").unwrap(),
            [Utf8Bytes::from_static("1"), Utf8Bytes::from_static("null")]
        );
    }
}
