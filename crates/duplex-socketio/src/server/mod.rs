//! The Socket.IO server as one sans-IO machine: every connection (one per
//! Engine.IO session) with its packet decoder, namespace handshake and
//! sockets, every namespace in use with its rooms, the acks each socket
//! awaits and all their timers.
//!
//! It decides everything the protocol decides: how a v4 connection gets
//! its default namespace, what answers a CONNECT (the `sid`, or a
//! CONNECT_ERROR whose `data` only v5 carries), which packets are ignored
//! and which end the connection, when the connect timeout closes a
//! connection, which sockets a broadcast reaches, and the reason every
//! disconnection is reported with. What it leaves to its caller is what an
//! application decides: which namespaces exist, whether a CONNECT is
//! accepted (middleware), and what to do with events.
//!
//! The verbs are those of the other machines of duplex:
//!
//! * input: [`Server::open`], [`Server::handle_text`] and
//!   [`Server::handle_binary`] for the messages of a session,
//!   [`Server::closed`] when the session is gone;
//! * commands: [`Server::accept`], [`Server::reject`], [`Server::send`],
//!   [`Server::emit_with_ack`], [`Server::broadcast`], [`Server::join`],
//!   [`Server::leave`], [`Server::disconnect`], [`Server::close`];
//! * output: [`Server::poll_event`] (plain [`ServerEvent`]s) and
//!   [`Server::poll_transmit`] (packets to send, sessions to close);
//! * time: [`Server::poll_timeout`] and [`Server::handle_timeout`].
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use duplex_socketio::ProtocolVersion;
//! use duplex_socketio::server::{Server, ServerConfig, ServerEvent, Transmit};
//!
//! let now = Instant::now();
//! let mut server: Server<&str, ()> = Server::new(ServerConfig::default());
//! server.open("session-1", ProtocolVersion::V5, now);
//! server.handle_text(&"session-1", Bytes::from_static(b"0"));
//! let Some(ServerEvent::ConnectRequest { session, namespace, .. }) = server.poll_event() else {
//!     panic!("a CONNECT asks to join");
//! };
//! let sid = server.accept(&session, &namespace).unwrap();
//! let Some(Transmit::Packet { packet, .. }) = server.poll_transmit() else {
//!     panic!("the answer");
//! };
//! assert_eq!(packet.text, format!(r#"0{{"sid":"{sid}"}}"#));
//!
//! server.handle_text(&"session-1", Bytes::from_static(br#"2["hello","world"]"#));
//! let Some(ServerEvent::Event { name, args, .. }) = server.poll_event() else {
//!     panic!("an event");
//! };
//! assert_eq!((name.as_str(), args), ("hello", vec!["world".into()]));
//! ```

mod streams;
mod timers;
mod types;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;

use crate::cluster::{
    Adapter, ClusterNode, InMemoryAdapter, LocalAction, LocalAdapter, NodeEvent, Opts,
    Subscription, Transmit as ClusterTransmit, WirePacket,
};
use crate::recovery::{Reserved, Session, SessionStore, random_id};
use crate::{
    Acks, Broadcast, DEFAULT_NAMESPACE, Decoder, DecoderConfig, EncodedAck, Error, Namespaces,
    NamespacesConfig, NamespacesEvent, Packet, ProtocolVersion, Received, Role, Str, Value,
};
use timers::Timers;

pub use crate::error::AckFailure;
pub use types::{DisconnectReason, RecoveryRequest, ServerConfig, ServerEvent, SocketId, Transmit};

/// The message of the CONNECT_ERROR that answers a CONNECT for a namespace
/// the server does not have (the reference's text).
pub const INVALID_NAMESPACE: &str = "Invalid namespace";

/// The Socket.IO revision an Engine.IO connection of protocol `engineio`
/// carries: v4 over Engine.IO 3 (and older), v5 over Engine.IO 4. The
/// numeric form of
/// [`engineio_binding::socketio_version`](crate::engineio_binding::socketio_version),
/// for an `EIO` value read as a number.
pub fn version_for_engineio(engineio: u8) -> ProtocolVersion {
    if engineio <= 3 {
        ProtocolVersion::V4
    } else {
        ProtocolVersion::V5
    }
}

/// One socket: a connection's membership of one namespace.
#[derive(Debug)]
struct SocketState<T> {
    id: SocketId,
    acks: Acks<T>,
    /// The private session id, with recovery on.
    pid: Option<String>,
    /// The application's `socket.data`, kept with the session.
    data: Value,
    /// The socket's session was restored.
    recovered: bool,
}

/// A connection's sockets, by namespace: a vector, since a connection is
/// in one namespace or a few (at most `max_namespaces`), where a hash map
/// took four slots of a socket's size for the first (≈ 950 bytes per idle
/// client). The order is the joining order.
#[derive(Debug)]
struct Sockets<T>(Vec<(String, SocketState<T>)>);

impl<T> Sockets<T> {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn get(&self, namespace: &str) -> Option<&SocketState<T>> {
        self.0.iter().find(|(n, _)| n == namespace).map(|(_, s)| s)
    }

    fn get_mut(&mut self, namespace: &str) -> Option<&mut SocketState<T>> {
        self.0
            .iter_mut()
            .find(|(n, _)| n == namespace)
            .map(|(_, s)| s)
    }

    /// Adds (or replaces) the socket of `namespace`; returns the one it
    /// replaced.
    fn insert(&mut self, namespace: String, state: SocketState<T>) -> Option<SocketState<T>> {
        if let Some(slot) = self.get_mut(&namespace) {
            return Some(std::mem::replace(slot, state));
        }
        // One slot at a time: most connections never join a second.
        self.0.reserve_exact(1);
        self.0.push((namespace, state));
        None
    }

    fn remove(&mut self, namespace: &str) -> Option<SocketState<T>> {
        let at = self.0.iter().position(|(n, _)| n == namespace)?;
        Some(self.0.remove(at).1)
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }

    fn values(&self) -> impl Iterator<Item = &SocketState<T>> {
        self.0.iter().map(|(_, s)| s)
    }
}

/// One Engine.IO session carrying Socket.IO.
#[derive(Debug)]
struct Connection<K, T> {
    decoder: Decoder,
    namespaces: Namespaces,
    sockets: Sockets<T>,
    version: ProtocolVersion,
    /// Why the server is closing it, once it decided to.
    closing: Option<DisconnectReason>,
    /// v4: the default namespace, granted on the wire at open, still has
    /// no socket and no answer from the caller.
    implicit_pending: bool,
    /// Sessions taken out of their store for the CONNECTs awaiting an
    /// answer, by namespace.
    restoring: HashMap<String, Reserved>,
    /// CONNECTs whose session is being looked up in the cluster: their
    /// auth, by namespace.
    awaiting: HashMap<String, Value>,
    /// Sessions the cluster gave for CONNECTs awaiting an answer.
    remote: HashMap<String, streams::PendingRemote>,
    /// CONNECTs held while the Engine.IO session of the socket their pid
    /// names is probed ([`Server::handle_alive`]): their auth and that
    /// session, by namespace.
    held: HashMap<String, (Value, K)>,
}

impl<K, T> Connection<K, T> {
    fn deadline(&self) -> Option<Instant> {
        self.sockets
            .values()
            .filter_map(|s| s.acks.poll_timeout())
            .chain(self.namespaces.poll_timeout())
            .min()
    }

    /// The namespace a packet is for (v4 namespaces may carry a query):
    /// the packet's own bytes, shared rather than copied (a `String` per
    /// packet was one allocation per event).
    fn namespace_of(&self, packet: &Packet) -> Str {
        match self.version {
            ProtocolVersion::V4 => packet.namespace.slice_ref(packet.namespace_and_query().0),
            ProtocolVersion::V5 => packet.namespace.clone(),
        }
    }
}

