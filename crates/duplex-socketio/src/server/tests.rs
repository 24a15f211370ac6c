//! The server machine driven by hand: no IO, simulated time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

type Srv = Server<&'static str, &'static str>;

fn server() -> Srv {
    server_with(ServerConfig::default())
}

fn server_with(config: ServerConfig) -> Srv {
    Server::new(config.with_rng(StdRng::seed_from_u64(7)))
}

fn text(server: &mut Srv, session: &'static str, data: &'static str) {
    server.handle_text(&session, Bytes::from_static(data.as_bytes()));
}

/// Every queued transmit as `(session, text)`, or `(session, "<close>")`.
fn sent(server: &mut Srv) -> Vec<(&'static str, String)> {
    std::iter::from_fn(|| server.poll_transmit())
        .map(|t| match t {
            Transmit::Packet { session, packet } => (
                session,
                String::from_utf8(packet.text.as_bytes().to_vec()).unwrap(),
            ),
            Transmit::Volatile { session, packet } => {
                (session, format!("<volatile>{}", packet.text.as_str()))
            }
            Transmit::Close { session } => (session, "<close>".to_owned()),
            Transmit::Probe { session } => (session, "<probe>".to_owned()),
        })
        .collect()
}

fn events(server: &mut Srv) -> Vec<ServerEvent<&'static str, &'static str>> {
    std::iter::from_fn(|| server.poll_event()).collect()
}

/// Opens `session` and connects it to `namespace`; returns the socket id.
fn connected(
    server: &mut Srv,
    session: &'static str,
    namespace: &'static str,
    now: Instant,
) -> SocketId {
    server.open(session, ProtocolVersion::V5, now);
    connect(server, session, namespace)
}

fn connect(server: &mut Srv, session: &'static str, namespace: &'static str) -> SocketId {
    let packet = if namespace == "/" {
        "0".to_owned()
    } else {
        format!("0{namespace},")
    };
    server.handle_text(&session, Bytes::from(packet));
    match server.poll_event() {
        Some(ServerEvent::ConnectRequest { namespace: ns, .. }) => assert_eq!(ns, namespace),
        other => panic!("expected a connect request, got {other:?}"),
    }
    let id = server.accept(&session, namespace).unwrap();
    sent(server);
    id
}

