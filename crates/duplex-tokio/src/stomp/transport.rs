//! What a STOMP connection rides on, reduced to three verbs: receive bytes,
//! send chunks, close. A byte stream (TCP) concatenates the chunks; a
//! message transport (WebSocket, SockJS) sends each chunk as one message,
//! which the drivers arrange to be one STOMP frame (or one heart-beat).

use std::future::Future;
use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::WebSocketStream;

/// How much read-buffer room a byte stream asks for before each read.
const READ_CHUNK: usize = 16 * 1024;

/// A connection carrying STOMP, as the drivers see it.
pub(crate) trait Transport: Send {
    /// The next received bytes; `None` once the peer is gone. Must be
    /// cancel-safe: it is raced against timers and the broker.
    fn recv(&mut self) -> impl Future<Output = Option<io::Result<Bytes>>> + Send;
    /// Writes `chunks`, each a whole frame or heart-beat, and flushes.
    fn send(&mut self, chunks: Vec<Bytes>) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends the connection (after the last `send`). `error` says whether the
    /// STOMP session ended with an `ERROR` frame, for transports whose
    /// close carries a status.
    fn close(&mut self, error: bool) -> impl Future<Output = ()> + Send;
    /// Ends the connection because the server is shutting down (after the
    /// `ERROR` that says so), for transports whose close carries a status:
    /// WebSocket 1001, SockJS 3000. A byte stream just closes.
    fn close_going_away(&mut self) -> impl Future<Output = ()> + Send {
        self.close(true)
    }
}

/// A byte stream: TCP, TLS, a test duplex pipe.
pub(crate) struct ByteStream<S> {
    io: S,
    buf: BytesMut,
}

impl<S> ByteStream<S> {
    pub(crate) fn new(io: S) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for ByteStream<S> {
    async fn recv(&mut self) -> Option<io::Result<Bytes>> {
        self.buf.reserve(READ_CHUNK);
        // `read_buf` is cancel-safe: nothing is lost if another branch wins.
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => None,
            Ok(_) => Some(Ok(self.buf.split().freeze())),
            Err(e) => Some(Err(e)),
        }
    }

    async fn send(&mut self, chunks: Vec<Bytes>) -> io::Result<()> {
        if let [one] = chunks.as_slice() {
            self.io.write_all(one).await?;
        } else {
            let mut all = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in &chunks {
                all.extend_from_slice(c);
            }
            self.io.write_all(&all).await?;
        }
        self.io.flush().await
    }

    async fn close(&mut self, _error: bool) {
        let _ = self.io.shutdown().await;
    }
}

/// A WebSocket carrying one STOMP frame per message (the `v1x.stomp`
/// subprotocols). Frames that are UTF-8 go as text messages (what browser
/// clients expect), others as binary.
pub(crate) struct WebSocketTransport<S>(pub(crate) WebSocketStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for WebSocketTransport<S> {
    async fn recv(&mut self) -> Option<io::Result<Bytes>> {
        match self.0.next().await? {
            Ok(duplex_ws::Message::Text(t)) => Some(Ok(t.into_bytes())),
            Ok(duplex_ws::Message::Binary(b)) => Some(Ok(b)),
            Err(e) => Some(Err(io::Error::other(e))),
        }
    }

    async fn send(&mut self, chunks: Vec<Bytes>) -> io::Result<()> {
        for chunk in chunks {
            // Not a re-check: whether the frame (its body may be binary) is
            // text decides the message kind.
            let message = match duplex_ws::Utf8Bytes::try_from(chunk.clone()) {
                Ok(text) => duplex_ws::Message::Text(text),
                Err(_) => duplex_ws::Message::Binary(chunk),
            };
            self.0.feed(message).await.map_err(io::Error::other)?;
        }
        self.0.flush().await.map_err(io::Error::other)
    }

    async fn close(&mut self, error: bool) {
        let code = if error {
            duplex_ws::CloseCode::PROTOCOL_ERROR
        } else {
            duplex_ws::CloseCode::NORMAL
        };
        let closing = self.0.close_with(code, "");
        // A peer that never answers the close frame is not waited for long.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), closing).await;
    }

    async fn close_going_away(&mut self) {
        let closing = self
            .0
            .close_with(duplex_ws::CloseCode::GOING_AWAY, "server shutting down");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), closing).await;
    }
}

/// A SockJS session carrying one STOMP frame per message. SockJS carries
/// text only: a frame that is not UTF-8 (a binary body) cannot be sent, and
/// ends the connection.
#[cfg(feature = "sockjs")]
pub(crate) struct SockJsTransport(pub(crate) crate::sockjs::SockJsSocket);

#[cfg(feature = "sockjs")]
impl Transport for SockJsTransport {
    async fn recv(&mut self) -> Option<io::Result<Bytes>> {
        match self.0.recv().await? {
            crate::sockjs::Message::Text(t) => Some(Ok(t.into_bytes())),
            crate::sockjs::Message::Binary(b) => Some(Ok(b)),
        }
    }

    async fn send(&mut self, chunks: Vec<Bytes>) -> io::Result<()> {
        for chunk in chunks {
            // Checked, not copied: the frame's buffer becomes the message.
            let text = duplex_ws::Utf8Bytes::try_from(chunk).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a STOMP frame that is not UTF-8 cannot travel over SockJS",
                )
            })?;
            self.0
                .send(crate::sockjs::Message::Text(text))
                .await
                .map_err(io::Error::other)?;
        }
        Ok(())
    }

    async fn close(&mut self, error: bool) {
        let (code, reason) = if error {
            (1002, "STOMP protocol error")
        } else {
            (1000, "Normal closure")
        };
        let _ = self.0.close(code, reason).await;
    }

    async fn close_going_away(&mut self) {
        let _ = self.0.close(3000, "Server shutting down").await;
    }
}
