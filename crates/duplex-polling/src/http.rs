//! What goes in and out of the machines: requests and responses as data,
//! WebSocket messages, application events, and the small HTTP helpers the
//! dialects share (query parameters, CORS, cache headers, dates).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use duplex_core::Utf8Bytes;
use duplex_engineio::ProtocolVersion;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use crate::{CloseReason, RequestId, SessionId};

/// One HTTP request as the machine needs it.
///
/// The adapter fills it from its HTTP stack: the path *after* the mount
/// prefix (`/socket.io` or `/echo` stripped, so `""`, `"/"` or
/// `"/000/abc/xhr"`), the raw query string, the headers, and the whole body.
/// Bodies are bounded: the adapter reads at most the machine's
/// `body_limit() + 1` bytes and passes what it read, so anything longer
/// than the limit is answered with 413 without being buffered in full.
#[derive(Clone, Debug)]
pub struct Request {
    /// The caller's name for this request (see [`RequestId`]).
    pub id: RequestId,
    /// The method.
    pub method: Method,
    /// The path after the mount prefix, starting with `/` or empty.
    pub path: String,
    /// The query string without the `?`, empty if none.
    pub query: String,
    /// The request headers. The machines read `Origin`, `Cookie`,
    /// `Content-Type`, `If-None-Match`, `Last-Event-ID` and
    /// `Access-Control-Request-Headers`.
    pub headers: HeaderMap,
    /// The body (empty for GET).
    pub body: Bytes,
    /// Whether this is a valid RFC 6455 upgrade request (the adapter checks
    /// that with duplex-ws). The machine answers it either with
    /// [`HttpTransmit::AcceptWebSocket`] or with an ordinary HTTP response.
    pub websocket: bool,
    /// The time of day, used only for the `Expires` header of the long-lived
    /// cacheable SockJS responses. `None` gives a fixed date far in the
    /// future, which is just as good: `Cache-Control: max-age` governs.
    pub wall_clock: Option<SystemTime>,
}

impl Request {
    /// A request for `path_and_query` (`/000/abc/xhr?t=1`), without headers
    /// or body.
    pub fn new(id: RequestId, method: Method, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            id,
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            websocket: false,
            wall_clock: None,
        }
    }

    /// Adds a header; a name or value that is not valid HTTP is skipped.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.append(name, value);
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Marks the request as a valid WebSocket upgrade.
    pub fn websocket(mut self) -> Self {
        self.websocket = true;
        self
    }

    /// A header's value as text, if present and visible ASCII.
    pub(crate) fn header_str(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A complete HTTP response.
///
/// The adapter sets `Content-Length` (or chunking) itself from the body;
/// the machines never add framing headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers,
            body: body.into(),
        }
    }

    /// The body as text (lossy), for tests and logs.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A message between the application and a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// Text.
    Text(Utf8Bytes),
    /// Binary data (Engine.IO and raw WebSockets only).
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Message::Text(Utf8Bytes::from(text.into()))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }

    /// Length of the content in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }
}

