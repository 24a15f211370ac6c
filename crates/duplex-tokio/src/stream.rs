//! [`WebSocketStream`]: a [`duplex_ws::Connection`] driven over any tokio
//! `AsyncRead + AsyncWrite`, as a `Stream` of messages and a `Sink` of
//! messages. It moves bytes and timers only; every protocol decision is the
//! connection's.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use duplex_ws::{CloseCode, CloseFrame, Connection, Event, Message, State, TransmitChunks};
use futures_core::Stream;
use futures_sink::Sink;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

use crate::Error;

/// Adapter settings that are about IO, not about the protocol.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    /// The sink reports not-ready while this many bytes wait to be written,
    /// and the stream stops reading while this many bytes of the
    /// connection's own answers (pongs, close replies) wait, so that a peer
    /// that pings without reading cannot grow the write buffer without
    /// bound. Default 64 KiB.
    pub write_high_water: usize,
    /// How much read-buffer room to ask for before each read. Default 8 KiB.
    pub read_chunk: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            write_high_water: 64 * 1024,
            read_chunk: 8 * 1024,
        }
    }
}

/// Which half of a possibly split stream is polling: the [`Stream`] side
/// (and the inherent methods) or the [`Sink`] side.
#[derive(Debug, Clone, Copy)]
enum Half {
    Reader,
    Writer,
}

/// The tasks waiting on the transport, one slot per half.
///
/// Both halves of a split stream read and write the same transport: the
/// reader flushes pongs and close replies, and whatever the writer queued,
/// the writer flushes what it sent, and closing reads until the peer's
/// close frame. A tokio socket keeps one waker per direction, the last one
/// it was polled with, so polling it with each half's own waker would leave
/// the other half asleep for good. The transport and the timer are polled
/// with one waker that wakes both slots instead.
#[derive(Debug, Default)]
struct Waiters {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Waiters {
    fn slot(&self, half: Half) -> &AtomicWaker {
        match half {
            Half::Reader => &self.reader,
            Half::Writer => &self.writer,
        }
    }
}

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // A slot is emptied when it is woken or when its half stops
        // waiting, so a half that waits for nothing is not disturbed.
        self.reader.wake();
        self.writer.wake();
    }
}

/// A WebSocket over `S`, after the opening handshake.
///
/// As a [`Stream`] it yields received messages (pings are answered by the
/// connection) and ends after the close handshake; as a [`Sink`] it sends
/// messages. Closing the sink runs the close handshake with 1000.
///
/// It may be split (`futures_util::StreamExt::split`) into a reader task and
/// a writer task: whichever of them moves bytes, the other is woken when the
/// transport is ready for it.
pub struct WebSocketStream<S> {
    io: S,
    /// The tasks of the two halves, woken together by `waker`.
    waiters: Arc<Waiters>,
    /// The waker the transport and the timer are polled with.
    waker: Waker,
    conn: Connection,
    config: StreamConfig,
    /// Bytes taken from the connection and not yet written, flattened
    /// (for transports that cannot write vectored).
    out: BytesMut,
    /// Bytes taken from the connection and not yet written, as chunks whose
    /// large payloads were never copied (for transports that write vectored).
    chunks: TransmitChunks,
    /// How many of the unwritten bytes were queued by the sink (with any
    /// answers queued before them): the reader does not wait on these, or a
    /// split reader would stop reading while its writer's large message
    /// waits for a peer that is itself blocked writing to us.
    sent_unwritten: usize,
    timer: Option<Pin<Box<Sleep>>>,
    /// The peer's close frame, once received.
    peer_close: Option<Option<CloseFrame>>,
    /// A protocol failure to report once the close frame is out.
    failure: Option<duplex_ws::ProtocolError>,
    read_eof: bool,
    shutdown_done: bool,
}

