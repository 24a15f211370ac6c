//! Where a client's Engine.IO requests go: the URL of each polling request
//! and of the WebSocket, from the server's base URL, the endpoint's path,
//! the protocol revision, the transport, the session id once open, and the
//! application's own query parameters.
//!
//! The query is `EIO=<v>&transport=<name>[&sid=<sid>]` followed by the
//! application's pairs, each part percent-encoded so that only the RFC 3986
//! unreserved characters (`A-Z a-z 0-9 - _ . ~`) stay as they are: every
//! server decodes that form the same way, whether it reads `+` as a space
//! or not. The application may not set `EIO`, `transport` or `sid`: the
//! reference client overwrites those with its own (an `Object.assign` of
//! its values onto the user's query), so here they are left out rather
//! than sent twice.
//!
//! ```
//! use duplex_engineio::client_url::EngineIoUrl;
//! use duplex_engineio::{ProtocolVersion, TransportKind};
//!
//! let url = EngineIoUrl::new("http://example.com:3000/", "/socket.io/")
//!     .with_query([("token", "a b&c")]);
//! assert_eq!(
//!     url.url(ProtocolVersion::V4, TransportKind::Polling, None),
//!     "http://example.com:3000/socket.io/?EIO=4&transport=polling&token=a%20b%26c",
//! );
//! // The WebSocket of the same session: `ws` scheme, and the session id.
//! assert_eq!(
//!     url.url(ProtocolVersion::V4, TransportKind::WebSocket, Some("Xy_-1")),
//!     "ws://example.com:3000/socket.io/?EIO=4&transport=websocket&sid=Xy_-1&token=a%20b%26c",
//! );
//! ```

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{ProtocolVersion, TransportKind};

/// What is percent-encoded in a query key or value: everything but the
/// RFC 3986 unreserved characters.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The protocol revision [`ClientSession`](crate::client::ClientSession)
/// speaks, hence the `EIO` of its requests.
pub const CLIENT_PROTOCOL: ProtocolVersion = ProtocolVersion::V4;

/// The query parameters the Engine.IO protocol itself sets, which an
/// application's query cannot override.
pub const RESERVED_PARAMETERS: [&str; 3] = ["EIO", "transport", "sid"];

/// The `Content-Type` of a polling POST carrying a text payload (the
/// reference client's XHR sends exactly this; servers read the body as
/// UTF-8 text).
pub const POLLING_POST_CONTENT_TYPE: &str = "text/plain;charset=UTF-8";

/// The address of a client's Engine.IO endpoint, from which the URL of
/// every request of a session is made with [`EngineIoUrl::url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineIoUrl {
    /// `scheme://authority`, without a trailing `/`.
    base: String,
    /// The endpoint's path, starting with `/`.
    path: String,
    /// The application's pairs, reserved names already left out.
    query: Vec<(String, String)>,
}

impl EngineIoUrl {
    /// The endpoint at `path` (e.g. `/socket.io/`, kept as given apart from
    /// a leading `/` added if missing) of the server at `base` (e.g.
    /// `http://host:port`; `https`, `ws` and `wss` too, each transport
    /// getting the scheme it needs). Trailing `/`s of `base` are dropped so
    /// that joining it with the path gives one.
    pub fn new(base: &str, path: &str) -> Self {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Self {
            base: base.trim_end_matches('/').to_owned(),
            path,
            query: Vec::new(),
        }
    }

    /// The same endpoint with the application's query pairs appended to
    /// every request, in order; pairs named as a [`RESERVED_PARAMETERS`]
    /// entry are left out.
    pub fn with_query<K, V>(mut self, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.query.extend(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(k, _)| !RESERVED_PARAMETERS.contains(&k.as_str())),
        );
        self
    }

    /// The application's query pairs sent with every request.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The request target (path and query) of a request on `transport` of
    /// protocol `version`, with the session id `sid` once the session is
    /// open.
    pub fn path_and_query(
        &self,
        version: ProtocolVersion,
        transport: TransportKind,
        sid: Option<&str>,
    ) -> String {
        let mut out = String::with_capacity(self.path.len() + 64);
        out.push_str(&self.path);
        out.push('?');
        self.write_query(&mut out, version, transport, sid);
        out
    }

    /// The absolute URL of a request on `transport` of protocol `version`,
    /// with the session id `sid` once the session is open: polling over
    /// `http`/`https`, the WebSocket over `ws`/`wss` (the base's scheme
    /// switched to match; an unknown scheme is kept as it is).
    pub fn url(
        &self,
        version: ProtocolVersion,
        transport: TransportKind,
        sid: Option<&str>,
    ) -> String {
        let (scheme, rest) = match self.base.split_once("://") {
            Some((scheme, rest)) => (scheme_for(scheme, transport), rest),
            None => ("", self.base.as_str()),
        };
        let mut out = String::with_capacity(self.base.len() + self.path.len() + 64);
        if !scheme.is_empty() {
            out.push_str(scheme);
            out.push_str("://");
        }
        out.push_str(rest);
        out.push_str(&self.path);
        out.push('?');
        self.write_query(&mut out, version, transport, sid);
        out
    }

    fn write_query(
        &self,
        out: &mut String,
        version: ProtocolVersion,
        transport: TransportKind,
        sid: Option<&str>,
    ) {
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "EIO={}&transport={}",
            version.as_str(),
            transport.as_str()
        );
        if let Some(sid) = sid {
            let _ = write!(out, "&sid={}", utf8_percent_encode(sid, QUERY_COMPONENT));
        }
        for (k, v) in &self.query {
            let _ = write!(
                out,
                "&{}={}",
                utf8_percent_encode(k, QUERY_COMPONENT),
                utf8_percent_encode(v, QUERY_COMPONENT)
            );
        }
    }
}

