//! `HttpLimits` on a hyper server: an oversized request head or too many
//! header lines get 431 and a closed connection, on plain requests and on
//! WebSocket upgrades alike; a head that trickles in is dropped after the
//! header read timeout; heads within the limits are served (200, 101).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use duplex_tokio::HttpLimits;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "http_common/heads.rs"]
mod heads;

use heads::status_of;

/// Every wait is bounded by this.
const STEP: Duration = Duration::from_secs(10);

/// `200 ok` for plain requests, a WebSocket echo for upgrades.
async fn route(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.headers().contains_key(hyper::header::UPGRADE) {
        return Ok(
            match duplex_tokio::upgrade(&mut req, Default::default(), None) {
                Ok((response, upgrade)) => {
                    tokio::spawn(async move {
                        let Ok(mut ws) = upgrade.await else { return };
                        while let Some(Ok(msg)) = ws.next().await {
                            if ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                    });
                    response.map(|()| Full::default())
                }
                Err(e) => {
                    let mut r = Response::new(Full::default());
                    *r.status_mut() = hyper::StatusCode::from_u16(e.status()).unwrap();
                    r
                }
            },
        );
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

async fn serve(limits: HttpLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(
                limits
                    .http1_builder()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tcp),
                        hyper::service::service_fn(route),
                    )
                    .with_upgrades(),
            );
        }
    });
    addr
}

/// A `GET /ws` head with `extra` header lines of `value_len` bytes each.
fn head(upgrade: bool, extra: usize, value_len: usize) -> String {
    heads::head("t", "/ws", upgrade, extra, value_len)
}

#[tokio::test]
async fn oversized_heads_get_431_and_a_close_on_requests_and_upgrades() {
    let addr = serve(HttpLimits::default()).await;
    for upgrade in [false, true] {
        // 64 KiB of head, in 64 lines: too large, not too many.
        let big = head(upgrade, 60, 1024);
        assert!(big.len() > 60 << 10);
        assert_eq!(
            status_of(addr, &big).await,
            (431, true),
            "upgrade {upgrade}"
        );
        // 65 short header lines and more: too many.
        let many = head(upgrade, 70, 1);
        assert!(many.len() < 4 << 10);
        assert_eq!(
            status_of(addr, &many).await,
            (431, true),
            "upgrade {upgrade}"
        );
    }
}

#[tokio::test]
async fn heads_within_the_limits_are_served() {
    let addr = serve(HttpLimits::default()).await;
    // 12 KiB over 50 header lines: large but allowed.
    let (status, _) = status_of(addr, &head(false, 50, 240)).await;
    assert_eq!(status, 200);
    let (status, closed) = status_of(addr, &head(true, 50, 240)).await;
    assert_eq!((status, closed), (101, false));

    // And an ordinary upgrade carries messages.
    let (mut ws, _) = duplex_tokio::connect(&format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send("hello".into()).await.unwrap();
    let echoed = tokio::time::timeout(STEP, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), "hello".into());
    ws.close().await.unwrap();
}

#[tokio::test]
async fn limits_are_configurable() {
    let limits = HttpLimits {
        max_head_size: 8 << 10,
        max_headers: 16,
        ..HttpLimits::default()
    };
    let addr = serve(limits).await;
    assert_eq!(status_of(addr, &head(true, 10, 1024)).await.0, 431);
    assert_eq!(status_of(addr, &head(false, 20, 1)).await.0, 431);
    assert_eq!(status_of(addr, &head(false, 10, 100)).await.0, 200);
}

#[tokio::test]
async fn a_trickled_head_is_dropped_after_the_header_read_timeout() {
    let limits = HttpLimits {
        header_read_timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let addr = serve(limits).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "closed after {waited:?}, before the timeout"
    );
    // hyper closes without an answer, or with a 408 in some versions.
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}
