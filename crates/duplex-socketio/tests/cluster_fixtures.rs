//! Byte-exact fixtures captured from Node's `@socket.io/redis-adapter`
//! 8.3.0 (socket.io 4.8.1, socket.io-adapter 2.5.x, notepack.io 3) by
//! `tests/fixtures/cluster-capture.js` (its header says how to run it;
//! `node cluster-capture.js --rust` prints the table below). Each is
//! decoded by duplex, checked, and encoded back to the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use bytes::Bytes;
use duplex_socketio::Value;
use duplex_socketio::cluster::classic::{
    ClassicBroadcast, ClassicChannels, ClassicRequest, ClassicResponse,
};
use duplex_socketio::cluster::sharded::{
    ClusterBody, ClusterMessage, ShardedChannels, SubscriptionMode,
};
use duplex_socketio::cluster::{Format, Opts, WirePacket, msgpack};

/// (name, channel, hex bytes) as Node published them.
const FIXTURES: &[(&str, &str, &str)] = &[
    (
        "classic_broadcast_one_room",
        "socket.io#/#room1#",
        "93a641623364456683a47479706502a46461746198a26576a16101d1ff38cb3ff8000000000000ce00011170c402dead82a16bc3a16ec0a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380",
    ),
    (
        "classic_broadcast_rooms_except",
        "socket.io#/#",
        "93a641623364456683a47479706502a46461746192a26576a178a36e7370a12f83a5726f6f6d7392a5726f6f6d31a5726f6f6d32a665786365707491a5726f6f6d33a5666c61677380",
    ),
    (
        "classic_broadcast_all_flags",
        "socket.io#/#",
        "93a641623364456683a47479706502a46461746192a26576c5012c070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2",
    ),
    (
        "classic_request_broadcast_ack",
        "socket.io-request#/#",
        "85a3756964a6416233644566a9726571756573744964a66d673637565fa47479706507a67061636b657483a47479706502a46461746192a761636b2d726571a170a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd03e8",
    ),
    (
        "classic_request_remote_join",
        "socket.io-request#/#",
        "7b22756964223a22416233644566222c2274797065223a322c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b22726f6f6d32225d7d2c22726f6f6d73223a5b22726f6f6d33225d7d",
    ),
    (
        "classic_request_remote_leave",
        "socket.io-request#/#",
        "7b22756964223a22416233644566222c2274797065223a332c226f707473223a7b22726f6f6d73223a5b5d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b22726f6f6d33222c22726f6f6d34225d7d",
    ),
    (
        "classic_request_remote_disconnect",
        "socket.io-request#/#",
        "7b22756964223a22416233644566222c2274797065223a342c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d7d2c22636c6f7365223a747275657d",
    ),
    (
        "classic_request_remote_fetch",
        "socket.io-request#/#",
        "7b22756964223a22416233644566222c22726571756573744964223a2256346334496d222c2274797065223a352c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b2278225d7d7d",
    ),
    (
        "classic_request_all_rooms",
        "socket.io-request#/#",
        "7b22756964223a22416233644566222c22726571756573744964223a224b656a6b336b222c2274797065223a317d",
    ),
    (
        "classic_request_server_side_emit",
        "socket.io-request#/#",
        "7b22756964223a22416233644566222c2274797065223a362c2264617461223a5b22737365222c227061796c6f6164222c7b2274797065223a22427566666572222c2264617461223a5b315d7d2c34325d7d",
    ),
    (
        "classic_request_server_side_emit_ack",
        "socket.io-request#/#",
        "7b22756964223a22416233644566222c22726571756573744964223a22647734554f7a222c2274797065223a362c2264617461223a5b227373652d61636b222c7b2261223a5b312c2262225d7d5d7d",
    ),
    (
        "classic_request_sockets",
        "socket.io-request#/#",
        "7b22756964223a225a7a39795838222c22726571756573744964223a22726571303031222c2274797065223a302c22726f6f6d73223a5b22726f6f6d31225d7d",
    ),
    (
        "classic_response_sockets",
        "socket.io-response#/#",
        "7b22726571756573744964223a22726571303031222c22736f636b657473223a5b224141414141414141414141414141414141414131225d7d",
    ),
    (
        "classic_request_all_rooms_other",
        "socket.io-request#/#",
        "7b22756964223a225a7a39795838222c22726571756573744964223a22726571303032222c2274797065223a317d",
    ),
    (
        "classic_response_all_rooms",
        "socket.io-response#/#",
        "7b22726571756573744964223a22726571303032222c22726f6f6d73223a5b224141414141414141414141414141414141414131222c22726f6f6d31222c22726f6f6d32225d7d",
    ),
    (
        "classic_request_join_sid",
        "socket.io-request#/#",
        "7b22756964223a225a7a39795838222c22726571756573744964223a22726571303033222c2274797065223a322c22736964223a224141414141414141414141414141414141414131222c22726f6f6d223a22726f6f6d39227d",
    ),
    (
        "classic_response_done",
        "socket.io-response#/#",
        "7b22726571756573744964223a22726571303033227d",
    ),
    (
        "classic_request_leave_sid",
        "socket.io-request#/#",
        "7b22756964223a225a7a39795838222c22726571756573744964223a22726571303034222c2274797065223a332c22736964223a224141414141414141414141414141414141414131222c22726f6f6d223a22726f6f6d39227d",
    ),
    (
        "classic_request_disconnect_sid",
        "socket.io-request#/#",
        "7b22756964223a225a7a39795838222c22726571756573744964223a22726571303035222c2274797065223a342c22736964223a224141414141414141414141414141414141414131222c22636c6f7365223a66616c73657d",
    ),
    (
        "classic_request_fetch_other",
        "socket.io-request#/#",
        "7b22756964223a225a7a39795838222c22726571756573744964223a22726571303036222c2274797065223a352c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d7d7d",
    ),
    (
        "classic_response_fetch",
        "socket.io-response#/#",
        "7b22726571756573744964223a22726571303036222c22736f636b657473223a5b7b226964223a224141414141414141414141414141414141414131222c2268616e647368616b65223a7b2268656164657273223a7b22686f7374223a226c6f63616c686f7374227d2c2274696d65223a224d6f6e2044656320303720323032362030343a30303a303020474d542b303030302028436f6f7264696e6174656420556e6976657273616c2054696d6529222c2261646472657373223a223132372e302e302e31222c2278646f6d61696e223a66616c73652c22736563757265223a66616c73652c22697373756564223a313739363631363030303030302c2275726c223a222f736f636b65742e696f2f3f45494f3d34267472616e73706f72743d706f6c6c696e67222c227175657279223a7b2245494f223a2234222c227472616e73706f7274223a22706f6c6c696e67227d2c2261757468223a7b226e616d65223a22616c696365227d7d2c22726f6f6d73223a5b224141414141414141414141414141414141414131222c22726f6f6d31222c22726f6f6d32225d2c2264617461223a7b226e616d65223a22616c696365222c226e223a2d332c2266223a302e357d7d5d7d",
    ),
    (
        "classic_request_sse_other",
        "socket.io-request#/#",
        "7b22756964223a225a7a39795838222c22726571756573744964223a22726571303037222c2274797065223a362c2264617461223a5b227373652d61636b222c2270225d7d",
    ),
    (
        "classic_response_server_side_emit",
        "socket.io-response#/#",
        "7b2274797065223a362c22726571756573744964223a22726571303037222c2264617461223a7b22736572766572223a226e6f64652d31222c2262696e223a7b2274797065223a22427566666572222c2264617461223a5b395d7d7d7d",
    ),
    (
        "classic_request_broadcast_other",
        "socket.io-request#/#",
        "85a3756964a65a7a39795838a9726571756573744964a6726571303038a47479706507a67061636b657483a47479706502a46461746192a761636b2d726571c40105a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd03e8",
    ),
    (
        "classic_response_client_count",
        "socket.io-response#/#",
        "7b2274797065223a382c22726571756573744964223a22726571303038222c22636c69656e74436f756e74223a327d",
    ),
    (
        "classic_response_broadcast_ack_binary",
        "socket.io-response#/#",
        "83a47479706509a9726571756573744964a6726571303038a67061636b657481a26f6bc403010203",
    ),
    (
        "classic_response_broadcast_ack",
        "socket.io-response#/#",
        "83a47479706509a9726571756573744964a6726571303038a67061636b6574a67365636f6e64",
    ),
    (
        "sharded_broadcast_room_binary",
        "socket.io#/chat#room1#",
        "84a47479706503a46461746182a67061636b657482a47479706502a46461746196a26576a16101d1ff38cb3ff8000000000000c402deada46f70747383a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380a3756964b030313233343536373839616263646566a36e7370a52f63686174",
    ),
    (
        "sharded_broadcast_room_json",
        "socket.io#/chat#room1#",
        "7b2274797065223a332c2264617461223a7b227061636b6574223a7b2274797065223a322c2264617461223a5b226576222c22706c61696e225d7d2c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d2c22666c616773223a7b7d7d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_broadcast_socket_id",
        "socket.io#/chat#",
        "7b2274797065223a332c2264617461223a7b227061636b6574223a7b2274797065223a322c2264617461223a5b226576222c325d7d2c226f707473223a7b22726f6f6d73223a5b224343434343434343434343434343434343434333225d2c22657863657074223a5b5d2c22666c616773223a7b7d7d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_broadcast_all_except",
        "socket.io#/chat#",
        "7b2274797065223a332c2264617461223a7b227061636b6574223a7b2274797065223a322c2264617461223a5b226576222c7b7d5d7d2c226f707473223a7b22726f6f6d73223a5b5d2c22657863657074223a5b22726f6f6d32222c22726f6f6d33225d2c22666c616773223a7b7d7d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_broadcast_ack",
        "socket.io#/chat#",
        "7b2274797065223a332c2264617461223a7b227061636b6574223a7b2274797065223a322c2264617461223a5b2261636b2d726571222c2270225d7d2c22726571756573744964223a2231373766303534643863323937663935222c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d2c22666c616773223a7b2274696d656f7574223a3530307d7d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_sockets_join",
        "socket.io#/chat#",
        "7b2274797065223a342c2264617461223a7b226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d2c22666c616773223a7b7d7d2c22726f6f6d73223a5b22726f6f6d32225d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_sockets_leave",
        "socket.io#/chat#",
        "7b2274797065223a352c2264617461223a7b226f707473223a7b22726f6f6d73223a5b5d2c22657863657074223a5b22726f6f6d31225d2c22666c616773223a7b7d7d2c22726f6f6d73223a5b22726f6f6d32225d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_disconnect_sockets",
        "socket.io#/chat#",
        "7b2274797065223a362c2264617461223a7b226f707473223a7b22726f6f6d73223a5b5d2c22657863657074223a5b5d2c22666c616773223a7b7d7d2c22636c6f7365223a66616c73657d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_fetch_sockets",
        "socket.io#/chat#",
        "7b2274797065223a372c2264617461223a7b226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d2c22666c616773223a7b2274696d656f7574223a3130307d7d2c22726571756573744964223a2261656262313764373462633939383365227d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_server_side_emit_binary",
        "socket.io#/chat#",
        "84a47479706509a46461746181a67061636b657493a3737365a170c4020102a3756964b030313233343536373839616263646566a36e7370a52f63686174",
    ),
    (
        "sharded_server_side_emit_json",
        "socket.io#/chat#",
        "7b2274797065223a392c2264617461223a7b227061636b6574223a5b22737365222c2270225d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_server_side_emit_ack",
        "socket.io#/chat#",
        "7b2274797065223a392c2264617461223a7b22726571756573744964223a2265346365343534636437306638333865222c227061636b6574223a5b227373652d61636b222c315d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_fetch_sockets_response",
        "socket.io#/chat#fedcba9876543210#",
        "7b2274797065223a382c2264617461223a7b22726571756573744964223a227231222c22736f636b657473223a5b7b226964223a224242424242424242424242424242424242424232222c2268616e647368616b65223a7b2268656164657273223a7b22686f7374223a226c6f63616c686f7374227d2c2274696d65223a224d6f6e2044656320303720323032362030343a30303a303020474d542b303030302028436f6f7264696e6174656420556e6976657273616c2054696d6529222c2261646472657373223a223132372e302e302e31222c2278646f6d61696e223a66616c73652c22736563757265223a66616c73652c22697373756564223a313739363631363030303030302c2275726c223a222f736f636b65742e696f2f3f45494f3d34267472616e73706f72743d706f6c6c696e67222c227175657279223a7b2245494f223a2234222c227472616e73706f7274223a22706f6c6c696e67227d2c2261757468223a7b226e616d65223a22616c696365227d7d2c22726f6f6d73223a5b224242424242424242424242424242424242424232222c22726f6f6d31222c22726f6f6d32225d2c2264617461223a7b226e616d65223a22616c696365222c226e223a2d332c2266223a302e357d7d5d7d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_server_side_emit_response",
        "socket.io#/chat#fedcba9876543210#",
        "84a4747970650aa46461746182a9726571756573744964a27232a67061636b657482a6736572766572a66e6f64652d31a362696ec40109a3756964b030313233343536373839616263646566a36e7370a52f63686174",
    ),
    (
        "sharded_broadcast_client_count",
        "socket.io#/chat#fedcba9876543210#",
        "7b2274797065223a31312c2264617461223a7b22726571756573744964223a227233222c22636c69656e74436f756e74223a327d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_broadcast_ack_binary",
        "socket.io#/chat#fedcba9876543210#",
        "84a4747970650ca46461746182a9726571756573744964a27233a67061636b657481a26f6bc403010203a3756964b030313233343536373839616263646566a36e7370a52f63686174",
    ),
    (
        "sharded_broadcast_ack_json",
        "socket.io#/chat#fedcba9876543210#",
        "7b2274797065223a31322c2264617461223a7b22726571756573744964223a227233222c227061636b6574223a227365636f6e64227d2c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_initial_heartbeat",
        "socket.io#/chat#",
        "7b2274797065223a312c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_heartbeat",
        "socket.io#/chat#",
        "7b2274797065223a322c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
    (
        "sharded_adapter_close",
        "socket.io#/chat#",
        "7b2274797065223a31332c22756964223a2230313233343536373839616263646566222c226e7370223a222f63686174227d",
    ),
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixture(name: &str) -> (String, Vec<u8>) {
    let (_, channel, h) = FIXTURES
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    (channel.to_string(), hex(h))
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn n(v: i64) -> Value {
    Value::Number(v.into())
}

fn obj(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// Every fixture decodes to its typed message and encodes back to the
/// very same bytes.
#[test]
fn every_fixture_round_trips_byte_for_byte() {
    for (name, _, h) in FIXTURES {
        let bytes = hex(h);
        let again = if name.starts_with("classic_broadcast") {
            ClassicBroadcast::decode(&bytes)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .encode()
        } else if name.starts_with("classic_request") {
            ClassicRequest::decode(&bytes)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .encode()
        } else if name.starts_with("classic_response") {
            ClassicResponse::decode(&bytes)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .encode()
        } else {
            ClusterMessage::decode(&bytes)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .encode()
        };
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&bytes),
            "{name}"
        );
        assert_eq!(again, bytes, "{name}");
    }
}

#[test]
fn classic_broadcast_to_one_room() {
    let (channel, bytes) = fixture("classic_broadcast_one_room");
    let expected = ClassicBroadcast {
        uid: "Ab3dEf".into(),
        packet: WirePacket::event(
            "ev",
            [
                s("a"),
                n(1),
                n(-200),
                Value::Number(serde_json::Number::from_f64(1.5).unwrap()),
                n(70000),
                Value::Binary(Bytes::from_static(&[0xde, 0xad])),
                obj(&[("k", Value::Bool(true)), ("n", Value::Null)]),
            ],
        )
        .with_nsp("/"),
        opts: Opts {
            rooms: vec!["room1".into()],
            except: vec![],
            flags: Some(obj(&[])),
        },
    };
    assert_eq!(ClassicBroadcast::decode(&bytes).unwrap(), expected);
    assert_eq!(expected.encode(), bytes);
    let channels = ClassicChannels::new("socket.io", "/", "Ab3dEf");
    assert_eq!(channels.broadcast_channel(&expected.opts), channel);
    assert_eq!(channels.room_of(&channel), Some("room1"));
}

#[test]
fn classic_broadcast_flags_and_large_binary() {
    let (channel, bytes) = fixture("classic_broadcast_all_flags");
    let b = ClassicBroadcast::decode(&bytes).unwrap();
    assert_eq!(channel, "socket.io#/#");
    assert_eq!(b.packet.data[1], Value::Binary(Bytes::from(vec![7u8; 300])));
    assert_eq!(b.opts.flag("volatile"), Some(&Value::Bool(true)));
    assert_eq!(b.opts.flag("compress"), Some(&Value::Bool(false)));
    assert!(!b.opts.is_local());
}

#[test]
fn classic_requests_decode_to_their_meaning() {
    let (_, bytes) = fixture("classic_request_remote_join");
    assert_eq!(
        ClassicRequest::decode(&bytes).unwrap(),
        ClassicRequest::Rooms {
            uid: "Ab3dEf".into(),
            leave: false,
            opts: Opts::rooms(["room1"]).except(["room2"]),
            rooms: vec!["room3".into()],
        }
    );
    let (_, bytes) = fixture("classic_request_remote_disconnect");
    assert_eq!(
        ClassicRequest::decode(&bytes).unwrap(),
        ClassicRequest::Disconnect {
            uid: "Ab3dEf".into(),
            opts: Opts::rooms(["room1"]),
            close: true,
        }
    );
    let (_, bytes) = fixture("classic_request_join_sid");
    assert_eq!(
        ClassicRequest::decode(&bytes).unwrap(),
        ClassicRequest::SocketRoom {
            uid: "Zz9yX8".into(),
            request_id: "req003".into(),
            leave: false,
            sid: "AAAAAAAAAAAAAAAAAAA1".into(),
            room: "room9".into(),
        }
    );
    let (_, bytes) = fixture("classic_request_server_side_emit");
    // JSON.stringify writes a Buffer as {"type":"Buffer","data":[...]}.
    assert_eq!(
        ClassicRequest::decode(&bytes).unwrap(),
        ClassicRequest::ServerSideEmit {
            uid: "Ab3dEf".into(),
            request_id: None,
            data: vec![
                s("sse"),
                s("payload"),
                obj(&[("type", s("Buffer")), ("data", Value::Array(vec![n(1)]))]),
                n(42),
            ],
        }
    );
    let (_, bytes) = fixture("classic_request_broadcast_ack");
    assert_eq!(Format::of(&bytes), Format::Msgpack);
    match ClassicRequest::decode(&bytes).unwrap() {
        ClassicRequest::Broadcast { packet, opts, .. } => {
            assert_eq!(packet.event_name(), Some("ack-req"));
            assert_eq!(opts.timeout_ms(), Some(1000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn classic_responses_decode_to_their_meaning() {
    let (_, bytes) = fixture("classic_response_sockets");
    assert_eq!(
        ClassicResponse::decode(&bytes).unwrap(),
        ClassicResponse::Sockets {
            request_id: "req001".into(),
            sockets: vec!["AAAAAAAAAAAAAAAAAAA1".into()],
        }
    );
    let (_, bytes) = fixture("classic_response_fetch");
    match ClassicResponse::decode(&bytes).unwrap() {
        ClassicResponse::Fetch {
            request_id,
            sockets,
        } => {
            assert_eq!(request_id, "req006");
            assert_eq!(sockets.len(), 1);
            assert_eq!(sockets[0].id, "AAAAAAAAAAAAAAAAAAA1");
            assert_eq!(sockets[0].auth(), Some(&obj(&[("name", s("alice"))])));
            assert!(sockets[0].rooms.contains(&"room1".to_string()));
        }
        other => panic!("{other:?}"),
    }
    let (_, bytes) = fixture("classic_response_client_count");
    assert_eq!(
        ClassicResponse::decode(&bytes).unwrap(),
        ClassicResponse::BroadcastClientCount {
            request_id: "req008".into(),
            client_count: 2,
        }
    );
    let (_, bytes) = fixture("classic_response_broadcast_ack_binary");
    assert_eq!(
        ClassicResponse::decode(&bytes).unwrap(),
        ClassicResponse::BroadcastAck {
            request_id: "req008".into(),
            packet: obj(&[("ok", Value::Binary(Bytes::from_static(&[1, 2, 3])))]),
        }
    );
}

#[test]
fn sharded_messages_decode_to_their_meaning_and_channel() {
    let channels = ShardedChannels::new(
        "socket.io",
        "/chat",
        "0123456789abcdef",
        SubscriptionMode::Dynamic,
    );
    for name in [
        "sharded_broadcast_room_binary",
        "sharded_broadcast_room_json",
        "sharded_broadcast_socket_id",
        "sharded_broadcast_all_except",
        "sharded_broadcast_ack",
        "sharded_sockets_join",
        "sharded_fetch_sockets",
        "sharded_server_side_emit_binary",
    ] {
        let (channel, bytes) = fixture(name);
        let m = ClusterMessage::decode(&bytes).unwrap();
        assert_eq!(channels.channel_for(&m), channel, "{name}");
        assert_eq!(m.uid, "0123456789abcdef");
        assert_eq!(m.nsp, "/chat");
    }
    let (_, bytes) = fixture("sharded_broadcast_room_binary");
    assert_eq!(Format::of(&bytes), Format::Msgpack);
    let (_, bytes) = fixture("sharded_broadcast_room_json");
    assert_eq!(
        ClusterMessage::decode(&bytes).unwrap().body,
        ClusterBody::Broadcast {
            packet: WirePacket::event("ev", [s("plain")]),
            request_id: None,
            opts: Opts {
                rooms: vec!["room1".into()],
                except: vec![],
                flags: Some(obj(&[])),
            },
        }
    );
    let (channel, bytes) = fixture("sharded_broadcast_ack_binary");
    let m = ClusterMessage::decode(&bytes).unwrap();
    assert_eq!(channels.response_channel_of("fedcba9876543210"), channel);
    assert_eq!(
        m.body,
        ClusterBody::BroadcastAck {
            request_id: "r3".into(),
            packet: obj(&[("ok", Value::Binary(Bytes::from_static(&[1, 2, 3])))]),
        }
    );
    let (_, bytes) = fixture("sharded_initial_heartbeat");
    assert_eq!(
        ClusterMessage::decode(&bytes).unwrap().body,
        ClusterBody::InitialHeartbeat
    );
}

/// notepack's choices for numbers, checked against bytes Node wrote.
#[test]
fn numbers_are_written_as_notepack_writes_them() {
    let one = |v: Value| msgpack::encode(&v);
    assert_eq!(one(n(1)), [0x01]);
    assert_eq!(one(n(-200)), [0xd1, 0xff, 0x38]);
    assert_eq!(one(n(70000)), [0xce, 0x00, 0x01, 0x11, 0x70]);
    let f = |x: f64| Value::Number(serde_json::Number::from_f64(x).unwrap());
    assert_eq!(one(f(1.5)), [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    // JavaScript's 2.0 is the integer 2.
    assert_eq!(one(f(2.0)), [0x02]);
    assert_eq!(one(f(-0.0)), [0x00]);
}

/// Values at every MessagePack format boundary (ints, floats, str, bin,
/// array and map lengths, nesting) and the bytes notepack.io wrote for
/// them (`tests/fixtures/notepack-edges.js`): duplex writes the same
/// bytes and reads them back to the same values.
#[test]
fn notepack_format_boundaries_match_byte_for_byte() {
    // Read straight into `Value`, whose objects keep the file's key order
    // (a `serde_json::Value` would sort them unless the build enables
    // serde_json's `preserve_order`). `{"$num": "…"}` and `{"$bin": "hex"}`
    // mark numbers and binaries JSON cannot spell.
    fn from_fixture(v: Value) -> Value {
        match v {
            Value::Object(pairs) => match pairs.as_slice() {
                [(k, Value::String(s))] if k == "$num" => {
                    let f: f64 = s.parse().unwrap();
                    Value::Number(serde_json::Number::from_f64(f).unwrap())
                }
                [(k, Value::String(s))] if k == "$bin" => Value::Binary(Bytes::from(hex(s))),
                _ => Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, from_fixture(v)))
                        .collect(),
                ),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(from_fixture).collect()),
            other => other,
        }
    }
    #[derive(serde::Deserialize)]
    struct Fixtures {
        notepack: Vec<(Value, String)>,
        json: Vec<(Value, String)>,
    }
    let Fixtures {
        notepack: cases,
        json: json_cases,
    } = serde_json::from_str(include_str!("fixtures/notepack-edges.json")).unwrap();
    assert!(cases.len() > 50);
    for (json, h) in cases {
        let value = from_fixture(json);
        let bytes = hex(&h);
        assert_eq!(msgpack::encode(&value), bytes, "{value:?}");
        assert_eq!(msgpack::decode(&bytes).unwrap(), value, "{h}");
    }

    // The messages Node sends as JSON: numbers as Number#toString writes
    // them (1e+21, 1e-7, 123456789012345680000), JSON.stringify's escapes,
    // Buffers as {"type":"Buffer","data":[..]}.
    let cases = json_cases;
    assert!(cases.len() > 10);
    for (json, h) in cases {
        let value = from_fixture(json);
        let text = String::from_utf8(hex(&h)).unwrap();
        assert_eq!(String::from_utf8(msgpack::to_json(&value)).unwrap(), text);
    }
}

/// Each channel reads a message's type through its type table
/// (`RequestType`, `MessageType`): a number outside the table is refused
/// with that number, even one past 255 whose low byte is a known type, and
/// a request channel refuses the types that are responses.
#[test]
fn types_outside_a_channels_table_are_refused_by_number() {
    use duplex_socketio::cluster::Error;
    let unknown = |r: Result<(), Error>| match r {
        Err(Error::UnknownType(n)) => Some(n),
        _ => None,
    };
    for n in [8, 9, 10, 256, 263] {
        let json = format!(r#"{{"uid":"a","requestId":"r","type":{n},"rooms":[]}}"#);
        let r = ClassicRequest::decode(json.as_bytes()).map(drop);
        assert_eq!(unknown(r), Some(n), "request type {n}");
    }
    for n in [0, 7, 10, 264] {
        let json = format!(r#"{{"requestId":"r","type":{n},"clientCount":1}}"#);
        let r = ClassicResponse::decode(json.as_bytes()).map(drop);
        assert_eq!(unknown(r), Some(n), "response type {n}");
    }
    for n in [0, 14, 257] {
        let json = format!(r#"{{"type":{n},"uid":"a","nsp":"/"}}"#);
        let r = ClusterMessage::decode(json.as_bytes()).map(drop);
        assert_eq!(unknown(r), Some(n), "sharded type {n}");
    }
    // The table's own numbers still read.
    let sockets = br#"{"uid":"a","requestId":"r","type":0,"rooms":[]}"#;
    assert!(ClassicRequest::decode(sockets).is_ok());
    let count = br#"{"requestId":"r","type":8,"clientCount":1}"#;
    assert!(ClassicResponse::decode(count).is_ok());
    let heartbeat = br#"{"type":2,"uid":"a","nsp":"/"}"#;
    assert!(ClusterMessage::decode(heartbeat).is_ok());
}
