//! Socket.IO across servers over Redis (feature `redis`): the IO of
//! duplex-socketio's cluster adapter, wire-compatible with Node's
//! `@socket.io/redis-adapter` in its classic (PUBLISH / SUBSCRIBE /
//! PSUBSCRIBE) and sharded (Redis 7 SPUBLISH / SSUBSCRIBE) modes.
//!
//! The sharded mode speaks RESP3 on a multiplexed connection, where
//! SSUBSCRIBE is an ordinary command and the shard messages arrive as
//! pushes: the `redis` crate's pub/sub connection has no SSUBSCRIBE (only
//! its cluster client has), and RESP3 pushes need no other crate.
//!
//! Every decision is the [`ClusterNode`]'s, inside the server machine:
//! what a broadcast publishes, what another node's message means for the
//! local sockets. This task only keeps two connections (a subscriber and
//! a publisher), feeds what Redis delivers into the machine and publishes
//! what comes out. While Redis is away, local delivery goes on (the
//! machine sends to local sockets before anything is published), what
//! would have been published is dropped and counted, and the task
//! reconnects by itself with exponential backoff, resubscribing to every
//! channel. Nothing here ever blocks a socket's loop: the machine hands
//! its messages over through a bounded queue with `try_send`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use duplex_polling::EngineIoServer;
/// The sharded adapter's `subscriptionMode` (Node's names: static, dynamic,
/// dynamic-private).
pub use duplex_socketio::cluster::sharded::SubscriptionMode;
use duplex_socketio::cluster::{Protocol, RequestsConfig, Subscription, classic::DEFAULT_KEY};
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::mpsc;

use super::{SocketIo, SocketIoApp};
use crate::Error;
use crate::polling::WeakPollingService;

/// Settings of [`SocketIo::attach_redis`].
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
    /// The protocol: classic (the default, Node's `createAdapter`) or
    /// sharded (`createShardedAdapter`, Redis 7).
    pub mode: RedisMode,
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
        }
    }
}

/// What the server machine hands the Redis task.
#[derive(Debug)]
pub(crate) enum ClusterOut {
    /// PUBLISH.
    Publish(duplex_socketio::cluster::Transmit),
    /// A subscription change of a namespace's node.
    Subscription(String, Subscription),
    /// `PUBSUB NUMSUB` (`SHARDNUMSUB` when sharded) of a channel: the
    /// number of servers.
    Count(String, tokio::sync::oneshot::Sender<usize>),
}

/// A socket's `data` (Node's `socket.data`), kept in its
/// [`Socket::extensions`](super::Socket::extensions): what other servers'
/// `fetch_sockets` see of it.
#[derive(Clone, Debug, PartialEq)]
pub struct SocketData(pub duplex_socketio::Value);

/// A socket of any server of the cluster, as `fetch_sockets` gives it.
pub use duplex_socketio::cluster::FetchedSocket as RemoteSocket;

/// A listener of other servers' `server_side_emit`.
pub(crate) type ServerSideHandler =
    Arc<dyn Fn(Vec<duplex_socketio::Value>, Option<ServerSideReply>) + Send + Sync>;

/// The callback of a `server_side_emit_with_ack` from another server:
/// [`ServerSideReply::send`] answers it once.
#[derive(Debug)]
pub struct ServerSideReply {
    pub(crate) io: SocketIo,
    pub(crate) namespace: String,
    pub(crate) requester: String,
    pub(crate) request_id: String,
}

impl ServerSideReply {
    /// Answers the requesting server with `value`.
    pub fn send(self, value: duplex_socketio::Value) {
        self.io.service.with(|eio, app, now, _| {
            app.answer_server_side(
                eio,
                &self.namespace,
                &self.requester,
                &self.request_id,
                value,
                now,
            );
        });
    }
}

impl super::NamespaceHandlers {
    /// Listens to `event` sent by other servers of the cluster with
    /// [`SocketIo::server_side_emit`] (a server does not hear its own);
    /// the reply is there when the sender wants an ack.
    pub fn on_server_side(
        mut self,
        event: &str,
        handler: impl Fn(Vec<duplex_socketio::Value>, Option<ServerSideReply>) + Send + Sync + 'static,
    ) -> Self {
        self.server_side.insert(event.to_owned(), Arc::new(handler));
        self
    }
}

