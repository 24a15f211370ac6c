//! The SockJS service over loopback: the polling, streaming and WebSocket
//! transports through hyper into a WebSocket-like application API, the
//! application's backpressure, STOMP over SockJS, and sessions abandoned by
//! the thousand.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod http_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use duplex_polling::QueueConfig;
use duplex_tokio::sockjs::{CloseReason, Message, SockJsConfig, SockJsService, SockJsSocket};
use duplex_tokio::stomp::StompServer;
use futures_util::{SinkExt, StreamExt};
use http_common::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo(mut socket: SockJsSocket) {
    while let Some(m) = socket.next().await {
        if socket.send(m).await.is_err() {
            break;
        }
    }
}

/// A keep-alive HTTP/1.1 client for complete (non-streaming) responses.
struct Http {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    async fn connect(addr: SocketAddr) -> Http {
        Http {
            tcp: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Sends a request; returns status and body.
    async fn request(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.tcp.write_all(req.as_bytes()).await.unwrap();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_lowercase();
        let status: u16 = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while self.buf.len() < head_end + len {
            self.fill().await;
        }
        let body = String::from_utf8(self.buf[head_end..head_end + len].to_vec()).unwrap();
        self.buf.drain(..head_end + len);
        (status, body)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.tcp.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn xhr_polling_echo() {
    let addr = serve(SockJsService::new("/echo", SockJsConfig::default(), echo)).await;
    let mut http = Http::connect(addr).await;
    assert_eq!(
        http.request("GET", "/echo", "").await,
        (200, "Welcome to SockJS!\n".into())
    );
    assert_eq!(
        http.request("POST", "/echo/000/a/xhr", "").await,
        (200, "o\n".into())
    );
    let (status, _) = http
        .request("POST", "/echo/000/a/xhr_send", r#"["one","two \u2028"]"#)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        http.request("POST", "/echo/000/a/xhr", "").await,
        (200, "a[\"one\",\"two \\u2028\"]\n".into())
    );
    // A path outside the prefix, and one that only shares its start.
    assert_eq!(http.request("GET", "/echoes", "").await.0, 404);
}

#[tokio::test]
async fn application_close_with_code_and_reason_reaches_every_transport() {
    let service = SockJsService::new("/close", SockJsConfig::default(), |mut socket| async move {
        let _ = socket.close(3000, "Go away!").await;
    });
    let addr = serve(service).await;
    let mut http = Http::connect(addr).await;
    assert_eq!(http.request("POST", "/close/0/b/xhr", "").await.1, "o\n");
    assert_eq!(
        http.request("POST", "/close/0/b/xhr", "").await.1,
        "c[3000,\"Go away!\"]\n"
    );
    // The session WebSocket gets the close frame, then a close.
    let (mut ws, _) = duplex_tokio::connect(&format!("ws://{addr}/close/0/c/websocket"))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), "o".into());
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        "c[3000,\"Go away!\"]".into()
    );
    assert!(ws.next().await.is_none());
    // The raw WebSocket is closed with the code and reason themselves.
    let (mut raw, _) = duplex_tokio::connect(&format!("ws://{addr}/close/websocket"))
        .await
        .unwrap();
    assert!(raw.next().await.is_none());
    let close = raw.peer_close().cloned().flatten().expect("a close frame");
    assert_eq!(close.code, duplex_ws::CloseCode(3000));
    assert_eq!(close.reason, "Go away!");
}

#[tokio::test]
async fn websocket_transports_echo() {
    let addr = serve(SockJsService::new("/echo", SockJsConfig::default(), echo)).await;
    let (mut ws, _) = duplex_tokio::connect(&format!("ws://{addr}/echo/0/d/websocket"))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), "o".into());
    ws.send(r#"["a","b"]"#.into()).await.unwrap();
    // One message per send on the server side, each its own frame or
    // batched: either way both arrive in order.
    let mut got = String::new();
    while !got.contains("\"b\"") {
        let m = ws.next().await.unwrap().unwrap();
        got.push_str(std::str::from_utf8(m.as_bytes()).unwrap());
    }
    assert!(
        got.find("\"a\"").unwrap() < got.find("\"b\"").unwrap(),
        "{got}"
    );
    ws.close().await.unwrap();

    let (mut raw, _) = duplex_tokio::connect(&format!("ws://{addr}/echo/websocket"))
        .await
        .unwrap();
    raw.send("\u{ffff} raw".into()).await.unwrap();
    assert_eq!(raw.next().await.unwrap().unwrap(), "\u{ffff} raw".into());
    raw.close().await.unwrap();
}

#[tokio::test]
async fn xhr_streaming_carries_messages_until_the_limit() {
    let config = SockJsConfig {
        response_limit: 4096,
        ..Default::default()
    };
    let addr = serve(SockJsService::new("/echo", config, echo)).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"POST /echo/0/e/xhr_streaming HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut http = Http::connect(addr).await;
    let mut received = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        // Until the zero chunk that ends the body (the connection stays
        // open for the next request).
        while !received.ends_with(b"\r\n0\r\n\r\n") {
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the end of the body");
            received.extend_from_slice(&chunk[..n]);
        }
    };
    let send = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 0..40 {
            let body = format!(r#"["message {i:03} {}"]"#, "x".repeat(100));
            assert_eq!(
                http.request("POST", "/echo/0/e/xhr_send", &body).await.0,
                204
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(read, send) })
        .await
        .expect("the stream ended at its limit");
    let text = String::from_utf8_lossy(&received);
    // 2 KiB prelude, the open frame, then messages until past 4096 bytes.
    assert!(
        text.contains(&format!("{}\n", "h".repeat(2048))),
        "no prelude"
    );
    assert!(text.contains("o\n"));
    let delivered: Vec<_> = (0..40)
        .filter(|i| text.contains(&format!("message {i:03}")))
        .collect();
    assert!(delivered.len() >= 30, "{delivered:?}");
    assert_eq!(delivered, (0..delivered.len()).collect::<Vec<_>>());
    // The chunked body was ended with the zero chunk.
    assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
}

