//! Decodes N masked 16-byte text frames with one contender, for counting
//! instructions per frame under callgrind (repeatable where wall-clock time
//! on a shared machine is not).
//!
//! ```text
//! cargo build --profile bench -p duplex-bench --example decode_count
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured_batches*' \
//!     target/release/examples/decode_count duplex-connection 409600
//! ```
//!
//! Only `measured_batches` is counted (set up and one warm-up batch are
//! not); divide the total instruction count by N.
//! Contenders: duplex-frame, duplex-connection, tungstenite,
//! fastwebsockets, soketto, websocket-codec, reference. An optional third argument
//! picks the workload: text_16B (default), text_125B, binary_16KiB,
//! binary_1MiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;

use duplex_bench::{
    Decode, DuplexConnection, DuplexConnectionDrain, DuplexConnectionRef, DuplexFrameDecoder,
    FastWebSockets, Kind, Reference, Soketto, Tungstenite, WebsocketCodec, Workload, warmed_up,
};

#[inline(never)]
fn measured_batches<D: Decode>(d: &mut D, frames_per_batch: usize, batches: usize) -> usize {
    let mut bytes = 0usize;
    for _ in 0..batches {
        d.decode(frames_per_batch, |p| bytes += p.len());
    }
    black_box(bytes)
}

fn run<D: Decode>(workload: &Workload, frames: usize) {
    // One checked warm-up batch: grows the buffers and proves the output.
    let mut d = warmed_up::<D>(workload);
    let batches = frames.div_ceil(workload.frames);
    let bytes = measured_batches(&mut d, workload.frames, batches);
    assert_eq!(bytes as u64, workload.payload_bytes * batches as u64);
    println!(
        "{}: decoded {} frames of {} ({} batches)",
        D::NAME,
        batches * workload.frames,
        workload.kind.name(),
        batches
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: decode_count <contender> <frames> [text_16B|text_125B|binary_16KiB|binary_1MiB]";
    let (Some(name), Some(frames)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let frames: usize = frames.parse().expect("frames is a number");
    let kind = match args.get(3).map(String::as_str) {
        None | Some("text_16B") => Kind::Text16,
        Some("text_125B") => Kind::Text125,
        Some("binary_16KiB") => Kind::Binary16K,
        Some("binary_1MiB") => Kind::Binary1M,
        Some(other) => {
            eprintln!("unknown workload {other}; {usage}");
            std::process::exit(2);
        }
    };
    let workload = Workload::batch(kind);
    match name.as_str() {
        "duplex-frame" => run::<DuplexFrameDecoder>(&workload, frames),
        "reference" => run::<Reference>(&workload, frames),
        "duplex-connection" => run::<DuplexConnection>(&workload, frames),
        "duplex-connection-ref" => run::<DuplexConnectionRef>(&workload, frames),
        "duplex-connection-drain" => run::<DuplexConnectionDrain>(&workload, frames),
        "tungstenite" => run::<Tungstenite>(&workload, frames),
        "fastwebsockets" => run::<FastWebSockets>(&workload, frames),
        "soketto" => run::<Soketto>(&workload, frames),
        "websocket-codec" => run::<WebsocketCodec>(&workload, frames),
        other => {
            eprintln!("unknown contender {other}; {usage}");
            std::process::exit(2);
        }
    }
}
