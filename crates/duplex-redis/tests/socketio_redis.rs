//! Two duplex Socket.IO servers in one process sharing a real Redis
//! (Debian's `redis-server`, started on a loopback port of the test's
//! own): a broadcast from one reaches the clients of both exactly once,
//! and room broadcasts reach exactly the room's members on either server.
//! Skipped, with a message, when `redis-server` is not on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{Redis, redis};

use std::time::Duration;

use duplex_redis::{Emitter, RedisAdapter, RedisAdapterConfig, RedisMode, SubscriptionMode};
use duplex_tokio::socketio::client::{ClientConfig, ClientEvent, ClientSocket, Manager};
use duplex_tokio::socketio::{
    AckSender, Args, NamespaceHandlers, Socket, SocketData, SocketIo, SocketIoConfig, Value,
};

const WAIT: Duration = Duration::from_secs(5);

/// How many `note`s other servers sent, over every server of the process.
static NOTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many `emitter-note`s an [`Emitter`] sent, over every server.
static EMITTER_NOTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_server_side("hello", |args, reply| {
        if let Some(reply) = reply {
            reply.send(Value::Array(args));
        }
    })
    .on_server_side("emitter-note", |_, _| {
        EMITTER_NOTES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .on_server_side("note", |_, reply| {
        assert!(reply.is_none(), "no ack was asked for");
        NOTES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .on_connect(|socket: Socket| {
        let name = socket
            .handshake()
            .auth
            .get("name")
            .cloned()
            .unwrap_or(Value::Null);
        socket.extensions().insert(SocketData(name));
    })
    .on(
        "fetch",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let op = socket.broadcast().to(&room);
            tokio::spawn(async move {
                let reply = match op.fetch_sockets().await {
                    Ok(sockets) => sockets
                        .into_iter()
                        .map(|s| {
                            Value::Array(vec![
                                Value::from(s.id.as_str()),
                                s.data,
                                Value::Number(s.rooms.len().into()),
                            ])
                        })
                        .collect(),
                    Err(e) => vec![Value::from(e.to_string().as_str())],
                };
                if let Some(ack) = ack {
                    let _ = ack.send_args(vec![Value::Array(reply)]);
                }
            });
        },
    )
    .on(
        "join",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            if let Some(room) = args.first().and_then(Value::as_str) {
                socket.join(room);
            }
            if let Some(ack) = ack {
                let _ = ack.send_args(vec![]);
            }
        },
    )
    .on(
        "shout",
        |socket: Socket, Args(args): Args, _: Option<AckSender>| {
            let _ = socket.broadcast().emit_args("shouted", args);
        },
    )
    .on(
        "local-shout",
        |socket: Socket, Args(args): Args, _: Option<AckSender>| {
            let _ = socket.broadcast().local().emit_args("shouted", args);
        },
    )
    .on(
        "all-join",
        |socket: Socket, Args(args): Args, ack: Option<AckSender>| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            socket.broadcast().sockets_join(&[&room]);
            if let Some(ack) = ack {
                let _ = ack.send_args(vec![]);
            }
        },
    )
    .on(
        "kick-room",
        |socket: Socket, Args(args): Args, _: Option<AckSender>| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            socket.to(&room).disconnect_sockets();
        },
    )
    .on(
        "to-room",
        |socket: Socket, Args(args): Args, _: Option<AckSender>| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let _ = socket.to(&room).emit_args("in-room", args);
        },
    )
}

/// A duplex server in the cluster of `redis`: its URL and adapter.
async fn server(redis: &Redis) -> (String, RedisAdapter, SocketIo) {
    server_in(redis, RedisMode::Classic).await
}

/// A duplex server in the cluster of `redis`, speaking `mode`.
async fn server_in(redis: &Redis, mode: RedisMode) -> (String, RedisAdapter, SocketIo) {
    let io = SocketIo::builder(SocketIoConfig::default())
        .namespace("/", handlers)
        .build();
    let mut config = RedisAdapterConfig::new(format!("redis://127.0.0.1:{}", redis.port));
    config.mode = mode;
    let adapter = common::attach(&io, config).await;
    let addr = common::serve(io.clone()).await;
    (format!("http://{addr}"), adapter, io)
}

async fn client(url: &str) -> (Manager, ClientSocket) {
    named(url, None).await
}

async fn named(url: &str, auth: Option<Value>) -> (Manager, ClientSocket) {
    let m = Manager::new(ClientConfig::new(url));
    let mut s = m.socket("/", auth);
    match tokio::time::timeout(WAIT, s.next_event()).await {
        Ok(Some(ClientEvent::Connect { .. })) => {}
        other => panic!("expected a connect, got {other:?}"),
    }
    (m, s)
}

