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
use std::pin::Pin;
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
#[derive(Clone)]
pub struct SseService {
    driver: Driver,
}

impl std::fmt::Debug for SseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseService")
            .field("prefix", &self.driver.mount())
            .finish_non_exhaustive()
    }
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

    /// The prefix the service is mounted at.
    pub fn prefix(&self) -> &str {
        self.driver.mount()
    }

    /// Whether `path` is under this service's prefix.
    pub fn matches(&self, path: &str) -> bool {
        self.driver.matches(path)
    }

    /// Runs `f` on the endpoint (between two inputs) and returns its
    /// result. For statistics and tests (`session_count`,
    /// `connection_count`). Always `Some` (it was `None` when the endpoint
    /// was a task that could be gone).
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&SseServer) -> R + Send + 'static,
    ) -> Option<R> {
        Some(self.driver.with(|server, _, _, _| f(server)))
    }

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

impl<B> hyper::service::Service<http::Request<B>> for SseService
where
    B: Send + 'static,
{
    type Response = http::Response<SseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    const STEP: Duration = Duration::from_secs(5);

    /// Serves `service` on a loopback port.
    async fn serve(service: SseService) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service),
                );
            }
        });
        addr
    }

    async fn get(addr: std::net::SocketAddr, headers: &str) -> TcpStream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /events HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp
    }

    /// Reads until `needle` has arrived; returns everything read.
    async fn read_until(tcp: &mut TcpStream, seen: &mut String, needle: &str) {
        while !seen.contains(needle) {
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
                .await
                .expect("in time")
                .unwrap();
            assert!(n > 0, "ended before {needle:?}: {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    #[tokio::test]
    async fn events_stream_resume_after_a_drop_and_stop_after_close() {
        let (tx, mut sessions) = mpsc::unbounded_channel();
        let service = SseService::new("/events", SseConfig::default(), move |session| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(session);
            }
        });
        assert!(service.matches("/events") && !service.matches("/eventsx"));
        let addr = serve(service.clone()).await;

        let mut first = get(addr, "").await;
        let session = tokio::time::timeout(STEP, sessions.recv())
            .await
            .unwrap()
            .unwrap();
        let id = session.id().to_string();
        let mut seen = String::new();
        read_until(&mut first, &mut seen, "retry: 3000").await;
        assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
        assert!(seen.to_ascii_lowercase().contains("text/event-stream"));
        session.send("one").await.unwrap();
        session.send_event("named", "two").await.unwrap();
        read_until(
            &mut first,
            &mut seen,
            &format!("id: {id}:2\nevent: named\ndata: two\n\n"),
        )
        .await;
        assert!(seen.contains(&format!("id: {id}:1\ndata: one\n\n")));

        // The client goes away; what is sent meanwhile waits for it.
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        session.send("three").await.unwrap();
        let mut again = get(addr, &format!("Last-Event-ID: {id}:2\r\n")).await;
        let mut seen = String::new();
        read_until(
            &mut again,
            &mut seen,
            &format!("id: {id}:3\ndata: three\n\n"),
        )
        .await;
        assert!(!seen.contains("data: one"), "replayed too much: {seen}");
        assert_eq!(service.inspect(|s| s.session_count()).await, Some(1));

        // Closed: the stream ends, and a reconnection is told to stop.
        let mut session = session;
        session.close().await.unwrap();
        assert_eq!(session.closed().await, Some(CloseReason::Application));
        // The chunked body's last chunk (the connection stays for keep-alive).
        read_until(&mut again, &mut seen, "\r\n0\r\n\r\n").await;
        let mut late = get(
            addr,
            &format!("Last-Event-ID: {id}:3\r\nConnection: close\r\n"),
        )
        .await;
        let mut answer = String::new();
        tokio::time::timeout(STEP, late.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
        assert!(matches!(session.send("four").await, Err(SseError::Closed)));
    }

    #[tokio::test]
    async fn close_all_ends_every_session_and_other_methods_get_405() {
        let (tx, mut sessions) = mpsc::unbounded_channel();
        let service = SseService::new("/events", SseConfig::default(), move |session| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(session);
            }
        });
        let addr = serve(service.clone()).await;
        let mut streams = Vec::new();
        for _ in 0..3 {
            let mut tcp = get(addr, "").await;
            let mut seen = String::new();
            read_until(&mut tcp, &mut seen, "retry:").await;
            streams.push(tcp);
        }
        let mut handles = Vec::new();
        for _ in 0..3 {
            handles.push(sessions.recv().await.unwrap());
        }
        assert_eq!(service.close_all().await, 3);
        for mut handle in handles {
            assert_eq!(handle.closed().await, Some(CloseReason::Application));
        }
        for mut tcp in streams {
            let mut seen = String::new();
            read_until(&mut tcp, &mut seen, "0\r\n\r\n").await;
        }
        let mut post = TcpStream::connect(addr).await.unwrap();
        post.write_all(
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut answer = String::new();
        post.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    }
}
