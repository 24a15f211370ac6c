//! [`PollingService`]: the one HTTP driver. Any duplex-polling
//! [`Endpoint`] (Engine.IO, SockJS, Server-Sent Events) and the
//! [`Application`] on top of it, served over hyper: whole responses,
//! streaming responses and upgraded WebSockets. See the module docs of
//! [`crate::http`] for the concurrency model.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use bytes::Bytes;
use duplex_polling::{Endpoint, Request, RequestId};
use http::StatusCode;
use http_body_util::Full;
use hyper::body::Body;
use tokio::sync::{Notify, oneshot};

use super::app::{Application, Deferred};
use super::body::HttpBody;
use super::core::{Core, Reply};
use super::util::{BodyFailure, body_timed_out, into_http, plain, read_limited, sleep_until};
use super::websocket::run_websocket;
use crate::ServerConfig;

/// The body of every response [`PollingService::handle`] writes: whole
/// bodies only.
pub type ResponseBody = Full<Bytes>;

/// What the driver does with a request that asks for a WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upgrades {
    /// A handshake that is not valid RFC 6455 is answered at once with its
    /// error status (Engine.IO).
    Answer,
    /// A handshake that is not valid is handed to the endpoint as a plain
    /// request, and the endpoint answers it (SockJS, whose answers the
    /// sockjs-protocol suite checks).
    #[cfg_attr(not(feature = "sockjs"), allow(dead_code))]
    Endpoint,
    /// The dialect has no WebSockets; every request is a plain request.
    #[cfg_attr(not(feature = "sse"), allow(dead_code))]
    Never,
}

struct Shared<E, A> {
    core: Mutex<Core<E, A>>,
    /// What the WebSocket tasks wrote since the last input, by connection:
    /// handed to the endpoint at the next input
    /// ([`Endpoint::handle_websocket_sent`]), so that a task reports
    /// without taking the core's lock. At most one entry per flush of
    /// messages an input transmitted.
    written: Mutex<Vec<(RequestId, usize)>>,
    /// Wakes the timer task when a deadline earlier than the armed one appears.
    timer: Arc<Notify>,
    mount: String,
    upgrades: Upgrades,
    websocket_config: Box<dyn Fn() -> ServerConfig + Send + Sync>,
}

impl<E, A> Drop for Shared<E, A> {
    fn drop(&mut self) {
        // Lets the timer task see that the service is gone.
        self.timer.notify_one();
    }
}

/// An [`Endpoint`] and its [`Application`] served over hyper: a cheap,
/// cloneable handle (all clones serve the same sessions).
///
/// Use it as a hyper service ([`hyper::service::Service`]), a
/// [`tower::Service`], or call [`PollingService::handle`] from a router.
pub struct PollingService<E, A> {
    shared: Arc<Shared<E, A>>,
}

impl<E, A> std::fmt::Debug for PollingService<E, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollingService")
            .field("mount", &self.shared.mount)
            .finish_non_exhaustive()
    }
}

/// A [`PollingService`] that does not keep it alive (for applications that
/// hand out handles to themselves).
pub struct WeakPollingService<E, A> {
    shared: Weak<Shared<E, A>>,
}

impl<E, A> std::fmt::Debug for WeakPollingService<E, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakPollingService").finish_non_exhaustive()
    }
}

impl<E, A> WeakPollingService<E, A> {
    /// The service, if it is still alive.
    pub fn upgrade(&self) -> Option<PollingService<E, A>> {
        self.shared
            .upgrade()
            .map(|shared| PollingService { shared })
    }
}