/// The next event named `name`, within `wait`.
async fn event(s: &mut ClientSocket, name: &str, wait: Duration) -> Option<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.next_event()).await {
            Ok(Some(ClientEvent::Event { name: n, args, .. })) if n == name => return Some(args),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Exactly one `name` arrives, with `args`, and no second one.
async fn exactly_once(s: &mut ClientSocket, name: &str, args: &[Value]) {
    assert_eq!(event(s, name, WAIT).await.as_deref(), Some(args));
    assert_eq!(
        event(s, name, Duration::from_millis(300)).await,
        None,
        "a second {name}"
    );
}

#[tokio::test]
async fn broadcasts_reach_the_clients_of_both_servers_exactly_once() {
    let Some(redis) = redis().await else {
        return;
    };
    let (url_a, adapter_a, _io_a) = server(&redis).await;
    let (url_b, adapter_b, _io_b) = server(&redis).await;
    assert_ne!(adapter_a.uid(), adapter_b.uid());
    let (_m1, mut c1) = client(&url_a).await;
    let (_m2, mut c2) = client(&url_a).await;
    let (_m3, mut c3) = client(&url_b).await;

    let args = vec![Value::from("hello")];
    c1.emit("shout", args.clone());
    exactly_once(&mut c2, "shouted", &args).await;
    exactly_once(&mut c3, "shouted", &args).await;
    assert_eq!(
        event(&mut c1, "shouted", Duration::from_millis(200)).await,
        None
    );

    // A room with a member on each server, the sender on neither side of it.
    for c in [&mut c2, &mut c3] {
        c.emit_with_ack("join", vec![Value::from("room")], Some(WAIT))
            .await
            .unwrap();
    }
    let args = vec![Value::from("room")];
    c1.emit("to-room", args.clone());
    exactly_once(&mut c2, "in-room", &args).await;
    exactly_once(&mut c3, "in-room", &args).await;
    assert_eq!(
        event(&mut c1, "in-room", Duration::from_millis(200)).await,
        None
    );
    assert!(adapter_a.published() >= 2 && adapter_b.received() >= 2);
    assert_eq!(adapter_a.dropped() + adapter_b.dropped(), 0);
}

#[tokio::test]
async fn local_delivery_goes_on_while_redis_is_away_and_the_adapter_reconnects() {
    let Some(mut redis) = redis().await else {
        return;
    };
    let (url_a, adapter_a, _io_a) = server(&redis).await;
    let (url_b, adapter_b, _io_b) = server(&redis).await;
    let (_m1, c1) = client(&url_a).await;
    let (_m2, mut c2) = client(&url_a).await;
    let (_m3, mut c3) = client(&url_b).await;

    redis.stop();
    for _ in 0..100 {
        if !adapter_a.is_connected() && !adapter_b.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let args = vec![Value::from("alone")];
    c1.emit("shout", args.clone());
    exactly_once(&mut c2, "shouted", &args).await;
    assert_eq!(
        event(&mut c3, "shouted", Duration::from_millis(300)).await,
        None
    );

    // Redis back on the same port: both adapters reconnect by themselves.
    redis.restart();
    for _ in 0..200 {
        if adapter_a.is_connected() && adapter_b.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        adapter_a.is_connected() && adapter_b.is_connected(),
        "reconnected"
    );
    let args = vec![Value::from("together")];
    c1.emit("shout", args.clone());
    exactly_once(&mut c2, "shouted", &args).await;
    exactly_once(&mut c3, "shouted", &args).await;
}

#[tokio::test]
async fn local_broadcasts_stay_and_room_operations_apply_on_every_server() {
    let Some(redis) = redis().await else {
        return;
    };
    let (url_a, _adapter_a, _io_a) = server(&redis).await;
    let (url_b, _adapter_b, _io_b) = server(&redis).await;
    let (_m1, mut c1) = client(&url_a).await;
    let (_m2, mut c2) = client(&url_a).await;
    let (_m3, mut c3) = client(&url_b).await;

    let args = vec![Value::from("here")];
    c1.emit("local-shout", args.clone());
    exactly_once(&mut c2, "shouted", &args).await;
    assert_eq!(
        event(&mut c3, "shouted", Duration::from_millis(300)).await,
        None
    );

    // socketsJoin from server A puts c2 and c3 (not the sender) in "team".
    c1.emit_with_ack("all-join", vec![Value::from("team")], Some(WAIT))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let args = vec![Value::from("team")];
    c1.emit("to-room", args.clone());
    exactly_once(&mut c2, "in-room", &args).await;
    exactly_once(&mut c3, "in-room", &args).await;

    // disconnectSockets from server A reaches c3 on server B.
    c1.emit("kick-room", vec![Value::from("team")]);
    for c in [&mut c2, &mut c3] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, c.next_event()).await {
                Ok(Some(ClientEvent::Disconnect { .. })) => break,
                Ok(Some(_)) => {}
                other => panic!("expected a disconnect, got {other:?}"),
            }
        }
    }
    assert_eq!(
        event(&mut c1, "in-room", Duration::from_millis(200)).await,
        None
    );
}

