//! Loopback helpers for the STOMP-over-TCP tests: a server on 127.0.0.1,
//! and a bounded read of everything it sends until it closes.

// Each test binary uses its own part of this module.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use duplex_tokio::stomp::StompServer;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Serves `server` over TCP on a fresh loopback port.
pub async fn serve_tcp(server: StompServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve_tcp(listener).await });
    addr
}

/// Reads until the server closes (failing the test after 10 s); what it
/// sent, and when it closed (measured from `since`).
pub async fn until_closed(tcp: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server did not close the connection");
    (
        String::from_utf8_lossy(&reply).into_owned(),
        since.elapsed(),
    )
}
