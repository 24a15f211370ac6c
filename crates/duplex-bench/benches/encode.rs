//! Server frame header encoding (unmasked, as a server sends), duplex next
//! to its peers in one group. Each iteration encodes the headers for four
//! payload lengths covering the three length forms; the throughput is in
//! headers. Every encoder's bytes are checked against duplex's first.
//!
//! `cargo bench -p duplex-bench --bench encode`

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput};
use duplex_ws::{FrameHeader, MAX_HEADER_LEN, OpCode};

const LENGTHS: [usize; 4] = [16, 125, 16 << 10, 1 << 20];

fn duplex_array(len: usize, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    FrameHeader::new(OpCode::Binary, true, None, len as u64).encode_to_array(out)
}

fn duplex_bytes_mut(len: usize, out: &mut BytesMut) {
    out.clear();
    FrameHeader::new(OpCode::Binary, true, None, len as u64).encode(out);
}

fn fastwebsockets(payload: &[u8], out: &mut [u8; 16]) -> usize {
    let mut frame = fastwebsockets::Frame::new(
        true,
        fastwebsockets::OpCode::Binary,
        None,
        fastwebsockets::Payload::Borrowed(payload),
    );
    frame.fmt_head(out)
}

fn soketto(codec: &mut soketto::base::Codec, len: usize) -> &[u8] {
    let mut header = soketto::base::Header::new(soketto::base::OpCode::Binary);
    header.set_fin(true);
    header.set_payload_len(len);
    codec.encode_header(&header)
}

fn tungstenite(len: usize, out: &mut [u8; 16]) -> usize {
    use tungstenite::protocol::frame::{
        FrameHeader,
        coding::{Data, OpCode},
    };
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Data(Data::Binary),
        mask: None,
    };
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    header
        .format(len as u64, &mut cursor)
        .expect("a header fits in 16 bytes");
    cursor.position() as usize
}

fn check_all_agree(payload: &[u8]) {
    let mut codec = soketto::base::Codec::new();
    for len in LENGTHS {
        let mut a = [0u8; MAX_HEADER_LEN];
        let n = duplex_array(len, &mut a);
        let expected = &a[..n];
        let mut bm = BytesMut::new();
        duplex_bytes_mut(len, &mut bm);
        assert_eq!(&bm[..], expected, "duplex encode, len {len}");
        let mut f = [0u8; 16];
        let n = fastwebsockets(&payload[..len], &mut f);
        assert_eq!(&f[..n], expected, "fastwebsockets, len {len}");
        assert_eq!(soketto(&mut codec, len), expected, "soketto, len {len}");
        let mut t = [0u8; 16];
        let n = tungstenite(len, &mut t);
        assert_eq!(&t[..n], expected, "tungstenite, len {len}");
    }
}

fn encode(c: &mut Criterion) {
    let payload = vec![0u8; 1 << 20];
    check_all_agree(&payload);
    let mut group = c.benchmark_group("encode/server_header");
    group.throughput(Throughput::Elements(LENGTHS.len() as u64));
    group.bench_function("duplex-encode_to_array", |b| {
        let mut out = [0u8; MAX_HEADER_LEN];
        b.iter(|| {
            for len in black_box(LENGTHS) {
                let n = duplex_array(len, &mut out);
                black_box(&out[..n]);
            }
        })
    });
    group.bench_function("duplex-encode_bytesmut", |b| {
        let mut out = BytesMut::with_capacity(64);
        b.iter(|| {
            for len in black_box(LENGTHS) {
                duplex_bytes_mut(len, &mut out);
                black_box(&out[..]);
            }
        })
    });
    group.bench_function("fastwebsockets", |b| {
        let mut out = [0u8; 16];
        b.iter(|| {
            for len in black_box(LENGTHS) {
                let n = fastwebsockets(&payload[..len], &mut out);
                black_box(&out[..n]);
            }
        })
    });
    group.bench_function("soketto", |b| {
        let mut codec = soketto::base::Codec::new();
        b.iter(|| {
            for len in black_box(LENGTHS) {
                black_box(soketto(&mut codec, len));
            }
        })
    });
    group.bench_function("tungstenite", |b| {
        let mut out = [0u8; 16];
        b.iter(|| {
            for len in black_box(LENGTHS) {
                let n = tungstenite(len, &mut out);
                black_box(&out[..n]);
            }
        })
    });
    group.finish();
}

fn main() {
    // criterion_group!/criterion_main! expand to undocumented public items,
    // which the workspace lints reject; this is what they expand to.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    encode(&mut c);
    c.final_summary();
}
