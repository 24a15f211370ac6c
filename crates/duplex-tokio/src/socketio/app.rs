//! The driver of duplex-socketio's sans-IO [`Server`] machine, as the
//! [`Application`] of the Engine.IO endpoint: it feeds the machine each
//! session's messages and the time, writes what the machine wants written
//! on the sessions, and turns the machine's plain events into calls of the
//! application's handlers (queued on [`Deferred`], run outside the lock).
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
use duplex_polling::{EngineIoServer, Event, Message, OpenInfo, SessionId};
use duplex_socketio::engineio_binding::{disconnect_reason, packet_messages, socketio_version};
use duplex_socketio::server::{Server, ServerConfig, ServerEvent, Transmit, selection};
use duplex_socketio::{Broadcast, EncodedPacket, Packet};

use super::{
    AckCallback, AckError, AckSender, DisconnectReason, Handshake, NamespaceHandlers, Registry,
    SendError, Socket, SocketId, SocketIo, SocketIoConfig,
};
use crate::polling::{Application, Deferred, WeakPollingService};

/// What a socket's handles carry beyond its id.
struct SocketMeta {
    handshake: Arc<Handshake>,
    extensions: Arc<Mutex<http::Extensions>>,
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
    /// What each connection was opened with, for its handshakes.
    infos: HashMap<SessionId, Arc<OpenInfo>>,
    sockets: HashMap<SocketId, SocketMeta>,
    handle: Option<WeakPollingService<EngineIoServer, SocketIoApp>>,
    /// Where the cluster's messages go, when the server is in one.
    #[cfg(feature = "redis")]
    cluster: Option<ClusterLink>,
}

/// The server's side of its Redis task: a bounded queue it never waits on.
#[cfg(feature = "redis")]
struct ClusterLink {
    tx: tokio::sync::mpsc::Sender<super::redis::ClusterOut>,
    /// Counts what the full queue refused.
    on_dropped: Arc<dyn Fn() + Send + Sync>,
    /// Requests of this server awaiting the other servers' answers.
    pending: HashMap<String, PendingReply>,
    /// Broadcasts with acks of this server, collecting answers.
    ack_broadcasts: HashMap<String, AckBroadcast>,
}

/// A broadcast with acks of this server.
#[cfg(feature = "redis")]
struct AckBroadcast {
    /// Other servers whose client count is still awaited.
    remaining_servers: usize,
    /// Acks expected: the local clients and every counted remote one.
    expected: u64,
    responses: Vec<duplex_socketio::Value>,
    reply: tokio::sync::oneshot::Sender<Vec<duplex_socketio::Value>>,
}

