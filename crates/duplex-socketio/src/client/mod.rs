//! The client side of Socket.IO v5, sans-IO: the namespaces a client wants
//! and their CONNECT / CONNECT_ERROR / DISCONNECT handshake (through
//! [`Namespaces`] in the client role), emits buffered until their namespace
//! is connected, acknowledgements both ways (through [`Acks`]), binary
//! packets reassembled (through [`Decoder`]), and the reconnection policy
//! ([`Reconnection`], [`Backoff`]).
//!
//! [`Client`] sits above one Engine.IO connection at a time and is told
//! when it opens ([`Client::handle_open`]) and closes ([`Client::handle_close`]),
//! fed with its messages ([`Client::handle_text`],
//! [`Client::handle_binary`]), and hands out the messages to send
//! ([`Client::poll_transmit`]). When the connection is lost it decides
//! whether and when to open a new one ([`ClientEvent::Reconnect`],
//! [`ClientEvent::GaveUp`]). Time and randomness are inputs.

mod backoff;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use rand::{RngCore, SeedableRng, rngs::StdRng};

pub use crate::error::AckFailure;
pub use backoff::{Backoff, Reconnection};

use crate::{
    Acks, Decoder, DecoderConfig, Error, NamespaceState, Namespaces, NamespacesConfig, Packet,
    ProtocolVersion, Received, Role, Str, Value,
};

/// The payload of a [`ClientEvent::ConnectError`] this side makes itself
/// (the connection could not be opened, or a join was refused before
/// reaching the server): `{"message": <message>}`, the shape of a v5
/// server's CONNECT_ERROR, so that applications read both alike.
pub fn local_connect_error(message: &str) -> Value {
    Value::Object(vec![("message".to_owned(), Value::from(message))])
}

/// The CONNECT payload: the application's `auth`, with the pid and last
/// offset in front when the server gave a pid (the reference's
/// `Object.assign({pid, offset}, auth)`: the application's keys win, and no
/// offset is sent before the first one arrived).
fn recovery_auth(recovery: &mut Recovery, auth: Option<&Value>) -> Option<Value> {
    let Some(pid) = &recovery.pid else {
        return auth.cloned();
    };
    let mut fields = vec![("pid".to_owned(), Value::from(pid.as_str()))];
    if let Some(offset) = &recovery.last_offset {
        fields.push(("offset".to_owned(), Value::from(offset.as_str())));
    }
    match auth {
        None => {}
        Some(Value::Object(app)) => {
            for (key, value) in app {
                match fields.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = value.clone(),
                    None => fields.push((key.clone(), value.clone())),
                }
            }
        }
        // Not an object: nothing to merge into.
        Some(other) => return Some(other.clone()),
    }
    Some(Value::Object(fields))
}

/// The disconnect reason when the server left the namespace (DISCONNECT).
pub const IO_SERVER_DISCONNECT: &str = "io server disconnect";
/// The disconnect reason when this side left the namespace or closed.
pub const IO_CLIENT_DISCONNECT: &str = "io client disconnect";

/// Client settings.
pub struct ClientConfig {
    /// Decoder limits. Default: [`DecoderConfig::default`] (v5).
    pub decoder: DecoderConfig,
    /// Most acks awaited per namespace. Default 1024.
    pub max_pending_acks: usize,
    /// Most emits buffered per namespace while it is not connected (the
    /// reference buffers without limit). Default 1024.
    pub max_buffered: usize,
    /// Most namespaces on the connection. Default 64.
    pub max_namespaces: usize,
    /// Whether and when to reconnect.
    pub reconnection: Reconnection,
    /// The random source of the backoff's jitter. Default: a generator
    /// seeded from the OS.
    pub rng: Box<dyn RngCore + Send>,
}

impl ClientConfig {
    /// Replaces the random source, e.g. with a seeded one in tests.
    pub fn with_rng(mut self, rng: impl RngCore + Send + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            decoder: DecoderConfig::default(),
            max_pending_acks: 1024,
            max_buffered: 1024,
            max_namespaces: 64,
            reconnection: Reconnection::default(),
            rng: Box::new(StdRng::from_os_rng()),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("decoder", &self.decoder)
            .field("max_pending_acks", &self.max_pending_acks)
            .field("max_buffered", &self.max_buffered)
            .field("max_namespaces", &self.max_namespaces)
            .field("reconnection", &self.reconnection)
            .finish_non_exhaustive()
    }
}

