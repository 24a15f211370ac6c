//! [`SockJsService`]: a [`SockJsServer`] served over hyper.
//!
//! One task owns the machine. HTTP handlers turn requests into
//! [`Request`]s and wait on a oneshot for the answer (a long-poll waits
//! there for data); streaming answers come back as a channel of chunks;
//! WebSocket upgrades are completed by [`crate::upgrade`] and their
//! messages pass through the task. The task sleeps until the machine's
//! `poll_timeout()` and then calls `handle_timeout(now)`. Every protocol
//! decision (status codes, framing, heartbeats, expiry) is the machine's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use duplex_polling::{
    CloseReason, Event, Message, OpenInfo, Request, RequestId, Response, SessionId, SockJsConfig,
    SockJsServer, Transmit,
};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, oneshot};

use super::body::SockJsBody;
use super::socket::{SessionGuard, SockJsError, SockJsSocket};
use crate::ServerConfig;

/// Requests, sends and WebSocket messages waiting for the endpoint task;
/// their senders wait while it is full.
const COMMAND_QUEUE: usize = 1024;
/// Chunks of one streaming response waiting to be written; past it the
/// client is not reading and the request is aborted.
const STREAM_CHUNKS: usize = 1024;
/// Messages waiting to be written on one WebSocket; past it the client is
/// not reading and the connection is closed.
const WEBSOCKET_QUEUE: usize = 4096;

/// What the service's handlers and sockets ask of the endpoint task.
pub(crate) enum Command {
    Request {
        request: Request,
        reply: oneshot::Sender<Reply>,
    },
    WebSocketMessage(RequestId, Message),
    Send {
        session: SessionId,
        message: Message,
        reply: oneshot::Sender<Result<(), SockJsError>>,
    },
    Close {
        session: SessionId,
        code: u16,
        reason: String,
        reply: oneshot::Sender<Result<(), SockJsError>>,
    },
    Inspect(Box<dyn FnOnce(&SockJsServer) + Send>),
    CloseAll {
        code: u16,
        reason: String,
        reply: oneshot::Sender<usize>,
    },
}

/// Notices sent from destructors, which cannot wait: one per request,
/// connection or socket at most, so this unbounded lane holds no more than
/// there are live requests and sessions.
#[derive(Debug)]
pub(crate) enum Control {
    /// A request's client went away before it was fully answered.
    Abort(RequestId),
    /// A WebSocket closed.
    WebSocketClosed(RequestId),
    /// Every handle on a session's socket was dropped.
    Release(SessionId),
}

/// How the endpoint answers a request.
pub(crate) enum Reply {
    Response(Response),
    Stream {
        status: StatusCode,
        headers: HeaderMap,
        chunks: mpsc::Receiver<Bytes>,
    },
    Accept {
        headers: HeaderMap,
        outgoing: mpsc::Receiver<WsOut>,
    },
}

/// What the endpoint wants written on a WebSocket.
pub(crate) enum WsOut {
    Message(Message),
    Close(u16, String),
}

type Handler = Arc<dyn Fn(SockJsSocket) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Shared {
    prefix: String,
    body_limit: usize,
    commands: mpsc::Sender<Command>,
    control: mpsc::UnboundedSender<Control>,
    next_id: std::sync::atomic::AtomicU64,
    websocket_config: Box<dyn Fn() -> ServerConfig + Send + Sync>,
}

/// A SockJS endpoint mounted at a prefix, as a hyper service: every
/// transport of duplex-polling's SockJS dialect, and its session and raw
/// `/websocket` endpoints. Each new session is handed to the handler as a
/// [`SockJsSocket`] in its own task. Cheap to clone; clones serve the same
/// sessions.
///
/// ```no_run
/// use duplex_tokio::sockjs::SockJsService;
/// use futures_util::StreamExt;
///
/// # fn demo() {
/// let echo = SockJsService::new("/echo", Default::default(), |mut socket| async move {
///     while let Some(message) = socket.next().await {
///         if socket.send(message).await.is_err() {
///             break;
///         }
///     }
/// });
/// // Route requests whose path starts with `/echo` to `echo.handle(req)`.
/// # }
/// ```
#[derive(Clone)]
pub struct SockJsService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SockJsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockJsService")
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

