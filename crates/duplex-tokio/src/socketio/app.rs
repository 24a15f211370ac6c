//! The driver of duplex-socketio's sans-IO [`Server`] machine, as the
//! [`Application`] of the Engine.IO endpoint: it feeds the machine each
//! session's messages and the time, writes what the machine wants written
//! on the sessions, and turns the machine's plain events into calls of the
//! application's handlers: each socket's calls go to its [`Mailbox`], run
//! in order by a task of their own, outside the lock; connect middleware
//! runs as a task too, and comes back to grant or refuse the CONNECT.
//!
//! Every protocol decision (namespace answers, what ends a connection,
//! acks and their timeouts, broadcast recipients, disconnect reasons) is
//! the machine's. What stays here is the application's part: which
//! namespaces exist and their middleware, the handlers, and what the
//! handles ([`Socket`], [`AckSender`]) carry beyond a socket id: the
//! handshake's headers and query, and the per-socket extensions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use duplex_engineio::{ProtocolVersion as EngineIoVersion, WsMessage};
use duplex_polling::{EngineIoServer, Event, Message, SessionId};
use duplex_socketio::engineio_binding::{disconnect_reason, packet_messages, socketio_version};
use duplex_socketio::server::{Server, ServerConfig, ServerEvent, Transmit, selection};
use duplex_socketio::{Broadcast, EncodedPacket, Packet};

use super::handler::{BoxFuture, BoxedHandler, Parts, SocketExtensions};
use super::mailbox::Mailbox;
use super::{
    AckCallback, AckError, AckSender, ConnectRefusal, DisconnectReason, Handshake,
    NamespaceHandlers, Registry, SendError, Socket, SocketId, SocketIo, SocketIoConfig, Value,
};
use crate::http::FastMap;
use crate::polling::{Application, Deferred, WeakPollingService};

#[cfg(feature = "cluster")]
mod cluster;

/// What a socket's handles carry beyond its id.
struct SocketMeta {
    handshake: Arc<Handshake>,
    extensions: Arc<Mutex<http::Extensions>>,
    /// The socket's handler calls, in order.
    mailbox: Arc<Mailbox>,
}

/// The flags of a broadcast.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EmitFlags {
    /// Node's `local`: nothing published to the other servers.
    pub(crate) local: bool,
    /// Node's `volatile`: may be lost, never stored for recovery.
    pub(crate) volatile: bool,
}

/// What writing the machine's transmits gave.
#[derive(Default)]
struct Flushed {
    /// Packets the endpoint queued.
    sent: usize,
    /// The first refusal of the endpoint, if any.
    error: Option<SendError>,
}

/// The Socket.IO layer, as the [`Application`] of the Engine.IO endpoint.
pub struct SocketIoApp {
    server: Server<SessionId, AckCallback>,
    registry: Registry,
    /// The handlers of each namespace in use.
    handlers: HashMap<String, Arc<NamespaceHandlers>>,
    /// The headers and query each connection was opened with, for its
    /// sockets' handshakes: first a handshake made from the opening
    /// request, then the latest socket's own, so that a session keeps its
    /// headers once rather than once more beside every socket's copy.
    infos: FastMap<SessionId, Arc<Handshake>>,
    sockets: FastMap<SocketId, SocketMeta>,
    /// With connection state recovery: the mailboxes of sockets that left
    /// while their handlers (the disconnect handler at least) still run,
    /// so that a socket restored under the same id queues its connect
    /// handler behind them, as Node emits `disconnect` before the new
    /// `connection`. Only busy ones are kept: at most one per running task.
    departed: HashMap<SocketId, Arc<Mailbox>>,
    handle: Option<WeakPollingService<EngineIoServer, SocketIoApp>>,
    /// The application state, for the handles this gives out.
    state: Arc<http::Extensions>,
    /// Most calls waiting in one socket's mailbox.
    max_queued_events: usize,
    /// The runtime handler tasks are spawned on: the one inputs came from
    /// (a handle's call from outside any runtime still has one).
    runtime: Option<tokio::runtime::Handle>,
    /// Volatile packets dropped because their transport was not writable.
    volatile_dropped: u64,
    /// Where the cluster's messages go, when the server is in one.
    #[cfg(feature = "cluster")]
    cluster: Option<ClusterLink>,
}

