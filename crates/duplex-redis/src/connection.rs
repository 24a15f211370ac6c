//! The building blocks of every mode's connections: bounded waits, the
//! subscriber (plain or sharded pub/sub), and the writer's pipelines.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use duplex_socketio::cluster::{StreamAdd, Subscription, Transmit};
use duplex_tokio::socketio::{ClusterOut, ClusterPort};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::Stats;

/// The longest wait for a command's answer (beyond an `XREAD`'s block).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn timed_out() -> redis::RedisError {
    std::io::Error::from(std::io::ErrorKind::TimedOut).into()
}

pub(crate) async fn bounded<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

/// Most commands one pipeline carries: what is queued beyond it waits for
/// the next round trip.
const BATCH: usize = 1024;

/// `first` and what else is queued now (up to [`BATCH`]): carried out
/// together, their writes in one round trip.
pub(crate) fn batch(first: ClusterOut, port: &mut ClusterPort) -> Vec<ClusterOut> {
    let mut batch = vec![first];
    while batch.len() < BATCH {
        let Some(out) = port.try_recv() else { break };
        batch.push(out);
    }
    batch
}

/// What one answer of a pipeline is for.
enum Reply {
    /// A broadcast's entry: its id goes back to the node.
    Append(String, Option<u64>),
    Publish,
    Persist,
    Count(tokio::sync::oneshot::Sender<usize>),
}

/// The `XADD <channel> MAXLEN ~ <max_len> * <fields>` of a stream entry.
pub(crate) fn xadd(channel: &str, add: &StreamAdd) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(channel)
        .arg("MAXLEN")
        .arg("~")
        .arg(add.max_len)
        .arg("*");
    for (k, v) in &add.fields {
        cmd.arg(k).arg(v);
    }
    cmd
}

/// The `PUBLISH` (`SPUBLISH` when sharded) of a message.
pub(crate) fn publish(t: &Transmit) -> redis::Cmd {
    let mut cmd = redis::cmd(if t.sharded { "SPUBLISH" } else { "PUBLISH" });
    cmd.arg(&t.channel).arg(&t.payload);
    cmd
}

