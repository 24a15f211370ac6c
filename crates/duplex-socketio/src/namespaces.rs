//! The namespace handshake of one connection: every state and transition
//! lives here, as a table that does not depend on which side plays which
//! role (local and remote follow the same rules, as in h11).
//!
//! | state | CONNECT sent | CONNECT received | CONNECT_ERROR sent | CONNECT_ERROR received | DISCONNECT either way |
//! |---|---|---|---|---|---|
//! | (none) | → `RequestedByLocal` | → `RequestedByPeer` | invalid | ignored | ignored |
//! | `RequestedByLocal` | invalid | → `Connected` (granted) | invalid | → (none) (refused) | → (none) |
//! | `RequestedByPeer` | → `Connected` (grant) | peer error | → (none) (refuse) | ignored | → (none) |
//! | `Connected` | invalid | peer error | invalid | ignored | → (none) |
//!
//! Events and acks may be sent only in `Connected`; received in any other
//! state they are ignored, as the reference server ignores packets for a
//! namespace the socket has not joined. A connection on which no namespace
//! is connected within `connect_timeout` of its creation times out (the
//! reference server's `connectTimeout`).
//!
//! In protocol v4 the default namespace `/` is connected implicitly: a v4
//! server creates it as `RequestedByPeer` and grants it at once (sending
//! `0`), a v4 client creates it as `RequestedByLocal`.

use std::time::{Duration, Instant};

use crate::{DEFAULT_NAMESPACE, Error, Packet, PacketType, ProtocolVersion, Str};

/// Which end of the connection this is; it matters only for v4's implicit
/// default namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The server.
    Server,
    /// The client.
    Client,
}

/// Where one namespace of the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceState {
    /// This side sent CONNECT and waits for the answer.
    RequestedByLocal,
    /// The peer sent CONNECT; this side must grant or refuse it.
    RequestedByPeer,
    /// Connected: events and acks flow.
    Connected,
}

/// Configuration of [`Namespaces`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespacesConfig {
    /// The protocol revision. Default v5.
    pub version: ProtocolVersion,
    /// Which side this is. Default server.
    pub role: Role,
    /// Time for the first namespace to connect. Default 45 s, the
    /// reference server's `connectTimeout`; `None` never times out.
    pub connect_timeout: Option<Duration>,
    /// Most namespaces (connected or being connected) at once. Default 64.
    pub max_namespaces: usize,
}

impl Default for NamespacesConfig {
    fn default() -> Self {
        Self {
            version: ProtocolVersion::V5,
            role: Role::Server,
            connect_timeout: Some(Duration::from_secs(45)),
            max_namespaces: 64,
        }
    }
}

/// What a received packet means for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// The peer asks to join the namespace: answer with
    /// [`Namespaces::accept`] or [`Namespaces::refuse`].
    ConnectRequest,
    /// The peer granted this side's CONNECT.
    Connected,
    /// The peer refused this side's CONNECT.
    Refused,
    /// The peer left the namespace (or never finished joining it).
    Disconnected,
    /// An event or ack in a connected namespace: hand it to the application.
    Message,
    /// A packet for a namespace that is not connected, or a late refusal:
    /// nothing to do.
    Ignored,
}

/// What the timers ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespacesEvent {
    /// No namespace connected within the connect timeout: close the connection.
    ConnectTimeout,
}

/// The namespace handshake state of one connection (one Engine.IO session).
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use duplex_socketio::{Decoder, Namespaces, NamespacesConfig, Received};
///
/// let now = Instant::now();
/// let mut ns = Namespaces::new(NamespacesConfig::default(), now);
/// let connect = Decoder::default().receive_text(Bytes::from_static(b"0/admin,")).unwrap().unwrap();
/// assert_eq!(ns.handle_packet(&connect).unwrap(), Received::ConnectRequest);
/// let answer = ns.accept("/admin", "oSO0OpakMV_3jnilAAAA").unwrap();
/// assert_eq!(answer.encode().text, r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#);
/// assert!(ns.is_connected("/admin"));
/// ```
#[derive(Debug)]
pub struct Namespaces {
    config: NamespacesConfig,
    states: States,
    connect_deadline: Option<Instant>,
    timed_out: bool,
    timeout_reported: bool,
    transmit: Option<Packet>,
}

