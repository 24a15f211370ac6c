//! The streams mode's writes under load, on a real Redis (`redis-server`
//! on a loopback port of the test's own): many sockets leaving at once
//! all keep their sessions, and the emits per second the writes reach
//! (an ignored test that prints its figure). Skipped, with a message,
//! when `redis-server` is not on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Redis, redis};
use duplex_redis::{RedisAdapter, RedisMode};
use duplex_socketio::recovery::RecoveryConfig;
use duplex_tokio::socketio::{NamespaceHandlers, SocketIo, SocketIoConfig};
use http_body_util::{BodyExt, Full};

async fn server(redis: &Redis, max_sessions: usize) -> (RedisAdapter, SocketIo) {
    server_with(redis, max_sessions, 32).await
}

async fn server_with(
    redis: &Redis,
    max_sessions: usize,
    max_restores: usize,
) -> (RedisAdapter, SocketIo) {
    let config = SocketIoConfig {
        connection_state_recovery: Some(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(60),
            ..RecoveryConfig::default()
        }),
        max_sessions,
        ..SocketIoConfig::default()
    };
    let io = SocketIo::builder(config)
        .namespace("/", |ns: NamespaceHandlers| ns)
        .build();
    let mut config = redis.config(RedisMode::Streams);
    config.max_restores = max_restores;
    let adapter = common::attach(&io, config).await;
    (adapter, io)
}

/// One request to `io` in process (no socket): the status and body.
async fn request(io: &SocketIo, method: &str, uri: &str, body: &str) -> (u16, String) {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let res = tokio::time::timeout(
        Duration::from_secs(5),
        hyper::service::Service::call(io, req),
    )
    .await
    .expect("an answer in time")
    .unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Opens a polling session and connects it to `/`; its Engine.IO sid.
async fn connect(io: &SocketIo) -> String {
    connect_with(io, "40").await.0
}

/// The string value of `"field":"..."` in `text`.
fn field<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    text.split(&format!("\"{field}\":\""))
        .nth(1)?
        .split('"')
        .next()
}

/// Opens a polling session and sends it `connect` (a CONNECT packet); its
/// Engine.IO sid and the CONNECT's answer.
async fn connect_with(io: &SocketIo, connect: &str) -> (String, String) {
    let (status, open) = request(io, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(status, 200, "{open}");
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an open packet with a sid")
        .to_owned();
    let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, ok) = request(io, "POST", &uri, connect).await;
    assert_eq!(status, 200, "{ok}");
    let (_, reply) = request(io, "GET", &uri, "").await;
    assert!(reply.contains("\"pid\""), "a recoverable CONNECT: {reply}");
    (sid, reply)
}

async fn session_keys(redis: &Redis) -> usize {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sio:session:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.len()
}

#[tokio::test]
async fn ten_thousand_sessions_left_at_once_are_all_in_redis_when_shutdown_returns() {
    let Some(redis) = redis().await else {
        return;
    };
    const SOCKETS: usize = 10_000;
    let (adapter, io) = server(&redis, SOCKETS + 10).await;
    for _ in 0..SOCKETS {
        connect(&io).await;
    }
    assert_eq!(session_keys(&redis).await, 0);
    // More than the 4,096 places of the cluster queue, all at once.
    let closed = tokio::time::timeout(Duration::from_secs(30), io.shutdown())
        .await
        .expect("shutdown returns");
    assert_eq!(closed, SOCKETS);
    assert_eq!(session_keys(&redis).await, SOCKETS);
    assert_eq!(adapter.dropped(), 0);
}

