//! Serving one accepted connection with HTTP/1.1 or HTTP/2: the version
//! told by TLS (ALPN), or found from the first bytes in cleartext (the
//! HTTP/2 connection preface, "prior knowledge"). HTTP/2 is served with
//! extended CONNECT enabled (RFC 8441), so that [`crate::upgrade`] can
//! open WebSockets as HTTP/2 streams.
//!
//! hyper-util's `auto` builder does the same detection, but its HTTP/1.1
//! half cannot bound the request head's size (no `max_header_size`), and
//! [`HttpLimits`] must hold on every HTTP/1.1 connection; so the preface is
//! read here and each version gets hyper's own builder.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Incoming};
use hyper::service::HttpService;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::{Error, HttpLimits};

/// The HTTP/2 connection preface a client sends first (RFC 9113 section
/// 3.4); an HTTP/1.1 request line never starts with it.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which HTTP a connection speaks, as far as the caller knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpProtocol {
    /// Unknown (cleartext): HTTP/2 if the client starts with the HTTP/2
    /// preface (prior knowledge, `h2c`), HTTP/1.1 otherwise.
    Detect,
    /// HTTP/1.1 (TLS with ALPN `http/1.1`, or without ALPN).
    Http11,
    /// HTTP/2 (TLS with ALPN `h2`).
    Http2,
}

#[cfg(feature = "tls")]
impl From<crate::Alpn> for HttpProtocol {
    fn from(alpn: crate::Alpn) -> Self {
        match alpn {
            crate::Alpn::Http2 => HttpProtocol::Http2,
            crate::Alpn::Http11 => HttpProtocol::Http11,
        }
    }
}

/// Settings for [`serve_http`].
#[derive(Debug, Clone)]
pub struct HttpServerConfig {
    /// The bounds on HTTP/1.1 request heads.
    pub limits: HttpLimits,
    /// Serve HTTP/2 to clients that start with its preface. Default `true`;
    /// when `false` every connection is HTTP/1.1 (and a TLS acceptor must
    /// not offer `h2` either: [`crate::TlsServerConfig::http2`]).
    pub http2: bool,
    /// The longest a new connection may take to show which HTTP it speaks
    /// (the 24-byte HTTP/2 preface, or the first bytes of an HTTP/1.1
    /// request). Default 10 s, as the handshake timeouts.
    pub preface_timeout: Duration,
    /// The most streams one HTTP/2 client may have open at once (each
    /// WebSocket, parked long-poll or event stream is one). Default 256.
    pub max_concurrent_streams: u32,
    /// The most bytes of one HTTP/2 header block, after decompression.
    /// Default 16 KiB, as [`HttpLimits::max_head_size`].
    pub max_header_list_size: u32,
    /// How often an idle HTTP/2 connection is pinged, so that a peer gone
    /// silently is found (it is closed when a ping is not answered within
    /// the same time). Default 30 s.
    pub keep_alive_interval: Duration,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        let limits = HttpLimits::default();
        Self {
            limits,
            http2: true,
            preface_timeout: Duration::from_secs(10),
            max_concurrent_streams: 256,
            max_header_list_size: u32::try_from(limits.max_head_size).unwrap_or(u32::MAX),
            keep_alive_interval: Duration::from_secs(30),
        }
    }
}

