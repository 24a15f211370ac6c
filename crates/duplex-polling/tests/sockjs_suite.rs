//! The sockjs-protocol suite (`sockjs-protocol.py`, 68 tests), replayed
//! against the machine with the conformance server's four services
//! (`/echo`, `/close`, `/disabled_websocket_echo`, `/cookie_needed_echo`,
//! response limit 4096). Each test is named after the suite's class and
//! method. What only an HTTP stack can check (HTTP/1.0 framing, the 101
//! headers, hixie-76) is noted where it falls to the adapter.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{Driver, rng};
use duplex_polling::{CloseReason, Message, Response, SockJsConfig, SockJsServer};
use http::Method;

const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";

fn service(config: SockJsConfig) -> Driver<SockJsServer> {
    Driver::new(SockJsServer::new(
        SockJsConfig {
            response_limit: 4096,
            ..config
        }
        .with_rng(rng()),
    ))
}

fn echo() -> Driver<SockJsServer> {
    service(SockJsConfig::default()).echo()
}

fn close() -> Driver<SockJsServer> {
    let mut d = service(SockJsConfig::default());
    d.close_on_open = Some((3000, "Go away!".into()));
    d
}

fn wsoff() -> Driver<SockJsServer> {
    service(SockJsConfig {
        websocket: false,
        ..SockJsConfig::default()
    })
    .echo()
}

fn cookie() -> Driver<SockJsServer> {
    service(SockJsConfig {
        cookie_needed: true,
        ..SockJsConfig::default()
    })
    .echo()
}

fn content_type(r: &Response) -> String {
    r.header("content-type")
        .unwrap_or_default()
        .replace(' ', "")
}

fn verify_not_cached(r: &Response) {
    assert_eq!(r.header("cache-control"), Some(NO_CACHE));
    assert!(r.header("expires").is_none());
    assert!(r.header("last-modified").is_none());
}

fn verify_cors(r: &Response, origin: Option<&str>) {
    match origin {
        Some(o) => {
            assert_eq!(r.header("access-control-allow-origin"), Some(o));
            assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        }
        None => {
            assert_eq!(r.header("access-control-allow-origin"), Some("*"));
            assert!(r.header("access-control-allow-credentials").is_none());
        }
    }
}

fn verify_no_cookie(r: &Response) {
    assert!(r.header("set-cookie").is_none());
}

fn verify404(d: &Driver<SockJsServer>, id: duplex_polling::RequestId) {
    assert_eq!(d.status(id), 404);
}

fn verify405(r: &Response) {
    assert_eq!(r.status, 405);
    assert!(r.header("content-type").is_none());
    assert!(r.header("allow").is_some_and(|a| !a.is_empty()));
    assert!(r.body.is_empty());
}

fn verify_options(d: &mut Driver<SockJsServer>, path: &str, allowed: &str) {
    for origin in ["test", "null"] {
        let r = d
            .request(Method::OPTIONS, path)
            .header("Access-Control-Request-Method", allowed)
            .header("Origin", origin);
        let id = d.send_request(r);
        let r = d.response(id);
        assert!(r.status == 204 || r.status == 200);
        let cc = r.header("cache-control").unwrap();
        assert!(cc.contains("public"));
        let max_age: u64 = cc.split("max-age=").nth(1).unwrap().parse().unwrap();
        assert!(max_age >= 1_000_000, "max-age must be large");
        assert!(r.header("expires").is_some());
        assert!(
            r.header("access-control-max-age")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 1_000_000
        );
        for m in allowed.split(',') {
            assert!(
                r.header("access-control-allow-methods")
                    .unwrap()
                    .contains(m.trim())
            );
        }
        assert!(r.body.is_empty());
        verify_cors(&r, Some(origin));
    }
}

fn uuid(d: &mut Driver<SockJsServer>) -> String {
    format!("session-{}", d.id().0)
}

// ---- BaseUrlGreeting -------------------------------------------------------

#[test]
fn base_url_greeting_test_greeting() {
    let mut d = echo();
    for path in ["", "/"] {
        let id = d.get(path);
        let r = d.response(id);
        assert_eq!(r.status, 200);
        assert_eq!(content_type(&r), "text/plain;charset=UTF-8");
        assert_eq!(r.body_text(), "Welcome to SockJS!\n");
        verify_no_cookie(&r);
    }
}

#[test]
fn base_url_greeting_test_not_found() {
    let mut d = echo();
    for suffix in ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a", "/a/"] {
        let id = d.get(suffix);
        verify404(&d, id);
    }
}

// ---- IframePage ------------------------------------------------------------

