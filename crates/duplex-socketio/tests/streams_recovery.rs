//! Connection state recovery across nodes with the streams adapter, in
//! simulated time and a simulated Redis (one stream, keys with no expiry):
//! two server machines, a client cut from one and restored by the other.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_socketio::cluster::streams::{
    Fields, RemoteSession, RestoreQuery, RestoreStep, StreamId,
};
use duplex_socketio::cluster::{ClusterNode, Opts, RequestsConfig, StreamsOptions};
use duplex_socketio::recovery::RecoveryConfig;
use duplex_socketio::server::{
    DisconnectReason, RecoveryRequest, Server, ServerConfig, ServerEvent, SocketId, Transmit,
};
use duplex_socketio::{Packet, ProtocolVersion};
use rand::SeedableRng;
use rand::rngs::StdRng;

type Srv = Server<&'static str, ()>;

/// One stream and the keys, as Redis would keep them.
#[derive(Default)]
struct Redis {
    stream: Vec<(StreamId, Fields)>,
    keys: HashMap<String, String>,
    ms: u64,
    /// Per node, the next stream index to read.
    cursors: Vec<usize>,
    /// XADD replies held back (node, namespace, token, id): a slow reply.
    held: Vec<(usize, String, u64, String)>,
    hold: bool,
}

impl Redis {
    fn xadd(&mut self, fields: Fields) -> StreamId {
        self.ms += 1;
        let id = StreamId {
            ms: self.ms,
            seq: 0,
        };
        self.stream.push((id, fields));
        id
    }

    /// Runs a restore's round trips.
    fn restore(&mut self, mut query: RestoreQuery) -> Option<RemoteSession> {
        loop {
            match query.step().clone() {
                RestoreStep::First { key, offset } => {
                    let stored = self.keys.remove(&key);
                    let exists = !self.xrange(offset, Some(offset)).is_empty();
                    query.handle_first(stored.as_deref(), exists);
                }
                RestoreStep::Page { start } => {
                    let page = self.xrange(start, None);
                    query.handle_page(page);
                }
                RestoreStep::Done => return query.finish(),
            }
        }
    }

    fn xrange(&self, start: StreamId, end: Option<StreamId>) -> Vec<(String, Fields)> {
        self.stream
            .iter()
            .filter(|(id, _)| *id >= start && end.is_none_or(|e| *id <= e))
            .map(|(id, f)| (id.to_string(), f.clone()))
            .collect()
    }
}

fn node(seed: u64, now: Instant) -> Srv {
    node_with(seed, now, StreamsOptions::default())
}

/// A node with these streams options (recovery on).
fn node_with(seed: u64, now: Instant, options: StreamsOptions) -> Srv {
    let mut config = ServerConfig::default().with_rng(StdRng::seed_from_u64(seed));
    config.recovery = Some(RecoveryConfig {
        max_disconnection_duration: Duration::from_secs(10),
        ..RecoveryConfig::default()
    });
    let mut s = Server::new(config);
    let options = StreamsOptions {
        offsets: true,
        ..options
    };
    let uid = format!("node{seed}");
    s.attach_cluster(
        "/",
        ClusterNode::streams(options, &uid, "/", RequestsConfig::default(), now),
    );
    s
}

