//! `duplex connect` as a user runs it: the built binary in a subprocess,
//! driven through stdin and read from stdout, against `duplex serve` on a
//! free loopback port (and, for the SSE drop, a scripted loopback server).
//! Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{BIN, Server, interrupt, lines_of};

/// Every wait in these tests is bounded by this.
const STEP: Duration = Duration::from_secs(20);

/// A finished `duplex connect`.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn records(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
}

/// [`connect`], which must exit 0 (a failure names the arguments).
fn connect_ok(args: &[&str], stdin: &str) -> Run {
    let run = connect(args, stdin);
    assert_eq!(run.code, 0, "{args:?}: {run:?}");
    run
}

/// Runs `duplex connect ARGS` with `stdin` as its whole input; fails the
/// test if it runs longer than [`STEP`].
fn connect(args: &[&str], stdin: &str) -> Run {
    let mut child = spawn_connect(args);
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
        // Dropped here: end of input.
    });
    let out = read_all(child.stdout.take().expect("stdout"));
    let err = read_all(child.stderr.take().expect("stderr"));
    let code = wait(&mut child, STEP);
    Run {
        code,
        stdout: out.recv_timeout(STEP).expect("stdout"),
        stderr: err.recv_timeout(STEP).expect("stderr"),
    }
}

/// `duplex connect ARGS` running, its three pipes open.
fn spawn_connect(args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("connect")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start duplex connect")
}

