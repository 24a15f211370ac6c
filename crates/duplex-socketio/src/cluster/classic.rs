//! The classic Redis adapter's messages (`createAdapter`, PUBLISH /
//! SUBSCRIBE / PSUBSCRIBE), as `@socket.io/redis-adapter` 8.3.0 writes
//! and reads them.
//!
//! Broadcasts go to `<key>#<nsp>#` (or `<key>#<nsp>#<room>#` for exactly
//! one room) as msgpack `[uid, packet, opts]`. Requests go to
//! `<key>-request#<nsp>#` as JSON (BROADCAST as msgpack), responses to
//! `<key>-response#<nsp>#` or `<key>-response#<nsp>#<requester uid>#`.

use super::message::{
    FetchedSocket, Format, Opts, WirePacket, bool_field, opt_string_field, pair, read_any, room,
    rooms_field, s, string_field, strings, uint_field,
};
use super::{Error, msgpack};
use crate::Value;

/// The default key prefix (`key` option).
pub const DEFAULT_KEY: &str = "socket.io";

/// The channels of one namespace in classic mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicChannels {
    /// `<key>#<nsp>#`: broadcasts to several rooms or to all; pattern
    /// `<key>#<nsp>#*` is subscribed.
    pub broadcast: String,
    /// `<key>-request#<nsp>#`: requests; its NUMSUB is the server count.
    pub request: String,
    /// `<key>-response#<nsp>#`: responses to every node.
    pub response: String,
    /// `<key>-response#<nsp>#<uid>#`: responses to this node only.
    pub specific_response: String,
}

impl ClassicChannels {
    /// The channels of namespace `nsp` for the node `uid`, under `key`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Self {
        let response = format!("{key}-response#{nsp}#");
        Self {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            specific_response: format!("{response}{uid}#"),
            response,
        }
    }

    /// The pattern to PSUBSCRIBE to for broadcasts.
    pub fn broadcast_pattern(&self) -> String {
        format!("{}*", self.broadcast)
    }

    /// The channel a broadcast to `opts` is published on: the room's own
    /// channel for exactly one room, else the namespace's.
    pub fn broadcast_channel(&self, opts: &Opts) -> String {
        match opts.rooms.as_slice() {
            [only] => format!("{}{only}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }

    /// The room a broadcast channel names: `Some("")` for the namespace
    /// channel, `None` for a channel of another namespace or key.
    pub fn room_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.broadcast.as_str())
            .map(|rest| rest.strip_suffix('#').unwrap_or(rest))
    }

    /// Every channel to SUBSCRIBE to (the broadcast pattern aside).
    pub fn subscriptions(&self) -> [&str; 3] {
        [&self.request, &self.response, &self.specific_response]
    }
}

/// A broadcast without acknowledgements: msgpack `[uid, packet, opts]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicBroadcast {
    /// The sending node.
    pub uid: String,
    /// The packet, `{type: 2, data, nsp}`.
    pub packet: WirePacket,
    /// Which sockets receive it.
    pub opts: Opts,
}

impl ClassicBroadcast {
    /// The msgpack bytes, as notepack writes them.
    pub fn encode(&self) -> Vec<u8> {
        msgpack::encode(&Value::Array(vec![
            Value::String(self.uid.clone()),
            self.packet.to_value(),
            self.opts.to_value(true),
        ]))
    }

    /// Decodes a message received on a broadcast channel.
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        let value = read_any(payload)?;
        let items = value.as_array().ok_or(Error::Shape("broadcast"))?;
        let (uid, packet, opts) = match items {
            [uid, packet, opts, ..] => (uid, packet, opts),
            _ => return Err(Error::Shape("broadcast")),
        };
        Ok(Self {
            uid: uid.as_str().ok_or(Error::Field("uid"))?.to_owned(),
            packet: WirePacket::from_value(packet)?,
            opts: Opts::from_value(opts)?,
        })
    }
}

