//! The duplex Socket.IO client against the duplex Socket.IO server over
//! loopback, in the three transport modes, with the checks of
//! examples/socketio_client_interop.rs (which the conformance script runs
//! against the Node reference server), reconnection included.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

#[allow(dead_code)]
#[path = "../examples/socketio_client_interop.rs"]
mod interop;

#[allow(dead_code)]
#[path = "../../duplex-cli/src/socketio_suites.rs"]
mod suites;

use std::time::Duration;

use duplex_polling::TransportName;
use duplex_tokio::socketio::client::ClientTransports;
use duplex_tokio::socketio::{AckSender, NamespaceHandlers, Socket, SocketIo, SocketIoConfig};

/// The conformance server's handlers plus `transport` and `kill`, as the
/// reference server of the conformance script has them.
fn handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    suites::conformance_handlers(ns)
        .on("transport", |socket: Socket, ack: AckSender| {
            let name = match socket.transport() {
                Some(TransportName::Polling) => "polling",
                Some(TransportName::WebSocket) => "websocket",
                _ => "unknown",
            };
            let _ = ack.send(name);
        })
        .on("kill", |socket: Socket| socket.close_connection())
}

async fn server() -> String {
    let io = SocketIo::builder(SocketIoConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..SocketIoConfig::default()
    })
    .namespace("/", handlers)
    .namespace("/custom", handlers)
    .build();
    let addr = socketio_common::serve(io).await;
    format!("http://{addr}")
}

async fn check(transports: ClientTransports) {
    let url = server().await;
    let results = interop::run_checks(&url, transports, true).await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(results.len(), 10);
}

#[tokio::test]
async fn over_polling() {
    check(ClientTransports::Polling).await;
}

#[tokio::test]
async fn over_websocket() {
    check(ClientTransports::WebSocket).await;
}

#[tokio::test]
async fn over_polling_upgraded_to_websocket() {
    check(ClientTransports::PollingThenWebSocket).await;
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_maximum() {
    use rand::SeedableRng;
    let config = duplex_tokio::socketio::client::ClientConfig::new("http://127.0.0.1:1");
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for attempt in 0..10 {
        let base = 1000.0 * 2f64.powi(attempt);
        for _ in 0..50 {
            let d = config.backoff(attempt as u32, &mut rng).as_secs_f64() * 1000.0;
            assert!(d <= 5000.0 + 1e-6, "{d}");
            assert!(d >= (base * 0.5).min(5000.0) - 1e-6, "{attempt}: {d}");
            assert!(d <= base * 1.5 + 1e-6, "{attempt}: {d}");
        }
    }
    let no_jitter = duplex_tokio::socketio::client::ClientConfig {
        randomization_factor: 0.0,
        ..config
    };
    assert_eq!(no_jitter.backoff(1, &mut rng), Duration::from_secs(2));
}

/// `url` (http://) behind a TLS front with a fresh self-signed certificate
/// for 127.0.0.1, as a TLS-terminating proxy puts it: the https:// URL and
/// a client config trusting exactly that certificate.
#[cfg(feature = "tls")]
async fn behind_tls(url: &str) -> (String, std::sync::Arc<duplex_tokio::rustls::ClientConfig>) {
    use duplex_tokio::{TlsAcceptor, TlsServerConfig, rustls};
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let acceptor = TlsAcceptor::from_pem(
        made.cert.pem().as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
        TlsServerConfig {
            http2: false,
            ..TlsServerConfig::default()
        },
    )
    .unwrap();
    let backend = url.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok((mut tls, _)) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (format!("https://{addr}"), std::sync::Arc::new(config))
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn over_https_with_the_configs_tls_on_every_transport() {
    use duplex_tokio::socketio::Value;
    use duplex_tokio::socketio::client::{ClientConfig, Manager};
    let (url, tls) = behind_tls(&server().await).await;
    for transports in [
        ClientTransports::Polling,
        ClientTransports::WebSocket,
        ClientTransports::PollingThenWebSocket,
    ] {
        let mut config = ClientConfig::new(&url);
        config.transports = transports;
        config.tls = Some(tls.clone());
        let manager = Manager::new(config);
        let socket = manager.socket("/", None);
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            socket.emit_with_ack(
                "message-with-ack",
                vec![Value::from("over tls")],
                Some(Duration::from_secs(5)),
            ),
        )
        .await;
        assert!(
            matches!(&reply, Ok(Ok(args)) if args.len() == 1 && args[0] == Value::from("over tls")),
            "{transports:?}: {reply:?}"
        );
        manager.close();
    }
    // Without the config, the Mozilla roots do not know the certificate.
    let mut config = ClientConfig::new(&url);
    config.reconnection = false;
    let manager = Manager::new(config);
    let socket = manager.socket("/", None);
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        socket.emit_with_ack("message-with-ack", vec![], Some(Duration::from_secs(2))),
    )
    .await;
    assert!(!matches!(reply, Ok(Ok(_))), "{reply:?}");
    manager.close();
}