/// The server's side of its cluster transport: a bounded queue it never waits on.
#[cfg(feature = "cluster")]
struct ClusterLink {
    tx: tokio::sync::mpsc::Sender<super::cluster::ClusterOut>,
    /// The sessions to keep, never refused (see `ClusterPort::recv`).
    persists: tokio::sync::mpsc::UnboundedSender<super::cluster::ClusterOut>,
    /// Counts what the full queue refused.
    on_dropped: Arc<dyn Fn() + Send + Sync>,
    /// Requests of this server awaiting the other servers' answers.
    pending: HashMap<String, PendingReply>,
    /// Broadcasts with acks of this server, collecting answers.
    ack_broadcasts: HashMap<String, AckBroadcast>,
    /// The service, for the restore tickets handed to the transport.
    io: WeakPollingService<EngineIoServer, SocketIoApp>,
}

/// A broadcast with acks of this server.
#[cfg(feature = "cluster")]
struct AckBroadcast {
    /// Other servers whose client count is still awaited.
    remaining_servers: usize,
    /// Acks expected: the local clients and every counted remote one.
    expected: u64,
    responses: Vec<duplex_socketio::Value>,
    reply: tokio::sync::oneshot::Sender<Vec<duplex_socketio::Value>>,
}

/// Where the outcome of a cluster request goes.
#[cfg(feature = "cluster")]
type PendingReply = tokio::sync::oneshot::Sender<
    Result<Vec<duplex_socketio::cluster::Answer>, crate::ClusterFailure>,
>;

impl std::fmt::Debug for SocketIoApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoApp")
            .field("server", &self.server)
            .field("sockets", &self.sockets.len())
            .finish_non_exhaustive()
    }
}

/// Sends one encoded packet on a session, as the Engine.IO messages the
/// binding makes of it, all or none.
fn send_encoded(
    eio: &mut EngineIoServer,
    session: &SessionId,
    packet: EncodedPacket,
    now: Instant,
) -> Result<(), SendError> {
    let messages = packet_messages(packet)
        .into_iter()
        .map(|m| match m {
            WsMessage::Text(text) => Message::Text(text),
            WsMessage::Binary(data) => Message::Binary(data),
        })
        .collect();
    eio.send_all(session, messages, now).map_err(|e| match e {
        duplex_polling::Error::QueueFull => SendError::QueueFull,
        _ => SendError::Closed,
    })
}

/// A machine refusal as the handles report it.
fn send_error(error: &duplex_socketio::Error) -> SendError {
    match error {
        duplex_socketio::Error::InvalidState => SendError::Closed,
        duplex_socketio::Error::TooManyPendingAcks { .. } => SendError::TooManyPendingAcks,
        _ => SendError::Encode,
    }
}

impl SocketIoApp {
    pub(crate) fn new(
        config: SocketIoConfig,
        registry: Registry,
        state: Arc<http::Extensions>,
    ) -> Self {
        let max_queued_events = config.max_queued_events;
        let server = Server::new(ServerConfig {
            connect_timeout: Some(config.connect_timeout),
            max_namespaces: config.max_namespaces_per_connection,
            max_pending_acks: config.max_pending_acks,
            max_attachments: config.max_attachments,
            recovery: config.connection_state_recovery.clone(),
            ..ServerConfig::default()
        });
        Self {
            server,
            handlers: registry.fixed.clone(),
            registry,
            infos: FastMap::default(),
            sockets: FastMap::default(),
            departed: HashMap::new(),
            handle: None,
            state,
            max_queued_events,
            runtime: tokio::runtime::Handle::try_current().ok(),
            volatile_dropped: 0,
            #[cfg(feature = "cluster")]
            cluster: None,
        }
    }

    pub(crate) fn set_handle(&mut self, handle: WeakPollingService<EngineIoServer, SocketIoApp>) {
        self.handle = Some(handle);
    }

    fn io(&self) -> Option<SocketIo> {
        self.handle
            .as_ref()
            .and_then(WeakPollingService::upgrade)
            .map(|service| SocketIo {
                service,
                state: self.state.clone(),
            })
    }

    /// Number of Engine.IO sessions carrying Socket.IO.
    pub(crate) fn connection_count(&self) -> usize {
        self.server.connection_count()
    }

    fn socket_handle(&self, session: &SessionId, namespace: &str, id: &SocketId) -> Option<Socket> {
        let meta = self.sockets.get(id)?;
        Some(Socket {
            io: self.io()?,
            session: session.clone(),
            namespace: duplex_socketio::Str::copy_from_str(namespace),
            id: id.clone(),
            handshake: meta.handshake.clone(),
            extensions: SocketExtensions(meta.extensions.clone()),
        })
    }

