//! [`SockJsService`]: a [`SockJsServer`] served over hyper by the one
//! HTTP driver ([`crate::http`]), with each session handed to the
//! application as a [`SockJsSocket`] in a task of its own. Every protocol
//! decision (status codes, framing, heartbeats, expiry) is the machine's.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use duplex_polling::{SockJsConfig, SockJsServer};
use http::StatusCode;

use super::app::{Driver, OnOpen, SockJsApp};
use super::socket::SockJsSocket;
use crate::ServerConfig;
use crate::http::{HttpBody, PollingService, SessionSpawner, Upgrades, plain};

/// A SockJS endpoint mounted at a prefix, as a hyper service: every
/// transport of duplex-polling's SockJS dialect, and its session and raw
/// `/websocket` endpoints. Each new session is handed to the handler as a
/// [`SockJsSocket`] in its own task. Cheap to clone; clones serve the same
/// sessions.
///
/// ```no_run
/// use duplex_tokio::sockjs::SockJsService;
/// use futures_util::StreamExt;
///
/// # fn demo() {
/// let echo = SockJsService::new("/echo", Default::default(), |mut socket| async move {
///     while let Some(message) = socket.next().await {
///         if socket.send(message).await.is_err() {
///             break;
///         }
///     }
/// });
/// // Route requests whose path starts with `/echo` to `echo.handle(req)`.
/// # }
/// ```
// Debug shows the driver's mount: the prefix.
#[derive(Clone, Debug)]
pub struct SockJsService {
    driver: Driver,
}

impl SockJsService {
    /// Serves `config`'s endpoint under `prefix` (e.g. `/echo`; the rest of
    /// the path goes to the endpoint) and runs `handler` for each session.
    ///
    /// # Panics
    ///
    /// When a session opens outside a tokio runtime (its handler is a task).
    pub fn new<F, Fut>(prefix: &str, config: SockJsConfig, handler: F) -> SockJsService
    where
        F: Fn(SockJsSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        SockJsService::with_websocket_config(prefix, config, ServerConfig::default, handler)
    }

    /// As [`SockJsService::new`], with the WebSocket settings made by
    /// `websocket_config` for each connection.
    pub fn with_websocket_config<F, Fut>(
        prefix: &str,
        config: SockJsConfig,
        websocket_config: impl Fn() -> ServerConfig + Send + Sync + 'static,
        handler: F,
    ) -> SockJsService
    where
        F: Fn(SockJsSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let driver = PollingService::with_options(
            SockJsServer::new(config),
            SockJsApp::default(),
            prefix,
            Upgrades::Endpoint,
            websocket_config,
        );
        let sessions = SessionSpawner::new(&driver, handler);
        let on_open: OnOpen =
            Arc::new(move |opened| sessions.spawn(|driver| SockJsSocket::new(opened, driver)));
        driver.with(|_, app, _, _| app.set_on_open(on_open));
        SockJsService { driver }
    }

    crate::http::mounted_service_accessors!(SockJsServer);

    /// Closes every open session with `code` and `reason` (what is queued
    /// goes out first, then `c[code,"reason"]`) and returns how many there
    /// were. For a server shutting down: `close_all(3000, "Server shutting down")`.
    pub async fn close_all(&self, code: u16, reason: &str) -> usize {
        self.driver.with(|server, app, now, _| {
            app.open_sessions()
                .iter()
                .filter(|session| server.close(session, code, reason, now).is_ok())
                .count()
        })
    }

    /// Answers one HTTP request under the prefix.
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<HttpBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        if !self.matches(req.uri().path()) {
            return plain(StatusCode::NOT_FOUND, "Not found");
        }
        self.driver.handle_streaming(req).await
    }
}

crate::http::service_via_handle!(
    [] SockJsService => HttpBody,
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
);
