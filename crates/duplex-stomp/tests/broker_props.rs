//! The broker's delivery guarantee under arbitrary interleavings of
//! connects, subscribes, sends, acks, nacks, transactions, unsubscribes and
//! disconnects (graceful and abrupt), in every version:
//!
//! * no acknowledged message is ever delivered again (for `auto`
//!   subscriptions, a message counts as acknowledged once delivered);
//! * no accepted queue message is lost: once every client acknowledges what
//!   it holds and each queue has a subscriber, every queue message the
//!   broker accepted (its `SEND` or `COMMIT` got a `RECEIPT`) has been
//!   consumed.
//!
//! A model client mirrors what each connection holds, applying the
//! specification's rules: `client` acknowledgements are cumulative,
//! `client-individual` ones are not, a `NACK` or the end of a subscription
//! releases messages without acknowledging them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};

use duplex_stomp::{AckMode, Broker, BrokerConfig, Command, ConnectionId, Frame, Version};
use proptest::prelude::*;

const DESTINATIONS: [&str; 3] = ["/queue/a", "/queue/b", "/topic/t"];
const MODES: [AckMode; 3] = [AckMode::Auto, AckMode::Client, AckMode::ClientIndividual];

#[derive(Debug, Clone)]
enum Op {
    Connect {
        conn: u8,
        version: u8,
    },
    Disconnect {
        conn: u8,
        graceful: bool,
    },
    Subscribe {
        conn: u8,
        dest: u8,
        mode: u8,
    },
    Unsubscribe {
        conn: u8,
        pick: u8,
    },
    Send {
        conn: u8,
        dest: u8,
        in_tx: bool,
    },
    Settle {
        conn: u8,
        pick_sub: u8,
        pick_msg: u8,
        nack: bool,
        in_tx: bool,
    },
    Begin {
        conn: u8,
    },
    Commit {
        conn: u8,
    },
    Abort {
        conn: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0u8..4;
    prop_oneof![
        2 => (conn.clone(), 0u8..3).prop_map(|(conn, version)| Op::Connect { conn, version }),
        1 => (conn.clone(), any::<bool>()).prop_map(|(conn, graceful)| Op::Disconnect { conn, graceful }),
        3 => (conn.clone(), 0u8..3, 0u8..3).prop_map(|(conn, dest, mode)| Op::Subscribe { conn, dest, mode }),
        1 => (conn.clone(), any::<u8>()).prop_map(|(conn, pick)| Op::Unsubscribe { conn, pick }),
        6 => (conn.clone(), 0u8..3, prop::bool::weighted(0.2)).prop_map(|(conn, dest, in_tx)| Op::Send { conn, dest, in_tx }),
        6 => (conn.clone(), any::<u8>(), any::<u8>(), prop::bool::weighted(0.3), prop::bool::weighted(0.2))
            .prop_map(|(conn, pick_sub, pick_msg, nack, in_tx)| Op::Settle { conn, pick_sub, pick_msg, nack, in_tx }),
        1 => conn.clone().prop_map(|conn| Op::Begin { conn }),
        1 => conn.clone().prop_map(|conn| Op::Commit { conn }),
        1 => conn.prop_map(|conn| Op::Abort { conn }),
    ]
}

#[derive(Debug, Clone)]
struct Held {
    body: String,
    ack: Option<String>,
    message_id: String,
}

#[derive(Debug)]
struct Sub {
    dest: String,
    mode: AckMode,
    held: Vec<Held>,
}

/// A settle (ACK/NACK) as the broker will look it up.
#[derive(Debug, Clone)]
struct Settle {
    sub: String,
    ack: Option<String>,
    message_id: String,
    nack: bool,
}

#[derive(Debug)]
enum TxOp {
    Send { body: String },
    Settle(Settle),
}

#[derive(Debug)]
struct Client {
    version: Version,
    subs: BTreeMap<String, Sub>,
    tx: Option<(String, Vec<TxOp>)>,
}

/// What ACKs consumed: queue message bodies and topic copies.
#[derive(Debug, Default)]
struct Consumed {
    queue: Vec<String>,
    topic: Vec<(u8, String, String)>,
}

#[derive(Default)]
struct Model {
    clients: HashMap<u8, Client>,
    /// Queue message bodies acknowledged (or delivered to `auto`).
    consumed: HashSet<String>,
    /// Topic copies acknowledged, per (connection, subscription, body).
    consumed_topic: HashSet<(u8, String, String)>,
    /// Queue message bodies the broker accepted, and which receipt does it.
    accepted: HashSet<String>,
    pending_receipts: HashMap<String, Vec<String>>,
    /// What a COMMIT's ACKs consume once its receipt comes: a commit the
    /// broker refuses (a bound) applies none of them, all or nothing.
    pending_settles: HashMap<String, Consumed>,
    sent_to_queue: HashSet<String>,
    next: u64,
}

fn is_topic(dest: &str) -> bool {
    dest.starts_with("/topic/")
}

impl Model {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn forget(&mut self, conn: u8) {
        self.clients.remove(&conn);
    }