    /// The runtime to spawn handler tasks on.
    fn runtime(&mut self) -> Option<tokio::runtime::Handle> {
        if let Ok(current) = tokio::runtime::Handle::try_current() {
            self.runtime.get_or_insert_with(|| current.clone());
            return Some(current);
        }
        self.runtime.clone()
    }

    /// Queues a call of `handler` with `parts` on the socket's mailbox
    /// (`force`: past its limit too). False if the mailbox is full.
    fn dispatch(
        &mut self,
        socket: &SocketId,
        handler: BoxedHandler,
        parts: Parts,
        force: bool,
    ) -> bool {
        let Some(mailbox) = self.sockets.get(socket).map(|m| m.mailbox.clone()) else {
            return true;
        };
        let Some(runtime) = self.runtime() else {
            tracing::error!("no tokio runtime to run the Socket.IO handlers on");
            return true;
        };
        let job: BoxFuture<()> = Box::pin(async move {
            // The extraction (and a sync handler) runs here, in the
            // socket's task, not under the server's lock.
            match handler(parts) {
                Ok(future) => future.await,
                Err(e) => log_rejection(&e),
            }
        });
        mailbox.push(job, force, &runtime).is_ok()
    }

    /// What handlers of a socket are given.
    fn parts(&self, socket: &Socket) -> Parts {
        Parts {
            io: socket.io.clone(),
            socket: Some(socket.clone()),
            handshake: socket.handshake.clone(),
            extensions: socket.extensions.clone(),
            event: None,
            args: Vec::new(),
            ack: None,
            reason: None,
        }
    }

    // ---- moving bytes and events -------------------------------------------

    /// Writes what the machine wants written.
    fn write_transmits(&mut self, eio: &mut EngineIoServer, now: Instant) -> Flushed {
        let mut flushed = Flushed::default();
        #[cfg(feature = "cluster")]
        self.flush_cluster();
        while let Some(transmit) = self.server.poll_transmit() {
            let (session, packet) = match transmit {
                Transmit::Packet { session, packet } => (session, packet),
                // The machine's rule, with the endpoint's `writable`.
                Transmit::Volatile { session, packet } if eio.writable(&session) => {
                    (session, packet)
                }
                Transmit::Volatile { .. } => {
                    self.volatile_dropped += 1;
                    continue;
                }
                Transmit::Close { session } => {
                    let _ = eio.close(&session, now);
                    continue;
                }
                Transmit::Probe { session } => {
                    // Gone already: its `Closed` event tells the machine.
                    let _ = eio.probe(&session, now);
                    continue;
                }
            };
            match send_encoded(eio, &session, packet, now) {
                Ok(()) => flushed.sent += 1,
                Err(e) => {
                    flushed.error.get_or_insert(e);
                }
            }
        }
        flushed
    }

    /// Writes, and hands the machine's events to the handlers, until the
    /// machine has nothing more.
    fn run(&mut self, eio: &mut EngineIoServer, now: Instant, deferred: &mut Deferred) {
        loop {
            self.write_transmits(eio, now);
            #[cfg(feature = "cluster")]
            if let Some(event) = self.server.poll_cluster_event() {
                self.on_cluster_event(event, now, deferred);
                continue;
            }
            let Some(event) = self.server.poll_event() else {
                return;
            };
            self.on_server_event(event, deferred);
        }
    }

