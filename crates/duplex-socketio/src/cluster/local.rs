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
    rooms: HashMap<String, HashSet<String>>,
    sids: HashMap<String, HashSet<String>>,
    recovery: Option<Box<SessionStore>>,
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

    fn add_rooms(&mut self, sid: &str, rooms: &[String]) -> Vec<RoomChange> {
        let mut changes = Vec::new();
        let own = self.sids.entry(sid.to_owned()).or_default();
        for room in rooms {
            own.insert(room.clone());
        }
        for room in rooms {
            let members = self.rooms.entry(room.clone()).or_insert_with(|| {
                changes.push(RoomChange::Created(room.clone()));
                HashSet::new()
            });
            members.insert(sid.to_owned());
        }
        changes
    }

    fn del_inner(&mut self, room: &str, sid: &str, changes: &mut Vec<RoomChange>) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(sid);
            if members.is_empty() {
                self.rooms.remove(room);
                changes.push(RoomChange::Deleted(room.to_owned()));
            }
        }
    }

    fn except_sids(&self, except: &[String]) -> HashSet<&str> {
        except
            .iter()
            .filter_map(|room| self.rooms.get(room))
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

impl LocalAdapter for InMemoryAdapter {
    fn add_all(&mut self, sid: &str, rooms: &[String]) -> Vec<RoomChange> {
        if let Some(store) = self.recovery.as_deref_mut() {
            // Only real changes: a room joined twice was joined once.
            let own = self.sids.get(sid);
            let new: Vec<String> = rooms
                .iter()
                .filter(|r| !own.is_some_and(|own| own.contains(*r)))
                .cloned()
                .collect();
            store.joined(sid, &new);
        }
        self.add_rooms(sid, rooms)
    }

    fn del(&mut self, sid: &str, room: &str) -> Vec<RoomChange> {
        if let Some(store) = self.recovery.as_deref_mut() {
            if self.sids.get(sid).is_some_and(|own| own.contains(room)) {
                store.left(sid, room);
            }
        }
        let mut changes = Vec::new();
        if let Some(own) = self.sids.get_mut(sid) {
            own.remove(room);
        }
        self.del_inner(room, sid, &mut changes);
        changes
    }

    fn del_all(&mut self, sid: &str) -> Vec<RoomChange> {
        if let Some(store) = self.recovery.as_deref_mut() {
            store.forget(sid);
        }
        let mut changes = Vec::new();
        if let Some(own) = self.sids.remove(sid) {
            for room in own {
                self.del_inner(&room, sid, &mut changes);
            }
        }
        changes
    }

    fn select(&self, opts: &Opts) -> Vec<String> {
        let except = self.except_sids(&opts.except);
        if opts.rooms.is_empty() {
            return self
                .sids
                .keys()
                .filter(|sid| !except.contains(sid.as_str()))
                .cloned()
                .collect();
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for room in &opts.rooms {
            for sid in self.rooms.get(room).into_iter().flatten() {
                if !except.contains(sid.as_str()) && seen.insert(sid) {
                    out.push(sid.clone());
                }
            }
        }
        out
    }

    fn rooms_of(&self, sid: &str) -> Vec<String> {
        self.sids
            .get(sid)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    fn has_socket(&self, sid: &str) -> bool {
        self.sids.contains_key(sid)
    }

    fn all_rooms(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
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
