//! Polling payloads: several packets in one HTTP body, in each encoding the
//! protocol versions use.
//!
//! | format | used for | packet framing | binary messages |
//! |---|---|---|---|
//! | [`PayloadFormat::V4`] | every v4 polling body | joined by `0x1e` | `b<base64>` |
//! | [`PayloadFormat::V3String`] | v3 text bodies, `b64=1`, JSONP | `<length>:<packet>`, length in UTF-16 code units | `b4<base64>` |
//! | [`PayloadFormat::V3Binary`] | v3 XHR2 bodies with binary | `0x00`/`0x01`, length digits as bytes 0-9, `0xff` | raw, behind a `0x04` type byte |
//!
//! [`PayloadDecoder`] decodes incrementally (any split of a body gives the
//! same packets) and [`decode_payload`] decodes a whole body without
//! copying. Both stop at [`Limits::max_payload`] bytes before buffering or
//! allocating more, and at [`Limits::max_packets`] packets.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::packet::{base64_len, put_base64};
use crate::{Error, Packet, PacketType, ProtocolVersion, Utf8Bytes};

/// The record separator between packets of a v4 payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// Upper bound on the length digits of one v3 packet; more is an
/// [`Error::InvalidLength`] whatever the limit (leading zeros are allowed).
const MAX_LENGTH_DIGITS: usize = 20;

/// Limits applied while decoding a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload (HTTP body) in bytes; also the largest packet.
    /// Default 1,000,000, the reference server's `maxHttpBufferSize`, which
    /// it announces as `maxPayload` in the open packet.
    pub max_payload: usize,
    /// Most packets in one payload. Default 10,000.
    pub max_packets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload: 1_000_000,
            max_packets: 10_000,
        }
    }
}

/// How packets are put together into one polling body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// Protocol v4: packets joined by `0x1e`, binary as `b` + base64.
    V4,
    /// Protocol v3 string payload: `<length>:<packet>` with the length in
    /// UTF-16 code units and binary as `b4` + base64. Used for `b64=1`
    /// clients, JSONP, and any v3 body without binary.
    V3String,
    /// Protocol v3 binary payload for XHR2 clients: each packet behind a
    /// `0x00` (string) or `0x01` (binary) byte, its byte length as digit
    /// bytes 0-9, and `0xff`.
    V3Binary,
}

impl PayloadFormat {
    /// The protocol version the format belongs to.
    pub fn version(self) -> ProtocolVersion {
        match self {
            PayloadFormat::V4 => ProtocolVersion::V4,
            PayloadFormat::V3String | PayloadFormat::V3Binary => ProtocolVersion::V3,
        }
    }

    /// The format of a POST body: v3 clients send binary payloads with
    /// `Content-Type: application/octet-stream`; v4 never does.
    pub fn for_request(version: ProtocolVersion, octet_stream: bool) -> Result<Self, Error> {
        match (version, octet_stream) {
            (ProtocolVersion::V4, false) => Ok(PayloadFormat::V4),
            (ProtocolVersion::V4, true) => Err(Error::BinaryBodyInV4),
            (ProtocolVersion::V3, false) => Ok(PayloadFormat::V3String),
            (ProtocolVersion::V3, true) => Ok(PayloadFormat::V3Binary),
        }
    }

