//! The HTTP/1.1 server the endpoints are mounted on (hyper, with upgrades).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::conn_limit::{ConnectionLimit, HTTP_REFUSAL};

type Body = Full<Bytes>;

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
/// answering (keep-alive off), and returns once they have, or at
/// `drain_until()`'s deadline.
pub(crate) async fn run(
    addr: SocketAddr,
    name: &str,
    max_connections: usize,
    stop: impl std::future::Future<Output = std::time::Instant>,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr).await.map_err(|source| BindError {
        what: "HTTP",
        addr,
        source,
    })?;
    let local = listener.local_addr()?;
    println!("{name} listening on http://{local}/ (WebSocket echo at ws://{local}/echo)");
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
        connections.spawn(async move {
            // Request heads of every endpoint, upgrades included, are held
            // to duplex-ws's handshake limits (16 KiB, 64 headers, 431
            // beyond) and must arrive within 10 s; hyper's own bounds are
            // far larger.
            let conn = duplex_tokio::HttpLimits::default()
                .http1_builder()
                .serve_connection(TokioIo::new(tcp), service_fn(route_all))
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = closing.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
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

/// The demo's endpoints, the SockJS/STOMP endpoints (streaming bodies),
/// then everything else.
async fn route_all(
    req: Request<Incoming>,
) -> Result<
    Response<Either<Either<Body, duplex_tokio::sockjs::SockJsBody>, crate::demo::DemoBody>>,
    Infallible,
> {
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
