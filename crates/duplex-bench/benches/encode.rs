//! Server frame header encoding (unmasked, as a server sends), duplex next
//! to its peers in one group. Each iteration encodes the headers for four
//! payload lengths covering the three length forms; the throughput is in
//! headers. Every encoder's bytes are checked against duplex's first.
//!
//! Then sending whole binary messages from a server `Connection`: the
//! copying path (`send_binary` + `poll_transmit` into a `BytesMut`, what
//! the adapter did before) against the uncopied one (`send(Bytes)` +
//! `poll_transmit_chunks`), per message (`send/server_binary`), and with
//! the write to a Unix socket included (`send/socket_batch16`, read back
//! by the same thread), which is what sets `Config::min_shared_payload`.
//! Before timing, both paths' bytes are checked to be equal and the bytes
//! each one copies are counted and printed.
//!
//! `cargo bench -p duplex-bench --bench encode`
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::io::{IoSlice, Read, Write};
use std::os::unix::net::UnixStream;

use bytes::{Buf, Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use duplex_ws::{Config, Connection, FrameHeader, MAX_HEADER_LEN, OpCode, Role, TransmitChunks};

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

fn server(min_shared_payload: usize) -> Connection {
    Connection::new(
        Role::Server,
        Config {
            min_shared_payload,
            ..Config::default()
        },
    )
}

/// The copying path: the payload is copied into the connection's buffer,
/// which is handed out whole.
fn send_copied(conn: &mut Connection, payload: &Bytes, out: &mut BytesMut) {
    conn.send_binary(payload).expect("the connection is open");
    conn.poll_transmit(out);
}

/// The uncopied path: the header goes inline, the payload's `Bytes` as
/// they are.
fn send_chunked(conn: &mut Connection, payload: &Bytes, out: &mut TransmitChunks) {
    conn.send(payload.clone()).expect("the connection is open");
    conn.poll_transmit_chunks(out);
}

/// Bytes in `out` that do not point into `payload`: what was copied.
fn copied_bytes(out: &TransmitChunks, payload: &Bytes) -> usize {
    let range = payload.as_ptr_range();
    let mut slices = [IoSlice::new(&[]); 64];
    let n = out.chunks_vectored(&mut slices);
    let shared: usize = slices[..n]
        .iter()
        .filter(|s| range.contains(&s.as_ptr()))
        .map(|s| s.len())
        .sum();
    out.remaining() - shared
}

fn flat(out: &mut TransmitChunks) -> Vec<u8> {
    let mut v = Vec::new();
    out.flatten_into(&mut v);
    v
}

/// Both paths give the same bytes; prints what each copies per message.
fn check_send_paths(len: usize, payload: &Bytes) {
    let mut copied = BytesMut::new();
    send_copied(&mut server(usize::MAX), payload, &mut copied);
    let mut chunks = TransmitChunks::new();
    // As timed below: every payload shared.
    send_chunked(&mut server(0), payload, &mut chunks);
    let copied_by_chunks = copied_bytes(&chunks, payload);
    let slices = chunks.chunk_count();
    assert_eq!(flat(&mut chunks), &copied[..], "same bytes, len {len}");
    // With the default threshold.
    send_chunked(
        &mut server(Config::default().min_shared_payload),
        payload,
        &mut chunks,
    );
    let copied_by_default = copied_bytes(&chunks, payload);
    assert_eq!(flat(&mut chunks), &copied[..], "same bytes, len {len}");
    println!(
        "send {len} B: copy path copies {} B/message into the write buffer (then the socket write \
         copies from there); chunk path copies {copied_by_chunks} B/message ({slices} slices), \
         {copied_by_default} B with the default min_shared_payload",
        copied.len(),
    );
}

fn send(c: &mut Criterion) {
    for len in [64usize, 256, 1024, 2048, 4096, 16 << 10, 1 << 20] {
        let payload = Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        check_send_paths(len, &payload);
        let mut group = c.benchmark_group("send/server_binary");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("copy", len), &len, |b, _| {
            let mut conn = server(usize::MAX);
            let mut out = BytesMut::new();
            b.iter(|| {
                send_copied(&mut conn, black_box(&payload), &mut out);
                black_box(&out[..]);
                out.clear();
            })
        });
        group.bench_with_input(BenchmarkId::new("chunks", len), &len, |b, _| {
            let mut conn = server(0);
            let mut out = TransmitChunks::new();
            b.iter(|| {
                send_chunked(&mut conn, black_box(&payload), &mut out);
                black_box(out.chunk());
                out.clear();
            })
        });
        group.finish();
    }
}

/// Writes all of `out` to `sock`, vectored, as the adapter does.
fn write_vectored(sock: &mut UnixStream, out: &mut TransmitChunks) {
    while out.has_remaining() {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = out.chunks_vectored(&mut slices);
        let written = sock.write_vectored(&slices[..n]).expect("socket write");
        out.advance(written);
    }
}

/// Reads back `len` bytes from `sock` (the other end of the pair).
fn read_back(sock: &mut UnixStream, len: usize, buf: &mut [u8]) {
    let mut got = 0;
    while got < len {
        got += sock.read(buf).expect("socket read");
    }
    assert_eq!(got, len, "exactly what was written");
}

/// A batch of `BATCH` messages of each size, written with one write (copy)
/// or one vectored write (chunks) into a Unix socket and read back from the
/// other end by the same thread, so that no scheduling between threads
/// gets measured. The read costs both paths the same; the difference is
/// the copy into the write buffer against a slice more per message for the
/// kernel. Where the lines cross sets `Config::min_shared_payload`.
fn send_to_socket(c: &mut Criterion) {
    const BATCH: usize = 16;
    let (mut sock, mut peer) = UnixStream::pair().expect("socketpair");
    let mut buf = vec![0u8; 1 << 20];
    let mut group = c.benchmark_group("send/socket_batch16");
    // At most 16 x 4 KiB = 64 KiB a batch: within the socket buffer, so a
    // write never waits for the read.
    for len in [64usize, 256, 1024, 2048, 3072, 4096] {
        let payload = Bytes::from(vec![7u8; len]);
        let wire = BATCH * (len + if len < 126 { 2 } else { 4 });
        group.throughput(Throughput::Bytes((len * BATCH) as u64));
        group.bench_with_input(BenchmarkId::new("copy", len), &len, |b, _| {
            let mut conn = server(usize::MAX);
            let mut out = BytesMut::new();
            b.iter(|| {
                for _ in 0..BATCH {
                    conn.send_binary(&payload).expect("open");
                }
                conn.poll_transmit(&mut out);
                sock.write_all(&out).expect("socket write");
                out.clear();
                read_back(&mut peer, wire, &mut buf);
            })
        });
        group.bench_with_input(BenchmarkId::new("chunks", len), &len, |b, _| {
            let mut conn = server(0);
            let mut out = TransmitChunks::new();
            b.iter(|| {
                for _ in 0..BATCH {
                    conn.send(payload.clone()).expect("open");
                }
                conn.poll_transmit_chunks(&mut out);
                write_vectored(&mut sock, &mut out);
                read_back(&mut peer, wire, &mut buf);
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = common::criterion(Some(50));
    encode(&mut c);
    send(&mut c);
    send_to_socket(&mut c);
    c.final_summary();
}