/// A connection's namespace states, in the order they began: a vector
/// searched in full, since a connection has one namespace or a few (at
/// most `max_namespaces`, 64 by default), where a map hashed the name
/// with SipHash (its keys are the peer's) on every packet received and
/// sent.
#[derive(Debug, Default)]
struct States(Vec<(Str, NamespaceState)>);

impl States {
    fn get(&self, namespace: &str) -> Option<&NamespaceState> {
        self.0
            .iter()
            .find(|(n, _)| n.as_str() == namespace)
            .map(|(_, s)| s)
    }

    fn insert(&mut self, namespace: Str, state: NamespaceState) {
        match self.0.iter_mut().find(|(n, _)| *n == namespace) {
            Some((_, slot)) => *slot = state,
            None => self.0.push((namespace, state)),
        }
    }

    fn remove(&mut self, namespace: &str) {
        self.0.retain(|(n, _)| n.as_str() != namespace);
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Namespaces {
    /// The namespaces of a connection opened at `now`.
    pub fn new(config: NamespacesConfig, now: Instant) -> Self {
        let mut this = Self {
            config,
            states: States::default(),
            connect_deadline: config.connect_timeout.map(|t| now + t),
            timed_out: false,
            timeout_reported: false,
            transmit: None,
        };
        if config.version == ProtocolVersion::V4 {
            let default = Str::from_static(DEFAULT_NAMESPACE);
            match config.role {
                Role::Server => {
                    this.states
                        .insert(default.clone(), NamespaceState::Connected);
                    // The implicit grant `0`; an empty connect never fails to build.
                    this.transmit = Packet::connect(default, None).ok();
                }
                Role::Client => {
                    this.states
                        .insert(default, NamespaceState::RequestedByLocal);
                }
            }
        }
        this
    }

    /// The state of `namespace`, `None` if neither connected nor connecting.
    pub fn state(&self, namespace: &str) -> Option<NamespaceState> {
        self.states.get(namespace).copied()
    }

    /// Whether `namespace` is connected.
    pub fn is_connected(&self, namespace: &str) -> bool {
        self.state(namespace) == Some(NamespaceState::Connected)
    }

    /// The connected namespaces.
    pub fn connected(&self) -> impl Iterator<Item = &Str> {
        self.states
            .0
            .iter()
            .filter(|(_, s)| *s == NamespaceState::Connected)
            .map(|(n, _)| n)
    }

    /// A packet the protocol itself wants sent (v4's implicit `0` for the
    /// default namespace).
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        self.transmit.take()
    }

    /// Applies a received packet.
    pub fn handle_packet(&mut self, packet: &Packet) -> Result<Received, Error> {
        use NamespaceState as S;
        let state = self.states.get(self.key_str(packet)).copied();
        Ok(match (packet.packet_type, state) {
            (PacketType::Connect, None) => {
                if self.states.len() >= self.config.max_namespaces {
                    return Err(Error::TooManyNamespaces {
                        limit: self.config.max_namespaces,
                    });
                }
                self.states.insert(self.key(packet), S::RequestedByPeer);
                Received::ConnectRequest
            }
            (PacketType::Connect, Some(S::RequestedByLocal)) => {
                self.set_connected(self.key(packet));
                Received::Connected
            }
            (PacketType::Connect, Some(S::RequestedByPeer | S::Connected)) => {
                return Err(Error::DuplicateConnect);
            }
            (PacketType::ConnectError, Some(S::RequestedByLocal)) => {
                self.states.remove(self.key_str(packet));
                Received::Refused
            }
            (PacketType::Disconnect, Some(_)) => {
                self.states.remove(self.key_str(packet));
                Received::Disconnected
            }
            (t, Some(S::Connected)) if t.is_event() || t.is_ack() => Received::Message,
            _ => Received::Ignored,
        })
    }

    /// Checks and records a packet this side is about to send.
    pub fn prepare_send(&mut self, packet: &Packet) -> Result<(), Error> {
        use NamespaceState as S;
        let state = self.states.get(self.key_str(packet)).copied();
        match (packet.packet_type, state) {
            (PacketType::Connect, None) => {
                if self.states.len() >= self.config.max_namespaces {
                    return Err(Error::InvalidState);
                }
                self.states.insert(self.key(packet), S::RequestedByLocal);
            }
            (PacketType::Connect, Some(S::RequestedByPeer)) => self.set_connected(self.key(packet)),
            (PacketType::ConnectError, Some(S::RequestedByPeer))
            | (PacketType::Disconnect, Some(_)) => {
                self.states.remove(self.key_str(packet));
            }
            // The reference refuses unknown namespaces that never entered any state.
            (PacketType::ConnectError, None) => {}
            (t, Some(S::Connected)) if t.is_event() || t.is_ack() => {}
            _ => return Err(Error::InvalidState),
        }
        Ok(())
    }

    /// Grants the peer's CONNECT: records it and returns the answer (`{"sid":...}`
    /// in v5; no payload in v4).
    pub fn accept(&mut self, namespace: &str, sid: &str) -> Result<Packet, Error> {
        if self.state(namespace) != Some(NamespaceState::RequestedByPeer) {
            return Err(Error::InvalidState);
        }
        let ns = Str::from(namespace.to_owned());
        let packet = match self.config.version {
            ProtocolVersion::V5 => Packet::connect_ok(ns, sid)?,
            ProtocolVersion::V4 => Packet::connect(ns, None)?,
        };
        self.prepare_send(&packet)?;
        Ok(packet)
    }

    /// Refuses the peer's CONNECT (or answers a CONNECT for a namespace
    /// that does not exist) with `message`.
    pub fn refuse(&mut self, namespace: &str, message: &str) -> Result<Packet, Error> {
        let packet = Packet::connect_error(
            Str::from(namespace.to_owned()),
            message,
            self.config.version,
        )?;
        self.prepare_send(&packet)?;
        Ok(packet)
    }

    /// The namespace a packet is for, to look it up: no copy, no clone.
    fn key_str<'a>(&self, packet: &'a Packet) -> &'a str {
        if self.config.version == ProtocolVersion::V4 {
            return packet.namespace_and_query().0;
        }
        packet.namespace.as_str()
    }

    /// The namespace a packet is for, to keep as a key.
    fn key(&self, packet: &Packet) -> Str {
        if self.config.version == ProtocolVersion::V4 {
            let (path, query) = packet.namespace_and_query();
            if query.is_some() {
                return Str::from(path.to_owned());
            }
        }
        packet.namespace.clone()
    }

    fn set_connected(&mut self, key: Str) {
        self.states.insert(key, NamespaceState::Connected);
    }

    /// Advances the connect timer to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.connect_deadline.is_some_and(|d| d <= now) {
            self.connect_deadline = None;
            // As the reference: checked once, at the deadline.
            if !self
                .states
                .0
                .iter()
                .any(|(_, s)| *s == NamespaceState::Connected)
            {
                self.timed_out = true;
            }
        }
    }

    /// When [`Namespaces::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.connect_deadline
    }

    /// The next timer event.
    pub fn poll_event(&mut self) -> Option<NamespacesEvent> {
        if self.timed_out && !self.timeout_reported {
            self.timeout_reported = true;
            return Some(NamespacesEvent::ConnectTimeout);
        }
        None
    }
}
