//! TLS for `duplex connect` (wss://, https://): the system's roots (the
//! Mozilla list when the system has none), plus `--ca FILE`, or no
//! verification at all with `--insecure`. The config is handed to
//! duplex-tokio (`ClientConfig::tls`) or to the https:// requests.

use std::sync::Arc;

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
    let mut roots = system_roots(out);
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

/// The TLS settings for `url` when it is an https:// or wss:// one; `None`
/// (and no warning from `--insecure`) for plain URLs.
pub(crate) fn config_for(
    url: &str,
    args: &Args,
    out: &Out,
) -> Result<Option<Arc<rustls::ClientConfig>>, Failure> {
    if url.starts_with("https:") || url.starts_with("wss:") {
        config(args, out).map(Some)
    } else {
        Ok(None)
    }
}

/// The roots the system trusts (what curl and browsers on this machine
/// trust, a company CA installed there included); the Mozilla list
/// compiled in when the system offers none, as in a scratch container.
fn system_roots(out: &Out) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    // Single unreadable or odd certificates are skipped: the store is
    // still usable, and rustls ignores what it cannot parse.
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        if let Some(error) = found.errors.first() {
            out.warn(&format!(
                "no system TLS roots ({error}); using the Mozilla roots built in"
            ));
        }
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
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