impl SocketIo {
    /// Sends `event` with `args` to the server-side listeners
    /// ([`NamespaceHandlers::on_server_side`](super::NamespaceHandlers::on_server_side))
    /// of every other server of the cluster (Node's `serverSideEmit`).
    pub fn server_side_emit(
        &self,
        namespace: &str,
        event: &str,
        args: Vec<duplex_socketio::Value>,
    ) {
        let mut data = vec![duplex_socketio::Value::from(event)];
        data.extend(args);
        self.service.with(|eio, app, now, deferred| {
            app.server_side_emit(eio, namespace, data, None, now, deferred);
        });
    }

    /// [`SocketIo::server_side_emit`] waiting for every other server's
    /// answer (Node's `serverSideEmitWithAck`): one value per server.
    ///
    /// [`Error::Cluster`] when Redis is away or a server did not answer
    /// in time.
    pub async fn server_side_emit_with_ack(
        &self,
        namespace: &str,
        event: &str,
        args: Vec<duplex_socketio::Value>,
    ) -> Result<Vec<duplex_socketio::Value>, Error> {
        let count = self
            .service
            .with(|_, app, _, _| app.server_count(namespace, false));
        let servers = match count {
            Some(rx) => rx
                .await
                .map_err(|_| Error::Cluster(crate::ClusterFailure::RedisUnavailable))?,
            None => 1,
        };
        let mut data = vec![duplex_socketio::Value::from(event)];
        data.extend(args);
        let rx = self.service.with(|eio, app, now, deferred| {
            app.server_side_emit(eio, namespace, data, Some(servers), now, deferred)
        });
        let answers = match rx {
            Some(rx) => rx
                .await
                .map_err(|_| Error::Cluster(crate::ClusterFailure::ServerGone))?
                .map_err(Error::Cluster)?,
            None => Vec::new(),
        };
        Ok(answers
            .into_iter()
            .filter_map(|a| match a {
                duplex_socketio::cluster::Answer::Emit(v) => Some(v),
                _ => None,
            })
            .collect())
    }

    /// Every room of `namespace` on every server of the cluster, socket-id
    /// rooms included, each once (Node's `adapter.allRooms()`, classic
    /// mode). Without a cluster, this server's.
    ///
    /// [`Error::Cluster`] when Redis is away or a server did not answer
    /// in time.
    pub async fn all_rooms(&self, namespace: &str) -> Result<Vec<String>, Error> {
        let count = self
            .service
            .with(|_, app, _, _| app.server_count(namespace, false));
        let servers = match count {
            Some(rx) => rx
                .await
                .map_err(|_| Error::Cluster(crate::ClusterFailure::RedisUnavailable))?,
            None => 1,
        };
        let rx = self
            .service
            .with(|eio, app, now, deferred| app.all_rooms(eio, namespace, servers, now, deferred));
        let answers = rx
            .await
            .map_err(|_| Error::Cluster(crate::ClusterFailure::ServerGone))?
            .map_err(Error::Cluster)?;
        let mut rooms: Vec<String> = answers
            .into_iter()
            .flat_map(|a| match a {
                duplex_socketio::cluster::Answer::Rooms(r) => r,
                _ => Vec::new(),
            })
            .collect();
        rooms.sort();
        rooms.dedup();
        Ok(rooms)
    }
}

