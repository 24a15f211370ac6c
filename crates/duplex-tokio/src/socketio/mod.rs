//! A Socket.IO v5 server (Engine.IO v4 underneath; v3/Socket.IO v4 clients
//! with `allow_eio3`) on hyper: polling and WebSocket on one path, the
//! upgrade between them, namespaces, rooms, acks both ways, binary
//! attachments.
//!
//! ```no_run
//! use std::time::Duration;
//! use duplex_tokio::socketio::{SocketIo, SocketIoConfig, Value};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let io = SocketIo::builder(SocketIoConfig::default())
//!     .namespace("/", |ns| {
//!         ns.on_connect(|socket| {
//!             let auth = socket.handshake().auth.clone();
//!             let _ = socket.emit("auth", vec![auth]);
//!         })
//!         .on("message", |socket, args, _ack| {
//!             let _ = socket.emit("message-back", args);
//!         })
//!         .on("message-with-ack", |_socket, args, ack| {
//!             if let Some(ack) = ack {
//!                 let _ = ack.send(args);
//!             }
//!         })
//!         .on("join", |socket, args, _| {
//!             if let Some(Value::String(room)) = args.first() {
//!                 socket.join(room);
//!                 let _ = socket.to(room).emit("joined", vec![socket.id().as_str().into()]);
//!             }
//!         })
//!     })
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let io = io.clone();
//!     tokio::spawn(
//!         hyper::server::conn::http1::Builder::new()
//!             .serve_connection(hyper_util::rt::TokioIo::new(tcp), io)
//!             .with_upgrades(),
//!     );
//! }
//! # }
//! ```
//!
//! Handlers run one at a time, in the order their packets arrived, outside
//! the server's lock: they may emit, join rooms and so on, but must not
//! block (spawn a task for slow work; [`Socket`] handles are cheap to clone
//! and `Send`).

mod app;
pub mod client;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use duplex_polling::{Cors, EngineIoConfig, EngineIoServer, SessionId, TransportName};
use duplex_socketio::engineio_binding::DEFAULT_PATH;
use duplex_socketio::{Broadcast, Packet, Str};
use http::HeaderMap;
use hyper::body::Body;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use duplex_socketio::Value;
pub use duplex_socketio::server::{DisconnectReason, SocketId};

pub use app::SocketIoApp;

use crate::polling::{PollingService, ResponseBody};

/// Settings, named and defaulted as the reference server's options.
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// `pingInterval`. Default 25 s.
    pub ping_interval: Duration,
    /// `pingTimeout`. Default 20 s.
    pub ping_timeout: Duration,
    /// `maxHttpBufferSize` (announced as `maxPayload`): the largest POST
    /// body or WebSocket message. Default 1,000,000 bytes.
    pub max_http_buffer_size: usize,
    /// `connectTimeout`: a connection that joins no namespace within it is
    /// closed. Default 45 s.
    pub connect_timeout: Duration,
    /// `upgradeTimeout`. Default 10 s.
    pub upgrade_timeout: Duration,
    /// `transports`: which of polling and WebSocket are accepted. Default both.
    pub transports: Transports,
    /// `cors`: CORS headers and allowed origins. Default: no CORS headers,
    /// any origin (as the reference without the `cors` option).
    pub cors: Cors,
    /// `allowEIO3`: accept Engine.IO v3 / Socket.IO v4 clients. Default off.
    pub allow_eio3: bool,
    /// Most namespaces one connection may join. Default 64.
    pub max_namespaces_per_connection: usize,
    /// Most acks one socket may await at once. Default 1024.
    pub max_pending_acks: usize,
    /// Most binary attachments in one packet. Default 10 (the reference
    /// parser's `maxAttachments`).
    pub max_attachments: usize,
    /// Most Engine.IO sessions at once. Default 65,536.
    pub max_sessions: usize,
}

/// The transports a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        let eio = EngineIoConfig::default();
        Self {
            ping_interval: eio.ping_interval,
            ping_timeout: eio.ping_timeout,
            max_http_buffer_size: eio.max_http_buffer_size,
            connect_timeout: Duration::from_secs(45),
            upgrade_timeout: eio.upgrade_timeout,
            transports: Transports {
                polling: true,
                websocket: true,
            },
            cors: Cors::disabled(),
            allow_eio3: false,
            max_namespaces_per_connection: 64,
            max_pending_acks: 1024,
            max_attachments: 10,
            max_sessions: eio.max_sessions,
        }
    }
}

