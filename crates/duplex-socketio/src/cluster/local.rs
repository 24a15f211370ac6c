//! The local side of an adapter: room bookkeeping with socket.io-adapter's
//! in-memory semantics, and what each message from another node means for
//! the local sockets.

use std::collections::{HashMap, HashSet};

use super::classic::{ClassicBroadcast, ClassicChannels, ClassicRequest};
use super::sharded::{ClusterBody, ClusterMessage};
use super::{Opts, WirePacket};
use crate::Value;
use crate::recovery::{Reserved, Restored, SessionStore};

/// A room that appeared or disappeared locally (socket.io-adapter's
/// `create-room` / `delete-room`): the sharded dynamic modes subscribe to
/// and unsubscribe from the room's channel on these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomChange {
    /// The room's first member joined.
    Created(String),
    /// The room's last member left.
    Deleted(String),
}

/// The room operations the local Socket.IO server routes through its
/// adapter, for one namespace. Socket ids are rooms too: a socket joins
/// the room named by its id on connecting.
pub trait LocalAdapter {
    /// Socket `sid` joins `rooms`.
    fn add_all(&mut self, sid: &str, rooms: &[String]) -> Vec<RoomChange>;
    /// Socket `sid` leaves `room`.
    fn del(&mut self, sid: &str, room: &str) -> Vec<RoomChange>;
    /// Socket `sid` leaves every room (it disconnected).
    fn del_all(&mut self, sid: &str) -> Vec<RoomChange>;
    /// The local sockets `opts` selects, each once: members of any of
    /// `opts.rooms` (every socket when empty) that are in no room of
    /// `opts.except` (socket.io-adapter's `apply`).
    fn select(&self, opts: &Opts) -> Vec<String>;
    /// The rooms of socket `sid`.
    fn rooms_of(&self, sid: &str) -> Vec<String>;
    /// Whether room `room` has local members.
    fn has_room(&self, room: &str) -> bool;
    /// Whether `sid` is a local socket.
    fn has_socket(&self, sid: &str) -> bool;
    /// Every local room (socket-id rooms included).
    fn all_rooms(&self) -> Vec<String>;
}

/// The default adapter: rooms in memory, nothing shared; with a
/// [`SessionStore`], session-aware (socket.io-adapter's
/// `SessionAwareAdapter`: connection state recovery).
#[derive(Clone, Debug, Default)]
pub struct InMemoryAdapter {
    /// Each room's members, except a socket in the room named by its own
    /// id: that membership is [`Member::own`], not an entry here.
    rooms: HashMap<String, HashSet<String>>,
    /// Each local socket's rooms.
    sids: HashMap<String, Member>,
    recovery: Option<Box<SessionStore>>,
}

/// The rooms of one local socket.
#[derive(Clone, Debug, Default)]
struct Member {
    /// In the room named by its own id, as every socket is from its
    /// connection until it leaves that room. Implied rather than stored as
    /// a room in both maps: that cost each idle socket some 560 bytes
    /// (issue #19), for a room that almost always has this one member.
    own: bool,
    /// Its other rooms (a room named by another socket's id among them).
    rooms: HashSet<String>,
}

impl Member {
    fn contains(&self, sid: &str, room: &str) -> bool {
        if room == sid {
            self.own
        } else {
            self.rooms.contains(room)
        }
    }
}

impl InMemoryAdapter {
    /// No rooms yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// No rooms yet, keeping packets and sessions in `store` for
    /// connection state recovery.
    pub fn with_recovery(store: SessionStore) -> Self {
        Self {
            recovery: Some(Box::new(store)),
            ..Self::default()
        }
    }

    /// The recovery store, if session-aware.
    pub fn recovery(&self) -> Option<&SessionStore> {
        self.recovery.as_deref()
    }

    /// The recovery store, if session-aware.
    pub fn recovery_mut(&mut self) -> Option<&mut SessionStore> {
        self.recovery.as_deref_mut()
    }

