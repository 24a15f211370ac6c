//! Server-side decode of masked client frames, duplex next to its peers in
//! one benchmark group per workload, so each report is a side-by-side
//! comparison from one run.
//!
//! Every contender pays the copy a socket read costs, parses, unmasks and
//! validates text. Its output is checked against the workload's digest
//! before and after it is timed.
//!
//! Run one group at a time, e.g.
//! `cargo bench -p duplex-bench --bench decode -- decode/text_16B`.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use duplex_bench::{
    Decode, Digest, DuplexConnection, DuplexConnectionDrain, DuplexConnectionRef,
    DuplexFrameDecoder, FastWebSockets, Kind, READ_CHUNK, Reference, Soketto, Tungstenite,
    WebsocketCodec, WireReader, Workload, baseline_copy, baseline_copy_xor,
};

fn verify<D: Decode>(d: &mut D, workload: &Workload, when: &str) {
    let mut digest = Digest::default();
    d.decode(workload.frames, |p| digest.add(p));
    assert_eq!(
        digest,
        workload.expected,
        "{} decoded {} the wrong payloads",
        D::NAME,
        when
    );
}

fn contender<D: Decode>(group: &mut BenchmarkGroup<'_, WallTime>, workload: &Workload) {
    let mut d = D::new(WireReader::new(workload.wire.clone(), READ_CHUNK));
    verify(&mut d, workload, "before timing");
    group.bench_function(D::NAME, |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            d.decode(workload.frames, |p| bytes += p.len());
            black_box(bytes)
        })
    });
    verify(&mut d, workload, "after timing");
}

fn workload_group(c: &mut Criterion, kind: Kind) {
    let workload = Workload::batch(kind);
    let mut group = c.benchmark_group(format!("decode/{}", kind.name()));
    group.throughput(if kind.is_text() {
        Throughput::Elements(workload.frames as u64)
    } else {
        Throughput::Bytes(workload.payload_bytes)
    });
    contender::<DuplexFrameDecoder>(&mut group, &workload);
    contender::<DuplexConnection>(&mut group, &workload);
    contender::<DuplexConnectionRef>(&mut group, &workload);
    contender::<DuplexConnectionDrain>(&mut group, &workload);
    contender::<Tungstenite>(&mut group, &workload);
    contender::<FastWebSockets>(&mut group, &workload);
    contender::<Soketto>(&mut group, &workload);
    contender::<WebsocketCodec>(&mut group, &workload);
    // The limit: copy in, unmask, validate text, nothing else.
    contender::<Reference>(&mut group, &workload);
    let mut buf = Vec::with_capacity(workload.wire.len());
    group.bench_function("baseline-memcpy", |b| {
        b.iter(|| {
            baseline_copy(black_box(&workload.wire), &mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("baseline-copy-xor", |b| {
        b.iter(|| {
            baseline_copy_xor(black_box(&workload.wire), &mut buf);
            black_box(buf.len())
        })
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    for kind in Kind::ALL {
        workload_group(c, kind);
    }
}

fn main() {
    let mut c = common::criterion(Some(50));
    decode(&mut c);
    c.final_summary();
}
