//! The streams mode's connections (`@socket.io/redis-streams-adapter`
//! 0.3.x or 0.2.x): the stream(s) carry the cluster messages; a reader of
//! its own (`XREAD BLOCK` needs a connection to itself) follows them from
//! their end, a writer adds entries (`XADD .. MAXLEN ~`), keeps sessions
//! (`SET .. PX`), runs restores (`MULTI GET DEL EXEC`, `XRANGE`),
//! PUBLISHes 0.3.x's requests and responses and asks the server count
//! (`PUBSUB NUMSUB`), and a subscriber receives them. Every wait is
//! bounded: a command that gets no answer in [`COMMAND_TIMEOUT`] fails the
//! connection, which reconnects as the other modes do.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use duplex_socketio::cluster::Subscription;
use duplex_socketio::cluster::streams::{RestoreQuery, RestoreStep, stream_name};
use duplex_tokio::socketio::{ClusterOut, ClusterPort, RestoreTicket};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::transport::Subscribed;
use crate::{RedisAdapterConfig, Stats};

/// The longest wait for a command's answer (beyond an `XREAD`'s block).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one `XREAD` blocks. Node's ioredis path blocks 100 ms, its
/// node-redis path 5 s; the entries come as soon as they are added either
/// way, this only bounds how long a dead connection goes unnoticed.
const BLOCK: Duration = Duration::from_millis(1000);

/// A stream entry: its id and its fields.
pub(crate) type Entry = (String, Vec<(String, String)>);

/// The streams read and the last id read in each (`$` before the first
/// read), kept across reconnections.
pub(crate) type Positions = Vec<(String, String)>;

fn timed_out() -> redis::RedisError {
    std::io::Error::from(std::io::ErrorKind::TimedOut).into()
}

async fn bounded<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// The entries of an `XRANGE` reply (`[[id, [field, value, ...]], ...]`);
/// malformed ones are skipped.
pub(crate) fn entries(v: &redis::Value) -> Vec<Entry> {
    let redis::Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let redis::Value::Array(pair) = item else {
                return None;
            };
            let [id, redis::Value::Array(flat)] = pair.as_slice() else {
                return None;
            };
            let fields = flat
                .chunks_exact(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((text(k)?, text(v)?)),
                    _ => None,
                })
                .collect();
            Some((text(id)?, fields))
        })
        .collect()
}

/// The entries of an `XREAD` reply, each with its stream
/// (`[[name, entries], ...]`, or a map in RESP3; nil when the block ended
/// empty).
fn read_entries(v: &redis::Value) -> Vec<(String, Entry)> {
    let named = |name: &redis::Value, list: &redis::Value| {
        let name = text(name).unwrap_or_default();
        entries(list)
            .into_iter()
            .map(move |e| (name.clone(), e))
            .collect::<Vec<_>>()
    };
    match v {
        redis::Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                redis::Value::Array(pair) => match pair.as_slice() {
                    [name, list] => named(name, list),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            })
            .collect(),
        redis::Value::Map(streams) => streams
            .iter()
            .flat_map(|(name, list)| named(name, list))
            .collect(),
        _ => Vec::new(),
    }
}

