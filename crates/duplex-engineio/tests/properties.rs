//! Property tests: encode/decode identity for packets and payloads in every
//! encoding, split-invariance of the incremental decoder, and no panics on
//! arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use bytes::{Bytes, BytesMut};
use duplex_engineio::{
    Error, Limits, Packet, PayloadDecoder, PayloadFormat, ProtocolVersion, Utf8Bytes,
    decode_payload_vec, jsonp,
};
use proptest::prelude::*;

fn text(no_separator: bool) -> impl Strategy<Value = Utf8Bytes> {
    // Mostly ASCII, with two-, three- and four-byte characters mixed in.
    let chars = prop_oneof![
        8 => any::<char>().prop_filter("ascii", char::is_ascii),
        1 => Just('é'),
        1 => Just('€'),
        1 => Just('😀'),
        1 => any::<char>(),
    ];
    proptest::collection::vec(chars, 0..40).prop_map(move |cs| {
        let s: String = cs
            .into_iter()
            .filter(|&c| !(no_separator && c == '\u{1e}'))
            .collect();
        Utf8Bytes::from(s)
    })
}

fn packet(no_separator: bool) -> impl Strategy<Value = Packet> {
    prop_oneof![
        1 => text(no_separator).prop_map(Packet::Open),
        1 => Just(Packet::Close),
        1 => text(no_separator).prop_map(Packet::Ping),
        1 => text(no_separator).prop_map(Packet::Pong),
        4 => text(no_separator).prop_map(Packet::Message),
        4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| Packet::Binary(Bytes::from(v))),
        1 => Just(Packet::Upgrade),
        1 => Just(Packet::Noop),
    ]
}

fn format() -> impl Strategy<Value = PayloadFormat> {
    prop_oneof![
        Just(PayloadFormat::V4),
        Just(PayloadFormat::V3String),
        Just(PayloadFormat::V3Binary)
    ]
}

fn decode_in_pieces(
    body: &[u8],
    format: PayloadFormat,
    cuts: &[usize],
) -> Result<Vec<Packet>, Error> {
    let mut decoder = PayloadDecoder::new(format, Limits::default());
    let mut out = Vec::new();
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([body.len()]) {
        decoder.receive(&body[from..cut])?;
        from = cut;
        while let Some(p) = decoder.poll_packet()? {
            out.push(p);
        }
    }
    decoder.finish();
    while let Some(p) = decoder.poll_packet()? {
        out.push(p);
    }
    Ok(out)
}

/// v4 bodies cannot carry a packet that is empty text at the very end;
/// v3 string bodies skip zero-length packets, which no packet encodes to.
fn expected(packets: &[Packet]) -> Vec<Packet> {
    packets.to_vec()
}

proptest! {
    #[test]
    fn websocket_packets_round_trip(p in packet(false), v3 in any::<bool>()) {
        let version = if v3 { ProtocolVersion::V3 } else { ProtocolVersion::V4 };
        let message = p.to_websocket(version);
        prop_assert_eq!(Packet::from_websocket(message, version)?, p);
    }

    #[test]
    fn payloads_round_trip_in_every_format(
        packets in proptest::collection::vec(packet(true), 1..8),
        format in format(),
    ) {
        let body = format.encode_to_bytes(&packets);
        prop_assert_eq!(decode_payload_vec(body, format, Limits::default())?, expected(&packets));
    }

    #[test]
    fn any_split_gives_the_same_packets(
        packets in proptest::collection::vec(packet(true), 1..8),
        format in format(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let body = format.encode_to_bytes(&packets);
        prop_assert_eq!(decode_in_pieces(&body, format, &cuts)?, expected(&packets));
    }

    #[test]
    fn arbitrary_bodies_never_panic_and_splits_agree(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        format in format(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let whole = decode_payload_vec(Bytes::from(body.clone()), format, Limits::default());
        let pieces = decode_in_pieces(&body, format, &cuts);
        match (whole, pieces) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "whole {:?} but pieces {:?}", a, b),
        }
    }

    #[test]
    fn structured_garbage_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(&b"4"[..]), Just(&b"b"[..]), Just(&b":"[..]), Just(&b"\x1e"[..]), Just(&b"\xff"[..]),
                Just(&b"\x00"[..]), Just(&b"\x01"[..]), Just(&b"1"[..]), Just(&b"9"[..]), Just("😀".as_bytes()),
                Just(&b"AQID"[..]), Just(&b"=="[..]),
            ],
            0..30,
        ),
        format in format(),
    ) {
        let body: Vec<u8> = parts.concat();
        let _ = decode_payload_vec(Bytes::from(body.clone()), format, Limits::default());
        let _ = decode_in_pieces(&body, format, &[1, 3, 7]);
        let _ = Packet::decode_text_bytes(Bytes::from(body.clone()));
        let _ = Packet::decode_binary(Bytes::from(body), ProtocolVersion::V3);
    }

    #[test]
    fn jsonp_output_is_a_javascript_string_of_the_payload(payload in text(false)) {
        let mut out = BytesMut::new();
        jsonp::encode_jsonp("7", payload.as_str(), &mut out);
        let js = std::str::from_utf8(&out).unwrap();
        let literal = js.strip_prefix("___eio[7](").and_then(|s| s.strip_suffix(");")).unwrap();
        prop_assert!(!literal.contains(['\u{2028}', '\u{2029}']), "raw line separator in {}", literal);
        let back: String = serde_json::from_str(literal).unwrap();
        prop_assert_eq!(back.as_str(), payload.as_str());
        // And what a JSONP client would post back decodes to the same payload
        // (the reference's newline escaping cannot carry a backslash right
        // before a newline).
        prop_assume!(!back.contains("\\\n"));
        let escaped = back.replace("\\n", "\\\\n").replace('\n', "\\n");
        let form: String = escaped
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        prop_assert_eq!(jsonp::decode_jsonp_body(format!("d={form}").as_bytes())?, back);
    }
}

proptest! {
    #[test]
    fn never_buffers_past_max_payload(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10),
        format in format(),
    ) {
        let limits = Limits { max_payload: 64, max_packets: 8 };
        let mut decoder = PayloadDecoder::new(format, limits);
        let mut total = 0usize;
        for chunk in &chunks {
            total += chunk.len();
            match decoder.receive(chunk) {
                Ok(()) => prop_assert!(total <= 64),
                Err(Error::PayloadTooLarge { limit: 64 }) => {
                    prop_assert!(total > 64);
                    prop_assert_eq!(decoder.buffered(), 0);
                    break;
                }
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
            prop_assert!(decoder.buffered() <= 64);
            while let Ok(Some(p)) = decoder.poll_packet() {
                // A decoded packet is never larger than the body it came from.
                let size = match &p { Packet::Binary(b) => b.len(), other => other.text().len() };
                prop_assert!(size <= 64);
            }
        }
    }
}
