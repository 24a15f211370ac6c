//! `WebSocketStream` writes what the connection queues, uncopied payloads
//! included, through a transport that accepts only a few bytes per write
//! and is not ready every other time: every byte arrives once and in
//! order, with vectored writes and without.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use duplex_tokio::ws::{CloseCode, Config, Connection, Event, Message, Role};
use duplex_tokio::{StreamConfig, WebSocketStream};
use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// A transport that writes at most `step` bytes per call (cycling through
/// a few sizes, across slices when vectored) and returns `Pending` before
/// every other write.
struct Trickle {
    inner: DuplexStream,
    vectored: bool,
    steps: &'static [usize],
    calls: usize,
    /// Vectored writes that carried more than one slice.
    multi_slice_writes: Arc<AtomicUsize>,
}

impl Trickle {
    fn budget(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(2) {
            cx.waker().wake_by_ref();
            return None;
        }
        Some(self.steps[self.calls / 2 % self.steps.len()])
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(step) = this.budget(cx) else {
            return Poll::Pending;
        };
        let n = step.min(buf.len());
        Pin::new(&mut this.inner).poll_write(cx, &buf[..n])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        assert!(this.vectored, "vectored write on a non-vectored transport");
        let Some(step) = this.budget(cx) else {
            return Poll::Pending;
        };
        // Gather up to `step` bytes across the slices, as writev does.
        let mut gathered = Vec::new();
        for slice in bufs {
            let take = (step - gathered.len()).min(slice.len());
            gathered.extend_from_slice(&slice[..take]);
            if gathered.len() == step {
                break;
            }
        }
        if bufs.iter().filter(|s| !s.is_empty()).count() > 1 {
            this.multi_slice_writes.fetch_add(1, Ordering::Relaxed);
        }
        Pin::new(&mut this.inner).poll_write(cx, &gathered)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

fn messages() -> Vec<Message> {
    let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    vec![
        Message::from("small text"),
        Message::Binary(Bytes::from(large)),
        Message::from("é".repeat(3000)),
        Message::Binary(Bytes::from_static(b"tiny")),
        Message::Binary(Bytes::from(vec![9u8; 70_000])),
        Message::from(String::new()),
    ]
}

/// The peer, as a sans-IO client over the raw other end: collects the
/// messages (a ping as the text `ping:<payload>`, to check where it came)
/// and answers pings and the close handshake.
async fn peer(mut io: DuplexStream) -> (Vec<Message>, Option<u16>) {
    let mut conn = Connection::new(Role::Client, Config::default());
    let mut received = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = io.read(&mut buf).await.expect("the peer reads");
        if n == 0 {
            return (received, None);
        }
        conn.receive(&buf[..n]);
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => received.push(m),
                Event::Ping(p) => {
                    let text = format!("ping:{}", String::from_utf8_lossy(&p));
                    received.push(Message::from(text));
                    let mut out = BytesMut::new();
                    conn.poll_transmit(&mut out);
                    io.write_all(&out).await.expect("the pong goes out");
                }
                Event::Close(frame) => {
                    let mut out = BytesMut::new();
                    conn.poll_transmit(&mut out);
                    io.write_all(&out).await.expect("the close reply goes out");
                    return (received, frame.map(|f| f.code.0));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

async fn run(vectored: bool, steps: &'static [usize]) -> usize {
    let (ours, theirs) = tokio::io::duplex(1024);
    let multi_slice_writes = Arc::new(AtomicUsize::new(0));
    let io = Trickle {
        inner: ours,
        vectored,
        steps,
        calls: 0,
        multi_slice_writes: multi_slice_writes.clone(),
    };
    let mut ws = WebSocketStream::from_parts(
        io,
        Connection::new(Role::Server, Config::default()),
        &[],
        StreamConfig::default(),
    );
    let peer = tokio::spawn(peer(theirs));
    let sent = messages();
    let test = async {
        for m in sent.clone() {
            ws.feed(m).await.expect("send");
        }
        ws.connection().ping(b"between").expect("ping");
        ws.send(Message::from("last"))
            .await
            .expect("send and flush");
        ws.close_with(CloseCode::NORMAL, "bye")
            .await
            .expect("close");
        peer.await.expect("the peer task ends")
    };
    let (received, code) = tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test timed out");
    let mut expected = sent;
    expected.push(Message::from("ping:between"));
    expected.push(Message::from("last"));
    assert_eq!(received.len(), expected.len());
    for (got, want) in received.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    assert_eq!(code, Some(1000));
    multi_slice_writes.load(Ordering::Relaxed)
}

#[tokio::test]
async fn vectored_writes_of_a_few_bytes_deliver_every_message() {
    let multi = run(true, &[1, 7, 3, 100, 13, 4096]).await;
    assert!(
        multi > 0,
        "headers and payloads went out in vectored writes"
    );
}

#[tokio::test]
async fn one_byte_vectored_writes_deliver_every_message() {
    run(true, &[1]).await;
}

#[tokio::test]
async fn flat_writes_of_a_few_bytes_deliver_every_message() {
    assert_eq!(run(false, &[1, 7, 3, 100, 13, 4096]).await, 0);
}
