//! The in-memory broker: routing, acknowledgement in all three modes,
//! redelivery, transactions, receipts, errors and bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use duplex_stomp::{Broker, BrokerConfig, Command, ConnectionId, Frame, Version};

const A: ConnectionId = ConnectionId(1);
const B: ConnectionId = ConnectionId(2);
const C: ConnectionId = ConnectionId(3);

fn frame(command: Command, headers: &[(&str, &str)]) -> Frame {
    headers
        .iter()
        .fold(Frame::new(command), |f, (n, v)| f.with_header(n, v))
}

fn send(dest: &str, body: &str) -> Frame {
    frame(Command::Send, &[("destination", dest)]).with_body(body.to_owned())
}

fn subscribe(id: &str, dest: &str, ack: &str) -> Frame {
    frame(
        Command::Subscribe,
        &[("id", id), ("destination", dest), ("ack", ack)],
    )
}

fn out(b: &mut Broker) -> Vec<(ConnectionId, Frame)> {
    std::iter::from_fn(|| b.poll_transmit())
        .map(|o| (o.connection, o.frame))
        .collect()
}

/// (connection, body) of every MESSAGE in `output`.
fn bodies(output: &[(ConnectionId, Frame)]) -> Vec<(ConnectionId, String)> {
    output
        .iter()
        .filter(|(_, f)| f.command() == Command::Message)
        .map(|(c, f)| (*c, String::from_utf8(f.body().to_vec()).unwrap()))
        .collect()
}

fn ack_of(f: &Frame) -> Frame {
    frame(Command::Ack, &[("id", f.header("ack").unwrap())])
}

fn nack_of(f: &Frame) -> Frame {
    frame(Command::Nack, &[("id", f.header("ack").unwrap())])
}

fn broker_with(conns: &[ConnectionId]) -> Broker {
    let mut b = Broker::default();
    for c in conns {
        b.connect(*c, Version::V1_2);
    }
    b
}

#[test]
fn topics_fan_out_to_every_subscriber() {
    let mut b = broker_with(&[A, B, C]);
    b.handle_frame(A, subscribe("s", "/topic/news", "auto"));
    b.handle_frame(B, subscribe("s", "/topic/news", "auto"));
    b.handle_frame(C, send("/topic/news", "hello"));
    let o = out(&mut b);
    assert_eq!(bodies(&o), vec![(A, "hello".into()), (B, "hello".into())]);
    let m = &o[0].1;
    assert_eq!(m.header("destination"), Some("/topic/news"));
    assert_eq!(m.header("subscription"), Some("s"));
    assert!(m.header("message-id").is_some());
    assert_eq!(m.header("ack"), None, "auto deliveries need no ack header");
    // Nobody listening: the message is gone.
    b.handle_frame(C, send("/topic/other", "lost"));
    assert!(out(&mut b).is_empty());
}

#[test]
fn queues_go_round_robin_and_wait_for_subscribers() {
    let mut b = broker_with(&[A, B, C]);
    b.handle_frame(C, send("/queue/q", "early"));
    assert_eq!(b.queue_depth("/queue/q"), 1);
    assert!(out(&mut b).is_empty());
    b.handle_frame(A, subscribe("s", "/queue/q", "auto"));
    assert_eq!(bodies(&out(&mut b)), vec![(A, "early".into())]);
    b.handle_frame(B, subscribe("s", "/queue/q", "auto"));
    for i in 0..4 {
        b.handle_frame(C, send("/queue/q", &i.to_string()));
    }
    let got = bodies(&out(&mut b));
    assert_eq!(
        got,
        vec![
            (A, "0".into()),
            (B, "1".into()),
            (A, "2".into()),
            (B, "3".into())
        ],
        "round robin over the subscriptions in the order they came"
    );
    assert_eq!(b.queue_depth("/queue/q"), 0);
}

