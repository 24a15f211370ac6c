//! Server-side TLS: a certificate loaded from PEM files and swappable
//! without a restart, ALPN `h2` and `http/1.1`, and a bounded handshake.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::server::TlsStream;

use crate::Error;

use super::{ALPN_H2, ALPN_HTTP11};

/// Settings for [`TlsAcceptor`].
#[derive(Debug, Clone)]
pub struct TlsServerConfig {
    /// The longest a client may take from TCP accept to a finished TLS
    /// handshake. Default 10 s: a slow mobile handshake takes well under a
    /// second, and a silent peer must not hold a socket for long.
    pub handshake_timeout: Duration,
    /// Offer HTTP/2 through ALPN (`h2` first, then `http/1.1`). Default
    /// `true`; turn it off while the server behind the acceptor serves only
    /// HTTP/1.1, so that browsers do not pick `h2`.
    pub http2: bool,
}

impl Default for TlsServerConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            http2: true,
        }
    }
}

/// The application protocol agreed in the TLS handshake, which decides how
/// the HTTP server must read the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`: HTTP/2, starting with the connection preface.
    Http2,
    /// `http/1.1`, or no ALPN at all (Node's `https`, `ws`, curl without
    /// ALPN, older clients): HTTP/1.1.
    Http11,
}

/// Where the certificate came from, for [`TlsAcceptor::reload`].
#[derive(Debug, Clone)]
enum Source {
    Files { cert: PathBuf, key: PathBuf },
    Memory,
}

/// A certificate resolver whose certificate can be replaced while
/// connections are served: each new handshake takes the current one, and
/// handshakes already under way keep theirs.
struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert").finish_non_exhaustive()
    }
}

impl ReloadableCert {
    fn new(key: CertifiedKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
        }
    }

    fn set(&self, key: CertifiedKey) {
        // A poisoned lock only means a writer panicked between two plain
        // assignments; the value inside is still a whole certificate.
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(key);
    }

    fn get(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Accepts TLS on streams the caller accepted (TCP, or anything
/// `AsyncRead + AsyncWrite`), with a reloadable certificate.
///
/// ```no_run
/// # async fn demo() -> Result<(), duplex_tokio::Error> {
/// use duplex_tokio::{Alpn, TlsAcceptor};
/// let tls = TlsAcceptor::from_pem_files("cert.pem", "key.pem")?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     let tls = tls.clone();
///     tokio::spawn(async move {
///         let Ok((stream, Alpn::Http11)) = tls.accept(tcp).await else { return };
///         if let Ok(mut ws) = duplex_tokio::accept(stream).await {
///             // ...serve the WebSocket.
///         }
///     });
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    resolver: Arc<ReloadableCert>,
    source: Source,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("source", &self.source)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor serving the certificate chain in `cert` (PEM, end-entity
    /// first) with the private key in `key` (PEM: PKCS#8, PKCS#1 or SEC1),
    /// with the default settings.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_pem_files_with(cert, key, TlsServerConfig::default())
    }

    /// [`TlsAcceptor::from_pem_files`] with the given settings.
    pub fn from_pem_files_with(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        config: TlsServerConfig,
    ) -> Result<Self, Error> {
        let (cert, key) = (cert.as_ref().to_owned(), key.as_ref().to_owned());
        let certified = load_files(&cert, &key)?;
        Self::build(certified, Source::Files { cert, key }, config)
    }

    /// An acceptor serving a certificate given as PEM text (a certificate
    /// made at start-up, or one from a secret store). [`TlsAcceptor::reload`]
    /// has no files to read then; use [`TlsAcceptor::set_pem`].
    pub fn from_pem(cert: &[u8], key: &[u8], config: TlsServerConfig) -> Result<Self, Error> {
        let certified = certified_key(cert, key)?;
        Self::build(certified, Source::Memory, config)
    }

    fn build(
        certified: CertifiedKey,
        source: Source,
        config: TlsServerConfig,
    ) -> Result<Self, Error> {
        let resolver = Arc::new(ReloadableCert::new(certified));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = if config.http2 {
            vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
        } else {
            vec![ALPN_HTTP11.to_vec()]
        };
        Ok(Self {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            resolver,
            source,
            handshake_timeout: config.handshake_timeout,
        })
    }

    /// Reads the certificate and key files again and serves them to the
    /// next handshakes (after a renewal). On error the current certificate
    /// stays in service.
    pub fn reload(&self) -> Result<(), Error> {
        match &self.source {
            Source::Files { cert, key } => {
                self.resolver.set(load_files(cert, key)?);
                Ok(())
            }
            Source::Memory => Err(Error::Tls(
                "this acceptor was made from PEM text: there are no files to reload".into(),
            )),
        }
    }

    /// Replaces the certificate with one given as PEM text. On error the
    /// current certificate stays in service.
    pub fn set_pem(&self, cert: &[u8], key: &[u8]) -> Result<(), Error> {
        self.resolver.set(certified_key(cert, key)?);
        Ok(())
    }

    /// Runs the TLS handshake on `io`, within the handshake timeout, and
    /// returns the stream with the agreed protocol: hand an
    /// [`Alpn::Http2`] stream to an HTTP/2 server, an [`Alpn::Http11`]
    /// one to HTTP/1.1 (or to [`crate::accept`] for a bare WebSocket).
    ///
    /// A peer that stalls gets [`Error::HandshakeTimeout`]; one that does
    /// not speak TLS (a cleartext HTTP request) gets [`Error::Io`] once
    /// rustls has answered with an alert. `io` is dropped, closing it, in
    /// both cases.
    pub async fn accept<IO>(&self, io: IO) -> Result<(TlsStream<IO>, Alpn), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = tokio::time::timeout(self.handshake_timeout, self.inner.accept(io))
            .await
            .map_err(|_| Error::HandshakeTimeout)??;
        let alpn = match stream.get_ref().1.alpn_protocol() {
            Some(ALPN_H2) => Alpn::Http2,
            _ => Alpn::Http11,
        };
        Ok((stream, alpn))
    }

    /// The handshake timeout in force.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

fn load_files(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))
    };
    certified_key(&read(cert)?, &read(key)?)
}

/// Parses a PEM chain and key and checks that they belong together, so that
/// a mismatched pair is refused at load time rather than at each handshake.
fn certified_key(cert: &[u8], key: &[u8]) -> Result<CertifiedKey, Error> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Tls("no certificate in the certificate PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| Error::Tls(format!("private key PEM: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| Error::Tls(format!("certificate and key: {e}")))?;
    Ok(certified)
}