/// A message to send on the Engine.IO connection, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// A text message: a packet, as the text type Engine.IO takes.
    Text(Str),
    /// A binary message: an attachment of the packet before it.
    Binary(Bytes),
}

/// What happened, for the application (or the adapter) to act on.
#[derive(Debug)]
pub enum ClientEvent<T> {
    /// The namespace is connected (again).
    Connect {
        /// The namespace.
        namespace: String,
        /// The socket id the server gave (empty if it gave none).
        sid: String,
    },
    /// The namespace could not connect: the server refused it (followed by
    /// [`ClientEvent::Removed`]) or the connection could not be opened
    /// (`{"message": <reason>}`; the client retries).
    ConnectError {
        /// The namespace.
        namespace: String,
        /// The CONNECT_ERROR payload.
        data: Value,
    },
    /// An event from the server.
    Event {
        /// The namespace.
        namespace: String,
        /// The event name.
        name: String,
        /// Its arguments, binaries in place.
        args: Vec<Value>,
        /// The ack id to answer with [`Client::ack`], if the server asked.
        ack_id: Option<u64>,
    },
    /// The answer to an emit that asked for one.
    AckReceived {
        /// The namespace.
        namespace: String,
        /// The token given to [`Client::emit`].
        token: T,
        /// The ack's arguments.
        args: Vec<Value>,
    },
    /// No answer will come to an emit that asked for one.
    AckFailed {
        /// The namespace.
        namespace: String,
        /// The token given to [`Client::emit`].
        token: T,
        /// Why.
        failure: AckFailure,
    },
    /// The namespace disconnected: [`IO_SERVER_DISCONNECT`],
    /// [`IO_CLIENT_DISCONNECT`] (both followed by [`ClientEvent::Removed`])
    /// or the reason the connection closed (`"transport close"`,
    /// `"ping timeout"`, ...; the namespace connects again after
    /// reconnection).
    Disconnect {
        /// The namespace.
        namespace: String,
        /// Why.
        reason: &'static str,
    },
    /// The namespace is no longer wanted: no more events for it.
    Removed {
        /// The namespace.
        namespace: String,
    },
    /// Time to open a new Engine.IO connection (after the backoff).
    Reconnect,
    /// Reconnection is off or exhausted, or the client closed: nothing
    /// more will happen.
    GaveUp,
}

/// A namespace the application asked for.
#[derive(Debug)]
struct Socket<T> {
    auth: Option<Value>,
    connected: bool,
    /// Encoded emits waiting for the namespace to connect, with their ack
    /// ids (to drop them when the ack times out first).
    buffer: VecDeque<(Option<u64>, Packet)>,
    acks: Acks<T>,
    /// Connection state recovery: what the client sends back to be
    /// recovered, and what it needs not to deliver an event twice.
    recovery: Recovery,
}

/// Connection state recovery on the client (socket.io-client's `_pid`,
/// `_lastOffset`, `recovered`, and its buffer of events received before
/// the CONNECT answer).
#[derive(Debug, Default)]
struct Recovery {
    /// The private session id of the last CONNECT answer, if the server
    /// has recovery on.
    pid: Option<String>,
    /// The offset of the last event received.
    last_offset: Option<String>,
    /// The last CONNECT answer restored the session.
    recovered: bool,
    /// Events that arrived before the CONNECT answer (the reference server
    /// replays missed events before it), delivered after it.
    early: VecDeque<Packet>,
}

/// Where the client is between connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// An Engine.IO connection is being opened.
    Connecting,
    /// The connection is open.
    Open,
    /// Waiting for the backoff to open a new one.
    Waiting(Instant),
    /// Closed or given up.
    Done,
}

