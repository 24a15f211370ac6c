//! The connection state machine: every rule that spans frames, the close
//! handshake, and what goes out in answer. All states and transitions of a
//! WebSocket connection live in this module, and the same rules apply to
//! both roles except where RFC 6455 says otherwise (masking, who closes TCP).

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame, ClosePayloadError};
use crate::config::Config;
use crate::decoder::{FrameDecoder, Role};
use crate::deflate::{DeflateCodec, DeflateParams, InflateError};
use crate::error::{Error, ProtocolError};
use crate::frame::{Frame, FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
use crate::mask::apply_mask;
use crate::message::{Message, Utf8Bytes};
use crate::utf8::{self, Utf8Validator};

mod event_ref;
pub use event_ref::EventRef;

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// This side sent a close frame and waits for the peer's.
    Closing,
    /// The close handshake is over, or the connection failed. Nothing more
    /// is sent or received; see [`Connection::should_close_transport`].
    Closed,
}

/// What the peer sent, as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete message (when [`Config::assemble_messages`] is on).
    Message(Message),
    /// One data frame (when [`Config::assemble_messages`] is off). Text
    /// fragments have been UTF-8 checked so far; a code point may still be
    /// split across two fragments.
    Fragment {
        /// `Text` or `Binary` for a message's first frame, `Continuation`
        /// for the rest.
        opcode: OpCode,
        /// The unmasked payload.
        payload: Bytes,
        /// The last frame of the message.
        fin: bool,
    },
    /// A ping; answered already if [`Config::auto_pong`] is on.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer's close frame (`None`: it carried no status code, which
    /// RFC 6455 reports as 1005). The reply has been queued.
    Close(Option<CloseFrame>),
    /// The peer broke the protocol. A close frame with the error's code has
    /// been queued, and the transport should be closed once it is written.
    Failed(ProtocolError),
}

/// A message being assembled from fragments.
#[derive(Debug)]
struct Assembly {
    opcode: OpCode,
    /// The message was compressed (RSV1 on its first frame).
    compressed: bool,
    /// The payload so far (decompressed); unused (empty) when messages are
    /// not assembled.
    data: Vec<u8>,
    /// Payload bytes received so far, counted even when not kept.
    len: u64,
}

/// A sans-IO WebSocket connection after the opening handshake.
///
/// Feed it received bytes with [`Connection::receive`], take events with
/// [`Connection::poll_event`], give it commands (`send`, `ping`, `close`),
/// and write out what [`Connection::poll_transmit`] hands back.
pub struct Connection {
    role: Role,
    config: Config,
    state: State,
    decoder: FrameDecoder,
    read_buf: BytesMut,
    /// Bytes at the front of `read_buf` already handed out as borrowed
    /// events ([`Connection::poll_event_ref`]); dropped from the buffer at
    /// the next read or owned poll, once no borrow can point into them.
    read_pos: usize,
    /// Frames to write, copied: small ones, control frames and everything
    /// a client masks. It follows `queued` on the wire.
    write_buf: BytesMut,
    /// Frames to write before `write_buf`, with payloads kept uncopied.
    queued: crate::transmit::TransmitChunks,
    /// The message being received, if its first frame has arrived.
    incoming: Option<Assembly>,
    /// UTF-8 state of the incoming text message.
    utf8: Utf8Validator,
    /// Bytes of the pending frame's payload already fed to `utf8`.
    validated: usize,
    /// The outgoing message started with `send_frame` and not yet finished.
    outgoing: Option<OpCode>,
    sent_close: bool,
    received_close: bool,
    failed: bool,
    transport_eof: bool,
    close_deadline: Option<Instant>,
    timed_out: bool,
    /// permessage-deflate, once agreed in the handshake.
    deflate: Option<DeflateCodec>,
    /// Reused output buffer of the compressor.
    compressed: Vec<u8>,
}

