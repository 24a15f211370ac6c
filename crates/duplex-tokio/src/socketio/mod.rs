//! A Socket.IO v5 server (Engine.IO v4 underneath; v3/Socket.IO v4 clients
//! with `allow_eio3`) on hyper: polling and WebSocket on one path, the
//! upgrade between them, namespaces, rooms, acks both ways, binary
//! attachments.
//!
//! Handlers are functions, sync or async, whose arguments are extractors
//! ([`Socket`], [`Data`], [`TryData`], [`AckSender`], [`State`],
//! [`Extension`], [`SocketIo`]...). Each socket's handlers run one at a
//! time in the order its events came, in a task of their own and outside
//! the server's lock: a slow handler holds back only its own socket, and
//! sockets progress on every worker of a multi-thread runtime.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use duplex_tokio::socketio::{
//!     AckSender, ConnectRefusal, Data, Handshake, Socket, SocketIo, SocketIoConfig, State,
//!     TryData,
//! };
//!
//! #[derive(serde::Deserialize)]
//! struct Join {
//!     room: String,
//! }
//!
//! # async fn demo() -> std::io::Result<()> {
//! let io = SocketIo::builder(SocketIoConfig::default())
//!     .with_state(Arc::new(AtomicUsize::new(0)))
//!     .namespace("/", |ns| {
//!         ns.use_middleware(|handshake: Handshake| match handshake.auth.get("token") {
//!             Some(_) => Ok(()),
//!             None => Err(ConnectRefusal::new("no token")),
//!         })
//!         .on_connect(|socket: Socket, State(count): State<Arc<AtomicUsize>>| {
//!             count.fetch_add(1, Ordering::Relaxed);
//!             let _ = socket.emit("welcome", socket.id().as_str());
//!         })
//!         .on("join", |socket: Socket, data: TryData<Join>, ack: AckSender| {
//!             let answer = match data.0 {
//!                 Ok(Join { room }) => {
//!                     socket.join(&room);
//!                     let _ = socket.to(&room).emit("joined", socket.id().as_str());
//!                     "ok".to_owned()
//!                 }
//!                 Err(e) => e.to_string(),
//!             };
//!             let _ = ack.send(&answer);
//!         })
//!         .on("slow", async |socket: Socket, Data(ms): Data<u64>| {
//!             tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
//!             let _ = socket.emit("done", &ms);
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

mod app;
pub mod client;
#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod handler;
mod mailbox;
mod socket;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use duplex_polling::EngineIoServer;
use duplex_socketio::Broadcast;
use duplex_socketio::engineio_binding::DEFAULT_PATH;
use http::HeaderMap;
use hyper::body::Body;
use serde::de::DeserializeOwned;

pub use duplex_socketio::Value;
pub use duplex_socketio::recovery::RecoveryConfig;
pub use duplex_socketio::server::{DisconnectReason, SocketId};

pub use app::SocketIoApp;
#[cfg(feature = "cluster")]
pub use cluster::{
    CLUSTER_WRITE_WAIT, ClusterConfig, ClusterOut, ClusterPort, RemoteSocket, RestoreTicket,
    ServerSideReply, SocketData,
};
pub use config::{SocketIoConfig, Transports};
pub use handler::{
    Args, AsyncMarker, Data, Event, Extension, FromParts, Handler, HandlerOutput, Parts,
    SocketExtensions, State, SyncMarker, TryData,
};
pub use mailbox::DEFAULT_MAX_QUEUED_EVENTS;
pub use socket::{AckFuture, AckSender, Operator, Socket};

use handler::{BoxedHandler, BoxedMiddleware};

use crate::polling::{PollingService, ResponseBody};

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

/// Why an emit failed ([`crate::Error::Closed`], [`crate::Error::QueueFull`],
/// [`crate::Error::Encode`], [`crate::Error::TooManyPendingAcks`]): the
/// adapter's one [`crate::Error`], under the name it had when it was a type
/// of its own.
pub type SendError = crate::Error;