fn read_all(mut pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

/// The exit code, within `limit` (the process is killed past it).
fn wait(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().expect("exited, not killed by a signal");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("duplex connect still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The next line of `lines` that satisfies `want`, within [`STEP`].
fn line_where(lines: &Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the expected line did not come");
        if want(&line) {
            return line;
        }
    }
}

// ---- WebSocket ---------------------------------------------------------------

#[test]
fn websocket_text_lines_are_echoed_and_closed_with_1000() {
    let server = Server::start();
    let run = connect_ok(&[&server.url("ws", "/echo")], "hello\nwörld\r\n\n");
    assert_eq!(run.lines(), ["hello", "wörld", ""]);
    assert!(run.stderr.contains("connected to ws://"), "{run:?}");
    assert!(run.stderr.contains("closed (1000)"), "{run:?}");
    let quiet = connect(&[&server.url("ws", "/echo"), "--quiet"], "x\n");
    assert_eq!(
        (quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()),
        (0, "x\n", "")
    );
}

#[test]
fn websocket_binary_in_base64_and_hex() {
    let server = Server::start();
    let url = server.url("ws", "/echo");
    let run = connect(&[&url, "--binary"], "AAEC/w==\n");
    assert_eq!((run.code, run.lines()), (0, vec!["AAEC/w=="]), "{run:?}");
    let run = connect_ok(&[&url, "--binary", "hex"], "00ff10\nnot hex\nABCD\n");
    assert_eq!(run.lines(), ["00ff10", "abcd"]);
    // A line that does not decode is reported, not sent.
    assert!(run.stderr.contains("line not sent: not hex"), "{run:?}");
}

#[test]
fn websocket_json_lines_carry_type_data_and_timestamp() {
    let server = Server::start();
    let input =
        "plain\n{\"type\":\"binary\",\"data\":\"aGk=\"}\n{\"type\":\"text\",\"data\":\"t\"}\n";
    let run = connect_ok(&[&server.url("ws", "/echo"), "--jsonl"], input);
    let records = run.records();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["open", "text", "binary", "text", "close"]);
    assert_eq!(records[1]["data"], "plain");
    assert_eq!(records[2]["data"], "aGk=");
    assert_eq!(records[2]["encoding"], "base64");
    assert_eq!(records[3]["data"], "t");
    assert_eq!(records[4]["code"], 1000);
    for r in &records {
        assert!(r["timestamp"].as_f64().unwrap() > 1.6e9, "{r}");
    }
}

#[test]
fn websocket_subprotocol_deflate_headers_and_pings() {
    let server = Server::start();
    let run = connect_ok(
        &[
            &server.url("ws", "/stomp"),
            "--subprotocol",
            "v12.stomp",
            "--jsonl",
        ],
        "",
    );
    assert_eq!(run.records()[0]["protocol"], "v12.stomp", "{run:?}");
    let run = connect_ok(
        &[
            &server.url("ws", "/ws"),
            "--deflate",
            "--header",
            "X-Test: 1",
            "--ping-interval",
            "0.05",
            "--count",
            "1",
            "--jsonl",
        ],
        "",
    );
    let records = run.records();
    assert!(
        records[0]["extensions"][0]
            .as_str()
            .unwrap()
            .starts_with("permessage-deflate"),
        "{run:?}"
    );
    let welcome: Value = serde_json::from_str(records[1]["data"].as_str().unwrap()).unwrap();
    assert_eq!(welcome["type"], "welcome");
}

#[test]
fn websocket_interactive_until_ctrl_c_closes_with_the_given_code() {
    let server = Server::start();
    let mut child = spawn_connect(&[
        &server.url("ws", "/echo"),
        "--close-code",
        "4000",
        "--close-reason",
        "bye now",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    line_where(&err, |l| l.starts_with("connected to"));
    for word in ["one", "two"] {
        writeln!(stdin, "{word}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(line_where(&out, |_| true), word);
    }
    interrupt(&child);
    // The echo server answers with our code (and no reason).
    let closed = line_where(&err, |l| l.starts_with("closed"));
    assert!(closed.starts_with("closed (4000"), "{closed}");
    // Our own code echoed back ends cleanly.
    assert_eq!(wait(&mut child, STEP), 0);
}

#[test]
fn websocket_wait_keeps_receiving_after_end_of_input() {
    let server = Server::start();
    let started = Instant::now();
    let run = connect_ok(&[&server.url("ws", "/ws"), "--wait", "1", "--jsonl"], "");
    // Closed only once --wait was over, with the welcome printed meanwhile.
    assert!(started.elapsed() >= Duration::from_millis(950), "{run:?}");
    let records = run.records();
    assert_eq!(records[1]["type"], "text", "{run:?}");
    assert_eq!(records.last().unwrap()["code"], 1000, "{run:?}");
}

#[test]
fn websocket_exit_codes_say_refused_or_usage() {
    let refused = connect(&["ws://127.0.0.1:1/"], "");
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(refused.stderr.lines().count(), 1, "{refused:?}");
    assert!(
        refused.stderr.starts_with("duplex connect: "),
        "{refused:?}"
    );
    for args in [
        &["ws://127.0.0.1:1/", "--close-code", "1005"][..],
        &["ws://127.0.0.1:1/", "--header", "novalue"],
        &["ws://127.0.0.1:1/", "--timeout", "-1"],
        &["ws://127.0.0.1:1/", "--no-such-flag"],
        &["--socketio", "--stomp", "http://127.0.0.1:1/"],
        &["--stomp", "http://127.0.0.1:1/"],
        &["--stomp", "tcp://127.0.0.1:1", "--ack"],
    ] {
        let run = connect(args, "");
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
}

#[test]
fn help_shows_an_example_per_protocol() {
    let out = Command::new(BIN)
        .args(["connect", "--help"])
        .output()
        .expect("run duplex connect --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for item in [
        "duplex connect ws://",
        "duplex connect --socketio http://",
        "duplex connect --stomp tcp://",
        "duplex connect --stomp ws://",
        "duplex connect --stomp sockjs+http://",
        "duplex connect --sse http://",
        "duplex connect --sockjs http://",
        "--binary",
        "--jsonl",
        "--emit",
        "--subscribe",
        "Exit codes",
    ] {
        assert!(help.contains(item), "{item} missing from:\n{help}");
    }
}

// ---- Socket.IO -----------------------------------------------------------------

/// Emits `message-with-ack` once per entry of `emits` (its arguments) on
/// every Socket.IO transport, with `extra` options, and checks that each
/// ack comes back with the same arguments.
fn check_socketio_acks(url: &str, emits: &[&[&str]], extra: &[&str]) {
    for transport in ["websocket", "polling", "upgrade"] {
        let mut args = vec!["--socketio", url, "--transport", transport];
        for emit in emits {
            args.extend(["--emit", "message-with-ack"]);
            args.extend_from_slice(emit);
        }
        args.push("--ack");
        args.extend_from_slice(extra);
        let run = connect_ok(&args, "");
        let lines = run.lines();
        for emit in emits {
            let ack = [&["ack", "message-with-ack"], *emit].concat().join(" ");
            assert!(lines.contains(&ack.as_str()), "{transport}: {run:?}");
        }
    }
}

#[test]
fn socketio_acks_on_every_transport() {
    let server = Server::start();
    check_socketio_acks(
        &server.url("http", "/"),
        &[&["\"hi\"", "{\"n\":1}"], &[]],
        &[],
    );
}

#[test]
fn socketio_events_with_binary_auth_and_server_acks_as_json_lines() {
    let server = Server::start();
    let run = connect_ok(
        &[
            "--socketio",
            &server.url("http", "/custom"),
            "--auth",
            r#"{"token":"t"}"#,
            "--emit",
            "message",
            r#"{"$base64":"AAEC"}"#,
            "\"text\"",
            "--emit",
            "server-ack",
            "7",
            "--jsonl",
            "--count",
            "4",
        ],
        "",
    );
    let records = run.records();
    let events: Vec<(&str, &Value)> = records
        .iter()
        .filter(|r| r["type"] == "event")
        .map(|r| (r["event"].as_str().unwrap(), &r["args"]))
        .collect();
    assert_eq!(records[0]["type"], "connect");
    assert_eq!(records[0]["namespace"], "/custom");
    assert!(
        events.contains(&("auth", &serde_json::json!([{"token": "t"}]))),
        "{run:?}"
    );
    assert!(
        events.contains(&("message-back", &serde_json::json!(["AAEC", "text"]))),
        "{run:?}"
    );
    assert!(
        events.contains(&("please-ack", &serde_json::json!([7]))),
        "{run:?}"
    );
    // The tool acknowledged please-ack; the server says so.
    assert!(
        events.contains(&("client-acked", &serde_json::json!([]))),
        "{run:?}"
    );
}

#[test]
fn socketio_interactive_lines_are_emitted() {
    let server = Server::start();
    let run = connect_ok(
        &["--socketio", &server.url("http", ""), "--ack", "--quiet"],
        "message-with-ack \"line\" 2 [true]\nbad {json\n\n",
    );
    assert!(
        run.lines()
            .contains(&r#"ack message-with-ack "line" 2 [true]"#),
        "{run:?}"
    );
    assert!(run.stderr.contains("line not sent"), "{run:?}");
}

#[test]
fn socketio_refusals_exit_1() {
    let server = Server::start();
    let run = connect(&["--socketio", &server.url("http", "/nowhere")], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("Invalid namespace"), "{run:?}");
    let run = connect(
        &[
            "--socketio",
            "http://127.0.0.1:1",
            "--timeout",
            "1",
            "--no-reconnect",
        ],
        "",
    );
    assert_eq!(run.code, 1, "{run:?}");
    let run = connect(
        &["--socketio", "http://127.0.0.1:1", "--emit", "x", "{bad"],
        "",
    );
    assert_eq!(run.code, 2, "{run:?}");
}

// ---- STOMP ---------------------------------------------------------------------

#[test]
fn stomp_sends_await_receipts_over_tcp_and_websocket() {
    let server = Server::start();
    let tcp = format!("tcp://{}", server.stomp_addr);
    let ws = server.url("ws", "/stomp");
    for url in [&tcp, &ws] {
        let run = connect_ok(
            &[
                "--stomp",
                url,
                "--subscribe",
                "/topic/t",
                "--send",
                "/topic/t",
                "hello",
                "--header",
                "x-k: v",
                "--count",
                "1",
                "--jsonl",
            ],
            "",
        );
        let records = run.records();
        assert_eq!(records[0]["type"], "connected");
        assert_eq!(records[0]["version"], "1.2");
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "receipt" && r["receipt-id"] == "subscribe-1"),
            "{run:?}"
        );
        let message = records
            .iter()
            .find(|r| r["type"] == "message")
            .expect("a message");
        assert_eq!(message["destination"], "/topic/t");
        assert_eq!(message["body"], "hello");
        assert_eq!(message["headers"]["x-k"], "v");
        // Lines from stdin are `DESTINATION BODY`, each with a receipt.
        let run = connect_ok(
            &["--stomp", url, "--heart-beat", "100,100"],
            "/topic/u one\n/topic/u two\n",
        );
        assert_eq!(run.lines(), ["receipt send-1", "receipt send-2"]);
    }
}

#[test]
fn stomp_over_sockjs_on_every_transport() {
    let server = Server::start();
    let url = format!("sockjs+{}", server.url("http", "/sockjs/stomp"));
    for transport in ["upgrade", "websocket", "streaming", "polling"] {
        let body = format!("héllo over {transport}");
        let run = connect_ok(
            &[
                "--stomp",
                &url,
                "--transport",
                transport,
                "--subscribe",
                "/topic/sockjs",
                "--send",
                "/topic/sockjs",
                &body,
                "--count",
                "1",
            ],
            "",
        );
        assert_eq!(
            run.lines(),
            ["receipt subscribe-1", body.as_str()],
            "{transport}"
        );
        assert!(run.stderr.contains("STOMP 1.2"), "{transport}: {run:?}");
    }
}

#[test]
fn stomp_ack_modes_consume_queue_messages() {
    let server = Server::start();
    let tcp = format!("tcp://{}", server.stomp_addr);
    for (mode, queue) in [
        ("auto", "/queue/auto"),
        ("client", "/queue/client"),
        ("client-individual", "/queue/individual"),
    ] {
        // Queued before anyone subscribes.
        let run = connect_ok(
            &["--stomp", &tcp, "--send", queue, "a", "--send", queue, "b"],
            "",
        );
        assert_eq!(run.lines(), ["receipt send-1", "receipt send-2"]);
        let subscribe = ["--stomp", &tcp, "--subscribe", queue, "--ack", mode];
        let run = connect_ok(&[&subscribe[..], &["--count", "2", "--jsonl"]].concat(), "");
        let records = run.records();
        let messages: Vec<&Value> = records.iter().filter(|r| r["type"] == "message").collect();
        let bodies: Vec<&str> = messages
            .iter()
            .map(|r| r["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["a", "b"], "{mode}: {run:?}");
        if mode != "auto" {
            let acked = messages.iter().all(|r| r["headers"]["ack"].is_string());
            assert!(acked, "{mode}: 1.2 messages carry an ack id: {run:?}");
        }
        // Acknowledged (or auto): nothing comes back for a new subscriber.
        let run = connect_ok(&[&subscribe[..], &["--wait", "0.5"]].concat(), "");
        assert_eq!(
            run.lines(),
            ["receipt subscribe-1"],
            "{mode}: redelivered? {run:?}"
        );
    }
}

#[test]
fn stomp_refusals_exit_1() {
    let run = connect(&["--stomp", "tcp://127.0.0.1:1"], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}

// ---- SockJS --------------------------------------------------------------------

/// Sends `lines` to the SockJS echo at `url` on every transport, with
/// `extra` options, and checks the transport opened and the lines came
/// back as they were.
fn check_sockjs_echoes(url: &str, lines: &[&str], extra: &[&str]) {
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let count = lines.len().to_string();
    // `upgrade` starts on WebSocket, which the server offers.
    for (transport, segment) in [
        ("upgrade", "websocket"),
        ("websocket", "websocket"),
        ("streaming", "xhr_streaming"),
        ("polling", "xhr"),
    ] {
        let mut args = vec!["--sockjs", url, "--transport", transport];
        args.extend(["--count", &count, "--jsonl"]);
        args.extend_from_slice(extra);
        let run = connect_ok(&args, &input);
        let records = run.records();
        assert_eq!(records[0]["type"], "open", "{transport}: {run:?}");
        assert_eq!(records[0]["transport"], segment, "{transport}: {run:?}");
        let data: Vec<&str> = records[1..]
            .iter()
            .map(|r| r["data"].as_str().unwrap())
            .collect();
        assert_eq!(data, lines, "{transport}");
    }
}

#[test]
fn sockjs_echoes_over_every_transport() {
    let server = Server::start();
    let url = server.url("http", "/sockjs/echo");
    let lines = ["plain", "with \"quotes\" and \\ \u{2028}", ""];
    check_sockjs_echoes(&url, &lines, &[]);
    let run = connect(&["--sockjs", &server.url("http", "/nothing")], "");
    assert_eq!(run.code, 1, "{run:?}");
    let run = connect(&["--socketio", &url, "--transport", "streaming"], "");
    assert_eq!(run.code, 2, "{run:?}");
}

// ---- Server-Sent Events ----------------------------------------------------------

#[test]
fn sse_prints_events_and_resumes_a_session_by_last_event_id() {
    let server = Server::start();
    let url = server.url("http", "/sse/events");
    let run = connect_ok(&["--sse", &url, "--count", "2", "--jsonl"], "");
    let records = run.records();
    assert_eq!(records[0]["type"], "open");
    let session_event = &records[1];
    assert_eq!(session_event["event"], "session");
    let session: Value = serde_json::from_str(session_event["data"].as_str().unwrap()).unwrap();
    let session = session["session"].as_str().unwrap().to_owned();
    assert_eq!(session_event["id"], format!("{session}:1"));
    let last = records[2]["id"].as_str().unwrap().to_owned();
    assert_eq!(last, format!("{session}:2"));

    // Something happens on the session while nobody listens...
    let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(STEP)).unwrap();
    let body = r#"{"type":"join","room":"lobby","name":"sse-user"}"#;
    write!(
        tcp,
        "POST /sse/send?session={session} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    // ...and the resumed stream has it, numbered after the last id seen.
    // `=`: a session id may begin with '-', which would read as a flag.
    let last_event_id = format!("--last-event-id={last}");
    let run = connect_ok(&["--sse", &url, &last_event_id, "--count", "1"], "");
    let text = run.stdout;
    assert!(
        text.starts_with(&format!("id: {session}:3\nevent: message\ndata: {{")),
        "{text}"
    );
    assert!(text.contains("joined"), "{text}");
    assert!(
        run.stderr.contains(&format!("resuming after {last}")),
        "{}",
        run.stderr
    );
}

#[test]
fn sse_reconnects_after_a_drop_with_last_event_id_until_204() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let script = std::thread::spawn(move || {
        let answers = [
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nretry: 20\nid: 1\ndata: first\n\nid: 2\ndata: cut off",
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n\u{feff}id: 3\nevent: second\ndata: a\ndata: b\n\n",
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        ];
        let mut requests = Vec::new();
        for answer in answers {
            let (mut tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(STEP)).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(tcp.read(&mut byte).unwrap(), 1, "request cut short");
                head.push(byte[0]);
            }
            requests.push(String::from_utf8(head).unwrap().to_ascii_lowercase());
            tcp.write_all(answer.as_bytes()).unwrap();
            // Closing the connection is the drop.
        }
        requests
    });
    let run = connect_ok(&["--sse", &format!("http://{addr}/events"), "--jsonl"], "");
    let requests = script.join().unwrap();
    assert!(!requests[0].contains("last-event-id"), "{}", requests[0]);
    assert!(
        requests[0].contains("accept: text/event-stream"),
        "{}",
        requests[0]
    );
    // The id of the cut-off event's line was read whole, so it counts.
    assert!(
        requests[1].contains("last-event-id: 2\r\n"),
        "{}",
        requests[1]
    );
    assert!(
        requests[2].contains("last-event-id: 3\r\n"),
        "{}",
        requests[2]
    );
    let events: Vec<(String, String, String)> = run
        .records()
        .iter()
        .filter(|r| r["type"] == "event")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("id"), s("event"), s("data"))
        })
        .collect();
    assert_eq!(
        events,
        [
            ("1".into(), "message".into(), "first".into()),
            ("3".into(), "second".into(), "a\nb".into()),
        ]
    );
    let drops = run.records().iter().filter(|r| r["type"] == "drop").count();
    assert_eq!(drops, 2, "{run:?}");
}

// ---- TLS -----------------------------------------------------------------------

/// A private CA and a certificate it signed for 127.0.0.1, made in the test
/// with rcgen (no outside tool): (ca.pem written to a fresh directory, for
/// `--ca`; the server's certificate and key as PEM).
fn make_certificates() -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "duplex test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    // One directory a call: the tests run at once, each with its own CA.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("duplex-connect-tls-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    (
        dir.join("ca.pem"),
        server.pem().into_bytes(),
        server_key.serialize_pem().into_bytes(),
    )
}

/// A TLS acceptor with the given certificate and key (PEM).
fn tls_acceptor(cert: &[u8], key: &[u8]) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// A TLS listener on a loopback port, on a runtime of its own: each
/// handshake that succeeds hands its stream to `serve` (a client that
/// refuses the certificate ends at the handshake). Returns the port.
fn tls_server<F, Fut>(cert: &[u8], key: &[u8], serve: F) -> u16
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let acceptor = tls_acceptor(cert, key);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let serve = serve.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls).await;
                    }
                });
            }
        });
    });
    port
}

