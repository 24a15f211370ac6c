//! [`SseService`]: duplex-polling's Server-Sent Events dialect
//! ([`SseServer`]) served over hyper.
//!
//! The HTTP side is the one driver of [`crate::http`] (a whole response
//! such as 405 or 204 after a close, or the event stream fed chunk by
//! chunk); this module adds only the sessions: `app.rs` tells them when
//! they close, `session.rs` is the application's handle. Every protocol
//! decision (framing, `retry:`, heartbeat comments, resumption from
//! `Last-Event-ID`, expiry) is the machine's.
//!
//! Server-Sent Events carry data one way. Each new session is handed to
//! the application as an [`SseSession`] to send on; what the client sends
//! goes through an endpoint of the application's own (a `POST` naming the
//! session id, for instance).
//!
//! ```no_run
//! use duplex_tokio::sse::{SseConfig, SseService};
//!
//! # fn demo() {
//! let clock = SseService::new("/events", SseConfig::default(), |mut session| async move {
//!     loop {
//!         let now = format!("{:?}", std::time::SystemTime::now());
//!         if session.send(now).await.is_err() {
//!             break;
//!         }
//!         tokio::select! {
//!             _ = session.closed() => break,
//!             () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
//!         }
//!     }
//! });
//! // Route requests whose path starts with `/events` to `clock.handle(req)`.
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;

/// The cross-origin settings of the config's `cors` field.
pub use duplex_polling::Cors;
pub use duplex_polling::{CloseReason, OpenInfo, SessionId, SseConfig, SseServer};
pub use session::{SseError, SseSender, SseSession};

use crate::http::{PollingService, SessionSpawner, Upgrades, plain};
use app::{Driver, OnOpen, SseApp};

mod app;
mod session;

/// The body of every response an [`SseService`] writes: a whole body, or
/// the event stream.
pub type SseBody = BoxBody<Bytes, Infallible>;

/// A Server-Sent Events endpoint mounted at a prefix, as a hyper service.
/// Each new session is handed to the handler as an [`SseSession`] in its
/// own task. Cheap to clone; clones serve the same sessions.
// Debug shows the driver's mount: the prefix.
#[derive(Clone, Debug)]
pub struct SseService {
    driver: Driver,
}

impl SseService {
    /// Serves `config`'s endpoint under `prefix` (e.g. `/events`) and runs
    /// `handler` for each session.
    ///
    /// # Panics
    ///
    /// When a session opens outside a tokio runtime (its handler is a task).
    pub fn new<F, Fut>(prefix: &str, config: SseConfig, handler: F) -> SseService
    where
        F: Fn(SseSession) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let driver = PollingService::with_options(
            SseServer::new(config),
            SseApp::default(),
            prefix,
            Upgrades::Never,
            crate::ServerConfig::default,
        );
        let sessions = SessionSpawner::new(&driver, handler);
        let on_open: OnOpen = Arc::new(move |session, info, closed| {
            sessions.spawn(|driver| SseSession::new(session, info, closed, driver))
        });
        driver.with(|_, app, _, _| app.set_on_open(on_open));
        SseService { driver }
    }

    crate::http::mounted_service_accessors!(SseServer);

    /// Closes every open session (what is queued is written first, then
    /// each stream ends and reconnecting clients get 204) and returns how
    /// many there were. For a server shutting down.
    pub async fn close_all(&self) -> usize {
        self.driver.with(|server, app, now, _| {
            app.open_sessions()
                .iter()
                .filter(|session| server.close(session, now).is_ok())
                .count()
        })
    }

    /// Answers one HTTP request under the prefix.
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<SseBody> {
        if !self.matches(req.uri().path()) {
            return plain(StatusCode::NOT_FOUND, "not found\n").map(BodyExt::boxed);
        }
        // The body is never read: the dialect answers anything but GET and
        // OPTIONS with 405 whatever it carries.
        let (parts, _body) = req.into_parts();
        let req = http::Request::from_parts(parts, http_body_util::Empty::<Bytes>::new());
        self.driver.handle_streaming(req).await.map(BodyExt::boxed)
    }
}

crate::http::service_via_handle!([] SseService => SseBody, where B: Send + 'static);
