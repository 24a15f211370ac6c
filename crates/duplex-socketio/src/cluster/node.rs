//! One namespace's adapter as a machine: the local rooms, the requests in
//! flight and the messages to publish, for the classic or the sharded
//! protocol. The IO layer feeds it what Redis delivers
//! ([`ClusterNode::receive`]), publishes what [`ClusterNode::poll_transmit`]
//! yields, keeps the subscriptions [`ClusterNode::poll_subscription`] asks
//! for, and tells the server count (NUMSUB / SHARDNUMSUB) when a request
//! needs it; the local server carries out [`NodeEvent::Local`] actions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::classic::{ClassicBroadcast, ClassicChannels, ClassicRequest, ClassicResponse};
use super::sharded::{ClusterBody, ClusterMessage, ShardedChannels, SubscriptionMode};
use super::streams::{self, Fields, Missed, StreamId, StreamsVersion};
use super::{
    Answer, Error, Expected, FetchedSocket, Heartbeats, HeartbeatsConfig, InMemoryAdapter,
    LocalAction, LocalAdapter, Opts, RequestEvent, RequestKind, Requests, RequestsConfig,
    RoomChange, WirePacket,
};
use crate::Value;

/// Which protocol, with its options.
#[derive(Clone, Debug)]
pub enum Protocol {
    /// `createAdapter`: PUBLISH / SUBSCRIBE / PSUBSCRIBE.
    Classic {
        /// The `key` option (`socket.io`).
        key: String,
        /// `publishOnSpecificResponseChannel` (false in 8.3.0).
        specific_response_channel: bool,
    },
    /// `createShardedAdapter`: SPUBLISH / SSUBSCRIBE.
    Sharded {
        /// The `channelPrefix` option (`socket.io`).
        prefix: String,
        /// The `subscriptionMode` option.
        mode: SubscriptionMode,
    },
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol::Classic {
            key: super::classic::DEFAULT_KEY.to_owned(),
            specific_response_channel: false,
        }
    }
}

/// A message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The channel (the stream, for [`ClusterNode::streams`]).
    pub channel: String,
    /// The bytes (empty for a stream entry: see `stream`).
    pub payload: Vec<u8>,
    /// SPUBLISH (sharded) rather than PUBLISH.
    pub sharded: bool,
    /// A stream entry to `XADD` instead of a PUBLISH (streams protocol).
    pub stream: Option<StreamAdd>,
}

/// An entry to add to the stream: `XADD <channel> MAXLEN ~ <max_len> *
/// <fields>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAdd {
    /// The entry's fields (`uid`, `nsp`, `type`, `data`).
    pub fields: Fields,
    /// The approximate bound of the stream.
    pub max_len: usize,
    /// Set for a broadcast whose local delivery waits for the entry id
    /// `XADD` returns: report it with [`ClusterNode::published`] (in any
    /// order; delivery keeps the publish order).
    pub token: Option<u64>,
}

/// The options of the streams protocol (`@socket.io/redis-streams-adapter`
/// 0.3.x by default, or 0.2.x), Node's defaults where it has them.
#[derive(Clone, Debug)]
pub struct StreamsOptions {
    /// The release line spoken: [`StreamsVersion::V0_3`] (npm's latest) by
    /// default; every node of a cluster must speak the same one.
    pub version: StreamsVersion,
    /// The stream (`streamName`): `socket.io`; with `stream_count` > 1
    /// the prefix of the streams ([`streams::stream_name`]).
    pub stream: String,
    /// The streams the namespaces are spread over (`streamCount`, 0.3.x):
    /// 1.
    pub stream_count: usize,
    /// The prefix of the pub/sub channels (`channelPrefix`, 0.3.x):
    /// `socket.io`.
    pub channel_prefix: String,
    /// Sharded pub/sub (`useShardedPubSub`, 0.3.x, Redis 7): the
    /// transmits are SPUBLISHes ([`Transmit::sharded`]), and the IO layer
    /// SSUBSCRIBEs and counts with `PUBSUB SHARDNUMSUB`. Default false.
    pub sharded_pubsub: bool,
    /// `MAXLEN ~` of every `XADD` (`maxLen`): 10,000.
    pub max_len: usize,
    /// The session key prefix (`sessionKeyPrefix`): `sio:session:`.
    pub session_key_prefix: String,
    /// Connection state recovery is on: broadcasts carry their entry id as
    /// offset, and sessions are kept in Redis.
    pub offsets: bool,
    /// The node count's heartbeats (`heartbeatInterval` 5 s,
    /// `heartbeatTimeout` 10 s), 0.2.x only.
    pub heartbeats: HeartbeatsConfig,
    /// Broadcasts awaiting their entry id (or their entry, read back) at
    /// most: 10,000. Beyond it the oldest is delivered at once, with its
    /// id if known, else without an offset, as when its `XADD` fails.
    pub max_pending: usize,
    /// Recent broadcast entries kept for the restores in flight (entries
    /// read while a restore's `XRANGE` reply travels): 1,024.
    pub recent: usize,
    /// How long a broadcast of this node whose `XADD` returned its id
    /// waits for its entry to be read back before it is delivered anyway
    /// (the entry was trimmed by `MAXLEN` before the reader got to it, or
    /// Redis lost it): 10 s. It then goes out with its id as offset; stream
    /// order still holds unless the reader lags further behind than this.
    pub read_back_timeout: Duration,
}

impl Default for StreamsOptions {
    fn default() -> Self {
        Self {
            version: StreamsVersion::default(),
            stream: streams::DEFAULT_STREAM.to_owned(),
            stream_count: 1,
            channel_prefix: streams::DEFAULT_CHANNEL_PREFIX.to_owned(),
            sharded_pubsub: false,
            max_len: streams::DEFAULT_MAX_LEN,
            session_key_prefix: streams::DEFAULT_SESSION_KEY_PREFIX.to_owned(),
            offsets: false,
            heartbeats: HeartbeatsConfig::default(),
            max_pending: 10_000,
            recent: 1024,
            read_back_timeout: Duration::from_secs(10),
        }
    }
}

/// A broadcast published to the stream, delivered locally once its entry
/// id is known.
#[derive(Debug)]
struct Pending {
    token: u64,
    packet: WirePacket,
    opts: Opts,
    /// `Some` once reported: the id, or `None` when the `XADD` failed.
    id: Option<Option<StreamId>>,
    /// When its id was known (stamped by the next `handle_timeout`): its
    /// wait for the entry ends [`StreamsOptions::read_back_timeout`] later.
    since: Option<Instant>,
}

/// A broadcast entry delivered here, kept a while for restores in flight.
#[derive(Debug)]
struct Recent {
    id: StreamId,
    /// Its place in delivery order ([`ClusterNode::recent_mark`]).
    seq: u64,
    packet: WirePacket,
    opts: Opts,
}

