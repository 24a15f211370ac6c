//! The Redis task of a server: its connections, one life at a time, with
//! reconnection and resubscription.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use duplex_socketio::cluster::Subscription;
use duplex_tokio::socketio::{ClusterOut, ClusterPort};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::{RedisAdapterConfig, RedisMode, Stats};

/// The channels and patterns subscribed to, each with its namespace.
#[derive(Default)]
pub(crate) struct Subscribed {
    pub(crate) channels: HashMap<String, String>,
    patterns: HashMap<String, String>,
}

impl Subscribed {
    pub(crate) fn apply(&mut self, namespace: String, change: Subscription) {
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

/// The task of one server: connects, serves, and reconnects with
/// backoff until the server is gone.
pub(crate) async fn run(
    client: redis::Client,
    mut port: ClusterPort,
    config: RedisAdapterConfig,
    stats: Arc<Stats>,
) {
    let mut subscribed = Subscribed::default();
    for (ns, s) in port.take_initial_subscriptions() {
        subscribed.apply(ns, s);
    }
    let mut backoff = config.reconnect_min;
    // The streams mode's read positions (one per stream the namespaces
    // use), kept across reconnections.
    let mut positions: crate::streams::Positions = Vec::new();
    for namespace in &config.namespaces {
        let stream = duplex_socketio::cluster::streams::stream_name(
            &config.streams.stream,
            config.streams.stream_count,
            namespace,
        );
        if !positions.iter().any(|(s, _)| *s == stream) {
            positions.push((stream, "$".to_owned()));
        }
    }
    loop {
        let on_up = || backoff = config.reconnect_min;
        let result = match config.mode {
            RedisMode::Classic => {
                connected(&client, &mut subscribed, &mut port, &stats, on_up).await
            }
            RedisMode::Sharded(_) => {
                connected_sharded(
                    &client,
                    &mut subscribed,
                    &mut port,
                    &stats,
                    config.queue,
                    on_up,
                )
                .await
            }
            RedisMode::Streams => {
                crate::streams::connected_streams(
                    &client,
                    &mut subscribed,
                    &mut port,
                    &stats,
                    &config,
                    &mut positions,
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
                out = port.recv() => match out {
                    None => return,
                    Some(ClusterOut::Subscription(ns, s)) => subscribed.apply(ns, s),
                    Some(ClusterOut::Publish(_)) => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    // Dropping the sender fails the request: no count without Redis.
                    Some(ClusterOut::Count(..)) => {}
                    Some(other) => crate::streams::away(&port, other, &stats),
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
    port: &mut ClusterPort,
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
                if !port.deliver(namespace, msg.get_channel_name(), msg.get_payload_bytes()) {
                    return Ok(());
                }
            }
            out = port.recv() => match out {
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
                Some(_) => {}
            },
        }
    }
}

/// One life of the sharded mode's connections (RESP3); `Ok` when the server
/// is gone.
async fn connected_sharded(
    client: &redis::Client,
    subscribed: &mut Subscribed,
    port: &mut ClusterPort,
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
                if !port.deliver(namespace, &channel, &payload) {
                    return Ok(());
                }
            }
            out = port.recv() => match out {
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
                Some(_) => {}
            },
        }
    }
}
