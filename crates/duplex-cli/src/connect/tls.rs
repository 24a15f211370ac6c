//! `wss://` for `duplex connect`: TLS with the Mozilla roots (what
//! duplex-tokio's `tls` feature trusts), plus `--ca FILE`, or no
//! verification at all with `--insecure`. duplex-tokio's `connect_with`
//! takes no TLS settings, so the TLS stream is opened here and handed to
//! its public `client_handshake`.

use std::sync::Arc;

use duplex_tokio::ws::DeflateConfig;
use duplex_tokio::ws::handshake::{ClientRequest, Response};
use duplex_tokio::{ClientConfig, WebSocketStream, client_handshake};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::WebPkiSupportedAlgorithms;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

use super::{Args, Failure, Out};

/// The client TLS settings `--ca` and `--insecure` ask for.
pub(crate) fn config(args: &Args, out: &Out) -> Result<Arc<rustls::ClientConfig>, Failure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::failed(format!("TLS: {e}")))?;
    if args.insecure {
        out.warn("--insecure: the server's certificate is not verified; anyone on the path can read and change this connection");
        let verifier = NoVerification(provider.signature_verification_algorithms);
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
        ));
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &args.ca {
        let pem = std::fs::read(path)
            .map_err(|e| Failure::usage(format!("--ca {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| Failure::usage(format!("--ca {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| Failure::usage(format!("--ca {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(Failure::usage(format!(
                "--ca {}: no PEM certificate in it",
                path.display()
            )));
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// Opens a `wss://` URL: TCP, TLS with `tls`, then duplex-tokio's client
/// handshake with `config`, all within `config.handshake_timeout`.
pub(crate) async fn connect(
    url: &str,
    config: ClientConfig,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(WebSocketStream<TlsStream<TcpStream>>, Response), Failure> {
    let parsed = url::Url::parse(url).map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    if parsed.scheme() != "wss" {
        return Err(Failure::usage(format!("{url}: not a wss:// URL")));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Failure::usage(format!("{url}: no host")))?
        .to_owned();
    let port = parsed.port().unwrap_or(443);
    let mut target = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        target.push('?');
        target.push_str(query);
    }
    let request = ClientRequest {
        host: match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        },
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
    let bare_host = host.trim_matches(['[', ']']).to_owned();
    let name = ServerName::try_from(bare_host.clone())
        .map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    let timeout = config.handshake_timeout;
    let open = async move {
        let tcp = TcpStream::connect((bare_host.as_str(), port))
            .await
            .map_err(|e| Failure::failed(format!("{url}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::failed(format!("{url}: TLS: {e}")))?;
        client_handshake(stream, request, config)
            .await
            .map_err(|e| Failure::failed(format!("{url}: {e}")))
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| Failure::failed(format!("{url}: no handshake within {timeout:?}")))?
}

/// `--insecure`: any certificate is accepted, but the handshake signatures
/// are still checked (they prove nothing without a trusted certificate,
/// yet a broken one is a broken server).
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