    /// The restore hook: resumes `reserved` and puts the socket back in
    /// its rooms, in one step so that no emit comes between the missed
    /// packets and the rooms. The rooms are not room changes: the socket
    /// was in them all along. `None` (and no room joined): a fresh session.
    pub fn restore_session(&mut self, reserved: Reserved) -> Option<Restored> {
        let restored = self.recovery.as_deref_mut()?.resume(reserved)?;
        self.add_rooms(&restored.session.sid, &restored.session.rooms);
        Some(restored)
    }

    /// Whether a local socket is in the room named by its id `room`.
    fn owner_in(&self, room: &str) -> bool {
        self.sids.get(room).is_some_and(|m| m.own)
    }

    /// The local members of `room`: the socket it is named after (while in
    /// it), then the others.
    fn members<'a>(&'a self, room: &str) -> impl Iterator<Item = &'a str> {
        let owner = self
            .sids
            .get_key_value(room)
            .filter(|(_, m)| m.own)
            .map(|(sid, _)| sid.as_str());
        owner.into_iter().chain(
            self.rooms
                .get(room)
                .into_iter()
                .flatten()
                .map(String::as_str),
        )
    }

    fn add_rooms(&mut self, sid: &str, rooms: &[String]) -> Vec<RoomChange> {
        let mut changes = Vec::new();
        if !self.sids.contains_key(sid) {
            self.sids.insert(sid.to_owned(), Member::default());
        }
        for room in rooms {
            let existed = self.rooms.contains_key(room) || self.owner_in(room);
            let Some(member) = self.sids.get_mut(sid) else {
                continue;
            };
            if room == sid {
                if member.own {
                    continue;
                }
                member.own = true;
            } else {
                member.rooms.insert(room.clone());
                match self.rooms.get_mut(room) {
                    Some(members) => {
                        members.insert(sid.to_owned());
                    }
                    None => {
                        self.rooms
                            .insert(room.clone(), HashSet::from([sid.to_owned()]));
                    }
                }
            }
            if !existed {
                changes.push(RoomChange::Created(room.clone()));
            }
        }
        changes
    }

    /// `sid` leaves the room `room` that is not named by its own id.
    fn del_inner(&mut self, room: &str, sid: &str, changes: &mut Vec<RoomChange>) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(sid);
            if members.is_empty() {
                self.rooms.remove(room);
                if !self.owner_in(room) {
                    changes.push(RoomChange::Deleted(room.to_owned()));
                }
            }
        }
    }

    /// [`LocalAdapter::select`] without copying the ids: `f` gets each
    /// selected local socket once, in the same order. A broadcast to one
    /// room (the usual one) needs no set of the sockets seen: a room's
    /// members are each in it once.
    pub fn for_each_selected<'a>(&'a self, opts: &Opts, mut f: impl FnMut(&'a str)) {
        let except = self.except_sids(&opts.except);
        match opts.rooms.as_slice() {
            [] => self
                .sids
                .keys()
                .map(String::as_str)
                .filter(|sid| !except.contains(sid))
                .for_each(f),
            [room] => self
                .members(room)
                .filter(|sid| !except.contains(sid))
                .for_each(f),
            rooms => {
                let mut seen: HashSet<&str> = HashSet::new();
                for room in rooms {
                    for sid in self.members(room) {
                        if !except.contains(sid) && seen.insert(sid) {
                            f(sid);
                        }
                    }
                }
            }
        }
    }

    fn except_sids(&self, except: &[String]) -> HashSet<&str> {
        except.iter().flat_map(|room| self.members(room)).collect()
    }
}

impl LocalAdapter for InMemoryAdapter {
    fn add_all(&mut self, sid: &str, rooms: &[String]) -> Vec<RoomChange> {
        if self.recovery.is_some() {
            // Only real changes: a room joined twice was joined once.
            let own = self.sids.get(sid);
            let new: Vec<String> = rooms
                .iter()
                .filter(|r| !own.is_some_and(|own| own.contains(sid, r)))
                .cloned()
                .collect();
            if let Some(store) = self.recovery.as_deref_mut() {
                store.joined(sid, &new);
            }
        }
        self.add_rooms(sid, rooms)
    }

