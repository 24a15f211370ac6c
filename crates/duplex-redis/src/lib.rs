//! Socket.IO servers of `duplex-tokio` in one cluster over Redis,
//! wire-compatible with Node's `@socket.io/redis-adapter` 8.3 in its
//! classic (PUBLISH / SUBSCRIBE / PSUBSCRIBE) and sharded (Redis 7
//! SPUBLISH / SSUBSCRIBE) modes, and an [`Emitter`] for processes that are
//! not Socket.IO servers (Node's `@socket.io/redis-emitter`).
//!
//! Every protocol decision is `duplex_socketio::cluster`'s, inside the
//! server machine; this crate is the IO of duplex-tokio's backend-neutral
//! cluster transport ([`duplex_tokio::socketio::ClusterPort`]): two
//! connections (a subscriber and a publisher), what Redis delivers fed
//! into the server, what comes out published. While Redis is away, local
//! delivery goes on (the machine sends to local sockets before anything is
//! published), what would have been published is dropped and counted, and
//! the task reconnects by itself with exponential backoff, resubscribing
//! to every channel.
//!
//! The sharded mode speaks RESP3 on a multiplexed connection, where
//! SSUBSCRIBE is an ordinary command and the shard messages arrive as
//! pushes: the `redis` crate's pub/sub connection has no SSUBSCRIBE (only
//! its cluster client has), and RESP3 pushes need no other crate.

#![forbid(unsafe_code)]
#![cfg_attr(doctest, doc = include_str!("../README.md"))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connection;
mod emitter;
mod streams;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use duplex_socketio::cluster::{Protocol, classic::DEFAULT_KEY};
use duplex_tokio::socketio::{ClusterConfig, SocketIo};
use rand::Rng;

pub use duplex_socketio::cluster::sharded::SubscriptionMode;
pub use duplex_socketio::cluster::{StreamsOptions, StreamsVersion};
pub use emitter::{Emitter, EmitterOperator};

/// The guide `docs/socketio-cluster.md`, compiled so that its examples
/// stay true (only under `cargo test`: the guides are not part of the
/// package).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/socketio-cluster.md")]
pub struct ClusterGuide;

/// An error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis refused or failed: the URL is not one, or the connection
    /// (an [`Emitter`]'s) failed.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The caller's event name is one Socket.IO reserves (`connect`,
    /// `disconnect`...), which no client could receive.
    #[error("{0:?} is a reserved event name")]
    ReservedEvent(String),
}

/// Settings of [`RedisAdapter::attach`].
#[derive(Clone, Debug)]
pub struct RedisAdapterConfig {
    /// The Redis URL (`redis://HOST:PORT`).
    pub url: String,
    /// The adapter's `key` option, the prefix of every channel. Default
    /// `socket.io`, as Node's.
    pub key: String,
    /// The namespaces that join the cluster. Default `/`.
    pub namespaces: Vec<String>,
    /// The first wait before reconnecting. Default 100 ms.
    pub reconnect_min: Duration,
    /// The longest wait between reconnection attempts. Default 5 s.
    pub reconnect_max: Duration,
    /// Most messages waiting to be published; beyond it they are dropped
    /// (and counted) rather than holding up a socket. Default 4096. It
    /// also bounds the shard messages received and not yet handled.
    pub queue: usize,
    /// The protocol: classic (the default, Node's `createAdapter`),
    /// sharded (`createShardedAdapter`, Redis 7) or streams
    /// (`@socket.io/redis-streams-adapter`).
    pub mode: RedisMode,
    /// The streams mode's options (its version, stream name and count,
    /// channel prefix, `MAXLEN`, session key prefix, heartbeats): Node's
    /// defaults, 0.3.x. `key` is not used in that
    /// mode; `offsets` follows the server's connection state recovery.
    pub streams: StreamsOptions,
    /// The streams mode's `XREAD COUNT` (`readCount`): 100.
    pub read_count: usize,
    /// The streams mode's restores (a reconnecting client's session looked
    /// up in Redis) run at once at most; beyond it they wait, up to 5 s,
    /// then the client gets a fresh session. Default 32.
    pub max_restores: usize,
}