impl SocketIoConfig {
    /// The Engine.IO settings these make.
    pub fn engine_config(&self) -> EngineIoConfig {
        EngineIoConfig {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            upgrade_timeout: self.upgrade_timeout,
            max_http_buffer_size: self.max_http_buffer_size,
            polling: self.transports.polling,
            websocket: self.transports.websocket,
            allow_eio3: self.allow_eio3,
            max_sessions: self.max_sessions,
            cors: self.cors.clone(),
            ..EngineIoConfig::default()
        }
    }
}

/// What a socket was connected with.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The namespace.
    pub namespace: String,
    /// The CONNECT packet's payload (`{}` without one).
    pub auth: Value,
    /// The headers of the request that opened the connection.
    pub headers: HeaderMap,
    /// The query string of that request.
    pub query: String,
}

/// Why an emit failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The socket is disconnected.
    #[error("socket disconnected")]
    Closed,
    /// The session's outgoing queue is full (the client reads too slowly);
    /// nothing of the packet was queued.
    #[error("the session's send queue is full")]
    QueueFull,
    /// The event could not be encoded (an invalid namespace).
    #[error("cannot encode the packet")]
    Encode,
    /// Too many acks awaited on this socket.
    #[error("too many acknowledgements pending")]
    TooManyPendingAcks,
}

/// Why no ack arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The timeout passed first.
    #[error("acknowledgement timed out")]
    Timeout,
    /// The socket disconnected first.
    #[error("socket disconnected before acknowledging")]
    Disconnected,
    /// The event could not be sent.
    #[error("event not sent: {0}")]
    Send(SendError),
}

/// A refusal of a CONNECT by middleware: the client's `connect_error`
/// gets `message` (and `data`, if any).
#[derive(Debug, Clone)]
pub struct ConnectRefusal {
    /// The error message.
    pub message: String,
    /// Extra data for the client.
    pub data: Option<serde_json::Value>,
}

impl ConnectRefusal {
    /// A refusal with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }
}

pub(crate) type AckCallback = Box<dyn FnOnce(Result<Vec<Value>, AckError>) + Send>;
type ConnectHandler = Arc<dyn Fn(Socket) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) + Send + Sync>;
type EventHandler = Arc<dyn Fn(Socket, String, Vec<Value>, Option<AckSender>) + Send + Sync>;
type Middleware = Arc<dyn Fn(&Handshake) -> Result<(), ConnectRefusal> + Send + Sync>;

/// The handlers of a namespace.
#[derive(Default)]
pub struct NamespaceHandlers {
    middlewares: Vec<Middleware>,
    on_connect: Option<ConnectHandler>,
    on_disconnect: Option<DisconnectHandler>,
    events: HashMap<String, EventHandler>,
    on_any: Option<EventHandler>,
}

impl std::fmt::Debug for NamespaceHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut events: Vec<&String> = self.events.keys().collect();
        events.sort();
        f.debug_struct("NamespaceHandlers")
            .field("middlewares", &self.middlewares.len())
            .field("events", &events)
            .finish_non_exhaustive()
    }
}

impl NamespaceHandlers {
    /// Runs `check` on every CONNECT before it is granted; an `Err` refuses
    /// it with a CONNECT_ERROR. Called under the server's lock: it must
    /// only look at the handshake, not call into the server.
    pub fn use_middleware(
        mut self,
        check: impl Fn(&Handshake) -> Result<(), ConnectRefusal> + Send + Sync + 'static,
    ) -> Self {
        self.middlewares.push(Arc::new(check));
        self
    }

    /// Runs `handler` for each socket that joins the namespace, after the
    /// CONNECT was granted.
    pub fn on_connect(mut self, handler: impl Fn(Socket) + Send + Sync + 'static) -> Self {
        self.on_connect = Some(Arc::new(handler));
        self
    }

    /// Runs `handler` when a socket leaves, with the reason.
    pub fn on_disconnect(
        mut self,
        handler: impl Fn(Socket, DisconnectReason) + Send + Sync + 'static,
    ) -> Self {
        self.on_disconnect = Some(Arc::new(handler));
        self
    }

