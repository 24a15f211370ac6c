//! Engine.IO beyond the official suite: bad input (each with its answer and
//! no session state left behind), protocol v3 (string, binary and base64
//! payloads, JSONP, the client-driven heartbeat), CORS, application close
//! and backpressure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Driver, MS, rng};
use duplex_polling::{
    CloseReason, Cors, EngineIoConfig, EngineIoServer, Error, Message, OverflowPolicy, QueueConfig,
    TransportName,
};
use http::Method;

fn driver(config: EngineIoConfig) -> Driver<EngineIoServer> {
    Driver::new(EngineIoServer::new(config.with_rng(rng())))
}

fn default_driver() -> Driver<EngineIoServer> {
    driver(EngineIoConfig::default())
}

fn open_polling(d: &mut Driver<EngineIoServer>, query: &str) -> String {
    let id = d.get(&format!("/?{query}"));
    assert_eq!(d.status(id), 200, "{}", d.body(id));
    d.opened().last().unwrap().to_string()
}

fn assert_no_state(d: &Driver<EngineIoServer>) {
    assert_eq!(d.machine.session_count(), 0, "sessions left behind");
    assert_eq!(d.machine.connection_count(), 0, "connections left behind");
    assert_eq!(d.machine.poll_timeout(), None, "timers left behind");
}

// ---- bad input -------------------------------------------------------------

