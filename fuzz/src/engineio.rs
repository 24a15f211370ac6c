//! Fuzz targets for duplex-engineio: the three polling payload decoders.
//!
//! Each decodes the input whole (zero-copy) and incrementally in two pieces
//! split at a point taken from the input, checks that both agree, and that
//! whatever decoded re-encodes to a body that decodes to the same packets.

use bytes::Bytes;
use duplex_engineio::{Limits, Packet, PayloadDecoder, PayloadFormat, decode_payload_vec};

const LIMITS: Limits = Limits {
    max_payload: 64 * 1024,
    max_packets: 1024,
};

fn incremental(
    body: &[u8],
    format: PayloadFormat,
    split: usize,
) -> Result<Vec<Packet>, duplex_engineio::Error> {
    let mut decoder = PayloadDecoder::new(format, LIMITS);
    let mut out = Vec::new();
    let (a, b) = body.split_at(split.min(body.len()));
    for piece in [a, b] {
        decoder.receive(piece)?;
        assert!(decoder.buffered() <= LIMITS.max_payload);
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

fn payload(data: &[u8], format: PayloadFormat) {
    let split = data.first().map_or(0, |&b| usize::from(b));
    let whole = decode_payload_vec(Bytes::copy_from_slice(data), format, LIMITS);
    let pieces = incremental(data, format, split);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "whole and split decoding disagree"),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} but split {pieces:?}"),
    }
    if let Ok(packets) = whole {
        // Re-encoding what decoded must decode back to it (v4 text cannot
        // carry 0x1e, which the decoder never yields inside a packet).
        let again = format.encode_to_bytes(&packets);
        let back = decode_payload_vec(again, format, Limits::default());
        assert_eq!(
            back.ok().as_ref(),
            Some(&packets),
            "re-encoding changed the packets"
        );
    }
}

/// A v4 polling body (`0x1e`-joined, `b`+base64 binary).
pub fn payload_v4(data: &[u8]) {
    payload(data, PayloadFormat::V4);
}

/// A v3 string payload (`<len>:<packet>` in UTF-16 units, `b4`+base64 binary).
pub fn payload_v3_string(data: &[u8]) {
    payload(data, PayloadFormat::V3String);
}

/// A v3 binary (XHR2) payload.
pub fn payload_v3_binary(data: &[u8]) {
    payload(data, PayloadFormat::V3Binary);
}