#[derive(Debug)]
struct StreamsState {
    options: StreamsOptions,
    /// This namespace's stream.
    stream: String,
    /// 0.3.x's channels: `<prefix>#<nsp>#` (requests; its NUMSUB is the
    /// server count) and `<prefix>#<nsp>#<uid>#` (responses to this node).
    pubsub: Option<ShardedChannels>,
    /// 0.2.x's node count.
    heartbeats: Option<Heartbeats>,
    next_token: u64,
    pending: VecDeque<Pending>,
    /// Some pending broadcast got its id and waits for its `since`.
    unstamped: bool,
    /// The latest time given (`handle_timeout`, `receive_entry`).
    now: Instant,
    recent: VecDeque<Recent>,
    /// The `seq` the next entry of `recent` gets.
    next_seq: u64,
    /// The newest id pushed out of `recent`, and the `seq` after the last
    /// one pushed out (the entries before it are forgotten).
    forgotten: Option<(StreamId, u64)>,
    /// The newest entry id read from the stream for this namespace.
    read: Option<StreamId>,
    /// Restored sockets: the ids their restore replayed (up to and
    /// including the first, and the others), which live delivery skips;
    /// dropped once no delivery of those ids can come any more (see
    /// `prune_replayed`).
    replayed: HashMap<String, (StreamId, HashSet<StreamId>)>,
    /// This node left the cluster ([`ClusterNode::close`]): no answer can
    /// come any more, so requests are answered at once with the local part.
    closed: bool,
}

impl StreamsState {
    /// The `XADD` of `message` to this namespace's stream; `token` asks
    /// for the reply's entry id.
    fn add(&self, message: &ClusterMessage, token: Option<u64>) -> Transmit {
        Transmit {
            channel: self.stream.clone(),
            payload: Vec::new(),
            sharded: false,
            stream: Some(StreamAdd {
                fields: streams::encode_entry(message),
                max_len: self.options.max_len,
                token,
            }),
        }
    }
}

/// A subscription change the IO layer makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscription {
    /// SUBSCRIBE (SSUBSCRIBE when sharded) to a channel.
    Subscribe(String),
    /// PSUBSCRIBE to a pattern (classic broadcasts).
    PatternSubscribe(String),
    /// UNSUBSCRIBE (SUNSUBSCRIBE when sharded) from a channel.
    Unsubscribe(String),
}

/// What the node has for the local server.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeEvent {
    /// Something to do to local sockets, or to answer.
    Local(LocalAction),
    /// A request of this node completed, timed out, or got a client's
    /// count or ack.
    Request(RequestEvent),
}

#[derive(Debug)]
enum Channels {
    Classic(ClassicChannels, bool),
    Sharded(ShardedChannels),
    Streams(Box<StreamsState>),
}

/// One namespace's adapter in a cluster.
#[derive(Debug)]
pub struct ClusterNode {
    uid: String,
    nsp: String,
    channels: Channels,
    rooms: InMemoryAdapter,
    requests: Requests,
    transmits: VecDeque<Transmit>,
    subscriptions: VecDeque<Subscription>,
    events: VecDeque<NodeEvent>,
}

impl ClusterNode {
    /// The adapter of namespace `nsp` on node `uid` (6 characters in
    /// classic mode, 16 hex digits in sharded mode, random: an input).
    /// Its subscriptions are queued at once.
    pub fn new(protocol: Protocol, uid: &str, nsp: &str, requests: RequestsConfig) -> Self {
        let channels = match &protocol {
            Protocol::Classic {
                key,
                specific_response_channel,
            } => Channels::Classic(
                ClassicChannels::new(key, nsp, uid),
                *specific_response_channel,
            ),
            Protocol::Sharded { prefix, mode } => {
                Channels::Sharded(ShardedChannels::new(prefix, nsp, uid, *mode))
            }
        };
        let mut subscriptions = VecDeque::new();
        match &channels {
            Channels::Classic(c, _) => {
                subscriptions.push_back(Subscription::PatternSubscribe(c.broadcast_pattern()));
                for ch in c.subscriptions() {
                    subscriptions.push_back(Subscription::Subscribe(ch.to_owned()));
                }
            }
            Channels::Sharded(c) => {
                subscriptions.push_back(Subscription::Subscribe(c.main.clone()));
                subscriptions.push_back(Subscription::Subscribe(c.response.clone()));
            }
            Channels::Streams(_) => {}
        }
        Self {
            uid: uid.to_owned(),
            nsp: nsp.to_owned(),
            channels,
            rooms: InMemoryAdapter::new(),
            requests: Requests::new(requests),
            transmits: VecDeque::new(),
            subscriptions,
            events: VecDeque::new(),
        }
    }

    /// The adapter of namespace `nsp` on node `uid` (random: an input) in
    /// the streams protocol. The IO layer reads the stream
    /// ([`Self::stream`]) and passes entries to [`Self::receive_entry`].
    /// In 0.2.x every message is an entry and nodes count each other by
    /// heartbeats (its INITIAL_HEARTBEAT is queued at once); in 0.3.x
    /// requests and responses are PUBLISHed instead, on the two channels
    /// queued at once as subscriptions, whose messages go to
    /// [`Self::receive`], and the server count is the NUMSUB of
    /// [`Self::count_channel`].
    pub fn streams(
        options: StreamsOptions,
        uid: &str,
        nsp: &str,
        requests: RequestsConfig,
        now: Instant,
    ) -> Self {
        let v2 = options.version == StreamsVersion::V0_2;
        let heartbeats = v2.then(|| Heartbeats::new(uid, options.heartbeats.clone(), now));
        let pubsub = (!v2).then(|| {
            ShardedChannels::new(&options.channel_prefix, nsp, uid, SubscriptionMode::Static)
        });
        let mut subscriptions = VecDeque::new();
        if let Some(c) = &pubsub {
            subscriptions.push_back(Subscription::Subscribe(c.main.clone()));
            subscriptions.push_back(Subscription::Subscribe(c.response.clone()));
        }
        let stream = streams::stream_name(&options.stream, options.stream_count, nsp);
        let mut node = Self {
            uid: uid.to_owned(),
            nsp: nsp.to_owned(),
            channels: Channels::Streams(Box::new(StreamsState {
                options,
                stream,
                pubsub,
                heartbeats,
                next_token: 0,
                pending: VecDeque::new(),
                unstamped: false,
                now,
                recent: VecDeque::new(),
                next_seq: 0,
                forgotten: None,
                read: None,
                replayed: HashMap::new(),
                closed: false,
            })),
            rooms: InMemoryAdapter::new(),
            requests: Requests::new(requests),
            transmits: VecDeque::new(),
            subscriptions,
            events: VecDeque::new(),
        };
        node.drain_heartbeats();
        node
    }