#[tokio::test]
async fn fetch_sockets_sees_the_sockets_and_data_of_every_server() {
    let Some(redis) = redis().await else {
        return;
    };
    let (url_a, _adapter_a, io_a) = server(&redis).await;
    let (url_b, _adapter_b, _io_b) = server(&redis).await;
    let auth = |name: &str| Some(Value::Object(vec![("name".to_owned(), Value::from(name))]));
    let (_m1, c1) = named(&url_a, auth("one")).await;
    let (_m2, c2) = named(&url_a, auth("two")).await;
    let (_m3, c3) = named(&url_b, auth("three")).await;
    for c in [&c2, &c3] {
        c.emit_with_ack("join", vec![Value::from("team")], Some(WAIT))
            .await
            .unwrap();
    }
    let reply = c1
        .emit_with_ack("fetch", vec![Value::from("team")], Some(WAIT))
        .await
        .unwrap();
    let Some(Value::Array(found)) = reply.into_iter().next() else {
        panic!("an array");
    };
    let mut names: Vec<String> = found
        .iter()
        .map(|f| match f {
            Value::Array(items) => {
                assert_eq!(
                    items.get(2),
                    Some(&Value::Number(2u64.into())),
                    "own room and team"
                );
                items
                    .get(1)
                    .and_then(|d| d.as_str())
                    .unwrap_or("?")
                    .to_owned()
            }
            other => panic!("not a socket: {other:?}"),
        })
        .collect();
    names.sort();
    assert_eq!(names, ["three", "two"]);

    // allRooms from server A lists server B's rooms too, each once.
    let rooms = io_a.all_rooms("/").await.unwrap();
    assert_eq!(rooms.iter().filter(|r| *r == "team").count(), 1);
    assert_eq!(rooms.len(), 4, "three socket-id rooms and team: {rooms:?}");
}

#[tokio::test]
async fn server_side_emits_reach_the_other_servers_and_collect_their_answers() {
    let Some(redis) = redis().await else {
        return;
    };
    let (_url_a, _adapter_a, io_a) = server(&redis).await;
    let (_url_b, _adapter_b, _io_b) = server(&redis).await;
    let (_url_c, _adapter_c, _io_c) = server(&redis).await;

    let answers = io_a
        .server_side_emit_with_ack("/", "hello", vec![Value::from("x")])
        .await
        .unwrap();
    // One answer from each other server, none from the sender itself.
    assert_eq!(
        answers,
        [
            Value::Array(vec![Value::from("x")]),
            Value::Array(vec![Value::from("x")])
        ]
    );

    let before = NOTES.load(std::sync::atomic::Ordering::SeqCst);
    io_a.server_side_emit("/", "note", vec![]);
    let mut got = 0;
    for _ in 0..100 {
        got = NOTES.load(std::sync::atomic::Ordering::SeqCst) - before;
        if got >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        NOTES.load(std::sync::atomic::Ordering::SeqCst) - before,
        2,
        "{got}"
    );
}

/// One RESP element of a subscriber connection: a bulk string's bytes, or
/// the text of a simple line.
async fn resp_element(r: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> Vec<u8> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'$') => {
            let len: usize = line[1..].parse().unwrap();
            let mut buf = vec![0; len + 2];
            r.read_exact(&mut buf).await.unwrap();
            buf.truncate(len);
            buf
        }
        _ => line.as_bytes().to_vec(),
    }
}

/// The next `[message, channel, payload]` a SUBSCRIBE connection reads.
async fn resp_message(r: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> (String, Vec<u8>) {
    loop {
        let head = resp_element(r).await;
        let n: usize = String::from_utf8_lossy(&head[1..]).parse().unwrap();
        let items: Vec<Vec<u8>> = {
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(resp_element(r).await);
            }
            v
        };
        if items.first().map(Vec::as_slice) == Some(b"message") && items.len() == 3 {
            return (
                String::from_utf8_lossy(&items[1]).into_owned(),
                items[2].clone(),
            );
        }
    }
}

fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend(b"\r\n");
    }
    out
}