super::macros::clone_handles!(PollingService, WeakPollingService);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under the lock leaves the machines in a state they reached
    // through their own API; serving on is better than panicking forever.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<E, A> PollingService<E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    /// Serves `endpoint` with `app` on top, mounted at `mount` (the path
    /// prefix stripped before the endpoint sees the path), with the
    /// default WebSocket settings ([`ServerConfig::default`]).
    pub fn new(endpoint: E, app: A, mount: &str) -> Self {
        Self::with_websocket_config(endpoint, app, mount, ServerConfig::default)
    }

    /// As [`PollingService::new`], with the WebSocket settings made by
    /// `websocket_config` for each connection.
    pub fn with_websocket_config(
        endpoint: E,
        app: A,
        mount: &str,
        websocket_config: impl Fn() -> ServerConfig + Send + Sync + 'static,
    ) -> Self {
        Self::with_options(endpoint, app, mount, Upgrades::Answer, websocket_config)
    }

    pub(crate) fn with_options(
        endpoint: E,
        app: A,
        mount: &str,
        upgrades: Upgrades,
        websocket_config: impl Fn() -> ServerConfig + Send + Sync + 'static,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                core: Mutex::new(Core::new(endpoint, app)),
                written: Mutex::new(Vec::new()),
                timer: Arc::new(Notify::new()),
                mount: mount.trim_end_matches('/').to_owned(),
                upgrades,
                websocket_config: Box::new(websocket_config),
            }),
        }
    }

    /// Requests waiting for or receiving the endpoint's answer (parked
    /// long-polls and open streams) and WebSockets open, for statistics
    /// and leak checks.
    pub fn in_flight(&self) -> (usize, usize) {
        let core = lock(&self.shared.core);
        (
            core.replies.len() + core.streams.len(),
            core.websockets.len(),
        )
    }

    /// Applies `limits` to the requests this service reads: their bodies
    /// must arrive within [`HttpLimits::body_read_timeout`](crate::HttpLimits::body_read_timeout)
    /// (default 30 s), or get 408 and a close. The head limits are the
    /// connection's ([`HttpLimits::http1_builder`](crate::HttpLimits::http1_builder)).
    pub fn set_http_limits(&self, limits: &crate::HttpLimits) {
        lock(&self.shared.core).body_read_timeout = limits.body_read_timeout;
    }

    /// A handle that does not keep the service alive.
    pub fn downgrade(&self) -> WeakPollingService<E, A> {
        WeakPollingService {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The path prefix this service is mounted at.
    pub fn mount(&self) -> &str {
        &self.shared.mount
    }

    /// Whether `path` is under the mount: the mount itself or below it at a
    /// `/`, so that `/echo` does not claim `/echoes`.
    pub fn matches(&self, path: &str) -> bool {
        path.strip_prefix(self.shared.mount.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Runs `f` on the endpoint and the application at the current time,
    /// then writes what it caused and runs the deferred work. This is how
    /// application handles (a socket's `emit`) reach the machines.
    pub fn with<R>(&self, f: impl FnOnce(&mut E, &mut A, Instant, &mut Deferred) -> R) -> R {
        self.with_core(|core, now| f(&mut core.endpoint, &mut core.app, now, &mut core.deferred))
    }

    /// [`PollingService::with`] on the whole core: the one place the lock
    /// is taken for an input.
    fn with_core<R>(&self, f: impl FnOnce(&mut Core<E, A>, Instant) -> R) -> R {
        let result = {
            let mut guard = lock(&self.shared.core);
            let core = &mut *guard;
            let now = Instant::now();
            let written = std::mem::take(&mut *lock(&self.shared.written));
            for (connection, messages) in written {
                core.endpoint.handle_websocket_sent(connection, messages);
            }
            core.tick(now);
            let r = f(core, now);
            core.pump(now);
            self.rearm(core);
            r
        };
        self.run_deferred();
        result
    }

    /// Wakes the timer task if the next deadline is earlier than the one it
    /// sleeps until.
    fn rearm(&self, core: &mut Core<E, A>) {
        if let Some(next) = core.next_deadline() {
            if core.armed.is_none_or(|armed| next < armed) {
                core.armed = Some(next);
                self.shared.timer.notify_one();
            }
        }
        if !core.timer_started {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                core.timer_started = true;
                handle.spawn(timer_task(
                    Arc::downgrade(&self.shared),
                    self.shared.timer.clone(),
                ));
            }
        }
    }

    /// Runs the deferred closures, one at a time and in order, unless
    /// another task is already doing so.
    fn run_deferred(&self) {
        loop {
            let batch = {
                let mut core = lock(&self.shared.core);
                if core.dispatching || core.deferred.is_empty() {
                    return;
                }
                core.dispatching = true;
                std::mem::take(&mut core.deferred.0)
            };
            let _reset = DispatchGuard(&self.shared.core);
            for f in batch {
                f();
            }
        }
    }

    /// The client of `id` went away before its answer was complete.
    fn abort(&self, id: RequestId) {
        self.with_core(|core, now| {
            core.replies.remove(&id);
            core.streams.remove(&id);
            core.endpoint.abort(id, now);
        });
    }

    /// Answers one HTTP request (polling GET or POST, handshake, or a
    /// WebSocket upgrade) with a whole body: for endpoints that never
    /// stream (Engine.IO). A streaming answer cannot be a [`Full`] body:
    /// the stream is dropped (the endpoint hears the client went away) and
    /// the request gets 500; use [`PollingService::handle_streaming`] for
    /// endpoints that stream.
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        let (parts, body) = self.handle_streaming(req).await.into_parts();
        match body.into_bytes() {
            Ok(bytes) => http::Response::from_parts(parts, Full::new(bytes)),
            Err(stream) => {
                drop(stream);
                tracing::warn!(
                    "streaming answer dropped: PollingService::handle writes whole bodies"
                );
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "streaming transports are not supported by this service\n",
                )
                .map(|body| Full::new(body.into_bytes().unwrap_or_default()))
            }
        }
    }

    /// Answers one HTTP request (polling GET or POST, handshake, stream, or
    /// a WebSocket upgrade), streaming included: the driver under every
    /// dialect's service.
    pub async fn handle_streaming<B>(&self, mut req: http::Request<B>) -> http::Response<HttpBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        let path = req.uri().path();
        let path = path
            .strip_prefix(self.shared.mount.as_str())
            .unwrap_or(path);
        let path = path.to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();

        let upgrade = match self.shared.upgrades {
            Upgrades::Never => None,
            _ if !crate::wants_websocket(&req) => None,
            upgrades => match crate::upgrade(&mut req, (self.shared.websocket_config)(), None) {
                Ok(pair) => Some(pair),
                // A bad CONNECT is answered by the RFC 8441 handshake
                // whatever the dialect: it is never a plain request.
                Err(e) if upgrades == Upgrades::Answer || req.method() == http::Method::CONNECT => {
                    return e.http_response().map(HttpBody::full);
                }
                Err(_) => None,
            },
        };

        let (limit, timeout) = {
            let core = lock(&self.shared.core);
            (core.endpoint.body_limit(), core.body_read_timeout)
        };
        let (parts, body) = req.into_parts();
        let parts_version = parts.version;
        let body = if upgrade.is_some() {
            Bytes::new()
        } else {
            match read_limited(body, limit.saturating_add(1), timeout).await {
                Ok(b) => b,
                Err(BodyFailure::TimedOut) => return body_timed_out(parts_version),
                Err(BodyFailure::Failed(e)) => {
                    tracing::debug!("request body failed: {e}");
                    return plain(StatusCode::BAD_REQUEST, "bad request body\n");
                }
            }
        };

        let (tx, rx) = oneshot::channel();
        let id = {
            let mut core = lock(&self.shared.core);
            core.next_id += 1;
            let id = RequestId(core.next_id);
            core.replies.insert(id, tx);
            id
        };
        // An HTTP/2 WebSocket arrives as an extended CONNECT; the
        // endpoints route WebSockets as the HTTP/1.1 `GET` upgrade they
        // know, and the opening makes no difference past the handshake.
        let method = if upgrade.is_some() {
            http::Method::GET
        } else {
            parts.method
        };
        let request = Request {
            id,
            method,
            path,
            query,
            headers: parts.headers,
            body,
            websocket: upgrade.is_some(),
            wall_clock: Some(std::time::SystemTime::now()),
        };
        let mut guard = AbortGuard {
            service: self,
            id,
            armed: true,
        };
        self.with(|endpoint, _, now, _| endpoint.handle_request(request, now));
        let reply = rx.await;
        guard.armed = false;
        match reply {
            Ok(Reply::Response(response)) => into_http(response),
            Ok(Reply::Stream {
                status,
                headers,
                chunks,
            }) => {
                let service = self.downgrade();
                let on_abort = Box::new(move || {
                    if let Some(service) = service.upgrade() {
                        service.abort(id);
                    }
                });
                let mut out = http::Response::new(HttpBody::stream(chunks, on_abort));
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                out
            }
            Ok(Reply::Accept { headers, outgoing }) => match upgrade {
                Some((mut response, upgrade)) => {
                    response.headers_mut().extend(headers);
                    let service = self.clone();
                    // The task's future is what an idle WebSocket costs, so
                    // the stream is in it once: the upgrade is captured as
                    // its boxed future, not as the 160-byte `Upgrade`, and
                    // its result is borrowed where it lies rather than moved
                    // out into a binding (which would take its size twice).
                    let upgrade = std::future::IntoFuture::into_future(upgrade);
                    tokio::spawn(async move {
                        let mut opened = upgrade.await;
                        match &mut opened {
                            Ok(ws) => {
                                let incoming = |message| {
                                    service.with(|endpoint, _, now, _| {
                                        endpoint.handle_websocket_message(id, message, now);
                                    });
                                    true
                                };
                                let sent = |messages| {
                                    if messages > 0 {
                                        lock(&service.shared.written).push((id, messages));
                                    }
                                };
                                run_websocket(ws, outgoing, incoming, sent).await;
                            }
                            Err(e) => tracing::debug!(%id, "upgrade failed: {e}"),
                        }
                        service.with_core(|core, now| {
                            core.websockets.remove(&id);
                            core.endpoint.handle_websocket_closed(id, now);
                        });
                    });
                    response.map(|()| HttpBody::empty())
                }
                None => {
                    self.with_core(|core, now| {
                        core.websockets.remove(&id);
                        core.endpoint.handle_websocket_closed(id, now);
                    });
                    plain(StatusCode::BAD_REQUEST, "not a WebSocket request\n")
                }
            },
            // The endpoint dropped the request without an answer (it
            // cannot without a bug); fail it rather than hang.
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "no answer\n"),
        }
    }
}

