//! The opening handshake over HTTP/2 (RFC 8441): an extended CONNECT with
//! `:protocol = websocket` and a 2xx answer, for both roles.
//!
//! HTTP/2 framing (HPACK, streams, SETTINGS_ENABLE_CONNECT_PROTOCOL) belongs
//! to the HTTP/2 stack; this module only decides the WebSocket part. It
//! takes plain `http` types plus the `:protocol` pseudo-header as a string,
//! because `http` has no field for it (hyper and h2 carry it in a request
//! extension, `hyper::ext::Protocol`, which the adapter reads).
//!
//! Subprotocols and permessage-deflate are negotiated exactly as on
//! HTTP/1.1: [`ConnectRequest::protocols`] and
//! [`ConnectRequest::extension_offers`] feed the same choices, and
//! [`ConnectRequest::accept_http`] and [`ClientConnect::check`] apply the
//! same rules as [`super::Request::accept_http`] and
//! [`super::ClientHandshake`].

use http::{HeaderMap, Method, header};

use super::client::{check_negotiated, offered_extension_names};
use super::server::check_offered;
use super::{ClientRequest, HandshakeError, Response, agreed_response};

/// The `:protocol` value that asks for a WebSocket (RFC 8441 section 4).
pub const PROTOCOL: &str = "websocket";

/// A valid extended CONNECT request for a WebSocket, for the application to
/// accept or reject.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// The request target (`:path`, with its query).
    pub target: String,
    /// The `:authority`, when the URI carried one.
    pub authority: Option<String>,
    /// Every (regular) header of the request.
    pub headers: HeaderMap,
}

impl ConnectRequest {
    /// Checks an HTTP/2 request against RFC 8441 section 4 and RFC 6455
    /// section 4.2.1 as RFC 8441 section 5 amends it: method CONNECT,
    /// `protocol` (the `:protocol` pseudo-header) `websocket`,
    /// `sec-websocket-version: 13`. There is no key to check:
    /// `Sec-WebSocket-Key` is not used on HTTP/2, and is ignored if sent.
    ///
    /// On `Err`, answer with [`HandshakeError::http_response`] on that
    /// stream; the HTTP/2 connection stays usable.
    pub fn from_parts(
        method: &Method,
        protocol: Option<&str>,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Result<Self, HandshakeError> {
        if method != Method::CONNECT {
            return Err(HandshakeError::MethodNotConnect);
        }
        match protocol {
            None => return Err(HandshakeError::ConnectWithoutProtocol),
            // Protocol tokens are case-insensitive in the IANA HTTP Upgrade
            // Token registry that `:protocol` draws from.
            Some(p) if !p.trim().eq_ignore_ascii_case(PROTOCOL) => {
                return Err(HandshakeError::UnknownProtocol);
            }
            Some(_) => {}
        }
        let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
        match (versions.next(), versions.next()) {
            (Some(v), None) if v.as_bytes().trim_ascii() == b"13" => {}
            _ => return Err(HandshakeError::UnsupportedVersion),
        }
        let target = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            target,
            authority: uri.authority().map(|a| a.as_str().to_owned()),
            headers: headers.clone(),
        })
    }

    /// [`ConnectRequest::from_parts`] on a whole `http::Request`.
    pub fn from_http<B>(
        req: &http::Request<B>,
        protocol: Option<&str>,
    ) -> Result<Self, HandshakeError> {
        Self::from_parts(req.method(), protocol, req.uri(), req.headers())
    }

    super::request_accessors!();

    /// The 200 response accepting the stream (RFC 8441 section 5: any 2xx;
    /// no `Sec-WebSocket-Accept`). `protocol` must be one the client
    /// offered; `extensions` is the agreed `Sec-WebSocket-Extensions`
    /// value, if any. After sending it, RFC 6455 frames flow in the
    /// stream's DATA frames, and the stream's end follows the close
    /// handshake.
    pub fn accept_http(
        &self,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Result<http::Response<()>, HandshakeError> {
        check_offered(&self.headers, protocol)?;
        let builder = http::Response::builder().status(http::StatusCode::OK);
        agreed_response(builder, protocol, extensions)
    }
}

/// A client's extended CONNECT in progress: build the request, then check
/// the response headers the HTTP/2 stack returns.
#[derive(Debug, Clone)]
pub struct ClientConnect {
    offered_protocols: Vec<String>,
    offered_extensions: Vec<String>,
}

