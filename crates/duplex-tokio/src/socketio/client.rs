//! A Socket.IO v5 client (Engine.IO v4) over the duplex WebSocket client
//! and over HTTP long-polling (hyper), with the upgrade from polling to
//! WebSocket, namespaces multiplexed on one connection, acks both ways,
//! binary attachments, and reconnection with exponential backoff and jitter.
//!
//! ```no_run
//! use std::time::Duration;
//! use duplex_tokio::socketio::client::{ClientConfig, ClientEvent, Manager};
//! use duplex_tokio::socketio::Value;
//!
//! # async fn demo() {
//! let manager = Manager::new(ClientConfig::new("http://127.0.0.1:3000"));
//! let mut socket = manager.socket("/", None);
//! while let Some(event) = socket.next_event().await {
//!     match event {
//!         ClientEvent::Connect { .. } => {
//!             socket.emit("message", vec![Value::from("hello")]);
//!             let reply = socket
//!                 .emit_with_ack("message-with-ack", vec![Value::from(1)], Some(Duration::from_secs(5)))
//!                 .await;
//!         }
//!         ClientEvent::Event { name, args, ack } => { /* ... */ }
//!         ClientEvent::Disconnect { reason } => { /* reconnects by itself */ }
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! This module is the driver only: it owns the HTTP client, the WebSocket,
//! the tokio timers and the channels to the application. Every protocol
//! decision is made by two sans-IO machines it feeds:
//! [`duplex_engineio::client::ClientSession`] (the handshake, the ping
//! watchdog, when to GET and POST, the upgrade probe) and
//! [`duplex_socketio::client::Client`] (namespaces, buffered emits, acks,
//! binary packets, and when to reconnect).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use duplex_engineio::client::{
    ClientConfig as EioConfig, ClientEvent as EioEvent, ClientSession, CloseReason,
    Transmit as EioTransmit,
};
use duplex_engineio::client_url::{CLIENT_PROTOCOL, EngineIoUrl, POLLING_POST_CONTENT_TYPE};
use duplex_engineio::{Limits, TransportKind, Utf8Bytes, WsMessage};
use duplex_socketio::Value;
use duplex_socketio::client::{
    AckFailure, Backoff, Client as SioClient, ClientConfig as SioConfig, ClientEvent as SioEvent,
    Reconnection, Transmit as SioTransmit, local_connect_error,
};
use duplex_socketio::engineio_binding::DEFAULT_PATH;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

use super::{AckError, SendError};

/// Which transports the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTransports {
    /// HTTP long-polling only.
    Polling,
    /// WebSocket only.
    WebSocket,
    /// Long-polling first, then upgraded to WebSocket (the reference
    /// client's default).
    PollingThenWebSocket,
}

/// Client settings, named and defaulted as the reference client's options.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server, `http://host:port` (no TLS yet for polling; `ws` URLs
    /// are derived from it).
    pub url: String,
    /// `path`. Default `/socket.io/`.
    pub path: String,
    /// `transports` (and `upgrade`). Default polling then WebSocket.
    pub transports: ClientTransports,
    /// `reconnection`. Default on.
    pub reconnection: bool,
    /// `reconnectionAttempts`. Default `None`: no limit.
    pub reconnection_attempts: Option<u32>,
    /// `reconnectionDelay`. Default 1 s.
    pub reconnection_delay: Duration,
    /// `reconnectionDelayMax`. Default 5 s.
    pub reconnection_delay_max: Duration,
    /// `randomizationFactor`: the jitter, 0 to 1. Default 0.5.
    pub randomization_factor: f64,
    /// `timeout`: the longest the Engine.IO handshake may take. Default 20 s.
    pub timeout: Duration,
    /// Extra query parameters of every request, after the Engine.IO ones
    /// (pairs named `EIO`, `transport` or `sid` are left out: those are
    /// the protocol's, as in the reference client).
    pub query: Vec<(String, String)>,
    /// Most packets in one polling response. Default: the reference's 1 MB
    /// `maxPayload` worth of limits.
    pub limits: Limits,
}

