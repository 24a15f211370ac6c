//! [`SocketIoConfig`]: the server's settings, named and defaulted as the
//! reference server's options, and the Engine.IO settings they make.

use std::time::Duration;

use duplex_polling::{Cors, EngineIoConfig};

use super::{RecoveryConfig, mailbox};

/// Settings, named and defaulted as the reference server's options.
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// `pingInterval`. Default 25 s.
    pub ping_interval: Duration,
    /// `pingTimeout`. Default 20 s.
    pub ping_timeout: Duration,
    /// `maxHttpBufferSize` (announced as `maxPayload`): the largest POST
    /// body or WebSocket message. Default 1,000,000 bytes.
    pub max_http_buffer_size: usize,
    /// `connectTimeout`: a connection that joins no namespace within it is
    /// closed. Default 45 s.
    pub connect_timeout: Duration,
    /// `upgradeTimeout`. Default 10 s.
    pub upgrade_timeout: Duration,
    /// `transports`: which of polling and WebSocket are accepted. Default both.
    pub transports: Transports,
    /// `cors`: CORS headers and allowed origins. Default: no CORS headers,
    /// any origin (as the reference without the `cors` option).
    pub cors: Cors,
    /// `allowEIO3`: accept Engine.IO v3 / Socket.IO v4 clients. Default off.
    pub allow_eio3: bool,
    /// Most namespaces one connection may join. Default 64.
    pub max_namespaces_per_connection: usize,
    /// Most acks one socket may await at once. Default 1024.
    pub max_pending_acks: usize,
    /// Most binary attachments in one packet. Default 10 (the reference
    /// parser's `maxAttachments`).
    pub max_attachments: usize,
    /// Most Engine.IO sessions at once. Default 65,536.
    pub max_sessions: usize,
    /// Most handler calls one socket may have waiting while its handlers
    /// run (they run one at a time per socket, in order). A client that
    /// sends faster than its handlers finish is taken out of the namespace
    /// past it (it gets a DISCONNECT, the disconnect handler runs).
    /// Default 4096: a burst of a client's whole send queue (the duplex
    /// client's [`client::COMMAND_QUEUE`] is 1024) fits.
    pub max_queued_events: usize,
    /// `connectionStateRecovery`: a client whose connection was lost and
    /// that comes back within `max_disconnection_duration` gets its socket
    /// id, rooms and [`Socket::data`] back, and every event it missed
    /// ([`Socket::recovered`] tells its handlers). Default `None`, off as
    /// in the reference: the wire stays byte for byte as without it. See
    /// docs/socketio-recovery.md for what is and is not replayed.
    pub connection_state_recovery: Option<RecoveryConfig>,
}

/// The transports a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        let eio = EngineIoConfig::default();
        Self {
            ping_interval: eio.ping_interval,
            ping_timeout: eio.ping_timeout,
            max_http_buffer_size: eio.max_http_buffer_size,
            connect_timeout: Duration::from_secs(45),
            upgrade_timeout: eio.upgrade_timeout,
            transports: Transports {
                polling: true,
                websocket: true,
            },
            cors: Cors::disabled(),
            allow_eio3: false,
            max_namespaces_per_connection: 64,
            max_pending_acks: 1024,
            max_attachments: 10,
            max_sessions: eio.max_sessions,
            max_queued_events: mailbox::DEFAULT_MAX_QUEUED_EVENTS,
            connection_state_recovery: None,
        }
    }
}

impl SocketIoConfig {
    /// The Engine.IO settings these make.
    pub fn engine_config(&self) -> EngineIoConfig {
        EngineIoConfig {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            upgrade_timeout: self.upgrade_timeout,
            max_http_buffer_size: self.max_http_buffer_size,
            polling: self.transports.polling,
            websocket: self.transports.websocket,
            allow_eio3: self.allow_eio3,
            max_sessions: self.max_sessions,
            cors: self.cors.clone(),
            ..EngineIoConfig::default()
        }
    }
}