duplex_core::id_enum! {
    /// The request types of the classic adapter.
    pub enum RequestType {
        /// 0: the ids of the sockets in some rooms.
        Sockets = 0,
        /// 1: every room.
        AllRooms = 1,
        /// 2: make sockets join rooms.
        RemoteJoin = 2,
        /// 3: make sockets leave rooms.
        RemoteLeave = 3,
        /// 4: disconnect sockets.
        RemoteDisconnect = 4,
        /// 5: fetch sockets.
        RemoteFetch = 5,
        /// 6: an event between servers.
        ServerSideEmit = 6,
        /// 7: a broadcast expecting acknowledgements.
        Broadcast = 7,
        /// 8: how many clients a broadcast with acks reached on one node.
        BroadcastClientCount = 8,
        /// 9: one client's acknowledgement.
        BroadcastAck = 9,
    }
}

/// A message on the request channel.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassicRequest {
    /// `{uid, requestId, type: 0, rooms}`.
    Sockets {
        /// The requesting node.
        uid: String,
        /// Its request id.
        request_id: String,
        /// The rooms whose members are asked for (all when empty).
        rooms: Vec<String>,
    },
    /// `{uid, requestId, type: 1}`.
    AllRooms {
        /// The requesting node.
        uid: String,
        /// Its request id.
        request_id: String,
    },
    /// `{uid, type: 2|3, opts: {rooms, except}, rooms}`: the selected
    /// sockets join (or leave) `rooms`; no answer.
    Rooms {
        /// The requesting node.
        uid: String,
        /// Join or leave.
        leave: bool,
        /// Which sockets.
        opts: Opts,
        /// The rooms to join or leave.
        rooms: Vec<String>,
    },
    /// The legacy `{uid, requestId, type: 2|3, sid, room}`: the node that
    /// has socket `sid` joins (or leaves) `room` and answers `{requestId}`.
    SocketRoom {
        /// The requesting node.
        uid: String,
        /// Its request id.
        request_id: String,
        /// Join or leave.
        leave: bool,
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// `{uid, type: 4, opts: {rooms, except}, close}`: no answer.
    Disconnect {
        /// The requesting node.
        uid: String,
        /// Which sockets.
        opts: Opts,
        /// Whether the whole connection closes.
        close: bool,
    },
    /// The legacy `{uid, requestId, type: 4, sid, close}`, answered with
    /// `{requestId}`.
    DisconnectSocket {
        /// The requesting node.
        uid: String,
        /// Its request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// Whether the whole connection closes.
        close: bool,
    },
    /// `{uid, requestId, type: 5, opts: {rooms, except}}`.
    Fetch {
        /// The requesting node.
        uid: String,
        /// Its request id.
        request_id: String,
        /// Which sockets.
        opts: Opts,
    },
    /// `{uid, [requestId,] type: 6, data: [event, ...args]}`; a request id
    /// asks for one answer per other node.
    ServerSideEmit {
        /// The requesting node.
        uid: String,
        /// Present when an acknowledgement is wanted.
        request_id: Option<String>,
        /// The event name followed by its arguments.
        data: Vec<Value>,
    },
    /// msgpack `{uid, requestId, type: 7, packet, opts}`.
    Broadcast {
        /// The requesting node.
        uid: String,
        /// Its request id.
        request_id: String,
        /// The packet.
        packet: WirePacket,
        /// Which sockets, with flags (`timeout`).
        opts: Opts,
    },
}

fn ty(t: RequestType) -> Value {
    Value::Number(t.id().into())
}

/// The request type numbered `n`.
fn request_type(n: u64) -> Result<RequestType, Error> {
    u8::try_from(n)
        .ok()
        .and_then(RequestType::from_id)
        .ok_or(Error::UnknownType(n))
}

impl ClassicRequest {
    /// The requesting node's uid.
    pub fn uid(&self) -> &str {
        match self {
            ClassicRequest::Sockets { uid, .. }
            | ClassicRequest::AllRooms { uid, .. }
            | ClassicRequest::Rooms { uid, .. }
            | ClassicRequest::SocketRoom { uid, .. }
            | ClassicRequest::Disconnect { uid, .. }
            | ClassicRequest::DisconnectSocket { uid, .. }
            | ClassicRequest::Fetch { uid, .. }
            | ClassicRequest::ServerSideEmit { uid, .. }
            | ClassicRequest::Broadcast { uid, .. } => uid,
        }
    }

    /// The format the Node adapter publishes this request in.
    pub fn format(&self) -> Format {
        match self {
            ClassicRequest::Broadcast { .. } => Format::Msgpack,
            _ => Format::Json,
        }
    }