impl Connection {
    /// A connection that has completed its handshake in `role`.
    pub fn new(role: Role, config: Config) -> Self {
        let decoder = FrameDecoder::new(role, config.max_frame_size);
        Self {
            role,
            config,
            state: State::Open,
            decoder,
            read_buf: BytesMut::new(),
            read_pos: 0,
            write_buf: BytesMut::new(),
            queued: crate::transmit::TransmitChunks::new(),
            incoming: None,
            utf8: Utf8Validator::new(),
            validated: 0,
            outgoing: None,
            sent_close: false,
            received_close: false,
            failed: false,
            transport_eof: false,
            close_deadline: None,
            timed_out: false,
            deflate: None,
            compressed: Vec::new(),
        }
    }

    /// Turns on permessage-deflate with the parameters the handshake agreed
    /// (see [`crate::DeflateConfig`]). Call before any data is exchanged.
    pub fn enable_permessage_deflate(&mut self, params: &DeflateParams) {
        self.deflate = Some(DeflateCodec::new(self.role, params));
        self.decoder.set_allow_rsv1(true);
    }

    /// Whether permessage-deflate is on.
    pub fn is_deflate_enabled(&self) -> bool {
        self.deflate.is_some()
    }

    /// The local role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Hands received bytes to the connection (one copy). Call
    /// [`Connection::poll_event`] until it returns `None` afterwards.
    #[inline]
    pub fn receive(&mut self, data: &[u8]) {
        if !(self.received_close || self.failed) {
            self.drop_consumed();
            if self.decoder.has_pending() {
                // A frame is still arriving: its payload is unmasked on
                // the way in rather than in a second pass.
                self.decoder.extend_unmasking(&mut self.read_buf, data);
            } else {
                self.read_buf.extend_from_slice(data);
            }
        }
    }

    /// The read buffer, for adapters that read from the socket straight into
    /// it (no copy). Bytes appended here are treated exactly as if passed to
    /// [`Connection::receive`].
    pub fn read_buf(&mut self) -> &mut BytesMut {
        self.drop_consumed();
        &mut self.read_buf
    }

    /// Gives back the buffers an idle connection would keep: the read
    /// buffer when it holds nothing unread, the write buffers when
    /// everything was handed out. They keep the capacity of the last
    /// messages otherwise (a few hundred bytes per connection, issue #19).
    /// An adapter calls this when its read has to wait; the next message
    /// allocates again, once per burst rather than per frame.
    pub fn release_idle_buffers(&mut self) {
        self.drop_consumed();
        if self.read_buf.is_empty() && self.read_buf.capacity() > 0 {
            self.read_buf = BytesMut::new();
        }
        if self.write_buf.is_empty() && self.write_buf.capacity() > 0 {
            self.write_buf = BytesMut::new();
        }
        if self.queued.is_empty() {
            self.queued = crate::transmit::TransmitChunks::new();
        }
    }

    /// Drops the bytes borrowed events were cut from. Done once per read
    /// rather than once per frame: that is what makes borrowed events cheap.
    #[inline]
    fn drop_consumed(&mut self) {
        if self.read_pos != 0 {
            bytes::Buf::advance(&mut self.read_buf, self.read_pos);
            self.read_pos = 0;
        }
    }

    /// The transport reached end of file: the peer will send nothing more.
    pub fn receive_eof(&mut self) {
        self.transport_eof = true;
        self.state = State::Closed;
    }

    /// Whether the close handshake completed cleanly (both close frames
    /// exchanged, no protocol failure).
    pub fn is_clean_close(&self) -> bool {
        self.sent_close && self.received_close && !self.failed
    }

    /// Whether the adapter should now close the transport (after writing
    /// what [`Connection::poll_transmit`] handed out).
    ///
    /// A server closes TCP as soon as the close handshake is over (RFC 6455
    /// section 7.1.1); a client waits for the server to do so, for at most
    /// [`Config::close_timeout`]. After a failure either side closes at once.
    pub fn should_close_transport(&self) -> bool {
        self.state == State::Closed
            && (self.role == Role::Server || self.failed || self.transport_eof || self.timed_out)
    }

