//! The STOMP and SockJS endpoints: STOMP over TCP (`--stomp-addr`), STOMP
//! over WebSocket at `/stomp` (subprotocols `v10.stomp`, `v11.stomp`,
//! `v12.stomp`), all on one embedded broker or relayed to an external one
//! (`--stomp-relay`).

use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes::Bytes;
use duplex_tokio::sockjs::SockJsBody;
use duplex_tokio::stomp::{RelayConfig, StompServer};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

/// What the STOMP side serves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    /// Listen for STOMP over TCP here.
    pub(crate) stomp_addr: Option<SocketAddr>,
    /// Relay every STOMP client to the broker at this address instead of
    /// using the embedded broker.
    pub(crate) relay: Option<String>,
}

struct Endpoints {
    stomp: StompServer,
}

static ENDPOINTS: OnceLock<Endpoints> = OnceLock::new();

/// Starts the broker (or relay) and the STOMP TCP listener. Call once,
/// inside the runtime, before serving HTTP.
pub(crate) async fn init(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let stomp = match &settings.relay {
        Some(addr) => StompServer::relay(RelayConfig::new(addr.clone())),
        None => StompServer::embedded(),
    };
    if let Some(addr) = settings.stomp_addr {
        // Another server on the port (a second conformance server, a local
        // broker) costs only the TCP listener, not the HTTP endpoints.
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let local = listener.local_addr()?;
                match &settings.relay {
                    Some(relay) => println!("STOMP over TCP on {local}, relayed to {relay}"),
                    None => println!("STOMP over TCP on {local}"),
                }
                let server = stomp.clone();
                tokio::spawn(async move { server.serve_tcp(listener).await });
            }
            Err(e) => eprintln!("duplex: STOMP over TCP disabled: cannot listen on {addr}: {e}"),
        }
    }
    let _ = ENDPOINTS.set(Endpoints { stomp });
    Ok(())
}

/// Whether `path` is one of these endpoints.
pub(crate) fn handles(path: &str) -> bool {
    ENDPOINTS.get().is_some() && path == "/stomp"
}

/// Answers a request for one of these endpoints.
pub(crate) async fn route(mut req: Request<Incoming>) -> Response<SockJsBody> {
    let Some(endpoints) = ENDPOINTS.get() else {
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    };
    match endpoints.stomp.upgrade(&mut req) {
        Ok(response) => response.map(|()| SockJsBody::empty()),
        Err(e) => {
            let mut resp = text(
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                format!("{e}\n"),
            );
            if e.status() == 426 {
                resp.headers_mut().insert(
                    http::header::SEC_WEBSOCKET_VERSION,
                    http::HeaderValue::from_static("13"),
                );
            }
            resp
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