/// The Socket.IO client of one manager (the reference's `Manager` and its
/// `Socket`s), generic over the token `T` the caller attaches to emits that
/// want an ack (a channel, a callback id).
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use duplex_socketio::client::{Client, ClientConfig, ClientEvent, Transmit};
///
/// let now = Instant::now();
/// let mut client: Client<&str> = Client::new(ClientConfig::default());
/// client.join("/", None).unwrap();
/// client.emit("/", "hello", &[1.into()], Some(("my-ack", None)), now).unwrap(); // buffered
/// client.handle_open(now);
/// assert_eq!(client.poll_transmit(), Some(Transmit::Text("0".into())));
/// client.handle_text(Bytes::from_static(br#"0{"sid":"abc"}"#), now).unwrap();
/// assert!(matches!(client.poll_event(), Some(ClientEvent::Connect { sid, .. }) if sid == "abc"));
/// assert_eq!(client.poll_transmit(), Some(Transmit::Text(r#"20["hello",1]"#.into())));
/// client.handle_text(Bytes::from_static(b"30[\"ok\"]"), now).unwrap();
/// assert!(matches!(client.poll_event(), Some(ClientEvent::AckReceived { token: "my-ack", .. })));
/// ```
#[derive(Debug)]
pub struct Client<T> {
    config: ClientConfig,
    sockets: BTreeMap<String, Socket<T>>,
    /// The namespace handshake of the open connection.
    handshake: Option<Namespaces>,
    decoder: Decoder,
    phase: Phase,
    /// Failed connection attempts since the last successful one.
    attempt: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent<T>>,
}

impl<T> Client<T> {
    /// A client whose first Engine.IO connection the caller opens now.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            decoder: Decoder::new(config.decoder),
            config,
            sockets: BTreeMap::new(),
            handshake: None,
            phase: Phase::Connecting,
            attempt: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Whether `namespace` is connected.
    pub fn is_connected(&self, namespace: &str) -> bool {
        self.sockets.get(namespace).is_some_and(|s| s.connected)
    }

    /// Whether the Engine.IO connection is open.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the client closed or gave up.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Failed connection attempts since the last successful one.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the last connection of `namespace` restored its session
    /// (socket.io-client's `socket.recovered`): the server answered with
    /// the private session id the client sent, and replays what was
    /// missed.
    pub fn recovered(&self, namespace: &str) -> bool {
        self.sockets
            .get(namespace)
            .is_some_and(|s| s.recovery.recovered)
    }

    /// The private session id `namespace` recovers with, if the server has
    /// connection state recovery on.
    pub fn pid(&self, namespace: &str) -> Option<&str> {
        self.sockets.get(namespace)?.recovery.pid.as_deref()
    }

    /// The offset of the last event `namespace` received, sent back on
    /// reconnection.
    pub fn last_offset(&self, namespace: &str) -> Option<&str> {
        self.sockets.get(namespace)?.recovery.last_offset.as_deref()
    }

    /// Joins `namespace` with the `auth` payload: CONNECT now if the
    /// connection is open, else once it is (and again after each
    /// reconnection).
    pub fn join(&mut self, namespace: &str, auth: Option<Value>) -> Result<(), Error> {
        if !namespace.starts_with('/') || namespace.contains(',') {
            return Err(Error::InvalidNamespace);
        }
        if self.phase == Phase::Done {
            return Err(Error::InvalidState);
        }
        if let Some(socket) = self.sockets.get_mut(namespace) {
            socket.auth = auth;
            return Ok(());
        }
        if self.sockets.len() >= self.config.max_namespaces {
            return Err(Error::TooManyNamespaces {
                limit: self.config.max_namespaces,
            });
        }
        self.sockets.insert(
            namespace.to_owned(),
            Socket {
                auth,
                connected: false,
                buffer: VecDeque::new(),
                acks: Acks::new(self.config.max_pending_acks),
                recovery: Recovery::default(),
            },
        );
        self.send_connect(namespace);
        Ok(())
    }

    /// Leaves `namespace`: DISCONNECT if it is connected or connecting,
    /// its awaited acks fail, and [`ClientEvent::Disconnect`] with
    /// [`IO_CLIENT_DISCONNECT`] then [`ClientEvent::Removed`] follow.
    pub fn leave(&mut self, namespace: &str) {
        let Some(socket) = self.sockets.remove(namespace) else {
            return;
        };
        self.send_disconnect(namespace);
        self.drop_socket(namespace, socket, IO_CLIENT_DISCONNECT);
    }