#[test]
fn client_individual_ack_and_nack_redelivers_with_flag() {
    let mut b = broker_with(&[A, C]);
    b.handle_frame(A, subscribe("s", "/queue/q", "client-individual"));
    b.handle_frame(C, send("/queue/q", "one"));
    b.handle_frame(C, send("/queue/q", "two"));
    let o = out(&mut b);
    assert_eq!(bodies(&o), vec![(A, "one".into()), (A, "two".into())]);
    assert_eq!(b.unacked(A), 2);
    let (one, two) = (&o[0].1, &o[1].1);
    assert_ne!(one.header("ack"), two.header("ack"));
    // ACK of "two" does not cover "one".
    b.handle_frame(A, ack_of(two));
    assert!(out(&mut b).is_empty());
    assert_eq!(b.unacked(A), 1);
    // NACK of "one" brings it back, marked redelivered, same message-id.
    b.handle_frame(A, nack_of(one));
    let o = out(&mut b);
    assert_eq!(bodies(&o), vec![(A, "one".into())]);
    assert_eq!(o[0].1.header("redelivered"), Some("true"));
    assert_eq!(o[0].1.header("message-id"), one.header("message-id"));
    b.handle_frame(A, ack_of(&o[0].1));
    assert_eq!(b.unacked(A), 0);
    // A second ACK for the same delivery is ignored.
    b.handle_frame(A, ack_of(&o[0].1));
    assert!(out(&mut b).is_empty());
    assert!(b.is_connected(A));
}

#[test]
fn client_mode_ack_is_cumulative() {
    let mut b = broker_with(&[A, C]);
    b.handle_frame(A, subscribe("s", "/queue/q", "client"));
    for body in ["1", "2", "3"] {
        b.handle_frame(C, send("/queue/q", body));
    }
    let o = out(&mut b);
    assert_eq!(b.unacked(A), 3);
    b.handle_frame(A, ack_of(&o[1].1));
    assert_eq!(b.unacked(A), 1, "ACK of 2 also acknowledged 1");
    // A cumulative NACK of 3 requeues it; with A the only subscriber it comes back.
    b.handle_frame(A, nack_of(&o[2].1));
    assert_eq!(bodies(&out(&mut b)), vec![(A, "3".into())]);
}

#[test]
fn unacknowledged_messages_move_on_when_their_subscriber_leaves() {
    let mut b = broker_with(&[A, B, C]);
    b.handle_frame(A, subscribe("s", "/queue/q", "client"));
    b.handle_frame(C, send("/queue/q", "1"));
    b.handle_frame(C, send("/queue/q", "2"));
    assert_eq!(bodies(&out(&mut b)), vec![(A, "1".into()), (A, "2".into())]);
    b.handle_frame(B, subscribe("t", "/queue/q", "client-individual"));
    b.disconnect(A);
    let o = out(&mut b);
    assert_eq!(
        bodies(&o),
        vec![(B, "1".into()), (B, "2".into())],
        "original order kept"
    );
    assert!(
        o.iter()
            .all(|(_, f)| f.header("redelivered") == Some("true"))
    );
    // UNSUBSCRIBE hands them on too; with nobody left they wait in the queue.
    b.handle_frame(B, frame(Command::Unsubscribe, &[("id", "t")]));
    assert_eq!(b.queue_depth("/queue/q"), 2);
    b.handle_frame(C, subscribe("u", "/queue/q", "auto"));
    assert_eq!(bodies(&out(&mut b)), vec![(C, "1".into()), (C, "2".into())]);
}

