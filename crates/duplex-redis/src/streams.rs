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

use duplex_socketio::cluster::streams::{RestoreQuery, RestoreStep, stream_name};
use duplex_tokio::socketio::{ClusterOut, ClusterPort, RestoreTicket};
use tokio::sync::mpsc;

use crate::connection::{Abort, COMMAND_TIMEOUT, bounded, timed_out};
use crate::{RedisAdapterConfig, Stats};

/// How long one `XREAD` blocks. Node's ioredis path blocks 100 ms, its
/// node-redis path 5 s; the entries come as soon as they are added either
/// way, this only bounds how long a dead connection goes unnoticed.
const BLOCK: Duration = Duration::from_millis(1000);

/// A stream entry: its id and its fields.
pub(crate) type Entry = (String, Vec<(String, String)>);

/// The streams read and the last id read in each (`$` before the first
/// read), kept across reconnections.
pub(crate) type Positions = Vec<(String, String)>;

pub(crate) fn text(v: &redis::Value) -> Option<String> {
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

/// Where a restore runs: the life's restorer connection, the client to
/// open another, and the flag that ends the life when it is lost.
struct Restorer {
    conn: redis::aio::MultiplexedConnection,
    client: redis::Client,
    lost: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Runs `query` and answers `ticket` (a failure answers `None`: a fresh
/// session). A multiplexed connection does not reconnect by itself and
/// nothing but restores uses this one, so a restore is what finds it
/// closed (Redis's `timeout`, or an idle timeout on the way, while the
/// other connections stay busy): it then ends the life, which opens a new
/// one for the next restores, and runs again on a connection of its own
/// if nothing was taken yet.
async fn restore(mut on: Restorer, stream: String, ticket: RestoreTicket, mut query: RestoreQuery) {
    let mut result = run_restore(&mut on.conn, &stream, &mut query).await;
    if let Err(e) = &result
        && (e.is_connection_dropped() || e.is_io_error() || e.is_timeout())
    {
        on.lost.send_replace(true);
        if matches!(query.step(), RestoreStep::First { .. }) {
            result = match bounded(on.client.get_multiplexed_async_connection()).await {
                Ok(mut conn) => run_restore(&mut conn, &stream, &mut query).await,
                Err(e) => Err(e),
            };
        }
    }
    match result {
        Ok(()) => ticket.answer(query.finish()),
        Err(e) => {
            tracing::debug!(error = %e, "redis streams adapter: restore failed, fresh session");
            ticket.answer(None);
        }
    }
}

/// The commands of one restore, step by step, on `conn`.
async fn run_restore(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    query: &mut RestoreQuery,
) -> redis::RedisResult<()> {
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
                range_cmd.arg(stream).arg(&offset).arg(&offset);
                let mut conn2 = conn.clone();
                // Both at once, as Node's `Promise.all`.
                let (taken, range) = tokio::join!(
                    bounded(pipe.query_async::<(Option<String>,)>(conn)),
                    bounded(range_cmd.query_async::<redis::Value>(&mut conn2)),
                );
                let (stored, range) = (taken?.0, range?);
                query.handle_first(stored.as_deref(), !entries(&range).is_empty());
            }
            RestoreStep::Page { start } => {
                let page = bounded(
                    redis::cmd("XRANGE")
                        .arg(stream)
                        .arg(start.to_string())
                        .arg("+")
                        .arg("COUNT")
                        .arg(1000)
                        .query_async::<redis::Value>(conn),
                )
                .await?;
                query.handle_page(entries(&page));
            }
            RestoreStep::Done => return Ok(()),
        }
    }
}

