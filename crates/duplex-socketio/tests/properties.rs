//! Property tests: encode/decode identity for packets and binary payloads,
//! and no panic on arbitrary messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use bytes::Bytes;
use duplex_socketio::{Decoder, DecoderConfig, Packet, PacketType, ProtocolVersion, Str, Value};
use proptest::prelude::*;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::Binary(Bytes::from(b))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    "[a-z_]{0,6}".prop_filter("not a placeholder", |k| k != "_placeholder"),
                    inner
                ),
                0..4
            )
            .prop_map(Value::Object),
        ]
    })
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_owned()), "/[a-zA-Z0-9_ -]{1,10}"]
}

fn decode_all(version: ProtocolVersion, wire: &duplex_socketio::EncodedPacket) -> Packet {
    let mut decoder = Decoder::new(DecoderConfig {
        version,
        max_attachments: 1000,
        ..DecoderConfig::default()
    });
    let mut packet = decoder
        .receive_text(wire.text.clone().into_bytes())
        .unwrap();
    for a in &wire.attachments {
        assert!(packet.is_none());
        packet = decoder.receive_binary(a.clone()).unwrap();
    }
    packet.unwrap()
}

proptest! {
    #[test]
    fn events_and_acks_round_trip(
        ns in namespace(),
        name in ".{0,8}",
        args in proptest::collection::vec(value(), 0..4),
        ack_id in proptest::option::of(0u64..u64::MAX),
        is_ack in any::<bool>(),
        v4 in any::<bool>(),
    ) {
        let version = if v4 { ProtocolVersion::V4 } else { ProtocolVersion::V5 };
        let packet = if is_ack {
            Packet::ack_with(ns.clone(), &args, ack_id.unwrap_or(7))?
        } else {
            Packet::event_with(ns.clone(), &name, &args, ack_id)?
        };
        let wire = packet.encode();
        prop_assert_eq!(wire.text.len(), packet.encoded_len());
        let back = decode_all(version, &wire);
        prop_assert_eq!(&back, &packet);
        // And the values come back with the binaries in place.
        let mut expected = Vec::new();
        if !is_ack {
            expected.push(Value::String(name.clone()));
        }
        expected.extend(args.iter().cloned());
        prop_assert_eq!(back.value()?, Some(Value::Array(expected)));
        if !is_ack {
            prop_assert_eq!(back.event_name(), Some(name));
        }
    }

    #[test]
    fn handshake_packets_round_trip(ns in namespace(), sid in "[A-Za-z0-9_-]{1,20}", msg in ".{0,20}", v4 in any::<bool>()) {
        let version = if v4 { ProtocolVersion::V4 } else { ProtocolVersion::V5 };
        for packet in [
            Packet::connect(ns.clone(), None)?,
            Packet::connect_ok(ns.clone(), &sid)?,
            Packet::connect_error(ns.clone(), &msg, version)?,
            Packet::disconnect(ns.clone())?,
        ] {
            prop_assert_eq!(decode_all(version, &packet.encode()), packet);
        }
    }

    #[test]
    fn deconstruction_numbers_attachments_in_document_order(v in value()) {
        let (json, attachments) = v.encode();
        prop_assert_eq!(Value::decode(json.as_bytes(), &attachments)?, v.clone());
        fn binaries(v: &Value, out: &mut Vec<Bytes>) {
            match v {
                Value::Binary(b) => out.push(b.clone()),
                Value::Array(items) => items.iter().for_each(|i| binaries(i, out)),
                Value::Object(pairs) => pairs.iter().for_each(|(_, i)| binaries(i, out)),
                _ => {}
            }
        }
        let mut expected = Vec::new();
        binaries(&v, &mut expected);
        prop_assert_eq!(attachments, expected);
    }

    #[test]
    fn arbitrary_messages_never_panic(
        messages in proptest::collection::vec(
            (any::<bool>(), prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                "[0-6]([0-9]{0,3}-)?(/[a-z]{0,4},)?[0-9]{0,4}(\\[.{0,10}\\]|\\{.{0,10}\\}|\".{0,4}\")?".prop_map(String::into_bytes),
            ]),
            0..12,
        ),
        v4 in any::<bool>(),
    ) {
        let version = if v4 { ProtocolVersion::V4 } else { ProtocolVersion::V5 };
        let mut decoder = Decoder::new(DecoderConfig { version, max_attachments: 3, max_attachment_bytes: 64 });
        for (binary, data) in messages {
            let data = Bytes::from(data);
            let result = if binary { decoder.receive_binary(data) } else { decoder.receive_text(data) };
            if let Ok(Some(packet)) = result {
                // Whatever decodes re-encodes to a message that decodes the same.
                prop_assert!(packet.namespace.as_bytes().starts_with(b"/"));
                prop_assert!(packet.attachments.len() <= 3);
                if packet.packet_type.is_event() {
                    prop_assert!(matches!(packet.value(), Ok(Some(Value::Array(a))) if !a.is_empty()));
                }
                if packet.packet_type != PacketType::BinaryEvent && packet.packet_type != PacketType::BinaryAck {
                    let again = decode_all(version, &packet.encode());
                    prop_assert_eq!(again, packet);
                }
            }
        }
        let _ = decoder.finish();
    }

    /// The UTF-8 check folded into the header parse and the JSON pass
    /// answers as a whole-text check done first would: text that is not
    /// UTF-8 anywhere (header, namespace, payload) is `InvalidUtf8`, and
    /// whatever decodes is UTF-8 with a payload serde_json accepts.
    #[test]
    fn utf8_is_checked_everywhere_and_first(
        parts in proptest::collection::vec(prop_oneof![
            prop::sample::select(vec![
                "2", "3", "0", "5", "1-", "/", "/ns", ",", "17", "[", "]", "{", "}", ":", "\"",
                "\"k\":", "1", "true", "é", "\\n", " ",
            ]).prop_map(|s: &str| s.as_bytes().to_vec()),
            prop::sample::select(vec![
                &b"\xff"[..], b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3\xa9",
            ]).prop_map(<[u8]>::to_vec),
        ], 0..14),
        namespaces in proptest::collection::vec("/[a-z\u{e9}]{0,3}", 0..3),
    ) {
        let text = parts.concat();
        let mut decoder = Decoder::default();
        // Earlier packets set the decoder's last namespace, which a later
        // packet may share.
        for ns in namespaces {
            let _ = decoder.receive_text(Bytes::from(format!("1{ns},")));
        }
        let result = decoder.receive_text(Bytes::from(text.clone()));
        if std::str::from_utf8(&text).is_err() {
            prop_assert!(matches!(result, Err(duplex_socketio::Error::InvalidUtf8)), "{:?} {:?}", text, result);
        }
        if let Ok(Some(packet)) = result {
            prop_assert!(std::str::from_utf8(&text).is_ok());
            prop_assert!(std::str::from_utf8(packet.namespace.as_bytes()).is_ok());
            if let Some(data) = &packet.data {
                prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(data.as_bytes()).is_ok());
            }
        }
    }
}

#[test]
fn str_is_cheap_to_clone() {
    let s = Str::from("/admin".to_owned());
    assert_eq!(s.clone().as_bytes().as_ptr(), s.as_bytes().as_ptr());
}