fn verify_iframe(d: &mut Driver<SockJsServer>, path: &str) {
    let id = d.get(path);
    let r = d.response(id);
    assert_eq!(r.status, 200, "{path}");
    assert_eq!(content_type(&r), "text/html;charset=UTF-8");
    let cc = r.header("cache-control").unwrap();
    assert!(cc.contains("public"));
    assert!(cc.split("max-age=").nth(1).unwrap().len() >= 7);
    assert!(r.header("expires").is_some());
    assert!(r.header("etag").is_some());
    assert!(r.header("last-modified").is_none());
    let body = r.body_text();
    let expected_head = "<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  <script src=\"";
    let expected_tail = "\"></script>\n  <script>\n    document.domain = document.domain;\n    SockJS.bootstrap_iframe();\n  </script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>";
    let body = body.trim();
    assert!(
        body.starts_with(expected_head) && body.ends_with(expected_tail),
        "{body}"
    );
    let url = &body[expected_head.len()..body.len() - expected_tail.len()];
    assert!(!url.contains('"'));
    assert!(url.starts_with('/') || url.starts_with("http"));
    verify_no_cookie(&r);
}

#[test]
fn iframe_page_test_simple_url() {
    verify_iframe(&mut echo(), "/iframe.html");
}

#[test]
fn iframe_page_test_versioned_url() {
    let mut d = echo();
    for suffix in [
        "/iframe-a.html",
        "/iframe-.html",
        "/iframe-0.1.2.html",
        "/iframe-0.1.2abc-dirty.2144.html",
    ] {
        verify_iframe(&mut d, suffix);
    }
}

#[test]
fn iframe_page_test_queried_url() {
    let mut d = echo();
    for suffix in [
        "/iframe-a.html?t=1234",
        "/iframe-0.1.2.html?t=123414",
        "/iframe-0.1.2abc-dirty.2144.html?t=qweqweq123",
    ] {
        verify_iframe(&mut d, suffix);
    }
}

#[test]
fn iframe_page_test_invalid_url() {
    let mut d = echo();
    for suffix in [
        "/iframe.htm",
        "/iframe",
        "/IFRAME.HTML",
        "/IFRAME",
        "/iframe.HTML",
        "/iframe.xml",
        "/iframe-/.html",
    ] {
        let id = d.get(suffix);
        verify404(&d, id);
    }
}

#[test]
fn iframe_page_test_cacheability() {
    let mut d = echo();
    let a = d.get("/iframe.html");
    let b = d.get("/iframe.html");
    let etag = d.response(a).header("etag").unwrap().to_owned();
    assert_eq!(d.response(b).header("etag"), Some(etag.as_str()));
    let r = d
        .request(Method::GET, "/iframe.html")
        .header("If-None-Match", &etag);
    let id = d.send_request(r);
    let r = d.response(id);
    assert_eq!(r.status, 304);
    assert!(r.header("content-type").is_none());
    assert!(r.body.is_empty());
}

// ---- InfoTest ---------------------------------------------------------------

#[test]
fn info_test_basic() {
    let mut d = echo();
    let r = d.request(Method::GET, "/info").header("Origin", "test");
    let id = d.send_request(r);
    let r = d.response(id);
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/json;charset=UTF-8");
    verify_no_cookie(&r);
    verify_not_cached(&r);
    verify_cors(&r, Some("test"));
    let data: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(data["websocket"], true);
    assert!(data["cookie_needed"].is_boolean());
    assert_eq!(data["origins"], serde_json::json!(["*:*"]));
    assert!(data["entropy"].is_u64());
}

#[test]
fn info_test_entropy() {
    let mut d = echo();
    let a = d.get("/info");
    let b = d.get("/info");
    let ea: serde_json::Value = serde_json::from_slice(&d.response(a).body).unwrap();
    let eb: serde_json::Value = serde_json::from_slice(&d.response(b).body).unwrap();
    assert!(ea["entropy"].as_u64().unwrap() <= u64::from(u32::MAX));
    assert_ne!(ea["entropy"], eb["entropy"]);
}

#[test]
fn info_test_options() {
    verify_options(&mut echo(), "/info", "OPTIONS, GET");
}

#[test]
fn info_test_options_null_origin() {
    let mut d = echo();
    let r = d
        .request(Method::OPTIONS, "/info")
        .header("Origin", "null")
        .header("Access-Control-Request-Method", "POST");
    let id = d.send_request(r);
    let r = d.response(id);
    assert!(r.status == 204 || r.status == 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("access-control-allow-origin"), Some("null"));
}

#[test]
fn info_test_disabled_websocket() {
    let mut d = wsoff();
    let id = d.get("/info");
    let data: serde_json::Value = serde_json::from_slice(&d.response(id).body).unwrap();
    assert_eq!(data["websocket"], false);
}

// ---- SessionURLs -----------------------------------------------------------