    fn del(&mut self, sid: &str, room: &str) -> Vec<RoomChange> {
        let member = self.sids.get(sid);
        if member.is_some_and(|m| m.contains(sid, room)) {
            if let Some(store) = self.recovery.as_deref_mut() {
                store.left(sid, room);
            }
        }
        let mut changes = Vec::new();
        if room == sid {
            if let Some(member) = self.sids.get_mut(sid).filter(|m| m.own) {
                member.own = false;
                if !self.rooms.contains_key(room) {
                    changes.push(RoomChange::Deleted(room.to_owned()));
                }
            }
            return changes;
        }
        if let Some(member) = self.sids.get_mut(sid) {
            member.rooms.remove(room);
        }
        self.del_inner(room, sid, &mut changes);
        changes
    }

    fn del_all(&mut self, sid: &str) -> Vec<RoomChange> {
        if let Some(store) = self.recovery.as_deref_mut() {
            store.forget(sid);
        }
        let mut changes = Vec::new();
        if let Some(member) = self.sids.remove(sid) {
            if member.own && !self.rooms.contains_key(sid) {
                changes.push(RoomChange::Deleted(sid.to_owned()));
            }
            for room in member.rooms {
                self.del_inner(&room, sid, &mut changes);
            }
        }
        changes
    }

    fn select(&self, opts: &Opts) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_selected(opts, |sid| out.push(sid.to_owned()));
        out
    }

    fn rooms_of(&self, sid: &str) -> Vec<String> {
        self.sids
            .get(sid)
            .map(|m| {
                let own = m.own.then(|| sid.to_owned());
                own.into_iter().chain(m.rooms.iter().cloned()).collect()
            })
            .unwrap_or_default()
    }

    fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room) || self.owner_in(room)
    }

    fn has_socket(&self, sid: &str) -> bool {
        self.sids.contains_key(sid)
    }

    fn all_rooms(&self) -> Vec<String> {
        let own = self
            .sids
            .iter()
            .filter(|(sid, m)| m.own && !self.rooms.contains_key(sid.as_str()))
            .map(|(sid, _)| sid.clone());
        self.rooms.keys().cloned().chain(own).collect()
    }
}

/// What a message from another node asks of the local server.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalAction {
    /// Send `packet` to these local sockets (with the `flags` of the
    /// broadcast: `volatile`, `compress`).
    Emit {
        /// The local sockets.
        sockets: Vec<String>,
        /// The packet.
        packet: WirePacket,
        /// The broadcast's flags.
        flags: Option<Value>,
    },
    /// Send `packet` with an ack id to these sockets, answer the requester
    /// with their count (`BROADCAST_CLIENT_COUNT`, sent even when 0), then
    /// with each client's ack (`BROADCAST_ACK`).
    EmitWithAck {
        /// The local sockets.
        sockets: Vec<String>,
        /// The packet.
        packet: WirePacket,
        /// The broadcast's flags.
        flags: Option<Value>,
        /// The requesting node.
        requester: String,
        /// Its request id.
        request_id: String,
    },
    /// These sockets join `rooms`.
    Join {
        /// The local sockets.
        sockets: Vec<String>,
        /// The rooms.
        rooms: Vec<String>,
    },
    /// These sockets leave `rooms`.
    Leave {
        /// The local sockets.
        sockets: Vec<String>,
        /// The rooms.
        rooms: Vec<String>,
    },
    /// These sockets are disconnected (with `close`, their whole
    /// connection).
    Disconnect {
        /// The local sockets.
        sockets: Vec<String>,
        /// Close the underlying connection.
        close: bool,
    },
    /// Answer the requester with `{id, handshake, rooms, data}` of these
    /// sockets.
    Fetch {
        /// The local sockets.
        sockets: Vec<String>,
        /// The requesting node.
        requester: String,
        /// Its request id.
        request_id: String,
    },
    /// Answer the requester with the ids of these sockets (classic
    /// SOCKETS).
    SocketIds {
        /// The local sockets.
        sockets: Vec<String>,
        /// The requesting node.
        requester: String,
        /// Its request id.
        request_id: String,
    },
    /// Answer the requester with every local room (classic ALL_ROOMS).
    AllRooms {
        /// The local rooms.
        rooms: Vec<String>,
        /// The requesting node.
        requester: String,
        /// Its request id.
        request_id: String,
    },
    /// Run the server-side listeners of `data[0]` with the rest as
    /// arguments; with `reply`, the listener's callback answers
    /// `(requester, request_id)` once.
    ServerSideEmit {
        /// The event name and its arguments.
        data: Vec<Value>,
        /// Whom the callback answers.
        reply: Option<(String, String)>,
    },
    /// A legacy sid-form request: after joining/leaving/disconnecting
    /// through one of the actions above, answer `{requestId}`.
    Done {
        /// What to do to the socket first.
        then: Box<LocalAction>,
        /// The requesting node.
        requester: String,
        /// Its request id.
        request_id: String,
    },
}

