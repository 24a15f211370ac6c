//! The streams mode's requests across duplex servers on a real Redis, in
//! both wire versions of `@socket.io/redis-streams-adapter` (0.3.x over
//! pub/sub, 0.2.x in the stream): fetchSockets, serverSideEmit with acks
//! and broadcasts with acks reach the other server and come back, and a
//! server that shuts down stops being counted at once (0.3.x: its
//! channels are unsubscribed; 0.2.x: it publishes ADAPTER_CLOSE), so that
//! a request completes without waiting for its answer. Skipped, with a
//! message, when `redis-server` is not on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Redis, redis};
use duplex_redis::{RedisAdapter, RedisAdapterConfig, RedisMode, StreamsVersion};
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

async fn server(redis: &Redis, version: StreamsVersion) -> (String, RedisAdapter, SocketIo) {
    let io = SocketIo::builder(SocketIoConfig::default())
        .namespace("/", handlers)
        .build();
    let mut config = RedisAdapterConfig::new(format!("redis://127.0.0.1:{}", redis.port));
    config.mode = RedisMode::Streams;
    config.streams.version = version;
    let adapter = RedisAdapter::attach(&io, config).unwrap();
    for _ in 0..100 {
        if adapter.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(adapter.is_connected(), "the adapter connects to Redis");
    let addr = common::serve(io.clone()).await;
    (format!("http://{addr}"), adapter, io)
}

/// A client of `url` that answers every `ask` with `answer`.
async fn client(url: &str, answer: &'static str) -> (Manager, String) {
    let m = Manager::new(ClientConfig::new(url));
    let mut s: ClientSocket = m.socket("/", None);
    let sid = match tokio::time::timeout(WAIT, s.next_event()).await {
        Ok(Some(ClientEvent::Connect { sid, .. })) => sid,
        other => panic!("expected a connect, got {other:?}"),
    };
    tokio::spawn(async move {
        while let Some(event) = s.next_event().await {
            if let ClientEvent::Event {
                name,
                ack: Some(ack),
                ..
            } = event
            {
                if name == "ask" {
                    ack.send(vec![Value::from(answer)]);
                }
            }
        }
    });
    (m, sid.to_string())
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

async fn requests_cross_servers_and_a_leaving_server_is_not_waited_for(version: StreamsVersion) {
    let Some(redis) = redis().await else {
        return;
    };
    let (url_a, _adapter_a, a) = server(&redis, version).await;
    let (url_b, _adapter_b, b) = server(&redis, version).await;
    let (_ma, sid_a) = client(&url_a, "from-a").await;
    let (_mb, sid_b) = client(&url_b, "from-b").await;

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

#[tokio::test]
async fn v0_3_requests_cross_servers_and_a_leaving_server_is_not_waited_for() {
    requests_cross_servers_and_a_leaving_server_is_not_waited_for(StreamsVersion::V0_3).await;
}

#[tokio::test]
async fn v0_2_requests_cross_servers_and_a_leaving_server_is_not_waited_for() {
    requests_cross_servers_and_a_leaving_server_is_not_waited_for(StreamsVersion::V0_2).await;
}