fn verify_session_part(d: &mut Driver<SockJsServer>, part: &str) {
    let id = d.post(&format!("{part}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "o\n"), "{part}");
}

#[test]
fn session_urls_test_any_value() {
    let mut d = echo();
    verify_session_part(&mut d, "/a/a123");
    for part in ["/_/_123", "/1/123", "/abcdefgh_i-j%20/abcdefg_i-j%20123"] {
        verify_session_part(&mut d, part);
    }
}

#[test]
fn session_urls_test_invalid_paths() {
    let mut d = echo();
    for suffix in ["//", "/a./a", "/a/a.", "/./.", "/", "///"] {
        let a = d.get(&format!("{suffix}/xhr"));
        let b = d.post(&format!("{suffix}/xhr"), "");
        verify404(&d, a);
        verify404(&d, b);
    }
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn session_urls_test_ignoring_server_id() {
    let mut d = echo();
    let s = uuid(&mut d);
    let id = d.post(&format!("/000/{s}/xhr"), "");
    assert_eq!(d.body(id), "o\n");
    let id = d.post(&format!("/000/{s}/xhr_send"), r#"["a"]"#);
    assert_eq!(d.status(id), 204);
    assert!(d.response(id).body.is_empty());
    let id = d.post(&format!("/999/{s}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "a[\"a\"]\n"));
}

// ---- Protocol --------------------------------------------------------------

#[test]
fn protocol_test_simple_session() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "o\n"));
    let id = d.post(&format!("{url}/xhr_send"), r#"["a"]"#);
    assert_eq!(d.status(id), 204);
    assert!(d.response(id).body.is_empty());
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "a[\"a\"]\n"));
    let id = d.post("/000/bad_session/xhr_send", r#"["a"]"#);
    verify404(&d, id);
    let r1 = d.post(&format!("{url}/xhr"), "");
    assert!(!d.answered(r1), "parked");
    let r2 = d.post(&format!("{url}/xhr"), "");
    assert_eq!(
        (d.status(r2), d.body(r2).as_str()),
        (200, "c[2010,\"Another connection still open\"]\n")
    );
    d.abort(r1);
}

#[test]
fn protocol_test_close_session() {
    let mut d = close();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "o\n"));
    for _ in 0..2 {
        let id = d.post(&format!("{url}/xhr"), "");
        assert_eq!(
            (d.status(id), d.body(id).as_str()),
            (200, "c[3000,\"Go away!\"]\n")
        );
    }
}

// ---- WebsocketHttpErrors ---------------------------------------------------

#[test]
fn websocket_http_errors_test_http_method() {
    let mut d = echo();
    let id = d.get("/0/0/websocket");
    assert_eq!(d.status(id), 400);
}

#[test]
fn websocket_http_errors_test_invalid_connection_header() {
    // `Upgrade: WebSocket` with `Connection: close` is not a valid upgrade
    // (the adapter's duplex-ws check says so), so it arrives as a plain GET.
    let mut d = echo();
    let r = d
        .request(Method::GET, "/0/0/websocket")
        .header("Upgrade", "WebSocket")
        .header("Connection", "close");
    let id = d.send_request(r);
    assert_eq!(d.status(id), 400);
    assert!(d.body(id).contains("Not a valid websocket request"));
}

#[test]
fn websocket_http_errors_test_invalid_method() {
    let mut d = echo();
    for upgrade in [true, false] {
        let mut r = d.request(Method::POST, "/0/0/websocket");
        if upgrade {
            r = r
                .header("Upgrade", "WebSocket")
                .header("Connection", "Upgrade");
        }
        let id = d.send_request(r);
        verify405(&d.response(id));
    }
}

// ---- Websocket -------------------------------------------------------------

