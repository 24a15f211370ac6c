//! The Socket.IO server over loopback, with a plain HTTP client and the
//! duplex WebSocket client speaking the wire format by hand, so that every
//! byte the server writes is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duplex_tokio::socketio::{
    AckError, ConnectRefusal, DisconnectReason, NamespaceHandlers, SocketIo, SocketIoConfig, Value,
};
use socketio_common::*;
use tokio::sync::mpsc;

/// The conformance handlers (shared/conformance/socketio-suites.md).
fn conformance(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_connect(|socket| {
        let auth = socket.handshake().auth.clone();
        socket.emit("auth", vec![auth]).unwrap();
    })
    .on("message", |socket, args, _| {
        let _ = socket.emit("message-back", args);
    })
    .on("message-with-ack", |_, args, ack| {
        if let Some(ack) = ack {
            let _ = ack.send(args);
        }
    })
}

fn config() -> SocketIoConfig {
    SocketIoConfig {
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(30),
        ..SocketIoConfig::default()
    }
}

async fn conformance_server(config: SocketIoConfig) -> (SocketIo, std::net::SocketAddr) {
    let io = SocketIo::builder(config)
        .namespace("/", conformance)
        .namespace("/custom", conformance)
        .build();
    let addr = serve(io.clone()).await;
    (io, addr)
}

