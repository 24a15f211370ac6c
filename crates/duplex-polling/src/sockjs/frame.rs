//! SockJS frames and how each transport wraps them, byte for byte as
//! sockjs-node writes them.
//!
//! | frame | meaning |
//! |---|---|
//! | `o` | open |
//! | `h` | heartbeat |
//! | `a["m1","m2"]` | messages, each a JSON string with extra escapes |
//! | `c[3000,"Go away!"]` | close, repeated to every later request |

use std::fmt::Write as _;

use bytes::Bytes;

/// Writes `text` as a JSON string the way `JSON.stringify` does: `"` and
/// `\` escaped, `\b \f \n \r \t` by name, other controls as `\u00xx`.
/// With `sockjs_escapes`, also the ranges SockJS asks servers to escape
/// because browsers or proxies mangle them: U+200C–U+200F, U+2028–U+202F,
/// U+2060–U+206F and U+FFF0–U+FFFF, as lowercase `\uxxxx`.
pub(crate) fn push_json_string(text: &str, sockjs_escapes: bool, out: &mut String) {
    out.reserve(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{0}'..='\u{1f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            '\u{200c}'..='\u{200f}'
            | '\u{2028}'..='\u{202f}'
            | '\u{2060}'..='\u{206f}'
            | '\u{fff0}'..='\u{ffff}'
                if sockjs_escapes =>
            {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// `a[...]`: the messages as one array frame.
pub(crate) fn message_frame<'a>(messages: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("a[");
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(m, true, &mut out);
    }
    out.push(']');
    out
}

/// `c[code,"reason"]`.
pub(crate) fn close_frame(code: u16, reason: &str) -> String {
    let mut out = format!("c[{code},");
    push_json_string(reason, true, &mut out);
    out.push(']');
    out
}

/// The frame sent to a second receiving request while one is open.
pub(crate) const ANOTHER_CONNECTION: &str = r#"c[2010,"Another connection still open"]"#;
/// The close frame after a receiving request was aborted.
pub(crate) const INTERRUPTED: &str = r#"c[1002,"Connection interrupted"]"#;
/// The close of a session (or its WebSocket) that simply ended.
pub(crate) const NORMAL_CLOSURE: (u16, &str) = (1000, "Normal closure");
/// The close of a session whose application cannot take its messages as
/// fast as they come (WebSocket's 1011, an unexpected server condition).
pub(crate) const APPLICATION_TOO_SLOW: (u16, &str) = (1011, "Application too slow");

/// How a transport wraps each frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `xhr`: one frame and `\n`, then the response ends.
    Xhr,
    /// `jsonp`: `/**/cb("<frame>");\r\n`, then the response ends.
    Jsonp(String),
    /// `xhr_streaming`: a 2 KiB `h` prelude, then frames ending in `\n`.
    XhrStreaming,
    /// `eventsource`: a `\r\n` prelude, then `data: <frame>\r\n\r\n`.
    EventSource,
    /// `htmlfile`: an HTML page head, then `<script>p("<frame>");</script>`.
    HtmlFile(String),
    /// The session `/websocket`: each frame one text message.
    WebSocket,
    /// The raw `/websocket`: messages as they are, no frames.
    RawWebSocket,
}

impl Framing {
    /// Whether the receiver is answered with one frame (a long-poll).
    pub(crate) fn is_polling(&self) -> bool {
        matches!(self, Framing::Xhr | Framing::Jsonp(_))
    }

    /// Whether the receiver is a streaming response.
    pub(crate) fn is_streaming(&self) -> bool {
        matches!(
            self,
            Framing::XhrStreaming | Framing::EventSource | Framing::HtmlFile(_)
        )
    }

    /// What a streaming response starts with (not counted against the
    /// response limit).
    pub(crate) fn prelude(&self) -> Option<Bytes> {
        match self {
            Framing::XhrStreaming => {
                let mut p = vec![b'h'; 2048];
                p.push(b'\n');
                Some(Bytes::from(p))
            }
            Framing::EventSource => Some(Bytes::from_static(b"\r\n")),
            Framing::HtmlFile(callback) => Some(Bytes::from(htmlfile_head(callback))),
            _ => None,
        }
    }

    /// One frame as this transport writes it.
    pub(crate) fn wrap(&self, frame: &str) -> Bytes {
        match self {
            Framing::Xhr | Framing::XhrStreaming => Bytes::from(format!("{frame}\n")),
            Framing::Jsonp(callback) => {
                let mut out = format!("/**/{callback}(");
                push_json_string(frame, false, &mut out);
                out.push_str(");\r\n");
                Bytes::from(out)
            }
            Framing::EventSource => {
                let mut out = String::from("data: ");
                // sockjs-node's escape_selected(frame, '\r\n\x00'), which
                // also escapes `%`; sockjs-client decodes with decodeURI.
                for c in frame.chars() {
                    match c {
                        '%' => out.push_str("%25"),
                        '\r' => out.push_str("%0D"),
                        '\n' => out.push_str("%0A"),
                        '\0' => out.push_str("%00"),
                        _ => out.push(c),
                    }
                }
                out.push_str("\r\n\r\n");
                Bytes::from(out)
            }
            Framing::HtmlFile(_) => {
                let mut out = String::from("<script>\np(");
                push_json_string(frame, false, &mut out);
                out.push_str(");\n</script>\r\n");
                Bytes::from(out)
            }
            Framing::WebSocket | Framing::RawWebSocket => Bytes::from(frame.to_owned()),
        }
    }
}

/// The htmlfile page head naming `parent.<callback>`, padded past 1 KiB
/// (Safari waits for that much before parsing).
fn htmlfile_head(callback: &str) -> String {
    const TEMPLATE: &str = "\n<!doctype html>\n<html><head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body><h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    var c = parent.{{ callback }};\n    c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>\n";
    // sockjs-node pads the template (with its 14-character placeholder) to
    // 1037 characters, then substitutes.
    let padding = 1037usize.saturating_sub(TEMPLATE.len());
    let mut page = TEMPLATE.replace("{{ callback }}", callback);
    page.extend(std::iter::repeat_n(' ', padding));
    page.push_str("\r\n\r\n");
    page
}

/// The iframe page that loads the SockJS client from `sockjs_url`.
pub(crate) fn iframe_page(sockjs_url: &str) -> String {
    let mut url = String::with_capacity(sockjs_url.len());
    for c in sockjs_url.chars() {
        match c {
            '"' => url.push_str("&quot;"),
            '<' => url.push_str("&lt;"),
            '>' => url.push_str("&gt;"),
            '&' => url.push_str("&amp;"),
            _ => url.push(c),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  <script src=\"{url}\"></script>\n  <script>\n    document.domain = document.domain;\n    SockJS.bootstrap_iframe();\n  </script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>"
    )
}

/// Whether a callback name is acceptable: `[a-zA-Z0-9_.-]+`.
pub(crate) fn valid_callback(callback: &str) -> bool {
    !callback.is_empty()
        && callback
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(message_frame(["a", "b\"c"]), r#"a["a","b\"c"]"#);
        assert_eq!(close_frame(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
        assert_eq!(
            close_frame(2010, "Another connection still open"),
            ANOTHER_CONNECTION
        );
        assert_eq!(close_frame(1002, "Connection interrupted"), INTERRUPTED);
    }

    #[test]
    fn json_escapes_match_json_stringify_plus_sockjs_ranges() {
        let mut out = String::new();
        push_json_string(
            "  \u{0}\n\r \u{1f}\u{7f}é\u{200c}\u{2028}\u{2060}\u{fff0}\u{ffff}😀",
            true,
            &mut out,
        );
        assert_eq!(
            out,
            "\"  \\u0000\\n\\r \\u001f\u{7f}é\\u200c\\u2028\\u2060\\ufff0\\uffff😀\""
        );
        let mut plain = String::new();
        push_json_string("a[\"x\"]\u{2028}", false, &mut plain);
        assert_eq!(plain, "\"a[\\\"x\\\"]\u{2028}\"");
    }

    #[test]
    fn every_escaped_range_round_trips_through_a_json_parser() {
        let all: String = (0u32..=0xffff).filter_map(char::from_u32).collect();
        let frame = message_frame([all.as_str()]);
        let parsed: Vec<String> = serde_json::from_str(&frame[1..]).unwrap();
        assert_eq!(parsed, [all]);
    }

    #[test]
    fn transport_wrapping() {
        assert_eq!(&Framing::Xhr.wrap("o")[..], b"o\n");
        assert_eq!(
            &Framing::Jsonp("callback".into()).wrap(r#"a["x"]"#)[..],
            b"/**/callback(\"a[\\\"x\\\"]\");\r\n"
        );
        assert_eq!(
            &Framing::EventSource.wrap(r#"a["%61"]"#)[..],
            b"data: a[\"%2561\"]\r\n\r\n"
        );
        assert_eq!(
            &Framing::HtmlFile("cb".into()).wrap(r#"a["x"]"#)[..],
            b"<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
        );
        let prelude = Framing::XhrStreaming.prelude().unwrap();
        assert_eq!(prelude.len(), 2049);
        assert_eq!(prelude.last(), Some(&b'\n'));
    }

    #[test]
    fn htmlfile_head_is_padded_past_one_kibibyte() {
        let head = htmlfile_head("callback");
        assert!(head.len() > 1024);
        assert!(head.contains("var c = parent.callback;"));
        assert!(head.ends_with("  \r\n\r\n"));
        assert_eq!(head.len(), 1037 - 14 + "callback".len() + 4);
    }

    #[test]
    fn callbacks() {
        assert!(valid_callback("callback"));
        assert!(valid_callback("a.b_c-1"));
        for bad in ["", " ", "*", "abc(", "abc%28", "a/b"] {
            assert!(!valid_callback(bad), "{bad}");
        }
    }
}