/// Follows the streams from their positions, sending what it reads;
/// ends at the first error (sent too) or when the receiver is gone.
async fn read(
    client: redis::Client,
    mut positions: Positions,
    count: usize,
    tx: mpsc::Sender<redis::RedisResult<Vec<(String, Entry)>>>,
) {
    let mut reader = match bounded(client.get_multiplexed_async_connection()).await {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    loop {
        // One connection for every stream: Node's one client per stream
        // only keeps them from blocking each other, which one XREAD over
        // all of them does too.
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(u64::MAX))
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS");
        for (stream, _) in &positions {
            cmd.arg(stream);
        }
        for (_, last) in &positions {
            cmd.arg(last);
        }
        let reply = tokio::time::timeout(
            BLOCK + COMMAND_TIMEOUT,
            cmd.query_async::<redis::Value>(&mut reader),
        )
        .await
        .unwrap_or_else(|_| Err(timed_out()));
        let batch = match reply {
            Ok(v) => read_entries(&v),
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        for (stream, (id, _)) in &batch {
            if let Some((_, last)) = positions.iter_mut().find(|(s, _)| s == stream) {
                last.clone_from(id);
            }
        }
        if !batch.is_empty() && tx.send(Ok(batch)).await.is_err() {
            return;
        }
    }
}

/// Runs `query` on `conn` and answers `ticket` (a failure answers `None`:
/// a fresh session).
async fn restore(
    mut conn: redis::aio::MultiplexedConnection,
    stream: String,
    ticket: RestoreTicket,
    mut query: RestoreQuery,
) {
    let result: redis::RedisResult<()> = async {
        loop {
            match query.step().clone() {
                RestoreStep::First { key, offset } => {
                    let offset = offset.to_string();
                    let mut pipe = redis::pipe();
                    pipe.atomic()
                        .cmd("GET")
                        .arg(&key)
                        .cmd("DEL")
                        .arg(&key)
                        .ignore();
                    let mut range_cmd = redis::cmd("XRANGE");
                    range_cmd.arg(&stream).arg(&offset).arg(&offset);
                    let mut conn2 = conn.clone();
                    // Both at once, as Node's `Promise.all`.
                    let (taken, range) = tokio::join!(
                        bounded(pipe.query_async::<(Option<String>,)>(&mut conn)),
                        bounded(range_cmd.query_async::<redis::Value>(&mut conn2)),
                    );
                    let (stored, range) = (taken?.0, range?);
                    query.handle_first(stored.as_deref(), !entries(&range).is_empty());
                }
                RestoreStep::Page { start } => {
                    let page = bounded(
                        redis::cmd("XRANGE")
                            .arg(&stream)
                            .arg(start.to_string())
                            .arg("+")
                            .arg("COUNT")
                            .arg(1000)
                            .query_async::<redis::Value>(&mut conn),
                    )
                    .await?;
                    query.handle_page(entries(&page));
                }
                RestoreStep::Done => return Ok(()),
            }
        }
    }
    .await;
    match result {
        Ok(()) => ticket.answer(query.finish()),
        Err(e) => {
            tracing::debug!(error = %e, "redis streams adapter: restore failed, fresh session");
            ticket.answer(None);
        }
    }
}

/// One life of the streams mode's connections; `Ok` when the server is
/// gone. `positions` are the streams read and the last entry id read in
/// each, kept across lives so that a reconnection resumes where the
/// reading stopped; `subscribed` the pub/sub channels (0.3.x).
pub(crate) async fn connected_streams(
    client: &redis::Client,
    subscribed: &mut Subscribed,
    port: &mut ClusterPort,
    stats: &Arc<Stats>,
    config: &RedisAdapterConfig,
    positions: &mut Positions,
    on_up: impl FnOnce(),
) -> redis::RedisResult<()> {
    let mut writer = bounded(client.get_multiplexed_async_connection()).await?;
    // Restores read whole streams: on a connection of their own, so that
    // a reconnection storm never puts the writes behind its XRANGEs, and
    // at most `max_restores` at once.
    let restorer = bounded(client.get_multiplexed_async_connection()).await?;
    let restores = Arc::new(tokio::sync::Semaphore::new(config.max_restores.max(1)));
    for (stream, last) in positions.iter_mut().filter(|(_, l)| l == "$") {
        // The first life reads from the stream's end as Node does, but
        // from an explicit id: `$` would be resolved only when the first
        // XREAD reaches Redis, and an entry this node adds before that
        // would never come back, leaving its local delivery waiting.
        let newest = bounded(
            redis::cmd("XREVRANGE")
                .arg(&*stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async::<redis::Value>(&mut writer),
        )
        .await?;
        *last = entries(&newest)
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
    }
    // 0.3.x's requests and responses; 0.2.x subscribes to nothing.
    let (msg_tx, mut messages) = mpsc::channel(config.queue.max(1));
    // Set (never queued, so never lost) when the subscriber's connection
    // is gone.
    let (gone_tx, mut gone) = tokio::sync::watch::channel(false);
    let (mut subscriber, _forward) = Subscriber::connect(
        client,
        config.streams.sharded_pubsub,
        msg_tx,
        gone_tx,
        stats,
    )
    .await?;
    for channel in subscribed.channels.keys() {
        subscriber
            .change(&Subscription::Subscribe(channel.clone()))
            .await?;
    }
    let (tx, mut rx) = mpsc::channel(16);
    let reader = tokio::spawn(read(
        client.clone(),
        positions.clone(),
        config.read_count,
        tx,
    ));
    // The reader goes with this life, however it ends.
    let _reader = Abort(reader);
    stats.connected.store(true, Ordering::Relaxed);
    on_up();
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let batch = match batch {
                    Some(Ok(batch)) => batch,
                    Some(Err(e)) => return Err(e),
                    None => return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()),
                };
                for (stream, (id, fields)) in batch {
                    stats.received.fetch_add(1, Ordering::Relaxed);
                    if !port.deliver_entry(&id, &fields) {
                        return Ok(());
                    }
                    if let Some((_, last)) = positions.iter_mut().find(|(s, _)| *s == stream) {
                        *last = id;
                    }
                }
            }
            // Set, or its sender gone with the connection.
            _ = gone.changed() => {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
            }
            msg = messages.recv() => {
                let Some((channel, payload)) = msg else {
                    return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
                };
                stats.received.fetch_add(1, Ordering::Relaxed);
                let Some(namespace) = subscribed.channels.get(&channel) else { continue };
                if !port.deliver(namespace, &channel, &payload) {
                    return Ok(());
                }
            }
            out = port.recv() => {
                let Some(first) = out else { return Ok(()) };
                // What else is queued now goes with it, in one round trip.
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    let Some(out) = port.try_recv() else { break };
                    batch.push(out);
                }
                let mut writes = Writes::default();
                let mut after = Vec::new();
                for out in batch {
                    match out {
                        ClusterOut::Subscription(ns, change) => {
                            // In order: what was queued before it goes first.
                            writes.send(&mut writer, port, stats).await?;
                            subscriber.change(&change).await?;
                            subscribed.apply(ns, change);
                        }
                        ClusterOut::Restore(ticket, query) => after.push((ticket, query)),
                        ClusterOut::Written(done) => writes.written.push(done),
                        other => writes.add(other, config.streams.sharded_pubsub),
                    }
                }
                writes.send(&mut writer, port, stats).await?;
                for (ticket, query) in after {
                    let stream = stream_name(
                        &config.streams.stream,
                        config.streams.stream_count,
                        ticket.namespace(),
                    );
                    // Off the loop (entries keep coming while it runs), on a
                    // connection of their own and a few at a time: a
                    // reconnection storm must not hold up the writes.
                    let (conn, permits) = (restorer.clone(), restores.clone());
                    tokio::spawn(async move {
                        match tokio::time::timeout(COMMAND_TIMEOUT, permits.acquire_owned()).await {
                            Ok(Ok(_permit)) => restore(conn, stream, ticket, query).await,
                            // Too many waiting: the CONNECT goes on as a fresh one.
                            _ => ticket.answer(None),
                        }
                    });
                }
            }
        }
    }
}

