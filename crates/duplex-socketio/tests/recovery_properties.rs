//! Connection state recovery as a property, in simulated time: three
//! duplex clients and one duplex server, any sequence of emits (direct,
//! to rooms, to all, with exceptions, volatile, with acks), server-side
//! joins and leaves, partial deliveries, cuts that lose whatever was in
//! flight, half-open cuts (the client sees its connection die, the
//! server does not: the reconnection's CONNECT is held, the old session
//! probed, found dead and closed, and the socket restored),
//! reconnections, explicit leaves and clock jumps. Every
//! recoverable event addressed to a socket reaches it exactly once and in
//! order, or its session ends in a fresh one: what a socket delivered is
//! always a prefix of what was addressed to it, never a duplicate, never a
//! gap, and the last session of each client, once healed, has everything.
//! Recovery must happen whenever the server promises it (offset and
//! session younger than the configured duration, nothing evicted), and the
//! store stays within its bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_socketio::client::{self, Backoff, Client, ClientConfig, ClientEvent, Reconnection};
use duplex_socketio::cluster::Opts;
use duplex_socketio::recovery::RecoveryConfig;
use duplex_socketio::server::{
    DisconnectReason, Server, ServerConfig, ServerEvent, SocketId, Transmit,
};
use duplex_socketio::{Broadcast, EncodedPacket, Packet, ProtocolVersion, Value};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

const CLIENTS: usize = 3;
const ROOMS: [&str; 2] = ["a", "b"];
const KEEP: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Target {
    /// `socket.emit` on the client's live connection.
    Direct(usize),
    /// To the room named by the client's last socket id (works while it
    /// is away, as the conformance stream does).
    Sid(usize),
    Room(usize),
    All,
    AllExcept(usize),
    RoomExceptSid(usize, usize),
}

#[derive(Clone, Debug)]
enum Op {
    Emit(Target),
    Volatile(usize),
    WithAck(usize),
    Join(usize, usize),
    Leave(usize, usize),
    Deliver(usize, usize),
    Cut(usize),
    HalfCut(usize),
    Reconnect(usize),
    LeaveAndRejoin(usize),
    Advance(u64),
}

fn client_ix() -> impl Strategy<Value = usize> {
    0..CLIENTS
}

fn op() -> impl Strategy<Value = Op> {
    let target = prop_oneof![
        client_ix().prop_map(Target::Direct),
        client_ix().prop_map(Target::Sid),
        (0..ROOMS.len()).prop_map(Target::Room),
        Just(Target::All),
        (0..ROOMS.len()).prop_map(Target::AllExcept),
        ((0..ROOMS.len()), client_ix()).prop_map(|(r, c)| Target::RoomExceptSid(r, c)),
    ];
    prop_oneof![
        8 => target.prop_map(Op::Emit),
        1 => client_ix().prop_map(Op::Volatile),
        1 => client_ix().prop_map(Op::WithAck),
        2 => (client_ix(), 0..ROOMS.len()).prop_map(|(c, r)| Op::Join(c, r)),
        2 => (client_ix(), 0..ROOMS.len()).prop_map(|(c, r)| Op::Leave(c, r)),
        6 => (client_ix(), 1..6usize).prop_map(|(c, k)| Op::Deliver(c, k)),
        2 => client_ix().prop_map(Op::Cut),
        2 => client_ix().prop_map(Op::HalfCut),
        2 => client_ix().prop_map(Op::Reconnect),
        1 => client_ix().prop_map(Op::LeaveAndRejoin),
        2 => (0..7000u64).prop_map(Op::Advance),
    ]
}

/// One session lineage of a client: a fresh socket and the recoveries
/// that continued it.
#[derive(Debug, Default)]
struct Segment {
    sid: String,
    addressed: Vec<u64>,
    delivered: Vec<u64>,
    /// The server still has the socket or its kept session.
    alive: bool,
}

