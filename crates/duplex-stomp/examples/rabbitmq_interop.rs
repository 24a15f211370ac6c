//! Interop checks of the duplex STOMP client session against a real broker
//! (RabbitMQ's STOMP plugin), driven from nothing but a blocking
//! `std::net::TcpStream` loop: the sans-IO session runs on a "custom
//! runtime" of a dozen lines.
//!
//! ```sh
//! cargo run -p duplex-stomp --example rabbitmq_interop -- 127.0.0.1:61613
//! ```
//!
//! Prints one line per check and `stomp rabbitmq: N passed, N failed`;
//! exits non-zero when a check fails. Where RabbitMQ departs from the
//! specification the check asserts what RabbitMQ does and says so in a
//! `note:` line (see docs/stomp.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use duplex_stomp::{
    AckMode, ClientConfig, ClientEvent, ClientSession, Command, Connected, Decoded, Frame,
    FrameDecoder, HeartBeat, Limits, Message, Version,
};

type CheckResult = Result<(), String>;

/// One STOMP connection: a blocking socket and a client session.
struct Conn {
    stream: TcpStream,
    session: ClientSession,
    connected: Connected,
    eof: bool,
    /// Messages that arrived while a receipt was awaited: RabbitMQ routes a
    /// message to our own subscription before it sends the SEND's receipt.
    early: VecDeque<Message>,
}

