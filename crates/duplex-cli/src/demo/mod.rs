//! `duplex serve`: the demo. A chat page (embedded HTML, CSS and
//! JavaScript of our own) whose rooms can be reached over a plain
//! WebSocket (`/ws`), the page's own long-polling client (`/poll`, the
//! SockJS dialect's xhr transport), its own Server-Sent Events client
//! (`/sse/events` down, `POST /sse/send` up), Socket.IO (`/socket.io/`) and
//! STOMP (`/stomp`, `/sockjs/stomp`, `--stomp-addr`, destinations
//! `/topic/chat.<room>`); `/stats` counts it all; and a graceful shutdown
//! that closes every client the way its protocol says.
//!
//! This module is application logic and routing only: the transports are
//! `duplex-tokio`'s services.

mod chat;
mod stats;
mod transports;

use std::convert::Infallible;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_tokio::socketio::{NamespaceHandlers, SocketIo, SocketIoConfig};
use duplex_tokio::sockjs::{SockJsConfig, SockJsService};
use duplex_tokio::sse::{SseConfig, SseService};
use duplex_tokio::stomp::StompServer;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use stats::Transport;

use chat::Hub;
use stats::Stats;

/// The body of the demo's responses.
pub(crate) type DemoBody = BoxBody<Bytes, Infallible>;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");

/// Cancelled when the server starts shutting down; long-lived tasks that
/// are not chat members (the `/echo` WebSockets) close on it.
static SHUTDOWN: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);
/// Every WebSocket and member task, waited for (within the shutdown
/// timeout) before the process exits.
static TASKS: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);
/// The counters, shared with `/echo` (which the conformance server serves
/// too).
static STATS: LazyLock<Arc<Stats>> = LazyLock::new(|| Arc::new(Stats::new()));

/// The shutdown signal for tasks outside this module.
pub(crate) fn shutdown_token() -> &'static CancellationToken {
    &SHUTDOWN
}

/// The tracker for tasks outside this module that should end before the
/// process does.
pub(crate) fn tasks() -> &'static TaskTracker {
    &TASKS
}

/// Counts a connection of `transport` until the guard is dropped.
pub(crate) fn count_connection(transport: Transport) -> impl Send + 'static {
    STATS.open(transport)
}

/// Counts an HTTP connection of `version` until the guard is dropped.
pub(crate) fn count_http_connection(version: http::Version) -> impl Send + Sync + 'static {
    STATS.http_connection(stats_version(version))
}

/// Counts a WebSocket opened by a request of `version` (HTTP/1.1 upgrade
/// or HTTP/2 extended CONNECT).
pub(crate) fn count_websocket_opened(version: http::Version) {
    STATS.websocket_opened(stats_version(version));
}

fn stats_version(version: http::Version) -> stats::HttpVersion {
    if version == http::Version::HTTP_2 {
        stats::HttpVersion::Http2
    } else {
        stats::HttpVersion::Http1
    }
}

/// Counts a message through `/echo` (in and out).
pub(crate) fn count_echo(bytes: usize) {
    STATS.received(bytes);
    STATS.sent(bytes);
}

struct Demo {
    hub: Arc<Hub>,
    poll: SockJsService,
    sse: SseService,
    sse_members: transports::SseMembers,
    io: SocketIo,
    stomp: StompServer,
    sockjs: Vec<SockJsService>,
}

static DEMO: OnceLock<Demo> = OnceLock::new();

/// Sets the demo up on `stomp` (the broker the chat's messages travel
/// through) with the SockJS services already mounted (counted in `/stats`,
/// closed at shutdown). Returns the Socket.IO server to mount at
/// `/socket.io/`: the conformance handlers plus the chat's events.
pub(crate) fn init(
    stomp: StompServer,
    sockjs: Vec<SockJsService>,
    conformance: fn(NamespaceHandlers) -> NamespaceHandlers,
) -> SocketIo {
    let hub = Hub::start(&stomp, STATS.clone());
    let poll = {
        let hub = hub.clone();
        let mut config = SockJsConfig {
            // The page's long-polling client only polls: a WebSocket is
            // what it is showing the fallback for.
            websocket: false,
            ..SockJsConfig::default()
        };
        crate::cors::apply(&mut config.cors);
        SockJsService::new("/poll", config, move |socket| {
            TASKS.track_future(transports::polling_member(hub.clone(), socket))
        })
    };
    let sse_members = transports::SseMembers::default();
    let sse = {
        let hub = hub.clone();
        let members = sse_members.clone();
        let mut config = SseConfig::default();
        crate::cors::apply(&mut config.cors);
        SseService::new("/sse/events", config, move |session| {
            TASKS.track_future(transports::sse_member(
                hub.clone(),
                members.clone(),
                session,
            ))
        })
    };
    let chat = {
        let hub = hub.clone();
        move |ns: NamespaceHandlers| transports::socketio_chat(conformance(ns), hub.clone())
    };
    let mut config = SocketIoConfig::default();
    crate::cors::apply(&mut config.cors);
    let io = SocketIo::builder(config)
        .namespace("/", chat.clone())
        .namespace("/custom", conformance)
        .build();
    let _ = DEMO.set(Demo {
        hub,
        poll,
        sse,
        sse_members,
        io: io.clone(),
        stomp,
        sockjs,
    });
    io
}

/// Whether the demo answers `path` (the other endpoints are routed by
/// `http_server`).
pub(crate) fn handles(path: &str) -> bool {
    let Some(demo) = DEMO.get() else {
        return false;
    };
    matches!(
        path,
        "/" | "/index.html" | "/app.css" | "/app.js" | "/ws" | "/stats" | "/sse/send"
    ) || demo.poll.matches(path)
        || demo.sse.matches(path)
}

