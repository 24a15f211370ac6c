//! Properties of the cluster codec and the in-memory adapter: encode then
//! decode is the identity, arbitrary bytes never panic a decoder, and the
//! sockets a broadcast selects are exactly the intended ones, each once.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use duplex_socketio::Value;
use duplex_socketio::cluster::classic::{ClassicBroadcast, ClassicRequest, ClassicResponse};
use duplex_socketio::cluster::sharded::{ClusterBody, ClusterMessage};
use duplex_socketio::cluster::{
    FetchedSocket, Format, InMemoryAdapter, LocalAdapter, Opts, WirePacket, msgpack,
};
use proptest::prelude::*;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        // Integral floats are integers to JavaScript; only the others
        // stay floats across notepack.
        (-1e12f64..1e12).prop_map(|f| {
            let f = f.trunc() + 0.5;
            Value::Number(serde_json::Number::from_f64(f).unwrap())
        }),
        ".{0,40}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| Value::Binary(Bytes::from(b))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn rooms() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-zA-Z0-9 #*é]{0,22}", 0..4)
}

fn opts() -> impl Strategy<Value = Opts> {
    (rooms(), rooms(), proptest::option::of(value())).prop_map(|(rooms, except, flags)| Opts {
        rooms,
        except,
        flags: flags.map(|f| Value::Object(vec![("x".into(), f)])),
    })
}

fn packet() -> impl Strategy<Value = WirePacket> {
    (
        "[a-z]{1,8}",
        proptest::collection::vec(value(), 0..4),
        proptest::option::of("/[a-z]{0,5}"),
    )
        .prop_map(|(ev, args, nsp)| {
            let mut p = WirePacket::event(&ev, args);
            p.nsp = nsp;
            p
        })
}

fn fetched() -> impl Strategy<Value = FetchedSocket> {
    ("[A-Za-z0-9]{20}", value(), rooms(), value()).prop_map(|(id, handshake, rooms, data)| {
        FetchedSocket {
            id,
            handshake,
            rooms,
            data,
        }
    })
}

fn body() -> impl Strategy<Value = ClusterBody> {
    let rid = "[0-9a-f]{16}";
    prop_oneof![
        Just(ClusterBody::InitialHeartbeat),
        Just(ClusterBody::Heartbeat),
        Just(ClusterBody::AdapterClose),
        (packet(), proptest::option::of(rid), opts()).prop_map(|(packet, request_id, opts)| {
            ClusterBody::Broadcast {
                packet,
                request_id,
                opts,
            }
        }),
        (any::<bool>(), opts(), rooms())
            .prop_map(|(leave, opts, rooms)| ClusterBody::SocketsRooms { leave, opts, rooms }),
        (opts(), any::<bool>())
            .prop_map(|(opts, close)| ClusterBody::DisconnectSockets { opts, close }),
        (opts(), rid).prop_map(|(opts, request_id)| ClusterBody::FetchSockets { opts, request_id }),
        (rid, proptest::collection::vec(fetched(), 0..3)).prop_map(|(request_id, sockets)| {
            ClusterBody::FetchSocketsResponse {
                request_id,
                sockets,
            }
        }),
        (
            proptest::option::of(rid),
            proptest::collection::vec(value(), 1..4)
        )
            .prop_map(|(request_id, packet)| ClusterBody::ServerSideEmit { request_id, packet }),
        (rid, value()).prop_map(|(request_id, packet)| ClusterBody::ServerSideEmitResponse {
            request_id,
            packet
        }),
        (rid, any::<u32>()).prop_map(|(request_id, n)| ClusterBody::BroadcastClientCount {
            request_id,
            client_count: n.into()
        }),
        (rid, value())
            .prop_map(|(request_id, packet)| ClusterBody::BroadcastAck { request_id, packet }),
    ]
}