    /// The format of a response body: the reference server sends a v3
    /// binary payload only when the client supports binary (no `b64=1`, no
    /// JSONP) and some packet is binary.
    pub fn for_response(
        version: ProtocolVersion,
        supports_binary: bool,
        packets: &[Packet],
    ) -> Self {
        match version {
            ProtocolVersion::V4 => PayloadFormat::V4,
            ProtocolVersion::V3 if supports_binary && packets.iter().any(Packet::is_binary) => {
                PayloadFormat::V3Binary
            }
            ProtocolVersion::V3 => PayloadFormat::V3String,
        }
    }

    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            PayloadFormat::V3Binary => "application/octet-stream",
            _ => "text/plain; charset=UTF-8",
        }
    }

    /// Appends `packets` encoded in this format to `out`.
    ///
    /// An empty list encodes as the reference does: nothing in v4 and in
    /// v3 binary payloads, `0:` in v3 string payloads.
    pub fn encode<'a, I>(self, packets: I, out: &mut BytesMut)
    where
        I: IntoIterator<Item = &'a Packet>,
    {
        let start = out.len();
        let mut first = true;
        for packet in packets {
            match self {
                PayloadFormat::V4 => {
                    if !first {
                        out.put_u8(RECORD_SEPARATOR);
                    }
                    out.reserve(packet.encoded_text_len());
                    packet.encode_text_into(out);
                }
                PayloadFormat::V3String => encode_v3_string(packet, out),
                PayloadFormat::V3Binary => encode_v3_binary(packet, out),
            }
            first = false;
        }
        if self == PayloadFormat::V3String && out.len() == start {
            out.extend_from_slice(b"0:");
        }
    }

    /// Encodes `packets` into a new buffer.
    pub fn encode_to_bytes<'a, I>(self, packets: I) -> Bytes
    where
        I: IntoIterator<Item = &'a Packet>,
    {
        let mut out = BytesMut::new();
        self.encode(packets, &mut out);
        out.freeze()
    }
}

/// Appends `n` in decimal: ASCII digits for text lengths, or (`ascii`
/// false) the raw digit values 0 to 9 that v3 binary payloads prefix.
fn put_decimal(out: &mut BytesMut, n: usize, ascii: bool) {
    let start = out.len();
    duplex_core::put_decimal(out, n as u64);
    if !ascii {
        for d in out.get_mut(start..).unwrap_or_default() {
            *d -= b'0';
        }
    }
}

fn encode_v3_string(packet: &Packet, out: &mut BytesMut) {
    match packet {
        Packet::Binary(data) => {
            let len = 2 + base64_len(data.len());
            put_decimal(out, len, true);
            out.put_u8(b':');
            out.reserve(len);
            out.put_u8(b'b');
            out.put_u8(PacketType::Message.digit());
            put_base64(out, data);
        }
        _ => {
            let text = packet.text();
            put_decimal(out, 1 + crate::utf8::utf16_len(text), true);
            out.put_u8(b':');
            out.reserve(1 + text.len());
            out.put_u8(packet.packet_type().digit());
            out.extend_from_slice(text);
        }
    }
}

fn encode_v3_binary(packet: &Packet, out: &mut BytesMut) {
    match packet {
        Packet::Binary(data) => {
            out.put_u8(1);
            put_decimal(out, 1 + data.len(), false);
            out.put_u8(0xff);
            out.reserve(1 + data.len());
            out.put_u8(PacketType::Message.id());
            out.extend_from_slice(data);
        }
        _ => {
            let text = packet.text();
            out.put_u8(0);
            put_decimal(out, 1 + text.len(), false);
            out.put_u8(0xff);
            out.reserve(1 + text.len());
            out.put_u8(packet.packet_type().digit());
            out.extend_from_slice(text);
        }
    }
}

/// How the bytes of one framed packet are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// `<digit><text>`, or `b...` base64 where the format allows it.
    Text,
    /// A v3 binary payload's binary packet: type byte then data.
    V3Binary,
}

#[derive(Debug)]
enum Step {
    NeedMore,
    /// Drop this many bytes (a v3 zero-length packet).
    Skip(usize),
    Packet {
        consumed: usize,
        start: usize,
        end: usize,
        body: Body,
    },
    Done,
}

/// Resumable position inside the packet being framed, so that feeding a
/// body one byte at a time stays linear.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// v4: bytes already searched for a separator.
    /// v3 string: UTF-8 bytes of the packet body already counted.
    pos: usize,
    /// v3 string: UTF-16 code units counted in `pos` bytes.
    units: usize,
}

/// The framing rules of each format, independent of where the bytes live.
#[derive(Debug)]
struct Framer {
    format: PayloadFormat,
    limits: Limits,
    packets: usize,
    /// v4: a packet must follow (at the start, or after a separator).
    /// v3 string: nothing was read yet (an empty body is an error).
    expect_packet: bool,
    scan: Scan,
}

impl Framer {
    fn new(format: PayloadFormat, limits: Limits) -> Self {
        Self {
            format,
            limits,
            packets: 0,
            expect_packet: true,
            scan: Scan::default(),
        }
    }