    /// Runs `handler` for each event named `event`: the socket, the
    /// arguments (binary attachments in place) and, if the client asked
    /// for one, the ack to answer with.
    pub fn on(
        mut self,
        event: &str,
        handler: impl Fn(Socket, Vec<Value>, Option<AckSender>) + Send + Sync + 'static,
    ) -> Self {
        self.events.insert(
            event.to_owned(),
            Arc::new(move |socket, _, args, ack| handler(socket, args, ack)),
        );
        self
    }

    /// As [`NamespaceHandlers::on`], with the arguments deserialized into
    /// `T` (the single argument, or all of them as a sequence); events
    /// whose arguments do not fit are dropped.
    pub fn on_typed<T: DeserializeOwned + 'static>(
        self,
        event: &str,
        handler: impl Fn(Socket, T, Option<AckSender>) + Send + Sync + 'static,
    ) -> Self {
        let name = event.to_owned();
        self.on(event, move |socket, args, ack| {
            match from_args::<T>(&args) {
                Ok(data) => handler(socket, data, ack),
                Err(e) => tracing::debug!(event = %name, "arguments do not fit: {e}"),
            }
        })
    }

    /// Runs `handler` for every event that has no handler of its own, with
    /// the event's name.
    pub fn on_any(
        mut self,
        handler: impl Fn(Socket, String, Vec<Value>, Option<AckSender>) + Send + Sync + 'static,
    ) -> Self {
        self.on_any = Some(Arc::new(handler));
        self
    }
}

type Matcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The namespaces a server accepts.
#[derive(Default)]
pub(crate) struct Registry {
    fixed: HashMap<String, Arc<NamespaceHandlers>>,
    patterns: Vec<(Matcher, Arc<NamespaceHandlers>)>,
}

impl Registry {
    fn find(&self, namespace: &str) -> Option<Arc<NamespaceHandlers>> {
        self.fixed.get(namespace).cloned().or_else(|| {
            self.patterns
                .iter()
                .find(|(matches, _)| matches(namespace))
                .map(|(_, h)| h.clone())
        })
    }
}

/// Builds a [`SocketIo`] server.
pub struct SocketIoBuilder {
    config: SocketIoConfig,
    registry: Registry,
    mount: String,
}

impl std::fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoBuilder")
            .field("config", &self.config)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

impl SocketIoBuilder {
    /// Mounts the server at `path` instead of `/socket.io`.
    pub fn mount(mut self, path: &str) -> Self {
        path.trim_end_matches('/').clone_into(&mut self.mount);
        self
    }

    /// Accepts namespace `name` with the handlers `build` sets up.
    pub fn namespace(
        mut self,
        name: &str,
        build: impl FnOnce(NamespaceHandlers) -> NamespaceHandlers,
    ) -> Self {
        self.registry.fixed.insert(
            name.to_owned(),
            Arc::new(build(NamespaceHandlers::default())),
        );
        self
    }

    /// Accepts every namespace for which `matches` is true (the reference's
    /// dynamic namespaces), each with its own sockets and rooms and the
    /// handlers `build` sets up.
    pub fn dynamic_namespace(
        mut self,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
        build: impl FnOnce(NamespaceHandlers) -> NamespaceHandlers,
    ) -> Self {
        self.registry.patterns.push((
            Box::new(matches),
            Arc::new(build(NamespaceHandlers::default())),
        ));
        self
    }

    /// The server.
    pub fn build(self) -> SocketIo {
        let engine = EngineIoServer::new(self.config.engine_config());
        let app = SocketIoApp::new(self.config, self.registry);
        let service = PollingService::new(engine, app, &self.mount);
        let weak = service.downgrade();
        service.with(|_, app, _, _| app.set_handle(weak));
        SocketIo { service }
    }
}

/// A Socket.IO server: a cheap, cloneable handle that is also the hyper
/// (and tower) service answering its requests.
#[derive(Clone, Debug)]
pub struct SocketIo {
    service: PollingService<EngineIoServer, SocketIoApp>,
}

impl SocketIo {
    /// A builder with `config`, mounted at `/socket.io`, with no namespace
    /// yet (add `/` with [`SocketIoBuilder::namespace`]).
    pub fn builder(config: SocketIoConfig) -> SocketIoBuilder {
        SocketIoBuilder {
            config,
            registry: Registry::default(),
            mount: DEFAULT_PATH.trim_end_matches('/').to_owned(),
        }
    }