    /// The bytes, in the Node adapter's format and key order.
    pub fn encode(&self) -> Vec<u8> {
        self.format().write(&self.to_value())
    }

    /// The request as a value, keys in the Node adapter's order.
    pub fn to_value(&self) -> Value {
        Value::Object(match self {
            ClassicRequest::Sockets {
                uid,
                request_id,
                rooms,
            } => vec![
                pair("uid", s(uid)),
                pair("requestId", s(request_id)),
                pair("type", ty(RequestType::Sockets)),
                pair("rooms", strings(rooms)),
            ],
            ClassicRequest::AllRooms { uid, request_id } => vec![
                pair("uid", s(uid)),
                pair("requestId", s(request_id)),
                pair("type", ty(RequestType::AllRooms)),
            ],
            ClassicRequest::Rooms {
                uid,
                leave,
                opts,
                rooms,
            } => vec![
                pair("uid", s(uid)),
                pair("type", ty(join_or_leave(*leave))),
                pair("opts", opts.to_value(false)),
                pair("rooms", strings(rooms)),
            ],
            ClassicRequest::SocketRoom {
                uid,
                request_id,
                leave,
                sid,
                room,
            } => vec![
                pair("uid", s(uid)),
                pair("requestId", s(request_id)),
                pair("type", ty(join_or_leave(*leave))),
                pair("sid", s(sid)),
                pair("room", s(room)),
            ],
            ClassicRequest::Disconnect { uid, opts, close } => vec![
                pair("uid", s(uid)),
                pair("type", ty(RequestType::RemoteDisconnect)),
                pair("opts", opts.to_value(false)),
                pair("close", Value::Bool(*close)),
            ],
            ClassicRequest::DisconnectSocket {
                uid,
                request_id,
                sid,
                close,
            } => vec![
                pair("uid", s(uid)),
                pair("requestId", s(request_id)),
                pair("type", ty(RequestType::RemoteDisconnect)),
                pair("sid", s(sid)),
                pair("close", Value::Bool(*close)),
            ],
            ClassicRequest::Fetch {
                uid,
                request_id,
                opts,
            } => vec![
                pair("uid", s(uid)),
                pair("requestId", s(request_id)),
                pair("type", ty(RequestType::RemoteFetch)),
                pair("opts", opts.to_value(false)),
            ],
            ClassicRequest::ServerSideEmit {
                uid,
                request_id,
                data,
            } => {
                let mut v = vec![pair("uid", s(uid))];
                if let Some(id) = request_id {
                    v.push(pair("requestId", s(id)));
                }
                v.push(pair("type", ty(RequestType::ServerSideEmit)));
                v.push(pair("data", Value::Array(data.clone())));
                v
            }
            ClassicRequest::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => vec![
                pair("uid", s(uid)),
                pair("requestId", s(request_id)),
                pair("type", ty(RequestType::Broadcast)),
                pair("packet", packet.to_value()),
                pair("opts", opts.to_value(true)),
            ],
        })
    }