/// Why no ack arrived ([`crate::Error::Timeout`],
/// [`crate::Error::Disconnected`], or the [`SendError`] that kept the event
/// from being sent): the adapter's one [`crate::Error`].
pub type AckError = crate::Error;

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

    /// Adds `data` for the client's `connect_error` (`err.data`).
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl std::fmt::Display for ConnectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) type AckCallback = Box<dyn FnOnce(Result<Vec<Value>, AckError>) + Send>;

/// The handlers of a namespace.
#[derive(Default)]
pub struct NamespaceHandlers {
    middlewares: Vec<BoxedMiddleware>,
    on_connect: Option<BoxedHandler>,
    on_disconnect: Option<BoxedHandler>,
    events: crate::http::FastMap<String, BoxedHandler>,
    on_any: Option<BoxedHandler>,
    /// Listeners of other servers' `server_side_emit`, by event.
    #[cfg(feature = "cluster")]
    server_side: HashMap<String, cluster::ServerSideHandler>,
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
    /// Runs `middleware` on every CONNECT before it is granted, in the
    /// order they were added; an `Err` refuses it with a CONNECT_ERROR
    /// carrying the refusal. Sync or async, with any extractor but
    /// [`Socket`] (the socket does not exist yet): [`Data`] is the auth
    /// payload, and what it stores in [`SocketExtensions`] is there for
    /// the handlers. Runs outside the server's lock, as its own task.
    pub fn use_middleware<M, H>(mut self, middleware: H) -> Self
    where
        H: Handler<M, Output = Result<(), ConnectRefusal>>,
    {
        self.middlewares.push(handler::boxed_middleware(middleware));
        self
    }

    /// Runs `handler` for each socket that joins the namespace, after the
    /// CONNECT was granted and before any of its events ([`Data`] is the
    /// auth payload).
    pub fn on_connect<M, H>(mut self, handler: H) -> Self
    where
        H: Handler<M>,
        H::Output: HandlerOutput,
    {
        self.on_connect = Some(handler::boxed("connect".to_owned(), handler));
        self
    }

    /// Runs `handler` when a socket leaves, after its last event's handler;
    /// it may take the [`DisconnectReason`].
    pub fn on_disconnect<M, H>(mut self, handler: H) -> Self
    where
        H: Handler<M>,
        H::Output: HandlerOutput,
    {
        self.on_disconnect = Some(handler::boxed("disconnect".to_owned(), handler));
        self
    }

    /// Runs `handler` for each event named `event`. The handler is any
    /// function, sync or async, whose arguments are extractors
    /// ([`Socket`], [`Data`], [`TryData`], [`Args`], [`AckSender`],
    /// [`State`], [`Extension`], [`SocketIo`], ...). A socket's handlers
    /// run one at a time, in the order its events came; other sockets'
    /// run meanwhile, on any worker of the runtime.
    pub fn on<M, H>(mut self, event: &str, handler: H) -> Self
    where
        H: Handler<M>,
        H::Output: HandlerOutput,
    {
        self.events
            .insert(event.to_owned(), handler::boxed(event.to_owned(), handler));
        self
    }

    /// Runs `handler` for every event that has no handler of its own
    /// ([`Event`] is the event's name).
    pub fn on_any<M, H>(mut self, handler: H) -> Self
    where
        H: Handler<M>,
        H::Output: HandlerOutput,
    {
        self.on_any = Some(handler::boxed("any".to_owned(), handler));
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
    state: http::Extensions,
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
    /// Gives the handlers `state`, which they take with [`State<T>`]
    /// (one value per type; call again for other types).
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
        self
    }

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
        let state = Arc::new(self.state);
        let app = SocketIoApp::new(self.config, self.registry, state.clone());
        let service = PollingService::new(engine, app, &self.mount);
        let weak = service.downgrade();
        service.with(|_, app, _, _| app.set_handle(weak));
        SocketIo { service, state }
    }
}

