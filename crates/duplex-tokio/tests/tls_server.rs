//! Server-side TLS: the duplex and tungstenite clients over wss:// against
//! a duplex TLS server, certificate reload, and the refusals (a stalled
//! handshake, cleartext on the TLS port). Certificates are made here with
//! rcgen; everything runs on 127.0.0.1 with bounded waits.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use duplex_tokio::{Alpn, ClientConfig, Error, TlsAcceptor, TlsServerConfig, rustls};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

mod tls_common;

use tls_common::{make_cert, tls_connect, trusting, tungstenite_echo};

/// Every await in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

/// A TLS WebSocket echo server; each connection's accept outcome (ALPN or
/// error) is reported on the channel.
async fn echo_server(
    tls: TlsAcceptor,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Result<Alpn, Error>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                let (stream, alpn) = match tls.accept(tcp).await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(alpn));
                if alpn != Alpn::Http11 {
                    return;
                }
                let Ok(mut ws) = duplex_tokio::accept(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn client_config(tls: Arc<rustls::ClientConfig>) -> ClientConfig {
    ClientConfig {
        tls: Some(tls),
        ..ClientConfig::default()
    }
}

async fn duplex_echo_round(addr: std::net::SocketAddr, tls: Arc<rustls::ClientConfig>) {
    let url = format!("wss://127.0.0.1:{}/echo", addr.port());
    let (mut ws, _) =
        tokio::time::timeout(LIMIT, duplex_tokio::connect_with(&url, client_config(tls)))
            .await
            .unwrap()
            .unwrap();
    ws.send("hello over tls".into()).await.unwrap();
    let big = vec![7u8; 1 << 20];
    ws.send(big.clone().into()).await.unwrap();
    let text = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert_eq!(text.unwrap().unwrap(), "hello over tls".into());
    let binary = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert_eq!(binary.unwrap().unwrap(), big.into());
    ws.close().await.unwrap();
}

#[tokio::test]
async fn duplex_client_over_wss_against_duplex_tls_server() {
    let cert = make_cert();
    let tls = cert.acceptor(TlsServerConfig::default());
    let (addr, mut outcomes) = echo_server(tls).await;
    // The caller's ALPN list names h2, which the acceptor prefers; the
    // client must still end up on HTTP/1.1 for its handshake.
    duplex_echo_round(addr, trusting(&cert, &[b"h2", b"http/1.1"])).await;
    let outcome = tokio::time::timeout(LIMIT, outcomes.recv()).await.unwrap();
    assert_eq!(outcome.unwrap().unwrap(), Alpn::Http11);
    // Without `tls`, the client trusts the Mozilla roots only: the
    // self-signed certificate is refused.
    let url = format!("wss://127.0.0.1:{}/echo", addr.port());
    let refused = tokio::time::timeout(LIMIT, duplex_tokio::connect(&url))
        .await
        .unwrap();
    assert!(matches!(refused, Err(Error::Io(_))), "{:?}", refused.err());
}

#[tokio::test]
async fn tungstenite_client_against_duplex_tls_server() {
    let cert = make_cert();
    let tls = cert.acceptor(TlsServerConfig::default());
    let (addr, _outcomes) = echo_server(tls).await;
    let stream = tls_connect(addr, trusting(&cert, &[])).await.unwrap();
    tungstenite_echo(stream, addr.port()).await;
}

#[tokio::test]
async fn alpn_prefers_h2_and_defaults_to_http11() {
    let cert = make_cert();
    let tls = cert.acceptor(TlsServerConfig::default());
    let (addr, mut outcomes) = echo_server(tls).await;
    for (offer, expected) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], Alpn::Http2),
        (&[b"http/1.1".as_slice()][..], Alpn::Http11),
        (&[][..], Alpn::Http11),
    ] {
        let stream = tls_connect(addr, trusting(&cert, offer)).await.unwrap();
        let agreed = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let outcome = tokio::time::timeout(LIMIT, outcomes.recv()).await.unwrap();
        assert_eq!(outcome.unwrap().unwrap(), expected, "{offer:?}");
        let expected_wire: Option<&[u8]> = match (expected, offer.is_empty()) {
            (_, true) => None,
            (Alpn::Http2, _) => Some(b"h2"),
            (Alpn::Http11, _) => Some(b"http/1.1"),
        };
        assert_eq!(agreed.as_deref(), expected_wire);
    }
}

