//! The response body of the SockJS service: a whole body, or a stream of
//! chunks (xhr_streaming, eventsource, htmlfile) fed by the endpoint task.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use duplex_polling::RequestId;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::service::Control;

/// The body of every response a [`super::SockJsService`] writes.
#[derive(Debug)]
pub struct SockJsBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Stream {
        chunks: mpsc::Receiver<Bytes>,
        /// Set until the stream ends normally: dropped before that, the
        /// client went away, and the endpoint hears of it.
        abort: Option<(RequestId, mpsc::UnboundedSender<Control>)>,
    },
}

impl SockJsBody {
    /// A complete body.
    pub fn full(data: impl Into<Bytes>) -> SockJsBody {
        let data = data.into();
        SockJsBody {
            kind: Kind::Full((!data.is_empty()).then_some(data)),
        }
    }

    /// An empty body.
    pub fn empty() -> SockJsBody {
        SockJsBody {
            kind: Kind::Full(None),
        }
    }

    pub(crate) fn stream(
        chunks: mpsc::Receiver<Bytes>,
        request: RequestId,
        control: mpsc::UnboundedSender<Control>,
    ) -> SockJsBody {
        SockJsBody {
            kind: Kind::Stream {
                chunks,
                abort: Some((request, control)),
            },
        }
    }
}

impl Body for SockJsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Stream { chunks, abort } => match chunks.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                Poll::Ready(None) => {
                    *abort = None;
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

impl Drop for SockJsBody {
    fn drop(&mut self) {
        if let Kind::Stream {
            abort: Some((request, control)),
            ..
        } = &mut self.kind
        {
            let _ = control.send(Control::Abort(*request));
        }
    }
}