// The tables looked up on every packet. Connections, sockets and private
// session ids are keyed by ids the servers generated at random: a client
// only looks them up. Namespaces are the one key a client names, and only
// those the application accepts become a space; the seed is random per
// map, so a client that cannot see the hashes cannot aim at a chain either.
pub(crate) use duplex_core::FastMap;

/// A namespace with at least one socket, or with a cluster adapter: its
/// rooms (kept by its adapter), and the connection of each socket.
#[derive(Debug)]
struct Space<K> {
    adapter: Adapter,
    sockets: FastMap<SocketId, K>,
    /// The connected sockets that have a private session id, by that id:
    /// a CONNECT naming one is held while its connection is probed
    /// ([`Server::hold_connect`]).
    pids: FastMap<String, SocketId>,
}

impl<K> Space<K> {
    fn new(config: &mut ServerConfig) -> Self {
        let adapter = match &config.recovery {
            Some(recovery) => Adapter::InMemory(InMemoryAdapter::with_recovery(SessionStore::new(
                recovery.clone(),
                config.rng.as_mut(),
            ))),
            None => Adapter::default(),
        };
        Self {
            adapter,
            sockets: FastMap::default(),
            pids: FastMap::default(),
        }
    }

    /// An in-memory namespace without sockets costs nothing to recreate,
    /// unless it keeps sessions or packets for recovery; a cluster node
    /// holds subscriptions and requests, so it stays.
    fn disposable(&self) -> bool {
        self.sockets.is_empty()
            && match &self.adapter {
                Adapter::InMemory(a) => a.recovery().is_none_or(SessionStore::is_empty),
                Adapter::Cluster(_) => false,
            }
    }
}

/// The adapter's selection for `target`, with the `local` flag when
/// nothing is to reach other servers (Node's `io.local`).
pub fn selection(target: &Broadcast<SocketId>, local: bool) -> Opts {
    let mut opts = opts_of(target);
    if local {
        opts.set_flag("local", Value::Bool(true));
    }
    opts
}

/// The adapter's selection for a broadcast target: a socket id is a room
/// too, so excluded sockets are excluded rooms.
fn opts_of(target: &Broadcast<SocketId>) -> Opts {
    Opts {
        rooms: target.rooms.clone(),
        except: target
            .except_rooms
            .iter()
            .cloned()
            .chain(target.except.iter().map(|s| s.as_str().to_owned()))
            .collect(),
        flags: None,
    }
}

/// What a namespace's cluster node asks of the application: the
/// [`LocalAction`]s the server machine cannot carry out alone (it does not
/// know socket data or server-side listeners) and the outcomes of this
/// node's requests.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterEvent {
    /// The namespace.
    pub namespace: String,
    /// What the node reported.
    pub event: NodeEvent,
}

/// The Socket.IO server machine over any number of Engine.IO sessions,
/// each named by the caller's key `K`; `T` is the caller's token for an
/// awaited ack.
///
/// See the [module documentation](self) for the verbs. Every call may
/// queue events and transmits: drain [`Server::poll_event`] and
/// [`Server::poll_transmit`] after each, and re-read
/// [`Server::poll_timeout`].
pub struct Server<K, T> {
    config: ServerConfig,
    /// Boxed: a connection is some 600 bytes, and a map's table holds up
    /// to twice its entries' size in free slots.
    connections: FastMap<K, Box<Connection<K, T>>>,
    /// The CONNECTs held on each probed session, as (their session,
    /// namespace): released when it shows life or closes.
    holds: FastMap<K, Vec<(K, String)>>,
    /// How many CONNECTs are held, all sessions together.
    held: usize,
    spaces: FastMap<String, Space<K>>,
    timers: Timers<K>,
    events: VecDeque<ServerEvent<K, T>>,
    transmits: VecDeque<Transmit<K>>,
    cluster_events: VecDeque<ClusterEvent>,
    recovery_requests: VecDeque<RecoveryRequest<K>>,
    /// The latest time handed in (recovery's expiry checks at CONNECT).
    now: Option<Instant>,
}

