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
//! The Engine.IO client side (answering pings, the ping watchdog, the
//! probe of the upgrade) lives here because no sans-IO crate has a client
//! machine for it yet; the Socket.IO side uses duplex-socketio's `Decoder`,
//! `Namespaces` (client role) and `Acks`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use duplex_engineio::{
    Limits, OpenPacket, Packet as EioPacket, PayloadFormat, ProtocolVersion as EioVersion,
    Utf8Bytes, WsMessage, decode_payload,
};
use duplex_socketio::{
    Acks, Decoder, DecoderConfig, Namespaces, NamespacesConfig, Packet, ProtocolVersion, Received,
    Role, Str, Value,
};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use super::AckError;

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

    fn endpoint(&self, scheme_ws: bool, transport: &str, sid: Option<&str>) -> String {
        let mut base = self.url.clone();
        if scheme_ws {
            if let Some(rest) = base.strip_prefix("https://") {
                base = format!("wss://{rest}");
            } else if let Some(rest) = base.strip_prefix("http://") {
                base = format!("ws://{rest}");
            }
        }
        let mut url = format!("{base}{}?EIO=4&transport={transport}", self.path);
        if let Some(sid) = sid {
            url.push_str("&sid=");
            url.push_str(sid);
        }
        for (k, v) in &self.query {
            url.push('&');
            url.push_str(&form_encode(k));
            url.push('=');
            url.push_str(&form_encode(v));
        }
        url
    }

    /// The delay before reconnection attempt `attempt` (0-based):
    /// `reconnection_delay * 2^attempt`, spread by the randomization
    /// factor, at most `reconnection_delay_max`.
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let base = self.reconnection_delay.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let jitter = self.randomization_factor.clamp(0.0, 1.0);
        let spread = base * jitter * rng.random::<f64>();
        let ms = if rng.random::<bool>() {
            base - spread
        } else {
            base + spread
        };
        Duration::from_secs_f64(ms.max(0.0)).min(self.reconnection_delay_max)
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

/// A namespace the application asked for.
struct Wanted {
    auth: Option<Value>,
    events: mpsc::UnboundedSender<ClientEvent>,
    /// Emits waiting for the namespace to connect.
    buffer: VecDeque<Command>,
    acks: Acks<AckReply>,
    connected: bool,
}

/// What a transport reports.
enum Incoming {
    Packet(EioPacket),
    /// The transport ended (the reason for the socket).
    Closed(&'static str),
}

/// A live transport: packets out through `outgoing`, packets in through
/// the connection's `incoming` channel; its tasks stop when it is dropped.
struct Transport {
    outgoing: mpsc::UnboundedSender<EioPacket>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

type Http = HttpClient<HttpConnector, Full<Bytes>>;

async fn http_get(http: &Http, url: &str) -> Result<Bytes, &'static str> {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|_| "transport error")?;
    let resp = http.request(req).await.map_err(|_| "transport error")?;
    if !resp.status().is_success() {
        return Err("transport error");
    }
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(|_| "transport error")?
        .to_bytes())
}

async fn http_post(http: &Http, url: &str, body: Bytes) -> Result<(), &'static str> {
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Full::new(body))
        .map_err(|_| "transport error")?;
    let resp = http.request(req).await.map_err(|_| "transport error")?;
    let ok = resp.status().is_success();
    let _ = resp.into_body().collect().await;
    if ok { Ok(()) } else { Err("transport error") }
}

/// Starts the long-polling tasks of session `sid`. The GET loop stops after
/// its current request when `pause` fires (the upgrade).
fn polling_transport(
    config: &ClientConfig,
    http: &Http,
    sid: &str,
    incoming: mpsc::UnboundedSender<Incoming>,
    mut pause: Option<oneshot::Receiver<()>>,
    paused: Option<oneshot::Sender<()>>,
) -> Transport {
    let url = config.endpoint(false, "polling", Some(sid));
    let limits = config.limits;
    let reader = {
        let http = http.clone();
        let url = url.clone();
        let incoming = incoming.clone();
        tokio::spawn(async move {
            loop {
                let body = match http_get(&http, &url).await {
                    Ok(b) => b,
                    Err(reason) => {
                        let _ = incoming.send(Incoming::Closed(reason));
                        return;
                    }
                };
                for packet in decode_payload(body, PayloadFormat::V4, limits) {
                    match packet {
                        Ok(p) => {
                            let close = matches!(p, EioPacket::Close);
                            let _ = incoming.send(Incoming::Packet(p));
                            if close {
                                return;
                            }
                        }
                        Err(_) => {
                            let _ = incoming.send(Incoming::Closed("parse error"));
                            return;
                        }
                    }
                }
                if let Some(rx) = &mut pause {
                    if rx.try_recv().is_ok() {
                        if let Some(done) = paused {
                            let _ = done.send(());
                        }
                        return;
                    }
                }
            }
        })
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<EioPacket>();
    let writer = {
        let http = http.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(p) = rx.try_recv() {
                    batch.push(p);
                }
                let body = PayloadFormat::V4.encode_to_bytes(&batch);
                if let Err(reason) = http_post(&http, &url, body).await {
                    let _ = incoming.send(Incoming::Closed(reason));
                    return;
                }
            }
        })
    };
    Transport {
        outgoing: tx,
        tasks: vec![reader, writer],
    }
}