impl ClientConfig {
    /// The defaults, for the server at `url`.
    pub fn new(url: &str) -> Self {
        // The reference client's defaults, as the sans-IO machines keep them.
        let reconnection = Reconnection::default();
        Self {
            url: url.trim_end_matches('/').to_owned(),
            path: DEFAULT_PATH.to_owned(),
            transports: ClientTransports::PollingThenWebSocket,
            reconnection: reconnection.enabled,
            reconnection_attempts: reconnection.attempts,
            reconnection_delay: reconnection.backoff.delay,
            reconnection_delay_max: reconnection.backoff.delay_max,
            randomization_factor: reconnection.backoff.randomization_factor,
            timeout: EioConfig::default().handshake_timeout,
            query: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// Where the Engine.IO requests go (duplex-engineio builds each URL).
    fn engineio_url(&self) -> EngineIoUrl {
        EngineIoUrl::new(&self.url, &self.path).with_query(self.query.iter().cloned())
    }

    /// The reconnection delays, for duplex-socketio's policy.
    fn backoff_policy(&self) -> Backoff {
        Backoff {
            delay: self.reconnection_delay,
            delay_max: self.reconnection_delay_max,
            randomization_factor: self.randomization_factor,
        }
    }

    /// The delay before reconnection attempt `attempt` (0-based):
    /// `reconnection_delay * 2^attempt`, spread by the randomization
    /// factor, at most `reconnection_delay_max` (duplex-socketio's
    /// [`Backoff::delay`]).
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        self.backoff_policy().delay_with(attempt, rng)
    }

    fn engineio(&self) -> EioConfig {
        EioConfig {
            transport: match self.transports {
                ClientTransports::WebSocket => TransportKind::WebSocket,
                _ => TransportKind::Polling,
            },
            upgrade: self.transports == ClientTransports::PollingThenWebSocket,
            open_after_upgrade: true,
            handshake_timeout: self.timeout,
            upgrade_timeout: self.timeout,
            limits: self.limits,
        }
    }

    fn socketio(&self) -> SioConfig {
        SioConfig {
            reconnection: Reconnection {
                enabled: self.reconnection,
                attempts: self.reconnection_attempts,
                backoff: self.backoff_policy(),
            },
            ..SioConfig::default()
        }
    }
}

/// Most commands (emits, acks, joins...) waiting for the manager's task.
/// When it is full, [`ClientSocket::try_emit`] says so,
/// [`ClientSocket::emit`] and [`ClientAck::send`] drop theirs (logged),
/// [`ClientSocket::emit_with_ack`] waits for room, and the commands that
/// change what the connection is ([`Manager::socket`],
/// [`ClientSocket::disconnect`], [`Manager::close`]) are queued as soon as
/// there is room, never lost.
pub const COMMAND_QUEUE: usize = 1024;

/// Most events waiting in one [`ClientSocket`] for the application to take
/// them with [`ClientSocket::next_event`]. When one is full, the manager
/// stops reading from the server until the application catches up (its
/// commands and timers still run, so an ack timeout or the ping watchdog
/// can still end a wait).
pub const EVENT_QUEUE: usize = 256;

/// Most messages waiting for the WebSocket writer. When it is full, the
/// manager stops taking commands until the writer catches up; the
/// protocol's own replies (pongs, the close) still queue behind it.
pub const WS_WRITE_QUEUE: usize = 256;

/// Most IO reports (responses, WebSocket messages) waiting for the
/// manager's task; the IO tasks wait for room, which holds back reading
/// from the server.
const IO_QUEUE: usize = 64;

/// Why the client could not do what was asked, or why one of its requests
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The manager's command queue is full ([`COMMAND_QUEUE`]): its task
    /// is behind, nothing was queued.
    #[error("the manager's command queue is full")]
    QueueFull,
    /// The manager's task has ended ([`Manager::close`], or reconnection
    /// gave up).
    #[error("the manager is closed")]
    Closed,
    /// A request to the server could not be made from the configured URL.
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    /// An HTTP request failed in transit.
    #[error("HTTP request failed: {0}")]
    Http(#[from] hyper_util::client::legacy::Error),
    /// An HTTP response's body could not be read.
    #[error("reading the response failed: {0}")]
    Body(#[from] hyper::Error),
    /// The server answered a request with an error status.
    #[error("the server answered {0}")]
    Status(http::StatusCode),
    /// The WebSocket could not be opened, or failed.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] crate::Error),
    /// The WebSocket was not opened within the client's timeout.
    #[error("the WebSocket did not open in time")]
    WebSocketTimeout,
    /// The server sent a WebSocket text message that is not UTF-8.
    #[error("the server sent text that is not UTF-8")]
    InvalidText,
}

impl ClientError {
    /// Whether the server is at fault (an error status, bad text), rather
    /// than this side or the network between.
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Self::Status(_) | Self::InvalidText)
    }
}