/// Answers one request for a demo endpoint.
pub(crate) async fn route(mut req: Request<Incoming>) -> Response<DemoBody> {
    let Some(demo) = DEMO.get() else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/" | "/index.html" => asset(INDEX_HTML, "text/html; charset=utf-8"),
        "/app.css" => asset(APP_CSS, "text/css; charset=utf-8"),
        "/app.js" => asset(APP_JS, "text/javascript; charset=utf-8"),
        "/ws" => transports::websocket_upgrade(demo.hub.clone(), &mut req),
        "/stats" => stats_response(demo).await,
        "/sse/send" => transports::sse_send(&demo.hub, &demo.sse_members, req).await,
        _ if demo.poll.matches(&path) => demo.poll.handle(req).await.map(BodyExt::boxed),
        _ => demo.sse.handle(req).await,
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response<DemoBody> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    resp
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<DemoBody> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn sockjs_sessions(services: &[SockJsService]) -> usize {
    let mut total = 0;
    for service in services {
        total += service.inspect(|s| s.session_count()).await.unwrap_or(0);
    }
    total
}

async fn sockjs_connections(services: &[SockJsService]) -> usize {
    let mut total = 0;
    for service in services {
        total += service.inspect(|s| s.connection_count()).await.unwrap_or(0);
    }
    total
}

async fn stats_response(demo: &Demo) -> Response<DemoBody> {
    let sockjs = sockjs_sessions(&demo.sockjs).await;
    let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let mut doc = STATS.to_json(&[
        ("socket.io", to_i64(demo.io.connection_count())),
        (
            "stomp",
            to_i64(
                demo.stomp
                    .connection_count()
                    .saturating_sub(demo.hub.bridge_connections()),
            ),
        ),
        ("sockjs", to_i64(sockjs)),
    ]);
    if let Some(fields) = doc.as_object_mut() {
        fields.insert("rooms".into(), demo.hub.rooms());
    }
    let mut resp = Response::new(Full::new(Bytes::from(doc.to_string())).boxed());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// What is still open: chat members and WebSocket tasks, STOMP
/// connections, SockJS requests held open (a closed SockJS session
/// keeps answering polls with its close frame until it expires, so its
/// count says nothing; a client between two polls is waited for by the
/// caller's settle time). Empty once every client has been told and has
/// gone.
async fn remaining(demo: &Demo) -> Vec<(&'static str, usize)> {
    let open = Transport::ALL
        .iter()
        .map(|t| usize::try_from(STATS.open_count(*t)).unwrap_or(0))
        .sum::<usize>();
    let mut sockjs = demo.sockjs.clone();
    sockjs.push(demo.poll.clone());
    let all = [
        ("chat members and WebSockets", open.max(TASKS.len())),
        ("STOMP connections", demo.stomp.connection_count()),
        ("SockJS requests", sockjs_connections(&sockjs).await),
    ];
    all.into_iter().filter(|(_, n)| *n > 0).collect()
}

/// How long nothing may be open before the shutdown is done: a polling
/// client between two requests comes back within it for its close frame.
const SETTLE: Duration = Duration::from_millis(300);

/// Closes every client properly, then waits (at most until `deadline`)
/// for them to have been told: chat members get `bye` and their transport's
/// close (WebSocket 1001, long-polling `c[3000,"Server shutting down"]`,
/// the SSE stream ends and reconnections get 204), STOMP clients an
/// `ERROR`, other SockJS sessions `c[3000,"Server shutting down"]`, `/echo`
/// WebSockets 1001. Messages already queued for a client go out before its
/// close. The HTTP listener keeps accepting meanwhile, so that polling
/// clients can fetch their close frame. Socket.IO comes last, once the
/// others are gone, as Node's `io.close()` right before its HTTP server
/// stops: every socket leaves with `server shutting down`, every
/// Engine.IO session is closed at once (a parked GET gets `1`, WebSockets
/// close), and the clients, which reconnect at once, find the listener
/// closed rather than a new session.
pub(crate) async fn shutdown(deadline: Instant) {
    SHUTDOWN.cancel();
    let Some(demo) = DEMO.get() else {
        return;
    };
    tracing::info!("shutting down: closing every client");
    // Chat members first: each transport task writes what is queued for
    // its member (ending with `bye`), then closes its connection.
    demo.hub.shutdown();
    let members_deadline = Instant::now() + (deadline - Instant::now()) / 2;
    while !TASKS.is_empty() && Instant::now() < members_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // STOMP next: its SockJS sessions then close after the ERROR.
    demo.stomp.shutdown();
    let stomp_deadline = Instant::now() + Duration::from_millis(500);
    while demo.stomp.connection_count() > 0 && Instant::now() < stomp_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut sockjs = 0;
    for service in &demo.sockjs {
        sockjs += service.close_all(3000, "Server shutting down").await;
    }
    // Sessions whose member task is gone already (none, unless it failed).
    let sse = demo.sse.close_all().await;
    tracing::info!(sse, sockjs, "sessions closed; waiting for clients");
    TASKS.close();
    let mut quiet_since: Option<Instant> = None;
    loop {
        let left = remaining(demo).await;
        let now = Instant::now();
        if left.is_empty() {
            let since = *quiet_since.get_or_insert(now);
            if now - since >= SETTLE {
                tracing::info!("every client but Socket.IO's is gone");
                break;
            }
        } else {
            quiet_since = None;
        }
        if now >= deadline {
            tracing::warn!("shutdown timeout: still open: {left:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    crate::socketio::shutdown(deadline).await;
}