/// Opens a WebSocket (a new session, or `sid`'s upgrade) and starts its
/// reader and writer tasks.
async fn websocket_transport(
    config: &ClientConfig,
    sid: Option<&str>,
    incoming: mpsc::UnboundedSender<Incoming>,
) -> Result<Transport, &'static str> {
    let url = config.endpoint(true, "websocket", sid);
    let (ws, _) = crate::connect(&url).await.map_err(|_| "transport error")?;
    let (mut sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            let ws = match message {
                Ok(duplex_ws::Message::Text(t)) => {
                    match Utf8Bytes::try_from_bytes(t.into_bytes()) {
                        Ok(t) => WsMessage::Text(t),
                        Err(_) => break,
                    }
                }
                Ok(duplex_ws::Message::Binary(b)) => WsMessage::Binary(b),
                Err(_) => break,
            };
            match EioPacket::from_websocket(ws, EioVersion::V4) {
                Ok(p) => {
                    let _ = incoming.send(Incoming::Packet(p));
                }
                Err(_) => {
                    let _ = incoming.send(Incoming::Closed("parse error"));
                    return;
                }
            }
        }
        let _ = incoming.send(Incoming::Closed("transport close"));
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<EioPacket>();
    let writer = tokio::spawn(async move {
        while let Some(packet) = rx.recv().await {
            let message = match packet.to_websocket(EioVersion::V4) {
                WsMessage::Text(t) => duplex_ws::Message::Text(t.as_str().into()),
                WsMessage::Binary(b) => duplex_ws::Message::Binary(b),
            };
            if sink.feed(message).await.is_err() {
                return;
            }
            if rx.is_empty() && sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    Ok(Transport {
        outgoing: tx,
        tasks: vec![reader, writer],
    })
}

/// An open Engine.IO session.
struct Session {
    open: OpenPacket,
    transport: Transport,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    /// Packets received during the handshake or upgrade, not yet handled.
    pending: VecDeque<EioPacket>,
}

async fn next_incoming(
    rx: &mut mpsc::UnboundedReceiver<Incoming>,
    deadline: Instant,
) -> Result<EioPacket, &'static str> {
    match tokio::time::timeout_at(deadline, rx.recv()).await {
        Err(_) => Err("timeout"),
        Ok(None) => Err("transport close"),
        Ok(Some(Incoming::Closed(reason))) => Err(reason),
        Ok(Some(Incoming::Packet(p))) => Ok(p),
    }
}

/// The Engine.IO handshake on the configured transports, with the upgrade.
async fn open_session(config: &ClientConfig, http: &Http) -> Result<Session, &'static str> {
    let deadline = Instant::now() + config.timeout;
    let (tx, mut rx) = mpsc::unbounded_channel();
    if config.transports == ClientTransports::WebSocket {
        let transport = tokio::time::timeout_at(deadline, websocket_transport(config, None, tx))
            .await
            .map_err(|_| "timeout")??;
        let first = next_incoming(&mut rx, deadline).await?;
        let open = OpenPacket::from_packet(&first).map_err(|_| "parse error")?;
        return Ok(Session {
            open,
            transport,
            incoming: rx,
            pending: VecDeque::new(),
        });
    }
    let body = tokio::time::timeout_at(
        deadline,
        http_get(http, &config.endpoint(false, "polling", None)),
    )
    .await
    .map_err(|_| "timeout")??;
    let mut packets = decode_payload(body, PayloadFormat::V4, config.limits);
    let open = match packets.next() {
        Some(Ok(p)) => OpenPacket::from_packet(&p).map_err(|_| "parse error")?,
        _ => return Err("parse error"),
    };
    let mut pending: VecDeque<EioPacket> = packets.filter_map(Result::ok).collect();
    let upgrade = config.transports == ClientTransports::PollingThenWebSocket
        && open.upgrades.iter().any(|u| u == "websocket");
    if !upgrade {
        let transport = polling_transport(config, http, &open.sid, tx, None, None);
        return Ok(Session {
            open,
            transport,
            incoming: rx,
            pending,
        });
    }
    let (pause_tx, pause_rx) = oneshot::channel();
    let (paused_tx, paused_rx) = oneshot::channel();
    let polling = polling_transport(
        config,
        http,
        &open.sid,
        tx.clone(),
        Some(pause_rx),
        Some(paused_tx),
    );
    // The upgrade: probe on the WebSocket, then pause polling (the server
    // releases the parked GET with a noop), then `5` on the WebSocket.
    let websocket = match websocket_transport(config, Some(&open.sid), tx).await {
        Ok(ws) => ws,
        // The WebSocket cannot get through: stay on polling.
        Err(_) => {
            return Ok(Session {
                open,
                transport: polling,
                incoming: rx,
                pending,
            });
        }
    };
    let probe = EioPacket::Ping(Utf8Bytes::from_static(duplex_engineio::PROBE));
    let _ = websocket.outgoing.send(probe);
    loop {
        match next_incoming(&mut rx, deadline).await? {
            EioPacket::Pong(data) if data.as_str() == duplex_engineio::PROBE => break,
            EioPacket::Ping(data) if data.is_empty() => {
                let _ = polling.outgoing.send(EioPacket::pong());
            }
            other => pending.push_back(other),
        }
    }
    let _ = pause_tx.send(());
    // Packets the last GETs bring arrive through the same channel; the
    // loop keeps them in order until the GET loop has stopped.
    let mut paused_rx = paused_rx;
    loop {
        tokio::select! {
            done = &mut paused_rx => {
                if done.is_err() {
                    return Err("transport error");
                }
                break;
            }
            incoming = rx.recv() => match incoming {
                Some(Incoming::Packet(EioPacket::Noop)) => {}
                Some(Incoming::Packet(p)) => pending.push_back(p),
                Some(Incoming::Closed(reason)) => return Err(reason),
                None => return Err("transport close"),
            },
            () = sleep_until(deadline) => return Err("timeout"),
        }
    }
    while let Ok(incoming) = rx.try_recv() {
        match incoming {
            Incoming::Packet(EioPacket::Noop) => {}
            Incoming::Packet(p) => pending.push_back(p),
            Incoming::Closed(reason) => return Err(reason),
        }
    }
    let _ = websocket.outgoing.send(EioPacket::Upgrade);
    drop(polling);
    Ok(Session {
        open,
        transport: websocket,
        incoming: rx,
        pending,
    })
}

