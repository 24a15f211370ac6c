//! Decodes one Socket.IO packet N times with one contender, for counting
//! instructions per packet under callgrind (repeatable where wall-clock
//! time on a shared machine is not). The workloads and the per-packet work
//! are those of the `socketio` bench's decode group: each decode starts
//! from a fresh copy of the received text and yields the namespace and the
//! ack id.
//!
//! ```text
//! cargo build --profile bench -p duplex-bench --example socketio_count
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*' \
//!     target/release/examples/socketio_count duplex chat 100000
//! ```
//!
//! Only `measured` is counted (set up and the checked warm-up decode are
//! not); divide the total instruction count by N. Contenders: duplex,
//! socketioxide. Workloads: small, chat, ack.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

#[path = "../benches/common/socketio_decode.rs"]
mod socketio_decode;

use std::hint::black_box;

use duplex_socketio::{Decoder, DecoderConfig};
use socketioxide_core::parser::{ParseConfig, ParserState};

/// One decode, as in the bench: (namespace length, ack id).
trait Contender {
    fn decode(&mut self, wire: &str) -> (usize, Option<u64>);
}

struct Duplex(Decoder);

impl Contender for Duplex {
    fn decode(&mut self, wire: &str) -> (usize, Option<u64>) {
        socketio_decode::duplex(&mut self.0, wire)
    }
}

struct Socketioxide(ParseConfig, ParserState);

impl Contender for Socketioxide {
    fn decode(&mut self, wire: &str) -> (usize, Option<u64>) {
        socketio_decode::socketioxide(&self.0, &self.1, wire)
    }
}

#[inline(never)]
fn measured<C: Contender>(c: &mut C, wire: &str, n: usize) -> usize {
    let mut sum = 0usize;
    for _ in 0..n {
        let (ns, ack) = c.decode(black_box(wire));
        sum = sum.wrapping_add(ns).wrapping_add(ack.unwrap_or(0) as usize);
    }
    black_box(sum)
}

fn run<C: Contender>(mut c: C, wire: &str, n: usize) -> (usize, Option<u64>) {
    let first = c.decode(wire);
    measured(&mut c, wire, n);
    first
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: socketio_count <duplex|socketioxide> <small|chat|ack> <packets>";
    let (Some(name), Some(workload), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("packets is a number");
    let Some(&(_, _, wire)) = socketio_decode::PACKETS
        .iter()
        .find(|(_, short, _)| short == workload)
    else {
        eprintln!("unknown workload {workload}; {usage}");
        std::process::exit(2);
    };
    // Both contenders must read the same packet.
    let expected = Socketioxide(ParseConfig::default(), ParserState::default()).decode(wire);
    let got = match name.as_str() {
        "duplex" => run(Duplex(Decoder::new(DecoderConfig::default())), wire, n),
        "socketioxide" => run(
            Socketioxide(ParseConfig::default(), ParserState::default()),
            wire,
            n,
        ),
        other => {
            eprintln!("unknown contender {other}; {usage}");
            std::process::exit(2);
        }
    };
    assert_eq!(got, expected, "{name} read {workload} differently");
    println!("{name}: decoded {workload} {n} times");
}
