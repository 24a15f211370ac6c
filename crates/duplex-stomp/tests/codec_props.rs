//! Property tests of the frame codec: encode then decode is the identity in
//! every version, any split of the input gives the same items (and the same
//! error), and arbitrary input never panics nor buffers past the limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use bytes::BytesMut;
use duplex_stomp::{Command, Decoded, Error, Frame, FrameDecoder, Header, Limits, Version};
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Version> {
    prop::sample::select(Version::ALL.to_vec())
}

fn command() -> impl Strategy<Value = Command> {
    prop::sample::select(Command::ALL.to_vec())
}

/// Text with the octets that escaping cares about over-represented.
fn text(min: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            1 => prop::sample::select(vec![':', '\\', '\n', '\r', ' ', '\0', 'é', '€', '𝄞']),
        ],
        min..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Whether `frame` can be written in `version`: where headers are not
/// escaped, no LF or CR and no colon in names; never CR in 1.1.
fn encodable(frame: &Frame, version: Version) -> bool {
    frame.headers().iter().all(|h| {
        let (n, v) = (h.name(), h.value());
        let escaped = !frame.command().is_unescaped() && version >= Version::V1_1;
        !n.is_empty()
            && !n.starts_with('\0')
            && n != "content-length"
            && if escaped {
                version == Version::V1_2 || !(n.contains('\r') || v.contains('\r'))
            } else {
                !(n.contains(['\n', '\r', ':']) || v.contains(['\n', '\r']))
            }
    })
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        command(),
        prop::collection::vec((text(1), text(0)), 0..6),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(command, headers, body)| {
            let mut f = Frame::new(command);
            for (n, v) in headers {
                f.push_header(Header::from_strings(n, v));
            }
            if command.allows_body() {
                f.set_body(body);
            }
            f
        })
}

fn decode_chunks(d: &mut FrameDecoder, chunks: &[&[u8]]) -> (Vec<Decoded>, Option<Error>) {
    let mut items = Vec::new();
    for chunk in chunks {
        d.receive(chunk);
        loop {
            match d.decode() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {
                    assert!(
                        d.buffered() <= d.limits().max_frame,
                        "buffered past the frame limit"
                    );
                    break;
                }
                Err(e) => return (items, Some(e)),
            }
        }
    }
    (items, None)
}

fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for c in cuts {
        chunks.push(&input[last..c]);
        last = c;
    }
    chunks.push(&input[last..]);
    chunks
}

/// Frames and heart-beats as they travel: frames encoded in `version`,
/// heart-beats as LF or CRLF.
fn stream() -> impl Strategy<Value = (Version, Vec<Option<Frame>>)> {
    (
        version(),
        prop::collection::vec(prop::option::weighted(0.8, frame()), 0..8),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_the_identity(v in version(), f in frame()) {
        prop_assume!(encodable(&f, v));
        let mut out = BytesMut::new();
        f.encode(v, &mut out).unwrap();
        let mut d = FrameDecoder::new(Limits::default());
        d.set_version(v);
        let (items, err) = decode_chunks(&mut d, &[&out]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(items, vec![Decoded::Frame(f)]);
    }

    #[test]
    fn unencodable_frames_are_refused_not_garbled(v in version(), f in frame()) {
        let mut out = BytesMut::new();
        match f.encode(v, &mut out) {
            Ok(()) => prop_assert!(encodable(&f, v) || f.headers().iter().any(|h| h.name() == "content-length")),
            Err(Error::Unencodable { .. }) => prop_assert!(out.is_empty()),
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }

    #[test]
    fn any_split_gives_the_same_items(
        (v, items) in stream(),
        crlf in any::<bool>(),
        points in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut input = BytesMut::new();
        let mut expected = Vec::new();
        for item in items {
            match item {
                Some(f) if encodable(&f, v) => {
                    f.encode(v, &mut input).unwrap();
                    expected.push(Decoded::Frame(f));
                }
                _ => {
                    input.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                    expected.push(Decoded::HeartBeat);
                }
            }
        }
        let mut whole = FrameDecoder::new(Limits::default());
        whole.set_version(v);
        let (got, err) = decode_chunks(&mut whole, &[&input]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(&got, &expected);
        let mut split = FrameDecoder::new(Limits::default());
        split.set_version(v);
        let (got, err) = decode_chunks(&mut split, &split_at_points(&input, &points));
        prop_assert_eq!(err, None);
        prop_assert_eq!(&got, &expected);
        let mut bytewise = FrameDecoder::new(Limits::default());
        bytewise.set_version(v);
        let singles: Vec<&[u8]> = input.chunks(1).collect();
        let (got, err) = decode_chunks(&mut bytewise, &singles);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn arbitrary_input_splits_agree_and_stay_within_limits(
        v in version(),
        input in prop::collection::vec(
            prop_oneof![
                3 => any::<u8>(),
                1 => prop::sample::select(b"\n\r\0:\\SENDMESAGcontent-length:1".to_vec()),
            ],
            0..300,
        ),
        prefix in prop::sample::select(vec![&b""[..], b"SEND\n", b"MESSAGE\ncontent-length:3\n\n", b"ACK\nid:1\n"]),
        points in prop::collection::vec(any::<usize>(), 0..10),
        max_headers in 0usize..5,
        max_header_line in 0usize..40,
        max_body in 0usize..40,
        max_frame in 0usize..120,
    ) {
        let limits = Limits { max_headers, max_header_line, max_body, max_frame };
        let input = [prefix, &input[..]].concat();
        let mut whole = FrameDecoder::new(limits);
        whole.set_version(v);
        let expected = decode_chunks(&mut whole, &[&input]);
        let mut split = FrameDecoder::new(limits);
        split.set_version(v);
        let got = decode_chunks(&mut split, &split_at_points(&input, &points));
        prop_assert_eq!(&got, &expected);
        let mut bytewise = FrameDecoder::new(limits);
        bytewise.set_version(v);
        let singles: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(decode_chunks(&mut bytewise, &singles), expected);
    }
}