/// Carries every node's output to Redis and Redis's to every node, until
/// nothing moves. Returns what each node wrote to its sessions.
fn pump(
    redis: &mut Redis,
    nodes: &mut [&mut Srv],
    now: Instant,
) -> Vec<Vec<(&'static str, String)>> {
    let mut out = vec![Vec::new(); nodes.len()];
    redis.cursors.resize(nodes.len(), 0);
    loop {
        let mut moved = false;
        for (i, s) in nodes.iter_mut().enumerate() {
            while let Some((ns, t)) = s.poll_cluster_transmit() {
                moved = true;
                let add = t.stream.expect("a stream entry");
                let id = redis.xadd(add.fields);
                if let Some(token) = add.token {
                    if redis.hold {
                        redis.held.push((i, ns, token, id.to_string()));
                    } else {
                        s.cluster_published(&ns, token, Some(&id.to_string()));
                    }
                }
            }
            while let Some(r) = s.poll_recovery_request() {
                moved = true;
                match r {
                    RecoveryRequest::Persist {
                        key, value, ttl, ..
                    } => {
                        assert_eq!(ttl, Duration::from_secs(10));
                        redis.keys.insert(key, value);
                    }
                    RecoveryRequest::Restore {
                        session,
                        namespace,
                        query,
                    } => {
                        let found = redis.restore(query);
                        s.restore_answer(&session, &namespace, found);
                    }
                }
            }
            while s.poll_cluster_event().is_some() {}
            let from = redis.cursors[i];
            for (id, fields) in &redis.stream[from..] {
                moved = true;
                s.cluster_receive_entry("/", &id.to_string(), fields, now)
                    .unwrap();
            }
            redis.cursors[i] = redis.stream.len();
            while let Some(t) = s.poll_transmit() {
                if let Transmit::Packet { session, packet } = t {
                    out[i].push((session, packet.text.as_str().to_owned()));
                }
            }
        }
        if !moved {
            return out;
        }
    }
}

/// Opens `session` and sends its CONNECT (earlier events are dropped).
fn connect(s: &mut Srv, session: &'static str, auth: &str, now: Instant) {
    while s.poll_event().is_some() {}
    s.open(session, ProtocolVersion::V5, now);
    s.handle_text(&session, Bytes::from(format!("0{auth}")));
}

fn accept_pending(s: &mut Srv) -> Option<(SocketId, bool)> {
    while let Some(e) = s.poll_event() {
        if let ServerEvent::ConnectRequest {
            session, namespace, ..
        } = e
        {
            let restoring = s.restoring(&session, &namespace);
            let id = s.accept(&session, &namespace).unwrap();
            return Some((id, restoring));
        }
    }
    None
}

fn tick(n: i64) -> Packet {
    Packet::event_with("/", "tick", &[n.into()], None).unwrap()
}

fn args_of(text: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&text[text.find('[').unwrap()..]).unwrap()
}