    /// The stream of this namespace (streams protocol): what to read and
    /// where restores look.
    pub fn stream(&self) -> Option<&str> {
        match &self.channels {
            Channels::Streams(s) => Some(&s.stream),
            _ => None,
        }
    }

    /// The streams protocol's options, in that protocol.
    pub fn streams_options(&self) -> Option<&StreamsOptions> {
        match &self.channels {
            Channels::Streams(s) => Some(&s.options),
            _ => None,
        }
    }

    /// Whether this adapter keeps sessions for connection state recovery
    /// (the streams protocol with offsets on), as Node's session-aware
    /// adapters.
    pub fn keeps_sessions(&self) -> bool {
        self.streams_options().is_some_and(|o| o.offsets)
    }

    /// The server count, when this protocol knows it itself (heartbeats,
    /// in the streams protocol 0.2.x; 1 once the node left the cluster
    /// with [`Self::close`]); else the IO layer asks Redis (NUMSUB of
    /// [`Self::count_channel`]).
    pub fn server_count(&self) -> Option<usize> {
        match &self.channels {
            Channels::Streams(s) if s.closed => Some(1),
            Channels::Streams(s) => s.heartbeats.as_ref().map(Heartbeats::server_count),
            _ => None,
        }
    }

    /// Whether this node left the cluster ([`Self::close`]).
    fn left(&self) -> bool {
        matches!(&self.channels, Channels::Streams(s) if s.closed)
    }

