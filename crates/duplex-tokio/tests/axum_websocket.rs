//! The axum extractor (`duplex_tokio::axum::WebSocketUpgrade`) in a real
//! axum 0.8 server on loopback: the handshake negotiates the subprotocol and
//! permessage-deflate through duplex-ws, the handler gets duplex's stream,
//! and a request that is not a handshake gets duplex-ws's refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use duplex_tokio::axum::WebSocketUpgrade;
use duplex_tokio::ws::{DeflateConfig, Message};
use duplex_tokio::{ClientConfig, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STEP: Duration = Duration::from_secs(10);

/// Echoes every message, prefixed with the agreed subprotocol.
async fn echo(ws: WebSocketUpgrade) -> Response {
    let ws = ws.protocols(["v2.chat", "v1.chat"]).config(ServerConfig {
        deflate: Some(DeflateConfig::default()),
        ..ServerConfig::default()
    });
    let protocol = ws.selected_protocol().unwrap_or("none").to_owned();
    ws.on_upgrade(move |mut ws| async move {
        while let Some(Ok(msg)) = ws.next().await {
            let reply = match msg {
                Message::Text(text) => Message::from(format!("{protocol}: {}", text.as_str())),
                other => other,
            };
            if ws.send(reply).await.is_err() {
                break;
            }
        }
    })
}

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/ws", get(echo))
        .route("/plain", get(|| async { "plain" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn the_extractor_negotiates_and_hands_over_a_duplex_stream() {
    let addr = serve().await;
    let config = ClientConfig {
        protocols: vec!["v1.chat".into(), "v2.chat".into()],
        deflate: Some(DeflateConfig::default()),
        ..ClientConfig::default()
    };
    let (mut ws, response) = tokio::time::timeout(
        STEP,
        duplex_tokio::connect_with(&format!("ws://{addr}/ws"), config),
    )
    .await
    .unwrap()
    .unwrap();
    // The server's preference wins among what the client offered.
    assert_eq!(response.protocol.as_deref(), Some("v2.chat"));
    assert!(
        response
            .extensions
            .iter()
            .any(|e| e.starts_with("permessage-deflate")),
        "{:?}",
        response.extensions
    );
    let long = "compressible ".repeat(1000);
    for text in ["hello", long.as_str()] {
        ws.send(Message::from(text.to_owned())).await.unwrap();
        let echoed = tokio::time::timeout(STEP, ws.next()).await.unwrap();
        assert_eq!(
            echoed.unwrap().unwrap(),
            Message::from(format!("v2.chat: {text}"))
        );
    }
    ws.send(Message::Binary(vec![0, 1, 2].into()))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(STEP, ws.next()).await.unwrap();
    assert_eq!(
        echoed.unwrap().unwrap(),
        Message::Binary(vec![0, 1, 2].into())
    );
    ws.close().await.unwrap();
}

#[tokio::test]
async fn no_common_subprotocol_means_none_is_agreed() {
    let addr = serve().await;
    let config = ClientConfig {
        protocols: vec!["mqtt".into()],
        ..ClientConfig::default()
    };
    let (mut ws, response) = duplex_tokio::connect_with(&format!("ws://{addr}/ws"), config)
        .await
        .unwrap();
    assert_eq!(response.protocol, None);
    assert!(response.extensions.is_empty(), "{:?}", response.extensions);
    ws.send(Message::from("hi")).await.unwrap();
    let echoed = tokio::time::timeout(STEP, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::from("none: hi"));
}

/// Sends a raw request head and returns the response head.
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn requests_that_are_not_handshakes_get_the_rfc_status() {
    let addr = serve().await;
    let plain = raw(addr, "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 400 "), "{plain}");
    let old = raw(
        addr,
        "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert!(old.starts_with("HTTP/1.1 426 "), "{old}");
    assert!(
        old.to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n"),
        "{old}"
    );
    // The router's other routes are untouched.
    let other = raw(addr, "GET /plain HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(other.starts_with("HTTP/1.1 200 "), "{other}");
}