/// What the adapter must do, by request (or WebSocket connection) id.
///
/// Every request ends in exactly one of: an [`HttpTransmit::Response`], a
/// [`HttpTransmit::StreamEnd`] after a [`HttpTransmit::StreamStart`], or a
/// [`HttpTransmit::AcceptWebSocket`] (whose connection later ends with a
/// [`HttpTransmit::CloseWebSocket`] or the adapter's own report that it closed).
/// A request the machine parks (a long-poll waiting for data) simply
/// produces nothing until then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpTransmit {
    /// Answer the request with this complete response.
    Response {
        /// The request.
        request: RequestId,
        /// The response.
        response: Response,
    },
    /// Start a streaming response: status and headers now, body chunks in
    /// [`HttpTransmit::StreamChunk`]s, end with [`HttpTransmit::StreamEnd`].
    StreamStart {
        /// The request.
        request: RequestId,
        /// The status.
        status: StatusCode,
        /// The headers.
        headers: HeaderMap,
    },
    /// Write this chunk of a streaming response, and flush it: each chunk is
    /// one frame of the dialect (one HTTP/1.1 chunk), and clients read them
    /// as they come.
    StreamChunk {
        /// The request.
        request: RequestId,
        /// The bytes.
        data: Bytes,
    },
    /// End a streaming response.
    StreamEnd {
        /// The request.
        request: RequestId,
    },
    /// Complete the WebSocket handshake of this upgrade request (101, with
    /// these extra headers). From now on the request id names the
    /// connection; report its messages with `handle_websocket_message` and its end
    /// with `handle_websocket_closed`.
    AcceptWebSocket {
        /// The request, now the connection.
        request: RequestId,
        /// Headers to add to the 101 response.
        headers: HeaderMap,
    },
    /// Send one message on a WebSocket.
    WebSocketMessage {
        /// The connection.
        connection: RequestId,
        /// The message (text or binary frame).
        message: Message,
    },
    /// Close a WebSocket with this code and reason; the machine has
    /// forgotten the connection.
    CloseWebSocket {
        /// The connection.
        connection: RequestId,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

impl HttpTransmit {
    /// The request or connection this concerns.
    pub fn request(&self) -> RequestId {
        match self {
            HttpTransmit::Response { request, .. }
            | HttpTransmit::StreamStart { request, .. }
            | HttpTransmit::StreamChunk { request, .. }
            | HttpTransmit::StreamEnd { request }
            | HttpTransmit::AcceptWebSocket { request, .. } => *request,
            HttpTransmit::WebSocketMessage { connection, .. }
            | HttpTransmit::CloseWebSocket { connection, .. } => *connection,
        }
    }
}

/// The transport a session opened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportName {
    /// Engine.IO HTTP long-polling (XHR or JSONP).
    Polling,
    /// A WebSocket (Engine.IO, or a SockJS session WebSocket).
    WebSocket,
    /// The SockJS raw `/websocket` endpoint: plain messages, no framing.
    RawWebSocket,
    /// SockJS `xhr` polling.
    XhrPolling,
    /// SockJS `xhr_streaming`.
    XhrStreaming,
    /// SockJS `eventsource`.
    EventSource,
    /// SockJS `htmlfile`.
    HtmlFile,
    /// SockJS `jsonp` polling.
    JsonpPolling,
    /// The Server-Sent Events dialect.
    ServerSentEvents,
}

impl TransportName {
    /// The name the protocols use.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportName::Polling => "polling",
            TransportName::WebSocket => "websocket",
            TransportName::RawWebSocket => "websocket-raw",
            TransportName::XhrPolling => "xhr-polling",
            TransportName::XhrStreaming => "xhr-streaming",
            TransportName::EventSource => "eventsource",
            TransportName::HtmlFile => "htmlfile",
            TransportName::JsonpPolling => "jsonp-polling",
            TransportName::ServerSentEvents => "sse",
        }
    }
}

/// What the application learns about a new session: the request that
/// opened it.
#[derive(Clone, Debug)]
pub struct OpenInfo {
    /// The transport of the opening request.
    pub transport: TransportName,
    /// Its path after the mount prefix.
    pub path: String,
    /// Its query string.
    pub query: String,
    /// Its headers (auth tokens, cookies, user agent...).
    pub headers: HeaderMap,
    /// The Engine.IO protocol revision (`EIO`), for Engine.IO sessions:
    /// Socket.IO v5 rides on v4, Socket.IO v4 on v3.
    pub engineio_version: Option<ProtocolVersion>,
}

impl OpenInfo {
    pub(crate) fn from_request(transport: TransportName, request: &Request) -> Self {
        Self {
            transport,
            path: request.path.clone(),
            query: request.query.clone(),
            headers: owned_headers(&request.headers),
            engineio_version: None,
        }
    }
}

