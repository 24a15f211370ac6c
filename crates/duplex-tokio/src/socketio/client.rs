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

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use duplex_engineio::client::{
    ClientConfig as EioConfig, ClientEvent as EioEvent, ClientSession, CloseReason,
    Transmit as EioTransmit,
};
use duplex_engineio::{Limits, TransportKind, Utf8Bytes, WsMessage};
use duplex_socketio::Value;
use duplex_socketio::client::{
    AckFailure, Backoff, Client as SioClient, ClientConfig as SioConfig, ClientEvent as SioEvent,
    Reconnection, Transmit as SioTransmit,
};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
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
    /// Extra query parameters of every request.
    pub query: Vec<(String, String)>,
    /// Most packets in one polling response. Default: the reference's 1 MB
    /// `maxPayload` worth of limits.
    pub limits: Limits,
}

impl ClientConfig {
    /// The defaults, for the server at `url`.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            path: "/socket.io/".to_owned(),
            transports: ClientTransports::PollingThenWebSocket,
            reconnection: true,
            reconnection_attempts: None,
            reconnection_delay: Duration::from_secs(1),
            reconnection_delay_max: Duration::from_secs(5),
            randomization_factor: 0.5,
            timeout: Duration::from_secs(20),
            query: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// The URL of a request whose Engine.IO query (`EIO`, `transport`,
    /// `sid`) the session gave.
    fn endpoint(&self, websocket: bool, eio_query: &str) -> String {
        let mut base = self.url.clone();
        if websocket {
            if let Some(rest) = base.strip_prefix("https://") {
                base = format!("wss://{rest}");
            } else if let Some(rest) = base.strip_prefix("http://") {
                base = format!("ws://{rest}");
            }
        }
        let mut url = format!("{base}{}?{eio_query}", self.path);
        for (k, v) in &self.query {
            url.push('&');
            url.push_str(&form_encode(k));
            url.push('=');
            url.push_str(&form_encode(v));
        }
        url
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

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// Answers an event that asked for an ack.
#[derive(Debug)]
pub struct ClientAck {
    commands: mpsc::UnboundedSender<Command>,
    namespace: String,
    id: u64,
}

impl ClientAck {
    /// Acknowledges with `args`.
    pub fn send(self, args: Vec<Value>) {
        let _ = self.commands.send(Command::Ack {
            namespace: self.namespace,
            id: self.id,
            args,
        });
    }
}

type AckReply = oneshot::Sender<Result<Vec<Value>, AckError>>;

enum Command {
    Join {
        namespace: String,
        auth: Option<Value>,
        events: mpsc::UnboundedSender<ClientEvent>,
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
    commands: mpsc::UnboundedSender<Command>,
}

impl Manager {
    /// Starts connecting to the server (on the current tokio runtime).
    pub fn new(config: ClientConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(manager_task(config, rx, tx.clone()));
        Self { commands: tx }
    }

    /// A socket on `namespace`, connecting with `auth` (now, or as soon as
    /// the connection is up, and again after each reconnection).
    pub fn socket(&self, namespace: &str, auth: Option<Value>) -> ClientSocket {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.commands.send(Command::Join {
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

    /// Closes the connection for good.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }
}

/// A namespace of a [`Manager`]'s connection.
#[derive(Debug)]
pub struct ClientSocket {
    commands: mpsc::UnboundedSender<Command>,
    namespace: String,
    events: mpsc::UnboundedReceiver<ClientEvent>,
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
    pub fn emit(&self, event: &str, args: Vec<Value>) {
        let _ = self.commands.send(Command::Emit {
            namespace: self.namespace.clone(),
            event: event.to_owned(),
            args,
            ack: None,
        });
    }

    /// Emits `event` asking for an ack, and waits for it (at most `timeout`).
    pub async fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Value>, AckError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Emit {
            namespace: self.namespace.clone(),
            event: event.to_owned(),
            args,
            ack: Some((tx, timeout)),
        });
        rx.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Leaves the namespace (sends DISCONNECT); the connection stays.
    pub fn disconnect(&self) {
        let _ = self.commands.send(Command::Leave {
            namespace: self.namespace.clone(),
        });
    }
}

type Http = HttpClient<HttpConnector, Full<Bytes>>;

/// What the IO tasks of a connection report, tagged with the connection's
/// number so that reports of a dropped connection are ignored.
enum Io {
    Get(u64, Result<Bytes, ()>),
    Post(u64, Result<(), ()>),
    WsOpen(u64),
    WsMessage(u64, WsMessage),
    /// The WebSocket closed (`true`: failed or could not be opened).
    WsClosed(u64, bool),
}

/// One Engine.IO connection: its session machine and its IO.
struct Conn {
    id: u64,
    session: ClientSession,
    /// The long-polling GET in flight; aborted with the connection.
    get: Option<JoinHandle<()>>,
    /// The WebSocket's writer; dropping it closes the WebSocket once what
    /// was written is flushed.
    ws: Option<mpsc::UnboundedSender<WsMessage>>,
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

async fn http_get(http: &Http, url: &str) -> Result<Bytes, ()> {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(drop)?;
    let resp = http.request(req).await.map_err(drop)?;
    if !resp.status().is_success() {
        return Err(());
    }
    Ok(resp.into_body().collect().await.map_err(drop)?.to_bytes())
}

async fn http_post(http: &Http, url: &str, body: Bytes) -> Result<(), ()> {
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Full::new(body))
        .map_err(drop)?;
    let resp = http.request(req).await.map_err(drop)?;
    let ok = resp.status().is_success();
    let _ = resp.into_body().collect().await;
    if ok { Ok(()) } else { Err(()) }
}

/// Opens the WebSocket at `url` and moves messages both ways until either
/// side ends.
async fn websocket_task(
    url: String,
    connect_timeout: Duration,
    id: u64,
    mut outgoing: mpsc::UnboundedReceiver<WsMessage>,
    io: mpsc::UnboundedSender<Io>,
) {
    let ws = match tokio::time::timeout(connect_timeout, crate::connect(&url)).await {
        Ok(Ok((ws, _))) => ws,
        _ => {
            let _ = io.send(Io::WsClosed(id, true));
            return;
        }
    };
    let _ = io.send(Io::WsOpen(id));
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            message = stream.next() => {
                let message = match message {
                    Some(Ok(duplex_ws::Message::Text(t))) => {
                        match Utf8Bytes::try_from_bytes(t.into_bytes()) {
                            Ok(t) => WsMessage::Text(t),
                            Err(_) => {
                                let _ = io.send(Io::WsClosed(id, true));
                                return;
                            }
                        }
                    }
                    Some(Ok(duplex_ws::Message::Binary(b))) => WsMessage::Binary(b),
                    Some(Err(_)) => {
                        let _ = io.send(Io::WsClosed(id, true));
                        return;
                    }
                    None => {
                        let _ = io.send(Io::WsClosed(id, false));
                        return;
                    }
                };
                let _ = io.send(Io::WsMessage(id, message));
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
                    if sink.feed(m).await.is_err() {
                        let _ = io.send(Io::WsClosed(id, true));
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    let _ = io.send(Io::WsClosed(id, true));
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
    http: Http,
    io: mpsc::UnboundedSender<Io>,
    commands: mpsc::UnboundedSender<Command>,
    socketio: SioClient<AckReply>,
    sockets: HashMap<String, mpsc::UnboundedSender<ClientEvent>>,
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
                    perform(&self.config, &self.http, &self.io, conn, transmit);
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
            let _ = socket.send(event);
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
                    let data = Value::Object(vec![("message".into(), Value::from(e.to_string()))]);
                    let _ = events.send(ClientEvent::ConnectError { data });
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
            Io::Get(id, Err(())) if id == conn.id => session.handle_get_error(),
            Io::Post(id, Ok(())) if id == conn.id => session.handle_post_done(),
            Io::Post(id, Err(())) if id == conn.id => session.handle_post_error(),
            Io::WsOpen(id) if id == conn.id => session.handle_ws_open(),
            Io::WsMessage(id, message) if id == conn.id => session.handle_ws_message(message, t),
            Io::WsClosed(id, error) if id == conn.id => session.handle_ws_closed(error),
            // A report of a connection already dropped.
            _ => {}
        }
    }
}

/// Carries out one thing the Engine.IO session asked for.
fn perform(
    config: &ClientConfig,
    http: &Http,
    io: &mpsc::UnboundedSender<Io>,
    conn: &mut Conn,
    transmit: EioTransmit,
) {
    let id = conn.id;
    match transmit {
        EioTransmit::Get => {
            let url = config.endpoint(false, &conn.session.query(TransportKind::Polling));
            let (http, io) = (http.clone(), io.clone());
            conn.get = Some(tokio::spawn(async move {
                let _ = io.send(Io::Get(id, http_get(&http, &url).await));
            }));
        }
        EioTransmit::Post(body) => {
            let url = config.endpoint(false, &conn.session.query(TransportKind::Polling));
            let (http, io) = (http.clone(), io.clone());
            // Not aborted with the connection: the last one carries its close.
            tokio::spawn(async move {
                let _ = io.send(Io::Post(id, http_post(&http, &url, body).await));
            });
        }
        EioTransmit::OpenWebSocket => {
            let url = config.endpoint(true, &conn.session.query(TransportKind::WebSocket));
            let (tx, rx) = mpsc::unbounded_channel();
            conn.ws = Some(tx);
            tokio::spawn(websocket_task(url, config.timeout, id, rx, io.clone()));
        }
        EioTransmit::WebSocket(message) => {
            if let Some(ws) = &conn.ws {
                let _ = ws.send(message);
            }
        }
        EioTransmit::CloseWebSocket => conn.ws = None,
    }
}

async fn manager_task(
    config: ClientConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    commands_tx: mpsc::UnboundedSender<Command>,
) {
    let (io_tx, mut io_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        socketio: SioClient::new(config.socketio()),
        http: HttpClient::builder(TokioExecutor::new()).build_http(),
        config,
        io: io_tx,
        commands: commands_tx,
        sockets: HashMap::new(),
        conn: None,
        next_conn: 0,
    };
    driver.connect();
    loop {
        driver.pump();
        if driver.socketio.is_done() {
            return;
        }
        let wake = driver.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            io = io_rx.recv() => {
                if let Some(io) = io {
                    driver.on_io(io);
                }
            }
            command = commands.recv() => match command {
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
}
