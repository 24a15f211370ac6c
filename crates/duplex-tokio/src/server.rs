//! Accepting WebSocket connections: from a raw transport (the handshake read
//! from bytes), or from a request hyper already parsed (the upgrade path).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
#[cfg(feature = "http2")]
use duplex_ws::handshake::h2::ConnectRequest;
use duplex_ws::handshake::{Request, ServerHandshake};
use duplex_ws::{Config, Connection, DeflateConfig, DeflateParams, HandshakeError, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Error, StreamConfig, WebSocketStream};

/// How a server answers a valid upgrade request.
#[derive(Debug, Clone, Default)]
pub struct Acceptance {
    /// The subprotocol to agree to; must be one the client offered.
    pub protocol: Option<String>,
    /// Further response headers.
    pub headers: Vec<(String, String)>,
}

/// A refusal of a valid upgrade request (e.g. an Origin not allowed).
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The HTTP status, e.g. 403.
    pub status: u16,
    /// A short plain-text body.
    pub body: String,
}

/// Settings for accepting connections.
#[derive(Debug)]
pub struct ServerConfig {
    /// The connection settings.
    pub connection: Config,
    /// The adapter's IO settings.
    pub stream: StreamConfig,
    /// The longest a client may take to send its handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// Agree to permessage-deflate when the client offers it. Default
    /// `None`: compression costs memory per connection (see
    /// `docs/websocket.md`), so it is opt-in.
    pub deflate: Option<DeflateConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            connection: Config::default(),
            stream: StreamConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            deflate: None,
        }
    }
}

/// Accepts a WebSocket on a fresh transport with the default settings,
/// agreeing to no subprotocol.
pub async fn accept<S>(io: S) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(io, ServerConfig::default(), |_| Ok(Acceptance::default()))
        .await
        .map(|(ws, _)| ws)
}

/// Accepts a WebSocket, letting `choose` inspect the request (path, Origin,
/// subprotocols, extension offers) and accept or reject it. Returns the
/// stream and the request.
pub async fn accept_with<S, F>(
    mut io: S,
    config: ServerConfig,
    choose: F,
) -> Result<(WebSocketStream<S>, Request), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Acceptance, Rejection>,
{
    let read = read_request(&mut io);
    let (request, leftover) = match tokio::time::timeout(config.handshake_timeout, read).await {
        Err(_) => return Err(Error::HandshakeTimeout),
        Ok(Err(Error::Handshake(e))) => {
            write_and_close(&mut io, &e.response()).await;
            return Err(e.into());
        }
        Ok(other) => other?,
    };
    let acceptance = match choose(&request) {
        Ok(a) => a,
        Err(rejection) => {
            write_and_close(&mut io, &request.reject(rejection.status, &rejection.body)).await;
            return Err(Error::Handshake(HandshakeError::UnexpectedStatus(
                rejection.status,
            )));
        }
    };
    let headers: Vec<(&str, &str)> = acceptance
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let deflate = negotiate(&request, config.deflate.as_ref());
    let response = request.accept(
        acceptance.protocol.as_deref(),
        deflate.as_ref().map(|(_, header)| header.as_str()),
        &headers,
    )?;
    io.write_all(&response).await?;
    let conn = server_connection(config.connection, deflate.as_ref().map(|(p, _)| p));
    Ok((
        WebSocketStream::from_parts(io, conn, &leftover, config.stream),
        request,
    ))
}

/// The permessage-deflate agreement for `request`, if compression is on
/// and the client offered something acceptable.
fn negotiate(
    request: &Request,
    deflate: Option<&DeflateConfig>,
) -> Option<(DeflateParams, String)> {
    negotiate_offers(&request.extension_offers(), deflate)
}

fn negotiate_offers(
    offers: &[String],
    deflate: Option<&DeflateConfig>,
) -> Option<(DeflateParams, String)> {
    deflate.and_then(|d| d.negotiate(offers))
}

fn server_connection(config: Config, deflate: Option<&DeflateParams>) -> Connection {
    let mut conn = Connection::new(Role::Server, config);
    if let Some(params) = deflate {
        conn.enable_permessage_deflate(params);
    }
    conn
}

async fn read_request<S: AsyncRead + Unpin>(io: &mut S) -> Result<(Request, BytesMut), Error> {
    let mut handshake = ServerHandshake::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::HandshakeEof);
        }
        if let Some(request) = handshake.receive(buf.get(..n).unwrap_or_default())? {
            return Ok((request, handshake.into_remaining()));
        }
    }
}

/// Best effort: the peer is being refused, so a failed write changes nothing.
async fn write_and_close<S: AsyncWrite + Unpin>(io: &mut S, response: &Bytes) {
    let _ = io.write_all(response).await;
    let _ = io.shutdown().await;
}