#[tokio::test]
async fn reloaded_certificate_served_to_the_next_connection() {
    let dir = std::env::temp_dir().join(format!("duplex-tls-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    let first = make_cert();
    std::fs::write(&cert_path, &first.cert_pem).unwrap();
    std::fs::write(&key_path, &first.key_pem).unwrap();
    let tls = TlsAcceptor::from_pem_files(&cert_path, &key_path).unwrap();
    let (addr, _outcomes) = echo_server(tls.clone()).await;

    let served = |trust: Arc<rustls::ClientConfig>| async move {
        tls_connect(addr, trust)
            .await
            .map(|s| s.get_ref().1.peer_certificates().unwrap()[0].clone())
    };
    assert_eq!(served(trusting(&first, &[])).await.unwrap(), first.der);

    // A renewed certificate lands on disk; reload picks it up.
    let second = make_cert();
    std::fs::write(&cert_path, &second.cert_pem).unwrap();
    std::fs::write(&key_path, &second.key_pem).unwrap();
    tls.reload().unwrap();
    assert_eq!(served(trusting(&second, &[])).await.unwrap(), second.der);
    assert!(served(trusting(&first, &[])).await.is_err());
    duplex_echo_round(addr, trusting(&second, &[])).await;

    // A broken file is refused and the current certificate stays.
    std::fs::write(&key_path, "not a key").unwrap();
    assert!(matches!(tls.reload(), Err(Error::Tls(_))));
    assert_eq!(served(trusting(&second, &[])).await.unwrap(), second.der);
    // A key that is not the certificate's is refused at load time too.
    std::fs::write(&key_path, &first.key_pem).unwrap();
    assert!(matches!(tls.reload(), Err(Error::Tls(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn stalled_handshake_closed_within_the_timeout() {
    let cert = make_cert();
    let timeout = Duration::from_millis(300);
    let tls = cert.acceptor(TlsServerConfig {
        handshake_timeout: timeout,
        ..TlsServerConfig::default()
    });
    assert_eq!(tls.handshake_timeout(), timeout);
    let (addr, mut outcomes) = echo_server(tls).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(LIMIT, silent.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closes a silent connection");
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout && elapsed < timeout * 10, "{elapsed:?}");
    let outcome = tokio::time::timeout(LIMIT, outcomes.recv()).await.unwrap();
    assert!(matches!(outcome, Some(Err(Error::HandshakeTimeout))));
}

#[tokio::test]
async fn cleartext_request_to_the_tls_port_is_refused() {
    let cert = make_cert();
    let tls = cert.acceptor(TlsServerConfig::default());
    let (addr, mut outcomes) = echo_server(tls).await;
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // An alert may come first; then the connection ends, well within 5 s.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(!answer.starts_with(b"HTTP/"), "no HTTP answer in cleartext");
    let outcome = tokio::time::timeout(LIMIT, outcomes.recv()).await.unwrap();
    assert!(matches!(outcome, Some(Err(Error::Io(_)))), "{outcome:?}");
    // The server goes on serving.
    duplex_echo_round(addr, trusting(&cert, &[])).await;
}

#[test]
fn bad_pem_is_a_clear_error() {
    let cert = make_cert();
    let cases: [(&[u8], &[u8]); 3] = [
        (b"", cert.key_pem.as_bytes()),
        (cert.cert_pem.as_bytes(), b""),
        (cert.key_pem.as_bytes(), cert.cert_pem.as_bytes()),
    ];
    for (c, k) in cases {
        assert!(matches!(
            TlsAcceptor::from_pem(c, k, TlsServerConfig::default()),
            Err(Error::Tls(_))
        ));
    }
    assert!(matches!(
        TlsAcceptor::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem"),
        Err(Error::Tls(_))
    ));
    let memory = cert.acceptor(TlsServerConfig::default());
    assert!(matches!(memory.reload(), Err(Error::Tls(_))));
    let other = make_cert();
    memory
        .set_pem(other.cert_pem.as_bytes(), other.key_pem.as_bytes())
        .unwrap();
}
