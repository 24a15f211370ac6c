//! Every decoder in the comparison, driven the same way: copy received
//! bytes into the read buffer, parse, unmask, validate UTF-8 for text, and
//! hand each whole message's payload to a sink.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use duplex_ws::{
    Config, Connection, Event, EventRef, FrameDecoder, Message, OpCode, Role, Utf8Validator,
};
use tokio_util::codec::Decoder;

use crate::wire::{READ_CHUNK, WireReader};
use crate::workload::{Digest, Workload};

/// A server-side decoder under test.
pub trait Decode {
    /// The name the reports use.
    const NAME: &'static str;

    /// A server reading from `reader`.
    fn new(reader: WireReader) -> Self;

    /// Reads and decodes exactly `messages` messages, passing each payload
    /// (unmasked, and UTF-8 checked for text) to `sink`. Panics on a decode
    /// error: the workloads are valid.
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, sink: F);
}

/// A `D` reading the workload's wire in [`READ_CHUNK`] reads, after one
/// warm-up batch that grew its buffers and whose payloads were checked
/// against the workload's digest (panics if they differ): what every
/// measurement starts from.
pub fn warmed_up<D: Decode>(workload: &Workload) -> D {
    let mut d = D::new(WireReader::new(workload.wire.clone(), READ_CHUNK));
    let mut digest = Digest::default();
    d.decode(workload.frames, |p| digest.add(p));
    assert_eq!(
        digest,
        workload.expected,
        "{} decoded wrong payloads",
        D::NAME
    );
    d
}

/// duplex at the frame level: [`FrameDecoder::extend_unmasking`] and
/// [`FrameDecoder::decode`] over a `BytesMut`, plus [`Utf8Validator`] for text frames (what an application using the
/// frame layer must add itself).
#[derive(Debug)]
pub struct DuplexFrameDecoder {
    reader: WireReader,
    decoder: FrameDecoder,
    buf: BytesMut,
    utf8: Utf8Validator,
}

impl Decode for DuplexFrameDecoder {
    const NAME: &'static str = "duplex-frame";

    fn new(reader: WireReader) -> Self {
        Self {
            reader,
            decoder: FrameDecoder::new(Role::Server, Config::default().max_frame_size),
            buf: BytesMut::new(),
            utf8: Utf8Validator::new(),
        }
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        let mut done = 0;
        while done < messages {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    if frame.header.opcode == OpCode::Text {
                        let checked = self.utf8.feed(&frame.payload).and(self.utf8.finish());
                        assert!(checked.is_ok(), "invalid UTF-8");
                    }
                    sink(&frame.payload);
                    done += 1;
                }
                // The frame layer's way in: a frame still arriving is
                // unmasked as it is copied.
                Ok(None) => self
                    .decoder
                    .extend_unmasking(&mut self.buf, self.reader.next_chunk(READ_CHUNK)),
                Err(e) => panic!("duplex frame decoder: {e}"),
            }
        }
    }
}

/// What the three connection-level contenders share: a server
/// [`Connection`] fed from the wire one read at a time.
#[derive(Debug)]
struct ServerConnection {
    reader: WireReader,
    conn: Connection,
}

impl ServerConnection {
    fn new(reader: WireReader) -> Self {
        Self {
            reader,
            conn: Connection::new(Role::Server, Config::default()),
        }
    }

    /// Hands the connection the next read.
    #[inline]
    fn read(&mut self) {
        self.conn.receive(self.reader.next_chunk(READ_CHUNK));
    }

    /// Takes `messages` events one at a time with `take` (false: none
    /// ready), reading more of the wire whenever the connection runs dry.
    #[inline]
    fn take_each(&mut self, messages: usize, mut take: impl FnMut(&mut Connection) -> bool) {
        let mut done = 0;
        while done < messages {
            if take(&mut self.conn) {
                done += 1;
            } else {
                self.read();
            }
        }
    }
}

/// Passes a message event's payload to `sink`; panics on any other event
/// (the workloads hold messages only).
#[inline]
fn sink_event<F: FnMut(&[u8])>(event: Event, sink: &mut F) {
    match event {
        Event::Message(Message::Text(text)) => sink(text.as_bytes()),
        Event::Message(Message::Binary(data)) => sink(&data),
        other => panic!("duplex connection: unexpected {other:?}"),
    }
}

/// [`sink_event`] for a borrowed event.
#[inline]
fn sink_event_ref<F: FnMut(&[u8])>(event: EventRef<'_>, sink: &mut F) {
    match event {
        EventRef::Text(text) => sink(text.as_bytes()),
        EventRef::Binary(data) => sink(data),
        EventRef::Other(other) => sink_event(other, sink),
    }
}

/// duplex at the connection level: [`Connection::receive`] then
/// [`Connection::poll_event`] until it returns `None`.
#[derive(Debug)]
pub struct DuplexConnection(ServerConnection);

impl Decode for DuplexConnection {
    const NAME: &'static str = "duplex-connection";

