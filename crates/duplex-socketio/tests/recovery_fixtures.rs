//! Connection state recovery byte for byte against Node: the server and
//! client machines play the scenario of `fixtures/recovery-capture.js`
//! (npm socket.io 4.8.4 and socket.io-client 4.8.4, one outage) and must
//! write the same messages as `fixtures/recovery-capture.txt`, once ids,
//! pids and offsets are replaced by the same placeholders.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_socketio::client::{self, Client, ClientConfig, ClientEvent};
use duplex_socketio::cluster::Opts;
use duplex_socketio::recovery::RecoveryConfig;
use duplex_socketio::server::{DisconnectReason, Server, ServerConfig, ServerEvent, Transmit};
use duplex_socketio::{Broadcast, Packet, ProtocolVersion, Value};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The placeholders of the capture script.
#[derive(Default)]
struct Names {
    names: HashMap<String, String>,
    offsets: usize,
}

impl Names {
    fn name(&mut self, kind: &str, value: &str) -> String {
        if let Some(n) = self.names.get(value) {
            return n.clone();
        }
        let n = if kind == "offset" {
            self.offsets += 1;
            format!("<offset:{}>", self.offsets - 1)
        } else {
            format!("<{kind}>")
        };
        self.names.insert(value.to_owned(), n.clone());
        n
    }

    /// The script's `normalize`.
    fn normalize(&mut self, text: &str) -> String {
        if let Some(body) = text.strip_prefix('0').filter(|b| !b.is_empty()) {
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            // serde_json sorts keys; the capture keeps the wire's order, so
            // read the keys in wire order from the text.
            let mut keys: Vec<(usize, &String)> = body
                .as_object()
                .unwrap()
                .keys()
                .map(|k| (text.find(&format!("\"{k}\"")).unwrap(), k))
                .collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|(_, k)| {
                    let v = body[k].as_str().unwrap();
                    let kind = if k == "offset" { "offset" } else { k };
                    format!("\"{k}\":\"{}\"", self.name(kind, v))
                })
                .collect();
            return format!("0{{{}}}", fields.join(","));
        }
        let bytes = text.as_bytes();
        if matches!(bytes.first(), Some(b'2' | b'5')) {
            let start = text.find('[').unwrap();
            let head = &text[1..start];
            let has_ack = !head.is_empty() && !head.ends_with('-');
            let args: Vec<serde_json::Value> = serde_json::from_str(&text[start..]).unwrap();
            if let (false, Some(serde_json::Value::String(last))) = (has_ack, args.last()) {
                if args.len() > 1 {
                    let cut = text.len() - serde_json::to_string(last).unwrap().len() - 1;
                    return format!("{}\"{}\"]", &text[..cut], self.name("offset", last));
                }
            }
        }
        text.to_owned()
    }
}

type Srv = Server<&'static str, ()>;

struct Play {
    server: Srv,
    client: Client<()>,
    session: &'static str,
    lines: Vec<String>,
    names: Names,
    now: Instant,
}

impl Play {
    fn step(&mut self, s: &str) {
        self.lines.push(format!("# {s}"));
    }

    /// Carries messages both ways until both machines are quiet, answering
    /// CONNECTs and `join` as the capture's server does.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                match t {
                    client::Transmit::Text(text) => {
                        let line = self.names.normalize(text.as_str());
                        self.lines.push(format!("> {line}"));
                        self.server
                            .handle_text(&self.session, Bytes::copy_from_slice(text.as_bytes()));
                    }
                    client::Transmit::Binary(data) => {
                        self.server.handle_binary(&self.session, data)
                    }
                }
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                match event {
                    ServerEvent::ConnectRequest {
                        session, namespace, ..
                    } => {
                        self.server.accept(&session, &namespace).unwrap();
                    }
                    ServerEvent::Event {
                        session,
                        namespace,
                        socket,
                        name,
                        args,
                        ack_id,
                    } if name == "join" => {
                        let room = args[0].as_str().unwrap().to_owned();
                        self.server.join(&namespace, &socket, [room]);
                        let ack = Packet::ack_with("/", &["ok".into()], ack_id.unwrap()).unwrap();
                        self.server.send(&session, &ack).unwrap();
                    }
                    ServerEvent::Disconnect { reason, .. } => {
                        self.step(&format!("server disconnect reason: {reason}"));
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                let (Transmit::Packet { packet, .. } | Transmit::Volatile { packet, .. }) = t
                else {
                    continue;
                };
                let line = self.names.normalize(packet.text.as_str());
                self.lines.push(format!("< {line}"));
                self.client
                    .handle_text(Bytes::copy_from_slice(packet.text.as_bytes()), self.now)
                    .unwrap();
                for a in packet.attachments {
                    let hex: String = a.iter().map(|b| format!("{b:02x}")).collect();
                    self.lines.push(format!("< <binary {hex}>"));
                    self.client.handle_binary(a, self.now).unwrap();
                }
            }
            while self.client.poll_event().is_some() {}
            if !moved {
                return;
            }
        }
    }

    fn event(&self, name: &str, args: &[Value]) -> Packet {
        Packet::event_with("/", name, args, None).unwrap()
    }
}

