//! [`TransmitChunks`]: bytes waiting to be written, kept as a queue of chunks so
//! that large payloads given as [`Bytes`] go to the socket without being
//! copied (one `writev` for the frame headers and the payloads).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

use crate::frame::MAX_HEADER_LEN;

/// Bytes to write, in order, as a queue of chunks: frame headers held
/// inline, and shared [`Bytes`] (coalesced small frames, or a payload
/// handed to [`crate::Connection::send`] that was not copied).
///
/// It implements [`Buf`]: an adapter fills `IoSlice`s with
/// [`Buf::chunks_vectored`], writes them with one vectored write, and calls
/// [`Buf::advance`] with what the write accepted, so a partial write resumes
/// exactly where it stopped (tokio-util's `poll_write_buf` does all three).
///
/// ```
/// use bytes::{Buf, Bytes};
/// use duplex_ws::{Config, Connection, Role, TransmitChunks};
///
/// let mut server = Connection::new(Role::Server, Config::default());
/// let payload = Bytes::from(vec![7u8; 16 * 1024]);
/// server.send(payload.clone()).unwrap();
///
/// let mut out = TransmitChunks::new();
/// server.poll_transmit_chunks(&mut out);
/// let mut slices = [std::io::IoSlice::new(&[]); 8];
/// assert_eq!(out.chunks_vectored(&mut slices), 2); // the header, the payload
/// assert_eq!(slices[1].as_ptr(), payload.as_ptr()); // not copied
///
/// // A vectored write took 100 bytes: the rest is still queued, in order.
/// out.advance(100);
/// assert_eq!(out.remaining(), 4 + 16 * 1024 - 100);
/// ```
#[derive(Default)]
pub struct TransmitChunks {
    chunks: VecDeque<Chunk>,
    /// The sum of the chunks' lengths, kept so `remaining` is O(1).
    len: usize,
}

/// One piece of a [`TransmitChunks`]; never empty while queued.
enum Chunk {
    /// A frame header, inline so that a header in front of a shared payload
    /// costs no allocation. `start..end` is what is left to write.
    Header {
        buf: [u8; MAX_HEADER_LEN],
        start: u8,
        end: u8,
    },
    Shared(Bytes),
}

impl Chunk {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Header { buf, start, end } => buf
                .get(usize::from(*start)..usize::from(*end))
                .unwrap_or_default(),
            Self::Shared(b) => b,
        }
    }

    /// Drops the first `n` bytes; `n` is less than the chunk's length.
    fn advance(&mut self, n: usize) {
        match self {
            Self::Header { start, .. } => {
                // n < end - start <= MAX_HEADER_LEN, so it fits in a u8.
                *start = start.saturating_add(u8::try_from(n).unwrap_or(u8::MAX));
            }
            Self::Shared(b) => b.advance(n),
        }
    }
}

impl TransmitChunks {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes left to write.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is left to write.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many chunks (`IoSlice`s for a vectored write) are queued.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Queues `bytes` after what is queued (nothing if it is empty).
    pub fn push_bytes(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            self.chunks.push_back(Chunk::Shared(bytes));
        }
    }

    /// Queues an encoded frame header (`header[..len]`) inline.
    pub(crate) fn push_header(&mut self, buf: [u8; MAX_HEADER_LEN], len: usize) {
        let end = len.min(MAX_HEADER_LEN);
        if end > 0 {
            self.len += end;
            self.chunks.push_back(Chunk::Header {
                buf,
                start: 0,
                // end <= MAX_HEADER_LEN (14).
                end: u8::try_from(end).unwrap_or(0),
            });
        }
    }

    /// Moves everything queued in `other` to the end of this queue.
    pub fn append(&mut self, other: &mut TransmitChunks) {
        if self.chunks.is_empty() {
            // Keeps both allocations: the adapter's queue is reused as the
            // connection's next one.
            std::mem::swap(self, other);
        } else {
            self.len += other.len;
            self.chunks.append(&mut other.chunks);
            other.len = 0;
        }
    }

    /// Copies everything queued to the end of `out` and empties the queue:
    /// the flat form, for writers that cannot write vectored.
    pub fn flatten_into(&mut self, out: &mut impl bytes::BufMut) {
        for chunk in self.chunks.drain(..) {
            out.put_slice(chunk.as_slice());
        }
        self.len = 0;
    }
}

impl Buf for TransmitChunks {
    #[inline]
    fn remaining(&self) -> usize {
        self.len
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        self.chunks.front().map(Chunk::as_slice).unwrap_or_default()
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk.as_slice());
            n += 1;
        }
        n
    }

    /// Drops the first `cnt` bytes (what a write accepted). Advancing past
    /// the end empties the queue rather than panicking.
    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let len = front.as_slice().len();
            if cnt < len {
                front.advance(cnt);
                self.len -= cnt;
                return;
            }
            cnt -= len;
            self.len -= len;
            self.chunks.pop_front();
        }
    }
}

impl std::fmt::Debug for TransmitChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransmitChunks")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        buf[..bytes.len()].copy_from_slice(bytes);
        (buf, bytes.len())
    }

    fn sample() -> TransmitChunks {
        let mut t = TransmitChunks::new();
        let (h, n) = header(b"\x82\x7e\x00\x05");
        t.push_header(h, n);
        t.push_bytes(Bytes::from_static(b"hello"));
        t.push_bytes(Bytes::new());
        t.push_bytes(Bytes::from_static(b"\x81\x01x"));
        t
    }

    const FLAT: &[u8] = b"\x82\x7e\x00\x05hello\x81\x01x";

    #[test]
    fn empty_chunks_are_not_queued() {
        let t = sample();
        assert_eq!(t.chunk_count(), 3);
        assert_eq!(t.len(), FLAT.len());
    }

    #[test]
    fn every_advance_step_resumes_where_it_stopped() {
        for step in 1..=FLAT.len() {
            let mut t = sample();
            let mut got = Vec::new();
            while t.has_remaining() {
                let mut slices = [IoSlice::new(&[]); 8];
                let n = t.chunks_vectored(&mut slices);
                let flat: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
                assert_eq!(flat.len(), t.remaining());
                let take = step.min(flat.len());
                got.extend_from_slice(&flat[..take]);
                t.advance(take);
            }
            assert_eq!(got, FLAT, "step {step}");
            assert_eq!(t.chunk_count(), 0);
        }
    }

    #[test]
    fn few_slots_give_a_prefix() {
        let t = sample();
        let mut slices = [IoSlice::new(&[]); 2];
        assert_eq!(t.chunks_vectored(&mut slices), 2);
        assert_eq!(&*slices[1], b"hello");
    }

    #[test]
    fn advancing_past_the_end_empties() {
        let mut t = sample();
        t.advance(1000);
        assert!(t.is_empty());
        assert_eq!(t.chunk(), b"");
    }

    #[test]
    fn append_and_flatten_keep_the_order() {
        let mut a = sample();
        let mut b = sample();
        a.append(&mut b);
        assert!(b.is_empty());
        let mut out = Vec::new();
        a.flatten_into(&mut out);
        assert_eq!(out, [FLAT, FLAT].concat());
        assert!(a.is_empty());
    }
}