    fn new(reader: WireReader) -> Self {
        Self(ServerConnection::new(reader))
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        self.0.take_each(messages, |conn| {
            conn.poll_event()
                .map(|event| sink_event(event, &mut sink))
                .is_some()
        });
    }
}

/// duplex at the connection level with borrowed events:
/// [`Connection::poll_event_ref`], which hands out single-frame messages
/// as slices of the read buffer instead of cutting `Bytes` out of it.
#[derive(Debug)]
pub struct DuplexConnectionRef(ServerConnection);

impl Decode for DuplexConnectionRef {
    const NAME: &'static str = "duplex-connection-ref";

    fn new(reader: WireReader) -> Self {
        Self(ServerConnection::new(reader))
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        self.0.take_each(messages, |conn| {
            conn.poll_event_ref()
                .map(|event| sink_event_ref(event, &mut sink))
                .is_some()
        });
    }
}

/// duplex at the connection level, draining each read with
/// [`Connection::drain_events_ref`]: runs of small messages in one loop.
#[derive(Debug)]
pub struct DuplexConnectionDrain(ServerConnection);

impl Decode for DuplexConnectionDrain {
    const NAME: &'static str = "duplex-connection-drain";

    fn new(reader: WireReader) -> Self {
        Self(ServerConnection::new(reader))
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        let mut done = 0;
        // Each batch ends on a read boundary, so draining whole reads
        // takes exactly `messages` messages.
        while done < messages {
            self.0.read();
            self.0.conn.drain_events_ref(|event| {
                sink_event_ref(event, &mut sink);
                done += 1;
            });
        }
        assert_eq!(done, messages, "a batch ends on a read boundary");
    }
}

/// tungstenite 0.30 at the protocol level: `WebSocket::read` over an
/// in-memory `Read + Write` stream (it reads into its own buffer).
#[derive(Debug)]
pub struct Tungstenite {
    ws: tungstenite::WebSocket<WireReader>,
}

impl Decode for Tungstenite {
    const NAME: &'static str = "tungstenite";

    fn new(reader: WireReader) -> Self {
        Self {
            ws: tungstenite::WebSocket::from_raw_socket(
                reader,
                tungstenite::protocol::Role::Server,
                None,
            ),
        }
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        for _ in 0..messages {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(text)) => sink(text.as_bytes()),
                Ok(tungstenite::Message::Binary(data)) => sink(&data),
                other => panic!("tungstenite: unexpected {other:?}"),
            }
        }
    }
}

/// fastwebsockets 0.10: `WebSocket::read_frame` (unmasks in place and
/// validates text frames with simdutf8) over an in-memory `AsyncRead`,
/// polled without a runtime since the stream never blocks.
pub struct FastWebSockets {
    ws: fastwebsockets::WebSocket<WireReader>,
}

impl std::fmt::Debug for FastWebSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastWebSockets").finish_non_exhaustive()
    }
}

impl Decode for FastWebSockets {
    const NAME: &'static str = "fastwebsockets";

    fn new(reader: WireReader) -> Self {
        Self {
            ws: fastwebsockets::WebSocket::after_handshake(reader, fastwebsockets::Role::Server),
        }
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        let ws = &mut self.ws;
        block_on(async move {
            for _ in 0..messages {
                match ws.read_frame().await {
                    Ok(frame)
                        if frame.fin
                            && matches!(
                                frame.opcode,
                                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary
                            ) =>
                    {
                        sink(&frame.payload)
                    }
                    Ok(frame) => panic!("fastwebsockets: unexpected {:?}", frame.opcode),
                    Err(e) => panic!("fastwebsockets: {e}"),
                }
            }
        });
    }
}

/// Runs a future that never waits (its stream is in memory) to completion.
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an in-memory stream never blocks"),
    }
}

/// soketto 0.8's frame codec (`base::Codec`: header parsing and unmasking)
/// with the glue its connection layer would add: a `BytesMut` read buffer
/// and `std::str::from_utf8` for text.
#[derive(Debug)]
pub struct Soketto {
    reader: WireReader,
    codec: soketto::base::Codec,
    buf: BytesMut,
}

impl Decode for Soketto {
    const NAME: &'static str = "soketto";

    fn new(reader: WireReader) -> Self {
        let mut codec = soketto::base::Codec::new();
        codec.set_max_data_size(Config::default().max_frame_size);
        Self {
            reader,
            codec,
            buf: BytesMut::new(),
        }
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        let mut done = 0;
        while done < messages {
            match self.codec.decode_header(&self.buf) {
                Ok(soketto::Parsing::Done {
                    value: header,
                    offset,
                }) => {
                    let total = offset + header.payload_len();
                    if self.buf.len() >= total {
                        self.buf.advance(offset);
                        let mut payload = self.buf.split_to(header.payload_len());
                        soketto::base::Codec::apply_mask(&header, &mut payload);
                        if header.opcode() == soketto::base::OpCode::Text {
                            assert!(std::str::from_utf8(&payload).is_ok(), "invalid UTF-8");
                        }
                        sink(&payload);
                        done += 1;
                        continue;
                    }
                    self.buf.reserve(total - self.buf.len());
                }
                Ok(soketto::Parsing::NeedMore(_)) => {}
                Err(e) => panic!("soketto: {e}"),
            }
            self.buf
                .extend_from_slice(self.reader.next_chunk(READ_CHUNK));
        }
    }
}

