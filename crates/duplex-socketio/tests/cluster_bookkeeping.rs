//! The cluster's bookkeeping in simulated time: requests awaiting other
//! nodes, broadcast acks, heartbeats, and what incoming messages mean for
//! the local sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use duplex_socketio::Value;
use duplex_socketio::cluster::classic::{ClassicBroadcast, ClassicChannels, ClassicRequest};
use duplex_socketio::cluster::sharded::{ClusterBody, ClusterMessage};
use duplex_socketio::cluster::{
    Answer, Expected, Heartbeats, HeartbeatsConfig, InMemoryAdapter, LocalAction, LocalAdapter,
    Opts, RequestEvent, RequestKind, RequestTimeout, Requests, RequestsConfig, RoomChange,
    WirePacket,
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A table with default settings and one request started.
fn started(
    id: &str,
    kind: RequestKind,
    expected: Expected,
    local: Vec<Answer>,
    now: Instant,
) -> Requests {
    let mut r = Requests::new(RequestsConfig::default());
    r.start(id, kind, expected, local, now).unwrap();
    r
}

/// A server-side emit "s" with no local answer, awaiting `others` nodes.
fn emit_awaiting(others: usize, now: Instant) -> Requests {
    started(
        "s",
        RequestKind::ServerSideEmit,
        Expected::Count(others),
        vec![],
        now,
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn fetch_completes_when_every_other_node_answered() {
    let t0 = Instant::now();
    // NUMSUB 3: two other nodes must answer.
    let mut r = started(
        "f1",
        RequestKind::Fetch,
        Expected::Count(2),
        vec![Answer::Sockets(vec![])],
        t0,
    );
    assert_eq!(r.poll_timeout(), Some(t0 + secs(5)));
    assert!(r.is_own("f1"));
    assert!(r.handle_answer("f1", Some("n2"), Answer::Sockets(vec![])));
    assert_eq!(r.poll_event(), None);
    assert!(r.handle_answer("f1", Some("n3"), Answer::Sockets(vec![])));
    match r.poll_event() {
        Some(RequestEvent::Completed {
            request_id, kind, ..
        }) => {
            assert_eq!(request_id, "f1");
            assert_eq!(kind, RequestKind::Fetch);
        }
        other => panic!("{other:?}"),
    }
    // A late answer finds nothing, as in Node.
    assert!(!r.handle_answer("f1", Some("n4"), Answer::Sockets(vec![])));
    assert!(r.is_empty());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn all_rooms_merges_answers_as_a_set_local_first() {
    let t0 = Instant::now();
    let rooms = |v: &[&str]| Answer::Rooms(v.iter().map(|s| s.to_string()).collect());
    let mut r = started(
        "a",
        RequestKind::AllRooms,
        Expected::Count(2),
        vec![rooms(&["x", "y"])],
        t0,
    );
    r.handle_answer("a", None, rooms(&["y", "z"]));
    r.handle_answer("a", None, rooms(&["z", "x", "w"]));
    assert_eq!(
        r.poll_event(),
        Some(RequestEvent::Completed {
            request_id: "a".into(),
            kind: RequestKind::AllRooms,
            result: vec![rooms(&["x", "y", "z", "w"])],
        })
    );
}

#[test]
fn server_side_emit_times_out_with_node_text_and_partial_answers() {
    let t0 = Instant::now();
    let mut r = emit_awaiting(2, t0);
    r.handle_answer("s", Some("n2"), Answer::Emit(Value::Bool(true)));
    r.handle_timeout(t0 + ms(4999));
    assert_eq!(r.poll_event(), None);
    r.handle_timeout(t0 + secs(5));
    assert_eq!(
        r.poll_event(),
        Some(RequestEvent::TimedOut {
            request_id: "s".into(),
            kind: RequestKind::ServerSideEmit,
            result: vec![Answer::Emit(Value::Bool(true))],
            error: RequestTimeout::Count {
                received: 1,
                expected: 2
            },
        })
    );
    assert!(r.is_empty());
}

#[test]
fn nothing_expected_completes_at_once() {
    let t0 = Instant::now();
    let mut r = emit_awaiting(0, t0);
    assert!(matches!(
        r.poll_event(),
        Some(RequestEvent::Completed { .. })
    ));
    assert!(r.is_empty());
}

#[test]
fn heartbeat_requests_wait_for_named_nodes_and_stop_waiting_for_the_gone() {
    let t0 = Instant::now();
    let nodes: HashSet<String> = ["n2", "n3"].iter().map(|s| s.to_string()).collect();
    let mut r = started("f", RequestKind::Fetch, Expected::Nodes(nodes), vec![], t0);
    // The same node answering twice does not count twice.
    r.handle_answer("f", Some("n2"), Answer::Sockets(vec![]));
    r.handle_answer("f", Some("n2"), Answer::Sockets(vec![]));
    assert_eq!(r.poll_event(), None);
    r.node_left("n3");
    assert!(matches!(
        r.poll_event(),
        Some(RequestEvent::Completed { .. })
    ));
}

#[test]
fn heartbeat_timeout_text_counts_the_missing() {
    let t0 = Instant::now();
    let nodes: HashSet<String> = ["n2", "n3"].iter().map(|s| s.to_string()).collect();
    let mut r = started("f", RequestKind::Fetch, Expected::Nodes(nodes), vec![], t0);
    r.handle_timeout(t0 + secs(6));
    match r.poll_event() {
        Some(RequestEvent::TimedOut { error, .. }) => {
            assert_eq!(error.to_string(), "timeout reached: missing 2 responses")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn broadcast_acks_are_forwarded_until_the_broadcast_timeout() {
    let t0 = Instant::now();
    let mut r = Requests::new(RequestsConfig::default());
    r.start_broadcast_ack("b", ms(1000), t0).unwrap();
    assert_eq!(r.poll_timeout(), Some(t0 + ms(1000)));
    assert!(r.handle_client_count("b", 0));
    assert!(r.handle_client_ack("b", Value::String("ok".into())));
    assert_eq!(
        r.poll_event(),
        Some(RequestEvent::ClientCount {
            request_id: "b".into(),
            client_count: 0
        })
    );
    assert!(matches!(
        r.poll_event(),
        Some(RequestEvent::ClientAck { .. })
    ));
    r.handle_timeout(t0 + ms(1000));
    assert!(!r.handle_client_ack("b", Value::Null));
    assert_eq!(r.poll_event(), None);
    assert!(!r.is_own("b"));
}

#[test]
fn pending_requests_are_bounded_and_ids_unique() {
    let t0 = Instant::now();
    let mut r = Requests::new(RequestsConfig {
        max_pending: 2,
        ..RequestsConfig::default()
    });
    r.start("1", RequestKind::Fetch, Expected::Count(1), vec![], t0)
        .unwrap();
    assert!(
        r.start("1", RequestKind::Fetch, Expected::Count(1), vec![], t0)
            .is_err()
    );
    r.start_broadcast_ack("2", secs(1), t0).unwrap();
    assert!(matches!(
        r.start("3", RequestKind::Fetch, Expected::Count(1), vec![], t0),
        Err(duplex_socketio::cluster::Error::TooManyRequests { limit: 2 })
    ));
}

fn msg(uid: &str, body: ClusterBody) -> ClusterMessage {
    ClusterMessage {
        uid: uid.into(),
        nsp: "/".into(),
        body,
    }
}

#[test]
fn heartbeats_count_nodes_and_forget_the_silent() {
    let t0 = Instant::now();
    let mut h = Heartbeats::new("me", HeartbeatsConfig::default(), t0);
    assert_eq!(h.poll_publish(), Some(ClusterBody::InitialHeartbeat));
    assert_eq!(h.server_count(), 1);

    // A newcomer's initial heartbeat is answered, and it is counted.
    assert!(h.handle_message(&msg("n2", ClusterBody::InitialHeartbeat), t0));
    assert_eq!(h.poll_publish(), Some(ClusterBody::Heartbeat));
    assert_eq!(h.server_count(), 2);
    // The emitter is never a node; other messages count their sender.
    assert!(!h.handle_message(
        &msg(
            "emitter",
            ClusterBody::DisconnectSockets {
                opts: Opts::default(),
                close: false
            }
        ),
        t0
    ));
    assert_eq!(h.server_count(), 2);

    // Quiet for the interval: a heartbeat is due.
    assert_eq!(h.poll_timeout(), Some(t0 + secs(1)));
    h.handle_timeout(t0 + secs(5));
    assert_eq!(h.poll_publish(), Some(ClusterBody::Heartbeat));
    assert_eq!(h.poll_publish(), None);

    // n2 heard from at t0 is gone at the first cleanup tick past 10 s.
    h.handle_timeout(t0 + secs(10));
    assert_eq!(h.server_count(), 2);
    h.handle_timeout(t0 + secs(11));
    assert_eq!(h.server_count(), 1);
    assert_eq!(h.poll_gone(), Some("n2".into()));

    // ADAPTER_CLOSE removes at once.
    h.handle_message(&msg("n3", ClusterBody::Heartbeat), t0 + secs(11));
    assert_eq!(h.server_count(), 2);
    h.handle_message(&msg("n3", ClusterBody::AdapterClose), t0 + secs(11));
    assert_eq!(h.server_count(), 1);
    assert_eq!(h.poll_gone(), Some("n3".into()));
}

fn adapter() -> InMemoryAdapter {
    let mut a = InMemoryAdapter::new();
    for (sid, rooms) in [
        ("s1", &["r1", "r2"][..]),
        ("s2", &["r2"][..]),
        ("s3", &[][..]),
    ] {
        let mut all = vec![sid.to_string()];
        all.extend(rooms.iter().map(|r| r.to_string()));
        a.add_all(sid, &all);
    }
    a
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn room_changes_are_reported_as_node_emits_them() {
    let mut a = InMemoryAdapter::new();
    assert_eq!(
        a.add_all("s1", &["s1".into(), "r".into()]),
        vec![
            RoomChange::Created("s1".into()),
            RoomChange::Created("r".into())
        ]
    );
    assert_eq!(a.add_all("s2", &["r".into()]), vec![]);
    assert_eq!(a.del("s1", "r"), vec![]);
    assert_eq!(a.del("s2", "r"), vec![RoomChange::Deleted("r".into())]);
    assert_eq!(a.del_all("s1"), vec![RoomChange::Deleted("s1".into())]);
    assert!(a.all_rooms().is_empty());
}

#[test]
fn classic_broadcasts_select_local_sockets_or_nothing() {
    let a = adapter();
    let ch = ClassicChannels::new("socket.io", "/", "me");
    let b = |uid: &str, opts: Opts| ClassicBroadcast {
        uid: uid.into(),
        packet: WirePacket::event("e", []).with_nsp("/"),
        opts,
    };
    // The local sockets a broadcast on `channel` selects.
    let sockets = |channel: &str, message: &ClassicBroadcast| match a
        .classic_broadcast(&ch, "me", "/", channel, message)
    {
        Some(LocalAction::Emit { sockets, .. }) => Some(sorted(sockets)),
        None => None,
        other => panic!("{other:?}"),
    };
    // Two rooms, a member of both receives once; except leaves out.
    let two = b("other", Opts::rooms(["r1", "r2"]));
    assert_eq!(
        sockets("socket.io#/#", &two),
        Some(vec!["s1".into(), "s2".into()])
    );
    let except = b("other", Opts::default().except(["r1"]));
    assert_eq!(
        sockets("socket.io#/#", &except),
        Some(vec!["s2".into(), "s3".into()])
    );
    // Own messages, other namespaces, rooms with no local member: nothing.
    assert_eq!(sockets("socket.io#/#", &b("me", Opts::default())), None);
    let mut chat = b("other", Opts::default());
    chat.packet.nsp = Some("/chat".into());
    assert_eq!(sockets("socket.io#/#", &chat), None);
    let nowhere = b("other", Opts::rooms(["nowhere"]));
    assert_eq!(sockets("socket.io#/#nowhere#", &nowhere), None);
    // A channel of another namespace is not ours.
    assert_eq!(
        sockets("socket.io#/chat#", &b("other", Opts::default())),
        None
    );
}

#[test]
fn classic_requests_mean_what_node_does_with_them() {
    let a = adapter();
    let mine = |id: &str| id == "mine";
    // Own SOCKETS/ALL_ROOMS/FETCH/BROADCAST ignored by request id.
    let fetch = ClassicRequest::Fetch {
        uid: "me".into(),
        request_id: "mine".into(),
        opts: Opts::default(),
    };
    assert_eq!(a.classic_request("me", mine, &fetch), None);
    let fetch = ClassicRequest::Fetch {
        uid: "n2".into(),
        request_id: "x".into(),
        opts: Opts::rooms(["r2"]).except(["s2"]),
    };
    assert_eq!(
        a.classic_request("me", mine, &fetch),
        Some(LocalAction::Fetch {
            sockets: vec!["s1".into()],
            requester: "n2".into(),
            request_id: "x".into()
        })
    );
    // Own join is applied again, harmlessly.
    let join = ClassicRequest::Rooms {
        uid: "me".into(),
        leave: false,
        opts: Opts::rooms(["r1"]),
        rooms: vec!["new".into()],
    };
    assert_eq!(
        a.classic_request("me", mine, &join),
        Some(LocalAction::Join {
            sockets: vec!["s1".into()],
            rooms: vec!["new".into()]
        })
    );
    // Own server-side emit ignored by uid.
    let sse = ClassicRequest::ServerSideEmit {
        uid: "me".into(),
        request_id: None,
        data: vec![],
    };
    assert_eq!(a.classic_request("me", mine, &sse), None);
    // Legacy sid form: only the node that has the socket answers.
    let leave = ClassicRequest::SocketRoom {
        uid: "n2".into(),
        request_id: "q".into(),
        leave: true,
        sid: "zz".into(),
        room: "r1".into(),
    };
    assert_eq!(a.classic_request("me", mine, &leave), None);
    let leave = ClassicRequest::SocketRoom {
        uid: "n2".into(),
        request_id: "q".into(),
        leave: true,
        sid: "s1".into(),
        room: "r1".into(),
    };
    assert!(matches!(
        a.classic_request("me", mine, &leave),
        Some(LocalAction::Done { .. })
    ));
}

#[test]
fn cluster_messages_mean_what_node_does_with_them() {
    let a = adapter();
    let ack = msg(
        "n2",
        ClusterBody::Broadcast {
            packet: WirePacket::event("e", []),
            request_id: Some("r".into()),
            opts: Opts::rooms(["nowhere"]),
        },
    );
    // A broadcast with acks to no local socket still answers (count 0).
    assert_eq!(
        a.cluster_message("me", "/", &ack),
        Some(LocalAction::EmitWithAck {
            sockets: vec![],
            packet: WirePacket::event("e", []),
            flags: None,
            requester: "n2".into(),
            request_id: "r".into(),
        })
    );
    let dc = msg(
        "n2",
        ClusterBody::DisconnectSockets {
            opts: Opts::default().except(["r2"]),
            close: true,
        },
    );
    assert_eq!(
        a.cluster_message("me", "/", &dc),
        Some(LocalAction::Disconnect {
            sockets: vec!["s3".into()],
            close: true
        })
    );
    assert_eq!(a.cluster_message("n2", "/", &dc), None, "own message");
    assert_eq!(
        a.cluster_message("me", "/chat", &dc),
        None,
        "other namespace"
    );
    let sse = msg(
        "n2",
        ClusterBody::ServerSideEmit {
            request_id: Some("q".into()),
            packet: vec![Value::String("hi".into())],
        },
    );
    assert_eq!(
        a.cluster_message("me", "/", &sse),
        Some(LocalAction::ServerSideEmit {
            data: vec![Value::String("hi".into())],
            reply: Some(("n2".into(), "q".into()))
        })
    );
    assert_eq!(
        a.cluster_message("me", "/", &msg("n2", ClusterBody::Heartbeat)),
        None
    );
}