#[test]
fn transactions_hold_sends_and_acks_until_commit() {
    let mut b = broker_with(&[A, C]);
    b.handle_frame(A, subscribe("s", "/queue/q", "client-individual"));
    b.handle_frame(C, frame(Command::Begin, &[("transaction", "tx")]));
    b.handle_frame(C, send("/queue/q", "held").with_header("transaction", "tx"));
    assert!(out(&mut b).is_empty());
    b.handle_frame(
        C,
        frame(Command::Commit, &[("transaction", "tx"), ("receipt", "c1")]),
    );
    let o = out(&mut b);
    assert_eq!(bodies(&o), vec![(A, "held".into())]);
    assert_eq!(o[1], (C, frame(Command::Receipt, &[("receipt-id", "c1")])));
    assert_eq!(
        o[0].1.header("transaction"),
        None,
        "transaction header is not passed on"
    );
    // ABORT drops held sends; ACK inside an aborted transaction does nothing.
    b.handle_frame(A, frame(Command::Begin, &[("transaction", "t2")]));
    b.handle_frame(A, ack_of(&o[0].1).with_header("transaction", "t2"));
    b.handle_frame(
        A,
        send("/queue/q", "never").with_header("transaction", "t2"),
    );
    b.handle_frame(A, frame(Command::Abort, &[("transaction", "t2")]));
    assert!(out(&mut b).is_empty());
    assert_eq!(b.unacked(A), 1);
    b.handle_frame(A, frame(Command::Begin, &[("transaction", "t3")]));
    b.handle_frame(A, ack_of(&o[0].1).with_header("transaction", "t3"));
    assert_eq!(b.unacked(A), 1);
    b.handle_frame(A, frame(Command::Commit, &[("transaction", "t3")]));
    assert_eq!(b.unacked(A), 0);
}

#[test]
fn faults_answer_error_with_receipt_id_and_forget_the_connection() {
    let mut b = broker_with(&[A, B]);
    b.handle_frame(A, subscribe("s", "/queue/q", "client"));
    b.handle_frame(B, send("/queue/q", "x"));
    out(&mut b);
    for (bad, message) in [
        (
            frame(
                Command::Commit,
                &[("transaction", "nope"), ("receipt", "r9")],
            ),
            "unknown transaction",
        ),
        (
            subscribe("s", "/queue/q", "auto").with_header("receipt", "r9"),
            "subscription id already in use",
        ),
        (
            frame(Command::Unsubscribe, &[("id", "zz"), ("receipt", "r9")]),
            "unknown subscription",
        ),
        (
            frame(Command::Send, &[("receipt", "r9")]),
            "missing required header",
        ),
    ] {
        b.connect(A, Version::V1_2);
        b.handle_frame(A, subscribe("s", "/queue/q", "client"));
        let before = out(&mut b);
        assert_eq!(
            bodies(&before),
            vec![(A, "x".into())],
            "redelivered after the last forced disconnect"
        );
        b.handle_frame(A, bad);
        let o = out(&mut b);
        let (conn, err) = o.last().unwrap();
        assert_eq!((*conn, err.command()), (A, Command::Error));
        assert_eq!(err.header("receipt-id"), Some("r9"));
        assert_eq!(err.header("message"), Some(message));
        assert!(!b.is_connected(A));
        assert_eq!(
            b.queue_depth("/queue/q"),
            1,
            "its unacknowledged message went back"
        );
    }
}

#[test]
fn disconnect_with_receipt() {
    let mut b = broker_with(&[A]);
    b.handle_frame(A, frame(Command::Disconnect, &[("receipt", "77")]));
    assert_eq!(
        out(&mut b),
        vec![(A, frame(Command::Receipt, &[("receipt-id", "77")]))]
    );
    assert!(!b.is_connected(A));
}

#[test]
fn prefetch_window_holds_back_deliveries_until_acked() {
    let mut b = Broker::new(BrokerConfig {
        max_unacked: 2,
        ..BrokerConfig::default()
    });
    b.connect(A, Version::V1_2);
    b.connect(C, Version::V1_2);
    b.handle_frame(A, subscribe("s", "/queue/q", "client-individual"));
    for body in ["1", "2", "3"] {
        b.handle_frame(C, send("/queue/q", body));
    }
    let o = out(&mut b);
    assert_eq!(bodies(&o), vec![(A, "1".into()), (A, "2".into())]);
    assert_eq!(b.queue_depth("/queue/q"), 1);
    b.handle_frame(A, ack_of(&o[0].1));
    assert_eq!(bodies(&out(&mut b)), vec![(A, "3".into())]);
}

#[test]
fn full_queue_refuses_the_send() {
    let mut b = Broker::new(BrokerConfig {
        max_queue_depth: 2,
        ..BrokerConfig::default()
    });
    b.connect(C, Version::V1_2);
    b.handle_frame(C, send("/queue/q", "1"));
    b.handle_frame(C, send("/queue/q", "2"));
    b.handle_frame(C, send("/queue/q", "3").with_header("receipt", "r3"));
    let o = out(&mut b);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].1.command(), Command::Error);
    assert_eq!(o[0].1.header("message"), Some("limit reached"));
    assert_eq!(o[0].1.header("receipt-id"), Some("r3"));
    assert_eq!(b.queue_depth("/queue/q"), 2);
}