/// websocket-codec 0.5's `MessageCodec` (a tokio-util `Decoder`: parses,
/// unmasks, assembles, validates text) over a `BytesMut` read buffer.
pub struct WebsocketCodec {
    reader: WireReader,
    codec: websocket_codec::MessageCodec,
    buf: BytesMut,
}

impl std::fmt::Debug for WebsocketCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebsocketCodec").finish_non_exhaustive()
    }
}

impl Decode for WebsocketCodec {
    const NAME: &'static str = "websocket-codec";

    fn new(reader: WireReader) -> Self {
        Self {
            reader,
            codec: websocket_codec::MessageCodec::server(),
            buf: BytesMut::new(),
        }
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        let mut done = 0;
        while done < messages {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(message)) => {
                    sink(message.data());
                    done += 1;
                }
                Ok(None) => self
                    .buf
                    .extend_from_slice(self.reader.next_chunk(READ_CHUNK)),
                Err(e) => panic!("websocket-codec: {e}"),
            }
        }
    }
}

/// The floor under every decoder: copy `wire` into `buf` the way the
/// decoders read it (in chunks of [`READ_CHUNK`]), nothing else.
#[inline]
pub fn baseline_copy(wire: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    for chunk in wire.chunks(READ_CHUNK) {
        buf.extend_from_slice(chunk);
    }
}

/// Copy then XOR every byte (with duplex's `apply_mask`): the memory
/// traffic any unmasking decoder pays, without parsing.
#[inline]
pub fn baseline_copy_xor(wire: &[u8], buf: &mut Vec<u8>) {
    baseline_copy(wire, buf);
    duplex_ws::apply_mask(buf, [0x12, 0x34, 0x56, 0x78], 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Digest, Kind, Workload};

    /// Two batches in a row (so the second starts with whatever the first
    /// left buffered) must both match the workload's digest.
    fn check<D: Decode>(workload: &Workload, max_read: usize) {
        let mut d = D::new(WireReader::new(workload.wire.clone(), max_read));
        for batch in 0..2 {
            let mut digest = Digest::default();
            d.decode(workload.frames, |p| digest.add(p));
            assert_eq!(
                digest,
                workload.expected,
                "{} on {:?}, batch {batch}, reads of {max_read}",
                D::NAME,
                workload.kind
            );
        }
    }

    fn check_all(workload: &Workload, max_read: usize) {
        check::<DuplexFrameDecoder>(workload, max_read);
        check::<DuplexConnection>(workload, max_read);
        check::<DuplexConnectionRef>(workload, max_read);
        check::<DuplexConnectionDrain>(workload, max_read);
        check::<Tungstenite>(workload, max_read);
        check::<FastWebSockets>(workload, max_read);
        check::<Soketto>(workload, max_read);
        check::<WebsocketCodec>(workload, max_read);
        check::<crate::Reference>(workload, max_read);
    }

    #[test]
    fn every_contender_yields_the_expected_payloads() {
        for kind in Kind::ALL {
            let frames = kind.batch_frames().min(8);
            check_all(&Workload::new(kind, frames), READ_CHUNK);
        }
    }

    #[test]
    fn every_contender_handles_frames_split_across_reads() {
        for max_read in [1, 7, 100] {
            check_all(&Workload::new(Kind::Text16, 20), max_read);
            check_all(&Workload::new(Kind::Text125, 5), max_read);
        }
        check_all(&Workload::new(Kind::Binary16K, 3), 1000);
    }

    #[test]
    fn a_corrupted_payload_changes_the_digest() {
        let workload = Workload::new(Kind::Text16, 4);
        let mut wire = workload.wire.to_vec();
        // Flip one payload bit of the last frame (its last byte).
        *wire.last_mut().unwrap() ^= 0x01;
        let mut d = DuplexConnection::new(WireReader::new(wire.into(), READ_CHUNK));
        let mut digest = Digest::default();
        d.decode(4, |p| digest.add(p));
        assert_eq!(digest.frames, 4);
        assert_ne!(digest, workload.expected);
    }

    #[test]
    fn baselines_copy_everything() {
        let workload = Workload::new(Kind::Binary16K, 5);
        let mut buf = Vec::new();
        baseline_copy(&workload.wire, &mut buf);
        assert_eq!(&buf[..], &workload.wire[..]);
        baseline_copy_xor(&workload.wire, &mut buf);
        duplex_ws::apply_mask(&mut buf, [0x12, 0x34, 0x56, 0x78], 0);
        assert_eq!(&buf[..], &workload.wire[..]);
    }
}
