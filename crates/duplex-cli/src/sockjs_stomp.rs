//! The STOMP and SockJS endpoints: STOMP over TCP (`--stomp-addr`), STOMP
//! over WebSocket at `/stomp` (subprotocols `v10.stomp`, `v11.stomp`,
//! `v12.stomp`) and STOMP over SockJS at `/sockjs/stomp`, all on one
//! embedded broker or relayed to an external one (`--stomp-relay`); and the
//! SockJS test services of the sockjs-protocol suite under `/sockjs/`
//! (`echo`, `close`, `disabled_websocket_echo`, `cookie_needed_echo`).

use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes::Bytes;
use duplex_tokio::sockjs::{SockJsBody, SockJsConfig, SockJsService, SockJsSocket};
use duplex_tokio::stomp::{RelayConfig, StompServer};
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::conn_limit::{ConnectionLimit, STOMP_REFUSAL};

/// What the STOMP side serves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// Listen for STOMP over TCP here.
    pub(crate) stomp_addr: Option<SocketAddr>,
    /// Relay every STOMP client to the broker at this address instead of
    /// using the embedded broker.
    pub(crate) relay: Option<String>,
    /// Serve the sockjs-protocol suite's test services, with its streaming
    /// response limit (4096 bytes).
    pub(crate) conformance: bool,
    /// Open STOMP TCP connections at most (an ERROR frame and a close past it).
    pub(crate) max_connections: usize,
}

struct Endpoints {
    stomp: StompServer,
    sockjs: Vec<SockJsService>,
}

/// The conformance server's STOMP heart-beat, both ways.
const SUITE_HEART_BEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// The suite's streaming response limit.
const SUITE_RESPONSE_LIMIT: usize = 4096;

/// Sends every message back on its session.
async fn echo(mut socket: SockJsSocket) {
    while let Some(message) = socket.next().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Closes every session as soon as it opens.
async fn go_away(mut socket: SockJsSocket) {
    let _ = socket.close(3000, "Go away!").await;
}

fn sockjs_services(stomp: &StompServer, conformance: bool) -> Vec<SockJsService> {
    let with_cors = |mut config: SockJsConfig| {
        crate::cors::apply(&mut config.cors);
        config
    };
    let limit = |mut config: SockJsConfig| {
        if conformance {
            config.response_limit = SUITE_RESPONSE_LIMIT;
        }
        with_cors(config)
    };
    let stomp = stomp.clone();
    let mut services = vec![
        SockJsService::new("/sockjs/echo", limit(SockJsConfig::default()), echo),
        SockJsService::new(
            "/sockjs/stomp",
            with_cors(SockJsConfig::default()),
            move |socket| {
                let stomp = stomp.clone();
                async move { stomp.serve_sockjs(socket).await }
            },
        ),
    ];
    if conformance {
        services.push(SockJsService::new(
            "/sockjs/close",
            limit(SockJsConfig::default()),
            go_away,
        ));
        services.push(SockJsService::new(
            "/sockjs/disabled_websocket_echo",
            limit(SockJsConfig {
                websocket: false,
                ..SockJsConfig::default()
            }),
            echo,
        ));
        services.push(SockJsService::new(
            "/sockjs/cookie_needed_echo",
            limit(SockJsConfig {
                cookie_needed: true,
                ..SockJsConfig::default()
            }),
            echo,
        ));
    }
    services
}

static ENDPOINTS: OnceLock<Endpoints> = OnceLock::new();

/// Starts the broker (or relay) and the STOMP TCP listener. Call once,
/// inside the runtime, before serving HTTP.
pub(crate) async fn init(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let mut stomp = match &settings.relay {
        Some(addr) => StompServer::relay(RelayConfig::new(addr.clone())),
        None => StompServer::embedded(),
    };
    if settings.conformance {
        // Heart-beats every second, so that interop checks of them take
        // seconds, not the default's tens of seconds.
        stomp = stomp.with_session_config(|| duplex_stomp::ServerConfig {
            heart_beat: duplex_stomp::HeartBeat::every(SUITE_HEART_BEAT),
            ..Default::default()
        });
    }
    if let Some(addr) = settings.stomp_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| crate::http_server::BindError {
                what: "STOMP over TCP",
                addr,
                source,
            })?;
        let local = listener.local_addr()?;
        match &settings.relay {
            Some(relay) => println!("STOMP over TCP on {local}, relayed to {relay}"),
            None => println!("STOMP over TCP on {local}"),
        }
        let server = stomp.clone();
        let limit = ConnectionLimit::new("STOMP", settings.max_connections, STOMP_REFUSAL);
        tokio::spawn(serve_tcp(server, listener, limit));
    }
    let sockjs = sockjs_services(&stomp, settings.conformance);
    let _ = ENDPOINTS.set(Endpoints { stomp, sockjs });
    Ok(())
}

/// Accepts STOMP TCP connections for as long as the process runs, each
/// counted against `limit` (StompServer::serve_tcp, with the limit).
async fn serve_tcp(server: StompServer, listener: tokio::net::TcpListener, limit: ConnectionLimit) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: keep serving.
                tracing::warn!("STOMP accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(tcp) = limit.admit(tcp, peer) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            tracing::debug!(%peer, "STOMP connection");
            server.serve_stream(tcp).await;
        });
    }
}

/// The STOMP server and the SockJS services, once [`init`] has run (for
/// the demo's statistics and shutdown).
pub(crate) fn endpoints() -> Option<(StompServer, Vec<SockJsService>)> {
    ENDPOINTS.get().map(|e| (e.stomp.clone(), e.sockjs.clone()))
}

/// Whether `path` is one of these endpoints.
pub(crate) fn handles(path: &str) -> bool {
    ENDPOINTS
        .get()
        .is_some_and(|e| path == "/stomp" || e.sockjs.iter().any(|s| s.matches(path)))
}

/// Answers a request for one of these endpoints.
pub(crate) async fn route(mut req: Request<Incoming>) -> Response<SockJsBody> {
    let Some(endpoints) = ENDPOINTS.get() else {
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    };
    if let Some(service) = endpoints
        .sockjs
        .iter()
        .find(|s| s.matches(req.uri().path()))
    {
        return service.handle(req).await;
    }
    match endpoints.stomp.upgrade(&mut req) {
        Ok(response) => response.map(|()| SockJsBody::empty()),
        Err(e) => {
            let (parts, body) = e.http_response().into_parts();
            Response::from_parts(parts, SockJsBody::full(body))
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<SockJsBody> {
    let mut resp = Response::new(SockJsBody::full(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