/// A Socket.IO server: a cheap, cloneable handle that is also the hyper
/// (and tower) service answering its requests.
#[derive(Clone)]
pub struct SocketIo {
    service: PollingService<EngineIoServer, SocketIoApp>,
    /// What [`SocketIoBuilder::with_state`] gave, read by [`State`].
    state: Arc<http::Extensions>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SocketIo {
    /// A builder with `config`, mounted at `/socket.io`, with no namespace
    /// yet (add `/` with [`SocketIoBuilder::namespace`]).
    pub fn builder(config: SocketIoConfig) -> SocketIoBuilder {
        SocketIoBuilder {
            config,
            registry: Registry::default(),
            mount: DEFAULT_PATH.trim_end_matches('/').to_owned(),
            state: http::Extensions::new(),
        }
    }

    /// The state of type `T` given to [`SocketIoBuilder::with_state`].
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.state.get::<T>().cloned()
    }

    /// Emits to the members of `room` in `namespace`: shorthand for
    /// `io.of(namespace).to(room)`.
    pub fn to(&self, namespace: &str, room: &str) -> Operator {
        self.of(namespace).to(room)
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
            namespace: duplex_socketio::Str::copy_from_str(namespace),
            target: Broadcast::all(),
            local: false,
            volatile: false,
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

    /// Volatile emits ([`Operator::volatile`], [`Socket::volatile`]) dropped
    /// so far because their client's transport was not writable (no GET
    /// parked, or a WebSocket still writing), as Node drops them.
    pub fn volatile_dropped(&self) -> u64 {
        self.service.with(|_, app, _, _| app.volatile_dropped())
    }

    /// Shuts the Socket.IO server down gracefully, as Node's `io.close()`:
    /// every socket of every namespace leaves with
    /// [`DisconnectReason::ServerShuttingDown`] and its disconnect handler
    /// runs; with connection state recovery on its session is kept (a
    /// recoverable reason), so a client that comes back to this server
    /// (or, restarted, to another one sharing its sessions) is restored.
    /// Then every Engine.IO session is closed as Node's `engine.close()`:
    /// nothing more is written, a parked poll gets the close packet, a
    /// WebSocket is closed (1000). Each client sees its transport close
    /// and reconnects.
    ///
    /// Returns how many connections were open, once the disconnect
    /// handlers of the closed sockets have run (a handler that never ends
    /// keeps it waiting: bound it with a timeout) and, in a cluster, once
    /// its transport has written the sessions the sockets left behind
    /// (streams mode with recovery; at most `CLUSTER_WRITE_WAIT`, 5 s, for
    /// those). The server still answers requests afterwards, reconnecting
    /// clients included: stop the listener to refuse them. In a streams
    /// cluster it has left the cluster and no longer waits for the other
    /// servers: `fetch_sockets` and `server_side_emit_with_ack` answer at
    /// once with this server's part, emits with acks wait for this
    /// server's clients only.
    ///
    /// ```no_run
    /// # async fn demo(
    /// #     io: duplex_tokio::socketio::SocketIo,
    /// #     signal: impl std::future::Future<Output = ()>,
    /// # ) {
    /// use std::time::Duration;
    /// // On SIGTERM or Ctrl-C: close every Socket.IO client first, then
    /// // stop accepting and let the HTTP connections finish.
    /// signal.await;
    /// match tokio::time::timeout(Duration::from_secs(5), io.shutdown()).await {
    ///     Ok(closed) => println!("{closed} Socket.IO connections closed"),
    ///     Err(_) => println!("disconnect handlers still running"),
    /// }
    /// # }
    /// ```
    pub async fn shutdown(&self) -> usize {
        let (open, done) = self
            .service
            .with(|eio, app, now, deferred| app.shutdown(eio, now, deferred));
        // Asked right after the sockets left: behind every session they
        // handed the transport.
        #[cfg(feature = "cluster")]
        let written = self.service.with(|_, app, _, _| app.cluster_written());
        for handler in done {
            // An error: the mailbox is gone, so is the handler.
            let _ = handler.await;
        }
        #[cfg(feature = "cluster")]
        if let Some(written) = written {
            // An error: the transport keeps no sessions, or is gone.
            let _ = tokio::time::timeout(cluster::CLUSTER_WRITE_WAIT, written).await;
        }
        open
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

crate::http::service_via_handle!(
    tower [] SocketIo => ResponseBody,
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
);
