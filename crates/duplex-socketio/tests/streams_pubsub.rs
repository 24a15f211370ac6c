//! The streams protocol of `@socket.io/redis-streams-adapter` 0.3.x
//! (requests and responses over pub/sub, no heartbeats), byte for byte
//! with Node's `@msgpack/msgpack`, and how a node leaves the cluster in
//! both versions.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use duplex_socketio::Value;
use duplex_socketio::cluster::sharded::{ClusterBody, ClusterMessage};
use duplex_socketio::cluster::streams::{self, hash_code, stream_name};
use duplex_socketio::cluster::{
    Answer, ClusterNode, LocalAction, NodeEvent, Opts, RequestEvent, RequestsConfig,
    StreamsOptions, StreamsVersion, Subscription, Transmit, WirePacket,
};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Node 0.3.1's FETCH_SOCKETS request (`encode` of `{type: 7, data: {opts:
/// {rooms: ["r"], except: [], flags: {}}, requestId: "abc"}, uid, nsp}`).
const FETCH: &str = "84a47479706507a46461746182a46f70747383a5726f6f6d7391a172a665786365707490a5666c61677380a9726571756573744964a3616263a3756964b030313233343536373839616263646566a36e7370a12f";
/// Node 0.3.1's SERVER_SIDE_EMIT_RESPONSE with a Buffer in its packet.
const SSE_RESPONSE: &str = "84a4747970650aa46461746182a9726571756573744964a3616263a67061636b65749301a178c4020102a3756964a27532a36e7370a12f";

fn node(version: StreamsVersion, uid: &str, now: Instant) -> ClusterNode {
    let options = StreamsOptions {
        version,
        ..StreamsOptions::default()
    };
    ClusterNode::streams(options, uid, "/", RequestsConfig::default(), now)
}

fn transmits(node: &mut ClusterNode) -> Vec<Transmit> {
    std::iter::from_fn(|| node.poll_transmit()).collect()
}

#[test]
fn pubsub_messages_are_node_s_bytes() {
    for fixture in [FETCH, SSE_RESPONSE] {
        let bytes = hex(fixture);
        let message = streams::decode_pubsub(&bytes).unwrap();
        assert_eq!(streams::encode_pubsub(&message), bytes);
    }
    let fetch = streams::decode_pubsub(&hex(FETCH)).unwrap();
    assert!(
        matches!(fetch.body, ClusterBody::FetchSockets { ref request_id, .. } if request_id == "abc")
    );
    let message = streams::decode_pubsub(&hex(SSE_RESPONSE)).unwrap();
    assert_eq!(message.uid, "u2");
    let ClusterBody::ServerSideEmitResponse { request_id, packet } = message.body else {
        panic!("a server-side emit response");
    };
    assert_eq!(request_id, "abc");
    assert_eq!(
        packet,
        Value::Array(vec![
            Value::from(1),
            Value::from("x"),
            Value::Binary(vec![1, 2].into())
        ])
    );
}

#[test]
fn stream_names_follow_node_s_hash_code() {
    // Node's values (`hashCode` of 0.3.1, then `% 4`).
    assert_eq!(hash_code("/"), 47);
    assert_eq!(hash_code("/chat"), 46_457_863);
    assert_eq!(hash_code("/é"), 1690);
    assert_eq!(hash_code("/chat-room-1"), -1_859_388_347);
    assert_eq!(stream_name("socket.io", 1, "/chat-room-1"), "socket.io");
    assert_eq!(stream_name("socket.io", 4, "/"), "socket.io-3");
    assert_eq!(stream_name("socket.io", 4, "/x-negative"), "socket.io-1");
    // JavaScript's remainder keeps the dividend's sign.
    assert_eq!(stream_name("socket.io", 4, "/chat-room-1"), "socket.io--3");
    assert_eq!(stream_name("socket.io", 4, "/zzzzzzzz"), "socket.io--1");
    // -0 prints as 0.
    assert_eq!(
        stream_name("socket.io", 4, "/admin-namespace-with-a-long-name"),
        "socket.io-0"
    );
}

