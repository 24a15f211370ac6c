//! [`SseService`]: duplex-polling's Server-Sent Events dialect
//! ([`SseServer`]) served over hyper.
//!
//! The shape is [`crate::sockjs::SockJsService`]'s: one task owns the
//! machine; HTTP handlers turn requests into [`Request`]s and wait on a
//! oneshot for the answer, which is a whole response (405, 204 after a
//! close) or a stream of chunks fed by the task; the task sleeps until the
//! machine's `poll_timeout()` and then calls `handle_timeout(now)`. Every
//! protocol decision (framing, `retry:`, heartbeat comments, resumption from
//! `Last-Event-ID`, expiry) is the machine's.
//!
//! Server-Sent Events carry data one way. Each new session is handed to
//! the application as an [`SseSession`] to send on; what the client sends
//! goes through an endpoint of the application's own (a `POST` naming the
//! session id, for instance).
//!
//! ```no_run
//! use duplex_tokio::sse::{SseConfig, SseService};
//!
//! # fn demo() {
//! let clock = SseService::new("/events", SseConfig::default(), |mut session| async move {
//!     loop {
//!         let now = format!("{:?}", std::time::SystemTime::now());
//!         if session.send(now).await.is_err() {
//!             break;
//!         }
//!         tokio::select! {
//!             _ = session.closed() => break,
//!             () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
//!         }
//!     }
//! });
//! // Route requests whose path starts with `/events` to `clock.handle(req)`.
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use duplex_polling::{Event, Message, Request, RequestId, Response, Transmit};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio::sync::{mpsc, oneshot};

pub use duplex_polling::{CloseReason, OpenInfo, SessionId, SseConfig, SseServer};

/// The body of every response an [`SseService`] writes: a whole body, or
/// the event stream.
pub type SseBody = BoxBody<Bytes, Infallible>;

/// Requests and commands waiting for the endpoint task; their senders wait
/// while it is full.
const COMMAND_QUEUE: usize = 1024;
/// Chunks of one stream waiting to be written; past it the client is not
/// reading, and the stream is treated as aborted (the session waits for the
/// client to reconnect and resume).
const STREAM_CHUNKS: usize = 1024;

enum Command {
    Request {
        request: Request,
        reply: oneshot::Sender<Reply>,
    },
    Send {
        session: SessionId,
        event: Option<String>,
        data: String,
        reply: oneshot::Sender<Result<(), SseError>>,
    },
    Close {
        session: SessionId,
        reply: oneshot::Sender<Result<(), SseError>>,
    },
    CloseAll {
        reply: oneshot::Sender<usize>,
    },
    Inspect(Box<dyn FnOnce(&SseServer) + Send>),
}

/// Notices from destructors, which cannot wait: at most one per live
/// request, so this unbounded lane stays as small as the requests.
enum Control {
    Abort(RequestId),
}

enum Reply {
    Response(Response),
    Stream {
        status: StatusCode,
        headers: HeaderMap,
        chunks: mpsc::Receiver<Bytes>,
    },
}

/// Why a send or close on an [`SseSession`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// The session is closed (or the service is gone).
    #[error("the session is closed")]
    Closed,
    /// The machine refused it: the queue is full, or an event name with a
    /// line break.
    #[error(transparent)]
    Session(#[from] duplex_polling::Error),
}

type Handler = Arc<dyn Fn(SseSession) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Shared {
    prefix: String,
    commands: mpsc::Sender<Command>,
    control: mpsc::UnboundedSender<Control>,
    next_id: AtomicU64,
}

/// A Server-Sent Events endpoint mounted at a prefix, as a hyper service.
/// Each new session is handed to the handler as an [`SseSession`] in its
/// own task. Cheap to clone; clones serve the same sessions.
#[derive(Clone)]
pub struct SseService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseService")
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