impl ClientConnect {
    /// Starts a handshake for `request` over `scheme` (`https`, or `http`
    /// for cleartext HTTP/2); returns it with the request to send. The
    /// caller's HTTP/2 stack must add the `:protocol` pseudo-header,
    /// [`PROTOCOL`] (hyper: `hyper::ext::Protocol::from_static(PROTOCOL)`
    /// in the request's extensions), and may only send it once the
    /// server's SETTINGS allowed extended CONNECT.
    pub fn new(
        request: &ClientRequest,
        scheme: &str,
    ) -> Result<(Self, http::Request<()>), HandshakeError> {
        let target = if request.target.is_empty() {
            "/"
        } else {
            &request.target
        };
        let uri = http::Uri::builder()
            .scheme(scheme)
            .authority(request.host.as_str())
            .path_and_query(target)
            .build()
            .map_err(|_| HandshakeError::Malformed("invalid request URI"))?;
        let mut builder = http::Request::builder()
            .method(Method::CONNECT)
            .version(http::Version::HTTP_2)
            .uri(uri)
            .header(header::SEC_WEBSOCKET_VERSION, "13");
        if let Some(origin) = &request.origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        if !request.protocols.is_empty() {
            builder = builder.header(header::SEC_WEBSOCKET_PROTOCOL, request.protocols.join(", "));
        }
        if !request.extensions.is_empty() {
            builder = builder.header(
                header::SEC_WEBSOCKET_EXTENSIONS,
                request.extensions.join(", "),
            );
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let built = builder
            .body(())
            .map_err(|_| HandshakeError::Malformed("invalid request header"))?;
        let handshake = Self {
            offered_protocols: request.protocols.clone(),
            offered_extensions: offered_extension_names(request),
        };
        Ok((handshake, built))
    }

    /// Checks the server's response: a 2xx status (RFC 8441 section 5),
    /// and a subprotocol and extensions among those offered.
    pub fn check(&self, status: u16, headers: HeaderMap) -> Result<Response, HandshakeError> {
        if !(200..300).contains(&status) {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        check_negotiated(&self.offered_protocols, &self.offered_extensions, headers)
    }

    /// [`ClientConnect::check`] on a whole `http::Response`.
    pub fn check_http<B>(&self, response: &http::Response<B>) -> Result<Response, HandshakeError> {
        self.check(response.status().as_u16(), response.headers().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeflateConfig;
    use proptest::prelude::*;

    /// The request of RFC 8441 section 5.1, without the pseudo-headers the
    /// arguments carry.
    fn rfc_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("sec-websocket-protocol", "chat, superchat".parse().unwrap());
        h.insert(
            "sec-websocket-extensions",
            "permessage-deflate".parse().unwrap(),
        );
        h.insert("sec-websocket-version", "13".parse().unwrap());
        h.insert("origin", "http://www.example.com".parse().unwrap());
        h
    }

    fn rfc_uri() -> http::Uri {
        "https://server.example.com/chat".parse().unwrap()
    }

    #[test]
    fn rfc_8441_example_accepted() {
        let req = ConnectRequest::from_parts(
            &Method::CONNECT,
            Some("websocket"),
            &rfc_uri(),
            &rfc_headers(),
        )
        .unwrap();
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.authority.as_deref(), Some("server.example.com"));
        assert_eq!(req.origin(), Some("http://www.example.com"));
        assert_eq!(req.protocols(), ["chat", "superchat"]);
        // The same deflate negotiation as on HTTP/1.1.
        let (_, agreed) = DeflateConfig::default()
            .negotiate(&req.extension_offers())
            .unwrap();
        let resp = req.accept_http(Some("chat"), Some(&agreed)).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
        assert_eq!(resp.headers()["sec-websocket-extensions"], agreed.as_str());
        assert!(!resp.headers().contains_key("sec-websocket-accept"));
        assert!(!resp.headers().contains_key("upgrade"));
        assert_eq!(
            req.accept_http(Some("other"), None).unwrap_err(),
            HandshakeError::UnofferedProtocol
        );
    }

    #[test]
    fn refusals_carry_the_right_status() {
        let h = rfc_headers();
        let cases = [
            (
                ConnectRequest::from_parts(&Method::CONNECT, None, &rfc_uri(), &h),
                HandshakeError::ConnectWithoutProtocol,
                405,
            ),
            (
                ConnectRequest::from_parts(&Method::CONNECT, Some("h2c"), &rfc_uri(), &h),
                HandshakeError::UnknownProtocol,
                400,
            ),
            (
                ConnectRequest::from_parts(&Method::GET, Some("websocket"), &rfc_uri(), &h),
                HandshakeError::MethodNotConnect,
                405,
            ),
        ];
        for (got, expected, status) in cases {
            let err = got.unwrap_err();
            assert_eq!(err, expected);
            assert_eq!(err.status(), status);
        }
        for version in [Some("8"), None, Some("13, 13")] {
            let mut h = rfc_headers();
            h.remove("sec-websocket-version");
            if let Some(v) = version {
                h.insert("sec-websocket-version", v.parse().unwrap());
            }
            let err =
                ConnectRequest::from_parts(&Method::CONNECT, Some("websocket"), &rfc_uri(), &h)
                    .unwrap_err();
            assert_eq!(err, HandshakeError::UnsupportedVersion);
            let resp = err.http_response();
            assert_eq!(resp.status(), 426);
            assert_eq!(resp.headers()["sec-websocket-version"], "13");
        }
        // Case-insensitive token, and a stray key is ignored, not fatal.
        let mut h = rfc_headers();
        h.insert(
            "sec-websocket-key",
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        assert!(
            ConnectRequest::from_parts(&Method::CONNECT, Some("WebSocket"), &rfc_uri(), &h).is_ok()
        );
    }

    fn client_request() -> ClientRequest {
        ClientRequest {
            host: "server.example.com".into(),
            target: "/chat?x=1".into(),
            origin: Some("http://www.example.com".into()),
            protocols: vec!["chat".into(), "superchat".into()],
            extensions: vec![DeflateConfig::default().client_offer()],
            headers: vec![("authorization".into(), "Bearer t".into())],
        }
    }

    #[test]
    fn client_and_server_agree() {
        let (client, req) = ClientConnect::new(&client_request(), "https").unwrap();
        assert_eq!(req.method(), Method::CONNECT);
        assert_eq!(req.uri().to_string(), "https://server.example.com/chat?x=1");
        assert_eq!(req.headers()["sec-websocket-version"], "13");
        assert!(!req.headers().contains_key("sec-websocket-key"));
        assert!(!req.headers().contains_key("upgrade"));
        let server = ConnectRequest::from_http(&req, Some(PROTOCOL)).unwrap();
        assert_eq!(server.target, "/chat?x=1");
        assert_eq!(server.headers["authorization"], "Bearer t");
        let (_, agreed) = DeflateConfig::default()
            .negotiate(&server.extension_offers())
            .unwrap();
        let resp = server
            .accept_http(Some("superchat"), Some(&agreed))
            .unwrap();
        let got = client.check_http(&resp).unwrap();
        assert_eq!(got.protocol.as_deref(), Some("superchat"));
        assert_eq!(got.extensions, [agreed]);
        assert!(
            DeflateConfig::default()
                .accept_response(&got.extensions)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn client_refuses_what_was_not_offered() {
        let (client, _) = ClientConnect::new(&client_request(), "https").unwrap();
        let headers = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            h
        };
        assert_eq!(
            client.check(404, HeaderMap::new()).unwrap_err(),
            HandshakeError::UnexpectedStatus(404)
        );
        assert_eq!(
            client.check(101, HeaderMap::new()).unwrap_err(),
            HandshakeError::UnexpectedStatus(101)
        );
        assert_eq!(
            client
                .check(200, headers("sec-websocket-protocol", "other"))
                .unwrap_err(),
            HandshakeError::UnofferedProtocol
        );
        assert_eq!(
            client
                .check(
                    200,
                    headers("sec-websocket-extensions", "x-webkit-deflate-frame")
                )
                .unwrap_err(),
            HandshakeError::UnofferedExtension
        );
        assert!(
            client
                .check(200, HeaderMap::new())
                .unwrap()
                .protocol
                .is_none()
        );
        assert!(
            ClientConnect::new(
                &ClientRequest {
                    host: "bad host".into(),
                    ..ClientRequest::default()
                },
                "https"
            )
            .is_err()
        );
    }

    proptest! {
        /// Whatever `:protocol`, version and subprotocol headers arrive,
        /// validation answers (no panic), and accepts exactly the
        /// websocket/13 requests.
        #[test]
        fn any_header_values_answer(
            protocol in proptest::option::of("[ -~]{0,12}"),
            version in "[ -~]{0,4}",
            offer in "[ -~]{0,20}",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = version.parse() { h.insert("sec-websocket-version", v); }
            if let Ok(v) = offer.parse() { h.insert("sec-websocket-protocol", v); }
            let got = ConnectRequest::from_parts(&Method::CONNECT, protocol.as_deref(), &rfc_uri(), &h);
            let valid = protocol.as_deref().is_some_and(|p| p.trim().eq_ignore_ascii_case("websocket"))
                && version.trim() == "13";
            prop_assert_eq!(got.is_ok(), valid);
            if let Ok(req) = got {
                for p in req.protocols() {
                    prop_assert!(req.accept_http(Some(&p), None).is_ok());
                }
            }
        }
    }
}