/// The scheme a transport uses for a base given with `scheme`.
fn scheme_for(scheme: &str, transport: TransportKind) -> &str {
    let secure = scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss");
    let plain = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws");
    match (transport, secure, plain) {
        (TransportKind::Polling, true, _) => "https",
        (TransportKind::Polling, _, true) => "http",
        (TransportKind::WebSocket, true, _) => "wss",
        (TransportKind::WebSocket, _, true) => "ws",
        _ => scheme,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn handshake_request_of_the_protocol_document() {
        // engine.io-protocol: `GET /engine.io/?EIO=4&transport=polling`.
        let url = EngineIoUrl::new("http://localhost", "/engine.io/");
        assert_eq!(
            url.path_and_query(ProtocolVersion::V4, TransportKind::Polling, None),
            "/engine.io/?EIO=4&transport=polling"
        );
    }

    #[test]
    fn requests_of_an_open_session_carry_the_sid() {
        // engine.io-protocol: `GET /engine.io/?EIO=4&transport=polling&sid=lv_VI97HAXpY6yYWAAAC`.
        let url = EngineIoUrl::new("http://localhost", "/engine.io/");
        assert_eq!(
            url.path_and_query(
                ProtocolVersion::V4,
                TransportKind::Polling,
                Some("lv_VI97HAXpY6yYWAAAC")
            ),
            "/engine.io/?EIO=4&transport=polling&sid=lv_VI97HAXpY6yYWAAAC"
        );
        assert_eq!(
            url.url(
                ProtocolVersion::V4,
                TransportKind::WebSocket,
                Some("lv_VI97HAXpY6yYWAAAC")
            ),
            "ws://localhost/engine.io/?EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC"
        );
    }

    #[test]
    fn schemes_follow_the_transport() {
        let cases = [
            ("http://h", TransportKind::Polling, "http://h/p?"),
            ("http://h", TransportKind::WebSocket, "ws://h/p?"),
            ("https://h", TransportKind::Polling, "https://h/p?"),
            ("https://h", TransportKind::WebSocket, "wss://h/p?"),
            ("ws://h", TransportKind::Polling, "http://h/p?"),
            ("WSS://h", TransportKind::Polling, "https://h/p?"),
            ("wss://h", TransportKind::WebSocket, "wss://h/p?"),
            ("unix://h", TransportKind::WebSocket, "unix://h/p?"),
            ("h:80", TransportKind::WebSocket, "h:80/p?"),
        ];
        for (base, transport, prefix) in cases {
            let url = EngineIoUrl::new(base, "/p").url(ProtocolVersion::V4, transport, None);
            assert!(url.starts_with(prefix), "{base} {transport:?}: {url}");
        }
    }

    #[test]
    fn base_and_path_are_joined_with_one_slash() {
        let url = EngineIoUrl::new("http://h:1///", "socket.io/");
        assert_eq!(
            url.url(ProtocolVersion::V3, TransportKind::Polling, None),
            "http://h:1/socket.io/?EIO=3&transport=polling"
        );
    }

    #[test]
    fn reserved_parameters_are_the_protocol_s() {
        let url = EngineIoUrl::new("http://h", "/s/").with_query([
            ("EIO", "3"),
            ("a", "1"),
            ("transport", "x"),
            ("sid", "forged"),
            ("b", "é ~+"),
        ]);
        assert_eq!(
            url.path_and_query(ProtocolVersion::V4, TransportKind::Polling, Some("s 1")),
            "/s/?EIO=4&transport=polling&sid=s%201&a=1&b=%C3%A9%20~%2B"
        );
        assert_eq!(url.query_pairs().len(), 2);
    }

    fn transport() -> impl Strategy<Value = TransportKind> {
        prop_oneof![Just(TransportKind::Polling), Just(TransportKind::WebSocket)]
    }

    proptest! {
        /// Whatever the pairs hold, a URL parser reads back exactly the
        /// protocol's parameters and then the application's pairs.
        #[test]
        fn query_round_trips_through_a_url_parser(
            pairs in proptest::collection::vec((".{0,8}", ".{0,12}"), 0..6),
            sid in proptest::option::of("[A-Za-z0-9_-]{1,20}|.{1,6}"),
            transport in transport(),
            v3 in any::<bool>(),
        ) {
            let version = if v3 { ProtocolVersion::V3 } else { ProtocolVersion::V4 };
            let built = EngineIoUrl::new("https://example.com:8443", "/socket.io/")
                .with_query(pairs.clone());
            let text = built.url(version, transport, sid.as_deref());
            let parsed = url::Url::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed.path(), "/socket.io/");
            prop_assert_eq!(parsed.query(), text.split_once('?').map(|(_, q)| q));
            let got: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
            let mut want = vec![
                ("EIO".to_owned(), version.as_str().to_owned()),
                ("transport".to_owned(), transport.as_str().to_owned()),
            ];
            want.extend(sid.map(|s| ("sid".to_owned(), s)));
            want.extend(
                pairs
                    .into_iter()
                    .filter(|(k, _)| !RESERVED_PARAMETERS.contains(&k.as_str())),
            );
            prop_assert_eq!(got, want);
            // Only unreserved characters and escapes: nothing a server
            // could read two ways.
            let query = text.split_once('?').map(|(_, q)| q).unwrap_or_default();
            prop_assert!(query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)));
        }
    }
}
