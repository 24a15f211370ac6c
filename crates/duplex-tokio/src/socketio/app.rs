//! The Socket.IO server's state over the Engine.IO machine: one
//! connection per Engine.IO session (a packet decoder and the namespace
//! handshake table of duplex-socketio), one socket per connected namespace
//! (with its acks), and the rooms of every namespace.
//!
//! The protocol pieces are duplex-socketio's ([`Decoder`], [`Namespaces`],
//! [`Acks`], [`Rooms`], [`Packet`]); this module wires them to the sessions
//! of the endpoint and to the handlers. It touches no socket and no clock:
//! the time comes in as an argument, like every sans-IO machine, so it can
//! move below the adapter as it is.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use duplex_polling::{CloseReason, EngineIoServer, Event, Message, OpenInfo, SessionId};
use duplex_socketio::{
    Acks, Broadcast, Decoder, DecoderConfig, EncodedPacket, Namespaces, NamespacesConfig,
    NamespacesEvent, Packet, PacketType, ProtocolVersion, Received, Role, Rooms, Str, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    AckCallback, AckError, AckSender, DisconnectReason, Handshake, NamespaceHandlers, Registry,
    SendError, Socket, SocketId, SocketIo, SocketIoConfig,
};
use crate::polling::{Application, Deferred, WeakPollingService};

/// One socket: a connection's membership of one namespace.
struct SocketState {
    id: SocketId,
    acks: Acks<AckCallback>,
    handshake: Arc<Handshake>,
    extensions: Arc<Mutex<http::Extensions>>,
}

/// One Engine.IO session carrying Socket.IO.
struct Connection {
    decoder: Decoder,
    namespaces: Namespaces,
    sockets: HashMap<String, SocketState>,
    info: Arc<OpenInfo>,
    version: ProtocolVersion,
    /// Why the server is closing it, when the server closes it.
    closing: Option<DisconnectReason>,
}

impl Connection {
    fn deadline(&self) -> Option<Instant> {
        self.sockets
            .values()
            .filter_map(|s| s.acks.poll_timeout())
            .chain(self.namespaces.poll_timeout())
            .min()
    }
}

/// A namespace in use: its handlers, sockets and rooms.
pub(crate) struct Space {
    handlers: Arc<NamespaceHandlers>,
    rooms: Rooms<SocketId>,
    sockets: HashMap<SocketId, SessionId>,
}

/// Deadlines by session, earliest first.
#[derive(Default)]
struct Timers {
    by_time: BTreeSet<(Instant, SessionId)>,
    by_session: HashMap<SessionId, Instant>,
}

impl Timers {
    fn set(&mut self, session: &SessionId, at: Option<Instant>) {
        if let Some(old) = self.by_session.remove(session) {
            if Some(old) == at {
                self.by_session.insert(session.clone(), old);
                return;
            }
            self.by_time.remove(&(old, session.clone()));
        }
        if let Some(at) = at {
            self.by_time.insert((at, session.clone()));
            self.by_session.insert(session.clone(), at);
        }
    }

    fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    fn take_due(&mut self, now: Instant) -> Vec<SessionId> {
        let mut due = Vec::new();
        while self.by_time.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, session)) = self.by_time.pop_first() {
                self.by_session.remove(&session);
                due.push(session);
            }
        }
        due
    }
}

/// The Socket.IO layer, as the [`Application`] of the Engine.IO endpoint.
pub struct SocketIoApp {
    config: SocketIoConfig,
    registry: Registry,
    connections: HashMap<SessionId, Connection>,
    spaces: HashMap<String, Space>,
    timers: Timers,
    rng: StdRng,
    handle: Option<WeakPollingService<EngineIoServer, SocketIoApp>>,
}

impl std::fmt::Debug for SocketIoApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoApp")
            .field("connections", &self.connections.len())
            .field("namespaces", &self.spaces.len())
            .finish_non_exhaustive()
    }
}

