//! Events that borrow their payload from the read buffer.
//!
//! An owned [`Event`] cuts its payload out of the read buffer as a
//! reference-counted `Bytes`: a split, a freeze and an atomic increment
//! per frame, more than parsing and unmasking a small frame costs. A
//! borrowed event hands out a slice of the buffer instead and leaves the
//! bytes where they are; they are dropped once per read. For an
//! application that looks at each message and moves on (a router, a
//! parser that builds its own values, an echo), that is the cheaper way.

use super::{Connection, Event};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::{apply_mask, apply_mask_ascii};
use crate::utf8;

/// What the peer sent, borrowing whole single-frame messages from the
/// connection's read buffer. See [`Connection::poll_event_ref`].
#[derive(Debug, PartialEq, Eq)]
pub enum EventRef<'a> {
    /// A text message that came in one frame, UTF-8 checked.
    Text(&'a str),
    /// A binary message that came in one frame.
    Binary(&'a [u8]),
    /// Anything else (control frames, fragmented or compressed messages,
    /// frame-level delivery, failures), as [`Connection::poll_event`]
    /// gives it.
    Other(Event),
}

impl Connection {
    /// The next event, like [`Connection::poll_event`], but a message that
    /// came in one uncompressed frame borrows its payload from the read
    /// buffer instead of being cut out as `Bytes`.
    ///
    /// The same rules apply and the same events come out, in the same
    /// order; the two methods can be mixed freely.
    ///
    /// ```
    /// use duplex_ws::{Config, Connection, EventRef, Role};
    ///
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    /// assert_eq!(server.poll_event_ref(), Some(EventRef::Text("Hello")));
    /// assert_eq!(server.poll_event_ref(), None);
    /// ```
    #[inline]
    pub fn poll_event_ref(&mut self) -> Option<EventRef<'_>> {
        let single = if self.takes_single_frames() {
            let unread = self.read_buf.get(self.read_pos..).unwrap_or_default();
            match self.decoder.peek_short_data(unread) {
                Some((header, header_len)) => self.take_single_frame(header, header_len),
                None => self.next_single_frame(),
            }
        } else {
            Ok(None)
        };
        match single {
            Ok(Some((opcode, start, end))) => {
                let payload = self.read_buf.get(start..end).unwrap_or_default();
                Some(if opcode == OpCode::Text {
                    // Checked already by `take_single_frame`, which must
                    // fail the connection before this borrow begins.
                    EventRef::Text(utf8::as_str(payload).unwrap_or_default())
                } else {
                    EventRef::Binary(payload)
                })
            }
            Ok(None) => self.poll_event_other(),
            Err(e) => Some(EventRef::Other(self.fail(e))),
        }
    }

    /// Whether a frame that is a whole message may be handed out as it
    /// stands: no message or frame in progress, nothing ended, and
    /// messages assembled.
    #[inline(always)]
    pub(super) fn takes_single_frames(&self) -> bool {
        !(self.received_close
            || self.failed
            || self.incoming.is_some()
            || self.validated != 0
            || !self.config.assemble_messages
            || self.decoder.has_pending())
    }

    /// Everything but a whole single-frame message, out of line so the
    /// small-message path keeps its registers.
    #[inline(never)]
    fn poll_event_other(&mut self) -> Option<EventRef<'_>> {
        self.poll_event().map(EventRef::Other)
    }

    /// The general header parser's turn, for frames the short path does not
    /// take (longer lengths, control frames, errors): a whole single-frame
    /// message is taken as in the short path, anything else left for
    /// [`Connection::poll_event`].
    #[inline(never)]
    fn next_single_frame(&mut self) -> Result<Option<(OpCode, usize, usize)>, ProtocolError> {
        let unread = self.read_buf.get(self.read_pos..).unwrap_or_default();
        let Some((header, header_len)) = self.decoder.peek_complete(unread)? else {
            return Ok(None);
        };
        if !header.fin || header.rsv1 || !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Ok(None);
        }
        self.take_single_frame(header, header_len)
    }

    /// Takes the whole, final, uncompressed text or binary frame whose
    /// header was just parsed at the read position: checks it against the
    /// message limit, unmasks it in place, checks its UTF-8 and returns its
    /// kind and where its payload lies in the read buffer.
    #[inline(always)]
    pub(super) fn take_single_frame(
        &mut self,
        header: FrameHeader,
        header_len: usize,
    ) -> Result<Option<(OpCode, usize, usize)>, ProtocolError> {
        // The header was parsed from a frame lying whole in the buffer, so
        // the length fits.
        let len = header.payload_len as usize;
        self.check_data_header(&header)?;
        let start = self.read_pos + header_len;
        let Some(payload) = self.read_buf.get_mut(start..start + len) else {
            return Ok(None);
        };
        unmask_and_check(payload, &header)?;
        self.read_pos = start + len;
        Ok(Some((header.opcode, start, start + len)))
    }
}