impl super::Operator {
    /// Emits `event` to every selected socket of every server, each with
    /// an ack (Node's `io.timeout(t).emit(event, ...args, callback)`):
    /// the first argument of every client's ack, in arrival order, once
    /// all came. A server with none of the sockets answers 0, so an empty
    /// selection completes at once.
    ///
    /// At `timeout`, [`Error::Timeout`] with the acks that came.
    pub async fn emit_with_acks(
        &self,
        event: &str,
        args: Vec<duplex_socketio::Value>,
        timeout: Duration,
    ) -> Result<Vec<duplex_socketio::Value>, (Error, Vec<duplex_socketio::Value>)> {
        let count = self
            .io
            .service
            .with(|_, app, _, _| app.server_count(&self.namespace, self.local));
        let servers = match count {
            Some(rx) => rx.await.map_err(|_| {
                (
                    Error::Cluster(crate::ClusterFailure::RedisUnavailable),
                    Vec::new(),
                )
            })?,
            None => 1,
        };
        let (request_id, rx) = self.io.service.with(|eio, app, now, deferred| {
            app.broadcast_with_acks(
                eio,
                &self.namespace,
                &self.target,
                self.local,
                event,
                &args,
                timeout,
                servers,
                now,
                deferred,
            )
        });
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(responses)) => Ok(responses),
            Ok(Err(_)) => Err((Error::Closed, Vec::new())),
            Err(_) => {
                let partial = self
                    .io
                    .service
                    .with(|_, app, _, _| app.ack_broadcast_take(&request_id));
                Err((Error::Timeout, partial))
            }
        }
    }

    /// The selected sockets of every server of the cluster (Node's
    /// `fetchSockets`): this server's at once, the others' as they
    /// answer, within 5 s. Without a cluster, this server's.
    ///
    /// [`Error::Cluster`] when Redis is away or a server did not answer
    /// in time.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, Error> {
        let count = self
            .io
            .service
            .with(|_, app, _, _| app.server_count(&self.namespace, self.local));
        let servers = match count {
            Some(rx) => rx
                .await
                .map_err(|_| Error::Cluster(crate::ClusterFailure::RedisUnavailable))?,
            None => 1,
        };
        let rx = self.io.service.with(|eio, app, now, deferred| {
            app.fetch_sockets(
                eio,
                &self.namespace,
                &self.target,
                self.local,
                servers,
                now,
                deferred,
            )
        });
        let answers = rx
            .await
            .map_err(|_| Error::Cluster(crate::ClusterFailure::ServerGone))?
            .map_err(Error::Cluster)?;
        Ok(answers
            .into_iter()
            .flat_map(|a| match a {
                duplex_socketio::cluster::Answer::Sockets(s) => s,
                _ => Vec::new(),
            })
            .collect())
    }
}

/// How the Redis task is doing, shared with its handle.
#[derive(Debug, Default)]
struct Stats {
    connected: std::sync::atomic::AtomicBool,
    dropped: AtomicU64,
    received: AtomicU64,
    published: AtomicU64,
}