    fn on_server_event(
        &mut self,
        event: ServerEvent<SessionId, AckCallback>,
        deferred: &mut Deferred,
    ) {
        match event {
            ServerEvent::ConnectRequest {
                session,
                namespace,
                auth,
                implicit,
            } => self.on_connect_request(session, namespace, auth, implicit),
            ServerEvent::Event {
                session,
                namespace,
                socket,
                name,
                args,
                ack_id,
            } => {
                let Some(handlers) = self.handlers.get(&namespace) else {
                    return;
                };
                let handler = handlers
                    .events
                    .get(&name)
                    .cloned()
                    .or_else(|| handlers.on_any.clone());
                let Some(handler) = handler else {
                    return;
                };
                let Some(handle) = self.socket_handle(&session, &namespace, &socket) else {
                    return;
                };
                let mut parts = self.parts(&handle);
                parts.event = Some(name);
                parts.args = args;
                parts.ack = ack_id.map(|id| AckSender {
                    target: Some((handle, id)),
                });
                if !self.dispatch(&socket, handler, parts, false) {
                    // The client sends faster than its handlers finish:
                    // it leaves the namespace rather than grow the queue.
                    tracing::warn!(
                        socket = socket.as_str(),
                        namespace,
                        "too many events waiting for their handlers; disconnecting the socket"
                    );
                    self.server.disconnect(&session, &namespace);
                }
            }
            ServerEvent::Ack { token, result } => {
                let result = result.map_err(AckError::from);
                deferred.push(move || token(result));
            }
            ServerEvent::Disconnect {
                session,
                namespace,
                socket,
                reason,
            } => {
                let handle = self.socket_handle(&session, &namespace, &socket);
                let handler = self
                    .handlers
                    .get(&namespace)
                    .and_then(|h| h.on_disconnect.clone());
                if let (Some(handler), Some(handle)) = (handler, handle) {
                    let mut parts = self.parts(&handle);
                    parts.reason = Some(reason);
                    self.dispatch(&socket, handler, parts, true);
                }
                if let Some(meta) = self.sockets.remove(&socket) {
                    if self.recovery_on() && reason.keeps_session() {
                        self.departed.retain(|_, mailbox| mailbox.is_busy());
                        if meta.mailbox.is_busy() {
                            self.departed.insert(socket, meta.mailbox);
                        }
                    }
                }
            }
        }
    }

    /// The application's part of a CONNECT: does the namespace exist, does
    /// its middleware let the socket in. Middleware runs as a task, which
    /// comes back with [`SocketIoApp::finish_connect`].
    fn on_connect_request(
        &mut self,
        session: SessionId,
        namespace: String,
        auth: duplex_socketio::Value,
        implicit: bool,
    ) {
        let Some(handlers) = self.registry.find(&namespace) else {
            let _ = self.server.reject_unknown(&session, &namespace);
            return;
        };
        let Some(info) = self.infos.get_mut(&session) else {
            return;
        };
        // The opening request's headers move into the first socket's
        // handshake (nobody else holds that one); later sockets copy them.
        let (headers, query) = match Arc::get_mut(info) {
            Some(opened) if opened.namespace.is_empty() => (
                std::mem::take(&mut opened.headers),
                std::mem::take(&mut opened.query),
            ),
            _ => (info.headers.clone(), info.query.clone()),
        };
        let handshake = Arc::new(Handshake {
            namespace: namespace.clone(),
            auth,
            headers,
            query,
        });
        *info = handshake.clone();
        let extensions = Arc::new(Mutex::new(http::Extensions::new()));
        // v4's default namespace is granted at open, before any middleware;
        // a restored session may skip them (`skipMiddlewares`, as Node).
        if implicit
            || handlers.middlewares.is_empty()
            || self.server.skips_middlewares(&session, &namespace)
        {
            return self.finish_connect(&session, handshake, extensions, handlers, Ok(()));
        }
        let (Some(io), Some(runtime)) = (self.io(), self.runtime()) else {
            return;
        };
        let middlewares = handlers.middlewares.clone();
        runtime.spawn(async move {
            let mut verdict = Ok(());
            for middleware in middlewares {
                let parts = Parts {
                    io: io.clone(),
                    socket: None,
                    handshake: handshake.clone(),
                    extensions: SocketExtensions(extensions.clone()),
                    event: None,
                    args: vec![handshake.auth.clone()],
                    ack: None,
                    reason: None,
                };
                verdict = match middleware(parts) {
                    Ok(future) => future.await,
                    // What the middleware needs is not there (a payload
                    // that does not fit its Data): the CONNECT is refused.
                    Err(e) => Err(ConnectRefusal::new(e.to_string())),
                };
                if verdict.is_err() {
                    break;
                }
            }
            io.service.with(|eio, app, now, deferred| {
                app.finish_connect(&session, handshake, extensions, handlers, verdict);
                app.run(eio, now, deferred);
            });
        });
    }