/// What happens to a client socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The namespace is connected (again, after a reconnection).
    Connect {
        /// The socket id the server gave.
        sid: String,
    },
    /// The server refused the namespace (with its CONNECT_ERROR payload);
    /// the socket does not retry.
    ConnectError {
        /// `{"message":...}` and maybe `data`.
        data: Value,
    },
    /// An event from the server.
    Event {
        /// Its name.
        name: String,
        /// Its arguments, binary in place.
        args: Vec<Value>,
        /// The ack the server asked for.
        ack: Option<ClientAck>,
    },
    /// The namespace disconnected, with the reference client's reason
    /// (`"io server disconnect"`, `"transport close"`, `"ping timeout"`,
    /// `"transport error"`, `"io client disconnect"`).
    Disconnect {
        /// Why.
        reason: &'static str,
    },
}

/// The sending side of the manager's command queue, shared by every
/// handle.
#[derive(Clone, Debug)]
struct Commands(mpsc::Sender<Command>);

impl Commands {
    /// Queues `command` if there is room.
    fn try_send(&self, command: Command) -> Result<(), ClientError> {
        self.0.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => ClientError::QueueFull,
            TrySendError::Closed(_) => ClientError::Closed,
        })
    }

    /// Queues `command` now if there is room, else as soon as there is
    /// (for the commands that must not be lost).
    fn send_eventually(&self, command: Command) {
        match self.0.try_send(command) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(command)) => {
                let tx = self.0.clone();
                tokio::spawn(async move {
                    let _ = tx.send(command).await;
                });
            }
        }
    }
}

/// Answers an event that asked for an ack.
#[derive(Debug)]
pub struct ClientAck {
    commands: Commands,
    namespace: String,
    id: u64,
}

impl ClientAck {
    /// Acknowledges with `args` (dropped, and logged, if the manager's
    /// command queue is full: the server's ack then times out).
    pub fn send(self, args: Vec<Value>) {
        let command = Command::Ack {
            namespace: self.namespace,
            id: self.id,
            args,
        };
        if let Err(e) = self.commands.try_send(command) {
            tracing::warn!("Socket.IO client: ack {} not sent: {e}", self.id);
        }
    }
}

type AckReply = oneshot::Sender<Result<Vec<Value>, AckError>>;

enum Command {
    Join {
        namespace: String,
        auth: Option<Value>,
        events: mpsc::Sender<ClientEvent>,
    },
    Emit {
        namespace: String,
        event: String,
        args: Vec<Value>,
        ack: Option<(AckReply, Option<Duration>)>,
    },
    Ack {
        namespace: String,
        id: u64,
        args: Vec<Value>,
    },
    Leave {
        namespace: String,
    },
    Close,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// One connection to a server, shared by the sockets of every namespace
/// (the reference client's `Manager`). Cheap to clone; runs in a task of
/// its own until [`Manager::close`] or until reconnection gives up.
#[derive(Clone, Debug)]
pub struct Manager {
    commands: Commands,
}

impl Manager {
    /// Starts connecting to the server (on the current tokio runtime).
    pub fn new(config: ClientConfig) -> Self {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let commands = Commands(tx);
        tokio::spawn(manager_task(config, rx, commands.clone()));
        Self { commands }
    }

