//! Two duplex Socket.IO servers in one process sharing a real Redis
//! (Debian's `redis-server`, started on a loopback port of the test's
//! own): a broadcast from one reaches the clients of both exactly once,
//! and room broadcasts reach exactly the room's members on either server.
//! Skipped, with a message, when `redis-server` is not on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{Redis, redis};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use duplex_redis::{Emitter, RedisAdapter, RedisMode, SubscriptionMode};
use duplex_tokio::socketio::client::{ClientConfig, ClientEvent, ClientSocket, Manager};
use duplex_tokio::socketio::{
    AckSender, Args, NamespaceHandlers, Socket, SocketData, SocketIo, SocketIoConfig, Value,
};

const WAIT: Duration = Duration::from_secs(5);

/// How many `note`s other servers sent, over every server of the process.
static NOTES: AtomicUsize = AtomicUsize::new(0);

/// How many `emitter-note`s an [`Emitter`] sent, over every server.
static EMITTER_NOTES: AtomicUsize = AtomicUsize::new(0);

fn handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_server_side("hello", |args, reply| {
        if let Some(reply) = reply {
            reply.send(Value::Array(args));
        }
    })
    .on_server_side("emitter-note", |_, _| {
        EMITTER_NOTES.fetch_add(1, Ordering::SeqCst);
    })
    .on_server_side("note", |_, reply| {
        assert!(reply.is_none(), "no ack was asked for");
        NOTES.fetch_add(1, Ordering::SeqCst);
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
            let op = socket.broadcast().to(&room(&args));
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
    .on("join", common::join)
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
            socket.broadcast().sockets_join(&[&room(&args)]);
            common::acked(ack);
        },
    )
    .on(
        "kick-room",
        |socket: Socket, Args(args): Args, _: Option<AckSender>| {
            socket.to(&room(&args)).disconnect_sockets();
        },
    )
    .on(
        "to-room",
        |socket: Socket, Args(args): Args, _: Option<AckSender>| {
            let _ = socket.to(&room(&args)).emit_args("in-room", args);
        },
    )
}

/// The room an event's first argument names (`""` when it names none).
fn room(args: &[Value]) -> String {
    args.first()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A duplex server in the cluster of a Redis.
struct Server {
    url: String,
    adapter: RedisAdapter,
    io: SocketIo,
}

/// A duplex server in the cluster of `redis`, speaking `mode`.
async fn server(redis: &Redis, mode: RedisMode) -> Server {
    let io = SocketIo::builder(SocketIoConfig::default())
        .namespace("/", handlers)
        .build();
    let adapter = common::attach(&io, redis.config(mode)).await;
    let addr = common::serve(io.clone()).await;
    Server {
        url: format!("http://{addr}"),
        adapter,
        io,
    }
}

/// Two duplex servers in the cluster of `redis`, speaking `mode`.
async fn two_servers(redis: &Redis, mode: RedisMode) -> (Server, Server) {
    (server(redis, mode).await, server(redis, mode).await)
}

async fn client(url: &str) -> (Manager, ClientSocket) {
    named(url, None).await
}

/// A client of each of `urls`, connected, in that order.
async fn clients<const N: usize>(urls: [&str; N]) -> [(Manager, ClientSocket); N] {
    let mut all = Vec::with_capacity(N);
    for url in urls {
        all.push(client(url).await);
    }
    let Ok(all) = all.try_into() else {
        unreachable!("one client per URL")
    };
    all
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

/// The handshake's `auth` of a client called `name`.
fn auth(name: &str) -> Option<Value> {
    Some(Value::Object(vec![("name".to_owned(), Value::from(name))]))
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

/// How long a client is watched for an event that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// Exactly one `name` arrives, with `args`, and no second one.
async fn exactly_once(s: &mut ClientSocket, name: &str, args: &[Value]) {
    assert_eq!(event(s, name, WAIT).await.as_deref(), Some(args));
    assert_eq!(event(s, name, QUIET).await, None, "a second {name}");
}

/// No `name` arrives.
async fn never(s: &mut ClientSocket, name: &str) {
    assert_eq!(event(s, name, QUIET).await, None, "an unexpected {name}");
}

/// `from` emits `event` with the one argument `arg`; each of `to` gets
/// `name` with that argument exactly once.
async fn reaches(
    from: &ClientSocket,
    event: &str,
    arg: &str,
    name: &str,
    to: &mut [&mut ClientSocket],
) {
    let args = vec![Value::from(arg)];
    from.emit(event, args.clone());
    for s in to {
        exactly_once(s, name, &args).await;
    }
}

/// `s` joins `room` (acked).
async fn join(s: &ClientSocket, room: &str) {
    s.emit_with_ack("join", vec![Value::from(room)], Some(WAIT))
        .await
        .unwrap();
}

/// `s` is disconnected by the server within the wait (other events may
/// come first).
async fn disconnected(s: &mut ClientSocket) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, s.next_event()).await {
            Ok(Some(ClientEvent::Disconnect { .. })) => return,
            Ok(Some(_)) => {}
            other => panic!("expected a disconnect, got {other:?}"),
        }
    }
}

