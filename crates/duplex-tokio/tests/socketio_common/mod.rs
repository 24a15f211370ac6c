//! Loopback helpers for the Socket.IO and Engine.IO service tests: a hyper
//! server on 127.0.0.1, a plain HTTP client, and WebSocket helpers.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::{ClientIo, WebSocketStream};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const WAIT: Duration = Duration::from_secs(5);

// The loopback server is the one every service test uses.
#[path = "../http_common/mod.rs"]
mod http_common;
pub(crate) use http_common::serve;

pub mod probe;

pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Http {
    pub fn new(addr: SocketAddr, mount: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}{mount}/"),
        }
    }

    pub async fn request(&self, method: &str, query: &str, body: impl Into<Bytes>) -> Reply {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{}?{query}", self.base))
            .body(Full::new(body.into()))
            .unwrap();
        let resp = tokio::time::timeout(WAIT, self.client.request(req))
            .await
            .expect("HTTP request timed out")
            .unwrap();
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(WAIT, resp.into_body().collect())
            .await
            .expect("HTTP body timed out")
            .unwrap()
            .to_bytes();
        Reply { status, body }
    }

    pub async fn get(&self, query: &str) -> Reply {
        self.request("GET", query, Bytes::new()).await
    }

    pub async fn post(&self, query: &str, body: impl Into<Bytes>) -> Reply {
        self.request("POST", query, body).await
    }

    /// Opens a polling session; returns its sid.
    pub async fn open(&self) -> String {
        let reply = self.get("EIO=4&transport=polling").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let text = reply.text();
        let json: serde_json::Value = serde_json::from_str(&text[1..]).unwrap();
        json["sid"].as_str().unwrap().to_owned()
    }
}

pub fn sid_query(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

pub type Ws = WebSocketStream<ClientIo>;

pub async fn ws_connect(addr: SocketAddr, path_and_query: &str) -> Ws {
    let (ws, _) = duplex_tokio::connect(&format!("ws://{addr}{path_and_query}"))
        .await
        .unwrap();
    ws
}

/// The next message, text or binary (binary shown as `<bin:[..]>`).
pub async fn next(ws: &mut Ws) -> Option<String> {
    match tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("no WebSocket message in time")
    {
        Some(Ok(duplex_ws::Message::Text(t))) => Some(t.as_str().to_owned()),
        Some(Ok(duplex_ws::Message::Binary(b))) => Some(format!("<bin:{:?}>", &b[..])),
        Some(Err(_)) | None => None,
    }
}

/// The next message that is not an Engine.IO ping (pings are answered).
pub async fn next_skip_ping(ws: &mut Ws) -> Option<String> {
    loop {
        let m = next(ws).await?;
        if m == "2" {
            send(ws, "3").await;
            continue;
        }
        return Some(m);
    }
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(duplex_ws::Message::from(text.to_owned()))
        .await
        .unwrap();
}

pub async fn send_binary(ws: &mut Ws, data: &[u8]) {
    ws.send(duplex_ws::Message::Binary(Bytes::copy_from_slice(data)))
        .await
        .unwrap();
}

/// Whether the server closes the WebSocket within `WAIT` (messages before
/// the close are skipped).
pub async fn closed(ws: &mut Ws) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Opens a Socket.IO WebSocket connection and joins `/`; returns the socket
/// and the namespace's sid.
pub async fn sio_connect(addr: SocketAddr) -> (Ws, String) {
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    let open = next(&mut ws).await.unwrap();
    assert!(open.starts_with("0{"), "{open}");
    send(&mut ws, "40").await;
    let ok = next_skip_ping(&mut ws).await.unwrap();
    assert!(ok.starts_with("40{\"sid\":"), "{ok}");
    let json: serde_json::Value = serde_json::from_str(&ok[2..]).unwrap();
    (ws, json["sid"].as_str().unwrap().to_owned())
}