#[test]
fn v0_3_requests_and_responses_go_over_pubsub_and_the_count_is_numsub() {
    let now = Instant::now();
    let mut a = node(StreamsVersion::V0_3, "aaaa", now);
    // No heartbeat, two subscriptions, NUMSUB of the public channel.
    assert!(transmits(&mut a).is_empty());
    let subs: Vec<Subscription> = std::iter::from_fn(|| a.poll_subscription()).collect();
    assert_eq!(
        subs,
        [
            Subscription::Subscribe("socket.io#/#".into()),
            Subscription::Subscribe("socket.io#/#aaaa#".into()),
        ]
    );
    assert_eq!(a.server_count(), None);
    assert_eq!(a.count_channel(), "socket.io#/#");
    assert_eq!(a.stream(), Some("socket.io"));

    // A fetch over three servers: PUBLISHed on the public channel.
    a.fetch_sockets("req1", &Opts::default(), Vec::new(), 3, now)
        .unwrap();
    let out = transmits(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].channel, "socket.io#/#");
    assert!(out[0].stream.is_none() && !out[0].sharded);
    let request = streams::decode_pubsub(&out[0].payload).unwrap();
    assert!(matches!(request.body, ClusterBody::FetchSockets { .. }));

    // b answers on a's own channel.
    let mut b = node(StreamsVersion::V0_3, "bbbb", now);
    b.receive("socket.io#/#", &out[0].payload).unwrap();
    let Some(NodeEvent::Local(LocalAction::Fetch {
        requester,
        request_id,
        ..
    })) = b.poll_event()
    else {
        panic!("a fetch to answer");
    };
    b.answer_fetch(&requester, &request_id, Vec::new());
    let answer = transmits(&mut b);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].channel, "socket.io#/#aaaa#");

    // Two answers complete it; the first alone does not.
    a.receive("socket.io#/#aaaa#", &answer[0].payload).unwrap();
    assert!(a.poll_event().is_none());
    let other = ClusterMessage {
        uid: "cccc".into(),
        nsp: "/".into(),
        body: ClusterBody::FetchSocketsResponse {
            request_id: "req1".into(),
            sockets: Vec::new(),
        },
    };
    a.receive("socket.io#/#aaaa#", &streams::encode_pubsub(&other))
        .unwrap();
    assert!(matches!(
        a.poll_event(),
        Some(NodeEvent::Request(RequestEvent::Completed { result, .. }))
            if result.iter().all(|r| matches!(r, Answer::Sockets(s) if s.is_empty()))
    ));

    // Server-side emits and broadcasts with acks go over pub/sub too; a
    // plain broadcast goes to the stream.
    a.server_side_emit(vec![Value::from("ev")], None, now)
        .unwrap();
    a.broadcast_with_ack(
        "req2",
        WirePacket::event("ev", vec![]),
        &Opts::default(),
        Duration::from_secs(1),
        now,
    )
    .unwrap();
    a.broadcast(WirePacket::event("ev", vec![]), &Opts::default());
    let out = transmits(&mut a);
    assert_eq!(out.len(), 3);
    assert!(
        out[..2]
            .iter()
            .all(|t| t.channel == "socket.io#/#" && t.stream.is_none())
    );
    assert!(out[2].stream.is_some() && out[2].channel == "socket.io");
}

#[test]
fn v0_3_ignores_heartbeats_of_the_stream() {
    let now = Instant::now();
    let mut a = node(StreamsVersion::V0_3, "aaaa", now);
    let fields = streams::encode_entry(&ClusterMessage {
        uid: "old".into(),
        nsp: "/".into(),
        body: ClusterBody::InitialHeartbeat,
    });
    a.receive_entry("1-0", &fields, now).unwrap();
    assert!(transmits(&mut a).is_empty(), "no HEARTBEAT answer");
    assert_eq!(a.server_count(), None);
}