impl SseService {
    /// Serves `config`'s endpoint under `prefix` (e.g. `/events`) and runs
    /// `handler` for each session.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the endpoint is a task).
    pub fn new<F, Fut>(prefix: &str, config: SseConfig, handler: F) -> SseService
    where
        F: Fn(SseSession) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |session| Box::pin(handler(session)));
        let task = Task {
            server: SseServer::new(config),
            handler,
            commands: commands.downgrade(),
            replies: HashMap::new(),
            streams: HashMap::new(),
            sessions: HashMap::new(),
        };
        tokio::spawn(task.run(command_rx, control_rx));
        SseService {
            shared: Arc::new(Shared {
                prefix: prefix.trim_end_matches('/').to_owned(),
                commands,
                control,
                next_id: AtomicU64::new(0),
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
        f: impl FnOnce(&SseServer) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |server: &SseServer| {
            let _ = tx.send(f(server));
        });
        self.shared
            .commands
            .send(Command::Inspect(job))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Closes every open session (what is queued is written first, then
    /// each stream ends and reconnecting clients get 204) and returns how
    /// many there were. For a server shutting down.
    pub async fn close_all(&self) -> usize {
        let (reply, rx) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Command::CloseAll { reply })
            .await
            .is_err()
        {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Answers one HTTP request under the prefix.
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<SseBody> {
        let path = match req.uri().path().strip_prefix(self.shared.prefix.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
            _ => return plain(StatusCode::NOT_FOUND, "not found\n"),
        };
        let query = req.uri().query().unwrap_or("").to_owned();
        // The body is never read: the dialect answers anything but GET and
        // OPTIONS with 405 whatever it carries.
        let (parts, _body) = req.into_parts();
        let id = RequestId(self.shared.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let request = Request {
            id,
            method: parts.method,
            path,
            query,
            headers: parts.headers,
            body: Bytes::new(),
            websocket: false,
            wall_clock: Some(SystemTime::now()),
        };
        let (tx, rx) = oneshot::channel();
        let mut guard = AbortGuard {
            control: self.shared.control.clone(),
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
            return plain(StatusCode::SERVICE_UNAVAILABLE, "service stopped\n");
        }
        let reply = rx.await;
        match reply {
            Ok(Reply::Response(response)) => {
                guard.armed = false;
                let mut out = http::Response::new(Full::new(response.body).boxed());
                *out.status_mut() = response.status;
                *out.headers_mut() = response.headers;
                out
            }
            Ok(Reply::Stream {
                status,
                headers,
                chunks,
            }) => {
                // The guard now rides with the body: dropped before the
                // stream's end, the client went away.
                let stream = futures_util::stream::unfold(
                    (chunks, guard),
                    |(mut chunks, mut guard)| async move {
                        match chunks.recv().await {
                            Some(chunk) => Some((Ok(Frame::data(chunk)), (chunks, guard))),
                            None => {
                                guard.disarm();
                                None
                            }
                        }
                    },
                );
                let mut out = http::Response::new(StreamBody::new(stream).boxed());
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                out
            }
            Err(_) => {
                guard.armed = false;
                plain(StatusCode::SERVICE_UNAVAILABLE, "service stopped\n")
            }
        }
    }
}

impl<B> hyper::service::Service<http::Request<B>> for SseService
where
    B: Send + 'static,
{
    type Response = http::Response<SseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

/// Tells the endpoint a request was dropped (the client went away) unless
/// it was answered, or its stream ended.
struct AbortGuard {
    control: mpsc::UnboundedSender<Control>,
    id: RequestId,
    armed: bool,
}

impl AbortGuard {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.control.send(Control::Abort(self.id));
        }
    }
}

fn plain(status: StatusCode, body: &'static str) -> http::Response<SseBody> {
    let mut out = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *out.status_mut() = status;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    out
}

/// One session as the application sees it: events go out, the client's
/// reconnections and resumptions are the machine's business, and
/// [`SseSession::closed`] says when it is over.
pub struct SseSession {
    info: OpenInfo,
    sender: SseSender,
    closed: Option<oneshot::Receiver<CloseReason>>,
    reason: Option<CloseReason>,
}

impl std::fmt::Debug for SseSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseSession")
            .field("id", &self.sender.session)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl SseSession {
    /// The session id (the part before `:` in every event id).
    pub fn id(&self) -> &SessionId {
        &self.sender.session
    }

    /// The opening request: path, query, headers.
    pub fn info(&self) -> &OpenInfo {
        &self.info
    }

    /// A cloneable handle to send on this session from other tasks.
    pub fn sender(&self) -> SseSender {
        self.sender.clone()
    }

    /// Sends `data` as an unnamed event (`onmessage` in the browser).
    pub async fn send(&self, data: impl Into<String>) -> Result<(), SseError> {
        self.sender.send(data).await
    }

    /// Sends `data` as an event named `event`.
    pub async fn send_event(&self, event: &str, data: impl Into<String>) -> Result<(), SseError> {
        self.sender.send_event(event, data).await
    }

    /// Closes the session: what is queued is written, the stream ends, and
    /// a reconnecting client gets 204 (which stops `EventSource`).
    pub async fn close(&self) -> Result<(), SseError> {
        self.sender.close().await
    }

    /// Waits until the session is closed, by the application, by expiry
    /// (no stream for `disconnect_delay`), or because the service is gone
    /// (`None`). Cancel-safe: it can be raced against other work in a
    /// `select!` loop.
    pub async fn closed(&mut self) -> Option<CloseReason> {
        if let Some(rx) = self.closed.as_mut() {
            let reason = rx.await.ok();
            self.closed = None;
            self.reason = reason;
        }
        self.reason
    }
}

/// A cloneable handle on one session: send and close from any task.
#[derive(Clone)]
pub struct SseSender {
    session: SessionId,
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for SseSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseSender")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SseSender {
    /// The session id.
    pub fn id(&self) -> &SessionId {
        &self.session
    }

    /// Sends `data` as an unnamed event. A full queue (the client is not
    /// reading) is [`SseError::Session`] with `QueueFull`: the caller
    /// decides whether to drop the event or close the session.
    pub async fn send(&self, data: impl Into<String>) -> Result<(), SseError> {
        self.command(None, data.into()).await
    }

    /// Sends `data` as an event named `event`.
    pub async fn send_event(&self, event: &str, data: impl Into<String>) -> Result<(), SseError> {
        self.command(Some(event.to_owned()), data.into()).await
    }

    async fn command(&self, event: Option<String>, data: String) -> Result<(), SseError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Send {
                session: self.session.clone(),
                event,
                data,
                reply,
            })
            .await
            .map_err(|_| SseError::Closed)?;
        rx.await.map_err(|_| SseError::Closed)?
    }

    /// Closes the session (see [`SseSession::close`]).
    pub async fn close(&self) -> Result<(), SseError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Close {
                session: self.session.clone(),
                reply,
            })
            .await
            .map_err(|_| SseError::Closed)?;
        rx.await.map_err(|_| SseError::Closed)?
    }
}