impl Connection {
    /// Hands every event the buffered bytes hold to `sink`, as
    /// [`Connection::poll_event_ref`] would one at a time, then returns
    /// (more bytes are needed, or the connection has ended).
    ///
    /// Runs of whole small messages are taken in one tight loop that checks
    /// the connection's state once per run rather than once per message:
    /// for a stream of small messages, the cheapest way through.
    ///
    /// ```
    /// use duplex_ws::{Config, Connection, EventRef, Role};
    ///
    /// let hello = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// let mut server = Connection::new(Role::Server, Config::default());
    /// server.receive(&[hello, hello].concat());
    /// let mut texts = Vec::new();
    /// server.drain_events_ref(|event| {
    ///     if let EventRef::Text(text) = event {
    ///         texts.push(text.to_owned());
    ///     }
    /// });
    /// assert_eq!(texts, ["Hello", "Hello"]);
    /// ```
    pub fn drain_events_ref(&mut self, mut sink: impl FnMut(EventRef<'_>)) {
        loop {
            if self.takes_single_frames() {
                self.drain_short_messages(&mut sink);
            }
            match self.poll_event_ref() {
                Some(event) => sink(event),
                None => return,
            }
        }
    }

    /// The tight loop of [`Connection::drain_events_ref`]: whole, final,
    /// uncompressed text and binary frames with a 7-bit length, back to
    /// back. Stops at anything else, leaving it for the general path; a
    /// text frame that is not UTF-8 fails the connection here, as its
    /// payload is unmasked already.
    #[inline]
    fn drain_short_messages(&mut self, sink: &mut impl FnMut(EventRef<'_>)) {
        let limit = self.config.max_message_size;
        loop {
            let unread = self.read_buf.get_mut(self.read_pos..).unwrap_or_default();
            let Some((header, header_len)) = self.decoder.peek_short_data(unread) else {
                return;
            };
            let len = header.payload_len as usize;
            if len > limit {
                return;
            }
            let Some(payload) = unread.get_mut(header_len..header_len + len) else {
                return;
            };
            if let Err(e) = unmask_and_check(payload, &header) {
                let failed = self.fail(e);
                sink(EventRef::Other(failed));
                return;
            }
            let event = if header.opcode == OpCode::Text {
                EventRef::Text(utf8::as_str(payload).unwrap_or_default())
            } else {
                EventRef::Binary(payload)
            };
            sink(event);
            self.read_pos += header_len + len;
        }
    }
}

/// Unmasks a whole single-frame message's payload in place and, for text,
/// checks its UTF-8: ASCII is proven in the unmask pass, only the rest gets
/// the full check.
#[inline(always)]
fn unmask_and_check(payload: &mut [u8], header: &FrameHeader) -> Result<(), ProtocolError> {
    if header.opcode == OpCode::Text {
        let ascii = match header.mask {
            Some(key) => apply_mask_ascii(payload, key),
            None => false,
        };
        if !ascii {
            utf8::validate(payload).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
    } else if let Some(key) = header.mask {
        apply_mask(payload, key, 0);
    }
    Ok(())
}
