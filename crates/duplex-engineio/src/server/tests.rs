use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::SeedableRng;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn server() -> Server<u64> {
    Server::new(
        ServerConfig {
            ping_interval: 300 * MS,
            ping_timeout: 200 * MS,
            ..ServerConfig::default()
        }
        .with_rng(StdRng::seed_from_u64(7)),
    )
}

fn transmits(s: &mut Server<u64>) -> Vec<ServerTransmit<u64>> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn events(s: &mut Server<u64>) -> Vec<ServerEvent<u64>> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A polling session opened at `t0`; its id.
fn open_polling(s: &mut Server<u64>, t0: Instant) -> SessionId {
    s.handle_handshake(1, TransportKind::Polling, ProtocolVersion::V4, t0);
    transmits(s);
    match events(s).pop() {
        Some(ServerEvent::Opened { session, .. }) => session,
        other => panic!("{other:?}"),
    }
}

fn post(body: &'static [u8]) -> PostBody {
    PostBody::Payload {
        body: Bytes::from_static(body),
        octet_stream: false,
    }
}

fn text(t: &str) -> WsMessage {
    WsMessage::Text(crate::Utf8Bytes::from(t.to_owned()))
}

#[test]
fn polling_handshake_announces_the_upgrade_and_heartbeat() {
    let mut s = server();
    let t0 = Instant::now();
    s.handle_handshake(9, TransportKind::Polling, ProtocolVersion::V4, t0);
    let [
        ServerTransmit::Packets {
            request: 9,
            packets,
            version,
        },
    ] = &transmits(&mut s)[..]
    else {
        panic!()
    };
    assert_eq!(*version, ProtocolVersion::V4);
    let open = OpenPacket::from_packet(&packets[0]).unwrap();
    assert_eq!(open.upgrades, ["websocket"]);
    assert_eq!((open.ping_interval, open.ping_timeout), (300, 200));
    assert!(matches!(
        events(&mut s)[..],
        [ServerEvent::Opened {
            connection: 9,
            transport: TransportKind::Polling,
            ..
        }]
    ));
    assert_eq!(s.poll_timeout(), Some(t0 + 300 * MS));
    assert_eq!(s.connection_count(), 0, "the handshake request is answered");
}

#[test]
fn websocket_handshake_accepts_and_sends_open_first() {
    let mut s = server();
    let t0 = Instant::now();
    s.handle_handshake(3, TransportKind::WebSocket, ProtocolVersion::V4, t0);
    let out = transmits(&mut s);
    assert_eq!(out[0], ServerTransmit::AcceptWebSocket { connection: 3 });
    let ServerTransmit::Send {
        connection: 3,
        message: WsMessage::Text(t),
    } = &out[1]
    else {
        panic!("{out:?}")
    };
    assert!(t.as_str().starts_with("0{\"sid\":"));
    assert!(t.as_str().contains("\"upgrades\":[]"));
    let sid = match events(&mut s).pop() {
        Some(ServerEvent::Opened { session, .. }) => session,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.transport(sid.as_str()), Some(TransportKind::WebSocket));
    s.handle_message(3, text("4hi"), t0);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Message {
            session: sid.clone(),
            message: text("hi")
        }]
    );
    s.handle_closed(3, t0);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Closed {
            session: sid,
            reason: CloseReason::Client
        }]
    );
    assert_eq!((s.session_count(), s.connection_count()), (0, 0));
}

#[test]
fn a_pong_after_the_ping_timeout_does_not_save_the_session_even_without_handle_timeout() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    // Nobody called handle_timeout: the ping was due at 300 ms, the pong
    // at 500 ms. A POST with the pong at 600 ms is too late.
    s.handle_poll(sid.as_str(), 2, t0 + 600 * MS);
    let out = transmits(&mut s);
    assert_eq!(
        out[0],
        ServerTransmit::Refuse {
            request: 2,
            refusal: Refusal::Code(ServerErrorCode::UnknownSid)
        }
    );
    assert_eq!(
        events(&mut s),
        [ServerEvent::Closed {
            session: sid,
            reason: CloseReason::PingTimeout
        }]
    );
}