struct Task {
    server: SseServer,
    handler: Handler,
    /// Handed to new sessions; weak so that the task ends once the service
    /// and every session handle are gone.
    commands: mpsc::WeakSender<Command>,
    replies: HashMap<RequestId, oneshot::Sender<Reply>>,
    streams: HashMap<RequestId, mpsc::Sender<Bytes>>,
    sessions: HashMap<SessionId, oneshot::Sender<CloseReason>>,
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
                    Some(Control::Abort(id)) => {
                        self.replies.remove(&id);
                        self.streams.remove(&id);
                        self.server.abort(id, Instant::now());
                    }
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

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Request { request, reply } => {
                self.replies.insert(request.id, reply);
                self.server.handle_request(request, now);
            }
            Command::Send {
                session,
                event,
                data,
                reply,
            } => {
                let result = match event {
                    Some(name) => self.server.send_event(&session, &name, data, now),
                    None => self.server.send(&session, Message::text(data), now),
                };
                let _ = reply.send(result.map_err(|e| match e {
                    duplex_polling::Error::NoSuchSession => SseError::Closed,
                    e => SseError::Session(e),
                }));
            }
            Command::Close { session, reply } => {
                let result = self
                    .server
                    .close(&session, now)
                    .map_err(|_| SseError::Closed);
                let _ = reply.send(result);
            }
            Command::CloseAll { reply } => {
                let open: Vec<SessionId> = self.sessions.keys().cloned().collect();
                let mut closed = 0;
                for session in open {
                    if self.server.close(&session, now).is_ok() {
                        closed += 1;
                    }
                }
                let _ = reply.send(closed);
            }
            Command::Inspect(f) => f(&self.server),
        }
    }

    /// Hands events to the application and transmits to their requests
    /// until the machine has no more of either.
    fn pump(&mut self) {
        loop {
            let now = Instant::now();
            let mut progressed = false;
            while let Some(event) = self.server.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            let mut dropped = Vec::new();
            while let Some(transmit) = self.server.poll_transmit() {
                progressed = true;
                self.route(transmit, &mut dropped);
            }
            for id in dropped {
                self.server.abort(id, now);
            }
            if !progressed {
                return;
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Opened { session, info } => {
                let Some(commands) = self.commands.upgrade() else {
                    return;
                };
                let (tx, rx) = oneshot::channel();
                self.sessions.insert(session.clone(), tx);
                let session = SseSession {
                    info,
                    sender: SseSender { session, commands },
                    closed: Some(rx),
                    reason: None,
                };
                tokio::spawn((self.handler)(session));
            }
            Event::Closed { session, reason } => {
                if let Some(tx) = self.sessions.remove(&session) {
                    let _ = tx.send(reason);
                }
            }
            // The dialect has no client-to-server messages.
            Event::Message { .. } => {}
        }
    }

    fn route(&mut self, transmit: Transmit, dropped: &mut Vec<RequestId>) {
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
                    dropped.push(request);
                }
            }
            Transmit::StreamChunk { request, data } => {
                if let Some(tx) = self.streams.get(&request) {
                    if tx.try_send(data).is_err() {
                        self.streams.remove(&request);
                        dropped.push(request);
                    }
                }
            }
            Transmit::StreamEnd { request } => {
                // Dropping the sender ends the body.
                self.streams.remove(&request);
            }
            Transmit::AcceptWebSocket { request, .. } => {
                // The dialect never accepts a WebSocket: dropping the reply
                // answers the request with 503 rather than leaving it hanging.
                self.replies.remove(&request);
            }
            Transmit::WebSocketMessage { .. } | Transmit::CloseWebSocket { .. } => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const STEP: Duration = Duration::from_secs(5);

    /// Serves `service` on a loopback port.
    async fn serve(service: SseService) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service),
                );
            }
        });
        addr
    }

    async fn get(addr: std::net::SocketAddr, headers: &str) -> TcpStream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /events HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp
    }

    /// Reads until `needle` has arrived; returns everything read.
    async fn read_until(tcp: &mut TcpStream, seen: &mut String, needle: &str) {
        while !seen.contains(needle) {
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
                .await
                .expect("in time")
                .unwrap();
            assert!(n > 0, "ended before {needle:?}: {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    #[tokio::test]
    async fn events_stream_resume_after_a_drop_and_stop_after_close() {
        let (tx, mut sessions) = mpsc::unbounded_channel();
        let service = SseService::new("/events", SseConfig::default(), move |session| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(session);
            }
        });
        assert!(service.matches("/events") && !service.matches("/eventsx"));
        let addr = serve(service.clone()).await;

        let mut first = get(addr, "").await;
        let session = tokio::time::timeout(STEP, sessions.recv())
            .await
            .unwrap()
            .unwrap();
        let id = session.id().to_string();
        let mut seen = String::new();
        read_until(&mut first, &mut seen, "retry: 3000").await;
        assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
        assert!(seen.to_ascii_lowercase().contains("text/event-stream"));
        session.send("one").await.unwrap();
        session.send_event("named", "two").await.unwrap();
        read_until(
            &mut first,
            &mut seen,
            &format!("id: {id}:2\nevent: named\ndata: two\n\n"),
        )
        .await;
        assert!(seen.contains(&format!("id: {id}:1\ndata: one\n\n")));

        // The client goes away; what is sent meanwhile waits for it.
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        session.send("three").await.unwrap();
        let mut again = get(addr, &format!("Last-Event-ID: {id}:2\r\n")).await;
        let mut seen = String::new();
        read_until(
            &mut again,
            &mut seen,
            &format!("id: {id}:3\ndata: three\n\n"),
        )
        .await;
        assert!(!seen.contains("data: one"), "replayed too much: {seen}");
        assert_eq!(service.inspect(|s| s.session_count()).await, Some(1));

        // Closed: the stream ends, and a reconnection is told to stop.
        let mut session = session;
        session.close().await.unwrap();
        assert_eq!(session.closed().await, Some(CloseReason::Application));
        // The chunked body's last chunk (the connection stays for keep-alive).
        read_until(&mut again, &mut seen, "\r\n0\r\n\r\n").await;
        let mut late = get(
            addr,
            &format!("Last-Event-ID: {id}:3\r\nConnection: close\r\n"),
        )
        .await;
        let mut answer = String::new();
        tokio::time::timeout(STEP, late.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
        assert!(matches!(session.send("four").await, Err(SseError::Closed)));
    }

    #[tokio::test]
    async fn close_all_ends_every_session_and_other_methods_get_405() {
        let (tx, mut sessions) = mpsc::unbounded_channel();
        let service = SseService::new("/events", SseConfig::default(), move |session| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(session);
            }
        });
        let addr = serve(service.clone()).await;
        let mut streams = Vec::new();
        for _ in 0..3 {
            let mut tcp = get(addr, "").await;
            let mut seen = String::new();
            read_until(&mut tcp, &mut seen, "retry:").await;
            streams.push(tcp);
        }
        let mut handles = Vec::new();
        for _ in 0..3 {
            handles.push(sessions.recv().await.unwrap());
        }
        assert_eq!(service.close_all().await, 3);
        for mut handle in handles {
            assert_eq!(handle.closed().await, Some(CloseReason::Application));
        }
        for mut tcp in streams {
            let mut seen = String::new();
            read_until(&mut tcp, &mut seen, "0\r\n\r\n").await;
        }
        let mut post = TcpStream::connect(addr).await.unwrap();
        post.write_all(
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut answer = String::new();
        post.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    }
}