impl<K, T> std::fmt::Debug for Server<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("connections", &self.connections.len())
            .field("namespaces", &self.spaces.len())
            .field("events", &self.events.len())
            .field("transmits", &self.transmits.len())
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + Hash + Ord, T> Server<K, T> {
    /// A server with no connection yet.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            connections: FastMap::default(),
            holds: FastMap::default(),
            held: 0,
            spaces: FastMap::default(),
            timers: Timers::default(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            cluster_events: VecDeque::new(),
            recovery_requests: VecDeque::new(),
            now: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Number of connections (Engine.IO sessions carrying Socket.IO).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    // ---- input --------------------------------------------------------

    /// An Engine.IO session opened at `now`, speaking Socket.IO `version`
    /// (see [`version_for_engineio`]). Its connect timeout starts; in v4
    /// the default namespace is granted at once (`0` is sent) and comes out
    /// as an implicit [`ServerEvent::ConnectRequest`].
    pub fn open(&mut self, session: K, version: ProtocolVersion, now: Instant) {
        self.now = Some(self.now.map_or(now, |n| n.max(now)));
        let mut namespaces = Namespaces::new(
            NamespacesConfig {
                version,
                role: Role::Server,
                connect_timeout: self.config.connect_timeout,
                max_namespaces: self.config.max_namespaces,
            },
            now,
        );
        let implicit = namespaces.poll_transmit();
        let connection = Connection {
            decoder: Decoder::new(DecoderConfig {
                version,
                max_attachments: self.config.max_attachments,
                max_attachment_bytes: self.config.max_attachment_bytes,
            }),
            namespaces,
            sockets: Sockets::new(),
            version,
            closing: None,
            implicit_pending: implicit.is_some(),
            restoring: HashMap::new(),
            awaiting: HashMap::new(),
            remote: HashMap::new(),
            held: HashMap::new(),
        };
        if let Some(old) = self
            .connections
            .insert(session.clone(), Box::new(connection))
        {
            // A key reused while still open: the old connection is gone.
            self.drop_sockets(&session, old, DisconnectReason::TransportClose);
            self.release_holds(&session);
        }
        if let Some(packet) = implicit {
            self.transmits.push_back(Transmit::Packet {
                session: session.clone(),
                packet: packet.encode(),
            });
            self.events.push_back(ServerEvent::ConnectRequest {
                session: session.clone(),
                namespace: DEFAULT_NAMESPACE.to_owned(),
                auth: Value::Object(Vec::new()),
                implicit: true,
            });
        }
        self.reschedule(&session);
    }

    /// A text message of `session`. Unknown sessions are ignored.
    pub fn handle_text(&mut self, session: &K, text: Bytes) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        let decoded = conn.decoder.receive_text(text);
        self.on_decoded(session, decoded);
    }

    /// A binary message of `session` (an attachment). Unknown sessions are
    /// ignored.
    pub fn handle_binary(&mut self, session: &K, data: Bytes) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        let decoded = conn.decoder.receive_binary(data);
        self.on_decoded(session, decoded);
    }

    /// The Engine.IO session is gone, for `reason` as the transport saw it.
    /// Every socket of it disconnects, with the reason the server closed it
    /// for if it did ([`Server::close`]), else `reason`.
    ///
    /// CONNECTs held while this session was probed go on now: a socket
    /// that left for a reason keeping its session
    /// ([`DisconnectReason::keeps_session`]) is restored by them.
    pub fn closed(&mut self, session: &K, reason: DisconnectReason) {
        self.timers.set(session, None);
        if let Some(conn) = self.connections.remove(session) {
            let reason = conn.closing.unwrap_or(reason);
            self.drop_sockets(session, conn, reason);
        }
        self.release_holds(session);
    }

    /// The Engine.IO session `session`, probed at the server's request
    /// ([`Transmit::Probe`]), showed life: something came from its client
    /// after the probe. The CONNECTs held for it go on as fresh sessions,
    /// its sockets undisturbed. Unknown or unprobed sessions are ignored.
    pub fn handle_alive(&mut self, session: &K) {
        self.release_holds(session);
    }

    /// A CONNECT naming the pid of a socket connected on another
    /// Engine.IO session of this server, in the same namespace, with an
    /// offset still stored, is held and that session probed: either the
    /// client lost that connection and reconnected before the server
    /// noticed (the probe goes unanswered, the session closes with a
    /// reason that keeps the socket's session, and the CONNECT restores
    /// it), or someone else holds a live socket's pid and offset (the
    /// probe is answered, and the CONNECT gets a fresh session, the live
    /// socket undisturbed, as the reference does). Past
    /// [`RecoveryConfig::max_held_connects`](crate::recovery::RecoveryConfig::max_held_connects)
    /// held at once, or for a session the server is closing already, it
    /// is not held: a fresh session, as the reference.
    fn hold_connect(&mut self, session: &K, namespace: &str, auth: &Value) -> bool {
        let Some((pid, offset)) = recovery_auth(auth) else {
            return false;
        };
        let Some(space) = self.spaces.get(namespace) else {
            return false;
        };
        let Some(store) = space.adapter.recovery() else {
            return false;
        };
        if !store.holds_offset(offset) || self.held >= store.config().max_held_connects {
            return false;
        }
        let Some(old) = space
            .pids
            .get(pid)
            .and_then(|sid| space.sockets.get(sid))
            .filter(|old| *old != session)
            .filter(|old| {
                self.connections
                    .get(*old)
                    .is_some_and(|c| c.closing.is_none())
            })
            .cloned()
        else {
            return false;
        };
        let Some(conn) = self.connections.get_mut(session) else {
            return false;
        };
        conn.held
            .insert(namespace.to_owned(), (auth.clone(), old.clone()));
        self.held += 1;
        let waiting = self.holds.entry(old.clone()).or_default();
        if waiting.is_empty() {
            self.transmits.push_back(Transmit::Probe {
                session: old.clone(),
            });
        }
        waiting.push((session.clone(), namespace.to_owned()));
        true
    }

    /// The CONNECTs held on `old` go on, in the order they came: raised
    /// as they would have been without the hold, so that a session kept
    /// meanwhile is restored and a live one's pid gets a fresh session.
    fn release_holds(&mut self, old: &K) {
        for (session, namespace) in self.holds.remove(old).unwrap_or_default() {
            let Some(conn) = self.connections.get_mut(&session) else {
                continue;
            };
            let Some((auth, _)) = conn.held.remove(&namespace) else {
                continue;
            };
            self.held = self.held.saturating_sub(1);
            self.reserve_session(&session, &namespace, &auth);
            self.events.push_back(ServerEvent::ConnectRequest {
                session,
                namespace,
                auth,
                implicit: false,
            });
        }
    }

    /// Forgets the CONNECT `session` holds for `namespace`, if any (its
    /// client left the namespace or its connection closed).
    fn unhold(&mut self, session: &K, namespace: &str, old: &K) {
        self.held = self.held.saturating_sub(1);
        if let Some(waiting) = self.holds.get_mut(old) {
            waiting.retain(|(s, n)| !(s == session && n == namespace));
            // The probe stays out; its answer then finds nothing to release.
        }
    }

    /// With recovery on, a CONNECT whose auth holds a `pid` and an
    /// `offset` (both strings, as the reference requires) naming a kept
    /// session and a stored packet takes the session out of the store, so
    /// that no other connection can restore it; it is restored if the
    /// CONNECT is accepted, and given back if not. Anything else makes a
    /// fresh session, never an error.
    fn reserve_session(&mut self, session: &K, namespace: &str, auth: &Value) {
        if self.config.recovery.is_none() {
            return;
        }
        let (Some((pid, offset)), Some(now)) = (recovery_auth(auth), self.now) else {
            return;
        };
        let Some(reserved) = self
            .spaces
            .get_mut(namespace)
            .and_then(|space| space.adapter.recovery_mut())
            .and_then(|store| store.reserve(pid, offset, now))
        else {
            return;
        };
        if let Some(conn) = self.connections.get_mut(session) {
            conn.restoring.insert(namespace.to_owned(), reserved);
        }
    }

    /// Gives a reserved session back to its store.
    fn unreserve(&mut self, namespace: &str, reserved: Reserved) {
        if let Some(store) = self
            .spaces
            .get_mut(namespace)
            .and_then(|space| space.adapter.recovery_mut())
        {
            store.unreserve(reserved);
        }
    }

    fn on_decoded(&mut self, session: &K, decoded: Result<Option<Packet>, Error>) {
        match decoded {
            Ok(None) => {}
            Ok(Some(packet)) => self.on_packet(session, packet),
            Err(_) => self.close(session, DisconnectReason::ParseError),
        }
        self.reschedule(session);
    }

    fn on_packet(&mut self, session: &K, packet: Packet) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        let Ok(received) = conn.namespaces.handle_packet(&packet) else {
            // A second CONNECT, or too many namespaces: the reference
            // closes on what its parser refuses.
            return self.close(session, DisconnectReason::ParseError);
        };
        let shared = conn.namespace_of(&packet);
        let namespace = shared.as_str();
        match received {
            Received::ConnectRequest => {
                let auth = match packet.value() {
                    Ok(Some(v)) => v,
                    Ok(None) => Value::Object(Vec::new()),
                    Err(_) => return self.close(session, DisconnectReason::ParseError),
                };
                if self.defer_connect(session, namespace, &auth)
                    || self.hold_connect(session, namespace, &auth)
                {
                    return;
                }
                self.reserve_session(session, namespace, &auth);
                self.events.push_back(ServerEvent::ConnectRequest {
                    session: session.clone(),
                    namespace: namespace.to_owned(),
                    auth,
                    implicit: false,
                });
            }
            Received::Disconnected => {
                if namespace == DEFAULT_NAMESPACE {
                    conn.implicit_pending = false;
                }
                conn.awaiting.remove(namespace);
                let remote = conn.remote.remove(namespace);
                let held = conn.held.remove(namespace);
                if let Some(reserved) = conn.restoring.remove(namespace) {
                    self.unreserve(namespace, reserved);
                }
                if let Some((_, old)) = held {
                    self.unhold(session, namespace, &old);
                }
                self.give_back_remote(remote, namespace);
                self.remove_socket(
                    session,
                    namespace,
                    DisconnectReason::ClientNamespaceDisconnect,
                );
            }
            Received::Message if packet.packet_type.is_event() => {
                // Read from the connection at hand rather than looked up again.
                let socket = conn.sockets.get(namespace).map(|s| s.id.clone());
                self.on_event(session, shared.clone(), packet, socket);
            }
            Received::Message => {
                let Some(state) = conn.sockets.get_mut(namespace) else {
                    return;
                };
                // Unknown, answered or expired ids are ignored, as the reference does.
                let Some(token) = packet.ack_id.and_then(|id| state.acks.resolve(id)) else {
                    return;
                };
                let args = match packet.value() {
                    Ok(Some(Value::Array(items))) => items,
                    _ => Vec::new(),
                };
                self.events.push_back(ServerEvent::Ack {
                    token,
                    result: Ok(args),
                });
            }
            Received::Connected | Received::Refused | Received::Ignored => {}
        }
    }

    /// An EVENT for `socket`, the session's socket in `namespace` if any.
    fn on_event(&mut self, session: &K, namespace: Str, packet: Packet, socket: Option<SocketId>) {
        let mut args = match packet.value() {
            Ok(Some(Value::Array(items))) => items,
            _ => return self.close(session, DisconnectReason::ParseError),
        };
        // Moved out of the arguments rather than copied.
        let name = match args.first_mut() {
            Some(Value::String(name)) => std::mem::take(name),
            _ => return self.close(session, DisconnectReason::ParseError),
        };
        args.remove(0);
        let Some(socket) = socket else {
            // Connected on the wire but never accepted (v4's default
            // namespace left unanswered): nobody to hand it to.
            return;
        };
        self.events.push_back(ServerEvent::Event {
            session: session.clone(),
            namespace,
            socket,
            name,
            args,
            ack_id: packet.ack_id,
        });
    }

    // ---- commands -----------------------------------------------------

    /// Grants a [`ServerEvent::ConnectRequest`]: queues the answer (`{"sid"}`
    /// in v5, `{"sid","pid"}` with recovery on, an empty CONNECT in v4;
    /// nothing for v4's implicit default namespace, already granted) and
    /// creates the socket, in no room but the one named by its id. Returns
    /// the socket's id.
    ///
    /// With recovery on, a CONNECT whose session could be reserved
    /// ([`Server::restoring`]) restores it instead: the same id, rooms and
    /// data, the packets it missed queued before the answer (as the
    /// reference writes them), and [`Server::recovered`] true. If its
    /// offset was dropped meanwhile, the socket is a fresh one.
    ///
    /// [`Error::InvalidState`] if no request for `namespace` awaits an answer.
    pub fn accept(&mut self, session: &K, namespace: &str) -> Result<SocketId, Error> {
        let conn = self
            .connections
            .get_mut(session)
            .ok_or(Error::InvalidState)?;
        let implicit = conn.implicit_pending && namespace == DEFAULT_NAMESPACE;
        if !implicit
            && conn.namespaces.state(namespace) != Some(crate::NamespaceState::RequestedByPeer)
        {
            return Err(Error::InvalidState);
        }
        let reserved = conn.restoring.remove(namespace);
        let remote = conn.remote.remove(namespace);
        let version = conn.version;
        let mut remote_rooms = None;
        let restored = remote
            .and_then(|remote| self.take_remote(namespace, remote))
            .map(|(session, missed)| {
                remote_rooms = Some(streams::with_own_room(&session.sid, session.rooms.clone()));
                crate::recovery::Restored { session, missed }
            })
            .or_else(|| {
                reserved.and_then(|reserved| {
                    self.spaces
                        .get_mut(namespace)?
                        .adapter
                        .restore_session(reserved)
                })
            });
        let (id, pid, data, missed) = match restored {
            Some(r) => (
                SocketId::from(r.session.sid),
                Some(r.session.pid),
                r.session.data,
                Some(r.missed),
            ),
            None => {
                let id = self.fresh_id();
                // v4 clients never see a pid (Node answers them with an
                // empty CONNECT), so their sessions could not be restored:
                // none is kept.
                let pid = (self.config.recovery.is_some() && version == ProtocolVersion::V5)
                    .then(|| random_id(self.config.rng.as_mut()));
                (id, pid, Value::Object(Vec::new()), None)
            }
        };
        let conn = self
            .connections
            .get_mut(session)
            .ok_or(Error::InvalidState)?;
        if implicit {
            conn.implicit_pending = false;
        } else {
            let mut answer = conn.namespaces.accept(namespace, id.as_str())?;
            if let (Some(pid), ProtocolVersion::V5) = (&pid, version) {
                // The reference's `{sid, pid}`; both ids are base64url, no
                // escaping needed.
                answer.data = Some(Str::from(format!(r#"{{"sid":"{id}","pid":"{pid}"}}"#)));
            }
            for packet in missed.iter().flatten() {
                self.transmits.push_back(Transmit::Packet {
                    session: session.clone(),
                    packet: packet.clone(),
                });
            }
            self.transmits.push_back(Transmit::Packet {
                session: session.clone(),
                packet: answer.encode(),
            });
        }
        let recovered = missed.is_some();
        let pid_of_socket = pid.clone();
        conn.sockets.insert(
            namespace.to_owned(),
            SocketState {
                id: id.clone(),
                acks: Acks::new(self.config.max_pending_acks),
                pid,
                data,
                recovered,
            },
        );
        let config = &mut self.config;
        let space = self
            .spaces
            .entry(namespace.to_owned())
            .or_insert_with(|| Space::new(config));
        space.sockets.insert(id.clone(), session.clone());
        if let Some(pid) = pid_of_socket {
            space.pids.insert(pid, id.clone());
        }
        if let Some(rooms) = remote_rooms {
            // Restored from the cluster: its rooms come back here.
            space.adapter.add_all(id.as_str(), &rooms);
        } else if !recovered {
            // As the reference: every socket is in a room named by its id
            // (a restored one is back in its rooms already).
            space
                .adapter
                .add_all(id.as_str(), &[id.as_str().to_owned()]);
        }
        Ok(id)
    }

    /// Refuses a [`ServerEvent::ConnectRequest`] (or a CONNECT for a
    /// namespace that does not exist: use [`INVALID_NAMESPACE`] as the
    /// message) with a CONNECT_ERROR: `{"message","data"}` in v5, the
    /// message alone in v4, whose ERROR packet has no room for `data`.
    /// Refusing v4's implicit default namespace sends the ERROR and
    /// forgets the namespace.
    pub fn reject(
        &mut self,
        session: &K,
        namespace: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Result<(), Error> {
        let conn = self
            .connections
            .get_mut(session)
            .ok_or(Error::InvalidState)?;
        let packet = connect_error_packet(namespace, message, data, conn.version)?;
        let remote = conn.remote.remove(namespace);
        if let Some(reserved) = conn.restoring.remove(namespace) {
            self.unreserve(namespace, reserved);
        }
        self.give_back_remote(remote, namespace);
        let Some(conn) = self.connections.get_mut(session) else {
            return Err(Error::InvalidState);
        };
        if conn.implicit_pending && namespace == DEFAULT_NAMESPACE {
            conn.implicit_pending = false;
            // Granted on the wire at open: the ERROR takes it back.
            conn.namespaces
                .prepare_send(&Packet::disconnect(Str::from_static(DEFAULT_NAMESPACE))?)?;
        } else {
            conn.namespaces.prepare_send(&packet)?;
        }
        self.transmits.push_back(Transmit::Packet {
            session: session.clone(),
            packet: packet.encode(),
        });
        Ok(())
    }

    /// Answers a [`ServerEvent::ConnectRequest`] for a namespace the
    /// application does not have, as the reference does: a CONNECT_ERROR
    /// with [`INVALID_NAMESPACE`]; except for v4's implicit default
    /// namespace, already granted on the wire at open, which is left
    /// without a socket (its packets are ignored) rather than taken back.
    ///
    /// [`Error::InvalidState`] if the session is unknown.
    pub fn reject_unknown(&mut self, session: &K, namespace: &str) -> Result<(), Error> {
        let conn = self.connections.get(session).ok_or(Error::InvalidState)?;
        if conn.implicit_pending && namespace == DEFAULT_NAMESPACE {
            return Ok(());
        }
        self.reject(session, namespace, INVALID_NAMESPACE, None)
    }

    /// Queues an event or ack `packet` for a connected namespace of
    /// `session` ([`Error::InvalidState`] otherwise, or for any other type
    /// of packet: the handshake is the machine's).
    ///
    /// With recovery on, an event without an ack id goes, as the
    /// reference's `socket.emit` does, to the room named by the socket's id
    /// through the adapter, which stores it and appends its offset: the
    /// in-memory one, or a streams cluster node (through its stream). With
    /// a pub/sub cluster adapter, which keeps no packets, it stays a direct
    /// write, as with Node's Redis adapter.
    pub fn send(&mut self, session: &K, packet: &Packet) -> Result<(), Error> {
        if !(packet.packet_type.is_event() || packet.packet_type.is_ack()) {
            return Err(Error::InvalidState);
        }
        let conn = self
            .connections
            .get_mut(session)
            .ok_or(Error::InvalidState)?;
        conn.namespaces.prepare_send(packet)?;
        if self.config.recovery.is_some()
            && packet.packet_type.is_event()
            && packet.ack_id.is_none()
        {
            let namespace = conn.namespace_of(packet);
            let session_aware = self.spaces.get(namespace.as_str()).is_some_and(|s| {
                s.adapter.recovery().is_some()
                    || matches!(&s.adapter, Adapter::Cluster(n) if n.keeps_sessions())
            });
            // Node's pub/sub Redis adapters keep no packets: there a direct
            // emit stays a direct write. The streams adapter keeps them in
            // its stream, so there it goes out as a broadcast to the
            // socket's own room, as with recovery in memory.
            if let Some(state) = conn.sockets.get(&namespace).filter(|_| session_aware) {
                let opts = Opts::rooms([state.id.as_str()]);
                self.broadcast_opts(&namespace, &opts, packet);
                return Ok(());
            }
        }
        self.transmits.push_back(Transmit::Packet {
            session: session.clone(),
            packet: packet.encode(),
        });
        Ok(())
    }

    /// Queues an ACK encoded with [`Packet::encode_ack`]: what
    /// [`Server::send`] does with the same ACK as a [`Packet`], without
    /// encoding it here (so not under a caller's lock either).
    /// [`Error::InvalidState`] if its namespace is not connected on
    /// `session`.
    pub fn send_ack(&mut self, session: &K, ack: EncodedAck) -> Result<(), Error> {
        let conn = self
            .connections
            .get_mut(session)
            .ok_or(Error::InvalidState)?;
        // The header is all the namespace check reads.
        let header = Packet::ack(ack.namespace, Str::default(), Vec::new(), 0)?;
        conn.namespaces.prepare_send(&header)?;
        self.transmits.push_back(Transmit::Packet {
            session: session.clone(),
            packet: ack.packet,
        });
        Ok(())
    }

    /// Queues `event` with `args` asking for an ack; the outcome comes out
    /// as a [`ServerEvent::Ack`] with `token`: the client's answer, or a
    /// failure at `deadline` or when the socket disconnects. Returns the
    /// ack id; on error the token comes back.
    pub fn emit_with_ack(
        &mut self,
        session: &K,
        namespace: &str,
        event: &str,
        args: &[Value],
        deadline: Option<Instant>,
        token: T,
    ) -> Result<u64, (Error, T)> {
        let Some(conn) = self.connections.get_mut(session) else {
            return Err((Error::InvalidState, token));
        };
        let Some(state) = conn.sockets.get_mut(namespace) else {
            return Err((Error::InvalidState, token));
        };
        let packet = match Packet::event_with(Str::from(namespace.to_owned()), event, args, None) {
            Ok(p) => p,
            Err(e) => return Err((e, token)),
        };
        // Checked before the ack is parked, so that a refusal leaves nothing behind.
        if let Err(e) = conn.namespaces.prepare_send(&packet) {
            return Err((e, token));
        }
        let id = state.acks.try_register(token, deadline)?;
        let packet = Packet {
            ack_id: Some(id),
            ..packet
        };
        self.transmits.push_back(Transmit::Packet {
            session: session.clone(),
            packet: packet.encode(),
        });
        self.reschedule(session);
        Ok(id)
    }

    /// Takes back the token of an awaited ack (the event could not be
    /// written after all); no [`ServerEvent::Ack`] will come for it.
    pub fn cancel_ack(&mut self, session: &K, namespace: &str, id: u64) -> Option<T> {
        let token = self
            .connections
            .get_mut(session)?
            .sockets
            .get_mut(namespace)?
            .acks
            .resolve(id);
        self.reschedule(session);
        token
    }

    /// Queues `packet` (an event, encoded once) for every socket of
    /// `namespace` that `target` reaches; returns how many local sockets.
    /// With a cluster adapter the other nodes hear of it too (see
    /// [`Server::poll_cluster_transmit`]).
    pub fn broadcast(
        &mut self,
        namespace: &str,
        target: &Broadcast<SocketId>,
        packet: &Packet,
    ) -> usize {
        self.broadcast_opts(namespace, &opts_of(target), packet)
    }

    /// [`Server::broadcast`] with the adapter's selection: `opts.flags`
    /// carries `local` (no other node hears of it), `volatile`...
    /// With a streams cluster node, a broadcast that is not `local`
    /// reaches the local sockets later, once its entry id is known
    /// ([`Server::cluster_published`]): 0 is returned then.
    pub fn broadcast_opts(&mut self, namespace: &str, opts: &Opts, packet: &Packet) -> usize {
        let Some(space) = self.spaces.get_mut(namespace) else {
            return 0;
        };
        // The session-aware adapter stores the packet and appends its offset.
        let stored = space
            .adapter
            .recovery_mut()
            .and_then(|store| store.store(packet, opts))
            .map(|(encoded, _)| encoded);
        let volatile = opts.flag("volatile").is_some();
        if let Adapter::InMemory(rooms) = &space.adapter {
            // The recipients as the adapter's own ids, each looked up once:
            // no id copied nor built per recipient.
            let encoded = stored.unwrap_or_else(|| packet.encode());
            let before = self.transmits.len();
            let sockets = &space.sockets;
            let transmits = &mut self.transmits;
            rooms.for_each_selected(opts, |sid| {
                if let Some(session) = sockets.get(sid) {
                    transmits.push_back(recipient(session, &encoded, volatile));
                }
            });
            return self.transmits.len() - before;
        }
        let sockets = match &mut space.adapter {
            Adapter::InMemory(rooms) => rooms.select(opts),
            adapter => {
                // Only a cluster needs the packet as a value.
                let args = match packet.value() {
                    Ok(Some(Value::Array(items))) => items,
                    _ => Vec::new(),
                };
                let wire = WirePacket {
                    packet_type: 2,
                    data: args,
                    nsp: None,
                    id: None,
                };
                adapter.broadcast(wire, opts)
            }
        };
        let encoded = stored.unwrap_or_else(|| packet.encode());
        self.send_to(namespace, &sockets, &encoded, volatile)
    }

    fn send_to(
        &mut self,
        namespace: &str,
        sockets: &[String],
        encoded: &crate::EncodedPacket,
        volatile: bool,
    ) -> usize {
        let Some(space) = self.spaces.get(namespace) else {
            return 0;
        };
        let before = self.transmits.len();
        for socket in sockets {
            if let Some(session) = space.sockets.get(socket.as_str()) {
                self.transmits
                    .push_back(recipient(session, encoded, volatile));
            }
        }
        self.transmits.len() - before
    }

    /// Puts `socket` of `namespace` in each of `rooms` (nothing if it is
    /// not connected).
    pub fn join<R: Into<String>>(
        &mut self,
        namespace: &str,
        socket: &SocketId,
        rooms: impl IntoIterator<Item = R>,
    ) {
        if let Some(space) = self.spaces.get_mut(namespace) {
            if space.sockets.contains_key(socket) {
                let rooms: Vec<String> = rooms.into_iter().map(Into::into).collect();
                space.adapter.add_all(socket.as_str(), &rooms);
            }
        }
    }

    /// Takes `socket` of `namespace` out of `room`.
    pub fn leave(&mut self, namespace: &str, socket: &SocketId, room: &str) {
        if let Some(space) = self.spaces.get_mut(namespace) {
            if space.sockets.contains_key(socket) {
                space.adapter.del(socket.as_str(), room);
            }
        }
    }

    /// The server makes `session` leave `namespace`: DISCONNECT to the
    /// client, then [`ServerEvent::Disconnect`] with
    /// [`DisconnectReason::ServerNamespaceDisconnect`]. The connection and
    /// its other namespaces stay.
    pub fn disconnect(&mut self, session: &K, namespace: &str) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        if let Ok(packet) = Packet::disconnect(Str::from(namespace.to_owned())) {
            if conn.namespaces.prepare_send(&packet).is_ok() {
                self.transmits.push_back(Transmit::Packet {
                    session: session.clone(),
                    packet: packet.encode(),
                });
            }
        }
        if namespace == DEFAULT_NAMESPACE {
            conn.implicit_pending = false;
        }
        conn.awaiting.remove(namespace);
        let remote = conn.remote.remove(namespace);
        if let Some(reserved) = conn.restoring.remove(namespace) {
            self.unreserve(namespace, reserved);
        }
        self.give_back_remote(remote, namespace);
        self.remove_socket(
            session,
            namespace,
            DisconnectReason::ServerNamespaceDisconnect,
        );
        self.reschedule(session);
    }

    /// Closes the whole connection from the server: queues
    /// [`Transmit::Close`]; its sockets disconnect with `reason` once the
    /// session is reported [`Server::closed`]. The first reason given wins.
    pub fn close(&mut self, session: &K, reason: DisconnectReason) {
        let Some(conn) = self.connections.get_mut(session) else {
            return;
        };
        if conn.closing.is_none() {
            conn.closing = Some(reason);
            self.transmits.push_back(Transmit::Close {
                session: session.clone(),
            });
        }
    }

    /// The server shuts down (Node's `io.close()`): every socket of every
    /// namespace leaves at once with
    /// [`DisconnectReason::ServerShuttingDown`] (its acks fail, its
    /// [`ServerEvent::Disconnect`] comes out, and with recovery on its
    /// session is kept, the reason being a recoverable one), no DISCONNECT
    /// is written, and every connection is forgotten with a
    /// [`Transmit::Close`]. The runtime then closes every Engine.IO session
    /// as the reference's `engine.close()` does
    /// (`duplex_engineio::server::Server::close_all`), so that the client
    /// sees its transport close and reconnects; a runtime that only carries
    /// out the `Close`s closes them gracefully, which the client sees the
    /// same way. Sessions reported [`Server::closed`] afterwards are
    /// unknown and ignored; new connections are served as before. A
    /// connection the server was already closing keeps the reason it was
    /// closed for.
    pub fn shutdown(&mut self) {
        let mut sessions: Vec<K> = self.connections.keys().cloned().collect();
        sessions.sort();
        for session in sessions {
            self.timers.set(&session, None);
            let Some(conn) = self.connections.remove(&session) else {
                continue;
            };
            let reason = conn.closing.unwrap_or(DisconnectReason::ServerShuttingDown);
            let close = conn.closing.is_none();
            self.drop_sockets(&session, conn, reason);
            if close {
                self.transmits.push_back(Transmit::Close { session });
            }
        }
    }

    // ---- queries ------------------------------------------------------

    /// The sockets of `namespace` that `target` reaches.
    pub fn recipients(&self, namespace: &str, target: &Broadcast<SocketId>) -> Vec<SocketId> {
        self.spaces
            .get(namespace)
            .map(|space| {
                space
                    .adapter
                    .rooms()
                    .select(&opts_of(target))
                    .into_iter()
                    .map(SocketId::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The connection of `socket` in `namespace`.
    pub fn session_of(&self, namespace: &str, socket: &SocketId) -> Option<&K> {
        self.spaces.get(namespace)?.sockets.get(socket)
    }

    /// The socket of `session` in `namespace`, if connected.
    pub fn socket_id(&self, session: &K, namespace: &str) -> Option<&SocketId> {
        Some(&self.connections.get(session)?.sockets.get(namespace)?.id)
    }

    /// Whether `socket` is still `session`'s socket in `namespace`.
    pub fn is_connected(&self, session: &K, namespace: &str, socket: &SocketId) -> bool {
        self.socket_id(session, namespace) == Some(socket)
    }

    /// Every room of `namespace` on this server, sorted (the reference's
    /// local `allRooms`: each socket's own room included).
    pub fn all_rooms(&self, namespace: &str) -> Vec<String> {
        let mut rooms: Vec<String> = self
            .spaces
            .get(namespace)
            .map(|s| s.adapter.rooms().all_rooms())
            .unwrap_or_default();
        rooms.sort();
        rooms
    }

    /// The rooms `socket` of `namespace` is in (including the one named by
    /// its id), sorted.
    pub fn rooms_of(&self, namespace: &str, socket: &SocketId) -> Vec<String> {
        let mut rooms: Vec<String> = self
            .spaces
            .get(namespace)
            .map(|s| s.adapter.rooms().rooms_of(socket.as_str()))
            .unwrap_or_default();
        rooms.sort();
        rooms
    }

    // ---- connection state recovery --------------------------------------

    /// Whether the CONNECT of `session` for `namespace` awaiting an answer
    /// will restore a kept session if accepted (its auth named one, with a
    /// stored offset). The session is reserved for it meanwhile.
    pub fn restoring(&self, session: &K, namespace: &str) -> bool {
        self.connections.get(session).is_some_and(|c| {
            c.restoring.contains_key(namespace) || c.remote.contains_key(namespace)
        })
    }

    /// Whether the CONNECT of `session` for `namespace` may be accepted
    /// without running the namespace's middlewares: it restores a session
    /// and [`RecoveryConfig::skip_middlewares`](crate::recovery::RecoveryConfig::skip_middlewares)
    /// is on (the reference's `skipMiddlewares`). Accept such a CONNECT
    /// at once: one restored from the cluster and accepted after more
    /// than [`StreamsOptions::recent`](crate::cluster::StreamsOptions::recent)
    /// broadcasts went by ends as a fresh socket.
    pub fn skips_middlewares(&self, session: &K, namespace: &str) -> bool {
        self.config
            .recovery
            .as_ref()
            .is_some_and(|r| r.skip_middlewares)
            && self.restoring(session, namespace)
    }

    /// Whether `socket` of `namespace` was restored with its session (the
    /// reference's `socket.recovered`).
    pub fn recovered(&self, namespace: &str, socket: &SocketId) -> bool {
        self.socket_state(namespace, socket)
            .is_some_and(|s| s.recovered)
    }

    /// The private session id of `socket`, with recovery on.
    pub fn pid(&self, namespace: &str, socket: &SocketId) -> Option<&str> {
        self.socket_state(namespace, socket)?.pid.as_deref()
    }

    /// The application's data of `socket` (the reference's `socket.data`):
    /// `{}` for a new socket, the data it had for a restored one.
    pub fn data(&self, namespace: &str, socket: &SocketId) -> Option<&Value> {
        Some(&self.socket_state(namespace, socket)?.data)
    }

    /// Sets the data of `socket`, kept with its session when its
    /// connection is lost. Returns whether the socket is connected.
    pub fn set_data(&mut self, namespace: &str, socket: &SocketId, data: Value) -> bool {
        let Some(session) = self.session_of(namespace, socket).cloned() else {
            return false;
        };
        match self
            .connections
            .get_mut(&session)
            .and_then(|c| c.sockets.get_mut(namespace))
        {
            Some(state) => {
                state.data = data;
                true
            }
            None => false,
        }
    }

    /// The recovery store of `namespace` (its packets and kept sessions),
    /// when recovery is on and the namespace's adapter is in memory.
    pub fn recovery_store(&self, namespace: &str) -> Option<&SessionStore> {
        self.spaces.get(namespace)?.adapter.recovery()
    }

    fn socket_state(&self, namespace: &str, socket: &SocketId) -> Option<&SocketState<T>> {
        let session = self.session_of(namespace, socket)?;
        self.connections.get(session)?.sockets.get(namespace)
    }

    // ---- cluster ------------------------------------------------------

    /// Makes `namespace` a member of a cluster: its rooms and broadcasts go
    /// through `node` from now on (the local sockets and their rooms move
    /// into it), and the namespace stays while it has no socket, since the
    /// node keeps subscriptions and requests. Returns the adapter it had.
    pub fn attach_cluster(&mut self, namespace: &str, mut node: ClusterNode) -> Adapter {
        let space = self
            .spaces
            .entry(namespace.to_owned())
            .or_insert_with(|| Space {
                adapter: Adapter::default(),
                sockets: FastMap::default(),
                pids: FastMap::default(),
            });
        let rooms = space.adapter.rooms();
        for socket in space.sockets.keys() {
            node.add_all(socket.as_str(), &rooms.rooms_of(socket.as_str()));
        }
        std::mem::replace(&mut space.adapter, Adapter::Cluster(Box::new(node)))
    }

    /// The cluster node of `namespace`, for the requests only a cluster
    /// has (`fetch_sockets`, `server_side_emit`, the `answer_*` of
    /// [`ClusterEvent`]s...). Drain [`Server::poll_cluster_event`] and
    /// [`Server::poll_cluster_transmit`] after using it.
    pub fn cluster_mut(&mut self, namespace: &str) -> Option<&mut ClusterNode> {
        self.spaces.get_mut(namespace)?.adapter.cluster()
    }

    /// The namespaces with a cluster adapter.
    pub fn cluster_namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .spaces
            .iter()
            .filter(|(_, s)| matches!(s.adapter, Adapter::Cluster(_)))
            .map(|(n, _)| n.clone())
            .collect();
        out.sort();
        out
    }

    /// A message another node published on `channel`, for `namespace`'s
    /// cluster node. What it means for the local sockets is carried out
    /// at once (emits, joins, leaves, disconnects, the answers the machine
    /// knows); the rest comes out of [`Server::poll_cluster_event`].
    ///
    /// A malformed message is the other node's fault: the error says what
    /// was wrong and nothing changes. Unknown namespaces are ignored.
    pub fn cluster_receive(
        &mut self,
        namespace: &str,
        channel: &str,
        payload: &[u8],
    ) -> Result<(), crate::cluster::Error> {
        let Some(node) = self.cluster_mut(namespace) else {
            return Ok(());
        };
        let result = node.receive(channel, payload);
        self.drain_cluster(namespace);
        result
    }

    /// The next message a cluster node publishes, with its namespace.
    pub fn poll_cluster_transmit(&mut self) -> Option<(String, ClusterTransmit)> {
        self.spaces
            .iter_mut()
            .find_map(|(name, space)| space.adapter.poll_transmit().map(|t| (name.clone(), t)))
    }

    /// The next subscription change a cluster node asks for, with its
    /// namespace.
    pub fn poll_cluster_subscription(&mut self) -> Option<(String, Subscription)> {
        self.spaces.iter_mut().find_map(|(name, space)| {
            space
                .adapter
                .cluster()
                .and_then(ClusterNode::poll_subscription)
                .map(|s| (name.clone(), s))
        })
    }

    /// The next thing a cluster node asks of the application (see
    /// [`ClusterEvent`]); the actions the machine carries out itself are
    /// applied on the way.
    pub fn poll_cluster_event(&mut self) -> Option<ClusterEvent> {
        if self.cluster_events.is_empty() {
            for namespace in self.cluster_namespaces() {
                self.drain_cluster(&namespace);
            }
        }
        self.cluster_events.pop_front()
    }

    fn drain_cluster(&mut self, namespace: &str) {
        while let Some(event) = self
            .spaces
            .get_mut(namespace)
            .and_then(|s| s.adapter.poll_event())
        {
            match event {
                NodeEvent::Local(action) => {
                    if let Some(rest) = self.apply_local(namespace, action) {
                        self.cluster_events.push_back(ClusterEvent {
                            namespace: namespace.to_owned(),
                            event: NodeEvent::Local(rest),
                        });
                    }
                }
                event => self.cluster_events.push_back(ClusterEvent {
                    namespace: namespace.to_owned(),
                    event,
                }),
            }
        }
    }

    /// Carries out `action` on the local sockets of `namespace`; gives it
    /// back when the application has to (fetches, server-side emits, acks).
    fn apply_local(&mut self, namespace: &str, action: LocalAction) -> Option<LocalAction> {
        match action {
            LocalAction::Emit {
                sockets,
                packet,
                flags,
            } => {
                let volatile = flags.as_ref().and_then(|f| f.get("volatile")).is_some();
                let name = packet.event_name().unwrap_or_default().to_owned();
                let args = packet.data.get(1..).unwrap_or_default();
                if let Ok(p) =
                    Packet::event_with(Str::from(namespace.to_owned()), &name, args, None)
                {
                    self.send_to(namespace, &sockets, &p.encode(), volatile);
                }
                None
            }
            LocalAction::Join { sockets, rooms } => {
                for sid in sockets {
                    self.join(namespace, &SocketId::from(sid), rooms.iter().cloned());
                }
                None
            }
            LocalAction::Leave { sockets, rooms } => {
                for sid in sockets {
                    for room in &rooms {
                        self.leave(namespace, &SocketId::from(sid.as_str()), room);
                    }
                }
                None
            }
            LocalAction::Disconnect { sockets, close } => {
                for sid in sockets {
                    let Some(session) = self.session_of(namespace, &SocketId::from(sid)).cloned()
                    else {
                        continue;
                    };
                    // As Node's `socket.disconnect(close)`: DISCONNECT first.
                    self.disconnect(&session, namespace);
                    if close {
                        self.close(&session, DisconnectReason::ServerNamespaceDisconnect);
                    }
                }
                None
            }
            LocalAction::SocketIds {
                sockets,
                requester,
                request_id,
            } => {
                if let Some(node) = self.cluster_mut(namespace) {
                    node.answer_socket_ids(&requester, &request_id, sockets);
                }
                None
            }
            LocalAction::AllRooms {
                rooms,
                requester,
                request_id,
            } => {
                if let Some(node) = self.cluster_mut(namespace) {
                    node.answer_all_rooms(&requester, &request_id, rooms);
                }
                None
            }
            LocalAction::Done {
                then,
                requester,
                request_id,
            } => {
                let rest = self.apply_local(namespace, *then);
                if let Some(node) = self.cluster_mut(namespace) {
                    node.answer_done(&requester, &request_id);
                }
                rest
            }
            other => Some(other),
        }
    }

    // ---- output and time ----------------------------------------------

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent<K, T>> {
        self.events.pop_front()
    }

    /// The next packet to send or session to close.
    pub fn poll_transmit(&mut self) -> Option<Transmit<K>> {
        self.transmits.pop_front()
    }

    /// When [`Server::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.spaces
            .values()
            .filter_map(|s| s.adapter.poll_timeout())
            .chain(self.spaces.values().filter_map(|s| {
                let store = s.adapter.recovery()?;
                // Stamps are due now: the latest time handed in.
                if store.waits_for_time() {
                    self.now
                } else {
                    store.poll_timeout()
                }
            }))
            .chain(self.timers.next())
            .min()
    }

    /// Advances the timers to `now`: expired acks fail with
    /// [`AckFailure::Timeout`], and a connection that joined no namespace
    /// within the connect timeout is closed
    /// ([`DisconnectReason::ForcedServerClose`]). With recovery on, what
    /// was stored or kept since the last call is stamped with `now`, and
    /// packets and sessions older than the configured duration go.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |n| n.max(now)));
        // Requests to other nodes expire; their outcome is a cluster event.
        for space in self.spaces.values_mut() {
            space.adapter.handle_timeout(now);
            if let Some(store) = space.adapter.recovery_mut() {
                store.handle_timeout(now);
            }
        }
        // Broadcasts a cluster node released on time (an own entry never
        // read back) reach the local sockets now, as read entries do.
        for namespace in self.cluster_namespaces() {
            self.drain_cluster(&namespace);
        }
        // Namespaces that kept nothing but expired sessions go.
        self.spaces.retain(|_, space| !space.disposable());
        for session in self.timers.take_due(now) {
            let Some(conn) = self.connections.get_mut(&session) else {
                continue;
            };
            conn.namespaces.handle_timeout(now);
            let mut namespaces: Vec<&String> = conn.sockets.keys().collect();
            namespaces.sort();
            let namespaces: Vec<String> = namespaces.into_iter().cloned().collect();
            for namespace in namespaces {
                if let Some(state) = conn.sockets.get_mut(&namespace) {
                    state.acks.handle_timeout(now);
                    while let Some((_, token)) = state.acks.poll_expired() {
                        self.events.push_back(ServerEvent::Ack {
                            token,
                            result: Err(AckFailure::Timeout),
                        });
                    }
                }
            }
            if conn.namespaces.poll_event() == Some(NamespacesEvent::ConnectTimeout) {
                self.close(&session, DisconnectReason::ForcedServerClose);
            }
            self.reschedule(&session);
        }
    }

    // ---- internals ----------------------------------------------------

    fn reschedule(&mut self, session: &K) {
        let at = self.connections.get(session).and_then(|c| c.deadline());
        self.timers.set(session, at);
    }

    /// A socket id not in use: 20 random alphanumeric characters.
    fn fresh_id(&mut self) -> SocketId {
        loop {
            let id: String = (0..20)
                .map(|_| char::from(self.config.rng.sample(rand::distr::Alphanumeric)))
                .collect();
            let id = SocketId::from(id);
            if !self.spaces.values().any(|s| s.sockets.contains_key(&id)) {
                return id;
            }
        }
    }

    /// Forgets a socket: its acks fail, then it disconnects with `reason`.
    fn remove_socket(&mut self, session: &K, namespace: &str, reason: DisconnectReason) {
        let Some(state) = self
            .connections
            .get_mut(session)
            .and_then(|c| c.sockets.remove(namespace))
        else {
            return;
        };
        self.drop_socket(session, namespace.to_owned(), state, reason);
    }

    fn drop_sockets(
        &mut self,
        session: &K,
        mut conn: Box<Connection<K, T>>,
        reason: DisconnectReason,
    ) {
        // CONNECTs never answered: their sessions stay restorable.
        for (namespace, reserved) in std::mem::take(&mut conn.restoring) {
            self.unreserve(&namespace, reserved);
        }
        // CONNECTs held for a probe: nothing is left of them.
        for (namespace, (_, old)) in std::mem::take(&mut conn.held) {
            self.unhold(session, &namespace, &old);
        }
        // Sessions the cluster gave, never accepted, go back to it (those
        // still being looked up go back when their answer comes).
        for (namespace, remote) in std::mem::take(&mut conn.remote) {
            self.give_back_remote(Some(remote), &namespace);
        }
        let mut sockets = conn.sockets.0;
        sockets.sort_by(|a, b| a.0.cmp(&b.0));
        for (namespace, state) in sockets {
            self.drop_socket(session, namespace, state, reason);
        }
    }

    fn drop_socket(
        &mut self,
        session: &K,
        namespace: String,
        mut state: SocketState<T>,
        reason: DisconnectReason,
    ) {
        for (_, token) in state.acks.clear() {
            self.events.push_back(ServerEvent::Ack {
                token,
                result: Err(AckFailure::Disconnected),
            });
        }
        let mut to_cluster = None;
        if let Some(space) = self.spaces.get_mut(&namespace) {
            space.sockets.remove(&state.id);
            if let Some(pid) = &state.pid {
                space.pids.remove(pid);
            }
            if let Some(pid) = state.pid.take().filter(|_| reason.keeps_session()) {
                let mut rooms = space.adapter.rooms().rooms_of(state.id.as_str());
                rooms.sort();
                let kept = Session {
                    sid: state.id.as_str().to_owned(),
                    pid,
                    rooms,
                    data: std::mem::replace(&mut state.data, Value::Null),
                };
                match space.adapter.recovery_mut() {
                    Some(store) => store.persist(kept),
                    None => to_cluster = Some(kept),
                }
            }
            space.adapter.del_all(state.id.as_str());
            if space.disposable() {
                // Dynamic namespaces come and go; an empty one costs nothing to recreate.
                self.spaces.remove(&namespace);
            }
        }
        if let Some(kept) = to_cluster {
            // A session-keeping cluster adapter keeps it in Redis.
            self.persist_remote(&namespace, kept);
        }
        self.events.push_back(ServerEvent::Disconnect {
            session: session.clone(),
            namespace,
            socket: state.id,
            reason,
        });
    }
}

/// A broadcast's transmit to one recipient: the shared encoding, marked
/// droppable when the broadcast is volatile.
fn recipient<K: Clone>(session: &K, encoded: &crate::EncodedPacket, volatile: bool) -> Transmit<K> {
    let (session, packet) = (session.clone(), encoded.clone());
    if volatile {
        Transmit::Volatile { session, packet }
    } else {
        Transmit::Packet { session, packet }
    }
}

/// The CONNECT_ERROR refusing `namespace`: v5 carries `data` next to the
/// message, v4's ERROR packet the message alone.
fn connect_error_packet(
    namespace: &str,
    message: &str,
    data: Option<&serde_json::Value>,
    version: ProtocolVersion,
) -> Result<Packet, Error> {
    let mut packet = Packet::connect_error(Str::from(namespace.to_owned()), message, version)?;
    if let Some(data) = data.filter(|_| version == ProtocolVersion::V5) {
        // A struct rather than a serde_json::Map: the reference's key order
        // (message, then data) whatever serde_json features the application
        // turns on (a Map sorts its keys without `preserve_order`).
        #[derive(serde::Serialize)]
        struct Refusal<'a> {
            message: &'a str,
            data: &'a serde_json::Value,
        }
        let json = serde_json::to_vec(&Refusal { message, data }).map_err(Error::Serialize)?;
        packet.data = Some(Str::from_utf8(Bytes::from(json))?);
    }
    Ok(packet)
}

/// The pid and offset a reconnecting client names in its CONNECT auth,
/// when both are strings (anything else is a fresh session, as the
/// reference).
fn recovery_auth(auth: &Value) -> Option<(&str, &str)> {
    match (auth.get("pid"), auth.get("offset")) {
        (Some(Value::String(pid)), Some(Value::String(offset))) => Some((pid, offset)),
        _ => None,
    }
}
