//! Oversized request heads, for the tests of the head limits (issue #20):
//! duplex-tokio's `HttpLimits` on its own (`tests/http_limits.rs`) and
//! `duplex serve` on every endpoint (duplex-cli's `tests/serve.rs`, which
//! includes this file by path).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// Every wait for an answer is bounded by this.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A `GET path` head for `host` with `extra` header lines of `value_len`
/// bytes each, as a WebSocket upgrade if `upgrade`.
pub(crate) fn head(
    host: &str,
    path: &str,
    upgrade: bool,
    extra: usize,
    value_len: usize,
) -> String {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    if upgrade {
        head.push_str(
            "Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        );
    }
    let value = "v".repeat(value_len);
    for i in 0..extra {
        head.push_str(&format!("X-Filler-{i}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends `head` and returns the status of the answer and whether the
/// server then closed the connection (within a second).
pub(crate) async fn status_of(addr: impl ToSocketAddrs, head: &str) -> (u16, bool) {
    // Named in every failure: one test sends many heads.
    let request_line = head.lines().next().unwrap_or_default();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything: a
    // failed write is part of the refusal, not of the test.
    let _ = tcp.write_all(head.as_bytes()).await;
    let mut seen = Vec::new();
    let head_end = loop {
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(ANSWER_WITHIN, tcp.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{request_line}: no answer in time"))
            .unwrap_or(0);
        assert!(n > 0, "{request_line}: closed without an answer: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&seen[..head_end]).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let mut rest = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut rest)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(_)) => continue,
            Err(_) => break false,
        }
    };
    (status, closed)
}