#[test]
fn unknown_sid_gets_400_code_1_and_creates_nothing() {
    let mut d = default_driver();
    for req in [
        d.request(Method::GET, "/?EIO=4&transport=polling&sid=nope"),
        d.request(Method::POST, "/?EIO=4&transport=polling&sid=nope")
            .body("4x"),
        d.request(Method::GET, "/?EIO=4&transport=websocket&sid=nope")
            .websocket(),
    ] {
        let id = d.send_request(req);
        assert_eq!(d.status(id), 400);
        assert_eq!(d.body(id), r#"{"code":1,"message":"Session ID unknown"}"#);
        assert!(!d.written(id).accepted);
    }
    assert_no_state(&d);
}

#[test]
fn wrong_methods_get_400() {
    let mut d = default_driver();
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let r = d.request(
        Method::DELETE,
        &format!("/?EIO=4&transport=polling&sid={sid}"),
    );
    let id = d.send_request(r);
    assert_eq!(d.status(id), 400);
    let r = d.request(Method::OPTIONS, "/?EIO=4&transport=polling");
    let id = d.send_request(r);
    assert_eq!(d.body(id), r#"{"code":2,"message":"Bad handshake method"}"#);
    // The session is untouched by the bad request.
    assert_eq!(d.machine.session_count(), 1);
}

#[test]
fn oversized_post_gets_413_and_closes_the_session() {
    let mut d = driver(EngineIoConfig {
        max_http_buffer_size: 10,
        ..EngineIoConfig::default()
    });
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let path = format!("/?EIO=4&transport=polling&sid={sid}");
    let pull = d.get(&path);
    let ok = d.post(&path, "4123456789");
    assert_eq!(d.status(ok), 200, "exactly the limit is fine");
    assert!(!d.answered(pull), "no echo application here");
    let big = d.post(&path, "41234567890");
    assert_eq!(d.status(big), 413);
    assert_eq!(d.body(pull), "1", "the parked GET learns of the close");
    assert_eq!(d.closed()[0].1, CloseReason::PayloadTooLarge);
    assert_no_state(&d);
    let later = d.get(&path);
    assert_eq!(d.status(later), 400);
}

#[test]
fn oversized_websocket_message_closes_with_1009() {
    let mut d = driver(EngineIoConfig {
        max_http_buffer_size: 10,
        ..EngineIoConfig::default()
    });
    let ws = d.websocket("/?EIO=4&transport=websocket");
    d.ws_send(ws, "4this is too long");
    assert_eq!(d.written(ws).ws_closed.as_ref().map(|c| c.0), Some(1009));
    assert_no_state(&d);
}

#[test]
fn binary_body_in_v4_is_refused() {
    let mut d = default_driver();
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let r = d
        .request(
            Method::POST,
            &format!("/?EIO=4&transport=polling&sid={sid}"),
        )
        .header("Content-Type", "application/octet-stream")
        .body(vec![1u8, 2, 3]);
    let id = d.send_request(r);
    assert_eq!(d.status(id), 400);
    assert_eq!(d.closed()[0].1, CloseReason::TransportError);
    assert_no_state(&d);
}

#[test]
fn ping_from_a_v4_client_is_a_transport_error() {
    let mut d = default_driver();
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let id = d.post(&format!("/?EIO=4&transport=polling&sid={sid}"), "2");
    assert_eq!(d.status(id), 200);
    assert_eq!(d.closed()[0].1, CloseReason::TransportError);
    assert_no_state(&d);
}

#[test]
fn too_many_sessions_get_503_and_nothing_is_created() {
    let mut d = driver(EngineIoConfig {
        max_sessions: 2,
        ..EngineIoConfig::default()
    });
    open_polling(&mut d, "EIO=4&transport=polling");
    let ws = d.websocket("/?EIO=4&transport=websocket");
    assert!(d.written(ws).accepted);
    let third = d.get("/?EIO=4&transport=polling");
    assert_eq!(d.status(third), 503);
    let fourth = d.websocket("/?EIO=4&transport=websocket");
    assert_eq!(d.status(fourth), 503);
    assert!(!d.written(fourth).accepted);
    assert_eq!(d.machine.session_count(), 2);
    assert_eq!(d.opened().len(), 2);
}

#[test]
fn plain_get_for_the_websocket_transport_is_a_bad_request() {
    let mut d = default_driver();
    let id = d.get("/?EIO=4&transport=websocket");
    assert_eq!(d.status(id), 400);
    assert_eq!(d.body(id), r#"{"code":3,"message":"Bad request"}"#);
    assert_no_state(&d);
}

#[test]
fn disabled_transports_are_unknown() {
    let mut d = driver(EngineIoConfig {
        websocket: false,
        ..EngineIoConfig::default()
    });
    let ws = d.websocket("/?EIO=4&transport=websocket");
    assert_eq!(d.body(ws), r#"{"code":0,"message":"Transport unknown"}"#);
    let id = d.get("/?EIO=4&transport=polling");
    let open: serde_json::Value = serde_json::from_str(&d.body(id)[1..]).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!([]));
}

#[test]
fn aborted_poll_closes_the_session_as_the_reference_does() {
    let mut d = default_driver();
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let pull = d.get(&format!("/?EIO=4&transport=polling&sid={sid}"));
    d.abort(pull);
    assert!(!d.answered(pull));
    assert_eq!(d.closed()[0].1, CloseReason::TransportError);
    assert_no_state(&d);
}

#[test]
fn websocket_closed_by_the_client_closes_the_session() {
    let mut d = default_driver();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    d.ws_closed(ws);
    assert!(
        d.written(ws).ws_closed.is_none(),
        "no close for a closed socket"
    );
    assert_eq!(d.closed()[0].1, CloseReason::Client);
    assert_no_state(&d);
}

#[test]
fn closed_upgrade_socket_leaves_the_polling_session_alone() {
    let mut d = default_driver();
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let ws = d.websocket(&format!("/?EIO=4&transport=websocket&sid={sid}"));
    d.ws_send(ws, "2probe");
    d.ws_closed(ws);
    assert!(d.closed().is_empty());
    let path = format!("/?EIO=4&transport=polling&sid={sid}");
    let pull = d.get(&path);
    assert!(!d.answered(pull), "parks again instead of a noop");
    // A bad packet during the upgrade aborts it the same way.
    let ws2 = d.websocket(&format!("/?EIO=4&transport=websocket&sid={sid}"));
    d.ws_send(ws2, "4not a probe");
    assert!(d.written(ws2).ws_closed.is_some());
    assert_eq!(
        d.machine.transport(&d.opened()[0]),
        Some(TransportName::Polling)
    );
}

// ---- application close and backpressure ------------------------------------

#[test]
fn application_close_flushes_the_queue_then_sends_close_to_the_parked_get() {
    let mut d = default_driver();
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let session = d.opened()[0].clone();
    let pull = d.get(&format!("/?EIO=4&transport=polling&sid={sid}"));
    let now = d.now;
    d.machine.send(&session, Message::text("bye"), now).unwrap();
    d.machine.close(&session, now).unwrap();
    d.pump();
    assert_eq!(d.body(pull), "4bye\x1e1");
    assert_eq!(d.closed(), [(session.clone(), CloseReason::Application)]);
    assert!(matches!(
        d.machine.send(&session, Message::text("late"), now),
        Err(Error::NoSuchSession)
    ));
    assert_no_state(&d);
}

#[test]
fn application_close_without_a_get_waits_for_the_next_one_then_times_out() {
    let mut d = default_driver();
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine
        .send(&session, Message::text("last"), now)
        .unwrap();
    d.machine.close(&session, now).unwrap();
    d.pump();
    assert_eq!(d.closed().len(), 1, "closed for the application at once");
    let pull = d.get(&format!("/?EIO=4&transport=polling&sid={sid}"));
    assert_eq!(d.body(pull), "4last\x1e1");
    assert_no_state(&d);

    // Nobody comes: the session is forgotten after close_timeout.
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let session = d.opened()[1].clone();
    let now = d.now;
    d.machine.close(&session, now).unwrap();
    d.advance(Duration::from_secs(30) - MS);
    assert_eq!(d.machine.session_count(), 1);
    d.advance(MS);
    assert_no_state(&d);
    let pull = d.get(&format!("/?EIO=4&transport=polling&sid={sid}"));
    assert_eq!(d.status(pull), 400);
    assert_eq!(d.closed().len(), 2);
}

#[test]
fn application_close_on_websocket_flushes_then_closes() {
    let mut d = default_driver();
    let ws = d.websocket("/?EIO=4&transport=websocket");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine.send(&session, Message::text("x"), now).unwrap();
    d.machine.close(&session, now).unwrap();
    d.pump();
    let w = d.written(ws);
    assert_eq!(w.ws_texts()[1], "4x");
    assert_eq!(w.ws_closed, Some((1000, String::new())));
    assert_no_state(&d);
}

#[test]
fn full_queue_rejects_or_closes_per_policy() {
    let queue = QueueConfig {
        max_messages: 2,
        ..QueueConfig::default()
    };
    let mut d = driver(EngineIoConfig {
        queue,
        ..EngineIoConfig::default()
    });
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let session = d.opened()[0].clone();
    let now = d.now;
    assert_eq!(d.machine.send_capacity(&session), Some(2));
    d.machine.send(&session, Message::text("1"), now).unwrap();
    d.machine.send(&session, Message::text("2"), now).unwrap();
    assert_eq!(d.machine.send_capacity(&session), Some(0));
    assert!(matches!(
        d.machine.send(&session, Message::text("3"), now),
        Err(Error::QueueFull)
    ));
    // A poll drains it; the session went on.
    let pull = d.get(&format!("/?EIO=4&transport=polling&sid={sid}"));
    assert_eq!(d.body(pull), "41\x1e42");
    assert_eq!(d.machine.send_capacity(&session), Some(2));

    let mut d = driver(EngineIoConfig {
        queue: QueueConfig {
            overflow: OverflowPolicy::CloseSession,
            ..queue
        },
        ..EngineIoConfig::default()
    });
    open_polling(&mut d, "EIO=4&transport=polling");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine.send(&session, Message::text("1"), now).unwrap();
    d.machine.send(&session, Message::text("2"), now).unwrap();
    assert!(d.machine.send(&session, Message::text("3"), now).is_err());
    d.pump();
    assert_eq!(d.closed()[0].1, CloseReason::QueueOverflow);
    assert_no_state(&d);
}

#[test]
fn messages_that_belong_together_are_queued_all_or_none() {
    let mut d = driver(EngineIoConfig {
        queue: QueueConfig {
            max_messages: 3,
            ..QueueConfig::default()
        },
        ..EngineIoConfig::default()
    });
    let sid = open_polling(&mut d, "EIO=4&transport=polling");
    let session = d.opened()[0].clone();
    let now = d.now;
    d.machine.send(&session, Message::text("1"), now).unwrap();
    // A packet and two attachments: three messages, two free slots.
    let packet = vec![
        Message::text("451-[\"e\",{\"_placeholder\":true,\"num\":0}]"),
        Message::Binary(bytes::Bytes::from_static(&[1])),
    ];
    let mut too_many = packet.clone();
    too_many.push(Message::Binary(bytes::Bytes::from_static(&[2])));
    assert!(matches!(
        d.machine.send_all(&session, too_many, now),
        Err(Error::QueueFull)
    ));
    assert_eq!(
        d.machine.send_capacity(&session),
        Some(2),
        "nothing of it was queued"
    );
    d.machine.send_all(&session, packet, now).unwrap();
    let pull = d.get(&format!("/?EIO=4&transport=polling&sid={sid}"));
    assert_eq!(
        d.body(pull),
        "41\x1e4451-[\"e\",{\"_placeholder\":true,\"num\":0}]\x1ebAQ=="
    );
}

// ---- CORS ------------------------------------------------------------------

#[test]
fn cors_headers_preflight_and_origin_allow_list() {
    let mut d = driver(EngineIoConfig {
        cors: Cors {
            enabled: true,
            allowed_origins: Some(vec!["https://app.example".into()]),
        },
        ..EngineIoConfig::default()
    });
    let r = d
        .request(Method::GET, "/?EIO=4&transport=polling")
        .header("Origin", "https://app.example");
    let id = d.send_request(r);
    let response = d.response(id);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    let r = d
        .request(Method::OPTIONS, "/?EIO=4&transport=polling")
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Headers", "content-type");
    let id = d.send_request(r);
    assert_eq!(d.status(id), 204);
    // The preflight's answer, as engine.io's cors middleware gives it.
    let preflight = d.response(id);
    for (name, value) in [
        ("access-control-allow-headers", "content-type"),
        ("access-control-allow-methods", "GET, POST"),
        ("access-control-max-age", "86400"),
        ("access-control-allow-origin", "https://app.example"),
    ] {
        assert_eq!(preflight.header(name), Some(value), "{name}");
    }
    let r = d
        .request(Method::GET, "/?EIO=4&transport=polling")
        .header("Origin", "https://evil.example");
    let id = d.send_request(r);
    assert_eq!(d.status(id), 403);
    assert_eq!(d.body(id), r#"{"code":4,"message":"Forbidden"}"#);
    assert_eq!(d.machine.session_count(), 1);
}

// ---- protocol v3 -----------------------------------------------------------

fn v3() -> Driver<EngineIoServer> {
    driver(EngineIoConfig {
        allow_eio3: true,
        ping_interval: 300 * MS,
        ping_timeout: 200 * MS,
        ..EngineIoConfig::default()
    })
    .echo()
}

#[test]
fn v3_is_refused_unless_allowed() {
    let mut d = default_driver();
    let id = d.get("/?EIO=3&transport=polling");
    assert_eq!(
        d.body(id),
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
}

#[test]
fn v3_handshake_and_string_payloads_with_utf16_lengths() {
    let mut d = v3();
    let id = d.get("/?EIO=3&transport=polling");
    let body = d.body(id);
    let (len, packet) = body.split_once(':').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), packet.len());
    assert!(packet.starts_with("0{\"sid\":"));
    let sid = d.opened()[0].to_string();
    let path = format!("/?EIO=3&transport=polling&sid={sid}");
    // Lengths count UTF-16 code units: 4, é, and a surrogate pair.
    let push = d.post(&path, "4:4é😀");
    assert_eq!(d.body(push), "ok");
    assert_eq!(d.messages(), [Message::text("é😀")]);
    let pull = d.get(&path);
    assert_eq!(d.body(pull), "4:4é😀");
}

#[test]
fn v3_binary_payloads_both_ways_and_b64() {
    let mut d = v3();
    d.get("/?EIO=3&transport=polling");
    let sid = d.opened()[0].to_string();
    let path = format!("/?EIO=3&transport=polling&sid={sid}");
    let r = d
        .request(Method::POST, &path)
        .header("Content-Type", "application/octet-stream")
        .body(vec![1u8, 5, 0xff, 4, 1, 2, 3, 4]);
    let push = d.send_request(r);
    assert_eq!(d.body(push), "ok");
    assert_eq!(d.messages(), [Message::binary(vec![1u8, 2, 3, 4])]);
    let pull = d.get(&path);
    let response = d.response(pull);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(&response.body[..], [1u8, 5, 0xff, 4, 1, 2, 3, 4]);
    // The same echo for a client that asked for base64.
    d.post(&path, "10:b4AQIDBA==");
    let pull = d.get(&format!("{path}&b64=1"));
    assert_eq!(d.body(pull), "10:b4AQIDBA==");
}

#[test]
fn v3_jsonp_polling() {
    let mut d = v3();
    let id = d.get("/?EIO=3&transport=polling&j=0");
    let body = d.body(id);
    assert!(body.starts_with("___eio[0](\""), "{body}");
    assert!(body.ends_with("\");"));
    assert!(body.contains(r#":0{\"sid\":"#));
    let sid = d.opened()[0].to_string();
    let path = format!("/?EIO=3&transport=polling&sid={sid}&j=0");
    let r = d
        .request(Method::POST, &path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("d=6%3A4a%5Cnb%22c");
    let push = d.send_request(r);
    assert_eq!(d.body(push), "ok");
    assert_eq!(d.messages(), [Message::text("a\nb\"c")]);
    let pull = d.get(&path);
    assert_eq!(d.body(pull), r#"___eio[0]("6:4a\nb\"c");"#);
}

#[test]
fn v3_client_pings_and_the_server_answers_and_times_out() {
    let mut d = v3();
    d.get("/?EIO=3&transport=polling");
    let sid = d.opened()[0].to_string();
    let path = format!("/?EIO=3&transport=polling&sid={sid}");
    d.advance(250 * MS);
    d.post(&path, "1:2");
    let pull = d.get(&path);
    assert_eq!(d.body(pull), "1:3");
    // The v3 server never pings; without the client's pings it times out
    // pingInterval + pingTimeout after the last one.
    let pull = d.get(&path);
    d.advance(499 * MS);
    assert!(!d.answered(pull));
    d.advance(MS);
    assert_eq!(d.body(pull), "1:1");
    assert_eq!(d.closed()[0].1, CloseReason::PingTimeout);
}

#[test]
fn v3_websocket_binary_carries_the_type_byte() {
    let mut d = v3();
    let ws = d.websocket("/?EIO=3&transport=websocket");
    d.ws_send_binary(ws, &[4, 9, 9]);
    assert_eq!(d.messages(), [Message::binary(vec![9u8, 9])]);
    assert_eq!(
        d.written(ws).ws_messages[1],
        Message::binary(vec![4u8, 9, 9])
    );
}

#[test]
fn origin_allow_list_can_change_at_runtime() {
    let mut d = default_driver();
    d.machine.cors_mut().allowed_origins = Some(vec!["https://a.example".into()]);
    let r = d
        .request(Method::GET, "/?EIO=4&transport=polling")
        .header("Origin", "https://b.example");
    let id = d.send_request(r);
    assert_eq!(d.status(id), 403);
    d.machine.cors_mut().allowed_origins = None;
    let r = d
        .request(Method::GET, "/?EIO=4&transport=polling")
        .header("Origin", "https://b.example");
    let id = d.send_request(r);
    assert_eq!(d.status(id), 200);
}
