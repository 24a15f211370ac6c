//! Connection state recovery (Socket.IO 4.6+, `connectionStateRecovery`),
//! sans-IO: the bounded log of emitted packets with their offsets, the
//! sessions of sockets whose connection was lost, and the restore that
//! gives a reconnecting client its id, rooms and data back with every
//! event it missed.
//!
//! [`SessionStore`] is the session-aware part of a namespace's in-memory
//! adapter, as socket.io-adapter's `SessionAwareAdapter` is: the server
//! machine reaches it through
//! [`cluster::Adapter`](crate::cluster::Adapter) (its hooks
//! `persist_session`, `reserve_session`, `resume_session` and the packet
//! store of every broadcast), so that a Redis-streams form can implement
//! the same hooks with the offset as the stream entry id.
//!
//! What it decides, as the reference does:
//!
//! * which packets are stored: events without an ack id that are not
//!   volatile ([`SessionStore::store`]); the offset is appended to the
//!   event's arguments on the wire;
//! * which sessions are kept: those of sockets that disconnected for a
//!   transport reason ([`DisconnectReason::keeps_session`]), for
//!   [`RecoveryConfig::max_disconnection_duration`];
//! * what a restore replays: every stored packet after the client's
//!   offset that was addressed to the socket (its rooms, each broadcast's
//!   exceptions), in order, each with its original offset.
//!
//! One thing it does better than the reference: the reference filters the
//! missed packets by the rooms the socket had when it disconnected, so a
//! socket that joined or left a room between its last received packet and
//! the cut could be sent a packet it was never addressed, or miss one it
//! was. Here each socket keeps the room changes made since the oldest
//! stored packet, and the filter uses the rooms it had when each packet was
//! emitted. Without such changes the result is the reference's.
//!
//! Time is an input: packets and sessions are stamped with the `now` of
//! the next [`SessionStore::handle_timeout`] (so they are kept at least the
//! configured duration), [`SessionStore::poll_timeout`] says when to call
//! it, and expiry is swept then.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use duplex_socketio::cluster::Opts;
//! use duplex_socketio::recovery::{RecoveryConfig, Session, SessionStore};
//! use duplex_socketio::{Packet, Value};
//! use rand::SeedableRng;
//!
//! let now = Instant::now();
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! let mut store = SessionStore::new(RecoveryConfig::default(), &mut rng);
//! store.joined("sid1", &["sid1".to_owned(), "room".to_owned()]);
//! let first = Packet::event_with("/", "tick", &[0.into()], None).unwrap();
//! let (sent, offset) = store.store(&first, &Opts::rooms(["room"])).unwrap();
//! assert!(sent.text.ends_with(&format!(r#""{offset}"]"#)));
//!
//! // The connection is lost: the session is kept...
//! store.persist(Session {
//!     sid: "sid1".into(),
//!     pid: "pid1".into(),
//!     rooms: vec!["sid1".into(), "room".into()],
//!     data: Value::Null,
//! });
//! // ...while the room goes on.
//! let second = Packet::event_with("/", "tick", &[1.into()], None).unwrap();
//! store.store(&second, &Opts::rooms(["room"]));
//! store.handle_timeout(now);
//!
//! // The client comes back with its pid and last offset.
//! let reserved = store.reserve("pid1", &offset, now).unwrap();
//! let restored = store.resume(reserved).unwrap();
//! assert_eq!(restored.session.sid, "sid1");
//! assert_eq!(restored.missed.len(), 1);
//! assert!(restored.missed[0].text.starts_with(r#"2["tick",1,""#));
//! # let _ = Duration::ZERO;
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::cluster::Opts;
use crate::server::DisconnectReason;
use crate::{EncodedPacket, Packet, Str, Value};