/// A copy of `headers` that owns its bytes: the values of a request an
/// HTTP stack parsed (hyper's) are slices of its read buffer, so keeping
/// them for a session's life would keep that whole buffer (8 KiB per
/// connection with hyper) alive for a few hundred bytes. All values are
/// copied into one allocation; the names of standard headers are static
/// and the others own their bytes already.
pub(crate) fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let total = headers.values().map(|v| v.len()).sum();
    let mut all = bytes::BytesMut::with_capacity(total);
    for value in headers.values() {
        all.extend_from_slice(value.as_bytes());
    }
    let all = all.freeze();
    let mut owned = HeaderMap::with_capacity(headers.len());
    let mut at = 0;
    for (name, value) in headers {
        let end = at + value.len();
        // The bytes came from a valid value; the check cannot fail, and a
        // failure would only drop that one header.
        if let Ok(mut copy) = HeaderValue::from_maybe_shared(all.slice(at..end)) {
            copy.set_sensitive(value.is_sensitive());
            owned.append(name.clone(), copy);
        }
        at = end;
    }
    owned
}

/// What happened to sessions, for the application.
///
/// Every `Opened` is followed, sooner or later, by exactly one `Closed` for
/// the same session; `Message`s come in between.
#[derive(Clone, Debug)]
pub enum Event {
    /// A client opened a session.
    Opened {
        /// The session.
        session: SessionId,
        /// The opening request.
        info: OpenInfo,
    },
    /// A client sent a message.
    Message {
        /// The session.
        session: SessionId,
        /// The message.
        message: Message,
    },
    /// A session ended; the id is no longer valid.
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
}

/// Cross-origin settings, shared by the dialects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cors {
    /// Send CORS headers: the request's `Origin` echoed with
    /// `Access-Control-Allow-Credentials: true`, or `*` without an Origin,
    /// and answer `OPTIONS` preflights.
    pub enabled: bool,
    /// The origins allowed to use the endpoint; `None` allows any. A request
    /// carrying an `Origin` that is not listed is refused with 403.
    pub allowed_origins: Option<Vec<String>>,
}

impl Cors {
    /// CORS headers on, any origin.
    pub fn permissive() -> Self {
        Self {
            enabled: true,
            allowed_origins: None,
        }
    }

    /// No CORS headers, any origin (the Engine.IO reference's default).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            allowed_origins: None,
        }
    }

    /// Whether the request's Origin (if any) is allowed.
    pub(crate) fn allows(&self, request: &Request) -> bool {
        match (&self.allowed_origins, request.headers.get(header::ORIGIN)) {
            (Some(list), Some(origin)) => list.iter().any(|o| o.as_bytes() == origin.as_bytes()),
            _ => true,
        }
    }

    /// Adds the CORS headers for `request` to `out` (when enabled).
    /// `null_as_star`: answer the literal Origin `null` with `*`, as
    /// SockJS's eventsource does.
    pub(crate) fn apply(&self, request: &Request, out: &mut HeaderMap, null_as_star: bool) {
        if !self.enabled {
            return;
        }
        match request.headers.get(header::ORIGIN) {
            Some(origin) if !(null_as_star && origin.as_bytes() == b"null") => {
                out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                out.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            _ => {
                out.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
        }
        out.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(wanted) = request
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|v| !v.is_empty())
        {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, wanted.clone());
        }
    }

    /// The `204` answer to an `OPTIONS` preflight: `headers` (what the
    /// dialect adds of its own) with the CORS headers, the `methods` the
    /// path takes, and how many seconds the browser may cache the answer.
    pub(crate) fn preflight(
        &self,
        request: &Request,
        mut headers: HeaderMap,
        methods: &'static str,
        max_age: &'static str,
    ) -> Response {
        self.apply(request, &mut headers, false);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(max_age),
        );
        Response::new(StatusCode::NO_CONTENT, headers, Bytes::new())
    }
}

/// One year, the cache lifetime of long-lived responses.
pub(crate) const ONE_YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// `Cache-Control` of responses that must never be cached.
pub(crate) const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";

/// Adds `Cache-Control: public, max-age=<one year>` and a matching `Expires`.
pub(crate) fn cache_for_a_year(request: &Request, out: &mut HeaderMap) {
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000"),
    );
    let expires = request
        .wall_clock
        .map_or_else(|| FAR_FUTURE.to_owned(), |t| http_date(t + ONE_YEAR));
    if let Ok(value) = HeaderValue::from_str(&expires) {
        out.insert(header::EXPIRES, value);
    }
}