    /// The other nodes' answers a request waits for: by uid in the
    /// streams protocol, else by the count the caller gives.
    fn expected(&self, server_count: usize) -> Expected {
        if self.left() {
            return Expected::Count(0);
        }
        match &self.channels {
            Channels::Streams(s) if s.heartbeats.is_some() => Expected::Nodes(
                s.heartbeats
                    .iter()
                    .flat_map(Heartbeats::other_nodes)
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => Expected::Count(server_count.saturating_sub(1)),
        }
    }

    /// This node's uid.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The local rooms.
    pub fn rooms(&self) -> &InMemoryAdapter {
        &self.rooms
    }

    /// The channel whose subscriber count is the server count (NUMSUB of
    /// the request channel, or SHARDNUMSUB of the main channel; in the
    /// streams protocol 0.3.x, NUMSUB of `<prefix>#<nsp>#`).
    pub fn count_channel(&self) -> &str {
        match &self.channels {
            Channels::Classic(c, _) => &c.request,
            Channels::Sharded(c) => &c.main,
            Channels::Streams(s) => s.pubsub.as_ref().map_or(&s.stream, |c| &c.main),
        }
    }

    // ---- local room operations ----------------------------------------

    /// Socket `sid` joins `rooms` (its own id among them on connecting).
    pub fn add_all(&mut self, sid: &str, rooms: &[String]) {
        let changes = self.rooms.add_all(sid, rooms);
        self.room_changes(changes, None);
    }

    /// Socket `sid` leaves `room`.
    pub fn del(&mut self, sid: &str, room: &str) {
        let changes = self.rooms.del(sid, room);
        self.room_changes(changes, None);
    }

    /// Socket `sid` was restored with the entries up to `read_to` and
    /// `also` replayed: live deliveries of those entries skip it (they may
    /// still come, from a lagging read or a late `XADD` reply), until the
    /// stream has been read past them.
    pub fn replayed(&mut self, sid: &str, read_to: StreamId, also: HashSet<StreamId>) {
        if let Channels::Streams(s) = &mut self.channels {
            s.replayed.insert(sid.to_owned(), (read_to, also));
            prune_replayed(s);
        }
    }

    /// Socket `sid` leaves every room.
    pub fn del_all(&mut self, sid: &str) {
        if let Channels::Streams(s) = &mut self.channels {
            s.replayed.remove(sid);
        }
        let changes = self.rooms.del_all(sid);
        self.room_changes(changes, Some(sid));
    }

    /// `leaving` is the socket whose rooms are all being deleted: Node
    /// still counts it among the sockets while it emits `delete-room`.
    fn room_changes(&mut self, changes: Vec<RoomChange>, leaving: Option<&str>) {
        let Channels::Sharded(c) = &self.channels else {
            return;
        };
        for change in changes {
            let (room, subscribe) = match &change {
                RoomChange::Created(r) => (r, true),
                RoomChange::Deleted(r) => (r, false),
            };
            // A room named after a socket id is private (`sids.has(room)`).
            let private = self.rooms.has_socket(room) || leaving == Some(room.as_str());
            if c.room_has_channel(private) {
                let channel = c.room_channel(room);
                self.subscriptions.push_back(if subscribe {
                    Subscription::Subscribe(channel)
                } else {
                    Subscription::Unsubscribe(channel)
                });
            }
        }
    }

    // ---- operations of the local server --------------------------------

    /// `io.to(..).emit(..)`: publishes unless `local`, and returns the
    /// local sockets to send `packet` to.
    pub fn broadcast(&mut self, packet: WirePacket, opts: &Opts) -> Vec<String> {
        if !opts.is_local() {
            match &self.channels {
                Channels::Classic(c, _) => {
                    let message = ClassicBroadcast {
                        uid: self.uid.clone(),
                        packet: packet.with_nsp(&self.nsp),
                        opts: opts.clone(),
                    };
                    let channel = c.broadcast_channel(opts);
                    self.publish(channel, message.encode());
                }
                Channels::Sharded(_) => self.publish_message(ClusterBody::Broadcast {
                    packet,
                    request_id: None,
                    opts: opts.clone(),
                }),
                Channels::Streams(_) => {
                    // As Node: local delivery waits for the entry id.
                    self.publish_broadcast(packet, opts);
                    return Vec::new();
                }
            }
        }
        self.rooms.select(opts)
    }

    fn publish_broadcast(&mut self, packet: WirePacket, opts: &Opts) {
        let message = self.own_message(ClusterBody::Broadcast {
            packet: packet.clone(),
            request_id: None,
            opts: opts.clone(),
        });
        let Channels::Streams(s) = &mut self.channels else {
            return;
        };
        let token = s.next_token;
        s.next_token = s.next_token.wrapping_add(1);
        self.transmits.push_back(s.add(&message, Some(token)));
        s.pending.push_back(Pending {
            token,
            packet,
            opts: opts.clone(),
            id: None,
            since: None,
        });
        // Beyond the bound the oldest goes out now, with its id if known
        // (its reply came but not its entry: a stalled reader).
        while s.pending.len() > s.options.max_pending {
            let Some(p) = s.pending.pop_front() else {
                break;
            };
            let action = local_emit(&self.rooms, s, p.id.flatten(), p.packet, p.opts);
            self.events.push_back(NodeEvent::Local(action));
        }
        self.deliver_published();
    }

    /// The `XADD` of the broadcast with `token` returned `id` (`None`: it
    /// failed, and the broadcast is delivered locally without offset, as
    /// Node does). A broadcast is delivered, as a [`LocalAction::Emit`],
    /// once its id is known and the stream has been read up to it (its own
    /// entry came back through [`Self::receive_entry`]), so that the local
    /// sockets get every entry in stream order, and a client's last offset
    /// is always its latest: Node delivers at the `XADD` reply, which can
    /// put an entry of this node after a later one read from another, and a
    /// restore from that offset then replays the first one twice. An entry
    /// never read back (trimmed before the reader got to it, or lost by
    /// Redis) is delivered [`StreamsOptions::read_back_timeout`] after its
    /// id came ([`Self::poll_timeout`] asks for the time it starts).
    pub fn published(&mut self, token: u64, id: Option<&str>) {
        let Channels::Streams(s) = &mut self.channels else {
            return;
        };
        if let Some(p) = s.pending.iter_mut().find(|p| p.token == token) {
            let id = *p.id.get_or_insert(id.and_then(StreamId::parse));
            s.unstamped |= id.is_some() && p.since.is_none();
        }
        self.deliver_published();
        if let Channels::Streams(s) = &mut self.channels {
            prune_replayed(s);
        }
    }

    fn deliver_published(&mut self) {
        let Channels::Streams(s) = &mut self.channels else {
            return;
        };
        let (read, now, wait) = (s.read, s.now, s.options.read_back_timeout);
        while s.pending.front().is_some_and(|p| match p.id {
            Some(Some(id)) => {
                read.is_some_and(|r| r >= id)
                    || p.since
                        .is_some_and(|t| now.saturating_duration_since(t) >= wait)
            }
            Some(None) => true,
            None => false,
        }) {
            let Some(p) = s.pending.pop_front() else {
                break;
            };
            let action = local_emit(&self.rooms, s, p.id.flatten(), p.packet, p.opts);
            self.events.push_back(NodeEvent::Local(action));
        }
    }

    /// The broadcasts after `after` that a session in `rooms` was sent
    /// while its restore was in flight (read or published here), with
    /// their ids; `None` when some may have been forgotten (more than
    /// [`StreamsOptions::recent`] since), so that the session is fresh
    /// rather than missing them.
    pub fn recent_after(&self, rooms: &[String], after: StreamId) -> Option<Vec<Missed>> {
        self.recent_since(rooms, after, 0)
    }

    /// Where the broadcasts delivered from now on start: hand it to
    /// [`Self::recent_since`] to get only those.
    pub fn recent_mark(&self) -> u64 {
        match &self.channels {
            Channels::Streams(s) => s.next_seq,
            _ => 0,
        }
    }

    /// [`Self::recent_after`] restricted to the broadcasts delivered since
    /// `mark` ([`Self::recent_mark`]): a restore checks its window when
    /// its answer comes, then again for what came until it is accepted.
    /// `None` when one of those may have been forgotten.
    pub fn recent_since(
        &self,
        rooms: &[String],
        after: StreamId,
        mark: u64,
    ) -> Option<Vec<Missed>> {
        let Channels::Streams(s) = &self.channels else {
            return Some(Vec::new());
        };
        if s.forgotten
            .is_some_and(|(id, upto)| id > after && upto > mark)
        {
            return None;
        }
        Some(
            s.recent
                .iter()
                .filter(|r| r.id > after && r.seq >= mark)
                .filter_map(|r| {
                    let body = ClusterBody::Broadcast {
                        packet: r.packet.clone(),
                        request_id: None,
                        opts: r.opts.clone(),
                    };
                    streams::missed_of(rooms, r.id, body)
                })
                .collect(),
        )
    }

    /// A broadcast with acks under `request_id` (random: an input): every
    /// other node answers with its client count, then each client's ack,
    /// forwarded as [`NodeEvent::Request`] until `timeout`. Returns the
    /// local sockets.
    pub fn broadcast_with_ack(
        &mut self,
        request_id: &str,
        packet: WirePacket,
        opts: &Opts,
        timeout: Duration,
        now: Instant,
    ) -> Result<Vec<String>, Error> {
        if !opts.is_local() {
            // Once this node left the cluster the others still get the
            // broadcast, but no count or ack of theirs could come back.
            if !self.left() {
                self.requests
                    .start_broadcast_ack(request_id, timeout, now)?;
            }
            match &self.channels {
                Channels::Classic(..) => {
                    let request = ClassicRequest::Broadcast {
                        uid: self.uid.clone(),
                        request_id: request_id.to_owned(),
                        packet: packet.with_nsp(&self.nsp),
                        opts: opts.clone(),
                    };
                    self.publish_request(&request);
                }
                Channels::Sharded(_) | Channels::Streams(_) => {
                    self.publish_message(ClusterBody::Broadcast {
                        packet,
                        request_id: Some(request_id.to_owned()),
                        opts: opts.clone(),
                    });
                }
            }
        }
        Ok(self.rooms.select(opts))
    }

    /// `socketsJoin` (or `socketsLeave`) cluster-wide. Returns the local
    /// sockets to move now: in classic mode none unless `local`, since the
    /// node applies its own request when Redis delivers it back, as Node's
    /// does.
    pub fn sockets_rooms(&mut self, opts: &Opts, rooms: &[String], leave: bool) -> Vec<String> {
        if opts.is_local() {
            return self.rooms.select(opts);
        }
        match &self.channels {
            Channels::Classic(..) => {
                let request = ClassicRequest::Rooms {
                    uid: self.uid.clone(),
                    leave,
                    opts: Opts {
                        flags: None,
                        ..opts.clone()
                    },
                    rooms: rooms.to_vec(),
                };
                self.publish_request(&request);
                Vec::new()
            }
            Channels::Sharded(_) | Channels::Streams(_) => {
                self.publish_message(ClusterBody::SocketsRooms {
                    leave,
                    opts: opts.clone(),
                    rooms: rooms.to_vec(),
                });
                self.rooms.select(opts)
            }
        }
    }

    /// `disconnectSockets` cluster-wide; local sockets as for
    /// [`Self::sockets_rooms`].
    pub fn disconnect_sockets(&mut self, opts: &Opts, close: bool) -> Vec<String> {
        if opts.is_local() {
            return self.rooms.select(opts);
        }
        match &self.channels {
            Channels::Classic(..) => {
                let request = ClassicRequest::Disconnect {
                    uid: self.uid.clone(),
                    opts: Opts {
                        flags: None,
                        ..opts.clone()
                    },
                    close,
                };
                self.publish_request(&request);
                Vec::new()
            }
            Channels::Sharded(_) | Channels::Streams(_) => {
                self.publish_message(ClusterBody::DisconnectSockets {
                    opts: opts.clone(),
                    close,
                });
                self.rooms.select(opts)
            }
        }
    }

    /// `fetchSockets` cluster-wide: `local` is this node's part (from
    /// [`LocalAdapter::select`]), `server_count` the current NUMSUB. The
    /// result comes as [`RequestEvent::Completed`] (at once when there is
    /// no other node).
    pub fn fetch_sockets(
        &mut self,
        request_id: &str,
        opts: &Opts,
        local: Vec<FetchedSocket>,
        server_count: usize,
        now: Instant,
    ) -> Result<(), Error> {
        let expected = self.expected(server_count);
        let remote = !opts.is_local()
            && match &expected {
                Expected::Count(n) => *n > 0,
                Expected::Nodes(n) => !n.is_empty(),
            };
        self.requests.start(
            request_id,
            RequestKind::Fetch,
            if remote { expected } else { Expected::Count(0) },
            vec![Answer::Sockets(local)],
            now,
        )?;
        if remote {
            match &self.channels {
                Channels::Classic(..) => {
                    let request = ClassicRequest::Fetch {
                        uid: self.uid.clone(),
                        request_id: request_id.to_owned(),
                        opts: Opts {
                            flags: None,
                            ..opts.clone()
                        },
                    };
                    self.publish_request(&request);
                }
                Channels::Sharded(_) | Channels::Streams(_) => {
                    self.publish_message(ClusterBody::FetchSockets {
                        opts: opts.clone(),
                        request_id: request_id.to_owned(),
                    });
                }
            }
        }
        self.forward_request_events();
        Ok(())
    }

    /// `allRooms` (classic): every room of every node. The sharded
    /// adapter has no such request, so there it is the local rooms, at
    /// once.
    pub fn all_rooms(
        &mut self,
        request_id: &str,
        server_count: usize,
        now: Instant,
    ) -> Result<(), Error> {
        let expected = match self.channels {
            Channels::Classic(..) => server_count.saturating_sub(1),
            Channels::Sharded(_) | Channels::Streams(_) => 0,
        };
        self.requests.start(
            request_id,
            RequestKind::AllRooms,
            Expected::Count(expected),
            vec![Answer::Rooms(self.rooms.all_rooms())],
            now,
        )?;
        if expected > 0 {
            let request = ClassicRequest::AllRooms {
                uid: self.uid.clone(),
                request_id: request_id.to_owned(),
            };
            self.publish_request(&request);
        }
        self.forward_request_events();
        Ok(())
    }

    /// `serverSideEmit`: `data` is `[event, ...args]`; with `ack`, a
    /// request id (an input) and the server count, the other nodes'
    /// answers come as [`RequestEvent::Completed`] or `TimedOut`.
    pub fn server_side_emit(
        &mut self,
        data: Vec<Value>,
        ack: Option<(&str, usize)>,
        now: Instant,
    ) -> Result<(), Error> {
        let request_id = match ack {
            Some((id, server_count)) => {
                let expected = self.expected(server_count);
                let none = match &expected {
                    Expected::Count(n) => *n == 0,
                    Expected::Nodes(n) => n.is_empty(),
                };
                self.requests
                    .start(id, RequestKind::ServerSideEmit, expected, Vec::new(), now)?;
                self.forward_request_events();
                if none {
                    return Ok(());
                }
                Some(id.to_owned())
            }
            None => None,
        };
        match &self.channels {
            Channels::Classic(..) => {
                let request = ClassicRequest::ServerSideEmit {
                    uid: self.uid.clone(),
                    request_id,
                    data,
                };
                self.publish_request(&request);
            }
            Channels::Sharded(_) | Channels::Streams(_) => {
                self.publish_message(ClusterBody::ServerSideEmit {
                    request_id,
                    packet: data,
                });
            }
        }
        Ok(())
    }

    // ---- answers to other nodes --------------------------------------

    /// Answers a [`LocalAction::Fetch`] with the sockets' details.
    pub fn answer_fetch(&mut self, requester: &str, request_id: &str, sockets: Vec<FetchedSocket>) {
        match &self.channels {
            Channels::Classic(..) => self.publish_response(
                requester,
                &ClassicResponse::Fetch {
                    request_id: request_id.to_owned(),
                    sockets,
                },
            ),
            Channels::Sharded(_) | Channels::Streams(_) => self.publish_reply(
                requester,
                ClusterBody::FetchSocketsResponse {
                    request_id: request_id.to_owned(),
                    sockets,
                },
            ),
        }
    }

    /// Answers a [`LocalAction::ServerSideEmit`] with the argument the
    /// listener passed to its callback (once).
    pub fn answer_server_side_emit(&mut self, requester: &str, request_id: &str, value: Value) {
        match &self.channels {
            // Node publishes this one on the shared response channel,
            // whatever `publishOnSpecificResponseChannel` says.
            Channels::Classic(c, _) => {
                let response = ClassicResponse::ServerSideEmit {
                    request_id: request_id.to_owned(),
                    data: value,
                };
                let channel = c.response.clone();
                self.publish(channel, response.encode());
            }
            Channels::Sharded(_) | Channels::Streams(_) => self.publish_reply(
                requester,
                ClusterBody::ServerSideEmitResponse {
                    request_id: request_id.to_owned(),
                    packet: value,
                },
            ),
        }
    }

    /// Tells the requester of a broadcast with acks how many local clients
    /// it reached (also when 0, so that it need not wait).
    pub fn answer_client_count(&mut self, requester: &str, request_id: &str, client_count: u64) {
        match &self.channels {
            Channels::Classic(..) => self.publish_response(
                requester,
                &ClassicResponse::BroadcastClientCount {
                    request_id: request_id.to_owned(),
                    client_count,
                },
            ),
            Channels::Sharded(_) | Channels::Streams(_) => self.publish_reply(
                requester,
                ClusterBody::BroadcastClientCount {
                    request_id: request_id.to_owned(),
                    client_count,
                },
            ),
        }
    }

    /// Forwards one local client's ack of a broadcast to its requester.
    pub fn answer_client_ack(&mut self, requester: &str, request_id: &str, value: Value) {
        match &self.channels {
            Channels::Classic(..) => self.publish_response(
                requester,
                &ClassicResponse::BroadcastAck {
                    request_id: request_id.to_owned(),
                    packet: value,
                },
            ),
            Channels::Sharded(_) | Channels::Streams(_) => self.publish_reply(
                requester,
                ClusterBody::BroadcastAck {
                    request_id: request_id.to_owned(),
                    packet: value,
                },
            ),
        }
    }

    /// Answers a classic [`LocalAction::SocketIds`].
    pub fn answer_socket_ids(&mut self, requester: &str, request_id: &str, sockets: Vec<String>) {
        self.publish_response(
            requester,
            &ClassicResponse::Sockets {
                request_id: request_id.to_owned(),
                sockets,
            },
        );
    }

    /// Answers a classic [`LocalAction::AllRooms`].
    pub fn answer_all_rooms(&mut self, requester: &str, request_id: &str, rooms: Vec<String>) {
        self.publish_response(
            requester,
            &ClassicResponse::AllRooms {
                request_id: request_id.to_owned(),
                rooms,
            },
        );
    }

    /// Answers a classic [`LocalAction::Done`] once its action is carried
    /// out.
    pub fn answer_done(&mut self, requester: &str, request_id: &str) {
        self.publish_response(
            requester,
            &ClassicResponse::Done {
                request_id: request_id.to_owned(),
            },
        );
    }

    // ---- input from Redis ------------------------------------------------

    /// A message Redis delivered on `channel`. Malformed messages are
    /// refused with the error (Node logs and drops them); the caller
    /// drops them too.
    pub fn receive(&mut self, channel: &str, payload: &[u8]) -> Result<(), Error> {
        match &self.channels {
            Channels::Classic(c, _) => {
                if channel == c.request {
                    let request = ClassicRequest::decode(payload)?;
                    let requests = &self.requests;
                    if let Some(action) =
                        self.rooms
                            .classic_request(&self.uid, |id| requests.is_own(id), &request)
                    {
                        self.events.push_back(NodeEvent::Local(action));
                    }
                } else if channel.starts_with(c.response.as_str()) {
                    let response = ClassicResponse::decode(payload)?;
                    self.classic_response(response);
                } else if c.room_of(channel).is_some() {
                    let message = ClassicBroadcast::decode(payload)?;
                    if let Some(action) = self
                        .rooms
                        .classic_broadcast(c, &self.uid, &self.nsp, channel, &message)
                    {
                        self.events.push_back(NodeEvent::Local(action));
                    }
                }
            }
            Channels::Streams(s) => {
                // 0.3.x's requests and responses; 0.2.x subscribes to nothing.
                if s.pubsub.is_none() {
                    return Ok(());
                }
                let message = streams::decode_pubsub(payload)?;
                self.cluster_message(message);
            }
            Channels::Sharded(_) => {
                let message = ClusterMessage::decode(payload)?;
                self.cluster_message(message);
            }
        }
        self.forward_request_events();
        Ok(())
    }

    /// A message of the cluster adapter (sharded, or streams 0.3.x pub/sub),
    /// as socket.io-adapter's `ClusterAdapter.onMessage`.
    fn cluster_message(&mut self, message: ClusterMessage) {
        if message.uid == self.uid || message.nsp != self.nsp {
            return;
        }
        if message.body.is_response() {
            self.sharded_response(message);
        } else if let Some(action) = self.rooms.cluster_message(&self.uid, &self.nsp, &message) {
            self.events.push_back(NodeEvent::Local(action));
        }
    }

    /// An entry read from the stream (streams protocol): its id and
    /// fields. Entries of this node, of other namespaces, or not of the
    /// adapter (no `nsp`) are skipped; a malformed one is refused with the
    /// error and changes nothing. A broadcast's entry id is appended to it
    /// as offset (with recovery on) before its local delivery.
    pub fn receive_entry<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        id: &str,
        fields: &[(K, V)],
        now: Instant,
    ) -> Result<(), Error> {
        if !matches!(self.channels, Channels::Streams(_)) {
            return Ok(());
        }
        let message = streams::decode_entry(fields)?;
        if message.nsp != self.nsp {
            return Ok(());
        }
        if let Channels::Streams(s) = &mut self.channels {
            s.now = s.now.max(now);
        }
        // This node's broadcasts up to here go out first, in stream order.
        if let (Channels::Streams(s), Some(read)) = (&mut self.channels, StreamId::parse(id)) {
            s.read = Some(s.read.map_or(read, |r| r.max(read)));
            self.deliver_published();
        }
        if let Channels::Streams(s) = &mut self.channels {
            if let Some(h) = &mut s.heartbeats {
                if h.handle_message(&message, now) {
                    self.drain_heartbeats();
                    return Ok(());
                }
            } else if matches!(
                message.body,
                ClusterBody::InitialHeartbeat | ClusterBody::Heartbeat | ClusterBody::AdapterClose
            ) {
                // 0.3.x has no heartbeats: a 0.2.x node's are unknown
                // messages to it.
                return Ok(());
            }
        }
        if message.uid == self.uid {
            return Ok(());
        }
        if message.body.is_response() {
            self.sharded_response(message);
        } else if let (
            ClusterBody::Broadcast {
                packet,
                request_id: None,
                opts,
            },
            Channels::Streams(s),
        ) = (message.body.clone(), &mut self.channels)
        {
            let action = local_emit(&self.rooms, s, StreamId::parse(id), packet, opts);
            self.events.push_back(NodeEvent::Local(action));
        } else if let Some(action) = self.rooms.cluster_message(&self.uid, &self.nsp, &message) {
            self.events.push_back(NodeEvent::Local(action));
        }
        if let Channels::Streams(s) = &mut self.channels {
            prune_replayed(s);
        }
        self.forward_request_events();
        Ok(())
    }