/// Debug text cut short, so a failing check does not print a whole body.
fn short(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(240) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

fn config(versions: &[Version]) -> ClientConfig {
    let mut c = ClientConfig::new("/");
    c.login = Some("guest".into());
    c.passcode = Some("guest".into());
    c.versions = versions.to_vec();
    c
}

impl Conn {
    fn open(addr: &str, config: ClientConfig) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let session = ClientSession::new(config, Instant::now()).map_err(|e| e.to_string())?;
        let mut conn = Conn {
            stream,
            session,
            connected: Connected {
                version: Version::V1_0,
                session: None,
                server: None,
                heart_beat: Default::default(),
            },
            eof: false,
            early: VecDeque::new(),
        };
        match conn.next_event(Duration::from_secs(10))? {
            ClientEvent::Connected(c) => {
                conn.connected = c;
                Ok(conn)
            }
            other => Err(format!("expected CONNECTED, got {}", short(&other))),
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        let mut out = BytesMut::new();
        if self.session.poll_transmit(&mut out) > 0 {
            self.stream
                .write_all(&out)
                .map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    }

    /// The whole runtime: write what the session wants written, read with a
    /// timeout no later than the session's next deadline, hand it the time.
    fn next_event(&mut self, within: Duration) -> Result<ClientEvent, String> {
        let give_up = Instant::now() + within;
        let mut buf = [0u8; 16 * 1024];
        loop {
            self.flush()?;
            if let Some(event) = self.session.poll_event() {
                self.flush()?;
                return Ok(event);
            }
            if self.eof {
                return Err("connection closed by the server".into());
            }
            let now = Instant::now();
            if now >= give_up {
                return Err("timed out waiting for a frame".into());
            }
            let wake = self
                .session
                .poll_timeout()
                .map_or(give_up, |t| t.min(give_up));
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| e.to_string())?;
            match self.stream.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.session.receive(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => self.eof = true,
                Err(e) => return Err(format!("read: {e}")),
            }
            self.session.handle_timeout(Instant::now());
        }
    }

    fn expect_receipt(&mut self, id: &str) -> CheckResult {
        loop {
            match self.next_event(Duration::from_secs(5))? {
                ClientEvent::Receipt { receipt_id } if receipt_id == id => return Ok(()),
                ClientEvent::Message(m) => self.early.push_back(m),
                other => return Err(format!("expected RECEIPT {id}, got {}", short(&other))),
            }
        }
    }

    fn expect_message(&mut self) -> Result<Message, String> {
        if let Some(m) = self.early.pop_front() {
            return Ok(m);
        }
        match self.next_event(Duration::from_secs(5))? {
            ClientEvent::Message(m) => Ok(m),
            other => Err(format!("expected MESSAGE, got {}", short(&other))),
        }
    }

    /// Waits `quiet` and fails if a message arrives meanwhile.
    fn expect_no_message(&mut self, quiet: Duration) -> CheckResult {
        if let Some(m) = self.early.pop_front() {
            return Err(format!("unexpected message {}", short(m.body())));
        }
        match self.next_event(quiet) {
            Err(e) if e.contains("timed out") => Ok(()),
            Err(e) => Err(e),
            Ok(ClientEvent::Message(m)) => Err(format!("unexpected message {}", short(m.body()))),
            Ok(other) => Err(format!("unexpected event {}", short(&other))),
        }
    }

    fn subscribe(&mut self, destination: &str, ack: AckMode) -> Result<String, String> {
        let id = self
            .session
            .subscribe_with(destination, ack, &[("receipt", "sub")])
            .map_err(|e| e.to_string())?;
        self.expect_receipt("sub")?;
        Ok(id)
    }

    fn send(&mut self, destination: &str, headers: &[(&str, &str)], body: &[u8]) -> CheckResult {
        let mut all = headers.to_vec();
        all.push(("receipt", "sent"));
        self.session
            .send(destination, &all, body)
            .map_err(|e| e.to_string())?;
        self.expect_receipt("sent")
    }

    /// Subscribes to `destination`, sends it one message and receives it
    /// back: the broker's copy, for checking what it kept.
    fn round_trip(
        &mut self,
        destination: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Message, String> {
        self.subscribe(destination, AckMode::Auto)?;
        self.send(destination, headers, body)?;
        self.expect_message()
    }

    fn disconnect(mut self) -> CheckResult {
        self.session.disconnect().map_err(|e| e.to_string())?;
        match self.next_event(Duration::from_secs(5))? {
            ClientEvent::Disconnected => Ok(()),
            other => Err(format!(
                "expected the DISCONNECT receipt, got {}",
                short(&other)
            )),
        }
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> CheckResult {
    if cond { Ok(()) } else { Err(what()) }
}

fn body_text(m: &Message) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

struct Checks {
    addr: String,
    prefix: String,
    passed: usize,
    failed: usize,
    notes: Vec<String>,
}

impl Checks {
    fn run(&mut self, name: &str, check: impl FnOnce(&mut Checks) -> CheckResult) {
        match check(self) {
            Ok(()) => {
                self.passed += 1;
                println!("ok    {name}");
            }
            Err(e) => {
                self.failed += 1;
                println!("FAIL  {name}: {e}");
            }
        }
        for note in self.notes.drain(..) {
            println!("      note: {note}");
        }
    }

    fn queue(&self, name: &str) -> String {
        format!("/queue/{}-{name}", self.prefix)
    }

    fn open(&self, versions: &[Version]) -> Result<Conn, String> {
        Conn::open(&self.addr, config(versions))
    }
}

fn connect_version(c: &mut Checks, v: Version) -> CheckResult {
    let conn = c.open(&[v])?;
    ensure(conn.connected.version == v, || {
        format!("negotiated {}", conn.connected.version)
    })?;
    ensure(conn.connected.session.is_some(), || {
        "CONNECTED without session".into()
    })?;
    conn.disconnect()
}

fn raw_exchange(addr: &str, request: &[u8]) -> Result<(Vec<Frame>, bool), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let mut decoder = FrameDecoder::new(Limits::default());
    decoder.set_version(Version::V1_0);
    let mut frames = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => decoder.receive(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(e) => return Err(e.to_string()),
        }
        while let Some(item) = decoder.decode().map_err(|e| e.to_string())? {
            if let Decoded::Frame(f) = item {
                frames.push(f);
            }
        }
    };
    Ok((frames, closed))
}

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:61613".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut c = Checks {
        addr,
        prefix: format!("duplex-{}-{stamp}", std::process::id()),
        passed: 0,
        failed: 0,
        notes: Vec::new(),
    };

    c.run("connect with STOMP 1.0", |c| {
        connect_version(c, Version::V1_0)
    });
    c.run("connect with STOMP 1.1", |c| {
        connect_version(c, Version::V1_1)
    });
    c.run("connect with STOMP 1.2", |c| {
        connect_version(c, Version::V1_2)
    });

    c.run("highest common version and server header", |c| {
        let conn = c.open(&Version::ALL)?;
        ensure(conn.connected.version == Version::V1_2, || {
            format!("negotiated {}", conn.connected.version)
        })?;
        let server = conn.connected.server.clone().unwrap_or_default();
        ensure(server.starts_with("RabbitMQ"), || {
            format!("server header {server:?}")
        })?;
        conn.disconnect()
    });

    c.run("STOMP frame instead of CONNECT", |c| {
        let mut cfg = config(&[Version::V1_2]);
        cfg.use_stomp_command = true;
        let conn = Conn::open(&c.addr, cfg)?;
        ensure(conn.connected.version == Version::V1_2, || {
            format!("negotiated {}", conn.connected.version)
        })?;
        conn.disconnect()
    });

    c.run("no common version gives ERROR", |c| {
        let (frames, closed) = raw_exchange(
            &c.addr,
            b"CONNECT\naccept-version:9.9\nhost:/\nlogin:guest\npasscode:guest\n\n\0",
        )?;
        let error = frames.iter().find(|f| f.command() == Command::Error);
        let error = error.ok_or_else(|| format!("no ERROR frame, got {}", short(&frames)))?;
        ensure(error.header("message").is_some(), || {
            "ERROR without message header".into()
        })?;
        if !closed {
            c.notes
                .push("RabbitMQ kept the connection open after ERROR".into());
        }
        Ok(())
    });

    c.run("frame before CONNECT gives ERROR", |c| {
        let (frames, closed) = raw_exchange(&c.addr, b"SEND\ndestination:/queue/x\n\nhi\0")?;
        let error = frames.iter().find(|f| f.command() == Command::Error);
        ensure(error.is_some(), || {
            format!("no ERROR frame, got {}", short(&frames))
        })?;
        if !closed {
            c.notes
                .push("RabbitMQ kept the connection open after ERROR".into());
        }
        Ok(())
    });

    c.run("subscribe, send, receive with receipts", |c| {
        let q = c.queue("basic");
        let mut conn = c.open(&[Version::V1_2])?;
        let sub = conn.subscribe(&q, AckMode::Auto)?;
        conn.send(&q, &[("content-type", "text/plain")], b"hello queue a")?;
        let m = conn.expect_message()?;
        ensure(body_text(&m) == "hello queue a", || {
            format!("body {}", short(m.body()))
        })?;
        ensure(m.subscription() == Some(sub.as_str()), || {
            format!("subscription {:?}", m.subscription())
        })?;
        ensure(m.destination() == Some(q.as_str()), || {
            format!("destination {:?}", m.destination())
        })?;
        ensure(m.message_id().is_some(), || "no message-id".into())?;
        ensure(m.content_type() == Some("text/plain"), || {
            format!("content-type {:?}", m.content_type())
        })?;
        conn.session
            .unsubscribe(&sub, &[("receipt", "unsub")])
            .map_err(|e| e.to_string())?;
        conn.expect_receipt("unsub")?;
        conn.disconnect()
    });

    c.run("binary body with NUL octets", |c| {
        let q = c.queue("binary");
        let body: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let mut conn = c.open(&[Version::V1_2])?;
        let m = conn.round_trip(&q, &[("content-type", "application/octet-stream")], &body)?;
        ensure(m.body().as_ref() == body.as_slice(), || {
            format!("{} octets came back", m.body().len())
        })?;
        conn.disconnect()
    });

    for (version, value) in [
        (Version::V1_2, "colon:newline\nbackslash\\cr\rend"),
        (Version::V1_1, "colon:newline\nbackslash\\end"),
    ] {
        c.run(&format!("header escaping in STOMP {version}"), |c| {
            let q = c.queue(&format!("escape-{version}"));
            let mut conn = c.open(&[version])?;
            let m = conn.round_trip(&q, &[("x-tricky", value)], b"e")?;
            ensure(m.header("x-tricky") == Some(value), || {
                format!("came back as {:?}", m.header("x-tricky"))
            })?;
            conn.disconnect()
        });
    }

    c.run("header values in STOMP 1.0", |c| {
        let q = c.queue("escape-1.0");
        let mut conn = c.open(&[Version::V1_0])?;
        let m = conn.round_trip(&q, &[("x-plain", " padded value ")], b"e")?;
        let got = m.header("x-plain").unwrap_or_default().to_owned();
        if got != " padded value " {
            c.notes
                .push(format!("RabbitMQ trims STOMP 1.0 header values: {got:?}"));
        }
        ensure(got.trim() == "padded value", || {
            format!("came back as {got:?}")
        })?;
        conn.disconnect()
    });

    c.run("colons in STOMP 1.0 header values", |c| {
        let q = c.queue("colon-1.0");
        let mut conn = c.open(&[Version::V1_0])?;
        let m = conn.round_trip(&q, &[("x-url", "http://example:80/a")], b"e")?;
        match m.header("x-url") {
            Some("http://example:80/a") => Ok(()),
            Some(r"http\c//example\c80/a") => {
                c.notes
                    .push("RabbitMQ escapes colons in STOMP 1.0 MESSAGE headers as in 1.1".into());
                Ok(())
            }
            other => Err(format!("came back as {other:?}")),
        }?;
        conn.disconnect()
    });

    c.run("STOMP 1.0 client acknowledgement by message-id", |c| {
        let q = c.queue("ack-1.0");
        let mut conn = c.open(&[Version::V1_0])?;
        conn.subscribe(&q, AckMode::Client)?;
        conn.send(&q, &[], b"ack me")?;
        let m = conn.expect_message()?;
        ensure(m.message_id().is_some(), || "no message-id".into())?;
        conn.session.ack(&m, None).map_err(|e| e.to_string())?;
        ensure(conn.session.nack(&m, None).is_err(), || {
            "NACK accepted in 1.0".into()
        })?;
        conn.disconnect()?;
        let mut conn = c.open(&[Version::V1_0])?;
        let m = conn.round_trip(&q, &[], b"marker")?;
        ensure(body_text(&m) == "marker", || {
            format!("got {} before the marker", short(m.body()))
        })?;
        conn.disconnect()
    });

    c.run("client-individual: ACK one, NACK one redelivers it", |c| {
        let q = c.queue("individual");
        let mut conn = c.open(&[Version::V1_2])?;
        conn.subscribe(&q, AckMode::ClientIndividual)?;
        conn.send(&q, &[], b"first")?;
        conn.send(&q, &[], b"second")?;
        let first = conn.expect_message()?;
        let second = conn.expect_message()?;
        ensure(
            body_text(&first) == "first" && body_text(&second) == "second",
            || "order".into(),
        )?;
        ensure(first.ack_id().is_some(), || {
            "no ack header in client-individual mode".into()
        })?;
        conn.session.ack(&second, None).map_err(|e| e.to_string())?;
        conn.session.nack(&first, None).map_err(|e| e.to_string())?;
        let again = conn.expect_message()?;
        ensure(body_text(&again) == "first", || {
            format!("redelivered {}", short(again.body()))
        })?;
        ensure(again.header("redelivered") == Some("true"), || {
            "no redelivered header".into()
        })?;
        conn.session.ack(&again, None).map_err(|e| e.to_string())?;
        conn.disconnect()
    });

    c.run("client: cumulative ACK, nothing comes back", |c| {
        let q = c.queue("cumulative");
        let mut conn = c.open(&[Version::V1_2])?;
        conn.subscribe(&q, AckMode::Client)?;
        for body in ["1", "2", "3"] {
            conn.send(&q, &[], body.as_bytes())?;
        }
        let mut last = None;
        for _ in 0..3 {
            last = Some(conn.expect_message()?);
        }
        let last = last.ok_or("no messages")?;
        conn.session.ack(&last, None).map_err(|e| e.to_string())?;
        conn.disconnect()?;
        let mut conn = c.open(&[Version::V1_2])?;
        let m = conn.round_trip(&q, &[], b"marker")?;
        ensure(body_text(&m) == "marker", || {
            format!("got {} before the marker", short(m.body()))
        })?;
        conn.disconnect()
    });

    c.run(
        "client: unacknowledged messages are redelivered to the next subscriber",
        |c| {
            let q = c.queue("redeliver");
            let mut conn = c.open(&[Version::V1_1])?;
            conn.subscribe(&q, AckMode::Client)?;
            conn.send(&q, &[], b"keep me")?;
            let m = conn.expect_message()?;
            ensure(body_text(&m) == "keep me", || "body".into())?;
            conn.disconnect()?;
            let mut conn = c.open(&[Version::V1_1])?;
            conn.subscribe(&q, AckMode::Client)?;
            let again = conn.expect_message()?;
            ensure(body_text(&again) == "keep me", || {
                format!("got {}", short(again.body()))
            })?;
            // STOMP 1.1 acknowledges by message-id and subscription.
            conn.session.ack(&again, None).map_err(|e| e.to_string())?;
            conn.disconnect()
        },
    );

    c.run("transactions: COMMIT delivers, ABORT drops", |c| {
        let q = c.queue("tx");
        let mut conn = c.open(&[Version::V1_2])?;
        conn.subscribe(&q, AckMode::Auto)?;
        let end = |command: Command, tx: &str, receipt: &str| {
            Frame::new(command)
                .with_header("transaction", tx)
                .with_header("receipt", receipt)
        };
        // RabbitMQ answers the receipt of a transactional SEND only at
        // COMMIT, so these sends ask for none.
        let tx = conn.session.begin().map_err(|e| e.to_string())?;
        conn.session
            .send(&q, &[("transaction", &tx)], b"in tx")
            .map_err(|e| e.to_string())?;
        conn.send(&q, &[], b"marker")?;
        let m = conn.expect_message()?;
        ensure(body_text(&m) == "marker", || {
            format!("{} arrived before COMMIT", short(m.body()))
        })?;
        conn.session
            .send_frame(&end(Command::Commit, &tx, "commit"))
            .map_err(|e| e.to_string())?;
        conn.expect_receipt("commit")?;
        let m = conn.expect_message()?;
        ensure(body_text(&m) == "in tx", || {
            format!("got {}", short(m.body()))
        })?;
        let tx = conn.session.begin().map_err(|e| e.to_string())?;
        conn.session
            .send(&q, &[("transaction", &tx)], b"aborted")
            .map_err(|e| e.to_string())?;
        conn.session
            .send_frame(&end(Command::Abort, &tx, "abort"))
            .map_err(|e| e.to_string())?;
        conn.expect_receipt("abort")?;
        conn.send(&q, &[], b"marker 2")?;
        let m = conn.expect_message()?;
        ensure(body_text(&m) == "marker 2", || {
            format!("got {}", short(m.body()))
        })?;
        conn.expect_no_message(Duration::from_millis(300))?;
        conn.disconnect()
    });

    c.run("topic fan-out to two connections", |c| {
        let topic = format!("/topic/{}-news", c.prefix);
        let mut a = c.open(&[Version::V1_2])?;
        let mut b = c.open(&[Version::V1_1])?;
        a.subscribe(&topic, AckMode::Auto)?;
        b.subscribe(&topic, AckMode::Auto)?;
        let mut p = c.open(&[Version::V1_0])?;
        p.send(&topic, &[], b"to all")?;
        for conn in [&mut a, &mut b] {
            let m = conn.expect_message()?;
            ensure(body_text(&m) == "to all", || {
                format!("got {}", short(m.body()))
            })?;
        }
        a.disconnect()?;
        b.disconnect()?;
        p.disconnect()
    });

    c.run("ERROR carries message and receipt-id", |c| {
        let mut conn = c.open(&[Version::V1_2])?;
        // An ACK naming no delivery is refused by RabbitMQ.
        let bad = Frame::new(Command::Ack)
            .with_header("id", "no-such-ack")
            .with_header("receipt", "bad-ack");
        conn.session.send_frame(&bad).map_err(|e| e.to_string())?;
        match conn.next_event(Duration::from_secs(5))? {
            ClientEvent::Error(f) => {
                ensure(f.header("message").is_some(), || "no message header".into())?;
                match f.header("receipt-id") {
                    Some("bad-ack") => {}
                    None => c.notes.push(
                        "RabbitMQ's ERROR for this ACK carries no receipt-id (a SHOULD)".into(),
                    ),
                    Some(other) => return Err(format!("receipt-id {other:?}")),
                }
            }
            other => return Err(format!("expected ERROR, got {}", short(&other))),
        }
        ensure(conn.session.is_closed(), || {
            "client session not closed after ERROR".into()
        })?;
        // The specification requires the server to close after ERROR.
        match conn.next_event(Duration::from_secs(2)) {
            Err(e) if e.contains("closed by the server") => Ok(()),
            Err(e) if e.contains("timed out") => {
                c.notes
                    .push("RabbitMQ kept the connection open after ERROR".into());
                Ok(())
            }
            Err(e) => Err(e),
            Ok(ev) => Err(format!("event after ERROR: {ev:?}")),
        }
    });

    c.run("heart-beats keep an idle connection alive", |c| {
        let mut cfg = config(&[Version::V1_2]);
        cfg.heart_beat = HeartBeat::every(Duration::from_millis(500));
        let mut conn = Conn::open(&c.addr, cfg)?;
        let hb = conn.connected.heart_beat;
        ensure(hb.send.is_some() && hb.receive.is_some(), || {
            format!("negotiated {hb:?}")
        })?;
        // Idle for several intervals: both sides must keep the link up.
        conn.expect_no_message(Duration::from_millis(2500))?;
        ensure(!conn.session.is_closed(), || {
            "session closed while idle".into()
        })?;
        let q = c.queue("after-idle");
        let m = conn.round_trip(&q, &[], b"still here")?;
        ensure(body_text(&m) == "still here", || "body".into())?;
        conn.disconnect()
    });

    c.run("DISCONNECT receipt, then the server closes", |c| {
        let mut conn = c.open(&[Version::V1_2])?;
        conn.session.disconnect().map_err(|e| e.to_string())?;
        match conn.next_event(Duration::from_secs(5))? {
            ClientEvent::Disconnected => {}
            other => return Err(format!("expected Disconnected, got {}", short(&other))),
        }
        let mut buf = [0u8; 64];
        conn.stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        match conn.stream.read(&mut buf) {
            Ok(0) => Ok(()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            Ok(n) => Err(format!("{n} more octets after the receipt")),
            Err(e) => Err(format!("socket still open: {e}")),
        }
    });

    println!("stomp rabbitmq: {} passed, {} failed", c.passed, c.failed);
    if c.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