/// The fixed `Expires` used without a wall clock.
const FAR_FUTURE: &str = "Fri, 31 Dec 2100 23:59:59 GMT";

/// Formats a time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month_name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), Howard
/// Hinnant's algorithm for the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The first value of query parameter `name`, form-decoded (`+` is a space,
/// `%XX` a byte, invalid UTF-8 replaced).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    form_pairs(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The decoded `key=value` pairs of a form-encoded text.
pub(crate) fn form_pairs(text: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    text.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            let key = parts.next().unwrap_or_default();
            let value = parts.next().unwrap_or_default();
            (form_decode(key), form_decode(value))
        })
}

/// Decodes `application/x-www-form-urlencoded` text. A `%` not followed by
/// two hex digits stays as it is, as Node's `querystring` leaves it.
pub(crate) fn form_decode(input: &[u8]) -> String {
    let out = duplex_core::form_decode(input);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A `text/plain; charset=UTF-8` response.
pub(crate) fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    Response::new(status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's copy of the opening request's headers is the same map
    /// (repeated headers and sensitivity included) but none of its values
    /// points into the buffer the request was parsed from.
    #[test]
    fn open_info_headers_do_not_keep_the_read_buffer() {
        let buffer = Bytes::from(vec![b'a'; 8192]);
        let shared = |range: std::ops::Range<usize>| {
            HeaderValue::from_maybe_shared(buffer.slice(range)).unwrap()
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, shared(0..9));
        headers.append(header::COOKIE, shared(10..20));
        headers.append(header::COOKIE, shared(20..21));
        let mut token = shared(30..40);
        token.set_sensitive(true);
        headers.insert(HeaderName::from_static("x-token"), token);
        headers.insert(header::ORIGIN, HeaderValue::from_static(""));
        let owned = owned_headers(&headers);
        assert_eq!(owned, headers);
        assert!(owned.get("x-token").unwrap().is_sensitive());
        let inside = buffer.as_ptr_range();
        for value in owned.values() {
            assert!(!inside.contains(&value.as_bytes().as_ptr()), "{value:?}");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }

    #[test]
    fn query_parameters_are_form_decoded() {
        assert_eq!(
            query_param("c=%63allback&t=1", "c").as_deref(),
            Some("callback")
        );
        assert_eq!(query_param("a=1&c=x+y", "c").as_deref(), Some("x y"));
        assert_eq!(query_param("c", "c").as_deref(), Some(""));
        assert_eq!(query_param("d=1", "c"), None);
        assert_eq!(form_decode(b"%zz%4"), "%zz%4");
    }

    #[test]
    fn cors_echoes_origin_with_credentials_or_star() {
        let cors = Cors::permissive();
        let mut out = HeaderMap::new();
        let req = Request::new(RequestId(1), Method::GET, "/")
            .header("Origin", "test")
            .header("Access-Control-Request-Headers", "a, b");
        cors.apply(&req, &mut out, false);
        assert_eq!(out["access-control-allow-origin"], "test");
        assert_eq!(out["access-control-allow-credentials"], "true");
        assert_eq!(out["access-control-allow-headers"], "a, b");
        let mut out = HeaderMap::new();
        cors.apply(
            &Request::new(RequestId(1), Method::GET, "/"),
            &mut out,
            false,
        );
        assert_eq!(out["access-control-allow-origin"], "*");
        assert!(!out.contains_key("access-control-allow-credentials"));
        let mut out = HeaderMap::new();
        let null = Request::new(RequestId(1), Method::GET, "/").header("Origin", "null");
        cors.apply(&null, &mut out, true);
        assert_eq!(out["access-control-allow-origin"], "*");
        let listed = Cors {
            enabled: true,
            allowed_origins: Some(vec!["https://a.example".into()]),
        };
        assert!(listed.allows(&Request::new(RequestId(1), Method::GET, "/")));
        assert!(!listed.allows(&req));
    }
}
