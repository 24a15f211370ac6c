//! Parsing frames out of a byte stream: the frame-level API.
//!
//! [`FrameDecoder`] enforces the rules that concern a frame on its own
//! (masking by role, reserved opcodes and bits, control frame limits, the
//! frame size limit). Rules that span frames (fragmentation, UTF-8, message
//! size) belong to [`crate::Connection`].

use bytes::{Buf, BytesMut};

use crate::error::ProtocolError;
use crate::frame::{Frame, FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
use crate::mask::{apply_mask, extend_unmasked};

/// The read-buffer room reserved for a frame still arriving on its
/// header's word alone: a frame up to this size is given all its room at
/// once, so its bytes are never moved while it arrives. Past it, the room
/// grows with what has arrived (eight times as much), so a peer can make
/// a connection reserve at most this much, or eight times what it sent.
/// 256 KiB rather than more: the allocator may serve a large buffer from
/// heap pages already resident, so a peer that announces big frames and
/// stalls costs this much memory per connection, not only address space.
const RESERVE_WHOLE: usize = 256 << 10;

/// Which end of the connection this is. A server receives masked frames
/// and sends unmasked ones; a client the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that accepted the connection.
    Server,
    /// The end that opened the connection.
    Client,
}

/// A frame whose header has been parsed but whose payload is still
/// arriving.
#[derive(Debug, Clone, Copy)]
struct PendingFrame {
    header: FrameHeader,
    header_len: usize,
    /// Payload bytes already unmasked, in place or on their way in
    /// ([`FrameDecoder::extend_unmasking`]).
    unmasked: usize,
    /// Payload bytes already handed out by [`FrameDecoder::unmask_partial`].
    handed: usize,
}

/// Decodes frames from a buffer, unmasking payloads in place.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    role: Role,
    max_frame_size: usize,
    allow_rsv1: bool,
    pending: Option<PendingFrame>,
    /// A frame completed by [`FrameDecoder::extend_unmasking`] and taken
    /// out of the buffer there, so that the bytes after it could start a
    /// new allocation instead of growing (and copying) the frame's; the
    /// next [`FrameDecoder::decode`] returns it. `pending` stays set
    /// meanwhile.
    ready: Option<Frame>,
}

impl FrameDecoder {
    /// A decoder for the local `role`, refusing frames over
    /// `max_frame_size` payload bytes.
    pub fn new(role: Role, max_frame_size: usize) -> Self {
        Self {
            role,
            max_frame_size,
            allow_rsv1: false,
            pending: None,
            ready: None,
        }
    }

    /// Accept RSV1 (an extension such as permessage-deflate defines it).
    pub fn set_allow_rsv1(&mut self, allow: bool) {
        self.allow_rsv1 = allow;
    }

    /// The header of the frame whose payload is still arriving, if any.
    pub fn pending_header(&self) -> Option<&FrameHeader> {
        if self.ready.is_some() {
            return None;
        }
        self.pending.as_ref().map(|p| &p.header)
    }

