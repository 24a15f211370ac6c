//! Property: for arbitrary interleavings of application sends, xhr polls,
//! xhr_streaming requests (with a small response limit), aborts, client
//! sends, application closes and time (heartbeats, expiry), the messages
//! sent to a session arrive exactly once and in order until it closes,
//! every request is answered at most once, and once everything has expired
//! nothing is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Driver, Ledger, rng};
use duplex_polling::{HttpTransmit, RequestId, SessionId, SockJsConfig, SockJsServer};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Send,
    Poll,
    Stream,
    Abort,
    ClientSend,
    Advance(u64),
    AppClose,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Send),
        3 => Just(Op::Poll),
        2 => Just(Op::Stream),
        1 => Just(Op::Abort),
        2 => Just(Op::ClientSend),
        3 => (1u64..30_000).prop_map(Op::Advance),
        1 => Just(Op::AppClose),
    ]
}

fn frames_of(t: &HttpTransmit) -> Vec<String> {
    let data = match t {
        HttpTransmit::Response { response, .. } => response.body.clone(),
        HttpTransmit::StreamChunk { data, .. } => data.clone(),
        _ => return Vec::new(),
    };
    String::from_utf8_lossy(&data)
        .split('\n')
        .map(str::to_owned)
        .collect()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut d = Driver::new(SockJsServer::new(
        SockJsConfig {
            response_limit: 64,
            ..SockJsConfig::default()
        }
        .with_rng(rng()),
    ));
    let mut open: Vec<RequestId> = Vec::new();
    let mut session: Option<SessionId> = None;
    let mut ledger = Ledger::default();
    let first = d.request(http::Method::POST, "/0/key/xhr");
    d.machine.handle_request(first, d.now);
    for op in ops {
        let now = d.now;
        match op {
            Op::Send => {
                if let Some(s) = &session {
                    ledger.send_next(|m| d.machine.send(s, m, now));
                }
            }
            Op::Poll | Op::Stream => {
                let path = if matches!(op, Op::Poll) {
                    "/0/key/xhr"
                } else {
                    "/0/key/xhr_streaming"
                };
                let r = d.request(http::Method::POST, path);
                open.push(r.id);
                d.machine.handle_request(r, now);
            }
            Op::Abort => {
                if let Some(r) = open.pop() {
                    d.machine.abort(r, now);
                }
            }
            Op::ClientSend => {
                let r = d
                    .request(http::Method::POST, "/0/key/xhr_send")
                    .body(r#"["c"]"#);
                d.machine.handle_request(r, now);
            }
            Op::Advance(ms) => {
                d.jump(Duration::from_millis(ms));
            }
            Op::AppClose => {
                if let Some(s) = &session {
                    let _ = d.machine.close(s, 3000, "bye", now);
                }
            }
        }
        while let Some(e) = d.machine.poll_event() {
            if let duplex_polling::Event::Opened { session: s, .. } = &e {
                session.get_or_insert_with(|| s.clone());
            }
            d.events.push(e);
        }
        while let Some(t) = d.machine.poll_transmit() {
            if matches!(
                t,
                HttpTransmit::Response { .. } | HttpTransmit::StreamEnd { .. }
            ) {
                open.retain(|&r| r != t.request());
            }
            for frame in frames_of(&t) {
                if let Some(array) = frame.strip_prefix('a') {
                    let batch: Vec<String> = serde_json::from_str(array).unwrap();
                    let ours = batch.into_iter().filter(|m| m.starts_with('m'));
                    ledger.received.extend(ours);
                }
            }
        }
        ledger.check_prefix()?;
    }
    if let Some(s) = session.clone().filter(|s| d.machine.is_open(s)) {
        let r = d.request(http::Method::POST, "/0/key/xhr");
        d.machine.handle_request(r, d.now);
        while let Some(t) = d.machine.poll_transmit() {
            for frame in frames_of(&t) {
                if let Some(array) = frame.strip_prefix('a') {
                    let batch: Vec<String> = serde_json::from_str(array).unwrap();
                    let ours = batch.into_iter().filter(|m| m.starts_with('m'));
                    ledger.received.extend(ours);
                }
            }
        }
        prop_assert_eq!(&ledger.received, &ledger.sent, "session {} still open", s);
    }
    // Everything ends: clients go away, delays pass.
    let now = d.now;
    for r in open.drain(..) {
        d.machine.abort(r, now);
    }
    for _ in 0..3 {
        d.jump(Duration::from_secs(30));
        while d.machine.poll_transmit().is_some() {}
        while d.machine.poll_event().is_some() {}
    }
    prop_assert_eq!(d.machine.session_count(), 0);
    prop_assert_eq!(d.machine.connection_count(), 0);
    prop_assert_eq!(d.machine.poll_timeout(), None);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sent_messages_arrive_exactly_once_in_order(ops in proptest::collection::vec(op(), 0..80)) {
        run(ops)?;
    }
}