    /// A socket on `namespace`, connecting with `auth` (now, or as soon as
    /// the connection is up, and again after each reconnection).
    pub fn socket(&self, namespace: &str, auth: Option<Value>) -> ClientSocket {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        self.commands.send_eventually(Command::Join {
            namespace: namespace.to_owned(),
            auth,
            events: tx,
        });
        ClientSocket {
            commands: self.commands.clone(),
            namespace: namespace.to_owned(),
            events: rx,
        }
    }

    /// Closes the connection for good, after the commands already queued.
    pub fn close(&self) {
        self.commands.send_eventually(Command::Close);
    }
}

/// A namespace of a [`Manager`]'s connection.
#[derive(Debug)]
pub struct ClientSocket {
    commands: Commands,
    namespace: String,
    events: mpsc::Receiver<ClientEvent>,
}

impl ClientSocket {
    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The next event; `None` once the manager is closed.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// Emits `event`; buffered while the namespace is not connected.
    /// Dropped, and logged, if the manager's command queue is full (see
    /// [`ClientSocket::try_emit`] to know).
    pub fn emit(&self, event: &str, args: Vec<Value>) {
        if let Err(e) = self.try_emit(event, args) {
            tracing::warn!("Socket.IO client: emit {event:?} dropped: {e}");
        }
    }

    /// As [`ClientSocket::emit`], saying whether the event was queued:
    /// [`ClientError::QueueFull`] if the manager's command queue
    /// ([`COMMAND_QUEUE`]) is full, [`ClientError::Closed`] once the
    /// manager has ended.
    pub fn try_emit(&self, event: &str, args: Vec<Value>) -> Result<(), ClientError> {
        self.commands.try_send(Command::Emit {
            namespace: self.namespace.clone(),
            event: event.to_owned(),
            args,
            ack: None,
        })
    }

    /// Emits `event` asking for an ack, and waits for it (at most `timeout`,
    /// counted once the event is queued; waiting for room in a full
    /// command queue comes first).
    pub async fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Value>, AckError> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Emit {
            namespace: self.namespace.clone(),
            event: event.to_owned(),
            args,
            ack: Some((tx, timeout)),
        };
        if self.commands.0.send(command).await.is_err() {
            return Err(AckError::Disconnected);
        }
        rx.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Leaves the namespace (sends DISCONNECT); the connection stays.
    pub fn disconnect(&self) {
        self.commands.send_eventually(Command::Leave {
            namespace: self.namespace.clone(),
        });
    }
}

type Http = HttpClient<HttpConnector, Full<Bytes>>;

/// What the IO tasks of a connection report, tagged with the connection's
/// number so that reports of a dropped connection are ignored.
enum Io {
    Get(u64, Result<Bytes, ClientError>),
    Post(u64, Result<(), ClientError>),
    WsOpen(u64),
    WsMessage(u64, WsMessage),
    /// The WebSocket closed: cleanly (`None`), or failed or could not be
    /// opened.
    WsClosed(u64, Option<ClientError>),
}

/// One Engine.IO connection: its session machine and its IO.
struct Conn {
    id: u64,
    session: ClientSession,
    /// The long-polling GET in flight; aborted with the connection.
    get: Option<JoinHandle<()>>,
    /// The WebSocket's writer; dropping it closes the WebSocket once what
    /// was written is flushed.
    ws: Option<mpsc::Sender<WsMessage>>,
    /// Messages for the WebSocket that found its queue full, in order;
    /// while any wait, the manager takes no commands (see
    /// [`WS_WRITE_QUEUE`]).
    ws_backlog: VecDeque<WsMessage>,
}

impl Conn {
    /// Queues `message` for the WebSocket writer, behind any backlog.
    fn write_ws(&mut self, message: WsMessage) {
        let Some(ws) = &self.ws else { return };
        if !self.ws_backlog.is_empty() {
            self.ws_backlog.push_back(message);
            return;
        }
        if let Err(TrySendError::Full(message)) = ws.try_send(message) {
            self.ws_backlog.push_back(message);
        }
    }