impl SockJsService {
    /// Serves `config`'s endpoint under `prefix` (e.g. `/echo`; the rest of
    /// the path goes to the endpoint) and runs `handler` for each session.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the endpoint is a task).
    pub fn new<F, Fut>(prefix: &str, config: SockJsConfig, handler: F) -> SockJsService
    where
        F: Fn(SockJsSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        SockJsService::with_websocket_config(prefix, config, ServerConfig::default, handler)
    }

    /// As [`SockJsService::new`], with the WebSocket settings made by
    /// `websocket_config` for each connection.
    pub fn with_websocket_config<F, Fut>(
        prefix: &str,
        config: SockJsConfig,
        websocket_config: impl Fn() -> ServerConfig + Send + Sync + 'static,
        handler: F,
    ) -> SockJsService
    where
        F: Fn(SockJsSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let server = SockJsServer::new(config);
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |socket| Box::pin(handler(socket)));
        let task = Task {
            body_limit: server.body_limit(),
            server,
            handler,
            commands: commands.downgrade(),
            control: control.clone(),
            replies: HashMap::new(),
            streams: HashMap::new(),
            websockets: HashMap::new(),
            sessions: HashMap::new(),
            waiting: HashSet::new(),
        };
        let body_limit = task.body_limit;
        tokio::spawn(task.run(command_rx, control_rx));
        SockJsService {
            shared: Arc::new(Shared {
                prefix: prefix.trim_end_matches('/').to_owned(),
                body_limit,
                commands,
                control,
                next_id: std::sync::atomic::AtomicU64::new(0),
                websocket_config: Box::new(websocket_config),
            }),
        }
    }

    /// The prefix the service is mounted at.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Whether `path` is under this service's prefix.
    pub fn matches(&self, path: &str) -> bool {
        path.strip_prefix(self.shared.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Runs `f` on the endpoint (between two inputs) and returns its
    /// result; `None` if the endpoint task is gone. For statistics and
    /// tests (`session_count`, `connection_count`).
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&SockJsServer) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |server: &SockJsServer| {
            let _ = tx.send(f(server));
        });
        self.shared
            .commands
            .send(Command::Inspect(job))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Closes every open session with `code` and `reason` (what is queued
    /// goes out first, then `c[code,"reason"]`) and returns how many there
    /// were. For a server shutting down: `close_all(3000, "Server shutting down")`.
    pub async fn close_all(&self, code: u16, reason: &str) -> usize {
        let (reply, rx) = oneshot::channel();
        let command = Command::CloseAll {
            code,
            reason: reason.to_owned(),
            reply,
        };
        if self.shared.commands.send(command).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Answers one HTTP request under the prefix.
    pub async fn handle<B>(&self, mut req: http::Request<B>) -> http::Response<SockJsBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        let full_path = req.uri().path();
        let path = match full_path.strip_prefix(self.shared.prefix.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
            _ => return plain(StatusCode::NOT_FOUND, "Not found"),
        };
        let query = req.uri().query().unwrap_or("").to_owned();

        // A request that is a valid RFC 6455 upgrade is marked so; the
        // endpoint decides whether to accept it (and answers the others).
        let upgrade = if wants_websocket(req.headers()) {
            crate::upgrade(&mut req, (self.shared.websocket_config)(), None).ok()
        } else {
            None
        };
        let (parts, body) = req.into_parts();
        let body = if upgrade.is_some() {
            Bytes::new()
        } else {
            match read_limited(body, self.shared.body_limit.saturating_add(1)).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!("SockJS request body failed: {e}");
                    return plain(StatusCode::BAD_REQUEST, "Bad request body");
                }
            }
        };
        let id = RequestId(
            self.shared
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1,
        );
        let request = Request {
            id,
            method: parts.method,
            path,
            query,
            headers: parts.headers,
            body,
            websocket: upgrade.is_some(),
            wall_clock: Some(SystemTime::now()),
        };
        let (tx, rx) = oneshot::channel();
        let mut guard = AbortGuard {
            control: &self.shared.control,
            id,
            armed: true,
        };
        if self
            .shared
            .commands
            .send(Command::Request { request, reply: tx })
            .await
            .is_err()
        {
            guard.armed = false;
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Service stopped");
        }
        let reply = rx.await;
        guard.armed = false;
        match reply {
            Ok(Reply::Response(response)) => {
                let mut out = http::Response::new(SockJsBody::full(response.body));
                *out.status_mut() = response.status;
                *out.headers_mut() = response.headers;
                out
            }
            Ok(Reply::Stream {
                status,
                headers,
                chunks,
            }) => {
                let mut out = http::Response::new(SockJsBody::stream(
                    chunks,
                    id,
                    self.shared.control.clone(),
                ));
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                out
            }
            Ok(Reply::Accept { headers, outgoing }) => match upgrade {
                Some((response, upgrade)) => {
                    let mut response = response.map(|()| SockJsBody::empty());
                    response.headers_mut().extend(headers);
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        match upgrade.await {
                            Ok(ws) => run_websocket(&shared, id, ws, outgoing).await,
                            Err(e) => tracing::debug!(%id, "SockJS upgrade failed: {e}"),
                        }
                        let _ = shared.control.send(Control::WebSocketClosed(id));
                    });
                    response
                }
                None => {
                    let _ = self.shared.control.send(Control::WebSocketClosed(id));
                    plain(StatusCode::BAD_REQUEST, "Not a valid websocket request")
                }
            },
            Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "Service stopped"),
        }
    }
}