/// Most commands one pipeline carries: what is queued beyond it waits for
/// the next round trip.
const BATCH: usize = 1024;

/// What one answer of a pipeline is for.
enum Reply {
    /// A broadcast's entry: its id goes back to the node.
    Append(String, Option<u64>),
    Publish,
    Persist,
    Count(tokio::sync::oneshot::Sender<usize>),
}

/// The writes of a batch, sent as one pipeline (not a transaction: each
/// command stands alone, as when they were sent one at a time).
#[derive(Default)]
struct Writes {
    pipe: redis::Pipeline,
    replies: Vec<Reply>,
    /// Answered once everything before them is written.
    written: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Writes {
    fn add(&mut self, out: ClusterOut, sharded_pubsub: bool) {
        match out {
            ClusterOut::Append(namespace, t) => {
                let Some(add) = t.stream else { return };
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&t.channel)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(add.max_len)
                    .arg("*");
                for (k, v) in &add.fields {
                    cmd.arg(k).arg(v);
                }
                self.pipe.add_command(cmd);
                self.replies.push(Reply::Append(namespace, add.token));
            }
            ClusterOut::Publish(t) => {
                let command = if t.sharded { "SPUBLISH" } else { "PUBLISH" };
                self.pipe.cmd(command).arg(&t.channel).arg(&t.payload);
                self.replies.push(Reply::Publish);
            }
            ClusterOut::Persist { key, value, ttl } => {
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                self.pipe.cmd("SET").arg(&key).arg(&value).arg("PX").arg(ms);
                self.replies.push(Reply::Persist);
            }
            // 0.3.x: the subscribers of `<prefix>#<nsp>#` (0.2.x counts
            // by heartbeats and never asks).
            ClusterOut::Count(channel, reply) => {
                let which = if sharded_pubsub {
                    "SHARDNUMSUB"
                } else {
                    "NUMSUB"
                };
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
    async fn send(
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
                    let id = answer.as_ref().and_then(text);
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
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A message received on a channel.
type Message = (String, Vec<u8>);

/// The subscriber of 0.3.x's channels: SUBSCRIBE on a pub/sub connection,
/// or SSUBSCRIBE on a RESP3 connection whose shard messages arrive as
/// pushes (`useShardedPubSub`).
enum Subscriber {
    Plain(redis::aio::PubSubSink),
    Sharded(redis::aio::MultiplexedConnection),
}

impl Subscriber {
    /// Connects; what arrives goes to `tx` (bounded: beyond it messages
    /// are dropped and counted, never buffered without end), and `gone`
    /// is set when the connection is lost. The task returned (plain
    /// pub/sub) forwards until the life ends.
    async fn connect(
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
                            (Ok(c), Ok(p)) => (c, p),
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
                let message = (
                    msg.get_channel_name().to_owned(),
                    msg.get_payload_bytes().to_vec(),
                );
                if tx.send(message).await.is_err() {
                    return;
                }
            }
            gone.send_replace(true);
        });
        Ok((Subscriber::Plain(sink), Some(Abort(forward))))
    }

    async fn change(&mut self, change: &Subscription) -> redis::RedisResult<()> {
        match (self, change) {
            (Subscriber::Plain(sink), Subscription::Subscribe(c)) => {
                bounded(sink.subscribe(c)).await
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
            // No patterns in the streams adapter.
            (_, Subscription::PatternSubscribe(_)) => Ok(()),
        }
    }
}

/// While Redis is away: what waits for an answer gets one at once (a
/// broadcast goes to the local sockets without offset, a restore finds
/// nothing), the rest is dropped and counted.
pub(crate) fn away(port: &ClusterPort, out: ClusterOut, stats: &Stats) {
    match out {
        ClusterOut::Append(namespace, t) => {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(token) = t.stream.and_then(|s| s.token) {
                port.published(&namespace, token, None);
            }
        }
        ClusterOut::Restore(ticket, _) => ticket.answer(None),
        ClusterOut::Persist { .. } => {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_parse_and_malformed_entries_are_skipped() {
        let entry = redis::Value::Array(vec![
            bulk("1-0"),
            redis::Value::Array(vec![bulk("uid"), bulk("a"), bulk("nsp"), bulk("/")]),
        ]);
        let bad = redis::Value::Array(vec![bulk("2-0")]);
        let range = redis::Value::Array(vec![entry.clone(), bad]);
        assert_eq!(
            entries(&range),
            vec![(
                "1-0".to_owned(),
                vec![
                    ("uid".to_owned(), "a".to_owned()),
                    ("nsp".to_owned(), "/".to_owned())
                ]
            )]
        );
        let read = redis::Value::Array(vec![redis::Value::Array(vec![
            bulk("socket.io"),
            redis::Value::Array(vec![entry]),
        ])]);
        assert_eq!(read_entries(&read).len(), 1);
        assert_eq!(read_entries(&read)[0].0, "socket.io");
        assert!(read_entries(&redis::Value::Nil).is_empty());
    }
}