/// Settings of connection state recovery, defaulted as the reference's
/// `connectionStateRecovery` option, plus the bounds the reference does
/// not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long the session of a socket whose connection was lost is kept,
    /// and how long emitted packets are kept (`maxDisconnectionDuration`).
    /// Default 120 s.
    pub max_disconnection_duration: Duration,
    /// Whether a restored socket may skip the namespace's middlewares
    /// (`skipMiddlewares`). Default true.
    pub skip_middlewares: bool,
    /// Most packets kept per namespace; the oldest go first, and a client
    /// whose offset went with them gets a fresh session. Default 10,000.
    pub max_packets: usize,
    /// Most sessions kept per namespace; the longest disconnected go first.
    /// Default 10,000.
    pub max_sessions: usize,
    /// Most room changes remembered per socket (see the module
    /// documentation); past it the oldest go, and a restore from an offset
    /// older than them gets a fresh session. Default 256.
    pub max_room_changes: usize,
    /// Most CONNECTs held at once, all namespaces together, while the
    /// connection of the still-connected socket their pid names is probed
    /// (see the module documentation); past it such a CONNECT gets a
    /// fresh session at once. Default 1024.
    pub max_held_connects: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 10_000,
            max_sessions: 10_000,
            max_room_changes: 256,
            max_held_connects: 1024,
        }
    }
}

impl DisconnectReason {
    /// Whether a socket that disconnected for this reason keeps its session
    /// for recovery: the connection was lost (transport error or close,
    /// ping timeout) or the server closed it (shutting down, forced
    /// close), but not when either side left the namespace on purpose or
    /// the client sent something unreadable.
    pub fn keeps_session(self) -> bool {
        matches!(
            self,
            Self::TransportClose
                | Self::TransportError
                | Self::PingTimeout
                | Self::ServerShuttingDown
                | Self::ForcedServerClose
        )
    }
}

/// The alphabet of yeast, the reference's offset generator (also
/// base64url's).
const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// The character of a base-64 digit (`digit` below 64) in `alphabet`.
fn digit(alphabet: &[u8; 64], digit: u64) -> char {
    alphabet
        .get((digit % 64) as usize)
        .map_or('0', |&b| char::from(b))
}

/// `n` in yeast's base 64, most significant digit first.
fn encode64(n: u64, out: &mut String) {
    let start = out.len();
    let mut n = n;
    loop {
        out.insert(start, digit(ALPHABET, n % 64));
        n /= 64;
        if n == 0 {
            break;
        }
    }
}

/// The number yeast's base-64 `text` stands for, if it is one (at most 10
/// digits, so that it cannot overflow).
fn decode64(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 10 {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        let digit = ALPHABET.iter().position(|&a| a == b)?;
        Some(acc * 64 + digit as u64)
    })
}

/// A random id as the reference's `base64id.generateId()` makes pids: 15
/// random bytes in base64url, 20 characters.
pub fn random_id(rng: &mut dyn RngCore) -> String {
    let mut bytes = [0u8; 15];
    rng.fill_bytes(&mut bytes);
    bytes
        .chunks(3)
        .flat_map(|c| {
            let n = c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
            (0..4).rev().map(move |i| ((n >> (6 * i)) & 63) as usize)
        })
        .map(|i| digit(BASE64URL, i as u64))
        .collect()
}

/// base64url's alphabet, in its own order (not yeast's).
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The offsets of one log: `<epoch>.<n>` in yeast's format (the reference
/// writes `<ms>` or `<ms>.<n>`, the milliseconds of its clock), where the
/// epoch is drawn once from the injected RNG and `n` counts the packets.
/// Offsets are opaque to clients; this form makes them unique to the log
/// (a restarted server or another namespace never recognises them) and
/// turns an offset back into its position without a lookup table.
#[derive(Clone, Debug)]
struct Offsets {
    epoch: String,
}

impl Offsets {
    fn new(rng: &mut dyn RngCore) -> Self {
        // 41 bits: the magnitude of a millisecond clock, 7 digits like the
        // reference's offsets.
        let ms = (1u64 << 40) | (rng.next_u64() & ((1 << 40) - 1));
        let mut epoch = String::new();
        encode64(ms, &mut epoch);
        Self { epoch }
    }

    fn offset(&self, seq: u64) -> String {
        let mut out = String::with_capacity(self.epoch.len() + 6);
        out.push_str(&self.epoch);
        out.push('.');
        encode64(seq, &mut out);
        out
    }

