//! The sharded Redis adapter's messages (`createShardedAdapter`,
//! SPUBLISH / SSUBSCRIBE), which are socket.io-adapter's cluster messages
//! `{type, data, uid, nsp}`, and its channels.

use super::Error;
use super::message::{
    FetchedSocket, Format, Opts, WirePacket, bool_field, pair, read_any, rooms_field, s,
    string_field, strings, uint_field,
};
use crate::Value;

/// The uid `@socket.io/redis-emitter` publishes under: not a node, so
/// never counted.
pub const EMITTER_UID: &str = "emitter";

/// The default channel prefix (`channelPrefix` option).
pub const DEFAULT_CHANNEL_PREFIX: &str = "socket.io";

/// How many channels a namespace uses (`subscriptionMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// Two channels per namespace.
    Static,
    /// Two plus one per public room (a room that is not a socket id);
    /// the Node default.
    #[default]
    Dynamic,
    /// Two plus one per room, socket-id rooms included.
    DynamicPrivate,
}

/// The channels of one namespace in sharded mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardedChannels {
    /// `<prefix>#<nsp>#`: every message but responses and single-room
    /// broadcasts; its SHARDNUMSUB is the server count.
    pub main: String,
    /// `<prefix>#<nsp>#<uid>#`: responses to this node.
    pub response: String,
    /// The subscription mode.
    pub mode: SubscriptionMode,
}

/// A socket id is 20 characters long: the dynamic mode keeps such rooms
/// on the main channel (`looksLikeASocketId`, which counts UTF-16 units).
pub fn looks_like_a_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

impl ShardedChannels {
    /// The channels of `nsp` for the node `uid`.
    pub fn new(prefix: &str, nsp: &str, uid: &str, mode: SubscriptionMode) -> Self {
        let main = format!("{prefix}#{nsp}#");
        Self {
            response: format!("{main}{uid}#"),
            main,
            mode,
        }
    }

    /// The channel of room `room`.
    pub fn room_channel(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// The channel a requester with uid `requester` reads its responses on.
    pub fn response_channel_of(&self, requester: &str) -> String {
        format!("{}{requester}#", self.main)
    }

    /// Whether a room created or deleted locally gets its own channel
    /// (SSUBSCRIBE on creation, SUNSUBSCRIBE on deletion). `is_socket_id`
    /// says whether the room is one of the namespace's socket ids.
    pub fn room_has_channel(&self, is_socket_id: bool) -> bool {
        match self.mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !is_socket_id,
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// The channel `message` is published on: a room's own channel for a
    /// broadcast without ack to exactly one room (not socket-id-like in
    /// dynamic mode), else the main one. Responses go to
    /// [`Self::response_channel_of`] the requester instead.
    pub fn channel_for(&self, message: &ClusterMessage) -> String {
        if let ClusterBody::Broadcast {
            opts,
            request_id: None,
            ..
        } = &message.body
        {
            if let [only] = opts.rooms.as_slice() {
                let dynamic = match self.mode {
                    SubscriptionMode::Static => false,
                    SubscriptionMode::Dynamic => !looks_like_a_socket_id(only),
                    SubscriptionMode::DynamicPrivate => true,
                };
                if dynamic {
                    return self.room_channel(only);
                }
            }
        }
        self.main.clone()
    }
}

duplex_core::id_enum! {
    /// The cluster message types (socket.io-adapter `MessageType`).
    pub enum MessageType {
        /// 1: a node starts; the others answer with a heartbeat.
        InitialHeartbeat = 1,
        /// 2: a node is alive.
        Heartbeat = 2,
        /// 3: a broadcast, with a request id when acks are wanted.
        Broadcast = 3,
        /// 4: sockets join rooms.
        SocketsJoin = 4,
        /// 5: sockets leave rooms.
        SocketsLeave = 5,
        /// 6: sockets are disconnected.
        DisconnectSockets = 6,
        /// 7: fetch sockets.
        FetchSockets = 7,
        /// 8: a node's answer to 7.
        FetchSocketsResponse = 8,
        /// 9: an event between servers.
        ServerSideEmit = 9,
        /// 10: a node's answer to 9.
        ServerSideEmitResponse = 10,
        /// 11: how many clients a broadcast with acks reached on a node.
        BroadcastClientCount = 11,
        /// 12: one client's ack.
        BroadcastAck = 12,
        /// 13: a node leaves.
        AdapterClose = 13,
    }
}

/// A cluster message: `{type, data, uid, nsp}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterMessage {
    /// The sending node (or `"emitter"`).
    pub uid: String,
    /// The namespace.
    pub nsp: String,
    /// The type and its data.
    pub body: ClusterBody,
}

/// The type of a cluster message and its `data`.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterBody {
    /// 1, no data.
    InitialHeartbeat,
    /// 2, no data.
    Heartbeat,
    /// 3 `{packet, [requestId,] opts}`.
    Broadcast {
        /// The packet.
        packet: WirePacket,
        /// Present when client acks are wanted.
        request_id: Option<String>,
        /// Which sockets, with flags.
        opts: Opts,
    },
    /// 4 `{opts, rooms}` (or 5 with `leave`).
    SocketsRooms {
        /// Leave instead of join.
        leave: bool,
        /// Which sockets.
        opts: Opts,
        /// The rooms.
        rooms: Vec<String>,
    },
    /// 6 `{opts, close}`.
    DisconnectSockets {
        /// Which sockets.
        opts: Opts,
        /// Whether whole connections close.
        close: bool,
    },
    /// 7 `{opts, requestId}`.
    FetchSockets {
        /// Which sockets.
        opts: Opts,
        /// The request id.
        request_id: String,
    },
    /// 8 `{requestId, sockets}`.
    FetchSocketsResponse {
        /// The request answered.
        request_id: String,
        /// The answering node's sockets.
        sockets: Vec<FetchedSocket>,
    },
    /// 9 `{[requestId,] packet}`: `packet` is `[event, ...args]`.
    ServerSideEmit {
        /// Present when acks are wanted.
        request_id: Option<String>,
        /// The event name and its arguments.
        packet: Vec<Value>,
    },
    /// 10 `{requestId, packet}`.
    ServerSideEmitResponse {
        /// The request answered.
        request_id: String,
        /// The argument the listener passed to its callback.
        packet: Value,
    },
    /// 11 `{requestId, clientCount}`.
    BroadcastClientCount {
        /// The request answered.
        request_id: String,
        /// How many clients the broadcast reached on that node.
        client_count: u64,
    },
    /// 12 `{requestId, packet}`.
    BroadcastAck {
        /// The request answered.
        request_id: String,
        /// The first argument of the client's ack.
        packet: Value,
    },
    /// 13, no data.
    AdapterClose,
}

