//! The Server-Sent Events dialect: framing, comment heartbeats, expiry,
//! resumption from `Last-Event-ID` (replay, takeover, gaps), the response
//! limit with reconnection, bad input; and a property test that a client
//! which reconnects with `Last-Event-ID` whenever its stream ends or breaks
//! receives every event exactly once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Driver, MS, rng};
use duplex_polling::{
    CloseReason, Error, HttpTransmit, Message, RequestId, SessionId, SseConfig, SseServer,
};
use http::Method;
use proptest::prelude::*;

const S: Duration = Duration::from_secs(1);

fn driver(config: SseConfig) -> Driver<SseServer> {
    Driver::new(SseServer::new(config.with_rng(rng())))
}

/// Parses an event stream into (id, event, data) triples.
fn parse(chunks: &[String]) -> Vec<(String, Option<String>, String)> {
    let text: String = chunks.concat();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push(v);
            }
        }
        if let Some(id) = id {
            out.push((id, event, data.join("\n")));
        }
    }
    out
}

fn open(d: &mut Driver<SseServer>) -> (RequestId, SessionId) {
    let id = d.get("/");
    (id, d.opened().last().unwrap().clone())
}

fn resume(d: &mut Driver<SseServer>, last: &str) -> RequestId {
    let r = d.request(Method::GET, "/").header("Last-Event-ID", last);
    d.send_request(r)
}

#[test]
fn stream_headers_prelude_and_event_framing() {
    let mut d = driver(SseConfig::default());
    let (stream, session) = open(&mut d);
    let head = d.written(stream).stream_started.unwrap();
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some("no-store"));
    assert_eq!(d.written(stream).chunk_texts(), ["retry: 3000\n\n"]);
    let now = d.now;
    d.machine.send(&session, Message::text("one"), now).unwrap();
    d.machine
        .send_event(&session, "update", "two\nlines\r\nthree\rfour", now)
        .unwrap();
    d.pump();
    assert_eq!(
        d.written(stream).chunk_texts()[1],
        format!(
            "id: {session}:1\ndata: one\n\nid: {session}:2\nevent: update\ndata: two\ndata: lines\ndata: three\ndata: four\n\n"
        )
    );
    assert!(matches!(
        d.machine.send_event(&session, "bad\nname", "x", now),
        Err(Error::InvalidEventName)
    ));
    assert!(matches!(
        d.machine.send(&session, Message::binary(vec![1u8]), now),
        Err(Error::BinaryNotSupported)
    ));
}

#[test]
fn comment_heartbeat_exactly_when_due() {
    let mut d = driver(SseConfig::default());
    let (stream, _) = open(&mut d);
    d.advance(15 * S - MS);
    assert_eq!(d.written(stream).chunks.len(), 1);
    d.advance(MS);
    assert_eq!(d.written(stream).chunk_texts()[1], ":\n\n");
    d.advance(15 * S);
    assert_eq!(d.written(stream).chunks.len(), 3);
}

#[test]
fn session_waits_for_a_reconnect_then_expires() {
    let mut d = driver(SseConfig::default());
    let (stream, session) = open(&mut d);
    d.abort(stream);
    d.advance(30 * S - MS);
    assert!(d.machine.is_open(&session));
    d.advance(MS);
    assert_eq!(d.closed(), [(session, CloseReason::Expired)]);
    assert_eq!(d.machine.session_count(), 0);
    assert_eq!(d.machine.poll_timeout(), None);
}

#[test]
fn resume_replays_what_the_client_missed() {
    let mut d = driver(SseConfig::default());
    let (stream, session) = open(&mut d);
    let now = d.now;
    for m in ["a", "b", "c"] {
        d.machine.send(&session, Message::text(m), now).unwrap();
    }
    d.pump();
    // The client saw only the first event before the network broke.
    d.abort(stream);
    d.machine.send(&session, Message::text("d"), now).unwrap();
    let again = resume(&mut d, &format!("{session}:1"));
    let events = parse(&d.written(again).chunk_texts());
    let data: Vec<&str> = events.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(data, ["b", "c", "d"]);
    assert_eq!(events[0].0, format!("{session}:2"));
    assert_eq!(d.opened().len(), 1, "same session");
}