/// A TLS front for `backend` (plain TCP), as a TLS-terminating proxy puts
/// before a server: `https://127.0.0.1:port`.
fn tls_proxy(cert: &[u8], key: &[u8], backend: String) -> String {
    let port = tls_server(cert, key, move |mut tls| {
        let backend = backend.clone();
        async move {
            let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        }
    });
    format!("https://127.0.0.1:{port}")
}

/// A wss:// echo server on a loopback port.
fn tls_echo_server(cert: &[u8], key: &[u8]) -> String {
    use futures_util::{SinkExt, StreamExt};

    let port = tls_server(cert, key, |tls| async move {
        let Ok(mut ws) = duplex_tokio::accept(tls).await else {
            return;
        };
        while let Some(Ok(message)) = ws.next().await {
            if ws.send(message).await.is_err() {
                break;
            }
        }
    });
    format!("wss://127.0.0.1:{port}/")
}

#[test]
fn wss_with_a_private_ca_or_insecure_and_refused_otherwise() {
    let (ca, cert, key) = make_certificates();
    let url = tls_echo_server(&cert, &key);
    let ca = ca.to_str().unwrap();
    let run = connect(&[&url, "--ca", ca], "over tls\n");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "over tls\n"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("--insecure"), "{run:?}");
    // The system's roots (or the Mozilla ones) do not know this CA.
    let run = connect(&[&url], "x\n");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("certificate"), "{run:?}");
    let run = connect(&[&url, "--insecure"], "anyway\n");
    assert_eq!((run.code, run.stdout.as_str()), (0, "anyway\n"), "{run:?}");
    assert!(
        run.stderr
            .contains("--insecure: the server's certificate is not verified"),
        "{run:?}"
    );
    // A --ca that is not a certificate is a usage error.
    let run = connect(&[&url, "--ca", "/dev/null"], "");
    assert_eq!(run.code, 2, "{run:?}");
}

