//! The opening handshake of RFC 6455 section 4, for both roles, and its
//! HTTP/2 form (RFC 8441 extended CONNECT) in [`h2`].

mod client;
pub mod h2;
mod server;

pub use client::{ClientHandshake, ClientRequest, Response};
pub use server::{Request, ServerHandshake};

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use sha1::{Digest, Sha1};

/// The GUID appended to the key (RFC 6455 section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Whether `req` asks for a WebSocket, in either opening: `Upgrade:
/// websocket` (HTTP/1.1) or a CONNECT (HTTP/2, RFC 8441). Whether the
/// handshake is valid is [`Request::from_http`]'s or
/// [`h2::ConnectRequest::from_http`]'s to decide; a CONNECT is counted
/// here even without `:protocol`, so that it is refused with the
/// handshake's status (405) rather than served as a plain request.
///
/// ```
/// let req = http::Request::get("/chat")
///     .header("upgrade", "WebSocket")
///     .body(())
///     .unwrap();
/// assert!(duplex_ws::handshake::wants_websocket(&req));
/// assert!(!duplex_ws::handshake::wants_websocket(&http::Request::get("/").body(()).unwrap()));
/// ```
pub fn wants_websocket<B>(req: &http::Request<B>) -> bool {
    req.method() == http::Method::CONNECT
        || req
            .headers()
            .get_all(http::header::UPGRADE)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Whether a WebSocket request's handshake is RFC 8441's extended CONNECT
/// rather than RFC 6455's upgrade: it came over HTTP/2, or it is a CONNECT
/// (which only HTTP/2's extended form turns into a WebSocket).
pub fn is_rfc8441_opening<B>(req: &http::Request<B>) -> bool {
    req.version() == http::Version::HTTP_2 || req.method() == http::Method::CONNECT
}

/// Bounds on the handshake head, with safe defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// The most bytes of request or response head. Default 16 KiB.
    pub max_head_size: usize,
    /// The most header lines. Default 64.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            max_head_size: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The head is over [`HandshakeLimits::max_head_size`].
    #[error("handshake head over the size limit")]
    HeadTooLarge,
    /// More header lines than [`HandshakeLimits::max_headers`].
    #[error("too many header lines")]
    TooManyHeaders,
    /// Not parseable as HTTP/1.x.
    #[error("malformed HTTP head: {0}")]
    Malformed(&'static str),
    /// The request method is not GET.
    #[error("the handshake method must be GET")]
    MethodNotGet,
    /// HTTP/1.0 (a WebSocket handshake needs 1.1 or later).
    #[error("the handshake needs HTTP/1.1 or later")]
    HttpVersion,
    /// No Host header.
    #[error("missing Host header")]
    MissingHost,
    /// `Upgrade` does not list `websocket`.
    #[error("Upgrade header does not name websocket")]
    MissingUpgrade,
    /// `Connection` does not list `Upgrade`.
    #[error("Connection header does not name Upgrade")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes.
    #[error("missing or invalid Sec-WebSocket-Key")]
    InvalidKey,
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported Sec-WebSocket-Version (only 13)")]
    UnsupportedVersion,
    /// The server answered with a status other than 101.
    #[error("server answered {0} instead of 101")]
    UnexpectedStatus(u16),
    /// `Sec-WebSocket-Accept` missing or not the value for our key.
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// The server picked a subprotocol the client did not offer, or the
    /// application accepted with one the client did not offer.
    #[error("subprotocol that was not offered")]
    UnofferedProtocol,
    /// The server answered with an extension the client did not offer.
    #[error("extension that was not offered")]
    UnofferedExtension,
    /// The server's permessage-deflate parameters break RFC 7692 or go
    /// beyond what the client offered.
    #[error("invalid permessage-deflate response")]
    InvalidExtensionResponse,
    /// HTTP/2 (RFC 8441): a WebSocket is opened by an extended CONNECT,
    /// and this request's method is something else.
    #[error("an HTTP/2 WebSocket is opened with CONNECT")]
    MethodNotConnect,
    /// HTTP/2 (RFC 8441): a CONNECT without `:protocol`, i.e. a request for
    /// a TCP tunnel, which a WebSocket endpoint does not offer.
    #[error("CONNECT without :protocol (tunnels are not offered)")]
    ConnectWithoutProtocol,
    /// HTTP/2 (RFC 8441): an extended CONNECT whose `:protocol` is not
    /// `websocket`.
    #[error("unknown :protocol (only websocket)")]
    UnknownProtocol,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            // A plain CONNECT asks for a method this resource does not
            // serve (405, as the conformance contract says), while an
            // unknown `:protocol` is a bad request for a resource that
            // does take extended CONNECT (400; 501 would claim the server
            // knows no extended CONNECT at all).
            Self::MethodNotGet | Self::MethodNotConnect | Self::ConnectWithoutProtocol => 405,
            Self::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// The headers this refusal must carry: `Allow` on a 405 (RFC 9110),
    /// the supported version on a 426 (RFC 6455 section 4.4).
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::MethodNotGet => &[("Allow", "GET")],
            Self::MethodNotConnect | Self::ConnectWithoutProtocol => &[("Allow", "CONNECT")],
            Self::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }

    /// The complete HTTP response a server sends before closing.
    pub fn response(&self) -> Bytes {
        error_response(self.status(), self.extra_headers(), &self.to_string())
    }

    /// The same refusal as an `http::Response`, for HTTP stacks (hyper,
    /// axum) that write their own responses; map the body to theirs.
    pub fn http_response(&self) -> http::Response<String> {
        let mut response = http::Response::new(format!("{self}\n"));
        *response.status_mut() =
            http::StatusCode::from_u16(self.status()).unwrap_or(http::StatusCode::BAD_REQUEST);
        let headers = response.headers_mut();
        for (name, value) in self.extra_headers() {
            headers.insert(*name, http::HeaderValue::from_static(value));
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// A complete, closing HTTP/1.1 error response with a plain-text body.
pub fn error_response(status: u16, extra_headers: &[(&str, &str)], body: &str) -> Bytes {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut out = BytesMut::with_capacity(128 + body.len());
    out.put_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    for (name, value) in extra_headers {
        put_header(&mut out, name, value);
    }
    put_header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    put_header(&mut out, "Content-Length", &body.len().to_string());
    put_header(&mut out, "Connection", "close");
    out.put_slice(b"\r\n");
    out.put_slice(body.as_bytes());
    out.freeze()
}

fn put_header(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Whether any `name` header's comma-separated tokens include `token`,
/// compared case-insensitively.
fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The accessors of a request the application accepts or rejects, the
/// same on HTTP/1.1 ([`Request`]) and HTTP/2 ([`h2::ConnectRequest`]): both
/// keep the `target` and `headers` they read them from.
macro_rules! request_accessors {
    () => {
        /// The path part of the target.
        pub fn path(&self) -> &str {
            self.target.split('?').next().unwrap_or("/")
        }

        /// The `Origin` header, if sent (browsers always send it).
        pub fn origin(&self) -> Option<&str> {
            self.headers
                .get(http::header::ORIGIN)
                .and_then(|v| v.to_str().ok())
        }

        /// The subprotocols the client offered, in its order of preference.
        pub fn protocols(&self) -> Vec<String> {
            super::header_list(&self.headers, http::header::SEC_WEBSOCKET_PROTOCOL)
        }

        /// The extension offers, one string per offer (`name; param=value`),
        /// ready for [`crate::DeflateConfig::negotiate`].
        pub fn extension_offers(&self) -> Vec<String> {
            super::extension_list(&self.headers)
        }
    };
}
use request_accessors;

/// An accepting response: `builder` with the agreed subprotocol and
/// extensions, if any, and no body.
fn agreed_response(
    builder: http::response::Builder,
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Result<http::Response<()>, HandshakeError> {
    let mut builder = builder;
    if let Some(p) = protocol {
        builder = builder.header(http::header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    if let Some(e) = extensions {
        builder = builder.header(http::header::SEC_WEBSOCKET_EXTENSIONS, e);
    }
    builder
        .body(())
        .map_err(|_| HandshakeError::Malformed("invalid response header value"))
}

/// Every comma-separated element of every `name` header, trimmed, in order.
fn header_list(headers: &HeaderMap, name: http::header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Extension offers split at top-level commas only: a quoted parameter
/// value may itself contain a comma.
fn extension_list(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::SEC_WEBSOCKET_EXTENSIONS) {
        let Ok(value) = value.to_str() else { continue };
        let mut in_quotes = false;
        let mut start = 0;
        for (i, c) in value.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    push_trimmed(&mut out, value.get(start..i));
                    start = i + 1;
                }
                _ => {}
            }
        }
        push_trimmed(&mut out, value.get(start..));
    }
    out
}

fn push_trimmed(out: &mut Vec<String>, item: Option<&str>) {
    if let Some(item) = item.map(str::trim).filter(|s| !s.is_empty()) {
        out.push(item.to_owned());
    }
}

/// Parsed head of an HTTP/1.x message, copied out of the read buffer.
struct Head {
    headers: HeaderMap,
    len: usize,
}

/// Copies httparse's borrowed headers into an owned map.
fn to_header_map(parsed: &[httparse::Header<'_>]) -> Result<HeaderMap, HandshakeError> {
    let mut headers = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = http::header::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HandshakeError::Malformed("invalid header name"))?;
        let value = http::HeaderValue::from_bytes(h.value)
            .map_err(|_| HandshakeError::Malformed("invalid header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn map_parse_error(e: httparse::Error) -> HandshakeError {
    match e {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders,
        httparse::Error::Version => HandshakeError::Malformed("invalid HTTP version"),
        httparse::Error::Status => HandshakeError::Malformed("invalid status"),
        httparse::Error::Token => HandshakeError::Malformed("invalid token"),
        httparse::Error::NewLine => HandshakeError::Malformed("invalid line ending"),
        httparse::Error::HeaderName => HandshakeError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HandshakeError::Malformed("invalid header value"),
    }
}

/// Checks the head size limit after a partial parse.
fn check_partial_size(buffered: usize, limits: &HandshakeLimits) -> Result<(), HandshakeError> {
    if buffered > limits.max_head_size {
        Err(HandshakeError::HeadTooLarge)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_sample_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn which_requests_ask_for_a_websocket_and_in_which_opening() {
        let request = |method: http::Method, version: http::Version, upgrades: &[&str]| {
            let mut b = http::Request::builder().method(method).version(version);
            for u in upgrades {
                b = b.header(http::header::UPGRADE, *u);
            }
            b.body(()).unwrap()
        };
        let (h1, h2) = (http::Version::HTTP_11, http::Version::HTTP_2);
        let (get, connect) = (http::Method::GET, http::Method::CONNECT);
        // (request, asks for a WebSocket, RFC 8441's opening)
        let cases = [
            (request(get.clone(), h1, &[]), false, false),
            (request(get.clone(), h1, &["websocket"]), true, false),
            // Any of several Upgrade lines, in any case.
            (request(get.clone(), h1, &["h2c", "WebSocket"]), true, false),
            (request(get.clone(), h1, &["h2c"]), false, false),
            // A CONNECT, even without `:protocol` or over HTTP/1.1, is
            // the handshake's to refuse.
            (request(connect.clone(), h1, &[]), true, true),
            (request(connect, h2, &[]), true, true),
            (request(get, h2, &[]), false, true),
        ];
        for (req, wants, rfc8441) in cases {
            let line = (req.method().clone(), req.version(), req.headers().clone());
            assert_eq!(wants_websocket(&req), wants, "{line:?}");
            assert_eq!(is_rfc8441_opening(&req), rfc8441, "{line:?}");
        }
    }

    #[test]
    fn extension_offers_split_outside_quotes() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::SEC_WEBSOCKET_EXTENSIONS,
            http::HeaderValue::from_static(
                "permessage-deflate; client_max_window_bits, x-foo; a=\"1,2\"",
            ),
        );
        headers.append(
            http::header::SEC_WEBSOCKET_EXTENSIONS,
            http::HeaderValue::from_static("permessage-deflate"),
        );
        assert_eq!(
            extension_list(&headers),
            [
                "permessage-deflate; client_max_window_bits",
                "x-foo; a=\"1,2\"",
                "permessage-deflate"
            ]
        );
    }

    #[test]
    fn error_responses_are_well_formed() {
        let r = HandshakeError::UnsupportedVersion.response();
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut headers);
        let status = resp.parse(&r).unwrap();
        assert!(status.is_complete());
        assert_eq!(resp.code, Some(426));
        assert!(
            resp.headers
                .iter()
                .any(|h| h.name == "Sec-WebSocket-Version" && h.value == b"13")
        );
        assert_eq!(HandshakeError::HeadTooLarge.status(), 431);
        assert_eq!(HandshakeError::MethodNotGet.status(), 405);
        let http = HandshakeError::MethodNotGet.http_response();
        assert_eq!(http.status(), 405);
        assert_eq!(http.headers()["allow"], "GET");
        let http = HandshakeError::UnsupportedVersion.http_response();
        assert_eq!(http.headers()["sec-websocket-version"], "13");
    }
}