/// The handle of a server's Redis adapter: the task runs until it is
/// dropped (or the server is gone).
#[derive(Debug)]
pub struct RedisAdapter {
    uid: String,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl RedisAdapter {
    /// This server's uid in the cluster (as Node's: 6 random characters in
    /// classic mode, 16 hex digits in sharded mode).
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Whether both connections to Redis are up now.
    pub fn is_connected(&self) -> bool {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// Messages that could not be published (Redis away, or the queue
    /// full): the remote part of those operations did not happen.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
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

impl SocketIo {
    /// Joins this server's `config.namespaces` to the cluster on the Redis
    /// server at `config.url` (Node's `createAdapter`, or
    /// `createShardedAdapter` with [`RedisMode::Sharded`]): broadcasts
    /// reach the sockets of every server, and other servers' broadcasts
    /// and room operations reach this one's. Must be called inside a tokio
    /// runtime; the connections are made in the background, and local
    /// delivery works from the start.
    ///
    /// [`Error::Redis`] if the URL is not one.
    pub fn attach_redis(&self, config: RedisAdapterConfig) -> Result<RedisAdapter, Error> {
        let client = redis::Client::open(config.url.as_str())?;
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
            RedisMode::Sharded(mode) => (
                format!("{:016x}", rand::rng().random::<u64>()),
                Protocol::Sharded {
                    prefix: config.key.clone(),
                    mode,
                },
            ),
        };
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let stats = Arc::new(Stats::default());
        let subscriptions = self.service.with(|_, app, _, _| {
            app.attach_cluster(
                &config.namespaces,
                &protocol,
                &uid,
                RequestsConfig::default(),
                tx,
                stats_counter(&stats),
            )
        });
        let weak = self.service.downgrade();
        let client = match config.mode {
            RedisMode::Classic => client,
            // Shard messages are RESP3 pushes.
            RedisMode::Sharded(_) => {
                let mut info = client.get_connection_info().clone();
                info.redis.protocol = redis::ProtocolVersion::RESP3;
                redis::Client::open(info)?
            }
        };
        let task = tokio::spawn(run(client, subscriptions, rx, weak, config, stats.clone()));
        Ok(RedisAdapter { uid, stats, task })
    }
}

fn stats_counter(stats: &Arc<Stats>) -> Arc<dyn Fn() + Send + Sync> {
    let stats = stats.clone();
    Arc::new(move || {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
    })
}

/// The channels and patterns subscribed to, each with its namespace.
#[derive(Default)]
struct Subscribed {
    channels: HashMap<String, String>,
    patterns: HashMap<String, String>,
}

impl Subscribed {
    fn apply(&mut self, namespace: String, change: Subscription) {
        match change {
            Subscription::Subscribe(c) => {
                self.channels.insert(c, namespace);
            }
            Subscription::PatternSubscribe(p) => {
                self.patterns.insert(p, namespace);
            }
            Subscription::Unsubscribe(c) => {
                self.channels.remove(&c);
            }
        }
    }
}

type Weak = WeakPollingService<EngineIoServer, SocketIoApp>;

async fn run(
    client: redis::Client,
    initial: Vec<(String, Subscription)>,
    mut rx: mpsc::Receiver<ClusterOut>,
    io: Weak,
    config: RedisAdapterConfig,
    stats: Arc<Stats>,
) {
    let mut subscribed = Subscribed::default();
    for (ns, s) in initial {
        subscribed.apply(ns, s);
    }
    let mut backoff = config.reconnect_min;
    loop {
        let on_up = || backoff = config.reconnect_min;
        let result = match config.mode {
            RedisMode::Classic => {
                connected(&client, &mut subscribed, &mut rx, &io, &stats, on_up).await
            }
            RedisMode::Sharded(_) => {
                connected_sharded(
                    &client,
                    &mut subscribed,
                    &mut rx,
                    &io,
                    &stats,
                    config.queue,
                    on_up,
                )
                .await
            }
        };
        stats.connected.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "redis adapter: connection lost")
            }
        }
        // Away: keep the queue moving so that nothing waits on Redis.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                out = rx.recv() => match out {
                    None => return,
                    Some(ClusterOut::Subscription(ns, s)) => subscribed.apply(ns, s),
                    Some(ClusterOut::Publish(_)) => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    // Dropping the sender fails the request: no count without Redis.
                    Some(ClusterOut::Count(..)) => {}
                },
            }
        }
        backoff = (backoff * 2).min(config.reconnect_max);
    }
}

/// One life of the connections; `Ok` when the server is gone.
async fn connected(
    client: &redis::Client,
    subscribed: &mut Subscribed,
    rx: &mut mpsc::Receiver<ClusterOut>,
    io: &Weak,
    stats: &Stats,
    on_up: impl FnOnce(),
) -> redis::RedisResult<()> {
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let (mut sink, mut stream) = client.get_async_pubsub().await?.split();
    for channel in subscribed.channels.keys() {
        sink.subscribe(channel).await?;
    }
    for pattern in subscribed.patterns.keys() {
        sink.psubscribe(pattern).await?;
    }
    stats.connected.store(true, Ordering::Relaxed);
    on_up();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
                };
                stats.received.fetch_add(1, Ordering::Relaxed);
                let namespace = if msg.from_pattern() {
                    msg.get_pattern::<String>().ok().and_then(|p| subscribed.patterns.get(&p))
                } else {
                    subscribed.channels.get(msg.get_channel_name())
                };
                let Some(namespace) = namespace else { continue };
                let Some(service) = io.upgrade() else { return Ok(()) };
                service.with(|eio, app, now, deferred| {
                    app.cluster_receive(eio, namespace, msg.get_channel_name(), msg.get_payload_bytes(), now, deferred);
                });
            }
            out = rx.recv() => match out {
                None => return Ok(()),
                Some(ClusterOut::Subscription(ns, change)) => {
                    match &change {
                        Subscription::Subscribe(c) => sink.subscribe(c).await?,
                        Subscription::PatternSubscribe(p) => sink.psubscribe(p).await?,
                        Subscription::Unsubscribe(c) => sink.unsubscribe(c).await?,
                    }
                    subscribed.apply(ns, change);
                }
                Some(ClusterOut::Publish(t)) => {
                    if let Err(e) = redis::cmd("PUBLISH")
                        .arg(&t.channel)
                        .arg(&t.payload)
                        .exec_async(&mut publisher)
                        .await
                    {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        return Err(e);
                    }
                    stats.published.fetch_add(1, Ordering::Relaxed);
                }
                Some(ClusterOut::Count(channel, reply)) => {
                    let (_, count): (String, usize) = redis::cmd("PUBSUB")
                        .arg("NUMSUB")
                        .arg(&channel)
                        .query_async(&mut publisher)
                        .await?;
                    let _ = reply.send(count);
                }
            },
        }
    }
}