#[test]
fn full_topic_backlog_drops_for_the_slow_subscriber_only() {
    let mut b = Broker::new(BrokerConfig {
        max_unacked: 1,
        max_topic_backlog: 1,
        ..BrokerConfig::default()
    });
    for c in [A, B, C] {
        b.connect(c, Version::V1_2);
    }
    b.handle_frame(A, subscribe("slow", "/topic/t", "client"));
    b.handle_frame(B, subscribe("fast", "/topic/t", "auto"));
    for body in ["1", "2", "3"] {
        b.handle_frame(C, send("/topic/t", body));
    }
    let o = out(&mut b);
    let to_a: Vec<_> = bodies(&o).into_iter().filter(|(c, _)| *c == A).collect();
    let to_b: Vec<_> = bodies(&o).into_iter().filter(|(c, _)| *c == B).collect();
    assert_eq!(to_a, vec![(A, "1".into())]);
    assert_eq!(to_b.len(), 3);
    assert_eq!(
        b.dropped_topic_messages(),
        1,
        "2 waits in the backlog, 3 is dropped"
    );
    let first = &o.iter().find(|(c, _)| *c == A).unwrap().1;
    b.handle_frame(A, ack_of(first));
    assert_eq!(bodies(&out(&mut b)), vec![(A, "2".into())]);
}

#[test]
fn older_versions_acknowledge_by_message_id() {
    let mut b = Broker::default();
    b.connect(A, Version::V1_1);
    b.connect(B, Version::V1_0);
    b.connect(C, Version::V1_2);
    b.handle_frame(A, subscribe("s", "/queue/a", "client"));
    // 1.0 subscriptions may omit the id.
    b.handle_frame(
        B,
        frame(
            Command::Subscribe,
            &[("destination", "/queue/b"), ("ack", "client")],
        ),
    );
    b.handle_frame(C, send("/queue/a", "for a"));
    b.handle_frame(C, send("/queue/b", "for b"));
    let o = out(&mut b);
    assert_eq!(o[1].1.header("subscription"), Some("/queue/b"));
    assert_eq!((b.unacked(A), b.unacked(B)), (1, 1));
    let mid = |f: &Frame| f.header("message-id").unwrap().to_owned();
    b.handle_frame(
        A,
        frame(
            Command::Ack,
            &[("message-id", &mid(&o[0].1)), ("subscription", "s")],
        ),
    );
    b.handle_frame(B, frame(Command::Ack, &[("message-id", &mid(&o[1].1))]));
    assert_eq!((b.unacked(A), b.unacked(B)), (0, 0));
    // 1.0 UNSUBSCRIBE by destination.
    b.handle_frame(
        B,
        frame(
            Command::Unsubscribe,
            &[("destination", "/queue/b"), ("receipt", "u")],
        ),
    );
    assert_eq!(out(&mut b)[0].1.header("receipt-id"), Some("u"));
}

#[test]
fn user_headers_pass_through_and_binary_bodies_survive() {
    let mut b = broker_with(&[A, C]);
    b.handle_frame(A, subscribe("s", "/queue/q", "auto"));
    let sent = send("/queue/q", "")
        .with_header("content-type", "application/octet-stream")
        .with_header("x-colon", "a:b\nc")
        .with_header("receipt", "r")
        .with_body(&b"\0\x01\0"[..]);
    b.handle_frame(C, sent);
    let o = out(&mut b);
    let m = &o[0].1;
    assert_eq!(m.body().as_ref(), b"\0\x01\0");
    assert_eq!(m.header("x-colon"), Some("a:b\nc"));
    assert_eq!(m.header("content-type"), Some("application/octet-stream"));
    assert_eq!(m.header("receipt"), None);
    assert_eq!(o[1], (C, frame(Command::Receipt, &[("receipt-id", "r")])));
}
