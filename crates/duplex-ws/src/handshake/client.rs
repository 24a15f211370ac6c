//! The client side of the opening handshake: build the request, then check
//! the server's response against it.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, header};
use rand::RngCore;

use super::{
    HandshakeError, HandshakeLimits, accept_key, check_partial_size, extension_list,
    header_has_token, header_list, map_parse_error, put_header, to_header_map,
};

/// What the client asks for.
#[derive(Debug, Clone, Default)]
pub struct ClientRequest {
    /// `host[:port]` for the Host header.
    pub host: String,
    /// The request target, e.g. `/chat?room=1`.
    pub target: String,
    /// The `Origin` header to send, if any.
    pub origin: Option<String>,
    /// Subprotocols to offer, most preferred first.
    pub protocols: Vec<String>,
    /// Extension offers to send (each `name; params`).
    pub extensions: Vec<String>,
    /// Further headers (authorization, cookies).
    pub headers: Vec<(String, String)>,
}

/// The server's accepted response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The subprotocol the server picked, if any.
    pub protocol: Option<String>,
    /// The extensions the server agreed to, one string each.
    pub extensions: Vec<String>,
    /// Every header of the response.
    pub headers: HeaderMap,
}

/// A client handshake in progress: sends the request, reads the response.
#[derive(Debug)]
pub struct ClientHandshake {
    expected_accept: String,
    offered_protocols: Vec<String>,
    offered_extensions: Vec<String>,
    limits: HandshakeLimits,
    buf: BytesMut,
    done: bool,
}

impl ClientHandshake {
    /// Starts a handshake; returns it with the request bytes to send. The
    /// key is 16 bytes from `rng`.
    pub fn new(request: &ClientRequest, rng: &mut dyn RngCore) -> (Self, Bytes) {
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let mut out = BytesMut::with_capacity(256);
        let target = if request.target.is_empty() {
            "/"
        } else {
            &request.target
        };
        out.put_slice(format!("GET {target} HTTP/1.1\r\n").as_bytes());
        put_header(&mut out, "Host", &request.host);
        out.put_slice(
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        );
        put_header(&mut out, "Sec-WebSocket-Key", &key);
        if let Some(origin) = &request.origin {
            put_header(&mut out, "Origin", origin);
        }
        if !request.protocols.is_empty() {
            put_header(
                &mut out,
                "Sec-WebSocket-Protocol",
                &request.protocols.join(", "),
            );
        }
        if !request.extensions.is_empty() {
            put_header(
                &mut out,
                "Sec-WebSocket-Extensions",
                &request.extensions.join(", "),
            );
        }
        for (name, value) in &request.headers {
            put_header(&mut out, name, value);
        }
        out.put_slice(b"\r\n");
        let handshake = Self {
            expected_accept: accept_key(key.as_bytes()),
            offered_protocols: request.protocols.clone(),
            offered_extensions: offered_extension_names(request),
            limits: HandshakeLimits::default(),
            buf: BytesMut::new(),
            done: false,
        };
        (handshake, out.freeze())
    }

    /// Feeds received bytes. `Ok(None)` means the head is not complete.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Response>, HandshakeError> {
        self.buf.extend_from_slice(data);
        if self.done {
            return Ok(None);
        }
        let mut storage = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut resp = httparse::Response::new(&mut storage);
        let head = self
            .buf
            .get(..self.buf.len().min(self.limits.max_head_size + 1))
            .unwrap_or_default();
        let len = match resp.parse(head).map_err(map_parse_error)? {
            httparse::Status::Partial => {
                check_partial_size(self.buf.len(), &self.limits)?;
                return Ok(None);
            }
            httparse::Status::Complete(len) if len > self.limits.max_head_size => {
                return Err(HandshakeError::HeadTooLarge);
            }
            httparse::Status::Complete(len) => len,
        };
        let status = resp.code.unwrap_or(0);
        let headers = to_header_map(resp.headers)?;
        let _ = self.buf.split_to(len);
        self.done = true;
        if status != 101 {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        self.check(headers).map(Some)
    }