/// How many more than `before` `counter` reaches: waits (bounded) for
/// `expected`, then a moment more for any extra.
async fn counted(counter: &AtomicUsize, before: usize, expected: usize) -> usize {
    let got = || counter.load(Ordering::SeqCst) - before;
    common::eventually(Duration::from_secs(2), || got() >= expected).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    got()
}

#[tokio::test]
async fn broadcasts_reach_the_clients_of_both_servers_exactly_once() {
    let Some(redis) = redis().await else {
        return;
    };
    let (a, b) = two_servers(&redis, RedisMode::Classic).await;
    assert_ne!(a.adapter.uid(), b.adapter.uid());
    let [(_m1, mut c1), (_m2, mut c2), (_m3, mut c3)] = clients([&a.url, &a.url, &b.url]).await;

    reaches(&c1, "shout", "hello", "shouted", &mut [&mut c2, &mut c3]).await;
    never(&mut c1, "shouted").await;

    // A room with a member on each server, the sender on neither side of it.
    for c in [&c2, &c3] {
        join(c, "room").await;
    }
    reaches(&c1, "to-room", "room", "in-room", &mut [&mut c2, &mut c3]).await;
    never(&mut c1, "in-room").await;
    assert!(a.adapter.published() >= 2 && b.adapter.received() >= 2);
    assert_eq!(a.adapter.dropped() + b.adapter.dropped(), 0);
}

#[tokio::test]
async fn local_delivery_goes_on_while_redis_is_away_and_the_adapter_reconnects() {
    let Some(mut redis) = redis().await else {
        return;
    };
    let (a, b) = two_servers(&redis, RedisMode::Classic).await;
    let [(_m1, c1), (_m2, mut c2), (_m3, mut c3)] = clients([&a.url, &a.url, &b.url]).await;

    redis.stop();
    // Whether or not the adapters noticed yet, delivery stays local.
    let _ = common::eventually(Duration::from_secs(2), || {
        !a.adapter.is_connected() && !b.adapter.is_connected()
    })
    .await;
    reaches(&c1, "shout", "alone", "shouted", &mut [&mut c2]).await;
    never(&mut c3, "shouted").await;

    // Redis back on the same port: both adapters reconnect by themselves.
    redis.restart();
    assert!(
        common::eventually(Duration::from_secs(10), || {
            a.adapter.is_connected() && b.adapter.is_connected()
        })
        .await,
        "reconnected"
    );
    reaches(&c1, "shout", "together", "shouted", &mut [&mut c2, &mut c3]).await;
}

#[tokio::test]
async fn local_broadcasts_stay_and_room_operations_apply_on_every_server() {
    let Some(redis) = redis().await else {
        return;
    };
    let (a, b) = two_servers(&redis, RedisMode::Classic).await;
    let [(_m1, mut c1), (_m2, mut c2), (_m3, mut c3)] = clients([&a.url, &a.url, &b.url]).await;

    reaches(&c1, "local-shout", "here", "shouted", &mut [&mut c2]).await;
    never(&mut c3, "shouted").await;

    // socketsJoin from server A puts c2 and c3 (not the sender) in "team".
    c1.emit_with_ack("all-join", vec![Value::from("team")], Some(WAIT))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    reaches(&c1, "to-room", "team", "in-room", &mut [&mut c2, &mut c3]).await;

    // disconnectSockets from server A reaches c3 on server B.
    c1.emit("kick-room", vec![Value::from("team")]);
    for c in [&mut c2, &mut c3] {
        disconnected(c).await;
    }
    never(&mut c1, "in-room").await;
}