/// Serves `service` on one accepted connection (TCP, or the stream of a
/// [`crate::TlsAcceptor`]) until the client closes it or `shutdown`
/// completes; then the connection finishes what it is answering (HTTP/1.1:
/// the current request, keep-alive off; HTTP/2: a GOAWAY, open streams
/// run to their end) and this returns.
///
/// HTTP/2 is served with extended CONNECT (RFC 8441) enabled: answer a
/// WebSocket request with [`crate::upgrade`], which takes both openings.
/// HTTP/1.1 is served with upgrades and with `config.limits`.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex_tokio::Error> {
/// use duplex_tokio::{HttpProtocol, HttpServerConfig, serve_http};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     let service = hyper::service::service_fn(|_req| async {
///         Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello\n")))
///     });
///     tokio::spawn(async move {
///         let config = HttpServerConfig::default();
///         let never = std::future::pending::<()>();
///         let _ = serve_http(tcp, HttpProtocol::Detect, service, &config, never).await;
///     });
/// }
/// # }
/// ```
pub async fn serve_http<IO, S, B>(
    io: IO,
    protocol: HttpProtocol,
    service: S,
    config: &HttpServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = B> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(shutdown);
    let (io, http2) = match protocol {
        HttpProtocol::Http11 => (Prefixed::new(io, Bytes::new()), false),
        _ if !config.http2 => (Prefixed::new(io, Bytes::new()), false),
        HttpProtocol::Detect | HttpProtocol::Http2 => {
            let mut io = io;
            let read = tokio::time::timeout(config.preface_timeout, read_preface(&mut io));
            // A server stopping does not wait for an idle client's first bytes.
            let read = tokio::select! {
                read = read => read,
                () = &mut shutdown => return Ok(()),
            };
            let (prefix, is_preface) = match read {
                Err(_) => return Err(Error::HandshakeTimeout),
                Ok(Err(e)) => return Err(Error::Io(e)),
                // Closed before a byte: nothing to serve.
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(found))) => found,
            };
            // Over ALPN h2, anything but the preface is an error that the
            // HTTP/2 server answers with its own GOAWAY.
            let http2 = is_preface || protocol == HttpProtocol::Http2;
            (Prefixed::new(io, prefix), http2)
        }
    };
    let io = TokioIo::new(io);
    let result = if http2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .enable_connect_protocol()
            .max_concurrent_streams(config.max_concurrent_streams)
            .max_header_list_size(config.max_header_list_size)
            .keep_alive_interval(config.keep_alive_interval)
            .keep_alive_timeout(config.keep_alive_interval);
        let conn = builder.serve_connection(io, service);
        until_shutdown(conn, shutdown, |conn| conn.graceful_shutdown()).await
    } else {
        let conn = config
            .limits
            .http1_builder()
            .serve_connection(io, service)
            .with_upgrades();
        until_shutdown(conn, shutdown, |conn| conn.graceful_shutdown()).await
    };
    result.map_err(|e| Error::Io(io::Error::other(e)))
}

/// Drives `conn` to its end; once `shutdown` fires, starts its graceful
/// shutdown (`graceful`: no new requests, the ones in flight finish) and
/// waits for it. The same for HTTP/1.1 and HTTP/2, whose connection types
/// differ but whose `graceful_shutdown` means the same.
async fn until_shutdown<C: Future>(
    conn: C,
    shutdown: Pin<&mut impl Future<Output = ()>>,
    graceful: impl FnOnce(Pin<&mut C>),
) -> C::Output {
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown => {
            graceful(conn.as_mut());
            conn.await
        }
    }
}

/// Reads until the bytes so far either are the whole HTTP/2 preface or
/// cannot become it; returns them and which it was (`None`: closed first).
async fn read_preface<IO: AsyncRead + Unpin>(io: &mut IO) -> io::Result<Option<(Bytes, bool)>> {
    let mut buf = BytesMut::with_capacity(PREFACE.len());
    loop {
        let n = io.read_buf(&mut buf).await?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                None
            } else {
                // A partial request, closed: HTTP/1.1 answers it or not.
                Some((buf.freeze(), false))
            });
        }
        let seen = buf.len().min(PREFACE.len());
        if PREFACE.get(..seen) != buf.get(..seen) {
            return Ok(Some((buf.freeze(), false)));
        }
        if buf.len() >= PREFACE.len() {
            return Ok(Some((buf.freeze(), true)));
        }
    }
}

/// A stream with bytes already read from it put back in front.
struct Prefixed<IO> {
    prefix: Bytes,
    io: IO,
}

impl<IO> Prefixed<IO> {
    fn new(io: IO, prefix: Bytes) -> Self {
        Self { prefix, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.has_remaining() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(this.prefix.get(..n).unwrap_or_default());
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn preface_is_told_from_an_http1_request() {
        let mut h2 = PREFACE;
        let (bytes, is_h2) = read_preface(&mut h2).await.unwrap().unwrap();
        assert!(is_h2);
        assert_eq!(&bytes[..], PREFACE);

        let mut h1 = &b"GET / HTTP/1.1\r\n\r\n"[..];
        let (bytes, is_h2) = read_preface(&mut h1).await.unwrap().unwrap();
        assert!(!is_h2);
        assert!(bytes.starts_with(b"GET"));

        // A request line that starts like the preface is still HTTP/1.1.
        let mut pri = &b"PRI /x HTTP/1.1\r\n\r\n"[..];
        assert!(!read_preface(&mut pri).await.unwrap().unwrap().1);

        let mut empty = &b""[..];
        assert!(read_preface(&mut empty).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn prefixed_bytes_come_first() {
        let mut io = Prefixed::new(&b"world"[..], Bytes::from_static(b"hello "));
        let mut out = String::new();
        io.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
