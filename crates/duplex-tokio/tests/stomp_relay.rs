//! Broker relay: clients of two relaying duplex servers share one upstream
//! broker. Runs against a duplex broker on loopback everywhere, and against
//! RabbitMQ's STOMP plugin when the conformance suite provides one
//! (`DUPLEX_STOMP_UPSTREAM=host:port`, the ignored test; with
//! `DUPLEX_RELAY_SERVERS=a,b` it uses two already running relaying
//! `duplex` servers instead of starting its own).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use duplex_stomp::{AckMode, ClientConfig, ClientEvent, HeartBeat, Version};
use duplex_tokio::stomp::{RelayConfig, StompClient, StompError, StompServer};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);

async fn serve(server: StompServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { server.serve_tcp(listener).await });
    addr
}

async fn relays(upstream: &str) -> (String, String) {
    let a = serve(StompServer::relay(RelayConfig::new(upstream))).await;
    let b = serve(StompServer::relay(RelayConfig::new(upstream))).await;
    (a.to_string(), b.to_string())
}

fn config(version: Version) -> ClientConfig {
    let mut c = ClientConfig::new("/");
    c.versions = vec![version];
    c.login = Some("guest".into());
    c.passcode = Some("guest".into());
    c
}

async fn next(client: &mut StompClient) -> ClientEvent {
    tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("an event in time")
        .expect("the connection is open")
}

async fn receipt(client: &mut StompClient, id: &str) {
    match next(client).await {
        ClientEvent::Receipt { receipt_id } => assert_eq!(receipt_id, id),
        other => panic!("expected receipt {id}, got {other:?}"),
    }
}

/// A subscriber on one relay, a publisher on the other: every message
/// arrives once and in order, on a queue and on a topic, in each version.
async fn once_in_order(a: &str, b: &str, tag: &str) {
    const N: usize = 500;
    for version in [Version::V1_0, Version::V1_1, Version::V1_2] {
        for (kind, ack) in [
            ("queue", AckMode::ClientIndividual),
            ("topic", AckMode::Auto),
        ] {
            let destination = format!("/{kind}/duplex-relay-{tag}-{}", version.as_str());
            let mut sub = StompClient::connect(a, config(version)).await.unwrap();
            let mut publisher = StompClient::connect(b, config(version)).await.unwrap();
            assert_eq!(sub.connected().version, version);
            sub.subscribe_with(&destination, ack, &[("receipt", "sub")])
                .await
                .unwrap();
            receipt(&mut sub, "sub").await;
            for i in 0..N {
                let headers: &[(&str, &str)] = if i == N - 1 {
                    &[("receipt", "last")]
                } else {
                    &[]
                };
                publisher
                    .send(&destination, headers, format!("{i}"))
                    .await
                    .unwrap();
            }
            receipt(&mut publisher, "last").await;
            for i in 0..N {
                match next(&mut sub).await {
                    ClientEvent::Message(m) => {
                        assert_eq!(
                            m.body().as_ref(),
                            i.to_string().as_bytes(),
                            "{destination}: message {i} out of order or repeated"
                        );
                        if ack != AckMode::Auto {
                            sub.ack(&m).await.unwrap();
                        }
                    }
                    other => panic!("{destination}: expected message {i}, got {other:?}"),
                }
            }
            // Nothing more arrives: no duplicates.
            sub.send_frame(
                duplex_stomp::Frame::new(duplex_stomp::Command::Unsubscribe)
                    .with_header("id", "sub-1")
                    .with_header("destination", &destination)
                    .with_header("receipt", "unsub"),
            )
            .await
            .unwrap();
            match next(&mut sub).await {
                ClientEvent::Receipt { receipt_id } => assert_eq!(receipt_id, "unsub"),
                other => panic!("{destination}: a message after the last one: {other:?}"),
            }
            sub.disconnect().await.unwrap();
            publisher.disconnect().await.unwrap();
        }
    }
}