    /// Answers one HTTP request (use from a router).
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        self.service.handle(req).await
    }

    /// The path the server is mounted at.
    pub fn mount(&self) -> &str {
        self.service.mount()
    }

    /// Emits to sockets of `namespace`: all of them, or narrowed with
    /// [`Operator::to`] and [`Operator::except`].
    pub fn of(&self, namespace: &str) -> Operator {
        Operator {
            io: self.clone(),
            namespace: Arc::from(namespace),
            target: Broadcast::all(),
        }
    }

    /// Engine.IO sessions carrying Socket.IO now.
    pub fn connection_count(&self) -> usize {
        self.service.with(|_, app, _, _| app.connection_count())
    }

    /// Engine.IO sessions in the endpoint (including ones closing).
    pub fn session_count(&self) -> usize {
        self.service.with(|eio, _, _, _| eio.session_count())
    }

    /// Parked requests and open WebSockets (see [`PollingService::in_flight`]).
    pub fn in_flight(&self) -> (usize, usize) {
        self.service.in_flight()
    }
}

/// One client's membership of one namespace, as handlers see it.
#[derive(Clone)]
pub struct Socket {
    io: SocketIo,
    session: SessionId,
    namespace: Arc<str>,
    id: SocketId,
    handshake: Arc<Handshake>,
    extensions: Arc<Mutex<http::Extensions>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// The socket's id (its namespace CONNECT answer's `sid`).
    pub fn id(&self) -> &SocketId {
        &self.id
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Engine.IO session id of the connection.
    pub fn session_id(&self) -> &str {
        self.session.as_str()
    }

    /// What the socket connected with (auth payload, headers, query).
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Per-socket state for the application, kept as long as the socket.
    pub fn extensions(&self) -> std::sync::MutexGuard<'_, http::Extensions> {
        self.extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The transport the connection uses now.
    pub fn transport(&self) -> Option<TransportName> {
        self.io
            .service
            .with(|eio, _, _, _| eio.transport(&self.session))
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.io
            .service
            .with(|_, app, _, _| app.is_connected(&self.session, &self.namespace, &self.id))
    }

    /// Emits `event` with `args` to this socket.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), SendError> {
        let packet = Packet::event_with(Str::from(self.namespace.to_string()), event, &args, None)
            .map_err(|_| SendError::Encode)?;
        self.io
            .service
            .with(|eio, app, now, _| app.send_packet(eio, &self.session, &packet, now))
    }

    /// Emits `event` with `data` serialized to JSON as its one argument.
    pub fn emit_json<T: Serialize>(&self, event: &str, data: &T) -> Result<(), SendError> {
        let value = serde_json::to_value(data).map_err(|_| SendError::Encode)?;
        self.emit(event, vec![Value::from(value)])
    }

    /// Emits `event` asking for an ack: `callback` gets the client's ack
    /// arguments, or [`AckError::Timeout`] after `timeout` (`None`: wait
    /// until the socket disconnects).
    pub fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
        callback: impl FnOnce(Result<Vec<Value>, AckError>) + Send + 'static,
    ) {
        let failed = self.io.service.with(|eio, app, now, _| {
            app.emit_with_ack(
                eio,
                &self.session,
                &self.namespace,
                event,
                &args,
                timeout.map(|t| now + t),
                Box::new(callback),
                now,
            )
            .err()
        });
        if let Some((error, callback)) = failed {
            callback(Err(AckError::Send(error)));
        }
    }

    /// As [`Socket::emit_with_ack`], awaiting the ack.
    pub async fn emit_with_ack_async(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Value>, AckError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.emit_with_ack(event, args, timeout, move |result| {
            let _ = tx.send(result);
        });
        rx.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Puts the socket in `room`.
    pub fn join(&self, room: &str) {
        self.join_all(&[room]);
    }

    /// Puts the socket in each of `rooms`.
    pub fn join_all(&self, rooms: &[&str]) {
        let rooms: Vec<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
        self.io
            .service
            .with(|_, app, _, _| app.join(&self.namespace, &self.id, &rooms));
    }

    /// Takes the socket out of `room`.
    pub fn leave(&self, room: &str) {
        self.io
            .service
            .with(|_, app, _, _| app.leave(&self.namespace, &self.id, room));
    }

    /// The rooms the socket is in (including the one named by its id).
    pub fn rooms(&self) -> Vec<String> {
        self.io
            .service
            .with(|_, app, _, _| app.rooms_of(&self.namespace, &self.id))
    }

    /// Emits to the members of `room`, except this socket.
    pub fn to(&self, room: &str) -> Operator {
        self.broadcast().to(room)
    }

    /// Emits to every socket of the namespace except this one.
    pub fn broadcast(&self) -> Operator {
        Operator {
            io: self.io.clone(),
            namespace: self.namespace.clone(),
            target: Broadcast::all().except_socket(self.id.clone()),
        }
    }

    /// Makes the socket leave the namespace (the client gets a DISCONNECT);
    /// the connection and its other namespaces stay.
    pub fn disconnect(&self) {
        self.io.service.with(|eio, app, now, deferred| {
            app.disconnect_socket(eio, &self.session, &self.namespace, now, deferred);
        });
    }

    /// Closes the whole connection (every namespace of it).
    pub fn close_connection(&self) {
        self.io
            .service
            .with(|eio, app, now, _| app.close_connection(eio, &self.session, now));
    }
}