impl ClusterBody {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            ClusterBody::InitialHeartbeat => MessageType::InitialHeartbeat,
            ClusterBody::Heartbeat => MessageType::Heartbeat,
            ClusterBody::Broadcast { .. } => MessageType::Broadcast,
            ClusterBody::SocketsRooms { leave: false, .. } => MessageType::SocketsJoin,
            ClusterBody::SocketsRooms { leave: true, .. } => MessageType::SocketsLeave,
            ClusterBody::DisconnectSockets { .. } => MessageType::DisconnectSockets,
            ClusterBody::FetchSockets { .. } => MessageType::FetchSockets,
            ClusterBody::FetchSocketsResponse { .. } => MessageType::FetchSocketsResponse,
            ClusterBody::ServerSideEmit { .. } => MessageType::ServerSideEmit,
            ClusterBody::ServerSideEmitResponse { .. } => MessageType::ServerSideEmitResponse,
            ClusterBody::BroadcastClientCount { .. } => MessageType::BroadcastClientCount,
            ClusterBody::BroadcastAck { .. } => MessageType::BroadcastAck,
            ClusterBody::AdapterClose => MessageType::AdapterClose,
        }
    }

    /// Whether this is a response, published to the requester's own
    /// channel (8, 10, 11, 12).
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            ClusterBody::FetchSocketsResponse { .. }
                | ClusterBody::ServerSideEmitResponse { .. }
                | ClusterBody::BroadcastClientCount { .. }
                | ClusterBody::BroadcastAck { .. }
        )
    }

    /// The request id of a response, or of a request that wants one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClusterBody::Broadcast { request_id, .. }
            | ClusterBody::ServerSideEmit { request_id, .. } => request_id.as_deref(),
            ClusterBody::FetchSockets { request_id, .. }
            | ClusterBody::FetchSocketsResponse { request_id, .. }
            | ClusterBody::ServerSideEmitResponse { request_id, .. }
            | ClusterBody::BroadcastClientCount { request_id, .. }
            | ClusterBody::BroadcastAck { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    pub(crate) fn data(&self) -> Option<Value> {
        Some(Value::Object(match self {
            ClusterBody::InitialHeartbeat | ClusterBody::Heartbeat | ClusterBody::AdapterClose => {
                return None;
            }
            ClusterBody::Broadcast {
                packet,
                request_id,
                opts,
            } => {
                let mut v = vec![pair("packet", packet.to_value())];
                if let Some(id) = request_id {
                    v.push(pair("requestId", s(id)));
                }
                v.push(pair("opts", opts.to_value(true)));
                v
            }
            ClusterBody::SocketsRooms { opts, rooms, .. } => vec![
                pair("opts", opts.to_value(true)),
                pair("rooms", strings(rooms)),
            ],
            ClusterBody::DisconnectSockets { opts, close } => vec![
                pair("opts", opts.to_value(true)),
                pair("close", Value::Bool(*close)),
            ],
            ClusterBody::FetchSockets { opts, request_id } => vec![
                pair("opts", opts.to_value(true)),
                pair("requestId", s(request_id)),
            ],
            ClusterBody::FetchSocketsResponse {
                request_id,
                sockets,
            } => vec![
                pair("requestId", s(request_id)),
                pair(
                    "sockets",
                    Value::Array(sockets.iter().map(FetchedSocket::to_value).collect()),
                ),
            ],
            ClusterBody::ServerSideEmit { request_id, packet } => {
                let mut v = Vec::new();
                if let Some(id) = request_id {
                    v.push(pair("requestId", s(id)));
                }
                v.push(pair("packet", Value::Array(packet.clone())));
                v
            }
            ClusterBody::ServerSideEmitResponse { request_id, packet }
            | ClusterBody::BroadcastAck { request_id, packet } => vec![
                pair("requestId", s(request_id)),
                pair("packet", packet.clone()),
            ],
            ClusterBody::BroadcastClientCount {
                request_id,
                client_count,
            } => vec![
                pair("requestId", s(request_id)),
                pair("clientCount", Value::Number((*client_count).into())),
            ],
        }))
    }

    pub(crate) fn from_data(ty: u64, data: &Value) -> Result<Self, Error> {
        let opts = || Opts::from_value(data.get("opts").ok_or(Error::Field("opts"))?);
        let rid = || string_field(data, "requestId");
        let opt_rid = || match data.get("requestId") {
            None => Ok(None),
            Some(_) => rid().map(Some),
        };
        let any = |k: &str| data.get(k).cloned().unwrap_or(Value::Null);
        let Some(t) = u8::try_from(ty).ok().and_then(MessageType::from_id) else {
            return Err(Error::UnknownType(ty));
        };
        Ok(match t {
            MessageType::InitialHeartbeat => ClusterBody::InitialHeartbeat,
            MessageType::Heartbeat => ClusterBody::Heartbeat,
            MessageType::AdapterClose => ClusterBody::AdapterClose,
            MessageType::Broadcast => ClusterBody::Broadcast {
                packet: WirePacket::from_value(data.get("packet").ok_or(Error::Field("packet"))?)?,
                request_id: opt_rid()?,
                opts: opts()?,
            },
            MessageType::SocketsJoin | MessageType::SocketsLeave => ClusterBody::SocketsRooms {
                leave: t == MessageType::SocketsLeave,
                opts: opts()?,
                rooms: rooms_field(data, "rooms")?,
            },
            MessageType::DisconnectSockets => ClusterBody::DisconnectSockets {
                opts: opts()?,
                close: bool_field(data, "close"),
            },
            MessageType::FetchSockets => ClusterBody::FetchSockets {
                opts: opts()?,
                request_id: rid()?,
            },
            MessageType::FetchSocketsResponse => ClusterBody::FetchSocketsResponse {
                request_id: rid()?,
                sockets: match data.get("sockets") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(FetchedSocket::from_value)
                        .collect::<Result<_, _>>()?,
                    _ => return Err(Error::Field("sockets")),
                },
            },
            MessageType::ServerSideEmit => ClusterBody::ServerSideEmit {
                request_id: opt_rid()?,
                packet: match data.get("packet") {
                    Some(Value::Array(items)) => items.clone(),
                    _ => return Err(Error::Field("packet")),
                },
            },
            MessageType::ServerSideEmitResponse => ClusterBody::ServerSideEmitResponse {
                request_id: rid()?,
                packet: any("packet"),
            },
            MessageType::BroadcastClientCount => ClusterBody::BroadcastClientCount {
                request_id: rid()?,
                client_count: uint_field(data, "clientCount")?,
            },
            MessageType::BroadcastAck => ClusterBody::BroadcastAck {
                request_id: rid()?,
                packet: any("packet"),
            },
        })
    }
}

