//! The streams mode across duplex servers on a real Redis, in both wire
//! versions of `@socket.io/redis-streams-adapter` (0.3.x over pub/sub,
//! also with `useShardedPubSub` and `streamCount`; 0.2.x in the stream):
//! a broadcast reaches the other server's client through the stream,
//! fetchSockets, serverSideEmit with acks and broadcasts with acks reach
//! the other server and come back, and a
//! server that shuts down stops being counted at once (0.3.x: its
//! channels are unsubscribed; 0.2.x: it publishes ADAPTER_CLOSE), so that
//! a request completes without waiting for its answer. Skipped, with a
//! message, when `redis-server` is not on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Redis, redis};
use duplex_redis::{RedisAdapter, RedisMode, StreamsOptions, StreamsVersion};
use duplex_tokio::socketio::client::{ClientConfig, ClientEvent, ClientSocket, Manager};
use duplex_tokio::socketio::{NamespaceHandlers, SocketIo, SocketIoConfig, Value};

const WAIT: Duration = Duration::from_secs(5);

fn handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_server_side("hello", |args, reply| {
        if let Some(reply) = reply {
            reply.send(Value::Array(args));
        }
    })
}

async fn server(redis: &Redis, streams: &StreamsOptions) -> (String, RedisAdapter, SocketIo) {
    let io = SocketIo::builder(SocketIoConfig::default())
        .namespace("/", handlers)
        .build();
    let mut config = redis.config(RedisMode::Streams);
    config.streams = streams.clone();
    let adapter = common::attach(&io, config).await;
    let addr = common::serve(io.clone()).await;
    (format!("http://{addr}"), adapter, io)
}

/// A client of `url` that answers every `ask` with `answer`; the `note`s
/// it gets come out of the receiver.
async fn client(
    url: &str,
    answer: &'static str,
) -> (
    Manager,
    String,
    tokio::sync::mpsc::UnboundedReceiver<Vec<Value>>,
) {
    let (notes_tx, notes) = tokio::sync::mpsc::unbounded_channel();
    let m = Manager::new(ClientConfig::new(url));
    let mut s: ClientSocket = m.socket("/", None);
    let sid = match tokio::time::timeout(WAIT, s.next_event()).await {
        Ok(Some(ClientEvent::Connect { sid, .. })) => sid,
        other => panic!("expected a connect, got {other:?}"),
    };
    tokio::spawn(async move {
        while let Some(event) = s.next_event().await {
            if let ClientEvent::Event { name, args, ack } = event {
                match (name.as_str(), ack) {
                    ("ask", Some(ack)) => ack.send(vec![Value::from(answer)]),
                    ("note", _) => {
                        let _ = notes_tx.send(args);
                    }
                    _ => {}
                }
            }
        }
    });
    (m, sid.to_string(), notes)
}

/// Until `a` counts `n` servers (a 0.2.x server learns of another by its
/// heartbeat): what `hello` with an ack collects then.
async fn wait_for_servers(a: &SocketIo, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let answers = a
            .server_side_emit_with_ack("/", "hello", vec![Value::from(1)])
            .await
            .unwrap();
        if answers.len() + 1 >= n || Instant::now() > deadline {
            return answers;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn requests_cross_servers_and_a_leaving_server_is_not_waited_for(
    redis: &Redis,
    streams: StreamsOptions,
) {
    let (url_a, _adapter_a, a) = server(redis, &streams).await;
    let (url_b, _adapter_b, b) = server(redis, &streams).await;
    let (_ma, sid_a, _) = client(&url_a, "from-a").await;
    let (_mb, sid_b, mut notes_b) = client(&url_b, "from-b").await;

    // A broadcast goes through the stream.
    let _ = a.of("/").emit_args("note", vec![Value::from(7)]);
    let note = tokio::time::timeout(WAIT, notes_b.recv()).await.unwrap();
    assert_eq!(note, Some(vec![Value::from(7)]));

    // serverSideEmit with an ack: b answers with what it got.
    let answers = wait_for_servers(&a, 2).await;
    assert_eq!(answers, [Value::Array(vec![Value::from(1)])]);

    // fetchSockets: both servers' sockets.
    let mut ids: Vec<String> = a
        .of("/")
        .fetch_sockets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    let mut expected = vec![sid_a, sid_b];
    expected.sort();
    assert_eq!(ids, expected);

    // A broadcast with acks: every client's answer, from either server.
    let mut acks = a.of("/").emit_with_acks("ask", vec![], WAIT).await.unwrap();
    acks.sort_by_key(|v| v.as_str().map(str::to_owned));
    assert_eq!(acks, [Value::from("from-a"), Value::from("from-b")]);

    // b shuts down: a stops counting it at once, so its requests complete
    // without b's answer and without waiting for the request timeout.
    b.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let started = Instant::now();
        let answers = a
            .server_side_emit_with_ack("/", "hello", vec![Value::from(2)])
            .await;
        if let Ok(answers) = &answers {
            if answers.is_empty() {
                assert!(started.elapsed() < Duration::from_secs(1));
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "b is still counted after its shutdown: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sockets = a.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1, "only a's socket");
}

/// The checks above on a Redis of their own, which is returned for more
/// (`None`: no `redis-server`, skipped).
async fn checked(streams: StreamsOptions) -> Option<Redis> {
    let redis = redis().await?;
    requests_cross_servers_and_a_leaving_server_is_not_waited_for(&redis, streams).await;
    Some(redis)
}

#[tokio::test]
async fn v0_3_requests_cross_servers_and_a_leaving_server_is_not_waited_for() {
    checked(StreamsOptions::default()).await;
}

/// `useShardedPubSub` (Redis 7): SPUBLISH, SSUBSCRIBE, SHARDNUMSUB, and
/// streams of four (`streamCount`), `/` on `socket.io-3`.
#[tokio::test]
async fn v0_3_sharded_pubsub_and_four_streams_requests_cross_servers() {
    let streams = StreamsOptions {
        sharded_pubsub: true,
        stream_count: 4,
        ..StreamsOptions::default()
    };
    let Some(redis) = checked(streams).await else {
        return;
    };
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg("socket.io-3")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(len >= 1, "the broadcast is in `/`'s stream");
}

#[tokio::test]
async fn v0_2_requests_cross_servers_and_a_leaving_server_is_not_waited_for() {
    checked(StreamsOptions {
        version: StreamsVersion::V0_2,
        ..StreamsOptions::default()
    })
    .await;
}