    /// The position an offset of this log names, if it is one.
    fn seq(&self, offset: &str) -> Option<u64> {
        let (epoch, n) = offset.split_once('.')?;
        if epoch != self.epoch {
            return None;
        }
        // Only the text this log wrote: `x.00` is not `x.0`.
        decode64(n).filter(|&seq| self.offset(seq) == offset)
    }
}

/// The part of a socket the reference persists: its id, its private
/// session id, its rooms and its `data`.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// The socket id (`sid`).
    pub sid: String,
    /// The private session id the client recovers with (`pid`).
    pub pid: String,
    /// The rooms it was in, its own id's included.
    pub rooms: Vec<String>,
    /// The application's `socket.data`.
    pub data: Value,
}

/// A restored session and the packets it missed, in emission order, each
/// with its original offset, encoded as they were sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    /// The session as it was persisted.
    pub session: Session,
    /// The missed packets.
    pub missed: Vec<EncodedPacket>,
}

/// A room a socket joined or left, and from which stored packet on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RoomChange {
    room: String,
    joined: bool,
    /// The first packet position the change applies to.
    at: u64,
}

/// A socket's room changes since the oldest stored packet.
#[derive(Clone, Debug, Default)]
struct History {
    /// The first packet position after the socket connected: nothing
    /// stored before was addressed to it.
    born: u64,
    changes: VecDeque<RoomChange>,
    /// Changes applying from before this position were forgotten (the
    /// bound): the history is complete only for packets from here on.
    floor: u64,
}

/// A stored packet.
#[derive(Clone, Debug)]
struct Stored {
    seq: u64,
    /// Set by the first `handle_timeout` after the packet was stored.
    emitted_at: Option<Instant>,
    rooms: Vec<String>,
    except: Vec<String>,
    packet: EncodedPacket,
}

/// A session kept after its socket disconnected.
#[derive(Clone, Debug)]
struct Persisted {
    session: Session,
    history: History,
    /// Set by the first `handle_timeout` after the disconnect.
    disconnected_at: Option<Instant>,
    /// Its key in the store's eviction order.
    order: u64,
}

/// A session taken out of the store for a CONNECT that is being answered:
/// no other connection can take it meanwhile. Give it to
/// [`SessionStore::resume`] when the CONNECT is accepted, or back with
/// [`SessionStore::unreserve`] when it is refused.
#[derive(Clone, Debug)]
pub struct Reserved {
    persisted: Box<Persisted>,
    offset: String,
}

impl Reserved {
    /// The session's socket id.
    pub fn sid(&self) -> &str {
        &self.persisted.session.sid
    }

    /// The session's private id.
    pub fn pid(&self) -> &str {
        &self.persisted.session.pid
    }
}

/// The session-aware part of one namespace's in-memory adapter: the
/// packet log, the kept sessions and the room history of live sockets.
/// See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct SessionStore {
    config: RecoveryConfig,
    offsets: Offsets,
    /// The position the next stored packet gets.
    next_seq: u64,
    packets: VecDeque<Stored>,
    /// Kept sessions by pid (boxed: the table's spare capacity then costs
    /// a pointer per slot, not a session).
    sessions: HashMap<String, Box<Persisted>>,
    /// Pids by persist order, oldest first: eviction and expiry.
    order: BTreeMap<u64, String>,
    next_order: u64,
    /// Room history of the connected sockets, by sid.
    live: HashMap<String, History>,
    /// The latest time handed in.
    now: Option<Instant>,
    /// Something waits for a timestamp.
    unstamped: bool,
}