/// A reconnection storm with restores one at a time
/// (`max_restores` 1): every restore waits its turn and completes, each
/// client gets its socket back.
#[tokio::test]
async fn restores_beyond_max_restores_wait_their_turn_and_complete() {
    let Some(redis) = redis().await else {
        return;
    };
    const CLIENTS: usize = 20;
    let (_a_adapter, a) = server(&redis, 100).await;
    let mut sessions = Vec::new();
    for _ in 0..CLIENTS {
        let (sid, reply) = connect_with(&a, "40").await;
        let id = field(&reply, "sid").unwrap().to_owned();
        let pid = field(&reply, "pid").unwrap().to_owned();
        sessions.push((sid, id, pid));
    }
    // One broadcast, through the stream: its id is every client's offset.
    a.of("/")
        .emit_args("tick", vec![duplex_tokio::socketio::Value::from(1)])
        .unwrap();
    let mut offsets = Vec::new();
    for (sid, ..) in &sessions {
        let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let (_, tick) = request(&a, "GET", &uri, "").await;
        let offset = tick
            .rsplit(",\"")
            .next()
            .and_then(|rest| rest.split('"').next())
            .filter(|o| o.contains('-'))
            .unwrap_or_else(|| panic!("a tick with its offset: {tick}"))
            .to_owned();
        offsets.push(offset);
    }
    a.shutdown().await;
    assert_eq!(session_keys(&redis).await, CLIENTS);
    let (_b_adapter, b) = server_with(&redis, 100, 1).await;
    let restored = futures_util::future::join_all(sessions.iter().zip(&offsets).map(
        |((_, _, pid), offset)| {
            let connect = format!("40{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}");
            let b = b.clone();
            async move { connect_with(&b, &connect).await.1 }
        },
    ))
    .await;
    for ((_, id, _), reply) in sessions.iter().zip(&restored) {
        assert_eq!(field(reply, "sid"), Some(id.as_str()), "restored: {reply}");
    }
    assert_eq!(session_keys(&redis).await, 0);
}

/// How many emits a second go through the streams loop (each an `XADD`
/// whose id the local delivery waits for, recovery on), from many sockets
/// at once as a busy server's: `cargo test -p duplex-redis --release
/// --test streams_load -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measure, not a check: run by hand"]
async fn emits_per_second_through_the_streams_loop() {
    let Some(redis) = redis().await else {
        return;
    };
    const EMITS: usize = 50_000;
    let (adapter, io) = server(&redis, 1000).await;
    connect(&io).await;
    let started = Instant::now();
    // In bursts the queue takes whole (4,096 places), each waited out so
    // that none is refused and every emit is an XADD.
    for burst in 0..EMITS / 2_000 {
        for i in 0..2_000 {
            io.of("/")
                .emit_args("tick", vec![duplex_tokio::socketio::Value::from(i)])
                .unwrap();
        }
        let target = ((burst + 1) * 2_000) as u64;
        let deadline = Instant::now() + Duration::from_secs(30);
        while adapter.published() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let elapsed = started.elapsed();
    let published = adapter.published();
    println!(
        "streams loop: {published} XADDs in {elapsed:?}: {:.0} emits/s ({} dropped)",
        published as f64 / elapsed.as_secs_f64(),
        adapter.dropped()
    );
    assert_eq!(published, EMITS as u64);
}

/// The ids of the clients with subscriptions of `field` (`sub`, `ssub`).
async fn subscribers(redis: &Redis, field: &str) -> Vec<String> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    list.lines()
        .filter(|line| {
            line.split(' ')
                .any(|kv| kv.starts_with(&format!("{field}=")) && kv != format!("{field}=0"))
        })
        .filter_map(|line| {
            line.split(' ')
                .next()?
                .strip_prefix("id=")
                .map(str::to_owned)
        })
        .collect()
}

/// A subscriber connection that Redis drops is noticed and replaced
/// (the sharded one reported it through its message queue, where it
/// could be lost; now it is a flag), in both subscriber kinds.
#[tokio::test]
async fn a_lost_subscriber_connection_is_noticed_and_resubscribed() {
    let Some(redis) = redis().await else {
        return;
    };
    for (sharded, field) in [(false, "sub"), (true, "ssub")] {
        let io = SocketIo::builder(SocketIoConfig::default())
            .namespace("/", |ns: NamespaceHandlers| ns)
            .build();
        let mut config = redis.config(RedisMode::Streams);
        config.streams.sharded_pubsub = sharded;
        let adapter = common::attach(&io, config).await;
        let before = subscribers(&redis, field).await;
        assert_eq!(before.len(), 1, "one {field} subscriber: {before:?}");
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(&before[0])
            .query_async(&mut conn)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut after = Vec::new();
        while Instant::now() < deadline {
            after = subscribers(&redis, field).await;
            if after.len() == 1 && after != before && adapter.is_connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            after.len() == 1 && after != before,
            "{field}: resubscribed on a new connection: {before:?} -> {after:?}"
        );
        drop(adapter);
        // The next round counts only its own subscriber.
        while !subscribers(&redis, field).await.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
