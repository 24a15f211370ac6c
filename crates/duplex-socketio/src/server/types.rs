//! The plain data the server machine takes and gives: its configuration,
//! socket ids, disconnect reasons, events and transmits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::recovery::RecoveryConfig;
use crate::{AckFailure, EncodedPacket, Value};

/// Settings of a [`Server`](super::Server), defaulted as the reference
/// server's options.
pub struct ServerConfig {
    /// `connectTimeout`: a connection that joins no namespace within it is
    /// closed. Default 45 s; `None` never times out.
    pub connect_timeout: Option<Duration>,
    /// Most namespaces one connection may join (or ask to join) at once.
    /// Default 64.
    pub max_namespaces: usize,
    /// Most acks one socket may await at once. Default 1024.
    pub max_pending_acks: usize,
    /// Most binary attachments in one packet. Default 10 (the reference
    /// parser's `maxAttachments`).
    pub max_attachments: usize,
    /// Most bytes the attachments of one packet may add up to. Default
    /// 10,000,000.
    pub max_attachment_bytes: usize,
    /// Where socket ids (and recovery's private session ids and offset
    /// epochs) come from. Default: seeded from the OS generator.
    pub rng: Box<dyn RngCore + Send>,
    /// Connection state recovery (`connectionStateRecovery`): `None`, the
    /// default, leaves it off and the wire exactly as without it. See
    /// [`crate::recovery`].
    pub recovery: Option<RecoveryConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let decoder = crate::DecoderConfig::default();
        Self {
            connect_timeout: Some(Duration::from_secs(45)),
            max_namespaces: 64,
            max_pending_acks: 1024,
            max_attachments: decoder.max_attachments,
            max_attachment_bytes: decoder.max_attachment_bytes,
            rng: Box::new(StdRng::from_os_rng()),
            recovery: None,
        }
    }
}

impl ServerConfig {
    /// The same settings with socket ids drawn from `rng` (a seeded one
    /// makes tests deterministic).
    pub fn with_rng(mut self, rng: impl RngCore + Send + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }

