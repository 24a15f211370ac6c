//! The worked example of docs/socketio.md, byte for byte: a binary event
//! with an ack id, through Socket.IO and then Engine.IO over WebSocket and
//! over each polling payload format.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use bytes::Bytes;
use duplex_engineio::{self as eio, Limits, PayloadFormat, WsMessage};
use duplex_socketio::{Decoder, DecoderConfig, Packet, Value};

const PNG: &[u8] = &[0x89, 0x50, 0x4e, 0x47];
const TEXT: &str = r#"51-1["upload","photo.png",{"_placeholder":true,"num":0}]"#;

fn emit() -> Packet {
    Packet::event_with(
        "/",
        "upload",
        &["photo.png".into(), Bytes::from_static(PNG).into()],
        Some(1),
    )
    .unwrap()
}

/// The Engine.IO packets that carry one Socket.IO packet.
fn engine_packets(packet: &Packet) -> Vec<eio::Packet> {
    let wire = packet.encode();
    // The same text type on both sides: handed on, not checked again.
    let mut out = vec![eio::Packet::Message(wire.text)];
    out.extend(wire.attachments.into_iter().map(eio::Packet::Binary));
    out
}

/// Back from Engine.IO packets to the Socket.IO packet.
fn socket_packet(packets: Vec<eio::Packet>) -> Packet {
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut done = None;
    for p in packets {
        done = match p {
            eio::Packet::Message(text) => decoder.receive_text(text.into_bytes()).unwrap(),
            eio::Packet::Binary(data) => decoder.receive_binary(data).unwrap(),
            other => panic!("unexpected {other:?}"),
        };
    }
    done.unwrap()
}

#[test]
fn socketio_layer() {
    let wire = emit().encode();
    assert_eq!(std::str::from_utf8(wire.text.as_bytes()).unwrap(), TEXT);
    assert_eq!(wire.attachments, [Bytes::from_static(PNG)]);
}

#[test]
fn over_websocket() {
    let packets = engine_packets(&emit());
    let v4: Vec<WsMessage> = packets
        .iter()
        .map(|p| p.to_websocket(eio::ProtocolVersion::V4))
        .collect();
    assert_eq!(
        v4,
        [
            WsMessage::Text(format!("4{TEXT}").into()),
            WsMessage::Binary(Bytes::from_static(PNG))
        ]
    );
    let v3: Vec<WsMessage> = packets
        .iter()
        .map(|p| p.to_websocket(eio::ProtocolVersion::V3))
        .collect();
    assert_eq!(
        v3[1],
        WsMessage::Binary(Bytes::from_static(&[0x04, 0x89, 0x50, 0x4e, 0x47]))
    );
    let back: Vec<eio::Packet> = v4
        .into_iter()
        .map(|m| eio::Packet::from_websocket(m, eio::ProtocolVersion::V4).unwrap())
        .collect();
    assert_eq!(socket_packet(back), emit());
}

#[test]
fn over_polling() {
    let packets = engine_packets(&emit());
    let v4 = PayloadFormat::V4.encode_to_bytes(&packets);
    assert_eq!(&v4[..], format!("4{TEXT}\x1ebiVBORw==").as_bytes());

    let v3_string = PayloadFormat::V3String.encode_to_bytes(&packets);
    assert_eq!(
        &v3_string[..],
        format!("57:4{TEXT}10:b4iVBORw==").as_bytes()
    );

    let v3_binary = PayloadFormat::V3Binary.encode_to_bytes(&packets);
    let mut expected = vec![0x00, 5, 7, 0xff];
    expected.extend_from_slice(format!("4{TEXT}").as_bytes());
    expected.extend_from_slice(&[0x01, 5, 0xff, 0x04, 0x89, 0x50, 0x4e, 0x47]);
    assert_eq!(&v3_binary[..], &expected[..]);

    for (body, format) in [
        (v4, PayloadFormat::V4),
        (v3_string, PayloadFormat::V3String),
        (v3_binary, PayloadFormat::V3Binary),
    ] {
        let back = eio::decode_payload_vec(body, format, Limits::default()).unwrap();
        let packet = socket_packet(back);
        assert_eq!(packet, emit());
        assert_eq!(
            packet.value().unwrap(),
            Some(Value::Array(vec![
                "upload".into(),
                "photo.png".into(),
                Bytes::from_static(PNG).into()
            ]))
        );
    }
}

#[test]
fn the_ack() {
    let ack = Packet::ack_with("/", &["saved".into()], 1).unwrap();
    assert_eq!(ack.encode().text.as_bytes(), br#"31["saved"]"#);
}