impl ClusterMessage {
    /// The format the sharded adapter publishes this message in: msgpack
    /// only when a type that may carry binary (3, 8, 9, 10, 12) does.
    pub fn format(&self) -> Format {
        let may_contain_binary = matches!(
            self.body.message_type(),
            MessageType::Broadcast
                | MessageType::BroadcastAck
                | MessageType::FetchSocketsResponse
                | MessageType::ServerSideEmit
                | MessageType::ServerSideEmitResponse
        );
        match self.body.data() {
            Some(data) if may_contain_binary && data.has_binary() => Format::Msgpack,
            _ => Format::Json,
        }
    }

    /// The message as a value, keys in the Node order: `type`, `data`
    /// (when there is one), then `uid` and `nsp`, which the adapter adds
    /// just before publishing.
    pub fn to_value(&self) -> Value {
        let mut v = vec![pair(
            "type",
            Value::Number(self.body.message_type().id().into()),
        )];
        if let Some(data) = self.body.data() {
            v.push(pair("data", data));
        }
        v.push(pair("uid", s(&self.uid)));
        v.push(pair("nsp", s(&self.nsp)));
        Value::Object(v)
    }

    /// The bytes, as the sharded adapter publishes them.
    pub fn encode(&self) -> Vec<u8> {
        self.format().write(&self.to_value())
    }

    /// Decodes a message (JSON when it starts with `{`, else msgpack).
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        Self::from_value(&read_any(payload)?)
    }

    /// Reads a message out of a decoded value.
    pub fn from_value(v: &Value) -> Result<Self, Error> {
        let ty = uint_field(v, "type")?;
        let data = v.get("data").unwrap_or(&Value::Null);
        Ok(Self {
            uid: string_field(v, "uid")?,
            nsp: string_field(v, "nsp")?,
            body: ClusterBody::from_data(ty, data)?,
        })
    }
}
