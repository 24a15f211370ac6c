//! The HTTP requests of `--sse` and `--sockjs`, over http:// or https://.
//! Plain requests share hyper-util's pooled client; https:// ones open a
//! tokio-rustls stream with the `--ca`/`--insecure` config and speak
//! HTTP/1.1 over it, one connection a request (a command-line client makes
//! few, and the long-lived ones, an SSE stream or an xhr_streaming
//! response, would hold a pooled connection anyway).

use std::sync::Arc;

use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use super::Failure;

/// Sends requests with bodies of type `B` to http:// or https:// URLs.
pub(crate) struct HttpClient<B> {
    plain: Client<HttpConnector, B>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl<B> Clone for HttpClient<B> {
    fn clone(&self) -> Self {
        HttpClient {
            plain: self.plain.clone(),
            tls: self.tls.clone(),
        }
    }
}

impl<B> HttpClient<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A client for http:// URLs, and for https:// ones when `tls` is
    /// given (without it an https:// request is the caller's mistake).
    pub(crate) fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        HttpClient {
            plain: Client::builder(TokioExecutor::new()).build_http(),
            tls,
        }
    }

    /// Sends `request` (absolute URI) and returns the response head; the
    /// body streams from the connection. Not bounded in time: the callers
    /// wrap it in their `--timeout`.
    pub(crate) async fn request(
        &self,
        mut request: http::Request<B>,
    ) -> Result<http::Response<Incoming>, Failure> {
        let uri = request.uri().clone();
        if uri.scheme_str() != Some("https") {
            return self
                .plain
                .request(request)
                .await
                .map_err(|e| Failure::failed(format!("{uri}: {e}")));
        }
        let Some(tls) = self.tls.clone() else {
            return Err(Failure::usage(format!("{uri}: no TLS settings for https")));
        };
        let host = uri
            .host()
            .ok_or_else(|| Failure::usage(format!("{uri}: no host")))?;
        let bare_host = host.trim_matches(['[', ']']).to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let authority = uri
            .authority()
            .map(ToString::to_string)
            .unwrap_or_else(|| bare_host.clone());
        let name = ServerName::try_from(bare_host.clone())
            .map_err(|e| Failure::usage(format!("{uri}: {e}")))?;
        let tcp = TcpStream::connect((bare_host.as_str(), port))
            .await
            .map_err(|e| Failure::failed(format!("{uri}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::failed(format!("{uri}: TLS: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::failed(format!("{uri}: {e}")))?;
        // The connection drives the body after the head is back; it ends
        // when the response does or the receiver is dropped.
        tokio::spawn(connection);
        // HTTP/1.1 wants the origin form and a Host header.
        let origin: http::Uri = uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
            .parse()
            .map_err(|e| Failure::usage(format!("{uri}: {e}")))?;
        *request.uri_mut() = origin;
        if !request.headers().contains_key(http::header::HOST) {
            let value = http::HeaderValue::from_str(&authority)
                .map_err(|e| Failure::usage(format!("{uri}: {e}")))?;
            request.headers_mut().insert(http::header::HOST, value);
        }
        sender
            .send_request(request)
            .await
            .map_err(|e| Failure::failed(format!("{uri}: {e}")))
    }
}