impl InMemoryAdapter {
    /// What a classic broadcast received on `channel` means here, for the
    /// node `own_uid` serving namespace `nsp` (Node's `onmessage`): nothing
    /// for its own messages, another namespace, or a room channel of a
    /// room with no local member (numeric room names compared as numbers
    /// are, too).
    pub fn classic_broadcast(
        &self,
        channels: &ClassicChannels,
        own_uid: &str,
        nsp: &str,
        channel: &str,
        message: &ClassicBroadcast,
    ) -> Option<LocalAction> {
        let room = channels.room_of(channel)?;
        if !room.is_empty() && !self.has_room(room) && !self.has_numeric_room(room) {
            return None;
        }
        if message.uid == own_uid || message.packet.namespace() != nsp {
            return None;
        }
        Some(LocalAction::Emit {
            sockets: self.select(&message.opts),
            packet: message.packet.clone(),
            flags: message.opts.flags.clone(),
        })
    }

    fn has_numeric_room(&self, room: &str) -> bool {
        // `isNumeric(room) && rooms.has(parseFloat(room))`: a room joined as
        // the number 1 is the string "1" here; "1.0" names it too.
        room.trim().parse::<f64>().is_ok_and(|f| {
            let n = serde_json::Number::from_f64(f);
            let text = match n {
                Some(_) if f.floor() == f && f.abs() < 9e15 => format!("{}", f as i64),
                Some(n) => n.to_string(),
                None => return false,
            };
            text != room && self.has_room(&text)
        })
    }

    /// What a classic request means here (Node's `onrequest`). `is_own`
    /// tells whether a request id is one of this node's pending requests,
    /// which it does not answer itself.
    pub fn classic_request(
        &self,
        own_uid: &str,
        is_own: impl Fn(&str) -> bool,
        request: &ClassicRequest,
    ) -> Option<LocalAction> {
        Some(match request {
            ClassicRequest::Sockets {
                uid,
                request_id,
                rooms,
            } => {
                if is_own(request_id) {
                    return None;
                }
                LocalAction::SocketIds {
                    sockets: self.select(&Opts::rooms(rooms.iter().cloned())),
                    requester: uid.clone(),
                    request_id: request_id.clone(),
                }
            }
            ClassicRequest::AllRooms { uid, request_id } => {
                if is_own(request_id) {
                    return None;
                }
                LocalAction::AllRooms {
                    rooms: self.all_rooms(),
                    requester: uid.clone(),
                    request_id: request_id.clone(),
                }
            }
            // Applied even when this node sent it: harmless, as in Node.
            ClassicRequest::Rooms {
                leave, opts, rooms, ..
            } => room_action(*leave, self.select(opts), rooms.clone()),
            ClassicRequest::SocketRoom {
                uid,
                request_id,
                leave,
                sid,
                room,
            } => {
                if !self.has_socket(sid) {
                    return None;
                }
                LocalAction::Done {
                    then: Box::new(room_action(*leave, vec![sid.clone()], vec![room.clone()])),
                    requester: uid.clone(),
                    request_id: request_id.clone(),
                }
            }
            ClassicRequest::Disconnect { opts, close, .. } => LocalAction::Disconnect {
                sockets: self.select(opts),
                close: *close,
            },
            ClassicRequest::DisconnectSocket {
                uid,
                request_id,
                sid,
                close,
            } => {
                if !self.has_socket(sid) {
                    return None;
                }
                LocalAction::Done {
                    then: Box::new(LocalAction::Disconnect {
                        sockets: vec![sid.clone()],
                        close: *close,
                    }),
                    requester: uid.clone(),
                    request_id: request_id.clone(),
                }
            }
            ClassicRequest::Fetch {
                uid,
                request_id,
                opts,
            } => {
                if is_own(request_id) {
                    return None;
                }
                LocalAction::Fetch {
                    sockets: self.select(opts),
                    requester: uid.clone(),
                    request_id: request_id.clone(),
                }
            }
            ClassicRequest::ServerSideEmit {
                uid,
                request_id,
                data,
            } => {
                if uid == own_uid {
                    return None;
                }
                LocalAction::ServerSideEmit {
                    data: data.clone(),
                    reply: request_id.clone().map(|id| (uid.clone(), id)),
                }
            }
            ClassicRequest::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => {
                if is_own(request_id) {
                    return None;
                }
                LocalAction::EmitWithAck {
                    sockets: self.select(opts),
                    packet: packet.clone(),
                    flags: opts.flags.clone(),
                    requester: uid.clone(),
                    request_id: request_id.clone(),
                }
            }
        })
    }

