//! `HttpLimits` on request bodies: a body that trickles past the body read
//! timeout gets 408 and a closed connection, on an Engine.IO endpoint
//! (the driver under every polling service) and on a route of one's own
//! through `HttpLimits::read_body`; a body over the endpoint's size gets
//! 413; bodies within the limits are served.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use duplex_tokio::HttpLimits;
use duplex_tokio::engineio::{self, EngineIoConfig, EngineIoService};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};

/// Every wait is bounded by this.
const STEP: Duration = Duration::from_secs(10);
/// The body read timeout of the tests' server.
const BODY_TIMEOUT: Duration = Duration::from_millis(400);
/// The most bytes `/own` takes.
const OWN_MAX: usize = 1024;

fn limits() -> HttpLimits {
    HttpLimits {
        body_read_timeout: BODY_TIMEOUT,
        ..HttpLimits::default()
    }
}

/// `/engine.io/` is an Engine.IO echo (bodies over 1,000 bytes refused);
/// `/own` reads its body with `HttpLimits::read_body` and answers its
/// length.
async fn route(
    engine: EngineIoService,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if engine.matches(req.uri().path()) {
        return Ok(engine.handle(req).await);
    }
    Ok(match limits().read_body(req.into_body(), OWN_MAX).await {
        Ok(body) => Response::new(Full::new(Bytes::from(body.len().to_string()))),
        Err(e) => {
            let mut r = Response::new(Full::new(Bytes::from(e.to_string())));
            *r.status_mut() = e.http_status().expect("a status for a body failure");
            r
        }
    })
}

async fn serve() -> SocketAddr {
    let config = EngineIoConfig {
        max_http_buffer_size: 1000,
        ..EngineIoConfig::default()
    };
    let engine = engineio::echo(config, "/engine.io");
    engine.set_http_limits(&limits());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let engine = engine.clone();
            tokio::spawn(
                limits()
                    .http1_builder()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tcp),
                        hyper::service::service_fn(move |req| route(engine.clone(), req)),
                    )
                    .with_upgrades(),
            );
        }
    });
    addr
}

/// What the server wrote until it closed (or `STEP` passed): the status
/// of the first answer, the body, and whether the connection was closed.
async fn answer(tcp: &mut (impl AsyncRead + Unpin)) -> (u16, String, bool) {
    let mut seen = Vec::new();
    let closed = loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(STEP, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => {
                seen.extend_from_slice(&buf[..n]);
                // A complete answer with a content-length: stop there
                // unless the server closes right after (checked below).
                if complete(&seen) {
                    match tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut buf)).await
                    {
                        Ok(Ok(0) | Err(_)) => break true,
                        Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
                        Err(_) => break false,
                    }
                }
            }
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&seen).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body, closed)
}

fn complete(seen: &[u8]) -> bool {
    let text = String::from_utf8_lossy(seen);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

/// Sends a POST to `path` announcing `length` body bytes, then the body a
/// byte every `every` from a task of its own (until the server closes);
/// returns the read half to read the answer from, and that task.
async fn trickle(
    addr: SocketAddr,
    path: &str,
    length: usize,
    every: Duration,
) -> (OwnedReadHalf, tokio::task::JoinHandle<()>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {length}\r\n\r\n4"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        for _ in 1..length {
            tokio::time::sleep(every).await;
            if write.write_all(b"x").await.is_err() {
                break;
            }
        }
        // Held open until aborted: the close must be the server's.
        std::future::pending::<()>().await;
    });
    (read, writer)
}

/// An Engine.IO session id from a polling handshake.
async fn engineio_sid(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let (status, body, _) = answer(&mut tcp).await;
    assert_eq!(status, 200, "{body}");
    let start = body.find("\"sid\":\"").expect("a sid") + 7;
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].to_owned()
}

#[tokio::test]
async fn a_body_trickled_past_the_timeout_gets_408_and_a_close() {
    let addr = serve().await;
    let sid = engineio_sid(addr).await;
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    for path in [path.as_str(), "/own"] {
        let started = Instant::now();
        // 200 bytes at 10 a second: 20 s, far past the 400 ms timeout.
        let (mut read, writer) = trickle(addr, path, 200, Duration::from_millis(100)).await;
        let (status, body, closed) = answer(&mut read).await;
        writer.abort();
        let waited = started.elapsed();
        assert_eq!((status, closed), (408, true), "{path}: {body}");
        assert!(
            waited >= BODY_TIMEOUT && waited < STEP,
            "{path}: answered after {waited:?}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_endpoint_limit_gets_413() {
    let addr = serve().await;
    let sid = engineio_sid(addr).await;
    for (path, length) in [
        (
            format!("/engine.io/?EIO=4&transport=polling&sid={sid}"),
            1001,
        ),
        ("/own".to_owned(), OWN_MAX + 1),
    ] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let body = format!("4{}", "x".repeat(length - 1));
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\r\n{body}"
        );
        // The server may answer before it has read everything.
        let _ = tcp.write_all(request.as_bytes()).await;
        let (status, body, _) = answer(&mut tcp).await;
        assert_eq!(status, 413, "{path}: {body}");
    }
}

#[tokio::test]
async fn bodies_within_the_limits_are_served() {
    let addr = serve().await;
    let sid = engineio_sid(addr).await;
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    for (path, length, expected) in [
        (path.as_str(), 1000, "ok".to_owned()),
        ("/own", OWN_MAX, OWN_MAX.to_string()),
    ] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let body = format!("4{}", "x".repeat(length - 1));
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {length}\r\n\r\n{body}"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let (status, body, _) = answer(&mut tcp).await;
        assert_eq!((status, body.as_str()), (200, expected.as_str()), "{path}");
    }
}

#[tokio::test]
async fn a_slow_but_timely_body_is_read_whole() {
    let addr = serve().await;
    // 5 bytes 50 ms apart: 200 ms, within the 400 ms timeout.
    let (mut read, writer) = trickle(addr, "/own", 5, Duration::from_millis(50)).await;
    let (status, body, _) = answer(&mut read).await;
    writer.abort();
    assert_eq!((status, body.as_str()), (200, "5"));
}