    /// Decodes a message of the request channel (JSON when it starts
    /// with `{`, else msgpack).
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        Self::from_value(&read_any(payload)?)
    }

    /// Reads a request out of a decoded value.
    pub fn from_value(v: &Value) -> Result<Self, Error> {
        // @socket.io/redis-emitter sends its REMOTE_JOIN, REMOTE_LEAVE and
        // REMOTE_DISCONNECT without a uid; Node's `request.uid ===
        // this.uid` never matches then, and "" is no node's uid either.
        let uid = || Ok::<_, Error>(opt_string_field(v, "uid")?.unwrap_or_default());
        let request_id = || request_id_field(v);
        let has_opts = !matches!(v.get("opts"), None | Some(Value::Null));
        let t = request_type(uint_field(v, "type")?)?;
        Ok(match t {
            RequestType::Sockets => ClassicRequest::Sockets {
                uid: uid()?,
                request_id: request_id()?,
                rooms: rooms_field(v, "rooms")?,
            },
            RequestType::AllRooms => ClassicRequest::AllRooms {
                uid: uid()?,
                request_id: request_id()?,
            },
            RequestType::RemoteJoin | RequestType::RemoteLeave if has_opts => {
                ClassicRequest::Rooms {
                    uid: uid()?,
                    leave: t == RequestType::RemoteLeave,
                    opts: Opts::from_value(v.get("opts").unwrap_or(&Value::Null))?,
                    rooms: rooms_field(v, "rooms")?,
                }
            }
            RequestType::RemoteJoin | RequestType::RemoteLeave => ClassicRequest::SocketRoom {
                uid: uid()?,
                request_id: request_id()?,
                leave: t == RequestType::RemoteLeave,
                sid: string_field(v, "sid")?,
                room: v.get("room").and_then(room).ok_or(Error::Field("room"))?,
            },
            RequestType::RemoteDisconnect if has_opts => ClassicRequest::Disconnect {
                uid: uid()?,
                opts: Opts::from_value(v.get("opts").unwrap_or(&Value::Null))?,
                close: bool_field(v, "close"),
            },
            RequestType::RemoteDisconnect => ClassicRequest::DisconnectSocket {
                uid: uid()?,
                request_id: request_id()?,
                sid: string_field(v, "sid")?,
                close: bool_field(v, "close"),
            },
            RequestType::RemoteFetch => ClassicRequest::Fetch {
                uid: uid()?,
                request_id: request_id()?,
                opts: Opts::from_value(v.get("opts").ok_or(Error::Field("opts"))?)?,
            },
            RequestType::ServerSideEmit => ClassicRequest::ServerSideEmit {
                uid: uid()?,
                request_id: match v.get("requestId") {
                    None => None,
                    Some(_) => Some(request_id()?),
                },
                data: match v.get("data") {
                    Some(Value::Array(items)) => items.clone(),
                    _ => return Err(Error::Field("data")),
                },
            },
            RequestType::Broadcast => ClassicRequest::Broadcast {
                uid: uid()?,
                request_id: request_id()?,
                packet: WirePacket::from_value(v.get("packet").ok_or(Error::Field("packet"))?)?,
                opts: Opts::from_value(v.get("opts").ok_or(Error::Field("opts"))?)?,
            },
            // Responses, on the response channel only.
            RequestType::BroadcastClientCount | RequestType::BroadcastAck => {
                return Err(Error::UnknownType(t.id().into()));
            }
        })
    }
}

fn join_or_leave(leave: bool) -> RequestType {
    if leave {
        RequestType::RemoteLeave
    } else {
        RequestType::RemoteJoin
    }
}

/// Request ids are strings from uid2; numbers are read as their text.
fn request_id_field(v: &Value) -> Result<String, Error> {
    match v.get("requestId") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(Error::Field("requestId")),
    }
}

/// A message on a response channel.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassicResponse {
    /// `{requestId, sockets: [ids]}`: the answer to SOCKETS. An empty list
    /// decodes as this variant; it is also an empty answer to a fetch.
    Sockets {
        /// The request answered.
        request_id: String,
        /// Socket ids.
        sockets: Vec<String>,
    },
    /// `{requestId, rooms}`: the answer to ALL_ROOMS.
    AllRooms {
        /// The request answered.
        request_id: String,
        /// Every room of the answering node.
        rooms: Vec<String>,
    },
    /// `{requestId}`: a legacy sid-form join, leave or disconnect done.
    Done {
        /// The request answered.
        request_id: String,
    },
    /// `{requestId, sockets: [{id, handshake, rooms, data}]}`: the answer
    /// to REMOTE_FETCH.
    Fetch {
        /// The request answered.
        request_id: String,
        /// The answering node's selected sockets.
        sockets: Vec<FetchedSocket>,
    },
    /// `{type: 6, requestId, data}`: one node's acknowledgement of a
    /// server-side emit.
    ServerSideEmit {
        /// The request answered.
        request_id: String,
        /// The argument its listener passed to the callback.
        data: Value,
    },
    /// `{type: 8, requestId, clientCount}`.
    BroadcastClientCount {
        /// The request answered.
        request_id: String,
        /// How many clients the broadcast reached on that node.
        client_count: u64,
    },
    /// msgpack `{type: 9, requestId, packet}`: one client's ack.
    BroadcastAck {
        /// The request answered.
        request_id: String,
        /// The first argument of the client's ack.
        packet: Value,
    },
}

