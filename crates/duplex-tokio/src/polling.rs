//! [`PollingService`]: any `duplex-polling` [`Endpoint`] (the Engine.IO
//! dialect today) served over hyper.
//!
//! The service is plumbing only. It turns each HTTP request into a
//! [`duplex_polling::Request`] with a fresh [`RequestId`], hands WebSocket
//! upgrades to [`crate::upgrade`] and their messages to the endpoint, parks
//! each request on a oneshot channel until the endpoint answers it (a
//! long-poll waits there for data), runs one timer task that sleeps until
//! `poll_timeout()` and then calls `handle_timeout(now)`, and passes the
//! endpoint's events to an [`Application`]. Every protocol decision (status
//! codes, heartbeats, the upgrade, what a second GET means) is the
//! endpoint's.
//!
//! One mutex guards the endpoint and the application. Application code that
//! may call back into the service (user handlers) is not run under it: the
//! application queues it on [`Deferred`], and the service runs the queue
//! after releasing the lock, one closure at a time, in order, whatever task
//! happens to be first (like an event loop: a closure that emits queues the
//! follow-up work behind itself).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use duplex_polling::{Endpoint, Event, Message, Request, RequestId, Response, Transmit};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::ServerConfig;

/// The body of every response the service writes.
pub type ResponseBody = Full<Bytes>;

/// Work to run after the service's lock is released: user handlers, which
/// may call back into the service.
#[derive(Default)]
pub struct Deferred(VecDeque<Box<dyn FnOnce() + Send>>);

impl Deferred {
    /// Queues `f`; it runs after the current operation, in order.
    pub fn push(&mut self, f: impl FnOnce() + Send + 'static) {
        self.0.push_back(Box::new(f));
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("queued", &self.0.len())
            .finish()
    }
}

/// What runs on top of an endpoint: it gets the endpoint's events (with the
/// endpoint at hand to answer), and may keep timers of its own.
///
/// Called with the service's lock held: do the bookkeeping here and push
/// anything that may call back into the service onto `deferred`.
pub trait Application<E>: Send + 'static {
    /// An event of the endpoint.
    fn on_event(&mut self, endpoint: &mut E, event: Event, now: Instant, deferred: &mut Deferred);

    /// When the application next wants [`Application::handle_timeout`].
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The application's timers are due.
    fn handle_timeout(&mut self, _endpoint: &mut E, _now: Instant, _deferred: &mut Deferred) {}
}

/// The application that sends every message back on its session: the
/// engine.io-protocol suite's server.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl<E: Endpoint> Application<E> for Echo {
    fn on_event(&mut self, endpoint: &mut E, event: Event, now: Instant, _: &mut Deferred) {
        if let Event::Message { session, message } = event {
            // A full queue or a closing session: the echo is dropped, as
            // the reference drops sends to a closed socket.
            let _ = endpoint.send(&session, message, now);
        }
    }
}

/// How the service answers a parked request.
enum Reply {
    Response(Response),
    Accept {
        headers: HeaderMap,
        outgoing: mpsc::Receiver<WsOut>,
    },
}

/// What the endpoint wants written on a WebSocket.
enum WsOut {
    Message(Message),
    Close(u16, String),
}

/// Most messages waiting to be written on one WebSocket; past it the
/// client is not reading, and the connection is closed.
const WEBSOCKET_QUEUE: usize = 4096;

struct Core<E, A> {
    endpoint: E,
    app: A,
    next_id: u64,
    replies: HashMap<RequestId, oneshot::Sender<Reply>>,
    websockets: HashMap<RequestId, mpsc::Sender<WsOut>>,
    deferred: Deferred,
    dispatching: bool,
    /// The deadline the timer task sleeps until (`None`: no timer armed).
    armed: Option<Instant>,
    timer_started: bool,
}

