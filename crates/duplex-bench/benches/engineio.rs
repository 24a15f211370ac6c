//! Engine.IO v4 codec work, duplex next to engineioxide's codec
//! (`engineioxide-core`, callable without a server) in one group per
//! workload:
//!
//! - polling payload decode: a POST body of text packets and `b`+base64
//!   binary packets joined by `0x1e`, from a copy of the body (what a read
//!   hands over) to every packet. engineioxide's decoder takes an
//!   `http_body::Body` and yields a `Stream`; it is driven here with a
//!   `Full` body and a no-op waker, and never has to wait.
//! - polling payload encode: the same packets into one body. engineioxide's
//!   encoder takes a `Stream` of packets by value, so its side also pays
//!   for cloning them (reference-count bumps, no byte copies).
//! - one WebSocket text message to one packet (`4<json>` and `3`).
//!
//! Every contender's output is checked against duplex's before timing.
//!
//! `cargo bench -p duplex-bench --bench engineio`
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use std::future::Future as _;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::Throughput;
use duplex_engineio::{Limits, Packet, PayloadFormat, ProtocolVersion, Utf8Bytes, WsMessage};
use engineioxide_core::{Packet as EioxPacket, PacketBuf, Str};
use futures_util::Stream;
use http_body_util::Full;

const CHAT: [&str; 6] = [
    r#"42["message",{"user":"ann","room":"general","text":"hello there"}]"#,
    r#"42["typing",{"user":"bob","room":"general"}]"#,
    r#"42["message",{"user":"bob","room":"general","text":"hi ann, how is everyone doing today?"}]"#,
    r#"43["ok"]"#,
    r#"451-["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}}]"#,
    r#"42["message",{"user":"carl","room":"random","text":"\u00e9t\u00e9 \u2603"}]"#,
];

/// The packets of the payload: six Socket.IO-shaped text messages, two
/// binary attachments (48 and 300 bytes) and a pong.
fn packets() -> Vec<(bool, Vec<u8>)> {
    let mut out: Vec<(bool, Vec<u8>)> = CHAT
        .iter()
        .map(|text| (false, text.as_bytes().to_vec()))
        .collect();
    out.insert(5, (true, (0..48u8).collect()));
    out.push((true, (0..300u32).map(|i| (i * 7) as u8).collect()));
    out
}

fn duplex_packets() -> Vec<Packet> {
    packets()
        .into_iter()
        .map(|(binary, data)| {
            if binary {
                Packet::binary(data)
            } else {
                // The `4` is the Engine.IO message type; the rest its data.
                let text = String::from_utf8(data[1..].to_vec()).expect("ASCII");
                Packet::message(text)
            }
        })
        .chain([Packet::pong()])
        .collect()
}

fn engineioxide_packets() -> Vec<EioxPacket> {
    packets()
        .into_iter()
        .map(|(binary, data)| {
            if binary {
                EioxPacket::Binary(Bytes::from(data))
            } else {
                let text = String::from_utf8(data[1..].to_vec()).expect("ASCII");
                EioxPacket::Message(Str::from(text))
            }
        })
        .chain([EioxPacket::Pong])
        .collect()
}

/// What a decoder must produce, compared across contenders: per packet its
/// kind (`b` binary, `m` message, `p` pong) and its data.
type Decoded = Vec<(u8, Vec<u8>)>;

fn describe_duplex(packet: &Packet) -> (u8, Vec<u8>) {
    match packet {
        Packet::Message(text) => (b'm', text.as_bytes().to_vec()),
        Packet::Binary(data) => (b'b', data.to_vec()),
        Packet::Pong(data) if data.is_empty() => (b'p', Vec::new()),
        other => panic!("unexpected {other:?}"),
    }
}

fn describe_engineioxide(packet: &EioxPacket) -> (u8, Vec<u8>) {
    match packet {
        EioxPacket::Message(text) => (b'm', text.as_bytes().to_vec()),
        EioxPacket::Binary(data) => (b'b', data.to_vec()),
        EioxPacket::Pong => (b'p', Vec::new()),
        other => panic!("unexpected {other:?}"),
    }
}

/// Decodes a copy of `body`; returns the packet count and data bytes.
fn duplex_decode(body: &[u8], seen: &mut dyn FnMut(&Packet)) -> (usize, usize) {
    let mut count = 0;
    let mut bytes = 0;
    for packet in duplex_engineio::decode_payload(
        Bytes::copy_from_slice(body),
        PayloadFormat::V4,
        Limits::default(),
    ) {
        let packet = packet.expect("valid payload");
        bytes += match &packet {
            Packet::Message(text) => text.len(),
            Packet::Binary(data) => data.len(),
            _ => 0,
        };
        seen(&packet);
        count += 1;
    }
    (count, bytes)
}

