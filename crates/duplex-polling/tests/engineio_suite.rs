//! The official engine.io-protocol test suite (`test-suite/test-suite.js`),
//! replayed step by step against the machine with the conformance server's
//! settings (pingInterval 300, pingTimeout 200, maxPayload 1000000) and an
//! echo application, so that the adapter has nothing protocol-related left
//! to debug. Each test names the suite test it replays.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Driver, MS, rng};
use duplex_polling::{CloseReason, EngineIoConfig, EngineIoServer, Message, RequestId};
use http::Method;

fn conformance() -> Driver<EngineIoServer> {
    Driver::new(EngineIoServer::new(
        EngineIoConfig {
            ping_interval: 300 * MS,
            ping_timeout: 200 * MS,
            ..EngineIoConfig::default()
        }
        .with_rng(rng()),
    ))
    .echo()
}

fn handshake_json(body: &str) -> serde_json::Value {
    assert!(body.starts_with('0'), "{body}");
    serde_json::from_str(&body[1..]).unwrap()
}

/// `initLongPollingSession()`.
fn init_polling(d: &mut Driver<EngineIoServer>) -> String {
    let id = d.get("/?EIO=4&transport=polling");
    assert_eq!(d.status(id), 200);
    handshake_json(&d.body(id))["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn poll(sid: &str) -> String {
    format!("/?EIO=4&transport=polling&sid={sid}")
}

/// The handshake body holds exactly the reference's keys, in its order
/// (read from the text: a parsed `serde_json::Value` keeps wire order only
/// where something in the build enables `preserve_order`).
fn assert_exact_handshake(body: &str, upgrades: &[&str]) {
    let v = handshake_json(body);
    let order = [
        "sid",
        "upgrades",
        "pingInterval",
        "pingTimeout",
        "maxPayload",
    ];
    assert_eq!(v.as_object().unwrap().len(), order.len(), "{body}");
    let at: Vec<Option<usize>> = order
        .iter()
        .map(|key| body.find(&format!("\"{key}\":")))
        .collect();
    assert!(at.iter().all(Option::is_some), "{body}");
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{body}");
    assert!(v["sid"].is_string());
    assert_eq!(v["upgrades"], serde_json::json!(upgrades));
    assert_eq!(v["pingInterval"], 300);
    assert_eq!(v["pingTimeout"], 200);
    assert_eq!(v["maxPayload"], 1_000_000);
}

#[test]
fn handshake_polling_successfully_opens_a_session() {
    let mut d = conformance();
    let id = d.get("/?EIO=4&transport=polling");
    assert_eq!(d.status(id), 200);
    let response = d.response(id);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_exact_handshake(&d.body(id), &["websocket"]);
    assert_eq!(d.opened().len(), 1);
}

#[test]
fn handshake_polling_fails_with_an_invalid_eio() {
    let mut d = conformance();
    let a = d.get("/?transport=polling");
    let b = d.get("/?EIO=abc&transport=polling");
    assert_eq!((d.status(a), d.status(b)), (400, 400));
    assert_eq!(
        d.body(b),
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
    assert_eq!(
        d.response(b).header("content-type"),
        Some("application/json")
    );
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn handshake_polling_fails_with_an_invalid_transport() {
    let mut d = conformance();
    let a = d.get("/?EIO=4");
    let b = d.get("/?EIO=4&transport=abc");
    assert_eq!((d.status(a), d.status(b)), (400, 400));
    assert_eq!(d.body(b), r#"{"code":0,"message":"Transport unknown"}"#);
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn handshake_polling_fails_with_an_invalid_request_method() {
    let mut d = conformance();
    let a = d.post("/?EIO=4&transport=polling", "");
    let r = d.request(Method::PUT, "/?EIO=4&transport=polling");
    let b = d.send_request(r);
    assert_eq!((d.status(a), d.status(b)), (400, 400));
    assert_eq!(d.body(a), r#"{"code":2,"message":"Bad handshake method"}"#);
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn handshake_websocket_successfully_opens_a_session() {
    let mut d = conformance();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    let w = d.written(ws);
    assert!(w.accepted);
    let first = &w.ws_texts()[0];
    assert_exact_handshake(first, &[]);
    assert_eq!(w.ws_messages.len(), 1);
}

#[test]
fn handshake_websocket_fails_with_invalid_eio_or_transport() {
    let mut d = conformance();
    for path in [
        "/?transport=websocket",
        "/?EIO=abc&transport=websocket",
        "/?EIO=4",
        "/?EIO=4&transport=abc",
    ] {
        let ws = d.websocket(path);
        assert!(!d.written(ws).accepted, "{path}");
        assert_eq!(d.status(ws), 400, "{path}");
    }
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn message_polling_one_plain_text_packet() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let push = d.post(&poll(&sid), "4hello");
    assert_eq!((d.status(push), d.body(push).as_str()), (200, "ok"));
    assert_eq!(d.response(push).header("content-type"), Some("text/html"));
    let pull = d.get(&poll(&sid));
    assert_eq!((d.status(pull), d.body(pull).as_str()), (200, "4hello"));
}

#[test]
fn message_polling_several_plain_text_packets_come_back_in_one_payload() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let push = d.post(&poll(&sid), "4test1\x1e4test2\x1e4test3");
    assert_eq!(d.body(push), "ok");
    let pull = d.get(&poll(&sid));
    assert_eq!(d.body(pull), "4test1\x1e4test2\x1e4test3");
}

#[test]
fn message_polling_plain_text_and_binary_packets() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let push = d.post(&poll(&sid), "4hello\x1ebAQIDBA==");
    assert_eq!(d.body(push), "ok");
    assert_eq!(
        d.messages(),
        [Message::text("hello"), Message::binary(vec![1u8, 2, 3, 4])]
    );
    let pull = d.get(&poll(&sid));
    assert_eq!(d.body(pull), "4hello\x1ebAQIDBA==");
}

#[test]
fn message_polling_closes_the_session_upon_invalid_packet_format() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let push = d.post(&poll(&sid), "abc");
    assert_eq!(d.status(push), 400);
    let pull = d.get(&poll(&sid));
    assert_eq!(d.status(pull), 400);
    assert_eq!(d.body(pull), r#"{"code":1,"message":"Session ID unknown"}"#);
    assert_eq!(d.closed()[0].1, CloseReason::ParseError);
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn message_polling_closes_the_session_upon_duplicate_poll_requests() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let first = d.get(&poll(&sid));
    assert!(!d.answered(first), "parked");
    d.advance(5 * MS);
    let second = d.get(&format!("{}&t=burst", poll(&sid)));
    assert_eq!((d.status(first), d.body(first).as_str()), (200, "1"));
    assert_eq!(d.status(second), 400);
    let later = d.get(&poll(&sid));
    assert_eq!(d.status(later), 400);
    assert_eq!(d.closed()[0].1, CloseReason::TransportError);
    assert_eq!(d.machine.connection_count(), 0);
}

#[test]
fn message_websocket_plain_text_and_binary_packets_are_echoed() {
    let mut d = conformance();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    d.ws_send(ws, "4hello");
    d.ws_send_binary(ws, &[1, 2, 3, 4]);
    let w = d.written(ws);
    assert_eq!(w.ws_messages[1], Message::text("4hello"));
    assert_eq!(w.ws_messages[2], Message::binary(vec![1u8, 2, 3, 4]));
}

#[test]
fn message_websocket_closes_the_session_upon_invalid_packet_format() {
    let mut d = conformance();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    d.ws_send(ws, "abc");
    assert!(d.written(ws).ws_closed.is_some());
    assert_eq!(d.closed()[0].1, CloseReason::ParseError);
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn heartbeat_polling_sends_ping_pong_packets() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    for i in 0..3u32 {
        let pull = d.get(&poll(&sid));
        // The ping comes exactly one interval after the handshake or the
        // last pong, never at once.
        d.advance(299 * MS);
        assert!(!d.answered(pull), "round {i}: no ping before the interval");
        d.advance(MS);
        assert_eq!(
            (d.status(pull), d.body(pull).as_str()),
            (200, "2"),
            "round {i}"
        );
        d.advance(10 * MS);
        let push = d.post(&poll(&sid), "3");
        assert_eq!(d.status(push), 200);
    }
    assert!(d.machine.is_open(&d.opened()[0]));
}

#[test]
fn heartbeat_polling_closes_the_session_upon_ping_timeout() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    d.advance(499 * MS);
    assert_eq!(d.machine.session_count(), 1);
    d.advance(MS);
    assert_eq!(d.closed()[0].1, CloseReason::PingTimeout);
    let pull = d.get(&poll(&sid));
    assert_eq!(d.status(pull), 400);
}

#[test]
fn heartbeat_websocket_sends_ping_pong_packets() {
    let mut d = conformance();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    for i in 1..=3usize {
        d.advance(299 * MS);
        assert_eq!(d.written(ws).ws_messages.len(), i, "no early ping");
        d.advance(MS);
        assert_eq!(d.written(ws).ws_texts()[i], "2");
        d.ws_send(ws, "3");
    }
    assert!(d.written(ws).ws_closed.is_none());
}

#[test]
fn heartbeat_websocket_closes_the_session_upon_ping_timeout() {
    let mut d = conformance();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    d.advance(500 * MS);
    let w = d.written(ws);
    assert_eq!(w.ws_texts()[1], "2");
    assert!(w.ws_closed.is_some());
    assert_eq!(d.closed()[0].1, CloseReason::PingTimeout);
}

#[test]
fn close_polling_forcefully_closes_the_session() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let pull = d.get(&poll(&sid));
    let push = d.post(&poll(&sid), "1");
    assert_eq!((d.status(pull), d.body(pull).as_str()), (200, "6"));
    assert_eq!(d.status(push), 200);
    let later = d.get(&poll(&sid));
    assert_eq!(d.status(later), 400);
    assert_eq!(d.closed()[0].1, CloseReason::Client);
}

#[test]
fn close_websocket_forcefully_closes_the_session() {
    let mut d = conformance();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    d.ws_send(ws, "1");
    assert!(d.written(ws).ws_closed.is_some());
    assert_eq!(d.machine.session_count(), 0);
}

fn upgrade_path(sid: &str) -> String {
    format!("/?EIO=4&transport=websocket&sid={sid}")
}

#[test]
fn upgrade_successfully_upgrades_from_polling_to_websocket() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let ws = d.websocket(&upgrade_path(&sid));
    assert!(d.written(ws).accepted);
    assert!(
        d.written(ws).ws_messages.is_empty(),
        "no open packet on an upgrade"
    );
    d.ws_send(ws, "2probe");
    assert_eq!(d.written(ws).ws_texts(), ["3probe"]);
    let pull = d.get(&poll(&sid));
    assert_eq!(
        (d.status(pull), d.body(pull).as_str()),
        (200, "6"),
        "noop at once"
    );
    d.ws_send(ws, "5");
    d.ws_send(ws, "4hello");
    assert_eq!(d.written(ws).ws_texts(), ["3probe", "4hello"]);
    assert_eq!(
        d.machine.transport(&d.opened()[0]),
        Some(duplex_polling::TransportName::WebSocket)
    );
}

#[test]
fn upgrade_releases_a_parked_get_with_noop_when_probed() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let pull = d.get(&poll(&sid));
    let ws = d.websocket(&upgrade_path(&sid));
    assert!(!d.answered(pull));
    d.ws_send(ws, "2probe");
    assert_eq!(d.body(pull), "6");
    d.ws_send(ws, "5");
    // Heartbeats now travel on the WebSocket.
    d.advance(300 * MS);
    assert_eq!(d.written(ws).ws_texts(), ["3probe", "2"]);
}

#[test]
fn upgrade_ignores_http_requests_with_same_sid_after_upgrade() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let ws = d.websocket(&upgrade_path(&sid));
    d.ws_send(ws, "2probe");
    d.ws_send(ws, "5");
    let pull = d.get(&poll(&sid));
    assert_eq!(d.status(pull), 400);
    d.ws_send(ws, "4hello");
    assert_eq!(d.written(ws).ws_texts().last().unwrap(), "4hello");
}

