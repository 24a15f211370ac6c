//! The client transport: plain TCP, or TLS through tokio-rustls when the
//! `tls` feature is on; and, with that feature, the server's TLS acceptor
//! (`server`).

#[cfg(feature = "tls")]
mod server;

#[cfg(feature = "tls")]
pub use server::{Alpn, TlsAcceptor, TlsServerConfig};

/// The client's TLS settings when the caller gives none.
#[cfg(feature = "tls")]
pub(crate) type ClientTls = Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>;
/// Without the `tls` feature there are no TLS settings to carry.
#[cfg(not(feature = "tls"))]
pub(crate) type ClientTls = ();

/// The ALPN identifier of HTTP/2 (RFC 9113 section 3.2).
#[cfg(any(feature = "tls", feature = "http2"))]
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// The ALPN identifier of HTTP/1.1 (RFC 7301 section 6).
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream, possibly wrapped in TLS.
#[derive(Debug)]
pub enum MaybeTlsStream {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`wss://`).
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// Wraps `tcp` in TLS for `host` when `secure`, checking the server's
    /// certificate with `tls`, or against the Mozilla root store without.
    pub(crate) async fn connect(
        tcp: TcpStream,
        host: &str,
        secure: bool,
        tls: ClientTls,
    ) -> io::Result<Self> {
        Self::connect_alpn(tcp, host, secure, tls, ALPN_HTTP11).await
    }

    /// [`MaybeTlsStream::connect`] offering exactly `alpn` in TLS
    /// ([`ALPN_H2`] for WebSockets over HTTP/2).
    pub(crate) async fn connect_alpn(
        tcp: TcpStream,
        host: &str,
        secure: bool,
        tls: ClientTls,
        alpn: &'static [u8],
    ) -> io::Result<Self> {
        if !secure {
            return Ok(Self::Plain(tcp));
        }
        Self::connect_tls(tcp, host, tls, alpn).await
    }

    /// The protocol agreed in ALPN (`None`: cleartext, or no ALPN).
    #[cfg(feature = "http2")]
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Plain(_) => None,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    #[cfg(feature = "tls")]
    async fn connect_tls(
        tcp: TcpStream,
        host: &str,
        tls: ClientTls,
        alpn: &'static [u8],
    ) -> io::Result<Self> {
        use std::sync::Arc;
        use tokio_rustls::rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
        // The handshake that follows is `alpn`'s: a server picking another
        // protocol from the caller's ALPN list could not be talked to. For
        // HTTP/1.1 an empty list stays empty (servers default to it); HTTP/2
        // must be asked for.
        let offers_other = |c: &ClientConfig| {
            c.alpn_protocols.iter().any(|p| p.as_slice() != alpn)
                || (alpn == ALPN_H2 && c.alpn_protocols.is_empty())
        };
        let config = match tls {
            Some(c) if offers_other(&c) => {
                let mut c = (*c).clone();
                c.alpn_protocols = vec![alpn.to_vec()];
                Arc::new(c)
            }
            Some(c) => c,
            None => {
                let roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let mut c = ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                if alpn == ALPN_H2 {
                    c.alpn_protocols = vec![alpn.to_vec()];
                }
                Arc::new(c)
            }
        };
        // `host` comes from a URL, so an IPv6 literal arrives bracketed.
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(Self::Tls(Box::new(tls)))
    }

    #[cfg(not(feature = "tls"))]
    async fn connect_tls(
        _tcp: TcpStream,
        _host: &str,
        _tls: ClientTls,
        _alpn: &'static [u8],
    ) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "wss:// needs the `tls` feature of duplex-tokio",
        ))
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
