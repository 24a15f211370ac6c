//! The frame layer of RFC 6455 section 5: opcodes, the frame header and its
//! encoding. [`crate::FrameDecoder`] parses frames out of a byte stream.

use bytes::{BufMut, Bytes};

/// A frame's opcode (RFC 6455 section 5.2). Reserved values never get this
/// far: the decoder rejects them with 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a later fragment of a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: the close control frame.
    Close,
    /// 0x9: the ping control frame.
    Ping,
    /// 0xA: the pong control frame.
    Pong,
}

impl OpCode {
    /// Decodes the low 4 bits of the first header byte; `None` for the
    /// reserved opcodes 0x3-0x7 and 0xB-0xF.
    #[inline]
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    #[inline]
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes and never fragmented.
    #[inline]
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The largest payload a control frame may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// One frame header as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of a message.
    pub fin: bool,
    /// RSV1: per-message compression when permessage-deflate is agreed.
    pub rsv1: bool,
    /// RSV2, reserved for extensions.
    pub rsv2: bool,
    /// RSV3, reserved for extensions.
    pub rsv3: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key; present exactly on frames sent by a client.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header for an unfragmented-or-final frame with no RSV bits.
    pub fn new(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, payload_len: u64) -> Self {
        Self {
            fin,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len,
        }
    }

    /// The number of bytes [`FrameHeader::encode`] writes.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        if self.mask.is_some() { len + 4 } else { len }
    }

    /// Appends the header to `out`.
    #[inline]
    pub fn encode(&self, out: &mut impl BufMut) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = self.encode_to_array(&mut buf);
        out.put_slice(buf.get(..n).unwrap_or_default());
    }

    /// Writes the header into a stack buffer and returns its length; the
    /// fast path for callers that write header and payload separately.
    #[inline]
    pub fn encode_to_array(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        buf[0] = (u8::from(self.fin) << 7)
            | (u8::from(self.rsv1) << 6)
            | (u8::from(self.rsv2) << 5)
            | (u8::from(self.rsv3) << 4)
            | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                buf[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xffff => {
                buf[1] = mask_bit | 126;
                buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                buf[1] = mask_bit | 127;
                buf[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            // n is 2, 4 or 10 here, so the key always fits.
            if let Some(slot) = buf.get_mut(n..n + 4) {
                slot.copy_from_slice(&key);
                n += 4;
            }
        }
        n
    }
}

/// A whole frame: its header and its payload, already unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header as received (the mask key, if any, has been applied).
    pub header: FrameHeader,
    /// The unmasked payload, cut from the read buffer without copying.
    pub payload: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_length_form() {
        for (len, expected) in [(0u64, 2usize), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let h = FrameHeader::new(OpCode::Binary, true, None, len);
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(out.len(), expected);
            assert_eq!(h.encoded_len(), expected);
            assert_eq!(out[0], 0x82);
        }
        let h = FrameHeader::new(OpCode::Text, false, Some([1, 2, 3, 4]), 5);
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0x01, 0x85, 1, 2, 3, 4]);
    }

    #[test]
    fn opcode_round_trip_and_reserved() {
        for bits in 0..16u8 {
            match OpCode::from_bits(bits) {
                Some(op) => assert_eq!(op.bits(), bits),
                None => assert!(matches!(bits, 3..=7 | 0xB..=0xF)),
            }
        }
    }
}