#[derive(Debug)]
struct Peer {
    client: Client<u64>,
    /// Engine.IO session key on the server, when a connection is open.
    session: Option<u32>,
    /// Server to client, in flight (lost on a cut).
    inbound: VecDeque<EncodedPacket>,
    /// The server's rooms of the socket (its id's included), as the model
    /// sees them; frozen while the connection is lost.
    rooms: BTreeSet<String>,
    segments: Vec<Segment>,
    /// When the connection was cut.
    cut_at: Option<Instant>,
    /// The Engine.IO session the client lost but the server still has
    /// open (a half-open cut): what is written to it is lost.
    half_open: Option<u32>,
}

struct World {
    server: Server<u32, u64>,
    peers: Vec<Peer>,
    now: Instant,
    next_session: u32,
    next_event: u64,
    /// Emission time and store position of each recoverable event.
    emitted: Vec<(Instant, u64)>,
    stores: u64,
    config: RecoveryConfig,
    /// Whether a lost recovery is a bug (limits generous enough).
    strict: bool,
}

impl World {
    fn new(config: RecoveryConfig, strict: bool) -> Self {
        let now = Instant::now();
        let server = Server::new(
            ServerConfig::default()
                .with_rng(StdRng::seed_from_u64(9))
                .with_recovery(config.clone()),
        );
        let peers = (0..CLIENTS)
            .map(|i| {
                let mut cfg = ClientConfig::default().with_rng(StdRng::seed_from_u64(i as u64));
                cfg.reconnection = Reconnection {
                    backoff: Backoff {
                        delay: Duration::from_millis(1),
                        delay_max: Duration::from_millis(1),
                        randomization_factor: 0.0,
                    },
                    ..Reconnection::default()
                };
                Peer {
                    client: Client::new(cfg),
                    session: None,
                    inbound: VecDeque::new(),
                    rooms: BTreeSet::new(),
                    segments: Vec::new(),
                    cut_at: None,
                    half_open: None,
                }
            })
            .collect();
        let mut world = Self {
            server,
            peers,
            now,
            next_session: 0,
            next_event: 0,
            emitted: Vec::new(),
            stores: 0,
            config,
            strict,
        };
        for i in 0..CLIENTS {
            world.peers[i].client.join("/", None).unwrap();
            world.open(i);
        }
        world.settle();
        world
    }

    fn open(&mut self, i: usize) {
        let key = self.next_session;
        self.next_session += 1;
        self.server.open(key, ProtocolVersion::V5, self.now);
        let peer = &mut self.peers[i];
        peer.session = Some(key);
        peer.client.handle_open(self.now);
    }

    fn peer_of(&self, session: u32) -> Option<usize> {
        self.peers.iter().position(|p| p.session == Some(session))
    }

    fn sid(&self, i: usize) -> Option<SocketId> {
        let key = self.peers[i].session?;
        self.server.socket_id(&key, "/").cloned()
    }

    fn last_sid(&self, i: usize) -> Option<String> {
        self.peers[i].segments.last().map(|s| s.sid.clone())
    }

