//! The Socket.IO server over loopback, with a plain HTTP client and the
//! duplex WebSocket client speaking the wire format by hand, so that every
//! byte the server writes is checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod socketio_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duplex_tokio::socketio::{
    AckError, AckSender, Args, ConnectRefusal, Data, DisconnectReason, Event, Extension, Handshake,
    NamespaceHandlers, Socket, SocketExtensions, SocketIo, SocketIoConfig, State, TryData, Value,
};
use socketio_common::*;
use tokio::sync::mpsc;

/// The conformance handlers (shared/conformance/socketio-suites.md).
fn conformance(ns: NamespaceHandlers) -> NamespaceHandlers {
    ns.on_connect(|socket: Socket| {
        let auth = socket.handshake().auth.clone();
        socket.emit_args("auth", vec![auth]).unwrap();
    })
    .on("message", |socket: Socket, Args(args): Args| {
        let _ = socket.emit_args("message-back", args);
    })
    .on("message-with-ack", |Args(args): Args, ack: AckSender| {
        let _ = ack.send_args(args);
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
            ns.on("ask", move |socket: Socket, Args(args): Args| {
                let tx = tx.clone();
                let timeout = Duration::from_millis(if args.is_empty() { 150 } else { 5000 });
                socket.emit_with_ack_callback("question", args, Some(timeout), move |reply| {
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
            ns.on(
                "join",
                |socket: Socket, Data(room): Data<String>, ack: AckSender| {
                    socket.join(&room);
                    let _ = ack.send(&socket.rooms());
                },
            )
            .on("leave", |socket: Socket, Data(room): Data<String>| {
                socket.leave(&room);
            })
            .on("say", |socket: Socket, Args(args): Args| {
                let room = args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let n = socket.to(&room).emit_args("said", args).unwrap();
                let _ = socket.emit("count", &n);
            })
            .on("all", |socket: Socket, Args(args): Args| {
                let _ = socket.broadcast().emit_args("said", args);
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
    assert_eq!(io.of("/").to("red").emit_args("news", vec![]).unwrap(), 1);
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
        ns.use_middleware(|handshake: Handshake| match handshake.auth.get("token") {
            Some(Value::String(t)) if t == "ok" => Ok(()),
            _ => Err(ConnectRefusal {
                message: "not authorized".into(),
                data: Some(serde_json::json!({"retry": false})),
            }),
        })
        .on_disconnect(move |reason: DisconnectReason| seen.lock().unwrap().push(reason))
        .on("bye", |socket: Socket| socket.disconnect())
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
    // A struct, not json!: its fields keep their order whether or not
    // serde_json's preserve_order is on in this build.
    #[derive(serde::Serialize)]
    struct Moved {
        x: i32,
        y: i32,
        n: u32,
    }
    let io = SocketIo::builder(config())
        .namespace("/", |ns| {
            ns.on_connect(|socket: Socket| {
                socket.extensions().insert(Count(0));
            })
            .on(
                "move",
                |socket: Socket,
                 Data(m): Data<Move>,
                 Extension(Count(n)): Extension<Count>,
                 ack: AckSender| {
                    socket.extensions().insert(Count(n + 1));
                    let _ = ack.send(&Moved {
                        x: m.x * 2,
                        y: m.y * 2,
                        n: n + 1,
                    });
                },
            )
            .on("try-move", |data: TryData<Move>, ack: AckSender| {
                let answer = match data.0 {
                    Ok(m) => format!("{},{}", m.x, m.y),
                    Err(e) => format!("bad move: {e}"),
                };
                let _ = ack.send(&answer);
            })
        })
        .build();
    let addr = serve(io.clone()).await;
    let (mut ws, _) = sio_connect(addr).await;
    send(&mut ws, r#"421["move",{"x":1,"y":-2}]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"431[{"x":2,"y":-4,"n":1}]"#);
    // Data that does not fit skips the handler; the next event still works.
    send(&mut ws, r#"422["move","nope"]"#).await;
    send(&mut ws, r#"423["move",{"x":0,"y":0}]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"433[{"x":0,"y":0,"n":2}]"#);
    // TryData lets the handler answer it instead.
    send(&mut ws, r#"424["try-move","nope"]"#).await;
    let answer = next(&mut ws).await.unwrap();
    assert!(
        answer.starts_with(r#"434["bad move: invalid type: string \"nope\""#),
        "{answer}"
    );
    send(&mut ws, r#"425["try-move",{"x":3,"y":4}]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"435["3,4"]"#);
}

/// `Args` takes the arguments only when no later parameter reads them:
/// one before `Data` or another `Args` leaves them there, and one before
/// the socket and the ack (the echo handler's shape) still has them all.
#[tokio::test]
async fn args_before_other_readers_of_the_arguments_leaves_them_there() {
    let io = SocketIo::builder(config())
        .namespace("/", |ns| {
            ns.on(
                "args-then-data",
                |Args(args): Args, Data(n): Data<u32>, ack: AckSender| {
                    let _ = ack.send_args(vec![Value::from(args.len()), Value::from(n)]);
                },
            )
            .on(
                "args-twice",
                |Args(first): Args, Args(second): Args, ack: AckSender| {
                    let _ = ack.send_args([first, second].concat());
                },
            )
            .on(
                "args-then-socket",
                |Args(args): Args, _socket: Socket, ack: AckSender| {
                    let _ = ack.send_args(args);
                },
            )
        })
        .build();
    let addr = serve(io.clone()).await;
    let (mut ws, _) = sio_connect(addr).await;
    send(&mut ws, r#"421["args-then-data",7]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"431[1,7]"#);
    send(&mut ws, r#"422["args-twice","a",2]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"432["a",2,"a",2]"#);
    send(&mut ws, r#"423["args-then-socket","b",{"c":3}]"#).await;
    assert_eq!(next(&mut ws).await.unwrap(), r#"433["b",{"c":3}]"#);
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

#[tokio::test]
async fn async_handlers_await_typed_acks_and_state_and_middleware_come_from_the_builder() {
    #[derive(serde::Serialize)]
    struct Question<'a> {
        q: &'a str,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)] // read through Debug
    struct Answer {
        a: u32,
    }
    #[derive(Clone)]
    struct Greeting(&'static str);
    #[derive(Clone)]
    struct User(String);
    #[derive(serde::Deserialize)]
    struct Auth {
        token: String,
    }
    let io = SocketIo::builder(config())
        .with_state(Greeting("hello"))
        .namespace("/", |ns| {
            // Async middleware: it may await, and leaves the user for the
            // handlers.
            ns.use_middleware(async |Data(auth): Data<Auth>, ext: SocketExtensions| {
                tokio::time::sleep(Duration::from_millis(10)).await;
                match auth.token.strip_prefix("user:") {
                    Some(name) => {
                        ext.insert(User(name.to_owned()));
                        Ok(())
                    }
                    None => Err(ConnectRefusal::new("who are you?")),
                }
            })
            .on_connect(
                |socket: Socket,
                 State(Greeting(g)): State<Greeting>,
                 Extension(User(u)): Extension<User>| {
                    let _ = socket.emit("hi", &format!("{g} {u}"));
                },
            )
            .on("quiz", async |socket: Socket, Data(ms): Data<u64>| {
                let answer = socket
                    .emit_with_ack::<_, Answer>(
                        "question",
                        &Question { q: "2+2" },
                        Duration::from_millis(ms),
                    )
                    .await;
                let _ = socket.emit("result", &format!("{answer:?}"));
            })
            // State never given: the handler is skipped, the socket goes on.
            .on("unstated", |socket: Socket, State(n): State<u64>| {
                let _ = socket.emit("n", &n);
            })
            .on_any(
                |socket: Socket, Event(name): Event, ack: Option<AckSender>| {
                    let _ = socket.emit("unknown", &(name, ack.is_some()));
                },
            )
        })
        .build();
    let addr = serve(io.clone()).await;
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    next(&mut ws).await.unwrap();
    send(&mut ws, r#"40{"token":"nobody"}"#).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"44{"message":"who are you?"}"#
    );
    send(&mut ws, r#"40{"token":"user:ann"}"#).await;
    assert!(next(&mut ws).await.unwrap().starts_with(r#"40{"sid":"#));
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["hi","hello ann"]"#);
    // The ack arrives typed...
    send(&mut ws, r#"42["quiz",5000]"#).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"420["question",{"q":"2+2"}]"#
    );
    send(&mut ws, r#"430[{"a":4}]"#).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"42["result","Ok(Answer { a: 4 })"]"#
    );
    // ...or does not fit the type...
    send(&mut ws, r#"42["quiz",5000]"#).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"421["question",{"q":"2+2"}]"#
    );
    send(&mut ws, r#"431["four"]"#).await;
    let result = next(&mut ws).await.unwrap();
    assert!(
        result.starts_with(r#"42["result","Err(InvalidPayload("#),
        "{result}"
    );
    // ...or times out.
    send(&mut ws, r#"42["quiz",50]"#).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"422["question",{"q":"2+2"}]"#
    );
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"42["result","Err(Timeout)"]"#
    );
    send(&mut ws, r#"42["unstated"]"#).await;
    send(&mut ws, r#"425["whatever"]"#).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"42["unknown",["whatever",true]]"#
    );
}

#[tokio::test]
async fn typed_emits_send_bytes_as_attachments_keep_field_order_and_refuse_odd_keys() {
    // Fields out of alphabetical order, so a sorted map would show.
    #[derive(serde::Serialize)]
    struct Upload {
        zeta: &'static str,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        alpha: u8,
        #[serde(with = "serde_bytes")]
        thumb: Vec<u8>,
    }
    let io = SocketIo::builder(config())
        .namespace("/", |ns| {
            ns.on_connect(|socket: Socket| {
                let upload = Upload {
                    zeta: "z",
                    data: vec![1, 2, 3],
                    alpha: 7,
                    thumb: vec![],
                };
                socket.emit("upload", &upload).unwrap();
                // A key JSON cannot write: an error to the caller, not a
                // panic, and the socket goes on.
                let mut odd = std::collections::BTreeMap::new();
                odd.insert(vec![1u8], 1);
                let refused = socket.emit("odd", &odd);
                let encode = matches!(refused, Err(duplex_tokio::Error::Encode));
                socket.emit("after", &encode).unwrap();
            })
        })
        .build();
    let addr = serve(io.clone()).await;
    let (mut ws, _) = sio_connect(addr).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        r#"452-["upload",{"zeta":"z","data":{"_placeholder":true,"num":0},"alpha":7,"thumb":{"_placeholder":true,"num":1}}]"#
    );
    assert_eq!(next(&mut ws).await.unwrap(), "<bin:[1, 2, 3]>");
    assert_eq!(next(&mut ws).await.unwrap(), "<bin:[]>");
    assert_eq!(next(&mut ws).await.unwrap(), r#"42["after",true]"#);
}

/// Every socket of a connection sees the opening request's headers and
/// query, whichever namespace it joins and in what order (the server keeps
/// them once per connection and hands each socket its copy), middleware
/// included.
#[tokio::test]
async fn every_socket_of_a_connection_sees_the_opening_headers_and_query() {
    fn tell(ns: NamespaceHandlers) -> NamespaceHandlers {
        ns.on_connect(|socket: Socket| {
            let handshake = socket.handshake();
            let host = handshake
                .headers
                .get("host")
                .map(|h| h.to_str().unwrap().to_owned());
            let _ = socket.emit_args(
                "handshake",
                vec![
                    Value::from(handshake.namespace.clone()),
                    Value::from(handshake.query.clone()),
                    Value::from(host.unwrap_or_default()),
                ],
            );
        })
    }
    let io = SocketIo::builder(config())
        .namespace("/", tell)
        .namespace("/a", tell)
        .namespace("/mw", |ns| {
            tell(ns.use_middleware(|handshake: Handshake| {
                if handshake.query.contains("x=1") && handshake.headers.contains_key("host") {
                    Ok(())
                } else {
                    Err(ConnectRefusal::new("no query"))
                }
            }))
        })
        .build();
    let addr = serve(io).await;
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket&x=1").await;
    assert!(next(&mut ws).await.unwrap().starts_with("0{"));
    let query = "EIO=4&transport=websocket&x=1";
    let host = addr.to_string();
    for (connect, namespace) in [("40/a,", "/a"), ("40", "/"), ("40/mw,", "/mw")] {
        send(&mut ws, connect).await;
        let ok = next_skip_ping(&mut ws).await.unwrap();
        assert!(ok.starts_with(&format!("{connect}{{\"sid\":")), "{ok}");
        let prefix = if namespace == "/" {
            String::new()
        } else {
            format!("{namespace},")
        };
        assert_eq!(
            next_skip_ping(&mut ws).await.unwrap(),
            format!("42{prefix}[\"handshake\",\"{namespace}\",\"{query}\",\"{host}\"]")
        );
    }
}
