//! Fuzz target for duplex-socketio: the packet decoder with attachments.
//!
//! The input is a sequence of messages, each one header byte (low bit: 1 for
//! a binary message, 0 for text; the other seven bits: the length) and its
//! bytes. Every complete packet must re-encode to messages that decode to
//! the same packet, and its payload must rebuild into a value.

use bytes::Bytes;
use duplex_socketio::{Decoder, DecoderConfig, Packet, ProtocolVersion};

fn messages(mut data: &[u8]) -> impl Iterator<Item = (bool, Bytes)> + '_ {
    std::iter::from_fn(move || {
        let (&header, rest) = data.split_first()?;
        let len = usize::from(header >> 1).min(rest.len());
        let (message, rest) = rest.split_at(len);
        data = rest;
        Some((header & 1 == 1, Bytes::copy_from_slice(message)))
    })
}

fn config(version: ProtocolVersion) -> DecoderConfig {
    DecoderConfig {
        version,
        max_attachments: 4,
        max_attachment_bytes: 256,
    }
}

fn redecode(packet: &Packet, version: ProtocolVersion) -> Packet {
    let wire = packet.encode();
    let mut decoder = Decoder::new(config(version));
    let mut again = decoder
        .receive_text(wire.text)
        .expect("re-encoded text decodes");
    for attachment in wire.attachments {
        assert!(again.is_none(), "complete before its attachments");
        again = decoder
            .receive_binary(attachment)
            .expect("re-encoded attachment decodes");
    }
    again.expect("re-encoded packet completes")
}

/// Decodes a framed sequence of text and binary messages in v5 and in v4.
pub fn decoder(data: &[u8]) {
    for version in [ProtocolVersion::V5, ProtocolVersion::V4] {
        let mut decoder = Decoder::new(config(version));
        for (binary, message) in messages(data) {
            let result = if binary {
                decoder.receive_binary(message)
            } else {
                decoder.receive_text(message)
            };
            let Ok(Some(packet)) = result else { continue };
            assert!(packet.attachments.len() <= 4);
            assert!(packet.value().is_ok(), "a decoded payload rebuilds");
            assert_eq!(redecode(&packet, version), packet);
        }
        let _ = decoder.finish();
    }
}