#[tokio::test]
async fn sends_wait_for_room_and_nothing_is_lost() {
    const N: usize = 3000;
    let config = SockJsConfig {
        queue: QueueConfig {
            max_messages: 100,
            ..Default::default()
        },
        ..Default::default()
    };
    let service = SockJsService::new("/flood", config, |mut socket| async move {
        for i in 0..N {
            // The queue holds 100: this waits for the client's polls.
            socket.feed(Message::text(format!("{i}"))).await.unwrap();
        }
        socket.close(3001, "done").await.unwrap();
    });
    let addr = serve(service).await;
    let mut http = Http::connect(addr).await;
    assert_eq!(http.request("POST", "/flood/0/f/xhr", "").await.1, "o\n");
    // (The handler's close comes after its last feed: `close` first
    // finishes the send in flight.)
    let mut next = 0;
    loop {
        let (_, body) = http.request("POST", "/flood/0/f/xhr", "").await;
        if body.starts_with("c[") {
            assert_eq!(body, "c[3001,\"done\"]\n");
            break;
        }
        let frame = body.strip_prefix("a").unwrap().trim_end();
        let items: Vec<String> = serde_json_lite(frame);
        assert!(items.len() <= 100);
        for item in items {
            assert_eq!(item, next.to_string());
            next += 1;
        }
    }
    assert_eq!(next, N);
}

/// `["1","2"]` to its strings (the test sends only digits).
fn serde_json_lite(array: &str) -> Vec<String> {
    array
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim_matches('"').to_owned())
        .collect()
}

#[tokio::test]
async fn stomp_over_sockjs() {
    let stomp = StompServer::embedded();
    let service = SockJsService::new("/stomp", SockJsConfig::default(), move |socket| {
        let stomp = stomp.clone();
        async move { stomp.serve_sockjs(socket).await }
    });
    let addr = serve(service).await;
    let (mut ws, _) = duplex_tokio::connect(&format!("ws://{addr}/stomp/0/g/websocket"))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), "o".into());
    let frames = [
        "CONNECT\\naccept-version:1.2\\nhost:/\\nheart-beat:0,0\\n\\n\\u0000",
        "SUBSCRIBE\\nid:0\\ndestination:/topic/t\\n\\n\\u0000",
        "SEND\\ndestination:/topic/t\\nreceipt:r\\n\\nhi\\u0000",
    ];
    for f in frames {
        ws.send(duplex_ws::Message::Text(format!("[\"{f}\"]").into()))
            .await
            .unwrap();
    }
    let mut got = String::new();
    while !got.contains("receipt-id:r") {
        let m = ws.next().await.unwrap().unwrap();
        got.push_str(std::str::from_utf8(m.as_bytes()).unwrap());
    }
    assert!(got.contains("a[\"CONNECTED\\nversion:1.2\\n"), "{got}");
    assert!(got.contains("MESSAGE\\ndestination:/topic/t\\n"), "{got}");
    assert!(got.contains("\\n\\nhi\\u0000"), "{got}");
}

#[tokio::test]
async fn sessions_abandoned_by_the_thousand_all_expire() {
    const SESSIONS: usize = 2000;
    let opened = Arc::new(AtomicUsize::new(0));
    let expired = Arc::new(AtomicUsize::new(0));
    let config = SockJsConfig {
        disconnect_delay: Duration::from_secs(3),
        ..Default::default()
    };
    let (o, e) = (opened.clone(), expired.clone());
    let service = SockJsService::new("/echo", config, move |mut socket| {
        let (o, e) = (o.clone(), e.clone());
        async move {
            o.fetch_add(1, Ordering::SeqCst);
            while socket.next().await.is_some() {}
            if socket.close_reason() == Some(CloseReason::Expired) {
                e.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let addr = serve(service.clone()).await;
    // Eight clients open sessions side by side and never come back.
    let mut clients = Vec::new();
    for c in 0..8 {
        clients.push(tokio::spawn(async move {
            let mut http = Http::connect(addr).await;
            for i in 0..SESSIONS / 8 {
                let (_, body) = http
                    .request("POST", &format!("/echo/0/s{c}-{i}/xhr"), "")
                    .await;
                assert_eq!(body, "o\n");
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let held = service.inspect(|s| s.session_count()).await.unwrap();
    assert!(
        held > SESSIONS / 2,
        "{held} sessions held right after opening"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (sessions, connections) = service
            .inspect(|s| (s.session_count(), s.connection_count()))
            .await
            .unwrap();
        if sessions == 0 && connections == 0 && expired.load(Ordering::SeqCst) == SESSIONS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sessions} sessions, {connections} connections left, {} of {SESSIONS} expired",
            expired.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(opened.load(Ordering::SeqCst), SESSIONS);
}