#[test]
fn websocket_test_transport() {
    let mut d = echo();
    let s = uuid(&mut d);
    let ws = d.websocket(&format!("/000/{s}/websocket"));
    assert!(d.written(ws).accepted);
    d.ws_send(ws, r#"["a"]"#);
    assert_eq!(d.written(ws).ws_texts(), ["o", "a[\"a\"]"]);
    d.ws_closed(ws);
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn websocket_test_close() {
    let mut d = close();
    let s = uuid(&mut d);
    let ws = d.websocket(&format!("/000/{s}/websocket"));
    let w = d.written(ws);
    assert_eq!(w.ws_texts(), ["o", "c[3000,\"Go away!\"]"]);
    assert!(w.ws_closed.is_some(), "closed after the close frame");
}

#[test]
fn websocket_test_headers_sanity() {
    // The 101 and its Sec-WebSocket-Accept are the adapter's (duplex-ws);
    // the machine's part is to accept the upgrade with no body headers.
    let mut d = echo();
    let s = uuid(&mut d);
    let ws = d.websocket(&format!("/000/{s}/websocket"));
    assert!(d.written(ws).accepted);
    assert!(d.written(ws).response.is_none());
}

#[test]
fn websocket_test_empty_frame() {
    let mut d = echo();
    let s = uuid(&mut d);
    let ws = d.websocket(&format!("/000/{s}/websocket"));
    d.ws_send(ws, "");
    d.ws_send(ws, "[]");
    d.ws_send(ws, r#"["a"]"#);
    assert_eq!(d.written(ws).ws_texts(), ["o", "a[\"a\"]"]);
}

#[test]
fn websocket_test_reuse_session_id() {
    let mut d = echo();
    let url = format!("/000/{}/websocket", uuid(&mut d));
    let ws1 = d.websocket(&url);
    let ws2 = d.websocket(&url);
    assert_eq!(d.written(ws1).ws_texts(), ["o"]);
    assert_eq!(d.written(ws2).ws_texts(), ["o"]);
    d.ws_send(ws1, r#"["a"]"#);
    d.ws_send(ws2, r#"["b"]"#);
    assert_eq!(d.written(ws1).ws_texts(), ["o", "a[\"a\"]"]);
    assert_eq!(d.written(ws2).ws_texts(), ["o", "a[\"b\"]"]);
    assert!(d.written(ws1).ws_closed.is_none() && d.written(ws2).ws_closed.is_none());
    d.ws_closed(ws1);
    d.ws_closed(ws2);
    let ws3 = d.websocket(&url);
    d.ws_send(ws3, r#"["a"]"#);
    assert_eq!(d.written(ws3).ws_texts(), ["o", "a[\"a\"]"]);
}

// `Websocket.test_haproxy` is the hixie-76 handshake, which the runner skips
// by name (duplex-ws speaks RFC 6455 only).

#[test]
fn websocket_test_broken_json() {
    let mut d = echo();
    let s = uuid(&mut d);
    let ws = d.websocket(&format!("/000/{s}/websocket"));
    d.ws_send(ws, "[\"a");
    assert!(d.written(ws).ws_closed.is_some());
    assert_eq!(d.closed()[0].1, CloseReason::ParseError);
    assert_eq!(d.machine.connection_count(), 0);
}

// ---- XhrPolling ------------------------------------------------------------

#[test]
fn xhr_polling_test_options() {
    let mut d = echo();
    for suffix in ["/xhr", "/xhr_send"] {
        verify_options(&mut d, &format!("/abc/abc{suffix}"), "OPTIONS, POST");
    }
}

#[test]
fn xhr_polling_test_transport() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let r = d
        .request(Method::POST, &format!("{url}/xhr"))
        .header("Origin", "test");
    let id = d.send_request(r);
    let r = d.response(id);
    assert_eq!((r.status.as_u16(), r.body_text().as_str()), (200, "o\n"));
    assert_eq!(content_type(&r), "application/javascript;charset=UTF-8");
    verify_cors(&r, Some("test"));
    verify_not_cached(&r);
    let r = d
        .request(Method::POST, &format!("{url}/xhr_send"))
        .body(r#"["x"]"#)
        .header("Origin", "test");
    let id = d.send_request(r);
    let r = d.response(id);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(content_type(&r), "text/plain;charset=UTF-8");
    verify_cors(&r, Some("test"));
    verify_not_cached(&r);
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "a[\"x\"]\n"));
}

#[test]
fn xhr_polling_test_invalid_session() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr_send"), r#"["x"]"#);
    verify404(&d, id);
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn xhr_polling_test_invalid_json() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(id), "o\n");
    let id = d.post(&format!("{url}/xhr_send"), "[\"x");
    assert_eq!(d.status(id), 500);
    assert!(d.body(id).contains("Broken JSON encoding."));
    let id = d.post(&format!("{url}/xhr_send"), "");
    assert_eq!(d.status(id), 500);
    assert!(d.body(id).contains("Payload expected."));
    let id = d.post(&format!("{url}/xhr_send"), r#"["a"]"#);
    assert_eq!(d.status(id), 204);
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "a[\"a\"]\n"));
}

#[test]
fn xhr_polling_test_content_types() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(id), "o\n");
    let ctypes = [
        "text/plain",
        "T",
        "application/json",
        "application/xml",
        "",
        "application/json; charset=utf-8",
        "text/xml; charset=utf-8",
        "text/xml",
    ];
    for ct in ctypes {
        let r = d
            .request(Method::POST, &format!("{url}/xhr_send"))
            .body(r#"["a"]"#)
            .header("Content-Type", ct);
        let id = d.send_request(r);
        assert_eq!(d.status(id), 204, "{ct}");
        assert!(d.response(id).body.is_empty());
    }
    let id = d.post(&format!("{url}/xhr"), "");
    let expected = format!("a[{}]\n", vec!["\"a\""; ctypes.len()].join(","));
    assert_eq!((d.status(id), d.body(id)), (200, expected));
}

#[test]
fn xhr_polling_test_request_headers_cors() {
    let mut d = echo();
    let cases = [
        (Some("a, b, c"), Some("a, b, c")),
        (Some(""), None),
        (None, None),
    ];
    for (requested, allowed) in cases {
        let url = format!("/000/{}/xhr", uuid(&mut d));
        let mut r = d
            .request(Method::OPTIONS, &url)
            .header("Origin", "test")
            .header("Access-Control-Request-Method", "POST");
        if let Some(h) = requested {
            r = r.header("Access-Control-Request-Headers", h);
        }
        let id = d.send_request(r);
        let r = d.response(id);
        assert!(r.status == 204 || r.status == 200);
        verify_cors(&r, Some("test"));
        assert_eq!(r.header("access-control-allow-headers"), allowed);
    }
}