#[tokio::test]
async fn fetch_sockets_sees_the_sockets_and_data_of_every_server() {
    let Some(redis) = redis().await else {
        return;
    };
    let (a, b) = two_servers(&redis, RedisMode::Classic).await;
    let (_m1, c1) = named(&a.url, auth("one")).await;
    let (_m2, c2) = named(&a.url, auth("two")).await;
    let (_m3, c3) = named(&b.url, auth("three")).await;
    for c in [&c2, &c3] {
        join(c, "team").await;
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
    let rooms = a.io.all_rooms("/").await.unwrap();
    assert_eq!(rooms.iter().filter(|r| *r == "team").count(), 1);
    assert_eq!(rooms.len(), 4, "three socket-id rooms and team: {rooms:?}");
}

#[tokio::test]
async fn server_side_emits_reach_the_other_servers_and_collect_their_answers() {
    let Some(redis) = redis().await else {
        return;
    };
    let (a, _b) = two_servers(&redis, RedisMode::Classic).await;
    let _c = server(&redis, RedisMode::Classic).await;

    let answers =
        a.io.server_side_emit_with_ack("/", "hello", vec![Value::from("x")])
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

    let before = NOTES.load(Ordering::SeqCst);
    a.io.server_side_emit("/", "note", vec![]);
    assert_eq!(counted(&NOTES, before, 2).await, 2);
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
    let b = server(&redis, RedisMode::Classic).await;
    let [(_m1, mut c1), (_m2, mut c2)] = clients([&b.url, &b.url]).await;

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
    let (a, b) = two_servers(&redis, RedisMode::Classic).await;
    let mut managers = Vec::new();
    for (url, answer) in [(&a.url, "a1"), (&b.url, "b1"), (&b.url, "b2")] {
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
    let mut answers =
        a.io.of("/")
            .emit_with_acks("ask", vec![], Duration::from_secs(3))
            .await
            .unwrap();
    answers.sort_by_key(|v| v.as_str().map(str::to_owned));
    assert_eq!(
        answers,
        [Value::from("a1"), Value::from("b1"), Value::from("b2")]
    );

    // An empty room completes at once, not at the timeout.
    let none =
        a.io.of("/")
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
    let (a, b) = two_servers(&redis, RedisMode::Sharded(SubscriptionMode::Dynamic)).await;
    assert_eq!(
        a.adapter.uid().len(),
        16,
        "Node's sharded uids are 16 hex digits"
    );
    let (_m1, c1) = named(&a.url, auth("one")).await;
    let (_m2, mut c2) = named(&b.url, auth("two")).await;
    let (_m3, mut c3) = client(&b.url).await;

    reaches(&c1, "shout", "hello", "shouted", &mut [&mut c2, &mut c3]).await;

    // A public room: the dynamic mode's own channel, subscribed on join.
    join(&c2, "team").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    reaches(&c1, "to-room", "team", "in-room", &mut [&mut c2]).await;
    never(&mut c3, "in-room").await;

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
    assert!(a.adapter.published() >= 2 && b.adapter.received() >= 2);
    assert_eq!(a.adapter.dropped() + b.adapter.dropped(), 0);
}

/// An emit of `in-room` with the room's name to `room` by `emitter`
/// reaches `member` exactly once and not `outsider`.
async fn emitted_to_room(
    emitter: &Emitter,
    room: &str,
    member: &mut ClientSocket,
    outsider: &mut ClientSocket,
) {
    let args = vec![Value::from(room)];
    emitter
        .to(room)
        .emit("in-room", args.clone())
        .await
        .unwrap();
    exactly_once(member, "in-room", &args).await;
    never(outsider, "in-room").await;
}

#[tokio::test]
async fn the_emitter_publishes_into_classic_and_sharded_clusters() {
    for mode in [
        RedisMode::Classic,
        RedisMode::Sharded(SubscriptionMode::Dynamic),
    ] {
        eprintln!("in {mode:?}");
        let Some(redis) = redis().await else {
            return;
        };
        let (a, b) = two_servers(&redis, mode).await;
        let [(_m1, mut c1), (_m2, mut c2)] = clients([&a.url, &b.url]).await;
        join(&c2, "team").await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let emitter = Emitter::connect(&redis.url(), mode, "socket.io")
            .await
            .unwrap();
        assert!(matches!(
            emitter.emit("connect", vec![]).await,
            Err(duplex_redis::Error::ReservedEvent(_))
        ));

        let args = vec![Value::from("from the emitter"), Value::from(3)];
        emitter.emit("shouted", args.clone()).await.unwrap();
        exactly_once(&mut c1, "shouted", &args).await;
        exactly_once(&mut c2, "shouted", &args).await;

        emitted_to_room(&emitter, "team", &mut c2, &mut c1).await;

        // Every socket but the team's joins `others`, on both servers.
        emitter
            .except("team")
            .sockets_join(&["others"])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        emitted_to_room(&emitter, "others", &mut c1, &mut c2).await;

        let before = EMITTER_NOTES.load(Ordering::SeqCst);
        emitter
            .server_side_emit("emitter-note", vec![])
            .await
            .unwrap();
        assert_eq!(
            counted(&EMITTER_NOTES, before, 2).await,
            2,
            "both servers heard the emitter once"
        );

        // Disconnecting the team's sockets, cluster-wide.
        emitter.to("team").disconnect_sockets(false).await.unwrap();
        disconnected(&mut c2).await;
    }
}