/// Where the outcome of a cluster request goes.
#[cfg(feature = "redis")]
type PendingReply =
    tokio::sync::oneshot::Sender<Result<Vec<duplex_socketio::cluster::Answer>, String>>;

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
    pub(crate) fn new(config: SocketIoConfig, registry: Registry) -> Self {
        let server = Server::new(ServerConfig {
            connect_timeout: Some(config.connect_timeout),
            max_namespaces: config.max_namespaces_per_connection,
            max_pending_acks: config.max_pending_acks,
            max_attachments: config.max_attachments,
            ..ServerConfig::default()
        });
        Self {
            server,
            handlers: registry.fixed.clone(),
            registry,
            infos: HashMap::new(),
            sockets: HashMap::new(),
            handle: None,
            #[cfg(feature = "redis")]
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
            .map(|service| SocketIo { service })
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
            extensions: meta.extensions.clone(),
        })
    }

    // ---- moving bytes and events -------------------------------------------

    /// Writes what the machine wants written.
    fn flush(&mut self, eio: &mut EngineIoServer, now: Instant) -> Flushed {
        let mut flushed = Flushed::default();
        #[cfg(feature = "redis")]
        self.flush_cluster();
        while let Some(transmit) = self.server.poll_transmit() {
            match transmit {
                Transmit::Packet { session, packet } => {
                    match send_encoded(eio, &session, packet, now) {
                        Ok(()) => flushed.sent += 1,
                        Err(e) => {
                            flushed.error.get_or_insert(e);
                        }
                    }
                }
                Transmit::Close { session } => {
                    let _ = eio.close(&session, now);
                }
            }
        }
        flushed
    }

    /// Writes, and hands the machine's events to the handlers, until the
    /// machine has nothing more.
    fn run(&mut self, eio: &mut EngineIoServer, now: Instant, deferred: &mut Deferred) {
        loop {
            self.flush(eio, now);
            #[cfg(feature = "redis")]
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
            } => self.on_connect_request(session, namespace, auth, implicit, deferred),
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
                let Some(socket) = self.socket_handle(&session, &namespace, &socket) else {
                    return;
                };
                let ack = ack_id.map(|id| AckSender {
                    socket: socket.clone(),
                    id,
                });
                deferred.push(move || handler(socket, name, args, ack));
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
                self.sockets.remove(&socket);
                let handler = self
                    .handlers
                    .get(&namespace)
                    .and_then(|h| h.on_disconnect.clone());
                if let (Some(handler), Some(handle)) = (handler, handle) {
                    deferred.push(move || handler(handle, reason));
                }
            }
        }
    }

    /// The application's part of a CONNECT: does the namespace exist, does
    /// its middleware let the socket in.
    fn on_connect_request(
        &mut self,
        session: SessionId,
        namespace: String,
        auth: duplex_socketio::Value,
        implicit: bool,
        deferred: &mut Deferred,
    ) {
        let Some(handlers) = self.registry.find(&namespace) else {
            let _ = self.server.reject_unknown(&session, &namespace);
            return;
        };
        let Some(info) = self.infos.get(&session) else {
            return;
        };
        let handshake = Handshake {
            namespace: namespace.clone(),
            auth,
            headers: info.headers.clone(),
            query: info.query.clone(),
        };
        // v4's default namespace is granted at open, before any middleware.
        if !implicit {
            for middleware in &handlers.middlewares {
                if let Err(refusal) = middleware(&handshake) {
                    let _ = self.server.reject(
                        &session,
                        &namespace,
                        &refusal.message,
                        refusal.data.as_ref(),
                    );
                    return;
                }
            }
        }
        let Ok(id) = self.server.accept(&session, &namespace) else {
            return;
        };
        self.handlers.entry(namespace.clone()).or_insert(handlers);
        self.sockets.insert(
            id.clone(),
            SocketMeta {
                handshake: Arc::new(handshake),
                extensions: Arc::new(Mutex::new(http::Extensions::new())),
            },
        );
        let handler = self
            .handlers
            .get(&namespace)
            .and_then(|h| h.on_connect.clone());
        if let (Some(handler), Some(socket)) =
            (handler, self.socket_handle(&session, &namespace, &id))
        {
            deferred.push(move || handler(socket));
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
        match self.flush(eio, now).error {
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
        if let Some(error) = self.flush(eio, now).error {
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
        local: bool,
        packet: &Packet,
        now: Instant,
    ) -> usize {
        self.server
            .broadcast_opts(namespace, &selection(target, local), packet);
        self.flush(eio, now).sent
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
        self.flush(eio, now);
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

    /// Closes the whole connection (every namespace) from the server.
    pub(crate) fn close_connection(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        now: Instant,
    ) {
        self.server
            .close(session, DisconnectReason::ServerShuttingDown);
        self.flush(eio, now);
    }
}

#[cfg(feature = "redis")]
impl SocketIoApp {
    /// Puts `namespaces` in a cluster through `tx`; returns the
    /// subscriptions their nodes start with.
    pub(crate) fn attach_cluster(
        &mut self,
        namespaces: &[String],
        protocol: &duplex_socketio::cluster::Protocol,
        uid: &str,
        requests: duplex_socketio::cluster::RequestsConfig,
        tx: tokio::sync::mpsc::Sender<super::redis::ClusterOut>,
        on_dropped: Arc<dyn Fn() + Send + Sync>,
    ) -> Vec<(String, duplex_socketio::cluster::Subscription)> {
        for namespace in namespaces {
            let node = duplex_socketio::cluster::ClusterNode::new(
                protocol.clone(),
                uid,
                namespace,
                requests.clone(),
            );
            self.server.attach_cluster(namespace, node);
        }
        self.cluster = Some(ClusterLink {
            tx,
            on_dropped,
            pending: HashMap::new(),
            ack_broadcasts: HashMap::new(),
        });
        std::iter::from_fn(|| self.server.poll_cluster_subscription()).collect()
    }

    /// A message Redis delivered on `channel` for `namespace`'s node.
    pub(crate) fn cluster_receive(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        channel: &str,
        payload: &[u8],
        now: Instant,
        deferred: &mut Deferred,
    ) {
        if let Err(e) = self.server.cluster_receive(namespace, channel, payload) {
            // Another node's malformed message: nothing changed here.
            tracing::debug!(error = %e, channel, "redis adapter: message ignored");
        }
        self.run(eio, now, deferred);
    }

    /// Hands what the nodes publish to the Redis task, never waiting.
    fn flush_cluster(&mut self) {
        use super::redis::ClusterOut;
        let Some(link) = &self.cluster else {
            return;
        };
        let mut out = Vec::new();
        while let Some((namespace, change)) = self.server.poll_cluster_subscription() {
            out.push(ClusterOut::Subscription(namespace, change));
        }
        while let Some((_, transmit)) = self.server.poll_cluster_transmit() {
            out.push(ClusterOut::Publish(transmit));
        }
        for message in out {
            if link.tx.try_send(message).is_err() {
                (link.on_dropped)();
            }
        }
    }

    /// What other servers' fetches see of local sockets: id, rooms, the
    /// handshake's `auth` and the socket's [`SocketData`](super::SocketData).
    fn fetched(
        &self,
        namespace: &str,
        ids: Vec<String>,
    ) -> Vec<duplex_socketio::cluster::FetchedSocket> {
        use duplex_socketio::Value;
        ids.into_iter()
            .map(|id| {
                let sid = SocketId::from(id.as_str());
                let meta = self.sockets.get(&sid);
                let auth = meta
                    .map(|m| m.handshake.auth.clone())
                    .unwrap_or(Value::Null);
                let data = meta
                    .and_then(|m| {
                        m.extensions
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get::<super::SocketData>()
                            .map(|d| d.0.clone())
                    })
                    .unwrap_or(Value::Null);
                duplex_socketio::cluster::FetchedSocket {
                    rooms: self.server.rooms_of(namespace, &sid),
                    id,
                    handshake: Value::Object(vec![("auth".to_owned(), auth)]),
                    data,
                }
            })
            .collect()
    }

    /// The number of servers, asked of Redis, when `namespace` is in a
    /// cluster and the operation is not `local`.
    pub(crate) fn server_count(
        &self,
        namespace: &str,
        local: bool,
    ) -> Option<tokio::sync::oneshot::Receiver<usize>> {
        use super::redis::ClusterOut;
        let link = self.cluster.as_ref().filter(|_| !local)?;
        if !self
            .server
            .cluster_namespaces()
            .iter()
            .any(|n| n == namespace)
        {
            return None;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Refused (queue full): the dropped sender fails the request.
        let _ = link.tx.try_send(ClusterOut::Count(
            format!("socket.io-request#{namespace}#"),
            tx,
        ));
        Some(rx)
    }

    /// Starts a `fetchSockets` over `servers` servers; the answer comes on
    /// the receiver.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fetch_sockets(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        servers: usize,
        now: Instant,
        deferred: &mut Deferred,
    ) -> tokio::sync::oneshot::Receiver<Result<Vec<duplex_socketio::cluster::Answer>, String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ids = self
            .server
            .recipients(namespace, target)
            .into_iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let mine = self.fetched(namespace, ids);
        let request_id = random_id();
        let opts = selection(target, local);
        let (Some(node), Some(link)) = (self.server.cluster_mut(namespace), self.cluster.as_mut())
        else {
            let _ = tx.send(Ok(vec![duplex_socketio::cluster::Answer::Sockets(mine)]));
            return rx;
        };
        match node.fetch_sockets(&request_id, &opts, mine, servers, now) {
            Ok(()) => {
                link.pending.insert(request_id, tx);
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
            }
        }
        self.run(eio, now, deferred);
        rx
    }

    /// Starts an `allRooms` over `servers` servers; the answer comes on the
    /// receiver.
    pub(crate) fn all_rooms(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        servers: usize,
        now: Instant,
        deferred: &mut Deferred,
    ) -> tokio::sync::oneshot::Receiver<Result<Vec<duplex_socketio::cluster::Answer>, String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let request_id = random_id();
        let (Some(node), Some(link)) = (self.server.cluster_mut(namespace), self.cluster.as_mut())
        else {
            let mut rooms: Vec<String> = self
                .server
                .recipients(namespace, &Broadcast::all())
                .iter()
                .flat_map(|s| self.server.rooms_of(namespace, s))
                .collect();
            rooms.sort();
            rooms.dedup();
            let _ = tx.send(Ok(vec![duplex_socketio::cluster::Answer::Rooms(rooms)]));
            return rx;
        };
        match node.all_rooms(&request_id, servers, now) {
            Ok(()) => {
                link.pending.insert(request_id, tx);
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
            }
        }
        self.run(eio, now, deferred);
        rx
    }

    /// `serverSideEmit` of `data` (`[event, ...args]`); with the server
    /// count, an ack is wanted and its outcome comes on the receiver.
    pub(crate) fn server_side_emit(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        data: Vec<duplex_socketio::Value>,
        servers: Option<usize>,
        now: Instant,
        deferred: &mut Deferred,
    ) -> Option<tokio::sync::oneshot::Receiver<Result<Vec<duplex_socketio::cluster::Answer>, String>>>
    {
        let request_id = random_id();
        let (Some(node), Some(link)) = (self.server.cluster_mut(namespace), self.cluster.as_mut())
        else {
            return None;
        };
        let ack = servers.map(|n| (request_id.as_str(), n));
        let rx = match node.server_side_emit(data, ack, now) {
            Ok(()) if servers.is_some() => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                link.pending.insert(request_id.clone(), tx);
                Some(rx)
            }
            Ok(()) => None,
            Err(e) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = tx.send(Err(e.to_string()));
                Some(rx)
            }
        };
        // A request with no other server completes at once: its event is
        // read by the next run, which needs the pending entry in place.
        self.run(eio, now, deferred);
        rx
    }

    /// Answers another server's `server_side_emit_with_ack`.
    pub(crate) fn answer_server_side(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        requester: &str,
        request_id: &str,
        value: duplex_socketio::Value,
        now: Instant,
    ) {
        if let Some(node) = self.server.cluster_mut(namespace) {
            node.answer_server_side_emit(requester, request_id, value);
        }
        self.flush(eio, now);
    }

    /// Starts a broadcast with acks over `servers` servers: the local
    /// sockets get the event with an ack id at once, the other servers
    /// through the node. Returns the request id and where every ack goes
    /// once all arrived.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn broadcast_with_acks(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        local: bool,
        event: &str,
        args: &[duplex_socketio::Value],
        timeout: std::time::Duration,
        servers: usize,
        now: Instant,
        deferred: &mut Deferred,
    ) -> (
        String,
        tokio::sync::oneshot::Receiver<Vec<duplex_socketio::Value>>,
    ) {
        let request_id = random_id();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let opts = selection(target, local);
        let wire = duplex_socketio::cluster::WirePacket::event(event, args.iter().cloned());
        let in_cluster = self.server.cluster_mut(namespace).is_some() && !local;
        let sockets: Vec<SocketId> = match self.server.cluster_mut(namespace) {
            Some(node) => match node.broadcast_with_ack(&request_id, wire, &opts, timeout, now) {
                Ok(s) => s.into_iter().map(SocketId::from).collect(),
                Err(_) => Vec::new(),
            },
            None => self.server.recipients(namespace, target),
        };
        let Some(link) = self.cluster.as_mut() else {
            return (request_id, rx);
        };
        link.ack_broadcasts.insert(
            request_id.clone(),
            AckBroadcast {
                remaining_servers: if in_cluster {
                    servers.saturating_sub(1)
                } else {
                    0
                },
                expected: sockets.len() as u64,
                responses: Vec::new(),
                reply: tx,
            },
        );
        if let Some(io) = self.io() {
            for sid in sockets {
                let Some(session) = self.server.session_of(namespace, &sid).cloned() else {
                    continue;
                };
                let (io, id) = (io.clone(), request_id.clone());
                let callback: AckCallback = Box::new(move |result| {
                    let Ok(args) = result else {
                        return;
                    };
                    let value = args
                        .into_iter()
                        .next()
                        .unwrap_or(duplex_socketio::Value::Null);
                    io.service
                        .with(|_, app, _, _| app.ack_broadcast_answer(&id, None, Some(value)));
                });
                let _ = self.server.emit_with_ack(
                    &session,
                    namespace,
                    event,
                    args,
                    Some(now + timeout),
                    callback,
                );
            }
        }
        self.ack_broadcast_answer(&request_id, None, None);
        self.run(eio, now, deferred);
        (request_id, rx)
    }

    /// A server's client count or a client's ack for broadcast
    /// `request_id`; completes it when everything arrived.
    pub(crate) fn ack_broadcast_answer(
        &mut self,
        request_id: &str,
        count: Option<u64>,
        value: Option<duplex_socketio::Value>,
    ) {
        let Some(link) = self.cluster.as_mut() else {
            return;
        };
        let Some(state) = link.ack_broadcasts.get_mut(request_id) else {
            return;
        };
        if let Some(count) = count {
            state.remaining_servers = state.remaining_servers.saturating_sub(1);
            state.expected += count;
        }
        state.responses.extend(value);
        if state.remaining_servers == 0 && state.responses.len() as u64 >= state.expected {
            if let Some(state) = link.ack_broadcasts.remove(request_id) {
                let _ = state.reply.send(state.responses);
            }
        }
    }

    /// Gives up broadcast `request_id` (its timeout): the acks so far.
    pub(crate) fn ack_broadcast_take(&mut self, request_id: &str) -> Vec<duplex_socketio::Value> {
        self.cluster
            .as_mut()
            .and_then(|l| l.ack_broadcasts.remove(request_id))
            .map(|s| s.responses)
            .unwrap_or_default()
    }

    /// What the nodes leave to the application: answers this server can
    /// give from its sockets' handshakes.
    fn on_cluster_event(
        &mut self,
        event: duplex_socketio::server::ClusterEvent,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        use duplex_socketio::cluster::{LocalAction, NodeEvent, RequestEvent};
        let namespace = event.namespace;
        match event.event {
            NodeEvent::Local(LocalAction::Fetch {
                sockets,
                requester,
                request_id,
            }) => {
                let fetched = self.fetched(&namespace, sockets);
                if let Some(node) = self.server.cluster_mut(&namespace) {
                    node.answer_fetch(&requester, &request_id, fetched);
                }
            }
            NodeEvent::Local(LocalAction::EmitWithAck {
                sockets,
                packet,
                flags,
                requester,
                request_id,
            }) => {
                // Another server's broadcast with acks: the count first (0
                // too, so that it completes), then each client's ack.
                if let Some(node) = self.server.cluster_mut(&namespace) {
                    node.answer_client_count(&requester, &request_id, sockets.len() as u64);
                }
                let Some(io) = self.io() else {
                    return;
                };
                let name = packet.event_name().unwrap_or_default().to_owned();
                let args = packet.data.get(1..).unwrap_or_default().to_vec();
                let timeout = duplex_socketio::cluster::Opts {
                    flags,
                    ..Default::default()
                }
                .timeout_ms();
                let deadline = timeout.map(|ms| now + std::time::Duration::from_millis(ms));
                for sid in sockets {
                    let sid = SocketId::from(sid);
                    let Some(session) = self.server.session_of(&namespace, &sid).cloned() else {
                        continue;
                    };
                    let (io, ns, requester, request_id) = (
                        io.clone(),
                        namespace.clone(),
                        requester.clone(),
                        request_id.clone(),
                    );
                    let callback: AckCallback = Box::new(move |result| {
                        let Ok(args) = result else {
                            return;
                        };
                        let value = args
                            .into_iter()
                            .next()
                            .unwrap_or(duplex_socketio::Value::Null);
                        io.service.with(|eio, app, now, _| {
                            if let Some(node) = app.server.cluster_mut(&ns) {
                                node.answer_client_ack(&requester, &request_id, value);
                            }
                            app.flush(eio, now);
                        });
                    });
                    let _ = self
                        .server
                        .emit_with_ack(&session, &namespace, &name, &args, deadline, callback);
                }
            }
            NodeEvent::Local(LocalAction::ServerSideEmit { mut data, reply }) => {
                let handler = data
                    .first()
                    .and_then(duplex_socketio::Value::as_str)
                    .and_then(|name| {
                        self.handlers
                            .get(&namespace)?
                            .server_side
                            .get(name)
                            .cloned()
                    });
                let Some(handler) = handler else {
                    return;
                };
                data.remove(0);
                let reply = match (reply, self.io()) {
                    (Some((requester, request_id)), Some(io)) => {
                        Some(super::redis::ServerSideReply {
                            io,
                            namespace,
                            requester,
                            request_id,
                        })
                    }
                    _ => None,
                };
                deferred.push(move || handler(data, reply));
            }
            NodeEvent::Request(RequestEvent::ClientCount {
                request_id,
                client_count,
            }) => self.ack_broadcast_answer(&request_id, Some(client_count), None),
            NodeEvent::Request(RequestEvent::ClientAck { request_id, value }) => {
                self.ack_broadcast_answer(&request_id, None, Some(value));
            }
            NodeEvent::Request(RequestEvent::Completed {
                request_id, result, ..
            }) => {
                if let Some(reply) = self
                    .cluster
                    .as_mut()
                    .and_then(|c| c.pending.remove(&request_id))
                {
                    let _ = reply.send(Ok(result));
                }
            }
            NodeEvent::Request(RequestEvent::TimedOut {
                request_id, error, ..
            }) => {
                if let Some(reply) = self
                    .cluster
                    .as_mut()
                    .and_then(|c| c.pending.remove(&request_id))
                {
                    let _ = reply.send(Err(error));
                }
            }
            other => {
                // Server-side emits and broadcast acks have no API yet.
                tracing::debug!(?other, "redis adapter: cluster event not handled");
            }
        }
    }
}

/// A request id of this server (random: Node's are too).
#[cfg(feature = "redis")]
fn random_id() -> String {
    use rand::Rng;
    (0..16)
        .map(|_| char::from(rand::rng().sample(rand::distr::Alphanumeric)))
        .collect()
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
                self.infos.insert(session.clone(), Arc::new(info));
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
}