    fn check(&self, headers: HeaderMap) -> Result<Response, HandshakeError> {
        // Upgrade, Connection and the accept key are HTTP/1.1's; the
        // negotiation checks after them are shared with RFC 8441 (h2.rs).
        if !header_has_token(&headers, header::UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_has_token(&headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let accept = headers
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .map(|v| v.as_bytes().trim_ascii());
        if accept != Some(self.expected_accept.as_bytes()) {
            return Err(HandshakeError::AcceptMismatch);
        }
        check_negotiated(&self.offered_protocols, &self.offered_extensions, headers)
    }

    /// The bytes received after the response head (the server's first
    /// frames, if they came in the same read).
    pub fn into_remaining(self) -> BytesMut {
        if self.done { self.buf } else { BytesMut::new() }
    }
}

/// The lower-cased names of the extensions `request` offers.
pub(super) fn offered_extension_names(request: &ClientRequest) -> Vec<String> {
    request
        .extensions
        .iter()
        .filter_map(|e| e.split(';').next())
        .map(|n| n.trim().to_ascii_lowercase())
        .collect()
}

/// Checks what the server agreed to against what was offered: at most one
/// subprotocol, one of ours, and only extensions we named. The same rules
/// hold for HTTP/1.1 (RFC 6455 4.1) and HTTP/2 (RFC 8441 5).
pub(super) fn check_negotiated(
    offered_protocols: &[String],
    offered_extensions: &[String],
    headers: HeaderMap,
) -> Result<Response, HandshakeError> {
    let mut protocols = header_list(&headers, header::SEC_WEBSOCKET_PROTOCOL).into_iter();
    let protocol = match (protocols.next(), protocols.next()) {
        (None, _) => None,
        (Some(p), None) if offered_protocols.contains(&p) => Some(p),
        _ => return Err(HandshakeError::UnofferedProtocol),
    };
    let extensions = extension_list(&headers);
    for ext in &extensions {
        let name = ext
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !offered_extensions.contains(&name) {
            return Err(HandshakeError::UnofferedExtension);
        }
    }
    Ok(Response {
        protocol,
        extensions,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ServerHandshake;
    use rand::{SeedableRng, rngs::StdRng};

    fn request() -> ClientRequest {
        ClientRequest {
            host: "example.com:80".into(),
            target: "/chat".into(),
            protocols: vec!["chat".into(), "superchat".into()],
            ..ClientRequest::default()
        }
    }

    #[test]
    fn client_and_server_agree() {
        let mut rng = StdRng::seed_from_u64(7);
        let (mut client, req_bytes) = ClientHandshake::new(&request(), &mut rng);
        let mut server = ServerHandshake::new();
        let req = server.receive(&req_bytes).unwrap().unwrap();
        assert_eq!(req.protocols(), ["chat", "superchat"]);
        let mut resp = req.accept(Some("superchat"), None, &[]).unwrap().to_vec();
        resp.extend_from_slice(&[0x81, 0x00]);
        let mut got = None;
        for b in &resp {
            if let Some(r) = client.receive(std::slice::from_ref(b)).unwrap() {
                got = Some(r);
            }
        }
        assert_eq!(got.unwrap().protocol.as_deref(), Some("superchat"));
        assert_eq!(&client.into_remaining()[..], &[0x81, 0x00]);
    }

    fn respond(lines: &str) -> Result<Option<Response>, HandshakeError> {
        let mut rng = StdRng::seed_from_u64(1);
        let (mut client, req_bytes) = ClientHandshake::new(&request(), &mut rng);
        let req = ServerHandshake::new().receive(&req_bytes).unwrap().unwrap();
        let text = lines.replace("{accept}", &req.accept_key());
        client.receive(text.as_bytes())
    }

    #[test]
    fn every_mismatch_is_a_clear_error() {
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n";
        assert!(respond(&format!("{ok}\r\n")).unwrap().is_some());
        let cases = [
            (
                format!(
                    "{}\r\n",
                    ok.replace("101 Switching Protocols", "403 Forbidden")
                ),
                HandshakeError::UnexpectedStatus(403),
            ),
            (
                format!("{}\r\n", ok.replace("Upgrade: websocket\r\n", "")),
                HandshakeError::MissingUpgrade,
            ),
            (
                format!("{}\r\n", ok.replace("Connection: Upgrade\r\n", "")),
                HandshakeError::MissingConnectionUpgrade,
            ),
            (
                format!(
                    "{}\r\n",
                    ok.replace("{accept}", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                ),
                HandshakeError::AcceptMismatch,
            ),
            (
                format!("{ok}Sec-WebSocket-Protocol: other\r\n\r\n"),
                HandshakeError::UnofferedProtocol,
            ),
            (
                format!("{ok}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
                HandshakeError::UnofferedExtension,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(respond(&text).unwrap_err(), expected, "{text}");
        }
    }
}
