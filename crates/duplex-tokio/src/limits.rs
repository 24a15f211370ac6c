//! [`HttpLimits`]: the bounds on requests that every HTTP/1.1 connection
//! served through duplex-tokio applies, upgrade requests included: heads
//! with the same defaults as the raw WebSocket handshake, and the time a
//! request body may take to arrive.

use std::time::Duration;

use bytes::Bytes;
use duplex_ws::handshake::HandshakeLimits;
use hyper::body::Body;
use hyper::server::conn::http1;

use crate::Error;
use crate::http::{BodyFailure, read_limited};

/// Bounds on HTTP/1.1 request heads, for every endpoint served through
/// hyper (WebSocket upgrades, Engine.IO, Socket.IO, SockJS, SSE, polling).
///
/// hyper's own bounds are far larger (about 400 KiB of head, 100 headers,
/// 30 s) than what [`accept`](crate::accept) allows on a raw transport, so
/// a WebSocket upgrade through hyper would take a head the raw handshake
/// refuses. Build every connection with [`HttpLimits::http1_builder`]:
///
/// * a head over [`max_head_size`](Self::max_head_size) bytes, or with more
///   than [`max_headers`](Self::max_headers) header lines, is answered
///   `431 Request Header Fields Too Large` and the connection closed;
/// * a head that has not arrived within
///   [`header_read_timeout`](Self::header_read_timeout) closes the
///   connection without an answer (a client that trickles its head holds
///   nothing for long);
/// * a request body that has not arrived within
///   [`body_read_timeout`](Self::body_read_timeout) is answered
///   `408 Request Timeout` and the connection closed: the services of this
///   crate ([`PollingService`](crate::polling::PollingService) under
///   Engine.IO, Socket.IO, SockJS and SSE) read bodies that way, a router of
///   one's own with [`HttpLimits::read_body`];
/// * the size of a body is the endpoint's to bound, as its protocol says
///   (Engine.IO's `max_http_buffer_size`, 1,000,000 bytes, answered 413;
///   SockJS's `max_body`, 1 MiB, 413; SSE takes no body), or
///   [`HttpLimits::read_body`]'s `max` (413). An upgrade request's body is
///   never read: the head limits are what applies to it.
///
/// ```no_run
/// # async fn demo(listener: tokio::net::TcpListener) {
/// let limits = duplex_tokio::HttpLimits::default();
/// let (tcp, _) = listener.accept().await.unwrap();
/// let service = hyper::service::service_fn(|_req| async {
///     Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello")))
/// });
/// let _ = limits
///     .http1_builder()
///     .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
///     .with_upgrades()
///     .await;
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// The most bytes of a request head, request line included. Default
    /// 16 KiB, duplex-ws's handshake limit.
    pub max_head_size: usize,
    /// The most header lines in a request head. Default 64, duplex-ws's
    /// handshake limit.
    pub max_headers: usize,
    /// The longest hyper waits for a whole request head, on a new
    /// connection and between keep-alive requests. Default 10 s, as
    /// [`ServerConfig::handshake_timeout`](crate::ServerConfig::handshake_timeout).
    pub header_read_timeout: Duration,
    /// The longest a request body may take to arrive, from the first read
    /// of it to its end. Default 30 s: 1 MB at 33 kB/s, well above any
    /// real client's rate, while a body trickled a byte at a time holds
    /// its connection for no longer.
    pub body_read_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        let handshake = HandshakeLimits::default();
        Self {
            max_head_size: handshake.max_head_size,
            max_headers: handshake.max_headers,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

impl HttpLimits {
    /// An HTTP/1.1 server connection builder that enforces these limits
    /// (with the tokio timer hyper needs for the header read timeout).
    pub fn http1_builder(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .max_header_size(self.max_head_size)
            .max_headers(self.max_headers)
            .header_read_timeout(self.header_read_timeout);
        builder
    }

    /// Reads a whole request body of at most `max` bytes within
    /// [`body_read_timeout`](Self::body_read_timeout), for routes of one's
    /// own next to the services of this crate.
    ///
    /// Fails with [`Error::BodyTooLarge`] past `max` (answer it with
    /// [`Error::http_status`], 413, without reading the rest), with
    /// [`Error::BodyTimeout`] when the body is too slow (408), and with
    /// [`Error::BodyRead`] when the connection fails under it (400).
    pub async fn read_body<B>(&self, body: B, max: usize) -> Result<Bytes, Error>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match read_limited(body, max.saturating_add(1), self.body_read_timeout).await {
            Ok(body) if body.len() > max => Err(Error::BodyTooLarge { limit: max }),
            Ok(body) => Ok(body),
            Err(BodyFailure::TimedOut) => Err(Error::BodyTimeout(self.body_read_timeout)),
            Err(BodyFailure::Failed(e)) => Err(Error::BodyRead(e.into())),
        }
    }
}