    /// Publishes due heartbeats and forgets the requests' silent nodes.
    fn drain_heartbeats(&mut self) {
        let Channels::Streams(s) = &mut self.channels else {
            return;
        };
        let Some(h) = &mut s.heartbeats else {
            return;
        };
        let mut bodies = Vec::new();
        while let Some(body) = h.poll_publish() {
            bodies.push(body);
        }
        let mut gone = Vec::new();
        while let Some(uid) = h.poll_gone() {
            gone.push(uid);
        }
        for body in bodies {
            self.publish_message(body);
        }
        for uid in gone {
            self.requests.node_left(&uid);
        }
        self.forward_request_events();
    }

    /// This node leaves the cluster (streams protocol), as Node's
    /// `adapter.close()`, so that the others stop counting it at once: in
    /// 0.2.x ADAPTER_CLOSE is published (and no more heartbeats); in 0.3.x
    /// its two channels are unsubscribed (NUMSUB no longer counts it).
    /// Other protocols: nothing (their count is NUMSUB, which drops when
    /// the transport's subscriber goes). From then on this node's own
    /// requests (fetches, server-side emits with acks) answer at once with
    /// the local part, a broadcast with acks still reaches the others but
    /// waits for the local acks only, and [`Self::server_count`] is 1: no
    /// other node's answer could reach it.
    pub fn close(&mut self, now: Instant) {
        if let Channels::Streams(s) = &mut self.channels {
            s.closed = true;
            if let Some(h) = &mut s.heartbeats {
                h.close(now);
            }
            if let Some(c) = &s.pubsub {
                self.subscriptions
                    .push_back(Subscription::Unsubscribe(c.main.clone()));
                self.subscriptions
                    .push_back(Subscription::Unsubscribe(c.response.clone()));
            }
        }
        self.drain_heartbeats();
    }

