//! Connection state recovery through the tokio server, over real
//! WebSockets and long-polling, with the wire written by hand so that every
//! offset, replay and CONNECT answer is checked: a client that loses its
//! transport and comes back within the window keeps its id, rooms and data
//! and gets what it missed, in order, once; after the window, or after an
//! explicit close, it is a fresh session; middlewares are skipped on
//! restore.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use duplex_tokio::socketio::{
    AckSender, Data, DisconnectReason, RecoveryConfig, Socket, SocketIo, SocketIoConfig, State,
    Value,
};
use socketio_common::probe::Probe;
use socketio_common::*;

async fn server(window: Duration, ping: Duration) -> (SocketIo, std::net::SocketAddr, Probe) {
    server_with(window, ping, ping).await
}

/// [`server`] with its own ping timeout, apart from the interval.
async fn server_with(
    window: Duration,
    ping_interval: Duration,
    ping_timeout: Duration,
) -> (SocketIo, std::net::SocketAddr, Probe) {
    let (probe, feed) = Probe::new();
    let config = SocketIoConfig {
        ping_interval,
        ping_timeout,
        connection_state_recovery: Some(RecoveryConfig {
            max_disconnection_duration: window,
            ..RecoveryConfig::default()
        }),
        ..SocketIoConfig::default()
    };
    let io = SocketIo::builder(config)
        .with_state(probe.middleware_runs.clone())
        .namespace("/", move |ns| {
            feed.handlers(ns.use_middleware(|State(runs): State<Arc<AtomicUsize>>| {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
            .on(
                "join",
                |socket: Socket, Data(room): Data<String>, ack: AckSender| {
                    socket.join(&room);
                    let _ = ack.send(&socket.rooms());
                },
            )
            .on(
                "set-data",
                |socket: Socket, Data(v): Data<Value>, ack: AckSender| {
                    let _ = ack.send(&socket.set_data(v));
                },
            )
            .on("whoami", |socket: Socket, ack: AckSender| {
                let _ = ack.send_args(vec![
                    Value::from(socket.id().as_str()),
                    Value::from(socket.recovered()),
                    socket.data().unwrap_or(Value::Null),
                    Value::Array(socket.rooms().into_iter().map(Value::from).collect()),
                ]);
            })
            .on("kill", |socket: Socket| socket.close_connection())
        })
        .build();
    let addr = serve(io.clone()).await;
    (io, addr, probe)
}
/// A fresh WebSocket client whose socket got one event (`e`, 0), so that
/// it holds an offset: its connection, sid, pid, socket and that offset.
async fn connected_with_offset(
    addr: std::net::SocketAddr,
    probe: &mut Probe,
) -> (Ws, String, String, Socket, String) {
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    let (sid, pid) = answer(&next_skip_ping(&mut ws).await.unwrap());
    let (socket, _) = probe.connect().await;
    socket.emit("e", &0).unwrap();
    let (_, offset) = event(&next_skip_ping(&mut ws).await.unwrap());
    (ws, sid, pid, socket, offset)
}

/// A new WebSocket connection whose CONNECT names `pid` and `offset`.
async fn reconnect(addr: std::net::SocketAddr, pid: &str, offset: &str) -> Ws {
    let mut ws = ws_open(addr).await;
    send(
        &mut ws,
        &format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#),
    )
    .await;
    ws
}

/// `{"sid","pid"}` of a CONNECT answer.
fn answer(text: &str) -> (String, String) {
    assert!(text.starts_with("40{"), "not a CONNECT answer: {text}");
    let json: serde_json::Value = serde_json::from_str(&text[2..]).unwrap();
    (
        json["sid"].as_str().unwrap().to_owned(),
        json["pid"]
            .as_str()
            .expect("no pid: recovery is off?")
            .to_owned(),
    )
}

/// An EVENT's arguments, the offset (its last string) split off.
fn event(text: &str) -> (serde_json::Value, String) {
    assert!(text.starts_with("42["), "not an event: {text}");
    let mut items: Vec<serde_json::Value> = serde_json::from_str(&text[2..]).unwrap();
    let offset = items.pop().unwrap();
    let offset = offset.as_str().expect("no offset").to_owned();
    (serde_json::Value::Array(items), offset)
}

async fn ws_open(addr: std::net::SocketAddr) -> Ws {
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert!(next(&mut ws).await.unwrap().starts_with("0{"));
    ws
}

/// The whoami ack: (id, recovered, data, rooms).
async fn whoami(ws: &mut Ws) -> serde_json::Value {
    send(ws, r#"429["whoami"]"#).await;
    let ack = next_skip_ping(ws).await.unwrap();
    let body = ack.strip_prefix("439").unwrap_or_else(|| panic!("{ack}"));
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn websocket_cut_is_recovered_with_missed_events_once_in_order() {
    let (io, addr, mut probe) = server(Duration::from_secs(10), Duration::from_secs(30)).await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    let (sid, pid) = answer(&next_skip_ping(&mut ws).await.unwrap());
    let (socket, recovered) = probe.connect().await;
    assert!(!recovered);
    assert_eq!(socket.id().as_str(), sid);
    assert_eq!(probe.middleware_runs.load(Ordering::SeqCst), 1);
    send(&mut ws, r#"421["join","r1"]"#).await;
    assert!(next_skip_ping(&mut ws).await.unwrap().starts_with("431["));
    send(&mut ws, r#"422["set-data",{"n":7}]"#).await;
    assert_eq!(next_skip_ping(&mut ws).await.unwrap(), "432[true]");
    socket.emit("e", &0).unwrap();
    let (args, offset) = event(&next_skip_ping(&mut ws).await.unwrap());
    assert_eq!(args, serde_json::json!(["e", 0]));

    // The transport goes (TCP closed under the WebSocket).
    drop(ws);
    assert_eq!(probe.disconnect().await, DisconnectReason::TransportClose);
    // While it is away: direct, room, everyone, a room it is not in, volatile.
    socket.emit("e", &1).unwrap();
    io.to("/", "r1").emit("e", &2).unwrap();
    io.of("/").emit("e", &3).unwrap();
    io.to("/", "elsewhere").emit("no", &0).unwrap();
    socket.volatile().emit("volatile", &0).unwrap();

    let mut ws = reconnect(addr, &pid, &offset).await;
    let mut offsets = vec![offset];
    for n in 1..=3 {
        let (args, offset) = event(&next_skip_ping(&mut ws).await.unwrap());
        assert_eq!(args, serde_json::json!(["e", n]));
        offsets.push(offset);
    }
    assert_eq!(
        answer(&next_skip_ping(&mut ws).await.unwrap()),
        (sid.clone(), pid)
    );
    let (again, recovered) = probe.connect().await;
    assert!(recovered, "the connect handler sees socket.recovered()");
    assert_eq!(again.id().as_str(), sid);
    assert_eq!(
        probe.middleware_runs.load(Ordering::SeqCst),
        1,
        "skipMiddlewares: not run on restore"
    );
    // Live again, after the replay, once; the old handle reaches it too,
    // and follows it to its new session.
    assert!(
        socket.connected(),
        "the old handle sees the restored socket"
    );
    socket.emit("e", &4).unwrap();
    let (args, last) = event(&next_skip_ping(&mut ws).await.unwrap());
    assert_eq!(args, serde_json::json!(["e", 4]));
    offsets.push(last);
    let mut unique = offsets.clone();
    unique.dedup();
    assert_eq!(unique.len(), 5, "{offsets:?}");
    let me = whoami(&mut ws).await;
    assert_eq!(me[0], serde_json::json!(sid));
    assert_eq!(me[1], serde_json::json!(true));
    assert_eq!(me[2], serde_json::json!({"n": 7}));
    assert!(me[3].as_array().unwrap().contains(&serde_json::json!("r1")));
}

#[tokio::test]
async fn after_the_window_it_is_a_fresh_session_with_middlewares() {
    let (_io, addr, mut probe) = server(Duration::from_millis(300), Duration::from_secs(30)).await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    let (sid, pid) = answer(&next_skip_ping(&mut ws).await.unwrap());
    let (socket, _) = probe.connect().await;
    send(&mut ws, r#"421["join","r1"]"#).await;
    next_skip_ping(&mut ws).await.unwrap();
    socket.emit("e", &0).unwrap();
    let (_, offset) = event(&next_skip_ping(&mut ws).await.unwrap());
    drop(ws);
    assert_eq!(probe.disconnect().await, DisconnectReason::TransportClose);
    socket.emit("e", &1).unwrap();
    // Past the window (and the store's once-a-second sweep).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut ws = reconnect(addr, &pid, &offset).await;
    let (sid2, pid2) = answer(&next_skip_ping(&mut ws).await.unwrap());
    assert_ne!(sid2, sid);
    assert_ne!(pid2, pid);
    let (_, recovered) = probe.connect().await;
    assert!(!recovered);
    assert_eq!(probe.middleware_runs.load(Ordering::SeqCst), 2);
    // Nothing replayed: the next message is the whoami answer.
    let me = whoami(&mut ws).await;
    assert_eq!(me[1], serde_json::json!(false));
    assert_eq!(me[2], serde_json::json!({}));
    assert!(!me[3].as_array().unwrap().contains(&serde_json::json!("r1")));
}

#[tokio::test]
async fn close_connection_keeps_no_session() {
    let (_io, addr, mut probe) = server(Duration::from_secs(10), Duration::from_secs(30)).await;
    let (mut ws, sid, pid, _socket, offset) = connected_with_offset(addr, &mut probe).await;
    send(&mut ws, r#"42["kill"]"#).await;
    assert!(closed(&mut ws).await);
    assert_eq!(
        probe.disconnect().await,
        DisconnectReason::ServerNamespaceDisconnect
    );
    let mut ws = reconnect(addr, &pid, &offset).await;
    let (sid2, pid2) = answer(&next_skip_ping(&mut ws).await.unwrap());
    assert_ne!(sid2, sid);
    assert_ne!(pid2, pid);
    assert!(!probe.connect().await.1);
}

/// The packets of a polling GET, answering pings with a POST.
async fn poll(http: &Http, q: &str) -> Vec<String> {
    let mut packets = Vec::new();
    for packet in http.get(q).await.text().split('\x1e') {
        if packet == "2" {
            assert_eq!(http.post(q, "3").await.text(), "ok");
        } else {
            packets.push(packet.to_owned());
        }
    }
    packets
}

#[tokio::test]
async fn polling_ping_timeout_is_recovered() {
    let (io, addr, mut probe) = server(Duration::from_secs(10), Duration::from_millis(200)).await;
    let http = Http::new(addr, "/socket.io");
    let q = sid_query(&http.open().await);
    assert_eq!(http.post(&q, "40").await.text(), "ok");
    let got = poll(&http, &q).await;
    let (sid, pid) = answer(&got[0]);
    let (socket, _) = probe.connect().await;
    assert_eq!(http.post(&q, r#"421["join","r1"]"#).await.text(), "ok");
    let mut got = Vec::new();
    while got.is_empty() {
        got = poll(&http, &q).await;
    }
    assert!(got[0].starts_with("431["), "{got:?}");
    socket.emit("e", &0).unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        got = poll(&http, &q).await;
    }
    let (_, offset) = event(&got[0]);

    // The client stops polling: the server's ping times out.
    assert_eq!(probe.disconnect().await, DisconnectReason::PingTimeout);
    io.to("/", "r1").emit("e", &1).unwrap();
    socket.emit("e", &2).unwrap();

    let q = sid_query(&http.open().await);
    let connect = format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#);
    assert_eq!(http.post(&q, connect).await.text(), "ok");
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(poll(&http, &q).await);
    }
    assert_eq!(event(&got[0]).0, serde_json::json!(["e", 1]));
    assert_eq!(event(&got[1]).0, serde_json::json!(["e", 2]));
    assert_eq!(answer(&got[2]), (sid.clone(), pid));
    assert_eq!(got.len(), 3, "{got:?}");
    let (again, recovered) = probe.connect().await;
    assert!(recovered);
    assert_eq!(again.id().as_str(), sid);
    assert!(again.rooms().contains(&"r1".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_sockets_connect_handler_runs_after_its_old_disconnect_handler() {
    type Log = Arc<std::sync::Mutex<Vec<String>>>;
    let log: Log = Arc::default();
    let io = SocketIo::builder(SocketIoConfig {
        connection_state_recovery: Some(RecoveryConfig::default()),
        ..SocketIoConfig::default()
    })
    .with_state(log.clone())
    .namespace("/", |ns| {
        ns.on_connect(|socket: Socket, State(log): State<Log>| {
            log.lock()
                .unwrap()
                .push(format!("connect recovered={}", socket.recovered()));
        })
        .on_disconnect(async |reason: DisconnectReason, State(log): State<Log>| {
            // A slow disconnect handler: the restored socket's connect
            // handler must still come after it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            log.lock()
                .unwrap()
                .push(format!("disconnect {}", reason.as_str()));
        })
        .on("hit", |socket: Socket| {
            let _ = socket.emit("e", &0);
        })
    })
    .build();
    let addr = serve(io.clone()).await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    let (sid, pid) = answer(&next_skip_ping(&mut ws).await.unwrap());
    send(&mut ws, r#"42["hit"]"#).await;
    let (_, offset) = event(&next_skip_ping(&mut ws).await.unwrap());
    drop(ws);
    // Back at once, while the old disconnect handler sleeps.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut ws = reconnect(addr, &pid, &offset).await;
    assert_eq!(answer(&next_skip_ping(&mut ws).await.unwrap()).0, sid);
    tokio::time::timeout(WAIT, async {
        while log.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "connect recovered=false".to_owned(),
            "disconnect transport close".to_owned(),
            "connect recovered=true".to_owned(),
        ]
    );
}

/// The conformance contract's `malformed-auth-fresh` case through the
/// adapter: a CONNECT with the pid and offset of a socket still connected
/// waits for that socket's connection to answer one extra ping, then gets
/// a fresh session; the connected socket is undisturbed.
#[tokio::test]
async fn a_connect_naming_a_live_socket_gets_a_fresh_session_once_its_connection_answers() {
    let (_io, addr, mut probe) = server(Duration::from_secs(10), Duration::from_secs(30)).await;
    let (mut a, sid, pid, socket, offset) = connected_with_offset(addr, &mut probe).await;

    let mut b = reconnect(addr, &pid, &offset).await;
    // The probe: one ping long before the 30 s interval; answered.
    assert_eq!(next(&mut a).await.unwrap(), "2");
    send(&mut a, "3").await;
    let (fresh, fresh_pid) = answer(&next_skip_ping(&mut b).await.unwrap());
    assert_ne!(fresh, sid);
    assert_ne!(fresh_pid, pid);
    let (other, recovered) = probe.connect().await;
    assert!(!recovered);
    assert_eq!(other.id().as_str(), fresh);
    // Undisturbed: same socket, still connected, nothing disconnected.
    let me = whoami(&mut a).await;
    assert_eq!(me[0], serde_json::json!(sid));
    assert_eq!(me[1], serde_json::json!(false));
    assert!(socket.connected());
    assert!(probe.disconnects().is_empty());
}

/// Issue #16 through the adapter: the client's connection died without the
/// server noticing (it still holds the WebSocket), and the client comes
/// back with its pid and offset. The old connection is probed, misses the
/// ping timeout (0.5 s, the interval being 30 s), leaves as a ping timeout
/// and the reconnection restores the socket with what it missed.
#[tokio::test]
async fn a_reconnect_restores_a_socket_whose_old_connection_died_unnoticed() {
    let (_io, addr, mut probe) = server_with(
        Duration::from_secs(10),
        Duration::from_secs(30),
        Duration::from_millis(500),
    )
    .await;
    let (a, sid, pid, socket, offset) = connected_with_offset(addr, &mut probe).await;
    // From here `a` reads and answers nothing: half-open. This is lost.
    socket.emit("e", &1).unwrap();

    let started = tokio::time::Instant::now();
    let mut b = reconnect(addr, &pid, &offset).await;
    assert_eq!(probe.disconnect().await, DisconnectReason::PingTimeout);
    let (args, _) = event(&next_skip_ping(&mut b).await.unwrap());
    assert_eq!(args, serde_json::json!(["e", 1]), "the missed event, once");
    assert_eq!(
        answer(&next_skip_ping(&mut b).await.unwrap()),
        (sid.clone(), pid)
    );
    let (again, recovered) = probe.connect().await;
    assert!(recovered);
    assert_eq!(again.id().as_str(), sid);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "decided by the probe's ping timeout, not the 30 s heartbeat"
    );
    socket.emit("e", &2).unwrap();
    let (args, _) = event(&next_skip_ping(&mut b).await.unwrap());
    assert_eq!(args, serde_json::json!(["e", 2]));
    drop(a);
}
