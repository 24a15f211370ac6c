//! The server side of the opening handshake: parse and check the client's
//! request, let the application choose, answer with 101 or an error.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, header};

use super::{
    HandshakeError, HandshakeLimits, Head, accept_key, check_partial_size, header_has_token,
    header_list, map_parse_error, put_header, to_header_map,
};

/// Reads a client's opening handshake from bytes, incrementally.
///
/// Bytes after the request head (a client may pipeline its first frames)
/// are kept: [`ServerHandshake::into_remaining`] hands them on to the
/// connection.
#[derive(Debug, Default)]
pub struct ServerHandshake {
    buf: BytesMut,
    limits: HandshakeLimits,
    done: bool,
}

/// A valid WebSocket upgrade request, for the application to accept or
/// reject.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request target (path and query).
    pub target: String,
    /// Every header of the request.
    pub headers: HeaderMap,
    key: String,
}

impl ServerHandshake {
    /// A handshake reader with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handshake reader with the given limits.
    pub fn with_limits(limits: HandshakeLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Feeds received bytes. `Ok(None)` means the head is not complete yet;
    /// on `Err`, send [`HandshakeError::response`] and close.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Request>, HandshakeError> {
        if self.done {
            self.buf.extend_from_slice(data);
            return Ok(None);
        }
        self.buf.extend_from_slice(data);
        let Some((head, target, method, version)) = self.parse()? else {
            return Ok(None);
        };
        let _ = self.buf.split_to(head.len);
        self.done = true;
        Request::validate(&method, version, target, head.headers).map(Some)
    }

    fn parse(&self) -> Result<Option<(Head, String, String, u8)>, HandshakeError> {
        let mut storage = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut req = httparse::Request::new(&mut storage);
        let head = self
            .buf
            .get(..self.buf.len().min(self.limits.max_head_size + 1))
            .unwrap_or_default();
        match req.parse(head).map_err(map_parse_error)? {
            httparse::Status::Partial => {
                check_partial_size(self.buf.len(), &self.limits)?;
                Ok(None)
            }
            httparse::Status::Complete(len) => {
                if len > self.limits.max_head_size {
                    return Err(HandshakeError::HeadTooLarge);
                }
                let headers = to_header_map(req.headers)?;
                Ok(Some((
                    Head { headers, len },
                    req.path.unwrap_or("/").to_owned(),
                    req.method.unwrap_or_default().to_owned(),
                    req.version.unwrap_or(0),
                )))
            }
        }
    }

    /// The bytes received after the request head.
    pub fn into_remaining(self) -> BytesMut {
        if self.done { self.buf } else { BytesMut::new() }
    }
}

impl Request {
    /// Checks a request against RFC 6455 section 4.2.1.
    fn validate(
        method: &str,
        version: u8,
        target: String,
        headers: HeaderMap,
    ) -> Result<Self, HandshakeError> {
        if method != "GET" {
            return Err(HandshakeError::MethodNotGet);
        }
        if version < 1 {
            return Err(HandshakeError::HttpVersion);
        }
        Self::validate_headers(target, headers)
    }