#[test]
fn upgrade_ignores_websocket_connection_with_same_sid_after_upgrade() {
    let mut d = conformance();
    let sid = init_polling(&mut d);
    let ws = d.websocket(&upgrade_path(&sid));
    d.ws_send(ws, "2probe");
    d.ws_send(ws, "5");
    let ws2 = d.websocket(&upgrade_path(&sid));
    assert!(d.written(ws2).accepted);
    assert!(
        d.written(ws2).ws_closed.is_some(),
        "second websocket closed"
    );
    d.ws_send(ws, "4hello");
    assert_eq!(d.written(ws).ws_texts().last().unwrap(), "4hello");
    assert!(d.written(ws).ws_closed.is_none());
}

#[test]
fn messages_queued_before_the_upgrade_go_out_on_the_websocket_once() {
    let mut d = conformance();
    d.echo = false;
    let sid_text = init_polling(&mut d);
    let sid = d.opened()[0].clone();
    let ws = d.websocket(&upgrade_path(&sid_text));
    d.ws_send(ws, "2probe");
    let now = d.now;
    d.machine.send(&sid, Message::text("a"), now).unwrap();
    d.machine.send(&sid, Message::text("b"), now).unwrap();
    d.pump();
    d.ws_send(ws, "5");
    assert_eq!(d.written(ws).ws_texts(), ["3probe", "4a", "4b"]);
}

#[test]
fn upgrade_times_out_and_the_session_stays_on_polling() {
    let mut d = conformance();
    d.machine = EngineIoServer::new(
        EngineIoConfig {
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(60),
            upgrade_timeout: 100 * MS,
            ..EngineIoConfig::default()
        }
        .with_rng(rng()),
    );
    let sid = init_polling(&mut d);
    let ws = d.websocket(&upgrade_path(&sid));
    d.advance(99 * MS);
    assert!(d.written(ws).ws_closed.is_none());
    d.advance(MS);
    assert!(d.written(ws).ws_closed.is_some(), "upgrade timed out");
    let push = d.post(&poll(&sid), "4still");
    assert_eq!(d.status(push), 200);
    let pull = d.get(&poll(&sid));
    assert_eq!(d.body(pull), "4still");
    assert_eq!(d.machine.connection_count(), 0);
    let _ = RequestId(0);
}
