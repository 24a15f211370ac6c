//! STOMP frame decoding and encoding, duplex next to `stomp-parser` (the
//! one STOMP frame parser on crates.io callable on its own; a nom parser,
//! last release 0.8.0 of 2025-09-06), one group per direction.
//!
//! Workloads: a `MESSAGE` frame with five headers and a 200-byte body, with
//! and without `content-length`, and the same frame whose header values
//! need STOMP 1.2 escaping (`\n`, `\c`, `\\`, `\r`).
//!
//! Decode: each contender starts from the received bytes and must produce
//! the command, every header name and value unescaped, and the body.
//! duplex copies the bytes into its read buffer (`FrameDecoder::receive`);
//! stomp-parser takes a `Vec<u8>` (the copy) and unescapes a value when
//! asked (`decoded_value`), which the bench asks for every header.
//!
//! Encode: a frame held as parts to bytes on the wire, in a new buffer. stomp-parser's
//! builder does not escape header values, so in the escaping workload it is
//! handed values escaped beforehand (outside timing) and does less work
//! than duplex (which adds `content-length` itself). Both write the same
//! header lines and body, checked before timing (duplex puts
//! `content-length` last, stomp-parser before its custom headers).
//!
//! `cargo bench -p duplex-bench --bench stomp`
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;

use bytes::Bytes;
use criterion::Throughput;
use duplex_stomp::{Command, Decoded, Frame, FrameDecoder, Limits, Version};
use stomp_parser::headers::DecodableValue;
use stomp_parser::server::{MessageFrameBuilder, ServerFrame};

const BODY_LEN: usize = 200;

/// Header values of the two kinds of frame (name, plain value, escaped
/// value on the wire).
fn custom_headers(escaping: bool) -> Vec<(&'static str, &'static str, &'static str)> {
    if escaping {
        vec![
            ("x-path", "a:b:c\\d", "a\\cb\\cc\\\\d"),
            (
                "x-note",
                "line one\nline two\r\nkey:value",
                "line one\\nline two\\r\\nkey\\cvalue",
            ),
        ]
    } else {
        vec![
            ("x-path", "a-b-c-d", "a-b-c-d"),
            ("x-note", "line one, line two", "line one, line two"),
        ]
    }
}