    /// Mirrors the broker's ACK/NACK lookup and settlement rules.
    fn settle(&mut self, conn: u8, s: &Settle) {
        let consumed = self.take_settled(conn, s);
        self.consume(consumed);
    }

    fn consume(&mut self, consumed: Consumed) {
        self.consumed.extend(consumed.queue);
        self.consumed_topic.extend(consumed.topic);
    }

    /// Takes what `s` settles out of what the subscription holds, and says
    /// what it consumed (nothing for a NACK).
    fn take_settled(&mut self, conn: u8, s: &Settle) -> Consumed {
        let mut consumed = Consumed::default();
        let Some(client) = self.clients.get_mut(&conn) else {
            return consumed;
        };
        let version = client.version;
        let Some(sub) = client.subs.get_mut(&s.sub) else {
            return consumed;
        };
        let pos = match version {
            Version::V1_2 => sub
                .held
                .iter()
                .position(|h| h.ack.is_some() && h.ack == s.ack),
            _ => sub.held.iter().position(|h| h.message_id == s.message_id),
        };
        let Some(pos) = pos else { return consumed };
        let settled: Vec<Held> = match sub.mode {
            AckMode::Client => sub.held.drain(..=pos).collect(),
            _ => vec![sub.held.remove(pos)],
        };
        if !s.nack {
            for h in settled {
                if is_topic(&sub.dest) {
                    consumed.topic.push((conn, s.sub.clone(), h.body));
                } else {
                    consumed.queue.push(h.body);
                }
            }
        }
        consumed
    }

    /// Takes every broker output, checking the guarantee on each delivery.
    fn absorb(&mut self, broker: &mut Broker) -> Result<usize, TestCaseError> {
        let mut n = 0;
        while let Some(out) = broker.poll_transmit() {
            n += 1;
            let conn = u8::try_from(out.connection.0).unwrap();
            let f = out.frame;
            match f.command() {
                Command::Message => {
                    let body = String::from_utf8(f.body().to_vec()).unwrap();
                    let dest = f.header("destination").unwrap().to_owned();
                    let sub_id = f.header("subscription").unwrap().to_owned();
                    if is_topic(&dest) {
                        prop_assert!(
                            !self
                                .consumed_topic
                                .contains(&(conn, sub_id.clone(), body.clone())),
                            "acknowledged topic copy {body} delivered again"
                        );
                    } else {
                        prop_assert!(
                            !self.consumed.contains(&body),
                            "acknowledged message {body} delivered again"
                        );
                    }
                    let client = self.clients.get_mut(&conn);
                    prop_assert!(client.is_some(), "delivery to a connection that is gone");
                    let client = client.unwrap();
                    let sub = client.subs.get_mut(&sub_id);
                    prop_assert!(sub.is_some(), "delivery to a subscription that is gone");
                    let sub = sub.unwrap();
                    prop_assert_eq!(&sub.dest, &dest);
                    if sub.mode == AckMode::Auto {
                        prop_assert!(f.header("ack").is_none());
                        if is_topic(&dest) {
                            self.consumed_topic.insert((conn, sub_id, body));
                        } else {
                            self.consumed.insert(body);
                        }
                    } else {
                        prop_assert!(f.header("ack").is_some());
                        sub.held.push(Held {
                            body,
                            ack: f.header("ack").map(str::to_owned),
                            message_id: f.header("message-id").unwrap().to_owned(),
                        });
                    }
                }
                Command::Receipt => {
                    let id = f.header("receipt-id").unwrap();
                    if let Some(bodies) = self.pending_receipts.remove(id) {
                        self.accepted.extend(bodies);
                    }
                    if let Some(consumed) = self.pending_settles.remove(id) {
                        self.consume(consumed);
                    }
                }
                Command::Error => {
                    // Only the bounds may refuse the well-formed frames this
                    // test sends; the broker has then forgotten the connection.
                    prop_assert_eq!(f.header("message"), Some("limit reached"), "{:?}", f);
                    if let Some(id) = f.header("receipt-id") {
                        self.pending_receipts.remove(id);
                        self.pending_settles.remove(id);
                    }
                    self.forget(conn);
                }
                other => prop_assert!(false, "unexpected output {other}"),
            }
        }
        Ok(n)
    }