impl SessionStore {
    /// An empty store; the offsets' epoch comes from `rng`.
    pub fn new(config: RecoveryConfig, rng: &mut dyn RngCore) -> Self {
        Self {
            config,
            offsets: Offsets::new(rng),
            next_seq: 0,
            packets: VecDeque::new(),
            sessions: HashMap::new(),
            order: BTreeMap::new(),
            next_order: 0,
            live: HashMap::new(),
            now: None,
            unstamped: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// Packets kept.
    pub fn packet_count(&self) -> usize {
        self.packets.len()
    }

    /// Sessions kept.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Whether nothing is kept (no packet, no session, no live socket's
    /// history): the store can go.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty() && self.sessions.is_empty() && self.live.is_empty()
    }

    /// The broadcast hook: stores `packet`, sent to the sockets `opts`
    /// selects, if the reference would (an event without an ack id and
    /// without the `volatile` flag), and returns it encoded with its
    /// offset appended to its arguments (the stored bytes, shared), and
    /// the offset. `None`: send it as it is.
    pub fn store(&mut self, packet: &Packet, opts: &Opts) -> Option<(EncodedPacket, String)> {
        if !packet.packet_type.is_event()
            || packet.ack_id.is_some()
            || opts.flag("volatile").is_some()
        {
            return None;
        }
        let seq = self.next_seq;
        let offset = self.offsets.offset(seq);
        let encoded = append_offset(packet, &offset)?.encode();
        self.next_seq += 1;
        if self.packets.len() >= self.config.max_packets.max(1) {
            self.packets.pop_front();
        }
        self.packets.push_back(Stored {
            seq,
            emitted_at: None,
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            packet: encoded.clone(),
        });
        self.unstamped = true;
        Some((encoded, offset))
    }

    /// The offset of the newest stored packet, if any.
    pub fn last_offset(&self) -> Option<String> {
        self.packets.back().map(|p| self.offsets.offset(p.seq))
    }

    /// Socket `sid` joined `rooms` (its own id's room when it connects).
    pub fn joined(&mut self, sid: &str, rooms: &[String]) {
        for room in rooms {
            self.change(sid, room, true);
        }
    }

    /// Socket `sid` left `room`.
    pub fn left(&mut self, sid: &str, room: &str) {
        self.change(sid, room, false);
    }

    fn change(&mut self, sid: &str, room: &str, joined: bool) {
        let prunable = self.prunable();
        let max = self.config.max_room_changes;
        let born = self.next_seq;
        let history = self.live.entry(sid.to_owned()).or_insert_with(|| History {
            born,
            ..History::default()
        });
        history.changes.push_back(RoomChange {
            room: room.to_owned(),
            joined,
            at: self.next_seq,
        });
        trim(history, prunable, max);
    }

    /// Changes applying from this position or before can never matter:
    /// the oldest offset a client can resume from is the oldest stored
    /// packet's, and a change applying to the packet right after it is
    /// already in the rooms the replay starts from.
    fn prunable(&self) -> u64 {
        self.packets.front().map_or(self.next_seq, |p| p.seq) + 1
    }

    /// Socket `sid` is gone without keeping a session.
    pub fn forget(&mut self, sid: &str) {
        self.live.remove(sid);
    }

    /// The persist hook: keeps `session` (of a socket that disconnected
    /// for a reason that [keeps it](DisconnectReason::keeps_session)) for
    /// the configured duration, with its room history. The longest kept
    /// session goes if the store is full.
    pub fn persist(&mut self, session: Session) {
        let history = self.live.remove(&session.sid).unwrap_or_default();
        if let Some(old) = self.sessions.remove(&session.pid) {
            self.order.remove(&old.order);
        }
        while self.sessions.len() >= self.config.max_sessions.max(1) {
            let Some((_, pid)) = self.order.pop_first() else {
                break;
            };
            self.sessions.remove(&pid);
        }
        let order = self.next_order;
        self.next_order += 1;
        self.order.insert(order, session.pid.clone());
        self.sessions.insert(
            session.pid.clone(),
            Box::new(Persisted {
                session,
                history,
                disconnected_at: None,
                order,
            }),
        );
        self.unstamped = true;
    }

    /// The first half of the restore hook, for a CONNECT whose auth holds
    /// `pid` and `offset` (strings): takes the session out if it is kept,
    /// has not expired by `now`, and `offset` is still stored. `None`
    /// means a fresh session.
    pub fn reserve(&mut self, pid: &str, offset: &str, now: Instant) -> Option<Reserved> {
        let persisted = self.sessions.get(pid)?;
        if persisted
            .disconnected_at
            .is_some_and(|at| expired(at, self.config.max_disconnection_duration, now))
        {
            // Expired, and not swept yet.
            self.remove_session(pid);
            return None;
        }
        self.index_of(offset)?;
        let persisted = self.remove_session(pid)?;
        Some(Reserved {
            persisted,
            offset: offset.to_owned(),
        })
    }

    /// Whether a client could resume from `offset`: it names a packet
    /// still stored. The server checks it before holding a CONNECT for a
    /// probe, so that no restore that would fail waits for one.
    pub(crate) fn holds_offset(&self, offset: &str) -> bool {
        self.index_of(offset).is_some()
    }

    fn remove_session(&mut self, pid: &str) -> Option<Box<Persisted>> {
        let persisted = self.sessions.remove(pid)?;
        self.order.remove(&persisted.order);
        Some(persisted)
    }

    /// Gives back a reserved session whose CONNECT was refused: kept as
    /// before, with its original disconnect time.
    pub fn unreserve(&mut self, reserved: Reserved) {
        let mut persisted = reserved.persisted;
        if self.sessions.len() >= self.config.max_sessions.max(1) {
            return;
        }
        // A stamped session goes back to its place in the eviction and
        // expiry order, with its time. One still waiting for its stamp
        // goes last, with the others waiting: the order then stays the
        // order of the stamps, which expiry and stamping rely on.
        if persisted.disconnected_at.is_none() {
            persisted.order = self.next_order;
            self.next_order += 1;
            self.unstamped = true;
        }
        self.order
            .insert(persisted.order, persisted.session.pid.clone());
        self.sessions
            .insert(persisted.session.pid.clone(), persisted);
    }

    /// The second half of the restore hook, when the CONNECT is accepted:
    /// the session and every packet stored after its offset that was
    /// addressed to it, in order. The socket is live again from here (its
    /// room history goes on). `None` (a fresh session) if the offset is
    /// no longer stored, or older than the socket's remembered room
    /// changes.
    pub fn resume(&mut self, reserved: Reserved) -> Option<Restored> {
        let Reserved { persisted, offset } = reserved;
        let persisted = *persisted;
        let index = self.index_of(&offset)?;
        let from = self.packets.get(index)?.seq + 1;
        let history = persisted.history;
        if history.floor > from {
            return None;
        }
        // The rooms the socket had when the packet after the offset was
        // stored: its last rooms with the later changes undone.
        let mut rooms: HashSet<&str> = persisted.session.rooms.iter().map(String::as_str).collect();
        let later: Vec<&RoomChange> = history.changes.iter().filter(|c| c.at > from).collect();
        for change in later.iter().rev() {
            if change.joined {
                rooms.remove(change.room.as_str());
            } else {
                rooms.insert(change.room.as_str());
            }
        }
        let mut changes = later.into_iter().peekable();
        let mut missed = Vec::new();
        for stored in self.packets.iter().skip(index + 1) {
            if stored.seq < history.born {
                continue;
            }
            while let Some(change) = changes.next_if(|c| c.at <= stored.seq) {
                if change.joined {
                    rooms.insert(change.room.as_str());
                } else {
                    rooms.remove(change.room.as_str());
                }
            }
            let included =
                stored.rooms.is_empty() || stored.rooms.iter().any(|r| rooms.contains(r.as_str()));
            let excluded = stored.except.iter().any(|r| rooms.contains(r.as_str()));
            if included && !excluded {
                missed.push(stored.packet.clone());
            }
        }
        let sid = persisted.session.sid.clone();
        let restored = Restored {
            session: persisted.session,
            missed,
        };
        self.live.insert(sid, history);
        Some(restored)
    }

    /// The position in `packets` of the packet `offset` names.
    fn index_of(&self, offset: &str) -> Option<usize> {
        let seq = self.offsets.seq(offset)?;
        let first = self.packets.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.packets.get(index).filter(|p| p.seq == seq)?;
        Some(index)
    }

    /// Stamps what was stored or persisted since the last call with `now`,
    /// and forgets the sessions and packets older than the configured
    /// duration.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |n| n.max(now)));
        if self.unstamped {
            // What waits for a stamp is the newest (see `unreserve`): walk
            // back to the first stamped one.
            for p in self.packets.iter_mut().rev() {
                if p.emitted_at.is_some() {
                    break;
                }
                p.emitted_at = Some(now);
            }
            for pid in self.order.values().rev() {
                let Some(s) = self.sessions.get_mut(pid) else {
                    continue;
                };
                if s.disconnected_at.is_some() {
                    break;
                }
                s.disconnected_at.get_or_insert(now);
            }
            self.unstamped = false;
        }
        let keep = self.config.max_disconnection_duration;
        let oldest = self.packets.front().map(|p| p.seq);
        while self
            .packets
            .front()
            .and_then(|p| p.emitted_at)
            .is_some_and(|at| expired(at, keep, now))
        {
            self.packets.pop_front();
        }
        // Sessions are in the order of their stamps (a refused restore
        // goes back to its place with its time): expire from the front.
        while let Some((&order, pid)) = self.order.first_key_value() {
            let expired = self
                .sessions
                .get(pid)
                .is_none_or(|s| s.disconnected_at.is_some_and(|at| at + keep <= now));
            if !expired {
                break;
            }
            let pid = pid.clone();
            self.order.remove(&order);
            self.sessions.remove(&pid);
        }
        // Room changes older than the oldest packet matter no more.
        if self.packets.front().map(|p| p.seq) != oldest {
            let prunable = self.prunable();
            let max = self.config.max_room_changes;
            for history in self.live.values_mut() {
                trim(history, prunable, max);
            }
        }
    }