    fn classic_response(&mut self, response: ClassicResponse) {
        let is_fetch = self.requests.kind_of(response.request_id()) == Some(RequestKind::Fetch);
        match response {
            ClassicResponse::BroadcastClientCount {
                request_id,
                client_count,
            } => {
                self.requests.handle_client_count(&request_id, client_count);
            }
            ClassicResponse::BroadcastAck { request_id, packet } => {
                self.requests.handle_client_ack(&request_id, packet);
            }
            ClassicResponse::Sockets {
                request_id,
                sockets,
            } => {
                // `{requestId, sockets: []}` answers a fetch too.
                let answer = if is_fetch && sockets.is_empty() {
                    Answer::Sockets(Vec::new())
                } else {
                    Answer::SocketIds(sockets)
                };
                self.requests.handle_answer(&request_id, None, answer);
            }
            ClassicResponse::AllRooms { request_id, rooms } => {
                self.requests
                    .handle_answer(&request_id, None, Answer::Rooms(rooms));
            }
            ClassicResponse::Fetch {
                request_id,
                sockets,
            } => {
                self.requests
                    .handle_answer(&request_id, None, Answer::Sockets(sockets));
            }
            ClassicResponse::ServerSideEmit { request_id, data } => {
                self.requests
                    .handle_answer(&request_id, None, Answer::Emit(data));
            }
            ClassicResponse::Done { request_id } => {
                self.requests.handle_answer(&request_id, None, Answer::Done);
            }
        }
    }