/// The answer to an event that asked for an ack.
#[derive(Debug)]
pub struct AckSender {
    socket: Socket,
    id: u64,
}

impl AckSender {
    /// Acknowledges with `args` (binary attachments allowed).
    pub fn send(self, args: Vec<Value>) -> Result<(), SendError> {
        let packet = Packet::ack_with(Str::from(self.socket.namespace.to_string()), &args, self.id)
            .map_err(|_| SendError::Encode)?;
        let socket = &self.socket;
        socket
            .io
            .service
            .with(|eio, app, now, _| app.send_packet(eio, &socket.session, &packet, now))
    }

    /// Acknowledges with `data` serialized to JSON as the one argument.
    pub fn send_json<T: Serialize>(self, data: &T) -> Result<(), SendError> {
        let value = serde_json::to_value(data).map_err(|_| SendError::Encode)?;
        self.send(vec![Value::from(value)])
    }
}

/// A selection of sockets of one namespace to emit to.
#[derive(Clone, Debug)]
pub struct Operator {
    io: SocketIo,
    namespace: Arc<str>,
    target: Broadcast<SocketId>,
}

impl Operator {
    /// Narrows to the members of `room` (several calls: any of the rooms).
    pub fn to(mut self, room: &str) -> Self {
        self.target = self.target.and_to(room);
        self
    }

    /// Leaves out the members of `room`.
    pub fn except(mut self, room: &str) -> Self {
        self.target = self.target.except_room(room);
        self
    }

    /// Emits `event` with `args` to every selected socket; returns how many
    /// it was sent to.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<usize, SendError> {
        let packet = Packet::event_with(Str::from(self.namespace.to_string()), event, &args, None)
            .map_err(|_| SendError::Encode)?;
        Ok(self.io.service.with(|eio, app, now, _| {
            app.broadcast(eio, &self.namespace, &self.target, &packet, now)
        }))
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        self.io.service.with(|_, app, _, _| {
            let ids = app.recipients(&self.namespace, &self.target);
            app.sockets(&self.namespace, &ids)
        })
    }

    /// Makes every selected socket leave the namespace.
    pub fn disconnect_sockets(&self) {
        for socket in self.sockets() {
            socket.disconnect();
        }
    }
}

/// Deserializes event arguments: the single argument as `T`, or all of them
/// as a sequence. Binary values become arrays of byte numbers
/// ([`Value::from_args`]).
pub fn from_args<T: DeserializeOwned>(args: &[Value]) -> Result<T, serde_json::Error> {
    Value::from_args(args)
}

/// A [`Value`] as plain JSON; binary values become arrays of byte numbers
/// ([`Value::to_json`]).
pub fn to_json(value: &Value) -> serde_json::Value {
    value.to_json()
}

impl<B> hyper::service::Service<http::Request<B>> for SocketIo
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: http::Request<B>) -> Self::Future {
        hyper::service::Service::call(&self.service, req)
    }
}

impl<B> tower::Service<http::Request<B>> for SocketIo
where
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
        hyper::service::Service::call(&self.service, req)
    }
}