    /// Grants or refuses a CONNECT whose middleware ran; a granted socket
    /// gets its mailbox, and its connect handler is the first call in it.
    fn finish_connect(
        &mut self,
        session: &SessionId,
        handshake: Arc<Handshake>,
        extensions: Arc<Mutex<http::Extensions>>,
        handlers: Arc<NamespaceHandlers>,
        verdict: Result<(), ConnectRefusal>,
    ) {
        let namespace = handshake.namespace.clone();
        if let Err(refusal) = verdict {
            let _ =
                self.server
                    .reject(session, &namespace, &refusal.message, refusal.data.as_ref());
            return;
        }
        // The connection may have closed while the middleware ran.
        let Ok(id) = self.server.accept(session, &namespace) else {
            return;
        };
        self.handlers.entry(namespace.clone()).or_insert(handlers);
        // A restored socket's calls queue behind its old ones still running.
        let mailbox = self
            .departed
            .remove(&id)
            .filter(|_| self.server.recovered(&namespace, &id))
            .unwrap_or_else(|| Mailbox::new(self.max_queued_events));
        self.sockets.insert(
            id.clone(),
            SocketMeta {
                handshake,
                extensions,
                mailbox,
            },
        );
        let handler = self
            .handlers
            .get(&namespace)
            .and_then(|h| h.on_connect.clone());
        if let (Some(handler), Some(socket)) =
            (handler, self.socket_handle(session, &namespace, &id))
        {
            let mut parts = self.parts(&socket);
            parts.args = vec![socket.handshake.auth.clone()];
            self.dispatch(&id, handler, parts, true);
        }
    }

    // ---- commands from handles ---------------------------------------------

    /// Sends `packet` (an event or ack) to one socket.
    pub(crate) fn send_packet(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        packet: &Packet,
        now: Instant,
    ) -> Result<(), SendError> {
        self.server
            .send(session, packet)
            .map_err(|e| send_error(&e))?;
        match self.write_transmits(eio, now).error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends an event that wants an ack; `callback` gets the ack, or an error
    /// at `deadline` or on disconnection.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_with_ack(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        namespace: &str,
        event: &str,
        args: &[duplex_socketio::Value],
        deadline: Option<Instant>,
        callback: AckCallback,
        now: Instant,
    ) -> Result<(), (SendError, AckCallback)> {
        let id = self
            .server
            .emit_with_ack(session, namespace, event, args, deadline, callback)
            .map_err(|(e, callback)| (send_error(&e), callback))?;
        if let Some(error) = self.write_transmits(eio, now).error {
            let callback = self.server.cancel_ack(session, namespace, id);
            return Err((error, callback.unwrap_or_else(|| Box::new(|_| {}))));
        }
        Ok(())
    }

    /// Sends `packet` (an event) to every recipient of `target` in
    /// `namespace`; returns how many the endpoint took.
    pub(crate) fn broadcast(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        flags: EmitFlags,
        packet: &Packet,
        now: Instant,
    ) -> usize {
        let mut opts = selection(target, flags.local);
        if flags.volatile {
            // Never stored nor offset by recovery (Node's `volatile`).
            let mut all = match opts.flags.take() {
                Some(Value::Object(fields)) => fields,
                _ => Vec::new(),
            };
            all.push(("volatile".to_owned(), Value::Bool(true)));
            opts.flags = Some(Value::Object(all));
        }
        self.server.broadcast_opts(namespace, &opts, packet);
        self.write_transmits(eio, now).sent
    }

    /// The local sockets an operation on the whole cluster acts on now:
    /// the cluster node decides (and publishes), else the local selection.
    fn cluster_selection(
        &mut self,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        op: impl FnOnce(
            &mut duplex_socketio::cluster::ClusterNode,
            &duplex_socketio::cluster::Opts,
        ) -> Vec<String>,
    ) -> Vec<SocketId> {
        let opts = selection(target, local);
        match self.server.cluster_mut(namespace) {
            Some(node) => op(node, &opts).into_iter().map(SocketId::from).collect(),
            None => self.server.recipients(namespace, target),
        }
    }