#[test]
fn the_pong_wait_runs_from_when_the_ping_was_due_not_from_a_late_wakeup() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    s.handle_poll(sid.as_str(), 2, t0);
    // Woken late, at 450 ms: the ping went out at 300 ms, so the pong is
    // due at 500 ms, not 650 ms.
    s.handle_timeout(t0 + 450 * MS);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Packets {
            request: 2,
            packets: vec![Packet::ping()],
            version: ProtocolVersion::V4
        }]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + 500 * MS));
    s.handle_post(sid.as_str(), 3, post(b"3"), t0 + 499 * MS);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::PostAccepted { request: 3 }]
    );
    assert!(s.is_open(sid.as_str()));
    assert_eq!(s.poll_timeout(), Some(t0 + 799 * MS), "next ping");
}

#[test]
fn upgrade_probe_noop_and_switch() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    s.handle_poll(sid.as_str(), 2, t0);
    s.handle_upgrade(sid.as_str(), 5, t0);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::AcceptWebSocket { connection: 5 }]
    );
    s.handle_message(5, text("2probe"), t0);
    let out = transmits(&mut s);
    assert_eq!(
        out[0],
        ServerTransmit::Send {
            connection: 5,
            message: text("3probe")
        }
    );
    assert_eq!(
        out[1],
        ServerTransmit::Packets {
            request: 2,
            packets: vec![Packet::Noop],
            version: ProtocolVersion::V4
        }
    );
    s.handle_message(5, text("5"), t0);
    assert_eq!(s.transport(sid.as_str()), Some(TransportKind::WebSocket));
    s.send(sid.as_str(), text("hello"), t0).unwrap();
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Send {
            connection: 5,
            message: text("4hello")
        }]
    );
    // Polling is over for this session.
    s.handle_poll(sid.as_str(), 6, t0);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Refuse {
            request: 6,
            refusal: Refusal::Code(ServerErrorCode::BadRequest)
        }]
    );
}

#[test]
fn overlapping_polls_close_the_session() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    s.handle_poll(sid.as_str(), 2, t0);
    s.handle_poll(sid.as_str(), 3, t0);
    assert_eq!(
        transmits(&mut s),
        [
            ServerTransmit::Refuse {
                request: 3,
                refusal: Refusal::Code(ServerErrorCode::BadRequest)
            },
            ServerTransmit::Packets {
                request: 2,
                packets: vec![Packet::Close],
                version: ProtocolVersion::V4
            },
        ]
    );
    assert_eq!(
        events(&mut s),
        [ServerEvent::Closed {
            session: sid,
            reason: CloseReason::TransportError
        }]
    );
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn oversized_post_and_application_close_with_close_timeout() {
    let mut s = Server::new(ServerConfig {
        max_payload: 4,
        ..ServerConfig::default()
    });
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    s.handle_post(sid.as_str(), 2, post(b"4hello"), t0);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Refuse {
            request: 2,
            refusal: Refusal::PayloadTooLarge
        }]
    );
    assert_eq!(
        events(&mut s),
        [ServerEvent::Closed {
            session: sid,
            reason: CloseReason::PayloadTooLarge
        }]
    );

    let sid = open_polling(&mut s, t0);
    s.send(sid.as_str(), text("bye"), t0).unwrap();
    s.close(sid.as_str(), t0).unwrap();
    assert_eq!(
        s.send(sid.as_str(), text("x"), t0).unwrap_err().to_string(),
        Error::NoSuchSession.to_string()
    );
    assert_eq!(
        events(&mut s),
        [ServerEvent::Closed {
            session: sid.clone(),
            reason: CloseReason::Application
        }]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    s.handle_poll(sid.as_str(), 3, t0);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Packets {
            request: 3,
            packets: vec![Packet::message("bye"), Packet::Close],
            version: ProtocolVersion::V4
        }]
    );
    assert_eq!(s.session_count(), 0);
}

#[test]
fn send_all_is_all_or_none() {
    let mut s = Server::new(ServerConfig {
        queue: QueueLimits {
            max_messages: 2,
            ..QueueLimits::default()
        },
        ..ServerConfig::default()
    });
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    let three = vec![text("a"), text("b"), text("c")];
    assert!(matches!(
        s.send_all(sid.as_str(), three, t0),
        Err(Error::QueueFull)
    ));
    assert_eq!(s.send_capacity(sid.as_str()), Some(2));
    s.send_all(
        sid.as_str(),
        vec![text("a"), WsMessage::Binary(Bytes::from_static(b"\x01"))],
        t0,
    )
    .unwrap();
    s.handle_poll(sid.as_str(), 2, t0);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Packets {
            request: 2,
            packets: vec![Packet::message("a"), Packet::binary(&b"\x01"[..])],
            version: ProtocolVersion::V4
        }]
    );
}