impl ClassicResponse {
    /// The request this answers.
    pub fn request_id(&self) -> &str {
        match self {
            ClassicResponse::Sockets { request_id, .. }
            | ClassicResponse::AllRooms { request_id, .. }
            | ClassicResponse::Done { request_id }
            | ClassicResponse::Fetch { request_id, .. }
            | ClassicResponse::ServerSideEmit { request_id, .. }
            | ClassicResponse::BroadcastClientCount { request_id, .. }
            | ClassicResponse::BroadcastAck { request_id, .. } => request_id,
        }
    }

    /// The format the Node adapter publishes this response in.
    pub fn format(&self) -> Format {
        match self {
            ClassicResponse::BroadcastAck { .. } => Format::Msgpack,
            _ => Format::Json,
        }
    }

    /// The bytes, in the Node adapter's format and key order.
    pub fn encode(&self) -> Vec<u8> {
        self.format().write(&self.to_value())
    }

    /// The response as a value, keys in the Node adapter's order.
    pub fn to_value(&self) -> Value {
        let rid = |id: &str| pair("requestId", s(id));
        Value::Object(match self {
            ClassicResponse::Sockets {
                request_id,
                sockets,
            } => vec![rid(request_id), pair("sockets", strings(sockets))],
            ClassicResponse::AllRooms { request_id, rooms } => {
                vec![rid(request_id), pair("rooms", strings(rooms))]
            }
            ClassicResponse::Done { request_id } => vec![rid(request_id)],
            ClassicResponse::Fetch {
                request_id,
                sockets,
            } => vec![
                rid(request_id),
                pair(
                    "sockets",
                    Value::Array(sockets.iter().map(FetchedSocket::to_value).collect()),
                ),
            ],
            ClassicResponse::ServerSideEmit { request_id, data } => vec![
                pair("type", ty(RequestType::ServerSideEmit)),
                rid(request_id),
                pair("data", data.clone()),
            ],
            ClassicResponse::BroadcastClientCount {
                request_id,
                client_count,
            } => vec![
                pair("type", ty(RequestType::BroadcastClientCount)),
                rid(request_id),
                pair("clientCount", Value::Number((*client_count).into())),
            ],
            ClassicResponse::BroadcastAck { request_id, packet } => vec![
                pair("type", ty(RequestType::BroadcastAck)),
                rid(request_id),
                pair("packet", packet.clone()),
            ],
        })
    }

    /// Decodes a message of a response channel.
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        Self::from_value(&read_any(payload)?)
    }

    /// Reads a response out of a decoded value.
    pub fn from_value(v: &Value) -> Result<Self, Error> {
        let request_id = request_id_field(v)?;
        let ty = match v.get("type") {
            None | Some(Value::Null) => None,
            Some(_) => Some(request_type(uint_field(v, "type")?)?),
        };
        Ok(match ty {
            Some(RequestType::ServerSideEmit) => ClassicResponse::ServerSideEmit {
                request_id,
                data: v.get("data").cloned().unwrap_or(Value::Null),
            },
            Some(RequestType::BroadcastClientCount) => ClassicResponse::BroadcastClientCount {
                request_id,
                client_count: uint_field(v, "clientCount")?,
            },
            Some(RequestType::BroadcastAck) => ClassicResponse::BroadcastAck {
                request_id,
                packet: v.get("packet").cloned().unwrap_or(Value::Null),
            },
            Some(other) => return Err(Error::UnknownType(other.id().into())),
            None => match (v.get("sockets"), v.get("rooms")) {
                (Some(Value::Array(items)), _) if items.iter().all(|i| i.as_str().is_some()) => {
                    ClassicResponse::Sockets {
                        request_id,
                        sockets: rooms_field(v, "sockets")?,
                    }
                }
                (Some(Value::Array(items)), _) => ClassicResponse::Fetch {
                    request_id,
                    sockets: items
                        .iter()
                        .map(FetchedSocket::from_value)
                        .collect::<Result<_, _>>()?,
                },
                (Some(_), _) => return Err(Error::Field("sockets")),
                (None, Some(_)) => ClassicResponse::AllRooms {
                    request_id,
                    rooms: rooms_field(v, "rooms")?,
                },
                (None, None) => ClassicResponse::Done { request_id },
            },
        })
    }
}

/// Decodes JSON or msgpack on either side into a plain value, as the
/// Node adapter's `onrequest`/`onresponse` do before looking at it.
pub fn decode_value(payload: &[u8]) -> Result<Value, Error> {
    read_any(payload)
}
