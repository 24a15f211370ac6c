//! Connection limits per listener: past the limit a new connection gets a
//! short refusal in its protocol (HTTP 503, a STOMP `ERROR` frame) and is
//! closed, and the accept loop goes on; one log line per second of
//! refusals says so.
//!
//! A connection counts from accept until its socket is dropped, so an HTTP
//! connection upgraded to a WebSocket (or kept by an SSE stream) counts for
//! its whole life: the counted socket is what hyper hands to the upgrade.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Default for `--max-connections`: open HTTP connections (WebSockets, SSE
/// streams and long-polls included). Far above what the benchmarks open
/// (25,000 at most) and below what a default `ulimit -n` of 64 Ki allows.
pub(crate) const DEFAULT_MAX_HTTP: usize = 50_000;
/// Default for `--max-stomp-connections`: open STOMP TCP connections.
pub(crate) const DEFAULT_MAX_STOMP: usize = 10_000;

/// Refusals being written at once; past this a refused socket is just
/// closed, so that a flood cannot make the refusals themselves unbounded.
const MAX_REFUSING: usize = 64;
/// How long a refusal may take to write and to see the peer close.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// The HTTP listener's refusal: a complete answer, then the close.
pub(crate) const HTTP_REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 21\r\n\
retry-after: 1\r\n\
connection: close\r\n\r\n\
too many connections\n";

/// The STOMP TCP listener's refusal: an `ERROR` frame a client shows as
/// the reason, then the close.
pub(crate) const STOMP_REFUSAL: &[u8] =
    b"ERROR\ncontent-type:text/plain\nmessage:too many connections\n\n\0";

/// Limits of the listeners of `duplex serve` and `duplex conformance-server`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Limits {
    /// Open HTTP connections at most (WebSockets, SSE and polling
    /// included); past it new connections are answered 503 and closed.
    #[arg(long, default_value_t = DEFAULT_MAX_HTTP)]
    pub(crate) max_connections: usize,
    /// Open STOMP TCP connections at most; past it new connections get an
    /// ERROR frame and are closed.
    #[arg(long, default_value_t = DEFAULT_MAX_STOMP)]
    pub(crate) max_stomp_connections: usize,
}

/// The count of one listener's open connections against its limit.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    listener: &'static str,
    max: usize,
    refusal: &'static [u8],
    open: AtomicUsize,
    refused: AtomicU64,
    refusing: Arc<Semaphore>,
    last_log: Mutex<Option<Instant>>,
}

impl ConnectionLimit {
    /// A limit of `max` open connections on `listener` (a name for the
    /// log), refusing with `refusal`.
    pub(crate) fn new(listener: &'static str, max: usize, refusal: &'static [u8]) -> Self {
        ConnectionLimit {
            inner: Arc::new(Inner {
                listener,
                max,
                refusal,
                open: AtomicUsize::new(0),
                refused: AtomicU64::new(0),
                refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
                last_log: Mutex::new(None),
            }),
        }
    }

    /// Connections open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Counts `tcp` in, or, past the limit, refuses it (in a task of its
    /// own, bounded) and returns `None`. Never waits.
    pub(crate) fn admit(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Counted> {
        let inner = &self.inner;
        let admitted = inner
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < inner.max).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            return Some(Counted {
                io: tcp,
                limit: self.inner.clone(),
            });
        }
        let refused = inner.refused.fetch_add(1, Ordering::Relaxed) + 1;
        self.log_refusal(peer, refused);
        if let Ok(permit) = inner.refusing.clone().try_acquire_owned() {
            let refusal = inner.refusal;
            tokio::spawn(async move {
                let _permit = permit;
                let _ = tokio::time::timeout(REFUSAL_TIME, refuse(tcp, refusal)).await;
            });
        }
        None
    }

    fn log_refusal(&self, peer: SocketAddr, refused: u64) {
        let now = Instant::now();
        let Ok(mut last) = self.inner.last_log.lock() else {
            return;
        };
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            listener = self.inner.listener,
            %peer,
            limit = self.inner.max,
            refused_so_far = refused,
            "connection refused: the limit of {} open connections is reached (logged at most once a second)",
            self.inner.max,
        );
    }
}

/// Writes the refusal, closes the sending side, and reads what the peer
/// still sends until it closes, so that the close is a FIN after the
/// refusal, not a reset that could destroy it.
async fn refuse(mut tcp: TcpStream, refusal: &[u8]) -> io::Result<()> {
    tcp.write_all(refusal).await?;
    tcp.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        let n = tcp.read(&mut sink).await?;
        if n == 0 {
            break;
        }
        left = left.saturating_sub(n);
    }
    Ok(())
}

/// A TCP connection counted against its listener's limit until dropped.
#[derive(Debug)]
pub(crate) struct Counted {
    io: TcpStream,
    limit: Arc<Inner>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.limit.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::ops::Deref for Counted {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.io
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream, SocketAddr) {
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, peer) = listener.accept().await.expect("accept");
        (client, server, peer)
    }

    #[tokio::test]
    async fn past_the_limit_a_connection_gets_the_refusal_and_a_close_and_a_freed_slot_admits_again()
     {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let limit = ConnectionLimit::new("test", 2, HTTP_REFUSAL);
        let (_c1, s1, p1) = pair(&listener).await;
        let (_c2, s2, p2) = pair(&listener).await;
        let first = limit.admit(s1, p1).expect("first admitted");
        let _second = limit.admit(s2, p2).expect("second admitted");
        assert_eq!(limit.open(), 2);

        let (mut c3, s3, p3) = pair(&listener).await;
        assert!(limit.admit(s3, p3).is_none(), "third refused");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c3.read_to_end(&mut answer))
            .await
            .expect("the refusal ends with a close")
            .expect("read");
        assert_eq!(answer, HTTP_REFUSAL);
        assert!(answer.starts_with(b"HTTP/1.1 503 "));

        drop(first);
        assert_eq!(limit.open(), 1);
        let (_c4, s4, p4) = pair(&listener).await;
        let again = limit.admit(s4, p4);
        assert!(again.is_some(), "a freed slot admits again");
        assert_eq!(limit.open(), 2);
    }

    #[test]
    fn the_http_refusal_announces_its_exact_body_length() {
        let text = std::str::from_utf8(HTTP_REFUSAL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