/// Feeds `messages` to a fresh polling session as POST bodies cut at
/// `cuts` (packet boundaries) and returns what the application saw.
fn post_in_pieces(messages: &[String], cuts: &[usize]) -> Vec<ServerEvent<u64>> {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    let packets: Vec<Packet> = messages
        .iter()
        .map(|m| Packet::message(m.clone()))
        .collect();
    let mut start = 0;
    let mut id = 10;
    for end in cuts.iter().copied().chain([packets.len()]) {
        let end = end.clamp(start, packets.len());
        if end > start {
            let body = PayloadFormat::V4.encode_to_bytes(&packets[start..end]);
            s.handle_post(
                sid.as_str(),
                id,
                PostBody::Payload {
                    body,
                    octet_stream: false,
                },
                t0,
            );
            id += 1;
        }
        start = end;
    }
    events(&mut s)
}

proptest! {
    /// Any split of the client's packets over POSTs (down to one packet per
    /// POST) gives the same events as sending them in one.
    #[test]
    fn events_do_not_depend_on_how_packets_are_split_over_posts(
        messages in proptest::collection::vec("[a-z\u{e9}\u{1f600} ]{0,12}", 1..20),
        mut cuts in proptest::collection::vec(0usize..20, 0..8),
    ) {
        cuts.sort_unstable();
        let whole = post_in_pieces(&messages, &[]);
        prop_assert_eq!(whole.len(), messages.len());
        prop_assert_eq!(post_in_pieces(&messages, &cuts), whole.clone());
        let one_by_one: Vec<usize> = (1..messages.len()).collect();
        prop_assert_eq!(post_in_pieces(&messages, &one_by_one), whole);
    }

    /// Whatever the inputs and their timing, the machine never panics, every
    /// request gets at most one answer, and once every session is closed
    /// (one by one, or all at once by `close_all`) no connection is left
    /// behind.
    #[test]
    fn random_inputs_never_panic_nor_leak(ops in proptest::collection::vec((0u8..11, 0u64..6, 0u64..400), 0..60)) {
        let mut s = server();
        let t0 = Instant::now();
        let mut now = t0;
        let mut sids: Vec<SessionId> = Vec::new();
        let mut answered = std::collections::HashSet::new();
        let mut next = 100u64;
        for (op, pick, dt) in ops {
            now += MS * dt as u32;
            next += 1;
            let sid = sids.get(pick as usize % sids.len().max(1)).map(|s| s.as_str().to_owned()).unwrap_or_default();
            let conn = if op >= 5 { 100 + pick } else { next };
            match op {
                0 => s.handle_handshake(next, if pick % 2 == 0 { TransportKind::Polling } else { TransportKind::WebSocket }, ProtocolVersion::V4, now),
                1 => s.handle_poll(&sid, next, now),
                2 => s.handle_post(&sid, next, post(if pick % 2 == 0 { b"3\x1e4x" } else { b"2\x1e1" }), now),
                3 => s.handle_upgrade(&sid, next, now),
                4 => { let _ = s.send(&sid, text("m"), now); }
                5 => s.handle_message(conn, text(["2probe", "5", "3", "4a", "1", "x"][pick as usize % 6]), now),
                6 => s.handle_closed(conn, now),
                7 => { let _ = s.close(&sid, now); }
                9 => {
                    s.close_all(now);
                    prop_assert_eq!((s.session_count(), s.connection_count()), (0, 0));
                }
                10 => s.handle_sent(conn, pick as usize),
                _ => s.handle_timeout(now),
            }
            let _ = s.writable(&sid);
            for t in transmits(&mut s) {
                let once = match &t {
                    ServerTransmit::Packets { request, .. } | ServerTransmit::PostAccepted { request } | ServerTransmit::Refuse { request, .. } => Some(*request),
                    ServerTransmit::AcceptWebSocket { connection } => Some(*connection),
                    _ => None,
                };
                if let Some(id) = once {
                    prop_assert!(answered.insert(id), "request {} answered twice", id);
                }
            }
            for e in events(&mut s) {
                match e {
                    ServerEvent::Opened { session, .. } => sids.push(session),
                    ServerEvent::Closed { session, .. } => sids.retain(|s| *s != session),
                    ServerEvent::Message { .. } => {}
                }
            }
        }
        for sid in sids.clone() {
            let _ = s.close(sid.as_str(), now);
        }
        s.handle_timeout(now + Duration::from_secs(60));
        prop_assert_eq!(s.session_count(), 0);
        prop_assert_eq!(s.connection_count(), 0);
    }
}