/// Resets the dispatching flag even if a handler panics.
struct DispatchGuard<'a, E, A>(&'a Mutex<Core<E, A>>);

impl<E, A> Drop for DispatchGuard<'_, E, A> {
    fn drop(&mut self) {
        lock(self.0).dispatching = false;
    }
}

/// Tells the endpoint a parked request was dropped (the client went away)
/// unless it was answered.
struct AbortGuard<'a, E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    service: &'a PollingService<E, A>,
    id: RequestId,
    armed: bool,
}

impl<E, A> Drop for AbortGuard<'_, E, A>
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    fn drop(&mut self) {
        if self.armed {
            self.service.abort(self.id);
        }
    }
}

/// Sleeps until the earliest deadline, then advances the machines.
async fn timer_task<E, A>(shared: Weak<Shared<E, A>>, notify: Arc<Notify>)
where
    E: Endpoint + Send + 'static,
    A: Application<E>,
{
    loop {
        let deadline = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut core = lock(&shared.core);
            let next = core.next_deadline();
            core.armed = next;
            next
        };
        tokio::select! {
            () = sleep_until(deadline) => {}
            () = notify.notified() => continue,
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // `with` runs every timer that is due.
        PollingService { shared }.with(|_, _, _, _| {});
    }
}

super::service_via_handle!(
    tower [E, A] PollingService<E, A> => ResponseBody,
    where
        E: Endpoint + Send + 'static,
        A: Application<E>,
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
);
