//! [`HttpLimits`]: the bounds on request heads that every HTTP/1.1
//! connection served through duplex-tokio applies, upgrade requests
//! included, with the same defaults as the raw WebSocket handshake.

use std::time::Duration;

use duplex_ws::handshake::HandshakeLimits;
use hyper::server::conn::http1;

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
///   nothing for long).
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
}

impl Default for HttpLimits {
    fn default() -> Self {
        let handshake = HandshakeLimits::default();
        Self {
            max_head_size: handshake.max_head_size,
            max_headers: handshake.max_headers,
            header_read_timeout: Duration::from_secs(10),
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
}
