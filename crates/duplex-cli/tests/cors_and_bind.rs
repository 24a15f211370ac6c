//! `--cors-origin`, listener failures and signals, with the built binary:
//! cross-origin preflights and polling requests on `duplex serve` and
//! `duplex conformance-server`, a non-zero exit with a clear message
//! when a listener's address is taken, and the conformance server's
//! Socket.IO shutdown at SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod common;

use common::{BIN, Server};

/// Every wait in this test is bounded by this.
const STEP: Duration = Duration::from_secs(20);

/// `duplex conformance-server` on free loopback ports, killed when dropped.
struct Conformance {
    child: Child,
    addr: String,
}

impl Conformance {
    fn start(extra: &[&str]) -> Conformance {
        let (child, lines) = common::spawn("conformance-server", extra);
        let start = Instant::now();
        let addr = loop {
            let left = STEP.saturating_sub(start.elapsed());
            let line = lines.recv_timeout(left).expect("no URL line in time");
            if let Some(url) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("http://"))
            {
                break url.trim_end_matches('/').to_owned();
            }
        };
        std::thread::spawn(move || while lines.recv().is_ok() {});
        Conformance { child, addr }
    }
}

impl Drop for Conformance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a request head (`Connection: close` added) and reads the
/// response head only: enough for the CORS headers, and it returns for a
/// stream too.
async fn head(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + STEP;
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = timeout(left, tcp.read(&mut buf))
            .await
            .expect("a response head in time")
            .expect("read");
        assert!(n > 0, "closed before a head: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&raw).to_ascii_lowercase()
}

fn status(head: &str) -> &str {
    head.split_whitespace().nth(1).unwrap_or("")
}

const APP: &str = "http://app.example";

#[tokio::test]
async fn conformance_server_allows_any_origin_with_credentials() {
    let server = Conformance::start(&[]);
    let addr = server.addr.as_str();
    let preflight = head(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &[
            ("Origin", APP),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    )
    .await;
    assert_eq!(status(&preflight), "204", "{preflight}");
    for header in [
        "access-control-allow-origin: http://app.example\r\n",
        "access-control-allow-credentials: true\r\n",
        "access-control-allow-methods: get, post\r\n",
        "access-control-allow-headers: content-type\r\n",
    ] {
        assert!(preflight.contains(header), "{header} missing: {preflight}");
    }
    let handshake = head(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", APP)],
    )
    .await;
    assert_eq!(status(&handshake), "200", "{handshake}");
    assert!(
        handshake.contains("access-control-allow-origin: http://app.example\r\n"),
        "{handshake}"
    );
    let sockjs = head(addr, "GET", "/sockjs/echo/info", &[("Origin", APP)]).await;
    assert_eq!(status(&sockjs), "200", "{sockjs}");
    assert!(
        sockjs.contains("access-control-allow-origin: http://app.example\r\n"),
        "{sockjs}"
    );
}

#[tokio::test]
async fn cors_origin_lets_the_listed_origins_in_and_keeps_others_out() {
    let server = Server::start_with(&["--cors-origin", APP]);
    let addr = server.addr.as_str();
    let preflight = head(
        addr,
        "OPTIONS",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", APP), ("Access-Control-Request-Method", "POST")],
    )
    .await;
    assert_eq!(status(&preflight), "204", "{preflight}");
    assert!(
        preflight.contains("access-control-allow-origin: http://app.example\r\n"),
        "{preflight}"
    );
    // A polling GET, the SockJS page client and the SSE stream all carry
    // the header for the listed origin.
    for path in [
        "/socket.io/?EIO=4&transport=polling",
        "/poll/info",
        "/sse/events",
    ] {
        let answer = head(addr, "GET", path, &[("Origin", APP)]).await;
        assert_eq!(status(&answer), "200", "{path}: {answer}");
        assert!(
            answer.contains("access-control-allow-origin: http://app.example\r\n")
                && answer.contains("access-control-allow-credentials: true\r\n"),
            "{path}: {answer}"
        );
    }
    for path in [
        "/socket.io/?EIO=4&transport=polling",
        "/poll/info",
        "/sse/events",
    ] {
        let refused = head(addr, "GET", path, &[("Origin", "http://evil.example")]).await;
        assert_eq!(status(&refused), "403", "{path}: {refused}");
    }
}

#[tokio::test]
async fn serve_without_cors_origin_keeps_socketio_same_origin() {
    let server = Server::start();
    let answer = head(
        &server.addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("Origin", APP)],
    )
    .await;
    assert_eq!(status(&answer), "200", "{answer}");
    assert!(!answer.contains("access-control-allow-origin"), "{answer}");
}

/// Runs the binary with `args`; it must exit non-zero in time. Returns
/// its stderr.
fn failing_run(args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start duplex");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > STEP {
            let _ = child.kill();
            let _ = child.wait();
            panic!("duplex {args:?} still running after {STEP:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "duplex {args:?} exited 0: {stderr}");
    stderr
}

#[test]
fn a_listener_that_cannot_bind_stops_the_server_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--stomp-addr",
                &taken_addr,
            ],
            "STOMP over TCP",
        ),
        (
            &[
                "serve",
                "--addr",
                &taken_addr,
                "--stomp-addr",
                "127.0.0.1:0",
            ],
            "HTTP",
        ),
        (
            &[
                "conformance-server",
                "--addr",
                "127.0.0.1:0",
                "--stomp-addr",
                &taken_addr,
            ],
            "STOMP over TCP",
        ),
        (
            &[
                "conformance-server",
                "--addr",
                &taken_addr,
                "--stomp-addr",
                "127.0.0.1:0",
            ],
            "HTTP",
        ),
    ];
    for (args, what) in cases {
        let stderr = failing_run(args);
        let expected = format!("cannot listen for {what} on {taken_addr}");
        assert!(
            stderr.contains(&expected),
            "{args:?}: {expected:?} not in {stderr:?}"
        );
    }
    drop(taken);
}

#[test]
fn help_documents_cors_origin_for_both_servers() {
    for command in ["serve", "conformance-server"] {
        let out = Command::new(BIN)
            .args([command, "--help"])
            .output()
            .expect("run --help");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("--cors-origin <ORIGIN>"),
            "{command}:\n{help}"
        );
    }
}

/// The next text message of a WebSocket, `None` once it is closed.
async fn next_text<S>(ws: &mut duplex_tokio::WebSocketStream<S>) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    match timeout(STEP, ws.next()).await.expect("a message in time") {
        Some(Ok(duplex_ws::Message::Text(t))) => Some(t.as_str().to_owned()),
        Some(Ok(other)) => panic!("unexpected {other:?}"),
        Some(Err(_)) | None => None,
    }
}

#[tokio::test]
async fn conformance_server_closes_socketio_clients_at_sigterm_then_exits() {
    use futures_util::SinkExt;
    let mut server = Conformance::start(&[]);
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (mut ws, _) = duplex_tokio::connect(&url).await.expect("connect");
    assert!(next_text(&mut ws).await.unwrap().starts_with("0{"));
    ws.send(duplex_ws::Message::from("40".to_owned()))
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.unwrap().starts_with("40{"));

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // The transport closes (no DISCONNECT first, as Node's io.close());
    // the connect handler's `auth` event may come before.
    while let Some(text) = next_text(&mut ws).await {
        assert!(text.starts_with("42"), "{text}");
    }
    let close = ws.peer_close().expect("a close frame").clone();
    assert_eq!(close.map(|c| c.code), Some(duplex_ws::CloseCode::NORMAL));
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(start.elapsed() < STEP, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exited with {exit}");
}
