//! [`Emitter`]: publishes into a cluster from a process that is not a
//! Socket.IO server, as Node's `@socket.io/redis-emitter` does.
//!
//! Each operation is a cluster node's (duplex_socketio's `ClusterNode`
//! under Node's emitter uid, `emitter`, with no socket of its own), so the
//! messages and channels are exactly a server's: msgpack broadcasts on the
//! room's channel or the namespace's, JSON requests for the room
//! operations and server-side emits; or the sharded messages over
//! SPUBLISH. Node's emitter speaks the classic protocol only; this one
//! speaks both.

use std::time::Instant;

use duplex_socketio::Value;
use duplex_socketio::cluster::sharded::EMITTER_UID;
use duplex_socketio::cluster::{ClusterNode, Opts, Protocol, RequestsConfig, WirePacket};

use crate::{Error, RedisMode};

/// Event names Socket.IO keeps for itself: no client could receive them.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Publishes into the cluster of Socket.IO servers on a Redis, for one
/// namespace (`/` first; [`Emitter::of`] for others). Cheap to clone: the
/// clones share one multiplexed connection.
#[derive(Clone)]
pub struct Emitter {
    connection: redis::aio::MultiplexedConnection,
    protocol: Protocol,
    /// The stream, in the streams mode.
    streams: Option<String>,
    namespace: String,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("protocol", &self.protocol)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// Connects to the Redis at `url` (`redis://HOST:PORT`), for a cluster
    /// speaking `mode` under the key prefix `key` (`socket.io` by
    /// default, the servers' `key` or `channelPrefix`).
    ///
    /// [`Error::Redis`] if the URL is not one or Redis cannot be reached.
    pub async fn connect(url: &str, mode: RedisMode, key: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url)?;
        let connection = client.get_multiplexed_async_connection().await?;
        let protocol = match mode {
            RedisMode::Classic => Protocol::Classic {
                key: key.to_owned(),
                specific_response_channel: false,
            },
            RedisMode::Sharded(mode) => Protocol::Sharded {
                prefix: key.to_owned(),
                mode,
            },
            // The stream is named `key`; see `publish`.
            RedisMode::Streams => Protocol::Classic {
                key: key.to_owned(),
                specific_response_channel: false,
            },
        };
        Ok(Self {
            connection,
            protocol,
            streams: (mode == RedisMode::Streams).then(|| key.to_owned()),
            namespace: "/".to_owned(),
        })
    }

    /// The same emitter for namespace `namespace` (Node's `of`).
    pub fn of(&self, namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            ..self.clone()
        }
    }

    /// The namespace this emitter publishes to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The sockets in `room` (more with [`EmitterOperator::to`]).
    pub fn to(&self, room: &str) -> EmitterOperator {
        self.all().to(room)
    }

    /// Every socket but those in `room`.
    pub fn except(&self, room: &str) -> EmitterOperator {
        self.all().except(room)
    }

    /// Emits `event` to every socket of the namespace on every server.
    ///
    /// [`Error::ReservedEvent`] for Socket.IO's own event names;
    /// [`Error::Redis`] if publishing failed.
    pub async fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        self.all().emit(event, args).await
    }

    /// Every socket of the namespace joins `rooms`.
    pub async fn sockets_join(&self, rooms: &[&str]) -> Result<(), Error> {
        self.all().sockets_join(rooms).await
    }

    /// Every socket of the namespace leaves `rooms`.
    pub async fn sockets_leave(&self, rooms: &[&str]) -> Result<(), Error> {
        self.all().sockets_leave(rooms).await
    }

    /// Every socket of the namespace is disconnected (with `close`, its
    /// whole connection).
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), Error> {
        self.all().disconnect_sockets(close).await
    }

    /// Sends `event` with `args` to the server-side listeners of every
    /// server (Node's `serverSideEmit`; no ack, as Node's emitter).
    pub async fn server_side_emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        let mut data = vec![Value::from(event)];
        data.extend(args);
        self.publish(|node| {
            // Without an ack the node asks for no answer, so it cannot
            // refuse (no request is kept).
            let _ = node.server_side_emit(data, None, Instant::now());
        })
        .await
    }

    /// Every socket of the namespace, to narrow with
    /// [`EmitterOperator::to`] and [`EmitterOperator::except`].
    pub fn all(&self) -> EmitterOperator {
        EmitterOperator {
            emitter: self.clone(),
            opts: Opts::default(),
        }
    }

    /// Runs `op` on a node of no socket and publishes what it sends.
    async fn publish(&self, op: impl FnOnce(&mut ClusterNode)) -> Result<(), Error> {
        let mut node = match &self.streams {
            Some(stream) => ClusterNode::streams(
                duplex_socketio::cluster::StreamsOptions {
                    stream: stream.clone(),
                    ..Default::default()
                },
                EMITTER_UID,
                &self.namespace,
                RequestsConfig::default(),
                Instant::now(),
            ),
            None => ClusterNode::new(
                self.protocol.clone(),
                EMITTER_UID,
                &self.namespace,
                RequestsConfig::default(),
            ),
        };
        // Not a node: its heartbeats are not to be published.
        while node.poll_transmit().is_some() {}
        op(&mut node);
        let mut connection = self.connection.clone();
        while let Some(t) = node.poll_transmit() {
            let cmd = match &t.stream {
                Some(add) => crate::connection::xadd(&t.channel, add),
                None => crate::connection::publish(&t),
            };
            cmd.exec_async(&mut connection).await?;
        }
        Ok(())
    }
}

/// A selection of sockets of an [`Emitter`]'s namespace: rooms to reach
/// (all sockets when none) and rooms to leave out.
#[derive(Clone, Debug)]
pub struct EmitterOperator {
    emitter: Emitter,
    opts: Opts,
}

impl EmitterOperator {
    /// Also the sockets in `room`.
    pub fn to(mut self, room: &str) -> Self {
        if !self.opts.rooms.iter().any(|r| r == room) {
            self.opts.rooms.push(room.to_owned());
        }
        self
    }

    /// Not the sockets in `room`.
    pub fn except(mut self, room: &str) -> Self {
        if !self.opts.except.iter().any(|r| r == room) {
            self.opts.except.push(room.to_owned());
        }
        self
    }

    /// Emits `event` with `args` to the selected sockets of every server,
    /// each once.
    ///
    /// [`Error::ReservedEvent`] for Socket.IO's own event names;
    /// [`Error::Redis`] if publishing failed.
    pub async fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(Error::ReservedEvent(event.to_owned()));
        }
        let packet = WirePacket::event(event, args);
        self.emitter
            .publish(|node| {
                node.broadcast(packet, &self.opts);
            })
            .await
    }

    /// The selected sockets join `rooms`, on every server.
    pub async fn sockets_join(&self, rooms: &[&str]) -> Result<(), Error> {
        self.rooms(rooms, false).await
    }

    /// The selected sockets leave `rooms`, on every server.
    pub async fn sockets_leave(&self, rooms: &[&str]) -> Result<(), Error> {
        self.rooms(rooms, true).await
    }

    /// The selected sockets are disconnected (with `close`, their whole
    /// connection), on every server.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), Error> {
        self.emitter
            .publish(|node| {
                node.disconnect_sockets(&self.opts, close);
            })
            .await
    }

    async fn rooms(&self, rooms: &[&str], leave: bool) -> Result<(), Error> {
        let rooms: Vec<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
        self.emitter
            .publish(|node| {
                node.sockets_rooms(&self.opts, &rooms, leave);
            })
            .await
    }
}