/// Sends one encoded packet (text, then its attachments) on a session.
fn send_encoded(
    eio: &mut EngineIoServer,
    session: &SessionId,
    packet: &EncodedPacket,
    now: Instant,
) -> Result<(), SendError> {
    let text = duplex_polling::Utf8Bytes::try_from_bytes(packet.text.clone())
        .map_err(|_| SendError::Encode)?;
    let messages = std::iter::once(Message::Text(text))
        .chain(packet.attachments.iter().cloned().map(Message::Binary))
        .collect();
    // All or none: a text packet whose attachments were refused would make
    // the client read the next packet as an attachment.
    eio.send_all(session, messages, now).map_err(|e| match e {
        duplex_polling::Error::QueueFull => SendError::QueueFull,
        _ => SendError::Closed,
    })
}

fn reason_of(close: CloseReason) -> DisconnectReason {
    match close {
        CloseReason::Client => DisconnectReason::TransportClose,
        CloseReason::PingTimeout => DisconnectReason::PingTimeout,
        CloseReason::ParseError => DisconnectReason::ParseError,
        CloseReason::Application => DisconnectReason::ForcedServerClose,
        _ => DisconnectReason::TransportError,
    }
}

impl SocketIoApp {
    pub(crate) fn new(config: SocketIoConfig, registry: Registry) -> Self {
        let mut spaces = HashMap::new();
        for (name, handlers) in &registry.fixed {
            spaces.insert(
                name.clone(),
                Space {
                    handlers: handlers.clone(),
                    rooms: Rooms::new(),
                    sockets: HashMap::new(),
                },
            );
        }
        Self {
            config,
            registry,
            connections: HashMap::new(),
            spaces,
            timers: Timers::default(),
            rng: StdRng::from_os_rng(),
            handle: None,
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
        self.connections.len()
    }

    fn socket_handle(&self, session: &SessionId, namespace: &str) -> Option<Socket> {
        let conn = self.connections.get(session)?;
        let state = conn.sockets.get(namespace)?;
        Some(Socket {
            io: self.io()?,
            session: session.clone(),
            namespace: Arc::from(namespace),
            id: state.id.clone(),
            handshake: state.handshake.clone(),
            extensions: state.extensions.clone(),
        })
    }

    fn reschedule(&mut self, session: &SessionId) {
        let at = self.connections.get(session).and_then(Connection::deadline);
        self.timers.set(session, at);
    }

    /// Ends a connection from the server side: the disconnect handlers get
    /// `reason` once the endpoint reports the session closed.
    fn fail(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        reason: DisconnectReason,
        now: Instant,
    ) {
        if let Some(conn) = self.connections.get_mut(session) {
            conn.closing.get_or_insert(reason);
        }
        let _ = eio.close(session, now);
    }

    fn on_opened(
        &mut self,
        eio: &mut EngineIoServer,
        session: SessionId,
        info: OpenInfo,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        let version = match info.engineio_version {
            Some(duplex_polling::ProtocolVersion::V3) => ProtocolVersion::V4,
            _ => ProtocolVersion::V5,
        };
        let mut namespaces = Namespaces::new(
            NamespacesConfig {
                version,
                role: Role::Server,
                connect_timeout: Some(self.config.connect_timeout),
                max_namespaces: self.config.max_namespaces_per_connection,
            },
            now,
        );
        let implicit = namespaces.poll_transmit();
        self.connections.insert(
            session.clone(),
            Connection {
                decoder: Decoder::new(DecoderConfig {
                    version,
                    max_attachments: self.config.max_attachments,
                    ..DecoderConfig::default()
                }),
                namespaces,
                sockets: HashMap::new(),
                info: Arc::new(info),
                version,
                closing: None,
            },
        );
        if let Some(packet) = implicit {
            // v4: the default namespace is connected without a CONNECT.
            let _ = send_encoded(eio, &session, &packet.encode(), now);
            self.establish(&session, "/", Value::Object(Vec::new()), deferred);
        }
        self.reschedule(&session);
    }

    fn on_message(
        &mut self,
        eio: &mut EngineIoServer,
        session: SessionId,
        message: Message,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        let Some(conn) = self.connections.get_mut(&session) else {
            return;
        };
        let decoded = match message {
            Message::Text(text) => conn.decoder.receive_text(text.into_bytes()),
            Message::Binary(data) => conn.decoder.receive_binary(data),
        };
        match decoded {
            Ok(None) => {}
            Ok(Some(packet)) => self.on_packet(eio, &session, packet, now, deferred),
            Err(e) => {
                tracing::debug!(%session, "Socket.IO parse error: {e}");
                self.fail(eio, &session, DisconnectReason::ParseError, now);
            }
        }
        self.reschedule(&session);
    }

    fn on_packet(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        packet: Packet,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        let received = match conn.namespaces.on_receive(&packet) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%session, "Socket.IO protocol error: {e}");
                return self.fail(eio, session, DisconnectReason::ParseError, now);
            }
        };
        match received {
            Received::ConnectRequest => {
                self.on_connect_request(eio, session, packet, now, deferred)
            }
            Received::Disconnected => {
                let namespace = namespace_key(&packet, conn.version);
                self.remove_socket(
                    session,
                    &namespace,
                    DisconnectReason::ClientNamespaceDisconnect,
                    deferred,
                );
            }
            Received::Message if packet.packet_type.is_event() => {
                self.on_event(eio, session, packet, now, deferred);
            }
            Received::Message => self.on_ack(eio, session, packet, now, deferred),
            Received::Connected | Received::Refused | Received::Ignored => {}
        }
    }

    fn on_connect_request(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        packet: Packet,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        let namespace = namespace_key(&packet, conn.version);
        let Some(handlers) = self.registry.find(&namespace) else {
            if let Ok(refusal) = conn.namespaces.refuse(&namespace, "Invalid namespace") {
                let _ = send_encoded(eio, session, &refusal.encode(), now);
            }
            return;
        };
        let auth = match packet.value() {
            Ok(Some(v)) => v,
            Ok(None) => Value::Object(Vec::new()),
            Err(_) => return self.fail(eio, session, DisconnectReason::ParseError, now),
        };
        let handshake = Handshake {
            namespace: namespace.clone(),
            auth: auth.clone(),
            headers: conn.info.headers.clone(),
            query: conn.info.query.clone(),
        };
        for middleware in &handlers.middlewares {
            if let Err(refusal) = middleware(&handshake) {
                let packet = refusal.packet(&namespace, conn.version);
                if let Ok(packet) = packet {
                    if conn.namespaces.on_send(&packet).is_ok() {
                        let _ = send_encoded(eio, session, &packet.encode(), now);
                    }
                }
                return;
            }
        }
        let id = SocketId::from(random_id(&mut self.rng));
        match conn.namespaces.accept(&namespace, id.as_str()) {
            Ok(answer) => {
                if send_encoded(eio, session, &answer.encode(), now).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
        self.spaces
            .entry(namespace.clone())
            .or_insert_with(|| Space {
                handlers,
                rooms: Rooms::new(),
                sockets: HashMap::new(),
            });
        self.insert_socket(session, &namespace, id, handshake, deferred);
    }

    /// Registers the socket of an already granted namespace (v4's implicit one).
    fn establish(
        &mut self,
        session: &SessionId,
        namespace: &str,
        auth: Value,
        deferred: &mut Deferred,
    ) {
        let Some(handlers) = self.registry.find(namespace) else {
            return;
        };
        let Some(conn) = self.connections.get(session) else {
            return;
        };
        let handshake = Handshake {
            namespace: namespace.to_owned(),
            auth,
            headers: conn.info.headers.clone(),
            query: conn.info.query.clone(),
        };
        self.spaces
            .entry(namespace.to_owned())
            .or_insert_with(|| Space {
                handlers,
                rooms: Rooms::new(),
                sockets: HashMap::new(),
            });
        let id = SocketId::from(random_id(&mut self.rng));
        self.insert_socket(session, namespace, id, handshake, deferred);
    }

    fn insert_socket(
        &mut self,
        session: &SessionId,
        namespace: &str,
        id: SocketId,
        handshake: Handshake,
        deferred: &mut Deferred,
    ) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        conn.sockets.insert(
            namespace.to_owned(),
            SocketState {
                id: id.clone(),
                acks: Acks::new(self.config.max_pending_acks),
                handshake: Arc::new(handshake),
                extensions: Arc::new(Mutex::new(http::Extensions::new())),
            },
        );
        let Some(space) = self.spaces.get_mut(namespace) else {
            return;
        };
        space.sockets.insert(id.clone(), session.clone());
        space.rooms.add_socket(id.clone());
        // As the reference: every socket is in a room named by its id.
        space.rooms.join(id.clone(), id.as_str());
        let handler = space.handlers.on_connect.clone();
        if let (Some(handler), Some(socket)) = (handler, self.socket_handle(session, namespace)) {
            deferred.push(move || handler(socket));
        }
    }

    /// Forgets a socket and runs its disconnect handler.
    fn remove_socket(
        &mut self,
        session: &SessionId,
        namespace: &str,
        reason: DisconnectReason,
        deferred: &mut Deferred,
    ) {
        let socket = self.socket_handle(session, namespace);
        let Some(state) = self
            .connections
            .get_mut(session)
            .and_then(|c| c.sockets.remove(namespace))
        else {
            return;
        };
        self.drop_socket_state(namespace, state, socket, reason, deferred);
    }

    fn drop_socket_state(
        &mut self,
        namespace: &str,
        mut state: SocketState,
        socket: Option<Socket>,
        reason: DisconnectReason,
        deferred: &mut Deferred,
    ) {
        for (_, callback) in state.acks.clear() {
            deferred.push(move || callback(Err(AckError::Disconnected)));
        }
        let Some(space) = self.spaces.get_mut(namespace) else {
            return;
        };
        space.sockets.remove(&state.id);
        space.rooms.remove_socket(&state.id);
        if let (Some(handler), Some(socket)) = (space.handlers.on_disconnect.clone(), socket) {
            deferred.push(move || handler(socket, reason));
        }
    }

    fn on_event(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        packet: Packet,
        now: Instant,
        deferred: &mut Deferred,
    ) {
        let Some(conn) = self.connections.get(session) else {
            return;
        };
        let namespace = namespace_key(&packet, conn.version);
        let mut args = match packet.value() {
            Ok(Some(Value::Array(items))) => items,
            _ => return self.fail(eio, session, DisconnectReason::ParseError, now),
        };
        let name = match args.first() {
            Some(Value::String(name)) => name.clone(),
            _ => return self.fail(eio, session, DisconnectReason::ParseError, now),
        };
        args.remove(0);
        let Some(space) = self.spaces.get(&namespace) else {
            return;
        };
        let handler = space
            .handlers
            .events
            .get(&name)
            .cloned()
            .or_else(|| space.handlers.on_any.clone());
        let Some(handler) = handler else {
            return;
        };
        let Some(socket) = self.socket_handle(session, &namespace) else {
            return;
        };
        let ack = packet.ack_id.map(|id| AckSender {
            socket: socket.clone(),
            id,
        });
        deferred.push(move || handler(socket, name, args, ack));
    }

    fn on_ack(
        &mut self,
        _eio: &mut EngineIoServer,
        session: &SessionId,
        packet: Packet,
        _now: Instant,
        deferred: &mut Deferred,
    ) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        let namespace = namespace_key(&packet, conn.version);
        let Some(state) = conn.sockets.get_mut(&namespace) else {
            return;
        };
        let Some(callback) = packet.ack_id.and_then(|id| state.acks.resolve(id)) else {
            return;
        };
        let args = match packet.value() {
            Ok(Some(Value::Array(items))) => items,
            _ => Vec::new(),
        };
        deferred.push(move || callback(Ok(args)));
    }

    fn on_closed(&mut self, session: &SessionId, reason: CloseReason, deferred: &mut Deferred) {
        self.timers.set(session, None);
        let Some(conn) = self.connections.get(session) else {
            return;
        };
        let reason = conn.closing.unwrap_or_else(|| reason_of(reason));
        let mut namespaces: Vec<String> = conn.sockets.keys().cloned().collect();
        namespaces.sort();
        for namespace in namespaces {
            self.remove_socket(session, &namespace, reason, deferred);
        }
        self.connections.remove(session);
    }

    // ---- commands from handles ---------------------------------------------

    /// Sends `packet` to one socket, after checking its namespace is connected.
    pub(crate) fn send_packet(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        packet: &Packet,
        now: Instant,
    ) -> Result<(), SendError> {
        let conn = self.connections.get_mut(session).ok_or(SendError::Closed)?;
        conn.namespaces
            .on_send(packet)
            .map_err(|_| SendError::Closed)?;
        send_encoded(eio, session, &packet.encode(), now)
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
        args: &[Value],
        deadline: Option<Instant>,
        callback: AckCallback,
        now: Instant,
    ) -> Result<(), (SendError, AckCallback)> {
        let Some(state) = self
            .connections
            .get_mut(session)
            .and_then(|c| c.sockets.get_mut(namespace))
        else {
            return Err((SendError::Closed, callback));
        };
        if state.acks.len() >= self.config.max_pending_acks {
            return Err((SendError::TooManyPendingAcks, callback));
        }
        // The callback is parked first so that the id is known; taken back
        // if the send fails.
        let id = match state.acks.register(callback, deadline) {
            Ok(id) => id,
            Err(_) => {
                return Err((
                    SendError::TooManyPendingAcks,
                    Box::new(|_| {}) as AckCallback,
                ));
            }
        };
        let packet =
            match Packet::event_with(Str::from(namespace.to_owned()), event, args, Some(id)) {
                Ok(p) => p,
                Err(_) => {
                    let cb = state.acks.resolve(id);
                    return Err((SendError::Encode, cb.unwrap_or_else(|| Box::new(|_| {}))));
                }
            };
        if let Err(e) = self.send_packet(eio, session, &packet, now) {
            let cb = self
                .connections
                .get_mut(session)
                .and_then(|c| c.sockets.get_mut(namespace))
                .and_then(|s| s.acks.resolve(id));
            return Err((e, cb.unwrap_or_else(|| Box::new(|_| {}))));
        }
        self.reschedule(session);
        Ok(())
    }

    /// Sends `packet` (an event) to every recipient of `target` in `namespace`.
    pub(crate) fn broadcast(
        &mut self,
        eio: &mut EngineIoServer,
        namespace: &str,
        target: &Broadcast<SocketId>,
        packet: &Packet,
        now: Instant,
    ) -> usize {
        let Some(space) = self.spaces.get(namespace) else {
            return 0;
        };
        let encoded = packet.encode();
        let mut sent = 0;
        for socket in space.rooms.recipients(target) {
            if let Some(session) = space.sockets.get(socket) {
                if send_encoded(eio, session, &encoded, now).is_ok() {
                    sent += 1;
                }
            }
        }
        sent
    }

    /// The ids of the sockets `target` reaches in `namespace`.
    pub(crate) fn recipients(
        &self,
        namespace: &str,
        target: &Broadcast<SocketId>,
    ) -> Vec<SocketId> {
        self.spaces
            .get(namespace)
            .map(|space| space.rooms.recipients(target).cloned().collect())
            .unwrap_or_default()
    }

    /// Handles of sockets by id in `namespace`.
    pub(crate) fn sockets(&self, namespace: &str, ids: &[SocketId]) -> Vec<Socket> {
        let Some(space) = self.spaces.get(namespace) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| space.sockets.get(id))
            .filter_map(|session| self.socket_handle(session, namespace))
            .collect()
    }

    pub(crate) fn join(&mut self, namespace: &str, socket: &SocketId, rooms: &[String]) {
        if let Some(space) = self.spaces.get_mut(namespace) {
            if space.sockets.contains_key(socket) {
                for room in rooms {
                    space.rooms.join(socket.clone(), room.clone());
                }
            }
        }
    }

    pub(crate) fn leave(&mut self, namespace: &str, socket: &SocketId, room: &str) {
        if let Some(space) = self.spaces.get_mut(namespace) {
            space.rooms.leave(socket, room);
        }
    }

    pub(crate) fn rooms_of(&self, namespace: &str, socket: &SocketId) -> Vec<String> {
        let mut rooms: Vec<String> = self
            .spaces
            .get(namespace)
            .map(|s| s.rooms.rooms_of(socket).map(str::to_owned).collect())
            .unwrap_or_default();
        rooms.sort();
        rooms
    }

    pub(crate) fn is_connected(&self, session: &SessionId, namespace: &str, id: &SocketId) -> bool {
        self.connections
            .get(session)
            .and_then(|c| c.sockets.get(namespace))
            .is_some_and(|s| &s.id == id)
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
        let Ok(packet) = Packet::disconnect(Str::from(namespace.to_owned())) else {
            return;
        };
        let _ = self.send_packet(eio, session, &packet, now);
        self.remove_socket(
            session,
            namespace,
            DisconnectReason::ServerNamespaceDisconnect,
            deferred,
        );
    }

    /// Closes the whole connection (every namespace) from the server.
    pub(crate) fn close_connection(
        &mut self,
        eio: &mut EngineIoServer,
        session: &SessionId,
        now: Instant,
    ) {
        self.fail(eio, session, DisconnectReason::ServerShuttingDown, now);
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
            Event::Opened { session, info } => self.on_opened(eio, session, info, now, deferred),
            Event::Message { session, message } => {
                self.on_message(eio, session, message, now, deferred);
            }
            Event::Closed { session, reason } => self.on_closed(&session, reason, deferred),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn handle_timeout(&mut self, eio: &mut EngineIoServer, now: Instant, deferred: &mut Deferred) {
        for session in self.timers.take_due(now) {
            let Some(conn) = self.connections.get_mut(&session) else {
                continue;
            };
            conn.namespaces.handle_timeout(now);
            let mut expired = Vec::new();
            for state in conn.sockets.values_mut() {
                state.acks.handle_timeout(now);
                while let Some((_, callback)) = state.acks.poll_expired() {
                    expired.push(callback);
                }
            }
            for callback in expired {
                deferred.push(move || callback(Err(AckError::Timeout)));
            }
            if conn.namespaces.poll_event() == Some(NamespacesEvent::ConnectTimeout) {
                self.fail(eio, &session, DisconnectReason::ForcedServerClose, now);
            }
            self.reschedule(&session);
        }
    }
}