/// What a life of the streams mode has besides the writer and the
/// subscriber: its reader and what restores run on.
pub(crate) struct StreamsLife {
    /// What the reader reads, or its error (which ends the life).
    pub(crate) entries: mpsc::Receiver<redis::RedisResult<Vec<(String, Entry)>>>,
    /// The reader goes with this life, however it ends.
    _reader: Abort,
    /// Restores read whole streams: on a connection of their own, so that
    /// a reconnection storm never puts the writes behind their XRANGEs.
    restorer: redis::aio::MultiplexedConnection,
    /// To open another restorer for a restore that found it closed.
    client: redis::Client,
    /// Set when a restore lost the restorer's connection: the life ends
    /// ([`StreamsLife::restorer_lost`]).
    lost: Arc<tokio::sync::watch::Sender<bool>>,
    /// At most `max_restores` at once.
    permits: Arc<tokio::sync::Semaphore>,
}

impl StreamsLife {
    /// Resolves the first life's positions (on `writer`), connects the
    /// restorer and starts the reader from `positions`, the streams read
    /// and the last entry id read in each, kept across lives so that a
    /// reconnection resumes where the reading stopped.
    pub(crate) async fn start(
        client: &redis::Client,
        writer: &mut redis::aio::MultiplexedConnection,
        positions: &mut Positions,
        config: &RedisAdapterConfig,
    ) -> redis::RedisResult<Self> {
        for (stream, last) in positions.iter_mut().filter(|(_, l)| l == "$") {
            // The first life reads from the stream's end as Node does, but
            // from an explicit id: `$` would be resolved only when the
            // first XREAD reaches Redis, and an entry this node adds
            // before that would never come back, leaving its local
            // delivery waiting.
            let newest = bounded(
                redis::cmd("XREVRANGE")
                    .arg(&*stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async::<redis::Value>(writer),
            )
            .await?;
            *last = entries(&newest)
                .into_iter()
                .next()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
        }
        let restorer = bounded(client.get_multiplexed_async_connection()).await?;
        let (tx, rx) = mpsc::channel(16);
        let reader = tokio::spawn(read(
            client.clone(),
            positions.clone(),
            config.read_count,
            tx,
        ));
        Ok(Self {
            entries: rx,
            _reader: Abort(reader),
            restorer,
            client: client.clone(),
            lost: Arc::new(tokio::sync::watch::channel(false).0),
            permits: Arc::new(tokio::sync::Semaphore::new(config.max_restores.max(1))),
        })
    }

    /// Set once a restore lost the restorer's connection; the loop then
    /// ends the life, as for the other connections.
    pub(crate) fn restorer_lost(&self) -> tokio::sync::watch::Receiver<bool> {
        self.lost.subscribe()
    }

    /// Runs a restore off the loop (entries keep coming while it runs),
    /// once one of the permits is free; none in [`COMMAND_TIMEOUT`]: the
    /// CONNECT goes on as a fresh one.
    pub(crate) fn restore(
        &self,
        ticket: RestoreTicket,
        query: RestoreQuery,
        config: &RedisAdapterConfig,
    ) {
        let stream = stream_name(
            &config.streams.stream,
            config.streams.stream_count,
            ticket.namespace(),
        );
        let on = Restorer {
            conn: self.restorer.clone(),
            client: self.client.clone(),
            lost: self.lost.clone(),
        };
        let permits = self.permits.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(COMMAND_TIMEOUT, permits.acquire_owned()).await {
                Ok(Ok(_permit)) => restore(on, stream, ticket, query).await,
                _ => ticket.answer(None),
            }
        });
    }
}

/// Hands what the reader read to the nodes, and moves `positions` past
/// it; `Ok(false)` once the server is gone, an error when the reader
/// failed (the life ends).
pub(crate) fn deliver(
    read: Option<redis::RedisResult<Vec<(String, Entry)>>>,
    port: &ClusterPort,
    positions: &mut Positions,
    stats: &Stats,
) -> redis::RedisResult<bool> {
    let batch = match read {
        Some(batch) => batch?,
        None => return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()),
    };
    for (stream, (id, fields)) in batch {
        stats.received.fetch_add(1, Ordering::Relaxed);
        if !port.deliver_entry(&id, &fields) {
            return Ok(false);
        }
        if let Some((_, last)) = positions.iter_mut().find(|(s, _)| *s == stream) {
            *last = id;
        }
    }
    Ok(true)
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