/// Drives a stream that never waits (its body is in memory) to its end.
fn drain<S: Stream>(stream: S, mut each: impl FnMut(S::Item)) {
    let mut stream = pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => each(item),
            Poll::Ready(None) => return,
            Poll::Pending => panic!("an in-memory body never waits"),
        }
    }
}

fn engineioxide_decode(body: &[u8], seen: &mut dyn FnMut(&EioxPacket)) -> (usize, usize) {
    let mut count = 0;
    let mut bytes = 0;
    let body = Full::new(Bytes::copy_from_slice(body));
    let stream = engineioxide_core::payload::decoder(
        body,
        None,
        engineioxide_core::ProtocolVersion::V4,
        1_000_000,
    );
    drain(stream, |packet| {
        let packet = packet.expect("valid payload");
        bytes += match &packet {
            EioxPacket::Message(text) => text.len(),
            EioxPacket::Binary(data) => data.len(),
            _ => 0,
        };
        seen(&packet);
        count += 1;
    });
    (count, bytes)
}

fn duplex_encode(packets: &[Packet]) -> Bytes {
    PayloadFormat::V4.encode_to_bytes(packets)
}

fn engineioxide_encode(packets: &[EioxPacket]) -> Bytes {
    // One stream item per packet, as a server's emits queue them.
    let items = packets
        .iter()
        .map(|p| std::iter::once(p.clone()).collect::<PacketBuf>());
    let encode = engineioxide_core::payload::encoder(
        futures_util::stream::iter(items),
        engineioxide_core::ProtocolVersion::V4,
        false,
        1_000_000,
    );
    let mut encode = pin!(encode);
    match encode
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(payload) => payload.data,
        Poll::Pending => panic!("packets are ready, the encoder never waits"),
    }
}

fn duplex_ws(wire: &str) -> (u8, usize) {
    let text = Utf8Bytes::from(wire.to_owned());
    match Packet::from_websocket(WsMessage::Text(text), ProtocolVersion::V4).expect("valid") {
        Packet::Message(text) => (b'm', text.len()),
        Packet::Pong(data) if data.is_empty() => (b'p', 0),
        other => panic!("unexpected {other:?}"),
    }
}

fn engineioxide_ws(wire: &str) -> (u8, usize) {
    let text = Str::from(wire.to_owned());
    match EioxPacket::parse(engineioxide_core::ProtocolVersion::V4, text).expect("valid") {
        EioxPacket::Message(text) => (b'm', text.len()),
        EioxPacket::Pong => (b'p', 0),
        other => panic!("unexpected {other:?}"),
    }
}

fn main() {
    let mut c = common::criterion(None);

    let duplex_list = duplex_packets();
    let eiox_list = engineioxide_packets();
    let body = duplex_encode(&duplex_list);
    assert_eq!(
        body,
        engineioxide_encode(&eiox_list),
        "both encoders write the same body"
    );
    assert_eq!(body.iter().filter(|&&b| b == 0x1e).count(), 8);
    let mut from_duplex: Decoded = Vec::new();
    let mut from_eiox: Decoded = Vec::new();
    let d = duplex_decode(&body, &mut |p| from_duplex.push(describe_duplex(p)));
    let e = engineioxide_decode(&body, &mut |p| from_eiox.push(describe_engineioxide(p)));
    assert_eq!(d, e);
    assert_eq!(from_duplex, from_eiox);
    assert_eq!(
        from_duplex,
        duplex_list.iter().map(describe_duplex).collect::<Decoded>()
    );
    assert_eq!(d.0, 9);

    let mut group = c.benchmark_group("engine.io v4 polling payload decode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("duplex", |b| {
        b.iter(|| black_box(duplex_decode(black_box(&body), &mut |_| {})));
    });
    group.bench_function("engineioxide", |b| {
        b.iter(|| black_box(engineioxide_decode(black_box(&body), &mut |_| {})));
    });
    group.finish();

    let mut group = c.benchmark_group("engine.io v4 polling payload encode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("duplex", |b| {
        b.iter(|| black_box(duplex_encode(black_box(&duplex_list))));
    });
    group.bench_function("engineioxide", |b| {
        b.iter(|| black_box(engineioxide_encode(black_box(&eiox_list))));
    });
    group.finish();

    let mut group = c.benchmark_group("engine.io websocket packet decode");
    group.throughput(Throughput::Elements(1));
    for (name, wire) in [("message", CHAT[2]), ("pong", "3")] {
        assert_eq!(duplex_ws(wire), engineioxide_ws(wire), "{name}");
        group.bench_function(format!("duplex/{name}"), |b| {
            b.iter(|| black_box(duplex_ws(black_box(wire))));
        });
        group.bench_function(format!("engineioxide/{name}"), |b| {
            b.iter(|| black_box(engineioxide_ws(black_box(wire))));
        });
    }
    group.finish();
    c.final_summary();
}
