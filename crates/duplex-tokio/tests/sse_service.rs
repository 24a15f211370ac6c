//! The SSE service over loopback: events stream, resume after a dropped
//! connection from `Last-Event-ID`, stop after close; `close_all`; other
//! methods refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod http_common;

use std::time::Duration;

use duplex_tokio::sse::{CloseReason, SseConfig, SseError, SseService};
use http_common::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(5);

async fn get(addr: std::net::SocketAddr, headers: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /events HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp
}

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(tcp: &mut TcpStream, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
            .await
            .expect("in time")
            .unwrap();
        assert!(n > 0, "ended before {needle:?}: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn events_stream_resume_after_a_drop_and_stop_after_close() {
    let (tx, mut sessions) = mpsc::unbounded_channel();
    let service = SseService::new("/events", SseConfig::default(), move |session| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(session);
        }
    });
    assert!(service.matches("/events") && !service.matches("/eventsx"));
    let addr = serve(service.clone()).await;

    let mut first = get(addr, "").await;
    let session = tokio::time::timeout(STEP, sessions.recv())
        .await
        .unwrap()
        .unwrap();
    let id = session.id().to_string();
    let mut seen = String::new();
    read_until(&mut first, &mut seen, "retry: 3000").await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("text/event-stream"));
    session.send("one").await.unwrap();
    session.send_event("named", "two").await.unwrap();
    read_until(
        &mut first,
        &mut seen,
        &format!("id: {id}:2\nevent: named\ndata: two\n\n"),
    )
    .await;
    assert!(seen.contains(&format!("id: {id}:1\ndata: one\n\n")));

    // The client goes away; what is sent meanwhile waits for it.
    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    session.send("three").await.unwrap();
    let mut again = get(addr, &format!("Last-Event-ID: {id}:2\r\n")).await;
    let mut seen = String::new();
    read_until(
        &mut again,
        &mut seen,
        &format!("id: {id}:3\ndata: three\n\n"),
    )
    .await;
    assert!(!seen.contains("data: one"), "replayed too much: {seen}");
    assert_eq!(service.inspect(|s| s.session_count()).await, Some(1));

    // Closed: the stream ends, and a reconnection is told to stop.
    let mut session = session;
    session.close().await.unwrap();
    assert_eq!(session.closed().await, Some(CloseReason::Application));
    // The chunked body's last chunk (the connection stays for keep-alive).
    read_until(&mut again, &mut seen, "\r\n0\r\n\r\n").await;
    let mut late = get(
        addr,
        &format!("Last-Event-ID: {id}:3\r\nConnection: close\r\n"),
    )
    .await;
    let mut answer = String::new();
    tokio::time::timeout(STEP, late.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(matches!(session.send("four").await, Err(SseError::Closed)));
}

#[tokio::test]
async fn close_all_ends_every_session_and_other_methods_get_405() {
    let (tx, mut sessions) = mpsc::unbounded_channel();
    let service = SseService::new("/events", SseConfig::default(), move |session| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(session);
        }
    });
    let addr = serve(service.clone()).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut tcp = get(addr, "").await;
        let mut seen = String::new();
        read_until(&mut tcp, &mut seen, "retry:").await;
        streams.push(tcp);
    }
    let mut handles = Vec::new();
    for _ in 0..3 {
        handles.push(sessions.recv().await.unwrap());
    }
    assert_eq!(service.close_all().await, 3);
    for mut handle in handles {
        assert_eq!(handle.closed().await, Some(CloseReason::Application));
    }
    for mut tcp in streams {
        let mut seen = String::new();
        read_until(&mut tcp, &mut seen, "0\r\n\r\n").await;
    }
    let mut post = TcpStream::connect(addr).await.unwrap();
    post.write_all(
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    post.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
}
