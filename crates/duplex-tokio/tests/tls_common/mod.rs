//! Certificates for the TLS tests: a self-signed one for 127.0.0.1 and
//! localhost made with rcgen, the server's acceptor for it, and a client
//! configuration that trusts exactly it; a TLS connection with it, and a
//! tungstenite client's echo round over that connection.

// Each test binary uses its own part of this module.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use duplex_tokio::rustls::pki_types::{CertificateDer, ServerName};
use duplex_tokio::tokio_rustls::client::TlsStream;
use duplex_tokio::{TlsAcceptor, TlsServerConfig, rustls};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;

/// Every await of these helpers is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

/// A self-signed certificate, in PEM for the server and DER for clients.
pub(crate) struct TestCert {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: CertificateDer<'static>,
}

/// A fresh self-signed certificate for `127.0.0.1` and `localhost`.
pub(crate) fn make_cert() -> TestCert {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    TestCert {
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
        der: made.cert.der().clone(),
    }
}

impl TestCert {
    /// An acceptor serving this certificate with `config`.
    pub(crate) fn acceptor(&self, config: TlsServerConfig) -> TlsAcceptor {
        TlsAcceptor::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes(), config).unwrap()
    }
}

/// A client configuration trusting exactly `cert`, offering `alpn`.
pub(crate) fn trusting(cert: &TestCert, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr` (named `127.0.0.1`) with `trust`'s roots
/// and ALPN list: the handshake's result.
pub(crate) async fn tls_connect(
    addr: SocketAddr,
    trust: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = duplex_tokio::tokio_rustls::TlsConnector::from(trust);
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio::time::timeout(LIMIT, connector.connect(name, tcp))
        .await
        .unwrap()
}

/// tungstenite, over `stream`, opens `wss://127.0.0.1:PORT/echo`, gets
/// back the text it sends, and closes.
pub(crate) async fn tungstenite_echo(stream: TlsStream<TcpStream>, port: u16) {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("wss://127.0.0.1:{port}/echo");
    let (mut ws, response) =
        tokio::time::timeout(LIMIT, tokio_tungstenite::client_async(url, stream))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(response.status(), 101);
    ws.send(Message::text("from tungstenite")).await.unwrap();
    let got = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert_eq!(got.unwrap().unwrap(), Message::text("from tungstenite"));
    ws.close(None).await.unwrap();
}