#[tokio::test]
async fn polling_connect_event_and_ack_byte_for_byte() {
    let (_io, addr) = conformance_server(config()).await;
    let http = Http::new(addr, "/socket.io");
    let sid = http.open().await;
    let q = sid_query(&sid);
    assert_eq!(http.post(&q, r#"40{"token":"123"}"#).await.text(), "ok");
    let reply = http.get(&q).await.text();
    let (connect, auth) = reply.split_once('\x1e').unwrap();
    assert!(connect.starts_with(r#"40{"sid":""#), "{connect}");
    assert_eq!(auth, r#"42["auth",{"token":"123"}]"#);
    // Two packets in one POST, answers in one GET, in order.
    let body = "42[\"message\",1,\"2\",{\"3\":[true]}]\x1e42456[\"message-with-ack\",\"\u{1F600}\u{2028}\"]";
    assert_eq!(http.post(&q, body).await.text(), "ok");
    assert_eq!(
        http.get(&q).await.text(),
        "42[\"message-back\",1,\"2\",{\"3\":[true]}]\x1e43456[\"\u{1F600}\u{2028}\"]"
    );
}

#[tokio::test]
async fn polling_binary_attachments_travel_as_base64() {
    let (_io, addr) = conformance_server(config()).await;
    let http = Http::new(addr, "/socket.io");
    let sid = http.open().await;
    let q = sid_query(&sid);
    http.post(&q, "40").await;
    http.get(&q).await;
    let body = "451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID";
    assert_eq!(http.post(&q, body).await.text(), "ok");
    assert_eq!(
        http.get(&q).await.text(),
        "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"
    );
}

#[tokio::test]
async fn websocket_binary_event_and_binary_ack() {
    let (_io, addr) = conformance_server(config()).await;
    let (mut ws, _) = sio_connect(addr).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["auth",{}]"#);
    send(
        &mut ws,
        r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"nested":[{"_placeholder":true,"num":1}]}]"#,
    )
    .await;
    send_binary(&mut ws, &[1, 2, 3]).await;
    send_binary(&mut ws, &[]).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"462-789[{"_placeholder":true,"num":0},{"nested":[{"_placeholder":true,"num":1}]}]"#
    );
    assert_eq!(next(&mut ws).await.unwrap(), "<bin:[1, 2, 3]>");
    assert_eq!(next(&mut ws).await.unwrap(), "<bin:[]>");
}

#[tokio::test]
async fn namespaces_unknown_refused_custom_multiplexed() {
    let (_io, addr) = conformance_server(config()).await;
    let (mut ws, main_sid) = sio_connect(addr).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["auth",{}]"#);
    send(&mut ws, "40/random").await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"44/random,{"message":"Invalid namespace"}"#
    );
    send(&mut ws, r#"40/custom,{"a":1}"#).await;
    let ok = next(&mut ws).await.unwrap();
    assert!(ok.starts_with(r#"40/custom,{"sid":""#), "{ok}");
    assert!(
        !ok.contains(&main_sid),
        "each namespace has its own socket id"
    );
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"42/custom,["auth",{"a":1}]"#
    );
    send(&mut ws, r#"42/custom,["message","c"]"#).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"42/custom,["message-back","c"]"#
    );
    send(&mut ws, "41/custom").await;
    send(&mut ws, r#"42/custom,["message","ignored"]"#).await;
    send(&mut ws, r#"42["message","m"]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["message-back","m"]"#);
}

#[tokio::test]
async fn malformed_packets_close_the_connection() {
    let (_io, addr) = conformance_server(config()).await;
    for bad in [
        "4abc",
        "42{}",
        r#"42abc["message"]"#,
        r#"40"not an object""#,
    ] {
        let (mut ws, _) = sio_connect(addr).await;
        next(&mut ws).await.unwrap();
        send(&mut ws, bad).await;
        assert!(closed(&mut ws).await, "{bad} should close the connection");
    }
    // A bad CONNECT as the very first packet, too.
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    next(&mut ws).await.unwrap();
    send(&mut ws, "4abc").await;
    assert!(closed(&mut ws).await);
}

#[tokio::test]
async fn no_connect_is_closed_after_connect_timeout() {
    let (io, addr) = conformance_server(SocketIoConfig {
        connect_timeout: Duration::from_millis(200),
        ..config()
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    next(&mut ws).await.unwrap();
    assert!(closed(&mut ws).await);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(io.connection_count(), 0);
}

#[tokio::test]
async fn server_acks_time_out_or_arrive_with_binary() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let io = SocketIo::builder(config())
        .namespace("/", move |ns| {
            ns.on("ask", move |socket, args, _| {
                let tx = tx.clone();
                let timeout = Duration::from_millis(if args.is_empty() { 150 } else { 5000 });
                socket.emit_with_ack("question", args, Some(timeout), move |reply| {
                    let _ = tx.send(reply);
                });
            })
        })
        .build();
    let addr = serve(io.clone()).await;
    let (mut ws, _) = sio_connect(addr).await;
    // Unanswered: the callback gets a timeout.
    send(&mut ws, r#"42["ask"]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"420["question"]"#);
    let reply = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(reply, Err(AckError::Timeout)), "{reply:?}");
    // Answered with a binary attachment.
    send(&mut ws, r#"42["ask","x"]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"421["question","x"]"#);
    send(&mut ws, r#"461-1["y",{"_placeholder":true,"num":0}]"#).await;
    send_binary(&mut ws, &[7, 7]).await;
    let reply = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.unwrap(),
        vec![Value::from("y"), Value::Binary(vec![7u8, 7].into())]
    );
    // A late or unknown ack id is ignored.
    send(&mut ws, r#"430["late"]"#).await;
    send(&mut ws, r#"42["ask","z"]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"422["question","z"]"#);
    drop(ws);
    let reply = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(reply, Err(AckError::Disconnected)), "{reply:?}");
}

#[tokio::test]
async fn rooms_broadcast_to_members_but_the_sender() {
    let io = SocketIo::builder(config())
        .namespace("/", |ns| {
            ns.on("join", |socket, args, ack| {
                if let Some(Value::String(room)) = args.first() {
                    socket.join(room);
                }
                if let Some(ack) = ack {
                    let rooms = socket.rooms().into_iter().map(Value::from).collect();
                    let _ = ack.send(vec![Value::Array(rooms)]);
                }
            })
            .on("leave", |socket, args, _| {
                if let Some(Value::String(room)) = args.first() {
                    socket.leave(room);
                }
            })
            .on("say", |socket, args, _| {
                let room = args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let n = socket.to(&room).emit("said", args).unwrap();
                let _ = socket.emit("count", vec![Value::from(n as i64)]);
            })
            .on("all", |socket, args, _| {
                let _ = socket.broadcast().emit("said", args);
            })
        })
        .build();
    let addr = serve(io.clone()).await;
    let (mut a, a_id) = sio_connect(addr).await;
    let (mut b, _) = sio_connect(addr).await;
    let (mut c, _) = sio_connect(addr).await;
    send(&mut a, r#"421["join","red"]"#).await;
    let mut expected = vec![a_id.clone(), "red".to_owned()];
    expected.sort();
    assert_eq!(
        next(&mut a).await.unwrap(),
        format!("431[{}]", serde_json::to_string(&expected).unwrap())
    );
    send(&mut b, r#"421["join","red"]"#).await;
    next(&mut b).await.unwrap();
    send(&mut a, r#"42["say","red",1]"#).await;
    assert_eq!(next(&mut b).await.unwrap(), r#"42["said","red",1]"#);
    assert_eq!(next(&mut a).await.unwrap(), r#"42["count",1]"#);
    send(&mut c, r#"42["all"]"#).await;
    assert_eq!(next(&mut a).await.unwrap(), r#"42["said"]"#);
    assert_eq!(next(&mut b).await.unwrap(), r#"42["said"]"#);
    send(&mut b, r#"42["leave","red"]"#).await;
    send(&mut c, r#"42["say","red",2]"#).await;
    assert_eq!(next(&mut c).await.unwrap(), r#"42["count",1]"#);
    assert_eq!(next(&mut a).await.unwrap(), r#"42["said","red",2]"#);
    // Server-wide emit to a room of a namespace.
    assert_eq!(io.of("/").to("red").emit("news", vec![]).unwrap(), 1);
    assert_eq!(next(&mut a).await.unwrap(), r#"42["news"]"#);
    assert_eq!(io.of("/").sockets().len(), 3);
}

#[tokio::test]
async fn middleware_refuses_with_data_and_disconnect_reasons_are_reported() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let io = SocketIo::builder(SocketIoConfig {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(100),
        ..SocketIoConfig::default()
    })
    .namespace("/", move |ns| {
        ns.use_middleware(|handshake| match handshake.auth.get("token") {
            Some(Value::String(t)) if t == "ok" => Ok(()),
            _ => Err(ConnectRefusal {
                message: "not authorized".into(),
                data: Some(serde_json::json!({"retry": false})),
            }),
        })
        .on_disconnect(move |_, reason| seen.lock().unwrap().push(reason))
        .on("bye", |socket, _, _| socket.disconnect())
    })
    .build();
    let addr = serve(io.clone()).await;

    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    next(&mut ws).await.unwrap();
    send(&mut ws, r#"40{"token":"no"}"#).await;
    assert_eq!(
        next_skip_ping(&mut ws).await.unwrap(),
        r#"44{"message":"not authorized","data":{"retry":false}}"#
    );
    // Client namespace disconnect.
    send(&mut ws, r#"40{"token":"ok"}"#).await;
    assert!(next_skip_ping(&mut ws).await.unwrap().starts_with("40{"));
    send(&mut ws, "41").await;
    // Server namespace disconnect: the client gets `41`.
    send(&mut ws, r#"40{"token":"ok"}"#).await;
    assert!(next_skip_ping(&mut ws).await.unwrap().starts_with("40{"));
    send(&mut ws, r#"42["bye"]"#).await;
    assert_eq!(next_skip_ping(&mut ws).await.unwrap(), "41");
    // Transport close.
    send(&mut ws, r#"40{"token":"ok"}"#).await;
    assert!(next_skip_ping(&mut ws).await.unwrap().starts_with("40{"));
    drop(ws);
    // Ping timeout: connect and then never answer a ping.
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    next(&mut ws).await.unwrap();
    send(&mut ws, r#"40{"token":"ok"}"#).await;
    assert!(next(&mut ws).await.unwrap().starts_with("40{"));
    assert!(closed(&mut ws).await);
    let deadline = tokio::time::Instant::now() + WAIT;
    while reasons.lock().unwrap().len() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *reasons.lock().unwrap(),
        [
            DisconnectReason::ClientNamespaceDisconnect,
            DisconnectReason::ServerNamespaceDisconnect,
            DisconnectReason::TransportClose,
            DisconnectReason::PingTimeout,
        ]
    );
}

#[tokio::test]
async fn typed_handlers_and_per_socket_state() {
    #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
    struct Move {
        x: i32,
        y: i32,
    }
    #[derive(Clone)]
    struct Count(u32);
    let io = SocketIo::builder(config())
        .namespace("/", |ns| {
            ns.on_connect(|socket| {
                socket.extensions().insert(Count(0));
            })
            .on_typed::<Move>("move", |socket, m, ack| {
                let n = {
                    let mut ext = socket.extensions();
                    let count = ext.get_mut::<Count>().unwrap();
                    count.0 += 1;
                    count.0
                };
                // A struct, not json!: its fields keep their order whether
                // or not serde_json's preserve_order is on in this build.
                #[derive(serde::Serialize)]
                struct Moved {
                    x: i32,
                    y: i32,
                    n: u32,
                }
                if let Some(ack) = ack {
                    let _ = ack.send_json(&Moved {
                        x: m.x * 2,
                        y: m.y * 2,
                        n,
                    });
                }
            })
        })
        .build();
    let addr = serve(io.clone()).await;
    let (mut ws, _) = sio_connect(addr).await;
    send(&mut ws, r#"421["move",{"x":1,"y":-2}]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"431[{"x":2,"y":-4,"n":1}]"#);
    // Arguments of the wrong shape are dropped, the next event still works.
    send(&mut ws, r#"422["move","nope"]"#).await;
    send(&mut ws, r#"423["move",{"x":0,"y":0}]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"433[{"x":0,"y":0,"n":2}]"#);
}

#[tokio::test]
async fn engineio_v3_clients_get_socketio_v4_with_the_implicit_default_namespace() {
    let (_io, addr) = conformance_server(SocketIoConfig {
        allow_eio3: true,
        ..config()
    })
    .await;
    let mut ws = ws_connect(addr, "/socket.io/?EIO=3&transport=websocket").await;
    assert!(next(&mut ws).await.unwrap().starts_with("0{"));
    // v4: `/` is connected at once, without a CONNECT from the client.
    assert_eq!(next(&mut ws).await.unwrap(), "40");
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["auth",{}]"#);
    send(&mut ws, r#"42["message",1]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["message-back",1]"#);
    // v3 clients ping, the server pongs.
    send(&mut ws, "2").await;
    assert_eq!(next(&mut ws).await.unwrap(), "3");
    // Without allow_eio3 the handshake is refused.
    let (_io, addr) = conformance_server(config()).await;
    let http = Http::new(addr, "/socket.io");
    assert_eq!(http.get("EIO=3&transport=polling").await.status, 400);
}