    /// What a sharded cluster message means here (socket.io-adapter's
    /// `onMessage`): nothing for its own messages, another namespace,
    /// heartbeats and responses (those go to [`super::Requests`]).
    pub fn cluster_message(
        &self,
        own_uid: &str,
        nsp: &str,
        message: &ClusterMessage,
    ) -> Option<LocalAction> {
        if message.uid == own_uid || message.nsp != nsp {
            return None;
        }
        let requester = || message.uid.clone();
        Some(match &message.body {
            ClusterBody::Broadcast {
                packet,
                request_id: Some(request_id),
                opts,
            } => LocalAction::EmitWithAck {
                sockets: self.select(opts),
                packet: packet.clone(),
                flags: opts.flags.clone(),
                requester: requester(),
                request_id: request_id.clone(),
            },
            ClusterBody::Broadcast {
                packet,
                request_id: None,
                opts,
            } => LocalAction::Emit {
                sockets: self.select(opts),
                packet: packet.clone(),
                flags: opts.flags.clone(),
            },
            ClusterBody::SocketsRooms { leave, opts, rooms } => {
                room_action(*leave, self.select(opts), rooms.clone())
            }
            ClusterBody::DisconnectSockets { opts, close } => LocalAction::Disconnect {
                sockets: self.select(opts),
                close: *close,
            },
            ClusterBody::FetchSockets { opts, request_id } => LocalAction::Fetch {
                sockets: self.select(opts),
                requester: requester(),
                request_id: request_id.clone(),
            },
            ClusterBody::ServerSideEmit { request_id, packet } => LocalAction::ServerSideEmit {
                data: packet.clone(),
                reply: request_id.clone().map(|id| (requester(), id)),
            },
            _ => return None,
        })
    }
}