#[test]
fn v5_connect_is_answered_with_the_sid_and_events_flow() {
    let now = Instant::now();
    let mut s = server();
    s.open("a", ProtocolVersion::V5, now);
    assert!(sent(&mut s).is_empty(), "v5 waits for the client's CONNECT");
    text(&mut s, "a", r#"0/admin,{"token":"abc"}"#);
    assert_eq!(
        events(&mut s),
        [ServerEvent::ConnectRequest {
            session: "a",
            namespace: "/admin".to_owned(),
            auth: Value::from(serde_json::json!({"token": "abc"})),
            implicit: false,
        }]
    );
    let id = s.accept(&"a", "/admin").unwrap();
    assert_eq!(id.as_str().len(), 20);
    assert_eq!(
        sent(&mut s),
        [("a", format!(r#"0/admin,{{"sid":"{id}"}}"#))]
    );
    assert_eq!(s.rooms_of("/admin", &id), [id.as_str().to_owned()]);

    text(&mut s, "a", r#"2/admin,7["hello",1,{"x":true}]"#);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Event {
            session: "a",
            namespace: "/admin".into(),
            socket: id.clone(),
            name: "hello".to_owned(),
            args: vec![Value::from(1), Value::from(serde_json::json!({"x": true}))],
            ack_id: Some(7),
        }]
    );
    // The answer goes through `send`, which checks the namespace.
    s.send(
        &"a",
        &Packet::ack_with("/admin", &["ok".into()], 7).unwrap(),
    )
    .unwrap();
    assert_eq!(sent(&mut s), [("a", r#"3/admin,7["ok"]"#.to_owned())]);
    // Not joined: refused locally, ignored from the client.
    assert!(
        s.send(&"a", &Packet::event_with("/", "x", &[], None).unwrap())
            .is_err()
    );
    text(&mut s, "a", r#"2["ignored"]"#);
    assert!(events(&mut s).is_empty());
}

#[test]
fn binary_events_complete_with_their_attachments() {
    let now = Instant::now();
    let mut s = server();
    let id = connected(&mut s, "a", "/", now);
    text(
        &mut s,
        "a",
        r#"51-["upload",{"_placeholder":true,"num":0}]"#,
    );
    assert!(events(&mut s).is_empty());
    s.handle_binary(&"a", Bytes::from_static(&[1, 2, 3]));
    match events(&mut s).as_slice() {
        [
            ServerEvent::Event {
                socket, name, args, ..
            },
        ] => {
            assert_eq!((socket, name.as_str()), (&id, "upload"));
            assert_eq!(args, &[Value::Binary(Bytes::from_static(&[1, 2, 3]))]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusals_carry_data_in_v5_only() {
    let now = Instant::now();
    let mut s = server();
    s.open("v5", ProtocolVersion::V5, now);
    text(&mut s, "v5", "0/private,");
    events(&mut s);
    let data = serde_json::json!({"code": 42});
    s.reject(&"v5", "/private", "not allowed", Some(&data))
        .unwrap();
    assert_eq!(
        sent(&mut s),
        [(
            "v5",
            r#"4/private,{"message":"not allowed","data":{"code":42}}"#.to_owned()
        )]
    );
    // Refused means forgotten: the client may ask again.
    text(&mut s, "v5", "0/private,");
    assert!(matches!(
        events(&mut s).as_slice(),
        [ServerEvent::ConnectRequest { .. }]
    ));
    // An unknown namespace, with the reference's message.
    text(&mut s, "v5", "0/nope,");
    events(&mut s);
    s.reject(&"v5", "/nope", INVALID_NAMESPACE, None).unwrap();
    assert_eq!(
        sent(&mut s),
        [("v5", r#"4/nope,{"message":"Invalid namespace"}"#.to_owned())]
    );
    // Answering twice is the caller's mistake.
    assert!(matches!(s.accept(&"v5", "/nope"), Err(Error::InvalidState)));

    s.open("v4", ProtocolVersion::V4, now);
    sent(&mut s);
    events(&mut s);
    text(&mut s, "v4", "0/private,");
    events(&mut s);
    s.reject(&"v4", "/private", "not allowed", Some(&data))
        .unwrap();
    assert_eq!(
        sent(&mut s),
        [("v4", r#"4/private,"not allowed""#.to_owned())]
    );
}

#[test]
fn v4_grants_the_default_namespace_at_open_and_drops_queries() {
    let now = Instant::now();
    let mut s = server();
    s.open("a", ProtocolVersion::V4, now);
    assert_eq!(sent(&mut s), [("a", "0".to_owned())]);
    assert_eq!(
        events(&mut s),
        [ServerEvent::ConnectRequest {
            session: "a",
            namespace: "/".to_owned(),
            auth: Value::Object(Vec::new()),
            implicit: true,
        }]
    );
    let root = s.accept(&"a", "/").unwrap();
    assert!(sent(&mut s).is_empty(), "already granted on the wire");
    assert!(s.is_connected(&"a", "/", &root));
    // The implicit grant counts as a namespace joined: no connect timeout.
    s.handle_timeout(now + Duration::from_secs(3600));
    assert!(sent(&mut s).is_empty());

    // A v4 namespace may carry a query; the answer has no sid.
    text(&mut s, "a", "0/admin?token=1,");
    match events(&mut s).as_slice() {
        [ServerEvent::ConnectRequest { namespace, .. }] => assert_eq!(namespace, "/admin"),
        other => panic!("{other:?}"),
    }
    let admin = s.accept(&"a", "/admin").unwrap();
    assert_eq!(sent(&mut s), [("a", "0/admin,".to_owned())]);
    text(&mut s, "a", r#"2/admin?token=1,["hi"]"#);
    match events(&mut s).as_slice() {
        [ServerEvent::Event { socket, name, .. }] => {
            assert_eq!((socket, name.as_str()), (&admin, "hi"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v4_default_namespace_left_unanswered_ignores_its_packets() {
    let now = Instant::now();
    let mut s = server();
    s.open("a", ProtocolVersion::V4, now);
    sent(&mut s);
    events(&mut s);
    text(&mut s, "a", r#"2["nobody listens"]"#);
    assert!(events(&mut s).is_empty());
    // Refused later instead: an ERROR, and the namespace is forgotten.
    s.reject(&"a", "/", "go away", None).unwrap();
    assert_eq!(sent(&mut s), [("a", r#"4"go away""#.to_owned())]);
    text(&mut s, "a", "0");
    assert!(matches!(
        events(&mut s).as_slice(),
        [ServerEvent::ConnectRequest {
            implicit: false,
            ..
        }]
    ));
}

#[test]
fn connect_timeout_closes_a_connection_that_joined_nothing() {
    let t0 = Instant::now();
    let mut s = server_with(ServerConfig {
        connect_timeout: Some(Duration::from_millis(1000)),
        ..ServerConfig::default()
    });
    s.open("idle", ProtocolVersion::V5, t0);
    s.open("busy", ProtocolVersion::V5, t0);
    connect(&mut s, "busy", "/");
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(1000)));
    s.handle_timeout(t0 + Duration::from_micros(999_999));
    assert!(sent(&mut s).is_empty(), "not yet");
    s.handle_timeout(t0 + Duration::from_millis(1000));
    assert_eq!(sent(&mut s), [("idle", "<close>".to_owned())]);
    assert_eq!(s.poll_timeout(), None);
    s.closed(&"idle", DisconnectReason::TransportClose);
    assert!(events(&mut s).is_empty(), "no socket to disconnect");
    assert_eq!(s.connection_count(), 1);
}

#[test]
fn acks_resolve_time_out_and_fail_on_disconnect() {
    let t0 = Instant::now();
    let mut s = server_with(ServerConfig {
        connect_timeout: None,
        ..ServerConfig::default()
    });
    connected(&mut s, "a", "/", t0);
    let second = Duration::from_secs(1);

    let id = s
        .emit_with_ack(
            &"a",
            "/",
            "ping",
            &[Value::from(1)],
            Some(t0 + second),
            "answered",
        )
        .unwrap();
    assert_eq!(id, 0);
    assert_eq!(sent(&mut s), [("a", r#"20["ping",1]"#.to_owned())]);
    s.emit_with_ack(&"a", "/", "ping", &[], Some(t0 + 2 * second), "late")
        .unwrap();
    s.emit_with_ack(&"a", "/", "ping", &[], None, "never")
        .unwrap();
    sent(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + second));

    text(&mut s, "a", r#"30["pong"]"#);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Ack {
            token: "answered",
            result: Ok(vec!["pong".into()]),
        }]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + 2 * second));
    s.handle_timeout(t0 + 2 * second);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Ack {
            token: "late",
            result: Err(AckFailure::Timeout),
        }]
    );
    // Too late, and twice: ignored.
    text(&mut s, "a", r#"31["pong"]"#);
    text(&mut s, "a", r#"30["pong"]"#);
    assert!(events(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), None);

    text(&mut s, "a", "1");
    let events = events(&mut s);
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0],
        ServerEvent::Ack {
            token: "never",
            result: Err(AckFailure::Disconnected),
        }
    );
    assert!(matches!(
        events[1],
        ServerEvent::Disconnect {
            reason: DisconnectReason::ClientNamespaceDisconnect,
            ..
        }
    ));
}

#[test]
fn ack_limit_and_refusals_hand_the_token_back() {
    let now = Instant::now();
    let mut s = server_with(ServerConfig {
        max_pending_acks: 1,
        ..ServerConfig::default()
    });
    connected(&mut s, "a", "/", now);
    s.emit_with_ack(&"a", "/", "e", &[], None, "first").unwrap();
    assert!(matches!(
        s.emit_with_ack(&"a", "/", "e", &[], None, "second"),
        Err((Error::TooManyPendingAcks { limit: 1 }, "second"))
    ));
    assert!(matches!(
        s.emit_with_ack(&"a", "/other", "e", &[], None, "third"),
        Err((Error::InvalidState, "third"))
    ));
    // The event could not be written after all: the token comes back.
    assert_eq!(s.cancel_ack(&"a", "/", 0), Some("first"));
    assert_eq!(s.cancel_ack(&"a", "/", 0), None);
}

#[test]
fn broadcasts_reach_rooms_minus_excepted_rooms_and_sockets() {
    let now = Instant::now();
    let mut s = server();
    let a = connected(&mut s, "a", "/", now);
    let b = connected(&mut s, "b", "/", now);
    let c = connected(&mut s, "c", "/", now);
    let d = connected(&mut s, "d", "/", now);
    connected(&mut s, "other", "/elsewhere", now);
    for id in [&a, &b, &c] {
        s.join("/", id, ["chat"]);
    }
    s.join("/", &c, ["muted"]);
    s.join("/", &d, ["lobby"]);

    let packet = Packet::event_with("/", "news", &[], None).unwrap();
    let target = Broadcast::to("chat")
        .and_to("lobby")
        .except_room("muted")
        .except_socket(a.clone());
    assert_eq!(s.broadcast("/", &target, &packet), 2);
    let mut got = sent(&mut s);
    got.sort();
    assert_eq!(
        got,
        [
            ("b", r#"2["news"]"#.to_owned()),
            ("d", r#"2["news"]"#.to_owned())
        ]
    );
    let mut ids = s.recipients("/", &target);
    ids.sort();
    let mut want = vec![b.clone(), d.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(s.session_of("/", &b), Some(&"b"));

    // Everyone in the namespace, and the room named by a socket's id.
    assert_eq!(s.broadcast("/", &Broadcast::all(), &packet), 4);
    sent(&mut s);
    assert_eq!(s.broadcast("/", &Broadcast::to(c.as_str()), &packet), 1);
    assert_eq!(sent(&mut s), [("c", r#"2["news"]"#.to_owned())]);

    // Leaving a room, and disconnecting, take the socket out.
    s.leave("/", &b, "chat");
    s.closed(&"d", DisconnectReason::TransportClose);
    events(&mut s);
    assert_eq!(
        s.broadcast("/", &Broadcast::to("chat").and_to("lobby"), &packet),
        2
    );
    let mut got = sent(&mut s);
    got.sort();
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(s.broadcast("/nowhere", &Broadcast::all(), &packet), 0);
}

#[test]
fn disconnect_reasons_follow_who_closed() {
    let now = Instant::now();
    let mut s = server();
    let root = connected(&mut s, "a", "/", now);
    let admin = connect(&mut s, "a", "/admin");

    // The server makes one socket leave: DISCONNECT on the wire.
    s.disconnect(&"a", "/admin");
    assert_eq!(sent(&mut s), [("a", "1/admin,".to_owned())]);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Disconnect {
            session: "a",
            namespace: "/admin".to_owned(),
            socket: admin.clone(),
            reason: DisconnectReason::ServerNamespaceDisconnect,
        }]
    );
    assert!(!s.is_connected(&"a", "/admin", &admin));

    // A packet that does not parse: the server closes, and its reason wins
    // over the transport's when the session is reported closed.
    text(&mut s, "a", "2[bad json");
    assert_eq!(sent(&mut s), [("a", "<close>".to_owned())]);
    s.close(&"a", DisconnectReason::ServerShuttingDown);
    assert!(sent(&mut s).is_empty(), "closed once");
    s.closed(&"a", DisconnectReason::TransportClose);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Disconnect {
            session: "a",
            namespace: "/".to_owned(),
            socket: root,
            reason: DisconnectReason::ParseError,
        }]
    );
    assert_eq!(s.connection_count(), 0);

    // Closed by the transport alone: its reason.
    let b = connected(&mut s, "b", "/", now);
    s.closed(&"b", DisconnectReason::PingTimeout);
    assert_eq!(
        events(&mut s),
        [ServerEvent::Disconnect {
            session: "b",
            namespace: "/".to_owned(),
            socket: b,
            reason: DisconnectReason::PingTimeout,
        }]
    );
}

#[test]
fn protocol_violations_close_the_connection() {
    let now = Instant::now();
    for bad in [
        "0",                  // a second CONNECT for `/`
        r#"2"not an array""#, // an event that is not an array
        "2[1]",               // an event without a name
        "9",                  // no such packet type
    ] {
        let mut s = server();
        connected(&mut s, "a", "/", now);
        s.handle_text(&"a", Bytes::from_static(bad.as_bytes()));
        assert_eq!(sent(&mut s), [("a", "<close>".to_owned())], "{bad}");
    }
    let mut s = server_with(ServerConfig {
        max_namespaces: 1,
        ..ServerConfig::default()
    });
    connected(&mut s, "a", "/", now);
    text(&mut s, "a", "0/second,");
    assert_eq!(sent(&mut s), [("a", "<close>".to_owned())]);
}

#[test]
fn engineio_versions_map_to_socketio_revisions() {
    assert_eq!(version_for_engineio(3), ProtocolVersion::V4);
    assert_eq!(version_for_engineio(4), ProtocolVersion::V5);
}

/// One step of a random drive of the machine.
#[derive(Debug, Clone)]
enum Step {
    Text(usize, String),
    Binary(usize, Vec<u8>),
    EmitWithAck(usize, u64),
    Disconnect(usize),
    Close(usize),
    Closed(usize),
    Open(usize, bool),
    Advance(u64),
    Shutdown,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let session = 0..3usize;
    // Mostly plausible packets, some noise.
    let text = prop_oneof![
        Just("0".to_owned()),
        Just("0/a,".to_owned()),
        Just("1".to_owned()),
        Just(r#"2["e",1]"#.to_owned()),
        Just(r#"2/a,5["e"]"#.to_owned()),
        (0..4u64).prop_map(|id| format!(r#"3{id}["r"]"#)),
        Just(r#"51-["b",{"_placeholder":true,"num":0}]"#.to_owned()),
        ".{0,12}",
    ];
    prop_oneof![
        (session.clone(), text).prop_map(|(s, t)| Step::Text(s, t)),
        (
            session.clone(),
            proptest::collection::vec(any::<u8>(), 0..4)
        )
            .prop_map(|(s, b)| Step::Binary(s, b)),
        (session.clone(), 0..3000u64).prop_map(|(s, ms)| Step::EmitWithAck(s, ms)),
        session.clone().prop_map(Step::Disconnect),
        session.clone().prop_map(Step::Close),
        session.clone().prop_map(Step::Closed),
        (session, any::<bool>()).prop_map(|(s, v4)| Step::Open(s, v4)),
        (0..2000u64).prop_map(Step::Advance),
        Just(Step::Shutdown),
    ]
}

proptest::proptest! {
    /// Whatever the clients send and the caller does, in any order: no
    /// panic, each awaited ack has exactly one outcome, and every socket
    /// that disconnects had been accepted, once.
    #[test]
    fn random_drives_keep_the_books(steps in proptest::collection::vec(step(), 0..60)) {
        const SESSIONS: [&str; 3] = ["s0", "s1", "s2"];
        let t0 = Instant::now();
        let mut now = t0;
        let mut s: Server<&'static str, u64> = Server::new(
            ServerConfig {
                connect_timeout: Some(Duration::from_millis(1500)),
                max_namespaces: 2,
                ..ServerConfig::default()
            }
            .with_rng(StdRng::seed_from_u64(1)),
        );
        let mut tokens = 0u64;
        let mut outcomes = std::collections::HashMap::new();
        let mut live = std::collections::HashSet::new();
        for step in steps {
            match step {
                Step::Text(i, t) => s.handle_text(&SESSIONS[i], Bytes::from(t)),
                Step::Binary(i, b) => s.handle_binary(&SESSIONS[i], Bytes::from(b)),
                Step::EmitWithAck(i, ms) => {
                    let deadline = Some(now + Duration::from_millis(ms));
                    match s.emit_with_ack(&SESSIONS[i], "/", "q", &[], deadline, tokens) {
                        Ok(_) => { outcomes.insert(tokens, 0u32); }
                        Err((_, token)) => proptest::prop_assert_eq!(token, tokens),
                    }
                    tokens += 1;
                }
                Step::Disconnect(i) => s.disconnect(&SESSIONS[i], "/"),
                Step::Close(i) => s.close(&SESSIONS[i], DisconnectReason::ServerShuttingDown),
                Step::Closed(i) => s.closed(&SESSIONS[i], DisconnectReason::TransportClose),
                Step::Open(i, v4) => {
                    // A session key is opened once at a time, as the endpoint's are.
                    if s.connections.contains_key(&SESSIONS[i]) {
                        continue;
                    }
                    let version = if v4 { ProtocolVersion::V4 } else { ProtocolVersion::V5 };
                    s.open(SESSIONS[i], version, now);
                }
                Step::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    if s.poll_timeout().is_some_and(|at| at <= now) {
                        s.handle_timeout(now);
                    }
                }
                Step::Shutdown => {
                    s.shutdown();
                    proptest::prop_assert_eq!(s.connection_count(), 0);
                }
            }
            while let Some(event) = s.poll_event() {
                match event {
                    ServerEvent::ConnectRequest { session, namespace, .. } => {
                        if let Ok(id) = s.accept(&session, &namespace) {
                            proptest::prop_assert!(live.insert(id));
                        }
                    }
                    ServerEvent::Ack { token, .. } => {
                        let seen = outcomes.get_mut(&token);
                        proptest::prop_assert!(seen.is_some(), "unknown token {}", token);
                        if let Some(seen) = seen {
                            *seen += 1;
                        }
                    }
                    ServerEvent::Disconnect { socket, .. } => {
                        proptest::prop_assert!(live.remove(&socket));
                    }
                    ServerEvent::Event { socket, .. } => {
                        proptest::prop_assert!(live.contains(&socket));
                    }
                }
            }
            while s.poll_transmit().is_some() {}
        }
        // Closing everything settles every ack.
        for session in SESSIONS {
            s.closed(&session, DisconnectReason::TransportClose);
        }
        while let Some(event) = s.poll_event() {
            match event {
                ServerEvent::Ack { token, .. } => {
                    if let Some(seen) = outcomes.get_mut(&token) {
                        *seen += 1;
                    }
                }
                ServerEvent::Disconnect { socket, .. } => {
                    proptest::prop_assert!(live.remove(&socket));
                }
                _ => {}
            }
        }
        proptest::prop_assert!(live.is_empty());
        proptest::prop_assert!(outcomes.values().all(|n| *n == 1), "{:?}", outcomes);
        proptest::prop_assert_eq!(s.poll_timeout(), None);
    }
}

#[test]
fn unknown_namespaces_get_the_reference_error_but_v4_s_implicit_one_stays_silent() {
    let now = Instant::now();
    let mut s = server();
    s.open("v5", ProtocolVersion::V5, now);
    text(&mut s, "v5", "0/nope,");
    events(&mut s);
    s.reject_unknown(&"v5", "/nope").unwrap();
    assert_eq!(
        sent(&mut s),
        [("v5", r#"4/nope,{"message":"Invalid namespace"}"#.to_owned())]
    );
    // v5's default namespace has no implicit grant: refused like any other.
    text(&mut s, "v5", "0");
    events(&mut s);
    s.reject_unknown(&"v5", "/").unwrap();
    assert_eq!(
        sent(&mut s),
        [("v5", r#"4{"message":"Invalid namespace"}"#.to_owned())]
    );

    // v4 without a `/` namespace: the grant sent at open is not taken back,
    // and the namespace's packets are ignored.
    s.open("v4", ProtocolVersion::V4, now);
    assert_eq!(sent(&mut s), [("v4", "0".to_owned())]);
    events(&mut s);
    s.reject_unknown(&"v4", "/").unwrap();
    assert!(sent(&mut s).is_empty());
    text(&mut s, "v4", r#"2["hi"]"#);
    assert!(events(&mut s).is_empty());
    // Other v4 namespaces are refused with the message alone.
    text(&mut s, "v4", "0/nope,");
    events(&mut s);
    s.reject_unknown(&"v4", "/nope").unwrap();
    assert_eq!(
        sent(&mut s),
        [("v4", r#"4/nope,"Invalid namespace""#.to_owned())]
    );

    assert!(matches!(
        s.reject_unknown(&"gone", "/"),
        Err(Error::InvalidState)
    ));
}

// ---- cluster adapter ----------------------------------------------------

use crate::cluster::{ClusterNode, Protocol, RequestsConfig};

/// Two servers, each a classic cluster node on `/`, joined by a pretend
/// Redis that delivers every published message to both (as PUBLISH does,
/// the sender included).
fn cluster_pair() -> (Srv, Srv) {
    let mut a = server();
    // Another seed: the two servers' socket ids must differ, as random ones do.
    let mut b = Server::new(ServerConfig::default().with_rng(StdRng::seed_from_u64(8)));
    for (s, uid) in [(&mut a, "aaaaaa"), (&mut b, "bbbbbb")] {
        let node = ClusterNode::new(Protocol::default(), uid, "/", RequestsConfig::default());
        s.attach_cluster("/", node);
        while s.poll_cluster_subscription().is_some() {}
    }
    (a, b)
}

/// Delivers every published message of both servers to both, until quiet.
fn deliver(a: &mut Srv, b: &mut Srv) -> usize {
    let mut count = 0;
    loop {
        let mut out = Vec::new();
        while let Some(t) = a.poll_cluster_transmit() {
            out.push(t);
        }
        while let Some(t) = b.poll_cluster_transmit() {
            out.push(t);
        }
        if out.is_empty() {
            return count;
        }
        for (ns, t) in out {
            count += 1;
            a.cluster_receive(&ns, &t.channel, &t.payload).unwrap();
            b.cluster_receive(&ns, &t.channel, &t.payload).unwrap();
        }
    }
}

#[test]
fn cluster_broadcasts_reach_the_sockets_of_both_servers_once() {
    let now = Instant::now();
    let (mut a, mut b) = cluster_pair();
    let a1 = connected(&mut a, "a1", "/", now);
    let _a2 = connected(&mut a, "a2", "/", now);
    let b1 = connected(&mut b, "b1", "/", now);
    let _b2 = connected(&mut b, "b2", "/", now);
    a.join("/", &a1, ["room"]);
    b.join("/", &b1, ["room"]);

    let packet = Packet::event_with("/", "hi", &[Value::from("there")], None).unwrap();
    assert_eq!(a.broadcast("/", &Broadcast::to("room"), &packet), 1);
    assert_eq!(deliver(&mut a, &mut b), 1, "one message on the bus");
    assert_eq!(sent(&mut a), [("a1", r#"2["hi","there"]"#.to_owned())]);
    assert_eq!(sent(&mut b), [("b1", r#"2["hi","there"]"#.to_owned())]);

    // Excepting a socket of the other server works across the bus too.
    let mut target = Broadcast::all().except_socket(b1.clone());
    target.except_rooms.push("nobody".into());
    b.broadcast("/", &target, &packet);
    deliver(&mut a, &mut b);
    let mut got: Vec<_> = sent(&mut a).into_iter().map(|(s, _)| s).collect();
    got.sort();
    assert_eq!(got, ["a1", "a2"]);
    assert_eq!(sent(&mut b), [("b2", r#"2["hi","there"]"#.to_owned())]);

    // `local` stays on the server.
    let local = Opts {
        flags: Some(Value::Object(vec![("local".into(), Value::Bool(true))])),
        ..Opts::default()
    };
    assert_eq!(a.broadcast_opts("/", &local, &packet), 2);
    assert_eq!(deliver(&mut a, &mut b), 0);
    assert!(sent(&mut b).is_empty());
}

#[test]
fn cluster_remote_join_and_disconnect_apply_on_every_server() {
    let now = Instant::now();
    let (mut a, mut b) = cluster_pair();
    let _a1 = connected(&mut a, "a1", "/", now);
    let b1 = connected(&mut b, "b1", "/", now);
    a.cluster_mut("/")
        .unwrap()
        .sockets_rooms(&Opts::default(), &["vip".to_owned()], false);
    deliver(&mut a, &mut b);
    let mut expected = vec![b1.as_str().to_owned(), "vip".to_owned()];
    expected.sort();
    assert_eq!(b.rooms_of("/", &b1), expected);
    assert!(
        a.poll_cluster_event().is_none(),
        "nothing left for the application"
    );

    a.cluster_mut("/")
        .unwrap()
        .disconnect_sockets(&Opts::rooms(["vip"]), false);
    deliver(&mut a, &mut b);
    assert_eq!(sent(&mut b), [("b1", "1".to_owned())]);
    assert!(events(&mut b).iter().any(|e| matches!(
        e,
        ServerEvent::Disconnect {
            reason: DisconnectReason::ServerNamespaceDisconnect,
            ..
        }
    )));
    assert!(
        b.cluster_namespaces() == ["/"],
        "the cluster namespace stays without sockets"
    );
}

#[test]
fn in_memory_namespaces_still_go_away_when_empty() {
    let now = Instant::now();
    let mut s = server();
    let a = connected(&mut s, "a", "/chat", now);
    s.join("/chat", &a, ["r"]);
    s.closed(&"a", DisconnectReason::TransportClose);
    assert!(s.spaces.is_empty());
    assert!(s.cluster_namespaces().is_empty());
}

#[test]
fn volatile_broadcasts_come_out_as_volatile_transmits() {
    let now = Instant::now();
    let mut s = server();
    let a = connected(&mut s, "a", "/", now);
    connected(&mut s, "b", "/", now);
    let packet = Packet::event_with(Str::from("/".to_owned()), "tick", &[1.into()], None).unwrap();
    let volatile = Opts {
        flags: Some(Value::Object(vec![("volatile".into(), true.into())])),
        ..Opts::rooms([a.as_str()])
    };
    assert_eq!(s.broadcast_opts("/", &volatile, &packet), 1);
    assert_eq!(sent(&mut s), [("a", r#"<volatile>2["tick",1]"#.to_owned())]);
    assert_eq!(s.broadcast("/", &Broadcast::all(), &packet), 2);
    let mut got = sent(&mut s);
    got.sort();
    assert_eq!(
        got,
        [
            ("a", r#"2["tick",1]"#.to_owned()),
            ("b", r#"2["tick",1]"#.to_owned())
        ]
    );
}

#[test]
fn shutdown_disconnects_every_socket_with_server_shutting_down_and_closes_every_connection() {
    let now = Instant::now();
    let mut s = server();
    let a = connected(&mut s, "a", "/", now);
    let admin = connect(&mut s, "a", "/admin");
    let b = connected(&mut s, "b", "/", now);
    s.open("idle", ProtocolVersion::V5, now);
    // A connection the server is closing already keeps its reason.
    let c = connected(&mut s, "c", "/", now);
    s.close(&"c", DisconnectReason::ServerNamespaceDisconnect);
    sent(&mut s);
    s.emit_with_ack(&"b", "/", "ask", &[], None, "token-b")
        .unwrap();
    sent(&mut s);

    s.shutdown();
    assert_eq!(
        sent(&mut s),
        [
            ("a", "<close>".to_owned()),
            ("b", "<close>".to_owned()),
            ("idle", "<close>".to_owned()),
        ],
        "no DISCONNECT on the wire, as Node's socket._onclose"
    );
    assert_eq!(
        events(&mut s),
        [
            ServerEvent::Disconnect {
                session: "a",
                namespace: "/".to_owned(),
                socket: a,
                reason: DisconnectReason::ServerShuttingDown,
            },
            ServerEvent::Disconnect {
                session: "a",
                namespace: "/admin".to_owned(),
                socket: admin,
                reason: DisconnectReason::ServerShuttingDown,
            },
            ServerEvent::Ack {
                token: "token-b",
                result: Err(AckFailure::Disconnected),
            },
            ServerEvent::Disconnect {
                session: "b",
                namespace: "/".to_owned(),
                socket: b,
                reason: DisconnectReason::ServerShuttingDown,
            },
            ServerEvent::Disconnect {
                session: "c",
                namespace: "/".to_owned(),
                socket: c,
                reason: DisconnectReason::ServerNamespaceDisconnect,
            },
        ]
    );
    assert_eq!(s.connection_count(), 0);
    assert_eq!(s.poll_timeout(), None, "no connect timeout left");
    // The Engine.IO sessions reported closed afterwards are unknown.
    s.closed(&"a", DisconnectReason::TransportClose);
    assert!(events(&mut s).is_empty());
    // New connections are served.
    connected(&mut s, "d", "/", now);
    assert_eq!(s.connection_count(), 1);
}

/// `all_rooms` is every room of the namespace on this server, sorted, each
/// once: the sockets' own rooms and the rooms they joined, shared or not.
#[test]
fn all_rooms_lists_each_room_of_the_namespace_once_sorted() {
    let now = Instant::now();
    let mut s = server();
    let a = connected(&mut s, "a", "/", now);
    let b = connected(&mut s, "b", "/", now);
    s.join("/", &a, ["lobby", "chat"]);
    s.join("/", &b, ["chat"]);
    let mut expected = vec![
        a.as_str().to_owned(),
        b.as_str().to_owned(),
        "chat".to_owned(),
        "lobby".to_owned(),
    ];
    expected.sort();
    assert_eq!(s.all_rooms("/"), expected);
    assert!(s.all_rooms("/admin").is_empty());
}
