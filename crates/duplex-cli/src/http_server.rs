//! The HTTP/1.1 server the endpoints are mounted on (hyper, with upgrades).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type Body = Full<Bytes>;

/// Listens on `addr` and serves every endpoint until the process ends.
pub(crate) async fn run(addr: SocketAddr, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("{name} listening on http://{local}/ (WebSocket echo at ws://{local}/echo)");
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and similar: keep serving the rest.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service_fn(route_all))
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

/// The SockJS/STOMP endpoints (streaming bodies), then everything else.
async fn route_all(
    req: Request<Incoming>,
) -> Result<Response<Either<Body, duplex_tokio::sockjs::SockJsBody>>, Infallible> {
    if crate::sockjs_stomp::handles(req.uri().path()) {
        return Ok(crate::sockjs_stomp::route(req).await.map(Either::Right));
    }
    route(req).await.map(|r| r.map(Either::Left))
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
            tokio::spawn(async move {
                let Ok(mut ws) = upgrade.await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            response.map(|()| Full::new(Bytes::new()))
        }
        Err(e) => {
            let mut resp = Response::new(Full::new(Bytes::from(e.to_string())));
            *resp.status_mut() =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
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
