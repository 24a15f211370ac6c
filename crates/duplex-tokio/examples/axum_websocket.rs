//! A WebSocket endpoint in an axum 0.8 router, through duplex's extractor
//! (`duplex_tokio::axum::WebSocketUpgrade`, feature `axum`): duplex-ws
//! negotiates the subprotocol and permessage-deflate, and the handler gets
//! duplex's `WebSocketStream`, next to ordinary axum routes.
//!
//! ```text
//! cargo run -p duplex-tokio --features axum --example axum_websocket -- 127.0.0.1:3000
//! ```
//!
//! Then `duplex connect ws://127.0.0.1:3000/ws` (or any WebSocket client)
//! gets every line back; `curl http://127.0.0.1:3000/` answers as usual.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use duplex_tokio::ServerConfig;
use duplex_tokio::axum::WebSocketUpgrade;
use duplex_tokio::ws::DeflateConfig;
use futures_util::{SinkExt, StreamExt};

mod support;

/// Echoes every message; refuses pages from other sites before upgrading.
async fn echo(ws: WebSocketUpgrade) -> Response {
    if ws
        .request()
        .origin()
        .is_some_and(|o| !o.starts_with("http://127.0.0.1") && !o.starts_with("http://localhost"))
    {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let config = ServerConfig {
        deflate: Some(DeflateConfig::default()),
        ..ServerConfig::default()
    };
    ws.protocols(["echo"])
        .config(config)
        .on_upgrade(|mut ws| async move {
            while let Some(Ok(msg)) = ws.next().await {
                if ws.send(msg).await.is_err() {
                    break;
                }
            }
        })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(|| async { "WebSocket echo at /ws\n" }))
        .route("/ws", get(echo));
    let listener = support::listener().await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await
}