#[test]
fn xhr_polling_test_sending_empty_frame() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(id), "o\n");
    let id = d.post(&format!("{url}/xhr_send"), "[]");
    assert_eq!(d.status(id), 204);
    let id = d.post(&format!("{url}/xhr_send"), r#"["a"]"#);
    assert_eq!(d.status(id), 204);
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "a[\"a\"]\n"));
}

// ---- XhrStreaming ----------------------------------------------------------

#[test]
fn xhr_streaming_test_options() {
    verify_options(&mut echo(), "/abc/abc/xhr_streaming", "OPTIONS, POST");
}

#[test]
fn xhr_streaming_test_transport() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let r = d
        .request(Method::POST, &format!("{url}/xhr_streaming"))
        .header("Origin", "test");
    let id = d.send_request(r);
    let w = d.written(id);
    let head = w.stream_started.clone().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(content_type(&head), "application/javascript;charset=UTF-8");
    verify_cors(&head, Some("test"));
    verify_not_cached(&head);
    assert_eq!(w.chunk_texts()[0], format!("{}\n", "h".repeat(2048)));
    assert_eq!(w.chunk_texts()[1], "o\n");
    let send = d.post(&format!("{url}/xhr_send"), r#"["x"]"#);
    assert_eq!(d.status(send), 204);
    assert!(d.response(send).body.is_empty());
    assert_eq!(d.written(id).chunk_texts()[2], "a[\"x\"]\n");
    assert!(!d.written(id).stream_ended);
}

#[test]
fn xhr_streaming_test_response_limit() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr_streaming"), "");
    assert_eq!(d.written(id).chunk_texts()[1], "o\n");
    let msg = format!("\"{}\"", "x".repeat(128));
    for i in 0..31 {
        let send = d.post(&format!("{url}/xhr_send"), &format!("[{msg}]"));
        assert_eq!(d.status(send), 204);
        let w = d.written(id);
        assert_eq!(w.chunk_texts()[2 + i], format!("a[{msg}]\n"));
        assert_eq!(
            w.stream_ended,
            i == 30,
            "closed exactly after enough data, at {i}"
        );
    }
}

// ---- EventSource -----------------------------------------------------------

#[test]
fn event_source_test_transport() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/eventsource"));
    let head = d.written(id).stream_started.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(content_type(&head), "text/event-stream");
    verify_not_cached(&head);
    assert_eq!(d.written(id).chunk_texts(), ["\r\n", "data: o\r\n\r\n"]);
    let send = d.post(&format!("{url}/xhr_send"), r#"["x"]"#);
    assert_eq!(d.status(send), 204);
    assert_eq!(d.written(id).chunk_texts()[2], "data: a[\"x\"]\r\n\r\n");
    let send = d.post(&format!("{url}/xhr_send"), r#"["  \u0000\n\r "]"#);
    assert_eq!(d.status(send), 204);
    assert_eq!(
        d.written(id).chunk_texts()[3],
        "data: a[\"  \\u0000\\n\\r \"]\r\n\r\n"
    );
}

#[test]
fn event_source_test_response_limit() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/eventsource"));
    assert_eq!(d.written(id).chunk_texts()[1], "data: o\r\n\r\n");
    let msg = format!("\"{}\"", "x".repeat(4096));
    let send = d.post(&format!("{url}/xhr_send"), &format!("[{msg}]"));
    assert_eq!(d.status(send), 204);
    let w = d.written(id);
    assert_eq!(w.chunk_texts()[2], format!("data: a[{msg}]\r\n\r\n"));
    assert!(w.stream_ended);
}

// ---- HtmlFile --------------------------------------------------------------

const HTMLFILE_HEAD: &str = "<!doctype html>\n<html><head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body><h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    var c = parent.callback;\n    c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>";

#[test]
fn html_file_test_transport() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/htmlfile?c=%63allback"));
    let head = d.written(id).stream_started.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(content_type(&head), "text/html;charset=UTF-8");
    verify_not_cached(&head);
    let chunks = d.written(id).chunk_texts();
    assert_eq!(chunks[0].trim(), HTMLFILE_HEAD);
    assert!(chunks[0].len() > 1024);
    assert_eq!(chunks[1], "<script>\np(\"o\");\n</script>\r\n");
    let send = d.post(&format!("{url}/xhr_send"), r#"["x"]"#);
    assert_eq!(d.status(send), 204);
    assert_eq!(
        d.written(id).chunk_texts()[2],
        "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
    );
}