    fn step(&mut self, buf: &[u8], eof: bool) -> Result<Step, Error> {
        let step = match self.format {
            PayloadFormat::V4 => self.step_v4(buf, eof),
            PayloadFormat::V3String => self.step_v3_string(buf, eof),
            PayloadFormat::V3Binary => self.step_v3_binary(buf, eof),
        }?;
        if matches!(step, Step::Packet { .. } | Step::Skip(_)) {
            self.scan = Scan::default();
        }
        if let Step::Packet { end, start, .. } = step {
            if end - start > self.limits.max_payload {
                return Err(Error::PayloadTooLarge {
                    limit: self.limits.max_payload,
                });
            }
            self.packets += 1;
            if self.packets > self.limits.max_packets {
                return Err(Error::TooManyPackets {
                    limit: self.limits.max_packets,
                });
            }
        }
        Ok(step)
    }

    fn step_v4(&mut self, buf: &[u8], eof: bool) -> Result<Step, Error> {
        if buf.is_empty() {
            return match (eof, self.expect_packet) {
                (false, _) => Ok(Step::NeedMore),
                (true, false) => Ok(Step::Done),
                // An empty body, or a body ending in a separator.
                (true, true) if self.packets == 0 => Err(Error::EmptyPayload),
                (true, true) => Err(Error::EmptyPacket),
            };
        }
        let from = self.scan.pos.min(buf.len());
        let rest = buf.get(from..).unwrap_or_default();
        match memchr::memchr(RECORD_SEPARATOR, rest) {
            Some(i) => {
                let end = from + i;
                self.expect_packet = true;
                Ok(Step::Packet {
                    consumed: end + 1,
                    start: 0,
                    end,
                    body: Body::Text,
                })
            }
            None if eof => {
                self.expect_packet = false;
                Ok(Step::Packet {
                    consumed: buf.len(),
                    start: 0,
                    end: buf.len(),
                    body: Body::Text,
                })
            }
            None => {
                self.scan.pos = buf.len();
                Ok(Step::NeedMore)
            }
        }
    }

    /// Reads `<digits><terminator>`; `Ok(None)` if more bytes are needed.
    fn length_prefix(
        &self,
        buf: &[u8],
        eof: bool,
        terminator: u8,
        ascii: bool,
    ) -> Result<Option<(usize, usize)>, Error> {
        let mut value: usize = 0;
        for (i, &b) in buf.iter().enumerate() {
            if b == terminator {
                if i == 0 {
                    return Err(Error::InvalidLength);
                }
                return Ok(Some((value, i + 1)));
            }
            let digit = if ascii { b.wrapping_sub(b'0') } else { b };
            if digit > 9 || i >= MAX_LENGTH_DIGITS {
                return Err(Error::InvalidLength);
            }
            value = value.saturating_mul(10).saturating_add(usize::from(digit));
            if value > self.limits.max_payload {
                return Err(Error::PayloadTooLarge {
                    limit: self.limits.max_payload,
                });
            }
        }
        if eof { Err(Error::Truncated) } else { Ok(None) }
    }

    fn step_v3_string(&mut self, buf: &[u8], eof: bool) -> Result<Step, Error> {
        if buf.is_empty() {
            return match (eof, self.expect_packet) {
                (false, _) => Ok(Step::NeedMore),
                (true, true) => Err(Error::EmptyPayload),
                (true, false) => Ok(Step::Done),
            };
        }
        self.expect_packet = false;
        let Some((want, header)) = self.length_prefix(buf, eof, b':', true)? else {
            return Ok(Step::NeedMore);
        };
        if want == 0 {
            // The reference skips zero-length packets (`0:` is the empty payload).
            return Ok(Step::Skip(header));
        }
        let body = buf.get(header..).unwrap_or_default();
        if self.scan.pos == 0
            && body.len() >= want
            && body.get(..want).is_some_and(<[u8]>::is_ascii)
        {
            self.scan = Scan {
                pos: want,
                units: want,
            };
        }
        let Scan { mut pos, mut units } = self.scan;
        while units < want {
            let Some(&lead) = body.get(pos) else { break };
            let (width, n) = match lead {
                0x00..=0x7f => (1, 1),
                0xc0..=0xdf => (2, 1),
                0xe0..=0xef => (3, 1),
                0xf0..=0xf7 => (4, 2),
                _ => return Err(Error::InvalidUtf8),
            };
            if units + n > want {
                return Err(Error::LengthSplitsCharacter);
            }
            if pos + width > body.len() {
                break;
            }
            pos += width;
            units += n;
        }
        self.scan = Scan { pos, units };
        if units < want {
            return if eof {
                Err(Error::Truncated)
            } else {
                Ok(Step::NeedMore)
            };
        }
        Ok(Step::Packet {
            consumed: header + pos,
            start: header,
            end: header + pos,
            body: Body::Text,
        })
    }