    fn settle_frame(&self, conn: u8, s: &Settle, tx: Option<&str>) -> Frame {
        let version = self.clients.get(&conn).map_or(Version::V1_2, |c| c.version);
        let mut f = Frame::new(if s.nack { Command::Nack } else { Command::Ack });
        match version {
            Version::V1_2 => f = f.with_header("id", s.ack.as_deref().unwrap_or_default()),
            _ => {
                f = f
                    .with_header("message-id", &s.message_id)
                    .with_header("subscription", &s.sub)
            }
        }
        if let Some(tx) = tx {
            f = f.with_header("transaction", tx);
        }
        f
    }

    fn apply(&mut self, broker: &mut Broker, op: &Op) -> Result<(), TestCaseError> {
        let id = |c: u8| ConnectionId(u64::from(c));
        match *op {
            Op::Connect { conn, version } => {
                if let std::collections::hash_map::Entry::Vacant(slot) = self.clients.entry(conn) {
                    let version = Version::ALL[usize::from(version)];
                    broker.connect(id(conn), version);
                    slot.insert(Client {
                        version,
                        subs: BTreeMap::new(),
                        tx: None,
                    });
                }
            }
            Op::Disconnect { conn, graceful } => {
                if self.clients.contains_key(&conn) {
                    self.forget(conn);
                    if graceful {
                        let r = self.fresh("bye");
                        broker.handle_frame(
                            id(conn),
                            Frame::new(Command::Disconnect).with_header("receipt", &r),
                        );
                    } else {
                        broker.disconnect(id(conn));
                    }
                }
            }
            Op::Subscribe { conn, dest, mode } => {
                if self.clients.contains_key(&conn) {
                    let sub = self.fresh("s");
                    let (dest, mode) = (DESTINATIONS[usize::from(dest)], MODES[usize::from(mode)]);
                    let client = self.clients.get_mut(&conn).unwrap();
                    client.subs.insert(
                        sub.clone(),
                        Sub {
                            dest: dest.to_owned(),
                            mode,
                            held: Vec::new(),
                        },
                    );
                    let f = Frame::new(Command::Subscribe)
                        .with_header("id", &sub)
                        .with_header("destination", dest)
                        .with_header("ack", mode.as_str());
                    broker.handle_frame(id(conn), f);
                }
            }
            Op::Unsubscribe { conn, pick } => {
                if let Some(client) = self.clients.get_mut(&conn) {
                    if !client.subs.is_empty() {
                        let key = client
                            .subs
                            .keys()
                            .nth(usize::from(pick) % client.subs.len())
                            .unwrap()
                            .clone();
                        client.subs.remove(&key);
                        broker.handle_frame(
                            id(conn),
                            Frame::new(Command::Unsubscribe).with_header("id", &key),
                        );
                    }
                }
            }
            Op::Send { conn, dest, in_tx } => {
                if self.clients.contains_key(&conn) {
                    let body = self.fresh("m");
                    let dest = DESTINATIONS[usize::from(dest)];
                    if !is_topic(dest) {
                        self.sent_to_queue.insert(body.clone());
                    }
                    let mut f = Frame::new(Command::Send)
                        .with_header("destination", dest)
                        .with_body(body.clone());
                    let client = self.clients.get_mut(&conn).unwrap();
                    match (&mut client.tx, in_tx) {
                        (Some((tx, ops)), true) => {
                            f = f.with_header("transaction", tx);
                            ops.push(TxOp::Send { body });
                        }
                        _ => {
                            let r = self.fresh("r");
                            f = f.with_header("receipt", &r);
                            if !is_topic(dest) {
                                self.pending_receipts.insert(r, vec![body]);
                            }
                        }
                    }
                    broker.handle_frame(id(conn), f);
                }
            }
            Op::Settle {
                conn,
                pick_sub,
                pick_msg,
                nack,
                in_tx,
            } => {
                let Some(client) = self.clients.get(&conn) else {
                    return Ok(());
                };
                let holding: Vec<(&String, &Sub)> = client
                    .subs
                    .iter()
                    .filter(|(_, s)| !s.held.is_empty())
                    .collect();
                if holding.is_empty() {
                    return Ok(());
                }
                let (sub_id, sub) = holding[usize::from(pick_sub) % holding.len()];
                let held = &sub.held[usize::from(pick_msg) % sub.held.len()];
                let s = Settle {
                    sub: sub_id.clone(),
                    ack: held.ack.clone(),
                    message_id: held.message_id.clone(),
                    nack,
                };
                let nack_unsupported = nack && client.version == Version::V1_0;
                if nack_unsupported {
                    return Ok(());
                }
                let tx = client.tx.as_ref().filter(|_| in_tx).map(|(t, _)| t.clone());
                let f = self.settle_frame(conn, &s, tx.as_deref());
                match tx {
                    Some(_) => {
                        if let Some((_, ops)) = &mut self.clients.get_mut(&conn).unwrap().tx {
                            ops.push(TxOp::Settle(s));
                        }
                    }
                    None => self.settle(conn, &s),
                }
                broker.handle_frame(id(conn), f);
            }
            Op::Begin { conn } => {
                if self.clients.get(&conn).is_some_and(|c| c.tx.is_none()) {
                    let tx = self.fresh("tx");
                    self.clients.get_mut(&conn).unwrap().tx = Some((tx.clone(), Vec::new()));
                    broker.handle_frame(
                        id(conn),
                        Frame::new(Command::Begin).with_header("transaction", &tx),
                    );
                }
            }
            Op::Commit { conn } | Op::Abort { conn } => {
                let commit = matches!(op, Op::Commit { .. });
                let Some((tx, ops)) = self.clients.get_mut(&conn).and_then(|c| c.tx.take()) else {
                    return Ok(());
                };
                let r = self.fresh("c");
                let command = if commit {
                    Command::Commit
                } else {
                    Command::Abort
                };
                if commit {
                    let mut bodies = Vec::new();
                    let mut consumed = Consumed::default();
                    for op in &ops {
                        match op {
                            TxOp::Send { body } => bodies.push(body.clone()),
                            TxOp::Settle(s) => {
                                let c = self.take_settled(conn, s);
                                consumed.queue.extend(c.queue);
                                consumed.topic.extend(c.topic);
                            }
                        }
                    }
                    self.pending_settles.insert(r.clone(), consumed);
                    let queue_bodies = bodies
                        .into_iter()
                        .filter(|b| self.sent_to_queue.contains(b))
                        .collect();
                    self.pending_receipts.insert(r.clone(), queue_bodies);
                }
                let f = Frame::new(command)
                    .with_header("transaction", &tx)
                    .with_header("receipt", &r);
                broker.handle_frame(id(conn), f);
            }
        }
        self.absorb(broker)?;
        Ok(())
    }