/// The namespace a packet is for (v4 namespaces may carry a query).
fn namespace_key(packet: &Packet, version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::V4 => packet.namespace_and_query().0.to_owned(),
        ProtocolVersion::V5 => packet.namespace.as_str().to_owned(),
    }
}

/// A socket id: 20 random alphanumeric characters.
fn random_id(rng: &mut StdRng) -> String {
    (0..20)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect()
}

/// The CONNECT_ERROR for a refusal by middleware.
pub(crate) fn connect_error_packet(
    namespace: &str,
    message: &str,
    data: Option<&serde_json::Value>,
    version: ProtocolVersion,
) -> Result<Packet, duplex_socketio::Error> {
    let Some(data) = data.filter(|_| version == ProtocolVersion::V5) else {
        return Packet::connect_error(Str::from(namespace.to_owned()), message, version);
    };
    let mut object = serde_json::Map::new();
    object.insert("message".into(), serde_json::Value::from(message));
    object.insert("data".into(), data.clone());
    let json = serde_json::to_vec(&object).map_err(duplex_socketio::Error::Serialize)?;
    let mut packet = Packet::connect_error(Str::from(namespace.to_owned()), message, version)?;
    packet.data = Some(Str::from_utf8(Bytes::from(json))?);
    debug_assert_eq!(packet.packet_type, PacketType::ConnectError);
    Ok(packet)
}