async fn manager_task(
    config: ClientConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    commands_tx: mpsc::UnboundedSender<Command>,
) {
    let http: Http = HttpClient::builder(TokioExecutor::new()).build_http();
    let mut wanted: HashMap<String, Wanted> = HashMap::new();
    let mut attempt: u32 = 0;
    let mut rng = rand::rngs::StdRng::from_os_rng();
    loop {
        match open_session(&config, &http).await {
            Ok(session) => {
                attempt = 0;
                let closed = run_session(session, &mut wanted, &mut commands, &commands_tx).await;
                if closed {
                    return;
                }
            }
            Err(reason) => {
                tracing::debug!("Socket.IO client: connection failed: {reason}");
                let data = Value::Object(vec![("message".into(), Value::from(reason))]);
                for w in wanted.values() {
                    let _ = w
                        .events
                        .send(ClientEvent::ConnectError { data: data.clone() });
                }
            }
        }
        if !config.reconnection || config.reconnection_attempts.is_some_and(|n| attempt >= n) {
            for w in wanted.values_mut() {
                fail_acks(w);
            }
            return;
        }
        let wake = Instant::now() + config.backoff(attempt, &mut rng);
        attempt = attempt.saturating_add(1);
        // Commands keep coming while waiting: buffer them.
        loop {
            tokio::select! {
                () = sleep_until(wake) => break,
                command = commands.recv() => match command {
                    None | Some(Command::Close) => return,
                    Some(command) => offline(command, &mut wanted),
                },
            }
        }
    }
}

fn fail_acks(w: &mut Wanted) {
    for (_, reply) in w.acks.clear() {
        let _ = reply.send(Err(AckError::Disconnected));
    }
}