/// The demo server behind a TLS proxy whose certificate a private CA
/// signed: the server (alive while it is held), its `https://` base and
/// the CA's certificate file.
fn https_server() -> (Server, String, std::path::PathBuf) {
    let (ca, cert, key) = make_certificates();
    let server = Server::start();
    let base = tls_proxy(&cert, &key, server.addr.clone());
    (server, base, ca)
}

#[test]
fn sse_and_sockjs_over_https_with_a_private_ca_or_refused_otherwise() {
    let (_server, base, ca) = https_server();
    let ca = ca.to_str().unwrap();

    let sse = format!("{base}/sse/events");
    let run = connect_ok(&["--sse", &sse, "--count", "2", "--jsonl", "--ca", ca], "");
    let records = run.records();
    assert_eq!(records[0]["type"], "open", "{run:?}");
    assert_eq!(records[1]["event"], "session", "{run:?}");
    let run = connect(&["--sse", &sse, "--count", "1"], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("certificate"), "{run:?}");

    let sockjs = format!("{base}/sockjs/echo");
    check_sockjs_echoes(&sockjs, &["one", "two"], &["--ca", ca]);
    let run = connect(
        &[
            "--sockjs",
            &sockjs,
            "--transport",
            "polling",
            "--insecure",
            "--count",
            "1",
        ],
        "anyway\n",
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, "anyway\n"), "{run:?}");
    let run = connect(&["--sockjs", &sockjs, "--transport", "polling"], "x\n");
    assert_eq!(run.code, 1, "{run:?}");
}