/// Unacknowledged queue messages of a subscriber that leaves go to the
/// next one, through another relay; a NACK redelivers.
async fn redelivery_across_relays(a: &str, b: &str, tag: &str) {
    let queue = format!("/queue/duplex-relay-redeliver-{tag}");
    let mut first = StompClient::connect(a, config(Version::V1_2))
        .await
        .unwrap();
    first
        .subscribe_with(&queue, AckMode::ClientIndividual, &[("receipt", "s")])
        .await
        .unwrap();
    receipt(&mut first, "s").await;
    let publisher = StompClient::connect(b, config(Version::V1_2))
        .await
        .unwrap();
    publisher.send(&queue, &[], "job").await.unwrap();
    let ClientEvent::Message(m) = next(&mut first).await else {
        panic!("no message");
    };
    first.nack(&m).await.unwrap();
    let ClientEvent::Message(again) = next(&mut first).await else {
        panic!("no redelivery after NACK");
    };
    assert_eq!(again.body().as_ref(), b"job");
    // Leave without acknowledging: the broker hands it to the next one.
    drop(first);
    let mut second = StompClient::connect(b, config(Version::V1_2))
        .await
        .unwrap();
    second
        .subscribe(&queue, AckMode::ClientIndividual)
        .await
        .unwrap();
    let ClientEvent::Message(third) = next(&mut second).await else {
        panic!("no redelivery to the next subscriber");
    };
    assert_eq!(third.body().as_ref(), b"job");
    second.ack(&third).await.unwrap();
    second.disconnect().await.unwrap();
    publisher.disconnect().await.unwrap();
}

/// Heart-beats: the client's hop and the broker's hop each keep alive.
async fn heart_beats(a: &str) {
    let mut c = config(Version::V1_2);
    c.heart_beat = HeartBeat::every(Duration::from_millis(200));
    let mut client = StompClient::connect(a, c).await.unwrap();
    assert!(client.connected().heart_beat.receive.is_some());
    tokio::time::sleep(Duration::from_secs(2)).await;
    client
        .subscribe_with(
            "/queue/duplex-relay-hb",
            AckMode::Auto,
            &[("receipt", "alive")],
        )
        .await
        .unwrap();
    receipt(&mut client, "alive").await;
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn relay_to_a_duplex_broker() {
    let upstream = serve(StompServer::embedded()).await.to_string();
    let (a, b) = relays(&upstream).await;
    once_in_order(&a, &b, "local").await;
    redelivery_across_relays(&a, &b, "local").await;
    heart_beats(&a).await;
}

#[tokio::test]
async fn upstream_refusal_and_absence_reach_the_client_as_error() {
    // The upstream refuses the relay's login: the client gets ERROR, not
    // CONNECTED.
    let strict = StompServer::embedded().with_authenticator(|r| r.login() == Some("relay-user"));
    let upstream = serve(strict).await.to_string();
    let relay = serve(StompServer::relay(RelayConfig::new(upstream.clone()))).await;
    match StompClient::connect(relay, config(Version::V1_2)).await {
        Err(StompError::Refused(frame)) => assert!(frame.header("message").is_some()),
        other => panic!("expected ERROR, got {other:?}"),
    }
    let mut ok = RelayConfig::new(upstream);
    ok.machine.login = Some("relay-user".into());
    let relay = serve(StompServer::relay(ok)).await;
    let client = StompClient::connect(relay, config(Version::V1_2))
        .await
        .unwrap();
    client.disconnect().await.unwrap();

    // Nobody listens upstream.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_addr = gone.local_addr().unwrap().to_string();
    drop(gone);
    let relay = serve(StompServer::relay(RelayConfig::new(gone_addr.clone()))).await;
    match StompClient::connect(relay, config(Version::V1_2)).await {
        Err(StompError::Refused(frame)) => {
            assert_eq!(frame.header("message"), Some("broker unavailable"));
            // The broker's address is the operator's business, not the
            // client's: it is in no header and not in the body.
            let port = gone_addr.rsplit(':').next().unwrap_or_default();
            assert!(frame.headers().iter().all(|h| !h.value().contains(port)));
            assert!(!String::from_utf8_lossy(frame.body()).contains(port));
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

/// Against RabbitMQ (or any broker) at `DUPLEX_STOMP_UPSTREAM`; run by
/// scripts/conformance/suite-30-stomp-rabbitmq.sh.
#[tokio::test]
#[ignore = "needs an external STOMP broker: DUPLEX_STOMP_UPSTREAM=host:port"]
async fn relay_to_external_broker() {
    let servers = std::env::var("DUPLEX_RELAY_SERVERS").ok();
    let (a, b) = match servers.as_deref().and_then(|s| s.split_once(',')) {
        Some((a, b)) => (a.to_owned(), b.to_owned()),
        None => {
            let upstream =
                std::env::var("DUPLEX_STOMP_UPSTREAM").expect("DUPLEX_STOMP_UPSTREAM=host:port");
            relays(&upstream).await
        }
    };
    let tag = format!("{}", std::process::id());
    once_in_order(&a, &b, &tag).await;
    redelivery_across_relays(&a, &b, &tag).await;
    heart_beats(&a).await;
}
