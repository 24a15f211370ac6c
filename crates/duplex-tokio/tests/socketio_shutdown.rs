//! The Socket.IO server's graceful shutdown and its volatile drop, over
//! loopback: `SocketIo::shutdown` closes every client as Node's
//! `io.close()` does (the disconnect handlers see `server shutting down`,
//! the recovery sessions are kept, every transport is closed so that the
//! client reconnects, and is recovered), and a volatile emit goes only to
//! a transport that is writable now, as Node's `Client.writeToEngine`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

use std::time::Duration;

use duplex_tokio::socketio::client::{
    ClientConfig, ClientEvent, ClientSocket, ClientTransports, Manager,
};
use duplex_tokio::socketio::{DisconnectReason, RecoveryConfig, SocketIo, SocketIoConfig, Value};
use socketio_common::probe::Probe;
use socketio_common::*;

/// A server with recovery on (10 s), pings every 30 s so that none gets
/// in the way.
async fn server() -> (SocketIo, std::net::SocketAddr, Probe) {
    let (probe, feed) = Probe::new();
    let config = SocketIoConfig {
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(30),
        connection_state_recovery: Some(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(10),
            ..RecoveryConfig::default()
        }),
        ..SocketIoConfig::default()
    };
    let io = SocketIo::builder(config)
        .namespace("/", move |ns| feed.handlers(ns))
        .build();
    let addr = serve(io.clone()).await;
    (io, addr, probe)
}

/// `{"sid","pid"}` of a CONNECT answer.
fn answer(text: &str) -> (String, String) {
    assert!(text.starts_with("40{"), "not a CONNECT answer: {text}");
    let json: serde_json::Value = serde_json::from_str(&text[2..]).unwrap();
    (
        json["sid"].as_str().unwrap().to_owned(),
        json["pid"].as_str().unwrap().to_owned(),
    )
}

/// An EVENT's arguments and its offset (the last argument).
fn event(text: &str) -> (serde_json::Value, String) {
    assert!(text.starts_with("42["), "not an event: {text}");
    let mut items: Vec<serde_json::Value> = serde_json::from_str(&text[2..]).unwrap();
    let offset = items.pop().unwrap().as_str().unwrap().to_owned();
    (serde_json::Value::Array(items), offset)
}

/// Polls until something comes (each GET ends with a packet or a ping).
async fn poll_some(http: &Http, q: &str) -> Vec<String> {
    loop {
        let got: Vec<String> = http
            .get(q)
            .await
            .text()
            .split('\x1e')
            .filter(|p| *p != "2")
            .map(str::to_owned)
            .collect();
        if !got.is_empty() {
            return got;
        }
    }
}

