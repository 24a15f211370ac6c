//! SockJS beyond the suite: heartbeats and expiry driven by the clock,
//! streaming limits and reconnection without loss, bad input with no state
//! left behind, backpressure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Driver, MS, rng};
use duplex_polling::{
    CloseReason, Cors, Error, Message, OverflowPolicy, QueueConfig, SockJsConfig, SockJsServer,
};
use http::Method;

const S: Duration = Duration::from_secs(1);

fn driver(config: SockJsConfig) -> Driver<SockJsServer> {
    Driver::new(SockJsServer::new(config.with_rng(rng())))
}

fn assert_no_state(d: &Driver<SockJsServer>) {
    assert_eq!(d.machine.session_count(), 0, "sessions left behind");
    assert_eq!(d.machine.connection_count(), 0, "connections left behind");
    assert_eq!(d.machine.poll_timeout(), None, "timers left behind");
}

#[test]
fn heartbeat_on_a_parked_poll_exactly_when_due() {
    let mut d = driver(SockJsConfig::default());
    d.post("/0/s/xhr", "");
    let poll = d.post("/0/s/xhr", "");
    d.advance(25 * S - MS);
    assert!(!d.answered(poll), "not before 25 s");
    d.advance(MS);
    assert_eq!(d.body(poll), "h\n");
}

#[test]
fn heartbeat_on_streams_and_websockets_repeats() {
    let mut d = driver(SockJsConfig::default());
    let stream = d.get("/0/s/eventsource");
    let ws = d.websocket("/0/w/websocket");
    d.advance(25 * S);
    d.advance(25 * S);
    assert_eq!(
        d.written(stream).chunk_texts()[1..],
        ["data: o\r\n\r\n", "data: h\r\n\r\n", "data: h\r\n\r\n"]
    );
    assert_eq!(d.written(ws).ws_texts(), ["o", "h", "h"]);
}

#[test]
fn session_expires_after_the_disconnect_delay_without_a_receiver() {
    let mut d = driver(SockJsConfig::default());
    d.post("/0/s/xhr", "");
    let session = d.opened()[0].clone();
    d.advance(5 * S - MS);
    assert!(d.machine.is_open(&session));
    d.advance(MS);
    assert_eq!(d.closed(), [(session.clone(), CloseReason::Expired)]);
    assert_no_state(&d);
    // The key is free again: a new session.
    let id = d.post("/0/s/xhr", "");
    assert_eq!(d.body(id), "o\n");
    assert_eq!(d.opened().len(), 2);
}

#[test]
fn an_attached_receiver_keeps_the_session_alive() {
    let mut d = driver(SockJsConfig::default());
    d.get("/0/s/eventsource");
    d.advance(60 * S);
    assert_eq!(d.machine.session_count(), 1);
    assert!(d.closed().is_empty());
}

#[test]
fn closed_session_repeats_its_close_frame_until_it_expires() {
    let mut d = driver(SockJsConfig::default());
    d.post("/0/s/xhr", "");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine.close(&session, 3001, "bye", now).unwrap();
    d.pump();
    assert_eq!(d.closed(), [(session.clone(), CloseReason::Application)]);
    for _ in 0..3 {
        d.advance(4 * S);
        let id = d.post("/0/s/xhr", "");
        assert_eq!(d.body(id), "c[3001,\"bye\"]\n");
    }
    d.advance(5 * S);
    assert_no_state(&d);
    assert_eq!(d.closed().len(), 1, "closed once");
}

#[test]
fn messages_sent_before_close_are_delivered_before_the_close_frame() {
    let mut d = driver(SockJsConfig::default());
    let stream = d.post("/0/s/xhr_streaming", "");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine
        .send(&session, Message::text("last"), now)
        .unwrap();
    d.machine.close(&session, 3000, "done", now).unwrap();
    d.pump();
    let w = d.written(stream);
    assert_eq!(
        w.chunk_texts()[1..],
        ["o\n", "a[\"last\"]\n", "c[3000,\"done\"]\n"]
    );
    assert!(w.stream_ended);
}