#[test]
fn html_file_test_no_callback() {
    let mut d = echo();
    let id = d.get("/a/a/htmlfile");
    assert_eq!(d.status(id), 500);
    assert!(d.body(id).contains("\"callback\" parameter required"));
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn html_file_test_invalid_callback() {
    let mut d = echo();
    for callback in ["%20", "*", "abc(", "abc%28"] {
        let id = d.get(&format!("/a/a/htmlfile?c={callback}"));
        assert_eq!(d.status(id), 500);
        assert!(d.body(id).contains("invalid \"callback\" parameter"));
    }
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn html_file_test_response_limit() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/htmlfile?c=callback"));
    assert_eq!(
        d.written(id).chunk_texts()[1],
        "<script>\np(\"o\");\n</script>\r\n"
    );
    let msg = "x".repeat(4096);
    let send = d.post(&format!("{url}/xhr_send"), &format!("[\"{msg}\"]"));
    assert_eq!(d.status(send), 204);
    let w = d.written(id);
    assert_eq!(
        w.chunk_texts()[2],
        format!("<script>\np(\"a[\\\"{msg}\\\"]\");\n</script>\r\n")
    );
    assert!(w.stream_ended);
}

// ---- JsonPolling -----------------------------------------------------------

fn form(d: &mut Driver<SockJsServer>, path: &str, body: &str) -> duplex_polling::RequestId {
    let r = d
        .request(Method::POST, path)
        .body(body.to_owned())
        .header("Content-Type", "application/x-www-form-urlencoded");
    d.send_request(r)
}

#[test]
fn json_polling_test_transport() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/jsonp?c=%63allback"));
    let r = d.response(id);
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/javascript;charset=UTF-8");
    verify_not_cached(&r);
    assert_eq!(r.body_text(), "/**/callback(\"o\");\r\n");
    let send = form(&mut d, &format!("{url}/jsonp_send"), "d=%5B%22x%22%5D");
    let r = d.response(send);
    assert_eq!((r.status.as_u16(), r.body_text().as_str()), (200, "ok"));
    assert_eq!(content_type(&r), "text/plain;charset=UTF-8");
    verify_not_cached(&r);
    let id = d.get(&format!("{url}/jsonp?c=%63allback"));
    assert_eq!(
        (d.status(id), d.body(id).as_str()),
        (200, "/**/callback(\"a[\\\"x\\\"]\");\r\n")
    );
}

#[test]
fn json_polling_test_no_callback() {
    let mut d = echo();
    let id = d.get("/a/a/jsonp");
    assert_eq!(d.status(id), 500);
    assert!(d.body(id).contains("\"callback\" parameter required"));
}

#[test]
fn json_polling_test_invalid_callback() {
    let mut d = echo();
    for callback in ["%20", "*", "abc(", "abc%28"] {
        let id = d.get(&format!("/a/a/jsonp?c={callback}"));
        assert_eq!(d.status(id), 500);
        assert!(d.body(id).contains("invalid \"callback\" parameter"));
    }
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn json_polling_test_invalid_json() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(d.body(id), "/**/x(\"o\");\r\n");
    let id = form(&mut d, &format!("{url}/jsonp_send"), "d=%5B%22x");
    assert_eq!(d.status(id), 500);
    assert!(d.body(id).contains("Broken JSON encoding."));
    for data in ["", "d=", "p=p"] {
        let id = form(&mut d, &format!("{url}/jsonp_send"), data);
        assert_eq!(d.status(id), 500, "{data}");
        assert!(d.body(id).contains("Payload expected."));
    }
    let id = form(&mut d, &format!("{url}/jsonp_send"), "d=%5B%22b%22%5D");
    assert_eq!(d.body(id), "ok");
    let id = d.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(
        (d.status(id), d.body(id).as_str()),
        (200, "/**/x(\"a[\\\"b\\\"]\");\r\n")
    );
}

#[test]
fn json_polling_test_content_types() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(d.body(id), "/**/x(\"o\");\r\n");
    let id = form(&mut d, &format!("{url}/jsonp_send"), "d=%5B%22abc%22%5D");
    assert_eq!(d.body(id), "ok");
    let r = d
        .request(Method::POST, &format!("{url}/jsonp_send"))
        .body(r#"["%61bc"]"#)
        .header("Content-Type", "text/plain");
    let id = d.send_request(r);
    assert_eq!(d.body(id), "ok");
    let id = d.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(
        (d.status(id), d.body(id).as_str()),
        (200, "/**/x(\"a[\\\"abc\\\",\\\"%61bc\\\"]\");\r\n")
    );
}

#[test]
fn json_polling_test_close() {
    let mut d = close();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(d.body(id), "/**/x(\"o\");\r\n");
    for _ in 0..2 {
        let id = d.get(&format!("{url}/jsonp?c=x"));
        assert_eq!(d.body(id), "/**/x(\"c[3000,\\\"Go away!\\\"]\");\r\n");
    }
}

