//! [`StompServer`]: STOMP over TCP, over WebSocket (the `v1x.stomp`
//! subprotocols) and over any message transport, on the embedded broker or
//! relayed to an external one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use duplex_stomp::{BrokerConfig, ConnectRequest, ServerSession, Version};
use duplex_ws::HandshakeError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

#[cfg(feature = "sockjs")]
use super::transport::SockJsTransport;
use super::transport::{ByteStream, Transport, WebSocketTransport};
use super::{BrokerHandle, RelayConfig, connection, relay};
use crate::WebSocketStream;

/// Where a [`StompServer`] sends its clients' frames.
#[derive(Clone, Debug)]
pub enum StompBackend {
    /// The embedded broker (`duplex_stomp::Broker` in its own task).
    Embedded(BrokerHandle),
    /// Each client gets its own session on an external broker.
    Relay(Arc<RelayConfig>),
}

type SessionConfigFn = dyn Fn() -> duplex_stomp::ServerConfig + Send + Sync;
type WebSocketConfigFn = dyn Fn() -> crate::ServerConfig + Send + Sync;
type AuthFn = dyn Fn(&ConnectRequest<'_>) -> bool + Send + Sync;

#[derive(Clone)]
struct Inner {
    backend: StompBackend,
    session: Arc<SessionConfigFn>,
    authenticator: Option<Arc<AuthFn>>,
    websocket: Arc<WebSocketConfigFn>,
    outbox: usize,
    write_timeout: Duration,
    /// Flips to `true` once: every connection then ends with `ERROR`.
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
}

/// A STOMP server: serves connections from any transport on one backend.
/// Cheap to clone; clones share the backend.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use duplex_tokio::stomp::StompServer;
///
/// let server = StompServer::embedded()
///     .with_authenticator(|req| req.login() == Some("guest") && req.passcode() == Some("guest"));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:61613").await?;
/// server.serve_tcp(listener).await
/// # }
/// ```
#[derive(Clone)]
pub struct StompServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StompServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StompServer")
            .field("backend", &self.inner.backend)
            .field("authenticator", &self.inner.authenticator.is_some())
            .field("outbox", &self.inner.outbox)
            .finish_non_exhaustive()
    }
}

impl StompServer {
    /// A server on `backend` with default session settings.
    pub fn new(backend: StompBackend) -> StompServer {
        StompServer {
            inner: Arc::new(Inner {
                backend,
                session: Arc::new(duplex_stomp::ServerConfig::default),
                authenticator: None,
                websocket: Arc::new(crate::ServerConfig::default),
                outbox: 1024,
                write_timeout: Duration::from_secs(30),
                shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
            }),
        }
    }

    /// A server on a fresh embedded broker with default limits.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the broker is a task).
    pub fn embedded() -> StompServer {
        StompServer::new(StompBackend::Embedded(BrokerHandle::spawn(
            BrokerConfig::default(),
        )))
    }

    /// A server relaying every client to the broker `relay` describes.
    pub fn relay(relay: RelayConfig) -> StompServer {
        StompServer::new(StompBackend::Relay(Arc::new(relay)))
    }

    fn inner_mut(&mut self) -> &mut Inner {
        // Builders run before the server is shared; a clone made earlier
        // keeps its own settings.
        Arc::make_mut(&mut self.inner)
    }

    /// Session settings (versions, heart-beats, limits, connect timeout)
    /// made fresh for every connection by `f` (defaults: 10 s to send
    /// `CONNECT`, a silent client dropped after twice the negotiated
    /// heart-beat interval; see `docs/stomp.md`). An authenticator set with
    /// [`StompServer::with_authenticator`] replaces the one `f` sets.
    pub fn with_session_config(
        mut self,
        f: impl Fn() -> duplex_stomp::ServerConfig + Send + Sync + 'static,
    ) -> StompServer {
        self.inner_mut().session = Arc::new(f);
        self
    }

