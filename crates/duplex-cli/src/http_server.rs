//! The HTTP server the endpoints are mounted on: HTTP/1.1 and HTTP/2 on one
//! listener (hyper; WebSockets by HTTP/1.1 upgrade or HTTP/2 extended
//! CONNECT), in cleartext or over TLS (`--tls-cert`/`--tls-key`, or
//! `--tls-self-signed`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::conn_limit::{ConnectionLimit, HTTP_REFUSAL};

type Body = Full<Bytes>;

/// TLS for the HTTP listener of `duplex serve` and `duplex conformance-server`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve TLS only (https://, wss://; HTTP/2 by ALPN) with this PEM
    /// certificate chain, end-entity first. Needs --tls-key.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Serve TLS with a certificate for localhost and 127.0.0.1 made at
    /// start-up (for a quick local try: browsers warn about it).
    #[arg(long)]
    pub(crate) tls_self_signed: bool,
}

impl TlsArgs {
    /// The acceptor these arguments ask for; `None`: cleartext.
    fn acceptor(&self) -> Result<Option<duplex_tokio::TlsAcceptor>, Box<dyn std::error::Error>> {
        let config = duplex_tokio::TlsServerConfig::default();
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Ok(Some(duplex_tokio::TlsAcceptor::from_pem_files_with(
                cert, key, config,
            )?));
        }
        if self.tls_self_signed {
            let made = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ])?;
            let acceptor = duplex_tokio::TlsAcceptor::from_pem(
                made.cert.pem().as_bytes(),
                made.signing_key.serialize_pem().as_bytes(),
                config,
            )?;
            println!(
                "using a self-signed certificate for localhost, 127.0.0.1 and ::1, made at start-up \
                 (browsers will warn; pass --tls-cert and --tls-key for a real one)"
            );
            return Ok(Some(acceptor));
        }
        Ok(None)
    }
}

/// A listener that could not be opened (the port taken, the address not
/// this host's): the server stops and the process exits non-zero with
/// this message, rather than running without the endpoint.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {what} on {addr}: {source}")]
pub(crate) struct BindError {
    /// What the listener was for (`HTTP`, `STOMP over TCP`).
    pub(crate) what: &'static str,
    /// The address asked for.
    pub(crate) addr: SocketAddr,
    /// Why the OS refused.
    pub(crate) source: std::io::Error,
}