impl<E: Endpoint, A: Application<E>> Core<E, A> {
    /// Hands events to the application and transmits to their requests
    /// until neither has more.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.app
                    .on_event(&mut self.endpoint, event, now, &mut self.deferred);
            }
            let mut overflowed = Vec::new();
            while let Some(transmit) = self.endpoint.poll_transmit() {
                progressed = true;
                self.route(transmit, &mut overflowed);
            }
            for id in overflowed {
                self.endpoint.websocket_closed(id, now);
            }
            if !progressed {
                return;
            }
        }
    }

    fn route(&mut self, transmit: Transmit, overflowed: &mut Vec<RequestId>) {
        match transmit {
            Transmit::Response { request, response } => {
                if let Some(tx) = self.replies.remove(&request) {
                    // The client may be gone already; nothing to do then.
                    let _ = tx.send(Reply::Response(response));
                }
            }
            Transmit::AcceptWebSocket { request, headers } => {
                let (tx, rx) = mpsc::channel(WEBSOCKET_QUEUE);
                if let Some(reply) = self.replies.remove(&request) {
                    if reply
                        .send(Reply::Accept {
                            headers,
                            outgoing: rx,
                        })
                        .is_ok()
                    {
                        self.websockets.insert(request, tx);
                        return;
                    }
                }
                overflowed.push(request);
            }
            Transmit::WebSocketMessage {
                connection,
                message,
            } => {
                if let Some(tx) = self.websockets.get(&connection) {
                    if tx.try_send(WsOut::Message(message)).is_err() {
                        self.websockets.remove(&connection);
                        overflowed.push(connection);
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
            Transmit::StreamStart { request, .. }
            | Transmit::StreamChunk { request, .. }
            | Transmit::StreamEnd { request } => {
                // Streaming responses (SockJS, Server-Sent Events) are not
                // carried by this service yet.
                tracing::warn!(%request, "streaming transmit dropped: not supported by PollingService");
                if let Some(tx) = self.replies.remove(&request) {
                    let _ = tx.send(Reply::Response(plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "streaming transports are not supported by this service\n",
                    )));
                }
            }
        }
    }

    /// Tells the machines the time if a deadline of theirs passed, so that
    /// an input arriving after it sees them as they are after it even if
    /// the timer task has not woken yet. Running each due timer at its own
    /// deadline (a late wake-up must not stretch a ping timeout) is the
    /// endpoint's own business: duplex-engineio's session machine does it
    /// with every input.
    fn tick(&mut self, now: Instant) {
        if self.endpoint.poll_timeout().is_some_and(|at| at <= now) {
            self.endpoint.handle_timeout(now);
        }
        if self.app.poll_timeout().is_some_and(|at| at <= now) {
            self.app
                .handle_timeout(&mut self.endpoint, now, &mut self.deferred);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.endpoint.poll_timeout(), self.app.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

struct Shared<E, A> {
    core: Mutex<Core<E, A>>,
    /// Wakes the timer task when a deadline earlier than the armed one appears.
    timer: Arc<Notify>,
    mount: String,
    websocket_config: Box<dyn Fn() -> ServerConfig + Send + Sync>,
}

impl<E, A> Drop for Shared<E, A> {
    fn drop(&mut self) {
        // Lets the timer task see that the service is gone.
        self.timer.notify_one();
    }
}

/// An [`Endpoint`] and its [`Application`] served over hyper: a cheap,
/// cloneable handle (all clones serve the same sessions).
///
/// Use it as a hyper service ([`hyper::service::Service`]), a
/// [`tower::Service`], or call [`PollingService::handle`] from a router.
pub struct PollingService<E, A> {
    shared: Arc<Shared<E, A>>,
}

impl<E, A> Clone for PollingService<E, A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// A [`PollingService`] that does not keep it alive (for applications that
/// hand out handles to themselves).
pub struct WeakPollingService<E, A> {
    shared: Weak<Shared<E, A>>,
}

impl<E, A> Clone for WeakPollingService<E, A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E, A> std::fmt::Debug for WeakPollingService<E, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakPollingService").finish_non_exhaustive()
    }
}

impl<E, A> WeakPollingService<E, A> {
    /// The service, if it still exists.
    pub fn upgrade(&self) -> Option<PollingService<E, A>> {
        self.shared
            .upgrade()
            .map(|shared| PollingService { shared })
    }
}

impl<E, A> std::fmt::Debug for PollingService<E, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollingService")
            .field("mount", &self.shared.mount)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked elsewhere leaves the data consistent: every
    // mutation is completed before user code runs.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<E, A> PollingService<E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    /// Serves `endpoint` with `app` under the path prefix `mount` (e.g.
    /// `/socket.io`; the rest of the path goes to the endpoint). WebSockets
    /// get [`ServerConfig::default`].
    pub fn new(endpoint: E, app: A, mount: &str) -> Self {
        Self::with_websocket_config(endpoint, app, mount, ServerConfig::default)
    }

    /// As [`PollingService::new`], with the WebSocket settings made by
    /// `websocket_config` for each connection.
    pub fn with_websocket_config(
        endpoint: E,
        app: A,
        mount: &str,
        websocket_config: impl Fn() -> ServerConfig + Send + Sync + 'static,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                core: Mutex::new(Core {
                    endpoint,
                    app,
                    next_id: 0,
                    replies: HashMap::new(),
                    websockets: HashMap::new(),
                    deferred: Deferred::default(),
                    dispatching: false,
                    armed: None,
                    timer_started: false,
                }),
                timer: Arc::new(Notify::new()),
                mount: mount.trim_end_matches('/').to_owned(),
                websocket_config: Box::new(websocket_config),
            }),
        }
    }

    /// Requests waiting for the endpoint's answer (parked long-polls) and
    /// WebSockets open, for statistics and leak checks.
    pub fn in_flight(&self) -> (usize, usize) {
        let core = lock(&self.shared.core);
        (core.replies.len(), core.websockets.len())
    }

    /// A handle that does not keep the service alive.
    pub fn downgrade(&self) -> WeakPollingService<E, A> {
        WeakPollingService {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The path prefix this service is mounted at.
    pub fn mount(&self) -> &str {
        &self.shared.mount
    }

    /// Runs `f` on the endpoint and the application at the current time,
    /// then writes what it caused and runs the deferred work. This is how
    /// application handles (a socket's `emit`) reach the machines.
    pub fn with<R>(&self, f: impl FnOnce(&mut E, &mut A, Instant, &mut Deferred) -> R) -> R {
        let result = {
            let mut guard = lock(&self.shared.core);
            let core = &mut *guard;
            let now = Instant::now();
            core.tick(now);
            let r = f(&mut core.endpoint, &mut core.app, now, &mut core.deferred);
            core.pump(now);
            self.rearm(core);
            r
        };
        self.run_deferred();
        result
    }

    /// Wakes the timer task if the next deadline is earlier than the one it
    /// sleeps until.
    fn rearm(&self, core: &mut Core<E, A>) {
        if let Some(next) = core.next_deadline() {
            if core.armed.is_none_or(|armed| next < armed) {
                core.armed = Some(next);
                self.shared.timer.notify_one();
            }
        }
        if !core.timer_started {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                core.timer_started = true;
                handle.spawn(timer_task(
                    Arc::downgrade(&self.shared),
                    self.shared.timer.clone(),
                ));
            }
        }
    }

    /// Runs the deferred closures, one at a time and in order, unless
    /// another task is already doing so.
    fn run_deferred(&self) {
        loop {
            let batch = {
                let mut core = lock(&self.shared.core);
                if core.dispatching || core.deferred.is_empty() {
                    return;
                }
                core.dispatching = true;
                std::mem::take(&mut core.deferred.0)
            };
            let _reset = DispatchGuard(&self.shared.core);
            for f in batch {
                f();
            }
        }
    }

    /// Answers one HTTP request (polling GET or POST, handshake, or a
    /// WebSocket upgrade).
    pub async fn handle<B>(&self, mut req: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        let path = req.uri().path();
        let path = path
            .strip_prefix(self.shared.mount.as_str())
            .unwrap_or(path);
        let path = path.to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();

        let upgrade = if wants_websocket(req.headers()) {
            match crate::upgrade(&mut req, (self.shared.websocket_config)(), None) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    return e.http_response().map(|body| Full::new(Bytes::from(body)));
                }
            }
        } else {
            None
        };

        let limit = lock(&self.shared.core).endpoint.body_limit();
        let (parts, body) = req.into_parts();
        let body = if upgrade.is_some() {
            Bytes::new()
        } else {
            match read_limited(body, limit.saturating_add(1)).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!("request body failed: {e}");
                    return into_http(plain(StatusCode::BAD_REQUEST, "bad request body\n"));
                }
            }
        };

        let (tx, rx) = oneshot::channel();
        let id = {
            let mut core = lock(&self.shared.core);
            core.next_id += 1;
            let id = RequestId(core.next_id);
            core.replies.insert(id, tx);
            id
        };
        let request = Request {
            id,
            method: parts.method,
            path,
            query,
            headers: parts.headers,
            body,
            websocket: upgrade.is_some(),
            wall_clock: Some(std::time::SystemTime::now()),
        };
        let mut guard = AbortGuard {
            service: self,
            id,
            armed: true,
        };
        self.with(|endpoint, _, now, _| endpoint.handle_request(request, now));
        let reply = rx.await;
        guard.armed = false;
        match reply {
            Ok(Reply::Response(response)) => into_http(response),
            Ok(Reply::Accept { headers, outgoing }) => match upgrade {
                Some((mut response, upgrade)) => {
                    response.headers_mut().extend(headers);
                    let service = self.clone();
                    tokio::spawn(async move {
                        match upgrade.await {
                            Ok(ws) => service.run_websocket(id, ws, outgoing).await,
                            Err(e) => tracing::debug!(%id, "upgrade failed: {e}"),
                        }
                        lock(&service.shared.core).websockets.remove(&id);
                        service.with(|endpoint, _, now, _| endpoint.websocket_closed(id, now));
                    });
                    response.map(|()| Full::new(Bytes::new()))
                }
                None => {
                    self.with(|endpoint, _, now, _| endpoint.websocket_closed(id, now));
                    into_http(plain(StatusCode::BAD_REQUEST, "not a WebSocket request\n"))
                }
            },
            // The service dropped the request without an answer (it cannot
            // without a bug in the endpoint); fail it rather than hang.
            Err(_) => into_http(plain(StatusCode::INTERNAL_SERVER_ERROR, "no answer\n")),
        }
    }

    /// Moves messages between one accepted WebSocket and the endpoint.
    async fn run_websocket<S>(
        &self,
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
                                let _ = ws.close_with(duplex_ws::CloseCode::NORMAL, "").await;
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
                        self.with(|endpoint, _, now, _| endpoint.websocket_message(id, message, now));
                    }
                    Some(Err(e)) => {
                        tracing::debug!(%id, "websocket failed: {e}");
                        return;
                    }
                    None => return,
                },
            }
        }
    }
}