    fn step_v3_binary(&mut self, buf: &[u8], eof: bool) -> Result<Step, Error> {
        let Some((&kind, rest)) = buf.split_first() else {
            return Ok(if eof { Step::Done } else { Step::NeedMore });
        };
        let body = match kind {
            0 => Body::Text,
            1 => Body::V3Binary,
            other => return Err(Error::InvalidPayloadHeader(other)),
        };
        let Some((len, digits)) = self.length_prefix(rest, eof, 0xff, false)? else {
            return Ok(Step::NeedMore);
        };
        if len == 0 {
            return Err(Error::EmptyPacket);
        }
        let start = 1 + digits;
        if buf.len() - start < len {
            return if eof {
                Err(Error::Truncated)
            } else {
                Ok(Step::NeedMore)
            };
        }
        Ok(Step::Packet {
            consumed: start + len,
            start,
            end: start + len,
            body,
        })
    }

    fn packet(&self, bytes: Bytes, body: Body) -> Result<Packet, Error> {
        let version = self.format.version();
        match body {
            Body::V3Binary => Packet::decode_binary(bytes, version),
            Body::Text
                if self.format != PayloadFormat::V3Binary && bytes.first() == Some(&b'b') =>
            {
                Packet::decode_base64(bytes.get(1..).unwrap_or_default(), version)
            }
            Body::Text => Packet::decode_text(Utf8Bytes::from_utf8(bytes)?),
        }
    }
}

/// Incremental payload decoder: feed the body in pieces with
/// [`receive`](Self::receive), mark its end with [`finish`](Self::finish),
/// and take packets with [`poll_packet`](Self::poll_packet) at any point.
///
/// Bytes are copied once into an internal buffer; each packet's data is a
/// slice of it. After an error the decoder yields nothing more: the
/// session should be closed.
#[derive(Debug)]
pub struct PayloadDecoder {
    framer: Framer,
    buf: BytesMut,
    received: usize,
    finished: bool,
    failed: bool,
}

impl PayloadDecoder {
    /// A decoder for one body in `format`.
    pub fn new(format: PayloadFormat, limits: Limits) -> Self {
        Self {
            framer: Framer::new(format, limits),
            buf: BytesMut::new(),
            received: 0,
            finished: false,
            failed: false,
        }
    }

