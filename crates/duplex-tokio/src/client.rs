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
    let Target {
        secure,
        host,
        port,
        host_header,
        target,
    } = Target::parse(url)?;
    let timeout = config.handshake_timeout;
    let fut = async move {
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        tcp.set_nodelay(true)?;
        #[cfg(feature = "tls")]
        let tls = config.tls.clone();
        #[cfg(not(feature = "tls"))]
        let tls = ();
        let io = crate::tls::MaybeTlsStream::connect(tcp, &host, secure, tls).await?;
        let request = config.request(host_header, target);
        client_handshake(io, request, config).await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Error::HandshakeTimeout)?
}

/// Where a `ws://` or `wss://` URL points, read with `http::Uri` (the
/// `http` crate is already a dependency; a full WHATWG URL parser is not
/// needed for the two schemes).
#[derive(Debug, PartialEq)]
pub(crate) struct Target {
    pub(crate) secure: bool,
    /// The host as written (lowercase, an IPv6 literal in brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Host:` (the port only when it is not the scheme's default).
    pub(crate) host_header: String,
    /// Path and query (`/` when the URL has no path).
    target: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        Self::parse_schemes(url, false)
    }

    /// Also `http://` and `https://`, which name the server of an HTTP/2
    /// connection ([`crate::Http2Connection`]) as well as `ws://` and
    /// `wss://` do.
    #[cfg(feature = "http2")]
    pub(crate) fn parse_server(url: &str) -> Result<Self, Error> {
        Self::parse_schemes(url, true)
    }

    fn parse_schemes(url: &str, http_too: bool) -> Result<Self, Error> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| Error::InvalidUrl(e.to_string()))?;
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(s) if http_too && s.eq_ignore_ascii_case("http") => false,
            Some(s) if http_too && s.eq_ignore_ascii_case("https") => true,
            Some(other) => {
                let expected = if http_too {
                    "ws, wss, http or https"
                } else {
                    "ws or wss"
                };
                return Err(Error::InvalidUrl(format!(
                    "scheme {other} is not {expected}"
                )));
            }
            None => return Err(Error::InvalidUrl("no scheme".into())),
        };
        let host = match uri.host() {
            Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
            _ => return Err(Error::InvalidUrl("no host".into())),
        };
        let default_port = if secure { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        let host_header = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let target = match uri.path_and_query() {
            Some(pq) => {
                let path = if pq.path().is_empty() { "/" } else { pq.path() };
                match pq.query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path.to_owned(),
                }
            }
            None => "/".to_owned(),
        };
        Ok(Self {
            secure,
            host,
            port,
            host_header,
            target,
        })
    }
}

impl ClientConfig {
    /// The handshake request for `target` on `host`: this configuration's
    /// subprotocols, headers and permessage-deflate offer, no `Origin`
    /// (over HTTP/1.1 or an HTTP/2 stream alike).
    pub(crate) fn request(&self, host: String, target: String) -> ClientRequest {
        ClientRequest {
            host,
            target,
            origin: None,
            protocols: self.protocols.clone(),
            extensions: self
                .deflate
                .iter()
                .map(DeflateConfig::client_offer)
                .collect(),
            headers: self.headers.clone(),
        }
    }
}

/// The client's connection once the server accepted the handshake, with
/// permessage-deflate on if `deflate` was offered and the server agreed
/// (over HTTP/1.1 or an HTTP/2 stream alike).
pub(crate) fn accepted_connection(
    deflate: Option<&DeflateConfig>,
    connection: Config,
    response: &Response,
) -> Result<Connection, Error> {
    let params = match deflate {
        Some(d) => d.accept_response(&response.extensions)?,
        None => None,
    };
    let mut conn = Connection::new(Role::Client, connection);
    if let Some(params) = params {
        conn.enable_permessage_deflate(&params);
    }
    Ok(conn)
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
    let conn = accepted_connection(config.deflate.as_ref(), config.connection, &response)?;
    Ok((
        WebSocketStream::from_parts(io, conn, &leftover, config.stream),
        response,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn urls_are_split_as_the_handshake_needs_them() {
        let t = target("ws://Example.COM:9001/chat?room=1&x=%20");
        assert_eq!(
            t,
            Target {
                secure: false,
                host: "example.com".into(),
                port: 9001,
                host_header: "example.com:9001".into(),
                target: "/chat?room=1&x=%20".into(),
            }
        );
        let t = target("wss://h");
        assert!(t.secure);
        assert_eq!(
            (t.port, t.host_header.as_str(), t.target.as_str()),
            (443, "h", "/")
        );
        // The scheme's own port is left out of Host, as browsers do.
        assert_eq!(target("ws://h:80/").host_header, "h");
        assert_eq!(target("wss://h:443/").host_header, "h");
        let t = target("ws://[::1]:3000/echo");
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 3000));
        assert_eq!(t.host_header, "[::1]:3000");
        assert_eq!(target("ws://h?q=1").target, "/?q=1");
    }

    #[test]
    fn urls_that_cannot_be_used_are_refused() {
        for url in [
            "http://h/",
            "h:80",
            "/path",
            "ws://",
            "not a url",
            "ftp://h/",
        ] {
            assert!(
                matches!(Target::parse(url), Err(Error::InvalidUrl(_))),
                "{url} was accepted"
            );
        }
    }
}
