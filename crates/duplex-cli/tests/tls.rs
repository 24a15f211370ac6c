//! `duplex serve` over TLS, as a user runs it: `--tls-cert`/`--tls-key`
//! with a certificate made here (rcgen), WebSockets over HTTP/1.1 upgrade
//! and over HTTP/2 extended CONNECT on one listener, `/stats` counting
//! both; and `--tls-self-signed` saying what it did.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use duplex_tokio::{ClientConfig, Http2Connection, rustls};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::timeout;

mod common;

use common::Server;

/// Every wait in these tests is bounded by this.
const STEP: Duration = Duration::from_secs(10);

/// A client configuration trusting exactly `der`.
fn trusting(der: &rustls::pki_types::CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn config(tls: &Arc<rustls::ClientConfig>) -> ClientConfig {
    ClientConfig {
        tls: Some(tls.clone()),
        handshake_timeout: STEP,
        ..ClientConfig::default()
    }
}

async fn echo<S>(ws: &mut duplex_tokio::WebSocketStream<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(text.to_owned().into()).await.unwrap();
    let back = timeout(STEP, ws.next()).await.expect("an echo in time");
    assert_eq!(back.unwrap().unwrap(), text.to_owned().into());
}

#[tokio::test]
async fn serve_over_tls_takes_both_openings_and_stats_tell_them_apart() {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("duplex-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let server = Server::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        server
            .url_line
            .contains(&format!("https://{}/", server.addr))
            && server
                .url_line
                .contains(&format!("wss://{}/echo", server.addr)),
        "{}",
        server.url_line
    );
    let tls = trusting(made.cert.der());

    // HTTP/1.1 (no ALPN): the upgrade.
    let (mut h1, _) = timeout(
        STEP,
        duplex_tokio::connect_with(&server.url("wss", "/echo"), config(&tls)),
    )
    .await
    .expect("wss in time")
    .expect("wss over HTTP/1.1");
    echo(&mut h1, "over HTTP/1.1").await;

    // HTTP/2: two WebSockets on one connection, by extended CONNECT.
    let h2 = Http2Connection::connect(&server.url("wss", ""), &config(&tls))
        .await
        .expect("an HTTP/2 connection");
    let (mut a, _) = h2
        .websocket("/echo", ClientConfig::default())
        .await
        .unwrap();
    let (mut b, _) = h2
        .websocket("/echo", ClientConfig::default())
        .await
        .unwrap();
    echo(&mut a, "stream a").await;
    echo(&mut b, "stream b").await;

    // /stats over the same HTTP/2 connection's sibling: an h2 WebSocket
    // cannot ask, so a plain HTTPS GET on a new connection does.
    let stats = stats(&server, &tls).await;
    let http = &stats["http"];
    assert_eq!(http["websockets_opened"]["http/1.1 upgrade"], 1, "{http}");
    assert_eq!(
        http["websockets_opened"]["h2 extended connect"], 2,
        "{http}"
    );
    assert!(http["connections"]["h2"].as_i64() >= Some(1), "{http}");
    // An upgraded HTTP/1.1 connection is the WebSocket's from then on:
    // counted in the total, no longer as an open HTTP connection.
    assert!(
        http["connections_total"]["http/1.1"].as_u64() >= Some(2),
        "{http}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
    h1.close().await.unwrap();
}

/// `GET /stats` over HTTP/1.1 and TLS.
async fn stats(server: &Server, tls: &Arc<rustls::ClientConfig>) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = duplex_tokio::tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .unwrap();
    let request = format!(
        "GET /stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // A TLS peer that closes without close_notify is an error after the
    // bytes arrived; the bytes are what matter.
    let _ = timeout(STEP, stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON stats")
}

#[test]
fn self_signed_is_announced_and_served_over_https() {
    let server = Server::start_with(&["--tls-self-signed"]);
    assert!(
        server.notes.iter().any(|n| n.contains("self-signed")),
        "{:?}",
        server.notes
    );
    assert!(server.url_line.contains("https://"), "{}", server.url_line);
}
