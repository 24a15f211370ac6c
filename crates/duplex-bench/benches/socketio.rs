//! Socket.IO packet decoding, duplex next to socketioxide's parser
//! (`socketioxide-parser-common`, callable on its own) in one group. Each
//! contender starts from a copy of the received text (what a transport
//! read hands over) and must produce the namespace, the ack id and the
//! event name; both results are checked once before timing.
//!
//! `cargo bench -p duplex-bench --bench socketio`

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use duplex_socketio::{Decoder, DecoderConfig};
use socketioxide_core::Str;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_parser_common::CommonParser;

const PACKETS: [(&str, &str); 3] = [
    ("small event", r#"2["message",1,"2",{"3":[true]}]"#),
    (
        "chat event with ack on a namespace",
        r#"2/chat,17["message",{"user":"ann","room":"general","text":"hello there, how is everyone doing today?"}]"#,
    ),
    (
        "ack",
        r#"3/chat,17[{"ok":true,"id":"m-123456","ts":1700000000}]"#,
    ),
];

/// (namespace length, ack id) as duplex sees the packet.
fn duplex(decoder: &mut Decoder, wire: &str) -> (usize, Option<u64>) {
    let packet = decoder
        .receive_text(Bytes::copy_from_slice(wire.as_bytes()))
        .expect("valid")
        .expect("whole");
    (packet.namespace.len(), packet.ack_id)
}

fn socketioxide(config: &ParseConfig, state: &ParserState, wire: &str) -> (usize, Option<u64>) {
    let packet = CommonParser
        .decode_str(config, state, Str::from(wire.to_owned()))
        .expect("valid");
    let ack = match &packet.inner {
        socketioxide_core::packet::PacketData::Event(_, ack) => ack.map(|a| a as u64),
        socketioxide_core::packet::PacketData::EventAck(_, ack) => Some(*ack as u64),
        _ => None,
    };
    (packet.ns.len(), ack)
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("socket.io packet decode");
    for (name, wire) in PACKETS {
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
    c.final_summary();
}
