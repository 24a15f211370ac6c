//! The client machine in simulated time, without IO.

use std::time::Duration;

use rand::SeedableRng;

use super::*;

const MS: Duration = Duration::from_millis(1);

type Events = Vec<ClientEvent<u32>>;

fn client(reconnection: Reconnection) -> Client<u32> {
    Client::new(
        ClientConfig {
            reconnection,
            ..ClientConfig::default()
        }
        .with_rng(StdRng::seed_from_u64(3)),
    )
}

fn fast() -> Reconnection {
    Reconnection {
        backoff: Backoff {
            delay: 100 * MS,
            delay_max: 500 * MS,
            randomization_factor: 0.5,
        },
        ..Reconnection::default()
    }
}

fn events(c: &mut Client<u32>) -> Events {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn sent(c: &mut Client<u32>) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn text(s: &str) -> Transmit {
    Transmit::Text(Str::copy_from_str(s))
}

fn recv(c: &mut Client<u32>, s: &str, now: Instant) {
    c.handle_text(Bytes::from(s.to_owned()), now).unwrap();
}

/// A client with `/` connected at `t0`.
fn connected(t0: Instant) -> Client<u32> {
    let mut c = client(fast());
    c.join("/", None).unwrap();
    c.handle_open(t0);
    assert_eq!(sent(&mut c), [text("0")]);
    recv(&mut c, r#"0{"sid":"s"}"#, t0);
    assert!(matches!(events(&mut c).as_slice(), [ClientEvent::Connect { sid, .. }] if sid == "s"));
    c
}

#[test]
fn connects_every_namespace_with_its_auth_and_flushes_buffered_emits() {
    let t0 = Instant::now();
    let mut c = client(fast());
    c.join("/", None).unwrap();
    c.join(
        "/admin",
        Some(Value::from(serde_json::json!({"token": "abc"}))),
    )
    .unwrap();
    c.emit("/admin", "hi", &[Value::from(1)], None, t0).unwrap();
    assert!(
        sent(&mut c).is_empty(),
        "nothing before the connection opens"
    );
    c.handle_open(t0);
    assert_eq!(
        sent(&mut c),
        [text("0"), text(r#"0/admin,{"token":"abc"}"#)]
    );
    recv(&mut c, r#"0/admin,{"sid":"a1"}"#, t0);
    assert_eq!(sent(&mut c), [text(r#"2/admin,["hi",1]"#)]);
    assert!(c.is_connected("/admin"));
    assert!(!c.is_connected("/"));
}

#[test]
fn connect_error_removes_the_namespace_and_fails_its_acks() {
    let t0 = Instant::now();
    let mut c = client(fast());
    c.join("/private", None).unwrap();
    c.emit("/private", "x", &[], Some((7, None)), t0).unwrap();
    c.handle_open(t0);
    let _ = sent(&mut c);
    recv(
        &mut c,
        r#"4/private,{"message":"Not authorized","data":{"code":4}}"#,
        t0,
    );
    let ev = events(&mut c);
    assert!(
        matches!(
            ev.as_slice(),
            [
                ClientEvent::AckFailed { token: 7, failure: AckFailure::Disconnected, .. },
                ClientEvent::ConnectError { namespace, data },
                ClientEvent::Removed { .. },
            ] if namespace == "/private"
                && data.get("message").and_then(Value::as_str) == Some("Not authorized")
        ),
        "{ev:?}"
    );
    assert!(sent(&mut c).is_empty(), "the buffered emit is never sent");
    // Not retried on the next connection either.
    c.handle_close("transport close", t0);
    c.handle_timeout(t0 + Duration::from_secs(1));
    c.handle_open(t0 + Duration::from_secs(1));
    assert!(sent(&mut c).is_empty());
}

#[test]
fn ack_timeout_in_simulated_time_and_late_ack_ignored() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.emit("/", "slow", &[], Some((1, Some(t0 + 100 * MS))), t0)
        .unwrap();
    c.emit("/", "fast", &[], Some((2, Some(t0 + 200 * MS))), t0)
        .unwrap();
    assert_eq!(sent(&mut c), [text(r#"20["slow"]"#), text(r#"21["fast"]"#)]);
    assert_eq!(c.poll_timeout(), Some(t0 + 100 * MS));
    c.handle_timeout(t0 + 99 * MS);
    assert!(events(&mut c).is_empty());
    c.handle_timeout(t0 + 100 * MS);
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::AckFailed {
            token: 1,
            failure: AckFailure::Timeout,
            ..
        }]
    ));
    recv(&mut c, r#"30["late"]"#, t0 + 150 * MS);
    recv(&mut c, r#"31["in time"]"#, t0 + 150 * MS);
    let ev = events(&mut c);
    assert!(
        matches!(ev.as_slice(), [ClientEvent::AckReceived { token: 2, args, .. }] if args == &[Value::from("in time")]),
        "{ev:?}"
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_buffered_emit_whose_ack_times_out_is_not_sent() {
    let t0 = Instant::now();
    let mut c = client(fast());
    c.join("/", None).unwrap();
    c.emit("/", "gone", &[], Some((1, Some(t0 + 50 * MS))), t0)
        .unwrap();
    c.emit("/", "kept", &[], None, t0).unwrap();
    c.handle_timeout(t0 + 50 * MS);
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::AckFailed {
            failure: AckFailure::Timeout,
            ..
        }]
    ));
    c.handle_open(t0 + 60 * MS);
    recv(&mut c, r#"0{"sid":"s"}"#, t0 + 60 * MS);
    assert_eq!(sent(&mut c), [text("0"), text(r#"2["kept"]"#)]);
}

#[test]
fn binary_event_reassembled_and_binary_ack_sent() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    recv(
        &mut c,
        r#"52-12["upload",{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]"#,
        t0,
    );
    assert!(events(&mut c).is_empty(), "waits for the attachments");
    c.handle_binary(Bytes::from_static(&[1, 2]), t0).unwrap();
    assert!(events(&mut c).is_empty());
    c.handle_binary(Bytes::from_static(&[3]), t0).unwrap();
    let ev = events(&mut c);
    let [
        ClientEvent::Event {
            name, args, ack_id, ..
        },
    ] = ev.as_slice()
    else {
        panic!("{ev:?}");
    };
    assert_eq!(name, "upload");
    assert_eq!(*ack_id, Some(12));
    assert_eq!(
        args,
        &[
            Value::Binary(Bytes::from_static(&[1, 2])),
            Value::Object(vec![("b".into(), Value::Binary(Bytes::from_static(&[3])))]),
        ]
    );
    c.ack("/", 12, &[Value::Binary(Bytes::from_static(&[9]))])
        .unwrap();
    assert_eq!(
        sent(&mut c),
        [
            text(r#"61-12[{"_placeholder":true,"num":0}]"#),
            Transmit::Binary(Bytes::from_static(&[9]))
        ]
    );
    // A text packet before the last attachment is the server's fault.
    recv(&mut c, r#"51-["x",{"_placeholder":true,"num":0}]"#, t0);
    assert!(c.handle_text(Bytes::from_static(b"2[\"y\"]"), t0).is_err());
    assert!(c.handle_binary(Bytes::from_static(&[1]), t0).is_err());
}

#[test]
fn transport_close_disconnects_then_reconnects_after_the_backoff() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.handle_close("ping timeout", t0);
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::Disconnect {
            reason: "ping timeout",
            ..
        }]
    ));
    // Attempt 0: 100 ms +- 50 %.
    let at = c.poll_timeout().unwrap();
    assert!(at >= t0 + 50 * MS && at <= t0 + 150 * MS, "{:?}", at - t0);
    c.emit("/", "while away", &[], None, t0).unwrap();
    c.handle_timeout(at - MS);
    assert!(events(&mut c).is_empty());
    c.handle_timeout(at);
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::Reconnect]
    ));
    assert_eq!(c.poll_timeout(), None);
    // The new connection fails to open: connect_error, attempt 1 (200 ms +- 50 %).
    c.handle_close("timeout", at);
    let ev = events(&mut c);
    assert!(
        matches!(ev.as_slice(), [ClientEvent::ConnectError { data, .. }] if data.get("message").and_then(Value::as_str) == Some("timeout")),
        "{ev:?}"
    );
    let at2 = c.poll_timeout().unwrap();
    assert!(
        at2 >= at + 100 * MS && at2 <= at + 300 * MS,
        "{:?}",
        at2 - at
    );
    assert_eq!(c.attempt(), 2);
    c.handle_timeout(at2);
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::Reconnect]
    ));
    c.handle_open(at2);
    assert_eq!(c.attempt(), 0, "a successful open resets the backoff");
    assert_eq!(sent(&mut c), [text("0")]);
    recv(&mut c, r#"0{"sid":"again"}"#, at2);
    assert!(
        matches!(events(&mut c).as_slice(), [ClientEvent::Connect { sid, .. }] if sid == "again")
    );
    assert_eq!(sent(&mut c), [text(r#"2["while away"]"#)]);
}

#[test]
fn reconnection_backoff_stays_within_bounds_over_many_attempts() {
    let t0 = Instant::now();
    let mut c = client(fast());
    c.join("/", None).unwrap();
    let mut now = t0;
    for attempt in 0..30u32 {
        c.handle_close("transport error", now);
        let at = c.poll_timeout().unwrap();
        let base = 100.0 * 2f64.powi(attempt as i32);
        let waited = (at - now).as_secs_f64() * 1000.0;
        assert!(waited <= 500.0, "{attempt}: {waited}");
        assert!(
            waited >= (base * 0.5).min(500.0) - 1.0,
            "{attempt}: {waited}"
        );
        assert!(waited <= base * 1.5 + 1.0, "{attempt}: {waited}");
        c.handle_timeout(at);
        assert!(matches!(
            events(&mut c).last(),
            Some(ClientEvent::Reconnect)
        ));
        now = at;
    }
}

#[test]
fn gives_up_after_the_attempts_and_fails_acks() {
    let t0 = Instant::now();
    let mut c = client(Reconnection {
        attempts: Some(1),
        ..fast()
    });
    c.join("/", None).unwrap();
    c.emit("/", "x", &[], Some((5, None)), t0).unwrap();
    c.handle_close("transport error", t0);
    let _ = events(&mut c);
    c.handle_timeout(t0 + Duration::from_secs(1));
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::Reconnect]
    ));
    c.handle_close("transport error", t0 + Duration::from_secs(1));
    let ev = events(&mut c);
    assert!(
        matches!(
            ev.as_slice(),
            [
                ClientEvent::ConnectError { .. },
                ClientEvent::AckFailed {
                    token: 5,
                    failure: AckFailure::Disconnected,
                    ..
                },
                ClientEvent::Removed { .. },
                ClientEvent::GaveUp
            ]
        ),
        "{ev:?}"
    );
    assert!(c.is_done());
    assert_eq!(c.poll_timeout(), None);

    let mut off = client(Reconnection {
        enabled: false,
        ..fast()
    });
    off.handle_close("transport close", t0);
    assert!(matches!(events(&mut off).as_slice(), [ClientEvent::GaveUp]));
}

#[test]
fn server_disconnect_and_client_leave() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.join("/b", None).unwrap();
    assert_eq!(sent(&mut c), [text("0/b,")]);
    recv(&mut c, r#"0/b,{"sid":"b"}"#, t0);
    let _ = events(&mut c);
    c.emit("/", "a", &[], Some((1, None)), t0).unwrap();
    let _ = sent(&mut c);
    recv(&mut c, "1", t0);
    let ev = events(&mut c);
    assert!(
        matches!(
            ev.as_slice(),
            [
                ClientEvent::AckFailed { token: 1, .. },
                ClientEvent::Disconnect { reason: IO_SERVER_DISCONNECT, .. },
                ClientEvent::Removed { namespace },
            ] if namespace == "/"
        ),
        "{ev:?}"
    );
    c.leave("/b");
    assert_eq!(sent(&mut c), [text("1/b,")]);
    assert!(matches!(
        events(&mut c).as_slice(),
        [
            ClientEvent::Disconnect {
                reason: IO_CLIENT_DISCONNECT,
                ..
            },
            ClientEvent::Removed { .. }
        ]
    ));
    // Emitting on a namespace that is gone fails its ack at once.
    c.emit("/b", "x", &[], Some((2, None)), t0).unwrap();
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::AckFailed {
            token: 2,
            failure: AckFailure::Disconnected,
            ..
        }]
    ));
}

#[test]
fn close_disconnects_everything_and_stops() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.join("/pending", None).unwrap();
    let _ = sent(&mut c);
    c.close();
    assert_eq!(sent(&mut c), [text("1")], "DISCONNECT only where connected");
    let ev = events(&mut c);
    assert!(matches!(ev.last(), Some(ClientEvent::GaveUp)), "{ev:?}");
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(
                e,
                ClientEvent::Disconnect {
                    reason: IO_CLIENT_DISCONNECT,
                    ..
                }
            ))
            .count(),
        2
    );
    c.handle_close("forced close", t0);
    assert!(events(&mut c).is_empty(), "no reconnection after close");
    assert!(c.join("/", None).is_err());
}