#[test]
fn socketio_over_https_on_every_transport_with_a_private_ca() {
    let (_server, base, ca) = https_server();
    let ca = ca.to_str().unwrap();
    check_socketio_acks(&format!("{base}/"), &[&["\"over tls\""]], &["--ca", ca]);
    // Without --ca the certificate is refused, whatever the transport.
    for transport in ["websocket", "polling"] {
        let run = connect(
            &[
                "--socketio",
                &base,
                "--transport",
                transport,
                "--no-reconnect",
                "--timeout",
                "5",
                "--emit",
                "message-with-ack",
                "--ack",
            ],
            "",
        );
        assert_eq!(run.code, 1, "{transport}: {run:?}");
    }
}

// ---- a person at a terminal ----------------------------------------------------

/// A tmux session running one command, killed when dropped.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let name = format!("duplex-connect-test-{}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "160",
                "-y",
                "40",
                command,
            ])
            .status()
            .expect("the tmux command (this test types into a terminal)");
        assert!(status.success(), "tmux new-session failed");
        Tmux { name }
    }

    fn send_keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen once `want` holds for it, within [`STEP`].
    fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let screen = self.screen();
            if want(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
fn interactive_in_a_terminal_prompts_shows_arrivals_and_closes_on_ctrl_c() {
    // `cargo test` needs nothing but Rust: without tmux this test says so and
    // passes; the conformance script installs tmux and runs it again.
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: the tmux command is not installed");
        return;
    }
    let server = Server::start();
    let tmux = Tmux::start(&format!(
        "RUST_LOG=warn '{BIN}' connect --socketio {} ; echo EXIT=$? ; sleep 60",
        server.url("http", "/")
    ));
    // Connected, the server's first event shown, and the prompt below it.
    let screen = tmux.wait_for("the prompt", |s| {
        s.contains("connected to /") && s.contains("auth {}") && s.lines().any(|l| l == ">")
    });
    assert!(!screen.contains("EXIT="), "{screen}");
    tmux.send_keys(&[r#"message "typed" 42"#, "Enter"]);
    let screen = tmux.wait_for("the echoed event", |s| {
        s.contains(r#"message-back "typed" 42"#)
    });
    // The typed line stays on the screen above what arrived.
    assert!(screen.contains(r#"> message "typed" 42"#), "{screen}");
    tmux.send_keys(&["C-c"]);
    let screen = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(screen.contains("closed"), "{screen}");
    // The prompt is gone: the exit starts a line of its own.
    assert!(screen.lines().any(|l| l == "EXIT=0"), "{screen}");
}