/// JSON.stringify turns Buffers into objects: a value without binary is
/// what survives JSON unchanged.
fn no_binary(v: &Value) -> bool {
    !v.has_binary()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn msgpack_encode_decode_is_identity(v in value()) {
        prop_assert_eq!(msgpack::decode(&msgpack::encode(&v)).unwrap(), v);
    }

    #[test]
    fn json_encode_decode_is_identity_without_binary(v in value().prop_filter("binary", no_binary)) {
        prop_assert_eq!(msgpack::from_json(&msgpack::to_json(&v)).unwrap(), v);
    }

    #[test]
    fn cluster_messages_round_trip(uid in "[0-9a-f]{16}", nsp in "/[a-z]{0,5}", body in body()) {
        let m = ClusterMessage { uid, nsp, body };
        let bytes = m.encode();
        let back = ClusterMessage::decode(&bytes).unwrap();
        prop_assert_eq!(&back.encode(), &bytes);
        // Types that Node sends as JSON whatever they hold turn Buffers
        // into {"type":"Buffer"} objects, as JSON.stringify does; every
        // other message comes back unchanged.
        let json_with_binary = m.format() == Format::Json && m.to_value().has_binary();
        if !json_with_binary {
            prop_assert_eq!(back, m);
        }
    }

    #[test]
    fn classic_broadcasts_round_trip(uid in "[A-Za-z0-9]{6}", packet in packet(), opts in opts()) {
        let b = ClassicBroadcast { uid, packet, opts };
        prop_assert_eq!(ClassicBroadcast::decode(&b.encode()).unwrap(), b);
    }

    #[test]
    fn classic_requests_round_trip(
        uid in "[A-Za-z0-9]{6}",
        rid in "[A-Za-z0-9_-]{6}",
        opts in opts(),
        rooms in rooms(),
        close in any::<bool>(),
        data in proptest::collection::vec(value().prop_filter("binary", no_binary), 1..4),
        packet in packet(),
        pick in 0usize..9,
    ) {
        let plain = Opts { flags: None, ..opts.clone() };
        let r = match pick {
            0 => ClassicRequest::Sockets { uid, request_id: rid, rooms },
            1 => ClassicRequest::AllRooms { uid, request_id: rid },
            2 => ClassicRequest::Rooms { uid, leave: close, opts: plain, rooms },
            3 => ClassicRequest::SocketRoom { uid, request_id: rid, leave: close, sid: "s".repeat(20), room: "r".into() },
            4 => ClassicRequest::Disconnect { uid, opts: plain, close },
            5 => ClassicRequest::DisconnectSocket { uid, request_id: rid, sid: "s".into(), close },
            6 => ClassicRequest::Fetch { uid, request_id: rid, opts: plain },
            7 => ClassicRequest::ServerSideEmit { uid, request_id: close.then_some(rid), data },
            _ => ClassicRequest::Broadcast { uid, request_id: rid, packet, opts },
        };
        prop_assert_eq!(ClassicRequest::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn classic_responses_round_trip(
        rid in "[A-Za-z0-9_-]{6}",
        ids in proptest::collection::vec("[A-Za-z0-9]{20}", 1..4),
        sockets in proptest::collection::vec(fetched().prop_filter("binary", |s| !s.handshake.has_binary() && !s.data.has_binary()), 1..3),
        data in value(),
        n in any::<u32>(),
        pick in 0usize..6,
    ) {
        let r = match pick {
            0 => ClassicResponse::Sockets { request_id: rid, sockets: ids },
            1 => ClassicResponse::AllRooms { request_id: rid, rooms: ids },
            2 => ClassicResponse::Done { request_id: rid },
            3 => ClassicResponse::Fetch { request_id: rid, sockets },
            4 => ClassicResponse::BroadcastClientCount { request_id: rid, client_count: n.into() },
            _ => ClassicResponse::BroadcastAck { request_id: rid, packet: data },
        };
        prop_assert_eq!(ClassicResponse::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = msgpack::decode(&bytes);
        let _ = ClassicBroadcast::decode(&bytes);
        let _ = ClassicRequest::decode(&bytes);
        let _ = ClassicResponse::decode(&bytes);
        let _ = ClusterMessage::decode(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(body in body(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = ClusterMessage { uid: "u".into(), nsp: "/".into(), body }.encode();
        for (at, byte) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = byte;
            }
        }
        let _ = ClusterMessage::decode(&bytes);
        let _ = ClassicRequest::decode(&bytes);
        let _ = msgpack::decode(&bytes);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Connect(u8),
    Join(u8, u8),
    Leave(u8, u8),
    Disconnect(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..12).prop_map(Op::Connect),
        (0u8..12, 0u8..6).prop_map(|(s, r)| Op::Join(s, r)),
        (0u8..12, 0u8..6).prop_map(|(s, r)| Op::Leave(s, r)),
        (0u8..12).prop_map(Op::Disconnect),
    ]
}

fn sid(n: u8) -> String {
    format!("socket{n:014}")
}

fn room_name(n: u8) -> String {
    format!("room{n}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After any interleaving of connections, joins, leaves and
    /// disconnections, a broadcast selects exactly the sockets in one of
    /// its rooms (all when none) and in none of its except rooms, each
    /// once; and the room changes reported match the rooms that exist.
    #[test]
    fn selection_is_exactly_the_intended_sockets(
        ops in proptest::collection::vec(op(), 0..80),
        target in proptest::collection::vec(0u8..6, 0..3),
        except in proptest::collection::vec(0u8..6, 0..2),
    ) {
        let mut adapter = InMemoryAdapter::new();
        let mut model: HashMap<String, HashSet<String>> = HashMap::new();
        let mut existing: BTreeSet<String> = BTreeSet::new();
        for op in ops {
            let changes = match op {
                Op::Connect(s) => {
                    let sid = sid(s);
                    model.entry(sid.clone()).or_default().insert(sid.clone());
                    adapter.add_all(&sid, std::slice::from_ref(&sid))
                }
                Op::Join(s, r) if model.contains_key(&sid(s)) => {
                    model.get_mut(&sid(s)).unwrap().insert(room_name(r));
                    adapter.add_all(&sid(s), &[room_name(r)])
                }
                Op::Leave(s, r) => {
                    if let Some(rooms) = model.get_mut(&sid(s)) { rooms.remove(&room_name(r)); }
                    adapter.del(&sid(s), &room_name(r))
                }
                Op::Disconnect(s) => {
                    model.remove(&sid(s));
                    adapter.del_all(&sid(s))
                }
                Op::Join(..) => Vec::new(),
            };
            for c in changes {
                match c {
                    duplex_socketio::cluster::RoomChange::Created(r) => prop_assert!(existing.insert(r)),
                    duplex_socketio::cluster::RoomChange::Deleted(r) => prop_assert!(existing.remove(&r)),
                }
            }
        }
        let live: BTreeSet<String> = model.values().flatten().cloned().collect();
        prop_assert_eq!(&existing, &live);
        let mut all_rooms: Vec<String> = adapter.all_rooms();
        all_rooms.sort();
        prop_assert_eq!(all_rooms, live.into_iter().collect::<Vec<_>>());

        let opts = Opts::rooms(target.iter().map(|r| room_name(*r))).except(except.iter().map(|r| room_name(*r)));
        let selected = adapter.select(&opts);
        let unique: HashSet<&String> = selected.iter().collect();
        prop_assert_eq!(unique.len(), selected.len(), "a socket selected twice");
        let expected: HashSet<&String> = model
            .iter()
            .filter(|(_, rooms)| opts.rooms.is_empty() || opts.rooms.iter().any(|r| rooms.contains(r)))
            .filter(|(_, rooms)| !opts.except.iter().any(|r| rooms.contains(r)))
            .map(|(sid, _)| sid)
            .collect();
        prop_assert_eq!(unique, expected);
    }
}

/// Nesting deeper than the decoder's limit is refused, not recursed into
/// until the stack runs out.
#[test]
fn deep_nesting_is_refused() {
    let mut bytes = vec![0x91u8; 100_000];
    bytes.push(0xc0);
    assert!(msgpack::decode(&bytes).is_err());
    assert!(ClusterMessage::decode(&bytes).is_err());
    let json = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(ClusterMessage::decode(json.as_bytes()).is_err());
    assert!(ClassicRequest::decode(json.as_bytes()).is_err());
    // Lengths that promise more than there is do not allocate for it.
    assert!(msgpack::decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(msgpack::decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(msgpack::decode(&[0xc6, 0xff, 0xff, 0xff, 0xff]).is_err());
}
