//! WebSockets over HTTP/2 as a client (RFC 8441): one HTTP/2 connection
//! (TLS with ALPN `h2`, or cleartext prior knowledge), on which each
//! WebSocket is an extended CONNECT stream. The handshake's decisions are
//! duplex-ws's ([`duplex_ws::handshake::h2::ClientConnect`]); hyper carries
//! the streams.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_ws::handshake::Response;
use duplex_ws::handshake::h2::{ClientConnect, PROTOCOL};
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::client::accepted_connection;
use crate::tls::{ALPN_H2, MaybeTlsStream};
use crate::{ClientConfig, Error, UpgradedIo, WebSocketStream};

/// How often the connection is driven while waiting for the server's
/// SETTINGS, which say whether extended CONNECT is allowed.
const SETTINGS_POLL: Duration = Duration::from_millis(2);

/// One HTTP/2 connection to a server that carries WebSockets as streams
/// (RFC 8441): open as many as the server allows with
/// [`Http2Connection::websocket`], each independent of the others, all on
/// one TCP connection. Cheap to clone; the connection closes when every
/// clone and every WebSocket on it is dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex_tokio::Error> {
/// use futures_util::{SinkExt, StreamExt};
/// let h2 = duplex_tokio::Http2Connection::connect("wss://example.com", &Default::default()).await?;
/// let (mut a, _) = h2.websocket("/echo", Default::default()).await?;
/// let (mut b, _) = h2.websocket("/chat", Default::default()).await?;
/// a.send("over one stream".into()).await?;
/// b.send("over another".into()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Http2Connection {
    send: SendRequest<Empty<Bytes>>,
    /// `host[:port]` for `:authority`.
    authority: String,
    /// `https` or `http`, for `:scheme`.
    scheme: &'static str,
}

impl std::fmt::Debug for Http2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Connection")
            .field("authority", &self.authority)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Http2Connection {
    /// Opens an HTTP/2 connection to the server of `url`: `wss://` (or
    /// `https://`) over TLS offering ALPN `h2`, `ws://` (or `http://`) in
    /// cleartext with prior knowledge. The URL's path is not used. Uses
    /// `config`'s TLS settings and handshake timeout, and waits for the
    /// server's SETTINGS: a server that does not enable extended CONNECT
    /// is [`Error::Http2Unavailable`].
    pub async fn connect(url: &str, config: &ClientConfig) -> Result<Self, Error> {
        let crate::client::Target {
            secure,
            host,
            port,
            host_header: authority,
            ..
        } = crate::client::Target::parse_server(url)?;
        #[cfg(feature = "tls")]
        let tls = config.tls.clone();
        #[cfg(not(feature = "tls"))]
        let tls = ();
        // A timeout too long to add to an instant waits a year.
        let deadline = Instant::now()
            .checked_add(config.handshake_timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
        let open = async move {
            let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
            tcp.set_nodelay(true)?;
            let io = MaybeTlsStream::connect_alpn(tcp, &host, secure, tls, ALPN_H2).await?;
            if secure && io.alpn() != Some(ALPN_H2) {
                return Err(Error::Http2Unavailable("the server did not agree to h2"));
            }
            let (send, mut conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(TokioIo::new(io))
                .await
                .map_err(Error::Http2)?;
            // hyper sends nothing until asked; the SETTINGS frame that
            // allows extended CONNECT arrives while the connection is
            // driven, so it is driven here until it has.
            while !conn.is_extended_connect_protocol_enabled() {
                if Instant::now() >= deadline {
                    return Err(Error::Http2Unavailable(
                        "no SETTINGS_ENABLE_CONNECT_PROTOCOL from the server",
                    ));
                }
                if let Ok(ended) = tokio::time::timeout(SETTINGS_POLL, &mut conn).await {
                    ended.map_err(Error::Http2)?;
                    return Err(Error::Closed);
                }
            }
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("HTTP/2 connection ended: {e}");
                }
            });
            Ok(send)
        };
        let send = tokio::time::timeout_at(deadline.into(), open)
            .await
            .map_err(|_| Error::HandshakeTimeout)??;
        Ok(Self {
            send,
            authority,
            scheme: if secure { "https" } else { "http" },
        })
    }

    /// Opens a WebSocket to `target` (path and query, e.g. `/chat?room=1`)
    /// as a new stream of this connection, with `config`'s subprotocols,
    /// headers, permessage-deflate offer and connection settings (its TLS
    /// settings are the connection's, already in force).
    pub async fn websocket(
        &self,
        target: &str,
        config: ClientConfig,
    ) -> Result<(WebSocketStream<Http2Stream>, Response), Error> {
        let request = config.request(self.authority.clone(), target.to_owned());
        let (handshake, req) = ClientConnect::new(&request, self.scheme)?;
        let mut req = req.map(|()| Empty::new());
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static(PROTOCOL));
        let mut send = self.send.clone();
        let open = async move {
            send.ready().await.map_err(Error::Http2)?;
            let mut response = send.send_request(req).await.map_err(Error::Http2)?;
            let accepted = handshake.check_http(&response)?;
            let upgraded = hyper::upgrade::on(&mut response)
                .await
                .map_err(Error::Http2)?;
            Ok::<_, Error>((upgraded, accepted))
        };
        let (upgraded, accepted) = tokio::time::timeout(config.handshake_timeout, open)
            .await
            .map_err(|_| Error::HandshakeTimeout)??;
        let conn = accepted_connection(config.deflate.as_ref(), config.connection, &accepted)?;
        Ok((
            WebSocketStream::from_parts(
                Http2Stream(TokioIo::new(upgraded)),
                conn,
                &[],
                config.stream,
            ),
            accepted,
        ))
    }

    /// Whether the connection is closed (no new WebSocket can open on it).
    pub fn is_closed(&self) -> bool {
        self.send.is_closed()
    }
}

/// One HTTP/2 stream carrying a WebSocket, as the client's transport.
///
/// Finishing our side after the close handshake may meet the server's
/// `RST_STREAM(NO_ERROR)`: a server that has sent its whole response (its
/// close frame and END_STREAM) may reset the stream rather than wait for
/// ours (RFC 9113 section 8.1). That reset is the stream's normal end, not
/// a failure, so a flush or shutdown that meets it succeeds (a write still
/// fails: the server takes no more data).
#[derive(Debug)]
pub struct Http2Stream(UpgradedIo);

/// Whether `e` is an HTTP/2 reset with NO_ERROR.
fn is_no_error_reset(e: &io::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = e
        .get_ref()
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::NO_ERROR);
        }
        source = err.source();
    }
    false
}

impl AsyncRead for Http2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Http2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.get_mut().0).poll_flush(cx) {
            Poll::Ready(Err(e)) if is_no_error_reset(&e) => Poll::Ready(Ok(())),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.get_mut().0).poll_shutdown(cx) {
            Poll::Ready(Err(e)) if is_no_error_reset(&e) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}
