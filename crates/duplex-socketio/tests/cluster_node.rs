//! Several `ClusterNode`s joined by a pretend Redis (channels, patterns,
//! subscriber counts), in simulated time: what one node does reaches
//! exactly the intended sockets of the others, requests collect every
//! answer, and the sharded dynamic mode subscribes to room channels.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use duplex_socketio::Value;
use duplex_socketio::cluster::sharded::SubscriptionMode;
use duplex_socketio::cluster::{
    Answer, ClusterNode, FetchedSocket, LocalAction, NodeEvent, Opts, Protocol, RequestEvent,
    RequestsConfig, Subscription, WirePacket,
};

struct Bus {
    nodes: Vec<ClusterNode>,
    subs: Vec<HashSet<String>>,
    patterns: Vec<HashSet<String>>,
    /// What each node's local server was asked to do.
    actions: Vec<Vec<LocalAction>>,
    results: Vec<Vec<RequestEvent>>,
}

impl Bus {
    fn new(protocol: Protocol, uids: &[&str]) -> Self {
        let nodes: Vec<ClusterNode> = uids
            .iter()
            .map(|u| ClusterNode::new(protocol.clone(), u, "/", RequestsConfig::default()))
            .collect();
        let n = nodes.len();
        let mut bus = Self {
            nodes,
            subs: vec![HashSet::new(); n],
            patterns: vec![HashSet::new(); n],
            actions: vec![Vec::new(); n],
            results: vec![Vec::new(); n],
        };
        bus.run();
        bus
    }

    fn server_count(&self) -> usize {
        let ch = self.nodes[0].count_channel().to_owned();
        self.subs.iter().filter(|s| s.contains(&ch)).count()
    }

