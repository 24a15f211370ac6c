//! The workloads: batches of masked client frames, and the digest their
//! payloads must produce once decoded.

use std::sync::Arc;

use duplex_ws::{FrameHeader, OpCode, apply_mask};

/// One benchmark workload: the payload size and kind of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 16-byte masked text frames (ASCII, like a short chat message).
    Text16,
    /// 125-byte masked text frames, the largest with a 7-bit length.
    Text125,
    /// 16 KiB masked binary frames.
    Binary16K,
    /// 1 MiB masked binary frames.
    Binary1M,
}

impl Kind {
    /// Every workload, in report order.
    pub const ALL: [Kind; 4] = [Kind::Text16, Kind::Text125, Kind::Binary16K, Kind::Binary1M];

    /// A short name for reports and benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text16 => "text_16B",
            Kind::Text125 => "text_125B",
            Kind::Binary16K => "binary_16KiB",
            Kind::Binary1M => "binary_1MiB",
        }
    }

    /// The payload length of every frame.
    pub fn payload_len(self) -> usize {
        match self {
            Kind::Text16 => 16,
            Kind::Text125 => 125,
            Kind::Binary16K => 16 << 10,
            Kind::Binary1M => 1 << 20,
        }
    }

    /// Whether the frames are text (UTF-8 validated) rather than binary.
    pub fn is_text(self) -> bool {
        matches!(self, Kind::Text16 | Kind::Text125)
    }

    /// Frames per benchmark batch: enough to amortise per-batch costs,
    /// few enough that the wire bytes stay within the L3 cache (4 MiB at
    /// most).
    pub fn batch_frames(self) -> usize {
        match self {
            Kind::Text16 => 4096,
            Kind::Text125 => 1024,
            Kind::Binary16K => 64,
            Kind::Binary1M => 4,
        }
    }
}

/// What a batch of decoded payloads must add up to: how many, how many
/// bytes, and a hash of their contents in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// Payloads seen.
    pub frames: u64,
    /// Payload bytes seen.
    pub bytes: u64,
    /// FNV-1a over every payload byte, with each payload's length mixed in.
    pub hash: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Self {
            frames: 0,
            bytes: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl Digest {
    /// Adds one payload.
    pub fn add(&mut self, payload: &[u8]) {
        const PRIME: u64 = 0x0100_0000_01b3;
        self.frames += 1;
        self.bytes += payload.len() as u64;
        let mut h = self.hash ^ payload.len() as u64;
        h = h.wrapping_mul(PRIME);
        for &b in payload {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
        self.hash = h;
    }
}

/// A batch of masked client frames, as a server reads them off a socket.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Which workload this is.
    pub kind: Kind,
    /// The frames back to back, as they arrive on the wire.
    pub wire: Arc<[u8]>,
    /// How many frames (each one a whole message) `wire` holds.
    pub frames: usize,
    /// The payload bytes in `wire`, all frames together.
    pub payload_bytes: u64,
    /// The digest of the unmasked payloads, in order.
    pub expected: Digest,
}

impl Workload {
    /// `frames` frames of `kind`, each with its own payload and masking
    /// key, from a fixed seed (so every run measures the same bytes).
    pub fn new(kind: Kind, frames: usize) -> Self {
        let len = kind.payload_len();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ len as u64);
        let mut wire = Vec::with_capacity(frames * (len + 14));
        let mut expected = Digest::default();
        let opcode = if kind.is_text() {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        let mut payload = vec![0u8; len];
        for _ in 0..frames {
            for b in payload.iter_mut() {
                let r = rng.next() as u8;
                // Printable ASCII for text: what chat and JSON messages are.
                *b = if kind.is_text() { b' ' + r % 95 } else { r };
            }
            expected.add(&payload);
            let key = (rng.next() as u32).to_le_bytes();
            FrameHeader::new(opcode, true, Some(key), len as u64).encode(&mut wire);
            let start = wire.len();
            wire.extend_from_slice(&payload);
            apply_mask(&mut wire[start..], key, 0);
        }
        Self {
            kind,
            wire: wire.into(),
            frames,
            payload_bytes: (frames * len) as u64,
            expected,
        }
    }

    /// The standard batch for `kind` ([`Kind::batch_frames`] frames).
    pub fn batch(kind: Kind) -> Self {
        Self::new(kind, kind.batch_frames())
    }
}

/// A small deterministic generator; the harness needs repeatable bytes,
/// not good randomness.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
