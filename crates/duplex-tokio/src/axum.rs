//! WebSockets in an axum 0.8 router (feature `axum`): the
//! [`WebSocketUpgrade`] extractor checks the request and negotiates the
//! subprotocol and permessage-deflate with duplex-ws's handshake, and hands
//! the handler duplex's [`WebSocketStream`].
//!
//! ```no_run
//! use axum::{Router, response::Response, routing::get};
//! use duplex_tokio::axum::WebSocketUpgrade;
//! use futures_util::{SinkExt, StreamExt};
//!
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     ws.protocols(["chat"]).on_upgrade(|mut ws| async move {
//!         while let Some(Ok(msg)) = ws.next().await {
//!             if ws.send(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/ws", get(echo));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Only the traits of axum-core (which axum re-exports) are used, so the
//! extractor works in any axum 0.8 application. HTTP/1.1 upgrades only: an
//! HTTP/2 request (RFC 8441 extended CONNECT) is refused like any other
//! request that is not a WebSocket handshake.

use std::future::Future;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use duplex_ws::HandshakeError;
use duplex_ws::handshake::Request;
use http::request::Parts;

use crate::{ServerConfig, UpgradedIo, WebSocketStream};

/// A WebSocket handshake request, checked (RFC 6455 section 4.2.1), waiting
/// for [`WebSocketUpgrade::on_upgrade`] to answer it with a 101.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    request: Request,
    on_upgrade: hyper::upgrade::OnUpgrade,
    config: ServerConfig,
    protocols: Vec<String>,
}

impl WebSocketUpgrade {
    /// The connection settings (limits, permessage-deflate, the adapter's
    /// IO settings). Default: [`ServerConfig::default`], which agrees to no
    /// compression.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The subprotocols this endpoint speaks, in its order of preference:
    /// the first one the client also offered is agreed to. Default none.
    pub fn protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The handshake request: path, `Origin` (to refuse a page from
    /// elsewhere before upgrading), offered subprotocols and extensions.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The subprotocol [`Self::on_upgrade`] will agree to: the first of
    /// [`Self::protocols`] that the client offered.
    pub fn selected_protocol(&self) -> Option<&str> {
        let offered = self.request.protocols();
        self.protocols
            .iter()
            .find(|p| offered.iter().any(|o| o == *p))
            .map(String::as_str)
    }

    /// Answers the handshake with 101 and runs `callback` on its own task
    /// with the WebSocket once hyper hands the connection over. Should the
    /// upgrade never complete (the client went away after the 101), the
    /// callback is not called.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocketStream<UpgradedIo>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let protocol = self.selected_protocol().map(str::to_owned);
        let on_upgrade = self.on_upgrade;
        let accepted = crate::server::accept_upgrade(
            &self.request,
            || on_upgrade,
            self.config,
            protocol.as_deref(),
        );
        let (response, upgrade) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => return WebSocketUpgradeRejection::Handshake(e).into_response(),
        };
        tokio::spawn(async move {
            match upgrade.await {
                Ok(ws) => callback(ws).await,
                Err(e) => tracing::debug!("WebSocket upgrade did not complete: {e}"),
            }
        });
        response.map(|()| Body::empty())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // duplex-ws checks an `http::Request`; the head is all it reads.
        let mut head = http::Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = parts.uri.clone();
        *head.version_mut() = parts.version;
        *head.headers_mut() = parts.headers.clone();
        let request = Request::from_http(&head)?;
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(WebSocketUpgradeRejection::NotUpgradable)?;
        Ok(Self {
            request,
            on_upgrade,
            config: ServerConfig::default(),
            protocols: Vec::new(),
        })
    }
}

/// Why [`WebSocketUpgrade`] refused a request; as a response, the status
/// RFC 6455 asks for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebSocketUpgradeRejection {
    /// Not a valid WebSocket handshake (answered with duplex-ws's status:
    /// 400, 405, or 426 with `Sec-WebSocket-Version: 13`).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The server gave the request no way to take over the connection
    /// (not served by hyper with upgrades, or HTTP/2): 426.
    #[error("this connection cannot be upgraded to a WebSocket")]
    NotUpgradable,
}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Handshake(e) => e.http_response().map(Body::from),
            Self::NotUpgradable => {
                let mut response = Response::new(Body::from(self.to_string()));
                *response.status_mut() = http::StatusCode::UPGRADE_REQUIRED;
                response
            }
        }
    }
}
