//! Hostile and broken STOMP clients over loopback: each is answered with an
//! `ERROR` frame (where STOMP has one), the connection is closed, and the
//! broker forgets it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use duplex_stomp::{BrokerConfig, ConnectionId, HeartBeat, Limits};
use duplex_tokio::stomp::{BrokerHandle, StompBackend, StompServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod stomp_common;

use stomp_common::{serve_tcp as start, until_closed};

/// Writes `input` (ignoring a reset: the server may close before reading
/// everything), then reads until the server closes; returns what it sent
/// and how long the close took.
async fn exchange(addr: SocketAddr, input: &[u8]) -> (String, Duration) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let _ = tcp.write_all(input).await;
    until_closed(&mut tcp, started).await
}

/// The broker, and a server on it with a 1 KiB body limit and 100 ms
/// heart-beats.
fn server() -> (BrokerHandle, StompServer) {
    let broker = BrokerHandle::spawn(BrokerConfig::default());
    let server =
        StompServer::new(StompBackend::Embedded(broker.clone())).with_session_config(|| {
            duplex_stomp::ServerConfig {
                limits: Limits {
                    max_body: 1024,
                    max_frame: 2048,
                    ..Limits::default()
                },
                heart_beat: HeartBeat::every(Duration::from_millis(100)),
                connect_timeout: Some(Duration::from_millis(500)),
                ..Default::default()
            }
        });
    (broker, server)
}

const CONNECT: &str = "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\0";

/// The broker has no connection left registered (ids are handed out from
/// 1 upwards).
async fn broker_is_empty(broker: &BrokerHandle) {
    // The connection task tells the broker after it closed the socket.
    for _ in 0..100 {
        let any = broker
            .inspect(|b| (1..=16).any(|i| b.is_connected(ConnectionId(i))))
            .await
            .unwrap();
        if !any {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the broker still holds a connection");
}

#[tokio::test]
async fn frame_over_the_limits_gets_error_then_close() {
    let (broker, server) = server();
    let addr = start(server).await;
    let body = "x".repeat(1500);
    let input = format!("{CONNECT}SEND\ndestination:/queue/a\ncontent-length:1500\n\n{body}\0");
    let (reply, _) = exchange(addr, input.as_bytes()).await;
    assert!(reply.starts_with("CONNECTED\n"), "{reply}");
    let error = reply.find("ERROR\n").expect("an ERROR frame");
    assert!(reply[error..].contains("message:"), "{reply}");
    assert!(
        reply.ends_with('\0'),
        "ERROR is the last thing sent: {reply:?}"
    );
    // A header line over its limit, too.
    let long = format!(
        "{CONNECT}SEND\ndestination:/queue/{}\n\nx\0",
        "a".repeat(10_000)
    );
    let (reply, _) = exchange(addr, long.as_bytes()).await;
    assert!(reply.contains("ERROR\n"), "{reply}");
    broker_is_empty(&broker).await;
}

#[tokio::test]
async fn client_silent_past_its_heart_beat_is_closed() {
    let (broker, server) = server();
    let addr = start(server).await;
    // The client promises a heart-beat every 100 ms and then says nothing.
    let connect = "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:100,100\n\n\0";
    let (reply, took) = exchange(addr, connect.as_bytes()).await;
    assert!(reply.starts_with("CONNECTED\n"), "{reply}");
    assert!(reply.contains("heart-beat:100,100"), "{reply}");
    let error = reply.find("ERROR\n").expect("an ERROR frame");
    // The server sent its own heart-beats (due every 100 ms) meanwhile: one
    // or, on a slow machine, two bare EOLs between CONNECTED and ERROR.
    let connected_end = reply.find('\0').expect("CONNECTED's NUL") + 1;
    let between = &reply[connected_end..error];
    assert!(
        !between.is_empty() && between.chars().all(|c| c == '\n'),
        "{reply:?}"
    );
    // Noticed within 1.75 to 2 intervals (tolerance 2 x 100 ms) after the
    // last octet, with room for a slow machine.
    assert!(took >= Duration::from_millis(170), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    broker_is_empty(&broker).await;
}

#[tokio::test]
async fn frames_before_connect_get_error_then_close() {
    let (broker, server) = server();
    let addr = start(server).await;
    for early in [
        "SEND\ndestination:/queue/a\nreceipt:r1\n\nhi\0",
        "SUBSCRIBE\ndestination:/queue/a\nid:0\n\n\0",
        "DISCONNECT\n\n\0",
    ] {
        let (reply, _) = exchange(addr, early.as_bytes()).await;
        assert!(reply.starts_with("ERROR\n"), "{early:?} -> {reply:?}");
        assert!(!reply.contains("CONNECTED"), "{reply}");
        if early.contains("receipt:r1") {
            assert!(reply.contains("receipt-id:r1"), "{reply}");
        }
    }
    broker_is_empty(&broker).await;
}

#[tokio::test]
async fn a_client_that_never_connects_is_dropped() {
    let (_broker, server) = server();
    let addr = start(server).await;
    let (reply, took) = exchange(addr, b"").await;
    assert!(reply.starts_with("ERROR\n"), "{reply:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
}

#[tokio::test]
async fn garbage_on_the_tcp_port_is_refused() {
    let (broker, server) = server();
    let addr = start(server).await;
    let tls_hello: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    let mut noise = vec![0u8; 64 * 1024];
    let mut x = 0x2545_f491_u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    for input in [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice(),
        tls_hello,
        noise.as_slice(),
        b"CONNECT\naccept-version:1.2\nhost:/\n\n\0\xff\xfe\n\n\0".as_slice(),
    ] {
        let (reply, _) = exchange(addr, input).await;
        assert!(reply.contains("ERROR\n"), "{reply:?}");
    }
    broker_is_empty(&broker).await;
    // The server still serves well-behaved clients afterwards.
    let client =
        duplex_tokio::stomp::StompClient::connect(addr, duplex_stomp::ClientConfig::new("/"))
            .await
            .unwrap();
    client.disconnect().await.unwrap();
}