    /// Adds the next bytes of the body. Fails, without buffering them, once
    /// the body would exceed [`Limits::max_payload`].
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.finished {
            return Err(Error::ReceiveAfterFinish);
        }
        let limit = self.framer.limits.max_payload;
        self.received = self.received.saturating_add(data.len());
        if self.received > limit {
            self.failed = true;
            self.buf = BytesMut::new();
            return Err(Error::PayloadTooLarge { limit });
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Marks the end of the body: the last packet can now be completed, and
    /// a body that stops inside a packet is an error.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed (or
    /// the body is done, or an error was already returned).
    pub fn poll_packet(&mut self) -> Result<Option<Packet>, Error> {
        if self.failed {
            return Ok(None);
        }
        let result = self.next();
        if result.is_err() {
            self.failed = true;
            self.buf = BytesMut::new();
        }
        result
    }

    fn next(&mut self) -> Result<Option<Packet>, Error> {
        loop {
            match self.framer.step(&self.buf, self.finished)? {
                Step::NeedMore | Step::Done => return Ok(None),
                Step::Skip(n) => self.buf.advance(n),
                Step::Packet {
                    consumed,
                    start,
                    end,
                    body,
                } => {
                    let chunk = self.buf.split_to(consumed).freeze();
                    return self.framer.packet(chunk.slice(start..end), body).map(Some);
                }
            }
        }
    }

    /// Bytes held in the internal buffer (received but not yet returned as
    /// packets); never more than [`Limits::max_payload`].
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the end of the body was reached and every packet taken.
    pub fn is_done(&self) -> bool {
        self.finished && self.buf.is_empty()
    }
}

/// Iterator over the packets of a whole body; see [`decode_payload`].
#[derive(Debug)]
pub struct PayloadPackets {
    framer: Framer,
    body: Bytes,
    failed: bool,
    oversized: bool,
}

impl Iterator for PayloadPackets {
    type Item = Result<Packet, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.oversized {
            self.failed = true;
            return Some(Err(Error::PayloadTooLarge {
                limit: self.framer.limits.max_payload,
            }));
        }
        let result = loop {
            match self.framer.step(&self.body, true) {
                Err(e) => break Some(Err(e)),
                Ok(Step::NeedMore | Step::Done) => break None,
                Ok(Step::Skip(n)) => self.body.advance(n),
                Ok(Step::Packet {
                    consumed,
                    start,
                    end,
                    body,
                }) => {
                    let bytes = self.body.slice(start..end);
                    self.body.advance(consumed);
                    break Some(self.framer.packet(bytes, body));
                }
            }
        };
        if matches!(result, Some(Err(_))) {
            self.failed = true;
        }
        result
    }
}

/// Decodes a whole body, slicing packets out of it without copying.
///
/// The iterator yields an error at the first malformed packet and then
/// stops; a body above [`Limits::max_payload`] fails at once.
pub fn decode_payload(body: Bytes, format: PayloadFormat, limits: Limits) -> PayloadPackets {
    let mut packets = PayloadPackets {
        framer: Framer::new(format, limits),
        failed: false,
        oversized: body.len() > limits.max_payload,
        body,
    };
    if packets.oversized {
        packets.body = Bytes::new();
    }
    packets
}

