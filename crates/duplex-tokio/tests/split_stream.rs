//! A `WebSocketStream` split (futures_util `StreamExt::split`) into a reader
//! task and a writer task, the standard tokio way, echoing large messages
//! as client and as server, against duplex itself and against
//! tokio-tungstenite. Both halves share one socket, and whichever task
//! flushes the shared write buffer must not leave the other asleep (issue
//! #20: this hung with 1 MiB and 64 KiB messages). Every test is bounded so
//! that a regression fails instead of hanging.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod http_common;

use std::time::Duration;

use bytes::Bytes;
use duplex_tokio::ws::Message;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as TMessage;

/// Long enough for 64 MiB each way in a debug build on a shared machine
/// (a test takes 5 to 15 s alone, more beside the others),
/// short enough that a hang is reported as one.
const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: timed out after {LIMIT:?} (split stream stalled)"),
    }
}

/// Message `i` of `size` bytes: a pattern with its number at both ends,
/// so that a reordered, lost, cut or corrupted echo is caught. The pattern
/// is built once per size and copied, which keeps a debug build's time on
/// the WebSocket and not on the test.
fn payload(i: u32, size: usize) -> Bytes {
    thread_local! {
        static PATTERN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut v = PATTERN.with_borrow_mut(|p| {
        if p.len() != size {
            *p = (0..size).map(|j| (j % 251) as u8).collect();
        }
        p.clone()
    });
    let n = i.to_be_bytes();
    v[..4].copy_from_slice(&n);
    v[size - 4..].copy_from_slice(&n);
    Bytes::from(v)
}

/// A duplex echo server whose connection is split: one task reads and
/// hands each message to a second task that sends it back.
async fn duplex_split_echo_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = duplex_tokio::accept(tcp).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Message>(16);
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                sink.send(msg).await.unwrap();
            }
            let _ = sink.close().await;
        });
        while let Some(Ok(msg)) = stream.next().await {
            if tx.send(msg).await.is_err() {
                break;
            }
        }
        drop(tx);
        writer.await.unwrap();
    });
    (url, handle)
}

/// A tokio-tungstenite echo server, split the same way.
async fn tungstenite_split_echo_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::channel::<TMessage>(16);
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        });
        while let Some(Ok(msg)) = stream.next().await {
            if msg.is_close() {
                break;
            }
            if (msg.is_binary() || msg.is_text()) && tx.send(msg).await.is_err() {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
    });
    (url, handle)
}

/// A duplex client split into a writer task sending `count` messages of
/// `size` bytes and a reader task checking every echo, in order.
async fn duplex_split_client(url: &str, count: u32, size: usize) {
    let (ws, _) = duplex_tokio::connect(url).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..count {
            sink.send(Message::Binary(payload(i, size))).await.unwrap();
        }
        sink
    });
    let reader = tokio::spawn(async move {
        for i in 0..count {
            let msg = stream.next().await.expect("stream ended early").unwrap();
            assert_eq!(msg, Message::Binary(payload(i, size)), "echo {i}");
        }
        stream
    });
    let (sink, stream) = (writer.await.unwrap(), reader.await.unwrap());
    let mut ws = sink.reunite(stream).unwrap();
    ws.close().await.unwrap();
}

/// A tokio-tungstenite client, split the same way.
async fn tungstenite_split_client(url: &str, count: u32, size: usize) {
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..count {
            sink.send(TMessage::Binary(payload(i, size))).await.unwrap();
        }
        sink
    });
    let reader = tokio::spawn(async move {
        for i in 0..count {
            let msg = stream.next().await.expect("stream ended early").unwrap();
            assert_eq!(msg, TMessage::Binary(payload(i, size)), "echo {i}");
        }
        stream
    });
    let (sink, stream) = (writer.await.unwrap(), reader.await.unwrap());
    let mut ws = sink.reunite(stream).unwrap();
    ws.close(None).await.unwrap();
}