    /// Drops the WebSocket's writer once the backlog is written, which
    /// closes the WebSocket after it.
    fn close_ws(&mut self) {
        let (Some(ws), backlog) = (self.ws.take(), std::mem::take(&mut self.ws_backlog)) else {
            return;
        };
        if !backlog.is_empty() {
            tokio::spawn(async move {
                for message in backlog {
                    if ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(get) = &self.get {
            get.abort();
        }
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn http_get(http: &Http, url: &str) -> Result<Bytes, ClientError> {
    let req = http::Request::get(url).body(Full::new(Bytes::new()))?;
    let resp = http.request(req).await?;
    if !resp.status().is_success() {
        return Err(ClientError::Status(resp.status()));
    }
    Ok(resp.into_body().collect().await?.to_bytes())
}

async fn http_post(http: &Http, url: &str, body: Bytes) -> Result<(), ClientError> {
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, POLLING_POST_CONTENT_TYPE)
        .body(Full::new(body))?;
    let resp = http.request(req).await?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(ClientError::Status(status))
    }
}

/// Opens the WebSocket at `url` and moves messages both ways until either
/// side ends.
async fn websocket_task(
    url: String,
    connect_timeout: Duration,
    id: u64,
    mut outgoing: mpsc::Receiver<WsMessage>,
    io: mpsc::Sender<Io>,
) {
    let ws = match tokio::time::timeout(connect_timeout, crate::connect(&url)).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            let _ = io.send(Io::WsClosed(id, Some(e.into()))).await;
            return;
        }
        Err(_) => {
            let error = ClientError::WebSocketTimeout;
            let _ = io.send(Io::WsClosed(id, Some(error))).await;
            return;
        }
    };
    if io.send(Io::WsOpen(id)).await.is_err() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            message = stream.next() => {
                let message = match message {
                    Some(Ok(duplex_ws::Message::Text(t))) => {
                        match Utf8Bytes::try_from_bytes(t.into_bytes()) {
                            Ok(t) => WsMessage::Text(t),
                            Err(_) => {
                                let error = ClientError::InvalidText;
                                let _ = io.send(Io::WsClosed(id, Some(error))).await;
                                return;
                            }
                        }
                    }
                    Some(Ok(duplex_ws::Message::Binary(b))) => WsMessage::Binary(b),
                    Some(Err(e)) => {
                        let _ = io.send(Io::WsClosed(id, Some(e.into()))).await;
                        return;
                    }
                    None => {
                        let _ = io.send(Io::WsClosed(id, None)).await;
                        return;
                    }
                };
                // Waiting for room here holds back reading from the server.
                if io.send(Io::WsMessage(id, message)).await.is_err() {
                    return;
                }
            }
            next = outgoing.recv() => {
                let Some(first) = next else {
                    let _ = sink.close().await;
                    return;
                };
                let mut batch = vec![first];
                while let Ok(m) = outgoing.try_recv() {
                    batch.push(m);
                }
                for m in batch {
                    let m = match m {
                        WsMessage::Text(t) => duplex_ws::Message::Text(t.as_str().into()),
                        WsMessage::Binary(b) => duplex_ws::Message::Binary(b),
                    };
                    if let Err(e) = sink.feed(m).await {
                        let _ = io.send(Io::WsClosed(id, Some(e.into()))).await;
                        return;
                    }
                }
                if let Err(e) = sink.flush().await {
                    let _ = io.send(Io::WsClosed(id, Some(e.into()))).await;
                    return;
                }
            }
        }
    }
}

/// The manager's task: feeds the two machines and carries out what they
/// ask for.
struct Driver {
    config: ClientConfig,
    url: EngineIoUrl,
    http: Http,
    io: mpsc::Sender<Io>,
    commands: Commands,
    socketio: SioClient<AckReply>,
    sockets: HashMap<String, mpsc::Sender<ClientEvent>>,
    /// Events that found their socket's queue full, in order; while any
    /// wait, the manager reads nothing from the server (see
    /// [`EVENT_QUEUE`]).
    undelivered: VecDeque<(mpsc::Sender<ClientEvent>, ClientEvent)>,
    conn: Option<Conn>,
    next_conn: u64,
}

impl Driver {
    /// Starts a new Engine.IO connection.
    fn connect(&mut self) {
        self.next_conn += 1;
        self.conn = Some(Conn {
            id: self.next_conn,
            session: ClientSession::new(self.config.engineio(), now()),
            get: None,
            ws: None,
            ws_backlog: VecDeque::new(),
        });
    }