fn room_action(leave: bool, sockets: Vec<String>, rooms: Vec<String>) -> LocalAction {
    if leave {
        LocalAction::Leave { sockets, rooms }
    } else {
        LocalAction::Join { sockets, rooms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn own(adapter: &mut InMemoryAdapter, sid: &str) -> Vec<RoomChange> {
        adapter.add_all(sid, &[sid.to_owned()])
    }

    #[test]
    fn a_sockets_own_room_is_implied_yet_a_room_like_any_other() {
        let mut a = InMemoryAdapter::new();
        assert_eq!(own(&mut a, "s1"), [RoomChange::Created("s1".into())]);
        assert!(own(&mut a, "s1").is_empty(), "joined once");
        assert_eq!(a.rooms_of("s1"), ["s1"]);
        assert!(a.has_room("s1"));
        assert_eq!(a.all_rooms(), ["s1"]);
        assert_eq!(a.select(&Opts::rooms(["s1"])), ["s1"]);
        assert!(a.select(&Opts::default().except(["s1"])).is_empty());

        // Leaving it, as `socket.leave(socket.id)` does.
        assert_eq!(a.del("s1", "s1"), [RoomChange::Deleted("s1".into())]);
        assert!(a.rooms_of("s1").is_empty());
        assert!(!a.has_room("s1"));
        assert!(a.all_rooms().is_empty());
        assert!(a.select(&Opts::rooms(["s1"])).is_empty());
        assert!(a.has_socket("s1"));
        assert_eq!(a.select(&Opts::default()), ["s1"]);
        assert!(a.del_all("s1").is_empty(), "in no room any more");
        assert!(!a.has_socket("s1"));
    }

    #[test]
    fn a_room_named_by_a_socket_id_reaches_its_owner_and_its_other_members() {
        let mut a = InMemoryAdapter::new();
        own(&mut a, "s1");
        own(&mut a, "s2");
        assert!(a.add_all("s2", &["s1".into()]).is_empty(), "s1 exists");
        assert_eq!(sorted(a.select(&Opts::rooms(["s1"]))), ["s1", "s2"]);
        assert_eq!(sorted(a.rooms_of("s2")), ["s1", "s2"]);
        assert_eq!(sorted(a.all_rooms()), ["s1", "s2"], "each room once");
        assert!(a.select(&Opts::default().except(["s1"])).is_empty());

        // The owner leaves: the room stays for s2.
        assert!(a.del_all("s1").is_empty());
        assert!(a.has_room("s1"));
        assert_eq!(a.select(&Opts::rooms(["s1"])), ["s2"]);
        // A socket that comes back under that id finds its room there.
        assert!(own(&mut a, "s1").is_empty());
        assert_eq!(sorted(a.select(&Opts::rooms(["s1"]))), ["s1", "s2"]);
        assert!(a.del("s2", "s1").is_empty(), "s1 is still in it");
        assert_eq!(a.select(&Opts::rooms(["s1"])), ["s1"]);
        assert_eq!(a.del("s1", "s1"), [RoomChange::Deleted("s1".into())]);

        let mut changes = a.del_all("s2");
        changes.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(changes, [RoomChange::Deleted("s2".into())]);
        assert!(a.all_rooms().is_empty());
    }

    #[test]
    fn a_selection_gives_each_member_once_minus_the_excepted() {
        let mut a = InMemoryAdapter::new();
        for sid in ["s1", "s2", "s3"] {
            own(&mut a, sid);
        }
        a.add_all("s1", &["vip".into(), "s2".into()]);
        a.add_all("s3", &["vip".into()]);
        let borrowed = |opts: &Opts| {
            let mut out = Vec::new();
            a.for_each_selected(opts, |sid| out.push(sid.to_owned()));
            out
        };
        let cases = [
            (Opts::rooms(["vip"]), vec!["s1", "s3"]),
            // The one-room path: the owner of a room named by its id,
            // then its other members, each once.
            (Opts::rooms(["s2"]), vec!["s1", "s2"]),
            (Opts::rooms(["vip", "s2", "s1"]), vec!["s1", "s2", "s3"]),
            (Opts::rooms(["vip"]).except(["s2"]), vec!["s3"]),
            (Opts::default().except(["vip"]), vec!["s2"]),
            (Opts::default(), vec!["s1", "s2", "s3"]),
        ];
        for (opts, expected) in cases {
            let selected = a.select(&opts);
            assert_eq!(selected, borrowed(&opts), "{opts:?}");
            assert_eq!(sorted(selected), expected, "{opts:?}");
        }
    }

    #[test]
    fn joining_another_sockets_room_before_it_connects_creates_it_once() {
        let mut a = InMemoryAdapter::new();
        own(&mut a, "s2");
        assert_eq!(
            a.add_all("s2", &["s1".into(), "vip".into()]),
            [
                RoomChange::Created("s1".into()),
                RoomChange::Created("vip".into())
            ]
        );
        assert!(own(&mut a, "s1").is_empty(), "s1's room existed");
        let mut changes = a.del_all("s2");
        changes.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            changes,
            [
                RoomChange::Deleted("s2".into()),
                RoomChange::Deleted("vip".into())
            ],
            "s1's room keeps its owner"
        );
        assert_eq!(a.all_rooms(), ["s1"]);
    }
}