    /// Runs both machines until quiet; server-to-client packets stay in
    /// flight until delivered.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..CLIENTS {
                while let Some(t) = self.peers[i].client.poll_transmit() {
                    moved = true;
                    let Some(key) = self.peers[i].session else {
                        continue;
                    };
                    match t {
                        client::Transmit::Text(text) => self
                            .server
                            .handle_text(&key, Bytes::copy_from_slice(text.as_bytes())),
                        client::Transmit::Binary(b) => self.server.handle_binary(&key, b),
                    }
                }
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                match event {
                    ServerEvent::ConnectRequest {
                        session, namespace, ..
                    } => {
                        let restoring = self.server.restoring(&session, &namespace);
                        let id = self.server.accept(&session, &namespace).unwrap();
                        let i = self.peer_of(session).unwrap();
                        let peer = &mut self.peers[i];
                        if self.server.recovered(&namespace, &id) {
                            assert!(restoring);
                            // Rooms come back as they were.
                            let rooms: BTreeSet<String> =
                                self.server.rooms_of("/", &id).into_iter().collect();
                            assert_eq!(rooms, peer.rooms);
                            assert_eq!(
                                peer.segments.last().map(|s| s.sid.as_str()),
                                Some(id.as_str())
                            );
                        } else {
                            if let Some(old) = peer.segments.last_mut() {
                                old.alive = false;
                            }
                            peer.rooms = BTreeSet::from([id.as_str().to_owned()]);
                            peer.segments.push(Segment {
                                sid: id.as_str().to_owned(),
                                alive: true,
                                ..Segment::default()
                            });
                        }
                    }
                    ServerEvent::Disconnect { reason, .. } => {
                        assert_ne!(reason, DisconnectReason::ParseError);
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                match t {
                    Transmit::Packet { session, packet }
                    | Transmit::Volatile { session, packet } => {
                        if let Some(i) = self.peer_of(session) {
                            self.peers[i].inbound.push_back(packet);
                        }
                    }
                    Transmit::Close { session } => {
                        panic!("the server closed session {session}");
                    }
                    Transmit::Probe { session } => {
                        // A half-open session's client is gone: the probe
                        // goes unanswered and the Engine.IO session ends
                        // as a ping timeout. A live one answers.
                        let i = self.peers.iter().position(|p| p.half_open == Some(session));
                        if let Some(i) = i {
                            self.peers[i].half_open = None;
                            self.server.closed(&session, DisconnectReason::PingTimeout);
                        } else if self.peer_of(session).is_some() {
                            self.server.handle_alive(&session);
                        }
                    }
                }
            }
            for i in 0..CLIENTS {
                while let Some(event) = self.peers[i].client.poll_event() {
                    moved = true;
                    self.on_client_event(i, event);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn on_client_event(&mut self, i: usize, event: ClientEvent<u64>) {
        let peer = &mut self.peers[i];
        match event {
            ClientEvent::Connect { sid, .. } => {
                let segment = peer.segments.last().unwrap();
                assert_eq!(segment.sid, sid, "the client sees the server's socket");
                assert_eq!(
                    peer.client.recovered("/"),
                    segment.delivered.len() + segment.addressed.len() > 0
                        && self.server.recovered("/", &SocketId::from(sid.as_str())),
                    "client and server agree on recovered"
                );
            }
            ClientEvent::Event { name, args, .. } if name == "e" => {
                // The offset stays the last argument, as the reference
                // client delivers it.
                assert_eq!(args.len(), 2, "the data and the offset: {args:?}");
                assert!(matches!(args[1], Value::String(_)), "{args:?}");
                let Value::Number(n) = &args[0] else {
                    panic!("{args:?}");
                };
                let n = n.as_u64().unwrap();
                let segment = peer.segments.last_mut().unwrap();
                segment.delivered.push(n);
                assert!(
                    segment.addressed.starts_with(&segment.delivered),
                    "client {i} delivered {:?}, addressed {:?}",
                    segment.delivered,
                    segment.addressed
                );
            }
            ClientEvent::Event { name, args, .. } => {
                // Volatile and ack-requesting events carry no offset.
                assert!(name == "v" || name == "a", "{name}");
                assert_eq!(args.len(), 1);
            }
            ClientEvent::GaveUp => panic!("client {i} gave up"),
            _ => {}
        }
    }

    fn addressed(&self, i: usize, opts: &Opts) -> bool {
        let rooms = &self.peers[i].rooms;
        (opts.rooms.is_empty() || opts.rooms.iter().any(|r| rooms.contains(r)))
            && !opts.except.iter().any(|r| rooms.contains(r))
    }

    fn emit(&mut self, target: Target) {
        let n = self.next_event;
        let packet = Packet::event_with("/", "e", &[(n as i64).into()], None).unwrap();
        let (opts, sent) = match target {
            Target::Direct(i) => {
                let (Some(sid), Some(key)) = (self.sid(i), self.peers[i].session) else {
                    return;
                };
                self.server.send(&key, &packet).unwrap();
                (Opts::rooms([sid.as_str()]), ())
            }
            Target::Sid(i) => {
                let Some(sid) = self.last_sid(i) else {
                    return;
                };
                let opts = Opts::rooms([sid]);
                self.server.broadcast_opts("/", &opts, &packet);
                (opts, ())
            }
            Target::Room(r) => {
                let opts = Opts::rooms([ROOMS[r]]);
                self.server.broadcast_opts("/", &opts, &packet);
                (opts, ())
            }
            Target::All => {
                let opts = Opts::default();
                self.server.broadcast_opts("/", &opts, &packet);
                (opts, ())
            }
            Target::AllExcept(r) => {
                let opts = Opts::default().except([ROOMS[r]]);
                self.server.broadcast_opts("/", &opts, &packet);
                (opts, ())
            }
            Target::RoomExceptSid(r, i) => {
                let Some(sid) = self.last_sid(i) else {
                    return;
                };
                let target = Broadcast::to(ROOMS[r]).except_socket(SocketId::from(sid.as_str()));
                self.server.broadcast("/", &target, &packet);
                (Opts::rooms([ROOMS[r]]).except([sid]), ())
            }
        };
        let () = sent;
        self.next_event += 1;
        self.emitted.push((self.now, self.stores));
        self.stores += 1;
        for i in 0..CLIENTS {
            if self.peers[i].segments.last().is_some_and(|s| s.alive) && self.addressed(i, &opts) {
                self.peers[i].segments.last_mut().unwrap().addressed.push(n);
            }
        }
    }

    fn deliver(&mut self, i: usize, k: usize) {
        for _ in 0..k {
            let Some(packet) = self.peers[i].inbound.pop_front() else {
                break;
            };
            let now = self.now;
            let client = &mut self.peers[i].client;
            client
                .handle_text(Bytes::copy_from_slice(packet.text.as_bytes()), now)
                .unwrap();
            for a in packet.attachments {
                client.handle_binary(a, now).unwrap();
            }
            self.settle();
        }
    }

    fn cut(&mut self, i: usize) {
        if let Some(key) = self.lose_connection(i, "transport close") {
            self.server.closed(&key, DisconnectReason::TransportClose);
            self.settle();
        }
    }

    /// The client sees its connection die (say a ping timeout), the server
    /// does not: the socket stays connected there, and what is written to
    /// it is lost.
    fn half_cut(&mut self, i: usize) {
        if let Some(key) = self.lose_connection(i, "ping timeout") {
            self.peers[i].half_open = Some(key);
            self.settle();
        }
    }

    /// Peer `i`'s side of a lost connection: what was in flight is gone
    /// and its client is told `reason`. The connection's session key, if
    /// it had one.
    fn lose_connection(&mut self, i: usize, reason: &'static str) -> Option<u32> {
        let key = self.peers[i].session.take()?;
        let peer = &mut self.peers[i];
        peer.inbound.clear();
        while peer.client.poll_transmit().is_some() {}
        peer.cut_at = Some(self.now);
        peer.client.handle_close(reason, self.now);
        Some(key)
    }

    /// Whether the server promises to restore client `i` now.
    fn promised(&self, i: usize) -> bool {
        let peer = &self.peers[i];
        let (Some(segment), Some(cut)) = (peer.segments.last(), peer.cut_at) else {
            return false;
        };
        let Some(&last) = segment.delivered.last() else {
            return false;
        };
        let Ok(index) = usize::try_from(last) else {
            return false;
        };
        let (emitted_at, store) = self.emitted[index];
        // A half-open socket is still connected: its session cannot
        // expire, and the reconnection's probe ends it.
        let kept = peer.half_open.is_some() || self.now.duration_since(cut) < KEEP;
        segment.alive
            && kept
            && self.now.duration_since(emitted_at) < KEEP
            && self.stores - store <= self.config.max_packets as u64
    }

    fn reconnect(&mut self, i: usize) {
        if self.peers[i].session.is_some() || self.peers[i].client.is_done() {
            return;
        }
        let promised = self.promised(i);
        let at = self.peers[i].client.poll_timeout().unwrap();
        self.peers[i].client.handle_timeout(at.max(self.now));
        match self.peers[i].client.poll_event() {
            Some(ClientEvent::Reconnect) => {}
            other => panic!("expected a reconnection, got {other:?}"),
        }
        self.open(i);
        self.settle();
        if self.strict && promised {
            let sid = self.sid(i).unwrap();
            assert!(self.server.recovered("/", &sid), "client {i} not recovered");
        }
        self.peers[i].cut_at = None;
        // Probed and reported closed, or left connected on a session no
        // client has (its CONNECT was not held): never closed then.
        self.peers[i].half_open = None;
    }

    fn leave_and_rejoin(&mut self, i: usize) {
        if self.sid(i).is_none() {
            return;
        }
        // Whatever was on its way arrives first: what comes after the new
        // CONNECT belongs to the new socket.
        self.deliver(i, usize::MAX);
        self.peers[i].client.leave("/");
        self.settle();
        if let Some(s) = self.peers[i].segments.last_mut() {
            s.alive = false;
        }
        self.peers[i].client.join("/", None).unwrap();
        self.settle();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Emit(target) => self.emit(target),
            Op::Volatile(i) => {
                if let Some(sid) = self.sid(i) {
                    let opts = Opts {
                        flags: Some(Value::Object(vec![("volatile".into(), true.into())])),
                        ..Opts::rooms([sid.as_str()])
                    };
                    let p = Packet::event_with("/", "v", &[0.into()], None).unwrap();
                    self.server.broadcast_opts("/", &opts, &p);
                }
            }
            Op::WithAck(i) => {
                if let (Some(_), Some(key)) = (self.sid(i), self.peers[i].session) {
                    self.server
                        .emit_with_ack(&key, "/", "a", &[0.into()], None, 0)
                        .unwrap();
                }
            }
            Op::Join(i, r) => {
                if let Some(sid) = self.sid(i) {
                    self.server.join("/", &sid, [ROOMS[r]]);
                    self.peers[i].rooms.insert(ROOMS[r].to_owned());
                }
            }
            Op::Leave(i, r) => {
                if let Some(sid) = self.sid(i) {
                    self.server.leave("/", &sid, ROOMS[r]);
                    self.peers[i].rooms.remove(ROOMS[r]);
                }
            }
            Op::Deliver(i, k) => self.deliver(i, k),
            Op::Cut(i) => self.cut(i),
            Op::HalfCut(i) => self.half_cut(i),
            Op::Reconnect(i) => self.reconnect(i),
            Op::LeaveAndRejoin(i) => self.leave_and_rejoin(i),
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                self.server.handle_timeout(self.now);
            }
        }
        self.settle();
        if let Some(at) = self.server.poll_timeout() {
            if at <= self.now {
                self.server.handle_timeout(self.now);
                self.settle();
            }
        }
        if let Some(store) = self.server.recovery_store("/") {
            assert!(store.packet_count() <= self.config.max_packets);
            assert!(store.session_count() <= self.config.max_sessions);
        }
    }

    /// Every client back and everything in flight delivered: each last
    /// session has all that was addressed to it.
    fn heal(&mut self) {
        for i in 0..CLIENTS {
            self.reconnect(i);
            self.deliver(i, usize::MAX);
        }
        for (i, peer) in self.peers.iter().enumerate() {
            let last = peer.segments.last().unwrap();
            assert_eq!(last.delivered, last.addressed, "client {i}'s last session");
        }
    }
}

fn run(ops: Vec<Op>, config: RecoveryConfig, strict: bool) {
    let mut world = World::new(config, strict);
    for op in ops {
        world.apply(op);
    }
    world.heal();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_event_once_in_order_or_a_fresh_session(ops in proptest::collection::vec(op(), 0..80)) {
        run(ops, RecoveryConfig { max_disconnection_duration: KEEP, ..RecoveryConfig::default() }, true);
    }

    #[test]
    fn tight_limits_lose_sessions_never_order(ops in proptest::collection::vec(op(), 0..80)) {
        run(ops, RecoveryConfig {
            max_disconnection_duration: KEEP,
            max_packets: 6,
            max_sessions: 1,
            max_room_changes: 1,
            ..RecoveryConfig::default()
        }, false);
    }
}