    /// Takes the next complete frame from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; in that case `buf` has been
    /// given the capacity the rest of the frame needs, so a reader can fill
    /// it without reallocating.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if self.pending.is_none() {
            if let Some(frame) = self.decode_short(buf)? {
                return Ok(Some(frame));
            }
        }
        self.decode_general(buf)
    }

    /// The fast path for the commonest frame: complete in the buffer, a
    /// 7-bit length, masked as the role requires, no reserved bits beyond
    /// an allowed RSV1. Anything else falls through to the general path,
    /// which applies every rule; this one applies the same rules to the
    /// frames it takes.
    #[inline(always)]
    fn decode_short(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let Some(&[b0, b1]) = buf.first_chunk::<2>() else {
            return Ok(None);
        };
        let len = usize::from(b1 & 0x7f);
        let masked = b1 & 0x80 != 0;
        let rsv_ok = b0 & 0x30 == 0 && (b0 & 0x40 == 0 || self.allow_rsv1);
        let header_len = if masked { 6 } else { 2 };
        if len >= 126
            || masked != (self.role == Role::Server)
            || !rsv_ok
            || buf.len() < header_len + len
            || len > self.max_frame_size
        {
            return Ok(None);
        }
        let bits = b0 & 0x0f;
        let opcode = OpCode::from_bits(bits).ok_or(ProtocolError::ReservedOpCode(bits))?;
        let fin = b0 & 0x80 != 0;
        if opcode.is_control() && !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        let mask = if masked {
            let key = buf.get(2..6).and_then(|k| k.first_chunk::<4>()).copied();
            if let (Some(key), Some(payload)) = (key, buf.get_mut(6..6 + len)) {
                apply_mask(payload, key, 0);
            }
            key
        } else {
            None
        };
        let mut payload = buf.split_to(header_len + len).freeze();
        payload.advance(header_len);
        Ok(Some(Frame {
            header: FrameHeader {
                fin,
                rsv1: b0 & 0x40 != 0,
                rsv2: false,
                rsv3: false,
                opcode,
                mask,
                payload_len: len as u64,
            },
            payload,
        }))
    }

    fn decode_general(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if let Some(frame) = self.ready.take() {
            self.pending = None;
            return Ok(Some(frame));
        }
        let pending = match self.pending {
            Some(p) => p,
            None => match self.parse_header(buf)? {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        let payload_len = pending.header.payload_len as usize;
        let total = pending.header_len + payload_len;
        if buf.len() < total {
            self.pending = Some(pending);
            // A 14-byte header must not reserve 16 MiB on its own: the
            // whole frame up to RESERVE_WHOLE, eight times what has
            // arrived past it (see RESERVE_WHOLE).
            let arrived = buf.len().saturating_sub(pending.header_len);
            let room = arrived
                .saturating_mul(8)
                .max(RESERVE_WHOLE)
                .saturating_add(pending.header_len)
                .min(total);
            make_room(buf, room);
            return Ok(None);
        }
        self.pending = None;
        if let Some(key) = pending.header.mask {
            if let Some(rest) = buf.get_mut(pending.header_len + pending.unmasked..total) {
                apply_mask(rest, key, pending.unmasked);
            }
        }
        // Advancing a frozen `Bytes` is pointer arithmetic; advancing the
        // `BytesMut` first costs several times more.
        let mut payload = buf.split_to(total).freeze();
        payload.advance(pending.header_len);
        Ok(Some(Frame {
            header: pending.header,
            payload,
        }))
    }

    /// Unmasks, in place, the payload bytes of the pending frame that have
    /// arrived since the last call, and returns them. Lets a text message be
    /// validated before its frame is complete.
    pub fn unmask_partial<'a>(&mut self, buf: &'a mut BytesMut) -> &'a [u8] {
        if self.ready.is_some() {
            return &[];
        }
        let Some(pending) = self.pending.as_mut() else {
            return &[];
        };
        let start = pending.header_len + pending.unmasked;
        let Some(fresh) = buf.get_mut(start..) else {
            return &[];
        };
        if let Some(key) = pending.header.mask {
            apply_mask(fresh, key, pending.unmasked);
        }
        pending.unmasked += fresh.len();
        let arrived = pending.unmasked;
        let from = pending.header_len + std::mem::replace(&mut pending.handed, arrived);
        buf.get(from..).unwrap_or_default()
    }

    /// Appends received `data` to `buf`, the buffer this decoder reads
    /// from, unmasking on the way in the part that continues the payload
    /// of the frame still arriving: one pass over those bytes instead of a
    /// copy and then an XOR in place. The same bytes as
    /// `buf.extend_from_slice(data)` as far as [`FrameDecoder::decode`] is
    /// concerned; for a large frame arriving over many reads, most of them.
    ///
    /// When `data` completes the pending frame and the bytes after it do
    /// not fit in `buf`'s room, and the frame is the larger of the two,
    /// the frame is taken out of `buf` here (the next `decode` returns it)
    /// and those bytes start a new allocation: growing `buf` would copy
    /// the whole frame, up to the frame limit, for the sake of a few bytes
    /// of the next one.
    #[inline(never)]
    pub fn extend_unmasking(&mut self, buf: &mut BytesMut, data: &[u8]) {
        let mut rest = data;
        let mut completed = None;
        // A frame taken out (`ready`) leaves `buf` holding what follows it.
        let taken_out = self.ready.is_some();
        if let Some(pending) = self.pending.as_mut().filter(|_| !taken_out) {
            if let Some(key) = pending.header.mask {
                let arrived_end = buf.len();
                let payload_end =
                    (pending.header_len as u64).saturating_add(pending.header.payload_len);
                let want = payload_end.saturating_sub(arrived_end as u64);
                let n = usize::try_from(want).unwrap_or(usize::MAX).min(data.len());
                // The bytes arrived so far are unmasked first, so that the
                // unmasked part stays one run from the payload's start.
                let start = pending.header_len + pending.unmasked;
                if n > 0 {
                    if let Some(masked) = buf.get_mut(start..) {
                        apply_mask(masked, key, pending.unmasked);
                        pending.unmasked += masked.len();
                        let (fresh, after) = data.split_at(n);
                        extend_unmasked(buf, fresh, key, pending.unmasked);
                        pending.unmasked += n;
                        rest = after;
                        // Only when the frame is the larger copy.
                        if n as u64 == want
                            && rest.len() > buf.capacity() - buf.len()
                            && buf.len() > rest.len()
                        {
                            completed = Some(*pending);
                        }
                    }
                }
            }
        }
        if let Some(pending) = completed {
            // Unmasked whole just above; `buf` holds this frame and
            // nothing else (it was pending). `pending` stays set until
            // `decode` hands the frame out, so that the connection keeps
            // to its general path (`has_pending`) until then.
            let mut payload = buf.split_to(buf.len()).freeze();
            payload.advance(pending.header_len);
            self.ready = Some(Frame {
                header: pending.header,
                payload,
            });
        }
        buf.extend_from_slice(rest);
    }

    /// Whether a frame's payload is still arriving, or a frame taken out
    /// by [`FrameDecoder::extend_unmasking`] waits for `decode`: either
    /// way the buffer does not start with the next frame.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The header of a whole, final, uncompressed text or binary frame with
    /// a 7-bit length at the front of `buf`, masked as the role requires
    /// and within the frame limit, with its length; `None` for anything
    /// else (which [`FrameDecoder::peek_complete`] judges). The small
    /// message's path: one compare of the first byte replaces the general
    /// parser's checks, which cost more than unmasking 16 bytes.
    #[inline(always)]
    pub(crate) fn peek_short_data(&self, buf: &[u8]) -> Option<(FrameHeader, usize)> {
        let &[b0, b1] = buf.first_chunk::<2>()?;
        let opcode = match b0 {
            0x81 => OpCode::Text,
            0x82 => OpCode::Binary,
            _ => return None,
        };
        let len = usize::from(b1 & 0x7f);
        let (mask, header_len) = match (self.role, b1 & 0x80 != 0) {
            (Role::Server, true) => (Some(*buf.get(2..6)?.first_chunk::<4>()?), 6),
            (Role::Client, false) => (None, 2),
            _ => return None,
        };
        if len >= 126 || len > self.max_frame_size || buf.len() < header_len + len {
            return None;
        }
        Some((
            FrameHeader {
                fin: true,
                rsv1: false,
                rsv2: false,
                rsv3: false,
                opcode,
                mask,
                payload_len: len as u64,
            },
            header_len,
        ))
    }

    /// Parses and checks the header of a frame that lies whole at the front
    /// of `buf`, without consuming or unmasking anything: the header and its
    /// length, or `None` if the frame is not all there yet.
    #[inline]
    pub(crate) fn peek_complete(
        &self,
        buf: &[u8],
    ) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        Ok(self.parse_header(buf)?.and_then(|p| {
            let total = (p.header_len as u64).checked_add(p.header.payload_len)?;
            (total <= buf.len() as u64).then_some((p.header, p.header_len))
        }))
    }

    /// Parses and checks a header at the front of `buf`.
    #[inline]
    fn parse_header(&self, buf: &[u8]) -> Result<Option<PendingFrame>, ProtocolError> {
        let Some(&[b0, b1]) = buf.first_chunk::<2>() else {
            return Ok(None);
        };
        let bits = b0 & 0x0f;
        let opcode = OpCode::from_bits(bits).ok_or(ProtocolError::ReservedOpCode(bits))?;
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        if b0 & 0x30 != 0 || (rsv1 && !self.allow_rsv1) {
            return Err(ProtocolError::ReservedBits);
        }
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        let rest = buf.get(2..).unwrap_or_default();
        let (payload_len, mut header_len) = match b1 & 0x7f {
            126 => match rest.first_chunk::<2>() {
                Some(b) => (u64::from(u16::from_be_bytes(*b)), 4),
                None => return Ok(None),
            },
            127 => match rest.first_chunk::<8>() {
                Some(b) => (u64::from_be_bytes(*b), 10),
                None => return Ok(None),
            },
            len => (u64::from(len), 2),
        };
        if opcode.is_control() {
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        if payload_len >> 63 != 0 {
            return Err(ProtocolError::InvalidLength);
        }
        if payload_len > self.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                len: payload_len,
                limit: self.max_frame_size,
            });
        }
        let mask = if masked {
            match buf.get(header_len..).and_then(|b| b.first_chunk::<4>()) {
                Some(key) => {
                    header_len += 4;
                    Some(*key)
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some(PendingFrame {
            header: FrameHeader {
                fin,
                rsv1,
                rsv2: false,
                rsv3: false,
                opcode,
                mask,
                payload_len,
            },
            header_len,
            unmasked: 0,
            handed: 0,
        }))
    }
}