#[tokio::test]
async fn another_nodes_broadcast_with_acks_gets_the_client_count_and_every_ack() {
    use duplex_socketio::cluster::{
        ClusterNode, NodeEvent, Opts, Protocol, RequestEvent, RequestsConfig, WirePacket,
    };
    use tokio::io::AsyncWriteExt;
    let Some(redis) = redis().await else {
        return;
    };
    let (url_b, _adapter_b, _io_b) = server(&redis).await;
    let (_m1, mut c1) = client(&url_b).await;
    let (_m2, mut c2) = client(&url_b).await;

    // A pretend Node server, speaking through raw RESP.
    let mut node = ClusterNode::new(
        Protocol::default(),
        "tester",
        "/",
        RequestsConfig::default(),
    );
    let sub = tokio::net::TcpStream::connect(("127.0.0.1", redis.port))
        .await
        .unwrap();
    let (sub_r, mut sub_w) = sub.into_split();
    let mut sub_r = tokio::io::BufReader::new(sub_r);
    sub_w
        .write_all(&resp_command(&[b"SUBSCRIBE", b"socket.io-response#/#"]))
        .await
        .unwrap();
    let _ = resp_element(&mut sub_r).await; // *3 of the confirmation
    for _ in 0..3 {
        let _ = resp_element(&mut sub_r).await;
    }
    let mut publisher = tokio::net::TcpStream::connect(("127.0.0.1", redis.port))
        .await
        .unwrap();

    let now = std::time::Instant::now();
    node.broadcast_with_ack(
        "req-1",
        WirePacket::event("ask", [Value::from("q")]),
        &Opts::default(),
        WAIT,
        now,
    )
    .unwrap();
    while let Some(t) = node.poll_transmit() {
        publisher
            .write_all(&resp_command(&[
                b"PUBLISH",
                t.channel.as_bytes(),
                &t.payload,
            ]))
            .await
            .unwrap();
    }
    for (c, answer) in [(&mut c1, "a1"), (&mut c2, "a2")] {
        loop {
            match tokio::time::timeout(WAIT, c.next_event()).await {
                Ok(Some(ClientEvent::Event { name, args, ack })) if name == "ask" => {
                    assert_eq!(args, [Value::from("q")]);
                    ack.expect("an ack is asked for")
                        .send(vec![Value::from(answer)]);
                    break;
                }
                Ok(Some(_)) => {}
                other => panic!("expected ask, got {other:?}"),
            }
        }
    }
    let mut count = None;
    let mut acks = Vec::new();
    while count.is_none() || acks.len() < 2 {
        let (channel, payload) = tokio::time::timeout(WAIT, resp_message(&mut sub_r))
            .await
            .expect("answers within the wait");
        node.receive(&channel, &payload).unwrap();
        while let Some(event) = node.poll_event() {
            match event {
                NodeEvent::Request(RequestEvent::ClientCount { client_count, .. }) => {
                    count = Some(client_count);
                }
                NodeEvent::Request(RequestEvent::ClientAck { value, .. }) => acks.push(value),
                _ => {}
            }
        }
    }
    acks.sort_by_key(|v| v.as_str().map(str::to_owned));
    assert_eq!(count, Some(2));
    assert_eq!(acks, [Value::from("a1"), Value::from("a2")]);
}