    fn sharded_response(&mut self, message: ClusterMessage) {
        let from = Some(message.uid.as_str());
        match message.body {
            ClusterBody::BroadcastClientCount {
                request_id,
                client_count,
            } => {
                self.requests.handle_client_count(&request_id, client_count);
            }
            ClusterBody::BroadcastAck { request_id, packet } => {
                self.requests.handle_client_ack(&request_id, packet);
            }
            ClusterBody::FetchSocketsResponse {
                request_id,
                sockets,
            } => {
                self.requests
                    .handle_answer(&request_id, from, Answer::Sockets(sockets));
            }
            ClusterBody::ServerSideEmitResponse { request_id, packet } => {
                self.requests
                    .handle_answer(&request_id, from, Answer::Emit(packet));
            }
            _ => {}
        }
    }

    // ---- time and output ----------------------------------------------

    /// Expires requests and broadcast acks, and ends the wait of this
    /// node's broadcasts whose entry was never read back.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Channels::Streams(s) = &mut self.channels {
            if let Some(h) = &mut s.heartbeats {
                h.handle_timeout(now);
            }
            s.now = s.now.max(now);
            if std::mem::take(&mut s.unstamped) {
                for p in s
                    .pending
                    .iter_mut()
                    .filter(|p| matches!(p.id, Some(Some(_))))
                {
                    p.since.get_or_insert(now);
                }
            }
            self.deliver_published();
        }
        self.drain_heartbeats();
        self.requests.handle_timeout(now);
        self.forward_request_events();
    }

    /// When [`Self::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (heartbeats, read_back) = match &self.channels {
            Channels::Streams(s) => (
                s.heartbeats.as_ref().and_then(Heartbeats::poll_timeout),
                read_back_deadline(s),
            ),
            _ => (None, None),
        };
        self.requests
            .poll_timeout()
            .into_iter()
            .chain(heartbeats)
            .chain(read_back)
            .min()
    }

    /// The next message to publish.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next subscription change.
    pub fn poll_subscription(&mut self) -> Option<Subscription> {
        self.subscriptions.pop_front()
    }

    /// The next event for the local server.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    fn forward_request_events(&mut self) {
        while let Some(e) = self.requests.poll_event() {
            self.events.push_back(NodeEvent::Request(e));
        }
    }

    fn publish(&mut self, channel: String, payload: Vec<u8>) {
        let sharded = match &self.channels {
            Channels::Sharded(_) => true,
            Channels::Streams(s) => s.options.sharded_pubsub,
            Channels::Classic(..) => false,
        };
        self.transmits.push_back(Transmit {
            channel,
            payload,
            sharded,
            stream: None,
        });
    }

    fn publish_request(&mut self, request: &ClassicRequest) {
        if let Channels::Classic(c, _) = &self.channels {
            let channel = c.request.clone();
            self.publish(channel, request.encode());
        }
    }

    fn publish_response(&mut self, requester: &str, response: &ClassicResponse) {
        if let Channels::Classic(c, specific) = &self.channels {
            let channel = if *specific {
                format!("{}{requester}#", c.response)
            } else {
                c.response.clone()
            };
            self.publish(channel, response.encode());
        }
    }

    /// A message of this node in this namespace.
    fn own_message(&self, body: ClusterBody) -> ClusterMessage {
        ClusterMessage {
            uid: self.uid.clone(),
            nsp: self.nsp.clone(),
            body,
        }
    }

    fn publish_message(&mut self, body: ClusterBody) {
        let message = self.own_message(body);
        match &self.channels {
            Channels::Sharded(c) => {
                let channel = c.channel_for(&message);
                self.publish(channel, message.encode());
            }
            Channels::Streams(s) => {
                if let Some(c) = s.pubsub.as_ref().filter(|_| is_ephemeral(&message.body)) {
                    // 0.3.x: requests go over pub/sub, not the stream.
                    let channel = c.main.clone();
                    self.publish(channel, streams::encode_pubsub(&message));
                    return;
                }
                let transmit = s.add(&message, None);
                self.transmits.push_back(transmit);
            }
            Channels::Classic(..) => {}
        }
    }

    fn publish_reply(&mut self, requester: &str, body: ClusterBody) {
        if let Channels::Streams(s) = &self.channels {
            let Some(c) = &s.pubsub else {
                // 0.2.x: responses go to the stream too
                // (`doPublishResponse` is `doPublish`); only the requester
                // knows their request id.
                return self.publish_message(body);
            };
            // 0.3.x: to the requester's own channel.
            let channel = c.response_channel_of(requester);
            let message = self.own_message(body);
            return self.publish(channel, streams::encode_pubsub(&message));
        }
        if let Channels::Sharded(c) = &self.channels {
            let channel = c.response_channel_of(requester);
            self.publish(channel, self.own_message(body).encode());
        }
    }
}

