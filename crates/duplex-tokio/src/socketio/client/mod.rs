//! A Socket.IO v5 client (Engine.IO v4) over the duplex WebSocket client
//! and over HTTP long-polling (hyper), with the upgrade from polling to
//! WebSocket, namespaces multiplexed on one connection, acks both ways,
//! binary attachments, and reconnection with exponential backoff and jitter.
//!
//! ```no_run
//! use std::time::Duration;
//! use duplex_tokio::socketio::client::{ClientConfig, ClientEvent, Manager};
//! use duplex_tokio::socketio::Value;
//!
//! # async fn demo() {
//! let manager = Manager::new(ClientConfig::new("http://127.0.0.1:3000"));
//! let mut socket = manager.socket("/", None);
//! while let Some(event) = socket.next_event().await {
//!     match event {
//!         ClientEvent::Connect { .. } => {
//!             socket.emit("message", vec![Value::from("hello")]);
//!             let reply = socket
//!                 .emit_with_ack("message-with-ack", vec![Value::from(1)], Some(Duration::from_secs(5)))
//!                 .await;
//!         }
//!         ClientEvent::Event { name, args, ack } => { /* ... */ }
//!         ClientEvent::Disconnect { reason } => { /* reconnects by itself */ }
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! This module is the driver only: it owns the HTTP client, the WebSocket,
//! the tokio timers and the channels to the application. Every protocol
//! decision is made by two sans-IO machines it feeds:
//! [`duplex_engineio::client::ClientSession`] (the handshake, the ping
//! watchdog, when to GET and POST, the upgrade probe) and
//! [`duplex_socketio::client::Client`] (namespaces, buffered emits, acks,
//! binary packets, and when to reconnect).

mod driver;
mod handles;
mod io;

use std::time::Duration;

use duplex_engineio::client::ClientConfig as EioConfig;
use duplex_engineio::client_url::EngineIoUrl;
use duplex_engineio::{Limits, TransportKind};
use duplex_socketio::Value;
use duplex_socketio::client::{Backoff, ClientConfig as SioConfig, Reconnection};
use duplex_socketio::engineio_binding::DEFAULT_PATH;
use rand::Rng;

pub use handles::{ClientAck, ClientSocket, Manager};

/// Which transports the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTransports {
    /// HTTP long-polling only.
    Polling,
    /// WebSocket only.
    WebSocket,
    /// Long-polling first, then upgraded to WebSocket (the reference
    /// client's default).
    PollingThenWebSocket,
}

