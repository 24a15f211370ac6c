//! The decode groups' contenders raced in one process, interleaved: for
//! each workload, rounds in which every contender decodes a few batches
//! in turn, each batch timed alone; a contender's figure is its fastest
//! batch. On a shared, loaded machine (where criterion's means move by
//! ±50 % between runs) the fastest of many short batches is what a
//! contender can do when it has a core, and interleaving puts every
//! contender through the same stretch of load.
//!
//! ```text
//! cargo run --profile bench -p duplex-bench --example decode_race -- [rounds] [workload]
//! ```
//!
//! Prints one line per contender: payload GB/s (binary) or M frames/s
//! (text), then the ratio to the reference decoder and to the best peer.

use std::hint::black_box;
use std::time::{Duration, Instant};

use duplex_bench::{
    Decode, DuplexConnection, DuplexConnectionDrain, DuplexConnectionRef, DuplexFrameDecoder,
    FastWebSockets, Kind, Reference, Soketto, Tungstenite, WebsocketCodec, Workload, warmed_up,
};

/// Batches timed per contender per round.
const BATCHES: usize = 5;

struct Racer {
    name: &'static str,
    peer: bool,
    best: Duration,
    run: Box<dyn FnMut() -> Duration>,
}

fn racer<D: Decode + 'static>(workload: &Workload, peer: bool) -> Racer {
    let mut d = warmed_up::<D>(workload);
    let frames = workload.frames;
    Racer {
        name: D::NAME,
        peer,
        best: Duration::MAX,
        run: Box::new(move || {
            let mut best = Duration::MAX;
            for _ in 0..BATCHES {
                let start = Instant::now();
                let mut bytes = 0usize;
                d.decode(frames, |p| bytes += p.len());
                black_box(bytes);
                best = best.min(start.elapsed());
            }
            best
        }),
    }
}

fn race(kind: Kind, rounds: usize) {
    let workload = Workload::batch(kind);
    let mut racers = vec![
        racer::<DuplexFrameDecoder>(&workload, false),
        racer::<DuplexConnection>(&workload, false),
        racer::<DuplexConnectionRef>(&workload, false),
        racer::<DuplexConnectionDrain>(&workload, false),
        racer::<Tungstenite>(&workload, true),
        racer::<FastWebSockets>(&workload, true),
        racer::<WebsocketCodec>(&workload, true),
        racer::<Reference>(&workload, false),
    ];
    // soketto unmasks a byte at a time: 20× slower on binary, it would
    // take most of the time and is never the best peer there.
    if kind.is_text() {
        racers.push(racer::<Soketto>(&workload, true));
    }
    for _ in 0..rounds {
        for r in racers.iter_mut() {
            r.best = r.best.min((r.run)());
        }
    }
    let rate = |d: Duration| {
        if kind.is_text() {
            workload.frames as f64 / d.as_secs_f64() / 1e6
        } else {
            workload.payload_bytes as f64 / d.as_secs_f64() / 1e9
        }
    };
    let unit = if kind.is_text() { "M/s" } else { "GB/s" };
    let reference = racers
        .iter()
        .find(|r| r.name == Reference::NAME)
        .map(|r| r.best);
    let best_peer = racers.iter().filter(|r| r.peer).min_by_key(|r| r.best);
    let (Some(reference), Some(best_peer)) = (reference, best_peer) else {
        return;
    };
    for r in &racers {
        println!(
            "{:<14} {:<24} {:>9.2} {unit:<4}  {:>5.2}x reference  {:>5.2}x best peer ({})",
            kind.name(),
            r.name,
            rate(r.best),
            reference.as_secs_f64() / r.best.as_secs_f64(),
            best_peer.best.as_secs_f64() / r.best.as_secs_f64(),
            best_peer.name,
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let only = args.get(2);
    for kind in Kind::ALL {
        if only.is_none_or(|o| o == kind.name()) {
            race(kind, rounds);
        }
    }
}