    fn validate_headers(target: String, headers: HeaderMap) -> Result<Self, HandshakeError> {
        if !headers.contains_key(header::HOST) {
            return Err(HandshakeError::MissingHost);
        }
        if !header_has_token(&headers, header::UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_has_token(&headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
        match (versions.next(), versions.next()) {
            (Some(v), None) if v.as_bytes().trim_ascii() == b"13" => {}
            _ => return Err(HandshakeError::UnsupportedVersion),
        }
        let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
        let key = match (keys.next(), keys.next()) {
            (Some(k), None) => k
                .to_str()
                .map_err(|_| HandshakeError::InvalidKey)?
                .trim()
                .to_owned(),
            _ => return Err(HandshakeError::InvalidKey),
        };
        match base64::engine::general_purpose::STANDARD.decode(&key) {
            Ok(raw) if raw.len() == 16 => {}
            _ => return Err(HandshakeError::InvalidKey),
        }
        Ok(Self {
            target,
            headers,
            key,
        })
    }

    /// Checks a request that an HTTP stack (hyper, axum) already parsed.
    pub fn from_http<B>(req: &http::Request<B>) -> Result<Self, HandshakeError> {
        if req.method() != http::Method::GET {
            return Err(HandshakeError::MethodNotGet);
        }
        if req.version() < http::Version::HTTP_11 {
            return Err(HandshakeError::HttpVersion);
        }
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Self::validate_headers(target, req.headers().clone())
    }

    super::request_accessors!();

    /// The `Sec-WebSocket-Key` the client sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value of `Sec-WebSocket-Accept` for this request.
    pub fn accept_key(&self) -> String {
        accept_key(self.key.as_bytes())
    }

    fn check_protocol(&self, protocol: Option<&str>) -> Result<(), HandshakeError> {
        check_offered(&self.headers, protocol)
    }

    /// The 101 response accepting the request, as bytes. `protocol` must be
    /// one the client offered; `extensions` is the agreed
    /// `Sec-WebSocket-Extensions` value, if any.
    pub fn accept(
        &self,
        protocol: Option<&str>,
        extensions: Option<&str>,
        extra_headers: &[(&str, &str)],
    ) -> Result<Bytes, HandshakeError> {
        self.check_protocol(protocol)?;
        let mut out = BytesMut::with_capacity(160);
        out.put_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        );
        put_header(&mut out, "Sec-WebSocket-Accept", &self.accept_key());
        if let Some(p) = protocol {
            put_header(&mut out, "Sec-WebSocket-Protocol", p);
        }
        if let Some(e) = extensions {
            put_header(&mut out, "Sec-WebSocket-Extensions", e);
        }
        for (name, value) in extra_headers {
            put_header(&mut out, name, value);
        }
        out.put_slice(b"\r\n");
        Ok(out.freeze())
    }

    /// The same 101 response as an `http::Response`, for HTTP stacks that
    /// write their own responses (hyper's upgrade path).
    pub fn accept_http(
        &self,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Result<http::Response<()>, HandshakeError> {
        self.check_protocol(protocol)?;
        let builder = http::Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(header::SEC_WEBSOCKET_ACCEPT, self.accept_key());
        super::agreed_response(builder, protocol, extensions)
    }

    /// A response refusing the request (for example 403 for an Origin not
    /// on the allow-list), as bytes; close after writing it.
    pub fn reject(&self, status: u16, body: &str) -> Bytes {
        super::error_response(status, &[], body)
    }
}

/// Refuses a subprotocol the client did not offer in `headers`; shared by
/// the HTTP/1.1 and the HTTP/2 (RFC 8441) acceptance.
pub(super) fn check_offered(
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> Result<(), HandshakeError> {
    match protocol {
        Some(p)
            if !header_list(headers, header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .any(|o| o == p) =>
        {
            Err(HandshakeError::UnofferedProtocol)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_request_accepted_with_sample_accept() {
        let mut hs = ServerHandshake::new();
        let req = hs.receive(RFC_REQUEST).unwrap().unwrap();
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.origin(), Some("http://example.com"));
        assert_eq!(req.protocols(), ["chat", "superchat"]);
        let resp = req.accept(Some("chat"), None, &[]).unwrap();
        let text = std::str::from_utf8(&resp).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert_eq!(
            req.accept(Some("other"), None, &[]),
            Err(HandshakeError::UnofferedProtocol)
        );
    }

    #[test]
    fn byte_at_a_time_and_pipelined_frames_kept() {
        let mut wire = RFC_REQUEST.to_vec();
        wire.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        let mut hs = ServerHandshake::new();
        let mut got = None;
        for b in &wire {
            if let Some(req) = hs.receive(std::slice::from_ref(b)).unwrap() {
                got = Some(req);
            }
        }
        assert!(got.is_some());
        assert_eq!(&hs.into_remaining()[..], &[0x81, 0x80, 1, 2, 3, 4]);
    }

    fn check(request: &str) -> Result<Request, HandshakeError> {
        ServerHandshake::new()
            .receive(request.as_bytes())
            .map(|r| r.unwrap())
    }

    #[test]
    fn every_rule_of_section_4_2_1() {
        let ok = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert!(check(ok).is_ok());
        // Each case replaces one part of the valid request.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let cases = [
            ("GET", "POST", HandshakeError::MethodNotGet),
            ("HTTP/1.1", "HTTP/1.0", HandshakeError::HttpVersion),
            ("Host: a\r\n", "", HandshakeError::MissingHost),
            ("WebSocket", "h2c", HandshakeError::MissingUpgrade),
            (
                "keep-alive, Upgrade",
                "keep-alive",
                HandshakeError::MissingConnectionUpgrade,
            ),
            (key, "c2hvcnQ=", HandshakeError::InvalidKey),
            (key, "!!!", HandshakeError::InvalidKey),
            (
                "Version: 13",
                "Version: 8",
                HandshakeError::UnsupportedVersion,
            ),
            (
                "Sec-WebSocket-Version: 13\r\n",
                "",
                HandshakeError::UnsupportedVersion,
            ),
        ];
        for (part, replacement, expected) in cases {
            let request = ok.replace(part, replacement);
            assert_eq!(check(&request).unwrap_err(), expected, "{request}");
        }
    }

    #[test]
    fn oversized_heads_refused() {
        let mut hs = ServerHandshake::new();
        let mut big = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 20_000));
        assert_eq!(hs.receive(&big).unwrap_err(), HandshakeError::HeadTooLarge);
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..100 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(check(&many).unwrap_err(), HandshakeError::TooManyHeaders);
        assert_eq!(HandshakeError::TooManyHeaders.status(), 431);
    }

    #[test]
    fn from_http_request() {
        let req = http::Request::builder()
            .uri("/ws?x=1")
            .header("host", "a")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap();
        let parsed = Request::from_http(&req).unwrap();
        assert_eq!(parsed.target, "/ws?x=1");
        let resp = parsed.accept_http(None, None).unwrap();
        assert_eq!(resp.status(), 101);
        assert_eq!(
            resp.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