/// Gives `buf` room for `room` bytes in all. `bytes`' own `reserve`, when
/// it must allocate, copies the consumed front of the allocation along with
/// the live bytes (up to a whole earlier frame); only the live bytes (the
/// start of the frame) are moved here.
fn make_room(buf: &mut BytesMut, room: usize) {
    let additional = room.saturating_sub(buf.len());
    if buf.capacity() >= room || buf.try_reclaim(additional) {
        return;
    }
    let mut fresh = BytesMut::with_capacity(room);
    fresh.extend_from_slice(buf);
    *buf = fresh;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(role: Role, bytes: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut dec = FrameDecoder::new(role, 1 << 20);
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(f) = dec.decode(&mut buf)? {
            frames.push(f);
        }
        Ok(frames)
    }

    #[test]
    fn rfc_examples() {
        // Section 5.7: unmasked "Hello", masked "Hello", fragmented "Hel"+"lo",
        // an unmasked ping.
        let frames = decode_all(Role::Client, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]).unwrap();
        assert_eq!(&frames[0].payload[..], b"Hello");
        let frames = decode_all(
            Role::Server,
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
        )
        .unwrap();
        assert_eq!(&frames[0].payload[..], b"Hello");
        assert_eq!(frames[0].header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let frames = decode_all(
            Role::Client,
            &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
        )
        .unwrap();
        assert_eq!(frames.len(), 2);
        assert!(!frames[0].header.fin);
        assert_eq!(frames[1].header.opcode, OpCode::Continuation);
        let frames = decode_all(Role::Client, &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]).unwrap();
        assert_eq!(frames[0].header.opcode, OpCode::Ping);
        // 256 bytes and 64 KiB binary messages, unmasked.
        let mut long = vec![0x82, 0x7e, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7u8, 256));
        assert_eq!(
            decode_all(Role::Client, &long).unwrap()[0].payload.len(),
            256
        );
        let mut longer = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        longer.extend(std::iter::repeat_n(7u8, 65536));
        assert_eq!(
            decode_all(Role::Client, &longer).unwrap()[0].payload.len(),
            65536
        );
    }

    #[test]
    fn frame_rules() {
        use ProtocolError::*;
        let cases: &[(&[u8], ProtocolError)] = &[
            (&[0x83, 0x80, 0, 0, 0, 0], ReservedOpCode(3)),
            (&[0x8b, 0x80, 0, 0, 0, 0], ReservedOpCode(0xb)),
            (&[0xc1, 0x80, 0, 0, 0, 0], ReservedBits),
            (&[0xa1, 0x80, 0, 0, 0, 0], ReservedBits),
            (&[0x91, 0x80, 0, 0, 0, 0], ReservedBits),
            (&[0x81, 0x00], UnmaskedClientFrame),
            (&[0x89, 0xfe, 0x00, 0x7e], ControlFrameTooLong),
            (&[0x09, 0x80, 0, 0, 0, 0], FragmentedControlFrame),
            (&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0], InvalidLength),
            (
                &[0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 1],
                FrameTooLarge {
                    len: 0x200001,
                    limit: 1 << 20,
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                decode_all(Role::Server, bytes),
                Err(*expected),
                "{bytes:x?}"
            );
        }
        assert_eq!(
            decode_all(Role::Client, &[0x81, 0x80, 0, 0, 0, 0]),
            Err(MaskedServerFrame)
        );
    }

    /// Masked frames of many sizes, fed in reads of `chunk` bytes through
    /// `extend_unmasking`, with `unmask_partial` between reads when
    /// `peek` is set: every payload must come out as sent, and the partial
    /// views must add up to it.
    fn fused_round_trip(chunk: usize, peek: bool) {
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        for (i, len) in [0usize, 5, 125, 126, 300, 70_000, 3, 1 << 17]
            .into_iter()
            .enumerate()
        {
            let payload: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
            let key = [i as u8, 0x5a, 0xa5, 0x3c];
            FrameHeader::new(OpCode::Binary, true, Some(key), len as u64).encode(&mut wire);
            let start = wire.len();
            wire.extend_from_slice(&payload);
            apply_mask(&mut wire[start..], key, 0);
            sent.push(payload);
        }
        let mut dec = FrameDecoder::new(Role::Server, 1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut partial = Vec::new();
        for piece in wire.chunks(chunk) {
            dec.extend_unmasking(&mut buf, piece);
            loop {
                match dec.decode(&mut buf).unwrap() {
                    Some(frame) => {
                        if peek {
                            assert_eq!(partial, frame.payload[..partial.len()], "chunk {chunk}");
                        }
                        partial.clear();
                        got.push(frame.payload.to_vec());
                    }
                    None => {
                        if peek {
                            partial.extend_from_slice(dec.unmask_partial(&mut buf));
                        }
                        break;
                    }
                }
            }
        }
        assert_eq!(got, sent, "chunk {chunk} peek {peek}");
    }

    #[test]
    fn unmasking_on_the_way_in_yields_the_payloads() {
        for chunk in [1, 7, 100, 4096, 65536, 1 << 20] {
            fused_round_trip(chunk, false);
            fused_round_trip(chunk, true);
        }
    }

    #[test]
    fn partial_unmasking_then_completion() {
        let key = [9, 8, 7, 6];
        let text = b"partial payload here";
        let mut masked = text.to_vec();
        apply_mask(&mut masked, key, 0);
        let mut wire = vec![0x81, 0x80 | text.len() as u8];
        wire.extend_from_slice(&key);
        wire.extend_from_slice(&masked);
        let mut dec = FrameDecoder::new(Role::Server, 1024);
        let mut buf = BytesMut::new();
        let mut seen = Vec::new();
        for chunk in wire.chunks(5) {
            buf.extend_from_slice(chunk);
            match dec.decode(&mut buf).unwrap() {
                Some(frame) => {
                    assert_eq!(&frame.payload[..], text);
                    assert_eq!(seen, &text[..seen.len()]);
                    return;
                }
                None => seen.extend_from_slice(dec.unmask_partial(&mut buf)),
            }
        }
        panic!("frame never completed");
    }

    /// A masked binary frame of `len` payload bytes and its payload.
    fn masked_binary(len: usize, key: [u8; 4]) -> (Vec<u8>, Vec<u8>) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let mut wire = BytesMut::new();
        FrameHeader::new(OpCode::Binary, true, Some(key), len as u64).encode(&mut wire);
        let mut masked = payload.clone();
        apply_mask(&mut masked, key, 0);
        wire.extend_from_slice(&masked);
        (wire.to_vec(), payload)
    }

    #[test]
    fn a_large_frame_is_not_moved_by_the_next_frames_first_bytes() {
        // Read 64 KiB at a time, the read that ends a frame also brings
        // the next one's start. Once the decoder has reserved the whole
        // frame, those bytes must not move it: appending them to a buffer
        // with room for the frame alone made `bytes` grow it and copy the
        // frame again.
        for len in [16 << 10, 300 << 10, 1 << 20] {
            let (mut wire, payload) = masked_binary(len, [1, 2, 3, 4]);
            let (next, _) = masked_binary(len, [5, 6, 7, 8]);
            let frame_len = wire.len();
            wire.extend_from_slice(&next[..8 << 10]);
            let mut dec = FrameDecoder::new(Role::Server, 16 << 20);
            let mut buf = BytesMut::new();
            let mut whole_room_at = None;
            let mut frame = None;
            // A 16 KiB frame straddles two reads too.
            for read in wire.chunks((64 << 10).min(frame_len * 5 / 8)) {
                dec.extend_unmasking(&mut buf, read);
                if let Some(f) = dec.decode(&mut buf).unwrap() {
                    frame = Some(f);
                    break;
                }
                if buf.capacity() >= frame_len {
                    whole_room_at.get_or_insert(buf.as_ptr());
                }
            }
            let frame = frame.expect("the frame completes");
            assert_eq!(&frame.payload[..], &payload[..], "len {len}");
            let start = whole_room_at.expect("the whole frame's room was reserved");
            assert_eq!(
                frame.payload.as_ptr(),
                start.wrapping_add(frame_len - len),
                "len {len}: the frame was moved after its room was reserved"
            );
        }
    }

    #[test]
    fn a_frame_taken_out_comes_first_whatever_is_appended_after_it() {
        // The read that completes a frame brings more than the buffer's
        // room: the frame is taken out, and what follows (this read's
        // tail, a later read, bytes appended straight to the buffer) must
        // come after it, with nothing unmasked twice or skipped.
        let (mut wire, first) = masked_binary(40_000, [1, 2, 3, 4]);
        let (second_wire, second) = masked_binary(3000, [5, 6, 7, 8]);
        let (third_wire, third) = masked_binary(20, [9, 8, 7, 6]);
        let first_len = wire.len();
        wire.extend_from_slice(&second_wire);
        wire.extend_from_slice(&third_wire);
        let mut dec = FrameDecoder::new(Role::Server, 1 << 20);
        let mut buf = BytesMut::new();
        dec.extend_unmasking(&mut buf, &wire[..1000]);
        assert!(dec.decode(&mut buf).unwrap().is_none());
        let room = buf.capacity();
        // Up to 10 bytes past the room: more than fits, less than the frame.
        let (a, rest) = wire[1000..].split_at(room + 10 - 1000);
        dec.extend_unmasking(&mut buf, a);
        assert_eq!(dec.pending_header(), None, "the frame is whole");
        assert!(dec.unmask_partial(&mut buf).is_empty());
        let (b, c) = rest.split_at(5);
        dec.extend_unmasking(&mut buf, b);
        buf.extend_from_slice(c);
        let mut got = Vec::new();
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            got.push(f.payload.to_vec());
        }
        assert!(room + 10 > first_len, "the read completes the first frame");
        assert_eq!(got, [first, second, third]);
        assert!(buf.is_empty());
    }
}