#[test]
fn resume_takes_over_a_stream_still_open() {
    let mut d = driver(SseConfig::default());
    let (old, session) = open(&mut d);
    let new = resume(&mut d, &format!("{session}:0"));
    assert!(d.written(old).stream_ended);
    let now = d.now;
    d.machine.send(&session, Message::text("x"), now).unwrap();
    d.pump();
    assert_eq!(parse(&d.written(new).chunk_texts())[0].2, "x");
}

/// Sends "0" to "4" (sequence numbers 1 to 5) down `stream`, then loses
/// the stream, as a client whose connection dropped.
fn send_numbers_then_drop(d: &mut Driver<SseServer>, session: &SessionId, stream: RequestId) {
    let now = d.now;
    for i in 0..5 {
        d.machine
            .send(session, Message::text(format!("{i}")), now)
            .unwrap();
    }
    d.pump();
    d.abort(stream);
}

#[test]
fn resume_past_the_replay_buffer_is_a_gap_and_starts_over() {
    let mut d = driver(SseConfig {
        replay_capacity: 2,
        ..SseConfig::default()
    });
    let (stream, session) = open(&mut d);
    send_numbers_then_drop(&mut d, &session, stream);
    let again = resume(&mut d, &format!("{session}:1"));
    assert_eq!(d.closed(), [(session.clone(), CloseReason::ReplayGap)]);
    assert_eq!(d.opened().len(), 2, "a new session");
    assert!(d.written(again).stream_started.is_some());
    assert_eq!(d.machine.session_count(), 1);
    // Within the buffer it would have worked.
    let (stream, session) = (again, d.opened()[1].clone());
    send_numbers_then_drop(&mut d, &session, stream);
    // Sequence numbers start at 1: the client saw "0", "1", "2".
    let ok = resume(&mut d, &format!("{session}:3"));
    let data: Vec<String> = parse(&d.written(ok).chunk_texts())
        .into_iter()
        .map(|e| e.2)
        .collect();
    assert_eq!(data, ["3", "4"]);
}

#[test]
fn unknown_or_foreign_ids_open_a_new_session() {
    let mut d = driver(SseConfig::default());
    let (_, session) = open(&mut d);
    for bad in [
        "garbage",
        "nope:1",
        &format!("{session}:99"),
        &format!("{session}:x"),
    ] {
        let id = resume(&mut d, bad);
        assert!(d.written(id).stream_started.is_some(), "{bad}");
    }
    assert_eq!(d.opened().len(), 5);
}

#[test]
fn response_limit_ends_the_stream_and_the_client_resumes_without_loss() {
    let mut d = driver(SseConfig {
        response_limit: 200,
        ..SseConfig::default()
    });
    let (mut stream, session) = open(&mut d);
    let mut received = Vec::new();
    let mut last_id = String::new();
    let mut read = 1;
    for i in 0..100 {
        let now = d.now;
        d.machine
            .send(&session, Message::text(format!("event {i}")), now)
            .unwrap();
        d.pump();
        let w = d.written(stream);
        for (id, _, data) in parse(&w.chunk_texts()[read..]) {
            last_id = id;
            received.push(data);
        }
        read = w.chunks.len();
        if w.stream_ended {
            stream = resume(&mut d, &last_id);
            read = 1;
        }
    }
    let expected: Vec<String> = (0..100).map(|i| format!("event {i}")).collect();
    assert_eq!(received, expected);
    assert_eq!(d.opened().len(), 1);
}

#[test]
fn application_close_flushes_ends_the_stream_and_answers_reconnects_with_204() {
    let mut d = driver(SseConfig::default());
    let (stream, session) = open(&mut d);
    let now = d.now;
    d.machine.send(&session, Message::text("bye"), now).unwrap();
    d.machine.close(&session, now).unwrap();
    d.pump();
    let w = d.written(stream);
    assert_eq!(parse(&w.chunk_texts())[0].2, "bye");
    assert!(w.stream_ended);
    let again = resume(&mut d, &format!("{session}:1"));
    assert_eq!(d.status(again), 204);
    d.advance(30 * S);
    assert_eq!(d.machine.session_count(), 0);
    assert_eq!(d.closed().len(), 1);
}

