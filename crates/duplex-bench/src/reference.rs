//! The reference decoder: the limit the others are held to (issue #19).
//!
//! It does only what no server decoder can skip: copy each read into its
//! own buffer (the read buffer growing once, to the whole frame, when a
//! header announces more than it holds), find the payload, unmask it in
//! place a word at a time and, for text, validate UTF-8 (std's ASCII check
//! when short, simdutf8). It
//! trusts the workload: no frame rules, no limits, no control frames, no
//! fragmentation, no error handling beyond a panic. A decoder that does all
//! of those and comes close to it has little left to gain.

use crate::contenders::Decode;
use crate::wire::{READ_CHUNK, WireReader};

/// See the module documentation.
#[derive(Debug)]
pub struct Reference {
    reader: WireReader,
    buf: Vec<u8>,
    /// Where the next frame starts in `buf`.
    start: usize,
}

/// The header at the front of `buf`: its length, the payload's length,
/// whether the frame is text, and the masking key; `None` if incomplete.
#[inline(always)]
fn header(buf: &[u8]) -> Option<(usize, usize, bool, [u8; 4])> {
    let &[b0, b1] = buf.first_chunk::<2>()?;
    let (len, at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(*buf.get(2..)?.first_chunk()?)),
            4,
        ),
        127 => (
            u64::from_be_bytes(*buf.get(2..)?.first_chunk()?) as usize,
            10,
        ),
        len => (usize::from(len), 2),
    };
    let key = *buf.get(at..)?.first_chunk::<4>()?;
    Some((at + 4, len, b0 & 0x0f == 1, key))
}

/// XORs `payload` with `key`, eight bytes at a time.
#[inline(always)]
fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let half = u64::from(u32::from_ne_bytes(key));
    let word = half | (half << 32);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let plain = u64::from_ne_bytes(chunk.try_into().unwrap_or_default()) ^ word;
        chunk.copy_from_slice(&plain.to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(word.to_ne_bytes()) {
        *byte ^= k;
    }
}

impl Decode for Reference {
    const NAME: &'static str = "reference";

    fn new(reader: WireReader) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            start: 0,
        }
    }

    #[inline]
    fn decode<F: FnMut(&[u8])>(&mut self, messages: usize, mut sink: F) {
        let mut done = 0;
        while done < messages {
            let unread = &mut self.buf[self.start..];
            let parsed = header(unread);
            if let Some((at, len, text, key)) = parsed {
                if let Some(payload) = unread.get_mut(at..at + len) {
                    unmask(payload, key);
                    // std's ASCII check is the cheapest below a few words; simdutf8
                    // past them.
                    let ascii = payload.len() < 32 && payload.is_ascii();
                    assert!(!text || ascii || simdutf8::basic::from_utf8(payload).is_ok());
                    sink(payload);
                    self.start += at + len;
                    done += 1;
                    continue;
                }
            }
            // Keep only the partial frame (at most one read), at the front.
            self.buf.drain(..self.start);
            self.start = 0;
            if let Some((at, len, ..)) = parsed {
                self.buf.reserve((at + len).saturating_sub(self.buf.len()));
            }
            self.buf
                .extend_from_slice(self.reader.next_chunk(READ_CHUNK));
        }
    }
}