    /// `socketsJoin` / `socketsLeave` of `rooms`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sockets_rooms(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        rooms: &[String],
        leave: bool,
        now: Instant,
    ) {
        let sockets = self.cluster_selection(namespace, target, local, |n, o| {
            n.sockets_rooms(o, rooms, leave)
        });
        for socket in sockets {
            if leave {
                for room in rooms {
                    self.server.leave(namespace, &socket, room);
                }
            } else {
                self.server.join(namespace, &socket, rooms.iter().cloned());
            }
        }
        self.write_transmits(eio, now);
    }

    /// `disconnectSockets(close)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn disconnect_sockets(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        close: bool,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        let sockets = self.cluster_selection(namespace, target, local, |n, o| {
            n.disconnect_sockets(o, close)
        });
        for socket in sockets {
            let Some(session) = self.server.session_of(namespace, &socket).cloned() else {
                continue;
            };
            self.server.disconnect(&session, namespace);
            if close {
                self.server
                    .close(&session, DisconnectReason::ServerNamespaceDisconnect);
            }
        }
        self.run(eio, now, deferred);
    }

    /// The ids of the sockets `target` reaches in `namespace`.
    pub(crate) fn recipients(
        &self,
        namespace: &str,
        target: &Broadcast<SocketId>,
    ) -> Vec<SocketId> {
        self.server.recipients(namespace, target)
    }

    /// Handles of sockets by id in `namespace`.
    pub(crate) fn sockets(&self, namespace: &str, ids: &[SocketId]) -> Vec<Socket> {
        ids.iter()
            .filter_map(|id| {
                let session = self.server.session_of(namespace, id)?;
                self.socket_handle(session, namespace, id)
            })
            .collect()
    }

    pub(crate) fn join(&mut self, namespace: &str, socket: &SocketId, rooms: &[String]) {
        self.server.join(namespace, socket, rooms.iter().cloned());
    }

    pub(crate) fn leave(&mut self, namespace: &str, socket: &SocketId, room: &str) {
        self.server.leave(namespace, socket, room);
    }

    pub(crate) fn rooms_of(&self, namespace: &str, socket: &SocketId) -> Vec<String> {
        self.server.rooms_of(namespace, socket)
    }

    /// The session that carries socket `id` of `namespace` now: a socket
    /// restored by connection state recovery keeps its id on a new
    /// Engine.IO session.
    pub(crate) fn session_of(&self, namespace: &str, id: &SocketId) -> Option<SessionId> {
        self.server.session_of(namespace, id).cloned()
    }

    pub(crate) fn is_connected(&self, session: &SessionId, namespace: &str, id: &SocketId) -> bool {
        self.server.is_connected(session, namespace, id)
    }

    /// The server leaves a namespace of a connection: `DISCONNECT` to the
    /// client, then the disconnect handler.
    pub(crate) fn disconnect_socket(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        namespace: &str,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        self.server.disconnect(session, namespace);
        self.run(eio, now, deferred);
    }

    /// Closes the whole connection (every namespace) from the server. Its
    /// sockets leave with the reason of Node's `socket.disconnect(true)`,
    /// `server namespace disconnect`, so that connection state recovery
    /// keeps no session for them (it keeps one for `server shutting down`).
    /// No DISCONNECT is written first (Node writes one per namespace): the
    /// client sees its transport close and reconnects, as it always has
    /// here, to a fresh session.
    pub(crate) fn close_connection(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        self.server
            .close(session, DisconnectReason::ServerNamespaceDisconnect);
        self.run(eio, now, deferred);
    }

    /// The server shuts down (Node's `io.close()`): every socket leaves
    /// with `server shutting down` (its disconnect handler runs; with
    /// recovery on its session is kept), then every Engine.IO session is
    /// closed as the reference's `engine.close()`. Returns how many
    /// sessions were open, and what completes once each closed socket's
    /// disconnect handler (and every call queued before it) has run.
    pub(crate) fn shutdown(
        &mut self,
        eio: &mut EngineIoServer,
        now: Instant,
        deferred: &mut Deferred,
    ) -> (usize, Vec<tokio::sync::oneshot::Receiver<()>>) {
        let mailboxes: Vec<Arc<Mailbox>> =
            self.sockets.values().map(|m| m.mailbox.clone()).collect();
        self.server.shutdown();
        // Then the adapters close, as Node's `io.close()` does: the other
        // servers of the cluster stop counting this one at once.
        #[cfg(feature = "cluster")]
        self.close_cluster(now);
        let open = eio.close_all(now);
        // The machine's `Close`s find the sessions gone: nothing more.
        self.run(eio, now, deferred);
        let mut done = Vec::new();
        if let Some(runtime) = self.runtime() {
            for mailbox in mailboxes {
                let (tx, rx) = tokio::sync::oneshot::channel();
                // Behind the disconnect handler `run` queued.
                let job: BoxFuture<()> = Box::pin(async move {
                    let _ = tx.send(());
                });
                if mailbox.push(job, true, &runtime).is_ok() {
                    done.push(rx);
                }
            }
        }
        (open, done)
    }

    /// Volatile packets dropped so far because their transport was not
    /// writable.
    pub(crate) fn volatile_dropped(&self) -> u64 {
        self.volatile_dropped
    }

    /// Whether connection state recovery is on.
    fn recovery_on(&self) -> bool {
        self.server.config().recovery.is_some()
    }

    /// Sends an event to one socket (`socket.emit`). With recovery on and
    /// an adapter that keeps packets (in memory, or the streams cluster
    /// mode, through its stream; not the pub/sub cluster modes, where it
    /// stays direct), an event without an ack id goes to the room named
    /// by the socket's id,
    /// as Node's `socket.emit` does then: it is stored and offset whether
    /// or not the socket is connected now, so a handle kept while its
    /// client is away (a stream) keeps working, and a restored socket,
    /// on whatever connection it came back, gets it live or replayed.
    pub(crate) fn emit_to_socket(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        socket: &SocketId,
        packet: &Packet,
        now: Instant,
    ) -> Result<(), SendError> {
        // Only where the adapter keeps packets (recovery in memory, or the
        // streams cluster mode): Node's pub/sub Redis adapters keep none,
        // and there direct emits stay direct.
        let stored = self.server.recovery_store(&packet.namespace).is_some()
            || self.server.cluster_keeps_sessions(&packet.namespace);
        if stored && packet.packet_type.is_event() && packet.ack_id.is_none() {
            let opts = duplex_socketio::cluster::Opts::rooms([socket.as_str()]);
            self.server.broadcast_opts(&packet.namespace, &opts, packet);
            return match self.write_transmits(eio, now).error {
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        self.send_packet(eio, session, packet, now)
    }

    /// Whether `socket` was restored with its session (Node's
    /// `socket.recovered`).
    pub(crate) fn recovered(&self, namespace: &str, socket: &SocketId) -> bool {
        self.server.recovered(namespace, socket)
    }

    /// The socket's data (Node's `socket.data`), kept with its session.
    pub(crate) fn data(&self, namespace: &str, socket: &SocketId) -> Option<Value> {
        self.server.data(namespace, socket).cloned()
    }

    /// Sets the socket's data; false if it is not connected.
    pub(crate) fn set_data(&mut self, namespace: &str, socket: &SocketId, data: Value) -> bool {
        self.server.set_data(namespace, socket, data)
    }
}

impl Application<EngineIoServer> for SocketIoApp {
    fn on_event(
        &mut self,
        eio: &mut EngineIoServer,
        event: Event,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        match event {
            Event::Opened { session, info } => {
                // Every Engine.IO session has a revision; `None` belongs to
                // the other dialects of the endpoint trait.
                let version =
                    socketio_version(info.engineio_version.unwrap_or(EngineIoVersion::V4));
                // Not a socket's yet: the empty namespace marks it.
                let opened = Handshake {
                    namespace: String::new(),
                    auth: Value::Null,
                    headers: info.headers,
                    query: info.query,
                };
                self.infos.insert(session.clone(), Arc::new(opened));
                self.server.open(session, version, now);
            }
            Event::Message { session, message } => match message {
                Message::Text(text) => self.server.handle_text(&session, text.into_bytes()),
                Message::Binary(data) => self.server.handle_binary(&session, data),
            },
            Event::Closed { session, reason } => {
                self.server
                    .closed(&session, disconnect_reason(reason.as_str()));
                self.infos.remove(&session);
            }
        }
        self.run(eio, now, deferred);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    fn handle_timeout(&mut self, eio: &mut EngineIoServer, now: Instant, deferred: &mut Deferred) {
        self.server.handle_timeout(now);
        self.run(eio, now, deferred);
    }

    /// Hands the machine the probed sessions that answered (a pong is no
    /// event of the endpoint, so it is read here, after every input).
    fn flush(&mut self, eio: &mut EngineIoServer, now: Instant, deferred: &mut Deferred) -> bool {
        let mut any = false;
        while let Some(session) = eio.poll_alive() {
            self.server.handle_alive(&session);
            any = true;
        }
        if any {
            self.run(eio, now, deferred);
        }
        any
    }
}

/// Logs why a handler was skipped: the client's fault at debug level, the
/// application's (state or an extension never given) as an error.
fn log_rejection(error: &crate::Error) {
    match error {
        crate::Error::InvalidPayload(e) => {
            tracing::debug!("event arguments do not fit the handler: {e}");
        }
        other => tracing::error!("handler not run: {other}"),
    }
}
