//! Connection limits of `duplex serve`'s listeners, end to end: past
//! `--max-connections` an HTTP client gets 503 and a close, past
//! `--max-stomp-connections` a STOMP TCP client gets an ERROR frame and a
//! close; the listener keeps accepting, and once a slot is free a client is
//! served again.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod common;

use common::Server;

/// Every wait in this test is bounded by this.
const STEP: Duration = Duration::from_secs(10);

/// Sends `request` on a new connection and reads until the server closes.
async fn exchange(addr: &str, request: &[u8]) -> String {
    let mut tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    timeout(STEP, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

const GET_STATS: &[u8] = b"GET /stats HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn past_the_limits_http_gets_503_and_stomp_an_error_frame_and_the_listeners_go_on() {
    let server = Server::start_with(&["--max-connections", "2", "--max-stomp-connections", "1"]);

    // Two idle HTTP connections fill the HTTP listener.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(&server.addr).await.expect("connect"));
    }
    // Let the server accept (and count) them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let answer = exchange(&server.addr, GET_STATS).await;
        assert!(
            answer.starts_with("HTTP/1.1 503 "),
            "past the limit: {answer:?}"
        );
        assert!(answer.ends_with("too many connections\n"), "{answer:?}");
    }
    // A slot freed: served again.
    held.pop();
    let mut served = String::new();
    for _ in 0..50 {
        served = exchange(&server.addr, GET_STATS).await;
        if served.starts_with("HTTP/1.1 200 ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served.starts_with("HTTP/1.1 200 "),
        "after a slot freed: {served:?}"
    );

    // STOMP: one connection fills the listener; the next gets an ERROR frame.
    let mut first = TcpStream::connect(&server.stomp_addr)
        .await
        .expect("connect");
    first
        .write_all(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = timeout(STEP, first.read(&mut buf))
        .await
        .expect("CONNECTED in time")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"CONNECTED"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let refused = exchange(
        &server.stomp_addr,
        b"CONNECT\naccept-version:1.2\nhost:x\n\n\0",
    )
    .await;
    assert!(refused.starts_with("ERROR\n"), "{refused:?}");
    assert!(
        refused.contains("message:too many connections"),
        "{refused:?}"
    );
    drop(first);
    let mut connected = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut tcp = TcpStream::connect(&server.stomp_addr)
            .await
            .expect("connect");
        tcp.write_all(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
            .await
            .expect("write");
        let n = timeout(STEP, tcp.read(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        connected = String::from_utf8_lossy(&buf[..n]).into_owned();
        if connected.starts_with("CONNECTED") {
            break;
        }
    }
    assert!(
        connected.starts_with("CONNECTED"),
        "after a slot freed: {connected:?}"
    );
}