#[test]
fn a_closing_node_announces_it() {
    let now = Instant::now();
    // 0.3.x: it unsubscribes (NUMSUB stops counting it).
    let mut a = node(StreamsVersion::V0_3, "aaaa", now);
    while a.poll_subscription().is_some() {}
    a.close(now);
    let subs: Vec<Subscription> = std::iter::from_fn(|| a.poll_subscription()).collect();
    assert_eq!(
        subs,
        [
            Subscription::Unsubscribe("socket.io#/#".into()),
            Subscription::Unsubscribe("socket.io#/#aaaa#".into()),
        ]
    );
    assert!(transmits(&mut a).is_empty());

    // 0.2.x: ADAPTER_CLOSE in the stream, and no heartbeat after it; a
    // 0.2.x peer stops counting it at once.
    let mut b = node(StreamsVersion::V0_2, "bbbb", now);
    let mut peer = node(StreamsVersion::V0_2, "peer", now);
    for t in transmits(&mut b) {
        peer.receive_entry("1-0", &t.stream.unwrap().fields, now)
            .unwrap();
    }
    assert_eq!(peer.server_count(), Some(2));
    b.close(now);
    let out = transmits(&mut b);
    assert_eq!(out.len(), 1);
    let fields = &out[0].stream.as_ref().unwrap().fields;
    assert!(fields.contains(&("type".to_owned(), "13".to_owned())));
    peer.receive_entry("2-0", fields, now).unwrap();
    assert_eq!(peer.server_count(), Some(1));
    b.handle_timeout(now + Duration::from_secs(60));
    assert!(transmits(&mut b).is_empty(), "no heartbeat once closed");
}

/// Review of #16, finding 6: after `close` (`SocketIo::shutdown`) the node
/// has left the cluster, so its own requests would wait for answers that
/// cannot come, until their timeout. They now answer at once with the
/// local part, whatever server count the caller passes.
#[test]
fn a_closed_node_answers_its_own_requests_at_once() {
    let now = Instant::now();
    for version in [StreamsVersion::V0_3, StreamsVersion::V0_2] {
        let mut a = node(version, "aaaa", now);
        let mut peer = node(version, "peer", now);
        if version == StreamsVersion::V0_2 {
            // The peer's heartbeat: node a counts two servers.
            for t in transmits(&mut peer) {
                a.receive_entry("1-0", &t.stream.unwrap().fields, now)
                    .unwrap();
            }
            assert_eq!(a.server_count(), Some(2));
        }
        a.close(now);
        while a.poll_event().is_some() {}
        transmits(&mut a);
        assert_eq!(a.server_count(), Some(1), "{version:?}");

        a.fetch_sockets("f1", &Opts::default(), Vec::new(), 3, now)
            .unwrap();
        a.server_side_emit(vec![Value::from("hi")], Some(("e1", 3)), now)
            .unwrap();
        let done: Vec<String> = std::iter::from_fn(|| a.poll_event())
            .filter_map(|e| match e {
                NodeEvent::Request(RequestEvent::Completed { request_id, .. }) => Some(request_id),
                _ => None,
            })
            .collect();
        assert_eq!(done, ["f1", "e1"], "{version:?}");
        assert!(transmits(&mut a).is_empty(), "nothing asked of the others");
        a.add_all("s1", &["s1".to_owned()]);
        let local = a
            .broadcast_with_ack(
                "b1",
                WirePacket::event("ev", []),
                &Opts::default(),
                Duration::from_secs(5),
                now,
            )
            .unwrap();
        assert_eq!(local, ["s1"]);
        assert_eq!(transmits(&mut a).len(), 1, "the others still get it");
        a.handle_timeout(now + Duration::from_secs(60));
        assert!(
            std::iter::from_fn(|| a.poll_event())
                .all(|e| !matches!(e, NodeEvent::Request(RequestEvent::TimedOut { .. }))),
            "nothing was waiting"
        );
    }
}