    /// The next event, or `None` when more bytes are needed.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.drop_consumed();
        if self.takes_single_frames() {
            // The small whole message: checked and unmasked in place by the
            // borrowed path's code, then cut out once.
            if let Some((header, header_len)) = self.decoder.peek_short_data(&self.read_buf) {
                match self.take_single_frame(header, header_len) {
                    Ok(Some((opcode, start, end))) => {
                        self.read_pos = 0;
                        let mut payload = self.read_buf.split_to(end).freeze();
                        bytes::Buf::advance(&mut payload, start);
                        return Some(Event::Message(if opcode == OpCode::Text {
                            Message::Text(Utf8Bytes::from_validated(payload))
                        } else {
                            Message::Binary(payload)
                        }));
                    }
                    Ok(None) => {}
                    Err(e) => return Some(self.fail(e)),
                }
            }
        }
        loop {
            if self.received_close || self.failed {
                // Nothing after a close frame, or after a failure, is read
                // (RFC 6455 sections 5.5.1 and 7.1.7).
                self.read_buf.clear();
                return None;
            }
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(frame)) => match self.on_frame(frame) {
                    Ok(Some(event)) => return Some(event),
                    Ok(None) => continue,
                    Err(e) => return Some(self.fail(e)),
                },
                Ok(None) => {
                    return match self.check_pending_frame() {
                        Ok(()) => None,
                        Err(e) => Some(self.fail(e)),
                    };
                }
                Err(e) => return Some(self.fail(e)),
            }
        }
    }

    /// Rules that can be judged before a frame's payload has arrived: the
    /// sequence, the message size, and the UTF-8 of what has come so far.
    fn check_pending_frame(&mut self) -> Result<(), ProtocolError> {
        let Some(header) = self.decoder.pending_header().copied() else {
            return Ok(());
        };
        if header.opcode.is_control() {
            return Ok(());
        }
        let kind = self.check_data_header(&header)?;
        // Compressed bytes say nothing about the text's UTF-8 until inflated.
        let compressed = header.rsv1 || self.incoming.as_ref().is_some_and(|a| a.compressed);
        if kind == OpCode::Text && !compressed {
            let fresh = self.decoder.unmask_partial(&mut self.read_buf);
            self.validated += fresh.len();
            self.utf8
                .feed(fresh)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// Checks a data frame header against the message in progress and the
    /// size limit; returns the kind of message it belongs to.
    #[inline]
    fn check_data_header(&self, header: &FrameHeader) -> Result<OpCode, ProtocolError> {
        let (kind, so_far, compressed) = match (header.opcode, &self.incoming) {
            (OpCode::Continuation, Some(a)) => (a.opcode, a.len, a.compressed),
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (opcode, None) => (opcode, 0, header.rsv1),
        };
        // A compressed message is held to the limit by its inflated size,
        // checked while inflating; its wire size says nothing (an
        // incompressible message grows a little).
        let len = so_far + header.payload_len;
        if !compressed && len > self.config.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge {
                len,
                limit: self.config.max_message_size,
            });
        }
        Ok(kind)
    }

    #[inline]
    fn on_frame(&mut self, frame: Frame) -> Result<Option<Event>, ProtocolError> {
        let Frame { header, payload } = frame;
        // RSV1 gets past the decoder only with permessage-deflate, and then
        // only on a message's first frame.
        if header.rsv1 && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::ReservedBits);
        }
        match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => self.on_data(header, payload),
            OpCode::Ping => {
                if self.config.auto_pong && !self.sent_close {
                    self.write_frame(OpCode::Pong, true, false, &payload);
                }
                Ok(Some(Event::Ping(payload)))
            }
            OpCode::Pong => Ok(Some(Event::Pong(payload))),
            OpCode::Close => self.on_close(payload).map(Some),
        }
    }

    #[inline]
    fn on_data(
        &mut self,
        header: FrameHeader,
        payload: Bytes,
    ) -> Result<Option<Event>, ProtocolError> {
        // The common case first: a whole text or binary message in one frame.
        if header.fin
            && !header.rsv1
            && self.incoming.is_none()
            && self.validated == 0
            && self.config.assemble_messages
        {
            match header.opcode {
                OpCode::Text => {
                    self.check_data_header(&header)?;
                    utf8::validate(&payload).map_err(|_| ProtocolError::InvalidUtf8)?;
                    return Ok(Some(Event::Message(Message::Text(
                        Utf8Bytes::from_validated(payload),
                    ))));
                }
                OpCode::Binary => {
                    self.check_data_header(&header)?;
                    return Ok(Some(Event::Message(Message::Binary(payload))));
                }
                _ => {}
            }
        }
        let kind = self.check_data_header(&header)?;
        let compressed = match (header.opcode, &self.incoming) {
            (OpCode::Continuation, Some(a)) => a.compressed,
            _ => header.rsv1,
        };
        if compressed {
            return self.on_compressed_data(header, kind, &payload);
        }
        let validated = std::mem::take(&mut self.validated);
        if kind == OpCode::Text {
            let fresh = payload.get(validated..).unwrap_or_default();
            self.utf8
                .feed(fresh)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            if header.fin {
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        let assembly = self.incoming.get_or_insert_with(|| Assembly {
            opcode: kind,
            compressed: false,
            data: Vec::new(),
            len: 0,
        });
        assembly.len += payload.len() as u64;
        if !self.config.assemble_messages {
            if header.fin {
                self.incoming = None;
            }
            return Ok(Some(Event::Fragment {
                opcode: header.opcode,
                payload,
                fin: header.fin,
            }));
        }
        assembly.data.extend_from_slice(&payload);
        self.finish_message(header.fin)
    }

    /// Hands out the assembled message if `fin` ended it.
    fn finish_message(&mut self, fin: bool) -> Result<Option<Event>, ProtocolError> {
        if !fin {
            return Ok(None);
        }
        let Some(Assembly { opcode, data, .. }) = self.incoming.take() else {
            return Ok(None);
        };
        let data = Bytes::from(data);
        Ok(Some(Event::Message(match opcode {
            OpCode::Text => Message::Text(Utf8Bytes::from_validated(data)),
            _ => Message::Binary(data),
        })))
    }

    /// One frame of a permessage-deflate message: inflated as it arrives,
    /// bounded by the message limit, and UTF-8 checked as it comes out.
    fn on_compressed_data(
        &mut self,
        header: FrameHeader,
        kind: OpCode,
        payload: &[u8],
    ) -> Result<Option<Event>, ProtocolError> {
        let limit = self.config.max_message_size;
        let assemble = self.config.assemble_messages;
        let Some(codec) = self.deflate.as_mut() else {
            return Err(ProtocolError::ReservedBits);
        };
        let assembly = self.incoming.get_or_insert_with(|| Assembly {
            opcode: kind,
            compressed: true,
            data: Vec::new(),
            len: 0,
        });
        let mut fragment = Vec::new();
        let (out, start, room) = if assemble {
            let start = assembly.data.len();
            (&mut assembly.data, start, limit)
        } else {
            let room = limit.saturating_sub(assembly.len as usize);
            (&mut fragment, 0, room)
        };
        codec
            .decompress(payload, header.fin, out, room)
            .map_err(|e| match e {
                InflateError::Corrupt => ProtocolError::InvalidCompressedData,
                InflateError::TooLarge => ProtocolError::MessageTooLarge {
                    len: (room as u64).saturating_add(1),
                    limit,
                },
            })?;
        let fresh = out.get(start..).unwrap_or_default();
        assembly.len += fresh.len() as u64;
        if kind == OpCode::Text {
            self.utf8
                .feed(fresh)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            if header.fin {
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if !assemble {
            if header.fin {
                self.incoming = None;
            }
            return Ok(Some(Event::Fragment {
                opcode: header.opcode,
                payload: Bytes::from(fragment),
                fin: header.fin,
            }));
        }
        self.finish_message(header.fin)
    }

    fn on_close(&mut self, payload: Bytes) -> Result<Event, ProtocolError> {
        let frame = CloseFrame::parse(payload).map_err(|e| match e {
            ClosePayloadError::InvalidCode => ProtocolError::InvalidCloseFrame,
            ClosePayloadError::InvalidReason => ProtocolError::InvalidUtf8,
        })?;
        self.received_close = true;
        if !self.sent_close {
            // Echo the status code, as RFC 6455 section 5.5.1 suggests.
            let reply = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
            self.write_close(reply.as_ref());
        }
        self.state = State::Closed;
        Ok(Event::Close(frame))
    }

    /// Fails the connection (RFC 6455 section 7.1.7): queue a close frame
    /// with the error's code unless one went out already, and stop reading.
    fn fail(&mut self, error: ProtocolError) -> Event {
        self.failed = true;
        if !self.sent_close {
            let frame = CloseFrame::new(error.close_code(), "");
            self.write_close(Some(&frame));
        }
        self.state = State::Closed;
        self.read_buf.clear();
        self.read_pos = 0;
        Event::Failed(error)
    }

    fn ensure_can_send(&self) -> Result<(), Error> {
        if self.sent_close || self.state == State::Closed {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Sends a whole message, split into frames of at most
    /// [`Config::max_outgoing_frame_size`] if that is set, and compressed
    /// if permessage-deflate is on.
    ///
    /// The payload's [`Bytes`] are kept, not copied, when the frame needs
    /// no change on the way out: on a server, for a message that is not
    /// compressed and has at least [`Config::min_shared_payload`] bytes;
    /// take them with [`Connection::poll_transmit_chunks`] to write them
    /// uncopied. A client masks every frame, so it always copies.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        let opcode = message_opcode(&message);
        self.send_data(opcode, Payload::Shared(message_bytes(message)), true)
    }

    /// Sends a message without compressing it, even with permessage-deflate
    /// on (for data that is already compressed, such as images). The
    /// payload is kept uncopied as with [`Connection::send`].
    pub fn send_uncompressed(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        let opcode = message_opcode(&message);
        self.send_data(opcode, Payload::Shared(message_bytes(message)), false)
    }

    /// Sends a text message (copied; [`Connection::send`] with a
    /// [`Utf8Bytes`] avoids the copy).
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_data(OpCode::Text, Payload::Borrowed(text.as_bytes()), true)
    }

    /// Sends a binary message (copied; [`Connection::send`] with a
    /// [`Bytes`] avoids the copy).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_data(OpCode::Binary, Payload::Borrowed(data), true)
    }

    fn send_data(
        &mut self,
        opcode: OpCode,
        payload: Payload<'_>,
        compress: bool,
    ) -> Result<(), Error> {
        self.ensure_can_send()?;
        if self.outgoing.is_some() {
            return Err(Error::FrameSequence(
                "a fragmented message is still being sent",
            ));
        }
        let mut compressed = std::mem::take(&mut self.compressed);
        let use_compressed = match self.deflate.as_mut() {
            Some(codec) if compress && codec.wants(payload.len()) => {
                codec.compress(payload.as_slice(), &mut compressed)
            }
            _ => false,
        };
        let (payload, rsv1) = if use_compressed {
            (Payload::Borrowed(compressed.as_slice()), true)
        } else {
            (payload, false)
        };
        let len = payload.len();
        match self.config.max_outgoing_frame_size {
            Some(max) if max > 0 && len > max => {
                let mut start = 0;
                while start < len {
                    let end = len.min(start.saturating_add(max));
                    let op = if start == 0 {
                        opcode
                    } else {
                        OpCode::Continuation
                    };
                    self.write_payload(op, end == len, rsv1 && start == 0, &payload, start..end);
                    start = end;
                }
            }
            // One frame: a shared payload is moved into the queue, which
            // saves the two reference-count updates of a slice.
            _ => match payload {
                Payload::Shared(bytes) if self.shares(len) => {
                    self.write_frame_shared(opcode, true, rsv1, bytes);
                }
                _ => self.write_frame(opcode, true, rsv1, payload.as_slice()),
            },
        }
        self.compressed = compressed;
        Ok(())
    }

    /// Writes `payload[range]` as one frame: queued uncopied when a server
    /// has it as [`Bytes`] and it is long enough to be worth a slice of its
    /// own in the vectored write, copied otherwise.
    fn write_payload(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        payload: &Payload<'_>,
        range: std::ops::Range<usize>,
    ) {
        match payload {
            Payload::Shared(bytes) if self.shares(range.len()) && range.end <= bytes.len() => {
                self.write_frame_shared(opcode, fin, rsv1, bytes.slice(range));
            }
            _ => {
                let slice = payload.as_slice().get(range).unwrap_or_default();
                self.write_frame(opcode, fin, rsv1, slice);
            }
        }
    }

    /// Frame-level sending: one data frame. `opcode` is `Text` or `Binary`
    /// for a message's first frame and `Continuation` after it; `fin` ends
    /// the message. Control frames go through `ping`, `pong` and `close`.
    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<(), Error> {
        self.ensure_can_send()?;
        match (opcode, self.outgoing) {
            (OpCode::Continuation, None) => {
                return Err(Error::FrameSequence(
                    "continuation without a message in progress",
                ));
            }
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(Error::FrameSequence(
                    "new message before the last one finished",
                ));
            }
            (OpCode::Close | OpCode::Ping | OpCode::Pong, _) => {
                return Err(Error::FrameSequence(
                    "control frames are sent with ping, pong and close",
                ));
            }
            _ => {}
        }
        self.outgoing = if fin {
            None
        } else {
            Some(if opcode == OpCode::Continuation {
                self.outgoing.unwrap_or(opcode)
            } else {
                opcode
            })
        };
        self.write_frame(opcode, fin, false, payload);
        Ok(())
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Sends an unsolicited pong (a one-way heartbeat) or a manual answer to
    /// a ping when [`Config::auto_pong`] is off.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        self.ensure_can_send()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::ControlPayloadTooLong);
        }
        self.write_frame(opcode, true, false, payload);
        Ok(())
    }

    /// Starts the close handshake with `code` and a `reason` of at most 123
    /// bytes. Messages still arriving are delivered until the peer's close.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.ensure_can_send()?;
        if !code.is_sendable() {
            return Err(Error::UnsendableCloseCode(code));
        }
        if reason.len() > CloseFrame::MAX_REASON_LEN {
            return Err(Error::ControlPayloadTooLong);
        }
        self.write_close(Some(&CloseFrame::new(
            code,
            Utf8Bytes::copy_from_str(reason),
        )));
        self.state = if self.received_close {
            State::Closed
        } else {
            State::Closing
        };
        Ok(())
    }

    fn write_close(&mut self, frame: Option<&CloseFrame>) {
        let mut payload = BytesMut::new();
        if let Some(frame) = frame {
            payload.reserve(frame.encoded_len());
            frame.encode(&mut payload);
        }
        self.write_frame(OpCode::Close, true, false, &payload);
        self.sent_close = true;
    }

    /// Appends one frame to the write buffer, masking it on a client.
    #[inline]
    fn write_frame(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
        let mask = match self.role {
            Role::Client => Some(self.config.rng.next_u32().to_ne_bytes()),
            Role::Server => None,
        };
        let mut header = FrameHeader::new(opcode, fin, mask, payload.len() as u64);
        header.rsv1 = rsv1;
        self.write_buf.reserve(header.encoded_len() + payload.len());
        header.encode(&mut self.write_buf);
        let start = self.write_buf.len();
        self.write_buf.extend_from_slice(payload);
        if let (Some(key), Some(body)) = (mask, self.write_buf.get_mut(start..)) {
            apply_mask(body, key, 0);
        }
    }

    /// Whether a shared payload of `len` bytes is queued uncopied: only
    /// unmasked (server) frames, and only long enough ones.
    #[inline]
    fn shares(&self, len: usize) -> bool {
        self.role == Role::Server && len >= self.config.min_shared_payload
    }

    /// Appends one unmasked frame whose payload is queued as it is. Only a
    /// server sends unmasked frames.
    fn write_frame_shared(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: Bytes) {
        let mut header = FrameHeader::new(opcode, fin, None, payload.len() as u64);
        header.rsv1 = rsv1;
        let mut buf = [0u8; crate::frame::MAX_HEADER_LEN];
        let n = header.encode_to_array(&mut buf);
        if self.write_buf.is_empty() {
            self.queued.push_header(buf, n);
        } else {
            // The header joins the copied frames before it: one slice fewer
            // for the vectored write, and `write_buf` must go first anyway.
            self.write_buf
                .extend_from_slice(buf.get(..n).unwrap_or_default());
            self.queued.push_bytes(self.write_buf.split().freeze());
        }
        self.queued.push_bytes(payload);
    }

    /// Moves the bytes waiting to be written into `out`, flattened into one
    /// buffer; returns how many. Without a copy when `out` is empty and no
    /// payload was queued uncopied; otherwise those payloads are copied
    /// here (use [`Connection::poll_transmit_chunks`] to avoid that).
    #[inline]
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        let n = self.queued.len() + self.write_buf.len();
        if self.queued.is_empty() && out.is_empty() {
            std::mem::swap(out, &mut self.write_buf);
        } else {
            out.reserve(n);
            self.queued.flatten_into(out);
            out.extend_from_slice(&self.write_buf);
            self.write_buf.clear();
        }
        n
    }

    /// Moves the bytes waiting to be written to the end of `out` as chunks:
    /// frame headers and copied frames, and the payloads [`Connection::send`]
    /// kept uncopied; returns how many bytes. Write them with one vectored
    /// write (`writev`) per call, advancing `out` by what was written (see
    /// [`crate::TransmitChunks`]). The same bytes, in the same order, as
    /// [`Connection::poll_transmit`] would give.
    pub fn poll_transmit_chunks(&mut self, out: &mut crate::transmit::TransmitChunks) -> usize {
        let n = self.queued.len() + self.write_buf.len();
        out.append(&mut self.queued);
        if !self.write_buf.is_empty() {
            out.push_bytes(self.write_buf.split().freeze());
        }
        n
    }

    /// Whether payloads wait uncopied (large ones a server sent as
    /// [`Bytes`]): [`Connection::poll_transmit`] would copy them, so a
    /// vectored writer takes them with [`Connection::poll_transmit_chunks`];
    /// without them, `poll_transmit` into an empty buffer hands over the
    /// connection's own buffer with no copy and nothing to allocate.
    pub fn has_shared_payloads(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Whether [`Connection::poll_transmit`] has bytes to hand out.
    pub fn has_pending_transmit(&self) -> bool {
        !self.write_buf.is_empty() || !self.queued.is_empty()
    }

    /// How many bytes wait to be handed out by [`Connection::poll_transmit`].
    pub fn pending_transmit_len(&self) -> usize {
        self.write_buf.len() + self.queued.len()
    }

    /// When the connection next needs [`Connection::handle_timeout`]: the
    /// end of the close timeout, once one is running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.close_deadline
    }

    /// Tells the connection the time. Starts the close timer when the
    /// connection has begun closing since the last call (so call this after
    /// every batch of input and commands), and ends the wait when it runs
    /// out.
    pub fn handle_timeout(&mut self, now: Instant) {
        let waiting = match self.state {
            State::Open => false,
            State::Closing => true,
            State::Closed => !self.should_close_transport(),
        };
        if !waiting {
            self.close_deadline = None;
            return;
        }
        match self.close_deadline {
            None => self.close_deadline = Some(now + self.config.close_timeout),
            Some(deadline) if now >= deadline => {
                self.timed_out = true;
                self.state = State::Closed;
                self.close_deadline = None;
            }
            Some(_) => {}
        }
    }
}

/// A payload to send: borrowed ones are always copied, shared ones may be
/// queued as they are.
enum Payload<'a> {
    Borrowed(&'a [u8]),
    Shared(Bytes),
}

impl Payload<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Borrowed(b) => b,
            Self::Shared(b) => b,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }
}

fn message_bytes(message: Message) -> Bytes {
    match message {
        Message::Text(text) => text.into_bytes(),
        Message::Binary(bytes) => bytes,
    }
}

fn message_opcode(message: &Message) -> OpCode {
    match message {
        Message::Text(_) => OpCode::Text,
        Message::Binary(_) => OpCode::Binary,
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("buffered_in", &self.read_buf.len())
            .field("buffered_out", &self.pending_transmit_len())
            .finish_non_exhaustive()
    }
}