/// The writes of a batch, sent as one pipeline (not a transaction: each
/// command stands alone, as when they were sent one at a time).
#[derive(Default)]
pub(crate) struct Writes {
    pipe: redis::Pipeline,
    replies: Vec<Reply>,
    /// Answered once everything before them is written.
    pub(crate) written: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Writes {
    /// Adds the command of `out`; `sharded`: counts with `SHARDNUMSUB`.
    pub(crate) fn add(&mut self, out: ClusterOut, sharded: bool) {
        match out {
            ClusterOut::Append(namespace, t) => {
                let Some(add) = &t.stream else { return };
                self.pipe.add_command(xadd(&t.channel, add));
                self.replies.push(Reply::Append(namespace, add.token));
            }
            ClusterOut::Publish(t) => {
                self.pipe.add_command(publish(&t));
                self.replies.push(Reply::Publish);
            }
            ClusterOut::Persist { key, value, ttl } => {
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                self.pipe.cmd("SET").arg(&key).arg(&value).arg("PX").arg(ms);
                self.replies.push(Reply::Persist);
            }
            // The subscribers of the request channel (the streams mode's
            // 0.2.x counts by heartbeats and never asks).
            ClusterOut::Count(channel, reply) => {
                let which = if sharded { "SHARDNUMSUB" } else { "NUMSUB" };
                self.pipe.cmd("PUBSUB").arg(which).arg(&channel);
                self.replies.push(Reply::Count(reply));
            }
            _ => {}
        }
    }

    /// Sends what was added in one round trip and hands each answer on;
    /// an error of the connection (or no answer in [`COMMAND_TIMEOUT`])
    /// fails every write of the batch and ends the life. A command Redis
    /// refuses fails alone.
    pub(crate) async fn send(
        &mut self,
        writer: &mut redis::aio::MultiplexedConnection,
        port: &ClusterPort,
        stats: &Stats,
    ) -> redis::RedisResult<()> {
        let replies = std::mem::take(&mut self.replies);
        let pipe = std::mem::take(&mut self.pipe);
        let answers = if replies.is_empty() {
            Ok(Vec::new())
        } else {
            bounded(redis::aio::ConnectionLike::req_packed_commands(
                writer,
                &pipe,
                0,
                replies.len(),
            ))
            .await
        };
        let (answers, failure) = match answers {
            Ok(a) => (a, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut answers = answers.into_iter();
        for reply in replies {
            let answer = answers
                .next()
                .filter(|a| !matches!(a, redis::Value::ServerError(_)));
            if answer.is_none() {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            match reply {
                Reply::Append(namespace, token) => {
                    let id = answer.as_ref().and_then(crate::streams::text);
                    if id.is_some() {
                        stats.published.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(token) = token {
                        port.published(&namespace, token, id.as_deref());
                    }
                }
                Reply::Publish => {
                    if answer.is_some() {
                        stats.published.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Reply::Persist => {}
                Reply::Count(reply) => {
                    // `[channel, count]`; anything else drops the sender,
                    // which fails the request.
                    if let Some((_, count)) = answer
                        .and_then(|a| redis::from_owned_redis_value::<(String, usize)>(a).ok())
                    {
                        let _ = reply.send(count);
                    }
                }
            }
        }
        if failure.is_none() {
            for done in self.written.drain(..) {
                let _ = done.send(());
            }
        }
        // Dropped on failure: the writes they wait for are lost.
        self.written.clear();
        failure.map_or(Ok(()), Err)
    }
}

/// Aborts a task of one life when the life ends, however it ends.
pub(crate) struct Abort(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A message received on a channel (or through a pattern).
pub(crate) struct Message {
    pub(crate) channel: String,
    /// The pattern it matched, when it came through one.
    pub(crate) pattern: Option<String>,
    pub(crate) payload: Vec<u8>,
}

/// The subscriber of every mode: SUBSCRIBE and PSUBSCRIBE on a pub/sub
/// connection, or SSUBSCRIBE on a RESP3 connection whose shard messages
/// arrive as pushes (the sharded mode, and the streams mode's
/// `useShardedPubSub`): the `redis` crate's pub/sub connection has no
/// SSUBSCRIBE.
pub(crate) enum Subscriber {
    Plain(redis::aio::PubSubSink),
    Sharded(redis::aio::MultiplexedConnection),
}

impl Subscriber {
    /// Connects; what arrives goes to `tx` (sharded: bounded, beyond it
    /// messages are dropped and counted, never buffered without end), and
    /// `gone` is set when the connection is lost: a flag rather than a
    /// message, so that a full queue cannot lose it. The task returned
    /// (plain pub/sub) forwards until the life ends.
    pub(crate) async fn connect(
        client: &redis::Client,
        sharded: bool,
        tx: mpsc::Sender<Message>,
        gone: tokio::sync::watch::Sender<bool>,
        stats: &Arc<Stats>,
    ) -> redis::RedisResult<(Self, Option<Abort>)> {
        if sharded {
            let stats = stats.clone();
            let sender = move |info: redis::PushInfo| {
                let message = match info.kind {
                    redis::PushKind::Disconnection => {
                        gone.send_replace(true);
                        return Ok(());
                    }
                    redis::PushKind::SMessage => {
                        let mut data = info.data.into_iter();
                        let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                            return Ok(());
                        };
                        match (
                            redis::from_redis_value::<String>(&channel),
                            redis::from_redis_value::<Vec<u8>>(&payload),
                        ) {
                            (Ok(channel), Ok(payload)) => Message {
                                channel,
                                pattern: None,
                                payload,
                            },
                            _ => return Ok(()),
                        }
                    }
                    _ => return Ok(()),
                };
                tx.try_send(message).map_err(|_| {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                })
            };
            let config = redis::AsyncConnectionConfig::new().set_push_sender(sender);
            let conn =
                bounded(client.get_multiplexed_async_connection_with_config(&config)).await?;
            return Ok((Subscriber::Sharded(conn), None));
        }
        let (sink, mut stream) = bounded(client.get_async_pubsub()).await?.split();
        let forward = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let message = Message {
                    channel: msg.get_channel_name().to_owned(),
                    pattern: if msg.from_pattern() {
                        msg.get_pattern().ok()
                    } else {
                        None
                    },
                    payload: msg.get_payload_bytes().to_vec(),
                };
                if tx.send(message).await.is_err() {
                    return;
                }
            }
            gone.send_replace(true);
        });
        Ok((Subscriber::Plain(sink), Some(Abort(forward))))
    }

    pub(crate) async fn change(&mut self, change: &Subscription) -> redis::RedisResult<()> {
        match (self, change) {
            (Subscriber::Plain(sink), Subscription::Subscribe(c)) => {
                bounded(sink.subscribe(c)).await
            }
            (Subscriber::Plain(sink), Subscription::PatternSubscribe(p)) => {
                bounded(sink.psubscribe(p)).await
            }
            (Subscriber::Plain(sink), Subscription::Unsubscribe(c)) => {
                bounded(sink.unsubscribe(c)).await
            }
            (Subscriber::Sharded(conn), Subscription::Subscribe(c)) => {
                bounded(redis::cmd("SSUBSCRIBE").arg(c).exec_async(conn)).await
            }
            (Subscriber::Sharded(conn), Subscription::Unsubscribe(c)) => {
                bounded(redis::cmd("SUNSUBSCRIBE").arg(c).exec_async(conn)).await
            }
            // No patterns in sharded pub/sub.
            (Subscriber::Sharded(_), Subscription::PatternSubscribe(_)) => Ok(()),
        }
    }
}