/// Which of Node's two Redis adapters a server speaks; every server of a
/// cluster must speak the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedisMode {
    /// `createAdapter`: PUBLISH, SUBSCRIBE and PSUBSCRIBE; the server
    /// count is `PUBSUB NUMSUB`.
    #[default]
    Classic,
    /// `createShardedAdapter`: SPUBLISH and SSUBSCRIBE (Redis 7 sharded
    /// pub/sub), with its `subscriptionMode`; the server count is
    /// `PUBSUB SHARDNUMSUB`.
    Sharded(SubscriptionMode),
    /// `@socket.io/redis-streams-adapter`: broadcasts and room changes are
    /// entries of a stream (`XADD` / `XREAD`), and with connection state
    /// recovery on, sessions are kept in Redis so that a client cut from
    /// one server is restored by any other (Redis 5 or later). In 0.3.x
    /// ([`StreamsVersion::V0_3`], the default of
    /// [`StreamsOptions::version`]) requests and responses go over
    /// PUBLISH / SUBSCRIBE and the server count is `PUBSUB NUMSUB`; in
    /// 0.2.x everything is in the stream and servers count each other by
    /// heartbeats.
    Streams,
}

impl RedisAdapterConfig {
    /// The defaults, for the Redis server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key: DEFAULT_KEY.to_owned(),
            namespaces: vec!["/".to_owned()],
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            queue: 4096,
            mode: RedisMode::Classic,
            streams: StreamsOptions::default(),
            read_count: duplex_socketio::cluster::streams::DEFAULT_READ_COUNT,
            max_restores: 32,
        }
    }
}

/// How the Redis task is doing, shared with its handle.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) connected: AtomicBool,
    pub(crate) dropped: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) published: AtomicU64,
}

/// The handle of a server's Redis adapter: the task runs until it is
/// dropped (or the server is gone).
#[derive(Debug)]
pub struct RedisAdapter {
    uid: String,
    stats: Arc<Stats>,
    overflow: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RedisAdapter {
    /// Joins `io`'s `config.namespaces` to the cluster on the Redis server
    /// at `config.url` (Node's `createAdapter`, or `createShardedAdapter`
    /// with [`RedisMode::Sharded`]): broadcasts reach the sockets of every
    /// server, and other servers' broadcasts and room operations reach this
    /// one's. Must be called inside a tokio runtime; the connections are
    /// made in the background, and local delivery works from the start.
    ///
    /// [`Error::Redis`] if the URL is not one.
    pub fn attach(io: &SocketIo, config: RedisAdapterConfig) -> Result<Self, Error> {
        let mut client = redis::Client::open(config.url.as_str())?;
        let (uid, protocol) = match config.mode {
            RedisMode::Classic => (
                (0..6)
                    .map(|_| char::from(rand::rng().sample(rand::distr::Alphanumeric)))
                    .collect::<String>(),
                Protocol::Classic {
                    key: config.key.clone(),
                    specific_response_channel: false,
                },
            ),
            RedisMode::Sharded(mode) => {
                // Shard messages are RESP3 pushes.
                let mut info = client.get_connection_info().clone();
                info.redis.protocol = redis::ProtocolVersion::RESP3;
                client = redis::Client::open(info)?;
                (
                    format!("{:016x}", rand::rng().random::<u64>()),
                    Protocol::Sharded {
                        prefix: config.key.clone(),
                        mode,
                    },
                )
            }
            // The cluster adapter's uid: 8 random bytes in hex.
            RedisMode::Streams => {
                if config.streams.sharded_pubsub {
                    // Shard messages are RESP3 pushes.
                    let mut info = client.get_connection_info().clone();
                    info.redis.protocol = redis::ProtocolVersion::RESP3;
                    client = redis::Client::open(info)?;
                }
                (
                    format!("{:016x}", rand::rng().random::<u64>()),
                    Protocol::default(),
                )
            }
        };
        let mut cluster = ClusterConfig::new(protocol, uid.clone());
        if config.mode == RedisMode::Streams {
            cluster.streams = Some(config.streams.clone());
        }
        cluster.namespaces = config.namespaces.clone();
        cluster.queue = config.queue;
        let port = io.attach_cluster(cluster);
        let overflow = port.overflow();
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(transport::run(client, port, config, stats.clone()));
        Ok(Self {
            uid,
            stats,
            overflow,
            task,
        })
    }

    /// This server's uid in the cluster (as Node's: 6 random characters in
    /// classic mode, 16 hex digits in sharded mode).
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Whether both connections to Redis are up now.
    pub fn is_connected(&self) -> bool {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// Messages that could not be published (Redis away, or a queue full):
    /// the remote part of those operations did not happen.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed) + self.overflow.load(Ordering::Relaxed)
    }

    /// Messages received from Redis.
    pub fn received(&self) -> u64 {
        self.stats.received.load(Ordering::Relaxed)
    }

    /// Messages published.
    pub fn published(&self) -> u64 {
        self.stats.published.load(Ordering::Relaxed)
    }
}

impl Drop for RedisAdapter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