/// What 0.3.x sends over pub/sub rather than the stream (its
/// `isEphemeral`): a broadcast with acks, a server-side emit, a fetch.
fn is_ephemeral(body: &ClusterBody) -> bool {
    matches!(
        body,
        ClusterBody::Broadcast {
            request_id: Some(_),
            ..
        } | ClusterBody::ServerSideEmit { .. }
            | ClusterBody::FetchSockets { .. }
    )
}

/// Forgets the replayed ids of restored sockets that no live delivery can
/// bring any more: the stream was read past all of them, and no broadcast
/// of this node waiting for its id or its entry may be one of them (one
/// whose id is not known yet could be any). Each emit looks the selected
/// sockets up in `replayed`, so it holds only the restores still in
/// flight on the stream, not every restored socket for its life.
fn prune_replayed(s: &mut StreamsState) {
    if s.replayed.is_empty() {
        return;
    }
    let Some(read) = s.read else {
        return;
    };
    let lowest_held = s
        .pending
        .iter()
        .filter_map(|p| match p.id {
            None => Some(StreamId { ms: 0, seq: 0 }),
            Some(id) => id,
        })
        .min();
    s.replayed.retain(|_, (upto, also)| {
        let last = also.iter().copied().fold(*upto, StreamId::max);
        read < last || lowest_held.is_some_and(|h| h <= last)
    });
}

/// When the wait for the first pending broadcast's entry ends (the latest
/// time given, at once, while a reported id waits for its stamp).
fn read_back_deadline(s: &StreamsState) -> Option<Instant> {
    if s.unstamped {
        return Some(s.now);
    }
    let since = s.pending.front()?.since?;
    since.checked_add(s.options.read_back_timeout)
}

/// The local delivery of a broadcast entry `id` (`None`: no id, e.g. its
/// `XADD` failed): the offset appended when recovery is on and the packet
/// takes one, and the entry kept for the restores in flight.
fn local_emit(
    rooms: &InMemoryAdapter,
    s: &mut StreamsState,
    id: Option<StreamId>,
    mut packet: WirePacket,
    opts: Opts,
) -> LocalAction {
    let takes = super::streams::packet_takes_offset(&packet, &opts);
    let offset = id.filter(|_| s.options.offsets && takes);
    if let Some(id) = offset {
        s.recent.push_back(Recent {
            id,
            seq: s.next_seq,
            packet: packet.clone(),
            opts: opts.clone(),
        });
        s.next_seq = s.next_seq.wrapping_add(1);
        while s.recent.len() > s.options.recent {
            if let Some(old) = s.recent.pop_front() {
                let newest = s.forgotten.map_or(old.id, |(f, _)| f.max(old.id));
                s.forgotten = Some((newest, old.seq.wrapping_add(1)));
            }
        }
        packet.data.push(Value::String(id.to_string()));
    }
    let mut sockets = rooms.select(&opts);
    if let Some(id) = id.filter(|_| !s.replayed.is_empty()) {
        sockets.retain(|sid| {
            s.replayed
                .get(sid)
                .is_none_or(|(upto, also)| id > *upto && !also.contains(&id))
        });
    }
    LocalAction::Emit {
        sockets,
        flags: opts.flags,
        packet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    fn replayed_len(node: &ClusterNode) -> usize {
        match &node.channels {
            Channels::Streams(s) => s.replayed.len(),
            _ => 0,
        }
    }

    fn entry(ms: u64) -> (String, Fields) {
        let message = ClusterMessage {
            uid: "other".into(),
            nsp: "/".into(),
            body: ClusterBody::Broadcast {
                packet: WirePacket::event("e", []),
                request_id: None,
                opts: Opts::default(),
            },
        };
        (id(ms).to_string(), streams::encode_entry(&message))
    }

    /// A streams node with offsets and socket `s1` in its own room, the
    /// stream read up to entry 3 (another node's broadcast).
    fn read_to_3(now: Instant) -> ClusterNode {
        let options = StreamsOptions {
            offsets: true,
            ..StreamsOptions::default()
        };
        let mut node = ClusterNode::streams(options, "me", "/", RequestsConfig::default(), now);
        node.add_all("s1", &["s1".to_owned()]);
        let (first, fields) = entry(3);
        node.receive_entry(&first, &fields, now).unwrap();
        node
    }

    /// Review of #16, finding 8: a restored socket's replayed ids were
    /// kept (and looked up at every emit) for the socket's life. They go
    /// once the stream was read past them and no own broadcast still
    /// waiting may be one of them.
    #[test]
    fn replayed_ids_go_once_the_stream_is_read_past_them() {
        let now = Instant::now();
        let mut node = read_to_3(now);
        // An own broadcast, its XADD reply not in yet: its id could be
        // among the replayed ones.
        node.broadcast(WirePacket::event("mine", []), &Opts::default());
        let token = std::iter::from_fn(|| node.poll_transmit())
            .find_map(|t| t.stream.and_then(|a| a.token))
            .unwrap();
        node.replayed("s1", id(5), HashSet::from([id(6)]));
        assert_eq!(replayed_len(&node), 1, "the stream was read to 3 only");
        let (e5, f5) = entry(5);
        node.receive_entry(&e5, &f5, now).unwrap();
        assert_eq!(replayed_len(&node), 1, "6 not read yet");
        let (e6, f6) = entry(6);
        node.receive_entry(&e6, &f6, now).unwrap();
        assert_eq!(replayed_len(&node), 1, "an own broadcast's id is unknown");
        while node.poll_event().is_some() {}
        node.published(token, Some("4-0"));
        let Some(NodeEvent::Local(LocalAction::Emit { sockets, .. })) = node.poll_event() else {
            panic!("the own broadcast goes out");
        };
        assert!(sockets.is_empty(), "replayed to s1 already: {sockets:?}");
        assert_eq!(replayed_len(&node), 0, "read past all, nothing held");
        // Read past already: never kept.
        node.replayed("s2", id(5), HashSet::new());
        assert_eq!(replayed_len(&node), 0);
    }

    #[test]
    fn an_entry_a_restore_replayed_is_not_delivered_again_when_the_reader_reaches_it() {
        let now = Instant::now();
        let mut node = read_to_3(now);
        while node.poll_event().is_some() {}
        // Restored with entries up to 5 replayed; the reader is at 3.
        node.replayed("s1", id(5), HashSet::new());
        let (e5, f5) = entry(5);
        node.receive_entry(&e5, &f5, now).unwrap();
        let mut got = Vec::new();
        while let Some(ev) = node.poll_event() {
            if let NodeEvent::Local(LocalAction::Emit { sockets, .. }) = ev {
                got.extend(sockets);
            }
        }
        assert!(
            got.is_empty(),
            "entry 5 was replayed to s1 already, delivered again to {got:?}"
        );
    }
}
