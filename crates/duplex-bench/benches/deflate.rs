//! permessage-deflate on a JSON chat workload: a client Connection sends a
//! batch of chat messages and a server Connection receives them, with and
//! without compression, in one group so the report is a side-by-side
//! ratio. Throughput is in application bytes (before compression); the
//! bytes on the wire, and so the compression ratio, are printed once per
//! configuration. Every received message is checked against what was sent
//! before timing starts.
//!
//! tungstenite and fastwebsockets have no permessage-deflate, so there is
//! no peer here.
//!
//! `cargo bench -p duplex-bench --bench deflate`
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput};
use duplex_ws::{Config, Connection, DeflateConfig, DeflateParams, Event, Message, Role};

/// 200 chat messages of 90 to 400 bytes, varied like a busy room.
fn chat() -> Vec<String> {
    (0..200)
        .map(|i| {
            format!(
                "{{\"type\":\"chat\",\"room\":\"general\",\"user\":\"user{}\",\"ts\":{},\"text\":\"{}\"}}",
                i % 37,
                1_700_000_000 + i,
                "hello there, how is everyone doing today? ".repeat(1 + i % 8)
            )
        })
        .collect()
}

fn pair(deflate: Option<(DeflateParams, DeflateParams)>) -> (Connection, Connection) {
    let mut client = Connection::new(Role::Client, Config::default());
    let mut server = Connection::new(Role::Server, Config::default());
    if let Some((client_params, server_params)) = deflate {
        client.enable_permessage_deflate(&client_params);
        server.enable_permessage_deflate(&server_params);
    }
    (client, server)
}

fn agreed(config: DeflateConfig) -> (DeflateParams, DeflateParams) {
    let (server, response) = config.negotiate(&[config.client_offer()]).expect("agreed");
    let client = config
        .accept_response(&[response])
        .expect("valid")
        .expect("agreed");
    (client, server)
}

/// Sends every message client -> server; returns the wire bytes and the
/// received bytes.
fn round(
    client: &mut Connection,
    server: &mut Connection,
    messages: &[String],
    wire: &mut BytesMut,
) -> (usize, usize) {
    let mut on_wire = 0;
    let mut received = 0;
    for m in messages {
        client.send_text(m).expect("open");
        wire.clear();
        on_wire += client.poll_transmit(wire);
        server.receive(wire);
        while let Some(event) = server.poll_event() {
            if let Event::Message(Message::Text(t)) = event {
                received += t.len();
            }
        }
    }
    (on_wire, received)
}

fn bench(c: &mut Criterion) {
    let messages = chat();
    let total: usize = messages.iter().map(String::len).sum();
    let configs: [(&str, Option<(DeflateParams, DeflateParams)>); 4] = [
        ("uncompressed", None),
        ("deflate level 1", Some(agreed(DeflateConfig::default()))),
        (
            "deflate level 1, no context takeover",
            Some(agreed(DeflateConfig {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                ..DeflateConfig::default()
            })),
        ),
        (
            "deflate level 6",
            Some(agreed(DeflateConfig {
                level: 6,
                ..DeflateConfig::default()
            })),
        ),
    ];
    let mut group = c.benchmark_group("chat JSON client to server");
    group.throughput(Throughput::Bytes(total as u64));
    group.measurement_time(Duration::from_secs(3));
    for (name, params) in configs {
        let (mut client, mut server) = pair(params);
        let mut wire = BytesMut::new();
        let (on_wire, received) = round(&mut client, &mut server, &messages, &mut wire);
        assert_eq!(received, total, "{name} lost or changed messages");
        println!(
            "{name}: {total} bytes of JSON -> {on_wire} bytes on the wire ({:.1}%)",
            100.0 * on_wire as f64 / total as f64
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(round(&mut client, &mut server, &messages, &mut wire)));
        });
    }
    group.finish();
}

fn main() {
    // As in the other benches: criterion's macros expand to undocumented
    // public items, which the workspace lints reject.
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