    /// Delivers everything published until nothing moves.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(s) = self.nodes[i].poll_subscription() {
                    moved = true;
                    match s {
                        Subscription::Subscribe(c) => {
                            self.subs[i].insert(c);
                        }
                        Subscription::PatternSubscribe(p) => {
                            self.patterns[i].insert(p);
                        }
                        Subscription::Unsubscribe(c) => {
                            self.subs[i].remove(&c);
                        }
                    }
                }
                while let Some(t) = self.nodes[i].poll_transmit() {
                    moved = true;
                    for j in 0..self.nodes.len() {
                        let by_pattern = self.patterns[j]
                            .iter()
                            .any(|p| t.channel.starts_with(p.trim_end_matches('*')));
                        if self.subs[j].contains(&t.channel) || by_pattern {
                            self.nodes[j].receive(&t.channel, &t.payload).unwrap();
                        }
                    }
                }
                while let Some(e) = self.nodes[i].poll_event() {
                    moved = true;
                    match e {
                        NodeEvent::Local(a) => self.actions[i].push(a),
                        NodeEvent::Request(r) => self.results[i].push(r),
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn connect(&mut self, node: usize, sid: &str, rooms: &[&str]) {
        let mut all = vec![sid.to_owned()];
        all.extend(rooms.iter().map(|r| r.to_string()));
        self.nodes[node].add_all(sid, &all);
        self.run();
    }

    fn take_actions(&mut self) -> Vec<Vec<LocalAction>> {
        self.actions.iter_mut().map(std::mem::take).collect()
    }
}

fn classic() -> Protocol {
    Protocol::default()
}

fn sharded(mode: SubscriptionMode) -> Protocol {
    Protocol::Sharded {
        prefix: "socket.io".into(),
        mode,
    }
}

fn emitted(actions: &[LocalAction]) -> Vec<Vec<String>> {
    actions
        .iter()
        .filter_map(|a| match a {
            LocalAction::Emit { sockets, .. } => {
                let mut s = sockets.clone();
                s.sort();
                Some(s)
            }
            _ => None,
        })
        .collect()
}

fn sid(n: u32) -> String {
    format!("{n:020}")
}

fn both() -> Vec<Protocol> {
    vec![
        classic(),
        sharded(SubscriptionMode::Static),
        sharded(SubscriptionMode::Dynamic),
        sharded(SubscriptionMode::DynamicPrivate),
    ]
}

#[test]
fn a_room_broadcast_reaches_each_member_on_other_nodes_once() {
    for protocol in both() {
        let mut bus = Bus::new(protocol.clone(), &["aaaaaa", "bbbbbb", "cccccc"]);
        bus.connect(0, &sid(1), &["r1"]);
        bus.connect(1, &sid(2), &["r1", "r2"]);
        bus.connect(2, &sid(3), &[]);
        bus.take_actions();

        let local = bus.nodes[2].broadcast(WirePacket::event("e", []), &Opts::rooms(["r1", "r2"]));
        assert!(local.is_empty());
        bus.run();
        let a = bus.take_actions();
        assert_eq!(emitted(&a[0]), vec![vec![sid(1)]], "{protocol:?}");
        assert_eq!(emitted(&a[1]), vec![vec![sid(2)]], "{protocol:?}");
        assert!(
            emitted(&a[2]).is_empty(),
            "{protocol:?}: no echo to the sender"
        );

        // One room, with except, from a node without members.
        bus.nodes[2].broadcast(
            WirePacket::event("e", []),
            &Opts::rooms(["r1"]).except(["r2"]),
        );
        bus.run();
        let a = bus.take_actions();
        assert_eq!(emitted(&a[0]), vec![vec![sid(1)]], "{protocol:?}");
        assert!(emitted(&a[1]).iter().all(Vec::is_empty), "{protocol:?}");

        // To a socket id on another node.
        bus.nodes[0].broadcast(WirePacket::event("e", []), &Opts::rooms([sid(3)]));
        bus.run();
        let a = bus.take_actions();
        assert_eq!(emitted(&a[2]), vec![vec![sid(3)]], "{protocol:?}");
    }
}

#[test]
fn local_broadcasts_are_not_published() {
    for protocol in both() {
        let mut bus = Bus::new(protocol, &["aaaaaa", "bbbbbb"]);
        bus.connect(1, &sid(2), &[]);
        let opts = Opts {
            flags: Some(Value::Object(vec![("local".into(), Value::Bool(true))])),
            ..Opts::default()
        };
        bus.nodes[0].broadcast(WirePacket::event("e", []), &opts);
        assert!(bus.nodes[0].poll_transmit().is_none());
    }
}

#[test]
fn fetch_sockets_collects_every_node() {
    for protocol in both() {
        let mut bus = Bus::new(protocol.clone(), &["aaaaaa", "bbbbbb", "cccccc"]);
        bus.connect(0, &sid(1), &["r"]);
        bus.connect(1, &sid(2), &["r"]);
        bus.connect(2, &sid(3), &[]);
        bus.take_actions();
        let t0 = Instant::now();
        let count = bus.server_count();
        assert_eq!(count, 3);
        let mine = FetchedSocket {
            id: sid(1),
            handshake: Value::Null,
            rooms: vec![sid(1), "r".into()],
            data: Value::Null,
        };
        bus.nodes[0]
            .fetch_sockets("req1", &Opts::rooms(["r"]), vec![mine], count, t0)
            .unwrap();
        bus.run();
        // The other nodes are asked; each answers with its selection.
        let asked: Vec<(usize, Vec<String>, String, String)> = bus
            .take_actions()
            .into_iter()
            .enumerate()
            .flat_map(|(i, acts)| {
                acts.into_iter().filter_map(move |a| match a {
                    LocalAction::Fetch {
                        sockets,
                        requester,
                        request_id,
                    } => Some((i, sockets, requester, request_id)),
                    _ => None,
                })
            })
            .collect();
        assert_eq!(asked.len(), 2, "{protocol:?}");
        for (i, sockets, requester, request_id) in asked {
            let answer = sockets
                .into_iter()
                .map(|id| FetchedSocket {
                    rooms: vec![id.clone()],
                    id,
                    handshake: Value::Null,
                    data: Value::Null,
                })
                .collect();
            bus.nodes[i].answer_fetch(&requester, &request_id, answer);
        }
        bus.run();
        match bus.results[0].as_slice() {
            [RequestEvent::Completed { result, .. }] => match result.as_slice() {
                [Answer::Sockets(all)] => {
                    let mut ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
                    ids.sort();
                    assert_eq!(ids, [sid(1), sid(2)], "{protocol:?}");
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{protocol:?}: {other:?}"),
        }
        // And without enough answers the request times out.
        bus.nodes[0]
            .fetch_sockets("req2", &Opts::default(), vec![], count, t0)
            .unwrap();
        bus.run();
        bus.take_actions();
        bus.nodes[0].handle_timeout(t0 + Duration::from_secs(5));
        bus.run();
        assert!(matches!(
            bus.results[0].last(),
            Some(RequestEvent::TimedOut { .. })
        ));
    }
}

#[test]
fn server_side_emit_with_ack_collects_each_other_node() {
    for protocol in both() {
        let mut bus = Bus::new(protocol.clone(), &["aaaaaa", "bbbbbb", "cccccc"]);
        let count = bus.server_count();
        bus.nodes[0]
            .server_side_emit(
                vec![Value::String("sse-ack".into())],
                Some(("q1", count)),
                Instant::now(),
            )
            .unwrap();
        bus.run();
        let actions = bus.take_actions();
        assert!(
            actions[0].is_empty(),
            "{protocol:?}: no own server-side emit"
        );
        for (i, acts) in actions.into_iter().enumerate() {
            for a in acts {
                if let LocalAction::ServerSideEmit {
                    reply: Some((requester, id)),
                    ..
                } = a
                {
                    bus.nodes[i].answer_server_side_emit(&requester, &id, Value::Number(i.into()));
                }
            }
        }
        bus.run();
        match bus.results[0].as_slice() {
            [RequestEvent::Completed { result, .. }] => assert_eq!(result.len(), 2),
            other => panic!("{protocol:?}: {other:?}"),
        }
    }
}

#[test]
fn broadcast_with_ack_gets_counts_and_acks() {
    for protocol in both() {
        let mut bus = Bus::new(protocol.clone(), &["aaaaaa", "bbbbbb"]);
        bus.connect(1, &sid(2), &["r"]);
        bus.take_actions();
        let t0 = Instant::now();
        let local = bus.nodes[0]
            .broadcast_with_ack(
                "b1",
                WirePacket::event("ack-req", []),
                &Opts::rooms(["r"]),
                Duration::from_secs(1),
                t0,
            )
            .unwrap();
        assert!(local.is_empty());
        bus.run();
        let actions = bus.take_actions();
        match actions[1].as_slice() {
            [
                LocalAction::EmitWithAck {
                    sockets,
                    requester,
                    request_id,
                    ..
                },
            ] => {
                assert_eq!(sockets, &[sid(2)]);
                bus.nodes[1].answer_client_count(requester, request_id, 1);
                bus.nodes[1].answer_client_ack(requester, request_id, Value::Bool(true));
            }
            other => panic!("{protocol:?}: {other:?}"),
        }
        bus.run();
        assert_eq!(
            bus.results[0],
            vec![
                RequestEvent::ClientCount {
                    request_id: "b1".into(),
                    client_count: 1
                },
                RequestEvent::ClientAck {
                    request_id: "b1".into(),
                    value: Value::Bool(true)
                },
            ],
            "{protocol:?}"
        );
    }
}

#[test]
fn classic_joins_apply_on_every_node_including_the_sender_once() {
    let mut bus = Bus::new(classic(), &["aaaaaa", "bbbbbb"]);
    bus.connect(0, &sid(1), &["r"]);
    bus.connect(1, &sid(2), &["r"]);
    bus.take_actions();
    let now = bus.nodes[0].sockets_rooms(&Opts::rooms(["r"]), &["new".into()], false);
    assert!(
        now.is_empty(),
        "classic applies its own request when it comes back"
    );
    bus.run();
    let joins: Vec<usize> = bus
        .take_actions()
        .iter()
        .map(|acts| {
            acts.iter()
                .filter(|a| matches!(a, LocalAction::Join { .. }))
                .count()
        })
        .collect();
    assert_eq!(joins, [1, 1]);
}

/// `@socket.io/redis-emitter` 5.1 sends its room operations without a uid
/// (`{type: 2, opts, rooms}`): every node applies them.
#[test]
fn emitter_room_operations_without_uid_apply() {
    let mut bus = Bus::new(classic(), &["aaaaaa"]);
    bus.connect(0, &sid(1), &["r"]);
    bus.connect(0, &sid(2), &[]);
    bus.take_actions();
    let request_channel = bus.nodes[0].count_channel().to_owned();
    let emitter = br#"{"type":2,"opts":{"rooms":["r"],"except":[]},"rooms":["new"]}"#;
    bus.nodes[0]
        .receive(&request_channel, emitter)
        .expect("the emitter's REMOTE_JOIN is read");
    bus.run();
    let joins: Vec<(Vec<String>, Vec<String>)> = bus
        .take_actions()
        .remove(0)
        .into_iter()
        .filter_map(|a| match a {
            LocalAction::Join { sockets, rooms } => Some((sockets, rooms)),
            _ => None,
        })
        .collect();
    assert_eq!(joins, [(vec![sid(1)], vec!["new".to_owned()])]);
    let disconnect = br#"{"type":4,"opts":{"rooms":[],"except":["r"]},"close":false}"#;
    bus.nodes[0]
        .receive(&request_channel, disconnect)
        .expect("the emitter's REMOTE_DISCONNECT is read");
    bus.run();
    let gone = bus.take_actions().remove(0);
    assert!(
        gone.iter()
            .any(|a| matches!(a, LocalAction::Disconnect { sockets, .. } if sockets == &[sid(2)])),
        "{gone:?}"
    );
}

#[test]
fn sharded_dynamic_mode_subscribes_to_public_rooms_only() {
    let mut node = ClusterNode::new(
        sharded(SubscriptionMode::Dynamic),
        "0123456789abcdef",
        "/",
        RequestsConfig::default(),
    );
    let mut subs = HashMap::new();
    let mut drain = |node: &mut ClusterNode| {
        while let Some(s) = node.poll_subscription() {
            match s {
                Subscription::Subscribe(c) => *subs.entry(c).or_insert(0) += 1,
                Subscription::Unsubscribe(c) => *subs.entry(c).or_insert(0) -= 1,
                Subscription::PatternSubscribe(p) => panic!("{p}"),
            }
        }
        subs.iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, _)| c.clone())
            .collect::<HashSet<String>>()
    };
    let base: HashSet<String> = ["socket.io#/#", "socket.io#/#0123456789abcdef#"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(drain(&mut node), base);
    node.add_all(&sid(1), &[sid(1), "room".into()]);
    let mut with_room = base.clone();
    with_room.insert("socket.io#/#room#".into());
    assert_eq!(drain(&mut node), with_room);
    node.del_all(&sid(1));
    assert_eq!(drain(&mut node), base);
}

#[test]
fn the_adapter_enum_routes_locally_or_through_the_cluster() {
    use duplex_socketio::cluster::Adapter;
    let mut local = Adapter::default();
    local.add_all(&sid(1), &[sid(1), "r".into()]);
    assert_eq!(
        local.broadcast(WirePacket::event("e", []), &Opts::rooms(["r"])),
        [sid(1)]
    );
    assert!(local.poll_transmit().is_none());
    assert!(local.cluster().is_none());

    let node = ClusterNode::new(classic(), "aaaaaa", "/", RequestsConfig::default());
    let mut cluster = Adapter::Cluster(Box::new(node));
    cluster.add_all(&sid(1), &[sid(1), "r".into()]);
    assert_eq!(
        cluster.broadcast(WirePacket::event("e", []), &Opts::rooms(["r"])),
        [sid(1)]
    );
    let t = cluster.poll_transmit().unwrap();
    assert_eq!(t.channel, "socket.io#/#r#");
    assert!(!t.sharded);
}

#[test]
fn all_rooms_lists_every_node_in_classic_and_the_local_ones_in_sharded() {
    for protocol in [classic(), sharded(SubscriptionMode::Dynamic)] {
        let is_classic = matches!(protocol, Protocol::Classic { .. });
        let mut bus = Bus::new(protocol, &["aaaaaa", "bbbbbb"]);
        bus.connect(0, &sid(1), &["x"]);
        bus.connect(1, &sid(2), &["y"]);
        bus.take_actions();
        let count = bus.server_count();
        bus.nodes[0].all_rooms("q", count, Instant::now()).unwrap();
        bus.run();
        for (i, acts) in bus.take_actions().into_iter().enumerate() {
            for a in acts {
                if let LocalAction::AllRooms {
                    rooms,
                    requester,
                    request_id,
                } = a
                {
                    bus.nodes[i].answer_all_rooms(&requester, &request_id, rooms);
                }
            }
        }
        bus.run();
        match bus.results[0].as_slice() {
            [RequestEvent::Completed { result, .. }] => match result.as_slice() {
                [Answer::Rooms(rooms)] => {
                    let mut rooms = rooms.clone();
                    rooms.sort();
                    let mut expected = vec![sid(1), "x".to_string()];
                    if is_classic {
                        expected.extend([sid(2), "y".to_string()]);
                    }
                    expected.sort();
                    assert_eq!(rooms, expected);
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
}