    /// Moves everything the machines have to say until they are quiet.
    fn pump(&mut self) {
        loop {
            let mut progress = false;
            let t = now();
            let mut closed = None;
            if let Some(conn) = &mut self.conn {
                while let Some(event) = conn.session.poll_event() {
                    progress = true;
                    let result = match event {
                        EioEvent::Opened(_) => {
                            self.socketio.on_open(t);
                            Ok(())
                        }
                        EioEvent::Message(text) => self.socketio.receive_text(text.into_bytes(), t),
                        EioEvent::Binary(data) => self.socketio.receive_binary(data, t),
                        EioEvent::Upgraded | EioEvent::UpgradeFailed => {
                            tracing::debug!("Socket.IO client: {event:?}");
                            Ok(())
                        }
                        EioEvent::Closed(reason) => {
                            closed = Some(reason);
                            Ok(())
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!("Socket.IO client: {e}");
                        conn.session.close_with(CloseReason::ParseError);
                    }
                }
            }
            progress |= self.feed_session();
            if let Some(conn) = &mut self.conn {
                while let Some(transmit) = conn.session.poll_transmit() {
                    progress = true;
                    perform(
                        &self.config,
                        &self.url,
                        &self.http,
                        &self.io,
                        conn,
                        transmit,
                    );
                }
            }
            if let Some(reason) = closed {
                tracing::debug!("Socket.IO client: connection closed: {}", reason.as_str());
                self.conn = None;
                self.socketio.on_close(reason.as_str(), t);
            }
            while let Some(event) = self.socketio.poll_event() {
                progress = true;
                self.dispatch(event);
            }
            if !progress {
                return;
            }
        }
    }

    /// Hands the Socket.IO machine's messages to the Engine.IO session.
    fn feed_session(&mut self) -> bool {
        let mut progress = false;
        while let Some(transmit) = self.socketio.poll_transmit() {
            progress = true;
            let Some(conn) = &mut self.conn else { continue };
            match transmit {
                SioTransmit::Text(text) => {
                    if let Ok(text) = Utf8Bytes::try_from_bytes(text) {
                        conn.session.send_message(text);
                    }
                }
                SioTransmit::Binary(data) => conn.session.send_binary(data),
            }
        }
        progress
    }

    fn dispatch(&mut self, event: SioEvent<AckReply>) {
        let (namespace, event) = match event {
            SioEvent::Connect { namespace, sid } => (namespace, ClientEvent::Connect { sid }),
            SioEvent::ConnectError { namespace, data } => {
                (namespace, ClientEvent::ConnectError { data })
            }
            SioEvent::Event {
                namespace,
                name,
                args,
                ack_id,
            } => {
                let ack = ack_id.map(|id| ClientAck {
                    commands: self.commands.clone(),
                    namespace: namespace.clone(),
                    id,
                });
                (namespace, ClientEvent::Event { name, args, ack })
            }
            SioEvent::Disconnect { namespace, reason } => {
                (namespace, ClientEvent::Disconnect { reason })
            }
            SioEvent::AckReceived { token, args, .. } => {
                let _ = token.send(Ok(args));
                return;
            }
            SioEvent::AckFailed { token, failure, .. } => {
                let _ = token.send(Err(match failure {
                    AckFailure::Timeout => AckError::Timeout,
                    AckFailure::Disconnected => AckError::Disconnected,
                    AckFailure::TooManyPending => AckError::Send(SendError::TooManyPendingAcks),
                    AckFailure::BufferFull => AckError::Send(SendError::QueueFull),
                }));
                return;
            }
            SioEvent::Removed { namespace } => {
                self.sockets.remove(&namespace);
                return;
            }
            SioEvent::Reconnect => {
                self.connect();
                return;
            }
            SioEvent::GaveUp => return,
        };
        if let Some(socket) = self.sockets.get(&namespace) {
            self.deliver(socket.clone(), event);
        }
    }

    /// Hands `event` to its socket, behind any undelivered ones.
    fn deliver(&mut self, socket: mpsc::Sender<ClientEvent>, event: ClientEvent) {
        if !self.undelivered.is_empty() {
            self.undelivered.push_back((socket, event));
            return;
        }
        // A socket dropped by the application takes nothing more.
        if let Err(TrySendError::Full(event)) = socket.try_send(event) {
            self.undelivered.push_back((socket, event));
        }
    }

    fn command(&mut self, command: Command) {
        let t = now();
        match command {
            Command::Join {
                namespace,
                auth,
                events,
            } => match self.socketio.join(&namespace, auth) {
                Ok(()) => {
                    self.sockets.insert(namespace, events);
                }
                Err(e) => {
                    let data = local_connect_error(&e.to_string());
                    self.deliver(events, ClientEvent::ConnectError { data });
                }
            },
            Command::Emit {
                namespace,
                event,
                args,
                ack,
            } => {
                let ack = ack.map(|(reply, timeout)| (reply, timeout.map(|d| t + d)));
                if let Err(e) = self.socketio.emit(&namespace, &event, &args, ack, t) {
                    tracing::debug!("Socket.IO client: emit {event:?}: {e}");
                }
            }
            Command::Ack {
                namespace,
                id,
                args,
            } => {
                if let Err(e) = self.socketio.ack(&namespace, id, &args) {
                    tracing::debug!("Socket.IO client: ack {id}: {e}");
                }
            }
            Command::Leave { namespace } => self.socketio.leave(&namespace),
            Command::Close => self.close(),
        }
    }

    /// Closes for good: DISCONNECTs and the Engine.IO close go out first.
    fn close(&mut self) {
        self.socketio.close();
        self.feed_session();
        if let Some(conn) = &mut self.conn {
            conn.session.close();
        }
        self.pump();
    }

    fn handle_timeout(&mut self) {
        let t = now();
        if let Some(conn) = &mut self.conn {
            conn.session.handle_timeout(t);
        }
        self.socketio.handle_timeout(t);
    }

    fn poll_timeout(&self) -> Option<std::time::Instant> {
        let session = self.conn.as_ref().and_then(|c| c.session.poll_timeout());
        match (session, self.socketio.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_io(&mut self, io: Io) {
        let Some(conn) = &mut self.conn else { return };
        let t = now();
        let session = &mut conn.session;
        match io {
            Io::Get(id, Ok(body)) if id == conn.id => session.handle_get_response(body, t),
            Io::Get(id, Err(e)) if id == conn.id => {
                tracing::debug!("Socket.IO client: poll: {e}");
                session.handle_get_error();
            }
            Io::Post(id, Ok(())) if id == conn.id => session.handle_post_done(),
            Io::Post(id, Err(e)) if id == conn.id => {
                tracing::debug!("Socket.IO client: post: {e}");
                session.handle_post_error();
            }
            Io::WsOpen(id) if id == conn.id => session.handle_ws_open(),
            Io::WsMessage(id, message) if id == conn.id => session.handle_ws_message(message, t),
            Io::WsClosed(id, error) if id == conn.id => {
                if let Some(e) = &error {
                    tracing::debug!("Socket.IO client: WebSocket: {e}");
                }
                session.handle_ws_closed(error.is_some());
            }
            // A report of a connection already dropped.
            _ => {}
        }
    }

    /// The WebSocket writer whose backlog waits for room, if any.
    fn blocked_ws(&self) -> Option<mpsc::Sender<WsMessage>> {
        let conn = self.conn.as_ref()?;
        if conn.ws_backlog.is_empty() {
            return None;
        }
        conn.ws.clone()
    }

    /// Moves the first backlogged WebSocket message into the room `permit`
    /// holds.
    fn write_backlog(&mut self, permit: Option<mpsc::OwnedPermit<WsMessage>>) {
        let Some(conn) = &mut self.conn else { return };
        let Some(message) = conn.ws_backlog.pop_front() else {
            return;
        };
        match permit {
            Some(permit) => {
                permit.send(message);
            }
            // The writer is gone: its session hears of it from the task.
            None => conn.ws_backlog.clear(),
        }
    }

    /// Moves the first undelivered event into the room `permit` holds (or
    /// drops it, its socket gone).
    fn deliver_first(&mut self, permit: Option<mpsc::OwnedPermit<ClientEvent>>) {
        if let (Some((_, event)), Some(permit)) = (self.undelivered.pop_front(), permit) {
            permit.send(event);
        }
    }
}

/// Carries out one thing the Engine.IO session asked for.
fn perform(
    config: &ClientConfig,
    url: &EngineIoUrl,
    http: &Http,
    io: &mpsc::Sender<Io>,
    conn: &mut Conn,
    transmit: EioTransmit,
) {
    let id = conn.id;
    let sid = conn.session.sid();
    match transmit {
        EioTransmit::Get => {
            let url = url.url(CLIENT_PROTOCOL, TransportKind::Polling, sid);
            let (http, io) = (http.clone(), io.clone());
            conn.get = Some(tokio::spawn(async move {
                let _ = io.send(Io::Get(id, http_get(&http, &url).await)).await;
            }));
        }
        EioTransmit::Post(body) => {
            let url = url.url(CLIENT_PROTOCOL, TransportKind::Polling, sid);
            let (http, io) = (http.clone(), io.clone());
            // Not aborted with the connection: the last one carries its close.
            tokio::spawn(async move {
                let _ = io
                    .send(Io::Post(id, http_post(&http, &url, body).await))
                    .await;
            });
        }
        EioTransmit::OpenWebSocket => {
            let url = url.url(CLIENT_PROTOCOL, TransportKind::WebSocket, sid);
            let (tx, rx) = mpsc::channel(WS_WRITE_QUEUE);
            conn.ws = Some(tx);
            conn.ws_backlog.clear();
            tokio::spawn(websocket_task(url, config.timeout, id, rx, io.clone()));
        }
        EioTransmit::WebSocket(message) => conn.write_ws(message),
        EioTransmit::CloseWebSocket => conn.close_ws(),
    }
}

/// Room in `sender`'s queue, once there is (`None`: its receiver is gone).
async fn room<T>(sender: Option<mpsc::Sender<T>>) -> Option<mpsc::OwnedPermit<T>> {
    match sender {
        Some(sender) => sender.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

async fn manager_task(
    config: ClientConfig,
    mut commands: mpsc::Receiver<Command>,
    commands_tx: Commands,
) {
    let (io_tx, mut io_rx) = mpsc::channel(IO_QUEUE);
    let mut driver = Driver {
        socketio: SioClient::new(config.socketio()),
        http: HttpClient::builder(TokioExecutor::new()).build_http(),
        url: config.engineio_url(),
        config,
        io: io_tx,
        commands: commands_tx,
        sockets: HashMap::new(),
        undelivered: VecDeque::new(),
        conn: None,
        next_conn: 0,
    };
    driver.connect();
    loop {
        driver.pump();
        if driver.socketio.is_done() {
            break;
        }
        let wake = driver.poll_timeout().map(tokio::time::Instant::from_std);
        let ws_blocked = driver.blocked_ws();
        let app_blocked = driver.undelivered.front().map(|(socket, _)| socket.clone());
        let (reading, taking_commands) = (app_blocked.is_none(), ws_blocked.is_none());
        tokio::select! {
            permit = room(ws_blocked), if !taking_commands => driver.write_backlog(permit),
            permit = room(app_blocked), if !reading => driver.deliver_first(permit),
            io = io_rx.recv(), if reading => {
                if let Some(io) = io {
                    driver.on_io(io);
                }
            }
            command = commands.recv(), if taking_commands => match command {
                Some(command) => driver.command(command),
                None => driver.close(),
            },
            () = async {
                match wake {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => driver.handle_timeout(),
        }
    }
    // The last events (the disconnects of the close) still reach the
    // sockets the application holds.
    for (socket, event) in driver.undelivered {
        let _ = socket.send(event).await;
    }
}