/// A WebSocket session opened at `t0` on connection `conn`; its id.
fn open_websocket(s: &mut Server<u64>, conn: u64, t0: Instant) -> SessionId {
    s.handle_handshake(conn, TransportKind::WebSocket, ProtocolVersion::V4, t0);
    transmits(s);
    match events(s).pop() {
        Some(ServerEvent::Opened { session, .. }) => session,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_polling_session_is_writable_only_with_a_poll_parked_and_nothing_queued() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_polling(&mut s, t0);
    assert!(!s.writable(sid.as_str()), "no GET parked");
    s.handle_poll(sid.as_str(), 2, t0);
    assert!(s.writable(sid.as_str()), "a GET is parked");
    s.send(sid.as_str(), text("a"), t0).unwrap();
    assert!(
        !s.writable(sid.as_str()),
        "the parked GET is taken by the first message, as the reference's send"
    );
    assert_eq!(transmits(&mut s).len(), 1);
    assert!(!s.writable(sid.as_str()), "answered: no GET parked");
    s.handle_poll(sid.as_str(), 3, t0 + MS);
    assert!(s.writable(sid.as_str()));
    assert!(!s.writable("nope"));
}

#[test]
fn a_websocket_is_writable_once_everything_handed_out_is_reported_written() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_websocket(&mut s, 5, t0);
    assert!(
        !s.writable(sid.as_str()),
        "the open packet is not written yet"
    );
    s.handle_sent(5, 1);
    assert!(s.writable(sid.as_str()));
    s.send(sid.as_str(), text("a"), t0).unwrap();
    s.send(sid.as_str(), text("b"), t0).unwrap();
    assert!(!s.writable(sid.as_str()), "queued");
    assert_eq!(transmits(&mut s).len(), 2);
    assert!(!s.writable(sid.as_str()), "in flight");
    s.handle_sent(5, 1);
    assert!(!s.writable(sid.as_str()), "one still in flight");
    s.handle_sent(5, 7);
    assert!(s.writable(sid.as_str()), "reports past the count saturate");
    s.handle_sent(99, 1);
    s.close(sid.as_str(), t0).unwrap();
    assert!(!s.writable(sid.as_str()), "closed");
}

#[test]
fn close_all_closes_every_session_as_the_reference_server_close() {
    let mut s = server();
    let t0 = Instant::now();
    let parked = open_polling(&mut s, t0);
    s.handle_poll(parked.as_str(), 10, t0);
    let idle = open_polling(&mut s, t0);
    s.send(idle.as_str(), text("dropped"), t0).unwrap();
    let ws = open_websocket(&mut s, 20, t0);
    let closing = open_polling(&mut s, t0);
    s.close(closing.as_str(), t0).unwrap();
    events(&mut s);
    transmits(&mut s);

    assert_eq!(s.close_all(t0 + MS), 3, "three were open");
    let mut sent = transmits(&mut s);
    sent.sort_by_key(|t| format!("{t:?}"));
    assert_eq!(
        sent,
        [
            ServerTransmit::CloseWebSocket {
                connection: 20,
                code: 1000
            },
            ServerTransmit::Packets {
                request: 10,
                packets: vec![Packet::Close],
                version: ProtocolVersion::V4,
            },
        ]
    );
    let closed: Vec<SessionId> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            ServerEvent::Closed {
                session,
                reason: CloseReason::Application,
            } => session,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut expected = vec![parked, idle.clone(), ws];
    expected.sort();
    assert_eq!(closed, expected, "once each, by session id");
    assert_eq!((s.session_count(), s.connection_count()), (0, 0));
    assert_eq!(s.poll_timeout(), None);

    // The idle session's next poll: unknown, so its client reconnects.
    s.handle_poll(idle.as_str(), 11, t0 + 2 * MS);
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Refuse {
            request: 11,
            refusal: Refusal::Code(ServerErrorCode::UnknownSid)
        }]
    );
    // New clients are still served.
    open_polling(&mut s, t0 + 3 * MS);
    assert_eq!(s.session_count(), 1);
}

