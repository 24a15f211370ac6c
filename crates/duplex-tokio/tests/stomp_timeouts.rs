//! Issue #20 over real TCP on loopback: a client that never sends
//! `CONNECT` is dropped after the server's connect timeout, and a client
//! that goes silent after negotiating heart-beats is dropped within twice
//! the interval, while one that keeps its promise stays. Short configured
//! values keep the tests fast; the defaults are tested in simulated time in
//! duplex-stomp.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use duplex_stomp::HeartBeat;
use duplex_tokio::stomp::StompServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod stomp_common;

use stomp_common::{serve_tcp, until_closed};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const HEART_BEAT: Duration = Duration::from_millis(300);
/// What a loaded machine may add to a deadline before the close is seen.
const SLACK: Duration = Duration::from_millis(400);

async fn start() -> SocketAddr {
    let server = StompServer::embedded().with_session_config(|| duplex_stomp::ServerConfig {
        heart_beat: HeartBeat::every(HEART_BEAT),
        connect_timeout: Some(CONNECT_TIMEOUT),
        ..Default::default()
    });
    serve_tcp(server).await
}

/// A client connected with `heart-beat:HEART_BEAT,0`: it promises to
/// send a beat every interval.
async fn connect_promising_heart_beats(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let connect = format!(
        "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:{},0\n\n\0",
        HEART_BEAT.as_millis()
    );
    tcp.write_all(connect.as_bytes()).await.unwrap();
    tcp
}

#[tokio::test]
async fn a_tcp_client_that_never_sends_connect_is_dropped_at_the_connect_timeout() {
    let addr = start().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    let (reply, took) = until_closed(&mut tcp, opened).await;
    assert!(reply.starts_with("ERROR\n"), "{reply:?}");
    assert!(reply.contains("message:connect timeout"), "{reply:?}");
    assert!(
        took >= CONNECT_TIMEOUT - Duration::from_millis(20),
        "{took:?}"
    );
    assert!(took <= CONNECT_TIMEOUT + SLACK, "{took:?}");
}

#[tokio::test]
async fn a_client_silent_after_negotiating_heart_beats_is_dropped_within_twice_the_interval() {
    let addr = start().await;
    let mut tcp = connect_promising_heart_beats(addr).await;
    // The last octet the client ever sends has left now.
    let last_octet = Instant::now();
    let (reply, took) = until_closed(&mut tcp, last_octet).await;
    assert!(reply.starts_with("CONNECTED\n"), "{reply:?}");
    assert!(reply.contains("message:heart-beat timeout"), "{reply:?}");
    // Today's bound: twice the interval (the issue saw 4 s for 1 s).
    assert!(took <= HEART_BEAT * 2 + SLACK, "dropped after {took:?}");
    assert!(
        took >= HEART_BEAT * 7 / 4 - Duration::from_millis(20),
        "dropped after {took:?}"
    );
}

#[tokio::test]
async fn a_client_that_keeps_its_heart_beat_promise_stays_connected() {
    let addr = start().await;
    let mut tcp = connect_promising_heart_beats(addr).await;
    // Beat at the promised interval for several times the tolerance.
    for _ in 0..8 {
        tokio::time::sleep(HEART_BEAT).await;
        tcp.write_all(b"\n").await.unwrap();
    }
    tcp.write_all(b"SUBSCRIBE\nid:0\ndestination:/queue/a\nreceipt:alive\n\n\0")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&reply).contains("receipt-id:alive") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(got, Ok(true), "{text:?}");
    assert!(!text.contains("ERROR"), "{text:?}");
}