impl<B> hyper::service::Service<http::Request<B>> for SockJsService
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<SockJsBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

/// Tells the endpoint a request was dropped (the client went away) unless
/// it was answered.
struct AbortGuard<'a> {
    control: &'a mpsc::UnboundedSender<Control>,
    id: RequestId,
    armed: bool,
}

impl Drop for AbortGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.control.send(Control::Abort(self.id));
        }
    }
}

/// Moves messages between one accepted WebSocket and the endpoint task.
async fn run_websocket<S>(
    shared: &Shared,
    id: RequestId,
    mut ws: crate::WebSocketStream<S>,
    mut outgoing: mpsc::Receiver<WsOut>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            out = outgoing.recv() => {
                let mut next = out;
                loop {
                    match next {
                        Some(WsOut::Message(m)) => {
                            if ws.feed(to_ws(m)).await.is_err() {
                                return;
                            }
                        }
                        Some(WsOut::Close(code, reason)) => {
                            let _ = SinkExt::flush(&mut ws).await;
                            let _ = ws.close_with(duplex_ws::CloseCode::from(code), &reason).await;
                            return;
                        }
                        None => {
                            let _ = SinkExt::flush(&mut ws).await;
                            let _ = ws.close_with(duplex_ws::CloseCode::GOING_AWAY, "").await;
                            return;
                        }
                    }
                    match outgoing.try_recv() {
                        Ok(m) => next = Some(m),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => next = None,
                    }
                }
                if SinkExt::flush(&mut ws).await.is_err() {
                    return;
                }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(message)) => {
                    let message = match message {
                        duplex_ws::Message::Text(t) => Message::Text(t),
                        duplex_ws::Message::Binary(b) => Message::Binary(b),
                    };
                    if shared.commands.send(Command::WebSocketMessage(id, message)).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(%id, "SockJS WebSocket failed: {e}");
                    return;
                }
                None => return,
            },
        }
    }
}

fn to_ws(message: Message) -> duplex_ws::Message {
    match message {
        Message::Text(t) => duplex_ws::Message::Text(t),
        Message::Binary(b) => duplex_ws::Message::Binary(b),
    }
}

fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Reads at most `max` bytes of the body (the endpoint answers anything
/// beyond its limit with 413 without the rest being buffered).
async fn read_limited<B>(mut body: B, max: usize) -> Result<Bytes, B::Error>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let room = max.saturating_sub(out.len());
            out.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            if out.len() >= max {
                break;
            }
        }
    }
    Ok(out.freeze())
}

fn plain(status: StatusCode, body: &'static str) -> http::Response<SockJsBody> {
    let mut out = http::Response::new(SockJsBody::full(Bytes::from_static(body.as_bytes())));
    *out.status_mut() = status;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    out
}

/// One session as the task keeps it for its socket.
struct SessionSlot {
    inbox: mpsc::Sender<Message>,
    closed: Arc<OnceLock<CloseReason>>,
    /// Sends waiting for room in the session's queue, oldest first.
    pending: VecDeque<(Message, oneshot::Sender<Result<(), SockJsError>>)>,
}