/// Decodes a whole body into a vector; see [`decode_payload`].
pub fn decode_payload_vec(
    body: Bytes,
    format: PayloadFormat,
    limits: Limits,
) -> Result<Vec<Packet>, Error> {
    decode_payload(body, format, limits).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &[u8], format: PayloadFormat) -> Result<Vec<Packet>, Error> {
        decode_payload_vec(Bytes::copy_from_slice(body), format, Limits::default())
    }

    /// Decodes `body` in one piece, whole and byte by byte, checks that all
    /// agree, then re-encodes and checks the bytes.
    fn both_ways(body: &[u8], format: PayloadFormat, packets: &[Packet]) {
        assert_eq!(decode(body, format).unwrap(), packets, "decoding {body:?}");
        assert_eq!(
            streamed(body, format, 1).unwrap(),
            packets,
            "streaming {body:?}"
        );
        assert_eq!(
            &format.encode_to_bytes(packets)[..],
            body,
            "encoding {packets:?}"
        );
    }

    fn streamed(body: &[u8], format: PayloadFormat, chunk: usize) -> Result<Vec<Packet>, Error> {
        let mut decoder = PayloadDecoder::new(format, Limits::default());
        let mut out = Vec::new();
        for piece in body.chunks(chunk) {
            decoder.receive(piece)?;
            while let Some(p) = decoder.poll_packet()? {
                out.push(p);
            }
        }
        decoder.finish();
        while let Some(p) = decoder.poll_packet()? {
            out.push(p);
        }
        assert!(decoder.is_done());
        Ok(out)
    }

    fn bin(data: &'static [u8]) -> Packet {
        Packet::Binary(Bytes::from_static(data))
    }

    // v4 spec, "Packet encoding / HTTP long-polling".
    #[test]
    fn v4_spec_examples() {
        both_ways(
            b"4hello\x1e2\x1e4world",
            PayloadFormat::V4,
            &[
                Packet::message("hello"),
                Packet::ping(),
                Packet::message("world"),
            ],
        );
        both_ways(
            b"4hello\x1ebAQIDBA==",
            PayloadFormat::V4,
            &[Packet::message("hello"), bin(&[1, 2, 3, 4])],
        );
        // Socket.IO spec sample session, request 5 (a POST of two events).
        both_ways(
            b"42[\"hello\"]\x1e42[\"world\"]",
            PayloadFormat::V4,
            &[
                Packet::message("2[\"hello\"]"),
                Packet::message("2[\"world\"]"),
            ],
        );
        // The conformance suite's echo body.
        both_ways(
            b"4test1\x1e4test2\x1e4test3",
            PayloadFormat::V4,
            &["test1", "test2", "test3"].map(Packet::message),
        );
        // The Socket.IO sample open packet.
        both_ways(
            br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#,
            PayloadFormat::V4,
            &[Packet::Open(
                r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#.into(),
            )],
        );
    }

    // v3 spec, "Sample session" and "Payload".
    #[test]
    fn v3_string_spec_examples() {
        let open = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}"#;
        let mut body = b"96:".to_vec();
        body.extend_from_slice(open.as_bytes());
        both_ways(
            &body,
            PayloadFormat::V3String,
            &[Packet::decode_text(open.into()).unwrap()],
        );
        both_ways(
            b"4:4hey",
            PayloadFormat::V3String,
            &[Packet::message("hey")],
        );
        both_ways(
            b"6:4hello6:4world",
            PayloadFormat::V3String,
            &[Packet::message("hello"), Packet::message("world")],
        );
        // "we are not counting bytes, but characters": `€` is one.
        both_ways(
            "6:4hello2:4€".as_bytes(),
            PayloadFormat::V3String,
            &[Packet::message("hello"), Packet::message("€")],
        );
        // b64 variant: `2:4€10:b4AQIDBA==`.
        both_ways(
            "2:4€10:b4AQIDBA==".as_bytes(),
            PayloadFormat::V3String,
            &[Packet::message("€"), bin(&[1, 2, 3, 4])],
        );
        // Socket.IO v4 spec sample session (EIO=3).
        both_ways(
            b"16:42[\"hey\",\"Jude\"]",
            PayloadFormat::V3String,
            &[Packet::message("2[\"hey\",\"Jude\"]")],
        );
        both_ways(
            b"11:42[\"hello\"]11:42[\"world\"]",
            PayloadFormat::V3String,
            &[
                Packet::message("2[\"hello\"]"),
                Packet::message("2[\"world\"]"),
            ],
        );
        let mut body = b"96:".to_vec();
        body.extend_from_slice(open.as_bytes());
        body.extend_from_slice(b"2:40");
        assert_eq!(decode(&body, PayloadFormat::V3String).unwrap().len(), 2);
    }

    #[test]
    fn v3_string_lengths_count_utf16_code_units() {
        // An astral-plane character is two UTF-16 code units (four UTF-8 bytes).
        both_ways(
            "3:4😀".as_bytes(),
            PayloadFormat::V3String,
            &[Packet::message("😀")],
        );
        both_ways(
            "6:4a😀é€2:4x".as_bytes(),
            PayloadFormat::V3String,
            &[Packet::message("a😀é€"), Packet::message("x")],
        );
        assert!(matches!(
            decode("2:4😀".as_bytes(), PayloadFormat::V3String),
            Err(Error::LengthSplitsCharacter)
        ));
    }

    // v3 spec, "Payload", the XHR2 example.
    #[test]
    fn v3_binary_spec_example() {
        both_ways(
            &[
                0x00, 0x04, 0xff, 0x34, 0xe2, 0x82, 0xac, 0x01, 0x05, 0xff, 0x04, 0x01, 0x02, 0x03,
                0x04,
            ],
            PayloadFormat::V3Binary,
            &[Packet::message("€"), bin(&[1, 2, 3, 4])],
        );
        // Multi-digit lengths are one byte per decimal digit.
        let data = [7u8; 12];
        let mut body = vec![0x01, 0x01, 0x03, 0xff, 0x04];
        body.extend_from_slice(&data);
        both_ways(
            &body,
            PayloadFormat::V3Binary,
            &[Packet::binary(Bytes::copy_from_slice(&data))],
        );
    }

    #[test]
    fn empty_payloads_as_the_reference() {
        both_ways(b"0:", PayloadFormat::V3String, &[]);
        both_ways(b"", PayloadFormat::V3Binary, &[]);
        assert_eq!(&PayloadFormat::V4.encode_to_bytes(&[])[..], b"");
        assert!(matches!(
            decode(b"", PayloadFormat::V4),
            Err(Error::EmptyPayload)
        ));
        assert!(matches!(
            decode(b"", PayloadFormat::V3String),
            Err(Error::EmptyPayload)
        ));
    }

    #[test]
    fn chooses_formats_like_the_reference() {
        use ProtocolVersion::{V3, V4};
        let text = [Packet::message("a")];
        let mixed = [Packet::message("a"), bin(&[1])];
        assert_eq!(
            PayloadFormat::for_response(V4, true, &mixed),
            PayloadFormat::V4
        );
        assert_eq!(
            PayloadFormat::for_response(V3, true, &text),
            PayloadFormat::V3String
        );
        assert_eq!(
            PayloadFormat::for_response(V3, true, &mixed),
            PayloadFormat::V3Binary
        );
        assert_eq!(
            PayloadFormat::for_response(V3, false, &mixed),
            PayloadFormat::V3String
        );
        assert_eq!(
            PayloadFormat::for_request(V3, true).unwrap(),
            PayloadFormat::V3Binary
        );
        assert_eq!(
            PayloadFormat::for_request(V4, false).unwrap(),
            PayloadFormat::V4
        );
        assert!(matches!(
            PayloadFormat::for_request(V4, true),
            Err(Error::BinaryBodyInV4)
        ));
        assert_eq!(
            PayloadFormat::V3Binary.content_type(),
            "application/octet-stream"
        );
    }

    #[test]
    fn zero_copy_slices_of_the_body() {
        let body = Bytes::from_static(b"4hello\x1e4world");
        let packets =
            decode_payload_vec(body.clone(), PayloadFormat::V4, Limits::default()).unwrap();
        let Packet::Message(world) = &packets[1] else {
            panic!()
        };
        assert_eq!(world.as_bytes().as_ptr(), body[8..].as_ptr());
    }

    #[test]
    fn bad_payloads_are_typed_errors() {
        use PayloadFormat::{V3Binary, V3String, V4};
        type Case<'a> = (&'a [u8], PayloadFormat, fn(&Error) -> bool);
        let cases: &[Case<'_>] = &[
            (b"abc", V4, |e| matches!(e, Error::UnknownPacketType(b'a'))),
            (b"4a\x1e", V4, |e| matches!(e, Error::EmptyPacket)),
            (b"4a\x1e\x1e4b", V4, |e| matches!(e, Error::EmptyPacket)),
            (b"bAQ!D", V4, |e| matches!(e, Error::InvalidBase64)),
            (b"4\xc3", V4, |e| matches!(e, Error::InvalidUtf8)),
            // Truncated lengths and lengths beyond the body.
            (b"6:4hel", V3String, |e| matches!(e, Error::Truncated)),
            (b"12", V3String, |e| matches!(e, Error::Truncated)),
            (b"x:4", V3String, |e| matches!(e, Error::InvalidLength)),
            (b":4", V3String, |e| matches!(e, Error::InvalidLength)),
            (b"1:9", V3String, |e| {
                matches!(e, Error::UnknownPacketType(b'9'))
            }),
            (b"2000000:4", V3String, |e| {
                matches!(e, Error::PayloadTooLarge { .. })
            }),
            (b"000000000000000000001:4", V3String, |e| {
                matches!(e, Error::InvalidLength)
            }),
            (b"3:b4!", V3String, |e| matches!(e, Error::InvalidBase64)),
            (&[0x02, 0x01, 0xff, 0x34], V3Binary, |e| {
                matches!(e, Error::InvalidPayloadHeader(2))
            }),
            (&[0x00, 0x0a, 0xff, 0x34], V3Binary, |e| {
                matches!(e, Error::InvalidLength)
            }),
            (&[0x00, 0xff, 0x34], V3Binary, |e| {
                matches!(e, Error::InvalidLength)
            }),
            (&[0x00, 0x05, 0xff, 0x34], V3Binary, |e| {
                matches!(e, Error::Truncated)
            }),
            (&[0x00, 0x05], V3Binary, |e| matches!(e, Error::Truncated)),
            (&[0x00, 0x00, 0xff], V3Binary, |e| {
                matches!(e, Error::EmptyPacket)
            }),
            (&[0x01, 0x02, 0xff, 0x02, 0x00], V3Binary, |e| {
                matches!(e, Error::BinaryNotMessage(2))
            }),
            (&[0x00, 0x02, 0xff, 0x34, 0xff], V3Binary, |e| {
                matches!(e, Error::InvalidUtf8)
            }),
            (
                &[0x01, 0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0xff],
                V3Binary,
                |e| matches!(e, Error::PayloadTooLarge { .. }),
            ),
        ];
        for (body, format, check) in cases {
            let err = decode(body, *format).unwrap_err();
            assert!(check(&err), "{body:?} in {format:?} gave {err:?}");
            assert!(err.is_peer_fault());
            let err = streamed(body, *format, 1).unwrap_err();
            assert!(check(&err), "{body:?} in {format:?} streamed gave {err:?}");
        }
    }

    #[test]
    fn limits_stop_decoding_before_buffering() {
        let limits = Limits {
            max_payload: 10,
            max_packets: 2,
        };
        let mut decoder = PayloadDecoder::new(PayloadFormat::V4, limits);
        decoder.receive(b"4abcdefgh").unwrap();
        assert!(matches!(
            decoder.receive(b"ij"),
            Err(Error::PayloadTooLarge { limit: 10 })
        ));
        assert_eq!(
            decoder.poll_packet().unwrap(),
            None,
            "nothing after an error"
        );
        assert!(matches!(
            decode_payload_vec(
                Bytes::from_static(b"4abcdefghij"),
                PayloadFormat::V4,
                limits
            ),
            Err(Error::PayloadTooLarge { limit: 10 })
        ));
        assert!(matches!(
            decode_payload_vec(
                Bytes::from_static(b"6\x1e6\x1e6"),
                PayloadFormat::V4,
                limits
            ),
            Err(Error::TooManyPackets { limit: 2 })
        ));
        // A v3 length above the limit fails before its bytes arrive.
        let mut decoder = PayloadDecoder::new(PayloadFormat::V3String, limits);
        decoder.receive(b"11").unwrap();
        assert!(matches!(
            decoder.poll_packet(),
            Err(Error::PayloadTooLarge { limit: 10 })
        ));
        let mut decoder = PayloadDecoder::new(PayloadFormat::V4, limits);
        decoder.finish();
        assert!(matches!(
            decoder.receive(b"4"),
            Err(Error::ReceiveAfterFinish)
        ));
        assert!(Error::ReceiveAfterFinish.is_local());
    }

    #[test]
    fn packets_come_out_as_soon_as_they_are_complete() {
        let mut decoder = PayloadDecoder::new(PayloadFormat::V3String, Limits::default());
        decoder.receive(b"6:4hel").unwrap();
        assert_eq!(decoder.poll_packet().unwrap(), None);
        decoder.receive(b"lo3:4").unwrap();
        assert_eq!(
            decoder.poll_packet().unwrap(),
            Some(Packet::message("hello"))
        );
        assert_eq!(decoder.poll_packet().unwrap(), None);
        decoder.finish();
        assert!(matches!(decoder.poll_packet(), Err(Error::Truncated)));
        // In v4 the last packet ends with the body.
        let mut decoder = PayloadDecoder::new(PayloadFormat::V4, Limits::default());
        decoder.receive(b"4a\x1e4b").unwrap();
        assert_eq!(decoder.poll_packet().unwrap(), Some(Packet::message("a")));
        assert_eq!(decoder.poll_packet().unwrap(), None);
        decoder.finish();
        assert_eq!(decoder.poll_packet().unwrap(), Some(Packet::message("b")));
        assert_eq!(decoder.poll_packet().unwrap(), None);
    }
}
