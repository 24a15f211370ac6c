//! `duplex serve` as a user runs it: the built binary in a subprocess on a
//! free loopback port. Every endpoint must answer; then SIGINT, and every
//! kind of client must see its protocol's clean close (WebSocket 1001 after
//! the chat's `bye`, SockJS `c[3000,...]`, the SSE stream ending after
//! `bye`, an Engine.IO close packet, a STOMP `ERROR`), and the process must
//! exit 0 within a bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use duplex_stomp::{AckMode, ClientConfig, ClientEvent};
use duplex_tokio::stomp::StompClient;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod common;
// The head-limit helpers duplex-tokio's own tests use, so that both check
// the same heads the same way.
#[path = "../../duplex-tokio/tests/http_common/heads.rs"]
mod heads;

use common::Server;

/// Every wait in this test is bounded by this.
const STEP: Duration = Duration::from_secs(10);

/// An HTTP/1.1 response read to its end.
struct HttpResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl HttpResponse {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// One request on its own connection (`Connection: close`).
async fn http(addr: &str, method: &str, path: &str, body: &str) -> HttpResponse {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    timeout(STEP, tcp.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let rest = &raw[split + 4..];
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    HttpResponse { status, head, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16)
            .expect("chunk size");
        data = &data[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    out
}

/// Reads chat JSON messages from the `/ws` WebSocket until one of `kind`.
async fn ws_until<S>(ws: &mut duplex_tokio::WebSocketStream<S>, kind: &str) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let msg = timeout(STEP, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} in time"))
            .expect("stream open")
            .expect("message");
        let duplex_ws::Message::Text(t) = msg else {
            panic!("binary on /ws")
        };
        let doc: Value = serde_json::from_str(t.as_str()).expect("JSON");
        if doc["type"] == kind {
            return doc;
        }
    }
}

/// The frames of SockJS xhr polls on `session_url` until a `c[...]` frame
/// (the close) arrives.
async fn sockjs_poll_until_close(addr: String, session_url: String) -> Vec<String> {
    let mut frames = Vec::new();
    loop {
        let r = http(&addr, "POST", &format!("{session_url}/xhr"), "").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let frame = r.text().trim().to_owned();
        let closed = frame.starts_with('c');
        frames.push(frame);
        if closed {
            return frames;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_every_endpoint_then_closes_every_client_on_sigint() {
    let mut server = Server::start_with(&["--shutdown-timeout", "5"]);
    let addr = server.addr.clone();

    // ---- plain HTTP ---------------------------------------------------------
    let page = http(&addr, "GET", "/", "").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("duplex chat"));
    assert!(page.text().contains("/app.js"));
    for asset in ["/app.js", "/app.css"] {
        let r = http(&addr, "GET", asset, "").await;
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.body.len() > 100, "{asset}");
    }
    let stats = http(&addr, "GET", "/stats", "").await;
    assert_eq!(stats.status, 200);
    assert_eq!(
        stats.header("content-type").as_deref(),
        Some("application/json")
    );
    let stats: Value = serde_json::from_slice(&stats.body).expect("stats JSON");
    for key in [
        "websocket",
        "polling",
        "sse",
        "socket.io",
        "stomp",
        "sockjs",
        "echo",
    ] {
        assert_eq!(stats["connections"][key], 0, "{key} in {stats}");
    }
    for key in ["in", "out"] {
        assert!(stats["messages"][key].is_u64());
        assert!(stats["bytes"][key].is_u64());
    }
    assert!(stats["sessions_expired"].is_u64());
    let info = http(&addr, "GET", "/sockjs/stomp/info", "").await;
    assert_eq!(info.status, 200);
    let info: Value = serde_json::from_slice(&info.body).expect("info JSON");
    assert_eq!(info["websocket"], true);
    assert_eq!(http(&addr, "GET", "/nothing-here", "").await.status, 404);

    // ---- the chat over a WebSocket, with permessage-deflate -----------------
    let config = duplex_tokio::ClientConfig {
        deflate: Some(Default::default()),
        ..Default::default()
    };
    let (mut chat, response) = duplex_tokio::connect_with(&format!("ws://{addr}/ws"), config)
        .await
        .expect("ws connect");
    let extensions = response
        .headers
        .get("sec-websocket-extensions")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(extensions.contains("permessage-deflate"), "{extensions:?}");
    let welcome = ws_until(&mut chat, "welcome").await;
    assert_eq!(welcome["transport"], "websocket");
    chat.send(r#"{"type":"join","room":"lobby","name":"ws-user"}"#.into())
        .await
        .unwrap();
    let joined = ws_until(&mut chat, "joined").await;
    assert_eq!(joined["room"], "lobby");
    chat.send(r#"{"type":"ping","id":7}"#.into()).await.unwrap();
    assert_eq!(ws_until(&mut chat, "pong").await["id"], 7);

    // ---- /echo --------------------------------------------------------------
    let (mut echo, _) = duplex_tokio::connect(&format!("ws://{addr}/echo"))
        .await
        .expect("echo connect");
    echo.send("hello".into()).await.unwrap();
    let back = timeout(STEP, echo.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(back, "hello".into());

    // ---- STOMP over WebSocket sees the chat as /topic/chat.lobby ------------
    let mut stomp = StompClient::connect_websocket(
        &format!("ws://{addr}/stomp"),
        ClientConfig::new("/"),
        Default::default(),
    )
    .await
    .expect("STOMP CONNECT over /stomp");
    stomp
        .subscribe_with("/topic/chat.lobby", AckMode::Auto, &[("receipt", "sub-1")])
        .await
        .unwrap();
    loop {
        match timeout(STEP, stomp.next_event()).await.unwrap() {
            Some(ClientEvent::Receipt { receipt_id }) if receipt_id == "sub-1" => break,
            Some(ClientEvent::Receipt { .. }) => {}
            other => panic!("expected the receipt, got {other:?}"),
        }
    }
    chat.send(r#"{"type":"say","text":"hello from ws"}"#.into())
        .await
        .unwrap();
    let said = ws_until(&mut chat, "message").await;
    assert_eq!(said["text"], "hello from ws");
    assert_eq!(said["from"], "ws-user");
    assert_eq!(said["via"], "websocket");
    match timeout(STEP, stomp.next_event()).await.unwrap() {
        Some(ClientEvent::Message(m)) => {
            let body: Value = serde_json::from_slice(m.body()).unwrap();
            assert_eq!(body["text"], "hello from ws");
            assert_eq!(m.destination(), Some("/topic/chat.lobby"));
        }
        other => panic!("expected the chat message over STOMP, got {other:?}"),
    }

    // ---- STOMP over TCP (--stomp-addr) -----------------------------------------
    let mut stomp_tcp = StompClient::connect(server.stomp_addr.as_str(), ClientConfig::new("/"))
        .await
        .expect("STOMP CONNECT over TCP");
    stomp_tcp
        .subscribe("/topic/chat.lobby", AckMode::Auto)
        .await
        .unwrap();

    // ---- the page's long-polling transport (/poll, SockJS xhr) --------------
    let poll_url = "/poll/000/pollsession1".to_owned();
    let opened = http(&addr, "POST", &format!("{poll_url}/xhr"), "").await;
    assert_eq!(opened.text(), "o\n");
    let welcome = http(&addr, "POST", &format!("{poll_url}/xhr"), "").await;
    assert!(welcome.text().contains("welcome"), "{}", welcome.text());
    let sent = http(
        &addr,
        "POST",
        &format!("{poll_url}/xhr_send"),
        r#"["{\"type\":\"join\",\"room\":\"lobby\",\"name\":\"poller\"}"]"#,
    )
    .await;
    assert_eq!(sent.status, 204);
    let joined = http(&addr, "POST", &format!("{poll_url}/xhr"), "").await;
    assert!(joined.text().contains("joined"), "{}", joined.text());
    // From here on the poller keeps a poll open, as the page does.
    let poller = tokio::spawn(sockjs_poll_until_close(addr.clone(), poll_url));

    // ---- a SockJS echo session over xhr -------------------------------------
    let echo_url = "/sockjs/echo/000/echosession1".to_owned();
    assert_eq!(
        http(&addr, "POST", &format!("{echo_url}/xhr"), "")
            .await
            .text(),
        "o\n"
    );
    let sockjs_echo = tokio::spawn(sockjs_poll_until_close(addr.clone(), echo_url));

    // ---- the page's SSE transport --------------------------------------------
    let mut sse = TcpStream::connect(&addr).await.unwrap();
    sse.write_all(
        format!("GET /sse/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut sse_seen = Vec::new();
    let session = loop {
        let mut buf = [0u8; 4096];
        let n = timeout(STEP, sse.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "SSE stream ended early");
        sse_seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&sse_seen).into_owned();
        if let Some(at) = text.find("event: session\ndata: ") {
            let rest = &text[at + "event: session\ndata: ".len()..];
            if let Some(end) = rest.find('\n') {
                let doc: Value = serde_json::from_str(&rest[..end]).unwrap();
                break doc["session"].as_str().unwrap().to_owned();
            }
        }
    };
    let head = String::from_utf8_lossy(&sse_seen).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("text/event-stream"),
        "{head}"
    );
    let sent = http(
        &addr,
        "POST",
        &format!("/sse/send?session={session}"),
        r#"{"type":"join","room":"lobby","name":"sse-user"}"#,
    )
    .await;
    assert_eq!(sent.status, 204);
    assert_eq!(
        http(&addr, "POST", "/sse/send?session=nope", "{}")
            .await
            .status,
        404
    );
    let sse_reader = tokio::spawn(async move {
        // Everything until the server ends the stream.
        let mut rest = Vec::new();
        timeout(STEP * 2, sse.read_to_end(&mut rest))
            .await
            .expect("the SSE stream ends")
            .expect("read");
        sse_seen.extend_from_slice(&rest);
        String::from_utf8_lossy(&sse_seen).into_owned()
    });

    // ---- Engine.IO / Socket.IO over polling ----------------------------------
    let handshake = http(&addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(handshake.status, 200);
    let open: Value = serde_json::from_str(handshake.text().strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(open["upgrades"][0], "websocket");
    let eio = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(http(&addr, "POST", &eio, "40").await.text(), "ok");
    // The connect handler runs on the socket's own task, so its `auth`
    // emit may come in a later poll than the CONNECT answer.
    let mut connected = http(&addr, "GET", &eio, "").await.text();
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    for _ in 0..50 {
        if connected.contains("42[\"auth\",{}]") {
            break;
        }
        connected.push('\u{1e}');
        connected.push_str(&http(&addr, "GET", &eio, "").await.text());
    }
    assert!(connected.contains("42[\"auth\",{}]"), "{connected}");
    // The chat's Socket.IO events.
    assert_eq!(
        http(
            &addr,
            "POST",
            &eio,
            r#"421["join",{"room":"lobby","name":"sio-user"}]"#
        )
        .await
        .text(),
        "ok"
    );
    let mut got = String::new();
    for _ in 0..50 {
        if got.contains("431[") {
            break;
        }
        got.push_str(&http(&addr, "GET", &eio, "").await.text());
        got.push('\u{1e}');
    }
    assert!(got.contains("\"room\":\"lobby\""), "{got}");
    let eio_parked = {
        let addr = addr.clone();
        tokio::spawn(async move {
            // Polls until the Engine.IO close packet (`1`) arrives.
            let mut seen = Vec::new();
            loop {
                let r = http(&addr, "GET", &eio, "").await;
                if r.status != 200 {
                    return (seen, r.status);
                }
                let body = r.text();
                let packets: Vec<String> = body.split('\u{1e}').map(str::to_owned).collect();
                let closed = packets.iter().any(|p| p == "1");
                seen.extend(packets);
                if closed {
                    return (seen, 200);
                }
            }
        })
    };

    // Everyone is there: the stats say so.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats: Value =
        serde_json::from_slice(&http(&addr, "GET", "/stats", "").await.body).unwrap();
    assert_eq!(stats["connections"]["websocket"], 1, "{stats}");
    assert_eq!(stats["connections"]["polling"], 1, "{stats}");
    assert_eq!(stats["connections"]["sse"], 1, "{stats}");
    assert_eq!(stats["connections"]["echo"], 1, "{stats}");
    assert_eq!(stats["connections"]["stomp"], 2, "{stats}");
    assert_eq!(stats["connections"]["socket.io"], 1, "{stats}");
    assert!(
        stats["connections"]["sockjs"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert_eq!(stats["rooms"]["lobby"], 4, "{stats}");
    assert!(stats["messages"]["in"].as_u64().unwrap() >= 4, "{stats}");

    // ---- SIGINT ---------------------------------------------------------------
    let interrupted = Instant::now();
    server.interrupt();

    // The chat WebSocket: `bye`, then close 1001.
    let bye = ws_until(&mut chat, "bye").await;
    assert_eq!(bye["reason"], "server shutting down");
    assert!(timeout(STEP, chat.next()).await.unwrap().is_none());
    let close = chat.peer_close().expect("a close frame").clone();
    assert_eq!(
        close.map(|c| c.code),
        Some(duplex_ws::CloseCode::GOING_AWAY)
    );

    // /echo: close 1001.
    assert!(timeout(STEP, echo.next()).await.unwrap().is_none());
    let close = echo.peer_close().expect("a close frame").clone();
    assert_eq!(
        close.map(|c| c.code),
        Some(duplex_ws::CloseCode::GOING_AWAY)
    );

    // STOMP: ERROR "server shutting down".
    match timeout(STEP, stomp.next_event()).await.unwrap() {
        Some(ClientEvent::Error(frame)) => {
            assert_eq!(frame.header("message"), Some("server shutting down"));
        }
        other => panic!("expected ERROR, got {other:?}"),
    }

    // STOMP over TCP: the same ERROR (after any chat message sent to it).
    loop {
        match timeout(STEP, stomp_tcp.next_event()).await.unwrap() {
            Some(ClientEvent::Error(frame)) => {
                assert_eq!(frame.header("message"), Some("server shutting down"));
                break;
            }
            Some(ClientEvent::Message(_)) => {}
            other => panic!("expected ERROR, got {other:?}"),
        }
    }

    // Long-polling: `bye` in an `a[...]` frame, then c[3000,...].
    let frames = timeout(STEP, poller).await.unwrap().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.starts_with('a') && f.contains("bye")),
        "{frames:?}"
    );
    assert_eq!(
        frames.last().map(String::as_str),
        Some(r#"c[3000,"Server shutting down"]"#)
    );

    // SockJS echo session: c[3000,...].
    let frames = timeout(STEP, sockjs_echo).await.unwrap().unwrap();
    assert_eq!(
        frames.last().map(String::as_str),
        Some(r#"c[3000,"Server shutting down"]"#)
    );

    // SSE: `bye`, then the stream ends (the chunked body's last chunk).
    let stream = timeout(STEP * 2, sse_reader).await.unwrap().unwrap();
    assert!(stream.contains(r#""type":"bye""#), "{stream}");
    assert!(stream.ends_with("0\r\n\r\n"), "{stream:?}");

    // Engine.IO: the close packet on the parked GET. A GET that was not
    // parked at that instant finds its session gone (400, as Node's
    // engine.close()); either way the client reconnects.
    let (packets, status) = timeout(STEP, eio_parked).await.unwrap().unwrap();
    assert!(
        (status == 200 && packets.iter().any(|p| p == "1")) || status == 400,
        "{status} {packets:?}"
    );

    let status = server.wait_exit(Duration::from_secs(12));
    assert!(status.success(), "duplex serve exited with {status}");
    assert!(interrupted.elapsed() < Duration::from_secs(12));
}

/// Sends a `GET path` head with `lines` extra header lines of `value_len`
/// bytes each (as a WebSocket upgrade if `upgrade`); returns the status and
/// whether the server closed the connection afterwards.
async fn head_status(
    addr: &str,
    path: &str,
    upgrade: bool,
    lines: usize,
    value_len: usize,
) -> (u16, bool) {
    let head = heads::head(addr, path, upgrade, lines, value_len);
    heads::status_of(addr, &head).await
}

/// Issue #20: a 64 KiB request head was upgraded to a WebSocket (hyper's
/// limits are far above duplex-ws's 16 KiB). Every endpoint, upgrades
/// included, answers an oversized head or too many headers with 431 and
/// closes; ordinary heads are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_oversized_heads_with_431_and_a_close() {
    let server = Server::start_with(&["--shutdown-timeout", "5"]);
    let addr = server.addr.as_str();
    for (path, upgrade) in [
        ("/echo", true),
        ("/ws", true),
        ("/socket.io/?EIO=4&transport=websocket", true),
        ("/", false),
        ("/socket.io/?EIO=4&transport=polling", false),
        ("/sockjs/stomp/info", false),
    ] {
        // 64 KiB in 60 lines: too large.
        assert_eq!(
            head_status(addr, path, upgrade, 60, 1024).await,
            (431, true),
            "{path}: 64 KiB head"
        );
        // 70 short lines: too many.
        assert_eq!(
            head_status(addr, path, upgrade, 70, 1).await,
            (431, true),
            "{path}: 70 headers"
        );
    }
    // Within the limits (12 KiB over 50 lines): served as before.
    assert_eq!(head_status(addr, "/", false, 50, 240).await.0, 200);
    assert_eq!(
        head_status(addr, "/echo", true, 50, 240).await,
        (101, false)
    );
    let (mut ws, _) = duplex_tokio::connect(&format!("ws://{addr}/echo"))
        .await
        .expect("an ordinary upgrade");
    ws.send("hello".into()).await.unwrap();
    let echoed = timeout(STEP, ws.next()).await.expect("an echo in time");
    assert_eq!(echoed.unwrap().unwrap(), "hello".into());
}

#[test]
fn help_lists_every_endpoint_and_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_duplex"))
        .args(["serve", "--help"])
        .output()
        .expect("run duplex serve --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for item in [
        "/ws",
        "/poll/",
        "/sse/events",
        "/sse/send",
        "/socket.io/",
        "/stomp",
        "/sockjs/stomp",
        "/echo",
        "/stats",
        "/topic/chat.",
        "--addr",
        "--stomp-addr",
        "--stomp-relay",
        "--shutdown-timeout",
        "RUST_LOG",
    ] {
        assert!(help.contains(item), "{item} missing from:\n{help}");
    }
}