/// The hyper upgrade path: checks an already-parsed request and returns the
/// response to send plus a future that yields the WebSocket once hyper
/// hands over the connection.
///
/// Both openings are taken: an HTTP/1.1 `Upgrade: websocket` (answered
/// `101`) and, with the `http2` feature, on an HTTP/2 connection served with extended CONNECT
/// enabled (see [`serve_http`](crate::serve_http)), an RFC 8441 CONNECT
/// with `:protocol websocket` (answered `200`, the WebSocket then runs in
/// that stream). The decisions, including the error status of a bad
/// request, are duplex-ws's ([`duplex_ws::handshake::h2`] for HTTP/2).
///
/// ```no_run
/// # async fn handler(mut req: hyper::Request<hyper::body::Incoming>) {
/// use futures_util::{SinkExt, StreamExt};
/// let (response, upgrade) = duplex_tokio::upgrade(&mut req, Default::default(), None).unwrap();
/// tokio::spawn(async move {
///     let mut ws = upgrade.await.unwrap();
///     while let Some(Ok(msg)) = ws.next().await {
///         let _ = ws.send(msg).await;
///     }
/// });
/// // ...return `response` from the hyper service.
/// # }
/// ```
pub fn upgrade<B>(
    req: &mut http::Request<B>,
    config: ServerConfig,
    protocol: Option<&str>,
) -> Result<(http::Response<()>, Upgrade), HandshakeError> {
    #[cfg(feature = "http2")]
    if duplex_ws::handshake::is_rfc8441_opening(req) {
        let request = ConnectRequest::from_http(req, connect_protocol(req))?;
        let deflate = negotiate_offers(&request.extension_offers(), config.deflate.as_ref());
        let response = request.accept_http(
            protocol,
            deflate.as_ref().map(|(_, header)| header.as_str()),
        )?;
        return Ok((
            response,
            Upgrade {
                on_upgrade: hyper::upgrade::on(req),
                config,
                deflate: deflate.map(|(params, _)| params),
                opening: Opening::Http2Connect,
            },
        ));
    }
    let request = Request::from_http(req)?;
    accept_upgrade(&request, || hyper::upgrade::on(req), config, protocol)
}

/// The 101 for a checked HTTP/1.1 `request`, and the [`Upgrade`] that
/// completes once `on_upgrade` (taken only when the request is accepted)
/// resolves; shared by [`upgrade`] and the axum extractor.
pub(crate) fn accept_upgrade(
    request: &Request,
    on_upgrade: impl FnOnce() -> hyper::upgrade::OnUpgrade,
    config: ServerConfig,
    protocol: Option<&str>,
) -> Result<(http::Response<()>, Upgrade), HandshakeError> {
    let deflate = negotiate(request, config.deflate.as_ref());
    let response = request.accept_http(
        protocol,
        deflate.as_ref().map(|(_, header)| header.as_str()),
    )?;
    Ok((
        response,
        Upgrade {
            on_upgrade: on_upgrade(),
            config,
            deflate: deflate.map(|(params, _)| params),
            opening: Opening::Http11Upgrade,
        },
    ))
}

#[cfg(feature = "http2")]
/// The `:protocol` pseudo-header of an HTTP/2 request, which hyper carries
/// as a request extension.
fn connect_protocol<B>(req: &http::Request<B>) -> Option<&str> {
    req.extensions()
        .get::<hyper::ext::Protocol>()
        .map(hyper::ext::Protocol::as_str)
}

/// The subprotocols a WebSocket request offers, in the client's order,
/// whichever its opening (HTTP/1.1 upgrade or HTTP/2 extended CONNECT);
/// for choosing the `protocol` argument of [`upgrade`].
pub fn offered_protocols<B>(req: &http::Request<B>) -> Result<Vec<String>, HandshakeError> {
    #[cfg(feature = "http2")]
    if duplex_ws::handshake::is_rfc8441_opening(req) {
        return Ok(ConnectRequest::from_http(req, connect_protocol(req))?.protocols());
    }
    Ok(Request::from_http(req)?.protocols())
}

/// How a WebSocket was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// An HTTP/1.1 `Upgrade: websocket` answered with 101: the WebSocket
    /// has the TCP (or TLS) connection to itself.
    Http11Upgrade,
    /// An HTTP/2 extended CONNECT (RFC 8441) answered with 200: the
    /// WebSocket is one stream of an HTTP/2 connection.
    Http2Connect,
}

/// The WebSocket half of [`upgrade`]: await it once the 101 has been sent.
#[derive(Debug)]
pub struct Upgrade {
    on_upgrade: hyper::upgrade::OnUpgrade,
    config: ServerConfig,
    deflate: Option<DeflateParams>,
    opening: Opening,
}

impl Upgrade {
    /// How this WebSocket is being opened (for statistics and logs).
    pub fn opening(&self) -> Opening {
        self.opening
    }
}

/// The transport hyper hands over after an upgrade.
pub type UpgradedIo = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

impl std::future::IntoFuture for Upgrade {
    type Output = Result<WebSocketStream<UpgradedIo>, Error>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let upgraded = self
                .on_upgrade
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))?;
            let conn = server_connection(self.config.connection, self.deflate.as_ref());
            Ok(WebSocketStream::from_parts(
                hyper_util::rt::TokioIo::new(upgraded),
                conn,
                &[],
                self.config.stream,
            ))
        })
    }
}
