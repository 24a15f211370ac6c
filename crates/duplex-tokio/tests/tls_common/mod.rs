//! Certificates for the TLS tests: a self-signed one for 127.0.0.1 and
//! localhost made with rcgen, the server's acceptor for it, and a client
//! configuration that trusts exactly it.

// Each test binary uses its own part of this module.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use duplex_tokio::rustls::pki_types::CertificateDer;
use duplex_tokio::{TlsAcceptor, TlsServerConfig, rustls};

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