#[test]
fn json_polling_test_sending_empty_frame() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(d.body(id), "/**/x(\"o\");\r\n");
    let id = form(&mut d, &format!("{url}/jsonp_send"), "d=%5B%5D");
    assert_eq!(d.body(id), "ok");
    let id = form(&mut d, &format!("{url}/jsonp_send"), "d=%5B%22x%22%5D");
    assert_eq!(d.body(id), "ok");
    let id = d.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(
        (d.status(id), d.body(id).as_str()),
        (200, "/**/x(\"a[\\\"x\\\"]\");\r\n")
    );
}

// ---- JsessionidCookie ------------------------------------------------------

fn verify_cookie(r: &Response, value: &str) {
    let cookie = r.header("set-cookie").unwrap();
    let mut parts = cookie.split(';');
    assert_eq!(parts.next().unwrap().trim(), format!("JSESSIONID={value}"));
    assert_eq!(parts.next().unwrap().trim().to_lowercase(), "path=/");
}

#[test]
fn jsessionid_cookie_test_basic() {
    let mut d = cookie();
    let id = d.get("/info");
    let r = d.response(id);
    assert_eq!(r.status, 200);
    verify_no_cookie(&r);
    let data: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(data["cookie_needed"], true);
}

#[test]
fn jsessionid_cookie_test_xhr() {
    let mut d = cookie();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "o\n"));
    verify_cookie(&d.response(id), "dummy");
    let url = format!("/000/{}", uuid(&mut d));
    let r = d
        .request(Method::POST, &format!("{url}/xhr"))
        .header("Cookie", "JSESSIONID=abcdef");
    let id = d.send_request(r);
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "o\n"));
    verify_cookie(&d.response(id), "abcdef");
}

#[test]
fn jsessionid_cookie_test_xhr_streaming() {
    let mut d = cookie();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr_streaming"), "");
    let head = d.written(id).stream_started.unwrap();
    assert_eq!(head.status, 200);
    verify_cookie(&head, "dummy");
}

#[test]
fn jsessionid_cookie_test_eventsource() {
    let mut d = cookie();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/eventsource"));
    verify_cookie(&d.written(id).stream_started.unwrap(), "dummy");
}

#[test]
fn jsessionid_cookie_test_htmlfile() {
    let mut d = cookie();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/htmlfile?c=%63allback"));
    verify_cookie(&d.written(id).stream_started.unwrap(), "dummy");
}

#[test]
fn jsessionid_cookie_test_jsonp() {
    let mut d = cookie();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.get(&format!("{url}/jsonp?c=%63allback"));
    assert_eq!(d.status(id), 200);
    verify_cookie(&d.response(id), "dummy");
    assert_eq!(d.body(id), "/**/callback(\"o\");\r\n");
    let id = form(&mut d, &format!("{url}/jsonp_send"), "d=%5B%22x%22%5D");
    assert_eq!((d.status(id), d.body(id).as_str()), (200, "ok"));
    verify_cookie(&d.response(id), "dummy");
}

// ---- RawWebsocket ----------------------------------------------------------

#[test]
fn raw_websocket_test_transport() {
    let mut d = echo();
    let ws = d.websocket("/websocket");
    assert!(d.written(ws).accepted);
    d.ws_send(ws, "Hello world!\u{ffff}");
    assert_eq!(d.written(ws).ws_texts(), ["Hello world!\u{ffff}"]);
    d.ws_closed(ws);
    assert_eq!(d.machine.session_count(), 0);
}

#[test]
fn raw_websocket_test_close() {
    let mut d = close();
    let ws = d.websocket("/websocket");
    let w = d.written(ws);
    assert!(w.ws_messages.is_empty());
    assert_eq!(w.ws_closed, Some((3000, "Go away!".to_owned())));
    assert_eq!(d.machine.session_count(), 0);
}

// ---- JSONEncoding ----------------------------------------------------------

#[test]
fn json_encoding_test_xhr_server_encodes() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(id), "o\n");
    let killers: Vec<char> = (255u32..65536)
        .filter_map(char::from_u32)
        .filter(|c| {
            matches!(*c, '\u{200c}'..='\u{200f}' | '\u{2028}'..='\u{202f}' | '\u{2060}'..='\u{206f}' | '\u{fff0}'..='\u{ffff}')
        })
        .collect();
    let raw: String = killers.iter().collect();
    let escaped: String = std::iter::once("\"".to_owned())
        .chain(killers.iter().map(|c| format!("\\u{:04x}", u32::from(*c))))
        .chain(std::iter::once("\"".to_owned()))
        .collect();
    let id = d.post(&format!("{url}/xhr_send"), &format!("[\"{raw}\"]"));
    assert_eq!(d.status(id), 204);
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.status(id), 200);
    let body = d.body(id);
    let recv = &body.trim()[2..body.trim().len() - 1];
    assert_eq!(recv, escaped);
}