/// A command while no session is open.
fn offline(command: Command, wanted: &mut HashMap<String, Wanted>) {
    match command {
        Command::Join {
            namespace,
            auth,
            events,
        } => {
            wanted.insert(
                namespace,
                Wanted {
                    auth,
                    events,
                    buffer: VecDeque::new(),
                    acks: Acks::new(1024),
                    connected: false,
                },
            );
        }
        Command::Emit { ref namespace, .. } => {
            if let Some(w) = wanted.get_mut(namespace) {
                w.buffer.push_back(command);
            }
        }
        Command::Leave { namespace } => {
            if let Some(mut w) = wanted.remove(&namespace) {
                fail_acks(&mut w);
                let _ = w.events.send(ClientEvent::Disconnect {
                    reason: "io client disconnect",
                });
            }
        }
        Command::Ack { .. } | Command::Close => {}
    }
}

/// Drives one Engine.IO session. True if the application closed the
/// manager (no reconnection).
async fn run_session(
    mut session: Session,
    wanted: &mut HashMap<String, Wanted>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    commands_tx: &mpsc::UnboundedSender<Command>,
) -> bool {
    let ping_window = Duration::from_millis(session.open.ping_interval + session.open.ping_timeout);
    let mut watchdog = Instant::now() + ping_window;
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut namespaces = Namespaces::new(
        NamespacesConfig {
            version: ProtocolVersion::V5,
            role: Role::Client,
            connect_timeout: None,
            ..NamespacesConfig::default()
        },
        std::time::Instant::now(),
    );
    let out = session.transport.outgoing.clone();
    let send = |packet: &Packet| {
        let wire = packet.encode();
        if let Ok(text) = Utf8Bytes::try_from_bytes(wire.text) {
            let _ = out.send(EioPacket::Message(text));
        }
        for a in wire.attachments {
            let _ = out.send(EioPacket::Binary(a));
        }
    };
    for (name, w) in wanted.iter() {
        let data = w.auth.as_ref().map(|a| a.encode().0);
        if let Ok(packet) = Packet::connect(Str::from(name.clone()), data) {
            if namespaces.on_send(&packet).is_ok() {
                send(&packet);
            }
        }
    }
    let reason: &'static str = loop {
        let next_ack = wanted
            .values()
            .filter_map(|w| w.acks.poll_timeout())
            .min()
            .map(Instant::from_std);
        let packet = if let Some(p) = session.pending.pop_front() {
            p
        } else {
            tokio::select! {
                incoming = session.incoming.recv() => match incoming {
                    Some(Incoming::Packet(p)) => p,
                    Some(Incoming::Closed(reason)) => break reason,
                    None => break "transport close",
                },
                command = commands.recv() => {
                    match command {
                        None | Some(Command::Close) => {
                            for (name, w) in wanted.iter_mut() {
                                if w.connected {
                                    if let Ok(p) = Packet::disconnect(Str::from(name.clone())) {
                                        send(&p);
                                    }
                                }
                                fail_acks(w);
                                let _ = w.events.send(ClientEvent::Disconnect { reason: "io client disconnect" });
                            }
                            let _ = out.send(EioPacket::Close);
                            // Let the writer flush the close.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            return true;
                        }
                        Some(command) => {
                            online(command, wanted, &mut namespaces, &send);
                            continue;
                        }
                    }
                }
                () = sleep_until(watchdog) => break "ping timeout",
                () = async {
                    match next_ack {
                        Some(at) => sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = std::time::Instant::now();
                    for w in wanted.values_mut() {
                        w.acks.handle_timeout(now);
                        while let Some((_, reply)) = w.acks.poll_expired() {
                            let _ = reply.send(Err(AckError::Timeout));
                        }
                    }
                    continue;
                }
            }
        };
        let decoded = match packet {
            EioPacket::Ping(_) => {
                watchdog = Instant::now() + ping_window;
                let _ = out.send(EioPacket::pong());
                continue;
            }
            EioPacket::Close => break "transport close",
            EioPacket::Message(text) => decoder.receive_text(text.into_bytes()),
            EioPacket::Binary(data) => decoder.receive_binary(data),
            _ => continue,
        };
        let packet = match decoded {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(_) => break "parse error",
        };
        let name = packet.namespace.as_str().to_owned();
        match namespaces.on_receive(&packet) {
            Ok(Received::Connected) => {
                let sid = packet
                    .value()
                    .ok()
                    .flatten()
                    .and_then(|v| v.get("sid").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                let buffered: Vec<Command> = match wanted.get_mut(&name) {
                    Some(w) => {
                        w.connected = true;
                        let _ = w.events.send(ClientEvent::Connect { sid });
                        w.buffer.drain(..).collect()
                    }
                    None => Vec::new(),
                };
                for command in buffered {
                    online(command, wanted, &mut namespaces, &send);
                }
            }
            Ok(Received::Refused) => {
                if let Some(mut w) = wanted.remove(&name) {
                    let data = packet.value().ok().flatten().unwrap_or(Value::Null);
                    fail_acks(&mut w);
                    let _ = w.events.send(ClientEvent::ConnectError { data });
                }
            }
            Ok(Received::Disconnected) => {
                if let Some(mut w) = wanted.remove(&name) {
                    fail_acks(&mut w);
                    let _ = w.events.send(ClientEvent::Disconnect {
                        reason: "io server disconnect",
                    });
                }
            }
            Ok(Received::Message) if packet.packet_type.is_event() => {
                let Some(w) = wanted.get(&name) else { continue };
                let mut args = match packet.value() {
                    Ok(Some(Value::Array(items))) => items,
                    _ => continue,
                };
                let event = match args.first() {
                    Some(Value::String(s)) => s.clone(),
                    _ => continue,
                };
                args.remove(0);
                let ack = packet.ack_id.map(|id| ClientAck {
                    commands: commands_tx.clone(),
                    namespace: name.clone(),
                    id,
                });
                let _ = w.events.send(ClientEvent::Event {
                    name: event,
                    args,
                    ack,
                });
            }
            Ok(Received::Message) => {
                let Some(w) = wanted.get_mut(&name) else {
                    continue;
                };
                if let Some(reply) = packet.ack_id.and_then(|id| w.acks.resolve(id)) {
                    let args = match packet.value() {
                        Ok(Some(Value::Array(items))) => items,
                        _ => Vec::new(),
                    };
                    let _ = reply.send(Ok(args));
                }
            }
            Ok(_) => {}
            Err(_) => break "parse error",
        }
    };
    for w in wanted.values_mut() {
        if std::mem::take(&mut w.connected) {
            let _ = w.events.send(ClientEvent::Disconnect { reason });
        }
    }
    false
}

/// A command while a session is open.
fn online(
    command: Command,
    wanted: &mut HashMap<String, Wanted>,
    namespaces: &mut Namespaces,
    send: &impl Fn(&Packet),
) {
    match command {
        Command::Join {
            namespace,
            auth,
            events,
        } => {
            let data = auth.as_ref().map(|a| a.encode().0);
            wanted.insert(
                namespace.clone(),
                Wanted {
                    auth,
                    events,
                    buffer: VecDeque::new(),
                    acks: Acks::new(1024),
                    connected: false,
                },
            );
            if let Ok(packet) = Packet::connect(Str::from(namespace), data) {
                if namespaces.on_send(&packet).is_ok() {
                    send(&packet);
                }
            }
        }
        Command::Emit {
            namespace,
            event,
            args,
            ack,
        } => {
            let Some(w) = wanted.get_mut(&namespace) else {
                if let Some((reply, _)) = ack {
                    let _ = reply.send(Err(AckError::Disconnected));
                }
                return;
            };
            if !w.connected {
                w.buffer.push_back(Command::Emit {
                    namespace,
                    event,
                    args,
                    ack,
                });
                return;
            }
            let id = match ack {
                Some((reply, timeout)) => {
                    let deadline = timeout.map(|t| std::time::Instant::now() + t);
                    match w.acks.register(reply, deadline) {
                        Ok(id) => Some(id),
                        Err(_) => return,
                    }
                }
                None => None,
            };
            if let Ok(packet) = Packet::event_with(Str::from(namespace), &event, &args, id) {
                send(&packet);
            }
        }
        Command::Ack {
            namespace,
            id,
            args,
        } => {
            if wanted.get(&namespace).is_some_and(|w| w.connected) {
                if let Ok(packet) = Packet::ack_with(Str::from(namespace), &args, id) {
                    send(&packet);
                }
            }
        }
        Command::Leave { namespace } => {
            if let Some(mut w) = wanted.remove(&namespace) {
                if w.connected {
                    if let Ok(packet) = Packet::disconnect(Str::from(namespace)) {
                        let _ = namespaces.on_send(&packet);
                        send(&packet);
                    }
                }
                fail_acks(&mut w);
                let _ = w.events.send(ClientEvent::Disconnect {
                    reason: "io client disconnect",
                });
            }
        }
        Command::Close => {}
    }
}