const MIB: usize = 1 << 20;
const KIB64: usize = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplex_client_and_server_split_1mib() {
    let (url, server) = duplex_split_echo_server().await;
    bounded("64 x 1 MiB", async {
        duplex_split_client(&url, 64, MIB).await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplex_client_and_server_split_64kib() {
    let (url, server) = duplex_split_echo_server().await;
    bounded("2,000 x 64 KiB", async {
        duplex_split_client(&url, 2_000, KIB64).await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplex_client_split_against_tungstenite_1mib() {
    let (url, server) = tungstenite_split_echo_server().await;
    bounded("64 x 1 MiB", async {
        duplex_split_client(&url, 64, MIB).await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplex_client_split_against_tungstenite_64kib() {
    let (url, server) = tungstenite_split_echo_server().await;
    bounded("2,000 x 64 KiB", async {
        duplex_split_client(&url, 2_000, KIB64).await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplex_server_split_against_tungstenite_1mib() {
    let (url, server) = duplex_split_echo_server().await;
    bounded("64 x 1 MiB", async {
        tungstenite_split_client(&url, 64, MIB).await;
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplex_server_split_against_tungstenite_64kib() {
    let (url, server) = duplex_split_echo_server().await;
    bounded("2,000 x 64 KiB", async {
        tungstenite_split_client(&url, 2_000, KIB64).await;
        server.await.unwrap();
    })
    .await;
}

/// Reading goes on behind the sink's own large sends (above), but not
/// behind the connection's answers: a peer that floods pings and never
/// reads is stopped once the pongs waiting reach the high-water mark, with
/// or without a large message of ours queued ahead of them.
#[tokio::test]
async fn ping_flood_from_a_peer_that_never_reads_is_bounded() {
    use duplex_tokio::ws::{Config, Connection, Role};
    use duplex_tokio::{StreamConfig, WebSocketStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    for queued_ahead in [0, MIB] {
        let (ours, mut peer) = tokio::io::duplex(16 << 10);
        let conn = Connection::new(Role::Server, Config::default());
        let mut ws = WebSocketStream::from_parts(ours, conn, &[], StreamConfig::default());
        if queued_ahead > 0 {
            // Queued, not flushed: the peer never reads it.
            ws.feed(Message::Binary(payload(0, queued_ahead)))
                .await
                .unwrap();
        }
        // Masked pings with 125-byte payloads, as a client sends them.
        let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
        ping.extend_from_slice(&[0u8; 125]);
        let flood: Vec<u8> = ping.repeat(1_000);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let flooder = tokio::spawn(async move {
            // 16 MiB of pings, unless the server stops reading first.
            for _ in 0..128 {
                peer.write_all(&flood).await.unwrap();
                counter.fetch_add(flood.len(), Ordering::Relaxed);
            }
        });
        let reader = tokio::time::timeout(Duration::from_secs(2), ws.next()).await;
        assert!(
            reader.is_err(),
            "the server read pings it could not answer until the flood ended"
        );
        assert!(!flooder.is_finished(), "the server read 16 MiB of pings");
        let taken = accepted.load(Ordering::Relaxed);
        // The pipe, one high-water mark of pongs and what we queued.
        assert!(
            taken < queued_ahead + (1 << 20),
            "{taken} bytes of pings taken with {queued_ahead} queued ahead"
        );
        flooder.abort();
    }
}

/// A SockJS endpoint whose sockets are split: a reader task hands each
/// message to a writer task that sends it back through the `Sink`.
async fn sockjs_split_echo_server() -> std::net::SocketAddr {
    use duplex_tokio::sockjs::{SockJsConfig, SockJsService, SockJsSocket};

    async fn split_echo(socket: SockJsSocket) {
        let (mut sink, mut stream) = socket.split();
        let (tx, mut rx) = mpsc::channel(16);
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        });
        while let Some(msg) = stream.next().await {
            if tx.send(msg).await.is_err() {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
    }

    let service = SockJsService::new("/echo", SockJsConfig::default(), split_echo);
    http_common::serve(service).await
}

/// Text message `i` of `size` ASCII bytes, numbered at both ends (SockJS
/// carries text), built from a cached pattern as [`payload`] is.
fn text_payload(i: u32, size: usize) -> String {
    thread_local! {
        static PATTERN: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let n = format!("{i:08}");
    PATTERN.with_borrow_mut(|p| {
        if p.len() != size - 16 {
            *p = (0..size - 16)
                .map(|j| (b'a' + (j % 26) as u8) as char)
                .collect();
        }
        let mut s = String::with_capacity(size);
        s.push_str(&n);
        s.push_str(p);
        s.push_str(&n);
        s
    })
}

/// A split duplex WebSocket client on the SockJS raw WebSocket endpoint
/// (one WebSocket message per SockJS message; the framed transport's JSON
/// would make a debug build spend its time in serde, not in the sockets).
async fn sockjs_split_client(addr: std::net::SocketAddr, count: u32, size: usize) {
    let url = format!("ws://{addr}/echo/websocket");
    let (ws, _) = duplex_tokio::connect(&url).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..count {
            sink.send(Message::from(text_payload(i, size)))
                .await
                .unwrap();
        }
        sink
    });
    let reader = tokio::spawn(async move {
        for i in 0..count {
            let msg = stream.next().await.expect("stream ended early").unwrap();
            let Message::Text(text) = msg else {
                panic!("echo {i} came back binary")
            };
            assert!(text.as_str() == text_payload(i, size), "echo {i}");
        }
        stream
    });
    let (sink, stream) = (writer.await.unwrap(), reader.await.unwrap());
    let mut ws = sink.reunite(stream).unwrap();
    ws.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_socket_split_1mib() {
    let addr = sockjs_split_echo_server().await;
    bounded("SockJS 64 x 1 MiB", sockjs_split_client(addr, 64, MIB)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_socket_split_64kib() {
    let addr = sockjs_split_echo_server().await;
    bounded(
        "SockJS 2,000 x 64 KiB",
        sockjs_split_client(addr, 2_000, KIB64),
    )
    .await;
}