/// Messages received on one session waiting for the application; past it
/// the application is too slow and the session is closed.
const INBOX: usize = 1024;

struct Task {
    server: SockJsServer,
    body_limit: usize,
    handler: Handler,
    /// Handed to new sockets; weak so that the task ends once the service
    /// and every socket are gone.
    commands: mpsc::WeakSender<Command>,
    control: mpsc::UnboundedSender<Control>,
    replies: HashMap<RequestId, oneshot::Sender<Reply>>,
    streams: HashMap<RequestId, mpsc::Sender<Bytes>>,
    websockets: HashMap<RequestId, mpsc::Sender<WsOut>>,
    sessions: HashMap<SessionId, SessionSlot>,
    /// Sessions with sends waiting for queue room.
    waiting: HashSet<SessionId>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        loop {
            // Due timers first: with `biased` and a busy channel, the sleep
            // branch below might never be polled, starving heart-beats and
            // expiry under steady load.
            let now = Instant::now();
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
                self.pump();
            }
            let deadline = self.server.poll_timeout();
            tokio::select! {
                biased;
                c = control.recv() => match c {
                    Some(c) => self.on_control(c),
                    None => return,
                },
                c = commands.recv() => match c {
                    Some(c) => self.on_command(c),
                    None => return,
                },
                () = sleep_until(deadline) => self.server.handle_timeout(Instant::now()),
            }
            self.pump();
        }
    }

    fn on_control(&mut self, control: Control) {
        let now = Instant::now();
        match control {
            Control::Abort(id) => {
                self.replies.remove(&id);
                self.streams.remove(&id);
                self.server.abort(id, now);
            }
            Control::WebSocketClosed(id) => {
                self.websockets.remove(&id);
                self.server.websocket_closed(id, now);
            }
            Control::Release(session) => {
                // The application dropped its socket: close as a
                // WebSocket would.
                let _ = self.server.close(&session, 1000, "Normal closure", now);
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Request { request, reply } => {
                self.replies.insert(request.id, reply);
                self.server.handle_request(request, now);
            }
            Command::WebSocketMessage(id, message) => {
                self.server.websocket_message(id, message, now);
            }
            Command::Send {
                session,
                message,
                reply,
            } => match self.sessions.get_mut(&session) {
                Some(slot) => {
                    slot.pending.push_back((message, reply));
                    self.waiting.insert(session);
                }
                None => {
                    let _ = reply.send(Err(SockJsError::Closed));
                }
            },
            Command::Close {
                session,
                code,
                reason,
                reply,
            } => {
                let result = self
                    .server
                    .close(&session, code, &reason, now)
                    .map_err(|_| SockJsError::Closed);
                let _ = reply.send(result);
            }
            Command::Inspect(f) => f(&self.server),
            Command::CloseAll {
                code,
                reason,
                reply,
            } => {
                let open: Vec<SessionId> = self.sessions.keys().cloned().collect();
                let closed = open
                    .iter()
                    .filter(|session| self.server.close(session, code, &reason, now).is_ok())
                    .count();
                let _ = reply.send(closed);
            }
        }
    }

    /// Hands events to the application and transmits to their requests,
    /// and feeds waiting sends, until none of them has more.
    fn pump(&mut self) {
        loop {
            let now = Instant::now();
            let mut progressed = false;
            while let Some(event) = self.server.poll_event() {
                progressed = true;
                self.on_event(event, now);
            }
            let mut dropped = Vec::new();
            while let Some(transmit) = self.server.poll_transmit() {
                progressed = true;
                self.route(transmit, &mut dropped);
            }
            for (id, websocket) in dropped {
                if websocket {
                    self.server.websocket_closed(id, now);
                } else {
                    self.server.abort(id, now);
                }
            }
            progressed |= self.feed_waiting(now);
            if !progressed {
                return;
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Opened { session, info } => self.open_socket(session, info),
            Event::Message { session, message } => {
                let Some(slot) = self.sessions.get(&session) else {
                    return;
                };
                match slot.inbox.try_send(message) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!(%session, "SockJS application too slow: inbox full");
                        let _ = self
                            .server
                            .close(&session, 1011, "Application too slow", now);
                    }
                    // The application stopped reading; its sends may go on.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            Event::Closed { session, reason } => {
                if let Some(slot) = self.sessions.remove(&session) {
                    let _ = slot.closed.set(reason);
                    for (_, reply) in slot.pending {
                        let _ = reply.send(Err(SockJsError::Closed));
                    }
                }
                self.waiting.remove(&session);
            }
        }
    }

    fn open_socket(&mut self, session: SessionId, info: OpenInfo) {
        let Some(commands) = self.commands.upgrade() else {
            return;
        };
        let (inbox, rx) = mpsc::channel(INBOX);
        let closed = Arc::new(OnceLock::new());
        self.sessions.insert(
            session.clone(),
            SessionSlot {
                inbox,
                closed: closed.clone(),
                pending: VecDeque::new(),
            },
        );
        let guard = Arc::new(SessionGuard::new(session.clone(), self.control.clone()));
        let socket = SockJsSocket::new(session, info, rx, commands, closed, guard);
        tokio::spawn((self.handler)(socket));
    }

    fn route(&mut self, transmit: Transmit, dropped: &mut Vec<(RequestId, bool)>) {
        match transmit {
            Transmit::Response { request, response } => {
                if let Some(tx) = self.replies.remove(&request) {
                    // The client may be gone already; nothing to do then.
                    let _ = tx.send(Reply::Response(response));
                }
            }
            Transmit::StreamStart {
                request,
                status,
                headers,
            } => {
                let (tx, rx) = mpsc::channel(STREAM_CHUNKS);
                let delivered = self.replies.remove(&request).is_some_and(|reply| {
                    reply
                        .send(Reply::Stream {
                            status,
                            headers,
                            chunks: rx,
                        })
                        .is_ok()
                });
                if delivered {
                    self.streams.insert(request, tx);
                } else {
                    dropped.push((request, false));
                }
            }
            Transmit::StreamChunk { request, data } => {
                if let Some(tx) = self.streams.get(&request) {
                    if tx.try_send(data).is_err() {
                        self.streams.remove(&request);
                        dropped.push((request, false));
                    }
                }
            }
            Transmit::StreamEnd { request } => {
                // Dropping the sender ends the body.
                self.streams.remove(&request);
            }
            Transmit::AcceptWebSocket { request, headers } => {
                let (tx, rx) = mpsc::channel(WEBSOCKET_QUEUE);
                let delivered = self.replies.remove(&request).is_some_and(|reply| {
                    reply
                        .send(Reply::Accept {
                            headers,
                            outgoing: rx,
                        })
                        .is_ok()
                });
                if delivered {
                    self.websockets.insert(request, tx);
                } else {
                    dropped.push((request, true));
                }
            }
            Transmit::WebSocketMessage {
                connection,
                message,
            } => {
                if let Some(tx) = self.websockets.get(&connection) {
                    if tx.try_send(WsOut::Message(message)).is_err() {
                        self.websockets.remove(&connection);
                        dropped.push((connection, true));
                    }
                }
            }
            Transmit::CloseWebSocket {
                connection,
                code,
                reason,
            } => {
                if let Some(tx) = self.websockets.remove(&connection) {
                    // Full: dropping the sender closes the socket anyway.
                    let _ = tx.try_send(WsOut::Close(code, reason));
                }
            }
        }
    }

    /// Moves waiting sends into session queues as far as they have room.
    fn feed_waiting(&mut self, now: Instant) -> bool {
        let mut progressed = false;
        let waiting: Vec<SessionId> = self.waiting.iter().cloned().collect();
        for session in waiting {
            let Some(slot) = self.sessions.get_mut(&session) else {
                self.waiting.remove(&session);
                continue;
            };
            while !slot.pending.is_empty() {
                match self.server.send_capacity(&session) {
                    Some(0) => break,
                    Some(_) => {
                        let Some((message, reply)) = slot.pending.pop_front() else {
                            break;
                        };
                        let result = self
                            .server
                            .send(&session, message, now)
                            .map_err(SockJsError::Session);
                        let _ = reply.send(result);
                        progressed = true;
                    }
                    None => {
                        for (_, reply) in slot.pending.drain(..) {
                            let _ = reply.send(Err(SockJsError::Closed));
                        }
                    }
                }
            }
            if slot.pending.is_empty() {
                self.waiting.remove(&session);
            }
        }
        progressed
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
