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
use duplex_socketio::{Broadcast, EncodedAck, EncodedPacket, Packet};

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
mod commands;
mod connect;
#[cfg(feature = "cluster")]
mod requests;

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

/// A broadcast with acks of this server: its acks (counted by the
/// cluster machine's rule) and where they go once complete.
#[cfg(feature = "cluster")]
struct AckBroadcast {
    acks: duplex_socketio::cluster::BroadcastAcks,
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
    let sent = if packet.attachments.is_empty() {
        // The usual packet, one text message: no vectors to carry it
        // (three allocations per packet sent, per broadcast recipient too).
        eio.send(session, Message::Text(packet.text), now)
    } else {
        let messages = packet_messages(packet)
            .into_iter()
            .map(|m| match m {
                WsMessage::Text(text) => Message::Text(text),
                WsMessage::Binary(data) => Message::Binary(data),
            })
            .collect();
        eio.send_all(session, messages, now)
    };
    sent.map_err(|e| match e {
        duplex_polling::Error::QueueFull => SendError::QueueFull,
        _ => SendError::Closed,
    })
}

/// A namespace as the handles carry it: the default one, by far the most
/// used, without a copy (nor the shared buffer its first clone would make).
fn namespace_str(namespace: &str) -> duplex_socketio::Str {
    if namespace == duplex_socketio::DEFAULT_NAMESPACE {
        duplex_socketio::Str::from_static(duplex_socketio::DEFAULT_NAMESPACE)
    } else {
        duplex_socketio::Str::copy_from_str(namespace)
    }
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
        self.handle_of(session, namespace_str(namespace), id, meta)
    }

    /// The handle of a socket whose entry the caller has looked up already.
    fn handle_of(
        &self,
        session: &SessionId,
        namespace: duplex_socketio::Str,
        id: &SocketId,
        meta: &SocketMeta,
    ) -> Option<Socket> {
        Some(Socket {
            io: self.io()?,
            session: session.clone(),
            namespace,
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
        self.dispatch_to(&mailbox, handler, parts, force)
    }

    /// [`Self::dispatch`] to a mailbox the caller has looked up already.
    fn dispatch_to(
        &mut self,
        mailbox: &Arc<Mailbox>,
        handler: BoxedHandler,
        parts: Parts,
        force: bool,
    ) -> bool {
        let Some(runtime) = self.runtime() else {
            tracing::error!("no tokio runtime to run the Socket.IO handlers on");
            return true;
        };
        // The extraction (and a sync handler) runs in the socket's task,
        // not under the server's lock: `handler` only builds the future.
        mailbox.push(handler(parts), force, &runtime).is_ok()
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
            args_read_later: true,
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
                let Some(handlers) = self.handlers.get(namespace.as_str()) else {
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
                // The socket's entry once, for its handle and its mailbox.
                let Some(meta) = self.sockets.get(&socket) else {
                    return;
                };
                let mailbox = meta.mailbox.clone();
                let Some(handle) =
                    self.handle_of(&session, namespace_str(&namespace), &socket, meta)
                else {
                    return;
                };
                let mut parts = self.parts(&handle);
                parts.event = Some(name);
                parts.args = args;
                parts.ack = ack_id.map(|id| AckSender {
                    target: Some((handle, id)),
                });
                if !self.dispatch_to(&mailbox, handler, parts, false) {
                    // The client sends faster than its handlers finish:
                    // it leaves the namespace rather than grow the queue.
                    tracing::warn!(
                        socket = socket.as_str(),
                        namespace = namespace.as_str(),
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