    /// Emits `event` with `args` on `namespace`, now if it is connected,
    /// else once it is. With `ack`, the token comes back in
    /// [`ClientEvent::AckReceived`] or [`ClientEvent::AckFailed`] (after the
    /// deadline, if any, even while the emit is still buffered).
    pub fn emit(
        &mut self,
        namespace: &str,
        event: &str,
        args: &[Value],
        ack: Option<(T, Option<Instant>)>,
        now: Instant,
    ) -> Result<(), Error> {
        let Some(socket) = self.sockets.get_mut(namespace) else {
            if let Some((token, _)) = ack {
                self.fail(namespace, token, AckFailure::Disconnected);
            }
            return Ok(());
        };
        if !socket.connected && socket.buffer.len() >= self.config.max_buffered {
            if let Some((token, _)) = ack {
                self.fail(namespace, token, AckFailure::BufferFull);
            }
            return Ok(());
        }
        let id = match ack {
            None => None,
            Some((token, deadline)) => {
                if socket.acks.len() >= self.config.max_pending_acks {
                    self.fail(namespace, token, AckFailure::TooManyPending);
                    return Ok(());
                }
                // Deadlines already past expire at the next timer check.
                let deadline = deadline.map(|d| d.max(now));
                Some(socket.acks.register(token, deadline)?)
            }
        };
        let packet = match Packet::event_with(Str::from(namespace.to_owned()), event, args, id) {
            Ok(p) => p,
            Err(e) => {
                if let Some(token) = id.and_then(|id| socket.acks.resolve(id)) {
                    self.fail(namespace, token, AckFailure::Disconnected);
                }
                return Err(e);
            }
        };
        if socket.connected {
            self.send(&packet);
        } else {
            socket.buffer.push_back((id, packet));
        }
        Ok(())
    }

    /// Answers the server's event `id` on `namespace` with `args` (dropped
    /// if the namespace is not connected: the server forgot it).
    pub fn ack(&mut self, namespace: &str, id: u64, args: &[Value]) -> Result<(), Error> {
        if !self.is_connected(namespace) {
            return Ok(());
        }
        let packet = Packet::ack_with(Str::from(namespace.to_owned()), args, id)?;
        self.send(&packet);
        Ok(())
    }

    /// Closes the client for good: DISCONNECT for every connected
    /// namespace, every awaited ack fails, every namespace gets
    /// [`ClientEvent::Disconnect`] ([`IO_CLIENT_DISCONNECT`]) and
    /// [`ClientEvent::Removed`], then [`ClientEvent::GaveUp`]. The caller
    /// then closes the Engine.IO connection.
    pub fn close(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        for (namespace, socket) in std::mem::take(&mut self.sockets) {
            if socket.connected {
                self.send_disconnect(&namespace);
            }
            self.drop_socket(&namespace, socket, IO_CLIENT_DISCONNECT);
        }
        self.handshake = None;
        self.phase = Phase::Done;
        self.events.push_back(ClientEvent::GaveUp);
    }

