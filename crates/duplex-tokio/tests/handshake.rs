//! Bad handshakes over loopback: each gets a well-formed HTTP error and the
//! connection is closed; a silent client is dropped after the timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use duplex_tokio::{Error, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends `request` to a fresh duplex server; returns what came back before
/// the server closed, and the server's error.
async fn exchange(request: Vec<u8>, config: ServerConfig) -> (String, Error) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        duplex_tokio::accept_with(tcp, config, |_| Ok(Default::default()))
            .await
            .map(|_| ())
            .unwrap_err()
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may close before reading everything; that is its right.
    let _ = tcp.write_all(&request).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut reply))
        .await
        .unwrap();
    (
        String::from_utf8_lossy(&reply).into_owned(),
        server.await.unwrap(),
    )
}

const GOOD: &str = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test]
async fn oversized_handshake_gets_431_and_is_closed() {
    let mut request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Padding: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 32 * 1024));
    let (reply, err) = exchange(request, ServerConfig::default()).await;
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
    assert!(matches!(err, Error::Handshake(_)), "{err:?}");
}

#[tokio::test]
async fn wrong_version_gets_426_with_the_supported_version() {
    let request = GOOD.replace("Version: 13", "Version: 8").into_bytes();
    let (reply, _) = exchange(request, ServerConfig::default()).await;
    assert!(reply.starts_with("HTTP/1.1 426 "), "{reply}");
    assert!(reply.contains("Sec-WebSocket-Version: 13\r\n"), "{reply}");
}

#[tokio::test]
async fn plain_http_request_gets_400() {
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    let (reply, _) = exchange(request, ServerConfig::default()).await;
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
}

#[tokio::test]
async fn silent_client_is_dropped_after_the_handshake_timeout() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (reply, err) = exchange(b"GET / HTTP/1.1\r\n".to_vec(), config).await;
    assert!(reply.is_empty());
    assert!(matches!(err, Error::HandshakeTimeout), "{err:?}");
}

#[tokio::test]
async fn rejection_callback_answers_403() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = duplex_tokio::accept_with(tcp, ServerConfig::default(), |req| {
            assert_eq!(req.origin(), Some("http://evil.example"));
            Err(duplex_tokio::Rejection {
                status: 403,
                body: "origin not allowed".into(),
            })
        })
        .await;
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = GOOD.replace("Host: a\r\n", "Host: a\r\nOrigin: http://evil.example\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 403 "), "{reply}");
    assert!(reply.ends_with("origin not allowed"), "{reply}");
}
