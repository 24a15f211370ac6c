//! Every packet example of the Socket.IO protocol documents (v5 and v4),
//! decoded and encoded, plus the byte-exact exchanges of the official test
//! suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use bytes::Bytes;
use duplex_socketio::{
    Decoder, DecoderConfig, Error, Packet, PacketType, ProtocolVersion, Str, Value,
};

fn config(version: ProtocolVersion) -> DecoderConfig {
    DecoderConfig {
        version,
        ..DecoderConfig::default()
    }
}

/// Decodes `text` followed by `attachments`, checks the packet, and checks
/// that encoding it gives back exactly the same messages.
fn both_ways(
    version: ProtocolVersion,
    text: &'static str,
    attachments: &[&'static [u8]],
    expected: &Packet,
) {
    let mut decoder = Decoder::new(config(version));
    let mut packet = decoder
        .receive_text(Bytes::from_static(text.as_bytes()))
        .unwrap();
    for (i, a) in attachments.iter().enumerate() {
        assert!(packet.is_none(), "{text}: complete before attachment {i}");
        packet = decoder.receive_binary(Bytes::from_static(a)).unwrap();
    }
    let packet = packet.unwrap_or_else(|| panic!("{text}: incomplete"));
    assert_eq!(&packet, expected, "decoding {text}");
    let wire = expected.encode();
    assert_eq!(
        std::str::from_utf8(wire.text.as_bytes()).unwrap(),
        text,
        "encoding {expected:?}"
    );
    let sent: Vec<&[u8]> = wire.attachments.iter().map(|b| &b[..]).collect();
    assert_eq!(sent, attachments);
}

fn packet(
    packet_type: PacketType,
    namespace: &'static str,
    ack_id: Option<u64>,
    data: Option<&'static str>,
    attachments: &[&'static [u8]],
) -> Packet {
    Packet {
        packet_type,
        namespace: Str::from_static(namespace),
        ack_id,
        data: data.map(Str::from_static),
        attachments: attachments.iter().map(|a| Bytes::from_static(a)).collect(),
    }
}

use PacketType::*;
use ProtocolVersion::{V4, V5};

#[test]
fn v5_connection_examples() {
    both_ways(V5, "0", &[], &packet(Connect, "/", None, None, &[]));
    both_ways(
        V5,
        r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
        &[],
        &packet(
            Connect,
            "/admin",
            None,
            Some(r#"{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            &[],
        ),
    );
    both_ways(
        V5,
        r#"4{"message":"Not authorized"}"#,
        &[],
        &packet(
            ConnectError,
            "/",
            None,
            Some(r#"{"message":"Not authorized"}"#),
            &[],
        ),
    );
    // The builders produce the same bytes.
    assert_eq!(
        Packet::connect_ok("/admin", "oSO0OpakMV_3jnilAAAA")
            .unwrap()
            .encode()
            .text,
        &br#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#[..]
    );
    assert_eq!(
        Packet::connect_error("/", "Not authorized", V5)
            .unwrap()
            .encode()
            .text,
        &br#"4{"message":"Not authorized"}"#[..]
    );
    // With an auth payload (the "with an additional payload" example).
    both_ways(
        V5,
        r#"0/admin,{"token":"123"}"#,
        &[],
        &packet(Connect, "/admin", None, Some(r#"{"token":"123"}"#), &[]),
    );
}

#[test]
fn v5_event_examples() {
    both_ways(
        V5,
        r#"2["foo"]"#,
        &[],
        &packet(Event, "/", None, Some(r#"["foo"]"#), &[]),
    );
    both_ways(
        V5,
        r#"2/admin,["bar"]"#,
        &[],
        &packet(Event, "/admin", None, Some(r#"["bar"]"#), &[]),
    );
    both_ways(
        V5,
        r#"51-["baz",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3, 4]],
        &packet(
            BinaryEvent,
            "/",
            None,
            Some(r#"["baz",{"_placeholder":true,"num":0}]"#),
            &[&[1, 2, 3, 4]],
        ),
    );
    both_ways(
        V5,
        r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        &[&[1, 2], &[3, 4]],
        &packet(
            BinaryEvent,
            "/admin",
            None,
            Some(r#"["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            &[&[1, 2], &[3, 4]],
        ),
    );
    // Built from values: `{ type: BINARY_EVENT, namespace: "/admin", data: ["baz", <01 02>, <03 04>] }`.
    let built = Packet::event_with(
        "/admin",
        "baz",
        &[
            Bytes::from_static(&[1, 2]).into(),
            Bytes::from_static(&[3, 4]).into(),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        built.encode().text,
        &br#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#[..]
    );
    assert_eq!(
        built.value().unwrap().unwrap(),
        Value::Array(vec![
            "baz".into(),
            Bytes::from_static(&[1, 2]).into(),
            Bytes::from_static(&[3, 4]).into()
        ])
    );
}

#[test]
fn v5_acknowledgement_examples() {
    both_ways(
        V5,
        r#"212["foo"]"#,
        &[],
        &packet(Event, "/", Some(12), Some(r#"["foo"]"#), &[]),
    );
    both_ways(
        V5,
        r#"3/admin,13["bar"]"#,
        &[],
        &packet(Ack, "/admin", Some(13), Some(r#"["bar"]"#), &[]),
    );
    both_ways(
        V5,
        r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3, 4]],
        &packet(
            BinaryAck,
            "/",
            Some(15),
            Some(r#"["bar",{"_placeholder":true,"num":0}]"#),
            &[&[1, 2, 3, 4]],
        ),
    );
    both_ways(
        V5,
        "312[]",
        &[],
        &packet(Ack, "/", Some(12), Some("[]"), &[]),
    );
    // Sample session: `461-/admin,1[{"_placeholder":true,"num":0}]` (without the Engine.IO `4`).
    both_ways(
        V5,
        r#"61-/admin,1[{"_placeholder":true,"num":0}]"#,
        &[b"binary"],
        &packet(
            BinaryAck,
            "/admin",
            Some(1),
            Some(r#"[{"_placeholder":true,"num":0}]"#),
            &[b"binary"],
        ),
    );
    both_ways(
        V5,
        r#"2/admin,1["tellme"]"#,
        &[],
        &packet(Event, "/admin", Some(1), Some(r#"["tellme"]"#), &[]),
    );
}

#[test]
fn v5_disconnection_examples() {
    both_ways(V5, "1", &[], &packet(Disconnect, "/", None, None, &[]));
    both_ways(
        V5,
        "1/admin,",
        &[],
        &packet(Disconnect, "/admin", None, None, &[]),
    );
    assert_eq!(
        Packet::disconnect("/admin").unwrap().encode().text,
        &b"1/admin,"[..]
    );
}

#[test]
fn v5_sample_session() {
    both_ways(V5, "0", &[], &packet(Connect, "/", None, None, &[]));
    both_ways(
        V5,
        r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
        &[],
        &packet(
            Connect,
            "/",
            None,
            Some(r#"{"sid":"wZX3oN0bSVIhsaknAAAI"}"#),
            &[],
        ),
    );
    both_ways(
        V5,
        r#"2["hey","Jude"]"#,
        &[],
        &packet(Event, "/", None, Some(r#"["hey","Jude"]"#), &[]),
    );
    both_ways(
        V5,
        "0/admin,",
        &[],
        &packet(Connect, "/admin", None, None, &[]),
    );
    both_ways(
        V5,
        r#"0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}"#,
        &[],
        &packet(
            Connect,
            "/admin",
            None,
            Some(r#"{"sid":"-G5j-67EZFp-q59rADQM"}"#),
            &[],
        ),
    );
}

#[test]
fn v4_examples() {
    both_ways(V4, "0", &[], &packet(Connect, "/", None, None, &[]));
    both_ways(
        V4,
        "0/admin,",
        &[],
        &packet(Connect, "/admin", None, None, &[]),
    );
    both_ways(
        V4,
        "1/admin,",
        &[],
        &packet(Disconnect, "/admin", None, None, &[]),
    );
    both_ways(
        V4,
        r#"2["hello",1]"#,
        &[],
        &packet(Event, "/", None, Some(r#"["hello",1]"#), &[]),
    );
    both_ways(
        V4,
        r#"2/admin,456["project:delete",123]"#,
        &[],
        &packet(
            Event,
            "/admin",
            Some(456),
            Some(r#"["project:delete",123]"#),
            &[],
        ),
    );
    both_ways(
        V4,
        "3/admin,456[]",
        &[],
        &packet(Ack, "/admin", Some(456), Some("[]"), &[]),
    );
    both_ways(
        V4,
        r#"4/admin,"Not authorized""#,
        &[],
        &packet(
            ConnectError,
            "/admin",
            None,
            Some(r#""Not authorized""#),
            &[],
        ),
    );
    assert_eq!(
        Packet::connect_error("/admin", "Not authorized", V4)
            .unwrap()
            .encode()
            .text,
        &br#"4/admin,"Not authorized""#[..]
    );
    both_ways(
        V4,
        r#"51-["hello",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3]],
        &packet(
            BinaryEvent,
            "/",
            None,
            Some(r#"["hello",{"_placeholder":true,"num":0}]"#),
            &[&[1, 2, 3]],
        ),
    );
    both_ways(
        V4,
        r#"51-/admin,456["project:delete",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3]],
        &packet(
            BinaryEvent,
            "/admin",
            Some(456),
            Some(r#"["project:delete",{"_placeholder":true,"num":0}]"#),
            &[&[1, 2, 3]],
        ),
    );
    both_ways(
        V4,
        r#"61-/admin,456[{"_placeholder":true,"num":0}]"#,
        &[&[3, 2, 1]],
        &packet(
            BinaryAck,
            "/admin",
            Some(456),
            Some(r#"[{"_placeholder":true,"num":0}]"#),
            &[&[3, 2, 1]],
        ),
    );
    // A v4 namespace may carry a query.
    let mut decoder = Decoder::new(config(V4));
    let p = decoder
        .receive_text(Bytes::from_static(b"0/admin?token=1234&uid=abcd,"))
        .unwrap()
        .unwrap();
    assert_eq!(
        p.namespace_and_query(),
        ("/admin", Some("token=1234&uid=abcd"))
    );
}

#[test]
fn conformance_suite_exchanges() {
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut decode = |t: &'static str| decoder.receive_text(Bytes::from_static(t.as_bytes()));
    // `40/custom` without a trailing comma.
    assert_eq!(decode("0/custom").unwrap().unwrap().namespace, "/custom");
    assert_eq!(
        decode(r#"0{"token":"123"}"#)
            .unwrap()
            .unwrap()
            .data
            .unwrap(),
        r#"{"token":"123"}"#
    );
    let msg = decode(r#"2["message",1,"2",{"3":[true]}]"#)
        .unwrap()
        .unwrap();
    let Some(Value::Array(args)) = msg.value().unwrap() else {
        panic!()
    };
    let back = Packet::event_with("/", "message-back", &args[1..], None).unwrap();
    assert_eq!(
        back.encode().text,
        &br#"2["message-back",1,"2",{"3":[true]}]"#[..]
    );

    let with_ack = decode(r#"2456["message-with-ack",1,"2",{"3":[false]}]"#)
        .unwrap()
        .unwrap();
    let Some(Value::Array(args)) = with_ack.value().unwrap() else {
        panic!()
    };
    let ack = Packet::ack_with("/", &args[1..], with_ack.ack_id.unwrap()).unwrap();
    assert_eq!(ack.encode().text, &br#"3456[1,"2",{"3":[false]}]"#[..]);

    // Binary with ack: `452-789[...]` + 2 buffers → `462-789[...]` + the same buffers.
    assert!(decode(r#"52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .unwrap()
        .is_none());
    assert!(
        decoder
            .receive_binary(Bytes::from_static(&[1, 2, 3]))
            .unwrap()
            .is_none()
    );
    let p = decoder
        .receive_binary(Bytes::from_static(&[4, 5, 6]))
        .unwrap()
        .unwrap();
    let Some(Value::Array(args)) = p.value().unwrap() else {
        panic!()
    };
    let wire = Packet::ack_with("/", &args[1..], p.ack_id.unwrap())
        .unwrap()
        .encode();
    assert_eq!(
        wire.text,
        &br#"62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#[..]
    );
    assert_eq!(
        wire.attachments,
        [
            Bytes::from_static(&[1, 2, 3]),
            Bytes::from_static(&[4, 5, 6])
        ]
    );
    // `44/random,{"message":"Invalid namespace"}` for an unknown namespace.
    assert_eq!(
        Packet::connect_error("/random", "Invalid namespace", V5)
            .unwrap()
            .encode()
            .text,
        &br#"4/random,{"message":"Invalid namespace"}"#[..]
    );
    assert_eq!(
        Packet::connect_ok("/", "abc").unwrap().encode().text,
        &br#"0{"sid":"abc"}"#[..]
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    type Case = (&'static str, fn(&Error) -> bool);
    let cases: &[Case] = &[
        ("", |e| matches!(e, Error::EmptyPacket)),
        ("abc", |e| matches!(e, Error::UnknownPacketType(b'a'))),
        ("7", |e| matches!(e, Error::UnknownPacketType(b'7'))),
        ("2{}", |e| {
            matches!(
                e,
                Error::InvalidPayload {
                    packet_type: PacketType::Event,
                    ..
                }
            )
        }),
        ("2[]", |e| matches!(e, Error::InvalidPayload { .. })),
        ("2", |e| matches!(e, Error::InvalidPayload { .. })),
        ("2\"x\"", |e| matches!(e, Error::InvalidPayload { .. })),
        ("3{}", |e| {
            matches!(
                e,
                Error::InvalidPayload {
                    packet_type: PacketType::Ack,
                    ..
                }
            )
        }),
        ("3[]", |e| {
            matches!(e, Error::MisplacedAckId(PacketType::Ack))
        }),
        ("2abc[\"x\"]", |e| matches!(e, Error::InvalidAckId)),
        ("299999999999999999999[\"x\"]", |e| {
            matches!(e, Error::InvalidAckId)
        }),
        ("2admin,[\"x\"]", |e| matches!(e, Error::InvalidNamespace)),
        ("2[\"x\"", |e| matches!(e, Error::InvalidJson(_))),
        ("2[\"x\"]]", |e| matches!(e, Error::InvalidJson(_))),
        ("0abc", |e| matches!(e, Error::InvalidAckId)),
        ("0[1]", |e| {
            matches!(
                e,
                Error::InvalidPayload {
                    packet_type: PacketType::Connect,
                    ..
                }
            )
        }),
        ("1{}", |e| {
            matches!(
                e,
                Error::InvalidPayload {
                    packet_type: PacketType::Disconnect,
                    ..
                }
            )
        }),
        ("4[]", |e| {
            matches!(
                e,
                Error::InvalidPayload {
                    packet_type: PacketType::ConnectError,
                    ..
                }
            )
        }),
        ("012{}", |e| {
            matches!(e, Error::MisplacedAckId(PacketType::Connect))
        }),
        ("5[\"x\"]", |e| matches!(e, Error::InvalidAttachmentCount)),
        ("5-[\"x\"]", |e| matches!(e, Error::InvalidAttachmentCount)),
        ("5a-[\"x\"]", |e| matches!(e, Error::InvalidAttachmentCount)),
        ("511-[\"x\"]", |e| {
            matches!(e, Error::TooManyAttachments { limit: 10 })
        }),
        ("599999999999999999999999-[\"x\"]", |e| {
            matches!(e, Error::TooManyAttachments { .. })
        }),
    ];
    for (text, check) in cases {
        let mut decoder = Decoder::new(DecoderConfig::default());
        let err = decoder
            .receive_text(Bytes::from_static(text.as_bytes()))
            .expect_err(text);
        assert!(check(&err), "{text} gave {err:?}");
        assert!(err.is_peer_fault());
    }
    let mut decoder = Decoder::new(DecoderConfig::default());
    assert!(matches!(
        decoder.receive_text(Bytes::from_static(b"2[\"\xff\"]")),
        Err(Error::InvalidUtf8)
    ));
}

#[test]
fn attachment_errors() {
    let announce = || {
        Bytes::from_static(
            br#"52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )
    };
    // Binary data with no packet announcing it.
    let mut decoder = Decoder::new(DecoderConfig::default());
    assert!(matches!(
        decoder.receive_binary(Bytes::from_static(b"x")),
        Err(Error::UnexpectedBinary)
    ));
    // Attachments announced but never sent: another text packet comes first...
    assert!(decoder.receive_text(announce()).unwrap().is_none());
    assert!(
        decoder
            .receive_binary(Bytes::from_static(b"a"))
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        decoder.receive_text(Bytes::from_static(b"2[\"y\"]")),
        Err(Error::MissingAttachments {
            expected: 2,
            received: 1
        })
    ));
    // ...or the connection ends.
    assert!(decoder.receive_text(announce()).unwrap().is_none());
    assert!(decoder.is_reconstructing());
    assert!(matches!(
        decoder.finish(),
        Err(Error::MissingAttachments {
            expected: 2,
            received: 0
        })
    ));
    assert!(decoder.finish().is_ok());
    // Too many bytes.
    let mut decoder = Decoder::new(DecoderConfig {
        max_attachment_bytes: 4,
        ..DecoderConfig::default()
    });
    decoder.receive_text(announce()).unwrap();
    decoder.receive_binary(Bytes::from_static(b"abc")).unwrap();
    assert!(matches!(
        decoder.receive_binary(Bytes::from_static(b"de")),
        Err(Error::AttachmentsTooLarge { limit: 4 })
    ));
    // A placeholder pointing past the attachments.
    let mut decoder = Decoder::new(DecoderConfig::default());
    decoder
        .receive_text(Bytes::from_static(
            br#"51-["x",{"_placeholder":true,"num":1}]"#,
        ))
        .unwrap();
    assert!(matches!(
        decoder.receive_binary(Bytes::from_static(b"a")),
        Err(Error::InvalidPlaceholder)
    ));
    // Zero attachments complete at once.
    let mut decoder = Decoder::new(DecoderConfig::default());
    let p = decoder
        .receive_text(Bytes::from_static(br#"50-["x"]"#))
        .unwrap()
        .unwrap();
    assert_eq!(p.packet_type, PacketType::BinaryEvent);
}

#[test]
fn v4_is_lenient_where_v5_is_strict() {
    let mut v4 = Decoder::new(config(V4));
    assert!(
        v4.receive_text(Bytes::from_static(b"4\"refused\""))
            .unwrap()
            .is_some()
    );
    assert!(
        v4.receive_text(Bytes::from_static(b"0[1]"))
            .unwrap()
            .is_some()
    );
    let mut v5 = Decoder::new(config(V5));
    assert!(
        v5.receive_text(Bytes::from_static(b"4\"refused\""))
            .unwrap()
            .is_some()
    );
    assert!(v5.receive_text(Bytes::from_static(b"4[1]")).is_err());
}

#[test]
fn encoder_rejects_bad_namespaces() {
    assert!(matches!(
        Packet::connect("admin", None),
        Err(Error::InvalidNamespace)
    ));
    assert!(matches!(
        Packet::disconnect("/a,b"),
        Err(Error::InvalidNamespace)
    ));
}

#[test]
fn decoding_slices_the_message_without_copying() {
    let text = Bytes::from_static(br#"2/admin,["bar"]"#);
    let p = Decoder::default()
        .receive_text(text.clone())
        .unwrap()
        .unwrap();
    assert_eq!(p.namespace, "/admin");
    assert_eq!(p.data.unwrap().as_bytes().as_ptr(), text[8..].as_ptr());
}

#[test]
fn packets_in_the_same_namespace_share_its_bytes() {
    let mut decoder = Decoder::default();
    let mut decode = |text: &'static [u8]| {
        decoder
            .receive_text(Bytes::from_static(text))
            .unwrap()
            .unwrap()
    };
    let first = decode(br#"2/admin,["a"]"#);
    let second = decode(br#"3/admin,1["b"]"#);
    assert_eq!(second.namespace, "/admin");
    assert_eq!(
        first.namespace.as_bytes().as_ptr(),
        second.namespace.as_bytes().as_ptr()
    );
    // Another namespace, then the default one, then back.
    let other = decode(br#"2/other,["c"]"#);
    assert_eq!(other.namespace, "/other");
    assert_eq!(decode(br#"2["d"]"#).namespace, "/");
    assert_eq!(decode(br#"1/other,"#).namespace, "/other");
    assert_eq!(decode(br#"2/admin,["e"]"#).namespace, "/admin");
    assert_eq!(decode(b"1/admin").namespace, "/admin");
    // A long namespace is cut from its message, not kept.
    let long = format!("2/{},[\"f\"]", "n".repeat(100));
    let text = Bytes::from(long.clone());
    let p = decoder.receive_text(text.clone()).unwrap().unwrap();
    assert_eq!(p.namespace, long[1..102]);
    assert_eq!(p.namespace.as_bytes().as_ptr(), text[1..].as_ptr());
    assert_eq!(p.data.unwrap(), "[\"f\"]");
}
