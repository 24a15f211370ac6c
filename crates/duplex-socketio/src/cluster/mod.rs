//! The Socket.IO cluster adapter protocol of Node's
//! `@socket.io/redis-adapter` 8.3.0 and `socket.io-adapter` 2.5, sans-IO:
//! duplex servers share rooms and broadcasts with Node servers over Redis.
//!
//! * [`msgpack`]: MessagePack byte for byte as notepack.io writes it, and
//!   JSON as `JSON.stringify` writes the same values.
//! * [`classic`]: the classic adapter (PUBLISH/SUBSCRIBE): its channels,
//!   broadcasts, requests and responses.
//! * [`sharded`]: the sharded adapter (SPUBLISH/SSUBSCRIBE): cluster
//!   messages `{type, data, uid, nsp}` and the channel each goes to.
//! * [`Requests`]: the requests awaiting other nodes' answers, the answers
//!   expected from the node count, timeouts driven by
//!   [`Requests::handle_timeout`].
//! * [`Heartbeats`]: the node count of socket.io-adapter's heartbeat
//!   cluster (the uids seen, who is gone after the heartbeat timeout).
//! * [`LocalAdapter`] and [`InMemoryAdapter`]: the room bookkeeping the
//!   local server routes its rooms through, and what each incoming message
//!   means for the local sockets.
//! * [`Adapter`]: what the local server routes its rooms and broadcasts
//!   through: [`InMemoryAdapter`] by default, or a [`ClusterNode`].
//! * [`streams`]: the Redis streams adapter's wire (stream entries,
//!   persisted sessions, restores), for [`ClusterNode::streams`].
//! * [`ClusterNode`]: one namespace's adapter as a machine, tying the
//!   above together: `receive(channel, payload)`, `poll_transmit()`,
//!   `poll_subscription()`, `poll_event()`, `handle_timeout(now)`,
//!   `poll_timeout()`.
//!
//! Nothing here talks to Redis: the IO layer subscribes to the channels
//! named here, feeds received payloads in, publishes what comes out, and
//! tells the server count (`PUBSUB NUMSUB`/`SHARDNUMSUB`).

mod adapter;
pub mod classic;
mod heartbeat;
mod local;
mod message;
pub mod msgpack;
mod node;
mod requests;
pub mod sharded;
pub mod streams;

pub use adapter::Adapter;
pub use heartbeat::{Heartbeats, HeartbeatsConfig};
pub use local::{InMemoryAdapter, LocalAction, LocalAdapter, RoomChange};
pub use message::{FetchedSocket, Format, Opts, WirePacket};
pub use node::{
    ClusterNode, NodeEvent, Protocol, StreamAdd, StreamsOptions, Subscription, Transmit,
};
pub use requests::{
    Answer, BroadcastAcks, Expected, RequestEvent, RequestKind, Requests, RequestsConfig,
};
pub use streams::StreamsVersion;

/// Why a request to the other nodes ended without every answer; its text
/// is Node's, so that a mixed cluster reports the same message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestTimeout {
    /// Fewer answers than the server count expected.
    #[error("timeout reached: only {received} responses received out of {expected}")]
    Count {
        /// Answers received.
        received: usize,
        /// Answers expected.
        expected: usize,
    },
    /// The heartbeat cluster's form: nodes by uid that did not answer.
    #[error("timeout reached: missing {missing} responses")]
    Missing {
        /// Nodes that did not answer.
        missing: usize,
    },
}

/// An error of the cluster protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- another node's message (peer) --------------------------------
    /// The bytes are not MessagePack this codec reads.
    #[error("invalid MessagePack: {0}")]
    Msgpack(&'static str),
    /// The bytes start with `{` but are not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The message is not of the expected shape (e.g. a broadcast that is
    /// not `[uid, packet, opts]`).
    #[error("message is not a {0}")]
    Shape(&'static str),
    /// A field is missing or of the wrong type.
    #[error("missing or invalid field `{0}`")]
    Field(&'static str),
    /// A message type this protocol does not have.
    #[error("unknown message type {0}")]
    UnknownType(u64),

    // ---- the outcome of a request (other nodes silent) ---------------
    /// Fewer nodes answered than expected before the timeout.
    #[error(transparent)]
    TimedOut(#[from] RequestTimeout),

    // ---- the caller's ------------------------------------------------
    /// More requests in flight than [`RequestsConfig::max_pending`].
    #[error("too many requests awaiting answers (limit {limit})")]
    TooManyRequests {
        /// The configured limit.
        limit: usize,
    },
    /// A request id already in flight.
    #[error("request id {0:?} is already awaiting answers")]
    DuplicateRequestId(String),
}
