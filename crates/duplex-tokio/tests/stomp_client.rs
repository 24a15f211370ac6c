//! The STOMP client's halves and receipts over loopback: a sender cloned
//! into several tasks with a receiver in another, `send_with_receipt`
//! returning once the broker has the message, the server's `ERROR` ending
//! the wait,
//! `disconnect` from a sender, and a sender that outlives its receiver.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod stomp_common;

use std::time::Duration;

use duplex_stomp::{AckMode, ClientConfig, ClientEvent};
use duplex_tokio::stomp::{StompClient, StompError, StompReceiver, StompServer};
use stomp_common::serve_tcp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

async fn next(events: &mut StompReceiver) -> Option<ClientEvent> {
    tokio::time::timeout(WAIT, events.next_event())
        .await
        .expect("an event in time")
}

#[tokio::test]
async fn cloned_senders_in_many_tasks_and_a_receiver_in_another() {
    let addr = serve_tcp(StompServer::embedded()).await;
    let subscriber = StompClient::connect(addr, ClientConfig::new("/"))
        .await
        .unwrap();
    subscriber
        .subscribe("/topic/split", AckMode::Auto)
        .await
        .unwrap();
    let (sub_sender, mut sub_events) = subscriber.split();
    let publisher = StompClient::connect(addr, ClientConfig::new("/"))
        .await
        .unwrap();
    let (sender, mut publisher_events) = publisher.split();

    let mut tasks = Vec::new();
    for task in 0..4 {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let body = format!("{task}-{i}");
                sender
                    .send_with_receipt("/topic/split", &[], body)
                    .await
                    .unwrap();
            }
        }));
    }
    let reader = tokio::spawn(async move {
        let mut bodies = Vec::new();
        while bodies.len() < 40 {
            match next(&mut sub_events).await {
                Some(ClientEvent::Message(m)) => {
                    bodies.push(String::from_utf8(m.body().to_vec()).unwrap());
                }
                other => panic!("expected a message, got {other:?}"),
            }
        }
        (bodies, sub_events)
    });
    for task in tasks {
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    }
    let (mut bodies, mut sub_events) = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    // Each task's messages in its own order; all 40 there.
    for task in 0..4 {
        let mine: Vec<&String> = bodies
            .iter()
            .filter(|b| b.starts_with(&format!("{task}-")))
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("{task}-{i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 40);

    // The awaited receipts were answers, not events: the publisher's
    // receiver sees only the end of the connection.
    sender.disconnect().await.unwrap();
    assert_eq!(
        next(&mut publisher_events).await,
        Some(ClientEvent::Disconnected)
    );
    assert_eq!(next(&mut publisher_events).await, None);
    // A command after the disconnect finds the connection gone.
    assert!(matches!(
        sender.send("/topic/split", &[], "late").await,
        Err(StompError::Closed | StompError::Stomp(_))
    ));

    sub_sender.disconnect().await.unwrap();
    assert_eq!(next(&mut sub_events).await, Some(ClientEvent::Disconnected));
}

#[tokio::test]
async fn send_with_receipt_returns_once_the_broker_holds_the_message() {
    let addr = serve_tcp(StompServer::embedded()).await;
    let producer = StompClient::connect(addr, ClientConfig::new("/"))
        .await
        .unwrap();
    producer
        .send_with_receipt("/queue/held", &[("content-type", "text/plain")], "kept")
        .await
        .unwrap();
    // Only now does anyone subscribe: the queue already has it.
    let mut consumer = StompClient::connect(addr, ClientConfig::new("/"))
        .await
        .unwrap();
    consumer
        .subscribe("/queue/held", AckMode::Auto)
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, consumer.next_event())
        .await
        .unwrap()
    {
        Some(ClientEvent::Message(m)) => assert_eq!(m.body().as_ref(), b"kept"),
        other => panic!("expected the held message, got {other:?}"),
    }
    producer.disconnect().await.unwrap();
    consumer.disconnect().await.unwrap();
}

/// Reads one NUL-terminated frame (heart-beat newlines skipped).
async fn read_frame(tcp: &mut TcpStream) -> String {
    let mut frame = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        tcp.read_exact(&mut byte).await.unwrap();
        match byte[0] {
            0 => return String::from_utf8(frame).unwrap(),
            b'\n' | b'\r' if frame.is_empty() => {}
            b => frame.push(b),
        }
    }
}

#[tokio::test]
async fn an_error_frame_ends_the_wait_for_a_receipt() {
    // A hand-written server that refuses every SEND, naming its receipt.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        assert!(read_frame(&mut tcp).await.starts_with("CONNECT"));
        tcp.write_all(b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0")
            .await
            .unwrap();
        let send = read_frame(&mut tcp).await;
        let receipt = send
            .lines()
            .find_map(|l| l.strip_prefix("receipt:"))
            .unwrap()
            .to_owned();
        let error = format!("ERROR\nreceipt-id:{receipt}\nmessage:refused\n\n\0");
        tcp.write_all(error.as_bytes()).await.unwrap();
        tcp
    });
    let mut client = StompClient::connect(addr, ClientConfig::new("/"))
        .await
        .unwrap();
    let refused = tokio::time::timeout(WAIT, client.send_with_receipt("/queue/q", &[], "x"))
        .await
        .unwrap();
    match refused {
        Err(StompError::Refused(frame)) => assert_eq!(frame.header("message"), Some("refused")),
        other => panic!("expected the ERROR frame, got {other:?}"),
    }
    // The receiver still gets the ERROR as an event.
    match tokio::time::timeout(WAIT, client.next_event())
        .await
        .unwrap()
    {
        Some(ClientEvent::Error(frame)) => assert_eq!(frame.header("message"), Some("refused")),
        other => panic!("expected ERROR, got {other:?}"),
    }
    drop(server.await.unwrap());
}

#[tokio::test]
async fn a_sender_keeps_working_after_its_receiver_is_dropped() {
    let addr = serve_tcp(StompServer::embedded()).await;
    let client = StompClient::connect(addr, ClientConfig::new("/"))
        .await
        .unwrap();
    // Subscribed to its own topic: every send comes back as an event that
    // nobody reads, more than the client holds for a reader.
    client
        .subscribe("/topic/echo", AckMode::Auto)
        .await
        .unwrap();
    let (sender, events) = client.split();
    drop(events);
    for i in 0..1500 {
        tokio::time::timeout(
            WAIT,
            sender.send_with_receipt("/topic/echo", &[], format!("{i}")),
        )
        .await
        .expect("the receipt in time")
        .unwrap();
    }
    tokio::time::timeout(WAIT, sender.disconnect())
        .await
        .unwrap()
        .unwrap();
}