    /// The same settings with connection state recovery on.
    pub fn with_recovery(mut self, recovery: RecoveryConfig) -> Self {
        self.recovery = Some(recovery);
        self
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("max_namespaces", &self.max_namespaces)
            .field("max_pending_acks", &self.max_pending_acks)
            .field("max_attachments", &self.max_attachments)
            .field("max_attachment_bytes", &self.max_attachment_bytes)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

/// A socket's id: the `sid` of its namespace's CONNECT answer, unique among
/// the sockets of the server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(Arc<str>);

impl SocketId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for SocketId {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<&str> for SocketId {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

/// Maps keyed by socket id are looked up by the `&str` a room selection
/// gives, without building an id (an allocation) per recipient. The hash
/// and equality are the text's, as the derived ones of the `Arc<str>` are.
impl std::borrow::Borrow<str> for SocketId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a socket disconnected, with the reference's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The transport closed (the client went away, or sent an Engine.IO close).
    TransportClose,
    /// The transport failed.
    TransportError,
    /// The client did not answer pings.
    PingTimeout,
    /// The client sent something that does not parse.
    ParseError,
    /// The client left the namespace.
    ClientNamespaceDisconnect,
    /// The server made the socket leave the namespace.
    ServerNamespaceDisconnect,
    /// The server closed the connection.
    ServerShuttingDown,
    /// The server closed the connection (connect timeout, application close).
    ForcedServerClose,
}

impl DisconnectReason {
    /// The reference's text for the reason (`"transport close"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::ServerShuttingDown => "server shutting down",
            Self::ForcedServerClose => "forced server close",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server machine reports, in the order it happened.
///
/// `K` is the caller's session key (the Engine.IO session id), `T` the
/// caller's token for an awaited ack (a callback, a channel...).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent<K, T> {
    /// A client asks to join `namespace`. Answer with
    /// [`Server::accept`](super::Server::accept) or
    /// [`Server::reject`](super::Server::reject) before feeding the
    /// session's next message: until then the namespace's packets are
    /// ignored, as the reference ignores packets for a namespace not joined.
    ConnectRequest {
        /// The connection.
        session: K,
        /// The namespace, without a v4 query.
        namespace: String,
        /// The CONNECT packet's payload (`{}` without one).
        auth: Value,
        /// v4's default namespace, already granted on the wire when the
        /// connection opened: `accept` only registers its socket. Left
        /// unanswered, its packets are ignored.
        implicit: bool,
    },
    /// An event from the client on a connected socket.
    Event {
        /// The connection.
        session: K,
        /// The namespace: the packet's bytes, shared (v4's without its
        /// query).
        namespace: crate::Str,
        /// The socket.
        socket: SocketId,
        /// The event's name.
        name: String,
        /// The arguments after the name, binary attachments in place.
        args: Vec<Value>,
        /// The id to acknowledge with, if the client asked for an ack
        /// (answer with [`Packet::ack_with`](crate::Packet::ack_with) and
        /// [`Server::send`](super::Server::send)).
        ack_id: Option<u64>,
    },
    /// The outcome of an ack the server awaited
    /// ([`Server::emit_with_ack`](super::Server::emit_with_ack)).
    Ack {
        /// The token given with the event.
        token: T,
        /// The client's ack arguments, or why none will come.
        result: Result<Vec<Value>, AckFailure>,
    },
    /// A socket left its namespace. Its awaited acks have been reported
    /// failed just before.
    Disconnect {
        /// The connection.
        session: K,
        /// The namespace.
        namespace: String,
        /// The socket.
        socket: SocketId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// What connection state recovery across nodes (the streams adapter,
/// [`ClusterNode::streams`](crate::cluster::ClusterNode::streams) with
/// offsets) asks of the IO layer: Redis round trips the machine cannot
/// make. Drain with [`Server::poll_recovery_request`](super::Server::poll_recovery_request).
#[derive(Debug, Clone)]
pub enum RecoveryRequest<K> {
    /// A CONNECT of `session` for `namespace` names a session to restore:
    /// run `query` (its [`RestoreQuery::step`](crate::cluster::streams::RestoreQuery::step)s)
    /// and answer with [`Server::restore_answer`](super::Server::restore_answer),
    /// always (the CONNECT waits for it, and a failure is a `None`).
    Restore {
        /// The connection.
        session: K,
        /// The namespace.
        namespace: String,
        /// The restore to run.
        query: crate::cluster::streams::RestoreQuery,
    },
    /// Keep a session: `SET <key> <value> PX <ttl in ms>`.
    Persist {
        /// The namespace.
        namespace: String,
        /// `<prefix><pid>`.
        key: String,
        /// The session, as [`encode_session`](crate::cluster::streams::encode_session) writes it.
        value: String,
        /// How long Redis keeps it (the recovery duration).
        ttl: Duration,
    },
}

/// What the server machine wants done on the Engine.IO sessions.
#[derive(Debug, Clone, PartialEq)]
pub enum Transmit<K> {
    /// Send the packet on `session`: its text as one Engine.IO text
    /// message, then each attachment as one binary message, all or none (a
    /// text packet whose attachments were refused would make the client
    /// read the next packet as an attachment).
    Packet {
        /// The connection.
        session: K,
        /// The encoded packet (broadcasts share its bytes).
        packet: EncodedPacket,
    },
    /// A volatile packet (Node's `volatile` flag): send it as
    /// [`Transmit::Packet`] if the session's transport is writable now
    /// (Engine.IO's `writable`: a poll parked, or nothing being written on
    /// the WebSocket), else drop it, as the reference's
    /// `Client.writeToEngine` does.
    Volatile {
        /// The connection.
        session: K,
        /// The encoded packet.
        packet: EncodedPacket,
    },
    /// Close the Engine.IO session; report it back with
    /// [`Server::closed`](super::Server::closed) once closed.
    Close {
        /// The connection.
        session: K,
    },
    /// Ask whether the client of the Engine.IO session is still there
    /// (`duplex_engineio::server::Server::probe`: v4, one extra ping now,
    /// and the session closes as a ping timeout unless its client answers
    /// within the ping timeout; v3, its next ping or the usual timeout).
    /// Report a sign of life with
    /// [`Server::handle_alive`](super::Server::handle_alive), and the
    /// session's end, as always, with [`Server::closed`](super::Server::closed).
    /// A runtime that cannot probe may ignore it: the CONNECTs it holds
    /// then wait for the session's own heartbeat to end it.
    Probe {
        /// The connection.
        session: K,
    },
}
