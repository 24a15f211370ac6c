//! The Redis task of a server: its connections, one life at a time, with
//! reconnection and resubscription. Every mode has a writer (PUBLISH,
//! and the streams mode's XADD and SET, in pipelines) and a subscriber;
//! the streams mode adds its reader and restores.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use duplex_socketio::cluster::Subscription;
use duplex_tokio::socketio::{ClusterOut, ClusterPort};
use tokio::sync::mpsc;

use crate::connection::{Message, Subscriber, Writes, batch, bounded};
use crate::streams::{Positions, StreamsLife};
use crate::{RedisAdapterConfig, RedisMode, Stats};

/// The channels and patterns subscribed to, each with its namespace.
#[derive(Default)]
pub(crate) struct Subscribed {
    channels: HashMap<String, String>,
    patterns: HashMap<String, String>,
}

impl Subscribed {
    /// The namespace a message is for, by its channel or its pattern.
    fn namespace(&self, msg: &Message) -> Option<&String> {
        match &msg.pattern {
            Some(p) => self.patterns.get(p),
            None => self.channels.get(&msg.channel),
        }
    }

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
    let mut positions: Positions = Vec::new();
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
        let result = connected(
            &client,
            &mut subscribed,
            &mut port,
            &stats,
            &config,
            &mut positions,
            on_up,
        )
        .await;
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

/// One life of the connections of any mode; `Ok` when the server is gone.
/// `subscribed` are the channels and patterns, `positions` the streams
/// mode's read positions, both kept across lives.
async fn connected(
    client: &redis::Client,
    subscribed: &mut Subscribed,
    port: &mut ClusterPort,
    stats: &Arc<Stats>,
    config: &RedisAdapterConfig,
    positions: &mut Positions,
    on_up: impl FnOnce(),
) -> redis::RedisResult<()> {
    // Sharded pub/sub: SSUBSCRIBE, and `PUBSUB SHARDNUMSUB` for counts.
    let sharded = match config.mode {
        RedisMode::Classic => false,
        RedisMode::Sharded(_) => true,
        RedisMode::Streams => config.streams.sharded_pubsub,
    };
    let mut writer = bounded(client.get_multiplexed_async_connection()).await?;
    let mut streams = match config.mode {
        RedisMode::Streams => {
            Some(StreamsLife::start(client, &mut writer, positions, config).await?)
        }
        _ => None,
    };
    let mut restorer_lost = streams.as_ref().map(StreamsLife::restorer_lost);
    let (msg_tx, mut messages) = mpsc::channel(config.queue.max(1));
    let (gone_tx, mut gone) = tokio::sync::watch::channel(false);
    let (mut subscriber, _forward) =
        Subscriber::connect(client, sharded, msg_tx, gone_tx, stats).await?;
    for channel in subscribed.channels.keys() {
        subscriber
            .change(&Subscription::Subscribe(channel.clone()))
            .await?;
    }
    for pattern in subscribed.patterns.keys() {
        subscriber
            .change(&Subscription::PatternSubscribe(pattern.clone()))
            .await?;
    }
    stats.connected.store(true, Ordering::Relaxed);
    on_up();
    loop {
        tokio::select! {
            read = async {
                match streams.as_mut() {
                    Some(life) => life.entries.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if !crate::streams::deliver(read, port, positions, stats)? {
                    return Ok(());
                }
            }
            // Set, or its sender gone with the connection.
            _ = gone.changed() => return Err(reset()),
            _ = async {
                match restorer_lost.as_mut() {
                    Some(lost) => lost.changed().await,
                    None => std::future::pending().await,
                }
            } => return Err(reset()),
            msg = messages.recv() => {
                let Some(msg) = msg else { return Err(reset()) };
                stats.received.fetch_add(1, Ordering::Relaxed);
                let Some(namespace) = subscribed.namespace(&msg) else { continue };
                if !port.deliver(namespace, &msg.channel, &msg.payload) {
                    return Ok(());
                }
            }
            out = port.recv() => {
                let Some(first) = out else { return Ok(()) };
                let mut writes = Writes::default();
                let mut restores = Vec::new();
                for out in batch(first, port) {
                    match out {
                        ClusterOut::Subscription(ns, change) => {
                            // In order: what was queued before it goes first.
                            writes.send(&mut writer, port, stats).await?;
                            subscriber.change(&change).await?;
                            subscribed.apply(ns, change);
                        }
                        ClusterOut::Restore(ticket, query) => restores.push((ticket, query)),
                        ClusterOut::Written(done) => writes.written.push(done),
                        other => writes.add(other, sharded),
                    }
                }
                writes.send(&mut writer, port, stats).await?;
                // After the writes queued before them: a session kept
                // then is found.
                for (ticket, query) in restores {
                    match &streams {
                        Some(life) => life.restore(ticket, query, config),
                        None => ticket.answer(None),
                    }
                }
            }
        }
    }
}

fn reset() -> redis::RedisError {
    std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()
}