/// One life of the sharded mode's connections (RESP3); `Ok` when the server
/// is gone.
async fn connected_sharded(
    client: &redis::Client,
    subscribed: &mut Subscribed,
    rx: &mut mpsc::Receiver<ClusterOut>,
    io: &Weak,
    stats: &Stats,
    queue: usize,
    on_up: impl FnOnce(),
) -> redis::RedisResult<()> {
    use redis::PushKind;
    // Bounded: a flood of shard messages the server cannot keep up with is
    // dropped (and counted) at the connection, never buffered without end.
    let (push_tx, mut pushes) = mpsc::channel::<redis::PushInfo>(queue.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let dropped_in = dropped.clone();
    let sender = move |info: redis::PushInfo| {
        push_tx.try_send(info).map_err(|_| {
            dropped_in.fetch_add(1, Ordering::Relaxed);
        })
    };
    let config = redis::AsyncConnectionConfig::new().set_push_sender(sender);
    let mut subscriber = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut publisher = client.get_multiplexed_async_connection().await?;
    for channel in subscribed.channels.keys() {
        redis::cmd("SSUBSCRIBE")
            .arg(channel)
            .exec_async(&mut subscriber)
            .await?;
    }
    stats.connected.store(true, Ordering::Relaxed);
    on_up();
    loop {
        stats
            .dropped
            .fetch_add(dropped.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else {
                    return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
                };
                match push.kind {
                    PushKind::Disconnection => {
                        return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
                    }
                    PushKind::SMessage => {}
                    _ => continue,
                }
                stats.received.fetch_add(1, Ordering::Relaxed);
                let mut data = push.data.into_iter();
                let (Some(channel), Some(payload)) = (data.next(), data.next()) else { continue };
                let (Ok(channel), Ok(payload)) = (
                    redis::from_redis_value::<String>(&channel),
                    redis::from_redis_value::<Vec<u8>>(&payload),
                ) else { continue };
                let Some(namespace) = subscribed.channels.get(&channel) else { continue };
                let Some(service) = io.upgrade() else { return Ok(()) };
                service.with(|eio, app, now, deferred| {
                    app.cluster_receive(eio, namespace, &channel, &payload, now, deferred);
                });
            }
            out = rx.recv() => match out {
                None => return Ok(()),
                Some(ClusterOut::Subscription(ns, change)) => {
                    match &change {
                        Subscription::Subscribe(c) => {
                            redis::cmd("SSUBSCRIBE").arg(c).exec_async(&mut subscriber).await?;
                        }
                        Subscription::Unsubscribe(c) => {
                            redis::cmd("SUNSUBSCRIBE").arg(c).exec_async(&mut subscriber).await?;
                        }
                        // No patterns in sharded pub/sub.
                        Subscription::PatternSubscribe(_) => {}
                    }
                    subscribed.apply(ns, change);
                }
                Some(ClusterOut::Publish(t)) => {
                    let command = if t.sharded { "SPUBLISH" } else { "PUBLISH" };
                    if let Err(e) = redis::cmd(command)
                        .arg(&t.channel)
                        .arg(&t.payload)
                        .exec_async(&mut publisher)
                        .await
                    {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        return Err(e);
                    }
                    stats.published.fetch_add(1, Ordering::Relaxed);
                }
                Some(ClusterOut::Count(channel, reply)) => {
                    let (_, count): (String, usize) = redis::cmd("PUBSUB")
                        .arg("SHARDNUMSUB")
                        .arg(&channel)
                        .query_async(&mut publisher)
                        .await?;
                    let _ = reply.send(count);
                }
            },
        }
    }
}