/// Listens on `addr` and serves every endpoint until `stop` completes;
/// then stops accepting, lets each connection finish the request it is
/// answering (keep-alive off; HTTP/2: GOAWAY), and returns once they have,
/// or at `drain_until()`'s deadline.
pub(crate) async fn run(
    addr: SocketAddr,
    name: &str,
    max_connections: usize,
    tls: &TlsArgs,
    stop: impl std::future::Future<Output = std::time::Instant>,
) -> Result<(), Box<dyn std::error::Error>> {
    let tls = tls.acceptor()?;
    let listener = TcpListener::bind(addr).await.map_err(|source| BindError {
        what: "HTTP",
        addr,
        source,
    })?;
    let local = listener.local_addr()?;
    let (http, ws) = if tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    println!("{name} listening on {http}://{local}/ (WebSocket echo at {ws}://{local}/echo)");
    let http_config = Arc::new(duplex_tokio::HttpServerConfig::default());
    let connections = tokio_util::task::TaskTracker::new();
    let closing = tokio_util::sync::CancellationToken::new();
    let limit = ConnectionLimit::new("HTTP", max_connections, HTTP_REFUSAL);
    tokio::pin!(stop);
    let deadline = loop {
        let (tcp, peer) = tokio::select! {
            deadline = &mut stop => break deadline,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match limit.admit(tcp, peer) {
                    Some(tcp) => (tcp, peer),
                    None => continue,
                },
                Err(e) => {
                    // Out of file descriptors and similar: keep serving the rest.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let closing = closing.clone();
        let (tls, http_config) = (tls.clone(), http_config.clone());
        connections.spawn(async move {
            // Counted as HTTP/1.1 or HTTP/2 from its first request on, so
            // that /stats shows what the clients spoke.
            let counted: Arc<OnceLock<Box<dyn Send + Sync>>> = Arc::default();
            let service = service_fn(move |req: Request<Incoming>| {
                let version = req.version();
                counted.get_or_init(|| Box::new(crate::demo::count_http_connection(version)));
                route_all(req)
            });
            let shutdown = closing.cancelled_owned();
            // Request heads of every endpoint, upgrades included, are held
            // to duplex-ws's handshake limits (16 KiB, 64 headers, 431
            // beyond) and must arrive within 10 s; hyper's own bounds are
            // far larger. HTTP/2 comes by ALPN over TLS and by its preface
            // in cleartext.
            let result = match tls {
                None => {
                    duplex_tokio::serve_http(
                        tcp,
                        duplex_tokio::HttpProtocol::Detect,
                        service,
                        &http_config,
                        shutdown,
                    )
                    .await
                }
                Some(tls) => match tls.accept(tcp).await {
                    Ok((stream, alpn)) => {
                        duplex_tokio::serve_http(
                            stream,
                            alpn.into(),
                            service,
                            &http_config,
                            shutdown,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    };
    drop(listener);
    closing.cancel();
    connections.close();
    let tracked = crate::demo::tasks();
    tracked.close();
    let all = async {
        connections.wait().await;
        tracked.wait().await;
    };
    if tokio::time::timeout_at(deadline.into(), all).await.is_err() {
        tracing::warn!(
            "shutdown: {} connections still open at the deadline",
            connections.len()
        );
    }
    Ok(())
}

type AllBody = Either<Either<Body, duplex_tokio::sockjs::SockJsBody>, crate::demo::DemoBody>;

/// Every endpoint, with WebSocket openings counted by how they came
/// (HTTP/1.1 upgrade or HTTP/2 extended CONNECT).
async fn route_all(req: Request<Incoming>) -> Result<Response<AllBody>, Infallible> {
    let version = req.version();
    let websocket = duplex_tokio::wants_websocket(&req);
    let response = route_any(req).await?;
    let opened = match response.status() {
        StatusCode::SWITCHING_PROTOCOLS => true,
        s => version == http::Version::HTTP_2 && s.is_success(),
    };
    if websocket && opened {
        crate::demo::count_websocket_opened(version);
    }
    Ok(response)
}

/// Whether a WebSocket endpoint may be at `path` (the endpoint itself
/// decides the rest); an HTTP/2 CONNECT anywhere else is a 404.
fn websocket_path(path: &str) -> bool {
    matches!(path, "/echo" | "/ws" | "/stomp")
        || ["/socket.io", "/engine.io", "/sockjs/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// The demo's endpoints, the SockJS/STOMP endpoints (streaming bodies),
/// then everything else.
async fn route_any(req: Request<Incoming>) -> Result<Response<AllBody>, Infallible> {
    if req.method() == http::Method::CONNECT {
        // An HTTP/2 CONNECT: RFC 8441's checks first (no :protocol 405,
        // another protocol 400, a version other than 13 426), then the path.
        let protocol = req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .map(|p| p.as_str());
        if let Err(e) = duplex_ws::handshake::h2::ConnectRequest::from_http(&req, protocol) {
            let response = e.http_response().map(|body| Full::new(Bytes::from(body)));
            return Ok(response.map(|b| Either::Left(Either::Left(b))));
        }
        if !websocket_path(req.uri().path()) {
            let response = text_response(StatusCode::NOT_FOUND, "not found\n");
            return Ok(response.map(|b| Either::Left(Either::Left(b))));
        }
    }
    if crate::demo::handles(req.uri().path()) {
        return Ok(crate::demo::route(req).await.map(Either::Right));
    }
    if crate::sockjs_stomp::handles(req.uri().path()) {
        return Ok(crate::sockjs_stomp::route(req)
            .await
            .map(|b| Either::Left(Either::Right(b))));
    }
    route(req)
        .await
        .map(|r| r.map(|b| Either::Left(Either::Left(b))))
}

async fn route(mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(match req.uri().path() {
        "/echo" => websocket_echo(&mut req),
        p if p == "/engine.io" || p.starts_with("/engine.io/") => {
            crate::socketio::engineio(req).await
        }
        p if p == "/socket.io" || p.starts_with("/socket.io/") => {
            crate::socketio::socketio(req).await
        }
        p if crate::socketio::is_recovery_path(p) => crate::socketio::recovery(req).await,
        _ => text_response(StatusCode::NOT_FOUND, "not found\n"),
    })
}

fn text_response(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Upgrades to a WebSocket that sends every message back unchanged.
fn websocket_echo(req: &mut Request<Incoming>) -> Response<Body> {
    let config = duplex_tokio::ServerConfig {
        deflate: Some(Default::default()),
        ..Default::default()
    };
    match duplex_tokio::upgrade(req, config, None) {
        Ok((response, upgrade)) => {
            crate::demo::tasks().spawn(async move {
                let Ok(mut ws) = upgrade.await else { return };
                let _open = crate::demo::count_connection(crate::demo::Transport::Echo);
                let stop = crate::demo::shutdown_token();
                loop {
                    tokio::select! {
                        msg = ws.next() => match msg {
                            Some(Ok(msg)) => {
                                crate::demo::count_echo(msg.len());
                                if ws.send(msg).await.is_err() {
                                    break;
                                }
                            }
                            _ => break,
                        },
                        () = stop.cancelled() => {
                            let going_away = ws.close_with(duplex_ws::CloseCode::GOING_AWAY, "server shutting down");
                            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), going_away).await;
                            break;
                        }
                    }
                }
            });
            response.map(|()| Full::new(Bytes::new()))
        }
        Err(e) => e.http_response().map(|body| Full::new(Bytes::from(body))),
    }
}