#[test]
fn one_outage_is_what_node_writes() {
    let now = Instant::now();
    let config = ServerConfig::default()
        .with_rng(StdRng::seed_from_u64(1))
        .with_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(10),
            ..RecoveryConfig::default()
        });
    let mut play = Play {
        server: Server::new(config),
        client: Client::new(ClientConfig::default().with_rng(StdRng::seed_from_u64(2))),
        session: "eio-1",
        lines: Vec::new(),
        names: Names::default(),
        now,
    };

    play.step("connect");
    play.server.open("eio-1", ProtocolVersion::V5, now);
    play.client.join("/", None).unwrap();
    play.client.handle_open(now);
    play.pump();
    play.client
        .emit("/", "join", &["room".into()], Some(((), None)), now)
        .unwrap();
    play.pump();
    let sid = play.server.socket_id(&"eio-1", "/").unwrap().clone();

    play.step("emits while connected");
    let volatile = Opts {
        flags: Some(Value::Object(vec![("volatile".into(), true.into())])),
        ..Opts::rooms([sid.as_str()])
    };
    let p = play.event("volatile", &[1.into()]);
    play.server.broadcast_opts("/", &volatile, &p);
    let p = play.event(
        "direct",
        &[1.into(), Value::Object(vec![("two".into(), 2.into())])],
    );
    play.server.send(&"eio-1", &p).unwrap();
    let p = play.event("room", &[Value::Array(vec![1.into()])]);
    play.server.broadcast("/", &Broadcast::to("room"), &p);
    let p = play.event("all", &[Value::Null]);
    play.server.broadcast("/", &Broadcast::all(), &p);
    play.server
        .emit_with_ack(&"eio-1", "/", "with-ack", &[1.into()], None, ())
        .unwrap();
    let p = play.event("binary", &[Bytes::from_static(&[1, 2, 3]).into()]);
    play.server.send(&"eio-1", &p).unwrap();
    let p = play.event("not-room", &[1.into()]);
    play.server
        .broadcast("/", &Broadcast::all().except_room("room"), &p);
    play.pump();

    play.step("cut");
    play.server
        .closed(&"eio-1", DisconnectReason::TransportClose);
    play.client.handle_close("transport close", now);
    play.pump();
    play.step("emits while away");
    for (name, arg, target) in [
        ("missed-room", 2, Broadcast::to("room")),
        ("missed-all", 3, Broadcast::all()),
        ("not-room", 4, Broadcast::all().except_room("room")),
        ("other-room", 5, Broadcast::to("other")),
    ] {
        let p = play.event(name, &[arg.into()]);
        play.server.broadcast("/", &target, &p);
    }
    play.server.handle_timeout(now + Duration::from_millis(50));

    play.step("reconnect");
    let later = now + Duration::from_secs(1);
    play.client.handle_timeout(later);
    assert!(matches!(
        play.client.poll_event(),
        Some(ClientEvent::Reconnect)
    ));
    play.session = "eio-2";
    play.server.open("eio-2", ProtocolVersion::V5, later);
    play.client.handle_open(later);
    play.pump();
    let again = play.server.socket_id(&"eio-2", "/").unwrap().clone();
    assert_eq!(again, sid);
    let (client_side, server_side) = (play.client.recovered("/"), play.server.recovered("/", &sid));
    play.step(&format!(
        "recovered: client {client_side}, server {server_side}"
    ));

    let expected = include_str!("fixtures/recovery-capture.txt");
    let expected: Vec<&str> = expected.lines().collect();
    let got: Vec<&str> = play.lines.iter().map(String::as_str).collect();
    assert_eq!(got, expected, "\n{}", play.lines.join("\n"));
}