fn body() -> Vec<u8> {
    (0..BODY_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The wire bytes of the workload frame.
fn wire(escaping: bool, content_length: bool) -> Vec<u8> {
    let mut out = b"MESSAGE\nmessage-id:m-000042\ndestination:/topic/chat.general\nsubscription:sub-7\ncontent-type:text/plain\n".to_vec();
    if content_length {
        out.extend_from_slice(format!("content-length:{BODY_LEN}\n").as_bytes());
    }
    for (name, _, escaped) in custom_headers(escaping) {
        out.extend_from_slice(format!("{name}:{escaped}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&body());
    out.push(0);
    out
}

/// What a decoder must produce: the command, the headers unescaped (sorted
/// by name, since stomp-parser groups them by kind; `content-length` left
/// out, which duplex takes as framing), and the body.
type Seen = (String, Vec<(String, String)>, Vec<u8>);

fn duplex_decode(decoder: &mut FrameDecoder, wire: &[u8]) -> Frame {
    decoder.receive(wire);
    match decoder.decode() {
        Ok(Some(Decoded::Frame(frame))) => frame,
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn duplex_seen(frame: &Frame) -> Seen {
    let mut headers: Vec<(String, String)> = frame
        .headers()
        .iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect();
    headers.sort();
    (
        frame.command().as_str().to_owned(),
        headers,
        frame.body().to_vec(),
    )
}

/// Parses a copy of `wire` and unescapes every header value; returns the
/// body length and the unescaped header bytes.
fn stomp_parser_decode(wire: &[u8], seen: Option<&mut Seen>) -> (usize, usize) {
    let ServerFrame::Message(frame) = ServerFrame::try_from(wire.to_vec()).expect("valid frame")
    else {
        panic!("a MESSAGE frame");
    };
    let mut header_bytes = 0;
    let mut headers = Vec::new();
    let mut take = |name: &str, value: &str| headers.push((name.to_owned(), value.to_owned()));
    let collect = seen.is_some();
    let message_id = frame.message_id().decoded_value().expect("valid escape");
    let destination = frame.destination().decoded_value().expect("valid escape");
    let subscription = frame.subscription().decoded_value().expect("valid escape");
    header_bytes += message_id.len() + destination.len() + subscription.len();
    if collect {
        take("message-id", &message_id);
        take("destination", &destination);
        take("subscription", &subscription);
    }
    if let Some(content_type) = frame.content_type() {
        let value = content_type.decoded_value().expect("valid escape");
        header_bytes += value.len();
        if collect {
            take("content-type", &value);
        }
    }
    // duplex keeps `content-length` as framing, not as a header of the
    // frame; the length is checked through the body.
    if let Some(length) = frame.content_length() {
        header_bytes += *length.value() as usize;
    }
    for custom in &frame.custom {
        let name = custom.decoded_name().expect("valid escape");
        let value = custom.decoded_value().expect("valid escape");
        header_bytes += name.len() + value.len();
        if collect {
            take(&name, &value);
        }
    }
    let body = frame.body().unwrap_or_default();
    if let Some(seen) = seen {
        headers.sort();
        *seen = ("MESSAGE".to_owned(), headers, body.to_vec());
    }
    (body.len(), header_bytes)
}

fn duplex_frame(escaping: bool) -> Frame {
    let mut frame = Frame::new(Command::Message)
        .with_header("message-id", "m-000042")
        .with_header("destination", "/topic/chat.general")
        .with_header("subscription", "sub-7")
        .with_header("content-type", "text/plain");
    for (name, value, _) in custom_headers(escaping) {
        frame = frame.with_header(name, value);
    }
    frame.with_body(body())
}

/// Into a new buffer, as stomp-parser does (it returns a fresh `Vec`).
fn duplex_encode(frame: &Frame) -> Bytes {
    frame.to_bytes(Version::V1_2).expect("encodable")
}

/// stomp-parser's builder takes owned parts and writes them as given.
fn stomp_parser_encode(escaping: bool, body: &[u8]) -> Vec<u8> {
    let mut builder = MessageFrameBuilder::new(
        "m-000042".to_owned(),
        "/topic/chat.general".to_owned(),
        "sub-7".to_owned(),
    )
    .content_type("text/plain".to_owned())
    .content_length(BODY_LEN as u32);
    for (name, _, escaped) in custom_headers(escaping) {
        builder = builder.add_custom_header(name.to_owned(), escaped.to_owned());
    }
    builder.body(body.to_vec()).build().into()
}

/// A frame's header lines in order of name, then the rest (blank line,
/// body, NUL) as written.
fn same_frame(wire: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let end = wire
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("a blank line");
    let mut lines: Vec<Vec<u8>> = wire[..end]
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    lines.sort();
    (lines, wire[end..].to_vec())
}

fn main() {
    let mut c = common::criterion(None);

    let cases = [
        ("content-length", false, true),
        ("NUL-terminated", false, false),
        ("1.2 escaping, content-length", true, true),
    ];
    let mut group = c.benchmark_group("stomp frame decode");
    for (name, escaping, content_length) in cases {
        let wire = wire(escaping, content_length);
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.set_version(Version::V1_2);
        // Both must see the same frame before either is timed.
        let ours = duplex_seen(&duplex_decode(&mut decoder, &wire));
        let mut theirs = Seen::default();
        stomp_parser_decode(&wire, Some(&mut theirs));
        assert_eq!(ours, theirs, "{name}");
        assert_eq!(ours.2.len(), BODY_LEN);
        if escaping {
            assert!(ours.1.iter().any(|(_, v)| v.contains("\r\n")), "{name}");
        }
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("duplex/{name}"), |b| {
            b.iter(|| black_box(duplex_decode(&mut decoder, black_box(&wire))));
        });
        group.bench_function(format!("stomp-parser/{name}"), |b| {
            b.iter(|| black_box(stomp_parser_decode(black_box(&wire), None)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("stomp frame encode");
    for (name, escaping) in [("content-length", false), ("1.2 escaping", true)] {
        let frame = duplex_frame(escaping);
        let body = body();
        let out = duplex_encode(&frame);
        // duplex writes `content-length` after the other headers,
        // stomp-parser before its custom ones: same lines, same body.
        let expected = same_frame(&wire(escaping, true));
        assert_eq!(same_frame(&out), expected, "{name}: duplex");
        assert_eq!(
            same_frame(&stomp_parser_encode(escaping, &body)),
            expected,
            "{name}: stomp-parser"
        );
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("duplex/{name}"), |b| {
            b.iter(|| black_box(duplex_encode(black_box(&frame))));
        });
        group.bench_function(format!("stomp-parser/{name}"), |b| {
            b.iter(|| black_box(stomp_parser_encode(black_box(escaping), black_box(&body))));
        });
    }
    group.finish();
    c.final_summary();
}