fn to_ws(message: Message) -> duplex_ws::Message {
    match message {
        Message::Text(t) => duplex_ws::Message::Text(t),
        Message::Binary(b) => duplex_ws::Message::Binary(b),
    }
}

/// Resets the dispatching flag even if a handler panics.
struct DispatchGuard<'a, E, A>(&'a Mutex<Core<E, A>>);

impl<E, A> Drop for DispatchGuard<'_, E, A> {
    fn drop(&mut self) {
        lock(self.0).dispatching = false;
    }
}

/// Tells the endpoint a parked request was dropped (the client went away)
/// unless it was answered.
struct AbortGuard<'a, E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    service: &'a PollingService<E, A>,
    id: RequestId,
    armed: bool,
}

impl<E, A> Drop for AbortGuard<'_, E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    fn drop(&mut self) {
        if self.armed {
            let id = self.id;
            self.service.with(|endpoint, _, now, _| {
                endpoint.abort(id, now);
            });
            lock(&self.service.shared.core).replies.remove(&id);
        }
    }
}

/// Sleeps until the earliest deadline, then advances the machines.
async fn timer_task<E, A>(shared: Weak<Shared<E, A>>, notify: Arc<Notify>)
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    loop {
        let deadline = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut core = lock(&shared.core);
            let next = core.next_deadline();
            core.armed = next;
            next
        };
        match deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    () = notify.notified() => continue,
                }
            }
            None => {
                notify.notified().await;
                continue;
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // `with` runs every timer that is due.
        PollingService { shared }.with(|_, _, _, _| {});
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
    B: Body<Data = Bytes> + Unpin,
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

fn plain(status: StatusCode, body: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Response {
        status,
        headers,
        body: Bytes::from(body.to_owned()),
    }
}

fn into_http(response: Response) -> http::Response<ResponseBody> {
    let mut out = http::Response::new(Full::new(response.body));
    *out.status_mut() = response.status;
    *out.headers_mut() = response.headers;
    out
}

impl<E, A, B> hyper::service::Service<http::Request<B>> for PollingService<E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl<E, A, B> tower::Service<http::Request<B>> for PollingService<E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        hyper::service::Service::call(self, req)
    }
}