#[tokio::test]
async fn broadcasts_with_acks_collect_every_clients_answer_across_servers() {
    let Some(redis) = redis().await else {
        return;
    };
    let (url_a, _adapter_a, io_a) = server(&redis).await;
    let (url_b, _adapter_b, _io_b) = server(&redis).await;
    let mut managers = Vec::new();
    for (url, answer) in [(&url_a, "a1"), (&url_b, "b1"), (&url_b, "b2")] {
        let (m, mut c) = client(url).await;
        managers.push(m);
        tokio::spawn(async move {
            while let Some(event) = c.next_event().await {
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
    }
    let started = std::time::Instant::now();
    let mut answers = io_a
        .of("/")
        .emit_with_acks("ask", vec![], Duration::from_secs(3))
        .await
        .unwrap();
    answers.sort_by_key(|v| v.as_str().map(str::to_owned));
    assert_eq!(
        answers,
        [Value::from("a1"), Value::from("b1"), Value::from("b2")]
    );

    // An empty room completes at once, not at the timeout.
    let none = io_a
        .of("/")
        .to("nobody")
        .emit_with_acks("ask", vec![], Duration::from_secs(3))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sharded_servers_share_broadcasts_rooms_and_fetches() {
    let Some(redis) = redis().await else {
        return;
    };
    let mode = RedisMode::Sharded(SubscriptionMode::Dynamic);
    let (url_a, adapter_a, _io_a) = server_in(&redis, mode).await;
    let (url_b, adapter_b, _io_b) = server_in(&redis, mode).await;
    assert_eq!(
        adapter_a.uid().len(),
        16,
        "Node's sharded uids are 16 hex digits"
    );
    let (_m1, c1) = named(
        &url_a,
        Some(Value::Object(vec![("name".into(), "one".into())])),
    )
    .await;
    let (_m2, mut c2) = named(
        &url_b,
        Some(Value::Object(vec![("name".into(), "two".into())])),
    )
    .await;
    let (_m3, mut c3) = client(&url_b).await;

    let args = vec![Value::from("hello")];
    c1.emit("shout", args.clone());
    exactly_once(&mut c2, "shouted", &args).await;
    exactly_once(&mut c3, "shouted", &args).await;

    // A public room: the dynamic mode's own channel, subscribed on join.
    c2.emit_with_ack("join", vec![Value::from("team")], Some(WAIT))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let args = vec![Value::from("team")];
    c1.emit("to-room", args.clone());
    exactly_once(&mut c2, "in-room", &args).await;
    assert_eq!(
        event(&mut c3, "in-room", Duration::from_millis(300)).await,
        None
    );

    let fetched = c1
        .emit_with_ack("fetch", vec![Value::from("team")], Some(WAIT))
        .await
        .unwrap();
    let Some(Value::Array(list)) = fetched.first() else {
        panic!("fetch answered {fetched:?}");
    };
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(
        matches!(&list[0], Value::Array(f) if f.get(1) == Some(&Value::from("two"))),
        "{list:?}"
    );
    assert!(adapter_a.published() >= 2 && adapter_b.received() >= 2);
    assert_eq!(adapter_a.dropped() + adapter_b.dropped(), 0);
}

#[tokio::test]
async fn the_emitter_publishes_into_classic_and_sharded_clusters() {
    for mode in [
        RedisMode::Classic,
        RedisMode::Sharded(SubscriptionMode::Dynamic),
    ] {
        let Some(redis) = redis().await else {
            return;
        };
        let (url_a, _adapter_a, _io_a) = server_in(&redis, mode).await;
        let (url_b, _adapter_b, _io_b) = server_in(&redis, mode).await;
        let (_m1, mut c1) = client(&url_a).await;
        let (_m2, mut c2) = client(&url_b).await;
        c2.emit_with_ack("join", vec![Value::from("team")], Some(WAIT))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;

        let url = format!("redis://127.0.0.1:{}", redis.port);
        let emitter = Emitter::connect(&url, mode, "socket.io").await.unwrap();
        assert!(matches!(
            emitter.emit("connect", vec![]).await,
            Err(duplex_redis::Error::ReservedEvent(_))
        ));

        let args = vec![Value::from("from the emitter"), Value::from(3)];
        emitter.emit("shouted", args.clone()).await.unwrap();
        exactly_once(&mut c1, "shouted", &args).await;
        exactly_once(&mut c2, "shouted", &args).await;

        let args = vec![Value::from("team only")];
        emitter
            .to("team")
            .emit("in-room", args.clone())
            .await
            .unwrap();
        exactly_once(&mut c2, "in-room", &args).await;
        assert_eq!(
            event(&mut c1, "in-room", Duration::from_millis(300)).await,
            None,
            "{mode:?}"
        );

        // Every socket but the team's joins `others`, on both servers.
        emitter
            .except("team")
            .sockets_join(&["others"])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let args = vec![Value::from("others")];
        emitter
            .to("others")
            .emit("in-room", args.clone())
            .await
            .unwrap();
        exactly_once(&mut c1, "in-room", &args).await;
        assert_eq!(
            event(&mut c2, "in-room", Duration::from_millis(300)).await,
            None,
            "{mode:?}"
        );

        let before = EMITTER_NOTES.load(std::sync::atomic::Ordering::SeqCst);
        emitter
            .server_side_emit("emitter-note", vec![])
            .await
            .unwrap();
        for _ in 0..100 {
            if EMITTER_NOTES.load(std::sync::atomic::Ordering::SeqCst) - before >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            EMITTER_NOTES.load(std::sync::atomic::Ordering::SeqCst) - before,
            2,
            "both servers heard the emitter once ({mode:?})"
        );

        // Disconnecting the team's sockets, cluster-wide.
        emitter.to("team").disconnect_sockets(false).await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut gone = false;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, c2.next_event()).await {
            if matches!(e, ClientEvent::Disconnect { .. }) {
                gone = true;
                break;
            }
        }
        assert!(gone, "the team's socket was disconnected ({mode:?})");
    }
}