#[test]
fn limits_on_buffer_and_pending_acks() {
    let t0 = Instant::now();
    let mut c: Client<u32> = Client::new(ClientConfig {
        max_buffered: 1,
        max_pending_acks: 1,
        ..ClientConfig::default()
    });
    c.join("/", None).unwrap();
    c.emit("/", "a", &[], Some((1, None)), t0).unwrap();
    c.emit("/", "b", &[], Some((2, None)), t0).unwrap();
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::AckFailed {
            token: 2,
            failure: AckFailure::BufferFull,
            ..
        }]
    ));
    c.handle_open(t0);
    recv(&mut c, "0{\"sid\":\"s\"}", t0);
    let _ = events(&mut c);
    c.emit("/", "c", &[], Some((3, None)), t0).unwrap();
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::AckFailed {
            token: 3,
            failure: AckFailure::TooManyPending,
            ..
        }]
    ));
    assert!(c.join("no-slash", None).is_err());
}

#[test]
fn hostile_messages_never_panic() {
    // Hostile input before, during and after the handshake only yields errors.
    let t0 = Instant::now();
    let inputs: [&[u8]; 8] = [
        b"",
        b"9",
        b"0/x,{\"sid\":1}",
        b"3/,",
        b"2[]",
        b"51-[{\"_placeholder\":true,\"num\":5}]",
        b"4{\"message\":null}",
        b"0{\"sid\":\"s\"}",
    ];
    for first in inputs {
        for second in inputs {
            let mut c = connected(t0);
            let _ = c.handle_text(Bytes::from_static(first), t0);
            let _ = c.handle_binary(Bytes::from_static(&[1]), t0);
            let _ = c.handle_text(Bytes::from_static(second), t0);
            let _ = events(&mut c);
        }
    }
}

#[test]
fn a_local_connect_error_reads_like_a_server_s() {
    let t0 = Instant::now();
    let mut c = client(fast());
    c.join("/private", None).unwrap();
    c.handle_open(t0);
    let _ = sent(&mut c);
    recv(&mut c, r#"4/private,{"message":"Not authorized"}"#, t0);
    let ev = events(&mut c);
    assert!(
        matches!(
            ev.as_slice(),
            [ClientEvent::ConnectError { data, .. }, ClientEvent::Removed { .. }]
                if *data == local_connect_error("Not authorized")
        ),
        "{ev:?}"
    );
}