/// Client settings, named and defaulted as the reference client's options.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The server, `http://host:port` or `https://host:port` (`ws`/`wss`
    /// URLs are derived from it; https needs the `tls` feature).
    pub url: String,
    /// `path`. Default `/socket.io/`.
    pub path: String,
    /// `transports` (and `upgrade`). Default polling then WebSocket.
    pub transports: ClientTransports,
    /// `reconnection`. Default on.
    pub reconnection: bool,
    /// `reconnectionAttempts`. Default `None`: no limit.
    pub reconnection_attempts: Option<u32>,
    /// `reconnectionDelay`. Default 1 s.
    pub reconnection_delay: Duration,
    /// `reconnectionDelayMax`. Default 5 s.
    pub reconnection_delay_max: Duration,
    /// `randomizationFactor`: the jitter, 0 to 1. Default 0.5.
    pub randomization_factor: f64,
    /// `timeout`: the longest the Engine.IO handshake may take. Default 20 s.
    pub timeout: Duration,
    /// Extra query parameters of every request, after the Engine.IO ones
    /// (pairs named `EIO`, `transport` or `sid` are left out: those are
    /// the protocol's, as in the reference client).
    pub query: Vec<(String, String)>,
    /// Most packets in one polling response. Default: the reference's 1 MB
    /// `maxPayload` worth of limits.
    pub limits: Limits,
    /// The TLS settings for an `https://` server, its polling requests and
    /// its `wss://` WebSocket alike (a private CA, client certificates).
    /// Default `None`: the Mozilla roots, no client certificate.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl ClientConfig {
    /// The defaults, for the server at `url`.
    pub fn new(url: &str) -> Self {
        // The reference client's defaults, as the sans-IO machines keep them.
        let reconnection = Reconnection::default();
        Self {
            url: url.trim_end_matches('/').to_owned(),
            path: DEFAULT_PATH.to_owned(),
            transports: ClientTransports::PollingThenWebSocket,
            reconnection: reconnection.enabled,
            reconnection_attempts: reconnection.attempts,
            reconnection_delay: reconnection.backoff.delay,
            reconnection_delay_max: reconnection.backoff.delay_max,
            randomization_factor: reconnection.backoff.randomization_factor,
            timeout: EioConfig::default().handshake_timeout,
            query: Vec::new(),
            limits: Limits::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The settings of the WebSocket transport's connection: the
    /// handshake bounded by `timeout`, TLS as for polling.
    fn websocket(&self) -> crate::ClientConfig {
        crate::ClientConfig {
            handshake_timeout: self.timeout,
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            ..crate::ClientConfig::default()
        }
    }

    /// Where the Engine.IO requests go (duplex-engineio builds each URL).
    fn engineio_url(&self) -> EngineIoUrl {
        EngineIoUrl::new(&self.url, &self.path).with_query(self.query.iter().cloned())
    }

    /// The reconnection delays, for duplex-socketio's policy.
    fn backoff_policy(&self) -> Backoff {
        Backoff {
            delay: self.reconnection_delay,
            delay_max: self.reconnection_delay_max,
            randomization_factor: self.randomization_factor,
        }
    }

    /// The delay before reconnection attempt `attempt` (0-based):
    /// `reconnection_delay * 2^attempt`, spread by the randomization
    /// factor, at most `reconnection_delay_max` (duplex-socketio's
    /// [`Backoff::delay`]).
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        self.backoff_policy().delay_with(attempt, rng)
    }

    fn engineio(&self) -> EioConfig {
        EioConfig {
            transport: match self.transports {
                ClientTransports::WebSocket => TransportKind::WebSocket,
                _ => TransportKind::Polling,
            },
            upgrade: self.transports == ClientTransports::PollingThenWebSocket,
            open_after_upgrade: true,
            handshake_timeout: self.timeout,
            upgrade_timeout: self.timeout,
            limits: self.limits,
        }
    }

    fn socketio(&self) -> SioConfig {
        SioConfig {
            reconnection: Reconnection {
                enabled: self.reconnection,
                attempts: self.reconnection_attempts,
                backoff: self.backoff_policy(),
            },
            ..SioConfig::default()
        }
    }
}

/// Most commands (emits, acks, joins...) waiting for the manager's task.
/// When it is full, [`ClientSocket::try_emit`] says so,
/// [`ClientSocket::emit`] and [`ClientAck::send`] drop theirs (logged),
/// [`ClientSocket::emit_with_ack`] waits for room, and the commands that
/// change what the connection is ([`Manager::socket`],
/// [`ClientSocket::disconnect`], [`Manager::close`]) are queued as soon as
/// there is room, never lost.
pub const COMMAND_QUEUE: usize = 1024;

/// Most events waiting in one [`ClientSocket`] for the application to take
/// them with [`ClientSocket::next_event`]. When one is full, the manager
/// stops reading from the server until the application catches up (its
/// commands and timers still run, so an ack timeout or the ping watchdog
/// can still end a wait).
pub const EVENT_QUEUE: usize = 256;

/// Most messages waiting for the WebSocket writer. When it is full, the
/// manager stops taking commands until the writer catches up; the
/// protocol's own replies (pongs, the close) still queue behind it.
pub const WS_WRITE_QUEUE: usize = 256;

/// Why the client could not do what was asked, or why one of its requests
/// failed: the adapter's one [`crate::Error`], under the name it had when it
/// was a type of its own.
pub type ClientError = crate::Error;

/// What happens to a client socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The namespace is connected (again, after a reconnection).
    Connect {
        /// The socket id the server gave.
        sid: String,
        /// Whether the server restored the socket's session (connection
        /// state recovery): the same `sid`, its rooms and data, and the
        /// events missed while away, which come next, in order, each once
        /// (socket.io-client's `socket.recovered`). The client keeps its
        /// private session id and last offset across reconnections by
        /// itself; false against a server without recovery.
        recovered: bool,
    },
    /// The server refused the namespace (with its CONNECT_ERROR payload);
    /// the socket does not retry.
    ConnectError {
        /// `{"message":...}` and maybe `data`.
        data: Value,
    },
    /// An event from the server.
    Event {
        /// Its name.
        name: String,
        /// Its arguments, binary in place.
        args: Vec<Value>,
        /// The ack the server asked for.
        ack: Option<ClientAck>,
    },
    /// The namespace disconnected, with the reference client's reason
    /// (`"io server disconnect"`, `"transport close"`, `"ping timeout"`,
    /// `"transport error"`, `"io client disconnect"`).
    Disconnect {
        /// Why.
        reason: &'static str,
    },
}
