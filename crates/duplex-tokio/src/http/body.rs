//! [`HttpBody`]: the body of every response the driver writes, a whole
//! body or a stream of chunks (SockJS xhr_streaming, eventsource and
//! htmlfile, Server-Sent Events) fed by the driver as the endpoint
//! transmits them.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Called when a streaming body is dropped before its end: the client
/// went away, and the endpoint must hear of it.
pub(crate) type OnAbort = Box<dyn FnOnce() + Send + Sync>;

/// The body of every response the HTTP driver writes (Engine.IO, SockJS
/// and Server-Sent Events alike): a whole body, or a stream of chunks.
pub struct HttpBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Stream {
        chunks: mpsc::Receiver<Bytes>,
        /// Set until the stream ends normally.
        on_abort: Option<OnAbort>,
    },
}

impl std::fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Full(data) => f
                .debug_struct("HttpBody")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Stream { .. } => f.debug_struct("HttpBody").finish_non_exhaustive(),
        }
    }
}

impl HttpBody {
    /// A complete body.
    pub fn full(data: impl Into<Bytes>) -> HttpBody {
        let data = data.into();
        HttpBody {
            kind: Kind::Full((!data.is_empty()).then_some(data)),
        }
    }

    /// An empty body.
    pub fn empty() -> HttpBody {
        HttpBody {
            kind: Kind::Full(None),
        }
    }

    /// The whole body, or the body back if it is a stream.
    pub(crate) fn into_bytes(mut self) -> Result<Bytes, HttpBody> {
        match std::mem::replace(&mut self.kind, Kind::Full(None)) {
            Kind::Full(data) => Ok(data.unwrap_or_default()),
            kind @ Kind::Stream { .. } => Err(HttpBody { kind }),
        }
    }

    pub(crate) fn stream(chunks: mpsc::Receiver<Bytes>, on_abort: OnAbort) -> HttpBody {
        HttpBody {
            kind: Kind::Stream {
                chunks,
                on_abort: Some(on_abort),
            },
        }
    }
}

impl Default for HttpBody {
    fn default() -> Self {
        HttpBody::empty()
    }
}

impl From<Bytes> for HttpBody {
    fn from(data: Bytes) -> Self {
        HttpBody::full(data)
    }
}

impl Body for HttpBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Stream { chunks, on_abort } => match chunks.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                Poll::Ready(None) => {
                    // The endpoint ended the stream: not an abort.
                    *on_abort = None;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream { .. } => SizeHint::default(),
        }
    }
}

impl Drop for HttpBody {
    fn drop(&mut self) {
        if let Kind::Stream { on_abort, .. } = &mut self.kind {
            if let Some(f) = on_abort.take() {
                f();
            }
        }
    }
}