#[test]
fn streaming_limit_then_reconnect_loses_and_duplicates_nothing() {
    let mut d = driver(SockJsConfig {
        response_limit: 100,
        ..SockJsConfig::default()
    });
    let mut stream = d.post("/0/s/xhr_streaming", "");
    let session = d.opened()[0].clone();
    let mut received = Vec::new();
    let mut read = 1; // past the prelude
    for i in 0..50 {
        let now = d.now;
        d.machine
            .send(&session, Message::text(format!("m{i}")), now)
            .unwrap();
        d.pump();
        let w = d.written(stream);
        for chunk in &w.chunk_texts()[read..] {
            if let Some(array) = chunk.strip_prefix('a') {
                let batch: Vec<String> = serde_json::from_str(array.trim()).unwrap();
                received.extend(batch);
            }
        }
        read = w.chunks.len();
        if w.stream_ended {
            // The client reconnects at once with the same session key.
            stream = d.post("/0/s/xhr_streaming", "");
            read = 1;
        }
    }
    let expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    assert_eq!(received, expected);
}

#[test]
fn oversized_send_gets_413_and_closes_the_session() {
    let mut d = driver(SockJsConfig {
        max_body: 16,
        ..SockJsConfig::default()
    })
    .echo();
    d.post("/0/s/xhr", "");
    let ok = d.post("/0/s/xhr_send", r#"["0123456789ab"]"#);
    assert_eq!(d.status(ok), 204);
    let big = d.post("/0/s/xhr_send", r#"["0123456789abc"]"#);
    assert_eq!(d.status(big), 413);
    assert_eq!(d.closed()[0].1, CloseReason::PayloadTooLarge);
    let poll = d.post("/0/s/xhr", "");
    assert_eq!(d.body(poll), "a[\"0123456789ab\"]\n");
    let poll = d.post("/0/s/xhr", "");
    assert_eq!(d.body(poll), "c[1009,\"Message too big\"]\n");
    // To an unknown session: 413 and nothing created.
    let big = d.post("/0/t/xhr_send", r#"["0123456789abc"]"#);
    assert_eq!(d.status(big), 413);
    assert_eq!(d.machine.session_count(), 1);
}

#[test]
fn bad_sends_leave_no_session_behind() {
    let mut d = driver(SockJsConfig::default());
    for (body, status) in [(r#"["x"]"#, 404), ("[\"x", 500), ("", 500), ("{}", 500)] {
        let id = d.post("/0/unknown/xhr_send", body);
        assert_eq!(d.status(id), status, "{body}");
        let r = d
            .request(Method::POST, "/0/unknown/jsonp_send")
            .body(format!("d={body}"))
            .header("Content-Type", "application/x-www-form-urlencoded");
        let id = d.send_request(r);
        assert_eq!(d.status(id), status, "jsonp {body}");
    }
    for bad in [
        "/0/unknown/htmlfile",
        "/0/unknown/jsonp?c=a(b)",
        "/0/unknown/websocket",
    ] {
        let id = d.get(bad);
        assert!(d.status(id) >= 400, "{bad}");
    }
    let id = d.get("/0/unknown/xhr");
    assert_eq!(d.status(id), 405);
    assert_eq!(d.response(id).header("allow"), Some("POST, OPTIONS"));
    assert_no_state(&d);
}

#[test]
fn too_many_sessions_get_503() {
    let mut d = driver(SockJsConfig {
        max_sessions: 2,
        ..SockJsConfig::default()
    });
    d.post("/0/a/xhr", "");
    d.websocket("/websocket");
    let id = d.post("/0/c/xhr", "");
    assert_eq!(d.status(id), 503);
    let id = d.get("/0/c/eventsource");
    assert_eq!(d.status(id), 503);
    assert!(d.written(id).stream_started.is_none());
    let id = d.websocket("/0/c/websocket");
    assert_eq!(d.status(id), 503);
    // Existing sessions still work.
    let id = d.post("/0/a/xhr_send", r#"["x"]"#);
    assert_eq!(d.status(id), 204);
    assert_eq!(d.machine.session_count(), 2);
}

#[test]
fn origin_allow_list_refuses_with_403() {
    let mut d = driver(SockJsConfig {
        cors: Cors {
            enabled: true,
            allowed_origins: Some(vec!["https://ok.example".into()]),
        },
        ..SockJsConfig::default()
    });
    let r = d
        .request(Method::POST, "/0/s/xhr")
        .header("Origin", "https://evil.example");
    let id = d.send_request(r);
    assert_eq!(d.status(id), 403);
    let r = d
        .request(Method::POST, "/0/s/xhr")
        .header("Origin", "https://ok.example");
    let id = d.send_request(r);
    assert_eq!(d.body(id), "o\n");
}

#[test]
fn binary_is_refused_except_on_the_raw_websocket() {
    let mut d = driver(SockJsConfig::default());
    d.post("/0/s/xhr", "");
    let polling = d.opened()[0].clone();
    let now = d.now;
    assert!(matches!(
        d.machine.send(&polling, Message::binary(vec![1u8]), now),
        Err(Error::BinaryNotSupported)
    ));
    let ws = d.websocket("/websocket");
    let raw = d.opened()[1].clone();
    d.machine
        .send(&raw, Message::binary(vec![1u8, 2]), now)
        .unwrap();
    d.pump();
    assert_eq!(d.written(ws).ws_messages, [Message::binary(vec![1u8, 2])]);
    d.ws_send_binary(ws, &[3]);
    assert_eq!(d.messages(), [Message::binary(vec![3u8])]);
}

#[test]
fn session_websocket_accepts_a_single_json_string() {
    let mut d = driver(SockJsConfig::default());
    let ws = d.websocket("/0/s/websocket");
    d.ws_send(ws, "\"one\"");
    d.ws_send(ws, r#"["two","three"]"#);
    assert_eq!(
        d.messages(),
        [
            Message::text("one"),
            Message::text("two"),
            Message::text("three")
        ]
    );
}

#[test]
fn queue_full_rejects_or_closes() {
    let queue = QueueConfig {
        max_messages: 1,
        ..QueueConfig::default()
    };
    let mut d = driver(SockJsConfig {
        queue,
        ..SockJsConfig::default()
    });
    d.post("/0/s/xhr", "");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine.send(&session, Message::text("a"), now).unwrap();
    assert!(matches!(
        d.machine.send(&session, Message::text("b"), now),
        Err(Error::QueueFull)
    ));
    assert_eq!(d.machine.send_capacity(&session), Some(0));

    let mut d = driver(SockJsConfig {
        queue: QueueConfig {
            overflow: OverflowPolicy::CloseSession,
            ..queue
        },
        ..SockJsConfig::default()
    });
    d.post("/0/s/xhr", "");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine.send(&session, Message::text("a"), now).unwrap();
    assert!(d.machine.send(&session, Message::text("b"), now).is_err());
    d.pump();
    assert_eq!(d.closed()[0].1, CloseReason::QueueOverflow);
    let id = d.post("/0/s/xhr", "");
    assert_eq!(d.body(id), "a[\"a\"]\n");
    let id = d.post("/0/s/xhr", "");
    assert_eq!(d.body(id), "c[1011,\"Queue overflow\"]\n");
}

#[test]
fn wall_clock_sets_expires_a_year_ahead() {
    let mut d = driver(SockJsConfig::default());
    let mut r = d.request(Method::GET, "/iframe.html");
    r.wall_clock = Some(std::time::UNIX_EPOCH + Duration::from_secs(784_111_777));
    let id = d.send_request(r);
    assert_eq!(
        d.response(id).header("expires"),
        Some("Mon, 06 Nov 1995 08:49:37 GMT")
    );
}

#[test]
fn the_named_closes_send_their_codes() {
    let mut d = driver(SockJsConfig::default());
    d.post("/0/a/xhr", "");
    d.post("/0/b/xhr", "");
    let opened = d.opened();
    let [a, b] = opened.as_slice() else {
        panic!("two sessions: {opened:?}")
    };
    let now = d.now;
    d.machine.close_normally(a, now).unwrap();
    d.machine.close_application_too_slow(b, now).unwrap();
    let id = d.post("/0/a/xhr", "");
    assert_eq!(d.body(id), "c[1000,\"Normal closure\"]\n");
    let id = d.post("/0/b/xhr", "");
    assert_eq!(d.body(id), "c[1011,\"Application too slow\"]\n");
    assert!(matches!(
        d.machine.close_normally(a, now),
        Err(Error::NoSuchSession)
    ));
}
