//! The soak's HTTP client for the transports that are not WebSockets
//! (SockJS xhr and xhr_streaming, Server-Sent Events): hyper's pooled
//! client, every request bounded by [`super::STEP`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::STEP;

/// A pooled HTTP/1.1 client for one session (its connections go with it).
#[derive(Clone)]
pub(super) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub(super) fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request and returns the answer with its body unread (for
    /// streams).
    pub(super) async fn open(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<http::Response<Incoming>, String> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("{url}: {e}"))?;
        tokio::time::timeout(STEP, self.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {STEP:?}"))?
            .map_err(|e| format!("{url}: {e}"))
    }

    /// A POST, its status and whole body.
    pub(super) async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<(http::StatusCode, Bytes), String> {
        let response = self
            .open(
                http::Method::POST,
                url,
                &[("content-type", content_type)],
                body.into(),
            )
            .await?;
        let status = response.status();
        let body = tokio::time::timeout(STEP, response.into_body().collect())
            .await
            .map_err(|_| format!("{url}: body not read within {STEP:?}"))?
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// Sends one request on a connection of its own, which closes when the
/// returned body (or [`Lines`] made of it) is dropped: a pooled client may
/// keep a half-read streaming response open, and a killed client must go
/// for the server to see it gone.
pub(super) async fn open_owned(
    host: &str,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(http::StatusCode, Lines), String> {
    let tcp = tokio::time::timeout(STEP, tokio::net::TcpStream::connect(host))
        .await
        .map_err(|_| format!("connect {host}: timed out"))?
        .map_err(|e| format!("connect {host}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| format!("{path}: {e}"))?;
    let conn = tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("{path}: {e}"))?;
    let response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .map_err(|_| format!("{path}: no answer within {STEP:?}"))?
        .map_err(|e| format!("{path}: {e}"))?;
    let status = response.status();
    let mut lines = Lines::new(response.into_body());
    lines.conn = Some(conn.abort_handle());
    Ok((status, lines))
}

/// Splits a streamed body into lines (without their `\n`), each bounded
/// by [`STEP`].
pub(super) struct Lines {
    body: Incoming,
    pending: Vec<u8>,
    /// The connection's task when it is the body's own: aborted (the
    /// socket closed) when the lines are dropped.
    conn: Option<tokio::task::AbortHandle>,
}

impl Drop for Lines {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.abort();
        }
    }
}

impl Lines {
    pub(super) fn new(body: Incoming) -> Lines {
        Lines {
            body,
            pending: Vec::new(),
            conn: None,
        }
    }

    /// The next line; `Ok(None)` when the body ends.
    pub(super) async fn next(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = line.get(..end).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                return Ok(Some(String::from_utf8_lossy(line).into_owned()));
            }
            let frame = tokio::time::timeout(STEP, self.body.frame())
                .await
                .map_err(|_| format!("nothing streamed within {STEP:?}"))?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(format!("stream: {e}")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