#[test]
fn a_probe_pings_now_and_a_pong_reports_the_session_alive_once() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_websocket(&mut s, 1, t0);
    s.probe(sid.as_str(), t0 + 50 * MS).unwrap();
    assert_eq!(
        transmits(&mut s),
        [ServerTransmit::Send {
            connection: 1,
            message: text("2")
        }]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + 250 * MS), "ping timeout");
    // Probed again before any answer: nothing more.
    s.probe(sid.as_str(), t0 + 60 * MS).unwrap();
    assert!(transmits(&mut s).is_empty());
    assert_eq!(s.poll_alive(), None);
    s.handle_message(1, text("3"), t0 + 100 * MS);
    assert_eq!(s.poll_alive(), Some(sid.clone()));
    assert_eq!(s.poll_alive(), None);
    // The next packet is no news: nobody asked.
    s.handle_message(1, text("4hi"), t0 + 120 * MS);
    assert_eq!(s.poll_alive(), None);
    assert!(s.is_open(sid.as_str()));
    assert_eq!(s.poll_timeout(), Some(t0 + 400 * MS), "the next ping");
    assert!(matches!(
        s.probe("nope", t0 + 130 * MS),
        Err(Error::NoSuchSession)
    ));
}

#[test]
fn a_probe_unanswered_within_the_ping_timeout_closes_the_session() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_websocket(&mut s, 1, t0);
    events(&mut s);
    s.probe(sid.as_str(), t0 + 50 * MS).unwrap();
    transmits(&mut s);
    s.handle_timeout(t0 + 249 * MS);
    assert!(s.is_open(sid.as_str()));
    s.handle_timeout(t0 + 250 * MS);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Closed {
            session: sid,
            reason: CloseReason::PingTimeout
        }]
    );
    assert_eq!(s.poll_alive(), None);
}

#[test]
fn a_websocket_message_goes_out_behind_what_is_queued_and_before_a_close() {
    let mut s = server();
    let t0 = Instant::now();
    let sid = open_websocket(&mut s, 1, t0);
    // Nothing queued: out at once, with no flush needed to carry it.
    s.send(sid.as_str(), text("a"), t0).unwrap();
    // The ping due at 300 ms is queued by the clock `send` brings along,
    // ahead of the message sent with it.
    s.send(sid.as_str(), text("b"), t0 + 300 * MS).unwrap();
    s.send(sid.as_str(), text("c"), t0 + 300 * MS).unwrap();
    s.close(sid.as_str(), t0 + 300 * MS).unwrap();
    assert_eq!(
        transmits(&mut s),
        [
            ServerTransmit::Send {
                connection: 1,
                message: text("4a")
            },
            ServerTransmit::Send {
                connection: 1,
                message: text("2")
            },
            ServerTransmit::Send {
                connection: 1,
                message: text("4b")
            },
            ServerTransmit::Send {
                connection: 1,
                message: text("4c")
            },
            ServerTransmit::CloseWebSocket {
                connection: 1,
                code: 1000
            },
        ]
    );
    assert!(matches!(
        s.send(sid.as_str(), text("d"), t0 + 300 * MS),
        Err(Error::NoSuchSession)
    ));
}

#[test]
fn a_websocket_session_sent_to_at_once_keeps_its_queue_bounds() {
    // The bounds hold between two flushes whichever way a message goes:
    // through the queue, or out at once to an idle WebSocket (review9b).
    let mut s = Server::new(ServerConfig {
        queue: QueueLimits {
            max_messages: 2,
            max_bytes: 5,
            close_on_overflow: false,
        },
        ..ServerConfig::default()
    });
    let t0 = Instant::now();
    let sid = open_websocket(&mut s, 1, t0);
    s.send(sid.as_str(), text("a"), t0).unwrap();
    assert_eq!(s.send_capacity(sid.as_str()), Some(1));
    s.send(sid.as_str(), text("b"), t0).unwrap();
    assert!(matches!(
        s.send(sid.as_str(), text("c"), t0),
        Err(Error::QueueFull)
    ));
    assert_eq!(s.send_capacity(sid.as_str()), Some(0));
    assert_eq!(transmits(&mut s).len(), 2);
    // Handed out: room again, and the bytes bound counts too.
    assert_eq!(s.send_capacity(sid.as_str()), Some(2));
    s.send(sid.as_str(), text("dddd"), t0).unwrap();
    assert!(matches!(
        s.send_all(sid.as_str(), vec![text("ee")], t0),
        Err(Error::QueueFull)
    ));
    s.send(sid.as_str(), text("f"), t0).unwrap();
    assert_eq!(transmits(&mut s).len(), 2);
}
