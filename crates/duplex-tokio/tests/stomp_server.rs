//! The STOMP server and client over loopback: TCP and WebSocket clients on
//! one embedded broker, receipts, ack modes, binary bodies, the
//! authentication hook, heart-beats and the subprotocol choice.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use duplex_stomp::{AckMode, ClientConfig, ClientEvent, HeartBeat, Version};
use duplex_tokio::stomp::{StompClient, StompError, StompServer};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

async fn tcp_server(server: StompServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve_tcp(listener).await });
    addr
}

/// A hyper server with the STOMP WebSocket endpoint at `/stomp`.
async fn websocket_server(server: StompServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let server = server.clone();
            tokio::spawn(async move {
                let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let server = server.clone();
                    async move {
                        let resp = match server.upgrade(&mut req) {
                            Ok(resp) => resp.map(|()| Full::new(bytes::Bytes::new())),
                            Err(e) => {
                                let mut r = hyper::Response::new(Full::new(bytes::Bytes::from(
                                    e.to_string(),
                                )));
                                *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
                                r
                            }
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn config(versions: &[Version]) -> ClientConfig {
    let mut c = ClientConfig::new("/");
    c.versions = versions.to_vec();
    c
}

async fn next(client: &mut StompClient) -> ClientEvent {
    tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("an event in time")
        .expect("the connection is open")
}

async fn expect_message(client: &mut StompClient) -> duplex_stomp::Message {
    match next(client).await {
        ClientEvent::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn expect_receipt(client: &mut StompClient, id: &str) {
    match next(client).await {
        ClientEvent::Receipt { receipt_id } => assert_eq!(receipt_id, id),
        other => panic!("expected receipt {id}, got {other:?}"),
    }
}

#[tokio::test]
async fn tcp_clients_share_queues_and_topics_with_receipts() {
    let addr = tcp_server(StompServer::embedded()).await;
    for version in Version::ALL {
        let mut sub = StompClient::connect(addr, config(&[version]))
            .await
            .unwrap();
        let mut publisher = StompClient::connect(addr, config(&Version::ALL))
            .await
            .unwrap();
        assert_eq!(sub.connected().version, version);
        assert_eq!(publisher.connected().version, Version::V1_2);
        let topic = format!("/topic/t{version}");
        sub.subscribe_with(&topic, AckMode::Auto, &[("receipt", "r-sub")])
            .await
            .unwrap();
        expect_receipt(&mut sub, "r-sub").await;
        for i in 0..20 {
            publisher
                .send(&topic, &[("receipt", &format!("r{i}"))], format!("m{i}"))
                .await
                .unwrap();
        }
        for i in 0..20 {
            expect_receipt(&mut publisher, &format!("r{i}")).await;
        }
        for i in 0..20 {
            let m = expect_message(&mut sub).await;
            assert_eq!(m.body().as_ref(), format!("m{i}").as_bytes());
            assert_eq!(m.destination(), Some(topic.as_str()));
        }
        sub.disconnect().await.unwrap();
        publisher.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn websocket_and_tcp_clients_meet_on_one_broker() {
    let server = StompServer::embedded();
    let tcp = tcp_server(server.clone()).await;
    let ws = websocket_server(server).await;
    let url = format!("ws://{ws}/stomp");
    let mut ws_client =
        StompClient::connect_websocket(&url, config(&Version::ALL), Default::default())
            .await
            .unwrap();
    let mut tcp_client = StompClient::connect(tcp, config(&Version::ALL))
        .await
        .unwrap();
    ws_client
        .subscribe_with(
            "/queue/mixed",
            AckMode::ClientIndividual,
            &[("receipt", "s")],
        )
        .await
        .unwrap();
    expect_receipt(&mut ws_client, "s").await;
    // A binary body with NULs and bytes that are not UTF-8 (a binary
    // WebSocket message then).
    let body: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    tcp_client
        .send(
            "/queue/mixed",
            &[("content-type", "application/octet-stream")],
            body.clone(),
        )
        .await
        .unwrap();
    let m = expect_message(&mut ws_client).await;
    assert_eq!(m.body().as_ref(), body.as_slice());
    ws_client.nack(&m).await.unwrap();
    let again = expect_message(&mut ws_client).await;
    assert_eq!(again.header("redelivered"), Some("true"));
    assert_eq!(again.body().as_ref(), body.as_slice());
    ws_client.ack(&again).await.unwrap();

    // And back the other way, text this time.
    tcp_client
        .subscribe_with("/queue/back", AckMode::Client, &[("receipt", "s2")])
        .await
        .unwrap();
    expect_receipt(&mut tcp_client, "s2").await;
    for i in 0..3 {
        ws_client
            .send("/queue/back", &[], format!("b{i}"))
            .await
            .unwrap();
    }
    let mut last = None;
    for i in 0..3 {
        let m = expect_message(&mut tcp_client).await;
        assert_eq!(m.body().as_ref(), format!("b{i}").as_bytes());
        last = Some(m);
    }
    // One cumulative ACK covers all three.
    tcp_client.ack(&last.unwrap()).await.unwrap();
    ws_client.disconnect().await.unwrap();
    tcp_client.disconnect().await.unwrap();
}

#[tokio::test]
async fn websocket_subprotocol_is_the_clients_first_stomp_choice() {
    let ws = websocket_server(StompServer::embedded()).await;
    let url = format!("ws://{ws}/stomp");
    for (offer, expected) in [
        (
            vec!["v12.stomp", "v11.stomp", "v10.stomp"],
            Some("v12.stomp"),
        ),
        (vec!["chat", "v11.stomp"], Some("v11.stomp")),
        (vec!["v10.stomp"], Some("v10.stomp")),
        (vec!["chat"], None),
        (vec![], None),
    ] {
        let config = duplex_tokio::ClientConfig {
            protocols: offer.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let (_, response) = duplex_tokio::connect_with(&url, config).await.unwrap();
        assert_eq!(response.protocol.as_deref(), expected, "offer {offer:?}");
    }
}

#[tokio::test]
async fn authentication_hook_refuses_with_error_frame() {
    let server = StompServer::embedded()
        .with_authenticator(|r| r.login() == Some("alice") && r.passcode() == Some("secret"));
    let addr = tcp_server(server).await;
    let mut bad = config(&Version::ALL);
    bad.login = Some("alice".into());
    bad.passcode = Some("wrong".into());
    match StompClient::connect(addr, bad).await {
        Err(StompError::Refused(frame)) => {
            assert!(frame.header("message").is_some(), "{frame:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut good = config(&Version::ALL);
    good.login = Some("alice".into());
    good.passcode = Some("secret".into());
    let client = StompClient::connect(addr, good).await.unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn heart_beats_keep_an_idle_connection_alive() {
    let server = StompServer::embedded().with_session_config(|| duplex_stomp::ServerConfig {
        heart_beat: HeartBeat::every(Duration::from_millis(200)),
        ..Default::default()
    });
    let addr = tcp_server(server).await;
    let mut c = config(&Version::ALL);
    c.heart_beat = HeartBeat::every(Duration::from_millis(200));
    let mut client = StompClient::connect(addr, c).await.unwrap();
    let hb = client.connected().heart_beat;
    assert_eq!(hb.send, Some(Duration::from_millis(200)));
    assert_eq!(hb.receive, Some(Duration::from_millis(200)));
    // Ten intervals of silence from the application: only heart-beats.
    // (200 ms, not less: a peer is dropped after 2 intervals of silence,
    // and a loaded test machine stalls a task for 100 ms at times.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    client
        .subscribe_with("/queue/hb", AckMode::Auto, &[("receipt", "alive")])
        .await
        .unwrap();
    expect_receipt(&mut client, "alive").await;
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn transactions_hold_sends_until_commit() {
    let addr = tcp_server(StompServer::embedded()).await;
    let mut sub = StompClient::connect(addr, config(&Version::ALL))
        .await
        .unwrap();
    let publisher = StompClient::connect(addr, config(&Version::ALL))
        .await
        .unwrap();
    sub.subscribe_with("/queue/tx", AckMode::Auto, &[("receipt", "s")])
        .await
        .unwrap();
    expect_receipt(&mut sub, "s").await;
    let tx = publisher.begin().await.unwrap();
    publisher
        .send("/queue/tx", &[("transaction", &tx)], "aborted")
        .await
        .unwrap();
    publisher.abort(&tx).await.unwrap();
    let tx = publisher.begin().await.unwrap();
    publisher
        .send("/queue/tx", &[("transaction", &tx)], "committed")
        .await
        .unwrap();
    publisher.commit(&tx).await.unwrap();
    let m = expect_message(&mut sub).await;
    assert_eq!(m.body().as_ref(), b"committed");
}