/// The `pid` in the CONNECT answer (`0{"sid":...,"pid":...}`) a node
/// wrote last.
fn pid_in(written: &[(&'static str, String)]) -> String {
    let answer = &written.last().unwrap().1;
    serde_json::from_str::<serde_json::Value>(&answer[1..]).unwrap()["pid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The CONNECT auth asking to restore session `pid` from `offset` on.
fn restore_auth(pid: &str, offset: &str) -> String {
    format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#)
}

/// A streams node with offsets (and these `options` otherwise), socket
/// `s1` in its own room, its first output taken.
fn node_with_s1(options: StreamsOptions, now: Instant) -> ClusterNode {
    let options = StreamsOptions {
        offsets: true,
        ..options
    };
    let mut node = ClusterNode::streams(options, "me", "/", RequestsConfig::default(), now);
    node.add_all("s1", &["s1".to_owned()]);
    while node.poll_transmit().is_some() {}
    node
}

#[test]
fn a_client_cut_from_one_node_is_restored_by_another_with_nothing_lost() {
    let now = Instant::now();
    let mut redis = Redis::default();
    let mut a = node(1, now);
    let mut b = node(2, now);
    a.handle_timeout(now);
    b.handle_timeout(now);
    pump(&mut redis, &mut [&mut a, &mut b], now);

    connect(&mut a, "c1", "", now);
    let (id, _) = accept_pending(&mut a).unwrap();
    a.join("/", &id, ["room1"]);
    let out = pump(&mut redis, &mut [&mut a, &mut b], now);
    let pid = pid_in(&out[0]);

    // A direct emit goes through the stream; the local copy waits for its id.
    a.send(&"c1", &tick(0)).unwrap();
    let out = pump(&mut redis, &mut [&mut a, &mut b], now);
    assert_eq!(out[0].len(), 1);
    let first = args_of(&out[0][0].1);
    let offset = first.last().unwrap().as_str().unwrap().to_owned();
    assert_eq!(offset, redis.stream.last().unwrap().0.to_string());

    // The cut: node a keeps the session in Redis.
    a.closed(&"c1", DisconnectReason::TransportClose);
    pump(&mut redis, &mut [&mut a, &mut b], now);
    assert_eq!(redis.keys.len(), 1);
    let key = format!("sio:session:{pid}");
    assert!(redis.keys.contains_key(&key));

    // While away: a direct emit (a node whose handle outlived the
    // socket), broadcasts from both nodes, some not for it.
    a.broadcast_opts("/", &Opts::rooms([id.as_str()]), &tick(1));
    b.broadcast_opts("/", &Opts::default(), &tick(2));
    b.broadcast_opts("/", &Opts::rooms(["room1"]), &tick(3));
    b.broadcast_opts("/", &Opts::rooms(["room2"]), &tick(4));
    a.broadcast_opts("/", &Opts::default().except(["room1"]), &tick(5));
    pump(&mut redis, &mut [&mut a, &mut b], now);

    // Back, on node b.
    connect(&mut b, "c2", &restore_auth(&pid, &offset), now);
    assert!(b.poll_event().is_none(), "the CONNECT waits for Redis");
    pump(&mut redis, &mut [&mut a, &mut b], now);
    let (id2, restoring) = accept_pending(&mut b).unwrap();
    assert!(restoring);
    assert_eq!(id2, id);
    assert!(b.recovered("/", &id2));
    assert!(redis.keys.is_empty(), "taken with GETDEL");
    let out = pump(&mut redis, &mut [&mut a, &mut b], now);
    let texts: Vec<&str> = out[1].iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    let ticks: Vec<i64> = texts[..3]
        .iter()
        .map(|t| args_of(t)[1].as_i64().unwrap())
        .collect();
    assert_eq!(ticks, [1, 2, 3]);
    assert!(texts[3].starts_with(&format!(r#"0{{"sid":"{id}","pid":"{pid}"}}"#)));
    // Its rooms came back: a live broadcast to room1 from node a reaches it once.
    a.broadcast_opts("/", &Opts::rooms(["room1"]), &tick(6));
    let out = pump(&mut redis, &mut [&mut a, &mut b], now);
    assert_eq!(out[1].len(), 1);
    assert_eq!(args_of(&out[1][0].1)[1], 6);
}

#[test]
fn entries_delivered_while_the_restore_travels_are_replayed_once() {
    let now = Instant::now();
    let mut redis = Redis::default();
    let mut a = node(1, now);
    let mut b = node(2, now);
    let (auth, id) = cut_after_one_event(&mut redis, &mut [&mut a, &mut b], now);

    // The restore's answer is in, the CONNECT not yet accepted: node b's
    // own broadcast (its XADD reply late) and node a's arrive meanwhile.
    connect(&mut b, "c2", &auth, now);
    pump(&mut redis, &mut [&mut a, &mut b], now);
    redis.hold = true;
    b.broadcast_opts("/", &Opts::default(), &tick(1));
    a.broadcast_opts("/", &Opts::default(), &tick(2));
    pump(&mut redis, &mut [&mut a, &mut b], now);
    let (id2, _) = accept_pending(&mut b).unwrap();
    assert_eq!(id2, id);
    redis.hold = false;
    for (i, ns, token, sid) in std::mem::take(&mut redis.held) {
        let s = if i == 0 { &mut a } else { &mut b };
        s.cluster_published(&ns, token, Some(&sid));
    }
    let out = pump(&mut redis, &mut [&mut a, &mut b], now);
    let ticks: Vec<i64> = out[1]
        .iter()
        .filter(|(_, t)| t.starts_with("2"))
        .map(|(_, t)| args_of(t)[1].as_i64().unwrap())
        .collect();
    let mut sorted = ticks.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2], "each once: {ticks:?}");
}

/// Connects `c1` on the first of `nodes`, has it receive one event and
/// cuts it: returns the CONNECT auth that restores it and its socket id.
fn cut_after_one_event(
    redis: &mut Redis,
    nodes: &mut [&mut Srv],
    now: Instant,
) -> (String, SocketId) {
    connect(nodes[0], "c1", "", now);
    let (id, _) = accept_pending(nodes[0]).unwrap();
    let out = pump(redis, nodes, now);
    let pid = pid_in(&out[0]);
    nodes[0].send(&"c1", &tick(0)).unwrap();
    pump(redis, nodes, now);
    let offset = redis.stream.last().unwrap().0.to_string();
    nodes[0].closed(&"c1", DisconnectReason::TransportClose);
    pump(redis, nodes, now);
    (restore_auth(&pid, &offset), id)
}

/// Review of #16, finding 3: a session found in Redis, whose window of
/// broadcasts delivered here since the restore's read was forgotten,
/// used to be raised as a restoring CONNECT (skipping the middlewares)
/// and then accepted as a fresh socket. The decision is now taken when the
/// answer comes: the CONNECT is a fresh one, middlewares included.
#[test]
fn a_restore_whose_window_was_forgotten_is_fresh_and_runs_the_middlewares() {
    let now = Instant::now();
    let mut redis = Redis::default();
    let mut a = node(1, now);
    let recent = StreamsOptions {
        recent: 2,
        ..StreamsOptions::default()
    };
    let mut b = node_with(2, now, recent);
    let (auth, id) = cut_after_one_event(&mut redis, &mut [&mut a, &mut b], now);

    connect(&mut b, "c2", &auth, now);
    let Some(RecoveryRequest::Restore {
        session,
        namespace,
        query,
    }) = b.poll_recovery_request()
    else {
        panic!("a restore");
    };
    let found = redis.restore(query);
    assert!(found.is_some(), "the session is in Redis");
    // Three broadcasts reach node b while the answer travels: more than
    // it remembers.
    for n in 1..=3 {
        a.broadcast_opts("/", &Opts::default(), &tick(n));
    }
    pump(&mut redis, &mut [&mut a, &mut b], now);
    b.restore_answer(&session, &namespace, found);
    let Some(ServerEvent::ConnectRequest { .. }) = b.poll_event() else {
        panic!("a CONNECT request");
    };
    assert!(!b.restoring(&session, &namespace));
    assert!(!b.skips_middlewares(&session, &namespace));
    let id2 = b.accept(&session, &namespace).unwrap();
    assert_ne!(id2, id);
    assert!(!b.recovered("/", &id2));
}

#[test]
fn unknown_sessions_and_foreign_offsets_are_fresh() {
    let now = Instant::now();
    let mut redis = Redis::default();
    let mut a = node(1, now);
    // An in-memory offset is not a stream id: no lookup, a fresh session at once.
    connect(&mut a, "c1", r#"{"pid":"x","offset":"OlFvMW0.3"}"#, now);
    let (_, restoring) = accept_pending(&mut a).unwrap();
    assert!(!restoring);
    assert!(a.poll_recovery_request().is_none());
    // A stream id with no session: looked up, fresh.
    connect(&mut a, "c2", r#"{"pid":"nope","offset":"1-0"}"#, now);
    pump(&mut redis, &mut [&mut a], now);
    let (_, restoring) = accept_pending(&mut a).unwrap();
    assert!(!restoring);
}

#[test]
fn a_refused_or_abandoned_restore_gives_the_session_back() {
    let now = Instant::now();
    let mut redis = Redis::default();
    let mut a = node(1, now);
    let (auth, _) = cut_after_one_event(&mut redis, &mut [&mut a], now);

    connect(&mut a, "c2", &auth, now);
    pump(&mut redis, &mut [&mut a], now);
    assert!(redis.keys.is_empty());
    let Some(ServerEvent::ConnectRequest {
        session, namespace, ..
    }) = a.poll_event()
    else {
        panic!("a CONNECT request");
    };
    a.reject(&session, &namespace, "no", None).unwrap();
    pump(&mut redis, &mut [&mut a], now);
    assert_eq!(redis.keys.len(), 1, "refused: kept again");

    // The connection goes while the lookup travels.
    connect(&mut a, "c3", &auth, now);
    a.closed(&"c3", DisconnectReason::TransportClose);
    pump(&mut redis, &mut [&mut a], now);
    assert_eq!(redis.keys.len(), 1, "abandoned: kept again");
    assert!(
        a.poll_event()
            .is_none_or(|e| !matches!(e, ServerEvent::ConnectRequest { .. }))
    );
}

#[test]
fn local_delivery_follows_the_stream_order() {
    use duplex_socketio::cluster::sharded::{ClusterBody, ClusterMessage};
    use duplex_socketio::cluster::streams::encode_entry;
    use duplex_socketio::cluster::{LocalAction, NodeEvent, WirePacket};

    let now = Instant::now();
    let mut node = node_with_s1(StreamsOptions::default(), now);
    assert!(
        node.broadcast(WirePacket::event("mine", []), &Opts::default())
            .is_empty()
    );
    let add = node.poll_transmit().unwrap().stream.unwrap();
    node.published(add.token.unwrap(), Some("5-0"));
    assert_eq!(
        node.poll_event(),
        None,
        "waits until the stream is read up to it"
    );
    // Another node's entry, before this one's in the stream, is read first.
    let theirs = ClusterMessage {
        uid: "other".into(),
        nsp: "/".into(),
        body: ClusterBody::Broadcast {
            packet: WirePacket::event("theirs", []),
            request_id: None,
            opts: Opts::default(),
        },
    };
    node.receive_entry("4-0", &encode_entry(&theirs), now)
        .unwrap();
    node.receive_entry("5-0", &add.fields, now).unwrap();
    let got: Vec<Vec<serde_json::Value>> = std::iter::from_fn(|| node.poll_event())
        .filter_map(|e| match e {
            NodeEvent::Local(LocalAction::Emit {
                sockets, packet, ..
            }) => {
                assert_eq!(sockets, ["s1"]);
                Some(packet.data.iter().map(|v| v.to_json()).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            vec![serde_json::json!("theirs"), serde_json::json!("4-0")],
            vec![serde_json::json!("mine"), serde_json::json!("5-0")],
        ]
    );
}

mod restore_properties {
    use duplex_socketio::Value;
    use duplex_socketio::cluster::sharded::{ClusterBody, ClusterMessage};
    use duplex_socketio::cluster::streams::{
        Fields, RestoreQuery, RestoreStep, encode_entry, encode_session,
    };
    use duplex_socketio::cluster::{Opts, WirePacket};
    use duplex_socketio::recovery::Session;
    use proptest::prelude::*;

    const ROOMS: [&str; 4] = ["sid", "r1", "r2", "r3"];

    /// One entry: (namespace is ours, a broadcast, rooms mask, except mask,
    /// volatile, with an ack request id).
    type Spec = (bool, bool, u8, u8, bool, bool);

    fn pick(mask: u8) -> Vec<String> {
        ROOMS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, r)| (*r).to_owned())
            .collect()
    }

    fn message(n: usize, spec: Spec) -> ClusterMessage {
        let (ours, broadcast, rooms, except, volatile, acked) = spec;
        let mut opts = Opts::rooms(pick(rooms)).except(pick(except));
        if volatile {
            opts.flags = Some(Value::Object(vec![("volatile".into(), Value::Bool(true))]));
        }
        let body = if broadcast {
            ClusterBody::Broadcast {
                packet: WirePacket::event("ev", [Value::from(n as u64)]),
                request_id: acked.then(|| format!("req{n}")),
                opts,
            }
        } else {
            ClusterBody::Heartbeat
        };
        ClusterMessage {
            uid: "other".into(),
            nsp: if ours { "/" } else { "/other" }.into(),
            body,
        }
    }

    proptest! {
        /// Whatever the entries and however the stream is paged, a restore
        /// replays exactly the broadcasts after the offset that Node's
        /// filter selects for the session's rooms (never offset-less ones),
        /// in stream order, each with its id.
        #[test]
        fn a_restore_replays_exactly_what_the_rooms_select(
            specs in proptest::collection::vec(any::<Spec>(), 0..40),
            session_mask in 1u8..16,
            page in 1usize..8,
            from in 0usize..5,
        ) {
            let rooms = pick(session_mask | 1);
            let session = Session { sid: "sid".into(), pid: "p".into(), rooms: rooms.clone(), data: Value::Null };
            // Ids 1-0, 2-0, ...; the client's offset is entry `from` (0: a
            // first entry written before the specs).
            let mut stream: Vec<(String, Fields)> = vec![("1-0".into(), encode_entry(&message(0, (true, false, 0, 0, false, false))))];
            for (i, spec) in specs.iter().enumerate() {
                stream.push((format!("{}-0", i + 2), encode_entry(&message(i + 1, *spec))));
            }
            let from = from.min(stream.len() - 1);
            let offset = stream[from].0.clone();
            let mut want = Vec::new();
            for (i, spec) in specs.iter().enumerate() {
                let (ours, broadcast, r, e, volatile, acked) = *spec;
                if i < from || !(ours && broadcast) || volatile || acked {
                    continue;
                }
                let (r, e) = (pick(r), pick(e));
                let included = r.is_empty() || rooms.iter().any(|x| r.contains(x));
                let excluded = rooms.iter().any(|x| e.contains(x));
                if included && !excluded {
                    want.push(vec![Value::from("ev"), Value::from((i + 1) as u64), Value::from(format!("{}-0", i + 2).as_str())]);
                }
            }
            let mut q = RestoreQuery::new("/", "k:", "p", &offset).unwrap();
            q.handle_first(Some(&encode_session(&session)), true);
            while let RestoreStep::Page { start } = q.step().clone() {
                let chunk: Vec<(String, Fields)> = stream
                    .iter()
                    .filter(|(id, _)| duplex_socketio::cluster::streams::StreamId::parse(id).unwrap() >= start)
                    .take(page)
                    .cloned()
                    .collect();
                q.handle_page(chunk);
            }
            let got: Vec<Vec<Value>> = q.finish().unwrap().missed.into_iter().map(|m| m.data).collect();
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn broadcasts_awaiting_their_entry_are_bounded() {
    use duplex_socketio::cluster::{LocalAction, NodeEvent, WirePacket};

    let now = Instant::now();
    let options = StreamsOptions {
        max_pending: 2,
        ..StreamsOptions::default()
    };
    let mut node = node_with_s1(options, now);
    for n in 0..5u64 {
        node.broadcast(WirePacket::event("n", [n.into()]), &Opts::default());
        let token = node.poll_transmit().unwrap().stream.unwrap().token.unwrap();
        // The reply comes, the entry is never read back (a stalled reader).
        node.published(token, Some(&format!("{}-0", n + 1)));
    }
    let got: Vec<serde_json::Value> = std::iter::from_fn(|| node.poll_event())
        .filter_map(|e| match e {
            NodeEvent::Local(LocalAction::Emit { packet, .. }) => Some(packet.data[1].to_json()),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [0, 1, 2],
        "the oldest go out, in order, beyond 2 waiting"
    );
}

/// Review of #16, finding 5: a broadcast of this node whose entry is gone
/// before the reader gets to it (trimmed by `MAXLEN`, or Redis restarted
/// empty) used to wait for ever on a quiet namespace. It goes out, with
/// its id as offset, `read_back_timeout` after its `XADD` reply.
#[test]
fn an_own_broadcast_never_read_back_is_delivered_after_the_deadline() {
    use duplex_socketio::cluster::{LocalAction, NodeEvent, WirePacket};

    let now = Instant::now();
    let options = StreamsOptions {
        read_back_timeout: Duration::from_secs(3),
        ..StreamsOptions::default()
    };
    let mut node = node_with_s1(options, now);
    node.broadcast(WirePacket::event("lost", []), &Opts::default());
    let token = node.poll_transmit().unwrap().stream.unwrap().token.unwrap();
    let replied = now + Duration::from_secs(1);
    node.published(token, Some("7-0"));
    // The driver is asked for the time at once, to start the wait.
    assert_eq!(node.poll_timeout(), Some(now));
    node.handle_timeout(replied);
    assert_eq!(node.poll_event(), None, "waits for its entry");
    let deadline = replied + Duration::from_secs(3);
    assert_eq!(node.poll_timeout(), Some(deadline));
    node.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(node.poll_event(), None);
    node.handle_timeout(deadline);
    let Some(NodeEvent::Local(LocalAction::Emit {
        sockets, packet, ..
    })) = node.poll_event()
    else {
        panic!("delivered at the deadline");
    };
    assert_eq!(sockets, ["s1"]);
    assert_eq!(
        packet.data.iter().map(|v| v.to_json()).collect::<Vec<_>>(),
        [serde_json::json!("lost"), serde_json::json!("7-0")]
    );
    assert_eq!(node.poll_timeout(), None);
}

/// A node with one socket (`c1`) that has just broadcast `tick(1)`: the
/// broadcast's `XADD`, taken from the node and not yet answered.
fn own_broadcast_on_its_way() -> (Instant, Srv, String, duplex_socketio::cluster::Transmit) {
    let now = Instant::now();
    let mut redis = Redis::default();
    let mut a = node(1, now);
    connect(&mut a, "c1", "", now);
    accept_pending(&mut a).unwrap();
    pump(&mut redis, &mut [&mut a], now);
    a.broadcast_opts("/", &Opts::default(), &tick(1));
    let (ns, t) = a.poll_cluster_transmit().unwrap();
    (now, a, ns, t)
}

/// Finding 5 through the server machine: the broadcast released at the
/// deadline reaches the socket at `Server::handle_timeout`, with its id.
#[test]
fn a_server_delivers_an_own_broadcast_never_read_back_at_the_deadline() {
    let (now, mut a, ns, t) = own_broadcast_on_its_way();
    // The XADD answered, but the entry is gone before the reader gets it.
    a.cluster_published(&ns, t.stream.unwrap().token.unwrap(), Some("99-0"));
    assert!(a.poll_transmit().is_none(), "waits for its entry");
    let later = now + Duration::from_secs(1);
    assert!(
        a.poll_timeout().is_some_and(|t| t <= now),
        "asks for the time"
    );
    a.handle_timeout(later);
    let deadline = later + StreamsOptions::default().read_back_timeout;
    assert_eq!(a.poll_timeout(), Some(deadline));
    assert!(a.poll_transmit().is_none());
    a.handle_timeout(deadline);
    let Some(Transmit::Packet { session, packet }) = a.poll_transmit() else {
        panic!("delivered at the deadline");
    };
    assert_eq!(session, "c1");
    assert_eq!(
        args_of(packet.text.as_str()),
        [serde_json::json!("tick"), 1.into(), "99-0".into()]
    );
}

/// A broadcast whose `XADD` the transport could not even queue (its queue
/// full) still reaches the local socket at once, without an offset, as
/// after a failed `XADD`: nothing waits for an id that will never come.
#[test]
fn a_broadcast_the_transport_refused_reaches_the_local_sockets_without_an_offset() {
    let (_, mut a, ns, t) = own_broadcast_on_its_way();
    assert!(a.poll_transmit().is_none(), "waits for its id");
    a.cluster_transmit_refused(&ns, &t);
    let Some(Transmit::Packet { session, packet }) = a.poll_transmit() else {
        panic!("delivered once refused");
    };
    assert_eq!(session, "c1");
    assert_eq!(
        args_of(packet.text.as_str()),
        [serde_json::json!("tick"), 1.into()]
    );
}
