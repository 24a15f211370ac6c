//! Property: for arbitrary interleavings of application sends, polls,
//! aborted polls, POSTs, upgrades (probe, completion, failure) and time, the
//! messages the application sent reach the client exactly once and in
//! order until the session closes, every request is answered at most once,
//! nothing panics, and a closed session leaves no state behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Driver, Ledger, MS, rng};
use duplex_engineio::{Limits, Packet, PayloadFormat, decode_payload_vec};
use duplex_polling::{
    EngineIoConfig, EngineIoServer, HttpTransmit, Message, QueueConfig, RequestId,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Send,
    Poll,
    AbortPoll,
    PostMessage,
    PostPong,
    PostGarbage,
    OpenWs,
    Probe,
    Complete,
    WsPong,
    CloseWs,
    Advance(u64),
    AppClose,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Send),
        4 => Just(Op::Poll),
        1 => Just(Op::AbortPoll),
        2 => Just(Op::PostMessage),
        3 => Just(Op::PostPong),
        1 => Just(Op::PostGarbage),
        1 => Just(Op::OpenWs),
        1 => Just(Op::Probe),
        1 => Just(Op::Complete),
        2 => Just(Op::WsPong),
        1 => Just(Op::CloseWs),
        4 => (1u64..400).prop_map(Op::Advance),
        1 => Just(Op::AppClose),
    ]
}

/// The client's view: what arrived, in the order the machine wrote it.
struct Client {
    sid: String,
    parked: Vec<RequestId>,
    ws: Option<RequestId>,
    ledger: Ledger,
}

impl Client {
    /// Reads everything written since last time.
    fn read(&mut self, log: &mut Vec<HttpTransmit>) {
        for t in log.drain(..) {
            match t {
                HttpTransmit::Response { request, response } => {
                    self.parked.retain(|&p| p != request);
                    if response.status == 200 && response.body != "ok" {
                        let packets = decode_payload_vec(
                            response.body.clone(),
                            PayloadFormat::V4,
                            Limits::default(),
                        )
                        .unwrap();
                        self.take(packets);
                    }
                }
                HttpTransmit::WebSocketMessage {
                    message: Message::Text(t),
                    ..
                } => {
                    let p = Packet::decode_text_bytes(Bytes::from(t.as_str().to_owned())).unwrap();
                    self.take(vec![p]);
                }
                HttpTransmit::CloseWebSocket { connection, .. } if self.ws == Some(connection) => {
                    self.ws = None;
                }
                _ => {}
            }
        }
    }

    fn take(&mut self, packets: Vec<Packet>) {
        for p in packets {
            if let Packet::Message(text) = p {
                self.ledger.received.push(text.as_str().to_owned());
            }
        }
    }
}

/// A driver that also keeps the raw transmit log in order.
fn step(d: &mut Driver<EngineIoServer>, log: &mut Vec<HttpTransmit>) {
    while let Some(t) = d.machine.poll_transmit() {
        log.push(t);
    }
    while let Some(e) = d.machine.poll_event() {
        d.events.push(e);
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut d = Driver::new(EngineIoServer::new(
        EngineIoConfig {
            ping_interval: 300 * MS,
            ping_timeout: 200 * MS,
            upgrade_timeout: 500 * MS,
            queue: QueueConfig {
                max_messages: 64,
                ..QueueConfig::default()
            },
            ..EngineIoConfig::default()
        }
        .with_rng(rng()),
    ));
    let mut log = Vec::new();
    let handshake = d.request(http::Method::GET, "/?EIO=4&transport=polling");
    d.machine.handle_request(handshake, d.now);
    step(&mut d, &mut log);
    let Some(HttpTransmit::Response { response, .. }) = log.pop() else {
        return Err(TestCaseError::fail("no handshake"));
    };
    let open: serde_json::Value = serde_json::from_slice(&response.body[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    let session = find_session(&d, &sid);
    let mut client = Client {
        sid,
        parked: Vec::new(),
        ws: None,
        ledger: Ledger::default(),
    };
    let poll_path = format!("/?EIO=4&transport=polling&sid={}", client.sid);
    let ws_path = format!("/?EIO=4&transport=websocket&sid={}", client.sid);
    for op in ops {
        let now = d.now;
        match op {
            Op::Send => client
                .ledger
                .send_next(|m| d.machine.send(&session, m, now)),
            Op::Poll => {
                let r = d.request(http::Method::GET, &poll_path);
                client.parked.push(r.id);
                d.machine.handle_request(r, now);
            }
            Op::AbortPoll => {
                if let Some(p) = client.parked.pop() {
                    d.machine.abort(p, now);
                }
            }
            Op::PostMessage | Op::PostPong | Op::PostGarbage => {
                let body = match op {
                    Op::PostMessage => "4from client",
                    Op::PostPong => "3",
                    _ => "x!",
                };
                let r = d.request(http::Method::POST, &poll_path).body(body);
                d.machine.handle_request(r, now);
            }
            Op::OpenWs => {
                let r = d.request(http::Method::GET, &ws_path).websocket();
                client.ws = Some(r.id);
                d.machine.handle_request(r, now);
            }
            Op::Probe | Op::Complete | Op::WsPong => {
                if let Some(ws) = client.ws {
                    let text = match op {
                        Op::Probe => "2probe",
                        Op::Complete => "5",
                        _ => "3",
                    };
                    d.machine
                        .handle_websocket_message(ws, Message::text(text), now);
                }
            }
            Op::CloseWs => {
                if let Some(ws) = client.ws.take() {
                    d.machine.handle_websocket_closed(ws, now);
                }
            }
            Op::Advance(ms) => {
                d.jump(Duration::from_millis(ms));
            }
            Op::AppClose => {
                let _ = d.machine.close(&session, now);
            }
        }
        step(&mut d, &mut log);
        client.read(&mut log);
        client.ledger.check_prefix()?;
    }
    // Drain: a still-open session delivers everything that was sent.
    if d.machine.is_open(&session) {
        let now = d.now;
        for _ in 0..3 {
            let r = d.request(http::Method::GET, &poll_path);
            d.machine.handle_request(r, now);
            step(&mut d, &mut log);
            client.read(&mut log);
        }
        prop_assert_eq!(&client.ledger.received, &client.ledger.sent);
    } else {
        // Closed: after the close timeout nothing is left.
        d.now += Duration::from_secs(60);
        let now = d.now;
        for p in client.parked.clone() {
            d.machine.abort(p, now);
        }
        if let Some(ws) = client.ws {
            d.machine.handle_websocket_closed(ws, now);
        }
        d.machine.handle_timeout(now);
        step(&mut d, &mut log);
        prop_assert_eq!(d.machine.session_count(), 0);
        prop_assert_eq!(d.machine.connection_count(), 0);
        prop_assert_eq!(d.machine.poll_timeout(), None);
    }
    Ok(())
}

fn find_session(d: &Driver<EngineIoServer>, sid: &str) -> duplex_polling::SessionId {
    d.events
        .iter()
        .find_map(|e| match e {
            duplex_polling::Event::Opened { session, .. } if session.as_str() == sid => {
                Some(session.clone())
            }
            _ => None,
        })
        .expect("opened")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sent_messages_arrive_exactly_once_in_order(ops in proptest::collection::vec(op(), 0..80)) {
        run(ops)?;
    }
}
