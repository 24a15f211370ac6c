//! Issue 15's property across nodes: after any interleaving of socket
//! connections, joins, leaves, disconnections, node arrivals and node
//! departures, a broadcast from any node reaches each intended socket of
//! the whole cluster exactly once (through the sender's local selection or
//! another node's `LocalAction::Emit`) and no other socket, in the classic
//! protocol and in every sharded subscription mode. The nodes are joined by
//! a pretend Redis (channels, patterns); a departed node's subscriptions go
//! with it, as when its Redis connection closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::{HashMap, HashSet};

use duplex_socketio::cluster::sharded::SubscriptionMode;
use duplex_socketio::cluster::{
    ClusterNode, LocalAction, NodeEvent, Opts, Protocol, RequestsConfig, Subscription, WirePacket,
};
use proptest::prelude::*;

/// One node of the pretend cluster with its Redis subscriptions.
struct Member {
    node: ClusterNode,
    subs: HashSet<String>,
    patterns: HashSet<String>,
    /// Sockets the node's local server was asked to emit to, one entry per
    /// socket per `Emit`.
    emitted: Vec<String>,
}

struct Bus {
    protocol: Protocol,
    /// `None`: a node that has left.
    members: Vec<Option<Member>>,
}

impl Bus {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            members: Vec::new(),
        }
    }

    fn add_node(&mut self) {
        let uid = format!("{:06}", self.members.len());
        let node = ClusterNode::new(self.protocol.clone(), &uid, "/", RequestsConfig::default());
        self.members.push(Some(Member {
            node,
            subs: HashSet::new(),
            patterns: HashSet::new(),
            emitted: Vec::new(),
        }));
        self.run();
    }

    /// Delivers everything published until nothing moves.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.members.len() {
                let mut published = Vec::new();
                if let Some(m) = self.members[i].as_mut() {
                    while let Some(s) = m.node.poll_subscription() {
                        moved = true;
                        match s {
                            Subscription::Subscribe(c) => {
                                m.subs.insert(c);
                            }
                            Subscription::PatternSubscribe(p) => {
                                m.patterns.insert(p);
                            }
                            Subscription::Unsubscribe(c) => {
                                m.subs.remove(&c);
                            }
                        }
                    }
                    while let Some(t) = m.node.poll_transmit() {
                        published.push(t);
                    }
                    while let Some(e) = m.node.poll_event() {
                        moved = true;
                        if let NodeEvent::Local(LocalAction::Emit { sockets, .. }) = e {
                            m.emitted.extend(sockets);
                        }
                    }
                }
                for t in published {
                    moved = true;
                    for m in self.members.iter_mut().flatten() {
                        let by_pattern = m
                            .patterns
                            .iter()
                            .any(|p| t.channel.starts_with(p.trim_end_matches('*')));
                        if m.subs.contains(&t.channel) || by_pattern {
                            m.node.receive(&t.channel, &t.payload).unwrap();
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    NodeUp,
    NodeDown(u8),
    Connect(u8, u8),
    Join(u8, u8),
    Leave(u8, u8),
    Disconnect(u8),
    /// From node, target rooms, except rooms (room indexes, see `room`).
    Broadcast(u8, Vec<u8>, Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let rooms = || proptest::collection::vec(0u8..8, 0..3);
    prop_oneof![
        1 => Just(Op::NodeUp),
        1 => (0u8..6).prop_map(Op::NodeDown),
        3 => (0u8..6, 0u8..10).prop_map(|(n, s)| Op::Connect(n, s)),
        3 => (0u8..10, 0u8..5).prop_map(|(s, r)| Op::Join(s, r)),
        2 => (0u8..10, 0u8..5).prop_map(|(s, r)| Op::Leave(s, r)),
        1 => (0u8..10).prop_map(Op::Disconnect),
        4 => (0u8..6, rooms(), proptest::collection::vec(0u8..8, 0..2))
            .prop_map(|(n, t, e)| Op::Broadcast(n, t, e)),
    ]
}

/// Socket ids are 20 characters, as Node's (the sharded protocol tells
/// socket-id rooms from public rooms by that length).
fn sid(n: u8) -> String {
    format!("{n:020}")
}

/// Room indexes 0-4 are public rooms, 5-7 the rooms of sockets 0-2.
fn room(n: u8) -> String {
    if n < 5 {
        format!("room {n}")
    } else {
        sid(n - 5)
    }
}

fn protocols() -> Vec<Protocol> {
    let sharded = |mode| Protocol::Sharded {
        prefix: "socket.io".into(),
        mode,
    };
    vec![
        Protocol::default(),
        sharded(SubscriptionMode::Static),
        sharded(SubscriptionMode::Dynamic),
        sharded(SubscriptionMode::DynamicPrivate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_broadcast_reaches_exactly_the_intended_sockets_once(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        for protocol in protocols() {
            let mut bus = Bus::new(protocol.clone());
            bus.add_node();
            bus.add_node();
            // sid -> (node index, rooms including its own id)
            let mut model: HashMap<String, (usize, HashSet<String>)> = HashMap::new();
            for op in &ops {
                match op {
                    Op::NodeUp => bus.add_node(),
                    Op::NodeDown(n) => {
                        let n = usize::from(*n);
                        if n < bus.members.len() && bus.members[n].is_some() {
                            bus.members[n] = None;
                            model.retain(|_, (node, _)| *node != n);
                        }
                    }
                    Op::Connect(n, s) => {
                        let (n, sid) = (usize::from(*n), sid(*s));
                        if model.contains_key(&sid) {
                            continue;
                        }
                        if let Some(Some(m)) = bus.members.get_mut(n) {
                            m.node.add_all(&sid, std::slice::from_ref(&sid));
                            model.insert(sid.clone(), (n, HashSet::from([sid])));
                            bus.run();
                        }
                    }
                    Op::Join(s, r) => {
                        if let Some((n, rooms)) = model.get_mut(&sid(*s)) {
                            let room = room(*r);
                            if let Some(Some(m)) = bus.members.get_mut(*n) {
                                m.node.add_all(&sid(*s), std::slice::from_ref(&room));
                            }
                            rooms.insert(room);
                            bus.run();
                        }
                    }
                    Op::Leave(s, r) => {
                        if let Some((n, rooms)) = model.get_mut(&sid(*s)) {
                            let room = room(*r);
                            if let Some(Some(m)) = bus.members.get_mut(*n) {
                                m.node.del(&sid(*s), &room);
                            }
                            rooms.remove(&room);
                            bus.run();
                        }
                    }
                    Op::Disconnect(s) => {
                        if let Some((n, _)) = model.remove(&sid(*s)) {
                            if let Some(Some(m)) = bus.members.get_mut(n) {
                                m.node.del_all(&sid(*s));
                            }
                            bus.run();
                        }
                    }
                    Op::Broadcast(n, target, except) => {
                        let n = usize::from(*n);
                        let opts = Opts::rooms(target.iter().map(|r| room(*r)))
                            .except(except.iter().map(|r| room(*r)));
                        let Some(Some(m)) = bus.members.get_mut(n) else { continue };
                        let mut got = m.node.broadcast(WirePacket::event("e", []), &opts);
                        bus.run();
                        for m in bus.members.iter_mut().flatten() {
                            got.append(&mut m.emitted);
                        }
                        let mut counts: HashMap<String, usize> = HashMap::new();
                        for s in got {
                            *counts.entry(s).or_default() += 1;
                        }
                        let expected: HashMap<String, usize> = model
                            .iter()
                            .filter(|(_, (_, rooms))| {
                                opts.rooms.is_empty() || opts.rooms.iter().any(|r| rooms.contains(r))
                            })
                            .filter(|(_, (_, rooms))| !opts.except.iter().any(|r| rooms.contains(r)))
                            .map(|(sid, _)| (sid.clone(), 1))
                            .collect();
                        prop_assert_eq!(counts, expected, "{:?}: {:?} from node {}", protocol, opts, n);
                    }
                }
            }
        }
    }
}