    /// Whether something stored or kept waits for its timestamp: call
    /// [`SessionStore::handle_timeout`] at once.
    pub fn waits_for_time(&self) -> bool {
        self.unstamped
    }

    /// When [`SessionStore::handle_timeout`] should next be called: at once
    /// (the latest time handed in) when something [waits for its
    /// stamp](SessionStore::waits_for_time), else one second after the
    /// oldest packet or session expires, so that sweeps come at most once
    /// a second.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.unstamped {
            return self.now;
        }
        let keep = self.config.max_disconnection_duration;
        let packet = self.packets.front().and_then(|p| p.emitted_at);
        let session = self
            .order
            .values()
            .next()
            .and_then(|pid| self.sessions.get(pid))
            .and_then(|s| s.disconnected_at);
        [packet, session]
            .into_iter()
            .flatten()
            .min()
            .and_then(|at| at.checked_add(keep.saturating_add(SWEEP_GRANULARITY)))
    }
}

/// How much later than due expired packets and sessions may be swept, so
/// that a steady stream of emits does not wake the machine once per packet.
const SWEEP_GRANULARITY: Duration = Duration::from_secs(1);

fn trim(history: &mut History, prunable: u64, max: usize) {
    while history.changes.front().is_some_and(|c| c.at <= prunable) {
        history.changes.pop_front();
    }
    while history.changes.len() > max {
        if let Some(dropped) = history.changes.pop_front() {
            history.floor = history.floor.max(dropped.at);
        }
    }
}

