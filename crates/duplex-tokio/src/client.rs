//! Opening WebSocket connections as a client.

use std::time::Duration;

use duplex_ws::handshake::{ClientHandshake, ClientRequest, Response};
use duplex_ws::{Config, Connection, DeflateConfig, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Error, StreamConfig, WebSocketStream};

/// Settings for a client connection.
#[derive(Debug)]
pub struct ClientConfig {
    /// The connection settings (including the masking-key RNG).
    pub connection: Config,
    /// The adapter's IO settings.
    pub stream: StreamConfig,
    /// Subprotocols to offer.
    pub protocols: Vec<String>,
    /// Further request headers.
    pub headers: Vec<(String, String)>,
    /// The longest the TCP connect plus handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Offer permessage-deflate with these settings. Default `None`.
    pub deflate: Option<DeflateConfig>,
    /// The TLS settings for `wss://` (a private CA, client certificates).
    /// Default `None`: the Mozilla roots, no client certificate. Its ALPN
    /// list is replaced by `http/1.1` when it names anything else, since
    /// the handshake that follows is HTTP/1.1's.
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connection: Config::default(),
            stream: StreamConfig::default(),
            protocols: Vec::new(),
            headers: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            deflate: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// The transport of a client connection: plain TCP, or TLS with the `tls`
/// feature.
pub type ClientIo = crate::tls::MaybeTlsStream;

/// Connects to a `ws://` (or, with the `tls` feature, `wss://`) URL.
pub async fn connect(url: &str) -> Result<(WebSocketStream<ClientIo>, Response), Error> {
    connect_with(url, ClientConfig::default()).await
}

/// Connects to `url` with the given settings.
pub async fn connect_with(
    url: &str,
    config: ClientConfig,
) -> Result<(WebSocketStream<ClientIo>, Response), Error> {
    let parsed = url::Url::parse(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
    let secure = match parsed.scheme() {
        "ws" => false,
        "wss" => true,
        other => {
            return Err(Error::InvalidUrl(format!(
                "scheme {other} is not ws or wss"
            )));
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::InvalidUrl("no host".into()))?
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    let mut target = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    let host_header = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let timeout = config.handshake_timeout;
    let fut = async move {
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        tcp.set_nodelay(true)?;
        #[cfg(feature = "tls")]
        let tls = config.tls.clone();
        #[cfg(not(feature = "tls"))]
        let tls = ();
        let io = crate::tls::MaybeTlsStream::connect(tcp, &host, secure, tls).await?;
        let request = ClientRequest {
            host: host_header,
            target,
            origin: None,
            protocols: config.protocols.clone(),
            extensions: config
                .deflate
                .iter()
                .map(DeflateConfig::client_offer)
                .collect(),
            headers: config.headers.clone(),
        };
        client_handshake(io, request, config).await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Error::HandshakeTimeout)?
}

/// Runs the client handshake over a transport the caller opened.
pub async fn client_handshake<S>(
    mut io: S,
    request: ClientRequest,
    mut config: ClientConfig,
) -> Result<(WebSocketStream<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut handshake, bytes) = ClientHandshake::new(&request, config.connection.rng.as_mut());
    io.write_all(&bytes).await?;
    let mut buf = vec![0u8; 4096];
    let response = loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::HandshakeEof);
        }
        if let Some(response) = handshake.receive(buf.get(..n).unwrap_or_default())? {
            break response;
        }
    };
    let leftover = handshake.into_remaining();
    let deflate = match &config.deflate {
        Some(d) => d.accept_response(&response.extensions)?,
        None => None,
    };
    let mut conn = Connection::new(Role::Client, config.connection);
    if let Some(params) = deflate {
        conn.enable_permessage_deflate(&params);
    }
    Ok((
        WebSocketStream::from_parts(io, conn, &leftover, config.stream),
        response,
    ))
}
