//! An in-memory "socket" that replays a workload's bytes forever, so a
//! contender can be driven batch after batch without being rebuilt.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes one read hands out, like one `read(2)` on a busy socket.
pub const READ_CHUNK: usize = 64 << 10;

/// Replays `wire` in a loop. Each read copies at most `max_read` bytes and
/// never crosses the end of `wire` (a short read, as sockets do), so a batch
/// boundary is also a read boundary. Writes are discarded.
#[derive(Debug, Clone)]
pub struct WireReader {
    wire: Arc<[u8]>,
    pos: usize,
    max_read: usize,
}

impl WireReader {
    /// A reader over `wire` handing out at most `max_read` bytes per read.
    pub fn new(wire: Arc<[u8]>, max_read: usize) -> Self {
        assert!(!wire.is_empty() && max_read > 0);
        Self {
            wire,
            pos: 0,
            max_read,
        }
    }

    /// The next bytes "received", at most `limit` of them (and at least
    /// one when `limit` is not zero).
    #[inline]
    pub fn next_chunk(&mut self, limit: usize) -> &[u8] {
        let start = self.pos;
        let end = (start + limit.min(self.max_read)).min(self.wire.len());
        self.pos = if end == self.wire.len() { 0 } else { end };
        &self.wire[start..end]
    }
}

impl io::Read for WireReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.next_chunk(buf.len());
        let n = chunk.len();
        buf[..n].copy_from_slice(chunk);
        Ok(n)
    }
}

impl io::Write for WireReader {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for WireReader {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let chunk = this.next_chunk(buf.remaining());
        buf.put_slice(chunk);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WireReader {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_in_a_loop_without_crossing_the_end() {
        let mut r = WireReader::new(Arc::from(&b"abcdefg"[..]), 3);
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(r.next_chunk(usize::MAX).to_vec());
        }
        let expect: [&[u8]; 6] = [b"abc", b"def", b"g", b"abc", b"def", b"g"];
        assert_eq!(seen, expect);
        assert_eq!(r.next_chunk(2), b"ab");
    }
}