#[test]
fn closed_while_disconnected_still_delivers_what_was_queued() {
    let mut d = driver(SseConfig::default());
    let (stream, session) = open(&mut d);
    d.abort(stream);
    let now = d.now;
    d.machine
        .send(&session, Message::text("late"), now)
        .unwrap();
    d.machine.close(&session, now).unwrap();
    d.pump();
    let again = resume(&mut d, &format!("{session}:0"));
    let w = d.written(again);
    assert_eq!(parse(&w.chunk_texts())[0].2, "late");
    assert!(w.stream_ended);
    let last = resume(&mut d, &format!("{session}:1"));
    assert_eq!(d.status(last), 204);
}

#[test]
fn bad_requests() {
    let mut d = driver(SseConfig {
        max_sessions: 1,
        ..SseConfig::default()
    });
    let id = d.post("/", "x");
    assert_eq!(d.status(id), 405);
    assert_eq!(d.response(id).header("allow"), Some("GET, OPTIONS"));
    let r = d
        .request(Method::OPTIONS, "/")
        .header("Origin", "https://a.example");
    let id = d.send_request(r);
    assert_eq!(d.status(id), 204);
    let preflight = d.response(id);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, OPTIONS")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("86400"));
    assert_eq!(d.machine.session_count(), 0);
    open(&mut d);
    let id = d.get("/");
    assert_eq!(d.status(id), 503);
    assert_eq!(d.machine.session_count(), 1);
}

// ---- property ----------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Send,
    Break,
    Reconnect,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Send),
        1 => Just(Op::Break),
        2 => Just(Op::Reconnect),
        2 => (1u64..20_000).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A client that reconnects with the last id it saw receives every event
    /// once and in order, across byte limits, broken connections,
    /// takeovers and heartbeats, as long as it comes back within the delay
    /// and the replay buffer.
    #[test]
    fn reconnecting_client_receives_every_event_exactly_once(
        ops in proptest::collection::vec(op(), 0..120),
        limit in 40usize..400,
    ) {
        let mut d = driver(SseConfig {
            response_limit: limit,
            replay_capacity: 1024,
            disconnect_delay: Duration::from_secs(3600),
            ..SseConfig::default()
        });
        let (first, session) = open(&mut d);
        let mut stream = Some(first);
        let mut last_id = format!("{session}:0");
        let mut sent = Vec::new();
        let mut received = Vec::new();
        let mut counter = 0;
        for op in ops {
            let now = d.now;
            match op {
                Op::Send => {
                    counter += 1;
                    let text = format!("e{counter}");
                    if d.machine.send(&session, Message::text(text.clone()), now).is_ok() {
                        sent.push(text);
                    }
                }
                Op::Break => {
                    if let Some(s) = stream.take() {
                        d.machine.abort(s, now);
                    }
                }
                Op::Reconnect => {
                    let r = d.request(Method::GET, "/").header("Last-Event-ID", &last_id);
                    stream = Some(r.id);
                    d.machine.handle_request(r, now);
                }
                Op::Advance(ms) => {
                    d.jump(Duration::from_millis(ms));
                }
            }
            while let Some(t) = d.machine.poll_transmit() {
                match t {
                    HttpTransmit::StreamChunk { request, data } if Some(request) == stream => {
                        for (id, _, data) in parse(&[String::from_utf8(data.to_vec()).unwrap()]) {
                            last_id = id;
                            received.push(data);
                        }
                    }
                    HttpTransmit::StreamEnd { request } if Some(request) == stream => stream = None,
                    _ => {}
                }
            }
            while d.machine.poll_event().is_some() {}
            prop_assert!(sent.starts_with(&received), "{:?} vs {:?}", received, sent);
            prop_assert!(d.machine.is_open(&session));
        }
        // Come back until everything arrived.
        for _ in 0..sent.len() + 1 {
            if received.len() == sent.len() {
                break;
            }
            let r = d.request(Method::GET, "/").header("Last-Event-ID", &last_id);
            let id = r.id;
            d.machine.handle_request(r, d.now);
            while let Some(t) = d.machine.poll_transmit() {
                if let HttpTransmit::StreamChunk { request, data } = t {
                    if request == id {
                        for (ev, _, data) in parse(&[String::from_utf8(data.to_vec()).unwrap()]) {
                            last_id = ev;
                            received.push(data);
                        }
                    }
                }
            }
        }
        prop_assert_eq!(received, sent);
    }
}