/// Waits until the server holds `n` parked requests.
async fn parked(io: &SocketIo, n: usize) {
    tokio::time::timeout(WAIT, async {
        while io.in_flight().0 != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the GET was not parked in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_raw_client_and_keeps_their_sessions() {
    let (io, addr, mut probe) = server().await;
    // A WebSocket client, with an event (and its offset) received.
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert!(next(&mut ws).await.unwrap().starts_with("0{"));
    send(&mut ws, "40").await;
    let (sid, pid) = answer(&next(&mut ws).await.unwrap());
    let (socket, _) = probe.connect().await;
    socket.emit("e", &0).unwrap();
    let (_, offset) = event(&next(&mut ws).await.unwrap());
    // A polling client with a GET parked, and one between two GETs.
    let http = Http::new(addr, "/socket.io");
    let q_parked = sid_query(&http.open().await);
    assert_eq!(http.post(&q_parked, "40").await.text(), "ok");
    answer(&poll_some(&http, &q_parked).await[0]);
    probe.connect().await;
    let q_idle = sid_query(&http.open().await);
    assert_eq!(http.post(&q_idle, "40").await.text(), "ok");
    answer(&poll_some(&http, &q_idle).await[0]);
    probe.connect().await;
    let get = {
        let http = Http::new(addr, "/socket.io");
        let q = q_parked.clone();
        tokio::spawn(async move { http.get(&q).await.text() })
    };
    parked(&io, 1).await;

    assert_eq!(io.shutdown().await, 3);
    assert_eq!(
        probe.disconnects(),
        [DisconnectReason::ServerShuttingDown; 3],
        "every disconnect handler ran before shutdown returned"
    );
    assert_eq!(io.connection_count(), 0);
    assert_eq!(io.session_count(), 0);
    // What each client sees: its transport closes, nothing else.
    assert_eq!(
        next(&mut ws).await,
        None,
        "the WebSocket closed, no DISCONNECT"
    );
    assert_eq!(
        get.await.unwrap(),
        "1",
        "the parked GET gets the close packet"
    );
    let reply = http.get(&q_idle).await;
    assert_eq!(
        reply.status,
        400,
        "the idle session is gone: {}",
        reply.text()
    );

    // Missed while away, then the WebSocket client comes back: restored.
    socket.emit("e", &1).unwrap();
    io.of("/").emit("e", &2).unwrap();
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert!(next(&mut ws).await.unwrap().starts_with("0{"));
    send(
        &mut ws,
        &format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#),
    )
    .await;
    assert_eq!(
        event(&next(&mut ws).await.unwrap()).0,
        serde_json::json!(["e", 1])
    );
    assert_eq!(
        event(&next(&mut ws).await.unwrap()).0,
        serde_json::json!(["e", 2])
    );
    assert_eq!(answer(&next(&mut ws).await.unwrap()), (sid.clone(), pid));
    let (again, recovered) = probe.connect().await;
    assert!(recovered);
    assert_eq!(again.id().as_str(), sid);
}

async fn next_event(socket: &mut ClientSocket) -> ClientEvent {
    tokio::time::timeout(WAIT, socket.next_event())
        .await
        .expect("no client event in time")
        .expect("the manager closed")
}

/// The duplex client through a shutdown: it sees its transport close,
/// reconnects by itself and is recovered with what it missed.
async fn rust_client_is_recovered_after_a_shutdown(transports: ClientTransports) {
    let (io, addr, mut probe) = server().await;
    let mut config = ClientConfig::new(&format!("http://{addr}"));
    config.transports = transports;
    config.reconnection_delay = Duration::from_millis(200);
    config.reconnection_delay_max = Duration::from_millis(400);
    let manager = Manager::new(config);
    let mut client = manager.socket("/", None);
    let sid = match next_event(&mut client).await {
        ClientEvent::Connect {
            sid,
            recovered: false,
        } => sid,
        other => panic!("first event {other:?}"),
    };
    let (socket, _) = probe.connect().await;
    socket.emit("e", &0).unwrap();
    assert!(
        matches!(next_event(&mut client).await, ClientEvent::Event { name, .. } if name == "e")
    );

    assert_eq!(io.shutdown().await, 1);
    assert_eq!(probe.disconnects(), [DisconnectReason::ServerShuttingDown]);
    // Before the client is back (it waits its reconnection delay).
    socket.emit("e", &1).unwrap();
    io.of("/").emit("e", &2).unwrap();
    match next_event(&mut client).await {
        ClientEvent::Disconnect { reason } => assert!(
            reason == "transport close" || reason == "transport error",
            "{reason}"
        ),
        other => panic!("expected the disconnection, got {other:?}"),
    }
    let mut got = Vec::new();
    loop {
        match next_event(&mut client).await {
            ClientEvent::Connect {
                sid: again,
                recovered,
            } => {
                assert!(recovered, "recovered after the shutdown");
                assert_eq!(again, sid);
                break;
            }
            ClientEvent::Event { args, .. } => got.push(args),
            ClientEvent::ConnectError { .. } | ClientEvent::Disconnect { .. } => {}
            other => panic!("before the reconnection: {other:?}"),
        }
    }
    while got.len() < 2 {
        if let ClientEvent::Event { args, .. } = next_event(&mut client).await {
            got.push(args);
        }
    }
    let numbers: Vec<Option<&Value>> = got.iter().map(|args| args.first()).collect();
    assert_eq!(numbers, [Some(&Value::from(1)), Some(&Value::from(2))]);
    assert!(
        probe.connect().await.1,
        "the connect handler sees it recovered"
    );
    manager.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_over_websocket_is_recovered_after_a_shutdown() {
    rust_client_is_recovered_after_a_shutdown(ClientTransports::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_over_polling_is_recovered_after_a_shutdown() {
    rust_client_is_recovered_after_a_shutdown(ClientTransports::Polling).await;
}

// One thread: two emits in a row run with nothing written in between.
#[tokio::test]
async fn volatile_emits_go_only_to_a_writable_transport() {
    let (io, addr, mut probe) = server().await;

    // Polling: writable only while a GET is parked.
    let http = Http::new(addr, "/socket.io");
    let q = sid_query(&http.open().await);
    assert_eq!(http.post(&q, "40").await.text(), "ok");
    answer(&poll_some(&http, &q).await[0]);
    let (socket, _) = probe.connect().await;
    assert_eq!(socket.volatile().emit("v", &1).unwrap(), 0, "no GET parked");
    assert_eq!(io.volatile_dropped(), 1);
    let get = {
        let http = Http::new(addr, "/socket.io");
        let q = q.clone();
        tokio::spawn(async move { http.get(&q).await.text() })
    };
    parked(&io, 1).await;
    assert_eq!(
        socket.volatile().emit("v", &2).unwrap(),
        1,
        "a GET is parked"
    );
    assert_eq!(
        socket.volatile().emit("v", &3).unwrap(),
        0,
        "already answered"
    );
    socket.emit("e", &4).unwrap();
    let first = get.await.unwrap();
    assert!(first.starts_with(r#"42["v",2]"#), "{first}");
    let second = poll_some(&http, &q).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(event(&second[0]).0, serde_json::json!(["e", 4]));
    assert_eq!(io.volatile_dropped(), 2);

    // WebSocket: writable once what was handed to it is written.
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert!(next(&mut ws).await.unwrap().starts_with("0{"));
    send(&mut ws, "40").await;
    answer(&next(&mut ws).await.unwrap());
    let (socket, _) = probe.connect().await;
    // The writes are reported at the next input; give the task its turn.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        socket.volatile().emit("v", &5).unwrap(),
        1,
        "nothing in flight"
    );
    assert_eq!(
        socket.volatile().emit("v", &6).unwrap(),
        0,
        "5 is in flight"
    );
    socket.emit("e", &7).unwrap();
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["v",5]"#);
    assert_eq!(
        event(&next(&mut ws).await.unwrap()).0,
        serde_json::json!(["e", 7])
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        socket.volatile().emit("v", &8).unwrap(),
        1,
        "written: writable again"
    );
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["v",8]"#);
    assert_eq!(io.volatile_dropped(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_after_the_upgrade_is_recovered_after_a_shutdown() {
    rust_client_is_recovered_after_a_shutdown(ClientTransports::PollingThenWebSocket).await;
}