impl<S> std::fmt::Debug for WebSocketStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketStream")
            .field("conn", &self.conn)
            .field("unwritten", &(self.out.len() + self.chunks.len()))
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Wraps a transport whose handshake is done. `leftover` holds bytes
    /// read after the handshake head (frames a peer pipelined).
    pub fn from_parts(io: S, mut conn: Connection, leftover: &[u8], config: StreamConfig) -> Self {
        conn.receive(leftover);
        let waiters = Arc::new(Waiters::default());
        Self {
            io,
            waker: Waker::from(Arc::clone(&waiters)),
            waiters,
            conn,
            config,
            out: BytesMut::new(),
            chunks: TransmitChunks::new(),
            sent_unwritten: 0,
            timer: None,
            peer_close: None,
            failure: None,
            read_eof: false,
            shutdown_done: false,
        }
    }

    /// The sans-IO connection, for frame-level sends and inspection.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The underlying transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The peer's close frame, once the stream has ended with one
    /// (`Some(None)`: a close frame without a status code).
    pub fn peer_close(&self) -> Option<&Option<CloseFrame>> {
        self.peer_close.as_ref()
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.ping(payload)?;
        std::future::poll_fn(|cx| self.poll_as(Half::Reader, cx, Self::poll_write_out)).await
    }

    /// Starts the close handshake with `code` and `reason`, then drives the
    /// connection until it ends (messages still arriving are dropped).
    pub async fn close_with(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.conn.state() == State::Open {
            self.conn.close(code, reason)?;
        }
        std::future::poll_fn(|cx| self.poll_as(Half::Reader, cx, Self::poll_until_closed)).await
    }

    /// Runs `poll` on behalf of `half`: the half's task is registered in its
    /// slot and the transport sees the shared waker, so that the task is
    /// woken even if the other half polls the transport after it. The slot
    /// is emptied once `poll` is done waiting.
    fn poll_as<T>(
        &mut self,
        half: Half,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Self, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.waiters.slot(half).register(cx.waker());
        let waker = self.waker.clone();
        let out = poll(self, &mut Context::from_waker(&waker));
        if out.is_ready() {
            drop(self.waiters.slot(half).take());
        }
        out
    }

    /// Takes what the connection has to send: as chunks when the transport
    /// writes vectored (a TCP stream does) and payloads wait uncopied, so
    /// that large payloads go out uncopied; flattened into one buffer
    /// otherwise, since writing a header on its own would cost a packet or
    /// a TLS record. Small messages only (their frames already copied into
    /// the connection's buffer) take that buffer whole: a chunk queue for
    /// them cost an allocation per message once idle connections gave
    /// theirs back. Chunks still waiting keep later bytes behind them.
    fn take_transmit(&mut self) {
        if self.io.is_write_vectored()
            && (self.conn.has_shared_payloads() || !self.chunks.is_empty())
        {
            self.conn.poll_transmit_chunks(&mut self.chunks);
        } else {
            self.conn.poll_transmit(&mut self.out);
        }
    }

    /// Bytes taken from the connection and not yet written.
    fn unwritten(&self) -> usize {
        self.out.len() + self.chunks.len()
    }

    /// Writes everything the connection has to send.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.take_transmit();
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
            }
            self.out.advance(n);
            self.sent_unwritten = self.sent_unwritten.saturating_sub(n);
        }
        while !self.chunks.is_empty() {
            // Up to 64 slices a call, as tokio-util's `poll_write_buf`;
            // whatever a partial write leaves goes out on the next turn.
            let mut slices = [IoSlice::new(&[]); 64];
            let count = self.chunks.chunks_vectored(&mut slices);
            let written = slices.get(..count).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, written))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
            }
            self.chunks.advance(n);
            self.sent_unwritten = self.sent_unwritten.saturating_sub(n);
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Reads once into the connection. `Ready(Ok(false))` is end of file.
    fn poll_read_in(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        let chunk = self.config.read_chunk;
        let buf = self.conn.read_buf();
        let n = if buf.is_empty() {
            // Nothing waiting in the buffer: an idle connection should
            // hold no read buffer, so this read goes through the stack,
            // the buffer is allocated only once bytes have arrived, and
            // one left empty is given back when the read has to wait (it
            // was 8 KiB per idle connection once the first pong was read).
            // Uninitialised: zeroing 2 KiB before every read was some 2 %
            // of the instructions per echoed Socket.IO event.
            let mut first = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
            let mut read = tokio::io::ReadBuf::uninit(&mut first);
            if Pin::new(&mut self.io)
                .poll_read(cx, &mut read)?
                .is_pending()
            {
                self.release_idle_buffers();
                return Poll::Pending;
            }
            self.conn.receive(read.filled());
            read.filled().len()
        } else {
            if buf.capacity() - buf.len() < chunk / 2 {
                buf.reserve(chunk);
            }
            ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.io),
                cx,
                buf
            ))?
        };
        if n == 0 {
            self.read_eof = true;
            self.conn.receive_eof();
        }
        Poll::Ready(Ok(n != 0))
    }

    /// Gives back the buffers kept from the last messages once they are
    /// empty: the connection's, and the written-out queues here (their
    /// capacity stayed with an idle connection, issue #19). Called when a
    /// read has to wait: a connection that keeps receiving allocates them
    /// once per burst; one that answers a message at a time (an echo)
    /// once per message, which the echo benchmarks measured as within
    /// their noise (docs/benchmarks-protocols.md).
    fn release_idle_buffers(&mut self) {
        self.conn.release_idle_buffers();
        if self.chunks.is_empty() {
            self.chunks = TransmitChunks::new();
        }
        if self.out.is_empty() && self.out.capacity() > 0 {
            self.out = BytesMut::new();
        }
    }

    /// Tells the connection the time and arms the timer it asks for.
    fn poll_timer(&mut self, cx: &mut Context<'_>) {
        loop {
            self.conn.handle_timeout(Instant::now());
            let Some(deadline) = self.conn.poll_timeout() else {
                self.timer = None;
                return;
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            match &mut self.timer {
                Some(t) if t.deadline() == deadline => {}
                slot => *slot = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            match self.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => continue,
                _ => return,
            }
        }
    }

    /// Writes what is pending and, once the connection says so, shuts the
    /// transport down. `Ready` when the connection is over.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_write_out(cx))?;
        if !self.shutdown_done {
            ready!(Pin::new(&mut self.io).poll_shutdown(cx))?;
            self.shutdown_done = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Drives the connection until its end: reads (discarding messages),
    /// writes, and honours the close timeout.
    fn poll_until_closed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match ready!(self.poll_next_message(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(Error::Protocol(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        match ready!(self.poll_next_inner(cx)) {
            // Once the peer's close frame is in, the peer may reset the
            // transport before our reply lands; the handshake is over for
            // it, so that is the end of the stream, not an error.
            Some(Err(Error::Io(_))) if self.peer_close.is_some() => Poll::Ready(None),
            other => Poll::Ready(other),
        }
    }

    fn poll_next_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::Message(m) => return Poll::Ready(Some(Ok(m))),
                    Event::Close(frame) => self.peer_close = Some(frame),
                    Event::Failed(e) => self.failure = Some(e),
                    Event::Ping(_) | Event::Pong(_) | Event::Fragment { .. } => {}
                }
            }
            // Answers (pongs, close replies) go out even if nobody sends.
            if let Poll::Ready(Err(e)) = self.poll_write_out(cx) {
                return Poll::Ready(Some(Err(e)));
            }
            // A peer that sends pings but never reads would otherwise grow
            // our write buffer without bound: stop reading until our
            // answers drain (the pending write has registered the waker).
            // What the sink queued does not count: the sink has its own
            // back-pressure, and a peer may be waiting for us to read
            // before it reads that.
            if self.unwritten().saturating_sub(self.sent_unwritten) > self.config.write_high_water {
                return Poll::Pending;
            }
            if self.conn.should_close_transport() {
                if let Err(e) = ready!(self.poll_finish(cx)) {
                    return Poll::Ready(Some(Err(e)));
                }
                return Poll::Ready(self.failure.take().map(|e| Err(Error::Protocol(e))));
            }
            if self.read_eof {
                // EOF before the close handshake finished: an abnormal
                // closure (1006) as far as the application is concerned.
                return Poll::Ready(None);
            }
            self.poll_timer(cx);
            if self.conn.should_close_transport() {
                continue;
            }
            match ready!(self.poll_read_in(cx)) {
                Ok(_) => continue,
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_as(Half::Reader, cx, Self::poll_next_message)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.unwritten() > this.config.write_high_water {
            ready!(this.poll_as(Half::Writer, cx, Self::poll_write_out))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        let this = self.get_mut();
        // `send` keeps a large payload's `Bytes` as they are.
        this.conn.send(item)?;
        this.take_transmit();
        this.sent_unwritten = this.unwritten();
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut()
            .poll_as(Half::Writer, cx, Self::poll_write_out)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.conn.state() == State::Open {
            this.conn.close(CloseCode::NORMAL, "")?;
        }
        this.poll_as(Half::Writer, cx, Self::poll_until_closed)
    }
}