    /// The Engine.IO connection opened at `now`: CONNECT every namespace.
    pub fn handle_open(&mut self, now: Instant) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Open;
        self.attempt = 0;
        self.decoder = Decoder::new(self.config.decoder);
        self.handshake = Some(Namespaces::new(
            NamespacesConfig {
                version: ProtocolVersion::V5,
                role: Role::Client,
                connect_timeout: None,
                max_namespaces: self.config.max_namespaces,
            },
            now,
        ));
        let names: Vec<String> = self.sockets.keys().cloned().collect();
        for name in names {
            self.send_connect(&name);
        }
    }

    /// The Engine.IO connection closed at `now` (or could not be opened)
    /// for `reason` (the reference client's words: `"transport close"`,
    /// `"ping timeout"`, `"timeout"`...). Connected namespaces get
    /// [`ClientEvent::Disconnect`]; if the connection never opened, every
    /// namespace gets [`ClientEvent::ConnectError`]. Then the reconnection
    /// policy decides: [`ClientEvent::Reconnect`] after the backoff, or
    /// [`ClientEvent::GaveUp`].
    pub fn handle_close(&mut self, reason: &'static str, now: Instant) {
        let was_open = match self.phase {
            Phase::Open => true,
            Phase::Connecting => false,
            Phase::Waiting(_) | Phase::Done => return,
        };
        self.handshake = None;
        self.transmits.clear();
        if was_open {
            for (namespace, socket) in &mut self.sockets {
                if std::mem::take(&mut socket.connected) {
                    self.events.push_back(ClientEvent::Disconnect {
                        namespace: namespace.clone(),
                        reason,
                    });
                }
            }
        } else {
            let data = local_connect_error(reason);
            for namespace in self.sockets.keys() {
                self.events.push_back(ClientEvent::ConnectError {
                    namespace: namespace.clone(),
                    data: data.clone(),
                });
            }
        }
        if self.config.reconnection.allows(self.attempt) {
            let delay = self
                .config
                .reconnection
                .backoff
                .delay_with(self.attempt, self.config.rng.as_mut());
            self.attempt = self.attempt.saturating_add(1);
            self.phase = Phase::Waiting(now + delay);
        } else {
            for (namespace, socket) in std::mem::take(&mut self.sockets) {
                self.fail_all(&namespace, socket);
                self.events.push_back(ClientEvent::Removed { namespace });
            }
            self.phase = Phase::Done;
            self.events.push_back(ClientEvent::GaveUp);
        }
    }

    /// A text message arrived. An error is the server's fault: close the
    /// connection (`"parse error"`).
    pub fn handle_text(&mut self, text: Bytes, now: Instant) -> Result<(), Error> {
        match self.decoder.receive_text(text)? {
            Some(packet) => self.on_packet(packet, now),
            None => Ok(()),
        }
    }

    /// A binary message arrived (an attachment). An error is the server's
    /// fault: close the connection (`"parse error"`).
    pub fn handle_binary(&mut self, data: Bytes, now: Instant) -> Result<(), Error> {
        match self.decoder.receive_binary(data)? {
            Some(packet) => self.on_packet(packet, now),
            None => Ok(()),
        }
    }

    /// Advances the timers to `now`: acks expire, the backoff ends.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (namespace, socket) in &mut self.sockets {
            socket.acks.handle_timeout(now);
            while let Some((id, token)) = socket.acks.poll_expired() {
                // As the reference: a timed-out emit still buffered is not sent.
                socket.buffer.retain(|(b, _)| *b != Some(id));
                expired.push((namespace.clone(), token));
            }
        }
        for (namespace, token) in expired {
            self.fail(&namespace, token, AckFailure::Timeout);
        }
        if let Phase::Waiting(at) = self.phase {
            if at <= now {
                self.phase = Phase::Connecting;
                self.events.push_back(ClientEvent::Reconnect);
            }
        }
    }

    /// When [`Client::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let acks = self
            .sockets
            .values()
            .filter_map(|s| s.acks.poll_timeout())
            .min();
        let retry = match self.phase {
            Phase::Waiting(at) => Some(at),
            _ => None,
        };
        match (acks, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent<T>> {
        self.events.pop_front()
    }

    fn on_packet(&mut self, packet: Packet, _now: Instant) -> Result<(), Error> {
        let Some(handshake) = self.handshake.as_mut() else {
            return Ok(());
        };
        let received = handshake.handle_packet(&packet)?;
        let name = packet.namespace.as_str().to_owned();
        let before_answer = handshake.state(&name) == Some(NamespaceState::RequestedByLocal);
        match received {
            Received::Connected => {
                let answer = packet.value().ok().flatten();
                let field = |key: &str| {
                    answer
                        .as_ref()
                        .and_then(|v| v.get(key).and_then(Value::as_str).map(str::to_owned))
                };
                let sid = field("sid").unwrap_or_default();
                let pid = field("pid");
                let Some(socket) = self.sockets.get_mut(&name) else {
                    // Left while connecting: the DISCONNECT is on its way.
                    return Ok(());
                };
                socket.connected = true;
                let recovery = &mut socket.recovery;
                // As the reference: recovered when the server answers with
                // the pid the client sent.
                recovery.recovered = pid.is_some() && recovery.pid == pid;
                recovery.pid = pid;
                if !recovery.recovered {
                    // A new session: offsets of the old one mean nothing to it.
                    recovery.last_offset = None;
                }
                let early: Vec<Packet> = recovery.early.drain(..).collect();
                let buffered: Vec<Packet> = socket.buffer.drain(..).map(|(_, p)| p).collect();
                self.events.push_back(ClientEvent::Connect {
                    namespace: name.clone(),
                    sid,
                });
                for p in early {
                    self.on_event(&name, &p);
                }
                for p in &buffered {
                    self.send(p);
                }
            }
            Received::Refused => {
                if let Some(socket) = self.sockets.remove(&name) {
                    let data = packet.value().ok().flatten().unwrap_or(Value::Null);
                    self.fail_all(&name, socket);
                    self.events.push_back(ClientEvent::ConnectError {
                        namespace: name.clone(),
                        data,
                    });
                    self.events
                        .push_back(ClientEvent::Removed { namespace: name });
                }
            }
            Received::Disconnected => {
                if let Some(socket) = self.sockets.remove(&name) {
                    self.drop_socket(&name, socket, IO_SERVER_DISCONNECT);
                }
            }
            Received::Message if packet.packet_type.is_event() => {
                self.on_event(&name, &packet);
            }
            Received::Ignored if packet.packet_type.is_event() && before_answer => {
                // Before the CONNECT answer: the reference server writes
                // the missed events of a restored session first.
                let max = self.config.max_buffered;
                if let Some(socket) = self.sockets.get_mut(&name) {
                    if socket.recovery.early.len() < max {
                        socket.recovery.early.push_back(packet);
                    }
                }
            }
            Received::Message => {
                let Some(socket) = self.sockets.get_mut(&name) else {
                    return Ok(());
                };
                // Unknown, answered or expired ids are ignored, as the reference.
                if let Some(token) = packet.ack_id.and_then(|id| socket.acks.resolve(id)) {
                    let args = match packet.value() {
                        Ok(Some(Value::Array(items))) => items,
                        _ => Vec::new(),
                    };
                    self.events.push_back(ClientEvent::AckReceived {
                        namespace: name,
                        token,
                        args,
                    });
                }
            }
            // A server does not ask a client to join; late refusals and
            // packets of other namespaces need nothing.
            Received::ConnectRequest | Received::Ignored => {}
        }
        Ok(())
    }

    /// An event of a connected namespace, delivered with its arguments
    /// as they came; with recovery on, its last string argument is
    /// remembered as the offset to resume from.
    fn on_event(&mut self, namespace: &str, packet: &Packet) {
        let Some(socket) = self.sockets.get_mut(namespace) else {
            return;
        };
        let args = match packet.value() {
            Ok(Some(Value::Array(items))) => items,
            _ => return,
        };
        // As the reference client: the server appends the offset to every
        // event it stores (those without an ack id), and the client cannot
        // tell an offset from an application's string, so it keeps the
        // argument and only remembers it. Taking it off would eat the last
        // string of events the server did not store (volatile ones, or
        // every event under an adapter that keeps no log).
        if socket.recovery.pid.is_some() && packet.ack_id.is_none() && args.len() > 1 {
            if let Some(Value::String(offset)) = args.last() {
                socket.recovery.last_offset = Some(offset.clone());
            }
        }
        let mut args = args.into_iter();
        let Some(Value::String(event)) = args.next() else {
            return;
        };
        self.events.push_back(ClientEvent::Event {
            namespace: namespace.to_owned(),
            name: event,
            args: args.collect(),
            ack_id: packet.ack_id,
        });
    }

    fn send(&mut self, packet: &Packet) {
        let wire = packet.encode();
        self.transmits.push_back(Transmit::Text(wire.text));
        self.transmits
            .extend(wire.attachments.into_iter().map(Transmit::Binary));
    }

    fn send_connect(&mut self, namespace: &str) {
        let Some(handshake) = self.handshake.as_mut() else {
            return;
        };
        let Some(socket) = self.sockets.get_mut(namespace) else {
            return;
        };
        socket.recovery.early.clear();
        let auth = recovery_auth(&mut socket.recovery, socket.auth.as_ref()).map(|a| a.encode().0);
        let Ok(packet) = Packet::connect(Str::from(namespace.to_owned()), auth) else {
            return;
        };
        if handshake.prepare_send(&packet).is_ok() {
            self.send(&packet);
        }
    }

    fn send_disconnect(&mut self, namespace: &str) {
        let Some(handshake) = self.handshake.as_mut() else {
            return;
        };
        if handshake.state(namespace).is_none() {
            return;
        }
        if let Ok(packet) = Packet::disconnect(Str::from(namespace.to_owned())) {
            if handshake.prepare_send(&packet).is_ok() {
                self.send(&packet);
            }
        }
    }

    /// Ends a namespace that was removed from `sockets`.
    fn drop_socket(&mut self, namespace: &str, socket: Socket<T>, reason: &'static str) {
        self.fail_all(namespace, socket);
        self.events.push_back(ClientEvent::Disconnect {
            namespace: namespace.to_owned(),
            reason,
        });
        self.events.push_back(ClientEvent::Removed {
            namespace: namespace.to_owned(),
        });
    }

    fn fail_all(&mut self, namespace: &str, mut socket: Socket<T>) {
        for (_, token) in socket.acks.clear() {
            self.fail(namespace, token, AckFailure::Disconnected);
        }
    }

    fn fail(&mut self, namespace: &str, token: T, failure: AckFailure) {
        self.events.push_back(ClientEvent::AckFailed {
            namespace: namespace.to_owned(),
            token,
            failure,
        });
    }
}

#[cfg(test)]
mod tests;