/// `packet` with `offset` appended to its arguments: `[...]` becomes
/// `[...,"<offset>"]`, as the reference pushes the offset onto the data
/// array. `None` if the data is not a JSON array.
pub fn append_offset(packet: &Packet, offset: &str) -> Option<Packet> {
    let data = packet.data.as_ref()?.as_str();
    let body = data.trim_end().strip_suffix(']')?;
    let empty = body.trim_end().ends_with('[');
    let mut text = String::with_capacity(data.len() + offset.len() + 4);
    text.push_str(body);
    if !empty {
        text.push(',');
    }
    // Offsets are made of `[0-9A-Za-z._-]`: no JSON escaping needed.
    text.push('"');
    text.push_str(offset);
    text.push_str("\"]");
    let mut out = packet.clone();
    out.data = Some(Str::from(text));
    Some(out)
}

/// Whether something stamped `at` and kept for `keep` is gone by `now`; a
/// `keep` too long to add to an instant never ends.
fn expired(at: Instant, keep: Duration, now: Instant) -> bool {
    at.checked_add(keep).is_some_and(|end| end <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn yeast_digits_round_trip() {
        for n in [0, 1, 63, 64, 4095, 1_700_000_000_000, (1 << 60) - 1] {
            let mut s = String::new();
            encode64(n, &mut s);
            assert_eq!(decode64(&s), Some(n), "{s}");
        }
        // The reference's encode(1700000000000).
        let mut s = String::new();
        encode64(1_700_000_000_000, &mut s);
        assert_eq!(s, "OlFvMW0");
        assert_eq!(decode64(""), None);
        assert_eq!(decode64("ab+"), None);
        assert_eq!(decode64("zzzzzzzzzzz"), None);
    }

    #[test]
    fn random_ids_are_base64id_shaped() {
        let mut rng = StdRng::seed_from_u64(3);
        let id = random_id(&mut rng);
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| BASE64URL.contains(&b)));
        assert_ne!(id, random_id(&mut rng));
    }

    #[test]
    fn offsets_name_their_position_in_this_log_only() {
        let mut rng = StdRng::seed_from_u64(3);
        let a = Offsets::new(&mut rng);
        let b = Offsets::new(&mut rng);
        let o = a.offset(4097);
        assert_eq!(a.seq(&o), Some(4097));
        assert_eq!(b.seq(&o), None);
        assert_eq!(a.seq("nonsense"), None);
        assert_eq!(
            a.seq(&format!("{}.0{}", a.epoch, &o[a.epoch.len() + 1..])),
            None
        );
        assert_eq!(a.epoch.len(), 7);
    }

    fn session(n: &str) -> Session {
        Session {
            sid: format!("sid-{n}"),
            pid: format!("pid-{n}"),
            rooms: vec![format!("sid-{n}")],
            data: Value::Null,
        }
    }

    #[test]
    fn refused_restore_keeps_its_time_and_expiry_order() {
        let t0 = Instant::now();
        let keep = RecoveryConfig::default().max_disconnection_duration;
        let mut rng = StdRng::seed_from_u64(5);
        let mut store = SessionStore::new(RecoveryConfig::default(), &mut rng);
        let tick = Packet::event_with("/", "tick", &[0.into()], None).unwrap();
        let (_, offset) = store.store(&tick, &Opts::default()).unwrap();

        // Stamped before the refused restore: back with its own time.
        store.persist(session("a"));
        store.persist(session("b"));
        store.handle_timeout(t0);
        let a = store.reserve("pid-a", &offset, t0 + Duration::from_secs(10));
        store.unreserve(a.unwrap());
        store.handle_timeout(t0 + keep);
        assert_eq!(store.session_count(), 0, "both kept from t0, both gone");

        // Reserved before its stamp, refused after a later session's stamp:
        // it goes after that one, so that expiry from the front is right.
        let t1 = t0 + keep + Duration::from_secs(1);
        let (_, offset) = store.store(&tick, &Opts::default()).unwrap();
        store.persist(session("c"));
        let c = store.reserve("pid-c", &offset, t1).unwrap();
        store.persist(session("d"));
        store.handle_timeout(t1);
        store.unreserve(c);
        assert!(store.waits_for_time());
        let t2 = t1 + Duration::from_secs(5);
        store.handle_timeout(t2);
        store.handle_timeout(t1 + keep);
        assert_eq!(store.session_count(), 1, "d expired, c not yet");
        assert!(store.reserve("pid-d", &offset, t1 + keep).is_none());
        store.handle_timeout(t2 + keep);
        assert_eq!(store.session_count(), 0);
    }

    #[test]
    fn offset_appended_to_the_arguments() {
        let p = Packet::event_with("/", "tick", &["s1".into(), 7.into()], None).unwrap();
        let q = append_offset(&p, "AbC.1").unwrap();
        assert_eq!(q.encode().text, r#"2["tick","s1",7,"AbC.1"]"#);
        let empty = Packet::event("/", Str::from("[]"), Vec::new(), None).unwrap();
        assert_eq!(
            append_offset(&empty, "x").unwrap().encode().text,
            r#"2["x"]"#
        );
        let bad = Packet::event("/", Str::from("{}"), Vec::new(), None).unwrap();
        assert_eq!(append_offset(&bad, "x"), None);
    }
}
