//! Connection state recovery across servers with the streams mode: two
//! duplex servers on a real Redis (`redis-server` on a loopback port of
//! the test's own), a Rust client behind a proxy that cuts its connection
//! to one server and sends its reconnection to the other. Skipped, with a
//! message, when `redis-server` is not on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{Redis, redis};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duplex_redis::{RedisAdapter, RedisMode};
use duplex_socketio::recovery::RecoveryConfig;
use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};
use duplex_tokio::socketio::{
    AckSender, Args, NamespaceHandlers, Socket, SocketIo, SocketIoConfig, Value,
};

const WAIT: Duration = Duration::from_secs(10);

fn handlers(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on("join", common::join).on(
        "ping-me",
        |socket: Socket, _: Args, _: Option<AckSender>| {
            let _ = socket.emit_args("tick", vec![Value::from(0)]);
        },
    )
}

async fn server(redis: &Redis) -> (SocketAddr, RedisAdapter, SocketIo) {
    let config = SocketIoConfig {
        connection_state_recovery: Some(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(10),
            ..RecoveryConfig::default()
        }),
        ..SocketIoConfig::default()
    };
    let io = SocketIo::builder(config).namespace("/", handlers).build();
    let adapter = common::attach(&io, redis.config(RedisMode::Streams)).await;
    let addr = common::serve(io.clone()).await;
    (addr, adapter, io)
}

/// A TCP proxy to a switchable server; `cut` closes every connection.
#[derive(Clone)]
struct Proxy {
    target: Arc<Mutex<SocketAddr>>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> (Self, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Self {
            target: Arc::new(Mutex::new(target)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let target = *p.target.lock().unwrap();
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
                    }
                });
                p.conns.lock().unwrap().push(task);
            }
        });
        (proxy, addr)
    }

    fn cut_to(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn next(s: &mut ClientSocket) -> Option<ClientEvent> {
    tokio::time::timeout(WAIT, s.next_event())
        .await
        .ok()
        .flatten()
}

/// The `tick` numbers that arrive within `wait` (after the offset, which
/// the client leaves as the last argument).
async fn ticks(s: &mut ClientSocket, wait: Duration) -> Vec<i64> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, s.next_event()).await {
        if let ClientEvent::Event { name, args, .. } = e {
            if name == "tick" {
                let Value::Number(n) = &args[0] else {
                    panic!("a number: {args:?}")
                };
                out.push(n.as_i64().unwrap());
            }
        }
    }
    out
}

/// `s` reconnects (other events may come first), recovered: with the
/// session `sid` it had.
async fn reconnected_and_recovered(s: &mut ClientSocket, sid: &str) {
    loop {
        match next(s).await {
            Some(ClientEvent::Connect {
                sid: again,
                recovered,
            }) => {
                assert!(recovered, "recovered on the other server");
                assert_eq!(again, sid);
                return;
            }
            Some(_) => {}
            None => panic!("no reconnection"),
        }
    }
}

/// A WebSocket client through `addr`, fresh, in `room1`, holding an
/// offset (a first event came through the stream), that reconnects fast.
async fn joined_client(addr: SocketAddr) -> (Manager, ClientSocket, String) {
    let mut config = ClientConfig::new(&format!("http://{addr}"));
    config.transports = ClientTransports::WebSocket;
    config.reconnection_delay = Duration::from_millis(300);
    config.randomization_factor = 0.0;
    let m = Manager::new(config);
    let mut s = m.socket("/", None);
    let Some(ClientEvent::Connect { sid, recovered }) = next(&mut s).await else {
        panic!("a connect");
    };
    assert!(!recovered);
    s.emit_with_ack("join", vec![Value::from("room1")], Some(WAIT))
        .await
        .unwrap();
    // An event through the stream gives the client its offset.
    s.emit("ping-me", vec![]);
    assert_eq!(ticks(&mut s, Duration::from_millis(800)).await, [0]);
    (m, s, sid)
}

