//! The IO of one Engine.IO connection: the polling requests, the
//! WebSocket task (over TLS for https:// servers), and what they report
//! back to the manager's task.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use duplex_engineio::WsMessage;
use duplex_engineio::client::ClientSession;
use duplex_engineio::client_url::POLLING_POST_CONTENT_TYPE;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use super::ClientError;

/// Most IO reports (responses, WebSocket messages) waiting for the
/// manager's task; the IO tasks wait for room, which holds back reading
/// from the server.
pub(super) const IO_QUEUE: usize = 64;

pub(super) type Http = HttpClient<Connector, Full<Bytes>>;

/// The polling requests' client: pooled connections, over TLS for
/// `https://` with the config's settings (`tls` feature).
#[cfg_attr(not(feature = "tls"), allow(unused_variables))]
pub(super) fn http_client(config: &super::ClientConfig) -> Http {
    HttpClient::builder(TokioExecutor::new()).build(Connector {
        #[cfg(feature = "tls")]
        tls: config.tls.clone(),
    })
}

/// Opens the connections of the polling requests: TCP, then TLS for an
/// `https://` URI, the same way `connect_with` does for `wss://`.
#[derive(Clone)]
pub(super) struct Connector {
    #[cfg(feature = "tls")]
    tls: crate::tls::ClientTls,
}

impl tower::Service<http::Uri> for Connector {
    type Response = TokioIo<crate::tls::MaybeTlsStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        #[cfg(feature = "tls")]
        let tls = self.tls.clone();
        #[cfg(not(feature = "tls"))]
        let tls = ();
        Box::pin(async move {
            let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            let secure = match uri.scheme_str() {
                Some("http") => false,
                Some("https") => true,
                _ => return Err(invalid("not an http:// or https:// URL")),
            };
            let host = uri.host().ok_or_else(|| invalid("no host"))?.to_owned();
            let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
            let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
            tcp.set_nodelay(true)?;
            crate::tls::MaybeTlsStream::connect(tcp, &host, secure, tls)
                .await
                .map(TokioIo::new)
        })
    }
}

/// What hyper-util's pool asks of a connection; nothing to report beyond
/// the defaults (no HTTP/2 over these: the client speaks HTTP/1.1).
impl Connection for crate::tls::MaybeTlsStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// What the IO tasks of a connection report, tagged with the connection's
/// number so that reports of a dropped connection are ignored.
pub(super) enum Io {
    Get(u64, Result<Bytes, ClientError>),
    Post(u64, Result<(), ClientError>),
    WsOpen(u64),
    WsMessage(u64, WsMessage),
    /// The WebSocket closed: cleanly (`None`), or failed or could not be
    /// opened.
    WsClosed(u64, Option<ClientError>),
}

/// One Engine.IO connection: its session machine and its IO.
pub(super) struct Conn {
    pub(super) id: u64,
    pub(super) session: ClientSession,
    /// The long-polling GET in flight; aborted with the connection.
    pub(super) get: Option<JoinHandle<()>>,
    /// The WebSocket's writer; dropping it closes the WebSocket once what
    /// was written is flushed.
    pub(super) ws: Option<mpsc::Sender<WsMessage>>,
    /// Messages for the WebSocket that found its queue full, in order;
    /// while any wait, the manager takes no commands (see
    /// [`WS_WRITE_QUEUE`]).
    pub(super) ws_backlog: VecDeque<WsMessage>,
}

impl Conn {
    /// Queues `message` for the WebSocket writer, behind any backlog.
    pub(super) fn write_ws(&mut self, message: WsMessage) {
        let Some(ws) = &self.ws else { return };
        if !self.ws_backlog.is_empty() {
            self.ws_backlog.push_back(message);
            return;
        }
        if let Err(TrySendError::Full(message)) = ws.try_send(message) {
            self.ws_backlog.push_back(message);
        }
    }

    /// Drops the WebSocket's writer once the backlog is written, which
    /// closes the WebSocket after it.
    pub(super) fn close_ws(&mut self) {
        let (Some(ws), backlog) = (self.ws.take(), std::mem::take(&mut self.ws_backlog)) else {
            return;
        };
        if !backlog.is_empty() {
            tokio::spawn(async move {
                for message in backlog {
                    if ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(get) = &self.get {
            get.abort();
        }
    }
}

pub(super) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

pub(super) async fn http_get(http: &Http, url: &str) -> Result<Bytes, ClientError> {
    let req = http::Request::get(url).body(Full::new(Bytes::new()))?;
    let resp = http.request(req).await?;
    if !resp.status().is_success() {
        return Err(ClientError::Status(resp.status()));
    }
    Ok(resp.into_body().collect().await?.to_bytes())
}

pub(super) async fn http_post(http: &Http, url: &str, body: Bytes) -> Result<(), ClientError> {
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, POLLING_POST_CONTENT_TYPE)
        .body(Full::new(body))?;
    let resp = http.request(req).await?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(ClientError::Status(status))
    }
}

/// Opens the WebSocket at `url` and moves messages both ways until either
/// side ends.
pub(super) async fn websocket_task(
    url: String,
    config: crate::ClientConfig,
    id: u64,
    mut outgoing: mpsc::Receiver<WsMessage>,
    io: mpsc::Sender<Io>,
) {
    let connect_timeout = config.handshake_timeout;
    let ws = match tokio::time::timeout(connect_timeout, crate::connect_with(&url, config)).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            let _ = io.send(Io::WsClosed(id, Some(e))).await;
            return;
        }
        Err(_) => {
            let error = ClientError::HandshakeTimeout;
            let _ = io.send(Io::WsClosed(id, Some(error))).await;
            return;
        }
    };
    if io.send(Io::WsOpen(id)).await.is_err() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            message = stream.next() => {
                let message = match message {
                    Some(Ok(duplex_ws::Message::Text(t))) => WsMessage::Text(t),
                    Some(Ok(duplex_ws::Message::Binary(b))) => WsMessage::Binary(b),
                    Some(Err(e)) => {
                        let _ = io.send(Io::WsClosed(id, Some(e))).await;
                        return;
                    }
                    None => {
                        let _ = io.send(Io::WsClosed(id, None)).await;
                        return;
                    }
                };
                // Waiting for room here holds back reading from the server.
                if io.send(Io::WsMessage(id, message)).await.is_err() {
                    return;
                }
            }
            next = outgoing.recv() => {
                let Some(first) = next else {
                    let _ = sink.close().await;
                    return;
                };
                let mut batch = vec![first];
                while let Ok(m) = outgoing.try_recv() {
                    batch.push(m);
                }
                for m in batch {
                    let m = match m {
                        WsMessage::Text(t) => duplex_ws::Message::Text(t),
                        WsMessage::Binary(b) => duplex_ws::Message::Binary(b),
                    };
                    if let Err(e) = sink.feed(m).await {
                        let _ = io.send(Io::WsClosed(id, Some(e))).await;
                        return;
                    }
                }
                if let Err(e) = sink.flush().await {
                    let _ = io.send(Io::WsClosed(id, Some(e))).await;
                    return;
                }
            }
        }
    }
}