    /// The authentication hook: called with each `CONNECT`; `false` refuses
    /// the connection with an `ERROR` frame.
    pub fn with_authenticator(
        mut self,
        f: impl Fn(&ConnectRequest<'_>) -> bool + Send + Sync + 'static,
    ) -> StompServer {
        self.inner_mut().authenticator = Some(Arc::new(f));
        self
    }

    /// WebSocket settings for the `/stomp`-style endpoints.
    pub fn with_websocket_config(
        mut self,
        f: impl Fn() -> crate::ServerConfig + Send + Sync + 'static,
    ) -> StompServer {
        self.inner_mut().websocket = Arc::new(f);
        self
    }

    /// Frames waiting to be written to one client; past it the client is
    /// dropped as too slow. Default 1024.
    pub fn with_outbox(mut self, frames: usize) -> StompServer {
        self.inner_mut().outbox = frames.max(1);
        self
    }

    /// The longest one write to a client may take before it is dropped.
    /// Default 30 s.
    pub fn with_write_timeout(mut self, limit: Duration) -> StompServer {
        self.inner_mut().write_timeout = limit;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &StompBackend {
        &self.inner.backend
    }

    /// Ends every connection this server and its clones serve, and every
    /// one they are handed later: frames the broker already queued for a
    /// client are written, then an `ERROR` with the message `server
    /// shutting down`, then the transport is closed (WebSocket 1001, SockJS
    /// 3000, TCP FIN). Accepting new TCP connections is the caller's to
    /// stop.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Connections being served now (every transport).
    pub fn connection_count(&self) -> usize {
        self.inner.shutdown.receiver_count()
    }

    fn new_session(&self) -> ServerSession {
        let mut config = (self.inner.session)();
        if let Some(auth) = &self.inner.authenticator {
            let auth = auth.clone();
            config.authenticator = Some(Box::new(move |req| auth(req)));
        }
        ServerSession::new(config, Instant::now())
    }

    async fn serve_transport<T: Transport>(&self, io: T) {
        let session = self.new_session();
        match &self.inner.backend {
            StompBackend::Embedded(broker) => {
                connection::serve(
                    io,
                    session,
                    broker.clone(),
                    self.inner.outbox,
                    self.inner.write_timeout,
                    self.inner.shutdown.subscribe(),
                )
                .await;
            }
            StompBackend::Relay(config) => {
                relay::serve(
                    io,
                    session,
                    config.clone(),
                    self.inner.write_timeout,
                    self.inner.shutdown.subscribe(),
                )
                .await;
            }
        }
    }

    /// Accepts TCP connections on `listener` and serves each in its own
    /// task, until accepting fails for good.
    pub async fn serve_tcp(&self, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving.
                    tracing::warn!("STOMP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                tracing::debug!(%peer, "STOMP connection");
                server.serve_stream(tcp).await;
            });
        }
    }

    /// Serves one STOMP connection over a byte stream (TCP, TLS, a pipe)
    /// until it ends.
    pub async fn serve_stream<S>(&self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        self.serve_transport(ByteStream::new(io)).await;
    }

    /// Serves one STOMP connection over an accepted WebSocket (one frame
    /// per message) until it ends.
    pub async fn serve_websocket<S>(&self, ws: WebSocketStream<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        self.serve_transport(WebSocketTransport(ws)).await;
    }

    /// Serves one STOMP connection over a SockJS session (one frame per
    /// message) until it ends; mount a [`crate::sockjs::SockJsService`] whose
    /// handler calls this.
    #[cfg(feature = "sockjs")]
    pub async fn serve_sockjs(&self, socket: crate::sockjs::SockJsSocket) {
        self.serve_transport(SockJsTransport(socket)).await;
    }

    /// The subprotocol to agree to among those a client offered: the first
    /// in the client's order that names a STOMP version this server speaks.
    pub fn choose_subprotocol<'a>(
        &self,
        offered: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'static str> {
        let versions = (self.inner.session)().versions;
        Version::choose_websocket_subprotocol(offered, &versions)
            .map(Version::websocket_subprotocol)
    }

    /// The hyper upgrade path of a STOMP-over-WebSocket endpoint (`/stomp`):
    /// checks the request, agrees to a `v1x.stomp` subprotocol when one is
    /// offered, and serves the connection in its own task once hyper hands
    /// it over. Return the response from the hyper service.
    pub fn upgrade<B>(
        &self,
        req: &mut http::Request<B>,
    ) -> Result<http::Response<()>, HandshakeError> {
        let offered = crate::offered_protocols(req)?;
        let protocol = self.choose_subprotocol(offered.iter().map(String::as_str));
        let (response, upgrade) = crate::upgrade(req, (self.inner.websocket)(), protocol)?;
        let server = self.clone();
        tokio::spawn(async move {
            match upgrade.await {
                Ok(ws) => server.serve_websocket(ws).await,
                Err(e) => tracing::debug!("STOMP WebSocket upgrade failed: {e}"),
            }
        });
        Ok(response)
    }
}