#[tokio::test]
async fn a_client_cut_from_one_server_is_recovered_by_the_other_with_nothing_lost() {
    let Some(redis) = redis().await else {
        return;
    };
    let (a_addr, _a, a) = server(&redis).await;
    let (b_addr, _b, b) = server(&redis).await;
    let (proxy, addr) = Proxy::start(a_addr).await;

    let (_m, mut s, sid) = joined_client(addr).await;

    proxy.cut_to(b_addr);
    // Server a notices the cut and keeps the session before anything is sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = a.to("/", "room1").emit_args("tick", vec![Value::from(1)]);
    let _ = b.of("/").emit_args("tick", vec![Value::from(2)]);
    let _ = a.to("/", "room2").emit_args("tick", vec![Value::from(3)]);
    let _ = b
        .to("/", sid.as_str())
        .emit_args("tick", vec![Value::from(4)]);

    // Back, through server b.
    reconnected_and_recovered(&mut s, &sid).await;
    assert_eq!(ticks(&mut s, Duration::from_millis(1500)).await, [1, 2, 4]);
    // Its room came back with it: live events from either server reach it once.
    let _ = a.to("/", "room1").emit_args("tick", vec![Value::from(5)]);
    assert_eq!(ticks(&mut s, Duration::from_millis(1000)).await, [5]);
}

#[tokio::test]
async fn local_delivery_goes_on_while_redis_is_away_and_both_servers_come_back() {
    let Some(mut redis) = redis().await else {
        return;
    };
    let (a_addr, a_adapter, a) = server(&redis).await;
    let (_b_addr, b_adapter, b) = server(&redis).await;
    let mut config = ClientConfig::new(&format!("http://{a_addr}"));
    config.transports = ClientTransports::WebSocket;
    let m = Manager::new(config);
    let mut s = m.socket("/", None);
    let Some(ClientEvent::Connect { sid, .. }) = next(&mut s).await else {
        panic!("a connect");
    };
    let _ = b.of("/").emit_args("tick", vec![Value::from(0)]);
    assert_eq!(ticks(&mut s, Duration::from_millis(800)).await, [0]);

    // Redis goes: a's own emits still reach its client (without offset).
    redis.stop();
    let _ = a
        .to("/", sid.as_str())
        .emit_args("tick", vec![Value::from(1)]);
    assert_eq!(ticks(&mut s, Duration::from_millis(800)).await, [1]);

    // Redis comes back on the same port: both reconnect, b reaches a's client again.
    redis.restart();
    assert!(
        common::eventually(Duration::from_secs(15), || {
            a_adapter.is_connected() && b_adapter.is_connected()
        })
        .await,
        "the adapters reconnect"
    );
    let _ = b.of("/").emit_args("tick", vec![Value::from(2)]);
    assert_eq!(ticks(&mut s, Duration::from_millis(1500)).await, [2]);
    assert!(
        a_adapter.dropped() >= 1,
        "the emit while away was not published"
    );
}

/// The restores' own connection, closed by Redis (its `timeout`) or an
/// idle timeout on the way while the reader and writer stay busy, is
/// replaced: a client cut afterwards is still recovered on the other
/// server.
#[tokio::test]
async fn a_lost_restorer_connection_is_replaced() {
    let Some(redis) = redis().await else {
        return;
    };
    let (a_addr, _a, a) = server(&redis).await;
    let (b_addr, _b, _bio) = server(&redis).await;
    let (proxy, addr) = Proxy::start(a_addr).await;

    let (_m, mut s, sid) = joined_client(addr).await;

    // Kill the connections that are neither reader, writer, subscriber
    // nor this one: the restorers.
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = ::redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut killed = 0;
    for line in list.lines() {
        let field = |k: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_owned))
                .unwrap_or_default()
        };
        let cmd = field("cmd");
        if [
            "xread",
            "xadd",
            "xrevrange",
            "subscribe",
            "psubscribe",
            "ssubscribe",
            "client|list",
        ]
        .contains(&cmd.as_str())
        {
            continue;
        }
        let id = field("id");
        let _: ::redis::Value = ::redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(&id)
            .query_async(&mut c)
            .await
            .unwrap();
        killed += 1;
    }
    assert!(killed >= 1);
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.cut_to(b_addr);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = a.to("/", "room1").emit_args("tick", vec![Value::from(1)]);
    reconnected_and_recovered(&mut s, &sid).await;
}