    /// Every client acknowledges everything it holds, and each queue gets a
    /// subscriber, until the broker has nothing more to deliver.
    fn drain(&mut self, broker: &mut Broker) -> Result<(), TestCaseError> {
        for (i, dest) in DESTINATIONS
            .iter()
            .enumerate()
            .filter(|(_, d)| !is_topic(d))
        {
            let conn = 10 + u8::try_from(i).unwrap();
            self.apply(broker, &Op::Connect { conn, version: 2 })?;
            self.apply(
                broker,
                &Op::Subscribe {
                    conn,
                    dest: u8::try_from(i).unwrap(),
                    mode: 2,
                },
            )?;
            let _ = dest;
        }
        for _ in 0..10_000 {
            let mut settles = Vec::new();
            for (conn, client) in &self.clients {
                for (sub_id, sub) in &client.subs {
                    for h in &sub.held {
                        settles.push((
                            *conn,
                            Settle {
                                sub: sub_id.clone(),
                                ack: h.ack.clone(),
                                message_id: h.message_id.clone(),
                                nack: false,
                            },
                        ));
                    }
                }
            }
            if settles.is_empty() {
                return Ok(());
            }
            for (conn, s) in settles {
                let f = self.settle_frame(conn, &s, None);
                self.settle(conn, &s);
                broker.handle_frame(ConnectionId(u64::from(conn)), f);
                self.absorb(broker)?;
            }
        }
        prop_assert!(false, "drain did not settle");
        Ok(())
    }
}

fn check(config: BrokerConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut broker = Broker::new(config);
    let mut model = Model::default();
    for op in ops {
        model.apply(&mut broker, op)?;
    }
    model.drain(&mut broker)?;
    for dest in DESTINATIONS.iter().filter(|d| !is_topic(d)) {
        prop_assert_eq!(broker.queue_depth(dest), 0, "{} still holds messages", dest);
    }
    for conn in model.clients.keys() {
        prop_assert_eq!(
            broker.unacked(ConnectionId(u64::from(*conn))),
            0,
            "broker still holds deliveries of {}",
            conn
        );
    }
    let lost: Vec<&String> = model
        .accepted
        .iter()
        .filter(|b| !model.consumed.contains(*b))
        .collect();
    prop_assert!(lost.is_empty(), "accepted queue messages lost: {:?}", lost);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_never_redelivered_and_accepted_never_lost(ops in prop::collection::vec(op(), 0..80)) {
        check(BrokerConfig::default(), &ops)?;
    }

    #[test]
    fn the_guarantee_holds_at_tight_bounds(ops in prop::collection::vec(op(), 0..80)) {
        check(tight(), &ops)?;
    }
}

fn tight() -> BrokerConfig {
    BrokerConfig {
        max_unacked: 2,
        max_queue_depth: 3,
        max_topic_backlog: 1,
        max_transaction_frames: 3,
        ..BrokerConfig::default()
    }
}

/// A COMMIT holding an ACK and a SEND to a full queue is refused whole: the
/// ACK does not count, and the message it named is delivered again once
/// the refused connection is gone (a case proptest found in CI, where the
/// model had counted the ACK at the COMMIT rather than at its receipt).
#[test]
fn a_refused_commit_acknowledges_nothing() {
    let ops = [
        Op::Connect {
            conn: 1,
            version: 0,
        },
        Op::Connect {
            conn: 0,
            version: 0,
        },
        Op::Subscribe {
            conn: 1,
            dest: 1,
            mode: 1,
        },
        Op::Send {
            conn: 0,
            dest: 1,
            in_tx: false,
        },
        Op::Send {
            conn: 0,
            dest: 0,
            in_tx: false,
        },
        Op::Begin { conn: 1 },
        Op::Settle {
            conn: 1,
            pick_sub: 0,
            pick_msg: 0,
            nack: false,
            in_tx: true,
        },
        Op::Send {
            conn: 0,
            dest: 0,
            in_tx: false,
        },
        Op::Send {
            conn: 0,
            dest: 0,
            in_tx: false,
        },
        Op::Send {
            conn: 1,
            dest: 0,
            in_tx: true,
        },
        Op::Commit { conn: 1 },
    ];
    check(tight(), &ops).unwrap();
}