#[test]
fn json_encoding_test_xhr_server_decodes() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(id), "o\n");
    // The characters clients escape: controls, C1, soft hyphen, Arabic and
    // Syriac formats, general punctuation and more, the BOM, specials, and
    // combining marks.
    let ranges: &[(u32, u32)] = &[
        (0x00, 0x1f),
        (0x7f, 0x9f),
        (0xad, 0xad),
        (0x300, 0x333),
        (0x600, 0x604),
        (0x70f, 0x70f),
        (0x17b4, 0x17b5),
        (0x2000, 0x20ff),
        (0xfeff, 0xfeff),
        (0xf900, 0xfa0d),
        (0xfff0, 0xffff),
    ];
    let chars: Vec<char> = ranges
        .iter()
        .flat_map(|&(a, b)| (a..=b).filter_map(char::from_u32))
        .collect();
    let escaped: String = chars
        .iter()
        .map(|c| format!("\\u{:04x}", u32::from(*c)))
        .collect();
    let id = d.post(&format!("{url}/xhr_send"), &format!("[\"{escaped}\"]"));
    assert_eq!(d.status(id), 204);
    let id = d.post(&format!("{url}/xhr"), "");
    let body = d.body(id);
    let echoed: Vec<String> = serde_json::from_str(&body.trim()[1..]).unwrap();
    assert_eq!(echoed, [chars.iter().collect::<String>()]);
}

// ---- HandlingClose ---------------------------------------------------------

#[test]
fn handling_close_test_close_frame() {
    let mut d = close();
    let url = format!("/000/{}", uuid(&mut d));
    let r1 = d.post(&format!("{url}/xhr_streaming"), "");
    let w1 = d.written(r1);
    assert_eq!(w1.chunk_texts()[1..], ["o\n", "c[3000,\"Go away!\"]\n"]);
    assert!(w1.stream_ended);
    let r2 = d.post(&format!("{url}/xhr_streaming"), "");
    let w2 = d.written(r2);
    assert_eq!(w2.chunk_texts()[1..], ["c[3000,\"Go away!\"]\n"]);
    assert!(w2.stream_ended);
}

#[test]
fn handling_close_test_close_request() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let r1 = d.post(&format!("{url}/xhr_streaming"), "");
    assert_eq!(d.written(r1).chunk_texts()[1], "o\n");
    let r2 = d.post(&format!("{url}/xhr_streaming"), "");
    let w2 = d.written(r2);
    assert_eq!(
        w2.chunk_texts()[1..],
        ["c[2010,\"Another connection still open\"]\n"]
    );
    assert!(w2.stream_ended);
    assert!(!d.written(r1).stream_ended);
}

#[test]
fn handling_close_test_abort_xhr_streaming() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let r1 = d.post(&format!("{url}/xhr_streaming"), "");
    assert_eq!(d.written(r1).chunk_texts()[1], "o\n");
    let r2 = d.post(&format!("{url}/xhr_streaming"), "");
    assert_eq!(
        d.written(r2).chunk_texts()[1],
        "c[2010,\"Another connection still open\"]\n"
    );
    assert!(d.written(r2).stream_ended);
    d.abort(r1);
    let r3 = d.post(&format!("{url}/xhr_streaming"), "");
    let third = &d.written(r3).chunk_texts()[1];
    assert!(
        third == "o\n" || third == "c[1002,\"Connection interrupted\"]\n",
        "{third}"
    );
    assert_eq!(third, "c[1002,\"Connection interrupted\"]\n");
    assert_eq!(d.closed()[0].1, CloseReason::Interrupted);
}

#[test]
fn handling_close_test_abort_xhr_polling() {
    let mut d = echo();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(id), "o\n");
    let r1 = d.post(&format!("{url}/xhr"), "");
    let r2 = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(r2), "c[2010,\"Another connection still open\"]\n");
    d.abort(r1);
    let r3 = d.post(&format!("{url}/xhr"), "");
    assert_eq!(d.body(r3), "c[1002,\"Connection interrupted\"]\n");
}

// ---- Http10 / Http11 ---------------------------------------------------------
// Content-Length versus chunking and keep-alive are the adapter's; the
// machine supplies the 19-byte greeting and a stream that ends after the
// close frame.

#[test]
fn http10_and_http11_test_synchronous() {
    let mut d = echo();
    let id = d.get("");
    assert_eq!(d.response(id).body.len(), 19);
}

#[test]
fn http10_and_http11_test_streaming() {
    let mut d = close();
    let url = format!("/000/{}", uuid(&mut d));
    let id = d.post(&format!("{url}/xhr_streaming"), "");
    let w = d.written(id);
    assert_eq!(w.chunks[0].len(), 2049);
    assert_eq!(w.chunk_texts()[1..], ["o\n", "c[3000,\"Go away!\"]\n"]);
    assert!(w.stream_ended);
    assert!(
        w.stream_started
            .unwrap()
            .headers
            .get("content-length")
            .is_none()
    );
}

#[test]
fn disabled_websocket_service_has_no_websocket_endpoints() {
    let mut d = wsoff();
    let ws = d.websocket("/000/abc/websocket");
    verify404(&d, ws);
    let raw = d.websocket("/websocket");
    verify404(&d, raw);
    let _ = Message::text("");
}
