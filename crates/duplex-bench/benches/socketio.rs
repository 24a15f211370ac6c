//! Socket.IO packet decoding and encoding, duplex next to socketioxide's
//! parser (`socketioxide-parser-common`, callable on its own), one group
//! each.
//!
//! Decode: each contender starts from a copy of the received text (what a
//! transport read hands over) and must produce the namespace, the ack id
//! and the event name; both results are checked once before timing.
//!
//! Encode: an event name and arguments held as a value tree (duplex's
//! `Value`, a `serde_json::Value` plus `Bytes` for socketioxide) to the
//! text message and its attachments, as a server's `emit` does:
//! `Packet::event_with(..).encode()` next to `CommonParser.encode_value`,
//! `Packet::event`, `CommonParser.encode`. The text and the attachments
//! of both are compared before timing.
//!
//! `cargo bench -p duplex-bench --bench socketio`
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

#[path = "common/mod.rs"]
mod common;
#[path = "common/socketio_decode.rs"]
mod socketio_decode;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use duplex_socketio::{Decoder, DecoderConfig, Packet, Value};
use serde_json::json;
use socketio_decode::{PACKETS, duplex, socketioxide};
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;

/// The event of the encode workloads: a name and arguments, as JSON and
/// optionally with one binary argument at the end.
struct Emit {
    name: &'static str,
    namespace: &'static str,
    ack_id: Option<u64>,
    args: serde_json::Value,
    binary: Option<Bytes>,
}

fn emits() -> Vec<(&'static str, Emit)> {
    vec![
        (
            "event with JSON args",
            Emit {
                name: "message",
                namespace: "/",
                ack_id: None,
                args: json!({"user": "ann", "room": "general", "text": "hello there, how is everyone doing today?", "ts": 1_700_000_000}),
                binary: None,
            },
        ),
        (
            "event with ack on a namespace",
            Emit {
                name: "message",
                namespace: "/chat",
                ack_id: Some(17),
                args: json!({"user": "ann", "tags": ["a", "b"], "n": 3, "ok": true, "text": "caf\u{e9} \u{2603} \"quoted\""}),
                binary: None,
            },
        ),
        (
            "binary event (1 KiB attachment)",
            Emit {
                name: "upload",
                namespace: "/",
                ack_id: None,
                args: json!({"name": "a.png", "type": "image/png"}),
                binary: Some(
                    (0..1024u32)
                        .map(|i| (i * 31) as u8)
                        .collect::<Vec<u8>>()
                        .into(),
                ),
            },
        ),
    ]
}

/// The text message and the attachments of one emit, by duplex.
fn duplex_encode(emit: &Emit, args: &[Value]) -> (Bytes, Vec<Bytes>) {
    let packet =
        Packet::event_with(emit.namespace, emit.name, args, emit.ack_id).expect("valid namespace");
    let encoded = packet.encode();
    (encoded.text.into_bytes(), encoded.attachments)
}

fn socketioxide_encode(emit: &Emit) -> (Bytes, Vec<Bytes>) {
    let value = match &emit.binary {
        Some(bin) => CommonParser.encode_value(&(&emit.args, bin), Some(emit.name)),
        None => CommonParser.encode_value(&(&emit.args,), Some(emit.name)),
    }
    .expect("serializable");
    let mut packet = socketioxide_core::packet::Packet::event(emit.namespace, value);
    if let Some(id) = emit.ack_id {
        packet.inner.set_ack_id(id as i64);
    }
    match CommonParser.encode(packet) {
        socketioxide_core::Value::Str(text, bins) => {
            (Bytes::from(text), bins.map(Vec::from).unwrap_or_default())
        }
        socketioxide_core::Value::Bytes(_) => panic!("an event encodes as text"),
    }
}

fn encode_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("socket.io packet encode");
    for (name, emit) in emits() {
        let mut args = vec![Value::from(emit.args.clone())];
        if let Some(bin) = &emit.binary {
            args.push(Value::Binary(bin.clone()));
        }
        // Both must write the same message before either is timed.
        let ours = duplex_encode(&emit, &args);
        assert_eq!(ours, socketioxide_encode(&emit), "{name}");
        assert_eq!(ours.1.len(), usize::from(emit.binary.is_some()), "{name}");
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("duplex/{name}"), |b| {
            b.iter(|| black_box(duplex_encode(black_box(&emit), black_box(&args))));
        });
        group.bench_function(format!("socketioxide/{name}"), |b| {
            b.iter(|| black_box(socketioxide_encode(black_box(&emit))));
        });
    }
    group.finish();
}

fn main() {
    let mut c = common::criterion(None);
    let mut group = c.benchmark_group("socket.io packet decode");
    for (name, _, wire) in PACKETS {
        let mut decoder = Decoder::new(DecoderConfig::default());
        let state = ParserState::default();
        let config = ParseConfig::default();
        // Both must agree before either is timed.
        assert_eq!(
            duplex(&mut decoder, wire),
            socketioxide(&config, &state, wire),
            "{name}"
        );
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("duplex/{name}"), |b| {
            b.iter(|| black_box(duplex(&mut decoder, black_box(wire))));
        });
        group.bench_function(format!("socketioxide/{name}"), |b| {
            b.iter(|| black_box(socketioxide(&config, &state, black_box(wire))));
        });
    }
    group.finish();
    encode_group(&mut c);
    c.final_summary();
}
